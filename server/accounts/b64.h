/* Strict text encodings shared by the accounts modules: base64 with the standard (RFC 4648 §4)
 * or the URL-safe alphabet (§5), never padded, and lowercase hex. Pure functions callable from any
 * thread; they keep no state, never allocate and never log. */
#ifndef ENCORE_ACCOUNTS_B64_H
#define ENCORE_ACCOUNTS_B64_H

#include <stddef.h>
#include <stdint.h>

/* Which 64-character alphabet: STD ends in "+/" (PHC password strings), URL in "-_" (tokens). */
typedef enum {
    ENCORE_B64_STD,
    ENCORE_B64_URL,
} encore_b64_alphabet;

/* Return values: 0 or one of these. */
typedef enum {
    ENCORE_B64_EINVALID = -1, /* a character outside the alphabet, padding, a length that no
                                 byte string encodes to, or non-zero unused bits */
    ENCORE_B64_ENOSPACE = -2, /* the output buffer is too small */
} encore_b64_error;

/* Characters that n bytes encode to (no padding, no NUL). */
#define ENCORE_B64_ENCODED_LEN(n) (((n) / 3) * 4 + (((n) % 3) ? ((n) % 3) + 1 : 0))

/* Encodes src[0..len) into out and NUL-terminates it. out_len (may be NULL) receives the number of
 * characters without the NUL. Returns 0, or ENCORE_B64_ENOSPACE when cap is smaller than
 * ENCORE_B64_ENCODED_LEN(len) + 1 (out is then left an empty string when cap > 0). */
int encore_b64_encode(encore_b64_alphabet alphabet, const uint8_t *src, size_t len, char *out,
                      size_t cap, size_t *out_len);

/* Decodes exactly src[0..len) (need not be NUL-terminated). Strict: only the 64 characters of the
 * alphabet, no '=' padding, no whitespace, len % 4 != 1, and the bits of the last character that
 * carry no data must be zero, so every byte string has exactly one accepted encoding. An empty
 * input decodes to zero bytes. Returns 0 with *out_len set, ENCORE_B64_EINVALID, or
 * ENCORE_B64_ENOSPACE when the decoded bytes do not fit in cap (out is then unspecified). */
int encore_b64_decode(encore_b64_alphabet alphabet, const char *src, size_t len, uint8_t *out,
                      size_t cap, size_t *out_len);

/* Encodes src[0..len) as lowercase hex into out and NUL-terminates it. Returns 0, or
 * ENCORE_B64_ENOSPACE when cap < 2 * len + 1. */
int encore_hex_encode(const uint8_t *src, size_t len, char *out, size_t cap);

/* Decodes exactly src[0..len) of lowercase hex ("0-9a-f" only, even length). Returns 0 with
 * *out_len set, ENCORE_B64_EINVALID, or ENCORE_B64_ENOSPACE when len / 2 > cap. */
int encore_hex_decode(const char *src, size_t len, uint8_t *out, size_t cap, size_t *out_len);

#endif /* ENCORE_ACCOUNTS_B64_H */
