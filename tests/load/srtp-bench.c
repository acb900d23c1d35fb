/* Micro-benchmark (issue 4): CPU nanoseconds per SRTP protect with 1, 500 and 2000 live peers, the
 * libsrtp sender Encore had (Debian's libsrtp2, built on NSS) side by side with the OpenSSL one
 * (media/srtp_evp.c) it has now. Each measurement runs in a forked child so that heaps and NSS
 * state never mix; not a test (make check builds it, never runs it). Run it in a plain -O2 build.
 *
 *   tests/load/srtp-bench [--sessions 1,500,2000] [--payload 120] [--packets 300000] [--rounds 3]
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <srtp2/srtp.h>

#include "media/srtp.h"
#include "media/srtp_evp.h"

#define BUF 1600

/* One measurement: what a child reports to the parent. */
typedef struct {
    double rtp_ns;   /* CPU ns per RTP protect, best round */
    double rtcp_ns;  /* CPU ns per RTCP (SR-sized) protect, best round */
    double rx_ns;    /* CPU ns per inbound RTCP (RR-sized) unprotect, libsrtp in both */
    double kib_each; /* resident memory growth per peer */
} result;

typedef enum {
    SENDER_LIBSRTP, /* a peer as before: inbound and outbound libsrtp sessions */
    SENDER_OPENSSL, /* a peer now: encore_srtp (inbound libsrtp, outbound OpenSSL) */
} sender_kind;

typedef struct {
    sender_kind kind;
    srtp_t in, out;    /* SENDER_LIBSRTP */
    encore_srtp *peer; /* SENDER_OPENSSL */
    encore_srtp_keys keys;
} peer;

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static srtp_t libsrtp_session(encore_srtp_profile profile, srtp_ssrc_type_t type,
                              const uint8_t *key_salt)
{
    srtp_policy_t p;
    memset(&p, 0, sizeof p);
    if (profile == ENCORE_SRTP_AEAD_AES_128_GCM) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtcp);
    } else {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);
    }
    p.ssrc.type = type;
    p.key = (unsigned char *)key_salt;
    p.window_size = 1024;
    p.allow_repeat_tx = type == ssrc_any_outbound;
    srtp_t s = NULL;
    if (srtp_create(&s, &p) != srtp_err_status_ok) {
        fprintf(stderr, "srtp_create failed\n");
        exit(1);
    }
    return s;
}

static void peer_init(peer *p, sender_kind kind, encore_srtp_profile profile, GRand *r)
{
    encore_srtp_keys k;
    memset(&k, 0, sizeof k);
    k.profile = profile;
    if (encore_srtp_profile_lengths(profile, &k.key_len, &k.salt_len) != 0)
        exit(1);
    for (size_t i = 0; i < ENCORE_SRTP_MAX_KEY_LEN; i++) {
        k.local_key[i] = (uint8_t)g_rand_int(r);
        k.remote_key[i] = (uint8_t)g_rand_int(r);
    }
    for (size_t i = 0; i < ENCORE_SRTP_MAX_SALT_LEN; i++) {
        k.local_salt[i] = (uint8_t)g_rand_int(r);
        k.remote_salt[i] = (uint8_t)g_rand_int(r);
    }
    p->kind = kind;
    p->keys = k;
    if (kind == SENDER_OPENSSL) {
        GError *error = NULL;
        p->peer = encore_srtp_new(&k, &error);
        if (!p->peer) {
            fprintf(stderr, "encore_srtp_new: %s\n", error->message);
            exit(1);
        }
        return;
    }
    uint8_t ks[ENCORE_SRTP_MAX_KEY_LEN + ENCORE_SRTP_MAX_SALT_LEN];
    memcpy(ks, k.remote_key, k.key_len);
    memcpy(ks + k.key_len, k.remote_salt, k.salt_len);
    p->in = libsrtp_session(profile, ssrc_any_inbound, ks);
    memcpy(ks, k.local_key, k.key_len);
    memcpy(ks + k.key_len, k.local_salt, k.salt_len);
    p->out = libsrtp_session(profile, ssrc_any_outbound, ks);
}

