/* RTCP datagram parsing and the SR/RR/NACK builders used by the SFU.
 * Pure functions over caller-owned buffers, safe on any thread: no allocation, no logging, no
 * state; every read and write is bounds-checked against the length the caller passed. */
#include "media/rtcp.h"

#include <errno.h>
#include <string.h>

#define RTCP_HEADER 4
#define REPORT_BLOCK 24
#define SENDER_INFO 20
#define SDES_CNAME 1
#define FMT_NACK 1
#define FMT_PLI 1
#define FMT_FIR 4

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void note_sender(encore_rtcp_info *out, uint32_t ssrc)
{
    if (out->sender_ssrc == 0)
        out->sender_ssrc = ssrc;
}

/* Reads count report blocks from p, which the caller checked holds count * 24 bytes. */
static void parse_reports(const uint8_t *p, unsigned count, encore_rtcp_info *out)
{
    for (unsigned i = 0; i < count; i++, p += REPORT_BLOCK) {
        if (out->n_reports == ENCORE_RTCP_MAX_REPORTS) {
            out->n_reports_dropped++;
            continue;
        }
        encore_rtcp_report_block *rb = &out->reports[out->n_reports++];
        uint32_t lost = ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7];
        rb->ssrc = rd32(p);
        rb->fraction_lost = p[4];
        rb->cumulative_lost = (lost & 0x800000) ? (int32_t)lost - 0x1000000 : (int32_t)lost;
        rb->highest_seq = rd32(p + 8);
        rb->jitter = rd32(p + 12);
        rb->lsr = rd32(p + 16);
        rb->dlsr = rd32(p + 20);
    }
}

static int parse_sr(const uint8_t *b, size_t n, unsigned count, encore_rtcp_info *out)
{
    if (n < 4 + SENDER_INFO + (size_t)count * REPORT_BLOCK)
        return -EINVAL;
    uint32_t ssrc = rd32(b);
    note_sender(out, ssrc);
    if (!out->has_sr) {
        out->has_sr = true;
        out->sr_ssrc = ssrc;
        out->sr_ntp = ((uint64_t)rd32(b + 4) << 32) | rd32(b + 8);
        out->sr_rtp_ts = rd32(b + 12);
        out->sr_packets = rd32(b + 16);
        out->sr_octets = rd32(b + 20);
    }
    parse_reports(b + 4 + SENDER_INFO, count, out);
    return 0;
}

static int parse_rr(const uint8_t *b, size_t n, unsigned count, encore_rtcp_info *out)
{
    if (n < 4 + (size_t)count * REPORT_BLOCK)
        return -EINVAL;
    note_sender(out, rd32(b));
    parse_reports(b + 4, count, out);
    return 0;
}

/* Looks for the first CNAME in the SDES chunks; stops quietly at anything malformed. */
static void parse_sdes(const uint8_t *b, size_t n, unsigned count, encore_rtcp_info *out)
{
    size_t i = 0;
    for (unsigned c = 0; c < count && !out->cname; c++) {
        if (n - i < 4)
            return;
        uint32_t ssrc = rd32(b + i);
        i += 4;
        for (;;) {
            if (i >= n)
                return;
            uint8_t type = b[i];
            if (type == 0) {
                /* End of the item list, then padding up to the next 32-bit boundary. */
                i = (i + 4) & ~(size_t)3;
                break;
            }
            if (n - i < 2 || b[i + 1] > n - i - 2)
                return;
            size_t l = b[i + 1];
            if (type == SDES_CNAME && !out->cname) {
                out->cname_ssrc = ssrc;
                out->cname = b + i + 2;
                out->cname_len = l;
            }
            i += 2 + l;
        }
        if (i > n)
            return;
    }
}

