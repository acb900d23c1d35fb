/* SRTP decryption of received RTP for load-generator listeners (see srtp-rx.h): the RFC 3711 key
 * derivation, AES-128-GCM per RFC 7714 and AES-128-CM + HMAC-SHA1-80 per RFC 3711, on OpenSSL EVP.
 * Used on the listener's thread only; the per-packet path reuses one cipher context and never
 * allocates. */
#include "config.h"

#include "tests/load/srtp-rx.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include <glib.h>

#define GCM_TAG 16
#define CM_TAG 10

struct lg_srtp_rx {
    encore_srtp_profile profile;
    uint8_t salt[14];    /* session salt: 12 bytes used for GCM, 14 for CM */
    uint8_t auth[20];    /* session authentication key (CM only) */
    EVP_CIPHER_CTX *ctx; /* keyed with the session encryption key */

    /* Rollover counter estimation (RFC 3711 section 3.3.1) for the one SSRC we receive. */
    bool started;
    uint16_t s_l; /* highest sequence number authenticated so far */
    uint32_t roc;
};

/* RFC 3711 section 4.3.1 with a key derivation rate of 0: AES-CM keystream of the master key,
 * started at (master salt, padded to 14 bytes, with the label XORed into byte 7) || 0x0000. */
static bool kdf(const uint8_t *master_key, const uint8_t *master_salt, size_t salt_len,
                uint8_t label, uint8_t *out, size_t n)
{
    uint8_t iv[16] = {0};
    memcpy(iv, master_salt, salt_len);
    iv[7] ^= label;
    uint8_t zeros[32] = {0};
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0;
    bool ok = c && n <= sizeof zeros &&
              EVP_EncryptInit_ex(c, EVP_aes_128_ctr(), NULL, master_key, iv) == 1 &&
              EVP_EncryptUpdate(c, out, &outl, zeros, (int)n) == 1 && outl == (int)n;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

lg_srtp_rx *lg_srtp_rx_new(const encore_srtp_keys *keys)
{
    bool gcm = keys->profile == ENCORE_SRTP_AEAD_AES_128_GCM;
    if (!gcm && keys->profile != ENCORE_SRTP_AES128_CM_SHA1_80)
        return NULL;
    if (keys->key_len != 16 || keys->salt_len != (gcm ? 12u : 14u))
        return NULL;
    lg_srtp_rx *rx = g_new0(lg_srtp_rx, 1);
    rx->profile = keys->profile;
    uint8_t key[16];
    bool ok =
        kdf(keys->remote_key, keys->remote_salt, keys->salt_len, 0x00, key, sizeof key) &&
        kdf(keys->remote_key, keys->remote_salt, keys->salt_len, 0x02, rx->salt, keys->salt_len) &&
        (gcm || kdf(keys->remote_key, keys->remote_salt, keys->salt_len, 0x01, rx->auth, 20));
    rx->ctx = EVP_CIPHER_CTX_new();
    ok = ok && rx->ctx &&
         EVP_DecryptInit_ex(rx->ctx, gcm ? EVP_aes_128_gcm() : EVP_aes_128_ctr(), NULL, key,
                            NULL) == 1;
    OPENSSL_cleanse(key, sizeof key);
    if (!ok) {
        lg_srtp_rx_free(rx);
        return NULL;
    }
    return rx;
}

void lg_srtp_rx_free(lg_srtp_rx *rx)
{
    if (!rx)
        return;
    EVP_CIPHER_CTX_free(rx->ctx);
    OPENSSL_cleanse(rx, sizeof *rx);
    g_free(rx);
}

/* The RTP header length (fixed part, CSRCs, extension), or 0 when it does not fit in len. */
static size_t header_len(const uint8_t *buf, size_t len)
{
    if (len < 12 || (buf[0] >> 6) != 2)
        return 0;
    size_t h = 12 + 4 * (size_t)(buf[0] & 0x0f);
    if (buf[0] & 0x10) {
        if (len < h + 4)
            return 0;
        h += 4 + 4 * (size_t)((buf[h + 2] << 8) | buf[h + 3]);
    }
    return h <= len ? h : 0;
}

/* The ROC to use for seq (RFC 3711 appendix A). */
static uint32_t guess_roc(const lg_srtp_rx *rx, uint16_t seq)
{
    if (!rx->started)
        return 0;
    if (rx->s_l < 32768)
        return (seq - rx->s_l > 32768) ? rx->roc - 1 : rx->roc;
    return (rx->s_l - 32768 > seq) ? rx->roc + 1 : rx->roc;
}

static void update_roc(lg_srtp_rx *rx, uint16_t seq, uint32_t v)
{
    if (!rx->started) {
        rx->started = true;
        rx->s_l = seq;
        rx->roc = v;
    } else if (v == rx->roc + 1 || (v == rx->roc && seq > rx->s_l)) {
        rx->s_l = seq;
        rx->roc = v;
    }
}

static int unprotect_gcm(lg_srtp_rx *rx, uint8_t *buf, size_t *len, size_t h, uint16_t seq,
                         uint32_t ssrc, uint32_t roc)
{
    if (*len < h + GCM_TAG)
        return -1;
    uint8_t iv[12] = {0,
                      0,
                      (uint8_t)(ssrc >> 24),
                      (uint8_t)(ssrc >> 16),
                      (uint8_t)(ssrc >> 8),
                      (uint8_t)ssrc,
                      (uint8_t)(roc >> 24),
                      (uint8_t)(roc >> 16),
                      (uint8_t)(roc >> 8),
                      (uint8_t)roc,
                      (uint8_t)(seq >> 8),
                      (uint8_t)seq};
    for (int i = 0; i < 12; i++)
        iv[i] ^= rx->salt[i];
    size_t ct_len = *len - h - GCM_TAG;
    int outl = 0;
    if (EVP_DecryptInit_ex(rx->ctx, NULL, NULL, NULL, iv) != 1 ||
        EVP_DecryptUpdate(rx->ctx, NULL, &outl, buf, (int)h) != 1 ||
        EVP_DecryptUpdate(rx->ctx, buf + h, &outl, buf + h, (int)ct_len) != 1 ||
        EVP_CIPHER_CTX_ctrl(rx->ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG, buf + h + ct_len) != 1 ||
        EVP_DecryptFinal_ex(rx->ctx, buf + h + (size_t)outl, &outl) != 1)
        return -1;
    *len = h + ct_len;
    return 0;
}

static int unprotect_cm(lg_srtp_rx *rx, uint8_t *buf, size_t *len, size_t h, uint16_t seq,
                        uint32_t ssrc, uint32_t roc)
{
    if (*len < h + CM_TAG)
        return -1;
    size_t auth_len = *len - CM_TAG;
    /* The tag covers the packet followed by the ROC; the 10 tag bytes are the place for it. */
    uint8_t tag[CM_TAG];
    memcpy(tag, buf + auth_len, CM_TAG);
    buf[auth_len] = (uint8_t)(roc >> 24);
    buf[auth_len + 1] = (uint8_t)(roc >> 16);
    buf[auth_len + 2] = (uint8_t)(roc >> 8);
    buf[auth_len + 3] = (uint8_t)roc;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    if (!HMAC(EVP_sha1(), rx->auth, sizeof rx->auth, buf, auth_len + 4, mac, &mac_len) ||
        CRYPTO_memcmp(mac, tag, CM_TAG) != 0)
        return -1;
    uint8_t iv[16] = {0};
    memcpy(iv, rx->salt, 14);
    iv[4] ^= (uint8_t)(ssrc >> 24);
    iv[5] ^= (uint8_t)(ssrc >> 16);
    iv[6] ^= (uint8_t)(ssrc >> 8);
    iv[7] ^= (uint8_t)ssrc;
    iv[8] ^= (uint8_t)(roc >> 24);
    iv[9] ^= (uint8_t)(roc >> 16);
    iv[10] ^= (uint8_t)(roc >> 8);
    iv[11] ^= (uint8_t)roc;
    iv[12] ^= (uint8_t)(seq >> 8);
    iv[13] ^= (uint8_t)seq;
    int outl = 0;
    if (EVP_DecryptInit_ex(rx->ctx, NULL, NULL, NULL, iv) != 1 ||
        EVP_DecryptUpdate(rx->ctx, buf + h, &outl, buf + h, (int)(auth_len - h)) != 1)
        return -1;
    *len = auth_len;
    return 0;
}

int lg_srtp_rx_unprotect(lg_srtp_rx *rx, uint8_t *buf, size_t *len)
{
    size_t h = header_len(buf, *len);
    if (h == 0)
        return -1;
    uint16_t seq = (uint16_t)(buf[2] << 8 | buf[3]);
    uint32_t ssrc =
        (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 | (uint32_t)buf[10] << 8 | buf[11];
    uint32_t roc = guess_roc(rx, seq);
    int rc = rx->profile == ENCORE_SRTP_AEAD_AES_128_GCM
                 ? unprotect_gcm(rx, buf, len, h, seq, ssrc, roc)
                 : unprotect_cm(rx, buf, len, h, seq, ssrc, roc);
    if (rc == 0)
        update_roc(rx, seq, roc);
    return rc;
}
