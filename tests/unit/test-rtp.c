/* Unit tests for media/rtp.c: RTP parsing (CSRCs, one- and two-byte extensions, padding,
 * truncation), demultiplexing, in-place writers, extension strip/find/add, RED and NTP. */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "media/rtp.h"

/* V=2, X=1, CC=2, M=1 PT=111, seq 0x1234, ts 0xDEADBEEF, ssrc 0x01020304, CSRCs 0x0A0B0C0D and
 * 0x11121314, one-byte extension of 2 words: id 1 len 1 (0xAA), padding, id 2 len 3 (1 2 3),
 * then 4 payload bytes. */
/* clang-format off */
static const uint8_t pkt_csrc_ext[] = {
    0x92, 0xEF, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04,
    0x0A, 0x0B, 0x0C, 0x0D, 0x11, 0x12, 0x13, 0x14,
    0xBE, 0xDE, 0x00, 0x02,
    0x10, 0xAA, 0x00, 0x22, 0x01, 0x02, 0x03, 0x00,
    0xF1, 0xF2, 0xF3, 0xF4,
};
/* clang-format on */

static void test_parse_plain(void)
{
    /* clang-format off */
    const uint8_t p[] = {0x80, 0x6F, 0xFF, 0xFE, 0x00, 0x00, 0x03, 0xC0, 0xCA, 0xFE, 0xBA, 0xBE,
                         0x01, 0x02, 0x03};
    /* clang-format on */
    encore_rtp_header h;
    g_assert_cmpint(encore_rtp_parse(p, sizeof p, &h), ==, 0);
    g_assert_cmpuint(h.version, ==, 2);
    g_assert_cmpuint(h.padding, ==, 0);
    g_assert_cmpuint(h.extension, ==, 0);
    g_assert_cmpuint(h.marker, ==, 0);
    g_assert_cmpuint(h.payload_type, ==, 111);
    g_assert_cmpuint(h.csrc_count, ==, 0);
    g_assert_cmpuint(h.seq, ==, 65534);
    g_assert_cmpuint(h.timestamp, ==, 960);
    g_assert_cmpuint(h.ssrc, ==, 0xCAFEBABE);
    g_assert_cmpuint(h.header_len, ==, 12);
    g_assert_cmpuint(h.payload_offset, ==, 12);
    g_assert_cmpuint(h.payload_len, ==, 3);
    g_assert_cmpuint(h.ext_profile, ==, 0);
    g_assert_cmpuint(h.ext_offset, ==, 0);
    g_assert_cmpuint(h.ext_len, ==, 0);

    /* A header with no payload is valid. */
    g_assert_cmpint(encore_rtp_parse(p, 12, &h), ==, 0);
    g_assert_cmpuint(h.payload_len, ==, 0);
}

static void test_parse_csrc_ext(void)
{
    encore_rtp_header h;
    g_assert_cmpint(encore_rtp_parse(pkt_csrc_ext, sizeof pkt_csrc_ext, &h), ==, 0);
    g_assert_cmpuint(h.marker, ==, 1);
    g_assert_cmpuint(h.payload_type, ==, 111);
    g_assert_cmpuint(h.csrc_count, ==, 2);
    g_assert_cmpuint(h.seq, ==, 0x1234);
    g_assert_cmpuint(h.timestamp, ==, 0xDEADBEEF);
    g_assert_cmpuint(h.ssrc, ==, 0x01020304);
    g_assert_cmpuint(h.extension, ==, 1);
    g_assert_cmpuint(h.ext_profile, ==, 0xBEDE);
    g_assert_cmpuint(h.ext_offset, ==, 24);
    g_assert_cmpuint(h.ext_len, ==, 8);
    g_assert_cmpuint(h.header_len, ==, 32);
    g_assert_cmpuint(h.payload_offset, ==, 32);
    g_assert_cmpuint(h.payload_len, ==, 4);
    g_assert_cmpmem(pkt_csrc_ext + h.payload_offset, h.payload_len, "\xF1\xF2\xF3\xF4", 4);

    const uint8_t *d;
    size_t dl;
    g_assert_cmpint(encore_rtp_ext_find(pkt_csrc_ext, &h, 1, &d, &dl), ==, 0);
    g_assert_cmpuint(dl, ==, 1);
    g_assert_cmpuint(d[0], ==, 0xAA);
    g_assert_true(d == pkt_csrc_ext + 25);
    g_assert_cmpint(encore_rtp_ext_find(pkt_csrc_ext, &h, 2, &d, &dl), ==, 0);
    g_assert_cmpmem(d, dl, "\x01\x02\x03", 3);
    g_assert_cmpint(encore_rtp_ext_find(pkt_csrc_ext, &h, 3, &d, &dl), ==, -ENOENT);
    g_assert_cmpint(encore_rtp_ext_find(pkt_csrc_ext, &h, 15, &d, &dl), ==, -ENOENT);
    g_assert_cmpint(encore_rtp_ext_find(pkt_csrc_ext, &h, 0, &d, &dl), ==, -EINVAL);
}

