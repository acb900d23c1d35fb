/* Access tokens: issuing and verifying the JWT-compatible HS256 compact form with a pinned header,
 * a keyring for rotation and strict claims. Verification is pure given the keyring and a clock;
 * the keyring belongs to one thread at a time. Never logs, never parses claims before the MAC. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "server/accounts/b64.h"
#include "server/accounts/flatjson.h"
#include "server/accounts/mac.h"
#include "server/accounts/token.h"

/* Decoded size limits of the segments (the whole token is at most 4096 characters). */
#define HEADER_MAX 512
#define PAYLOAD_MAX 3072
#define SIG_CHARS 43 /* ENCORE_B64_ENCODED_LEN(32) */

typedef struct {
    bool used;
    char kid[ENCORE_TOKEN_KID_MAX + 1];
    size_t kid_len;
    uint8_t secret[ENCORE_TOKEN_SECRET_MAX];
    size_t secret_len;
} token_key;

struct encore_token_keyring {
    encore_token_config cfg; /* defaults applied */
    token_key keys[ENCORE_TOKEN_MAX_KEYS];
    int current; /* index into keys, or -1 */
};

const char *encore_token_error_code(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case ENCORE_TOKEN_EMALFORMED:
        return "malformed";
    case ENCORE_TOKEN_EBADALG:
        return "bad_alg";
    case ENCORE_TOKEN_EBADSIG:
        return "bad_signature";
    case ENCORE_TOKEN_EEXPIRED:
        return "expired";
    case ENCORE_TOKEN_ENOTYETVALID:
        return "not_yet_valid";
    case ENCORE_TOKEN_EUNKNOWNKID:
        return "unknown_kid";
    case ENCORE_TOKEN_EBADCLAIMS:
        return "bad_claims";
    case ENCORE_TOKEN_EINVAL:
        return "invalid_argument";
    case ENCORE_TOKEN_ENOSPACE:
        return "no_space";
    case ENCORE_TOKEN_ENOKEY:
        return "no_current_key";
    case ENCORE_TOKEN_EEXISTS:
        return "kid_exists";
    case ENCORE_TOKEN_EFULL:
        return "keyring_full";
    case ENCORE_TOKEN_ECRYPTO:
        return "crypto_failure";
    default:
        return "internal";
    }
}

