/* The ledger: double-entry accounts in integer minor units (coins), idempotent transfers, durable
 * group commit. A ledger thread owns the database connection (and, on SQLite, a syncer thread
 * makes its commits durable); any other thread submits requests and gets each answer only after
 * the transaction holding it is durable. docs/ledger.md explains the model; this header is the
 * contract. "The ledger's threads" below are these two. */
#ifndef ENCORE_ECONOMY_LEDGER_H
#define ENCORE_ECONOMY_LEDGER_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits of one request. */
#define ENCORE_LEDGER_ID_MAX 128     /* idempotency key bytes ([A-Za-z0-9._:@-], 1..128) */
#define ENCORE_LEDGER_KIND_MAX 32    /* kind bytes ([a-z0-9_.-], 1..32) */
#define ENCORE_LEDGER_ACCOUNT_MAX 96 /* account name bytes, prefix included */
#define ENCORE_LEDGER_MAX_LEGS 16
#define ENCORE_LEDGER_METADATA_MAX 4096 /* canonical (compact, sorted) JSON bytes */
/* Largest amount of one leg: 10^15 minor units. With at most 16 legs no sum can overflow. */
#define ENCORE_LEDGER_MAX_AMOUNT INT64_C(1000000000000000)

/* The outcome of one request. Only OK and INSUFFICIENT_FUNDS are remembered under the request's id
 * (a retry with the same id and contents answers the same, with `replayed` set);
 * IDEMPOTENCY_CONFLICT is what a reuse of a remembered id with other contents gets. The others
 * leave no trace: the same request may be sent again. */
typedef enum {
    ENCORE_LEDGER_OK = 0,               /* committed durably; transfer_id names it */
    ENCORE_LEDGER_INSUFFICIENT_FUNDS,   /* a debited account would go negative; nothing moved */
    ENCORE_LEDGER_IDEMPOTENCY_CONFLICT, /* this id was used before with other contents */
    ENCORE_LEDGER_INVALID,              /* malformed request (detail says which rule) */
    ENCORE_LEDGER_UNKNOWN_ACCOUNT,      /* an account name of no known kind */
    ENCORE_LEDGER_STORE_ERROR, /* the database failed after bounded retries; the transfer may or
                                * may not have committed: retry with the same id to learn which */
    ENCORE_LEDGER_CLOSED,      /* the ledger is closing; nothing was done */
    ENCORE_LEDGER_OVERLOADED,  /* the queue is full (max_queue); nothing was done */
} encore_ledger_status;

/* Errors of the GError-returning calls (domain ENCORE_LEDGER_ERROR). */
typedef enum {
    ENCORE_LEDGER_ERROR_CONFIG,          /* bad backend string or configuration value */
    ENCORE_LEDGER_ERROR_STORE,           /* the database could not be opened, migrated or read */
    ENCORE_LEDGER_ERROR_SCHEMA,          /* the schema is newer than this code, or missing when
                                          * the ledger was opened with open_existing */
    ENCORE_LEDGER_ERROR_UNKNOWN_ACCOUNT, /* account name of no known kind */
    ENCORE_LEDGER_ERROR_CLOSED,          /* the ledger is closing */
    ENCORE_LEDGER_ERROR_WRONG_THREAD,    /* a blocking call made from the ledger thread itself */
    ENCORE_LEDGER_ERROR_NO_STATEMENT,    /* statements are kept for earnings:, escrow: and
                                          * external: accounts only */
    ENCORE_LEDGER_ERROR_INVALID,         /* a malformed argument: request id, kind prefix */
} encore_ledger_error;

#define ENCORE_LEDGER_ERROR (encore_ledger_error_quark())
GQuark encore_ledger_error_quark(void);

/* What kind of account a name is. Names are "<prefix>:<id>" with id 1..64 bytes of
 * [A-Za-z0-9._@-], or one of the fixed names. */
typedef enum {
    ENCORE_ACCOUNT_INVALID = -1,
    ENCORE_ACCOUNT_WALLET = 0,   /* wallet:<user>: a user's coins */
    ENCORE_ACCOUNT_EARNINGS,     /* earnings:<user>: a singer's or an agent's earnings */
    ENCORE_ACCOUNT_ESCROW,       /* escrow:<id>: money held for an event or a withdrawal */
    ENCORE_ACCOUNT_PLATFORM,     /* platform:revenue */
    ENCORE_ACCOUNT_EXTERNAL_IN,  /* external:topups: the outside world's side of top-ups; the
                                  * only account allowed to go negative */
    ENCORE_ACCOUNT_EXTERNAL_OUT, /* external:payouts: where approved withdrawals go */
} encore_account_kind;

