/* Unit tests for server/accounts/token.c and the helpers it stands on (mac.c against RFC 4231,
 * b64.c against RFC 4648, flatjson.c): a token computed independently (Python hmac/base64) in
 * both directions, tampering of every segment, alg confusion, every claim check, expiry and
 * not-before edges with leeway, kid rotation and every keyring and signing error. */
#include <string.h>

#include <glib.h>

#include "server/accounts/b64.h"
#include "server/accounts/flatjson.h"
#include "server/accounts/mac.h"
#include "server/accounts/token.h"

#define K1 ((const uint8_t *)"0123456789abcdef0123456789abcdef")
#define K2 ((const uint8_t *)"fedcba9876543210fedcba9876543210")
#define KLEN 32

/* ---- helpers ---- */

static void unhex(const char *hex, uint8_t *out, size_t *len)
{
    g_assert_cmpint(encore_hex_decode(hex, strlen(hex), out, 256, len), ==, 0);
}

static char *b64url(const void *data, size_t len)
{
    char *out = g_malloc(ENCORE_B64_ENCODED_LEN(len) + 1);
    g_assert_cmpint(
        encore_b64_encode(ENCORE_B64_URL, data, len, out, ENCORE_B64_ENCODED_LEN(len) + 1, NULL),
        ==, 0);
    return out;
}

/* "b64url(header).b64url(payload).sig": sig is HMAC-SHA256 with key, or empty when key is NULL. */
static char *raw_token(const char *header, const char *payload, const uint8_t *key)
{
    char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
    char *input = g_strdup_printf("%s.%s", h, p);
    char *sig = g_strdup("");
    if (key) {
        uint8_t tag[ENCORE_MAC_LEN];
        encore_mac_part part = {input, strlen(input)};
        g_assert_cmpint(encore_mac_sha256(key, KLEN, &part, 1, tag), ==, 0);
        g_free(sig);
        sig = b64url(tag, sizeof tag);
    }
    char *tok = g_strdup_printf("%s.%s", input, sig);
    g_free(h);
    g_free(p);
    g_free(input);
    g_free(sig);
    return tok;
}

static encore_token_keyring *ring_k1(void)
{
    encore_token_keyring *kr = encore_token_keyring_new(NULL);
    g_assert_nonnull(kr);
    g_assert_cmpint(encore_token_keyring_add(kr, "k1", K1, KLEN), ==, 0);
    return kr;
}

static int verify_str(encore_token_keyring *kr, const char *tok, int64_t now)
{
    encore_token_claims c;
    int rc = encore_token_verify(kr, tok, strlen(tok), now, &c);
    if (rc != 0) {
        /* On failure the output is zeroed. */
        encore_token_claims zero;
        memset(&zero, 0, sizeof zero);
        g_assert_true(memcmp(&c, &zero, sizeof c) == 0);
    }
    return rc;
}

#define HDR_K1 "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"
#define GOOD_PAYLOAD                                                                               \
    "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":\"j1\"}"

/* Verifies a payload signed with K1 under the k1 header at now 1500. */
static int verify_payload(const char *payload)
{
    encore_token_keyring *kr = ring_k1();
    char *tok = raw_token(HDR_K1, payload, K1);
    int rc = verify_str(kr, tok, 1500);
    g_free(tok);
    encore_token_keyring_free(kr);
    return rc;
}

static int verify_header(const char *header, const uint8_t *key)
{
    encore_token_keyring *kr = ring_k1();
    char *tok = raw_token(header, GOOD_PAYLOAD, key);
    int rc = verify_str(kr, tok, 1500);
    g_free(tok);
    encore_token_keyring_free(kr);
    return rc;
}

/* ---- the MAC: RFC 4231 test cases 1-7 through encore_mac_sha256 ---- */

