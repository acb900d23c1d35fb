/* STUN parsing, short-term authentication and building for ICE-lite (see stun.h). Pure: any
 * thread, no allocation of its own (OpenSSL's HMAC may allocate inside), no logging. Every read
 * is bounds-checked against the datagram's length. */
#include "config.h"

#include "media/stun.h"

#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#define FINGERPRINT_XOR 0x5354554eu
#define SHA1_LEN 20
#define SHA256_LEN 32

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* CRC-32 (ISO-HDLC, as zlib and RFC 8489 section 14.7 use it), four bits at a time. */
static uint32_t crc32(const uint8_t *p, size_t n)
{
    static const uint32_t t[16] = {
        0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u,
        0x4db26158u, 0x5005713cu, 0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
        0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu,
    };
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        c = (c >> 4) ^ t[c & 15];
        c = (c >> 4) ^ t[c & 15];
    }
    return c ^ 0xffffffffu;
}

bool encore_stun_is_stun(const uint8_t *d, size_t len)
{
    return len >= ENCORE_STUN_HEADER_LEN && d[0] < 4 && rd32(d + 4) == ENCORE_STUN_MAGIC_COOKIE;
}

/* ---- parsing ----------------------------------------------------------------------------- */

/* Decodes an (XOR-)MAPPED-ADDRESS value. Returns false for a bad family or length. */
static bool parse_address(const uint8_t *v, size_t n, const uint8_t *hdr, bool xor,
                          struct sockaddr_storage *out)
{
    if (n < 4 || v[0] != 0)
        return false;
    uint16_t port = rd16(v + 2);
    if (xor)
        port ^= (uint16_t)(ENCORE_STUN_MAGIC_COOKIE >> 16);
    memset(out, 0, sizeof *out);
    if (v[1] == 0x01 && n == 8) {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        uint8_t a[4];
        for (int i = 0; i < 4; i++)
            a[i] = (uint8_t)(v[4 + i] ^ (xor? hdr[4 + i] : 0));
        memcpy(&sin->sin_addr, a, 4);
        return true;
    }
    if (v[1] == 0x02 && n == 20) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        /* The key is the magic cookie followed by the transaction id: header bytes 4-19. */
        for (int i = 0; i < 16; i++)
            sin6->sin6_addr.s6_addr[i] = (uint8_t)(v[4 + i] ^ (xor? hdr[4 + i] : 0));
        return true;
    }
    return false;
}

static bool known_required(uint16_t type)
{
    switch (type) {
    case ENCORE_STUN_ATTR_MAPPED_ADDRESS:
    case ENCORE_STUN_ATTR_USERNAME:
    case ENCORE_STUN_ATTR_MESSAGE_INTEGRITY:
    case ENCORE_STUN_ATTR_ERROR_CODE:
    case ENCORE_STUN_ATTR_UNKNOWN_ATTRIBUTES:
    case ENCORE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
    case ENCORE_STUN_ATTR_XOR_MAPPED_ADDRESS:
    case ENCORE_STUN_ATTR_PRIORITY:
    case ENCORE_STUN_ATTR_USE_CANDIDATE:
        return true;
    default:
        return false;
    }
}

/* Which attributes were seen already (only the first counts). */
enum {
    SEEN_USERNAME = 1 << 0,
    SEEN_PRIORITY = 1 << 1,
    SEEN_USE_CANDIDATE = 1 << 2,
    SEEN_CONTROLLING = 1 << 3,
    SEEN_CONTROLLED = 1 << 4,
    SEEN_XOR_MAPPED = 1 << 5,
    SEEN_ERROR_CODE = 1 << 6,
    SEEN_MAPPED = 1 << 7,
    SEEN_UNKNOWN_ATTRS = 1 << 8,
    SEEN_SOFTWARE = 1 << 9,
};

