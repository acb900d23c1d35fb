/* Loading encored's configuration (defaults < INI file < command line). Main thread only. */
#include "config.h"

#include "server/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_ERROR g_quark_from_static_string("encore-config")

gboolean encore_config_parse_listen(const char *text, char **addr, int *port, GError **error)
{
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text) {
        g_set_error(error, CONFIG_ERROR, 1, "listen address '%s' is not ADDR:PORT", text);
        return FALSE;
    }
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || !end || *end || end == colon + 1 || p < 0 || p > 65535) {
        g_set_error(error, CONFIG_ERROR, 1, "listen port in '%s' is not 0-65535", text);
        return FALSE;
    }
    const char *start = text;
    size_t len = (size_t)(colon - text);
    if (text[0] == '[' && colon[-1] == ']') {
        start++;
        len -= 2;
    }
    *addr = g_strndup(start, len);
    *port = (int)p;
    return TRUE;
}

gboolean encore_config_parse_range(const char *text, uint16_t *min, uint16_t *max, GError **error)
{
    char *end = NULL;
    errno = 0;
    long a = strtol(text, &end, 10);
    if (errno || !end || *end != '-') {
        g_set_error(error, CONFIG_ERROR, 1, "port range '%s' is not MIN-MAX", text);
        return FALSE;
    }
    const char *second = end + 1;
    long b = strtol(second, &end, 10);
    if (errno || !end || *end || end == second || a < 1 || b > 65535 || a > b) {
        g_set_error(error, CONFIG_ERROR, 1, "port range '%s' is not MIN-MAX within 1-65535", text);
        return FALSE;
    }
    *min = (uint16_t)a;
    *max = (uint16_t)b;
    return TRUE;
}

static void set_defaults(encore_config *c)
{
    memset(c, 0, sizeof *c);
    c->listen_addr = g_strdup("127.0.0.1");
    c->listen_port = 8080;
    c->web_root = g_strdup(ENCORE_SRCDIR "/web");
    c->data_dir = g_strdup("var");
    c->media_ips = g_strsplit("127.0.0.1", ",", -1);
    c->port_min = 40000;
    c->port_max = 49999;
    c->workers = 0;
    c->opus_bitrate = 128000;
    c->connect_timeout_s = 30;
    c->max_peers_per_room = 10000;
    c->ice_lite = TRUE;
    c->max_message = 65536;
    c->max_depth = 16;
    c->rate_per_sec = 50;
    c->rate_burst = 100;
    c->max_conns_per_addr = 32;
    c->max_conns = 10000;
    c->token_ttl_s = 3600;
    c->allow_missing_origin = TRUE;
    c->auth_timeout_ms = 10000;
    c->password_memory_kib = 65536;
    c->password_passes = 3;
    c->sandbox = FALSE;
    c->file = g_key_file_new();
}

/* Paths under data_dir for whatever the file and the options left unset. */
static void derive_defaults(encore_config *c)
{
    if (!c->users_store)
        c->users_store = g_strdup_printf("sqlite:%s/users.db", c->data_dir);
    if (!c->ledger_backend)
        c->ledger_backend = g_strdup_printf("sqlite:%s/ledger.db", c->data_dir);
    if (!c->token_secret_file)
        c->token_secret_file = g_build_filename(c->data_dir, "token.key", NULL);
    if (!c->sandbox_secret_file)
        c->sandbox_secret_file = g_build_filename(c->data_dir, "sandbox.key", NULL);
}

static gboolean key_bool(GKeyFile *kf, const char *group, const char *key, gboolean *out,
                         GError **error)
{
    if (!g_key_file_has_key(kf, group, key, NULL))
        return TRUE;
    GError *e = NULL;
    gboolean v = g_key_file_get_boolean(kf, group, key, &e);
    if (e) {
        g_set_error(error, CONFIG_ERROR, 1, "[%s] %s must be true or false", group, key);
        g_clear_error(&e);
        return FALSE;
    }
    *out = v;
    return TRUE;
}

static void replace_str(char **dst, char *value)
{
    g_free(*dst);
    *dst = value;
}

