/* The SQLite store: one connection in WAL mode, each batch one BEGIN IMMEDIATE transaction whose
 * WAL frames store_sync() flushes to disk (on the syncer thread) before anything of it is
 * acknowledged; schema created and migrated on open. Credits are summed per account over
 * the batch and written once before the commit (a hot account is updated once per batch, not
 * once per gift); debits are conditional updates that see every earlier credit; statement
 * postings are written once per batch in account order. Also the reads: lookups, scans,
 * statements and the audit.
 * Runs on the ledger thread only (opened by the thread that opens the ledger, then handed over);
 * it never acknowledges anything itself: the ledger does that after run_batch() returns. */
#define G_LOG_DOMAIN "encore-ledger"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#include "server/economy/store.h"

/* Schema, one entry per version: entry i migrates version i to i + 1. Balances and amounts must
 * stay integers (SQLite would turn an overflowing sum into a float: the typeof checks refuse it).
 * Only external accounts may be marked allow_negative, and only those may go below zero. */
static const char *const migrations[ENCORE_STORE_SCHEMA_VERSION] = {
    /* Version 1: postings of every leg, keyed by transfer, plus a statement index. */
    "CREATE TABLE ledger_accounts ("
    "  name TEXT PRIMARY KEY,"
    "  balance INTEGER NOT NULL DEFAULT 0,"
    "  allow_negative INTEGER NOT NULL DEFAULT 0 CHECK (allow_negative IN (0, 1)),"
    "  created_at INTEGER NOT NULL,"
    "  CHECK (typeof(balance) = 'integer'),"
    "  CHECK (allow_negative = 1 OR balance >= 0),"
    "  CHECK (allow_negative = 0 OR name LIKE 'external:%')"
    ") WITHOUT ROWID;"
    "CREATE TABLE ledger_transfers ("
    "  id INTEGER PRIMARY KEY,"
    "  request_id TEXT NOT NULL UNIQUE,"
    "  request_hash BLOB NOT NULL CHECK (length(request_hash) = 32),"
    "  status INTEGER NOT NULL CHECK (status IN (0, 1)),"
    "  kind TEXT NOT NULL,"
    "  metadata TEXT,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE ledger_postings ("
    "  transfer_id INTEGER NOT NULL REFERENCES ledger_transfers(id),"
    "  account TEXT NOT NULL REFERENCES ledger_accounts(name) DEFERRABLE INITIALLY DEFERRED,"
    "  amount INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount <> 0),"
    "  PRIMARY KEY (transfer_id, account)"
    ") WITHOUT ROWID;"
    "CREATE INDEX ledger_postings_statements ON ledger_postings(account, transfer_id) "
    "WHERE " ENCORE_STORE_STATEMENT_PREDICATE ";",
    /* Version 2: each applied transfer keeps its legs in its row (canonical text, see
     * encore_store_legs_json(); NULL for refused requests), and ledger_postings keeps only the
     * legs of statement accounts, keyed by account: it is the statement index itself. Request
     * ids are found through an 8-byte key (encore_store_request_key()) instead of a unique
     * index on the text, whose random inserts cost the most per gift. Five B-tree inserts
     * fewer per gift, and the one random insert left is smaller. The legs text is built here
     * exactly as the code builds it (postings come out in account order from their primary
     * key). migrate() then moves rows that share a key and creates the unique key index. */
    "CREATE TABLE ledger_transfers_v2 ("
    "  id INTEGER PRIMARY KEY,"
    "  request_key INTEGER NOT NULL,"
    "  request_id TEXT NOT NULL,"
    "  request_hash BLOB NOT NULL CHECK (length(request_hash) = 32),"
    "  status INTEGER NOT NULL CHECK (status IN (0, 1)),"
    "  kind TEXT NOT NULL,"
    "  metadata TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  legs TEXT"
    ");"
    "INSERT INTO ledger_transfers_v2 (id, request_key, request_id, request_hash, status, kind,"
    "    metadata, created_at, legs)"
    "  SELECT t.id, ledger_request_key(t.request_id), t.request_id, t.request_hash, t.status,"
    "    t.kind, t.metadata, t.created_at, CASE WHEN t.status = 0 THEN ("
    "      SELECT '[' || group_concat('[\"' || account || '\",' || amount || ']', ',') || ']'"
    "      FROM (SELECT account, amount FROM ledger_postings p"
    "            WHERE p.transfer_id = t.id ORDER BY account)) END"
    "  FROM ledger_transfers t ORDER BY t.id;"
    "DROP TABLE ledger_transfers;"
    "ALTER TABLE ledger_transfers_v2 RENAME TO ledger_transfers;"
    "CREATE TABLE ledger_postings_v2 ("
    "  account TEXT NOT NULL REFERENCES ledger_accounts(name) DEFERRABLE INITIALLY DEFERRED,"
    "  transfer_id INTEGER NOT NULL REFERENCES ledger_transfers(id),"
    "  amount INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount <> 0),"
    "  PRIMARY KEY (account, transfer_id)"
    ") WITHOUT ROWID;"
    "INSERT INTO ledger_postings_v2 (account, transfer_id, amount)"
    "  SELECT account, transfer_id, amount FROM ledger_postings"
    "  WHERE " ENCORE_STORE_STATEMENT_PREDICATE ";"
    "DROP TABLE ledger_postings;"
    "ALTER TABLE ledger_postings_v2 RENAME TO ledger_postings;",
};

/* A statement posting waiting for the end of the batch (the account is borrowed from the
 * batch's items). */
typedef struct {
    const char *account;
    int64_t transfer_id;
    int64_t amount;
} pending_posting;

/* Most rows of one postings INSERT. */
#define POSTINGS_PER_INSERT 32

struct encore_store {
    sqlite3 *db;
    encore_store_options opts;
    int wal_fd; /* the WAL file, for store_sync() (the syncer thread uses nothing else) */
    sqlite3_stmt *begin, *commit, *rollback;
    sqlite3_stmt *savepoint, *release, *rollback_to;
    sqlite3_stmt *claim;  /* insert a transfer row unless its request id exists */
    sqlite3_stmt *probe;  /* the stored row at a request key */
    sqlite3_stmt *debit;  /* conditional debit of a non-negative account */
    sqlite3_stmt *refuse; /* mark a claimed request refused */
    sqlite3_stmt *upsert; /* create-or-add for credits and allow_negative debits */
    sqlite3_stmt *balance;
    sqlite3_stmt *statement;
    sqlite3_stmt *read_request; /* a stored request with its legs, by request id */
    sqlite3_stmt *scan;         /* applied transfers in id order, kind in a range */
    /* INSERT of n postings in one statement, prepared on first use (index n). */
    sqlite3_stmt *postings[POSTINGS_PER_INSERT + 1];
    /* This batch's pending credits (and debits of accounts allowed to go negative): account
     * name (borrowed from the batch's items) -> int64_t sum. Written by flush_credit(). */
    GHashTable *credits;
    /* This batch's statement postings (of pending_posting), written by flush_postings(). */
    GArray *postings_pending;
};