/* One attribute before MESSAGE-INTEGRITY. Returns false when a known attribute is malformed. */
static bool parse_attr(const uint8_t *d, uint16_t type, const uint8_t *v, size_t n, unsigned *seen,
                       encore_stun_msg *m)
{
    switch (type) {
    case ENCORE_STUN_ATTR_USERNAME:
        if (n == 0 || n > ENCORE_STUN_MAX_USERNAME)
            return false;
        if (!(*seen & SEEN_USERNAME)) {
            m->username = v;
            m->username_len = n;
        }
        *seen |= SEEN_USERNAME;
        return true;
    case ENCORE_STUN_ATTR_PRIORITY:
        if (n != 4)
            return false;
        if (!(*seen & SEEN_PRIORITY)) {
            m->has_priority = true;
            m->priority = rd32(v);
        }
        *seen |= SEEN_PRIORITY;
        return true;
    case ENCORE_STUN_ATTR_USE_CANDIDATE:
        if (n != 0)
            return false;
        m->use_candidate = true;
        return true;
    case ENCORE_STUN_ATTR_ICE_CONTROLLING:
        if (n != 8)
            return false;
        if (!(*seen & SEEN_CONTROLLING)) {
            m->has_ice_controlling = true;
            m->ice_controlling = rd64(v);
        }
        *seen |= SEEN_CONTROLLING;
        return true;
    case ENCORE_STUN_ATTR_ICE_CONTROLLED:
        if (n != 8)
            return false;
        if (!(*seen & SEEN_CONTROLLED)) {
            m->has_ice_controlled = true;
            m->ice_controlled = rd64(v);
        }
        *seen |= SEEN_CONTROLLED;
        return true;
    case ENCORE_STUN_ATTR_XOR_MAPPED_ADDRESS: {
        struct sockaddr_storage ss;
        if (!parse_address(v, n, d, true, &ss))
            return false;
        if (!(*seen & SEEN_XOR_MAPPED)) {
            m->has_xor_mapped = true;
            m->xor_mapped = ss;
        }
        *seen |= SEEN_XOR_MAPPED;
        return true;
    }
    case ENCORE_STUN_ATTR_MAPPED_ADDRESS: {
        struct sockaddr_storage ss;
        return parse_address(v, n, d, false, &ss);
    }
    case ENCORE_STUN_ATTR_ERROR_CODE: {
        /* 21 reserved bits, class (3-6), number (0-99), then a reason of at most 763 bytes. */
        if (n < 4 || n > 4 + 763 || v[0] != 0 || v[1] != 0 || (v[2] & 0xf8) != 0)
            return false;
        int cls = v[2] & 0x07, num = v[3];
        if (cls < 3 || cls > 6 || num > 99)
            return false;
        if (!(*seen & SEEN_ERROR_CODE))
            m->error_code = cls * 100 + num;
        *seen |= SEEN_ERROR_CODE;
        return true;
    }
    case ENCORE_STUN_ATTR_UNKNOWN_ATTRIBUTES:
        return n % 2 == 0;
    case ENCORE_STUN_ATTR_SOFTWARE:
        return n <= 763;
    default:
        if (type < 0x8000 && !known_required(type)) {
            if (m->n_unknown < ENCORE_STUN_MAX_UNKNOWN)
                m->unknown[m->n_unknown] = type;
            m->n_unknown++;
        }
        return true;
    }
}

int encore_stun_parse(const uint8_t *d, size_t len, encore_stun_msg *m)
{
    /* RFC 8489 section 5: the top two bits are zero (any method; the RFC 7983 range 0-3 of
     * encore_stun_is_stun() holds only the methods assigned so far). */
    if (!d || !m || len < ENCORE_STUN_HEADER_LEN || len > ENCORE_STUN_MAX_LEN ||
        (d[0] & 0xc0) != 0 || rd32(d + 4) != ENCORE_STUN_MAGIC_COOKIE)
        return ENCORE_STUN_ERR_NOT_STUN;
    size_t body = rd16(d + 2);
    if (body % 4 != 0 || body != len - ENCORE_STUN_HEADER_LEN)
        return ENCORE_STUN_ERR_NOT_STUN;
    memset(m, 0, sizeof *m);
    uint16_t type = rd16(d);
    m->method = (uint16_t)((type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2));
    m->cls = ((type >> 7) & 0x2) | ((type >> 4) & 0x1);
    memcpy(m->txid, d + 8, ENCORE_STUN_TXID_LEN);

    unsigned seen = 0;
    size_t off = ENCORE_STUN_HEADER_LEN;
    while (off < len) {
        if (m->has_fingerprint)
            return ENCORE_STUN_ERR_MALFORMED; /* FINGERPRINT must be last */
        if (len - off < 4)
            return ENCORE_STUN_ERR_MALFORMED;
        uint16_t at = rd16(d + off);
        size_t n = rd16(d + off + 2);
        size_t padded = (n + 3) & ~(size_t)3;
        if (padded > len - off - 4)
            return ENCORE_STUN_ERR_MALFORMED;
        const uint8_t *v = d + off + 4;
        if (at == ENCORE_STUN_ATTR_FINGERPRINT) {
            if (n != 4)
                return ENCORE_STUN_ERR_MALFORMED;
            /* The CRC covers everything before this attribute, with the length field as it is
             * (FINGERPRINT being last, it already counts FINGERPRINT itself). */
            if ((crc32(d, off) ^ FINGERPRINT_XOR) != rd32(v))
                return ENCORE_STUN_ERR_FINGERPRINT;
            m->has_fingerprint = true;
        } else if (at == ENCORE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256) {
            if (!m->integrity_sha256_at) {
                if (n < 16 || n > SHA256_LEN || n % 4 != 0)
                    return ENCORE_STUN_ERR_MALFORMED;
                m->integrity_sha256_at = off;
                m->integrity_sha256_len = n;
            }
        } else if (m->integrity_sha256_at) {
            /* RFC 8489 14.6: only FINGERPRINT may follow MESSAGE-INTEGRITY-SHA256. */
        } else if (at == ENCORE_STUN_ATTR_MESSAGE_INTEGRITY) {
            if (!m->integrity_at) {
                if (n != SHA1_LEN)
                    return ENCORE_STUN_ERR_MALFORMED;
                m->integrity_at = off;
            }
        } else if (m->integrity_at) {
            /* RFC 8489 14.5: everything else after MESSAGE-INTEGRITY is ignored. */
        } else if (!parse_attr(d, at, v, n, &seen, m)) {
            return ENCORE_STUN_ERR_MALFORMED;
        }
        off += 4 + padded;
    }
    return 0;
}

