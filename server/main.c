/* encored: the composition root. Loads the configuration, starts the media workers, the
 * websocket/HTTP server and the rooms, and runs the main loop until SIGINT or SIGTERM. */
#define G_LOG_DOMAIN "encored"
#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>

#include "media/media.h"
#include "server/accounts/users.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/economy/catalog.h"
#include "server/economy/ledger.h"
#include "server/money.h"
#include "server/payments.h"
#include "server/rooms.h"
#include "server/server.h"
#include "signaling/metrics.h"
#include "signaling/ws.h"

typedef struct {
    encore_media *media;
    encore_rooms *rooms;
    encore_server srv;
} app;

static gboolean on_signal(gpointer data)
{
    g_message("shutting down");
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

#define STAT(name, help, field)                                                                    \
    g_string_append_printf(out,                                                                    \
                           "# HELP encore_media_" name " " help "\n# TYPE encore_media_" name      \
                           " counter\nencore_media_" name " %" G_GUINT64_FORMAT "\n",              \
                           st.field)

/* Per-worker counters, to see how rooms' listeners spread over the media workers. */
static void collect_workers(GString *out, encore_workers *workers)
{
    const struct {
        const char *name, *help;
        size_t offset;
    } fields[] = {
        {"rtp_out_total", "RTP packets sent to listeners, by media worker.",
         G_STRUCT_OFFSET(encore_worker_stats, rtp_out)},
        {"bytes_out_total", "Bytes of RTP sent to listeners, by media worker.",
         G_STRUCT_OFFSET(encore_worker_stats, bytes_out)},
        {"rtcp_out_total", "RTCP packets sent, by media worker.",
         G_STRUCT_OFFSET(encore_worker_stats, rtcp_out)},
        {"nack_in_total", "Sequence numbers listeners asked to be re-sent, by media worker.",
         G_STRUCT_OFFSET(encore_worker_stats, nack_in)},
        {"retransmits_total", "Packets re-sent from a NACK cache, by media worker.",
         G_STRUCT_OFFSET(encore_worker_stats, retransmits)},
    };
    int n = encore_workers_count(workers);
    for (size_t f = 0; f < G_N_ELEMENTS(fields); f++) {
        g_string_append_printf(out,
                               "# HELP encore_media_worker_%s %s\n"
                               "# TYPE encore_media_worker_%s counter\n",
                               fields[f].name, fields[f].help, fields[f].name);
        for (int i = 0; i < n; i++) {
            const uint64_t *v = G_STRUCT_MEMBER_P(
                encore_worker_stats_of(encore_workers_get(workers, i)), fields[f].offset);
            g_string_append_printf(out,
                                   "encore_media_worker_%s{worker=\"%d\"} %" G_GUINT64_FORMAT "\n",
                                   fields[f].name, i, __atomic_load_n(v, __ATOMIC_RELAXED));
        }
    }
}

static void collect(GString *out, void *user_data)
{
    app *a = user_data;
    encore_worker_stats st;
    encore_media_stats(a->media, &st);
    STAT("rtp_in_total", "Authenticated RTP packets from singers.", rtp_in);
    STAT("rtp_forwarded_total", "Packets taken onto stage tracks.", rtp_forwarded);
    STAT("rtp_out_total", "RTP packets sent to listeners.", rtp_out);
    STAT("bytes_out_total", "Bytes of RTP sent to listeners.", bytes_out);
    STAT("rtcp_in_total", "Authenticated RTCP packets received.", rtcp_in);
    STAT("rtcp_out_total", "RTCP packets sent.", rtcp_out);
    STAT("nack_in_total", "Sequence numbers listeners asked to be re-sent.", nack_in);
    STAT("rr_in_total", "Listener receiver reports about stage tracks.", rr_in);
    STAT("listener_lost_total", "Packets listeners reported lost (RTCP RR).", listener_lost);
    STAT("retransmits_total", "Packets re-sent from the NACK cache.", retransmits);
    STAT("send_errors_total", "sendto() failures.", send_errors);
    STAT("send_calls_total",
         "System calls that sent media (sendto, sendmmsg): rtp_out over this "
         "is the batching factor.",
         send_calls);
    STAT("stun_in_total", "ICE-lite Binding requests answered.", stun_in);
    g_string_append(out, "# HELP encore_media_dropped_total Media packets dropped, by reason.\n"
                         "# TYPE encore_media_dropped_total counter\n");
    const struct {
        const char *reason;
        uint64_t v;
    } drops[] = {
        {"not_ready", st.drop_not_ready},     {"srtp_auth", st.drop_srtp_auth},
        {"srtp_replay", st.drop_srtp_replay}, {"malformed", st.drop_malformed},
        {"unknown", st.drop_unknown},         {"dtls", st.drop_dtls},
        {"standby", st.drop_standby},         {"stage", st.drop_stage},
        {"ring_full", st.drop_ring_full},     {"stun", st.drop_stun},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(drops); i++)
        g_string_append_printf(out,
                               "encore_media_dropped_total{reason=\"%s\"} %" G_GUINT64_FORMAT "\n",
                               drops[i].reason, drops[i].v);
    collect_workers(out, encore_media_workers(a->media));
    g_string_append_printf(out,
                           "# HELP encore_rooms Rooms open.\n# TYPE encore_rooms gauge\n"
                           "encore_rooms %u\n"
                           "# HELP encore_members Websocket connections known to rooms.\n"
                           "# TYPE encore_members gauge\nencore_members %u\n"
                           "# HELP encore_listeners Connected listener peers.\n"
                           "# TYPE encore_listeners gauge\nencore_listeners %u\n",
                           encore_rooms_count(a->rooms), encore_rooms_members(a->rooms),
                           encore_rooms_listeners(a->rooms));
    if (a->srv.payments)
        encore_payments_collect(a->srv.payments, out);
    if (a->srv.money)
        encore_money_collect(a->srv.money, out);
    if (a->srv.ledger) {
        encore_ledger_stats ls;
        encore_ledger_get_stats(a->srv.ledger, &ls);
        g_string_append_printf(out,
                               "# HELP encore_ledger_requests_total Ledger requests answered.\n"
                               "# TYPE encore_ledger_requests_total counter\n"
                               "encore_ledger_requests_total %" G_GUINT64_FORMAT "\n"
                               "# HELP encore_ledger_batches_total Ledger transactions.\n"
                               "# TYPE encore_ledger_batches_total counter\n"
                               "encore_ledger_batches_total %" G_GUINT64_FORMAT "\n"
                               "# HELP encore_ledger_store_errors_total Requests answered with a "
                               "store error.\n"
                               "# TYPE encore_ledger_store_errors_total counter\n"
                               "encore_ledger_store_errors_total %" G_GUINT64_FORMAT "\n",
                               ls.requests, ls.batches, ls.store_errors);
    }
}

/* The money side: users store, ledger, catalog, access, top-ups and the money requests. */
static gboolean open_economy(encore_server *srv, const encore_config *cfg, GError **error)
{
    encore_users_config ucfg = {
        .backend = cfg->users_store,
        .password = {.m_kib = (uint32_t)cfg->password_memory_kib,
                     .t = (uint32_t)cfg->password_passes,
                     .p = 1},
    };
    ucfg.allow_weak_password_params = !encore_password_params_strong(&ucfg.password);
    if (ucfg.allow_weak_password_params)
        g_warning("[accounts] password_memory/password_passes are below the OWASP floor: for "
                  "tests only");
    if (!(srv->users = encore_users_open(&ucfg, error)))
        return FALSE;
    encore_ledger_config lcfg = {.backend = cfg->ledger_backend};
    if (!(srv->ledger = encore_ledger_open(&lcfg, error)))
        return FALSE;
    if (!(srv->catalog = encore_catalog_load(cfg->file, error)))
        return FALSE;
    if (!(srv->auth = encore_auth_new(srv, error)))
        return FALSE;
    if (!(srv->payments = encore_payments_new(srv, error)))
        return FALSE;
    if (!(srv->money = encore_money_new(srv, error)))
        return FALSE;
    return TRUE;
}

/* After the websocket server is gone (no request can start anything new): the ledger and the
 * users store finish what was queued, durably, and post their answers to the main context, which
 * is not iterated again, so no answer runs against the state freed next. Nothing is lost: an
 * acknowledgement that never reached its client is a retry with the same key after the restart,
 * and everything derived from money is rebuilt from the ledger at start. */
static void close_economy(encore_server *srv)
{
    encore_ledger_close(srv->ledger);
    encore_users_close(srv->users);
    srv->ledger = NULL;
    srv->users = NULL;
    /* Run the answers they posted (srv->ws is NULL: nobody to reply to, but each frees its state
     * and the folds stay consistent), so nothing queued is left unfreed at exit. */
    while (g_main_context_iteration(srv->ctx, FALSE))
        ;
    encore_money_free(srv->money);
    encore_payments_free(srv->payments);
    encore_auth_free(srv->auth);
    encore_catalog_free(srv->catalog);
    srv->money = NULL;
    srv->payments = NULL;
    srv->auth = NULL;
    srv->catalog = NULL;
    srv->ledger = NULL;
    srv->users = NULL;
}

int main(int argc, char **argv)
{
    int status = 1;
    GError *error = NULL;
    encore_config cfg;
    encore_ws *ws = NULL;
    app a = {0};
    GMainLoop *loop = NULL;

    signal(SIGPIPE, SIG_IGN);
    /* Each peer holds a UDP socket and each client a TCP one: lift the soft descriptor limit to
     * the hard one so a big room does not stop at 1024. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (!encore_config_load(&cfg, &argc, &argv, &error)) {
        fprintf(stderr, "encored: %s\n", error->message);
        g_clear_error(&error);
        encore_config_clear(&cfg);
        return 2;
    }
    if (g_mkdir_with_parents(cfg.data_dir, 0700) != 0) {
        fprintf(stderr, "encored: cannot create data directory %s: %s\n", cfg.data_dir,
                g_strerror(errno));
        goto out;
    }

    GMainContext *ctx = g_main_context_default();
    loop = g_main_loop_new(ctx, FALSE);
    encore_media_config mcfg = {
        .workers = cfg.workers,
        .ips = (const char *const *)cfg.media_ips,
        .port_min = cfg.port_min,
        .port_max = cfg.port_max,
        .opus_bitrate = cfg.opus_bitrate,
        .connect_timeout_s = cfg.connect_timeout_s,
        .max_peers_per_room = cfg.max_peers_per_room,
        .ice_lite = cfg.ice_lite ? ENCORE_MEDIA_ICE_LITE_ON : ENCORE_MEDIA_ICE_LITE_OFF,
    };
    a.media = encore_media_new(&mcfg, ctx, &error);
    if (!a.media) {
        fprintf(stderr, "encored: media: %s\n", error->message);
        goto out;
    }
    a.rooms = encore_rooms_new(a.media);

    encore_ws_config wcfg = {
        .listen_addr = cfg.listen_addr,
        .port = cfg.listen_port,
        .web_root = cfg.web_root,
        .max_message = (size_t)cfg.max_message,
        .max_depth = cfg.max_depth,
        .rate_per_sec = cfg.rate_per_sec,
        .rate_burst = cfg.rate_burst,
        .max_conns_per_addr = cfg.max_conns_per_addr,
        .max_conns = cfg.max_conns,
    };
    ws = encore_ws_new(ctx, &wcfg, &error);
    if (!ws) {
        fprintf(stderr, "encored: listen on %s:%d: %s\n", cfg.listen_addr, cfg.listen_port,
                error->message);
        goto out;
    }
    a.srv.cfg = &cfg;
    a.srv.ctx = ctx;
    a.srv.ws = ws;
    a.srv.rooms = a.rooms;
    if (!open_economy(&a.srv, &cfg, &error)) {
        fprintf(stderr, "encored: %s\n", error->message);
        goto out;
    }
    encore_api_register(&a.srv);
    encore_metrics_add_collector(encore_metrics_default(), collect, &a, NULL);

    g_unix_signal_add(SIGINT, on_signal, loop);
    g_unix_signal_add(SIGTERM, on_signal, loop);
    encore_ws_set_ready(ws, true);
    g_message("listening on http://%s:%d/ (media on %s, ports %u-%u, %d workers)", cfg.listen_addr,
              encore_ws_port(ws), cfg.media_ips[0], cfg.port_min, cfg.port_max,
              encore_workers_count(encore_media_workers(a.media)));
    g_main_loop_run(loop);
    status = 0;

out:
    g_clear_error(&error);
    encore_ws_free(ws);
    a.srv.ws = NULL;
    if (a.srv.ctx)
        close_economy(&a.srv);
    encore_rooms_free(a.rooms);
    encore_media_free(a.media);
    if (loop)
        g_main_loop_unref(loop);
    encore_config_clear(&cfg);
    return status;
}
