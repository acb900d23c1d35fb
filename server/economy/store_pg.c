/* The PostgreSQL store (libpq): a batch is one call of the server-side function
 * ledger_apply_batch(), one statement and so one transaction and one round trip, in READ COMMITTED
 * with atomic conditional updates and CHECK constraints (docs/ledger.md says why not SERIALIZABLE).
 * Runs on the ledger thread only; it reconnects after a lost connection but never acknowledges
 * anything itself. */
#define G_LOG_DOMAIN "encore-ledger"
#include "config.h"

#include <libpq-fe.h>
#include <string.h>

#include "server/economy/store.h"

/* Schema, one entry per version (entry i migrates version i to i + 1). Tables and the function
 * live in the connection's current schema (the first of its search_path). */
static const char *const migrations[ENCORE_STORE_SCHEMA_VERSION] = {
    /* Version 1: postings of every leg, keyed by transfer, plus a statement index. */
    "CREATE TABLE ledger_accounts ("
    "  name text PRIMARY KEY,"
    "  balance bigint NOT NULL DEFAULT 0,"
    "  allow_negative boolean NOT NULL DEFAULT false,"
    "  created_at bigint NOT NULL,"
    "  CONSTRAINT ledger_accounts_non_negative CHECK (allow_negative OR balance >= 0),"
    "  CONSTRAINT ledger_accounts_negative_only_external"
    "    CHECK (NOT allow_negative OR name LIKE 'external:%')"
    ");"
    "CREATE TABLE ledger_transfers ("
    "  id bigserial PRIMARY KEY,"
    "  request_id text NOT NULL UNIQUE,"
    "  request_hash bytea NOT NULL CHECK (length(request_hash) = 32),"
    "  status smallint NOT NULL CHECK (status IN (0, 1)),"
    "  kind text NOT NULL,"
    "  metadata text,"
    "  created_at bigint NOT NULL"
    ");"
    /* transfer_id and account name a transfer and an account; no FOREIGN KEY constraints: their
     * per-row checks doubled the cost of a batch. The audit checks both references. */
    "CREATE TABLE ledger_postings ("
    "  transfer_id bigint NOT NULL,"
    "  account text NOT NULL,"
    "  amount bigint NOT NULL CHECK (amount <> 0),"
    "  PRIMARY KEY (transfer_id, account)"
    ");"
    "CREATE INDEX ledger_postings_statements ON ledger_postings(account, transfer_id) "
    "WHERE " ENCORE_STORE_STATEMENT_PREDICATE ";"
    /* One batch, one statement. Requests come as parallel arrays (p_legs[i]: "account=amount=t|f"
     * comma-separated, the flag telling whether the account may go negative), read through
     * unnest so that every access is O(1). First every new request id is claimed with one INSERT
     * (ON CONFLICT waits for a concurrent claimer of the same id, then leaves its row; transfer
     * ids follow the batch order). Then, request by request: a known id is answered from its row;
     * debits of non-negative accounts are conditional UPDATEs (the row lock makes check and write
     * one step); a refused request undoes its own earlier debits and is remembered as refused.
     * No exception blocks, so no subtransactions: a refusal never aborts the batch. Credits (and
     * debits of external:topups) are summed per account and written once at the end, postings in
     * one INSERT: a hot account is updated once per batch, not once per gift. A debit that finds
     * too little first takes in the batch's pending credits to that account and tries again.
     * p_fault (tests only) raises that SQLSTATE after all the work, before the commit. */
    "CREATE FUNCTION ledger_apply_batch(p_ids text[], p_hashes text[], p_kinds text[],"
    "  p_metas text[], p_legs text[], p_now bigint, p_fault text)"
    " RETURNS TABLE (r_status int, r_transfer_id bigint, r_replayed boolean)"
    " LANGUAGE plpgsql AS $fn$\n"
    "DECLARE\n"
    "  r record; parts text[]; leg text[]; n int; j int; k int;\n"
    "  accs text[]; amts bigint[]; negs boolean[];\n"
    "  tid bigint; old_hash bytea; old_status smallint; refused boolean;\n"
    "  pending bigint; paid boolean; claimed bigint[];\n"
    "  c_acc text[] := '{}'; c_amt bigint[] := '{}'; c_neg boolean[] := '{}';\n"
    "  q_tid bigint[] := '{}'; q_acc text[] := '{}'; q_amt bigint[] := '{}';\n"
    "BEGIN\n"
    "  WITH ins AS (\n"
    "    INSERT INTO ledger_transfers AS t (request_id, request_hash, status, kind, metadata,\n"
    "        created_at)\n"
    "      SELECT u.id, decode(u.hash, 'hex'), 0, u.kind, u.meta, p_now\n"
    "        FROM unnest(p_ids, p_hashes, p_kinds, p_metas) WITH ORDINALITY\n"
    "          AS u(id, hash, kind, meta, ord)\n"
    "        ORDER BY u.ord\n"
    "      ON CONFLICT (request_id) DO NOTHING\n"
    "      RETURNING t.id, t.request_id)\n"
    "  SELECT array_agg(CASE WHEN f.first THEN ins.id END ORDER BY f.ord) INTO claimed\n"
    "    FROM (SELECT u.id, u.ord, u.ord = min(u.ord) OVER (PARTITION BY u.id) AS first\n"
    "            FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)) f\n"
    "    LEFT JOIN ins ON ins.request_id = f.id;\n"
    "  FOR r IN SELECT u.id, u.hash, u.legs, u.ord\n"
    "      FROM unnest(p_ids, p_hashes, p_legs) WITH ORDINALITY AS u(id, hash, legs, ord)\n"
    "  LOOP\n"
    "    tid := claimed[r.ord];\n"
    "    IF tid IS NULL THEN\n"
    "      SELECT t.id, t.request_hash, t.status INTO tid, old_hash, old_status\n"
    "        FROM ledger_transfers t WHERE t.request_id = r.id;\n"
    "      IF old_hash <> decode(r.hash, 'hex') THEN\n"
    "        r_status := 2; r_transfer_id := NULL; r_replayed := false;\n"
    "      ELSIF old_status = 0 THEN\n"
    "        r_status := 0; r_transfer_id := tid; r_replayed := true;\n"
    "      ELSE\n"
    "        r_status := 1; r_transfer_id := NULL; r_replayed := true;\n"
    "      END IF;\n"
    "      RETURN NEXT;\n"
    "      CONTINUE;\n"
    "    END IF;\n"
    "    parts := string_to_array(r.legs, ',');\n"
    "    n := array_length(parts, 1);\n"
    "    accs := '{}'; amts := '{}'; negs := '{}';\n"
    "    FOR j IN 1 .. n LOOP\n"
    "      leg := string_to_array(parts[j], '=');\n"
    "      accs[j] := leg[1]; amts[j] := leg[2]::bigint; negs[j] := leg[3] = 't';\n"
    "    END LOOP;\n"
    "    refused := false;\n"
    "    FOR j IN 1 .. n LOOP\n"
    "      CONTINUE WHEN amts[j] > 0 OR negs[j];\n"
    "      UPDATE ledger_accounts a SET balance = a.balance + amts[j]\n"
    "        WHERE a.name = accs[j] AND a.balance + amts[j] >= 0;\n"
    "      paid := FOUND;\n"
    "      IF NOT paid THEN\n"
    "        pending := 0;\n"
    "        FOR k IN 1 .. coalesce(array_length(c_acc, 1), 0) LOOP\n"
    "          IF c_acc[k] = accs[j] THEN\n"
    "            pending := pending + c_amt[k]; c_amt[k] := 0;\n"
    "          END IF;\n"
    "        END LOOP;\n"
    "        IF pending <> 0 THEN\n"
    "          INSERT INTO ledger_accounts AS a (name, balance, allow_negative, created_at)\n"
    "            VALUES (accs[j], pending, false, p_now)\n"
    "            ON CONFLICT (name) DO UPDATE SET balance = a.balance + EXCLUDED.balance;\n"
    "          UPDATE ledger_accounts a SET balance = a.balance + amts[j]\n"
    "            WHERE a.name = accs[j] AND a.balance + amts[j] >= 0;\n"
    "          paid := FOUND;\n"
    "        END IF;\n"
    "      END IF;\n"
    "      IF NOT paid THEN\n"
    "        FOR k IN 1 .. j - 1 LOOP\n"
    "          IF amts[k] < 0 AND NOT negs[k] THEN\n"
    "            UPDATE ledger_accounts a SET balance = a.balance - amts[k] WHERE a.name = "
    "accs[k];\n"
    "          END IF;\n"
    "        END LOOP;\n"
    "        refused := true;\n"
    "        EXIT;\n"
    "      END IF;\n"
    "    END LOOP;\n"
    "    IF refused THEN\n"
    "      UPDATE ledger_transfers t SET status = 1 WHERE t.id = tid;\n"
    "      r_status := 1; r_transfer_id := NULL; r_replayed := false;\n"
    "    ELSE\n"
    "      FOR j IN 1 .. n LOOP\n"
    "        IF amts[j] > 0 OR negs[j] THEN\n"
    "          c_acc := array_append(c_acc, accs[j]);\n"
    "          c_amt := array_append(c_amt, amts[j]);\n"
    "          c_neg := array_append(c_neg, negs[j]);\n"
    "        END IF;\n"
    "        q_tid := array_append(q_tid, tid);\n"
    "        q_acc := array_append(q_acc, accs[j]);\n"
    "        q_amt := array_append(q_amt, amts[j]);\n"
    "      END LOOP;\n"
    "      r_status := 0; r_transfer_id := tid; r_replayed := false;\n"
    "    END IF;\n"
    "    RETURN NEXT;\n"
    "  END LOOP;\n"
    "  INSERT INTO ledger_accounts AS a (name, balance, allow_negative, created_at)\n"
    "    SELECT u.acc, sum(u.amt), bool_or(u.neg), p_now\n"
    "      FROM unnest(c_acc, c_amt, c_neg) AS u(acc, amt, neg) GROUP BY u.acc\n"
    "    ON CONFLICT (name) DO UPDATE SET balance = a.balance + EXCLUDED.balance;\n"
    "  INSERT INTO ledger_postings (transfer_id, account, amount)\n"
    "    SELECT u.t, u.acc, u.amt FROM unnest(q_tid, q_acc, q_amt) AS u(t, acc, amt);\n"
    "  IF p_fault IS NOT NULL THEN\n"
    "    RAISE EXCEPTION 'injected fault %', p_fault USING ERRCODE = p_fault;\n"
    "  END IF;\n"
    "END\n"
    "$fn$;",
    /* Version 2: each applied transfer keeps its legs in its row (canonical text, see
     * encore_store_legs_json(); NULL for refused requests), and ledger_postings keeps only the
     * legs of statement accounts, keyed by account: it is the statement index itself. The legs
     * text is built here exactly as the code builds it. The batch function takes the legs text
     * and a fourth flag per leg ('s': a statement account, whose posting is kept). */
    "ALTER TABLE ledger_transfers ADD COLUMN legs text;"
    "UPDATE ledger_transfers t SET legs = p.legs"
    "  FROM (SELECT transfer_id, '[' || string_agg('[\"' || account || '\",' || amount || ']',"
    "               ',' ORDER BY account COLLATE \"C\") || ']' AS legs"
    "        FROM ledger_postings GROUP BY transfer_id) p"
    "  WHERE p.transfer_id = t.id AND t.status = 0;"
    "DELETE FROM ledger_postings WHERE NOT (" ENCORE_STORE_STATEMENT_PREDICATE ");"
    "DROP INDEX ledger_postings_statements;"
    "ALTER TABLE ledger_postings DROP CONSTRAINT ledger_postings_pkey;"
    "ALTER TABLE ledger_postings ADD PRIMARY KEY (account, transfer_id);"
    "DROP FUNCTION IF EXISTS"
    "  ledger_apply_batch(text[], text[], text[], text[], text[], bigint, text);"
    "CREATE FUNCTION ledger_apply_batch(p_ids text[], p_hashes text[], p_kinds text[],"
    "  p_metas text[], p_legs text[], p_legs_json text[], p_now bigint, p_fault text)"
    " RETURNS TABLE (r_status int, r_transfer_id bigint, r_replayed boolean)"
    " LANGUAGE plpgsql AS $fn$\n"
    "DECLARE\n"
    "  r record; parts text[]; leg text[]; n int; j int; k int;\n"
    "  accs text[]; amts bigint[]; negs boolean[]; stmts boolean[];\n"
    "  tid bigint; old_hash bytea; old_status smallint; refused boolean;\n"
    "  pending bigint; paid boolean; claimed bigint[];\n"
    "  c_acc text[] := '{}'; c_amt bigint[] := '{}'; c_neg boolean[] := '{}';\n"
    "  q_tid bigint[] := '{}'; q_acc text[] := '{}'; q_amt bigint[] := '{}';\n"
    "BEGIN\n"
    "  WITH ins AS (\n"
    "    INSERT INTO ledger_transfers AS t (request_id, request_hash, status, kind, metadata,\n"
    "        created_at, legs)\n"
    "      SELECT u.id, decode(u.hash, 'hex'), 0, u.kind, u.meta, p_now, u.legs\n"
    "        FROM unnest(p_ids, p_hashes, p_kinds, p_metas, p_legs_json) WITH ORDINALITY\n"
    "          AS u(id, hash, kind, meta, legs, ord)\n"
    "        ORDER BY u.ord\n"
    "      ON CONFLICT (request_id) DO NOTHING\n"
    "      RETURNING t.id, t.request_id)\n"
    "  SELECT array_agg(CASE WHEN f.first THEN ins.id END ORDER BY f.ord) INTO claimed\n"
    "    FROM (SELECT u.id, u.ord, u.ord = min(u.ord) OVER (PARTITION BY u.id) AS first\n"
    "            FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)) f\n"
    "    LEFT JOIN ins ON ins.request_id = f.id;\n"
    "  FOR r IN SELECT u.id, u.hash, u.legs, u.ord\n"
    "      FROM unnest(p_ids, p_hashes, p_legs) WITH ORDINALITY AS u(id, hash, legs, ord)\n"
    "  LOOP\n"
    "    tid := claimed[r.ord];\n"
    "    IF tid IS NULL THEN\n"
    "      SELECT t.id, t.request_hash, t.status INTO tid, old_hash, old_status\n"
    "        FROM ledger_transfers t WHERE t.request_id = r.id;\n"
    "      IF old_hash <> decode(r.hash, 'hex') THEN\n"
    "        r_status := 2; r_transfer_id := NULL; r_replayed := false;\n"
    "      ELSIF old_status = 0 THEN\n"
    "        r_status := 0; r_transfer_id := tid; r_replayed := true;\n"
    "      ELSE\n"
    "        r_status := 1; r_transfer_id := NULL; r_replayed := true;\n"
    "      END IF;\n"
    "      RETURN NEXT;\n"
    "      CONTINUE;\n"
    "    END IF;\n"
    "    parts := string_to_array(r.legs, ',');\n"
    "    n := array_length(parts, 1);\n"
    "    accs := '{}'; amts := '{}'; negs := '{}'; stmts := '{}';\n"
    "    FOR j IN 1 .. n LOOP\n"
    "      leg := string_to_array(parts[j], '=');\n"
    "      accs[j] := leg[1]; amts[j] := leg[2]::bigint; negs[j] := leg[3] = 't';\n"
    "      stmts[j] := leg[4] = 's';\n"
    "    END LOOP;\n"
    "    refused := false;\n"
    "    FOR j IN 1 .. n LOOP\n"
    "      CONTINUE WHEN amts[j] > 0 OR negs[j];\n"
    "      UPDATE ledger_accounts a SET balance = a.balance + amts[j]\n"
    "        WHERE a.name = accs[j] AND a.balance + amts[j] >= 0;\n"
    "      paid := FOUND;\n"
    "      IF NOT paid THEN\n"
    "        pending := 0;\n"
    "        FOR k IN 1 .. coalesce(array_length(c_acc, 1), 0) LOOP\n"
    "          IF c_acc[k] = accs[j] THEN\n"
    "            pending := pending + c_amt[k]; c_amt[k] := 0;\n"
    "          END IF;\n"
    "        END LOOP;\n"
    "        IF pending <> 0 THEN\n"
    "          INSERT INTO ledger_accounts AS a (name, balance, allow_negative, created_at)\n"
    "            VALUES (accs[j], pending, false, p_now)\n"
    "            ON CONFLICT (name) DO UPDATE SET balance = a.balance + EXCLUDED.balance;\n"
    "          UPDATE ledger_accounts a SET balance = a.balance + amts[j]\n"
    "            WHERE a.name = accs[j] AND a.balance + amts[j] >= 0;\n"
    "          paid := FOUND;\n"
    "        END IF;\n"
    "      END IF;\n"
    "      IF NOT paid THEN\n"
    "        FOR k IN 1 .. j - 1 LOOP\n"
    "          IF amts[k] < 0 AND NOT negs[k] THEN\n"
    "            UPDATE ledger_accounts a SET balance = a.balance - amts[k] WHERE a.name = "
    "accs[k];\n"
    "          END IF;\n"
    "        END LOOP;\n"
    "        refused := true;\n"
    "        EXIT;\n"
    "      END IF;\n"
    "    END LOOP;\n"
    "    IF refused THEN\n"
    "      UPDATE ledger_transfers t SET status = 1, legs = NULL WHERE t.id = tid;\n"
    "      r_status := 1; r_transfer_id := NULL; r_replayed := false;\n"
    "    ELSE\n"
    "      FOR j IN 1 .. n LOOP\n"
    "        IF amts[j] > 0 OR negs[j] THEN\n"
    "          c_acc := array_append(c_acc, accs[j]);\n"
    "          c_amt := array_append(c_amt, amts[j]);\n"
    "          c_neg := array_append(c_neg, negs[j]);\n"
    "        END IF;\n"
    "        IF stmts[j] THEN\n"
    "          q_tid := array_append(q_tid, tid);\n"
    "          q_acc := array_append(q_acc, accs[j]);\n"
    "          q_amt := array_append(q_amt, amts[j]);\n"
    "        END IF;\n"
    "      END LOOP;\n"
    "      r_status := 0; r_transfer_id := tid; r_replayed := false;\n"
    "    END IF;\n"
    "    RETURN NEXT;\n"
    "  END LOOP;\n"
    "  INSERT INTO ledger_accounts AS a (name, balance, allow_negative, created_at)\n"
    "    SELECT u.acc, sum(u.amt), bool_or(u.neg), p_now\n"
    "      FROM unnest(c_acc, c_amt, c_neg) AS u(acc, amt, neg) GROUP BY u.acc\n"
    "    ON CONFLICT (name) DO UPDATE SET balance = a.balance + EXCLUDED.balance;\n"
    "  INSERT INTO ledger_postings (transfer_id, account, amount)\n"
    "    SELECT u.t, u.acc, u.amt FROM unnest(q_tid, q_acc, q_amt) AS u(t, acc, amt);\n"
    "  IF p_fault IS NOT NULL THEN\n"
    "    RAISE EXCEPTION 'injected fault %', p_fault USING ERRCODE = p_fault;\n"
    "  END IF;\n"
    "END\n"
    "$fn$;",
};

