/* The store interface behind the ledger (internal to server/economy/): one vtable, two backends
 * (store_sqlite.c, store_pg.c), and the canonical request form they share (transfer.c).
 * Every store call but sync runs on the ledger thread, which owns the connection; nothing else
 * here is thread-safe. */
#ifndef ENCORE_ECONOMY_STORE_H
#define ENCORE_ECONOMY_STORE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/economy/ledger.h"

#define ENCORE_STORE_HASH_LEN 32 /* SHA-256 */

/* Schema version the code writes; both backends migrate up to it on open. Version 2 keeps each
 * transfer's legs in its row (`legs`, canonical JSON) and postings only for statement accounts
 * (docs/ledger.md). */
#define ENCORE_STORE_SCHEMA_VERSION 2

/* Transfer row status values (the `status` column). */
#define ENCORE_STORE_APPLIED 0
#define ENCORE_STORE_REFUSED 1 /* insufficient funds, remembered */

typedef struct {
    char *account; /* owned */
    int64_t amount;
    bool allow_negative; /* encore_ledger_account_may_go_negative(account) */
    bool statement;      /* encore_ledger_account_has_statement(account): its posting is kept */
} encore_store_leg;

/* One request in canonical form plus its answer. The store reads the first part and fills the
 * second; run_batch() fills the answer of every item or of none. */
typedef struct {
    char *id;       /* owned */
    char *kind;     /* owned */
    char *metadata; /* owned canonical JSON, or NULL */
    uint8_t hash[ENCORE_STORE_HASH_LEN];
    char hash_hex[2 * ENCORE_STORE_HASH_LEN + 1];
    size_t n_legs;
    encore_store_leg legs[ENCORE_LEDGER_MAX_LEGS]; /* sorted by account (strcmp) */
    char *legs_json;     /* owned: the legs in canonical form, stored with the transfer (see
                          * encore_store_legs_parse()) */
    int64_t request_key; /* encore_store_request_key(id) */
    /* Filled by the store. */
    encore_ledger_status status; /* OK, INSUFFICIENT_FUNDS or IDEMPOTENCY_CONFLICT */
    int64_t transfer_id;
    bool replayed;
} encore_store_item;

/* Builds the canonical form of a request that passed encore_transfer_check(): copies strings,
 * canonicalizes the metadata JSON, sorts legs, computes the hash, the legs text and the request
 * key. Returns OK, or INVALID with *detail set (metadata not a JSON object, duplicate keys, too
 * long). Any thread. */
encore_ledger_status encore_store_item_init(encore_store_item *item, const encore_transfer_req *req,
                                            const char **detail);
void encore_store_item_clear(encore_store_item *item);

/* Error classes of store calls (GError domain ENCORE_STORE_ERROR). */
typedef enum {
    ENCORE_STORE_ERROR_TRANSIENT, /* busy, serialization failure, deadlock, lost connection:
                                   * nothing is known committed; the batch may be run again */
    ENCORE_STORE_ERROR_FATAL,     /* anything else; running the same batch again will fail again */
} encore_store_error;

#define ENCORE_STORE_ERROR (encore_store_error_quark())
GQuark encore_store_error_quark(void);

typedef struct encore_store encore_store;

typedef struct {
    bool open_existing;
    unsigned busy_timeout_ms;
    unsigned request_key_bits; /* encore_ledger_config.test_request_key_bits */
    encore_ledger_fault_fn fault_fn;
    void *fault_user_data;
} encore_store_options;

