/* The SFU room: owns the peers of one room, its stage track and one shard per media worker. The
 * home worker runs the singers, the stage and its NACK cache; each shard's listeners, SR timer
 * and small NACK cache belong to that shard's worker, fed by a lock-free ring from the home.
 * The main thread places peers and talks to the workers only through queued tasks and events.
 * The per-packet path allocates, locks and logs nothing. */
#define G_LOG_DOMAIN "encore-room"
#include "config.h"

#include "media/room.h"

#include <errno.h>
#include <string.h>

#include "media/fanout.h"
#include "media/peer.h"
#include "media/pktcache.h"
#include "media/ring.h"
#include "media/rtcp.h"
#include "media/rtp.h"
#include "media/sdp.h"
#include "media/stage.h"

#define CLOCK_RATE 48000
/* Each non-home shard's ring: slots of a header plus a packet as large as a peer receives. */
#define RING_SLOTS 256
/* A shard's own NACK cache: about 2.5 s of 20 ms packets, enough for a few round trips. */
#define SHARD_CACHE_SLOTS 128
/* Stage packets a shard takes from its ring per dispatch, so ICE and timers keep their turn. */
#define DRAIN_BUDGET 64

G_STATIC_ASSERT((SHARD_CACHE_SLOTS & (SHARD_CACHE_SLOTS - 1)) == 0);
G_STATIC_ASSERT(65536 % SHARD_CACHE_SLOTS == 0);

typedef struct rpeer rpeer;
typedef struct shard shard;

/* Receive statistics of one singer's stream, for the RRs we send back (RFC 3550 A.1, A.8). */
typedef struct {
    bool started;
    uint16_t max_seq;
    uint32_t cycles;
    uint32_t base_seq;
    uint32_t received;
    uint32_t expected_prior;
    uint32_t received_prior;
    uint32_t transit;
    double jitter;
    uint32_t lsr;      /* middle 32 bits of the singer's last SR */
    int64_t lsr_at_us; /* when it arrived */
} recv_stats;

/* One peer, owned by its shard's worker. */
struct rpeer {
    uint64_t id;
    encore_media_dir dir;
    encore_media_room *room;
    shard *shard;
    encore_peer *peer;
    uint64_t seq; /* placement sequence number of the last offer applied (see placement) */
    bool connected;
    bool listening; /* in shard->listeners */
    /* payload types negotiated with this peer (-1: none) */
    int opus_pt;
    int red_pt;
    /* listener: what we sent, for its SRs, and what its RRs said */
    uint32_t packets_sent;
    uint32_t octets_sent;
    bool have_rr;
    int32_t rr_cumulative_lost;
    uint32_t rr_jitter;
    uint32_t rtt_ms; /* from LSR/DLSR of its last RR, 0 until known */
    /* singer */
    uint32_t in_ssrc;
    recv_stats rs;
};

/* What the home worker puts in front of each stage packet in a shard's ring. */
typedef struct {
    int64_t now_us;   /* the home's monotonic clock when the packet was rewritten */
    uint32_t rtp_now; /* the stage's RTP time at now_us: the SR clock mapping */
    uint32_t reserved;
} ring_hdr;

/* The part of a room that lives on one worker. Created with the room; everything below `peers`
 * is touched only by that worker's thread (the ring has one producer, the home worker, and one
 * consumer, this shard's worker). */
struct shard {
    encore_media_room *room;
    encore_worker *worker;
    int index;
    bool home;
    /* The worker's ICE-lite transport (NULL: listeners use libnice): listeners' packets are
     * batched there and flushed once per stage packet, ring drain or report round. */
    encore_icelite *lite;
    /* Packets from the home worker (atomic pointer): made by this shard's worker when its first
     * listener connects, kept until the room's last reference; NULL on the home shard and on
     * shards that never had a listener, so small rooms cost no ring memory. */
    encore_ring *ring;
    /* Connected listeners here, set by this worker, read by the home worker to skip idle
     * shards (atomic). */
    gint n_listeners;

    /* ---- this worker ---- */
    GHashTable *peers;    /* uint64 id -> rpeer placed here; NULL once destroyed */
    GPtrArray *listeners; /* connected listeners here, the fan-out list */
    GSource *report_timer;
    GSource *ring_source;
    /* Non-home shards: the stage clock as of the newest packet, for SRs. */
    bool have_clock;
    int64_t clock_us;
    uint32_t clock_rtp;
    /* Non-home shards: the stage packets forwarded here, for NACKs (made with the ring). */
    encore_pktcache *cache;
};

/* Where the main thread put a peer id: its shard, direction, and the sequence number of the last
 * offer sent for it. A worker event saying the peer is gone forgets the placement only if no
 * later offer was sent (same sequence number), so a re-offer racing a close keeps its place. */
typedef struct {
    uint64_t id;
    int shard;
    encore_media_dir dir;
    uint64_t seq;
} placement;

struct encore_media_room {
    gint refcount;
    gint destroyed; /* atomic: set by free on the main thread */
    encore_media *media;
    GMainContext *main_ctx;
    encore_media_room_callbacks cb;
    void *user_data;
    char name[65];
    uint32_t out_ssrc;
    uint32_t rr_ssrc;
    uint64_t session_id;
    uint64_t answer_version; /* atomic: answers are built on every shard's worker */
    int n_shards;
    shard **shards; /* one per worker, by worker index */
    shard *home;

