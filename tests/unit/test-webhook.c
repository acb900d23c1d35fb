/* Unit tests for server/accounts/webhook.c: a signature computed independently (Python hmac),
 * the tolerance edges both ways (300 s ok, 301 s stale), altered body, wrong secret, altered t,
 * secret rotation on both sides, every malformed header, the signer's errors, and the event
 * parser's every field rule. Replayed event ids are NOT refused here (the ledger's job): a test
 * pins that down. */
#include <string.h>

#include <glib.h>

#include "server/accounts/webhook.h"

#define SECRET "whsec_0123456789abcdef0123456789abcdef"
#define OLD_SECRET "whsec_old_old_old_old_old_old_old_old_old"
#define T0 1700000000
#define BODY                                                                                       \
    "{\"id\":\"evt_1\",\"type\":\"payment.succeeded\",\"user_id\":42,\"amount\":600,\"currency\":" \
    "\"CNY\"}"
/* Python: hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest() */
#define BODY_V1 "12f2e64605a946ff895bd1b101b030d5d15b27a722ab0e43cbbc7dffdf145378"

static const encore_webhook_secret secret = {(const uint8_t *)SECRET, sizeof SECRET - 1};
static const encore_webhook_secret old_secret = {(const uint8_t *)OLD_SECRET,
                                                 sizeof OLD_SECRET - 1};

static int verify_with(const char *header, const char *body, const encore_webhook_secret *s,
                       size_t n, int64_t now)
{
    return encore_webhook_verify(header, strlen(header), (const uint8_t *)body, strlen(body), s, n,
                                 now, 0);
}

static int verify1(const char *header, const char *body, int64_t now)
{
    return verify_with(header, body, &secret, 1, now);
}

static char *sign_with(const encore_webhook_secret *s, size_t n, int64_t t, const char *body)
{
    char out[ENCORE_WEBHOOK_MAX_HEADER];
    size_t len = 0;
    g_assert_cmpint(
        encore_webhook_sign(s, n, t, (const uint8_t *)body, strlen(body), out, sizeof out, &len),
        ==, 0);
    g_assert_cmpuint(len, ==, strlen(out));
    return g_strdup(out);
}

static void test_known_signature(void)
{
    char *h = sign_with(&secret, 1, T0, BODY);
    g_assert_cmpstr(h, ==, "t=1700000000,v1=" BODY_V1);
    g_free(h);
    g_assert_cmpint(verify1("t=1700000000,v1=" BODY_V1, BODY, T0), ==, 0);
    /* The parsed header. */
    encore_webhook_sig sig;
    const char *hv = "t=1700000000,v1=" BODY_V1;
    g_assert_cmpint(encore_webhook_parse_header(hv, strlen(hv), &sig), ==, 0);
    g_assert_cmpint(sig.t, ==, T0);
    g_assert_cmpuint(sig.n_v1, ==, 1);
    g_assert_cmpint(sig.v1[0][0], ==, 0x12);
    g_assert_cmpint(sig.v1[0][31], ==, 0x78);
    /* Surrounding spaces and tabs are ignored; unknown schemes are skipped. */
    g_assert_cmpint(verify1(" \tt=1700000000,v1=" BODY_V1 "  ", BODY, T0), ==, 0);
    g_assert_cmpint(verify1("v0=deadbeef,t=1700000000,v1=" BODY_V1 ",v2=abc_DEF.1", BODY, T0), ==,
                    0);
    /* Order of items is free. */
    g_assert_cmpint(verify1("v1=" BODY_V1 ",t=1700000000", BODY, T0), ==, 0);
    /* An empty body can be signed and verified. */
    h = sign_with(&secret, 1, T0, "");
    g_assert_cmpint(verify1(h, "", T0), ==, 0);
    g_assert_cmpint(encore_webhook_verify(h, strlen(h), NULL, 0, &secret, 1, T0, 0), ==, 0);
    g_assert_cmpint(verify1(h, " ", T0), ==, ENCORE_WEBHOOK_EBADSIG);
    g_free(h);
}

