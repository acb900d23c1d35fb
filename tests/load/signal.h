/* The load generator's signaling adapters behind one small interface: Encore's own websocket
 * protocol (docs/protocol.md) and the Janus 1.x websocket API with the VideoRoom plugin. An
 * adapter keeps per-thread state (a Janus session and websocket shared by that thread's peers) and
 * one object per peer; everything of one thread runs on that thread's GMainContext. Adapters never
 * call back from inside their public calls. */
#ifndef ENCORE_LOADGEN_SIGNAL_H
#define ENCORE_LOADGEN_SIGNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "tests/load/http.h"
#include "tests/load/ws.h"

/* Shared by every thread, read-only after start-up except the atomics. */
typedef struct {
    lg_url url;
    char room[65];          /* Encore room name */
    uint64_t janus_room;    /* Janus VideoRoom room id */
    unsigned ws_per_source; /* Encore: websockets per local loopback address (0: do not bind) */
    bool trickle;           /* send our candidates as trickle messages (else inside the SDP) */
    bool verbose;
    /* Encore: the access tokens every websocket presents first (`auth`), one account for the
     * singer (role singer) and one shared by every listener; signed up by main before any
     * thread starts. */
    char singer_token[LG_TOKEN_MAX + 1];
    char listener_token[LG_TOKEN_MAX + 1];
    atomic_uint next_conn;       /* Encore: connections opened so far (picks the source address) */
    _Atomic uint64_t janus_feed; /* Janus: the singer's publisher id, 0 until it has joined */
} lg_sig_config;

typedef struct lg_sig_thread lg_sig_thread;
typedef struct lg_sig_peer lg_sig_peer;

/* The peer's owner may call peer_free from any callback; nothing is called after failed. */
typedef struct {
    /* Signaling is ready: create an offer and pass it to send_sdp. */
    void (*want_offer)(void *user_data);
    /* The remote description: the answer to our offer, or (is_offer) an offer to answer with
     * send_sdp. */
    void (*remote_sdp)(const char *sdp, bool is_offer, void *user_data);
    /* A trickled remote candidate ("" ends the list). */
    void (*remote_candidate)(const char *candidate, void *user_data);
    /* The media request (Encore `subscribe`, Janus subscriber `join`) was sent: the join time of a
     * listener starts here. */
    void (*media_requested)(void *user_data);
    /* Signaling failed, or the server closed the peer; why is a short description (valid during
     * the call). */
    void (*failed)(const char *why, void *user_data);
} lg_sig_callbacks;

typedef struct {
    const char *name; /* "encore" or "janus" */
    /* Per-thread state for the peers that run on ctx. cfg must outlive it. Never NULL. */
    lg_sig_thread *(*thread_new)(lg_sig_config *cfg, GMainContext *ctx);
    /* The run is ending: peers freed from now on leave without a message of their own (the
     * session or connection goes away as a whole). */
    void (*thread_shutdown)(lg_sig_thread *t);
    /* Frees the thread state; every peer of the thread must have been freed. NULL is allowed. */
    void (*thread_free)(lg_sig_thread *t);
    /* Starts signaling for one peer: the singer (publisher) or a listener (subscriber). Progress
     * is reported through cb. Returns the peer (free with peer_free), never NULL. */
    lg_sig_peer *(*peer_new)(lg_sig_thread *t, bool singer, unsigned index,
                             const lg_sig_callbacks *cb, void *user_data);
    /* Sends our offer (after want_offer) or our answer (after remote_sdp with is_offer). */
    void (*send_sdp)(lg_sig_peer *p, const char *sdp);
    /* Trickles one local candidate ("" ends the list) for the m-section mid. */
    void (*send_candidate)(lg_sig_peer *p, const char *candidate, const char *mid);
    /* Leaves (closes the websocket or detaches the handle) and frees. NULL is allowed. */
    void (*peer_free)(lg_sig_peer *p);
} lg_sig_ops;

extern const lg_sig_ops lg_sig_encore;
extern const lg_sig_ops lg_sig_janus;

#endif
