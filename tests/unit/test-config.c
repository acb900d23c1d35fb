/* Unit tests for server/config: defaults, INI file, command-line overrides and bad values. */
#include "config.h"

#include <glib/gstdio.h>
#include <unistd.h>

#include "server/config.h"

static void test_defaults(void)
{
    encore_config c;
    char *args[] = {"encored", NULL};
    char **argv = args;
    int argc = 1;
    GError *err = NULL;
    g_assert_true(encore_config_load(&c, &argc, &argv, &err));
    g_assert_no_error(err);
    g_assert_cmpstr(c.listen_addr, ==, "127.0.0.1");
    g_assert_cmpint(c.listen_port, ==, 8080);
    g_assert_cmpstr(c.media_ips[0], ==, "127.0.0.1");
    g_assert_null(c.media_ips[1]);
    g_assert_cmpint(c.port_min, ==, 40000);
    g_assert_cmpint(c.port_max, ==, 49999);
    g_assert_cmpint(c.max_message, ==, 65536);
    g_assert_cmpint(c.max_depth, ==, 16);
    encore_config_clear(&c);
}

static void test_file_and_overrides(void)
{
    char *path = NULL;
    int fd = g_file_open_tmp("encore-XXXXXX.ini", &path, NULL);
    g_assert_cmpint(fd, >=, 0);
    const char *ini = "[server]\nlisten = 127.0.0.2:9000\ndata_dir = /tmp/x\n"
                      "[media]\nips = 127.0.0.1, 127.0.0.3\nrtp_ports = 50000-50100\nworkers = 3\n"
                      "[limits]\nrate = 10.5\nconns_per_addr = 4\n";
    g_assert_true(g_file_set_contents(path, ini, -1, NULL));
    close(fd);
    char *args[] = {"encored", "--config", path, "--listen", "[::1]:7000", "--workers", "1", NULL};
    char **argv = args;
    int argc = 7;
    encore_config c;
    GError *err = NULL;
    g_assert_true(encore_config_load(&c, &argc, &argv, &err));
    g_assert_no_error(err);
    g_assert_cmpstr(c.listen_addr, ==, "::1");
    g_assert_cmpint(c.listen_port, ==, 7000);
    g_assert_cmpstr(c.data_dir, ==, "/tmp/x");
    g_assert_cmpstr(c.media_ips[0], ==, "127.0.0.1");
    g_assert_cmpstr(c.media_ips[1], ==, "127.0.0.3");
    g_assert_cmpint(c.port_min, ==, 50000);
    g_assert_cmpint(c.port_max, ==, 50100);
    g_assert_cmpint(c.workers, ==, 1);
    g_assert_cmpfloat(c.rate_per_sec, ==, 10.5);
    g_assert_cmpint(c.max_conns_per_addr, ==, 4);
    encore_config_clear(&c);
    g_unlink(path);
    g_free(path);
}

static void expect_bad(const char *key_line)
{
    char *path = NULL;
    int fd = g_file_open_tmp("encore-XXXXXX.ini", &path, NULL);
    g_assert_true(g_file_set_contents(path, key_line, -1, NULL));
    close(fd);
    char *args[] = {"encored", "--config", path, NULL};
    char **argv = args;
    int argc = 3;
    encore_config c;
    GError *err = NULL;
    g_assert_false(encore_config_load(&c, &argc, &argv, &err));
    g_assert_nonnull(err);
    g_clear_error(&err);
    encore_config_clear(&c);
    g_unlink(path);
    g_free(path);
}

static void test_bad_values(void)
{
    expect_bad("[server]\nlisten = nope\n");
    expect_bad("[server]\nlisten = 127.0.0.1:70000\n");
    expect_bad("[media]\nrtp_ports = 5000\n");
    expect_bad("[media]\nrtp_ports = 6000-5000\n");
    expect_bad("[media]\nips = example.com\n");
    expect_bad("[media]\nworkers = -1\n");
    expect_bad("[limits]\nmax_depth = many\n");
    expect_bad("not an ini file");
}

static void test_parsers(void)
{
    char *addr = NULL;
    int port = 0;
    g_assert_true(encore_config_parse_listen("0.0.0.0:0", &addr, &port, NULL));
    g_assert_cmpstr(addr, ==, "0.0.0.0");
    g_assert_cmpint(port, ==, 0);
    g_free(addr);
    g_assert_false(encore_config_parse_listen(":80", &addr, &port, NULL));
    g_assert_false(encore_config_parse_listen("1.2.3.4:", &addr, &port, NULL));
    uint16_t a, b;
    g_assert_true(encore_config_parse_range("1-65535", &a, &b, NULL));
    g_assert_cmpint(a, ==, 1);
    g_assert_cmpint(b, ==, 65535);
    g_assert_false(encore_config_parse_range("0-10", &a, &b, NULL));
    g_assert_false(encore_config_parse_range("10-", &a, &b, NULL));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/config/defaults", test_defaults);
    g_test_add_func("/config/file-and-overrides", test_file_and_overrides);
    g_test_add_func("/config/bad-values", test_bad_values);
    g_test_add_func("/config/parsers", test_parsers);
    return g_test_run();
}
