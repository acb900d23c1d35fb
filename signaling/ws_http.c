/* The HTTP routes of the signaling server (see encore_ws_set_http_routes() in ws.h): matching a
 * request to its route, reading its bounded body, dispatching it, the answer deadline, noticing a
 * client that leaves, and handing the answer to ws.c to write. Runs on the thread of the server's
 * GMainContext, inside ws.c's libwebsockets callback or from the route handlers' answers; it must
 * never block or learn what the routes mean. */
#include "config.h"

#define G_LOG_DOMAIN "encore-ws"

#include "signaling/ws.h"
#include "signaling/ws_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <glib-unix.h>
#include <libwebsockets.h>

/* Route requests: the default body cap, the largest refused body that is still read and dropped
 * before the refusal (see refuse_body()), and the most digits of a Content-Length. (The default
 * answer deadline is applied with the rest of the configuration in ws.c.) */
#define HTTP_DEFAULT_MAX_BODY 16384
#define HTTP_DISCARD_MAX (1024 * 1024)
#define HTTP_LENGTH_DIGITS 18
/* Seconds an answer may take to be written before libwebsockets drops the connection. */
#define HTTP_SEND_SECS 30
/* Repeated body completions in one transaction before the connection is considered stuck. */
#define HTTP_COMPLETIONS_MAX 1000

/* One request to an HTTP route (see ws.h). Lives from its headers until it is answered, times
 * out or its connection ends; the session and the id table point at it meanwhile. */
struct encore_ws_http {
    encore_ws *ws;
    struct lws *wsi;
    session *s;
    uint64_t id;
    encore_ws_http_handler handler; /* copied from the route: the table may be replaced */
    void *user_data;
    char method[8];
    char *path;
    char *query; /* NULL when none */
    char addr[64];
    GHashTable *headers; /* lower-case name -> value (owned) already looked up, NULL values too */
    uint8_t *body;       /* body_want + 1 bytes, NUL-terminated */
    size_t body_len, body_want;
    bool dispatched;     /* the handler was called */
    GSource *deadline;   /* the answer timeout, from dispatch */
    GSource *gone_watch; /* notices the client closing while the answer is awaited */
};

/* ---- HTTP routes ---- */

/* The request method, from the URI token libwebsockets filled; NULL for one it does not parse. */
const char *encore_ws__request_method(struct lws *wsi)
{
    static const struct {
        enum lws_token_indexes token;
        const char *name;
    } methods[] = {
        {WSI_TOKEN_GET_URI, "GET"},
        {WSI_TOKEN_POST_URI, "POST"},
        {WSI_TOKEN_HEAD_URI, "HEAD"},
#if defined(LWS_WITH_HTTP_UNCOMMON_HEADERS)
        {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
        {WSI_TOKEN_PUT_URI, "PUT"},
        {WSI_TOKEN_PATCH_URI, "PATCH"},
        {WSI_TOKEN_DELETE_URI, "DELETE"},
#endif
    };
    for (size_t i = 0; i < G_N_ELEMENTS(methods); i++)
        if (lws_hdr_total_length(wsi, methods[i].token) > 0)
            return methods[i].name;
    return NULL;
}

/* True when libwebsockets reads a body for this request: it has a Content-Length, or its method
 * is one for which libwebsockets takes everything that follows as the body when there is none. */
bool encore_ws__request_has_body(struct lws *wsi, const char *method)
{
    return lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 ||
           lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 ||
           (method && (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                       strcmp(method, "PATCH") == 0));
}

static bool route_path_matches(const char *route_path, const char *path)
{
    size_t n = strlen(route_path);
    if (n > 0 && route_path[n - 1] == '/')
        return strncmp(path, route_path, n) == 0;
    return strcmp(path, route_path) == 0;
}

/* The first route for method and path. When none, *path_known tells whether a route has this
 * path with other methods, and allow (when given) receives those methods. */
const encore_ws_http_route *encore_ws__route_find(encore_ws *ws, const char *method,
                                                  const char *path, bool *path_known,
                                                  GString *allow)
{
    *path_known = false;
    for (size_t i = 0; i < ws->n_http_routes; i++) {
        const encore_ws_http_route *r = &ws->http_routes[i];
        if (!route_path_matches(r->path, path))
            continue;
        if (method && strcmp(r->method, method) == 0)
            return r;
        *path_known = true;
        if (allow && !strstr(allow->str, r->method)) {
            if (allow->len)
                g_string_append(allow, ", ");
            g_string_append(allow, r->method);
        }
    }
    return NULL;
}

/* Answers a route request at once, from the LWS_CALLBACK_HTTP callback, with a JSON error
 * {"error":code,"message":message}; returns the callback's value. */
static int api_error_now(encore_ws *ws, session *s, struct lws *wsi, unsigned status,
                         const char *code, const char *message, const char *allow, bool close)
{
    json_t *j = json_pack("{s:s, s:s}", "error", code, "message", message);
    char *text = json_dumps(j, ENCORE_PROTO_DUMP_FLAGS);
    json_decref(j);
    http_extra x = {.allow = allow, .api = true, .close = close};
    const char *method = encore_ws__request_method(wsi);
    bool head = method && strcmp(method, "HEAD") == 0;
    int rc = text ? encore_ws__http_small(ws, wsi, status, "application/json", text, strlen(text),
                                          head, &x)
                  : -1;
    free(text);
    if (rc || close)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Parses the Content-Length header: decimal digits only (trailing blanks allowed). */
static bool content_length(struct lws *wsi, uint64_t *out)
{
    char buf[HTTP_LENGTH_DIGITS + 8];
    int n = lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (n <= 0)
        return false;
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    if (n == 0 || n > HTTP_LENGTH_DIGITS)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(buf[i] - '0');
    }
    *out = v;
    return true;
}

/* The query as libwebsockets split it into '&'-separated arguments; NULL when none. */
static char *request_query(struct lws *wsi)
{
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (total <= 0)
        return NULL;
    GString *q = g_string_sized_new((gsize)total);
    char *frag = g_malloc((gsize)total + 1);
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, total + 1, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        if (i > 0)
            g_string_append_c(q, '&');
        g_string_append_len(q, frag, n);
    }
    g_free(frag);
    return g_string_free(q, FALSE);
}

