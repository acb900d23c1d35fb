/* The money requests (see money.h). Every request that moves coins becomes one ledger transfer
 * with a scoped, client-chosen id; its reply and its effects (broadcast, rankings, VIP expiry,
 * spending) follow the ledger's durable answer. Everything runs on the main thread: the ledger
 * and the users store answer on the main context, and a late answer looks its connection up by
 * id (the client may be gone). */
#define G_LOG_DOMAIN "encore-money"
#include "config.h"

#include "server/money.h"

#include <stdlib.h>
#include <string.h>

#include "server/accounts/roles.h"
#include "server/accounts/users.h"
#include "server/auth.h"
#include "server/economy/boards.h"
#include "server/economy/catalog.h"
#include "server/economy/gifts.h"
#include "server/economy/ledger.h"
#include "server/economy/spendcap.h"
#include "server/economy/vip.h"

#define BOARD_PUSH_MS 500 /* the show board is pushed at most this often per room */
#define BOARD_PUSH_TOP 10 /* entries in the pushed show board */
#define BOARD_QUERY_TOP 20
#define SCAN_PAGE 5000
#define WD_KEY_MAX 40 /* withdrawal keys are shorter: the id must fit an escrow account name */

typedef enum { WD_PENDING, WD_PAID, WD_REJECTED } wd_status;

static const char *const wd_status_names[] = {"pending", "paid", "rejected"};

typedef struct {
    char id[72]; /* "wd-<user>-<key>" */
    int64_t user;
    int64_t amount;
    wd_status status;
    int64_t at_us; /* when it was requested */
} withdrawal;

struct encore_money {
    encore_server *srv;
    GHashTable *contracts; /* singer id -> encore_gift_contract (active contracts) */
    GHashTable *names;     /* user id -> name (display cache for the boards) */
    GHashTable *fetching;  /* user ids whose name is being fetched */
    encore_gifts_combo *combo;
    encore_spendcap *cap;
    encore_boards *boards;
    encore_vip *vip;
    GHashTable *withdrawals;  /* id -> withdrawal */
    GHashTable *board_push;   /* room -> GSource id of a scheduled "board" push */
    GHashTable *gift_batches; /* room -> gift_batch */
    guint prune_timer;
    uint64_t gifts, gift_coins, vip_purchases, withdrawals_requested, withdrawals_paid,
        withdrawals_rejected;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static encore_money *money_of(void *ud)
{
    return ((encore_server *)ud)->money;
}

static encore_member *member(encore_ws_conn *c)
{
    return encore_ws_conn_get_data(c);
}

static int64_t now_us(void)
{
    return g_get_real_time();
}

static int64_t *int64_key(int64_t v)
{
    int64_t *k = g_new(int64_t, 1);
    *k = v;
    return k;
}

/* A request answered later: the connection and request id to answer. */
typedef struct {
    encore_money *money;
    uint64_t conn_id;
    json_t *id;
} later;

static void later_init(later *l, encore_money *money, encore_ws_conn *c, json_t *id)
{
    l->money = money;
    l->conn_id = encore_ws_conn_id(c);
    l->id = id ? json_incref(id) : NULL;
}

static encore_ws_conn *later_conn(const later *l)
{
    return encore_ws_conn_lookup(l->money->srv->ws, l->conn_id);
}

static void later_clear(later *l)
{
    json_decref(l->id);
}

/* Spending needs the permission and the age rule: under-18 accounts never spend. */
static bool may_spend(encore_ws_conn *c, json_t *id)
{
    encore_member *m = member(c);
    if (!encore_auth_may(c, id, ENCORE_PERM_SPEND))
        return false;
    if (!encore_accounts_is_adult(encore_member_birth_year(m), encore_server_now())) {
        encore_ws_error(c, id, "under_age", NULL, "accounts under 18 cannot spend coins");
        return false;
    }
    return true;
}

/* The protocol's answer to a ledger refusal (nothing moved). */
static void ledger_error(encore_ws_conn *c, json_t *id, const encore_transfer_result *r)
{
    switch (r->status) {
    case ENCORE_LEDGER_INSUFFICIENT_FUNDS:
        encore_ws_error(c, id, "insufficient_funds", NULL, "not enough coins");
        break;
    case ENCORE_LEDGER_IDEMPOTENCY_CONFLICT:
        encore_ws_error(c, id, "idempotency_conflict", "key",
                        "this key was used before for another request");
        break;
    case ENCORE_LEDGER_STORE_ERROR:
    case ENCORE_LEDGER_OVERLOADED:
    case ENCORE_LEDGER_CLOSED:
        encore_ws_error(c, id, "unavailable", NULL,
                        "the ledger could not commit (%s): retry with the same key",
                        encore_ledger_status_name(r->status));
        break;
    default: /* INVALID, UNKNOWN_ACCOUNT: this server built a request the ledger refuses */
        g_warning("ledger refused %s: %s", r->id, r->detail);
        encore_ws_error(c, id, "invalid_request", NULL, "the ledger refused the request: %s",
                        r->detail);
        break;
    }
}

static const char *name_of(encore_money *mo, int64_t user);

/* ---- names (display only) ----------------------------------------------------------------- */

#define NAMES_MAX 100000 /* display names cached; past it the cache starts over */

static void remember_name(encore_money *mo, int64_t user, const char *name)
{
    if (g_hash_table_size(mo->names) >= NAMES_MAX)
        g_hash_table_remove_all(mo->names);
    if (user > 0 && name)
        g_hash_table_replace(mo->names, int64_key(user), g_strdup(name));
}

static void schedule_board(encore_money *mo, const char *room);

typedef struct {
    encore_money *money;
    int64_t user;
} name_fetch;

static void on_name(const encore_user *u, const char *error, void *user_data)
{
    name_fetch *f = user_data;
    g_hash_table_remove(f->money->fetching, &f->user);
    if (u)
        remember_name(f->money, u->id, u->name);
}

/* The cached name of a user, or NULL while it is fetched (the next push or query has it). */
static const char *name_of(encore_money *mo, int64_t user)
{
    const char *n = g_hash_table_lookup(mo->names, &user);
    if (n || g_hash_table_contains(mo->fetching, &user))
        return n;
    g_hash_table_add(mo->fetching, int64_key(user));
    name_fetch *f = g_new(name_fetch, 1);
    f->money = mo;
    f->user = user;
    encore_users_get_async(mo->srv->users, user, mo->srv->ctx, on_name, f, g_free);
    return NULL;
}

/* ---- boards ------------------------------------------------------------------------------- */

static json_t *entries_json(encore_money *mo, const encore_boards_entry *e, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr,
                              json_pack("{s:I, s:s?, s:I}", "user", (json_int_t)e[i].user, "name",
                                        name_of(mo, e[i].user), "coins", (json_int_t)e[i].coins));
    return arr;
}

typedef struct {
    encore_money *money;
    char *room;
} board_push;

static void board_push_free(gpointer data)
{
    board_push *p = data;
    g_free(p->room);
    g_free(p);
}

static gboolean push_board(gpointer data)
{
    board_push *p = data;
    encore_money *mo = p->money;
    encore_boards_entry e[BOARD_PUSH_TOP];
    size_t n = encore_boards_top(mo->boards, ENCORE_BOARDS_SHOW, ENCORE_BOARDS_ALL, p->room, 0,
                                 now_us(), e, BOARD_PUSH_TOP);
    const char *show = encore_boards_show_id(mo->boards, p->room);
    json_t *ev = json_pack("{s:s, s:s, s:s?, s:o}", "type", "board", "room", p->room, "show", show,
                           "entries", entries_json(mo, e, n));
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (text) {
        encore_rooms_broadcast_room(mo->srv->rooms, p->room, text, strlen(text));
        free(text);
    }
    g_hash_table_remove(mo->board_push, p->room); /* frees p through the source's destroy */
    return G_SOURCE_REMOVE;
}

static void schedule_board(encore_money *mo, const char *room)
{
    if (!room || g_hash_table_contains(mo->board_push, room))
        return;
    board_push *p = g_new(board_push, 1);
    p->money = mo;
    p->room = g_strdup(room);
    GSource *s = g_timeout_source_new(BOARD_PUSH_MS);
    g_source_set_callback(s, push_board, p, board_push_free);
    guint sid = g_source_attach(s, mo->srv->ctx);
    g_source_unref(s);
    g_hash_table_insert(mo->board_push, g_strdup(room), GUINT_TO_POINTER(sid));
}

static void remove_source(gpointer data)
{
    g_source_remove(GPOINTER_TO_UINT(data));
}

/* ---- rooms hooks -------------------------------------------------------------------------- */

