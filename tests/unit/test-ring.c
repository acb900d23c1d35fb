/* Unit tests for media/ring.c: argument checks, exact FIFO order, the full ring's refusals and drop
 * count, slot reuse across many wraparounds, zero-copy reserve/peek, and two real threads (one
 * producer, one consumer) passing every message in order, with and without drops. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include <glib.h>

#include "media/ring.h"

static void test_new(void)
{
    g_assert_null(encore_ring_new(0, 100));
    g_assert_null(encore_ring_new(1, 100));
    g_assert_null(encore_ring_new(3, 100));
    g_assert_null(encore_ring_new(ENCORE_RING_MAX_SLOTS * 2, 100));
    g_assert_null(encore_ring_new(4, 0));
    g_assert_null(encore_ring_new(4, ENCORE_RING_MAX_SLOT_SIZE + 1));
    encore_ring_free(NULL);
    encore_ring *r = encore_ring_new(256, 1500);
    g_assert_nonnull(r);
    g_assert_cmpuint(encore_ring_capacity(r), ==, 256);
    g_assert_cmpuint(encore_ring_slot_size(r), ==, 1500);
    g_assert_true(encore_ring_is_empty(r));
    g_assert_cmpuint(encore_ring_dropped(r), ==, 0);
    uint8_t out[8];
    g_assert_cmpint(encore_ring_pop(r, out, sizeof out), ==, -EAGAIN);
    size_t len = 99;
    g_assert_null(encore_ring_peek(r, &len));
    g_assert_cmpuint(len, ==, 99);
    encore_ring_free(r);
}

static void test_order_and_full(void)
{
    encore_ring *r = encore_ring_new(4, 16);
    uint8_t big[17] = {0};
    g_assert_cmpint(encore_ring_push(r, big, sizeof big), ==, -EMSGSIZE);
    for (uint8_t i = 0; i < 4; i++) {
        uint8_t msg[3] = {i, (uint8_t)(i * 7), 0xEE};
        g_assert_cmpint(encore_ring_push(r, msg, 1 + i % 3), ==, 0);
    }
    g_assert_false(encore_ring_is_empty(r));
    /* Full: a push and a reservation are refused, and both are counted; nothing is overwritten. */
    uint8_t five[1] = {5};
    g_assert_cmpint(encore_ring_push(r, five, 1), ==, -ENOBUFS);
    g_assert_null(encore_ring_reserve(r));
    g_assert_cmpuint(encore_ring_dropped(r), ==, 2);
    /* The oversized push above was not a drop. */

    uint8_t out[16];
    g_assert_cmpint(encore_ring_pop(r, out, 0), ==, -EMSGSIZE); /* stays queued */
    g_assert_cmpint(encore_ring_pop(r, out, sizeof out), ==, 1);
    g_assert_cmpuint(out[0], ==, 0);
    /* One slot free again: it takes exactly one more. */
    g_assert_cmpint(encore_ring_push(r, five, 1), ==, 0);
    g_assert_cmpint(encore_ring_push(r, five, 1), ==, -ENOBUFS);
    g_assert_cmpuint(encore_ring_dropped(r), ==, 3);
    for (uint8_t i = 1; i < 4; i++) {
        g_assert_cmpint(encore_ring_pop(r, out, sizeof out), ==, 1 + i % 3);
        g_assert_cmpuint(out[0], ==, i);
        if (i % 3 >= 1)
            g_assert_cmpuint(out[1], ==, (uint8_t)(i * 7));
        if (i % 3 == 2)
            g_assert_cmpuint(out[2], ==, 0xEE);
    }
    g_assert_cmpint(encore_ring_pop(r, out, sizeof out), ==, 1);
    g_assert_cmpuint(out[0], ==, 5);
    g_assert_cmpint(encore_ring_pop(r, out, sizeof out), ==, -EAGAIN);
    g_assert_true(encore_ring_is_empty(r));
    /* An empty message is a message. */
    g_assert_cmpint(encore_ring_push(r, NULL, 0), ==, 0);
    g_assert_cmpint(encore_ring_pop(r, out, sizeof out), ==, 0);
    g_assert_cmpint(encore_ring_pop(r, out, sizeof out), ==, -EAGAIN);
    encore_ring_free(r);
}

/* Many passes over a small ring, at every fill level: each slot is reused thousands of times and
 * the free-running indexes pass the slot count again and again. */