static void http_req_free(encore_ws_http *req)
{
    if (!req)
        return;
    encore_ws *ws = req->ws;
    g_hash_table_remove(ws->http_reqs, &req->id);
    encore_metrics_sub(ws->m.api_pending, 1);
    if (req->s && req->s->req == req)
        req->s->req = NULL;
    if (req->deadline) {
        g_source_destroy(req->deadline);
        g_source_unref(req->deadline);
    }
    if (req->gone_watch) {
        g_source_destroy(req->gone_watch);
        g_source_unref(req->gone_watch);
    }
    g_hash_table_unref(req->headers);
    g_free(req->path);
    g_free(req->query);
    g_free(req->body);
    g_free(req);
}

static encore_ws_http *http_req_new(encore_ws *ws, session *s, struct lws *wsi, const char *method,
                                    const char *path, const encore_ws_http_route *route)
{
    encore_ws_http *req = g_new0(encore_ws_http, 1);
    req->ws = ws;
    req->wsi = wsi;
    req->s = s;
    req->id = ws->next_http_id++;
    req->handler = route->handler;
    req->user_data = ws->http_data;
    g_strlcpy(req->method, method, sizeof req->method);
    req->path = g_strdup(path);
    req->query = request_query(wsi);
    encore_ws__peer_addr(wsi, req->addr, sizeof req->addr);
    req->headers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    s->req = req;
    g_hash_table_insert(ws->http_reqs, &req->id, req);
    encore_metrics_inc(ws->m.api_pending);
    return req;
}

/* The answer deadline passed. */
static gboolean http_deadline(void *user_data)
{
    encore_ws_http *req = user_data;
    g_source_unref(req->deadline); /* GLib keeps its own reference while dispatching */
    req->deadline = NULL;
    encore_metrics_inc(req->ws->m.api_timeout);
    g_message("HTTP %s %s from %s not answered in %u ms", req->method, req->path, req->addr,
              req->ws->cfg.http_timeout_ms);
    encore_ws_http_respond_json(req, 503,
                                json_pack("{s:s, s:s}", "error", "timeout", "message",
                                          "the server did not answer in time"));
    return G_SOURCE_REMOVE;
}

/* The connection of a request awaiting its answer became readable: either the client closed it
 * (end of file or error: the request is dropped and the connection closed) or it pipelined its
 * next request (which waits; a client that goes away later is noticed when the answer is
 * written). libwebsockets reads nothing meanwhile (see http_dispatch()). */
