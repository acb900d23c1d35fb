/* A seeded randomized simulation of the ledger against an in-memory model, on SQLite and on
 * PostgreSQL (skipped unless ENCORE_TEST_PG is set): top-ups, gifts with the revenue split, VIP
 * purchases, tickets held in escrow then refunded or settled, withdrawals requested then approved
 * or rejected, retries, conflicting reuses of ids and bad requests, submitted in rounds that group
 * commit, while the fault hook injects busy, deadlock, lost-connection and fatal errors. After
 * every round each answer must be what the model predicts, every balance must match, and the
 * audit must pass. ENCORE_SIM_SEED replays a run's operations (faults land where timing puts
 * them, which must never change an answer); ENCORE_SIM_ROUNDS makes it longer. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "server/economy/ledger.h"
#include "server/economy/split.h"
#include "tests/ledger/testdb.h"

#define USERS 6
#define SINGERS 3
#define EVENTS 2
#define MAX_RETRIES 8
#define FAULT_STREAK_MAX 5 /* < MAX_RETRIES: a batch always gets through in the end */

static const struct {
    const char *singer, *agent;
    uint32_t singer_bp, agent_bp;
} contracts[SINGERS] = {
    {"earnings:s0", "earnings:a0", 5000, 2000},
    {"earnings:s1", "earnings:a0", 7000, 0},
    {"earnings:s2", "earnings:a1", 3333, 3333},
};

/* ---- fault hook (ledger thread) ---- */

typedef struct {
    GMutex lock;
    GRand *rand;
    int streak;       /* consecutive faulted attempts */
    bool fatal_used;  /* one fatal fault per round at most */
    bool attempt_hit; /* this attempt already failed at its BEGIN (its later points are moot) */
    unsigned injected;
    unsigned fatal;
} faults;

static encore_ledger_fault fault_hook(encore_ledger_fault_point point, size_t batch_size,
                                      void *user_data)
{
    faults *f = user_data;
    encore_ledger_fault out = ENCORE_LEDGER_FAULT_NONE;
    /* A failed sync stops the ledger for good (test-ledger covers it); the syncer thread's asks
     * must not take random numbers either, or a seed would no longer replay a run. */
    if (point == ENCORE_LEDGER_FAULT_AT_SYNC)
        return ENCORE_LEDGER_FAULT_NONE;
    g_mutex_lock(&f->lock);
    if (point == ENCORE_LEDGER_FAULT_AT_BEGIN)
        f->attempt_hit = false;
    else if (f->attempt_hit)
        goto out; /* PostgreSQL still asks after a lost connection at BEGIN */
    if (f->streak < FAULT_STREAK_MAX && g_rand_int_range(f->rand, 0, 100) < 12) {
        static const encore_ledger_fault kinds[] = {ENCORE_LEDGER_FAULT_BUSY,
                                                    ENCORE_LEDGER_FAULT_DEADLOCK,
                                                    ENCORE_LEDGER_FAULT_LOST_CONNECTION};
        out = kinds[g_rand_int_range(f->rand, 0, G_N_ELEMENTS(kinds))];
        /* A fatal error makes the ledger run each request alone; only a batch can take it. */
        if (batch_size > 1 && !f->fatal_used && point == ENCORE_LEDGER_FAULT_BEFORE_COMMIT &&
            g_rand_int_range(f->rand, 0, 4) == 0) {
            out = ENCORE_LEDGER_FAULT_FATAL;
            f->fatal_used = true;
            f->fatal++;
        }
    }
    if (out != ENCORE_LEDGER_FAULT_NONE) {
        f->streak++;
        f->injected++;
        f->attempt_hit = point == ENCORE_LEDGER_FAULT_AT_BEGIN;
    } else if (point == ENCORE_LEDGER_FAULT_AFTER_COMMIT) {
        f->streak = 0;
    }
out:
    g_mutex_unlock(&f->lock);
    return out;
}

/* ---- requests and the model ---- */

