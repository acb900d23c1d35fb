/* The SQLite store: one connection in WAL mode with synchronous=FULL, each batch one BEGIN
 * IMMEDIATE transaction, schema created and migrated on open. Credits are summed per account over
 * the batch and written once before the commit (a hot account is updated once per batch, not
 * once per gift); debits are conditional updates that see every earlier credit.
 * Runs on the ledger thread only (opened by the thread that opens the ledger, then handed over);
 * it never acknowledges anything itself: the ledger does that after run_batch() returns. */
#define G_LOG_DOMAIN "encore-ledger"
#include "config.h"

#include <sqlite3.h>
#include <string.h>

#include "server/economy/store.h"

/* Schema, one entry per version: entry i migrates version i to i + 1. Balances and amounts must
 * stay integers (SQLite would turn an overflowing sum into a float: the typeof checks refuse it).
 * Only external accounts may be marked allow_negative, and only those may go below zero. */
static const char *const migrations[ENCORE_STORE_SCHEMA_VERSION] = {
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
};

struct encore_store {
    sqlite3 *db;
    encore_store_options opts;
    sqlite3_stmt *begin, *commit, *rollback;
    sqlite3_stmt *savepoint, *release, *rollback_to;
    sqlite3_stmt *claim;  /* insert a transfer row unless its request id exists */
    sqlite3_stmt *lookup; /* the stored row of a request id */
    sqlite3_stmt *debit;  /* conditional debit of a non-negative account */
    sqlite3_stmt *refuse; /* mark a claimed request refused */
    sqlite3_stmt *upsert; /* create-or-add for credits and allow_negative debits */
    sqlite3_stmt *balance;
    sqlite3_stmt *statement;
    /* INSERT of n postings in one statement, prepared on first use (index n). */
    sqlite3_stmt *postings[ENCORE_LEDGER_MAX_LEGS + 1];
    /* This batch's pending credits (and debits of accounts allowed to go negative): account
     * name (borrowed from the batch's items) -> int64_t sum. Written by flush_credit(). */
    GHashTable *credits;
};

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

static void store_close(encore_store *s)
{
    if (!s)
        return;
    sqlite3_stmt **stmts[] = {&s->begin,    &s->commit,      &s->rollback, &s->savepoint,
                              &s->release,  &s->rollback_to, &s->claim,    &s->lookup,
                              &s->debit,    &s->refuse,      &s->upsert,   &s->balance,
                              &s->statement};
    for (size_t i = 0; i < G_N_ELEMENTS(stmts); i++)
        sqlite3_finalize(*stmts[i]);
    for (size_t i = 0; i < G_N_ELEMENTS(s->postings); i++)
        sqlite3_finalize(s->postings[i]);
    if (s->credits)
        g_hash_table_destroy(s->credits);
    sqlite3_close_v2(s->db);
    g_free(s);
}

