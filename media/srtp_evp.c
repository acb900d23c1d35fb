/* SRTP/SRTCP protect on OpenSSL 3 (see srtp_evp.h): key derivation, libsrtp's packet index
 * estimate per SSRC, AES-128-GCM or AES-128-CTR through one EVP_CIPHER_CTX per session key kept
 * for the life of the sender, and HMAC-SHA1 from precomputed inner and outer states. Runs on the
 * sending peer's thread; protect never allocates, never logs, never blocks. */

/* HMAC-SHA1 uses OpenSSL's SHA1_Init/Update/Final, deprecated in 3.0 but present in every 3.x and
 * backed by the same SHA-NI/AVX2 code as EVP: OpenSSL 3.0 frees and reallocates a provider digest
 * context on every EVP_DigestInit_ex2, EVP_MAC_init and EVP_MD_CTX_copy_ex (measured: two heap
 * allocations per HMAC, and 430 instead of 220 ns for a 136-byte message), whereas a SHA_CTX is a
 * plain struct that can hold the keyed state (RFC 2104 section 4) and be copied per packet. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "config.h"

#include "media/srtp_evp.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#define RTP_HEADER 12
#define RTCP_HEADER 8
#define SRTCP_INDEX_LEN 4
#define SRTCP_E_FLAG 0x80000000u
#define SRTCP_MAX_INDEX 0x7fffffffu
#define GCM_TAG 16
#define GCM_IV 12
#define CM_TAG 10
#define CM_SALT 14
#define GCM_SALT 12
#define MAX_PACKET 65535
/* The replay window our libsrtp sender had (srtp.c's 1024 for both directions): libsrtp's protect
 * refuses an index this far or farther behind the newest one of its SSRC, and so do we. */
#define TX_WINDOW 1024
/* RFC 3711 section 9.2 / libsrtp's srtp_key_limit: at most 2^48 - 1 RTP packets per key. */
#define KEY_LIMIT 0xffffffffffffull

/* The state of one SSRC, as libsrtp keeps it in a stream. */
typedef struct {
    uint32_t ssrc;
    /* The last SRTCP index used: 0 before the first RTCP packet, then 1, 2, ... */
    uint32_t rtcp_index;
    /* libsrtp's srtp_rdbx index: the newest packet index protected so far, ROC << 16 | SEQ
     * (48 bits), 0 before the first RTP packet. */
    uint64_t index;
} tx_stream;

/* What one session key (RTP's or RTCP's) needs per packet. */
typedef struct {
    /* AES-128-GCM or AES-128-CTR, keyed once; each packet only sets its IV. */
    EVP_CIPHER_CTX *cipher;
    uint8_t salt[CM_SALT];
    /* CM only: SHA-1 after absorbing (auth key ^ ipad), and after (auth key ^ opad). */
    SHA_CTX hmac_inner;
    SHA_CTX hmac_outer;
} tx_keys;

struct encore_srtp_evp {
    bool gcm;
    tx_keys rtp;
    tx_keys rtcp;
    /* RTP packets that may still be protected under this key. */
    uint64_t packets_left;
    size_t n_streams;
    tx_stream streams[ENCORE_SRTP_EVP_MAX_STREAMS];
};

static GOnce evp_init_once = G_ONCE_INIT;
/* Fetched once and never freed: fetching per session takes OpenSSL's global store lock. */
static EVP_CIPHER *aes_128_gcm;
static EVP_CIPHER *aes_128_ctr;

static gpointer evp_init_cb(gpointer data)
{
    aes_128_gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    aes_128_ctr = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL);
    return GINT_TO_POINTER(aes_128_gcm && aes_128_ctr ? 1 : -1);
}

int encore_srtp_evp_global_init(void)
{
    int r = GPOINTER_TO_INT(g_once(&evp_init_once, evp_init_cb, NULL));
    return r == 1 ? 0 : ENCORE_SRTP_ERR_INTERNAL;
}

static inline uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- key derivation ----------------------------------------------------------------------- */

