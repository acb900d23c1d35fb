/* Unit tests for server/accounts/origin.c: parsing (schemes, hosts, IPv6, ports, case, default
 * ports), everything refused as malformed, the "null" origin, a missing header, and allowlist
 * construction and matching. */
#include <string.h>

#include <glib.h>

#include "server/accounts/origin.h"

static int parse(const char *s, encore_origin *o)
{
    return encore_origin_parse(s, strlen(s), o);
}

static void test_parse_ok(void)
{
    static const struct {
        const char *in;
        encore_origin_scheme scheme;
        const char *host;
        unsigned port;
    } ok[] = {
        {"https://encore.example", ENCORE_ORIGIN_HTTPS, "encore.example", 443},
        {"https://encore.example:443", ENCORE_ORIGIN_HTTPS, "encore.example", 443},
        {"https://encore.example:8443", ENCORE_ORIGIN_HTTPS, "encore.example", 8443},
        {"http://encore.example", ENCORE_ORIGIN_HTTP, "encore.example", 80},
        {"http://encore.example:80", ENCORE_ORIGIN_HTTP, "encore.example", 80},
        {"http://encore.example:443", ENCORE_ORIGIN_HTTP, "encore.example", 443},
        {"HTTPS://Encore.EXAMPLE", ENCORE_ORIGIN_HTTPS, "encore.example", 443},
        {"http://127.0.0.1:8080", ENCORE_ORIGIN_HTTP, "127.0.0.1", 8080},
        {"http://localhost:1", ENCORE_ORIGIN_HTTP, "localhost", 1},
        {"http://localhost:65535", ENCORE_ORIGIN_HTTP, "localhost", 65535},
        {"http://[::1]:8080", ENCORE_ORIGIN_HTTP, "[::1]", 8080},
        {"https://[2001:DB8::1]", ENCORE_ORIGIN_HTTPS, "[2001:db8::1]", 443},
        {"http://[::ffff:127.0.0.1]", ENCORE_ORIGIN_HTTP, "[::ffff:127.0.0.1]", 80},
        {"https://xn--fiq228c.example", ENCORE_ORIGIN_HTTPS, "xn--fiq228c.example", 443},
        {"https://a-b.c-d.example", ENCORE_ORIGIN_HTTPS, "a-b.c-d.example", 443},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
        encore_origin o;
        g_test_message("origin %s", ok[i].in);
        g_assert_cmpint(parse(ok[i].in, &o), ==, 0);
        g_assert_cmpint(o.scheme, ==, ok[i].scheme);
        g_assert_cmpstr(o.host, ==, ok[i].host);
        g_assert_cmpuint(o.port, ==, ok[i].port);
    }
    /* Default-port normalisation and case make these equal. */
    encore_origin a, b;
    g_assert_cmpint(parse("https://Encore.Example", &a), ==, 0);
    g_assert_cmpint(parse("https://encore.example:443", &b), ==, 0);
    g_assert_true(encore_origin_equal(&a, &b));
    g_assert_cmpint(parse("http://encore.example:443", &b), ==, 0);
    g_assert_false(encore_origin_equal(&a, &b)); /* scheme differs */
    g_assert_cmpint(parse("https://encore.example:8443", &b), ==, 0);
    g_assert_false(encore_origin_equal(&a, &b)); /* port differs */
    g_assert_cmpint(parse("https://www.encore.example", &b), ==, 0);
    g_assert_false(encore_origin_equal(&a, &b)); /* host differs */
    /* The length is honoured. */
    g_assert_cmpint(encore_origin_parse("https://encore.example/path", 22, &a), ==, 0);
    g_assert_cmpstr(a.host, ==, "encore.example");
    /* A 63-character label and a 253-character host. */
    GString *h = g_string_new("https://");
    for (int i = 0; i < 63; i++)
        g_string_append_c(h, 'a');
    g_assert_cmpint(parse(h->str, &a), ==, 0);
    g_string_append_c(h, 'a');
    g_assert_cmpint(parse(h->str, &a), ==, ENCORE_ORIGIN_EMALFORMED);
    g_string_assign(h, "https://");
    for (int i = 0; i < 126; i++)
        g_string_append(h, "a.");
    g_string_append(h, "a"); /* 253 characters */
    g_assert_cmpint(parse(h->str, &a), ==, 0);
    g_assert_cmpuint(strlen(a.host), ==, 253);
    g_string_append(h, "a"); /* 254 */
    g_assert_cmpint(parse(h->str, &a), ==, ENCORE_ORIGIN_EMALFORMED);
    g_string_free(h, TRUE);
}