typedef struct {
    char *id;
    char *kind;
    char *metadata;
    size_t n_legs;
    char *accounts[ENCORE_LEDGER_MAX_LEGS];
    int64_t amounts[ENCORE_LEDGER_MAX_LEGS];
} sim_req;

typedef struct {
    char *content; /* canonical text of kind, metadata and sorted legs */
    encore_ledger_status status;
    int64_t transfer_id;
} remembered;

typedef struct {
    GRand *rand;
    guint32 seed;
    encore_ledger *ledger;
    GHashTable *balances;  /* account -> int64_t* */
    GHashTable *requests;  /* id -> remembered* (answers the ledger keeps) */
    GPtrArray *history;    /* sim_req*, every request sent */
    GPtrArray *pending_wd; /* withdrawal request ids not yet decided */
    int next;              /* id counter */
    int64_t last_transfer_id;
    unsigned sent, ok, refused, replays, conflicts, invalid;
} sim;

static void sim_req_free(gpointer data)
{
    sim_req *r = data;
    g_free(r->id);
    g_free(r->kind);
    g_free(r->metadata);
    for (size_t i = 0; i < r->n_legs; i++)
        g_free(r->accounts[i]);
    g_free(r);
}

static void remembered_free(gpointer data)
{
    remembered *m = data;
    g_free(m->content);
    g_free(m);
}

static sim_req *req_new(sim *s, const char *prefix, const char *kind)
{
    sim_req *r = g_new0(sim_req, 1);
    r->id = g_strdup_printf("%s:%d", prefix, s->next++);
    r->kind = g_strdup(kind);
    return r;
}

static void leg(sim_req *r, const char *account, int64_t amount)
{
    g_assert_cmpuint(r->n_legs, <, ENCORE_LEDGER_MAX_LEGS);
    r->accounts[r->n_legs] = g_strdup(account);
    r->amounts[r->n_legs] = amount;
    r->n_legs++;
}

static sim_req *req_copy(const sim_req *o)
{
    sim_req *r = g_new0(sim_req, 1);
    r->id = g_strdup(o->id);
    r->kind = g_strdup(o->kind);
    r->metadata = g_strdup(o->metadata);
    for (size_t i = 0; i < o->n_legs; i++)
        leg(r, o->accounts[i], o->amounts[i]);
    return r;
}

static int64_t model_balance(sim *s, const char *account)
{
    int64_t *v = g_hash_table_lookup(s->balances, account);
    return v ? *v : 0;
}

static void model_add(sim *s, const char *account, int64_t amount)
{
    int64_t *v = g_hash_table_lookup(s->balances, account);
    if (!v) {
        v = g_new0(int64_t, 1);
        g_hash_table_insert(s->balances, g_strdup(account), v);
    }
    *v += amount;
}

static int cmp_leg_index(gconstpointer a, gconstpointer b, gpointer data)
{
    const sim_req *r = data;
    return strcmp(r->accounts[*(const size_t *)a], r->accounts[*(const size_t *)b]);
}

/* The model's notion of "the same contents": kind, metadata (the sim writes canonical JSON) and
 * the legs in account order. */
static char *content_of(const sim_req *r)
{
    size_t order[ENCORE_LEDGER_MAX_LEGS];
    for (size_t i = 0; i < r->n_legs; i++)
        order[i] = i;
    g_qsort_with_data(order, (gint)r->n_legs, sizeof(size_t), cmp_leg_index, (gpointer)r);
    GString *c = g_string_new(r->kind);
    g_string_append_printf(c, "|%s|", r->metadata ? r->metadata : "-");
    for (size_t i = 0; i < r->n_legs; i++)
        g_string_append_printf(c, "%s=%" G_GINT64_FORMAT ",", r->accounts[order[i]],
                               r->amounts[order[i]]);
    return g_string_free(c, FALSE);
}

/* What the ledger must answer for r, given everything before it; applies it to the model. The
 * transfer id of a new transfer is only known from the answer (*fresh_ok set). */