static void test_mac_rfc4231(void)
{
    static const struct {
        const char *key_hex, *data_hex, *mac_hex;
        size_t compare; /* bytes compared (case 5 is truncated to 128 bits) */
    } v[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", 32},
        {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 32},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
         "dddddddddddddddddd",
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", 32},
        {"0102030405060708090a0b0c0d0e0f10111213141516171819",
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
         "cdcdcdcdcdcdcdcdcd",
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", 32},
        {"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "546573742057697468205472756e636174696f6e",
         "a3b6167473100ee06e0c796c2955552b", 16},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaa", /* 131 bytes of 0xaa */
         "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048"
         "617368204b6579204669727374",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", 32},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaa", /* 131 bytes of 0xaa */
         "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d"
         "73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a652064617461"
         "2e20546865206b6579206e6565647320746f20626520686173686564206265666f7265206265696e6720"
         "757365642062792074686520484d414320616c676f726974686d2e",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", 32},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(v); i++) {
        uint8_t key[256], data[256], want[32], got[ENCORE_MAC_LEN], split[ENCORE_MAC_LEN];
        size_t klen, dlen, wlen;
        unhex(v[i].key_hex, key, &klen);
        unhex(v[i].data_hex, data, &dlen);
        unhex(v[i].mac_hex, want, &wlen);
        g_assert_cmpuint(wlen, ==, v[i].compare);
        encore_mac_part whole = {data, dlen};
        g_assert_cmpint(encore_mac_sha256(key, klen, &whole, 1, got), ==, 0);
        g_test_message("RFC 4231 case %zu", i + 1);
        g_assert_cmpmem(got, v[i].compare, want, wlen);
        /* The same message in three pieces (one empty) gives the same MAC. */
        encore_mac_part parts[3] = {{data, 3}, {data + 3, 0}, {data + 3, dlen - 3}};
        g_assert_cmpint(encore_mac_sha256(key, klen, parts, 3, split), ==, 0);
        g_assert_cmpmem(split, 32, got, 32);
        g_assert_true(encore_mac_equal(split, got));
        split[31] ^= 1;
        g_assert_false(encore_mac_equal(split, got));
        split[31] ^= 1;
        split[0] ^= 0x80;
        g_assert_false(encore_mac_equal(split, got));
    }
    /* An empty key is refused; the output is zeroed. */
    uint8_t out[ENCORE_MAC_LEN], zero[ENCORE_MAC_LEN] = {0};
    encore_mac_part part = {"x", 1};
    g_assert_cmpint(encore_mac_sha256((const uint8_t *)"", 0, &part, 1, out), ==, -1);
    g_assert_cmpmem(out, sizeof out, zero, sizeof zero);
}

/* ---- base64 / hex: RFC 4648 §10 vectors, alphabets, strictness ---- */

static void test_b64(void)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char out[64];
    uint8_t dec[64];
    size_t n;
    for (size_t i = 0; i < G_N_ELEMENTS(plain); i++) {
        size_t len = strlen(plain[i]);
        g_assert_cmpint(
            encore_b64_encode(ENCORE_B64_STD, (const uint8_t *)plain[i], len, out, sizeof out, &n),
            ==, 0);
        g_assert_cmpstr(out, ==, enc[i]);
        g_assert_cmpuint(n, ==, ENCORE_B64_ENCODED_LEN(len));
        g_assert_cmpint(
            encore_b64_decode(ENCORE_B64_URL, enc[i], strlen(enc[i]), dec, sizeof dec, &n), ==, 0);
        g_assert_cmpmem(dec, n, plain[i], len);
    }
    /* The two alphabets differ in the last two characters. */
    const uint8_t ff[] = {0xfb, 0xff};
    g_assert_cmpint(encore_b64_encode(ENCORE_B64_STD, ff, 2, out, sizeof out, NULL), ==, 0);
    g_assert_cmpstr(out, ==, "+/8");
    g_assert_cmpint(encore_b64_encode(ENCORE_B64_URL, ff, 2, out, sizeof out, NULL), ==, 0);
    g_assert_cmpstr(out, ==, "-_8");
    g_assert_cmpint(encore_b64_decode(ENCORE_B64_URL, "+/8", 3, dec, sizeof dec, &n), ==,
                    ENCORE_B64_EINVALID);
    g_assert_cmpint(encore_b64_decode(ENCORE_B64_STD, "-_8", 3, dec, sizeof dec, &n), ==,
                    ENCORE_B64_EINVALID);
    g_assert_cmpint(encore_b64_decode(ENCORE_B64_STD, "+/8", 3, dec, sizeof dec, &n), ==, 0);
    g_assert_cmpmem(dec, n, ff, 2);
    /* Strictness: padding, impossible length, non-zero unused bits, whitespace, NUL. */
    static const char *const bad[] = {"Zg==", "Zg=",  "Z",    "Zm9vY",  "Zh",
                                      "Zm9",  "Zm8=", "Zm 9", "Zm\n9v", "Zm9v\r"};
    /* ("Zh" and "Zm9" carry non-zero unused bits: "Zg" and "Zm8" are the canonical spellings.) */
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_cmpint(
            encore_b64_decode(ENCORE_B64_URL, bad[i], strlen(bad[i]), dec, sizeof dec, &n), ==,
            ENCORE_B64_EINVALID);
    }
    g_assert_cmpint(encore_b64_decode(ENCORE_B64_URL, "Zm\0v", 4, dec, sizeof dec, &n), ==,
                    ENCORE_B64_EINVALID);
    /* Output space. */
    g_assert_cmpint(encore_b64_decode(ENCORE_B64_URL, "Zm9vYmFy", 8, dec, 5, &n), ==,
                    ENCORE_B64_ENOSPACE);
    g_assert_cmpint(encore_b64_decode(ENCORE_B64_URL, "Zm9vYmFy", 8, dec, 6, &n), ==, 0);
    g_assert_cmpint(encore_b64_encode(ENCORE_B64_URL, (const uint8_t *)"foo", 3, out, 4, NULL), ==,
                    ENCORE_B64_ENOSPACE);
    g_assert_cmpstr(out, ==, "");
    g_assert_cmpint(encore_b64_encode(ENCORE_B64_URL, (const uint8_t *)"foo", 3, out, 5, NULL), ==,
                    0);

    /* Hex: lowercase only, even length. */
    g_assert_cmpint(encore_hex_encode(ff, 2, out, sizeof out), ==, 0);
    g_assert_cmpstr(out, ==, "fbff");
    g_assert_cmpint(encore_hex_encode(ff, 2, out, 4), ==, ENCORE_B64_ENOSPACE);
    g_assert_cmpint(encore_hex_decode("fbff", 4, dec, sizeof dec, &n), ==, 0);
    g_assert_cmpmem(dec, n, ff, 2);
    g_assert_cmpint(encore_hex_decode("FBFF", 4, dec, sizeof dec, &n), ==, ENCORE_B64_EINVALID);
    g_assert_cmpint(encore_hex_decode("fbf", 3, dec, sizeof dec, &n), ==, ENCORE_B64_EINVALID);
    g_assert_cmpint(encore_hex_decode("fg", 2, dec, sizeof dec, &n), ==, ENCORE_B64_EINVALID);
    g_assert_cmpint(encore_hex_decode("fbff", 4, dec, 1, &n), ==, ENCORE_B64_ENOSPACE);
}

/* ---- flat JSON ---- */

static int flat_count(const char *s, encore_flatjson_member *last)
{
    encore_flatjson_reader r;
    encore_flatjson_member m;
    int rc, n = 0;
    encore_flatjson_init(&r, (const uint8_t *)s, strlen(s));
    while ((rc = encore_flatjson_next(&r, &m)) == 1) {
        n++;
        if (last)
            *last = m;
    }
    if (rc < 0)
        return rc;
    /* Once done, it stays done. */
    g_assert_cmpint(encore_flatjson_next(&r, &m), ==, 0);
    return n;
}

static void test_flatjson(void)
{
    encore_flatjson_member m;
    g_assert_cmpint(flat_count("{}", NULL), ==, 0);
    g_assert_cmpint(flat_count(" \t\r\n{ } \n", NULL), ==, 0);
    g_assert_cmpint(flat_count("{\"a\":\"x y\", \"b\" : -12 ,\"c\":0}", &m), ==, 3);
    g_assert_true(m.kind == ENCORE_FLATJSON_INT && m.num == 0 && m.key_len == 1 && m.key[0] == 'c');
    g_assert_cmpint(flat_count("{\"a\":\"\"}", &m), ==, 1);
    g_assert_true(m.kind == ENCORE_FLATJSON_STRING && m.str_len == 0);
    g_assert_cmpint(flat_count("{\"n\":9223372036854775807}", &m), ==, 1);
    g_assert_true(m.num == INT64_MAX);
    g_assert_cmpint(flat_count("{\"n\":-9223372036854775808}", &m), ==, 1);
    g_assert_true(m.num == INT64_MIN);
    /* Duplicates pass this layer (callers detect them). */
    g_assert_cmpint(flat_count("{\"a\":1,\"a\":2}", NULL), ==, 2);
    static const char *const bad[] = {
        "",
        "[]",
        "\"a\"",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{,}",
        "{\"a\":1}x",
        "{\"a\":1}{}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":{}}",
        "{\"a\":[1]}",
        "{\"a\":true}",
        "{\"a\":null}",
        "{\"a\":1.0}",
        "{\"a\":1e3}",
        "{\"a\":01}",
        "{\"a\":-}",
        "{\"a\":+1}",
        "{\"a\":9223372036854775808}",
        "{\"a\":-9223372036854775809}",
        "{\"a\":\"\\n\"}",
        "{\"a\":\"\\u0041\"}",
        "{\"a\":\"\t\"}",
        "{\"a\":\"\xc3\xa9\"}",
        "{\"a\":\"unterminated}",
        "{a:1}",
        "{'a':1}",
        "\xef\xbb\xbf{}",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_test_message("bad flat json %zu: %s", i, bad[i]);
        g_assert_cmpint(flat_count(bad[i], NULL), ==, ENCORE_FLATJSON_EINVALID);
    }
    /* A failed reader keeps failing and zeroes the member. */
    encore_flatjson_reader r;
    encore_flatjson_init(&r, (const uint8_t *)"{\"a\":x}", 7);
    g_assert_cmpint(encore_flatjson_next(&r, &m), ==, ENCORE_FLATJSON_EINVALID);
    g_assert_null(m.key);
    g_assert_cmpint(encore_flatjson_next(&r, &m), ==, ENCORE_FLATJSON_EINVALID);
    /* A NULL buffer is an empty input. */
    encore_flatjson_init(&r, NULL, 5);
    g_assert_cmpint(encore_flatjson_next(&r, &m), ==, ENCORE_FLATJSON_EINVALID);
}

