/* Unit tests for media/stun.c: the RFC 5769 test vectors (request, IPv4 and IPv6 responses with
 * their short-term password), every refusal of the parser, the builder and the answers ICE-lite
 * gives (success, 400/401 without integrity, 420 with UNKNOWN-ATTRIBUTES, 487, SHA-256). */
#include <arpa/inet.h>
#include <glib.h>
#include <string.h>

#include "media/stun.h"

static const char PWD[] = "VOkJxbRl1RmTxUk/WvJxBt";

static GByteArray *hex(const char *h)
{
    GByteArray *b = g_byte_array_new();
    for (size_t i = 0; h[i] && h[i + 1]; i += 2) {
        guint8 v = (guint8)(g_ascii_xdigit_value(h[i]) << 4 | g_ascii_xdigit_value(h[i + 1]));
        g_byte_array_append(b, &v, 1);
    }
    return b;
}

/* RFC 5769 section 2.1: a Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME
 * "evtj:h6vY" (padded with spaces), MESSAGE-INTEGRITY and FINGERPRINT. */
#define RFC5769_REQUEST                                                                            \
    "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e00" \
    "01ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5" \
    "b2d3f249c1b571a280280004e57a3bcf"
/* 2.2: the success response, XOR-MAPPED-ADDRESS 192.0.2.1:32853. */
#define RFC5769_IPV4                                                                               \
    "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112" \
    "a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96"
/* 2.3: the same with 2001:db8:1234:5678:11:2233:4455:6677 port 32853. */
#define RFC5769_IPV6                                                                               \
    "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a1470113" \
    "a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004c8fb0b4c"

