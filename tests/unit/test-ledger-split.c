/* Unit tests for server/economy/split: the revenue split's property over every price from 1 to
 * 10^6 for a set of contracts, a seeded random sample of (price, shares) and a grid of shares,
 * plus the edges (price 0, the largest int64 price, bad shares). The property: parts never
 * negative, summing exactly to the price, singer and agent floored (less than one unit under
 * their exact share, never over), the platform at its exact share plus under two units. */
#include "config.h"

#include <errno.h>

#include "server/economy/split.h"

/* Checks one split exactly with 128-bit arithmetic; returns FALSE (and prints) on a failure. */
static gboolean check(int64_t price, uint32_t sbp, uint32_t abp)
{
    int64_t s = -1, a = -1, p = -1;
    if (encore_split(price, sbp, abp, &s, &a, &p) != 0)
        goto bad;
    __int128 P = price, one = ENCORE_SPLIT_BP_ONE;
    if (s < 0 || a < 0 || p < 0 || (__int128)s + a + p != P)
        goto bad;
    /* s <= price * sbp / 10000 < s + 1, i.e. s * 10000 <= price * sbp < (s + 1) * 10000. */
    if ((__int128)s * one > P * sbp || ((__int128)s + 1) * one <= P * sbp)
        goto bad;
    if ((__int128)a * one > P * abp || ((__int128)a + 1) * one <= P * abp)
        goto bad;
    __int128 pbp = one - sbp - abp;
    if ((__int128)p * one < P * pbp || (__int128)p * one >= P * pbp + 2 * one)
        goto bad;
    return TRUE;
bad:
    g_printerr("split(%" G_GINT64_FORMAT ", %u, %u) = %" G_GINT64_FORMAT " + %" G_GINT64_FORMAT
               " + %" G_GINT64_FORMAT " breaks the property\n",
               price, sbp, abp, s, a, p);
    return FALSE;
}

/* Contracts (singer bp, agent bp) a deployment might configure, and the corners. */
static const uint32_t contracts[][2] = {
    {0, 0},       {10000, 0},   {0, 10000},   {5000, 5000}, {5000, 2000}, {7000, 1000},
    {6000, 1500}, {4000, 0},    {3333, 3333}, {6667, 3333}, {1, 1},       {9999, 1},
    {1234, 5678}, {4999, 5000}, {8000, 2000}, {3000, 3000},
};

static void test_every_price(void)
{
    for (size_t c = 0; c < G_N_ELEMENTS(contracts); c++) {
        for (int64_t price = 1; price <= 1000000; price++) {
            if (!check(price, contracts[c][0], contracts[c][1]))
                g_assert_not_reached();
        }
    }
}

static void test_random_sample(void)
{
    guint32 seed = g_test_rand_int();
    g_test_message("split sample seed %u (replay: --seed or edit)", seed);
    GRand *r = g_rand_new_with_seed(seed);
    for (int i = 0; i < 2000000; i++) {
        int64_t price = g_rand_int_range(r, 1, 1000001);
        uint32_t s = (uint32_t)g_rand_int_range(r, 0, 10001);
        uint32_t a = (uint32_t)g_rand_int_range(r, 0, (gint32)(10001 - s));
        if (!check(price, s, a)) {
            g_printerr("seed %u\n", seed);
            g_assert_not_reached();
        }
    }
    g_rand_free(r);
}

static void test_share_grid(void)
{
    const int64_t prices[] = {1,    2,     3,     7,      99,     100,     101,
                              9999, 10000, 10001, 123457, 999999, 1000000, 1000001};
    for (uint32_t s = 0; s <= 10000; s += 37) {
        for (uint32_t a = 0; s + a <= 10000; a += 41) {
            for (size_t i = 0; i < G_N_ELEMENTS(prices); i++)
                if (!check(prices[i], s, a))
                    g_assert_not_reached();
        }
        /* The agent's largest share for this singer share. */
        for (size_t i = 0; i < G_N_ELEMENTS(prices); i++)
            if (!check(prices[i], s, 10000 - s))
                g_assert_not_reached();
    }
}

static void test_edges(void)
{
    int64_t s, a, p;
    g_assert_cmpint(encore_split(0, 5000, 2000, &s, &a, &p), ==, 0);
    g_assert_cmpint(s, ==, 0);
    g_assert_cmpint(a, ==, 0);
    g_assert_cmpint(p, ==, 0);
    /* Documented rounding: floors for singer and agent, the platform takes both remainders. */
    g_assert_cmpint(encore_split(3, 3333, 3333, &s, &a, &p), ==, 0);
    g_assert_cmpint(s, ==, 0);
    g_assert_cmpint(a, ==, 0);
    g_assert_cmpint(p, ==, 3);
    g_assert_cmpint(encore_split(1000, 5000, 2000, &s, &a, &p), ==, 0);
    g_assert_cmpint(s, ==, 500);
    g_assert_cmpint(a, ==, 200);
    g_assert_cmpint(p, ==, 300);
    g_assert_cmpint(encore_split(199, 5000, 2000, &s, &a, &p), ==, 0);
    g_assert_cmpint(s, ==, 99);
    g_assert_cmpint(a, ==, 39);
    g_assert_cmpint(p, ==, 61);
    /* No intermediate overflow anywhere in int64. */
    const int64_t big[] = {INT64_MAX, INT64_MAX - 1, INT64_MAX / 10000 * 10000 - 1,
                           (int64_t)1 << 62, 922337203685477580};
    for (size_t i = 0; i < G_N_ELEMENTS(big); i++)
        for (size_t c = 0; c < G_N_ELEMENTS(contracts); c++)
            g_assert_true(check(big[i], contracts[c][0], contracts[c][1]));
    g_assert_cmpint(encore_split(INT64_MAX, 10000, 0, &s, &a, &p), ==, 0);
    g_assert_cmpint(s, ==, INT64_MAX);
    g_assert_cmpint(p, ==, 0);

    /* Refusals leave the outputs alone. */
    s = a = p = 7;
    g_assert_cmpint(encore_split(-1, 0, 0, &s, &a, &p), ==, -EINVAL);
    g_assert_cmpint(encore_split(INT64_MIN, 0, 0, &s, &a, &p), ==, -EINVAL);
    g_assert_cmpint(encore_split(100, 5001, 5000, &s, &a, &p), ==, -EINVAL);
    g_assert_cmpint(encore_split(100, 10001, 0, &s, &a, &p), ==, -EINVAL);
    g_assert_cmpint(encore_split(100, 0, 10001, &s, &a, &p), ==, -EINVAL);
    g_assert_cmpint(encore_split(100, UINT32_MAX, 1, &s, &a, &p), ==, -EINVAL);
    g_assert_cmpint(encore_split(100, 1, UINT32_MAX, &s, &a, &p), ==, -EINVAL);
    g_assert_cmpint(encore_split(100, 0, 0, NULL, &a, &p), ==, -EINVAL);
    g_assert_cmpint(encore_split(100, 0, 0, &s, NULL, &p), ==, -EINVAL);
    g_assert_cmpint(encore_split(100, 0, 0, &s, &a, NULL), ==, -EINVAL);
    g_assert_cmpint(s, ==, 7);
    g_assert_cmpint(a, ==, 7);
    g_assert_cmpint(p, ==, 7);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ledger/split/every-price", test_every_price);
    g_test_add_func("/ledger/split/random-sample", test_random_sample);
    g_test_add_func("/ledger/split/share-grid", test_share_grid);
    g_test_add_func("/ledger/split/edges", test_edges);
    return g_test_run();
}