#define APPLY_SQL                                                                                  \
    "SELECT r_status, r_transfer_id, r_replayed FROM ledger_apply_batch($1::text[], "              \
    "$2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint, $8::text)"

struct encore_store {
    PGconn *conn;
    encore_store_options opts;
    bool prepared;    /* the session has "ledger_apply" prepared and its settings made */
    GString *args[6]; /* array literals of one batch, reused */
    GString *legs;    /* one request's legs, reused */
};

static bool sqlstate_transient(const char *state)
{
    if (!state)
        return true; /* no server answer at all: the connection failed */
    static const char *const transient[] = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03"};
    if (strncmp(state, "08", 2) == 0)
        return true;
    for (size_t i = 0; i < G_N_ELEMENTS(transient); i++)
        if (strcmp(state, transient[i]) == 0)
            return true;
    return false;
}

/* Sets an ENCORE_STORE_ERROR from a failed result (res may be NULL). */
static void set_result_error(encore_store *s, PGresult *res, const char *what, GError **error)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    bool transient = PQstatus(s->conn) != CONNECTION_OK || sqlstate_transient(state);
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg || !*msg)
        msg = PQerrorMessage(s->conn);
    char *clean = g_strchomp(g_strdup(msg));
    g_set_error(error, ENCORE_STORE_ERROR,
                transient ? ENCORE_STORE_ERROR_TRANSIENT : ENCORE_STORE_ERROR_FATAL,
                "postgresql: %s: [%s] %s", what, state ? state : "no sqlstate", clean);
    g_free(clean);
}