int encore_srtp_evp_kdf(const uint8_t *master_key, const uint8_t *master_salt, size_t salt_len,
                        uint8_t label, uint8_t *out, size_t out_len)
{
    if (salt_len > CM_SALT || out_len > INT_MAX || encore_srtp_evp_global_init() != 0)
        return -1;
    uint8_t iv[16] = {0};
    memcpy(iv, master_salt, salt_len);
    iv[7] ^= label;
    memset(out, 0, out_len);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0;
    bool ok = c && EVP_EncryptInit_ex2(c, aes_128_ctr, master_key, iv, NULL) == 1 &&
              EVP_EncryptUpdate(c, out, &outl, out, (int)out_len) == 1 && outl == (int)out_len;
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(iv, sizeof iv);
    if (!ok)
        OPENSSL_cleanse(out, out_len);
    return ok ? 0 : -1;
}

/* The session keys of RTP (labels 0, 1, 2) or RTCP (3, 4, 5) of one profile. */
static bool derive_one(bool gcm, const uint8_t *master_key, const uint8_t *master_salt,
                       size_t salt_len, uint8_t first_label, encore_srtp_evp_session_keys *out)
{
    memset(out, 0, sizeof *out);
    return encore_srtp_evp_kdf(master_key, master_salt, salt_len, first_label, out->enc_key,
                               sizeof out->enc_key) == 0 &&
           encore_srtp_evp_kdf(master_key, master_salt, salt_len, first_label + 2, out->salt,
                               gcm ? GCM_SALT : CM_SALT) == 0 &&
           (gcm || encore_srtp_evp_kdf(master_key, master_salt, salt_len, first_label + 1,
                                       out->auth_key, sizeof out->auth_key) == 0);
}

int encore_srtp_evp_derive(encore_srtp_profile profile, const uint8_t *master_key, size_t key_len,
                           const uint8_t *master_salt, size_t salt_len,
                           encore_srtp_evp_session_keys *rtp, encore_srtp_evp_session_keys *rtcp)
{
    size_t want_key = 0, want_salt = 0;
    if (encore_srtp_profile_lengths(profile, &want_key, &want_salt) != 0 || key_len != want_key ||
        salt_len != want_salt)
        return -1;
    bool gcm = profile == ENCORE_SRTP_AEAD_AES_128_GCM;
    if (derive_one(gcm, master_key, master_salt, salt_len, ENCORE_SRTP_LABEL_RTP_ENCRYPTION, rtp) &&
        derive_one(gcm, master_key, master_salt, salt_len, ENCORE_SRTP_LABEL_RTCP_ENCRYPTION, rtcp))
        return 0;
    OPENSSL_cleanse(rtp, sizeof *rtp);
    OPENSSL_cleanse(rtcp, sizeof *rtcp);
    return -1;
}

/* ---- set-up ------------------------------------------------------------------------------- */

static bool keys_init(tx_keys *k, bool gcm, const encore_srtp_evp_session_keys *in)
{
    memcpy(k->salt, in->salt, sizeof k->salt);
    k->cipher = EVP_CIPHER_CTX_new();
    if (!k->cipher || EVP_EncryptInit_ex2(k->cipher, gcm ? aes_128_gcm : aes_128_ctr, in->enc_key,
                                          NULL, NULL) != 1)
        return false;
    if (gcm)
        return true;
    /* HMAC (RFC 2104) with a 20-byte key: absorb the padded key once for each pass. */
    uint8_t pad[SHA_CBLOCK];
    memset(pad, 0x36, sizeof pad);
    for (size_t i = 0; i < sizeof in->auth_key; i++)
        pad[i] ^= in->auth_key[i];
    bool ok = SHA1_Init(&k->hmac_inner) == 1 && SHA1_Update(&k->hmac_inner, pad, sizeof pad) == 1;
    memset(pad, 0x5c, sizeof pad);
    for (size_t i = 0; i < sizeof in->auth_key; i++)
        pad[i] ^= in->auth_key[i];
    ok = ok && SHA1_Init(&k->hmac_outer) == 1 && SHA1_Update(&k->hmac_outer, pad, sizeof pad) == 1;
    OPENSSL_cleanse(pad, sizeof pad);
    return ok;
}