    /* ---- main thread ---- */
    GHashTable *placements; /* uint64 id -> placement */
    int *placed;            /* listeners placed per shard */
    uint64_t next_seq;

    /* ---- home worker ---- */
    uint64_t stage_id;
    rpeer *stage_peer;
    uint32_t stage_src; /* SSRC the stage currently follows */
    encore_stage *stage;
};

static void shard_free(shard *s)
{
    encore_ring_free(s->ring);
    encore_pktcache_free(s->cache);
    g_free(s);
}

static encore_media_room *room_ref(encore_media_room *r)
{
    g_atomic_int_inc(&r->refcount);
    return r;
}

static void room_unref(encore_media_room *r)
{
    if (!g_atomic_int_dec_and_test(&r->refcount))
        return;
    for (int i = 0; i < r->n_shards; i++)
        shard_free(r->shards[i]);
    g_free(r->shards);
    g_free(r);
}

/* ---- events to the main thread ----------------------------------------------------------- */

typedef enum { EV_ANSWER, EV_CANDIDATE, EV_CONNECTED, EV_CLOSED } event_kind;

typedef struct {
    encore_media_room *room;
    event_kind kind;
    uint64_t peer_id;
    uint64_t seq; /* the peer's placement sequence number as the worker knew it */
    bool gone;    /* the shard holds no peer for this id any more */
    char *a;      /* sdp / candidate / reason */
    char *code;
    char *message;
} room_event;

static void event_free(gpointer data)
{
    room_event *e = data;
    room_unref(e->room);
    g_free(e->a);
    g_free(e->code);
    g_free(e->message);
    g_free(e);
}

static void placement_forget(encore_media_room *r, placement *pl)
{
    if (pl->dir == ENCORE_MEDIA_SUBSCRIBE)
        r->placed[pl->shard]--;
    g_hash_table_remove(r->placements, &pl->id);
}

static gboolean event_dispatch(gpointer data)
{
    room_event *e = data;
    encore_media_room *r = e->room;
    if (g_atomic_int_get(&r->destroyed))
        return G_SOURCE_REMOVE;
    if (e->gone) {
        placement *pl = g_hash_table_lookup(r->placements, &e->peer_id);
        if (pl && pl->seq == e->seq)
            placement_forget(r, pl);
    }
    switch (e->kind) {
    case EV_ANSWER:
        if (r->cb.answer)
            r->cb.answer(e->peer_id, e->a, e->code, e->message, r->user_data);
        break;
    case EV_CANDIDATE:
        if (r->cb.candidate)
            r->cb.candidate(e->peer_id, e->a, r->user_data);
        break;
    case EV_CONNECTED:
        if (r->cb.connected)
            r->cb.connected(e->peer_id, r->user_data);
        break;
    case EV_CLOSED:
        if (r->cb.closed)
            r->cb.closed(e->peer_id, e->a, r->user_data);
        break;
    }
    return G_SOURCE_REMOVE;
}

/* Queues an event for the main context from any thread, the main thread included (always from an
 * idle source, so that no callback runs inside an API call). */
static void post_event(encore_media_room *r, event_kind kind, uint64_t peer_id, uint64_t seq,
                       bool gone, const char *a, const char *code, const char *message)
{
    room_event *e = g_new0(room_event, 1);
    e->room = room_ref(r);
    e->kind = kind;
    e->peer_id = peer_id;
    e->seq = seq;
    e->gone = gone;
    e->a = g_strdup(a);
    e->code = g_strdup(code);
    e->message = g_strdup(message);
    GSource *src = g_idle_source_new();
    g_source_set_callback(src, event_dispatch, e, event_free);
    g_source_attach(src, r->main_ctx);
    g_source_unref(src);
}

/* ---- per-shard NACK cache (non-home shards) ---------------------------------------------- */

static void cache_put(shard *s, const uint8_t *pkt, size_t len)
{
    if (len >= 12)
        encore_pktcache_put(s->cache, (uint16_t)(pkt[2] << 8 | pkt[3]), pkt, len);
}

static int cache_get(shard *s, uint16_t seq, const uint8_t **pkt, size_t *len)
{
    if (s->home)
        return encore_stage_cache_get(s->room->stage, seq, pkt, len);
    return encore_pktcache_get(s->cache, seq, pkt, len);
}

/* ---- the fan-out ------------------------------------------------------------------------- */

/* Sends what the shard's listeners were given since the last flush (one sendmmsg per socket). */
static void shard_flush(shard *s)
{
    if (s->lite)
        encore_icelite_flush(s->lite);
}

/* Sends one stage packet to every connected listener of the shard (queued in the send batch for
 * ICE-lite listeners: the caller flushes). Shard's worker only. */