static const uint8_t TXID[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

static int check_pwd(const GByteArray *b, const encore_stun_msg *m, const char *pwd)
{
    return encore_stun_check_integrity(b->data, b->len, m, (const uint8_t *)pwd, strlen(pwd));
}

static void test_rfc5769_request(void)
{
    GByteArray *b = hex(RFC5769_REQUEST);
    g_assert_cmpuint(b->len, ==, 108);
    g_assert_true(encore_stun_is_stun(b->data, b->len));
    encore_stun_msg m;
    g_assert_cmpint(encore_stun_parse(b->data, b->len, &m), ==, 0);
    g_assert_cmpuint(m.method, ==, ENCORE_STUN_BINDING);
    g_assert_cmpint(m.cls, ==, ENCORE_STUN_REQUEST);
    g_assert_cmpmem(m.txid, 12, TXID, 12);
    g_assert_cmpmem(m.username, m.username_len, "evtj:h6vY", 9);
    g_assert_true(m.has_priority);
    g_assert_cmphex(m.priority, ==, 0x6e0001ff);
    g_assert_true(m.has_ice_controlled);
    g_assert_cmphex(m.ice_controlled, ==, G_GUINT64_CONSTANT(0x932ff9b151263b36));
    g_assert_false(m.has_ice_controlling);
    g_assert_false(m.use_candidate);
    g_assert_cmpuint(m.integrity_at, ==, 76);
    g_assert_cmpuint(m.integrity_sha256_at, ==, 0);
    g_assert_true(m.has_fingerprint);
    g_assert_cmpuint(m.n_unknown, ==, 0);
    g_assert_cmpint(check_pwd(b, &m, PWD), ==, 0);
    g_assert_cmpint(check_pwd(b, &m, "VOkJxbRl1RmTxUk/WvJxBu"), ==, ENCORE_STUN_ERR_INTEGRITY);
    g_assert_cmpint(check_pwd(b, &m, ""), ==, ENCORE_STUN_ERR_INTEGRITY);

    /* One changed byte in the USERNAME padding (not covered by anything but the CRC). */
    b->data[73] ^= 0x01;
    g_assert_cmpint(encore_stun_parse(b->data, b->len, &m), ==, ENCORE_STUN_ERR_FINGERPRINT);
    g_byte_array_unref(b);
}

static void check_response(const char *vector, int family, const char *ip)
{
    GByteArray *b = hex(vector);
    encore_stun_msg m;
    g_assert_cmpint(encore_stun_parse(b->data, b->len, &m), ==, 0);
    g_assert_cmpuint(m.method, ==, ENCORE_STUN_BINDING);
    g_assert_cmpint(m.cls, ==, ENCORE_STUN_SUCCESS);
    g_assert_cmpmem(m.txid, 12, TXID, 12);
    g_assert_true(m.has_xor_mapped);
    g_assert_cmpint(m.xor_mapped.ss_family, ==, family);
    char text[INET6_ADDRSTRLEN];
    if (family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&m.xor_mapped;
        g_assert_cmpuint(ntohs(sin->sin_port), ==, 32853);
        inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&m.xor_mapped;
        g_assert_cmpuint(ntohs(sin6->sin6_port), ==, 32853);
        inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
    }
    g_assert_cmpstr(text, ==, ip);
    g_assert_true(m.has_fingerprint);
    g_assert_null(m.username);
    g_assert_cmpint(check_pwd(b, &m, PWD), ==, 0);
    g_assert_cmpint(check_pwd(b, &m, "x"), ==, ENCORE_STUN_ERR_INTEGRITY);

    /* Our own answer to the sample request for the same address carries byte for byte the same
     * XOR-MAPPED-ADDRESS, and verifies. */
    GByteArray *req = hex(RFC5769_REQUEST);
    encore_stun_msg rm;
    g_assert_cmpint(encore_stun_parse(req->data, req->len, &rm), ==, 0);
    uint8_t out[256];
    size_t n = 0;
    g_assert_cmpint(encore_stun_build_response(&rm, (const struct sockaddr *)&m.xor_mapped, 0,
                                               (const uint8_t *)PWD, strlen(PWD), out, sizeof out,
                                               &n),
                    ==, 0);
    size_t alen = family == AF_INET ? 12 : 24;
    g_assert_cmpuint(n, ==, 20 + alen + 24 + 8);
    g_assert_cmpmem(out + 20, alen, b->data + 36, alen); /* after the 16-byte SOFTWARE */
    encore_stun_msg om;
    g_assert_cmpint(encore_stun_parse(out, n, &om), ==, 0);
    g_assert_cmpint(om.cls, ==, ENCORE_STUN_SUCCESS);
    g_assert_cmpint(encore_stun_check_integrity(out, n, &om, (const uint8_t *)PWD, strlen(PWD)), ==,
                    0);
    g_assert_cmpmem(&om.xor_mapped, sizeof om.xor_mapped, &m.xor_mapped, sizeof m.xor_mapped);
    g_byte_array_unref(req);
    g_byte_array_unref(b);
}

static void test_rfc5769_ipv4(void)
{
    check_response(RFC5769_IPV4, AF_INET, "192.0.2.1");
}

static void test_rfc5769_ipv6(void)
{
    check_response(RFC5769_IPV6, AF_INET6, "2001:db8:1234:5678:11:2233:4455:6677");
}

/* A message built from raw attributes (header fixed up), for the refusals. */
static size_t raw(uint8_t *buf, uint16_t type, const uint8_t *attrs, size_t n)
{
    buf[0] = (uint8_t)(type >> 8);
    buf[1] = (uint8_t)type;
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    buf[4] = 0x21;
    buf[5] = 0x12;
    buf[6] = 0xa4;
    buf[7] = 0x42;
    memcpy(buf + 8, TXID, 12);
    if (n)
        memcpy(buf + 20, attrs, n);
    return 20 + n;
}

static void test_not_stun(void)
{
    uint8_t buf[64];
    encore_stun_msg m;
    size_t n = raw(buf, 0x0001, NULL, 0);
    g_assert_cmpint(encore_stun_parse(buf, n, &m), ==, 0); /* an empty Binding request */
    g_assert_cmpint(encore_stun_parse(buf, 19, &m), ==, ENCORE_STUN_ERR_NOT_STUN);
    g_assert_cmpint(encore_stun_parse(buf, 0, &m), ==, ENCORE_STUN_ERR_NOT_STUN);
    g_assert_cmpint(encore_stun_parse(NULL, 20, &m), ==, ENCORE_STUN_ERR_NOT_STUN);
    buf[0] = 0x40; /* top bits must be zero */
    g_assert_false(encore_stun_is_stun(buf, n));
    g_assert_cmpint(encore_stun_parse(buf, n, &m), ==, ENCORE_STUN_ERR_NOT_STUN);
    buf[0] = 0x00;
    buf[7] = 0x43; /* cookie */
    g_assert_cmpint(encore_stun_parse(buf, n, &m), ==, ENCORE_STUN_ERR_NOT_STUN);
    buf[7] = 0x42;
    buf[3] = 4; /* length says 4, nothing follows */
    g_assert_cmpint(encore_stun_parse(buf, n, &m), ==, ENCORE_STUN_ERR_NOT_STUN);
    static const uint8_t pad2[] = {0, 0};
    n = raw(buf, 0x0001, pad2, 2); /* length not a multiple of 4 */
    g_assert_cmpint(encore_stun_parse(buf, n, &m), ==, ENCORE_STUN_ERR_NOT_STUN);
    /* RTP and DTLS first bytes are not STUN (RFC 7983). */
    buf[0] = 0x80;
    g_assert_false(encore_stun_is_stun(buf, n));
    buf[0] = 0x16;
    g_assert_false(encore_stun_is_stun(buf, n));
    uint8_t big[ENCORE_STUN_MAX_LEN + 4];
    memset(big, 0, sizeof big);
    n = raw(big, 0x0001, big + 20, sizeof big - 20);
    g_assert_cmpint(encore_stun_parse(big, n, &m), ==, ENCORE_STUN_ERR_NOT_STUN);
}

static void test_malformed(void)
{
    uint8_t buf[128];
    encore_stun_msg m;
    static const uint8_t overrun[] = {0x00, 0x06, 0x00, 0x40, 'a', 'b', 'c', 'd'};
    size_t n = raw(buf, 0x0001, overrun, sizeof overrun);
    g_assert_cmpint(encore_stun_parse(buf, n, &m), ==, ENCORE_STUN_ERR_MALFORMED);
    static const uint8_t cut_header[] = {0x00, 0x24, 0x00, 0x04, 0, 0, 0, 1, 0x80, 0x28, 0, 4};
    g_assert_cmpint(encore_stun_parse(buf, raw(buf, 1, cut_header, 12), &m), ==,
                    ENCORE_STUN_ERR_MALFORMED);
    static const uint8_t bad_priority[] = {0x00, 0x24, 0x00, 0x02, 0, 1, 0, 0};
    g_assert_cmpint(encore_stun_parse(buf, raw(buf, 1, bad_priority, 8), &m), ==,
                    ENCORE_STUN_ERR_MALFORMED);
    static const uint8_t bad_use_candidate[] = {0x00, 0x25, 0x00, 0x04, 0, 0, 0, 0};
    g_assert_cmpint(encore_stun_parse(buf, raw(buf, 1, bad_use_candidate, 8), &m), ==,
                    ENCORE_STUN_ERR_MALFORMED);
    static const uint8_t bad_controlling[] = {0x80, 0x2a, 0x00, 0x04, 0, 0, 0, 0};
    g_assert_cmpint(encore_stun_parse(buf, raw(buf, 1, bad_controlling, 8), &m), ==,
                    ENCORE_STUN_ERR_MALFORMED);
    static const uint8_t bad_mi[] = {0x00, 0x08, 0x00, 0x04, 0, 0, 0, 0};
    g_assert_cmpint(encore_stun_parse(buf, raw(buf, 1, bad_mi, 8), &m), ==,
                    ENCORE_STUN_ERR_MALFORMED);
    static const uint8_t empty_username[] = {0x00, 0x06, 0x00, 0x00};
    g_assert_cmpint(encore_stun_parse(buf, raw(buf, 1, empty_username, 4), &m), ==,
                    ENCORE_STUN_ERR_MALFORMED);
    static const uint8_t bad_family[] = {0x00, 0x20, 0x00, 0x08, 0, 3, 0, 1, 1, 2, 3, 4};
    g_assert_cmpint(encore_stun_parse(buf, raw(buf, 0x0101, bad_family, 12), &m), ==,
                    ENCORE_STUN_ERR_MALFORMED);
    static const uint8_t v4_as_v6[] = {0x00, 0x20, 0x00, 0x08, 0, 2, 0, 1, 1, 2, 3, 4};
    g_assert_cmpint(encore_stun_parse(buf, raw(buf, 0x0101, v4_as_v6, 12), &m), ==,
                    ENCORE_STUN_ERR_MALFORMED);
    static const uint8_t bad_error_class[] = {0x00, 0x09, 0x00, 0x04, 0, 0, 7, 1};
    g_assert_cmpint(encore_stun_parse(buf, raw(buf, 0x0111, bad_error_class, 8), &m), ==,
                    ENCORE_STUN_ERR_MALFORMED);
    static const uint8_t bad_error_number[] = {0x00, 0x09, 0x00, 0x04, 0, 0, 4, 100};
    g_assert_cmpint(encore_stun_parse(buf, raw(buf, 0x0111, bad_error_number, 8), &m), ==,
                    ENCORE_STUN_ERR_MALFORMED);

    /* An attribute after a FINGERPRINT whose CRC is right (computed with the final length). */
    GByteArray *after = hex("000100142112a442b7e7a701bc34d686fa87dfae002400040000000180280004832a"
                            "d74f80220000");
    g_assert_cmpint(encore_stun_parse(after->data, after->len, &m), ==, ENCORE_STUN_ERR_MALFORMED);
    /* Without the trailing attribute (and its length), the same FINGERPRINT no longer matches. */
    after->data[3] -= 4;
    g_assert_cmpint(encore_stun_parse(after->data, after->len - 4, &m), ==,
                    ENCORE_STUN_ERR_FINGERPRINT);
    g_byte_array_unref(after);
}

static void test_unknown_and_ignored(void)
{
    uint8_t buf[256];
    encore_stun_msg m;
    /* Comprehension-required 0x7777 and 0x0003 are listed, optional 0xC057 is not, the first
     * PRIORITY wins, attributes after MESSAGE-INTEGRITY (even unknown required ones and a bad
     * PRIORITY) are ignored. */
    encore_stun_writer w;
    encore_stun_writer_init(&w, buf, sizeof buf, ENCORE_STUN_BINDING, ENCORE_STUN_REQUEST, TXID);
    encore_stun_put(&w, ENCORE_STUN_ATTR_USERNAME, "abcd:efgh", 9);
    encore_stun_put(&w, 0x7777, "x", 1);
    encore_stun_put(&w, 0xc057, "yy", 2);
    encore_stun_put_u32(&w, ENCORE_STUN_ATTR_PRIORITY, 7);
    encore_stun_put_u32(&w, ENCORE_STUN_ATTR_PRIORITY, 8);
    encore_stun_put(&w, 0x0003, NULL, 0);
    encore_stun_put_integrity(&w, (const uint8_t *)"pw", 2);
    size_t n = 0;
    g_assert_cmpint(encore_stun_finish(&w, &n), ==, 0);
    static const uint8_t after[] = {0x12, 0x34, 0x00, 0x00, 0x00, 0x24, 0x00, 0x01, 9, 0, 0, 0};
    memcpy(buf + n, after, sizeof after);
    n += sizeof after;
    buf[2] = (uint8_t)((n - 20) >> 8);
    buf[3] = (uint8_t)(n - 20);
    g_assert_cmpint(encore_stun_parse(buf, n, &m), ==, 0);
    g_assert_cmpuint(m.n_unknown, ==, 2);
    g_assert_cmphex(m.unknown[0], ==, 0x7777);
    g_assert_cmphex(m.unknown[1], ==, 0x0003);
    g_assert_cmpuint(m.priority, ==, 7);
    g_assert_false(m.has_fingerprint);
    /* The integrity still verifies: it covers only what precedes it. */
    g_assert_cmpint(encore_stun_check_integrity(buf, n, &m, (const uint8_t *)"pw", 2), ==, 0);

    /* The 420 answer lists both, with integrity and fingerprint. */
    struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(9)};
    uint8_t out[256];
    size_t on = 0;
    g_assert_cmpint(encore_stun_build_response(&m, (const struct sockaddr *)&from,
                                               ENCORE_STUN_CODE_UNKNOWN_ATTRIBUTE,
                                               (const uint8_t *)"pw", 2, out, sizeof out, &on),
                    ==, 0);
    encore_stun_msg r;
    g_assert_cmpint(encore_stun_parse(out, on, &r), ==, 0);
    g_assert_cmpint(r.cls, ==, ENCORE_STUN_ERROR);
    g_assert_cmpint(r.error_code, ==, 420);
    g_assert_false(r.has_xor_mapped);
    g_assert_true(r.has_fingerprint);
    g_assert_cmpint(encore_stun_check_integrity(out, on, &r, (const uint8_t *)"pw", 2), ==, 0);
    /* ERROR-CODE "Unknown Attribute" (4 + 17 bytes, padded to 24), then UNKNOWN-ATTRIBUTES. */
    static const uint8_t expect[] = {0x00, 0x09, 0x00, 0x15, 0,    0,    4,    20,   'U',
                                     'n',  'k',  'n',  'o',  'w',  'n',  ' ',  'A',  't',
                                     't',  'r',  'i',  'b',  'u',  't',  'e',  0,    0,
                                     0,    0x00, 0x0a, 0x00, 0x04, 0x77, 0x77, 0x00, 0x03};
    g_assert_cmpmem(out + 20, sizeof expect, expect, sizeof expect);
}

