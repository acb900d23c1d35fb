/* Unit tests for server/accounts/roles.c: role names both ways, the whole permission table, and
 * the conservative age rule at its exact edges (instants checked against Python's
 * calendar.timegm), including the spending rule that combines both. */
#include <string.h>

#include <glib.h>

#include "server/accounts/roles.h"

static void test_names(void)
{
    static const char *const names[ENCORE_ROLE_COUNT] = {"listener", "singer", "host", "agent",
                                                         "admin"};
    for (int r = 0; r < ENCORE_ROLE_COUNT; r++) {
        encore_role got = ENCORE_ROLE_ADMIN;
        g_assert_cmpstr(encore_roles_name((encore_role)r), ==, names[r]);
        g_assert_cmpint(encore_roles_parse(names[r], strlen(names[r]), &got), ==, 0);
        g_assert_cmpint(got, ==, r);
    }
    g_assert_null(encore_roles_name((encore_role)ENCORE_ROLE_COUNT));
    g_assert_null(encore_roles_name((encore_role)-1));
    static const char *const bad[] = {"",     "Admin",  "ADMIN", "admins",
                                      "admi", " admin", "root",  "listener\n"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        encore_role got = ENCORE_ROLE_HOST;
        g_assert_cmpint(encore_roles_parse(bad[i], strlen(bad[i]), &got), ==,
                        ENCORE_ROLES_EUNKNOWN);
        g_assert_cmpint(got, ==, ENCORE_ROLE_HOST); /* untouched */
    }
    encore_role got;
    g_assert_cmpint(encore_roles_parse(NULL, 0, &got), ==, ENCORE_ROLES_EUNKNOWN);
    g_assert_cmpint(encore_roles_parse("adminX", 5, &got), ==, 0); /* length honoured */
    g_assert_cmpint(got, ==, ENCORE_ROLE_ADMIN);
    /* The numeric values are stable (they may be stored). */
    g_assert_cmpint(ENCORE_ROLE_LISTENER, ==, 0);
    g_assert_cmpint(ENCORE_ROLE_ADMIN, ==, 4);
}

static void test_permission_table(void)
{
    /* Rows: listener, singer, host, agent, admin. Columns: listen, publish, host, sign_singers,
     * approve_withdrawals, spend, withdraw. */
    static const bool want[ENCORE_ROLE_COUNT][ENCORE_PERM_COUNT] = {
        {1, 0, 0, 0, 0, 1, 0}, {1, 1, 0, 0, 0, 1, 1}, {1, 1, 1, 0, 0, 1, 0},
        {1, 0, 1, 1, 0, 1, 1}, {1, 0, 1, 0, 1, 0, 0},
    };
    for (int r = 0; r < ENCORE_ROLE_COUNT; r++)
        for (int p = 0; p < ENCORE_PERM_COUNT; p++) {
            g_test_message("%s may %s", encore_roles_name((encore_role)r),
                           encore_roles_perm_name((encore_perm)p));
            g_assert_cmpint(encore_roles_may((encore_role)r, (encore_perm)p), ==, want[r][p]);
        }
    g_assert_false(encore_roles_may((encore_role)ENCORE_ROLE_COUNT, ENCORE_PERM_LISTEN));
    g_assert_false(encore_roles_may(ENCORE_ROLE_ADMIN, (encore_perm)ENCORE_PERM_COUNT));
    g_assert_false(encore_roles_may((encore_role)-1, (encore_perm)-1));
    static const char *const perms[ENCORE_PERM_COUNT] = {
        "listen", "publish", "host", "sign_singers", "approve_withdrawals", "spend", "withdraw"};
    for (int p = 0; p < ENCORE_PERM_COUNT; p++)
        g_assert_cmpstr(encore_roles_perm_name((encore_perm)p), ==, perms[p]);
    g_assert_null(encore_roles_perm_name((encore_perm)ENCORE_PERM_COUNT));
}

static void test_age_rule(void)
{
    /* Born in 2000: adult from 2018-12-31T12:00:00Z = 1546257600. */
    g_assert_cmpint(encore_accounts_adult_from(2000), ==, 1546257600);
    g_assert_false(encore_accounts_is_adult(2000, 1546257599));
    g_assert_true(encore_accounts_is_adult(2000, 1546257600));
    /* Born in 2007: not adult on 2025-12-31 11:59:59Z, adult at 12:00:00Z. */
    g_assert_cmpint(encore_accounts_adult_from(2007), ==, 1767182400);
    g_assert_false(encore_accounts_is_adult(2007, 1767182399));
    g_assert_true(encore_accounts_is_adult(2007, 1767182400));
    /* Born in 2006: adult from 2024-12-31T12:00Z; so on 2025-06-01 yes. */
    g_assert_cmpint(encore_accounts_adult_from(2006), ==, 1735646400);
    g_assert_true(encore_accounts_is_adult(2006, 1748736000));
    /* A leap year on the way (2000-12-31). */
    g_assert_cmpint(encore_accounts_adult_from(1982), ==, 978264000);
    /* The first accepted year turns adult in 1918 (a negative Unix time). */
    g_assert_cmpint(encore_accounts_adult_from(1900), ==, -1609502400);
    g_assert_true(encore_accounts_is_adult(1900, 0));
    g_assert_cmpint(encore_accounts_adult_from(1899), ==, INT64_MAX);
    g_assert_cmpint(encore_accounts_adult_from(10000), ==, INT64_MAX);
    g_assert_cmpint(encore_accounts_adult_from(-5), ==, INT64_MAX);

    /* Valid birth years: 1900 .. the current UTC year. now = 2025-01-01T00:00:00Z. */
    const int64_t ny2025 = 1735689600;
    g_assert_true(encore_accounts_birth_year_valid(1900, ny2025));
    g_assert_false(encore_accounts_birth_year_valid(1899, ny2025));
    g_assert_true(encore_accounts_birth_year_valid(2025, ny2025));
    g_assert_false(encore_accounts_birth_year_valid(2026, ny2025));
    g_assert_false(encore_accounts_birth_year_valid(2025, ny2025 - 1)); /* still 2024 */
    g_assert_true(encore_accounts_birth_year_valid(2024, ny2025 - 1));
    g_assert_false(encore_accounts_birth_year_valid(2000, -1));
    g_assert_false(encore_accounts_birth_year_valid(2000, INT64_MAX));
    g_assert_false(encore_accounts_birth_year_valid(2000, INT64_MIN));
    g_assert_false(encore_accounts_is_adult(1899, ny2025));
    g_assert_false(encore_accounts_is_adult(2030, INT64_MAX));
    g_assert_false(encore_accounts_is_adult(2000, -1));

    /* Spending needs the permission and the age. */
    g_assert_true(encore_accounts_may_spend(ENCORE_ROLE_LISTENER, 2000, ny2025));
    g_assert_true(encore_accounts_may_spend(ENCORE_ROLE_SINGER, 2006, ny2025));
    g_assert_false(encore_accounts_may_spend(ENCORE_ROLE_LISTENER, 2007, ny2025));
    g_assert_false(encore_accounts_may_spend(ENCORE_ROLE_LISTENER, 2010, ny2025));
    g_assert_false(encore_accounts_may_spend(ENCORE_ROLE_ADMIN, 1980, ny2025));
    g_assert_false(encore_accounts_may_spend((encore_role)99, 1980, ny2025));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/accounts/roles/names", test_names);
    g_test_add_func("/accounts/roles/permission-table", test_permission_table);
    g_test_add_func("/accounts/roles/age-rule", test_age_rule);
    return g_test_run();
}
