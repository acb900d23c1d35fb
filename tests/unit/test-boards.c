/* Unit tests for server/economy/boards and the applied-id set it shares (server/economy/seen):
 * the set's window (duplicates, out-of-order ids, the floor); day and ISO week numbers at their
 * boundaries; ordering and ties; idempotency; day and week rollovers at UTC midnight and Monday;
 * show boards and their change reports; the kept top against a brute-force model over random
 * gifts; pruning and the memory counters. */
#include <string.h>

#include <glib.h>

#include "server/economy/boards.h"
#include "server/economy/seen.h"

#define DAY_US (INT64_C(86400) * 1000000)
/* 2026-11-26T00:00:00Z, a Thursday: UTC day 20783, week 2969 (ISO 2026-W48). */
#define THU (INT64_C(1795651200) * 1000000)
/* 2026-11-30T00:00:00Z, the Monday of ISO 2026-W49 (week 2970). */
#define MON (THU + 4 * DAY_US)

static void test_seen(void)
{
    encore_seen *s = encore_seen_new(4);
    g_assert_cmpint(encore_seen_add(s, 0), ==, ENCORE_SEEN_INVALID);
    g_assert_cmpint(encore_seen_add(s, -3), ==, ENCORE_SEEN_INVALID);
    g_assert_cmpint(encore_seen_add(s, 10), ==, ENCORE_SEEN_NEW);
    g_assert_cmpint(encore_seen_add(s, 10), ==, ENCORE_SEEN_DUPLICATE);
    g_assert_cmpint(encore_seen_add(s, 30), ==, ENCORE_SEEN_NEW);
    g_assert_cmpint(encore_seen_add(s, 20), ==, ENCORE_SEEN_NEW); /* out of order */
    g_assert_cmpint(encore_seen_add(s, 5), ==, ENCORE_SEEN_NEW);  /* older than all, room left */
    g_assert_cmpint(encore_seen_check(s, 20), ==, ENCORE_SEEN_DUPLICATE);
    g_assert_cmpint(encore_seen_check(s, 21), ==, ENCORE_SEEN_NEW);
    g_assert_cmpuint(encore_seen_size(s), ==, 4);
    g_assert_cmpint(encore_seen_floor(s), ==, 0);
    /* Full: 25 pushes the smallest (5) out, which becomes the floor. */
    g_assert_cmpint(encore_seen_add(s, 25), ==, ENCORE_SEEN_NEW);
    g_assert_cmpint(encore_seen_floor(s), ==, 5);
    g_assert_cmpint(encore_seen_add(s, 5), ==, ENCORE_SEEN_STALE);
    g_assert_cmpint(encore_seen_add(s, 3), ==, ENCORE_SEEN_STALE);
    g_assert_cmpint(encore_seen_check(s, 4), ==, ENCORE_SEEN_STALE);
    /* Full, and 7 is below every kept id (10 20 25 30): it becomes the floor itself. */
    g_assert_cmpint(encore_seen_add(s, 7), ==, ENCORE_SEEN_NEW);
    g_assert_cmpint(encore_seen_floor(s), ==, 7);
    g_assert_cmpint(encore_seen_add(s, 7), ==, ENCORE_SEEN_STALE);
    g_assert_cmpint(encore_seen_add(s, 10), ==, ENCORE_SEEN_DUPLICATE);
    g_assert_cmpint(encore_seen_add(s, 30), ==, ENCORE_SEEN_DUPLICATE);
    g_assert_cmpuint(encore_seen_size(s), ==, 4);
    encore_seen_free(s);
    encore_seen_free(NULL);

    /* Batches of 256 ids acknowledged in random order, each answer delivered twice (a replay):
     * with a window of 1024, every id is NEW exactly once, then DUPLICATE. The ring wraps many
     * times. */
    s = encore_seen_new(1024);
    GRand *r = g_rand_new_with_seed(7);
    int64_t ids[512];
    for (int64_t base = 0; base < 100000; base += 256) {
        for (int i = 0; i < 256; i++)
            ids[i] = ids[256 + i] = base + 1 + i;
        for (int i = 511; i > 0; i--) {
            int j = g_rand_int_range(r, 0, i + 1);
            int64_t t = ids[i];
            ids[i] = ids[j];
            ids[j] = t;
        }
        guint8 hits[256] = {0};
        for (int i = 0; i < 512; i++) {
            encore_seen_result res = encore_seen_add(s, ids[i]);
            int k = (int)(ids[i] - base - 1);
            g_assert_cmpint(res, ==, hits[k] ? ENCORE_SEEN_DUPLICATE : ENCORE_SEEN_NEW);
            hits[k] = 1;
        }
    }
    g_assert_cmpuint(encore_seen_size(s), ==, 1024);
    g_assert_cmpint(encore_seen_floor(s), ==, 100096 - 1024);
    g_rand_free(r);
    encore_seen_free(s);
}

