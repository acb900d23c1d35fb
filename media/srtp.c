/* SRTP/SRTCP sessions of one WebRTC peer: what we send is protected on OpenSSL (media/srtp_evp.c,
 * byte-identical to libsrtp and cheap whatever the number of peers), what the peer sends is
 * authenticated, replay-checked and decrypted by libsrtp2. Policy set-up from DTLS-SRTP keys and
 * in-place protect/unprotect with errors mapped to reasons the media path can count. Runs on the
 * peer's media worker thread; per-packet calls never allocate (beyond libsrtp's first inbound
 * packet of a new SSRC), never log and never block. */
#include "media/srtp.h"

#include <string.h>

#include <gio/gio.h>
#include <openssl/crypto.h>
#include <srtp2/srtp.h>

#include "media/srtp_evp.h"

#define ENCORE_SRTP_RTP_HEADER 12
#define ENCORE_SRTP_RTCP_HEADER 8
#define ENCORE_SRTP_RTCP_INDEX_LEN 4 /* E flag + 31-bit SRTCP index */
/* RTP replay window of the inbound session. Audio at 50 packets/s makes 1024 about 20 s, far more
 * than any reordering we accept; libsrtp keeps it as a bitmap, so it costs 128 bytes per stream. */
#define ENCORE_SRTP_REPLAY_WINDOW 1024
/* The longest packet either direction takes: nothing longer fits in a UDP datagram. */
#define ENCORE_SRTP_MAX_PACKET 65535

struct encore_srtp {
    srtp_t inbound;            /* remote key, ssrc_any_inbound (libsrtp) */
    encore_srtp_evp *outbound; /* local key (OpenSSL) */
    encore_srtp_profile profile;
    size_t rtp_tag_len;  /* tag bytes appended to RTP: 10 (CM/SHA1-80) or 16 (GCM) */
    size_t rtcp_tag_len; /* tag bytes appended to RTCP after the index word: 10 or 16 */
};

static GOnce srtp_init_once = G_ONCE_INIT;
/* Debian builds libsrtp2 on NSS, and each libsrtp cipher context holds an NSS init context: when
 * the last session is freed NSS shuts down completely, and the next srtp_create initialises it
 * again (about 2 ms instead of 0.1 ms per session, measured). This session, made once and never
 * used, keeps NSS initialised for the life of the process. Harmless with other crypto backends.
 * (Only inbound sessions use libsrtp now; NSS's protect also costs more the more sessions are
 * alive, 1.7 us with one and 26 us with 2,000 for AES-GCM, which is why we send on OpenSSL.) */
static srtp_t srtp_keepalive;

static void fill_policy(srtp_policy_t *policy, encore_srtp_profile profile, srtp_ssrc_type_t type,
                        unsigned char *key_salt);

static gpointer srtp_init_cb(gpointer data)
{
    if (srtp_init() != srtp_err_status_ok || encore_srtp_evp_global_init() != 0)
        return GINT_TO_POINTER(-1);
    unsigned char key_salt[ENCORE_SRTP_MAX_KEY_LEN + ENCORE_SRTP_MAX_SALT_LEN] = {0};
    srtp_policy_t policy;
    fill_policy(&policy, ENCORE_SRTP_AES128_CM_SHA1_80, ssrc_any_outbound, key_salt);
    if (srtp_create(&srtp_keepalive, &policy) != srtp_err_status_ok)
        srtp_keepalive = NULL; /* only slower */
    return GINT_TO_POINTER(1);
}

int encore_srtp_global_init(void)
{
    int r = GPOINTER_TO_INT(g_once(&srtp_init_once, srtp_init_cb, NULL));
    return r == 1 ? 0 : ENCORE_SRTP_ERR_INTERNAL;
}

const char *encore_srtp_profile_name(encore_srtp_profile profile)
{
    switch (profile) {
    case ENCORE_SRTP_AES128_CM_SHA1_80:
        return "SRTP_AES128_CM_SHA1_80";
    case ENCORE_SRTP_AEAD_AES_128_GCM:
        return "SRTP_AEAD_AES_128_GCM";
    default:
        return "none";
    }
}