static void test_parse_twobyte(void)
{
    /* Profile 0x1001 (appbits 1), 3 words: id 5 len 0, a padding byte, id 7 len 3 (9 8 7),
     * id 200 len 2 (AB CD); then a 1-byte payload. */
    /* clang-format off */
    const uint8_t p[] = {0x90, 0x6F, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03,
                         0x10, 0x01, 0x00, 0x03,
                         0x05, 0x00, 0x00, 0x07, 0x03, 0x09, 0x08, 0x07,
                         0xC8, 0x02, 0xAB, 0xCD,
                         0x55};
    /* clang-format on */
    encore_rtp_header h;
    g_assert_cmpint(encore_rtp_parse(p, sizeof p, &h), ==, 0);
    g_assert_cmpuint(h.ext_profile, ==, 0x1001);
    g_assert_cmpuint(h.ext_offset, ==, 16);
    g_assert_cmpuint(h.ext_len, ==, 12);
    g_assert_cmpuint(h.header_len, ==, 28);
    g_assert_cmpuint(h.payload_len, ==, 1);

    const uint8_t *d;
    size_t dl = 99;
    g_assert_cmpint(encore_rtp_ext_find(p, &h, 5, &d, &dl), ==, 0);
    g_assert_cmpuint(dl, ==, 0);
    g_assert_true(d == p + 18);
    g_assert_cmpint(encore_rtp_ext_find(p, &h, 7, &d, &dl), ==, 0);
    g_assert_cmpmem(d, dl, "\x09\x08\x07", 3);
    g_assert_cmpint(encore_rtp_ext_find(p, &h, 200, &d, &dl), ==, 0);
    g_assert_cmpmem(d, dl, "\xAB\xCD", 2);
    g_assert_cmpint(encore_rtp_ext_find(p, &h, 6, &d, &dl), ==, -ENOENT);
}

static void test_parse_padding(void)
{
    /* P=1: payload 5 bytes, then 3 padding bytes (00 00 03). */
    /* clang-format off */
    const uint8_t p[] = {0xA0, 0x6F, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03,
                         0x01, 0x02, 0x03, 0x04, 0x05, 0x00, 0x00, 0x03};
    /* clang-format on */
    encore_rtp_header h;
    g_assert_cmpint(encore_rtp_parse(p, sizeof p, &h), ==, 0);
    g_assert_cmpuint(h.padding, ==, 1);
    g_assert_cmpuint(h.payload_len, ==, 5);

    /* Padding that fills everything after the header leaves an empty payload. */
    /* clang-format off */
    const uint8_t all[] = {0xA0, 0x6F, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03,
                           0x00, 0x00, 0x00, 0x04};
    /* clang-format on */
    g_assert_cmpint(encore_rtp_parse(all, sizeof all, &h), ==, 0);
    g_assert_cmpuint(h.payload_len, ==, 0);

    uint8_t bad[sizeof all];
    memcpy(bad, all, sizeof all);
    bad[15] = 0; /* a padding count of 0 */
    g_assert_cmpint(encore_rtp_parse(bad, sizeof bad, &h), ==, -EINVAL);
    bad[15] = 5; /* more padding than bytes after the header */
    g_assert_cmpint(encore_rtp_parse(bad, sizeof bad, &h), ==, -EINVAL);
    /* P set but nothing after the header. */
    g_assert_cmpint(encore_rtp_parse(all, 12, &h), ==, -EINVAL);
}

