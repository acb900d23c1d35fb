/* The signaling server on libwebsockets' GLib event loop: websocket sessions at /ws (origin hook,
 * reassembly, limits, rate limiting, the authentication gate, dispatch to registered routes,
 * bounded send queues), HTTP responses, static files, /healthz and /metrics; the HTTP routes
 * answered asynchronously live in ws_http.c. Runs only on the thread that owns its GMainContext;
 * it must never learn about rooms, money or media, and never blocks except for reading small
 * static files. */
#include "config.h"

#define G_LOG_DOMAIN "encore-ws"

#include "signaling/ws.h"
#include "signaling/ws_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <libwebsockets.h>

#define WS_PATH "/ws"
#define SUBPROTOCOL "encore.v1"
#define DEFAULT_LISTEN "127.0.0.1"
#define DEFAULT_MAX_MESSAGE 65536
#define DEFAULT_RATE 50.0
#define DEFAULT_BURST 100.0
#define DEFAULT_PER_ADDR 32
#define DEFAULT_MAX_CONNS 10000
#define DEFAULT_MAX_QUEUED (1024 * 1024)
/* More rate-limited frames in a row than this close the connection with 1008. */
#define REFUSED_IN_A_ROW_MAX 5
/* How long a requested close may wait for the queue to drain. */
#define CLOSE_FLUSH_SECS 5
/* Bodies up to this size go out in the same write as the headers. */
#define HTTP_SMALL_BODY 2048
#define HTTP_MAX_PATH 1024
/* A reassembly buffer larger than this is released after its message. */
#define RX_KEEP 8192
/* Connections accepted per wake-up of the listening socket, and the pause after running out of
 * file descriptors (the socket stays readable, so retrying at once would spin). */
#define ACCEPT_BATCH 64
#define ACCEPT_PAUSE_MS 250
/* Longest Host header handed to the origin hook. */
#define HOST_MAX 255
/* The default answer deadline of a route request (the other route limits are in ws_http.c). */
#define HTTP_DEFAULT_TIMEOUT_MS 30000

/* One queued outgoing text frame; buf holds LWS_PRE bytes of headroom, then len bytes of JSON. */
typedef struct {
    size_t len;
    unsigned char buf[];
} out_msg;

struct encore_ws_conn {
    encore_ws *ws;
    struct lws *wsi;
    uint64_t id;
    char addr[64];
    void *data;       /* the owner's, see encore_ws_conn_set_data() */
    GQueue outq;      /* of out_msg *, oldest first */
    size_t out_bytes; /* JSON bytes in outq */
    char *rx;         /* reassembly of a message that came in several pieces */
    size_t rx_len, rx_cap;
    bool rx_discard;  /* the message in progress passed max_message: drop the rest of it */
    double tokens;    /* rate limit token bucket */
    gint64 refill_us; /* monotonic time tokens was last brought up to date */
    unsigned refused_in_row;
    bool closing; /* encore_ws_conn_close(): flush the queue, then close */
    bool dead;    /* dropped or finishing: no more input, output or handlers */
    int close_code;
    char close_reason[124];
    bool authenticated;  /* see encore_ws_conn_set_authenticated() */
    GSource *auth_timer; /* the authentication deadline while the gate waits for this conn */
};

GQuark encore_ws_error_quark(void)
{
    return g_quark_from_static_string("encore-ws-error-quark");
}

/* ---- libwebsockets logging ---- */

/* lws errors are mostly about misbehaving clients: shown as messages, at most 20 a second; the
 * rest only with G_MESSAGES_DEBUG. The lws log level is process-wide. */
static void lws_log_emit(int level, const char *line)
{
    static gint64 window;
    static int count;
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (level & LLL_ERR) {
        gint64 now = g_get_monotonic_time() / G_USEC_PER_SEC;
        if (now != window) {
            window = now;
            count = 0;
        }
        if (++count <= 20)
            g_log("encore-lws", G_LOG_LEVEL_MESSAGE, "%.*s", (int)len, line);
        return;
    }
    g_log("encore-lws", G_LOG_LEVEL_DEBUG, "%.*s", (int)len, line);
}

static void lws_log_setup(void)
{
    static gsize once;
    if (g_once_init_enter(&once)) {
        lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
        g_once_init_leave(&once, 1);
    }
}

/* ---- helpers ---- */

/* libwebsockets only notices timers set outside its own callbacks at its next wake-up: wake it. */
void encore_ws__poke(encore_ws *ws)
{
    if (!ws->in_service && ws->lws)
        lws_cancel_service(ws->lws);
}

static void addr_ref(encore_ws *ws, const char *addr)
{
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(ws->per_addr, addr));
    g_hash_table_replace(ws->per_addr, g_strdup(addr), GUINT_TO_POINTER(n + 1));
}

static void addr_unref(encore_ws *ws, const char *addr)
{
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(ws->per_addr, addr));
    if (n <= 1)
        g_hash_table_remove(ws->per_addr, addr);
    else
        g_hash_table_replace(ws->per_addr, g_strdup(addr), GUINT_TO_POINTER(n - 1));
}

/* The peer's address as text, with the IPv4-mapped IPv6 prefix removed. */
void encore_ws__peer_addr(struct lws *wsi, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!lws_get_peer_simple(wsi, buf, len) || !buf[0])
        g_strlcpy(buf, "unknown", len);
    if (g_str_has_prefix(buf, "::ffff:") && strchr(buf + 7, '.'))
        memmove(buf, buf + 7, strlen(buf + 7) + 1);
}

static void count_error(encore_ws *ws, const char *code)
{
    encore_metrics_inc(encore_metrics_counter(ws->metrics, "encore_ws_errors_total",
                                              "Error replies sent to websocket clients, by code.",
                                              "code", code));
}

static void out_queue_clear(encore_ws_conn *conn)
{
    out_msg *m;
    while ((m = g_queue_pop_head(&conn->outq)) != NULL)
        g_free(m);
    conn->out_bytes = 0;
}

static void rx_release(encore_ws_conn *conn)
{
    g_free(conn->rx);
    conn->rx = NULL;
    conn->rx_len = conn->rx_cap = 0;
}