static encore_ledger_status predict(sim *s, const sim_req *r, int64_t *expect_id, bool *replay,
                                    bool *fresh_ok)
{
    *expect_id = 0;
    *replay = false;
    *fresh_ok = false;
    encore_leg legs[ENCORE_LEDGER_MAX_LEGS];
    for (size_t i = 0; i < r->n_legs; i++)
        legs[i] = (encore_leg){r->accounts[i], r->amounts[i]};
    encore_transfer_req req = {
        .id = r->id, .kind = r->kind, .metadata = r->metadata, .legs = legs, .n_legs = r->n_legs};
    encore_ledger_status st = encore_transfer_check(&req, NULL);
    if (st != ENCORE_LEDGER_OK)
        return st;
    char *content = content_of(r);
    remembered *m = g_hash_table_lookup(s->requests, r->id);
    if (m) {
        bool same = strcmp(m->content, content) == 0;
        g_free(content);
        if (!same)
            return ENCORE_LEDGER_IDEMPOTENCY_CONFLICT;
        *replay = true;
        *expect_id = m->transfer_id;
        return m->status;
    }
    st = ENCORE_LEDGER_OK;
    for (size_t i = 0; i < r->n_legs; i++)
        if (r->amounts[i] < 0 && !encore_ledger_account_may_go_negative(r->accounts[i]) &&
            model_balance(s, r->accounts[i]) + r->amounts[i] < 0)
            st = ENCORE_LEDGER_INSUFFICIENT_FUNDS;
    if (st == ENCORE_LEDGER_OK) {
        for (size_t i = 0; i < r->n_legs; i++)
            model_add(s, r->accounts[i], r->amounts[i]);
        *fresh_ok = true;
    }
    m = g_new0(remembered, 1);
    m->content = content;
    m->status = st;
    g_hash_table_insert(s->requests, g_strdup(r->id), m);
    return st;
}

/* ---- operation generators ---- */

static char *user(sim *s)
{
    return g_strdup_printf("wallet:u%d", g_rand_int_range(s->rand, 0, USERS));
}

static sim_req *op_topup(sim *s)
{
    sim_req *r = req_new(s, "topup", "topup");
    char *w = user(s);
    int64_t amount = g_rand_int_range(s->rand, 1, 5001);
    r->metadata =
        g_strdup_printf("{\"provider\":\"sandbox\",\"yuan\":%" G_GINT64_FORMAT "}", amount / 10);
    leg(r, "external:topups", -amount);
    leg(r, w, amount);
    g_free(w);
    return r;
}

static sim_req *op_gift(sim *s)
{
    sim_req *r = req_new(s, "gift", "gift");
    char *w = user(s);
    int c = g_rand_int_range(s->rand, 0, SINGERS);
    int64_t count = g_rand_int_range(s->rand, 1, 6);
    int64_t price = g_rand_int_range(s->rand, 1, 2001) * count;
    int64_t sp, ap, pp;
    g_assert_cmpint(
        encore_split(price, contracts[c].singer_bp, contracts[c].agent_bp, &sp, &ap, &pp), ==, 0);
    r->metadata = g_strdup_printf("{\"count\":%" G_GINT64_FORMAT ",\"gift\":\"g%d\"}", count,
                                  g_rand_int_range(s->rand, 0, 10));
    leg(r, w, -price);
    if (sp)
        leg(r, contracts[c].singer, sp);
    if (ap)
        leg(r, contracts[c].agent, ap);
    if (pp)
        leg(r, "platform:revenue", pp);
    g_free(w);
    return r;
}

static sim_req *op_vip(sim *s)
{
    sim_req *r = req_new(s, "vip", "vip");
    char *w = user(s);
    leg(r, w, -300);
    leg(r, "platform:revenue", 300);
    g_free(w);
    return r;
}

static sim_req *op_ticket(sim *s)
{
    sim_req *r = req_new(s, "ticket", "ticket");
    char *w = user(s);
    char *ev = g_strdup_printf("escrow:ev%d", g_rand_int_range(s->rand, 0, EVENTS));
    leg(r, w, -500);
    leg(r, ev, 500);
    g_free(w);
    g_free(ev);
    return r;
}

