/* Unit tests for signaling/ws.c over real loopback sockets: a raw TCP client in the test's own
 * GMainContext does the HTTP upgrade by hand and writes masked frames, so each check sees exactly
 * what a browser would. Covers dispatch and replies, every error path, fragmentation and the size
 * limit, rate limiting and the 1008 close, slow readers, the per-address and total limits, HTTP
 * (health, metrics, static files, traversal) and on_close on clean, abrupt and server closes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
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
    {"fail", h_fail, NULL}, {"bye", h_bye, NULL},
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

/* Sends one request with "connection: close" and reads the response to EOF. */
static http_response http_request(fixture *fx, const char *method, const char *path)
{
    int fd = tcp_connect(fx);
    char *req = g_strdup_printf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                                method, path);
    tcp_write(fx, fd, req, strlen(req));
    g_free(req);
    GByteArray *acc = g_byte_array_new();
    ssize_t n;
    while ((n = tcp_read(fx, fd, acc)) > 0) {
    }
    g_assert_cmpint(n, ==, 0);
    close(fd);

    http_response r = {0};
    g_byte_array_append(acc, (const guint8 *)"", 1);
    const char *text = (const char *)acc->data;
    const char *end = strstr(text, "\r\n\r\n");
    g_assert_nonnull(end);
    g_assert_true(g_str_has_prefix(text, "HTTP/1.1 "));
    r.status = (int)g_ascii_strtoll(text + 9, NULL, 10);
    r.headers = g_ascii_strdown(text, end + 2 - text);
    r.body = g_byte_array_new();
    g_byte_array_append(r.body, (const guint8 *)end + 4,
                        (guint)(acc->len - 1 - (guint)(end + 4 - text)));
    g_byte_array_unref(acc);
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
                        "Sec-WebSocket-Version: 13\r\n%sOrigin: http://127.0.0.1\r\n\r\n",
                        path, proto);
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
#undef ADD
    g_test_add_func("/ws/new-errors", test_new_errors);
    return g_test_run();
}
