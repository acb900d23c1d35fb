/* VIP purchases: the ledger request of a purchase, the reader of its stored metadata and the fold
 * of committed purchases into tier and expiry per user. Main thread only; no I/O, no logging; it
 * must not submit anything or apply a transfer id twice. */
#include <string.h>

#include "server/accounts/flatjson.h"
#include "server/economy/seen.h"
#include "server/economy/vip.h"

static const char *const result_names[] = {
    "ok",         "invalid_request", "bad_key",   "unknown_tier",
    "bad_months", "lower_tier",      "duplicate", "stale",
};

const char *encore_vip_result_name(encore_vip_result result)
{
    if ((unsigned)result >= G_N_ELEMENTS(result_names))
        return NULL;
    return result_names[result];
}

/* Whether s[0..n) is 1..max bytes of [a-z0-9_-], plus [A-Z] when `upper`. */
static gboolean valid_chars(const char *s, size_t n, size_t max, gboolean upper)
{
    if (n < 1 || n > max)
        return FALSE;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              (upper && c >= 'A' && c <= 'Z')))
            return FALSE;
    }
    return TRUE;
}

encore_vip_result encore_vip_plan(const encore_catalog *catalog, int64_t user, const char *tier_id,
                                  int64_t months, const char *key, encore_vip_purchase *plan)
{
    if (user <= 0)
        return ENCORE_VIP_INVALID;
    if (!key || !valid_chars(key, strnlen(key, 65), 64, TRUE))
        return ENCORE_VIP_BAD_KEY;
    const encore_catalog_vip *tier = encore_catalog_vip_find(catalog, tier_id);
    if (!tier)
        return ENCORE_VIP_UNKNOWN_TIER;
    if (months < 1 || months > ENCORE_VIP_MAX_MONTHS)
        return ENCORE_VIP_BAD_MONTHS;
    memset(plan, 0, sizeof *plan);
    plan->tier = tier;
    plan->months = months;
    /* The catalog caps the monthly price at 10^12: 12 months stay under the ledger's bound. */
    plan->total = tier->price_per_month * months;
    g_snprintf(plan->id, sizeof plan->id, "vip:%" G_GINT64_FORMAT ":%s", user, key);
    g_snprintf(plan->wallet, sizeof plan->wallet, "wallet:%" G_GINT64_FORMAT, user);
    g_snprintf(plan->metadata, sizeof plan->metadata,
               "{\"months\":%" G_GINT64_FORMAT ",\"price\":%" G_GINT64_FORMAT
               ",\"rank\":%d,\"tier\":\"%s\",\"user\":%" G_GINT64_FORMAT "}",
               months, tier->price_per_month, tier->rank, tier->id, user);
    plan->legs[0].account = plan->wallet;
    plan->legs[0].amount = -plan->total;
    plan->legs[1].account = "platform:revenue";
    plan->legs[1].amount = plan->total;
    plan->req.id = plan->id;
    plan->req.kind = "vip";
    plan->req.metadata = plan->metadata;
    plan->req.legs = plan->legs;
    plan->req.n_legs = 2;
    return ENCORE_VIP_OK;
}

enum {
    M_MONTHS = 1 << 0,
    M_PRICE = 1 << 1,
    M_RANK = 1 << 2,
    M_TIER = 1 << 3,
    M_USER = 1 << 4,
    M_ALL = (1 << 5) - 1,
};

static const struct {
    const char *name;
    int bit;
    encore_flatjson_kind kind;
} members[] = {
    {"months", M_MONTHS, ENCORE_FLATJSON_INT}, {"price", M_PRICE, ENCORE_FLATJSON_INT},
    {"rank", M_RANK, ENCORE_FLATJSON_INT},     {"tier", M_TIER, ENCORE_FLATJSON_STRING},
    {"user", M_USER, ENCORE_FLATJSON_INT},
};

static gboolean store_member(int bit, const encore_flatjson_member *m, encore_vip_record *out)
{
    switch (bit) {
    case M_MONTHS:
        out->months = m->num;
        return m->num >= 1 && m->num <= ENCORE_VIP_MAX_MONTHS;
    case M_PRICE:
        out->price = m->num;
        return m->num >= 1 && m->num <= ENCORE_LEDGER_MAX_AMOUNT;
    case M_RANK:
        out->rank = (int)CLAMP(m->num, 0, ENCORE_CATALOG_RANK_MAX + 1);
        return m->num >= 1 && m->num <= ENCORE_CATALOG_RANK_MAX;
    case M_USER:
        out->user = m->num;
        return m->num > 0;
    case M_TIER:
        if (!valid_chars(m->str, m->str_len, ENCORE_CATALOG_ID_MAX, FALSE))
            return FALSE;
        memcpy(out->tier, m->str, m->str_len);
        return TRUE;
    default:
        return FALSE;
    }
}