encore_srtp_evp *encore_srtp_evp_new(encore_srtp_profile profile,
                                     const encore_srtp_evp_session_keys *rtp,
                                     const encore_srtp_evp_session_keys *rtcp)
{
    if ((profile != ENCORE_SRTP_AEAD_AES_128_GCM && profile != ENCORE_SRTP_AES128_CM_SHA1_80) ||
        !rtp || !rtcp || encore_srtp_evp_global_init() != 0)
        return NULL;
    encore_srtp_evp *tx = g_new0(encore_srtp_evp, 1);
    tx->gcm = profile == ENCORE_SRTP_AEAD_AES_128_GCM;
    tx->packets_left = KEY_LIMIT;
    if (!keys_init(&tx->rtp, tx->gcm, rtp) || !keys_init(&tx->rtcp, tx->gcm, rtcp)) {
        encore_srtp_evp_free(tx);
        return NULL;
    }
    return tx;
}

void encore_srtp_evp_free(encore_srtp_evp *tx)
{
    if (!tx)
        return;
    EVP_CIPHER_CTX_free(tx->rtp.cipher); /* the provider wipes the key schedule */
    EVP_CIPHER_CTX_free(tx->rtcp.cipher);
    OPENSSL_cleanse(tx, sizeof *tx);
    g_free(tx);
}

/* ---- per packet --------------------------------------------------------------------------- */

/* The stream of ssrc, made on first use like libsrtp's clone of its template; NULL when every
 * slot is taken. The newest stream is checked first: a listener's session sends from one SSRC. */
static tx_stream *stream_get(encore_srtp_evp *tx, uint32_t ssrc)
{
    for (size_t i = tx->n_streams; i-- > 0;)
        if (tx->streams[i].ssrc == ssrc)
            return &tx->streams[i];
    if (tx->n_streams == ENCORE_SRTP_EVP_MAX_STREAMS)
        return NULL;
    tx_stream *s = &tx->streams[tx->n_streams++];
    s->ssrc = ssrc;
    s->rtcp_index = 0;
    s->index = 0;
    return s;
}

/* libsrtp's srtp_rdbx_estimate_index and srtp_index_guess, to the letter: the 48-bit index of
 * sequence number seq given the newest index so far, and its distance from it. While the newest
 * index is at most 2^15 the rollover counter is taken to be 0. */
static int32_t estimate_index(uint64_t newest, uint16_t seq, uint64_t *guess)
{
    if (newest <= 0x8000) {
        *guess = seq;
        return (int32_t)seq - (int32_t)(uint16_t)newest;
    }
    uint32_t roc = (uint32_t)(newest >> 16);
    uint16_t last = (uint16_t)newest;
    int32_t s = seq, l = last;
    int32_t diff = s - l;
    if (l < 0x8000) {
        if (s - l > 0x8000) {
            roc--;
            diff = s - l - 0x10000;
        }
    } else if (l - 0x8000 > s) {
        roc++;
        diff = s - l + 0x10000;
    }
    *guess = (uint64_t)roc << 16 | seq;
    return diff;
}

/* Length of the RTP header (fixed part, CSRCs, extension) of buf[0..len), or 0 when it does not
 * fit in len or the version is not 2. */
static size_t rtp_header_len(const uint8_t *buf, size_t len)
{
    if (len < RTP_HEADER || (buf[0] >> 6) != 2)
        return 0;
    size_t hl = RTP_HEADER + 4u * (buf[0] & 0x0f);
    if (buf[0] & 0x10) {
        if (len < hl + 4)
            return 0;
        hl += 4 + 4u * (((size_t)buf[hl + 2] << 8) | buf[hl + 3]);
    }
    return hl <= len ? hl : 0;
}

/* AES-GCM over buf: aad[0..aad_len) and aad2[0..aad2_len) authenticated, buf[enc..len)
 * encrypted in place, the tag written to tag_out. */