static void send_to_listeners(shard *s, const uint8_t *pkt, size_t len)
{
    if (!s->listeners || s->listeners->len == 0)
        return;
    encore_worker_stats *st = encore_worker_stats_of(s->worker);
    uint8_t primary[ENCORE_PEER_BUF];
    size_t primary_len = 0;
    if ((pkt[1] & 0x7f) == ENCORE_STAGE_PT_RED)
        primary_len = encore_fanout_red_to_primary(pkt, len, primary, sizeof primary);
    uint8_t buf[ENCORE_PEER_BUF];
    uint64_t sent = 0, bytes = 0;
    for (guint i = 0; i < s->listeners->len; i++) {
        rpeer *l = g_ptr_array_index(s->listeners, i);
        /* The copy leaves room for the SRTP trailer. */
        size_t n = encore_fanout_listener_copy(pkt, len, primary, primary_len, l->opus_pt,
                                               l->red_pt, buf, sizeof buf - 64);
        if (n == 0)
            continue;
        if (encore_peer_send_rtp(l->peer, buf, n, sizeof buf) == 0) {
            sent++;
            bytes += n;
            l->packets_sent++;
            l->octets_sent += (uint32_t)(n - 12);
        }
    }
    ENCORE_STAT_ADD(st, rtp_out, sent);
    ENCORE_STAT_ADD(st, bytes_out, bytes);
}

/* Home worker: the home shard's listeners directly, one ring slot and one wake-up for every other
 * shard that has listeners. A full ring drops the packet for that shard only. */
static void fan_out(encore_media_room *r, const uint8_t *pkt, size_t len, int64_t now)
{
    send_to_listeners(r->home, pkt, len);
    if (r->n_shards == 1)
        return;
    encore_worker_stats *st = encore_worker_stats_of(r->home->worker);
    ring_hdr h = {.now_us = now, .rtp_now = encore_stage_rtp_now(r->stage, now)};
    for (int i = 0; i < r->n_shards; i++) {
        shard *s = r->shards[i];
        if (s == r->home || g_atomic_int_get(&s->n_listeners) == 0)
            continue;
        encore_ring *ring = g_atomic_pointer_get(&s->ring); /* set before n_listeners */
        uint8_t *slot = ring ? encore_ring_reserve(ring) : NULL;
        if (!slot) {
            ENCORE_STAT_ADD(st, drop_ring_full, 1);
            continue;
        }
        memcpy(slot, &h, sizeof h);
        memcpy(slot + sizeof h, pkt, len);
        encore_ring_commit(ring, sizeof h + len);
        g_main_context_wakeup(encore_worker_context(s->worker));
    }
}

/* Shard's worker: takes what the home worker queued and sends it to this shard's listeners. */
static void shard_drain(shard *s)
{
    for (int i = 0; i < DRAIN_BUDGET; i++) {
        size_t len;
        const uint8_t *slot = encore_ring_peek(s->ring, &len);
        if (!slot)
            break;
        if (len >= sizeof(ring_hdr) + 12) {
            ring_hdr h;
            memcpy(&h, slot, sizeof h);
            const uint8_t *pkt = slot + sizeof h;
            size_t n = len - sizeof h;
            s->have_clock = true;
            s->clock_us = h.now_us;
            s->clock_rtp = h.rtp_now;
            cache_put(s, pkt, n);
            send_to_listeners(s, pkt, n);
        }
        encore_ring_release(s->ring);
    }
    shard_flush(s);
}

/* A GSource that is ready while the shard's ring holds packets; the home worker's
 * g_main_context_wakeup() makes the shard's poll return so that check() looks. */
typedef struct {
    GSource base;
    shard *shard;
} ring_source;

static gboolean ring_prepare(GSource *src, gint *timeout)
{
    *timeout = -1;
    return !encore_ring_is_empty(((ring_source *)src)->shard->ring);
}

static gboolean ring_check(GSource *src)
{
    return !encore_ring_is_empty(((ring_source *)src)->shard->ring);
}

