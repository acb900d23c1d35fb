/* Gifts: the plan of one gift transfer (split legs, scoped id, canonical metadata), the strict
 * reader of a committed gift's metadata and the combo tracker. Main thread; no I/O, no logging;
 * it must not submit to the ledger or keep per-user state besides the combo entries. */
#include <string.h>

#include "server/accounts/flatjson.h"
#include "server/economy/gifts.h"
#include "server/economy/split.h"

static const char *const status_names[] = {
    "ok", "invalid_request", "bad_key", "self_gift", "unknown_gift", "bad_count", "too_expensive",
};

const char *encore_gifts_status_name(encore_gifts_status status)
{
    if ((unsigned)status >= G_N_ELEMENTS(status_names))
        return NULL;
    return status_names[status];
}

/* Character classes of the identifiers that go into ids and metadata. */
enum { CS_KEY, CS_CATALOG, CS_SHOW };

static gboolean in_set(uint8_t c, int set)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')
        return TRUE;
    if (set == CS_CATALOG)
        return FALSE;
    if (c >= 'A' && c <= 'Z')
        return TRUE;
    return set == CS_SHOW && (c == '.' || c == ':');
}

/* Whether s[0..n) is min..max bytes of the set. */
static gboolean valid_chars(const char *s, size_t n, size_t min, size_t max, int set)
{
    if (n < min || n > max)
        return FALSE;
    for (size_t i = 0; i < n; i++) {
        if (!in_set((uint8_t)s[i], set))
            return FALSE;
    }
    return TRUE;
}

static gboolean valid_cstr(const char *s, size_t min, size_t max, int set)
{
    if (!s)
        return FALSE;
    size_t n = strnlen(s, max + 1);
    return valid_chars(s, n, min, max, set);
}

encore_gifts_status encore_gifts_plan(const encore_catalog *catalog, const encore_gift_order *o,
                                      encore_gift_plan *plan)
{
    const encore_catalog_settings *s = encore_catalog_get_settings(catalog);
    encore_gift_contract none = {0, s->singer_bp, 0};
    const encore_gift_contract *k = o->contract ? o->contract : &none;
    const char *show = o->show ? o->show : "";

    if (o->from <= 0 || o->to <= 0 || !valid_cstr(o->room, 1, ENCORE_GIFTS_ROOM_MAX, CS_KEY) ||
        !valid_cstr(show, 0, ENCORE_GIFTS_SHOW_MAX, CS_SHOW) || k->agent < 0 ||
        (uint64_t)k->singer_bp + k->agent_bp > ENCORE_SPLIT_BP_ONE ||
        (k->agent == 0 && k->agent_bp != 0) || k->agent == o->to)
        return ENCORE_GIFTS_INVALID;
    if (!valid_cstr(o->key, 1, ENCORE_GIFTS_KEY_MAX, CS_KEY))
        return ENCORE_GIFTS_BAD_KEY;
    if (o->from == o->to)
        return ENCORE_GIFTS_SELF_GIFT;
    const encore_catalog_gift *gift = encore_catalog_gift_find(catalog, o->gift);
    if (!gift)
        return ENCORE_GIFTS_UNKNOWN_GIFT;
    if (o->count < 1 || o->count > s->max_count)
        return ENCORE_GIFTS_BAD_COUNT;
    /* Both are positive: the product overflows exactly when it exceeds the bound. */
    if (gift->price > ENCORE_LEDGER_MAX_AMOUNT / o->count)
        return ENCORE_GIFTS_TOO_EXPENSIVE;

    memset(plan, 0, sizeof *plan);
    plan->gift = gift;
    plan->total = gift->price * o->count;
    plan->agent = k->agent;
    if (encore_split(plan->total, k->singer_bp, k->agent_bp, &plan->singer_part, &plan->agent_part,
                     &plan->platform_part) != 0)
        return ENCORE_GIFTS_INVALID; /* not reached: the shares were checked above */

    g_snprintf(plan->id, sizeof plan->id, "gift:%" G_GINT64_FORMAT ":%s", o->from, o->key);
    size_t n = 0;
    g_snprintf(plan->accounts[n], sizeof plan->accounts[n], "wallet:%" G_GINT64_FORMAT, o->from);
    plan->legs[n].account = plan->accounts[n];
    plan->legs[n++].amount = -plan->total;
    if (plan->singer_part > 0) {
        g_snprintf(plan->accounts[n], sizeof plan->accounts[n], "earnings:%" G_GINT64_FORMAT,
                   o->to);
        plan->legs[n].account = plan->accounts[n];
        plan->legs[n++].amount = plan->singer_part;
    }
    if (plan->agent_part > 0) {
        g_snprintf(plan->accounts[n], sizeof plan->accounts[n], "earnings:%" G_GINT64_FORMAT,
                   k->agent);
        plan->legs[n].account = plan->accounts[n];
        plan->legs[n++].amount = plan->agent_part;
    }
    if (plan->platform_part > 0) {
        g_strlcpy(plan->accounts[n], "platform:revenue", sizeof plan->accounts[n]);
        plan->legs[n].account = plan->accounts[n];
        plan->legs[n++].amount = plan->platform_part;
    }
    g_snprintf(plan->metadata, sizeof plan->metadata,
               "{\"agent\":%" G_GINT64_FORMAT ",\"count\":%" G_GINT64_FORMAT
               ",\"from\":%" G_GINT64_FORMAT ",\"gift\":\"%s\",\"price\":%" G_GINT64_FORMAT
               ",\"room\":\"%s\",\"show\":\"%s\",\"to\":%" G_GINT64_FORMAT "}",
               k->agent, o->count, o->from, gift->id, gift->price, o->room, show, o->to);
    plan->req.id = plan->id;
    plan->req.kind = "gift";
    plan->req.metadata = plan->metadata;
    plan->req.legs = plan->legs;
    plan->req.n_legs = n;
    return ENCORE_GIFTS_OK;
}

