/* A blocking HTTP/1.1 client for the load tools' set-up steps (sign-up, signed webhooks): one
 * request per TCP connection (Connection: close), JSON bodies, a timeout on the whole exchange.
 * Any thread; it never runs on a loop that carries measured traffic and never logs. */
#ifndef ENCORE_LOADGEN_HTTP_H
#define ENCORE_LOADGEN_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "tests/load/ws.h"

/* Longest access token we accept from the server (docs/accounts.md: at most 4096 bytes). */
#define LG_TOKEN_MAX 4096

/* An HTTP answer: status and body (NUL-terminated, owned: free with lg_http_response_clear). */
typedef struct {
    int status;
    char *body;
    size_t body_len;
} lg_http_response;

/* Sends `method path` with the given body (may be NULL for none) to the host and port of url,
 * from bind_ip (NULL: any local address). extra_headers is NULL or complete header lines, each
 * ending in "\r\n". A JSON body gets Content-Type: application/json. The whole exchange must end
 * within timeout_ms. Returns 0 and fills *resp (any status, 1xx-5xx), or -1 with a reason in
 * why[why_len] (connect or write failure, timeout, a response that is not HTTP/1.x or larger
 * than 1 MiB, a truncated body). */
int lg_http_request(const lg_url *url, const char *method, const char *path, const char *bind_ip,
                    const char *extra_headers, const char *body, size_t body_len, int timeout_ms,
                    lg_http_response *resp, char *why, size_t why_len);

/* Frees the body; resp may be reused. */
void lg_http_response_clear(lg_http_response *resp);

/* A signed-up account. */
typedef struct {
    int64_t user_id;
    char token[LG_TOKEN_MAX + 1];
} lg_account;

/* POST /api/signup {"name","password","birth_year":1990,"role"} (role "listener" or "singer")
 * and reads {"user":{"id"},"token"} from the 201 answer. Returns 0, or -1 with why filled (the
 * request failed, another status (its error code is quoted), or an answer without id or token). */
int lg_http_signup(const lg_url *url, const char *bind_ip, const char *name, const char *password,
                   const char *role, lg_account *out, char *why, size_t why_len);

#endif