static void test_parse_bad(void)
{
    static const char *const bad[] = {
        "",
        "encore.example",
        "//encore.example",
        "://encore.example",
        "ftp://encore.example",
        "ws://encore.example",
        "wss://encore.example",
        "file://",
        "chrome-extension://abcdefghijklmnop",
        "https:/encore.example",
        "https//encore.example",
        "https://",
        "https://encore.example/",
        "https://encore.example/path",
        "https://encore.example?x=1",
        "https://encore.example#f",
        "https://user@encore.example",
        "https://user:pw@encore.example",
        "https://encore.example.",
        "https://.encore.example",
        "https://encore..example",
        "https://encore_example.com",
        "https://encore example",
        "https://encore.example:",
        "https://encore.example:0",
        "https://encore.example:065",
        "https://encore.example:65536",
        "https://encore.example:99999",
        "https://encore.example:123456",
        "https://encore.example:+80",
        "https://encore.example:80:80",
        "https://encore.example:http",
        "https://[::1",
        "https://::1",
        "https://[]",
        "https://[1]",
        "https://[::1]x",
        "https://[::1]:",
        "https://[fe80::1%25eth0]",
        "https://[::g]",
        " https://encore.example",
        "https://encore.example ",
        "https://enc\xc3\xb6re.example",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        encore_origin o;
        g_test_message("bad origin %zu: %s", i, bad[i]);
        memset(&o, 0x55, sizeof o);
        g_assert_cmpint(parse(bad[i], &o), ==, ENCORE_ORIGIN_EMALFORMED);
        g_assert_cmpstr(o.host, ==, ""); /* zeroed on failure */
    }
    encore_origin o;
    g_assert_cmpint(encore_origin_parse(NULL, 5, &o), ==, ENCORE_ORIGIN_EMALFORMED);
    g_assert_cmpint(encore_origin_parse("https://a\0b", 11, &o), ==, ENCORE_ORIGIN_EMALFORMED);
    g_assert_cmpint(parse("null", &o), ==, ENCORE_ORIGIN_ENULL);
    g_assert_cmpint(parse("NULL", &o), ==, ENCORE_ORIGIN_ENULL);
    g_assert_cmpint(parse("null ", &o), ==, ENCORE_ORIGIN_EMALFORMED);
    /* Over the maximum length. */
    GString *s = g_string_new("https://a");
    while (s->len <= ENCORE_ORIGIN_MAX_LEN)
        g_string_append_c(s, 'a');
    g_assert_cmpint(parse(s->str, &o), ==, ENCORE_ORIGIN_EMALFORMED);
    g_string_free(s, TRUE);
}

static void test_list(void)
{
    const char *const entries[] = {
        "https://encore.example",
        "https://www.encore.example:443",
        "http://localhost:8080",
        "http://[::1]:8080",
    };
    size_t bad = 99;
    encore_origin_list *list = encore_origin_list_new(entries, G_N_ELEMENTS(entries), &bad);
    g_assert_nonnull(list);
    g_assert_cmpuint(encore_origin_list_size(list), ==, 4);
    static const struct {
        const char *origin;
        int want;
    } cases[] = {
        {"https://encore.example", 0},
        {"https://ENCORE.example:443", 0},
        {"https://www.encore.example", 0},
        {"http://localhost:8080", 0},
        {"http://LOCALHOST:8080", 0},
        {"http://[::1]:8080", 0},
        {"http://encore.example", ENCORE_ORIGIN_EDENIED},
        {"https://encore.example:8443", ENCORE_ORIGIN_EDENIED},
        {"https://evil.encore.example", ENCORE_ORIGIN_EDENIED},
        {"https://encore.example.evil", ENCORE_ORIGIN_EDENIED},
        {"https://encoreXexample", ENCORE_ORIGIN_EDENIED},
        {"http://localhost", ENCORE_ORIGIN_EDENIED},
        {"http://localhost:8081", ENCORE_ORIGIN_EDENIED},
        {"http://127.0.0.1:8080", ENCORE_ORIGIN_EDENIED},
        {"https://localhost:8080", ENCORE_ORIGIN_EDENIED},
        {"null", ENCORE_ORIGIN_ENULL},
        {"https://encore.example/", ENCORE_ORIGIN_EMALFORMED},
        {"file://", ENCORE_ORIGIN_EMALFORMED},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_message("check %s", cases[i].origin);
        g_assert_cmpint(encore_origin_check(list, cases[i].origin, strlen(cases[i].origin)), ==,
                        cases[i].want);
    }
    g_assert_cmpint(encore_origin_check(list, NULL, 0), ==, ENCORE_ORIGIN_EMISSING);
    encore_origin_list_free(list);

    /* Bad entries are reported by index. */
    const char *const bad_entries[] = {"https://ok.example", "https://bad.example/", "null"};
    g_assert_null(encore_origin_list_new(bad_entries, 3, &bad));
    g_assert_cmpuint(bad, ==, 1);
    g_assert_null(encore_origin_list_new(bad_entries + 2, 1, &bad));
    g_assert_cmpuint(bad, ==, 0);
    const char *const with_null[] = {"https://ok.example", NULL};
    g_assert_null(encore_origin_list_new(with_null, 2, &bad));
    g_assert_cmpuint(bad, ==, 1);
    g_assert_null(encore_origin_list_new(NULL, 1, NULL));
    /* An empty list denies every well-formed origin. */
    list = encore_origin_list_new(NULL, 0, &bad);
    g_assert_nonnull(list);
    g_assert_cmpuint(encore_origin_list_size(list), ==, 0);
    g_assert_cmpint(encore_origin_check(list, "https://encore.example", 22), ==,
                    ENCORE_ORIGIN_EDENIED);
    encore_origin_list_free(list);
    g_assert_cmpint(encore_origin_check(NULL, "https://encore.example", 22), ==,
                    ENCORE_ORIGIN_EDENIED);
    encore_origin_list_free(NULL);

    g_assert_cmpstr(encore_origin_error_code(0), ==, "ok");
    g_assert_cmpstr(encore_origin_error_code(ENCORE_ORIGIN_EMISSING), ==, "missing");
    g_assert_cmpstr(encore_origin_error_code(ENCORE_ORIGIN_ENULL), ==, "null");
    g_assert_cmpstr(encore_origin_error_code(ENCORE_ORIGIN_EMALFORMED), ==, "malformed");
    g_assert_cmpstr(encore_origin_error_code(ENCORE_ORIGIN_EDENIED), ==, "denied");
    g_assert_cmpstr(encore_origin_error_code(-9), ==, "internal");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/accounts/origin/parse-ok", test_parse_ok);
    g_test_add_func("/accounts/origin/parse-bad", test_parse_bad);
    g_test_add_func("/accounts/origin/list", test_list);
    return g_test_run();
}
