/* Unit tests for media/stage.c: continuity across singer changes, input and output wraparound,
 * reordering, duplicates and stale packets, resynchronisation, the NACK cache, rtp_now and stats.
 * The first output sequence number and timestamp are random, so checks are relative to them. */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "media/rtp.h"
#include "media/stage.h"

#define OUT_SSRC 0xABCDEF01u

/* Writes an RTP packet (PT 111, marker clear) with `payload` bytes of payload into b. */
static size_t mk(uint8_t *b, uint32_t ssrc, uint16_t seq, uint32_t ts, size_t payload)
{
    b[0] = 0x80;
    b[1] = 111;
    encore_rtp_set_seq(b, seq);
    encore_rtp_set_timestamp(b, ts);
    encore_rtp_set_ssrc(b, ssrc);
    for (size_t i = 0; i < payload; i++)
        b[12 + i] = (uint8_t)(seq + i);
    return 12 + payload;
}

typedef struct {
    uint16_t seq;
    uint32_t ts;
    uint8_t marker;
} out_t;

/* Rewrites one packet, asserts it was forwarded and returns its output fields. */
static out_t fwd(encore_stage *st, uint32_t ssrc, uint16_t seq, uint32_t ts, int64_t now)
{
    uint8_t b[64];
    size_t n = mk(b, ssrc, seq, ts, 20);
    g_assert_cmpint(encore_stage_rewrite(st, b, n, now), ==, 0);
    encore_rtp_header h;
    g_assert_cmpint(encore_rtp_parse(b, n, &h), ==, 0);
    g_assert_cmphex(h.ssrc, ==, OUT_SSRC);
    g_assert_cmpuint(h.payload_type, ==, 111);
    g_assert_cmpuint(h.payload_len, ==, 20);
    /* The payload is untouched and the cache holds exactly the rewritten packet (unless it is a
     * late packet already older than the cache window). */
    g_assert_cmpuint(b[12], ==, (uint8_t)seq);
    const uint8_t *c;
    size_t cl;
    if ((uint16_t)(encore_stage_last_seq(st) - h.seq) < ENCORE_STAGE_CACHE_SLOTS) {
        g_assert_cmpint(encore_stage_cache_get(st, h.seq, &c, &cl), ==, 0);
        g_assert_cmpmem(c, cl, b, n);
    } else {
        g_assert_cmpint(encore_stage_cache_get(st, h.seq, &c, &cl), ==, -ENOENT);
    }
    return (out_t){h.seq, h.timestamp, h.marker};
}

/* Rewrites one packet and asserts it was refused with `err` and left unchanged. */
static void refused(encore_stage *st, uint32_t ssrc, uint16_t seq, uint32_t ts, int64_t now,
                    int err)
{
    uint8_t b[64], copy[64];
    size_t n = mk(b, ssrc, seq, ts, 20);
    memcpy(copy, b, n);
    g_assert_cmpint(encore_stage_rewrite(st, b, n, now), ==, err);
    g_assert_cmpmem(b, n, copy, n);
}

static void test_first_packets(void)
{
    g_assert_null(encore_stage_new(1, 0));
    g_assert_null(encore_stage_new(1, 1000001));
    encore_stage_free(NULL);

    encore_stage *st = encore_stage_new(OUT_SSRC, 48000);
    g_assert_false(encore_stage_started(st));
    g_assert_cmpuint(encore_stage_rtp_now(st, 123456), ==, 0);
    g_assert_cmpuint(encore_stage_source(st), ==, 0);
    /* Nobody selected yet. */
    refused(st, 111, 500, 10000, 0, -ESRCH);

    encore_stage_set_source(st, 111);
    g_assert_cmpuint(encore_stage_source(st), ==, 111);
    out_t a = fwd(st, 111, 500, 10000, 0);
    g_assert_cmpuint(a.seq, >=, 1);
    g_assert_cmpuint(a.seq, <=, 32767);
    g_assert_cmpuint(a.marker, ==, 1);
    g_assert_true(encore_stage_started(st));
    g_assert_cmpuint(encore_stage_last_seq(st), ==, a.seq);
    g_assert_cmpuint(encore_stage_last_ts(st), ==, a.ts);

    out_t b = fwd(st, 111, 501, 10960, 20000);
    g_assert_cmpuint(b.seq, ==, (uint16_t)(a.seq + 1));
    g_assert_cmpuint(b.ts, ==, a.ts + 960);
    g_assert_cmpuint(b.marker, ==, 0);

    /* Another SSRC, garbage and RTCP are refused untouched. */
    refused(st, 222, 502, 11920, 40000, -ESRCH);
    uint8_t junk[12] = {0x40};
    g_assert_cmpint(encore_stage_rewrite(st, junk, sizeof junk, 40000), ==, -EINVAL);
    g_assert_cmpint(encore_stage_rewrite(st, junk, 5, 40000), ==, -EINVAL);
    uint8_t rtcp[12] = {0x80, 0xC8, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 111};
    g_assert_cmpint(encore_stage_rewrite(st, rtcp, sizeof rtcp, 40000), ==, -EINVAL);

    /* Stats count forwarded packets and payload octets without padding. */
    uint8_t p[64];
    size_t n = mk(p, 111, 502, 11920, 20);
    p[0] |= 0x20;
    p[n - 1] = 4; /* the last 4 of the 20 bytes are padding */
    g_assert_cmpint(encore_stage_rewrite(st, p, n, 40000), ==, 0);
    uint32_t packets = 0, octets = 0;
    encore_stage_stats(st, &packets, &octets);
    g_assert_cmpuint(packets, ==, 3);
    g_assert_cmpuint(octets, ==, 20 + 20 + 16);
    encore_stage_stats(st, NULL, NULL);
    encore_stage_free(st);
}

