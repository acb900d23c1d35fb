/* One WebRTC audio peer of the load generator, as a browser would be: a libnice agent (one stream,
 * one component: BUNDLE and rtcp-mux), DTLS-SRTP (media/dtls.h; media/srtp.h for what we send and
 * for RTCP, srtp-rx.h for the RTP we receive) and the local SDP.
 * Runs only on the thread of the GMainContext it was created with; it never calls back from inside
 * its public calls, and packets it delivers are only valid during the callback. */
#ifndef ENCORE_LOADGEN_RTC_H
#define ENCORE_LOADGEN_RTC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "media/dtls.h"

/* Largest SRTP datagram received or sent. */
#define LG_RTC_MTU 1500

typedef struct lg_rtc lg_rtc;

/* Callbacks may not free the rtc (owners free it later, from their own timers). */
typedef struct {
    /* DTLS completed and SRTP is keyed: media may flow. */
    void (*on_connected)(lg_rtc *rtc, void *user_data);
    /* One decrypted RTP packet (pkt[0..len), writable) and the CLOCK_MONOTONIC time in ns taken
     * when libnice handed over the datagram, before decryption. */
    void (*on_rtp)(lg_rtc *rtc, uint8_t *pkt, size_t len, int64_t recv_ns, void *user_data);
    /* ICE or DTLS failed (why: "ice_failed", "dtls_failed"). Called once. */
    void (*on_failed)(lg_rtc *rtc, const char *why, void *user_data);
} lg_rtc_callbacks;

/* Creates a peer that gathers host candidates on media_ip (libnice skips loopback unless the
 * address is added explicitly). offerer: we send the offer, and are the ICE controlling agent.
 * cert is shared (a reference is taken per DTLS session). Returns NULL with error set when libnice
 * cannot gather (no free UDP port, bad address). */
lg_rtc *lg_rtc_new(GMainContext *ctx, encore_dtls_cert *cert, const char *media_ip, bool offerer,
                   const lg_rtc_callbacks *cb, void *user_data, GError **error);

/* Frees the agent, DTLS and SRTP state. NULL is allowed. Not from inside a callback. */
void lg_rtc_free(lg_rtc *rtc);

/* Writes our offer: one audio m-section (mid "0", BUNDLE), Opus PT 111 stereo at 128 kbit/s,
 * direction sendonly (send) or recvonly, a=setup:actpass, rtcp-mux and rtcp-rsize, a=ssrc when
 * ssrc != 0, and our host candidates with end-of-candidates when with_candidates (otherwise they
 * are meant to be trickled: see lg_rtc_local_candidates). Returns 0, or -ENOSPC. */
int lg_rtc_create_offer(lg_rtc *rtc, bool send, uint32_t ssrc, bool with_candidates, char *buf,
                        size_t cap);

/* Applies the remote answer to our offer: ICE credentials and candidates, fingerprint, DTLS role
 * from its a=setup (active: we are the DTLS server; otherwise the client). Returns 0, or -EINVAL
 * with *why set when the SDP is unusable. */
int lg_rtc_set_answer(lg_rtc *rtc, const char *sdp, const char **why);

/* Applies a remote offer and writes our answer (recvonly, a=setup:active so we are the DTLS
 * client) into buf, with our candidates when with_candidates. Returns 0, -EINVAL (*why set) for an
 * unusable offer, or -ENOSPC. */
int lg_rtc_answer_offer(lg_rtc *rtc, const char *sdp, bool with_candidates, char *buf, size_t cap,
                        const char **why);

/* Adds one trickled remote candidate ("candidate:..." with or without "a="; "" ends the list).
 * Returns 0, or a negative errno for a candidate that cannot be used (ignored by callers). */
int lg_rtc_add_remote_candidate(lg_rtc *rtc, const char *candidate);

/* Our host candidates as "candidate:..." strings (a NULL-terminated array; free with g_strfreev),
 * and the mid they belong to. */
char **lg_rtc_local_candidates(lg_rtc *rtc);
const char *lg_rtc_mid(const lg_rtc *rtc);

/* The payload type the remote side uses for Opus (from its SDP), or 111 before it is known. */
int lg_rtc_opus_pt(const lg_rtc *rtc);

/* Protects the RTP (or RTCP) packet pkt[0..len) in place (cap >= len + ENCORE_SRTP_MAX_TRAILER)
 * and sends it. Returns 0, -ENOTCONN before on_connected, or another negative error. */
int lg_rtc_send_rtp(lg_rtc *rtc, uint8_t *pkt, size_t len, size_t cap);
int lg_rtc_send_rtcp(lg_rtc *rtc, uint8_t *pkt, size_t len, size_t cap);

/* True between on_connected and on_failed. */
bool lg_rtc_is_connected(const lg_rtc *rtc);

/* Counters of this peer. */
typedef struct {
    uint64_t rtcp_in;     /* RTCP datagrams that decrypted */
    uint64_t srtp_errors; /* datagrams that did not decrypt (auth, replay, malformed) */
} lg_rtc_stats;
const lg_rtc_stats *lg_rtc_get_stats(const lg_rtc *rtc);

#endif
