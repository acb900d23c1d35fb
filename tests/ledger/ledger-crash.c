/* Crash-test driver for the ledger (run by tests/ledger/crash.sh). `run` storms the ledger with
 * gifts from many senders (some sent twice at once, some retried after their answer, as clients
 * that time out do) and appends every acknowledged id to a log right after its answer, until it is
 * killed. `verify` reopens the store, checks that every logged answer is there exactly as logged,
 * replays every sender's sequence (retries must not double anything), compares balances and the
 * number of transfers with a model, and runs the audit. `corrupt` breaks a balance with raw SQL.
 * Test-only; single main thread plus the ledger's. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/economy/ledger.h"
#include "server/economy/split.h"

#define TOPUP 20000
#define SINGER_BP 5000
#define AGENT_BP 2000

static char *opt_store, *opt_log, *opt_epoch = NULL;
static int opt_senders = 50;
static int opt_seconds = 0;

static int64_t gift_amount(int sender, int k)
{
    return 1 + ((int64_t)sender * 7919 + (int64_t)k * 104729) % 500;
}

/* The request of sender i's k-th gift (k == -1: its top-up); its strings live in the struct. */
typedef struct {
    char id[96];
    char wallet[64];
    char star[64];
    char agent[64];
    encore_leg legs[4];
    encore_transfer_req req;
} request;

static void make_request(request *r, int sender, int k)
{
    g_snprintf(r->wallet, sizeof(r->wallet), "wallet:crash-%s-%d", opt_epoch, sender);
    g_snprintf(r->star, sizeof(r->star), "earnings:crash-star-%s", opt_epoch);
    g_snprintf(r->agent, sizeof(r->agent), "earnings:crash-agent-%s", opt_epoch);
    if (k < 0) {
        g_snprintf(r->id, sizeof(r->id), "crash:%s:top:%d", opt_epoch, sender);
        g_assert_cmpint(encore_transfer_move(&r->req, r->legs, r->id, "topup", "external:topups",
                                             r->wallet, TOPUP),
                        ==, ENCORE_LEDGER_OK);
        return;
    }
    g_snprintf(r->id, sizeof(r->id), "crash:%s:g:%d:%d", opt_epoch, sender, k);
    int64_t price = gift_amount(sender, k), s, a, p;
    g_assert_cmpint(encore_split(price, SINGER_BP, AGENT_BP, &s, &a, &p), ==, 0);
    size_t n = 0;
    r->legs[n++] = (encore_leg){r->wallet, -price};
    if (s)
        r->legs[n++] = (encore_leg){r->star, s};
    if (a)
        r->legs[n++] = (encore_leg){r->agent, a};
    if (p)
        r->legs[n++] = (encore_leg){"platform:revenue", p};
    r->req = (encore_transfer_req){.id = r->id,
                                   .kind = "gift",
                                   .metadata = "{\"gift\":\"rose\"}",
                                   .legs = r->legs,
                                   .n_legs = n};
}

static encore_ledger *open_ledger(void)
{
    encore_ledger_config cfg = {.backend = opt_store};
    GError *err = NULL;
    encore_ledger *l = encore_ledger_open(&cfg, &err);
    if (!l) {
        fprintf(stderr, "ledger-crash: %s\n", err->message);
        exit(2);
    }
    return l;
}

/* ---- run ---- */

typedef struct sender sender;
typedef struct {
    encore_ledger *ledger;
    int log_fd;
    sender *senders;
    GRand *rand;
    gint64 deadline;
    GMainLoop *loop;
    int active;
} storm;

struct sender {
    storm *st;
    int index;
    int k;           /* current request (-1: top-up) */
    int outstanding; /* answers still expected for k */
    bool logged;     /* k's first answer is in the log */
    encore_transfer_result first;
};

static void send_current(sender *s);

static void on_answer(const encore_transfer_result *r, void *user_data)
{
    sender *s = user_data;
    storm *st = s->st;
    if (r->status != ENCORE_LEDGER_OK && r->status != ENCORE_LEDGER_INSUFFICIENT_FUNDS) {
        fprintf(stderr, "ledger-crash: %s: unexpected %s (%s)\n", r->id,
                encore_ledger_status_name(r->status), r->detail);
        exit(3);
    }
    if (!s->logged) {
        /* Acknowledged: log it before anything else happens. */
        char line[160];
        int n = g_snprintf(line, sizeof(line), "%s %d %" G_GINT64_FORMAT "\n", r->id,
                           (int)r->status, r->transfer_id);
        if (write(st->log_fd, line, (size_t)n) != n) {
            perror("ledger-crash: log");
            exit(3);
        }
        s->logged = true;
        s->first = *r;
    } else if (r->status != s->first.status || r->transfer_id != s->first.transfer_id) {
        fprintf(stderr, "ledger-crash: %s: two answers differ\n", r->id);
        exit(3);
    }
    if (--s->outstanding > 0)
        return;
    /* Sometimes the client "missed" the answer and retries the same id once more. */
    if (g_rand_int_range(st->rand, 0, 16) == 0 && s->k >= 0 && !r->replayed) {
        send_current(s);
        return;
    }
    if (st->deadline && g_get_monotonic_time() > st->deadline) {
        if (--st->active == 0)
            g_main_loop_quit(st->loop);
        return;
    }
    s->k++;
    s->logged = false;
    send_current(s);
}