static void test_singer_change(void)
{
    encore_stage *st = encore_stage_new(OUT_SSRC, 48000);
    encore_stage_set_source(st, 0xA);
    out_t first = fwd(st, 0xA, 1000, 5000, 0);
    out_t o = first;
    for (uint16_t i = 1; i < 5; i++) {
        o = fwd(st, 0xA, (uint16_t)(1000 + i), 5000 + 960u * i, 20000 * i);
        g_assert_cmpuint(o.seq, ==, (uint16_t)(first.seq + i));
        g_assert_cmpuint(o.ts, ==, first.ts + 960 * i);
    }

    /* B takes the stage 100 ms after A's last packet (at 80 ms): seq +1, ts +4800. */
    encore_stage_set_source(st, 0xB);
    refused(st, 0xA, 1005, 9800, 100000, -ESRCH);
    out_t b = fwd(st, 0xB, 40000, 123, 180000);
    g_assert_cmpuint(b.seq, ==, (uint16_t)(o.seq + 1));
    g_assert_cmpuint(b.ts, ==, o.ts + 4800);
    g_assert_cmpuint(b.marker, ==, 1);
    out_t b2 = fwd(st, 0xB, 40001, 123 + 960, 200000);
    g_assert_cmpuint(b2.seq, ==, (uint16_t)(b.seq + 1));
    g_assert_cmpuint(b2.ts, ==, b.ts + 960);
    g_assert_cmpuint(b2.marker, ==, 0);

    /* Selecting B again keeps its offsets: a gap of 3 stays a gap of 3. */
    encore_stage_set_source(st, 0xB);
    out_t b3 = fwd(st, 0xB, 40004, 123 + 4 * 960, 260000);
    g_assert_cmpuint(b3.seq, ==, (uint16_t)(b.seq + 4));
    g_assert_cmpuint(b3.ts, ==, b.ts + 4 * 960);
    g_assert_cmpuint(b3.marker, ==, 0);

    /* C arrives 5 ms later: the timestamp still moves at least one 20 ms frame. */
    encore_stage_set_source(st, 0xC);
    out_t c = fwd(st, 0xC, 7, 0xFFFFFFF0u, 265000);
    g_assert_cmpuint(c.seq, ==, (uint16_t)(b3.seq + 1));
    g_assert_cmpuint(c.ts, ==, b3.ts + 960);

    /* A clock that went backwards also gives one frame. */
    encore_stage_set_source(st, 0xA);
    out_t a2 = fwd(st, 0xA, 1005, 9800, 100000);
    g_assert_cmpuint(a2.seq, ==, (uint16_t)(c.seq + 1));
    g_assert_cmpuint(a2.ts, ==, c.ts + 960);
    g_assert_cmpuint(a2.marker, ==, 1);

    /* Nobody on stage: everything is refused; the next singer continues after 2 s of silence. */
    encore_stage_set_source(st, 0);
    refused(st, 0xA, 1006, 9800 + 960, 120000, -ESRCH);
    encore_stage_set_source(st, 0xD);
    out_t d = fwd(st, 0xD, 1, 1, 2100000);
    g_assert_cmpuint(d.seq, ==, (uint16_t)(a2.seq + 1));
    g_assert_cmpuint(d.ts, ==, a2.ts + 96000);
    encore_stage_free(st);
}