/* Classifies a NUL-terminated account name. Pure; any thread. */
encore_account_kind encore_ledger_account_kind(const char *name);
/* True for the accounts whose balance may go below zero (external:topups only). */
bool encore_ledger_account_may_go_negative(const char *name);
/* True for the accounts whose postings are indexed for statements: earnings:, escrow: and
 * external: (not wallets, not platform:revenue: the two kinds every gift touches; a user's own
 * history is the range of its scoped request ids). */
bool encore_ledger_account_has_statement(const char *name);

/* One leg of a transfer: a signed amount in minor units on one account (negative: the account is
 * debited; positive: credited). */
typedef struct {
    const char *account;
    int64_t amount;
} encore_leg;

/* A transfer request. Every pointer is only borrowed for the duration of the call it is passed to
 * (the ledger copies what it keeps). Rules (else ENCORE_LEDGER_INVALID, or UNKNOWN_ACCOUNT):
 * - id: the idempotency key, 1..ENCORE_LEDGER_ID_MAX bytes of [A-Za-z0-9._:@-]. The key space is
 *   global: callers scope client ids, e.g. "gift:<user>:<client id>".
 * - kind: what the transfer is ("topup", "gift", "withdrawal"...), 1..32 bytes of [a-z0-9_.-].
 * - metadata: NULL, or a JSON object (at most ENCORE_LEDGER_METADATA_MAX bytes once compact);
 *   stored and hashed in canonical form (compact, keys sorted), duplicate keys refused.
 * - legs: 2..ENCORE_LEDGER_MAX_LEGS, each amount non-zero with |amount| <=
 * ENCORE_LEDGER_MAX_AMOUNT, each account named once, amounts summing to exactly zero. The request
 * hash covers kind, metadata and the legs in account order (leg order does not matter); it is what
 * "the same contents" means. */
typedef struct {
    const char *id;
    const char *kind;
    const char *metadata;
    const encore_leg *legs;
    size_t n_legs;
} encore_transfer_req;

/* The answer to one request. */
typedef struct {
    encore_ledger_status status;
    int64_t transfer_id; /* > 0 with ENCORE_LEDGER_OK, else 0 */
    bool replayed;       /* answered from the stored result of an earlier request with this id
                          * (informational: the first answer may also be a replay when the
                          * ledger retried an ambiguous commit itself) */
    const char *detail;  /* static text saying why, for any status; never NULL */
    const char *id;      /* the request's id (empty for a request refused as invalid); valid
                          * during the callback only */
} encore_transfer_result;

/* Checks a request against the rules above without any allocation (metadata is only checked for
 * length here; its JSON is checked on submit). Returns OK, INVALID or UNKNOWN_ACCOUNT and sets
 * *detail (may be NULL) to a static explanation. Pure; any thread. */
encore_ledger_status encore_transfer_check(const encore_transfer_req *req, const char **detail);

/* A two-leg transfer of `amount` from `from` to `to`, built into `legs` (room for 2 entries) and
 * `req`; the strings stay borrowed. Returns OK, or INVALID when amount <= 0 (a negative amount
 * would move money backwards) or amount > ENCORE_LEDGER_MAX_AMOUNT. */
encore_ledger_status encore_transfer_move(encore_transfer_req *req, encore_leg *legs,
                                          const char *id, const char *kind, const char *from,
                                          const char *to, int64_t amount);

/* Human-readable status names, also the protocol's error codes: "ok", "insufficient_funds",
 * "idempotency_conflict", "invalid_request", "unknown_account", "store_error", "closed",
 * "overloaded". */
const char *encore_ledger_status_name(encore_ledger_status status);

/* Fault injection for tests: the store asks before each batch transaction (BEGIN), before its
 * COMMIT, right after a successful COMMIT and (SQLite) before syncing committed batches. */
typedef enum {
    ENCORE_LEDGER_FAULT_AT_BEGIN,
    ENCORE_LEDGER_FAULT_BEFORE_COMMIT, /* all requests applied, not yet committed */
    ENCORE_LEDGER_FAULT_AFTER_COMMIT,  /* committed; a fault here makes the outcome ambiguous */
    ENCORE_LEDGER_FAULT_AT_SYNC,       /* SQLite, on the syncer thread (batch_size 0): any fault
                                        * fails the sync, which stops the ledger (see submit) */
} encore_ledger_fault_point;

