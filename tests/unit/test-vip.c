/* Unit tests for server/economy/vip: the purchase plan (legs, id, canonical metadata, errors),
 * the strict metadata reader, and the fold: first purchase, extension while active, upgrade and
 * lower tier while active, the exact expiry instant, idempotency on transfer ids, the expiry cap,
 * may_buy and pruning. */
#include <jansson.h>
#include <string.h>

#include <glib.h>

#include "server/economy/vip.h"

#define DAY_US (INT64_C(86400) * 1000000)
/* 2026-11-26T00:00:00Z */
#define T0 (INT64_C(1795651200) * 1000000)

static void test_plan(void)
{
    encore_catalog *c = encore_catalog_new_default();
    encore_vip_purchase p;
    g_assert_cmpint(encore_vip_plan(c, 7, "gold", 3, "k2", &p), ==, ENCORE_VIP_OK);
    g_assert_cmpint(p.total, ==, 2400);
    g_assert_cmpint(p.months, ==, 3);
    g_assert_cmpstr(p.tier->id, ==, "gold");
    g_assert_cmpstr(p.req.id, ==, "vip:7:k2");
    g_assert_cmpstr(p.req.kind, ==, "vip");
    g_assert_cmpuint(p.req.n_legs, ==, 2);
    g_assert_cmpstr(p.req.legs[0].account, ==, "wallet:7");
    g_assert_cmpint(p.req.legs[0].amount, ==, -2400);
    g_assert_cmpstr(p.req.legs[1].account, ==, "platform:revenue");
    g_assert_cmpint(p.req.legs[1].amount, ==, 2400);
    g_assert_cmpstr(p.req.metadata, ==,
                    "{\"months\":3,\"price\":800,\"rank\":2,\"tier\":\"gold\",\"user\":7}");
    json_t *root = json_loads(p.req.metadata, JSON_REJECT_DUPLICATES, NULL);
    char *canon = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    g_assert_cmpstr(canon, ==, p.req.metadata);
    free(canon);
    json_decref(root);
    const char *detail;
    g_assert_cmpint(encore_transfer_check(&p.req, &detail), ==, ENCORE_LEDGER_OK);

    g_assert_cmpint(encore_vip_plan(c, 7, "diamond", 12, "A-z_9", &p), ==, ENCORE_VIP_OK);
    g_assert_cmpint(p.total, ==, 24000);
    g_assert_cmpint(encore_vip_plan(c, 0, "gold", 1, "k", &p), ==, ENCORE_VIP_INVALID);
    g_assert_cmpint(encore_vip_plan(c, 7, "gold", 1, "", &p), ==, ENCORE_VIP_BAD_KEY);
    g_assert_cmpint(encore_vip_plan(c, 7, "gold", 1, NULL, &p), ==, ENCORE_VIP_BAD_KEY);
    g_assert_cmpint(encore_vip_plan(c, 7, "gold", 1, "a.b", &p), ==, ENCORE_VIP_BAD_KEY);
    g_assert_cmpint(
        encore_vip_plan(c, 7, "gold", 1,
                        "01234567890123456789012345678901234567890123456789012345678901234", &p),
        ==, ENCORE_VIP_BAD_KEY);
    g_assert_cmpint(encore_vip_plan(c, 7, "platinum", 1, "k", &p), ==, ENCORE_VIP_UNKNOWN_TIER);
    g_assert_cmpint(encore_vip_plan(c, 7, NULL, 1, "k", &p), ==, ENCORE_VIP_UNKNOWN_TIER);
    g_assert_cmpint(encore_vip_plan(c, 7, "gold", 0, "k", &p), ==, ENCORE_VIP_BAD_MONTHS);
    g_assert_cmpint(encore_vip_plan(c, 7, "gold", 13, "k", &p), ==, ENCORE_VIP_BAD_MONTHS);
    /* Precedence: key before tier before months. */
    g_assert_cmpint(encore_vip_plan(c, 7, "x", 0, "", &p), ==, ENCORE_VIP_BAD_KEY);
    g_assert_cmpint(encore_vip_plan(c, 7, "x", 0, "k", &p), ==, ENCORE_VIP_UNKNOWN_TIER);

    static const char *const names[] = {
        "ok",         "invalid_request", "bad_key",   "unknown_tier",
        "bad_months", "lower_tier",      "duplicate", "stale"};
    for (int i = 0; i < (int)G_N_ELEMENTS(names); i++)
        g_assert_cmpstr(encore_vip_result_name((encore_vip_result)i), ==, names[i]);
    g_assert_null(encore_vip_result_name((encore_vip_result)G_N_ELEMENTS(names)));
    encore_catalog_free(c);
}

