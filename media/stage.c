/* The stage track rewriter: maps the current singer's sequence numbers and timestamps onto the
 * room's one continuous outbound stream and caches the rewritten packets for NACKs.
 * Runs on the room's media worker thread only; no locks, no allocation after encore_stage_new. */
#include "media/stage.h"

#include "media/pktcache.h"

#include <errno.h>
#include <string.h>

#include "media/rtp.h"

/* Bits of the duplicate window; covers MAX_AGE so every packet young enough is checked. */
#define WINDOW_BITS 1024
/* Elapsed time is capped here before converting to clock units (about 27.8 hours). */
#define MAX_ELAPSED_US 100000000000LL

G_STATIC_ASSERT(ENCORE_STAGE_MAX_AGE < WINDOW_BITS);
G_STATIC_ASSERT((ENCORE_STAGE_CACHE_SLOTS & (ENCORE_STAGE_CACHE_SLOTS - 1)) == 0);
G_STATIC_ASSERT(65536 % ENCORE_STAGE_CACHE_SLOTS == 0);
G_STATIC_ASSERT(ENCORE_STAGE_CACHE_MTU <= UINT16_MAX);

struct encore_stage {
    uint32_t out_ssrc;
    uint32_t clock_rate;

    /* The current source. Offsets map its numbering onto the output: out = in + offset. */
    uint32_t src_ssrc; /* 0: nobody */
    bool src_started;  /* its first packet was accepted and the offsets are set */
    uint16_t seq_off;
    uint32_t ts_off;
    uint16_t src_max_seq; /* highest input sequence number accepted */
    int64_t src_max_idx;  /* its index counted from the source's first packet (0) */
    unsigned src_refused; /* consecutive packets refused as too old, for RESYNC_AFTER */
    /* Bit (idx % WINDOW_BITS) is set when the packet with that index was accepted; bits for
     * indexes in (src_max_idx - WINDOW_BITS, src_max_idx] are exact. */
    uint64_t seen[WINDOW_BITS / 64];

    /* The output stream. */
    bool started;      /* a packet was forwarded */
    uint16_t last_seq; /* highest output sequence number */
    uint32_t last_ts;  /* newest output timestamp */
    int64_t last_us;   /* when last_ts was sent */
    uint32_t packets;
    uint32_t octets;

    encore_pktcache *cache; /* the rewritten packets, for NACKs */
};

encore_stage *encore_stage_new(uint32_t out_ssrc, uint32_t clock_rate)
{
    if (clock_rate == 0 || clock_rate > 1000000)
        return NULL;
    encore_stage *st = g_new0(encore_stage, 1);
    st->out_ssrc = out_ssrc;
    st->clock_rate = clock_rate;
    st->cache = encore_pktcache_new(ENCORE_STAGE_CACHE_SLOTS);
    return st;
}

void encore_stage_free(encore_stage *st)
{
    if (!st)
        return;
    encore_pktcache_free(st->cache);
    g_free(st);
}

void encore_stage_set_source(encore_stage *st, uint32_t in_ssrc)
{
    if (in_ssrc == st->src_ssrc)
        return;
    st->src_ssrc = in_ssrc;
    st->src_started = false;
}

uint32_t encore_stage_source(const encore_stage *st)
{
    return st->src_ssrc;
}

/* Wall time since the last output packet in clock units, 0..INT32_MAX. */
static uint32_t elapsed_ticks(const encore_stage *st, int64_t now_us)
{
    if (now_us <= st->last_us)
        return 0;
    int64_t d = now_us - st->last_us;
    if (d > MAX_ELAPSED_US)
        d = MAX_ELAPSED_US;
    int64_t ticks = d * (int64_t)st->clock_rate / 1000000;
    return ticks > INT32_MAX ? INT32_MAX : (uint32_t)ticks;
}

static void window_clear(encore_stage *st)
{
    memset(st->seen, 0, sizeof st->seen);
}

static bool window_test(const encore_stage *st, int64_t idx)
{
    uint64_t i = (uint64_t)idx % WINDOW_BITS;
    return (st->seen[i / 64] >> (i % 64)) & 1;
}

static void window_set(encore_stage *st, int64_t idx)
{
    uint64_t i = (uint64_t)idx % WINDOW_BITS;
    st->seen[i / 64] |= (uint64_t)1 << (i % 64);
}