static void test_answers(void)
{
    uint8_t buf[256], out[256];
    size_t n = 0, on = 0;
    encore_stun_msg m, r;
    encore_stun_writer w;
    encore_stun_writer_init(&w, buf, sizeof buf, ENCORE_STUN_BINDING, ENCORE_STUN_REQUEST, TXID);
    encore_stun_put(&w, ENCORE_STUN_ATTR_USERNAME, "abcd:efgh", 9);
    encore_stun_put_u64(&w, ENCORE_STUN_ATTR_ICE_CONTROLLED, 1);
    encore_stun_put_integrity_sha256(&w, (const uint8_t *)"secret", 6);
    encore_stun_put_fingerprint(&w);
    g_assert_cmpint(encore_stun_finish(&w, &n), ==, 0);
    g_assert_cmpint(encore_stun_parse(buf, n, &m), ==, 0);
    g_assert_cmpuint(m.integrity_at, ==, 0);
    g_assert_cmpuint(m.integrity_sha256_len, ==, 32);
    g_assert_cmpint(encore_stun_check_integrity(buf, n, &m, (const uint8_t *)"secret", 6), ==, 0);
    g_assert_cmpint(encore_stun_check_integrity(buf, n, &m, (const uint8_t *)"secreT", 6), ==,
                    ENCORE_STUN_ERR_INTEGRITY);

    /* 487 answered with MESSAGE-INTEGRITY-SHA256 since the request used it. */
    struct sockaddr_in6 from = {.sin6_family = AF_INET6, .sin6_port = htons(5000)};
    from.sin6_addr.s6_addr[0] = 0xfe;
    g_assert_cmpint(encore_stun_build_response(&m, (const struct sockaddr *)&from,
                                               ENCORE_STUN_CODE_ROLE_CONFLICT,
                                               (const uint8_t *)"secret", 6, out, sizeof out, &on),
                    ==, 0);
    g_assert_cmpint(encore_stun_parse(out, on, &r), ==, 0);
    g_assert_cmpint(r.error_code, ==, 487);
    g_assert_cmpuint(r.integrity_sha256_at, >, 0);
    g_assert_cmpint(encore_stun_check_integrity(out, on, &r, (const uint8_t *)"secret", 6), ==, 0);

    /* 401 without a key: no integrity at all, a fingerprint still. */
    g_assert_cmpint(encore_stun_build_response(&m, NULL, ENCORE_STUN_CODE_UNAUTHENTICATED, NULL, 0,
                                               out, sizeof out, &on),
                    ==, 0);
    g_assert_cmpint(encore_stun_parse(out, on, &r), ==, 0);
    g_assert_cmpint(r.error_code, ==, 401);
    g_assert_true(r.has_fingerprint);
    g_assert_cmpint(encore_stun_check_integrity(out, on, &r, (const uint8_t *)"secret", 6), ==,
                    ENCORE_STUN_ERR_NO_INTEGRITY);
    g_assert_cmpuint(on, ==, 20 + 4 + 20 + 8); /* ERROR-CODE "Unauthenticated", FINGERPRINT */

    /* Success with IPv6 and the classic MESSAGE-INTEGRITY. */
    m.integrity_sha256_at = 0;
    g_assert_cmpint(encore_stun_build_response(&m, (const struct sockaddr *)&from, 0,
                                               (const uint8_t *)"k", 1, out, sizeof out, &on),
                    ==, 0);
    g_assert_cmpint(encore_stun_parse(out, on, &r), ==, 0);
    g_assert_cmpint(r.cls, ==, ENCORE_STUN_SUCCESS);
    g_assert_cmpuint(r.integrity_at, ==, 44);
    g_assert_cmpmem(&r.xor_mapped, sizeof from, &from, sizeof from);
    g_assert_cmpint(encore_stun_check_integrity(out, on, &r, (const uint8_t *)"k", 1), ==, 0);

    /* A success needs an address; the buffer must hold the answer. */
    g_assert_cmpint(encore_stun_build_response(&m, NULL, 0, NULL, 0, out, sizeof out, &on), ==,
                    ENCORE_STUN_ERR_INVALID);
    g_assert_cmpint(encore_stun_build_response(&m, (const struct sockaddr *)&from, 0,
                                               (const uint8_t *)"k", 1, out, 60, &on),
                    ==, ENCORE_STUN_ERR_NOSPACE);
}

