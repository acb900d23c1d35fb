/* Short-lived signed access tokens: JWT-compatible compact form with HMAC-SHA256, the algorithm
 * pinned, and a keyring of key ids for rotation (docs/accounts.md has the exact format).
 * Verification is a pure check against a caller-supplied clock; a keyring is owned by one thread
 * at a time (no internal lock) and never logs. */
#ifndef ENCORE_ACCOUNTS_TOKEN_H
#define ENCORE_ACCOUNTS_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "server/accounts/roles.h"

/* Longest token encore_token_verify() looks at (bytes); longer ones are malformed. */
#define ENCORE_TOKEN_MAX_LEN 4096
/* A buffer this size holds any token this module issues, with its NUL. */
#define ENCORE_TOKEN_BUF_LEN 512
/* Key ids: 1-32 characters of [A-Za-z0-9_-]. */
#define ENCORE_TOKEN_KID_MAX 32
/* Token ids (jti): 1-64 characters of [A-Za-z0-9_-]; issued ones are 22 (128 random bits). */
#define ENCORE_TOKEN_JTI_MAX 64
/* Secrets: 32-256 bytes (RFC 7518 §3.2: at least the hash size). */
#define ENCORE_TOKEN_SECRET_MIN 32
#define ENCORE_TOKEN_SECRET_MAX 256
/* Keys a keyring holds at most. */
#define ENCORE_TOKEN_MAX_KEYS 16
/* Times (iat, nbf, exp) are Unix seconds in [0, 2^53 - 1]. */
#define ENCORE_TOKEN_MAX_TIME ((int64_t)9007199254740991)
/* Defaults and bounds of encore_token_config. */
#define ENCORE_TOKEN_DEFAULT_LEEWAY 30
#define ENCORE_TOKEN_MAX_LEEWAY 300
#define ENCORE_TOKEN_DEFAULT_MAX_LIFETIME 86400

/* Return values: 0 or one of these. The first seven are verification outcomes (stable codes, see
 * encore_token_error_code()); the rest report misuse or failures on the issuing side. */
typedef enum {
    ENCORE_TOKEN_EMALFORMED = -1,   /* "malformed": not three base64url segments of the right
                                       shape, too long, header not the pinned JSON object */
    ENCORE_TOKEN_EBADALG = -2,      /* "bad_alg": header alg missing or anything but "HS256" */
    ENCORE_TOKEN_EBADSIG = -3,      /* "bad_signature": the MAC does not match */
    ENCORE_TOKEN_EEXPIRED = -4,     /* "expired": now >= exp + leeway */
    ENCORE_TOKEN_ENOTYETVALID = -5, /* "not_yet_valid": now < nbf - leeway or now < iat - leeway */
    ENCORE_TOKEN_EUNKNOWNKID = -6,  /* "unknown_kid": no key with the header's kid */
    ENCORE_TOKEN_EBADCLAIMS = -7,   /* "bad_claims": signed, but the claims are not the
                                       documented set with valid values */
    ENCORE_TOKEN_EINVAL = -8,       /* "invalid_argument": bad kid, secret, claims or config */
    ENCORE_TOKEN_ENOSPACE = -9,     /* "no_space": the output buffer is too small */
    ENCORE_TOKEN_ENOKEY = -10,      /* "no_current_key": the keyring has no current key */
    ENCORE_TOKEN_EEXISTS = -11,     /* "kid_exists": a key with this kid is already there */
    ENCORE_TOKEN_EFULL = -12,       /* "keyring_full": ENCORE_TOKEN_MAX_KEYS keys already */
    ENCORE_TOKEN_ECRYPTO = -13,     /* "crypto_failure": OpenSSL MAC or RAND_bytes failed */
} encore_token_error;

/* The stable code string of an error above ("malformed", "bad_alg", ...), "ok" for 0 and
 * "internal" for anything else. Static strings. */
const char *encore_token_error_code(int err);

/* Keyring settings. A zero field takes the default. */
typedef struct {
    int64_t leeway_s;       /* 30: clock skew allowed on exp, nbf and iat; at most 300 */
    int64_t max_lifetime_s; /* 86400: tokens whose exp - iat is longer are bad_claims, and
                               encore_token_issue() refuses longer ttls */
} encore_token_config;

/* The claims of a token. All are required in a token. */
typedef struct {
    int64_t user_id;  /* "sub": the account id, >= 1, as a decimal string in the token */
    encore_role role; /* "role": one of the role names of roles.h */
    int64_t iat;      /* "iat": issued at (Unix seconds) */
    int64_t nbf;      /* "nbf": not valid before */
    int64_t exp;      /* "exp": not valid from this time on; exp > nbf and exp > iat */
    char jti[ENCORE_TOKEN_JTI_MAX + 1]; /* "jti": unique token id, NUL-terminated */
    /* Set by encore_token_verify(): the kid of the key that verified the token (ignored when
     * signing, which always uses the current key). */
    char kid[ENCORE_TOKEN_KID_MAX + 1];
} encore_token_claims;

typedef struct encore_token_keyring encore_token_keyring; /* opaque */

/* Creates an empty keyring. cfg may be NULL (defaults); it is copied. Returns NULL only when cfg
 * is out of range: leeway_s or max_lifetime_s negative, leeway_s > 300, max_lifetime_s >
 * ENCORE_TOKEN_MAX_TIME. Free with encore_token_keyring_free(). */
encore_token_keyring *
encore_token_keyring_new(const encore_token_config *cfg) G_GNUC_WARN_UNUSED_RESULT;

/* Frees the keyring and wipes its secrets. Accepts NULL. */
void encore_token_keyring_free(encore_token_keyring *kr);