static int parse(const char *s, encore_vip_record *r)
{
    return encore_vip_record_from_metadata((const uint8_t *)s, strlen(s), r);
}

static void test_record(void)
{
    encore_vip_record r;
    g_assert_cmpint(
        parse("{\"months\":3,\"price\":800,\"rank\":2,\"tier\":\"gold\",\"user\":7}", &r), ==, 0);
    g_assert_cmpint(r.user, ==, 7);
    g_assert_cmpint(r.rank, ==, 2);
    g_assert_cmpint(r.months, ==, 3);
    g_assert_cmpint(r.price, ==, 800);
    g_assert_cmpstr(r.tier, ==, "gold");
    g_assert_cmpint(
        parse("{\"user\":7,\"tier\":\"x\",\"v\":2,\"rank\":100,\"price\":1,\"months\":12}", &r), ==,
        0);
    g_assert_cmpint(r.rank, ==, 100);
    static const char *const bad[] = {
        "{}",
        "{\"months\":3,\"price\":800,\"rank\":2,\"tier\":\"gold\"}",
        "{\"months\":3,\"price\":800,\"rank\":2,\"tier\":\"gold\",\"user\":7,\"user\":7}",
        "{\"months\":0,\"price\":800,\"rank\":2,\"tier\":\"gold\",\"user\":7}",
        "{\"months\":13,\"price\":800,\"rank\":2,\"tier\":\"gold\",\"user\":7}",
        "{\"months\":3,\"price\":0,\"rank\":2,\"tier\":\"gold\",\"user\":7}",
        "{\"months\":3,\"price\":800,\"rank\":0,\"tier\":\"gold\",\"user\":7}",
        "{\"months\":3,\"price\":800,\"rank\":101,\"tier\":\"gold\",\"user\":7}",
        "{\"months\":3,\"price\":800,\"rank\":9223372036854775807,\"tier\":\"gold\",\"user\":7}",
        "{\"months\":3,\"price\":800,\"rank\":2,\"tier\":\"Gold\",\"user\":7}",
        "{\"months\":3,\"price\":800,\"rank\":2,\"tier\":\"\",\"user\":7}",
        "{\"months\":3,\"price\":800,\"rank\":2,\"tier\":\"gold\",\"user\":0}",
        "{\"months\":3,\"price\":800,\"rank\":\"2\",\"tier\":\"gold\",\"user\":7}",
        "{\"months\":12,\"price\":100000000000000,\"rank\":2,\"tier\":\"gold\",\"user\":7}",
        "{\"months\":3,\"price\":800,\"rank\":2,\"tier\":\"gold\",\"user\":7",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        if (parse(bad[i], &r) != ENCORE_VIP_EMETADATA)
            g_error("accepted bad metadata %zu: %s", i, bad[i]);
        g_assert_cmpint(r.user, ==, 0);
        g_assert_cmpint(r.rank, ==, 0);
    }
}

static void assert_status(encore_vip *v, int64_t user, int64_t now, int rank, int64_t expires)
{
    encore_vip_status st = {-1, -1};
    bool active = encore_vip_get(v, user, now, &st);
    g_assert_cmpint(active, ==, rank != 0);
    g_assert_cmpint(st.rank, ==, rank);
    g_assert_cmpint(st.expires_us, ==, expires);
}

