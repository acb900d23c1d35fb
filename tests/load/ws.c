/* A small websocket client for the load generator (see ws.h): non-blocking connect, HTTP upgrade,
 * masked text frames out, whole messages in; the connections of one thread share one epoll set,
 * which is one GSource on that thread's GMainContext. Runs only on that thread; it must not block
 * and must not call back from its public calls. */
#include "config.h"

#include "tests/load/ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_MESSAGE (1024 * 1024) /* a longer message is a protocol error */
#define WS_MAX_OUT (4 * 1024 * 1024)
#define WS_MAX_HEADERS 16384

typedef enum {
    WS_CONNECTING, /* TCP connect in progress */
    WS_HANDSHAKE,  /* request sent, reading the 101 response */
    WS_OPEN,
    WS_CLOSED,
} ws_state;

#define WS_EVENTS_BATCH 128

struct lg_ws_loop {
    GSource base;
    int epfd;
    gpointer tag;    /* the epoll fd in the source */
    int dispatching; /* > 0 while events are handled: frees are deferred to its end */
    GPtrArray *dead; /* connections freed during the dispatch */
};

struct lg_ws {
    lg_ws_loop *loop;
    lg_ws_callbacks cb;
    void *user_data;
    int fd;
    ws_state state;
    bool watched;    /* fd is in the epoll set */
    uint32_t events; /* the EPOLL* mask registered */

    char key[32];      /* Sec-WebSocket-Key we sent (base64 of 16 bytes) */
    char protocol[64]; /* the subprotocol we asked for ("" for none) */
    GByteArray *out;   /* bytes not yet written */
    GByteArray *in;    /* bytes read, not yet parsed */
    GByteArray *msg;   /* a fragmented message being assembled */
    bool in_fragment;  /* a text/binary frame without FIN was seen */
    uint32_t rng;      /* masking keys (xorshift; masking serves proxies, not secrecy) */
    bool freed;        /* lg_ws_free was called during a dispatch (freed at its end) */
};

/* ---- URL --------------------------------------------------------------------------------------
 */

int lg_url_parse(const char *url, lg_url *out)
{
    memset(out, 0, sizeof *out);
    if (!g_str_has_prefix(url, "ws://"))
        return -1;
    const char *p = url + 5;
    const char *host_end;
    const char *host = p;
    size_t host_len;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (!host_end)
            return -1;
        host = p + 1;
        host_len = (size_t)(host_end - host);
        p = host_end + 1;
    } else {
        host_len = strcspn(p, ":/");
        p += host_len;
    }
    if (host_len == 0 || host_len >= sizeof out->host)
        return -1;
    memcpy(out->host, host, host_len);
    out->port = 80;
    if (*p == ':') {
        char *end = NULL;
        unsigned long port = strtoul(p + 1, &end, 10);
        if (end == p + 1 || port == 0 || port > 65535)
            return -1;
        out->port = (uint16_t)port;
        p = end;
    }
    if (*p && *p != '/')
        return -1;
    g_strlcpy(out->path, *p ? p : "/", sizeof out->path);
    if (strlen(p) >= sizeof out->path)
        return -1;

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(out->host, NULL, &hints, &res) != 0 || !res)
        return -1;
    int rc = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        const void *a = NULL;
        if (ai->ai_family == AF_INET)
            a = &((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        else if (ai->ai_family == AF_INET6)
            a = &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if (a && inet_ntop(ai->ai_family, a, out->addr, sizeof out->addr)) {
            rc = 0;
            break;
        }
    }
    freeaddrinfo(res);
    return rc;
}

/* ---- plumbing ---------------------------------------------------------------------------------
 */

static void set_events(lg_ws *ws, uint32_t ev)
{
    if (ws->events != ev && ws->watched) {
        struct epoll_event e = {.events = ev, .data.ptr = ws};
        if (epoll_ctl(ws->loop->epfd, EPOLL_CTL_MOD, ws->fd, &e) == 0)
            ws->events = ev;
    }
}

