/* Webhook signatures (parse, verify, sign) and the payment event parser. Pure functions for any
 * thread: bounds-checked, no allocation, no logging. Does not remember event ids: replays inside
 * the tolerance window are the ledger's to refuse (one credit per event id). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "server/accounts/b64.h"
#include "server/accounts/flatjson.h"
#include "server/accounts/webhook.h"

#define MAX_UNKNOWN_ITEMS 8

const char *encore_webhook_error_code(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case ENCORE_WEBHOOK_EMALFORMED_HEADER:
        return "malformed_header";
    case ENCORE_WEBHOOK_ESTALE:
        return "stale";
    case ENCORE_WEBHOOK_EBADSIG:
        return "bad_signature";
    case ENCORE_WEBHOOK_EBADEVENT:
        return "bad_event";
    case ENCORE_WEBHOOK_EUNSUPPORTED:
        return "unsupported_event";
    case ENCORE_WEBHOOK_EINVAL:
        return "invalid_argument";
    case ENCORE_WEBHOOK_ENOSPACE:
        return "no_space";
    case ENCORE_WEBHOOK_ECRYPTO:
        return "crypto_failure";
    default:
        return "internal";
    }
}

static bool secrets_ok(const encore_webhook_secret *secrets, size_t n)
{
    if (!secrets || n == 0 || n > ENCORE_WEBHOOK_MAX_SIGS)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!secrets[i].key || secrets[i].len < ENCORE_WEBHOOK_SECRET_MIN ||
            secrets[i].len > ENCORE_WEBHOOK_SECRET_MAX)
            return false;
    return true;
}

/* ---- header ---- */

/* A timestamp: 1-12 digits, no leading zero (so >= 1). */
static bool parse_t(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > ENCORE_WEBHOOK_MAX_T_DIGITS || s[0] == '0')
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool unknown_key_ok(const char *s, size_t len)
{
    if (len == 0 || len > 16 || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 1; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static bool unknown_value_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] > 0x7E)
            return false;
    return true;
}

/* One item key=value; updates out; returns false when it is malformed. */
static bool parse_item(const char *s, size_t len, encore_webhook_sig *out, bool *have_t,
                       unsigned *unknown)
{
    const char *eq = memchr(s, '=', len);
    if (!eq)
        return false;
    size_t klen = (size_t)(eq - s), vlen = len - klen - 1;
    const char *v = eq + 1;
    if (klen == 1 && s[0] == 't') {
        if (*have_t || !parse_t(v, vlen, &out->t))
            return false;
        *have_t = true;
        return true;
    }
    if (klen == 2 && s[0] == 'v' && s[1] == '1') {
        size_t got = 0;
        if (out->n_v1 >= ENCORE_WEBHOOK_MAX_SIGS || vlen != 2 * ENCORE_MAC_LEN ||
            encore_hex_decode(v, vlen, out->v1[out->n_v1], ENCORE_MAC_LEN, &got) != 0)
            return false;
        out->n_v1++;
        return true;
    }
    if (!unknown_key_ok(s, klen) || !unknown_value_ok(v, vlen) || ++*unknown > MAX_UNKNOWN_ITEMS)
        return false;
    return true;
}

int encore_webhook_parse_header(const char *s, size_t len, encore_webhook_sig *out)
{
    encore_webhook_sig sig;
    bool have_t = false;
    unsigned unknown = 0;
    memset(&sig, 0, sizeof sig);
    memset(out, 0, sizeof *out);
    if (!s || len > ENCORE_WEBHOOK_MAX_HEADER)
        return ENCORE_WEBHOOK_EMALFORMED_HEADER;
    while (len > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0)
        return ENCORE_WEBHOOK_EMALFORMED_HEADER;
    size_t pos = 0;
    for (;;) {
        const char *comma = memchr(s + pos, ',', len - pos);
        size_t end = comma ? (size_t)(comma - s) : len;
        if (end == pos || !parse_item(s + pos, end - pos, &sig, &have_t, &unknown))
            return ENCORE_WEBHOOK_EMALFORMED_HEADER;
        if (!comma)
            break;
        pos = end + 1;
    }
    if (!have_t || sig.n_v1 == 0)
        return ENCORE_WEBHOOK_EMALFORMED_HEADER;
    *out = sig;
    return 0;
}

/* ---- verify and sign ---- */

/* Formats t as decimal into buf (at least 16 bytes); returns its length. */
static size_t format_t(int64_t t, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%" PRId64, t);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static int mac_for(const encore_webhook_secret *secret, const char *t, size_t t_len,
                   const uint8_t *body, size_t body_len, uint8_t out[ENCORE_MAC_LEN])
{
    encore_mac_part parts[3] = {{t, t_len}, {".", 1}, {body, body_len}};
    return encore_mac_sha256(secret->key, secret->len, parts, 3, out);
}

