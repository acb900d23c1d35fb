/* A room's media: the singers' incoming peers, the listeners' outgoing peers and the one stage
 * track between them (the SFU). The room has a home media worker (singers, stage track) and a
 * shard on every worker; each listener is placed on the shard with the fewest listeners, so one
 * large room uses every core. The API is called on the main thread and never blocks: each call is
 * queued to the worker that owns the peer; results come back as callbacks on the main context.
 * Nothing here knows about users, JSON or money. */
#ifndef ENCORE_MEDIA_ROOM_H
#define ENCORE_MEDIA_ROOM_H

#include <stdint.h>

#include "media/media.h"

typedef struct encore_media_room encore_media_room;

typedef enum {
    ENCORE_MEDIA_PUBLISH,   /* a singer sends to the server */
    ENCORE_MEDIA_SUBSCRIBE, /* a listener receives the stage track */
} encore_media_dir;

/* Callbacks, all on the main context, never after encore_media_room_free(). Strings are borrowed
 * for the call. */
typedef struct {
    /* The answer to an offer, or an error: `code` is "sdp_invalid", "no_opus", "room_full" or
     * "internal" and `message` says why (sdp is NULL then). */
    void (*answer)(uint64_t peer_id, const char *sdp, const char *code, const char *message,
                   void *user_data);
    /* A local candidate to trickle, "" = end of candidates. */
    void (*candidate)(uint64_t peer_id, const char *candidate, void *user_data);
    /* DTLS-SRTP is up. */
    void (*connected)(uint64_t peer_id, void *user_data);
    /* The peer is gone (consent_lost, ice_failed, dtls_failed); it was removed from the room. */
    void (*closed)(uint64_t peer_id, const char *reason, void *user_data);
} encore_media_room_callbacks;

/* Creates a room's media with its home on the worker picked for `name` and a shard on every
 * worker. The stage track gets a random SSRC that stays for the room's life. */
encore_media_room *encore_media_room_new(encore_media *media, const char *name,
                                         const encore_media_room_callbacks *cb, void *user_data);
/* Closes every peer (asynchronously, on the worker) and frees the room; no callback fires after
 * this returns. NULL is fine. */
void encore_media_room_free(encore_media_room *room);

/* An offer for `peer_id` (chosen by the caller, unique in the room). A second offer for the same
 * id and direction is an ICE restart. The answer arrives through the `answer` callback (always
 * later, never inside this call). A PUBLISH peer lives on the home worker; a SUBSCRIBE peer is
 * placed, at its first offer, on the worker whose shard has the fewest listeners and stays there
 * until it is closed. An id already used for the other direction gets "internal"; a new id when
 * the room holds max_peers_per_room peers gets "room_full". */
void encore_media_room_offer(encore_media_room *room, uint64_t peer_id, encore_media_dir dir,
                             const char *sdp);
/* A trickled remote candidate ("" = end of candidates). Unknown peers are ignored. */
void encore_media_room_candidate(encore_media_room *room, uint64_t peer_id, const char *candidate);
/* Closes and forgets a peer. No `closed` callback for it. */
void encore_media_room_close_peer(encore_media_room *room, uint64_t peer_id);
/* Chooses whose published audio the stage track carries: a PUBLISH peer id, or 0 for nobody.
 * Listeners keep their stream; sequence numbers and timestamps continue. */
void encore_media_room_set_stage(encore_media_room *room, uint64_t peer_id);
/* The stage track's SSRC (constant for the room's life). Any thread. */
uint32_t encore_media_room_ssrc(const encore_media_room *room);

#endif
