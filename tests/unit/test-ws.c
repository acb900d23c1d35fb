/* Unit tests for signaling/ws.c over real loopback sockets: a raw TCP client in the test's own
 * GMainContext does the HTTP upgrade by hand and writes masked frames, so each check sees exactly
 * what a browser would. Covers dispatch and replies, every error path, fragmentation and the size
 * limit, rate limiting and the 1008 close, slow readers, the per-address and total limits, HTTP
 * (health, metrics, static files, traversal), on_close on clean, abrupt and server closes, the
 * origin hook, the authentication gate and its deadline, and HTTP routes (bodies byte for byte,
 * headers, every refusal, answers from later main loop sources, clients that leave first). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "signaling/ws.h"

#define TIMEOUT_MS 5000

/* ---- fixture ---- */

typedef struct {
    GMainContext *ctx;
    encore_ws *ws;
    encore_metrics *metrics;
    char *root; /* temporary directory: www/ (the web root) and secret.txt beside it */
    char *www;
    int opened, closed, handled;
    GPtrArray *open;    /* of encore_ws_conn *, in open order */
    char last_addr[64]; /* encore_ws_conn_addr() of the last connection opened */
    uint64_t last_closed_id;
    /* What the origin hook saw last, and how often it ran. */
    int origin_calls;
    char *seen_origin, *seen_host;
    size_t seen_origin_len;
    /* HTTP route handlers: calls, the last request's id, and the delay of /api/later. */
    int http_handled;
    uint64_t http_id;
    guint later_ms;
} fixture;

static void on_open(encore_ws_conn *conn, void *user_data)
{
    fixture *fx = user_data;
    fx->opened++;
    g_assert_null(encore_ws_conn_get_data(conn));
    encore_ws_conn_set_data(conn, GINT_TO_POINTER(fx->opened));
    g_strlcpy(fx->last_addr, encore_ws_conn_addr(conn), sizeof fx->last_addr);
    g_ptr_array_add(fx->open, conn);
}

static void on_close(encore_ws_conn *conn, void *user_data)
{
    fixture *fx = user_data;
    fx->closed++;
    fx->last_closed_id = encore_ws_conn_id(conn);
    g_assert_true(g_ptr_array_remove(fx->open, conn));
    /* Sending from on_close is harmless. */
    encore_ws_send(conn, json_pack("{s:s}", "type", "late"));
}

static void h_ping(encore_ws_conn *conn, json_t *id, json_t *msg, void *user_data)
{
    fixture *fx = user_data;
    fx->handled++;
    encore_ws_reply(conn, id, NULL);
}

static void h_echo(encore_ws_conn *conn, json_t *id, json_t *msg, void *user_data)
{
    fixture *fx = user_data;
    fx->handled++;
    encore_ws_reply(conn, id,
                    json_pack("{s:O, s:I}", "room", json_object_get(msg, "room"), "conn",
                              (json_int_t)encore_ws_conn_id(conn)));
}

/* An id-less notification: answered by an event. */
static void h_note(encore_ws_conn *conn, json_t *id, json_t *msg, void *user_data)
{
    fixture *fx = user_data;
    fx->handled++;
    g_assert_null(id);
    encore_ws_reply(conn, id, json_object()); /* no id: nothing is sent */
    encore_ws_send(conn, json_pack("{s:s, s:i}", "type", "noted", "n", fx->handled));
}

static void h_fail(encore_ws_conn *conn, json_t *id, json_t *msg, void *user_data)
{
    encore_ws_error(conn, id, "not_in_room", NULL, "join a room first (%d)", 42);
}

/* The gate's auth request: token "good" authenticates. */
static void h_auth(encore_ws_conn *conn, json_t *id, json_t *msg, void *user_data)
{
    fixture *fx = user_data;
    fx->handled++;
    if (g_strcmp0(json_string_value(json_object_get(msg, "token")), "good") != 0) {
        encore_ws_error(conn, id, "bad_token", "token", "no such token");
        return;
    }
    encore_ws_conn_set_authenticated(conn, true);
    encore_ws_reply(conn, id, NULL);
}

static void h_bye(encore_ws_conn *conn, json_t *id, json_t *msg, void *user_data)
{
    encore_ws_reply(conn, id, NULL);
    encore_ws_conn_close(conn, 4000, "bye now");
    encore_ws_reply(conn, id, NULL); /* ignored: the connection is closing */
}

static const encore_proto_field echo_schema[] = {
    {"room", ENCORE_PROTO_STRING, true, 1, 64, ENCORE_PROTO_IDENT},
    {"n", ENCORE_PROTO_INT, false, 0, 10, 0},
    {NULL, 0, false, 0, 0, 0},
};

static const encore_ws_route routes[] = {
    {"ping", h_ping, NULL}, {"echo", h_echo, echo_schema}, {"note", h_note, NULL},
    {"fail", h_fail, NULL}, {"bye", h_bye, NULL},          {"auth", h_auth, NULL},
};

static void write_file(const char *dir, const char *name, const char *text)
{
    char *path = g_build_filename(dir, name, NULL);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    g_free(path);
}

static void fx_setup(fixture *fx, gconstpointer data)
{
    fx->ctx = g_main_context_new();
    fx->metrics = encore_metrics_new();
    fx->open = g_ptr_array_new();
    fx->root = g_dir_make_tmp("encore-ws-XXXXXX", NULL);
    g_assert_nonnull(fx->root);
    fx->www = g_build_filename(fx->root, "www", NULL);
    g_assert_cmpint(g_mkdir(fx->www, 0700), ==, 0);
    write_file(fx->www, "index.html", "<!doctype html><title>Encore</title>\n");
    write_file(fx->www, "app.mjs", "export const x = 1;\n");
    write_file(fx->www, "style.css", "body{}\n");
    write_file(fx->www, ".hidden", "hidden\n");
    write_file(fx->root, "secret.txt", "secret\n");
    char *link = g_build_filename(fx->www, "link.txt", NULL);
    g_assert_cmpint(symlink("../secret.txt", link), ==, 0);
    g_free(link);
    /* A large file, written over several writeable callbacks. */
    GString *big = g_string_new(NULL);
    for (int i = 0; i < 10000; i++)
        g_string_append_printf(big, "line %05d\n", i);
    write_file(fx->www, "big.txt", big->str);
    g_string_free(big, TRUE);
}

static void fx_start(fixture *fx, const encore_ws_config *cfg_in)
{
    encore_ws_config cfg = cfg_in ? *cfg_in : (encore_ws_config){0};
    if (!cfg.listen_addr)
        cfg.listen_addr = "127.0.0.1";
    cfg.port = 0;
    cfg.web_root = fx->www;
    cfg.metrics = fx->metrics;
    GError *error = NULL;
    fx->ws = encore_ws_new(fx->ctx, &cfg, &error);
    g_assert_no_error(error);
    g_assert_nonnull(fx->ws);
    g_assert_cmpint(encore_ws_port(fx->ws), >, 0);
    encore_ws_set_routes(fx->ws, routes, G_N_ELEMENTS(routes), fx);
    encore_ws_set_conn_callbacks(fx->ws, on_open, on_close, fx);
}

static void rm_tree(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d)) != NULL) {
        char *p = g_build_filename(dir, name, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
            rm_tree(p);
        else
            g_unlink(p);
        g_free(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(dir);
}

static void fx_teardown(fixture *fx, gconstpointer data)
{
    encore_ws_free(fx->ws);
    g_assert_cmpint(fx->closed, ==, fx->opened);
    /* Nothing of the server may be left on the context. */
    for (int i = 0; i < 10; i++)
        g_main_context_iteration(fx->ctx, FALSE);
    g_main_context_unref(fx->ctx);
    encore_metrics_free(fx->metrics);
    g_ptr_array_unref(fx->open);
    g_free(fx->seen_origin);
    g_free(fx->seen_host);
    rm_tree(fx->root);
    g_free(fx->root);
    g_free(fx->www);
}

/* ---- pumping the loop ---- */

static gboolean set_flag(void *p)
{
    *(bool *)p = true;
    return G_SOURCE_REMOVE;
}

static gboolean fd_ready(int fd, GIOCondition cond, void *p)
{
    *(bool *)p = true;
    return G_SOURCE_REMOVE;
}

/* Runs the loop until fd is ready for cond (or hangs up); false on timeout. */
static bool pump_fd(fixture *fx, int fd, GIOCondition cond)
{
    struct pollfd p = {fd, (short)((cond & G_IO_IN ? POLLIN : 0) | (cond & G_IO_OUT ? POLLOUT : 0)),
                       0};
    if (poll(&p, 1, 0) > 0)
        return true;
    bool ready = false, timed_out = false;
    GSource *s = g_unix_fd_source_new(fd, cond | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(s, G_SOURCE_FUNC(fd_ready), &ready, NULL);
    g_source_attach(s, fx->ctx);
    GSource *t = g_timeout_source_new(TIMEOUT_MS);
    g_source_set_callback(t, set_flag, &timed_out, NULL);
    g_source_attach(t, fx->ctx);
    while (!ready && !timed_out)
        g_main_context_iteration(fx->ctx, TRUE);
    g_source_destroy(s);
    g_source_unref(s);
    g_source_destroy(t);
    g_source_unref(t);
    return ready;
}

/* Runs the loop until *counter reaches want; false after timeout_ms. */
static bool pump_until_ms(fixture *fx, const int *counter, int want, int timeout_ms)
{
    bool timed_out = false;
    GSource *t = g_timeout_source_new((guint)timeout_ms);
    g_source_set_callback(t, set_flag, &timed_out, NULL);
    g_source_attach(t, fx->ctx);
    while (*counter < want && !timed_out)
        g_main_context_iteration(fx->ctx, TRUE);
    g_source_destroy(t);
    g_source_unref(t);
    return *counter >= want;
}

static bool pump_until(fixture *fx, const int *counter, int want)
{
    return pump_until_ms(fx, counter, want, TIMEOUT_MS);
}

/* Runs the loop for ms milliseconds. */
static void pump_for(fixture *fx, int ms)
{
    bool done = false;
    GSource *t = g_timeout_source_new(ms);
    g_source_set_callback(t, set_flag, &done, NULL);
    g_source_attach(t, fx->ctx);
    while (!done)
        g_main_context_iteration(fx->ctx, TRUE);
    g_source_unref(t);
}

/* ---- a raw TCP client ---- */

static int rcvbuf;    /* when > 0, the receive buffer of the next client sockets */
static bool use_ipv6; /* connect to [::1] instead of 127.0.0.1 */

static int tcp_connect(fixture *fx)
{
    int fd = socket(use_ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(fd, >=, 0);
    if (rcvbuf > 0)
        g_assert_cmpint(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), ==, 0);
    uint16_t port = htons((uint16_t)encore_ws_port(fx->ws));
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = port, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = port};
    sa6.sin6_addr = in6addr_loopback;
    if (use_ipv6)
        g_assert_cmpint(connect(fd, (struct sockaddr *)&sa6, sizeof sa6), ==, 0);
    else
        g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof sa), ==, 0);
    g_assert_cmpint(fcntl(fd, F_SETFL, O_NONBLOCK), ==, 0);
    return fd;
}