static void test_tolerance(void)
{
    const char *h = "t=1700000000,v1=" BODY_V1;
    g_assert_cmpint(verify1(h, BODY, T0 + 300), ==, 0);
    g_assert_cmpint(verify1(h, BODY, T0 + 301), ==, ENCORE_WEBHOOK_ESTALE);
    /* A timestamp from the future (the provider's clock ahead of ours). */
    g_assert_cmpint(verify1(h, BODY, T0 - 300), ==, 0);
    g_assert_cmpint(verify1(h, BODY, T0 - 301), ==, ENCORE_WEBHOOK_ESTALE);
    g_assert_cmpint(verify1(h, BODY, 0), ==, ENCORE_WEBHOOK_ESTALE);
    g_assert_cmpint(verify1(h, BODY, INT64_MAX), ==, ENCORE_WEBHOOK_ESTALE);
    g_assert_cmpint(verify1(h, BODY, INT64_MIN), ==, ENCORE_WEBHOOK_ESTALE);
    /* A smaller tolerance; zero, negative and larger values mean 300. */
    const uint8_t *b = (const uint8_t *)BODY;
    size_t bl = strlen(BODY), hl = strlen(h);
    g_assert_cmpint(encore_webhook_verify(h, hl, b, bl, &secret, 1, T0 + 60, 60), ==, 0);
    g_assert_cmpint(encore_webhook_verify(h, hl, b, bl, &secret, 1, T0 + 61, 60), ==,
                    ENCORE_WEBHOOK_ESTALE);
    g_assert_cmpint(encore_webhook_verify(h, hl, b, bl, &secret, 1, T0 - 61, 60), ==,
                    ENCORE_WEBHOOK_ESTALE);
    g_assert_cmpint(encore_webhook_verify(h, hl, b, bl, &secret, 1, T0 + 301, 3600), ==,
                    ENCORE_WEBHOOK_ESTALE);
    g_assert_cmpint(encore_webhook_verify(h, hl, b, bl, &secret, 1, T0 + 300, -5), ==, 0);
    g_assert_cmpint(encore_webhook_verify(h, hl, b, bl, &secret, 1, T0 + 301, -5), ==,
                    ENCORE_WEBHOOK_ESTALE);
    /* A stale request is stale whatever its signature. */
    g_assert_cmpint(verify1("t=1700000000,v1=" BODY_V1, "tampered", T0 + 301), ==,
                    ENCORE_WEBHOOK_ESTALE);
}

static void test_forgery(void)
{
    const char *h = "t=1700000000,v1=" BODY_V1;
    /* Altered body: one digit of the amount, one extra space, one extra newline. */
    char *body = g_strdup(BODY);
    char *amount = strstr(body, "600");
    amount[0] = '9';
    g_assert_cmpint(verify1(h, body, T0), ==, ENCORE_WEBHOOK_EBADSIG);
    g_free(body);
    g_assert_cmpint(verify1(h, BODY " ", T0), ==, ENCORE_WEBHOOK_EBADSIG);
    g_assert_cmpint(verify1(h, BODY "\n", T0), ==, ENCORE_WEBHOOK_EBADSIG);
    g_assert_cmpint(encore_webhook_verify(h, strlen(h), (const uint8_t *)BODY, strlen(BODY) - 1,
                                          &secret, 1, T0, 0),
                    ==, ENCORE_WEBHOOK_EBADSIG);
    /* Wrong secret. */
    g_assert_cmpint(verify_with(h, BODY, &old_secret, 1, T0), ==, ENCORE_WEBHOOK_EBADSIG);
    /* The signed timestamp moved (to make an old request look fresh). */
    g_assert_cmpint(verify1("t=1700000001,v1=" BODY_V1, BODY, T0), ==, ENCORE_WEBHOOK_EBADSIG);
    /* Every single hex digit of the signature changed. */
    char *hh = g_strdup(h);
    size_t start = strlen("t=1700000000,v1=");
    for (size_t i = start; hh[i]; i++) {
        char orig = hh[i];
        hh[i] = orig == '0' ? '1' : '0';
        g_assert_cmpint(verify1(hh, BODY, T0), ==, ENCORE_WEBHOOK_EBADSIG);
        hh[i] = orig;
    }
    g_free(hh);
}