static void peer_clear(peer *p)
{
    if (p->kind == SENDER_OPENSSL) {
        encore_srtp_free(p->peer);
        return;
    }
    srtp_dealloc(p->in);
    srtp_dealloc(p->out);
}

static int peer_protect(peer *p, uint8_t *buf, size_t *len, bool rtcp)
{
    if (p->kind == SENDER_OPENSSL)
        return rtcp ? encore_srtp_protect_rtcp(p->peer, buf, len, BUF)
                    : encore_srtp_protect_rtp(p->peer, buf, len, BUF);
    int n = (int)*len;
    srtp_err_status_t st =
        rtcp ? srtp_protect_rtcp(p->out, buf, &n) : srtp_protect(p->out, buf, &n);
    *len = (size_t)n;
    return st == srtp_err_status_ok ? 0 : -1;
}

/* An Opus-like RTP packet (12-byte header, the stage SSRC) or an RTCP SR with one SDES chunk
 * (52 bytes), as the fan-out sends them. */
static size_t make_packet(uint8_t *buf, bool rtcp, uint16_t seq, size_t payload)
{
    if (rtcp) {
        memset(buf, 0, 52);
        buf[0] = 0x80;
        buf[1] = 200;
        buf[3] = 6;
        memcpy(buf + 4, "\x5e\xed\x00\x01", 4);
        buf[28] = 0x81;
        buf[29] = 202;
        buf[31] = 5;
        return 52;
    }
    buf[0] = 0x80;
    buf[1] = 111;
    buf[2] = (uint8_t)(seq >> 8);
    buf[3] = (uint8_t)seq;
    uint32_t ts = (uint32_t)seq * 960u;
    buf[4] = (uint8_t)(ts >> 24);
    buf[5] = (uint8_t)(ts >> 16);
    buf[6] = (uint8_t)(ts >> 8);
    buf[7] = (uint8_t)ts;
    memcpy(buf + 8, "\x5e\xed\x00\x01", 4);
    for (size_t i = 0; i < payload; i++)
        buf[12 + i] = (uint8_t)(seq + i);
    return 12 + payload;
}

/* Protects packets round robin over all peers (as the fan-out sends one stage packet to every
 * listener): each round makes at least `packets` protects, or whole passes over the peers for at
 * least a second of CPU when that comes first. Best of `rounds`, minus the same loop without
 * protect. CPU ns per protect. */
static double measure(peer *peers, int n, bool rtcp, size_t payload, int packets, int rounds,
                      uint16_t *seq)
{
    uint8_t buf[BUF];
    double best = 1e30, base = 1e30;
    for (int r = -1; r < rounds; r++) { /* round -1 warms caches up and does not count */
        double t0 = cpu_ns(), t = 0;
        long done = 0;
        /* The CPU clock is a system call: read it every 4096 packets or so, not per pass. */
        int chunk = MAX(1, 4096 / n);
        while (done < packets && t < 1e9) {
            for (int c = 0; c < chunk; c++, (*seq)++, done += n)
                for (int i = 0; i < n; i++) {
                    size_t len = make_packet(buf, rtcp, *seq, payload);
                    if (peer_protect(&peers[i], buf, &len, rtcp) != 0) {
                        fprintf(stderr, "protect failed\n");
                        exit(1);
                    }
                }
            t = cpu_ns() - t0;
        }
        if (r >= 0)
            best = MIN(best, t / (double)done);
        t0 = cpu_ns();
        for (long k = 0; k < done; k += n)
            for (int i = 0; i < n; i++) {
                size_t len = make_packet(buf, rtcp, (uint16_t)(*seq + k), payload);
                __asm__ volatile("" : : "r"(buf), "r"(len) : "memory");
            }
        if (r >= 0)
            base = MIN(base, (cpu_ns() - t0) / (double)done);
    }
    return best - base;
}

