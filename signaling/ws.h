/* The signaling server: libwebsockets (its GLib event loop) serving the websocket of
 * docs/protocol.md at /ws, HTTP routes answered asynchronously (/api/), static files, /healthz and
 * /metrics. It decodes, limits and validates requests, checks the Origin of handshakes and gates
 * unauthenticated connections with hooks, and hands requests to the handlers server/ registers; it
 * knows nothing of rooms, money or media.
 * Everything runs on the thread that owns the GMainContext given to encore_ws_new(): every
 * function here must be called on that thread (only the metrics counters are touched elsewhere). */
#ifndef ENCORE_SIGNALING_WS_H
#define ENCORE_SIGNALING_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <jansson.h>

#include "signaling/metrics.h"
#include "signaling/proto.h"

typedef struct encore_ws encore_ws;           /* opaque */
typedef struct encore_ws_conn encore_ws_conn; /* one websocket; valid from on_open to on_close */

/* The port a NULL config listens on. */
#define ENCORE_WS_DEFAULT_PORT 8080

/* Server settings. A zero (or NULL) field takes the default shown, except port. */
typedef struct {
    const char *listen_addr;  /* "127.0.0.1"; an IPv4 or IPv6 literal ("::" for all) */
    int port;                 /* 0 lets the kernel choose (tests); servers use 8080 */
    const char *web_root;     /* directory served over HTTP ("/" -> index.html); NULL: none */
    size_t max_message;       /* 65536: bytes of one reassembled message */
    int max_depth;            /* 16: JSON nesting levels */
    double rate_per_sec;      /* 50: sustained messages per second per connection */
    double rate_burst;        /* 100: token bucket size */
    int max_conns_per_addr;   /* 32: websockets per peer IP address */
    int max_conns;            /* 10000: websockets in all */
    size_t max_queued;        /* 1048576: bytes queued for one slow reader before it is dropped */
    encore_metrics *metrics;  /* registry for the counters and /metrics; NULL: the default one */
    unsigned http_timeout_ms; /* 30000: an HTTP route request unanswered this long gets 503 */
} encore_ws_config;

/* Error domain of encore_ws_new(). */
#define ENCORE_WS_ERROR (encore_ws_error_quark())
GQuark encore_ws_error_quark(void);
typedef enum {
    ENCORE_WS_ERROR_CONFIG, /* a configuration value is invalid (e.g. web_root does not exist) */
    ENCORE_WS_ERROR_LISTEN, /* libwebsockets could not start or bind the address/port */
} encore_ws_error_code;

typedef void (*encore_ws_conn_fn)(encore_ws_conn *conn, void *user_data);

/* A request handler. id is borrowed and NULL when the client wants no answer; msg is the whole
 * request object, borrowed: both are released when the handler returns, so json_incref() them to
 * answer later (the conn stays valid until on_close; see also encore_ws_conn_lookup()). */
typedef void (*encore_ws_handler)(encore_ws_conn *conn, json_t *id, json_t *msg, void *user_data);

/* One route: requests whose "type" equals type go to handler after msg passes schema (which may be
 * NULL: no field checks). The strings and the schema are borrowed and must outlive the server
 * (static tables). */
typedef struct {
    const char *type;
    encore_ws_handler handler;
    const encore_proto_field *schema;
} encore_ws_route;

/* Creates the server on ctx (NULL: the global default context) and binds and listens at once.
 * Nothing is served until ctx is iterated. cfg may be NULL for all defaults; it is copied.
 * Returns NULL and sets error: ENCORE_WS_ERROR_CONFIG when web_root is not a directory or a limit
 * or the port is negative or over 65535; ENCORE_WS_ERROR_LISTEN when libwebsockets fails to start
 * (its GLib event library plugin cannot be loaded) or the address cannot be bound. */
encore_ws *encore_ws_new(GMainContext *ctx, const encore_ws_config *cfg, GError **error);

