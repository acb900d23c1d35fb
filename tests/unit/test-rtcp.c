/* Unit tests for media/rtcp.c: compound and reduced-size parsing (SR, RR, SDES, NACK, PLI, FIR,
 * REMB, TWCC, BYE), malformed lengths, array limits, and SR/RR/NACK builders round-tripped through
 * the parser. */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "media/rtcp.h"

/* A compound SR + SDES as a browser sends it: SR with one report block, then the CNAME. */
/* clang-format off */
static const uint8_t sr_sdes[] = {
    0x81, 0xC8, 0x00, 0x0C, 0x12, 0x34, 0xAB, 0xCD,                         /* SR, RC=1 */
    0xE5, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07,                         /* NTP */
    0x00, 0x01, 0x23, 0x45, 0x00, 0x00, 0x03, 0xE8, 0x00, 0x02, 0x71, 0x00, /* RTP, pkts, octets */
    0xCA, 0xFE, 0xBA, 0xBE, 0x0A, 0x00, 0x00, 0x2A,                         /* block: ssrc, lost */
    0x00, 0x01, 0xFF, 0xF0, 0x00, 0x00, 0x00, 0xC8,                         /* seq, jitter */
    0xB2, 0xC3, 0xD4, 0xE5, 0x00, 0x01, 0x80, 0x00,                         /* lsr, dlsr */
    0x81, 0xCA, 0x00, 0x06, 0x12, 0x34, 0xAB, 0xCD,                         /* SDES */
    0x01, 0x10, 'k', 'K', 'p', 'Z', '0', 'y', '8', 'h', 'R', 'T', 'b', 'Q', '3', 'J', 'f', 'A',
    0x00, 0x00,
};
/* clang-format on */

static void test_sr_sdes(void)
{
    encore_rtcp_info info;
    g_assert_cmpint(encore_rtcp_parse(sr_sdes, sizeof sr_sdes, &info), ==, 0);
    g_assert_cmpuint(info.n_packets, ==, 2);
    g_assert_cmpuint(info.n_sr, ==, 1);
    g_assert_cmpuint(info.n_sdes, ==, 1);
    g_assert_cmpuint(info.n_rr + info.n_bye + info.n_rtpfb + info.n_psfb + info.n_unknown, ==, 0);
    g_assert_true(info.has_sr);
    g_assert_cmphex(info.sender_ssrc, ==, 0x1234ABCD);
    g_assert_cmphex(info.sr_ssrc, ==, 0x1234ABCD);
    g_assert_cmphex(info.sr_ntp, ==, 0xE5A1B2C3D4E5F607ULL);
    g_assert_cmpuint(info.sr_rtp_ts, ==, 0x12345);
    g_assert_cmpuint(info.sr_packets, ==, 1000);
    g_assert_cmpuint(info.sr_octets, ==, 160000);
    g_assert_cmpuint(info.n_reports, ==, 1);
    g_assert_cmphex(info.reports[0].ssrc, ==, 0xCAFEBABE);
    g_assert_cmpuint(info.reports[0].fraction_lost, ==, 10);
    g_assert_cmpint(info.reports[0].cumulative_lost, ==, 42);
    g_assert_cmphex(info.reports[0].highest_seq, ==, 0x0001FFF0);
    g_assert_cmpuint(info.reports[0].jitter, ==, 200);
    g_assert_cmphex(info.reports[0].lsr, ==, 0xB2C3D4E5);
    g_assert_cmphex(info.reports[0].dlsr, ==, 0x00018000);
    g_assert_cmphex(info.cname_ssrc, ==, 0x1234ABCD);
    g_assert_nonnull(info.cname);
    g_assert_cmpmem(info.cname, info.cname_len, "kKpZ0y8hRTbQ3JfA", 16);
    g_assert_false(info.pli || info.fir || info.bye);
    g_assert_cmpuint(info.n_nacks, ==, 0);

    /* Every truncation fails except the one that ends exactly after the SR. */
    for (size_t n = 0; n < sizeof sr_sdes; n++)
        g_assert_cmpint(encore_rtcp_parse(sr_sdes, n, &info), ==, n == 52 ? 0 : -EINVAL);
}

