/* The signaling JSON codec: frame decoding with limits, schema validation and reply builders.
 * Pure functions, callable from any thread; no state, no logging. Allocation happens only inside
 * jansson (the decoded tree and the built replies), never for rejected oversize or deep input. */
#include "signaling/proto.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* jansson's own nesting cap is 2048; the scan below keeps the recursive parser far from it. */
#define DECODE_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)

const char *encore_proto_error_code(int err)
{
    switch (err) {
    case ENCORE_PROTO_EPARSE:
        return ENCORE_PROTO_CODE_PARSE_ERROR;
    case ENCORE_PROTO_EBADMSG:
        return ENCORE_PROTO_CODE_BAD_MESSAGE;
    case ENCORE_PROTO_ETOOLARGE:
        return ENCORE_PROTO_CODE_TOO_LARGE;
    case ENCORE_PROTO_ETOODEEP:
        return ENCORE_PROTO_CODE_TOO_DEEP;
    case ENCORE_PROTO_EINVALID:
        return ENCORE_PROTO_CODE_INVALID_FIELD;
    default:
        return ENCORE_PROTO_CODE_INTERNAL;
    }
}

size_t encore_proto_utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

/* Formats into err->message, then replaces every byte outside printable ASCII with '?', so the
 * message is always valid UTF-8 even when it quotes hostile input (jansson's error texts do). */
static int fail(encore_proto_err *err, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static int fail(encore_proto_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        for (char *p = err->message; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7E)
                *p = '?';
        err->code = encore_proto_error_code(code);
    }
    return code;
}

/* True when the nesting of objects and arrays in buf[0..len) never exceeds max_depth. Brackets
 * inside strings do not count. The scan does not validate: for any text that jansson accepts up to
 * a point, jansson's nesting at that point is at most the depth counted here, so jansson never
 * recurses deeper than max_depth. Unbalanced closers clamp at zero, which only over-counts. */
static bool depth_ok(const char *buf, size_t len, int max_depth)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped byte cannot end the string */
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            break;
        case '[':
        case '{':
            if (++depth > max_depth)
                return false;
            break;
        case ']':
        case '}':
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
    }
    return true;
}

static bool id_ok(json_t *id, size_t max_chars)
{
    if (json_is_integer(id))
        return json_integer_value(id) >= 0;
    if (json_is_string(id))
        return encore_proto_utf8_chars(json_string_value(id), json_string_length(id)) <= max_chars;
    return false;
}

int encore_proto_decode(const char *buf, size_t len, const encore_proto_limits *lim, json_t **msg,
                        const char **type, json_t **id, encore_proto_err *err)
{
    size_t max_size = lim && lim->max_size ? lim->max_size : ENCORE_PROTO_MAX_SIZE;
    int max_depth = lim && lim->max_depth > 0 ? lim->max_depth : ENCORE_PROTO_MAX_DEPTH;
    size_t max_id = lim && lim->max_id_chars ? lim->max_id_chars : ENCORE_PROTO_MAX_ID_CHARS;
    json_t *root = NULL;
    int rc = 0;

    if (msg)
        *msg = NULL;
    if (type)
        *type = NULL;
    if (id)
        *id = NULL;

    if (len > max_size)
        return fail(err, ENCORE_PROTO_ETOOLARGE, "message of %zu bytes is over the limit of %zu",
                    len, max_size);
    if (!buf || len == 0)
        return fail(err, ENCORE_PROTO_EPARSE, "empty message");
    if (!depth_ok(buf, len, max_depth))
        return fail(err, ENCORE_PROTO_ETOODEEP, "JSON nests deeper than %d levels", max_depth);

    json_error_t jerr;
    root = json_loadb(buf, len, DECODE_FLAGS, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_invalid_utf8)
            return fail(err, ENCORE_PROTO_EPARSE, "message is not valid UTF-8 (byte %d)",
                        jerr.position);
        return fail(err, ENCORE_PROTO_EPARSE, "invalid JSON at byte %d: %s", jerr.position,
                    jerr.text);
    }
    if (!json_is_object(root)) {
        rc = fail(err, ENCORE_PROTO_EBADMSG, "the message must be a JSON object");
        goto out_free_root;
    }
    json_t *jtype = json_object_get(root, "type");
    if (!jtype) {
        rc = fail(err, ENCORE_PROTO_EBADMSG, "field 'type' is missing");
        goto out_free_root;
    }
    if (!json_is_string(jtype) || json_string_length(jtype) == 0) {
        rc = fail(err, ENCORE_PROTO_EBADMSG, "field 'type' must be a non-empty string");
        goto out_free_root;
    }
    json_t *jid = json_object_get(root, "id");
    if (jid && !id_ok(jid, max_id)) {
        rc = fail(err, ENCORE_PROTO_EBADMSG,
                  "field 'id' must be a string of at most %zu characters or a non-negative integer",
                  max_id);
        goto out_free_root;
    }

    if (type)
        *type = json_string_value(jtype);
    if (id)
        *id = jid;
    if (msg)
        *msg = root;
    else
        json_decref(root);
    return 0;

out_free_root:
    json_decref(root);
    return rc;
}

/* ---- schema validation ---- */

static bool is_ident(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* True when s[0..len) has no C0 control, DEL or C1 control character. C1 controls are U+0080 to
 * U+009F, encoded as C2 80..C2 9F. */
static bool has_no_control(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F)
            return false;
        if (c == 0xC2 && i + 1 < len && (unsigned char)s[i + 1] <= 0x9F)
            return false;
    }
    return true;
}

static bool bounded(long long v, const encore_proto_field *f, bool max_zero_is_unbounded)
{
    if (f->min == 0 && f->max == 0)
        return true;
    if (v < f->min)
        return false;
    if (max_zero_is_unbounded && f->max == 0)
        return true;
    return v <= f->max;
}