static void test_day_week(void)
{
    g_assert_cmpint(encore_boards_day(THU), ==, 20783);
    g_assert_cmpint(encore_boards_week(THU), ==, 2969);
    /* Sunday 23:59:59.999999 is still week 2969; Monday 00:00 is 2970. */
    g_assert_cmpint(encore_boards_week(MON - 1), ==, 2969);
    g_assert_cmpint(encore_boards_day(MON - 1), ==, 20786);
    g_assert_cmpint(encore_boards_week(MON), ==, 2970);
    g_assert_cmpint(encore_boards_day(MON), ==, 20787);
    g_assert_cmpint(encore_boards_week(MON + 7 * DAY_US - 1), ==, 2970);
    g_assert_cmpint(encore_boards_week(MON + 7 * DAY_US), ==, 2971);
    /* The epoch: Thursday 1 January 1970 is in the week starting Monday 29 December 1969. */
    g_assert_cmpint(encore_boards_day(0), ==, 0);
    g_assert_cmpint(encore_boards_week(0), ==, 0);
    g_assert_cmpint(encore_boards_week(4 * DAY_US - 1), ==, 0);
    g_assert_cmpint(encore_boards_week(4 * DAY_US), ==, 1);
    g_assert_cmpint(encore_boards_day(-1), ==, -1);
    g_assert_cmpint(encore_boards_week(-3 * DAY_US), ==, 0);
    g_assert_cmpint(encore_boards_week(-3 * DAY_US - 1), ==, -1);
}

static void test_names(void)
{
    encore_boards_scope sc = ENCORE_BOARDS_OVERALL;
    encore_boards_period pe = ENCORE_BOARDS_ALL;
    g_assert_cmpint(encore_boards_scope_parse("show", &sc), ==, 0);
    g_assert_cmpint(sc, ==, ENCORE_BOARDS_SHOW);
    g_assert_cmpint(encore_boards_scope_parse("singer", &sc), ==, 0);
    g_assert_cmpint(sc, ==, ENCORE_BOARDS_SINGER);
    g_assert_cmpint(encore_boards_scope_parse("Show", &sc), ==, -1);
    g_assert_cmpint(encore_boards_scope_parse(NULL, &sc), ==, -1);
    g_assert_cmpint(sc, ==, ENCORE_BOARDS_SINGER);
    g_assert_cmpint(encore_boards_period_parse("week", &pe), ==, 0);
    g_assert_cmpint(pe, ==, ENCORE_BOARDS_WEEK);
    g_assert_cmpint(encore_boards_period_parse("month", &pe), ==, -1);
    g_assert_cmpstr(encore_boards_scope_name(ENCORE_BOARDS_OVERALL), ==, "overall");
    g_assert_cmpstr(encore_boards_period_name(ENCORE_BOARDS_DAY), ==, "day");
    g_assert_cmpstr(encore_boards_period_name(ENCORE_BOARDS_ALL), ==, "all");
    g_assert_null(encore_boards_scope_name((encore_boards_scope)3));
    g_assert_null(encore_boards_period_name((encore_boards_period)-1));
}

static encore_boards_result gift(encore_boards *b, int64_t tid, int64_t from, int64_t to,
                                 int64_t coins, int64_t t, const char *room, const char *show,
                                 bool *changed)
{
    encore_boards_gift g = {tid, from, to, coins, t, room, show};
    return encore_boards_apply(b, &g, changed);
}