/* The first key a request id is stored under (the test hook may shorten keys). */
static int64_t first_key(const encore_store *s, int64_t natural)
{
    unsigned bits = s->opts.request_key_bits;
    if (bits == 0 || bits >= 63)
        return natural;
    return (int64_t)((uint64_t)natural & ((UINT64_C(1) << bits) - 1));
}

/* Distinct ids that share a key: the later one goes to the next free key, and a lookup probes
 * keys from the id's first key until it meets the id or a free key (rows are never deleted, so
 * there are no gaps in a run of keys). */
static int64_t next_key(int64_t key)
{
    return (int64_t)((uint64_t)key + 1);
}

static bool is_transient(int rc)
{
    int primary = rc & 0xff;
    return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

static void set_store_error(encore_store *s, int rc, const char *what, GError **error)
{
    g_set_error(error, ENCORE_STORE_ERROR,
                is_transient(rc) ? ENCORE_STORE_ERROR_TRANSIENT : ENCORE_STORE_ERROR_FATAL,
                "sqlite: %s: %s (%d)", what, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc),
                rc);
}

/* Steps a statement expecting no row and resets it. */
static gboolean run(encore_store *s, sqlite3_stmt *stmt, GError **error)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return TRUE;
    set_store_error(s, rc, sqlite3_sql(stmt), error);
    return FALSE;
}

static gboolean exec_sql(encore_store *s, const char *sql, GError **error)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        return TRUE;
    g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE, "sqlite: %s: %s", sql,
                msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return FALSE;
}

static sqlite3_stmt *prepare(encore_store *s, const char *sql, GError **error)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE, "sqlite: %s: %s", sql,
                    sqlite3_errmsg(s->db));
        return NULL;
    }
    return stmt;
}

/* Reads one integer from a one-row query; FALSE (no error) when there is no row. */
static gboolean query_int(encore_store *s, const char *sql, int64_t *out, GError **error)
{
    sqlite3_stmt *stmt = prepare(s, sql, error);
    if (!stmt)
        return FALSE;
    gboolean found = FALSE;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(stmt, 0);
        found = TRUE;
    } else if (rc != SQLITE_DONE) {
        g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE, "sqlite: %s: %s", sql,
                    sqlite3_errmsg(s->db));
    }
    sqlite3_finalize(stmt);
    return found;
}

/* SQL function ledger_request_key(request_id): the first key of an id (first_key()). */
static void sql_request_key(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const encore_store *s = sqlite3_user_data(ctx);
    const char *id = (const char *)sqlite3_value_text(argv[0]);
    if (id)
        sqlite3_result_int64(ctx, first_key(s, encore_store_request_key(id)));
    else
        sqlite3_result_null(ctx);
}

/* Steps a statement of the migration expecting no row; ENCORE_LEDGER_ERROR_STORE on failure. */
static gboolean migrate_step(encore_store *s, sqlite3_stmt *st, GError **error)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return TRUE;
    g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE, "sqlite: %s: %s",
                sqlite3_sql(st), sqlite3_errmsg(s->db));
    return FALSE;
}

/* The end of the migration to version 2, after the copy: of the rows whose ids share a first key
 * (distinct ids, one 64-bit key), all but the oldest move to the next free keys, as claims would
 * have put them; then the key gets its unique index. */
static gboolean finish_request_keys(encore_store *s, GError **error)
{
    gboolean ok = FALSE;
    GArray *moves = g_array_new(FALSE, FALSE, sizeof(int64_t) * 2); /* (id, key) */
    sqlite3_stmt *shared = prepare(s,
                                   "SELECT id, request_key FROM ledger_transfers WHERE "
                                   "request_key IN (SELECT request_key FROM ledger_transfers "
                                   "GROUP BY request_key HAVING count(*) > 1) "
                                   "ORDER BY request_key, id",
                                   error);
    sqlite3_stmt *taken =
        shared ? prepare(s, "SELECT 1 FROM ledger_transfers WHERE request_key = ?1", error) : NULL;
    sqlite3_stmt *move =
        taken ? prepare(s, "UPDATE ledger_transfers SET request_key = ?1 WHERE id = ?2", error)
              : NULL;
    if (!move)
        goto out;
    int rc;
    bool first = true;
    int64_t previous = 0;
    while ((rc = sqlite3_step(shared)) == SQLITE_ROW) {
        int64_t row[2] = {sqlite3_column_int64(shared, 0), sqlite3_column_int64(shared, 1)};
        if (!first && row[1] == previous)
            g_array_append_val(moves, row);
        previous = row[1];
        first = false;
    }
    if (rc != SQLITE_DONE && !migrate_step(s, shared, error))
        goto out;
    for (guint i = 0; i < moves->len; i++) {
        const int64_t *row = &g_array_index(moves, int64_t, 2 * i);
        int64_t key = row[1];
        do {
            key = next_key(key);
            sqlite3_bind_int64(taken, 1, key);
            rc = sqlite3_step(taken);
            sqlite3_reset(taken);
        } while (rc == SQLITE_ROW);
        sqlite3_bind_int64(move, 1, key);
        sqlite3_bind_int64(move, 2, row[0]);
        if (rc != SQLITE_DONE || !migrate_step(s, move, error)) {
            if (error && !*error)
                g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE,
                            "sqlite: moving request keys: %s", sqlite3_errmsg(s->db));
            goto out;
        }
    }
    ok = exec_sql(s,
                  "CREATE UNIQUE INDEX ledger_transfers_request_key "
                  "ON ledger_transfers(request_key)",
                  error);
out:
    sqlite3_finalize(shared);
    sqlite3_finalize(taken);
    sqlite3_finalize(move);
    g_array_free(moves, TRUE);
    return ok;
}

