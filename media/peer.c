/* WebRTC transport: owns one NiceAgent (one stream, one component: BUNDLE + rtcp-mux) or one
 * ICE-lite connection on the worker's shared socket, the DTLS session and the SRTP contexts of one
 * browser connection. Runs only on its worker's thread. It forwards nothing by itself: decrypted
 * packets go to the owner's callbacks. */
#define G_LOG_DOMAIN "encore-peer"
#include "config.h"

#include "media/peer.h"

#include <agent.h>
#include <errno.h>
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "media/rtp.h"
#include "media/srtp.h"

#define PEER_EARLY_MAX 4

/* ICE-lite hands its receive buffer over for in-place decryption: it must be as large as ours. */
G_STATIC_ASSERT(ENCORE_ICELITE_MTU >= ENCORE_PEER_BUF);

typedef enum {
    PEER_ICE,       /* checking connectivity */
    PEER_DTLS,      /* ICE up, handshake running */
    PEER_CONNECTED, /* SRTP keyed */
    PEER_CLOSED,
} peer_state;

struct encore_peer {
    encore_peer_env env;
    encore_worker_stats *stats;
    encore_peer_callbacks cb;
    void *user_data;
    void *tag;

    /* The ICE transport: a libnice agent, or (env.lite set) an ICE-lite connection. */
    NiceAgent *agent;
    guint stream;
    encore_icelite_conn *conn;
    peer_state state;
    bool ice_ready;       /* ICE reached CONNECTED/READY at least once */
    bool closed_notified; /* on_closed queued */

    /* The handshake; freed (NULL) once the remote proves it holds the keys, see release_dtls. */
    encore_dtls *dtls;
    bool dtls_client;
    encore_srtp *srtp;
    char fp_alg[16];
    uint8_t fp[64];
    size_t fp_len;

    /* The send path: the selected pair's socket and remote address, so that sending is one
     * srtp_protect and one sendto without libnice's lock. fd < 0 falls back to nice_agent_send. */
    int fd;
    struct sockaddr_storage remote;
    socklen_t remote_len;
    bool have_pair;

    /* DTLS datagrams that arrived before our side of ICE reported a working pair: the browser may
     * finish its checks first. Kept (a few, copied) and fed to DTLS once ICE is up, so that DTLS
     * never runs on a path ICE has not validated. */
    int n_early;
    size_t early_len[PEER_EARLY_MAX];
    uint8_t *early[PEER_EARLY_MAX];

    /* Timers: GSources with libnice; with ICE-lite, deadlines (monotonic us, 0 = none) on the
     * connection's one timer, so that a listener adds no source to the worker's loop. */
    GSource *dtls_timer;
    GSource *connect_timer;
    int64_t dtls_at;
    int64_t connect_at;
    GSource *close_idle;
    const char *close_reason;
};

/* ---- closing ---------------------------------------------------------------------------- */

static gboolean close_idle_cb(gpointer data)
{
    encore_peer *p = data;
    g_source_unref(p->close_idle);
    p->close_idle = NULL;
    if (p->cb.on_closed)
        p->cb.on_closed(p, p->close_reason, p->user_data);
    return G_SOURCE_REMOVE;
}

static void peer_fail(encore_peer *p, const char *reason)
{
    if (p->closed_notified)
        return;
    p->closed_notified = true;
    p->state = PEER_CLOSED;
    p->close_reason = reason;
    g_debug("peer %p closed: %s", (void *)p, reason);
    p->close_idle = g_idle_source_new();
    g_source_set_callback(p->close_idle, close_idle_cb, p, NULL);
    g_source_attach(p->close_idle, encore_worker_context(p->env.worker));
}

static void destroy_source(GSource **s)
{
    if (*s) {
        g_source_destroy(*s);
        g_source_unref(*s);
        *s = NULL;
    }
}

/* ---- DTLS ------------------------------------------------------------------------------- */