static int parse_rtpfb(const uint8_t *b, size_t n, unsigned fmt, encore_rtcp_info *out)
{
    if (n < 8)
        return -EINVAL;
    note_sender(out, rd32(b));
    if (fmt != FMT_NACK)
        return 0; /* transport-wide CC and others: skipped */
    uint32_t media = rd32(b + 4);
    if ((n - 8) % 4 != 0 || n == 8)
        return -EINVAL;
    bool first = out->n_nacks == 0 && out->n_nacks_dropped == 0;
    if (first)
        out->nack_ssrc = media;
    bool keep = media == out->nack_ssrc;
    for (size_t i = 8; i < n; i += 4) {
        uint16_t pid = rd16(b + i);
        uint16_t blp = rd16(b + i + 2);
        for (int bit = -1; bit < 16; bit++) {
            if (bit >= 0 && !(blp & (1u << bit)))
                continue;
            uint16_t seq = (uint16_t)(pid + 1 + bit);
            if (!keep || out->n_nacks == ENCORE_RTCP_MAX_NACKS)
                out->n_nacks_dropped++;
            else
                out->nacks[out->n_nacks++] = seq;
        }
    }
    return 0;
}

static int parse_psfb(const uint8_t *b, size_t n, unsigned fmt, encore_rtcp_info *out)
{
    if (n < 8)
        return -EINVAL;
    note_sender(out, rd32(b));
    if (fmt == FMT_PLI) {
        if (!out->pli && !out->fir)
            out->pli_ssrc = rd32(b + 4);
        out->pli = true;
    } else if (fmt == FMT_FIR) {
        /* FCI entries: SSRC(4) seq nr(1) reserved(3). */
        if (n < 16 || (n - 8) % 8 != 0)
            return -EINVAL;
        if (!out->pli && !out->fir)
            out->pli_ssrc = rd32(b + 8);
        out->fir = true;
    }
    /* REMB (FMT 15 with "REMB" application data) and others: skipped. */
    return 0;
}

/* Parses the body b[0..n) (after the 4-byte header, padding removed) of one packet. */
static int parse_one(uint8_t pt, unsigned count, const uint8_t *b, size_t n, encore_rtcp_info *out)
{
    switch (pt) {
    case ENCORE_RTCP_SR:
        out->n_sr++;
        return parse_sr(b, n, count, out);
    case ENCORE_RTCP_RR:
        out->n_rr++;
        return parse_rr(b, n, count, out);
    case ENCORE_RTCP_SDES:
        out->n_sdes++;
        parse_sdes(b, n, count, out);
        return 0;
    case ENCORE_RTCP_BYE:
        out->n_bye++;
        if (n < 4u * count)
            return -EINVAL;
        out->bye = true;
        return 0;
    case ENCORE_RTCP_APP:
        out->n_app++;
        return n < 8 ? -EINVAL : 0;
    case ENCORE_RTCP_RTPFB:
        out->n_rtpfb++;
        return parse_rtpfb(b, n, count, out);
    case ENCORE_RTCP_PSFB:
        out->n_psfb++;
        return parse_psfb(b, n, count, out);
    case ENCORE_RTCP_XR:
        out->n_xr++;
        return 0;
    default:
        out->n_unknown++;
        return 0;
    }
}

int encore_rtcp_parse(const uint8_t *buf, size_t len, encore_rtcp_info *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (!buf || len < RTCP_HEADER)
        return -EINVAL;
    size_t off = 0;
    while (off < len) {
        if (len - off < RTCP_HEADER)
            return -EINVAL;
        const uint8_t *p = buf + off;
        if ((p[0] >> 6) != 2)
            return -EINVAL;
        size_t plen = 4 * ((size_t)rd16(p + 2) + 1);
        if (plen > len - off)
            return -EINVAL;
        size_t body = plen - RTCP_HEADER;
        if (p[0] & 0x20) {
            /* Padding: the last byte counts the padding octets, itself included. */
            uint8_t pad = p[plen - 1];
            if (pad == 0 || pad > body)
                return -EINVAL;
            body -= pad;
        }
        out->n_packets++;
        int rc = parse_one(p[1], p[0] & 0x1f, p + RTCP_HEADER, body, out);
        if (rc != 0)
            return rc;
        off += plen;
    }
    return 0;
}

/* Writes an SDES packet with one CNAME chunk at buf; returns its length or 0 if it does not fit. */
static size_t put_sdes(uint8_t *buf, size_t cap, uint32_t ssrc, const char *cname)
{
    size_t cl = strlen(cname);
    if (cl == 0 || cl > 255)
        return 0;
    /* Chunk: SSRC, CNAME item (type, length, text), at least one zero octet, padding to 4. */
    size_t chunk = (4 + 2 + cl + 1 + 3) & ~(size_t)3;
    size_t total = RTCP_HEADER + chunk;
    if (cap < total)
        return 0;
    buf[0] = 0x80 | 1;
    buf[1] = ENCORE_RTCP_SDES;
    wr16(buf + 2, (uint16_t)(total / 4 - 1));
    wr32(buf + 4, ssrc);
    buf[8] = SDES_CNAME;
    buf[9] = (uint8_t)cl;
    memcpy(buf + 10, cname, cl);
    memset(buf + 10 + cl, 0, total - 10 - cl);
    return total;
}