static void test_rr_blocks(void)
{
    /* clang-format off */
    const uint8_t rr[] = {
        0x82, 0xC9, 0x00, 0x0D, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0xAA, 0x80, 0xFF, 0xFF, 0xFE, 0x00, 0x00, 0x10, 0x00,
        0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0xBB, 0xFF, 0x7F, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
    };
    /* clang-format on */
    encore_rtcp_info info;
    g_assert_cmpint(encore_rtcp_parse(rr, sizeof rr, &info), ==, 0);
    g_assert_cmpuint(info.n_rr, ==, 1);
    g_assert_false(info.has_sr);
    g_assert_cmpuint(info.sender_ssrc, ==, 1);
    g_assert_cmpuint(info.n_reports, ==, 2);
    g_assert_cmpuint(info.reports[0].ssrc, ==, 0xAA);
    g_assert_cmpuint(info.reports[0].fraction_lost, ==, 128);
    g_assert_cmpint(info.reports[0].cumulative_lost, ==, -2);
    g_assert_cmpuint(info.reports[0].highest_seq, ==, 0x1000);
    g_assert_cmpuint(info.reports[0].jitter, ==, 5);
    g_assert_cmpuint(info.reports[0].lsr, ==, 0);
    g_assert_cmpuint(info.reports[0].dlsr, ==, 0);
    g_assert_cmpuint(info.reports[1].ssrc, ==, 0xBB);
    g_assert_cmpuint(info.reports[1].fraction_lost, ==, 255);
    g_assert_cmpint(info.reports[1].cumulative_lost, ==, 8388607);
    g_assert_cmphex(info.reports[1].lsr, ==, 0x11223344);
    g_assert_cmphex(info.reports[1].dlsr, ==, 0x55667788);
    g_assert_null(info.cname);

    /* RC=2 with only one block's worth of length. */
    uint8_t short_rr[32];
    memcpy(short_rr, rr, sizeof short_rr);
    short_rr[3] = 0x07;
    g_assert_cmpint(encore_rtcp_parse(short_rr, sizeof short_rr, &info), ==, -EINVAL);
}

static void test_nack(void)
{
    /* clang-format off */
    const uint8_t nack[] = {
        0x81, 0xCD, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0xAB, 0xCD,
        0x03, 0xE8, 0x80, 0x05, /* PID 1000, BLP bits 0, 2, 15 */
        0xFF, 0xFF, 0x00, 0x01, /* PID 65535, BLP bit 0 -> 0 */
        0x81, 0xCD, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x99, 0x99,
        0x00, 0x05, 0x00, 0x00, /* another media SSRC: dropped */
    };
    /* clang-format on */
    encore_rtcp_info info;
    g_assert_cmpint(encore_rtcp_parse(nack, sizeof nack, &info), ==, 0);
    g_assert_cmpuint(info.n_packets, ==, 2);
    g_assert_cmpuint(info.n_rtpfb, ==, 2);
    g_assert_cmpuint(info.sender_ssrc, ==, 1);
    g_assert_cmphex(info.nack_ssrc, ==, 0xABCD);
    const uint16_t want[] = {1000, 1001, 1003, 1016, 65535, 0};
    g_assert_cmpuint(info.n_nacks, ==, G_N_ELEMENTS(want));
    g_assert_cmpmem(info.nacks, info.n_nacks * sizeof(uint16_t), want, sizeof want);
    g_assert_cmpuint(info.n_nacks_dropped, ==, 1);

    /* A NACK without any FCI, and one whose FCI is cut by padding, are malformed. */
    const uint8_t empty[] = {0x81, 0xCD, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0xAB, 0xCD};
    g_assert_cmpint(encore_rtcp_parse(empty, sizeof empty, &info), ==, -EINVAL);
    const uint8_t padded[] = {0xA1, 0xCD, 0x00, 0x03, 0, 0, 0, 1, 0, 0, 0xAB, 0xCD, 0, 5, 0, 2};
    g_assert_cmpint(encore_rtcp_parse(padded, sizeof padded, &info), ==, -EINVAL);
}

