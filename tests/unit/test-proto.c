/* Unit tests for signaling/proto.c: every decode error (JSON, UTF-8, envelope, id, size, depth,
 * hostile nesting), the schema validator for each kind, bound and charset, and the exact text of
 * the reply builders. */
#include <limits.h>
#include <string.h>

#include <glib.h>

#include "signaling/proto.h"

/* Decodes a NUL-terminated string with default limits and returns the result code. */
static int decode_str(const char *s, encore_proto_err *err)
{
    json_t *msg = NULL, *id = NULL;
    const char *type = NULL;
    int rc = encore_proto_decode(s, strlen(s), NULL, &msg, &type, &id, err);
    if (rc == 0)
        json_decref(msg);
    else
        g_assert_true(msg == NULL && type == NULL && id == NULL);
    return rc;
}

static void assert_decode_fails(const char *s, int want, const char *want_code)
{
    encore_proto_err err;
    g_assert_cmpint(decode_str(s, &err), ==, want);
    g_assert_cmpstr(err.code, ==, want_code);
    g_assert_cmpuint(strlen(err.message), >, 0);
    for (const char *p = err.message; *p; p++)
        g_assert_true(*p >= 0x20 && *p <= 0x7E);
}

static void test_decode_ok(void)
{
    const char *s = "{\"type\":\"room.join\",\"id\":1,\"room\":\"lobby\",\"name\":\"Ann\"}";
    json_t *msg, *id;
    const char *type;
    encore_proto_err err;
    g_assert_cmpint(encore_proto_decode(s, strlen(s), NULL, &msg, &type, &id, &err), ==, 0);
    g_assert_cmpstr(type, ==, "room.join");
    g_assert_true(json_is_integer(id));
    g_assert_cmpint(json_integer_value(id), ==, 1);
    g_assert_true(json_object_get(msg, "id") == id);
    g_assert_cmpstr(json_string_value(json_object_get(msg, "room")), ==, "lobby");
    json_decref(msg);

    /* String id; no id; the buffer need not be NUL-terminated. */
    const char *s2 = "{\"type\":\"ping\",\"id\":\"abc\"}XXXX";
    g_assert_cmpint(encore_proto_decode(s2, strlen(s2) - 4, NULL, &msg, &type, &id, NULL), ==, 0);
    g_assert_cmpstr(json_string_value(id), ==, "abc");
    json_decref(msg);
    const char *s3 = "{\"type\":\"ice.candidate\",\"candidate\":\"\"}";
    g_assert_cmpint(encore_proto_decode(s3, strlen(s3), NULL, &msg, &type, &id, NULL), ==, 0);
    g_assert_null(id);
    g_assert_cmpstr(type, ==, "ice.candidate");
    json_decref(msg);

    /* Every output may be omitted. */
    g_assert_cmpint(encore_proto_decode(s3, strlen(s3), NULL, NULL, NULL, NULL, NULL), ==, 0);

    /* id 0 and the largest integer are fine; an empty string id too. */
    g_assert_cmpint(decode_str("{\"type\":\"x\",\"id\":0}", NULL), ==, 0);
    g_assert_cmpint(decode_str("{\"type\":\"x\",\"id\":9223372036854775807}", NULL), ==, 0);
    g_assert_cmpint(decode_str("{\"type\":\"x\",\"id\":\"\"}", NULL), ==, 0);
}

