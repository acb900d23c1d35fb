/* RTP packet parsing and in-place edits, RED primary extraction and NTP time conversion.
 * Pure functions over caller-owned buffers, safe on any thread: no allocation, no logging, no
 * state; every read is bounds-checked against the length the caller passed. */
#include "media/rtp.h"

#include <errno.h>
#include <string.h>

/* Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch). */
#define NTP_UNIX_OFFSET 2208988800ULL

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int encore_rtp_parse(const uint8_t *buf, size_t len, encore_rtp_header *out)
{
    if (!buf || !out || len < ENCORE_RTP_FIXED_HEADER)
        return -EINVAL;
    if ((buf[0] >> 6) != 2)
        return -EINVAL;

    encore_rtp_header h = {
        .version = 2,
        .padding = (buf[0] >> 5) & 1,
        .extension = (buf[0] >> 4) & 1,
        .csrc_count = buf[0] & 0x0f,
        .marker = buf[1] >> 7,
        .payload_type = buf[1] & 0x7f,
        .seq = rd16(buf + 2),
        .timestamp = rd32(buf + 4),
        .ssrc = rd32(buf + 8),
    };

    size_t off = ENCORE_RTP_FIXED_HEADER + 4u * h.csrc_count;
    if (off > len)
        return -EINVAL;
    if (h.extension) {
        if (len - off < 4)
            return -EINVAL;
        h.ext_profile = rd16(buf + off);
        size_t ext_len = 4u * rd16(buf + off + 2);
        off += 4;
        if (ext_len > len - off)
            return -EINVAL;
        h.ext_offset = off;
        h.ext_len = ext_len;
        off += ext_len;
    }
    h.header_len = off;
    h.payload_offset = off;

    size_t pad = 0;
    if (h.padding) {
        /* The last byte counts the padding, itself included (RFC 3550 section 5.1). */
        if (len == off)
            return -EINVAL;
        pad = buf[len - 1];
        if (pad == 0 || pad > len - off)
            return -EINVAL;
    }
    h.payload_len = len - off - pad;
    *out = h;
    return 0;
}

bool encore_rtp_is_rtcp(const uint8_t *buf, size_t len)
{
    if (!buf || len < 4 || (buf[0] >> 6) != 2)
        return false;
    uint8_t pt = buf[1] & 0x7f;
    return pt >= 64 && pt <= 95;
}

bool encore_rtp_looks_like_rtp(const uint8_t *buf, size_t len)
{
    return buf && len >= 1 && buf[0] >= 128 && buf[0] <= 191;
}

size_t encore_rtp_strip_extension(uint8_t *buf, size_t len)
{
    encore_rtp_header h;
    if (encore_rtp_parse(buf, len, &h) != 0 || !h.extension)
        return len;
    size_t block = h.ext_offset - 4; /* start of the 4-byte extension header */
    memmove(buf + block, buf + h.header_len, len - h.header_len);
    buf[0] &= (uint8_t)~0x10;
    return len - (h.header_len - block);
}

/* Walks a one-byte-header block. With want_id != 0 stops at that element; with want_id == 0 walks
 * to the end and reports in *used the bytes up to the end of the last element (padding excluded).
 * Returns 0 (found, or walked to the end), -ENOENT (want_id given and absent) or -EINVAL. */
static int onebyte_walk(const uint8_t *p, size_t n, uint8_t want_id, const uint8_t **data,
                        size_t *dlen, size_t *used)
{
    size_t i = 0, last_end = 0;
    while (i < n) {
        uint8_t b = p[i];
        if (b == 0) {
            i++; /* padding between or after elements */
            continue;
        }
        uint8_t id = b >> 4;
        size_t l = (size_t)(b & 0x0f) + 1;
        if (id == 15)
            break; /* reserved: RFC 8285 says to stop processing the block here */
        if (l > n - i - 1)
            return -EINVAL;
        if (want_id && id == want_id) {
            *data = p + i + 1;
            *dlen = l;
            return 0;
        }
        i += 1 + l;
        last_end = i;
    }
    if (want_id)
        return -ENOENT;
    if (i < n)
        return -EINVAL; /* an id-15 terminator: the block cannot safely be appended to */
    *used = last_end;
    return 0;
}

static int twobyte_find(const uint8_t *p, size_t n, uint8_t want_id, const uint8_t **data,
                        size_t *dlen)
{
    size_t i = 0;
    while (i < n) {
        uint8_t id = p[i];
        if (id == 0) {
            i++;
            continue;
        }
        if (n - i < 2)
            return -EINVAL;
        size_t l = p[i + 1];
        if (l > n - i - 2)
            return -EINVAL;
        if (id == want_id) {
            *data = p + i + 2;
            *dlen = l;
            return 0;
        }
        i += 2 + l;
    }
    return -ENOENT;
}