/* Drops a connection at once, without close handshake (a client that does not read). */
static void conn_drop(encore_ws_conn *conn, encore_metric *why)
{
    if (conn->dead)
        return;
    conn->dead = true;
    out_queue_clear(conn);
    encore_metrics_inc(why);
    lws_set_timeout(conn->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    encore_ws__poke(conn->ws);
}

/* Serializes msg (stolen) into the connection's queue and asks for a writeable callback. */
/* Queues `n` bytes of already serialized JSON text (copied) for the connection. */
static void conn_queue_text(encore_ws_conn *conn, const char *text, size_t n)
{
    encore_ws *ws = conn->ws;
    if (ws->destroying || conn->dead || conn->closing || n == 0)
        return;
    /* One message of any size may wait; a reader that lets the queue grow past the cap is dead. */
    if (conn->out_bytes > 0 && conn->out_bytes + n > ws->cfg.max_queued) {
        g_debug("conn %" G_GUINT64_FORMAT " (%s): %zu bytes queued, dropping a slow reader",
                conn->id, conn->addr, conn->out_bytes);
        conn_drop(conn, ws->m.dropped_slow);
        return;
    }
    out_msg *m = g_malloc(sizeof *m + LWS_PRE + n);
    m->len = n;
    memcpy(m->buf + LWS_PRE, text, n);
    g_queue_push_tail(&conn->outq, m);
    conn->out_bytes += n;
    lws_callback_on_writable(conn->wsi);
}

static void conn_queue(encore_ws_conn *conn, json_t *msg)
{
    if (!msg)
        return;
    char *text = json_dumps(msg, ENCORE_PROTO_DUMP_FLAGS);
    json_decref(msg);
    if (!text) {
        g_warning("conn %" G_GUINT64_FORMAT ": message could not be serialized", conn->id);
        return;
    }
    conn_queue_text(conn, text, strlen(text));
    free(text);
}

static void send_error(encore_ws_conn *conn, json_t *id, const char *code, const char *field,
                       const char *message)
{
    if (conn->dead || conn->closing || conn->ws->destroying)
        return;
    count_error(conn->ws, code);
    conn_queue(conn, encore_proto_build_error(id, code, message, field));
}

/* ---- the authentication gate ---- */

static void auth_timer_stop(encore_ws_conn *conn)
{
    if (!conn->auth_timer)
        return;
    g_source_destroy(conn->auth_timer);
    g_source_unref(conn->auth_timer);
    conn->auth_timer = NULL;
}

static gboolean auth_timeout(void *user_data)
{
    encore_ws_conn *conn = user_data;
    g_source_unref(conn->auth_timer); /* GLib keeps its own reference while dispatching */
    conn->auth_timer = NULL;
    if (!conn->authenticated && !conn->dead && !conn->closing) {
        g_debug("conn %" G_GUINT64_FORMAT " (%s): not authenticated in time", conn->id, conn->addr);
        encore_metrics_inc(conn->ws->m.dropped_auth);
        encore_ws_conn_close(conn, LWS_CLOSE_STATUS_POLICY_VIOLATION, "authentication timeout");
    }
    return G_SOURCE_REMOVE;
}

/* Gives an unauthenticated connection its deadline when the gate has one. */
static void auth_timer_start(encore_ws_conn *conn)
{
    encore_ws *ws = conn->ws;
    auth_timer_stop(conn);
    if (!ws->auth_type || ws->auth_timeout_ms == 0 || conn->authenticated || conn->dead ||
        conn->closing)
        return;
    conn->auth_timer = g_timeout_source_new(ws->auth_timeout_ms);
    g_source_set_callback(conn->auth_timer, auth_timeout, conn, NULL);
    g_source_attach(conn->auth_timer, ws->ctx);
}

/* ---- incoming messages ---- */

static bool take_token(encore_ws_conn *conn)
{
    const encore_ws_config *cfg = &conn->ws->cfg;
    gint64 now = g_get_monotonic_time();
    conn->tokens += (double)(now - conn->refill_us) * cfg->rate_per_sec / G_USEC_PER_SEC;
    if (conn->tokens > cfg->rate_burst)
        conn->tokens = cfg->rate_burst;
    conn->refill_us = now;
    if (conn->tokens < 1.0)
        return false;
    conn->tokens -= 1.0;
    conn->refused_in_row = 0;
    return true;
}

/* A frame over the rate. Its id is recovered when it decodes, so the client can match the error;
 * a client that keeps flooding is closed. */
static void refuse_rate(encore_ws_conn *conn, const char *buf, size_t len)
{
    encore_ws *ws = conn->ws;
    json_t *msg = NULL, *id = NULL;
    if (buf)
        (void)encore_proto_decode(buf, len, &ws->limits, &msg, NULL, &id, NULL);
    char text[96];
    g_snprintf(text, sizeof text, "more than %g messages per second (burst %g)",
               ws->cfg.rate_per_sec, ws->cfg.rate_burst);
    send_error(conn, id, ENCORE_PROTO_CODE_RATE_LIMITED, NULL, text);
    json_decref(msg);
    if (++conn->refused_in_row > REFUSED_IN_A_ROW_MAX) {
        encore_metrics_inc(ws->m.dropped_rate);
        encore_ws_conn_close(conn, LWS_CLOSE_STATUS_POLICY_VIOLATION, "rate limit exceeded");
    }
}

static void handle_oversize(encore_ws_conn *conn)
{
    encore_metrics_inc(conn->ws->m.msgs_in);
    if (!take_token(conn)) {
        refuse_rate(conn, NULL, 0);
        return;
    }
    char text[96];
    g_snprintf(text, sizeof text, "message over the limit of %zu bytes", conn->ws->cfg.max_message);
    send_error(conn, NULL, ENCORE_PROTO_CODE_TOO_LARGE, NULL, text);
}

static void handle_message(encore_ws_conn *conn, const char *buf, size_t len)
{
    encore_ws *ws = conn->ws;
    json_t *msg = NULL, *id = NULL;
    const char *type = NULL;
    encore_proto_err err;

    encore_metrics_inc(ws->m.msgs_in);
    if (!take_token(conn)) {
        refuse_rate(conn, buf, len);
        return;
    }
    if (encore_proto_decode(buf, len, &ws->limits, &msg, &type, &id, &err) != 0) {
        send_error(conn, NULL, err.code, NULL, err.message);
        return;
    }
    if (ws->auth_type && !conn->authenticated && strcmp(type, ws->auth_type) != 0 &&
        strcmp(type, "ping") != 0) {
        char text[128];
        g_snprintf(text, sizeof text, "not authenticated: send the '%.64s' request first",
                   ws->auth_type);
        send_error(conn, id, ENCORE_WS_CODE_UNAUTHORIZED, NULL, text);
        goto out_free_msg;
    }
    const encore_ws_route *route = g_hash_table_lookup(ws->routes, type);
    if (!route) {
        char text[128];
        bool quotable = strlen(type) <= 64;
        for (const char *p = type; quotable && *p; p++)
            quotable = *p > 0x20 && *p < 0x7F && *p != '\'';
        if (quotable)
            g_snprintf(text, sizeof text, "unknown request type '%s'", type);
        else
            g_strlcpy(text, "unknown request type", sizeof text);
        send_error(conn, id, ENCORE_PROTO_CODE_UNKNOWN_TYPE, NULL, text);
        goto out_free_msg;
    }
    const char *field = NULL;
    char why[256];
    if (encore_proto_validate(msg, route->schema, &field, why, sizeof why) != 0) {
        send_error(conn, id, ENCORE_PROTO_CODE_INVALID_FIELD, field, why);
        goto out_free_msg;
    }
    route->handler(conn, id, msg, ws->route_data);

out_free_msg:
    json_decref(msg);
}

static int on_receive(encore_ws *ws, session *s, struct lws *wsi, const char *in, size_t len)
{
    encore_ws_conn *conn = s->conn;
    if (!conn)
        return -1;
    encore_metrics_add(ws->m.bytes_in, len);
    if (conn->dead || conn->closing)
        return 0; /* the connection is going away: ignore what it still says */

    bool final = lws_is_final_fragment(wsi);
    if (!conn->rx_discard) {
        if (conn->rx_len + len > ws->cfg.max_message) {
            conn->rx_discard = true;
            rx_release(conn);
        } else if (final && conn->rx_len == 0) {
            handle_message(conn, in, len); /* the common case: one piece, no copy */
            return 0;
        } else {
            if (conn->rx_len + len > conn->rx_cap) {
                size_t cap = MAX(conn->rx_cap * 2, conn->rx_len + len);
                conn->rx_cap = MIN(cap, ws->cfg.max_message);
                conn->rx = g_realloc(conn->rx, conn->rx_cap);
            }
            if (len)
                memcpy(conn->rx + conn->rx_len, in, len);
            conn->rx_len += len;
        }
    }
    if (!final)
        return 0;
    if (conn->rx_discard) {
        conn->rx_discard = false;
        handle_oversize(conn);
    } else {
        size_t n = conn->rx_len;
        conn->rx_len = 0;
        handle_message(conn, conn->rx, n);
    }
    if (conn->rx_cap > RX_KEEP)
        rx_release(conn);
    return 0;
}

/* ---- websocket lifecycle ---- */

/* Refuses a websocket handshake with a small HTTP response; returns the value the
 * HTTP_CONFIRM_UPGRADE callback must return. */
static int refuse_upgrade(encore_ws *ws, struct lws *wsi, unsigned status, const char *body,
                          encore_metric *why)
{
    encore_metrics_inc(why);
    if (encore_ws__http_small(ws, wsi, status, "text/plain; charset=utf-8", body, strlen(body),
                              false, NULL) != 0)
        return -1;
    return 1; /* response sent: libwebsockets completes the transaction */
}

/* Asks the origin hook about a handshake; true to let it proceed. */
static bool origin_allowed(encore_ws *ws, struct lws *wsi)
{
    char origin[ENCORE_WS_ORIGIN_MAX + 1], host[HOST_MAX + 1];
    const char *o = NULL, *h = NULL;
    size_t olen = 0;
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (n > ENCORE_WS_ORIGIN_MAX)
        return false;
    if (n > 0) {
        /* A copy that fails or stops at an embedded NUL is not the header that came. */
        if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) != n ||
            strlen(origin) != (size_t)n)
            return false;
        o = origin;
        olen = (size_t)n;
    }
    n = lws_hdr_total_length(wsi, WSI_TOKEN_HOST);
    if (n > 0 && n <= HOST_MAX && lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) == n)
        h = host;
    return ws->origin_fn(o, olen, h, ws->origin_data);
}