/* ---- tokens ---- */

/* Computed with Python's hmac/hashlib/base64 from the claims below, key K1 under kid "k2024". */
static const char python_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsyMDI0In0."
    "eyJzdWIiOiI0MiIsInJvbGUiOiJzaW5nZXIiLCJpYXQiOjE3MDAwMDAwMDAsIm5iZiI6MTcwMDAwMDAwMCwiZXhwIjox"
    "NzAwMDAwOTAwLCJqdGkiOiJ0ZXN0LWp0aS0xIn0.orXPqSwdA3DON6QBbB7vYD9oauVCvr03lX70g1uOhLw";
/* The same claims in another spelling (json.dumps: spaces, newlines, other key order). */
static const char python_token_spaced[] =
    "eyJraWQiOiAiazIwMjQiLCAidHlwIjogIkpXVCIsICJhbGciOiAiSFMyNTYifQ."
    "ewogImp0aSI6ICJ0ZXN0LWp0aS0xIiwKICJleHAiOiAxNzAwMDAwOTAwLAogIm5iZiI6IDE3MDAwMDAwMDAsCiAiaWF0"
    "IjogMTcwMDAwMDAwMCwKICJyb2xlIjogInNpbmdlciIsCiAic3ViIjogIjQyIgp9."
    "wYyFrGShyrgqR5x2i51HgxGtzqcBunjyxkO_l20bLgg";

static void test_known_token(void)
{
    encore_token_keyring *kr = encore_token_keyring_new(NULL);
    g_assert_cmpint(encore_token_keyring_add(kr, "k2024", K1, KLEN), ==, 0);
    encore_token_claims c;
    g_assert_cmpint(encore_token_verify(kr, python_token, strlen(python_token), 1700000100, &c), ==,
                    0);
    g_assert_cmpint(c.user_id, ==, 42);
    g_assert_cmpint(c.role, ==, ENCORE_ROLE_SINGER);
    g_assert_cmpint(c.iat, ==, 1700000000);
    g_assert_cmpint(c.nbf, ==, 1700000000);
    g_assert_cmpint(c.exp, ==, 1700000900);
    g_assert_cmpstr(c.jti, ==, "test-jti-1");
    g_assert_cmpstr(c.kid, ==, "k2024");

    /* Signing the same claims gives the byte-identical token. */
    char out[ENCORE_TOKEN_BUF_LEN];
    size_t n = 0;
    g_assert_cmpint(encore_token_sign(kr, &c, out, sizeof out, &n), ==, 0);
    g_assert_cmpstr(out, ==, python_token);
    g_assert_cmpuint(n, ==, strlen(python_token));

    /* Another JSON spelling of the same header and claims verifies too. */
    encore_token_claims c2;
    g_assert_cmpint(
        encore_token_verify(kr, python_token_spaced, strlen(python_token_spaced), 1700000100, &c2),
        ==, 0);
    g_assert_cmpint(c2.user_id, ==, 42);
    g_assert_cmpstr(c2.jti, ==, "test-jti-1");

    /* The length argument is honoured: the token need not be NUL-terminated. */
    char *padded = g_strdup_printf("%sXYZ", python_token);
    g_assert_cmpint(encore_token_verify(kr, padded, strlen(python_token), 1700000100, &c), ==, 0);
    g_assert_cmpint(encore_token_verify(kr, padded, strlen(padded), 1700000100, &c), ==,
                    ENCORE_TOKEN_EMALFORMED);
    g_free(padded);

    /* Wrong key under the right kid: bad signature. */
    encore_token_keyring *other = encore_token_keyring_new(NULL);
    g_assert_cmpint(encore_token_keyring_add(other, "k2024", K2, KLEN), ==, 0);
    g_assert_cmpint(verify_str(other, python_token, 1700000100), ==, ENCORE_TOKEN_EBADSIG);
    encore_token_keyring_free(other);
    encore_token_keyring_free(kr);
}

static void test_issue_roundtrip(void)
{
    encore_token_keyring *kr = ring_k1();
    char tok[ENCORE_TOKEN_BUF_LEN], tok2[ENCORE_TOKEN_BUF_LEN];
    encore_token_claims issued, got;
    for (int role = 0; role < ENCORE_ROLE_COUNT; role++) {
        g_assert_cmpint(
            encore_token_issue(kr, 7, (encore_role)role, 1000, 900, tok, sizeof tok, &issued), ==,
            0);
        g_assert_cmpint(issued.iat, ==, 1000);
        g_assert_cmpint(issued.nbf, ==, 1000);
        g_assert_cmpint(issued.exp, ==, 1900);
        g_assert_cmpuint(strlen(issued.jti), ==, 22);
        g_assert_cmpstr(issued.kid, ==, "k1");
        g_assert_cmpint(encore_token_verify(kr, tok, strlen(tok), 1000, &got), ==, 0);
        g_assert_cmpint(got.user_id, ==, 7);
        g_assert_cmpint(got.role, ==, role);
        g_assert_cmpstr(got.jti, ==, issued.jti);
        g_assert_true(memcmp(&got, &issued, sizeof got) == 0);
    }
    /* Every token gets a fresh jti. */
    g_assert_cmpint(encore_token_issue(kr, 7, ENCORE_ROLE_HOST, 1000, 900, tok2, sizeof tok2, &got),
                    ==, 0);
    g_assert_cmpstr(got.jti, !=, issued.jti);
    g_assert_cmpstr(tok, !=, tok2);
    /* The largest user id and the longest lifetime. */
    g_assert_cmpint(encore_token_issue(kr, INT64_MAX, ENCORE_ROLE_ADMIN, 5,
                                       ENCORE_TOKEN_DEFAULT_MAX_LIFETIME, tok, sizeof tok, NULL),
                    ==, 0);
    g_assert_cmpint(encore_token_verify(kr, tok, strlen(tok), 5, &got), ==, 0);
    g_assert_cmpint(got.user_id, ==, INT64_MAX);
    g_assert_cmpuint(strlen(tok), <, ENCORE_TOKEN_BUF_LEN);
    encore_token_keyring_free(kr);
}

