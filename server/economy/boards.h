/* Gifter rankings: per show (the room's board since the current singer took the stage), per
 * singer and overall, each overall and per-singer one for the UTC day, the ISO week (Monday
 * 00:00 UTC to the next) and all time. A fold of committed gifts kept on the main thread (no
 * locks); no I/O. It must not apply a transfer twice, and it knows nothing of names or prices.
 *
 * Order: coins descending, then whoever reached their total first (time of the gift that brought
 * them there, then its transfer id, then the user id), so ties are stable and earned.
 * Every board keeps its best `top_max` entries sorted as gifts arrive (totals only grow, so an
 * entry can only move up and the kept top is exact); a query copies them, O(n).
 *
 * Memory: one entry per (board, gifter). Day and week boards hold the gifters of the current
 * period only (a gift of a later period clears the board; encore_boards_prune() clears boards
 * idle since an earlier period); show boards exist only between encore_boards_show_start() and
 * _show_end() and at most max_shows at once. What grows with history: the all-time boards, one
 * entry per (singer, gifter) pair ever and one per gifter overall (about 80 bytes each). */
#ifndef ENCORE_ECONOMY_BOARDS_H
#define ENCORE_ECONOMY_BOARDS_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ENCORE_BOARDS_SHOW = 0, /* "show": the room's current show (period does not apply) */
    ENCORE_BOARDS_SINGER,   /* "singer": gifts to one singer */
    ENCORE_BOARDS_OVERALL,  /* "overall": every gift */
} encore_boards_scope;

typedef enum {
    ENCORE_BOARDS_DAY = 0, /* "day": the current UTC day */
    ENCORE_BOARDS_WEEK,    /* "week": the current ISO week, Monday 00:00 UTC onwards */
    ENCORE_BOARDS_ALL,     /* "all": all time */
} encore_boards_period;

/* Wire names both ways. The parsers take a NUL-terminated string and return 0 with *out set, or
 * -1 (*out untouched) for anything else; the name functions return NULL when out of range. */
int encore_boards_scope_parse(const char *s, encore_boards_scope *out);
int encore_boards_period_parse(const char *s, encore_boards_period *out);
const char *encore_boards_scope_name(encore_boards_scope scope);
const char *encore_boards_period_name(encore_boards_period period);

/* The UTC day number (floor(time / 86400 s)) and the ISO week number (floor((day + 3) / 7): 1
 * January 1970 was a Thursday, so weeks start on Mondays) of a time in microseconds. */
int64_t encore_boards_day(int64_t time_us);
int64_t encore_boards_week(int64_t time_us);

typedef struct {
    size_t top_max;       /* entries kept sorted per board, the most a query returns (0: 100) */
    size_t show_top;      /* the show board's pushed top, whose changes apply() reports (0: 10;
                           * at most top_max) */
    size_t max_shows;     /* rooms with a show board at once (0: 10000); starting one more drops
                           * the show started longest ago */
    size_t seen_capacity; /* applied transfer ids remembered (0: seen.h's default) */
} encore_boards_config;

/* One committed gift. Strings are borrowed for the call. */
typedef struct {
    int64_t transfer_id; /* > 0: the ledger's id, the key of idempotency */
    int64_t from;        /* the gifter, > 0 */
    int64_t to;          /* the singer, > 0 */
    int64_t coins;       /* price * count, 1..ENCORE_LEDGER_MAX_AMOUNT */
    int64_t time_us;     /* commit time (rebuild) or the answer's time (live) */
    const char *room;    /* the room it was sent in, or NULL */
    const char *show;    /* the show it was sent in, or NULL/"" (counted on the room's show board
                          * only when this is the show started there) */
} encore_boards_gift;

typedef struct {
    int64_t user;
    int64_t coins;      /* total in the board's period (saturates at INT64_MAX) */
    int64_t reached_us; /* when this total was reached */
} encore_boards_entry;

typedef enum {
    ENCORE_BOARDS_APPLIED = 0,
    ENCORE_BOARDS_DUPLICATE, /* transfer id applied before: nothing changed */
    ENCORE_BOARDS_STALE,     /* transfer id below the applied-id window (seen.h): assumed applied */
    ENCORE_BOARDS_INVALID,   /* a field out of range: nothing changed, id not recorded */
} encore_boards_result;

typedef struct encore_boards encore_boards;

/* cfg may be NULL (all defaults); it is copied. */
encore_boards *encore_boards_new(const encore_boards_config *cfg);
void encore_boards_free(encore_boards *boards);

/* Applies one committed gift to the overall and the singer's day, week and all-time boards and,
 * when gift->show is the show started in gift->room, to that show board. A gift in a day or week
 * before a board's current one is left out of that board (all time still counts it); a later one
 * starts the board afresh. *show_changed (may be NULL) tells whether the show board's top
 * show_top entries changed (an entry entered, or one of them gained coins or moved): the cue to
 * push the "board" event. Results above; *show_changed is false unless APPLIED. */
encore_boards_result encore_boards_apply(encore_boards *boards, const encore_boards_gift *gift,
                                         bool *show_changed);

/* Starts an empty show board for `room` under the id `show` (both NUL-terminated, non-empty,
 * copied), replacing the room's previous one; nothing happens when `show` is the one already
 * started there. Gifts of any other show id are not counted on it. */
void encore_boards_show_start(encore_boards *boards, const char *room, const char *show);
/* Drops the room's show board (the stage emptied, the room closed). */
void encore_boards_show_end(encore_boards *boards, const char *room);
/* The show id started in `room`, or NULL; valid until the next show call on that room. */
const char *encore_boards_show_id(const encore_boards *boards, const char *room);

/* Copies the best min(n, top_max) entries of a board into out[] and returns how many. SHOW: the
 * board of `room`'s current show (period and singer ignored; 0 without one). SINGER: gifts to
 * `singer`. OVERALL: every gift (singer ignored). A day or week board whose period is before the
 * one of now_us is empty. */
size_t encore_boards_top(const encore_boards *boards, encore_boards_scope scope,
                         encore_boards_period period, const char *room, int64_t singer,
                         int64_t now_us, encore_boards_entry *out, size_t n);

/* Clears the day and week boards whose period is before now_us's (memory of idle singers). */
void encore_boards_prune(encore_boards *boards, int64_t now_us);

/* What is held, for metrics and the memory note above. */
typedef struct {
    size_t singers;        /* singers with boards */
    size_t all_time_pairs; /* (singer, gifter) entries of all-time singer boards */
    size_t overall_users;  /* gifters on the overall all-time board */
    size_t period_entries; /* entries of every day and week board */
    size_t shows;          /* show boards */
    size_t show_entries;   /* entries of every show board */
} encore_boards_stats;

void encore_boards_get_stats(const encore_boards *boards, encore_boards_stats *out);

#endif /* ENCORE_ECONOMY_BOARDS_H */
