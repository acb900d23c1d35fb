/* Unit tests for server/economy/gifts: exact plans (legs, id, canonical metadata) with and
 * without a contract, legs left out for zero parts, every error and its precedence, the
 * overflow bound, a property test over many prices, counts and contracts (legs sum to zero,
 * parts equal encore_split's, the ledger's check passes, the metadata reads back), the strict
 * metadata reader, and combo timing at the window's edges with bounded memory. */
#include <jansson.h>
#include <string.h>

#include <glib.h>

#include "server/economy/gifts.h"
#include "server/economy/split.h"

static encore_catalog *load_text(const char *text)
{
    GKeyFile *kf = g_key_file_new();
    GError *error = NULL;
    g_assert_true(g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_NONE, NULL));
    encore_catalog *c = encore_catalog_load(kf, &error);
    g_assert_no_error(error);
    g_key_file_free(kf);
    return c;
}

/* The metadata is what the ledger stores: compact JSON with sorted keys. */
static void assert_canonical(const char *meta)
{
    json_error_t jerr;
    json_t *root = json_loads(meta, JSON_REJECT_DUPLICATES, &jerr);
    g_assert_nonnull(root);
    char *again = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    g_assert_cmpstr(again, ==, meta);
    free(again);
    json_decref(root);
}

static void assert_leg(const encore_gift_plan *p, size_t i, const char *account, int64_t amount)
{
    g_assert_cmpuint(i, <, p->req.n_legs);
    g_assert_cmpstr(p->req.legs[i].account, ==, account);
    g_assert_cmpint(p->req.legs[i].amount, ==, amount);
}

static void assert_checks(const encore_gift_plan *p)
{
    const char *detail = NULL;
    g_assert_cmpint(encore_transfer_check(&p->req, &detail), ==, ENCORE_LEDGER_OK);
}

static void test_plan_default_share(void)
{
    encore_catalog *c = encore_catalog_new_default();
    encore_gift_plan p;
    encore_gift_order o = {.from = 7,
                           .to = 9,
                           .gift = "microphone",
                           .count = 5,
                           .key = "k-1_A",
                           .room = "lobby",
                           .show = "lobby-3"};
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_OK);
    /* 20 x 5 = 100 at 50%: 50 to the singer, 50 to the platform. */
    g_assert_cmpint(p.total, ==, 100);
    g_assert_cmpint(p.singer_part, ==, 50);
    g_assert_cmpint(p.agent_part, ==, 0);
    g_assert_cmpint(p.platform_part, ==, 50);
    g_assert_cmpint(p.agent, ==, 0);
    g_assert_cmpstr(p.gift->id, ==, "microphone");
    g_assert_cmpstr(p.req.id, ==, "gift:7:k-1_A");
    g_assert_cmpstr(p.req.kind, ==, "gift");
    g_assert_cmpuint(p.req.n_legs, ==, 3);
    assert_leg(&p, 0, "wallet:7", -100);
    assert_leg(&p, 1, "earnings:9", 50);
    assert_leg(&p, 2, "platform:revenue", 50);
    g_assert_cmpstr(p.req.metadata, ==,
                    "{\"agent\":0,\"count\":5,\"from\":7,\"gift\":\"microphone\",\"price\":20,"
                    "\"room\":\"lobby\",\"show\":\"lobby-3\",\"to\":9}");
    assert_canonical(p.req.metadata);
    assert_checks(&p);

    /* 1 coin at 50%: the singer's part is 0 and gets no leg. */
    o.gift = "rose";
    o.count = 1;
    o.show = NULL;
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_OK);
    g_assert_cmpint(p.singer_part, ==, 0);
    g_assert_cmpint(p.platform_part, ==, 1);
    g_assert_cmpuint(p.req.n_legs, ==, 2);
    assert_leg(&p, 0, "wallet:7", -1);
    assert_leg(&p, 1, "platform:revenue", 1);
    g_assert_cmpstr(p.req.metadata, ==,
                    "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"rose\",\"price\":1,"
                    "\"room\":\"lobby\",\"show\":\"\",\"to\":9}");
    assert_checks(&p);
    /* 3 roses: 1 to the singer (1.5 floored), 2 to the platform. */
    o.count = 3;
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_OK);
    assert_leg(&p, 1, "earnings:9", 1);
    assert_leg(&p, 2, "platform:revenue", 2);
    encore_catalog_free(c);
}

