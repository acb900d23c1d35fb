/* libFuzzer target for server/accounts/token.c: raw tokens through encore_token_verify(), and
 * header/claims JSON wrapped in a correctly signed token so the fuzzer reaches the code behind
 * the MAC. The first byte picks the mode ('0' raw token, '1' header NUL payload, '2' claims).
 * Whatever verifies must satisfy the documented invariants and re-sign to the same claims. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/accounts/b64.h"
#include "server/accounts/flatjson.h"
#include "server/accounts/mac.h"
#include "server/accounts/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define K1 ((const uint8_t *)"0123456789abcdef0123456789abcdef")
#define K2 ((const uint8_t *)"fedcba9876543210fedcba9876543210")
#define NOW 1500

static encore_token_keyring *ring(void)
{
    static encore_token_keyring *kr;
    if (!kr) {
        kr = encore_token_keyring_new(NULL);
        if (!kr || encore_token_keyring_add(kr, "k1", K1, 32) != 0 ||
            encore_token_keyring_add(kr, "k2", K2, 32) != 0)
            abort();
    }
    return kr;
}

/* Checks a successful verification: claims in range, and signing them again with the current
 * key (k1) yields a token that verifies to the same claims. */
static void check_claims(const encore_token_claims *c)
{
    if (c->user_id < 1 || !encore_roles_name(c->role) || c->exp <= c->nbf || c->exp <= c->iat ||
        c->iat < 0 || c->exp > ENCORE_TOKEN_MAX_TIME || c->jti[0] == '\0' ||
        c->exp - c->iat > ENCORE_TOKEN_DEFAULT_MAX_LIFETIME)
        abort();
    if (strcmp(c->kid, "k1") != 0 && strcmp(c->kid, "k2") != 0)
        abort();
    char tok[ENCORE_TOKEN_BUF_LEN];
    encore_token_claims again;
    if (encore_token_sign(ring(), c, tok, sizeof tok, NULL) != 0)
        abort();
    if (encore_token_verify(ring(), tok, strlen(tok), NOW, &again) != 0)
        abort();
    if (again.user_id != c->user_id || again.role != c->role || again.iat != c->iat ||
        again.nbf != c->nbf || again.exp != c->exp || strcmp(again.jti, c->jti) != 0)
        abort();
}

static void verify_raw(const char *tok, size_t len)
{
    encore_token_claims c;
    int rc = encore_token_verify(ring(), tok, len, NOW, &c);
    if (rc > 0 || rc < ENCORE_TOKEN_ECRYPTO)
        abort();
    if (rc == 0)
        check_claims(&c);
}

/* header[0..hl) and payload[0..pl) as JSON, wrapped and signed with K1. */
static void verify_signed(const uint8_t *header, size_t hl, const uint8_t *payload, size_t pl)
{
    static char tok[2 * ENCORE_TOKEN_MAX_LEN];
    size_t a, b, s;
    uint8_t tag[ENCORE_MAC_LEN];
    if (ENCORE_B64_ENCODED_LEN(hl) + ENCORE_B64_ENCODED_LEN(pl) + 48 > sizeof tok)
        return;
    if (encore_b64_encode(ENCORE_B64_URL, header, hl, tok, sizeof tok, &a) != 0)
        abort();
    tok[a] = '.';
    if (encore_b64_encode(ENCORE_B64_URL, payload, pl, tok + a + 1, sizeof tok - a - 1, &b) != 0)
        abort();
    encore_mac_part part = {tok, a + 1 + b};
    if (encore_mac_sha256(K1, 32, &part, 1, tag) != 0)
        abort();
    tok[a + 1 + b] = '.';
    if (encore_b64_encode(ENCORE_B64_URL, tag, sizeof tag, tok + a + b + 2, sizeof tok - a - b - 2,
                          &s) != 0)
        abort();
    verify_raw(tok, a + b + 2 + s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        verify_raw("", 0);
        return 0;
    }
    uint8_t mode = data[0] % 3;
    data++;
    size--;
    if (mode == 0) {
        verify_raw((const char *)data, size);
    } else if (mode == 1) {
        const uint8_t *nul = memchr(data, 0, size);
        size_t hl = nul ? (size_t)(nul - data) : size;
        const uint8_t *p = nul ? nul + 1 : data + size;
        verify_signed(data, hl, p, size - hl - (nul ? 1 : 0));
    } else {
        /* The claims parser alone, under the pinned header. */
        encore_token_claims c;
        if (encore_token_parse_claims(data, size, &c) == 0 &&
            (c.user_id < 1 || c.exp <= c.nbf || c.exp <= c.iat || !encore_roles_name(c.role)))
            abort();
        static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}";
        verify_signed((const uint8_t *)hdr, sizeof hdr - 1, data, size);
        /* The decoders on raw input. */
        uint8_t out[4096];
        size_t n;
        (void)encore_b64_decode(ENCORE_B64_URL, (const char *)data, size, out, sizeof out, &n);
        (void)encore_b64_decode(ENCORE_B64_STD, (const char *)data, size, out, sizeof out, &n);
        (void)encore_hex_decode((const char *)data, size, out, sizeof out, &n);
    }
    return 0;
}