static void test_nack_limit(void)
{
    /* 9 FCIs with all BLP bits: 153 sequence numbers 0..152, of which 128 are kept. */
    uint8_t p[12 + 9 * 4] = {0x81, 0xCD, 0x00, 11, 0, 0, 0, 1, 0, 0, 0, 7};
    for (int i = 0; i < 9; i++) {
        p[12 + 4 * i + 1] = (uint8_t)(17 * i);
        p[12 + 4 * i + 2] = 0xFF;
        p[12 + 4 * i + 3] = 0xFF;
    }
    encore_rtcp_info info;
    g_assert_cmpint(encore_rtcp_parse(p, sizeof p, &info), ==, 0);
    g_assert_cmpuint(info.n_nacks, ==, ENCORE_RTCP_MAX_NACKS);
    g_assert_cmpuint(info.n_nacks_dropped, ==, 153 - 128);
    for (size_t i = 0; i < info.n_nacks; i++)
        g_assert_cmpuint(info.nacks[i], ==, i);
}

static void test_report_limit(void)
{
    /* RR with 31 blocks, then RR with 2: 31 kept, 2 dropped. */
    uint8_t p[8 + 31 * 24 + 8 + 2 * 24];
    memset(p, 0, sizeof p);
    p[0] = 0x80 | 31;
    p[1] = 0xC9;
    p[2] = (uint8_t)((1 + 31 * 6) >> 8);
    p[3] = (uint8_t)(1 + 31 * 6);
    for (int i = 0; i < 31; i++)
        p[8 + 24 * i + 3] = (uint8_t)(i + 1);
    uint8_t *q = p + 8 + 31 * 24;
    q[0] = 0x82;
    q[1] = 0xC9;
    q[3] = 13;
    q[8 + 3] = 200;
    encore_rtcp_info info;
    g_assert_cmpint(encore_rtcp_parse(p, sizeof p, &info), ==, 0);
    g_assert_cmpuint(info.n_rr, ==, 2);
    g_assert_cmpuint(info.n_reports, ==, ENCORE_RTCP_MAX_REPORTS);
    g_assert_cmpuint(info.n_reports_dropped, ==, 2);
    g_assert_cmpuint(info.reports[0].ssrc, ==, 1);
    g_assert_cmpuint(info.reports[30].ssrc, ==, 31);
}

static void test_pli_fir_rsize(void)
{
    const uint8_t pli[] = {0x81, 0xCE, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0xAB, 0xCD};
    encore_rtcp_info info;
    g_assert_cmpint(encore_rtcp_parse(pli, sizeof pli, &info), ==, 0);
    g_assert_cmpuint(info.n_packets, ==, 1);
    g_assert_cmpuint(info.n_psfb, ==, 1);
    g_assert_true(info.pli);
    g_assert_false(info.fir);
    g_assert_cmphex(info.pli_ssrc, ==, 0xABCD);
    g_assert_cmpuint(info.sender_ssrc, ==, 1);

    /* clang-format off */
    const uint8_t fir[] = {0x84, 0xCE, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                           0x00, 0x00, 0xAB, 0xCE, 0x07, 0x00, 0x00, 0x00};
    /* clang-format on */
    g_assert_cmpint(encore_rtcp_parse(fir, sizeof fir, &info), ==, 0);
    g_assert_true(info.fir);
    g_assert_false(info.pli);
    g_assert_cmphex(info.pli_ssrc, ==, 0xABCE);
    g_assert_cmpint(encore_rtcp_parse(fir, 12, &info), ==, -EINVAL); /* length field says 20 */

    /* Reduced-size: a lone feedback packet with less than sender + media SSRC is malformed. */
    const uint8_t tiny[] = {0x81, 0xCE, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01};
    g_assert_cmpint(encore_rtcp_parse(tiny, sizeof tiny, &info), ==, -EINVAL);
}

