/* The users store on PostgreSQL (libpq): every call one statement (autocommit, READ COMMITTED;
 * uniqueness and "at most one active contract" are kept by unique keys and guarded upserts, so
 * several servers may share the database), schema created and migrated on open under an
 * advisory lock. Runs on the users store's database thread only; reconnects after a lost
 * connection; never logs. */
#define G_LOG_DOMAIN "encore-users"
#include "config.h"

#include <libpq-fe.h>
#include <string.h>

#include "server/accounts/users_store.h"

/* Schema, one entry per version (entry i migrates version i to i + 1), in the connection's
 * current schema. Identity ids are never reused. name_key is lower(name) under the "C"
 * collation, which maps ASCII only, whatever the database's locale. */
static const char *const migrations[ENCORE_USERS_SCHEMA_VERSION] = {
    "CREATE TABLE users ("
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY CHECK (id >= 1),"
    "  name text NOT NULL CHECK (length(name) BETWEEN 3 AND 32),"
    "  name_key text NOT NULL UNIQUE,"
    "  password text NOT NULL,"
    "  role smallint NOT NULL CHECK (role BETWEEN 0 AND 4),"
    "  birth_year int NOT NULL,"
    "  created_at bigint NOT NULL,"
    "  disabled boolean NOT NULL DEFAULT false,"
    "  CHECK (name_key = lower(name COLLATE \"C\"))"
    ");"
    "CREATE TABLE user_contracts ("
    "  singer_id bigint PRIMARY KEY REFERENCES users(id),"
    "  agent_id bigint NOT NULL REFERENCES users(id),"
    "  singer_bp int NOT NULL CHECK (singer_bp BETWEEN 0 AND 10000),"
    "  agent_bp int NOT NULL CHECK (agent_bp BETWEEN 0 AND 10000),"
    "  status text NOT NULL CHECK (status IN ('offered', 'active', 'ended')),"
    "  offered_at bigint NOT NULL,"
    "  accepted_at bigint,"
    "  ended_at bigint,"
    "  CHECK (singer_bp + agent_bp <= 10000),"
    "  CHECK (singer_id <> agent_id)"
    ");"
    "CREATE INDEX user_contracts_agent ON user_contracts(agent_id);"
    "CREATE TABLE user_channels ("
    "  room text PRIMARY KEY,"
    "  agent_id bigint NOT NULL REFERENCES users(id),"
    "  claimed_at bigint NOT NULL"
    ");"
    "CREATE INDEX user_channels_agent ON user_channels(agent_id);",
};

#define USER_COLUMNS "id, name, role, birth_year, created_at, disabled, password"
#define CONTRACT_COLUMNS                                                                           \
    "singer_id, agent_id, singer_bp, agent_bp, status, offered_at, accepted_at, ended_at"

struct encore_users_store {
    PGconn *conn;
    encore_users_store_options opts;
};

static bool sqlstate_transient(const char *state)
{
    if (!state)
        return true; /* no answer from the server: the connection failed */
    static const char *const transient[] = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03"};
    if (strncmp(state, "08", 2) == 0)
        return true;
    for (size_t i = 0; i < G_N_ELEMENTS(transient); i++)
        if (strcmp(state, transient[i]) == 0)
            return true;
    return false;
}

static users_store_result fail(encore_users_store *s, PGresult *res, const char *what,
                               GError **error)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    bool transient = PQstatus(s->conn) != CONNECTION_OK || sqlstate_transient(state);
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg || !*msg)
        msg = PQerrorMessage(s->conn);
    char *clean = g_strchomp(g_strdup(msg));
    g_set_error(error, ENCORE_USERS_STORE_ERROR,
                transient ? ENCORE_USERS_STORE_TRANSIENT : ENCORE_USERS_STORE_FATAL,
                "postgresql: %s: [%s] %s", what, state ? state : "no sqlstate", clean);
    g_free(clean);
    return USERS_STORE_ERROR;
}