static gboolean ring_dispatch(GSource *src, GSourceFunc callback, gpointer user_data)
{
    shard_drain(((ring_source *)src)->shard);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs ring_source_funcs = {
    .prepare = ring_prepare,
    .check = ring_check,
    .dispatch = ring_dispatch,
};

static void recv_stats_update(recv_stats *rs, const encore_rtp_header *h, int64_t now_us)
{
    uint32_t arrival = (uint32_t)(now_us * (CLOCK_RATE / 1000) / 1000);
    if (!rs->started) {
        rs->started = true;
        rs->max_seq = h->seq;
        rs->base_seq = h->seq;
        rs->transit = arrival - h->timestamp;
        rs->received = 1;
        return;
    }
    uint16_t udelta = (uint16_t)(h->seq - rs->max_seq);
    if (udelta < 3000) {
        if (h->seq < rs->max_seq)
            rs->cycles += 65536;
        rs->max_seq = h->seq;
    }
    rs->received++;
    uint32_t transit = arrival - h->timestamp;
    int32_t d = (int32_t)(transit - rs->transit);
    rs->transit = transit;
    if (d < 0)
        d = -d;
    rs->jitter += (1.0 / 16.0) * ((double)d - rs->jitter);
}

/* Home worker: a singer's packet. */
static void on_singer_rtp(rpeer *s, uint8_t *pkt, size_t len)
{
    encore_media_room *r = s->room;
    encore_worker_stats *st = encore_worker_stats_of(r->home->worker);
    encore_rtp_header h;
    if (encore_rtp_parse(pkt, len, &h) != 0) {
        ENCORE_STAT_ADD(st, drop_malformed, 1);
        return;
    }
    int64_t now = g_get_monotonic_time();
    s->in_ssrc = h.ssrc;
    recv_stats_update(&s->rs, &h, now);
    if (s != r->stage_peer) {
        ENCORE_STAT_ADD(st, drop_standby, 1);
        return;
    }
    if (h.extension) {
        len = encore_rtp_strip_extension(pkt, len);
        if (encore_rtp_parse(pkt, len, &h) != 0) {
            ENCORE_STAT_ADD(st, drop_malformed, 1);
            return;
        }
    }
    if (encore_fanout_to_stage(pkt, len, s->opus_pt, s->red_pt) != 0) {
        ENCORE_STAT_ADD(st, drop_malformed, 1);
        return;
    }
    if (h.ssrc != r->stage_src) {
        encore_stage_set_source(r->stage, h.ssrc);
        r->stage_src = h.ssrc;
    }
    if (encore_stage_rewrite(r->stage, pkt, len, now) != 0) {
        ENCORE_STAT_ADD(st, drop_stage, 1);
        return;
    }
    ENCORE_STAT_ADD(st, rtp_forwarded, 1);
    fan_out(r, pkt, len, now);
    shard_flush(r->home);
}

/* Listener's worker: answers a NACK from the shard's cache. */
static void retransmit(rpeer *l, uint16_t seq)
{
    const uint8_t *pkt;
    size_t len;
    if (cache_get(l->shard, seq, &pkt, &len) != 0)
        return;
    uint8_t primary[ENCORE_PEER_BUF], buf[ENCORE_PEER_BUF];
    size_t primary_len = 0;
    if ((pkt[1] & 0x7f) == ENCORE_STAGE_PT_RED)
        primary_len = encore_fanout_red_to_primary(pkt, len, primary, sizeof primary);
    size_t n = encore_fanout_listener_copy(pkt, len, primary, primary_len, l->opus_pt, l->red_pt,
                                           buf, sizeof buf - 64);
    if (n && encore_peer_send_rtp(l->peer, buf, n, sizeof buf) == 0)
        ENCORE_STAT_ADD(encore_worker_stats_of(l->shard->worker), retransmits, 1);
}

static void on_peer_rtcp(encore_peer *peer, const uint8_t *pkt, size_t len, void *user_data)
{
    rpeer *p = user_data;
    encore_worker_stats *st = encore_worker_stats_of(p->shard->worker);
    uint32_t out_ssrc = p->room->out_ssrc;
    encore_rtcp_info info;
    if (encore_rtcp_parse(pkt, len, &info) != 0) {
        ENCORE_STAT_ADD(st, drop_malformed, 1);
        return;
    }
    if (p->dir == ENCORE_MEDIA_PUBLISH) {
        if (info.has_sr) {
            p->rs.lsr = encore_ntp_middle32(info.sr_ntp);
            p->rs.lsr_at_us = g_get_monotonic_time();
        }
        return;
    }
    for (size_t i = 0; i < info.n_reports; i++) {
        const encore_rtcp_report_block *rb = &info.reports[i];
        if (rb->ssrc != out_ssrc)
            continue;
        ENCORE_STAT_ADD(st, rr_in, 1);
        if (p->have_rr && rb->cumulative_lost > p->rr_cumulative_lost)
            ENCORE_STAT_ADD(st, listener_lost,
                            (uint64_t)(rb->cumulative_lost - p->rr_cumulative_lost));
        p->have_rr = true;
        p->rr_cumulative_lost = rb->cumulative_lost;
        p->rr_jitter = rb->jitter;
        if (rb->lsr) {
            uint32_t now = encore_ntp_middle32(encore_ntp_from_unix_us(g_get_real_time()));
            uint32_t rtt = now - rb->lsr - rb->dlsr; /* 1/65536 s */
            if (rtt < 65536u * 10)
                p->rtt_ms = (uint32_t)((uint64_t)rtt * 1000 / 65536);
        }
    }
    if (info.n_nacks > 0 && p->listening && info.nack_ssrc == out_ssrc) {
        ENCORE_STAT_ADD(st, nack_in, info.n_nacks);
        for (size_t i = 0; i < info.n_nacks; i++)
            retransmit(p, info.nacks[i]);
        shard_flush(p->shard);
    }
}

static void on_peer_rtp(encore_peer *peer, uint8_t *pkt, size_t len, void *user_data)
{
    rpeer *p = user_data;
    if (p->dir == ENCORE_MEDIA_PUBLISH)
        on_singer_rtp(p, pkt, len);
    /* A listener's RTP (it should send none) is dropped. */
}

/* ---- reports ----------------------------------------------------------------------------- */

static void send_rr(encore_media_room *r, rpeer *s, int64_t now)
{
    recv_stats *rs = &s->rs;
    if (!rs->started)
        return;
    uint32_t ext_max = rs->cycles + rs->max_seq;
    uint32_t expected = ext_max - rs->base_seq + 1;
    int64_t lost = (int64_t)expected - rs->received;
    if (lost > 0x7fffff)
        lost = 0x7fffff;
    if (lost < -0x800000)
        lost = -0x800000;
    uint32_t expected_interval = expected - rs->expected_prior;
    uint32_t received_interval = rs->received - rs->received_prior;
    rs->expected_prior = expected;
    rs->received_prior = rs->received;
    int64_t lost_interval = (int64_t)expected_interval - received_interval;
    uint8_t fraction = 0;
    if (expected_interval && lost_interval > 0)
        fraction = (uint8_t)((lost_interval << 8) / expected_interval);
    encore_rtcp_report_block rb = {
        .ssrc = s->in_ssrc,
        .fraction_lost = fraction,
        .cumulative_lost = (int32_t)lost,
        .highest_seq = ext_max,
        .jitter = (uint32_t)rs->jitter,
        .lsr = rs->lsr,
        .dlsr = rs->lsr ? (uint32_t)((now - rs->lsr_at_us) * 65536 / G_USEC_PER_SEC) : 0,
    };
    uint8_t buf[ENCORE_PEER_BUF];
    size_t n = encore_rtcp_build_rr(buf, sizeof buf - 64, r->rr_ssrc, &rb, "encore");
    if (n)
        (void)encore_peer_send_rtcp(s->peer, buf, n, sizeof buf);
}

/* The stage's RTP time at now_us as this shard knows it: from the stage itself on the home
 * worker, from the clock mapping carried with the newest ring packet elsewhere. */
static bool shard_rtp_now(shard *s, int64_t now, uint32_t *rtp_now)
{
    if (s->home) {
        if (!encore_stage_started(s->room->stage))
            return false;
        *rtp_now = encore_stage_rtp_now(s->room->stage, now);
        return true;
    }
    if (!s->have_clock)
        return false;
    int64_t d = now > s->clock_us ? now - s->clock_us : 0;
    if (d > 100000000000LL)
        d = 100000000000LL;
    int64_t ticks = d * CLOCK_RATE / 1000000;
    *rtp_now = s->clock_rtp + (ticks > INT32_MAX ? INT32_MAX : (uint32_t)ticks);
    return true;
}

/* Shard's worker: SRs to its listeners; on the home worker also RRs to the singers. */
static gboolean report_timer_cb(gpointer data)
{
    shard *s = data;
    encore_media_room *r = s->room;
    int64_t now = g_get_monotonic_time();
    uint64_t ntp = encore_ntp_from_unix_us(g_get_real_time());
    uint32_t rtp_now;
    if (shard_rtp_now(s, now, &rtp_now)) {
        uint8_t buf[ENCORE_PEER_BUF];
        for (guint i = 0; i < s->listeners->len; i++) {
            rpeer *l = g_ptr_array_index(s->listeners, i);
            if (!l->packets_sent)
                continue;
            size_t n = encore_rtcp_build_sr(buf, sizeof buf - 64, r->out_ssrc, ntp, rtp_now,
                                            l->packets_sent, l->octets_sent, "encore");
            if (n)
                (void)encore_peer_send_rtcp(l->peer, buf, n, sizeof buf);
        }
        shard_flush(s);
    }
    if (!s->home)
        return G_SOURCE_CONTINUE;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, s->peers);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        rpeer *p = value;
        if (p->dir == ENCORE_MEDIA_PUBLISH && p->connected)
            send_rr(r, p, now);
    }
    return G_SOURCE_CONTINUE;
}