static void test_rotation(void)
{
    const encore_webhook_secret both[2] = {old_secret, secret};
    /* The provider signs with the old and the new secret during rotation. */
    char *h = sign_with(both, 2, T0, BODY);
    encore_webhook_sig sig;
    g_assert_cmpint(encore_webhook_parse_header(h, strlen(h), &sig), ==, 0);
    g_assert_cmpuint(sig.n_v1, ==, 2);
    g_assert_true(g_str_has_suffix(h, ",v1=" BODY_V1));
    g_assert_cmpint(verify_with(h, BODY, &secret, 1, T0), ==, 0);
    g_assert_cmpint(verify_with(h, BODY, &old_secret, 1, T0), ==, 0);
    g_assert_cmpint(verify_with(h, BODY, both, 2, T0), ==, 0);
    g_free(h);
    /* We accept both while the provider still signs with only one of them. */
    h = sign_with(&old_secret, 1, T0, BODY);
    g_assert_cmpint(verify_with(h, BODY, both, 2, T0), ==, 0);
    g_assert_cmpint(verify_with(h, BODY, &secret, 1, T0), ==, ENCORE_WEBHOOK_EBADSIG);
    g_free(h);
    /* A matching v1 among non-matching ones. */
    g_assert_cmpint(verify1("t=1700000000,v1="
                            "0000000000000000000000000000000000000000000000000000000000000000"
                            ",v1=" BODY_V1,
                            BODY, T0),
                    ==, 0);
    /* Eight secrets sign into one header of at most ENCORE_WEBHOOK_MAX_HEADER bytes. */
    encore_webhook_secret eight[8];
    for (int i = 0; i < 8; i++)
        eight[i] = i == 5 ? secret : old_secret;
    h = sign_with(eight, 8, 999999999999, BODY);
    g_assert_cmpuint(strlen(h), <, ENCORE_WEBHOOK_MAX_HEADER);
    g_assert_cmpint(verify_with(h, BODY, &secret, 1, 999999999999), ==, 0);
    g_free(h);
}