static void test_plan_contract(void)
{
    encore_catalog *c = encore_catalog_new_default();
    encore_gift_contract k = {.agent = 12, .singer_bp = 6000, .agent_bp = 2000};
    encore_gift_plan p;
    encore_gift_order o = {.from = 7,
                           .to = 9,
                           .contract = &k,
                           .gift = "fireworks",
                           .count = 3,
                           .key = "abc",
                           .room = "r1",
                           .show = "r1-1"};
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_OK);
    /* 564 coins: singer floor(338.4) = 338, agent floor(112.8) = 112, platform 114. */
    g_assert_cmpint(p.total, ==, 564);
    g_assert_cmpuint(p.req.n_legs, ==, 4);
    assert_leg(&p, 0, "wallet:7", -564);
    assert_leg(&p, 1, "earnings:9", 338);
    assert_leg(&p, 2, "earnings:12", 112);
    assert_leg(&p, 3, "platform:revenue", 114);
    g_assert_cmpint(p.agent, ==, 12);
    g_assert_cmpstr(p.req.metadata, ==,
                    "{\"agent\":12,\"count\":3,\"from\":7,\"gift\":\"fireworks\",\"price\":188,"
                    "\"room\":\"r1\",\"show\":\"r1-1\",\"to\":9}");
    assert_checks(&p);

    /* Everything to singer and agent: no platform leg. */
    k.singer_bp = 5000;
    k.agent_bp = 5000;
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_OK);
    g_assert_cmpuint(p.req.n_legs, ==, 3);
    assert_leg(&p, 1, "earnings:9", 282);
    assert_leg(&p, 2, "earnings:12", 282);
    assert_checks(&p);
    /* ...but the rounding remainders still go to the platform: 394.8 + 169.2 -> 394 + 169 + 1. */
    k.singer_bp = 7000;
    k.agent_bp = 3000;
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_OK);
    g_assert_cmpuint(p.req.n_legs, ==, 4);
    assert_leg(&p, 1, "earnings:9", 394);
    assert_leg(&p, 2, "earnings:12", 169);
    assert_leg(&p, 3, "platform:revenue", 1);

    /* An agent with no share: no agent leg, the agent still named in the metadata. */
    k.singer_bp = 5000;
    k.agent_bp = 0;
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_OK);
    g_assert_cmpuint(p.req.n_legs, ==, 3);
    assert_leg(&p, 1, "earnings:9", 282);
    assert_leg(&p, 2, "platform:revenue", 282);
    g_assert_true(g_str_has_prefix(p.req.metadata, "{\"agent\":12,"));

    /* The sender may be the singer's agent (different accounts). */
    k.agent_bp = 1000;
    o.from = 12;
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_OK);
    assert_leg(&p, 0, "wallet:12", -564);
    assert_leg(&p, 2, "earnings:12", 56);
    assert_checks(&p);
    encore_catalog_free(c);
}

static void test_plan_errors(void)
{
    encore_catalog *c = encore_catalog_new_default();
    encore_gift_contract k = {.agent = 12, .singer_bp = 6000, .agent_bp = 2000};
    encore_gift_plan p;
    const encore_gift_order good = {.from = 7,
                                    .to = 9,
                                    .contract = &k,
                                    .gift = "rose",
                                    .count = 1,
                                    .key = "k",
                                    .room = "lobby",
                                    .show = "s"};
    encore_gift_order o = good;
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_OK);

