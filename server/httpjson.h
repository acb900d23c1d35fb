/* JSON bodies of the HTTP API: parsing a request body against a field schema and the error
 * answers every HTTP route shares. Pure parsing plus thin answer helpers; main thread. */
#ifndef ENCORE_SERVER_HTTPJSON_H
#define ENCORE_SERVER_HTTPJSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "signaling/proto.h"
#include "signaling/ws.h"

/* Parses body[0..len) as one JSON object (UTF-8, no duplicate keys, no NUL, nesting at most 8)
 * and checks it against schema. Returns a new reference, or NULL with why[0..why_len) saying
 * what is wrong (and *field the failing field or NULL). Pure; any thread. */
json_t *encore_httpjson_parse(const uint8_t *body, size_t len, const encore_proto_field *schema,
                              const char **field, char *why, size_t why_len);

/* Answers {"error":code,"message":...} with status. */
void encore_httpjson_error(encore_ws_http *req, unsigned status, const char *code, const char *fmt,
                           ...) G_GNUC_PRINTF(4, 5);

/* Parses the request body with schema, answering 400 bad_request itself on failure. */
json_t *encore_httpjson_body(encore_ws_http *req, const encore_proto_field *schema);

#endif