static void test_parse_rejects(void)
{
    encore_rtp_header h;
    /* Every truncation of a packet with CSRCs, an extension and padding fails: the payload bytes
     * are 0xEE, so a truncated "padding count" is always too large. */
    uint8_t p[sizeof pkt_csrc_ext + 4];
    memcpy(p, pkt_csrc_ext, 32);
    p[0] |= 0x20;
    memset(p + 32, 0xEE, 6);
    p[38] = 0x00;
    p[39] = 0x02;
    g_assert_cmpint(encore_rtp_parse(p, sizeof p, &h), ==, 0);
    g_assert_cmpuint(h.payload_len, ==, 6);
    for (size_t n = 0; n < sizeof p; n++)
        g_assert_cmpint(encore_rtp_parse(p, n, &h), ==, -EINVAL);

    /* Truncations of the unpadded packet fail up to the end of the extension. */
    for (size_t n = 0; n < 32; n++)
        g_assert_cmpint(encore_rtp_parse(pkt_csrc_ext, n, &h), ==, -EINVAL);
    g_assert_cmpint(encore_rtp_parse(pkt_csrc_ext, 32, &h), ==, 0);

    /* Versions other than 2. */
    uint8_t v[12] = {0x80};
    for (int ver = 0; ver < 4; ver++) {
        v[0] = (uint8_t)(ver << 6);
        g_assert_cmpint(encore_rtp_parse(v, sizeof v, &h), ==, ver == 2 ? 0 : -EINVAL);
    }
    /* Extension length beyond the packet; CSRC count beyond the packet. */
    uint8_t x[16] = {0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0x00, 0x01};
    g_assert_cmpint(encore_rtp_parse(x, sizeof x, &h), ==, -EINVAL);
    x[15] = 0;
    g_assert_cmpint(encore_rtp_parse(x, sizeof x, &h), ==, 0);
    g_assert_cmpuint(h.ext_len, ==, 0);
    g_assert_cmpuint(h.header_len, ==, 16);
    uint8_t c[16] = {0x82};
    g_assert_cmpint(encore_rtp_parse(c, sizeof c, &h), ==, -EINVAL);
    c[0] = 0x81;
    g_assert_cmpint(encore_rtp_parse(c, sizeof c, &h), ==, 0);
    g_assert_cmpint(encore_rtp_parse(NULL, 12, &h), ==, -EINVAL);
}

static void test_demux(void)
{
    const uint8_t sr[] = {0x80, 0xC8, 0x00, 0x06};
    const uint8_t rr[] = {0x81, 0xC9, 0x00, 0x07};
    const uint8_t opus[] = {0x80, 0x6F, 0x00, 0x01};
    const uint8_t opus_m[] = {0x80, 0xEF, 0x00, 0x01};
    const uint8_t pt96m[] = {0x80, 0xE0, 0x00, 0x01};
    const uint8_t pt223[] = {0x80, 0xDF, 0x00, 0x01};
    const uint8_t pt191[] = {0x80, 0xBF, 0x00, 0x01};
    g_assert_true(encore_rtp_is_rtcp(sr, 4));
    g_assert_true(encore_rtp_is_rtcp(rr, 4));
    g_assert_false(encore_rtp_is_rtcp(sr, 3));
    g_assert_false(encore_rtp_is_rtcp(opus, 4));
    g_assert_false(encore_rtp_is_rtcp(opus_m, 4));
    g_assert_false(encore_rtp_is_rtcp(pt96m, 4));
    g_assert_true(encore_rtp_is_rtcp(pt223, 4));
    g_assert_false(encore_rtp_is_rtcp(pt191, 4));

    /* clang-format off */
    const uint8_t stun[] = {0x00, 0x01}, dtls[] = {0x16, 0xFE}, lo[] = {0x80}, hi[] = {0xBF},
                  over[] = {0xC0}, below[] = {0x7F};
    /* clang-format on */
    g_assert_false(encore_rtp_looks_like_rtp(stun, 2));
    g_assert_false(encore_rtp_looks_like_rtp(dtls, 2));
    g_assert_true(encore_rtp_looks_like_rtp(lo, 1));
    g_assert_true(encore_rtp_looks_like_rtp(hi, 1));
    g_assert_false(encore_rtp_looks_like_rtp(over, 1));
    g_assert_false(encore_rtp_looks_like_rtp(below, 1));
    g_assert_false(encore_rtp_looks_like_rtp(lo, 0));
}

