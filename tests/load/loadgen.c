/* encore-loadgen: plays one singer and N listeners as real WebRTC peers against Encore or Janus and
 * measures join time, loss, latency added by the server and the server's CPU and memory per
 * listener (README.md beside this file). This file owns the command line, the worker threads, the
 * phases of a run (on the main thread's loop) and the report; it never touches a peer itself. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <glib-unix.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "media/srtp.h"
#include "tests/load/loadgen.h"

#define SINGER_TIMEOUT_S 15
#define DRAIN_MS 500 /* after the window: packets sent in it are still in flight */
#define CONTROL_MS 10

lg_run *lg;

typedef enum {
    RUN_SINGER, /* waiting for the singer to send */
    RUN_JOIN,   /* starting listeners at the join rate */
    RUN_WARMUP,
    RUN_WINDOW,
    RUN_DRAIN,
    RUN_DONE,
} run_phase;

/* What the main thread measures and decides. */
typedef struct {
    run_phase phase;
    GMainLoop *loop;
    lg_thread *threads; /* opt.threads workers */
    lg_thread singer_thread;
    lg_listener *listeners;
    unsigned started;
    int64_t t_phase_ns;  /* when the current phase began */
    int64_t t_singer_ns; /* singer start */
    int64_t t_progress_ns;
    bool interrupted;
    bool singer_ok;      /* the singer was sending when listeners started */
    int64_t rss_base_kb; /* server RSS before any listener joined */
    int64_t cpu_start_us, cpu_end_us, rss_start_kb, rss_end_kb;
    int64_t self_cpu_start_us, self_cpu_end_us;
    int64_t win_start_ns, win_end_ns;
} run_state;

static run_state R;

void lg_debug(const char *fmt, ...)
{
    if (!lg || !lg->opt.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[%9.3f] %s\n", (double)lg_now_ns() / 1e9, buf);
}

/* ---- command line -----------------------------------------------------------------------------
 */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: encore-loadgen --server encore|janus --url ws://127.0.0.1:PORT/ws --room NAME\n"
            "                      --listeners N [--threads T] [--join-rate R] [--warmup S]\n"
            "                      [--duration S] [--server-pid PID] [--json FILE]\n"
            "                      [--media-ip 127.0.0.1] [--verbose]\n"
            "                      [--ws-per-source N] [--no-trickle]\n");
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-')
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double min, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max))
        return false;
    *out = v;
    return true;
}

