/* Argon2id password hashing and verification in PHC string form, and the password policy.
 * Stateless and thread-safe; slow on purpose, so it runs on a worker thread, never on the main
 * loop. Wipes every copy of a password it makes; never logs. */
#include <stdio.h>
#include <string.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "server/accounts/b64.h"
#include "server/accounts/password.h"

#define PHC_PREFIX "$argon2id$v=19$"

/* A parsed stored string. */
typedef struct {
    encore_password_params params;
    uint8_t salt[ENCORE_PASSWORD_MAX_SALT];
    size_t salt_len;
    uint8_t hash[ENCORE_PASSWORD_MAX_HASH];
    size_t hash_len;
} phc;

const char *encore_password_error_code(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case ENCORE_PASSWORD_ETOOSHORT:
        return "too_short";
    case ENCORE_PASSWORD_ETOOLONG:
        return "too_long";
    case ENCORE_PASSWORD_EINVALID:
        return "invalid";
    case ENCORE_PASSWORD_EMISMATCH:
        return "mismatch";
    case ENCORE_PASSWORD_EENCODED:
        return "bad_encoded";
    case ENCORE_PASSWORD_EPARAMS:
        return "bad_params";
    case ENCORE_PASSWORD_ENOSPACE:
        return "no_space";
    case ENCORE_PASSWORD_ERANDOM:
        return "random_failure";
    case ENCORE_PASSWORD_ENOMEM:
        return "no_memory";
    default:
        return "internal";
    }
}

static bool params_valid(const encore_password_params *p)
{
    return p->p >= 1 && p->p <= ENCORE_PASSWORD_MAX_P && p->t >= 1 &&
           p->t <= ENCORE_PASSWORD_MAX_T && p->m_kib >= 8 * p->p &&
           p->m_kib <= ENCORE_PASSWORD_MAX_M_KIB;
}

bool encore_password_params_strong(const encore_password_params *params)
{
    return params && params_valid(params) && params->m_kib >= 19456 && params->t >= 2;
}

/* Applies the policy to pw and returns its NFC form in *norm (g_malloc'ed; the caller wipes and
 * frees it with free_norm()). */
static int prepare(const char *pw, size_t len, bool check_min, char **norm, size_t *norm_len)
{
    *norm = NULL;
    *norm_len = 0;
    if (!pw && len > 0)
        return ENCORE_PASSWORD_EINVALID;
    if (len > ENCORE_PASSWORD_MAX_BYTES)
        return ENCORE_PASSWORD_ETOOLONG;
    if (!pw)
        pw = "";
    /* Valid UTF-8 without NUL (g_utf8_validate_len refuses NUL bytes within len). */
    if (!g_utf8_validate_len(pw, len, NULL))
        return ENCORE_PASSWORD_EINVALID;
    for (const char *q = pw; q < pw + len; q = g_utf8_next_char(q)) {
        gunichar c = g_utf8_get_char(q);
        if (c < 0x20 || (c >= 0x7F && c <= 0x9F))
            return ENCORE_PASSWORD_EINVALID;
    }
    char *n = g_utf8_normalize(pw, (gssize)len, G_NORMALIZE_NFC);
    if (!n)
        return ENCORE_PASSWORD_EINVALID;
    size_t nl = strlen(n);
    if (check_min && g_utf8_strlen(n, (gssize)nl) < ENCORE_PASSWORD_MIN_CHARS) {
        OPENSSL_cleanse(n, nl);
        g_free(n);
        return ENCORE_PASSWORD_ETOOSHORT;
    }
    *norm = n;
    *norm_len = nl;
    return 0;
}

static void free_norm(char *norm, size_t len)
{
    if (!norm)
        return;
    OPENSSL_cleanse(norm, len);
    g_free(norm);
}

int encore_password_check_policy(const char *pw, size_t len)
{
    char *norm;
    size_t norm_len;
    int rc = prepare(pw, len, true, &norm, &norm_len);
    free_norm(norm, norm_len);
    return rc;
}