int encore_rtp_ext_find(const uint8_t *buf, const encore_rtp_header *h, uint8_t id,
                        const uint8_t **data, size_t *len)
{
    if (!buf || !h || !data || !len || id == 0)
        return -EINVAL;
    if (!h->extension)
        return -ENOENT;
    const uint8_t *p = buf + h->ext_offset;
    if (h->ext_profile == ENCORE_RTP_EXT_ONEBYTE) {
        if (id > 14)
            return -ENOENT;
        return onebyte_walk(p, h->ext_len, id, data, len, NULL);
    }
    if ((h->ext_profile & 0xfff0) == ENCORE_RTP_EXT_TWOBYTE)
        return twobyte_find(p, h->ext_len, id, data, len);
    return -EINVAL;
}

int encore_rtp_add_ext_onebyte(uint8_t *buf, size_t len, size_t cap, uint8_t id,
                               const uint8_t *data, size_t dlen, size_t *newlen)
{
    encore_rtp_header h;
    if (!data || !newlen || id < 1 || id > 14 || dlen < 1 || dlen > 16)
        return -EINVAL;
    if (encore_rtp_parse(buf, len, &h) != 0)
        return -EINVAL;

    size_t block;    /* offset of the extension data */
    size_t used = 0; /* bytes of existing elements in the block */
    size_t old_len = 0;
    size_t header_add = 0;
    if (!h.extension) {
        block = h.header_len + 4;
        header_add = 4;
    } else {
        if (h.ext_profile != ENCORE_RTP_EXT_ONEBYTE)
            return -ENOTSUP;
        const uint8_t *found;
        size_t flen;
        int rc = onebyte_walk(buf + h.ext_offset, h.ext_len, id, &found, &flen, NULL);
        if (rc == 0)
            return -EEXIST;
        if (rc != -ENOENT)
            return rc;
        rc = onebyte_walk(buf + h.ext_offset, h.ext_len, 0, NULL, NULL, &used);
        if (rc != 0)
            return rc;
        block = h.ext_offset;
        old_len = h.ext_len;
    }
    size_t new_ext = (used + 1 + dlen + 3) / 4 * 4;
    if (new_ext < old_len)
        new_ext = old_len;
    if (new_ext / 4 > UINT16_MAX)
        return -EINVAL;
    size_t grow = header_add + (new_ext - old_len);
    if (grow > cap || len > cap - grow)
        return -ENOSPC;

    /* Move the payload and padding up, then write the block (header only when new). */
    size_t tail = h.header_len;
    memmove(buf + tail + grow, buf + tail, len - tail);
    if (header_add) {
        buf[block - 4] = ENCORE_RTP_EXT_ONEBYTE >> 8;
        buf[block - 3] = ENCORE_RTP_EXT_ONEBYTE & 0xff;
        buf[0] |= 0x10;
    }
    buf[block - 2] = (uint8_t)((new_ext / 4) >> 8);
    buf[block - 1] = (uint8_t)(new_ext / 4);
    /* Existing elements end at block + used; whatever followed was padding and is rewritten. */
    uint8_t *e = buf + block + used;
    e[0] = (uint8_t)((id << 4) | (dlen - 1));
    memcpy(e + 1, data, dlen);
    memset(e + 1 + dlen, 0, new_ext - used - 1 - dlen);
    *newlen = len + grow;
    return 0;
}

int encore_red_primary(const uint8_t *payload, size_t len, uint8_t *pt, size_t *off, size_t *plen)
{
    if (!payload || !pt || !off || !plen)
        return -EINVAL;
    size_t i = 0, redundant = 0;
    /* Headers with the F bit set are 4 bytes: F(1) PT(7) ts offset(14) length(10). */
    while (i < len && (payload[i] & 0x80)) {
        if (len - i < 4)
            return -EINVAL;
        redundant += ((size_t)(payload[i + 2] & 0x03) << 8) | payload[i + 3];
        i += 4;
    }
    if (i >= len)
        return -EINVAL; /* no final 1-byte header */
    uint8_t primary_pt = payload[i] & 0x7f;
    i += 1;
    if (redundant > len - i)
        return -EINVAL;
    *pt = primary_pt;
    *off = i + redundant;
    *plen = len - *off;
    return 0;
}

uint64_t encore_ntp_from_unix_us(int64_t unix_us)
{
    /* Floor division so that instants before 1970 still get a fraction in [0, 1). */
    int64_t sec = unix_us / 1000000;
    int64_t rem = unix_us % 1000000;
    if (rem < 0) {
        rem += 1000000;
        sec -= 1;
    }
    uint64_t frac = (((uint64_t)rem << 32) + 500000) / 1000000;
    uint64_t ntp_sec = ((uint64_t)sec + NTP_UNIX_OFFSET) & 0xffffffffULL;
    return (ntp_sec << 32) | frac;
}

uint32_t encore_ntp_middle32(uint64_t ntp)
{
    return (uint32_t)(ntp >> 16);
}