static encore_store *store_open(const char *target, const encore_store_options *opts,
                                GError **error)
{
    encore_store *s = g_new0(encore_store, 1);
    s->opts = *opts;
    s->credits = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
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
    /* Durability: the WAL is fsynced on every commit (synchronous=FULL). Both are checked, not
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
                    "metadata, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                    "ON CONFLICT (request_id) DO NOTHING"},
        {&s->lookup, "SELECT id, request_hash, status FROM ledger_transfers WHERE request_id = ?1"},
        {&s->debit, "UPDATE ledger_accounts SET balance = balance + ?1 "
                    "WHERE name = ?2 AND balance + ?1 >= 0"},
        {&s->upsert, "INSERT INTO ledger_accounts (name, balance, allow_negative, created_at) "
                     "VALUES (?1, ?2, ?3, ?4) "
                     "ON CONFLICT (name) DO UPDATE SET balance = balance + excluded.balance"},
        {&s->refuse, "UPDATE ledger_transfers SET status = 1 WHERE id = ?1"},
        {&s->balance, "SELECT balance FROM ledger_accounts WHERE name = ?1"},
        /* The predicate term lets SQLite use the partial index (it does not infer it). */
        {&s->statement,
         "SELECT p.transfer_id, p.amount, t.created_at, t.request_id, t.kind, t.metadata "
         "FROM ledger_postings p JOIN ledger_transfers t ON t.id = p.transfer_id "
         "WHERE p.account = ?1 AND " ENCORE_STORE_STATEMENT_PREDICATE " AND p.transfer_id < ?2 "
         "ORDER BY p.transfer_id DESC LIMIT ?3"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(stmts); i++) {
        *stmts[i].stmt = prepare(s, stmts[i].sql, error);
        if (!*stmts[i].stmt)
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

/* Inserts the transfer row of `item` with `status`; *claimed tells whether it was new. */
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
    if (!run(s, st, error))
        return FALSE;
    *claimed = sqlite3_changes(s->db) == 1;
    if (*claimed)
        item->transfer_id = sqlite3_last_insert_rowid(s->db);
    return TRUE;
}

/* The request id exists: answer from the stored row. */
static gboolean replay(encore_store *s, encore_store_item *item, GError **error)
{
    sqlite3_stmt *st = s->lookup;
    sqlite3_bind_text(st, 1, item->id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    gboolean ok = FALSE;
    if (rc != SQLITE_ROW) {
        set_store_error(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "lookup", error);
        goto out;
    }
    const void *hash = sqlite3_column_blob(st, 1);
    if (sqlite3_column_bytes(st, 1) != ENCORE_STORE_HASH_LEN ||
        memcmp(hash, item->hash, ENCORE_STORE_HASH_LEN) != 0) {
        item->status = ENCORE_LEDGER_IDEMPOTENCY_CONFLICT;
        item->transfer_id = 0;
    } else if (sqlite3_column_int(st, 2) == ENCORE_STORE_APPLIED) {
        item->status = ENCORE_LEDGER_OK;
        item->transfer_id = sqlite3_column_int64(st, 0);
        item->replayed = true;
    } else {
        item->status = ENCORE_LEDGER_INSUFFICIENT_FUNDS;
        item->transfer_id = 0;
        item->replayed = true;
    }
    ok = TRUE;
out:
    sqlite3_reset(st);
    return ok;
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

static sqlite3_stmt *postings_stmt(encore_store *s, size_t n, GError **error)
{
    if (s->postings[n])
        return s->postings[n];
    GString *sql =
        g_string_new("INSERT INTO ledger_postings (transfer_id, account, amount) VALUES ");
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
    if (!claimed) {
        if (!replay(s, item, error))
            return FALSE;
        return !savepoint || run(s, s->release, error);
    }
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
    sqlite3_stmt *ins = postings_stmt(s, item->n_legs, error);
    if (!ins)
        return FALSE;
    for (size_t i = 0; i < item->n_legs; i++) {
        const encore_store_leg *leg = &item->legs[i];
        if ((leg->amount > 0 || leg->allow_negative) &&
            !add_credit(s, leg->account, leg->amount, now_us, error))
            return FALSE;
        sqlite3_bind_int64(ins, (int)(3 * i + 1), item->transfer_id);
        sqlite3_bind_text(ins, (int)(3 * i + 2), leg->account, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, (int)(3 * i + 3), leg->amount);
    }
    if (!run(s, ins, error))
        return FALSE;
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
    for (size_t i = 0; i < n; i++)
        if (!apply(s, items[i], now_us, error))
            goto out_rollback;
    if (!flush_credits(s, NULL, now_us, error))
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
    return FALSE;
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

static void row_unbalanced(sqlite3_stmt *st, GString *r, unsigned *c)
{
    encore_store_audit_violation(
        r, c, "transfer %lld (%s) has %lld postings summing to %lld",
        (long long)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
        (long long)sqlite3_column_int64(st, 2), (long long)sqlite3_column_int64(st, 3));
}

static void row_refused_with_postings(sqlite3_stmt *st, GString *r, unsigned *c)
{
    encore_store_audit_violation(
        r, c, "refused request %lld (%s) has %lld postings", (long long)sqlite3_column_int64(st, 0),
        (const char *)sqlite3_column_text(st, 1), (long long)sqlite3_column_int64(st, 2));
}

static void row_orphan(sqlite3_stmt *st, GString *r, unsigned *c)
{
    encore_store_audit_violation(
        r, c, "posting of transfer %lld on %s has no %s", (long long)sqlite3_column_int64(st, 0),
        (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2));
}

static void row_balance(sqlite3_stmt *st, GString *r, unsigned *c)
{
    encore_store_audit_violation(r, c, "account %s has balance %lld but its postings sum to %lld",
                                 (const char *)sqlite3_column_text(st, 0),
                                 (long long)sqlite3_column_int64(st, 1),
                                 (long long)sqlite3_column_int64(st, 2));
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
    int64_t applied = 0, refused = 0, postings = 0, accounts = 0, total = 0;
    GError *local = NULL;
    query_int(s, "SELECT count(*) FROM ledger_transfers WHERE status = 0", &applied, &local);
    if (!local)
        query_int(s, "SELECT count(*) FROM ledger_transfers WHERE status <> 0", &refused, &local);
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
                           "postings, %lld accounts, sum of balances %lld\n",
                           (long long)applied, (long long)refused, (long long)postings,
                           (long long)accounts, (long long)total);
    if (total != 0)
        encore_store_audit_violation(report, &violations, "the balances sum to %lld, not 0",
                                     (long long)total);
    if (!each_row(s,
                  "SELECT t.id, t.request_id, coalesce(p.n, 0), coalesce(p.total, 0) "
                  "FROM ledger_transfers t LEFT JOIN (SELECT transfer_id, count(*) AS n, "
                  "sum(amount) AS total FROM ledger_postings GROUP BY transfer_id) p "
                  "ON p.transfer_id = t.id "
                  "WHERE t.status = 0 AND (coalesce(p.n, 0) < 2 OR coalesce(p.total, 0) <> 0)",
                  row_unbalanced, report, &violations, error) ||
        !each_row(s,
                  "SELECT p.transfer_id, t.request_id, count(*) FROM ledger_postings p "
                  "JOIN ledger_transfers t ON t.id = p.transfer_id WHERE t.status <> 0 "
                  "GROUP BY p.transfer_id, t.request_id",
                  row_refused_with_postings, report, &violations, error) ||
        !each_row(s,
                  "SELECT p.transfer_id, p.account, 'transfer' FROM ledger_postings p "
                  "LEFT JOIN ledger_transfers t ON t.id = p.transfer_id WHERE t.id IS NULL "
                  "UNION ALL "
                  "SELECT p.transfer_id, p.account, 'account' FROM ledger_postings p "
                  "LEFT JOIN ledger_accounts a ON a.name = p.account WHERE a.name IS NULL",
                  row_orphan, report, &violations, error) ||
        !each_row(s,
                  "SELECT a.name, a.balance, coalesce(p.total, 0) FROM ledger_accounts a "
                  "LEFT JOIN (SELECT account, sum(amount) AS total FROM ledger_postings "
                  "GROUP BY account) p ON p.account = a.name "
                  "WHERE a.balance IS NOT coalesce(p.total, 0)",
                  row_balance, report, &violations, error) ||
        !each_row(s, "SELECT name, balance, allow_negative FROM ledger_accounts", row_account,
                  report, &violations, error))
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
    .balance = store_balance,
    .statement = store_statement,
    .audit = store_audit,
};