static void tcp_write(fixture *fx, int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            g_assert_true(pump_fd(fx, fd, G_IO_OUT));
            continue;
        }
        g_assert_cmpint(n, >, 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Reads what is available into acc, waiting for it. Returns bytes read, 0 at EOF, -1 on error. */
static ssize_t tcp_read(fixture *fx, int fd, GByteArray *acc)
{
    if (!pump_fd(fx, fd, G_IO_IN))
        return -1;
    guint8 buf[65536];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0)
        g_byte_array_append(acc, buf, (guint)n);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return tcp_read(fx, fd, acc);
    return n;
}

typedef struct {
    int status;
    char *headers; /* lower-cased header block */
    GByteArray *body;
} http_response;

static void http_response_free(http_response *r)
{
    g_free(r->headers);
    g_byte_array_unref(r->body);
}

/* Parses one response at the start of data[0..len): the head, then Content-Length bytes of body
 * (none for a response to HEAD when head_only). Returns the bytes it took, 0 when incomplete. */
static size_t http_parse(const guint8 *data, size_t len, bool head_only, http_response *r)
{
    const guint8 *end = memmem(data, len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t hlen = (size_t)(end + 4 - data);
    g_assert_true(len >= 9 && memcmp(data, "HTTP/1.1 ", 9) == 0);
    char *headers = g_ascii_strdown((const char *)data, (gssize)(hlen - 2));
    const char *cl = strstr(headers, "\r\ncontent-length: ");
    size_t blen = cl && !head_only ? (size_t)g_ascii_strtoull(cl + 18, NULL, 10) : 0;
    if (len < hlen + blen) {
        g_free(headers);
        return 0;
    }
    r->status = (int)g_ascii_strtoll(headers + 9, NULL, 10);
    r->headers = headers;
    r->body = g_byte_array_new();
    g_byte_array_append(r->body, data + hlen, (guint)blen);
    return hlen + blen;
}

/* Sends raw bytes on a new connection and reads until the server closes it; returns everything
 * that came. */
static GByteArray *http_exchange(fixture *fx, const void *req, size_t len)
{
    int fd = tcp_connect(fx);
    tcp_write(fx, fd, req, len);
    GByteArray *acc = g_byte_array_new();
    ssize_t n;
    while ((n = tcp_read(fx, fd, acc)) > 0) {
    }
    g_assert_cmpint(n, ==, 0);
    close(fd);
    return acc;
}

/* Sends raw bytes and parses the one response the server sends before it closes. */
static http_response http_raw(fixture *fx, const void *req, size_t len)
{
    GByteArray *acc = http_exchange(fx, req, len);
    http_response r = {0};
    bool head = len >= 5 && memcmp(req, "HEAD ", 5) == 0;
    size_t used = http_parse(acc->data, acc->len, head, &r);
    g_assert_cmpuint(used, >, 0);
    g_assert_cmpuint(used, ==, acc->len);
    g_byte_array_unref(acc);
    return r;
}

/* Sends one request with "connection: close" and reads the response to EOF. */
static http_response http_request(fixture *fx, const char *method, const char *path)
{
    char *req = g_strdup_printf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                                method, path);
    http_response r = http_raw(fx, req, strlen(req));
    g_free(req);
    return r;
}

static char *header_value(const http_response *r, const char *name)
{
    char *needle = g_strdup_printf("\r\n%s: ", name);
    const char *p = strstr(r->headers, needle);
    char *v = NULL;
    if (p) {
        p += strlen(needle);
        v = g_strndup(p, strcspn(p, "\r\n"));
    }
    g_free(needle);
    return v;
}

static void assert_header(const http_response *r, const char *name, const char *want)
{
    char *v = header_value(r, name);
    g_assert_cmpstr(v, ==, want);
    g_free(v);
}

static void assert_body(const http_response *r, const char *want)
{
    g_assert_cmpuint(r->body->len, ==, strlen(want));
    g_assert_cmpint(memcmp(r->body->data, want, r->body->len), ==, 0);
}

/* ---- a websocket client ---- */

typedef struct {
    fixture *fx;
    int fd;
    GByteArray *in; /* bytes received and not yet consumed */
    int close_code; /* from the server's close frame, 0 before */
    char *close_reason;
    char *headers; /* lower-cased handshake response headers */
} wsc;

static void wsc_free(wsc *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    g_byte_array_unref(c->in);
    g_free(c->close_reason);
    g_free(c->headers);
    g_free(c);
}

/* Performs the upgrade on path; *status gets the HTTP status. Returns the client on 101, else
 * NULL (the response is checked with *body when given). */
/* The Origin header line wsc_open_full() sends ("" for none). */
static const char *wsc_origin = "Origin: http://127.0.0.1\r\n";

static wsc *wsc_open_full(fixture *fx, const char *path, const char *subprotocol, int *status,
                          char **body)
{
    wsc *c = g_new0(wsc, 1);
    c->fx = fx;
    c->fd = tcp_connect(fx);
    c->in = g_byte_array_new();
    char *proto =
        subprotocol ? g_strdup_printf("Sec-WebSocket-Protocol: %s\r\n", subprotocol) : g_strdup("");
    char *req =
        g_strdup_printf("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n%s%s\r\n",
                        path, proto, wsc_origin);
    tcp_write(fx, c->fd, req, strlen(req));
    g_free(req);
    g_free(proto);
    const guint8 *end = NULL;
    while (!end) {
        g_assert_cmpint(tcp_read(fx, c->fd, c->in), >, 0);
        end = memmem(c->in->data, c->in->len, "\r\n\r\n", 4);
    }
    size_t hlen = (size_t)(end + 4 - c->in->data);
    c->headers = g_ascii_strdown((const char *)c->in->data, (gssize)hlen);
    *status = (int)g_ascii_strtoll(c->headers + 9, NULL, 10);
    g_byte_array_remove_range(c->in, 0, (guint)hlen);
    if (*status == 101) {
        /* RFC 6455's sample key and its accept value. */
        g_assert_nonnull(
            strstr(c->headers, "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"));
        return c;
    }
    if (body) {
        /* The refusal is small and sent in one go; read until its content-length is there. */
        const char *cl = strstr(c->headers, "content-length: ");
        g_assert_nonnull(cl);
        guint want = (guint)g_ascii_strtoull(cl + 16, NULL, 10);
        while (c->in->len < want)
            g_assert_cmpint(tcp_read(fx, c->fd, c->in), >, 0);
        *body = g_strndup((const char *)c->in->data, c->in->len);
    }
    wsc_free(c);
    return NULL;
}

static wsc *wsc_open(fixture *fx)
{
    int status = 0;
    wsc *c = wsc_open_full(fx, "/ws", "encore.v1", &status, NULL);
    g_assert_cmpint(status, ==, 101);
    return c;
}

static void wsc_frame(wsc *c, int opcode, bool fin, const void *payload, size_t len)
{
    static const guint8 mask[4] = {0x12, 0x34, 0x56, 0x78};
    GByteArray *f = g_byte_array_new();
    guint8 b[14];
    size_t n = 0;
    b[n++] = (guint8)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        b[n++] = (guint8)(0x80 | len);
    } else if (len < 65536) {
        b[n++] = 0x80 | 126;
        b[n++] = (guint8)(len >> 8);
        b[n++] = (guint8)len;
    } else {
        b[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            b[n++] = (guint8)((guint64)len >> (8 * i));
    }
    memcpy(b + n, mask, 4);
    n += 4;
    g_byte_array_append(f, b, (guint)n);
    const guint8 *p = payload;
    for (size_t i = 0; i < len; i++) {
        guint8 x = p[i] ^ mask[i % 4];
        g_byte_array_append(f, &x, 1);
    }
    tcp_write(c->fx, c->fd, f->data, f->len);
    g_byte_array_unref(f);
}

static void wsc_send(wsc *c, const char *text)
{
    wsc_frame(c, 1, true, text, strlen(text));
}

/* Receives one frame; returns its opcode (-1 on EOF or timeout) and the payload in *payload. */
static int wsc_recv_frame(wsc *c, GByteArray **payload)
{
    for (;;) {
        if (c->in->len >= 2) {
            const guint8 *d = c->in->data;
            g_assert_cmpint(d[1] & 0x80, ==, 0); /* servers never mask */
            size_t len = d[1] & 0x7f, hdr = 2;
            if (len == 126 && c->in->len >= 4) {
                len = ((size_t)d[2] << 8) | d[3];
                hdr = 4;
            } else if (len == 127 && c->in->len >= 10) {
                len = 0;
                for (int i = 0; i < 8; i++)
                    len = (len << 8) | d[2 + i];
                hdr = 10;
            }
            if ((d[1] & 0x7f) < 126 || hdr > 2) {
                if (c->in->len >= hdr + len) {
                    int opcode = d[0] & 0x0f;
                    g_assert_cmpint(d[0] & 0x80, !=, 0); /* no fragmentation from the server */
                    *payload = g_byte_array_new();
                    g_byte_array_append(*payload, d + hdr, (guint)len);
                    g_byte_array_remove_range(c->in, 0, (guint)(hdr + len));
                    return opcode;
                }
            }
        }
        if (tcp_read(c->fx, c->fd, c->in) <= 0)
            return -1;
    }
}

/* Receives the next text frame as a string (NULL when the server closed; the close code is kept).
 */
static char *wsc_recv(wsc *c)
{
    for (;;) {
        GByteArray *p = NULL;
        int op = wsc_recv_frame(c, &p);
        if (op < 0)
            return NULL;
        if (op == 1) {
            char *s = g_strndup((const char *)p->data, p->len);
            g_byte_array_unref(p);
            return s;
        }
        if (op == 8) {
            c->close_code = p->len >= 2 ? (p->data[0] << 8) | p->data[1] : 1005;
            c->close_reason =
                p->len > 2 ? g_strndup((const char *)p->data + 2, p->len - 2) : g_strdup("");
            g_byte_array_unref(p);
            return NULL;
        }
        g_byte_array_unref(p); /* ping/pong */
    }
}

/* Receives a text frame and checks its exact text. */
static void wsc_expect(wsc *c, const char *want)
{
    char *got = wsc_recv(c);
    g_assert_cmpstr(got, ==, want);
    g_free(got);
}

/* Receives a frame and returns it parsed. */
static json_t *wsc_recv_json(wsc *c)
{
    char *got = wsc_recv(c);
    g_assert_nonnull(got);
    json_t *j = json_loads(got, 0, NULL);
    g_assert_nonnull(j);
    g_free(got);
    return j;
}

static void assert_error(wsc *c, const char *want_code, json_int_t want_id)
{
    json_t *j = wsc_recv_json(c);
    g_assert_cmpstr(json_string_value(json_object_get(j, "type")), ==, "error");
    g_assert_cmpstr(json_string_value(json_object_get(j, "code")), ==, want_code);
    json_t *id = json_object_get(j, "id");
    if (want_id < 0)
        g_assert_null(id);
    else
        g_assert_cmpint(json_integer_value(id), ==, want_id);
    json_decref(j);
}