/* A refund of a ticket bought earlier (it may find the escrow already settled: refused). */
static sim_req *op_refund(sim *s)
{
    for (int tries = 0; tries < 8 && s->history->len; tries++) {
        const sim_req *t =
            g_ptr_array_index(s->history, g_rand_int_range(s->rand, 0, (gint32)s->history->len));
        remembered *m = g_hash_table_lookup(s->requests, t->id);
        if (strcmp(t->kind, "ticket") != 0 || !m || m->status != ENCORE_LEDGER_OK)
            continue;
        sim_req *r = g_new0(sim_req, 1);
        r->id = g_strdup_printf("%s:refund", t->id);
        r->kind = g_strdup("refund");
        leg(r, t->accounts[1], -500);
        leg(r, t->accounts[0], 500);
        return r;
    }
    return op_ticket(s);
}

/* Settles an event: its whole escrow split between a singer, an agent and the platform. */
static sim_req *op_settle(sim *s)
{
    int e = g_rand_int_range(s->rand, 0, EVENTS);
    char *ev = g_strdup_printf("escrow:ev%d", e);
    int64_t total = model_balance(s, ev);
    if (total <= 0) {
        g_free(ev);
        return op_ticket(s);
    }
    int c = g_rand_int_range(s->rand, 0, SINGERS);
    int64_t sp, ap, pp;
    g_assert_cmpint(
        encore_split(total, contracts[c].singer_bp, contracts[c].agent_bp, &sp, &ap, &pp), ==, 0);
    sim_req *r = req_new(s, "settle", "event-settle");
    leg(r, ev, -total);
    if (sp)
        leg(r, contracts[c].singer, sp);
    if (ap)
        leg(r, contracts[c].agent, ap);
    if (pp)
        leg(r, "platform:revenue", pp);
    g_free(ev);
    return r;
}

static sim_req *op_withdraw(sim *s)
{
    static const char *const earners[] = {"earnings:s0", "earnings:s1", "earnings:s2",
                                          "earnings:a0", "earnings:a1"};
    const char *who = earners[g_rand_int_range(s->rand, 0, G_N_ELEMENTS(earners))];
    int64_t have = model_balance(s, who);
    /* Mostly affordable, sometimes more than there is. */
    int64_t amount = have > 1 && g_rand_int_range(s->rand, 0, 4)
                         ? g_rand_int_range(s->rand, 1, (gint32)MIN(have, 100000))
                         : g_rand_int_range(s->rand, 1, 5000);
    sim_req *r = req_new(s, "wd", "withdrawal");
    char *hold = g_strdup_printf("escrow:wd-%s", r->id + 3);
    leg(r, who, -amount);
    leg(r, hold, amount);
    g_free(hold);
    g_ptr_array_add(s->pending_wd, g_strdup(r->id));
    return r;
}

/* An admin approves (to external:payouts) or rejects (back to earnings) a withdrawal. */
static sim_req *op_decide(sim *s)
{
    for (int tries = 0; tries < 8 && s->pending_wd->len; tries++) {
        guint i = (guint)g_rand_int_range(s->rand, 0, (gint32)s->pending_wd->len);
        const char *pid = g_ptr_array_index(s->pending_wd, i);
        remembered *m = g_hash_table_lookup(s->requests, pid);
        if (!m)
            continue; /* sent in this round: not answered yet */
        char *id = g_ptr_array_steal_index_fast(s->pending_wd, i);
        const sim_req *w = NULL;
        for (guint k = 0; k < s->history->len && !w; k++) {
            const sim_req *h = g_ptr_array_index(s->history, k);
            if (strcmp(h->id, id) == 0)
                w = h;
        }
        if (m->status != ENCORE_LEDGER_OK || !w) {
            g_free(id);
            continue;
        }
        bool approve = g_rand_boolean(s->rand);
        sim_req *r = g_new0(sim_req, 1);
        r->id = g_strdup_printf("%s:%s", id, approve ? "approve" : "reject");
        r->kind = g_strdup(approve ? "withdrawal-paid" : "withdrawal-rejected");
        /* The request's legs as op_withdraw() made them: earnings, then the hold. */
        const char *earn = w->accounts[0], *hold = w->accounts[1];
        int64_t amount = w->amounts[1];
        leg(r, hold, -amount);
        leg(r, approve ? "external:payouts" : earn, amount);
        g_free(id);
        return r;
    }
    return op_withdraw(s);
}