static void test_malformed_headers(void)
{
    static const char *const bad[] = {
        "",
        " ",
        "t=",
        "t=abc,v1=" BODY_V1,
        "t=01700000000,v1=" BODY_V1,
        "t=-1700000000,v1=" BODY_V1,
        "t=+1700000000,v1=" BODY_V1,
        "t=0,v1=" BODY_V1,
        "t=1700000000.5,v1=" BODY_V1,
        "t=1700000000000,v1=" BODY_V1, /* 13 digits */
        "t=1700000000",
        "v1=" BODY_V1,
        "t=1700000000,t=1700000000,v1=" BODY_V1,
        "t=1700000000,v1=",
        "t=1700000000,v1=" BODY_V1 "0",
        "t=1700000000,v1=2f2e64605a946ff895bd1b101b030d5d15b27a722ab0e43cbbc7dffdf145378",
        "t=1700000000,v1=12F2E64605A946FF895BD1B101B030D5D15B27A722AB0E43CBBC7DFFDF145378",
        "t=1700000000,v1=12f2e64605a946ff895bd1b101b030d5d15b27a722ab0e43cbbc7dffdf14537g",
        "t=1700000000;v1=" BODY_V1,
        "t = 1700000000,v1=" BODY_V1,
        "t=1700000000, v1=" BODY_V1,
        "t=1700000000 ,v1=" BODY_V1,
        ",t=1700000000,v1=" BODY_V1,
        "t=1700000000,v1=" BODY_V1 ",",
        "t=1700000000,,v1=" BODY_V1,
        "T=1700000000,v1=" BODY_V1,
        "t=1700000000,V1=" BODY_V1,
        "t=1700000000,=x,v1=" BODY_V1,
        "t=1700000000,v0,v1=" BODY_V1,
        "t=1700000000,v0=a b,v1=" BODY_V1,
        "t=1700000000,9x=1,v1=" BODY_V1,
        "t=1700000000,v1=" BODY_V1 "\n",
        "t=1700000000\0,v1=" BODY_V1,
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_test_message("header %zu: %s", i, bad[i]);
        g_assert_cmpint(verify1(bad[i], BODY, T0), ==, ENCORE_WEBHOOK_EMALFORMED_HEADER);
    }
    /* A NUL inside the given length. */
    const char nul[] = "t=1700000000,v1=" BODY_V1 "\0";
    g_assert_cmpint(encore_webhook_verify(nul, sizeof nul - 1, (const uint8_t *)BODY, strlen(BODY),
                                          &secret, 1, T0, 0),
                    ==, ENCORE_WEBHOOK_EMALFORMED_HEADER);
    g_assert_cmpint(
        encore_webhook_verify(NULL, 0, (const uint8_t *)BODY, strlen(BODY), &secret, 1, T0, 0), ==,
        ENCORE_WEBHOOK_EMALFORMED_HEADER);
    /* Nine v1 entries; nine unknown items; over 1024 bytes. */
    GString *g = g_string_new("t=1700000000");
    for (int i = 0; i < 9; i++)
        g_string_append(g, ",v1=" BODY_V1);
    g_assert_cmpint(verify1(g->str, BODY, T0), ==, ENCORE_WEBHOOK_EMALFORMED_HEADER);
    g_string_assign(g, "t=1700000000,v1=" BODY_V1);
    for (int i = 0; i < 8; i++)
        g_string_append(g, ",x=1");
    g_assert_cmpint(verify1(g->str, BODY, T0), ==, 0);
    g_string_append(g, ",x=1");
    g_assert_cmpint(verify1(g->str, BODY, T0), ==, ENCORE_WEBHOOK_EMALFORMED_HEADER);
    g_string_assign(g, "t=1700000000,v1=" BODY_V1 ",pad=");
    while (g->len < ENCORE_WEBHOOK_MAX_HEADER)
        g_string_append_c(g, 'x');
    g_assert_cmpint(verify1(g->str, BODY, T0), ==, 0); /* exactly 1024 */
    g_string_append_c(g, 'x');
    g_assert_cmpint(verify1(g->str, BODY, T0), ==, ENCORE_WEBHOOK_EMALFORMED_HEADER);
    g_string_free(g, TRUE);
    /* A failed parse zeroes the output. */
    encore_webhook_sig sig;
    memset(&sig, 0xAA, sizeof sig);
    g_assert_cmpint(encore_webhook_parse_header("t=1", 3, &sig), ==,
                    ENCORE_WEBHOOK_EMALFORMED_HEADER);
    g_assert_cmpint(sig.t, ==, 0);
    g_assert_cmpuint(sig.n_v1, ==, 0);
}

/* Replay is not this layer's job: the same request verifies every time within the window. */
static void test_replay_not_detected_here(void)
{
    const char *h = "t=1700000000,v1=" BODY_V1;
    for (int i = 0; i < 3; i++)
        g_assert_cmpint(verify1(h, BODY, T0 + 100 * i), ==, 0);
}