/* Sets the offsets so that this first packet of the source continues the output stream. */
static void source_start(encore_stage *st, const encore_rtp_header *h, int64_t now_us)
{
    uint16_t out_seq;
    uint32_t out_ts;
    if (!st->started) {
        /* Below 2^15 like libwebrtc: an SRTP receiver meets no wrap in its first packets. */
        out_seq = (uint16_t)g_random_int_range(1, 32768);
        out_ts = g_random_int();
    } else {
        uint32_t frame = st->clock_rate / 50 ? st->clock_rate / 50 : 1;
        uint32_t ticks = elapsed_ticks(st, now_us);
        out_seq = (uint16_t)(st->last_seq + 1);
        out_ts = st->last_ts + (ticks > frame ? ticks : frame);
    }
    st->seq_off = (uint16_t)(out_seq - h->seq);
    st->ts_off = out_ts - h->timestamp;
    st->src_max_seq = h->seq;
    st->src_max_idx = 0;
    st->src_refused = 0;
    st->src_started = true;
    window_clear(st);
    window_set(st, 0);
}

/* Decides whether a packet of the started source is new. Returns 1 when it is the new highest
 * (*advance set), 0 when it is an older packet not seen before, -EALREADY when it is a duplicate or
 * too old, and 2 when the source must be restarted (RESYNC_AFTER). */
static int source_accept(encore_stage *st, uint16_t seq, bool *advance)
{
    int16_t d = (int16_t)(uint16_t)(seq - st->src_max_seq);
    *advance = false;
    if (d > 0) {
        int64_t idx = st->src_max_idx + d;
        if (d >= WINDOW_BITS) {
            window_clear(st);
        } else {
            for (int64_t i = st->src_max_idx + 1; i < idx; i++) {
                uint64_t b = (uint64_t)i % WINDOW_BITS;
                st->seen[b / 64] &= ~((uint64_t)1 << (b % 64));
            }
        }
        window_set(st, idx);
        st->src_max_idx = idx;
        st->src_max_seq = seq;
        st->src_refused = 0;
        *advance = true;
        return 1;
    }
    int64_t idx = st->src_max_idx + d;
    if (-(int32_t)d > ENCORE_STAGE_MAX_AGE || idx < 0) {
        if (++st->src_refused >= ENCORE_STAGE_RESYNC_AFTER)
            return 2;
        return -EALREADY;
    }
    if (window_test(st, idx))
        return -EALREADY;
    window_set(st, idx);
    st->src_refused = 0;
    return 0;
}

int encore_stage_rewrite(encore_stage *st, uint8_t *pkt, size_t len, int64_t now_us)
{
    encore_rtp_header h;
    if (!st || encore_rtp_parse(pkt, len, &h) != 0 || encore_rtp_is_rtcp(pkt, len))
        return -EINVAL;
    if (st->src_ssrc == 0 || h.ssrc != st->src_ssrc)
        return -ESRCH;

    bool first = !st->src_started;
    bool advance = true;
    if (!first) {
        int rc = source_accept(st, h.seq, &advance);
        if (rc < 0)
            return rc;
        if (rc == 2)
            first = true;
    }
    if (first)
        source_start(st, &h, now_us);

    uint16_t out_seq = (uint16_t)(h.seq + st->seq_off);
    uint32_t out_ts = h.timestamp + st->ts_off;
    encore_rtp_set_ssrc(pkt, st->out_ssrc);
    encore_rtp_set_seq(pkt, out_seq);
    encore_rtp_set_timestamp(pkt, out_ts);
    if (first)
        encore_rtp_set_marker(pkt, true);

    if (first || advance) {
        st->last_seq = out_seq;
        /* The timestamp never moves backwards, even if a sender's does. */
        if (first || (int32_t)(out_ts - st->last_ts) >= 0) {
            st->last_ts = out_ts;
            st->last_us = now_us;
        }
    }
    st->started = true;
    st->packets++;
    st->octets += (uint32_t)h.payload_len;
    encore_pktcache_put(st->cache, out_seq, pkt, len);
    return 0;
}

int encore_stage_cache_get(encore_stage *st, uint16_t seq, const uint8_t **pkt, size_t *len)
{
    return encore_pktcache_get(st->cache, seq, pkt, len);
}

uint32_t encore_stage_rtp_now(const encore_stage *st, int64_t now_us)
{
    if (!st->started)
        return 0;
    return st->last_ts + elapsed_ticks(st, now_us);
}

void encore_stage_stats(const encore_stage *st, uint32_t *packets, uint32_t *octets)
{
    if (packets)
        *packets = st->packets;
    if (octets)
        *octets = st->octets;
}

uint16_t encore_stage_last_seq(const encore_stage *st)
{
    return st->last_seq;
}

uint32_t encore_stage_last_ts(const encore_stage *st)
{
    return st->last_ts;
}

bool encore_stage_started(const encore_stage *st)
{
    return st->started;
}