/* 1..max characters of [A-Za-z0-9_-]. */
static bool ident_ok(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool key_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* ---- keyring ---- */

encore_token_keyring *encore_token_keyring_new(const encore_token_config *cfg)
{
    encore_token_config c = {0};
    if (cfg)
        c = *cfg;
    if (c.leeway_s < 0 || c.leeway_s > ENCORE_TOKEN_MAX_LEEWAY || c.max_lifetime_s < 0 ||
        c.max_lifetime_s > ENCORE_TOKEN_MAX_TIME)
        return NULL;
    if (c.leeway_s == 0)
        c.leeway_s = ENCORE_TOKEN_DEFAULT_LEEWAY;
    if (c.max_lifetime_s == 0)
        c.max_lifetime_s = ENCORE_TOKEN_DEFAULT_MAX_LIFETIME;
    encore_token_keyring *kr = g_new0(encore_token_keyring, 1);
    kr->cfg = c;
    kr->current = -1;
    return kr;
}

void encore_token_keyring_free(encore_token_keyring *kr)
{
    if (!kr)
        return;
    OPENSSL_cleanse(kr, sizeof *kr);
    g_free(kr);
}

static int find_key(const encore_token_keyring *kr, const char *kid, size_t kid_len)
{
    for (int i = 0; i < ENCORE_TOKEN_MAX_KEYS; i++)
        if (kr->keys[i].used && key_eq(kr->keys[i].kid, kr->keys[i].kid_len, kid, kid_len))
            return i;
    return -1;
}

int encore_token_keyring_add(encore_token_keyring *kr, const char *kid, const uint8_t *secret,
                             size_t len)
{
    if (!kr || !kid || !secret)
        return ENCORE_TOKEN_EINVAL;
    size_t kid_len = strnlen(kid, ENCORE_TOKEN_KID_MAX + 1);
    if (!ident_ok(kid, kid_len, ENCORE_TOKEN_KID_MAX) || len < ENCORE_TOKEN_SECRET_MIN ||
        len > ENCORE_TOKEN_SECRET_MAX)
        return ENCORE_TOKEN_EINVAL;
    if (find_key(kr, kid, kid_len) >= 0)
        return ENCORE_TOKEN_EEXISTS;
    int slot = -1;
    for (int i = 0; i < ENCORE_TOKEN_MAX_KEYS && slot < 0; i++)
        if (!kr->keys[i].used)
            slot = i;
    if (slot < 0)
        return ENCORE_TOKEN_EFULL;
    token_key *k = &kr->keys[slot];
    k->used = true;
    memcpy(k->kid, kid, kid_len);
    k->kid[kid_len] = '\0';
    k->kid_len = kid_len;
    memcpy(k->secret, secret, len);
    k->secret_len = len;
    bool any_other = false;
    for (int i = 0; i < ENCORE_TOKEN_MAX_KEYS; i++)
        if (i != slot && kr->keys[i].used)
            any_other = true;
    if (!any_other)
        kr->current = slot;
    return 0;
}

int encore_token_keyring_set_current(encore_token_keyring *kr, const char *kid)
{
    if (!kr || !kid)
        return ENCORE_TOKEN_EUNKNOWNKID;
    int i = find_key(kr, kid, strnlen(kid, ENCORE_TOKEN_KID_MAX + 1));
    if (i < 0)
        return ENCORE_TOKEN_EUNKNOWNKID;
    kr->current = i;
    return 0;
}

int encore_token_keyring_remove(encore_token_keyring *kr, const char *kid)
{
    if (!kr || !kid)
        return ENCORE_TOKEN_EUNKNOWNKID;
    int i = find_key(kr, kid, strnlen(kid, ENCORE_TOKEN_KID_MAX + 1));
    if (i < 0)
        return ENCORE_TOKEN_EUNKNOWNKID;
    OPENSSL_cleanse(&kr->keys[i], sizeof kr->keys[i]);
    kr->keys[i].used = false;
    if (kr->current == i)
        kr->current = -1;
    return 0;
}

const char *encore_token_keyring_current(const encore_token_keyring *kr)
{
    if (!kr || kr->current < 0)
        return NULL;
    return kr->keys[kr->current].kid;
}

/* ---- claims ---- */

static bool time_ok(int64_t t)
{
    return t >= 0 && t <= ENCORE_TOKEN_MAX_TIME;
}

/* Range and consistency checks shared by signing and parsing (not the lifetime cap). */
static bool claims_ok(const encore_token_claims *c)
{
    return c->user_id >= 1 && encore_roles_name(c->role) != NULL && time_ok(c->iat) &&
           time_ok(c->nbf) && time_ok(c->exp) && c->exp > c->nbf && c->exp > c->iat &&
           ident_ok(c->jti, strnlen(c->jti, sizeof c->jti), ENCORE_TOKEN_JTI_MAX);
}

/* A user id as the token writes it: decimal, no sign, no leading zero, 1..INT64_MAX. */
static bool parse_user_id(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 19 || s[0] == '0')
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits cannot overflow uint64 */
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

enum {
    C_SUB = 1u << 0,
    C_ROLE = 1u << 1,
    C_IAT = 1u << 2,
    C_NBF = 1u << 3,
    C_EXP = 1u << 4,
    C_JTI = 1u << 5,
    C_ALL = (1u << 6) - 1,
};

/* Stores one member into c; returns its C_ bit, or 0 when the member is unknown or invalid. */
static unsigned claim_member(const encore_flatjson_member *m, encore_token_claims *c)
{
    bool str = m->kind == ENCORE_FLATJSON_STRING;
    if (key_eq(m->key, m->key_len, "sub", 3)) {
        return str && parse_user_id(m->str, m->str_len, &c->user_id) ? C_SUB : 0;
    } else if (key_eq(m->key, m->key_len, "role", 4)) {
        return str && encore_roles_parse(m->str, m->str_len, &c->role) == 0 ? C_ROLE : 0;
    } else if (key_eq(m->key, m->key_len, "jti", 3)) {
        if (!str || !ident_ok(m->str, m->str_len, ENCORE_TOKEN_JTI_MAX))
            return 0;
        memcpy(c->jti, m->str, m->str_len);
        c->jti[m->str_len] = '\0';
        return C_JTI;
    }
    int64_t *slot = NULL;
    unsigned bit = 0;
    if (key_eq(m->key, m->key_len, "iat", 3)) {
        slot = &c->iat;
        bit = C_IAT;
    } else if (key_eq(m->key, m->key_len, "nbf", 3)) {
        slot = &c->nbf;
        bit = C_NBF;
    } else if (key_eq(m->key, m->key_len, "exp", 3)) {
        slot = &c->exp;
        bit = C_EXP;
    }
    if (!slot || m->kind != ENCORE_FLATJSON_INT || !time_ok(m->num))
        return 0;
    *slot = m->num;
    return bit;
}

int encore_token_parse_claims(const uint8_t *json, size_t len, encore_token_claims *out)
{
    encore_token_claims c;
    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    encore_flatjson_reader r;
    encore_flatjson_member m;
    unsigned seen = 0;
    int rc;
    encore_flatjson_init(&r, json, len);
    while ((rc = encore_flatjson_next(&r, &m)) == 1) {
        unsigned bit = claim_member(&m, &c);
        if (bit == 0 || (seen & bit))
            return ENCORE_TOKEN_EBADCLAIMS;
        seen |= bit;
    }
    if (rc != 0 || seen != C_ALL || !claims_ok(&c))
        return ENCORE_TOKEN_EBADCLAIMS;
    *out = c;
    return 0;
}

/* ---- signing ---- */

/* Writes "<b64url(header)>.<b64url(payload)>" for claims and kid into out; returns its length,
 * or -1 when cap is too small. */
static int write_signing_input(const encore_token_claims *c, const char *kid, char *out, size_t cap)
{
    char header[96], payload[256];
    int hn =
        snprintf(header, sizeof header, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    int pn = snprintf(payload, sizeof payload,
                      "{\"sub\":\"%" PRId64 "\",\"role\":\"%s\",\"iat\":%" PRId64
                      ",\"nbf\":%" PRId64 ",\"exp\":%" PRId64 ",\"jti\":\"%s\"}",
                      c->user_id, encore_roles_name(c->role), c->iat, c->nbf, c->exp, c->jti);
    if (hn < 0 || (size_t)hn >= sizeof header || pn < 0 || (size_t)pn >= sizeof payload)
        return -1; /* cannot happen with validated claims and kid */
    size_t a = 0, b = 0;
    if (encore_b64_encode(ENCORE_B64_URL, (const uint8_t *)header, (size_t)hn, out, cap, &a) != 0)
        return -1;
    if (a + 1 >= cap)
        return -1;
    out[a] = '.';
    if (encore_b64_encode(ENCORE_B64_URL, (const uint8_t *)payload, (size_t)pn, out + a + 1,
                          cap - a - 1, &b) != 0)
        return -1;
    return (int)(a + 1 + b);
}

int encore_token_sign(const encore_token_keyring *kr, const encore_token_claims *claims, char *out,
                      size_t cap, size_t *out_len)
{
    int rc;
    if (out && cap > 0)
        out[0] = '\0';
    if (!kr || !claims || !out)
        return ENCORE_TOKEN_EINVAL;
    if (!claims_ok(claims) || claims->exp - claims->iat > kr->cfg.max_lifetime_s)
        return ENCORE_TOKEN_EINVAL;
    if (kr->current < 0)
        return ENCORE_TOKEN_ENOKEY;
    const token_key *k = &kr->keys[kr->current];
    int n = write_signing_input(claims, k->kid, out, cap);
    if (n < 0 || (size_t)n + 1 + SIG_CHARS + 1 > cap) {
        rc = ENCORE_TOKEN_ENOSPACE;
        goto out_clear;
    }
    uint8_t tag[ENCORE_MAC_LEN];
    encore_mac_part part = {out, (size_t)n};
    if (encore_mac_sha256(k->secret, k->secret_len, &part, 1, tag) != 0) {
        rc = ENCORE_TOKEN_ECRYPTO;
        goto out_clear;
    }
    out[n] = '.';
    size_t s = 0;
    if (encore_b64_encode(ENCORE_B64_URL, tag, sizeof tag, out + n + 1, cap - (size_t)n - 1, &s) !=
        0) {
        rc = ENCORE_TOKEN_ENOSPACE;
        goto out_clear;
    }
    if (out_len)
        *out_len = (size_t)n + 1 + s;
    return 0;
out_clear:
    if (cap > 0)
        out[0] = '\0';
    return rc;
}

int encore_token_issue(const encore_token_keyring *kr, int64_t user_id, encore_role role,
                       int64_t now, int64_t ttl_s, char *out, size_t cap,
                       encore_token_claims *issued)
{
    encore_token_claims c;
    memset(&c, 0, sizeof c);
    if (issued)
        memset(issued, 0, sizeof *issued);
    if (out && cap > 0)
        out[0] = '\0';
    if (!kr || !out)
        return ENCORE_TOKEN_EINVAL;
    if (ttl_s < 1 || ttl_s > kr->cfg.max_lifetime_s || !time_ok(now) ||
        now > ENCORE_TOKEN_MAX_TIME - ttl_s)
        return ENCORE_TOKEN_EINVAL;
    uint8_t rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return ENCORE_TOKEN_ECRYPTO;
    if (encore_b64_encode(ENCORE_B64_URL, rnd, sizeof rnd, c.jti, sizeof c.jti, NULL) != 0)
        return ENCORE_TOKEN_ECRYPTO; /* cannot happen: 22 characters fit */
    c.user_id = user_id;
    c.role = role;
    c.iat = now;
    c.nbf = now;
    c.exp = now + ttl_s;
    int rc = encore_token_sign(kr, &c, out, cap, NULL);
    if (rc == 0 && issued) {
        *issued = c;
        memcpy(issued->kid, encore_token_keyring_current(kr), kr->keys[kr->current].kid_len + 1);
    }
    return rc;
}

/* ---- verification ---- */

/* The header checks, before any cryptography: returns 0 with the kid, or an error. */
static int check_header(const uint8_t *h, size_t len, const char **kid, size_t *kid_len)
{
    encore_flatjson_reader r;
    encore_flatjson_member m;
    bool alg_ok = false, alg_seen = false, alg_dup = false, typ_ok = false, bad = false;
    int rc;
    *kid = NULL;
    *kid_len = 0;
    encore_flatjson_init(&r, h, len);
    while ((rc = encore_flatjson_next(&r, &m)) == 1) {
        bool str = m.kind == ENCORE_FLATJSON_STRING;
        if (key_eq(m.key, m.key_len, "alg", 3)) {
            alg_dup = alg_seen;
            alg_seen = true;
            alg_ok = str && key_eq(m.str, m.str_len, "HS256", 5);
        } else if (key_eq(m.key, m.key_len, "typ", 3)) {
            bad |= typ_ok || !str || !key_eq(m.str, m.str_len, "JWT", 3);
            typ_ok = true;
        } else if (key_eq(m.key, m.key_len, "kid", 3)) {
            bad |= *kid != NULL || !str || !ident_ok(m.str, m.str_len, ENCORE_TOKEN_KID_MAX);
            *kid = m.str;
            *kid_len = m.str_len;
        } else {
            bad = true; /* jku, jwk, x5u, crit, ...: nothing else is allowed */
        }
    }
    if (rc != 0)
        return ENCORE_TOKEN_EMALFORMED;
    if (!alg_ok || alg_dup)
        return ENCORE_TOKEN_EBADALG;
    if (bad || !typ_ok || !*kid)
        return ENCORE_TOKEN_EMALFORMED;
    return 0;
}

/* The time checks, written so that nothing overflows (times are bounded, now is not). */
static int check_times(const encore_token_claims *c, int64_t now, int64_t leeway)
{
    if (now < c->nbf - leeway || now < c->iat - leeway)
        return ENCORE_TOKEN_ENOTYETVALID;
    if (now >= c->exp + leeway)
        return ENCORE_TOKEN_EEXPIRED;
    return 0;
}

int encore_token_verify(const encore_token_keyring *kr, const char *token, size_t len, int64_t now,
                        encore_token_claims *out)
{
    uint8_t header[HEADER_MAX], payload[PAYLOAD_MAX], sig[ENCORE_MAC_LEN], tag[ENCORE_MAC_LEN];
    size_t header_len = 0, payload_len = 0, sig_len = 0;
    encore_token_claims c;
    int rc;
    if (out)
        memset(out, 0, sizeof *out);
    if (!kr || !token || !out)
        return ENCORE_TOKEN_EINVAL;
    if (len == 0 || len > ENCORE_TOKEN_MAX_LEN)
        return ENCORE_TOKEN_EMALFORMED;

    /* Shape: exactly two dots. */
    const char *d1 = memchr(token, '.', len);
    if (!d1)
        return ENCORE_TOKEN_EMALFORMED;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return ENCORE_TOKEN_EMALFORMED;
    size_t hseg = (size_t)(d1 - token), pseg = (size_t)(d2 - d1 - 1);
    size_t sseg = len - (size_t)(d2 + 1 - token);
    if (hseg == 0 || pseg == 0)
        return ENCORE_TOKEN_EMALFORMED;

    /* The header, pinned, before anything cryptographic. */
    if (encore_b64_decode(ENCORE_B64_URL, token, hseg, header, sizeof header, &header_len) != 0)
        return ENCORE_TOKEN_EMALFORMED;
    const char *kid;
    size_t kid_len;
    rc = check_header(header, header_len, &kid, &kid_len);
    if (rc != 0)
        return rc;
    if (encore_b64_decode(ENCORE_B64_URL, d1 + 1, pseg, payload, sizeof payload, &payload_len) !=
            0 ||
        sseg != SIG_CHARS ||
        encore_b64_decode(ENCORE_B64_URL, d2 + 1, sseg, sig, sizeof sig, &sig_len) != 0 ||
        sig_len != ENCORE_MAC_LEN)
        return ENCORE_TOKEN_EMALFORMED;

    int ki = find_key(kr, kid, kid_len);
    if (ki < 0)
        return ENCORE_TOKEN_EUNKNOWNKID;
    const token_key *k = &kr->keys[ki];
    encore_mac_part part = {token, (size_t)(d2 - token)};
    if (encore_mac_sha256(k->secret, k->secret_len, &part, 1, tag) != 0)
        return ENCORE_TOKEN_ECRYPTO;
    if (!encore_mac_equal(tag, sig))
        return ENCORE_TOKEN_EBADSIG;

    /* Authentic: now the claims. */
    if (encore_token_parse_claims(payload, payload_len, &c) != 0 ||
        c.exp - c.iat > kr->cfg.max_lifetime_s)
        return ENCORE_TOKEN_EBADCLAIMS;
    rc = check_times(&c, now, kr->cfg.leeway_s);
    if (rc != 0)
        return rc;
    memcpy(c.kid, k->kid, k->kid_len + 1);
    *out = c;
    return 0;
}