static void dtls_send(const uint8_t *data, size_t len, void *user_data)
{
    encore_peer *p = user_data;
    if (p->state == PEER_CLOSED)
        return;
    if (p->conn)
        (void)encore_icelite_conn_send(p->conn, data, len);
    else
        nice_agent_send(p->agent, p->stream, 1, (guint)len, (const gchar *)data);
}

static void dtls_schedule(encore_peer *p);

/* ICE-lite: the connection's timer at the earlier of the two deadlines. */
static void lite_arm(encore_peer *p)
{
    int64_t at = p->connect_at;
    if (p->dtls_at && (!at || p->dtls_at < at))
        at = p->dtls_at;
    encore_icelite_conn_set_timer(p->conn, at);
}

static gboolean dtls_timer_cb(gpointer data)
{
    encore_peer *p = data;
    g_source_unref(p->dtls_timer);
    p->dtls_timer = NULL;
    if (p->state != PEER_DTLS)
        return G_SOURCE_REMOVE;
    if (encore_dtls_handle_timeout(p->dtls) < 0) {
        peer_fail(p, ENCORE_PEER_DTLS_FAILED);
        return G_SOURCE_REMOVE;
    }
    dtls_schedule(p);
    return G_SOURCE_REMOVE;
}

static void dtls_schedule(encore_peer *p)
{
    destroy_source(&p->dtls_timer);
    p->dtls_at = 0;
    int ms = p->state == PEER_DTLS ? encore_dtls_timeout_ms(p->dtls) : -1;
    if (p->conn) {
        if (ms >= 0)
            p->dtls_at = g_get_monotonic_time() + (int64_t)ms * 1000;
        lite_arm(p);
        return;
    }
    if (ms < 0)
        return;
    p->dtls_timer = g_timeout_source_new((guint)ms);
    g_source_set_callback(p->dtls_timer, dtls_timer_cb, p, NULL);
    g_source_attach(p->dtls_timer, encore_worker_context(p->env.worker));
}

static void dtls_connected(encore_peer *p)
{
    encore_srtp_keys keys;
    if (encore_dtls_srtp_keys(p->dtls, &keys) != 0) {
        peer_fail(p, ENCORE_PEER_DTLS_FAILED);
        return;
    }
    GError *err = NULL;
    p->srtp = encore_srtp_new(&keys, &err);
    memset(&keys, 0, sizeof keys);
    if (!p->srtp) {
        g_warning("srtp setup failed: %s", err ? err->message : "?");
        g_clear_error(&err);
        peer_fail(p, ENCORE_PEER_DTLS_FAILED);
        return;
    }
    p->state = PEER_CONNECTED;
    destroy_source(&p->dtls_timer);
    destroy_source(&p->connect_timer);
    if (p->conn) {
        p->dtls_at = p->connect_at = 0;
        lite_arm(p);
    }
    if (p->cb.on_connected)
        p->cb.on_connected(p, p->user_data);
}

static void handle_dtls(encore_peer *p, const uint8_t *buf, size_t len)
{
    if (p->state == PEER_ICE) {
        if (p->n_early < PEER_EARLY_MAX) {
            p->early[p->n_early] = g_memdup2(buf, len);
            p->early_len[p->n_early++] = len;
        } else {
            ENCORE_STAT_ADD(p->stats, drop_dtls, 1);
        }
        return;
    }
    if ((p->state != PEER_DTLS && p->state != PEER_CONNECTED) || !p->dtls) {
        ENCORE_STAT_ADD(p->stats, drop_dtls, 1);
        return;
    }
    int rc = encore_dtls_handle(p->dtls, buf, len);
    if (rc == ENCORE_DTLS_CONNECTED) {
        dtls_connected(p);
    } else if (rc == ENCORE_DTLS_ERR_CLOSED) {
        peer_fail(p, ENCORE_PEER_DTLS_FAILED);
    } else if (rc < 0) {
        ENCORE_STAT_ADD(p->stats, drop_dtls, 1);
        if (p->state == PEER_DTLS) /* a failed handshake (e.g. wrong fingerprint) is final */
            peer_fail(p, ENCORE_PEER_DTLS_FAILED);
    } else if (p->state == PEER_DTLS) {
        dtls_schedule(p);
    }
}