/* Runs a command expecting no rows. */
static gboolean command(encore_store *s, const char *sql, GError **error)
{
    PGresult *res = PQexec(s->conn, sql);
    gboolean ok =
        res && (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK);
    if (!ok)
        set_result_error(s, res, sql, error);
    PQclear(res);
    return ok;
}

/* Session settings and the prepared batch statement, after every (re)connection. */
static gboolean prepare_session(encore_store *s, GError **error)
{
    /* Durability does not depend on the server's defaults: every commit waits for its WAL flush.
     */
    if (!command(s,
                 "SET synchronous_commit = on; SET client_min_messages = warning; "
                 "SET default_transaction_isolation = 'read committed'; "
                 "SET standard_conforming_strings = on",
                 error))
        return FALSE;
    PGresult *res = PQprepare(s->conn, "ledger_apply", APPLY_SQL, 0, NULL);
    gboolean ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        set_result_error(s, res, "prepare", error);
    PQclear(res);
    s->prepared = ok;
    return ok;
}

/* Reconnects when the connection is gone. */
static gboolean ensure_connected(encore_store *s, GError **error)
{
    if (PQstatus(s->conn) != CONNECTION_OK) {
        s->prepared = false;
        PQreset(s->conn);
        if (PQstatus(s->conn) != CONNECTION_OK) {
            char *msg = g_strchomp(g_strdup(PQerrorMessage(s->conn)));
            g_set_error(error, ENCORE_STORE_ERROR, ENCORE_STORE_ERROR_TRANSIENT,
                        "postgresql: reconnect failed: %s", msg);
            g_free(msg);
            return FALSE;
        }
    }
    return s->prepared || prepare_session(s, error);
}

