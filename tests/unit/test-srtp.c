/* Unit tests of media/srtp and media/srtp_evp: sessions keyed by a real DTLS-SRTP handshake
 * (media/dtls), RTP and RTCP round trips (OpenSSL sender, libsrtp receiver) across a sequence
 * wrap, tampering, replay, repeated transmission, malformed input, for both profiles; the OpenSSL
 * sender byte for byte against libsrtp over long packet runs and against the RFC 3711, RFC 7714
 * and libsrtp test vectors, with no allocation per packet; plus a rough protect timing that is
 * printed, not asserted. */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>
#include <glib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <srtp2/srtp.h>

#include "media/dtls.h"
#include "media/srtp.h"
#include "media/srtp_evp.h"

/* ---- keys from a real handshake ---- */

typedef struct {
    GQueue to_server;
    GQueue to_client;
} wire;

static void client_send(const uint8_t *data, size_t len, void *user_data)
{
    g_queue_push_tail(&((wire *)user_data)->to_server, g_bytes_new(data, len));
}

static void server_send(const uint8_t *data, size_t len, void *user_data)
{
    g_queue_push_tail(&((wire *)user_data)->to_client, g_bytes_new(data, len));
}

/* Runs a DTLS handshake in memory (nothing is lost, so no timers) and returns the client's and the
 * server's keys. profile restricts the offer when not ENCORE_SRTP_PROFILE_NONE. */
static void handshake_keys(encore_srtp_profile profile, encore_srtp_keys *client_keys,
                           encore_srtp_keys *server_keys)
{
    GError *error = NULL;
    encore_dtls_cert *cc = encore_dtls_cert_new(&error);
    g_assert_no_error(error);
    encore_dtls_cert *sc = encore_dtls_cert_new(&error);
    g_assert_no_error(error);
    wire w;
    g_queue_init(&w.to_server);
    g_queue_init(&w.to_client);
    uint8_t fp[ENCORE_DTLS_FP_MAX];
    size_t fp_len;
    g_assert_cmpint(encore_dtls_cert_digest(sc, "sha-256", fp, sizeof(fp), &fp_len), ==, 0);
    encore_dtls *c =
        encore_dtls_new(cc, ENCORE_DTLS_CLIENT, "sha-256", fp, fp_len, client_send, &w);
    g_assert_cmpint(encore_dtls_cert_digest(cc, "sha-256", fp, sizeof(fp), &fp_len), ==, 0);
    encore_dtls *s =
        encore_dtls_new(sc, ENCORE_DTLS_SERVER, "sha-256", fp, fp_len, server_send, &w);
    g_assert_nonnull(c);
    g_assert_nonnull(s);
    if (profile != ENCORE_SRTP_PROFILE_NONE)
        g_assert_cmpint(encore_dtls_set_srtp_profile(c, profile), ==, 0);

    g_assert_cmpint(encore_dtls_start(c), ==, 0);
    int c_conn = 0, s_conn = 0;
    for (int i = 0; i < 100 && !(c_conn && s_conn); i++) {
        GBytes *b;
        gsize n;
        while ((b = g_queue_pop_head(&w.to_server))) {
            int r = encore_dtls_handle(s, g_bytes_get_data(b, &n), g_bytes_get_size(b));
            g_assert_cmpint(r, >=, 0);
            s_conn += r == ENCORE_DTLS_CONNECTED;
            g_bytes_unref(b);
        }
        while ((b = g_queue_pop_head(&w.to_client))) {
            int r = encore_dtls_handle(c, g_bytes_get_data(b, &n), g_bytes_get_size(b));
            g_assert_cmpint(r, >=, 0);
            c_conn += r == ENCORE_DTLS_CONNECTED;
            g_bytes_unref(b);
        }
    }
    g_assert_cmpint(c_conn, ==, 1);
    g_assert_cmpint(s_conn, ==, 1);
    g_assert_cmpint(encore_dtls_srtp_keys(c, client_keys), ==, 0);
    g_assert_cmpint(encore_dtls_srtp_keys(s, server_keys), ==, 0);
    if (profile != ENCORE_SRTP_PROFILE_NONE)
        g_assert_cmpint(client_keys->profile, ==, profile);
    encore_dtls_free(c);
    encore_dtls_free(s);
    encore_dtls_cert_unref(cc);
    encore_dtls_cert_unref(sc);
}

typedef struct {
    encore_srtp *client; /* the client side's sessions */
    encore_srtp *server;
    encore_srtp_profile profile;
    size_t tag; /* RTP tag length */
} sessions;

static void sessions_init(sessions *s, encore_srtp_profile profile)
{
    encore_srtp_keys kc, ks;
    handshake_keys(profile, &kc, &ks);
    GError *error = NULL;
    s->client = encore_srtp_new(&kc, &error);
    g_assert_no_error(error);
    s->server = encore_srtp_new(&ks, &error);
    g_assert_no_error(error);
    s->profile = profile;
    s->tag = profile == ENCORE_SRTP_AEAD_AES_128_GCM ? 16 : 10;
    g_assert_cmpint(encore_srtp_get_profile(s->client), ==, profile);
    g_assert_cmpuint(encore_srtp_trailer_len(s->client, FALSE), ==, s->tag);
    g_assert_cmpuint(encore_srtp_trailer_len(s->client, TRUE), ==, 4 + s->tag);
    g_assert_cmpuint(encore_srtp_trailer_len(s->client, TRUE), <=, ENCORE_SRTP_MAX_TRAILER);
}

static void sessions_clear(sessions *s)
{
    encore_srtp_free(s->client);
    encore_srtp_free(s->server);
}

/* ---- packets ---- */

#define PAYLOAD 120
#define RTP_LEN (12 + PAYLOAD)
#define BUF_CAP (RTP_LEN + ENCORE_SRTP_MAX_TRAILER)

static size_t make_rtp(uint8_t *buf, uint16_t seq, uint32_t ssrc, uint8_t fill)
{
    buf[0] = 0x80;
    buf[1] = 111;
    buf[2] = (uint8_t)(seq >> 8);
    buf[3] = (uint8_t)seq;
    uint32_t ts = (uint32_t)seq * 960u;
    buf[4] = (uint8_t)(ts >> 24);
    buf[5] = (uint8_t)(ts >> 16);
    buf[6] = (uint8_t)(ts >> 8);
    buf[7] = (uint8_t)ts;
    buf[8] = (uint8_t)(ssrc >> 24);
    buf[9] = (uint8_t)(ssrc >> 16);
    buf[10] = (uint8_t)(ssrc >> 8);
    buf[11] = (uint8_t)ssrc;
    for (size_t i = 0; i < PAYLOAD; i++)
        buf[12 + i] = (uint8_t)(fill + i);
    return RTP_LEN;
}

/* An RTCP receiver report with no blocks, plus an 8-byte SDES-ish tail to have some body. */
static size_t make_rtcp(uint8_t *buf, uint32_t ssrc, uint8_t fill)
{
    static const uint8_t rr[] = {0x80, 201, 0x00, 0x01};
    memcpy(buf, rr, 4);
    buf[4] = (uint8_t)(ssrc >> 24);
    buf[5] = (uint8_t)(ssrc >> 16);
    buf[6] = (uint8_t)(ssrc >> 8);
    buf[7] = (uint8_t)ssrc;
    static const uint8_t bye[] = {0x81, 203, 0x00, 0x01};
    memcpy(buf + 8, bye, 4);
    memcpy(buf + 12, buf + 4, 4);
    buf[15] ^= fill;
    return 16;
}