static gboolean migrate(encore_store *s, GError **error)
{
    GError *local = NULL;
    int64_t exists = 0;
    query_int(s,
              "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
              "name = 'ledger_schema_version'",
              &exists, &local);
    if (local) {
        g_propagate_error(error, local);
        return FALSE;
    }
    if (!exists && s->opts.open_existing) {
        g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_SCHEMA,
                    "sqlite: no ledger schema in this database");
        return FALSE;
    }
    if (!exec_sql(s, "BEGIN IMMEDIATE", error))
        return FALSE;
    gboolean ok = FALSE;
    if (!exec_sql(s, "CREATE TABLE IF NOT EXISTS ledger_schema_version (version INTEGER NOT NULL)",
                  error))
        goto out;
    int64_t version = 0;
    query_int(s, "SELECT coalesce(max(version), 0) FROM ledger_schema_version", &version, &local);
    if (local) {
        g_propagate_error(error, local);
        goto out;
    }
    if (version > ENCORE_STORE_SCHEMA_VERSION) {
        g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_SCHEMA,
                    "sqlite: schema version %" G_GINT64_FORMAT " is newer than this code (%d)",
                    version, ENCORE_STORE_SCHEMA_VERSION);
        goto out;
    }
    for (int64_t v = version; v < ENCORE_STORE_SCHEMA_VERSION; v++) {
        if (!exec_sql(s, migrations[v], error))
            goto out;
        if (v == 1 && !finish_request_keys(s, error))
            goto out;
    }
    if (version < ENCORE_STORE_SCHEMA_VERSION) {
        char *sql = g_strdup_printf("DELETE FROM ledger_schema_version; "
                                    "INSERT INTO ledger_schema_version VALUES (%d)",
                                    ENCORE_STORE_SCHEMA_VERSION);
        ok = exec_sql(s, sql, error);
        g_free(sql);
        if (!ok)
            goto out;
    }
    ok = exec_sql(s, "COMMIT", error);
out:
    if (!ok && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return ok;
}

static void sql_legs_sum(sqlite3_context *ctx, int argc, sqlite3_value **argv);

static void store_close(encore_store *s)
{
    if (!s)
        return;
    sqlite3_stmt **stmts[] = {&s->begin,     &s->commit,       &s->rollback, &s->savepoint,
                              &s->release,   &s->rollback_to,  &s->claim,    &s->probe,
                              &s->debit,     &s->refuse,       &s->upsert,   &s->balance,
                              &s->statement, &s->read_request, &s->scan};
    for (size_t i = 0; i < G_N_ELEMENTS(stmts); i++)
        sqlite3_finalize(*stmts[i]);
    for (size_t i = 0; i < G_N_ELEMENTS(s->postings); i++)
        sqlite3_finalize(s->postings[i]);
    if (s->credits)
        g_hash_table_destroy(s->credits);
    if (s->postings_pending)
        g_array_free(s->postings_pending, TRUE);
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    sqlite3_close_v2(s->db);
    g_free(s);
}

static encore_store *store_open(const char *target, const encore_store_options *opts,
                                GError **error)
{
    encore_store *s = g_new0(encore_store, 1);
    s->opts = *opts;
    s->wal_fd = -1;
    s->credits = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    s->postings_pending = g_array_new(FALSE, FALSE, sizeof(pending_posting));
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (!opts->open_existing)
        flags |= SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(target, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE,
                    "sqlite: cannot open %s: %s", target,
                    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto out_fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, (int)opts->busy_timeout_ms);
    /* Durability: WAL mode, and the migration commits with synchronous=FULL (every commit
     * synced); the batches are synced by store_sync() (below). Both settings are checked, not
     * assumed: a read-only or in-memory database would silently refuse WAL. */
    char *mode = NULL;
    {
        sqlite3_stmt *st = prepare(s, "PRAGMA journal_mode=WAL", error);
        if (!st)
            goto out_fail;
        if (sqlite3_step(st) == SQLITE_ROW)
            mode = g_strdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    gboolean wal = mode && g_ascii_strcasecmp(mode, "wal") == 0;
    g_free(mode);
    if (!wal) {
        g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE,
                    "sqlite: %s: cannot switch to WAL mode: %s", target, sqlite3_errmsg(s->db));
        goto out_fail;
    }
    /* Foreign keys stay declared but unenforced (PRAGMA foreign_keys off, SQLite's default):
     * enforcing them cost a fifth of the write path, and the audit checks that every posting
     * names an existing transfer and account. A WAL of up to 16384 pages (64 MiB) between
     * checkpoints: a page that many batches touch is copied into the database once per
     * checkpoint, not once per batch. */
    if (!exec_sql(s,
                  "PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY; "
                  "PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=16384",
                  error))
        goto out_fail;
    int64_t sync = 0;
    if (!query_int(s, "PRAGMA synchronous", &sync, error) || sync != 2) {
        if (error && !*error)
            g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE,
                        "sqlite: synchronous=FULL refused");
        goto out_fail;
    }
    if (sqlite3_create_function_v2(s->db, "ledger_legs_sum", 1,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, NULL,
                                   sql_legs_sum, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function_v2(s->db, "ledger_request_key", 1,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, s,
                                   sql_request_key, NULL, NULL, NULL) != SQLITE_OK) {
        g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE,
                    "sqlite: cannot register a function: %s", sqlite3_errmsg(s->db));
        goto out_fail;
    }
    if (!migrate(s, error))
        goto out_fail;
    struct {
        sqlite3_stmt **stmt;
        const char *sql;
    } stmts[] = {
        {&s->begin, "BEGIN IMMEDIATE"},
        {&s->commit, "COMMIT"},
        {&s->rollback, "ROLLBACK"},
        {&s->savepoint, "SAVEPOINT request"},
        {&s->release, "RELEASE request"},
        {&s->rollback_to, "ROLLBACK TO request"},
        {&s->claim, "INSERT INTO ledger_transfers (request_id, request_hash, status, kind, "
                    "metadata, created_at, legs, request_key) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                    "ON CONFLICT (request_key) DO NOTHING"},
        {&s->probe, "SELECT id, request_id, request_hash, status FROM ledger_transfers "
                    "WHERE request_key = ?1"},
        {&s->debit, "UPDATE ledger_accounts SET balance = balance + ?1 "
                    "WHERE name = ?2 AND balance + ?1 >= 0"},
        {&s->upsert, "INSERT INTO ledger_accounts (name, balance, allow_negative, created_at) "
                     "VALUES (?1, ?2, ?3, ?4) "
                     "ON CONFLICT (name) DO UPDATE SET balance = balance + excluded.balance"},
        {&s->refuse, "UPDATE ledger_transfers SET status = 1, legs = NULL WHERE id = ?1"},
        {&s->balance, "SELECT balance FROM ledger_accounts WHERE name = ?1"},
        {&s->statement,
         "SELECT p.transfer_id, p.amount, t.created_at, t.request_id, t.kind, t.metadata "
         "FROM ledger_postings p JOIN ledger_transfers t ON t.id = p.transfer_id "
         "WHERE p.account = ?1 AND p.transfer_id < ?2 "
         "ORDER BY p.transfer_id DESC LIMIT ?3"},
        {&s->read_request, "SELECT id, status, created_at, request_id, kind, metadata, legs "
                           "FROM ledger_transfers WHERE request_key = ?1"},
        /* Every kind is made of [a-z0-9._-], all below '~': [prefix, prefix || '~') holds
         * exactly the kinds starting with prefix. */
        {&s->scan, "SELECT id, status, created_at, request_id, kind, metadata, legs "
                   "FROM ledger_transfers WHERE id > ?1 AND status = 0 "
                   "AND kind >= ?2 AND kind < ?3 ORDER BY id LIMIT ?4"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(stmts); i++) {
        *stmts[i].stmt = prepare(s, stmts[i].sql, error);
        if (!*stmts[i].stmt)
            goto out_fail;
    }
    /* Durability, pipelined: from here commits do not wait for the disk (synchronous=NORMAL)
     * and store_sync() fdatasyncs the WAL before the ledger acknowledges anything they hold,
     * while the ledger thread runs the next batch. What reaches the disk is what FULL gives:
     * NORMAL still syncs the WAL before a checkpoint copies it, the database after, and the WAL
     * header when the WAL restarts; FULL only adds a sync at each commit, which store_sync()
     * does instead. The WAL exists once a transaction has run (the migration's). */
    const char *wal_path = sqlite3_filename_wal(sqlite3_db_filename(s->db, "main"));
    s->wal_fd = wal_path ? open(wal_path, O_RDONLY | O_CLOEXEC) : -1;
    if (s->wal_fd < 0) {
        g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE,
                    "sqlite: cannot open the WAL of %s: %s", target, g_strerror(errno));
        goto out_fail;
    }
    if (!exec_sql(s, "PRAGMA synchronous=NORMAL", error))
        goto out_fail;
    if (!query_int(s, "PRAGMA synchronous", &sync, error) || sync != 1) {
        if (error && !*error)
            g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE,
                        "sqlite: synchronous=NORMAL refused");
        goto out_fail;
    }
    return s;