/* A one-value query; *out gets a copy of the value (NULL for SQL NULL or no row). */
static gboolean query_value(encore_store *s, const char *sql, char **out, GError **error)
{
    PGresult *res = PQexec(s->conn, sql);
    gboolean ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    *out = NULL;
    if (!ok)
        set_result_error(s, res, sql, error);
    else if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        *out = g_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return ok;
}

static void to_ledger_error(GError **error, GError *local, encore_ledger_error code)
{
    g_set_error(error, ENCORE_LEDGER_ERROR, code, "%s", local->message);
    g_error_free(local);
}

static gboolean migrate(encore_store *s, GError **error)
{
    GError *local = NULL;
    char *exists = NULL;
    if (!query_value(s, "SELECT to_regclass('ledger_schema_version')::text", &exists, &local)) {
        to_ledger_error(error, local, ENCORE_LEDGER_ERROR_STORE);
        return FALSE;
    }
    gboolean had = exists != NULL;
    g_free(exists);
    if (!had && s->opts.open_existing) {
        g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_SCHEMA,
                    "postgresql: no ledger schema in this database");
        return FALSE;
    }
    gboolean ok = FALSE;
    char *value = NULL;
    encore_ledger_error code = ENCORE_LEDGER_ERROR_STORE;
    /* One transaction, serialized against other servers migrating the same schema. */
    if (!command(s, "BEGIN", &local) ||
        !command(s, "SELECT pg_advisory_xact_lock(hashtext('encore-ledger:' || current_schema()))",
                 &local) ||
        !command(s, "CREATE TABLE IF NOT EXISTS ledger_schema_version (version int NOT NULL)",
                 &local) ||
        !query_value(s, "SELECT coalesce(max(version), 0)::text FROM ledger_schema_version", &value,
                     &local))
        goto out;
    gint64 version = value ? g_ascii_strtoll(value, NULL, 10) : 0;
    if (version > ENCORE_STORE_SCHEMA_VERSION) {
        code = ENCORE_LEDGER_ERROR_SCHEMA;
        g_set_error(&local, ENCORE_STORE_ERROR, ENCORE_STORE_ERROR_FATAL,
                    "postgresql: schema version %" G_GINT64_FORMAT " is newer than this code (%d)",
                    version, ENCORE_STORE_SCHEMA_VERSION);
        goto out;
    }
    for (gint64 v = version; v < ENCORE_STORE_SCHEMA_VERSION; v++)
        if (!command(s, migrations[v], &local))
            goto out;
    if (version < ENCORE_STORE_SCHEMA_VERSION) {
        char *sql = g_strdup_printf("DELETE FROM ledger_schema_version; "
                                    "INSERT INTO ledger_schema_version VALUES (%d)",
                                    ENCORE_STORE_SCHEMA_VERSION);
        gboolean done = command(s, sql, &local);
        g_free(sql);
        if (!done)
            goto out;
    }
    ok = command(s, "COMMIT", &local);
