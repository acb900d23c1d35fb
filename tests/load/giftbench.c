/* encore-giftbench: end-to-end gift throughput and ack latency of a running encored over
 * websockets (README.md beside this file). Signs up a singer who takes the stage of a room and S
 * senders who join it (or R rooms with a singer each, the senders spread over them), tops every
 * sender up through a signed provider webhook, then keeps --outstanding gift.send requests in
 * flight per sender for --seconds and prints one JSON line.
 * The main thread does the set-up (blocking HTTP on a few helper threads) and the phases; each
 * websocket lives on one worker thread (one GMainContext and epoll set each) for its whole life.
 * It starts no server and never talks to anything but the --url host. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <glib-unix.h>
#include <jansson.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tests/load/http.h"
#include "tests/load/metrics.h"
#include "tests/load/ws.h"

#define SETUP_THREADS 8
#define READY_TIMEOUT_S 60 /* every websocket authenticated and in the room */
#define DRAIN_TIMEOUT_S 10 /* after the window: answers still owed */
#define CONTROL_MS 10
#define FIRST_GIFT_ID 100 /* request ids below are the set-up requests */
#define PASSWORD "giftbench-password"

enum { ID_AUTH = 1, ID_JOIN = 2, ID_QUEUE = 3 };

typedef enum {
    C_CONNECTING, /* websocket handshake, then `auth` */
    C_JOINING,    /* `room.join` sent */
    C_QUEUEING,   /* the singer: `queue.join` sent */
    C_READY,      /* in the room (the singer: on stage) */
    C_FAILED,     /* set-up failed, or the connection closed */
} conn_state;

typedef struct gb_thread gb_thread;

/* One account and its websocket: indexes 0..R-1 are the singers of the R rooms, R..R+S-1 the
 * senders (sender k is in room k % R). */
typedef struct {
    gb_thread *thr;
    unsigned index;
    bool singer;
    unsigned room; /* 0..R-1; the singer of room r is conns[r] */
    lg_account acct;
    char bind_ip[16]; /* "" to connect from any address */
    lg_ws *ws;
    conn_state state;
    /* In flight: slot j carries the gift with id seq[j] (ids FIRST_GIFT_ID + j + k * K). */
    int64_t *slot_seq;
    int64_t *slot_sent_ns;
    unsigned in_flight;
} gb_conn;

struct gb_thread {
    unsigned id;
    GThread *thread;
    GMainContext *ctx;
    GMainLoop *loop;
    lg_ws_loop *wsl;
    GPtrArray *conns; /* gb_conn * on this thread (not owned) */
    unsigned running; /* senders with gifts in flight after the start */
    /* Counters of this thread, read by the main thread after the thread has stopped. */
    GArray *lat_us;     /* ack latency of gifts answered inside the window (int64 us) */
    uint64_t sent;      /* gift.send requests sent */
    uint64_t acked;     /* answered with a result */
    uint64_t acked_win; /* ... inside the window */
    uint64_t events;    /* `gift` events received (every member gets every gift) */
    uint64_t lost;      /* in flight when their websocket closed */
    GHashTable *errors; /* error code (owned) -> count */
    int64_t max_lat_us;
};

typedef struct {
    /* Options. */
    lg_url url;
    char provider[33];
    char room[65];
    char gift[65];
    char currency[4];
    unsigned senders, rooms, outstanding, threads;
    double seconds, warmup;
    int64_t topup; /* minor units per sender */
    pid_t server_pid;
    const char *json_path;
    bool verbose;
    uint8_t secret[256];
    size_t secret_len;

    uint32_t run; /* names and event ids of this run */
    gb_conn *conns;
    gb_thread *thr;
    /* Set-up progress (helper threads and worker threads). */
    atomic_uint next_item;
    atomic_uint setup_failed;
    atomic_uint ready;
    atomic_uint failed;
    atomic_uint threads_done;
    GMutex why_lock;
    char why[256]; /* the first failure */
    /* The window in CLOCK_MONOTONIC ns, written before the start is posted to the threads;
     * win_to_ns moves earlier when the run is interrupted. */
    int64_t t_start_ns, win_from_ns;
    _Atomic int64_t win_to_ns;
    GMainLoop *loop;
    bool interrupted;
} gb_run;

static gb_run B;

