/* The revenue split of one paid item (a gift, a ticket) between the singer, the singer's agent and
 * the platform: a pure function over integers, no allocation, no state, any thread.
 * It must never round in a way that makes the parts differ from the price. */
#ifndef ENCORE_ECONOMY_SPLIT_H
#define ENCORE_ECONOMY_SPLIT_H

#include <glib.h>
#include <stdint.h>

/* 100% in basis points. */
#define ENCORE_SPLIT_BP_ONE 10000u

/* Splits `price` (minor units, >= 0) by basis-point shares: the singer gets
 * floor(price * singer_bp / 10000), the agent floor(price * agent_bp / 10000), and the platform
 * the remainder, so *singer + *agent + *platform == price exactly. Each of the singer's and the
 * agent's parts is at most its exact share and less than one unit below it; the platform gets its
 * exact share plus the two rounding remainders (less than two units over, never under).
 * Exact for every int64 price (no intermediate overflow).
 * Returns 0, or -EINVAL (outputs untouched) when price < 0, an output pointer is NULL, or
 * singer_bp + agent_bp > 10000. */
int encore_split(int64_t price, uint32_t singer_bp, uint32_t agent_bp, int64_t *singer,
                 int64_t *agent, int64_t *platform) G_GNUC_WARN_UNUSED_RESULT;

#endif
