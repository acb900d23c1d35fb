/* The economy catalog: parsing and checking [economy], [gift.*] and [vip.*] of a GKeyFile, the
 * built-in defaults, lookups, the top-up rate and the JSON of GET /api/catalog. Main thread to
 * load, read-only afterwards; it must not touch the ledger or keep any per-user state. */
#include <jansson.h>
#include <string.h>

#include "server/economy/catalog.h"
#include "server/economy/ledger.h"

G_DEFINE_QUARK(encore - catalog - error - quark, encore_catalog_error)

struct encore_catalog {
    encore_catalog_settings settings;
    GArray *gifts; /* encore_catalog_gift, sorted by price then id */
    GArray *vip;   /* encore_catalog_vip, sorted by rank */
};

/* Upper bounds of configurable values. */
#define MAX_COINS_PER_UNIT INT64_C(1000000)
#define MAX_GIFT_PRICE_LIMIT INT64_C(1000000000000)
#define MAX_VIP_PRICE INT64_C(1000000000000)
#define MAX_COMBO_WINDOW_MS 60000

static const encore_catalog_gift default_gifts[] = {
    {"rose", "Rose", 1, "petals", 1},
    {"applause", "Applause", 5, "clap", 1},
    {"microphone", "Golden Mic", 20, "sparkle", 2},
    {"cake", "Cake", 52, "candles", 2},
    {"fireworks", "Fireworks", 188, "fireworks", 3},
    {"sports_car", "Sports Car", 520, "car", 4},
    {"yacht", "Yacht", 1314, "waves", 4},
    {"rocket", "Rocket", 2000, "launch", 5},
};

static const encore_catalog_vip default_vip[] = {
    {"silver", "Silver", 300, 1},
    {"gold", "Gold", 800, 2},
    {"diamond", "Diamond", 2000, 3},
};

/* Currencies whose minor unit is not 1/100 (ISO 4217); every other one has 2 digits. */
static const struct {
    const char code[4];
    int digits;
} currency_digits[] = {
    {"BIF", 0}, {"CLP", 0}, {"DJF", 0}, {"GNF", 0}, {"ISK", 0}, {"JPY", 0}, {"KMF", 0},
    {"KRW", 0}, {"PYG", 0}, {"RWF", 0}, {"UGX", 0}, {"UYI", 0}, {"VND", 0}, {"VUV", 0},
    {"XAF", 0}, {"XOF", 0}, {"XPF", 0}, {"BHD", 3}, {"IQD", 3}, {"JOD", 3}, {"KWD", 3},
    {"LYD", 3}, {"OMR", 3}, {"TND", 3}, {"CLF", 4}, {"UYW", 4},
};

static int default_digits(const char *code)
{
    for (size_t i = 0; i < G_N_ELEMENTS(currency_digits); i++) {
        if (strcmp(currency_digits[i].code, code) == 0)
            return currency_digits[i].digits;
    }
    return 2;
}

static void default_settings(encore_catalog_settings *s)
{
    memcpy(s->currency, "CNY", 4);
    s->currency_digits = 2;
    s->coins_per_unit = 10;
    s->max_gift_price = 200 * s->coins_per_unit;
    s->daily_cap = 100000;
    s->singer_bp = 5000;
    s->combo_window_ms = 3000;
    s->max_count = 9999;
}

static gboolean valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > ENCORE_CATALOG_ID_MAX)
        return FALSE;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return FALSE;
    }
    return TRUE;
}

static gboolean valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > ENCORE_CATALOG_NAME_MAX || !g_utf8_validate(s, (gssize)n, NULL))
        return FALSE;
    for (const char *p = s; *p; p = g_utf8_next_char(p)) {
        if (g_unichar_iscntrl(g_utf8_get_char(p)))
            return FALSE;
    }
    return TRUE;
}

