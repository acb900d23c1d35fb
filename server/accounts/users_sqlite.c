/* The users store on SQLite: one connection in WAL mode with synchronous=FULL and foreign keys
 * enforced, every call one prepared statement (autocommit, so each is its own durable
 * transaction), schema created and migrated on open. Runs on the users store's database thread
 * only (opened by the thread that opens the store, then handed over); never logs. */
#define G_LOG_DOMAIN "encore-users"
#include "config.h"

#include <sqlite3.h>
#include <string.h>

#include "server/accounts/users_store.h"

/* Schema, one entry per version: entry i migrates version i to i + 1. Ids are AUTOINCREMENT so
 * that an id is never reused (it names the user's ledger accounts). name_key is the lowercase
 * name that makes names unique regardless of case. */
static const char *const migrations[ENCORE_USERS_SCHEMA_VERSION] = {
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT CHECK (id >= 1),"
    "  name TEXT NOT NULL CHECK (length(name) BETWEEN 3 AND 32),"
    "  name_key TEXT NOT NULL UNIQUE,"
    "  password TEXT NOT NULL,"
    "  role INTEGER NOT NULL CHECK (role BETWEEN 0 AND 4),"
    "  birth_year INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),"
    "  CHECK (name_key = lower(name))"
    ");"
    "CREATE TABLE user_contracts ("
    "  singer_id INTEGER PRIMARY KEY REFERENCES users(id),"
    "  agent_id INTEGER NOT NULL REFERENCES users(id),"
    "  singer_bp INTEGER NOT NULL CHECK (singer_bp BETWEEN 0 AND 10000),"
    "  agent_bp INTEGER NOT NULL CHECK (agent_bp BETWEEN 0 AND 10000),"
    "  status TEXT NOT NULL CHECK (status IN ('offered', 'active', 'ended')),"
    "  offered_at INTEGER NOT NULL,"
    "  accepted_at INTEGER,"
    "  ended_at INTEGER,"
    "  CHECK (singer_bp + agent_bp <= 10000),"
    "  CHECK (singer_id <> agent_id)"
    ");"
    "CREATE INDEX user_contracts_agent ON user_contracts(agent_id);"
    "CREATE TABLE user_channels ("
    "  room TEXT PRIMARY KEY,"
    "  agent_id INTEGER NOT NULL REFERENCES users(id),"
    "  claimed_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX user_channels_agent ON user_channels(agent_id);",
};

#define USER_COLUMNS "id, name, role, birth_year, created_at, disabled, password"
#define CONTRACT_COLUMNS                                                                           \
    "singer_id, agent_id, singer_bp, agent_bp, status, offered_at, accepted_at, ended_at"

struct encore_users_store {
    sqlite3 *db;
    encore_users_store_options opts;
    sqlite3_stmt *insert_user, *user_by_id, *user_by_key, *set_password, *update_user;
    sqlite3_stmt *list_users, *offer, *accept, *end, *get_contract, *active_contracts;
    sqlite3_stmt *contracts_of, *claim, *channel, *list_channels;
};

static bool is_transient(int rc)
{
    int primary = rc & 0xff;
    return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

static users_store_result fail(encore_users_store *s, int rc, sqlite3_stmt *st, GError **error)
{
    g_set_error(error, ENCORE_USERS_STORE_ERROR,
                is_transient(rc) ? ENCORE_USERS_STORE_TRANSIENT : ENCORE_USERS_STORE_FATAL,
                "sqlite: %s: %s (%d)", st ? sqlite3_sql(st) : "", sqlite3_errmsg(s->db), rc);
    return USERS_STORE_ERROR;
}

static gboolean exec_sql(encore_users_store *s, const char *sql, GError **error)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        return TRUE;
    g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_STORE, "sqlite: %s: %s", sql,
                msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return FALSE;
}

/* Reads one integer from a one-row query; FALSE (error unset) when there is no row. */
static gboolean query_int(encore_users_store *s, const char *sql, int64_t *out, GError **error)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_STORE, "sqlite: %s: %s", sql,
                    sqlite3_errmsg(s->db));
        return FALSE;
    }
    gboolean found = FALSE;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        found = TRUE;
    } else if (rc != SQLITE_DONE) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_STORE, "sqlite: %s: %s", sql,
                    sqlite3_errmsg(s->db));
    }
    sqlite3_finalize(st);
    return found;
}