static void test_input_wrap(void)
{
    encore_stage *st = encore_stage_new(OUT_SSRC, 48000);
    encore_stage_set_source(st, 5);
    out_t o0 = fwd(st, 5, 65534, 0xFFFFFC40u, 0);
    out_t o1 = fwd(st, 5, 65535, 0, 20000);
    out_t o2 = fwd(st, 5, 0, 960, 40000);
    out_t o3 = fwd(st, 5, 1, 1920, 60000);
    g_assert_cmpuint(o1.seq, ==, (uint16_t)(o0.seq + 1));
    g_assert_cmpuint(o2.seq, ==, (uint16_t)(o0.seq + 2));
    g_assert_cmpuint(o3.seq, ==, (uint16_t)(o0.seq + 3));
    g_assert_cmpuint(o1.ts, ==, o0.ts + 960);
    g_assert_cmpuint(o2.ts, ==, o0.ts + 1920);
    g_assert_cmpuint(o3.ts, ==, o0.ts + 2880);
    /* A duplicate from before the input wrap is still recognised. */
    refused(st, 5, 65535, 0, 70000, -EALREADY);
    g_assert_cmpuint(encore_stage_last_seq(st), ==, o3.seq);
    encore_stage_free(st);
}

static void test_output_wrap_and_cache(void)
{
    encore_stage *st = encore_stage_new(OUT_SSRC, 48000);
    encore_stage_set_source(st, 9);
    out_t f = fwd(st, 9, 0, 0, 0);
    /* Jump the input (in two forward steps below 2^15) so that the output reaches 65534. */
    uint16_t target = (uint16_t)(65534 - f.seq);
    uint32_t ts_target = 0xFFFFFC40u - f.ts; /* output ts 2^32 - 960 */
    fwd(st, 9, (uint16_t)(target / 2), ts_target / 2, 20000);
    out_t w0 = fwd(st, 9, target, ts_target, 40000);
    out_t w1 = fwd(st, 9, (uint16_t)(target + 1), ts_target + 960, 60000);
    out_t w2 = fwd(st, 9, (uint16_t)(target + 2), ts_target + 1920, 80000);
    out_t w3 = fwd(st, 9, (uint16_t)(target + 3), ts_target + 2880, 100000);
    g_assert_cmpuint(w0.seq, ==, 65534);
    g_assert_cmpuint(w1.seq, ==, 65535);
    g_assert_cmpuint(w2.seq, ==, 0);
    g_assert_cmpuint(w3.seq, ==, 1);
    g_assert_cmphex(w0.ts, ==, 0xFFFFFC40u);
    g_assert_cmphex(w1.ts, ==, 0);
    g_assert_cmphex(w2.ts, ==, 960);
    g_assert_cmphex(w3.ts, ==, 1920);
    g_assert_cmpuint(encore_stage_last_seq(st), ==, 1);
    g_assert_cmpuint(encore_stage_last_ts(st), ==, 1920);

    /* The cache serves the packets around the wrap by output sequence number. */
    const uint16_t seqs[] = {65534, 65535, 0, 1};
    for (size_t i = 0; i < G_N_ELEMENTS(seqs); i++) {
        const uint8_t *c;
        size_t cl;
        encore_rtp_header h;
        g_assert_cmpint(encore_stage_cache_get(st, seqs[i], &c, &cl), ==, 0);
        g_assert_cmpint(encore_rtp_parse(c, cl, &h), ==, 0);
        g_assert_cmpuint(h.seq, ==, seqs[i]);
        g_assert_cmphex(h.ssrc, ==, OUT_SSRC);
    }
    const uint8_t *c;
    size_t cl;
    g_assert_cmpint(encore_stage_cache_get(st, 2, &c, &cl), ==, -ENOENT);     /* not sent yet */
    g_assert_cmpint(encore_stage_cache_get(st, 65533, &c, &cl), ==, -ENOENT); /* never sent */
    g_assert_cmpint(encore_stage_cache_get(st, f.seq, &c, &cl), ==, -ENOENT); /* too old */

    /* 600 more packets: output 2..601. Slot 511 now holds 511, no longer 65535. */
    for (uint16_t i = 0; i < 600; i++)
        fwd(st, 9, (uint16_t)(target + 4 + i), ts_target + 960u * (4 + i), 120000 + 20000 * i);
    g_assert_cmpuint(encore_stage_last_seq(st), ==, 601);
    g_assert_cmpint(encore_stage_cache_get(st, 65535, &c, &cl), ==, -ENOENT);
    g_assert_cmpint(encore_stage_cache_get(st, 1, &c, &cl), ==, -ENOENT);
    g_assert_cmpint(encore_stage_cache_get(st, 90, &c, &cl), ==, 0);
    g_assert_cmpint(encore_stage_cache_get(st, 511, &c, &cl), ==, 0);
    encore_stage_free(st);
}