static int on_confirm_upgrade(encore_ws *ws, struct lws *wsi, const char *upgrade)
{
    char uri[HTTP_MAX_PATH], addr[64];
    if (!upgrade || g_ascii_strcasecmp(upgrade, "websocket") != 0)
        return -1; /* h2c and friends: not offered here */
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, WS_PATH) != 0)
        return refuse_upgrade(ws, wsi, 404, "no websocket here; use " WS_PATH "\n",
                              ws->m.refused_path);
    if (ws->origin_fn && !origin_allowed(ws, wsi))
        return refuse_upgrade(ws, wsi, 403, "origin not allowed\n", ws->m.refused_origin);
    if (ws->destroying || g_hash_table_size(ws->conns) >= (guint)ws->cfg.max_conns)
        return refuse_upgrade(ws, wsi, 503, "server full\n", ws->m.refused_full);
    encore_ws__peer_addr(wsi, addr, sizeof addr);
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(ws->per_addr, addr));
    if (n >= (guint)ws->cfg.max_conns_per_addr)
        return refuse_upgrade(ws, wsi, 503, "too many connections from this address\n",
                              ws->m.refused_per_addr);
    return 0;
}

static int on_established(encore_ws *ws, session *s, struct lws *wsi)
{
    /* Answers and events are small frames that must leave at once: without this, Nagle holds an
     * answer queued behind an event until the client's delayed ACK (up to 40 ms). */
    int one = 1;
    (void)setsockopt(lws_get_socket_fd(wsi), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    encore_ws_conn *conn = g_new0(encore_ws_conn, 1);
    conn->ws = ws;
    conn->wsi = wsi;
    conn->id = ws->next_id++;
    encore_ws__peer_addr(wsi, conn->addr, sizeof conn->addr);
    g_queue_init(&conn->outq);
    conn->tokens = ws->cfg.rate_burst;
    conn->refill_us = g_get_monotonic_time();
    s->conn = conn;
    g_hash_table_insert(ws->conns, &conn->id, conn);
    addr_ref(ws, conn->addr);
    encore_metrics_inc(ws->m.opened);
    encore_metrics_inc(ws->m.current);
    g_debug("conn %" G_GUINT64_FORMAT " open from %s", conn->id, conn->addr);
    auth_timer_start(conn);
    if (ws->on_open)
        ws->on_open(conn, ws->conn_data);
    return 0;
}

/* The end of a websocket session, whatever the cause; runs once (later calls find no conn). */
static void conn_finish(encore_ws *ws, session *s)
{
    encore_ws_conn *conn = s->conn;
    if (!conn)
        return;
    s->conn = NULL;
    conn->dead = true; /* sends from on_close are ignored */
    auth_timer_stop(conn);
    g_hash_table_remove(ws->conns, &conn->id);
    addr_unref(ws, conn->addr);
    encore_metrics_inc(ws->m.closed);
    encore_metrics_sub(ws->m.current, 1);
    g_debug("conn %" G_GUINT64_FORMAT " closed", conn->id);
    if (ws->on_close)
        ws->on_close(conn, ws->conn_data);
    out_queue_clear(conn);
    rx_release(conn);
    g_free(conn);
}

static int on_ws_writeable(encore_ws *ws, session *s, struct lws *wsi)
{
    encore_ws_conn *conn = s->conn;
    if (!conn || conn->dead)
        return -1;
    out_msg *m = g_queue_pop_head(&conn->outq);
    if (m) {
        conn->out_bytes -= m->len;
        int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
        size_t len = m->len;
        g_free(m);
        if (n < 0)
            return -1;
        encore_metrics_inc(ws->m.msgs_out);
        encore_metrics_add(ws->m.bytes_out, len);
        if (!g_queue_is_empty(&conn->outq) || conn->closing)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (conn->closing) {
        lws_close_reason(wsi, (enum lws_close_status)conn->close_code,
                         (unsigned char *)conn->close_reason, strlen(conn->close_reason));
        return -1;
    }
    return 0;
}

/* ---- HTTP ---- */

void encore_ws__body_free(session *s)
{
    http_body *b = s->body;
    if (!b)
        return;
    s->body = NULL;
    if (b->fd >= 0)
        close(b->fd);
    g_free(b->body);
    g_free(b->ctype);
    g_free(b);
}

static void count_http(encore_ws *ws, unsigned status)
{
    char code[8];
    g_snprintf(code, sizeof code, "%u", status);
    encore_metrics_inc(encore_metrics_counter(ws->metrics, "encore_http_responses_total",
                                              "HTTP responses, by status code.", "code", code));
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

/* Adds the status line and the headers every response carries. */
static int http_headers(encore_ws *ws, struct lws *wsi, unsigned status, const char *ctype,
                        size_t len, const http_extra *x, unsigned char **p, unsigned char *end)
{
    count_http(ws, status);
    if (x && x->api)
        encore_metrics_inc(ws->m.api_class[status / 100 - 1]);
    if (lws_add_http_header_status(wsi, status, p, end))
        return -1;
    if (ctype &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (const unsigned char *)ctype,
                                     (int)strlen(ctype), p, end))
        return -1;
    /* 204 and 304 have no body and say no length. */
    if (status != 204 && status != 304 &&
        lws_add_http_header_content_length(wsi, (lws_filepos_t)len, p, end))
        return -1;
    if (add_header(wsi, "x-content-type-options:", "nosniff", p, end))
        return -1;
    if (status == 405 && add_header(wsi, "allow:", x && x->allow ? x->allow : "GET, HEAD", p, end))
        return -1;
    if (x && x->api && add_header(wsi, "cache-control:", "no-store", p, end))
        return -1;
    if (x && x->close && add_header(wsi, "connection:", "close", p, end))
        return -1;
    return 0;
}

/* Writes a complete response whose body fits the header buffer in one write. */
int encore_ws__http_small(encore_ws *ws, struct lws *wsi, unsigned status, const char *ctype,
                          const char *body, size_t len, bool head, const http_extra *x)
{
    unsigned char buf[LWS_PRE + 1024 + HTTP_SMALL_BODY];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - HTTP_SMALL_BODY;
    g_return_val_if_fail(len <= HTTP_SMALL_BODY, -1);
    if (http_headers(ws, wsi, status, ctype, len, x, &p, end) ||
        lws_finalize_http_header(wsi, &p, end))
        return -1;
    if (!head && len) {
        memcpy(p, body, len);
        p += len;
    }
    int n = (int)(p - start);
    return lws_write(wsi, start, (size_t)n, LWS_WRITE_HTTP) == n ? 0 : -1;
}

/* The end of a response: reading resumes, and the connection either waits for the next request
 * or closes. Returns the value for the libwebsockets callback. s must not be used afterwards
 * (completing the transaction frees it). */
static int http_finish(session *s, struct lws *wsi)
{
    bool close_after = s->close_after;
    encore_ws__body_free(s);
    if (s->rx_paused) {
        s->rx_paused = false;
        lws_rx_flow_control(wsi, 1);
    }
    if (close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Starts a response whose body is b (stolen; may be NULL for an empty body). Returns the value
 * for the LWS_CALLBACK_HTTP callback. */
static int http_start(encore_ws *ws, session *s, struct lws *wsi, unsigned status,
                      const char *ctype, http_body *b, bool head)
{
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf;
    size_t len = b ? b->remaining : 0;
    http_extra x = {.close = s->close_after};

    encore_ws__body_free(s);
    if (b && b->fd < 0 && len <= HTTP_SMALL_BODY) {
        int rc = encore_ws__http_small(ws, wsi, status, ctype, b->body, len, head, &x);
        g_free(b->body);
        g_free(b);
        if (rc)
            return -1;
        return http_finish(s, wsi);
    }
    s->body = b;
    if (http_headers(ws, wsi, status, ctype, len, &x, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end)) {
        encore_ws__body_free(s);
        return -1;
    }
    if (head || len == 0)
        return http_finish(s, wsi);
    lws_callback_on_writable(wsi);
    return 0;
}

static int http_text(encore_ws *ws, session *s, struct lws *wsi, unsigned status, const char *text,
                     bool head)
{
    http_body *b = g_new0(http_body, 1);
    b->fd = -1;
    b->body = g_strdup(text);
    b->remaining = strlen(text);
    return http_start(ws, s, wsi, status, "text/plain; charset=utf-8", b, head);
}

/* Writes the head of a route answer (with its body when small). */
static int http_answer_head(encore_ws *ws, session *s, struct lws *wsi, http_body *b)
{
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf;
    http_extra x = {.api = true, .close = s->close_after};
    b->head_pending = false;
    if (b->remaining <= HTTP_SMALL_BODY) {
        if (encore_ws__http_small(ws, wsi, b->status, b->ctype, b->body, b->remaining, false, &x))
            return -1;
        return http_finish(s, wsi);
    }
    if (http_headers(ws, wsi, b->status, b->ctype, b->remaining, &x, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_http_writeable(encore_ws *ws, session *s, struct lws *wsi)
{
    http_body *b = s->body;
    if (!b)
        return 0;
    if (b->head_pending)
        return http_answer_head(ws, s, wsi, b);
    size_t n = MIN(b->remaining, (size_t)HTTP_CHUNK);
    unsigned char *data = ws->io + LWS_PRE;
    if (b->fd >= 0) {
        ssize_t r = pread(b->fd, data, n, (off_t)b->pos);
        if (r <= 0)
            return -1; /* the file shrank under us: the promised length cannot be kept */
        n = (size_t)r;
    } else {
        memcpy(data, b->body + b->pos, n);
    }
    bool last = n == b->remaining;
    if (lws_write(wsi, data, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
        return -1;
    b->pos += n;
    b->remaining -= n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    return http_finish(s, wsi);
}

static const char *mime_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".wav", "audio/wav"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".vtt", "text/vtt; charset=utf-8"},
        {".ogg", "audio/ogg"},
        {".opus", "audio/ogg"},
        {".webm", "audio/webm"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < G_N_ELEMENTS(types); i++)
            if (g_ascii_strcasecmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* True for "/", "/a/b.js", "/dir/": no segment starting with '.' (so no "..", no hidden files),
 * no backslash, no empty segment, bounded length. */
static bool url_path_ok(const char *path)
{
    if (path[0] != '/' || strlen(path) >= HTTP_MAX_PATH || strchr(path, '\\'))
        return false;
    for (const char *p = path; *p; p++)
        if (*p == '/' && (p[1] == '.' || p[1] == '/'))
            return false;
    return true;
}

static int serve_file(encore_ws *ws, session *s, struct lws *wsi, const char *path, bool head)
{
    char *full = NULL, *real = NULL;
    int fd = -1, rc;
    struct stat st;

    if (!ws->web_root || !url_path_ok(path))
        goto out_not_found;
    full = g_strconcat(ws->web_root, path, g_str_has_suffix(path, "/") ? "index.html" : "", NULL);
    real = realpath(full, NULL);
    /* The resolved file must lie inside the resolved root (symlinks pointing out are refused). */
    if (!real || strncmp(real, ws->web_root, ws->web_root_len) != 0 ||
        (real[ws->web_root_len] != '/' && ws->web_root_len > 1))
        goto out_not_found;
    /* O_NONBLOCK: opening a FIFO must not hang the loop (it is refused below). */
    fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto out_not_found;

    http_body *b = g_new0(http_body, 1);
    b->fd = fd;
    b->remaining = (size_t)st.st_size;
    rc = http_start(ws, s, wsi, 200, mime_type(real), b, head);
    free(real);
    g_free(full);
    return rc;

out_not_found:
    if (fd >= 0)
        close(fd);
    free(real);
    g_free(full);
    return http_text(ws, s, wsi, 404, "not found\n", head);
}

static int on_http(encore_ws *ws, session *s, struct lws *wsi, const char *in, size_t len)
{
    const char *method = encore_ws__request_method(wsi);
    bool head = method && strcmp(method, "HEAD") == 0;
    bool get = method && strcmp(method, "GET") == 0;
    char *path = g_strndup(in ? in : "", len);
    GString *allow = g_string_new(NULL);
    bool path_known;
    const encore_ws_http_route *route = encore_ws__route_find(ws, method, path, &path_known, allow);
    int rc;

    if ((get || head) && strcmp(path, "/healthz") == 0) {
        rc = ws->ready ? http_text(ws, s, wsi, 200, "ok", head)
                       : http_text(ws, s, wsi, 503, "starting", head);
    } else if ((get || head) && strcmp(path, "/metrics") == 0) {
        GString *text = g_string_sized_new(4096);
        encore_metrics_render(ws->metrics, text);
        http_body *b = g_new0(http_body, 1);
        b->fd = -1;
        b->remaining = text->len;
        b->body = g_string_free(text, FALSE);
        rc = http_start(ws, s, wsi, 200, "text/plain; version=0.0.4; charset=utf-8", b, head);
    } else if (route || path_known || g_str_has_prefix(path, "/api/") ||
               strcmp(path, "/api") == 0) {
        rc = encore_ws__on_api(ws, s, wsi, method ? method : "", path, route,
                               path_known ? allow->str : NULL);
    } else if (!get && !head) {
        s->close_after = encore_ws__request_has_body(wsi, method);
        rc = http_text(ws, s, wsi, 405, "method not allowed\n", false);
    } else {
        rc = serve_file(ws, s, wsi, path, head);
    }
    g_string_free(allow, TRUE);
    g_free(path);
    return rc;
}

/* ---- accepting connections ---- */

/* The listening socket is ours rather than libwebsockets': bind errors come back as errno (lws
 * 4.1 leaves a dangling GSource behind when its own bind fails) and no listener of lws needs
 * tearing down. Accepted sockets are adopted by the vhost exactly as lws' own listener would. */

static gboolean on_accept(int fd, GIOCondition cond, void *user_data);

static void accept_watch(encore_ws *ws)
{
    ws->accept_source = g_unix_fd_source_new(ws->listen_fd, G_IO_IN);
    g_source_set_callback(ws->accept_source, G_SOURCE_FUNC(on_accept), ws, NULL);
    g_source_attach(ws->accept_source, ws->ctx);
}

static gboolean accept_resume(void *user_data)
{
    encore_ws *ws = user_data;
    g_source_unref(ws->accept_source);
    accept_watch(ws);
    return G_SOURCE_REMOVE;
}

static gboolean on_accept(int lfd, GIOCondition cond, void *user_data)
{
    encore_ws *ws = user_data;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                encore_metrics_inc(ws->m.accept_fd_limit);
                g_message("accept: %s; pausing %d ms", g_strerror(errno), ACCEPT_PAUSE_MS);
                g_source_destroy(ws->accept_source);
                g_source_unref(ws->accept_source);
                ws->accept_source = g_timeout_source_new(ACCEPT_PAUSE_MS);
                g_source_set_callback(ws->accept_source, accept_resume, ws, NULL);
                g_source_attach(ws->accept_source, ws->ctx);
                encore_ws__poke(ws);
                return G_SOURCE_REMOVE;
            }
            break; /* EAGAIN, or a transient error: wait for the next wake-up */
        }
        /* On failure lws closes fd itself. */
        (void)lws_adopt_socket_vhost(ws->vhost, fd);
    }
    encore_ws__poke(ws); /* the new connections' timeouts need lws' timer re-armed */
    return G_SOURCE_CONTINUE;
}

static int listen_socket(const char *addr, int port, int *bound_port, GError **error)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sslen = sizeof *sin;
    } else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sslen = sizeof *sin6;
    } else {
        g_set_error(error, ENCORE_WS_ERROR, ENCORE_WS_ERROR_CONFIG,
                    "listen address '%s' is not an IP address", addr);
        return -1;
    }
    int one = 1, zero = 0;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto out_errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        goto out_errno;
    /* "::" serves IPv4 as well. */
    if (ss.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0)
        goto out_errno;
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, SOMAXCONN) != 0)
        goto out_errno;
    sslen = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0)
        goto out_errno;
    *bound_port = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
    return fd;

out_errno:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    g_set_error(error, ENCORE_WS_ERROR, ENCORE_WS_ERROR_LISTEN, "cannot listen on %s port %d: %s",
                addr, port, g_strerror(e));
    return -1;
}

