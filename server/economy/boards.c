/* Gifter rankings: hash tables of totals per board with an incrementally sorted top, period
 * rollover by UTC day and ISO week, show boards per room, idempotent on transfer ids. Main
 * thread only; no I/O, no logging; it must not apply a transfer id twice. */
#include <string.h>

#include "server/economy/boards.h"
#include "server/economy/ledger.h"
#include "server/economy/seen.h"

#define DAY_US INT64_C(86400000000)

typedef struct {
    int64_t user; /* first: the hash key points here */
    int64_t coins;
    int64_t reached_us;
    int64_t reached_tid; /* transfer id of the gift that reached `coins` */
    gint pos;            /* index in the board's top, or -1 */
} entry;

typedef struct {
    GHashTable *users; /* int64 user -> entry*, owned */
    GPtrArray *top;    /* entry*, best first, at most top_max */
    int64_t period;    /* day or week number of the current period (day and week boards) */
    bool open;         /* period is set */
} board;

typedef struct {
    board day, week, all;
} period_boards;

typedef struct {
    int64_t singer; /* first: the hash key points here */
    period_boards b;
} singer_boards;

typedef struct {
    char *show;       /* the show id started */
    uint64_t started; /* start order, to drop the oldest at max_shows */
    board b;
} show_board;

struct encore_boards {
    encore_boards_config cfg;
    encore_seen *seen;
    period_boards overall;
    GHashTable *singers; /* int64 singer -> singer_boards*, owned */
    GHashTable *shows;   /* room (owned string) -> show_board*, owned */
    uint64_t show_seq;
};

static const char *const scope_names[] = {"show", "singer", "overall"};
static const char *const period_names[] = {"day", "week", "all"};

static int parse_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++) {
        if (strcmp(s, names[i]) == 0)
            return i;
    }
    return -1;
}

int encore_boards_scope_parse(const char *s, encore_boards_scope *out)
{
    int i = parse_name(s, scope_names, G_N_ELEMENTS(scope_names));
    if (i < 0)
        return -1;
    *out = (encore_boards_scope)i;
    return 0;
}

int encore_boards_period_parse(const char *s, encore_boards_period *out)
{
    int i = parse_name(s, period_names, G_N_ELEMENTS(period_names));
    if (i < 0)
        return -1;
    *out = (encore_boards_period)i;
    return 0;
}

const char *encore_boards_scope_name(encore_boards_scope scope)
{
    return (unsigned)scope < G_N_ELEMENTS(scope_names) ? scope_names[scope] : NULL;
}

const char *encore_boards_period_name(encore_boards_period period)
{
    return (unsigned)period < G_N_ELEMENTS(period_names) ? period_names[period] : NULL;
}

/* Floor division for a positive divisor. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b < 0) ? q - 1 : q;
}

int64_t encore_boards_day(int64_t time_us)
{
    return floor_div(time_us, DAY_US);
}

int64_t encore_boards_week(int64_t time_us)
{
    return floor_div(encore_boards_day(time_us) + 3, 7);
}

/* One board. */

static void board_init(board *b)
{
    b->users = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
    b->top = g_ptr_array_new();
    b->period = 0;
    b->open = false;
}

static void board_clear(board *b)
{
    g_hash_table_destroy(b->users);
    g_ptr_array_free(b->top, TRUE);
}

static void board_reset(board *b)
{
    g_hash_table_remove_all(b->users);
    g_ptr_array_set_size(b->top, 0);
}

/* Whether a ranks before b. */
static bool better(const entry *a, const entry *b)
{
    if (a->coins != b->coins)
        return a->coins > b->coins;
    if (a->reached_us != b->reached_us)
        return a->reached_us < b->reached_us;
    if (a->reached_tid != b->reached_tid)
        return a->reached_tid < b->reached_tid;
    return a->user < b->user;
}

/* Moves top[pos] up to its place. */
static void bubble_up(board *b, guint pos)
{
    entry **t = (entry **)b->top->pdata;
    while (pos > 0 && better(t[pos], t[pos - 1])) {
        entry *x = t[pos - 1];
        t[pos - 1] = t[pos];
        t[pos] = x;
        t[pos]->pos = (gint)pos;
        t[pos - 1]->pos = (gint)(pos - 1);
        pos--;
    }
}