static int64_t metric(fixture *fx, const char *name, const char *label, const char *value)
{
    return encore_metrics_get(encore_metrics_counter(fx->metrics, name, NULL, label, value));
}

/* ---- tests ---- */

static void test_dispatch(fixture *fx, gconstpointer data)
{
    fx_start(fx, NULL);
    wsc *c = wsc_open(fx);
    g_assert_nonnull(strstr(c->headers, "\r\nsec-websocket-protocol: encore.v1\r\n"));
    g_assert_true(pump_until(fx, &fx->opened, 1));
    encore_ws_conn *conn = g_ptr_array_index(fx->open, 0);
    g_assert_cmpuint(encore_ws_conn_id(conn), ==, 1);
    g_assert_true(encore_ws_conn_lookup(fx->ws, 1) == conn);
    g_assert_null(encore_ws_conn_lookup(fx->ws, 2));
    g_assert_cmpint(GPOINTER_TO_INT(encore_ws_conn_get_data(conn)), ==, 1);
    g_assert_cmpstr(fx->last_addr, ==, "127.0.0.1");
    g_assert_cmpstr(encore_ws_conn_addr(conn), ==, "127.0.0.1");

    wsc_send(c, "{\"type\":\"ping\",\"id\":7}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":7,\"data\":{}}");
    wsc_send(c, "{\"type\":\"echo\",\"id\":\"a1\",\"room\":\"lobby\",\"n\":3}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":\"a1\",\"data\":{\"room\":\"lobby\",\"conn\":1}}");
    /* No id: the handler's reply is dropped, its event arrives. */
    wsc_send(c, "{\"type\":\"note\"}");
    wsc_expect(c, "{\"type\":\"noted\",\"n\":3}");
    /* A handler's own error code. */
    wsc_send(c, "{\"type\":\"fail\",\"id\":9}");
    wsc_expect(c, "{\"type\":\"error\",\"id\":9,\"code\":\"not_in_room\",\"message\":\"join a room "
                  "first (42)\"}");
    /* A message in three fragments with a ping between them. */
    const char *m = "{\"type\":\"echo\",\"id\":2,\"room\":\"frag\"}";
    wsc_frame(c, 1, false, m, 10);
    wsc_frame(c, 9, true, "hi", 2);
    wsc_frame(c, 0, false, m + 10, 10);
    wsc_frame(c, 0, true, m + 20, strlen(m) - 20);
    GByteArray *pong = NULL;
    g_assert_cmpint(wsc_recv_frame(c, &pong), ==, 10);
    g_assert_cmpuint(pong->len, ==, 2);
    g_byte_array_unref(pong);
    wsc_expect(c, "{\"type\":\"result\",\"id\":2,\"data\":{\"room\":\"frag\",\"conn\":1}}");
    /* Events pushed by the server, in order. */
    encore_ws_send(conn, json_pack("{s:s, s:i}", "type", "room.state", "members", 1));
    encore_ws_send(conn, json_pack("{s:s, s:i}", "type", "room.state", "members", 2));
    encore_ws_send(conn, NULL); /* ignored */
    wsc_expect(c, "{\"type\":\"room.state\",\"members\":1}");
    wsc_expect(c, "{\"type\":\"room.state\",\"members\":2}");
    g_assert_cmpint(fx->handled, ==, 4);

    /* A client without a subprotocol is served as well. */
    int status = 0;
    wsc *c2 = wsc_open_full(fx, "/ws", NULL, &status, NULL);
    g_assert_cmpint(status, ==, 101);
    g_assert_null(strstr(c2->headers, "sec-websocket-protocol"));
    wsc_send(c2, "{\"type\":\"ping\",\"id\":1}");
    wsc_expect(c2, "{\"type\":\"result\",\"id\":1,\"data\":{}}");
    g_assert_cmpint(fx->opened, ==, 2);

    g_assert_cmpint(metric(fx, "encore_ws_connections_opened_total", NULL, NULL), ==, 2);
    g_assert_cmpint(metric(fx, "encore_ws_messages_in_total", NULL, NULL), ==, 6);
    g_assert_cmpint(metric(fx, "encore_ws_messages_out_total", NULL, NULL), ==, 8);
    g_assert_cmpint(metric(fx, "encore_ws_errors_total", "code", "not_in_room"), ==, 1);
    wsc_free(c);
    wsc_free(c2);
    g_assert_true(pump_until(fx, &fx->closed, 2));
}

static void test_errors(fixture *fx, gconstpointer data)
{
    fx_start(fx, NULL);
    wsc *c = wsc_open(fx);

    wsc_send(c, "{\"type\":\"ping\",");
    assert_error(c, "parse_error", -1);
    wsc_send(c, "{\"type\":\"ping\",\"id\":1}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":1,\"data\":{}}");
    wsc_send(c, "{\"type\":\"\xff\"}");
    assert_error(c, "parse_error", -1);
    wsc_send(c, "[1,2,3]");
    assert_error(c, "bad_message", -1);
    wsc_send(c, "{\"id\":4}");
    assert_error(c, "bad_message", -1);
    wsc_send(c, "{\"type\":\"ping\",\"id\":-4}");
    assert_error(c, "bad_message", -1);
    wsc_send(c, "{\"type\":\"nope\",\"id\":5}");
    wsc_expect(c, "{\"type\":\"error\",\"id\":5,\"code\":\"unknown_type\",\"message\":\"unknown "
                  "request type 'nope'\"}");
    wsc_send(c, "{\"type\":\"echo\",\"id\":6,\"room\":\"a b\"}");
    wsc_expect(c, "{\"type\":\"error\",\"id\":6,\"code\":\"invalid_field\",\"message\":\"field "
                  "'room' must be a string of 1-64 characters [A-Za-z0-9_-]\",\"field\":\"room\"}");
    wsc_send(c, "{\"type\":\"echo\",\"id\":7,\"room\":\"ok\",\"n\":11}");
    json_t *j = wsc_recv_json(c);
    g_assert_cmpstr(json_string_value(json_object_get(j, "field")), ==, "n");
    json_decref(j);
    GString *deep = g_string_new("{\"type\":\"ping\",\"id\":8,\"a\":");
    for (int i = 0; i < 16; i++)
        g_string_append_c(deep, '[');
    for (int i = 0; i < 16; i++)
        g_string_append_c(deep, ']');
    g_string_append_c(deep, '}');
    wsc_send(c, deep->str);
    assert_error(c, "too_deep", -1);
    g_string_free(deep, TRUE);
    /* Still usable after all that. */
    wsc_send(c, "{\"type\":\"ping\",\"id\":9}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":9,\"data\":{}}");
    g_assert_cmpint(fx->handled, ==, 2);
    g_assert_cmpint(metric(fx, "encore_ws_errors_total", "code", "parse_error"), ==, 2);
    g_assert_cmpint(metric(fx, "encore_ws_errors_total", "code", "bad_message"), ==, 3);
    g_assert_cmpint(metric(fx, "encore_ws_errors_total", "code", "unknown_type"), ==, 1);
    g_assert_cmpint(metric(fx, "encore_ws_errors_total", "code", "invalid_field"), ==, 2);
    g_assert_cmpint(metric(fx, "encore_ws_errors_total", "code", "too_deep"), ==, 1);
    wsc_free(c);
}

/* {"type":"ping","id":<id>,"p":"aaa..."} of exactly len bytes. */
static char *ping_of_size(int id, size_t len)
{
    char *head = g_strdup_printf("{\"type\":\"ping\",\"id\":%d,\"p\":\"", id);
    char *s = g_malloc(len + 1);
    memset(s, 'a', len);
    memcpy(s, head, strlen(head));
    s[len - 2] = '"';
    s[len - 1] = '}';
    s[len] = '\0';
    g_free(head);
    return s;
}

static void test_too_large(fixture *fx, gconstpointer data)
{
    fx_start(fx, NULL);
    wsc *c = wsc_open(fx);
    /* Exactly at the limit: served. */
    char *s = ping_of_size(1, 65536);
    wsc_send(c, s);
    wsc_expect(c, "{\"type\":\"result\",\"id\":1,\"data\":{}}");
    g_free(s);
    /* One byte over, in one frame. */
    s = ping_of_size(2, 65537);
    wsc_send(c, s);
    assert_error(c, "too_large", -1);
    g_free(s);
    /* 90000 bytes in three fragments: one error, the rest of the message discarded. */
    s = ping_of_size(3, 90000);
    wsc_frame(c, 1, false, s, 30000);
    wsc_frame(c, 0, false, s + 30000, 30000);
    wsc_frame(c, 0, true, s + 60000, 30000);
    g_free(s);
    json_t *j = wsc_recv_json(c);
    g_assert_cmpstr(json_string_value(json_object_get(j, "code")), ==, "too_large");
    g_assert_cmpstr(json_string_value(json_object_get(j, "message")), ==,
                    "message over the limit of 65536 bytes");
    json_decref(j);
    /* The connection still works, and fragments reassemble again. */
    wsc_send(c, "{\"type\":\"ping\",\"id\":4}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":4,\"data\":{}}");
    s = ping_of_size(5, 50000);
    wsc_frame(c, 1, false, s, 20000);
    wsc_frame(c, 0, true, s + 20000, 30000);
    wsc_expect(c, "{\"type\":\"result\",\"id\":5,\"data\":{}}");
    g_free(s);
    g_assert_cmpint(metric(fx, "encore_ws_errors_total", "code", "too_large"), ==, 2);
    wsc_free(c);
}

static void test_rate_limit(fixture *fx, gconstpointer data)
{
    encore_ws_config cfg = {.rate_per_sec = 0.001, .rate_burst = 3};
    fx_start(fx, &cfg);
    wsc *c = wsc_open(fx);
    for (int i = 1; i <= 3; i++) {
        char *m = g_strdup_printf("{\"type\":\"ping\",\"id\":%d}", i);
        wsc_send(c, m);
        g_free(m);
        char *want = g_strdup_printf("{\"type\":\"result\",\"id\":%d,\"data\":{}}", i);
        wsc_expect(c, want);
        g_free(want);
    }
    /* Six refused in a row: each answered with its id, and the sixth closes with 1008. */
    for (int i = 4; i <= 9; i++) {
        char *m = g_strdup_printf("{\"type\":\"ping\",\"id\":%d}", i);
        wsc_send(c, m);
        g_free(m);
    }
    for (int i = 4; i <= 9; i++)
        assert_error(c, "rate_limited", i);
    g_assert_null(wsc_recv(c));
    g_assert_cmpint(c->close_code, ==, 1008);
    g_assert_cmpstr(c->close_reason, ==, "rate limit exceeded");
    g_assert_cmpint(fx->handled, ==, 3);
    wsc_free(c);
    g_assert_true(pump_until(fx, &fx->closed, 1));
    g_assert_cmpint(metric(fx, "encore_ws_errors_total", "code", "rate_limited"), ==, 6);
    g_assert_cmpint(metric(fx, "encore_ws_dropped_total", "reason", "rate_limited"), ==, 1);
}

