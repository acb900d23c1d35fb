/* Throwaway ledger stores for tests (see testdb.h). Test-only; runs on the test's thread. */
#include "config.h"

#include <glib/gstdio.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "tests/ledger/testdb.h"

const char *testdb_pg_skip_reason(void)
{
    const char *pg = g_getenv("ENCORE_TEST_PG");
    if (pg && *pg)
        return NULL;
    return "ENCORE_TEST_PG is not set (run `eval \"$(scripts/pg start)\"` first)";
}

static PGconn *pg_connect(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        g_error("testdb: cannot connect to %s: %s", conninfo, PQerrorMessage(c));
    PGresult *r = PQexec(c, "SET client_min_messages = warning");
    PQclear(r);
    return c;
}

testdb *testdb_new(const char *kind)
{
    testdb *db = g_new0(testdb, 1);
    if (g_strcmp0(kind, "postgresql") == 0) {
        db->pg = true;
        db->pg_base = g_strdup(g_getenv("ENCORE_TEST_PG"));
        g_assert_nonnull(db->pg_base);
        db->schema = g_strdup_printf("t_%08x%08x", g_random_int(), g_random_int());
        PGconn *c = pg_connect(db->pg_base);
        char *sql = g_strdup_printf("CREATE SCHEMA %s", db->schema);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            g_error("testdb: %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        g_free(sql);
        PQfinish(c);
        db->backend =
            g_strdup_printf("postgresql:%s options='-csearch_path=%s'", db->pg_base, db->schema);
    } else {
        GError *err = NULL;
        db->dir = g_dir_make_tmp("encore-ledger-XXXXXX", &err);
        g_assert_no_error(err);
        db->path = g_build_filename(db->dir, "ledger.db", NULL);
        db->backend = g_strdup_printf("sqlite:%s", db->path);
    }
    return db;
}

void testdb_free(testdb *db)
{
    if (!db)
        return;
    if (db->pg) {
        PGconn *c = pg_connect(db->pg_base);
        char *sql = g_strdup_printf("DROP SCHEMA %s CASCADE", db->schema);
        PGresult *r = PQexec(c, sql);
        PQclear(r);
        g_free(sql);
        PQfinish(c);
    } else {
        const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
        for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
            char *f = g_strconcat(db->path, suffixes[i], NULL);
            g_unlink(f);
            g_free(f);
        }
        g_rmdir(db->dir);
    }
    g_free(db->backend);
    g_free(db->dir);
    g_free(db->path);
    g_free(db->pg_base);
    g_free(db->schema);
    g_free(db);
}

static char *pg_conninfo(testdb *db)
{
    return g_strdup_printf("%s options='-csearch_path=%s'", db->pg_base, db->schema);
}

gboolean testdb_exec(testdb *db, const char *sql, char **message)
{
    gboolean ok;
    *message = NULL;
    if (db->pg) {
        char *ci = pg_conninfo(db);
        PGconn *c = pg_connect(ci);
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            *message = g_strdup(PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(c);
        g_free(ci);
    } else {
        sqlite3 *s = NULL;
        g_assert_cmpint(sqlite3_open(db->path, &s), ==, SQLITE_OK);
        sqlite3_busy_timeout(s, 5000);
        char *err = NULL;
        ok = sqlite3_exec(s, sql, NULL, NULL, &err) == SQLITE_OK;
        if (!ok)
            *message = g_strdup(err ? err : "error");
        sqlite3_free(err);
        sqlite3_close(s);
    }
    return ok;
}

static int first_value(void *data, int ncol, char **values, char **names)
{
    char **out = data;
    if (!*out && ncol > 0 && values[0])
        *out = g_strdup(values[0]);
    return 0;
}

char *testdb_query(testdb *db, const char *sql)
{
    char *out = NULL;
    if (db->pg) {
        char *ci = pg_conninfo(db);
        PGconn *c = pg_connect(ci);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
            out = g_strdup(PQgetvalue(r, 0, 0));
        PQclear(r);
        PQfinish(c);
        g_free(ci);
    } else {
        sqlite3 *s = NULL;
        g_assert_cmpint(sqlite3_open(db->path, &s), ==, SQLITE_OK);
        sqlite3_busy_timeout(s, 5000);
        sqlite3_exec(s, sql, first_value, &out, NULL);
        sqlite3_close(s);
    }
    return out;
}