/* Adds a gift to `user`'s total and returns the entry's place in the top (-1 when outside). */
static gint board_add(board *b, size_t top_max, int64_t user, int64_t coins, int64_t time_us,
                      int64_t tid)
{
    entry *e = g_hash_table_lookup(b->users, &user);
    if (!e) {
        e = g_new0(entry, 1);
        e->user = user;
        e->pos = -1;
        g_hash_table_insert(b->users, &e->user, e);
    }
    e->coins = e->coins > INT64_MAX - coins ? INT64_MAX : e->coins + coins;
    e->reached_us = time_us;
    e->reached_tid = tid;
    if (e->pos < 0) {
        if (b->top->len < top_max) {
            e->pos = (gint)b->top->len;
            g_ptr_array_add(b->top, e);
        } else {
            entry *last = g_ptr_array_index(b->top, b->top->len - 1);
            if (!better(e, last))
                return -1;
            last->pos = -1;
            e->pos = (gint)b->top->len - 1;
            b->top->pdata[e->pos] = e;
        }
    }
    bubble_up(b, (guint)e->pos);
    return e->pos;
}

/* Adds to a day or week board of period `period`: a later period starts it afresh, an earlier
 * one is left out. */
static void period_add(board *b, size_t top_max, int64_t period, const encore_boards_gift *g)
{
    if (b->open && period < b->period)
        return;
    if (!b->open || period > b->period) {
        board_reset(b);
        b->period = period;
        b->open = true;
    }
    (void)board_add(b, top_max, g->from, g->coins, g->time_us, g->transfer_id);
}

static void period_boards_init(period_boards *p)
{
    board_init(&p->day);
    board_init(&p->week);
    board_init(&p->all);
}

static void period_boards_clear(period_boards *p)
{
    board_clear(&p->day);
    board_clear(&p->week);
    board_clear(&p->all);
}

static void period_boards_add(period_boards *p, size_t top_max, const encore_boards_gift *g)
{
    period_add(&p->day, top_max, encore_boards_day(g->time_us), g);
    period_add(&p->week, top_max, encore_boards_week(g->time_us), g);
    (void)board_add(&p->all, top_max, g->from, g->coins, g->time_us, g->transfer_id);
}

static void free_singer(gpointer p)
{
    singer_boards *s = p;
    period_boards_clear(&s->b);
    g_free(s);
}

static void free_show(gpointer p)
{
    show_board *s = p;
    board_clear(&s->b);
    g_free(s->show);
    g_free(s);
}

encore_boards *encore_boards_new(const encore_boards_config *cfg)
{
    encore_boards *b = g_new0(encore_boards, 1);
    if (cfg)
        b->cfg = *cfg;
    if (!b->cfg.top_max)
        b->cfg.top_max = 100;
    if (!b->cfg.show_top)
        b->cfg.show_top = 10;
    b->cfg.show_top = MIN(b->cfg.show_top, b->cfg.top_max);
    if (!b->cfg.max_shows)
        b->cfg.max_shows = 10000;
    b->seen = encore_seen_new(b->cfg.seen_capacity);
    period_boards_init(&b->overall);
    b->singers = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, free_singer);
    b->shows = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, free_show);
    return b;
}

void encore_boards_free(encore_boards *boards)
{
    if (!boards)
        return;
    encore_seen_free(boards->seen);
    period_boards_clear(&boards->overall);
    g_hash_table_destroy(boards->singers);
    g_hash_table_destroy(boards->shows);
    g_free(boards);
}

encore_boards_result encore_boards_apply(encore_boards *boards, const encore_boards_gift *g,
                                         bool *show_changed)
{
    if (show_changed)
        *show_changed = false;
    if (g->transfer_id <= 0 || g->from <= 0 || g->to <= 0 || g->coins <= 0 ||
        g->coins > ENCORE_LEDGER_MAX_AMOUNT)
        return ENCORE_BOARDS_INVALID;
    switch (encore_seen_add(boards->seen, g->transfer_id)) {
    case ENCORE_SEEN_NEW:
        break;
    case ENCORE_SEEN_DUPLICATE:
        return ENCORE_BOARDS_DUPLICATE;
    case ENCORE_SEEN_STALE:
        return ENCORE_BOARDS_STALE;
    default:
        return ENCORE_BOARDS_INVALID;
    }
    size_t k = boards->cfg.top_max;
    period_boards_add(&boards->overall, k, g);
    singer_boards *s = g_hash_table_lookup(boards->singers, &g->to);
    if (!s) {
        s = g_new0(singer_boards, 1);
        s->singer = g->to;
        period_boards_init(&s->b);
        g_hash_table_insert(boards->singers, &s->singer, s);
    }
    period_boards_add(&s->b, k, g);
    show_board *sh = g->room ? g_hash_table_lookup(boards->shows, g->room) : NULL;
    if (sh && g->show && strcmp(sh->show, g->show) == 0) {
        gint pos = board_add(&sh->b, k, g->from, g->coins, g->time_us, g->transfer_id);
        if (show_changed)
            *show_changed = pos >= 0 && (size_t)pos < boards->cfg.show_top;
    }
    return ENCORE_BOARDS_APPLIED;
}