/* The same request again (a client retrying after a timeout). */
static sim_req *op_retry(sim *s)
{
    if (!s->history->len)
        return op_topup(s);
    return req_copy(
        g_ptr_array_index(s->history, g_rand_int_range(s->rand, 0, (gint32)s->history->len)));
}

/* A remembered id reused with other contents. */
static sim_req *op_conflict(sim *s)
{
    for (int tries = 0; tries < 8 && s->history->len; tries++) {
        const sim_req *o =
            g_ptr_array_index(s->history, g_rand_int_range(s->rand, 0, (gint32)s->history->len));
        if (!g_hash_table_contains(s->requests, o->id))
            continue;
        sim_req *r = req_copy(o);
        r->amounts[0] += 1;
        r->amounts[1] -= 1;
        if (r->amounts[1] == 0 || r->amounts[0] == 0) {
            sim_req_free(r);
            continue;
        }
        return r;
    }
    return op_vip(s);
}

static sim_req *op_bad(sim *s)
{
    sim_req *r = req_new(s, "bad", "gift");
    char *w = user(s);
    switch (g_rand_int_range(s->rand, 0, 5)) {
    case 0:
        leg(r, w, 0);
        leg(r, "platform:revenue", 0);
        break;
    case 1:
        leg(r, w, -ENCORE_LEDGER_MAX_AMOUNT - 1);
        leg(r, "platform:revenue", ENCORE_LEDGER_MAX_AMOUNT + 1);
        break;
    case 2:
        leg(r, w, -10);
        leg(r, "bank:elsewhere", 10);
        break;
    case 3:
        leg(r, w, -10);
        leg(r, "platform:revenue", 11);
        break;
    default:
        leg(r, w, 10); /* a negative gift: the credit and debit swapped, but unbalanced too */
        leg(r, "platform:revenue", 10);
        break;
    }
    g_free(w);
    return r;
}

static sim_req *next_op(sim *s)
{
    static const struct {
        sim_req *(*make)(sim *s);
        int weight;
    } ops[] = {
        {op_topup, 12}, {op_gift, 40},    {op_vip, 5},      {op_ticket, 6},
        {op_refund, 3}, {op_settle, 2},   {op_withdraw, 5}, {op_decide, 5},
        {op_retry, 12}, {op_conflict, 4}, {op_bad, 3},
    };
    int total = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(ops); i++)
        total += ops[i].weight;
    int pick = g_rand_int_range(s->rand, 0, total);
    for (size_t i = 0; i < G_N_ELEMENTS(ops); i++) {
        if (pick < ops[i].weight)
            return ops[i].make(s);
        pick -= ops[i].weight;
    }
    g_assert_not_reached();
}

/* ---- rounds ---- */

typedef struct {
    encore_transfer_result result;
    bool answered;
    int *pending;
} answer;

static void on_done(const encore_transfer_result *r, void *user_data)
{
    answer *a = user_data;
    a->result = *r;
    a->result.id = NULL;
    a->answered = true;
    (*a->pending)--;
}

static void fail_round(sim *s, const sim_req *r, const char *what)
{
    g_printerr("ledger simulation failed (seed %u): request %s: %s\n", s->seed, r->id, what);
    g_assert_not_reached();
}