/* Raw Argon2id (version 0x13) of the normalized password. */
static int argon2id_raw(const encore_password_params *p, const char *pw, size_t pw_len,
                        const uint8_t *salt, size_t salt_len, uint8_t *out, size_t out_len)
{
    argon2_context ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.out = out;
    ctx.outlen = (uint32_t)out_len;
    ctx.pwd = (uint8_t *)pw; /* not written: no ARGON2_FLAG_CLEAR_PASSWORD */
    ctx.pwdlen = (uint32_t)pw_len;
    ctx.salt = (uint8_t *)salt;
    ctx.saltlen = (uint32_t)salt_len;
    ctx.t_cost = p->t;
    ctx.m_cost = p->m_kib;
    ctx.lanes = p->p;
    ctx.threads = p->p;
    ctx.version = ARGON2_VERSION_13;
    ctx.flags = ARGON2_DEFAULT_FLAGS;
    int rc = argon2id_ctx(&ctx);
    if (rc == ARGON2_OK)
        return 0;
    OPENSSL_cleanse(out, out_len);
    return rc == ARGON2_MEMORY_ALLOCATION_ERROR ? ENCORE_PASSWORD_ENOMEM
                                                : ENCORE_PASSWORD_EINTERNAL;
}

/* Writes the PHC string; returns 0 or ENCORE_PASSWORD_ENOSPACE. */
static int phc_write(const encore_password_params *p, const uint8_t *salt, size_t salt_len,
                     const uint8_t *hash, size_t hash_len, char *out, size_t cap)
{
    int n = snprintf(out, cap, PHC_PREFIX "m=%u,t=%u,p=%u$", p->m_kib, p->t, p->p);
    if (n < 0 || (size_t)n >= cap)
        return ENCORE_PASSWORD_ENOSPACE;
    size_t pos = (size_t)n, used = 0;
    if (encore_b64_encode(ENCORE_B64_STD, salt, salt_len, out + pos, cap - pos, &used) != 0)
        return ENCORE_PASSWORD_ENOSPACE;
    pos += used;
    if (pos + 1 >= cap)
        return ENCORE_PASSWORD_ENOSPACE;
    out[pos++] = '$';
    if (encore_b64_encode(ENCORE_B64_STD, hash, hash_len, out + pos, cap - pos, &used) != 0)
        return ENCORE_PASSWORD_ENOSPACE;
    return 0;
}

/* A decimal uint32 without sign or leading zero at *s, advancing *s. */
static bool parse_u32(const char **s, uint32_t *out)
{
    const char *q = *s;
    uint64_t v = 0;
    size_t digits = 0;
    while (*q >= '0' && *q <= '9' && digits < 11) {
        v = v * 10 + (uint64_t)(*q - '0');
        q++;
        digits++;
    }
    if (digits == 0 || digits > 10 || v > UINT32_MAX || (digits > 1 && **s == '0'))
        return false;
    *out = (uint32_t)v;
    *s = q;
    return true;
}

static bool eat(const char **s, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*s, lit, n) != 0)
        return false;
    *s += n;
    return true;
}

/* Parses "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH" strictly (NUL-terminated, < 256 chars). */
static bool phc_parse(const char *enc, phc *out)
{
    memset(out, 0, sizeof *out);
    if (!enc || strnlen(enc, ENCORE_PASSWORD_ENCODED_MAX) >= ENCORE_PASSWORD_ENCODED_MAX)
        return false;
    const char *s = enc;
    if (!eat(&s, PHC_PREFIX "m=") || !parse_u32(&s, &out->params.m_kib) || !eat(&s, ",t=") ||
        !parse_u32(&s, &out->params.t) || !eat(&s, ",p=") || !parse_u32(&s, &out->params.p) ||
        !eat(&s, "$"))
        return false;
    if (!params_valid(&out->params))
        return false;
    const char *dollar = strchr(s, '$');
    if (!dollar)
        return false;
    if (encore_b64_decode(ENCORE_B64_STD, s, (size_t)(dollar - s), out->salt, sizeof out->salt,
                          &out->salt_len) != 0 ||
        out->salt_len < ENCORE_PASSWORD_MIN_SALT)
        return false;
    s = dollar + 1;
    if (encore_b64_decode(ENCORE_B64_STD, s, strlen(s), out->hash, sizeof out->hash,
                          &out->hash_len) != 0 ||
        out->hash_len < ENCORE_PASSWORD_MIN_HASH)
        return false;
    return true;
}

