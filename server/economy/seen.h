/* A bounded set of applied ledger transfer ids, so that the folds over acknowledged transfers
 * (boards, VIP, daily spending) apply each transfer once. Main thread (one owner, no locks); no
 * I/O. It must not grow: it keeps the `capacity` largest ids and treats every id at or below the
 * largest one it forgot (the floor) as already applied.
 *
 * Why this is enough: the ledger numbers applied transfers in commit order, and the main loop
 * receives acks batch after batch, so ids arrive almost sorted; only the acks of one batch (at
 * most max_batch, 1024 by default) may come out of order, and a retry after an ambiguous
 * store error is answered with its original (older) id a few seconds later at most. A window of
 * tens of thousands of ids covers both; an id older than the window is reported STALE (not
 * applied again) so the caller can count it. */
#ifndef ENCORE_ECONOMY_SEEN_H
#define ENCORE_ECONOMY_SEEN_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

/* Default capacity: 65536 ids (512 KiB). */
#define ENCORE_SEEN_DEFAULT_CAPACITY 65536u

typedef enum {
    ENCORE_SEEN_NEW = 0,   /* not seen before: now recorded; apply the transfer */
    ENCORE_SEEN_DUPLICATE, /* recorded already: do not apply again */
    ENCORE_SEEN_STALE,     /* at or below the floor: assumed applied, not recorded */
    ENCORE_SEEN_INVALID,   /* id <= 0 (ledger transfer ids are positive) */
} encore_seen_result;

typedef struct encore_seen encore_seen;

/* A set keeping up to `capacity` ids (0: ENCORE_SEEN_DEFAULT_CAPACITY). Free with
 * encore_seen_free(). */
encore_seen *encore_seen_new(size_t capacity);
void encore_seen_free(encore_seen *seen);

/* Records `id` and says whether it was new. When the set is full the smallest id kept is dropped
 * and becomes the floor (when `id` itself is below every kept id, it becomes the floor and is
 * still reported NEW). Cost: O(log n) lookup, plus moving the ids larger than `id` when it
 * arrives out of order (usually none). */
encore_seen_result encore_seen_add(encore_seen *seen, int64_t id) G_GNUC_WARN_UNUSED_RESULT;

/* Whether `id` would be NEW, without recording it. */
encore_seen_result encore_seen_check(const encore_seen *seen, int64_t id);

/* The floor (0 until the set first overflows) and the number of ids kept. */
int64_t encore_seen_floor(const encore_seen *seen);
size_t encore_seen_size(const encore_seen *seen);

#endif /* ENCORE_ECONOMY_SEEN_H */