static void check_balances(sim *s)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->balances);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        int64_t got = 0;
        GError *err = NULL;
        g_assert_true(encore_ledger_balance(s->ledger, k, &got, &err));
        if (got != *(int64_t *)v) {
            g_printerr("seed %u: %s is %" G_GINT64_FORMAT ", model says %" G_GINT64_FORMAT "\n",
                       s->seed, (const char *)k, got, *(int64_t *)v);
            g_assert_not_reached();
        }
    }
    GString *report = g_string_new(NULL);
    GError *err = NULL;
    gboolean sound = encore_ledger_audit(s->ledger, report, &err);
    g_assert_no_error(err);
    if (!sound) {
        g_printerr("seed %u:\n%s", s->seed, report->str);
        g_assert_not_reached();
    }
    g_string_free(report, TRUE);
}

static void run_round(sim *s, GMainContext *ctx)
{
    int n = g_rand_int_range(s->rand, 1, 9);
    sim_req *reqs[10];
    answer answers[10];
    int pending = 0;
    for (int i = 0; i < n; i++) {
        reqs[i] = next_op(s);
        /* Sometimes the same new request twice in one round (a double click). */
        if (i + 1 < n && g_rand_int_range(s->rand, 0, 10) == 0) {
            reqs[i + 1] = req_copy(reqs[i]);
            i++;
        }
    }
    for (int i = 0; i < n; i++) {
        encore_leg legs[ENCORE_LEDGER_MAX_LEGS];
        for (size_t j = 0; j < reqs[i]->n_legs; j++)
            legs[j] = (encore_leg){reqs[i]->accounts[j], reqs[i]->amounts[j]};
        encore_transfer_req req = {.id = reqs[i]->id,
                                   .kind = reqs[i]->kind,
                                   .metadata = reqs[i]->metadata,
                                   .legs = legs,
                                   .n_legs = reqs[i]->n_legs};
        answers[i] = (answer){.pending = &pending};
        pending++;
        encore_ledger_submit(s->ledger, &req, ctx, on_done, &answers[i], NULL);
    }
    while (pending > 0)
        g_main_context_iteration(ctx, TRUE);
    /* Answers in commit order, which is submission order. */
    for (int i = 0; i < n; i++) {
        int64_t expect_id;
        bool replay, fresh_ok;
        encore_ledger_status want = predict(s, reqs[i], &expect_id, &replay, &fresh_ok);
        const encore_transfer_result *got = &answers[i].result;
        s->sent++;
        if (got->status != want) {
            char *msg = g_strdup_printf("answered %s (%s), model says %s",
                                        encore_ledger_status_name(got->status), got->detail,
                                        encore_ledger_status_name(want));
            fail_round(s, reqs[i], msg);
        }
        if (replay && got->status != ENCORE_LEDGER_IDEMPOTENCY_CONFLICT) {
            if (!got->replayed || got->transfer_id != expect_id)
                fail_round(s, reqs[i], "a retry did not get the stored answer");
            s->replays++;
        } else if (fresh_ok) {
            if (got->transfer_id <= s->last_transfer_id)
                fail_round(s, reqs[i], "transfer ids must grow");
            s->last_transfer_id = got->transfer_id;
            remembered *m = g_hash_table_lookup(s->requests, reqs[i]->id);
            m->transfer_id = got->transfer_id;
            s->ok++;
        } else if (want == ENCORE_LEDGER_INSUFFICIENT_FUNDS) {
            s->refused++;
        } else if (want == ENCORE_LEDGER_IDEMPOTENCY_CONFLICT) {
            s->conflicts++;
        } else {
            s->invalid++;
        }
        g_ptr_array_add(s->history, reqs[i]);
    }
}

/* The ledger warns when an injected fatal error fails a batch: expected here, so counted rather
 * than fatal. Any other warning still fails the test. */
static unsigned batch_warnings;
static void on_ledger_log(const gchar *domain, GLogLevelFlags level, const gchar *message,
                          gpointer user_data)
{
    if ((level & G_LOG_LEVEL_WARNING) && strstr(message, "request(s) failed: ") &&
        strstr(message, "injected")) {
        __atomic_fetch_add(&batch_warnings, 1, __ATOMIC_RELAXED);
        return;
    }
    if (level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR)) {
        g_printerr("%s: %s\n", domain, message);
        abort();
    }
}

