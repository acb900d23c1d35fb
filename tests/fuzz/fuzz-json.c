/* libFuzzer target for signaling/proto.c: arbitrary bytes through encore_proto_decode() with the
 * protocol's limits; what decodes is validated against a schema using every field kind and flag,
 * and answered with the reply builders, whose output must be valid JSON again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "signaling/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const encore_proto_field schema[] = {
    {"room", ENCORE_PROTO_STRING, true, 1, 64, ENCORE_PROTO_IDENT},
    {"name", ENCORE_PROTO_STRING, false, 1, 64, ENCORE_PROTO_NO_CONTROL},
    {"sdp", ENCORE_PROTO_STRING, false, 1, 0, 0},
    {"sdpMid", ENCORE_PROTO_STRING, false, 0, 32, ENCORE_PROTO_NULLABLE},
    {"sdpMLineIndex", ENCORE_PROTO_INT, false, 0, 255, ENCORE_PROTO_NULLABLE},
    {"amount", ENCORE_PROTO_INT, false, 0, 0, 0},
    {"flag", ENCORE_PROTO_BOOL, false, 0, 0, 0},
    {"meta", ENCORE_PROTO_OBJECT, false, 0, 8, 0},
    {"list", ENCORE_PROTO_ARRAY, false, 1, 0, 0},
    {NULL, 0, false, 0, 0, 0},
};

static void check_dump(json_t *reply)
{
    if (!reply)
        abort();
    char *s = json_dumps(reply, ENCORE_PROTO_DUMP_FLAGS);
    if (!s)
        abort();
    json_error_t jerr;
    json_t *back = json_loads(s, 0, &jerr);
    if (!back)
        abort();
    json_decref(back);
    free(s);
    json_decref(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *msg = NULL, *id = NULL;
    const char *type = NULL;
    encore_proto_err err;
    int rc = encore_proto_decode((const char *)data, size, NULL, &msg, &type, &id, &err);
    if (rc != 0) {
        if (msg || type || id || !err.code || strlen(err.message) >= sizeof err.message)
            abort();
        check_dump(encore_proto_build_error(NULL, err.code, err.message, NULL));
        return 0;
    }
    if (!msg || !type || !*type)
        abort();
    const char *field = NULL;
    char why[256];
    if (encore_proto_validate(msg, schema, &field, why, sizeof why) == 0) {
        check_dump(encore_proto_build_result(id, json_deep_copy(msg)));
    } else {
        if (!field)
            abort();
        check_dump(encore_proto_build_error(id, ENCORE_PROTO_CODE_INVALID_FIELD, why, field));
    }
    /* A tiny reason buffer must not overflow either. */
    char small[4];
    (void)encore_proto_validate(msg, schema, NULL, small, sizeof small);
    json_decref(msg);
    return 0;
}
