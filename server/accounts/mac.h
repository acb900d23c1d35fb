/* HMAC-SHA256 (OpenSSL 3 EVP_MAC) and constant-time comparison: the one MAC that tokens and
 * webhook signatures share, so that both are checked against RFC 4231 through the same code.
 * Thread-safe, no state of its own; it must not be used to compare anything but fixed-size MACs. */
#ifndef ENCORE_ACCOUNTS_MAC_H
#define ENCORE_ACCOUNTS_MAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of an HMAC-SHA256 tag. */
#define ENCORE_MAC_LEN 32

/* One piece of the message: the MAC is computed over the pieces in order, as if concatenated. */
typedef struct {
    const void *data;
    size_t len;
} encore_mac_part;

/* Computes HMAC-SHA256 with key[0..key_len) over the concatenation of parts[0..n) into
 * out[0..ENCORE_MAC_LEN). key_len must be at least 1 (HMAC itself allows longer-than-block keys,
 * which it hashes first). A part may have len 0 (its data is then not read).
 * Returns 0, or -1 when key_len is 0 or OpenSSL fails (out is then zeroed). */
int encore_mac_sha256(const uint8_t *key, size_t key_len, const encore_mac_part *parts, size_t n,
                      uint8_t out[ENCORE_MAC_LEN]);

/* True when a[0..ENCORE_MAC_LEN) equals b[0..ENCORE_MAC_LEN); the time taken does not depend on
 * where they differ (CRYPTO_memcmp). */
bool encore_mac_equal(const uint8_t *a, const uint8_t *b);

#endif /* ENCORE_ACCOUNTS_MAC_H */