static void test_skipped_types(void)
{
    /* clang-format off */
    const uint8_t p[] = {
        0x80, 0xC9, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,                         /* RR, no blocks */
        0x8F, 0xCE, 0x00, 0x05, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, /* REMB */
        'R', 'E', 'M', 'B', 0x01, 0x0A, 0xBC, 0xDE, 0x00, 0x00, 0xAB, 0xCD,
        0x8F, 0xCD, 0x00, 0x05, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0xAB, 0xCD, /* TWCC */
        0x00, 0x0A, 0x00, 0x01, 0x00, 0x00, 0x10, 0x05, 0x20, 0x01, 0x28, 0x00,
        0x80, 0xCC, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 'n', 'a', 'm', 'e',     /* APP */
        0x80, 0xCF, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,                         /* XR */
        0x80, 0xD2, 0x00, 0x00,                                                 /* PT 210 */
        0x81, 0xCB, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,                         /* BYE */
        0xA0, 0xC9, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04, /* padded RR */
    };
    /* clang-format on */
    encore_rtcp_info info;
    g_assert_cmpint(encore_rtcp_parse(p, sizeof p, &info), ==, 0);
    g_assert_cmpuint(info.n_packets, ==, 8);
    g_assert_cmpuint(info.n_rr, ==, 2);
    g_assert_cmpuint(info.n_psfb, ==, 1);
    g_assert_cmpuint(info.n_rtpfb, ==, 1);
    g_assert_cmpuint(info.n_app, ==, 1);
    g_assert_cmpuint(info.n_xr, ==, 1);
    g_assert_cmpuint(info.n_unknown, ==, 1);
    g_assert_cmpuint(info.n_bye, ==, 1);
    g_assert_true(info.bye);
    g_assert_false(info.pli);
    g_assert_cmpuint(info.n_nacks, ==, 0);
    g_assert_cmpuint(info.n_reports, ==, 0);
    g_assert_cmpuint(info.sender_ssrc, ==, 1);
}

static void test_malformed(void)
{
    encore_rtcp_info info;
    /* clang-format off */
    const uint8_t pli[] = {0x81, 0xCE, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0xAB, 0xCD,
                           0x80, 0xC9};
    /* clang-format on */
    g_assert_cmpint(encore_rtcp_parse(pli, 12, &info), ==, 0);
    /* Trailing bytes that are not a whole packet. */
    g_assert_cmpint(encore_rtcp_parse(pli, sizeof pli, &info), ==, -EINVAL);
    /* The length field runs past the end. */
    uint8_t p[12];
    memcpy(p, pli, sizeof p);
    p[3] = 3;
    g_assert_cmpint(encore_rtcp_parse(p, sizeof p, &info), ==, -EINVAL);
    /* The length field stops short: the PLI has no room for its media SSRC. */
    p[3] = 1;
    g_assert_cmpint(encore_rtcp_parse(p, sizeof p, &info), ==, -EINVAL);
    /* Version 1 and 0. */
    memcpy(p, pli, sizeof p);
    p[0] = 0x41;
    g_assert_cmpint(encore_rtcp_parse(p, sizeof p, &info), ==, -EINVAL);
    p[0] = 0x01;
    g_assert_cmpint(encore_rtcp_parse(p, sizeof p, &info), ==, -EINVAL);
    /* SR with RC=1 but room only for the sender info. */
    uint8_t sr[28];
    memcpy(sr, sr_sdes, sizeof sr);
    sr[3] = 6;
    g_assert_cmpint(encore_rtcp_parse(sr, sizeof sr, &info), ==, -EINVAL);
    sr[0] = 0x80;
    g_assert_cmpint(encore_rtcp_parse(sr, sizeof sr, &info), ==, 0);
    g_assert_true(info.has_sr);
    /* Padding count 0, and padding larger than the body. */
    uint8_t rr[] = {0xA0, 0xC9, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00};
    g_assert_cmpint(encore_rtcp_parse(rr, sizeof rr, &info), ==, -EINVAL);
    rr[11] = 9;
    g_assert_cmpint(encore_rtcp_parse(rr, sizeof rr, &info), ==, -EINVAL);
    rr[11] = 8; /* the whole body is padding: no room left for the sender SSRC */
    g_assert_cmpint(encore_rtcp_parse(rr, sizeof rr, &info), ==, -EINVAL);
    /* BYE announcing two SSRCs with room for one. */
    const uint8_t bye[] = {0x82, 0xCB, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01};
    g_assert_cmpint(encore_rtcp_parse(bye, sizeof bye, &info), ==, -EINVAL);
    /* Too short, NULL. */
    g_assert_cmpint(encore_rtcp_parse(pli, 3, &info), ==, -EINVAL);
    g_assert_cmpint(encore_rtcp_parse(NULL, 12, &info), ==, -EINVAL);
}

