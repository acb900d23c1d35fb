/* The media engine: owns the worker pool, the DTLS certificate and a copy of the configuration.
 * Main thread for new/free; the rest is read-only and safe from any thread. */
#include "config.h"

#include "media/media.h"

#include <string.h>

#include "media/srtp.h"

struct encore_media {
    encore_media_config cfg;
    char **ips;
    encore_workers *workers;
    encore_icelite **lites; /* one per worker with ICE-lite, else NULL */
    encore_dtls_cert *cert;
    GMainContext *main_ctx;
};

encore_media *encore_media_new(const encore_media_config *cfg, GMainContext *main_ctx,
                               GError **error)
{
    if (encore_srtp_global_init() != 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "libsrtp failed to initialise");
        return NULL;
    }
    encore_dtls_cert *cert = encore_dtls_cert_new(error);
    if (!cert)
        return NULL;
    encore_media *m = g_new0(encore_media, 1);
    m->cfg = *cfg;
    m->ips = g_strdupv((char **)cfg->ips);
    if (!m->ips || !m->ips[0]) {
        g_strfreev(m->ips);
        m->ips = g_new0(char *, 2);
        m->ips[0] = g_strdup("127.0.0.1");
    }
    m->cfg.ips = (const char *const *)m->ips;
    if (!m->cfg.opus_bitrate)
        m->cfg.opus_bitrate = 128000;
    if (m->cfg.connect_timeout_s <= 0)
        m->cfg.connect_timeout_s = 30;
    if (m->cfg.max_peers_per_room <= 0)
        m->cfg.max_peers_per_room = 10000;
    if (m->cfg.sr_interval_ms <= 0)
        m->cfg.sr_interval_ms = 1000;
    if (m->cfg.ice_lite == ENCORE_MEDIA_ICE_LITE_DEFAULT) {
        const char *env = g_getenv("ENCORE_ICE_LITE");
        m->cfg.ice_lite = env && (strcmp(env, "0") == 0 || g_ascii_strcasecmp(env, "false") == 0)
                              ? ENCORE_MEDIA_ICE_LITE_OFF
                              : ENCORE_MEDIA_ICE_LITE_ON;
    }
    m->cert = cert;
    m->main_ctx = g_main_context_ref(main_ctx);
    m->workers = encore_workers_new(cfg->workers);
    if (m->cfg.ice_lite == ENCORE_MEDIA_ICE_LITE_ON) {
        int n = encore_workers_count(m->workers);
        m->lites = g_new0(encore_icelite *, n);
        encore_icelite_config lc = {
            .ips = m->cfg.ips,
            .port_min = m->cfg.port_min,
            .port_max = m->cfg.port_max,
        };
        for (int i = 0; i < n; i++) {
            encore_worker *w = encore_workers_get(m->workers, i);
            m->lites[i] =
                encore_icelite_new(encore_worker_context(w), &lc, encore_worker_stats_of(w), error);
            if (!m->lites[i]) {
                encore_media_free(m);
                return NULL;
            }
        }
    }
    return m;
}

void encore_media_free(encore_media *m)
{
    if (!m)
        return;
    /* The workers run their queued tasks (peers of freed rooms closing) before they stop; only
     * then may the shared sockets go. They stop reading first: datagrams that keep coming must
     * not keep a worker's last iterations busy. */
    for (int i = 0; m->lites && i < encore_workers_count(m->workers); i++)
        encore_icelite_stop(m->lites[i]);
    encore_workers_stop(m->workers);
    if (m->lites) {
        for (int i = 0; i < encore_workers_count(m->workers); i++)
            encore_icelite_free(m->lites[i]);
        g_free(m->lites);
    }
    encore_workers_free(m->workers);
    encore_dtls_cert_unref(m->cert);
    g_main_context_unref(m->main_ctx);
    g_strfreev(m->ips);
    g_free(m);
}

const encore_media_config *encore_media_get_config(const encore_media *m)
{
    return &m->cfg;
}

encore_workers *encore_media_workers(encore_media *m)
{
    return m->workers;
}

encore_dtls_cert *encore_media_cert(encore_media *m)
{
    return m->cert;
}

encore_icelite *encore_media_icelite(encore_media *m, int index)
{
    return m->lites && index >= 0 && index < encore_workers_count(m->workers) ? m->lites[index]
                                                                              : NULL;
}

GMainContext *encore_media_main_context(encore_media *m)
{
    return m->main_ctx;
}

void encore_media_stats(encore_media *m, encore_worker_stats *out)
{
    encore_workers_stats(m->workers, out);
}