static void test_reorder_and_duplicates(void)
{
    encore_stage *st = encore_stage_new(OUT_SSRC, 48000);
    encore_stage_set_source(st, 3);
    out_t o100 = fwd(st, 3, 100, 96000, 0);
    out_t o102 = fwd(st, 3, 102, 96000 + 1920, 40000);
    out_t o101 = fwd(st, 3, 101, 96000 + 960, 45000);
    g_assert_cmpuint(o102.seq, ==, (uint16_t)(o100.seq + 2));
    g_assert_cmpuint(o101.seq, ==, (uint16_t)(o100.seq + 1));
    g_assert_cmpuint(o102.ts, ==, o100.ts + 1920);
    g_assert_cmpuint(o101.ts, ==, o100.ts + 960);
    g_assert_cmpuint(o101.marker, ==, 0);
    /* The late packet does not move the stream's newest point. */
    g_assert_cmpuint(encore_stage_last_seq(st), ==, o102.seq);
    g_assert_cmpuint(encore_stage_last_ts(st), ==, o102.ts);

    /* Duplicates, and a packet from before the source's first one. */
    refused(st, 3, 101, 96000 + 960, 50000, -EALREADY);
    refused(st, 3, 102, 96000 + 1920, 50000, -EALREADY);
    refused(st, 3, 100, 96000, 50000, -EALREADY);
    refused(st, 3, 99, 96000 - 960, 50000, -EALREADY);

    /* Gaps filled late are accepted once. */
    fwd(st, 3, 105, 96000 + 5 * 960, 100000);
    out_t o104 = fwd(st, 3, 104, 96000 + 4 * 960, 101000);
    g_assert_cmpuint(o104.seq, ==, (uint16_t)(o100.seq + 4));
    refused(st, 3, 104, 96000 + 4 * 960, 102000, -EALREADY);
    fwd(st, 3, 103, 96000 + 3 * 960, 103000);

    /* Far ahead (a jump beyond the duplicate window), then the age limit. */
    out_t far = fwd(st, 3, 1600, 96000 + 1500 * 960, 200000);
    g_assert_cmpuint(far.seq, ==, (uint16_t)(o100.seq + 1500));
    refused(st, 3, 599, 0, 210000, -EALREADY);
    out_t old = fwd(st, 3, 600, 96000 + 500 * 960, 210000);
    g_assert_cmpuint(old.seq, ==, (uint16_t)(o100.seq + 500));
    refused(st, 3, 600, 0, 220000, -EALREADY);
    g_assert_cmpuint(encore_stage_last_seq(st), ==, far.seq);
    encore_stage_free(st);
}

static void test_resync(void)
{
    encore_stage *st = encore_stage_new(OUT_SSRC, 48000);
    encore_stage_set_source(st, 4);
    out_t o = fwd(st, 4, 30000, 1000, 0);
    /* The sender restarts its numbering far behind: refused until RESYNC_AFTER in a row. */
    for (uint16_t i = 0; i < ENCORE_STAGE_RESYNC_AFTER - 1; i++)
        refused(st, 4, (uint16_t)(100 + i), 7, 20000 + i, -EALREADY);
    out_t r = fwd(st, 4, 100 + ENCORE_STAGE_RESYNC_AFTER - 1, 7, 100000);
    g_assert_cmpuint(r.seq, ==, (uint16_t)(o.seq + 1));
    g_assert_cmpuint(r.ts, ==, o.ts + 4800);
    g_assert_cmpuint(r.marker, ==, 1);
    out_t r2 = fwd(st, 4, 100 + ENCORE_STAGE_RESYNC_AFTER, 7 + 960, 120000);
    g_assert_cmpuint(r2.seq, ==, (uint16_t)(o.seq + 2));
    g_assert_cmpuint(r2.ts, ==, o.ts + 4800 + 960);

    /* Duplicates never trigger a resync, and an accepted packet resets the count. */
    for (int i = 0; i < 2 * ENCORE_STAGE_RESYNC_AFTER; i++)
        refused(st, 4, 100 + ENCORE_STAGE_RESYNC_AFTER, 7 + 960, 130000, -EALREADY);
    for (uint16_t i = 0; i < ENCORE_STAGE_RESYNC_AFTER - 1; i++)
        refused(st, 4, (uint16_t)(40000 + i), 7, 140000, -EALREADY);
    fwd(st, 4, 101 + ENCORE_STAGE_RESYNC_AFTER, 7 + 1920, 140000);
    refused(st, 4, 40000, 7, 150000, -EALREADY);
    g_assert_cmpuint(encore_stage_last_seq(st), ==, (uint16_t)(o.seq + 3));
    encore_stage_free(st);
}