static const char *vip_tier_of(encore_money *mo, int64_t user)
{
    encore_vip_status st;
    if (!encore_vip_get(mo->vip, user, now_us(), &st))
        return NULL;
    const encore_catalog_vip *t = encore_catalog_vip_find_rank(mo->srv->catalog, st.rank);
    return t ? t->id : NULL;
}

static const char *badge(int64_t user, void *ud)
{
    return vip_tier_of(ud, user);
}

static void joined(encore_member *m, void *ud)
{
    encore_money *mo = ud;
    int64_t user = encore_member_user_id(m);
    remember_name(mo, user, encore_member_name(m));
    const char *tier = vip_tier_of(mo, user);
    if (!tier)
        return;
    json_t *ev = json_pack("{s:s, s:{s:I, s:s, s:s}}", "type", "vip.entered", "user", "id",
                           (json_int_t)user, "name", encore_member_name(m), "vip", tier);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (text) {
        encore_rooms_broadcast(mo->srv->rooms, m, text, strlen(text));
        free(text);
    }
}

static void stage_changed(encore_rooms *rooms, const char *room, const char *show,
                          encore_member *singer, void *ud)
{
    encore_money *mo = ud;
    if (show)
        encore_boards_show_start(mo->boards, room, show);
    else
        encore_boards_show_end(mo->boards, room);
    schedule_board(mo, room); /* the new (empty) board replaces the old one on the pages */
}

/* ---- applying committed transfers (live answers and the startup rebuild) ------------------ */

static void apply_gift(encore_money *mo, int64_t transfer_id, const encore_gift_record *g,
                       int64_t time_us, bool *show_changed)
{
    encore_boards_gift bg = {
        .transfer_id = transfer_id,
        .from = g->from,
        .to = g->to,
        .coins = g->price * g->count,
        .time_us = time_us,
        .room = g->room,
        .show = g->show,
    };
    if (encore_boards_apply(mo->boards, &bg, show_changed) != ENCORE_BOARDS_APPLIED && show_changed)
        *show_changed = false;
}

static void apply_withdrawal(encore_money *mo, const char *kind, const char *metadata,
                             int64_t created_us)
{
    json_t *m = metadata ? json_loads(metadata, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(m, "withdrawal"));
    if (!id || strlen(id) >= sizeof(((withdrawal *)0)->id)) {
        json_decref(m);
        return;
    }
    withdrawal *w = g_hash_table_lookup(mo->withdrawals, id);
    if (strcmp(kind, "withdrawal.hold") == 0) {
        if (!w) {
            w = g_new0(withdrawal, 1);
            g_strlcpy(w->id, id, sizeof w->id);
            w->user = json_integer_value(json_object_get(m, "user"));
            w->amount = json_integer_value(json_object_get(m, "amount"));
            w->status = WD_PENDING;
            w->at_us = created_us;
            g_hash_table_insert(mo->withdrawals, w->id, w);
        }
    } else if (w && strcmp(kind, "withdrawal.pay") == 0) {
        w->status = WD_PAID;
    } else if (w && strcmp(kind, "withdrawal.return") == 0) {
        w->status = WD_REJECTED;
    }
    json_decref(m);
}

static void rebuild_gift(encore_money *mo, const encore_ledger_record *r)
{
    encore_gift_record g;
    if (!r->metadata || encore_gift_record_from_metadata((const uint8_t *)r->metadata,
                                                         strlen(r->metadata), &g) != 0) {
        g_warning("transfer %" G_GINT64_FORMAT ": unreadable gift metadata, left out of the "
                  "rankings",
                  r->transfer_id);
        return;
    }
    apply_gift(mo, r->transfer_id, &g, r->created_us, NULL);
    (void)encore_spendcap_record(mo->cap, g.from, g.price * g.count, r->transfer_id, r->created_us);
}

static void rebuild_vip(encore_money *mo, const encore_ledger_record *r)
{
    encore_vip_record v;
    if (!r->metadata || encore_vip_record_from_metadata((const uint8_t *)r->metadata,
                                                        strlen(r->metadata), &v) != 0) {
        g_warning("transfer %" G_GINT64_FORMAT ": unreadable VIP metadata", r->transfer_id);
        return;
    }
    (void)encore_vip_apply(mo->vip, v.user, v.rank, v.months, r->transfer_id, r->created_us, NULL);
    (void)encore_spendcap_record(mo->cap, v.user, v.price * v.months, r->transfer_id,
                                 r->created_us);
}

/* Pages once through every committed transfer, oldest first, folding the kinds that derived
 * state comes from (the ledger reads transfers in id order whatever the kind, so one pass over
 * all of them is cheaper than one pass per kind). */
static gboolean rebuild(encore_money *mo, GError **error)
{
    int64_t after = 0;
    for (;;) {
        GPtrArray *page = encore_ledger_scan(mo->srv->ledger, "", after, SCAN_PAGE, error);
        if (!page)
            return FALSE;
        for (guint i = 0; i < page->len; i++) {
            const encore_ledger_record *r = g_ptr_array_index(page, i);
            if (strcmp(r->kind, "gift") == 0)
                rebuild_gift(mo, r);
            else if (strcmp(r->kind, "vip") == 0)
                rebuild_vip(mo, r);
            else if (g_str_has_prefix(r->kind, "withdrawal."))
                apply_withdrawal(mo, r->kind, r->metadata, r->created_us);
            after = r->transfer_id;
        }
        guint n = page->len;
        g_ptr_array_unref(page);
        if (n == 0)
            return TRUE;
    }
}

/* ---- wallet.get ----------------------------------------------------------------------------- */

static void on_wallet(gboolean ok, int64_t balance, const GError *error, void *user_data)
{
    later *l = user_data;
    encore_ws_conn *c = later_conn(l);
    if (!c)
        return;
    if (!ok) {
        encore_ws_error(c, l->id, "unavailable", NULL, "the ledger could not answer: %s",
                        error ? error->message : "?");
        return;
    }
    encore_money *mo = l->money;
    int64_t user = encore_member_user_id(member(c)), spent = 0, reserved = 0;
    encore_spendcap_get(mo->cap, user, now_us(), &spent, &reserved);
    encore_vip_status st;
    json_t *vip = json_null();
    if (encore_vip_get(mo->vip, user, now_us(), &st)) {
        const encore_catalog_vip *t = encore_catalog_vip_find_rank(mo->srv->catalog, st.rank);
        vip = json_pack("{s:s, s:I}", "tier", t ? t->id : "?", "expires",
                        (json_int_t)(st.expires_us / G_USEC_PER_SEC));
    }
    encore_ws_reply(c, l->id,
                    json_pack("{s:I, s:I, s:I, s:o}", "balance", (json_int_t)balance, "spent_today",
                              (json_int_t)spent, "daily_cap",
                              (json_int_t)encore_spendcap_cap(mo->cap), "vip", vip));
}

static void later_free(gpointer data)
{
    later *l = data;
    later_clear(l);
    g_free(l);
}

static void h_wallet(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_money *mo = money_of(ud);
    char account[ENCORE_LEDGER_ACCOUNT_MAX + 1];
    snprintf(account, sizeof account, "wallet:%" G_GINT64_FORMAT, encore_member_user_id(member(c)));
    later *l = g_new(later, 1);
    later_init(l, mo, c, id);
    encore_ledger_balance_async(mo->srv->ledger, account, mo->srv->ctx, on_wallet, l, later_free);
}

/* ---- gift.send ------------------------------------------------------------------------------ */

typedef struct {
    later l;
    int64_t from, to, day, total;
    char from_name[ENCORE_USERS_NAME_MAX + 1], to_name[ENCORE_USERS_NAME_MAX + 1];
    char room[ENCORE_GIFTS_ROOM_MAX + 1];
    const encore_catalog_gift *gift;
    int64_t count;
    encore_gift_record rec;
} gift_pending;

static void gift_pending_free(gpointer data)
{
    gift_pending *p = data;
    later_clear(&p->l);
    g_free(p);
}

/* Gift events of a room: the first after a quiet spell leaves at once as a `gift` event; the
 * ones that follow within GIFT_BATCH_MS are sent together as one `gifts` event when the window
 * ends (or when GIFT_BATCH_MAX are waiting). A busy room thus costs each member at most ten
 * frames a second however many gifts arrive, instead of one frame per gift per member. */
#define GIFT_BATCH_MS 100
#define GIFT_BATCH_MAX 200

typedef struct {
    encore_money *money;
    char *room;
    json_t *items;   /* waiting gift objects (without "type") */
    int64_t sent_us; /* monotonic time of the last frame sent */
    guint timer;
} gift_batch;