/* ---- peers ------------------------------------------------------------------------------- */

static void listener_remove(shard *s, rpeer *p)
{
    if (p->listening) {
        g_ptr_array_remove_fast(s->listeners, p);
        p->listening = false;
        g_atomic_int_set(&s->n_listeners, (gint)s->listeners->len);
    }
}

static void rpeer_free(gpointer data)
{
    rpeer *p = data;
    listener_remove(p->shard, p);
    if (p->shard->home && p->room->stage_peer == p)
        p->room->stage_peer = NULL;
    encore_peer_free(p->peer);
    g_free(p);
}

static void on_peer_candidate(encore_peer *peer, const char *cand, void *user_data)
{
    rpeer *p = user_data;
    post_event(p->room, EV_CANDIDATE, p->id, p->seq, false, cand, NULL, NULL);
}

/* Shard's worker, non-home shard: the ring from the home worker, its source and the NACK cache,
 * made once, when the first listener connects. The pointer is published before any listener is
 * counted, so the home worker finds the ring whenever it sees listeners. */
static void shard_open_ring(shard *s)
{
    if (s->home || s->ring)
        return;
    s->cache = encore_pktcache_new(SHARD_CACHE_SLOTS);
    s->ring_source = g_source_new(&ring_source_funcs, sizeof(ring_source));
    ((ring_source *)s->ring_source)->shard = s;
    g_source_set_name(s->ring_source, "encore-room-ring");
    encore_ring *ring = encore_ring_new(RING_SLOTS, sizeof(ring_hdr) + ENCORE_PEER_BUF);
    g_atomic_pointer_set(&s->ring, ring);
    g_source_attach(s->ring_source, encore_worker_context(s->worker));
}