int encore_srtp_profile_lengths(encore_srtp_profile profile, size_t *key_len, size_t *salt_len)
{
    switch (profile) {
    case ENCORE_SRTP_AES128_CM_SHA1_80:
        *key_len = SRTP_AES_128_KEY_LEN;
        *salt_len = SRTP_SALT_LEN;
        return 0;
    case ENCORE_SRTP_AEAD_AES_128_GCM:
        *key_len = SRTP_AES_128_KEY_LEN;
        *salt_len = SRTP_AEAD_SALT_LEN;
        return 0;
    default:
        return -1;
    }
}

const char *encore_srtp_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case ENCORE_SRTP_ERR_AUTH:
        return "authentication failed";
    case ENCORE_SRTP_ERR_REPLAY:
        return "replayed or too old";
    case ENCORE_SRTP_ERR_MALFORMED:
        return "malformed packet";
    case ENCORE_SRTP_ERR_NOSPACE:
        return "no room for the SRTP trailer";
    case ENCORE_SRTP_ERR_INTERNAL:
        return "internal SRTP failure";
    default:
        return "unknown SRTP error";
    }
}

static int map_status(srtp_err_status_t st)
{
    switch (st) {
    case srtp_err_status_ok:
        return 0;
    case srtp_err_status_auth_fail:
        return ENCORE_SRTP_ERR_AUTH;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old:
        return ENCORE_SRTP_ERR_REPLAY;
    case srtp_err_status_bad_param:
    case srtp_err_status_parse_err:
        return ENCORE_SRTP_ERR_MALFORMED;
    default:
        return ENCORE_SRTP_ERR_INTERNAL;
    }
}

/* Fills one direction's policy. key_salt must stay alive until srtp_create returns (it copies). */
static void fill_policy(srtp_policy_t *policy, encore_srtp_profile profile, srtp_ssrc_type_t type,
                        unsigned char *key_salt)
{
    memset(policy, 0, sizeof(*policy));
    if (profile == ENCORE_SRTP_AEAD_AES_128_GCM) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy->rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy->rtcp);
    } else {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy->rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy->rtcp);
    }
    policy->ssrc.type = type;
    policy->ssrc.value = 0;
    policy->key = key_salt;
    policy->window_size = ENCORE_SRTP_REPLAY_WINDOW;
    /* Only meaningful for the sender: NACK retransmissions re-send a sequence number. */
    policy->allow_repeat_tx = type == ssrc_any_outbound ? 1 : 0;
    policy->next = NULL;
}

encore_srtp *encore_srtp_new(const encore_srtp_keys *keys, GError **error)
{
    size_t key_len = 0, salt_len = 0;
    if (!keys || encore_srtp_profile_lengths(keys->profile, &key_len, &salt_len) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "unknown SRTP profile");
        return NULL;
    }
    if (keys->key_len != key_len || keys->salt_len != salt_len) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "SRTP key/salt lengths %zu/%zu do not match profile %s", keys->key_len,
                    keys->salt_len, encore_srtp_profile_name(keys->profile));
        return NULL;
    }
    if (encore_srtp_global_init() != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "srtp_init failed");
        return NULL;
    }

    encore_srtp *s = g_new0(encore_srtp, 1);
    s->profile = keys->profile;
    s->rtp_tag_len = keys->profile == ENCORE_SRTP_AEAD_AES_128_GCM ? 16 : 10;
    s->rtcp_tag_len = s->rtp_tag_len;

    /* libsrtp wants key || salt in one buffer. */
    unsigned char key_salt[ENCORE_SRTP_MAX_KEY_LEN + ENCORE_SRTP_MAX_SALT_LEN];
    srtp_policy_t policy;
    srtp_err_status_t st;

    memcpy(key_salt, keys->remote_key, key_len);
    memcpy(key_salt + key_len, keys->remote_salt, salt_len);
    fill_policy(&policy, keys->profile, ssrc_any_inbound, key_salt);
    st = srtp_create(&s->inbound, &policy);
    if (st != srtp_err_status_ok) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "srtp_create (inbound) failed: %d",
                    (int)st);
        s->inbound = NULL;
        goto out_free;
    }

    encore_srtp_evp_session_keys rtp_keys, rtcp_keys;
    if (encore_srtp_evp_derive(keys->profile, keys->local_key, key_len, keys->local_salt, salt_len,
                               &rtp_keys, &rtcp_keys) == 0)
        s->outbound = encore_srtp_evp_new(keys->profile, &rtp_keys, &rtcp_keys);
    OPENSSL_cleanse(&rtp_keys, sizeof rtp_keys);
    OPENSSL_cleanse(&rtcp_keys, sizeof rtcp_keys);
    if (!s->outbound) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "SRTP sender set-up on OpenSSL failed");
        goto out_free;
    }
    explicit_bzero(key_salt, sizeof(key_salt));
    return s;