static void test_sdes_malformed_is_skipped(void)
{
    /* SDES whose CNAME item claims more bytes than the chunk has: no CNAME, no error. */
    const uint8_t p[] = {0x81, 0xCA, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 0x09, 'a', 'b'};
    encore_rtcp_info info;
    g_assert_cmpint(encore_rtcp_parse(p, sizeof p, &info), ==, 0);
    g_assert_cmpuint(info.n_sdes, ==, 1);
    g_assert_null(info.cname);

    /* Two chunks; the first has only a NOTE item (type 7), the second the CNAME. */
    /* clang-format off */
    const uint8_t two[] = {0x82, 0xCA, 0x00, 0x05, 0x00, 0x00, 0x00, 0x01, 0x07, 0x01, 'x', 0x00,
                           0x00, 0x00, 0x00, 0x02, 0x01, 0x02, 'h', 'i', 0x00, 0x00, 0x00, 0x00};
    /* clang-format on */
    g_assert_cmpint(encore_rtcp_parse(two, sizeof two, &info), ==, 0);
    g_assert_cmpuint(info.cname_ssrc, ==, 2);
    g_assert_cmpmem(info.cname, info.cname_len, "hi", 2);
}

static void test_build_sr(void)
{
    uint8_t buf[128];
    size_t n = encore_rtcp_build_sr(buf, sizeof buf, 0x11223344, 0xE93C7F0040000000ULL, 123456, 10,
                                    1600, "encore");
    g_assert_cmpuint(n, ==, 48);
    /* clang-format off */
    const uint8_t want[] = {
        0x80, 0xC8, 0x00, 0x06, 0x11, 0x22, 0x33, 0x44,
        0xE9, 0x3C, 0x7F, 0x00, 0x40, 0x00, 0x00, 0x00,
        0x00, 0x01, 0xE2, 0x40, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x00, 0x06, 0x40,
        0x81, 0xCA, 0x00, 0x04, 0x11, 0x22, 0x33, 0x44, 0x01, 0x06, 'e', 'n', 'c', 'o', 'r', 'e',
        0x00, 0x00, 0x00, 0x00,
    };
    /* clang-format on */
    g_assert_cmpmem(buf, n, want, sizeof want);

    encore_rtcp_info info;
    g_assert_cmpint(encore_rtcp_parse(buf, n, &info), ==, 0);
    g_assert_cmpuint(info.n_sr, ==, 1);
    g_assert_cmpuint(info.n_sdes, ==, 1);
    g_assert_true(info.has_sr);
    g_assert_cmphex(info.sr_ssrc, ==, 0x11223344);
    g_assert_cmphex(info.sr_ntp, ==, 0xE93C7F0040000000ULL);
    g_assert_cmpuint(info.sr_rtp_ts, ==, 123456);
    g_assert_cmpuint(info.sr_packets, ==, 10);
    g_assert_cmpuint(info.sr_octets, ==, 1600);
    g_assert_cmpuint(info.n_reports, ==, 0);
    g_assert_cmpmem(info.cname, info.cname_len, "encore", 6);

    for (size_t cap = 0; cap < 48; cap++)
        g_assert_cmpuint(encore_rtcp_build_sr(buf, cap, 1, 2, 3, 4, 5, "encore"), ==, 0);
    /* A 5-byte CNAME fills its chunk exactly with one terminating zero (4 + 2 + 5 + 1 = 12), where
     * "encore" above needed a whole extra word for it (4 + 2 + 6 = 12 -> 16). */
    n = encore_rtcp_build_sr(buf, sizeof buf, 1, 2, 3, 4, 5, "abcde");
    g_assert_cmpuint(n, ==, 28 + 4 + 12);
    g_assert_cmpint(encore_rtcp_parse(buf, n, &info), ==, 0);
    g_assert_cmpmem(info.cname, info.cname_len, "abcde", 5);

    /* Reduced-size SR alone, and invalid CNAMEs. */
    g_assert_cmpuint(encore_rtcp_build_sr(buf, 28, 1, 2, 3, 4, 5, NULL), ==, 28);
    g_assert_cmpint(encore_rtcp_parse(buf, 28, &info), ==, 0);
    g_assert_cmpuint(encore_rtcp_build_sr(buf, sizeof buf, 1, 2, 3, 4, 5, ""), ==, 0);
    char longname[257];
    memset(longname, 'a', 256);
    longname[256] = 0;
    uint8_t big[512];
    g_assert_cmpuint(encore_rtcp_build_sr(big, sizeof big, 1, 2, 3, 4, 5, longname), ==, 0);
    longname[255] = 0;
    n = encore_rtcp_build_sr(big, sizeof big, 1, 2, 3, 4, 5, longname);
    g_assert_cmpuint(n, ==, 28 + 4 + 264);
    g_assert_cmpint(encore_rtcp_parse(big, n, &info), ==, 0);
    g_assert_cmpuint(info.cname_len, ==, 255);
}

