/* The SFU room: owns the peers of one room and its stage track. All state below the "worker
 * side" line is touched only by the room's worker thread; the main thread talks to it through
 * queued tasks and hears back through queued events. The fan-out loop allocates, locks and logs
 * nothing. */
#define G_LOG_DOMAIN "encore-room"
#include "config.h"

#include "media/room.h"

#include <errno.h>
#include <string.h>

#include "media/fanout.h"
#include "media/peer.h"
#include "media/rtcp.h"
#include "media/rtp.h"
#include "media/sdp.h"
#include "media/stage.h"

#define CLOCK_RATE 48000

typedef struct rpeer rpeer;

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

struct rpeer {
    uint64_t id;
    encore_media_dir dir;
    encore_media_room *room;
    encore_peer *peer;
    bool connected;
    bool listening; /* in room->listeners */
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

struct encore_media_room {
    gint refcount;
    gint destroyed; /* atomic: set by free on the main thread */
    encore_media *media;
    encore_worker *worker;
    GMainContext *main_ctx;
    encore_media_room_callbacks cb;
    void *user_data;
    char name[65];
    uint32_t out_ssrc;
    uint32_t rr_ssrc;
    uint64_t session_id;

    /* ---- worker side ---- */
    GHashTable *peers;    /* uint64 id -> rpeer */
    GPtrArray *listeners; /* connected listeners, the fan-out list */
    uint64_t stage_id;
    rpeer *stage_peer;
    uint32_t stage_src; /* SSRC the stage currently follows */
    encore_stage *stage;
    GSource *report_timer;
    uint64_t answer_version;
};

static encore_media_room *room_ref(encore_media_room *r)
{
    g_atomic_int_inc(&r->refcount);
    return r;
}

static void room_unref(encore_media_room *r)
{
    if (!g_atomic_int_dec_and_test(&r->refcount))
        return;
    g_free(r);
}

/* ---- events to the main thread ----------------------------------------------------------- */

typedef enum { EV_ANSWER, EV_CANDIDATE, EV_CONNECTED, EV_CLOSED } event_kind;

typedef struct {
    encore_media_room *room;
    event_kind kind;
    uint64_t peer_id;
    char *a; /* sdp / candidate / reason */
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

static gboolean event_dispatch(gpointer data)
{
    room_event *e = data;
    encore_media_room *r = e->room;
    if (g_atomic_int_get(&r->destroyed))
        return G_SOURCE_REMOVE;
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

static void post_event(encore_media_room *r, event_kind kind, uint64_t peer_id, const char *a,
                       const char *code, const char *message)
{
    room_event *e = g_new0(room_event, 1);
    e->room = room_ref(r);
    e->kind = kind;
    e->peer_id = peer_id;
    e->a = g_strdup(a);
    e->code = g_strdup(code);
    e->message = g_strdup(message);
    g_main_context_invoke_full(r->main_ctx, G_PRIORITY_DEFAULT, event_dispatch, e, event_free);
}

static void answer_error(encore_media_room *r, uint64_t id, const char *code, const char *msg)
{
    post_event(r, EV_ANSWER, id, NULL, code, msg);
}

/* ---- the fan-out ------------------------------------------------------------------------- */

static void fan_out(encore_media_room *r, const uint8_t *pkt, size_t len)
{
    encore_worker_stats *st = encore_worker_stats_of(r->worker);
    uint8_t primary[ENCORE_PEER_BUF];
    size_t primary_len = 0;
    if ((pkt[1] & 0x7f) == ENCORE_STAGE_PT_RED)
        primary_len = encore_fanout_red_to_primary(pkt, len, primary, sizeof primary);
    uint8_t buf[ENCORE_PEER_BUF];
    uint64_t sent = 0, bytes = 0;
    for (guint i = 0; i < r->listeners->len; i++) {
        rpeer *l = g_ptr_array_index(r->listeners, i);
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

static void on_singer_rtp(rpeer *s, uint8_t *pkt, size_t len)
{
    encore_media_room *r = s->room;
    encore_worker_stats *st = encore_worker_stats_of(r->worker);
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
    fan_out(r, pkt, len);
}

static void retransmit(rpeer *l, uint16_t seq)
{
    encore_media_room *r = l->room;
    const uint8_t *pkt;
    size_t len;
    if (encore_stage_cache_get(r->stage, seq, &pkt, &len) != 0)
        return;
    uint8_t primary[ENCORE_PEER_BUF], buf[ENCORE_PEER_BUF];
    size_t primary_len = 0;
    if ((pkt[1] & 0x7f) == ENCORE_STAGE_PT_RED)
        primary_len = encore_fanout_red_to_primary(pkt, len, primary, sizeof primary);
    size_t n = encore_fanout_listener_copy(pkt, len, primary, primary_len, l->opus_pt, l->red_pt,
                                           buf, sizeof buf - 64);
    if (n && encore_peer_send_rtp(l->peer, buf, n, sizeof buf) == 0)
        ENCORE_STAT_ADD(encore_worker_stats_of(r->worker), retransmits, 1);
}

static uint32_t r_ssrc(const rpeer *p)
{
    return p->room->out_ssrc;
}

static void on_peer_rtcp(encore_peer *peer, const uint8_t *pkt, size_t len, void *user_data)
{
    rpeer *p = user_data;
    encore_worker_stats *st = encore_worker_stats_of(p->room->worker);
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
        if (rb->ssrc != r_ssrc(p))
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
    if (info.n_nacks > 0 && p->listening && info.nack_ssrc == r_ssrc(p)) {
        ENCORE_STAT_ADD(st, nack_in, info.n_nacks);
        for (size_t i = 0; i < info.n_nacks; i++)
            retransmit(p, info.nacks[i]);
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

static gboolean report_timer_cb(gpointer data)
{
    encore_media_room *r = data;
    int64_t now = g_get_monotonic_time();
    int64_t wall = g_get_real_time();
    uint64_t ntp = encore_ntp_from_unix_us(wall);
    if (encore_stage_started(r->stage)) {
        uint32_t rtp_now = encore_stage_rtp_now(r->stage, now);
        uint8_t buf[ENCORE_PEER_BUF];
        for (guint i = 0; i < r->listeners->len; i++) {
            rpeer *l = g_ptr_array_index(r->listeners, i);
            if (!l->packets_sent)
                continue;
            size_t n = encore_rtcp_build_sr(buf, sizeof buf - 64, r->out_ssrc, ntp, rtp_now,
                                            l->packets_sent, l->octets_sent, "encore");
            if (n)
                (void)encore_peer_send_rtcp(l->peer, buf, n, sizeof buf);
        }
    }
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, r->peers);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        rpeer *p = value;
        if (p->dir == ENCORE_MEDIA_PUBLISH && p->connected)
            send_rr(r, p, now);
    }
    return G_SOURCE_CONTINUE;
}

/* ---- peers ------------------------------------------------------------------------------- */

static void listener_remove(encore_media_room *r, rpeer *p)
{
    if (p->listening) {
        g_ptr_array_remove_fast(r->listeners, p);
        p->listening = false;
    }
}

static void rpeer_free(gpointer data)
{
    rpeer *p = data;
    encore_media_room *r = p->room;
    listener_remove(r, p);
    if (r->stage_peer == p)
        r->stage_peer = NULL;
    encore_peer_free(p->peer);
    g_free(p);
}

static void on_peer_candidate(encore_peer *peer, const char *cand, void *user_data)
{
    rpeer *p = user_data;
    post_event(p->room, EV_CANDIDATE, p->id, cand, NULL, NULL);
}

static void on_peer_connected(encore_peer *peer, void *user_data)
{
    rpeer *p = user_data;
    encore_media_room *r = p->room;
    p->connected = true;
    if (p->dir == ENCORE_MEDIA_SUBSCRIBE && !p->listening) {
        g_ptr_array_add(r->listeners, p);
        p->listening = true;
    }
    post_event(r, EV_CONNECTED, p->id, NULL, NULL, NULL);
}

static void on_peer_closed(encore_peer *peer, const char *reason, void *user_data)
{
    rpeer *p = user_data;
    encore_media_room *r = p->room;
    uint64_t id = p->id;
    g_hash_table_remove(r->peers, &p->id); /* frees p and the peer */
    post_event(r, EV_CLOSED, id, reason, NULL, NULL);
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
        .session_version = ++r->answer_version,
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
    };
    size_t cap = 8192, n = 0;
    char *buf = g_malloc(cap);
    if (encore_sdp_build_answer(offer, &ap, buf, cap, &n) != 0) {
        g_free(buf);
        return NULL;
    }
    return buf;
}

typedef enum { TASK_OFFER, TASK_CANDIDATE, TASK_CLOSE, TASK_STAGE, TASK_DESTROY } task_kind;

typedef struct {
    encore_media_room *room;
    task_kind kind;
    uint64_t peer_id;
    encore_media_dir dir;
    char *str;
} room_task;

static void do_offer(encore_media_room *r, room_task *t)
{
    encore_sdp_offer *offer = g_new0(encore_sdp_offer, 1);
    const char *why = NULL;
    encore_peer_local *local = g_new0(encore_peer_local, 1);
    int rc = encore_sdp_parse_offer(t->str, strlen(t->str), offer, &why);
    if (rc == ENCORE_SDP_ERR_NO_OPUS) {
        answer_error(r, t->peer_id, "no_opus", why ? why : "the offer has no Opus/48000/2");
        goto out;
    }
    if (rc != 0) {
        answer_error(r, t->peer_id, "sdp_invalid", why ? why : "the offer could not be parsed");
        goto out;
    }
    bool wants_recv =
        offer->direction == ENCORE_SDP_RECVONLY || offer->direction == ENCORE_SDP_SENDRECV;
    bool wants_send =
        offer->direction == ENCORE_SDP_SENDONLY || offer->direction == ENCORE_SDP_SENDRECV;
    if (t->dir == ENCORE_MEDIA_SUBSCRIBE ? !wants_recv : !wants_send) {
        answer_error(r, t->peer_id, "sdp_invalid",
                     t->dir == ENCORE_MEDIA_SUBSCRIBE
                         ? "a subscribe offer must receive audio (recvonly or sendrecv)"
                         : "a publish offer must send audio (sendonly or sendrecv)");
        goto out;
    }
    rpeer *p = g_hash_table_lookup(r->peers, &t->peer_id);
    if (p && p->dir != t->dir) {
        answer_error(r, t->peer_id, "internal", "peer id reused with another direction");
        goto out;
    }
    if (p && encore_peer_restart(p->peer, offer, local) != 0) {
        /* Another DTLS fingerprint: a new RTCPeerConnection, not an ICE restart. It replaces the
         * old peer under the same id (the listener keeps its place in the room). */
        g_hash_table_remove(r->peers, &t->peer_id);
        p = NULL;
    }
    if (!p) {
        const encore_media_config *cfg = encore_media_get_config(r->media);
        if ((int)g_hash_table_size(r->peers) >= cfg->max_peers_per_room) {
            answer_error(r, t->peer_id, "room_full", "this room holds as many peers as it may");
            goto out;
        }
        p = g_new0(rpeer, 1);
        p->id = t->peer_id;
        p->dir = t->dir;
        p->room = r;
        encore_peer_env env = {
            .worker = r->worker,
            .cert = encore_media_cert(r->media),
            .ips = cfg->ips,
            .port_min = cfg->port_min,
            .port_max = cfg->port_max,
            .connect_timeout_s = cfg->connect_timeout_s,
        };
        GError *err = NULL;
        p->peer = encore_peer_new(&env, offer, &peer_callbacks, p, local, &err);
        if (!p->peer) {
            answer_error(r, t->peer_id, "internal", err ? err->message : "peer setup failed");
            g_clear_error(&err);
            g_free(p);
            goto out;
        }
        g_hash_table_insert(r->peers, &p->id, p);
        if (p->dir == ENCORE_MEDIA_PUBLISH && p->id == r->stage_id)
            r->stage_peer = p;
    }
    p->opus_pt = offer->opus_pt;
    p->red_pt = offer->red_pt;
    char *sdp = build_answer(r, p, offer, local);
    if (!sdp)
        answer_error(r, t->peer_id, "internal", "the answer did not fit");
    else
        post_event(r, EV_ANSWER, t->peer_id, sdp, NULL, NULL);
    g_free(sdp);
out:
    g_free(offer);
    g_free(local);
}

static void do_destroy(encore_media_room *r)
{
    if (r->report_timer) {
        g_source_destroy(r->report_timer);
        g_source_unref(r->report_timer);
        r->report_timer = NULL;
    }
    g_hash_table_destroy(r->peers);
    r->peers = NULL;
    g_ptr_array_free(r->listeners, TRUE);
    r->listeners = NULL;
    encore_stage_free(r->stage);
    r->stage = NULL;
}

static gboolean task_run(gpointer data)
{
    room_task *t = data;
    encore_media_room *r = t->room;
    if (!r->peers)
        return G_SOURCE_REMOVE; /* destroyed already */
    switch (t->kind) {
    case TASK_OFFER:
        do_offer(r, t);
        break;
    case TASK_CANDIDATE: {
        rpeer *p = g_hash_table_lookup(r->peers, &t->peer_id);
        if (p)
            (void)encore_peer_add_remote_candidate(p->peer, t->str);
        break;
    }
    case TASK_CLOSE:
        g_hash_table_remove(r->peers, &t->peer_id);
        break;
    case TASK_STAGE: {
        r->stage_id = t->peer_id;
        rpeer *p = t->peer_id ? g_hash_table_lookup(r->peers, &t->peer_id) : NULL;
        r->stage_peer = p && p->dir == ENCORE_MEDIA_PUBLISH ? p : NULL;
        encore_stage_set_source(r->stage, 0);
        r->stage_src = 0;
        break;
    }
    case TASK_DESTROY:
        do_destroy(r);
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

static void post_task(encore_media_room *r, task_kind kind, uint64_t peer_id, encore_media_dir dir,
                      const char *str)
{
    room_task *t = g_new0(room_task, 1);
    t->room = room_ref(r);
    t->kind = kind;
    t->peer_id = peer_id;
    t->dir = dir;
    t->str = g_strdup(str);
    encore_worker_invoke(r->worker, task_run, t, task_free);
}

/* ---- main-thread API --------------------------------------------------------------------- */

static gboolean start_timer(gpointer data)
{
    encore_media_room *r = data;
    if (!r->peers)
        return G_SOURCE_REMOVE;
    const encore_media_config *cfg = encore_media_get_config(r->media);
    r->report_timer = g_timeout_source_new((guint)cfg->sr_interval_ms);
    g_source_set_callback(r->report_timer, report_timer_cb, r, NULL);
    g_source_attach(r->report_timer, encore_worker_context(r->worker));
    return G_SOURCE_REMOVE;
}

encore_media_room *encore_media_room_new(encore_media *media, const char *name,
                                         const encore_media_room_callbacks *cb, void *user_data)
{
    encore_media_room *r = g_new0(encore_media_room, 1);
    r->refcount = 1;
    r->media = media;
    r->worker = encore_workers_pick(encore_media_workers(media), name);
    r->main_ctx = encore_media_main_context(media);
    r->cb = *cb;
    r->user_data = user_data;
    g_strlcpy(r->name, name, sizeof r->name);
    do {
        r->out_ssrc = g_random_int();
    } while (r->out_ssrc == 0);
    r->rr_ssrc = g_random_int() | 1;
    r->session_id = ((uint64_t)g_random_int() << 20) ^ g_random_int();
    r->peers = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, rpeer_free);
    r->listeners = g_ptr_array_new();
    r->stage = encore_stage_new(r->out_ssrc, CLOCK_RATE);
    encore_worker_invoke(r->worker, start_timer, room_ref(r), (GDestroyNotify)room_unref);
    return r;
}

void encore_media_room_free(encore_media_room *r)
{
    if (!r)
        return;
    g_atomic_int_set(&r->destroyed, 1);
    post_task(r, TASK_DESTROY, 0, ENCORE_MEDIA_PUBLISH, NULL);
    room_unref(r);
}

void encore_media_room_offer(encore_media_room *r, uint64_t peer_id, encore_media_dir dir,
                             const char *sdp)
{
    post_task(r, TASK_OFFER, peer_id, dir, sdp);
}

void encore_media_room_candidate(encore_media_room *r, uint64_t peer_id, const char *candidate)
{
    post_task(r, TASK_CANDIDATE, peer_id, ENCORE_MEDIA_PUBLISH, candidate);
}

void encore_media_room_close_peer(encore_media_room *r, uint64_t peer_id)
{
    post_task(r, TASK_CLOSE, peer_id, ENCORE_MEDIA_PUBLISH, NULL);
}

void encore_media_room_set_stage(encore_media_room *r, uint64_t peer_id)
{
    post_task(r, TASK_STAGE, peer_id, ENCORE_MEDIA_PUBLISH, NULL);
}

uint32_t encore_media_room_ssrc(const encore_media_room *r)
{
    return r->out_ssrc;
}