static void test_rate_refill(fixture *fx, gconstpointer data)
{
    /* Five refused in a row is still allowed; a token earned in between resets the count. */
    encore_ws_config cfg = {.rate_per_sec = 20, .rate_burst = 1};
    fx_start(fx, &cfg);
    wsc *c = wsc_open(fx);
    wsc_send(c, "{\"type\":\"ping\",\"id\":1}");
    for (int i = 0; i < 5; i++)
        wsc_send(c, "{\"type\":\"ping\",\"id\":2}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":1,\"data\":{}}");
    for (int i = 0; i < 5; i++)
        assert_error(c, "rate_limited", 2);
    pump_for(fx, 120); /* two tokens at 20/s, capped at the burst of 1 */
    wsc_send(c, "{\"type\":\"ping\",\"id\":3}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":3,\"data\":{}}");
    wsc_send(c, "{\"type\":\"ping\",\"id\":4}");
    assert_error(c, "rate_limited", 4);
    g_assert_cmpint(fx->closed, ==, 0);
    wsc_free(c);
}

static void test_close_api(fixture *fx, gconstpointer data)
{
    fx_start(fx, NULL);
    wsc *c = wsc_open(fx);
    g_assert_true(pump_until(fx, &fx->opened, 1));
    wsc_send(c, "{\"type\":\"bye\",\"id\":1}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":1,\"data\":{}}");
    g_assert_null(wsc_recv(c));
    g_assert_cmpint(c->close_code, ==, 4000);
    g_assert_cmpstr(c->close_reason, ==, "bye now");
    g_assert_true(pump_until(fx, &fx->closed, 1));
    g_assert_null(encore_ws_conn_lookup(fx->ws, 1));
    wsc_free(c);

    /* A long reason is cut at a character boundary within 123 bytes. */
    c = wsc_open(fx);
    g_assert_true(pump_until(fx, &fx->opened, 2));
    encore_ws_conn *conn = g_ptr_array_index(fx->open, 0);
    GString *reason = g_string_new("xy");
    for (int i = 0; i < 70; i++)
        g_string_append(reason, "\xC3\xA9");
    encore_ws_conn_close(conn, 1001, reason->str);
    encore_ws_conn_close(conn, 1000, "again"); /* idempotent */
    g_assert_null(wsc_recv(c));
    g_assert_cmpint(c->close_code, ==, 1001);
    g_assert_cmpuint(strlen(c->close_reason), ==, 122);
    g_assert_true(g_utf8_validate(c->close_reason, -1, NULL));
    g_string_free(reason, TRUE);
    wsc_free(c);
    g_assert_true(pump_until(fx, &fx->closed, 2));
}

static void test_abrupt_close(fixture *fx, gconstpointer data)
{
    fx_start(fx, NULL);
    wsc *c = wsc_open(fx);
    g_assert_true(pump_until(fx, &fx->opened, 1));
    /* A reset without close handshake. */
    struct linger lg = {1, 0};
    g_assert_cmpint(setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), ==, 0);
    wsc_free(c);
    g_assert_true(pump_until(fx, &fx->closed, 1));
    g_assert_cmpuint(fx->last_closed_id, ==, 1);

    /* A plain FIN in the middle of a fragmented message. */
    c = wsc_open(fx);
    g_assert_true(pump_until(fx, &fx->opened, 2));
    wsc_frame(c, 1, false, "{\"type\":", 8);
    shutdown(c->fd, SHUT_WR);
    g_assert_true(pump_until(fx, &fx->closed, 2));
    wsc_free(c);

    /* A clean close handshake. */
    c = wsc_open(fx);
    g_assert_true(pump_until(fx, &fx->opened, 3));
    wsc_frame(c, 8, true, "\x03\xe8", 2);
    g_assert_null(wsc_recv(c));
    g_assert_cmpint(c->close_code, ==, 1000);
    g_assert_true(pump_until(fx, &fx->closed, 3));
    wsc_free(c);

    /* Exactly once each. */
    pump_for(fx, 100);
    g_assert_cmpint(fx->closed, ==, 3);
    g_assert_cmpint(metric(fx, "encore_ws_connections_closed_total", NULL, NULL), ==, 3);
    g_assert_cmpint(encore_metrics_get(encore_metrics_gauge(fx->metrics, "encore_ws_connections",
                                                            NULL, NULL, NULL)),
                    ==, 0);
}

static void test_slow_reader(fixture *fx, gconstpointer data)
{
    encore_ws_config cfg = {.max_queued = 100000};
    fx_start(fx, &cfg);
    wsc *c = wsc_open(fx);
    g_assert_true(pump_until(fx, &fx->opened, 1));
    encore_ws_conn *conn = g_ptr_array_index(fx->open, 0);
    char *pad = g_malloc(10001);
    memset(pad, 'z', 10000);
    pad[10000] = '\0';
    /* Nothing is written until the loop runs: the queue passes 100000 bytes at the 10th event. */
    for (int i = 0; i < 30; i++)
        encore_ws_send(conn, json_pack("{s:s, s:s}", "type", "big", "pad", pad));
    g_free(pad);
    g_assert_true(pump_until(fx, &fx->closed, 1));
    g_assert_cmpint(metric(fx, "encore_ws_dropped_total", "reason", "slow_reader"), ==, 1);
    /* The client sees the connection end without a close frame. */
    char *got;
    while ((got = wsc_recv(c)) != NULL)
        g_free(got);
    g_assert_cmpint(c->close_code, ==, 0);
    wsc_free(c);
}

static void test_limits(fixture *fx, gconstpointer data)
{
    encore_ws_config cfg = {.max_conns_per_addr = 2};
    fx_start(fx, &cfg);
    wsc *a = wsc_open(fx);
    wsc *b = wsc_open(fx);
    int status = 0;
    char *body = NULL;
    g_assert_null(wsc_open_full(fx, "/ws", "encore.v1", &status, &body));
    g_assert_cmpint(status, ==, 503);
    g_assert_cmpstr(body, ==, "too many connections from this address\n");
    g_free(body);
    g_assert_cmpint(fx->opened, ==, 2);
    g_assert_cmpint(metric(fx, "encore_ws_refused_total", "reason", "per_address"), ==, 1);
    /* A slot frees when a connection ends. */
    wsc_free(a);
    g_assert_true(pump_until(fx, &fx->closed, 1));
    wsc *d = wsc_open(fx);
    g_assert_cmpint(fx->opened, ==, 3);

    /* Upgrades elsewhere than /ws are refused. */
    body = NULL;
    g_assert_null(wsc_open_full(fx, "/other", "encore.v1", &status, &body));
    g_assert_cmpint(status, ==, 404);
    g_free(body);
    g_assert_cmpint(metric(fx, "encore_ws_refused_total", "reason", "bad_path"), ==, 1);
    wsc_free(b);
    wsc_free(d);
    g_assert_true(pump_until(fx, &fx->closed, 3));
}

static void test_server_full(fixture *fx, gconstpointer data)
{
    encore_ws_config cfg = {.max_conns = 1};
    fx_start(fx, &cfg);
    wsc *a = wsc_open(fx);
    int status = 0;
    char *body = NULL;
    g_assert_null(wsc_open_full(fx, "/ws", NULL, &status, &body));
    g_assert_cmpint(status, ==, 503);
    g_assert_cmpstr(body, ==, "server full\n");
    g_free(body);
    g_assert_cmpint(metric(fx, "encore_ws_refused_total", "reason", "server_full"), ==, 1);
    wsc_free(a);
}

static void test_http(fixture *fx, gconstpointer data)
{
    fx_start(fx, NULL);
    http_response r = http_request(fx, "GET", "/healthz");
    g_assert_cmpint(r.status, ==, 503);
    assert_body(&r, "starting");
    http_response_free(&r);
    encore_ws_set_ready(fx->ws, true);
    r = http_request(fx, "GET", "/healthz");
    g_assert_cmpint(r.status, ==, 200);
    assert_header(&r, "content-type", "text/plain; charset=utf-8");
    assert_header(&r, "content-length", "2");
    assert_body(&r, "ok");
    g_assert_null(strstr(r.headers, "cache-control"));
    http_response_free(&r);

    /* Static files with their types; "/" is index.html. */
    r = http_request(fx, "GET", "/");
    g_assert_cmpint(r.status, ==, 200);
    assert_header(&r, "content-type", "text/html; charset=utf-8");
    assert_header(&r, "x-content-type-options", "nosniff");
    assert_body(&r, "<!doctype html><title>Encore</title>\n");
    g_assert_null(strstr(r.headers, "cache-control"));
    http_response_free(&r);
    r = http_request(fx, "GET", "/app.mjs");
    g_assert_cmpint(r.status, ==, 200);
    assert_header(&r, "content-type", "text/javascript; charset=utf-8");
    assert_body(&r, "export const x = 1;\n");
    http_response_free(&r);
    r = http_request(fx, "GET", "/style.css?v=2");
    g_assert_cmpint(r.status, ==, 200);
    assert_header(&r, "content-type", "text/css; charset=utf-8");
    http_response_free(&r);
    r = http_request(fx, "GET", "/big.txt");
    g_assert_cmpint(r.status, ==, 200);
    g_assert_cmpuint(r.body->len, ==, 110000);
    g_assert_cmpint(memcmp(r.body->data + 109989, "line 09999\n", 11), ==, 0);
    http_response_free(&r);
    r = http_request(fx, "HEAD", "/app.mjs");
    g_assert_cmpint(r.status, ==, 200);
    assert_header(&r, "content-length", "20");
    g_assert_cmpuint(r.body->len, ==, 0);
    http_response_free(&r);

    /* Not found, traversal, hidden files, symlinks out of the root, directories. */
    const char *missing[] = {"/nope.html",         "/../secret.txt",
                             "/%2e%2e/secret.txt", "/a/../../secret.txt",
                             "/..%2fsecret.txt",   "/link.txt",
                             "/.hidden",           "/www/",
                             "//etc/passwd",       "/ws"};
    for (size_t i = 0; i < G_N_ELEMENTS(missing); i++) {
        r = http_request(fx, "GET", missing[i]);
        if (r.status != 404)
            g_error("%s: status %d", missing[i], r.status);
        g_assert_null(memmem(r.body->data, r.body->len, "secret", 6));
        http_response_free(&r);
    }
    r = http_request(fx, "POST", "/");
    g_assert_cmpint(r.status, ==, 405);
    assert_header(&r, "allow", "get, head"); /* headers are lower-cased */
    http_response_free(&r);

    /* Metrics, after some websocket traffic. */
    wsc *c = wsc_open(fx);
    wsc_send(c, "{\"type\":\"ping\",\"id\":1}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":1,\"data\":{}}");
    wsc_send(c, "nonsense");
    assert_error(c, "parse_error", -1);
    r = http_request(fx, "GET", "/metrics");
    g_assert_cmpint(r.status, ==, 200);
    assert_header(&r, "content-type", "text/plain; version=0.0.4; charset=utf-8");
    g_byte_array_append(r.body, (const guint8 *)"", 1);
    const char *text = (const char *)r.body->data;
    g_assert_nonnull(strstr(text, "# TYPE encore_ws_connections_opened_total counter\n"
                                  "encore_ws_connections_opened_total 1\n"));
    g_assert_nonnull(strstr(text, "\nencore_ws_connections 1\n"));
    g_assert_nonnull(strstr(text, "\nencore_ws_messages_in_total 2\n"));
    g_assert_nonnull(strstr(text, "\nencore_ws_errors_total{code=\"parse_error\"} 1\n"));
    g_assert_nonnull(strstr(text, "\nencore_ws_errors_total{code=\"too_large\"} 0\n"));
    g_assert_nonnull(strstr(text, "\nencore_http_responses_total{code=\"404\"} 10\n"));
    http_response_free(&r);
    wsc_free(c);
}

