/* The signaling JSON codec (docs/protocol.md): decoding one websocket frame into a request with
 * size, depth, UTF-8 and envelope checks, a field-schema validator, and builders for replies. Pure
 * functions callable from any thread; they keep no state and never log, so they can be fuzzed. */
#ifndef ENCORE_SIGNALING_PROTO_H
#define ENCORE_SIGNALING_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>
#include <jansson.h>

/* Stable error codes of docs/protocol.md that this layer produces. Other layers use the same
 * strings for theirs ("not_in_room", ...). */
#define ENCORE_PROTO_CODE_PARSE_ERROR "parse_error"
#define ENCORE_PROTO_CODE_BAD_MESSAGE "bad_message"
#define ENCORE_PROTO_CODE_UNKNOWN_TYPE "unknown_type"
#define ENCORE_PROTO_CODE_INVALID_FIELD "invalid_field"
#define ENCORE_PROTO_CODE_TOO_LARGE "too_large"
#define ENCORE_PROTO_CODE_TOO_DEEP "too_deep"
#define ENCORE_PROTO_CODE_RATE_LIMITED "rate_limited"
#define ENCORE_PROTO_CODE_INTERNAL "internal"

/* Defaults of encore_proto_limits (the protocol's documented limits). */
#define ENCORE_PROTO_MAX_SIZE 65536
#define ENCORE_PROTO_MAX_DEPTH 16
#define ENCORE_PROTO_MAX_ID_CHARS 64

/* json_dumps() flags for everything sent to clients: compact, keys in insertion order. */
#define ENCORE_PROTO_DUMP_FLAGS (JSON_COMPACT)

/* Return values of encore_proto_decode() and encore_proto_validate(): 0 or one of these. */
typedef enum {
    ENCORE_PROTO_EPARSE = -1,    /* not JSON, not UTF-8, a duplicate key, a NUL in a string */
    ENCORE_PROTO_EBADMSG = -2,   /* JSON, but not an object with a string type and a valid id */
    ENCORE_PROTO_ETOOLARGE = -3, /* more bytes than limits->max_size */
    ENCORE_PROTO_ETOODEEP = -4,  /* nested deeper than limits->max_depth */
    ENCORE_PROTO_EINVALID = -5,  /* a field does not match the schema (encore_proto_validate) */
} encore_proto_error;

/* Limits applied by encore_proto_decode(). A zero field takes the default above. */
typedef struct {
    size_t max_size;     /* bytes of one frame */
    int max_depth;       /* nesting levels of objects and arrays; the message object itself is 1 */
    size_t max_id_chars; /* characters (code points) of a string id */
} encore_proto_limits;

/* What went wrong, for the error reply. */
typedef struct {
    const char *code;  /* static string, one of the ENCORE_PROTO_CODE_* values */
    char message[160]; /* for people: printable ASCII only, always NUL-terminated */
} encore_proto_err;

/* Maps an encore_proto_error to its protocol code string ("parse_error", ...); "internal" for any
 * other value. */
const char *encore_proto_error_code(int err);

/* Decodes one frame buf[0..len) (need not be NUL-terminated) into a request.
 * The checks run in this order: size (before anything is parsed), nesting depth (a linear scan of
 * the raw text that knows strings and escapes, so hostile nesting never reaches the recursive
 * parser), JSON and UTF-8 validity (jansson; duplicate keys and "\u0000" are refused), then the
 * envelope: the top level must be an object whose "type" is a non-empty string and whose "id", when
 * present, is a string of at most max_id_chars characters or a non-negative integer.
 * lim may be NULL for the defaults. msg, type, id and err may each be NULL when not wanted.
 * On success returns 0 and sets *msg to a new reference (the caller json_decref()s it), *type to
 * the type string and *id to the id or NULL when absent; both are borrowed from *msg.
 * On failure sets *msg, *type and *id to NULL, fills *err and returns:
 *   ENCORE_PROTO_ETOOLARGE  len > max_size;
 *   ENCORE_PROTO_ETOODEEP   more than max_depth nested objects/arrays;
 *   ENCORE_PROTO_EPARSE     invalid JSON or UTF-8, duplicate key, NUL character, trailing data;
 *   ENCORE_PROTO_EBADMSG    the top level is not an object, "type" is missing, not a string or
 *                           empty, or "id" is neither a short string nor a non-negative integer. */
int encore_proto_decode(const char *buf, size_t len, const encore_proto_limits *lim, json_t **msg,
                        const char **type, json_t **id, encore_proto_err *err);

/* Kinds of request fields. */
typedef enum {
    ENCORE_PROTO_STRING, /* min/max: length in characters (code points) */
    ENCORE_PROTO_INT,    /* min/max: value range, inclusive */
    ENCORE_PROTO_BOOL,   /* min/max unused */
    ENCORE_PROTO_OBJECT, /* min/max: number of members */
    ENCORE_PROTO_ARRAY,  /* min/max: number of elements */
} encore_proto_kind;

/* Field flags. */
enum {
    ENCORE_PROTO_IDENT = 1u << 0,      /* STRING: only [A-Za-z0-9_-] */
    ENCORE_PROTO_NO_CONTROL = 1u << 1, /* STRING: no control character (U+0000-1F, U+007F-9F) */
    ENCORE_PROTO_NULLABLE = 1u << 2,   /* any kind: JSON null is accepted as well */
};

/* One field of a request schema; a schema is an array ending with an entry whose name is NULL.
 * Bounds: min == 0 && max == 0 means unbounded. Otherwise, for STRING, OBJECT and ARRAY max == 0
 * means "no upper bound" (min still applies); for INT both bounds always apply.
 * Fields of the message that the schema does not name are ignored. */
typedef struct {
    const char *name;
    encore_proto_kind kind;
    bool required;
    long long min, max;
    unsigned flags;
} encore_proto_field;

/* Checks msg (an object) against schema. Returns 0 when every field matches, otherwise
 * ENCORE_PROTO_EINVALID with *bad_field set to the first failing field's name (borrowed from the
 * schema) and why[0..why_len) to a message for people, e.g.
 * "field 'room' must be a string of 1-64 characters [A-Za-z0-9_-]". A msg that is not an object
 * fails with *bad_field NULL. bad_field and why may be NULL; why is always NUL-terminated when
 * why_len > 0. A NULL schema accepts everything. */
int encore_proto_validate(json_t *msg, const encore_proto_field *schema, const char **bad_field,
                          char *why, size_t why_len);

/* Builds {"type":"result","id":<id>,"data":<data>}. id is borrowed (a new reference is taken) and
 * may be NULL, in which case the "id" key is left out; data is stolen, NULL means {}.
 * Returns a new reference, or NULL only when out of memory. */
json_t *encore_proto_build_result(json_t *id, json_t *data) G_GNUC_WARN_UNUSED_RESULT;

/* Builds {"type":"error","id":<id>,"code":<code>,"message":<message>,"field":<field>}.
 * id is borrowed and may be NULL (left out); field may be NULL (left out). A message that is not
 * valid UTF-8 is replaced by "(message not valid UTF-8)". Returns a new reference, or NULL when out
 * of memory or code is NULL or not UTF-8. */
json_t *encore_proto_build_error(json_t *id, const char *code, const char *message,
                                 const char *field) G_GNUC_WARN_UNUSED_RESULT;

/* Number of UTF-8 characters (bytes that do not start with 10xxxxxx) in s[0..len). */
size_t encore_proto_utf8_chars(const char *s, size_t len);

#endif /* ENCORE_SIGNALING_PROTO_H */