static void on_peer_connected(encore_peer *peer, void *user_data)
{
    rpeer *p = user_data;
    shard *s = p->shard;
    p->connected = true;
    if (p->dir == ENCORE_MEDIA_SUBSCRIBE && !p->listening) {
        shard_open_ring(s);
        if (s->listeners->len == 0) {
            /* The home worker sent nothing while the shard had no listener: whatever the cache
             * holds is from an older part of the stream (perhaps a whole sequence number cycle
             * ago) and must not answer a NACK. */
            if (s->cache)
                encore_pktcache_clear(s->cache);
        }
        g_ptr_array_add(s->listeners, p);
        p->listening = true;
        g_atomic_int_set(&s->n_listeners, (gint)s->listeners->len);
    }
    post_event(p->room, EV_CONNECTED, p->id, p->seq, false, NULL, NULL, NULL);
}

static void on_peer_closed(encore_peer *peer, const char *reason, void *user_data)
{
    rpeer *p = user_data;
    encore_media_room *r = p->room;
    uint64_t id = p->id, seq = p->seq;
    g_hash_table_remove(p->shard->peers, &p->id); /* frees p and the peer */
    post_event(r, EV_CLOSED, id, seq, true, reason, NULL, NULL);
}

static const encore_peer_callbacks peer_callbacks = {
    .on_candidate = on_peer_candidate,
    .on_connected = on_peer_connected,
    .on_closed = on_peer_closed,
    .on_rtp = on_peer_rtp,
    .on_rtcp = on_peer_rtcp,
};

static char *build_answer(encore_media_room *r, const rpeer *p, const encore_sdp_offer *offer,
                          const encore_peer_local *local)
{
    const encore_media_config *cfg = encore_media_get_config(r->media);
    const char *cands[ENCORE_PEER_MAX_CANDIDATES];
    for (int i = 0; i < local->n_candidates; i++)
        cands[i] = local->candidates[i];
    encore_sdp_answer_params ap = {
        .send = p->dir == ENCORE_MEDIA_SUBSCRIBE,
        .ice_ufrag = local->ufrag,
        .ice_pwd = local->pwd,
        .fingerprint = encore_dtls_cert_fingerprint(encore_media_cert(r->media)),
        .session_id = r->session_id,
        .session_version = __atomic_add_fetch(&r->answer_version, 1, __ATOMIC_RELAXED),
        .ssrc = r->out_ssrc,
        .cname = "encore",
        .msid_stream = r->name,
        .msid_track = "stage",
        .opus_bitrate = cfg->opus_bitrate,
        .allow_red = true,
        .candidates = cands,
        .n_candidates = local->n_candidates,
        .end_of_candidates = true,
        .ip = cfg->ips[0],
        .ice_lite = encore_peer_is_lite(p->peer),
    };
    size_t cap = 8192, n = 0;
    char *buf = g_malloc(cap);
    if (encore_sdp_build_answer(offer, &ap, buf, cap, &n) != 0) {
        g_free(buf);
        return NULL;
    }
    return buf;
}

typedef enum {
    TASK_START,
    TASK_OFFER,
    TASK_CANDIDATE,
    TASK_CLOSE,
    TASK_STAGE,
    TASK_DESTROY
} task_kind;

typedef struct {
    encore_media_room *room;
    shard *shard;
    task_kind kind;
    uint64_t peer_id;
    uint64_t seq; /* TASK_OFFER: the placement's sequence number */
    encore_media_dir dir;
    char *str;
} room_task;

/* Shard's worker: an offer for a peer placed here. Always answers, with `gone` telling the main
 * thread whether a peer of this id still exists here afterwards. */
