/* A blocking HTTP/1.1 client (see http.h) for the load tools' set-up: sign-up and webhooks.
 * Runs on whichever thread calls it, blocks it for at most the given timeout; it keeps no state
 * between calls and must not be used on a loop that carries measured traffic. */
#include "config.h"

#include "tests/load/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#define HTTP_MAX_RESPONSE (1024 * 1024)

static int64_t now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

/* Waits until fd is ready for events or the deadline passes. Returns 1 ready, 0 timeout, -1. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)MIN(left, (int64_t)1000));
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* A non-blocking socket connected to url (from bind_ip), or -1 with why filled. */
static int connect_to(const lg_url *url, const char *bind_ip, int64_t deadline_ms, char *why,
                      size_t why_len)
{
    struct sockaddr_storage sa;
    socklen_t sa_len;
    memset(&sa, 0, sizeof sa);
    if (strchr(url->addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(url->port);
        if (inet_pton(AF_INET6, url->addr, &s6->sin6_addr) != 1)
            goto bad_addr;
        sa_len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(url->port);
        if (inet_pton(AF_INET, url->addr, &s4->sin_addr) != 1)
            goto bad_addr;
        sa_len = sizeof *s4;
    }
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, why_len, "socket: %s", g_strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind_ip && sa.ss_family == AF_INET) {
        struct sockaddr_in local = {.sin_family = AF_INET};
        if (inet_pton(AF_INET, bind_ip, &local.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
            snprintf(why, why_len, "bind %s: %s", bind_ip, g_strerror(errno));
            goto out_close;
        }
    }
    if (connect(fd, (struct sockaddr *)&sa, sa_len) != 0) {
        if (errno != EINPROGRESS) {
            snprintf(why, why_len, "connect: %s", g_strerror(errno));
            goto out_close;
        }
        int err = 0;
        socklen_t elen = sizeof err;
        if (wait_fd(fd, POLLOUT, deadline_ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
            snprintf(why, why_len, "connect: %s", err ? g_strerror(err) : "timed out");
            goto out_close;
        }
    }
    return fd;

out_close:
    close(fd);
    return -1;
bad_addr:
    snprintf(why, why_len, "bad address %s", url->addr);
    return -1;
}

static int send_all(int fd, const char *data, size_t len, int64_t deadline_ms)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (wait_fd(fd, POLLOUT, deadline_ms) != 1)
                    return -1;
                continue;
            }
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Parses the head in buf[0..head_len): status and Content-Length (-1 when absent). */
static int parse_head(const char *buf, size_t head_len, int *status, long *content_length)
{
    if (head_len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return -1;
    char code[4] = {buf[9], buf[10], buf[11], 0};
    if (!g_ascii_isdigit(code[0]) || !g_ascii_isdigit(code[1]) || !g_ascii_isdigit(code[2]))
        return -1;
    *status = (int)strtol(code, NULL, 10);
    *content_length = -1;
    char *head = g_strndup(buf, head_len);
    for (char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (g_ascii_strncasecmp(line, "content-length:", 15) == 0) {
            char *end = NULL;
            long v = strtol(line + 15, &end, 10);
            if (end != line + 15 && v >= 0)
                *content_length = v;
        }
    }
    g_free(head);
    return 0;
}

int lg_http_request(const lg_url *url, const char *method, const char *path, const char *bind_ip,
                    const char *extra_headers, const char *body, size_t body_len, int timeout_ms,
                    lg_http_response *resp, char *why, size_t why_len)
{
    memset(resp, 0, sizeof *resp);
    int64_t deadline = now_ms() + timeout_ms;
    int fd = connect_to(url, bind_ip, deadline, why, why_len);
    if (fd < 0)
        return -1;
    int rc = -1;
    GString *req = g_string_new(NULL);
    g_string_append_printf(req,
                           "%s %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n"
                           "Accept: application/json\r\n",
                           method, path, url->host, url->port);
    if (body)
        g_string_append_printf(req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                               body_len);
    if (extra_headers)
        g_string_append(req, extra_headers);
    g_string_append(req, "\r\n");
    if (body)
        g_string_append_len(req, body, (gssize)body_len);
    GByteArray *in = g_byte_array_new();
    if (send_all(fd, req->str, req->len, deadline) != 0) {
        snprintf(why, why_len, "%s %s: cannot send the request", method, path);
        goto out;
    }
    /* Read until the body is complete (Content-Length) or the server closes. */
    size_t head_len = 0;
    long content_length = -1;
    int status = 0;
    for (;;) {
        if (head_len == 0 && in->len > 0) {
            const char *end = g_strstr_len((const char *)in->data, in->len, "\r\n\r\n");
            if (end) {
                head_len = (size_t)(end - (const char *)in->data) + 4;
                if (parse_head((const char *)in->data, head_len, &status, &content_length) != 0) {
                    snprintf(why, why_len, "%s %s: not an HTTP/1.x answer", method, path);
                    goto out;
                }
            }
        }
        if (head_len && content_length >= 0 && in->len >= head_len + (size_t)content_length)
            break;
        if (in->len > HTTP_MAX_RESPONSE) {
            snprintf(why, why_len, "%s %s: answer larger than 1 MiB", method, path);
            goto out;
        }
        int w = wait_fd(fd, POLLIN, deadline);
        if (w != 1) {
            snprintf(why, why_len, "%s %s: %s", method, path,
                     w == 0 ? "no complete answer in time" : "poll failed");
            goto out;
        }
        guint old = in->len;
        g_byte_array_set_size(in, old + 16384);
        ssize_t n = recv(fd, in->data + old, 16384, 0);
        g_byte_array_set_size(in, old + (guint)(n > 0 ? n : 0));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            snprintf(why, why_len, "%s %s: read: %s", method, path, g_strerror(errno));
            goto out;
        }
        if (n == 0) {
            if (!head_len || content_length >= 0) {
                snprintf(why, why_len, "%s %s: connection closed before the answer ended", method,
                         path);
                goto out;
            }
            break; /* no Content-Length: the body ends at the close */
        }
    }
    size_t blen = content_length >= 0 ? (size_t)content_length : in->len - head_len;
    resp->status = status;
    resp->body = g_strndup((const char *)in->data + head_len, blen);
    resp->body_len = blen;
    rc = 0;
out:
    g_byte_array_unref(in);
    g_string_free(req, TRUE);
    close(fd);
    return rc;
}

void lg_http_response_clear(lg_http_response *resp)
{
    g_free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

int lg_http_signup(const lg_url *url, const char *bind_ip, const char *name, const char *password,
                   const char *role, lg_account *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof *out);
    json_t *req = json_pack("{s:s, s:s, s:i, s:s}", "name", name, "password", password,
                            "birth_year", 1990, "role", role);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    lg_http_response resp;
    int rc = lg_http_request(url, "POST", "/api/signup", bind_ip, NULL, text, strlen(text), 30000,
                             &resp, why, why_len);
    free(text);
    if (rc != 0)
        return -1;
    rc = -1;
    json_t *answer = json_loadb(resp.body, resp.body_len, 0, NULL);
    if (resp.status != 201) {
        snprintf(why, why_len, "sign-up of %s answered %d %s", name, resp.status,
                 json_string_value(json_object_get(answer, "error")) ?: "");
        goto out;
    }
    json_t *id = json_object_get(json_object_get(answer, "user"), "id");
    const char *token = json_string_value(json_object_get(answer, "token"));
    if (!json_is_integer(id) || json_integer_value(id) < 1 || !token ||
        strlen(token) > LG_TOKEN_MAX) {
        snprintf(why, why_len, "sign-up of %s: no user id or token in the answer", name);
        goto out;
    }
    out->user_id = (int64_t)json_integer_value(id);
    g_strlcpy(out->token, token, sizeof out->token);
    rc = 0;
out:
    json_decref(answer);
    lg_http_response_clear(&resp);
    return rc;
}