static void test_writers(void)
{
    uint8_t p[sizeof pkt_csrc_ext];
    memcpy(p, pkt_csrc_ext, sizeof p);
    encore_rtp_set_seq(p, 0xFEDC);
    encore_rtp_set_timestamp(p, 0x89ABCDEF);
    encore_rtp_set_ssrc(p, 0x76543210);
    encore_rtp_set_payload_type(p, 63);
    encore_rtp_header h;
    g_assert_cmpint(encore_rtp_parse(p, sizeof p, &h), ==, 0);
    g_assert_cmpuint(h.seq, ==, 0xFEDC);
    g_assert_cmpuint(h.timestamp, ==, 0x89ABCDEF);
    g_assert_cmpuint(h.ssrc, ==, 0x76543210);
    g_assert_cmpuint(h.payload_type, ==, 63);
    g_assert_cmpuint(h.marker, ==, 1);
    encore_rtp_set_marker(p, false);
    g_assert_cmpuint(p[1], ==, 63);
    encore_rtp_set_marker(p, true);
    g_assert_cmpuint(p[1], ==, 0x80 | 63);
    /* Everything after the fixed header is untouched. */
    g_assert_cmpmem(p + 12, sizeof p - 12, pkt_csrc_ext + 12, sizeof p - 12);
}

static void test_strip_extension(void)
{
    /* The packet with CSRCs and extension, plus 4 bytes of padding. */
    uint8_t p[sizeof pkt_csrc_ext + 4];
    memcpy(p, pkt_csrc_ext, sizeof pkt_csrc_ext);
    p[0] |= 0x20;
    memcpy(p + sizeof pkt_csrc_ext, "\x00\x00\x00\x04", 4);
    size_t n = encore_rtp_strip_extension(p, sizeof p);
    g_assert_cmpuint(n, ==, sizeof p - 12);
    /* clang-format off */
    const uint8_t want[] = {0xA2, 0xEF, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04,
                            0x0A, 0x0B, 0x0C, 0x0D, 0x11, 0x12, 0x13, 0x14,
                            0xF1, 0xF2, 0xF3, 0xF4, 0x00, 0x00, 0x00, 0x04};
    /* clang-format on */
    g_assert_cmpmem(p, n, want, sizeof want);
    encore_rtp_header h;
    g_assert_cmpint(encore_rtp_parse(p, n, &h), ==, 0);
    g_assert_cmpuint(h.extension, ==, 0);
    g_assert_cmpuint(h.header_len, ==, 20);
    g_assert_cmpuint(h.payload_len, ==, 4);

    /* No extension: unchanged. Not RTP: unchanged. */
    g_assert_cmpuint(encore_rtp_strip_extension(p, n), ==, n);
    g_assert_cmpmem(p, n, want, sizeof want);
    uint8_t junk[8] = {0x90};
    g_assert_cmpuint(encore_rtp_strip_extension(junk, sizeof junk), ==, sizeof junk);
    g_assert_cmpuint(junk[0], ==, 0x90);
}