static void test_arguments(void)
{
    const char *h = "t=1700000000,v1=" BODY_V1;
    const uint8_t *b = (const uint8_t *)BODY;
    size_t hl = strlen(h), bl = strlen(BODY);
    encore_webhook_secret short_s = {(const uint8_t *)SECRET, 31};
    encore_webhook_secret null_s = {NULL, 32};
    encore_webhook_secret nine[9];
    for (int i = 0; i < 9; i++)
        nine[i] = secret;
    g_assert_cmpint(encore_webhook_verify(h, hl, b, bl, NULL, 1, T0, 0), ==, ENCORE_WEBHOOK_EINVAL);
    g_assert_cmpint(encore_webhook_verify(h, hl, b, bl, &secret, 0, T0, 0), ==,
                    ENCORE_WEBHOOK_EINVAL);
    g_assert_cmpint(encore_webhook_verify(h, hl, b, bl, nine, 9, T0, 0), ==, ENCORE_WEBHOOK_EINVAL);
    g_assert_cmpint(encore_webhook_verify(h, hl, b, bl, nine, 8, T0, 0), ==, 0);
    g_assert_cmpint(encore_webhook_verify(h, hl, b, bl, &short_s, 1, T0, 0), ==,
                    ENCORE_WEBHOOK_EINVAL);
    g_assert_cmpint(encore_webhook_verify(h, hl, b, bl, &null_s, 1, T0, 0), ==,
                    ENCORE_WEBHOOK_EINVAL);
    g_assert_cmpint(encore_webhook_verify(h, hl, NULL, 5, &secret, 1, T0, 0), ==,
                    ENCORE_WEBHOOK_EINVAL);
    /* Secrets are checked before the header. */
    g_assert_cmpint(encore_webhook_verify("junk", 4, b, bl, &short_s, 1, T0, 0), ==,
                    ENCORE_WEBHOOK_EINVAL);

    char out[ENCORE_WEBHOOK_MAX_HEADER];
    g_assert_cmpint(encore_webhook_sign(&secret, 1, 0, b, bl, out, sizeof out, NULL), ==,
                    ENCORE_WEBHOOK_EINVAL);
    g_assert_cmpstr(out, ==, "");
    g_assert_cmpint(encore_webhook_sign(&secret, 1, 1000000000000, b, bl, out, sizeof out, NULL),
                    ==, ENCORE_WEBHOOK_EINVAL);
    g_assert_cmpint(encore_webhook_sign(&short_s, 1, T0, b, bl, out, sizeof out, NULL), ==,
                    ENCORE_WEBHOOK_EINVAL);
    g_assert_cmpint(encore_webhook_sign(&secret, 1, T0, NULL, 3, out, sizeof out, NULL), ==,
                    ENCORE_WEBHOOK_EINVAL);
    g_assert_cmpint(encore_webhook_sign(&secret, 1, T0, b, bl, NULL, 0, NULL), ==,
                    ENCORE_WEBHOOK_EINVAL);
    /* Output space: "t=1700000000,v1=" + 64 + NUL = 81 bytes. */
    g_assert_cmpint(encore_webhook_sign(&secret, 1, T0, b, bl, out, 80, NULL), ==,
                    ENCORE_WEBHOOK_ENOSPACE);
    g_assert_cmpstr(out, ==, "");
    g_assert_cmpint(encore_webhook_sign(&secret, 1, T0, b, bl, out, 81, NULL), ==, 0);
    g_assert_cmpstr(out, ==, h);
}

/* ---- events ---- */

static int parse(const char *body, encore_webhook_event *ev, const char **bad)
{
    return encore_webhook_parse_event((const uint8_t *)body, strlen(body), 0, ev, bad);
}