static void test_fold(void)
{
    encore_vip *v = encore_vip_new(0);
    int64_t exp = 0;
    assert_status(v, 7, T0, 0, 0);
    /* First purchase: from now, 30 days a month. */
    g_assert_cmpint(encore_vip_apply(v, 7, 1, 1, 100, T0, &exp), ==, ENCORE_VIP_OK);
    g_assert_cmpint(exp, ==, T0 + 30 * DAY_US);
    g_assert_cmpint(ENCORE_VIP_MONTH_US, ==, 30 * DAY_US);
    assert_status(v, 7, T0, 1, T0 + 30 * DAY_US);
    /* The last microsecond is active, the expiry instant is not. */
    assert_status(v, 7, T0 + 30 * DAY_US - 1, 1, T0 + 30 * DAY_US);
    assert_status(v, 7, T0 + 30 * DAY_US, 0, 0);
    /* Same tier while active: from the current expiry. */
    g_assert_cmpint(encore_vip_apply(v, 7, 1, 2, 101, T0 + 10 * DAY_US, &exp), ==, ENCORE_VIP_OK);
    g_assert_cmpint(exp, ==, T0 + 90 * DAY_US);
    /* Higher tier while active: the tier rises at once, the months add to the expiry. */
    g_assert_cmpint(encore_vip_apply(v, 7, 3, 1, 102, T0 + 20 * DAY_US, &exp), ==, ENCORE_VIP_OK);
    g_assert_cmpint(exp, ==, T0 + 120 * DAY_US);
    assert_status(v, 7, T0 + 20 * DAY_US, 3, T0 + 120 * DAY_US);
    /* Lower tier while active (a race): the higher tier stays, the time is added. */
    g_assert_cmpint(encore_vip_apply(v, 7, 2, 1, 103, T0 + 21 * DAY_US, &exp), ==, ENCORE_VIP_OK);
    g_assert_cmpint(exp, ==, T0 + 150 * DAY_US);
    assert_status(v, 7, T0 + 21 * DAY_US, 3, T0 + 150 * DAY_US);
    /* Bought exactly at expiry: not active any more, so from now, at the tier bought. */
    int64_t end = T0 + 150 * DAY_US;
    g_assert_cmpint(encore_vip_apply(v, 7, 1, 1, 104, end, &exp), ==, ENCORE_VIP_OK);
    g_assert_cmpint(exp, ==, end + 30 * DAY_US);
    assert_status(v, 7, end, 1, end + 30 * DAY_US);
    /* One microsecond before expiry: extends. */
    g_assert_cmpint(encore_vip_apply(v, 7, 1, 1, 105, end + 30 * DAY_US - 1, &exp), ==,
                    ENCORE_VIP_OK);
    g_assert_cmpint(exp, ==, end + 60 * DAY_US);
    /* Long after: from now again, a lower tier is fine once expired. */
    g_assert_cmpint(encore_vip_apply(v, 7, 1, 12, 106, end + 400 * DAY_US, &exp), ==,
                    ENCORE_VIP_OK);
    g_assert_cmpint(exp, ==, end + 760 * DAY_US);
    /* Other users are separate. */
    assert_status(v, 8, end, 0, 0);
    encore_vip_free(v);
    encore_vip_free(NULL);
}

static void test_idempotent(void)
{
    encore_vip *v = encore_vip_new(4);
    int64_t exp = 0;
    g_assert_cmpint(encore_vip_apply(v, 7, 2, 1, 10, T0, &exp), ==, ENCORE_VIP_OK);
    exp = 0;
    g_assert_cmpint(encore_vip_apply(v, 7, 2, 1, 10, T0, &exp), ==, ENCORE_VIP_DUPLICATE);
    g_assert_cmpint(exp, ==, T0 + 30 * DAY_US); /* the current expiry */
    /* A duplicate id with other contents is still a duplicate: nothing changes. */
    g_assert_cmpint(encore_vip_apply(v, 8, 3, 12, 10, T0, &exp), ==, ENCORE_VIP_DUPLICATE);
    g_assert_cmpint(exp, ==, 0);
    assert_status(v, 8, T0, 0, 0);
    /* Out of order ids within the window apply once each. */
    g_assert_cmpint(encore_vip_apply(v, 7, 2, 1, 14, T0, NULL), ==, ENCORE_VIP_OK);
    g_assert_cmpint(encore_vip_apply(v, 7, 2, 1, 12, T0, NULL), ==, ENCORE_VIP_OK);
    g_assert_cmpint(encore_vip_apply(v, 7, 2, 1, 12, T0, NULL), ==, ENCORE_VIP_DUPLICATE);
    assert_status(v, 7, T0, 2, T0 + 90 * DAY_US);
    /* A window of 4 ids: adding 17 to 10 12 14 16 forgets 10, the new floor: 10 is stale. 13 is
     * above the floor: new (it pushes 12 out). */
    g_assert_cmpint(encore_vip_apply(v, 9, 1, 1, 16, T0, NULL), ==, ENCORE_VIP_OK);
    g_assert_cmpint(encore_vip_apply(v, 9, 1, 1, 17, T0, NULL), ==, ENCORE_VIP_OK);
    g_assert_cmpint(encore_vip_apply(v, 9, 1, 1, 10, T0, NULL), ==, ENCORE_VIP_STALE);
    g_assert_cmpint(encore_vip_apply(v, 9, 1, 1, 13, T0, NULL), ==, ENCORE_VIP_OK);
    assert_status(v, 9, T0, 1, T0 + 90 * DAY_US);
    /* Invalid input records nothing. */
    g_assert_cmpint(encore_vip_apply(v, 0, 1, 1, 30, T0, NULL), ==, ENCORE_VIP_INVALID);
    g_assert_cmpint(encore_vip_apply(v, 7, 0, 1, 30, T0, NULL), ==, ENCORE_VIP_INVALID);
    g_assert_cmpint(encore_vip_apply(v, 7, 101, 1, 30, T0, NULL), ==, ENCORE_VIP_INVALID);
    g_assert_cmpint(encore_vip_apply(v, 7, 1, 0, 30, T0, NULL), ==, ENCORE_VIP_INVALID);
    g_assert_cmpint(encore_vip_apply(v, 7, 1, 13, 30, T0, NULL), ==, ENCORE_VIP_INVALID);
    g_assert_cmpint(encore_vip_apply(v, 7, 1, 1, 0, T0, NULL), ==, ENCORE_VIP_INVALID);
    g_assert_cmpint(encore_vip_apply(v, 7, 1, 1, 30, -1, NULL), ==, ENCORE_VIP_INVALID);
    g_assert_cmpint(encore_vip_apply(v, 7, 1, 1, 30, T0, NULL), ==, ENCORE_VIP_OK);
    encore_vip_free(v);
}