static void test_wraparound(void)
{
    encore_ring *r = encore_ring_new(8, 64);
    uint32_t next_in = 0, next_out = 0;
    for (int round = 0; round < 5000; round++) {
        int burst = 1 + round % 8;
        for (int i = 0; i < burst; i++) {
            uint8_t *slot = encore_ring_reserve(r);
            g_assert_nonnull(slot);
            /* Reserving again before the commit gives the same slot. */
            g_assert_true(encore_ring_reserve(r) == slot);
            memcpy(slot, &next_in, 4);
            memset(slot + 4, (int)(next_in & 0xff), 60);
            encore_ring_commit(r, 4 + next_in % 61);
            next_in++;
        }
        if (burst == 8)
            g_assert_null(encore_ring_reserve(r));
        for (int i = 0; i < burst; i++) {
            size_t len = 0;
            const uint8_t *slot = encore_ring_peek(r, &len);
            g_assert_nonnull(slot);
            g_assert_true(encore_ring_peek(r, &len) == slot);
            uint32_t v;
            memcpy(&v, slot, 4);
            g_assert_cmpuint(v, ==, next_out);
            g_assert_cmpuint(len, ==, 4 + next_out % 61);
            for (size_t k = 4; k < len; k++)
                g_assert_cmpuint(slot[k], ==, next_out & 0xff);
            encore_ring_release(r);
            next_out++;
        }
        g_assert_true(encore_ring_is_empty(r));
    }
    g_assert_cmpuint(next_out, ==, next_in);
    g_assert_cmpuint(encore_ring_dropped(r), ==, 625); /* the rounds with a burst of 8 */
    encore_ring_free(r);
}

/* ---- two threads ------------------------------------------------------------------------- */

#define MSG_MAX 200

typedef struct {
    encore_ring *ring;
    uint32_t n;
    bool lossy;         /* drop when full instead of retrying */
    atomic_bool done;   /* the producer has pushed its last message */
    uint32_t refused;   /* the producer's count of -ENOBUFS */
    uint32_t received;  /* consumer: messages taken */
    uint32_t last_seen; /* consumer: the last sequence number taken */
} duo;

/* Message i: its number, then bytes derived from it, of a length that varies with i. */
static size_t msg_make(uint32_t i, uint8_t *b)
{
    size_t len = 4 + (i * 37u) % (MSG_MAX - 4);
    memcpy(b, &i, 4);
    for (size_t k = 4; k < len; k++)
        b[k] = (uint8_t)(i * 13u + k);
    return len;
}

static gpointer producer(gpointer data)
{
    duo *d = data;
    uint8_t b[MSG_MAX];
    for (uint32_t i = 0; i < d->n; i++) {
        size_t len = msg_make(i, b);
        int rc;
        while ((rc = encore_ring_push(d->ring, b, len)) == -ENOBUFS && !d->lossy)
            g_thread_yield();
        if (rc == -ENOBUFS)
            d->refused++;
        else
            g_assert_cmpint(rc, ==, 0);
    }
    atomic_store(&d->done, true);
    return NULL;
}

static gpointer consumer(gpointer data)
{
    duo *d = data;
    uint8_t b[MSG_MAX], want[MSG_MAX];
    bool first = true;
    for (;;) {
        bool was_done = atomic_load(&d->done);
        ssize_t n = encore_ring_pop(d->ring, b, sizeof b);
        if (n == -EAGAIN) {
            if (was_done)
                break; /* done was set before this pop found nothing: all taken */
            g_thread_yield();
            continue;
        }
        g_assert_cmpint(n, >=, 4);
        uint32_t i;
        memcpy(&i, b, 4);
        if (d->lossy)
            g_assert_true(first || i > d->last_seen);
        else
            g_assert_cmpuint(i, ==, d->received);
        size_t len = msg_make(i, want);
        g_assert_cmpmem(b, (size_t)n, want, len);
        first = false;
        d->last_seen = i;
        d->received++;
        /* A slow consumer now and then, so that a lossy producer really finds the ring full. */
        if (d->lossy && d->received % 500 == 0)
            g_usleep(1000);
    }
    return NULL;
}

static void run_duo(duo *d)
{
    atomic_init(&d->done, false);
    GThread *c = g_thread_new("ring-consumer", consumer, d);
    GThread *p = g_thread_new("ring-producer", producer, d);
    g_thread_join(p);
    g_thread_join(c);
}

static void test_threads_exact(void)
{
    duo d = {.ring = encore_ring_new(16, MSG_MAX), .n = 200000, .lossy = false};
    run_duo(&d);
    g_assert_cmpuint(d.received, ==, d.n);
    g_assert_cmpuint(d.last_seen, ==, d.n - 1);
    g_assert_cmpuint(d.refused, ==, 0);
    g_assert_true(encore_ring_is_empty(d.ring));
    encore_ring_free(d.ring);
}

static void test_threads_lossy(void)
{
    duo d = {.ring = encore_ring_new(8, MSG_MAX), .n = 100000, .lossy = true};
    run_duo(&d);
    g_assert_cmpuint(d.refused, >, 0);
    g_assert_cmpuint(encore_ring_dropped(d.ring), ==, d.refused);
    g_assert_cmpuint(d.received + d.refused, ==, d.n);
    g_assert_true(encore_ring_is_empty(d.ring));
    encore_ring_free(d.ring);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ring/new", test_new);
    g_test_add_func("/ring/order-and-full", test_order_and_full);
    g_test_add_func("/ring/wraparound", test_wraparound);
    g_test_add_func("/ring/threads-exact", test_threads_exact);
    g_test_add_func("/ring/threads-lossy", test_threads_lossy);
    return g_test_run();
}