static void test_ext_find_malformed(void)
{
    /* clang-format off */
    uint8_t p[20] = {0x90, 0x6F, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xBE, 0xDE, 0x00, 0x01,
                     0x10, 0xAA, 0x23, 0x00};
    /* clang-format on */
    encore_rtp_header h;
    const uint8_t *d;
    size_t dl;
    g_assert_cmpint(encore_rtp_parse(p, sizeof p, &h), ==, 0);
    g_assert_cmpint(encore_rtp_ext_find(p, &h, 1, &d, &dl), ==, 0);
    /* id 2 claims 4 bytes but only 1 is left in the block. */
    g_assert_cmpint(encore_rtp_ext_find(p, &h, 2, &d, &dl), ==, -EINVAL);
    g_assert_cmpint(encore_rtp_ext_find(p, &h, 3, &d, &dl), ==, -EINVAL);
    /* An id-15 element ends the block: nothing after it is found. */
    p[18] = 0xF0;
    p[19] = 0x31;
    g_assert_cmpint(encore_rtp_ext_find(p, &h, 3, &d, &dl), ==, -ENOENT);
    /* An unknown profile. */
    p[12] = 0x12;
    g_assert_cmpint(encore_rtp_parse(p, sizeof p, &h), ==, 0);
    g_assert_cmpint(encore_rtp_ext_find(p, &h, 1, &d, &dl), ==, -EINVAL);
    /* A two-byte element whose length runs past the block. */
    p[12] = 0x10;
    p[13] = 0x00;
    p[16] = 0x04;
    p[17] = 0x03;
    g_assert_cmpint(encore_rtp_parse(p, sizeof p, &h), ==, 0);
    g_assert_cmpint(encore_rtp_ext_find(p, &h, 4, &d, &dl), ==, -EINVAL);
    /* No extension at all. */
    const uint8_t plain[12] = {0x80};
    g_assert_cmpint(encore_rtp_parse(plain, sizeof plain, &h), ==, 0);
    g_assert_cmpint(encore_rtp_ext_find(plain, &h, 1, &d, &dl), ==, -ENOENT);
}