/* Closes every connection (on_close runs for each websocket that saw on_open), stops listening and
 * frees the server. Accepts NULL. Must not be called from inside a handler or connection callback.
 * While it runs, sends and closes on connections are ignored. */
void encore_ws_free(encore_ws *ws);

/* The bound TCP port (the kernel's choice when the config said 0). */
int encore_ws_port(encore_ws *ws);

/* Installs the request routes (copied into a hash table; replaces earlier ones). A later duplicate
 * type replaces an earlier one. user_data goes to every handler. */
void encore_ws_set_routes(encore_ws *ws, const encore_ws_route *routes, size_t n, void *user_data);

/* on_open runs when a websocket is established, on_close exactly once for each connection that
 * had on_open: on a clean close, on an abrupt TCP drop, when the server drops it, or in
 * encore_ws_free(). Either may be NULL. After on_close the conn pointer is invalid. */
void encore_ws_set_conn_callbacks(encore_ws *ws, encore_ws_conn_fn on_open,
                                  encore_ws_conn_fn on_close, void *user_data);

/* /healthz answers 200 "ok" once ready, 503 "starting" before. Starts not ready. */
void encore_ws_set_ready(encore_ws *ws, bool ready);

/* Sends {"type":"result","id":id,"data":data}. data is stolen (NULL means {}). When id is NULL the
 * client asked for no answer and nothing is sent. Ignored (data freed) on a closing connection. */
void encore_ws_reply(encore_ws_conn *conn, json_t *id, json_t *data);

/* Sends {"type":"error","id":id,"code":code,"message":<printf>,"field":field}. id and field may be
 * NULL (left out): unlike a result, an error is sent even without id. code is a stable code of
 * docs/protocol.md. Counted in encore_ws_errors_total{code}. */
void encore_ws_error(encore_ws_conn *conn, json_t *id, const char *code, const char *field,
                     const char *fmt, ...) G_GNUC_PRINTF(5, 6);

/* Queues msg (stolen) as one text frame: an event. Messages leave in the order queued. When the
 * bytes waiting for this client pass max_queued, the client is considered dead (it does not read):
 * the queue is dropped and the connection is closed without a close handshake, counted in
 * encore_ws_dropped_total{reason="slow_reader"}; on_close follows from the main loop. */
/* Queues one message that is already serialized JSON (`len` bytes, copied): for events sent to
 * many connections, serialized once. */
void encore_ws_send_text(encore_ws_conn *conn, const char *text, size_t len);
void encore_ws_send(encore_ws_conn *conn, json_t *msg);

/* Per-connection pointer for the owner's state (not freed by this layer: free it in on_close). */
void encore_ws_conn_set_data(encore_ws_conn *conn, void *data);
void *encore_ws_conn_get_data(encore_ws_conn *conn);

/* The peer's IP address as text ("127.0.0.1"). Valid as long as conn. */
const char *encore_ws_conn_addr(encore_ws_conn *conn);

/* A number unique within this server (never reused), starting at 1. */
uint64_t encore_ws_conn_id(encore_ws_conn *conn);

/* The connection with this id, or NULL when it is closed (or never existed), or ws is NULL (the
 * server is gone: answers arriving during shutdown find nobody). For answering after asynchronous
 * work without keeping a pointer that may dangle. */
encore_ws_conn *encore_ws_conn_lookup(encore_ws *ws, uint64_t conn_id);

/* Closes the websocket with ws_code (e.g. 1000, 1008) and reason (truncated to 123 bytes) after
 * the messages already queued are written; requests that arrive meanwhile are ignored. A client
 * that does not read is dropped after 5 seconds. on_close follows. Idempotent. */
void encore_ws_conn_close(encore_ws_conn *conn, int ws_code, const char *reason);

/* ---- Origin check of the websocket handshake ---- */

/* Longest Origin header looked at: a longer one is refused (403) without asking the hook. */
#define ENCORE_WS_ORIGIN_MAX 512