static gboolean http_gone_check(int fd, GIOCondition cond, void *user_data)
{
    encore_ws_http *req = user_data;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return G_SOURCE_CONTINUE;
    g_source_unref(req->gone_watch); /* GLib keeps its own reference while dispatching */
    req->gone_watch = NULL;
    if (n > 0)
        return G_SOURCE_REMOVE;
    encore_ws *ws = req->ws;
    struct lws *wsi = req->wsi;
    g_debug("HTTP request %" G_GUINT64_FORMAT ": the client left before the answer", req->id);
    encore_metrics_inc(ws->m.api_gone);
    http_req_free(req);
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    encore_ws__poke(ws);
    return G_SOURCE_REMOVE;
}

/* Hands a request whose body is complete to its handler. Until the answer, libwebsockets reads
 * nothing more from the connection (rx flow control): in 4.1 a request waiting in
 * LRS_DOING_TRANSACTION (no body) leaves a readable socket unread, so the loop spins and a client
 * that closes goes unnoticed; one waiting in LRS_BODY signals BODY_COMPLETION again for any
 * pipelined input. http_gone_check() watches the socket instead, and the connection's own
 * timeout gives way to the answer deadline. */
static void http_dispatch(encore_ws_http *req)
{
    encore_ws *ws = req->ws;
    req->dispatched = true;
    req->s->rx_paused = true;
    lws_rx_flow_control(req->wsi, 0);
    lws_set_timeout(req->wsi, NO_PENDING_TIMEOUT, 0);
    req->deadline = g_timeout_source_new(ws->cfg.http_timeout_ms);
    g_source_set_callback(req->deadline, http_deadline, req, NULL);
    g_source_attach(req->deadline, ws->ctx);
    int fd = lws_get_socket_fd(req->wsi);
    if (fd >= 0) {
        req->gone_watch = g_unix_fd_source_new(fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
        g_source_set_callback(req->gone_watch, G_SOURCE_FUNC(http_gone_check), req, NULL);
        g_source_attach(req->gone_watch, ws->ctx);
    }
    req->handler(req, req->user_data); /* may answer, and free req, at once */
}

/* True when an HTTP/1.1 client waits for "100 Continue" before sending its body. */
static bool expects_continue(struct lws *wsi)
{
    char expect[32], version[16];
    return lws_hdr_copy(wsi, expect, sizeof expect, WSI_TOKEN_HTTP_EXPECT) > 0 &&
           g_ascii_strcasecmp(expect, "100-continue") == 0 &&
           lws_hdr_copy(wsi, version, sizeof version, WSI_TOKEN_HTTP) > 0 &&
           strcmp(version, "HTTP/1.1") == 0;
}

/* Refuses a route request that announced a body of len bytes. The connection ends after the
 * refusal: lws 4.1 cannot be trusted to find the next request behind a body it skipped (see
 * encore_ws__on_http_body()). A body of at most HTTP_DISCARD_MAX is read and dropped first, so that
 * a client still sending it sees the answer rather than a reset; a larger one, or one the client
 * holds back until "100 Continue", is refused at once. */
static int refuse_body(encore_ws *ws, session *s, struct lws *wsi, unsigned status,
                       const char *code, const char *message, uint64_t len)
{
    if (len == 0 || len > HTTP_DISCARD_MAX || expects_continue(wsi))
        return api_error_now(ws, s, wsi, status, code, message, NULL, len > 0);
    s->refuse_status = status;
    s->refuse_code = code;
    g_strlcpy(s->refuse_message, message, sizeof s->refuse_message);
    return 0; /* answered at LWS_CALLBACK_HTTP_BODY_COMPLETION */
}

/* Sends "100 Continue" to a client that waits for it before sending its body. */
static int send_continue(struct lws *wsi)
{
    if (!expects_continue(wsi))
        return 0;
    static const char text[] = "HTTP/1.1 100 Continue\r\n\r\n";
    unsigned char buf[LWS_PRE + sizeof text];
    memcpy(buf + LWS_PRE, text, sizeof text - 1);
    int n = (int)(sizeof text - 1);
    return lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_HTTP) == n ? 0 : -1;
}

