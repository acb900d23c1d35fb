/* Unit tests for server/economy/spendcap: the UTC day number, reserving up to the cap exactly,
 * commit and release, replayed answers (duplicates), the rebuild from committed records, requests
 * in flight across midnight, old days dropped, no cap, and invalid input. */
#include <glib.h>

#include "server/economy/ledger.h"
#include "server/economy/spendcap.h"

#define DAY_US ENCORE_SPENDCAP_DAY_US
/* 2026-11-26T00:00:00Z, UTC day 20783. */
#define T0 (INT64_C(1795651200) * 1000000)
#define D0 INT64_C(20783)

static void assert_get(encore_spendcap *sc, int64_t user, int64_t now, int64_t spent,
                       int64_t reserved)
{
    int64_t s = -1, r = -1;
    encore_spendcap_get(sc, user, now, &s, &r);
    g_assert_cmpint(s, ==, spent);
    g_assert_cmpint(r, ==, reserved);
}

static void test_day(void)
{
    g_assert_cmpint(encore_spendcap_day(T0), ==, D0);
    g_assert_cmpint(encore_spendcap_day(T0 - 1), ==, D0 - 1);
    g_assert_cmpint(encore_spendcap_day(T0 + DAY_US - 1), ==, D0);
    g_assert_cmpint(encore_spendcap_day(T0 + DAY_US), ==, D0 + 1);
    g_assert_cmpint(encore_spendcap_day(0), ==, 0);
    g_assert_cmpint(encore_spendcap_day(-1), ==, -1);
    g_assert_cmpint(encore_spendcap_day(-DAY_US), ==, -1);
    g_assert_cmpint(encore_spendcap_day(-DAY_US - 1), ==, -2);
}

static void test_cap(void)
{
    encore_spendcap *sc = encore_spendcap_new(1000, 0);
    int64_t day = -1;
    g_assert_cmpint(encore_spendcap_cap(sc), ==, 1000);
    g_assert_cmpint(encore_spendcap_reserve(sc, 7, 600, T0 + 5, &day), ==, ENCORE_SPENDCAP_OK);
    g_assert_cmpint(day, ==, D0);
    assert_get(sc, 7, T0, 0, 600);
    /* Reserved counts against the cap: 600 + 401 > 1000. */
    day = -1;
    g_assert_cmpint(encore_spendcap_reserve(sc, 7, 401, T0 + 6, &day), ==,
                    ENCORE_SPENDCAP_DAILY_CAP);
    g_assert_cmpint(day, ==, -1);
    g_assert_cmpint(encore_spendcap_reserve(sc, 7, 400, T0 + 6, &day), ==, ENCORE_SPENDCAP_OK);
    assert_get(sc, 7, T0, 0, 1000);
    /* Commit one, release the other. */
    g_assert_cmpint(encore_spendcap_commit(sc, 7, 600, D0, 42), ==, ENCORE_SPENDCAP_OK);
    assert_get(sc, 7, T0, 600, 400);
    encore_spendcap_release(sc, 7, 400, D0);
    assert_get(sc, 7, T0, 600, 0);
    /* Exactly up to the cap, then one coin more is refused. */
    g_assert_cmpint(encore_spendcap_reserve(sc, 7, 400, T0 + 7, &day), ==, ENCORE_SPENDCAP_OK);
    g_assert_cmpint(encore_spendcap_commit(sc, 7, 400, D0, 43), ==, ENCORE_SPENDCAP_OK);
    assert_get(sc, 7, T0, 1000, 0);
    g_assert_cmpint(encore_spendcap_reserve(sc, 7, 1, T0 + 8, &day), ==, ENCORE_SPENDCAP_DAILY_CAP);
    /* Other users have their own cap; a single amount over the cap never fits. */
    g_assert_cmpint(encore_spendcap_reserve(sc, 8, 1000, T0, &day), ==, ENCORE_SPENDCAP_OK);
    g_assert_cmpint(encore_spendcap_reserve(sc, 9, 1001, T0, &day), ==, ENCORE_SPENDCAP_DAILY_CAP);
    /* The next UTC day starts afresh. */
    g_assert_cmpint(encore_spendcap_reserve(sc, 7, 1000, T0 + DAY_US, &day), ==,
                    ENCORE_SPENDCAP_OK);
    g_assert_cmpint(day, ==, D0 + 1);
    assert_get(sc, 7, T0 + DAY_US, 0, 1000);
    assert_get(sc, 7, T0, 1000, 0); /* yesterday is still kept */
    encore_spendcap_free(sc);
    encore_spendcap_free(NULL);
}