/* ---- the libwebsockets callback ---- */

static int dispatch(encore_ws *ws, struct lws *wsi, enum lws_callback_reasons reason, session *s,
                    void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return on_confirm_upgrade(ws, wsi, in);
    case LWS_CALLBACK_ESTABLISHED:
        return s ? on_established(ws, s, wsi) : -1;
    case LWS_CALLBACK_RECEIVE:
        return s ? on_receive(ws, s, wsi, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return s ? on_ws_writeable(ws, s, wsi) : -1;
    case LWS_CALLBACK_CLOSED:
        if (s)
            conn_finish(ws, s);
        return 0;
    case LWS_CALLBACK_HTTP:
        return s ? on_http(ws, s, wsi, in, len) : -1;
    case LWS_CALLBACK_HTTP_BODY:
        return s ? encore_ws__on_http_body(ws, s, in, len) : -1;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return s ? encore_ws__on_http_body_done(ws, s, wsi) : -1;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return s ? on_http_writeable(ws, s, wsi) : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL: /* the session is about to be freed */
        if (s)
            encore_ws__http_session_end(ws, s);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        /* The last word on every connection: finish whatever a missed CLOSED left behind. */
        if (s) {
            conn_finish(ws, s);
            encore_ws__http_session_end(ws, s);
        }
        return 0;
    default:
        return 0;
    }
}

