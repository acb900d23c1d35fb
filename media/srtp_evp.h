/* The sending half of SRTP/SRTCP on OpenSSL 3 directly: RFC 3711 key derivation, then
 * AEAD_AES_128_GCM (RFC 7714) or AES_CM_128_HMAC_SHA1_80 (RFC 3711) protect, byte for byte what
 * libsrtp2 outputs for the same master key (ssrc_any_outbound, allow_repeat_tx, 1024-packet
 * window). An encore_srtp_evp is used by one thread at a time; protect never allocates, never logs
 * and never blocks. media/srtp.c uses it for every packet we send; tests compare it with libsrtp.
 */
#ifndef ENCORE_MEDIA_SRTP_EVP_H
#define ENCORE_MEDIA_SRTP_EVP_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "media/srtp.h"

/* Distinct SSRCs one sender keeps a stream (rollover counter, SRTCP index) for. The first RTP or
 * RTCP packet of a new SSRC takes a slot for the life of the session; a packet that would need a
 * slot beyond this fails with ENCORE_SRTP_ERR_INTERNAL (libsrtp would allocate another stream).
 * A peer of ours sends from one or two SSRCs. */
#define ENCORE_SRTP_EVP_MAX_STREAMS 16

/* RFC 3711 section 4.3 labels (key derivation rate 0). */
enum {
    ENCORE_SRTP_LABEL_RTP_ENCRYPTION = 0x00,
    ENCORE_SRTP_LABEL_RTP_AUTH = 0x01,
    ENCORE_SRTP_LABEL_RTP_SALT = 0x02,
    ENCORE_SRTP_LABEL_RTCP_ENCRYPTION = 0x03,
    ENCORE_SRTP_LABEL_RTCP_AUTH = 0x04,
    ENCORE_SRTP_LABEL_RTCP_SALT = 0x05,
};

/* The session keys of one direction for RTP or for RTCP. GCM uses enc_key and the first 12 bytes
 * of salt; AES-CM uses enc_key, all 14 bytes of salt and auth_key. */
typedef struct {
    uint8_t enc_key[16];
    uint8_t salt[14];
    uint8_t auth_key[20];
} encore_srtp_evp_session_keys;

typedef struct encore_srtp_evp encore_srtp_evp;

/* Fetches the OpenSSL ciphers once per process (thread-safe; later calls return the first
 * result). Returns 0, or ENCORE_SRTP_ERR_INTERNAL when OpenSSL lacks AES-128-GCM or AES-128-CTR.
 * encore_srtp_evp_new and encore_srtp_evp_kdf call it themselves. */
int encore_srtp_evp_global_init(void) G_GNUC_WARN_UNUSED_RESULT;

/* The AES-CM PRF of RFC 3711 section 4.3.3 with a key derivation rate of 0: out[0..out_len) is
 * the AES-128 counter mode keystream under master_key (16 bytes) starting at the counter
 * (master_salt zero-padded to 14 bytes, label XORed into byte 7) || 0x0000. A 12-byte GCM master
 * salt is padded with two zero bytes (RFC 7714 section 11, as libsrtp does). Returns 0, or -1 when
 * salt_len > 14 or OpenSSL fails. */
int encore_srtp_evp_kdf(const uint8_t *master_key, const uint8_t *master_salt, size_t salt_len,
                        uint8_t label, uint8_t *out, size_t out_len) G_GNUC_WARN_UNUSED_RESULT;

/* Derives the RTP and RTCP session keys of profile from a master key and salt (lengths as
 * encore_srtp_profile_lengths says). Fields a profile does not use are zeroed. Returns 0, or -1
 * for an unknown profile, lengths that do not match it, or an OpenSSL failure. The caller should
 * wipe the keys (OPENSSL_cleanse) once the sender is made. */
int encore_srtp_evp_derive(encore_srtp_profile profile, const uint8_t *master_key, size_t key_len,
                           const uint8_t *master_salt, size_t salt_len,
                           encore_srtp_evp_session_keys *rtp,
                           encore_srtp_evp_session_keys *rtcp) G_GNUC_WARN_UNUSED_RESULT;

/* Makes a sender from session keys (copied) with no streams yet. Returns NULL for an unknown
 * profile or when OpenSSL cannot set up a cipher context. Free with encore_srtp_evp_free. */
encore_srtp_evp *encore_srtp_evp_new(encore_srtp_profile profile,
                                     const encore_srtp_evp_session_keys *rtp,
                                     const encore_srtp_evp_session_keys *rtcp);

/* Frees the sender and wipes its keys. NULL is allowed. */
void encore_srtp_evp_free(encore_srtp_evp *tx);

/* Protects the RTP packet buf[0..*len) in place, as srtp_protect does: the packet index comes
 * from the sequence number and the SSRC's stream (libsrtp's estimate, rollover counter included);
 * an index at or behind the newest one is protected again with the same index (retransmission:
 * only safe with identical contents). On success *len grows by 16 (GCM) or 10 (CM). Returns 0,
 * or:
 *   ENCORE_SRTP_ERR_MALFORMED  *len < 12 or > 65535, version not 2, CSRCs or extension past *len;
 *   ENCORE_SRTP_ERR_NOSPACE    cap - *len is smaller than the tag;
 *   ENCORE_SRTP_ERR_REPLAY     the index is 1024 or more behind the newest of its SSRC (libsrtp's
 *                              replay_old);
 *   ENCORE_SRTP_ERR_INTERNAL   no stream slot left for a new SSRC, 2^48 RTP packets protected
 *                              (key lifetime), or OpenSSL failed.
 * buf is untouched after any error but INTERNAL from OpenSSL. */
int encore_srtp_evp_protect_rtp(encore_srtp_evp *tx, uint8_t *buf, size_t *len,
                                size_t cap) G_GNUC_WARN_UNUSED_RESULT;

/* Protects the (compound) RTCP packet buf[0..*len) in place with the next SRTCP index of the
 * sender SSRC in bytes 4..7 (1 for the first), E flag set. On success *len grows by 4 + 16 (GCM:
 * tag then index word) or 4 + 10 (CM: index word then tag). Returns 0, or:
 *   ENCORE_SRTP_ERR_MALFORMED  *len < 8 or > 65535, or version not 2;
 *   ENCORE_SRTP_ERR_NOSPACE    cap - *len is smaller than the trailer;
 *   ENCORE_SRTP_ERR_INTERNAL   no stream slot left, SRTCP index space (2^31 - 1) used up, or
 *                              OpenSSL failed. */
int encore_srtp_evp_protect_rtcp(encore_srtp_evp *tx, uint8_t *buf, size_t *len,
                                 size_t cap) G_GNUC_WARN_UNUSED_RESULT;

#endif