/* Refuses keys of `group` not in `known` (NULL-terminated). */
static gboolean check_keys(GKeyFile *kf, const char *group, const char *const *known,
                           GError **error)
{
    gsize n = 0;
    gchar **keys = g_key_file_get_keys(kf, group, &n, NULL);
    gboolean ok = TRUE;
    for (gsize i = 0; ok && i < n; i++) {
        gboolean found = FALSE;
        for (size_t k = 0; known[k]; k++)
            found = found || strcmp(keys[i], known[k]) == 0;
        if (!found) {
            g_set_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_INVALID,
                        "[%s] %s: unknown key", group, keys[i]);
            ok = FALSE;
        }
    }
    g_strfreev(keys);
    return ok;
}

/* Reads an integer key into *out when present (required: missing is an error) and checks
 * min <= value <= max. */
static gboolean get_int(GKeyFile *kf, const char *group, const char *key, gboolean required,
                        int64_t min, int64_t max, int64_t *out, GError **error)
{
    if (!g_key_file_has_key(kf, group, key, NULL)) {
        if (!required)
            return TRUE;
        g_set_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_MISSING, "[%s] %s: missing",
                    group, key);
        return FALSE;
    }
    gchar *raw = g_key_file_get_value(kf, group, key, NULL);
    GError *e = NULL;
    gint64 v = g_key_file_get_int64(kf, group, key, &e);
    gboolean ok = FALSE;
    if (e) {
        g_set_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_INVALID,
                    "[%s] %s: \"%s\" is not an integer", group, key, raw ? raw : "");
        g_error_free(e);
    } else if (v < min || v > max) {
        g_set_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_INVALID,
                    "[%s] %s: %" G_GINT64_FORMAT " is out of range %" G_GINT64_FORMAT
                    "..%" G_GINT64_FORMAT,
                    group, key, (int64_t)v, min, max);
    } else {
        *out = v;
        ok = TRUE;
    }
    g_free(raw);
    return ok;
}

/* Reads a string key into buf[size] when present; `check` validates it. */
static gboolean get_str(GKeyFile *kf, const char *group, const char *key, gboolean required,
                        gboolean (*check)(const char *), const char *what, char *buf, size_t size,
                        GError **error)
{
    if (!g_key_file_has_key(kf, group, key, NULL)) {
        if (!required)
            return TRUE;
        g_set_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_MISSING, "[%s] %s: missing",
                    group, key);
        return FALSE;
    }
    /* Escapes (\n, \s...) are decoded first; the check then sees the real bytes. */
    gchar *v = g_key_file_get_string(kf, group, key, NULL);
    gboolean ok = v && check(v) && strlen(v) < size;
    if (ok)
        memcpy(buf, v, strlen(v) + 1);
    else
        g_set_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_INVALID,
                    "[%s] %s: \"%s\" is not %s", group, key, v ? v : "", what);
    g_free(v);
    return ok;
}

static gboolean valid_currency(const char *s)
{
    return strlen(s) == 3 && g_ascii_isupper(s[0]) && g_ascii_isupper(s[1]) &&
           g_ascii_isupper(s[2]);
}

static gboolean load_settings(GKeyFile *kf, encore_catalog_settings *s, GError **error)
{
    static const char *const known[] = {
        "currency",        "currency_digits", "coins_per_unit",
        "max_gift_price",  "daily_cap",       "singer_bp",
        "combo_window_ms", "max_count",       NULL,
    };
    const char *g = "economy";
    default_settings(s);
    if (!g_key_file_has_group(kf, g))
        return TRUE;
    if (!check_keys(kf, g, known, error))
        return FALSE;
    if (!get_str(kf, g, "currency", FALSE, valid_currency, "3 upper-case letters", s->currency,
                 sizeof s->currency, error))
        return FALSE;
    int64_t v = default_digits(s->currency);
    if (!get_int(kf, g, "currency_digits", FALSE, 0, 4, &v, error))
        return FALSE;
    s->currency_digits = (int)v;
    if (!get_int(kf, g, "coins_per_unit", FALSE, 1, MAX_COINS_PER_UNIT, &s->coins_per_unit, error))
        return FALSE;
    s->max_gift_price = 200 * s->coins_per_unit;
    if (!get_int(kf, g, "max_gift_price", FALSE, 1, MAX_GIFT_PRICE_LIMIT, &s->max_gift_price,
                 error))
        return FALSE;
    if (!get_int(kf, g, "daily_cap", FALSE, 0, ENCORE_LEDGER_MAX_AMOUNT, &s->daily_cap, error))
        return FALSE;
    v = s->singer_bp;
    if (!get_int(kf, g, "singer_bp", FALSE, 0, 10000, &v, error))
        return FALSE;
    s->singer_bp = (uint32_t)v;
    if (!get_int(kf, g, "combo_window_ms", FALSE, 0, MAX_COMBO_WINDOW_MS, &s->combo_window_ms,
                 error))
        return FALSE;
    if (!get_int(kf, g, "max_count", FALSE, 1, ENCORE_CATALOG_MAX_COUNT, &s->max_count, error))
        return FALSE;
    return TRUE;
}

