/* Payment-provider webhooks: the Encore-Signature header (HMAC-SHA256 over "t.body" with a
 * shared secret, several v1 signatures during rotation), its verification against a clock, the
 * signer used by the sandbox provider and tests, and a strict parser of the event body.
 * Pure functions for any thread: no state, no allocation, no logging. Replay of an event id is
 * NOT detected here: the top-up layer credits each event id once through the ledger. */
#ifndef ENCORE_ACCOUNTS_WEBHOOK_H
#define ENCORE_ACCOUNTS_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "server/accounts/mac.h"

/* The HTTP header that carries the signature. */
#define ENCORE_WEBHOOK_HEADER "Encore-Signature"
/* Largest allowed |now - t| in seconds (and the default tolerance). */
#define ENCORE_WEBHOOK_TOLERANCE 300
/* Longest header value accepted (bytes) and most v1 entries in it. */
#define ENCORE_WEBHOOK_MAX_HEADER 1024
#define ENCORE_WEBHOOK_MAX_SIGS 8
/* Shared secrets: 32-256 bytes. */
#define ENCORE_WEBHOOK_SECRET_MIN 32
#define ENCORE_WEBHOOK_SECRET_MAX 256
/* Timestamps are at most this many decimal digits (t < 10^12). */
#define ENCORE_WEBHOOK_MAX_T_DIGITS 12
/* Largest event body parsed (bytes), and the default amount cap in minor units. */
#define ENCORE_WEBHOOK_MAX_BODY 16384
#define ENCORE_WEBHOOK_DEFAULT_MAX_AMOUNT ((int64_t)100000000)
/* Event ids: 1-64 characters of [A-Za-z0-9_-]. Event types: 1-64 of [a-z0-9_.]. */
#define ENCORE_WEBHOOK_ID_MAX 64
#define ENCORE_WEBHOOK_TYPE_MAX 64
/* The one event type that credits coins. */
#define ENCORE_WEBHOOK_TYPE_PAYMENT_SUCCEEDED "payment.succeeded"

/* Return values: 0 or one of these. */
typedef enum {
    ENCORE_WEBHOOK_EMALFORMED_HEADER = -1, /* "malformed_header": see encore_webhook_parse_header */
    ENCORE_WEBHOOK_ESTALE = -2,            /* "stale": |now - t| > tolerance */
    ENCORE_WEBHOOK_EBADSIG = -3,           /* "bad_signature": no v1 matches any secret */
    ENCORE_WEBHOOK_EBADEVENT = -4,         /* "bad_event": the body is not a valid event */
    ENCORE_WEBHOOK_EUNSUPPORTED = -5,      /* "unsupported_event": a valid event of another type */
    ENCORE_WEBHOOK_EINVAL = -6,            /* "invalid_argument": no secrets, a secret of the
                                              wrong size, a bad t, NULL arguments */
    ENCORE_WEBHOOK_ENOSPACE = -7,          /* "no_space": the output buffer is too small */
    ENCORE_WEBHOOK_ECRYPTO = -8,           /* "crypto_failure": OpenSSL failed */
} encore_webhook_error;

/* The stable code string of an error above ("malformed_header", "stale", ...), "ok" for 0 and
 * "internal" for anything else. Static strings. */
const char *encore_webhook_error_code(int err);

/* A shared secret, borrowed. */
typedef struct {
    const uint8_t *key;
    size_t len;
} encore_webhook_secret;

/* A parsed signature header. */
typedef struct {
    int64_t t;   /* the signed timestamp, Unix seconds, >= 1 */
    size_t n_v1; /* v1 signatures present: 1..ENCORE_WEBHOOK_MAX_SIGS */
    uint8_t v1[ENCORE_WEBHOOK_MAX_SIGS][ENCORE_MAC_LEN];
} encore_webhook_sig;

/* Parses the header value s[0..len) (need not be NUL-terminated; leading and trailing spaces
 * and tabs are ignored). Grammar: comma-separated items without spaces, each key=value:
 *   t=<1-12 decimal digits, no leading zero, >= 1>  exactly once;
 *   v1=<64 lowercase hex digits>                    1 to 8 times;
 *   <other key [a-z][a-z0-9]{0,15}>=<printable, no space or comma> ignored (future
 *                                                    schemes), at most 8 such items.
 * Returns 0 with *out filled, or ENCORE_WEBHOOK_EMALFORMED_HEADER (also for s NULL, len 0 or
 * over 1024, an empty item, a missing '=', a bad value, a duplicate t, no v1) with *out zeroed. */
int encore_webhook_parse_header(const char *s, size_t len, encore_webhook_sig *out);

