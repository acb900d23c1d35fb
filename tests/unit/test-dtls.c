/* Unit tests of media/dtls: real DTLS 1.2 handshakes between two encore_dtls endpoints (and raw
 * OpenSSL peers) wired in memory, fingerprint checks, retransmission, garbage, close_notify and
 * renegotiation. The retransmission timer is driven by a fake clock (see gettimeofday below). */
#include "config.h"

#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <glib.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "media/dtls.h"

/* ---- fake clock ----
 * OpenSSL 3.0 reads its DTLS retransmission timer with gettimeofday(). This definition interposes
 * the libc one for the whole test process, adding clock_skew_us, so the tests jump ahead in time
 * instead of sleeping. Everything else in the test uses clock_gettime or GLib's monotonic clock. */
static gint64 clock_skew_us;

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    gint64 us = (gint64)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + clock_skew_us;
    tv->tv_sec = (time_t)(us / 1000000);
    tv->tv_usec = (suseconds_t)(us % 1000000);
    return 0;
}

static void advance_clock_ms(int ms)
{
    clock_skew_us += (gint64)ms * 1000 + 1000;
}

/* ---- an in-memory pair ---- */

#define MAX_STEPS 1000

typedef struct {
    GQueue to_server;   /* GBytes datagrams the client sent */
    GQueue to_client;   /* GBytes datagrams the server sent */
    int drop_to_server; /* drop this many of the client's next datagrams */
    int drop_to_client;
    int sent_by_client; /* datagrams passed to send, dropped or not */
    int sent_by_server;
} wire;

static void client_send(const uint8_t *data, size_t len, void *user_data)
{
    wire *w = user_data;
    w->sent_by_client++;
    if (w->drop_to_server > 0) {
        w->drop_to_server--;
        return;
    }
    g_assert_cmpuint(len, <=, ENCORE_DTLS_MTU);
    g_queue_push_tail(&w->to_server, g_bytes_new(data, len));
}

static void server_send(const uint8_t *data, size_t len, void *user_data)
{
    wire *w = user_data;
    w->sent_by_server++;
    if (w->drop_to_client > 0) {
        w->drop_to_client--;
        return;
    }
    g_assert_cmpuint(len, <=, ENCORE_DTLS_MTU);
    g_queue_push_tail(&w->to_client, g_bytes_new(data, len));
}

static void queue_clear(GQueue *q)
{
    GBytes *b;
    while ((b = g_queue_pop_head(q)))
        g_bytes_unref(b);
}

typedef struct {
    encore_dtls_cert *client_cert;
    encore_dtls_cert *server_cert;
    encore_dtls *client;
    encore_dtls *server;
    wire w;
    int client_connected; /* how many times handle returned CONNECTED */
    int server_connected;
    int client_error; /* first negative result seen */
    int server_error;
    bool drop_server_final; /* drop what the server sends while reporting CONNECTED */
    int timeouts_fired;
} pair;

static encore_dtls_cert *new_cert(void)
{
    GError *error = NULL;
    encore_dtls_cert *cert = encore_dtls_cert_new(&error);
    g_assert_no_error(error);
    g_assert_nonnull(cert);
    return cert;
}

static void cert_fp(encore_dtls_cert *cert, const char *alg, uint8_t *out, size_t *len)
{
    g_assert_cmpint(encore_dtls_cert_digest(cert, alg, out, ENCORE_DTLS_FP_MAX, len), ==, 0);
}

/* Sets up a client and a server, each expecting the other's certificate under fp_alg. corrupt_*
 * flips a bit of the fingerprint that side expects. */
static void pair_init(pair *p, const char *fp_alg, bool corrupt_client_view,
                      bool corrupt_server_view)
{
    memset(p, 0, sizeof(*p));
    g_queue_init(&p->w.to_server);
    g_queue_init(&p->w.to_client);
    p->client_cert = new_cert();
    p->server_cert = new_cert();
    uint8_t fp[ENCORE_DTLS_FP_MAX];
    size_t fp_len;
    cert_fp(p->server_cert, fp_alg, fp, &fp_len);
    if (corrupt_client_view)
        fp[fp_len - 1] ^= 0x01;
    p->client =
        encore_dtls_new(p->client_cert, ENCORE_DTLS_CLIENT, fp_alg, fp, fp_len, client_send, &p->w);
    g_assert_nonnull(p->client);
    cert_fp(p->client_cert, fp_alg, fp, &fp_len);
    if (corrupt_server_view)
        fp[0] ^= 0x80;
    p->server =
        encore_dtls_new(p->server_cert, ENCORE_DTLS_SERVER, fp_alg, fp, fp_len, server_send, &p->w);
    g_assert_nonnull(p->server);
}

static void pair_clear(pair *p)
{
    encore_dtls_free(p->client);
    encore_dtls_free(p->server);
    encore_dtls_cert_unref(p->client_cert);
    encore_dtls_cert_unref(p->server_cert);
    queue_clear(&p->w.to_server);
    queue_clear(&p->w.to_client);
}

static void note_result(int r, int *connected, int *error)
{
    g_assert_cmpint(r, >=, ENCORE_DTLS_ERR_STATE);
    g_assert_cmpint(r, <=, ENCORE_DTLS_CONNECTED);
    if (r == ENCORE_DTLS_CONNECTED)
        (*connected)++;
    else if (r < 0 && *error == 0)
        *error = r;
}

static bool pair_done(const pair *p)
{
    bool client_done = p->client_connected || p->client_error;
    bool server_done = p->server_connected || p->server_error;
    return client_done && server_done;
}

/* Delivers queued datagrams both ways; when both queues are empty, jumps the clock to the next
 * retransmission timer and fires it. Stops when both sides are done, or nothing can happen. */