static void gift_batch_free(gpointer data)
{
    gift_batch *b = data;
    if (b->timer)
        g_source_remove(b->timer);
    json_decref(b->items);
    g_free(b->room);
    g_free(b);
}

static void send_room_event(encore_money *mo, const char *room, json_t *ev /* stolen */)
{
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (text) {
        encore_rooms_broadcast_room(mo->srv->rooms, room, text, strlen(text));
        free(text);
    }
}

static void flush_gifts(gift_batch *b)
{
    size_t n = json_array_size(b->items);
    if (n == 1) {
        json_t *ev = json_incref(json_array_get(b->items, 0));
        json_object_set_new(ev, "type", json_string("gift"));
        send_room_event(b->money, b->room, ev);
    } else if (n > 1) {
        send_room_event(
            b->money, b->room,
            json_pack("{s:s, s:s, s:O}", "type", "gifts", "room", b->room, "items", b->items));
    }
    json_array_clear(b->items);
    b->sent_us = g_get_monotonic_time();
}

static gboolean gift_batch_due(gpointer data)
{
    gift_batch *b = data;
    b->timer = 0;
    flush_gifts(b);
    return G_SOURCE_REMOVE;
}

static void broadcast_gift(encore_money *mo, const gift_pending *p, int64_t transfer, int64_t combo)
{
    json_t *item = json_pack(
        "{s:{s:I, s:s, s:s*}, s:{s:I, s:s}, s:s, s:s, s:I, s:I, s:I, s:s, s:i, s:I}", "from", "id",
        (json_int_t)p->from, "name", p->from_name, "vip", vip_tier_of(mo, p->from), "to", "id",
        (json_int_t)p->to, "name", p->to_name, "gift", p->gift->id, "name", p->gift->name, "count",
        (json_int_t)p->count, "combo", (json_int_t)combo, "coins", (json_int_t)p->total,
        "animation", p->gift->animation, "tier", p->gift->tier, "transfer", (json_int_t)transfer);
    gift_batch *b = g_hash_table_lookup(mo->gift_batches, p->room);
    if (!b) {
        b = g_new0(gift_batch, 1);
        b->money = mo;
        b->room = g_strdup(p->room);
        b->items = json_array();
        g_hash_table_insert(mo->gift_batches, b->room, b);
    }
    json_array_append_new(b->items, item);
    int64_t since = g_get_monotonic_time() - b->sent_us;
    if (!b->timer && since >= GIFT_BATCH_MS * 1000) {
        flush_gifts(b); /* quiet room: at once */
    } else if (json_array_size(b->items) >= GIFT_BATCH_MAX) {
        if (b->timer)
            g_source_remove(b->timer);
        b->timer = 0;
        flush_gifts(b);
    } else if (!b->timer) {
        int64_t wait_ms = GIFT_BATCH_MS - since / 1000;
        b->timer = g_timeout_add((guint)CLAMP(wait_ms, 1, GIFT_BATCH_MS), gift_batch_due, b);
    }
}

static void on_gift_lookup(gboolean ok, const encore_ledger_record *rec, const GError *error,
                           void *user_data);

/* Why a gift.send is looked up by its key before it is answered. */
typedef enum {
    LOOKUP_OFF_STAGE, /* `to` is not on stage: a retry of a gift made while they sang? */
    LOOKUP_CONFLICT,  /* the ledger refused the key: a retry after the show, split or price
                       * changed? */
    LOOKUP_REFUSED,   /* refused here (daily cap, catalog): a retry of a gift that committed? */
} lookup_mode;

/* What the client asked for: a retry is the same request when these match, whatever the server
 * filled in around them (room, show, price, split). */
typedef struct {
    later l;
    lookup_mode mode;
    int64_t to, count;
    char gift[ENCORE_CATALOG_ID_MAX + 1];
    const char *code, *field; /* LOOKUP_REFUSED: the local refusal (static strings) */
    char *message;
} gift_lookup;

static void gift_lookup_free(gpointer data)
{
    gift_lookup *g = data;
    later_clear(&g->l);
    g_free(g->message);
    g_free(g);
}

static gift_lookup *lookup_new(encore_money *mo, encore_ws_conn *c, json_t *id, lookup_mode mode,
                               const char *gift, int64_t to, int64_t count)
{
    gift_lookup *g = g_new0(gift_lookup, 1);
    later_init(&g->l, mo, c, id);
    g->mode = mode;
    g->to = to;
    g->count = count;
    if (gift)
        g_strlcpy(g->gift, gift, sizeof g->gift);
    return g;
}

static void lookup_gift(encore_money *mo, int64_t from, const char *key, gift_lookup *g)
{
    char rid[ENCORE_LEDGER_ID_MAX + 1];
    snprintf(rid, sizeof rid, "gift:%" G_GINT64_FORMAT ":%s", from, key);
    encore_ledger_lookup_async(mo->srv->ledger, rid, mo->srv->ctx, on_gift_lookup, g,
                               gift_lookup_free);
}

static void on_gift(const encore_transfer_result *r, void *user_data)
{
    gift_pending *p = user_data;
    encore_money *mo = p->l.money;
    encore_ws_conn *c = later_conn(&p->l);
    if (r->status != ENCORE_LEDGER_OK) {
        encore_spendcap_release(mo->cap, p->from, p->total, p->day);
        if (c && r->status == ENCORE_LEDGER_IDEMPOTENCY_CONFLICT)
            /* The key was used before: the same gift retried after the show, the split or the
             * price changed is answered from the ledger; anything else is a conflict. */
            lookup_gift(mo, p->from, strrchr(r->id, ':') + 1,
                        lookup_new(mo, c, p->l.id, LOOKUP_CONFLICT, p->gift->id, p->to, p->count));
        else if (c)
            ledger_error(c, p->l.id, r);
        return;
    }
    bool fresh = encore_spendcap_commit(mo->cap, p->from, p->total, p->day, r->transfer_id) ==
                 ENCORE_SPENDCAP_OK;
    int64_t combo = p->count;
    if (fresh) {
        /* First time this transfer is seen: rank it and count the combo. A replayed answer (a
         * retry) changes nothing and is not broadcast again. */
        bool changed = false;
        apply_gift(mo, r->transfer_id, &p->rec, now_us(), &changed);
        if (changed)
            schedule_board(mo, p->room);
        combo = encore_gifts_combo_hit(mo->combo, p->from, p->to, p->gift->id, p->count,
                                       g_get_monotonic_time() / 1000);
        mo->gifts++;
        mo->gift_coins += (uint64_t)p->total;
    }
    /* The sender's answer goes out before the room's event, so it never waits behind it. */
    if (c)
        encore_ws_reply(c, p->l.id,
                        json_pack("{s:I, s:I, s:I, s:b}", "transfer", (json_int_t)r->transfer_id,
                                  "coins", (json_int_t)p->total, "combo", (json_int_t)combo,
                                  "replayed", r->replayed || !fresh));
    if (fresh)
        broadcast_gift(mo, p, r->transfer_id, combo);
}

/* A gift to someone no longer on stage, a gift refused here (cap, catalog) and a gift the ledger
 * refused as an idempotency conflict may each be the retry of a gift that committed: when the
 * key is known and the client's part (gift, count, recipient) matches, the answer is that gift's
 * (replayed); else the refusal. A committed gift found this way is folded into the derived state
 * too (its first answer may have been lost to an ambiguous store error). */
static void on_gift_lookup(gboolean ok, const encore_ledger_record *rec, const GError *error,
                           void *user_data)
{
    gift_lookup *gl = user_data;
    encore_money *mo = gl->l.money;
    encore_gift_record g;
    bool readable = ok && rec && rec->status == ENCORE_LEDGER_OK && rec->metadata &&
                    strcmp(rec->kind, "gift") == 0 &&
                    encore_gift_record_from_metadata((const uint8_t *)rec->metadata,
                                                     strlen(rec->metadata), &g) == 0;
    bool same = readable && strcmp(g.gift, gl->gift) == 0 && g.count == gl->count && g.to == gl->to;
    if (readable && encore_spendcap_record(mo->cap, g.from, g.price * g.count, rec->transfer_id,
                                           rec->created_us) == ENCORE_SPENDCAP_OK) {
        bool changed = false;
        apply_gift(mo, rec->transfer_id, &g, rec->created_us, &changed);
        if (changed)
            schedule_board(mo, g.room);
    }
    encore_ws_conn *c = later_conn(&gl->l);
    if (!c)
        return;
    json_t *id = gl->l.id;
    if (!ok)
        encore_ws_error(c, id, "unavailable", NULL, "the ledger could not answer: %s",
                        error ? error->message : "?");
    else if (same)
        encore_ws_reply(c, id,
                        json_pack("{s:I, s:I, s:I, s:b}", "transfer", (json_int_t)rec->transfer_id,
                                  "coins", (json_int_t)(g.price * g.count), "combo",
                                  (json_int_t)g.count, "replayed", 1));
    else if (gl->mode == LOOKUP_REFUSED)
        encore_ws_error(c, id, gl->code, gl->field, "%s", gl->message);
    else if (rec && rec->status == ENCORE_LEDGER_INSUFFICIENT_FUNDS && gl->mode == LOOKUP_OFF_STAGE)
        encore_ws_error(c, id, "insufficient_funds", NULL, "not enough coins");
    else if (rec || gl->mode == LOOKUP_CONFLICT)
        encore_ws_error(c, id, "idempotency_conflict", "key",
                        "this key was used before for another request");
    else
        encore_ws_error(c, id, "not_on_stage", "to", "that user is not singing in this room");
}