/* ---- receive ---------------------------------------------------------------------------- */

/* An authenticated SRTP/SRTCP packet from the remote proves its side of the handshake finished
 * (it derived the keys after our last flight arrived): nothing will ever need a DTLS
 * retransmission from us again, so the session's state and record buffers (tens of KiB per peer
 * in OpenSSL) go. Renegotiation is refused anyway; later DTLS records are counted and dropped.
 * The price: no close_notify when the peer closes (the remote notices by ICE consent, and the
 * signaling says so). */
static void release_dtls(encore_peer *p)
{
    encore_dtls_free(p->dtls);
    p->dtls = NULL;
}

/* SRTP or SRTCP (already told apart from DTLS and garbage) in a writable buffer: decrypted in
 * place and handed to the owner. Returns true when it authenticated. */
static bool handle_srtp(encore_peer *p, uint8_t *buf, size_t n)
{
    if (encore_rtp_is_rtcp(buf, n)) {
        int rc = encore_srtp_unprotect_rtcp(p->srtp, buf, &n);
        if (rc != 0) {
            if (rc == ENCORE_SRTP_ERR_REPLAY)
                ENCORE_STAT_ADD(p->stats, drop_srtp_replay, 1);
            else
                ENCORE_STAT_ADD(p->stats, drop_srtp_auth, 1);
            return false;
        }
        ENCORE_STAT_ADD(p->stats, rtcp_in, 1);
        if (p->dtls)
            release_dtls(p);
        if (p->cb.on_rtcp)
            p->cb.on_rtcp(p, buf, n, p->user_data);
        return true;
    }
    int rc = encore_srtp_unprotect_rtp(p->srtp, buf, &n);
    if (rc != 0) {
        if (rc == ENCORE_SRTP_ERR_REPLAY)
            ENCORE_STAT_ADD(p->stats, drop_srtp_replay, 1);
        else
            ENCORE_STAT_ADD(p->stats, drop_srtp_auth, 1);
        return false;
    }
    ENCORE_STAT_ADD(p->stats, rtp_in, 1);
    if (p->dtls)
        release_dtls(p);
    if (p->cb.on_rtp)
        p->cb.on_rtp(p, buf, n, p->user_data);
    return true;
}

/* RFC 7983 demultiplexing of one datagram that is not STUN: DTLS is handled here, garbage and
 * early media are counted and dropped. Returns true for SRTP/SRTCP to decrypt. */
static bool demux(encore_peer *p, const uint8_t *in, size_t len)
{
    if (p->state == PEER_CLOSED || len == 0)
        return false;
    if (encore_dtls_is_dtls(in, len)) {
        handle_dtls(p, in, len);
        return false;
    }
    if (!encore_rtp_looks_like_rtp(in, len) || len > ENCORE_PEER_BUF) {
        ENCORE_STAT_ADD(p->stats, drop_unknown, 1);
        return false;
    }
    if (p->state != PEER_CONNECTED) {
        ENCORE_STAT_ADD(p->stats, drop_not_ready, 1);
        return false;
    }
    return true;
}

static void on_recv(NiceAgent *agent, guint stream, guint component, guint len, gchar *data,
                    gpointer user_data)
{
    encore_peer *p = user_data;
    const uint8_t *in = (const uint8_t *)data;
    if (!demux(p, in, len))
        return;
    uint8_t buf[ENCORE_PEER_BUF];
    memcpy(buf, in, len);
    (void)handle_srtp(p, buf, len);
}

/* ---- ICE -------------------------------------------------------------------------------- */

static void start_dtls(encore_peer *p)
{
    if (p->state != PEER_ICE)
        return;
    p->state = PEER_DTLS;
    if (p->dtls_client && encore_dtls_start(p->dtls) < 0) {
        peer_fail(p, ENCORE_PEER_DTLS_FAILED);
        return;
    }
    dtls_schedule(p);
    int n = p->n_early;
    p->n_early = 0;
    for (int i = 0; i < n; i++) {
        if (p->state == PEER_DTLS || p->state == PEER_CONNECTED)
            handle_dtls(p, p->early[i], p->early_len[i]);
        g_free(p->early[i]);
        p->early[i] = NULL;
    }
}

