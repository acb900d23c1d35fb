/* A single-producer, single-consumer ring of fixed-size packet slots, allocated once: the way a
 * room's home media worker hands stage packets to the other workers that hold its listeners.
 * Exactly one thread produces and one consumes; neither locks, allocates, logs nor blocks. */
#ifndef ENCORE_MEDIA_RING_H
#define ENCORE_MEDIA_RING_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct encore_ring encore_ring;

/* Largest slot count and slot size encore_ring_new accepts. */
#define ENCORE_RING_MAX_SLOTS 65536u
#define ENCORE_RING_MAX_SLOT_SIZE 65536u

/* Creates a ring of `slots` slots (a power of two, 2..ENCORE_RING_MAX_SLOTS) of up to `slot_size`
 * bytes each (1..ENCORE_RING_MAX_SLOT_SIZE). All memory is allocated here, once; pages of the
 * slot storage are committed by the kernel only as slots are first written. Returns NULL when a
 * size is out of range. The caller owns the ring; free it with encore_ring_free() once neither
 * side can touch it any more. */
encore_ring *encore_ring_new(unsigned slots, size_t slot_size) G_GNUC_WARN_UNUSED_RESULT;
/* Frees the ring. NULL is fine. */
void encore_ring_free(encore_ring *ring);

unsigned encore_ring_capacity(const encore_ring *ring);
size_t encore_ring_slot_size(const encore_ring *ring);

/* ---- producer side (one thread) ---- */

/* The next free slot to write into (encore_ring_slot_size() bytes, owned by the producer until
 * encore_ring_commit), or NULL when the ring is full; a NULL counts one drop. Reserving again
 * before committing returns the same slot. */
uint8_t *encore_ring_reserve(encore_ring *ring);
/* Publishes the slot from the last successful encore_ring_reserve holding `len` bytes (at most the
 * slot size; larger values are clamped). The consumer sees the bytes once it sees the slot. */
void encore_ring_commit(encore_ring *ring, size_t len);
/* Copies `len` bytes into the next slot and publishes it. Returns 0, -ENOBUFS when the ring is
 * full (counted as a drop, nothing written) or -EMSGSIZE when len exceeds the slot size (not
 * counted). */
int encore_ring_push(encore_ring *ring, const void *data, size_t len) G_GNUC_WARN_UNUSED_RESULT;

/* ---- consumer side (one thread) ---- */

/* The oldest published slot and its length, or NULL when the ring is empty. The bytes stay valid
 * and unchanged until encore_ring_release; peeking again before that returns the same slot. */
const uint8_t *encore_ring_peek(encore_ring *ring, size_t *len);
/* Gives the slot from the last successful encore_ring_peek back to the producer. */
void encore_ring_release(encore_ring *ring);
/* Copies the oldest slot into `out` (capacity `cap`) and releases it. Returns its length (0 for an
 * empty slot), -EAGAIN when the ring is empty, or -EMSGSIZE when it does not fit in `cap` (the
 * slot stays queued). */
ssize_t encore_ring_pop(encore_ring *ring, void *out, size_t cap) G_GNUC_WARN_UNUSED_RESULT;

/* ---- either thread ---- */

/* Whether a slot is waiting for the consumer. From the consumer exact; from any other thread a
 * snapshot. */
bool encore_ring_is_empty(encore_ring *ring);
/* Slots refused because the ring was full, since it was created (a snapshot from any thread). */
uint64_t encore_ring_dropped(const encore_ring *ring);

#endif