static void put_report(uint8_t *p, const encore_rtcp_report_block *rb)
{
    int32_t lost = rb->cumulative_lost;
    if (lost > 0x7fffff)
        lost = 0x7fffff;
    if (lost < -0x800000)
        lost = -0x800000;
    uint32_t l24 = (uint32_t)lost & 0xffffff;
    wr32(p, rb->ssrc);
    p[4] = rb->fraction_lost;
    p[5] = (uint8_t)(l24 >> 16);
    p[6] = (uint8_t)(l24 >> 8);
    p[7] = (uint8_t)l24;
    wr32(p + 8, rb->highest_seq);
    wr32(p + 12, rb->jitter);
    wr32(p + 16, rb->lsr);
    wr32(p + 20, rb->dlsr);
}

size_t encore_rtcp_build_sr(uint8_t *buf, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
                            uint32_t packets, uint32_t octets, const char *cname)
{
    const size_t sr_len = RTCP_HEADER + 4 + SENDER_INFO;
    if (!buf || cap < sr_len)
        return 0;
    buf[0] = 0x80; /* V=2, P=0, RC=0 */
    buf[1] = ENCORE_RTCP_SR;
    wr16(buf + 2, (uint16_t)(sr_len / 4 - 1));
    wr32(buf + 4, ssrc);
    wr32(buf + 8, (uint32_t)(ntp >> 32));
    wr32(buf + 12, (uint32_t)ntp);
    wr32(buf + 16, rtp_ts);
    wr32(buf + 20, packets);
    wr32(buf + 24, octets);
    if (!cname)
        return sr_len;
    size_t sdes = put_sdes(buf + sr_len, cap - sr_len, ssrc, cname);
    return sdes ? sr_len + sdes : 0;
}

size_t encore_rtcp_build_rr(uint8_t *buf, size_t cap, uint32_t sender_ssrc,
                            const encore_rtcp_report_block *rb, const char *cname)
{
    const size_t rr_len = RTCP_HEADER + 4 + (rb ? REPORT_BLOCK : 0);
    if (!buf || cap < rr_len)
        return 0;
    buf[0] = (uint8_t)(0x80 | (rb ? 1 : 0));
    buf[1] = ENCORE_RTCP_RR;
    wr16(buf + 2, (uint16_t)(rr_len / 4 - 1));
    wr32(buf + 4, sender_ssrc);
    if (rb)
        put_report(buf + 8, rb);
    if (!cname)
        return rr_len;
    size_t sdes = put_sdes(buf + rr_len, cap - rr_len, sender_ssrc, cname);
    return sdes ? rr_len + sdes : 0;
}

size_t encore_rtcp_build_nack(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                              const uint16_t *seqs, size_t n)
{
    const size_t head = RTCP_HEADER + 8;
    if (!buf || !seqs || n == 0 || cap < head + 4)
        return 0;
    size_t off = head;
    uint16_t pid = seqs[0];
    uint16_t blp = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n) {
            uint16_t d = (uint16_t)(seqs[i] - pid);
            if (d == 0)
                continue; /* the PID itself again */
            if (d <= 16) {
                blp |= (uint16_t)(1u << (d - 1));
                continue;
            }
        }
        /* Flush the current pair; then start the next one if there is one. */
        if (cap - off < 4)
            return 0;
        wr16(buf + off, pid);
        wr16(buf + off + 2, blp);
        off += 4;
        if (i < n) {
            pid = seqs[i];
            blp = 0;
        }
    }
    if (off / 4 - 1 > UINT16_MAX)
        return 0;
    buf[0] = 0x80 | FMT_NACK;
    buf[1] = ENCORE_RTCP_RTPFB;
    wr16(buf + 2, (uint16_t)(off / 4 - 1));
    wr32(buf + 4, sender_ssrc);
    wr32(buf + 8, media_ssrc);
    return off;
}