/* HMAC over d[0..at) with the header's length field rewritten to end `tail` bytes after `at`
 * (RFC 8489 14.5/14.6: the integrity attribute itself, and nothing after it). */
static bool hmac_prefix(const EVP_MD *md, const uint8_t *d, size_t at, size_t tail,
                        const uint8_t *key, size_t key_len, uint8_t *mac)
{
    uint8_t copy[ENCORE_STUN_MAX_LEN];
    if (at > sizeof copy || at < ENCORE_STUN_HEADER_LEN || key_len > INT32_MAX)
        return false;
    memcpy(copy, d, at);
    wr16(copy + 2, (uint16_t)(at + tail - ENCORE_STUN_HEADER_LEN));
    unsigned int mac_len = 0;
    static const uint8_t empty = 0;
    return HMAC(md, key_len ? key : &empty, (int)key_len, copy, at, mac, &mac_len) != NULL &&
           mac_len == (unsigned)EVP_MD_get_size(md);
}

int encore_stun_check_integrity(const uint8_t *d, size_t len, const encore_stun_msg *m,
                                const uint8_t *key, size_t key_len)
{
    uint8_t mac[SHA256_LEN];
    if (!d || !m || (!key && key_len))
        return ENCORE_STUN_ERR_INTEGRITY;
    if (m->integrity_sha256_at) {
        size_t at = m->integrity_sha256_at, n = m->integrity_sha256_len;
        if (at + 4 + n > len)
            return ENCORE_STUN_ERR_INTEGRITY;
        if (!hmac_prefix(EVP_sha256(), d, at, 4 + n, key, key_len, mac))
            return ENCORE_STUN_ERR_INTEGRITY;
        return CRYPTO_memcmp(mac, d + at + 4, n) == 0 ? 0 : ENCORE_STUN_ERR_INTEGRITY;
    }
    if (m->integrity_at) {
        size_t at = m->integrity_at;
        if (at + 4 + SHA1_LEN > len)
            return ENCORE_STUN_ERR_INTEGRITY;
        if (!hmac_prefix(EVP_sha1(), d, at, 4 + SHA1_LEN, key, key_len, mac))
            return ENCORE_STUN_ERR_INTEGRITY;
        return CRYPTO_memcmp(mac, d + at + 4, SHA1_LEN) == 0 ? 0 : ENCORE_STUN_ERR_INTEGRITY;
    }
    return ENCORE_STUN_ERR_NO_INTEGRITY;
}

/* ---- building ---------------------------------------------------------------------------- */

void encore_stun_writer_init(encore_stun_writer *w, uint8_t *buf, size_t cap, uint16_t method,
                             int cls, const uint8_t txid[ENCORE_STUN_TXID_LEN])
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
    if (!buf || !txid || method > 0xfff || cls < 0 || cls > 3) {
        w->err = ENCORE_STUN_ERR_INVALID;
        return;
    }
    if (cap < ENCORE_STUN_HEADER_LEN) {
        w->err = ENCORE_STUN_ERR_NOSPACE;
        return;
    }
    uint16_t type = (uint16_t)((method & 0x000f) | ((method & 0x0070) << 1) |
                               ((method & 0x0f80) << 2) | ((cls & 1) << 4) | ((cls & 2) << 7));
    wr16(buf, type);
    wr16(buf + 2, 0);
    wr32(buf + 4, ENCORE_STUN_MAGIC_COOKIE);
    memcpy(buf + 8, txid, ENCORE_STUN_TXID_LEN);
    w->len = ENCORE_STUN_HEADER_LEN;
}