out:
    g_free(value);
    if (!ok) {
        PGresult *res = PQexec(s->conn, "ROLLBACK");
        PQclear(res);
        to_ledger_error(error, local, code);
    }
    return ok;
}

static void store_close(encore_store *s)
{
    if (!s)
        return;
    if (s->conn)
        PQfinish(s->conn);
    for (size_t i = 0; i < G_N_ELEMENTS(s->args); i++)
        if (s->args[i])
            g_string_free(s->args[i], TRUE);
    if (s->legs)
        g_string_free(s->legs, TRUE);
    g_free(s);
}

static encore_store *store_open(const char *target, const encore_store_options *opts,
                                GError **error)
{
    encore_store *s = g_new0(encore_store, 1);
    s->opts = *opts;
    for (size_t i = 0; i < G_N_ELEMENTS(s->args); i++)
        s->args[i] = g_string_sized_new(4096);
    s->legs = g_string_sized_new(256);
    s->conn = PQconnectdb(target);
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        char *msg = g_strchomp(g_strdup(s->conn ? PQerrorMessage(s->conn) : "out of memory"));
        g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE,
                    "postgresql: cannot connect: %s", msg);
        g_free(msg);
        goto out_fail;
    }
    GError *local = NULL;
    if (!command(s, "SET client_min_messages = warning", &local)) {
        to_ledger_error(error, local, ENCORE_LEDGER_ERROR_STORE);
        goto out_fail;
    }
    if (!migrate(s, error))
        goto out_fail;
    if (!prepare_session(s, &local)) {
        to_ledger_error(error, local, ENCORE_LEDGER_ERROR_STORE);
        goto out_fail;
    }
    return s;
out_fail:
    store_close(s);
    return NULL;
}

/* Appends one element of a PostgreSQL array literal: NULL, or a double-quoted string with '"' and
 * '\' escaped. */
static void array_text(GString *a, const char *v)
{
    g_string_append_c(a, a->len == 0 ? '{' : ',');
    if (!v) {
        g_string_append(a, "NULL");
        return;
    }
    g_string_append_c(a, '"');
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_c(a, '\\');
        g_string_append_c(a, *p);
    }
    g_string_append_c(a, '"');
}

static const char *fault_sqlstate(encore_ledger_fault f)
{
    switch (f) {
    case ENCORE_LEDGER_FAULT_BUSY:
        return "40001";
    case ENCORE_LEDGER_FAULT_DEADLOCK:
        return "40P01";
    case ENCORE_LEDGER_FAULT_FATAL:
        return "XX000";
    case ENCORE_LEDGER_FAULT_NONE:
    case ENCORE_LEDGER_FAULT_LOST_CONNECTION:
        break;
    }
    return NULL;
}

static encore_ledger_fault ask_fault(encore_store *s, encore_ledger_fault_point point, size_t n)
{
    return s->opts.fault_fn ? s->opts.fault_fn(point, n, s->opts.fault_user_data)
                            : ENCORE_LEDGER_FAULT_NONE;
}

/* Makes the server end this session, as a crash or a network failure would. */
static void kill_session(encore_store *s)
{
    PGresult *res = PQexec(s->conn, "SELECT pg_terminate_backend(pg_backend_pid())");
    PQclear(res);
    /* The next use of the connection notices; make sure libpq's status says so. */
    res = PQexec(s->conn, "SELECT 1");
    PQclear(res);
}

/* Runs the batch statement with `n` requests (0 allowed: a probe) and `fault` (or NULL). */
static PGresult *exec_batch(encore_store *s, encore_store_item **items, size_t n, int64_t now_us,
                            const char *fault)
{
    for (size_t i = 0; i < G_N_ELEMENTS(s->args); i++)
        g_string_truncate(s->args[i], 0);
    for (size_t i = 0; i < n; i++) {
        const encore_store_item *it = items[i];
        array_text(s->args[0], it->id);
        array_text(s->args[1], it->hash_hex);
        array_text(s->args[2], it->kind);
        array_text(s->args[3], it->metadata);
        g_string_truncate(s->legs, 0);
        for (size_t j = 0; j < it->n_legs; j++)
            g_string_append_printf(s->legs, "%s%s=%" G_GINT64_FORMAT "=%c=%c", j ? "," : "",
                                   it->legs[j].account, it->legs[j].amount,
                                   it->legs[j].allow_negative ? 't' : 'f',
                                   it->legs[j].statement ? 's' : 'n');
        array_text(s->args[4], s->legs->str);
        array_text(s->args[5], it->legs_json);
    }
    const char *values[8];
    for (size_t i = 0; i < G_N_ELEMENTS(s->args); i++) {
        GString *a = s->args[i];
        if (a->len == 0)
            g_string_append_c(a, '{');
        g_string_append_c(a, '}');
        values[i] = a->str;
    }
    char now[32];
    g_snprintf(now, sizeof(now), "%" G_GINT64_FORMAT, now_us);
    values[6] = now;
    values[7] = fault;
    return PQexecPrepared(s->conn, "ledger_apply", 8, values, NULL, NULL, 0);
}