static void send_current(sender *s)
{
    request r;
    make_request(&r, s->index, s->k);
    /* Sometimes two copies at once (a retry racing the first attempt). */
    int copies = g_rand_int_range(s->st->rand, 0, 8) == 0 ? 2 : 1;
    s->outstanding += copies;
    for (int i = 0; i < copies; i++)
        encore_ledger_submit(s->st->ledger, &r.req, g_main_context_default(), on_answer, s, NULL);
}

static int cmd_run(void)
{
    storm st = {0};
    st.log_fd = open(opt_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (st.log_fd < 0) {
        perror("ledger-crash: log");
        return 2;
    }
    st.ledger = open_ledger();
    st.rand = g_rand_new();
    st.loop = g_main_loop_new(NULL, FALSE);
    st.senders = g_new0(sender, opt_senders);
    st.active = opt_senders;
    if (opt_seconds)
        st.deadline = g_get_monotonic_time() + (gint64)opt_seconds * G_USEC_PER_SEC;
    for (int i = 0; i < opt_senders; i++) {
        st.senders[i] = (sender){.st = &st, .index = i, .k = -1};
        send_current(&st.senders[i]);
    }
    g_main_loop_run(st.loop);
    encore_ledger_close(st.ledger);
    g_main_loop_unref(st.loop);
    g_rand_free(st.rand);
    g_free(st.senders);
    close(st.log_fd);
    return 0;
}

/* ---- verify ---- */

typedef struct {
    int status;
    int64_t transfer_id;
} logged;

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "ledger-crash verify: " __VA_ARGS__);                                  \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

static GHashTable *read_log(void)
{
    GHashTable *log = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    char *text = NULL;
    GError *err = NULL;
    if (!g_file_get_contents(opt_log, &text, NULL, &err)) {
        fprintf(stderr, "ledger-crash: %s\n", err->message);
        exit(2);
    }
    char **lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        /* The last line may be torn by the kill (no newline): then it is the empty remainder or
         * a prefix, and is not an acknowledged answer for this check. */
        if (!l[1])
            break;
        char **f = g_strsplit(*l, " ", 3);
        if (g_strv_length(f) == 3) {
            logged *v = g_new(logged, 1);
            v->status = (int)g_ascii_strtoll(f[1], NULL, 10);
            v->transfer_id = g_ascii_strtoll(f[2], NULL, 10);
            CHECK(!g_hash_table_contains(log, f[0]), "%s acknowledged twice in the log", f[0]);
            g_hash_table_replace(log, g_strdup(f[0]), v);
        }
        g_strfreev(f);
    }
    g_strfreev(lines);
    g_free(text);
    return log;
}

/* Counts this epoch's transfer rows with raw SQL (outside the ledger). */
static int64_t count_rows(void)
{
    char *sql = g_strdup_printf(
        "SELECT count(*) FROM ledger_transfers WHERE request_id LIKE 'crash:%s:%%'", opt_epoch);
    int64_t n = -1;
    if (g_str_has_prefix(opt_store, "sqlite:")) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        if (sqlite3_open(opt_store + 7, &db) == SQLITE_OK &&
            sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
    } else {
        PGconn *c = PQconnectdb(opt_store + strlen("postgresql:"));
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            n = g_ascii_strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
    }
    g_free(sql);
    return n;
}

static int64_t balance_of(encore_ledger *l, const char *account)
{
    int64_t v = -1;
    GError *err = NULL;
    if (!encore_ledger_balance(l, account, &v, &err)) {
        fprintf(stderr, "ledger-crash: balance %s: %s\n", account, err->message);
        exit(2);
    }
    return v;
}