static void test_close_timeout(fixture *fx, gconstpointer data)
{
    /* A client that stops reading while a close waits for the queue: dropped after 5 s. */
    encore_ws_config cfg = {.max_queued = 64 * 1024 * 1024};
    fx_start(fx, &cfg);
    rcvbuf = 4096;
    wsc *c = wsc_open(fx);
    rcvbuf = 0;
    g_assert_true(pump_until(fx, &fx->opened, 1));
    encore_ws_conn *conn = g_ptr_array_index(fx->open, 0);
    char *pad = g_malloc(65537);
    memset(pad, 'q', 65536);
    pad[65536] = '\0';
    for (int i = 0; i < 200; i++)
        encore_ws_send(conn, json_pack("{s:s, s:s}", "type", "big", "pad", pad));
    g_free(pad);
    pump_for(fx, 300); /* the socket fills up */
    gint64 t0 = g_get_monotonic_time();
    encore_ws_conn_close(conn, 1000, "bye");
    g_assert_true(pump_until_ms(fx, &fx->closed, 1, 9000));
    gint64 waited_ms = (g_get_monotonic_time() - t0) / 1000;
    g_assert_cmpint(waited_ms, >=, 4000);
    g_assert_cmpint(waited_ms, <=, 8000);
    wsc_free(c);
}

static void test_http_keepalive(fixture *fx, gconstpointer data)
{
    /* Several requests on one connection, pipelined, one of them streamed over several writes. */
    fx_start(fx, NULL);
    encore_ws_set_ready(fx->ws, true);
    int fd = tcp_connect(fx);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /big.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /app.mjs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    tcp_write(fx, fd, req, strlen(req));
    GByteArray *acc = g_byte_array_new();
    ssize_t n;
    while ((n = tcp_read(fx, fd, acc)) > 0) {
    }
    g_assert_cmpint(n, ==, 0);
    close(fd);
    g_byte_array_append(acc, (const guint8 *)"", 1);
    const char *text = (const char *)acc->data;
    const char *p1 = strstr(text, "HTTP/1.1 200 OK\r\n");
    g_assert_true(p1 == text);
    const char *p2 = strstr(p1 + 1, "HTTP/1.1 200 OK\r\n");
    g_assert_nonnull(p2);
    g_assert_nonnull(g_strstr_len(p1, p2 - p1, "\r\n\r\nok"));
    g_assert_nonnull(strstr(p2, "line 09999\nHTTP/1.1 200 OK\r\n"));
    g_assert_true(g_str_has_suffix(text, "\r\n\r\nexport const x = 1;\n"));
    g_byte_array_unref(acc);
}

static void test_ipv6(fixture *fx, gconstpointer data)
{
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    if (probe < 0) {
        g_test_skip("no IPv6");
        return;
    }
    close(probe);
    encore_ws_config cfg = {.listen_addr = "::1"};
    fx_start(fx, &cfg);
    use_ipv6 = true;
    wsc *c = wsc_open(fx);
    wsc_send(c, "{\"type\":\"ping\",\"id\":1}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":1,\"data\":{}}");
    http_response r = http_request(fx, "GET", "/healthz");
    use_ipv6 = false;
    g_assert_cmpint(r.status, ==, 503);
    http_response_free(&r);
    g_assert_cmpstr(fx->last_addr, ==, "::1");
    wsc_free(c);
}

static void test_free_with_open_conns(fixture *fx, gconstpointer data)
{
    fx_start(fx, NULL);
    wsc *a = wsc_open(fx);
    wsc *b = wsc_open(fx);
    g_assert_true(pump_until(fx, &fx->opened, 2));
    encore_ws_free(fx->ws);
    fx->ws = NULL;
    g_assert_cmpint(fx->closed, ==, 2);
    /* The clients see the end. */
    char *got = wsc_recv(a);
    g_assert_null(got);
    wsc_free(a);
    wsc_free(b);
}

/* ---- the origin hook ---- */

static bool origin_hook(const char *origin, size_t len, const char *host, void *user_data)
{
    fixture *fx = user_data;
    fx->origin_calls++;
    g_free(fx->seen_origin);
    g_free(fx->seen_host);
    fx->seen_origin = g_strdup(origin);
    fx->seen_origin_len = len;
    fx->seen_host = g_strdup(host);
    if (origin)
        g_assert_cmpuint(strlen(origin), ==, len);
    return origin && strcmp(origin, "http://127.0.0.1") == 0;
}

/* Opens /ws with the given Origin line; returns the HTTP status (the client is kept in *out when
 * the upgrade succeeded). */
static int open_with_origin(fixture *fx, const char *origin_line, wsc **out, char **body)
{
    int status = 0;
    wsc_origin = origin_line;
    wsc *c = wsc_open_full(fx, "/ws", "encore.v1", &status, body);
    wsc_origin = "Origin: http://127.0.0.1\r\n";
    if (out)
        *out = c;
    else
        wsc_free(c);
    return status;
}

static void test_origin(fixture *fx, gconstpointer data)
{
    fx_start(fx, NULL);
    encore_ws_set_origin_check(fx->ws, origin_hook, fx);

    /* Allowed: the hook sees the exact header and the Host. */
    wsc *c = NULL;
    g_assert_cmpint(open_with_origin(fx, "Origin: http://127.0.0.1\r\n", &c, NULL), ==, 101);
    g_assert_cmpint(fx->origin_calls, ==, 1);
    g_assert_cmpstr(fx->seen_origin, ==, "http://127.0.0.1");
    g_assert_cmpuint(fx->seen_origin_len, ==, 16);
    g_assert_cmpstr(fx->seen_host, ==, "127.0.0.1");
    wsc_send(c, "{\"type\":\"ping\",\"id\":1}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":1,\"data\":{}}");
    g_assert_cmpint(fx->opened, ==, 1);

    /* Refused: 403 before the websocket opens. */
    char *body = NULL;
    g_assert_cmpint(open_with_origin(fx, "Origin: https://evil.example\r\n", NULL, &body), ==, 403);
    g_assert_cmpstr(body, ==, "origin not allowed\n");
    g_free(body);
    g_assert_cmpint(fx->origin_calls, ==, 2);
    g_assert_cmpstr(fx->seen_origin, ==, "https://evil.example");

    /* Missing: the hook gets NULL. */
    g_assert_cmpint(open_with_origin(fx, "", NULL, NULL), ==, 403);
    g_assert_cmpint(fx->origin_calls, ==, 3);
    g_assert_null(fx->seen_origin);
    g_assert_cmpuint(fx->seen_origin_len, ==, 0);
    g_assert_cmpstr(fx->seen_host, ==, "127.0.0.1");

    /* Longer than ENCORE_WS_ORIGIN_MAX: refused without asking the hook. */
    GString *longer = g_string_new("Origin: http://");
    for (int i = 0; i < ENCORE_WS_ORIGIN_MAX; i++)
        g_string_append_c(longer, 'a');
    g_string_append(longer, "\r\n");
    g_assert_cmpint(open_with_origin(fx, longer->str, NULL, NULL), ==, 403);
    g_string_free(longer, TRUE);
    g_assert_cmpint(fx->origin_calls, ==, 3);

    /* Exactly at the bound: the hook decides. */
    GString *at = g_string_new("Origin: http://");
    while (at->len < strlen("Origin: ") + ENCORE_WS_ORIGIN_MAX)
        g_string_append_c(at, 'b');
    g_string_append(at, "\r\n");
    g_assert_cmpint(open_with_origin(fx, at->str, NULL, NULL), ==, 403);
    g_string_free(at, TRUE);
    g_assert_cmpint(fx->origin_calls, ==, 4);
    g_assert_cmpuint(fx->seen_origin_len, ==, ENCORE_WS_ORIGIN_MAX);

    g_assert_cmpint(fx->opened, ==, 1);
    g_assert_cmpint(metric(fx, "encore_ws_refused_total", "reason", "origin"), ==, 4);
    g_assert_cmpint(metric(fx, "encore_ws_refused_total", "reason", "bad_path"), ==, 0);

    /* Without a hook, anything goes again. */
    encore_ws_set_origin_check(fx->ws, NULL, NULL);
    wsc *d = NULL;
    g_assert_cmpint(open_with_origin(fx, "Origin: https://evil.example\r\n", &d, NULL), ==, 101);
    g_assert_cmpint(fx->origin_calls, ==, 4);
    wsc_free(c);
    wsc_free(d);
    g_assert_true(pump_until(fx, &fx->closed, 2));
}

/* ---- the authentication gate ---- */

static void expect_unauthorized(wsc *c, json_int_t id)
{
    json_t *j = wsc_recv_json(c);
    json_t *want =
        id >= 0
            ? json_pack("{s:s, s:I, s:s, s:s}", "type", "error", "id", id, "code", "unauthorized",
                        "message", "not authenticated: send the 'auth' request first")
            : json_pack("{s:s, s:s, s:s}", "type", "error", "code", "unauthorized", "message",
                        "not authenticated: send the 'auth' request first");
    g_assert_true(json_equal(j, want));
    json_decref(j);
    json_decref(want);
}

