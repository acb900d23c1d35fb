/* The load generator's peers: the singer (Opus encoder, 20 ms pacing, send-time table) and the
 * listeners (join, sequence and latency accounting, sampled decoding, receiver reports), plus the
 * per-thread tick. Everything here runs on the worker thread that owns the peer; the only shared
 * writes are the singer's send table and a few atomic counters. The receive path must not
 * allocate, lock or log. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "media/rtcp.h"
#include "media/rtp.h"
#include "media/srtp.h"
#include "tests/load/loadgen.h"

#define SDP_CAP 16384
#define FRAME_SAMPLES 960 /* 20 ms at 48 kHz */
#define TONE_HZ 440.0
#define TICK_MS 100

/* ---- helpers ----------------------------------------------------------------------------------
 */

static bool in_window(int64_t t_ns)
{
    int64_t start = atomic_load_explicit(&lg->win_start_ns, memory_order_relaxed);
    int64_t end = atomic_load_explicit(&lg->win_end_ns, memory_order_relaxed);
    return t_ns >= start && t_ns < end;
}

/* Trickles our candidates and the end of candidates, when trickle is on. */
static void trickle_local(lg_sig_peer *sig, lg_rtc *rtc)
{
    if (!lg->sigcfg.trickle)
        return;
    char **cands = lg_rtc_local_candidates(rtc);
    for (char **c = cands; *c; c++)
        lg->opt.ops->send_candidate(sig, *c, lg_rtc_mid(rtc));
    lg->opt.ops->send_candidate(sig, "", lg_rtc_mid(rtc));
    g_strfreev(cands);
}

/* Applies a remote description; an offer is answered through sig. Returns 0 or -1 (*why). */
static int apply_remote_sdp(lg_sig_peer *sig, lg_rtc *rtc, const char *sdp, bool is_offer,
                            const char **why)
{
    if (is_offer) {
        char *answer = g_malloc(SDP_CAP);
        int rc = lg_rtc_answer_offer(rtc, sdp, !lg->sigcfg.trickle, answer, SDP_CAP, why);
        if (rc == 0)
            lg->opt.ops->send_sdp(sig, answer);
        g_free(answer);
        if (rc != 0)
            return -1;
    } else if (lg_rtc_set_answer(rtc, sdp, why) != 0) {
        return -1;
    }
    trickle_local(sig, rtc);
    return 0;
}

/* Goertzel power at 440 Hz of the left channel relative to the power of a pure 440 Hz sine of the
 * same energy: near 1 when the tone dominates, near 0 for noise or silence. */
static double tone_purity(const int16_t *pcm, int n)
{
    double w = 2.0 * G_PI * TONE_HZ / 48000.0, c = 2.0 * cos(w);
    double s1 = 0, s2 = 0, energy = 0;
    for (int i = 0; i < n; i++) {
        double x = pcm[2 * i];
        double s = x + c * s1 - s2;
        s2 = s1;
        s1 = s;
        energy += x * x;
    }
    double power = s1 * s1 + s2 * s2 - c * s1 * s2;
    return energy > 0 ? power / (energy * n / 2.0) : 0.0;
}

/* ---- listeners --------------------------------------------------------------------------------
 */

static void listener_fail(lg_listener *l, const char *why)
{
    if (l->state != LST_JOINING && l->state != LST_JOINED)
        return;
    g_strlcpy(l->why, why, sizeof l->why);
    if (l->state == LST_JOINED) {
        l->state = LST_DISCONNECTED;
        atomic_fetch_add(&lg->disconnected, 1);
    } else {
        l->state = LST_FAILED;
        atomic_fetch_add(&lg->failed, 1);
    }
    l->cleanup = true;
    lg_debug("listener %u: %s", l->index, why);
}

/* Frees the listener's peer and signaling (from the tick or at stop, never from their
 * callbacks). */
static void listener_release(lg_listener *l)
{
    lg_rtc_free(l->rtc);
    l->rtc = NULL;
    lg->opt.ops->peer_free(l->sig);
    l->sig = NULL;
    l->cleanup = false;
}

static void l_media_requested(void *user_data)
{
    lg_listener *l = user_data;
    l->t_request_ns = lg_now_ns();
    l->stage = "waiting for the answer";
}