/* Replaces token[i] by c and returns the verification result at now 1500. */
static int verify_with_char(encore_token_keyring *kr, const char *tok, size_t i, char c)
{
    char *t = g_strdup(tok);
    t[i] = c;
    int rc = verify_str(kr, t, 1500);
    g_free(t);
    return rc;
}

static void test_tampering(void)
{
    encore_token_keyring *kr = ring_k1();
    char *tok = raw_token(HDR_K1, GOOD_PAYLOAD, K1);
    g_assert_cmpint(verify_str(kr, tok, 1500), ==, 0);
    size_t len = strlen(tok);
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    size_t i1 = (size_t)(d1 - tok), i2 = (size_t)(d2 - tok);

    /* Every single-character change anywhere is refused. */
    static const char subst[] = "AQgw_-9z.=+ ";
    for (size_t i = 0; i < len; i++) {
        for (const char *c = subst; *c; c++) {
            if (*c == tok[i])
                continue;
            int rc = verify_with_char(kr, tok, i, *c);
            g_assert_cmpint(rc, !=, 0);
            /* A changed payload or signature character that keeps the encoding valid is a bad
             * signature; everything else is refused as malformed (or, in the header, whatever
             * the changed header says). */
            if (i > i1 && i < i2 - 1 && (*c == 'A' || *c == 'Q' || *c == 'g' || *c == 'w'))
                g_assert_cmpint(rc, ==, ENCORE_TOKEN_EBADSIG);
            if (i > i2 && i < len - 1 && *c != '.' && *c != '=' && *c != '+' && *c != ' ')
                g_assert_cmpint(rc, ==, ENCORE_TOKEN_EBADSIG);
        }
    }

    /* Payload re-signed with the wrong key, or with the right key but other claims. */
    char *wrong = raw_token(HDR_K1, GOOD_PAYLOAD, K2);
    g_assert_cmpint(verify_str(kr, wrong, 1500), ==, ENCORE_TOKEN_EBADSIG);
    g_free(wrong);
    /* Splicing: header and signature of one token, payload of another. */
    char *other = raw_token(HDR_K1,
                            "{\"sub\":\"1\",\"role\":\"admin\",\"iat\":1000,\"nbf\":1000,"
                            "\"exp\":2000,\"jti\":\"j1\"}",
                            K1);
    g_assert_cmpint(verify_str(kr, other, 1500), ==, 0);
    const char *o1 = strchr(other, '.'), *o2 = strrchr(other, '.');
    char *spliced = g_strdup_printf("%.*s%.*s%s", (int)i1, tok, (int)(o2 - o1), o1, d2);
    g_assert_cmpint(verify_str(kr, spliced, 1500), ==, ENCORE_TOKEN_EBADSIG);
    g_free(spliced);
    g_free(other);

    /* Shape: truncated or extended signature, missing or extra segments, empty segments. */
    char *t;
    t = g_strndup(tok, len - 1);
    g_assert_cmpint(verify_str(kr, t, 1500), ==, ENCORE_TOKEN_EMALFORMED);
    g_free(t);
    t = g_strdup_printf("%sA", tok);
    g_assert_cmpint(verify_str(kr, t, 1500), ==, ENCORE_TOKEN_EMALFORMED);
    g_free(t);
    t = g_strdup_printf("%s=", tok);
    g_assert_cmpint(verify_str(kr, t, 1500), ==, ENCORE_TOKEN_EMALFORMED);
    g_free(t);
    t = g_strdup_printf("%s.", tok);
    g_assert_cmpint(verify_str(kr, t, 1500), ==, ENCORE_TOKEN_EMALFORMED);
    g_free(t);
    t = g_strdup_printf("%s.%s", tok, d2 + 1);
    g_assert_cmpint(verify_str(kr, t, 1500), ==, ENCORE_TOKEN_EMALFORMED);
    g_free(t);
    t = g_strndup(tok, i2 + 1); /* "h.p." */
    g_assert_cmpint(verify_str(kr, t, 1500), ==, ENCORE_TOKEN_EMALFORMED);
    g_free(t);
    t = g_strndup(tok, i2); /* "h.p" */
    g_assert_cmpint(verify_str(kr, t, 1500), ==, ENCORE_TOKEN_EMALFORMED);
    g_free(t);
    t = g_strdup_printf("%.*s.%s", (int)i1, tok, d2); /* "h..s" */
    g_assert_cmpint(verify_str(kr, t, 1500), ==, ENCORE_TOKEN_EMALFORMED);
    g_free(t);
    t = g_strdup(d1); /* ".p.s" */
    g_assert_cmpint(verify_str(kr, t, 1500), ==, ENCORE_TOKEN_EMALFORMED);
    g_free(t);
    t = g_strdup_printf("Bearer %s", tok);
    g_assert_cmpint(verify_str(kr, t, 1500), ==, ENCORE_TOKEN_EMALFORMED);
    g_free(t);
    g_assert_cmpint(verify_str(kr, "", 1500), ==, ENCORE_TOKEN_EMALFORMED);
    g_assert_cmpint(verify_str(kr, "..", 1500), ==, ENCORE_TOKEN_EMALFORMED);
    g_free(tok);
    encore_token_keyring_free(kr);
}