/* Keys of money requests: 1-64 of [A-Za-z0-9_-]. */
static bool key_ok(const char *key)
{
    size_t n = strlen(key);
    if (n < 1 || n > 64)
        return false;
    for (; *key; key++)
        if (!g_ascii_isalnum(*key) && *key != '_' && *key != '-')
            return false;
    return true;
}

static const encore_proto_field gift_schema[] = {
    {.name = "gift", .kind = ENCORE_PROTO_STRING, .required = true, .min = 1, .max = 64},
    {.name = "count",
     .kind = ENCORE_PROTO_INT,
     .required = true,
     .min = -1000000000000000LL,
     .max = 1000000000000000LL},
    {.name = "to", .kind = ENCORE_PROTO_INT, .required = true, .min = 1, .max = INT64_MAX},
    {.name = "key", .kind = ENCORE_PROTO_STRING, .required = true, .min = 1, .max = 64},
    {.name = NULL},
};

static void h_gift(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_server *srv = ud;
    encore_money *mo = srv->money;
    encore_member *m = member(c);
    if (!may_spend(c, id))
        return;
    const char *room = encore_member_room(m);
    if (!room) {
        encore_ws_error(c, id, "not_in_room", NULL, "join a room first (room.join)");
        return;
    }
    int64_t from = encore_member_user_id(m);
    int64_t to = json_integer_value(json_object_get(msg, "to"));
    const char *key = json_string_value(json_object_get(msg, "key"));
    const char *gift = json_string_value(json_object_get(msg, "gift"));
    int64_t count = json_integer_value(json_object_get(msg, "count"));
    if (!key_ok(key)) {
        encore_ws_error(c, id, "bad_key", "key", "key must be 1-64 of [A-Za-z0-9_-]");
        return;
    }
    encore_member *singer = encore_rooms_stage_of(m);
    if (!singer || encore_member_user_id(singer) != to) {
        lookup_gift(mo, from, key, lookup_new(mo, c, id, LOOKUP_OFF_STAGE, gift, to, count));
        return;
    }
    if (!encore_roles_may((encore_role)encore_member_role(singer), ENCORE_PERM_WITHDRAW)) {
        /* Earnings they could never withdraw: hosts and admins on stage take no gifts. */
        encore_ws_error(c, id, "forbidden", "to", "this performer cannot receive gifts");
        return;
    }
    const encore_gift_contract *contract = g_hash_table_lookup(mo->contracts, &to);
    encore_gift_order order = {
        .from = from,
        .to = to,
        .contract = contract,
        .gift = json_string_value(json_object_get(msg, "gift")),
        .count = json_integer_value(json_object_get(msg, "count")),
        .key = key,
        .room = room,
        .show = encore_rooms_show_of(m),
    };
    encore_gift_plan *plan = g_new(encore_gift_plan, 1);
    encore_gifts_status st = encore_gifts_plan(srv->catalog, &order, plan);
    if (st != ENCORE_GIFTS_OK) {
        /* Refused here; answered after a lookup of the key, so that the retry of a gift that
         * committed before the catalog changed still gets its first answer. */
        gift_lookup *g = lookup_new(mo, c, id, LOOKUP_REFUSED, gift, to, count);
        g->code = encore_gifts_status_name(st);
        g->field = st == ENCORE_GIFTS_UNKNOWN_GIFT ? "gift"
                   : st == ENCORE_GIFTS_SELF_GIFT  ? "to"
                   : st == ENCORE_GIFTS_INVALID    ? NULL
                                                   : "count";
        g->message =
            g_strdup(st == ENCORE_GIFTS_SELF_GIFT       ? "singers cannot send gifts to themselves"
                     : st == ENCORE_GIFTS_UNKNOWN_GIFT  ? "no such gift in the catalog"
                     : st == ENCORE_GIFTS_BAD_COUNT     ? "count is out of range"
                     : st == ENCORE_GIFTS_TOO_EXPENSIVE ? "the total is too large"
                                                        : "the gift could not be planned");
        if (st == ENCORE_GIFTS_INVALID)
            g_warning("gift.send from %" G_GINT64_FORMAT " could not be planned", from);
        lookup_gift(mo, from, key, g);
        g_free(plan);
        return;
    }
    gift_pending *p = g_new0(gift_pending, 1);
    later_init(&p->l, mo, c, id);
    p->from = from;
    p->to = to;
    p->total = plan->total;
    p->gift = plan->gift;
    p->count = order.count;
    g_strlcpy(p->from_name, encore_member_name(m), sizeof p->from_name);
    g_strlcpy(p->to_name, encore_member_name(singer), sizeof p->to_name);
    g_strlcpy(p->room, room, sizeof p->room);
    if (encore_gift_record_from_metadata((const uint8_t *)plan->metadata, strlen(plan->metadata),
                                         &p->rec) != 0) {
        encore_ws_error(c, id, "internal", NULL, "the gift could not be recorded");
        gift_pending_free(p);
        g_free(plan);
        return;
    }
    if (encore_spendcap_reserve(mo->cap, from, plan->total, now_us(), &p->day) !=
        ENCORE_SPENDCAP_OK) {
        gift_lookup *g = lookup_new(mo, c, id, LOOKUP_REFUSED, gift, to, count);
        g->code = "daily_cap";
        g->field = "count";
        g->message =
            g_strdup_printf("this would pass your daily spending cap of %" G_GINT64_FORMAT " coins",
                            encore_spendcap_cap(mo->cap));
        lookup_gift(mo, from, key, g);
        gift_pending_free(p);
        g_free(plan);
        return;
    }
    encore_ledger_submit(srv->ledger, &plan->req, srv->ctx, on_gift, p, gift_pending_free);
    g_free(plan);
}

/* ---- vip.buy -------------------------------------------------------------------------------- */

typedef struct {
    later l;
    int64_t user, day, total, months;
    int rank;
    char tier[ENCORE_CATALOG_ID_MAX + 1];
} vip_pending;

static void vip_pending_free(gpointer data)
{
    vip_pending *p = data;
    later_clear(&p->l);
    g_free(p);
}

static void on_vip(const encore_transfer_result *r, void *user_data)
{
    vip_pending *p = user_data;
    encore_money *mo = p->l.money;
    encore_ws_conn *c = later_conn(&p->l);
    if (r->status != ENCORE_LEDGER_OK) {
        encore_spendcap_release(mo->cap, p->user, p->total, p->day);
        if (c)
            ledger_error(c, p->l.id, r);
        return;
    }
    (void)encore_spendcap_commit(mo->cap, p->user, p->total, p->day, r->transfer_id);
    int64_t expires = 0;
    encore_vip_result vr =
        encore_vip_apply(mo->vip, p->user, p->rank, p->months, r->transfer_id, now_us(), &expires);
    if (vr == ENCORE_VIP_OK)
        mo->vip_purchases++;
    encore_vip_status st;
    const char *tier = p->tier;
    if (encore_vip_get(mo->vip, p->user, now_us(), &st)) {
        const encore_catalog_vip *t = encore_catalog_vip_find_rank(mo->srv->catalog, st.rank);
        tier = t ? t->id : tier;
        expires = st.expires_us;
    }
    if (c)
        encore_ws_reply(c, p->l.id,
                        json_pack("{s:s, s:I, s:I, s:b}", "tier", tier, "expires",
                                  (json_int_t)(expires / G_USEC_PER_SEC), "transfer",
                                  (json_int_t)r->transfer_id, "replayed",
                                  r->replayed || vr != ENCORE_VIP_OK));
}