static bool value_ok(json_t *v, const encore_proto_field *f)
{
    if (json_is_null(v) && (f->flags & ENCORE_PROTO_NULLABLE))
        return true;
    switch (f->kind) {
    case ENCORE_PROTO_STRING: {
        if (!json_is_string(v))
            return false;
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        size_t chars = encore_proto_utf8_chars(s, len);
        if (chars > (size_t)LLONG_MAX || !bounded((long long)chars, f, true))
            return false;
        if ((f->flags & ENCORE_PROTO_IDENT) && !is_ident(s, len))
            return false;
        if ((f->flags & ENCORE_PROTO_NO_CONTROL) && !has_no_control(s, len))
            return false;
        return true;
    }
    case ENCORE_PROTO_INT:
        return json_is_integer(v) && bounded(json_integer_value(v), f, false);
    case ENCORE_PROTO_BOOL:
        return json_is_boolean(v);
    case ENCORE_PROTO_OBJECT:
        return json_is_object(v) && bounded((long long)json_object_size(v), f, true);
    case ENCORE_PROTO_ARRAY:
        return json_is_array(v) && bounded((long long)json_array_size(v), f, true);
    }
    return false;
}

/* Appends to buf (size n, already NUL-terminated) without overflowing. */
static void append(char *buf, size_t n, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void append(char *buf, size_t n, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, n - used, fmt, ap);
    va_end(ap);
}

/* Appends " of 1-64 <unit>", " of at least 1 <unit>" or " of at most 64 <unit>". */
static void describe_count(char *buf, size_t n, const encore_proto_field *f, const char *unit)
{
    if (f->min == 0 && f->max == 0)
        return;
    if (f->max == 0)
        append(buf, n, " of at least %lld %s", f->min, unit);
    else if (f->min <= 0)
        append(buf, n, " of at most %lld %s", f->max, unit);
    else if (f->min == f->max)
        append(buf, n, " of %lld %s", f->min, unit);
    else
        append(buf, n, " of %lld-%lld %s", f->min, f->max, unit);
}

static void describe(char *buf, size_t n, const encore_proto_field *f, bool missing)
{
    buf[0] = '\0';
    append(buf, n, missing ? "field '%s' is missing: it must be " : "field '%s' must be ", f->name);
    switch (f->kind) {
    case ENCORE_PROTO_STRING:
        append(buf, n, "a string");
        describe_count(buf, n, f, "characters");
        if (f->flags & ENCORE_PROTO_IDENT)
            append(buf, n, " [A-Za-z0-9_-]");
        if (f->flags & ENCORE_PROTO_NO_CONTROL)
            append(buf, n, " without control characters");
        break;
    case ENCORE_PROTO_INT:
        append(buf, n, "an integer");
        if (f->min != 0 || f->max != 0)
            append(buf, n, " from %lld to %lld", f->min, f->max);
        break;
    case ENCORE_PROTO_BOOL:
        append(buf, n, "a boolean");
        break;
    case ENCORE_PROTO_OBJECT:
        append(buf, n, "an object");
        describe_count(buf, n, f, "members");
        break;
    case ENCORE_PROTO_ARRAY:
        append(buf, n, "an array");
        describe_count(buf, n, f, "elements");
        break;
    }
    if (f->flags & ENCORE_PROTO_NULLABLE)
        append(buf, n, " or null");
}

int encore_proto_validate(json_t *msg, const encore_proto_field *schema, const char **bad_field,
                          char *why, size_t why_len)
{
    if (bad_field)
        *bad_field = NULL;
    if (why && why_len)
        why[0] = '\0';
    if (!json_is_object(msg)) {
        if (why && why_len)
            snprintf(why, why_len, "the message must be a JSON object");
        return ENCORE_PROTO_EINVALID;
    }
    for (const encore_proto_field *f = schema; f && f->name; f++) {
        json_t *v = json_object_get(msg, f->name);
        if (v ? value_ok(v, f) : !f->required)
            continue;
        if (bad_field)
            *bad_field = f->name;
        if (why && why_len)
            describe(why, why_len, f, v == NULL);
        return ENCORE_PROTO_EINVALID;
    }
    return 0;
}

/* ---- reply builders ---- */

json_t *encore_proto_build_result(json_t *id, json_t *data)
{
    json_t *o = json_object();
    if (!data)
        data = json_object();
    if (!o || !data)
        goto out_fail;
    if (json_object_set_new(o, "type", json_string("result")) != 0)
        goto out_fail;
    if (id && json_object_set(o, "id", id) != 0)
        goto out_fail;
    if (json_object_set_new(o, "data", data) != 0) {
        data = NULL; /* json_object_set_new() consumed it even on failure */
        goto out_fail;
    }
    return o;

out_fail:
    json_decref(data);
    json_decref(o);
    return NULL;
}

json_t *encore_proto_build_error(json_t *id, const char *code, const char *message,
                                 const char *field)
{
    json_t *o = json_object();
    json_t *jmsg = NULL;
    if (!o || !code)
        goto out_fail;
    if (json_object_set_new(o, "type", json_string("error")) != 0)
        goto out_fail;
    if (id && json_object_set(o, "id", id) != 0)
        goto out_fail;
    if (json_object_set_new(o, "code", json_string(code)) != 0)
        goto out_fail;
    jmsg = json_string(message ? message : "");
    if (!jmsg)
        jmsg = json_string("(message not valid UTF-8)");
    if (json_object_set_new(o, "message", jmsg) != 0)
        goto out_fail;
    if (field && json_object_set_new(o, "field", json_string(field)) != 0)
        goto out_fail;
    return o;

out_fail:
    json_decref(o);
    return NULL;
}
