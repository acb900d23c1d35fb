/* Payload-type mapping for the stage track (see fanout.h). Pure: runs on any thread, allocates
 * and logs nothing, called per packet and per listener by media/room.c. */
#include "config.h"

#include "media/fanout.h"

#include <errno.h>
#include <string.h>

#include "media/rtp.h"

void encore_fanout_red_map_pts(uint8_t *payload, size_t len, uint8_t from, uint8_t to)
{
    size_t off = 0;
    while (off < len) {
        uint8_t more = payload[off] & 0x80;
        if ((payload[off] & 0x7f) == from)
            payload[off] = (uint8_t)(more | to);
        if (!more)
            break;
        off += 4;
    }
}

int encore_fanout_to_stage(uint8_t *pkt, size_t len, int opus_pt, int red_pt)
{
    encore_rtp_header h;
    if (encore_rtp_parse(pkt, len, &h) != 0)
        return -EINVAL;
    if (h.payload_type == opus_pt) {
        encore_rtp_set_payload_type(pkt, ENCORE_STAGE_PT_OPUS);
        return 0;
    }
    if (red_pt >= 0 && h.payload_type == red_pt) {
        encore_rtp_set_payload_type(pkt, ENCORE_STAGE_PT_RED);
        encore_fanout_red_map_pts(pkt + h.payload_offset, h.payload_len, (uint8_t)opus_pt,
                                  ENCORE_STAGE_PT_OPUS);
        return 0;
    }
    return -EPROTONOSUPPORT;
}

size_t encore_fanout_red_to_primary(const uint8_t *pkt, size_t len, uint8_t *out, size_t cap)
{
    encore_rtp_header h;
    if (encore_rtp_parse(pkt, len, &h) != 0)
        return 0;
    uint8_t pt;
    size_t off, plen;
    if (encore_red_primary(pkt + h.payload_offset, h.payload_len, &pt, &off, &plen) != 0)
        return 0;
    if (h.header_len + plen > cap)
        return 0;
    memcpy(out, pkt, h.header_len);
    out[0] &= (uint8_t)~0x20; /* the copy has no padding */
    memcpy(out + h.header_len, pkt + h.payload_offset + off, plen);
    encore_rtp_set_payload_type(out, ENCORE_STAGE_PT_OPUS);
    return h.header_len + plen;
}

size_t encore_fanout_listener_copy(const uint8_t *pkt, size_t len, const uint8_t *primary,
                                   size_t primary_len, int opus_pt, int red_pt, uint8_t *out,
                                   size_t cap)
{
    if (len < 12)
        return 0;
    const bool red = (pkt[1] & 0x7f) == ENCORE_STAGE_PT_RED;
    if (red && red_pt >= 0) {
        if (len > cap)
            return 0;
        memcpy(out, pkt, len);
        encore_rtp_set_payload_type(out, (uint8_t)red_pt);
        if (opus_pt != ENCORE_STAGE_PT_OPUS) {
            encore_rtp_header h;
            if (encore_rtp_parse(out, len, &h) == 0)
                encore_fanout_red_map_pts(out + h.payload_offset, h.payload_len,
                                          ENCORE_STAGE_PT_OPUS, (uint8_t)opus_pt);
        }
        return len;
    }
    if (red) {
        if (!primary || !primary_len)
            return 0;
        pkt = primary;
        len = primary_len;
    }
    if (len > cap)
        return 0;
    memcpy(out, pkt, len);
    encore_rtp_set_payload_type(out, (uint8_t)opus_pt);
    return len;
}