/* Verifies a request: header[0..header_len) is the Encore-Signature value, body[0..body_len) the
 * raw request body exactly as received (body may be NULL when body_len is 0). secrets[0..n) are
 * the secrets currently accepted (1-8; during rotation the old and the new). tolerance_s is the
 * allowed |now - t|; values <= 0 or over 300 mean 300. Checks, in order:
 *   ENCORE_WEBHOOK_EINVAL            secrets NULL, n == 0 or n > 8, a secret outside 32-256 bytes,
 *                                    body NULL with body_len > 0;
 *   ENCORE_WEBHOOK_EMALFORMED_HEADER the header does not parse;
 *   ENCORE_WEBHOOK_ESTALE            t < now - tolerance or t > now + tolerance;
 *   ENCORE_WEBHOOK_EBADSIG           no v1 equals HMAC-SHA256(secret, t "." body) for any secret
 *                                    (every pair is compared in constant time, no early exit);
 *   ENCORE_WEBHOOK_ECRYPTO           OpenSSL failed.
 * Returns 0 when authentic and fresh. The same request stays valid for the whole tolerance
 * window: callers must make crediting idempotent on the event id. */
int encore_webhook_verify(const char *header, size_t header_len, const uint8_t *body,
                          size_t body_len, const encore_webhook_secret *secrets, size_t n,
                          int64_t now, int64_t tolerance_s) G_GNUC_WARN_UNUSED_RESULT;

/* Builds a header value "t=<t>,v1=<hex>[,v1=<hex>...]" with one v1 per secret (1-8), for the
 * sandbox provider and tests, into out (NUL-terminated); out_len (may be NULL) receives its
 * length. Returns 0, ENCORE_WEBHOOK_EINVAL (bad secrets as for verify, t < 1 or t >= 10^12),
 * ENCORE_WEBHOOK_ENOSPACE (cap too small; ENCORE_WEBHOOK_MAX_HEADER always suffices) or
 * ENCORE_WEBHOOK_ECRYPTO. On error out is an empty string when cap > 0. */
int encore_webhook_sign(const encore_webhook_secret *secrets, size_t n, int64_t t,
                        const uint8_t *body, size_t body_len, char *out, size_t cap,
                        size_t *out_len) G_GNUC_WARN_UNUSED_RESULT;

/* A payment event of the sandbox provider (docs/accounts.md). */
typedef struct {
    char id[ENCORE_WEBHOOK_ID_MAX + 1];     /* provider event id: the idempotency key */
    char type[ENCORE_WEBHOOK_TYPE_MAX + 1]; /* "payment.succeeded" (or the unsupported type) */
    int64_t user_id;                        /* account credited, >= 1 */
    int64_t amount;                         /* minor units of currency, 1..max_amount */
    char currency[4];                       /* ISO 4217 code, e.g. "CNY" */
    int minor_digits;                       /* decimal places of currency (CNY 2, JPY 0) */
    int64_t created;                        /* provider time of the event, 0 when absent */
} encore_webhook_event;

/* Decimal places of a supported ISO 4217 currency code[0..len) ("CNY", "USD", "EUR", "GBP",
 * "HKD": 2; "JPY": 0), or -1 for any other string (including lowercase). */
int encore_webhook_currency_digits(const char *code, size_t len);

/* Parses an event body[0..len): one flat JSON object with exactly the members
 *   "id" (string, 1-64 of [A-Za-z0-9_-]), "type" (string, 1-64 of [a-z0-9_.]),
 *   "user_id" (integer >= 1), "amount" (integer, 1..max_amount, minor units),
 *   "currency" (a supported code), and optionally "created" (integer >= 0),
 * each at most once and nothing else (no floats, exponents, escapes, nesting or literals).
 * max_amount <= 0 means ENCORE_WEBHOOK_DEFAULT_MAX_AMOUNT. Returns:
 *   0                           a valid payment.succeeded event, *out filled;
 *   ENCORE_WEBHOOK_EUNSUPPORTED a well-formed event of another type: only out->id and out->type
 *                               are filled (acknowledge it, credit nothing); its other members
 *                               are only held to the JSON subset and no duplicates (unknown
 *                               members are allowed for other types);
 *   ENCORE_WEBHOOK_EBADEVENT    anything else (len over 16384 included); *out zeroed and
 *                               *bad_field (may be NULL) set to the offending member's name
 *                               (static string) or NULL when the body's shape is wrong (not the
 *                               JSON subset, an unknown member, a duplicate). */
int encore_webhook_parse_event(const uint8_t *body, size_t len, int64_t max_amount,
                               encore_webhook_event *out, const char **bad_field);

#endif /* ENCORE_ACCOUNTS_WEBHOOK_H */