typedef enum {
    ENCORE_LEDGER_FAULT_NONE = 0,
    ENCORE_LEDGER_FAULT_BUSY,     /* SQLite: SQLITE_BUSY; PostgreSQL: SQLSTATE 40001 raised by
                                   * the server (serialization failure) */
    ENCORE_LEDGER_FAULT_DEADLOCK, /* SQLite: SQLITE_LOCKED; PostgreSQL: 40P01 */
    ENCORE_LEDGER_FAULT_FATAL,    /* a non-retryable error (SQLite: SQLITE_IOERR; PostgreSQL:
                                   * SQLSTATE XX000) */
    ENCORE_LEDGER_FAULT_LOST_CONNECTION, /* PostgreSQL: the connection is reset; SQLite: like
                                          * BUSY. At AFTER_COMMIT: the commit's answer is lost */
} encore_ledger_fault;

/* Runs on the ledger's threads; must be quick and must not call the ledger. `batch_size` is the
 * number of requests in the transaction being run. */
typedef encore_ledger_fault (*encore_ledger_fault_fn)(encore_ledger_fault_point point,
                                                      size_t batch_size, void *user_data);

typedef struct {
    /* "sqlite:PATH" (the file is created if missing, unless open_existing) or
     * "postgresql:CONNINFO" (libpq key=value string or URI; the ledger's tables live in the first
     * schema of the connection's search_path). Required. */
    const char *backend;
    /* Fail with ENCORE_LEDGER_ERROR_SCHEMA instead of creating a missing schema (audit tools). */
    bool open_existing;
    /* Most requests committed in one transaction (0: 1024). */
    unsigned max_batch;
    /* Most requests waiting; submits beyond get ENCORE_LEDGER_OVERLOADED (0: 100000). */
    unsigned max_queue;
    /* Retries of a batch after a transient error (busy, serialization failure, deadlock, lost
     * connection) before its requests get ENCORE_LEDGER_STORE_ERROR (0: 8; backoff doubles from
     * 1 ms up to 100 ms). */
    unsigned max_retries;
    /* SQLite busy timeout in milliseconds (0: 5000). */
    unsigned busy_timeout_ms;
    /* Test hook (NULL in production). */
    encore_ledger_fault_fn fault_fn;
    void *fault_user_data;
    /* Test hook (0 in production): SQLite keeps only the low N (1..62) bits of each request
     * id's 64-bit index key, so that distinct ids share keys and the collision path runs. */
    unsigned test_request_key_bits;
} encore_ledger_config;

typedef struct encore_ledger encore_ledger;

/* Opens the store (creating or migrating its schema in one transaction), then starts the ledger
 * thread. Returns NULL with `error` set: ENCORE_LEDGER_ERROR_CONFIG (unknown backend prefix, empty
 * target), ENCORE_LEDGER_ERROR_STORE (cannot connect, open or set durability options),
 * ENCORE_LEDGER_ERROR_SCHEMA (schema newer than this code, or missing with open_existing).
 * `cfg` is copied. */
encore_ledger *encore_ledger_open(const encore_ledger_config *cfg, GError **error);

/* Stops accepting requests (later submits get ENCORE_LEDGER_CLOSED), finishes every request
 * already queued (their callbacks are still delivered to their contexts), joins the ledger's
 * threads and closes the store. Accepts NULL. Must not be called from the ledger's threads or
 * concurrently with other calls on the same ledger. */
void encore_ledger_close(encore_ledger *ledger);

/* Called exactly once per submitted request with its answer (`result` and its strings are valid
 * during the call only), then `destroy(user_data)` if given. */
typedef void (*encore_ledger_done_fn)(const encore_transfer_result *result, void *user_data);

/* Queues a transfer; any thread, never blocks on the database. The request is checked and copied
 * first; invalid requests, a full queue and a closing ledger are answered like committed ones.
 * `done` runs on `reply_ctx` (a GMainContext the caller iterates; referenced until the answer is
 * delivered) after the transaction holding the request is durable. With reply_ctx NULL, `done`
 * runs on one of the ledger's threads (or, for a request refused before it was queued, inside
 * this call): it must then be quick and must not block; it may submit, but must not resubmit on
 * ENCORE_LEDGER_CLOSED. If reply_ctx is destroyed before it runs the answer, only `destroy` is
 * called (on whichever thread drops the context's last reference).
 * If syncing committed batches to disk ever fails (SQLite), their requests are answered
 * ENCORE_LEDGER_STORE_ERROR (they may or may not be on disk) and so is every later request and
 * read: retrying a failed sync could acknowledge data the kernel already dropped. Close the
 * ledger and open it again (SQLite recovers what reached the disk), then retry with the same
 * ids. */
