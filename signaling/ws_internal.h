/* Internal to the signaling server: the structures and encore_ws__ functions that ws.c (websockets,
 * responses, static files, the libwebsockets callback) and ws_http.c (the HTTP routes) share.
 * Not API (that is ws.h): nothing but those two files includes it, and nothing here is public. */
#ifndef ENCORE_SIGNALING_WS_INTERNAL_H
#define ENCORE_SIGNALING_WS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <libwebsockets.h>

#include "signaling/ws.h"

/* Bytes of a file or large body written per writeable callback. */
#define HTTP_CHUNK 16384

/* A pending HTTP response body: memory (body) or a file (fd). A route answer also carries its
 * head, written at the first writeable callback. */
typedef struct {
    char *body;
    int fd;
    size_t pos, remaining;
    bool head_pending; /* the status line and headers below are still to be written */
    unsigned status;
    char *ctype; /* NULL: no Content-Type */
} http_body;

typedef struct session session;

/* libwebsockets' per-session data, zeroed by it, one per connection (HTTP or websocket). For
 * HTTP it is freed and zeroed again between keep-alive transactions. */
struct session {
    encore_ws_conn *conn; /* set from ESTABLISHED until the connection finishes */
    http_body *body;      /* response still being written */
    encore_ws_http *req;  /* route request reading its body or awaiting its answer */
    bool rx_paused;       /* reading stopped while a route request awaits its answer */
    bool close_after;     /* close the connection once the response is written */
    unsigned completions; /* LWS_CALLBACK_HTTP_BODY_COMPLETION calls in this transaction */
    /* A refused route request whose body is read and dropped before the refusal is sent. */
    unsigned refuse_status;
    const char *refuse_code;
    char refuse_message[96];
};

typedef struct {
    encore_metric *opened, *closed, *current;
    encore_metric *msgs_in, *msgs_out, *bytes_in, *bytes_out;
    encore_metric *refused_per_addr, *refused_full, *refused_path, *refused_origin;
    encore_metric *dropped_slow, *dropped_rate, *dropped_auth;
    encore_metric *accept_fd_limit;
    encore_metric *api_class[5]; /* route answers by status class, 1xx..5xx */
    encore_metric *api_gone, *api_timeout, *api_pending, *api_pipelined;
} ws_metrics;

struct encore_ws {
    GMainContext *ctx;
    GMainLoop *loop; /* the "foreign loop" handed to libwebsockets; never run by us */
    void *foreign_loops[1];
    struct lws_context *lws;
    struct lws_vhost *vhost;
    struct lws_protocols protocols[2];
    int listen_fd;          /* our own listening socket; accepted sockets are handed to lws */
    GSource *accept_source; /* readable listen_fd, or the pause after EMFILE */
    int port;
    char *listen_addr;
    char *web_root; /* realpath() of cfg.web_root, or NULL */
    size_t web_root_len;
    encore_ws_config cfg; /* with defaults applied; strings point at the copies above */
    encore_proto_limits limits;
    encore_metrics *metrics;
    ws_metrics m;
    GHashTable *routes; /* type -> encore_ws_route * (into route_table) */
    encore_ws_route *route_table;
    void *route_data;
    encore_ws_conn_fn on_open, on_close;
    void *conn_data;
    GHashTable *conns;    /* &conn->id -> conn */
    GHashTable *per_addr; /* address -> number of websockets (as pointer) */
    uint64_t next_id;
    encore_ws_origin_fn origin_fn;
    void *origin_data;
    char *auth_type; /* the gate is on when set */
    unsigned auth_timeout_ms;
    encore_ws_http_route *http_routes;
    size_t n_http_routes;
    void *http_data;
    GHashTable *http_reqs;     /* &req->id -> pending route request */
    GHashTable *header_tokens; /* "name:" of every header lws parses itself -> token + 1 */
    uint64_t next_http_id;
    bool ready;
    bool destroying;
    int in_service; /* depth of libwebsockets callbacks on the stack */
    unsigned char io[LWS_PRE + HTTP_CHUNK];
};