static void test_auth_gate(fixture *fx, gconstpointer data)
{
    fx_start(fx, NULL);
    encore_ws_set_auth(fx->ws, "auth", 0);
    wsc *c = wsc_open(fx);
    g_assert_true(pump_until(fx, &fx->opened, 1));
    encore_ws_conn *conn = g_ptr_array_index(fx->open, 0);
    g_assert_false(encore_ws_conn_authenticated(conn));

    /* Before auth: only auth and ping reach a handler. */
    wsc_send(c, "{\"type\":\"echo\",\"id\":1,\"room\":\"lobby\"}");
    expect_unauthorized(c, 1);
    wsc_send(c, "{\"type\":\"nope\",\"id\":2}");
    expect_unauthorized(c, 2);
    wsc_send(c, "{\"type\":\"note\"}");
    expect_unauthorized(c, -1);
    wsc_send(c, "{\"type\":\"ping\",\"id\":3}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":3,\"data\":{}}");
    wsc_send(c, "{\"type\":\"auth\",\"id\":4,\"token\":\"bad\"}");
    wsc_expect(c, "{\"type\":\"error\",\"id\":4,\"code\":\"bad_token\",\"message\":\"no such "
                  "token\",\"field\":\"token\"}");
    g_assert_cmpint(fx->handled, ==, 2);

    /* After auth: everything. */
    wsc_send(c, "{\"type\":\"auth\",\"id\":5,\"token\":\"good\"}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":5,\"data\":{}}");
    g_assert_true(encore_ws_conn_authenticated(conn));
    wsc_send(c, "{\"type\":\"echo\",\"id\":6,\"room\":\"lobby\"}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":6,\"data\":{\"room\":\"lobby\",\"conn\":1}}");
    wsc_send(c, "{\"type\":\"nope\",\"id\":7}");
    assert_error(c, "unknown_type", 7);

    /* Set back to unauthenticated: gated again. */
    encore_ws_conn_set_authenticated(conn, false);
    wsc_send(c, "{\"type\":\"echo\",\"id\":8,\"room\":\"lobby\"}");
    expect_unauthorized(c, 8);
    g_assert_cmpint(fx->handled, ==, 4);
    g_assert_cmpint(metric(fx, "encore_ws_errors_total", "code", "unauthorized"), ==, 4);

    /* The gate off: everything again. */
    encore_ws_set_auth(fx->ws, NULL, 0);
    wsc_send(c, "{\"type\":\"echo\",\"id\":9,\"room\":\"lobby\"}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":9,\"data\":{\"room\":\"lobby\",\"conn\":1}}");
    g_assert_cmpint(fx->closed, ==, 0);
    wsc_free(c);
}

static void test_auth_timeout(fixture *fx, gconstpointer data)
{
    fx_start(fx, NULL);
    encore_ws_set_auth(fx->ws, "auth", 300);
    gint64 t0 = g_get_monotonic_time();
    wsc *a = wsc_open(fx);
    wsc *b = wsc_open(fx);
    g_assert_true(pump_until(fx, &fx->opened, 2));
    wsc_send(b, "{\"type\":\"auth\",\"id\":1,\"token\":\"good\"}");
    wsc_expect(b, "{\"type\":\"result\",\"id\":1,\"data\":{}}");

    /* a says nothing useful: closed with 1008 after the deadline; on_close follows. */
    wsc_send(a, "{\"type\":\"echo\",\"id\":1,\"room\":\"x\"}");
    expect_unauthorized(a, 1);
    g_assert_null(wsc_recv(a));
    gint64 waited_ms = (g_get_monotonic_time() - t0) / 1000;
    g_assert_cmpint(a->close_code, ==, 1008);
    g_assert_cmpstr(a->close_reason, ==, "authentication timeout");
    g_assert_cmpint(waited_ms, >=, 280);
    g_assert_cmpint(waited_ms, <, 3000);
    g_assert_true(pump_until(fx, &fx->closed, 1));
    g_assert_cmpint(metric(fx, "encore_ws_dropped_total", "reason", "auth_timeout"), ==, 1);

    /* b, authenticated in time, stays well past the deadline. */
    pump_for(fx, 400);
    wsc_send(b, "{\"type\":\"echo\",\"id\":2,\"room\":\"y\"}");
    wsc_expect(b, "{\"type\":\"result\",\"id\":2,\"data\":{\"room\":\"y\",\"conn\":2}}");
    g_assert_cmpint(fx->closed, ==, 1);

    /* Unauthenticated again: a new deadline. */
    encore_ws_conn *conn = g_ptr_array_index(fx->open, 0);
    g_assert_cmpuint(encore_ws_conn_id(conn), ==, 2);
    encore_ws_conn_set_authenticated(conn, false);
    g_assert_null(wsc_recv(b));
    g_assert_cmpint(b->close_code, ==, 1008);
    g_assert_true(pump_until(fx, &fx->closed, 2));
    g_assert_cmpint(metric(fx, "encore_ws_dropped_total", "reason", "auth_timeout"), ==, 2);

    /* Turning the gate off stops a pending deadline. */
    wsc *c = wsc_open(fx);
    g_assert_true(pump_until(fx, &fx->opened, 3));
    encore_ws_set_auth(fx->ws, NULL, 0);
    pump_for(fx, 450);
    wsc_send(c, "{\"type\":\"ping\",\"id\":3}");
    wsc_expect(c, "{\"type\":\"result\",\"id\":3,\"data\":{}}");
    g_assert_cmpint(fx->closed, ==, 2);
    wsc_free(a);
    wsc_free(b);
    wsc_free(c);
}

/* ---- HTTP routes ---- */

static void hh_echo(encore_ws_http *req, void *user_data)
{
    fixture *fx = user_data;
    fx->http_handled++;
    fx->http_id = encore_ws_http_id(req);
    size_t len = 99;
    const uint8_t *body = encore_ws_http_body(req, &len);
    g_assert_nonnull(body);
    g_assert_cmpuint(body[len], ==, 0);
    encore_ws_http_respond(req, 200, "application/octet-stream", (const char *)body, len);
}

/* Answers with what it saw of the request (absent values left out). */
static void hh_info(encore_ws_http *req, void *user_data)
{
    fixture *fx = user_data;
    fx->http_handled++;
    fx->http_id = encore_ws_http_id(req);
    g_assert_true(encore_ws_http_lookup(fx->ws, fx->http_id) == req);
    size_t len = 0;
    encore_ws_http_body(req, &len);
    json_t *j =
        json_pack("{s:s, s:s, s:s*, s:s, s:I, s:s*, s:s*, s:s*, s:s*, s:s*, s:s*, s:s*, s:I}",
                  "method", encore_ws_http_method(req), "path", encore_ws_http_path(req), "query",
                  encore_ws_http_query(req), "addr", encore_ws_http_addr(req), "id",
                  (json_int_t)encore_ws_http_id(req), "authorization",
                  encore_ws_http_header(req, "authorization"), "signature",
                  encore_ws_http_header(req, "encore-signature"), "empty",
                  encore_ws_http_header(req, "x-empty"), "origin",
                  encore_ws_http_header(req, "origin"), "host", encore_ws_http_header(req, "host"),
                  "type", encore_ws_http_header(req, "content-type"), "absent",
                  encore_ws_http_header(req, "x-absent"), "body_len", (json_int_t)len);
    /* Looked up twice: the same string. */
    g_assert_true(encore_ws_http_header(req, "authorization") ==
                  encore_ws_http_header(req, "authorization"));
    encore_ws_http_respond_json(req, 200, j);
}

/* Answered later, from a timeout source on the main loop, with "later:" and the body. */
static gboolean answer_later(void *user_data)
{
    fixture *fx = user_data;
    encore_ws_http *req = encore_ws_http_lookup(fx->ws, fx->http_id);
    g_assert_nonnull(req);
    size_t len = 0;
    const uint8_t *body = encore_ws_http_body(req, &len);
    char *text = g_strdup_printf("later:%.*s", (int)len, (const char *)body);
    encore_ws_http_respond(req, 202, "text/plain", text, strlen(text));
    g_free(text);
    g_assert_null(encore_ws_http_lookup(fx->ws, fx->http_id));
    return G_SOURCE_REMOVE;
}

static void hh_later(encore_ws_http *req, void *user_data)
{
    fixture *fx = user_data;
    fx->http_handled++;
    fx->http_id = encore_ws_http_id(req);
    GSource *t = fx->later_ms ? g_timeout_source_new(fx->later_ms) : g_idle_source_new();
    g_source_set_callback(t, answer_later, fx, NULL);
    g_source_attach(t, fx->ctx);
    g_source_unref(t);
}

/* Never answers (the client leaves, the deadline passes or the server stops). */
static void hh_never(encore_ws_http *req, void *user_data)
{
    fixture *fx = user_data;
    fx->http_handled++;
    fx->http_id = encore_ws_http_id(req);
}

static const encore_ws_http_route http_routes[] = {
    {"POST", "/api/echo", hh_echo, 0},   {"POST", "/api/small", hh_echo, 10},
    {"GET", "/api/info", hh_info, 0},    {"POST", "/api/hooks/", hh_info, 0},
    {"GET", "/api/later", hh_later, 0},  {"POST", "/api/later", hh_later, 0},
    {"GET", "/api/never", hh_never, 0},  {"POST", "/api/never", hh_never, 0},
    {"DELETE", "/api/info", hh_info, 0}, {"GET", "/custom", hh_info, 0},
};

static void fx_start_routes(fixture *fx, const encore_ws_config *cfg)
{
    fx_start(fx, cfg);
    encore_ws_set_ready(fx->ws, true);
    encore_ws_set_http_routes(fx->ws, http_routes, G_N_ELEMENTS(http_routes), fx);
}

/* "POST path" with Connection: close, Content-Length and the body. */
static http_response http_post(fixture *fx, const char *path, const void *body, size_t len)
{
    GByteArray *req = g_byte_array_new();
    char *head = g_strdup_printf("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                                 "Content-Length: %zu\r\n\r\n",
                                 path, len);
    g_byte_array_append(req, (const guint8 *)head, (guint)strlen(head));
    g_byte_array_append(req, body, (guint)len);
    g_free(head);
    http_response r = http_raw(fx, req->data, req->len);
    g_byte_array_unref(req);
    return r;
}

static void assert_body_bytes(const http_response *r, const void *want, size_t len)
{
    g_assert_cmpuint(r->body->len, ==, len);
    g_assert_cmpint(memcmp(r->body->data, want, len), ==, 0);
}

static json_t *body_json(const http_response *r)
{
    json_t *j = json_loadb((const char *)r->body->data, r->body->len, 0, NULL);
    g_assert_nonnull(j);
    return j;
}

/* Checks a JSON error answer of this layer. */
static void assert_api_error(const http_response *r, int status, const char *code)
{
    g_assert_cmpint(r->status, ==, status);
    assert_header(r, "content-type", "application/json");
    assert_header(r, "cache-control", "no-store");
    json_t *j = body_json(r);
    g_assert_cmpstr(json_string_value(json_object_get(j, "error")), ==, code);
    g_assert_nonnull(json_string_value(json_object_get(j, "message")));
    json_decref(j);
}

