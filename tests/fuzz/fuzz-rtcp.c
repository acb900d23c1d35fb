/* Fuzz target for media/rtcp.c: parses the input as an RTCP datagram and checks the limits the
 * parser promises, then builds SR, RR and NACK packets from the input bytes and parses them
 * back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "media/rtcp.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void parse_input(const uint8_t *data, size_t size)
{
    encore_rtcp_info info;
    int rc = encore_rtcp_parse(data, size, &info);
    CHECK(rc == 0 || rc == -EINVAL);
    CHECK(info.n_reports <= ENCORE_RTCP_MAX_REPORTS);
    CHECK(info.n_nacks <= ENCORE_RTCP_MAX_NACKS);
    if (info.cname) {
        CHECK(info.cname >= data && info.cname + info.cname_len <= data + size);
        CHECK(info.n_sdes > 0);
    }
    if (rc == 0) {
        CHECK(size % 4 == 0);
        CHECK(info.n_packets >= 1 && info.n_packets <= size / 4);
        CHECK(info.n_sr + info.n_rr + info.n_sdes + info.n_bye + info.n_app + info.n_rtpfb +
                  info.n_psfb + info.n_xr + info.n_unknown ==
              info.n_packets);
        CHECK(info.has_sr == (info.n_sr > 0));
    }
}

static void roundtrip(const uint8_t *data, size_t size)
{
    if (size < 32)
        return;
    uint8_t buf[1100];
    encore_rtcp_info info;

    size_t n = encore_rtcp_build_sr(buf, sizeof buf, rd32(data),
                                    (uint64_t)rd32(data + 4) << 32 | rd32(data + 8),
                                    rd32(data + 12), rd32(data + 16), rd32(data + 20), "fuzz");
    CHECK(n == 28 + 16); /* SR + SDES with a 4-byte CNAME */
    CHECK(encore_rtcp_parse(buf, n, &info) == 0);
    CHECK(info.has_sr && info.sr_ssrc == rd32(data) && info.sr_octets == rd32(data + 20));

    encore_rtcp_report_block rb = {
        .ssrc = rd32(data),
        .fraction_lost = data[4],
        .cumulative_lost = (int32_t)rd32(data + 4) >> 8,
        .highest_seq = rd32(data + 8),
        .jitter = rd32(data + 12),
        .lsr = rd32(data + 16),
        .dlsr = rd32(data + 20),
    };
    n = encore_rtcp_build_rr(buf, sizeof buf, rd32(data + 24), &rb, NULL);
    CHECK(n == 32);
    CHECK(encore_rtcp_parse(buf, n, &info) == 0);
    CHECK(info.n_reports == 1 && info.reports[0].cumulative_lost == rb.cumulative_lost);
    CHECK(info.reports[0].dlsr == rb.dlsr && info.reports[0].highest_seq == rb.highest_seq);

    /* Up to 256 sequence numbers: every one must come back from the parser, in some pair. */
    uint16_t seqs[256];
    size_t count = (size - 28) / 2;
    if (count > 256)
        count = 256;
    for (size_t i = 0; i < count; i++)
        seqs[i] = (uint16_t)(data[28 + 2 * i] << 8 | data[29 + 2 * i]);
    n = encore_rtcp_build_nack(buf, sizeof buf, 1, 2, seqs, count);
    if (count == 0) {
        CHECK(n == 0);
        return;
    }
    CHECK(n >= 16 && n <= 12 + 4 * count);
    CHECK(encore_rtcp_parse(buf, n, &info) == 0);
    CHECK(info.nack_ssrc == 2 && info.n_nacks >= 1);
    if (info.n_nacks_dropped == 0) {
        for (size_t i = 0; i < count; i++) {
            size_t j = 0;
            while (j < info.n_nacks && info.nacks[j] != seqs[i])
                j++;
            CHECK(j < info.n_nacks);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_input(data, size);
    roundtrip(data, size);
    return 0;
}
