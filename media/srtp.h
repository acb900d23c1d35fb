/* SRTP/SRTCP protection of one WebRTC peer's media: an inbound session on libsrtp2 and an outbound
 * one on OpenSSL (media/srtp_evp.h, output byte-identical to libsrtp), keyed from DTLS-SRTP. An
 * encore_srtp is owned by the media worker thread of its peer and used only there;
 * protect/unprotect work in place, never allocate per packet and never log. */
#ifndef ENCORE_MEDIA_SRTP_H
#define ENCORE_MEDIA_SRTP_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

/* The SRTP protection profiles we negotiate (RFC 5764, RFC 7714). */
typedef enum {
    ENCORE_SRTP_PROFILE_NONE = 0,
    ENCORE_SRTP_AES128_CM_SHA1_80 = 1, /* AES-128 counter mode, HMAC-SHA1 80-bit tag */
    ENCORE_SRTP_AEAD_AES_128_GCM = 2,  /* AES-128 GCM, 128-bit tag (RFC 7714) */
} encore_srtp_profile;

/* Largest master key and salt of any supported profile (AES-128: 16; salt 14 for CM, 12 for GCM).
 */
#define ENCORE_SRTP_MAX_KEY_LEN 16
#define ENCORE_SRTP_MAX_SALT_LEN 14

/* Bytes that protect may add after the packet: RTP adds the tag (10 or 16), RTCP adds the 4-byte
 * E-flag/index word plus the tag. A protect buffer needs cap >= len + ENCORE_SRTP_MAX_TRAILER (or
 * at least the exact trailer of the profile in use, see encore_srtp_trailer_len). */
#define ENCORE_SRTP_MAX_TRAILER 20

/* Error codes of this module (all negative; the media path counts drops by reason). */
enum {
    /* The authentication tag did not verify (forged, corrupted, wrong key). */
    ENCORE_SRTP_ERR_AUTH = -1,
    /* unprotect: the index was already accepted, or is older than the replay window. protect: the
     * sequence number is 1024 or more packets behind the newest one sent on its SSRC. */
    ENCORE_SRTP_ERR_REPLAY = -2,
    /* Too short for its header and trailer, header runs past the end, not version 2, or longer
     * than 65535 bytes. */
    ENCORE_SRTP_ERR_MALFORMED = -3,
    /* protect: cap - len is smaller than the trailer. */
    ENCORE_SRTP_ERR_NOSPACE = -4,
    /* Any other failure: cipher failure, key usage limit reached, stream allocation for a new SSRC
     * failed (inbound: libsrtp; outbound: more than ENCORE_SRTP_EVP_MAX_STREAMS, 16, SSRCs). */
    ENCORE_SRTP_ERR_INTERNAL = -5,
};

/* Keys for one peer, as exported by DTLS-SRTP (media/dtls.h: encore_dtls_srtp_keys). "local" keys
 * protect what we send, "remote" keys unprotect what the peer sends. Only the first key_len /
 * salt_len bytes of each array are meaningful. */
typedef struct {
    encore_srtp_profile profile;
    size_t key_len;  /* 16 for both profiles */
    size_t salt_len; /* 14 for AES128_CM_SHA1_80, 12 for AEAD_AES_128_GCM */
    uint8_t local_key[ENCORE_SRTP_MAX_KEY_LEN];
    uint8_t local_salt[ENCORE_SRTP_MAX_SALT_LEN];
    uint8_t remote_key[ENCORE_SRTP_MAX_KEY_LEN];
    uint8_t remote_salt[ENCORE_SRTP_MAX_SALT_LEN];
} encore_srtp_keys;

typedef struct encore_srtp encore_srtp;

/* Initialises libsrtp and fetches the OpenSSL ciphers once per process (thread-safe; later calls
 * return the first result). Returns 0, or ENCORE_SRTP_ERR_INTERNAL if srtp_init failed or OpenSSL
 * lacks AES-128-GCM or AES-128-CTR. encore_srtp_new calls it itself. */
int encore_srtp_global_init(void) G_GNUC_WARN_UNUSED_RESULT;

/* Human-readable profile name as used in DTLS-SRTP ("SRTP_AES128_CM_SHA1_80",
 * "SRTP_AEAD_AES_128_GCM"); "none" for anything else. Static storage. */
const char *encore_srtp_profile_name(encore_srtp_profile profile);