static void test_decode_parse_errors(void)
{
    assert_decode_fails("{\"type\":", ENCORE_PROTO_EPARSE, "parse_error");
    assert_decode_fails("{type:\"x\"}", ENCORE_PROTO_EPARSE, "parse_error");
    assert_decode_fails("", ENCORE_PROTO_EPARSE, "parse_error");
    assert_decode_fails("   ", ENCORE_PROTO_EPARSE, "parse_error");
    /* Trailing data, duplicate keys, an escaped NUL, a too big integer. */
    assert_decode_fails("{\"type\":\"x\"} {}", ENCORE_PROTO_EPARSE, "parse_error");
    assert_decode_fails("{\"type\":\"x\",\"type\":\"y\"}", ENCORE_PROTO_EPARSE, "parse_error");
    assert_decode_fails("{\"type\":\"a\\u0000b\"}", ENCORE_PROTO_EPARSE, "parse_error");
    assert_decode_fails("{\"type\":\"x\",\"id\":99999999999999999999}", ENCORE_PROTO_EPARSE,
                        "parse_error");

    /* Not UTF-8: a lone continuation byte, an overlong encoding, a truncated sequence. The error
     * message stays printable ASCII although jansson quotes the bad bytes. */
    encore_proto_err err;
    assert_decode_fails("{\"type\":\"a\x80\"}", ENCORE_PROTO_EPARSE, "parse_error");
    assert_decode_fails("{\"type\":\"\xC0\xAF\"}", ENCORE_PROTO_EPARSE, "parse_error");
    assert_decode_fails("{\"type\":\"\xE2\x82\"}", ENCORE_PROTO_EPARSE, "parse_error");
    g_assert_cmpint(decode_str("{\"type\":\"\xff\"}", &err), ==, ENCORE_PROTO_EPARSE);
    g_assert_nonnull(strstr(err.message, "UTF-8"));
    /* Invalid UTF-8 outside strings as well. */
    assert_decode_fails("\xff{\"type\":\"x\"}", ENCORE_PROTO_EPARSE, "parse_error");
}

static void test_decode_bad_message(void)
{
    encore_proto_err err;
    assert_decode_fails("[1,2]", ENCORE_PROTO_EBADMSG, "bad_message");
    assert_decode_fails("[]", ENCORE_PROTO_EBADMSG, "bad_message");
    assert_decode_fails("42", ENCORE_PROTO_EBADMSG, "bad_message");
    assert_decode_fails("\"room.join\"", ENCORE_PROTO_EBADMSG, "bad_message");
    assert_decode_fails("null", ENCORE_PROTO_EBADMSG, "bad_message");
    g_assert_cmpint(decode_str("[1]", &err), ==, ENCORE_PROTO_EBADMSG);
    g_assert_cmpstr(err.message, ==, "the message must be a JSON object");

    /* type missing, not a string, empty. */
    g_assert_cmpint(decode_str("{\"id\":1}", &err), ==, ENCORE_PROTO_EBADMSG);
    g_assert_cmpstr(err.message, ==, "field 'type' is missing");
    g_assert_cmpint(decode_str("{\"type\":5}", &err), ==, ENCORE_PROTO_EBADMSG);
    g_assert_cmpstr(err.message, ==, "field 'type' must be a non-empty string");
    assert_decode_fails("{\"type\":null}", ENCORE_PROTO_EBADMSG, "bad_message");
    assert_decode_fails("{\"type\":[\"x\"]}", ENCORE_PROTO_EBADMSG, "bad_message");
    assert_decode_fails("{\"type\":\"\"}", ENCORE_PROTO_EBADMSG, "bad_message");

    /* Bad ids. */
    g_assert_cmpint(decode_str("{\"type\":\"x\",\"id\":-1}", &err), ==, ENCORE_PROTO_EBADMSG);
    g_assert_cmpstr(err.message, ==,
                    "field 'id' must be a string of at most 64 characters or a non-negative "
                    "integer");
    assert_decode_fails("{\"type\":\"x\",\"id\":1.5}", ENCORE_PROTO_EBADMSG, "bad_message");
    assert_decode_fails("{\"type\":\"x\",\"id\":1.0}", ENCORE_PROTO_EBADMSG, "bad_message");
    assert_decode_fails("{\"type\":\"x\",\"id\":true}", ENCORE_PROTO_EBADMSG, "bad_message");
    assert_decode_fails("{\"type\":\"x\",\"id\":null}", ENCORE_PROTO_EBADMSG, "bad_message");
    assert_decode_fails("{\"type\":\"x\",\"id\":{}}", ENCORE_PROTO_EBADMSG, "bad_message");
    assert_decode_fails("{\"type\":\"x\",\"id\":[1]}", ENCORE_PROTO_EBADMSG, "bad_message");

    /* A string id of 64 characters is fine, 65 is not; characters, not bytes, are counted. */
    GString *s = g_string_new("{\"type\":\"x\",\"id\":\"");
    for (int i = 0; i < 64; i++)
        g_string_append_c(s, 'a');
    g_string_append(s, "\"}");
    g_assert_cmpint(decode_str(s->str, NULL), ==, 0);
    g_string_insert_c(s, 20, 'a');
    assert_decode_fails(s->str, ENCORE_PROTO_EBADMSG, "bad_message");
    g_string_assign(s, "{\"type\":\"x\",\"id\":\"");
    for (int i = 0; i < 64; i++)
        g_string_append(s, "\xC3\xA9"); /* U+00E9, two bytes */
    g_string_append(s, "\"}");
    g_assert_cmpint(decode_str(s->str, NULL), ==, 0);
    g_string_insert(s, 20, "\xC3\xA9");
    assert_decode_fails(s->str, ENCORE_PROTO_EBADMSG, "bad_message");
    g_string_free(s, TRUE);

    /* A custom id limit. */
    encore_proto_limits lim = {.max_id_chars = 3};
    const char *m = "{\"type\":\"x\",\"id\":\"abcd\"}";
    g_assert_cmpint(encore_proto_decode(m, strlen(m), &lim, NULL, NULL, NULL, NULL), ==,
                    ENCORE_PROTO_EBADMSG);
}