static gboolean migrate(encore_users_store *s, GError **error)
{
    GError *local = NULL;
    int64_t exists = 0;
    query_int(s,
              "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
              "name = 'users_schema_version'",
              &exists, &local);
    if (local) {
        g_propagate_error(error, local);
        return FALSE;
    }
    if (!exists && s->opts.open_existing) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_SCHEMA,
                    "sqlite: no users schema in this database");
        return FALSE;
    }
    if (!exec_sql(s, "BEGIN IMMEDIATE", error))
        return FALSE;
    gboolean ok = FALSE;
    int64_t version = 0;
    if (!exec_sql(s, "CREATE TABLE IF NOT EXISTS users_schema_version (version INTEGER NOT NULL)",
                  error))
        goto out;
    query_int(s, "SELECT coalesce(max(version), 0) FROM users_schema_version", &version, &local);
    if (local) {
        g_propagate_error(error, local);
        goto out;
    }
    if (version > ENCORE_USERS_SCHEMA_VERSION) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_SCHEMA,
                    "sqlite: users schema version %" G_GINT64_FORMAT
                    " is newer than this code (%d)",
                    version, ENCORE_USERS_SCHEMA_VERSION);
        goto out;
    }
    for (int64_t v = version; v < ENCORE_USERS_SCHEMA_VERSION; v++)
        if (!exec_sql(s, migrations[v], error))
            goto out;
    if (version < ENCORE_USERS_SCHEMA_VERSION) {
        char *sql = g_strdup_printf("DELETE FROM users_schema_version; "
                                    "INSERT INTO users_schema_version VALUES (%d)",
                                    ENCORE_USERS_SCHEMA_VERSION);
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

static void store_close(encore_users_store *s)
{
    if (!s)
        return;
    sqlite3_stmt *stmts[] = {
        s->insert_user,      s->user_by_id,   s->user_by_key, s->set_password, s->update_user,
        s->list_users,       s->offer,        s->accept,      s->end,          s->get_contract,
        s->active_contracts, s->contracts_of, s->claim,       s->channel,      s->list_channels};
    for (size_t i = 0; i < G_N_ELEMENTS(stmts); i++)
        sqlite3_finalize(stmts[i]);
    sqlite3_close_v2(s->db);
    g_free(s);
}

static encore_users_store *store_open(const char *target, const encore_users_store_options *opts,
                                      GError **error)
{
    encore_users_store *s = g_new0(encore_users_store, 1);
    s->opts = *opts;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (!opts->open_existing)
        flags |= SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(target, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, ENCORE_USERS_ERROR,
                    opts->open_existing && rc == SQLITE_CANTOPEN ? ENCORE_USERS_ERROR_SCHEMA
                                                                 : ENCORE_USERS_ERROR_STORE,
                    "sqlite: cannot open %s: %s", target,
                    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto out_fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, (int)opts->busy_timeout_ms);
    /* WAL (readers never wait for the writer; checked, since an in-memory or read-only database
     * silently refuses it) and an fsync on every commit: an answered sign-up is on disk. */
    {
        sqlite3_stmt *st = NULL;
        gboolean wal = FALSE;
        if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            wal = g_ascii_strcasecmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
        sqlite3_finalize(st);
        if (!wal) {
            g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_STORE,
                        "sqlite: %s: cannot switch to WAL mode: %s", target, sqlite3_errmsg(s->db));
            goto out_fail;
        }
    }
    if (!exec_sql(s, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", error))
        goto out_fail;
    if (!migrate(s, error))
        goto out_fail;
    struct {
        sqlite3_stmt **stmt;
        const char *sql;
    } stmts[] = {
        {&s->insert_user,
         "INSERT INTO users (name, name_key, password, role, birth_year, created_at) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name_key) DO NOTHING RETURNING id"},
        {&s->user_by_id, "SELECT " USER_COLUMNS " FROM users WHERE id = ?1"},
        {&s->user_by_key, "SELECT " USER_COLUMNS " FROM users WHERE name_key = ?1"},
        {&s->set_password, "UPDATE users SET password = ?3 WHERE id = ?1 AND password = ?2"},
        {&s->update_user, "UPDATE users SET role = CASE WHEN ?2 >= 0 THEN ?2 ELSE role END, "
                          "disabled = CASE WHEN ?3 >= 0 THEN ?3 ELSE disabled END "
                          "WHERE name_key = ?1 RETURNING " USER_COLUMNS},
        {&s->list_users, "SELECT " USER_COLUMNS " FROM users WHERE id > ?1 ORDER BY id LIMIT ?2"},
        {&s->offer,
         "INSERT INTO user_contracts (singer_id, agent_id, singer_bp, agent_bp, status, "
         "offered_at, accepted_at, ended_at) VALUES (?1, ?2, ?3, ?4, 'offered', ?5, NULL, NULL) "
         "ON CONFLICT (singer_id) DO UPDATE SET agent_id = excluded.agent_id, "
         "singer_bp = excluded.singer_bp, agent_bp = excluded.agent_bp, status = 'offered', "
         "offered_at = excluded.offered_at, accepted_at = NULL, ended_at = NULL "
         "WHERE user_contracts.status <> 'active' RETURNING " CONTRACT_COLUMNS},
        {&s->accept, "UPDATE user_contracts SET status = 'active', accepted_at = ?3 "
                     "WHERE singer_id = ?1 AND agent_id = ?2 AND status = 'offered' "
                     "RETURNING " CONTRACT_COLUMNS},
        {&s->end,
         "UPDATE user_contracts SET status = 'ended', ended_at = ?3 "
         "WHERE singer_id = ?1 AND (?2 = 0 OR agent_id = ?2) AND status IN ('offered', 'active') "
         "RETURNING " CONTRACT_COLUMNS},
        {&s->get_contract, "SELECT " CONTRACT_COLUMNS " FROM user_contracts WHERE singer_id = ?1"},
        {&s->active_contracts, "SELECT " CONTRACT_COLUMNS " FROM user_contracts "
                               "WHERE status = 'active' ORDER BY singer_id"},
        {&s->contracts_of,
         "SELECT " CONTRACT_COLUMNS " FROM user_contracts "
         "WHERE (singer_id = ?1 OR agent_id = ?1) AND status <> 'ended' ORDER BY singer_id"},
        {&s->claim, "INSERT INTO user_channels (room, agent_id, claimed_at) VALUES (?1, ?2, ?3) "
                    "ON CONFLICT (room) DO NOTHING"},
        {&s->channel, "SELECT room, agent_id, claimed_at FROM user_channels WHERE room = ?1"},
        {&s->list_channels, "SELECT room, agent_id, claimed_at FROM user_channels ORDER BY room"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(stmts); i++) {
        if (sqlite3_prepare_v3(s->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, stmts[i].stmt,
                               NULL) != SQLITE_OK) {
            g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_STORE, "sqlite: %s: %s",
                        stmts[i].sql, sqlite3_errmsg(s->db));
            goto out_fail;
        }
    }
    return s;
out_fail:
    store_close(s);
    return NULL;
}

static void read_user(sqlite3_stmt *st, encore_user *u, char **password)
{
    memset(u, 0, sizeof(*u));
    u->id = sqlite3_column_int64(st, 0);
    const char *name = (const char *)sqlite3_column_text(st, 1);
    g_strlcpy(u->name, name ? name : "", sizeof(u->name));
    u->role = (encore_role)sqlite3_column_int(st, 2);
    u->birth_year = sqlite3_column_int(st, 3);
    u->created_at = sqlite3_column_int64(st, 4);
    u->disabled = sqlite3_column_int(st, 5) != 0;
    if (password)
        *password = g_strdup((const char *)sqlite3_column_text(st, 6));
}

static void read_contract(sqlite3_stmt *st, encore_contract *c)
{
    memset(c, 0, sizeof(*c));
    c->singer_id = sqlite3_column_int64(st, 0);
    c->agent_id = sqlite3_column_int64(st, 1);
    c->singer_bp = sqlite3_column_int(st, 2);
    c->agent_bp = sqlite3_column_int(st, 3);
    c->status = encore_users_store_status_parse((const char *)sqlite3_column_text(st, 4));
    c->offered_at = sqlite3_column_int64(st, 5);
    c->accepted_at = sqlite3_column_int64(st, 6); /* NULL reads as 0 */
    c->ended_at = sqlite3_column_int64(st, 7);
}

static void read_channel(sqlite3_stmt *st, encore_channel *ch)
{
    memset(ch, 0, sizeof(*ch));
    const char *room = (const char *)sqlite3_column_text(st, 0);
    g_strlcpy(ch->room, room ? room : "", sizeof(ch->room));
    ch->agent_id = sqlite3_column_int64(st, 1);
    ch->claimed_at = sqlite3_column_int64(st, 2);
}

/* Steps a bound statement expecting at most one row, which read() takes (may be NULL), then
 * resets it. OK (a row), NOT_FOUND (none) or ERROR. */
typedef void (*row_reader)(sqlite3_stmt *st, void *out);

static users_store_result one_row(encore_users_store *s, sqlite3_stmt *st, row_reader read,
                                  void *out, GError **error)
{
    users_store_result r = USERS_STORE_NOT_FOUND;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (read)
            read(st, out);
        r = USERS_STORE_OK;
        rc = sqlite3_step(st); /* completes the statement (RETURNING) */
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = fail(s, rc, st, error);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

/* Steps a bound statement, appending every row with read() to out; resets it. */
static users_store_result all_rows(encore_users_store *s, sqlite3_stmt *st, row_reader read,
                                   GArray *out, GError **error)
{
    users_store_result r = USERS_STORE_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        g_array_set_size(out, out->len + 1);
        read(st, out->data + (size_t)(out->len - 1) * g_array_get_element_size(out));
    }
    if (rc != SQLITE_DONE)
        r = fail(s, rc, st, error);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

static void user_reader(sqlite3_stmt *st, void *out)
{
    read_user(st, out, NULL);
}

static void contract_reader(sqlite3_stmt *st, void *out)
{
    read_contract(st, out);
}

static void channel_reader(sqlite3_stmt *st, void *out)
{
    read_channel(st, out);
}

static users_store_result store_insert_user(encore_users_store *s, const encore_user *u,
                                            const char *name_key, const char *password,
                                            encore_user *out, GError **error)
{
    sqlite3_stmt *st = s->insert_user;
    sqlite3_bind_text(st, 1, u->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, password, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, (int)u->role);
    sqlite3_bind_int(st, 5, u->birth_year);
    sqlite3_bind_int64(st, 6, u->created_at);
    int64_t id = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    users_store_result r = USERS_STORE_OK;
    if (rc != SQLITE_DONE)
        r = fail(s, rc, st, error);
    else if (id == 0)
        r = USERS_STORE_CONFLICT;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (r == USERS_STORE_OK) {
        *out = *u;
        out->id = id;
        out->disabled = false;
    }
    return r;
}

typedef struct {
    encore_user *user;
    char **password;
} user_out;

static void user_pw_reader(sqlite3_stmt *st, void *out)
{
    user_out *o = out;
    read_user(st, o->user, o->password);
}

static users_store_result store_find_user(encore_users_store *s, int64_t id, const char *name_key,
                                          encore_user *out, char **password, GError **error)
{
    sqlite3_stmt *st;
    if (id > 0) {
        st = s->user_by_id;
        sqlite3_bind_int64(st, 1, id);
    } else {
        st = s->user_by_key;
        sqlite3_bind_text(st, 1, name_key, -1, SQLITE_STATIC);
    }
    user_out o = {out, password};
    return one_row(s, st, user_pw_reader, &o, error);
}

static users_store_result store_set_password(encore_users_store *s, int64_t id,
                                             const char *old_password, const char *new_password,
                                             GError **error)
{
    sqlite3_stmt *st = s->set_password;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, old_password, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, new_password, -1, SQLITE_STATIC);
    users_store_result r = one_row(s, st, NULL, NULL, error);
    if (r == USERS_STORE_ERROR)
        return r;
    return sqlite3_changes(s->db) == 1 ? USERS_STORE_OK : USERS_STORE_NOT_FOUND;
}

static users_store_result store_update_user(encore_users_store *s, const char *name_key, int role,
                                            int disabled, encore_user *out, GError **error)
{
    sqlite3_stmt *st = s->update_user;
    sqlite3_bind_text(st, 1, name_key, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, role);
    sqlite3_bind_int(st, 3, disabled);
    return one_row(s, st, user_reader, out, error);
}

static users_store_result store_list_users(encore_users_store *s, int64_t after_id, unsigned limit,
                                           GArray *out, GError **error)
{
    sqlite3_stmt *st = s->list_users;
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int64(st, 2, limit);
    return all_rows(s, st, user_reader, out, error);
}

static users_store_result store_offer(encore_users_store *s, const encore_contract *c,
                                      encore_contract *out, GError **error)
{
    sqlite3_stmt *st = s->offer;
    sqlite3_bind_int64(st, 1, c->singer_id);
    sqlite3_bind_int64(st, 2, c->agent_id);
    sqlite3_bind_int(st, 3, c->singer_bp);
    sqlite3_bind_int(st, 4, c->agent_bp);
    sqlite3_bind_int64(st, 5, c->offered_at);
    users_store_result r = one_row(s, st, contract_reader, out, error);
    return r == USERS_STORE_NOT_FOUND ? USERS_STORE_CONFLICT : r;
}

static users_store_result store_accept(encore_users_store *s, int64_t singer_id, int64_t agent_id,
                                       int64_t now, encore_contract *out, GError **error)
{
    sqlite3_stmt *st = s->accept;
    sqlite3_bind_int64(st, 1, singer_id);
    sqlite3_bind_int64(st, 2, agent_id);
    sqlite3_bind_int64(st, 3, now);
    return one_row(s, st, contract_reader, out, error);
}

static users_store_result store_end(encore_users_store *s, int64_t singer_id, int64_t agent_id,
                                    int64_t now, encore_contract *out, GError **error)
{
    sqlite3_stmt *st = s->end;
    sqlite3_bind_int64(st, 1, singer_id);
    sqlite3_bind_int64(st, 2, agent_id);
    sqlite3_bind_int64(st, 3, now);
    return one_row(s, st, contract_reader, out, error);
}

static users_store_result store_get_contract(encore_users_store *s, int64_t singer_id,
                                             encore_contract *out, GError **error)
{
    sqlite3_stmt *st = s->get_contract;
    sqlite3_bind_int64(st, 1, singer_id);
    return one_row(s, st, contract_reader, out, error);
}

static users_store_result store_list_contracts(encore_users_store *s, int64_t user_id, GArray *out,
                                               GError **error)
{
    sqlite3_stmt *st = s->active_contracts;
    if (user_id != 0) {
        st = s->contracts_of;
        sqlite3_bind_int64(st, 1, user_id);
    }
    return all_rows(s, st, contract_reader, out, error);
}

static users_store_result store_claim_channel(encore_users_store *s, const char *room,
                                              int64_t agent_id, int64_t now, encore_channel *out,
                                              GError **error)
{
    sqlite3_stmt *st = s->claim;
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, agent_id);
    sqlite3_bind_int64(st, 3, now);
    if (one_row(s, st, NULL, NULL, error) == USERS_STORE_ERROR)
        return USERS_STORE_ERROR;
    st = s->channel;
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    users_store_result r = one_row(s, st, channel_reader, out, error);
    if (r == USERS_STORE_NOT_FOUND) {
        g_set_error(error, ENCORE_USERS_STORE_ERROR, ENCORE_USERS_STORE_FATAL,
                    "sqlite: channel %s vanished after its claim", room);
        r = USERS_STORE_ERROR;
    }
    return r;
}

static users_store_result store_list_channels(encore_users_store *s, GArray *out, GError **error)
{
    return all_rows(s, s->list_channels, channel_reader, out, error);
}

const struct encore_users_store_ops encore_users_sqlite_ops = {
    .name = "sqlite",
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
