/* Unit tests of media/srtp: sessions keyed by a real DTLS-SRTP handshake (media/dtls), RTP and RTCP
 * round trips across a sequence wrap, tampering, replay, repeated transmission, malformed input,
 * for both profiles; plus a rough protect timing that is printed, not asserted. */
#include "config.h"

#include <string.h>

#include <gio/gio.h>
#include <glib.h>

#include "media/dtls.h"
#include "media/srtp.h"

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
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/srtp/new/invalid", test_new_invalid);
    add("rtp-roundtrip", test_rtp_roundtrip);
    add("rtp-tamper", test_rtp_tamper);
    add("rtp-replay", test_rtp_replay);
    add("rtp-repeat-tx", test_repeat_tx);
    add("rtcp", test_rtcp);
    add("malformed", test_malformed);
    add("protect-timing", test_protect_timing);
    return g_test_run();
}