#define EXPECT(field, value, status)                                                               \
    do {                                                                                           \
        o = good;                                                                                  \
        o.field = value;                                                                           \
        g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, status);                                 \
    } while (0)
    EXPECT(from, 0, ENCORE_GIFTS_INVALID);
    EXPECT(to, -1, ENCORE_GIFTS_INVALID);
    EXPECT(room, NULL, ENCORE_GIFTS_INVALID);
    EXPECT(room, "", ENCORE_GIFTS_INVALID);
    EXPECT(room, "a b", ENCORE_GIFTS_INVALID);
    EXPECT(room, "0123456789012345678901234567890123456789012345678901234567890123",
           ENCORE_GIFTS_OK);
    EXPECT(room, "01234567890123456789012345678901234567890123456789012345678901234",
           ENCORE_GIFTS_INVALID);
    EXPECT(show, "a\"b", ENCORE_GIFTS_INVALID);
    EXPECT(show, "lobby.3:x", ENCORE_GIFTS_OK);
    EXPECT(key, NULL, ENCORE_GIFTS_BAD_KEY);
    EXPECT(key, "", ENCORE_GIFTS_BAD_KEY);
    EXPECT(key, "a.b", ENCORE_GIFTS_BAD_KEY);
    EXPECT(key, "a:b", ENCORE_GIFTS_BAD_KEY);
    EXPECT(key, "0123456789012345678901234567890123456789012345678901234567890123",
           ENCORE_GIFTS_OK);
    EXPECT(key, "01234567890123456789012345678901234567890123456789012345678901234",
           ENCORE_GIFTS_BAD_KEY);
    EXPECT(to, 7, ENCORE_GIFTS_SELF_GIFT);
    EXPECT(gift, "tulip", ENCORE_GIFTS_UNKNOWN_GIFT);
    EXPECT(gift, NULL, ENCORE_GIFTS_UNKNOWN_GIFT);
    EXPECT(count, 0, ENCORE_GIFTS_BAD_COUNT);
    EXPECT(count, -5, ENCORE_GIFTS_BAD_COUNT);
    EXPECT(count, 9999, ENCORE_GIFTS_OK);
    EXPECT(count, 10000, ENCORE_GIFTS_BAD_COUNT);
    /* Precedence: INVALID, BAD_KEY, SELF_GIFT, UNKNOWN_GIFT, BAD_COUNT. */
    o = good;
    o.to = 7;
    o.key = "";
    o.gift = "x";
    o.count = 0;
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_BAD_KEY);
    o.key = "k";
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_SELF_GIFT);
    o.to = 9;
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_UNKNOWN_GIFT);
    o.gift = "rose";
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_BAD_COUNT);
    o.room = NULL;
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_INVALID);

    /* Contracts the server should never pass. */
    o = good;
    k = (encore_gift_contract){12, 9000, 1001};
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_INVALID);
    k = (encore_gift_contract){0, 5000, 1};
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_INVALID);
    k = (encore_gift_contract){9, 5000, 1000}; /* the agent is the singer */
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_INVALID);
    k = (encore_gift_contract){-1, 5000, 0};
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_INVALID);
    k = (encore_gift_contract){UINT32_MAX, UINT32_MAX, 1};
    k.agent = 12;
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_INVALID);
#undef EXPECT

    static const char *const names[] = {"ok",           "invalid_request", "bad_key",
                                        "self_gift",    "unknown_gift",    "bad_count",
                                        "too_expensive"};
    for (int i = 0; i < (int)G_N_ELEMENTS(names); i++)
        g_assert_cmpstr(encore_gifts_status_name((encore_gifts_status)i), ==, names[i]);
    g_assert_null(encore_gifts_status_name((encore_gifts_status)G_N_ELEMENTS(names)));
    encore_catalog_free(c);
}