struct encore_store_ops {
    const char *name; /* backend prefix: "sqlite", "postgresql" */
    /* Connects and creates or migrates the schema. Errors: ENCORE_LEDGER_ERROR domain
     * (_STORE, _SCHEMA). */
    encore_store *(*open)(const char *target, const encore_store_options *opts, GError **error);
    void (*close)(encore_store *store);
    /* Applies items[0..n) in order in one transaction and commits durably; `now_us` is the
     * transfers' created_at. Returns TRUE with every item's answer filled, or FALSE with an
     * ENCORE_STORE_ERROR (TRANSIENT or FATAL) and nothing known committed. */
    gboolean (*run_batch)(encore_store *store, encore_store_item **items, size_t n, int64_t now_us,
                          GError **error);
    /* NULL when run_batch() commits durably. Else run_batch() commits without waiting for the
     * disk and this makes every batch committed before the call durable; nothing of a batch is
     * acknowledged before it returns. Runs on the ledger's syncer thread, concurrently with the
     * other calls: it must not use the connection. FALSE with an ENCORE_STORE_ERROR when the
     * data may be lost (the ledger then stops; see ledger.c). */
    gboolean (*sync)(encore_store *store, GError **error);
    /* Committed balance (0 when the account has no row). ENCORE_STORE_ERROR on failure. */
    gboolean (*balance)(encore_store *store, const char *account, int64_t *out, GError **error);
    /* Appends up to `limit` statement lines of `account` (one encore_ledger_account_has_statement()
     * accepts) with transfer id < before (0: no bound), newest first, to `out`.
     * ENCORE_STORE_ERROR on failure. */
    gboolean (*statement)(encore_store *store, const char *account, int64_t before, unsigned limit,
                          GPtrArray *out, GError **error);
    /* The stored request of `request_id` into *out (NULL when there is none). ENCORE_STORE_ERROR
     * on failure, also for a stored row that does not parse. */
    gboolean (*lookup)(encore_store *store, const char *request_id, encore_ledger_record **out,
                       GError **error);
    /* Appends up to `limit` applied transfers with id > after_id whose kind starts with
     * kind_prefix ("" for all), in id order, to `out` (of encore_ledger_record*).
     * ENCORE_STORE_ERROR on failure. */
    gboolean (*scan)(encore_store *store, const char *kind_prefix, int64_t after_id, unsigned limit,
                     GPtrArray *out, GError **error);
    /* Appends the audit report; *ok tells whether every invariant held. ENCORE_STORE_ERROR when
     * the audit could not run. */
    gboolean (*audit)(encore_store *store, GString *report, gboolean *ok, GError **error);
};

extern const struct encore_store_ops encore_store_sqlite_ops;
extern const struct encore_store_ops encore_store_pg_ops;

/* Frees an encore_statement_line (a GDestroyNotify for statement arrays). */
void encore_store_statement_line_free(gpointer line);

/* Schema version 1's statement index predicate: it kept earnings:, escrow: and external:
 * accounts (they sort before "platform:"), not wallet: and platform:. The migration to version 2
 * keeps exactly these postings. Agrees with encore_ledger_account_has_statement(). */
#define ENCORE_STORE_STATEMENT_PREDICATE "account < 'platform:'"

/* The canonical legs text of a transfer: a JSON array of [account, amount] pairs in account order
 * (strcmp), compact, e.g. [["earnings:bob",30],["wallet:alice",-30]]. Account names never need
 * escaping. Both stores keep it in ledger_transfers.legs; the SQL of the migration from version 1
 * builds the same text. Returns a new string. */
char *encore_store_legs_json(const encore_store_leg *legs, size_t n_legs);

/* Parses a canonical legs text (`len` bytes, no NUL needed) into rec->legs / rec->n_legs
 * (replacing none: they must be empty). Strict: exactly the format above, 1..MAX_LEGS pairs,
 * well-formed account names, amounts within +-ENCORE_LEDGER_MAX_AMOUNT. Returns FALSE (rec
 * unchanged) when the text is not exactly that. Pure apart from the allocation of the result. */
gboolean encore_store_legs_parse(const char *text, size_t len, encore_ledger_record *rec);

/* A new record with copies of the strings (metadata may be NULL). */
encore_ledger_record *encore_store_record_new(int64_t transfer_id, encore_ledger_status status,
                                              int64_t created_us, const char *request_id,
                                              const char *kind, const char *metadata);
/* encore_ledger_record_free() as a GDestroyNotify for record arrays. */
void encore_store_record_free(gpointer record);

/* The SQLite store's index key of a request id: the first 8 bytes of SHA-256 over a tag and the
 * id, big-endian, as a signed integer. Stable forever (stored). Distinct ids may share a key: the
 * store then probes the following keys (store_sqlite.c). Pure; any thread. */
int64_t encore_store_request_key(const char *request_id);

/* Lowercase hex of `len` bytes into `out` (2 * len + 1 bytes). */
void encore_store_hex(const uint8_t *bytes, size_t len, char *out);

/* Shared by both backends' audit: appends one line for a violation, counting it and keeping the
 * report bounded (the first 50 lines of each kind). */
void encore_store_audit_violation(GString *report, unsigned *count, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

#endif