static gboolean store_run_batch(encore_store *s, encore_store_item **items, size_t n,
                                int64_t now_us, GError **error)
{
    if (!ensure_connected(s, error))
        return FALSE;
    encore_ledger_fault fault = ask_fault(s, ENCORE_LEDGER_FAULT_AT_BEGIN, n);
    if (fault == ENCORE_LEDGER_FAULT_LOST_CONNECTION) {
        kill_session(s);
    } else if (fault != ENCORE_LEDGER_FAULT_NONE) {
        PGresult *res = exec_batch(s, items, 0, now_us, fault_sqlstate(fault));
        set_result_error(s, res, "injected at BEGIN", error);
        PQclear(res);
        return FALSE;
    }
    fault = ask_fault(s, ENCORE_LEDGER_FAULT_BEFORE_COMMIT, n);
    const char *raise = fault_sqlstate(fault);
    if (fault == ENCORE_LEDGER_FAULT_LOST_CONNECTION)
        raise = "08006"; /* connection_failure, raised by the server after the work */
    PGresult *res = exec_batch(s, items, n, now_us, raise);
    gboolean ok = FALSE;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        set_result_error(s, res, "ledger_apply_batch", error);
        goto out;
    }
    if ((size_t)PQntuples(res) != n || PQnfields(res) != 3) {
        g_set_error(error, ENCORE_STORE_ERROR, ENCORE_STORE_ERROR_FATAL,
                    "postgresql: ledger_apply_batch answered %d rows for %zu requests",
                    PQntuples(res), n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        encore_store_item *it = items[i];
        int st = (int)g_ascii_strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
        it->status = st == 0   ? ENCORE_LEDGER_OK
                     : st == 1 ? ENCORE_LEDGER_INSUFFICIENT_FUNDS
                               : ENCORE_LEDGER_IDEMPOTENCY_CONFLICT;
        it->transfer_id =
            PQgetisnull(res, (int)i, 1) ? 0 : g_ascii_strtoll(PQgetvalue(res, (int)i, 1), NULL, 10);
        it->replayed = PQgetvalue(res, (int)i, 2)[0] == 't';
    }
    ok = TRUE;
    fault = ask_fault(s, ENCORE_LEDGER_FAULT_AFTER_COMMIT, n);
    if (fault != ENCORE_LEDGER_FAULT_NONE) {
        /* Committed, but the answer is "lost": the ledger will replay the batch. */
        kill_session(s);
        g_set_error(error, ENCORE_STORE_ERROR, ENCORE_STORE_ERROR_TRANSIENT,
                    "postgresql: injected lost connection after COMMIT");
        ok = FALSE;
    }
out:
    PQclear(res);
    return ok;
}

static gboolean store_balance(encore_store *s, const char *account, int64_t *out, GError **error)
{
    if (!ensure_connected(s, error))
        return FALSE;
    const char *values[1] = {account};
    PGresult *res = PQexecParams(s->conn, "SELECT balance FROM ledger_accounts WHERE name = $1", 1,
                                 NULL, values, NULL, NULL, 0);
    gboolean ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        set_result_error(s, res, "balance", error);
    else
        *out = PQntuples(res) ? g_ascii_strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return ok;
}

static gboolean store_statement(encore_store *s, const char *account, int64_t before,
                                unsigned limit, GPtrArray *out, GError **error)
{
    if (!ensure_connected(s, error))
        return FALSE;
    char before_text[32], limit_text[16];
    g_snprintf(before_text, sizeof(before_text), "%" G_GINT64_FORMAT,
               before > 0 ? before : INT64_MAX);
    g_snprintf(limit_text, sizeof(limit_text), "%u", limit);
    const char *values[3] = {account, before_text, limit_text};
    PGresult *res = PQexecParams(
        s->conn,
        "SELECT p.transfer_id, p.amount, t.created_at, t.request_id, t.kind, t.metadata "
        "FROM ledger_postings p JOIN ledger_transfers t ON t.id = p.transfer_id "
        "WHERE p.account = $1 AND p.transfer_id < $2::bigint "
        "ORDER BY p.transfer_id DESC LIMIT $3::int",
        3, NULL, values, NULL, NULL, 0);
    gboolean ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok) {
        set_result_error(s, res, "statement", error);
    } else {
        for (int i = 0; i < PQntuples(res); i++) {
            encore_statement_line *line = g_new0(encore_statement_line, 1);
            line->transfer_id = g_ascii_strtoll(PQgetvalue(res, i, 0), NULL, 10);
            line->amount = g_ascii_strtoll(PQgetvalue(res, i, 1), NULL, 10);
            line->created_us = g_ascii_strtoll(PQgetvalue(res, i, 2), NULL, 10);
            line->request_id = g_strdup(PQgetvalue(res, i, 3));
            line->kind = g_strdup(PQgetvalue(res, i, 4));
            line->metadata = PQgetisnull(res, i, 5) ? NULL : g_strdup(PQgetvalue(res, i, 5));
            g_ptr_array_add(out, line);
        }
    }
    PQclear(res);
    return ok;
}

/* Records from the rows of a query returning (id, status, created_at, request_id, kind,
 * metadata, legs), appended to out (or the first one into *one). FALSE with a FATAL error when an
 * applied transfer's legs do not parse. */