static void test_too_expensive(void)
{
    encore_catalog *c = load_text("[economy]\nmax_gift_price = 1000000000000\nmax_count = 100000\n"
                                  "[gift.planet]\nname=Planet\nprice=1000000000000\n"
                                  "animation=orbit\ntier=5\n");
    encore_gift_plan p;
    encore_gift_order o = {
        .from = 1, .to = 2, .gift = "planet", .count = 1000, .key = "k", .room = "r"};
    /* 10^12 x 1000 = 10^15: exactly the ledger's bound. */
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_OK);
    g_assert_cmpint(p.total, ==, ENCORE_LEDGER_MAX_AMOUNT);
    assert_checks(&p);
    o.count = 1001;
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_TOO_EXPENSIVE);
    o.count = 100000;
    g_assert_cmpint(encore_gifts_plan(c, &o, &p), ==, ENCORE_GIFTS_TOO_EXPENSIVE);
    encore_catalog_free(c);
}

/* The plan against encore_split and the ledger's rules for many prices, counts and contracts. */
static void test_plan_property(void)
{
    static const uint32_t contracts[][2] = {
        {0, 0},       {10000, 0},   {0, 10000},   {5000, 5000}, {5000, 2000}, {7000, 1000},
        {6000, 1500}, {4000, 0},    {3333, 3333}, {6667, 3333}, {1, 1},       {9999, 1},
        {1234, 5678}, {4999, 5000}, {8000, 2000}, {3000, 3000}, {5000, 0},
    };
    GString *ini = g_string_new("[economy]\nmax_gift_price = 1000000000000\n"
                                "max_count = 100000\n");
    static const int64_t prices[] = {1,    2,    3,    5,     7,       9,        10,
                                     13,   52,   99,   100,   188,     520,      1314,
                                     1999, 2000, 9973, 65537, 1000003, 99999989, 1000000000000};
    for (size_t i = 0; i < G_N_ELEMENTS(prices); i++)
        g_string_append_printf(
            ini, "[gift.g%zu]\nname=G\nprice=%" G_GINT64_FORMAT "\nanimation=a\ntier=1\n", i,
            prices[i]);
    encore_catalog *c = load_text(ini->str);
    g_string_free(ini, TRUE);
    GRand *r = g_rand_new_with_seed(20261126);
    unsigned checked = 0;
    for (size_t gi = 0; gi < G_N_ELEMENTS(prices); gi++) {
        char gift[16];
        g_snprintf(gift, sizeof gift, "g%zu", gi);
        for (size_t ci = 0; ci < G_N_ELEMENTS(contracts) + 1; ci++) {
            for (int round = 0; round < 60; round++) {
                int64_t count = round < 10 ? round + 1 : g_rand_int_range(r, 1, 100001);
                encore_gift_contract k = {0, 0, 0};
                bool none = ci == G_N_ELEMENTS(contracts);
                if (!none) {
                    k.singer_bp = contracts[ci][0];
                    k.agent_bp = contracts[ci][1];
                    k.agent = k.agent_bp || (round & 1) ? 30 + round : 0;
                }
                encore_gift_order o = {.from = 1 + round,
                                       .to = 1000 + (int64_t)gi,
                                       .contract = none ? NULL : &k,
                                       .gift = gift,
                                       .count = count,
                                       .key = "prop",
                                       .room = "room",
                                       .show = "room-1"};
                encore_gift_plan p;
                encore_gifts_status st = encore_gifts_plan(c, &o, &p);
                if (prices[gi] > ENCORE_LEDGER_MAX_AMOUNT / count) {
                    g_assert_cmpint(st, ==, ENCORE_GIFTS_TOO_EXPENSIVE);
                    continue;
                }
                g_assert_cmpint(st, ==, ENCORE_GIFTS_OK);
                int64_t total = prices[gi] * count, s, a, pl;
                uint32_t sbp = none ? 5000 : k.singer_bp, abp = none ? 0 : k.agent_bp;
                g_assert_cmpint(encore_split(total, sbp, abp, &s, &a, &pl), ==, 0);
                g_assert_cmpint(p.total, ==, total);
                g_assert_cmpint(p.singer_part, ==, s);
                g_assert_cmpint(p.agent_part, ==, a);
                g_assert_cmpint(p.platform_part, ==, pl);
                /* Legs: the sender pays the total, zero parts have no leg, sum is zero. */
                int64_t sum = 0;
                size_t expect_legs = 1 + (s > 0) + (a > 0) + (pl > 0);
                g_assert_cmpuint(p.req.n_legs, ==, expect_legs);
                g_assert_cmpint(p.req.legs[0].amount, ==, -total);
                for (size_t l = 0; l < p.req.n_legs; l++) {
                    sum += p.req.legs[l].amount;
                    if (l > 0)
                        g_assert_cmpint(p.req.legs[l].amount, >, 0);
                }
                g_assert_cmpint(sum, ==, 0);
                assert_checks(&p);
                /* The metadata reads back to the order. */
                encore_gift_record rec;
                g_assert_cmpint(encore_gift_record_from_metadata((const uint8_t *)p.metadata,
                                                                 strlen(p.metadata), &rec),
                                ==, 0);
                g_assert_cmpint(rec.from, ==, o.from);
                g_assert_cmpint(rec.to, ==, o.to);
                g_assert_cmpint(rec.agent, ==, k.agent);
                g_assert_cmpint(rec.count, ==, count);
                g_assert_cmpint(rec.price, ==, prices[gi]);
                g_assert_cmpstr(rec.gift, ==, gift);
                g_assert_cmpstr(rec.room, ==, "room");
                g_assert_cmpstr(rec.show, ==, "room-1");
                checked++;
            }
        }
    }
    g_test_message("%u plans checked", checked);
    g_assert_cmpuint(checked, >, 15000);
    g_rand_free(r);
    encore_catalog_free(c);
}