int encore_password_hash_with_salt(const encore_password_params *params, const char *pw, size_t len,
                                   const uint8_t *salt, size_t salt_len, char *out, size_t cap)
{
    encore_password_params p = params ? *params : ENCORE_PASSWORD_PARAMS_DEFAULT;
    uint8_t hash[ENCORE_PASSWORD_HASH_LEN];
    char *norm = NULL;
    size_t norm_len = 0;
    int rc;
    if (out && cap > 0)
        out[0] = '\0';
    if (!out)
        return ENCORE_PASSWORD_ENOSPACE;
    if (!params_valid(&p) || !salt || salt_len < ENCORE_PASSWORD_MIN_SALT ||
        salt_len > ENCORE_PASSWORD_MAX_SALT)
        return ENCORE_PASSWORD_EPARAMS;
    rc = prepare(pw, len, true, &norm, &norm_len);
    if (rc != 0)
        return rc;
    rc = argon2id_raw(&p, norm, norm_len, salt, salt_len, hash, sizeof hash);
    if (rc == 0)
        rc = phc_write(&p, salt, salt_len, hash, sizeof hash, out, cap);
    if (rc != 0 && cap > 0)
        out[0] = '\0';
    OPENSSL_cleanse(hash, sizeof hash);
    free_norm(norm, norm_len);
    return rc;
}

int encore_password_hash(const encore_password_params *params, const char *pw, size_t len,
                         char *out, size_t cap)
{
    uint8_t salt[ENCORE_PASSWORD_SALT_LEN];
    if (out && cap > 0)
        out[0] = '\0';
    if (RAND_bytes(salt, sizeof salt) != 1)
        return ENCORE_PASSWORD_ERANDOM;
    return encore_password_hash_with_salt(params, pw, len, salt, sizeof salt, out, cap);
}

int encore_password_verify(const char *encoded, const char *pw, size_t len)
{
    phc stored;
    uint8_t got[ENCORE_PASSWORD_MAX_HASH];
    char *norm = NULL;
    size_t norm_len = 0;
    if (!phc_parse(encoded, &stored))
        return ENCORE_PASSWORD_EENCODED;
    int rc = prepare(pw, len, false, &norm, &norm_len);
    if (rc != 0)
        goto out;
    rc = argon2id_raw(&stored.params, norm, norm_len, stored.salt, stored.salt_len, got,
                      stored.hash_len);
    if (rc == 0 && CRYPTO_memcmp(got, stored.hash, stored.hash_len) != 0)
        rc = ENCORE_PASSWORD_EMISMATCH;
    OPENSSL_cleanse(got, sizeof got);
    free_norm(norm, norm_len);
out:
    OPENSSL_cleanse(&stored, sizeof stored);
    return rc;
}

int encore_password_verify_dummy(const encore_password_params *params, const char *pw, size_t len)
{
    static const uint8_t salt[ENCORE_PASSWORD_SALT_LEN] = "encore-no-user!";
    encore_password_params p = params ? *params : ENCORE_PASSWORD_PARAMS_DEFAULT;
    uint8_t got[ENCORE_PASSWORD_HASH_LEN], zero[ENCORE_PASSWORD_HASH_LEN] = {0};
    char *norm = NULL;
    size_t norm_len = 0;
    int rc = prepare(pw, len, false, &norm, &norm_len);
    if (rc != 0)
        return rc;
    if (params_valid(&p) &&
        argon2id_raw(&p, norm, norm_len, salt, sizeof salt, got, sizeof got) == 0)
        (void)CRYPTO_memcmp(got, zero, sizeof got); /* the same work as a real comparison */
    OPENSSL_cleanse(got, sizeof got);
    free_norm(norm, norm_len);
    return ENCORE_PASSWORD_EMISMATCH;
}

bool encore_password_needs_rehash(const char *encoded, const encore_password_params *params)
{
    encore_password_params want = params ? *params : ENCORE_PASSWORD_PARAMS_DEFAULT;
    phc stored;
    if (!phc_parse(encoded, &stored))
        return true;
    bool rehash = stored.params.m_kib != want.m_kib || stored.params.t != want.t ||
                  stored.params.p != want.p || stored.salt_len < ENCORE_PASSWORD_SALT_LEN ||
                  stored.hash_len != ENCORE_PASSWORD_HASH_LEN;
    OPENSSL_cleanse(&stored, sizeof stored);
    return rehash;
}