static void pair_run(pair *p)
{
    for (int step = 0; step < MAX_STEPS; step++) {
        GBytes *b;
        if ((b = g_queue_pop_head(&p->w.to_server))) {
            gsize n;
            const uint8_t *d = g_bytes_get_data(b, &n);
            int r = encore_dtls_handle(p->server, d, n);
            if (r == ENCORE_DTLS_CONNECTED && p->drop_server_final) {
                queue_clear(&p->w.to_client);
                p->drop_server_final = false;
            }
            note_result(r, &p->server_connected, &p->server_error);
            g_bytes_unref(b);
            continue;
        }
        if ((b = g_queue_pop_head(&p->w.to_client))) {
            gsize n;
            const uint8_t *d = g_bytes_get_data(b, &n);
            note_result(encore_dtls_handle(p->client, d, n), &p->client_connected,
                        &p->client_error);
            g_bytes_unref(b);
            continue;
        }
        if (pair_done(p))
            return;
        int tc = encore_dtls_timeout_ms(p->client), ts = encore_dtls_timeout_ms(p->server);
        if (tc < 0 && ts < 0)
            return;
        int wait = tc < 0 ? ts : ts < 0 ? tc : MIN(tc, ts);
        advance_clock_ms(wait);
        p->timeouts_fired++;
        if (tc >= 0)
            note_result(encore_dtls_handle_timeout(p->client), &p->client_connected,
                        &p->client_error);
        if (ts >= 0)
            note_result(encore_dtls_handle_timeout(p->server), &p->server_connected,
                        &p->server_error);
    }
    g_assert_not_reached();
}

static void pair_connect(pair *p)
{
    g_assert_cmpint(encore_dtls_start(p->client), ==, 0);
    g_assert_cmpint(encore_dtls_start(p->server), ==, 0);
    pair_run(p);
}

static void assert_keys_crosswise(pair *p, encore_srtp_profile want)
{
    encore_srtp_keys kc, ks;
    g_assert_cmpint(encore_dtls_srtp_keys(p->client, &kc), ==, 0);
    g_assert_cmpint(encore_dtls_srtp_keys(p->server, &ks), ==, 0);
    size_t key_len, salt_len;
    g_assert_cmpint(encore_srtp_profile_lengths(want, &key_len, &salt_len), ==, 0);
    g_assert_cmpint(kc.profile, ==, want);
    g_assert_cmpint(ks.profile, ==, want);
    g_assert_cmpuint(kc.key_len, ==, key_len);
    g_assert_cmpuint(kc.salt_len, ==, salt_len);
    g_assert_cmpuint(ks.key_len, ==, key_len);
    g_assert_cmpuint(ks.salt_len, ==, salt_len);
    g_assert_cmpmem(kc.local_key, key_len, ks.remote_key, key_len);
    g_assert_cmpmem(kc.local_salt, salt_len, ks.remote_salt, salt_len);
    g_assert_cmpmem(kc.remote_key, key_len, ks.local_key, key_len);
    g_assert_cmpmem(kc.remote_salt, salt_len, ks.local_salt, salt_len);
    /* The two directions have different keys, and they are not all zero. */
    g_assert_true(memcmp(kc.local_key, kc.remote_key, key_len) != 0);
    g_assert_true(memcmp(kc.local_salt, kc.remote_salt, salt_len) != 0);
    static const uint8_t zero[ENCORE_SRTP_MAX_KEY_LEN];
    g_assert_true(memcmp(kc.local_key, zero, key_len) != 0);
}

static void assert_no_keys(encore_dtls *d)
{
    encore_srtp_keys k;
    memset(&k, 0xAA, sizeof(k));
    g_assert_cmpint(encore_dtls_srtp_keys(d, &k), ==, ENCORE_DTLS_ERR_STATE);
    g_assert_cmpint(k.profile, ==, ENCORE_SRTP_PROFILE_NONE);
    g_assert_cmpuint(k.key_len, ==, 0);
    g_assert_false(encore_dtls_is_connected(d));
}

/* ---- tests ---- */

static void test_cert_fingerprint(void)
{
    encore_dtls_cert *a = new_cert(), *b = new_cert();
    const char *fa = encore_dtls_cert_fingerprint(a);
    g_assert_true(g_str_has_prefix(fa, "sha-256 "));
    g_assert_cmpuint(strlen(fa), ==, 8 + 32 * 3 - 1);
    for (size_t i = 8; fa[i]; i++) {
        if ((i - 8) % 3 == 2)
            g_assert_cmpint(fa[i], ==, ':');
        else
            g_assert_true(g_ascii_isxdigit(fa[i]) && !g_ascii_islower(fa[i]));
    }
    const char *alg = NULL;
    uint8_t parsed[ENCORE_DTLS_FP_MAX], digest[ENCORE_DTLS_FP_MAX];
    size_t parsed_len = 0, digest_len = 0;
    g_assert_cmpint(
        encore_dtls_fingerprint_parse(fa, strlen(fa), &alg, parsed, sizeof(parsed), &parsed_len),
        ==, 0);
    g_assert_cmpstr(alg, ==, "sha-256");
    cert_fp(a, "sha-256", digest, &digest_len);
    g_assert_cmpmem(parsed, parsed_len, digest, digest_len);
    cert_fp(a, "SHA-1", digest, &digest_len);
    g_assert_cmpuint(digest_len, ==, 20);
    cert_fp(a, "sha-384", digest, &digest_len);
    g_assert_cmpuint(digest_len, ==, 48);
    cert_fp(a, "sha-512", digest, &digest_len);
    g_assert_cmpuint(digest_len, ==, 64);
    g_assert_cmpint(encore_dtls_cert_digest(a, "md5", digest, sizeof(digest), &digest_len), ==, -1);
    g_assert_cmpint(encore_dtls_cert_digest(a, "sha-256", digest, 31, &digest_len), ==, -1);
    /* Two certificates, two keys, two fingerprints. */
    g_assert_cmpstr(fa, !=, encore_dtls_cert_fingerprint(b));
    /* Refcounting: the extra reference keeps it alive. */
    g_assert_true(encore_dtls_cert_ref(a) == a);
    encore_dtls_cert_unref(a);
    g_assert_cmpstr(encore_dtls_cert_fingerprint(a), ==, fa);
    encore_dtls_cert_free(a);
    encore_dtls_cert_free(b);
    encore_dtls_cert_free(NULL);
}