static void test_event_ok(void)
{
    encore_webhook_event ev;
    const char *bad = "unset";
    g_assert_cmpint(parse(BODY, &ev, &bad), ==, 0);
    g_assert_null(bad);
    g_assert_cmpstr(ev.id, ==, "evt_1");
    g_assert_cmpstr(ev.type, ==, "payment.succeeded");
    g_assert_cmpint(ev.user_id, ==, 42);
    g_assert_cmpint(ev.amount, ==, 600);
    g_assert_cmpstr(ev.currency, ==, "CNY");
    g_assert_cmpint(ev.minor_digits, ==, 2);
    g_assert_cmpint(ev.created, ==, 0);
    /* Any order, whitespace, the optional created, JPY (no minor unit), the caps. */
    const char *b2 =
        "{ \"currency\" : \"JPY\",\n \"amount\": 100000000, \"created\": 1700000000,"
        " \"user_id\": 9223372036854775807, \"type\": \"payment.succeeded\","
        " \"id\": \"0123456789012345678901234567890123456789012345678901234567890123\" }";
    g_assert_cmpint(parse(b2, &ev, NULL), ==, 0);
    g_assert_cmpint(ev.minor_digits, ==, 0);
    g_assert_cmpint(ev.amount, ==, 100000000);
    g_assert_cmpint(ev.created, ==, 1700000000);
    g_assert_cmpint(ev.user_id, ==, INT64_MAX);
    g_assert_cmpuint(strlen(ev.id), ==, 64);
    /* A caller cap. */
    g_assert_cmpint(encore_webhook_parse_event((const uint8_t *)BODY, strlen(BODY), 600, &ev, NULL),
                    ==, 0);
    g_assert_cmpint(encore_webhook_parse_event((const uint8_t *)BODY, strlen(BODY), 599, &ev, &bad),
                    ==, ENCORE_WEBHOOK_EBADEVENT);
    g_assert_cmpstr(bad, ==, "amount");
    /* The length is honoured. */
    g_assert_cmpint(
        encore_webhook_parse_event((const uint8_t *)BODY "garbage", strlen(BODY), 0, &ev, NULL), ==,
        0);
}

static void test_event_unsupported(void)
{
    encore_webhook_event ev;
    const char *bad;
    const char *refund = "{\"id\":\"evt_2\",\"type\":\"payment.refunded\",\"refund_id\":\"r_1\","
                         "\"amount\":-600}";
    g_assert_cmpint(parse(refund, &ev, &bad), ==, ENCORE_WEBHOOK_EUNSUPPORTED);
    g_assert_cmpstr(ev.id, ==, "evt_2");
    g_assert_cmpstr(ev.type, ==, "payment.refunded");
    g_assert_cmpint(ev.amount, ==, 0);
    g_assert_cmpint(ev.user_id, ==, 0);
    /* Still the JSON subset, still no duplicates. */
    g_assert_cmpint(parse("{\"id\":\"evt_2\",\"type\":\"payment.refunded\",\"x\":{}}", &ev, &bad),
                    ==, ENCORE_WEBHOOK_EBADEVENT);
    g_assert_cmpint(
        parse("{\"id\":\"evt_2\",\"type\":\"a\",\"type\":\"payment.succeeded\"}", &ev, &bad), ==,
        ENCORE_WEBHOOK_EBADEVENT);
    g_assert_null(bad);
    g_assert_cmpstr(ev.id, ==, "");
}