/* Protects seq on the sender, unprotects on the receiver, checks the plain packet came back. */
static void roundtrip(encore_srtp *tx, encore_srtp *rx, uint16_t seq, uint32_t ssrc, size_t tag)
{
    uint8_t plain[BUF_CAP], buf[BUF_CAP];
    size_t len = make_rtp(plain, seq, ssrc, (uint8_t)seq);
    memcpy(buf, plain, len);
    g_assert_cmpint(encore_srtp_protect_rtp(tx, buf, &len, sizeof(buf)), ==, 0);
    g_assert_cmpuint(len, ==, RTP_LEN + tag);
    /* The header stays in the clear, the payload does not. */
    g_assert_cmpmem(buf, 12, plain, 12);
    g_assert_true(memcmp(buf + 12, plain + 12, PAYLOAD) != 0);
    g_assert_cmpint(encore_srtp_unprotect_rtp(rx, buf, &len), ==, 0);
    g_assert_cmpmem(buf, len, plain, RTP_LEN);
}

static void test_rtp_roundtrip(gconstpointer data)
{
    sessions s;
    sessions_init(&s, GPOINTER_TO_INT(data));
    /* 70000 packets starting near the top of the sequence space: the 16-bit sequence wraps and
     * the rollover counter must follow on both sides. */
    uint16_t seq = 65000;
    for (int i = 0; i < 70000; i++, seq++)
        roundtrip(s.client, s.server, seq, 0x11223344, s.tag);
    g_assert_cmpuint(seq, ==, (65000 + 70000) % 65536);
    /* The other direction, and a second SSRC on the same sessions. */
    for (uint16_t q = 65530; q != 10; q++) {
        roundtrip(s.server, s.client, q, 0xCAFEBABE, s.tag);
        roundtrip(s.server, s.client, (uint16_t)(q + 7), 0x0BADF00D, s.tag);
    }
    sessions_clear(&s);
}

static void test_rtp_tamper(gconstpointer data)
{
    sessions s;
    sessions_init(&s, GPOINTER_TO_INT(data));
    uint8_t orig[BUF_CAP], buf[BUF_CAP];
    size_t olen = make_rtp(orig, 1000, 42, 7);
    g_assert_cmpint(encore_srtp_protect_rtp(s.client, orig, &olen, sizeof(orig)), ==, 0);

    /* Flip each byte of the protected packet in turn: header, payload and tag all count. A
     * changed sequence number or SSRC may instead land in a fresh replay slot or stream, but the
     * tag must still fail. */
    for (size_t i = 0; i < olen; i++) {
        memcpy(buf, orig, olen);
        buf[i] ^= 0x01;
        size_t len = olen;
        g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, buf, &len), ==, ENCORE_SRTP_ERR_AUTH);
    }
    /* A failed packet does not consume its index: the real one still goes through, once. */
    memcpy(buf, orig, olen);
    size_t len = olen;
    g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, buf, &len), ==, 0);
    g_assert_cmpuint(len, ==, RTP_LEN);

    /* Keys of the wrong direction do not authenticate. */
    memcpy(buf, orig, olen);
    len = olen;
    g_assert_cmpint(encore_srtp_unprotect_rtp(s.client, buf, &len), ==, ENCORE_SRTP_ERR_AUTH);
    sessions_clear(&s);
}

static int protect_and_unprotect(sessions *s, uint16_t seq, uint8_t *keep, size_t *keep_len)
{
    uint8_t buf[BUF_CAP];
    size_t len = make_rtp(buf, seq, 42, 1);
    g_assert_cmpint(encore_srtp_protect_rtp(s->client, buf, &len, sizeof(buf)), ==, 0);
    if (keep) {
        memcpy(keep, buf, len);
        *keep_len = len;
    }
    return encore_srtp_unprotect_rtp(s->server, buf, &len);
}

static void test_rtp_replay(gconstpointer data)
{
    sessions s;
    sessions_init(&s, GPOINTER_TO_INT(data));
    uint8_t saved[BUF_CAP], buf[BUF_CAP];
    size_t saved_len = 0, len;

    g_assert_cmpint(protect_and_unprotect(&s, 100, saved, &saved_len), ==, 0);
    memcpy(buf, saved, saved_len);
    len = saved_len;
    g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, buf, &len), ==, ENCORE_SRTP_ERR_REPLAY);

    /* Move ahead by 2000, skipping some packets: late ones within 1024 are still welcome, once;
     * older ones are refused. Protect all of them first (the sender's order), then deliver. */
    uint8_t late[4][BUF_CAP];
    size_t late_len[4];
    const uint16_t late_seq[4] = {1500, 1101, 1090, 1050};
    for (int i = 0; i < 4; i++) {
        len = make_rtp(late[i], late_seq[i], 42, 1);
        g_assert_cmpint(encore_srtp_protect_rtp(s.client, late[i], &len, BUF_CAP), ==, 0);
        late_len[i] = len;
    }
    g_assert_cmpint(protect_and_unprotect(&s, 2100, NULL, NULL), ==, 0);
    for (int i = 0; i < 2; i++) {
        /* 2100 - 1500 = 600 and 2100 - 1101 = 999: inside the window. */
        memcpy(buf, late[i], late_len[i]);
        len = late_len[i];
        g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, buf, &len), ==, 0);
        memcpy(buf, late[i], late_len[i]);
        len = late_len[i];
        g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, buf, &len), ==, ENCORE_SRTP_ERR_REPLAY);
    }
    for (int i = 2; i < 4; i++) {
        /* 1010 and 1050 behind: inside 1024 only for the first. */
        memcpy(buf, late[i], late_len[i]);
        len = late_len[i];
        int want = 2100 - late_seq[i] < 1024 ? 0 : ENCORE_SRTP_ERR_REPLAY;
        g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, buf, &len), ==, want);
    }
    /* The first packet, now far behind. */
    memcpy(buf, saved, saved_len);
    len = saved_len;
    g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, buf, &len), ==, ENCORE_SRTP_ERR_REPLAY);
    sessions_clear(&s);
}

static void test_repeat_tx(gconstpointer data)
{
    sessions s;
    sessions_init(&s, GPOINTER_TO_INT(data));
    uint8_t a[BUF_CAP], b[BUF_CAP];
    size_t alen = make_rtp(a, 500, 42, 9), blen;
    g_assert_cmpint(protect_and_unprotect(&s, 499, NULL, NULL), ==, 0);
    blen = make_rtp(b, 500, 42, 9);
    /* A NACK retransmission protects the same packet again: allowed, and identical. */
    g_assert_cmpint(encore_srtp_protect_rtp(s.client, a, &alen, sizeof(a)), ==, 0);
    g_assert_cmpint(protect_and_unprotect(&s, 501, NULL, NULL), ==, 0);
    g_assert_cmpint(encore_srtp_protect_rtp(s.client, b, &blen, sizeof(b)), ==, 0);
    g_assert_cmpmem(a, alen, b, blen);
    /* The first copy was "lost": the retransmission is accepted, a second copy is a replay. */
    g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, b, &blen), ==, 0);
    g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, a, &alen), ==, ENCORE_SRTP_ERR_REPLAY);

    /* Forwarding out of order: 503 is protected before 502, which was never sent; both pass. */
    alen = make_rtp(a, 503, 42, 3);
    blen = make_rtp(b, 502, 42, 2);
    g_assert_cmpint(encore_srtp_protect_rtp(s.client, a, &alen, sizeof(a)), ==, 0);
    g_assert_cmpint(encore_srtp_protect_rtp(s.client, b, &blen, sizeof(b)), ==, 0);
    g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, a, &alen), ==, 0);
    g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, b, &blen), ==, 0);
    g_assert_cmpuint(blen, ==, RTP_LEN);
    g_assert_cmpint(b[3], ==, (uint8_t)502);
    g_assert_cmpint(b[12], ==, 2);
    sessions_clear(&s);
}

