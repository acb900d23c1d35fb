/* The bounded set of applied transfer ids: a sorted ring of the largest ids seen plus a floor.
 * Main thread of its owner; no I/O, no logging. It must never grow past its capacity. */
#include "server/economy/seen.h"

struct encore_seen {
    int64_t *ids;  /* ring of `cap` slots; logical index i lives at (head + i) % cap */
    size_t cap;    /* slots */
    size_t head;   /* slot of the smallest kept id */
    size_t n;      /* ids kept, sorted ascending in logical order */
    int64_t floor; /* ids <= floor count as seen */
};

encore_seen *encore_seen_new(size_t capacity)
{
    encore_seen *s = g_new0(encore_seen, 1);
    s->cap = capacity ? capacity : ENCORE_SEEN_DEFAULT_CAPACITY;
    s->ids = g_new(int64_t, s->cap);
    return s;
}

void encore_seen_free(encore_seen *seen)
{
    if (!seen)
        return;
    g_free(seen->ids);
    g_free(seen);
}

static int64_t at(const encore_seen *s, size_t i)
{
    return s->ids[(s->head + i) % s->cap];
}

/* The logical index of the first kept id >= id (n when none); *found says whether it equals. */
static size_t lower_bound(const encore_seen *s, int64_t id, gboolean *found)
{
    size_t lo = 0, hi = s->n;
    /* Fast path: ids usually arrive in increasing order. */
    if (s->n > 0 && at(s, s->n - 1) < id) {
        *found = FALSE;
        return s->n;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (at(s, mid) < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->n && at(s, lo) == id;
    return lo;
}

encore_seen_result encore_seen_check(const encore_seen *seen, int64_t id)
{
    if (id <= 0)
        return ENCORE_SEEN_INVALID;
    if (id <= seen->floor)
        return ENCORE_SEEN_STALE;
    gboolean found;
    (void)lower_bound(seen, id, &found);
    return found ? ENCORE_SEEN_DUPLICATE : ENCORE_SEEN_NEW;
}

encore_seen_result encore_seen_add(encore_seen *seen, int64_t id)
{
    if (id <= 0)
        return ENCORE_SEEN_INVALID;
    if (id <= seen->floor)
        return ENCORE_SEEN_STALE;
    gboolean found;
    size_t pos = lower_bound(seen, id, &found);
    if (found)
        return ENCORE_SEEN_DUPLICATE;
    if (seen->n == seen->cap) {
        if (pos == 0) {
            /* Smaller than everything kept: it is the one to forget. */
            seen->floor = id;
            return ENCORE_SEEN_NEW;
        }
        seen->floor = at(seen, 0);
        seen->head = (seen->head + 1) % seen->cap;
        seen->n--;
        pos--;
    }
    /* Shift the larger ids one slot up, then store. */
    for (size_t i = seen->n; i > pos; i--)
        seen->ids[(seen->head + i) % seen->cap] = seen->ids[(seen->head + i - 1) % seen->cap];
    seen->ids[(seen->head + pos) % seen->cap] = id;
    seen->n++;
    return ENCORE_SEEN_NEW;
}

int64_t encore_seen_floor(const encore_seen *seen)
{
    return seen->floor;
}

size_t encore_seen_size(const encore_seen *seen)
{
    return seen->n;
}