out_fail:
    store_close(s);
    return NULL;
}

/* Asks the test hook; maps a fault to the SQLite result code it stands for (0: none). */
static int injected(encore_store *s, encore_ledger_fault_point point, size_t n)
{
    if (!s->opts.fault_fn)
        return 0;
    switch (s->opts.fault_fn(point, n, s->opts.fault_user_data)) {
    case ENCORE_LEDGER_FAULT_NONE:
        return 0;
    case ENCORE_LEDGER_FAULT_BUSY:
    case ENCORE_LEDGER_FAULT_LOST_CONNECTION:
        return SQLITE_BUSY;
    case ENCORE_LEDGER_FAULT_DEADLOCK:
        return SQLITE_LOCKED;
    case ENCORE_LEDGER_FAULT_FATAL:
        return SQLITE_IOERR;
    }
    return 0;
}

static void set_injected_error(int rc, const char *where, GError **error)
{
    g_set_error(error, ENCORE_STORE_ERROR,
                is_transient(rc) ? ENCORE_STORE_ERROR_TRANSIENT : ENCORE_STORE_ERROR_FATAL,
                "sqlite: injected %s at %s", sqlite3_errstr(rc), where);
}

/* The row at `key` is `item`'s request (same id): answers `item` from it, a replay or a conflict.
 * Columns: id, request_id, request_hash, status. */
static void answer_from_row(sqlite3_stmt *st, encore_store_item *item)
{
    const void *hash = sqlite3_column_blob(st, 2);
    if (sqlite3_column_bytes(st, 2) != ENCORE_STORE_HASH_LEN ||
        memcmp(hash, item->hash, ENCORE_STORE_HASH_LEN) != 0) {
        item->status = ENCORE_LEDGER_IDEMPOTENCY_CONFLICT;
        item->transfer_id = 0;
    } else if (sqlite3_column_int(st, 3) == ENCORE_STORE_APPLIED) {
        item->status = ENCORE_LEDGER_OK;
        item->transfer_id = sqlite3_column_int64(st, 0);
        item->replayed = true;
    } else {
        item->status = ENCORE_LEDGER_INSUFFICIENT_FUNDS;
        item->transfer_id = 0;
        item->replayed = true;
    }
}

/* Claims `item`'s request id: inserts its row, with `status`, at the first free key from its own,
 * unless the row of the same id is met first. *claimed tells which; when not claimed, `item` is
 * answered from the stored row (replayed or conflict). */
static gboolean claim(encore_store *s, encore_store_item *item, int status, int64_t now_us,
                      gboolean *claimed, GError **error)
{
    sqlite3_stmt *st = s->claim;
    sqlite3_bind_text(st, 1, item->id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, item->hash, ENCORE_STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, status);
    sqlite3_bind_text(st, 4, item->kind, -1, SQLITE_STATIC);
    if (item->metadata)
        sqlite3_bind_text(st, 5, item->metadata, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, now_us);
    if (status == ENCORE_STORE_APPLIED)
        sqlite3_bind_text(st, 7, item->legs_json, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 7);
    for (int64_t key = first_key(s, item->request_key);; key = next_key(key)) {
        sqlite3_bind_int64(st, 8, key);
        if (!run(s, st, error))
            return FALSE;
        if (sqlite3_changes(s->db) == 1) {
            *claimed = TRUE;
            item->transfer_id = sqlite3_last_insert_rowid(s->db);
            return TRUE;
        }
        /* The key is taken: by this id (answer from its row) or by another (probe on). */
        sqlite3_stmt *probe = s->probe;
        sqlite3_bind_int64(probe, 1, key);
        int rc = sqlite3_step(probe);
        bool same =
            rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(probe, 1), item->id) == 0;
        if (same)
            answer_from_row(probe, item);
        sqlite3_reset(probe);
        if (rc != SQLITE_ROW) {
            set_store_error(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "probe", error);
            return FALSE;
        }
        if (same) {
            *claimed = FALSE;
            return TRUE;
        }
    }
}