/* {"type":"x","p":"aaaa..."} of exactly len bytes. */
static char *message_of_size(size_t len)
{
    const char *head = "{\"type\":\"x\",\"p\":\"";
    g_assert_cmpuint(len, >=, strlen(head) + 2);
    char *s = g_malloc(len + 1);
    memset(s, 'a', len);
    memcpy(s, head, strlen(head));
    s[len - 2] = '"';
    s[len - 1] = '}';
    s[len] = '\0';
    return s;
}

static void test_decode_size(void)
{
    encore_proto_err err;
    char *s = message_of_size(65536);
    g_assert_cmpint(decode_str(s, &err), ==, 0);
    g_free(s);
    s = message_of_size(65537);
    g_assert_cmpint(decode_str(s, &err), ==, ENCORE_PROTO_ETOOLARGE);
    g_assert_cmpstr(err.code, ==, "too_large");
    g_assert_cmpstr(err.message, ==, "message of 65537 bytes is over the limit of 65536");
    g_free(s);

    /* The size is checked before anything is parsed: garbage is too large, not a parse error. */
    char *junk = g_malloc(70000);
    memset(junk, 0xff, 70000);
    g_assert_cmpint(encore_proto_decode(junk, 70000, NULL, NULL, NULL, NULL, &err), ==,
                    ENCORE_PROTO_ETOOLARGE);
    g_free(junk);

    encore_proto_limits lim = {.max_size = 20};
    const char *m = "{\"type\":\"abcdefghij\"}"; /* 21 bytes */
    g_assert_cmpint(encore_proto_decode(m, strlen(m), &lim, NULL, NULL, NULL, NULL), ==,
                    ENCORE_PROTO_ETOOLARGE);
    g_assert_cmpint(encore_proto_decode(m, strlen(m) - 1, &lim, NULL, NULL, NULL, NULL), ==,
                    ENCORE_PROTO_EPARSE);
}

/* A message whose total nesting is depth: the object plus depth - 1 arrays. */
static char *nested(int depth)
{
    GString *s = g_string_new("{\"type\":\"x\",\"a\":");
    for (int i = 1; i < depth; i++)
        g_string_append_c(s, '[');
    for (int i = 1; i < depth; i++)
        g_string_append_c(s, ']');
    g_string_append_c(s, '}');
    return g_string_free(s, FALSE);
}