/* Takes the fd out of the epoll set and closes it. */
static void close_fd(lg_ws *ws)
{
    if (ws->watched) {
        epoll_ctl(ws->loop->epfd, EPOLL_CTL_DEL, ws->fd, NULL);
        ws->watched = false;
    }
    if (ws->fd >= 0) {
        close(ws->fd);
        ws->fd = -1;
    }
}

static void really_free(lg_ws *ws)
{
    close_fd(ws);
    g_byte_array_unref(ws->out);
    g_byte_array_unref(ws->in);
    g_byte_array_unref(ws->msg);
    g_free(ws);
}

/* Moves to CLOSED and reports why (once). The caller returns right after. */
static void fail(lg_ws *ws, const char *why)
{
    if (ws->state == WS_CLOSED)
        return;
    ws->state = WS_CLOSED;
    close_fd(ws);
    if (ws->cb.on_closed)
        ws->cb.on_closed(ws, why, ws->user_data);
}

/* Writes what it can of the output queue. Returns 0, or -1 on a socket error. */
static int flush_out(lg_ws *ws)
{
    while (ws->out->len > 0) {
        ssize_t n = send(ws->fd, ws->out->data, ws->out->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        g_byte_array_remove_range(ws->out, 0, (guint)n);
    }
    uint32_t ev = EPOLLIN | EPOLLRDHUP;
    if (ws->out->len > 0 || ws->state == WS_CONNECTING)
        ev |= EPOLLOUT;
    set_events(ws, ev);
    return 0;
}

static uint32_t next_rand(lg_ws *ws)
{
    uint32_t x = ws->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    ws->rng = x;
    return x;
}

/* Appends one masked frame with the given opcode to the output queue. */
static void queue_frame(lg_ws *ws, uint8_t opcode, const uint8_t *data, size_t len)
{
    uint8_t hdr[14];
    size_t h = 0;
    hdr[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        hdr[h++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t)(len >> 8);
        hdr[h++] = (uint8_t)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint32_t m = next_rand(ws);
    uint8_t mask[4] = {(uint8_t)(m >> 24), (uint8_t)(m >> 16), (uint8_t)(m >> 8), (uint8_t)m};
    memcpy(hdr + h, mask, 4);
    h += 4;
    guint start = ws->out->len;
    g_byte_array_append(ws->out, hdr, (guint)h);
    g_byte_array_set_size(ws->out, start + (guint)h + (guint)len);
    uint8_t *dst = ws->out->data + start + h;
    for (size_t i = 0; i < len; i++)
        dst[i] = data[i] ^ mask[i & 3];
}

/* ---- handshake --------------------------------------------------------------------------------
 */

static void send_request(lg_ws *ws, const lg_url *url)
{
    uint8_t raw[16];
    for (int i = 0; i < 16; i += 4) {
        uint32_t r = g_random_int();
        memcpy(raw + i, &r, 4);
    }
    gchar *b64 = g_base64_encode(raw, sizeof raw);
    g_strlcpy(ws->key, b64, sizeof ws->key);
    g_free(b64);
    char req[1200];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s:%u\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "%s%s%s"
                     "\r\n",
                     url->path, url->host, url->port, ws->key,
                     ws->protocol[0] ? "Sec-WebSocket-Protocol: " : "", ws->protocol,
                     ws->protocol[0] ? "\r\n" : "");
    g_byte_array_append(ws->out, (const guint8 *)req, (guint)MIN((size_t)n, sizeof req - 1));
}

/* Finds header name (case-insensitive) in the response head; copies its trimmed value. */
static bool find_header(const char *head, const char *name, char *val, size_t cap)
{
    size_t nlen = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (g_ascii_strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t len = strcspn(v, "\r\n");
            while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
            if (len >= cap)
                return false;
            memcpy(val, v, len);
            val[len] = '\0';
            return true;
        }
    }
    return false;
}

