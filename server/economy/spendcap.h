/* The daily spending cap: coins each user spent (committed) and has in flight (reserved) per UTC
 * day, so a gift or VIP purchase over the cap is refused before it reaches the ledger. Main
 * thread only (no locks); no I/O. It keeps two days (today and yesterday, for requests in flight
 * across midnight) and drops older ones; it does not know prices or kinds.
 *
 * Use: reserve before submitting; on the ledger's answer commit (OK, with the transfer id) or
 * release (anything else). At start, record every committed spending transfer of the last two
 * days read from the ledger. A transfer counts on the UTC day of its reservation; when rebuilt,
 * on the day of its commit time (they differ only for a request in flight across midnight). */
#ifndef ENCORE_ECONOMY_SPENDCAP_H
#define ENCORE_ECONOMY_SPENDCAP_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#define ENCORE_SPENDCAP_DAY_US INT64_C(86400000000)

typedef enum {
    ENCORE_SPENDCAP_OK = 0,
    ENCORE_SPENDCAP_DAILY_CAP, /* "daily_cap": committed + reserved + amount would pass the cap */
    ENCORE_SPENDCAP_DUPLICATE, /* "duplicate": this transfer id was counted already (nothing
                                * added; commit still released the reservation) */
    ENCORE_SPENDCAP_INVALID,   /* "invalid_request": user <= 0, amount <= 0 or over
                                * ENCORE_LEDGER_MAX_AMOUNT, transfer id <= 0 */
} encore_spendcap_status;

/* The names above; NULL when out of range. */
const char *encore_spendcap_status_name(encore_spendcap_status status);

typedef struct encore_spendcap encore_spendcap;

/* A tracker with `cap` coins per user per day (0: no cap, spending is still counted) and a set
 * of `seen_capacity` committed transfer ids (0: server/economy/seen.h's default). */
encore_spendcap *encore_spendcap_new(int64_t cap, size_t seen_capacity);
void encore_spendcap_free(encore_spendcap *sc);

/* The UTC day number of a time in microseconds since the epoch (floor(time / 1 day)). */
int64_t encore_spendcap_day(int64_t time_us);

/* Reserves `amount` for `user` on the UTC day of now_us (written to *day, which commit and
 * release take back). Returns OK, DAILY_CAP (nothing reserved) or INVALID. A later now_us moves
 * "today" forward and drops the days before yesterday. */
encore_spendcap_status encore_spendcap_reserve(encore_spendcap *sc, int64_t user, int64_t amount,
                                               int64_t now_us,
                                               int64_t *day) G_GNUC_WARN_UNUSED_RESULT;

/* The ledger committed a reserved amount as `transfer_id`: releases the reservation of `day` and
 * adds `amount` to that day's spending, once per transfer id. Returns OK, DUPLICATE (the
 * reservation is released, nothing added: the transfer was counted before, e.g. a replayed
 * answer) or INVALID. A day no longer kept is ignored (OK). */
encore_spendcap_status encore_spendcap_commit(encore_spendcap *sc, int64_t user, int64_t amount,
                                              int64_t day, int64_t transfer_id);

/* The request was refused or failed: gives the reservation of `day` back (a day no longer kept,
 * or more than is reserved, releases what there is). */
void encore_spendcap_release(encore_spendcap *sc, int64_t user, int64_t amount, int64_t day);

/* Counts a committed transfer with no reservation (the startup rebuild), on the day of
 * created_us, once per transfer id. Days older than yesterday relative to the newest time seen
 * are ignored; a newer day moves "today" forward. Returns OK, DUPLICATE or INVALID. */
encore_spendcap_status encore_spendcap_record(encore_spendcap *sc, int64_t user, int64_t amount,
                                              int64_t transfer_id, int64_t created_us);

/* The user's committed spending and reservations on the UTC day of now_us (0 for a day not
 * kept). Either output may be NULL. Does not move "today". */
void encore_spendcap_get(const encore_spendcap *sc, int64_t user, int64_t now_us, int64_t *spent,
                         int64_t *reserved);

/* The cap given at creation. */
int64_t encore_spendcap_cap(const encore_spendcap *sc);

/* Users with an entry on today's and yesterday's day (for tests and metrics). */
size_t encore_spendcap_size(const encore_spendcap *sc);

#endif /* ENCORE_ECONOMY_SPENDCAP_H */
