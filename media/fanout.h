/* Payload-type mapping between a singer, the stage track and each listener: pure functions over
 * decrypted RTP packets, no allocation, no state. The stage track carries Opus as PT
 * ENCORE_STAGE_PT_OPUS and RED (RFC 2198) as ENCORE_STAGE_PT_RED whatever the singer negotiated;
 * each listener gets its own negotiated types, or the RED packet's primary block when it did not
 * negotiate RED. */
#ifndef ENCORE_MEDIA_FANOUT_H
#define ENCORE_MEDIA_FANOUT_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENCORE_STAGE_PT_OPUS 111
#define ENCORE_STAGE_PT_RED 63

/* Rewrites the block payload types of a RED payload from `from` to `to`, in place. Stops at the
 * end of the block headers or of `len`. */
void encore_fanout_red_map_pts(uint8_t *payload, size_t len, uint8_t from, uint8_t to);

/* Maps a singer's packet (pkt, len bytes, a valid RTP packet) to the stage's payload types in
 * place: `opus_pt` -> ENCORE_STAGE_PT_OPUS, `red_pt` (-1: none) -> ENCORE_STAGE_PT_RED with the
 * blocks inside mapped too. Returns 0, or -EPROTONOSUPPORT for any other payload type (comfort
 * noise, DTMF, ...: not forwarded), -EINVAL when pkt is not RTP. */
int encore_fanout_to_stage(uint8_t *pkt, size_t len, int opus_pt,
                           int red_pt) G_GNUC_WARN_UNUSED_RESULT;

/* Makes the Opus-only form of a RED stage packet in `out` (capacity `cap`): the same header
 * without padding, the primary block as the payload, PT ENCORE_STAGE_PT_OPUS. Returns its length,
 * or 0 when pkt is not RTP, not valid RED, or does not fit. */
size_t encore_fanout_red_to_primary(const uint8_t *pkt, size_t len, uint8_t *out, size_t cap);

/* Writes a listener's copy of a stage packet into `out` (capacity `cap`) using the listener's
 * payload types (`opus_pt`; `red_pt` -1 when it did not negotiate RED). `primary` is the packet's
 * Opus-only form from encore_fanout_red_to_primary() (NULL/0 when not RED or not made). Returns
 * the copy's length, or 0 when there is nothing this listener can be sent. */
size_t encore_fanout_listener_copy(const uint8_t *pkt, size_t len, const uint8_t *primary,
                                   size_t primary_len, int opus_pt, int red_pt, uint8_t *out,
                                   size_t cap);

#endif