static void l_want_offer(void *user_data)
{
    lg_listener *l = user_data;
    char *sdp = g_malloc(SDP_CAP);
    if (lg_rtc_create_offer(l->rtc, false, 0, !lg->sigcfg.trickle, sdp, SDP_CAP) == 0)
        lg->opt.ops->send_sdp(l->sig, sdp);
    else
        listener_fail(l, "cannot write the offer");
    g_free(sdp);
}

static void l_remote_sdp(const char *sdp, bool is_offer, void *user_data)
{
    lg_listener *l = user_data;
    const char *why = NULL;
    l->stage = "ICE/DTLS";
    if (apply_remote_sdp(l->sig, l->rtc, sdp, is_offer, &why) != 0) {
        char buf[160];
        snprintf(buf, sizeof buf, "remote sdp: %s", why ? why : "?");
        listener_fail(l, buf);
    }
}

static void l_remote_candidate(const char *cand, void *user_data)
{
    lg_listener *l = user_data;
    if (l->rtc)
        (void)lg_rtc_add_remote_candidate(l->rtc, cand);
}

static void l_sig_failed(const char *why, void *user_data)
{
    listener_fail(user_data, why);
}

static const lg_sig_callbacks listener_sig_cb = {
    .want_offer = l_want_offer,
    .remote_sdp = l_remote_sdp,
    .remote_candidate = l_remote_candidate,
    .media_requested = l_media_requested,
    .failed = l_sig_failed,
};

/* Decodes one payload of a sampled listener and checks that it still carries the tone. */
static void decode_sample(lg_listener *l, const uint8_t *payload, size_t len)
{
    lg_thread *thr = l->thr;
    int n = opus_decode(l->dec, payload, (opus_int32)len, thr->pcm, 5760, 0);
    if (n == FRAME_SAMPLES) {
        thr->decoded_ok++;
        if (tone_purity(thr->pcm, n) > 0.5)
            thr->tone_ok++;
    } else {
        thr->decoded_failed++;
    }
}

/* The per-packet path: no allocation, no lock, no log. */
static void l_on_rtp(lg_rtc *rtc, uint8_t *pkt, size_t len, int64_t recv_ns, void *user_data)
{
    lg_listener *l = user_data;
    lg_thread *thr = l->thr;
    encore_rtp_header h;
    if (encore_rtp_parse(pkt, len, &h) != 0)
        return;
    thr->rtp_total++;
    if (l->state == LST_JOINING) {
        l->state = LST_JOINED;
        l->join_ms = (double)(recv_ns - (l->t_request_ns ? l->t_request_ns : l->t_start_ns)) / 1e6;
        l->next_rr_ns = recv_ns + (int64_t)g_random_int_range(1000, 5000) * 1000000;
        atomic_fetch_add(&lg->joined, 1);
    } else if (l->state != LST_JOINED) {
        return;
    }

    int64_t ext;
    if (!l->have_seq) {
        l->have_seq = true;
        ext = 65536 + h.seq; /* room below for packets reordered before the first one */
        l->ext_hi = ext;
        l->rr_base = ext;
        l->media_ssrc = h.ssrc;
    } else {
        ext = l->ext_hi + (int16_t)(uint16_t)(h.seq - (uint16_t)l->ext_hi);
        if (ext > l->ext_hi)
            l->ext_hi = ext;
    }
    l->received++;

    const uint8_t *payload = pkt + h.payload_offset;
    int64_t sent_ns;
    bool known =
        lg_sendtab_get(&lg->sendtab, lg_hash_payload(payload, h.payload_len), &sent_ns, NULL);
    if (!known)
        thr->unmatched++;
    if (in_window(known ? sent_ns : recv_ns)) {
        thr->delivered++;
        if (known)
            lg_hist_add(&thr->hist, (recv_ns - sent_ns) / 1000);
        if (!l->win_any) {
            l->win_any = true;
            l->win_first = l->win_hi = ext;
        } else if (ext > l->win_hi) {
            l->win_hi = ext;
        } else if (ext < l->win_first) {
            l->win_first = ext;
        }
        l->win_received++;
    }
    if (l->dec && ++l->decode_count % LG_DECODE_EVERY_PACKET == 0)
        decode_sample(l, payload, h.payload_len);
}

