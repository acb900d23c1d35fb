/* Fuzz target for media/rtp.c and media/stage.c: parses the input as one RTP packet (demux, header,
 * extension lookup, strip and add on copies, RED primary) and then as a sequence of packets fed
 * through a stage track, checking the invariants each function promises. */
#include <stdlib.h>
#include <string.h>

#include "media/rtp.h"
#include "media/stage.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_header(const uint8_t *buf, size_t len, const encore_rtp_header *h)
{
    CHECK(h->version == 2);
    CHECK(h->header_len <= len);
    CHECK(h->payload_offset == h->header_len);
    CHECK(h->payload_len <= len - h->header_len);
    CHECK(h->ext_len % 4 == 0);
    if (h->extension)
        CHECK(h->ext_offset + h->ext_len == h->header_len);
    else
        CHECK(h->ext_offset == 0 && h->ext_len == 0);
    (void)buf;
}

static void one_packet(const uint8_t *data, size_t size)
{
    (void)encore_rtp_is_rtcp(data, size);
    (void)encore_rtp_looks_like_rtp(data, size);

    encore_rtp_header h;
    if (encore_rtp_parse(data, size, &h) != 0)
        return;
    check_header(data, size, &h);

    static const uint8_t ids[] = {1, 2, 3, 7, 14, 15, 16, 200, 255};
    for (size_t i = 0; i < sizeof ids; i++) {
        const uint8_t *d = NULL;
        size_t dl = 0;
        if (encore_rtp_ext_find(data, &h, ids[i], &d, &dl) == 0) {
            CHECK(d >= data + h.ext_offset);
            CHECK(d + dl <= data + h.ext_offset + h.ext_len);
        }
    }

    uint8_t pt;
    size_t off, plen;
    if (encore_red_primary(data + h.payload_offset, h.payload_len, &pt, &off, &plen) == 0) {
        CHECK(pt < 128);
        CHECK(off + plen == h.payload_len);
    }

    /* Strip on an exact-size copy. */
    uint8_t *copy = malloc(size);
    CHECK(copy);
    memcpy(copy, data, size);
    size_t n = encore_rtp_strip_extension(copy, size);
    encore_rtp_header s;
    CHECK(encore_rtp_parse(copy, n, &s) == 0);
    CHECK(!s.extension);
    CHECK(s.payload_len == h.payload_len);
    CHECK(memcmp(copy + s.payload_offset, data + h.payload_offset, h.payload_len) == 0);
    free(copy);

    /* Add an element to a copy with a little room, then find it again. */
    size_t cap = size + 24;
    uint8_t *grown = malloc(cap);
    CHECK(grown);
    memcpy(grown, data, size);
    uint8_t id = (uint8_t)(1 + data[size - 1] % 14);
    size_t dlen = 1 + data[size - 1] % 16;
    uint8_t val[16];
    for (size_t i = 0; i < sizeof val; i++)
        val[i] = (uint8_t)(0xA0 + i);
    size_t newlen = 0;
    if (encore_rtp_add_ext_onebyte(grown, size, cap, id, val, dlen, &newlen) == 0) {
        encore_rtp_header g;
        CHECK(newlen >= size && newlen <= cap); /* equal when it fits the padding */
        CHECK(encore_rtp_parse(grown, newlen, &g) == 0);
        CHECK(g.payload_len == h.payload_len);
        CHECK(memcmp(grown + g.payload_offset, data + h.payload_offset, h.payload_len) == 0);
        const uint8_t *d;
        size_t dl;
        CHECK(encore_rtp_ext_find(grown, &g, id, &d, &dl) == 0);
        CHECK(dl == dlen && memcmp(d, val, dlen) == 0);
    } else {
        CHECK(memcmp(grown, data, size) == 0);
    }
    free(grown);
}

/* The input as records: 2-byte length, 1 control byte (bit 0: select this packet's SSRC; the rest:
 * milliseconds since the previous packet), then the packet. */
static void stage_run(const uint8_t *data, size_t size)
{
    encore_stage *st = encore_stage_new(0x5354A6E5, 48000);
    CHECK(st);
    int64_t now = 0;
    uint16_t prev_last = 0;
    while (size >= 3) {
        size_t l = ((size_t)data[0] << 8 | data[1]) % 2048;
        uint8_t ctl = data[2];
        data += 3;
        size -= 3;
        if (l > size)
            l = size;
        now += 1000 * (ctl >> 1);
        uint8_t *pkt = malloc(l ? l : 1);
        CHECK(pkt);
        memcpy(pkt, data, l);
        data += l;
        size -= l;

        encore_rtp_header h;
        if ((ctl & 1) && encore_rtp_parse(pkt, l, &h) == 0)
            encore_stage_set_source(st, h.ssrc);
        bool was_started = encore_stage_started(st);
        if (encore_stage_rewrite(st, pkt, l, now) == 0) {
            CHECK(encore_rtp_parse(pkt, l, &h) == 0);
            CHECK(h.ssrc == 0x5354A6E5);
            uint16_t last = encore_stage_last_seq(st);
            if (was_started)
                CHECK((int16_t)(uint16_t)(last - prev_last) >= 0);
            prev_last = last;
            const uint8_t *c;
            size_t cl;
            if (l <= ENCORE_STAGE_CACHE_MTU &&
                (uint16_t)(last - h.seq) < ENCORE_STAGE_CACHE_SLOTS) {
                CHECK(encore_stage_cache_get(st, h.seq, &c, &cl) == 0);
                CHECK(cl == l && memcmp(c, pkt, l) == 0);
            }
        }
        (void)encore_stage_rtp_now(st, now);
        free(pkt);
    }
    encore_stage_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one_packet(data, size);
    stage_run(data, size);
    return 0;
}