static void test_http_routes(fixture *fx, gconstpointer data)
{
    fx_start_routes(fx, NULL);

    /* A binary body, NUL and 0xFF included, comes back byte for byte. */
    guint8 bin[512];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (guint8)(i * 7 + (i >> 8));
    bin[10] = 0;
    bin[11] = 0xFF;
    http_response r = http_post(fx, "/api/echo", bin, sizeof bin);
    g_assert_cmpint(r.status, ==, 200);
    assert_header(&r, "content-type", "application/octet-stream");
    assert_header(&r, "content-length", "512");
    assert_header(&r, "cache-control", "no-store");
    assert_header(&r, "x-content-type-options", "nosniff");
    assert_body_bytes(&r, bin, sizeof bin);
    http_response_free(&r);
    g_assert_cmpint(fx->http_handled, ==, 1);
    g_assert_cmpuint(fx->http_id, ==, 1);

    /* Exactly the default cap, read over several callbacks and written over several. */
    guint8 *big = g_malloc(16384);
    for (size_t i = 0; i < 16384; i++)
        big[i] = (guint8)(i * 31 + 5);
    r = http_post(fx, "/api/echo", big, 16384);
    g_assert_cmpint(r.status, ==, 200);
    assert_body_bytes(&r, big, 16384);
    http_response_free(&r);
    g_free(big);

    /* An empty body. */
    r = http_post(fx, "/api/echo", "", 0);
    g_assert_cmpint(r.status, ==, 200);
    assert_header(&r, "content-length", "0");
    g_assert_cmpuint(r.body->len, ==, 0);
    http_response_free(&r);
    g_assert_cmpint(fx->http_handled, ==, 3);

    /* Method, path, query and headers, known to lws or not, in any case on the wire. */
    const char *get = "GET /api/info?x=1&y=two%20words HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Authorization: Bearer abc.def\r\nENCORE-Signature: t=1,v1=ab  \r\n"
                      "X-Empty:\r\nConnection: close\r\n\r\n";
    r = http_raw(fx, get, strlen(get));
    g_assert_cmpint(r.status, ==, 200);
    assert_header(&r, "content-type", "application/json");
    assert_header(&r, "cache-control", "no-store");
    json_t *j = body_json(&r);
    json_t *want =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:I}", "method", "GET", "path",
                  "/api/info", "query", "x=1&y=two words", "addr", "127.0.0.1", "id", (json_int_t)4,
                  "authorization", "Bearer abc.def", "signature", "t=1,v1=ab", "empty", "", "host",
                  "127.0.0.1", "body_len", (json_int_t)0);
    if (!json_equal(j, want)) {
        char *got = json_dumps(j, JSON_SORT_KEYS);
        g_error("info: %s", got);
    }
    json_decref(j);
    json_decref(want);
    http_response_free(&r);

    /* A prefix route, a JSON body with its type, an Origin. */
    const char *hook = "POST /api/hooks/sandbox HTTP/1.1\r\nHost: example.org:8080\r\n"
                       "Content-Type: application/json\r\nOrigin: https://pay.example\r\n"
                       "Content-Length: 11\r\nConnection: close\r\n\r\n{\"a\":\"b\"}\r\n";
    r = http_raw(fx, hook, strlen(hook));
    g_assert_cmpint(r.status, ==, 200);
    j = body_json(&r);
    g_assert_cmpstr(json_string_value(json_object_get(j, "method")), ==, "POST");
    g_assert_cmpstr(json_string_value(json_object_get(j, "path")), ==, "/api/hooks/sandbox");
    g_assert_null(json_object_get(j, "query"));
    g_assert_cmpstr(json_string_value(json_object_get(j, "type")), ==, "application/json");
    g_assert_cmpstr(json_string_value(json_object_get(j, "origin")), ==, "https://pay.example");
    g_assert_cmpstr(json_string_value(json_object_get(j, "host")), ==, "example.org:8080");
    g_assert_null(json_object_get(j, "authorization"));
    g_assert_null(json_object_get(j, "absent"));
    g_assert_cmpint(json_integer_value(json_object_get(j, "body_len")), ==, 11);
    json_decref(j);
    http_response_free(&r);

    /* Other methods, and a route outside /api/. */
    r = http_request(fx, "DELETE", "/api/info");
    g_assert_cmpint(r.status, ==, 200);
    http_response_free(&r);
    r = http_request(fx, "GET", "/custom");
    g_assert_cmpint(r.status, ==, 200);
    http_response_free(&r);
    g_assert_cmpint(fx->http_handled, ==, 7);

    /* Static files, /healthz and /metrics still answer. */
    r = http_request(fx, "GET", "/");
    g_assert_cmpint(r.status, ==, 200);
    assert_body(&r, "<!doctype html><title>Encore</title>\n");
    g_assert_null(strstr(r.headers, "cache-control"));
    http_response_free(&r);
    r = http_request(fx, "GET", "/healthz");
    g_assert_cmpint(r.status, ==, 200);
    assert_body(&r, "ok");
    http_response_free(&r);
    r = http_request(fx, "GET", "/metrics");
    g_assert_cmpint(r.status, ==, 200);
    g_byte_array_append(r.body, (const guint8 *)"", 1);
    g_assert_nonnull(
        strstr((const char *)r.body->data, "\nencore_http_api_responses_total{class=\"2xx\"} 7\n"));
    g_assert_nonnull(strstr((const char *)r.body->data, "\nencore_http_api_pending 0\n"));
    http_response_free(&r);
    g_assert_cmpint(metric(fx, "encore_http_api_responses_total", "class", "4xx"), ==, 0);
}

static void test_http_route_errors(fixture *fx, gconstpointer data)
{
    fx_start_routes(fx, NULL);

    http_response r = http_request(fx, "GET", "/api/nope");
    assert_api_error(&r, 404, "not_found");
    http_response_free(&r);
    r = http_request(fx, "GET", "/api");
    assert_api_error(&r, 404, "not_found");
    http_response_free(&r);
    r = http_request(fx, "POST", "/api/nope"); /* no body framing either: closed */
    assert_api_error(&r, 404, "not_found");
    assert_header(&r, "connection", "close");
    http_response_free(&r);

    /* A route path with another method. */
    r = http_request(fx, "GET", "/api/echo");
    assert_api_error(&r, 405, "method_not_allowed");
    assert_header(&r, "allow", "post");
    http_response_free(&r);
    r = http_request(fx, "PUT", "/api/info");
    assert_api_error(&r, 405, "method_not_allowed");
    assert_header(&r, "allow", "get, delete");
    http_response_free(&r);
    r = http_request(fx, "HEAD", "/api/info");
    g_assert_cmpint(r.status, ==, 405);
    g_assert_cmpuint(r.body->len, ==, 0);
    http_response_free(&r);

    /* Over the cap: 413 without the handler, once the body is read (a client still sending
     * sees the answer, not a reset); then the connection ends, whatever follows. */
    guint8 *big = g_malloc0(16385);
    r = http_post(fx, "/api/echo", big, 16385);
    assert_api_error(&r, 413, "too_large");
    assert_header(&r, "connection", "close");
    json_t *j = body_json(&r);
    g_assert_cmpstr(json_string_value(json_object_get(j, "message")), ==,
                    "the body is over the limit of 16384 bytes");
    json_decref(j);
    http_response_free(&r);
    g_free(big);
    const char *two = "POST /api/small HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
                      "hello world"
                      "GET /api/info HTTP/1.1\r\nHost: x\r\n\r\n";
    r = http_raw(fx, two, strlen(two));
    assert_api_error(&r, 413, "too_large");
    j = body_json(&r);
    g_assert_cmpstr(json_string_value(json_object_get(j, "message")), ==,
                    "the body is over the limit of 10 bytes");
    json_decref(j);
    http_response_free(&r);

    /* A large declared length: answered at once, and the connection closed (the client still
     * holds the rest). */
    const char *huge = "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\nabc";
    r = http_raw(fx, huge, strlen(huge));
    assert_api_error(&r, 413, "too_large");
    assert_header(&r, "connection", "close");
    http_response_free(&r);

    /* Bodies without a usable length. */
    const char *nolen = "POST /api/echo HTTP/1.1\r\nHost: x\r\n\r\n";
    r = http_raw(fx, nolen, strlen(nolen));
    assert_api_error(&r, 411, "length_required");
    assert_header(&r, "connection", "close");
    http_response_free(&r);
    const char *chunked = "POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "3\r\nabc\r\n0\r\n\r\n";
    r = http_raw(fx, chunked, strlen(chunked));
    assert_api_error(&r, 411, "length_required");
    http_response_free(&r);
    const char *badlen = "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3x\r\n\r\nabc";
    r = http_raw(fx, badlen, strlen(badlen));
    assert_api_error(&r, 400, "bad_request");
    assert_header(&r, "connection", "close");
    http_response_free(&r);
    const char *both = "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                       "Transfer-Encoding: chunked\r\n\r\nabc";
    r = http_raw(fx, both, strlen(both));
    assert_api_error(&r, 400, "bad_request");
    http_response_free(&r);

    /* A body sent to a static path: 405, and the connection closes rather than reading on. */
    r = http_request(fx, "POST", "/index.html");
    g_assert_cmpint(r.status, ==, 405);
    assert_header(&r, "connection", "close");
    http_response_free(&r);

    g_assert_cmpint(fx->http_handled, ==, 0);
    g_assert_cmpint(metric(fx, "encore_http_api_responses_total", "class", "4xx"), ==, 13);
    g_assert_cmpint(metric(fx, "encore_http_api_responses_total", "class", "2xx"), ==, 0);
    g_assert_cmpint(metric(fx, "encore_http_responses_total", "code", "413"), ==, 3);
    g_assert_cmpint(metric(fx, "encore_http_responses_total", "code", "405"), ==, 4);
}

static void test_http_pipelined_body(fixture *fx, gconstpointer data)
{
    /* lws 4.1 cannot read the body of a request pipelined behind another one: the first is
     * answered, then the connection ends without the second reaching its handler (nor the loop
     * spinning). Requests without a body pipeline fine (see /ws/http-async). */
    fx_start_routes(fx, NULL);
    const char *reqs[] = {
        "GET /api/info HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
        "GET /api/info HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n\r\n0123456789",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(reqs); i++) {
        GByteArray *acc = http_exchange(fx, reqs[i], strlen(reqs[i]));
        http_response r = {0};
        g_assert_cmpuint(http_parse(acc->data, acc->len, false, &r), ==, acc->len);
        g_assert_cmpint(r.status, ==, 200);
        json_t *j = body_json(&r);
        g_assert_cmpstr(json_string_value(json_object_get(j, "path")), ==, "/api/info");
        json_decref(j);
        http_response_free(&r);
        g_byte_array_unref(acc);
        g_assert_cmpint(fx->http_handled, ==, (int)i + 1);
    }
    g_assert_cmpint(metric(fx, "encore_http_api_pipelined_closed_total", NULL, NULL), ==, 2);
    /* The server is fine. */
    http_response r = http_post(fx, "/api/echo", "abc", 3);
    g_assert_cmpint(r.status, ==, 200);
    assert_body(&r, "abc");
    http_response_free(&r);
}

static void test_http_expect(fixture *fx, gconstpointer data)
{
    fx_start_routes(fx, NULL);
    int fd = tcp_connect(fx);
    const char *head = "POST /api/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                       "Content-Length: 5\r\nConnection: close\r\n\r\n";
    tcp_write(fx, fd, head, strlen(head));
    GByteArray *acc = g_byte_array_new();
    const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
    while (acc->len < strlen(cont))
        g_assert_cmpint(tcp_read(fx, fd, acc), >, 0);
    g_assert_cmpint(memcmp(acc->data, cont, strlen(cont)), ==, 0);
    g_assert_cmpint(fx->http_handled, ==, 0);
    tcp_write(fx, fd, "hello", 5);
    ssize_t n;
    while ((n = tcp_read(fx, fd, acc)) > 0) {
    }
    close(fd);
    http_response r = {0};
    size_t skip = strlen(cont);
    g_assert_cmpuint(http_parse(acc->data + skip, acc->len - skip, false, &r), ==, acc->len - skip);
    g_assert_cmpint(r.status, ==, 200);
    assert_body(&r, "hello");
    http_response_free(&r);
    g_byte_array_unref(acc);
}

