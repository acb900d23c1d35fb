/* Origin header parsing and the exact-match allowlist for websocket handshakes. The parser is
 * pure and bounds-checked (no allocation); a list is built once from configuration and never
 * changes, so checks need no lock. Never logs. */
#include <string.h>

#include "server/accounts/origin.h"

struct encore_origin_list {
    size_t n;
    encore_origin entries[]; /* n of them */
};

const char *encore_origin_error_code(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case ENCORE_ORIGIN_EMISSING:
        return "missing";
    case ENCORE_ORIGIN_ENULL:
        return "null";
    case ENCORE_ORIGIN_EMALFORMED:
        return "malformed";
    case ENCORE_ORIGIN_EDENIED:
        return "denied";
    default:
        return "internal";
    }
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive match of s[0..n) against lowercase word. */
static bool word_is(const char *s, size_t n, const char *word)
{
    if (strlen(word) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != word[i])
            return false;
    return true;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_hex(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9');
}

/* A DNS-style name or IPv4 literal: labels of [A-Za-z0-9-], 1-63 each, separated by dots. */
static bool reg_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > ENCORE_ORIGIN_HOST_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (is_alnum(s[i]) || s[i] == '-') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* "[...]" with 2-45 characters of hex digits, ':' and '.' inside, at least two colons. */
static bool ipv6_ok(const char *s, size_t n)
{
    if (n < 4 || n > 47 || s[0] != '[' || s[n - 1] != ']')
        return false;
    unsigned colons = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        if (s[i] == ':')
            colons++;
        else if (!is_hex(s[i]) && s[i] != '.')
            return false;
    }
    return colons >= 2;
}

/* ":port" body: 1-65535, no leading zero. */
static bool port_ok(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5 || s[0] == '0')
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

int encore_origin_parse(const char *s, size_t len, encore_origin *out)
{
    memset(out, 0, sizeof *out);
    if (!s || len == 0 || len > ENCORE_ORIGIN_MAX_LEN)
        return ENCORE_ORIGIN_EMALFORMED;
    if (word_is(s, len, "null"))
        return ENCORE_ORIGIN_ENULL;
    const char *sep = NULL;
    for (size_t i = 0; i + 3 <= len && !sep; i++)
        if (memcmp(s + i, "://", 3) == 0)
            sep = s + i;
    if (!sep)
        return ENCORE_ORIGIN_EMALFORMED;
    size_t scheme_len = (size_t)(sep - s);
    encore_origin o;
    memset(&o, 0, sizeof o);
    if (word_is(s, scheme_len, "http")) {
        o.scheme = ENCORE_ORIGIN_HTTP;
        o.port = 80;
    } else if (word_is(s, scheme_len, "https")) {
        o.scheme = ENCORE_ORIGIN_HTTPS;
        o.port = 443;
    } else {
        return ENCORE_ORIGIN_EMALFORMED;
    }
    const char *host = sep + 3;
    size_t rest = len - scheme_len - 3;
    /* The host ends at the port's colon; for IPv6 that is the colon after ']'. */
    size_t host_len = rest;
    if (rest > 0 && host[0] == '[') {
        const char *close = memchr(host, ']', rest);
        if (!close)
            return ENCORE_ORIGIN_EMALFORMED;
        host_len = (size_t)(close - host) + 1;
        if (!ipv6_ok(host, host_len))
            return ENCORE_ORIGIN_EMALFORMED;
    } else {
        const char *colon = memchr(host, ':', rest);
        if (colon)
            host_len = (size_t)(colon - host);
        if (!reg_name_ok(host, host_len))
            return ENCORE_ORIGIN_EMALFORMED;
    }
    if (host_len < rest) {
        if (host[host_len] != ':' || !port_ok(host + host_len + 1, rest - host_len - 1, &o.port))
            return ENCORE_ORIGIN_EMALFORMED;
    }
    for (size_t i = 0; i < host_len; i++)
        o.host[i] = lower(host[i]);
    o.host[host_len] = '\0';
    *out = o;
    return 0;
}

bool encore_origin_equal(const encore_origin *a, const encore_origin *b)
{
    return a->scheme == b->scheme && a->port == b->port && strcmp(a->host, b->host) == 0;
}

encore_origin_list *encore_origin_list_new(const char *const *entries, size_t n, size_t *bad_index)
{
    if (bad_index)
        *bad_index = 0;
    if ((n > 0 && !entries) || n > ENCORE_ORIGIN_LIST_MAX)
        return NULL;
    encore_origin_list *list = g_malloc0(sizeof *list + n * sizeof list->entries[0]);
    list->n = n;
    for (size_t i = 0; i < n; i++) {
        const char *e = entries[i];
        if (!e || encore_origin_parse(e, strlen(e), &list->entries[i]) != 0) {
            if (bad_index)
                *bad_index = i;
            g_free(list);
            return NULL;
        }
    }
    return list;
}

void encore_origin_list_free(encore_origin_list *list)
{
    g_free(list);
}

size_t encore_origin_list_size(const encore_origin_list *list)
{
    return list ? list->n : 0;
}

int encore_origin_check(const encore_origin_list *list, const char *origin, size_t len)
{
    encore_origin o;
    if (!origin)
        return ENCORE_ORIGIN_EMISSING;
    int rc = encore_origin_parse(origin, len, &o);
    if (rc != 0)
        return rc;
    for (size_t i = 0; list && i < list->n; i++)
        if (encore_origin_equal(&o, &list->entries[i]))
            return 0;
    return ENCORE_ORIGIN_EDENIED;
}