static int parse(const char *text, const char **alg, uint8_t *out, size_t *len)
{
    return encore_dtls_fingerprint_parse(text, strlen(text), alg, out, ENCORE_DTLS_FP_MAX, len);
}

static void test_fingerprint_parse(void)
{
    const char *alg = NULL;
    uint8_t out[ENCORE_DTLS_FP_MAX];
    size_t len = 0;
    static const uint8_t sha1[20] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99,
                                     0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x0f, 0xf0, 0xa5, 0x5a};
    g_assert_cmpint(
        parse("SHA-1 00:11:22:33:44:55:66:77:88:99:aa:BB:cc:DD:ee:FF:0F:F0:A5:5a", &alg, out, &len),
        ==, 0);
    g_assert_cmpstr(alg, ==, "sha-1");
    g_assert_cmpmem(out, len, sha1, sizeof(sha1));
    g_assert_cmpint(parse("  sha-1\t00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:0F:F0:A5:5A \t",
                          &alg, out, &len),
                    ==, 0);
    g_assert_cmpmem(out, len, sha1, sizeof(sha1));

    GString *s = g_string_new("sha-512 ");
    for (int i = 0; i < 64; i++)
        g_string_append_printf(s, i ? ":%02X" : "%02X", i);
    g_assert_cmpint(parse(s->str, &alg, out, &len), ==, 0);
    g_assert_cmpstr(alg, ==, "sha-512");
    g_assert_cmpuint(len, ==, 64);
    g_assert_cmpint(out[63], ==, 63);
    /* Too small an output buffer. */
    g_assert_cmpint(encore_dtls_fingerprint_parse(s->str, s->len, &alg, out, 63, &len), ==, -1);
    g_string_free(s, TRUE);

    static const char *const bad[] = {
        "",
        "sha-1",
        "sha-1 ",
        "md5 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
        "sha-2 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:0F:F0:A5:5A",
        /* 19 and 21 bytes */
        "sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:0F:F0:A5",
        "sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:0F:F0:A5:5A:00",
        /* a bad digit, a missing colon, a trailing colon, a double colon, a single digit */
        "sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:0F:F0:A5:5G",
        "sha-1 0011:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:0F:F0:A5:5A:00",
        "sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:0F:F0:A5:5A:",
        "sha-1 00::11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:0F:F0:A5:5A",
        "sha-1 0:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:0F:F0:A5:5A",
        "sha-1 00 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:0F:F0:A5:5A",
        "sha-1:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:0F:F0:A5:5A",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        len = 12345;
        if (parse(bad[i], &alg, out, &len) != -1)
            g_error("accepted bad fingerprint '%s'", bad[i]);
    }
    /* Not NUL-terminated input: the length decides. */
    const char *text = "sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:0F:F0:A5:5A:FF";
    g_assert_cmpint(
        encore_dtls_fingerprint_parse(text, strlen(text) - 3, &alg, out, sizeof(out), &len), ==, 0);
    g_assert_cmpuint(len, ==, 20);
}

static void dummy_send(const uint8_t *data, size_t len, void *user_data)
{
    (*(int *)user_data)++;
}

static void test_new_invalid(void)
{
    encore_dtls_cert *cert = new_cert();
    uint8_t fp[64] = {0};
    int sent = 0;
    g_assert_null(encore_dtls_new(cert, ENCORE_DTLS_CLIENT, "md5", fp, 16, dummy_send, &sent));
    g_assert_null(encore_dtls_new(cert, ENCORE_DTLS_CLIENT, "sha-256", fp, 20, dummy_send, &sent));
    g_assert_null(encore_dtls_new(cert, ENCORE_DTLS_CLIENT, "sha-1", fp, 32, dummy_send, &sent));
    g_assert_null(encore_dtls_new(NULL, ENCORE_DTLS_CLIENT, "sha-1", fp, 20, dummy_send, &sent));
    g_assert_null(encore_dtls_new(cert, ENCORE_DTLS_CLIENT, "sha-1", fp, 20, NULL, &sent));
    g_assert_null(encore_dtls_new(cert, (encore_dtls_role)7, "sha-1", fp, 20, dummy_send, &sent));

    encore_dtls *d =
        encore_dtls_new(cert, ENCORE_DTLS_CLIENT, "Sha-512", fp, 64, dummy_send, &sent);
    g_assert_nonnull(d);
    /* Nothing happens before start: no timer, no keys, input ignored. */
    g_assert_cmpint(encore_dtls_timeout_ms(d), ==, -1);
    static const uint8_t junk[] = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    g_assert_cmpint(encore_dtls_handle(d, junk, sizeof(junk)), ==, 0);
    g_assert_cmpint(sent, ==, 0);
    assert_no_keys(d);
    g_assert_cmpint(encore_dtls_set_srtp_profile(d, ENCORE_SRTP_PROFILE_NONE), ==,
                    ENCORE_DTLS_ERR_STATE);
    g_assert_cmpint(encore_dtls_start(d), ==, 0);
    g_assert_cmpint(sent, ==, 1);
    g_assert_cmpint(encore_dtls_start(d), ==, ENCORE_DTLS_ERR_STATE);
    g_assert_cmpint(encore_dtls_set_srtp_profile(d, ENCORE_SRTP_AES128_CM_SHA1_80), ==,
                    ENCORE_DTLS_ERR_STATE);
    int t = encore_dtls_timeout_ms(d);
    g_assert_cmpint(t, >, 400);
    g_assert_cmpint(t, <=, 500);
    /* An early timer call does nothing. */
    g_assert_cmpint(encore_dtls_handle_timeout(d), ==, 0);
    g_assert_cmpint(sent, ==, 1);
    /* Closing a handshake in progress sends nothing and kills it. */
    encore_dtls_close(d);
    g_assert_cmpint(sent, ==, 1);
    g_assert_cmpint(encore_dtls_handle(d, junk, sizeof(junk)), ==, ENCORE_DTLS_ERR_CLOSED);
    g_assert_cmpint(encore_dtls_timeout_ms(d), ==, -1);
    encore_dtls_free(d);
    encore_dtls_free(NULL);
    encore_dtls_cert_unref(cert);
}