/* Adds a key: kid is copied (NUL-terminated), secret[0..len) is copied. The first key added
 * becomes the current key; later ones only verify until encore_token_keyring_set_current().
 * Returns 0, ENCORE_TOKEN_EINVAL (kid not 1-32 of [A-Za-z0-9_-], len outside 32-256, NULL
 * arguments), ENCORE_TOKEN_EEXISTS or ENCORE_TOKEN_EFULL. */
int encore_token_keyring_add(encore_token_keyring *kr, const char *kid, const uint8_t *secret,
                             size_t len) G_GNUC_WARN_UNUSED_RESULT;

/* Makes the key kid the one that signs. Returns 0 or ENCORE_TOKEN_EUNKNOWNKID. */
int encore_token_keyring_set_current(encore_token_keyring *kr,
                                     const char *kid) G_GNUC_WARN_UNUSED_RESULT;

/* Removes the key kid and wipes its secret: its tokens stop verifying (unknown_kid). Removing the
 * current key leaves the keyring without one (issuing fails with ENCORE_TOKEN_ENOKEY until
 * set_current). Returns 0 or ENCORE_TOKEN_EUNKNOWNKID. */
int encore_token_keyring_remove(encore_token_keyring *kr,
                                const char *kid) G_GNUC_WARN_UNUSED_RESULT;

/* The current key's kid (borrowed, valid until the keyring changes), or NULL. */
const char *encore_token_keyring_current(const encore_token_keyring *kr);

/* Signs exactly these claims with the current key into out (NUL-terminated); out_len (may be
 * NULL) receives the length without the NUL. claims->kid is ignored. Returns 0,
 * ENCORE_TOKEN_EINVAL (a claim out of range: user_id < 1, unknown role, a time outside
 * [0, ENCORE_TOKEN_MAX_TIME], exp <= nbf or exp <= iat, exp - iat over max_lifetime_s, jti not
 * 1-64 of [A-Za-z0-9_-]), ENCORE_TOKEN_ENOKEY, ENCORE_TOKEN_ENOSPACE (cap too small; 512 always
 * suffices) or ENCORE_TOKEN_ECRYPTO. On error out is an empty string when cap > 0. */
int encore_token_sign(const encore_token_keyring *kr, const encore_token_claims *claims, char *out,
                      size_t cap, size_t *out_len) G_GNUC_WARN_UNUSED_RESULT;

/* Issues a token for user_id with role, valid from now (iat = nbf = now) for ttl_s seconds,
 * with a random 128-bit jti (OpenSSL RAND_bytes). issued (may be NULL) receives the claims.
 * Returns what encore_token_sign() returns; ENCORE_TOKEN_EINVAL also when ttl_s < 1,
 * ttl_s > max_lifetime_s or now + ttl_s is out of range; ENCORE_TOKEN_ECRYPTO when RAND_bytes
 * fails. */
int encore_token_issue(const encore_token_keyring *kr, int64_t user_id, encore_role role,
                       int64_t now, int64_t ttl_s, char *out, size_t cap,
                       encore_token_claims *issued) G_GNUC_WARN_UNUSED_RESULT;

/* Verifies token[0..len) (need not be NUL-terminated) at time now (Unix seconds). The checks run
 * in this order, and the first failure is returned:
 *   ENCORE_TOKEN_EMALFORMED   len is 0 or over 4096; not exactly three '.'-separated segments;
 *                             an empty header or payload segment; a header segment that is not
 *                             strict base64url (no padding, only [A-Za-z0-9_-], canonical last
 *                             character) of at most 512 bytes holding a flat JSON object;
 *   ENCORE_TOKEN_EBADALG      the header's alg is missing, duplicated or not exactly "HS256"
 *                             ("none", "HS512", "RS256", ...): nothing cryptographic has run yet;
 *   ENCORE_TOKEN_EMALFORMED   the header has a typ other than "JWT", no valid kid, any other
 *                             member or a duplicate; the payload segment is not strict base64url;
 *                             the signature segment is not 43 strict base64url characters;
 *   ENCORE_TOKEN_EUNKNOWNKID  no key has the header's kid;
 *   ENCORE_TOKEN_EBADSIG      HMAC-SHA256 over "header.payload" differs (CRYPTO_memcmp);
 *   ENCORE_TOKEN_EBADCLAIMS   the payload is not exactly the six claims with valid values (see
 *                             encore_token_parse_claims()), or exp - iat > max_lifetime_s;
 *   ENCORE_TOKEN_ENOTYETVALID now < nbf - leeway, or now < iat - leeway;
 *   ENCORE_TOKEN_EEXPIRED     now >= exp + leeway;
 *   ENCORE_TOKEN_EINVAL       kr, token or out is NULL (out is still zeroed when not NULL);
 *   ENCORE_TOKEN_ECRYPTO      OpenSSL failed to compute the MAC.
 * On success returns 0 and fills *out (including out->kid); on failure *out is zeroed. */
int encore_token_verify(const encore_token_keyring *kr, const char *token, size_t len, int64_t now,
                        encore_token_claims *out) G_GNUC_WARN_UNUSED_RESULT;

/* Parses a claims object json[0..len) without any signature or time check (exposed for tests and
 * fuzzing; servers call encore_token_verify()). Accepts exactly one flat JSON object with the
 * members sub (decimal string, no leading zero, 1..INT64_MAX), role (a role name), iat, nbf, exp
 * (integers in [0, 2^53 - 1]) and jti (string, 1-64 of [A-Za-z0-9_-]), each once, in any order,
 * nothing else; and exp > nbf, exp > iat. Returns 0 with *out filled (kid empty) or
 * ENCORE_TOKEN_EBADCLAIMS with *out zeroed. */
int encore_token_parse_claims(const uint8_t *json, size_t len, encore_token_claims *out);

#endif /* ENCORE_ACCOUNTS_TOKEN_H */