/* Fills lg->opt and lg->sigcfg. Returns 0, 1 for --help, or -1 on a usage error (reported). */
static int parse_args(int argc, char **argv)
{
    enum {
        O_SERVER = 256,
        O_URL,
        O_ROOM,
        O_LISTENERS,
        O_THREADS,
        O_RATE,
        O_WARMUP,
        O_DURATION,
        O_PID,
        O_JSON,
        O_MEDIA_IP,
        O_VERBOSE,
        O_PER_SOURCE,
        O_NO_TRICKLE,
        O_HELP,
    };
    static const struct option opts[] = {
        {"server", required_argument, NULL, O_SERVER},
        {"url", required_argument, NULL, O_URL},
        {"room", required_argument, NULL, O_ROOM},
        {"listeners", required_argument, NULL, O_LISTENERS},
        {"threads", required_argument, NULL, O_THREADS},
        {"join-rate", required_argument, NULL, O_RATE},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"duration", required_argument, NULL, O_DURATION},
        {"server-pid", required_argument, NULL, O_PID},
        {"json", required_argument, NULL, O_JSON},
        {"media-ip", required_argument, NULL, O_MEDIA_IP},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"ws-per-source", required_argument, NULL, O_PER_SOURCE},
        {"no-trickle", no_argument, NULL, O_NO_TRICKLE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    lg_options *o = &lg->opt;
    lg_sig_config *c = &lg->sigcfg;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = ncpu > 0 ? (unsigned)ncpu : 1;
    o->join_rate = 100;
    o->warmup_s = 3;
    o->duration_s = 10;
    o->media_ip = "127.0.0.1";
    c->trickle = true;
    c->ws_per_source = 16;
    const char *url = NULL, *room = NULL;
    bool have_listeners = false;
    int ch;
    unsigned long v;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case O_SERVER:
            if (strcmp(optarg, "encore") == 0)
                o->ops = &lg_sig_encore;
            else if (strcmp(optarg, "janus") == 0)
                o->ops = &lg_sig_janus;
            else
                goto bad;
            break;
        case O_URL:
            url = optarg;
            break;
        case O_ROOM:
            room = optarg;
            break;
        case O_LISTENERS:
            if (!parse_uint(optarg, 1000000, &v))
                goto bad;
            o->listeners = (unsigned)v;
            have_listeners = true;
            break;
        case O_THREADS:
            if (!parse_uint(optarg, 256, &v) || v == 0)
                goto bad;
            o->threads = (unsigned)v;
            break;
        case O_RATE:
            if (!parse_double(optarg, 0.01, 1e6, &o->join_rate))
                goto bad;
            break;
        case O_WARMUP:
            if (!parse_double(optarg, 0, 86400, &o->warmup_s))
                goto bad;
            break;
        case O_DURATION:
            if (!parse_double(optarg, 0.1, 86400, &o->duration_s))
                goto bad;
            break;
        case O_PID:
            if (!parse_uint(optarg, 1u << 30, &v) || v == 0)
                goto bad;
            o->server_pid = (pid_t)v;
            break;
        case O_JSON:
            o->json_path = optarg;
            break;
        case O_MEDIA_IP:
            o->media_ip = optarg;
            break;
        case O_VERBOSE:
            o->verbose = true;
            c->verbose = true;
            break;
        case O_PER_SOURCE:
            if (!parse_uint(optarg, 1000000, &v))
                goto bad;
            c->ws_per_source = (unsigned)v;
            break;
        case O_NO_TRICKLE:
            c->trickle = false;
            break;
        case O_HELP:
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc || !o->ops || !url || !have_listeners) {
        fprintf(stderr, "encore-loadgen: --server, --url and --listeners are required\n");
        usage(stderr);
        return -1;
    }
    if (lg_url_parse(url, &c->url) != 0) {
        fprintf(stderr, "encore-loadgen: bad or unresolvable --url %s (want ws://HOST:PORT/PATH)\n",
                url);
        return -1;
    }
    if (o->ops == &lg_sig_encore) {
        room = room ? room : "loadgen";
        size_t n = strlen(room);
        if (n == 0 || n > 64 ||
            strspn(room, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789_-") != n) {
            fprintf(stderr, "encore-loadgen: --room must be 1-64 characters of [A-Za-z0-9_-]\n");
            return -1;
        }
        g_strlcpy(c->room, room, sizeof c->room);
    } else {
        /* Janus VideoRoom rooms are numbers; a name that is not one means the default 1234. */
        c->janus_room = 1234;
        if (room && parse_uint(room, G_MAXUINT32, &v) && v > 0)
            c->janus_room = v;
        else if (room)
            fprintf(stderr, "encore-loadgen: janus room '%s' is not a number, using 1234\n", room);
        g_strlcpy(c->room, room ? room : "1234", sizeof c->room);
    }
    return 0;
bad:
    fprintf(stderr, "encore-loadgen: bad value '%s'\n", optarg);
    usage(stderr);
    return -1;
}

/* ---- threads ----------------------------------------------------------------------------------
 */

static gpointer thread_main(gpointer data)
{
    lg_thread *thr = data;
    g_main_context_push_thread_default(thr->ctx);
    g_main_loop_run(thr->loop);
    g_main_context_pop_thread_default(thr->ctx);
    return NULL;
}