/* The id of a "<prefix>ID" group, checked. */
static gboolean group_id(const char *group, const char *prefix, char *id, GError **error)
{
    const char *suffix = group + strlen(prefix);
    if (!valid_id(suffix)) {
        g_set_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_INVALID,
                    "[%s]: the id after \"%s\" must be 1-32 characters [a-z0-9_-]", group, prefix);
        return FALSE;
    }
    memcpy(id, suffix, strlen(suffix) + 1);
    return TRUE;
}

static gboolean load_gift(GKeyFile *kf, const char *g, const encore_catalog_settings *s,
                          encore_catalog_gift *out, GError **error)
{
    static const char *const known[] = {"name", "price", "animation", "tier", NULL};
    int64_t tier = 0;
    memset(out, 0, sizeof *out);
    return group_id(g, "gift.", out->id, error) && check_keys(kf, g, known, error) &&
           get_str(kf, g, "name", TRUE, valid_name, "a name of 1-64 bytes of UTF-8", out->name,
                   sizeof out->name, error) &&
           get_int(kf, g, "price", TRUE, 1, s->max_gift_price, &out->price, error) &&
           get_str(kf, g, "animation", TRUE, valid_id, "1-32 characters [a-z0-9_-]", out->animation,
                   sizeof out->animation, error) &&
           get_int(kf, g, "tier", TRUE, 1, ENCORE_CATALOG_TIER_MAX, &tier, error) &&
           ((out->tier = (int)tier), TRUE);
}

static gboolean load_vip(GKeyFile *kf, const char *g, encore_catalog_vip *out, GError **error)
{
    static const char *const known[] = {"name", "price_per_month", "rank", NULL};
    int64_t rank = 0;
    memset(out, 0, sizeof *out);
    return group_id(g, "vip.", out->id, error) && check_keys(kf, g, known, error) &&
           get_str(kf, g, "name", TRUE, valid_name, "a name of 1-64 bytes of UTF-8", out->name,
                   sizeof out->name, error) &&
           get_int(kf, g, "price_per_month", TRUE, 1, MAX_VIP_PRICE, &out->price_per_month,
                   error) &&
           get_int(kf, g, "rank", TRUE, 1, ENCORE_CATALOG_RANK_MAX, &rank, error) &&
           ((out->rank = (int)rank), TRUE);
}

static gint cmp_gift(gconstpointer a, gconstpointer b)
{
    const encore_catalog_gift *x = a, *y = b;
    if (x->price != y->price)
        return x->price < y->price ? -1 : 1;
    return strcmp(x->id, y->id);
}

static gint cmp_vip(gconstpointer a, gconstpointer b)
{
    const encore_catalog_vip *x = a, *y = b;
    return x->rank - y->rank;
}

static encore_catalog *catalog_alloc(void)
{
    encore_catalog *c = g_new0(encore_catalog, 1);
    c->gifts = g_array_new(FALSE, TRUE, sizeof(encore_catalog_gift));
    c->vip = g_array_new(FALSE, TRUE, sizeof(encore_catalog_vip));
    return c;
}

