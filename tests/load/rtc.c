/* One WebRTC audio peer of the load generator (see rtc.h): libnice ICE, DTLS-SRTP through
 * media/dtls and media/srtp (received RTP through srtp-rx.c), and our side of the SDP. Runs only on
 * the thread of its context; the receive path takes one time stamp, decrypts into a stack buffer
 * and calls back, nothing more. */
#include "config.h"

#include "tests/load/rtc.h"

#include <agent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "media/rtp.h"
#include "media/sdp.h"
#include "media/srtp.h"
#include "tests/load/metrics.h"
#include "tests/load/srtp-rx.h"

#define RTC_EARLY_MAX 4
#define RTC_SDP_MAX 16384

typedef enum {
    RTC_NEW,       /* no remote description yet */
    RTC_ICE,       /* checking connectivity */
    RTC_DTLS,      /* ICE up, handshake running */
    RTC_CONNECTED, /* SRTP keyed */
    RTC_FAILED,
} rtc_state;

struct lg_rtc {
    GMainContext *ctx;
    lg_rtc_callbacks cb;
    void *user_data;
    encore_dtls_cert *cert;
    NiceAgent *agent;
    guint stream;
    bool offerer;
    rtc_state state;
    bool failed_notified;

    encore_dtls *dtls;
    bool dtls_client;
    encore_srtp *srtp; /* RTCP both ways, RTP we send */
    lg_srtp_rx *rx;    /* RTP we receive (NULL: srtp does it) */
    GSource *dtls_timer;

    /* DTLS datagrams that arrived before our side of ICE was connected (the remote agent may
     * finish first); fed to DTLS once ICE is up. */
    int n_early;
    size_t early_len[RTC_EARLY_MAX];
    uint8_t *early[RTC_EARLY_MAX];

    char mid[33];
    int opus_pt;
    lg_rtc_stats stats;
};

/* ---- failure ----------------------------------------------------------------------------------
 */

static void destroy_source(GSource **s)
{
    if (*s) {
        g_source_destroy(*s);
        g_source_unref(*s);
        *s = NULL;
    }
}

static void rtc_fail(lg_rtc *rtc, const char *why)
{
    if (rtc->failed_notified)
        return;
    rtc->failed_notified = true;
    rtc->state = RTC_FAILED;
    destroy_source(&rtc->dtls_timer);
    if (rtc->cb.on_failed)
        rtc->cb.on_failed(rtc, why, rtc->user_data);
}

/* ---- DTLS -------------------------------------------------------------------------------------
 */

static void dtls_send(const uint8_t *data, size_t len, void *user_data)
{
    lg_rtc *rtc = user_data;
    if (rtc->state != RTC_FAILED)
        nice_agent_send(rtc->agent, rtc->stream, 1, (guint)len, (const gchar *)data);
}

static void dtls_schedule(lg_rtc *rtc);

static gboolean dtls_timer_cb(gpointer data)
{
    lg_rtc *rtc = data;
    g_source_unref(rtc->dtls_timer);
    rtc->dtls_timer = NULL;
    if (rtc->state != RTC_DTLS)
        return G_SOURCE_REMOVE;
    if (encore_dtls_handle_timeout(rtc->dtls) < 0) {
        rtc_fail(rtc, "dtls_failed");
        return G_SOURCE_REMOVE;
    }
    dtls_schedule(rtc);
    return G_SOURCE_REMOVE;
}

static void dtls_schedule(lg_rtc *rtc)
{
    destroy_source(&rtc->dtls_timer);
    if (rtc->state != RTC_DTLS)
        return;
    int ms = encore_dtls_timeout_ms(rtc->dtls);
    if (ms < 0)
        return;
    rtc->dtls_timer = g_timeout_source_new((guint)ms);
    g_source_set_callback(rtc->dtls_timer, dtls_timer_cb, rtc, NULL);
    g_source_attach(rtc->dtls_timer, rtc->ctx);
}

static void dtls_connected(lg_rtc *rtc)
{
    encore_srtp_keys keys;
    if (encore_dtls_srtp_keys(rtc->dtls, &keys) != 0) {
        rtc_fail(rtc, "dtls_failed");
        return;
    }
    GError *err = NULL;
    rtc->srtp = encore_srtp_new(&keys, &err);
    rtc->rx = lg_srtp_rx_new(&keys);
    memset(&keys, 0, sizeof keys);
    if (!rtc->srtp) {
        g_clear_error(&err);
        rtc_fail(rtc, "dtls_failed");
        return;
    }
    rtc->state = RTC_CONNECTED;
    destroy_source(&rtc->dtls_timer);
    if (rtc->cb.on_connected)
        rtc->cb.on_connected(rtc, rtc->user_data);
}