static void thread_start(lg_thread *thr, unsigned id, bool singer)
{
    thr->id = id;
    thr->is_singer = singer;
    thr->ctx = g_main_context_new();
    thr->loop = g_main_loop_new(thr->ctx, FALSE);
    thr->listeners = g_ptr_array_new();
    g_main_context_invoke(thr->ctx, lg_thread_init_cb, thr);
    char name[16];
    snprintf(name, sizeof name, singer ? "lg-singer" : "lg-w%u", id);
    thr->thread = g_thread_new(name, thread_main, thr);
}

static void thread_stop(lg_thread *thr)
{
    if (!thr->thread)
        return;
    g_main_context_invoke(thr->ctx, lg_thread_stop_cb, thr);
    g_thread_join(thr->thread);
    thr->thread = NULL;
    /* Sources libnice or GLib left behind are dispatched or dropped with the context. */
    while (g_main_context_iteration(thr->ctx, FALSE))
        ;
    g_main_loop_unref(thr->loop);
    g_main_context_unref(thr->ctx);
    g_ptr_array_free(thr->listeners, TRUE);
}

/* ---- phases -----------------------------------------------------------------------------------
 */

static int64_t self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
           (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
}

static void set_phase(run_phase p, int64_t now)
{
    R.phase = p;
    R.t_phase_ns = now;
}

static void window_begin(int64_t now)
{
    if (lg->opt.server_pid) {
        R.cpu_start_us = lg_proc_cpu_us(lg->opt.server_pid);
        R.rss_start_kb = lg_proc_rss_kb(lg->opt.server_pid);
    }
    R.self_cpu_start_us = self_cpu_us();
    R.win_start_ns = now;
    atomic_store(&lg->win_start_ns, now);
    set_phase(RUN_WINDOW, now);
    lg_debug("window: start (%.1f s)", lg->opt.duration_s);
}

static void window_end(int64_t now)
{
    atomic_store(&lg->win_end_ns, now);
    R.win_end_ns = now;
    if (lg->opt.server_pid) {
        R.cpu_end_us = lg_proc_cpu_us(lg->opt.server_pid);
        R.rss_end_kb = lg_proc_rss_kb(lg->opt.server_pid);
    }
    R.self_cpu_end_us = self_cpu_us();
    set_phase(RUN_DRAIN, now);
    lg_debug("window: end");
}

static void start_due_listeners(int64_t now)
{
    double elapsed = (double)(now - R.t_phase_ns) / 1e9;
    unsigned due = (unsigned)MIN((double)lg->opt.listeners, floor(elapsed * lg->opt.join_rate) + 1);
    for (; R.started < due; R.started++) {
        lg_listener *l = &R.listeners[R.started];
        g_main_context_invoke(l->thr->ctx, lg_listener_start_cb, l);
    }
}