int encore_vip_record_from_metadata(const uint8_t *buf, size_t len, encore_vip_record *out)
{
    encore_flatjson_reader r;
    encore_flatjson_member m;
    int seen = 0, rc;
    memset(out, 0, sizeof *out);
    if (!buf || len > ENCORE_LEDGER_METADATA_MAX)
        goto bad;
    encore_flatjson_init(&r, buf, len);
    while ((rc = encore_flatjson_next(&r, &m)) == 1) {
        for (size_t i = 0; i < G_N_ELEMENTS(members); i++) {
            if (m.key_len != strlen(members[i].name) ||
                memcmp(m.key, members[i].name, m.key_len) != 0)
                continue;
            if ((seen & members[i].bit) || m.kind != members[i].kind ||
                !store_member(members[i].bit, &m, out))
                goto bad;
            seen |= members[i].bit;
        }
    }
    if (rc != 0 || seen != M_ALL || out->price > ENCORE_LEDGER_MAX_AMOUNT / out->months)
        goto bad;
    return 0;
bad:
    memset(out, 0, sizeof *out);
    return ENCORE_VIP_EMETADATA;
}

/* The fold. */

typedef struct {
    int64_t user; /* first: the hash key points here */
    int rank;
    int64_t expires_us;
} vip_entry;

struct encore_vip {
    GHashTable *users; /* int64 user -> vip_entry*, owned */
    encore_seen *seen; /* applied transfer ids */
};

encore_vip *encore_vip_new(size_t seen_capacity)
{
    encore_vip *v = g_new0(encore_vip, 1);
    v->users = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
    v->seen = encore_seen_new(seen_capacity);
    return v;
}

void encore_vip_free(encore_vip *vip)
{
    if (!vip)
        return;
    g_hash_table_destroy(vip->users);
    encore_seen_free(vip->seen);
    g_free(vip);
}

encore_vip_result encore_vip_apply(encore_vip *vip, int64_t user, int rank, int64_t months,
                                   int64_t transfer_id, int64_t time_us, int64_t *expires_us)
{
    if (user <= 0 || rank < 1 || rank > ENCORE_CATALOG_RANK_MAX || months < 1 ||
        months > ENCORE_VIP_MAX_MONTHS || transfer_id <= 0 || time_us < 0 ||
        time_us > ENCORE_VIP_MAX_EXPIRY_US)
        return ENCORE_VIP_INVALID;
    vip_entry *e = g_hash_table_lookup(vip->users, &user);
    encore_seen_result seen = encore_seen_add(vip->seen, transfer_id);
    if (seen != ENCORE_SEEN_NEW) {
        if (expires_us)
            *expires_us = e ? e->expires_us : 0;
        return seen == ENCORE_SEEN_DUPLICATE ? ENCORE_VIP_DUPLICATE : ENCORE_VIP_STALE;
    }
    if (!e) {
        e = g_new0(vip_entry, 1);
        e->user = user;
        g_hash_table_insert(vip->users, &e->user, e);
    }
    int64_t add = months * ENCORE_VIP_MONTH_US;
    if (time_us < e->expires_us) {
        /* Active: extend from the current expiry; the better tier wins. */
        e->expires_us = MIN(e->expires_us + add, ENCORE_VIP_MAX_EXPIRY_US);
        e->rank = MAX(e->rank, rank);
    } else {
        e->expires_us = MIN(time_us + add, ENCORE_VIP_MAX_EXPIRY_US);
        e->rank = rank;
    }
    if (expires_us)
        *expires_us = e->expires_us;
    return ENCORE_VIP_OK;
}

bool encore_vip_get(const encore_vip *vip, int64_t user, int64_t now_us, encore_vip_status *out)
{
    const vip_entry *e = g_hash_table_lookup(vip->users, &user);
    if (!e || now_us >= e->expires_us) {
        out->rank = 0;
        out->expires_us = 0;
        return false;
    }
    out->rank = e->rank;
    out->expires_us = e->expires_us;
    return true;
}

encore_vip_result encore_vip_may_buy(const encore_vip *vip, int64_t user, int rank, int64_t now_us)
{
    encore_vip_status st;
    if (encore_vip_get(vip, user, now_us, &st) && rank < st.rank)
        return ENCORE_VIP_LOWER_TIER;
    return ENCORE_VIP_OK;
}

static gboolean expired(gpointer key, gpointer value, gpointer data)
{
    const vip_entry *e = value;
    return e->expires_us <= *(const int64_t *)data;
}

size_t encore_vip_prune(encore_vip *vip, int64_t now_us)
{
    return g_hash_table_foreach_remove(vip->users, expired, &now_us);
}

size_t encore_vip_size(const encore_vip *vip)
{
    return g_hash_table_size(vip->users);
}