static void test_writer(void)
{
    uint8_t buf[64];
    size_t n = 0;
    encore_stun_writer w;
    encore_stun_writer_init(&w, buf, sizeof buf, 0x0fff, ENCORE_STUN_INDICATION, TXID);
    encore_stun_put(&w, ENCORE_STUN_ATTR_SOFTWARE, "abc", 3);
    g_assert_cmpint(encore_stun_finish(&w, &n), ==, 0);
    g_assert_cmpuint(n, ==, 28);
    static const uint8_t head[] = {0x3e, 0xff, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42};
    g_assert_cmpmem(buf, 8, head, 8);
    static const uint8_t attr[] = {0x80, 0x22, 0x00, 0x03, 'a', 'b', 'c', 0};
    g_assert_cmpmem(buf + 20, 8, attr, 8);
    encore_stun_msg m;
    g_assert_cmpint(encore_stun_parse(buf, n, &m), ==, 0);
    g_assert_cmpuint(m.method, ==, 0x0fff);
    g_assert_cmpint(m.cls, ==, ENCORE_STUN_INDICATION);

    /* Binding success is 0x0101, error 0x0111. */
    encore_stun_writer_init(&w, buf, sizeof buf, ENCORE_STUN_BINDING, ENCORE_STUN_ERROR, TXID);
    g_assert_cmphex(buf[0] << 8 | buf[1], ==, 0x0111);

    /* Nothing after FINGERPRINT; MESSAGE-INTEGRITY only once; errors stick. */
    encore_stun_writer_init(&w, buf, sizeof buf, ENCORE_STUN_BINDING, ENCORE_STUN_REQUEST, TXID);
    encore_stun_put_fingerprint(&w);
    encore_stun_put_u32(&w, ENCORE_STUN_ATTR_PRIORITY, 1);
    g_assert_cmpint(encore_stun_finish(&w, &n), ==, ENCORE_STUN_ERR_INVALID);
    encore_stun_writer_init(&w, buf, sizeof buf, ENCORE_STUN_BINDING, ENCORE_STUN_REQUEST, TXID);
    encore_stun_put_integrity(&w, (const uint8_t *)"k", 1);
    encore_stun_put_integrity(&w, (const uint8_t *)"k", 1);
    g_assert_cmpint(encore_stun_finish(&w, &n), ==, ENCORE_STUN_ERR_INVALID);
    encore_stun_writer_init(&w, buf, sizeof buf, ENCORE_STUN_BINDING, ENCORE_STUN_REQUEST, TXID);
    encore_stun_put(&w, ENCORE_STUN_ATTR_SOFTWARE, buf, 60);
    encore_stun_put_fingerprint(&w);
    g_assert_cmpint(encore_stun_finish(&w, &n), ==, ENCORE_STUN_ERR_NOSPACE);
    encore_stun_writer_init(&w, buf, 19, ENCORE_STUN_BINDING, ENCORE_STUN_REQUEST, TXID);
    g_assert_cmpint(encore_stun_finish(&w, &n), ==, ENCORE_STUN_ERR_NOSPACE);
    encore_stun_writer_init(&w, buf, sizeof buf, 0x1000, ENCORE_STUN_REQUEST, TXID);
    g_assert_cmpint(encore_stun_finish(&w, &n), ==, ENCORE_STUN_ERR_INVALID);
    encore_stun_writer_init(&w, buf, sizeof buf, ENCORE_STUN_BINDING, ENCORE_STUN_ERROR, TXID);
    encore_stun_put_error_code(&w, 700, NULL);
    g_assert_cmpint(encore_stun_finish(&w, &n), ==, ENCORE_STUN_ERR_INVALID);
    struct sockaddr sa = {.sa_family = AF_UNIX};
    encore_stun_writer_init(&w, buf, sizeof buf, ENCORE_STUN_BINDING, ENCORE_STUN_SUCCESS, TXID);
    encore_stun_put_xor_address(&w, ENCORE_STUN_ATTR_XOR_MAPPED_ADDRESS, &sa);
    g_assert_cmpint(encore_stun_finish(&w, &n), ==, ENCORE_STUN_ERR_INVALID);
    g_assert_cmpstr(encore_stun_strerror(ENCORE_STUN_ERR_FINGERPRINT), ==,
                    "STUN fingerprint mismatch");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/stun/rfc5769/request", test_rfc5769_request);
    g_test_add_func("/stun/rfc5769/ipv4-response", test_rfc5769_ipv4);
    g_test_add_func("/stun/rfc5769/ipv6-response", test_rfc5769_ipv6);
    g_test_add_func("/stun/parse/not-stun", test_not_stun);
    g_test_add_func("/stun/parse/malformed", test_malformed);
    g_test_add_func("/stun/parse/unknown-and-ignored", test_unknown_and_ignored);
    g_test_add_func("/stun/build/answers", test_answers);
    g_test_add_func("/stun/build/writer", test_writer);
    return g_test_run();
}
