/* Ledger benchmark (scripts/bench-ledger runs it): N concurrent senders in a closed loop, each
 * with one gift outstanding at a time, through the asynchronous ledger API from one main loop
 * (as the server's main thread would). Every gift is a 4-leg durable transfer (wallet -> singer,
 * agent, platform split). Prints durable transfers per second, ack latency percentiles and the
 * mean batch size; with --scan, then how fast encore_ledger_scan() pages through the whole ledger
 * (as a rebuild at start does). Test-only; the main thread plus the ledger's. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/economy/ledger.h"
#include "server/economy/split.h"

static char *opt_store;
static int opt_senders = 100;
static double opt_seconds = 5;
static double opt_warmup = 1;
static int opt_max_batch = 0;
static char *opt_run = NULL;
static gboolean opt_scan = FALSE;

typedef struct bench bench;
typedef struct {
    bench *b;
    int index;
    int64_t seq;
    gint64 sent_at;
    char wallet[48];
} sender;

struct bench {
    encore_ledger *ledger;
    sender *senders;
    GMainLoop *loop;
    gint64 measure_from, measure_to;
    GArray *latencies_us; /* of gint64, acks inside the measured window */
    uint64_t acked, failed;
    int running;
    bool stopping;
};

static void send_gift(sender *s);

static void on_ack(const encore_transfer_result *r, void *user_data)
{
    sender *s = user_data;
    bench *b = s->b;
    gint64 now = g_get_monotonic_time();
    if (r->status != ENCORE_LEDGER_OK)
        b->failed++;
    if (now >= b->measure_from && now < b->measure_to) {
        gint64 lat = now - s->sent_at;
        g_array_append_val(b->latencies_us, lat);
        b->acked += r->status == ENCORE_LEDGER_OK;
    }
    if (now >= b->measure_to) {
        if (--b->running == 0)
            g_main_loop_quit(b->loop);
        return;
    }
    send_gift(s);
}

static void send_gift(sender *s)
{
    char id[96];
    g_snprintf(id, sizeof(id), "bench:%s:%d:%" G_GINT64_FORMAT, opt_run, s->index, s->seq++);
    int64_t price = 10 + s->seq % 90, sp, ap, pp;
    if (encore_split(price, 5000, 2000, &sp, &ap, &pp) != 0)
        abort();
    encore_leg legs[] = {{s->wallet, -price},
                         {"earnings:bench-singer", sp},
                         {"earnings:bench-agent", ap},
                         {"platform:revenue", pp}};
    encore_transfer_req req = {.id = id,
                               .kind = "gift",
                               .metadata = "{\"gift\":\"rose\",\"count\":1}",
                               .legs = legs,
                               .n_legs = 4};
    s->sent_at = g_get_monotonic_time();
    encore_ledger_submit(s->b->ledger, &req, g_main_context_default(), on_ack, s, NULL);
}

/* CPU time (user + system, microseconds) used so far by this process's thread named `name`
 * (from /proc), or by the whole process when name is NULL; -1 when unknown. */
static int64_t thread_cpu_us(const char *name)
{
    int64_t total = -1;
    GDir *dir = g_dir_open("/proc/self/task", 0, NULL);
    if (!dir)
        return -1;
    const char *tid;
    long hz = sysconf(_SC_CLK_TCK);
    while ((tid = g_dir_read_name(dir))) {
        char *path = g_strdup_printf("/proc/self/task/%s/stat", tid);
        char *text = NULL;
        if (g_file_get_contents(path, &text, NULL, NULL)) {
            /* "tid (comm) state ..." with utime and stime the 14th and 15th fields. */
            char *open = strchr(text, '('), *close = strrchr(text, ')');
            if (open && close &&
                (!name || (strncmp(open + 1, name, (size_t)(close - open - 1)) == 0 &&
                           strlen(name) == (size_t)(close - open - 1)))) {
                char **f = g_strsplit(close + 2, " ", 0);
                if (g_strv_length(f) > 13) {
                    int64_t ticks =
                        g_ascii_strtoll(f[11], NULL, 10) + g_ascii_strtoll(f[12], NULL, 10);
                    total = (total < 0 ? 0 : total) + ticks * 1000000 / hz;
                }
                g_strfreev(f);
            }
            g_free(text);
        }
        g_free(path);
    }
    g_dir_close(dir);
    return total;
}