static void add_default_gifts(encore_catalog *c)
{
    for (size_t i = 0; i < G_N_ELEMENTS(default_gifts); i++) {
        if (default_gifts[i].price <= c->settings.max_gift_price)
            g_array_append_val(c->gifts, default_gifts[i]);
    }
}

encore_catalog *encore_catalog_new_default(void)
{
    encore_catalog *c = catalog_alloc();
    default_settings(&c->settings);
    add_default_gifts(c);
    g_array_append_vals(c->vip, default_vip, G_N_ELEMENTS(default_vip));
    return c;
}

/* Reads every [gift.*] and [vip.*] group. */
static gboolean load_items(GKeyFile *kf, encore_catalog *c, GError **error)
{
    gchar **groups = g_key_file_get_groups(kf, NULL);
    gboolean ok = TRUE;
    for (size_t i = 0; ok && groups[i]; i++) {
        const char *g = groups[i];
        if (g_str_has_prefix(g, "gift.")) {
            encore_catalog_gift gift;
            if (c->gifts->len >= ENCORE_CATALOG_MAX_GIFTS) {
                g_set_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_INVALID,
                            "[%s]: more than %d gifts", g, ENCORE_CATALOG_MAX_GIFTS);
                ok = FALSE;
            } else if ((ok = load_gift(kf, g, &c->settings, &gift, error))) {
                g_array_append_val(c->gifts, gift);
            }
        } else if (g_str_has_prefix(g, "vip.")) {
            encore_catalog_vip vip;
            if (c->vip->len >= ENCORE_CATALOG_MAX_VIP) {
                g_set_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_INVALID,
                            "[%s]: more than %d VIP tiers", g, ENCORE_CATALOG_MAX_VIP);
                ok = FALSE;
            } else if ((ok = load_vip(kf, g, &vip, error))) {
                for (guint k = 0; ok && k < c->vip->len; k++) {
                    const encore_catalog_vip *o = &g_array_index(c->vip, encore_catalog_vip, k);
                    if (o->rank == vip.rank) {
                        g_set_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_INVALID,
                                    "[%s] rank: %d is also the rank of [vip.%s]", g, vip.rank,
                                    o->id);
                        ok = FALSE;
                    }
                }
                if (ok)
                    g_array_append_val(c->vip, vip);
            }
        }
    }
    g_strfreev(groups);
    return ok;
}

encore_catalog *encore_catalog_load(GKeyFile *kf, GError **error)
{
    encore_catalog *c = catalog_alloc();
    if (!load_settings(kf, &c->settings, error) || !load_items(kf, c, error)) {
        encore_catalog_free(c);
        return NULL;
    }
    /* GKeyFile merges repeated groups, so ids are unique here. */
    if (c->gifts->len == 0)
        add_default_gifts(c);
    if (c->vip->len == 0)
        g_array_append_vals(c->vip, default_vip, G_N_ELEMENTS(default_vip));
    g_array_sort(c->gifts, cmp_gift);
    g_array_sort(c->vip, cmp_vip);
    return c;
}

encore_catalog *encore_catalog_load_file(const char *path, GError **error)
{
    GKeyFile *kf = g_key_file_new();
    GError *e = NULL;
    encore_catalog *c = NULL;
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &e)) {
        g_set_error(error, ENCORE_CATALOG_ERROR, ENCORE_CATALOG_ERROR_FILE, "%s: %s", path,
                    e->message);
        g_error_free(e);
    } else {
        c = encore_catalog_load(kf, error);
    }
    g_key_file_free(kf);
    return c;
}

void encore_catalog_free(encore_catalog *catalog)
{
    if (!catalog)
        return;
    g_array_free(catalog->gifts, TRUE);
    g_array_free(catalog->vip, TRUE);
    g_free(catalog);
}

const encore_catalog_settings *encore_catalog_get_settings(const encore_catalog *catalog)
{
    return &catalog->settings;
}

const encore_catalog_gift *encore_catalog_gift_find(const encore_catalog *catalog, const char *id)
{
    if (!id)
        return NULL;
    for (guint i = 0; i < catalog->gifts->len; i++) {
        const encore_catalog_gift *g = &g_array_index(catalog->gifts, encore_catalog_gift, i);
        if (strcmp(g->id, id) == 0)
            return g;
    }
    return NULL;
}

