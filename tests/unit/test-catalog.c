/* Unit tests for server/economy/catalog: the built-in catalog exactly, a full key file (values,
 * order, unknown groups ignored), defaults filling in for missing sections, every parse error
 * with its exact message, the top-up rate (fractions, currencies, digits, range) and the JSON of
 * GET /api/catalog byte for byte. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "server/economy/catalog.h"
#include "server/economy/ledger.h"

/* Loads `text` as a key file and then as a catalog. */
static encore_catalog *load_text(const char *text, GError **error)
{
    GKeyFile *kf = g_key_file_new();
    GError *e = NULL;
    if (!g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_NONE, &e))
        g_error("test key file does not parse: %s", e->message);
    encore_catalog *c = encore_catalog_load(kf, error);
    g_key_file_free(kf);
    return c;
}

static void test_default(void)
{
    encore_catalog *c = encore_catalog_new_default();
    const encore_catalog_settings *s = encore_catalog_get_settings(c);
    g_assert_cmpstr(s->currency, ==, "CNY");
    g_assert_cmpint(s->currency_digits, ==, 2);
    g_assert_cmpint(s->coins_per_unit, ==, 10);
    g_assert_cmpint(s->max_gift_price, ==, 2000);
    g_assert_cmpint(s->daily_cap, ==, 100000);
    g_assert_cmpuint(s->singer_bp, ==, 5000);
    g_assert_cmpint(s->combo_window_ms, ==, 3000);
    g_assert_cmpint(s->max_count, ==, 9999);

    static const struct {
        const char *id, *name;
        int64_t price;
        const char *animation;
        int tier;
    } gifts[] = {
        {"rose", "Rose", 1, "petals", 1},
        {"applause", "Applause", 5, "clap", 1},
        {"microphone", "Golden Mic", 20, "sparkle", 2},
        {"cake", "Cake", 52, "candles", 2},
        {"fireworks", "Fireworks", 188, "fireworks", 3},
        {"sports_car", "Sports Car", 520, "car", 4},
        {"yacht", "Yacht", 1314, "waves", 4},
        {"rocket", "Rocket", 2000, "launch", 5},
    };
    g_assert_cmpuint(encore_catalog_gift_count(c), ==, G_N_ELEMENTS(gifts));
    for (size_t i = 0; i < G_N_ELEMENTS(gifts); i++) {
        const encore_catalog_gift *g = encore_catalog_gift_at(c, i);
        g_assert_cmpstr(g->id, ==, gifts[i].id);
        g_assert_cmpstr(g->name, ==, gifts[i].name);
        g_assert_cmpint(g->price, ==, gifts[i].price);
        g_assert_cmpstr(g->animation, ==, gifts[i].animation);
        g_assert_cmpint(g->tier, ==, gifts[i].tier);
        g_assert_true(encore_catalog_gift_find(c, gifts[i].id) == g);
    }
    g_assert_null(encore_catalog_gift_at(c, G_N_ELEMENTS(gifts)));
    g_assert_null(encore_catalog_gift_find(c, "Rose"));
    g_assert_null(encore_catalog_gift_find(c, ""));
    g_assert_null(encore_catalog_gift_find(c, NULL));

    g_assert_cmpuint(encore_catalog_vip_count(c), ==, 3);
    const encore_catalog_vip *v = encore_catalog_vip_at(c, 0);
    g_assert_cmpstr(v->id, ==, "silver");
    g_assert_cmpstr(v->name, ==, "Silver");
    g_assert_cmpint(v->price_per_month, ==, 300);
    g_assert_cmpint(v->rank, ==, 1);
    v = encore_catalog_vip_find(c, "gold");
    g_assert_nonnull(v);
    g_assert_cmpint(v->price_per_month, ==, 800);
    g_assert_cmpint(v->rank, ==, 2);
    g_assert_true(encore_catalog_vip_find_rank(c, 3) == encore_catalog_vip_at(c, 2));
    g_assert_cmpstr(encore_catalog_vip_at(c, 2)->id, ==, "diamond");
    g_assert_cmpint(encore_catalog_vip_at(c, 2)->price_per_month, ==, 2000);
    g_assert_null(encore_catalog_vip_find_rank(c, 4));
    g_assert_null(encore_catalog_vip_find(c, "platinum"));
    g_assert_null(encore_catalog_vip_at(c, 3));
    encore_catalog_free(c);
    encore_catalog_free(NULL);
}