static void test_alg_confusion(void)
{
    /* alg "none" with an empty signature, and with a valid HMAC signature. */
    g_assert_cmpint(verify_header("{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}", NULL), ==,
                    ENCORE_TOKEN_EBADALG);
    g_assert_cmpint(verify_header("{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}", K1), ==,
                    ENCORE_TOKEN_EBADALG);
    g_assert_cmpint(verify_header("{\"alg\":\"none\",\"typ\":\"JWT\"}", NULL), ==,
                    ENCORE_TOKEN_EBADALG);
    static const char *const algs[] = {"HS512", "HS384", "RS256",  "ES256",  "PS256",
                                       "EdDSA", "hs256", "HS256 ", " HS256", "HS2560",
                                       "HS25",  "",      "NONE",   "None"};
    for (size_t i = 0; i < G_N_ELEMENTS(algs); i++) {
        char *h = g_strdup_printf("{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"k1\"}", algs[i]);
        g_test_message("alg '%s'", algs[i]);
        /* Valid HMAC signature with the real key: the alg alone is the reason. */
        g_assert_cmpint(verify_header(h, K1), ==, ENCORE_TOKEN_EBADALG);
        g_free(h);
    }
    /* alg missing, of another type, duplicated (even with HS256 first or last). */
    g_assert_cmpint(verify_header("{\"typ\":\"JWT\",\"kid\":\"k1\"}", K1), ==,
                    ENCORE_TOKEN_EBADALG);
    g_assert_cmpint(verify_header("{\"alg\":256,\"typ\":\"JWT\",\"kid\":\"k1\"}", K1), ==,
                    ENCORE_TOKEN_EBADALG);
    g_assert_cmpint(
        verify_header("{\"alg\":\"HS256\",\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}", K1),
        ==, ENCORE_TOKEN_EBADALG);
    g_assert_cmpint(
        verify_header("{\"alg\":\"none\",\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}", K1),
        ==, ENCORE_TOKEN_EBADALG);
    /* The alg is judged before the kid is looked up. */
    g_assert_cmpint(verify_header("{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"nope\"}", K1), ==,
                    ENCORE_TOKEN_EBADALG);
    /* A literal alg value is outside the JSON subset: malformed (still refused). */
    g_assert_cmpint(verify_header("{\"alg\":null,\"typ\":\"JWT\",\"kid\":\"k1\"}", K1), ==,
                    ENCORE_TOKEN_EMALFORMED);

    /* The rest of the pinned header. */
    static const char *const bad_headers[] = {
        "{\"alg\":\"HS256\",\"kid\":\"k1\"}",                                  /* no typ */
        "{\"alg\":\"HS256\",\"typ\":\"jwt\",\"kid\":\"k1\"}",                  /* typ case */
        "{\"alg\":\"HS256\",\"typ\":\"JWS\",\"kid\":\"k1\"}",                  /* other typ */
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"typ\":\"JWT\",\"kid\":\"k1\"}",  /* dup typ */
        "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",                                 /* no kid */
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"\"}",                    /* empty kid */
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k 1\"}",                 /* kid chars */
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"../k1\"}",               /* kid chars */
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":1}",                       /* kid type */
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\",\"kid\":\"k1\"}",   /* dup kid */
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\",\"jku\":\"x\"}",    /* jku */
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\",\"crit\":\"exp\"}", /* crit */
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\",\"jwk\":{}}",       /* nested */
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"} x",                /* trailing */
        "[\"HS256\"]",
        "not json",
        "",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad_headers); i++) {
        g_test_message("header %zu: %s", i, bad_headers[i]);
        if (bad_headers[i][0] == '\0') {
            /* An empty header segment. */
            encore_token_keyring *kr = ring_k1();
            char *p = b64url(GOOD_PAYLOAD, strlen(GOOD_PAYLOAD));
            char *t = g_strdup_printf(".%s.AAAA", p);
            g_assert_cmpint(verify_str(kr, t, 1500), ==, ENCORE_TOKEN_EMALFORMED);
            g_free(t);
            g_free(p);
            encore_token_keyring_free(kr);
            continue;
        }
        g_assert_cmpint(verify_header(bad_headers[i], K1), ==, ENCORE_TOKEN_EMALFORMED);
    }
    /* Header JSON whitespace and member order are free. */
    g_assert_cmpint(
        verify_header(" { \"kid\" : \"k1\" , \"typ\":\"JWT\",\n\"alg\":\"HS256\" } ", K1), ==, 0);
    /* A header longer than 512 bytes decoded. */
    GString *big = g_string_new("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"");
    while (big->len < 600)
        g_string_append(big, "          ");
    g_string_append(big, "}");
    g_assert_cmpint(verify_header(big->str, K1), ==, ENCORE_TOKEN_EMALFORMED);
    g_string_free(big, TRUE);
}

static void test_claims(void)
{
    g_assert_cmpint(verify_payload(GOOD_PAYLOAD), ==, 0);
    static const char *const bad[] = {
        /* a claim missing */
        "{\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":\"j1\"}",
        "{\"sub\":\"42\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":\"j1\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"nbf\":1000,\"exp\":2000,\"jti\":\"j1\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"exp\":2000,\"jti\":\"j1\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"jti\":\"j1\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000}",
        /* an extra or duplicated claim */
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":\"j1\","
        "\"aud\":\"x\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":\"j1\","
        "\"role\":\"admin\"}",
        "{\"sub\":\"42\",\"sub\":\"43\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,"
        "\"jti\":\"j1\"}",
        /* sub */
        "{\"sub\":42,\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":\"j1\"}",
        "{\"sub\":\"0\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":\"j1\"}",
        "{\"sub\":\"042\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":"
        "\"j1\"}",
        "{\"sub\":\"-1\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":"
        "\"j1\"}",
        "{\"sub\":\"+1\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":"
        "\"j1\"}",
        "{\"sub\":\"\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":\"j1\"}",
        "{\"sub\":\"4 "
        "2\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":\"j1\"}",
        "{\"sub\":\"9223372036854775808\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,"
        "\"exp\":2000,\"jti\":\"j1\"}",
        "{\"sub\":\"12345678901234567890\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,"
        "\"exp\":2000,\"jti\":\"j1\"}",
        /* role */
        "{\"sub\":\"42\",\"role\":\"superuser\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":"
        "\"j1\"}",
        "{\"sub\":\"42\",\"role\":\"Admin\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":\"j1\"}",
        "{\"sub\":\"42\",\"role\":4,\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":\"j1\"}",
        /* times: type, sign, range, order */
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":\"1000\",\"nbf\":1000,\"exp\":2000,\"jti\":"
        "\"j1\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000.5,\"nbf\":1000,\"exp\":2000,\"jti\":"
        "\"j1\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2e3,\"jti\":\"j1\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":-1,\"nbf\":1000,\"exp\":2000,\"jti\":\"j1\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":9007199254740992,"
        "\"jti\":\"j1\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":2000,\"exp\":2000,\"jti\":"
        "\"j1\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":2000,\"nbf\":1000,\"exp\":2000,\"jti\":"
        "\"j1\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":999,\"jti\":\"j1\"}",
        /* lifetime over the 86400 s cap */
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":87401,\"jti\":"
        "\"j1\"}",
        /* jti */
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":\"\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":\"a "
        "b\"}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":7}",
        "{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,\"jti\":"
        "\"0123456789012345678901234567890123456789012345678901234567890123X\"}",
        /* not the JSON subset at all */
        "{\"sub\":\"42\",\"role\":\"sin\\u0067er\",\"iat\":1000,\"nbf\":1000,\"exp\":2000,"
        "\"jti\":\"j1\"}",
        "[1,2,3]",
        "null",
        "garbage",
        "{}",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_test_message("claims %zu: %s", i, bad[i]);
        g_assert_cmpint(verify_payload(bad[i]), ==, ENCORE_TOKEN_EBADCLAIMS);
    }
    /* Boundaries that are fine: 64-character jti, exactly the max lifetime, INT64_MAX sub. */
    g_assert_cmpint(
        verify_payload("{\"sub\":\"9223372036854775807\",\"role\":\"admin\",\"iat\":1000,"
                       "\"nbf\":1000,\"exp\":87400,\"jti\":"
                       "\"0123456789012345678901234567890123456789012345678901234567"
                       "890123\"}"),
        ==, 0);

    /* The pure claims parser on its own. */
    encore_token_claims c;
    const char *p = GOOD_PAYLOAD;
    g_assert_cmpint(encore_token_parse_claims((const uint8_t *)p, strlen(p), &c), ==, 0);
    g_assert_cmpint(c.user_id, ==, 42);
    g_assert_cmpstr(c.kid, ==, "");
    g_assert_cmpint(encore_token_parse_claims((const uint8_t *)p, strlen(p) - 1, &c), ==,
                    ENCORE_TOKEN_EBADCLAIMS);
    g_assert_cmpint(c.user_id, ==, 0);
    g_assert_cmpint(encore_token_parse_claims(NULL, 0, &c), ==, ENCORE_TOKEN_EBADCLAIMS);
}