static void test_decode_depth(void)
{
    encore_proto_err err;
    char *s = nested(16);
    g_assert_cmpint(decode_str(s, &err), ==, 0);
    g_free(s);
    s = nested(17);
    g_assert_cmpint(decode_str(s, &err), ==, ENCORE_PROTO_ETOODEEP);
    g_assert_cmpstr(err.code, ==, "too_deep");
    g_assert_cmpstr(err.message, ==, "JSON nests deeper than 16 levels");
    g_free(s);

    /* Objects count like arrays. */
    GString *o = g_string_new("{\"type\":\"x\",\"a\":");
    for (int i = 1; i < 17; i++)
        g_string_append(o, "{\"k\":");
    g_string_append(o, "1");
    for (int i = 1; i < 17; i++)
        g_string_append_c(o, '}');
    g_string_append_c(o, '}');
    g_assert_cmpint(decode_str(o->str, NULL), ==, ENCORE_PROTO_ETOODEEP);
    g_string_free(o, TRUE);

    /* Brackets inside strings, escaped quotes and escaped backslashes do not count. */
    g_assert_cmpint(
        decode_str("{\"type\":\"x\",\"s\":\"[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{\"}", NULL),
        ==, 0);
    g_assert_cmpint(decode_str("{\"type\":\"x\",\"s\":\"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[\"}", NULL),
                    ==, 0);
    s = nested(17);
    char *t = g_strdup_printf("{\"type\":\"x\",\"s\":\"\\\\\",\"b\":%s}", s);
    g_assert_cmpint(decode_str(t, NULL), ==, ENCORE_PROTO_ETOODEEP);
    g_free(t);
    g_free(s);

    /* Closers without openers do not let later openers through. */
    char *c = g_strdup_printf("]]]]]]]]]]]]]]]]]]]]%s", "[[[[[[[[[[[[[[[[[");
    g_assert_cmpint(decode_str(c, NULL), ==, ENCORE_PROTO_ETOODEEP);
    g_free(c);

    encore_proto_limits lim = {.max_depth = 2};
    const char *m = "{\"type\":\"x\",\"a\":[[]]}";
    g_assert_cmpint(encore_proto_decode(m, strlen(m), &lim, NULL, NULL, NULL, NULL), ==,
                    ENCORE_PROTO_ETOODEEP);
}

static void test_decode_hostile_nesting(void)
{
    const size_t n = 100000;
    char *s = g_malloc(n);
    memset(s, '[', n);
    encore_proto_err err;
    /* Over the default size limit... */
    g_assert_cmpint(encore_proto_decode(s, n, NULL, NULL, NULL, NULL, &err), ==,
                    ENCORE_PROTO_ETOOLARGE);
    /* ...and within a larger one, stopped by the depth scan. */
    encore_proto_limits lim = {.max_size = 2 * n};
    g_assert_cmpint(encore_proto_decode(s, n, &lim, NULL, NULL, NULL, &err), ==,
                    ENCORE_PROTO_ETOODEEP);
    /* Even with the depth limit lifted, jansson's own cap fails cleanly instead of crashing. */
    lim.max_depth = INT_MAX;
    g_assert_cmpint(encore_proto_decode(s, n, &lim, NULL, NULL, NULL, &err), ==,
                    ENCORE_PROTO_EPARSE);
    memset(s, '{', n);
    lim.max_depth = 0;
    g_assert_cmpint(encore_proto_decode(s, n, &lim, NULL, NULL, NULL, &err), ==,
                    ENCORE_PROTO_ETOODEEP);
    g_free(s);
}

static void test_error_codes(void)
{
    g_assert_cmpstr(encore_proto_error_code(ENCORE_PROTO_EPARSE), ==, "parse_error");
    g_assert_cmpstr(encore_proto_error_code(ENCORE_PROTO_EBADMSG), ==, "bad_message");
    g_assert_cmpstr(encore_proto_error_code(ENCORE_PROTO_ETOOLARGE), ==, "too_large");
    g_assert_cmpstr(encore_proto_error_code(ENCORE_PROTO_ETOODEEP), ==, "too_deep");
    g_assert_cmpstr(encore_proto_error_code(ENCORE_PROTO_EINVALID), ==, "invalid_field");
    g_assert_cmpstr(encore_proto_error_code(0), ==, "internal");
    g_assert_cmpstr(encore_proto_error_code(-99), ==, "internal");
    g_assert_cmpuint(encore_proto_utf8_chars("", 0), ==, 0);
    g_assert_cmpuint(encore_proto_utf8_chars("a\xC3\xA9\xF0\x9F\x8E\xA4", 7), ==, 3);
}

/* ---- validation ---- */