static void test_add_ext(void)
{
    uint8_t buf[64];
    /* 12-byte header, 3 payload bytes, 1 padding byte. */
    /* clang-format off */
    const uint8_t orig[] = {0xA0, 0x6F, 0x00, 0x07, 0x00, 0x00, 0x03, 0xC0, 0x00, 0x00, 0x00, 0x09,
                            0x61, 0x62, 0x63, 0x01};
    /* clang-format on */
    memcpy(buf, orig, sizeof orig);
    size_t n = 0;
    g_assert_cmpint(encore_rtp_add_ext_onebyte(buf, sizeof orig, sizeof buf, 3,
                                               (const uint8_t *)"\x01\x02\x03", 3, &n),
                    ==, 0);
    /* clang-format off */
    const uint8_t want1[] = {0xB0, 0x6F, 0x00, 0x07, 0x00, 0x00, 0x03, 0xC0, 0x00, 0x00, 0x00, 0x09,
                             0xBE, 0xDE, 0x00, 0x01, 0x32, 0x01, 0x02, 0x03,
                             0x61, 0x62, 0x63, 0x01};
    /* clang-format on */
    g_assert_cmpmem(buf, n, want1, sizeof want1);

    /* A second element does not fit the block's (absent) padding: the block grows by one word. */
    size_t n2 = 0;
    g_assert_cmpint(
        encore_rtp_add_ext_onebyte(buf, n, sizeof buf, 4, (const uint8_t *)"\xAA\xBB", 2, &n2), ==,
        0);
    /* clang-format off */
    const uint8_t want2[] = {0xB0, 0x6F, 0x00, 0x07, 0x00, 0x00, 0x03, 0xC0, 0x00, 0x00, 0x00, 0x09,
                             0xBE, 0xDE, 0x00, 0x02, 0x32, 0x01, 0x02, 0x03, 0x41, 0xAA, 0xBB, 0x00,
                             0x61, 0x62, 0x63, 0x01};
    /* clang-format on */
    g_assert_cmpmem(buf, n2, want2, sizeof want2);
    encore_rtp_header h;
    const uint8_t *d;
    size_t dl;
    g_assert_cmpint(encore_rtp_parse(buf, n2, &h), ==, 0);
    g_assert_cmpuint(h.payload_len, ==, 3);
    g_assert_cmpint(encore_rtp_ext_find(buf, &h, 4, &d, &dl), ==, 0);
    g_assert_cmpmem(d, dl, "\xAA\xBB", 2);

    /* The third element (2 bytes) does not fit the one padding byte left, so the block grows
     * again; the fourth then fits into the padding that growth left. */
    size_t n3 = 0, n4 = 0;
    g_assert_cmpint(
        encore_rtp_add_ext_onebyte(buf, n2, sizeof buf, 5, (const uint8_t *)"\x55", 1, &n3), ==, 0);
    g_assert_cmpuint(n3, ==, n2 + 4);
    g_assert_cmpint(
        encore_rtp_add_ext_onebyte(buf, n3, sizeof buf, 6, (const uint8_t *)"\x66", 1, &n4), ==, 0);
    g_assert_cmpuint(n4, ==, n3);
    /* clang-format off */
    const uint8_t want4[] = {0xB0, 0x6F, 0x00, 0x07, 0x00, 0x00, 0x03, 0xC0, 0x00, 0x00, 0x00, 0x09,
                             0xBE, 0xDE, 0x00, 0x03, 0x32, 0x01, 0x02, 0x03, 0x41, 0xAA, 0xBB, 0x50,
                             0x55, 0x60, 0x66, 0x00, 0x61, 0x62, 0x63, 0x01};
    /* clang-format on */
    g_assert_cmpmem(buf, n4, want4, sizeof want4);

    /* Errors leave the buffer unchanged. */
    uint8_t before[64];
    memcpy(before, buf, sizeof buf);
    g_assert_cmpint(
        encore_rtp_add_ext_onebyte(buf, n4, sizeof buf, 3, (const uint8_t *)"\x01", 1, &n), ==,
        -EEXIST);
    g_assert_cmpint(
        encore_rtp_add_ext_onebyte(buf, n4, n4 + 3, 7, (const uint8_t *)"\x01\x02", 2, &n), ==,
        -ENOSPC);
    g_assert_cmpint(
        encore_rtp_add_ext_onebyte(buf, n4, sizeof buf, 15, (const uint8_t *)"\x01", 1, &n), ==,
        -EINVAL);
    g_assert_cmpint(
        encore_rtp_add_ext_onebyte(buf, n4, sizeof buf, 0, (const uint8_t *)"\x01", 1, &n), ==,
        -EINVAL);
    uint8_t big[17] = {0};
    g_assert_cmpint(encore_rtp_add_ext_onebyte(buf, n4, sizeof buf, 7, big, 17, &n), ==, -EINVAL);
    g_assert_cmpint(encore_rtp_add_ext_onebyte(buf, n4, sizeof buf, 7, big, 0, &n), ==, -EINVAL);
    g_assert_cmpint(encore_rtp_add_ext_onebyte(buf, 11, sizeof buf, 7, big, 1, &n), ==, -EINVAL);
    g_assert_cmpmem(buf, sizeof buf, before, sizeof before);

    /* 16 bytes of data at the cap exactly. */
    memcpy(buf, orig, sizeof orig);
    g_assert_cmpint(
        encore_rtp_add_ext_onebyte(buf, sizeof orig, sizeof orig + 4 + 20, 14, big, 16, &n), ==, 0);
    g_assert_cmpuint(n, ==, sizeof orig + 24);
    g_assert_cmpuint(buf[16], ==, 0xEF);

    /* A packet with a two-byte extension. */
    uint8_t two[20] = {0x90, 0x6F, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0x10, 0x00, 0x00, 0x01};
    g_assert_cmpint(encore_rtp_add_ext_onebyte(two, 20, 20, 1, big, 1, &n), ==, -ENOTSUP);
}