/* The members of a gift's metadata, as bits. */
enum {
    M_AGENT = 1 << 0,
    M_COUNT = 1 << 1,
    M_FROM = 1 << 2,
    M_GIFT = 1 << 3,
    M_PRICE = 1 << 4,
    M_ROOM = 1 << 5,
    M_SHOW = 1 << 6,
    M_TO = 1 << 7,
    M_ALL = (1 << 8) - 1,
};

static const struct {
    const char *name;
    int bit;
    encore_flatjson_kind kind;
} members[] = {
    {"agent", M_AGENT, ENCORE_FLATJSON_INT},  {"count", M_COUNT, ENCORE_FLATJSON_INT},
    {"from", M_FROM, ENCORE_FLATJSON_INT},    {"gift", M_GIFT, ENCORE_FLATJSON_STRING},
    {"price", M_PRICE, ENCORE_FLATJSON_INT},  {"room", M_ROOM, ENCORE_FLATJSON_STRING},
    {"show", M_SHOW, ENCORE_FLATJSON_STRING}, {"to", M_TO, ENCORE_FLATJSON_INT},
};

/* Stores one known member into *out; FALSE when its value is out of range. */
static gboolean store_member(int bit, const encore_flatjson_member *m, encore_gift_record *out)
{
    switch (bit) {
    case M_AGENT:
        out->agent = m->num;
        return m->num >= 0;
    case M_COUNT:
        out->count = m->num;
        return m->num >= 1 && m->num <= ENCORE_CATALOG_MAX_COUNT;
    case M_FROM:
        out->from = m->num;
        return m->num > 0;
    case M_TO:
        out->to = m->num;
        return m->num > 0;
    case M_PRICE:
        out->price = m->num;
        return m->num >= 1 && m->num <= ENCORE_LEDGER_MAX_AMOUNT;
    case M_GIFT:
        if (!valid_chars(m->str, m->str_len, 1, ENCORE_CATALOG_ID_MAX, CS_CATALOG))
            return FALSE;
        memcpy(out->gift, m->str, m->str_len);
        return TRUE;
    case M_ROOM:
        if (!valid_chars(m->str, m->str_len, 1, ENCORE_GIFTS_ROOM_MAX, CS_KEY))
            return FALSE;
        memcpy(out->room, m->str, m->str_len);
        return TRUE;
    case M_SHOW:
        if (!valid_chars(m->str, m->str_len, 0, ENCORE_GIFTS_SHOW_MAX, CS_SHOW))
            return FALSE;
        memcpy(out->show, m->str, m->str_len);
        return TRUE;
    default:
        return FALSE;
    }
}

