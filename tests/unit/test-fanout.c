/* Unit tests for media/fanout: payload-type mapping singer -> stage -> listener, RED and its
 * primary block, with exact bytes. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "media/fanout.h"
#include "media/rtp.h"

/* An RTP header (12 bytes, no CSRC/extension) with payload type `pt`, seq 0x1234, ts 0x01020304,
 * ssrc 0xaabbccdd. */
static size_t make_header(uint8_t *buf, uint8_t pt)
{
    const uint8_t h[12] = {0x80, pt, 0x12, 0x34, 0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb, 0xcc, 0xdd};
    memcpy(buf, h, sizeof h);
    return sizeof h;
}

/* A RED payload: one redundant block (PT `inner`, ts offset 960, 3 bytes "RRR") then the primary
 * block (PT `inner`, 4 bytes "PPPP"). */
static size_t make_red(uint8_t *buf, uint8_t outer, uint8_t inner)
{
    size_t n = make_header(buf, outer);
    /* F=1|PT, ts offset 14 bits = 960, length 10 bits = 3 */
    uint32_t word = (960u << 10) | 3u;
    buf[n++] = (uint8_t)(0x80 | inner);
    buf[n++] = (uint8_t)(word >> 16);
    buf[n++] = (uint8_t)(word >> 8);
    buf[n++] = (uint8_t)word;
    buf[n++] = inner; /* F=0|PT: the primary */
    memcpy(buf + n, "RRR", 3);
    n += 3;
    memcpy(buf + n, "PPPP", 4);
    n += 4;
    return n;
}

static void test_opus_to_stage_and_back(void)
{
    uint8_t pkt[64];
    size_t n = make_header(pkt, 96);
    memcpy(pkt + n, "opus", 4);
    n += 4;
    g_assert_cmpint(encore_fanout_to_stage(pkt, n, 96, -1), ==, 0);
    g_assert_cmpint(pkt[1] & 0x7f, ==, ENCORE_STAGE_PT_OPUS);
    uint8_t out[64];
    size_t m = encore_fanout_listener_copy(pkt, n, NULL, 0, 109, -1, out, sizeof out);
    g_assert_cmpuint(m, ==, n);
    g_assert_cmpint(out[1], ==, 109);
    g_assert_cmpmem(out + 2, n - 2, pkt + 2, n - 2);
    /* Marker bit survives the payload-type change. */
    pkt[1] |= 0x80;
    m = encore_fanout_listener_copy(pkt, n, NULL, 0, 111, -1, out, sizeof out);
    g_assert_cmpint(out[1], ==, 0x80 | 111);
}

static void test_other_payload_types_refused(void)
{
    uint8_t pkt[64];
    size_t n = make_header(pkt, 13); /* comfort noise */
    pkt[n++] = 0;
    g_assert_cmpint(encore_fanout_to_stage(pkt, n, 111, 63), ==, -EPROTONOSUPPORT);
    g_assert_cmpint(encore_fanout_to_stage(pkt, 5, 111, 63), ==, -EINVAL);
}

static void test_red_mapped_and_passed(void)
{
    uint8_t pkt[64];
    size_t n = make_red(pkt, 100, 96); /* singer: RED 100 wrapping Opus 96 */
    g_assert_cmpint(encore_fanout_to_stage(pkt, n, 96, 100), ==, 0);
    g_assert_cmpint(pkt[1] & 0x7f, ==, ENCORE_STAGE_PT_RED);
    g_assert_cmpint(pkt[12], ==, 0x80 | ENCORE_STAGE_PT_OPUS);
    g_assert_cmpint(pkt[16], ==, ENCORE_STAGE_PT_OPUS);

    /* A listener with RED 63 / Opus 111 (Chromium) gets the stage packet as it is. */
    uint8_t out[64];
    size_t m = encore_fanout_listener_copy(pkt, n, NULL, 0, 111, 63, out, sizeof out);
    g_assert_cmpuint(m, ==, n);
    g_assert_cmpmem(out, m, pkt, n);

    /* A listener with RED 120 / Opus 97 gets both types mapped. */
    m = encore_fanout_listener_copy(pkt, n, NULL, 0, 97, 120, out, sizeof out);
    g_assert_cmpint(out[1], ==, 120);
    g_assert_cmpint(out[12], ==, 0x80 | 97);
    g_assert_cmpint(out[16], ==, 97);
    g_assert_cmpmem(out + 17, 7, "RRRPPPP", 7);
}

static void test_red_primary_for_plain_listeners(void)
{
    uint8_t pkt[64];
    size_t n = make_red(pkt, ENCORE_STAGE_PT_RED, ENCORE_STAGE_PT_OPUS);
    uint8_t primary[64];
    size_t pn = encore_fanout_red_to_primary(pkt, n, primary, sizeof primary);
    g_assert_cmpuint(pn, ==, 12 + 4);
    g_assert_cmpint(primary[1], ==, ENCORE_STAGE_PT_OPUS);
    g_assert_cmpmem(primary + 12, 4, "PPPP", 4);
    g_assert_cmpmem(primary + 2, 10, pkt + 2, 10); /* seq, ts, ssrc kept */
    /* Too small a buffer: nothing. */
    g_assert_cmpuint(encore_fanout_red_to_primary(pkt, n, primary, 15), ==, 0);

    uint8_t out[64];
    size_t m = encore_fanout_listener_copy(pkt, n, primary, pn, 96, -1, out, sizeof out);
    g_assert_cmpuint(m, ==, pn);
    g_assert_cmpint(out[1], ==, 96);
    g_assert_cmpmem(out + 12, 4, "PPPP", 4);
    /* Without the primary form a plain listener gets nothing. */
    g_assert_cmpuint(encore_fanout_listener_copy(pkt, n, NULL, 0, 96, -1, out, sizeof out), ==, 0);
}

static void test_red_truncated(void)
{
    uint8_t pkt[64];
    size_t n = make_red(pkt, ENCORE_STAGE_PT_RED, ENCORE_STAGE_PT_OPUS);
    uint8_t out[64];
    for (size_t cut = 0; cut < n - 4; cut++) /* the primary must have at least one byte */
        g_assert_cmpuint(encore_fanout_red_to_primary(pkt, cut, out, sizeof out), ==, 0);
}

static void test_capacity(void)
{
    uint8_t pkt[64];
    size_t n = make_header(pkt, ENCORE_STAGE_PT_OPUS);
    memcpy(pkt + n, "opus", 4);
    n += 4;
    uint8_t out[64];
    g_assert_cmpuint(encore_fanout_listener_copy(pkt, n, NULL, 0, 111, -1, out, n - 1), ==, 0);
    g_assert_cmpuint(encore_fanout_listener_copy(pkt, 11, NULL, 0, 111, -1, out, sizeof out), ==,
                     0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/fanout/opus", test_opus_to_stage_and_back);
    g_test_add_func("/fanout/other-pts", test_other_payload_types_refused);
    g_test_add_func("/fanout/red-mapped", test_red_mapped_and_passed);
    g_test_add_func("/fanout/red-primary", test_red_primary_for_plain_listeners);
    g_test_add_func("/fanout/red-truncated", test_red_truncated);
    g_test_add_func("/fanout/capacity", test_capacity);
    return g_test_run();
}