static void test_demux(void)
{
    uint8_t b[1] = {0};
    g_assert_false(encore_dtls_is_dtls(b, 0));
    g_assert_false(encore_dtls_is_dtls(NULL, 1));
    for (int v = 0; v < 256; v++) {
        b[0] = (uint8_t)v;
        g_assert_cmpint(encore_dtls_is_dtls(b, 1), ==, v >= 20 && v <= 63);
    }
}

static void test_handshake(void)
{
    pair p;
    pair_init(&p, "sha-256", false, false);
    pair_connect(&p);
    g_assert_cmpint(p.client_connected, ==, 1);
    g_assert_cmpint(p.server_connected, ==, 1);
    g_assert_cmpint(p.client_error, ==, 0);
    g_assert_cmpint(p.server_error, ==, 0);
    g_assert_cmpint(p.timeouts_fired, ==, 0);
    g_assert_true(encore_dtls_is_connected(p.client));
    g_assert_true(encore_dtls_is_connected(p.server));
    /* GCM is preferred when both sides offer it. */
    assert_keys_crosswise(&p, ENCORE_SRTP_AEAD_AES_128_GCM);
    /* No timers are left running. */
    g_assert_cmpint(encore_dtls_timeout_ms(p.client), ==, -1);
    g_assert_cmpint(encore_dtls_timeout_ms(p.server), ==, -1);
    g_assert_cmpint(encore_dtls_handle_timeout(p.client), ==, 0);
    pair_clear(&p);
}

static void test_handshake_sha1(void)
{
    pair p;
    pair_init(&p, "sha-1", false, false);
    pair_connect(&p);
    g_assert_cmpint(p.client_connected, ==, 1);
    g_assert_cmpint(p.server_connected, ==, 1);
    assert_keys_crosswise(&p, ENCORE_SRTP_AEAD_AES_128_GCM);
    pair_clear(&p);

    pair_init(&p, "sha-512", false, false);
    pair_connect(&p);
    g_assert_cmpint(p.client_connected, ==, 1);
    g_assert_cmpint(p.server_connected, ==, 1);
    pair_clear(&p);
}

static void test_profile_cm(void)
{
    /* Restricted on the client: the server picks the only one offered. */
    pair p;
    pair_init(&p, "sha-256", false, false);
    g_assert_cmpint(encore_dtls_set_srtp_profile(p.client, ENCORE_SRTP_AES128_CM_SHA1_80), ==, 0);
    pair_connect(&p);
    g_assert_cmpint(p.client_connected, ==, 1);
    g_assert_cmpint(p.server_connected, ==, 1);
    assert_keys_crosswise(&p, ENCORE_SRTP_AES128_CM_SHA1_80);
    pair_clear(&p);

    /* Restricted on the server. */
    pair_init(&p, "sha-256", false, false);
    g_assert_cmpint(encore_dtls_set_srtp_profile(p.server, ENCORE_SRTP_AES128_CM_SHA1_80), ==, 0);
    pair_connect(&p);
    assert_keys_crosswise(&p, ENCORE_SRTP_AES128_CM_SHA1_80);
    pair_clear(&p);

    /* No common profile: the handshake fails on both sides and nobody has keys. */
    pair_init(&p, "sha-256", false, false);
    g_assert_cmpint(encore_dtls_set_srtp_profile(p.server, ENCORE_SRTP_AES128_CM_SHA1_80), ==, 0);
    g_assert_cmpint(encore_dtls_set_srtp_profile(p.client, ENCORE_SRTP_AEAD_AES_128_GCM), ==, 0);
    pair_connect(&p);
    g_assert_cmpint(p.client_connected + p.server_connected, ==, 0);
    g_assert_cmpint(p.client_error, ==, ENCORE_DTLS_ERR_HANDSHAKE);
    assert_no_keys(p.client);
    assert_no_keys(p.server);
    pair_clear(&p);
}

