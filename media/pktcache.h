/* A NACK cache of RTP packets by sequence number: a fixed ring of slots, allocated once, used by
 * one thread (the stage track's and each worker shard's). No allocation or lock per packet. */
#ifndef ENCORE_MEDIA_PKTCACHE_H
#define ENCORE_MEDIA_PKTCACHE_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

/* Largest packet a slot holds; longer ones are not cached. */
#define ENCORE_PKTCACHE_MTU 1500

typedef struct encore_pktcache encore_pktcache;

/* `slots` must be a power of two dividing 65536. The packet storage is allocated but not touched,
 * so the kernel commits its pages only as packets arrive. Returns NULL for a bad slot count. */
encore_pktcache *encore_pktcache_new(unsigned slots) G_GNUC_WARN_UNUSED_RESULT;
void encore_pktcache_free(encore_pktcache *cache); /* NULL is fine */

/* Stores a copy of `pkt` under `seq`. A late packet never evicts a newer one; a packet over
 * ENCORE_PKTCACHE_MTU empties its slot instead. */
void encore_pktcache_put(encore_pktcache *cache, uint16_t seq, const uint8_t *pkt, size_t len);
/* The packet stored under `seq`, valid until the next put: 0, or -ENOENT when it is not held or is
 * more than `slots` behind the newest packet. */
int encore_pktcache_get(const encore_pktcache *cache, uint16_t seq, const uint8_t **pkt,
                        size_t *len) G_GNUC_WARN_UNUSED_RESULT;
/* Forgets every packet (for a stream that resumes after a gap of unknown length). */
void encore_pktcache_clear(encore_pktcache *cache);

#endif