static gboolean set_ips(encore_config *c, const char *text, GError **error)
{
    char **ips = g_strsplit(text, ",", -1);
    int n = 0;
    for (char **ip = ips; *ip; ip++) {
        g_strstrip(*ip);
        if (!**ip || (!g_hostname_is_ip_address(*ip))) {
            g_set_error(error, CONFIG_ERROR, 1, "media address '%s' is not an IP address", *ip);
            g_strfreev(ips);
            return FALSE;
        }
        n++;
    }
    if (n == 0) {
        g_set_error(error, CONFIG_ERROR, 1, "no media address given");
        g_strfreev(ips);
        return FALSE;
    }
    g_strfreev(c->media_ips);
    c->media_ips = ips;
    return TRUE;
}

/* Reads an integer key into *out when present; range-checked. */
static gboolean key_int(GKeyFile *kf, const char *group, const char *key, int min, int max,
                        int *out, GError **error)
{
    if (!g_key_file_has_key(kf, group, key, NULL))
        return TRUE;
    GError *e = NULL;
    int v = g_key_file_get_integer(kf, group, key, &e);
    if (e || v < min || v > max) {
        g_set_error(error, CONFIG_ERROR, 1, "[%s] %s must be an integer in %d-%d", group, key, min,
                    max);
        g_clear_error(&e);
        return FALSE;
    }
    *out = v;
    return TRUE;
}

static gboolean key_double(GKeyFile *kf, const char *group, const char *key, double min, double max,
                           double *out, GError **error)
{
    if (!g_key_file_has_key(kf, group, key, NULL))
        return TRUE;
    GError *e = NULL;
    double v = g_key_file_get_double(kf, group, key, &e);
    if (e || v < min || v > max) {
        g_set_error(error, CONFIG_ERROR, 1, "[%s] %s must be a number in %g-%g", group, key, min,
                    max);
        g_clear_error(&e);
        return FALSE;
    }
    *out = v;
    return TRUE;
}

static gboolean load_file(encore_config *c, const char *path, GError **error)
{
    GKeyFile *kf = c->file;
    gboolean ok = FALSE;
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, error))
        goto out;
    char *s;
    if ((s = g_key_file_get_string(kf, "server", "listen", NULL))) {
        char *addr = NULL;
        int port = 0;
        gboolean good = encore_config_parse_listen(s, &addr, &port, error);
        g_free(s);
        if (!good)
            goto out;
        replace_str(&c->listen_addr, addr);
        c->listen_port = port;
    }
    if ((s = g_key_file_get_string(kf, "server", "web_root", NULL)))
        replace_str(&c->web_root, s);
    if ((s = g_key_file_get_string(kf, "server", "data_dir", NULL)))
        replace_str(&c->data_dir, s);
    if ((s = g_key_file_get_string(kf, "media", "ips", NULL))) {
        gboolean good = set_ips(c, s, error);
        g_free(s);
        if (!good)
            goto out;
    }
    if ((s = g_key_file_get_string(kf, "media", "rtp_ports", NULL))) {
        gboolean good = encore_config_parse_range(s, &c->port_min, &c->port_max, error);
        g_free(s);
        if (!good)
            goto out;
    }
    int bitrate = (int)c->opus_bitrate;
    if (!key_int(kf, "media", "workers", 0, 256, &c->workers, error) ||
        !key_int(kf, "media", "opus_bitrate", 6000, 510000, &bitrate, error) ||
        !key_int(kf, "media", "connect_timeout", 5, 300, &c->connect_timeout_s, error) ||
        !key_int(kf, "media", "max_peers_per_room", 1, 1000000, &c->max_peers_per_room, error) ||
        !key_bool(kf, "media", "ice_lite", &c->ice_lite, error) ||
        !key_int(kf, "limits", "max_message", 1024, 16 << 20, &c->max_message, error) ||
        !key_int(kf, "limits", "max_depth", 2, 256, &c->max_depth, error) ||
        !key_double(kf, "limits", "rate", 0.1, 1e6, &c->rate_per_sec, error) ||
        !key_double(kf, "limits", "burst", 1, 1e6, &c->rate_burst, error) ||
        !key_int(kf, "limits", "conns_per_addr", 1, 1000000, &c->max_conns_per_addr, error) ||
        !key_int(kf, "limits", "max_conns", 1, 10000000, &c->max_conns, error) ||
        !key_int(kf, "accounts", "token_ttl", 60, 86400, &c->token_ttl_s, error) ||
        !key_bool(kf, "accounts", "allow_missing_origin", &c->allow_missing_origin, error) ||
        !key_int(kf, "accounts", "auth_timeout", 1000, 600000, &c->auth_timeout_ms, error) ||
        !key_int(kf, "accounts", "password_memory", 8, 4 << 20, &c->password_memory_kib, error) ||
        !key_int(kf, "accounts", "password_passes", 1, 64, &c->password_passes, error) ||
        !key_bool(kf, "payments", "sandbox", &c->sandbox, error))
        goto out;
    c->opus_bitrate = (uint32_t)bitrate;
    if ((s = g_key_file_get_string(kf, "accounts", "users", NULL)))
        replace_str(&c->users_store, s);
    if ((s = g_key_file_get_string(kf, "accounts", "token_secret_file", NULL)))
        replace_str(&c->token_secret_file, s);
    if ((s = g_key_file_get_string(kf, "ledger", "backend", NULL)))
        replace_str(&c->ledger_backend, s);
    if ((s = g_key_file_get_string(kf, "payments", "sandbox_secret_file", NULL)))
        replace_str(&c->sandbox_secret_file, s);
    g_key_file_set_list_separator(kf, ','); /* the only list key; documented comma-separated */
    if (g_key_file_has_key(kf, "accounts", "allowed_origins", NULL)) {
        g_strfreev(c->allowed_origins);
        c->allowed_origins =
            g_key_file_get_string_list(kf, "accounts", "allowed_origins", NULL, NULL);
        for (char **o = c->allowed_origins; o && *o; o++)
            g_strstrip(*o);
    }
    ok = TRUE;
