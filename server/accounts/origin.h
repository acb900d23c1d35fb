/* The websocket Origin allowlist: parsing an Origin header value (RFC 6454 serialization) into
 * scheme, lowercase host and port, and matching it against exact configured entries. Parsing is
 * pure; a list is immutable after creation, so any thread may check against it. Never logs. */
#ifndef ENCORE_ACCOUNTS_ORIGIN_H
#define ENCORE_ACCOUNTS_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

/* Longest host (a DNS name, an IPv4 literal or a bracketed IPv6 literal). */
#define ENCORE_ORIGIN_HOST_MAX 253
/* Longest Origin value looked at: "https://" + host + ":65535". */
#define ENCORE_ORIGIN_MAX_LEN (8 + ENCORE_ORIGIN_HOST_MAX + 6)

/* Return values: 0 or one of these. */
typedef enum {
    ENCORE_ORIGIN_EMISSING = -1,   /* "missing": no Origin header (origin NULL) */
    ENCORE_ORIGIN_ENULL = -2,      /* "null": the opaque origin "null" (sandboxed frames, file:) */
    ENCORE_ORIGIN_EMALFORMED = -3, /* "malformed": not scheme://host[:port] as specified below */
    ENCORE_ORIGIN_EDENIED = -4,    /* "denied": well-formed, not in the allowlist */
} encore_origin_error;

/* The stable code string of an error above, "ok" for 0, "internal" otherwise. */
const char *encore_origin_error_code(int err);

typedef enum {
    ENCORE_ORIGIN_HTTP,
    ENCORE_ORIGIN_HTTPS,
} encore_origin_scheme;

/* A parsed origin. Two origins are the same when all three fields are equal. */
typedef struct {
    encore_origin_scheme scheme;
    uint16_t port;                         /* explicit, or the default (80 http, 443 https) */
    char host[ENCORE_ORIGIN_HOST_MAX + 1]; /* lowercase, NUL-terminated; IPv6 keeps brackets */
} encore_origin;

/* Parses s[0..len) (need not be NUL-terminated): scheme "http" or "https" (any case), "://",
 * a host, an optional ":port" (1-65535, decimal, no leading zero), nothing after it (no path,
 * not even "/", no userinfo, query or fragment). Hosts: dot-separated labels of [A-Za-z0-9-]
 * (1-63 each, no empty label, so no trailing dot), at most 253 characters; or "[" IPv6 "]" with
 * only hex digits, ':' and '.' inside (no zone id). Hosts are lowercased; a port equal to the
 * scheme's default is the same as none. Returns 0 with *out filled, ENCORE_ORIGIN_ENULL for
 * "null" (any case), or ENCORE_ORIGIN_EMALFORMED (also for s NULL, len 0 or over
 * ENCORE_ORIGIN_MAX_LEN, other schemes such as "file" or "chrome-extension"). */
int encore_origin_parse(const char *s, size_t len, encore_origin *out);

/* True when a and b are the same origin. */
bool encore_origin_equal(const encore_origin *a, const encore_origin *b);

typedef struct encore_origin_list encore_origin_list; /* opaque, immutable */

/* Most entries in one allowlist. */
#define ENCORE_ORIGIN_LIST_MAX 1024

/* Builds an allowlist from entries[0..n) (NUL-terminated strings in the same syntax; copied).
 * n may be 0 (nothing allowed). Returns the list, or NULL when an entry does not parse (or is
 * "null" or NULL), with *bad_index (may be NULL) set to its index, or when n > 1024 or entries
 * is NULL with n > 0 (*bad_index 0). Free with encore_origin_list_free(). */
encore_origin_list *encore_origin_list_new(const char *const *entries, size_t n,
                                           size_t *bad_index) G_GNUC_WARN_UNUSED_RESULT;

/* Frees the list. Accepts NULL. */
void encore_origin_list_free(encore_origin_list *list);

/* Number of entries. */
size_t encore_origin_list_size(const encore_origin_list *list);

/* Checks the Origin header value origin[0..len) against list. origin NULL means the request had
 * no Origin header. Returns 0 when an entry is the same origin, else ENCORE_ORIGIN_EMISSING,
 * ENCORE_ORIGIN_ENULL, ENCORE_ORIGIN_EMALFORMED or ENCORE_ORIGIN_EDENIED (also for list NULL).
 * Browsers always send Origin on websocket handshakes, so EMISSING means a non-browser client;
 * whether to admit those is the caller's policy (docs/accounts.md). */
int encore_origin_check(const encore_origin_list *list, const char *origin, size_t len);

#endif /* ENCORE_ACCOUNTS_ORIGIN_H */