static void test_build_rr(void)
{
    encore_rtcp_report_block rb = {
        .ssrc = 0xAABBCCDD,
        .fraction_lost = 25,
        .cumulative_lost = -9000000,
        .highest_seq = 0x00020010,
        .jitter = 33,
        .lsr = 0x7E808000,
        .dlsr = 65536,
    };
    uint8_t buf[64];
    size_t n = encore_rtcp_build_rr(buf, sizeof buf, 0x01020304, &rb, "x");
    g_assert_cmpuint(n, ==, 32 + 12);
    g_assert_cmpmem(buf, 8, "\x81\xC9\x00\x07\x01\x02\x03\x04", 8);
    g_assert_cmpmem(buf + 12, 4, "\x19\x80\x00\x00", 4);
    encore_rtcp_info info;
    g_assert_cmpint(encore_rtcp_parse(buf, n, &info), ==, 0);
    g_assert_cmpuint(info.n_rr, ==, 1);
    g_assert_cmpuint(info.n_sdes, ==, 1);
    g_assert_cmphex(info.sender_ssrc, ==, 0x01020304);
    g_assert_cmpuint(info.n_reports, ==, 1);
    g_assert_cmphex(info.reports[0].ssrc, ==, 0xAABBCCDD);
    g_assert_cmpuint(info.reports[0].fraction_lost, ==, 25);
    g_assert_cmpint(info.reports[0].cumulative_lost, ==, -8388608);
    g_assert_cmphex(info.reports[0].highest_seq, ==, 0x00020010);
    g_assert_cmpuint(info.reports[0].jitter, ==, 33);
    g_assert_cmphex(info.reports[0].lsr, ==, 0x7E808000);
    g_assert_cmpuint(info.reports[0].dlsr, ==, 65536);
    g_assert_cmpmem(info.cname, info.cname_len, "x", 1);

    rb.cumulative_lost = 8388608;
    n = encore_rtcp_build_rr(buf, sizeof buf, 1, &rb, NULL);
    g_assert_cmpuint(n, ==, 32);
    g_assert_cmpint(encore_rtcp_parse(buf, n, &info), ==, 0);
    g_assert_cmpint(info.reports[0].cumulative_lost, ==, 8388607);
    rb.cumulative_lost = -1;
    n = encore_rtcp_build_rr(buf, sizeof buf, 1, &rb, NULL);
    g_assert_cmpint(encore_rtcp_parse(buf, n, &info), ==, 0);
    g_assert_cmpint(info.reports[0].cumulative_lost, ==, -1);

    n = encore_rtcp_build_rr(buf, sizeof buf, 7, NULL, "x");
    g_assert_cmpuint(n, ==, 8 + 12);
    g_assert_cmpint(encore_rtcp_parse(buf, n, &info), ==, 0);
    g_assert_cmpuint(info.n_reports, ==, 0);
    g_assert_cmpuint(info.sender_ssrc, ==, 7);
    for (size_t cap = 0; cap < 44; cap++)
        g_assert_cmpuint(encore_rtcp_build_rr(buf, cap, 1, &rb, "x"), ==, 0);
}

