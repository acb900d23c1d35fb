/* libFuzzer target for server/httpjson.c: arbitrary bytes as an HTTP API request body, parsed
 * against the sign-up schema (strings, integers, an optional field); what parses must satisfy the
 * schema and serialize again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/httpjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const encore_proto_field schema[] = {
    {"name", ENCORE_PROTO_STRING, true, 1, 64, 0},
    {"password", ENCORE_PROTO_STRING, false, 1, 1024, 0},
    {"birth_year", ENCORE_PROTO_INT, false, 0, 99999, 0},
    {"role", ENCORE_PROTO_STRING, false, 1, 16, ENCORE_PROTO_IDENT},
    {NULL, 0, false, 0, 0, 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[200];
    const char *field = NULL;
    json_t *v = encore_httpjson_parse(data, size, schema, &field, why, sizeof why);
    if (!v) {
        if (strnlen(why, sizeof why) == sizeof why)
            abort();
        return 0;
    }
    if (!json_is_object(v) || !json_is_string(json_object_get(v, "name")))
        abort();
    json_int_t by = json_integer_value(json_object_get(v, "birth_year"));
    if (by < 0 || by > 99999)
        abort();
    char *s = json_dumps(v, JSON_COMPACT);
    if (!s)
        abort();
    free(s);
    json_decref(v);
    return 0;
}