static void on_state_changed(NiceAgent *agent, guint stream, guint component, guint state,
                             gpointer user_data)
{
    encore_peer *p = user_data;
    if (p->state == PEER_CLOSED)
        return;
    switch (state) {
    case NICE_COMPONENT_STATE_CONNECTED:
    case NICE_COMPONENT_STATE_READY:
        p->ice_ready = true;
        start_dtls(p);
        break;
    case NICE_COMPONENT_STATE_FAILED:
        /* With consent freshness on, a connected component fails when consent is lost. */
        peer_fail(p, p->ice_ready ? ENCORE_PEER_CONSENT_LOST : ENCORE_PEER_ICE_FAILED);
        break;
    default:
        break;
    }
}

static void on_selected_pair(NiceAgent *agent, guint stream, guint component, NiceCandidate *lcand,
                             NiceCandidate *rcand, gpointer user_data)
{
    encore_peer *p = user_data;
    p->fd = -1;
    p->have_pair = false;
    GSocket *sock = nice_agent_get_selected_socket(agent, stream, component);
    if (sock) {
        p->fd = g_socket_get_fd(sock);
        g_object_unref(sock);
    }
    memset(&p->remote, 0, sizeof p->remote);
    nice_address_copy_to_sockaddr(&rcand->addr, (struct sockaddr *)&p->remote);
    p->remote_len =
        p->remote.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    p->have_pair = true;
}

static void on_new_candidate(NiceAgent *agent, NiceCandidate *cand, gpointer user_data)
{
    encore_peer *p = user_data;
    if (!p->cb.on_candidate || p->state == PEER_CLOSED)
        return;
    gchar *sdp = nice_agent_generate_local_candidate_sdp(agent, cand);
    if (sdp) {
        const char *c = g_str_has_prefix(sdp, "a=") ? sdp + 2 : sdp;
        p->cb.on_candidate(p, c, p->user_data);
        g_free(sdp);
    }
}

static void connect_timeout(encore_peer *p)
{
    if (p->state != PEER_CONNECTED)
        peer_fail(p, p->state == PEER_DTLS ? ENCORE_PEER_DTLS_FAILED : ENCORE_PEER_ICE_FAILED);
}

static gboolean connect_timeout_cb(gpointer data)
{
    encore_peer *p = data;
    g_source_unref(p->connect_timer);
    p->connect_timer = NULL;
    connect_timeout(p);
    return G_SOURCE_REMOVE;
}

/* ---- ICE-lite --------------------------------------------------------------------------- */

static void lite_on_ready(void *user_data)
{
    encore_peer *p = user_data;
    if (p->state == PEER_CLOSED)
        return;
    p->ice_ready = true;
    start_dtls(p);
}

static void lite_on_data(uint8_t *data, size_t len, void *user_data)
{
    encore_peer *p = user_data;
    /* The transport's buffer is ours to decrypt in place. Authenticated SRTCP (the receiver
     * reports every listener sends) from the selected address also renews ICE consent. */
    if (demux(p, data, len) && handle_srtp(p, data, len) && p->conn)
        encore_icelite_conn_consent(p->conn);
}

static void lite_on_timer(void *user_data)
{
    encore_peer *p = user_data;
    int64_t now = g_get_monotonic_time();
    if (p->state == PEER_CLOSED)
        return;
    if (p->connect_at && now >= p->connect_at) {
        p->connect_at = 0;
        connect_timeout(p);
    }
    if (p->dtls_at && now >= p->dtls_at && p->state == PEER_DTLS) {
        p->dtls_at = 0;
        if (encore_dtls_handle_timeout(p->dtls) < 0) {
            peer_fail(p, ENCORE_PEER_DTLS_FAILED);
            return;
        }
        dtls_schedule(p);
        return;
    }
    if (p->state != PEER_CLOSED)
        lite_arm(p);
}