static const char full_ini[] = "[server]\n"
                               "listen = 127.0.0.1:8080\n"
                               "[economy]\n"
                               "currency = USD\n"
                               "coins_per_unit = 100\n"
                               "max_gift_price = 5000\n"
                               "daily_cap = 0\n"
                               "singer_bp = 7000\n"
                               "combo_window_ms = 1500\n"
                               "max_count = 99\n"
                               "[gift.star]\n"
                               "name = Étoile ✨\n"
                               "price = 10\n"
                               "animation = twinkle\n"
                               "tier = 2\n"
                               "[gift.kiss]\n"
                               "name = Kiss\n"
                               "price = 10\n"
                               "animation = lips\n"
                               "tier = 1\n"
                               "[gift.crown]\n"
                               "name = Crown\n"
                               "price = 5000\n"
                               "animation = crown-drop\n"
                               "tier = 5\n"
                               "[vip.vip2]\n"
                               "name = Two\n"
                               "price_per_month = 900\n"
                               "rank = 7\n"
                               "[vip.vip1]\n"
                               "name = One\n"
                               "price_per_month = 100\n"
                               "rank = 3\n"
                               "[provider.sandbox]\n"
                               "secret = x\n";

static void test_full_file(void)
{
    GError *error = NULL;
    encore_catalog *c = load_text(full_ini, &error);
    g_assert_no_error(error);
    const encore_catalog_settings *s = encore_catalog_get_settings(c);
    g_assert_cmpstr(s->currency, ==, "USD");
    g_assert_cmpint(s->currency_digits, ==, 2);
    g_assert_cmpint(s->coins_per_unit, ==, 100);
    g_assert_cmpint(s->max_gift_price, ==, 5000);
    g_assert_cmpint(s->daily_cap, ==, 0);
    g_assert_cmpuint(s->singer_bp, ==, 7000);
    g_assert_cmpint(s->combo_window_ms, ==, 1500);
    g_assert_cmpint(s->max_count, ==, 99);
    /* Sorted by price, then id; only the configured gifts. */
    g_assert_cmpuint(encore_catalog_gift_count(c), ==, 3);
    g_assert_cmpstr(encore_catalog_gift_at(c, 0)->id, ==, "kiss");
    g_assert_cmpstr(encore_catalog_gift_at(c, 1)->id, ==, "star");
    g_assert_cmpstr(encore_catalog_gift_at(c, 1)->name, ==, "Étoile ✨");
    g_assert_cmpint(encore_catalog_gift_at(c, 1)->tier, ==, 2);
    g_assert_cmpstr(encore_catalog_gift_at(c, 2)->id, ==, "crown");
    g_assert_cmpstr(encore_catalog_gift_at(c, 2)->animation, ==, "crown-drop");
    g_assert_cmpint(encore_catalog_gift_at(c, 2)->price, ==, 5000);
    g_assert_null(encore_catalog_gift_find(c, "rose"));
    /* Sorted by rank. */
    g_assert_cmpuint(encore_catalog_vip_count(c), ==, 2);
    g_assert_cmpstr(encore_catalog_vip_at(c, 0)->id, ==, "vip1");
    g_assert_cmpint(encore_catalog_vip_at(c, 0)->rank, ==, 3);
    g_assert_cmpstr(encore_catalog_vip_at(c, 1)->name, ==, "Two");
    g_assert_cmpint(encore_catalog_vip_at(c, 1)->price_per_month, ==, 900);
    g_assert_null(encore_catalog_vip_find(c, "silver"));
    encore_catalog_free(c);
}