/* Runs sql with text parameters; *out gets the result of a successful command or query. */
static users_store_result run(encore_users_store *s, const char *sql, int n, const char *const *v,
                              PGresult **out, GError **error)
{
    *out = NULL;
    if (PQstatus(s->conn) != CONNECTION_OK) {
        PQreset(s->conn);
        if (PQstatus(s->conn) != CONNECTION_OK)
            return fail(s, NULL, "reconnect", error);
        PGresult *set = PQexec(s->conn, "SET client_min_messages = warning; "
                                        "SET synchronous_commit = on");
        PQclear(set);
    }
    /* Without parameters, PQexec: it also runs several commands (the migrations). */
    PGresult *res =
        n ? PQexecParams(s->conn, sql, n, NULL, v, NULL, NULL, 0) : PQexec(s->conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        users_store_result r = fail(s, res, sql, error);
        PQclear(res);
        return r;
    }
    *out = res;
    return USERS_STORE_OK;
}

static gboolean command(encore_users_store *s, const char *sql, GError **error)
{
    PGresult *res = NULL;
    GError *local = NULL;
    if (run(s, sql, 0, NULL, &res, &local) != USERS_STORE_OK) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_STORE, "%s", local->message);
        g_error_free(local);
        return FALSE;
    }
    PQclear(res);
    return TRUE;
}

/* A one-value query; *out gets a copy of the value (NULL for SQL NULL or no row). */
static gboolean query_value(encore_users_store *s, const char *sql, char **out, GError **error)
{
    PGresult *res = NULL;
    *out = NULL;
    GError *local = NULL;
    if (run(s, sql, 0, NULL, &res, &local) != USERS_STORE_OK) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_STORE, "%s", local->message);
        g_error_free(local);
        return FALSE;
    }
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        *out = g_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return TRUE;
}

static gboolean migrate(encore_users_store *s, GError **error)
{
    char *exists = NULL;
    if (!query_value(s, "SELECT to_regclass('users_schema_version')::text", &exists, error))
        return FALSE;
    gboolean had = exists != NULL;
    g_free(exists);
    if (!had && s->opts.open_existing) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_SCHEMA,
                    "postgresql: no users schema in this database");
        return FALSE;
    }
    gboolean ok = FALSE;
    char *value = NULL;
    /* One transaction, serialized against other servers migrating the same schema. */
    if (!command(s, "BEGIN", error) ||
        !command(s, "SELECT pg_advisory_xact_lock(hashtext('encore-users:' || current_schema()))",
                 error) ||
        !command(s, "CREATE TABLE IF NOT EXISTS users_schema_version (version int NOT NULL)",
                 error) ||
        !query_value(s, "SELECT coalesce(max(version), 0)::text FROM users_schema_version", &value,
                     error))
        goto out;
    gint64 version = value ? g_ascii_strtoll(value, NULL, 10) : 0;
    if (version > ENCORE_USERS_SCHEMA_VERSION) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_SCHEMA,
                    "postgresql: users schema version %" G_GINT64_FORMAT
                    " is newer than this code (%d)",
                    version, ENCORE_USERS_SCHEMA_VERSION);
        goto out;
    }
    for (gint64 v = version; v < ENCORE_USERS_SCHEMA_VERSION; v++)
        if (!command(s, migrations[v], error))
            goto out;
    if (version < ENCORE_USERS_SCHEMA_VERSION) {
        char *sql = g_strdup_printf("DELETE FROM users_schema_version; "
                                    "INSERT INTO users_schema_version VALUES (%d)",
                                    ENCORE_USERS_SCHEMA_VERSION);
        gboolean done = command(s, sql, error);
        g_free(sql);
        if (!done)
            goto out;
    }
    ok = command(s, "COMMIT", error);
out:
    g_free(value);
    if (!ok) {
        PGresult *res = PQexec(s->conn, "ROLLBACK");
        PQclear(res);
    }
    return ok;
}

static void store_close(encore_users_store *s)
{
    if (!s)
        return;
    if (s->conn)
        PQfinish(s->conn);
    g_free(s);
}

static encore_users_store *store_open(const char *target, const encore_users_store_options *opts,
                                      GError **error)
{
    encore_users_store *s = g_new0(encore_users_store, 1);
    s->opts = *opts;
    s->conn = PQconnectdb(target);
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        char *msg = g_strchomp(g_strdup(s->conn ? PQerrorMessage(s->conn) : "out of memory"));
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_STORE,
                    "postgresql: cannot connect: %s", msg);
        g_free(msg);
        goto out_fail;
    }
    /* Every commit waits for its WAL flush, whatever the server's default. */
    if (!command(s, "SET client_min_messages = warning; SET synchronous_commit = on", error) ||
        !migrate(s, error))
        goto out_fail;
    return s;