static int parse(const char *text, encore_gift_record *rec)
{
    return encore_gift_record_from_metadata((const uint8_t *)text, strlen(text), rec);
}

static void test_record(void)
{
    encore_gift_record rec;
    g_assert_cmpint(parse("{\"agent\":12,\"count\":3,\"from\":7,\"gift\":\"fireworks\","
                          "\"price\":188,\"room\":\"r1\",\"show\":\"r1-1\",\"to\":9}",
                          &rec),
                    ==, 0);
    g_assert_cmpint(rec.from, ==, 7);
    g_assert_cmpint(rec.to, ==, 9);
    g_assert_cmpint(rec.agent, ==, 12);
    g_assert_cmpint(rec.count, ==, 3);
    g_assert_cmpint(rec.price, ==, 188);
    g_assert_cmpstr(rec.gift, ==, "fireworks");
    g_assert_cmpstr(rec.room, ==, "r1");
    g_assert_cmpstr(rec.show, ==, "r1-1");
    /* Any member order, whitespace, unknown members ignored. */
    g_assert_cmpint(parse(" { \"to\" : 9 , \"show\":\"\",\"room\":\"r\",\"price\":1,\"gift\":"
                          "\"rose\",\"from\":7,\"count\":1,\"combo\":5,\"note\":\"x\","
                          "\"agent\":0 } \n",
                          &rec),
                    ==, 0);
    g_assert_cmpstr(rec.show, ==, "");
    g_assert_cmpint(rec.agent, ==, 0);
    /* The largest product. */
    g_assert_cmpint(parse("{\"agent\":0,\"count\":1000,\"from\":1,\"gift\":\"g\","
                          "\"price\":1000000000000,\"room\":\"r\",\"show\":\"\",\"to\":2}",
                          &rec),
                    ==, 0);

    static const char *const bad[] = {
        "",
        "{}",
        "[]",
        "null",
        /* a member missing (to) */
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\"}",
        /* duplicate from */
        "{\"agent\":0,\"count\":1,\"from\":7,\"from\":8,\"gift\":\"rose\",\"price\":1,"
        "\"room\":\"r\",\"show\":\"\",\"to\":9}",
        /* wrong types */
        "{\"agent\":0,\"count\":\"1\",\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":5,\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":null,\"to\":9}",
        /* ranges */
        "{\"agent\":0,\"count\":0,\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":0,\"count\":100001,\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":0,\"count\":1,\"from\":0,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":-1,\"count\":1,\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"rose\",\"price\":0,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":0,\"count\":1001,\"from\":7,\"gift\":\"rose\",\"price\":1000000000000,"
        "\"room\":\"r\",\"show\":\"\",\"to\":9}",
        /* self gift, agent is the singer */
        "{\"agent\":0,\"count\":1,\"from\":9,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":9,\"count\":1,\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}",
        /* character sets and lengths */
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"Rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"abcdefghijklmnopqrstuvwxyz0123456\","
        "\"price\":1,\"room\":\"r\",\"show\":\"\",\"to\":9}",
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"a.b\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"a b\",\"to\":9}",
        /* JSON outside the reader's subset */
        "{\"agent\":0,\"count\":1.0,\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"ro\\u0073e\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}",
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9,\"x\":{}}",
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":9}x",
        "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"rose\",\"price\":1,\"room\":\"r\","
        "\"show\":\"\",\"to\":99999999999999999999}",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        memset(&rec, 0x5A, sizeof rec);
        if (parse(bad[i], &rec) != ENCORE_GIFTS_EMETADATA)
            g_error("accepted bad metadata %zu: %s", i, bad[i]);
        g_assert_cmpint(rec.from, ==, 0); /* zeroed */
        g_assert_cmpint(rec.gift[0], ==, 0);
    }
    /* The length bound and the explicit length (no NUL needed). */
    const char *ok = "{\"agent\":0,\"count\":1,\"from\":7,\"gift\":\"rose\",\"price\":1,"
                     "\"room\":\"r\",\"show\":\"\",\"to\":9}";
    g_assert_cmpint(encore_gift_record_from_metadata((const uint8_t *)ok, strlen(ok) - 1, &rec), ==,
                    ENCORE_GIFTS_EMETADATA);
    g_assert_cmpint(encore_gift_record_from_metadata(NULL, 0, &rec), ==, ENCORE_GIFTS_EMETADATA);
    char *big = g_strnfill(ENCORE_LEDGER_METADATA_MAX + 1, ' ');
    memcpy(big, ok, strlen(ok));
    g_assert_cmpint(
        encore_gift_record_from_metadata((const uint8_t *)big, ENCORE_LEDGER_METADATA_MAX, &rec),
        ==, 0);
    g_assert_cmpint(encore_gift_record_from_metadata((const uint8_t *)big,
                                                     ENCORE_LEDGER_METADATA_MAX + 1, &rec),
                    ==, ENCORE_GIFTS_EMETADATA);
    g_free(big);
}