/* Parses the 101 response once it is complete. Returns 1 when open, 0 when more bytes are
 * needed, or -1 (after fail) on a bad response. */
static int parse_response(lg_ws *ws)
{
    const char *data = (const char *)ws->in->data;
    const char *end = g_strstr_len(data, ws->in->len, "\r\n\r\n");
    if (!end) {
        if (ws->in->len > WS_MAX_HEADERS) {
            fail(ws, "handshake response too long");
            return -1;
        }
        return 0;
    }
    size_t head_len = (size_t)(end - data) + 4;
    char *head = g_strndup(data, head_len);
    int rc = -1;
    char val[256];
    if (!g_str_has_prefix(head, "HTTP/1.1 101")) {
        fail(ws,
             strstr(head, " 503") == head + 8 ? "handshake refused (503)" : "handshake refused");
        goto out;
    }
    gchar *concat = g_strconcat(ws->key, WS_GUID, NULL);
    guint8 digest[20];
    gsize dlen = sizeof digest;
    GChecksum *sha = g_checksum_new(G_CHECKSUM_SHA1);
    g_checksum_update(sha, (const guchar *)concat, (gssize)strlen(concat));
    g_checksum_get_digest(sha, digest, &dlen);
    g_checksum_free(sha);
    g_free(concat);
    gchar *expect = g_base64_encode(digest, dlen);
    bool ok =
        find_header(head, "Sec-WebSocket-Accept", val, sizeof val) && strcmp(val, expect) == 0;
    g_free(expect);
    if (!ok) {
        fail(ws, "bad Sec-WebSocket-Accept");
        goto out;
    }
    if (ws->protocol[0] && (!find_header(head, "Sec-WebSocket-Protocol", val, sizeof val) ||
                            g_ascii_strcasecmp(val, ws->protocol) != 0)) {
        fail(ws, "subprotocol not accepted");
        goto out;
    }
    g_byte_array_remove_range(ws->in, 0, (guint)head_len);
    ws->state = WS_OPEN;
    rc = 1;
out:
    g_free(head);
    return rc;
}

/* ---- frames -----------------------------------------------------------------------------------
 */

/* Handles every complete frame in the input buffer. Returns after a callback freed or closed ws. */
static void parse_frames(lg_ws *ws)
{
    size_t off = 0;
    while (ws->state == WS_OPEN && !ws->freed) {
        const uint8_t *p = ws->in->data + off;
        size_t avail = ws->in->len - off;
        if (avail < 2)
            break;
        bool fin = p[0] & 0x80;
        uint8_t opcode = p[0] & 0x0f;
        bool masked = p[1] & 0x80;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (avail < 4)
                break;
            len = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            h = 10;
        }
        if (len > WS_MAX_MESSAGE) {
            fail(ws, "message too large");
            return;
        }
        size_t mask_at = h;
        if (masked)
            h += 4;
        if (avail < h + len)
            break;
        uint8_t *payload = (uint8_t *)p + h;
        if (masked) {
            for (uint64_t i = 0; i < len; i++)
                payload[i] ^= p[mask_at + (i & 3)];
        }
        off += h + (size_t)len;

        if (opcode == 0x8) { /* close: answer it and stop */
            queue_frame(ws, 0x8, payload, len >= 2 ? 2 : 0);
            (void)flush_out(ws);
            fail(ws, "closed by server");
            return;
        }
        if (opcode == 0x9) { /* ping */
            queue_frame(ws, 0xA, payload, (size_t)len);
            continue;
        }
        if (opcode == 0xA)
            continue;
        if (opcode == 0x1 || opcode == 0x2) {
            if (ws->in_fragment) {
                fail(ws, "new message inside a fragmented one");
                return;
            }
            g_byte_array_set_size(ws->msg, 0);
            ws->in_fragment = !fin;
        } else if (opcode == 0x0) {
            if (!ws->in_fragment) {
                fail(ws, "continuation without a message");
                return;
            }
            ws->in_fragment = !fin;
        } else {
            fail(ws, "unknown opcode");
            return;
        }
        if (ws->msg->len + len > WS_MAX_MESSAGE) {
            fail(ws, "message too large");
            return;
        }
        g_byte_array_append(ws->msg, payload, (guint)len);
        if (!fin)
            continue;
        guint8 nul = 0;
        g_byte_array_append(ws->msg, &nul, 1);
        if (ws->cb.on_message)
            ws->cb.on_message(ws, (const char *)ws->msg->data, ws->msg->len - 1, ws->user_data);
        if (!ws->freed && ws->state == WS_OPEN)
            g_byte_array_set_size(ws->msg, 0);
    }
    if (!ws->freed && ws->state == WS_OPEN && off > 0)
        g_byte_array_remove_range(ws->in, 0, (guint)off);
}