static void test_defaults_fill_in(void)
{
    GError *error = NULL;
    /* An empty file is the built-in catalog. */
    encore_catalog *c = load_text("", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(encore_catalog_gift_count(c), ==, 8);
    g_assert_cmpuint(encore_catalog_vip_count(c), ==, 3);
    g_assert_cmpint(encore_catalog_get_settings(c)->max_gift_price, ==, 2000);
    encore_catalog_free(c);

    /* max_gift_price follows coins_per_unit (200 major units) unless set. */
    c = load_text("[economy]\ncoins_per_unit = 1\n", &error);
    g_assert_no_error(error);
    g_assert_cmpint(encore_catalog_get_settings(c)->max_gift_price, ==, 200);
    /* Built-in gifts over it are left out: rose 1, applause 5, microphone 20, cake 52, fireworks
     * 188. */
    g_assert_cmpuint(encore_catalog_gift_count(c), ==, 5);
    g_assert_cmpstr(encore_catalog_gift_at(c, 4)->id, ==, "fireworks");
    g_assert_null(encore_catalog_gift_find(c, "sports_car"));
    encore_catalog_free(c);

    /* Gifts configured, tiers built in; currency digits from the table and overridable. */
    c = load_text("[economy]\ncurrency = JPY\n[gift.a]\nname=A\nprice=1\nanimation=x\ntier=1\n",
                  &error);
    g_assert_no_error(error);
    g_assert_cmpint(encore_catalog_get_settings(c)->currency_digits, ==, 0);
    g_assert_cmpuint(encore_catalog_gift_count(c), ==, 1);
    g_assert_cmpuint(encore_catalog_vip_count(c), ==, 3);
    encore_catalog_free(c);
    c = load_text("[economy]\ncurrency = KWD\n", &error);
    g_assert_no_error(error);
    g_assert_cmpint(encore_catalog_get_settings(c)->currency_digits, ==, 3);
    encore_catalog_free(c);
    c = load_text("[economy]\ncurrency = KWD\ncurrency_digits = 2\n", &error);
    g_assert_no_error(error);
    g_assert_cmpint(encore_catalog_get_settings(c)->currency_digits, ==, 2);
    encore_catalog_free(c);
}

static void test_errors(void)
{
    static const struct {
        const char *ini;
        int code;
        const char *message;
    } cases[] = {
        {"[economy]\ncurrency = cny\n", ENCORE_CATALOG_ERROR_INVALID,
         "[economy] currency: \"cny\" is not 3 upper-case letters"},
        {"[economy]\ncurrency = EURO\n", ENCORE_CATALOG_ERROR_INVALID,
         "[economy] currency: \"EURO\" is not 3 upper-case letters"},
        {"[economy]\ncoins_per_unit = 0\n", ENCORE_CATALOG_ERROR_INVALID,
         "[economy] coins_per_unit: 0 is out of range 1..1000000"},
        {"[economy]\ncoins_per_unit = ten\n", ENCORE_CATALOG_ERROR_INVALID,
         "[economy] coins_per_unit: \"ten\" is not an integer"},
        {"[economy]\ncoins_per_unit = 10.5\n", ENCORE_CATALOG_ERROR_INVALID,
         "[economy] coins_per_unit: \"10.5\" is not an integer"},
        {"[economy]\nsinger_bp = 10001\n", ENCORE_CATALOG_ERROR_INVALID,
         "[economy] singer_bp: 10001 is out of range 0..10000"},
        {"[economy]\nsinger_bp = -1\n", ENCORE_CATALOG_ERROR_INVALID,
         "[economy] singer_bp: -1 is out of range 0..10000"},
        {"[economy]\ndaily_cap = 1000000000000001\n", ENCORE_CATALOG_ERROR_INVALID,
         "[economy] daily_cap: 1000000000000001 is out of range 0..1000000000000000"},
        {"[economy]\nmax_count = 0\n", ENCORE_CATALOG_ERROR_INVALID,
         "[economy] max_count: 0 is out of range 1..100000"},
        {"[economy]\ncombo_window_ms = 60001\n", ENCORE_CATALOG_ERROR_INVALID,
         "[economy] combo_window_ms: 60001 is out of range 0..60000"},
        {"[economy]\ncurrency_digits = 5\n", ENCORE_CATALOG_ERROR_INVALID,
         "[economy] currency_digits: 5 is out of range 0..4"},
        {"[economy]\nmax_gift = 5\n", ENCORE_CATALOG_ERROR_INVALID,
         "[economy] max_gift: unknown key"},
        {"[gift.rose]\nname=Rose\nprice=2001\nanimation=petals\ntier=1\n",
         ENCORE_CATALOG_ERROR_INVALID, "[gift.rose] price: 2001 is out of range 1..2000"},
        {"[gift.rose]\nname=Rose\nprice=0\nanimation=petals\ntier=1\n",
         ENCORE_CATALOG_ERROR_INVALID, "[gift.rose] price: 0 is out of range 1..2000"},
        {"[gift.rose]\nname=Rose\nanimation=petals\ntier=1\n", ENCORE_CATALOG_ERROR_MISSING,
         "[gift.rose] price: missing"},
        {"[gift.rose]\nprice=1\nanimation=petals\ntier=1\n", ENCORE_CATALOG_ERROR_MISSING,
         "[gift.rose] name: missing"},
        {"[gift.rose]\nname=Rose\nprice=1\ntier=1\n", ENCORE_CATALOG_ERROR_MISSING,
         "[gift.rose] animation: missing"},
        {"[gift.rose]\nname=Rose\nprice=1\nanimation=petals\n", ENCORE_CATALOG_ERROR_MISSING,
         "[gift.rose] tier: missing"},
        {"[gift.rose]\nname=Rose\nprice=1\nanimation=petals\ntier=6\n",
         ENCORE_CATALOG_ERROR_INVALID, "[gift.rose] tier: 6 is out of range 1..5"},
        {"[gift.rose]\nname=Rose\nprice=1\nanimation=Petals\ntier=1\n",
         ENCORE_CATALOG_ERROR_INVALID,
         "[gift.rose] animation: \"Petals\" is not 1-32 characters [a-z0-9_-]"},
        {"[gift.rose]\nname=\nprice=1\nanimation=petals\ntier=1\n", ENCORE_CATALOG_ERROR_INVALID,
         "[gift.rose] name: \"\" is not a name of 1-64 bytes of UTF-8"},
        {"[gift.rose]\nname=a\\tb\nprice=1\nanimation=petals\ntier=1\n",
         ENCORE_CATALOG_ERROR_INVALID,
         "[gift.rose] name: \"a\tb\" is not a name of 1-64 bytes of UTF-8"},
        {"[gift.rose]\nname=Rose\nprice=1\nanimation=petals\ntier=1\ncolour=red\n",
         ENCORE_CATALOG_ERROR_INVALID, "[gift.rose] colour: unknown key"},
        {"[gift.Rose]\nname=Rose\nprice=1\nanimation=petals\ntier=1\n",
         ENCORE_CATALOG_ERROR_INVALID,
         "[gift.Rose]: the id after \"gift.\" must be 1-32 characters [a-z0-9_-]"},
        {"[gift.]\nname=Rose\n", ENCORE_CATALOG_ERROR_INVALID,
         "[gift.]: the id after \"gift.\" must be 1-32 characters [a-z0-9_-]"},
        {"[gift.abcdefghijklmnopqrstuvwxyz0123456]\nname=x\n", ENCORE_CATALOG_ERROR_INVALID,
         "[gift.abcdefghijklmnopqrstuvwxyz0123456]: the id after \"gift.\" must be 1-32 "
         "characters [a-z0-9_-]"},
        /* A lower max_gift_price applies to the gifts after it. */
        {"[economy]\nmax_gift_price = 10\n[gift.rose]\nname=Rose\nprice=11\nanimation=p\ntier=1\n",
         ENCORE_CATALOG_ERROR_INVALID, "[gift.rose] price: 11 is out of range 1..10"},
        {"[vip.gold]\nname=Gold\nrank=1\n", ENCORE_CATALOG_ERROR_MISSING,
         "[vip.gold] price_per_month: missing"},
        {"[vip.gold]\nname=Gold\nprice_per_month=1\n", ENCORE_CATALOG_ERROR_MISSING,
         "[vip.gold] rank: missing"},
        {"[vip.gold]\nname=Gold\nprice_per_month=1\nrank=0\n", ENCORE_CATALOG_ERROR_INVALID,
         "[vip.gold] rank: 0 is out of range 1..100"},
        {"[vip.gold]\nname=Gold\nprice_per_month=0\nrank=1\n", ENCORE_CATALOG_ERROR_INVALID,
         "[vip.gold] price_per_month: 0 is out of range 1..1000000000000"},
        {"[vip.a]\nname=A\nprice_per_month=1\nrank=2\n[vip.b]\nname=B\nprice_per_month=2\nrank=2\n",
         ENCORE_CATALOG_ERROR_INVALID, "[vip.b] rank: 2 is also the rank of [vip.a]"},
        {"[vip.a]\nname=A\nprice_per_month=1\nrank=2\nlevel=1\n", ENCORE_CATALOG_ERROR_INVALID,
         "[vip.a] level: unknown key"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        GError *error = NULL;
        encore_catalog *c = load_text(cases[i].ini, &error);
        g_assert_null(c);
        g_assert_error(error, ENCORE_CATALOG_ERROR, cases[i].code);
        g_assert_cmpstr(error->message, ==, cases[i].message);
        g_error_free(error);
    }
}

static void test_too_many(void)
{
    GString *ini = g_string_new("");
    for (int i = 0; i <= ENCORE_CATALOG_MAX_GIFTS; i++)
        g_string_append_printf(ini, "[gift.g%d]\nname=G\nprice=1\nanimation=a\ntier=1\n", i);
    GError *error = NULL;
    encore_catalog *c = load_text(ini->str, &error);
    g_assert_null(c);
    g_assert_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "[gift.g256]: more than 256 gifts");
    g_clear_error(&error);
    g_string_truncate(ini, 0);
    for (int i = 0; i < ENCORE_CATALOG_MAX_GIFTS; i++)
        g_string_append_printf(ini, "[gift.g%d]\nname=G\nprice=1\nanimation=a\ntier=1\n", i);
    c = load_text(ini->str, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(encore_catalog_gift_count(c), ==, 256);
    /* Same price: sorted by id (strcmp order). */
    g_assert_cmpstr(encore_catalog_gift_at(c, 0)->id, ==, "g0");
    g_assert_cmpstr(encore_catalog_gift_at(c, 1)->id, ==, "g1");
    g_assert_cmpstr(encore_catalog_gift_at(c, 2)->id, ==, "g10");
    encore_catalog_free(c);
    g_string_free(ini, TRUE);
}

static void test_file(void)
{
    GError *error = NULL;
    encore_catalog *c = encore_catalog_load_file("/nonexistent/encore.ini", &error);
    g_assert_null(c);
    g_assert_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_FILE);
    g_assert_true(g_str_has_prefix(error->message, "/nonexistent/encore.ini: "));
    g_clear_error(&error);

    char *path = NULL;
    int fd = g_file_open_tmp("catalog-XXXXXX.ini", &path, &error);
    g_assert_no_error(error);
    close(fd);
    g_assert_true(g_file_set_contents(path, "not a key file\n", -1, NULL));
    c = encore_catalog_load_file(path, &error);
    g_assert_null(c);
    g_assert_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_FILE);
    g_clear_error(&error);
    g_assert_true(g_file_set_contents(path, full_ini, -1, NULL));
    c = encore_catalog_load_file(path, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(encore_catalog_gift_count(c), ==, 3);
    encore_catalog_free(c);
    g_unlink(path);
    g_free(path);
}

static void test_topup(void)
{
    encore_catalog *c = encore_catalog_new_default(); /* CNY, 2 digits, 10 coins a yuan */
    int64_t coins = -7;
    g_assert_cmpint(encore_catalog_topup_coins(c, "CNY", 600, &coins), ==, 0);
    g_assert_cmpint(coins, ==, 60);
    g_assert_cmpint(encore_catalog_topup_coins(c, "CNY", 10, &coins), ==, 0);
    g_assert_cmpint(coins, ==, 1);
    coins = -7;
    g_assert_cmpint(encore_catalog_topup_coins(c, "CNY", 5, &coins), ==, ENCORE_CATALOG_EFRACTION);
    g_assert_cmpint(encore_catalog_topup_coins(c, "CNY", 615, &coins), ==,
                    ENCORE_CATALOG_EFRACTION);
    g_assert_cmpint(encore_catalog_topup_coins(c, "USD", 600, &coins), ==,
                    ENCORE_CATALOG_ECURRENCY);
    g_assert_cmpint(encore_catalog_topup_coins(c, "cny", 600, &coins), ==,
                    ENCORE_CATALOG_ECURRENCY);
    g_assert_cmpint(encore_catalog_topup_coins(c, NULL, 600, &coins), ==, ENCORE_CATALOG_ECURRENCY);
    g_assert_cmpint(encore_catalog_topup_coins(c, "CNY", 0, &coins), ==, ENCORE_CATALOG_ERANGE);
    g_assert_cmpint(encore_catalog_topup_coins(c, "CNY", -10, &coins), ==, ENCORE_CATALOG_ERANGE);
    g_assert_cmpint(coins, ==, -7); /* untouched on errors */
    /* The ledger's bound: 10^15 coins is 10^16 fen; one more coin is out. */
    g_assert_cmpint(encore_catalog_topup_coins(c, "CNY", INT64_C(10000000000000000), &coins), ==,
                    0);
    g_assert_cmpint(coins, ==, ENCORE_LEDGER_MAX_AMOUNT);
    g_assert_cmpint(encore_catalog_topup_coins(c, "CNY", INT64_C(10000000000000010), &coins), ==,
                    ENCORE_CATALOG_ERANGE);
    /* No overflow in amount * coins_per_unit. */
    g_assert_cmpint(encore_catalog_topup_coins(c, "CNY", INT64_MAX - 7, &coins), ==,
                    ENCORE_CATALOG_ERANGE);
    encore_catalog_free(c);

    GError *error = NULL;
    c = load_text("[economy]\ncurrency = JPY\ncoins_per_unit = 3\n", &error);
    g_assert_no_error(error);
    g_assert_cmpint(encore_catalog_topup_coins(c, "JPY", 7, &coins), ==, 0);
    g_assert_cmpint(coins, ==, 21);
    encore_catalog_free(c);
    c = load_text("[economy]\ncurrency = BHD\ncoins_per_unit = 1000\n", &error);
    g_assert_no_error(error);
    g_assert_cmpint(encore_catalog_topup_coins(c, "BHD", 1, &coins), ==, 0);
    g_assert_cmpint(coins, ==, 1);
    encore_catalog_free(c);
    c = load_text("[economy]\ncurrency = BHD\ncoins_per_unit = 500\n", &error);
    g_assert_no_error(error);
    g_assert_cmpint(encore_catalog_topup_coins(c, "BHD", 1, &coins), ==, ENCORE_CATALOG_EFRACTION);
    g_assert_cmpint(encore_catalog_topup_coins(c, "BHD", 2, &coins), ==, 0);
    g_assert_cmpint(coins, ==, 1);
    encore_catalog_free(c);
}

static void test_json(void)
{
    GError *error = NULL;
    encore_catalog *c = load_text("[economy]\nmax_gift_price = 100\n"
                                  "[gift.rose]\nname=Rose \"red\"\nprice=1\nanimation=petals\n"
                                  "tier=1\n"
                                  "[vip.gold]\nname=Gold\nprice_per_month=800\nrank=2\n",
                                  &error);
    g_assert_no_error(error);
    char *json = encore_catalog_to_json(c);
    g_assert_cmpstr(json, ==,
                    "{\"coins_per_unit\":10,\"combo_window_ms\":3000,\"currency\":\"CNY\","
                    "\"currency_digits\":2,\"daily_cap\":100000,"
                    "\"gifts\":[{\"animation\":\"petals\",\"id\":\"rose\",\"name\":\"Rose "
                    "\\\"red\\\"\",\"price\":1,\"tier\":1}],"
                    "\"max_count\":9999,\"max_gift_price\":100,"
                    "\"vip\":[{\"id\":\"gold\",\"name\":\"Gold\",\"price_per_month\":800,"
                    "\"rank\":2}]}");
    g_free(json);
    encore_catalog_free(c);

    c = encore_catalog_new_default();
    json = encore_catalog_to_json(c);
    g_assert_true(g_str_has_prefix(json, "{\"coins_per_unit\":10,"));
    g_assert_nonnull(strstr(json, "{\"animation\":\"launch\",\"id\":\"rocket\",\"name\":"
                                  "\"Rocket\",\"price\":2000,\"tier\":5}]"));
    g_free(json);
    encore_catalog_free(c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/catalog/default", test_default);
    g_test_add_func("/catalog/full-file", test_full_file);
    g_test_add_func("/catalog/defaults-fill-in", test_defaults_fill_in);
    g_test_add_func("/catalog/errors", test_errors);
    g_test_add_func("/catalog/too-many", test_too_many);
    g_test_add_func("/catalog/file", test_file);
    g_test_add_func("/catalog/topup", test_topup);
    g_test_add_func("/catalog/json", test_json);
    return g_test_run();
}
