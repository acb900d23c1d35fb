/* DTLS 1.2 handshakes for DTLS-SRTP (RFC 5763/5764) on OpenSSL: the process certificate and one
 * handshake per WebRTC peer, fed datagrams by its caller and keyed by the SDP fingerprint. A peer's
 * encore_dtls lives on its media worker thread; the certificate is shared read-only by all threads.
 * No main loop, sockets or clock of its own: the caller sends, receives and drives timers. */
#ifndef ENCORE_MEDIA_DTLS_H
#define ENCORE_MEDIA_DTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "media/srtp.h"

/* The DTLS record payload size we aim for (each datagram passed to send is at most this long). */
#define ENCORE_DTLS_MTU 1200
/* Longest digest of the supported fingerprint algorithms (sha-512). */
#define ENCORE_DTLS_FP_MAX 64
/* A handshake flight is retransmitted at 0.5 s, 1 s, 2 s, then every 4 s; after this many
 * retransmissions of one flight without progress encore_dtls_handle_timeout fails. */
#define ENCORE_DTLS_MAX_RETRANSMITS 8

/* Return values of encore_dtls_handle / _handle_timeout / _start. */
enum {
    /* Handshake done, fingerprint verified, keys available. */
    ENCORE_DTLS_CONNECTED = 1,
    /* The peer's certificate does not match the SDP fingerprint. */
    ENCORE_DTLS_ERR_FINGERPRINT = -1,
    /* Fatal protocol error: malformed flight, fatal alert from the peer, no common cipher suite or
     * SRTP profile, key export failed. */
    ENCORE_DTLS_ERR_HANDSHAKE = -2,
    /* The peer sent close_notify, or we closed. */
    ENCORE_DTLS_ERR_CLOSED = -3,
    /* Too many retransmissions without an answer. */
    ENCORE_DTLS_ERR_TIMEOUT = -4,
    /* Call not valid now (keys before CONNECTED, start twice, profile change too late). */
    ENCORE_DTLS_ERR_STATE = -5,
};

typedef enum {
    ENCORE_DTLS_CLIENT, /* a=setup:active: we send the ClientHello */
    ENCORE_DTLS_SERVER, /* a=setup:passive: we wait for it */
} encore_dtls_role;

/* The process-wide certificate and OpenSSL context. Opaque, refcounted, immutable once made. */
typedef struct encore_dtls_cert encore_dtls_cert;
/* One peer's DTLS association. Opaque; used from one thread only. */
typedef struct encore_dtls encore_dtls;

/* Sends one datagram to the peer (over ICE). data is only valid during the call. Called from inside
 * encore_dtls_start/_handle/_handle_timeout/_close; it must not free the encore_dtls. */
typedef void (*encore_dtls_send_fn)(const uint8_t *data, size_t len, void *user_data);

/* Creates a self-signed ECDSA P-256 certificate (random 64-bit serial, CN "encore", valid from one
 * day ago for 30 days) and the DTLS context all peers share: DTLS 1.2 only, ECDHE-AEAD cipher
 * suites, SRTP profiles SRTP_AEAD_AES_128_GCM then SRTP_AES128_CM_SHA1_80, a peer certificate
 * required in both roles (any self-signed certificate; the fingerprint decides), no renegotiation,
 * no session tickets or cache, no cookie exchange, MTU ENCORE_DTLS_MTU.
 * Returns a new certificate with one reference (the caller's), or NULL with error set
 * (G_IO_ERROR_FAILED with OpenSSL's reason). Call once at start-up; safe to use from any thread. */
encore_dtls_cert *encore_dtls_cert_new(GError **error);
/* Adds a reference; returns cert. Thread-safe. */
encore_dtls_cert *encore_dtls_cert_ref(encore_dtls_cert *cert);
/* Drops a reference; the last one frees the certificate. Thread-safe. NULL is allowed. */
void encore_dtls_cert_unref(encore_dtls_cert *cert);
/* Same as encore_dtls_cert_unref (drops the creator's reference). */
void encore_dtls_cert_free(encore_dtls_cert *cert);
/* "sha-256 AB:CD:...:EF", the value of our a=fingerprint line. Owned by cert. */
const char *encore_dtls_cert_fingerprint(const encore_dtls_cert *cert);
/* The certificate's digest with another SDP hash function ("sha-1", "sha-256", "sha-384",
 * "sha-512") into out[0..*out_len). Returns 0, or -1 for an unknown algorithm or cap too small. */
int encore_dtls_cert_digest(const encore_dtls_cert *cert, const char *alg, uint8_t *out, size_t cap,
                            size_t *out_len) G_GNUC_WARN_UNUSED_RESULT;

/* Parses the value of an SDP a=fingerprint attribute (RFC 8122: "<hash-func> <hex pairs joined by
 * colons>", e.g. "sha-256 AB:CD:..."; the hash name and hex digits are case-insensitive, leading
 * and trailing blanks are ignored). On success stores the normalised algorithm name ("sha-1",
 * "sha-256", "sha-384" or "sha-512", static storage) in *alg, the digest in out[0..*out_len) and
 * returns 0. Returns -1 for an unknown or unsupported hash function, a malformed hex list, or a
 * digest whose length does not match the hash function (or exceeds cap). Pure: no allocation, no
 * logging. */
