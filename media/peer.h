/* One WebRTC transport on a media worker: ICE (a libnice full agent with trickle, consent freshness
 * and restart, or ICE-lite on the worker's shared socket), DTLS-SRTP keyed from the handshake, and
 * plaintext RTP/RTCP in and out. Every function runs on the owning worker's thread; the peer knows
 * nothing of rooms, stages or signaling. */
#ifndef ENCORE_MEDIA_PEER_H
#define ENCORE_MEDIA_PEER_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "media/dtls.h"
#include "media/icelite.h"
#include "media/sdp.h"
#include "media/worker.h"

/* Room a receive buffer leaves for the SRTP trailer: callers that send build packets in buffers
 * of ENCORE_PEER_BUF bytes. */
#define ENCORE_PEER_BUF 1600
#define ENCORE_PEER_MAX_CANDIDATES 16

typedef struct encore_peer encore_peer;

/* Why a peer closed: stable strings shown to clients in `peer.closed`. */
#define ENCORE_PEER_CONSENT_LOST "consent_lost"
#define ENCORE_PEER_ICE_FAILED "ice_failed"
#define ENCORE_PEER_DTLS_FAILED "dtls_failed"

typedef struct {
    /* A local candidate to trickle ("candidate:..."), or "" for the end of candidates. */
    void (*on_candidate)(encore_peer *peer, const char *candidate, void *user_data);
    /* DTLS finished and SRTP is keyed: media may flow. Fires once per peer. */
    void (*on_connected)(encore_peer *peer, void *user_data);
    /* The peer is dead (reason: one of ENCORE_PEER_*). Fires once, from an idle callback, so the
     * owner may free the peer inside it. */
    void (*on_closed)(encore_peer *peer, const char *reason, void *user_data);
    /* One authenticated, decrypted RTP packet; `pkt` is writable with ENCORE_PEER_BUF capacity. */
    void (*on_rtp)(encore_peer *peer, uint8_t *pkt, size_t len, void *user_data);
    /* One authenticated, decrypted RTCP compound packet. */
    void (*on_rtcp)(encore_peer *peer, const uint8_t *pkt, size_t len, void *user_data);
} encore_peer_callbacks;

/* What a peer needs from its environment; every pointer must outlive the peer. */
typedef struct {
    encore_worker *worker;       /* the owning worker (its context runs the agent) */
    encore_dtls_cert *cert;      /* the server certificate (shared, read-only) */
    const char *const *ips;      /* NULL-terminated local addresses to gather on */
    uint16_t port_min, port_max; /* UDP port range, 0/0 = any */
    int connect_timeout_s;       /* ICE + DTLS must finish within this, else ice_failed */
    /* The worker's ICE-lite transport: when set, the peer is an ICE-lite endpoint on its shared
     * socket (no agent, socket or GSource of its own; sends are batched until
     * encore_icelite_flush()); NULL: a libnice full agent. */
    encore_icelite *lite;
} encore_peer_env;

/* Local ICE parameters for an answer. */
typedef struct {
    char ufrag[257];
    char pwd[257];
    int n_candidates;
    char candidates[ENCORE_PEER_MAX_CANDIDATES][256]; /* "candidate:..." */
} encore_peer_local;

/* Creates the transport for an accepted offer: sets the remote ICE credentials and the offer's
 * inline candidates, gathers host candidates on env->ips, and fills `local` for the answer.
 * With env->lite the local credentials are new, the candidates are the shared sockets', and the
 * remote candidates are not needed (a lite agent only answers checks). Returns NULL with `error`
 * set when the agent cannot be set up (no port free in the range). */
encore_peer *encore_peer_new(const encore_peer_env *env, const encore_sdp_offer *offer,
                             const encore_peer_callbacks *cb, void *user_data,
                             encore_peer_local *local, GError **error);
/* Closes the sockets and frees everything; no callback fires afterwards. NULL is fine. */
void encore_peer_free(encore_peer *peer);

/* ICE restart from a new offer (new ufrag/pwd): new local credentials into `local`, same DTLS
 * session and SRTP keys, the peer keeps its place. Returns 0, or -EINVAL when the offer's
 * fingerprint differs from the first one (a new DTLS session is not supported: re-subscribe). */
int encore_peer_restart(encore_peer *peer, const encore_sdp_offer *offer, encore_peer_local *local);

/* Adds one trickled remote candidate ("candidate:..." with or without "a="). "" marks the end.
 * Returns 0, -EINVAL (unparseable), -ENOTSUP (mDNS or TCP candidates are ignored). */
int encore_peer_add_remote_candidate(encore_peer *peer, const char *candidate);

bool encore_peer_is_connected(const encore_peer *peer);
/* True when the peer is an ICE-lite endpoint (its answer must say a=ice-lite). */
bool encore_peer_is_lite(const encore_peer *peer);
bool encore_peer_is_closed(const encore_peer *peer);

/* Protects `pkt` (len bytes of plaintext RTP in a buffer of `cap` >= len + SRTP trailer) in place
 * and sends it on the ICE-selected path: at once with libnice, into the worker's send batch with
 * ICE-lite (out at the next encore_icelite_flush()). Returns 0 or a negative errno; never blocks,
 * never allocates. Only valid once connected. */
int encore_peer_send_rtp(encore_peer *peer, uint8_t *pkt, size_t len, size_t cap);
/* Same for RTCP. */
int encore_peer_send_rtcp(encore_peer *peer, uint8_t *pkt, size_t len, size_t cap);

/* Whatever the owner wants to hang on the peer. */
void encore_peer_set_tag(encore_peer *peer, void *tag);
void *encore_peer_get_tag(const encore_peer *peer);

#endif