static const encore_proto_field vip_schema[] = {
    {.name = "tier", .kind = ENCORE_PROTO_STRING, .required = true, .min = 1, .max = 64},
    {.name = "months",
     .kind = ENCORE_PROTO_INT,
     .required = true,
     .min = -1000000000LL,
     .max = 1000000000LL},
    {.name = "key", .kind = ENCORE_PROTO_STRING, .required = true, .min = 1, .max = 64},
    {.name = NULL},
};

/* A vip.buy refused here (a higher tier active, the daily cap) may be the retry of a purchase
 * that committed: answered from the ledger when the key holds the same tier and months. */
typedef struct {
    later l;
    char tier[ENCORE_CATALOG_ID_MAX + 1];
    int64_t months;
    const char *code, *field;
    char *message;
} vip_lookup;

static void vip_lookup_free(gpointer data)
{
    vip_lookup *v = data;
    later_clear(&v->l);
    g_free(v->message);
    g_free(v);
}

static void on_vip_lookup(gboolean ok, const encore_ledger_record *rec, const GError *error,
                          void *user_data)
{
    vip_lookup *v = user_data;
    encore_money *mo = v->l.money;
    encore_ws_conn *c = later_conn(&v->l);
    encore_vip_record r;
    bool same = ok && rec && rec->status == ENCORE_LEDGER_OK && rec->metadata &&
                encore_vip_record_from_metadata((const uint8_t *)rec->metadata,
                                                strlen(rec->metadata), &r) == 0 &&
                strcmp(r.tier, v->tier) == 0 && r.months == v->months;
    if (same)
        (void)encore_vip_apply(mo->vip, r.user, r.rank, r.months, rec->transfer_id, rec->created_us,
                               NULL);
    if (!c)
        return;
    encore_vip_status st;
    if (same && encore_vip_get(mo->vip, r.user, now_us(), &st))
        encore_ws_reply(c, v->l.id,
                        json_pack("{s:s, s:I, s:I, s:b}", "tier", r.tier, "expires",
                                  (json_int_t)(st.expires_us / G_USEC_PER_SEC), "transfer",
                                  (json_int_t)rec->transfer_id, "replayed", 1));
    else
        encore_ws_error(c, v->l.id, v->code, v->field, "%s", v->message);
}

static void refuse_vip(encore_money *mo, encore_ws_conn *c, json_t *id, int64_t user,
                       const char *key, const encore_vip_purchase *plan, const char *code,
                       const char *field, char *message /* stolen */)
{
    vip_lookup *v = g_new0(vip_lookup, 1);
    later_init(&v->l, mo, c, id);
    g_strlcpy(v->tier, plan->tier->id, sizeof v->tier);
    v->months = plan->months;
    v->code = code;
    v->field = field;
    v->message = message;
    char rid[ENCORE_LEDGER_ID_MAX + 1];
    snprintf(rid, sizeof rid, "vip:%" G_GINT64_FORMAT ":%s", user, key);
    encore_ledger_lookup_async(mo->srv->ledger, rid, mo->srv->ctx, on_vip_lookup, v,
                               vip_lookup_free);
}

static void h_vip(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_server *srv = ud;
    encore_money *mo = srv->money;
    if (!may_spend(c, id))
        return;
    int64_t user = encore_member_user_id(member(c));
    encore_vip_purchase *plan = g_new(encore_vip_purchase, 1);
    encore_vip_result vr =
        encore_vip_plan(srv->catalog, user, json_string_value(json_object_get(msg, "tier")),
                        json_integer_value(json_object_get(msg, "months")),
                        json_string_value(json_object_get(msg, "key")), plan);
    const char *key = json_string_value(json_object_get(msg, "key"));
    if (vr == ENCORE_VIP_OK &&
        encore_vip_may_buy(mo->vip, user, plan->tier->rank, now_us()) == ENCORE_VIP_LOWER_TIER) {
        refuse_vip(mo, c, id, user, key, plan, "lower_tier", "tier",
                   g_strdup("a higher tier is active"));
        g_free(plan);
        return;
    }
    if (vr != ENCORE_VIP_OK) {
        encore_ws_error(c, id, encore_vip_result_name(vr),
                        vr == ENCORE_VIP_BAD_MONTHS ? "months"
                        : vr == ENCORE_VIP_BAD_KEY  ? "key"
                                                    : "tier",
                        "%s",
                        vr == ENCORE_VIP_BAD_MONTHS     ? "months must be 1-12"
                        : vr == ENCORE_VIP_BAD_KEY      ? "key must be 1-64 of [A-Za-z0-9_-]"
                        : vr == ENCORE_VIP_LOWER_TIER   ? "a higher tier is active"
                        : vr == ENCORE_VIP_UNKNOWN_TIER ? "no such tier"
                                                        : "the purchase could not be planned");
        g_free(plan);
        return;
    }
    vip_pending *p = g_new0(vip_pending, 1);
    later_init(&p->l, mo, c, id);
    p->user = user;
    p->total = plan->total;
    p->months = plan->months;
    p->rank = plan->tier->rank;
    g_strlcpy(p->tier, plan->tier->id, sizeof p->tier);
    if (encore_spendcap_reserve(mo->cap, user, plan->total, now_us(), &p->day) !=
        ENCORE_SPENDCAP_OK) {
        refuse_vip(mo, c, id, user, key, plan, "daily_cap", NULL,
                   g_strdup_printf("this would pass your daily spending cap of %" G_GINT64_FORMAT
                                   " coins",
                                   encore_spendcap_cap(mo->cap)));
        vip_pending_free(p);
        g_free(plan);
        return;
    }
    encore_ledger_submit(srv->ledger, &plan->req, srv->ctx, on_vip, p, vip_pending_free);
    g_free(plan);
}

/* ---- board.get ------------------------------------------------------------------------------ */

static const encore_proto_field board_schema[] = {
    {.name = "scope", .kind = ENCORE_PROTO_STRING, .required = true, .min = 1, .max = 16},
    {.name = "period", .kind = ENCORE_PROTO_STRING, .required = false, .min = 1, .max = 16},
    {.name = "singer", .kind = ENCORE_PROTO_INT, .required = false, .min = 1, .max = INT64_MAX},
    {.name = NULL},
};

static void h_board(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_money *mo = money_of(ud);
    encore_boards_scope scope;
    encore_boards_period period = ENCORE_BOARDS_ALL;
    const char *p = json_string_value(json_object_get(msg, "period"));
    if (encore_boards_scope_parse(json_string_value(json_object_get(msg, "scope")), &scope) != 0) {
        encore_ws_error(c, id, "invalid_field", "scope",
                        "scope must be 'show', 'singer' or 'overall'");
        return;
    }
    if (p && encore_boards_period_parse(p, &period) != 0) {
        encore_ws_error(c, id, "invalid_field", "period", "period must be 'day', 'week' or 'all'");
        return;
    }
    json_t *singer = json_object_get(msg, "singer");
    if (scope == ENCORE_BOARDS_SINGER && !singer) {
        encore_ws_error(c, id, "invalid_field", "singer", "a singer board needs 'singer'");
        return;
    }
    const char *room = encore_member_room(member(c));
    if (scope == ENCORE_BOARDS_SHOW && !room) {
        encore_ws_error(c, id, "not_in_room", NULL, "join a room first (room.join)");
        return;
    }
    encore_boards_entry e[BOARD_QUERY_TOP];
    size_t n =
        encore_boards_top(mo->boards, scope, period, room, singer ? json_integer_value(singer) : 0,
                          now_us(), e, BOARD_QUERY_TOP);
    encore_ws_reply(c, id, json_pack("{s:o}", "entries", entries_json(mo, e, n)));
}

/* ---- earnings.get --------------------------------------------------------------------------- */

typedef struct {
    later l;
    char account[ENCORE_LEDGER_ACCOUNT_MAX + 1];
    json_t *lines;
} earnings_pending;

static void earnings_free(gpointer data)
{
    earnings_pending *p = data;
    later_clear(&p->l);
    json_decref(p->lines);
    g_free(p);
}

static void on_earnings_balance(gboolean ok, int64_t balance, const GError *error, void *user_data)
{
    earnings_pending *p = user_data;
    encore_ws_conn *c = later_conn(&p->l);
    if (!c)
        return;
    if (!ok) {
        encore_ws_error(c, p->l.id, "unavailable", NULL, "the ledger could not answer");
        return;
    }
    encore_ws_reply(c, p->l.id,
                    json_pack("{s:I, s:O}", "balance", (json_int_t)balance, "lines", p->lines));
}