void encore_ledger_submit(encore_ledger *ledger, const encore_transfer_req *req,
                          GMainContext *reply_ctx, encore_ledger_done_fn done, void *user_data,
                          GDestroyNotify destroy);

/* Submits and waits for the answer, filled into *result (result->id is req->id). Any thread but
 * the ledger's threads (there it answers ENCORE_LEDGER_INVALID with detail "called from the
 * ledger thread"). Returns result->status. */
encore_ledger_status encore_ledger_transfer_sync(encore_ledger *ledger,
                                                 const encore_transfer_req *req,
                                                 encore_transfer_result *result);

/* The committed balance of `account` into *out (0 for a well-formed account no transfer has
 * touched yet). Blocks until the ledger thread answers (after the batch in progress). Returns
 * FALSE with error: ENCORE_LEDGER_ERROR_UNKNOWN_ACCOUNT, _STORE (database error, or the queue is
 * full), _CLOSED, _WRONG_THREAD. */
gboolean encore_ledger_balance(encore_ledger *ledger, const char *account, int64_t *out,
                               GError **error);

/* Asynchronous balance: `done(ok, balance, error_or_NULL, user_data)` on reply_ctx (NULL: the
 * ledger thread), then destroy(user_data). Errors as for encore_ledger_balance(). */
typedef void (*encore_ledger_balance_fn)(gboolean ok, int64_t balance, const GError *error,
                                         void *user_data);
void encore_ledger_balance_async(encore_ledger *ledger, const char *account,
                                 GMainContext *reply_ctx, encore_ledger_balance_fn done,
                                 void *user_data, GDestroyNotify destroy);

/* Checks every invariant over the committed data: each applied transfer has 2+ postings summing to
 * zero, refused ones none; each account's balance equals the sum of its postings; no balance is
 * negative except on accounts allowed to be; only external accounts are so allowed; every posting
 * names a known account and transfer. Appends a readable report (totals, then each violation) to
 * `report`. Blocks like encore_ledger_balance(). Returns TRUE when every invariant holds; FALSE
 * when one fails (error unset) or the audit could not run (error set: _STORE, _CLOSED,
 * _WRONG_THREAD). */
gboolean encore_ledger_audit(encore_ledger *ledger, GString *report, GError **error);

/* One line of an account's statement. */
typedef struct {
    int64_t transfer_id;
    int64_t amount;     /* signed: positive credits the account */
    int64_t created_us; /* commit batch time, microseconds since the epoch */
    char *request_id;   /* the transfer's request id */
    char *kind;         /* the transfer's kind */
    char *metadata;     /* canonical JSON, or NULL */
} encore_statement_line;

/* Up to `limit` (1..1000) postings of `account` with transfer id below `before` (0: from the
 * newest), newest first. Returns a new array of encore_statement_line* (free with
 * g_ptr_array_unref(): it frees the lines), or NULL with error: _NO_STATEMENT (a wallet or the
 * platform), _UNKNOWN_ACCOUNT, _CONFIG (limit out of range), _STORE, _CLOSED, _WRONG_THREAD.
 * Blocks like encore_ledger_balance(). */
GPtrArray *encore_ledger_statement(encore_ledger *ledger, const char *account, int64_t before,
                                   unsigned limit, GError **error);

/* Asynchronous statement: `done(ok, lines, error_or_NULL, user_data)` on reply_ctx (NULL: the
 * ledger thread), then destroy(user_data). `lines` is the array encore_ledger_statement() would
 * return (NULL when ok is FALSE); it belongs to the ledger and is freed after the call: take a
 * reference (g_ptr_array_ref) to keep it. Errors as for encore_ledger_statement() except
 * _WRONG_THREAD (never blocks), plus _STORE when the queue is full; argument errors are answered
 * on reply_ctx too. Never blocks on the database: the read runs on the ledger thread after the
 * batch in progress. */
typedef void (*encore_ledger_statement_fn)(gboolean ok, GPtrArray *lines, const GError *error,
                                           void *user_data);
void encore_ledger_statement_async(encore_ledger *ledger, const char *account, int64_t before,
                                   unsigned limit, GMainContext *reply_ctx,
                                   encore_ledger_statement_fn done, void *user_data,
                                   GDestroyNotify destroy);

/* A stored request as read back by encore_ledger_lookup() and encore_ledger_scan(). Every
 * pointer is owned by the record (free it with encore_ledger_record_free()). */