static void test_duplicates(void)
{
    encore_spendcap *sc = encore_spendcap_new(1000, 0);
    int64_t day;
    g_assert_cmpint(encore_spendcap_reserve(sc, 7, 100, T0, &day), ==, ENCORE_SPENDCAP_OK);
    g_assert_cmpint(encore_spendcap_commit(sc, 7, 100, day, 5), ==, ENCORE_SPENDCAP_OK);
    /* A retry answered from the stored result: its reservation goes, nothing is added. */
    g_assert_cmpint(encore_spendcap_reserve(sc, 7, 100, T0, &day), ==, ENCORE_SPENDCAP_OK);
    assert_get(sc, 7, T0, 100, 100);
    g_assert_cmpint(encore_spendcap_commit(sc, 7, 100, day, 5), ==, ENCORE_SPENDCAP_DUPLICATE);
    assert_get(sc, 7, T0, 100, 0);
    /* The rebuild and live answers share the id set. */
    g_assert_cmpint(encore_spendcap_record(sc, 7, 100, 5, T0), ==, ENCORE_SPENDCAP_DUPLICATE);
    g_assert_cmpint(encore_spendcap_record(sc, 7, 50, 6, T0 + 1), ==, ENCORE_SPENDCAP_OK);
    assert_get(sc, 7, T0, 150, 0);
    /* Release never goes below zero. */
    encore_spendcap_release(sc, 7, 999, D0);
    assert_get(sc, 7, T0, 150, 0);
    static const char *const names[] = {"ok", "daily_cap", "duplicate", "invalid_request"};
    for (int i = 0; i < 4; i++)
        g_assert_cmpstr(encore_spendcap_status_name((encore_spendcap_status)i), ==, names[i]);
    g_assert_null(encore_spendcap_status_name((encore_spendcap_status)4));
    encore_spendcap_free(sc);
}

static void test_rebuild_and_days(void)
{
    encore_spendcap *sc = encore_spendcap_new(1000, 0);
    int64_t day;
    /* Records from three days back to today, oldest first, as a ledger scan gives them. */
    g_assert_cmpint(encore_spendcap_record(sc, 7, 900, 1, T0 - 3 * DAY_US), ==, ENCORE_SPENDCAP_OK);
    g_assert_cmpint(encore_spendcap_record(sc, 7, 300, 2, T0 - DAY_US), ==, ENCORE_SPENDCAP_OK);
    g_assert_cmpint(encore_spendcap_record(sc, 7, 200, 3, T0 - 1), ==, ENCORE_SPENDCAP_OK);
    g_assert_cmpint(encore_spendcap_record(sc, 7, 700, 4, T0), ==, ENCORE_SPENDCAP_OK);
    g_assert_cmpint(encore_spendcap_record(sc, 8, 10, 5, T0 + DAY_US - 1), ==, ENCORE_SPENDCAP_OK);
    assert_get(sc, 7, T0 - 3 * DAY_US, 0, 0); /* dropped */
    assert_get(sc, 7, T0 - DAY_US, 500, 0);
    assert_get(sc, 7, T0, 700, 0);
    assert_get(sc, 8, T0, 10, 0);
    g_assert_cmpuint(encore_spendcap_size(sc), ==, 3);
    /* A late record of a dropped day counts nowhere (but its id is remembered). */
    g_assert_cmpint(encore_spendcap_record(sc, 7, 5, 6, T0 - 2 * DAY_US), ==, ENCORE_SPENDCAP_OK);
    assert_get(sc, 7, T0 - 2 * DAY_US, 0, 0);
    g_assert_cmpint(encore_spendcap_record(sc, 7, 5, 6, T0 - 2 * DAY_US), ==,
                    ENCORE_SPENDCAP_DUPLICATE);
    g_assert_cmpint(encore_spendcap_reserve(sc, 7, 301, T0 + 10, &day), ==,
                    ENCORE_SPENDCAP_DAILY_CAP);

    /* In flight across midnight: reserved on D0, answered on D0 + 1, counted on D0. */
    g_assert_cmpint(encore_spendcap_reserve(sc, 7, 300, T0 + DAY_US - 1, &day), ==,
                    ENCORE_SPENDCAP_OK);
    g_assert_cmpint(day, ==, D0);
    g_assert_cmpint(encore_spendcap_reserve(sc, 7, 50, T0 + DAY_US, &day), ==,
                    ENCORE_SPENDCAP_OK); /* today moves to D0 + 1 */
    g_assert_cmpint(day, ==, D0 + 1);
    g_assert_cmpint(encore_spendcap_commit(sc, 7, 300, D0, 7), ==, ENCORE_SPENDCAP_OK);
    assert_get(sc, 7, T0, 1000, 0);
    assert_get(sc, 7, T0 + DAY_US, 0, 50);
    /* Two days later both are gone; a commit for a dropped day is ignored. */
    g_assert_cmpint(encore_spendcap_reserve(sc, 9, 1, T0 + 3 * DAY_US, &day), ==,
                    ENCORE_SPENDCAP_OK);
    g_assert_cmpuint(encore_spendcap_size(sc), ==, 1);
    g_assert_cmpint(encore_spendcap_commit(sc, 7, 50, D0 + 1, 8), ==, ENCORE_SPENDCAP_OK);
    assert_get(sc, 7, T0 + DAY_US, 0, 0);
    g_assert_cmpuint(encore_spendcap_size(sc), ==, 1);
    /* A clock gone back past yesterday cannot reserve. */
    g_assert_cmpint(encore_spendcap_reserve(sc, 9, 1, T0, &day), ==, ENCORE_SPENDCAP_INVALID);
    /* Yesterday's slot opens for a late record when today moved by two. */
    g_assert_cmpint(encore_spendcap_record(sc, 9, 4, 9, T0 + 2 * DAY_US), ==, ENCORE_SPENDCAP_OK);
    assert_get(sc, 9, T0 + 2 * DAY_US, 4, 0);
    assert_get(sc, 9, T0 + 3 * DAY_US, 0, 1);
    encore_spendcap_free(sc);
}