/* What a response head carries besides status, type and length. */
typedef struct http_extra {
    const char *allow; /* the Allow header of a 405; NULL: "GET, HEAD" */
    bool api;          /* a route answer: Cache-Control: no-store, counted by class */
    bool close;        /* Connection: close: the connection ends after this response */
} http_extra;

/* ---- ws.c, for ws_http.c ---- */

/* Wakes libwebsockets after a timer or writeability request made outside its callbacks (it only
 * notices them at its next wake-up); a no-op inside a callback or without a context. */
void encore_ws__poke(encore_ws *ws);

/* Writes the peer's address of wsi as text into buf (len bytes, NUL-terminated), with the
 * IPv4-mapped IPv6 prefix removed; "unknown" when libwebsockets does not know it. */
void encore_ws__peer_addr(struct lws *wsi, char *buf, size_t len);

/* Frees the response body a session still holds (closing its file), if any, and clears s->body. */
void encore_ws__body_free(session *s);

/* Writes a complete response (status line, the common headers, those x asks for, and body unless
 * head) in one write. len must be at most 2048 (HTTP_SMALL_BODY in ws.c); x may be NULL. Counts
 * the response. Returns 0, or -1 when the head does not fit or the write fails (the connection is
 * then to be closed). */
int encore_ws__http_small(encore_ws *ws, struct lws *wsi, unsigned status, const char *ctype,
                          const char *body, size_t len, bool head, const http_extra *x);

/* ---- ws_http.c, for ws.c ---- */

/* Sets up the route request state of a new server (pending request table, header token table,
 * ids); called once by encore_ws_new() before anything can fail. */
void encore_ws__http_init(encore_ws *ws);

/* Frees the route requests still pending (their sessions already gone), the tables made by
 * encore_ws__http_init() and the route table; called by encore_ws_free() after the libwebsockets
 * context is destroyed. */
void encore_ws__http_clear(encore_ws *ws);

/* Registers the route metrics (ws->m.api_*) with ws->metrics; called last by ws.c's metrics
 * registration, so that families keep their order in /metrics. */
void encore_ws__http_register_metrics(encore_ws *ws);

/* The request method ("GET", "POST", ...) of the request on wsi, from the URI token libwebsockets
 * filled; NULL for a method it does not parse. The string is static. */
const char *encore_ws__request_method(struct lws *wsi);

/* True when libwebsockets reads a body for the request on wsi: it has a Content-Length or a
 * Transfer-Encoding, or its method (may be NULL) is POST, PUT or PATCH. */
bool encore_ws__request_has_body(struct lws *wsi, const char *method);

/* The first HTTP route for method (may be NULL) and path, or NULL. When none, *path_known tells
 * whether a route has this path with other methods, and allow (may be NULL) receives those
 * methods, comma-separated. */
const encore_ws_http_route *encore_ws__route_find(encore_ws *ws, const char *method,
                                                  const char *path, bool *path_known,
                                                  GString *allow);

/* Handles LWS_CALLBACK_HTTP for a route path or anything under /api/: route is the match (NULL
 * when none) and allow the methods the path takes (NULL when the path is unknown). Refuses what it
 * must with a JSON error, or starts a request that waits for its body or goes to its handler.
 * Returns the callback's value. */
int encore_ws__on_api(encore_ws *ws, session *s, struct lws *wsi, const char *method,
                      const char *path, const encore_ws_http_route *route, const char *allow);

/* Handles LWS_CALLBACK_HTTP_BODY: appends len bytes of the body to the session's route request.
 * Returns the callback's value (-1 closes the connection). */
int encore_ws__on_http_body(encore_ws *ws, session *s, const void *in, size_t len);

/* Handles LWS_CALLBACK_HTTP_BODY_COMPLETION: sends a pending refusal or dispatches the route
 * request whose body is complete. Returns the callback's value. */
int encore_ws__on_http_body_done(encore_ws *ws, session *s, struct lws *wsi);

/* The end of an HTTP session or transaction: drops the route request it still holds (counted as
 * abandoned) and frees its response body. */
void encore_ws__http_session_end(encore_ws *ws, session *s);

#endif /* ENCORE_SIGNALING_WS_INTERNAL_H */