static void test_red(void)
{
    /* One redundant block (PT 111, ts offset 960, 5 bytes) and the primary (PT 111, 7 bytes). */
    const uint8_t red[] = {0xEF, 0x0F, 0x00, 0x05, 0x6F, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16};
    uint8_t pt = 0;
    size_t off = 0, plen = 0;
    g_assert_cmpint(encore_red_primary(red, sizeof red, &pt, &off, &plen), ==, 0);
    g_assert_cmpuint(pt, ==, 111);
    g_assert_cmpuint(off, ==, 10);
    g_assert_cmpuint(plen, ==, 7);

    /* Two redundant blocks with a 10-bit length (0x101 = 257 bytes) in the second. */
    uint8_t two[4 + 4 + 1 + 2 + 257 + 3];
    memset(two, 0, sizeof two);
    const uint8_t hdr[] = {0xEF, 0x1E, 0x00, 0x02, 0xEF, 0x0F, 0x01, 0x01, 0x6E};
    memcpy(two, hdr, sizeof hdr);
    g_assert_cmpint(encore_red_primary(two, sizeof two, &pt, &off, &plen), ==, 0);
    g_assert_cmpuint(pt, ==, 110);
    g_assert_cmpuint(off, ==, 9 + 2 + 257);
    g_assert_cmpuint(plen, ==, 3);

    /* Only the primary block. An empty primary is allowed. */
    const uint8_t single[] = {0x6F, 0xAA, 0xBB};
    g_assert_cmpint(encore_red_primary(single, sizeof single, &pt, &off, &plen), ==, 0);
    g_assert_cmpuint(off, ==, 1);
    g_assert_cmpuint(plen, ==, 2);
    g_assert_cmpint(encore_red_primary(single, 1, &pt, &off, &plen), ==, 0);
    g_assert_cmpuint(plen, ==, 0);

    /* Truncated headers, missing final header, redundant data past the end. */
    g_assert_cmpint(encore_red_primary(red, 0, &pt, &off, &plen), ==, -EINVAL);
    g_assert_cmpint(encore_red_primary(red, 3, &pt, &off, &plen), ==, -EINVAL);
    g_assert_cmpint(encore_red_primary(red, 4, &pt, &off, &plen), ==, -EINVAL);
    g_assert_cmpint(encore_red_primary(red, 9, &pt, &off, &plen), ==, -EINVAL);
    g_assert_cmpint(encore_red_primary(red, 10, &pt, &off, &plen), ==, 0);
    g_assert_cmpuint(plen, ==, 0);
}

static void test_ntp(void)
{
    g_assert_cmphex(encore_ntp_from_unix_us(0), ==, 0x83AA7E8000000000ULL);
    g_assert_cmphex(encore_ntp_from_unix_us(500000), ==, 0x83AA7E8080000000ULL);
    g_assert_cmphex(encore_ntp_from_unix_us(1), ==, 0x83AA7E80000010C7ULL);
    g_assert_cmphex(encore_ntp_from_unix_us(-1), ==, 0x83AA7E7FFFFFEF39ULL);
    /* 2000-01-01T00:00:00Z and 2024-01-01T00:00:00.25Z. */
    g_assert_cmphex(encore_ntp_from_unix_us(946684800LL * 1000000), ==, 0xBC17C20000000000ULL);
    g_assert_cmphex(encore_ntp_from_unix_us(1704067200LL * 1000000 + 250000), ==,
                    0xE93C7F0040000000ULL);
    /* 2036-02-07T06:28:16Z starts NTP era 1: the seconds wrap to 0. */
    g_assert_cmphex(encore_ntp_from_unix_us(2085978496LL * 1000000), ==, 0);
    g_assert_cmphex(encore_ntp_from_unix_us(2085978497LL * 1000000 + 750000), ==,
                    0x00000001C0000000ULL);
    g_assert_cmphex(encore_ntp_middle32(0x83AA7E8080000000ULL), ==, 0x7E808000);
    g_assert_cmphex(encore_ntp_middle32(0xE93C7F0040000000ULL), ==, 0x7F004000);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/rtp/parse/plain", test_parse_plain);
    g_test_add_func("/rtp/parse/csrc-ext", test_parse_csrc_ext);
    g_test_add_func("/rtp/parse/two-byte", test_parse_twobyte);
    g_test_add_func("/rtp/parse/padding", test_parse_padding);
    g_test_add_func("/rtp/parse/rejects", test_parse_rejects);
    g_test_add_func("/rtp/demux", test_demux);
    g_test_add_func("/rtp/writers", test_writers);
    g_test_add_func("/rtp/strip-extension", test_strip_extension);
    g_test_add_func("/rtp/ext-find/malformed", test_ext_find_malformed);
    g_test_add_func("/rtp/add-ext", test_add_ext);
    g_test_add_func("/rtp/red", test_red);
    g_test_add_func("/rtp/ntp", test_ntp);
    return g_test_run();
}