/* A request for a route path, or anywhere under /api/. Returns the LWS_CALLBACK_HTTP value. */
int encore_ws__on_api(encore_ws *ws, session *s, struct lws *wsi, const char *method,
                      const char *path, const encore_ws_http_route *route, const char *allow)
{
    bool has_body = encore_ws__request_has_body(wsi, method);
    /* A refused request whose body lws would read as everything that follows ends the
     * connection. */
    if (!route && allow)
        return api_error_now(ws, s, wsi, 405, "method_not_allowed",
                             "this path does not take this method", allow, has_body);
    if (!route)
        return api_error_now(ws, s, wsi, 404, "not_found", "no such API path", NULL, has_body);

    bool chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
    uint64_t len = 0;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
        if (chunked)
            return api_error_now(ws, s, wsi, 400, "bad_request",
                                 "Content-Length together with Transfer-Encoding", NULL, true);
        if (!content_length(wsi, &len))
            return api_error_now(ws, s, wsi, 400, "bad_request",
                                 "Content-Length is not a decimal number", NULL, true);
    } else if (has_body) {
        return api_error_now(ws, s, wsi, 411, "length_required",
                             "a body needs a Content-Length (chunked bodies are not accepted)",
                             NULL, true);
    }
    size_t max = route->max_body ? route->max_body : HTTP_DEFAULT_MAX_BODY;
    if (len > max) {
        char text[96];
        g_snprintf(text, sizeof text, "the body is over the limit of %zu bytes", max);
        return refuse_body(ws, s, wsi, 413, "too_large", text, len);
    }
    if (g_hash_table_size(ws->http_reqs) >= ENCORE_WS_HTTP_MAX_PENDING)
        return refuse_body(ws, s, wsi, 503, "busy", "too many requests in progress", len);

    encore_ws_http *req = http_req_new(ws, s, wsi, method, path, route);
    req->body_want = (size_t)len;
    req->body = g_malloc((size_t)len + 1);
    req->body[0] = '\0';
    if (len > 0)
        return send_continue(wsi); /* the body comes in LWS_CALLBACK_HTTP_BODY */
    /* Nothing to wait for. (A POST with Content-Length: 0 gets an empty BODY_COMPLETION
     * afterwards, ignored since the request is dispatched.) */
    http_dispatch(req);
    return 0;
}

/* True when a body's first bytes are a request line of this request's method ("POST /x
 * HTTP/1.1", or cut short before the line ends). libwebsockets 4.1 mishandles a request with a
 * body that was pipelined behind another one in the same read: it hands the request's own head,
 * then its body, as the body (shifted by the length of the head), then signals completion
 * endlessly. A real body starting like that is refused too. */
static bool body_is_own_head(const encore_ws_http *req, const uint8_t *in, size_t len)
{
    size_t m = strlen(req->method);
    if (len < m + 2 || memcmp(in, req->method, m) != 0 || in[m] != ' ' || in[m + 1] != '/')
        return false;
    const uint8_t *eol = memchr(in, '\n', len);
    size_t line = eol ? (size_t)(eol - in) : len;
    return !eol || memmem(in, line, " HTTP/1.", 8) != NULL;
}