out_free:
    explicit_bzero(key_salt, sizeof(key_salt));
    encore_srtp_free(s);
    return NULL;
}

void encore_srtp_free(encore_srtp *srtp)
{
    if (!srtp)
        return;
    if (srtp->inbound)
        srtp_dealloc(srtp->inbound);
    encore_srtp_evp_free(srtp->outbound);
    g_free(srtp);
}

encore_srtp_profile encore_srtp_get_profile(const encore_srtp *srtp)
{
    return srtp->profile;
}

size_t encore_srtp_trailer_len(const encore_srtp *srtp, gboolean rtcp)
{
    return rtcp ? ENCORE_SRTP_RTCP_INDEX_LEN + srtp->rtcp_tag_len : srtp->rtp_tag_len;
}

/* Length of the RTP header (fixed part, CSRCs, extension) of buf[0..len), or 0 when it does not
 * fit in len or the version is not 2. */
static size_t rtp_header_len(const uint8_t *buf, size_t len)
{
    if (len < ENCORE_SRTP_RTP_HEADER || (buf[0] >> 6) != 2)
        return 0;
    size_t hl = ENCORE_SRTP_RTP_HEADER + 4u * (buf[0] & 0x0f);
    if (buf[0] & 0x10) {
        if (len < hl + 4)
            return 0;
        hl += 4 + 4u * (((size_t)buf[hl + 2] << 8) | buf[hl + 3]);
    }
    return hl <= len ? hl : 0;
}

int encore_srtp_protect_rtp(encore_srtp *srtp, uint8_t *buf, size_t *len, size_t cap)
{
    return encore_srtp_evp_protect_rtp(srtp->outbound, buf, len, cap);
}

int encore_srtp_unprotect_rtp(encore_srtp *srtp, uint8_t *buf, size_t *len)
{
    size_t n = *len;
    if (n > ENCORE_SRTP_MAX_PACKET || n < srtp->rtp_tag_len)
        return ENCORE_SRTP_ERR_MALFORMED;
    /* The tag is not part of the header; the header must fit in front of it. */
    if (rtp_header_len(buf, n - srtp->rtp_tag_len) == 0)
        return ENCORE_SRTP_ERR_MALFORMED;
    int ilen = (int)n;
    int r = map_status(srtp_unprotect(srtp->inbound, buf, &ilen));
    if (r == 0)
        *len = (size_t)ilen;
    return r;
}

int encore_srtp_protect_rtcp(encore_srtp *srtp, uint8_t *buf, size_t *len, size_t cap)
{
    return encore_srtp_evp_protect_rtcp(srtp->outbound, buf, len, cap);
}

int encore_srtp_unprotect_rtcp(encore_srtp *srtp, uint8_t *buf, size_t *len)
{
    size_t n = *len;
    size_t trailer = ENCORE_SRTP_RTCP_INDEX_LEN + srtp->rtcp_tag_len;
    if (n > ENCORE_SRTP_MAX_PACKET || n < ENCORE_SRTP_RTCP_HEADER + trailer || (buf[0] >> 6) != 2)
        return ENCORE_SRTP_ERR_MALFORMED;
    int ilen = (int)n;
    int r = map_status(srtp_unprotect_rtcp(srtp->inbound, buf, &ilen));
    if (r == 0)
        *len = (size_t)ilen;
    return r;
}