static const encore_proto_field schema[] = {
    {"room", ENCORE_PROTO_STRING, true, 1, 64, ENCORE_PROTO_IDENT},
    {"name", ENCORE_PROTO_STRING, true, 1, 64, ENCORE_PROTO_NO_CONTROL},
    {"n", ENCORE_PROTO_INT, false, 0, 10, 0},
    {"big", ENCORE_PROTO_INT, false, 0, 0, 0},
    {"flag", ENCORE_PROTO_BOOL, false, 0, 0, 0},
    {"obj", ENCORE_PROTO_OBJECT, false, 0, 0, 0},
    {"arr", ENCORE_PROTO_ARRAY, false, 1, 3, 0},
    {"sdp", ENCORE_PROTO_STRING, false, 1, 0, 0},
    {"mid", ENCORE_PROTO_STRING, false, 0, 8, ENCORE_PROTO_NULLABLE},
    {NULL, 0, false, 0, 0, 0},
};

/* Validates `{"room":"lobby","name":"Ann",<extra>}` and returns the failing field or NULL. */
static const char *check(const char *extra, char *why, size_t why_len)
{
    char *text =
        g_strdup_printf("{\"room\":\"lobby\",\"name\":\"Ann\"%s%s}", *extra ? "," : "", extra);
    json_error_t jerr;
    json_t *msg = json_loads(text, JSON_DECODE_ANY, &jerr);
    g_assert_nonnull(msg);
    const char *field = (const char *)"untouched";
    int rc = encore_proto_validate(msg, schema, &field, why, why_len);
    if (rc == 0)
        g_assert_null(field);
    else
        g_assert_cmpint(rc, ==, ENCORE_PROTO_EINVALID);
    json_decref(msg);
    g_free(text);
    return field;
}

static void test_validate_ok(void)
{
    char why[256];
    g_assert_null(check("", why, sizeof why));
    g_assert_cmpstr(why, ==, "");
    g_assert_null(
        check("\"n\":0,\"flag\":false,\"obj\":{},\"arr\":[1],\"mid\":null", why, sizeof why));
    g_assert_null(
        check("\"n\":10,\"arr\":[1,2,3],\"mid\":\"12345678\",\"sdp\":\"v=0\"", why, sizeof why));
    g_assert_null(check("\"big\":-9223372036854775807,\"unknown\":[{}]", why, sizeof why));
    /* A NULL schema accepts everything; a NULL bad_field/why is fine. */
    json_t *o = json_object();
    g_assert_cmpint(encore_proto_validate(o, NULL, NULL, NULL, 0), ==, 0);
    g_assert_cmpint(encore_proto_validate(o, schema, NULL, NULL, 0), ==, ENCORE_PROTO_EINVALID);
    json_decref(o);
    /* Not an object. */
    json_t *a = json_array();
    const char *field = "x";
    g_assert_cmpint(encore_proto_validate(a, schema, &field, why, sizeof why), ==,
                    ENCORE_PROTO_EINVALID);
    g_assert_null(field);
    g_assert_cmpstr(why, ==, "the message must be a JSON object");
    json_decref(a);
}

