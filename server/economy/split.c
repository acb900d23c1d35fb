/* The revenue split (see split.h): pure integer arithmetic, any thread, no allocation.
 * It must not use floating point, and must not overflow for any int64 price. */
#include "config.h"

#include <errno.h>

#include "server/economy/split.h"

/* floor(price * bp / 10000) without forming price * bp: with price = q * 10000 + r,
 * price * bp / 10000 = q * bp + r * bp / 10000, where q * bp <= price and r * bp < 10^8. */
static int64_t share_floor(int64_t price, uint32_t bp)
{
    int64_t q = price / ENCORE_SPLIT_BP_ONE;
    int64_t r = price % ENCORE_SPLIT_BP_ONE;
    return q * (int64_t)bp + (r * (int64_t)bp) / ENCORE_SPLIT_BP_ONE;
}

int encore_split(int64_t price, uint32_t singer_bp, uint32_t agent_bp, int64_t *singer,
                 int64_t *agent, int64_t *platform)
{
    if (price < 0 || !singer || !agent || !platform)
        return -EINVAL;
    if (singer_bp > ENCORE_SPLIT_BP_ONE || agent_bp > ENCORE_SPLIT_BP_ONE ||
        singer_bp + agent_bp > ENCORE_SPLIT_BP_ONE)
        return -EINVAL;
    int64_t s = share_floor(price, singer_bp);
    int64_t a = share_floor(price, agent_bp);
    *singer = s;
    *agent = a;
    *platform = price - s - a;
    return 0;
}