static void do_offer(shard *s, room_task *t)
{
    encore_media_room *r = s->room;
    encore_sdp_offer *offer = g_new0(encore_sdp_offer, 1);
    encore_peer_local *local = g_new0(encore_peer_local, 1);
    const char *why = NULL, *code = NULL, *message = NULL;
    char *sdp = NULL;
    GError *err = NULL;
    int rc = encore_sdp_parse_offer(t->str, strlen(t->str), offer, &why);
    if (rc == ENCORE_SDP_ERR_NO_OPUS) {
        code = "no_opus";
        message = why ? why : "the offer has no Opus/48000/2";
        goto out;
    }
    if (rc != 0) {
        code = "sdp_invalid";
        message = why ? why : "the offer could not be parsed";
        goto out;
    }
    bool wants_recv =
        offer->direction == ENCORE_SDP_RECVONLY || offer->direction == ENCORE_SDP_SENDRECV;
    bool wants_send =
        offer->direction == ENCORE_SDP_SENDONLY || offer->direction == ENCORE_SDP_SENDRECV;
    if (t->dir == ENCORE_MEDIA_SUBSCRIBE ? !wants_recv : !wants_send) {
        code = "sdp_invalid";
        message = t->dir == ENCORE_MEDIA_SUBSCRIBE
                      ? "a subscribe offer must receive audio (recvonly or sendrecv)"
                      : "a publish offer must send audio (sendonly or sendrecv)";
        goto out;
    }
    rpeer *p = g_hash_table_lookup(s->peers, &t->peer_id);
    if (p && p->dir != t->dir) {
        code = "internal";
        message = "peer id reused with another direction";
        goto out;
    }
    if (p && encore_peer_restart(p->peer, offer, local) != 0) {
        /* Another DTLS fingerprint: a new RTCPeerConnection, not an ICE restart. It replaces the
         * old peer under the same id (the listener keeps its place in the room). */
        g_hash_table_remove(s->peers, &t->peer_id);
        p = NULL;
    }
    if (!p) {
        const encore_media_config *cfg = encore_media_get_config(r->media);
        p = g_new0(rpeer, 1);
        p->id = t->peer_id;
        p->dir = t->dir;
        p->room = r;
        p->shard = s;
        p->seq = t->seq;
        encore_peer_env env = {
            .worker = s->worker,
            .cert = encore_media_cert(r->media),
            .ips = cfg->ips,
            .port_min = cfg->port_min,
            .port_max = cfg->port_max,
            .connect_timeout_s = cfg->connect_timeout_s,
            /* Listeners go on the worker's shared socket, unless the offerer is lite itself
             * (two lite agents cannot check each other: libnice then). */
            .lite = t->dir == ENCORE_MEDIA_SUBSCRIBE && !offer->ice_lite ? s->lite : NULL,
        };
        p->peer = encore_peer_new(&env, offer, &peer_callbacks, p, local, &err);
        if (!p->peer) {
            code = "internal";
            message = err ? err->message : "peer setup failed";
            g_free(p);
            goto out;
        }
        g_hash_table_insert(s->peers, &p->id, p);
        if (s->home && p->dir == ENCORE_MEDIA_PUBLISH && p->id == r->stage_id)
            r->stage_peer = p;
    }
    p->opus_pt = offer->opus_pt;
    p->red_pt = offer->red_pt;
    sdp = build_answer(r, p, offer, local);
    if (!sdp) {
        code = "internal";
        message = "the answer did not fit";
    }
out:;
    rpeer *cur = g_hash_table_lookup(s->peers, &t->peer_id);
    if (cur)
        cur->seq = t->seq;
    post_event(r, EV_ANSWER, t->peer_id, t->seq, cur == NULL, sdp, code, message);
    g_clear_error(&err);
    g_free(sdp);
    g_free(offer);
    g_free(local);
}

static void destroy_source(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

/* Shard's worker: the SR timer. */
static void do_start(shard *s)
{
    const encore_media_config *cfg = encore_media_get_config(s->room->media);
    s->report_timer = g_timeout_source_new((guint)cfg->sr_interval_ms);
    g_source_set_callback(s->report_timer, report_timer_cb, s, NULL);
    g_source_attach(s->report_timer, encore_worker_context(s->worker));
}

/* Shard's worker: closes every peer here and drops all of the shard's worker-side state. The
 * memory the home worker may still reach (the ring) lives until the room's last reference. */
static void do_destroy(shard *s)
{
    g_atomic_int_set(&s->n_listeners, 0);
    destroy_source(&s->report_timer);
    destroy_source(&s->ring_source);
    g_hash_table_destroy(s->peers);
    s->peers = NULL;
    g_ptr_array_free(s->listeners, TRUE);
    s->listeners = NULL;
    if (s->home) {
        encore_stage_free(s->room->stage);
        s->room->stage = NULL;
        s->room->stage_peer = NULL;
    }
}

static gboolean task_run(gpointer data)
{
    room_task *t = data;
    shard *s = t->shard;
    encore_media_room *r = t->room;
    if (!s->peers)
        return G_SOURCE_REMOVE; /* destroyed already */
    switch (t->kind) {
    case TASK_START:
        do_start(s);
        break;
    case TASK_OFFER:
        do_offer(s, t);
        break;
    case TASK_CANDIDATE: {
        rpeer *p = g_hash_table_lookup(s->peers, &t->peer_id);
        if (p)
            (void)encore_peer_add_remote_candidate(p->peer, t->str);
        break;
    }
    case TASK_CLOSE:
        g_hash_table_remove(s->peers, &t->peer_id);
        break;
    case TASK_STAGE: {
        r->stage_id = t->peer_id;
        rpeer *p = t->peer_id ? g_hash_table_lookup(s->peers, &t->peer_id) : NULL;
        r->stage_peer = p && p->dir == ENCORE_MEDIA_PUBLISH ? p : NULL;
        encore_stage_set_source(r->stage, 0);
        r->stage_src = 0;
        break;
    }
    case TASK_DESTROY:
        do_destroy(s);
        break;
    }
    return G_SOURCE_REMOVE;
}

static void task_free(gpointer data)
{
    room_task *t = data;
    room_unref(t->room);
    g_free(t->str);
    g_free(t);
}

static void post_task(shard *s, task_kind kind, uint64_t peer_id, uint64_t seq,
                      encore_media_dir dir, const char *str)
{
    room_task *t = g_new0(room_task, 1);
    t->room = room_ref(s->room);
    t->shard = s;
    t->kind = kind;
    t->peer_id = peer_id;
    t->seq = seq;
    t->dir = dir;
    t->str = g_strdup(str);
    encore_worker_invoke(s->worker, task_run, t, task_free);
}

/* ---- main-thread API --------------------------------------------------------------------- */

/* The shard with the fewest listeners placed; ties go to the home worker, then the ones after
 * it, so a small room stays on its home worker until it has more than one listener. */
static int pick_listener_shard(const encore_media_room *r)
{
    int best = r->home->index;
    for (int k = 1; k < r->n_shards; k++) {
        int i = (r->home->index + k) % r->n_shards;
        if (r->placed[i] < r->placed[best])
            best = i;
    }
    return best;
}

encore_media_room *encore_media_room_new(encore_media *media, const char *name,
                                         const encore_media_room_callbacks *cb, void *user_data)
{
    encore_workers *workers = encore_media_workers(media);
    encore_media_room *r = g_new0(encore_media_room, 1);
    r->refcount = 1;
    r->media = media;
    r->main_ctx = encore_media_main_context(media);
    r->cb = *cb;
    r->user_data = user_data;
    g_strlcpy(r->name, name, sizeof r->name);
    do {
        r->out_ssrc = g_random_int();
    } while (r->out_ssrc == 0);
    r->rr_ssrc = g_random_int() | 1;
    r->session_id = ((uint64_t)g_random_int() << 20) ^ g_random_int();
    r->stage = encore_stage_new(r->out_ssrc, CLOCK_RATE);
    r->placements = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);

    encore_worker *home = encore_workers_pick(workers, name);
    r->n_shards = encore_workers_count(workers);
    r->shards = g_new0(shard *, r->n_shards);
    r->placed = g_new0(int, r->n_shards);
    for (int i = 0; i < r->n_shards; i++) {
        shard *s = g_new0(shard, 1);
        s->room = r;
        s->worker = encore_workers_get(workers, i);
        s->index = i;
        s->home = s->worker == home;
        s->lite = encore_media_icelite(media, i);
        s->peers = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, rpeer_free);
        s->listeners = g_ptr_array_new();
        if (s->home)
            r->home = s;
        r->shards[i] = s;
    }
    for (int i = 0; i < r->n_shards; i++)
        post_task(r->shards[i], TASK_START, 0, 0, ENCORE_MEDIA_PUBLISH, NULL);
    return r;
}