static int lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct lws_context *lc = wsi ? lws_get_context(wsi) : NULL;
    encore_ws *ws = lc ? lws_context_user(lc) : NULL;
    if (!ws)
        return 0;
    ws->in_service++;
    int rc = dispatch(ws, wsi, reason, user, in, len);
    ws->in_service--;
    return rc;
}

/* ---- public API ---- */

static const lws_retry_bo_t idle_policy = {
    .secs_since_valid_ping = 30,   /* ping a websocket that said nothing for 30 s */
    .secs_since_valid_hangup = 75, /* and drop it when nothing came back */
};

static bool apply_config(encore_ws *ws, const encore_ws_config *in, GError **error)
{
    encore_ws_config c = in ? *in : (encore_ws_config){.port = ENCORE_WS_DEFAULT_PORT};
    if (c.port < 0 || c.port > 65535 || c.max_depth < 0 || c.rate_per_sec < 0 || c.rate_burst < 0 ||
        c.max_conns_per_addr < 0 || c.max_conns < 0) {
        g_set_error(error, ENCORE_WS_ERROR, ENCORE_WS_ERROR_CONFIG, "invalid signaling limits");
        return false;
    }
    ws->listen_addr = g_strdup(c.listen_addr ? c.listen_addr : DEFAULT_LISTEN);
    if (c.web_root) {
        ws->web_root = realpath(c.web_root, NULL);
        struct stat st;
        if (!ws->web_root || stat(ws->web_root, &st) != 0 || !S_ISDIR(st.st_mode)) {
            g_set_error(error, ENCORE_WS_ERROR, ENCORE_WS_ERROR_CONFIG,
                        "web root '%s' is not a directory", c.web_root);
            return false;
        }
        ws->web_root_len = strlen(ws->web_root);
    }
    c.listen_addr = ws->listen_addr;
    c.web_root = ws->web_root;
    c.max_message = c.max_message ? c.max_message : DEFAULT_MAX_MESSAGE;
    c.max_depth = c.max_depth ? c.max_depth : ENCORE_PROTO_MAX_DEPTH;
    c.rate_per_sec = c.rate_per_sec > 0 ? c.rate_per_sec : DEFAULT_RATE;
    c.rate_burst = c.rate_burst > 0 ? c.rate_burst : DEFAULT_BURST;
    if (c.rate_burst < 1.0)
        c.rate_burst = 1.0;
    c.max_conns_per_addr = c.max_conns_per_addr ? c.max_conns_per_addr : DEFAULT_PER_ADDR;
    c.max_conns = c.max_conns ? c.max_conns : DEFAULT_MAX_CONNS;
    c.max_queued = c.max_queued ? c.max_queued : DEFAULT_MAX_QUEUED;
    c.http_timeout_ms = c.http_timeout_ms ? c.http_timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
    c.metrics = c.metrics ? c.metrics : encore_metrics_default();
    ws->cfg = c;
    ws->metrics = c.metrics;
    ws->limits = (encore_proto_limits){.max_size = c.max_message, .max_depth = c.max_depth};
    return true;
}