out:
    return ok;
}

gboolean encore_config_load(encore_config *c, int *argc, char ***argv, GError **error)
{
    set_defaults(c);
    char *config_file = NULL, *listen = NULL, *data_dir = NULL, *media_ip = NULL;
    char *rtp_ports = NULL, *web_root = NULL;
    int workers = -1;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file, "INI configuration file", "FILE"},
        {"listen", 'l', 0, G_OPTION_ARG_STRING, &listen, "HTTP/websocket address (127.0.0.1:8080)",
         "ADDR:PORT"},
        {"data-dir", 'd', 0, G_OPTION_ARG_FILENAME, &data_dir, "data directory (var)", "DIR"},
        {"media-ip", 'm', 0, G_OPTION_ARG_STRING, &media_ip,
         "addresses for ICE candidates, comma-separated (127.0.0.1)", "ADDR[,ADDR]"},
        {"rtp-ports", 'p', 0, G_OPTION_ARG_STRING, &rtp_ports, "UDP port range (40000-49999)",
         "MIN-MAX"},
        {"web-root", 'w', 0, G_OPTION_ARG_FILENAME, &web_root, "directory of the web pages", "DIR"},
        {"workers", 0, 0, G_OPTION_ARG_INT, &workers, "media worker threads (0: one per core)",
         "N"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *oc = g_option_context_new("- Encore live karaoke audio server");
    g_option_context_add_main_entries(oc, entries, NULL);
    gboolean ok = g_option_context_parse(oc, argc, argv, error);
    g_option_context_free(oc);
    if (!ok)
        goto out;
    ok = FALSE;
    if (config_file && !load_file(c, config_file, error))
        goto out;
    if (listen) {
        char *addr = NULL;
        if (!encore_config_parse_listen(listen, &addr, &c->listen_port, error))
            goto out;
        replace_str(&c->listen_addr, addr);
    }
    if (data_dir)
        replace_str(&c->data_dir, g_strdup(data_dir));
    if (web_root)
        replace_str(&c->web_root, g_strdup(web_root));
    if (media_ip && !set_ips(c, media_ip, error))
        goto out;
    if (rtp_ports && !encore_config_parse_range(rtp_ports, &c->port_min, &c->port_max, error))
        goto out;
    if (workers >= 0)
        c->workers = workers;
    derive_defaults(c);
    ok = TRUE;
out:
    g_free(config_file);
    g_free(listen);
    g_free(data_dir);
    g_free(media_ip);
    g_free(rtp_ports);
    g_free(web_root);
    return ok;
}

void encore_config_clear(encore_config *c)
{
    g_free(c->listen_addr);
    g_free(c->web_root);
    g_free(c->data_dir);
    g_strfreev(c->media_ips);
    g_free(c->users_store);
    g_free(c->token_secret_file);
    g_strfreev(c->allowed_origins);
    g_free(c->ledger_backend);
    g_free(c->sandbox_secret_file);
    if (c->file)
        g_key_file_free(c->file);
    memset(c, 0, sizeof *c);
}