static void on_statement(gboolean ok, GPtrArray *lines, const GError *error, void *user_data)
{
    earnings_pending *p = user_data;
    encore_money *mo = p->l.money;
    encore_ws_conn *c = later_conn(&p->l);
    if (!c)
        return;
    if (!ok || !lines) {
        encore_ws_error(c, p->l.id, "unavailable", NULL, "the ledger could not answer: %s",
                        error ? error->message : "?");
        return;
    }
    p->lines = json_array();
    for (guint i = 0; i < lines->len; i++) {
        const encore_statement_line *s = g_ptr_array_index(lines, i);
        json_t *line = json_pack("{s:I, s:I, s:I, s:s}", "transfer", (json_int_t)s->transfer_id,
                                 "amount", (json_int_t)s->amount, "at",
                                 (json_int_t)(s->created_us / G_USEC_PER_SEC), "kind", s->kind);
        encore_gift_record g;
        if (strcmp(s->kind, "gift") == 0 && s->metadata &&
            encore_gift_record_from_metadata((const uint8_t *)s->metadata, strlen(s->metadata),
                                             &g) == 0) {
            json_object_set_new(line, "gift", json_string(g.gift));
            json_object_set_new(line, "count", json_integer(g.count));
            json_object_set_new(line, "from", json_integer(g.from));
            const char *n = name_of(mo, g.from);
            if (n)
                json_object_set_new(line, "from_name", json_string(n));
        }
        json_array_append_new(p->lines, line);
    }
    /* The balance is read after the statement: a line may be newer than neither. */
    earnings_pending *q = g_new0(earnings_pending, 1);
    later_init(&q->l, mo, c, p->l.id);
    q->lines = json_incref(p->lines);
    encore_ledger_balance_async(mo->srv->ledger, p->account, mo->srv->ctx, on_earnings_balance, q,
                                earnings_free);
}

static const encore_proto_field earnings_schema[] = {
    {.name = "before", .kind = ENCORE_PROTO_INT, .required = false, .min = 0, .max = INT64_MAX},
    {.name = "limit", .kind = ENCORE_PROTO_INT, .required = false, .min = 1, .max = 200},
    {.name = NULL},
};

static void h_earnings(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_money *mo = money_of(ud);
    if (!encore_auth_may(c, id, ENCORE_PERM_WITHDRAW))
        return;
    json_t *limit = json_object_get(msg, "limit");
    earnings_pending *p = g_new0(earnings_pending, 1);
    later_init(&p->l, mo, c, id);
    snprintf(p->account, sizeof p->account, "earnings:%" G_GINT64_FORMAT,
             encore_member_user_id(member(c)));
    encore_ledger_statement_async(mo->srv->ledger, p->account,
                                  json_integer_value(json_object_get(msg, "before")),
                                  limit ? (unsigned)json_integer_value(limit) : 50, mo->srv->ctx,
                                  on_statement, p, earnings_free);
}

/* ---- withdrawals ---------------------------------------------------------------------------- */

static json_t *withdrawal_json(encore_money *mo, const withdrawal *w)
{
    return json_pack("{s:s, s:I, s:s*, s:I, s:s, s:I}", "withdrawal", w->id, "user",
                     (json_int_t)w->user, "user_name", name_of(mo, w->user), "amount",
                     (json_int_t)w->amount, "status", wd_status_names[w->status], "at",
                     (json_int_t)(w->at_us / G_USEC_PER_SEC));
}

typedef struct {
    later l;
    char kind[24];
    char wd[72];
    char *metadata;
} wd_pending;

static void wd_pending_free(gpointer data)
{
    wd_pending *p = data;
    later_clear(&p->l);
    g_free(p->metadata);
    g_free(p);
}

static void on_withdrawal(const encore_transfer_result *r, void *user_data)
{
    wd_pending *p = user_data;
    encore_money *mo = p->l.money;
    encore_ws_conn *c = later_conn(&p->l);
    if (r->status == ENCORE_LEDGER_OK) {
        withdrawal *w = g_hash_table_lookup(mo->withdrawals, p->wd);
        wd_status before = w ? w->status : WD_PENDING;
        apply_withdrawal(mo, p->kind, p->metadata, now_us());
        w = g_hash_table_lookup(mo->withdrawals, p->wd);
        if (!r->replayed && w) {
            if (strcmp(p->kind, "withdrawal.hold") == 0)
                mo->withdrawals_requested++;
            else if (before == WD_PENDING && w->status == WD_PAID)
                mo->withdrawals_paid++;
            else if (before == WD_PENDING && w->status == WD_REJECTED)
                mo->withdrawals_rejected++;
        }
        if (c && w)
            encore_ws_reply(c, p->l.id, withdrawal_json(mo, w));
        else if (c)
            encore_ws_error(c, p->l.id, "internal", NULL, "the withdrawal was not recorded");
    } else if (c) {
        if (r->status == ENCORE_LEDGER_INSUFFICIENT_FUNDS &&
            strcmp(p->kind, "withdrawal.hold") != 0)
            encore_ws_error(c, p->l.id, "conflict", "withdrawal",
                            "this withdrawal was already decided");
        else
            ledger_error(c, p->l.id, r);
    }
}

static void submit_withdrawal(encore_money *mo, encore_ws_conn *c, json_t *id, const char *rid,
                              const char *kind, const char *wd, const char *from, const char *to,
                              int64_t amount, json_t *meta /* stolen */)
{
    wd_pending *p = g_new0(wd_pending, 1);
    later_init(&p->l, mo, c, id);
    g_strlcpy(p->kind, kind, sizeof p->kind);
    g_strlcpy(p->wd, wd, sizeof p->wd);
    char *m = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(meta);
    p->metadata = g_strdup(m);
    encore_transfer_req req;
    encore_leg legs[2];
    if (encore_transfer_move(&req, legs, rid, kind, from, to, amount) != ENCORE_LEDGER_OK) {
        encore_ws_error(c, id, "invalid_field", "amount", "amount is out of range");
        wd_pending_free(p);
        free(m);
        return;
    }
    req.metadata = m;
    encore_ledger_submit(mo->srv->ledger, &req, mo->srv->ctx, on_withdrawal, p, wd_pending_free);
    free(m);
}

static const encore_proto_field wd_request_schema[] = {
    {.name = "amount",
     .kind = ENCORE_PROTO_INT,
     .required = true,
     .min = 1,
     .max = ENCORE_LEDGER_MAX_AMOUNT},
    {.name = "key",
     .kind = ENCORE_PROTO_STRING,
     .required = true,
     .min = 1,
     .max = WD_KEY_MAX,
     .flags = ENCORE_PROTO_IDENT},
    {.name = NULL},
};

static void h_wd_request(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_money *mo = money_of(ud);
    if (!encore_auth_may(c, id, ENCORE_PERM_WITHDRAW))
        return;
    int64_t user = encore_member_user_id(member(c));
    int64_t amount = json_integer_value(json_object_get(msg, "amount"));
    const char *key = json_string_value(json_object_get(msg, "key"));
    char wd[72], rid[ENCORE_LEDGER_ID_MAX + 1], from[ENCORE_LEDGER_ACCOUNT_MAX + 1],
        to[ENCORE_LEDGER_ACCOUNT_MAX + 1];
    snprintf(wd, sizeof wd, "wd-%" G_GINT64_FORMAT "-%s", user, key);
    snprintf(rid, sizeof rid, "withdrawal:%s:hold", wd);
    snprintf(from, sizeof from, "earnings:%" G_GINT64_FORMAT, user);
    snprintf(to, sizeof to, "escrow:%s", wd);
    submit_withdrawal(mo, c, id, rid, "withdrawal.hold", wd, from, to, amount,
                      json_pack("{s:s, s:I, s:I}", "withdrawal", wd, "user", (json_int_t)user,
                                "amount", (json_int_t)amount));
}

static const encore_proto_field wd_decide_schema[] = {
    {.name = "withdrawal", .kind = ENCORE_PROTO_STRING, .required = true, .min = 1, .max = 71},
    {.name = NULL},
};