/* Unprotects what the peers' remote ends send: a 32-byte RTCP receiver report each, round robin,
 * on the inbound libsrtp session (the same in both layouts; only the number of live NSS sessions
 * differs). Packets are protected beforehand (fresh SRTCP indexes for every round). */
static double measure_rx(peer *peers, int n, int packets, int rounds)
{
    int per_peer = MAX(1, MIN(4096, packets / n));
    size_t stride = 32 + ENCORE_SRTP_MAX_TRAILER;
    uint8_t *pkts = g_malloc((size_t)n * (size_t)per_peer * stride);
    size_t *lens = g_new(size_t, (size_t)n * (size_t)per_peer);
    encore_srtp_evp **senders = g_new0(encore_srtp_evp *, n);
    for (int i = 0; i < n; i++) {
        encore_srtp_evp_session_keys rtp, rtcp;
        if (encore_srtp_evp_derive(peers[i].keys.profile, peers[i].keys.remote_key,
                                   peers[i].keys.key_len, peers[i].keys.remote_salt,
                                   peers[i].keys.salt_len, &rtp, &rtcp) != 0 ||
            !(senders[i] = encore_srtp_evp_new(peers[i].keys.profile, &rtp, &rtcp)))
            exit(1);
    }
    double best = 1e30;
    for (int r = -1; r < rounds; r++) { /* round -1 warms caches up and does not count */
        for (int k = 0; k < per_peer; k++)
            for (int i = 0; i < n; i++) {
                size_t at = (size_t)k * (size_t)n + (size_t)i;
                uint8_t *b = pkts + at * stride;
                memset(b, 0, 32);
                b[0] = 0x81;
                b[1] = 201;
                b[3] = 7;
                memcpy(b + 4, "\x0b\xad\xf0\x0d", 4);
                lens[at] = 32;
                if (encore_srtp_evp_protect_rtcp(senders[i], b, &lens[at], stride) != 0)
                    exit(1);
            }
        double t0 = cpu_ns();
        for (size_t at = 0; at < (size_t)n * (size_t)per_peer; at++) {
            peer *p = &peers[at % (size_t)n];
            uint8_t *b = pkts + at * stride;
            int rc;
            if (p->kind == SENDER_OPENSSL) {
                rc = encore_srtp_unprotect_rtcp(p->peer, b, &lens[at]);
            } else {
                int len = (int)lens[at];
                rc = srtp_unprotect_rtcp(p->in, b, &len) == srtp_err_status_ok ? 0 : -1;
            }
            if (rc != 0) {
                fprintf(stderr, "unprotect failed\n");
                exit(1);
            }
        }
        if (r >= 0)
            best = MIN(best, (cpu_ns() - t0) / ((double)n * per_peer));
    }
    for (int i = 0; i < n; i++)
        encore_srtp_evp_free(senders[i]);
    g_free(senders);
    g_free(lens);
    g_free(pkts);
    return best;
}

/* The child: n peers of one kind, measured; writes a result to fd. */
static void child(int fd, sender_kind kind, encore_srtp_profile profile, int n, size_t payload,
                  int packets, int rounds)
{
    if (encore_srtp_global_init() != 0)
        exit(1);
    GRand *r = g_rand_new_with_seed(42);
    long rss0 = rss_kib();
    peer *peers = g_new0(peer, n);
    for (int i = 0; i < n; i++)
        peer_init(&peers[i], kind, profile, r);
    uint16_t seq = 1;
    uint8_t buf[BUF];
    for (int i = 0; i < n; i++) { /* every stream set up before timing */
        size_t len = make_packet(buf, false, seq, payload);
        if (peer_protect(&peers[i], buf, &len, false) != 0)
            exit(1);
    }
    seq++;
    result res;
    res.kib_each = (double)(rss_kib() - rss0) / n;
    res.rtp_ns = measure(peers, n, false, payload, packets, rounds, &seq);
    res.rtcp_ns = measure(peers, n, true, payload, packets / 4, rounds, &seq);
    res.rx_ns = measure_rx(peers, n, packets / 4, rounds);
    for (int i = 0; i < n; i++)
        peer_clear(&peers[i]);
    g_free(peers);
    g_rand_free(r);
    if (write(fd, &res, sizeof res) != (ssize_t)sizeof res)
        exit(1);
    exit(0);
}