/* Master key and salt lengths of a profile. Returns 0, or -1 for an unknown profile. */
int encore_srtp_profile_lengths(encore_srtp_profile profile, size_t *key_len, size_t *salt_len);

/* Creates the two sessions of one peer from *keys (copied; the caller may wipe it afterwards):
 *  - inbound (libsrtp): remote key, any SSRC, replay protection with a 1024-packet window for RTP
 *    (libsrtp's fixed 128 for RTCP);
 *  - outbound (OpenSSL): local key, any SSRC (up to 16), repeated sequence numbers allowed (NACK
 *    retransmissions); what libsrtp would send with ssrc_any_outbound, allow_repeat_tx and a
 *    1024-packet window.
 * Returns NULL with error set (G_IO_ERROR_INVALID_ARGUMENT for an unknown profile or key/salt
 * lengths that do not match it, G_IO_ERROR_FAILED when libsrtp or OpenSSL refuses). The result
 * belongs to the caller: free with encore_srtp_free. */
encore_srtp *encore_srtp_new(const encore_srtp_keys *keys, GError **error);

/* Frees both sessions and wipes their key material. NULL is allowed. */
void encore_srtp_free(encore_srtp *srtp);

/* The profile the sessions use, and the exact trailer that protect adds for RTP and for RTCP. */
encore_srtp_profile encore_srtp_get_profile(const encore_srtp *srtp);
size_t encore_srtp_trailer_len(const encore_srtp *srtp, gboolean rtcp);

/* Protects the RTP packet buf[0..*len) in place; on success *len grows by the tag length.
 * cap is the size of buf. The rollover counter follows the sequence number per SSRC as libsrtp's
 * does. A retransmission may repeat a sequence number, but it must carry byte-identical contents
 * (with GCM a different payload under the same index would reuse the nonce). Never allocates.
 * Returns 0, or:
 *   ENCORE_SRTP_ERR_MALFORMED  *len < 12, version not 2, header runs past *len, or too long;
 *   ENCORE_SRTP_ERR_NOSPACE    cap - *len is smaller than the RTP trailer;
 *   ENCORE_SRTP_ERR_REPLAY     the sequence number is 1024 or more behind the newest of its SSRC;
 *   ENCORE_SRTP_ERR_INTERNAL   a 17th SSRC, key usage limit (2^48 packets) reached, or OpenSSL
 *                              failed.
 * buf is unspecified after INTERNAL; the other errors leave it untouched. */
int encore_srtp_protect_rtp(encore_srtp *srtp, uint8_t *buf, size_t *len,
                            size_t cap) G_GNUC_WARN_UNUSED_RESULT;

/* Authenticates, replay-checks and decrypts the SRTP packet buf[0..*len) in place; on success *len
 * shrinks to the plain RTP packet. Nothing of the packet should be trusted before this returns 0.
 * Returns 0, or:
 *   ENCORE_SRTP_ERR_MALFORMED  too short for header plus tag, version not 2, header past the end;
 *   ENCORE_SRTP_ERR_AUTH       the tag does not verify;
 *   ENCORE_SRTP_ERR_REPLAY     this index was already accepted or is older than the window;
 *   ENCORE_SRTP_ERR_INTERNAL   other libsrtp failure.
 * On error buf may have been changed and must be dropped. */
int encore_srtp_unprotect_rtp(encore_srtp *srtp, uint8_t *buf,
                              size_t *len) G_GNUC_WARN_UNUSED_RESULT;

/* Same as the RTP pair for one (compound) RTCP packet. The minimum plain RTCP packet is 8 bytes
 * (header + sender SSRC); SRTCP adds a 4-byte index word and the tag. Every protect call uses the
 * next SRTCP index of the sender SSRC (1 for the first, E flag set), so repeating RTCP is always
 * fine. Errors as above; protect never returns REPLAY, and returns INTERNAL also once 2^31 - 1
 * indexes of one SSRC are used up. */
int encore_srtp_protect_rtcp(encore_srtp *srtp, uint8_t *buf, size_t *len,
                             size_t cap) G_GNUC_WARN_UNUSED_RESULT;
int encore_srtp_unprotect_rtcp(encore_srtp *srtp, uint8_t *buf,
                               size_t *len) G_GNUC_WARN_UNUSED_RESULT;

/* Short description of an error code of this module, for logs. Static storage. */
const char *encore_srtp_strerror(int err);

#endif