static gboolean upsert(encore_store *s, const char *account, int64_t amount, int64_t now_us,
                       GError **error)
{
    sqlite3_bind_text(s->upsert, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->upsert, 2, amount);
    sqlite3_bind_int(s->upsert, 3, encore_ledger_account_may_go_negative(account));
    sqlite3_bind_int64(s->upsert, 4, now_us);
    return run(s, s->upsert, error);
}

/* Writes the batch's pending credit of `account` (all of them when NULL): one upsert each. */
static gboolean flush_credits(encore_store *s, const char *account, int64_t now_us, GError **error)
{
    GHashTableIter it;
    gpointer key, value;
    if (account) {
        if (!g_hash_table_lookup_extended(s->credits, account, &key, &value))
            return TRUE;
        gboolean ok = upsert(s, key, *(int64_t *)value, now_us, error);
        g_hash_table_remove(s->credits, account);
        return ok;
    }
    g_hash_table_iter_init(&it, s->credits);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        if (!upsert(s, key, *(int64_t *)value, now_us, error))
            return FALSE;
        g_hash_table_iter_remove(&it);
    }
    return TRUE;
}

static gboolean add_credit(encore_store *s, const char *account, int64_t amount, int64_t now_us,
                           GError **error)
{
    int64_t *sum = g_hash_table_lookup(s->credits, account);
    int64_t next;
    if (sum && !__builtin_add_overflow(*sum, amount, &next)) {
        *sum = next;
        return TRUE;
    }
    /* Only sums of absurd amounts overflow: then write what there is and start a new sum. */
    if (sum && !flush_credits(s, account, now_us, error))
        return FALSE;
    sum = g_new(int64_t, 1);
    *sum = amount;
    g_hash_table_insert(s->credits, (gpointer)account, sum);
    return TRUE;
}

/* INSERT of n statement postings (1..POSTINGS_PER_INSERT). */
static sqlite3_stmt *postings_stmt(encore_store *s, size_t n, GError **error)
{
    if (s->postings[n])
        return s->postings[n];
    GString *sql =
        g_string_new("INSERT INTO ledger_postings (transfer_id, account, amount) VALUES ");
    g_assert(n >= 1 && n <= POSTINGS_PER_INSERT);
    for (size_t i = 0; i < n; i++)
        g_string_append_printf(sql, "%s(?%zu, ?%zu, ?%zu)", i ? ", " : "", 3 * i + 1, 3 * i + 2,
                               3 * i + 3);
    GError *local = NULL;
    s->postings[n] = prepare(s, sql->str, &local);
    g_string_free(sql, TRUE);
    if (local) {
        g_set_error(error, ENCORE_STORE_ERROR, ENCORE_STORE_ERROR_FATAL, "%s", local->message);
        g_error_free(local);
    }
    return s->postings[n];
}

static int compare_postings(gconstpointer a, gconstpointer b)
{
    const pending_posting *x = a, *y = b;
    int c = strcmp(x->account, y->account);
    if (c)
        return c;
    return (x->transfer_id > y->transfer_id) - (x->transfer_id < y->transfer_id);
}

/* Writes the batch's statement postings in key order (account, transfer id), several rows per
 * INSERT: consecutive inserts land on the same B-tree page. */
static gboolean flush_postings(encore_store *s, GError **error)
{
    GArray *pending = s->postings_pending;
    g_array_sort(pending, compare_postings);
    for (guint done = 0; done < pending->len;) {
        size_t n = MIN(pending->len - done, POSTINGS_PER_INSERT);
        sqlite3_stmt *ins = postings_stmt(s, n, error);
        if (!ins)
            return FALSE;
        for (size_t i = 0; i < n; i++) {
            const pending_posting *p = &g_array_index(pending, pending_posting, done + i);
            sqlite3_bind_int64(ins, (int)(3 * i + 1), p->transfer_id);
            sqlite3_bind_text(ins, (int)(3 * i + 2), p->account, -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, (int)(3 * i + 3), p->amount);
        }
        if (!run(s, ins, error))
            return FALSE;
        done += (guint)n;
    }
    g_array_set_size(pending, 0);
    return TRUE;
}

/* Applies one request inside the open transaction. Business outcomes are answers, not errors; a
 * FALSE return is a database error (the caller rolls back the whole batch).
 * A refusal must leave no write but the remembered refusal: debits of non-negative accounts come
 * first, each a conditional update; credits are only queued once every debit succeeded. A request
 * with two or more such debits runs in a SAVEPOINT so that a later refusal undoes the earlier
 * debits; with one, nothing precedes the refusal but the claimed row, marked refused. */
static gboolean apply(encore_store *s, encore_store_item *item, int64_t now_us, GError **error)
{
    item->replayed = false;
    size_t debits = 0;
    for (size_t i = 0; i < item->n_legs; i++) {
        const encore_store_leg *leg = &item->legs[i];
        if (leg->amount > 0 || leg->allow_negative)
            continue;
        debits++;
        /* A debit's check must see this batch's earlier credits to the account (written
         * before any savepoint: they belong to earlier requests). */
        if (g_hash_table_contains(s->credits, leg->account) &&
            !flush_credits(s, leg->account, now_us, error))
            return FALSE;
    }
    bool savepoint = debits > 1;
    if (savepoint && !run(s, s->savepoint, error))
        return FALSE;
    gboolean claimed = FALSE;
    if (!claim(s, item, ENCORE_STORE_APPLIED, now_us, &claimed, error))
        return FALSE;
    if (!claimed)
        return !savepoint || run(s, s->release, error);
    for (size_t i = 0; i < item->n_legs; i++) {
        const encore_store_leg *leg = &item->legs[i];
        if (leg->amount > 0 || leg->allow_negative)
            continue;
        sqlite3_bind_int64(s->debit, 1, leg->amount);
        sqlite3_bind_text(s->debit, 2, leg->account, -1, SQLITE_STATIC);
        if (!run(s, s->debit, error))
            return FALSE;
        if (sqlite3_changes(s->db) == 0) {
            item->status = ENCORE_LEDGER_INSUFFICIENT_FUNDS;
            int64_t id = item->transfer_id;
            item->transfer_id = 0;
            if (!savepoint) {
                sqlite3_bind_int64(s->refuse, 1, id);
                return run(s, s->refuse, error);
            }
            return run(s, s->rollback_to, error) &&
                   claim(s, item, ENCORE_STORE_REFUSED, now_us, &claimed, error) &&
                   run(s, s->release, error);
        }
    }
    for (size_t i = 0; i < item->n_legs; i++) {
        const encore_store_leg *leg = &item->legs[i];
        if ((leg->amount > 0 || leg->allow_negative) &&
            !add_credit(s, leg->account, leg->amount, now_us, error))
            return FALSE;
        if (leg->statement) {
            pending_posting p = {leg->account, item->transfer_id, leg->amount};
            g_array_append_val(s->postings_pending, p);
        }
    }
    item->status = ENCORE_LEDGER_OK;
    return !savepoint || run(s, s->release, error);
}