/* A token with iat, nbf and exp as given, signed with K1. */
static char *timed_token(int64_t iat, int64_t nbf, int64_t exp)
{
    char *payload =
        g_strdup_printf("{\"sub\":\"42\",\"role\":\"listener\",\"iat\":%" G_GINT64_FORMAT
                        ",\"nbf\":%" G_GINT64_FORMAT ",\"exp\":%" G_GINT64_FORMAT ",\"jti\":\"t\"}",
                        iat, nbf, exp);
    char *tok = raw_token(HDR_K1, payload, K1);
    g_free(payload);
    return tok;
}

static void test_time_edges(void)
{
    encore_token_keyring *kr = ring_k1(); /* leeway 30 */
    char *tok = timed_token(1000, 1000, 2000);
    g_assert_cmpint(verify_str(kr, tok, 1500), ==, 0);
    g_assert_cmpint(verify_str(kr, tok, 2000), ==, 0); /* exp itself, inside the leeway */
    g_assert_cmpint(verify_str(kr, tok, 2029), ==, 0); /* last second of the leeway */
    g_assert_cmpint(verify_str(kr, tok, 2030), ==, ENCORE_TOKEN_EEXPIRED);
    g_assert_cmpint(verify_str(kr, tok, INT64_MAX), ==, ENCORE_TOKEN_EEXPIRED);
    g_assert_cmpint(verify_str(kr, tok, 970), ==, 0); /* nbf - leeway */
    g_assert_cmpint(verify_str(kr, tok, 969), ==, ENCORE_TOKEN_ENOTYETVALID);
    g_assert_cmpint(verify_str(kr, tok, INT64_MIN), ==, ENCORE_TOKEN_ENOTYETVALID);
    g_free(tok);
    /* nbf later than iat: nbf rules. */
    tok = timed_token(1000, 1500, 2000);
    g_assert_cmpint(verify_str(kr, tok, 1469), ==, ENCORE_TOKEN_ENOTYETVALID);
    g_assert_cmpint(verify_str(kr, tok, 1470), ==, 0);
    g_free(tok);
    /* iat later than nbf (issued "in the future"): iat rules. */
    tok = timed_token(1500, 1000, 2000);
    g_assert_cmpint(verify_str(kr, tok, 1469), ==, ENCORE_TOKEN_ENOTYETVALID);
    g_assert_cmpint(verify_str(kr, tok, 1470), ==, 0);
    g_free(tok);
    /* Times at the ends of the range. */
    tok = timed_token(0, 0, 1);
    g_assert_cmpint(verify_str(kr, tok, 0), ==, 0);
    g_assert_cmpint(verify_str(kr, tok, 30), ==, 0);
    g_assert_cmpint(verify_str(kr, tok, 31), ==, ENCORE_TOKEN_EEXPIRED);
    g_free(tok);
    encore_token_keyring_free(kr);

    /* Another leeway; the bounds of the configuration. */
    encore_token_config cfg = {.leeway_s = 300, .max_lifetime_s = 600};
    kr = encore_token_keyring_new(&cfg);
    g_assert_cmpint(encore_token_keyring_add(kr, "k1", K1, KLEN), ==, 0);
    tok = timed_token(1000, 1000, 1600);
    g_assert_cmpint(verify_str(kr, tok, 1899), ==, 0);
    g_assert_cmpint(verify_str(kr, tok, 1900), ==, ENCORE_TOKEN_EEXPIRED);
    g_assert_cmpint(verify_str(kr, tok, 700), ==, 0);
    g_assert_cmpint(verify_str(kr, tok, 699), ==, ENCORE_TOKEN_ENOTYETVALID);
    g_free(tok);
    tok = timed_token(1000, 1000, 1601); /* lifetime 601 > 600 */
    g_assert_cmpint(verify_str(kr, tok, 1200), ==, ENCORE_TOKEN_EBADCLAIMS);
    g_free(tok);
    char out[ENCORE_TOKEN_BUF_LEN];
    g_assert_cmpint(
        encore_token_issue(kr, 1, ENCORE_ROLE_LISTENER, 1000, 601, out, sizeof out, NULL), ==,
        ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(
        encore_token_issue(kr, 1, ENCORE_ROLE_LISTENER, 1000, 600, out, sizeof out, NULL), ==, 0);
    encore_token_keyring_free(kr);
    encore_token_config bad1 = {.leeway_s = 301};
    encore_token_config bad2 = {.leeway_s = -1};
    encore_token_config bad3 = {.max_lifetime_s = -5};
    g_assert_null(encore_token_keyring_new(&bad1));
    g_assert_null(encore_token_keyring_new(&bad2));
    g_assert_null(encore_token_keyring_new(&bad3));
}

static void test_kid_rotation(void)
{
    encore_token_keyring *kr = encore_token_keyring_new(NULL);
    char t1[ENCORE_TOKEN_BUF_LEN], t2[ENCORE_TOKEN_BUF_LEN], t3[ENCORE_TOKEN_BUF_LEN];
    encore_token_claims c;
    g_assert_null(encore_token_keyring_current(kr));
    g_assert_cmpint(encore_token_issue(kr, 1, ENCORE_ROLE_HOST, 1000, 600, t1, sizeof t1, NULL), ==,
                    ENCORE_TOKEN_ENOKEY);
    g_assert_cmpstr(t1, ==, "");

    g_assert_cmpint(encore_token_keyring_add(kr, "2024-01", K1, KLEN), ==, 0);
    g_assert_cmpstr(encore_token_keyring_current(kr), ==, "2024-01");
    g_assert_cmpint(encore_token_issue(kr, 1, ENCORE_ROLE_HOST, 1000, 600, t1, sizeof t1, NULL), ==,
                    0);
    /* A new key verifies at once but signs only once made current. */
    g_assert_cmpint(encore_token_keyring_add(kr, "2024-02", K2, KLEN), ==, 0);
    g_assert_cmpstr(encore_token_keyring_current(kr), ==, "2024-01");
    g_assert_cmpint(encore_token_issue(kr, 2, ENCORE_ROLE_HOST, 1000, 600, t2, sizeof t2, NULL), ==,
                    0);
    g_assert_cmpint(encore_token_verify(kr, t2, strlen(t2), 1000, &c), ==, 0);
    g_assert_cmpstr(c.kid, ==, "2024-01");
    g_assert_cmpint(encore_token_keyring_set_current(kr, "2024-02"), ==, 0);
    g_assert_cmpint(encore_token_issue(kr, 3, ENCORE_ROLE_HOST, 1000, 600, t3, sizeof t3, &c), ==,
                    0);
    g_assert_cmpstr(c.kid, ==, "2024-02");
    g_assert_cmpint(encore_token_verify(kr, t3, strlen(t3), 1000, &c), ==, 0);
    g_assert_cmpstr(c.kid, ==, "2024-02");
    g_assert_cmpint(c.user_id, ==, 3);
    /* The old key still verifies its tokens until removed. */
    g_assert_cmpint(encore_token_verify(kr, t1, strlen(t1), 1000, &c), ==, 0);
    g_assert_cmpstr(c.kid, ==, "2024-01");
    g_assert_cmpint(encore_token_keyring_remove(kr, "2024-01"), ==, 0);
    g_assert_cmpint(verify_str(kr, t1, 1000), ==, ENCORE_TOKEN_EUNKNOWNKID);
    g_assert_cmpint(verify_str(kr, t3, 1000), ==, 0);
    /* A kid nobody has. */
    char *unknown =
        raw_token("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"zzz\"}", GOOD_PAYLOAD, K1);
    g_assert_cmpint(verify_str(kr, unknown, 1500), ==, ENCORE_TOKEN_EUNKNOWNKID);
    g_free(unknown);
    /* A token whose header names the other key: the MAC does not match. */
    char *swapped =
        raw_token("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"2024-02\"}", GOOD_PAYLOAD, K1);
    g_assert_cmpint(verify_str(kr, swapped, 1500), ==, ENCORE_TOKEN_EBADSIG);
    g_free(swapped);
    /* Removing the current key leaves none. */
    g_assert_cmpint(encore_token_keyring_remove(kr, "2024-02"), ==, 0);
    g_assert_null(encore_token_keyring_current(kr));
    g_assert_cmpint(encore_token_issue(kr, 1, ENCORE_ROLE_HOST, 1000, 600, t1, sizeof t1, NULL), ==,
                    ENCORE_TOKEN_ENOKEY);
    g_assert_cmpint(verify_str(kr, t3, 1000), ==, ENCORE_TOKEN_EUNKNOWNKID);
    g_assert_cmpint(encore_token_keyring_remove(kr, "2024-02"), ==, ENCORE_TOKEN_EUNKNOWNKID);
    g_assert_cmpint(encore_token_keyring_set_current(kr, "2024-02"), ==, ENCORE_TOKEN_EUNKNOWNKID);

    /* Keyring errors. */
    uint8_t big[ENCORE_TOKEN_SECRET_MAX + 1];
    memset(big, 7, sizeof big);
    g_assert_cmpint(encore_token_keyring_add(kr, "a", K1, 31), ==, ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_keyring_add(kr, "a", big, sizeof big), ==, ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_keyring_add(kr, "a", big, sizeof big - 1), ==, 0);
    g_assert_cmpint(encore_token_keyring_add(kr, "a", K1, KLEN), ==, ENCORE_TOKEN_EEXISTS);
    g_assert_cmpint(encore_token_keyring_add(kr, "", K1, KLEN), ==, ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_keyring_add(kr, "a b", K1, KLEN), ==, ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_keyring_add(kr, "a\"b", K1, KLEN), ==, ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_keyring_add(kr, "0123456789abcdef0123456789abcdefX", K1, KLEN), ==,
                    ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_keyring_add(kr, "0123456789abcdef0123456789abcdef", K1, KLEN), ==,
                    0);
    g_assert_cmpint(encore_token_keyring_add(kr, NULL, K1, KLEN), ==, ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_keyring_add(kr, "b", NULL, KLEN), ==, ENCORE_TOKEN_EINVAL);
    /* The first key added to an empty ring became current ("a"). */
    g_assert_cmpstr(encore_token_keyring_current(kr), ==, "a");
    for (int i = 0; i < ENCORE_TOKEN_MAX_KEYS - 2; i++) {
        char kid[8];
        g_snprintf(kid, sizeof kid, "f%d", i);
        g_assert_cmpint(encore_token_keyring_add(kr, kid, K1, KLEN), ==, 0);
    }
    g_assert_cmpint(encore_token_keyring_add(kr, "full", K1, KLEN), ==, ENCORE_TOKEN_EFULL);
    g_assert_cmpint(encore_token_keyring_remove(kr, "f3"), ==, 0);
    g_assert_cmpint(encore_token_keyring_add(kr, "full", K1, KLEN), ==, 0);
    encore_token_keyring_free(kr);
    encore_token_keyring_free(NULL);
}

static void test_sign_errors(void)
{
    encore_token_keyring *kr = ring_k1();
    char out[ENCORE_TOKEN_BUF_LEN];
    encore_token_claims c = {
        .user_id = 1, .role = ENCORE_ROLE_SINGER, .iat = 10, .nbf = 10, .exp = 20, .jti = "j"};
    g_assert_cmpint(encore_token_sign(kr, &c, out, sizeof out, NULL), ==, 0);
    /* The kid field is ignored when signing. */
    g_strlcpy(c.kid, "other", sizeof c.kid);
    g_assert_cmpint(encore_token_sign(kr, &c, out, sizeof out, NULL), ==, 0);
    encore_token_claims v;
    g_assert_cmpint(encore_token_verify(kr, out, strlen(out), 15, &v), ==, 0);
    g_assert_cmpstr(v.kid, ==, "k1");

    encore_token_claims bad;
    bad = c;
    bad.user_id = 0;
    g_assert_cmpint(encore_token_sign(kr, &bad, out, sizeof out, NULL), ==, ENCORE_TOKEN_EINVAL);
    g_assert_cmpstr(out, ==, "");
    bad = c;
    bad.role = (encore_role)ENCORE_ROLE_COUNT;
    g_assert_cmpint(encore_token_sign(kr, &bad, out, sizeof out, NULL), ==, ENCORE_TOKEN_EINVAL);
    bad = c;
    bad.exp = bad.nbf;
    g_assert_cmpint(encore_token_sign(kr, &bad, out, sizeof out, NULL), ==, ENCORE_TOKEN_EINVAL);
    bad = c;
    bad.iat = -1;
    g_assert_cmpint(encore_token_sign(kr, &bad, out, sizeof out, NULL), ==, ENCORE_TOKEN_EINVAL);
    bad = c;
    bad.exp = ENCORE_TOKEN_MAX_TIME + 1;
    g_assert_cmpint(encore_token_sign(kr, &bad, out, sizeof out, NULL), ==, ENCORE_TOKEN_EINVAL);
    bad = c;
    bad.exp = bad.iat + ENCORE_TOKEN_DEFAULT_MAX_LIFETIME + 1;
    g_assert_cmpint(encore_token_sign(kr, &bad, out, sizeof out, NULL), ==, ENCORE_TOKEN_EINVAL);
    bad = c;
    bad.jti[0] = '\0';
    g_assert_cmpint(encore_token_sign(kr, &bad, out, sizeof out, NULL), ==, ENCORE_TOKEN_EINVAL);
    bad = c;
    g_strlcpy(bad.jti, "no/slash", sizeof bad.jti);
    g_assert_cmpint(encore_token_sign(kr, &bad, out, sizeof out, NULL), ==, ENCORE_TOKEN_EINVAL);
    /* Output space: every size below the token's own fails cleanly; its size + 1 works. */
    size_t n = 0;
    g_assert_cmpint(encore_token_sign(kr, &c, out, sizeof out, &n), ==, 0);
    for (size_t cap = 0; cap <= n; cap++) {
        char small[ENCORE_TOKEN_BUF_LEN];
        memset(small, 'x', sizeof small);
        g_assert_cmpint(encore_token_sign(kr, &c, small, cap, NULL), ==, ENCORE_TOKEN_ENOSPACE);
        if (cap > 0)
            g_assert_cmpint(small[0], ==, '\0');
    }
    char exact[ENCORE_TOKEN_BUF_LEN];
    g_assert_cmpint(encore_token_sign(kr, &c, exact, n + 1, NULL), ==, 0);
    g_assert_cmpstr(exact, ==, out);
    /* issue() argument checks. */
    g_assert_cmpint(encore_token_issue(kr, 1, ENCORE_ROLE_SINGER, 10, 0, out, sizeof out, NULL), ==,
                    ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_issue(kr, 1, ENCORE_ROLE_SINGER, -1, 10, out, sizeof out, NULL),
                    ==, ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_issue(kr, 1, ENCORE_ROLE_SINGER, ENCORE_TOKEN_MAX_TIME, 10, out,
                                       sizeof out, NULL),
                    ==, ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_issue(kr, 0, ENCORE_ROLE_SINGER, 10, 10, out, sizeof out, NULL),
                    ==, ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_issue(kr, -5, ENCORE_ROLE_SINGER, 10, 10, out, sizeof out, NULL),
                    ==, ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_issue(kr, 1, ENCORE_ROLE_SINGER, 10, 10, NULL, 0, NULL), ==,
                    ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_issue(NULL, 1, ENCORE_ROLE_SINGER, 10, 10, out, sizeof out, NULL),
                    ==, ENCORE_TOKEN_EINVAL);
    /* verify() argument checks. */
    g_assert_cmpint(encore_token_verify(NULL, "a.b.c", 5, 0, &v), ==, ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_verify(kr, NULL, 5, 0, &v), ==, ENCORE_TOKEN_EINVAL);
    g_assert_cmpint(encore_token_verify(kr, "a.b.c", 5, 0, NULL), ==, ENCORE_TOKEN_EINVAL);
    encore_token_keyring_free(kr);
}

static void test_limits_and_codes(void)
{
    encore_token_keyring *kr = ring_k1();
    /* Over 4096 bytes is malformed before anything else, even when otherwise well-formed. */
    GString *p = g_string_new("{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,"
                              "\"exp\":2000,\"jti\":\"j1\"");
    while (p->len < 3100)
        g_string_append(p, "    ");
    g_string_append(p, "}");
    char *tok = raw_token(HDR_K1, p->str, K1);
    g_assert_cmpuint(strlen(tok), >, ENCORE_TOKEN_MAX_LEN);
    g_assert_cmpint(verify_str(kr, tok, 1500), ==, ENCORE_TOKEN_EMALFORMED);
    g_free(tok);
    g_string_free(p, TRUE);
    /* Just under the limit, with a large but valid payload: accepted. */
    p = g_string_new("{\"sub\":\"42\",\"role\":\"singer\",\"iat\":1000,\"nbf\":1000,"
                     "\"exp\":2000,\"jti\":\"j1\"");
    while (p->len < 2900)
        g_string_append(p, " ");
    g_string_append(p, "}");
    tok = raw_token(HDR_K1, p->str, K1);
    g_assert_cmpuint(strlen(tok), <=, ENCORE_TOKEN_MAX_LEN);
    g_assert_cmpint(verify_str(kr, tok, 1500), ==, 0);
    g_free(tok);
    g_string_free(p, TRUE);
    encore_token_keyring_free(kr);

    static const struct {
        int err;
        const char *code;
    } codes[] = {
        {0, "ok"},
        {ENCORE_TOKEN_EMALFORMED, "malformed"},
        {ENCORE_TOKEN_EBADALG, "bad_alg"},
        {ENCORE_TOKEN_EBADSIG, "bad_signature"},
        {ENCORE_TOKEN_EEXPIRED, "expired"},
        {ENCORE_TOKEN_ENOTYETVALID, "not_yet_valid"},
        {ENCORE_TOKEN_EUNKNOWNKID, "unknown_kid"},
        {ENCORE_TOKEN_EBADCLAIMS, "bad_claims"},
        {ENCORE_TOKEN_EINVAL, "invalid_argument"},
        {ENCORE_TOKEN_ENOSPACE, "no_space"},
        {ENCORE_TOKEN_ENOKEY, "no_current_key"},
        {ENCORE_TOKEN_EEXISTS, "kid_exists"},
        {ENCORE_TOKEN_EFULL, "keyring_full"},
        {ENCORE_TOKEN_ECRYPTO, "crypto_failure"},
        {-99, "internal"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(codes); i++)
        g_assert_cmpstr(encore_token_error_code(codes[i].err), ==, codes[i].code);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/accounts/mac/rfc4231", test_mac_rfc4231);
    g_test_add_func("/accounts/b64/rfc4648-and-strictness", test_b64);
    g_test_add_func("/accounts/flatjson/subset", test_flatjson);
    g_test_add_func("/accounts/token/known-vector", test_known_token);
    g_test_add_func("/accounts/token/issue-roundtrip", test_issue_roundtrip);
    g_test_add_func("/accounts/token/tampering", test_tampering);
    g_test_add_func("/accounts/token/alg-confusion", test_alg_confusion);
    g_test_add_func("/accounts/token/claims", test_claims);
    g_test_add_func("/accounts/token/time-edges", test_time_edges);
    g_test_add_func("/accounts/token/kid-rotation", test_kid_rotation);
    g_test_add_func("/accounts/token/sign-errors", test_sign_errors);
    g_test_add_func("/accounts/token/limits-and-codes", test_limits_and_codes);
    return g_test_run();
}
