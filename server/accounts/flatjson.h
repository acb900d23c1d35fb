/* A strict reader for the small flat JSON objects of the accounts layer (token header and claims,
 * the payment provider's event body): one object whose members are printable-ASCII strings
 * without escapes or integers. Pure: no state, no allocation, no logging; any thread. */
#ifndef ENCORE_ACCOUNTS_FLATJSON_H
#define ENCORE_ACCOUNTS_FLATJSON_H

#include <stddef.h>
#include <stdint.h>

/* Kinds of member values this reader accepts. */
typedef enum {
    ENCORE_FLATJSON_STRING, /* "..." of bytes 0x20-0x7E other than '"' and '\' */
    ENCORE_FLATJSON_INT,    /* -?(0|[1-9][0-9]*) within int64, no fraction, no exponent */
} encore_flatjson_kind;

/* Return value of encore_flatjson_next() for anything this reader does not accept. */
#define ENCORE_FLATJSON_EINVALID (-1)

/* One member. Pointers point into the input buffer (not NUL-terminated). */
typedef struct {
    const char *key; /* the key's characters between the quotes */
    size_t key_len;
    encore_flatjson_kind kind;
    const char *str; /* STRING: the characters between the quotes; NULL for INT */
    size_t str_len;
    int64_t num; /* INT: the value; 0 for STRING */
} encore_flatjson_member;

/* Reader state; set up with encore_flatjson_init(), otherwise opaque to callers. */
typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    int state; /* 0 before '{', 1 before the first member, 2 after a member, 3 done, -1 failed */
} encore_flatjson_reader;

/* Starts reading buf[0..len), which is borrowed until the last call of encore_flatjson_next(). */
void encore_flatjson_init(encore_flatjson_reader *r, const uint8_t *buf, size_t len);

/* Reads the next member. Returns 1 with *m filled; 0 when the object closed and only JSON
 * whitespace follows it (and on every later call); ENCORE_FLATJSON_EINVALID when the input is not
 * such an object: not JSON, a top level that is not an object, a nested object or array, true,
 * false, null, a fraction or exponent, an integer outside int64, a string with an escape, a
 * control character or a byte over 0x7E, or trailing data. Once it failed it keeps failing.
 * On failure *m is zeroed. Duplicate keys are not detected here: callers track the keys they know.
 */
int encore_flatjson_next(encore_flatjson_reader *r, encore_flatjson_member *m);

#endif /* ENCORE_ACCOUNTS_FLATJSON_H */
