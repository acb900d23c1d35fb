/* RTCP parsing (compound and reduced-size, RFC 3550 / 4585 / 5506) and builders for the SR, RR and
 * generic NACK packets the SFU sends. Pure functions over caller-owned buffers, callable from any
 * thread; they never allocate, log or keep state. */
#ifndef ENCORE_MEDIA_RTCP_H
#define ENCORE_MEDIA_RTCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

/* RTCP packet types. */
#define ENCORE_RTCP_SR 200
#define ENCORE_RTCP_RR 201
#define ENCORE_RTCP_SDES 202
#define ENCORE_RTCP_BYE 203
#define ENCORE_RTCP_APP 204
#define ENCORE_RTCP_RTPFB 205
#define ENCORE_RTCP_PSFB 206
#define ENCORE_RTCP_XR 207

/* Most report blocks and NACKed sequence numbers kept by one encore_rtcp_parse call. */
#define ENCORE_RTCP_MAX_REPORTS 31
#define ENCORE_RTCP_MAX_NACKS 128

/* One reception report block (RFC 3550 section 6.4.1). */
typedef struct {
    uint32_t ssrc;           /* the source this block reports on */
    uint8_t fraction_lost;   /* fixed point, lost / expected * 256 since the last report */
    int32_t cumulative_lost; /* signed 24-bit on the wire, sign-extended here */
    uint32_t highest_seq;    /* extended highest sequence number received */
    uint32_t jitter;         /* interarrival jitter in timestamp units */
    uint32_t lsr;            /* middle 32 bits of the NTP time of the last SR received, or 0 */
    uint32_t dlsr;           /* delay since that SR in 1/65536 s, or 0 */
} encore_rtcp_report_block;

/* What one RTCP datagram (after SRTCP unprotect) says. Plain data; zeroed by encore_rtcp_parse. */
typedef struct {
    /* How many packets of each type the datagram held. */
    unsigned n_packets; /* all packets */
    unsigned n_sr, n_rr, n_sdes, n_bye, n_app, n_rtpfb, n_psfb, n_xr;
    unsigned n_unknown; /* any other packet type, skipped */

    /* SSRC of the packet sender, from the first SR, RR, RTPFB or PSFB packet (0 if none). */
    uint32_t sender_ssrc;

    /* The first sender report, if any. */
    bool has_sr;
    uint32_t sr_ssrc;
    uint64_t sr_ntp; /* 64-bit NTP timestamp */
    uint32_t sr_rtp_ts;
    uint32_t sr_packets;
    uint32_t sr_octets;

    /* Report blocks of every SR and RR in order; blocks past the array are counted, not kept. */
    size_t n_reports;
    size_t n_reports_dropped;
    encore_rtcp_report_block reports[ENCORE_RTCP_MAX_REPORTS];

    /* Generic NACKs (RTPFB FMT 1) for nack_ssrc, the media SSRC of the first NACK packet, expanded
     * from PID+BLP pairs into sequence numbers in wire order (not deduplicated). Sequence numbers
     * past the array or for another media SSRC are counted in n_nacks_dropped. */
    uint32_t nack_ssrc;
    size_t n_nacks;
    size_t n_nacks_dropped;
    uint16_t nacks[ENCORE_RTCP_MAX_NACKS];

    bool pli;          /* a Picture Loss Indication (PSFB FMT 1) was seen */
    bool fir;          /* a Full Intra Request (PSFB FMT 4) was seen */
    uint32_t pli_ssrc; /* media SSRC of the first PLI or FIR entry seen */
    bool bye;          /* a BYE was seen */

    /* CNAME of the first SDES chunk that carries one, pointing into the parsed buffer (NULL if
     * none; not NUL-terminated). A malformed SDES body is skipped, not an error. */
    uint32_t cname_ssrc;
    const uint8_t *cname;
    size_t cname_len;
} encore_rtcp_info;

/* Parses one RTCP datagram, compound or reduced-size, into *out.
 * Every packet must be version 2 and its length field must fit; the lengths must walk exactly to
 * the end of buf. SR, RR, BYE and feedback packets must be long enough for what their headers
 * announce. REMB, transport-wide CC, APP, XR and unknown types are counted and skipped.
 * Returns 0, or -EINVAL when buf is NULL or shorter than 4 bytes or any of the above fails (*out
 * then holds what was read before the error). */
int encore_rtcp_parse(const uint8_t *buf, size_t len,
                      encore_rtcp_info *out) G_GNUC_WARN_UNUSED_RESULT;

/* The builders write into buf (cap bytes) and return the written length, or 0 when cap is too small
 * or an argument is invalid; buf may then be partly written. */

/* A compound packet: an SR without report blocks (ntp is a 64-bit NTP timestamp) followed by an
 * SDES with the CNAME. cname must be 1..255 bytes; NULL gives a reduced-size SR alone
 * (RFC 5506). */
size_t encore_rtcp_build_sr(uint8_t *buf, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
                            uint32_t packets, uint32_t octets, const char *cname);

/* A compound packet: an RR from sender_ssrc with the report block *rb (none when rb is NULL)
 * followed by an SDES with the CNAME (1..255 bytes; NULL omits the SDES). cumulative_lost is
 * clamped to the signed 24-bit range. */
size_t encore_rtcp_build_rr(uint8_t *buf, size_t cap, uint32_t sender_ssrc,
                            const encore_rtcp_report_block *rb, const char *cname);

/* A generic NACK (RTPFB FMT 1) for the n sequence numbers seqs (n >= 1), packed into PID+BLP pairs:
 * a number within 16 after the current pair's PID sets a BLP bit, any other starts a new pair, so
 * pass them in ascending (wrapping) order for the shortest packet. n == 0 returns 0. */
size_t encore_rtcp_build_nack(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                              const uint16_t *seqs, size_t n);

#endif