int encore_gift_record_from_metadata(const uint8_t *buf, size_t len, encore_gift_record *out)
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
    if (rc != 0 || seen != M_ALL || out->from == out->to || out->agent == out->to ||
        out->price > ENCORE_LEDGER_MAX_AMOUNT / out->count)
        goto bad;
    return 0;
bad:
    memset(out, 0, sizeof *out);
    return ENCORE_GIFTS_EMETADATA;
}

/* Combo tracking. */

typedef struct {
    int64_t from;
    int64_t to;
    char gift[ENCORE_CATALOG_ID_MAX + 1];
} combo_key;

typedef struct {
    combo_key key;   /* first: the hash table's key points here */
    int64_t last_ms; /* time of the latest hit */
    int64_t combo;   /* running count */
    GList link;      /* in the tracker's idle queue, data = this entry */
} combo_entry;

struct encore_gifts_combo {
    GHashTable *entries; /* combo_key* -> combo_entry* (owned) */
    GQueue idle;         /* entries by last_ms, oldest first */
    int64_t window_ms;
    size_t max_entries;
};

static guint combo_hash(gconstpointer p)
{
    const combo_key *k = p;
    guint h = g_int64_hash(&k->from);
    h = h * 31 + g_int64_hash(&k->to);
    return h * 31 + g_str_hash(k->gift);
}

static gboolean combo_equal(gconstpointer a, gconstpointer b)
{
    const combo_key *x = a, *y = b;
    return x->from == y->from && x->to == y->to && strcmp(x->gift, y->gift) == 0;
}

encore_gifts_combo *encore_gifts_combo_new(int64_t window_ms, size_t max_entries)
{
    encore_gifts_combo *c = g_new0(encore_gifts_combo, 1);
    c->entries = g_hash_table_new_full(combo_hash, combo_equal, NULL, g_free);
    g_queue_init(&c->idle);
    c->window_ms = window_ms > 0 ? window_ms : 0;
    c->max_entries = max_entries ? max_entries : ENCORE_GIFTS_COMBO_DEFAULT_MAX;
    return c;
}

void encore_gifts_combo_free(encore_gifts_combo *combo)
{
    if (!combo)
        return;
    g_hash_table_destroy(combo->entries);
    g_free(combo);
}

static void drop_oldest(encore_gifts_combo *c)
{
    GList *l = g_queue_pop_head_link(&c->idle);
    combo_entry *e = l->data;
    g_hash_table_remove(c->entries, &e->key);
}

int64_t encore_gifts_combo_hit(encore_gifts_combo *combo, int64_t from, int64_t to,
                               const char *gift, int64_t count, int64_t now_ms)
{
    combo_key key = {from, to, ""};
    if (count <= 0 || !gift || strnlen(gift, sizeof key.gift) >= sizeof key.gift)
        return 0;
    if (combo->window_ms == 0)
        return count;
    memcpy(key.gift, gift, strlen(gift) + 1);
    /* Forget what has been idle for longer than the window. */
    while (combo->idle.head) {
        const combo_entry *old = combo->idle.head->data;
        if (now_ms - old->last_ms <= combo->window_ms)
            break;
        drop_oldest(combo);
    }
    combo_entry *e = g_hash_table_lookup(combo->entries, &key);
    if (e) {
        /* Still here, so within the window. */
        g_queue_unlink(&combo->idle, &e->link);
        e->combo = count > INT64_MAX - e->combo ? INT64_MAX : e->combo + count;
    } else {
        if (g_hash_table_size(combo->entries) >= combo->max_entries)
            drop_oldest(combo);
        e = g_new0(combo_entry, 1);
        e->key = key;
        e->link.data = e;
        e->combo = count;
        g_hash_table_insert(combo->entries, &e->key, e);
    }
    e->last_ms = now_ms;
    g_queue_push_tail_link(&combo->idle, &e->link);
    return e->combo;
}

size_t encore_gifts_combo_size(const encore_gifts_combo *combo)
{
    return g_hash_table_size(combo->entries);
}