/* Decides whether a websocket handshake may proceed. origin is the Origin header (origin[len] is
 * NUL; no embedded NUL), NULL with len 0 when the request has none (or an empty one); host is the
 * Host header, NULL when absent or longer than 255 bytes. Both are borrowed for the call. Runs on
 * the server's thread during the handshake: it must not block. */
typedef bool (*encore_ws_origin_fn)(const char *origin, size_t len, const char *host,
                                    void *user_data);

/* Installs the origin hook (replaces an earlier one; fn NULL removes it: every handshake is
 * allowed, the default). Handshakes it refuses, and those whose Origin is longer than
 * ENCORE_WS_ORIGIN_MAX, get HTTP 403 "origin not allowed" before the websocket opens (no
 * on_open), counted in encore_ws_refused_total{reason="origin"}. The hook runs after the path
 * check (404 for other paths) and before the capacity checks (503). user_data is not freed. */
void encore_ws_set_origin_check(encore_ws *ws, encore_ws_origin_fn fn, void *user_data);

/* ---- authentication gate ---- */

/* The error code of requests refused by the gate. */
#define ENCORE_WS_CODE_UNAUTHORIZED "unauthorized"

/* Turns the gate on: until encore_ws_conn_set_authenticated(conn, true), a connection's requests
 * other than auth_type (copied) and "ping" are answered with error "unauthorized" (field left
 * out) without reaching their handler, counted in encore_ws_errors_total{code="unauthorized"}.
 * Requests still go through the rate limit and decoding first, and auth_type's own schema. When
 * timeout_ms > 0, a connection not authenticated within timeout_ms of opening (or of being set
 * back to unauthenticated) is closed with 1008 "authentication timeout", counted in
 * encore_ws_dropped_total{reason="auth_timeout"}; on_close follows as usual. timeout_ms 0: no
 * deadline. auth_type NULL turns the gate off (the default) and stops pending deadlines. Meant to
 * be set once before serving; connections already open are gated (and get a deadline) too. */
void encore_ws_set_auth(encore_ws *ws, const char *auth_type, unsigned timeout_ms);

/* Marks the connection (un)authenticated. true stops its deadline; false makes the gate apply
 * again and, with a timeout set, gives it a new deadline. Connections start unauthenticated. */
void encore_ws_conn_set_authenticated(encore_ws_conn *conn, bool yes);
bool encore_ws_conn_authenticated(encore_ws_conn *conn);

/* ---- HTTP routes ---- */

/* One HTTP request to a route, from its arrival to its answer. Owned by the server. */
typedef struct encore_ws_http encore_ws_http;

/* A route handler. It may answer at once with encore_ws_http_respond*() or later: to answer after
 * returning, keep encore_ws_http_id(req) (never the pointer) and get the request back with
 * encore_ws_http_lookup() on the server's thread; it is NULL when the request is gone. */
typedef void (*encore_ws_http_handler)(encore_ws_http *req, void *user_data);

/* A route: requests whose method equals method ("GET", "POST", ... exact, upper case) and whose
 * path (without query) equals path, or starts with it when path ends with '/', go to handler.
 * max_body caps the request body (0: 16384); a larger Content-Length gets 413 without calling
 * the handler. The strings are borrowed and must outlive the server (static tables). */
typedef struct {
    const char *method;
    const char *path;
    encore_ws_http_handler handler;
    size_t max_body;
} encore_ws_http_route;

/* Most route requests waiting for their body or their answer at once; more get 503 "busy". */
#define ENCORE_WS_HTTP_MAX_PENDING 1024