static gboolean control_tick(gpointer data)
{
    int64_t now = lg_now_ns();
    int singer = atomic_load(&lg->singer.state);
    unsigned joined = atomic_load(&lg->joined), failed = atomic_load(&lg->failed);
    if (lg->opt.verbose && now - R.t_progress_ns > 1000000000) {
        R.t_progress_ns = now;
        lg_debug("progress: started %u joined %u failed %u disconnected %u sent %lu", R.started,
                 joined, failed, atomic_load(&lg->disconnected),
                 (unsigned long)atomic_load(&lg->singer.sent));
    }
    switch (R.phase) {
    case RUN_SINGER:
        if (singer == SINGER_FAILED) {
            set_phase(RUN_DONE, now);
            break;
        }
        /* Half a second of audio before the first listener: the stage is live. */
        if (singer == SINGER_SENDING && atomic_load(&lg->singer.sent) >= 25) {
            R.singer_ok = true;
            if (lg->opt.server_pid)
                R.rss_base_kb = lg_proc_rss_kb(lg->opt.server_pid);
            set_phase(lg->opt.listeners ? RUN_JOIN : RUN_WARMUP, now);
            break;
        }
        if (now - R.t_singer_ns > (int64_t)SINGER_TIMEOUT_S * 1000000000) {
            g_strlcpy(lg->singer.why, "not sending within 15 s", sizeof lg->singer.why);
            set_phase(RUN_DONE, now);
        }
        break;
    case RUN_JOIN:
        start_due_listeners(now);
        if (R.started == lg->opt.listeners && joined + failed >= lg->opt.listeners) {
            lg_debug("join: %u joined, %u failed", joined, failed);
            set_phase(joined > 0 ? RUN_WARMUP : RUN_DONE, now);
        }
        break;
    case RUN_WARMUP:
        if (now - R.t_phase_ns >= (int64_t)(lg->opt.warmup_s * 1e9))
            window_begin(now);
        break;
    case RUN_WINDOW:
        if (now - R.t_phase_ns >= (int64_t)(lg->opt.duration_s * 1e9))
            window_end(now);
        break;
    case RUN_DRAIN:
        if (now - R.t_phase_ns >= (int64_t)DRAIN_MS * 1000000)
            set_phase(RUN_DONE, now);
        break;
    case RUN_DONE:
        break;
    }
    if (R.phase == RUN_DONE) {
        g_main_loop_quit(R.loop);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gpointer data)
{
    int64_t now = lg_now_ns();
    R.interrupted = true;
    lg_debug("interrupted");
    if (R.phase == RUN_WINDOW)
        window_end(now);
    else if (R.phase != RUN_DRAIN)
        set_phase(RUN_DONE, now);
    return G_SOURCE_CONTINUE;
}

/* ---- report -----------------------------------------------------------------------------------
 */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double round_to(double v, double unit)
{
    return round(v / unit) * unit;
}

static json_t *json_or_null_int(bool ok, int64_t v)
{
    return ok ? json_integer((json_int_t)v) : json_null();
}

/* Builds the report, prints the one-line summary and writes the JSON. Returns 0 or -1 when the
 * JSON could not be written. */
static int report(void)
{
    lg_options *o = &lg->opt;
    unsigned joined = 0, join_failed = 0, disconnected = 0;
    double *join_ms = g_new(double, MAX(o->listeners, 1));
    uint64_t lost = 0;
    uint64_t sent_window = atomic_load(&lg->singer.sent_window);
    for (unsigned i = 0; i < o->listeners; i++) {
        lg_listener *l = &R.listeners[i];
        if (l->state == LST_JOINED || l->state == LST_DISCONNECTED) {
            join_ms[joined++] = l->join_ms;
            if (l->state == LST_DISCONNECTED)
                disconnected++;
            /* Sequence gaps inside the window. A listener that dropped out (or heard nothing of
             * the window) lost every window packet it did not receive. */
            if (l->state == LST_DISCONNECTED || !l->win_any) {
                if (sent_window > l->win_received)
                    lost += sent_window - l->win_received;
            } else {
                int64_t span = l->win_hi - l->win_first + 1;
                if (span > (int64_t)l->win_received)
                    lost += (uint64_t)(span - (int64_t)l->win_received);
            }
        } else if (l->state == LST_FAILED || (l->state == LST_JOINING && i < R.started)) {
            join_failed++;
        }
    }
    qsort(join_ms, joined, sizeof *join_ms, cmp_double);
    /* How many listeners failed or dropped for each reason. */
    GHashTable *reasons = g_hash_table_new(g_str_hash, g_str_equal);
    for (unsigned i = 0; i < o->listeners; i++) {
        const char *why = R.listeners[i].why;
        if (why[0])
            g_hash_table_insert(
                reasons, (gpointer)why,
                GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(reasons, why)) + 1));
    }

    lg_hist *hist = g_new0(lg_hist, 1);
    uint64_t delivered = 0, unmatched = 0, dec_ok = 0, dec_fail = 0, tone_ok = 0, rr = 0;
    for (unsigned t = 0; t < o->threads; t++) {
        lg_thread *thr = &R.threads[t];
        lg_hist_merge(hist, &thr->hist);
        delivered += thr->delivered;
        unmatched += thr->unmatched;
        dec_ok += thr->decoded_ok;
        dec_fail += thr->decoded_failed;
        tone_ok += thr->tone_ok;
        rr += thr->rr_sent;
    }
    bool have_window = R.win_end_ns > R.win_start_ns && R.win_start_ns > 0;
    double window_s = have_window ? (double)(R.win_end_ns - R.win_start_ns) / 1e9 : 0.0;
    uint64_t expected = have_window ? sent_window * joined : 0;
    if (!have_window)
        lost = 0;
    double loss_ratio = expected ? (double)lost / (double)expected : 0.0;
    bool have_cpu = o->server_pid && R.cpu_start_us >= 0 && R.cpu_end_us >= 0 && have_window;
    int64_t cpu_us = have_cpu ? R.cpu_end_us - R.cpu_start_us : 0;
    bool have_rss = o->server_pid && R.rss_base_kb > 0 && R.rss_end_kb > 0 && have_window;

    json_t *root = json_object();
    json_object_set_new(root, "server", json_string(o->ops->name));
    json_object_set_new(root, "listeners", json_integer(o->listeners));
    json_object_set_new(root, "joined", json_integer(joined));
    json_object_set_new(root, "join_failed", json_integer(join_failed));
    json_object_set_new(root, "disconnected", json_integer(disconnected));
    json_object_set_new(root, "join_ms",
                        json_pack("{s:f, s:f, s:f}", "p50",
                                  round_to(lg_quantile_sorted(join_ms, joined, 0.50), 0.01), "p95",
                                  round_to(lg_quantile_sorted(join_ms, joined, 0.95), 0.01), "max",
                                  round_to(joined ? join_ms[joined - 1] : 0, 0.01)));
    json_object_set_new(root, "window_s", json_real(round_to(window_s, 0.001)));
    json_object_set_new(root, "packets_sent", json_integer((json_int_t)sent_window));
    json_object_set_new(root, "packets_delivered", json_integer((json_int_t)delivered));
    json_object_set_new(root, "packets_expected", json_integer((json_int_t)expected));
    json_object_set_new(root, "lost", json_integer((json_int_t)lost));
    json_object_set_new(root, "loss_ratio", json_real(round_to(loss_ratio, 1e-7)));
    json_object_set_new(root, "latency_us",
                        json_pack("{s:I, s:I, s:I, s:I}", "p50",
                                  (json_int_t)lg_hist_quantile(hist, 0.50), "p99",
                                  (json_int_t)lg_hist_quantile(hist, 0.99), "max",
                                  (json_int_t)hist->max_us, "samples", (json_int_t)hist->count));
    json_object_set_new(root, "server_cpu_us", json_or_null_int(have_cpu, cpu_us));
    json_object_set_new(root, "cpu_us_per_packet",
                        have_cpu && delivered
                            ? json_real(round_to((double)cpu_us / (double)delivered, 0.001))
                            : json_null());
    json_object_set_new(root, "server_rss_kb_base",
                        json_or_null_int(o->server_pid && R.rss_base_kb > 0, R.rss_base_kb));
    json_object_set_new(root, "server_rss_kb_start", json_or_null_int(have_rss, R.rss_start_kb));
    json_object_set_new(root, "server_rss_kb_end", json_or_null_int(have_rss, R.rss_end_kb));
    json_object_set_new(
        root, "rss_kb_per_listener",
        have_rss && joined
            ? json_real(round_to((double)(R.rss_end_kb - R.rss_base_kb) / joined, 0.01))
            : json_null());
    json_object_set_new(root, "decoded_ok", json_integer((json_int_t)dec_ok));
    json_object_set_new(root, "decoded_failed", json_integer((json_int_t)dec_fail));
    json_object_set_new(root, "tone_ok", json_integer((json_int_t)tone_ok));
    json_object_set_new(root, "unmatched", json_integer((json_int_t)unmatched));
    json_object_set_new(root, "rtcp_rr_sent", json_integer((json_int_t)rr));
    json_object_set_new(root, "singer_packets_total",
                        json_integer((json_int_t)atomic_load(&lg->singer.sent)));
    json_object_set_new(root, "singer_send_errors",
                        json_integer((json_int_t)atomic_load(&lg->singer.send_errors)));
    json_object_set_new(root, "loadgen_threads", json_integer(o->threads));
    json_object_set_new(root, "loadgen_cpu_us",
                        json_integer(have_window ? R.self_cpu_end_us - R.self_cpu_start_us : 0));
    json_object_set_new(root, "interrupted", json_boolean(R.interrupted));
    json_t *jr = json_object();
    GHashTableIter it;
    gpointer key, val;
    g_hash_table_iter_init(&it, reasons);
    while (g_hash_table_iter_next(&it, &key, &val))
        json_object_set_new(jr, key, json_integer(GPOINTER_TO_UINT(val)));
    json_object_set_new(root, "failure_reasons", jr);
    g_hash_table_destroy(reasons);
    if (!R.singer_ok || atomic_load(&lg->singer.state) == SINGER_FAILED)
        json_object_set_new(root, "singer_error",
                            json_string(lg->singer.why[0] ? lg->singer.why : "not connected"));

    char cpu_txt[32] = "-", rss_txt[32] = "-";
    if (have_cpu && delivered)
        snprintf(cpu_txt, sizeof cpu_txt, "%.2f", (double)cpu_us / (double)delivered);
    if (have_rss && joined)
        snprintf(rss_txt, sizeof rss_txt, "%.1f", (double)(R.rss_end_kb - R.rss_base_kb) / joined);
    fprintf(stderr,
            "encore-loadgen: %s: %u/%u joined (%u failed, %u dropped), join p95 %.1f ms; "
            "window %.1f s: sent %lu, delivered %lu/%lu, lost %lu (%.3f%%), latency p50 %lu us "
            "p99 %lu us max %lu us; server %s us/packet, %s kB/listener; decoded %lu ok %lu "
            "failed\n",
            o->ops->name, joined, o->listeners, join_failed, disconnected,
            lg_quantile_sorted(join_ms, joined, 0.95), window_s, (unsigned long)sent_window,
            (unsigned long)delivered, (unsigned long)expected, (unsigned long)lost,
            loss_ratio * 100, (unsigned long)lg_hist_quantile(hist, 0.50),
            (unsigned long)lg_hist_quantile(hist, 0.99), (unsigned long)hist->max_us, cpu_txt,
            rss_txt, (unsigned long)dec_ok, (unsigned long)dec_fail);

    int rc = 0;
    size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(12);
    if (o->json_path && strcmp(o->json_path, "-") != 0) {
        if (json_dump_file(root, o->json_path, flags) != 0) {
            fprintf(stderr, "encore-loadgen: cannot write %s\n", o->json_path);
            rc = -1;
        }
    } else {
        json_dumpf(root, stdout, flags);
        fputc('\n', stdout);
        fflush(stdout);
    }
    json_decref(root);
    g_free(hist);
    g_free(join_ms);
    return rc;
}