static void handle_dtls(lg_rtc *rtc, const uint8_t *buf, size_t len)
{
    if (rtc->state == RTC_ICE || rtc->state == RTC_NEW) {
        if (rtc->n_early < RTC_EARLY_MAX) {
            rtc->early[rtc->n_early] = g_memdup2(buf, len);
            rtc->early_len[rtc->n_early++] = len;
        }
        return;
    }
    if (rtc->state != RTC_DTLS && rtc->state != RTC_CONNECTED)
        return;
    int rc = encore_dtls_handle(rtc->dtls, buf, len);
    if (rc == ENCORE_DTLS_CONNECTED)
        dtls_connected(rtc);
    else if (rc < 0 && (rtc->state == RTC_DTLS || rc == ENCORE_DTLS_ERR_CLOSED))
        rtc_fail(rtc, "dtls_failed");
    else if (rtc->state == RTC_DTLS)
        dtls_schedule(rtc);
}

static void start_dtls(lg_rtc *rtc)
{
    if (rtc->state != RTC_ICE || !rtc->dtls)
        return;
    rtc->state = RTC_DTLS;
    if (rtc->dtls_client && encore_dtls_start(rtc->dtls) < 0) {
        rtc_fail(rtc, "dtls_failed");
        return;
    }
    dtls_schedule(rtc);
    int n = rtc->n_early;
    rtc->n_early = 0;
    for (int i = 0; i < n; i++) {
        if (rtc->state == RTC_DTLS || rtc->state == RTC_CONNECTED)
            handle_dtls(rtc, rtc->early[i], rtc->early_len[i]);
        g_free(rtc->early[i]);
        rtc->early[i] = NULL;
    }
}

/* ---- receive ----------------------------------------------------------------------------------
 */

static void on_recv(NiceAgent *agent, guint stream, guint component, guint len, gchar *data,
                    gpointer user_data)
{
    int64_t now = lg_now_ns();
    lg_rtc *rtc = user_data;
    const uint8_t *in = (const uint8_t *)data;
    if (rtc->state == RTC_FAILED || len == 0)
        return;
    if (encore_dtls_is_dtls(in, len)) {
        handle_dtls(rtc, in, len);
        return;
    }
    if (rtc->state != RTC_CONNECTED || !encore_rtp_looks_like_rtp(in, len) || len > LG_RTC_MTU)
        return;
    uint8_t buf[LG_RTC_MTU];
    size_t n = len;
    memcpy(buf, in, n);
    if (encore_rtp_is_rtcp(buf, n)) {
        if (encore_srtp_unprotect_rtcp(rtc->srtp, buf, &n) == 0)
            rtc->stats.rtcp_in++;
        else
            rtc->stats.srtp_errors++;
        return;
    }
    if ((rtc->rx ? lg_srtp_rx_unprotect(rtc->rx, buf, &n)
                 : encore_srtp_unprotect_rtp(rtc->srtp, buf, &n)) != 0) {
        rtc->stats.srtp_errors++;
        return;
    }
    if (rtc->cb.on_rtp)
        rtc->cb.on_rtp(rtc, buf, n, now, rtc->user_data);
}

/* ---- ICE --------------------------------------------------------------------------------------
 */

static void on_state_changed(NiceAgent *agent, guint stream, guint component, guint state,
                             gpointer user_data)
{
    lg_rtc *rtc = user_data;
    if (rtc->state == RTC_FAILED)
        return;
    if (state == NICE_COMPONENT_STATE_CONNECTED || state == NICE_COMPONENT_STATE_READY)
        start_dtls(rtc);
    else if (state == NICE_COMPONENT_STATE_FAILED)
        rtc_fail(rtc, "ice_failed");
}