static int cmd_verify(void)
{
    GHashTable *log = read_log();
    encore_ledger *l = open_ledger();
    int64_t star = 0, agent = 0, expected_rows = 0;
    unsigned acked = g_hash_table_size(log), found = 0;
    for (int i = 0; i < opt_senders; i++) {
        int last = -2; /* highest logged k; -2: not even the top-up */
        for (int k = -1;; k++) {
            request r;
            make_request(&r, i, k);
            if (!g_hash_table_contains(log, r.id))
                break;
            last = k;
        }
        /* Senders go one id at a time: nothing beyond last + 1 was ever sent. Replaying
         * -1..last + 1 makes every one of them present, each exactly once. */
        int64_t wallet = 0;
        request r;
        for (int k = -1; k <= last + 1; k++) {
            make_request(&r, i, k);
            encore_transfer_result res;
            encore_ledger_transfer_sync(l, &r.req, &res);
            logged *v = g_hash_table_lookup(log, r.id);
            /* The model: one sender's requests apply in order. */
            int64_t price = k < 0 ? -TOPUP : gift_amount(i, k);
            encore_ledger_status want =
                wallet >= price ? ENCORE_LEDGER_OK : ENCORE_LEDGER_INSUFFICIENT_FUNDS;
            if (want == ENCORE_LEDGER_OK) {
                wallet -= price;
                if (k >= 0) {
                    int64_t s, a, p;
                    g_assert_cmpint(encore_split(price, SINGER_BP, AGENT_BP, &s, &a, &p), ==, 0);
                    star += s;
                    agent += a;
                }
            }
            CHECK(res.status == want, "%s: %s, model says %s", r.id,
                  encore_ledger_status_name(res.status), encore_ledger_status_name(want));
            if (v) {
                CHECK(res.replayed, "%s: acknowledged before the kill but not found", r.id);
                CHECK(res.status == (encore_ledger_status)v->status &&
                          res.transfer_id == v->transfer_id,
                      "%s: answered %s/%" G_GINT64_FORMAT ", logged %d/%" G_GINT64_FORMAT, r.id,
                      encore_ledger_status_name(res.status), res.transfer_id, v->status,
                      v->transfer_id);
                found++;
            }
            expected_rows++;
        }
        int64_t got = balance_of(l, r.wallet);
        CHECK(got == wallet, "%s is %" G_GINT64_FORMAT ", model %" G_GINT64_FORMAT, r.wallet, got,
              wallet);
    }
    char *star_acc = g_strdup_printf("earnings:crash-star-%s", opt_epoch);
    char *agent_acc = g_strdup_printf("earnings:crash-agent-%s", opt_epoch);
    CHECK(balance_of(l, star_acc) == star, "%s is %" G_GINT64_FORMAT ", model %" G_GINT64_FORMAT,
          star_acc, balance_of(l, star_acc), star);
    CHECK(balance_of(l, agent_acc) == agent, "%s is %" G_GINT64_FORMAT ", model %" G_GINT64_FORMAT,
          agent_acc, balance_of(l, agent_acc), agent);
    int64_t rows = count_rows();
    CHECK(rows == expected_rows, "%" G_GINT64_FORMAT " transfer rows, expected %" G_GINT64_FORMAT,
          rows, expected_rows);
    GString *report = g_string_new(NULL);
    GError *err = NULL;
    gboolean sound = encore_ledger_audit(l, report, &err);
    CHECK(sound && !err, "audit failed:\n%s", report->str);
    printf("# epoch %s: %u answers acknowledged before the kill, %u found exactly as answered; "
           "%" G_GINT64_FORMAT " transfer rows, as the model says; singer earned %" G_GINT64_FORMAT
           "\n",
           opt_epoch, acked, found, rows, star);
    g_free(star_acc);
    g_free(agent_acc);
    g_string_free(report, TRUE);
    g_clear_error(&err);
    encore_ledger_close(l);
    g_hash_table_unref(log);
    return failures ? 1 : 0;
}

/* Breaks one balance behind the ledger's back (for encore-audit's failing case). */
static int cmd_corrupt(void)
{
    const char *sql = "UPDATE ledger_accounts SET balance = balance + 1 "
                      "WHERE name = 'platform:revenue'";
    gboolean ok = FALSE;
    if (g_str_has_prefix(opt_store, "sqlite:")) {
        sqlite3 *db = NULL;
        ok = sqlite3_open(opt_store + 7, &db) == SQLITE_OK &&
             sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK && sqlite3_changes(db) == 1;
        sqlite3_close(db);
    } else {
        PGconn *c = PQconnectdb(opt_store + strlen("postgresql:"));
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdTuples(r), "1") == 0;
        PQclear(r);
        PQfinish(c);
    }
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    GOptionEntry entries[] = {
        {"store", 0, 0, G_OPTION_ARG_STRING, &opt_store, "sqlite:PATH or postgresql:CONNINFO",
         "STORE"},
        {"log", 0, 0, G_OPTION_ARG_FILENAME, &opt_log, "acknowledgement log", "FILE"},
        {"epoch", 0, 0, G_OPTION_ARG_STRING, &opt_epoch, "id namespace of this storm", "NAME"},
        {"senders", 0, 0, G_OPTION_ARG_INT, &opt_senders, "concurrent senders (50)", "N"},
        {"seconds", 0, 0, G_OPTION_ARG_INT, &opt_seconds, "stop after N s (0: until killed)", "N"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("run|verify|corrupt - ledger crash test driver");
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *err = NULL;
    int rc = 2;
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "ledger-crash: %s\n", err->message);
        g_error_free(err);
        goto out;
    }
    if (argc != 2 || !opt_store || opt_senders < 1) {
        fprintf(stderr, "usage: ledger-crash run|verify|corrupt --store S [--log F --epoch E]\n");
        goto out;
    }
    if (!opt_epoch)
        opt_epoch = g_strdup("e0");
    if (strcmp(argv[1], "corrupt") == 0)
        rc = cmd_corrupt();
    else if (!opt_log)
        fprintf(stderr, "ledger-crash: --log is required\n");
    else if (strcmp(argv[1], "run") == 0)
        rc = cmd_run();
    else if (strcmp(argv[1], "verify") == 0)
        rc = cmd_verify();
out:
    g_option_context_free(ctx);
    g_free(opt_store);
    g_free(opt_log);
    g_free(opt_epoch);
    return rc;
}