/* Pages through the ledger with encore_ledger_scan() (pages of ENCORE_LEDGER_SCAN_MAX) for every
 * kind, for the gifts, and for the top-ups (one per sender: a rare kind among the gifts), and
 * prints the time each took. */
static bool scan_all(encore_ledger *ledger)
{
    const char *prefixes[] = {"", "gift", "topup"};
    for (size_t i = 0; i < G_N_ELEMENTS(prefixes); i++) {
        gint64 start = g_get_monotonic_time();
        int64_t after = 0;
        uint64_t records = 0, legs = 0, pages = 0;
        for (;;) {
            GError *err = NULL;
            GPtrArray *page =
                encore_ledger_scan(ledger, prefixes[i], after, ENCORE_LEDGER_SCAN_MAX, &err);
            if (!page) {
                fprintf(stderr, "ledger-bench: scan: %s\n", err->message);
                g_error_free(err);
                return false;
            }
            pages++;
            for (guint k = 0; k < page->len; k++) {
                const encore_ledger_record *r = g_ptr_array_index(page, k);
                legs += r->n_legs;
                after = r->transfer_id;
            }
            records += page->len;
            bool end = page->len == 0;
            g_ptr_array_unref(page);
            if (end)
                break;
        }
        double secs = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
        printf("scan \"%s\": %" G_GUINT64_FORMAT " transfers (%" G_GUINT64_FORMAT
               " legs) in %" G_GUINT64_FORMAT " pages, %.2f s, %.0f transfers/s\n",
               prefixes[i], records, legs, pages, secs, secs > 0 ? records / secs : 0.0);
    }
    return true;
}

static int cmp_i64(gconstpointer a, gconstpointer b)
{
    gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
    return x < y ? -1 : x > y;
}

static double percentile_ms(GArray *sorted, double q)
{
    if (!sorted->len)
        return 0;
    guint i = (guint)(q * (sorted->len - 1) + 0.5);
    return g_array_index(sorted, gint64, i) / 1000.0;
}