/* Installs the HTTP routes (copied; replaces earlier ones; requests already accepted keep their
 * handler). user_data goes to every handler. Routes are tried in table order, the first whose
 * method and path match wins; they are checked before static files but after /healthz and
 * /metrics. Answers produced here rather than by a handler, all JSON {"error":code,"message":..}:
 * - 404 "not_found": a path under /api/ that no route matches;
 * - 405 "method_not_allowed" (with Allow): a route path matches but none with this method (HEAD
 *   and OPTIONS included);
 * - 411 "length_required": a body without Content-Length (chunked bodies are not decoded); the
 *   connection is closed after the answer;
 * - 400 "bad_request": a Content-Length that is not a decimal number, or one together with
 *   Transfer-Encoding; the connection is closed;
 * - 413 "too_large": Content-Length over the route's max_body; sent after the body is read and
 *   dropped (at once when it is over 1 MiB), then the connection is closed;
 * - 503 "busy": ENCORE_WS_HTTP_MAX_PENDING requests are already pending (with a body: answered
 *   like 413);
 * - 503 "timeout": the handler did not answer within http_timeout_ms, counted in
 *   encore_http_api_timeouts_total.
 * "Expect: 100-continue" is honoured. While a request waits for its answer nothing more is read
 * from its connection (pipelined requests wait); a client that closes its connection meanwhile is
 * noticed at once and its request freed (encore_ws_http_lookup() returns NULL), counted in
 * encore_http_api_abandoned_total. A request with a body pipelined behind another one in the
 * same read is not served: libwebsockets 4.1 misplaces its body, so the connection is closed
 * without calling the handler (encore_http_api_pipelined_closed_total); browsers never pipeline.
 * Every route answer is counted in encore_http_api_responses_total{class="2xx"..."5xx"}. */
void encore_ws_set_http_routes(encore_ws *ws, const encore_ws_http_route *routes, size_t n,
                               void *user_data);

/* The request's method ("GET", "POST", ...). Valid as long as req. */
const char *encore_ws_http_method(encore_ws_http *req);
/* The path, percent-decoded by libwebsockets, without the query ("/api/signin"). */
const char *encore_ws_http_path(encore_ws_http *req);
/* The query after '?' as libwebsockets parsed it (each name=value percent-decoded, joined with
 * '&'), or NULL when there is none. */
const char *encore_ws_http_query(encore_ws_http *req);

/* The value of a request header by lower-case name ("authorization", "content-type",
 * "encore-signature", "origin", "host", ...), trailing blanks removed, or NULL when absent.
 * Repeated headers come joined with ','. A header libwebsockets knows by name reads as absent
 * when empty; an unknown one reads as "". The string stays valid as long as req. */
const char *encore_ws_http_header(encore_ws_http *req, const char *lowercase_name);

/* The request body exactly as received, *len bytes (0 when none), followed by a NUL that is not
 * counted. Never NULL. Valid as long as req. */
const uint8_t *encore_ws_http_body(encore_ws_http *req, size_t *len);

/* The peer's IP address as text ("127.0.0.1"). Valid as long as req. */
const char *encore_ws_http_addr(encore_ws_http *req);

/* A number unique within this server (never reused, starting at 1) naming the request. */
uint64_t encore_ws_http_id(encore_ws_http *req);

/* The pending request with this id, or NULL when it was answered, timed out, its client went
 * away, or it never existed. */
encore_ws_http *encore_ws_http_lookup(encore_ws *ws, uint64_t id);

/* Answers the request: status (200-599; anything else is sent as 500 with a warning; 204 and 304
 * drop the body), content_type (NULL: no Content-Type; copied) and len bytes of body (copied; may
 * be NULL when len is 0), with Cache-Control: no-store and X-Content-Type-Options: nosniff. Call
 * exactly once per request, from the handler or later on the server's thread; afterwards req is
 * invalid. The bytes are written when the connection is writeable; if the client is gone by then
 * they are dropped. A client that does not take the answer within 30 s is disconnected. */
void encore_ws_http_respond(encore_ws_http *req, unsigned status, const char *content_type,
                            const char *body, size_t len);

/* encore_ws_http_respond() with body (stolen; NULL means {}) serialized compactly as
 * Content-Type: application/json. A body that cannot be serialized is answered 500. */
void encore_ws_http_respond_json(encore_ws_http *req, unsigned status, json_t *body);

#endif /* ENCORE_SIGNALING_WS_H */