static void lite_on_consent_lost(void *user_data)
{
    encore_peer *p = user_data;
    peer_fail(p, p->state == PEER_CONNECTED || p->ice_ready ? ENCORE_PEER_CONSENT_LOST
                                                            : ENCORE_PEER_ICE_FAILED);
}

static const encore_icelite_callbacks lite_callbacks = {
    .on_ready = lite_on_ready,
    .on_data = lite_on_data,
    .on_timer = lite_on_timer,
    .on_consent_lost = lite_on_consent_lost,
};

static void fill_local_lite(encore_peer *p, encore_peer_local *local)
{
    memset(local, 0, sizeof *local);
    g_strlcpy(local->ufrag, encore_icelite_conn_ufrag(p->conn), sizeof local->ufrag);
    g_strlcpy(local->pwd, encore_icelite_conn_pwd(p->conn), sizeof local->pwd);
    int n = encore_icelite_n_candidates(p->env.lite);
    for (int i = 0; i < n && local->n_candidates < ENCORE_PEER_MAX_CANDIDATES; i++)
        g_strlcpy(local->candidates[local->n_candidates++],
                  encore_icelite_candidate(p->env.lite, i), sizeof local->candidates[0]);
}

static int add_remote_candidate(encore_peer *p, const char *cand)
{
    if (p->conn) {
        /* A lite agent sends no checks: remote candidates are only checked for syntax. */
        encore_sdp_candidate parsed;
        return cand[0] ? encore_sdp_parse_candidate(cand, &parsed) : 0;
    }
    if (!cand[0]) {
        nice_agent_peer_candidate_gathering_done(p->agent, p->stream);
        return 0;
    }
    if (g_str_has_prefix(cand, "a="))
        cand += 2;
    encore_sdp_candidate parsed;
    int rc = encore_sdp_parse_candidate(cand, &parsed);
    if (rc != 0)
        return rc;
    if (parsed.component != 1)
        return 0; /* rtcp-mux: component 2 candidates are not needed */
    char line[300];
    snprintf(line, sizeof line, "a=%s", cand);
    NiceCandidate *c = nice_agent_parse_remote_candidate_sdp(p->agent, p->stream, line);
    if (!c)
        return -EINVAL;
    GSList *list = g_slist_append(NULL, c);
    int added = nice_agent_set_remote_candidates(p->agent, p->stream, 1, list);
    g_slist_free_full(list, (GDestroyNotify)nice_candidate_free);
    return added >= 0 ? 0 : -EINVAL;
}

static void apply_offer(encore_peer *p, const encore_sdp_offer *offer)
{
    nice_agent_set_remote_credentials(p->agent, p->stream, offer->ice_ufrag, offer->ice_pwd);
    for (int i = 0; i < offer->n_candidates; i++)
        (void)add_remote_candidate(p, offer->candidates[i]);
    if (offer->end_of_candidates)
        nice_agent_peer_candidate_gathering_done(p->agent, p->stream);
}

static void fill_local(encore_peer *p, encore_peer_local *local)
{
    memset(local, 0, sizeof *local);
    gchar *ufrag = NULL, *pwd = NULL;
    if (nice_agent_get_local_credentials(p->agent, p->stream, &ufrag, &pwd)) {
        g_strlcpy(local->ufrag, ufrag, sizeof local->ufrag);
        g_strlcpy(local->pwd, pwd, sizeof local->pwd);
    }
    g_free(ufrag);
    g_free(pwd);
    GSList *cands = nice_agent_get_local_candidates(p->agent, p->stream, 1);
    for (GSList *l = cands; l && local->n_candidates < ENCORE_PEER_MAX_CANDIDATES; l = l->next) {
        gchar *sdp = nice_agent_generate_local_candidate_sdp(p->agent, l->data);
        if (sdp) {
            const char *c = g_str_has_prefix(sdp, "a=") ? sdp + 2 : sdp;
            g_strlcpy(local->candidates[local->n_candidates++], c, sizeof local->candidates[0]);
            g_free(sdp);
        }
    }
    g_slist_free_full(cands, (GDestroyNotify)nice_candidate_free);
}

