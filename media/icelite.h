/* ICE-lite (RFC 8445 section 2.5) on shared sockets: per media worker, one UDP socket per media
 * address carries every connection placed on the worker. Datagrams are demultiplexed by source
 * address, and STUN checks from new addresses by the USERNAME's local ufrag; outgoing media is
 * batched and sent with sendmmsg. Everything runs on the owning worker's thread (creation and
 * freeing excepted, see below); nothing here allocates or blocks per packet. */
#ifndef ENCORE_MEDIA_ICELITE_H
#define ENCORE_MEDIA_ICELITE_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "media/worker.h"

/* Longest datagram received or queued; a longer one is dropped. */
#define ENCORE_ICELITE_MTU 1600
/* Local candidates: one per configured address. */
#define ENCORE_ICELITE_MAX_SOCKETS 8
/* Without a valid check (or authenticated SRTP/SRTCP, see encore_icelite_conn_consent) from the
 * selected address for this long, consent is lost (RFC 7675). */
#define ENCORE_ICELITE_CONSENT_MS 30000

typedef struct encore_icelite encore_icelite;
typedef struct encore_icelite_conn encore_icelite_conn;

typedef struct {
    const char *const *ips;      /* NULL-terminated IPv4/IPv6 literals to bind (1-8 of them) */
    uint16_t port_min, port_max; /* the first free port of the range is taken; 0/0 = any */
    int consent_ms;              /* consent timeout; 0 = ENCORE_ICELITE_CONSENT_MS */
} encore_icelite_config;

/* What a connection reports. Every callback runs inside the transport's dispatch on the worker's
 * thread; none may free any connection (defer that to an idle source), and on_timer may only
 * re-arm its own connection's timer. */
typedef struct {
    /* The first authenticated Binding request arrived: a path exists, DTLS may start. Once. */
    void (*on_ready)(void *user_data);
    /* A datagram that is not STUN from an address that passed a check for this connection
     * (DTLS, SRTP or SRTCP by RFC 7983's first byte; the owner demultiplexes). `data` is
     * writable, ENCORE_ICELITE_MTU bytes of capacity, valid during the call. */
    void (*on_data)(uint8_t *data, size_t len, void *user_data);
    /* The deadline given to encore_icelite_conn_set_timer() passed. */
    void (*on_timer)(void *user_data);
    /* No authenticated check from the selected address within the consent timeout. Once. */
    void (*on_consent_lost)(void *user_data);
} encore_icelite_callbacks;

/* Binds one non-blocking UDP socket per address (enlarged buffers) and attaches one GSource to
 * `ctx` for all of them. Call from any thread before the context's thread uses it. `stats` (the
 * worker's counters) must outlive the transport. Returns NULL with `error` set: an address that
 * is not an IP literal, none or more than ENCORE_ICELITE_MAX_SOCKETS, no free port in the range
 * (G_IO_ERROR_ADDRESS_IN_USE), or a socket call failing. */
encore_icelite *encore_icelite_new(GMainContext *ctx, const encore_icelite_config *cfg,
                                   encore_worker_stats *stats, GError **error);
/* Stops receiving: detaches the source from its context (thread-safe, idempotent), so that a
 * worker draining its last tasks at shutdown is not kept busy by datagrams that keep arriving.
 * Connections may still be freed and may still send afterwards. */
void encore_icelite_stop(encore_icelite *lite);
/* Stops it if needed, closes the sockets and frees it. Every connection must have been freed, and
 * the context's thread must no longer run (or this must run on it). NULL is fine. */
void encore_icelite_free(encore_icelite *lite);

/* The local host candidates ("candidate:F 1 udp PRIO IP PORT typ host"), one per socket: how many
 * there are, and the i-th (NULL when out of range). Owned by the transport. Any thread. */
int encore_icelite_n_candidates(const encore_icelite *lite);
const char *encore_icelite_candidate(const encore_icelite *lite, int i);
/* The bound port of the i-th socket (0 when out of range). Any thread. */
uint16_t encore_icelite_port(const encore_icelite *lite, int i);

/* Sends every queued datagram (one sendmmsg per socket; a batch also goes out by itself when 64
 * datagrams are queued). Called by the owner at the end of a fan-out or ring drain; the transport
 * also flushes before its context polls, so nothing waits longer than one loop iteration. */
void encore_icelite_flush(encore_icelite *lite);

/* A new connection with fresh local credentials (ufrag 8 and password 24 random ice-chars).
 * Callbacks are copied; user_data is passed back. Never fails. */
encore_icelite_conn *encore_icelite_conn_new(encore_icelite *lite,
                                             const encore_icelite_callbacks *cb, void *user_data);
/* Forgets the connection's addresses and credentials; no callback fires afterwards. Datagrams it
 * queued and not yet flushed are still sent. NULL is fine. */
void encore_icelite_conn_free(encore_icelite_conn *conn);

/* The current local credentials, for the SDP answer. Owned by the connection, valid until the next
 * restart or the free. */
const char *encore_icelite_conn_ufrag(const encore_icelite_conn *conn);
const char *encore_icelite_conn_pwd(const encore_icelite_conn *conn);
/* ICE restart: new local credentials. The previous ones stay valid until a check uses the new
 * ones, and the selected path keeps carrying media meanwhile. */
void encore_icelite_conn_restart(encore_icelite_conn *conn);

/* Called from on_data when the datagram authenticated (SRTP/SRTCP with the peer's keys): if it came
 * from the selected address, it renews consent like a valid check does. Full agents that send no
 * checks after connecting (libnice without consent freshness) keep consent through their RTCP
 * reports this way. Does nothing outside on_data. */
void encore_icelite_conn_consent(encore_icelite_conn *conn);

/* True once a check selected a path (sends can go out). */
bool encore_icelite_conn_has_path(const encore_icelite_conn *conn);

/* Arms the connection's one timer for `deadline_us` (g_get_monotonic_time() clock; 0 disarms).
 * on_timer fires once at or soon after it (the transport's timers are checked together). */
void encore_icelite_conn_set_timer(encore_icelite_conn *conn, int64_t deadline_us);

/* Sends one datagram now on the selected path (handshakes). Returns 0, -ENOTCONN (no path yet),
 * -EMSGSIZE (over ENCORE_ICELITE_MTU) or the negative errno of sendto(). */
int encore_icelite_conn_send(encore_icelite_conn *conn, const uint8_t *data, size_t len);
/* Copies one datagram into the worker's send batch for the selected path; it goes out at the next
 * flush (sooner if the batch fills up). Returns 0, -ENOTCONN or -EMSGSIZE. Failures of the later
 * sendmmsg are counted in the worker's send_errors. */
int encore_icelite_conn_queue(encore_icelite_conn *conn, const uint8_t *data, size_t len);

#endif