static void test_combo_timing(void)
{
    encore_gifts_combo *t = encore_gifts_combo_new(3000, 0);
    g_assert_cmpint(encore_gifts_combo_hit(t, 7, 9, "rose", 5, 1000), ==, 5);
    /* Exactly the window after the previous hit still counts up. */
    g_assert_cmpint(encore_gifts_combo_hit(t, 7, 9, "rose", 5, 4000), ==, 10);
    /* The window runs from the latest hit, not the first. */
    g_assert_cmpint(encore_gifts_combo_hit(t, 7, 9, "rose", 1, 7000), ==, 11);
    /* One millisecond past the window starts over at the count. */
    g_assert_cmpint(encore_gifts_combo_hit(t, 7, 9, "rose", 2, 10001), ==, 2);
    g_assert_cmpint(encore_gifts_combo_hit(t, 7, 9, "rose", 3, 10001), ==, 5);
    /* Another gift, singer or sender is another combo. */
    g_assert_cmpint(encore_gifts_combo_hit(t, 7, 9, "cake", 1, 10002), ==, 1);
    g_assert_cmpint(encore_gifts_combo_hit(t, 7, 10, "rose", 1, 10002), ==, 1);
    g_assert_cmpint(encore_gifts_combo_hit(t, 8, 9, "rose", 1, 10002), ==, 1);
    g_assert_cmpint(encore_gifts_combo_hit(t, 7, 9, "rose", 1, 10003), ==, 6);
    g_assert_cmpuint(encore_gifts_combo_size(t), ==, 4);
    /* Idle entries go at the next hit: at 13003 the three hit at 10002 have been idle 3001 ms. */
    g_assert_cmpint(encore_gifts_combo_hit(t, 1, 2, "rose", 1, 13003), ==, 1);
    g_assert_cmpuint(encore_gifts_combo_size(t), ==, 2); /* 7->9 rose (10003) and 1->2 */
    g_assert_cmpint(encore_gifts_combo_hit(t, 7, 9, "rose", 1, 13003), ==, 7);
    g_assert_cmpint(encore_gifts_combo_hit(t, 1, 2, "rose", 1, 20000), ==, 1);
    g_assert_cmpuint(encore_gifts_combo_size(t), ==, 1);
    /* Bad hits record nothing. */
    g_assert_cmpint(encore_gifts_combo_hit(t, 1, 2, "rose", 0, 20001), ==, 0);
    g_assert_cmpint(encore_gifts_combo_hit(t, 1, 2, NULL, 1, 20001), ==, 0);
    g_assert_cmpint(encore_gifts_combo_hit(t, 1, 2, "abcdefghijklmnopqrstuvwxyz0123456", 1, 20001),
                    ==, 0);
    g_assert_cmpint(encore_gifts_combo_hit(t, 1, 2, "rose", 1, 20001), ==, 2);
    encore_gifts_combo_free(t);
    encore_gifts_combo_free(NULL);

    /* Window 0: no combos. */
    t = encore_gifts_combo_new(0, 0);
    g_assert_cmpint(encore_gifts_combo_hit(t, 7, 9, "rose", 5, 1000), ==, 5);
    g_assert_cmpint(encore_gifts_combo_hit(t, 7, 9, "rose", 5, 1000), ==, 5);
    g_assert_cmpuint(encore_gifts_combo_size(t), ==, 0);
    encore_gifts_combo_free(t);
}

