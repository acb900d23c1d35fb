/* The daily spending cap: per-user committed and reserved coins for today and yesterday (UTC).
 * Main thread only; no I/O, no logging. It must not keep days older than yesterday. */
#include "server/economy/spendcap.h"
#include "server/economy/ledger.h"
#include "server/economy/seen.h"

typedef struct {
    int64_t committed;
    int64_t reserved;
} spend;

/* One kept day. */
typedef struct {
    int64_t day;       /* UTC day number; meaningful when users != NULL */
    GHashTable *users; /* int64 user (key inside the value) -> spend_entry*, owned */
} day_slot;

typedef struct {
    int64_t user; /* first: the key points here */
    spend s;
} spend_entry;

struct encore_spendcap {
    int64_t cap;
    day_slot today;
    day_slot yesterday;
    encore_seen *seen; /* committed transfer ids */
};

static const char *const status_names[] = {"ok", "daily_cap", "duplicate", "invalid_request"};

const char *encore_spendcap_status_name(encore_spendcap_status status)
{
    if ((unsigned)status >= G_N_ELEMENTS(status_names))
        return NULL;
    return status_names[status];
}

int64_t encore_spendcap_day(int64_t time_us)
{
    int64_t d = time_us / ENCORE_SPENDCAP_DAY_US;
    if (time_us % ENCORE_SPENDCAP_DAY_US < 0)
        d--;
    return d;
}

static void slot_clear(day_slot *s)
{
    if (s->users)
        g_hash_table_destroy(s->users);
    s->users = NULL;
}

static void slot_open(day_slot *s, int64_t day)
{
    s->day = day;
    s->users = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
}

encore_spendcap *encore_spendcap_new(int64_t cap, size_t seen_capacity)
{
    encore_spendcap *sc = g_new0(encore_spendcap, 1);
    sc->cap = cap > 0 ? cap : 0;
    sc->seen = encore_seen_new(seen_capacity);
    return sc;
}

void encore_spendcap_free(encore_spendcap *sc)
{
    if (!sc)
        return;
    slot_clear(&sc->today);
    slot_clear(&sc->yesterday);
    encore_seen_free(sc->seen);
    g_free(sc);
}

/* Makes `day` kept when it is today, yesterday or newer (moving today forward); returns its slot,
 * or NULL for an older day. */
static day_slot *slot_for(encore_spendcap *sc, int64_t day)
{
    if (!sc->today.users || day > sc->today.day) {
        if (sc->today.users && day == sc->today.day + 1) {
            slot_clear(&sc->yesterday);
            sc->yesterday = sc->today;
        } else {
            slot_clear(&sc->yesterday);
            slot_clear(&sc->today);
        }
        slot_open(&sc->today, day);
        return &sc->today;
    }
    if (day == sc->today.day)
        return &sc->today;
    if (sc->yesterday.users && day == sc->yesterday.day)
        return &sc->yesterday;
    if (day == sc->today.day - 1) {
        slot_open(&sc->yesterday, day);
        return &sc->yesterday;
    }
    return NULL;
}

/* A kept slot for `day` without moving anything, or NULL. */
static const day_slot *slot_find(const encore_spendcap *sc, int64_t day)
{
    if (sc->today.users && sc->today.day == day)
        return &sc->today;
    if (sc->yesterday.users && sc->yesterday.day == day)
        return &sc->yesterday;
    return NULL;
}

static spend *entry(day_slot *slot, int64_t user)
{
    spend_entry *e = g_hash_table_lookup(slot->users, &user);
    if (!e) {
        e = g_new0(spend_entry, 1);
        e->user = user;
        g_hash_table_insert(slot->users, &e->user, e);
    }
    return &e->s;
}

static gboolean valid(int64_t user, int64_t amount)
{
    return user > 0 && amount > 0 && amount <= ENCORE_LEDGER_MAX_AMOUNT;
}

/* Saturating addition of non-negative values (a cap of 0 never stops spending). */
static int64_t add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

encore_spendcap_status encore_spendcap_reserve(encore_spendcap *sc, int64_t user, int64_t amount,
                                               int64_t now_us, int64_t *day)
{
    if (!valid(user, amount))
        return ENCORE_SPENDCAP_INVALID;
    int64_t d = encore_spendcap_day(now_us);
    day_slot *slot = slot_for(sc, d);
    if (!slot) /* now_us is older than yesterday: a clock gone backwards; keep it simple */
        return ENCORE_SPENDCAP_INVALID;
    spend *s = entry(slot, user);
    if (sc->cap > 0 && add_sat(add_sat(s->committed, s->reserved), amount) > sc->cap)
        return ENCORE_SPENDCAP_DAILY_CAP;
    s->reserved += amount;
    *day = d;
    return ENCORE_SPENDCAP_OK;
}

static void release_in(day_slot *slot, int64_t user, int64_t amount)
{
    spend_entry *e = slot ? g_hash_table_lookup(slot->users, &user) : NULL;
    if (e)
        e->s.reserved = e->s.reserved > amount ? e->s.reserved - amount : 0;
}

encore_spendcap_status encore_spendcap_commit(encore_spendcap *sc, int64_t user, int64_t amount,
                                              int64_t day, int64_t transfer_id)
{
    if (!valid(user, amount) || transfer_id <= 0)
        return ENCORE_SPENDCAP_INVALID;
    day_slot *slot = (day_slot *)slot_find(sc, day);
    release_in(slot, user, amount);
    if (encore_seen_add(sc->seen, transfer_id) != ENCORE_SEEN_NEW)
        return ENCORE_SPENDCAP_DUPLICATE;
    if (slot) {
        spend *s = entry(slot, user);
        s->committed = add_sat(s->committed, amount);
    }
    return ENCORE_SPENDCAP_OK;
}

void encore_spendcap_release(encore_spendcap *sc, int64_t user, int64_t amount, int64_t day)
{
    if (!valid(user, amount))
        return;
    release_in((day_slot *)slot_find(sc, day), user, amount);
}

encore_spendcap_status encore_spendcap_record(encore_spendcap *sc, int64_t user, int64_t amount,
                                              int64_t transfer_id, int64_t created_us)
{
    if (!valid(user, amount) || transfer_id <= 0)
        return ENCORE_SPENDCAP_INVALID;
    if (encore_seen_add(sc->seen, transfer_id) != ENCORE_SEEN_NEW)
        return ENCORE_SPENDCAP_DUPLICATE;
    day_slot *slot = slot_for(sc, encore_spendcap_day(created_us));
    if (slot) {
        spend *s = entry(slot, user);
        s->committed = add_sat(s->committed, amount);
    }
    return ENCORE_SPENDCAP_OK;
}

void encore_spendcap_get(const encore_spendcap *sc, int64_t user, int64_t now_us, int64_t *spent,
                         int64_t *reserved)
{
    const day_slot *slot = slot_find(sc, encore_spendcap_day(now_us));
    const spend_entry *e = slot ? g_hash_table_lookup(slot->users, &user) : NULL;
    if (spent)
        *spent = e ? e->s.committed : 0;
    if (reserved)
        *reserved = e ? e->s.reserved : 0;
}

int64_t encore_spendcap_cap(const encore_spendcap *sc)
{
    return sc->cap;
}

size_t encore_spendcap_size(const encore_spendcap *sc)
{
    size_t n = 0;
    if (sc->today.users)
        n += g_hash_table_size(sc->today.users);
    if (sc->yesterday.users)
        n += g_hash_table_size(sc->yesterday.users);
    return n;
}