static void l_on_connected(lg_rtc *rtc, void *user_data)
{
    lg_listener *l = user_data;
    l->stage = "DTLS connected, no audio";
}

static void l_on_failed(lg_rtc *rtc, const char *why, void *user_data)
{
    listener_fail(user_data, why);
}

static const lg_rtc_callbacks listener_rtc_cb = {
    .on_connected = l_on_connected,
    .on_rtp = l_on_rtp,
    .on_failed = l_on_failed,
};

static void send_rr(lg_listener *l, int64_t now)
{
    int64_t expected = l->ext_hi - l->rr_base + 1;
    int64_t lost = expected - (int64_t)l->received;
    int64_t exp_int = expected - l->rr_expected_prior;
    int64_t lost_int = exp_int - (int64_t)(l->received - l->rr_received_prior);
    l->rr_expected_prior = expected;
    l->rr_received_prior = l->received;
    encore_rtcp_report_block rb = {
        .ssrc = l->media_ssrc,
        .fraction_lost = (uint8_t)(exp_int > 0 && lost_int > 0 ? (lost_int << 8) / exp_int : 0),
        .cumulative_lost = (int32_t)CLAMP(lost, -8388608, 8388607),
        .highest_seq = (uint32_t)(l->ext_hi - 65536),
    };
    uint8_t buf[256];
    size_t n = encore_rtcp_build_rr(buf, sizeof buf - ENCORE_SRTP_MAX_TRAILER, l->own_ssrc, &rb,
                                    "loadgen");
    if (n > 0 && lg_rtc_send_rtcp(l->rtc, buf, n, sizeof buf) == 0)
        l->thr->rr_sent++;
    l->next_rr_ns = now + LG_RR_INTERVAL_NS;
}

gboolean lg_listener_start_cb(gpointer data)
{
    lg_listener *l = data;
    lg_thread *thr = l->thr;
    g_ptr_array_add(thr->listeners, l);
    l->t_start_ns = lg_now_ns();
    l->state = LST_JOINING;
    l->stage = "signaling";
    l->own_ssrc = g_random_int();
    if (l->index % LG_DECODE_EVERY_LISTENER == 0) {
        int err = 0;
        l->dec = opus_decoder_create(48000, 2, &err);
    }
    GError *error = NULL;
    /* Encore: we offer (ICE controlling). Janus: the subscriber answers Janus's offer. */
    bool offerer = lg->opt.ops == &lg_sig_encore;
    l->rtc = lg_rtc_new(thr->ctx, lg->cert, lg->opt.media_ip, offerer, &listener_rtc_cb, l, &error);
    if (!l->rtc) {
        listener_fail(l, error ? error->message : "cannot create the peer");
        g_clear_error(&error);
        return G_SOURCE_REMOVE;
    }
    l->sig = lg->opt.ops->peer_new(thr->sig, false, l->index, &listener_sig_cb, l);
    return G_SOURCE_REMOVE;
}

/* ---- the singer -------------------------------------------------------------------------------
 */

static void singer_fail(lg_singer *s, const char *why)
{
    if (atomic_load(&s->state) == SINGER_FAILED)
        return;
    g_strlcpy(s->why, why, sizeof s->why);
    atomic_store(&s->state, SINGER_FAILED);
    s->cleanup = true;
    lg_debug("singer: %s", why);
}

static float noise(lg_singer *s)
{
    uint32_t x = s->noise;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s->noise = x;
    return ((float)(x >> 8) / 16777216.0f - 0.5f) * 2e-3f;
}

/* Encodes 20 ms of a 440 Hz stereo sine (with a little noise, so that no two payloads are equal)
 * and sends it; its send time goes into the table before the packet leaves. */