static bool gcm_seal(EVP_CIPHER_CTX *c, const uint8_t iv[GCM_IV], const uint8_t *aad,
                     size_t aad_len, const uint8_t *aad2, size_t aad2_len, uint8_t *data,
                     size_t data_len, uint8_t *tag_out)
{
    int outl = 0;
    uint8_t none[1];
    if (EVP_EncryptInit_ex2(c, NULL, NULL, iv, NULL) != 1 ||
        EVP_EncryptUpdate(c, NULL, &outl, aad, (int)aad_len) != 1)
        return false;
    if (aad2_len && EVP_EncryptUpdate(c, NULL, &outl, aad2, (int)aad2_len) != 1)
        return false;
    if (data_len &&
        (EVP_EncryptUpdate(c, data, &outl, data, (int)data_len) != 1 || outl != (int)data_len))
        return false;
    return EVP_EncryptFinal_ex(c, none, &outl) == 1 && outl == 0 &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG, tag_out) == 1;
}

/* AES-CM (RFC 3711 section 4.1.1): IV = (salt << 16) ^ (ssrc << 64) ^ (index << 16), index the
 * 48-bit SRTP packet index or the 31-bit SRTCP index. */
static bool cm_encrypt(const tx_keys *k, uint32_t ssrc, uint64_t index, uint8_t *data,
                       size_t data_len)
{
    uint8_t iv[16];
    memcpy(iv, k->salt, CM_SALT);
    iv[14] = iv[15] = 0;
    iv[4] ^= (uint8_t)(ssrc >> 24);
    iv[5] ^= (uint8_t)(ssrc >> 16);
    iv[6] ^= (uint8_t)(ssrc >> 8);
    iv[7] ^= (uint8_t)ssrc;
    for (int i = 0; i < 6; i++)
        iv[8 + i] ^= (uint8_t)(index >> (40 - 8 * i));
    int outl = 0;
    if (EVP_EncryptInit_ex2(k->cipher, NULL, NULL, iv, NULL) != 1)
        return false;
    return data_len == 0 || (EVP_EncryptUpdate(k->cipher, data, &outl, data, (int)data_len) == 1 &&
                             outl == (int)data_len);
}

/* HMAC-SHA1 of msg[0..len) followed by tail[0..tail_len), the first CM_TAG bytes to out. */
static void cm_tag(const tx_keys *k, const uint8_t *msg, size_t len, const uint8_t *tail,
                   size_t tail_len, uint8_t *out)
{
    uint8_t digest[SHA_DIGEST_LENGTH];
    SHA_CTX c = k->hmac_inner;
    SHA1_Update(&c, msg, len);
    if (tail_len)
        SHA1_Update(&c, tail, tail_len);
    SHA1_Final(digest, &c);
    c = k->hmac_outer;
    SHA1_Update(&c, digest, sizeof digest);
    SHA1_Final(digest, &c);
    memcpy(out, digest, CM_TAG);
}

