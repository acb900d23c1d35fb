/* Strict reader of one flat JSON object with ASCII string and integer members, for token and
 * webhook parsing. Pure functions for any thread: bounds-checked, no allocation, no logging; it
 * accepts a deliberate subset of JSON and refuses everything else. */
#include <string.h>

#include "server/accounts/flatjson.h"

enum { ST_START = 0, ST_FIRST = 1, ST_AFTER = 2, ST_DONE = 3, ST_FAILED = -1 };

void encore_flatjson_init(encore_flatjson_reader *r, const uint8_t *buf, size_t len)
{
    r->buf = buf;
    r->len = buf ? len : 0;
    r->pos = 0;
    r->state = ST_START;
}

static void skip_ws(encore_flatjson_reader *r)
{
    while (r->pos < r->len) {
        uint8_t c = r->buf[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        r->pos++;
    }
}

/* Consumes c when it is the next byte. */
static int eat(encore_flatjson_reader *r, uint8_t c)
{
    if (r->pos < r->len && r->buf[r->pos] == c) {
        r->pos++;
        return 1;
    }
    return 0;
}

/* Reads a string at pos (which must be '"'); returns 0 or -1. */
static int read_string(encore_flatjson_reader *r, const char **s, size_t *n)
{
    if (!eat(r, '"'))
        return -1;
    size_t start = r->pos;
    while (r->pos < r->len) {
        uint8_t c = r->buf[r->pos];
        if (c == '"') {
            *s = (const char *)r->buf + start;
            *n = r->pos - start;
            r->pos++;
            return 0;
        }
        if (c < 0x20 || c > 0x7E || c == '\\')
            return -1;
        r->pos++;
    }
    return -1; /* unterminated */
}

/* Reads an integer at pos; returns 0 or -1. */
static int read_int(encore_flatjson_reader *r, int64_t *out)
{
    int neg = eat(r, '-');
    size_t start = r->pos;
    uint64_t v = 0;
    /* The magnitude limit: INT64_MAX, or one more for a negative number. */
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    while (r->pos < r->len && r->buf[r->pos] >= '0' && r->buf[r->pos] <= '9') {
        unsigned d = r->buf[r->pos] - '0';
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
        r->pos++;
    }
    size_t digits = r->pos - start;
    if (digits == 0 || (digits > 1 && r->buf[start] == '0'))
        return -1;
    if (r->pos < r->len) {
        uint8_t c = r->buf[r->pos];
        if (c == '.' || c == 'e' || c == 'E')
            return -1;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 0;
}

static int fail(encore_flatjson_reader *r, encore_flatjson_member *m)
{
    memset(m, 0, sizeof *m);
    r->state = ST_FAILED;
    return ENCORE_FLATJSON_EINVALID;
}

int encore_flatjson_next(encore_flatjson_reader *r, encore_flatjson_member *m)
{
    memset(m, 0, sizeof *m);
    if (r->state == ST_FAILED)
        return ENCORE_FLATJSON_EINVALID;
    if (r->state == ST_DONE)
        return 0;
    if (r->state == ST_START) {
        skip_ws(r);
        if (!eat(r, '{'))
            return fail(r, m);
        r->state = ST_FIRST;
    }
    skip_ws(r);
    if (eat(r, '}')) {
        if (r->state == ST_FIRST || r->state == ST_AFTER) {
            skip_ws(r);
            if (r->pos != r->len)
                return fail(r, m);
            r->state = ST_DONE;
            return 0;
        }
        return fail(r, m);
    }
    if (r->state == ST_AFTER) {
        if (!eat(r, ','))
            return fail(r, m);
        skip_ws(r);
    }
    if (read_string(r, &m->key, &m->key_len) != 0)
        return fail(r, m);
    skip_ws(r);
    if (!eat(r, ':'))
        return fail(r, m);
    skip_ws(r);
    if (r->pos >= r->len)
        return fail(r, m);
    uint8_t c = r->buf[r->pos];
    if (c == '"') {
        m->kind = ENCORE_FLATJSON_STRING;
        if (read_string(r, &m->str, &m->str_len) != 0)
            return fail(r, m);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        m->kind = ENCORE_FLATJSON_INT;
        if (read_int(r, &m->num) != 0)
            return fail(r, m);
    } else {
        return fail(r, m);
    }
    r->state = ST_AFTER;
    return 1;
}