static void test_event_bad(void)
{
#define EV(fields) "{\"id\":\"evt_1\",\"type\":\"payment.succeeded\"," fields "}"
    static const struct {
        const char *body;
        const char *field; /* expected bad_field, NULL for the shape */
    } bad[] = {
        {EV("\"user_id\":42,\"amount\":0,\"currency\":\"CNY\""), "amount"},
        {EV("\"user_id\":42,\"amount\":-600,\"currency\":\"CNY\""), "amount"},
        {EV("\"user_id\":42,\"amount\":\"600\",\"currency\":\"CNY\""), "amount"},
        {EV("\"user_id\":42,\"amount\":100000001,\"currency\":\"CNY\""), "amount"},
        {EV("\"user_id\":42,\"amount\":600.0,\"currency\":\"CNY\""), NULL},
        {EV("\"user_id\":42,\"amount\":6e2,\"currency\":\"CNY\""), NULL},
        {EV("\"user_id\":42,\"amount\":99999999999999999999,\"currency\":\"CNY\""), NULL},
        {EV("\"user_id\":42,\"amount\":true,\"currency\":\"CNY\""), NULL},
        {EV("\"user_id\":42,\"amount\":null,\"currency\":\"CNY\""), NULL},
        {EV("\"user_id\":0,\"amount\":600,\"currency\":\"CNY\""), "user_id"},
        {EV("\"user_id\":-42,\"amount\":600,\"currency\":\"CNY\""), "user_id"},
        {EV("\"user_id\":\"42\",\"amount\":600,\"currency\":\"CNY\""), "user_id"},
        {EV("\"user_id\":42,\"amount\":600,\"currency\":\"cny\""), "currency"},
        {EV("\"user_id\":42,\"amount\":600,\"currency\":\"XBT\""), "currency"},
        {EV("\"user_id\":42,\"amount\":600,\"currency\":\"CN\""), "currency"},
        {EV("\"user_id\":42,\"amount\":600,\"currency\":\"CNYY\""), "currency"},
        {EV("\"user_id\":42,\"amount\":600,\"currency\":156"), "currency"},
        {EV("\"user_id\":42,\"amount\":600,\"currency\":\"CNY\",\"created\":-1"), "created"},
        {EV("\"user_id\":42,\"amount\":600,\"currency\":\"CNY\",\"created\":\"now\""), "created"},
        {EV("\"amount\":600,\"currency\":\"CNY\""), "user_id"},
        {EV("\"user_id\":42,\"currency\":\"CNY\""), "amount"},
        {EV("\"user_id\":42,\"amount\":600"), "currency"},
        {"{\"type\":\"payment.succeeded\",\"user_id\":42,\"amount\":600,\"currency\":\"CNY\"}",
         "id"},
        {"{\"id\":\"evt_1\",\"user_id\":42,\"amount\":600,\"currency\":\"CNY\"}", "type"},
        {"{\"id\":\"\",\"type\":\"payment.succeeded\",\"user_id\":42,\"amount\":600,"
         "\"currency\":\"CNY\"}",
         "id"},
        {"{\"id\":\"evt 1\",\"type\":\"payment.succeeded\",\"user_id\":42,\"amount\":600,"
         "\"currency\":\"CNY\"}",
         "id"},
        {"{\"id\":7,\"type\":\"payment.succeeded\",\"user_id\":42,\"amount\":600,"
         "\"currency\":\"CNY\"}",
         "id"},
        {"{\"id\":\"01234567890123456789012345678901234567890123456789012345678901234\","
         "\"type\":\"payment.succeeded\",\"user_id\":42,\"amount\":600,\"currency\":\"CNY\"}",
         "id"},
        {"{\"id\":\"evt_1\",\"type\":\"Payment.Succeeded\",\"user_id\":42,\"amount\":600,"
         "\"currency\":\"CNY\"}",
         "type"},
        /* The first invalid member is named. */
        {EV("\"user_id\":-1,\"amount\":-1,\"currency\":\"CNY\""), "user_id"},
        /* Shape: unknown member, duplicate, nesting, escapes, not JSON. */
        {EV("\"user_id\":42,\"amount\":600,\"currency\":\"CNY\",\"extra\":1"), NULL},
        {EV("\"user_id\":42,\"amount\":600,\"amount\":1,\"currency\":\"CNY\""), NULL},
        {EV("\"user_id\":42,\"amount\":600,\"currency\":\"CNY\",\"data\":{}"), NULL},
        {"{\"id\":\"evt\\u005f1\",\"type\":\"payment.succeeded\",\"user_id\":42,\"amount\":600,"
         "\"currency\":\"CNY\"}",
         NULL},
        {"[]", NULL},
        {"", NULL},
        {"{\"id\":\"evt_1\"", NULL},
        {"{}", "id"},
    };
#undef EV
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        encore_webhook_event ev;
        const char *field = "unset";
        g_test_message("event %zu: %s", i, bad[i].body);
        g_assert_cmpint(parse(bad[i].body, &ev, &field), ==, ENCORE_WEBHOOK_EBADEVENT);
        g_assert_cmpstr(field, ==, bad[i].field);
        g_assert_cmpstr(ev.id, ==, "");
        g_assert_cmpint(ev.amount, ==, 0);
    }
    /* Over 16 KiB, even if otherwise valid. */
    GString *big = g_string_new("{\"id\":\"evt_1\",\"type\":\"payment.succeeded\",\"user_id\":42,"
                                "\"amount\":600,\"currency\":\"CNY\"");
    while (big->len < ENCORE_WEBHOOK_MAX_BODY)
        g_string_append_c(big, ' ');
    g_string_append_c(big, '}');
    encore_webhook_event ev;
    g_assert_cmpint(parse(big->str, &ev, NULL), ==, ENCORE_WEBHOOK_EBADEVENT);
    g_string_truncate(big, ENCORE_WEBHOOK_MAX_BODY - 1);
    g_string_append_c(big, '}');
    g_assert_cmpint(parse(big->str, &ev, NULL), ==, 0);
    g_string_free(big, TRUE);
    g_assert_cmpint(encore_webhook_parse_event(NULL, 0, 0, &ev, NULL), ==,
                    ENCORE_WEBHOOK_EBADEVENT);
}

