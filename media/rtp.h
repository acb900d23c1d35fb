/* RTP packet views and in-place edits (RFC 3550, RFC 8285 header extensions, RFC 2198 RED) and NTP
 * time helpers. Pure functions over caller-owned buffers, callable from any thread; they never
 * allocate, log or keep state, so they can be fuzzed directly. */
#ifndef ENCORE_MEDIA_RTP_H
#define ENCORE_MEDIA_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

/* Size of the fixed RTP header (without CSRCs or extension). */
#define ENCORE_RTP_FIXED_HEADER 12
/* RFC 8285 profile values of the extension block. */
#define ENCORE_RTP_EXT_ONEBYTE 0xBEDE
#define ENCORE_RTP_EXT_TWOBYTE 0x1000 /* the low 4 bits ("appbits") may be anything */

/* A parsed view of one RTP packet. Offsets index the buffer that was parsed. */
typedef struct {
    uint8_t version;      /* always 2 after a successful parse */
    uint8_t padding;      /* P bit (0 or 1) */
    uint8_t extension;    /* X bit (0 or 1) */
    uint8_t marker;       /* M bit (0 or 1) */
    uint8_t payload_type; /* 0..127 */
    uint8_t csrc_count;   /* 0..15 */
    uint16_t seq;
    uint32_t timestamp;
    uint32_t ssrc;
    /* Bytes before the payload: 12 + 4 * csrc_count + (extension ? 4 + ext_len : 0). */
    size_t header_len;
    size_t payload_offset; /* equals header_len */
    size_t payload_len;    /* payload bytes, excluding padding */
    uint16_t ext_profile;  /* "defined by profile" field; 0 when there is no extension */
    size_t ext_offset;     /* offset of the extension data (after its 4-byte header); 0 if none */
    size_t ext_len;        /* extension data bytes (a multiple of 4, may be 0); 0 if none */
} encore_rtp_header;

/* Parses the RTP packet buf[0..len) into *out (which is fully written on success).
 * Returns 0, or -EINVAL when: buf is NULL or shorter than 12 bytes, the version is not 2, the CSRC
 * list or the extension block runs past the end, or the P bit is set and the padding count (last
 * byte) is 0 or larger than what follows the header. *out is unspecified on error. */
int encore_rtp_parse(const uint8_t *buf, size_t len,
                     encore_rtp_header *out) G_GNUC_WARN_UNUSED_RESULT;

/* RFC 5761 demultiplexing on a muxed RTP/RTCP port: true when len >= 4, the version is 2 and the
 * second byte, marker bit masked, is 64..95 (RTCP packet types 192..223). */
bool encore_rtp_is_rtcp(const uint8_t *buf, size_t len);

/* RFC 7983 demultiplexing of one UDP payload: true when the first byte is 128..191 (RTP or RTCP,
 * as opposed to STUN 0..3 or DTLS 20..63). False for an empty buffer. */
bool encore_rtp_looks_like_rtp(const uint8_t *buf, size_t len);

/* In-place field writers. buf must hold at least the fixed 12-byte header (already parsed). */
static inline void encore_rtp_set_seq(uint8_t *buf, uint16_t seq)
{
    buf[2] = (uint8_t)(seq >> 8);
    buf[3] = (uint8_t)seq;
}

static inline void encore_rtp_set_timestamp(uint8_t *buf, uint32_t ts)
{
    buf[4] = (uint8_t)(ts >> 24);
    buf[5] = (uint8_t)(ts >> 16);
    buf[6] = (uint8_t)(ts >> 8);
    buf[7] = (uint8_t)ts;
}

static inline void encore_rtp_set_ssrc(uint8_t *buf, uint32_t ssrc)
{
    buf[8] = (uint8_t)(ssrc >> 24);
    buf[9] = (uint8_t)(ssrc >> 16);
    buf[10] = (uint8_t)(ssrc >> 8);
    buf[11] = (uint8_t)ssrc;
}

/* Sets the 7-bit payload type and keeps the marker bit. */
static inline void encore_rtp_set_payload_type(uint8_t *buf, uint8_t pt)
{
    buf[1] = (uint8_t)((buf[1] & 0x80) | (pt & 0x7f));
}

/* Sets or clears the marker bit. */
static inline void encore_rtp_set_marker(uint8_t *buf, bool marker)
{
    buf[1] = (uint8_t)((buf[1] & 0x7f) | (marker ? 0x80 : 0));
}

/* Removes the header extension block (its 4-byte header and data) from the packet in buf[0..len),
 * clears the X bit and moves the payload and padding down. Returns the new length. A packet that
 * does not parse or has no extension is left untouched and len is returned. */
size_t encore_rtp_strip_extension(uint8_t *buf, size_t len) G_GNUC_WARN_UNUSED_RESULT;

/* Finds the first RFC 8285 element with the given id in the extension of the packet buf, parsed
 * into *h by encore_rtp_parse (h must describe this very buffer). On success *data points into buf
 * at the element's data and *len is its length (1..16 for one-byte elements, 0..255 for two-byte).
 * Returns 0, -ENOENT when the packet has no extension or no such element (an id above 14 never
 * matches in a one-byte block), -EINVAL when id is 0, the profile is neither one-byte (0xBEDE) nor
 * two-byte (0x100X), or an element before the match runs past the end of the block. */
int encore_rtp_ext_find(const uint8_t *buf, const encore_rtp_header *h, uint8_t id,
                        const uint8_t **data, size_t *len) G_GNUC_WARN_UNUSED_RESULT;

/* Adds one one-byte-header element (RFC 8285) with the given id and dlen bytes of data to the
 * packet buf[0..len), whose buffer holds cap bytes. A packet without extension gets a new 0xBEDE
 * block; an existing 0xBEDE block gets the element after its last element, growing by whole 32-bit
 * words only when its trailing padding is too short. The payload and padding move up; *newlen
 * receives the new length. data must not point into buf. On error buf is unchanged.
 * Returns 0, or:
 *   -EINVAL  buf does not parse, id is not 1..14, dlen is not 1..16, data is NULL, or an existing
 *            one-byte block is malformed (an element runs past it, or an id-15 terminator);
 *   -EEXIST  the block already holds an element with this id;
 *   -ENOTSUP the packet carries an extension with another profile;
 *   -ENOSPC  cap is too small for the result. */
int encore_rtp_add_ext_onebyte(uint8_t *buf, size_t len, size_t cap, uint8_t id,
                               const uint8_t *data, size_t dlen,
                               size_t *newlen) G_GNUC_WARN_UNUSED_RESULT;

/* Finds the primary (last) block of an RFC 2198 RED payload so that a listener which did not
 * negotiate RED can be sent the plain codec payload. On success *pt is the primary block's payload
 * type and the primary data is payload[*off .. *off + *plen) (*plen may be 0).
 * Returns 0, or -EINVAL when the block headers are truncated or the redundant blocks' lengths run
 * past the end of the payload. */
int encore_red_primary(const uint8_t *payload, size_t len, uint8_t *pt, size_t *off,
                       size_t *plen) G_GNUC_WARN_UNUSED_RESULT;

/* Converts microseconds since the Unix epoch to a 64-bit NTP timestamp: seconds since 1900 in the
 * high 32 bits (modulo 2^32: NTP era 1 starts in 2036), the fraction rounded to the nearest
 * 2^-32 s. */
uint64_t encore_ntp_from_unix_us(int64_t unix_us);

/* The middle 32 bits of an NTP timestamp (16.16 fixed point seconds), as used by RTCP LSR/DLSR. */
uint32_t encore_ntp_middle32(uint64_t ntp);

#endif