static void send_frame(lg_singer *s)
{
    float pcm[FRAME_SAMPLES * 2];
    const double step = 2.0 * G_PI * TONE_HZ / 48000.0;
    for (int i = 0; i < FRAME_SAMPLES; i++) {
        float v = (float)(0.5 * sin(s->phase));
        s->phase += step;
        if (s->phase > 2.0 * G_PI)
            s->phase -= 2.0 * G_PI;
        pcm[2 * i] = v + noise(s);
        pcm[2 * i + 1] = v + noise(s);
    }
    uint8_t pkt[12 + 1275 + ENCORE_SRTP_MAX_TRAILER];
    int n = opus_encode_float(s->enc, pcm, FRAME_SAMPLES, pkt + 12, 1275);
    if (n <= 0) {
        atomic_fetch_add(&s->send_errors, 1);
        return;
    }
    pkt[0] = 0x80;
    pkt[1] = (uint8_t)((s->index == 0 ? 0x80 : 0) | (lg_rtc_opus_pt(s->rtc) & 0x7f));
    encore_rtp_set_seq(pkt, s->seq);
    encore_rtp_set_timestamp(pkt, s->ts);
    encore_rtp_set_ssrc(pkt, s->ssrc);
    int64_t t = lg_now_ns();
    lg_sendtab_put(&lg->sendtab, lg_hash_payload(pkt + 12, (size_t)n), t, s->index);
    if (lg_rtc_send_rtp(s->rtc, pkt, 12 + (size_t)n, sizeof pkt) != 0)
        atomic_fetch_add(&s->send_errors, 1);
    atomic_fetch_add(&s->sent, 1);
    if (in_window(t))
        atomic_fetch_add(&s->sent_window, 1);
    s->seq++;
    s->ts += FRAME_SAMPLES;
    s->index++;
}

static gboolean singer_tick(gpointer data)
{
    lg_singer *s = data;
    if (atomic_load(&s->state) != SINGER_SENDING) {
        g_source_set_ready_time(s->timer, -1); /* never ready again; freed by singer_release */
        return G_SOURCE_CONTINUE;
    }
    int64_t now = g_get_monotonic_time();
    for (int burst = 0; s->next_us <= now && burst < 5; burst++) {
        send_frame(s);
        s->next_us += 20000;
    }
    if (now - s->next_us > 100000) /* far behind (the machine stalled): resynchronise */
        s->next_us = now + 20000;
    g_source_set_ready_time(s->timer, s->next_us);
    return G_SOURCE_CONTINUE;
}

static gboolean timer_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
    return callback(user_data);
}

static GSourceFuncs timer_funcs = {
    .dispatch = timer_dispatch,
};

static void s_on_connected(lg_rtc *rtc, void *user_data)
{
    lg_singer *s = user_data;
    if (atomic_load(&s->state) != SINGER_CONNECTING)
        return;
    atomic_store(&s->state, SINGER_SENDING);
    s->next_us = g_get_monotonic_time();
    s->timer = g_source_new(&timer_funcs, sizeof(GSource));
    g_source_set_priority(s->timer, G_PRIORITY_HIGH);
    g_source_set_callback(s->timer, singer_tick, s, NULL);
    g_source_set_ready_time(s->timer, s->next_us);
    g_source_attach(s->timer, s->thr->ctx);
    lg_debug("singer: connected, sending");
}

static void s_on_failed(lg_rtc *rtc, const char *why, void *user_data)
{
    singer_fail(user_data, why);
}

static const lg_rtc_callbacks singer_rtc_cb = {
    .on_connected = s_on_connected,
    .on_failed = s_on_failed,
};

static void s_want_offer(void *user_data)
{
    lg_singer *s = user_data;
    char *sdp = g_malloc(SDP_CAP);
    if (lg_rtc_create_offer(s->rtc, true, s->ssrc, !lg->sigcfg.trickle, sdp, SDP_CAP) == 0)
        lg->opt.ops->send_sdp(s->sig, sdp);
    else
        singer_fail(s, "cannot write the offer");
    g_free(sdp);
}

static void s_remote_sdp(const char *sdp, bool is_offer, void *user_data)
{
    lg_singer *s = user_data;
    const char *why = NULL;
    if (is_offer || apply_remote_sdp(s->sig, s->rtc, sdp, false, &why) != 0) {
        char buf[160];
        snprintf(buf, sizeof buf, "remote sdp: %s", why ? why : "unexpected offer");
        singer_fail(s, buf);
    }
}

static void s_remote_candidate(const char *cand, void *user_data)
{
    lg_singer *s = user_data;
    if (s->rtc)
        (void)lg_rtc_add_remote_candidate(s->rtc, cand);
}

static void s_sig_failed(const char *why, void *user_data)
{
    singer_fail(user_data, why);
}

