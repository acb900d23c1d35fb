/* The economy catalog: the coin's exchange rate, the gifts, the VIP tiers and the limits, read
 * from the server's GKeyFile ([economy], [gift.ID], [vip.ID]) or built in. Loaded once on the
 * main thread, immutable afterwards (any thread may read a loaded catalog). No I/O besides
 * encore_catalog_load_file(); it decides nothing about users or money movements. */
#ifndef ENCORE_ECONOMY_CATALOG_H
#define ENCORE_ECONOMY_CATALOG_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ids of gifts, tiers and animations: 1..32 bytes of [a-z0-9_-]. */
#define ENCORE_CATALOG_ID_MAX 32
/* Display names: 1..64 bytes of valid UTF-8 without control characters. */
#define ENCORE_CATALOG_NAME_MAX 64
#define ENCORE_CATALOG_MAX_GIFTS 256
#define ENCORE_CATALOG_MAX_VIP 16
#define ENCORE_CATALOG_TIER_MAX 5       /* gift tiers are 1..5 (bigger animation) */
#define ENCORE_CATALOG_RANK_MAX 100     /* VIP ranks are 1..100, unique; higher is better */
#define ENCORE_CATALOG_MAX_COUNT 100000 /* the largest max_count one may configure */

typedef struct {
    char id[ENCORE_CATALOG_ID_MAX + 1];        /* the group suffix: [gift.rose] -> "rose" */
    char name[ENCORE_CATALOG_NAME_MAX + 1];    /* name = Rose */
    int64_t price;                             /* coins, 1..max_gift_price */
    char animation[ENCORE_CATALOG_ID_MAX + 1]; /* animation = petals (the page's effect) */
    int tier;                                  /* 1..5 */
} encore_catalog_gift;

typedef struct {
    char id[ENCORE_CATALOG_ID_MAX + 1];     /* [vip.silver] -> "silver" */
    char name[ENCORE_CATALOG_NAME_MAX + 1]; /* name = Silver */
    int64_t price_per_month;                /* coins per month (30 days), 1..10^12 */
    int rank;                               /* 1..100, unique; higher ranks are better tiers */
} encore_catalog_vip;

/* [economy]: every key optional; the defaults are in parentheses. */
typedef struct {
    char currency[4];        /* currency = CNY: 3 upper-case letters (ISO 4217) */
    int currency_digits;     /* currency_digits = ISO 4217 minor digits of the currency (2, or
                              * 0 for JPY, KRW..., 3 for BHD, KWD...), 0..4 */
    int64_t coins_per_unit;  /* coins_per_unit = 10: coins for one major unit (1 yuan), 1..10^6 */
    int64_t max_gift_price;  /* max_gift_price = 200 * coins_per_unit (200 major units), coins,
                              * 1..10^12 */
    int64_t daily_cap;       /* daily_cap = 100000: coins a user may spend per UTC day, 0 = no cap,
                              * 0..10^15 */
    uint32_t singer_bp;      /* singer_bp = 5000: the singer's share without a contract, 0..10000 */
    int64_t combo_window_ms; /* combo_window_ms = 3000, 0..60000 (0: no combos) */
    int64_t max_count;       /* max_count = 9999: gifts in one gift.send, 1..100000 */
} encore_catalog_settings;

/* Errors of the loading calls (domain ENCORE_CATALOG_ERROR). Messages name the group and key,
 * e.g. "[gift.rose] price: 0 is out of range 1..2000". */
typedef enum {
    ENCORE_CATALOG_ERROR_FILE,    /* the file cannot be read or is not a key file */
    ENCORE_CATALOG_ERROR_MISSING, /* a required key is missing (name, price, tier, rank...) */
    ENCORE_CATALOG_ERROR_INVALID, /* a value is malformed or out of range, a group id is not
                                   * [a-z0-9_-]{1,32}, a key is unknown in one of the catalog's
                                   * groups, two VIP tiers share a rank, or a group is too many */
} encore_catalog_error;

#define ENCORE_CATALOG_ERROR (encore_catalog_error_quark())
GQuark encore_catalog_error_quark(void);

typedef struct encore_catalog encore_catalog;

/* The built-in catalog: the defaults above, 8 gifts from 1 to 2000 coins (rose 1, applause 5,
 * microphone 20, cake 52, fireworks 188, sports_car 520, yacht 1314, rocket 2000) and 3 VIP
 * tiers (silver 300, gold 800, diamond 2000 coins a month; ranks 1..3). Never fails. */
encore_catalog *encore_catalog_new_default(void);

/* Reads the catalog from `kf` (borrowed; other groups are ignored, so this may be the server's
 * whole configuration file). With no [gift.*] group the built-in gifts are used (those priced
 * over max_gift_price are left out); with no [vip.*] group the built-in tiers. Gifts are kept
 * sorted by price, then id; tiers by rank. Returns NULL with `error` set
 * (ENCORE_CATALOG_ERROR_MISSING or _INVALID). */
encore_catalog *encore_catalog_load(GKeyFile *kf, GError **error);

/* encore_catalog_load() on the key file at `path`; ENCORE_CATALOG_ERROR_FILE when it cannot be
 * read or parsed. */
encore_catalog *encore_catalog_load_file(const char *path, GError **error);

/* Accepts NULL. */
void encore_catalog_free(encore_catalog *catalog);

const encore_catalog_settings *encore_catalog_get_settings(const encore_catalog *catalog);

/* The gift or tier with this id (NUL-terminated), or NULL. Pointers stay valid as long as the
 * catalog. */
const encore_catalog_gift *encore_catalog_gift_find(const encore_catalog *catalog, const char *id);
const encore_catalog_vip *encore_catalog_vip_find(const encore_catalog *catalog, const char *id);
const encore_catalog_vip *encore_catalog_vip_find_rank(const encore_catalog *catalog, int rank);

/* Iteration in catalog order (index < count, else NULL). */
size_t encore_catalog_gift_count(const encore_catalog *catalog);
const encore_catalog_gift *encore_catalog_gift_at(const encore_catalog *catalog, size_t index);
size_t encore_catalog_vip_count(const encore_catalog *catalog);
const encore_catalog_vip *encore_catalog_vip_at(const encore_catalog *catalog, size_t index);

/* Return values of encore_catalog_topup_coins(). */
#define ENCORE_CATALOG_ECURRENCY (-1) /* not the catalog's currency (compared exactly) */
#define ENCORE_CATALOG_EFRACTION (-2) /* the amount buys a fraction of a coin */
#define ENCORE_CATALOG_ERANGE (-3)    /* amount <= 0, or more coins than ENCORE_LEDGER_MAX_AMOUNT */

/* The coins a top-up of `amount` minor units of `currency` buys:
 * amount * coins_per_unit / 10^currency_digits, which must be a whole number (with CNY and 10
 * coins a yuan, 600 fen buy 60 coins; 5 fen would buy half a coin and are refused). Returns 0
 * with *coins set, or one of the errors above (*coins untouched). Exact, no overflow. */
int encore_catalog_topup_coins(const encore_catalog *catalog, const char *currency, int64_t amount,
                               int64_t *coins) G_GNUC_WARN_UNUSED_RESULT;

/* The body of GET /api/catalog, a NUL-terminated compact JSON object (free with g_free()):
 * {"currency","currency_digits","coins_per_unit","max_gift_price","daily_cap","max_count",
 * "combo_window_ms","gifts":[{"id","name","price","animation","tier"}...],
 * "vip":[{"id","name","price_per_month","rank"}...]}. */
char *encore_catalog_to_json(const encore_catalog *catalog);

#endif /* ENCORE_ECONOMY_CATALOG_H */