lg_rtc *lg_rtc_new(GMainContext *ctx, encore_dtls_cert *cert, const char *media_ip, bool offerer,
                   const lg_rtc_callbacks *cb, void *user_data, GError **error)
{
    lg_rtc *rtc = g_new0(lg_rtc, 1);
    rtc->ctx = ctx;
    rtc->cb = *cb;
    rtc->user_data = user_data;
    rtc->cert = encore_dtls_cert_ref(cert);
    rtc->offerer = offerer;
    rtc->opus_pt = 111;
    g_strlcpy(rtc->mid, "0", sizeof rtc->mid);

    rtc->agent =
        nice_agent_new_full(ctx, NICE_COMPATIBILITY_RFC5245, NICE_AGENT_OPTION_ICE_TRICKLE);
    g_object_set(rtc->agent, "controlling-mode", offerer, "ice-tcp", FALSE, "ice-udp", TRUE, NULL);
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(rtc->agent), "upnp"))
        g_object_set(rtc->agent, "upnp", FALSE, NULL);
    NiceAddress addr;
    nice_address_init(&addr);
    if (!nice_address_set_from_string(&addr, media_ip)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "bad media address %s",
                    media_ip);
        goto out_free;
    }
    nice_agent_add_local_address(rtc->agent, &addr);
    rtc->stream = nice_agent_add_stream(rtc->agent, 1);
    g_signal_connect(rtc->agent, "component-state-changed", G_CALLBACK(on_state_changed), rtc);
    nice_agent_attach_recv(rtc->agent, rtc->stream, 1, ctx, on_recv, rtc);
    if (!nice_agent_gather_candidates(rtc->agent, rtc->stream)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE, "cannot gather on %s", media_ip);
        goto out_free;
    }
    return rtc;

out_free:
    lg_rtc_free(rtc);
    return NULL;
}

void lg_rtc_free(lg_rtc *rtc)
{
    if (!rtc)
        return;
    rtc->state = RTC_FAILED;
    destroy_source(&rtc->dtls_timer);
    if (rtc->agent) {
        if (rtc->stream) {
            nice_agent_attach_recv(rtc->agent, rtc->stream, 1, NULL, NULL, NULL);
            nice_agent_remove_stream(rtc->agent, rtc->stream);
        }
        g_signal_handlers_disconnect_by_data(rtc->agent, rtc);
        g_object_unref(rtc->agent);
    }
    for (int i = 0; i < rtc->n_early; i++)
        g_free(rtc->early[i]);
    if (rtc->dtls && rtc->srtp)
        encore_dtls_close(rtc->dtls);
    encore_dtls_free(rtc->dtls);
    encore_srtp_free(rtc->srtp);
    lg_srtp_rx_free(rtc->rx);
    encore_dtls_cert_unref(rtc->cert);
    g_free(rtc);
}

/* ---- SDP --------------------------------------------------------------------------------------
 */