static void test_validate_strings(void)
{
    char why[256];
    const char *room_why = "field 'room' must be a string of 1-64 characters [A-Za-z0-9_-]";
    /* The docs' example message, exactly. */
    json_t *m = json_pack("{s:s, s:s}", "room", "lob by", "name", "Ann");
    const char *field;
    g_assert_cmpint(encore_proto_validate(m, schema, &field, why, sizeof why), ==,
                    ENCORE_PROTO_EINVALID);
    g_assert_cmpstr(field, ==, "room");
    g_assert_cmpstr(why, ==, room_why);
    /* Missing. */
    json_object_del(m, "room");
    g_assert_cmpint(encore_proto_validate(m, schema, &field, why, sizeof why), ==,
                    ENCORE_PROTO_EINVALID);
    g_assert_cmpstr(field, ==, "room");
    g_assert_cmpstr(why, ==,
                    "field 'room' is missing: it must be a string of 1-64 characters "
                    "[A-Za-z0-9_-]");
    /* Empty, 64 and 65 characters, wrong type, the charset. */
    const char *bad_rooms[] = {"", "a.b", "a/b", "r\xC3\xA9", "a b"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad_rooms); i++) {
        json_object_set_new(m, "room", json_string(bad_rooms[i]));
        g_assert_cmpint(encore_proto_validate(m, schema, &field, why, sizeof why), ==,
                        ENCORE_PROTO_EINVALID);
        g_assert_cmpstr(why, ==, room_why);
    }
    char r64[66];
    memset(r64, 'x', 65);
    r64[64] = '\0';
    json_object_set_new(m, "room", json_string(r64));
    g_assert_cmpint(encore_proto_validate(m, schema, &field, why, sizeof why), ==, 0);
    r64[64] = 'x';
    r64[65] = '\0';
    json_object_set_new(m, "room", json_string(r64));
    g_assert_cmpint(encore_proto_validate(m, schema, &field, why, sizeof why), ==,
                    ENCORE_PROTO_EINVALID);
    json_object_set_new(m, "room", json_integer(5));
    g_assert_cmpint(encore_proto_validate(m, schema, &field, why, sizeof why), ==,
                    ENCORE_PROTO_EINVALID);
    json_object_set_new(m, "room", json_string("A-z_09"));
    g_assert_cmpint(encore_proto_validate(m, schema, &field, why, sizeof why), ==, 0);

    /* Display names: any UTF-8 but control characters, counted in characters. */
    const char *name_why = "field 'name' must be a string of 1-64 characters without control "
                           "characters";
    const char *bad_names[] = {"", "a\nb", "tab\there", "del\x7F", "c1\xC2\x85"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad_names); i++) {
        json_object_set_new(m, "name", json_string(bad_names[i]));
        g_assert_cmpint(encore_proto_validate(m, schema, &field, why, sizeof why), ==,
                        ENCORE_PROTO_EINVALID);
        g_assert_cmpstr(field, ==, "name");
        g_assert_cmpstr(why, ==, name_why);
    }
    const char *good_names[] = {"Zo\xC3\xAB \xF0\x9F\x8E\xA4", "A", "\xC2\xA0nbsp", "\xC2\xA9"};
    for (size_t i = 0; i < G_N_ELEMENTS(good_names); i++) {
        json_object_set_new(m, "name", json_string(good_names[i]));
        g_assert_cmpint(encore_proto_validate(m, schema, &field, why, sizeof why), ==, 0);
    }
    GString *emoji = g_string_new(NULL);
    for (int i = 0; i < 64; i++)
        g_string_append(emoji, "\xF0\x9F\x8E\xA4"); /* 64 characters, 256 bytes */
    json_object_set_new(m, "name", json_string(emoji->str));
    g_assert_cmpint(encore_proto_validate(m, schema, &field, why, sizeof why), ==, 0);
    g_string_append(emoji, "!");
    json_object_set_new(m, "name", json_string(emoji->str));
    g_assert_cmpint(encore_proto_validate(m, schema, &field, why, sizeof why), ==,
                    ENCORE_PROTO_EINVALID);
    g_string_free(emoji, TRUE);
    json_decref(m);

    /* Only a lower bound; only an upper bound; nullable. */
    g_assert_cmpstr(check("\"sdp\":\"\"", why, sizeof why), ==, "sdp");
    g_assert_cmpstr(why, ==, "field 'sdp' must be a string of at least 1 characters");
    g_assert_cmpstr(check("\"mid\":\"123456789\"", why, sizeof why), ==, "mid");
    g_assert_cmpstr(why, ==, "field 'mid' must be a string of at most 8 characters or null");
    g_assert_cmpstr(check("\"mid\":5", why, sizeof why), ==, "mid");
}

static void test_validate_kinds(void)
{
    char why[256];
    g_assert_cmpstr(check("\"n\":11", why, sizeof why), ==, "n");
    g_assert_cmpstr(why, ==, "field 'n' must be an integer from 0 to 10");
    g_assert_cmpstr(check("\"n\":-1", why, sizeof why), ==, "n");
    g_assert_cmpstr(check("\"n\":1.5", why, sizeof why), ==, "n");
    g_assert_cmpstr(check("\"n\":\"1\"", why, sizeof why), ==, "n");
    g_assert_cmpstr(check("\"n\":null", why, sizeof why), ==, "n");
    g_assert_cmpstr(check("\"big\":true", why, sizeof why), ==, "big");
    g_assert_cmpstr(why, ==, "field 'big' must be an integer");
    g_assert_cmpstr(check("\"flag\":\"true\"", why, sizeof why), ==, "flag");
    g_assert_cmpstr(why, ==, "field 'flag' must be a boolean");
    g_assert_cmpstr(check("\"flag\":1", why, sizeof why), ==, "flag");
    g_assert_cmpstr(check("\"obj\":[]", why, sizeof why), ==, "obj");
    g_assert_cmpstr(why, ==, "field 'obj' must be an object");
    g_assert_cmpstr(check("\"arr\":[]", why, sizeof why), ==, "arr");
    g_assert_cmpstr(why, ==, "field 'arr' must be an array of 1-3 elements");
    g_assert_cmpstr(check("\"arr\":[1,2,3,4]", why, sizeof why), ==, "arr");
    g_assert_cmpstr(check("\"arr\":{}", why, sizeof why), ==, "arr");

    /* The first failing field in schema order is reported. */
    g_assert_cmpstr(check("\"arr\":[],\"n\":99", why, sizeof why), ==, "n");

    /* A short buffer truncates, NUL-terminated. */
    char small[8];
    g_assert_cmpstr(check("\"n\":11", small, sizeof small), ==, "n");
    g_assert_cmpstr(small, ==, "field '");
}