int encore_dtls_fingerprint_parse(const char *text, size_t len, const char **alg, uint8_t *out,
                                  size_t cap, size_t *out_len) G_GNUC_WARN_UNUSED_RESULT;

/* Creates one peer's DTLS association. cert gets a reference of its own. remote_fp_alg is the SDP
 * hash name ("sha-1", "sha-256", "sha-384", "sha-512", case-insensitive) and
 * remote_fp/remote_fp_len the peer's certificate digest from its a=fingerprint (both copied). send
 * is called for every outgoing datagram with user_data. Returns NULL when an argument is invalid
 * (unknown algorithm, digest length not matching it, NULL cert or send) or OpenSSL cannot allocate
 * the connection. */
encore_dtls *encore_dtls_new(encore_dtls_cert *cert, encore_dtls_role role,
                             const char *remote_fp_alg, const uint8_t *remote_fp,
                             size_t remote_fp_len, encore_dtls_send_fn send, void *user_data);
/* Frees the association (sends nothing; call encore_dtls_close first to say goodbye) and wipes the
 * exported keys. NULL is allowed. */
void encore_dtls_free(encore_dtls *dtls);

/* Restricts the SRTP profiles offered/accepted to just one. Only before encore_dtls_start and the
 * first encore_dtls_handle. Returns 0, or ENCORE_DTLS_ERR_STATE (too late or unknown profile). */
int encore_dtls_set_srtp_profile(encore_dtls *dtls,
                                 encore_srtp_profile profile) G_GNUC_WARN_UNUSED_RESULT;

/* Client: sends the ClientHello flight and arms the retransmission timer. Server: does nothing.
 * Returns 0, ENCORE_DTLS_ERR_STATE when called twice, or ENCORE_DTLS_ERR_HANDSHAKE. */
int encore_dtls_start(encore_dtls *dtls) G_GNUC_WARN_UNUSED_RESULT;

/* Feeds one received datagram (it must pass encore_dtls_is_dtls; other input is ignored and 0 is
 * returned; so is any input to a client before encore_dtls_start). Replies go out through send.
 * Returns:
 *   0                            handshake in progress, or nothing to report;
 *   ENCORE_DTLS_CONNECTED        exactly once, when the handshake has completed, an SRTP profile
 *                                was negotiated and the peer certificate's digest equals the SDP
 *                                fingerprint (compared in constant time); keys are then available;
 *   ENCORE_DTLS_ERR_FINGERPRINT  the peer certificate does not match (the handshake is aborted with
 *                                a bad_certificate alert as soon as the certificate arrives, so the
 *                                peer never completes either; no keys are ever exported);
 *   ENCORE_DTLS_ERR_HANDSHAKE    a fatal protocol error or fatal alert;
 *   ENCORE_DTLS_ERR_CLOSED       the peer sent close_notify.
 * After CONNECTED, retransmitted handshake flights of the peer are answered, records that do not
 * authenticate are dropped silently, application data is discarded (we carry no data channel), and
 * renegotiation is refused and ignored: a ClientHello (as server) or HelloRequest (as client) is
 * answered with a no_renegotiation warning alert and the association stays CONNECTED with its keys.
 * After an error the association is dead: later calls return the same error and send nothing. */
int encore_dtls_handle(encore_dtls *dtls, const uint8_t *data,
                       size_t len) G_GNUC_WARN_UNUSED_RESULT;

/* Milliseconds until the retransmission timer fires (0 if it is already due), or -1 when no timer
 * runs (before start, after the handshake, after an error). */
int encore_dtls_timeout_ms(encore_dtls *dtls);

/* Call when the timer is due: retransmits the last flight (through send). Calling it early does
 * nothing. Returns 0, ENCORE_DTLS_ERR_TIMEOUT after ENCORE_DTLS_MAX_RETRANSMITS retransmissions of
 * one flight (the association is then dead), or the sticky error of a dead association. */
int encore_dtls_handle_timeout(encore_dtls *dtls) G_GNUC_WARN_UNUSED_RESULT;

/* Copies the negotiated profile and our (local) and the peer's (remote) master keys and salts into
 * *out, derived as RFC 5764 section 4.2 says from the "EXTRACTOR-dtls_srtp" exporter: client key,
 * server key, client salt, server salt, assigned by our role. Valid once CONNECTED was returned,
 * even after a later close. Returns 0, or ENCORE_DTLS_ERR_STATE (out is then zeroed). The caller
 * should wipe *out once it has created its encore_srtp. */
int encore_dtls_srtp_keys(encore_dtls *dtls, encore_srtp_keys *out) G_GNUC_WARN_UNUSED_RESULT;

/* True once CONNECTED was returned and until an error or close. */
bool encore_dtls_is_connected(const encore_dtls *dtls);

/* Sends close_notify if connected and marks the association closed (later handle calls return
 * ENCORE_DTLS_ERR_CLOSED). A handshake in progress is abandoned silently. Idempotent. */
void encore_dtls_close(encore_dtls *dtls);

/* RFC 7983 demultiplexing: true when len > 0 and the first byte is 20..63 (a DTLS record). */
bool encore_dtls_is_dtls(const uint8_t *data, size_t len);

/* Short description of a return code of this module, for logs. Static storage. */
const char *encore_dtls_strerror(int code);

#endif
