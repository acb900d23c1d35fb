/* A small websocket client (RFC 6455, text messages, no extensions) for the load generator:
 * non-blocking TCP connections, all of one thread watched by one epoll set that is a single GSource
 * on the thread's GMainContext (GLib's poll costs O(sources) per wake-up; a thread holds hundreds
 * of connections). Runs only on the thread of that context; it never blocks and never calls back
 * from inside lg_ws_new, lg_ws_send_text or lg_ws_free. */
#ifndef ENCORE_LOADGEN_WS_H
#define ENCORE_LOADGEN_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

/* A parsed ws:// URL. */
typedef struct {
    char host[256]; /* as written (for the Host header) */
    char addr[64];  /* numeric address it resolved to */
    uint16_t port;  /* 80 when absent */
    char path[512]; /* "/" when absent */
} lg_url;

/* Parses "ws://HOST[:PORT][/PATH]" (HOST a name, an IPv4 literal or a bracketed IPv6 literal) and
 * resolves HOST once (blocking getaddrinfo; call at start-up). Returns 0, or -1 for another
 * scheme, a malformed URL, or a host that does not resolve. */
int lg_url_parse(const char *url, lg_url *out);

/* The epoll set of one thread's connections. */
typedef struct lg_ws_loop lg_ws_loop;

/* Creates the set and attaches its source to ctx. Returns NULL when epoll_create1 fails. */
lg_ws_loop *lg_ws_loop_new(GMainContext *ctx);
/* Detaches and frees it; every connection on it must have been freed. NULL is allowed. */
void lg_ws_loop_free(lg_ws_loop *loop);

typedef struct lg_ws lg_ws;

/* Every callback may call lg_ws_free on ws (the free then happens when the callback returns). */
typedef struct {
    /* The handshake completed (101 with the right accept key and subprotocol). */
    void (*on_open)(lg_ws *ws, void *user_data);
    /* One complete text (or binary) message; text is NUL-terminated and valid during the call. */
    void (*on_message)(lg_ws *ws, const char *text, size_t len, void *user_data);
    /* The connection failed or was closed (by either side); why is a short static reason. Called
     * once; nothing else is called after it. */
    void (*on_closed)(lg_ws *ws, const char *why, void *user_data);
} lg_ws_callbacks;

/* Starts connecting to url with the given subprotocol. bind_ip (NULL: any) is the local address to
 * connect from: the server counts connections per client address, so a load generator spreads its
 * connections over many loopback addresses. Returns the connection (owned by the caller: free with
 * lg_ws_free), or NULL when the socket cannot be created, bound, connected or watched (errno says
 * why). */
lg_ws *lg_ws_new(lg_ws_loop *loop, const lg_url *url, const char *subprotocol, const char *bind_ip,
                 const lg_ws_callbacks *cb, void *user_data);

/* Queues one text message (masked, one frame). Returns 0, or -1 when the connection is not open
 * (before on_open or after on_closed) or the output queue exceeds 4 MiB. */
int lg_ws_send_text(lg_ws *ws, const char *text, size_t len);

/* True between on_open and on_closed. */
bool lg_ws_is_open(const lg_ws *ws);

/* Closes the connection (a close frame is attempted without waiting) and frees it; no callback is
 * called afterwards. NULL is allowed. */
void lg_ws_free(lg_ws *ws);

#endif
