/* Unit tests for signaling/metrics.c: the exact Prometheus text of counters, gauges, labels and
 * collectors, get-or-create identity, misuse refused, and lock-free updates from several threads.
 */
#include <string.h>

#include <glib.h>

#include "signaling/metrics.h"

static char *render(encore_metrics *m)
{
    GString *s = g_string_new(NULL);
    encore_metrics_render(m, s);
    return g_string_free(s, FALSE);
}

static void collect_a(GString *out, void *user_data)
{
    g_string_append_printf(out, "# TYPE media_peers gauge\nmedia_peers %d\n",
                           GPOINTER_TO_INT(user_data));
}

static int destroyed;

static void count_destroy(void *p)
{
    destroyed += GPOINTER_TO_INT(p);
}

static void test_render(void)
{
    encore_metrics *m = encore_metrics_new();
    char *text = render(m);
    g_assert_cmpstr(text, ==, "");
    g_free(text);

    encore_metric *opened = encore_metrics_counter(m, "ws_opened_total", "Opened.", NULL, NULL);
    encore_metric *pe = encore_metrics_counter(m, "ws_errors_total", "Errors\nby code \\ kind.",
                                               "code", "parse_error");
    encore_metric *q = encore_metrics_counter(m, "ws_errors_total", NULL, "code", "a\"b\\c\nd");
    encore_metric *cur = encore_metrics_gauge(m, "ws_current", NULL, NULL, NULL);
    g_assert_nonnull(opened);
    g_assert_nonnull(pe);
    g_assert_true(
        encore_metrics_counter(m, "ws_errors_total", "other help", "code", "parse_error") == pe);
    encore_metrics_inc(opened);
    encore_metrics_add(opened, 41);
    encore_metrics_add(pe, 3);
    encore_metrics_inc(q);
    encore_metrics_add(cur, 5);
    encore_metrics_sub(cur, 7);
    g_assert_cmpint(encore_metrics_get(cur), ==, -2);
    g_assert_cmpint(encore_metrics_get(opened), ==, 42);
    encore_metrics_add(NULL, 1); /* ignored */
    g_assert_cmpint(encore_metrics_get(NULL), ==, 0);

    guint id1 = encore_metrics_add_collector(m, collect_a, GINT_TO_POINTER(7), count_destroy);
    guint id2 = encore_metrics_add_collector(m, collect_a, GINT_TO_POINTER(100), count_destroy);
    g_assert_cmpuint(id1, >, 0);
    g_assert_cmpuint(id2, !=, id1);

    text = render(m);
    g_assert_cmpstr(text, ==,
                    "# HELP ws_opened_total Opened.\n"
                    "# TYPE ws_opened_total counter\n"
                    "ws_opened_total 42\n"
                    "# HELP ws_errors_total Errors\\nby code \\\\ kind.\n"
                    "# TYPE ws_errors_total counter\n"
                    "ws_errors_total{code=\"parse_error\"} 3\n"
                    "ws_errors_total{code=\"a\\\"b\\\\c\\nd\"} 1\n"
                    "# HELP ws_current ws_current\n"
                    "# TYPE ws_current gauge\n"
                    "ws_current -2\n"
                    "# TYPE media_peers gauge\nmedia_peers 7\n"
                    "# TYPE media_peers gauge\nmedia_peers 100\n");
    g_free(text);

    encore_metrics_remove_collector(m, id1);
    g_assert_cmpint(destroyed, ==, 7);
    encore_metrics_remove_collector(m, 9999); /* unknown: ignored */
    encore_metrics_set(cur, 9);
    text = render(m);
    g_assert_nonnull(strstr(text, "ws_current 9\n"));
    g_assert_null(strstr(text, "media_peers 7\n"));
    g_assert_nonnull(strstr(text, "media_peers 100\n"));
    g_free(text);

    encore_metrics_free(m);
    g_assert_cmpint(destroyed, ==, 107);
    encore_metrics_free(NULL);
}

static void test_misuse(void)
{
    encore_metrics *m = encore_metrics_new();
    encore_metrics_counter(m, "a_total", NULL, "code", "x");

    g_test_expect_message("encore-metrics", G_LOG_LEVEL_CRITICAL, "*another type or label*");
    g_assert_null(encore_metrics_gauge(m, "a_total", NULL, "code", "x"));
    g_test_assert_expected_messages();
    g_test_expect_message("encore-metrics", G_LOG_LEVEL_CRITICAL, "*another type or label*");
    g_assert_null(encore_metrics_counter(m, "a_total", NULL, "reason", "x"));
    g_test_assert_expected_messages();
    g_test_expect_message("encore-metrics", G_LOG_LEVEL_CRITICAL, "*another type or label*");
    g_assert_null(encore_metrics_counter(m, "a_total", NULL, NULL, NULL));
    g_test_assert_expected_messages();

    g_test_expect_message("encore-metrics", G_LOG_LEVEL_CRITICAL, "*valid_name*");
    g_assert_null(encore_metrics_counter(m, "9bad", NULL, NULL, NULL));
    g_test_assert_expected_messages();
    g_test_expect_message("encore-metrics", G_LOG_LEVEL_CRITICAL, "*valid_name*");
    g_assert_null(encore_metrics_counter(m, "bad-name", NULL, NULL, NULL));
    g_test_assert_expected_messages();
    g_test_expect_message("encore-metrics", G_LOG_LEVEL_CRITICAL, "*valid_name*");
    g_assert_null(encore_metrics_counter(m, "ok_name", NULL, "bad:label", "v"));
    g_test_assert_expected_messages();
    g_test_expect_message("encore-metrics", G_LOG_LEVEL_CRITICAL, "*label_value*");
    g_assert_null(encore_metrics_counter(m, "ok_name", NULL, "code", NULL));
    g_test_assert_expected_messages();

    encore_metric *c = encore_metrics_counter(m, "c_total", NULL, NULL, NULL);
    g_test_expect_message("encore-metrics", G_LOG_LEVEL_CRITICAL, "*KIND_GAUGE*");
    encore_metrics_sub(c, 1);
    g_test_assert_expected_messages();
    g_assert_cmpint(encore_metrics_get(c), ==, 0);
    encore_metrics_free(m);
}

#define THREADS 4
#define PER_THREAD 100000

static void *bump(void *p)
{
    encore_metric *c = p;
    for (int i = 0; i < PER_THREAD; i++)
        encore_metrics_inc(c);
    return NULL;
}

static void test_threads(void)
{
    encore_metrics *m = encore_metrics_new();
    encore_metric *c = encore_metrics_counter(m, "hits_total", NULL, NULL, NULL);
    GThread *t[THREADS];
    for (int i = 0; i < THREADS; i++)
        t[i] = g_thread_new("bump", bump, c);
    for (int i = 0; i < THREADS; i++)
        g_thread_join(t[i]);
    g_assert_cmpint(encore_metrics_get(c), ==, THREADS * PER_THREAD);
    encore_metrics_free(m);
}

static void test_default(void)
{
    encore_metrics *d = encore_metrics_default();
    g_assert_nonnull(d);
    g_assert_true(encore_metrics_default() == d);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/metrics/render", test_render);
    g_test_add_func("/metrics/misuse", test_misuse);
    g_test_add_func("/metrics/threads", test_threads);
    g_test_add_func("/metrics/default", test_default);
    return g_test_run();
}