/* Reserves an attribute of n value bytes (zero padded) and returns its value pointer, or NULL
 * with w->err set. */
static uint8_t *put_header(encore_stun_writer *w, uint16_t type, size_t n)
{
    if (w->err)
        return NULL;
    if (w->sealed || n > 0xffff) {
        w->err = ENCORE_STUN_ERR_INVALID;
        return NULL;
    }
    size_t padded = (n + 3) & ~(size_t)3;
    if (w->cap - w->len < 4 + padded || w->len + 4 + padded > ENCORE_STUN_MAX_LEN) {
        w->err = ENCORE_STUN_ERR_NOSPACE;
        return NULL;
    }
    uint8_t *p = w->buf + w->len;
    wr16(p, type);
    wr16(p + 2, (uint16_t)n);
    memset(p + 4 + n, 0, padded - n);
    w->len += 4 + padded;
    wr16(w->buf + 2, (uint16_t)(w->len - ENCORE_STUN_HEADER_LEN));
    return p + 4;
}

void encore_stun_put(encore_stun_writer *w, uint16_t type, const void *value, size_t len)
{
    if (!w->err && w->has_integrity) {
        w->err = ENCORE_STUN_ERR_INVALID;
        return;
    }
    if (!value && len) {
        if (!w->err)
            w->err = ENCORE_STUN_ERR_INVALID;
        return;
    }
    uint8_t *p = put_header(w, type, len);
    if (p && len)
        memcpy(p, value, len);
}

void encore_stun_put_u32(encore_stun_writer *w, uint16_t type, uint32_t value)
{
    uint8_t v[4];
    wr32(v, value);
    encore_stun_put(w, type, v, sizeof v);
}

void encore_stun_put_u64(encore_stun_writer *w, uint16_t type, uint64_t value)
{
    uint8_t v[8];
    wr32(v, (uint32_t)(value >> 32));
    wr32(v + 4, (uint32_t)value);
    encore_stun_put(w, type, v, sizeof v);
}

void encore_stun_put_xor_address(encore_stun_writer *w, uint16_t type, const struct sockaddr *sa)
{
    uint8_t v[20];
    size_t n;
    if (w->err)
        return;
    if (!sa) {
        w->err = ENCORE_STUN_ERR_INVALID;
        return;
    }
    const uint8_t *key = w->buf + 4; /* magic cookie, then the transaction id */
    v[0] = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        const uint8_t *a = (const uint8_t *)&sin->sin_addr;
        v[1] = 0x01;
        wr16(v + 2, (uint16_t)(ntohs(sin->sin_port) ^ (ENCORE_STUN_MAGIC_COOKIE >> 16)));
        for (int i = 0; i < 4; i++)
            v[4 + i] = (uint8_t)(a[i] ^ key[i]);
        n = 8;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        v[1] = 0x02;
        wr16(v + 2, (uint16_t)(ntohs(sin6->sin6_port) ^ (ENCORE_STUN_MAGIC_COOKIE >> 16)));
        for (int i = 0; i < 16; i++)
            v[4 + i] = (uint8_t)(sin6->sin6_addr.s6_addr[i] ^ key[i]);
        n = 20;
    } else {
        w->err = ENCORE_STUN_ERR_INVALID;
        return;
    }
    encore_stun_put(w, type, v, n);
}

static const char *reason_of(int code)
{
    switch (code) {
    case ENCORE_STUN_CODE_BAD_REQUEST:
        return "Bad Request";
    case ENCORE_STUN_CODE_UNAUTHENTICATED:
        return "Unauthenticated";
    case ENCORE_STUN_CODE_UNKNOWN_ATTRIBUTE:
        return "Unknown Attribute";
    case ENCORE_STUN_CODE_ROLE_CONFLICT:
        return "Role Conflict";
    default:
        return "";
    }
}

void encore_stun_put_error_code(encore_stun_writer *w, int code, const char *reason)
{
    uint8_t v[4 + 128];
    if (w->err)
        return;
    if (code < 300 || code > 699) {
        w->err = ENCORE_STUN_ERR_INVALID;
        return;
    }
    if (!reason)
        reason = reason_of(code);
    size_t rn = strnlen(reason, sizeof v - 4);
    v[0] = 0;
    v[1] = 0;
    v[2] = (uint8_t)(code / 100);
    v[3] = (uint8_t)(code % 100);
    memcpy(v + 4, reason, rn);
    encore_stun_put(w, ENCORE_STUN_ATTR_ERROR_CODE, v, 4 + rn);
}