static gboolean store_run_batch(encore_store *s, encore_store_item **items, size_t n,
                                int64_t now_us, GError **error)
{
    int fault = injected(s, ENCORE_LEDGER_FAULT_AT_BEGIN, n);
    if (fault) {
        set_injected_error(fault, "BEGIN", error);
        return FALSE;
    }
    if (!run(s, s->begin, error))
        return FALSE;
    g_hash_table_remove_all(s->credits);
    g_array_set_size(s->postings_pending, 0);
    for (size_t i = 0; i < n; i++)
        if (!apply(s, items[i], now_us, error))
            goto out_rollback;
    if (!flush_credits(s, NULL, now_us, error) || !flush_postings(s, error))
        goto out_rollback;
    fault = injected(s, ENCORE_LEDGER_FAULT_BEFORE_COMMIT, n);
    if (fault) {
        set_injected_error(fault, "COMMIT", error);
        goto out_rollback;
    }
    if (!run(s, s->commit, error))
        goto out_rollback;
    fault = injected(s, ENCORE_LEDGER_FAULT_AFTER_COMMIT, n);
    if (fault) {
        /* The commit is durable but its answer is "lost": the ledger must find out by
         * replaying the batch, which idempotency makes safe. */
        set_injected_error(fault, "after COMMIT", error);
        return FALSE;
    }
    return TRUE;
out_rollback:
    if (!sqlite3_get_autocommit(s->db))
        run(s, s->rollback, NULL);
    g_hash_table_remove_all(s->credits);
    g_array_set_size(s->postings_pending, 0);
    return FALSE;
}

/* On the syncer thread: touches only wal_fd and the fault hook. */
static gboolean store_sync(encore_store *s, GError **error)
{
    int fault = injected(s, ENCORE_LEDGER_FAULT_AT_SYNC, 0);
    if (fault) {
        set_injected_error(fault, "sync", error);
        return FALSE;
    }
    if (fdatasync(s->wal_fd) != 0) {
        g_set_error(error, ENCORE_STORE_ERROR, ENCORE_STORE_ERROR_FATAL,
                    "sqlite: fdatasync of the WAL: %s", g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

static gboolean store_balance(encore_store *s, const char *account, int64_t *out, GError **error)
{
    sqlite3_stmt *st = s->balance;
    sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    gboolean ok = TRUE;
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
    } else if (rc == SQLITE_DONE) {
        *out = 0;
    } else {
        set_store_error(s, rc, "balance", error);
        ok = FALSE;
    }
    sqlite3_reset(st);
    return ok;
}

static gboolean store_statement(encore_store *s, const char *account, int64_t before,
                                unsigned limit, GPtrArray *out, GError **error)
{
    sqlite3_stmt *st = s->statement;
    sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, before > 0 ? before : INT64_MAX);
    sqlite3_bind_int(st, 3, (int)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        encore_statement_line *line = g_new0(encore_statement_line, 1);
        line->transfer_id = sqlite3_column_int64(st, 0);
        line->amount = sqlite3_column_int64(st, 1);
        line->created_us = sqlite3_column_int64(st, 2);
        line->request_id = g_strdup((const char *)sqlite3_column_text(st, 3));
        line->kind = g_strdup((const char *)sqlite3_column_text(st, 4));
        line->metadata = g_strdup((const char *)sqlite3_column_text(st, 5));
        g_ptr_array_add(out, line);
    }
    gboolean ok = rc == SQLITE_DONE;
    if (!ok)
        set_store_error(s, rc, "statement", error);
    sqlite3_reset(st);
    return ok;
}

/* A record from a row of read_request or scan: (id, status, created_at, request_id, kind,
 * metadata, legs). NULL with a FATAL error when an applied transfer's legs do not parse. */
static encore_ledger_record *row_record(sqlite3_stmt *st, GError **error)
{
    int64_t id = sqlite3_column_int64(st, 0);
    bool applied = sqlite3_column_int(st, 1) == ENCORE_STORE_APPLIED;
    encore_ledger_record *r = encore_store_record_new(
        applied ? id : 0, applied ? ENCORE_LEDGER_OK : ENCORE_LEDGER_INSUFFICIENT_FUNDS,
        sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 3),
        (const char *)sqlite3_column_text(st, 4), (const char *)sqlite3_column_text(st, 5));
    if (!applied)
        return r;
    const char *legs = (const char *)sqlite3_column_text(st, 6);
    size_t len = (size_t)sqlite3_column_bytes(st, 6);
    if (!legs || !encore_store_legs_parse(legs, len, r) || r->n_legs < 2) {
        g_set_error(error, ENCORE_STORE_ERROR, ENCORE_STORE_ERROR_FATAL,
                    "sqlite: transfer %" G_GINT64_FORMAT " (%s) has malformed legs", id,
                    r->request_id);
        encore_ledger_record_free(r);
        return NULL;
    }
    return r;
}

static gboolean store_lookup(encore_store *s, const char *request_id, encore_ledger_record **out,
                             GError **error)
{
    sqlite3_stmt *st = s->read_request;
    *out = NULL;
    for (int64_t key = first_key(s, encore_store_request_key(request_id));; key = next_key(key)) {
        sqlite3_bind_int64(st, 1, key);
        int rc = sqlite3_step(st);
        gboolean ok = TRUE, done = TRUE;
        if (rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 3), request_id)) {
            done = FALSE; /* another id at this key: probe on */
        } else if (rc == SQLITE_ROW) {
            *out = row_record(st, error);
            ok = *out != NULL;
        } else if (rc != SQLITE_DONE) {
            set_store_error(s, rc, "lookup", error);
            ok = FALSE;
        }
        sqlite3_reset(st);
        if (done)
            return ok;
    }
}