static void register_metrics(encore_ws *ws)
{
    encore_metrics *r = ws->metrics;
    ws_metrics *m = &ws->m;
    m->opened = encore_metrics_counter(r, "encore_ws_connections_opened_total",
                                       "Websocket connections established.", NULL, NULL);
    m->closed = encore_metrics_counter(r, "encore_ws_connections_closed_total",
                                       "Websocket connections ended.", NULL, NULL);
    m->current =
        encore_metrics_gauge(r, "encore_ws_connections", "Open websocket connections.", NULL, NULL);
    static const char refused_help[] = "Websocket handshakes refused, by reason.";
    m->refused_per_addr =
        encore_metrics_counter(r, "encore_ws_refused_total", refused_help, "reason", "per_address");
    m->refused_full =
        encore_metrics_counter(r, "encore_ws_refused_total", refused_help, "reason", "server_full");
    m->refused_path =
        encore_metrics_counter(r, "encore_ws_refused_total", refused_help, "reason", "bad_path");
    m->refused_origin =
        encore_metrics_counter(r, "encore_ws_refused_total", refused_help, "reason", "origin");
    static const char dropped_help[] = "Websocket connections closed by the server, by reason.";
    m->dropped_slow =
        encore_metrics_counter(r, "encore_ws_dropped_total", dropped_help, "reason", "slow_reader");
    m->dropped_rate = encore_metrics_counter(r, "encore_ws_dropped_total", dropped_help, "reason",
                                             "rate_limited");
    m->dropped_auth = encore_metrics_counter(r, "encore_ws_dropped_total", dropped_help, "reason",
                                             "auth_timeout");
    m->accept_fd_limit = encore_metrics_counter(
        r, "encore_ws_accept_paused_total",
        "Times accepting paused because the process ran out of file descriptors.", NULL, NULL);
    m->msgs_in = encore_metrics_counter(r, "encore_ws_messages_in_total",
                                        "Websocket messages received.", NULL, NULL);
    m->msgs_out = encore_metrics_counter(r, "encore_ws_messages_out_total",
                                         "Websocket messages sent.", NULL, NULL);
    m->bytes_in = encore_metrics_counter(r, "encore_ws_bytes_in_total",
                                         "Websocket payload bytes received.", NULL, NULL);
    m->bytes_out = encore_metrics_counter(r, "encore_ws_bytes_out_total",
                                          "Websocket payload bytes sent.", NULL, NULL);
    /* The codes this layer produces show up at 0 before the first error. */
    static const char *const codes[] = {
        ENCORE_PROTO_CODE_PARSE_ERROR,  ENCORE_PROTO_CODE_BAD_MESSAGE,
        ENCORE_PROTO_CODE_UNKNOWN_TYPE, ENCORE_PROTO_CODE_INVALID_FIELD,
        ENCORE_PROTO_CODE_TOO_LARGE,    ENCORE_PROTO_CODE_TOO_DEEP,
        ENCORE_PROTO_CODE_RATE_LIMITED, ENCORE_WS_CODE_UNAUTHORIZED,
    };
    for (size_t i = 0; i < G_N_ELEMENTS(codes); i++)
        encore_metrics_counter(r, "encore_ws_errors_total",
                               "Error replies sent to websocket clients, by code.", "code",
                               codes[i]);
    encore_ws__http_register_metrics(ws);
}