char **lg_rtc_local_candidates(lg_rtc *rtc)
{
    GPtrArray *out = g_ptr_array_new();
    GSList *cands = nice_agent_get_local_candidates(rtc->agent, rtc->stream, 1);
    for (GSList *l = cands; l; l = l->next) {
        gchar *sdp = nice_agent_generate_local_candidate_sdp(rtc->agent, l->data);
        if (sdp) {
            g_ptr_array_add(out, g_strdup(g_str_has_prefix(sdp, "a=") ? sdp + 2 : sdp));
            g_free(sdp);
        }
    }
    g_slist_free_full(cands, (GDestroyNotify)nice_candidate_free);
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

const char *lg_rtc_mid(const lg_rtc *rtc)
{
    return rtc->mid;
}

int lg_rtc_opus_pt(const lg_rtc *rtc)
{
    return rtc->opus_pt;
}

static bool local_credentials(lg_rtc *rtc, char *ufrag, size_t ucap, char *pwd, size_t pcap)
{
    gchar *u = NULL, *p = NULL;
    bool ok = nice_agent_get_local_credentials(rtc->agent, rtc->stream, &u, &p);
    if (ok) {
        g_strlcpy(ufrag, u, ucap);
        g_strlcpy(pwd, p, pcap);
    }
    g_free(u);
    g_free(p);
    return ok;
}

int lg_rtc_create_offer(lg_rtc *rtc, bool send, uint32_t ssrc, bool with_candidates, char *buf,
                        size_t cap)
{
    char ufrag[257], pwd[257];
    if (!local_credentials(rtc, ufrag, sizeof ufrag, pwd, sizeof pwd))
        return -EINVAL;
    GString *s = g_string_sized_new(2048);
    uint64_t sid = ((uint64_t)g_random_int() << 31) ^ g_random_int();
    g_string_append_printf(s,
                           "v=0\r\n"
                           "o=- %" G_GUINT64_FORMAT " 2 IN IP4 127.0.0.1\r\n"
                           "s=-\r\n"
                           "t=0 0\r\n"
                           "a=group:BUNDLE 0\r\n"
                           "a=msid-semantic: WMS loadgen\r\n"
                           "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
                           "c=IN IP4 0.0.0.0\r\n"
                           "a=rtcp:9 IN IP4 0.0.0.0\r\n"
                           "a=ice-ufrag:%s\r\n"
                           "a=ice-pwd:%s\r\n"
                           "a=ice-options:trickle\r\n"
                           "a=fingerprint:%s\r\n"
                           "a=setup:actpass\r\n"
                           "a=mid:0\r\n"
                           "a=%s\r\n"
                           "a=rtcp-mux\r\n"
                           "a=rtcp-rsize\r\n"
                           "a=rtpmap:111 opus/48000/2\r\n"
                           "a=fmtp:111 minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1;"
                           "maxaveragebitrate=128000\r\n",
                           sid & G_MAXINT64, ufrag, pwd, encore_dtls_cert_fingerprint(rtc->cert),
                           send ? "sendonly" : "recvonly");
    if (send && ssrc)
        g_string_append_printf(s,
                               "a=msid:loadgen audio0\r\n"
                               "a=ssrc:%u cname:loadgen\r\n"
                               "a=ssrc:%u msid:loadgen audio0\r\n",
                               ssrc, ssrc);
    if (with_candidates) {
        char **cands = lg_rtc_local_candidates(rtc);
        for (char **c = cands; *c; c++)
            g_string_append_printf(s, "a=%s\r\n", *c);
        g_string_append(s, "a=end-of-candidates\r\n");
        g_strfreev(cands);
    }
    int rc = 0;
    if (s->len + 1 > cap)
        rc = -ENOSPC;
    else
        memcpy(buf, s->str, s->len + 1);
    g_string_free(s, TRUE);
    return rc;
}

/* Applies the remote transport parameters of a parsed description and creates the DTLS session
 * with the given role. */
static int apply_remote(lg_rtc *rtc, const encore_sdp_offer *r, bool dtls_client, const char **why)
{
    if (rtc->state != RTC_NEW) {
        *why = "remote description already set";
        return -EINVAL;
    }
    rtc->dtls_client = dtls_client;
    rtc->dtls = encore_dtls_new(rtc->cert, dtls_client ? ENCORE_DTLS_CLIENT : ENCORE_DTLS_SERVER,
                                r->fp_alg, r->fp, r->fp_len, dtls_send, rtc);
    if (!rtc->dtls) {
        *why = "unsupported fingerprint";
        return -EINVAL;
    }
    rtc->opus_pt = r->opus_pt;
    rtc->state = RTC_ICE;
    nice_agent_set_remote_credentials(rtc->agent, rtc->stream, r->ice_ufrag, r->ice_pwd);
    for (int i = 0; i < r->n_candidates; i++)
        (void)lg_rtc_add_remote_candidate(rtc, r->candidates[i]);
    if (r->end_of_candidates)
        nice_agent_peer_candidate_gathering_done(rtc->agent, rtc->stream);
    return 0;
}

int lg_rtc_set_answer(lg_rtc *rtc, const char *sdp, const char **why)
{
    encore_sdp_offer *r = g_new(encore_sdp_offer, 1);
    int rc = encore_sdp_parse_offer(sdp, strlen(sdp), r, why);
    if (rc != 0) {
        rc = -EINVAL;
        goto out;
    }
    /* The answerer's a=setup decides: active means it sends the ClientHello. */
    rc = apply_remote(
        rtc, r, r->setup != ENCORE_SDP_SETUP_ACTIVE && r->setup != ENCORE_SDP_SETUP_NONE, why);
out:
    g_free(r);
    return rc;
}

int lg_rtc_answer_offer(lg_rtc *rtc, const char *sdp, bool with_candidates, char *buf, size_t cap,
                        const char **why)
{
    encore_sdp_offer *r = g_new(encore_sdp_offer, 1);
    char **cands = NULL;
    int rc = encore_sdp_parse_offer(sdp, strlen(sdp), r, why);
    if (rc != 0) {
        rc = -EINVAL;
        goto out;
    }
    g_strlcpy(rtc->mid, r->mid[0] ? r->mid : "0", sizeof rtc->mid);
    /* We take the active role (the DTLS client), unless the offerer insists on being active. */
    bool client = r->setup != ENCORE_SDP_SETUP_ACTIVE;
    char ufrag[257], pwd[257];
    if (!local_credentials(rtc, ufrag, sizeof ufrag, pwd, sizeof pwd)) {
        *why = "no local ICE credentials";
        rc = -EINVAL;
        goto out;
    }
    cands = with_candidates ? lg_rtc_local_candidates(rtc) : g_new0(char *, 1);
    encore_sdp_answer_params p = {
        .send = false,
        .ice_ufrag = ufrag,
        .ice_pwd = pwd,
        .fingerprint = encore_dtls_cert_fingerprint(rtc->cert),
        .setup = client ? ENCORE_SDP_SETUP_ACTIVE : ENCORE_SDP_SETUP_PASSIVE,
        .session_id = (((uint64_t)g_random_int() << 31) ^ g_random_int()) & G_MAXINT64,
        .session_version = 1,
        .opus_bitrate = 128000,
        .allow_red = false,
        .candidates = (const char *const *)cands,
        .n_candidates = g_strv_length(cands),
        .end_of_candidates = with_candidates,
        .ip = NULL,
    };
    size_t out_len = 0;
    rc = encore_sdp_build_answer(r, &p, buf, cap, &out_len);
    if (rc != 0) {
        *why = "cannot build the answer";
        goto out;
    }
    rc = apply_remote(rtc, r, client, why);
out:
    g_strfreev(cands);
    g_free(r);
    return rc;
}

int lg_rtc_add_remote_candidate(lg_rtc *rtc, const char *cand)
{
    if (rtc->state == RTC_FAILED)
        return -EPIPE;
    if (!cand[0]) {
        nice_agent_peer_candidate_gathering_done(rtc->agent, rtc->stream);
        return 0;
    }
    if (g_str_has_prefix(cand, "a="))
        cand += 2;
    encore_sdp_candidate parsed;
    int rc = encore_sdp_parse_candidate(cand, &parsed);
    if (rc != 0)
        return rc;
    if (parsed.component != 1)
        return 0; /* rtcp-mux: component 2 is not used */
    char line[1100];
    snprintf(line, sizeof line, "a=%s", cand);
    NiceCandidate *c = nice_agent_parse_remote_candidate_sdp(rtc->agent, rtc->stream, line);
    if (!c)
        return -EINVAL;
    GSList *list = g_slist_append(NULL, c);
    int added = nice_agent_set_remote_candidates(rtc->agent, rtc->stream, 1, list);
    g_slist_free_full(list, (GDestroyNotify)nice_candidate_free);
    return added >= 0 ? 0 : -EINVAL;
}

/* ---- send -------------------------------------------------------------------------------------
 */

static int send_datagram(lg_rtc *rtc, const uint8_t *pkt, size_t len)
{
    int n = nice_agent_send(rtc->agent, rtc->stream, 1, (guint)len, (const gchar *)pkt);
    return n == (int)len ? 0 : -EAGAIN;
}

int lg_rtc_send_rtp(lg_rtc *rtc, uint8_t *pkt, size_t len, size_t cap)
{
    if (rtc->state != RTC_CONNECTED)
        return -ENOTCONN;
    int rc = encore_srtp_protect_rtp(rtc->srtp, pkt, &len, cap);
    return rc != 0 ? rc : send_datagram(rtc, pkt, len);
}

int lg_rtc_send_rtcp(lg_rtc *rtc, uint8_t *pkt, size_t len, size_t cap)
{
    if (rtc->state != RTC_CONNECTED)
        return -ENOTCONN;
    int rc = encore_srtp_protect_rtcp(rtc->srtp, pkt, &len, cap);
    return rc != 0 ? rc : send_datagram(rtc, pkt, len);
}

bool lg_rtc_is_connected(const lg_rtc *rtc)
{
    return rtc->state == RTC_CONNECTED;
}

const lg_rtc_stats *lg_rtc_get_stats(const lg_rtc *rtc)
{
    return &rtc->stats;
}