static void test_rtcp(gconstpointer data)
{
    sessions s;
    sessions_init(&s, GPOINTER_TO_INT(data));
    uint8_t plain[64], buf[64], saved[64];
    size_t len, saved_len = 0;
    for (int i = 0; i < 300; i++) {
        len = make_rtcp(plain, 0x01020304, (uint8_t)i);
        memcpy(buf, plain, len);
        g_assert_cmpint(encore_srtp_protect_rtcp(s.client, buf, &len, 16 + 4 + s.tag), ==, 0);
        g_assert_cmpuint(len, ==, 16 + 4 + s.tag);
        g_assert_cmpmem(buf, 8, plain, 8); /* first header and SSRC in the clear */
        /* E flag (encrypted) + index: before the tag in RFC 3711, after it in RFC 7714. */
        size_t e = s.profile == ENCORE_SRTP_AEAD_AES_128_GCM ? len - 4 : 16;
        g_assert_cmpint(buf[e] & 0x80, ==, 0x80);
        g_assert_cmpint(((buf[e + 2] << 8) | buf[e + 3]), ==, i + 1); /* indexes start at 1 */
        if (i == 10) {
            memcpy(saved, buf, len);
            saved_len = len;
        }
        g_assert_cmpint(encore_srtp_unprotect_rtcp(s.server, buf, &len), ==, 0);
        g_assert_cmpmem(buf, len, plain, 16);
    }
    /* Replay of an old one. */
    memcpy(buf, saved, saved_len);
    len = saved_len;
    g_assert_cmpint(encore_srtp_unprotect_rtcp(s.server, buf, &len), ==, ENCORE_SRTP_ERR_REPLAY);
    /* Tampering anywhere fails authentication. */
    len = make_rtcp(buf, 0x01020304, 1);
    g_assert_cmpint(encore_srtp_protect_rtcp(s.client, buf, &len, sizeof(buf)), ==, 0);
    memcpy(saved, buf, len);
    saved_len = len;
    for (size_t i = 0; i < saved_len; i++) {
        memcpy(buf, saved, saved_len);
        buf[i] ^= 0x10;
        len = saved_len;
        g_assert_cmpint(encore_srtp_unprotect_rtcp(s.server, buf, &len), ==, ENCORE_SRTP_ERR_AUTH);
    }
    memcpy(buf, saved, saved_len);
    len = saved_len;
    g_assert_cmpint(encore_srtp_unprotect_rtcp(s.server, buf, &len), ==, 0);
    /* Protecting the same RTCP twice is fine (a new SRTCP index each time). */
    uint8_t a[64], b[64];
    size_t alen = make_rtcp(a, 5, 5), blen = make_rtcp(b, 5, 5);
    g_assert_cmpint(encore_srtp_protect_rtcp(s.server, a, &alen, sizeof(a)), ==, 0);
    g_assert_cmpint(encore_srtp_protect_rtcp(s.server, b, &blen, sizeof(b)), ==, 0);
    g_assert_true(memcmp(a, b, alen) != 0);
    g_assert_cmpint(encore_srtp_unprotect_rtcp(s.client, b, &blen), ==, 0);
    g_assert_cmpint(encore_srtp_unprotect_rtcp(s.client, a, &alen), ==, 0);
    sessions_clear(&s);
}

static void test_malformed(gconstpointer data)
{
    sessions s;
    sessions_init(&s, GPOINTER_TO_INT(data));
    uint8_t buf[BUF_CAP], copy[BUF_CAP];
    size_t len;

    /* Protect: too short, wrong version, CSRCs or extension past the end, no room. */
    len = make_rtp(buf, 1, 1, 1);
    size_t short_len = 11;
    g_assert_cmpint(encore_srtp_protect_rtp(s.client, buf, &short_len, sizeof(buf)), ==,
                    ENCORE_SRTP_ERR_MALFORMED);
    buf[0] = 0x40;
    g_assert_cmpint(encore_srtp_protect_rtp(s.client, buf, &len, sizeof(buf)), ==,
                    ENCORE_SRTP_ERR_MALFORMED);
    buf[0] = 0x8f; /* 15 CSRCs = 60 bytes: fits in 132 */
    len = 12 + 60 - 1;
    g_assert_cmpint(encore_srtp_protect_rtp(s.client, buf, &len, sizeof(buf)), ==,
                    ENCORE_SRTP_ERR_MALFORMED);
    len = make_rtp(buf, 1, 1, 1);
    buf[0] = 0x90; /* extension: 4-byte header then 4 * 0x0102 words */
    buf[12] = 0xBE;
    buf[13] = 0xDE;
    buf[14] = 0x01;
    buf[15] = 0x02;
    g_assert_cmpint(encore_srtp_protect_rtp(s.client, buf, &len, sizeof(buf)), ==,
                    ENCORE_SRTP_ERR_MALFORMED);
    size_t ext_only = 14;
    g_assert_cmpint(encore_srtp_protect_rtp(s.client, buf, &ext_only, sizeof(buf)), ==,
                    ENCORE_SRTP_ERR_MALFORMED);
    len = make_rtp(buf, 1, 1, 1);
    memcpy(copy, buf, len);
    g_assert_cmpint(encore_srtp_protect_rtp(s.client, buf, &len, len + s.tag - 1), ==,
                    ENCORE_SRTP_ERR_NOSPACE);
    g_assert_cmpuint(len, ==, RTP_LEN);
    g_assert_cmpmem(buf, len, copy, len);
    g_assert_cmpint(encore_srtp_protect_rtp(s.client, buf, &len, len - 1), ==,
                    ENCORE_SRTP_ERR_NOSPACE);
    /* Exactly enough room works. */
    g_assert_cmpint(encore_srtp_protect_rtp(s.client, buf, &len, len + s.tag), ==, 0);

    /* Unprotect: shorter than header + tag, every short length of a real packet. */
    memcpy(copy, buf, len);
    for (size_t n = 0; n < 12 + s.tag; n++) {
        size_t l = n;
        memcpy(buf, copy, len);
        g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, buf, &l), ==,
                        ENCORE_SRTP_ERR_MALFORMED);
    }
    for (size_t n = 12 + s.tag; n < len; n++) {
        size_t l = n;
        memcpy(buf, copy, len);
        g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, buf, &l), ==, ENCORE_SRTP_ERR_AUTH);
    }
    size_t l = len;
    memcpy(buf, copy, len);
    g_assert_cmpint(encore_srtp_unprotect_rtp(s.server, buf, &l), ==, 0);

    /* RTCP: too short either way, wrong version, no room. */
    len = make_rtcp(buf, 9, 9);
    l = 7;
    g_assert_cmpint(encore_srtp_protect_rtcp(s.client, buf, &l, sizeof(buf)), ==,
                    ENCORE_SRTP_ERR_MALFORMED);
    g_assert_cmpint(encore_srtp_protect_rtcp(s.client, buf, &len, len + 4 + s.tag - 1), ==,
                    ENCORE_SRTP_ERR_NOSPACE);
    buf[0] = 0x00;
    g_assert_cmpint(encore_srtp_protect_rtcp(s.client, buf, &len, sizeof(buf)), ==,
                    ENCORE_SRTP_ERR_MALFORMED);
    l = 8 + 4 + s.tag - 1;
    buf[0] = 0x80;
    g_assert_cmpint(encore_srtp_unprotect_rtcp(s.server, buf, &l), ==, ENCORE_SRTP_ERR_MALFORMED);
    sessions_clear(&s);
}

