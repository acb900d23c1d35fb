/* HTTP JSON bodies (see httpjson.h): the pure parser, fuzzed by tests/fuzz/fuzz-httpjson.c. */
#include "config.h"

#include "server/httpjson.h"

#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 8

/* Nesting depth of raw JSON text, skipping strings; > MAX_DEPTH stops early. */
static int depth_of(const uint8_t *s, size_t len)
{
    int depth = 0, worst = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > worst && (worst = depth) > MAX_DEPTH)
                return worst;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return worst;
}

json_t *encore_httpjson_parse(const uint8_t *body, size_t len, const encore_proto_field *schema,
                              const char **field, char *why, size_t why_len)
{
    if (field)
        *field = NULL;
    if (why && why_len)
        why[0] = '\0';
    if (!body || len == 0) {
        if (why)
            snprintf(why, why_len, "the body must be a JSON object");
        return NULL;
    }
    if (depth_of(body, len) > MAX_DEPTH) {
        if (why)
            snprintf(why, why_len, "the body nests deeper than %d levels", MAX_DEPTH);
        return NULL;
    }
    json_error_t jerr;
    json_t *v = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v || !json_is_object(v)) {
        if (why)
            snprintf(why, why_len, "the body must be one JSON object (UTF-8, no duplicate keys)");
        json_decref(v);
        return NULL;
    }
    if (encore_proto_validate(v, schema, field, why, why_len) != 0) {
        json_decref(v);
        return NULL;
    }
    return v;
}