/* ---- the socket source ------------------------------------------------------------------------
 */

static void on_writable(lg_ws *ws)
{
    if (ws->state == WS_CONNECTING) {
        int err = 0;
        socklen_t elen = sizeof err;
        if (getsockopt(ws->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
            fail(ws, err == ECONNREFUSED ? "connection refused" : "connect failed");
            return;
        }
        ws->state = WS_HANDSHAKE;
    }
    if (flush_out(ws) != 0)
        fail(ws, "write failed");
}

static void on_readable(lg_ws *ws)
{
    for (int round = 0; round < 16 && ws->state != WS_CLOSED && !ws->freed; round++) {
        guint old = ws->in->len;
        g_byte_array_set_size(ws->in, old + 16384);
        ssize_t n = recv(ws->fd, ws->in->data + old, 16384, MSG_DONTWAIT);
        g_byte_array_set_size(ws->in, old + (guint)(n > 0 ? n : 0));
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fail(ws, n == 0 ? "connection closed" : "read failed");
            return;
        }
        if (ws->state == WS_HANDSHAKE) {
            int rc = parse_response(ws);
            if (rc <= 0)
                continue;
            if (ws->cb.on_open)
                ws->cb.on_open(ws, ws->user_data);
            if (ws->freed || ws->state != WS_OPEN)
                return;
        }
        if (ws->state == WS_OPEN)
            parse_frames(ws);
        if (ws->freed || ws->state != WS_OPEN)
            return;
        if ((size_t)n < 16384)
            return;
    }
}