static void test_combo_bounded(void)
{
    encore_gifts_combo *t = encore_gifts_combo_new(3000, 100);
    /* 1000 senders within the window: never more than 100 entries, the idlest go first. */
    for (int64_t u = 1; u <= 1000; u++)
        g_assert_cmpint(encore_gifts_combo_hit(t, u, 9, "rose", 1, 5000 + u), ==, 1);
    g_assert_cmpuint(encore_gifts_combo_size(t), ==, 100);
    g_assert_cmpint(encore_gifts_combo_hit(t, 1000, 9, "rose", 1, 6001), ==, 2); /* kept */
    g_assert_cmpint(encore_gifts_combo_hit(t, 1, 9, "rose", 1, 6001), ==, 1);    /* evicted */
    g_assert_cmpuint(encore_gifts_combo_size(t), ==, 100);
    /* A steady stream: entries expire, memory stays at those active in the last 3 s. */
    for (int64_t i = 0; i < 100000; i++)
        (void)encore_gifts_combo_hit(t, 5000 + i, 9, "rose", 1, 100000 + i * 1000);
    g_assert_cmpuint(encore_gifts_combo_size(t), ==, 4);
    encore_gifts_combo_free(t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/gifts/plan/default-share", test_plan_default_share);
    g_test_add_func("/gifts/plan/contract", test_plan_contract);
    g_test_add_func("/gifts/plan/errors", test_plan_errors);
    g_test_add_func("/gifts/plan/too-expensive", test_too_expensive);
    g_test_add_func("/gifts/plan/property", test_plan_property);
    g_test_add_func("/gifts/record", test_record);
    g_test_add_func("/gifts/combo/timing", test_combo_timing);
    g_test_add_func("/gifts/combo/bounded", test_combo_bounded);
    return g_test_run();
}