static bool run(sender_kind kind, encore_srtp_profile profile, int n, size_t payload, int packets,
                int rounds, result *out)
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        close(fds[0]);
        child(fds[1], kind, profile, n, payload, packets, rounds);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], out, sizeof *out);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return got == (ssize_t)sizeof *out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
    char *sessions = g_strdup("1,500,2000");
    int payload = 120, packets = 300000, rounds = 3;
    GOptionEntry entries[] = {
        {"sessions", 0, 0, G_OPTION_ARG_STRING, &sessions, "live peers, comma-separated", "LIST"},
        {"payload", 0, 0, G_OPTION_ARG_INT, &payload, "RTP payload bytes (default 120)", "N"},
        {"packets", 0, 0, G_OPTION_ARG_INT, &packets, "RTP protects per round", "N"},
        {"rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "rounds, the best counts", "N"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("- SRTP protect cost, libsrtp vs OpenSSL");
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error) || payload < 0 || payload > 1400 ||
        packets < 1 || rounds < 1) {
        fprintf(stderr, "%s\n", error ? error->message : "bad arguments");
        return 2;
    }
    g_option_context_free(ctx);

    static const encore_srtp_profile profiles[] = {ENCORE_SRTP_AEAD_AES_128_GCM,
                                                   ENCORE_SRTP_AES128_CM_SHA1_80};
    char **list = g_strsplit(sessions, ",", -1);
    printf("SRTP protect, CPU ns per packet (best of %d rounds of %d RTP / %d RTCP protects, or\n"
           "whole passes over the peers for 1 s of CPU if that is less),\n"
           "RTP %d-byte payload, RTCP 52-byte SR; peers protected round robin.\n"
           "libsrtp = inbound + outbound libsrtp sessions per peer (before);\n"
           "OpenSSL = encore_srtp: inbound libsrtp, outbound OpenSSL (now).\n"
           "RTCP unprotect: a 32-byte RR on the inbound libsrtp session, both layouts.\n\n",
           rounds, packets, packets / 4, payload);
    printf("%-22s %5s | %9s %9s %6s | %9s %9s %6s | %9s %9s | %8s %8s\n", "", "", "RTP", "protect",
           "", "RTCP", "protect", "", "RTCP", "unprotect", "KiB per", "peer");
    printf("%-22s %5s | %9s %9s %6s | %9s %9s %6s | %9s %9s | %8s %8s\n", "profile", "peers",
           "libsrtp", "OpenSSL", "ratio", "libsrtp", "OpenSSL", "ratio", "before", "now", "before",
           "now");
    int rc = 0;
    for (size_t p = 0; p < G_N_ELEMENTS(profiles); p++)
        for (char **s = list; *s; s++) {
            gint64 n64 = g_ascii_strtoll(*s, NULL, 10);
            int n = n64 > 0 && n64 <= 100000 ? (int)n64 : 0;
            result a, b;
            if (n < 1 ||
                !run(SENDER_LIBSRTP, profiles[p], n, (size_t)payload, packets, rounds, &a) ||
                !run(SENDER_OPENSSL, profiles[p], n, (size_t)payload, packets, rounds, &b)) {
                fprintf(stderr, "measurement for %s failed\n", *s);
                rc = 1;
                continue;
            }
            printf("%-22s %5d | %9.0f %9.0f %5.1fx | %9.0f %9.0f %5.1fx | %9.0f %9.0f | %8.1f "
                   "%8.1f\n",
                   encore_srtp_profile_name(profiles[p]), n, a.rtp_ns, b.rtp_ns,
                   a.rtp_ns / b.rtp_ns, a.rtcp_ns, b.rtcp_ns, a.rtcp_ns / b.rtcp_ns, a.rx_ns,
                   b.rx_ns, a.kib_each, b.kib_each);
        }
    g_strfreev(list);
    g_free(sessions);
    return rc;
}
