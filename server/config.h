/* encored's configuration: defaults, the GKeyFile (INI) file and command-line overrides, in
 * that order. Main thread only; read-only once loaded. docs/encored.example.ini documents every
 * key with its default. */
#ifndef ENCORE_SERVER_CONFIG_H
#define ENCORE_SERVER_CONFIG_H

#include <glib.h>
#include <stdint.h>

typedef struct {
    /* [server] */
    char *listen_addr; /* listen = 127.0.0.1:8080 */
    int listen_port;
    char *web_root; /* web_root = <source dir>/web */
    char *data_dir; /* data_dir = var */
    /* [media] */
    char **media_ips;  /* ips = 127.0.0.1 (comma-separated) */
    uint16_t port_min; /* rtp_ports = 40000-49999 */
    uint16_t port_max;
    int workers;            /* workers = 0 (one per core) */
    uint32_t opus_bitrate;  /* opus_bitrate = 128000 */
    int connect_timeout_s;  /* connect_timeout = 30 */
    int max_peers_per_room; /* max_peers_per_room = 10000 */
    gboolean ice_lite;      /* ice_lite = true: listeners on ICE-lite, one shared socket a worker */
    /* [limits] */
    int max_message;        /* max_message = 65536 */
    int max_depth;          /* max_depth = 16 */
    double rate_per_sec;    /* rate = 50 */
    double rate_burst;      /* burst = 100 */
    int max_conns_per_addr; /* conns_per_addr = 32 */
    int max_conns;          /* max_conns = 10000 */
    /* [accounts] */
    char *users_store;             /* users = sqlite:<data_dir>/users.db */
    char *token_secret_file;       /* token_secret_file = <data_dir>/token.key (made if missing) */
    int token_ttl_s;               /* token_ttl = 3600 */
    char **allowed_origins;        /* allowed_origins = (none: only the server's own origin) */
    gboolean allow_missing_origin; /* allow_missing_origin = true (non-browser clients) */
    int auth_timeout_ms;           /* auth_timeout = 10000 */
    int password_memory_kib;       /* password_memory = 65536 (Argon2id m, KiB) */
    int password_passes;           /* password_passes = 3 (Argon2id t) */
    /* [ledger] */
    char *ledger_backend; /* backend = sqlite:<data_dir>/ledger.db */
    /* [payments] */
    gboolean sandbox;          /* sandbox = false (a demo provider: docs/encored.dev.ini) */
    char *sandbox_secret_file; /* sandbox_secret_file = <data_dir>/sandbox.key (made if missing) */
    /* The whole file as loaded (empty without --config): [economy], [gift.*], [vip.*] (the
     * catalog) and [provider.NAME] (webhook secrets) are read from it by their owners. */
    GKeyFile *file;
} encore_config;

/* Fills `cfg` with the defaults, then the file named by --config (if any), then the other
 * options of argv. Returns FALSE with `error` set on a bad option or file; `--help` prints the
 * usage and exits. Free with encore_config_clear(). */
gboolean encore_config_load(encore_config *cfg, int *argc, char ***argv, GError **error);
void encore_config_clear(encore_config *cfg);

/* Parses "ADDR:PORT" (IPv6 as [ADDR]:PORT) and "MIN-MAX"; exposed for tests. */
gboolean encore_config_parse_listen(const char *text, char **addr, int *port, GError **error);
gboolean encore_config_parse_range(const char *text, uint16_t *min, uint16_t *max, GError **error);

#endif
