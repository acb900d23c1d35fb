/* Password hashing with Argon2id (Debian's libargon2) in the PHC string format, the password
 * policy, constant-time verification and rehash detection. Thread-safe and stateless, but slow
 * and memory-hungry by design (64 MiB, ~0.1-0.3 s per call with the defaults): never call it on
 * the main loop or a media worker; run it on a small, bounded worker pool. Never logs. */
#ifndef ENCORE_ACCOUNTS_PASSWORD_H
#define ENCORE_ACCOUNTS_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

/* Policy: at least 8 characters (Unicode code points, counted after NFC normalization) and at
 * most 256 bytes of UTF-8 as given; no control characters (U+0000-001F, U+007F-009F). */
#define ENCORE_PASSWORD_MIN_CHARS 8
#define ENCORE_PASSWORD_MAX_BYTES 256
/* What encore_password_hash() produces: a 16-byte random salt and a 32-byte hash. */
#define ENCORE_PASSWORD_SALT_LEN 16
#define ENCORE_PASSWORD_HASH_LEN 32
/* A buffer this size holds every encoded string this module writes or accepts, with its NUL. */
#define ENCORE_PASSWORD_ENCODED_MAX 256

/* Bounds on parameters, for hashing and for stored strings (a corrupted or hostile stored
 * string must not make verification allocate gigabytes). */
#define ENCORE_PASSWORD_MAX_M_KIB 1048576u /* 1 GiB */
#define ENCORE_PASSWORD_MAX_T 64u
#define ENCORE_PASSWORD_MAX_P 64u
/* Salts (8-64 bytes) and hashes (16-64 bytes) accepted in stored strings. */
#define ENCORE_PASSWORD_MIN_SALT 8
#define ENCORE_PASSWORD_MAX_SALT 64
#define ENCORE_PASSWORD_MIN_HASH 16
#define ENCORE_PASSWORD_MAX_HASH 64

/* Argon2id cost parameters. Valid: 1 <= p <= 64, 8 * p <= m_kib <= 1 GiB, 1 <= t <= 64. */
typedef struct {
    uint32_t m_kib; /* memory in KiB */
    uint32_t t;     /* passes over memory */
    uint32_t p;     /* lanes (and threads) */
} encore_password_params;

/* Production defaults: 64 MiB, 3 passes, 1 lane (above the OWASP floor of 19 MiB, t=2). */
#define ENCORE_PASSWORD_PARAMS_DEFAULT ((encore_password_params){65536, 3, 1})
/* A cheap profile for tests only (256 KiB, 1 pass): never in production. */
#define ENCORE_PASSWORD_PARAMS_TEST ((encore_password_params){256, 1, 1})

/* Return values: 0 or one of these. */
typedef enum {
    ENCORE_PASSWORD_ETOOSHORT = -1,  /* "too_short": fewer than 8 characters */
    ENCORE_PASSWORD_ETOOLONG = -2,   /* "too_long": more than 256 bytes */
    ENCORE_PASSWORD_EINVALID = -3,   /* "invalid": not UTF-8, or a control character */
    ENCORE_PASSWORD_EMISMATCH = -4,  /* "mismatch": verify: wrong password */
    ENCORE_PASSWORD_EENCODED = -5,   /* "bad_encoded": the stored string is not an argon2id v=19
                                        PHC string within the bounds above */
    ENCORE_PASSWORD_EPARAMS = -6,    /* "bad_params": params (or salt length) out of range */
    ENCORE_PASSWORD_ENOSPACE = -7,   /* "no_space": the output buffer is too small */
    ENCORE_PASSWORD_ERANDOM = -8,    /* "random_failure": RAND_bytes failed */
    ENCORE_PASSWORD_ENOMEM = -9,     /* "no_memory": Argon2 could not allocate its memory */
    ENCORE_PASSWORD_EINTERNAL = -10, /* "internal": any other libargon2 failure */
} encore_password_error;

/* The stable code string of an error above, "ok" for 0, "internal" for anything else. */
const char *encore_password_error_code(int err);

/* True when params are valid and at least the OWASP floor (m >= 19456 KiB and t >= 2): what a
 * production configuration must satisfy. ENCORE_PASSWORD_PARAMS_TEST is not strong. */
bool encore_password_params_strong(const encore_password_params *params);

/* Checks pw[0..len) (UTF-8, need not be NUL-terminated) against the policy without hashing.
 * Returns 0, ENCORE_PASSWORD_ETOOLONG, ENCORE_PASSWORD_EINVALID or ENCORE_PASSWORD_ETOOSHORT
 * (checked in that order). */
int encore_password_check_policy(const char *pw, size_t len);

/* Hashes pw[0..len) (policy-checked, then NFC-normalized) with params (NULL: the defaults) and a
 * fresh 16-byte salt from RAND_bytes, writing the PHC string
 *   $argon2id$v=19$m=<m_kib>,t=<t>,p=<p>$<salt>$<hash>
 * (salt and hash in standard base64 without padding) to out (NUL-terminated). Returns 0, a policy
 * error, ENCORE_PASSWORD_EPARAMS, ENCORE_PASSWORD_ENOSPACE (cap too small;
 * ENCORE_PASSWORD_ENCODED_MAX always suffices), ENCORE_PASSWORD_ERANDOM, ENCORE_PASSWORD_ENOMEM or
 * ENCORE_PASSWORD_EINTERNAL. On error out is an empty string when cap > 0. */
int encore_password_hash(const encore_password_params *params, const char *pw, size_t len,
                         char *out, size_t cap) G_GNUC_WARN_UNUSED_RESULT;

/* As encore_password_hash() with a caller-chosen salt[0..salt_len) (8-64 bytes, else
 * ENCORE_PASSWORD_EPARAMS): deterministic, for known-answer tests and migrations only. Production
 * code calls encore_password_hash(). */
int encore_password_hash_with_salt(const encore_password_params *params, const char *pw, size_t len,
                                   const uint8_t *salt, size_t salt_len, char *out,
                                   size_t cap) G_GNUC_WARN_UNUSED_RESULT;

/* Verifies pw[0..len) against the stored PHC string encoded (NUL-terminated, at most 255
 * characters). The minimum length is not applied (older policies), the rest is. The hash is
 * recomputed with the stored parameters and compared in constant time (CRYPTO_memcmp).
 * Returns 0 on a match, ENCORE_PASSWORD_EMISMATCH, ENCORE_PASSWORD_ETOOLONG,
 * ENCORE_PASSWORD_EINVALID, ENCORE_PASSWORD_EENCODED, ENCORE_PASSWORD_ENOMEM or
 * ENCORE_PASSWORD_EINTERNAL. Callers answer every non-zero result with the same "wrong
 * credentials" to the client. */
int encore_password_verify(const char *encoded, const char *pw,
                           size_t len) G_GNUC_WARN_UNUSED_RESULT;

/* Spends the same time as a verification with params (NULL: defaults) and always returns
 * ENCORE_PASSWORD_EMISMATCH (or a policy error for an over-long or invalid pw): call it when the
 * account does not exist, so that timing does not reveal which names are registered. */
int encore_password_verify_dummy(const encore_password_params *params, const char *pw, size_t len);

/* True when encoded should be replaced by a new hash after a successful verification: it does
 * not parse, or its m, t or p differ from params (NULL: defaults), or its salt is shorter than 16
 * bytes or its hash is not 32 bytes. */
bool encore_password_needs_rehash(const char *encoded, const encore_password_params *params);

#endif /* ENCORE_ACCOUNTS_PASSWORD_H */