static gboolean rows_to_records(PGresult *res, GPtrArray *out, encore_ledger_record **one,
                                GError **error)
{
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t id = g_ascii_strtoll(PQgetvalue(res, i, 0), NULL, 10);
        bool applied = g_ascii_strtoll(PQgetvalue(res, i, 1), NULL, 10) == ENCORE_STORE_APPLIED;
        encore_ledger_record *r = encore_store_record_new(
            applied ? id : 0, applied ? ENCORE_LEDGER_OK : ENCORE_LEDGER_INSUFFICIENT_FUNDS,
            g_ascii_strtoll(PQgetvalue(res, i, 2), NULL, 10), PQgetvalue(res, i, 3),
            PQgetvalue(res, i, 4), PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5));
        if (applied &&
            (PQgetisnull(res, i, 6) ||
             !encore_store_legs_parse(PQgetvalue(res, i, 6), (size_t)PQgetlength(res, i, 6), r) ||
             r->n_legs < 2)) {
            g_set_error(error, ENCORE_STORE_ERROR, ENCORE_STORE_ERROR_FATAL,
                        "postgresql: transfer %" G_GINT64_FORMAT " (%s) has malformed legs", id,
                        r->request_id);
            encore_ledger_record_free(r);
            return FALSE;
        }
        if (one) {
            *one = r;
            return TRUE;
        }
        g_ptr_array_add(out, r);
    }
    return TRUE;
}

#define RECORD_COLUMNS "id, status, created_at, request_id, kind, metadata, legs"

static gboolean store_lookup(encore_store *s, const char *request_id, encore_ledger_record **out,
                             GError **error)
{
    *out = NULL;
    if (!ensure_connected(s, error))
        return FALSE;
    const char *values[1] = {request_id};
    PGresult *res = PQexecParams(
        s->conn, "SELECT " RECORD_COLUMNS " FROM ledger_transfers WHERE request_id = $1", 1, NULL,
        values, NULL, NULL, 0);
    gboolean ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        set_result_error(s, res, "lookup", error);
    else
        ok = rows_to_records(res, NULL, out, error);
    PQclear(res);
    return ok;
}

/* A scan reads transfers in bounded id ranges, so that a page never costs more than the ranges
 * it reads whatever plan the server picks (it misjudges how many rows a kind filter keeps, and
 * would sort everything after after_id for each page). */
#define SCAN_RANGE_MIN 8192

static gboolean store_scan(encore_store *s, const char *kind_prefix, int64_t after_id,
                           unsigned limit, GPtrArray *out, GError **error)
{
    if (!ensure_connected(s, error))
        return FALSE;
    char *last_text = NULL;
    if (!query_value(s, "SELECT max(id)::text FROM ledger_transfers", &last_text, error))
        return FALSE;
    int64_t last = last_text ? g_ascii_strtoll(last_text, NULL, 10) : 0;
    g_free(last_text);
    int64_t range = MAX((int64_t)limit * 4, SCAN_RANGE_MIN);
    gboolean ok = TRUE;
    for (int64_t low = MAX(after_id, 0); ok && low < last && out->len < limit; low += range) {
        char low_text[32], high_text[32], limit_text[16];
        g_snprintf(low_text, sizeof(low_text), "%" G_GINT64_FORMAT, low);
        g_snprintf(high_text, sizeof(high_text), "%" G_GINT64_FORMAT,
                   low > G_MAXINT64 - range ? G_MAXINT64 : low + range);
        g_snprintf(limit_text, sizeof(limit_text), "%u", limit - out->len);
        const char *values[4] = {low_text, high_text, kind_prefix, limit_text};
        PGresult *res = PQexecParams(s->conn,
                                     "SELECT " RECORD_COLUMNS " FROM ledger_transfers "
                                     "WHERE id > $1::bigint AND id <= $2::bigint AND status = 0 "
                                     "AND starts_with(kind, $3::text) ORDER BY id LIMIT $4::int",
                                     4, NULL, values, NULL, NULL, 0);
        ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
        if (!ok)
            set_result_error(s, res, "scan", error);
        else
            ok = rows_to_records(res, out, NULL, error);
        PQclear(res);
        if (low > G_MAXINT64 - range)
            break;
    }
    return ok;
}

typedef void (*row_fn)(PGresult *res, int row, GString *report, unsigned *count);

static gboolean each_row(encore_store *s, const char *sql, row_fn fn, GString *report,
                         unsigned *count, GError **error)
{
    PGresult *res = PQexec(s->conn, sql);
    gboolean ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        set_result_error(s, res, "audit", error);
    else
        for (int i = 0; i < PQntuples(res); i++)
            fn(res, i, report, count);
    PQclear(res);
    return ok;
}

