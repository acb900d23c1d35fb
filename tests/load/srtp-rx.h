/* SRTP decryption of received RTP for the load generator's listeners, on OpenSSL EVP directly:
 * AEAD_AES_128_GCM (RFC 7714) and AES_CM_128_HMAC_SHA1_80 (RFC 3711). It exists because libsrtp2
 * as Debian builds it (NSS backend) gets slower with every live session in the process, which a
 * process holding thousands of listeners cannot afford. One object per listener, used only on its
 * thread; no allocation per packet, no replay protection (a test client does not need it). */
#ifndef ENCORE_LOADGEN_SRTP_RX_H
#define ENCORE_LOADGEN_SRTP_RX_H

#include <stddef.h>
#include <stdint.h>

#include "media/srtp.h"

typedef struct lg_srtp_rx lg_srtp_rx;

/* Derives the session keys for the remote (sending) side of keys. Returns NULL for an unknown
 * profile or when OpenSSL cannot set up a cipher. */
lg_srtp_rx *lg_srtp_rx_new(const encore_srtp_keys *keys);

/* Frees it and wipes its keys. NULL is allowed. */
void lg_srtp_rx_free(lg_srtp_rx *rx);

/* Authenticates and decrypts the SRTP packet buf[0..*len) in place; on success *len shrinks to
 * the plain RTP packet. Returns 0, or -1 when the packet is malformed or does not authenticate
 * (buf may then have been changed). */
int lg_srtp_rx_unprotect(lg_srtp_rx *rx, uint8_t *buf, size_t *len);

#endif