static void test_build_nack(void)
{
    const uint16_t seqs[] = {100, 101, 105, 116, 117, 200, 65535, 0, 5, 5};
    uint8_t buf[64];
    size_t n =
        encore_rtcp_build_nack(buf, sizeof buf, 0x0A0B0C0D, 0x01020304, seqs, G_N_ELEMENTS(seqs));
    g_assert_cmpuint(n, ==, 28);
    /* clang-format off */
    const uint8_t want[] = {0x81, 0xCD, 0x00, 0x06, 0x0A, 0x0B, 0x0C, 0x0D, 0x01, 0x02, 0x03, 0x04,
                            0x00, 0x64, 0x80, 0x11, 0x00, 0x75, 0x00, 0x00, 0x00, 0xC8, 0x00, 0x00,
                            0xFF, 0xFF, 0x00, 0x21};
    /* clang-format on */
    g_assert_cmpmem(buf, n, want, sizeof want);
    encore_rtcp_info info;
    g_assert_cmpint(encore_rtcp_parse(buf, n, &info), ==, 0);
    g_assert_cmpuint(info.sender_ssrc, ==, 0x0A0B0C0D);
    g_assert_cmphex(info.nack_ssrc, ==, 0x01020304);
    g_assert_cmpmem(info.nacks, info.n_nacks * sizeof(uint16_t), seqs, 9 * sizeof(uint16_t));

    for (size_t cap = 0; cap < 28; cap++)
        g_assert_cmpuint(encore_rtcp_build_nack(buf, cap, 1, 2, seqs, G_N_ELEMENTS(seqs)), ==, 0);
    g_assert_cmpuint(encore_rtcp_build_nack(buf, sizeof buf, 1, 2, seqs, 0), ==, 0);
    n = encore_rtcp_build_nack(buf, sizeof buf, 1, 2, seqs, 1);
    g_assert_cmpuint(n, ==, 16);
    g_assert_cmpint(encore_rtcp_parse(buf, n, &info), ==, 0);
    g_assert_cmpuint(info.n_nacks, ==, 1);
    g_assert_cmpuint(info.nacks[0], ==, 100);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/rtcp/parse/sr-sdes", test_sr_sdes);
    g_test_add_func("/rtcp/parse/rr-blocks", test_rr_blocks);
    g_test_add_func("/rtcp/parse/nack", test_nack);
    g_test_add_func("/rtcp/parse/nack-limit", test_nack_limit);
    g_test_add_func("/rtcp/parse/report-limit", test_report_limit);
    g_test_add_func("/rtcp/parse/pli-fir-rsize", test_pli_fir_rsize);
    g_test_add_func("/rtcp/parse/skipped-types", test_skipped_types);
    g_test_add_func("/rtcp/parse/malformed", test_malformed);
    g_test_add_func("/rtcp/parse/sdes-malformed", test_sdes_malformed_is_skipped);
    g_test_add_func("/rtcp/build/sr", test_build_sr);
    g_test_add_func("/rtcp/build/rr", test_build_rr);
    g_test_add_func("/rtcp/build/nack", test_build_nack);
    return g_test_run();
}
