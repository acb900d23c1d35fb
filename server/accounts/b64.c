/* Strict unpadded base64 (standard and URL-safe alphabets) and lowercase hex for tokens, password
 * strings and webhook signatures. Pure functions for any thread: no state, no allocation, no
 * logging. Decoders accept exactly one spelling of each byte string. */
#include "server/accounts/b64.h"

static const char std_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of c in the alphabet, or -1. */
static int b64_value(encore_b64_alphabet alphabet, unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (alphabet == ENCORE_B64_URL) {
        if (c == '-')
            return 62;
        if (c == '_')
            return 63;
    } else {
        if (c == '+')
            return 62;
        if (c == '/')
            return 63;
    }
    return -1;
}

int encore_b64_encode(encore_b64_alphabet alphabet, const uint8_t *src, size_t len, char *out,
                      size_t cap, size_t *out_len)
{
    const char *chars = alphabet == ENCORE_B64_URL ? url_chars : std_chars;
    if (len > (SIZE_MAX - 4) / 4 * 3 || cap < ENCORE_B64_ENCODED_LEN(len) + 1) {
        if (cap > 0)
            out[0] = '\0';
        return ENCORE_B64_ENOSPACE;
    }
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        out[o++] = chars[(v >> 18) & 63];
        out[o++] = chars[(v >> 12) & 63];
        out[o++] = chars[(v >> 6) & 63];
        out[o++] = chars[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)src[i] << 16;
        out[o++] = chars[(v >> 18) & 63];
        out[o++] = chars[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8;
        out[o++] = chars[(v >> 18) & 63];
        out[o++] = chars[(v >> 12) & 63];
        out[o++] = chars[(v >> 6) & 63];
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return 0;
}

int encore_b64_decode(encore_b64_alphabet alphabet, const char *src, size_t len, uint8_t *out,
                      size_t cap, size_t *out_len)
{
    if (len % 4 == 1)
        return ENCORE_B64_EINVALID;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(alphabet, (unsigned char)src[i]);
        if (v < 0)
            return ENCORE_B64_EINVALID;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o < cap)
                out[o] = (uint8_t)(acc >> bits);
            o++;
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits (2 or 4) carry no data: a canonical encoding has them zero. */
    if (acc != 0)
        return ENCORE_B64_EINVALID;
    if (need > cap)
        return ENCORE_B64_ENOSPACE;
    if (out_len)
        *out_len = o;
    return 0;
}

int encore_hex_encode(const uint8_t *src, size_t len, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    if (len > (SIZE_MAX - 1) / 2 || cap < 2 * len + 1) {
        if (cap > 0)
            out[0] = '\0';
        return ENCORE_B64_ENOSPACE;
    }
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[src[i] >> 4];
        out[2 * i + 1] = digits[src[i] & 15];
    }
    out[2 * len] = '\0';
    return 0;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int encore_hex_decode(const char *src, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    if (len % 2 != 0)
        return ENCORE_B64_EINVALID;
    for (size_t i = 0; i < len; i++)
        if (hex_value((unsigned char)src[i]) < 0)
            return ENCORE_B64_EINVALID;
    if (len / 2 > cap)
        return ENCORE_B64_ENOSPACE;
    for (size_t i = 0; i < len / 2; i++)
        out[i] = (uint8_t)(hex_value((unsigned char)src[2 * i]) << 4 |
                           hex_value((unsigned char)src[2 * i + 1]));
    if (out_len)
        *out_len = len / 2;
    return 0;
}