static void test_rtp_now(void)
{
    encore_stage *st = encore_stage_new(OUT_SSRC, 48000);
    encore_stage_set_source(st, 6);
    out_t o = fwd(st, 6, 10, 10, 1000000);
    g_assert_cmpuint(encore_stage_rtp_now(st, 1000000), ==, o.ts);
    g_assert_cmpuint(encore_stage_rtp_now(st, 2000000), ==, o.ts + 48000);
    g_assert_cmpuint(encore_stage_rtp_now(st, 1020833), ==, o.ts + 999);
    g_assert_cmpuint(encore_stage_rtp_now(st, 500000), ==, o.ts);
    /* Idle for ten days: capped at 2^31 - 1 ticks so it still reads as "later". */
    g_assert_cmpuint(encore_stage_rtp_now(st, 1000000 + 864000000000LL), ==, o.ts + 0x7FFFFFFFu);

    /* The next singer's first timestamp is the RTP time an SR would have announced. */
    int64_t t = 1000000 + 250000;
    uint32_t announced = encore_stage_rtp_now(st, t);
    encore_stage_set_source(st, 7);
    out_t n = fwd(st, 7, 0, 0, t);
    g_assert_cmpuint(n.ts, ==, announced);
    g_assert_cmpuint(n.ts, ==, o.ts + 12000);

    /* At 8 kHz, one frame is 160 ticks. */
    encore_stage *narrow = encore_stage_new(OUT_SSRC, 8000);
    encore_stage_set_source(narrow, 1);
    out_t a = fwd(narrow, 1, 1, 1, 0);
    g_assert_cmpuint(encore_stage_rtp_now(narrow, 1000000), ==, a.ts + 8000);
    encore_stage_set_source(narrow, 2);
    out_t b = fwd(narrow, 2, 1, 1, 1000);
    g_assert_cmpuint(b.ts, ==, a.ts + 160);
    encore_stage_free(narrow);
    encore_stage_free(st);
}

static void test_large_packet(void)
{
    encore_stage *st = encore_stage_new(OUT_SSRC, 48000);
    encore_stage_set_source(st, 8);
    out_t o = fwd(st, 8, 1, 1, 0);
    uint8_t *big = g_malloc(1600);
    size_t n = mk(big, 8, 2, 961, 1600 - 12);
    g_assert_cmpint(encore_stage_rewrite(st, big, n, 20000), ==, 0);
    g_assert_cmpuint(encore_stage_last_seq(st), ==, (uint16_t)(o.seq + 1));
    const uint8_t *c;
    size_t cl;
    g_assert_cmpint(encore_stage_cache_get(st, (uint16_t)(o.seq + 1), &c, &cl), ==, -ENOENT);
    g_assert_cmpint(encore_stage_cache_get(st, o.seq, &c, &cl), ==, 0);
    /* Exactly the slot size is cached. */
    n = mk(big, 8, 3, 1921, ENCORE_STAGE_CACHE_MTU - 12);
    g_assert_cmpint(encore_stage_rewrite(st, big, n, 40000), ==, 0);
    g_assert_cmpint(encore_stage_cache_get(st, (uint16_t)(o.seq + 2), &c, &cl), ==, 0);
    g_assert_cmpuint(cl, ==, ENCORE_STAGE_CACHE_MTU);
    g_assert_cmpmem(c, cl, big, n);
    g_free(big);
    encore_stage_free(st);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/stage/first-packets", test_first_packets);
    g_test_add_func("/stage/singer-change", test_singer_change);
    g_test_add_func("/stage/input-wrap", test_input_wrap);
    g_test_add_func("/stage/output-wrap-and-cache", test_output_wrap_and_cache);
    g_test_add_func("/stage/reorder-and-duplicates", test_reorder_and_duplicates);
    g_test_add_func("/stage/resync", test_resync);
    g_test_add_func("/stage/rtp-now", test_rtp_now);
    g_test_add_func("/stage/large-packet", test_large_packet);
    return g_test_run();
}