static void decide(encore_ws_conn *c, json_t *id, json_t *msg, void *ud, bool approve)
{
    encore_money *mo = money_of(ud);
    if (!encore_auth_may(c, id, ENCORE_PERM_APPROVE_WITHDRAWALS))
        return;
    const char *wd = json_string_value(json_object_get(msg, "withdrawal"));
    withdrawal *w = g_hash_table_lookup(mo->withdrawals, wd);
    if (!w) {
        encore_ws_error(c, id, "not_found", "withdrawal", "no such withdrawal");
        return;
    }
    char rid[ENCORE_LEDGER_ID_MAX + 1], from[ENCORE_LEDGER_ACCOUNT_MAX + 1],
        to[ENCORE_LEDGER_ACCOUNT_MAX + 1];
    snprintf(rid, sizeof rid, "withdrawal:%s:%s", wd, approve ? "pay" : "return");
    snprintf(from, sizeof from, "escrow:%s", wd);
    if (approve)
        g_strlcpy(to, "external:payouts", sizeof to);
    else
        snprintf(to, sizeof to, "earnings:%" G_GINT64_FORMAT, w->user);
    /* No admin id in the metadata: a retry by another admin is the same decision. The log keeps
     * who decided. */
    g_message("withdrawal %s (%" G_GINT64_FORMAT " coins of user %" G_GINT64_FORMAT
              "): %s by admin %" G_GINT64_FORMAT,
              wd, w->amount, w->user, approve ? "approve" : "reject",
              encore_member_user_id(member(c)));
    submit_withdrawal(mo, c, id, rid, approve ? "withdrawal.pay" : "withdrawal.return", wd, from,
                      to, w->amount, json_pack("{s:s}", "withdrawal", wd));
}

static void h_wd_approve(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    decide(c, id, msg, ud, true);
}

static void h_wd_reject(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    decide(c, id, msg, ud, false);
}

static gint by_time(gconstpointer a, gconstpointer b)
{
    const withdrawal *x = *(withdrawal *const *)a, *y = *(withdrawal *const *)b;
    return x->at_us < y->at_us ? -1 : x->at_us > y->at_us ? 1 : strcmp(x->id, y->id);
}

static void h_wd_list(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_money *mo = money_of(ud);
    encore_member *m = member(c);
    bool admin =
        encore_roles_may((encore_role)encore_member_role(m), ENCORE_PERM_APPROVE_WITHDRAWALS);
    if (!admin && !encore_auth_may(c, id, ENCORE_PERM_WITHDRAW))
        return;
    int64_t user = encore_member_user_id(m);
    GPtrArray *sel = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, mo->withdrawals);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        withdrawal *w = v;
        if (admin ? w->status == WD_PENDING : w->user == user)
            g_ptr_array_add(sel, w);
    }
    g_ptr_array_sort(sel, by_time);
    json_t *arr = json_array();
    for (guint i = 0; i < sel->len && i < 500; i++)
        json_array_append_new(arr, withdrawal_json(mo, g_ptr_array_index(sel, i)));
    g_ptr_array_free(sel, TRUE);
    encore_ws_reply(c, id, json_pack("{s:o}", "withdrawals", arr));
}

/* ---- contracts ------------------------------------------------------------------------------ */

/* Names come from the display cache: a name not cached yet is left out (and fetched). */
static json_t *contract_json(encore_money *mo, const encore_contract *k)
{
    return json_pack("{s:I, s:s*, s:I, s:s*, s:i, s:i, s:s}", "singer", (json_int_t)k->singer_id,
                     "singer_name", name_of(mo, k->singer_id), "agent", (json_int_t)k->agent_id,
                     "agent_name", name_of(mo, k->agent_id), "singer_bp", k->singer_bp, "agent_bp",
                     k->agent_bp, "status", encore_contract_status_name(k->status));
}

static void keep_contract(encore_money *mo, const encore_contract *k)
{
    if (k->status == ENCORE_CONTRACT_ACTIVE) {
        encore_gift_contract *gc = g_new(encore_gift_contract, 1);
        gc->agent = k->agent_id;
        gc->singer_bp = (uint32_t)k->singer_bp;
        gc->agent_bp = (uint32_t)k->agent_bp;
        g_hash_table_replace(mo->contracts, int64_key(k->singer_id), gc);
    } else if (k->status == ENCORE_CONTRACT_ENDED) {
        g_hash_table_remove(mo->contracts, &k->singer_id);
    }
}

static const char *contract_error(const char *e)
{
    if (strcmp(e, ENCORE_USERS_E_UNKNOWN_SINGER) == 0 || strcmp(e, ENCORE_USERS_E_NOT_FOUND) == 0 ||
        strcmp(e, ENCORE_USERS_E_NO_OFFER) == 0 || strcmp(e, ENCORE_USERS_E_NO_CONTRACT) == 0)
        return "not_found";
    if (strcmp(e, ENCORE_USERS_E_NOT_SINGER) == 0 || strcmp(e, ENCORE_USERS_E_NOT_AGENT) == 0)
        return "forbidden";
    if (strcmp(e, ENCORE_USERS_E_ALREADY_SIGNED) == 0)
        return "conflict";
    if (strcmp(e, ENCORE_USERS_E_BAD_SPLIT) == 0)
        return "invalid_field";
    return "unavailable";
}

static void on_contract(const encore_contract *k, const char *error, void *user_data)
{
    later *l = user_data;
    if (k)
        keep_contract(l->money, k);
    encore_ws_conn *c = later_conn(l);
    if (!c)
        return;
    if (k)
        encore_ws_reply(c, l->id, contract_json(l->money, k));
    else
        encore_ws_error(c, l->id, contract_error(error), NULL, "contract refused: %s", error);
}

static const encore_proto_field offer_schema[] = {
    {.name = "singer", .kind = ENCORE_PROTO_STRING, .required = true, .min = 1, .max = 64},
    {.name = "singer_bp", .kind = ENCORE_PROTO_INT, .required = true, .min = 0, .max = 10000},
    {.name = "agent_bp", .kind = ENCORE_PROTO_INT, .required = true, .min = 0, .max = 10000},
    {.name = NULL},
};

static void h_offer(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_money *mo = money_of(ud);
    if (!encore_auth_may(c, id, ENCORE_PERM_SIGN_SINGERS))
        return;
    later *l = g_new(later, 1);
    later_init(l, mo, c, id);
    encore_users_contract_offer_async(mo->srv->users, encore_member_user_id(member(c)),
                                      json_string_value(json_object_get(msg, "singer")),
                                      (int)json_integer_value(json_object_get(msg, "singer_bp")),
                                      (int)json_integer_value(json_object_get(msg, "agent_bp")),
                                      encore_server_now(), mo->srv->ctx, on_contract, l,
                                      later_free);
}

typedef struct {
    later l;
    int64_t singer;
} accept_pending;

static void accept_free(gpointer data)
{
    accept_pending *p = data;
    later_clear(&p->l);
    g_free(p);
}

static void on_agent_found(const encore_user *u, const char *error, void *user_data)
{
    accept_pending *p = user_data;
    encore_ws_conn *c = later_conn(&p->l);
    if (!u) {
        if (c && strcmp(error, ENCORE_USERS_E_NOT_FOUND) == 0)
            encore_ws_error(c, p->l.id, "not_found", "agent", "no such agent");
        else if (c)
            encore_ws_error(c, p->l.id, "unavailable", NULL, "the accounts store failed: %s",
                            error);
        return;
    }
    if (!c || !p->l.money->srv->users)
        return; /* gone, or shutting down */
    accept_pending *q = g_new0(accept_pending, 1);
    q->l = p->l;
    q->l.id = p->l.id ? json_incref(p->l.id) : NULL;
    encore_users_contract_accept_async(p->l.money->srv->users, p->singer, u->id,
                                       encore_server_now(), p->l.money->srv->ctx, on_contract,
                                       &q->l, accept_free);
}

static const encore_proto_field accept_schema[] = {
    {.name = "agent", .kind = ENCORE_PROTO_STRING, .required = true, .min = 1, .max = 64},
    {.name = NULL},
};

static void h_accept(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_money *mo = money_of(ud);
    if (!encore_auth_may(c, id, ENCORE_PERM_PUBLISH))
        return;
    accept_pending *p = g_new0(accept_pending, 1);
    later_init(&p->l, mo, c, id);
    p->singer = encore_member_user_id(member(c));
    encore_users_find_by_name_async(mo->srv->users,
                                    json_string_value(json_object_get(msg, "agent")), mo->srv->ctx,
                                    on_agent_found, p, accept_free);
}

static void on_contracts(const encore_contract *k, size_t n, const char *error, void *user_data)
{
    later *l = user_data;
    encore_ws_conn *c = later_conn(l);
    if (!c)
        return;
    if (!k && error) {
        encore_ws_error(c, l->id, "unavailable", NULL, "the accounts store failed: %s", error);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, contract_json(l->money, &k[i]));
    encore_ws_reply(c, l->id, json_pack("{s:o}", "contracts", arr));
}

static void h_contracts(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_money *mo = money_of(ud);
    later *l = g_new(later, 1);
    later_init(l, mo, c, id);
    encore_users_contracts_of_async(mo->srv->users, encore_member_user_id(member(c)), mo->srv->ctx,
                                    on_contracts, l, later_free);
}

