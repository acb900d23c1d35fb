/* Measurement pieces of the load generator (see metrics.h): payload hash, the singer's lock-free
 * send-time table, latency histograms and /proc readers. The table is written by the singer
 * thread only; histograms belong to one thread each; nothing here allocates. */
#include "config.h"

#include "tests/load/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* 64-bit words mixed with a multiply-xorshift step (the tail read byte by byte): about one cycle
 * per byte, fast enough to hash every packet of thousands of listeners. */
uint64_t lg_hash_payload(const uint8_t *data, size_t len)
{
    const uint64_t m = 0x9E3779B97F4A7C15ull;
    uint64_t h = 0xCBF29CE484222325ull ^ (len * m);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, data + i, 8);
        h ^= w * m;
        h = (h << 27 | h >> 37) * 0xBF58476D1CE4E5B9ull;
    }
    uint64_t tail = 0;
    for (size_t k = 0; i < len; i++, k += 8)
        tail |= (uint64_t)data[i] << k;
    h ^= tail * m;
    h ^= h >> 31;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 29;
    return h ? h : 1;
}

/* ---- send times ----------------------------------------------------------------------------- */

/* A per-slot sequence lock: the key is cleared before the fields change and published again with
 * a release store after them, so a reader that sees the same key before and after its reads has
 * read one consistent entry. */
void lg_sendtab_put(lg_sendtab *tab, uint64_t hash, int64_t t_ns, uint32_t index)
{
    size_t set = hash & (LG_SENDTAB_SETS - 1);
    lg_sendtab_slot *s = &tab->slots[set][tab->next_way[set]++ % LG_SENDTAB_WAYS];
    atomic_store_explicit(&s->key, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&s->t_ns, t_ns, memory_order_relaxed);
    atomic_store_explicit(&s->index, index, memory_order_relaxed);
    atomic_store_explicit(&s->key, hash, memory_order_release);
}

bool lg_sendtab_get(const lg_sendtab *tab, uint64_t hash, int64_t *t_ns, uint32_t *index)
{
    size_t set = hash & (LG_SENDTAB_SETS - 1);
    for (size_t w = 0; w < LG_SENDTAB_WAYS; w++) {
        /* Only read here; the atomics are not const-qualified for the loads. */
        lg_sendtab_slot *s = (lg_sendtab_slot *)&tab->slots[set][w];
        if (atomic_load_explicit(&s->key, memory_order_acquire) != hash)
            continue;
        int64_t t = atomic_load_explicit(&s->t_ns, memory_order_relaxed);
        uint32_t idx = atomic_load_explicit(&s->index, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->key, memory_order_relaxed) != hash)
            return false;
        *t_ns = t;
        if (index)
            *index = idx;
        return true;
    }
    return false;
}

/* ---- latency histogram ---------------------------------------------------------------------- */

static size_t bucket_of(uint64_t us)
{
    if (us < LG_HIST_FINE_US)
        return (size_t)us;
    if (us < LG_HIST_COARSE_END_US)
        return LG_HIST_FINE_US + (size_t)((us - LG_HIST_FINE_US) / LG_HIST_COARSE_STEP_US);
    return LG_HIST_BUCKETS - 1;
}

static uint64_t bucket_low(size_t b)
{
    if (b < LG_HIST_FINE_US)
        return b;
    if (b < LG_HIST_BUCKETS - 1)
        return LG_HIST_FINE_US + (uint64_t)(b - LG_HIST_FINE_US) * LG_HIST_COARSE_STEP_US;
    return LG_HIST_COARSE_END_US;
}

void lg_hist_add(lg_hist *h, int64_t us)
{
    uint64_t v = us < 0 ? 0 : (uint64_t)us;
    h->buckets[bucket_of(v)]++;
    h->count++;
    if (v > h->max_us)
        h->max_us = v;
}

void lg_hist_merge(lg_hist *dst, const lg_hist *src)
{
    for (size_t i = 0; i < LG_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
}

uint64_t lg_hist_quantile(const lg_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank)
            return i == LG_HIST_BUCKETS - 1 ? h->max_us : bucket_low(i);
    }
    return h->max_us;
}

double lg_quantile_sorted(const double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank == 0)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

/* ---- the server process --------------------------------------------------------------------- */

int64_t lg_proc_cpu_us(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may contain spaces and parentheses: fields resume after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    /* After ')' come field 3 (state) .. field 15 (stime): skip 11, read utime and stime. */
    unsigned long long ut = 0, st = 0;
    if (sscanf(p, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    return (int64_t)((ut + st) * (1000000ull / (unsigned long long)hz));
}

int64_t lg_proc_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    int64_t kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            char *end = NULL;
            long long v = strtoll(line + 6, &end, 10);
            if (end != line + 6)
                kb = v;
            break;
        }
    }
    fclose(f);
    return kb;
}
