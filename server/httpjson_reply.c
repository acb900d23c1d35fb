/* HTTP JSON answers shared by every route (see httpjson.h). Main thread. */
#include "config.h"

#include "server/httpjson.h"

#include <stdarg.h>

void encore_httpjson_error(encore_ws_http *req, unsigned status, const char *code, const char *fmt,
                           ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    encore_ws_http_respond_json(req, status,
                                json_pack("{s:s, s:s}", "error", code, "message", msg));
    g_free(msg);
}

json_t *encore_httpjson_body(encore_ws_http *req, const encore_proto_field *schema)
{
    size_t len = 0;
    const uint8_t *body = encore_ws_http_body(req, &len);
    char why[200];
    const char *field = NULL;
    json_t *v = encore_httpjson_parse(body, len, schema, &field, why, sizeof why);
    if (!v)
        encore_httpjson_error(req, 400, "bad_request", "%s", why);
    return v;
}