static gboolean store_scan(encore_store *s, const char *kind_prefix, int64_t after_id,
                           unsigned limit, GPtrArray *out, GError **error)
{
    sqlite3_stmt *st = s->scan;
    char *upper = g_strconcat(kind_prefix, "~", NULL);
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_text(st, 2, kind_prefix, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, upper, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, (int)limit);
    int rc;
    gboolean ok = TRUE;
    while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        encore_ledger_record *r = row_record(st, error);
        if (r)
            g_ptr_array_add(out, r);
        ok = r != NULL;
    }
    if (ok && rc != SQLITE_DONE) {
        set_store_error(s, rc, "scan", error);
        ok = FALSE;
    }
    sqlite3_reset(st);
    g_free(upper);
    return ok;
}

/* Runs `sql` and calls row(stmt, ...) for each row; FALSE with error on a database error. */
typedef void (*row_fn)(sqlite3_stmt *st, GString *report, unsigned *count);

static gboolean each_row(encore_store *s, const char *sql, row_fn row, GString *report,
                         unsigned *count, GError **error)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        set_store_error(s, rc, sql, error);
        return FALSE;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        row(st, report, count);
    gboolean ok = rc == SQLITE_DONE;
    if (!ok)
        set_store_error(s, rc, sql, error);
    sqlite3_finalize(st);
    return ok;
}

/* SQL function ledger_legs_sum(legs) for the audit: the sum of a legs text that is exactly
 * canonical with 2 or more legs (encore_store_legs_parse()), else NULL. */
static void sql_legs_sum(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *text = (const char *)sqlite3_value_text(argv[0]);
    size_t len = (size_t)sqlite3_value_bytes(argv[0]);
    encore_ledger_record r = {0};
    if (!text || !encore_store_legs_parse(text, len, &r) || r.n_legs < 2) {
        sqlite3_result_null(ctx);
    } else {
        int64_t sum = 0; /* bounded: 16 legs of at most 10^15 */
        for (size_t i = 0; i < r.n_legs; i++)
            sum += r.legs[i].amount;
        sqlite3_result_int64(ctx, sum);
    }
    for (size_t i = 0; i < r.n_legs; i++)
        g_free((char *)r.legs[i].account);
    g_free(r.legs);
}

static void row_bad_legs(sqlite3_stmt *st, GString *r, unsigned *c)
{
    if (sqlite3_column_type(st, 2) == SQLITE_NULL)
        encore_store_audit_violation(r, c, "transfer %lld (%s) has malformed legs",
                                     (long long)sqlite3_column_int64(st, 0),
                                     (const char *)sqlite3_column_text(st, 1));
    else
        encore_store_audit_violation(r, c, "transfer %lld (%s) has legs summing to %lld",
                                     (long long)sqlite3_column_int64(st, 0),
                                     (const char *)sqlite3_column_text(st, 1),
                                     (long long)sqlite3_column_int64(st, 2));
}

static void row_refused_with_legs(sqlite3_stmt *st, GString *r, unsigned *c)
{
    encore_store_audit_violation(r, c, "refused request %lld (%s) has legs",
                                 (long long)sqlite3_column_int64(st, 0),
                                 (const char *)sqlite3_column_text(st, 1));
}

static void row_stray_posting(sqlite3_stmt *st, GString *r, unsigned *c)
{
    encore_store_audit_violation(
        r, c, "posting of transfer %lld on %s (%lld) matches no leg of an applied transfer",
        (long long)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
        (long long)sqlite3_column_int64(st, 2));
}

static void row_missing_posting(sqlite3_stmt *st, GString *r, unsigned *c)
{
    encore_store_audit_violation(r, c, "leg of transfer %lld on %s has no statement posting",
                                 (long long)sqlite3_column_int64(st, 0),
                                 (const char *)sqlite3_column_text(st, 1));
}

static void row_orphan(sqlite3_stmt *st, GString *r, unsigned *c)
{
    encore_store_audit_violation(r, c, "leg of transfer %lld names %s, which has no account",
                                 (long long)sqlite3_column_int64(st, 0),
                                 (const char *)sqlite3_column_text(st, 1));
}

static void row_balance(sqlite3_stmt *st, GString *r, unsigned *c)
{
    encore_store_audit_violation(r, c, "account %s has balance %lld but its legs sum to %lld",
                                 (const char *)sqlite3_column_text(st, 0),
                                 (long long)sqlite3_column_int64(st, 1),
                                 (long long)sqlite3_column_int64(st, 2));
}

static void row_duplicate_id(sqlite3_stmt *st, GString *r, unsigned *c)
{
    encore_store_audit_violation(r, c, "request id %s is stored %lld times",
                                 (const char *)sqlite3_column_text(st, 0),
                                 (long long)sqlite3_column_int64(st, 1));
}

/* Every row a lookup must reach: one stored away from its id's first key needs every key from
 * that one up to its own taken (probing stops at the first free key). */
static gboolean audit_request_keys(encore_store *s, GString *report, unsigned *violations,
                                   GError **error)
{
    gboolean ok = FALSE;
    sqlite3_stmt *moved = NULL, *taken = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT id, request_id, request_key, "
                                "ledger_request_key(request_id) AS first FROM ledger_transfers "
                                "WHERE request_key IS NOT first",
                                -1, &moved, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "SELECT 1 FROM ledger_transfers WHERE request_key = ?1", -1,
                                &taken, NULL);
    if (rc != SQLITE_OK) {
        set_store_error(s, rc, "audit of request keys", error);
        goto out;
    }
    while ((rc = sqlite3_step(moved)) == SQLITE_ROW) {
        int64_t stored = sqlite3_column_int64(moved, 2);
        for (int64_t key = sqlite3_column_int64(moved, 3); key != stored; key = next_key(key)) {
            sqlite3_bind_int64(taken, 1, key);
            int found = sqlite3_step(taken);
            sqlite3_reset(taken);
            if (found == SQLITE_ROW)
                continue;
            if (found != SQLITE_DONE) {
                set_store_error(s, found, "audit of request keys", error);
                goto out;
            }
            encore_store_audit_violation(
                report, violations,
                "request %s (transfer %lld) is stored at key %lld, out of a lookup's reach",
                (const char *)sqlite3_column_text(moved, 1),
                (long long)sqlite3_column_int64(moved, 0), (long long)stored);
            break;
        }
    }
    ok = rc == SQLITE_DONE;
    if (!ok)
        set_store_error(s, rc, "audit of request keys", error);
out:
    sqlite3_finalize(moved);
    sqlite3_finalize(taken);
    return ok;
}