const encore_catalog_vip *encore_catalog_vip_find(const encore_catalog *catalog, const char *id)
{
    if (!id)
        return NULL;
    for (guint i = 0; i < catalog->vip->len; i++) {
        const encore_catalog_vip *v = &g_array_index(catalog->vip, encore_catalog_vip, i);
        if (strcmp(v->id, id) == 0)
            return v;
    }
    return NULL;
}

const encore_catalog_vip *encore_catalog_vip_find_rank(const encore_catalog *catalog, int rank)
{
    for (guint i = 0; i < catalog->vip->len; i++) {
        const encore_catalog_vip *v = &g_array_index(catalog->vip, encore_catalog_vip, i);
        if (v->rank == rank)
            return v;
    }
    return NULL;
}

size_t encore_catalog_gift_count(const encore_catalog *catalog)
{
    return catalog->gifts->len;
}

const encore_catalog_gift *encore_catalog_gift_at(const encore_catalog *catalog, size_t index)
{
    if (index >= catalog->gifts->len)
        return NULL;
    return &g_array_index(catalog->gifts, encore_catalog_gift, index);
}

size_t encore_catalog_vip_count(const encore_catalog *catalog)
{
    return catalog->vip->len;
}

const encore_catalog_vip *encore_catalog_vip_at(const encore_catalog *catalog, size_t index)
{
    if (index >= catalog->vip->len)
        return NULL;
    return &g_array_index(catalog->vip, encore_catalog_vip, index);
}

int encore_catalog_topup_coins(const encore_catalog *catalog, const char *currency, int64_t amount,
                               int64_t *coins)
{
    const encore_catalog_settings *s = &catalog->settings;
    if (!currency || strcmp(currency, s->currency) != 0)
        return ENCORE_CATALOG_ECURRENCY;
    if (amount <= 0)
        return ENCORE_CATALOG_ERANGE;
    __int128 scale = 1;
    for (int i = 0; i < s->currency_digits; i++)
        scale *= 10;
    __int128 num = (__int128)amount * s->coins_per_unit;
    if (num % scale != 0)
        return ENCORE_CATALOG_EFRACTION;
    if (num / scale > ENCORE_LEDGER_MAX_AMOUNT)
        return ENCORE_CATALOG_ERANGE;
    *coins = (int64_t)(num / scale);
    return 0;
}

char *encore_catalog_to_json(const encore_catalog *catalog)
{
    const encore_catalog_settings *s = &catalog->settings;
    json_t *gifts = json_array(), *vip = json_array();
    for (guint i = 0; i < catalog->gifts->len; i++) {
        const encore_catalog_gift *g = &g_array_index(catalog->gifts, encore_catalog_gift, i);
        json_array_append_new(gifts, json_pack("{s:s, s:s, s:I, s:s, s:i}", "id", g->id, "name",
                                               g->name, "price", (json_int_t)g->price, "animation",
                                               g->animation, "tier", g->tier));
    }
    for (guint i = 0; i < catalog->vip->len; i++) {
        const encore_catalog_vip *v = &g_array_index(catalog->vip, encore_catalog_vip, i);
        json_array_append_new(vip, json_pack("{s:s, s:s, s:I, s:i}", "id", v->id, "name", v->name,
                                             "price_per_month", (json_int_t)v->price_per_month,
                                             "rank", v->rank));
    }
    json_t *root =
        json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "currency", s->currency,
                  "currency_digits", s->currency_digits, "coins_per_unit",
                  (json_int_t)s->coins_per_unit, "max_gift_price", (json_int_t)s->max_gift_price,
                  "daily_cap", (json_int_t)s->daily_cap, "max_count", (json_int_t)s->max_count,
                  "combo_window_ms", (json_int_t)s->combo_window_ms, "gifts", gifts, "vip", vip);
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    char *out = g_strdup(text);
    free(text);
    return out;
}