static void handle_events(lg_ws *ws, uint32_t rev)
{
    if (ws->state == WS_CONNECTING && (rev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        on_writable(ws);
    if (!ws->freed && ws->state != WS_CLOSED &&
        (rev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
        on_readable(ws);
    if (!ws->freed && ws->state != WS_CLOSED && ws->state != WS_CONNECTING &&
        (ws->out->len > 0 || (rev & EPOLLOUT))) {
        if (flush_out(ws) != 0)
            fail(ws, "write failed");
    }
}

static gboolean loop_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
    lg_ws_loop *loop = (lg_ws_loop *)source;
    struct epoll_event ev[WS_EVENTS_BATCH];
    int n = epoll_wait(loop->epfd, ev, WS_EVENTS_BATCH, 0);
    loop->dispatching++;
    for (int i = 0; i < n; i++) {
        lg_ws *ws = ev[i].data.ptr;
        if (!ws->freed)
            handle_events(ws, ev[i].events);
    }
    loop->dispatching--;
    if (loop->dispatching == 0 && loop->dead->len > 0) {
        for (guint i = 0; i < loop->dead->len; i++)
            really_free(loop->dead->pdata[i]);
        g_ptr_array_set_size(loop->dead, 0);
    }
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs loop_funcs = {
    .dispatch = loop_dispatch,
};

lg_ws_loop *lg_ws_loop_new(GMainContext *ctx)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return NULL;
    lg_ws_loop *loop = (lg_ws_loop *)g_source_new(&loop_funcs, sizeof(lg_ws_loop));
    loop->epfd = epfd;
    loop->dead = g_ptr_array_new();
    loop->tag = g_source_add_unix_fd(&loop->base, epfd, G_IO_IN);
    g_source_attach(&loop->base, ctx);
    return loop;
}

void lg_ws_loop_free(lg_ws_loop *loop)
{
    if (!loop)
        return;
    for (guint i = 0; i < loop->dead->len; i++)
        really_free(loop->dead->pdata[i]);
    g_ptr_array_free(loop->dead, TRUE);
    close(loop->epfd);
    g_source_destroy(&loop->base);
    g_source_unref(&loop->base);
}

/* ---- public -----------------------------------------------------------------------------------
 */

lg_ws *lg_ws_new(lg_ws_loop *loop, const lg_url *url, const char *subprotocol, const char *bind_ip,
                 const lg_ws_callbacks *cb, void *user_data)
{
    struct sockaddr_storage sa;
    socklen_t sa_len;
    memset(&sa, 0, sizeof sa);
    if (strchr(url->addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(url->port);
        if (inet_pton(AF_INET6, url->addr, &s6->sin6_addr) != 1)
            goto out_inval;
        sa_len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(url->port);
        if (inet_pton(AF_INET, url->addr, &s4->sin_addr) != 1)
            goto out_inval;
        sa_len = sizeof *s4;
    }
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind_ip && sa.ss_family == AF_INET) {
        struct sockaddr_in local = {.sin_family = AF_INET};
        if (inet_pton(AF_INET, bind_ip, &local.sin_addr) != 1) {
            close(fd);
            goto out_inval;
        }
#ifdef IP_BIND_ADDRESS_NO_PORT
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
        if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
            int e = errno;
            close(fd);
            errno = e;
            return NULL;
        }
    }
    if (connect(fd, (struct sockaddr *)&sa, sa_len) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }

    lg_ws *ws = g_new0(lg_ws, 1);
    ws->loop = loop;
    ws->cb = *cb;
    ws->user_data = user_data;
    ws->fd = fd;
    ws->state = WS_CONNECTING;
    ws->out = g_byte_array_new();
    ws->in = g_byte_array_new();
    ws->msg = g_byte_array_new();
    ws->rng = g_random_int() | 1;
    g_strlcpy(ws->protocol, subprotocol ? subprotocol : "", sizeof ws->protocol);
    send_request(ws, url);
    ws->events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    struct epoll_event e = {.events = ws->events, .data.ptr = ws};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
        int err = errno;
        really_free(ws);
        errno = err;
        return NULL;
    }
    ws->watched = true;
    return ws;

out_inval:
    errno = EINVAL;
    return NULL;
}

int lg_ws_send_text(lg_ws *ws, const char *text, size_t len)
{
    if (ws->state != WS_OPEN || ws->freed || ws->out->len + len > WS_MAX_OUT)
        return -1;
    queue_frame(ws, 0x1, (const uint8_t *)text, len);
    /* Written now so that requests leave at once; a write error surfaces as on_closed when the
     * socket is next polled. */
    (void)flush_out(ws);
    return 0;
}

bool lg_ws_is_open(const lg_ws *ws)
{
    return ws->state == WS_OPEN && !ws->freed;
}

void lg_ws_free(lg_ws *ws)
{
    if (!ws || ws->freed)
        return;
    if (ws->state == WS_OPEN) {
        static const uint8_t bye[2] = {0x03, 0xe8}; /* 1000: normal closure */
        queue_frame(ws, 0x8, bye, sizeof bye);
        (void)send(ws->fd, ws->out->data, ws->out->len, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    ws->state = WS_CLOSED;
    ws->freed = true;
    close_fd(ws);
    if (ws->loop->dispatching > 0)
        g_ptr_array_add(ws->loop->dead, ws);
    else
        really_free(ws);
}