static void test_no_cap_and_invalid(void)
{
    encore_spendcap *sc = encore_spendcap_new(0, 0);
    int64_t day;
    for (int i = 1; i <= 10; i++) {
        g_assert_cmpint(encore_spendcap_reserve(sc, 7, ENCORE_LEDGER_MAX_AMOUNT, T0, &day), ==,
                        ENCORE_SPENDCAP_OK);
        g_assert_cmpint(encore_spendcap_commit(sc, 7, ENCORE_LEDGER_MAX_AMOUNT, day, i), ==,
                        ENCORE_SPENDCAP_OK);
    }
    assert_get(sc, 7, T0, 10 * ENCORE_LEDGER_MAX_AMOUNT, 0);
    g_assert_cmpint(encore_spendcap_reserve(sc, 0, 1, T0, &day), ==, ENCORE_SPENDCAP_INVALID);
    g_assert_cmpint(encore_spendcap_reserve(sc, 7, 0, T0, &day), ==, ENCORE_SPENDCAP_INVALID);
    g_assert_cmpint(encore_spendcap_reserve(sc, 7, ENCORE_LEDGER_MAX_AMOUNT + 1, T0, &day), ==,
                    ENCORE_SPENDCAP_INVALID);
    g_assert_cmpint(encore_spendcap_commit(sc, 7, 1, D0, 0), ==, ENCORE_SPENDCAP_INVALID);
    g_assert_cmpint(encore_spendcap_commit(sc, 7, -1, D0, 99), ==, ENCORE_SPENDCAP_INVALID);
    g_assert_cmpint(encore_spendcap_record(sc, -7, 1, 99, T0), ==, ENCORE_SPENDCAP_INVALID);
    g_assert_cmpint(encore_spendcap_record(sc, 7, 1, -99, T0), ==, ENCORE_SPENDCAP_INVALID);
    /* Invalid calls did not record id 99. */
    g_assert_cmpint(encore_spendcap_record(sc, 7, 1, 99, T0), ==, ENCORE_SPENDCAP_OK);
    int64_t s;
    encore_spendcap_get(sc, 7, T0, &s, NULL);
    g_assert_cmpint(s, ==, 10 * ENCORE_LEDGER_MAX_AMOUNT + 1);
    encore_spendcap_get(sc, 7, T0, NULL, NULL);
    encore_spendcap_free(sc);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/spendcap/day", test_day);
    g_test_add_func("/spendcap/cap", test_cap);
    g_test_add_func("/spendcap/duplicates", test_duplicates);
    g_test_add_func("/spendcap/rebuild-and-days", test_rebuild_and_days);
    g_test_add_func("/spendcap/no-cap-and-invalid", test_no_cap_and_invalid);
    return g_test_run();
}