encore_ws *encore_ws_new(GMainContext *ctx, const encore_ws_config *cfg, GError **error)
{
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);
    lws_log_setup();

    encore_ws *ws = g_new0(encore_ws, 1);
    ws->ctx = ctx ? g_main_context_ref(ctx) : g_main_context_ref(g_main_context_default());
    ws->loop = g_main_loop_new(ws->ctx, FALSE);
    ws->routes = g_hash_table_new(g_str_hash, g_str_equal);
    ws->conns = g_hash_table_new(g_int64_hash, g_int64_equal);
    ws->per_addr = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    ws->next_id = 1;
    encore_ws__http_init(ws);
    ws->listen_fd = -1;
    if (!apply_config(ws, cfg, error))
        goto out_fail;
    ws->listen_fd = listen_socket(ws->listen_addr, ws->cfg.port, &ws->port, error);
    if (ws->listen_fd < 0)
        goto out_fail;
    register_metrics(ws);

    ws->protocols[0] = (struct lws_protocols){
        .name = SUBPROTOCOL,
        .callback = lws_callback,
        .per_session_data_size = sizeof(session),
    };
    ws->foreign_loops[0] = ws->loop;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* connections come from on_accept() */
    info.protocols = ws->protocols; /* [0] serves HTTP and websockets with or without subprotocol */
    info.options = LWS_SERVER_OPTION_GLIB;
    info.foreign_loops = ws->foreign_loops;
    info.user = ws;
    info.gid = -1;
    info.uid = -1;
    info.server_string = "encore";
    info.max_http_header_data = 4096;
    info.retry_and_idle_policy = &idle_policy;
    ws->lws = lws_create_context(&info);
    ws->vhost = ws->lws ? lws_get_vhost_by_name(ws->lws, "default") : NULL;
    if (!ws->vhost) {
        g_set_error(error, ENCORE_WS_ERROR, ENCORE_WS_ERROR_LISTEN,
                    "libwebsockets did not start (is its GLib event library plugin, "
                    "libwebsockets-evlib_glib.so, installed?)");
        goto out_fail;
    }
    accept_watch(ws);
    g_debug("listening on %s port %d", ws->listen_addr, ws->port);
    return ws;

out_fail:
    encore_ws_free(ws);
    return NULL;
}