/* ---- reply builders ---- */

static void assert_dump(json_t *msg, const char *want)
{
    g_assert_nonnull(msg);
    char *s = json_dumps(msg, ENCORE_PROTO_DUMP_FLAGS);
    g_assert_cmpstr(s, ==, want);
    free(s);
    json_decref(msg);
}

static void test_builders(void)
{
    json_t *id = json_integer(1);
    assert_dump(
        encore_proto_build_result(id, json_pack("{s:s, s:s}", "you", "c7", "room", "lobby")),
        "{\"type\":\"result\",\"id\":1,\"data\":{\"you\":\"c7\",\"room\":\"lobby\"}}");
    assert_dump(encore_proto_build_result(id, NULL), "{\"type\":\"result\",\"id\":1,\"data\":{}}");
    assert_dump(encore_proto_build_result(NULL, json_null()),
                "{\"type\":\"result\",\"data\":null}");
    g_assert_cmpint(id->refcount, ==, 1);

    assert_dump(
        encore_proto_build_error(id, "invalid_field",
                                 "field 'room' must be a string of 1-64 characters "
                                 "[A-Za-z0-9_-]",
                                 "room"),
        "{\"type\":\"error\",\"id\":1,\"code\":\"invalid_field\",\"message\":\"field 'room' "
        "must be a string of 1-64 characters [A-Za-z0-9_-]\",\"field\":\"room\"}");
    json_decref(id);

    json_t *sid = json_string("req-\"7\"");
    assert_dump(encore_proto_build_error(sid, "rate_limited", "slow down", NULL),
                "{\"type\":\"error\",\"id\":\"req-\\\"7\\\"\",\"code\":\"rate_limited\","
                "\"message\":\"slow down\"}");
    json_decref(sid);
    assert_dump(encore_proto_build_error(NULL, "parse_error", "invalid JSON", NULL),
                "{\"type\":\"error\",\"code\":\"parse_error\",\"message\":\"invalid JSON\"}");
    assert_dump(encore_proto_build_error(NULL, "internal", "caf\xC3\xA9 \xff", NULL),
                "{\"type\":\"error\",\"code\":\"internal\",\"message\":\"(message not valid "
                "UTF-8)\"}");
    assert_dump(encore_proto_build_error(NULL, "internal", NULL, NULL),
                "{\"type\":\"error\",\"code\":\"internal\",\"message\":\"\"}");
    g_assert_null(encore_proto_build_error(NULL, NULL, "x", NULL));
    g_assert_null(encore_proto_build_error(NULL, "bad\xff", "x", NULL));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/proto/decode/ok", test_decode_ok);
    g_test_add_func("/proto/decode/parse-errors", test_decode_parse_errors);
    g_test_add_func("/proto/decode/bad-message", test_decode_bad_message);
    g_test_add_func("/proto/decode/size", test_decode_size);
    g_test_add_func("/proto/decode/depth", test_decode_depth);
    g_test_add_func("/proto/decode/hostile-nesting", test_decode_hostile_nesting);
    g_test_add_func("/proto/error-codes", test_error_codes);
    g_test_add_func("/proto/validate/ok", test_validate_ok);
    g_test_add_func("/proto/validate/strings", test_validate_strings);
    g_test_add_func("/proto/validate/kinds", test_validate_kinds);
    g_test_add_func("/proto/builders", test_builders);
    return g_test_run();
}