static void test_simulation(gconstpointer data)
{
    const char *kind = data;
    if (strcmp(kind, "postgresql") == 0 && testdb_pg_skip_reason()) {
        g_test_skip(testdb_pg_skip_reason());
        return;
    }
    const char *env_seed = g_getenv("ENCORE_SIM_SEED");
    const char *env_rounds = g_getenv("ENCORE_SIM_ROUNDS");
    guint32 seed = env_seed ? (guint32)g_ascii_strtoull(env_seed, NULL, 10) : g_random_int();
    int rounds = env_rounds ? (int)g_ascii_strtoll(env_rounds, NULL, 10) : 150;
    g_test_message("ledger simulation on %s: seed %u, %d rounds (replay: ENCORE_SIM_SEED=%u)", kind,
                   seed, rounds, seed);

    testdb *db = testdb_new(kind);
    faults fl = {.rand = g_rand_new_with_seed(seed ^ 0x5eed)};
    g_mutex_init(&fl.lock);
    encore_ledger_config cfg = {.backend = db->backend,
                                .max_retries = MAX_RETRIES,
                                .max_batch = 4,
                                .fault_fn = fault_hook,
                                .fault_user_data = &fl};
    GError *err = NULL;
    sim s = {
        .rand = g_rand_new_with_seed(seed),
        .seed = seed,
        .balances = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
        .requests = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, remembered_free),
        .history = g_ptr_array_new_with_free_func(sim_req_free),
        .pending_wd = g_ptr_array_new_with_free_func(g_free),
    };
    s.ledger = encore_ledger_open(&cfg, &err);
    g_assert_no_error(err);
    GMainContext *ctx = g_main_context_new();
    uint64_t retries = 0;
    for (int round = 0; round < rounds; round++) {
        g_mutex_lock(&fl.lock);
        fl.fatal_used = false;
        g_mutex_unlock(&fl.lock);
        run_round(&s, ctx);
        check_balances(&s);
        /* Now and then a restart: everything must come back from the store. */
        if (g_rand_int_range(s.rand, 0, 50) == 0) {
            encore_ledger_stats st;
            encore_ledger_get_stats(s.ledger, &st);
            retries += st.retries;
            encore_ledger_close(s.ledger);
            s.ledger = encore_ledger_open(&cfg, &err);
            g_assert_no_error(err);
            check_balances(&s);
        }
    }
    encore_ledger_stats st;
    encore_ledger_get_stats(s.ledger, &st);
    retries += st.retries;
    g_test_message("%u requests: %u applied, %u refused, %u replays, %u conflicts, %u invalid; "
                   "%u faults injected (%u fatal), %" G_GUINT64_FORMAT " retries",
                   s.sent, s.ok, s.refused, s.replays, s.conflicts, s.invalid, fl.injected,
                   fl.fatal, retries);
    g_assert_cmpuint(st.store_errors, ==, 0);
    g_assert_cmpuint(__atomic_load_n(&batch_warnings, __ATOMIC_RELAXED), ==, fl.fatal);
    batch_warnings = 0;
    g_assert_cmpuint(s.ok, >, 0);
    encore_ledger_close(s.ledger);
    g_main_context_unref(ctx);
    g_rand_free(s.rand);
    g_rand_free(fl.rand);
    g_mutex_clear(&fl.lock);
    g_hash_table_unref(s.balances);
    g_hash_table_unref(s.requests);
    g_ptr_array_unref(s.history);
    g_ptr_array_unref(s.pending_wd);
    testdb_free(db);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    g_log_set_handler("encore-ledger", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL, on_ledger_log,
                      NULL);
    g_test_add_data_func("/ledger/sqlite/simulation", "sqlite", test_simulation);
    g_test_add_data_func("/ledger/postgresql/simulation", "postgresql", test_simulation);
    return g_test_run();
}