static void test_wrong_fingerprint(gconstpointer which)
{
    bool client_wrong = GPOINTER_TO_INT(which) == 0;
    pair p;
    pair_init(&p, "sha-256", client_wrong, !client_wrong);
    pair_connect(&p);
    g_assert_cmpint(p.client_connected, ==, 0);
    g_assert_cmpint(p.server_connected, ==, 0);
    if (client_wrong) {
        g_assert_cmpint(p.client_error, ==, ENCORE_DTLS_ERR_FINGERPRINT);
        /* The client aborted with an alert before its Finished: the server fails too. */
        g_assert_cmpint(p.server_error, ==, ENCORE_DTLS_ERR_HANDSHAKE);
    } else {
        g_assert_cmpint(p.server_error, ==, ENCORE_DTLS_ERR_FINGERPRINT);
        g_assert_cmpint(p.client_error, ==, ENCORE_DTLS_ERR_HANDSHAKE);
    }
    assert_no_keys(p.client);
    assert_no_keys(p.server);
    /* Dead associations stay dead and quiet. */
    int sent = p.w.sent_by_client + p.w.sent_by_server;
    static const uint8_t junk[] = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    g_assert_cmpint(encore_dtls_handle(p.client, junk, sizeof(junk)), ==, p.client_error);
    g_assert_cmpint(encore_dtls_handle(p.server, junk, sizeof(junk)), ==, p.server_error);
    g_assert_cmpint(encore_dtls_handle_timeout(p.client), ==, p.client_error);
    g_assert_cmpint(encore_dtls_timeout_ms(p.client), ==, -1);
    g_assert_cmpint(p.w.sent_by_client + p.w.sent_by_server, ==, sent);
    pair_clear(&p);
}

static void test_fingerprint_other_alg_mismatch(void)
{
    /* Right certificate, but the SDP says sha-384 and carries the sha-384 of another cert. */
    pair p;
    pair_init(&p, "sha-384", true, false);
    pair_connect(&p);
    g_assert_cmpint(p.client_error, ==, ENCORE_DTLS_ERR_FINGERPRINT);
    g_assert_cmpint(p.server_connected, ==, 0);
    assert_no_keys(p.client);
    assert_no_keys(p.server);
    pair_clear(&p);
}

static void test_retransmit_first_flight(void)
{
    pair p;
    pair_init(&p, "sha-256", false, false);
    p.w.drop_to_server = 1; /* the ClientHello */
    pair_connect(&p);
    g_assert_cmpint(p.client_connected, ==, 1);
    g_assert_cmpint(p.server_connected, ==, 1);
    g_assert_cmpint(p.timeouts_fired, ==, 1);
    assert_keys_crosswise(&p, ENCORE_SRTP_AEAD_AES_128_GCM);
    pair_clear(&p);

    /* The server's first flight lost, twice: two retransmissions by the client's timer... the
     * client resends its ClientHello and the server answers each with its flight again. */
    pair_init(&p, "sha-256", false, false);
    p.w.drop_to_client = 2;
    pair_connect(&p);
    g_assert_cmpint(p.client_connected, ==, 1);
    g_assert_cmpint(p.server_connected, ==, 1);
    g_assert_cmpint(p.timeouts_fired, >=, 1);
    assert_keys_crosswise(&p, ENCORE_SRTP_AEAD_AES_128_GCM);
    pair_clear(&p);
}

static void test_retransmit_last_flight(void)
{
    /* The server's ChangeCipherSpec+Finished is lost after it has connected: the client's timer
     * resends its last flight, the connected server answers with its final flight again, and
     * neither side reports CONNECTED twice. */
    pair p;
    pair_init(&p, "sha-256", false, false);
    p.drop_server_final = true;
    pair_connect(&p);
    g_assert_cmpint(p.client_connected, ==, 1);
    g_assert_cmpint(p.server_connected, ==, 1);
    g_assert_cmpint(p.timeouts_fired, ==, 1);
    g_assert_cmpint(p.client_error, ==, 0);
    g_assert_cmpint(p.server_error, ==, 0);
    assert_keys_crosswise(&p, ENCORE_SRTP_AEAD_AES_128_GCM);
    pair_clear(&p);
}

static void test_retransmit_gives_up(void)
{
    encore_dtls_cert *cert = new_cert();
    uint8_t fp[32] = {1};
    int sent = 0;
    encore_dtls *d =
        encore_dtls_new(cert, ENCORE_DTLS_CLIENT, "sha-256", fp, 32, dummy_send, &sent);
    g_assert_cmpint(encore_dtls_start(d), ==, 0);
    g_assert_cmpint(sent, ==, 1);
    /* 0.5, 1, 2, then 4 s: the gaps double up to the cap. */
    static const int expect_ms[] = {500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000};
    int r = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(expect_ms); i++) {
        int t = encore_dtls_timeout_ms(d);
        g_assert_cmpint(t, >, expect_ms[i] - 100);
        g_assert_cmpint(t, <=, expect_ms[i]);
        advance_clock_ms(t);
        r = encore_dtls_handle_timeout(d);
        if (r != 0)
            break;
        g_assert_cmpint(sent, ==, 2 + (int)i);
    }
    g_assert_cmpint(r, ==, ENCORE_DTLS_ERR_TIMEOUT);
    g_assert_cmpint(sent, ==, 1 + ENCORE_DTLS_MAX_RETRANSMITS);
    g_assert_cmpint(encore_dtls_timeout_ms(d), ==, -1);
    g_assert_cmpint(encore_dtls_handle_timeout(d), ==, ENCORE_DTLS_ERR_TIMEOUT);
    encore_dtls_free(d);
    encore_dtls_cert_unref(cert);
}

/* Feeds data to a fresh server; returns its result, checking it never connects nor has keys. */
static int feed_fresh_server(encore_dtls_cert *cert, const uint8_t *data, size_t len)
{
    uint8_t fp[32] = {0};
    int sent = 0;
    encore_dtls *s =
        encore_dtls_new(cert, ENCORE_DTLS_SERVER, "sha-256", fp, 32, dummy_send, &sent);
    int r = encore_dtls_handle(s, data, len);
    g_assert_cmpint(r, !=, ENCORE_DTLS_CONNECTED);
    g_assert_true(r == 0 || r == ENCORE_DTLS_ERR_HANDSHAKE);
    assert_no_keys(s);
    encore_dtls_free(s);
    return r;
}