/* ---- lifetime --------------------------------------------------------------------------- */

encore_peer *encore_peer_new(const encore_peer_env *env, const encore_sdp_offer *offer,
                             const encore_peer_callbacks *cb, void *user_data,
                             encore_peer_local *local, GError **error)
{
    encore_peer *p = g_new0(encore_peer, 1);
    p->env = *env;
    p->stats = encore_worker_stats_of(env->worker);
    p->cb = *cb;
    p->user_data = user_data;
    p->fd = -1;
    p->state = PEER_ICE;
    g_strlcpy(p->fp_alg, offer->fp_alg, sizeof p->fp_alg);
    p->fp_len = MIN(offer->fp_len, sizeof p->fp);
    memcpy(p->fp, offer->fp, p->fp_len);

    /* Our DTLS role follows the offer's a=setup: it is actpass or active -> we are passive. */
    p->dtls_client = offer->setup == ENCORE_SDP_SETUP_PASSIVE;
    p->dtls = encore_dtls_new(env->cert, p->dtls_client ? ENCORE_DTLS_CLIENT : ENCORE_DTLS_SERVER,
                              p->fp_alg, p->fp, p->fp_len, dtls_send, p);
    if (!p->dtls) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot create a DTLS session");
        goto out_free;
    }

    GMainContext *ctx = encore_worker_context(env->worker);
    if (env->lite) {
        p->conn = encore_icelite_conn_new(env->lite, &lite_callbacks, p);
        fill_local_lite(p, local);
        p->connect_at =
            g_get_monotonic_time() +
            (int64_t)(env->connect_timeout_s > 0 ? env->connect_timeout_s : 30) * G_USEC_PER_SEC;
        lite_arm(p);
        return p;
    }
    p->agent =
        nice_agent_new_full(ctx, NICE_COMPATIBILITY_RFC5245,
                            NICE_AGENT_OPTION_ICE_TRICKLE | NICE_AGENT_OPTION_CONSENT_FRESHNESS);
    g_object_set(p->agent, "controlling-mode", FALSE, "ice-tcp", FALSE, "ice-udp", TRUE, NULL);
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(p->agent), "upnp"))
        g_object_set(p->agent, "upnp", FALSE, NULL);
    for (const char *const *ip = env->ips; ip && *ip; ip++) {
        NiceAddress addr;
        nice_address_init(&addr);
        if (!nice_address_set_from_string(&addr, *ip)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "bad media address %s",
                        *ip);
            goto out_free;
        }
        nice_agent_add_local_address(p->agent, &addr);
    }
    p->stream = nice_agent_add_stream(p->agent, 1);
    nice_agent_set_stream_name(p->agent, p->stream, "audio");
    if (env->port_min && env->port_max)
        nice_agent_set_port_range(p->agent, p->stream, 1, env->port_min, env->port_max);
    g_signal_connect(p->agent, "component-state-changed", G_CALLBACK(on_state_changed), p);
    g_signal_connect(p->agent, "new-selected-pair-full", G_CALLBACK(on_selected_pair), p);
    nice_agent_attach_recv(p->agent, p->stream, 1, ctx, on_recv, p);
    if (!nice_agent_gather_candidates(p->agent, p->stream)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                    "no UDP port free for media in %u-%u", env->port_min, env->port_max);
        goto out_free;
    }
    /* Host candidates are gathered synchronously and go into the answer; connect the trickle
     * signal only now so later candidates (none today: no STUN/TURN) are trickled. */
    g_signal_connect(p->agent, "new-candidate-full", G_CALLBACK(on_new_candidate), p);
    fill_local(p, local);
    apply_offer(p, offer);

    p->connect_timer = g_timeout_source_new_seconds(
        env->connect_timeout_s > 0 ? (guint)env->connect_timeout_s : 30);
    g_source_set_callback(p->connect_timer, connect_timeout_cb, p, NULL);
    g_source_attach(p->connect_timer, ctx);
    return p;