static void row_account(sqlite3_stmt *st, GString *r, unsigned *c)
{
    const char *name = (const char *)sqlite3_column_text(st, 0);
    int64_t balance = sqlite3_column_int64(st, 1);
    bool allow = sqlite3_column_int(st, 2) != 0;
    if (encore_ledger_account_kind(name) == ENCORE_ACCOUNT_INVALID)
        encore_store_audit_violation(r, c, "account %s has an invalid name", name);
    if (allow != encore_ledger_account_may_go_negative(name))
        encore_store_audit_violation(r, c, "account %s is %s allowed to go negative", name,
                                     allow ? "wrongly" : "not");
    if (balance < 0 && !encore_ledger_account_may_go_negative(name))
        encore_store_audit_violation(r, c, "account %s is negative: %lld", name,
                                     (long long)balance);
}

/* The legs of applied transfers as rows (t.id, j.value); malformed legs count as none (the
 * first check reports them). */
#define LEGS_FROM                                                                                  \
    "FROM ledger_transfers t, "                                                                    \
    "json_each(CASE WHEN json_valid(t.legs) THEN t.legs ELSE '[]' END) j WHERE t.status = 0 "
#define LEG_ACCOUNT "json_extract(j.value, '$[0]')"
#define LEG_AMOUNT "json_extract(j.value, '$[1]')"

static gboolean store_audit(encore_store *s, GString *report, gboolean *ok, GError **error)
{
    unsigned violations = 0;
    gboolean done = FALSE;
    /* One read transaction: every query sees the same snapshot. */
    if (!exec_sql(s, "BEGIN", NULL)) {
        g_set_error(error, ENCORE_STORE_ERROR, ENCORE_STORE_ERROR_TRANSIENT,
                    "sqlite: cannot begin the audit");
        return FALSE;
    }
    int64_t applied = 0, refused = 0, legs = 0, postings = 0, accounts = 0, total = 0;
    GError *local = NULL;
    query_int(s, "SELECT count(*) FROM ledger_transfers WHERE status = 0", &applied, &local);
    if (!local)
        query_int(s, "SELECT count(*) FROM ledger_transfers WHERE status <> 0", &refused, &local);
    if (!local)
        query_int(s, "SELECT count(*) " LEGS_FROM, &legs, &local);
    if (!local)
        query_int(s, "SELECT count(*) FROM ledger_postings", &postings, &local);
    if (!local)
        query_int(s, "SELECT count(*) FROM ledger_accounts", &accounts, &local);
    if (!local)
        query_int(s, "SELECT coalesce(sum(balance), 0) FROM ledger_accounts", &total, &local);
    if (local) {
        g_set_error(error, ENCORE_STORE_ERROR, ENCORE_STORE_ERROR_FATAL, "%s", local->message);
        g_error_free(local);
        goto out;
    }
    g_string_append_printf(report,
                           "ledger audit (sqlite): %lld transfers applied, %lld refused, %lld "
                           "legs, %lld statement postings, %lld accounts, sum of balances %lld\n",
                           (long long)applied, (long long)refused, (long long)legs,
                           (long long)postings, (long long)accounts, (long long)total);
    if (total != 0)
        encore_store_audit_violation(report, &violations, "the balances sum to %lld, not 0",
                                     (long long)total);
    if (!each_row(s,
                  "SELECT id, request_id, ledger_legs_sum(legs) AS total FROM ledger_transfers "
                  "WHERE status = 0 AND total IS NOT 0",
                  row_bad_legs, report, &violations, error) ||
        !each_row(s,
                  "SELECT id, request_id FROM ledger_transfers "
                  "WHERE status <> 0 AND legs IS NOT NULL",
                  row_refused_with_legs, report, &violations, error) ||
        !each_row(s,
                  "SELECT p.transfer_id, p.account, p.amount FROM ledger_postings p "
                  "LEFT JOIN ledger_transfers t ON t.id = p.transfer_id "
                  "WHERE t.id IS NULL OR t.status <> 0 OR NOT EXISTS (SELECT 1 FROM "
                  "json_each(CASE WHEN json_valid(t.legs) THEN t.legs ELSE '[]' END) j "
                  "WHERE " LEG_ACCOUNT " = p.account AND " LEG_AMOUNT " = p.amount)",
                  row_stray_posting, report, &violations, error) ||
        !each_row(s,
                  "SELECT t.id, " LEG_ACCOUNT " " LEGS_FROM "AND " LEG_ACCOUNT " < 'platform:' "
                  "AND NOT EXISTS (SELECT 1 FROM ledger_postings p "
                  "WHERE p.account = " LEG_ACCOUNT " AND p.transfer_id = t.id)",
                  row_missing_posting, report, &violations, error) ||
        !each_row(s,
                  "SELECT t.id, " LEG_ACCOUNT " " LEGS_FROM
                  "AND NOT EXISTS (SELECT 1 FROM ledger_accounts a "
                  "WHERE a.name = " LEG_ACCOUNT ")",
                  row_orphan, report, &violations, error) ||
        !each_row(s,
                  "SELECT a.name, a.balance, coalesce(l.total, 0) FROM ledger_accounts a "
                  "LEFT JOIN (SELECT " LEG_ACCOUNT " AS account, sum(" LEG_AMOUNT
                  ") AS total " LEGS_FROM "GROUP BY 1) l ON l.account = a.name "
                  "WHERE a.balance IS NOT coalesce(l.total, 0)",
                  row_balance, report, &violations, error) ||
        !each_row(s, "SELECT name, balance, allow_negative FROM ledger_accounts", row_account,
                  report, &violations, error) ||
        !each_row(s,
                  "SELECT request_id, count(*) FROM ledger_transfers GROUP BY request_id "
                  "HAVING count(*) > 1",
                  row_duplicate_id, report, &violations, error) ||
        !audit_request_keys(s, report, &violations, error))
        goto out;
    g_string_append_printf(report, "ledger audit: %s (%u violations)\n",
                           violations ? "FAILED" : "ok", violations);
    *ok = violations == 0;
    done = TRUE;
out:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return done;
}

const struct encore_store_ops encore_store_sqlite_ops = {
    .name = "sqlite",
    .open = store_open,
    .close = store_close,
    .run_batch = store_run_batch,
    .sync = store_sync,
    .balance = store_balance,
    .statement = store_statement,
    .lookup = store_lookup,
    .scan = store_scan,
    .audit = store_audit,
};