static void test_garbage(void)
{
    encore_dtls_cert *cert = new_cert();
    GRand *rand = g_rand_new_with_seed(1234);
    uint8_t buf[1500];

    /* Random bytes behind each DTLS-looking first byte, and random lengths. */
    for (int i = 0; i < 300; i++) {
        size_t len = (size_t)g_rand_int_range(rand, 1, sizeof(buf));
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)g_rand_int(rand);
        buf[0] = (uint8_t)g_rand_int_range(rand, 20, 64);
        if (i % 2) {
            buf[0] = 22; /* a handshake record header with a plausible version and length */
            if (len > 13) {
                buf[1] = 0xfe;
                buf[2] = 0xfd;
                buf[11] = (uint8_t)((len - 13) >> 8);
                buf[12] = (uint8_t)(len - 13);
            }
        }
        (void)feed_fresh_server(cert, buf, len);
    }
    /* Non-DTLS input is ignored. */
    buf[0] = 0x80;
    g_assert_cmpint(feed_fresh_server(cert, buf, 100), ==, 0);
    g_assert_cmpint(feed_fresh_server(cert, buf, 0), ==, 0);

    /* Every truncation of a real ClientHello, each into a fresh server. */
    wire w;
    memset(&w, 0, sizeof(w));
    g_queue_init(&w.to_server);
    uint8_t fp[32] = {0};
    encore_dtls *c = encore_dtls_new(cert, ENCORE_DTLS_CLIENT, "sha-256", fp, 32, client_send, &w);
    g_assert_cmpint(encore_dtls_start(c), ==, 0);
    GBytes *hello = g_queue_pop_head(&w.to_server);
    gsize hello_len;
    const uint8_t *hello_data = g_bytes_get_data(hello, &hello_len);
    g_assert_cmpuint(hello_len, >, 13);
    for (size_t len = 1; len < hello_len; len++)
        (void)feed_fresh_server(cert, hello_data, len);
    /* And with each byte of the body flipped (the server either ignores or aborts). */
    memcpy(buf, hello_data, hello_len);
    for (size_t k = 13; k < hello_len; k += 7) {
        buf[k] ^= 0xff;
        (void)feed_fresh_server(cert, buf, hello_len);
        buf[k] ^= 0xff;
    }
    g_bytes_unref(hello);
    encore_dtls_free(c);
    g_rand_free(rand);
    encore_dtls_cert_unref(cert);
}

static void test_truncated_flights(void)
{
    /* Truncated copies of every datagram are delivered before the real one: a DTLS stack drops
     * records that do not fit their datagram, so the handshake still completes. */
    pair p;
    pair_init(&p, "sha-256", false, false);
    g_assert_cmpint(encore_dtls_start(p.client), ==, 0);
    for (int step = 0; step < 100 && !pair_done(&p); step++) {
        GQueue *q = g_queue_get_length(&p.w.to_server) ? &p.w.to_server : &p.w.to_client;
        encore_dtls *to = q == &p.w.to_server ? p.server : p.client;
        GBytes *b = g_queue_pop_head(q);
        if (!b)
            break;
        gsize n;
        const uint8_t *d = g_bytes_get_data(b, &n);
        int r;
        for (size_t cut = 13; cut + 1 < n; cut += 97) {
            r = encore_dtls_handle(to, d, cut);
            g_assert_cmpint(r, ==, 0);
        }
        r = encore_dtls_handle(to, d, n);
        if (to == p.server)
            note_result(r, &p.server_connected, &p.server_error);
        else
            note_result(r, &p.client_connected, &p.client_error);
        g_bytes_unref(b);
    }
    g_assert_cmpint(p.client_connected, ==, 1);
    g_assert_cmpint(p.server_connected, ==, 1);
    assert_keys_crosswise(&p, ENCORE_SRTP_AEAD_AES_128_GCM);

    /* Garbage after the handshake is dropped; the association stays up. */
    uint8_t junk[200];
    memset(junk, 0x5a, sizeof(junk));
    for (uint8_t first = 20; first <= 63; first++) {
        junk[0] = first;
        g_assert_cmpint(encore_dtls_handle(p.server, junk, sizeof(junk)), ==, 0);
        g_assert_cmpint(encore_dtls_handle(p.client, junk, 13), ==, 0);
    }
    g_assert_true(encore_dtls_is_connected(p.server));
    g_assert_true(encore_dtls_is_connected(p.client));
    pair_clear(&p);
}

static void test_close(gconstpointer which)
{
    bool client_closes = GPOINTER_TO_INT(which) == 0;
    pair p;
    pair_init(&p, "sha-256", false, false);
    pair_connect(&p);
    g_assert_cmpint(p.client_connected + p.server_connected, ==, 2);
    encore_dtls *closer = client_closes ? p.client : p.server;
    encore_dtls *other = client_closes ? p.server : p.client;
    GQueue *q = client_closes ? &p.w.to_server : &p.w.to_client;

    encore_dtls_close(closer);
    g_assert_cmpuint(g_queue_get_length(q), ==, 1);
    encore_dtls_close(closer); /* idempotent: nothing more is sent */
    g_assert_cmpuint(g_queue_get_length(q), ==, 1);
    g_assert_false(encore_dtls_is_connected(closer));

    GBytes *b = g_queue_pop_head(q);
    gsize n;
    const uint8_t *d = g_bytes_get_data(b, &n);
    g_assert_cmpint(encore_dtls_handle(other, d, n), ==, ENCORE_DTLS_ERR_CLOSED);
    g_assert_false(encore_dtls_is_connected(other));
    g_assert_cmpint(encore_dtls_handle(other, d, n), ==, ENCORE_DTLS_ERR_CLOSED);
    g_assert_cmpint(encore_dtls_handle(closer, d, n), ==, ENCORE_DTLS_ERR_CLOSED);
    g_bytes_unref(b);
    /* Keys that were exported stay readable. */
    assert_keys_crosswise(&p, ENCORE_SRTP_AEAD_AES_128_GCM);
    pair_clear(&p);
}

