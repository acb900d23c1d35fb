/* Media worker threads: a fixed pool, each thread running its own GMainContext that owns the
 * WebRTC peers placed on it for their whole life. Other threads reach a worker only through
 * encore_worker_invoke(); nothing here locks on the per-packet path. */
#ifndef ENCORE_MEDIA_WORKER_H
#define ENCORE_MEDIA_WORKER_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct encore_worker encore_worker;
typedef struct encore_workers encore_workers;

/* Per-worker packet counters. Written only by the owning worker thread (relaxed atomic stores),
 * read by any thread (relaxed atomic loads) for /metrics. */
typedef struct {
    uint64_t rtp_in;           /* SRTP packets from singers that authenticated */
    uint64_t rtp_forwarded;    /* packets taken onto a stage track */
    uint64_t rtp_out;          /* packets sent to listeners (one per listener per packet) */
    uint64_t bytes_out;        /* bytes sent to listeners */
    uint64_t rtcp_in;          /* RTCP packets that authenticated */
    uint64_t rtcp_out;         /* RTCP packets sent (SR to listeners, RR to singers) */
    uint64_t nack_in;          /* sequence numbers listeners asked for */
    uint64_t rr_in;            /* listeners' report blocks about a stage track */
    uint64_t listener_lost;    /* packets listeners reported lost (growth of cumulative lost) */
    uint64_t retransmits;      /* packets re-sent from the NACK cache */
    uint64_t drop_not_ready;   /* RTP/RTCP before DTLS finished */
    uint64_t drop_srtp_auth;   /* SRTP/SRTCP authentication failed */
    uint64_t drop_srtp_replay; /* SRTP replay protection refused */
    uint64_t drop_malformed;   /* decrypted but not parseable RTP/RTCP */
    uint64_t drop_unknown;     /* neither STUN, DTLS, RTP nor RTCP (garbage) */
    uint64_t drop_dtls;        /* DTLS records refused (bad, late or from the wrong state) */
    uint64_t drop_standby;     /* packets from a connected singer who is not on stage */
    uint64_t drop_stage;       /* refused by the stage track (old, duplicate, wrong SSRC) */
    uint64_t send_errors;      /* datagrams that sendto()/sendmmsg() failed to send */
    uint64_t drop_ring_full;   /* stage packets not handed to another worker: its ring was full
                                * (counted by the producing, home worker; once per shard) */
    uint64_t stun_in;          /* ICE-lite: authenticated Binding requests answered */
    uint64_t drop_stun;        /* ICE-lite: STUN refused (malformed, unauthenticated, unknown
                                * comprehension-required attributes, stray responses) */
    uint64_t send_calls;       /* system calls that sent media (sendto, sendmmsg): rtp_out over
                                * this is the send batching factor */
} encore_worker_stats;

#define ENCORE_STAT_ADD(stats, field, n)                                                           \
    __atomic_store_n(&(stats)->field, __atomic_load_n(&(stats)->field, __ATOMIC_RELAXED) + (n),    \
                     __ATOMIC_RELAXED)

/* Starts `n` worker threads (n <= 0: one per core). Never fails except on thread creation, which
 * GLib treats as fatal. Free with encore_workers_free(), which stops and joins every thread after
 * running the tasks already queued. */
encore_workers *encore_workers_new(int n);
/* Stops and joins every thread after running the tasks already queued; the contexts stay, so that
 * what was attached to them can be torn down afterwards from the calling thread. Idempotent. */
void encore_workers_stop(encore_workers *workers);
/* Stops the workers if they still run and frees them. NULL is fine. */
void encore_workers_free(encore_workers *workers);

int encore_workers_count(const encore_workers *workers);
encore_worker *encore_workers_get(encore_workers *workers, int index);
/* The worker a key (a room name) lives on: a stable hash, so a room always lands on one loop. */
encore_worker *encore_workers_pick(encore_workers *workers, const char *key);
/* Sums every worker's counters into `out`. Any thread. */
void encore_workers_stats(encore_workers *workers, encore_worker_stats *out);

GMainContext *encore_worker_context(encore_worker *worker);
int encore_worker_index(const encore_worker *worker);
encore_worker_stats *encore_worker_stats_of(encore_worker *worker);
/* True when called from the worker's own thread. */
bool encore_worker_is_current(encore_worker *worker);
/* Runs fn(data) on the worker's thread (immediately if already there); destroy(data) afterwards.
 * Thread-safe. */
void encore_worker_invoke(encore_worker *worker, GSourceFunc fn, gpointer data,
                          GDestroyNotify destroy);

#endif