static void test_currencies_and_codes(void)
{
    g_assert_cmpint(encore_webhook_currency_digits("CNY", 3), ==, 2);
    g_assert_cmpint(encore_webhook_currency_digits("USD", 3), ==, 2);
    g_assert_cmpint(encore_webhook_currency_digits("EUR", 3), ==, 2);
    g_assert_cmpint(encore_webhook_currency_digits("GBP", 3), ==, 2);
    g_assert_cmpint(encore_webhook_currency_digits("HKD", 3), ==, 2);
    g_assert_cmpint(encore_webhook_currency_digits("JPY", 3), ==, 0);
    g_assert_cmpint(encore_webhook_currency_digits("CNYX", 3), ==, 2);
    g_assert_cmpint(encore_webhook_currency_digits("CNY", 4), ==, -1);
    g_assert_cmpint(encore_webhook_currency_digits("usd", 3), ==, -1);
    g_assert_cmpint(encore_webhook_currency_digits(NULL, 3), ==, -1);
    static const struct {
        int err;
        const char *code;
    } codes[] = {
        {0, "ok"},
        {ENCORE_WEBHOOK_EMALFORMED_HEADER, "malformed_header"},
        {ENCORE_WEBHOOK_ESTALE, "stale"},
        {ENCORE_WEBHOOK_EBADSIG, "bad_signature"},
        {ENCORE_WEBHOOK_EBADEVENT, "bad_event"},
        {ENCORE_WEBHOOK_EUNSUPPORTED, "unsupported_event"},
        {ENCORE_WEBHOOK_EINVAL, "invalid_argument"},
        {ENCORE_WEBHOOK_ENOSPACE, "no_space"},
        {ENCORE_WEBHOOK_ECRYPTO, "crypto_failure"},
        {-100, "internal"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(codes); i++)
        g_assert_cmpstr(encore_webhook_error_code(codes[i].err), ==, codes[i].code);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/accounts/webhook/known-signature", test_known_signature);
    g_test_add_func("/accounts/webhook/tolerance", test_tolerance);
    g_test_add_func("/accounts/webhook/forgery", test_forgery);
    g_test_add_func("/accounts/webhook/rotation", test_rotation);
    g_test_add_func("/accounts/webhook/malformed-headers", test_malformed_headers);
    g_test_add_func("/accounts/webhook/replay-not-detected-here", test_replay_not_detected_here);
    g_test_add_func("/accounts/webhook/arguments", test_arguments);
    g_test_add_func("/accounts/webhook/event-ok", test_event_ok);
    g_test_add_func("/accounts/webhook/event-unsupported", test_event_unsupported);
    g_test_add_func("/accounts/webhook/event-bad", test_event_bad);
    g_test_add_func("/accounts/webhook/currencies-and-codes", test_currencies_and_codes);
    return g_test_run();
}