static void put_hmac(encore_stun_writer *w, const EVP_MD *md, uint16_t type, size_t mac_len,
                     const uint8_t *key, size_t key_len)
{
    if (w->err)
        return;
    if ((!key && key_len) || w->sealed) {
        w->err = ENCORE_STUN_ERR_INVALID;
        return;
    }
    size_t at = w->len;
    uint8_t *p = put_header(w, type, mac_len); /* sets the length to include this attribute */
    if (!p)
        return;
    uint8_t mac[SHA256_LEN];
    unsigned int n = 0;
    static const uint8_t empty = 0;
    if (key_len > INT32_MAX ||
        !HMAC(md, key_len ? key : &empty, (int)key_len, w->buf, at, mac, &n) || n != mac_len) {
        w->err = ENCORE_STUN_ERR_INVALID;
        return;
    }
    memcpy(p, mac, mac_len);
    w->has_integrity = true;
}

void encore_stun_put_integrity(encore_stun_writer *w, const uint8_t *key, size_t key_len)
{
    if (!w->err && w->has_integrity) {
        w->err = ENCORE_STUN_ERR_INVALID;
        return;
    }
    put_hmac(w, EVP_sha1(), ENCORE_STUN_ATTR_MESSAGE_INTEGRITY, SHA1_LEN, key, key_len);
}

void encore_stun_put_integrity_sha256(encore_stun_writer *w, const uint8_t *key, size_t key_len)
{
    put_hmac(w, EVP_sha256(), ENCORE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256, SHA256_LEN, key, key_len);
}

void encore_stun_put_fingerprint(encore_stun_writer *w)
{
    if (w->err)
        return;
    size_t at = w->len;
    uint8_t *p = put_header(w, ENCORE_STUN_ATTR_FINGERPRINT, 4);
    if (!p)
        return;
    wr32(p, crc32(w->buf, at) ^ FINGERPRINT_XOR);
    w->sealed = true;
}

int encore_stun_finish(const encore_stun_writer *w, size_t *len)
{
    if (w->err)
        return w->err;
    if (len)
        *len = w->len;
    return 0;
}

int encore_stun_build_response(const encore_stun_msg *req, const struct sockaddr *from,
                               int error_code, const uint8_t *key, size_t key_len, uint8_t *out,
                               size_t cap, size_t *out_len)
{
    if (!req || !out_len || (error_code == 0 && !from))
        return ENCORE_STUN_ERR_INVALID;
    encore_stun_writer w;
    encore_stun_writer_init(&w, out, cap, req->method,
                            error_code ? ENCORE_STUN_ERROR : ENCORE_STUN_SUCCESS, req->txid);
    if (error_code == 0) {
        encore_stun_put_xor_address(&w, ENCORE_STUN_ATTR_XOR_MAPPED_ADDRESS, from);
    } else {
        encore_stun_put_error_code(&w, error_code, NULL);
        if (error_code == ENCORE_STUN_CODE_UNKNOWN_ATTRIBUTE) {
            uint8_t list[2 * ENCORE_STUN_MAX_UNKNOWN];
            size_t n = MIN(req->n_unknown, (size_t)ENCORE_STUN_MAX_UNKNOWN);
            for (size_t i = 0; i < n; i++)
                wr16(list + 2 * i, req->unknown[i]);
            encore_stun_put(&w, ENCORE_STUN_ATTR_UNKNOWN_ATTRIBUTES, list, 2 * n);
        }
    }
    if (key) {
        if (req->integrity_sha256_at)
            encore_stun_put_integrity_sha256(&w, key, key_len);
        else
            encore_stun_put_integrity(&w, key, key_len);
    }
    encore_stun_put_fingerprint(&w);
    return encore_stun_finish(&w, out_len);
}

const char *encore_stun_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case ENCORE_STUN_ERR_NOT_STUN:
        return "not a STUN message";
    case ENCORE_STUN_ERR_MALFORMED:
        return "malformed STUN attributes";
    case ENCORE_STUN_ERR_FINGERPRINT:
        return "STUN fingerprint mismatch";
    case ENCORE_STUN_ERR_NO_INTEGRITY:
        return "no MESSAGE-INTEGRITY";
    case ENCORE_STUN_ERR_INTEGRITY:
        return "MESSAGE-INTEGRITY does not verify";
    case ENCORE_STUN_ERR_NOSPACE:
        return "STUN buffer too small";
    case ENCORE_STUN_ERR_INVALID:
        return "invalid STUN builder argument";
    default:
        return "unknown STUN error";
    }
}