/* ---- main -------------------------------------------------------------------------------------
 */

/* Encore: two accounts per run, made over HTTP on the websocket's host and port: the singer
 * (role singer, may queue and publish) and one listener account whose token every listener
 * websocket presents (the server allows one account on many connections). */
static int sign_up(void)
{
    lg_sig_config *c = &lg->sigcfg;
    const char *roles[2] = {"singer", "listener"};
    char *tokens[2] = {c->singer_token, c->listener_token};
    uint32_t run = g_random_int();
    for (int i = 0; i < 2; i++) {
        char name[33], why[256];
        snprintf(name, sizeof name, "lg%08x-%s", run, roles[i]);
        lg_account acct;
        if (lg_http_signup(&c->url, NULL, name, "loadgen-password", roles[i], &acct, why,
                           sizeof why) != 0) {
            fprintf(stderr, "encore-loadgen: %s\n", why);
            return -1;
        }
        g_strlcpy(tokens[i], acct.token, LG_TOKEN_MAX + 1);
        lg_debug("signed up %s: user %" G_GINT64_FORMAT, name, acct.user_id);
    }
    return 0;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            fprintf(stderr, "encore-loadgen: cannot raise the open file limit: %s\n",
                    g_strerror(errno));
    }
}

int main(int argc, char **argv)
{
    lg = g_new0(lg_run, 1);
    atomic_store(&lg->win_start_ns, INT64_MAX);
    atomic_store(&lg->win_end_ns, INT64_MAX);
    int prc = parse_args(argc, argv);
    if (prc != 0) {
        g_free(lg);
        return prc > 0 ? 0 : 2;
    }
    raise_nofile();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)lg->opt.listeners * 3 + 64)
        fprintf(stderr,
                "encore-loadgen: warning: %lu open files may not be enough for %u "
                "listeners\n",
                (unsigned long)rl.rlim_cur, lg->opt.listeners);

    if (lg->opt.ops == &lg_sig_encore && sign_up() != 0) {
        g_free(lg);
        return 1;
    }

    GError *error = NULL;
    if (encore_srtp_global_init() != 0) {
        fprintf(stderr, "encore-loadgen: libsrtp initialisation failed\n");
        g_free(lg);
        return 1;
    }
    lg->cert = encore_dtls_cert_new(&error);
    if (!lg->cert) {
        fprintf(stderr, "encore-loadgen: %s\n", error->message);
        g_clear_error(&error);
        g_free(lg);
        return 1;
    }

    R.loop = g_main_loop_new(NULL, FALSE);
    R.threads = g_new0(lg_thread, lg->opt.threads);
    R.listeners = g_new0(lg_listener, MAX(lg->opt.listeners, 1));
    for (unsigned t = 0; t < lg->opt.threads; t++)
        thread_start(&R.threads[t], t, false);
    thread_start(&R.singer_thread, lg->opt.threads, true);
    for (unsigned i = 0; i < lg->opt.listeners; i++) {
        R.listeners[i].index = i;
        R.listeners[i].thr = &R.threads[i % lg->opt.threads];
    }

    guint sigint = g_unix_signal_add(SIGINT, on_signal, NULL);
    guint sigterm = g_unix_signal_add(SIGTERM, on_signal, NULL);
    R.t_singer_ns = lg_now_ns();
    set_phase(RUN_SINGER, R.t_singer_ns);
    g_main_context_invoke(R.singer_thread.ctx, lg_singer_start_cb, &R.singer_thread);
    g_timeout_add(CONTROL_MS, control_tick, NULL);
    g_main_loop_run(R.loop);

    /* Listeners first (the server sees them leave), then the singer. */
    for (unsigned t = 0; t < lg->opt.threads; t++)
        thread_stop(&R.threads[t]);
    thread_stop(&R.singer_thread);

    int rc = report() == 0 ? 0 : 1;
    unsigned joined = atomic_load(&lg->joined);
    if (!R.singer_ok) {
        fprintf(stderr, "encore-loadgen: the singer could not connect: %s\n",
                lg->singer.why[0] ? lg->singer.why : "?");
        rc = 1;
    } else if (lg->opt.listeners > 0 && joined == 0) {
        fprintf(stderr, "encore-loadgen: no listener joined\n");
        rc = 1;
    }

    g_source_remove(sigint);
    g_source_remove(sigterm);
    g_main_loop_unref(R.loop);
    g_free(R.threads);
    g_free(R.listeners);
    encore_dtls_cert_unref(lg->cert);
    g_free(lg);
    return rc;
}