static const lg_sig_callbacks singer_sig_cb = {
    .want_offer = s_want_offer,
    .remote_sdp = s_remote_sdp,
    .remote_candidate = s_remote_candidate,
    .failed = s_sig_failed,
};

static void singer_release(lg_singer *s)
{
    if (s->timer) {
        g_source_destroy(s->timer);
        g_source_unref(s->timer);
        s->timer = NULL;
    }
    lg_rtc_free(s->rtc);
    s->rtc = NULL;
    lg->opt.ops->peer_free(s->sig);
    s->sig = NULL;
    s->cleanup = false;
}

gboolean lg_singer_start_cb(gpointer data)
{
    lg_thread *thr = data;
    lg_singer *s = &lg->singer;
    s->thr = thr;
    s->ssrc = g_random_int() | 1;
    s->seq = (uint16_t)g_random_int();
    s->ts = g_random_int();
    s->noise = g_random_int() | 1;
    int err = 0;
    s->enc = opus_encoder_create(48000, 2, OPUS_APPLICATION_AUDIO, &err);
    if (!s->enc) {
        singer_fail(s, "opus_encoder_create failed");
        return G_SOURCE_REMOVE;
    }
    opus_encoder_ctl(s->enc, OPUS_SET_BITRATE(128000));
    opus_encoder_ctl(s->enc, OPUS_SET_COMPLEXITY(5));
    GError *error = NULL;
    s->rtc = lg_rtc_new(thr->ctx, lg->cert, lg->opt.media_ip, true, &singer_rtc_cb, s, &error);
    if (!s->rtc) {
        singer_fail(s, error ? error->message : "cannot create the peer");
        g_clear_error(&error);
        return G_SOURCE_REMOVE;
    }
    s->sig = lg->opt.ops->peer_new(thr->sig, true, 0, &singer_sig_cb, s);
    return G_SOURCE_REMOVE;
}

/* ---- threads ----------------------------------------------------------------------------------
 */

static gboolean thread_tick(gpointer data)
{
    lg_thread *thr = data;
    int64_t now = lg_now_ns();
    if (thr->is_singer) {
        if (lg->singer.cleanup)
            singer_release(&lg->singer);
        return G_SOURCE_CONTINUE;
    }
    for (guint i = 0; i < thr->listeners->len; i++) {
        lg_listener *l = thr->listeners->pdata[i];
        if (l->state == LST_JOINING && now - l->t_start_ns > LG_JOIN_TIMEOUT_NS) {
            char why[96];
            snprintf(why, sizeof why, "no audio within 10 s (%s)", l->stage);
            listener_fail(l, why);
        }
        if (l->cleanup) {
            listener_release(l);
            continue;
        }
        if (l->state == LST_JOINED && l->rtc && now >= l->next_rr_ns)
            send_rr(l, now);
    }
    return G_SOURCE_CONTINUE;
}

gboolean lg_thread_init_cb(gpointer data)
{
    lg_thread *thr = data;
    thr->sig = lg->opt.ops->thread_new(&lg->sigcfg, thr->ctx);
    thr->tick = g_timeout_source_new(TICK_MS);
    g_source_set_callback(thr->tick, thread_tick, thr, NULL);
    g_source_attach(thr->tick, thr->ctx);
    return G_SOURCE_REMOVE;
}

gboolean lg_thread_stop_cb(gpointer data)
{
    lg_thread *thr = data;
    lg->opt.ops->thread_shutdown(thr->sig);
    for (guint i = 0; i < thr->listeners->len; i++) {
        lg_listener *l = thr->listeners->pdata[i];
        listener_release(l);
        if (l->dec) {
            opus_decoder_destroy(l->dec);
            l->dec = NULL;
        }
    }
    if (thr->is_singer) {
        singer_release(&lg->singer);
        if (lg->singer.enc) {
            opus_encoder_destroy(lg->singer.enc);
            lg->singer.enc = NULL;
        }
    }
    lg->opt.ops->thread_free(thr->sig);
    thr->sig = NULL;
    if (thr->tick) {
        g_source_destroy(thr->tick);
        g_source_unref(thr->tick);
        thr->tick = NULL;
    }
    g_main_loop_quit(thr->loop);
    return G_SOURCE_REMOVE;
}