/* ---- channels ------------------------------------------------------------------------------- */

static void on_channel(const encore_channel *ch, const char *error, void *user_data)
{
    later *l = user_data;
    if (ch)
        encore_rooms_set_channel_owner(l->money->srv->rooms, ch->room, ch->agent_id);
    encore_ws_conn *c = later_conn(l);
    if (!c)
        return;
    if (ch)
        encore_ws_reply(c, l->id,
                        json_pack("{s:s, s:I, s:I}", "room", ch->room, "agent",
                                  (json_int_t)ch->agent_id, "since", (json_int_t)ch->claimed_at));
    else if (strcmp(error, ENCORE_USERS_E_ROOM_TAKEN) == 0)
        encore_ws_error(c, l->id, "conflict", "room", "this room belongs to another agent");
    else if (strcmp(error, ENCORE_USERS_E_BAD_ROOM) == 0)
        encore_ws_error(c, l->id, "invalid_field", "room", "room must be 1-64 of [A-Za-z0-9_-]");
    else if (strcmp(error, ENCORE_USERS_E_NOT_AGENT) == 0)
        encore_ws_error(c, l->id, "forbidden", NULL, "only agents own channels");
    else
        encore_ws_error(c, l->id, "unavailable", NULL, "the accounts store failed: %s", error);
}

static const encore_proto_field channel_schema[] = {
    {.name = "room",
     .kind = ENCORE_PROTO_STRING,
     .required = true,
     .min = 1,
     .max = 64,
     .flags = ENCORE_PROTO_IDENT},
    {.name = NULL},
};

static void h_channel(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_money *mo = money_of(ud);
    if (!encore_auth_may(c, id, ENCORE_PERM_SIGN_SINGERS))
        return;
    later *l = g_new(later, 1);
    later_init(l, mo, c, id);
    encore_users_channel_claim_async(mo->srv->users, encore_member_user_id(member(c)),
                                     json_string_value(json_object_get(msg, "room")),
                                     encore_server_now(), mo->srv->ctx, on_channel, l, later_free);
}

/* ---- routes, life cycle, metrics ------------------------------------------------------------ */

static const encore_proto_field empty_schema[] = {{.name = NULL}};

const encore_ws_route encore_money_routes[] = {
    {"wallet.get", h_wallet, empty_schema},
    {"gift.send", h_gift, gift_schema},
    {"vip.buy", h_vip, vip_schema},
    {"board.get", h_board, board_schema},
    {"earnings.get", h_earnings, earnings_schema},
    {"withdraw.request", h_wd_request, wd_request_schema},
    {"withdraw.list", h_wd_list, empty_schema},
    {"withdraw.approve", h_wd_approve, wd_decide_schema},
    {"withdraw.reject", h_wd_reject, wd_decide_schema},
    {"contract.offer", h_offer, offer_schema},
    {"contract.accept", h_accept, accept_schema},
    {"contract.get", h_contracts, empty_schema},
    {"channel.claim", h_channel, channel_schema},
};
const size_t encore_money_n_routes = G_N_ELEMENTS(encore_money_routes);

/* Once a minute: forgets day and week boards of past periods and expired VIP statuses. */
static gboolean prune(gpointer data)
{
    encore_money *mo = data;
    encore_boards_prune(mo->boards, now_us());
    encore_vip_prune(mo->vip, now_us());
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, mo->gift_batches); /* rooms quiet for a while */
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        gift_batch *b = v;
        if (!b->timer && g_get_monotonic_time() - b->sent_us > 10 * G_USEC_PER_SEC)
            g_hash_table_iter_remove(&it);
    }
    return G_SOURCE_CONTINUE;
}

encore_money *encore_money_new(encore_server *srv, GError **error)
{
    encore_money *mo = g_new0(encore_money, 1);
    mo->srv = srv;
    const encore_catalog_settings *set = encore_catalog_get_settings(srv->catalog);
    mo->contracts = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    mo->names = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    mo->fetching = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    mo->combo = encore_gifts_combo_new(set->combo_window_ms, 0);
    mo->cap = encore_spendcap_new(set->daily_cap, 0);
    mo->boards = encore_boards_new(NULL);
    mo->vip = encore_vip_new(0);
    mo->withdrawals = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    mo->board_push = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, remove_source);
    mo->gift_batches = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, gift_batch_free);

    GArray *contracts = encore_users_contracts_load(srv->users, error);
    if (!contracts) {
        encore_money_free(mo);
        return NULL;
    }
    for (guint i = 0; i < contracts->len; i++)
        keep_contract(mo, &g_array_index(contracts, encore_contract, i));
    g_array_unref(contracts);

    GArray *channels = encore_users_channels_load(srv->users, error);
    if (!channels) {
        encore_money_free(mo);
        return NULL;
    }
    for (guint i = 0; i < channels->len; i++) {
        const encore_channel *ch = &g_array_index(channels, encore_channel, i);
        encore_rooms_set_channel_owner(srv->rooms, ch->room, ch->agent_id);
    }
    g_array_unref(channels);

    int64_t t0 = g_get_monotonic_time();
    if (!rebuild(mo, error)) {
        encore_money_free(mo);
        return NULL;
    }
    encore_boards_stats bs;
    encore_boards_get_stats(mo->boards, &bs);
    g_message("money: %u contracts, %zu gifters ranked, %zu VIP users, %u withdrawals rebuilt "
              "from the ledger in %.1f ms",
              g_hash_table_size(mo->contracts), bs.overall_users, encore_vip_size(mo->vip),
              g_hash_table_size(mo->withdrawals), (g_get_monotonic_time() - t0) / 1000.0);

    mo->prune_timer = g_timeout_add_seconds(60, prune, mo);
    encore_rooms_hooks hooks = {.joined = joined, .stage_changed = stage_changed, .badge = badge};
    encore_rooms_set_hooks(srv->rooms, &hooks, mo);
    return mo;
}

void encore_money_free(encore_money *mo)
{
    if (!mo)
        return;
    encore_rooms_hooks none = {0};
    encore_rooms_set_hooks(mo->srv->rooms, &none, NULL);
    if (mo->prune_timer)
        g_source_remove(mo->prune_timer);
    g_hash_table_destroy(mo->board_push);
    g_hash_table_destroy(mo->gift_batches);
    g_hash_table_destroy(mo->contracts);
    g_hash_table_destroy(mo->names);
    g_hash_table_destroy(mo->fetching);
    g_hash_table_destroy(mo->withdrawals);
    encore_gifts_combo_free(mo->combo);
    encore_spendcap_free(mo->cap);
    encore_boards_free(mo->boards);
    encore_vip_free(mo->vip);
    g_free(mo);
}

void encore_money_collect(encore_money *mo, GString *out)
{
    encore_boards_stats bs;
    encore_boards_get_stats(mo->boards, &bs);
    g_string_append_printf(
        out,
        "# HELP encore_gifts_total Gifts committed.\n# TYPE encore_gifts_total counter\n"
        "encore_gifts_total %" G_GUINT64_FORMAT "\n"
        "# HELP encore_gift_coins_total Coins spent on gifts.\n"
        "# TYPE encore_gift_coins_total counter\nencore_gift_coins_total %" G_GUINT64_FORMAT "\n"
        "# HELP encore_vip_purchases_total VIP purchases committed.\n"
        "# TYPE encore_vip_purchases_total counter\n"
        "encore_vip_purchases_total %" G_GUINT64_FORMAT "\n"
        "# HELP encore_withdrawals_total Withdrawals by step.\n"
        "# TYPE encore_withdrawals_total counter\n"
        "encore_withdrawals_total{step=\"requested\"} %" G_GUINT64_FORMAT "\n"
        "encore_withdrawals_total{step=\"paid\"} %" G_GUINT64_FORMAT "\n"
        "encore_withdrawals_total{step=\"rejected\"} %" G_GUINT64_FORMAT "\n"
        "# HELP encore_board_entries Ranking entries held in memory.\n"
        "# TYPE encore_board_entries gauge\n"
        "encore_board_entries{board=\"all_time_pairs\"} %zu\n"
        "encore_board_entries{board=\"overall\"} %zu\n"
        "encore_board_entries{board=\"periods\"} %zu\n"
        "encore_board_entries{board=\"shows\"} %zu\n",
        mo->gifts, mo->gift_coins, mo->vip_purchases, mo->withdrawals_requested,
        mo->withdrawals_paid, mo->withdrawals_rejected, bs.all_time_pairs, bs.overall_users,
        bs.period_entries, bs.show_entries);
}
