/* Unit tests for server/accounts/password.c: the reference implementation's argon2id vectors
 * (phc-winner-argon2 src/test.c) through our encoder and verifier, RFC 9106 §5.3 through
 * libargon2 itself, round trips with random salts, the policy (bytes, characters, NFC, control
 * characters), every malformed stored string, parameter bounds, needs_rehash and error codes. */
#include <string.h>

#include <argon2.h>
#include <glib.h>

#include "server/accounts/password.h"

static const encore_password_params test_params = ENCORE_PASSWORD_PARAMS_TEST;

static int verify(const char *encoded, const char *pw)
{
    return encore_password_verify(encoded, pw, strlen(pw));
}

/* ---- known answers ---- */

static const struct {
    encore_password_params params;
    const char *pw, *salt, *encoded;
} vectors[] = {
    {{256, 2, 1},
     "password",
     "somesalt",
     "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
    {{256, 2, 2},
     "password",
     "somesalt",
     "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"},
    {{65536, 2, 1},
     "password",
     "somesalt",
     "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
    {{65536, 1, 1},
     "password",
     "somesalt",
     "$argon2id$v=19$m=65536,t=1,p=1$c29tZXNhbHQ$9qWtwbpyPd3vm1rB1GThgPzZ3/ydHL92zKL+15XZypg"},
    {{65536, 4, 1},
     "password",
     "somesalt",
     "$argon2id$v=19$m=65536,t=4,p=1$c29tZXNhbHQ$kCXUjmjvc5XMqQedpMTsOv+zyJEf5PhtGiUghW9jFyw"},
    {{65536, 2, 1},
     "differentpassword",
     "somesalt",
     "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$C4TWUs9rDEvq7w3+J4umqA32aWKB1+DSiRuBfYxFj94"},
    {{65536, 2, 1},
     "password",
     "diffsalt",
     "$argon2id$v=19$m=65536,t=2,p=1$ZGlmZnNhbHQ$vfMrBczELrFdWP0ZsfhWsRPaHppYdP3MVEMIVlqoFBw"},
};

static void test_reference_vectors(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(vectors); i++) {
        char out[ENCORE_PASSWORD_ENCODED_MAX];
        g_test_message("vector %zu: %s", i, vectors[i].encoded);
        g_assert_cmpint(encore_password_hash_with_salt(&vectors[i].params, vectors[i].pw,
                                                       strlen(vectors[i].pw),
                                                       (const uint8_t *)vectors[i].salt,
                                                       strlen(vectors[i].salt), out, sizeof out),
                        ==, 0);
        g_assert_cmpstr(out, ==, vectors[i].encoded);
        g_assert_cmpint(verify(vectors[i].encoded, vectors[i].pw), ==, 0);
    }
    /* A near miss ("passwore", as in the reference tests) does not verify. */
    g_assert_cmpint(verify(vectors[0].encoded, "passwore"), ==, ENCORE_PASSWORD_EMISMATCH);
    g_assert_cmpint(verify(vectors[1].encoded, "Password"), ==, ENCORE_PASSWORD_EMISMATCH);
    /* One flipped bit in the stored hash does not verify. */
    char *flipped = g_strdup(vectors[0].encoded);
    flipped[strlen(flipped) - 5] = flipped[strlen(flipped) - 5] == 'A' ? 'B' : 'A';
    g_assert_cmpint(verify(flipped, "password"), ==, ENCORE_PASSWORD_EMISMATCH);
    g_free(flipped);
}

/* RFC 9106 §5.3 (with secret and associated data, which our API does not use): checks that the
 * system's libargon2 is a correct Argon2id. */
static void test_rfc9106_library(void)
{
    uint8_t pwd[32], salt[16], secret[8], ad[12], out[32];
    memset(pwd, 1, sizeof pwd);
    memset(salt, 2, sizeof salt);
    memset(secret, 3, sizeof secret);
    memset(ad, 4, sizeof ad);
    argon2_context ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.out = out;
    ctx.outlen = sizeof out;
    ctx.pwd = pwd;
    ctx.pwdlen = sizeof pwd;
    ctx.salt = salt;
    ctx.saltlen = sizeof salt;
    ctx.secret = secret;
    ctx.secretlen = sizeof secret;
    ctx.ad = ad;
    ctx.adlen = sizeof ad;
    ctx.t_cost = 3;
    ctx.m_cost = 32;
    ctx.lanes = 4;
    ctx.threads = 4;
    ctx.version = ARGON2_VERSION_13;
    g_assert_cmpint(argon2id_ctx(&ctx), ==, ARGON2_OK);
    static const uint8_t want[32] = {0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c,
                                     0x08, 0xc0, 0x37, 0xa3, 0x4a, 0x8b, 0x53, 0xc9,
                                     0xd0, 0x1e, 0xf0, 0x45, 0x2d, 0x75, 0xb6, 0x5e,
                                     0xb5, 0x25, 0x20, 0xe9, 0x6b, 0x01, 0xe6, 0x59};
    g_assert_cmpmem(out, sizeof out, want, sizeof want);
}

/* A string produced by libargon2's own encoder (no policy: a 3-character password) verifies:
 * stored hashes from other tools and older policies keep working. */
static void test_foreign_encoding(void)
{
    char enc[ENCORE_PASSWORD_ENCODED_MAX];
    const uint8_t salt[16] = "0123456789abcdef";
    g_assert_cmpint(
        argon2id_hash_encoded(1, 64, 1, "abc", 3, salt, sizeof salt, 32, enc, sizeof enc), ==,
        ARGON2_OK);
    g_assert_true(g_str_has_prefix(enc, "$argon2id$v=19$m=64,t=1,p=1$"));
    g_assert_cmpint(verify(enc, "abc"), ==, 0);
    g_assert_cmpint(verify(enc, "abd"), ==, ENCORE_PASSWORD_EMISMATCH);
    g_assert_cmpint(verify(enc, ""), ==, ENCORE_PASSWORD_EMISMATCH);
    g_assert_true(encore_password_needs_rehash(enc, &test_params));
}

/* ---- round trips ---- */

static void test_roundtrip(void)
{
    char a[ENCORE_PASSWORD_ENCODED_MAX], b[ENCORE_PASSWORD_ENCODED_MAX];
    const char *pw = "correct horse battery staple";
    g_assert_cmpint(encore_password_hash(&test_params, pw, strlen(pw), a, sizeof a), ==, 0);
    g_assert_cmpint(encore_password_hash(&test_params, pw, strlen(pw), b, sizeof b), ==, 0);
    /* "$argon2id$v=19$m=256,t=1,p=1$" + 22 salt characters + "$" + 43 hash characters. */
    g_assert_true(g_str_has_prefix(a, "$argon2id$v=19$m=256,t=1,p=1$"));
    g_assert_cmpuint(strlen(a), ==, strlen("$argon2id$v=19$m=256,t=1,p=1$") + 22 + 1 + 43);
    g_assert_cmpint(a[strlen("$argon2id$v=19$m=256,t=1,p=1$") + 22], ==, '$');
    g_assert_cmpstr(a, !=, b); /* fresh random salts */
    g_assert_cmpint(verify(a, pw), ==, 0);
    g_assert_cmpint(verify(b, pw), ==, 0);
    g_assert_cmpint(verify(a, "correct horse battery stapl"), ==, ENCORE_PASSWORD_EMISMATCH);
    g_assert_cmpint(encore_password_verify(a, pw, strlen(pw) - 1), ==, ENCORE_PASSWORD_EMISMATCH);
    g_assert_false(encore_password_needs_rehash(a, &test_params));
    g_assert_true(encore_password_needs_rehash(a, NULL));

    /* Production defaults (64 MiB, t=3): one real round trip. */
    g_assert_cmpint(encore_password_hash(NULL, pw, strlen(pw), a, sizeof a), ==, 0);
    g_assert_true(g_str_has_prefix(a, "$argon2id$v=19$m=65536,t=3,p=1$"));
    g_assert_cmpint(verify(a, pw), ==, 0);
    g_assert_false(encore_password_needs_rehash(a, NULL));
    encore_password_params more = {65536, 4, 1};
    g_assert_true(encore_password_needs_rehash(a, &more));

    /* Two lanes. */
    encore_password_params two = {512, 1, 2};
    g_assert_cmpint(encore_password_hash(&two, pw, strlen(pw), a, sizeof a), ==, 0);
    g_assert_true(g_str_has_prefix(a, "$argon2id$v=19$m=512,t=1,p=2$"));
    g_assert_cmpint(verify(a, pw), ==, 0);
}

/* ---- policy ---- */

static void test_policy(void)
{
    g_assert_cmpint(encore_password_check_policy("1234567", 7), ==, ENCORE_PASSWORD_ETOOSHORT);
    g_assert_cmpint(encore_password_check_policy("12345678", 8), ==, 0);
    g_assert_cmpint(encore_password_check_policy("", 0), ==, ENCORE_PASSWORD_ETOOSHORT);
    g_assert_cmpint(encore_password_check_policy(NULL, 0), ==, ENCORE_PASSWORD_ETOOSHORT);
    g_assert_cmpint(encore_password_check_policy(NULL, 3), ==, ENCORE_PASSWORD_EINVALID);
    char big[300];
    memset(big, 'a', sizeof big);
    g_assert_cmpint(encore_password_check_policy(big, 256), ==, 0);
    g_assert_cmpint(encore_password_check_policy(big, 257), ==, ENCORE_PASSWORD_ETOOLONG);
    /* Characters, not bytes, for the minimum: 8 characters are enough, 7 CJK characters (21
     * bytes) are too short. */
    const char *cjk8 = "\xe6\x88\x91\xe7\x88\xb1\xe5\x94\xb1\xe5\x8d\xa1\xe6\x8b\x89OK!";
    g_assert_cmpint(encore_password_check_policy(cjk8, strlen(cjk8)), ==, 0); /* 5 CJK + "OK!" */
    const char *cjk_short = "\xe6\x88\x91\xe7\x88\xb1\xe5\x94\xb1\xe5\x8d\xa1\xe6\x8b\x89\xe6\x88"
                            "\x91\xe7\x88\xb1";
    g_assert_cmpint(encore_password_check_policy(cjk_short, strlen(cjk_short)), ==,
                    ENCORE_PASSWORD_ETOOSHORT);
    /* Bytes for the maximum: 64 four-byte emoji = 256 bytes fit, 65 do not. */
    GString *emoji = g_string_new(NULL);
    for (int i = 0; i < 64; i++)
        g_string_append(emoji, "\xf0\x9f\x8e\xa4");
    g_assert_cmpint(encore_password_check_policy(emoji->str, emoji->len), ==, 0);
    g_string_append(emoji, "\xf0\x9f\x8e\xa4");
    g_assert_cmpint(encore_password_check_policy(emoji->str, emoji->len), ==,
                    ENCORE_PASSWORD_ETOOLONG);
    g_string_free(emoji, TRUE);
    /* Not UTF-8, or control characters. */
    static const char *const invalid[] = {
        "abcdefgh\xff",
        "abcdefgh\xc3",
        "abc\xc0\xaf"
        "defgh",
        "abcdefgh\xed\xa0\x80",
        "abcd\tefgh",
        "abcdefgh\n",
        "abcd\x1b"
        "efgh",
        "abcd\x7f"
        "efgh",
        "abcd\xc2\x85"
        "efgh",
        "abcd\xc2\x9f"
        "efgh",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(invalid); i++)
        g_assert_cmpint(encore_password_check_policy(invalid[i], strlen(invalid[i])), ==,
                        ENCORE_PASSWORD_EINVALID);
    /* A NUL inside the given length. */
    g_assert_cmpint(encore_password_check_policy("abcd\0efgh", 9), ==, ENCORE_PASSWORD_EINVALID);
    /* U+00A0 and other non-control characters are fine. */
    g_assert_cmpint(encore_password_check_policy("abcd\xc2\xa0"
                                                 "efgh",
                                                 10),
                    ==, 0);
    /* Order: too long before invalid before too short. */
    char longbad[300];
    memset(longbad, 0xff, sizeof longbad);
    g_assert_cmpint(encore_password_check_policy(longbad, sizeof longbad), ==,
                    ENCORE_PASSWORD_ETOOLONG);
    g_assert_cmpint(encore_password_check_policy("\xff", 1), ==, ENCORE_PASSWORD_EINVALID);

    /* Hashing applies the policy. */
    char out[ENCORE_PASSWORD_ENCODED_MAX];
    g_assert_cmpint(encore_password_hash(&test_params, "short", 5, out, sizeof out), ==,
                    ENCORE_PASSWORD_ETOOSHORT);
    g_assert_cmpstr(out, ==, "");
    g_assert_cmpint(encore_password_hash(&test_params, big, 257, out, sizeof out), ==,
                    ENCORE_PASSWORD_ETOOLONG);
    g_assert_cmpint(encore_password_hash(&test_params, "abcdefgh\xff", 9, out, sizeof out), ==,
                    ENCORE_PASSWORD_EINVALID);
    /* Verification applies the maximum and validity, not the minimum. */
    g_assert_cmpint(verify(vectors[0].encoded, "pass"), ==, ENCORE_PASSWORD_EMISMATCH);
    g_assert_cmpint(encore_password_verify(vectors[0].encoded, big, 257), ==,
                    ENCORE_PASSWORD_ETOOLONG);
    g_assert_cmpint(verify(vectors[0].encoded, "password\xff"), ==, ENCORE_PASSWORD_EINVALID);
}

/* The NFC form is what is hashed: a precomposed and a decomposed spelling are one password,
 * and the minimum counts characters of the NFC form. */
static void test_normalization(void)
{
    const char *composed = "caf\xc3\xa9-au-lait";    /* U+00E9 */
    const char *decomposed = "cafe\xcc\x81-au-lait"; /* e + U+0301 */
    char out[ENCORE_PASSWORD_ENCODED_MAX];
    g_assert_cmpint(encore_password_hash(&test_params, composed, strlen(composed), out, sizeof out),
                    ==, 0);
    g_assert_cmpint(verify(out, composed), ==, 0);
    g_assert_cmpint(verify(out, decomposed), ==, 0);
    g_assert_cmpint(verify(out, "cafe-au-lait"), ==, ENCORE_PASSWORD_EMISMATCH);
    /* Eight code points as typed, four after NFC. */
    const char *nfd4 = "e\xcc\x81"
                       "e\xcc\x81"
                       "e\xcc\x81"
                       "e\xcc\x81";
    g_assert_cmpint(encore_password_check_policy(nfd4, strlen(nfd4)), ==,
                    ENCORE_PASSWORD_ETOOSHORT);
    /* The same known answer through both spellings (fixed salt): identical strings. */
    char a[ENCORE_PASSWORD_ENCODED_MAX], b[ENCORE_PASSWORD_ENCODED_MAX];
    const uint8_t salt[16] = "fixed-salt-16byt";
    g_assert_cmpint(encore_password_hash_with_salt(&test_params, composed, strlen(composed), salt,
                                                   sizeof salt, a, sizeof a),
                    ==, 0);
    g_assert_cmpint(encore_password_hash_with_salt(&test_params, decomposed, strlen(decomposed),
                                                   salt, sizeof salt, b, sizeof b),
                    ==, 0);
    g_assert_cmpstr(a, ==, b);
    /* Frozen once: libargon2's own argon2id_hash_encoded() of the NFC bytes gives this string. */
    g_assert_cmpstr(a, ==,
                    "$argon2id$v=19$m=256,t=1,p=1$Zml4ZWQtc2FsdC0xNmJ5dA$"
                    "p5AU6pJo3bTuigOKinjn4+W26YicPNf324rJxXJXf78");
}

/* ---- malformed stored strings ---- */

static void test_bad_encoded(void)
{
    static const char *const bad[] = {
        "",
        "argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8",
        "$argon2d$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=16$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$t=2,m=256,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=0256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=+256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=0,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=2,p=0$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=65,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=2,p=65$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=15,t=2,p=2$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=2097152,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=99999999999,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCH",
        "$argon2id$v=19$m=256,t=2,p=1,k=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbA$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ=$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4=",
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi_4",
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4 ",
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/5",
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4r", /* 15-byte hash */
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$",
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ",
        "$argon2id$v=19$m=256,t=2,p=1$$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4$x",
        " $argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_test_message("encoded %zu: %s", i, bad[i]);
        g_assert_cmpint(verify(bad[i], "password"), ==, ENCORE_PASSWORD_EENCODED);
        g_assert_true(encore_password_needs_rehash(bad[i], NULL));
    }
    g_assert_cmpint(encore_password_verify(NULL, "password", 8), ==, ENCORE_PASSWORD_EENCODED);
    g_assert_true(encore_password_needs_rehash(NULL, NULL));
    /* A salt over 64 bytes, and a stored string of 256 characters or more. */
    GString *s = g_string_new("$argon2id$v=19$m=256,t=2,p=1$");
    for (int i = 0; i < 88; i++)
        g_string_append_c(s, 'A');
    g_string_append(s, "$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4");
    g_assert_cmpint(verify(s->str, "password"), ==, ENCORE_PASSWORD_EENCODED);
    g_string_truncate(s, 0);
    g_string_append(s, vectors[0].encoded);
    while (s->len < ENCORE_PASSWORD_ENCODED_MAX)
        g_string_append_c(s, 'A');
    g_assert_cmpint(verify(s->str, "password"), ==, ENCORE_PASSWORD_EENCODED);
    g_string_free(s, TRUE);
}

/* ---- parameters, buffers, rehash, dummy, codes ---- */

static void test_param_bounds(void)
{
    char out[ENCORE_PASSWORD_ENCODED_MAX];
    const char *pw = "password";
    const uint8_t salt[65] = {0};
    static const encore_password_params bad[] = {
        {7, 1, 1},
        {15, 1, 2},
        {256, 0, 1},
        {256, 65, 1},
        {256, 1, 0},
        {8192, 1, 65},
        {ENCORE_PASSWORD_MAX_M_KIB + 1, 1, 1},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_cmpint(encore_password_hash(&bad[i], pw, 8, out, sizeof out), ==,
                        ENCORE_PASSWORD_EPARAMS);
        g_assert_cmpstr(out, ==, "");
        g_assert_false(encore_password_params_strong(&bad[i]));
    }
    g_assert_cmpint(encore_password_hash_with_salt(&test_params, pw, 8, salt, 7, out, sizeof out),
                    ==, ENCORE_PASSWORD_EPARAMS);
    g_assert_cmpint(encore_password_hash_with_salt(&test_params, pw, 8, salt, 65, out, sizeof out),
                    ==, ENCORE_PASSWORD_EPARAMS);
    g_assert_cmpint(encore_password_hash_with_salt(&test_params, pw, 8, NULL, 16, out, sizeof out),
                    ==, ENCORE_PASSWORD_EPARAMS);
    g_assert_cmpint(encore_password_hash_with_salt(&test_params, pw, 8, salt, 64, out, sizeof out),
                    ==, 0);
    g_assert_cmpint(verify(out, pw), ==, 0);
    g_assert_false(encore_password_needs_rehash(out, &test_params)); /* long salts are fine */

    /* Output space: the exact size works, one less does not. */
    g_assert_cmpint(encore_password_hash(&test_params, pw, 8, out, sizeof out), ==, 0);
    size_t need = strlen(out) + 1;
    char small[ENCORE_PASSWORD_ENCODED_MAX];
    for (size_t cap = 0; cap < need; cap += 7) {
        memset(small, 'x', sizeof small);
        g_assert_cmpint(encore_password_hash(&test_params, pw, 8, small, cap), ==,
                        ENCORE_PASSWORD_ENOSPACE);
        if (cap > 0)
            g_assert_cmpint(small[0], ==, '\0');
    }
    g_assert_cmpint(encore_password_hash(&test_params, pw, 8, small, need - 1), ==,
                    ENCORE_PASSWORD_ENOSPACE);
    g_assert_cmpint(encore_password_hash(&test_params, pw, 8, small, need), ==, 0);
    g_assert_cmpint(encore_password_hash(&test_params, pw, 8, NULL, 0), ==,
                    ENCORE_PASSWORD_ENOSPACE);

    /* Strength. */
    encore_password_params def = ENCORE_PASSWORD_PARAMS_DEFAULT;
    encore_password_params floor_ok = {19456, 2, 1}, floor_low_m = {19455, 2, 1},
                           floor_low_t = {65536, 1, 1};
    g_assert_true(encore_password_params_strong(&def));
    g_assert_true(encore_password_params_strong(&floor_ok));
    g_assert_false(encore_password_params_strong(&floor_low_m));
    g_assert_false(encore_password_params_strong(&floor_low_t));
    g_assert_false(encore_password_params_strong(&test_params));
    g_assert_false(encore_password_params_strong(NULL));

    /* needs_rehash: the 8-byte-salt reference string with its own parameters still wants a
     * rehash (salt shorter than 16 bytes). */
    g_assert_true(encore_password_needs_rehash(vectors[0].encoded, &vectors[0].params));
}

static void test_dummy(void)
{
    g_assert_cmpint(encore_password_verify_dummy(&test_params, "whatever-password", 17), ==,
                    ENCORE_PASSWORD_EMISMATCH);
    g_assert_cmpint(encore_password_verify_dummy(&test_params, "", 0), ==,
                    ENCORE_PASSWORD_EMISMATCH);
    char big[300];
    memset(big, 'a', sizeof big);
    g_assert_cmpint(encore_password_verify_dummy(&test_params, big, sizeof big), ==,
                    ENCORE_PASSWORD_ETOOLONG);
    g_assert_cmpint(encore_password_verify_dummy(&test_params, "a\xff", 2), ==,
                    ENCORE_PASSWORD_EINVALID);
    static const struct {
        int err;
        const char *code;
    } codes[] = {
        {0, "ok"},
        {ENCORE_PASSWORD_ETOOSHORT, "too_short"},
        {ENCORE_PASSWORD_ETOOLONG, "too_long"},
        {ENCORE_PASSWORD_EINVALID, "invalid"},
        {ENCORE_PASSWORD_EMISMATCH, "mismatch"},
        {ENCORE_PASSWORD_EENCODED, "bad_encoded"},
        {ENCORE_PASSWORD_EPARAMS, "bad_params"},
        {ENCORE_PASSWORD_ENOSPACE, "no_space"},
        {ENCORE_PASSWORD_ERANDOM, "random_failure"},
        {ENCORE_PASSWORD_ENOMEM, "no_memory"},
        {ENCORE_PASSWORD_EINTERNAL, "internal"},
        {42, "internal"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(codes); i++)
        g_assert_cmpstr(encore_password_error_code(codes[i].err), ==, codes[i].code);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/accounts/password/reference-vectors", test_reference_vectors);
    g_test_add_func("/accounts/password/rfc9106-library", test_rfc9106_library);
    g_test_add_func("/accounts/password/foreign-encoding", test_foreign_encoding);
    g_test_add_func("/accounts/password/roundtrip", test_roundtrip);
    g_test_add_func("/accounts/password/policy", test_policy);
    g_test_add_func("/accounts/password/normalization", test_normalization);
    g_test_add_func("/accounts/password/bad-encoded", test_bad_encoded);
    g_test_add_func("/accounts/password/params", test_param_bounds);
    g_test_add_func("/accounts/password/dummy-and-codes", test_dummy);
    return g_test_run();
}