int encore_ws__on_http_body(encore_ws *ws, session *s, const void *in, size_t len)
{
    encore_ws_http *req = s->req;
    if (!req || req->dispatched || len == 0)
        return 0;
    if (req->body_len == 0 && body_is_own_head(req, in, len)) {
        g_debug("HTTP request %" G_GUINT64_FORMAT " from %s: pipelined body, closing", req->id,
                req->addr);
        encore_metrics_inc(ws->m.api_pipelined);
        http_req_free(req);
        return -1;
    }
    /* libwebsockets passes at most Content-Length bytes: more is a bug, not the client's. */
    if (len > req->body_want - req->body_len)
        return -1;
    memcpy(req->body + req->body_len, in, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

int encore_ws__on_http_body_done(encore_ws *ws, session *s, struct lws *wsi)
{
    encore_ws_http *req = s->req;
    /* lws 4.1 signals completion again for each pass over pipelined input that waits until the
     * answer is written: ignored, unless it never ends (see encore_ws__on_http_body()). */
    if (s->completions++ > 0)
        return s->completions > HTTP_COMPLETIONS_MAX ? -1 : 0;
    if (s->refuse_status)
        return api_error_now(ws, s, wsi, s->refuse_status, s->refuse_code, s->refuse_message, NULL,
                             true);
    if (!req || req->dispatched)
        return 0;
    if (req->body_len != req->body_want)
        return -1;
    http_dispatch(req);
    return 0;
}

/* The end of an HTTP session or transaction: whatever it still holds goes. */
void encore_ws__http_session_end(encore_ws *ws, session *s)
{
    if (s->req) {
        encore_metrics_inc(ws->m.api_gone);
        http_req_free(s->req);
    }
    encore_ws__body_free(s);
}

/* ---- setup and teardown, called by ws.c ---- */

/* "name:" -> token + 1 for every header libwebsockets recognizes by name (those never reach its
 * list of custom headers, so they must be read by token). The names are lws' static strings. */
static GHashTable *header_tokens_new(void)
{
    GHashTable *t = g_hash_table_new(g_str_hash, g_str_equal);
    for (int i = 0; i < (int)WSI_TOKEN_COUNT; i++) {
        const char *name = (const char *)lws_token_to_string((enum lws_token_indexes)i);
        size_t n = name ? strlen(name) : 0;
        if (n < 2 || name[0] == ':' || name[n - 1] != ':')
            continue; /* methods ("get "), h2 pseudo-headers, the end-of-headers marker */
        g_hash_table_insert(t, (char *)name, GINT_TO_POINTER(i + 1));
    }
    return t;
}

void encore_ws__http_init(encore_ws *ws)
{
    ws->http_reqs = g_hash_table_new(g_int64_hash, g_int64_equal);
    ws->header_tokens = header_tokens_new();
    ws->next_http_id = 1;
}

void encore_ws__http_clear(encore_ws *ws)
{
    /* libwebsockets finishes every session before this; it only guards against a missed
     * callback (the sessions of the requests left are gone with the context). */
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, ws->http_reqs);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        encore_ws_http *req = value;
        g_hash_table_iter_steal(&it);
        req->s = NULL;
        http_req_free(req);
    }
    g_hash_table_unref(ws->http_reqs);
    g_hash_table_unref(ws->header_tokens);
    g_free(ws->http_routes);
}

void encore_ws__http_register_metrics(encore_ws *ws)
{
    encore_metrics *r = ws->metrics;
    ws_metrics *m = &ws->m;
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    for (size_t i = 0; i < G_N_ELEMENTS(classes); i++)
        m->api_class[i] = encore_metrics_counter(r, "encore_http_api_responses_total",
                                                 "Answers to HTTP route requests, by status class.",
                                                 "class", classes[i]);
    m->api_gone = encore_metrics_counter(
        r, "encore_http_api_abandoned_total",
        "HTTP route requests whose client went away before the answer.", NULL, NULL);
    m->api_timeout = encore_metrics_counter(
        r, "encore_http_api_timeouts_total",
        "HTTP route requests answered 503 for want of an answer.", NULL, NULL);
    m->api_pipelined = encore_metrics_counter(
        r, "encore_http_api_pipelined_closed_total",
        "Connections closed for a route request with a body pipelined behind another request.",
        NULL, NULL);
    m->api_pending =
        encore_metrics_gauge(r, "encore_http_api_pending",
                             "HTTP route requests awaiting their body or answer.", NULL, NULL);
}

/* ---- public API ---- */

void encore_ws_set_http_routes(encore_ws *ws, const encore_ws_http_route *routes, size_t n,
                               void *user_data)
{
    g_return_if_fail(ws != NULL && (routes != NULL || n == 0));
    for (size_t i = 0; i < n; i++)
        g_return_if_fail(routes[i].method != NULL && routes[i].path != NULL &&
                         routes[i].handler != NULL);
    g_free(ws->http_routes);
    ws->http_routes = n ? g_memdup2(routes, n * sizeof *routes) : NULL;
    ws->n_http_routes = n;
    ws->http_data = user_data;
}

const char *encore_ws_http_method(encore_ws_http *req)
{
    g_return_val_if_fail(req != NULL, NULL);
    return req->method;
}

const char *encore_ws_http_path(encore_ws_http *req)
{
    g_return_val_if_fail(req != NULL, NULL);
    return req->path;
}

const char *encore_ws_http_query(encore_ws_http *req)
{
    g_return_val_if_fail(req != NULL, NULL);
    return req->query;
}

/* Reads a header from libwebsockets' header table (still attached while the request waits for
 * its answer); NULL when absent. */