void encore_media_room_free(encore_media_room *r)
{
    if (!r)
        return;
    g_atomic_int_set(&r->destroyed, 1);
    for (int i = 0; i < r->n_shards; i++)
        post_task(r->shards[i], TASK_DESTROY, 0, 0, ENCORE_MEDIA_PUBLISH, NULL);
    g_hash_table_destroy(r->placements);
    r->placements = NULL;
    g_free(r->placed);
    r->placed = NULL;
    room_unref(r);
}

void encore_media_room_offer(encore_media_room *r, uint64_t peer_id, encore_media_dir dir,
                             const char *sdp)
{
    placement *pl = g_hash_table_lookup(r->placements, &peer_id);
    if (pl && pl->dir != dir) {
        post_event(r, EV_ANSWER, peer_id, 0, false, NULL, "internal",
                   "peer id reused with another direction");
        return;
    }
    if (!pl) {
        const encore_media_config *cfg = encore_media_get_config(r->media);
        if ((int)g_hash_table_size(r->placements) >= cfg->max_peers_per_room) {
            post_event(r, EV_ANSWER, peer_id, 0, false, NULL, "room_full",
                       "this room holds as many peers as it may");
            return;
        }
        pl = g_new0(placement, 1);
        pl->id = peer_id;
        pl->dir = dir;
        if (dir == ENCORE_MEDIA_SUBSCRIBE) {
            pl->shard = pick_listener_shard(r);
            r->placed[pl->shard]++;
        } else {
            pl->shard = r->home->index; /* singers feed the stage on the home worker */
        }
        g_hash_table_insert(r->placements, &pl->id, pl);
    }
    pl->seq = ++r->next_seq;
    post_task(r->shards[pl->shard], TASK_OFFER, peer_id, pl->seq, dir, sdp);
}

void encore_media_room_candidate(encore_media_room *r, uint64_t peer_id, const char *candidate)
{
    placement *pl = g_hash_table_lookup(r->placements, &peer_id);
    if (pl)
        post_task(r->shards[pl->shard], TASK_CANDIDATE, peer_id, pl->seq, pl->dir, candidate);
}

void encore_media_room_close_peer(encore_media_room *r, uint64_t peer_id)
{
    placement *pl = g_hash_table_lookup(r->placements, &peer_id);
    if (!pl)
        return;
    post_task(r->shards[pl->shard], TASK_CLOSE, peer_id, pl->seq, pl->dir, NULL);
    placement_forget(r, pl);
}

void encore_media_room_set_stage(encore_media_room *r, uint64_t peer_id)
{
    post_task(r->home, TASK_STAGE, peer_id, 0, ENCORE_MEDIA_PUBLISH, NULL);
}

uint32_t encore_media_room_ssrc(const encore_media_room *r)
{
    return r->out_ssrc;
}