static void test_new_invalid(void)
{
    encore_srtp_keys k;
    memset(&k, 0, sizeof(k));
    GError *error = NULL;
    g_assert_null(encore_srtp_new(&k, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    k.profile = ENCORE_SRTP_AEAD_AES_128_GCM;
    k.key_len = 16;
    k.salt_len = 14; /* GCM wants 12 */
    g_assert_null(encore_srtp_new(&k, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    k.salt_len = 12;
    encore_srtp *s = encore_srtp_new(&k, &error);
    g_assert_no_error(error);
    encore_srtp_free(s);
    encore_srtp_free(NULL);
    g_assert_cmpint(encore_srtp_global_init(), ==, 0);
    g_assert_cmpstr(encore_srtp_profile_name(ENCORE_SRTP_AES128_CM_SHA1_80), ==,
                    "SRTP_AES128_CM_SHA1_80");
    g_assert_cmpstr(encore_srtp_strerror(ENCORE_SRTP_ERR_REPLAY), ==, "replayed or too old");
}

static void test_protect_timing(gconstpointer data)
{
    sessions s;
    sessions_init(&s, GPOINTER_TO_INT(data));
    enum { N = 100000 };
    uint8_t buf[BUF_CAP];
    size_t len;
    gint64 t0 = g_get_monotonic_time();
    for (int i = 0; i < N; i++) {
        len = make_rtp(buf, (uint16_t)i, 77, 3);
        if (encore_srtp_protect_rtp(s.client, buf, &len, sizeof(buf)) != 0)
            g_error("protect failed at %d", i);
    }
    gint64 t1 = g_get_monotonic_time();
    /* The same loop without protect, to subtract the packet building. */
    for (int i = 0; i < N; i++)
        len = make_rtp(buf, (uint16_t)i, 77, 3);
    gint64 t2 = g_get_monotonic_time();
    /* And unprotect, on freshly protected packets (the protect cost is subtracted below). */
    gint64 unprotect_us = 0;
    for (int i = 0; i < N; i++) {
        len = make_rtp(buf, (uint16_t)i, 78, 3);
        if (encore_srtp_protect_rtp(s.client, buf, &len, sizeof(buf)) != 0)
            g_error("protect failed at %d", i);
        gint64 u0 = g_get_monotonic_time();
        if (encore_srtp_unprotect_rtp(s.server, buf, &len) != 0)
            g_error("unprotect failed at %d", i);
        unprotect_us += g_get_monotonic_time() - u0;
    }
    double protect = (double)((t1 - t0) - (t2 - t1)) / N;
    g_test_message("%s: protect %.3f us/packet, unprotect ~%.3f us/packet (%d x %d-byte payload)",
                   encore_srtp_profile_name(s.profile), protect, (double)unprotect_us / N, N,
                   PAYLOAD);
    sessions_clear(&s);
}

/* ---- the OpenSSL sender against libsrtp and the RFCs ------------------------------------ */

/* Every allocation OpenSSL makes in this process (the hooks are set first thing in main). */
static gint openssl_allocs;
static gboolean openssl_counting;

static void *count_malloc(size_t n, const char *file, int line)
{
    g_atomic_int_inc(&openssl_allocs);
    return malloc(n);
}

static void *count_realloc(void *p, size_t n, const char *file, int line)
{
    g_atomic_int_inc(&openssl_allocs);
    return realloc(p, n);
}

static void count_free(void *p, const char *file, int line)
{
    free(p);
}

/* Hex digits (blanks ignored) into out; returns the byte count. */
static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *s; s++) {
        if (g_ascii_isspace(*s))
            continue;
        int v = g_ascii_xdigit_value(*s);
        g_assert_cmpint(v, >=, 0);
        if (hi < 0) {
            hi = v;
            continue;
        }
        g_assert_cmpuint(n, <, cap);
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    g_assert_cmpint(hi, <, 0);
    return n;
}

static void assert_hex(const uint8_t *got, size_t len, const char *want_hex)
{
    uint8_t want[512];
    size_t n = unhex(want_hex, want, sizeof want);
    g_assert_cmpmem(got, len, want, n);
}

/* The sender as media/srtp.c made it on libsrtp before the OpenSSL one replaced it: same policy
 * (ssrc_any_outbound, 1024-packet window, allow_repeat_tx), same checks and error mapping. It is
 * the reference every byte of the OpenSSL sender is compared with. */
typedef struct {
    srtp_t session;
    size_t tag;
} ref_tx;

static void ref_init(ref_tx *r, encore_srtp_profile profile, const uint8_t *key,
                     const uint8_t *salt)
{
    size_t key_len, salt_len;
    g_assert_cmpint(encore_srtp_profile_lengths(profile, &key_len, &salt_len), ==, 0);
    uint8_t key_salt[ENCORE_SRTP_MAX_KEY_LEN + ENCORE_SRTP_MAX_SALT_LEN];
    memcpy(key_salt, key, key_len);
    memcpy(key_salt + key_len, salt, salt_len);
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    if (profile == ENCORE_SRTP_AEAD_AES_128_GCM) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
    } else {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
    }
    policy.ssrc.type = ssrc_any_outbound;
    policy.key = key_salt;
    policy.window_size = 1024;
    policy.allow_repeat_tx = 1;
    g_assert_cmpint(encore_srtp_global_init(), ==, 0);
    g_assert_cmpint(srtp_create(&r->session, &policy), ==, srtp_err_status_ok);
    r->tag = profile == ENCORE_SRTP_AEAD_AES_128_GCM ? 16 : 10;
}

static int ref_status(srtp_err_status_t st)
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

static size_t ref_rtp_header_len(const uint8_t *buf, size_t len)
{
    if (len < 12 || (buf[0] >> 6) != 2)
        return 0;
    size_t hl = 12 + 4u * (buf[0] & 0x0f);
    if (buf[0] & 0x10) {
        if (len < hl + 4)
            return 0;
        hl += 4 + 4u * (((size_t)buf[hl + 2] << 8) | buf[hl + 3]);
    }
    return hl <= len ? hl : 0;
}

static int ref_protect_rtp(ref_tx *r, uint8_t *buf, size_t *len, size_t cap)
{
    size_t n = *len;
    if (n > 65535 || ref_rtp_header_len(buf, n) == 0)
        return ENCORE_SRTP_ERR_MALFORMED;
    if (cap < n || cap - n < r->tag)
        return ENCORE_SRTP_ERR_NOSPACE;
    int ilen = (int)n;
    int rc = ref_status(srtp_protect(r->session, buf, &ilen));
    if (rc == 0)
        *len = (size_t)ilen;
    return rc;
}

static int ref_protect_rtcp(ref_tx *r, uint8_t *buf, size_t *len, size_t cap)
{
    size_t n = *len;
    if (n > 65535 || n < 8 || (buf[0] >> 6) != 2)
        return ENCORE_SRTP_ERR_MALFORMED;
    if (cap < n || cap - n < 4 + r->tag)
        return ENCORE_SRTP_ERR_NOSPACE;
    int ilen = (int)n;
    int rc = ref_status(srtp_protect_rtcp(r->session, buf, &ilen));
    if (rc == 0)
        *len = (size_t)ilen;
    return rc;
}

/* An encore_srtp whose outbound (local) keys are key/salt. */
static encore_srtp *evp_session(encore_srtp_profile profile, const uint8_t *key,
                                const uint8_t *salt)
{
    encore_srtp_keys k;
    memset(&k, 0, sizeof k);
    k.profile = profile;
    g_assert_cmpint(encore_srtp_profile_lengths(profile, &k.key_len, &k.salt_len), ==, 0);
    memcpy(k.local_key, key, k.key_len);
    memcpy(k.local_salt, salt, k.salt_len);
    memset(k.remote_key, 0x42, sizeof k.remote_key);
    memset(k.remote_salt, 0x24, sizeof k.remote_salt);
    GError *error = NULL;
    encore_srtp *s = encore_srtp_new(&k, &error);
    g_assert_no_error(error);
    return s;
}

/* RFC 3711 appendix B.3: the session keys of one master key and salt (key derivation rate 0). */
static void test_kdf_rfc3711(void)
{
    uint8_t mk[16], ms[14], out[94];
    unhex("E1F97A0D3E018BE0D64FA32C06DE4139", mk, sizeof mk);
    unhex("0EC675AD498AFEEBB6960B3AABE6", ms, sizeof ms);
    g_assert_cmpint(encore_srtp_evp_kdf(mk, ms, 14, ENCORE_SRTP_LABEL_RTP_ENCRYPTION, out, 16), ==,
                    0);
    assert_hex(out, 16, "C61E7A93744F39EE10734AFE3FF7A087");
    g_assert_cmpint(encore_srtp_evp_kdf(mk, ms, 14, ENCORE_SRTP_LABEL_RTP_SALT, out, 14), ==, 0);
    assert_hex(out, 14, "30CBBC08863D8C85D49DB34A9AE1");
    /* The RFC lists 94 bytes of the authentication key stream; SHA1-80 uses the first 20. */
    g_assert_cmpint(encore_srtp_evp_kdf(mk, ms, 14, ENCORE_SRTP_LABEL_RTP_AUTH, out, 94), ==, 0);
    assert_hex(out, 94,
               "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE"
               "E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25"
               "6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2");

    encore_srtp_evp_session_keys rtp, rtcp;
    g_assert_cmpint(
        encore_srtp_evp_derive(ENCORE_SRTP_AES128_CM_SHA1_80, mk, 16, ms, 14, &rtp, &rtcp), ==, 0);
    assert_hex(rtp.enc_key, 16, "C61E7A93744F39EE10734AFE3FF7A087");
    assert_hex(rtp.salt, 14, "30CBBC08863D8C85D49DB34A9AE1");
    assert_hex(rtp.auth_key, 20, "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4");
    /* RTCP takes labels 3, 4, 5: other keys. */
    g_assert_true(memcmp(rtcp.enc_key, rtp.enc_key, 16) != 0);
    g_assert_cmpint(encore_srtp_evp_kdf(mk, ms, 14, ENCORE_SRTP_LABEL_RTCP_AUTH, out, 20), ==, 0);
    g_assert_cmpmem(rtcp.auth_key, 20, out, 20);

    /* GCM: a 12-byte salt, no authentication key. */
    g_assert_cmpint(
        encore_srtp_evp_derive(ENCORE_SRTP_AEAD_AES_128_GCM, mk, 16, ms, 12, &rtp, &rtcp), ==, 0);
    g_assert_cmpint(encore_srtp_evp_kdf(mk, ms, 12, ENCORE_SRTP_LABEL_RTP_SALT, out, 12), ==, 0);
    g_assert_cmpmem(rtp.salt, 12, out, 12);
    static const uint8_t zero[20];
    g_assert_cmpmem(rtp.salt + 12, 2, zero, 2);
    g_assert_cmpmem(rtp.auth_key, 20, zero, 20);

    /* Wrong lengths and profiles. */
    g_assert_cmpint(
        encore_srtp_evp_derive(ENCORE_SRTP_AEAD_AES_128_GCM, mk, 16, ms, 14, &rtp, &rtcp), ==, -1);
    g_assert_cmpint(
        encore_srtp_evp_derive(ENCORE_SRTP_AES128_CM_SHA1_80, mk, 15, ms, 14, &rtp, &rtcp), ==, -1);
    g_assert_cmpint(encore_srtp_evp_derive(ENCORE_SRTP_PROFILE_NONE, mk, 16, ms, 14, &rtp, &rtcp),
                    ==, -1);
    g_assert_cmpint(encore_srtp_evp_kdf(mk, ms, 15, 0, out, 16), ==, -1);
    g_assert_null(encore_srtp_evp_new(ENCORE_SRTP_PROFILE_NONE, &rtp, &rtcp));
    encore_srtp_evp_free(NULL);
}

/* RFC 3711 appendix B.2: with SSRC 0 and index 0 the AES-CM counter is the session salt, so the
 * payload of a packet of zeros becomes the keystream; the tag is checked against OpenSSL's
 * one-shot HMAC. */
static void test_cm_rfc3711(void)
{
    encore_srtp_evp_session_keys k;
    memset(&k, 0, sizeof k);
    unhex("2B7E151628AED2A6ABF7158809CF4F3C", k.enc_key, sizeof k.enc_key);
    unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD", k.salt, sizeof k.salt);
    for (size_t i = 0; i < sizeof k.auth_key; i++)
        k.auth_key[i] = (uint8_t)(0xa0 + i);
    encore_srtp_evp *tx = encore_srtp_evp_new(ENCORE_SRTP_AES128_CM_SHA1_80, &k, &k);
    g_assert_nonnull(tx);
    _Alignas(8) uint8_t buf[12 + 48 + 10] = {0x80};
    size_t len = 12 + 48;
    g_assert_cmpint(encore_srtp_evp_protect_rtp(tx, buf, &len, sizeof buf), ==, 0);
    g_assert_cmpuint(len, ==, sizeof buf);
    assert_hex(buf + 12, 48,
               "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB"
               "41E95B3BB0A2E8DD477901E4FCA894C0");
    uint8_t msg[12 + 48 + 4] = {0};
    memcpy(msg, buf, 12 + 48); /* ROC 0 follows */
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    g_assert_nonnull(HMAC(EVP_sha1(), k.auth_key, 20, msg, sizeof msg, mac, &mac_len));
    g_assert_cmpmem(buf + 60, 10, mac, 10);
    encore_srtp_evp_free(tx);
}

/* RFC 7714 sections 16.1.1 and 17.1: AEAD_AES_128_GCM with the session key and salt given. */
static void test_gcm_rfc7714(void)
{
    encore_srtp_evp_session_keys k;
    memset(&k, 0, sizeof k);
    unhex("000102030405060708090a0b0c0d0e0f", k.enc_key, sizeof k.enc_key);
    unhex("517569642070726f2071756f", k.salt, 12);
    encore_srtp_evp *tx = encore_srtp_evp_new(ENCORE_SRTP_AEAD_AES_128_GCM, &k, &k);
    g_assert_nonnull(tx);

    _Alignas(8) uint8_t buf[128];
    size_t len = unhex("8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 "
                       "20646976 69736120 696e2070 61727465 73207472 6573",
                       buf, sizeof buf);
    g_assert_cmpint(encore_srtp_evp_protect_rtp(tx, buf, &len, sizeof buf), ==, 0);
    assert_hex(buf, len,
               "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5"
               "0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce");

    /* SRTCP index 0x5d4 of SSRC "Mars": use up indexes 1..0x5d3 first. */
    const char *rtcp_plain = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930"
                             "4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";
    for (int i = 1; i < 0x5d4; i++) {
        len = unhex(rtcp_plain, buf, sizeof buf);
        g_assert_cmpint(encore_srtp_evp_protect_rtcp(tx, buf, &len, sizeof buf), ==, 0);
        g_assert_cmpint((buf[len - 2] << 8) | buf[len - 1], ==, i);
    }
    len = unhex(rtcp_plain, buf, sizeof buf);
    g_assert_cmpint(encore_srtp_evp_protect_rtcp(tx, buf, &len, sizeof buf), ==, 0);
    assert_hex(buf, len,
               "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d"
               "c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872"
               "45d9eade 800005d4");
    encore_srtp_evp_free(tx);
}

/* The known-answer packets of libsrtp's own test driver (test/srtp_driver.c, srtp_validate and
 * srtp_validate_gcm): master key to wire bytes, through the public API, and through the libsrtp
 * reference as a check on the reference itself. */
static void test_libsrtp_vectors(gconstpointer data)
{
    encore_srtp_profile profile = GPOINTER_TO_INT(data);
    bool gcm = profile == ENCORE_SRTP_AEAD_AES_128_GCM;
    uint8_t key[16], salt[14];
    if (gcm) {
        unhex("000102030405060708090a0b0c0d0e0f", key, sizeof key);
        unhex("a0a1a2a3a4a5a6a7a8a9aaab", salt, sizeof salt);
    } else {
        unhex("e1f97a0d3e018be0d64fa32c06de4139", key, sizeof key);
        unhex("0ec675ad498afeebb6960b3aabe6", salt, sizeof salt);
    }
    const char *rtp_plain = "800f1234 decafbad cafebabe abababab abababab abababab abababab";
    const char *rtcp_plain = "81c8000b cafebabe abababab abababab abababab abababab";
    const char *rtp_want =
        gcm ? "800f1234 decafbad cafebabe c5002ede 04cfdd2e b91159e0 880aa06e d2976826 f796b201"
              "df3131a1 27e8a392"
            : "800f1234 decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402 b78d6acc 99ea179b"
              "8dbb";
    const char *rtcp_want =
        gcm ? "81c8000b cafebabe c98b8b5d f0392a55 852b6c21 ac8e7025 c52c6fbe a2b3b446 ea31123b"
              "a88ce61e 80000001"
            : "81c8000b cafebabe 7128035b e487b9bd bef89041 f977a5a8 80000001 993e08cd 54d6c123"
              "0798";

    encore_srtp *s = evp_session(profile, key, salt);
    ref_tx ref;
    ref_init(&ref, profile, key, salt);
    for (int which = 0; which < 2; which++) {
        _Alignas(8) uint8_t buf[128];
        size_t len = unhex(rtp_plain, buf, sizeof buf);
        int rc = which ? ref_protect_rtp(&ref, buf, &len, sizeof buf)
                       : encore_srtp_protect_rtp(s, buf, &len, sizeof buf);
        g_assert_cmpint(rc, ==, 0);
        assert_hex(buf, len, rtp_want);
        len = unhex(rtcp_plain, buf, sizeof buf);
        rc = which ? ref_protect_rtcp(&ref, buf, &len, sizeof buf)
                   : encore_srtp_protect_rtcp(s, buf, &len, sizeof buf);
        g_assert_cmpint(rc, ==, 0);
        assert_hex(buf, len, rtcp_want);
    }
    srtp_dealloc(ref.session);
    encore_srtp_free(s);
}

/* ---- byte for byte against libsrtp over a long run ---- */

#define GEN_SSRCS 4
#define GEN_HISTORY 64
#define GEN_BUF 1600

/* A deterministic stream of packets the way a sender might produce them, and worse. */
typedef struct {
    GRand *rand;
    uint32_t ssrc[GEN_SSRCS + 1]; /* the last one only sends RTCP */
    uint16_t next_seq[GEN_SSRCS];
    uint8_t history[GEN_HISTORY][GEN_BUF]; /* recent plain RTP packets, for retransmissions */
    size_t history_len[GEN_HISTORY];
    guint history_n;
    /* The last packet was a jump of stream jump_slot from jump_from: undone if refused. */
    int jump_slot;
    uint16_t jump_from;
} gen;

static guint gen_range(gen *g, guint lo, guint hi) /* [lo, hi] */
{
    return (guint)g_rand_int_range(g->rand, (gint32)lo, (gint32)hi + 1);
}

static void gen_bytes(gen *g, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)g_rand_int(g->rand);
}

/* A valid RTP packet of SSRC slot i with sequence number seq: CSRCs, header extensions, marker,
 * padding bit and payload length (0..1200) all vary. */
static size_t gen_rtp(gen *g, int i, uint16_t seq, uint8_t *buf)
{
    guint cc = gen_range(g, 0, 9) == 0 ? gen_range(g, 1, 15) : 0;
    bool x = gen_range(g, 0, 4) == 0;
    buf[0] = (uint8_t)(0x80 | (gen_range(g, 0, 19) == 0 ? 0x20 : 0) | (x ? 0x10 : 0) | cc);
    buf[1] = (uint8_t)g_rand_int(g->rand);
    buf[2] = (uint8_t)(seq >> 8);
    buf[3] = (uint8_t)seq;
    gen_bytes(g, buf + 4, 4);
    buf[8] = (uint8_t)(g->ssrc[i] >> 24);
    buf[9] = (uint8_t)(g->ssrc[i] >> 16);
    buf[10] = (uint8_t)(g->ssrc[i] >> 8);
    buf[11] = (uint8_t)g->ssrc[i];
    size_t n = 12;
    gen_bytes(g, buf + n, 4 * cc);
    n += 4 * cc;
    if (x) {
        guint words = gen_range(g, 0, 9) == 0 ? gen_range(g, 9, 40) : gen_range(g, 0, 8);
        if (gen_range(g, 0, 1)) {
            buf[n] = 0xBE;
            buf[n + 1] = 0xDE;
        } else {
            gen_bytes(g, buf + n, 2);
        }
        buf[n + 2] = (uint8_t)(words >> 8);
        buf[n + 3] = (uint8_t)words;
        gen_bytes(g, buf + n + 4, 4 * words);
        n += 4 + 4 * words;
    }
    guint r = gen_range(g, 0, 99);
    size_t payload = r < 5 ? 0 : r < 70 ? gen_range(g, 20, 300) : gen_range(g, 0, 1200);
    gen_bytes(g, buf + n, payload);
    return n + payload;
}

/* A (compound) RTCP packet from one of the SSRCs: 8 to 248 bytes. */
static size_t gen_rtcp(gen *g, uint8_t *buf)
{
    guint words = gen_range(g, 0, 60);
    uint32_t ssrc = g->ssrc[gen_range(g, 0, GEN_SSRCS)];
    buf[0] = (uint8_t)(0x80 | gen_range(g, 0, 31) | (gen_range(g, 0, 19) == 0 ? 0x20 : 0));
    buf[1] = (uint8_t)gen_range(g, 200, 207);
    buf[2] = (uint8_t)((words + 1) >> 8);
    buf[3] = (uint8_t)(words + 1);
    buf[4] = (uint8_t)(ssrc >> 24);
    buf[5] = (uint8_t)(ssrc >> 16);
    buf[6] = (uint8_t)(ssrc >> 8);
    buf[7] = (uint8_t)ssrc;
    gen_bytes(g, buf + 8, 4 * words);
    return 8 + 4 * words;
}

static int gen_pick_ssrc(gen *g)
{
    guint r = gen_range(g, 0, 99);
    return r < 50 ? 0 : r < 70 ? 1 : r < 85 ? 2 : 3;
}

typedef struct {
    guint rtp_ok, rtcp_ok, replay, malformed, nospace, retransmits, late, jumps;
} run_counts;

/* Builds the next packet into buf; returns its length and whether it is RTCP. May set *cap
 * smaller than the buffer to provoke NOSPACE. */
static size_t gen_next(gen *g, uint8_t *buf, size_t *cap, bool *rtcp, run_counts *c)
{
    *cap = GEN_BUF;
    g->jump_slot = -1;
    *rtcp = gen_range(g, 0, 99) < 45;
    size_t n;
    if (*rtcp) {
        n = gen_rtcp(g, buf);
    } else {
        int i = gen_pick_ssrc(g);
        guint action = gen_range(g, 0, 999);
        if (action < 80 && g->history_n > 0) {
            /* A NACK retransmission: the same bytes again. */
            guint h = gen_range(g, 0, MIN(g->history_n, GEN_HISTORY) - 1);
            memcpy(buf, g->history[h], g->history_len[h]);
            c->retransmits++;
            return g->history_len[h];
        }
        uint16_t seq;
        if (action < 150) {
            /* A gap: packets that never went out (e.g. the singer's loss). */
            g->next_seq[i] = (uint16_t)(g->next_seq[i] + gen_range(g, 2, 3000));
            seq = g->next_seq[i]++;
        } else if (action < 220) {
            /* Late: inside the window or (about half of the time) behind it. */
            seq = (uint16_t)(g->next_seq[i] - gen_range(g, 1, 2000));
            c->late++;
        } else if (action < 225) {
            /* A jump of about half the sequence space: the rollover guess goes either way. A
             * refused one is undone, or every later packet of the stream would be refused too. */
            g->jump_slot = i;
            g->jump_from = g->next_seq[i];
            guint d = gen_range(g, 20000, 45000);
            g->next_seq[i] = (uint16_t)(g->next_seq[i] + (gen_range(g, 0, 1) ? d : 65536 - d));
            seq = g->next_seq[i]++;
            c->jumps++;
        } else {
            seq = g->next_seq[i]++;
        }
        n = gen_rtp(g, i, seq, buf);
        guint h = g->history_n++ % GEN_HISTORY;
        memcpy(g->history[h], buf, n);
        g->history_len[h] = n;
    }
    guint bad = gen_range(g, 0, 99);
    if (bad == 0) {
        /* Malformed: cut short, wrong version, or a header running past the end. */
        switch (gen_range(g, 0, 2)) {
        case 0:
            n = gen_range(g, 0, *rtcp ? 7 : 11);
            break;
        case 1:
            buf[0] = (uint8_t)((buf[0] & 0x3f) | (gen_range(g, 0, 2) << 6));
            break;
        default:
            if (!*rtcp) {
                buf[0] |= 0x0f;
                n = MIN(n, 12 + 59);
            }
            break;
        }
    } else if (bad == 1) {
        /* One byte short of room for the trailer. */
        *cap = n + (*rtcp ? 4 : 0) + 9;
    }
    return n;
}

static void test_identical(gconstpointer data)
{
    encore_srtp_profile profile = GPOINTER_TO_INT(data);
    guint32 seed = g_test_rand_int();
    gen *g = g_new0(gen, 1);
    g->rand = g_rand_new_with_seed(seed);
    for (int i = 0; i <= GEN_SSRCS; i++)
        g->ssrc[i] = g_rand_int(g->rand);
    /* Stream 0 wraps within the first 300 packets, stream 1 starts at 0, stream 2 right above
     * the point where libsrtp starts to guess the rollover counter, stream 3 anywhere. */
    g->next_seq[0] = 65236;
    g->next_seq[1] = 0;
    g->next_seq[2] = 0x8001;
    g->next_seq[3] = (uint16_t)g_rand_int(g->rand);

    uint8_t key[16], salt[14];
    gen_bytes(g, key, sizeof key);
    gen_bytes(g, salt, sizeof salt);
    encore_srtp *s = evp_session(profile, key, salt);
    ref_tx ref;
    ref_init(&ref, profile, key, salt);

    run_counts c = {0};
    _Alignas(8) uint8_t a[GEN_BUF + 32], b[GEN_BUF + 32];
    guint step = 0;
    for (; c.rtp_ok < 100000 || c.rtcp_ok < 100000; step++) {
        size_t cap;
        bool rtcp;
        size_t n = gen_next(g, a, &cap, &rtcp, &c);
        memcpy(b, a, n);
        size_t alen = n, blen = n;
        int ra =
            rtcp ? ref_protect_rtcp(&ref, a, &alen, cap) : ref_protect_rtp(&ref, a, &alen, cap);
        int rb = rtcp ? encore_srtp_protect_rtcp(s, b, &blen, cap)
                      : encore_srtp_protect_rtp(s, b, &blen, cap);
        if (ra != rb || alen != blen || memcmp(a, b, MAX(alen, n)) != 0)
            g_error("seed %" G_GUINT32_FORMAT " step %u (%s, %zu bytes): libsrtp %d/%zu, OpenSSL "
                    "%d/%zu, bytes %s",
                    seed, step, rtcp ? "RTCP" : "RTP", n, ra, alen, rb, blen,
                    memcmp(a, b, MAX(alen, n)) ? "differ" : "equal");
        if (ra == ENCORE_SRTP_ERR_REPLAY && g->jump_slot >= 0)
            g->next_seq[g->jump_slot] = g->jump_from;
        if (ra == 0)
            (*(rtcp ? &c.rtcp_ok : &c.rtp_ok))++;
        else if (ra == ENCORE_SRTP_ERR_REPLAY)
            c.replay++;
        else if (ra == ENCORE_SRTP_ERR_MALFORMED)
            c.malformed++;
        else if (ra == ENCORE_SRTP_ERR_NOSPACE)
            c.nospace++;
        else
            g_error("unexpected error %d at step %u", ra, step);
    }
    /* libsrtp's own rollover counters moved, so the comparison covered ROC > 0. */
    guint32 roc[GEN_SSRCS];
    for (int i = 0; i < GEN_SSRCS; i++)
        g_assert_cmpint(srtp_get_stream_roc(ref.session, g->ssrc[i], &roc[i]), ==, 0);
    g_test_message(
        "%s seed %" G_GUINT32_FORMAT ": %u steps, identical: %u RTP + %u RTCP "
        "protected, %u retransmissions, %u late, %u half-space jumps; same errors: %u "
        "replay, %u malformed, %u no space; libsrtp's ROC per SSRC at the end %u/%u/%u/%u",
        encore_srtp_profile_name(profile), seed, step, c.rtp_ok, c.rtcp_ok, c.retransmits, c.late,
        c.jumps, c.replay, c.malformed, c.nospace, roc[0], roc[1], roc[2], roc[3]);
    g_assert_cmpuint(roc[0], >=, 1);
    g_assert_cmpuint(c.replay, >, 0);
    g_assert_cmpuint(c.malformed, >, 0);
    g_assert_cmpuint(c.nospace, >, 0);
    srtp_dealloc(ref.session);
    encore_srtp_free(s);
    g_rand_free(g->rand);
    g_free(g);
}

/* Sequence numbers chosen to hit each branch of libsrtp's index estimate, one fresh session per
 * start, same bytes and same errors. */
static void test_identical_edges(gconstpointer data)
{
    encore_srtp_profile profile = GPOINTER_TO_INT(data);
    static const uint16_t starts[] = {0, 1, 1023, 1024, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff};
    static const int32_t steps[] = {1,      -1,      1024,    -1023, -1024,  -1025, 0x7fff, 0x8000,
                                    0x8001, -0x7fff, -0x8000, 30000, -30000, 1,     1,      2};
    uint8_t key[16] = {1, 2, 3}, salt[14] = {4, 5, 6};
    guint compared = 0;
    for (size_t si = 0; si < G_N_ELEMENTS(starts); si++) {
        encore_srtp *s = evp_session(profile, key, salt);
        ref_tx ref;
        ref_init(&ref, profile, key, salt);
        uint16_t seq = starts[si];
        for (int round = 0; round < 40; round++) {
            for (size_t k = 0; k < G_N_ELEMENTS(steps); k++) {
                _Alignas(8) uint8_t a[BUF_CAP], b[BUF_CAP];
                size_t alen = make_rtp(a, seq, 0x5eed, (uint8_t)k), blen = alen;
                memcpy(b, a, alen);
                int ra = ref_protect_rtp(&ref, a, &alen, sizeof a);
                int rb = encore_srtp_protect_rtp(s, b, &blen, sizeof b);
                g_assert_cmpint(ra, ==, rb);
                g_assert_cmpmem(a, alen, b, blen);
                compared++;
                seq = (uint16_t)(seq + steps[(k + si + (size_t)round) % G_N_ELEMENTS(steps)]);
            }
        }
        srtp_dealloc(ref.session);
        encore_srtp_free(s);
    }
    g_assert_cmpuint(compared, ==, G_N_ELEMENTS(starts) * 40 * G_N_ELEMENTS(steps));
}

/* One session keeps 16 SSRCs; a 17th fails cleanly and the others go on. */
static void test_stream_limit(gconstpointer data)
{
    encore_srtp_profile profile = GPOINTER_TO_INT(data);
    uint8_t key[16] = {9}, salt[14] = {8};
    encore_srtp *s = evp_session(profile, key, salt);
    _Alignas(8) uint8_t buf[BUF_CAP];
    size_t len;
    for (uint32_t i = 0; i < ENCORE_SRTP_EVP_MAX_STREAMS; i++) {
        len = make_rtp(buf, 7, 1000 + i, 1);
        g_assert_cmpint(encore_srtp_protect_rtp(s, buf, &len, sizeof buf), ==, 0);
    }
    len = make_rtp(buf, 7, 5000, 1);
    g_assert_cmpint(encore_srtp_protect_rtp(s, buf, &len, sizeof buf), ==,
                    ENCORE_SRTP_ERR_INTERNAL);
    len = make_rtcp(buf, 5000, 1);
    g_assert_cmpint(encore_srtp_protect_rtcp(s, buf, &len, sizeof buf), ==,
                    ENCORE_SRTP_ERR_INTERNAL);
    len = make_rtcp(buf, 1003, 1); /* an SSRC it has */
    g_assert_cmpint(encore_srtp_protect_rtcp(s, buf, &len, sizeof buf), ==, 0);
    len = make_rtp(buf, 8, 1015, 1);
    g_assert_cmpint(encore_srtp_protect_rtp(s, buf, &len, sizeof buf), ==, 0);
    encore_srtp_free(s);
}

/* After a stream's first packet, protect makes no OpenSSL allocation at all (OpenSSL's memory
 * hooks count every one), for RTP and RTCP. */
static void test_no_allocation(gconstpointer data)
{
    encore_srtp_profile profile = GPOINTER_TO_INT(data);
    if (!openssl_counting) {
        g_test_skip("OpenSSL allocated before main could hook its allocator");
        return;
    }
    uint8_t key[16] = {7}, salt[14] = {6};
    gint at_start = g_atomic_int_get(&openssl_allocs);
    encore_srtp *s = evp_session(profile, key, salt);
    /* The hooks see OpenSSL's allocations: setting up the cipher contexts makes some. */
    g_assert_cmpint(g_atomic_int_get(&openssl_allocs), >, at_start);
    _Alignas(8) uint8_t buf[BUF_CAP];
    size_t len = make_rtp(buf, 1, 77, 1);
    g_assert_cmpint(encore_srtp_protect_rtp(s, buf, &len, sizeof buf), ==, 0);
    gint before = g_atomic_int_get(&openssl_allocs);
    for (int i = 0; i < 20000; i++) {
        len = make_rtp(buf, (uint16_t)(i + 2), 77, (uint8_t)i);
        g_assert_cmpint(encore_srtp_protect_rtp(s, buf, &len, sizeof buf), ==, 0);
        len = make_rtcp(buf, 77, (uint8_t)i);
        g_assert_cmpint(encore_srtp_protect_rtcp(s, buf, &len, sizeof buf), ==, 0);
    }
    g_assert_cmpint(g_atomic_int_get(&openssl_allocs) - before, ==, 0);
    encore_srtp_free(s);
}

static void add(const char *name, GTestDataFunc fn)
{
    static const struct {
        encore_srtp_profile profile;
        const char *tag;
    } profiles[] = {
        {ENCORE_SRTP_AES128_CM_SHA1_80, "aes-cm"},
        {ENCORE_SRTP_AEAD_AES_128_GCM, "aes-gcm"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(profiles); i++) {
        char *path = g_strdup_printf("/srtp/%s/%s", name, profiles[i].tag);
        g_test_add_data_func(path, GINT_TO_POINTER(profiles[i].profile), fn);
        g_free(path);
    }
}

int main(int argc, char **argv)
{
    /* Before anything can make OpenSSL allocate; fails (and the no-allocation test skips) if
     * something already did. */
    openssl_counting = CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free) == 1;
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/srtp/new/invalid", test_new_invalid);
    add("rtp-roundtrip", test_rtp_roundtrip);
    add("rtp-tamper", test_rtp_tamper);
    add("rtp-replay", test_rtp_replay);
    add("rtp-repeat-tx", test_repeat_tx);
    add("rtcp", test_rtcp);
    add("malformed", test_malformed);
    add("protect-timing", test_protect_timing);
    g_test_add_func("/srtp/evp/kdf-rfc3711", test_kdf_rfc3711);
    g_test_add_func("/srtp/evp/aes-cm-rfc3711", test_cm_rfc3711);
    g_test_add_func("/srtp/evp/aes-gcm-rfc7714", test_gcm_rfc7714);
    add("libsrtp-vectors", test_libsrtp_vectors);
    add("identical-to-libsrtp", test_identical);
    add("identical-index-edges", test_identical_edges);
    add("stream-limit", test_stream_limit);
    add("no-allocation", test_no_allocation);
    return g_test_run();
}