static void row_totals(PGresult *res, int i, GString *r, unsigned *c)
{
    g_string_append_printf(r,
                           "ledger audit (postgresql): %s transfers applied, %s refused, %s legs, "
                           "%s statement postings, %s accounts, sum of balances %s\n",
                           PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                           PQgetvalue(res, i, 3), PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
    if (strcmp(PQgetvalue(res, i, 5), "0") != 0)
        encore_store_audit_violation(r, c, "the balances sum to %s, not 0", PQgetvalue(res, i, 5));
}

static void row_bad_legs(PGresult *res, int i, GString *r, unsigned *c)
{
    if (PQgetisnull(res, i, 2))
        encore_store_audit_violation(r, c, "transfer %s (%s) has malformed legs",
                                     PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
    else
        encore_store_audit_violation(r, c, "transfer %s (%s) has legs summing to %s",
                                     PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                                     PQgetvalue(res, i, 2));
}

static void row_refused_with_legs(PGresult *res, int i, GString *r, unsigned *c)
{
    encore_store_audit_violation(r, c, "refused request %s (%s) has legs", PQgetvalue(res, i, 0),
                                 PQgetvalue(res, i, 1));
}

static void row_stray_posting(PGresult *res, int i, GString *r, unsigned *c)
{
    encore_store_audit_violation(
        r, c, "posting of transfer %s on %s (%s) matches no leg of an applied transfer",
        PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
}

static void row_missing_posting(PGresult *res, int i, GString *r, unsigned *c)
{
    encore_store_audit_violation(r, c, "leg of transfer %s on %s has no statement posting",
                                 PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
}

static void row_orphan(PGresult *res, int i, GString *r, unsigned *c)
{
    encore_store_audit_violation(r, c, "leg of transfer %s names %s, which has no account",
                                 PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
}

static void row_balance(PGresult *res, int i, GString *r, unsigned *c)
{
    encore_store_audit_violation(r, c, "account %s has balance %s but its legs sum to %s",
                                 PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                                 PQgetvalue(res, i, 2));
}

static void row_account(PGresult *res, int i, GString *r, unsigned *c)
{
    const char *name = PQgetvalue(res, i, 0);
    const char *balance = PQgetvalue(res, i, 1);
    bool allow = PQgetvalue(res, i, 2)[0] == 't';
    if (encore_ledger_account_kind(name) == ENCORE_ACCOUNT_INVALID)
        encore_store_audit_violation(r, c, "account %s has an invalid name", name);
    if (allow != encore_ledger_account_may_go_negative(name))
        encore_store_audit_violation(r, c, "account %s is %s allowed to go negative", name,
                                     allow ? "wrongly" : "not");
    if (balance[0] == '-' && !encore_ledger_account_may_go_negative(name))
        encore_store_audit_violation(r, c, "account %s is negative: %s", name, balance);
}

/* The legs of transfer t as jsonb when their text has the canonical shape (["account",amount]
 * pairs, amounts of at most 16 digits), else NULL (no elements): never a cast error. (No bounded
 * repetition around the pairs: PostgreSQL's regex engine expands it into a huge automaton; the
 * number of legs is checked apart.) */
#define LEG_PAIR "\\[\"[A-Za-z0-9._@:-]+\",-?[1-9][0-9]{0,15}\\]"
#define LEGS_JSONB                                                                                 \
    "CASE WHEN t.legs ~ '^\\[" LEG_PAIR "(," LEG_PAIR ")*\\]$' THEN t.legs::jsonb END"
/* The legs of applied transfers as rows (t.id, e). */
#define LEGS_FROM                                                                                  \
    "FROM ledger_transfers t CROSS JOIN LATERAL jsonb_array_elements(" LEGS_JSONB ") e "           \
    "WHERE t.status = 0 "

static gboolean store_audit(encore_store *s, GString *report, gboolean *ok, GError **error)
{
    if (!ensure_connected(s, error))
        return FALSE;
    unsigned violations = 0;
    /* One snapshot for every query. */
    if (!command(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", error))
        return FALSE;
    gboolean done =
        each_row(s,
                 "SELECT (SELECT count(*) FROM ledger_transfers WHERE status = 0),"
                 " (SELECT count(*) FROM ledger_transfers WHERE status <> 0),"
                 " (SELECT count(*) " LEGS_FROM "),"
                 " (SELECT count(*) FROM ledger_postings),"
                 " (SELECT count(*) FROM ledger_accounts),"
                 " (SELECT coalesce(sum(balance), 0) FROM ledger_accounts)",
                 row_totals, report, &violations, error) &&
        each_row(s,
                 "SELECT t.id, t.request_id, "
                 "CASE WHEN v.n BETWEEN 2 AND 16 AND v.d = v.n THEN v.total END "
                 "FROM ledger_transfers t CROSS JOIN LATERAL (SELECT count(*) AS n, "
                 "count(DISTINCT e->>0) AS d, sum((e->>1)::bigint) AS total "
                 "FROM jsonb_array_elements(" LEGS_JSONB ") e) v "
                 "WHERE t.status = 0 AND (v.n < 2 OR v.n > 16 OR v.d <> v.n OR v.total <> 0)",
                 row_bad_legs, report, &violations, error) &&
        each_row(s,
                 "SELECT id, request_id FROM ledger_transfers "
                 "WHERE status <> 0 AND legs IS NOT NULL",
                 row_refused_with_legs, report, &violations, error) &&
        each_row(s,
                 "SELECT p.transfer_id, p.account, p.amount FROM ledger_postings p "
                 "LEFT JOIN ledger_transfers t ON t.id = p.transfer_id "
                 "WHERE t.id IS NULL OR t.status <> 0 OR NOT EXISTS (SELECT 1 FROM "
                 "jsonb_array_elements(" LEGS_JSONB ") e "
                 "WHERE e->>0 = p.account AND (e->>1)::bigint = p.amount)",
                 row_stray_posting, report, &violations, error) &&
        each_row(s,
                 "SELECT t.id, e->>0 " LEGS_FROM "AND (e->>0) COLLATE \"C\" < 'platform:' "
                 "AND NOT EXISTS (SELECT 1 FROM ledger_postings p "
                 "WHERE p.account = e->>0 AND p.transfer_id = t.id)",
                 row_missing_posting, report, &violations, error) &&
        each_row(s,
                 "SELECT t.id, e->>0 " LEGS_FROM
                 "AND NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.name = e->>0)",
                 row_orphan, report, &violations, error) &&
        each_row(s,
                 "SELECT a.name, a.balance, coalesce(l.total, 0) FROM ledger_accounts a "
                 "LEFT JOIN (SELECT e->>0 AS account, sum((e->>1)::bigint) AS total " LEGS_FROM
                 "GROUP BY 1) l ON l.account = a.name "
                 "WHERE a.balance IS DISTINCT FROM coalesce(l.total, 0)",
                 row_balance, report, &violations, error) &&
        each_row(s, "SELECT name, balance, allow_negative FROM ledger_accounts", row_account,
                 report, &violations, error);
    PGresult *res = PQexec(s->conn, "ROLLBACK");
    PQclear(res);
    if (!done)
        return FALSE;
    g_string_append_printf(report, "ledger audit: %s (%u violations)\n",
                           violations ? "FAILED" : "ok", violations);
    *ok = violations == 0;
    return TRUE;
}

const struct encore_store_ops encore_store_pg_ops = {
    .name = "postgresql",
    .open = store_open,
    .close = store_close,
    .run_batch = store_run_batch,
    .balance = store_balance,
    .statement = store_statement,
    .lookup = store_lookup,
    .scan = store_scan,
    .audit = store_audit,
};
