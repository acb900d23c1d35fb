/* Throwaway ledger stores for tests: a fresh SQLite file in a temporary directory, or a fresh
 * schema in the PostgreSQL named by $ENCORE_TEST_PG (a libpq key=value string, set by
 * scripts/test after `scripts/pg start`). Test-only; any one thread. */
#ifndef ENCORE_TESTS_LEDGER_TESTDB_H
#define ENCORE_TESTS_LEDGER_TESTDB_H

#include <glib.h>
#include <stdbool.h>

typedef struct {
    bool pg;
    char *backend; /* "sqlite:PATH" or "postgresql:CONNINFO options=..." for encore_ledger_open */
    char *dir;     /* SQLite: the temporary directory */
    char *path;    /* SQLite: the database file */
    char *pg_base; /* PostgreSQL: $ENCORE_TEST_PG */
    char *schema;  /* PostgreSQL: this test's schema */
} testdb;

/* The reason PostgreSQL tests skip, or NULL when $ENCORE_TEST_PG is set. */
const char *testdb_pg_skip_reason(void);

/* A fresh, empty store of the given kind ("sqlite" or "postgresql"); aborts on failure. */
testdb *testdb_new(const char *kind);
/* Removes the file or drops the schema. Accepts NULL. */
void testdb_free(testdb *db);

/* Runs raw SQL against the store (outside the ledger) to corrupt it or read it. Returns FALSE with
 * *message (free it) holding the database's error. */
gboolean testdb_exec(testdb *db, const char *sql, char **message);
/* Runs a one-value query; returns the value as a string (free it) or NULL on error/no row. */
char *testdb_query(testdb *db, const char *sql);

#endif
