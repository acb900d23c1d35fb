/* Measurement pieces of the load generator: the payload hash, the singer's table of send times
 * (written by the singer thread only, read lock-free by every listener thread), the per-thread
 * latency histogram and the readers of a server process's CPU time and RSS from /proc.
 * Nothing here allocates or locks on the per-packet path. */
#ifndef ENCORE_LOADGEN_METRICS_H
#define ENCORE_LOADGEN_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in nanoseconds: the one clock of every time stamp in the program. */
int64_t lg_now_ns(void);

/* A 64-bit hash of a byte string (never 0, so 0 can mark an empty slot). An SFU rewrites RTP
 * headers but forwards payloads unchanged, so the hash of a payload identifies one sent packet. */
uint64_t lg_hash_payload(const uint8_t *data, size_t len);

/* ---- send times ----------------------------------------------------------------------------- */

/* The send table is set-associative: a payload hash picks one of LG_SENDTAB_SETS sets of
 * LG_SENDTAB_WAYS slots, and the singer overwrites the oldest slot of the set. At 50 packets per
 * second an entry lives for minutes; it is lost early only when LG_SENDTAB_WAYS later packets fall
 * into its set (a reader then finds no entry, never a wrong one). */
#define LG_SENDTAB_SETS 2048
#define LG_SENDTAB_WAYS 4

typedef struct {
    _Atomic uint64_t key;   /* the payload hash; 0 while the slot is being written or never was */
    _Atomic int64_t t_ns;   /* when the singer handed the packet to the socket */
    _Atomic uint32_t index; /* the singer's packet number (0-based) */
} lg_sendtab_slot;

/* Written by one thread (the singer's), read by any. Zero-initialised storage is a valid empty
 * table. */
typedef struct {
    lg_sendtab_slot slots[LG_SENDTAB_SETS][LG_SENDTAB_WAYS];
    uint8_t next_way[LG_SENDTAB_SETS]; /* the writer's own round-robin cursor per set */
} lg_sendtab;

/* Records that the payload with this hash was sent at t_ns as packet number index. Singer thread
 * only: the slot is published with a release store of its key. */
void lg_sendtab_put(lg_sendtab *tab, uint64_t hash, int64_t t_ns, uint32_t index);

/* Looks up the send time of the payload with this hash. Returns true and fills *t_ns (and
 * *index if not NULL) when the slot holds exactly this hash before and after the read; false when
 * the hash is unknown or the slot was being rewritten. Lock-free; any thread. */
bool lg_sendtab_get(const lg_sendtab *tab, uint64_t hash, int64_t *t_ns, uint32_t *index);

/* ---- latency histogram ---------------------------------------------------------------------- */

/* 1 us buckets below 10 ms, 100 us buckets from 10 ms to 1 s, one bucket for the rest. */
#define LG_HIST_FINE_US 10000
#define LG_HIST_COARSE_STEP_US 100
#define LG_HIST_COARSE_END_US 1000000
#define LG_HIST_BUCKETS                                                                            \
    (LG_HIST_FINE_US + (LG_HIST_COARSE_END_US - LG_HIST_FINE_US) / LG_HIST_COARSE_STEP_US + 1)

/* One thread's histogram of latencies in microseconds. Plain data; not thread-safe. */
typedef struct {
    uint64_t count;
    uint64_t max_us;
    uint64_t buckets[LG_HIST_BUCKETS];
} lg_hist;

/* Adds one sample (negative values count as 0). */
void lg_hist_add(lg_hist *h, int64_t us);
/* Adds every sample of src to dst. */
void lg_hist_merge(lg_hist *dst, const lg_hist *src);
/* The smallest value v (the lower edge of its bucket) such that at least q (0..1] of the samples
 * are <= v's bucket; 0 for an empty histogram. */
uint64_t lg_hist_quantile(const lg_hist *h, double q);

/* Nearest-rank quantile of n sorted values (0 when n is 0). */
double lg_quantile_sorted(const double *v, size_t n, double q);

/* ---- the server process --------------------------------------------------------------------- */

/* utime + stime of process pid in microseconds, from /proc/PID/stat. Returns -1 when the file
 * cannot be read or parsed (the process is gone). */
int64_t lg_proc_cpu_us(pid_t pid);
/* VmRSS of process pid in kB, from /proc/PID/status; -1 when unavailable. */
int64_t lg_proc_rss_kb(pid_t pid);

#endif