static char *read_header(encore_ws *ws, struct lws *wsi, const char *key, size_t key_len)
{
    char *v = NULL;
    int token = GPOINTER_TO_INT(g_hash_table_lookup(ws->header_tokens, key)) - 1;
    if (token >= 0) {
        int n = lws_hdr_total_length(wsi, (enum lws_token_indexes)token);
        if (n <= 0)
            return NULL;
        v = g_malloc((gsize)n + 1);
        if (lws_hdr_copy(wsi, v, n + 1, (enum lws_token_indexes)token) < 0) {
            g_free(v);
            return NULL;
        }
    } else {
        /* lws keeps unknown header names lower-cased with their ':'. */
        int n = lws_hdr_custom_length(wsi, key, (int)key_len);
        if (n < 0)
            return NULL;
        v = g_malloc((gsize)n + 1);
        if (lws_hdr_custom_copy(wsi, v, n + 1, key, (int)key_len) < 0) {
            g_free(v);
            return NULL;
        }
    }
    size_t len = strlen(v);
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        v[--len] = '\0';
    return v;
}

const char *encore_ws_http_header(encore_ws_http *req, const char *lowercase_name)
{
    g_return_val_if_fail(req != NULL && lowercase_name != NULL, NULL);
    gpointer value;
    if (g_hash_table_lookup_extended(req->headers, lowercase_name, NULL, &value))
        return value;
    char *key = g_strconcat(lowercase_name, ":", NULL);
    for (char *p = key; *p; p++)
        *p = g_ascii_tolower(*p);
    char *v = read_header(req->ws, req->wsi, key, strlen(key));
    g_free(key);
    g_hash_table_insert(req->headers, g_strdup(lowercase_name), v);
    return v;
}

const uint8_t *encore_ws_http_body(encore_ws_http *req, size_t *len)
{
    g_return_val_if_fail(req != NULL, NULL);
    if (len)
        *len = req->body_len;
    return req->body;
}

const char *encore_ws_http_addr(encore_ws_http *req)
{
    g_return_val_if_fail(req != NULL, NULL);
    return req->addr;
}

uint64_t encore_ws_http_id(encore_ws_http *req)
{
    g_return_val_if_fail(req != NULL, 0);
    return req->id;
}

encore_ws_http *encore_ws_http_lookup(encore_ws *ws, uint64_t id)
{
    return ws ? g_hash_table_lookup(ws->http_reqs, &id) : NULL;
}

void encore_ws_http_respond(encore_ws_http *req, unsigned status, const char *content_type,
                            const char *body, size_t len)
{
    g_return_if_fail(req != NULL && (body != NULL || len == 0));
    encore_ws *ws = req->ws;
    session *s = req->s;
    struct lws *wsi = req->wsi;
    if (status < 200 || status > 599) {
        g_warning("HTTP %s %s: status %u is not a final status; sending 500", req->method,
                  req->path, status);
        status = 500;
    }
    if (status == 204 || status == 304)
        len = 0;
    http_body *b = g_new0(http_body, 1);
    b->fd = -1;
    b->body = len ? g_memdup2(body, len) : NULL;
    b->remaining = len;
    b->head_pending = true;
    b->status = status;
    b->ctype = g_strdup(content_type);
    http_req_free(req);
    encore_ws__body_free(s);
    s->body = b;
    /* Reading resumes first: while a connection is flow-controlled, lws 4.1 ignores its
     * writeability as well. */
    if (s->rx_paused) {
        s->rx_paused = false;
        lws_rx_flow_control(wsi, 1);
    }
    /* The answer may take a while to leave; a client that stops reading is dropped. */
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, HTTP_SEND_SECS);
    lws_callback_on_writable(wsi);
    encore_ws__poke(ws);
}

void encore_ws_http_respond_json(encore_ws_http *req, unsigned status, json_t *body)
{
    g_return_if_fail(req != NULL);
    char *text = body ? json_dumps(body, ENCORE_PROTO_DUMP_FLAGS | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    if (body && !text) {
        static const char internal[] =
            "{\"error\":\"internal\",\"message\":\"the answer could not be serialized\"}";
        encore_ws_http_respond(req, 500, "application/json", internal, sizeof internal - 1);
        return;
    }
    encore_ws_http_respond(req, status, "application/json", text ? text : "{}",
                           text ? strlen(text) : 2);
    free(text);
}