/* ---- a raw OpenSSL peer, to do what our endpoints refuse to (renegotiate, old versions) ---- */

typedef struct {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *in;  /* what the raw peer reads (mem BIO) */
    BIO *out; /* what the raw peer writes (mem BIO) */
    uint8_t fp[32];
} raw_peer;

static void raw_init(raw_peer *r, bool server, int max_version)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    g_assert_nonnull(pkey);
    X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"raw", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    g_assert_cmpint(X509_sign(x, pkey, EVP_sha256()), >, 0);
    unsigned int fp_len = 0;
    g_assert_cmpint(X509_digest(x, EVP_sha256(), r->fp, &fp_len), ==, 1);

    r->ctx = SSL_CTX_new(server ? DTLS_server_method() : DTLS_client_method());
    g_assert_cmpint(SSL_CTX_use_certificate(r->ctx, x), ==, 1);
    g_assert_cmpint(SSL_CTX_use_PrivateKey(r->ctx, pkey), ==, 1);
    g_assert_cmpint(SSL_CTX_set_tlsext_use_srtp(r->ctx, "SRTP_AES128_CM_SHA1_80"), ==, 0);
    if (max_version)
        SSL_CTX_set_max_proto_version(r->ctx, max_version);
    /* This peer checks nothing and allows renegotiation. */
    SSL_CTX_set_verify(r->ctx, SSL_VERIFY_NONE, NULL);
    X509_free(x);
    EVP_PKEY_free(pkey);

    r->ssl = SSL_new(r->ctx);
    r->in = BIO_new(BIO_s_mem());
    r->out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(r->in, -1);
    BIO_set_mem_eof_return(r->out, -1);
    SSL_set_bio(r->ssl, r->in, r->out);
    SSL_set_mtu(r->ssl, 1200);
    if (server)
        SSL_set_accept_state(r->ssl);
    else
        SSL_set_connect_state(r->ssl);
}

static void raw_clear(raw_peer *r)
{
    SSL_free(r->ssl);
    SSL_CTX_free(r->ctx);
    ERR_clear_error();
}

/* Moves everything the raw peer wrote into our endpoint as one datagram; returns its result. */
static int raw_to_ours(raw_peer *r, encore_dtls *ours)
{
    char *data;
    long n = BIO_get_mem_data(r->out, &data);
    if (n <= 0)
        return 0;
    int res = encore_dtls_handle(ours, (const uint8_t *)data, (size_t)n);
    (void)BIO_reset(r->out);
    return res;
}

static void ours_to_raw(raw_peer *r, GQueue *q)
{
    GBytes *b;
    while ((b = g_queue_pop_head(q))) {
        gsize n;
        const void *d = g_bytes_get_data(b, &n);
        g_assert_cmpint(BIO_write(r->in, d, (int)n), ==, (int)n);
        g_bytes_unref(b);
    }
}

static int raw_handshake(raw_peer *r)
{
    int ret = SSL_do_handshake(r->ssl);
    if (ret == 1)
        return 1;
    int err = SSL_get_error(r->ssl, ret);
    return err == SSL_ERROR_WANT_READ ? 0 : -1;
}

/* Runs a handshake between our server and a raw client; returns our last result. */
static int raw_client_connect(raw_peer *r, encore_dtls *server, GQueue *to_raw, int *raw_state)
{
    int ours = 0;
    for (int i = 0; i < 20; i++) {
        *raw_state = raw_handshake(r);
        ours = raw_to_ours(r, server);
        if (ours != 0 || *raw_state != 0)
            break;
        ours_to_raw(r, to_raw);
    }
    return ours;
}

static void test_renegotiation_refused(void)
{
    encore_dtls_cert *cert = new_cert();
    raw_peer r;
    raw_init(&r, false, 0);
    wire w;
    memset(&w, 0, sizeof(w));
    g_queue_init(&w.to_client);
    encore_dtls *server =
        encore_dtls_new(cert, ENCORE_DTLS_SERVER, "sha-256", r.fp, 32, server_send, &w);

    int raw_state = 0;
    int res = raw_client_connect(&r, server, &w.to_client, &raw_state);
    g_assert_cmpint(res, ==, ENCORE_DTLS_CONNECTED);
    ours_to_raw(&r, &w.to_client);
    g_assert_cmpint(raw_handshake(&r), ==, 1);
    encore_srtp_keys before, after;
    g_assert_cmpint(encore_dtls_srtp_keys(server, &before), ==, 0);
    g_assert_cmpint(before.profile, ==, ENCORE_SRTP_AES128_CM_SHA1_80);

    /* Application data is read and thrown away. */
    g_assert_cmpint(SSL_write(r.ssl, "hello", 5), ==, 5);
    g_assert_cmpint(raw_to_ours(&r, server), ==, 0);
    g_assert_true(encore_dtls_is_connected(server));
    g_assert_cmpuint(g_queue_get_length(&w.to_client), ==, 0);

    /* A renegotiating ClientHello gets a no_renegotiation warning and changes nothing. */
    g_assert_cmpint(SSL_renegotiate(r.ssl), ==, 1);
    g_assert_cmpint(raw_handshake(&r), ==, 0);
    int sent_before = w.sent_by_server;
    g_assert_cmpint(raw_to_ours(&r, server), ==, 0);
    g_assert_true(encore_dtls_is_connected(server));
    g_assert_cmpint(w.sent_by_server, ==, sent_before + 1);
    g_assert_cmpint(encore_dtls_srtp_keys(server, &after), ==, 0);
    g_assert_cmpmem(&before, sizeof(before), &after, sizeof(after));
    /* The raw client gets the refusal and gives up its renegotiation. */
    ours_to_raw(&r, &w.to_client);
    g_assert_cmpint(raw_handshake(&r), ==, -1);

    encore_dtls_free(server);
    raw_clear(&r);
    queue_clear(&w.to_client);
    encore_dtls_cert_unref(cert);
}