int main(int argc, char **argv)
{
    GOptionEntry entries[] = {
        {"store", 0, 0, G_OPTION_ARG_STRING, &opt_store, "sqlite:PATH or postgresql:CONNINFO",
         "STORE"},
        {"senders", 0, 0, G_OPTION_ARG_INT, &opt_senders, "concurrent senders (100)", "N"},
        {"seconds", 0, 0, G_OPTION_ARG_DOUBLE, &opt_seconds, "measured seconds (5)", "S"},
        {"warmup", 0, 0, G_OPTION_ARG_DOUBLE, &opt_warmup, "warm-up seconds (1)", "S"},
        {"max-batch", 0, 0, G_OPTION_ARG_INT, &opt_max_batch, "ledger max_batch (1024)", "N"},
        {"run", 0, 0, G_OPTION_ARG_STRING, &opt_run, "id namespace (random)", "NAME"},
        {"scan", 0, 0, G_OPTION_ARG_NONE, &opt_scan,
         "then page through every transfer with encore_ledger_scan()", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *octx = g_option_context_new("- ledger throughput and ack latency");
    g_option_context_add_main_entries(octx, entries, NULL);
    GError *err = NULL;
    if (!g_option_context_parse(octx, &argc, &argv, &err) || !opt_store || opt_senders < 1) {
        fprintf(stderr, "ledger-bench: %s\n", err ? err->message : "--store is required");
        return 2;
    }
    if (!opt_run)
        opt_run = g_strdup_printf("%08x", g_random_int());
    encore_ledger_config cfg = {.backend = opt_store,
                                .max_batch = (unsigned)opt_max_batch,
                                .max_queue = (unsigned)MAX(opt_senders * 4, 100000)};
    bench b = {0};
    b.ledger = encore_ledger_open(&cfg, &err);
    if (!b.ledger) {
        fprintf(stderr, "ledger-bench: %s\n", err->message);
        return 2;
    }
    b.senders = g_new0(sender, opt_senders);
    b.latencies_us = g_array_sized_new(FALSE, FALSE, sizeof(gint64), 1 << 20);
    b.loop = g_main_loop_new(NULL, FALSE);
    /* Fund every sender's wallet (one top-up each, synchronously, before the clock starts). */
    for (int i = 0; i < opt_senders; i++) {
        sender *s = &b.senders[i];
        *s = (sender){.b = &b, .index = i};
        g_snprintf(s->wallet, sizeof(s->wallet), "wallet:bench-%s-%d", opt_run, i);
        char id[96];
        g_snprintf(id, sizeof(id), "bench:%s:top:%d", opt_run, i);
        encore_transfer_req req;
        encore_leg legs[2];
        encore_transfer_result r;
        if (encore_transfer_move(&req, legs, id, "topup", "external:topups", s->wallet,
                                 INT64_C(1000000000000)) != ENCORE_LEDGER_OK ||
            encore_ledger_transfer_sync(b.ledger, &req, &r) != ENCORE_LEDGER_OK) {
            fprintf(stderr, "ledger-bench: top-up failed\n");
            return 2;
        }
    }
    encore_ledger_stats before, after;
    gint64 start = g_get_monotonic_time();
    b.measure_from = start + (gint64)(opt_warmup * G_USEC_PER_SEC);
    b.measure_to = b.measure_from + (gint64)(opt_seconds * G_USEC_PER_SEC);
    b.running = opt_senders;
    for (int i = 0; i < opt_senders; i++)
        send_gift(&b.senders[i]);
    /* Batch statistics over the measured window only. */
    while (g_get_monotonic_time() < b.measure_from)
        g_main_context_iteration(NULL, TRUE);
    encore_ledger_get_stats(b.ledger, &before);
    int64_t cpu_ledger0 = thread_cpu_us("encore-ledger"), cpu_all0 = thread_cpu_us(NULL);
    g_main_loop_run(b.loop);
    encore_ledger_get_stats(b.ledger, &after);
    int64_t cpu_ledger = thread_cpu_us("encore-ledger") - cpu_ledger0;
    int64_t cpu_all = thread_cpu_us(NULL) - cpu_all0;
    g_array_sort(b.latencies_us, cmp_i64);
    double secs = opt_seconds;
    uint64_t batches = after.batches - before.batches;
    uint64_t requests = after.requests - before.requests;
    /* CPU per transfer: the ledger thread's, and the whole process's (it includes the senders'
     * side: request checks, canonical JSON, hashing, answer delivery). */
    double per = requests ? 1.0 / (double)requests : 0;
    printf("%-10s senders %5d  %8.0f durable transfers/s  ack p50 %7.2f ms  p99 %7.2f ms  "
           "mean batch %6.1f  cpu/transfer: ledger thread %5.1f us, process %5.1f us%s\n",
           g_str_has_prefix(opt_store, "sqlite:") ? "sqlite" : "postgresql", opt_senders,
           b.acked / secs, percentile_ms(b.latencies_us, 0.50), percentile_ms(b.latencies_us, 0.99),
           batches ? (double)requests / batches : 0.0, cpu_ledger * per, cpu_all * per,
           b.failed ? "  FAILED REQUESTS" : "");
    if (opt_scan && !scan_all(b.ledger))
        b.failed++;
    encore_ledger_close(b.ledger);
    g_main_loop_unref(b.loop);
    g_array_free(b.latencies_us, TRUE);
    g_free(b.senders);
    g_option_context_free(octx);
    g_free(opt_store);
    g_free(opt_run);
    return b.failed ? 1 : 0;
}