void encore_ws_free(encore_ws *ws)
{
    if (!ws)
        return;
    g_return_if_fail(ws->in_service == 0);
    ws->destroying = true;
    if (ws->accept_source) {
        g_source_destroy(ws->accept_source);
        g_source_unref(ws->accept_source);
    }
    if (ws->listen_fd >= 0)
        close(ws->listen_fd);
    if (ws->lws)
        lws_context_destroy(ws->lws); /* closes every connection: on_close runs for each */
    ws->lws = NULL;

    /* libwebsockets finishes every session above; this only guards against a missed callback. */
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, ws->conns);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        encore_ws_conn *conn = value;
        g_hash_table_iter_remove(&it);
        encore_metrics_inc(ws->m.closed);
        encore_metrics_sub(ws->m.current, 1);
        auth_timer_stop(conn);
        if (ws->on_close)
            ws->on_close(conn, ws->conn_data);
        out_queue_clear(conn);
        rx_release(conn);
        g_free(conn);
    }
    /* Likewise for route requests (their sessions are gone with the context). */
    encore_ws__http_clear(ws);
    g_free(ws->auth_type);
    g_hash_table_unref(ws->conns);
    g_hash_table_unref(ws->per_addr);
    g_hash_table_unref(ws->routes);
    g_free(ws->route_table);
    g_free(ws->listen_addr);
    free(ws->web_root);
    g_main_loop_unref(ws->loop);
    g_main_context_unref(ws->ctx);
    g_free(ws);
}

int encore_ws_port(encore_ws *ws)
{
    g_return_val_if_fail(ws != NULL, -1);
    return ws->port;
}

void encore_ws_set_routes(encore_ws *ws, const encore_ws_route *routes, size_t n, void *user_data)
{
    g_return_if_fail(ws != NULL && (routes != NULL || n == 0));
    g_hash_table_remove_all(ws->routes);
    g_free(ws->route_table);
    ws->route_table = n ? g_memdup2(routes, n * sizeof *routes) : NULL;
    for (size_t i = 0; i < n; i++) {
        g_return_if_fail(routes[i].type != NULL && routes[i].handler != NULL);
        g_hash_table_replace(ws->routes, (char *)ws->route_table[i].type, &ws->route_table[i]);
    }
    ws->route_data = user_data;
}

void encore_ws_set_conn_callbacks(encore_ws *ws, encore_ws_conn_fn on_open,
                                  encore_ws_conn_fn on_close, void *user_data)
{
    g_return_if_fail(ws != NULL);
    ws->on_open = on_open;
    ws->on_close = on_close;
    ws->conn_data = user_data;
}

void encore_ws_set_ready(encore_ws *ws, bool ready)
{
    g_return_if_fail(ws != NULL);
    ws->ready = ready;
}

void encore_ws_reply(encore_ws_conn *conn, json_t *id, json_t *data)
{
    if (!conn || !id) {
        json_decref(data);
        return;
    }
    conn_queue(conn, encore_proto_build_result(id, data));
}

void encore_ws_error(encore_ws_conn *conn, json_t *id, const char *code, const char *field,
                     const char *fmt, ...)
{
    g_return_if_fail(conn != NULL && code != NULL && fmt != NULL);
    va_list ap;
    va_start(ap, fmt);
    char *text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    send_error(conn, id, code, field, text);
    g_free(text);
}

void encore_ws_send_text(encore_ws_conn *conn, const char *text, size_t len)
{
    if (conn && text)
        conn_queue_text(conn, text, len);
}

void encore_ws_send(encore_ws_conn *conn, json_t *msg)
{
    if (!conn) {
        json_decref(msg);
        return;
    }
    conn_queue(conn, msg);
}

void encore_ws_conn_set_data(encore_ws_conn *conn, void *data)
{
    g_return_if_fail(conn != NULL);
    conn->data = data;
}

void *encore_ws_conn_get_data(encore_ws_conn *conn)
{
    g_return_val_if_fail(conn != NULL, NULL);
    return conn->data;
}

const char *encore_ws_conn_addr(encore_ws_conn *conn)
{
    g_return_val_if_fail(conn != NULL, NULL);
    return conn->addr;
}

uint64_t encore_ws_conn_id(encore_ws_conn *conn)
{
    g_return_val_if_fail(conn != NULL, 0);
    return conn->id;
}

encore_ws_conn *encore_ws_conn_lookup(encore_ws *ws, uint64_t conn_id)
{
    return ws ? g_hash_table_lookup(ws->conns, &conn_id) : NULL;
}

void encore_ws_conn_close(encore_ws_conn *conn, int ws_code, const char *reason)
{
    g_return_if_fail(conn != NULL);
    /* Codes an endpoint may send (RFC 6455 7.4): 1000-1003, 1007-1011, 3000-4999. */
    g_return_if_fail((ws_code >= 1000 && ws_code <= 1003) || (ws_code >= 1007 && ws_code <= 1011) ||
                     (ws_code >= 3000 && ws_code <= 4999));
    encore_ws *ws = conn->ws;
    if (conn->closing || conn->dead || ws->destroying)
        return;
    conn->closing = true;
    conn->close_code = ws_code;
    /* A close frame carries at most 123 bytes of reason: cut at a character boundary. */
    const char *r = reason ? reason : "";
    size_t n = strlen(r);
    if (n > sizeof conn->close_reason - 1) {
        n = sizeof conn->close_reason - 1;
        while (n > 0 && ((unsigned char)r[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(conn->close_reason, r, n);
    conn->close_reason[n] = '\0';
    lws_set_timeout(conn->wsi, PENDING_TIMEOUT_CLOSE_SEND, CLOSE_FLUSH_SECS);
    lws_callback_on_writable(conn->wsi);
    encore_ws__poke(ws);
}

void encore_ws_set_origin_check(encore_ws *ws, encore_ws_origin_fn fn, void *user_data)
{
    g_return_if_fail(ws != NULL);
    ws->origin_fn = fn;
    ws->origin_data = fn ? user_data : NULL;
}

void encore_ws_set_auth(encore_ws *ws, const char *auth_type, unsigned timeout_ms)
{
    g_return_if_fail(ws != NULL);
    g_free(ws->auth_type);
    ws->auth_type = g_strdup(auth_type);
    ws->auth_timeout_ms = auth_type ? timeout_ms : 0;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, ws->conns);
    while (g_hash_table_iter_next(&it, NULL, &value))
        auth_timer_start(value); /* stops the timer when the gate is off or has no deadline */
}

void encore_ws_conn_set_authenticated(encore_ws_conn *conn, bool yes)
{
    g_return_if_fail(conn != NULL);
    if (conn->authenticated == yes)
        return;
    conn->authenticated = yes;
    auth_timer_start(conn);
}

bool encore_ws_conn_authenticated(encore_ws_conn *conn)
{
    g_return_val_if_fail(conn != NULL, false);
    return conn->authenticated;
}
