/* NACK packet cache (see pktcache.h): slot metadata in small arrays, packet bytes in one untouched
 * allocation. Single-threaded; no allocation after _new. */
#include "config.h"

#include "media/pktcache.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

struct encore_pktcache {
    unsigned slots;
    bool started;
    uint16_t newest; /* highest sequence number put (as a 16-bit serial number) */
    uint16_t *seq;   /* sequence number held by each slot */
    uint16_t *len;   /* packet length; 0: empty */
    uint8_t *data;   /* slots * ENCORE_PKTCACHE_MTU bytes */
};

encore_pktcache *encore_pktcache_new(unsigned slots)
{
    if (slots == 0 || (slots & (slots - 1)) != 0 || slots > 32768)
        return NULL;
    encore_pktcache *c = g_new0(encore_pktcache, 1);
    c->slots = slots;
    c->seq = g_new0(uint16_t, slots);
    c->len = g_new0(uint16_t, slots);
    c->data = g_malloc((size_t)slots * ENCORE_PKTCACHE_MTU);
    return c;
}

void encore_pktcache_free(encore_pktcache *c)
{
    if (!c)
        return;
    g_free(c->seq);
    g_free(c->len);
    g_free(c->data);
    g_free(c);
}

void encore_pktcache_put(encore_pktcache *c, uint16_t seq, const uint8_t *pkt, size_t len)
{
    if (!c->started || (int16_t)(seq - c->newest) > 0) {
        c->newest = seq;
        c->started = true;
    }
    size_t i = seq & (c->slots - 1);
    /* The slot's packet is newer when it lies in (seq, newest]: keep it. Anything else in the
     * slot (older, or stale from long ago) is replaced. */
    if (c->len[i] && (uint16_t)(c->newest - c->seq[i]) < (uint16_t)(c->newest - seq))
        return;
    if (len > ENCORE_PKTCACHE_MTU || len == 0) {
        c->len[i] = 0;
        return;
    }
    memcpy(c->data + i * ENCORE_PKTCACHE_MTU, pkt, len);
    c->len[i] = (uint16_t)len;
    c->seq[i] = seq;
}

int encore_pktcache_get(const encore_pktcache *c, uint16_t seq, const uint8_t **pkt, size_t *len)
{
    if (!c->started || (uint16_t)(c->newest - seq) >= c->slots)
        return -ENOENT;
    size_t i = seq & (c->slots - 1);
    if (c->len[i] == 0 || c->seq[i] != seq)
        return -ENOENT;
    *pkt = c->data + i * ENCORE_PKTCACHE_MTU;
    *len = c->len[i];
    return 0;
}

void encore_pktcache_clear(encore_pktcache *c)
{
    c->started = false;
    memset(c->len, 0, c->slots * sizeof *c->len);
}