void encore_boards_show_start(encore_boards *boards, const char *room, const char *show)
{
    if (!room || !room[0] || !show || !show[0])
        return;
    const char *current_show = encore_boards_show_id(boards, room);
    if (current_show && strcmp(current_show, show) == 0)
        return; /* already started: keep its board */
    if (!g_hash_table_contains(boards->shows, room) &&
        g_hash_table_size(boards->shows) >= boards->cfg.max_shows) {
        /* Full: drop the show started longest ago. */
        GHashTableIter it;
        gpointer key, value;
        const char *oldest = NULL;
        uint64_t oldest_seq = UINT64_MAX;
        g_hash_table_iter_init(&it, boards->shows);
        while (g_hash_table_iter_next(&it, &key, &value)) {
            const show_board *sb = value;
            if (sb->started < oldest_seq) {
                oldest_seq = sb->started;
                oldest = key;
            }
        }
        if (oldest)
            g_hash_table_remove(boards->shows, oldest);
    }
    show_board *sb = g_new0(show_board, 1);
    sb->show = g_strdup(show);
    sb->started = boards->show_seq++;
    board_init(&sb->b);
    g_hash_table_replace(boards->shows, g_strdup(room), sb);
}

void encore_boards_show_end(encore_boards *boards, const char *room)
{
    if (room)
        g_hash_table_remove(boards->shows, room);
}

const char *encore_boards_show_id(const encore_boards *boards, const char *room)
{
    const show_board *sb = room ? g_hash_table_lookup(boards->shows, room) : NULL;
    return sb ? sb->show : NULL;
}

static size_t copy_top(const board *b, encore_boards_entry *out, size_t n)
{
    size_t m = MIN(n, (size_t)b->top->len);
    for (size_t i = 0; i < m; i++) {
        const entry *e = g_ptr_array_index(b->top, i);
        out[i].user = e->user;
        out[i].coins = e->coins;
        out[i].reached_us = e->reached_us;
    }
    return m;
}

/* The board of `period` in p, or NULL when its period is over at now_us. */
static const board *current(const period_boards *p, encore_boards_period period, int64_t now_us)
{
    const board *b;
    int64_t now_period;
    switch (period) {
    case ENCORE_BOARDS_DAY:
        b = &p->day;
        now_period = encore_boards_day(now_us);
        break;
    case ENCORE_BOARDS_WEEK:
        b = &p->week;
        now_period = encore_boards_week(now_us);
        break;
    case ENCORE_BOARDS_ALL:
        return &p->all;
    default:
        return NULL;
    }
    return b->open && b->period >= now_period ? b : NULL;
}

size_t encore_boards_top(const encore_boards *boards, encore_boards_scope scope,
                         encore_boards_period period, const char *room, int64_t singer,
                         int64_t now_us, encore_boards_entry *out, size_t n)
{
    const board *b = NULL;
    if (scope == ENCORE_BOARDS_SHOW) {
        const show_board *sb = room ? g_hash_table_lookup(boards->shows, room) : NULL;
        b = sb ? &sb->b : NULL;
    } else if (scope == ENCORE_BOARDS_SINGER) {
        const singer_boards *s = g_hash_table_lookup(boards->singers, &singer);
        b = s ? current(&s->b, period, now_us) : NULL;
    } else if (scope == ENCORE_BOARDS_OVERALL) {
        b = current(&boards->overall, period, now_us);
    }
    return b && out ? copy_top(b, out, n) : 0;
}

static void prune_board(board *b, int64_t now_period)
{
    if (b->open && b->period < now_period) {
        board_reset(b);
        b->open = false;
    }
}

static void prune_periods(period_boards *p, int64_t day, int64_t week)
{
    prune_board(&p->day, day);
    prune_board(&p->week, week);
}

void encore_boards_prune(encore_boards *boards, int64_t now_us)
{
    int64_t day = encore_boards_day(now_us), week = encore_boards_week(now_us);
    prune_periods(&boards->overall, day, week);
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, boards->singers);
    while (g_hash_table_iter_next(&it, NULL, &value))
        prune_periods(&((singer_boards *)value)->b, day, week);
}

void encore_boards_get_stats(const encore_boards *boards, encore_boards_stats *out)
{
    memset(out, 0, sizeof *out);
    out->singers = g_hash_table_size(boards->singers);
    out->overall_users = g_hash_table_size(boards->overall.all.users);
    out->period_entries = g_hash_table_size(boards->overall.day.users) +
                          g_hash_table_size(boards->overall.week.users);
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, boards->singers);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const singer_boards *s = value;
        out->all_time_pairs += g_hash_table_size(s->b.all.users);
        out->period_entries +=
            g_hash_table_size(s->b.day.users) + g_hash_table_size(s->b.week.users);
    }
    out->shows = g_hash_table_size(boards->shows);
    g_hash_table_iter_init(&it, boards->shows);
    while (g_hash_table_iter_next(&it, NULL, &value))
        out->show_entries += g_hash_table_size(((show_board *)value)->b.users);
}