int encore_srtp_evp_protect_rtp(encore_srtp_evp *tx, uint8_t *buf, size_t *len, size_t cap)
{
    size_t n = *len;
    size_t hl = n <= MAX_PACKET ? rtp_header_len(buf, n) : 0;
    if (hl == 0)
        return ENCORE_SRTP_ERR_MALFORMED;
    size_t tag = tx->gcm ? GCM_TAG : CM_TAG;
    if (cap < n || cap - n < tag)
        return ENCORE_SRTP_ERR_NOSPACE;
    uint32_t ssrc = get_be32(buf + 8);
    tx_stream *st = stream_get(tx, ssrc);
    if (!st || tx->packets_left == 0)
        return ENCORE_SRTP_ERR_INTERNAL;
    tx->packets_left--;

    uint16_t seq = (uint16_t)(buf[2] << 8 | buf[3]);
    uint64_t index;
    int32_t delta = estimate_index(st->index, seq, &index);
    /* Behind the newest by the window or more: libsrtp's replay_old. Anything else is sent,
     * repeats included (allow_repeat_tx); only a newer index moves the stream on. */
    if (delta <= -TX_WINDOW)
        return ENCORE_SRTP_ERR_REPLAY;
    if (delta > 0)
        st->index += (uint16_t)delta;
    uint32_t roc = (uint32_t)(index >> 16);

    if (tx->gcm) {
        /* RFC 7714 section 8.1: IV = (0x0000 || SSRC || ROC || SEQ) ^ salt. */
        uint8_t iv[GCM_IV] = {0};
        put_be32(iv + 2, ssrc);
        put_be32(iv + 6, roc);
        iv[10] = (uint8_t)(seq >> 8);
        iv[11] = (uint8_t)seq;
        for (int i = 0; i < GCM_IV; i++)
            iv[i] ^= tx->rtp.salt[i];
        if (!gcm_seal(tx->rtp.cipher, iv, buf, hl, NULL, 0, buf + hl, n - hl, buf + n))
            return ENCORE_SRTP_ERR_INTERNAL;
    } else {
        if (!cm_encrypt(&tx->rtp, ssrc, index, buf + hl, n - hl))
            return ENCORE_SRTP_ERR_INTERNAL;
        /* RFC 3711 section 4.2: the tag covers the packet followed by the ROC. */
        uint8_t roc_be[4];
        put_be32(roc_be, roc);
        cm_tag(&tx->rtp, buf, n, roc_be, sizeof roc_be, buf + n);
    }
    *len = n + tag;
    return 0;
}

int encore_srtp_evp_protect_rtcp(encore_srtp_evp *tx, uint8_t *buf, size_t *len, size_t cap)
{
    size_t n = *len;
    if (n < RTCP_HEADER || n > MAX_PACKET || (buf[0] >> 6) != 2)
        return ENCORE_SRTP_ERR_MALFORMED;
    size_t tag = tx->gcm ? GCM_TAG : CM_TAG;
    if (cap < n || cap - n < SRTCP_INDEX_LEN + tag)
        return ENCORE_SRTP_ERR_NOSPACE;
    uint32_t ssrc = get_be32(buf + 4);
    tx_stream *st = stream_get(tx, ssrc);
    if (!st || st->rtcp_index >= SRTCP_MAX_INDEX)
        return ENCORE_SRTP_ERR_INTERNAL;
    uint32_t index = ++st->rtcp_index;
    uint8_t word[SRTCP_INDEX_LEN];
    put_be32(word, SRTCP_E_FLAG | index);

    if (tx->gcm) {
        /* RFC 7714 sections 9.1 and 17: IV = (0x0000 || SSRC || 0x0000 || 0 || index) ^ salt;
         * AAD = the first 8 bytes || E flag and index; the tag comes before the index word. */
        uint8_t iv[GCM_IV] = {0};
        put_be32(iv + 2, ssrc);
        put_be32(iv + 8, index);
        for (int i = 0; i < GCM_IV; i++)
            iv[i] ^= tx->rtcp.salt[i];
        if (!gcm_seal(tx->rtcp.cipher, iv, buf, RTCP_HEADER, word, sizeof word, buf + RTCP_HEADER,
                      n - RTCP_HEADER, buf + n))
            return ENCORE_SRTP_ERR_INTERNAL;
        memcpy(buf + n + GCM_TAG, word, sizeof word);
    } else {
        /* RFC 3711 section 3.4: encrypt after the first 8 bytes, then the index word, then
         * the tag over everything before it. */
        if (!cm_encrypt(&tx->rtcp, ssrc, index, buf + RTCP_HEADER, n - RTCP_HEADER))
            return ENCORE_SRTP_ERR_INTERNAL;
        memcpy(buf + n, word, sizeof word);
        cm_tag(&tx->rtcp, buf, n + SRTCP_INDEX_LEN, NULL, 0, buf + n + SRTCP_INDEX_LEN);
    }
    *len = n + SRTCP_INDEX_LEN + tag;
    return 0;
}