static void test_hello_request_refused(void)
{
    /* Our client against a raw server that asks for renegotiation after the handshake. */
    encore_dtls_cert *cert = new_cert();
    raw_peer r;
    raw_init(&r, true, 0);
    wire w;
    memset(&w, 0, sizeof(w));
    g_queue_init(&w.to_server);
    encore_dtls *client =
        encore_dtls_new(cert, ENCORE_DTLS_CLIENT, "sha-256", r.fp, 32, client_send, &w);
    g_assert_cmpint(encore_dtls_start(client), ==, 0);
    int ours = 0, raw_state = 0;
    for (int i = 0; i < 20 && ours == 0; i++) {
        ours_to_raw(&r, &w.to_server);
        raw_state = raw_handshake(&r);
        g_assert_cmpint(raw_state, >=, 0);
        ours = raw_to_ours(&r, client);
    }
    g_assert_cmpint(ours, ==, ENCORE_DTLS_CONNECTED);
    ours_to_raw(&r, &w.to_server);
    g_assert_cmpint(raw_handshake(&r), ==, 1);

    g_assert_cmpint(SSL_renegotiate(r.ssl), ==, 1);
    /* A server's handshake call returns once the HelloRequest is out. */
    g_assert_cmpint(raw_handshake(&r), >=, 0);
    g_assert_cmpint(BIO_pending(r.out), >, 0);
    int sent_before = w.sent_by_client;
    g_assert_cmpint(raw_to_ours(&r, client), ==, 0);
    g_assert_true(encore_dtls_is_connected(client));
    g_assert_cmpint(w.sent_by_client, ==, sent_before + 1); /* the no_renegotiation warning */
    /* Still up: a close_notify from the raw server is still understood. */
    queue_clear(&w.to_server);
    (void)SSL_shutdown(r.ssl);
    g_assert_cmpint(raw_to_ours(&r, client), ==, ENCORE_DTLS_ERR_CLOSED);

    encore_dtls_free(client);
    raw_clear(&r);
    queue_clear(&w.to_server);
    encore_dtls_cert_unref(cert);
}

static void test_old_version_refused(void)
{
    encore_dtls_cert *cert = new_cert();
    raw_peer r;
    raw_init(&r, false, DTLS1_VERSION);
    wire w;
    memset(&w, 0, sizeof(w));
    g_queue_init(&w.to_client);
    encore_dtls *server =
        encore_dtls_new(cert, ENCORE_DTLS_SERVER, "sha-256", r.fp, 32, server_send, &w);
    int raw_state = 0;
    int res = raw_client_connect(&r, server, &w.to_client, &raw_state);
    g_assert_cmpint(res, ==, ENCORE_DTLS_ERR_HANDSHAKE);
    assert_no_keys(server);
    encore_dtls_free(server);
    raw_clear(&r);
    queue_clear(&w.to_client);
    encore_dtls_cert_unref(cert);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dtls/cert/fingerprint", test_cert_fingerprint);
    g_test_add_func("/dtls/fingerprint/parse", test_fingerprint_parse);
    g_test_add_func("/dtls/new/invalid", test_new_invalid);
    g_test_add_func("/dtls/demux", test_demux);
    g_test_add_func("/dtls/handshake/sha-256", test_handshake);
    g_test_add_func("/dtls/handshake/sha-1-and-sha-512", test_handshake_sha1);
    g_test_add_func("/dtls/handshake/profile-aes-cm", test_profile_cm);
    g_test_add_data_func("/dtls/fingerprint/wrong-on-client", GINT_TO_POINTER(0),
                         test_wrong_fingerprint);
    g_test_add_data_func("/dtls/fingerprint/wrong-on-server", GINT_TO_POINTER(1),
                         test_wrong_fingerprint);
    g_test_add_func("/dtls/fingerprint/wrong-sha-384", test_fingerprint_other_alg_mismatch);
    g_test_add_func("/dtls/retransmit/first-flight", test_retransmit_first_flight);
    g_test_add_func("/dtls/retransmit/last-flight", test_retransmit_last_flight);
    g_test_add_func("/dtls/retransmit/gives-up", test_retransmit_gives_up);
    g_test_add_func("/dtls/robustness/garbage", test_garbage);
    g_test_add_func("/dtls/robustness/truncated-flights", test_truncated_flights);
    g_test_add_data_func("/dtls/close/by-client", GINT_TO_POINTER(0), test_close);
    g_test_add_data_func("/dtls/close/by-server", GINT_TO_POINTER(1), test_close);
    g_test_add_func("/dtls/renegotiation/client-hello-refused", test_renegotiation_refused);
    g_test_add_func("/dtls/renegotiation/hello-request-refused", test_hello_request_refused);
    g_test_add_func("/dtls/version/dtls1.0-refused", test_old_version_refused);
    return g_test_run();
}
