/* The single-producer, single-consumer packet ring: free-running 32-bit head and tail indexes
 * (C11 atomics, release on publish, acquire on observe), each side caching the other's index so
 * that a slot costs one shared cache-line read only when the cached view says full or empty.
 * Any two threads, one per side; no locks, no allocation after encore_ring_new, no logging. */
#include "media/ring.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>

#define LINE 64

struct encore_ring {
    /* Producer-owned line. */
    alignas(LINE) _Atomic uint32_t head; /* slots published so far (written by the producer) */
    uint32_t tail_seen;                  /* the producer's last view of `tail` */
    bool reserved;                       /* encore_ring_reserve returned the head slot */
    _Atomic uint64_t dropped;            /* reservations refused as full (written by producer) */

    /* Consumer-owned line. */
    alignas(LINE) _Atomic uint32_t tail; /* slots released so far (written by the consumer) */
    uint32_t head_seen;                  /* the consumer's last view of `head` */
    bool peeked;                         /* encore_ring_peek returned the tail slot */

    /* Read-only after creation. */
    alignas(LINE) uint32_t slots;
    uint32_t mask;
    size_t slot_size;
    uint32_t *lens; /* length of each slot's contents, written before the slot is published */
    uint8_t *data;  /* slots * slot_size bytes */
};

encore_ring *encore_ring_new(unsigned slots, size_t slot_size)
{
    if (slots < 2 || slots > ENCORE_RING_MAX_SLOTS || (slots & (slots - 1)) != 0 ||
        slot_size == 0 || slot_size > ENCORE_RING_MAX_SLOT_SIZE)
        return NULL;
    encore_ring *r = g_aligned_alloc0(1, sizeof *r, LINE);
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->dropped, 0);
    r->slots = slots;
    r->mask = slots - 1;
    r->slot_size = slot_size;
    r->lens = g_new0(uint32_t, slots);
    /* Not zeroed: untouched slot pages stay uncommitted until the producer first writes them. */
    r->data = g_malloc((size_t)slots * slot_size);
    return r;
}

void encore_ring_free(encore_ring *r)
{
    if (!r)
        return;
    g_free(r->data);
    g_free(r->lens);
    g_aligned_free(r);
}

unsigned encore_ring_capacity(const encore_ring *r)
{
    return r->slots;
}

size_t encore_ring_slot_size(const encore_ring *r)
{
    return r->slot_size;
}

/* ---- producer ---------------------------------------------------------------------------- */

uint8_t *encore_ring_reserve(encore_ring *r)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head - r->tail_seen >= r->slots) {
        /* Acquire: the consumer's reads of the slot we are about to reuse happen before. */
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head - r->tail_seen >= r->slots) {
            atomic_store_explicit(&r->dropped,
                                  atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            r->reserved = false;
            return NULL;
        }
    }
    r->reserved = true;
    return r->data + (size_t)(head & r->mask) * r->slot_size;
}

void encore_ring_commit(encore_ring *r, size_t len)
{
    g_return_if_fail(r->reserved);
    r->reserved = false;
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    r->lens[head & r->mask] = (uint32_t)MIN(len, r->slot_size);
    /* Release: the slot's bytes and length are visible before the new head. */
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

int encore_ring_push(encore_ring *r, const void *data, size_t len)
{
    if (len > r->slot_size)
        return -EMSGSIZE;
    uint8_t *slot = encore_ring_reserve(r);
    if (!slot)
        return -ENOBUFS;
    if (len)
        memcpy(slot, data, len);
    encore_ring_commit(r, len);
    return 0;
}

/* ---- consumer ---------------------------------------------------------------------------- */

const uint8_t *encore_ring_peek(encore_ring *r, size_t *len)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (tail == r->head_seen) {
        /* Acquire: pairs with the producer's release in encore_ring_commit. */
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (tail == r->head_seen) {
            r->peeked = false;
            return NULL;
        }
    }
    r->peeked = true;
    *len = r->lens[tail & r->mask];
    return r->data + (size_t)(tail & r->mask) * r->slot_size;
}

void encore_ring_release(encore_ring *r)
{
    g_return_if_fail(r->peeked);
    r->peeked = false;
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    /* Release: our reads of the slot happen before the producer may reuse it. */
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
}

ssize_t encore_ring_pop(encore_ring *r, void *out, size_t cap)
{
    size_t len;
    const uint8_t *slot = encore_ring_peek(r, &len);
    if (!slot)
        return -EAGAIN;
    if (len > cap)
        return -EMSGSIZE;
    if (len)
        memcpy(out, slot, len);
    encore_ring_release(r);
    return (ssize_t)len;
}

/* ---- either ------------------------------------------------------------------------------ */

bool encore_ring_is_empty(encore_ring *r)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    return atomic_load_explicit(&r->tail, memory_order_acquire) == head;
}

uint64_t encore_ring_dropped(const encore_ring *r)
{
    return atomic_load_explicit(&((encore_ring *)r)->dropped, memory_order_relaxed);
}
