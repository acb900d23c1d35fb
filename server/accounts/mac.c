/* HMAC-SHA256 over a list of message pieces, and constant-time tag comparison, on OpenSSL 3's
 * EVP_MAC. Runs on any thread (each call has its own context); keeps no state and never logs. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "server/accounts/mac.h"

int encore_mac_sha256(const uint8_t *key, size_t key_len, const encore_mac_part *parts, size_t n,
                      uint8_t out[ENCORE_MAC_LEN])
{
    int rc = -1;
    size_t out_len = 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    memset(out, 0, ENCORE_MAC_LEN);
    if (!key || key_len == 0)
        return -1;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac)
        return -1;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    if (!ctx)
        goto out_free_mac;
    if (!EVP_MAC_init(ctx, key, key_len, params))
        goto out_free_ctx;
    for (size_t i = 0; i < n; i++)
        if (parts[i].len > 0 && !EVP_MAC_update(ctx, parts[i].data, parts[i].len))
            goto out_free_ctx;
    if (!EVP_MAC_final(ctx, out, &out_len, ENCORE_MAC_LEN) || out_len != ENCORE_MAC_LEN)
        goto out_free_ctx;
    rc = 0;
out_free_ctx:
    EVP_MAC_CTX_free(ctx);
out_free_mac:
    EVP_MAC_free(mac);
    if (rc != 0)
        OPENSSL_cleanse(out, ENCORE_MAC_LEN);
    return rc;
}

bool encore_mac_equal(const uint8_t *a, const uint8_t *b)
{
    return CRYPTO_memcmp(a, b, ENCORE_MAC_LEN) == 0;
}