int encore_webhook_verify(const char *header, size_t header_len, const uint8_t *body,
                          size_t body_len, const encore_webhook_secret *secrets, size_t n,
                          int64_t now, int64_t tolerance_s)
{
    encore_webhook_sig sig;
    char tbuf[24];
    if (!secrets_ok(secrets, n) || (!body && body_len > 0))
        return ENCORE_WEBHOOK_EINVAL;
    if (encore_webhook_parse_header(header, header_len, &sig) != 0)
        return ENCORE_WEBHOOK_EMALFORMED_HEADER;
    if (tolerance_s <= 0 || tolerance_s > ENCORE_WEBHOOK_TOLERANCE)
        tolerance_s = ENCORE_WEBHOOK_TOLERANCE;
    /* t < 10^12 and tolerance <= 300, so these cannot overflow whatever now is. */
    if (now > sig.t + tolerance_s || now < sig.t - tolerance_s)
        return ENCORE_WEBHOOK_ESTALE;
    size_t t_len = format_t(sig.t, tbuf, sizeof tbuf);
    unsigned match = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t tag[ENCORE_MAC_LEN];
        if (mac_for(&secrets[i], tbuf, t_len, body, body_len, tag) != 0)
            return ENCORE_WEBHOOK_ECRYPTO;
        for (size_t j = 0; j < sig.n_v1; j++)
            match |= (unsigned)encore_mac_equal(tag, sig.v1[j]);
        OPENSSL_cleanse(tag, sizeof tag);
    }
    return match ? 0 : ENCORE_WEBHOOK_EBADSIG;
}

int encore_webhook_sign(const encore_webhook_secret *secrets, size_t n, int64_t t,
                        const uint8_t *body, size_t body_len, char *out, size_t cap,
                        size_t *out_len)
{
    char tbuf[24];
    if (out && cap > 0)
        out[0] = '\0';
    if (!out || !secrets_ok(secrets, n) || t < 1 || t >= (int64_t)1000000000000 ||
        (!body && body_len > 0))
        return ENCORE_WEBHOOK_EINVAL;
    size_t t_len = format_t(t, tbuf, sizeof tbuf);
    /* "t=" t, then ",v1=" and 64 hex digits per secret, then the NUL. */
    size_t need = 2 + t_len + n * (4 + 2 * ENCORE_MAC_LEN) + 1;
    if (cap < need)
        return ENCORE_WEBHOOK_ENOSPACE;
    size_t pos = 0;
    memcpy(out, "t=", 2);
    memcpy(out + 2, tbuf, t_len);
    pos = 2 + t_len;
    for (size_t i = 0; i < n; i++) {
        uint8_t tag[ENCORE_MAC_LEN];
        if (mac_for(&secrets[i], tbuf, t_len, body, body_len, tag) != 0) {
            out[0] = '\0';
            return ENCORE_WEBHOOK_ECRYPTO;
        }
        memcpy(out + pos, ",v1=", 4);
        pos += 4;
        (void)encore_hex_encode(tag, sizeof tag, out + pos, cap - pos); /* fits: checked above */
        pos += 2 * ENCORE_MAC_LEN;
    }
    out[pos] = '\0';
    if (out_len)
        *out_len = pos;
    return 0;
}

/* ---- event body ---- */

static const struct {
    const char code[4];
    int digits;
} currencies[] = {
    {"CNY", 2}, {"USD", 2}, {"EUR", 2}, {"GBP", 2}, {"HKD", 2}, {"JPY", 0},
};

int encore_webhook_currency_digits(const char *code, size_t len)
{
    if (!code || len != 3)
        return -1;
    for (size_t i = 0; i < sizeof currencies / sizeof currencies[0]; i++)
        if (memcmp(currencies[i].code, code, 3) == 0)
            return currencies[i].digits;
    return -1;
}