/* Checks a board against "user:coins,user:coins,...". */
static void assert_top(encore_boards *b, encore_boards_scope scope, encore_boards_period period,
                       const char *room, int64_t singer, int64_t now, size_t n,
                       const char *expected)
{
    encore_boards_entry out[64];
    g_assert_cmpuint(n, <=, G_N_ELEMENTS(out));
    size_t got = encore_boards_top(b, scope, period, room, singer, now, out, n);
    GString *s = g_string_new("");
    for (size_t i = 0; i < got; i++)
        g_string_append_printf(s, "%s%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT, i ? "," : "",
                               out[i].user, out[i].coins);
    g_assert_cmpstr(s->str, ==, expected);
    g_string_free(s, TRUE);
}

static void test_order_and_ties(void)
{
    encore_boards *b = encore_boards_new(NULL);
    int64_t t = THU + 3600 * INT64_C(1000000);
    g_assert_cmpint(gift(b, 1, 7, 9, 100, t, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    g_assert_cmpint(gift(b, 2, 8, 9, 50, t + 1, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    g_assert_cmpint(gift(b, 3, 8, 9, 50, t + 2, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    /* 7 and 8 both have 100: 7 reached it first. */
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_DAY, NULL, 9, t, 10, "7:100,8:100");
    /* 7 gains: still first; then 8 overtakes by coins. */
    g_assert_cmpint(gift(b, 4, 7, 9, 1, t + 3, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_ALL, NULL, 9, t, 10, "7:101,8:100");
    g_assert_cmpint(gift(b, 5, 8, 9, 2, t + 4, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_ALL, NULL, 9, t, 10, "8:102,7:101");
    /* The same instant (one ledger batch): the lower transfer id reached first. */
    g_assert_cmpint(gift(b, 7, 20, 9, 300, t + 5, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    g_assert_cmpint(gift(b, 6, 21, 9, 300, t + 5, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_WEEK, NULL, 9, t, 10,
               "21:300,20:300,8:102,7:101");
    /* n limits; another singer's board is separate; overall sums across singers. */
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_WEEK, NULL, 9, t, 1, "21:300");
    g_assert_cmpint(gift(b, 8, 7, 10, 250, t + 6, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_DAY, NULL, 10, t, 10, "7:250");
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_DAY, NULL, 0, t, 10,
               "7:351,21:300,20:300,8:102");
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_ALL, NULL, 11, t, 10, "");
    /* reached_us is reported. */
    encore_boards_entry e[2];
    g_assert_cmpuint(
        encore_boards_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_ALL, NULL, 0, t, e, 2), ==, 2);
    g_assert_cmpint(e[0].reached_us, ==, t + 6);
    g_assert_cmpint(e[1].reached_us, ==, t + 5);
    g_assert_cmpuint(
        encore_boards_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_ALL, NULL, 0, t, NULL, 2), ==, 0);
    encore_boards_free(b);
    encore_boards_free(NULL);
}

static void test_idempotent(void)
{
    encore_boards_config cfg = {.seen_capacity = 8};
    encore_boards *b = encore_boards_new(&cfg);
    encore_boards_show_start(b, "lobby", "lobby-1");
    bool changed = false;
    g_assert_cmpint(gift(b, 5, 7, 9, 10, THU, "lobby", "lobby-1", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_true(changed);
    g_assert_cmpint(gift(b, 5, 7, 9, 10, THU, "lobby", "lobby-1", &changed), ==,
                    ENCORE_BOARDS_DUPLICATE);
    g_assert_false(changed);
    /* Out of order within a batch: 7 before 6. */
    g_assert_cmpint(gift(b, 7, 7, 9, 1, THU, "lobby", "lobby-1", NULL), ==, ENCORE_BOARDS_APPLIED);
    g_assert_cmpint(gift(b, 6, 7, 9, 1, THU, "lobby", "lobby-1", NULL), ==, ENCORE_BOARDS_APPLIED);
    g_assert_cmpint(gift(b, 7, 7, 9, 1, THU, "lobby", "lobby-1", NULL), ==,
                    ENCORE_BOARDS_DUPLICATE);
    assert_top(b, ENCORE_BOARDS_SHOW, ENCORE_BOARDS_DAY, "lobby", 0, THU, 10, "7:12");
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_ALL, NULL, 9, THU, 10, "7:12");
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_WEEK, NULL, 0, THU, 10, "7:12");
    /* Past the window of 8: id 5 is below the floor (stale), never applied twice. */
    for (int64_t id = 100; id < 108; id++)
        g_assert_cmpint(gift(b, id, 8, 9, 1, THU, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    g_assert_cmpint(gift(b, 5, 7, 9, 10, THU, "lobby", "lobby-1", &changed), ==,
                    ENCORE_BOARDS_STALE);
    g_assert_false(changed);
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_ALL, NULL, 9, THU, 10, "7:12,8:8");
    /* Invalid gifts change nothing and record nothing. */
    g_assert_cmpint(gift(b, 0, 7, 9, 1, THU, NULL, NULL, NULL), ==, ENCORE_BOARDS_INVALID);
    g_assert_cmpint(gift(b, 200, 0, 9, 1, THU, NULL, NULL, NULL), ==, ENCORE_BOARDS_INVALID);
    g_assert_cmpint(gift(b, 200, 7, -9, 1, THU, NULL, NULL, NULL), ==, ENCORE_BOARDS_INVALID);
    g_assert_cmpint(gift(b, 200, 7, 9, 0, THU, NULL, NULL, NULL), ==, ENCORE_BOARDS_INVALID);
    g_assert_cmpint(gift(b, 200, 7, 9, INT64_C(1000000000000001), THU, NULL, NULL, NULL), ==,
                    ENCORE_BOARDS_INVALID);
    g_assert_cmpint(gift(b, 200, 7, 9, 1, THU, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    encore_boards_free(b);
}

static void test_rollover(void)
{
    encore_boards *b = encore_boards_new(NULL);
    int64_t sun_late = MON - 1; /* Sunday 23:59:59.999999 */
    g_assert_cmpint(gift(b, 1, 7, 9, 10, sun_late - 5, NULL, NULL, NULL), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_cmpint(gift(b, 2, 8, 9, 20, sun_late, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_DAY, NULL, 0, sun_late, 10, "8:20,7:10");
    /* At midnight the day (and here the week) is over before any gift arrives. */
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_DAY, NULL, 0, MON, 10, "");
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_WEEK, NULL, 0, MON, 10, "");
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_WEEK, NULL, 9, MON, 10, "");
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_ALL, NULL, 0, MON, 10, "8:20,7:10");
    /* Asked with an earlier now (a skewed clock), the board is still shown. */
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_DAY, NULL, 0, sun_late - DAY_US, 10,
               "8:20,7:10");
    /* The first gift of Monday starts the day and the week afresh. */
    g_assert_cmpint(gift(b, 3, 7, 9, 1, MON, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_DAY, NULL, 0, MON, 10, "7:1");
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_WEEK, NULL, 0, MON, 10, "7:1");
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_DAY, NULL, 9, MON, 10, "7:1");
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_ALL, NULL, 0, MON, 10, "8:20,7:11");
    /* A late answer from Sunday counts for all time only. */
    g_assert_cmpint(gift(b, 4, 8, 9, 5, sun_late, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_DAY, NULL, 0, MON, 10, "7:1");
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_WEEK, NULL, 0, MON, 10, "7:1");
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_ALL, NULL, 0, MON, 10, "8:25,7:11");
    /* Tuesday: a new day, the same week. */
    int64_t tue = MON + DAY_US;
    g_assert_cmpint(gift(b, 5, 8, 9, 3, tue, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_DAY, NULL, 0, tue, 10, "8:3");
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_WEEK, NULL, 0, tue, 10, "8:3,7:1");
    /* Singer 9's day board is the one from Tuesday; queried on Wednesday, empty. */
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_DAY, NULL, 9, tue + DAY_US, 10, "");
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_WEEK, NULL, 9, tue + DAY_US, 10, "8:3,7:1");
    encore_boards_free(b);
}

static void test_show(void)
{
    encore_boards_config cfg = {.show_top = 2, .top_max = 3, .max_shows = 2};
    encore_boards *b = encore_boards_new(&cfg);
    bool changed = true;
    /* No show started: nothing on a show board, no change reported. */
    g_assert_cmpint(gift(b, 1, 7, 9, 10, THU, "lobby", "lobby-1", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_false(changed);
    assert_top(b, ENCORE_BOARDS_SHOW, ENCORE_BOARDS_ALL, "lobby", 0, THU, 10, "");
    g_assert_null(encore_boards_show_id(b, "lobby"));

    encore_boards_show_start(b, "lobby", "lobby-2");
    g_assert_cmpstr(encore_boards_show_id(b, "lobby"), ==, "lobby-2");
    /* Entering the top 2: changed. */
    g_assert_cmpint(gift(b, 2, 7, 9, 10, THU, "lobby", "lobby-2", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_true(changed);
    g_assert_cmpint(gift(b, 3, 8, 9, 5, THU, "lobby", "lobby-2", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_true(changed);
    /* Third place (kept, but outside the pushed top 2): no change. */
    g_assert_cmpint(gift(b, 4, 20, 9, 1, THU, "lobby", "lobby-2", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_false(changed);
    /* Fourth, below the kept top of 3: no change. */
    g_assert_cmpint(gift(b, 5, 21, 9, 1, THU + 1, "lobby", "lobby-2", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_false(changed);
    assert_top(b, ENCORE_BOARDS_SHOW, ENCORE_BOARDS_DAY, "lobby", 0, THU, 10, "7:10,8:5,20:1");
    /* 21 gains and passes 20 and 8: enters the top 2. */
    g_assert_cmpint(gift(b, 6, 21, 9, 6, THU + 2, "lobby", "lobby-2", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_true(changed);
    assert_top(b, ENCORE_BOARDS_SHOW, ENCORE_BOARDS_DAY, "lobby", 0, THU, 10, "7:10,21:7,8:5");
    /* A gain inside the top 2 without reordering: changed (the coins shown differ). */
    g_assert_cmpint(gift(b, 7, 7, 9, 1, THU + 3, "lobby", "lobby-2", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_true(changed);
    /* A gain at third place: no change. */
    g_assert_cmpint(gift(b, 8, 8, 9, 1, THU + 4, "lobby", "lobby-2", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_false(changed);
    /* Another show id (a late gift of the previous show), another room, no room: not counted. */
    g_assert_cmpint(gift(b, 9, 30, 9, 99, THU, "lobby", "lobby-1", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_false(changed);
    g_assert_cmpint(gift(b, 10, 30, 9, 99, THU, "other", "lobby-2", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_false(changed);
    g_assert_cmpint(gift(b, 11, 30, 9, 99, THU, NULL, "lobby-2", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_false(changed);
    assert_top(b, ENCORE_BOARDS_SHOW, ENCORE_BOARDS_ALL, "lobby", 0, THU, 10, "7:11,21:7,8:6");
    /* Show boards ignore the period and the day's rollover. */
    assert_top(b, ENCORE_BOARDS_SHOW, ENCORE_BOARDS_DAY, "lobby", 0, THU + 9 * DAY_US, 1, "7:11");
    /* Starting the same show again keeps it; a new show starts empty. */
    encore_boards_show_start(b, "lobby", "lobby-2");
    assert_top(b, ENCORE_BOARDS_SHOW, ENCORE_BOARDS_ALL, "lobby", 0, THU, 1, "7:11");
    encore_boards_show_start(b, "lobby", "lobby-3");
    assert_top(b, ENCORE_BOARDS_SHOW, ENCORE_BOARDS_ALL, "lobby", 0, THU, 10, "");
    g_assert_cmpint(gift(b, 12, 8, 9, 2, THU, "lobby", "lobby-2", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_false(changed);
    g_assert_cmpint(gift(b, 13, 8, 9, 2, THU, "lobby", "lobby-3", &changed), ==,
                    ENCORE_BOARDS_APPLIED);
    g_assert_true(changed);
    /* max_shows 2: a third room drops the show started longest ago ("a-1": lobby-4 started
     * after it). */
    encore_boards_show_start(b, "a", "a-1");
    encore_boards_show_start(b, "lobby", "lobby-4");
    encore_boards_show_start(b, "b", "b-1");
    g_assert_null(encore_boards_show_id(b, "a"));
    g_assert_cmpstr(encore_boards_show_id(b, "lobby"), ==, "lobby-4");
    g_assert_cmpstr(encore_boards_show_id(b, "b"), ==, "b-1");
    encore_boards_show_end(b, "lobby");
    g_assert_null(encore_boards_show_id(b, "lobby"));
    encore_boards_show_end(b, "nowhere");
    encore_boards_show_start(b, "", "x");
    encore_boards_show_start(b, "c", NULL);
    g_assert_null(encore_boards_show_id(b, "c"));
    encore_boards_stats st;
    encore_boards_get_stats(b, &st);
    g_assert_cmpuint(st.shows, ==, 1);
    g_assert_cmpuint(st.show_entries, ==, 0);
    /* The overall and singer boards saw every gift. */
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_ALL, NULL, 9, THU, 10, "30:297,7:21,8:10");
    encore_boards_free(b);
}

/* A model of one board: totals with their reach keys, sorted by brute force. */
typedef struct {
    int64_t user, coins, reached_us, tid;
} model_entry;

static gint model_cmp(gconstpointer pa, gconstpointer pb)
{
    const model_entry *a = pa, *b = pb;
    if (a->coins != b->coins)
        return a->coins > b->coins ? -1 : 1;
    if (a->reached_us != b->reached_us)
        return a->reached_us < b->reached_us ? -1 : 1;
    if (a->tid != b->tid)
        return a->tid < b->tid ? -1 : 1;
    return a->user < b->user ? -1 : a->user > b->user;
}

static void model_add(GArray *m, int64_t user, int64_t coins, int64_t t, int64_t tid)
{
    for (guint i = 0; i < m->len; i++) {
        model_entry *e = &g_array_index(m, model_entry, i);
        if (e->user == user) {
            e->coins += coins;
            e->reached_us = t;
            e->tid = tid;
            return;
        }
    }
    model_entry e = {user, coins, t, tid};
    g_array_append_val(m, e);
}

static void assert_model(encore_boards *b, encore_boards_scope scope, int64_t singer,
                         const char *room, GArray *m, size_t k)
{
    g_array_sort(m, model_cmp);
    encore_boards_entry out[16];
    size_t got = encore_boards_top(b, scope, ENCORE_BOARDS_ALL, room, singer, THU, out, 16);
    g_assert_cmpuint(got, ==, MIN(k, (size_t)m->len));
    for (size_t i = 0; i < got; i++) {
        const model_entry *e = &g_array_index(m, model_entry, i);
        g_assert_cmpint(out[i].user, ==, e->user);
        g_assert_cmpint(out[i].coins, ==, e->coins);
        g_assert_cmpint(out[i].reached_us, ==, e->reached_us);
    }
}

/* Random gifts (many ties, many lead changes) against the brute-force model, including the show
 * board's change reports. */
static void test_model(void)
{
    const size_t k = 8, show_top = 3;
    encore_boards_config cfg = {.top_max = k, .show_top = show_top};
    encore_boards *b = encore_boards_new(&cfg);
    encore_boards_show_start(b, "r", "r-1");
    GArray *overall = g_array_new(FALSE, FALSE, sizeof(model_entry));
    GArray *singer = g_array_new(FALSE, FALSE, sizeof(model_entry));
    GArray *show = g_array_new(FALSE, FALSE, sizeof(model_entry));
    GRand *r = g_rand_new_with_seed(42);
    for (int64_t tid = 1; tid <= 3000; tid++) {
        int64_t user = g_rand_int_range(r, 1, 40);
        int64_t to = g_rand_int_range(r, 100, 103);
        int64_t coins = g_rand_boolean(r) ? 1 : g_rand_int_range(r, 1, 30);
        int64_t t = THU + tid / 3; /* several gifts share an instant */
        /* The model's top show_top before. */
        g_array_sort(show, model_cmp);
        model_entry before[3];
        size_t nb = MIN(show_top, (size_t)show->len);
        if (nb > 0)
            memcpy(before, show->data, nb * sizeof(model_entry));
        bool changed;
        g_assert_cmpint(gift(b, tid, user, to, coins, t, "r", "r-1", &changed), ==,
                        ENCORE_BOARDS_APPLIED);
        model_add(overall, user, coins, t, tid);
        if (to == 100)
            model_add(singer, user, coins, t, tid);
        model_add(show, user, coins, t, tid);
        g_array_sort(show, model_cmp);
        size_t na = MIN(show_top, (size_t)show->len);
        bool model_changed = na != nb;
        for (size_t i = 0; !model_changed && i < na; i++) {
            const model_entry *e = &g_array_index(show, model_entry, i);
            model_changed = e->user != before[i].user || e->coins != before[i].coins;
        }
        g_assert_cmpint(changed, ==, model_changed);
        if (tid % 97 == 0 || tid == 3000) {
            assert_model(b, ENCORE_BOARDS_OVERALL, 0, NULL, overall, k);
            assert_model(b, ENCORE_BOARDS_SINGER, 100, NULL, singer, k);
            assert_model(b, ENCORE_BOARDS_SHOW, 0, "r", show, k);
        }
    }
    encore_boards_stats st;
    encore_boards_get_stats(b, &st);
    g_assert_cmpuint(st.overall_users, ==, overall->len);
    g_assert_cmpuint(st.singers, ==, 3);
    g_assert_cmpuint(st.show_entries, ==, show->len);
    g_rand_free(r);
    g_array_free(overall, TRUE);
    g_array_free(singer, TRUE);
    g_array_free(show, TRUE);
    encore_boards_free(b);
}

static void test_prune_and_stats(void)
{
    encore_boards *b = encore_boards_new(NULL);
    g_assert_cmpint(gift(b, 1, 7, 9, 1, THU, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    g_assert_cmpint(gift(b, 2, 8, 9, 1, THU, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    g_assert_cmpint(gift(b, 3, 7, 10, 1, THU, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    encore_boards_stats st;
    encore_boards_get_stats(b, &st);
    g_assert_cmpuint(st.singers, ==, 2);
    g_assert_cmpuint(st.all_time_pairs, ==, 3);
    g_assert_cmpuint(st.overall_users, ==, 2);
    /* Day and week boards: overall 2 + 2, singer 9: 2 + 2, singer 10: 1 + 1. */
    g_assert_cmpuint(st.period_entries, ==, 10);
    /* Friday: the day boards go, the week boards stay. */
    encore_boards_prune(b, THU + DAY_US);
    encore_boards_get_stats(b, &st);
    g_assert_cmpuint(st.period_entries, ==, 5);
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_WEEK, NULL, 0, THU + DAY_US, 10, "7:2,8:1");
    /* Monday: the weeks go too; all time stays. */
    encore_boards_prune(b, MON);
    encore_boards_get_stats(b, &st);
    g_assert_cmpuint(st.period_entries, ==, 0);
    g_assert_cmpuint(st.all_time_pairs, ==, 3);
    assert_top(b, ENCORE_BOARDS_OVERALL, ENCORE_BOARDS_ALL, NULL, 0, MON, 10, "7:2,8:1");
    /* A pruned board takes gifts again. */
    g_assert_cmpint(gift(b, 4, 8, 9, 1, MON, NULL, NULL, NULL), ==, ENCORE_BOARDS_APPLIED);
    assert_top(b, ENCORE_BOARDS_SINGER, ENCORE_BOARDS_DAY, NULL, 9, MON, 10, "8:1");
    encore_boards_free(b);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/boards/seen", test_seen);
    g_test_add_func("/boards/day-week", test_day_week);
    g_test_add_func("/boards/names", test_names);
    g_test_add_func("/boards/order-and-ties", test_order_and_ties);
    g_test_add_func("/boards/idempotent", test_idempotent);
    g_test_add_func("/boards/rollover", test_rollover);
    g_test_add_func("/boards/show", test_show);
    g_test_add_func("/boards/model", test_model);
    g_test_add_func("/boards/prune-and-stats", test_prune_and_stats);
    return g_test_run();
}
