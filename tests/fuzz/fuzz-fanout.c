/* libFuzzer target for media/fanout: a decrypted singer packet (outside input once the singer is
 * authenticated) mapped to the stage and copied for listeners with various payload types. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "media/fanout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 1600)
        return 0;
    int opus_pt = data[0] & 0x7f;
    int red_pt = (data[1] & 0x80) ? -1 : (data[1] & 0x7f);
    uint8_t pkt[1600];
    size_t len = size - 2;
    memcpy(pkt, data + 2, len);
    if (encore_fanout_to_stage(pkt, len, opus_pt, red_pt) != 0)
        return 0;
    uint8_t primary[1600], out[1600];
    size_t pn = encore_fanout_red_to_primary(pkt, len, primary, sizeof primary);
    if (pn > len)
        __builtin_trap();
    const int listeners[][2] = {{111, 63}, {96, -1}, {97, 120}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = encore_fanout_listener_copy(pkt, len, primary, pn, listeners[i][0],
                                               listeners[i][1], out, sizeof out);
        if (n > sizeof out)
            __builtin_trap();
    }
    return 0;
}
