/* The room's outbound stage track: rewrites the current singer's RTP packets into one continuous
 * stream (stable SSRC, continuous sequence numbers and timestamps) and keeps the NACK packet cache.
 * One owner thread (the room's media worker) uses an encore_stage; it takes no locks and allocates
 * nothing per packet. */
#ifndef ENCORE_MEDIA_STAGE_H
#define ENCORE_MEDIA_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

/* Packet cache: slots indexed by output sequence number modulo the slot count (a power of two that
 * divides 65536, so the mapping survives wraparound), each holding a packet of up to MTU bytes. */
#define ENCORE_STAGE_CACHE_SLOTS 512
#define ENCORE_STAGE_CACHE_MTU 1500
/* A packet more than this many sequence numbers behind the source's highest one is refused. */
#define ENCORE_STAGE_MAX_AGE 1000
/* After this many consecutive packets of the current source refused as too old (more than
 * MAX_AGE behind, or before its first packet), the sender is taken to have restarted its sequence
 * numbers: the next such packet is treated as the first of a new source. Duplicates do not
 * count. */
#define ENCORE_STAGE_RESYNC_AFTER 50

typedef struct encore_stage encore_stage;

/* Creates a stage track sending with SSRC out_ssrc at clock_rate Hz (48000 for Opus). Allocates the
 * packet cache once. Returns NULL when clock_rate is 0 or above 1000000. Free with
 * encore_stage_free. */
encore_stage *encore_stage_new(uint32_t out_ssrc, uint32_t clock_rate) G_GNUC_WARN_UNUSED_RESULT;

/* Frees the stage and its cache. NULL is ignored. */
void encore_stage_free(encore_stage *st);

/* Selects the SSRC whose packets go on stage (0: nobody). Selecting the current source again
 * changes nothing; any other value makes the next accepted packet the first of a new source. */
void encore_stage_set_source(encore_stage *st, uint32_t in_ssrc);

/* The SSRC currently selected (0: nobody). */
uint32_t encore_stage_source(const encore_stage *st);

/* Rewrites the decrypted RTP packet pkt[0..len) in place for listeners: SSRC -> out_ssrc,
 * sequence number and timestamp -> the continuous output numbering, and on the first packet of a
 * source the marker bit is set (a new talkspurt for the listener's jitter buffer). Within one
 * source out = in + offset (mod 2^16 and 2^32), so reordered packets keep their spacing. The first
 * packet of a new source continues at the last output sequence number + 1 and the last output
 * timestamp + the wall time elapsed since that packet (now_us, any monotonic microsecond clock),
 * at least one 20 ms frame, so neither goes backwards for a listener. The very first source starts
 * at a random sequence number (1..32767) and timestamp. On success a copy of the rewritten packet
 * goes into the cache (packets larger than ENCORE_STAGE_CACHE_MTU are forwarded, not cached).
 * Returns 0 (forward the packet), or, leaving pkt unchanged:
 *   -EINVAL   pkt is not a valid RTP packet (or is RTCP);
 *   -ESRCH    no source is selected or the packet's SSRC is not the selected one;
 *   -EALREADY a duplicate, or too old: from before the source's first packet or more than
 *             ENCORE_STAGE_MAX_AGE behind its highest sequence number (see RESYNC_AFTER). */
int encore_stage_rewrite(encore_stage *st, uint8_t *pkt, size_t len,
                         int64_t now_us) G_GNUC_WARN_UNUSED_RESULT;

/* Looks up the cached packet with output sequence number seq, for a NACK. *pkt points into the
 * cache and stays valid until the next encore_stage_rewrite or encore_stage_free.
 * Returns 0, or -ENOENT when the packet is not cached (never sent, overwritten, too large, or more
 * than ENCORE_STAGE_CACHE_SLOTS behind the last output sequence number). */
int encore_stage_cache_get(encore_stage *st, uint16_t seq, const uint8_t **pkt,
                           size_t *len) G_GNUC_WARN_UNUSED_RESULT;

/* The RTP timestamp that corresponds to now_us on the output stream: the last output timestamp
 * plus the time elapsed since that packet, in clock units (capped at 2^31 - 1). This is the RTP
 * time to put in a sender report next to the NTP time of now_us. 0 before the first packet. */
uint32_t encore_stage_rtp_now(const encore_stage *st, int64_t now_us);

/* Packets and payload octets (header and padding excluded) forwarded so far, modulo 2^32, as a
 * sender report wants them. Either pointer may be NULL. */
void encore_stage_stats(const encore_stage *st, uint32_t *packets, uint32_t *octets);

/* The highest output sequence number so far, and the newest output timestamp (which follows the
 * packets that advance the sequence number but never moves backwards); 0 before the first
 * packet. */
uint16_t encore_stage_last_seq(const encore_stage *st);
uint32_t encore_stage_last_ts(const encore_stage *st);

/* Whether any packet has been forwarded yet. */
bool encore_stage_started(const encore_stage *st);

#endif