static bool event_id_ok(const char *s, size_t len)
{
    if (len == 0 || len > ENCORE_WEBHOOK_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool event_type_ok(const char *s, size_t len)
{
    if (len == 0 || len > ENCORE_WEBHOOK_TYPE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return false;
    }
    return true;
}

enum {
    E_ID = 1u << 0,
    E_TYPE = 1u << 1,
    E_USER = 1u << 2,
    E_AMOUNT = 1u << 3,
    E_CURRENCY = 1u << 4,
    E_CREATED = 1u << 5,
    E_REQUIRED = E_ID | E_TYPE | E_USER | E_AMOUNT | E_CURRENCY,
};

static bool key_is(const encore_flatjson_member *m, const char *name)
{
    size_t n = strlen(name);
    return m->key_len == n && memcmp(m->key, name, n) == 0;
}

/* The members and the first invalid one, collected in one pass. */
typedef struct {
    encore_webhook_event ev;
    unsigned seen;
    const char *bad; /* first member with an invalid value (its name), or NULL */
    bool unknown;    /* a member this format does not have */
    bool dup;        /* a member seen twice */
} event_scan;

/* Checks and stores one member; returns false when its value is invalid. */
static bool event_value(event_scan *s, unsigned bit, const encore_flatjson_member *m,
                        int64_t max_amount)
{
    bool str = m->kind == ENCORE_FLATJSON_STRING, num = m->kind == ENCORE_FLATJSON_INT;
    switch (bit) {
    case E_ID:
        if (!str || !event_id_ok(m->str, m->str_len))
            return false;
        memcpy(s->ev.id, m->str, m->str_len);
        return true;
    case E_TYPE:
        if (!str || !event_type_ok(m->str, m->str_len))
            return false;
        memcpy(s->ev.type, m->str, m->str_len);
        return true;
    case E_USER:
        if (!num || m->num < 1)
            return false;
        s->ev.user_id = m->num;
        return true;
    case E_AMOUNT:
        if (!num || m->num < 1 || m->num > max_amount)
            return false;
        s->ev.amount = m->num;
        return true;
    case E_CURRENCY:
        if (!str || (s->ev.minor_digits = encore_webhook_currency_digits(m->str, m->str_len)) < 0)
            return false;
        memcpy(s->ev.currency, m->str, 3);
        return true;
    case E_CREATED:
        if (!num || m->num < 0)
            return false;
        s->ev.created = m->num;
        return true;
    default:
        return false;
    }
}

static const char *const member_names[] = {"id",     "type",     "user_id",
                                           "amount", "currency", "created"};
#define N_MEMBERS (sizeof member_names / sizeof member_names[0])

static void event_member(event_scan *s, const encore_flatjson_member *m, int64_t max_amount)
{
    unsigned i = 0;
    while (i < N_MEMBERS && !key_is(m, member_names[i]))
        i++;
    if (i == N_MEMBERS) {
        s->unknown = true;
        return;
    }
    unsigned bit = 1u << i;
    if (s->seen & bit) {
        s->dup = true;
        return;
    }
    s->seen |= bit;
    if (!event_value(s, bit, m, max_amount) && !s->bad)
        s->bad = member_names[i];
}

int encore_webhook_parse_event(const uint8_t *body, size_t len, int64_t max_amount,
                               encore_webhook_event *out, const char **bad_field)
{
    event_scan s;
    encore_flatjson_reader r;
    encore_flatjson_member m;
    int rc;
    memset(&s, 0, sizeof s);
    memset(out, 0, sizeof *out);
    if (bad_field)
        *bad_field = NULL;
    if (max_amount <= 0)
        max_amount = ENCORE_WEBHOOK_DEFAULT_MAX_AMOUNT;
    if (!body || len > ENCORE_WEBHOOK_MAX_BODY)
        return ENCORE_WEBHOOK_EBADEVENT;
    encore_flatjson_init(&r, body, len);
    while ((rc = encore_flatjson_next(&r, &m)) == 1)
        event_member(&s, &m, max_amount);
    if (rc < 0 || s.dup)
        return ENCORE_WEBHOOK_EBADEVENT;
    /* Another type: only its id and type matter (it is acknowledged, not credited). */
    if (s.ev.id[0] && s.ev.type[0] &&
        strcmp(s.ev.type, ENCORE_WEBHOOK_TYPE_PAYMENT_SUCCEEDED) != 0) {
        memcpy(out->id, s.ev.id, sizeof out->id);
        memcpy(out->type, s.ev.type, sizeof out->type);
        return ENCORE_WEBHOOK_EUNSUPPORTED;
    }
    if (s.unknown)
        return ENCORE_WEBHOOK_EBADEVENT;
    if (s.bad || (s.seen & E_REQUIRED) != E_REQUIRED) {
        if (bad_field) {
            *bad_field = s.bad;
            for (unsigned i = 0; !*bad_field && i < N_MEMBERS; i++)
                if ((E_REQUIRED & (1u << i)) && !(s.seen & (1u << i)))
                    *bad_field = member_names[i];
        }
        return ENCORE_WEBHOOK_EBADEVENT;
    }
    *out = s.ev;
    return 0;
}