out_fail:
    store_close(s);
    return NULL;
}

static int64_t get_int(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : g_ascii_strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void read_user(PGresult *res, int row, encore_user *u, char **password)
{
    memset(u, 0, sizeof(*u));
    u->id = get_int(res, row, 0);
    g_strlcpy(u->name, PQgetvalue(res, row, 1), sizeof(u->name));
    u->role = (encore_role)get_int(res, row, 2);
    u->birth_year = (int)get_int(res, row, 3);
    u->created_at = get_int(res, row, 4);
    u->disabled = PQgetvalue(res, row, 5)[0] == 't';
    if (password)
        *password = g_strdup(PQgetvalue(res, row, 6));
}

static void read_contract(PGresult *res, int row, encore_contract *c)
{
    memset(c, 0, sizeof(*c));
    c->singer_id = get_int(res, row, 0);
    c->agent_id = get_int(res, row, 1);
    c->singer_bp = (int)get_int(res, row, 2);
    c->agent_bp = (int)get_int(res, row, 3);
    c->status = encore_users_store_status_parse(PQgetvalue(res, row, 4));
    c->offered_at = get_int(res, row, 5);
    c->accepted_at = get_int(res, row, 6);
    c->ended_at = get_int(res, row, 7);
}

static void read_channel(PGresult *res, int row, encore_channel *ch)
{
    memset(ch, 0, sizeof(*ch));
    g_strlcpy(ch->room, PQgetvalue(res, row, 0), sizeof(ch->room));
    ch->agent_id = get_int(res, row, 1);
    ch->claimed_at = get_int(res, row, 2);
}

typedef void (*row_reader)(PGresult *res, int row, void *out);

static void user_reader(PGresult *res, int row, void *out)
{
    read_user(res, row, out, NULL);
}

static void contract_reader(PGresult *res, int row, void *out)
{
    read_contract(res, row, out);
}

static void channel_reader(PGresult *res, int row, void *out)
{
    read_channel(res, row, out);
}

/* Runs a statement returning at most one row, read with read() (may be NULL). OK (a row),
 * NOT_FOUND (none) or ERROR. */
static users_store_result one_row(encore_users_store *s, const char *sql, int n,
                                  const char *const *v, row_reader read, void *out, GError **error)
{
    PGresult *res = NULL;
    users_store_result r = run(s, sql, n, v, &res, error);
    if (r != USERS_STORE_OK)
        return r;
    if (PQntuples(res) == 0)
        r = USERS_STORE_NOT_FOUND;
    else if (read)
        read(res, 0, out);
    PQclear(res);
    return r;
}

/* Runs a query, appending every row with read() to out. */
static users_store_result all_rows(encore_users_store *s, const char *sql, int n,
                                   const char *const *v, row_reader read, GArray *out,
                                   GError **error)
{
    PGresult *res = NULL;
    users_store_result r = run(s, sql, n, v, &res, error);
    if (r != USERS_STORE_OK)
        return r;
    guint base = out->len;
    g_array_set_size(out, base + (guint)PQntuples(res));
    for (int i = 0; i < PQntuples(res); i++)
        read(res, i, out->data + (size_t)(base + (guint)i) * g_array_get_element_size(out));
    PQclear(res);
    return r;
}

#define I64(buf, v) (g_snprintf((buf), sizeof(buf), "%" G_GINT64_FORMAT, (gint64)(v)), (buf))

static users_store_result store_insert_user(encore_users_store *s, const encore_user *u,
                                            const char *name_key, const char *password,
                                            encore_user *out, GError **error)
{
    char role[24], year[24], created[24];
    const char *v[] = {u->name,
                       name_key,
                       password,
                       I64(role, u->role),
                       I64(year, u->birth_year),
                       I64(created, u->created_at)};
    PGresult *res = NULL;
    users_store_result r =
        run(s,
            "INSERT INTO users (name, name_key, password, role, birth_year, created_at) "
            "VALUES ($1, $2, $3, $4::smallint, $5::int, $6::bigint) "
            "ON CONFLICT (name_key) DO NOTHING RETURNING id",
            6, v, &res, error);
    if (r != USERS_STORE_OK)
        return r;
    if (PQntuples(res) == 0) {
        r = USERS_STORE_CONFLICT;
    } else {
        *out = *u;
        out->id = get_int(res, 0, 0);
        out->disabled = false;
    }
    PQclear(res);
    return r;
}

typedef struct {
    encore_user *user;
    char **password;
} user_out;

static void user_pw_reader(PGresult *res, int row, void *out)
{
    user_out *o = out;
    read_user(res, row, o->user, o->password);
}

static users_store_result store_find_user(encore_users_store *s, int64_t id, const char *name_key,
                                          encore_user *out, char **password, GError **error)
{
    char idbuf[24];
    user_out o = {out, password};
    if (id > 0) {
        const char *v[] = {I64(idbuf, id)};
        return one_row(s, "SELECT " USER_COLUMNS " FROM users WHERE id = $1::bigint", 1, v,
                       user_pw_reader, &o, error);
    }
    const char *v[] = {name_key};
    return one_row(s, "SELECT " USER_COLUMNS " FROM users WHERE name_key = $1", 1, v,
                   user_pw_reader, &o, error);
}

static users_store_result store_set_password(encore_users_store *s, int64_t id,
                                             const char *old_password, const char *new_password,
                                             GError **error)
{
    char idbuf[24];
    const char *v[] = {I64(idbuf, id), old_password, new_password};
    return one_row(s,
                   "UPDATE users SET password = $3 WHERE id = $1::bigint AND password = $2 "
                   "RETURNING id",
                   3, v, NULL, NULL, error);
}

static users_store_result store_update_user(encore_users_store *s, const char *name_key, int role,
                                            int disabled, encore_user *out, GError **error)
{
    char rolebuf[24];
    const char *v[] = {name_key, I64(rolebuf, role),
                       disabled < 0 ? NULL : (disabled ? "true" : "false")};
    return one_row(s,
                   "UPDATE users SET role = CASE WHEN $2::int >= 0 THEN $2::smallint ELSE role "
                   "END, disabled = coalesce($3::boolean, disabled) "
                   "WHERE name_key = $1 RETURNING " USER_COLUMNS,
                   3, v, user_reader, out, error);
}

static users_store_result store_list_users(encore_users_store *s, int64_t after_id, unsigned limit,
                                           GArray *out, GError **error)
{
    char after[24], lim[24];
    const char *v[] = {I64(after, after_id), I64(lim, limit)};
    return all_rows(s,
                    "SELECT " USER_COLUMNS " FROM users WHERE id > $1::bigint ORDER BY id "
                    "LIMIT $2::bigint",
                    2, v, user_reader, out, error);
}

static users_store_result store_offer(encore_users_store *s, const encore_contract *c,
                                      encore_contract *out, GError **error)
{
    char singer[24], agent[24], sbp[24], abp[24], at[24];
    const char *v[] = {I64(singer, c->singer_id), I64(agent, c->agent_id), I64(sbp, c->singer_bp),
                       I64(abp, c->agent_bp), I64(at, c->offered_at)};
    users_store_result r = one_row(
        s,
        "INSERT INTO user_contracts AS c (singer_id, agent_id, singer_bp, agent_bp, status, "
        "offered_at, accepted_at, ended_at) "
        "VALUES ($1::bigint, $2::bigint, $3::int, $4::int, 'offered', $5::bigint, NULL, NULL) "
        "ON CONFLICT (singer_id) DO UPDATE SET agent_id = EXCLUDED.agent_id, "
        "singer_bp = EXCLUDED.singer_bp, agent_bp = EXCLUDED.agent_bp, status = 'offered', "
        "offered_at = EXCLUDED.offered_at, accepted_at = NULL, ended_at = NULL "
        "WHERE c.status <> 'active' RETURNING " CONTRACT_COLUMNS,
        5, v, contract_reader, out, error);
    return r == USERS_STORE_NOT_FOUND ? USERS_STORE_CONFLICT : r;
}

static users_store_result store_accept(encore_users_store *s, int64_t singer_id, int64_t agent_id,
                                       int64_t now, encore_contract *out, GError **error)
{
    char singer[24], agent[24], at[24];
    const char *v[] = {I64(singer, singer_id), I64(agent, agent_id), I64(at, now)};
    return one_row(s,
                   "UPDATE user_contracts SET status = 'active', accepted_at = $3::bigint "
                   "WHERE singer_id = $1::bigint AND agent_id = $2::bigint AND status = 'offered' "
                   "RETURNING " CONTRACT_COLUMNS,
                   3, v, contract_reader, out, error);
}

static users_store_result store_end(encore_users_store *s, int64_t singer_id, int64_t agent_id,
                                    int64_t now, encore_contract *out, GError **error)
{
    char singer[24], agent[24], at[24];
    const char *v[] = {I64(singer, singer_id), I64(agent, agent_id), I64(at, now)};
    return one_row(s,
                   "UPDATE user_contracts SET status = 'ended', ended_at = $3::bigint "
                   "WHERE singer_id = $1::bigint AND ($2::bigint = 0 OR agent_id = $2::bigint) "
                   "AND status IN ('offered', 'active') RETURNING " CONTRACT_COLUMNS,
                   3, v, contract_reader, out, error);
}

static users_store_result store_get_contract(encore_users_store *s, int64_t singer_id,
                                             encore_contract *out, GError **error)
{
    char singer[24];
    const char *v[] = {I64(singer, singer_id)};
    return one_row(s,
                   "SELECT " CONTRACT_COLUMNS " FROM user_contracts WHERE singer_id = $1::bigint",
                   1, v, contract_reader, out, error);
}

static users_store_result store_list_contracts(encore_users_store *s, int64_t user_id, GArray *out,
                                               GError **error)
{
    if (user_id == 0)
        return all_rows(s,
                        "SELECT " CONTRACT_COLUMNS " FROM user_contracts "
                        "WHERE status = 'active' ORDER BY singer_id",
                        0, NULL, contract_reader, out, error);
    char user[24];
    const char *v[] = {I64(user, user_id)};
    return all_rows(s,
                    "SELECT " CONTRACT_COLUMNS " FROM user_contracts "
                    "WHERE (singer_id = $1::bigint OR agent_id = $1::bigint) "
                    "AND status <> 'ended' ORDER BY singer_id",
                    1, v, contract_reader, out, error);
}

static users_store_result store_claim_channel(encore_users_store *s, const char *room,
                                              int64_t agent_id, int64_t now, encore_channel *out,
                                              GError **error)
{
    char agent[24], at[24];
    const char *v[] = {room, I64(agent, agent_id), I64(at, now)};
    /* The insert, or the row that made it conflict, in one statement: a claimer that loses the
     * race waits for the winner's commit and then reads its row. */
    users_store_result r =
        one_row(s,
                "WITH ins AS (INSERT INTO user_channels (room, agent_id, claimed_at) "
                "VALUES ($1, $2::bigint, $3::bigint) ON CONFLICT (room) DO NOTHING "
                "RETURNING room, agent_id, claimed_at) "
                "SELECT room, agent_id, claimed_at FROM ins UNION ALL "
                "SELECT room, agent_id, claimed_at FROM user_channels WHERE room = $1 "
                "AND NOT EXISTS (SELECT 1 FROM ins)",
                3, v, channel_reader, out, error);
    if (r == USERS_STORE_NOT_FOUND) {
        /* The statement's snapshot predates a concurrent winner's commit: read it now. */
        const char *v1[] = {room};
        r = one_row(s, "SELECT room, agent_id, claimed_at FROM user_channels WHERE room = $1", 1,
                    v1, channel_reader, out, error);
        if (r == USERS_STORE_NOT_FOUND) {
            g_set_error(error, ENCORE_USERS_STORE_ERROR, ENCORE_USERS_STORE_TRANSIENT,
                        "postgresql: channel %s not visible after its claim", room);
            r = USERS_STORE_ERROR;
        }
    }
    return r;
}

static users_store_result store_list_channels(encore_users_store *s, GArray *out, GError **error)
{
    return all_rows(s,
                    "SELECT room, agent_id, claimed_at FROM user_channels "
                    "ORDER BY room COLLATE \"C\"",
                    0, NULL, channel_reader, out, error);
}

const struct encore_users_store_ops encore_users_pg_ops = {
    .name = "postgresql",
    .open = store_open,
    .close = store_close,
    .insert_user = store_insert_user,
    .find_user = store_find_user,
    .set_password = store_set_password,
    .update_user = store_update_user,
    .list_users = store_list_users,
    .offer = store_offer,
    .accept = store_accept,
    .end = store_end,
    .get_contract = store_get_contract,
    .list_contracts = store_list_contracts,
    .claim_channel = store_claim_channel,
    .list_channels = store_list_channels,
};