static gint64 cpu_us(void)
{
    struct rusage ru;
    g_assert_cmpint(getrusage(RUSAGE_SELF, &ru), ==, 0);
    return (gint64)ru.ru_utime.tv_sec * G_USEC_PER_SEC + ru.ru_utime.tv_usec +
           (gint64)ru.ru_stime.tv_sec * G_USEC_PER_SEC + ru.ru_stime.tv_usec;
}

static void test_http_async(fixture *fx, gconstpointer data)
{
    fx_start_routes(fx, NULL);

    /* Answered from an idle source after the handler returned. */
    http_response r = http_request(fx, "GET", "/api/later");
    g_assert_cmpint(r.status, ==, 202);
    assert_header(&r, "content-type", "text/plain");
    assert_header(&r, "cache-control", "no-store");
    assert_body(&r, "later:");
    http_response_free(&r);
    g_assert_null(encore_ws_http_lookup(fx->ws, fx->http_id));

    /* Keep-alive with pipelining: the second request waits for the first's late answer, and the
     * loop stays idle meanwhile, whether the waiting request had a body or not. */
    fx->later_ms = 300;
    const char *reqs[] = {
        "POST /api/later HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /api/later HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    };
    const char *want[] = {"later:abc", "later:"};
    for (size_t i = 0; i < G_N_ELEMENTS(reqs); i++) {
        int handled = fx->http_handled;
        int fd = tcp_connect(fx);
        tcp_write(fx, fd, reqs[i], strlen(reqs[i]));
        g_assert_true(pump_until(fx, &fx->http_handled, handled + 1));
        gint64 cpu0 = cpu_us(), t0 = g_get_monotonic_time();
        GByteArray *acc = g_byte_array_new();
        ssize_t n;
        while ((n = tcp_read(fx, fd, acc)) > 0) {
        }
        close(fd);
        gint64 cpu = cpu_us() - cpu0, wall = g_get_monotonic_time() - t0;
        g_assert_cmpint(wall, >=, 200000);
        if (cpu > wall / 2)
            g_error("request %zu: %" G_GINT64_FORMAT " us of CPU in %" G_GINT64_FORMAT
                    " us waiting",
                    i, cpu, wall);
        http_response r1 = {0}, r2 = {0};
        size_t used = http_parse(acc->data, acc->len, false, &r1);
        g_assert_cmpuint(used, >, 0);
        g_assert_cmpuint(http_parse(acc->data + used, acc->len - used, false, &r2), ==,
                         acc->len - used);
        g_assert_cmpint(r1.status, ==, 202);
        assert_body(&r1, want[i]);
        g_assert_cmpint(r2.status, ==, 200);
        assert_body(&r2, "ok");
        http_response_free(&r1);
        http_response_free(&r2);
        g_byte_array_unref(acc);
    }
    g_assert_cmpint(fx->http_handled, ==, 3);

    /* An answer given at once, with the next request already there. */
    const char *now = "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz"
                      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    GByteArray *acc = http_exchange(fx, now, strlen(now));
    http_response r1 = {0}, r2 = {0};
    size_t used = http_parse(acc->data, acc->len, false, &r1);
    g_assert_cmpuint(used, >, 0);
    g_assert_cmpuint(http_parse(acc->data + used, acc->len - used, false, &r2), ==,
                     acc->len - used);
    g_assert_cmpint(r1.status, ==, 200);
    assert_body(&r1, "xyz");
    g_assert_cmpint(r2.status, ==, 200);
    assert_body(&r2, "ok");
    http_response_free(&r1);
    http_response_free(&r2);
    g_byte_array_unref(acc);
    g_assert_cmpint(metric(fx, "encore_http_api_responses_total", "class", "2xx"), ==, 4);
}

/* Runs the loop until the request is no longer pending; false after TIMEOUT_MS. */
static bool pump_until_gone(fixture *fx, uint64_t id)
{
    for (int i = 0; i < TIMEOUT_MS / 10 && encore_ws_http_lookup(fx->ws, id); i++)
        pump_for(fx, 10);
    return encore_ws_http_lookup(fx->ws, id) == NULL;
}

static void test_http_gone(fixture *fx, gconstpointer data)
{
    fx_start_routes(fx, NULL);
    const char *reqs[] = {
        "GET /api/never HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /api/never HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody",
        "GET /api/never HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(reqs); i++) {
        int handled = fx->http_handled;
        int fd = tcp_connect(fx);
        tcp_write(fx, fd, reqs[i], strlen(reqs[i]));
        g_assert_true(pump_until(fx, &fx->http_handled, handled + 1));
        uint64_t id = fx->http_id;
        g_assert_nonnull(encore_ws_http_lookup(fx->ws, id));
        pump_for(fx, 50);
        g_assert_nonnull(encore_ws_http_lookup(fx->ws, id)); /* waiting, not gone */
        if (i == 2) {
            /* A reset rather than a plain close. */
            struct linger lg = {1, 0};
            g_assert_cmpint(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), ==, 0);
        }
        close(fd);
        g_assert_true(pump_until_gone(fx, id));
        g_assert_cmpint(metric(fx, "encore_http_api_abandoned_total", NULL, NULL), ==,
                        (int64_t)i + 1);
    }

    /* A client that leaves halfway through its body: never handled. */
    int fd = tcp_connect(fx);
    const char *part = "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc";
    tcp_write(fx, fd, part, strlen(part));
    pump_for(fx, 100);
    close(fd);
    for (int i = 0; i < 100 && metric(fx, "encore_http_api_abandoned_total", NULL, NULL) < 4; i++)
        pump_for(fx, 10);
    g_assert_cmpint(metric(fx, "encore_http_api_abandoned_total", NULL, NULL), ==, 4);
    g_assert_cmpint(fx->http_handled, ==, 3);
    g_assert_cmpint(encore_metrics_get(encore_metrics_gauge(fx->metrics, "encore_http_api_pending",
                                                            NULL, NULL, NULL)),
                    ==, 0);

    /* The server keeps serving. */
    http_response r = http_post(fx, "/api/echo", "x", 1);
    g_assert_cmpint(r.status, ==, 200);
    http_response_free(&r);

    /* A request still pending when the server stops is freed with it. */
    fd = tcp_connect(fx);
    tcp_write(fx, fd, reqs[0], strlen(reqs[0]));
    g_assert_true(pump_until(fx, &fx->http_handled, 5));
    g_assert_nonnull(encore_ws_http_lookup(fx->ws, fx->http_id));
    encore_ws_free(fx->ws);
    fx->ws = NULL;
    close(fd);
}

static void test_http_timeout(fixture *fx, gconstpointer data)
{
    encore_ws_config cfg = {.http_timeout_ms = 200};
    fx_start_routes(fx, &cfg);
    gint64 t0 = g_get_monotonic_time();
    http_response r = http_request(fx, "GET", "/api/never");
    gint64 waited_ms = (g_get_monotonic_time() - t0) / 1000;
    assert_api_error(&r, 503, "timeout");
    http_response_free(&r);
    g_assert_cmpint(waited_ms, >=, 180);
    g_assert_cmpint(waited_ms, <, 3000);
    g_assert_null(encore_ws_http_lookup(fx->ws, fx->http_id));
    g_assert_cmpint(metric(fx, "encore_http_api_timeouts_total", NULL, NULL), ==, 1);
    g_assert_cmpint(metric(fx, "encore_http_api_responses_total", "class", "5xx"), ==, 1);
}

static void test_new_errors(void)
{
    GMainContext *ctx = g_main_context_new();
    encore_metrics *m = encore_metrics_new();
    GError *error = NULL;
    encore_ws_config cfg = {.port = 0, .web_root = "/nonexistent/www", .metrics = m};
    g_assert_null(encore_ws_new(ctx, &cfg, &error));
    g_assert_error(error, ENCORE_WS_ERROR, ENCORE_WS_ERROR_CONFIG);
    g_clear_error(&error);

    cfg.web_root = NULL;
    cfg.listen_addr = "localhost";
    g_assert_null(encore_ws_new(ctx, &cfg, &error));
    g_assert_error(error, ENCORE_WS_ERROR, ENCORE_WS_ERROR_CONFIG);
    g_clear_error(&error);

    cfg.listen_addr = NULL;
    cfg.port = 70000;
    g_assert_null(encore_ws_new(ctx, &cfg, &error));
    g_assert_error(error, ENCORE_WS_ERROR, ENCORE_WS_ERROR_CONFIG);
    g_clear_error(&error);

    /* The port is taken. */
    cfg.port = 0;
    encore_ws *first = encore_ws_new(ctx, &cfg, &error);
    g_assert_no_error(error);
    cfg.port = encore_ws_port(first);
    g_assert_null(encore_ws_new(ctx, &cfg, &error));
    g_assert_error(error, ENCORE_WS_ERROR, ENCORE_WS_ERROR_LISTEN);
    g_clear_error(&error);
    encore_ws_free(first);
    encore_ws_free(NULL);

    for (int i = 0; i < 10; i++)
        g_main_context_iteration(ctx, FALSE);
    g_main_context_unref(ctx);
    encore_metrics_free(m);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, fixture, NULL, fx_setup, fn, fx_teardown)
    ADD("/ws/dispatch", test_dispatch);
    ADD("/ws/errors", test_errors);
    ADD("/ws/too-large", test_too_large);
    ADD("/ws/rate-limit", test_rate_limit);
    ADD("/ws/rate-refill", test_rate_refill);
    ADD("/ws/close-api", test_close_api);
    ADD("/ws/abrupt-close", test_abrupt_close);
    ADD("/ws/slow-reader", test_slow_reader);
    ADD("/ws/limits", test_limits);
    ADD("/ws/server-full", test_server_full);
    ADD("/ws/close-timeout", test_close_timeout);
    ADD("/ws/http", test_http);
    ADD("/ws/http-keepalive", test_http_keepalive);
    ADD("/ws/ipv6", test_ipv6);
    ADD("/ws/free-with-open-conns", test_free_with_open_conns);
    ADD("/ws/origin", test_origin);
    ADD("/ws/auth-gate", test_auth_gate);
    ADD("/ws/auth-timeout", test_auth_timeout);
    ADD("/ws/http-routes", test_http_routes);
    ADD("/ws/http-route-errors", test_http_route_errors);
    ADD("/ws/http-pipelined-body", test_http_pipelined_body);
    ADD("/ws/http-expect", test_http_expect);
    ADD("/ws/http-async", test_http_async);
    ADD("/ws/http-gone", test_http_gone);
    ADD("/ws/http-timeout", test_http_timeout);
#undef ADD
    g_test_add_func("/ws/new-errors", test_new_errors);
    return g_test_run();
}