static void debug(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void debug(const char *fmt, ...)
{
    if (!B.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[%9.3f] %s\n", (double)lg_now_ns() / 1e9, buf);
}

/* Keeps the first failure reason. Any thread. */
static void note_failure(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void note_failure(const char *fmt, ...)
{
    g_mutex_lock(&B.why_lock);
    if (!B.why[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(B.why, sizeof B.why, fmt, ap);
        va_end(ap);
    }
    g_mutex_unlock(&B.why_lock);
}

/* ---- command line -------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: encore-giftbench --url ws://127.0.0.1:PORT/ws --secret-file FILE\n"
        "                        [--provider bench] [--senders S (10)] [--seconds S (10)]\n"
        "                        [--warmup S (1)] [--outstanding K (1)] [--room NAME]\n"
        "                        [--rooms R (1)] [--gift rose] [--threads T (1)]\n"
        "                        [--topup MINOR (10000000)]\n"
        "                        [--currency CNY] [--server-pid PID] [--json FILE] [--verbose]\n");
}

static bool parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
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

static bool ident_ok(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(s[i]) && !strchr(extra, s[i]))
            return false;
    return n >= 1 && n <= max;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the provider's current secret: the first "<kid> <hex>" line of the file. */
static int read_secret(const char *path)
{
    char *text = NULL;
    GError *err = NULL;
    if (!g_file_get_contents(path, &text, NULL, &err)) {
        fprintf(stderr, "encore-giftbench: %s\n", err->message);
        g_error_free(err);
        return -1;
    }
    int rc = -1;
    char **lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        char *line = g_strstrip(*l);
        if (!*line || *line == '#')
            continue;
        const char *hex = strchr(line, ' ');
        if (!hex)
            break;
        hex++;
        size_t n = strlen(hex);
        if (n % 2 || n / 2 < 32 || n / 2 > sizeof B.secret)
            break;
        rc = 0;
        for (size_t i = 0; i < n / 2 && rc == 0; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            if (hi < 0 || lo < 0)
                rc = -1;
            else
                B.secret[i] = (uint8_t)(hi << 4 | lo);
        }
        B.secret_len = n / 2;
        break;
    }
    if (rc != 0)
        fprintf(stderr,
                "encore-giftbench: %s: the first key line is not '<kid> <hex of 32-256 "
                "bytes>'\n",
                path);
    g_strfreev(lines);
    OPENSSL_cleanse(text, strlen(text));
    g_free(text);
    return rc;
}

/* Fills B's options. Returns 0, 1 for --help, or -1 on a usage error (reported). */
static int parse_args(int argc, char **argv)
{
    enum {
        O_URL = 256,
        O_SECRET,
        O_PROVIDER,
        O_SENDERS,
        O_SECONDS,
        O_WARMUP,
        O_OUTSTANDING,
        O_ROOM,
        O_ROOMS,
        O_GIFT,
        O_THREADS,
        O_TOPUP,
        O_CURRENCY,
        O_PID,
        O_JSON,
        O_VERBOSE,
        O_HELP,
    };
    static const struct option opts[] = {
        {"url", required_argument, NULL, O_URL},
        {"secret-file", required_argument, NULL, O_SECRET},
        {"provider", required_argument, NULL, O_PROVIDER},
        {"senders", required_argument, NULL, O_SENDERS},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"outstanding", required_argument, NULL, O_OUTSTANDING},
        {"room", required_argument, NULL, O_ROOM},
        {"rooms", required_argument, NULL, O_ROOMS},
        {"gift", required_argument, NULL, O_GIFT},
        {"threads", required_argument, NULL, O_THREADS},
        {"topup", required_argument, NULL, O_TOPUP},
        {"currency", required_argument, NULL, O_CURRENCY},
        {"server-pid", required_argument, NULL, O_PID},
        {"json", required_argument, NULL, O_JSON},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    B.senders = 10;
    B.rooms = 1;
    B.outstanding = 1;
    B.threads = 1;
    B.seconds = 10;
    B.warmup = 1;
    B.topup = 10000000; /* 100,000.00: a million coins at 10 a yuan */
    g_strlcpy(B.provider, "bench", sizeof B.provider);
    g_strlcpy(B.room, "giftbench", sizeof B.room);
    g_strlcpy(B.gift, "rose", sizeof B.gift);
    g_strlcpy(B.currency, "CNY", sizeof B.currency);
    const char *url = NULL, *secret = NULL;
    int ch;
    unsigned long v;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case O_URL:
            url = optarg;
            break;
        case O_SECRET:
            secret = optarg;
            break;
        case O_PROVIDER:
            if (!ident_ok(optarg, 32, "_-"))
                goto bad;
            g_strlcpy(B.provider, optarg, sizeof B.provider);
            break;
        case O_SENDERS:
            if (!parse_uint(optarg, 1, 60000, &v))
                goto bad;
            B.senders = (unsigned)v;
            break;
        case O_SECONDS:
            if (!parse_double(optarg, 0.1, 86400, &B.seconds))
                goto bad;
            break;
        case O_WARMUP:
            if (!parse_double(optarg, 0, 3600, &B.warmup))
                goto bad;
            break;
        case O_OUTSTANDING:
            if (!parse_uint(optarg, 1, 1000, &v))
                goto bad;
            B.outstanding = (unsigned)v;
            break;
        case O_ROOM:
            if (!ident_ok(optarg, 64, "_-"))
                goto bad;
            g_strlcpy(B.room, optarg, sizeof B.room);
            break;
        case O_ROOMS:
            if (!parse_uint(optarg, 1, 60000, &v))
                goto bad;
            B.rooms = (unsigned)v;
            break;
        case O_GIFT:
            if (!ident_ok(optarg, 64, "_-"))
                goto bad;
            g_strlcpy(B.gift, optarg, sizeof B.gift);
            break;
        case O_THREADS:
            if (!parse_uint(optarg, 1, 64, &v))
                goto bad;
            B.threads = (unsigned)v;
            break;
        case O_TOPUP:
            if (!parse_uint(optarg, 1, 100000000, &v))
                goto bad;
            B.topup = (int64_t)v;
            break;
        case O_CURRENCY:
            if (strlen(optarg) != 3 || !ident_ok(optarg, 3, ""))
                goto bad;
            g_strlcpy(B.currency, optarg, sizeof B.currency);
            break;
        case O_PID:
            if (!parse_uint(optarg, 1, 1u << 30, &v))
                goto bad;
            B.server_pid = (pid_t)v;
            break;
        case O_JSON:
            B.json_path = optarg;
            break;
        case O_VERBOSE:
            B.verbose = true;
            break;
        case O_HELP:
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc || !url || !secret) {
        fprintf(stderr, "encore-giftbench: --url and --secret-file are required\n");
        usage(stderr);
        return -1;
    }
    if (B.rooms > B.senders) {
        fprintf(stderr, "encore-giftbench: --rooms may not exceed --senders\n");
        return -1;
    }
    if (lg_url_parse(url, &B.url) != 0) {
        fprintf(stderr, "encore-giftbench: bad or unresolvable --url %s\n", url);
        return -1;
    }
    return read_secret(secret);
bad:
    fprintf(stderr, "encore-giftbench: bad value '%s' for --%s\n", optarg, opts[ch - O_URL].name);
    return -1;
}

/* ---- set-up over HTTP ---------------------------------------------------------------------- */

/* Each account signs up (and connects) from its own loopback address when the server is on
 * 127.0.0.0/8: the server rate-limits sign-ups per address and counts websockets per address. */
static void pick_bind_ip(gb_conn *c)
{
    c->bind_ip[0] = '\0';
    if (g_str_has_prefix(B.url.addr, "127."))
        snprintf(c->bind_ip, sizeof c->bind_ip, "127.2.%u.%u", c->index / 250 % 256,
                 c->index % 250 + 1);
}

/* Credits the sender's wallet through the provider webhook, signed as docs/accounts.md says:
 * Encore-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t "." body)>. */
static int top_up(gb_conn *c, char *why, size_t why_len)
{
    char body[256];
    int n = snprintf(
        body, sizeof body,
        "{\"id\":\"gb%08x-%u\",\"type\":\"payment.succeeded\",\"user_id\":%" G_GINT64_FORMAT
        ",\"amount\":%" G_GINT64_FORMAT ",\"currency\":\"%s\"}",
        B.run, c->index, c->acct.user_id, B.topup, B.currency);
    char t[24];
    snprintf(t, sizeof t, "%" G_GINT64_FORMAT, g_get_real_time() / G_USEC_PER_SEC);
    GByteArray *signed_text = g_byte_array_new();
    g_byte_array_append(signed_text, (const guint8 *)t, (guint)strlen(t));
    g_byte_array_append(signed_text, (const guint8 *)".", 1);
    g_byte_array_append(signed_text, (const guint8 *)body, (guint)n);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    HMAC(EVP_sha256(), B.secret, (int)B.secret_len, signed_text->data, signed_text->len, mac,
         &mac_len);
    g_byte_array_unref(signed_text);
    char headers[256];
    int h = snprintf(headers, sizeof headers, "Encore-Signature: t=%s,v1=", t);
    for (unsigned i = 0; i < mac_len; i++)
        h += snprintf(headers + h, sizeof headers - (size_t)h, "%02x", mac[i]);
    snprintf(headers + h, sizeof headers - (size_t)h, "\r\n");

    char path[64];
    snprintf(path, sizeof path, "/api/webhooks/%s", B.provider);
    lg_http_response resp;
    if (lg_http_request(&B.url, "POST", path, c->bind_ip[0] ? c->bind_ip : NULL, headers, body,
                        (size_t)n, 30000, &resp, why, why_len) != 0)
        return -1;
    int rc = -1;
    json_t *answer = json_loadb(resp.body, resp.body_len, 0, NULL);
    if (resp.status != 200 || !json_is_true(json_object_get(answer, "credited")))
        snprintf(why, why_len, "top-up of user %" G_GINT64_FORMAT " answered %d %.120s",
                 c->acct.user_id, resp.status, resp.body);
    else
        rc = 0;
    json_decref(answer);
    lg_http_response_clear(&resp);
    return rc;
}

/* A set-up helper thread: takes accounts one by one, signs each up, tops up the senders. */
static gpointer setup_worker(gpointer data)
{
    unsigned total = B.senders + B.rooms;
    for (;;) {
        unsigned i = atomic_fetch_add(&B.next_item, 1);
        if (i >= total || atomic_load(&B.setup_failed))
            break;
        gb_conn *c = &B.conns[i];
        char name[33], why[256];
        snprintf(name, sizeof name, "gb%08x-%u", B.run, i);
        if (lg_http_signup(&B.url, c->bind_ip[0] ? c->bind_ip : NULL, name, PASSWORD,
                           c->singer ? "singer" : "listener", &c->acct, why, sizeof why) != 0 ||
            (!c->singer && top_up(c, why, sizeof why) != 0)) {
            atomic_fetch_add(&B.setup_failed, 1);
            note_failure("%s", why);
            break;
        }
    }
    return NULL;
}

/* ---- websockets (worker threads) ----------------------------------------------------------- */

static void send_text(gb_conn *c, const char *text, size_t len)
{
    if (c->ws)
        (void)lg_ws_send_text(c->ws, text, len);
}

static void send_json(gb_conn *c, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    if (text)
        send_text(c, text, strlen(text));
    free(text);
    json_decref(msg);
}

static void set_failed(gb_conn *c, const char *why)
{
    if (c->state == C_FAILED)
        return;
    bool before_ready = c->state != C_READY;
    c->state = C_FAILED;
    if (before_ready) {
        atomic_fetch_add(&B.failed, 1);
        note_failure("%s %u: %s", c->singer ? "singer" : "sender", c->index, why);
    }
}

static void send_gift(gb_conn *c, unsigned slot)
{
    gb_thread *t = c->thr;
    char msg[256];
    int64_t seq = c->slot_seq[slot];
    int n = snprintf(msg, sizeof msg,
                     "{\"type\":\"gift.send\",\"id\":%" G_GINT64_FORMAT
                     ",\"gift\":\"%s\",\"count\":1,\"to\":%" G_GINT64_FORMAT
                     ",\"key\":\"k%" G_GINT64_FORMAT "\"}",
                     seq, B.gift, B.conns[c->room].acct.user_id, seq);
    c->slot_sent_ns[slot] = lg_now_ns();
    c->in_flight++;
    t->sent++;
    send_text(c, msg, (size_t)n);
}

static void count_error(gb_thread *t, const char *code, uint64_t n)
{
    gpointer old = g_hash_table_lookup(t->errors, code);
    if (old)
        g_hash_table_insert(t->errors, g_strdup(code), GSIZE_TO_POINTER(GPOINTER_TO_SIZE(old) + n));
    else
        g_hash_table_insert(t->errors, g_strdup(code), GSIZE_TO_POINTER((gsize)n));
}

/* A sender stopped having gifts in flight after the start: the thread is done when all have. */
static void sender_idle(gb_conn *c)
{
    gb_thread *t = c->thr;
    if (--t->running == 0)
        atomic_fetch_add(&B.threads_done, 1);
}

/* The answer to one gift: latency, counters, and the next gift of that slot while the run lasts. */
static void on_gift_answer(gb_conn *c, int64_t id, bool ok, const char *code)
{
    gb_thread *t = c->thr;
    int64_t now = lg_now_ns();
    if (id < FIRST_GIFT_ID) {
        count_error(t, "unexpected_answer", 1);
        return;
    }
    unsigned slot = (unsigned)((id - FIRST_GIFT_ID) % B.outstanding);
    if (c->slot_seq[slot] != id || c->slot_sent_ns[slot] == 0) {
        count_error(t, "unexpected_answer", 1);
        return;
    }
    int64_t lat_us = (now - c->slot_sent_ns[slot]) / 1000;
    c->slot_sent_ns[slot] = 0;
    c->in_flight--;
    if (ok) {
        t->acked++;
        if (now >= B.win_from_ns &&
            now < atomic_load_explicit(&B.win_to_ns, memory_order_relaxed)) {
            t->acked_win++;
            g_array_append_val(t->lat_us, lat_us);
            if (lat_us > t->max_lat_us)
                t->max_lat_us = lat_us;
        }
    } else {
        count_error(t, code ? code : "?", 1);
    }
    if (now < atomic_load_explicit(&B.win_to_ns, memory_order_relaxed)) {
        c->slot_seq[slot] += B.outstanding;
        send_gift(c, slot);
    } else if (c->in_flight == 0) {
        sender_idle(c);
    }
}

/* The value of the first "type" member when it opens the object ({"type":"...), else NULL; the
 * server writes it first, so events we only count need no JSON parse. */
static const char *peek_type(const char *text, size_t len, size_t *type_len)
{
    static const char pre[] = "{\"type\":\"";
    if (len < sizeof pre || memcmp(text, pre, sizeof pre - 1) != 0)
        return NULL;
    const char *v = text + sizeof pre - 1;
    const char *end = memchr(v, '"', MIN(len - (sizeof pre - 1), (size_t)32));
    if (!end)
        return NULL;
    *type_len = (size_t)(end - v);
    return v;
}

static void on_setup_answer(gb_conn *c, json_int_t id, bool ok, json_t *msg)
{
    if (!ok) {
        char why[160];
        snprintf(why, sizeof why, "request %d refused: %s %s", (int)id,
                 json_string_value(json_object_get(msg, "code")) ?: "?",
                 json_string_value(json_object_get(msg, "message")) ?: "");
        set_failed(c, why);
        return;
    }
    if (c->state == C_CONNECTING && id == ID_AUTH) {
        char name[32], room[80];
        snprintf(name, sizeof name, "gb-%u", c->index);
        if (B.rooms == 1)
            g_strlcpy(room, B.room, sizeof room);
        else
            snprintf(room, sizeof room, "%.50s-%u", B.room, c->room);
        c->state = C_JOINING;
        send_json(c, json_pack("{s:s, s:i, s:s, s:s}", "type", "room.join", "id", ID_JOIN, "room",
                               room, "name", name));
    } else if (c->state == C_JOINING && id == ID_JOIN) {
        if (c->singer) {
            c->state = C_QUEUEING;
            send_json(c, json_pack("{s:s, s:i}", "type", "queue.join", "id", ID_QUEUE));
        } else {
            c->state = C_READY;
            atomic_fetch_add(&B.ready, 1);
        }
    } else if (c->state == C_QUEUEING && id == ID_QUEUE) {
        json_int_t pos =
            json_integer_value(json_object_get(json_object_get(msg, "data"), "position"));
        if (pos != 0) {
            set_failed(c, "the singer did not go on stage (someone else sings in the room)");
            return;
        }
        c->state = C_READY;
        atomic_fetch_add(&B.ready, 1);
    }
}

static void on_message(lg_ws *ws, const char *text, size_t len, void *user_data)
{
    gb_conn *c = user_data;
    gb_thread *t = c->thr;
    size_t tl = 0;
    const char *type = peek_type(text, len, &tl);
    bool reply = false;
    if (type) {
        if (tl == 4 && memcmp(type, "gift", 4) == 0) {
            t->events++;
            return;
        }
        if (tl == 5 && memcmp(type, "gifts", 5) == 0) { /* a batch: count its items */
            json_t *batch = json_loadb(text, len, 0, NULL);
            t->events += json_array_size(json_object_get(batch, "items"));
            json_decref(batch);
            return;
        }
        reply = (tl == 6 && memcmp(type, "result", 6) == 0) ||
                (tl == 5 && memcmp(type, "error", 5) == 0);
        if (!reply)
            return; /* room.state, board and the rest: not measured */
    }
    json_t *msg = json_loadb(text, len, 0, NULL);
    const char *mtype = json_string_value(json_object_get(msg, "type"));
    if (!mtype || (strcmp(mtype, "result") != 0 && strcmp(mtype, "error") != 0)) {
        if (mtype && strcmp(mtype, "gift") == 0)
            t->events++;
        goto out;
    }
    bool ok = mtype[0] == 'r';
    json_int_t id = json_integer_value(json_object_get(msg, "id"));
    if (c->state == C_READY && !c->singer)
        on_gift_answer(c, (int64_t)id, ok, json_string_value(json_object_get(msg, "code")));
    else if (c->state != C_READY && c->state != C_FAILED)
        on_setup_answer(c, id, ok, msg);
out:
    json_decref(msg);
}

static void on_open(lg_ws *ws, void *user_data)
{
    gb_conn *c = user_data;
    send_json(c,
              json_pack("{s:s, s:i, s:s}", "type", "auth", "id", ID_AUTH, "token", c->acct.token));
}

static void on_closed(lg_ws *ws, const char *why, void *user_data)
{
    gb_conn *c = user_data;
    gb_thread *t = c->thr;
    lg_ws_free(c->ws);
    c->ws = NULL;
    if (c->state != C_READY) {
        set_failed(c, why);
        return;
    }
    c->state = C_FAILED;
    count_error(t, "closed", 1);
    if (c->in_flight > 0) {
        t->lost += c->in_flight;
        c->in_flight = 0;
        if (t->running > 0)
            sender_idle(c);
    }
}

static const lg_ws_callbacks ws_cb = {
    .on_open = on_open,
    .on_message = on_message,
    .on_closed = on_closed,
};

/* Connects every account of the thread. */
static gboolean thread_connect_cb(gpointer data)
{
    gb_thread *t = data;
    for (guint i = 0; i < t->conns->len; i++) {
        gb_conn *c = t->conns->pdata[i];
        c->ws =
            lg_ws_new(t->wsl, &B.url, "encore.v1", c->bind_ip[0] ? c->bind_ip : NULL, &ws_cb, c);
        if (!c->ws)
            set_failed(c, g_strerror(errno));
    }
    return G_SOURCE_REMOVE;
}

/* Starts every sender of the thread: `outstanding` gifts each. */
static gboolean thread_start_cb(gpointer data)
{
    gb_thread *t = data;
    for (guint i = 0; i < t->conns->len; i++) {
        gb_conn *c = t->conns->pdata[i];
        if (c->singer || c->state != C_READY)
            continue;
        t->running++;
        for (unsigned j = 0; j < B.outstanding; j++) {
            c->slot_seq[j] = FIRST_GIFT_ID + j;
            send_gift(c, j);
        }
    }
    if (t->running == 0)
        atomic_fetch_add(&B.threads_done, 1);
    return G_SOURCE_REMOVE;
}

/* Closes every websocket of the thread (gifts still in flight count as lost) and ends its loop. */
static gboolean thread_stop_cb(gpointer data)
{
    gb_thread *t = data;
    for (guint i = 0; i < t->conns->len; i++) {
        gb_conn *c = t->conns->pdata[i];
        t->lost += c->in_flight;
        c->in_flight = 0;
        lg_ws_free(c->ws);
        c->ws = NULL;
    }
    lg_ws_loop_free(t->wsl);
    t->wsl = NULL;
    g_main_loop_quit(t->loop);
    return G_SOURCE_REMOVE;
}

/* Runs fn(t) on t's own thread (never on the caller's, even before the thread runs its loop). */
static void post(gb_thread *t, GSourceFunc fn)
{
    GSource *s = g_idle_source_new();
    g_source_set_callback(s, fn, t, NULL);
    g_source_attach(s, t->ctx);
    g_source_unref(s);
}

static gpointer thread_main(gpointer data)
{
    gb_thread *t = data;
    g_main_context_push_thread_default(t->ctx);
    g_main_loop_run(t->loop);
    g_main_context_pop_thread_default(t->ctx);
    return NULL;
}

/* ---- phases (main thread) ------------------------------------------------------------------ */

typedef enum { PH_CONNECT, PH_RUN, PH_DRAIN, PH_DONE } phase;

static phase P;
static int64_t t_phase_ns;
static int64_t cpu_srv0 = -1, cpu_srv1 = -1, cpu_self0 = -1, cpu_self1 = -1;
static bool window_open, window_closed;

static int64_t self_cpu_us(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
           (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
}

static gboolean control_tick(gpointer data)
{
    int64_t now = lg_now_ns();
    unsigned total = B.senders + B.rooms;
    switch (P) {
    case PH_CONNECT:
        if (atomic_load(&B.failed) > 0) {
            P = PH_DONE;
        } else if (atomic_load(&B.ready) == total) {
            debug("all %u connections ready: starting", total);
            B.t_start_ns = now;
            B.win_from_ns = now + (int64_t)(B.warmup * 1e9);
            atomic_store(&B.win_to_ns, B.win_from_ns + (int64_t)(B.seconds * 1e9));
            for (unsigned i = 0; i < B.threads; i++)
                post(&B.thr[i], thread_start_cb);
            P = PH_RUN;
        } else if (now - t_phase_ns > (int64_t)READY_TIMEOUT_S * 1000000000) {
            note_failure("only %u of %u connections ready within %d s", atomic_load(&B.ready),
                         total, READY_TIMEOUT_S);
            P = PH_DONE;
        }
        break;
    case PH_RUN:
        if (!window_open && now >= B.win_from_ns) {
            window_open = true;
            if (B.server_pid)
                cpu_srv0 = lg_proc_cpu_us(B.server_pid);
            cpu_self0 = self_cpu_us();
        }
        if (!window_closed && now >= atomic_load(&B.win_to_ns)) {
            window_closed = true;
            if (B.server_pid)
                cpu_srv1 = lg_proc_cpu_us(B.server_pid);
            cpu_self1 = self_cpu_us();
            t_phase_ns = now;
            P = PH_DRAIN;
        }
        break;
    case PH_DRAIN:
        if (atomic_load(&B.threads_done) >= B.threads ||
            now - t_phase_ns > (int64_t)DRAIN_TIMEOUT_S * 1000000000)
            P = PH_DONE;
        break;
    case PH_DONE:
        break;
    }
    if (P == PH_DONE) {
        g_main_loop_quit(B.loop);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gpointer data)
{
    B.interrupted = true;
    note_failure("interrupted");
    if (P == PH_RUN && window_open && !window_closed) {
        /* End the window now: what was measured so far is reported. */
        atomic_store(&B.win_to_ns, lg_now_ns());
    } else {
        P = PH_DONE;
    }
    return G_SOURCE_CONTINUE;
}

/* ---- report -------------------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double quantile_ms(const GArray *sorted, double q)
{
    if (sorted->len == 0)
        return 0;
    size_t rank = (size_t)ceil(q * sorted->len);
    if (rank < 1)
        rank = 1;
    return (double)g_array_index(sorted, int64_t, rank - 1) / 1000.0;
}

static double round_to(double v, double unit)
{
    return round(v / unit) * unit;
}

/* Prints the JSON line (stdout, and --json) and a summary on stderr. Returns the gifts counted. */
static uint64_t report(bool started, double setup_s)
{
    GArray *lat = g_array_new(FALSE, FALSE, sizeof(int64_t));
    uint64_t sent = 0, acked = 0, acked_win = 0, events = 0, lost = 0;
    int64_t max_us = 0;
    json_t *errors = json_object();
    for (unsigned i = 0; i < B.threads; i++) {
        gb_thread *t = &B.thr[i];
        g_array_append_vals(lat, t->lat_us->data, t->lat_us->len);
        sent += t->sent;
        acked += t->acked;
        acked_win += t->acked_win;
        events += t->events;
        lost += t->lost;
        max_us = MAX(max_us, t->max_lat_us);
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, t->errors);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            json_int_t old = json_integer_value(json_object_get(errors, k));
            json_object_set_new(errors, k, json_integer(old + (json_int_t)GPOINTER_TO_SIZE(v)));
        }
    }
    if (lost)
        json_object_set_new(errors, "unanswered", json_integer((json_int_t)lost));
    g_array_sort(lat, cmp_i64);
    int64_t win_ns = atomic_load(&B.win_to_ns) - B.win_from_ns;
    double window_s = started && win_ns > 0 ? (double)win_ns / 1e9 : 0;
    double rate = window_s > 0 ? (double)acked_win / window_s : 0;
    bool have_srv = cpu_srv0 >= 0 && cpu_srv1 >= 0 && acked_win > 0;
    bool have_self = cpu_self0 >= 0 && cpu_self1 >= 0 && acked_win > 0;

    json_t *root = json_object();
    json_object_set_new(root, "senders", json_integer(B.senders));
    json_object_set_new(root, "rooms", json_integer(B.rooms));
    json_object_set_new(root, "outstanding", json_integer(B.outstanding));
    json_object_set_new(root, "seconds", json_real(round_to(window_s, 0.001)));
    json_object_set_new(root, "gifts", json_integer((json_int_t)acked_win));
    json_object_set_new(root, "gifts_per_s", json_real(round_to(rate, 0.1)));
    json_object_set_new(root, "p50_ms", json_real(round_to(quantile_ms(lat, 0.50), 0.001)));
    json_object_set_new(root, "p99_ms", json_real(round_to(quantile_ms(lat, 0.99), 0.001)));
    json_object_set_new(root, "max_ms", json_real(round_to((double)max_us / 1000.0, 0.001)));
    json_object_set_new(root, "errors", errors);
    json_object_set_new(root, "sent", json_integer((json_int_t)sent));
    json_object_set_new(root, "acked", json_integer((json_int_t)acked));
    json_object_set_new(root, "gift_events", json_integer((json_int_t)events));
    json_object_set_new(root, "setup_s", json_real(round_to(setup_s, 0.001)));
    json_object_set_new(
        root, "server_cpu_us_per_gift",
        have_srv ? json_real(round_to((double)(cpu_srv1 - cpu_srv0) / (double)acked_win, 0.01))
                 : json_null());
    json_object_set_new(
        root, "client_cpu_us_per_gift",
        have_self ? json_real(round_to((double)(cpu_self1 - cpu_self0) / (double)acked_win, 0.01))
                  : json_null());
    json_object_set_new(root, "interrupted", json_boolean(B.interrupted));
    if (B.why[0])
        json_object_set_new(root, "failure", json_string(B.why));

    fprintf(stderr,
            "encore-giftbench: %u senders in %u room(s) x %u outstanding: %.0f gifts/s over %.1f "
            "s, ack p50 "
            "%.2f ms p99 %.2f ms max %.2f ms; sent %lu, acked %lu, %lu gift events%s%s\n",
            B.senders, B.rooms, B.outstanding, rate, window_s, quantile_ms(lat, 0.50),
            quantile_ms(lat, 0.99), (double)max_us / 1000.0, (unsigned long)sent,
            (unsigned long)acked, (unsigned long)events, B.why[0] ? "; " : "", B.why);
    size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(12);
    char *line = json_dumps(root, flags);
    if (line) {
        printf("%s\n", line);
        fflush(stdout);
        if (B.json_path && !g_file_set_contents(B.json_path, line, -1, NULL))
            fprintf(stderr, "encore-giftbench: cannot write %s\n", B.json_path);
        free(line);
    }
    json_decref(root);
    g_array_free(lat, TRUE);
    return acked_win;
}

/* ---- main ---------------------------------------------------------------------------------- */

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    g_mutex_init(&B.why_lock);
    int prc = parse_args(argc, argv);
    if (prc != 0)
        return prc > 0 ? 0 : 2;
    raise_nofile();
    B.run = g_random_int();
    unsigned total = B.senders + B.rooms;
    B.conns = g_new0(gb_conn, total);
    B.thr = g_new0(gb_thread, B.threads);
    for (unsigned i = 0; i < B.threads; i++) {
        gb_thread *t = &B.thr[i];
        t->id = i;
        t->ctx = g_main_context_new();
        t->loop = g_main_loop_new(t->ctx, FALSE);
        t->wsl = lg_ws_loop_new(t->ctx);
        t->conns = g_ptr_array_new();
        t->lat_us = g_array_new(FALSE, FALSE, sizeof(int64_t));
        t->errors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    }
    for (unsigned i = 0; i < total; i++) {
        gb_conn *c = &B.conns[i];
        c->index = i;
        c->singer = i < B.rooms;
        c->room = c->singer ? i : (i - B.rooms) % B.rooms;
        c->thr = &B.thr[i % B.threads];
        c->slot_seq = g_new0(int64_t, B.outstanding);
        c->slot_sent_ns = g_new0(int64_t, B.outstanding);
        pick_bind_ip(c);
        g_ptr_array_add(c->thr->conns, c);
    }

    /* Accounts and coins, over HTTP. */
    int64_t t0 = lg_now_ns();
    GThread *helpers[SETUP_THREADS];
    unsigned nh = MIN(SETUP_THREADS, total);
    for (unsigned i = 0; i < nh; i++)
        helpers[i] = g_thread_new("gb-setup", setup_worker, NULL);
    for (unsigned i = 0; i < nh; i++)
        g_thread_join(helpers[i]);
    double setup_s = (double)(lg_now_ns() - t0) / 1e9;
    debug("signed up and topped up %u accounts in %.2f s", total, setup_s);

    bool started = false;
    if (atomic_load(&B.setup_failed) == 0) {
        B.loop = g_main_loop_new(NULL, FALSE);
        for (unsigned i = 0; i < B.threads; i++) {
            B.thr[i].thread = g_thread_new("gb-ws", thread_main, &B.thr[i]);
            post(&B.thr[i], thread_connect_cb);
        }
        guint sigint = g_unix_signal_add(SIGINT, on_signal, NULL);
        guint sigterm = g_unix_signal_add(SIGTERM, on_signal, NULL);
        t_phase_ns = lg_now_ns();
        P = PH_CONNECT;
        g_timeout_add(CONTROL_MS, control_tick, NULL);
        g_main_loop_run(B.loop);
        started = atomic_load(&B.win_to_ns) > 0;
        if (started && !window_closed) { /* interrupted before the window ended */
            atomic_store(&B.win_to_ns, MIN(atomic_load(&B.win_to_ns), lg_now_ns()));
            cpu_srv1 = B.server_pid ? lg_proc_cpu_us(B.server_pid) : -1;
            cpu_self1 = self_cpu_us();
        }
        for (unsigned i = 0; i < B.threads; i++) {
            post(&B.thr[i], thread_stop_cb);
            g_thread_join(B.thr[i].thread);
        }
        g_source_remove(sigint);
        g_source_remove(sigterm);
        g_main_loop_unref(B.loop);
    }

    uint64_t gifts = report(started, setup_s);
    int rc = started && gifts > 0 ? 0 : 1;
    if (!started)
        fprintf(stderr, "encore-giftbench: the run did not start: %s\n", B.why[0] ? B.why : "?");

    for (unsigned i = 0; i < total; i++) {
        g_free(B.conns[i].slot_seq);
        g_free(B.conns[i].slot_sent_ns);
    }
    for (unsigned i = 0; i < B.threads; i++) {
        gb_thread *t = &B.thr[i];
        lg_ws_loop_free(t->wsl);
        g_main_loop_unref(t->loop);
        g_main_context_unref(t->ctx);
        g_ptr_array_free(t->conns, TRUE);
        g_array_free(t->lat_us, TRUE);
        g_hash_table_destroy(t->errors);
    }
    g_free(B.thr);
    g_free(B.conns);
    OPENSSL_cleanse(B.secret, sizeof B.secret);
    g_mutex_clear(&B.why_lock);
    return rc;
}