typedef struct {
    int64_t transfer_id;         /* > 0 for an applied transfer; 0 for a request remembered as
                                  * refused */
    encore_ledger_status status; /* ENCORE_LEDGER_OK or ENCORE_LEDGER_INSUFFICIENT_FUNDS */
    int64_t created_us;          /* commit batch time, microseconds since the epoch */
    char *request_id;
    char *kind;
    char *metadata;   /* canonical JSON (compact, keys sorted), or NULL */
    size_t n_legs;    /* 2..ENCORE_LEDGER_MAX_LEGS for OK; 0 for INSUFFICIENT_FUNDS */
    encore_leg *legs; /* n_legs legs in account order (strcmp), account strings owned; NULL
                       * when n_legs is 0 */
} encore_ledger_record;

/* Frees a record and everything it points to. Accepts NULL. */
void encore_ledger_record_free(encore_ledger_record *record);

/* Asynchronous lookup of what the ledger remembers under a request id. `done(ok, record,
 * error_or_NULL, user_data)` runs on reply_ctx (NULL: the ledger thread), then
 * destroy(user_data). With ok TRUE, `record` is the stored request (an applied transfer or a
 * remembered refusal) or NULL when the id is unknown (never used, or refused before the database:
 * invalid, unknown account, overloaded, closed); it is valid during the call only. With ok FALSE,
 * error is set: ENCORE_LEDGER_ERROR_INVALID (not a well-formed request id), _STORE (database
 * error, or the queue is full), _CLOSED. The read runs on the ledger thread after the batch in
 * progress, so it sees every request answered before the lookup was made. Never blocks. */
typedef void (*encore_ledger_lookup_fn)(gboolean ok, const encore_ledger_record *record,
                                        const GError *error, void *user_data);
void encore_ledger_lookup_async(encore_ledger *ledger, const char *request_id,
                                GMainContext *reply_ctx, encore_ledger_lookup_fn done,
                                void *user_data, GDestroyNotify destroy);

/* Blocking lookup (tools and tests): TRUE with *out set to a new record (free it with
 * encore_ledger_record_free()) or to NULL when the id is unknown; FALSE with error as for
 * encore_ledger_lookup_async(), or _WRONG_THREAD (called from the ledger thread). */
gboolean encore_ledger_lookup(encore_ledger *ledger, const char *request_id,
                              encore_ledger_record **out, GError **error);

/* Most records one encore_ledger_scan() returns. */
#define ENCORE_LEDGER_SCAN_MAX 10000

/* Applied transfers (refusals are skipped) whose kind starts with `kind_prefix` ("" or NULL: every
 * kind; else 1..ENCORE_LEDGER_KIND_MAX bytes of [a-z0-9_.-]) and whose transfer id is above
 * `after_id`, oldest first, at most `limit` (1..ENCORE_LEDGER_SCAN_MAX), each with its legs. Page
 * by passing the last record's transfer_id as the next after_id; an empty array is the end. For
 * rebuilding derived state at start. Transfer ids grow in commit order within one ledger (with
 * several servers writing one PostgreSQL database, a transfer with a smaller id may commit after a
 * larger one). Blocks like encore_ledger_balance(). Returns a new array of encore_ledger_record*
 * (g_ptr_array_unref() frees the records), or NULL with error: _INVALID (kind_prefix), _CONFIG
 * (limit out of range), _STORE, _CLOSED, _WRONG_THREAD. Cost: transfers are read in id order and
 * other kinds skipped, so one page reads at most the rest of the table (docs/ledger.md); to
 * rebuild several kinds, page once with "" and dispatch on the kind. */
GPtrArray *encore_ledger_scan(encore_ledger *ledger, const char *kind_prefix, int64_t after_id,
                              unsigned limit, GError **error);

/* Counters since open; any thread (relaxed reads). */
typedef struct {
    uint64_t batches;       /* committed transactions */
    uint64_t requests;      /* requests answered from committed transactions */
    uint64_t transfers;     /* new transfers applied */
    uint64_t insufficient;  /* new requests refused for insufficient funds */
    uint64_t replays;       /* answers from stored results */
    uint64_t conflicts;     /* idempotency conflicts */
    uint64_t rejected;      /* invalid, unknown account, overloaded, closed */
    uint64_t retries;       /* batch retries after transient errors */
    uint64_t store_errors;  /* requests answered ENCORE_LEDGER_STORE_ERROR */
    uint64_t largest_batch; /* most requests seen in one transaction */
} encore_ledger_stats;

void encore_ledger_get_stats(encore_ledger *ledger, encore_ledger_stats *out);

#endif