static void test_cap_and_prune(void)
{
    encore_vip *v = encore_vip_new(0);
    int64_t exp;
    int64_t late = ENCORE_VIP_MAX_EXPIRY_US - 10 * DAY_US;
    g_assert_cmpint(encore_vip_apply(v, 1, 1, 1, 1, late, &exp), ==, ENCORE_VIP_OK);
    g_assert_cmpint(exp, ==, ENCORE_VIP_MAX_EXPIRY_US);
    g_assert_cmpint(encore_vip_apply(v, 1, 1, 12, 2, late, &exp), ==, ENCORE_VIP_OK);
    g_assert_cmpint(exp, ==, ENCORE_VIP_MAX_EXPIRY_US);
    g_assert_cmpint(encore_vip_apply(v, 2, 1, 1, 3, ENCORE_VIP_MAX_EXPIRY_US + 1, NULL), ==,
                    ENCORE_VIP_INVALID);

    /* may_buy: lower tiers only once the higher one is over. */
    g_assert_cmpint(encore_vip_apply(v, 3, 2, 1, 4, T0, NULL), ==, ENCORE_VIP_OK);
    g_assert_cmpint(encore_vip_may_buy(v, 3, 1, T0), ==, ENCORE_VIP_LOWER_TIER);
    g_assert_cmpint(encore_vip_may_buy(v, 3, 2, T0), ==, ENCORE_VIP_OK);
    g_assert_cmpint(encore_vip_may_buy(v, 3, 3, T0), ==, ENCORE_VIP_OK);
    g_assert_cmpint(encore_vip_may_buy(v, 3, 1, T0 + 30 * DAY_US), ==, ENCORE_VIP_OK);
    g_assert_cmpint(encore_vip_may_buy(v, 4, 1, T0), ==, ENCORE_VIP_OK);

    g_assert_cmpint(encore_vip_apply(v, 4, 1, 2, 5, T0, NULL), ==, ENCORE_VIP_OK);
    g_assert_cmpuint(encore_vip_size(v), ==, 3);
    /* At user 3's expiry it goes; user 4 (60 days) and user 1 stay. */
    g_assert_cmpuint(encore_vip_prune(v, T0 + 30 * DAY_US - 1), ==, 0);
    g_assert_cmpuint(encore_vip_prune(v, T0 + 30 * DAY_US), ==, 1);
    g_assert_cmpuint(encore_vip_size(v), ==, 2);
    assert_status(v, 4, T0 + 30 * DAY_US, 1, T0 + 60 * DAY_US);
    encore_vip_free(v);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vip/plan", test_plan);
    g_test_add_func("/vip/record", test_record);
    g_test_add_func("/vip/fold", test_fold);
    g_test_add_func("/vip/idempotent", test_idempotent);
    g_test_add_func("/vip/cap-and-prune", test_cap_and_prune);
    return g_test_run();
}
