/* The media engine: owns the worker pool, the DTLS certificate and a copy of the configuration.
 * Main thread for new/free; the rest is read-only and safe from any thread. */
#include "config.h"

#include "media/media.h"

#include "media/srtp.h"

struct encore_media {
    encore_media_config cfg;
    char **ips;
    encore_workers *workers;
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
    m->cert = cert;
    m->main_ctx = g_main_context_ref(main_ctx);
    m->workers = encore_workers_new(cfg->workers);
    return m;
}

void encore_media_free(encore_media *m)
{
    if (!m)
        return;
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

GMainContext *encore_media_main_context(encore_media *m)
{
    return m->main_ctx;
}

void encore_media_stats(encore_media *m, encore_worker_stats *out)
{
    encore_workers_stats(m->workers, out);
}
