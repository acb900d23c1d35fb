/* The signaling server: libwebsockets (its GLib event loop) serving the websocket of
 * docs/protocol.md at /ws, static files, /healthz and /metrics. It decodes, limits and validates
 * requests and hands them to the handlers server/ registers; it knows nothing of rooms or media.
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
    const char *listen_addr; /* "127.0.0.1"; an IPv4 or IPv6 literal ("::" for all) */
    int port;                /* 0 lets the kernel choose (tests); servers use 8080 */
    const char *web_root;    /* directory served over HTTP ("/" -> index.html); NULL: none */
    size_t max_message;      /* 65536: bytes of one reassembled message */
    int max_depth;           /* 16: JSON nesting levels */
    double rate_per_sec;     /* 50: sustained messages per second per connection */
    double rate_burst;       /* 100: token bucket size */
    int max_conns_per_addr;  /* 32: websockets per peer IP address */
    int max_conns;           /* 10000: websockets in all */
    size_t max_queued;       /* 1048576: bytes queued for one slow reader before it is dropped */
    encore_metrics *metrics; /* registry for the counters and /metrics; NULL: the default one */
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

/* The connection with this id, or NULL when it is closed (or never existed). For answering after
 * asynchronous work without keeping a pointer that may dangle. */
encore_ws_conn *encore_ws_conn_lookup(encore_ws *ws, uint64_t conn_id);

/* Closes the websocket with ws_code (e.g. 1000, 1008) and reason (truncated to 123 bytes) after
 * the messages already queued are written; requests that arrive meanwhile are ignored. A client
 * that does not read is dropped after 5 seconds. on_close follows. Idempotent. */
void encore_ws_conn_close(encore_ws_conn *conn, int ws_code, const char *reason);

#endif /* ENCORE_SIGNALING_WS_H */