out_free:
    encore_peer_free(p);
    return NULL;
}

void encore_peer_free(encore_peer *p)
{
    if (!p)
        return;
    p->state = PEER_CLOSED;
    destroy_source(&p->dtls_timer);
    destroy_source(&p->connect_timer);
    destroy_source(&p->close_idle);
    encore_icelite_conn_free(p->conn);
    if (p->agent) {
        if (p->stream) {
            nice_agent_attach_recv(p->agent, p->stream, 1, NULL, NULL, NULL);
            nice_agent_remove_stream(p->agent, p->stream);
        }
        g_signal_handlers_disconnect_by_data(p->agent, p);
        g_object_unref(p->agent);
    }
    for (int i = 0; i < p->n_early; i++)
        g_free(p->early[i]);
    if (p->dtls && p->srtp)
        encore_dtls_close(p->dtls);
    encore_dtls_free(p->dtls);
    encore_srtp_free(p->srtp);
    g_free(p);
}

int encore_peer_restart(encore_peer *p, const encore_sdp_offer *offer, encore_peer_local *local)
{
    if (offer->fp_len != p->fp_len || memcmp(offer->fp, p->fp, p->fp_len) != 0)
        return -EINVAL;
    if (p->conn) {
        encore_icelite_conn_restart(p->conn);
        fill_local_lite(p, local);
        return 0;
    }
    if (!nice_agent_restart_stream(p->agent, p->stream))
        return -EIO;
    fill_local(p, local);
    apply_offer(p, offer);
    return 0;
}

int encore_peer_add_remote_candidate(encore_peer *p, const char *candidate)
{
    if (p->state == PEER_CLOSED)
        return -EPIPE;
    return add_remote_candidate(p, candidate);
}

bool encore_peer_is_connected(const encore_peer *p)
{
    return p->state == PEER_CONNECTED;
}

bool encore_peer_is_closed(const encore_peer *p)
{
    return p->state == PEER_CLOSED;
}

bool encore_peer_is_lite(const encore_peer *p)
{
    return p->conn != NULL;
}

static int peer_sendto(encore_peer *p, const uint8_t *buf, size_t len)
{
    if (p->conn)
        return encore_icelite_conn_queue(p->conn, buf, len);
    if (p->fd >= 0 && p->have_pair) {
        ssize_t n = sendto(p->fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)&p->remote,
                           p->remote_len);
        ENCORE_STAT_ADD(p->stats, send_calls, 1);
        return n == (ssize_t)len ? 0 : -errno;
    }
    int n = nice_agent_send(p->agent, p->stream, 1, (guint)len, (const gchar *)buf);
    return n == (int)len ? 0 : -EAGAIN;
}

int encore_peer_send_rtp(encore_peer *p, uint8_t *pkt, size_t len, size_t cap)
{
    if (p->state != PEER_CONNECTED)
        return -ENOTCONN;
    int rc = encore_srtp_protect_rtp(p->srtp, pkt, &len, cap);
    if (rc != 0)
        return rc;
    rc = peer_sendto(p, pkt, len);
    if (rc != 0)
        ENCORE_STAT_ADD(p->stats, send_errors, 1);
    return rc;
}

int encore_peer_send_rtcp(encore_peer *p, uint8_t *pkt, size_t len, size_t cap)
{
    if (p->state != PEER_CONNECTED)
        return -ENOTCONN;
    int rc = encore_srtp_protect_rtcp(p->srtp, pkt, &len, cap);
    if (rc != 0)
        return rc;
    rc = peer_sendto(p, pkt, len);
    if (rc != 0)
        ENCORE_STAT_ADD(p->stats, send_errors, 1);
    else
        ENCORE_STAT_ADD(p->stats, rtcp_out, 1);
    return rc;
}

void encore_peer_set_tag(encore_peer *p, void *tag)
{
    p->tag = tag;
}

void *encore_peer_get_tag(const encore_peer *p)
{
    return p->tag;
}
