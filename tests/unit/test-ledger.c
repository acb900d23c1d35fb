/* Unit tests for server/economy/ledger: exact balances, insufficient funds, idempotency (replays,
 * conflicts, 100 parallel copies), 100 parallel transfers that only partly fit, bad requests,
 * group commit, backpressure, injected faults and retries, reopen, schema versions, and audit
 * over a deliberately corrupted database. Every test runs on SQLite and on PostgreSQL (skipped
 * unless ENCORE_TEST_PG is set). */
#include "config.h"

#include <string.h>

#include "server/economy/ledger.h"
#include "server/economy/split.h"
#include "server/economy/store.h"
#include "tests/ledger/testdb.h"

/* ---- fault plan and gate, read by the ledger thread through the fault hook ---- */

typedef struct {
    GMutex lock;
    GCond cond;
    /* Gate: while armed, the ledger thread stops at the next AT_BEGIN until disarmed. */
    bool gate_armed;
    bool gate_entered;
    /* Fault plan: `count` faults of kind `fault` at `point`. */
    encore_ledger_fault_point point;
    encore_ledger_fault fault;
    int skip; /* matching calls to let pass first */
    int count;
    int injected;
} plan;

static encore_ledger_fault fault_hook(encore_ledger_fault_point point, size_t batch_size,
                                      void *user_data)
{
    plan *p = user_data;
    encore_ledger_fault f = ENCORE_LEDGER_FAULT_NONE;
    g_mutex_lock(&p->lock);
    if (point == ENCORE_LEDGER_FAULT_AT_BEGIN && p->gate_armed) {
        p->gate_entered = true;
        g_cond_broadcast(&p->cond);
        while (p->gate_armed)
            g_cond_wait(&p->cond, &p->lock);
    }
    if (p->count > 0 && point == p->point && p->skip > 0) {
        p->skip--;
    } else if (p->count > 0 && point == p->point) {
        p->count--;
        p->injected++;
        f = p->fault;
    }
    g_mutex_unlock(&p->lock);
    return f;
}

static void plan_set(plan *p, encore_ledger_fault_point point, encore_ledger_fault fault, int count)
{
    g_mutex_lock(&p->lock);
    p->point = point;
    p->fault = fault;
    p->count = count;
    p->skip = 0;
    p->injected = 0;
    g_mutex_unlock(&p->lock);
}

static void gate_arm(plan *p)
{
    g_mutex_lock(&p->lock);
    p->gate_armed = true;
    p->gate_entered = false;
    g_mutex_unlock(&p->lock);
}

static void gate_wait_entered(plan *p)
{
    g_mutex_lock(&p->lock);
    while (!p->gate_entered)
        g_cond_wait(&p->cond, &p->lock);
    g_mutex_unlock(&p->lock);
}

static void gate_release(plan *p)
{
    g_mutex_lock(&p->lock);
    p->gate_armed = false;
    g_cond_broadcast(&p->cond);
    g_mutex_unlock(&p->lock);
}

/* ---- fixture ---- */

typedef struct {
    testdb *db;
    encore_ledger *ledger;
    plan plan;
    encore_ledger_config cfg;
} fx;

static encore_ledger *fx_open(fx *f)
{
    GError *err = NULL;
    f->ledger = encore_ledger_open(&f->cfg, &err);
    g_assert_no_error(err);
    g_assert_nonnull(f->ledger);
    return f->ledger;
}

/* NULL when the backend is not available (the test is then skipped). */
static fx *fx_new(const char *kind)
{
    if (strcmp(kind, "postgresql") == 0 && testdb_pg_skip_reason()) {
        g_test_skip(testdb_pg_skip_reason());
        return NULL;
    }
    fx *f = g_new0(fx, 1);
    g_mutex_init(&f->plan.lock);
    g_cond_init(&f->plan.cond);
    f->db = testdb_new(kind);
    f->cfg = (encore_ledger_config){
        .backend = f->db->backend, .fault_fn = fault_hook, .fault_user_data = &f->plan};
    /* "sqlite-collide": request keys cut to 2 bits, so that ids share keys all the time. */
    if (strcmp(kind, "sqlite-collide") == 0)
        f->cfg.test_request_key_bits = 2;
    return f;
}

static void fx_free(fx *f)
{
    if (!f)
        return;
    encore_ledger_close(f->ledger);
    testdb_free(f->db);
    g_mutex_clear(&f->plan.lock);
    g_cond_clear(&f->plan.cond);
    g_free(f);
}

static encore_ledger_status move(encore_ledger *l, const char *id, const char *from, const char *to,
                                 int64_t amount, encore_transfer_result *out)
{
    encore_transfer_req req;
    encore_leg legs[2];
    encore_transfer_result tmp;
    if (!out)
        out = &tmp;
    if (encore_transfer_move(&req, legs, id, "test", from, to, amount) != ENCORE_LEDGER_OK) {
        memset(out, 0, sizeof(*out));
        out->status = ENCORE_LEDGER_INVALID;
        return ENCORE_LEDGER_INVALID;
    }
    return encore_ledger_transfer_sync(l, &req, out);
}

static int64_t balance(encore_ledger *l, const char *account)
{
    int64_t v = -424242;
    GError *err = NULL;
    g_assert_true(encore_ledger_balance(l, account, &v, &err));
    g_assert_no_error(err);
    return v;
}

static void assert_audit(encore_ledger *l, gboolean expect_ok, const char *must_contain)
{
    GString *report = g_string_new(NULL);
    GError *err = NULL;
    gboolean ok = encore_ledger_audit(l, report, &err);
    g_assert_no_error(err);
    if (ok != expect_ok)
        g_printerr("%s", report->str);
    g_assert_cmpint(ok, ==, expect_ok);
    if (must_contain)
        g_assert_nonnull(strstr(report->str, must_contain));
    g_string_free(report, TRUE);
}

static void expect_sql(testdb *db, const char *sql, gboolean ok)
{
    char *msg = NULL;
    gboolean done = testdb_exec(db, sql, &msg);
    if (done != ok)
        g_printerr("%s: %s\n", sql, msg ? msg : "succeeded");
    g_assert_cmpint(done, ==, ok);
    g_free(msg);
}

static void topup(encore_ledger *l, const char *id, const char *wallet, int64_t amount)
{
    g_assert_cmpint(move(l, id, "external:topups", wallet, amount, NULL), ==, ENCORE_LEDGER_OK);
}

/* ---- tests ---- */

static void test_exact_balances(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    encore_transfer_result r1, r2;
    g_assert_cmpint(move(l, "top-1", "external:topups", "wallet:alice", 1000, &r1), ==,
                    ENCORE_LEDGER_OK);
    g_assert_cmpint(r1.transfer_id, >, 0);
    g_assert_false(r1.replayed);
    g_assert_cmpstr(r1.detail, ==, "ok");

    /* A gift of 300 split 50% singer, 20% agent, 30% platform in one 4-leg transfer. */
    int64_t s, a, p;
    g_assert_cmpint(encore_split(300, 5000, 2000, &s, &a, &p), ==, 0);
    encore_leg legs[] = {{"wallet:alice", -300},
                         {"earnings:bob", s},
                         {"earnings:agent-1", a},
                         {"platform:revenue", p}};
    encore_transfer_req req = {.id = "gift:alice:1",
                               .kind = "gift",
                               .metadata = "{\"gift\":\"rose\",\"count\":3}",
                               .legs = legs,
                               .n_legs = 4};
    g_assert_cmpint(encore_ledger_transfer_sync(l, &req, &r2), ==, ENCORE_LEDGER_OK);
    g_assert_cmpint(r2.transfer_id, >, r1.transfer_id);
    g_assert_cmpstr(r2.id, ==, "gift:alice:1");

    g_assert_cmpint(balance(l, "wallet:alice"), ==, 700);
    g_assert_cmpint(balance(l, "earnings:bob"), ==, 150);
    g_assert_cmpint(balance(l, "earnings:agent-1"), ==, 60);
    g_assert_cmpint(balance(l, "platform:revenue"), ==, 90);
    g_assert_cmpint(balance(l, "external:topups"), ==, -1000);
    g_assert_cmpint(balance(l, "wallet:nobody"), ==, 0);

    /* Withdrawal: earnings to escrow (requested), then escrow to the outside (approved). */
    g_assert_cmpint(move(l, "wd-1", "earnings:bob", "escrow:wd-1", 100, NULL), ==,
                    ENCORE_LEDGER_OK);
    g_assert_cmpint(move(l, "wd-1-ok", "escrow:wd-1", "external:payouts", 100, NULL), ==,
                    ENCORE_LEDGER_OK);
    g_assert_cmpint(balance(l, "earnings:bob"), ==, 50);
    g_assert_cmpint(balance(l, "escrow:wd-1"), ==, 0);
    g_assert_cmpint(balance(l, "external:payouts"), ==, 100);
    assert_audit(l, TRUE, "ledger audit: ok");

    encore_ledger_stats st;
    encore_ledger_get_stats(l, &st);
    g_assert_cmpuint(st.transfers, ==, 4);
    g_assert_cmpuint(st.requests, ==, 4);
    fx_free(f);
}

static void test_insufficient_funds(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:alice", 100);
    encore_transfer_result r;
    g_assert_cmpint(move(l, "spend-1", "wallet:alice", "platform:revenue", 101, &r), ==,
                    ENCORE_LEDGER_INSUFFICIENT_FUNDS);
    g_assert_cmpint(r.transfer_id, ==, 0);
    g_assert_false(r.replayed);
    g_assert_cmpstr(r.detail, ==, "insufficient funds");
    g_assert_cmpint(balance(l, "wallet:alice"), ==, 100);
    g_assert_cmpint(balance(l, "platform:revenue"), ==, 0);
    /* A wallet no transfer ever touched has nothing to spend. */
    g_assert_cmpint(move(l, "spend-ghost", "wallet:ghost", "platform:revenue", 1, NULL), ==,
                    ENCORE_LEDGER_INSUFFICIENT_FUNDS);
    /* The refusal is remembered: even once the wallet could pay, a retry answers the same. */
    topup(l, "top-2", "wallet:alice", 1000);
    g_assert_cmpint(move(l, "spend-1", "wallet:alice", "platform:revenue", 101, &r), ==,
                    ENCORE_LEDGER_INSUFFICIENT_FUNDS);
    g_assert_true(r.replayed);
    g_assert_cmpint(balance(l, "wallet:alice"), ==, 1100);
    /* Exactly the balance is fine; a new id is a new attempt. */
    g_assert_cmpint(move(l, "spend-2", "wallet:alice", "platform:revenue", 1100, NULL), ==,
                    ENCORE_LEDGER_OK);
    g_assert_cmpint(balance(l, "wallet:alice"), ==, 0);

    /* Two debits, the second cannot pay: the first is undone too. */
    topup(l, "top-3", "wallet:carol", 50);
    topup(l, "top-4", "wallet:dave", 10);
    encore_leg legs[] = {{"wallet:carol", -20}, {"wallet:dave", -20}, {"platform:revenue", 40}};
    encore_transfer_req req = {.id = "two-debits", .kind = "test", .legs = legs, .n_legs = 3};
    g_assert_cmpint(encore_ledger_transfer_sync(l, &req, &r), ==, ENCORE_LEDGER_INSUFFICIENT_FUNDS);
    g_assert_cmpint(balance(l, "wallet:carol"), ==, 50);
    g_assert_cmpint(balance(l, "wallet:dave"), ==, 10);
    legs[1].amount = -10;
    legs[2].amount = 30;
    req.id = "two-debits-2";
    g_assert_cmpint(encore_ledger_transfer_sync(l, &req, &r), ==, ENCORE_LEDGER_OK);
    g_assert_cmpint(balance(l, "wallet:carol"), ==, 30);
    g_assert_cmpint(balance(l, "wallet:dave"), ==, 0);
    assert_audit(l, TRUE, NULL);
    fx_free(f);
}

static void test_idempotency(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    encore_transfer_result first, again;
    g_assert_cmpint(move(l, "top-1", "external:topups", "wallet:alice", 500, &first), ==,
                    ENCORE_LEDGER_OK);
    g_assert_cmpint(move(l, "top-1", "external:topups", "wallet:alice", 500, &again), ==,
                    ENCORE_LEDGER_OK);
    g_assert_true(again.replayed);
    g_assert_cmpint(again.transfer_id, ==, first.transfer_id);
    g_assert_cmpint(balance(l, "wallet:alice"), ==, 500);

    /* Same id, other contents: other amount, other account, other kind, other metadata. */
    g_assert_cmpint(move(l, "top-1", "external:topups", "wallet:alice", 501, &again), ==,
                    ENCORE_LEDGER_IDEMPOTENCY_CONFLICT);
    g_assert_cmpint(again.transfer_id, ==, 0);
    g_assert_cmpstr(encore_ledger_status_name(again.status), ==, "idempotency_conflict");
    g_assert_cmpint(move(l, "top-1", "external:topups", "wallet:bob", 500, NULL), ==,
                    ENCORE_LEDGER_IDEMPOTENCY_CONFLICT);
    encore_leg legs[] = {{"wallet:alice", 500}, {"external:topups", -500}};
    encore_transfer_req req = {.id = "top-1", .kind = "other", .legs = legs, .n_legs = 2};
    g_assert_cmpint(encore_ledger_transfer_sync(l, &req, &again), ==,
                    ENCORE_LEDGER_IDEMPOTENCY_CONFLICT);
    /* Leg order is not part of the contents. */
    req.kind = "test";
    g_assert_cmpint(encore_ledger_transfer_sync(l, &req, &again), ==, ENCORE_LEDGER_OK);
    g_assert_true(again.replayed);
    g_assert_cmpint(again.transfer_id, ==, first.transfer_id);
    req.metadata = "{}";
    g_assert_cmpint(encore_ledger_transfer_sync(l, &req, &again), ==,
                    ENCORE_LEDGER_IDEMPOTENCY_CONFLICT);

    /* Metadata is compared in canonical form: key order and spaces do not matter. */
    encore_leg g[] = {{"wallet:alice", -10}, {"earnings:bob", 10}};
    encore_transfer_req gift = {.id = "gift-m",
                                .kind = "gift",
                                .metadata = "{\"b\": 1, \"a\": [1, 2]}",
                                .legs = g,
                                .n_legs = 2};
    g_assert_cmpint(encore_ledger_transfer_sync(l, &gift, &first), ==, ENCORE_LEDGER_OK);
    gift.metadata = "{\"a\":[1,2],\"b\":1}";
    g_assert_cmpint(encore_ledger_transfer_sync(l, &gift, &again), ==, ENCORE_LEDGER_OK);
    g_assert_true(again.replayed);
    g_assert_cmpint(again.transfer_id, ==, first.transfer_id);
    gift.metadata = "{\"a\":[2,1],\"b\":1}";
    g_assert_cmpint(encore_ledger_transfer_sync(l, &gift, &again), ==,
                    ENCORE_LEDGER_IDEMPOTENCY_CONFLICT);
    g_assert_cmpint(balance(l, "wallet:alice"), ==, 490);
    char *stored = testdb_query(f->db, "SELECT metadata FROM ledger_transfers "
                                       "WHERE request_id = 'gift-m'");
    g_assert_cmpstr(stored, ==, "{\"a\":[1,2],\"b\":1}");
    g_free(stored);

    encore_ledger_stats st;
    encore_ledger_get_stats(l, &st);
    g_assert_cmpuint(st.transfers, ==, 2);
    g_assert_cmpuint(st.replays, ==, 3);
    g_assert_cmpuint(st.conflicts, ==, 5);
    assert_audit(l, TRUE, NULL);
    fx_free(f);
}

static void expect_rejected(encore_ledger *l, const encore_transfer_req *req,
                            encore_ledger_status want, const char *detail)
{
    encore_transfer_result r;
    g_assert_cmpint(encore_ledger_transfer_sync(l, req, &r), ==, want);
    g_assert_cmpint(r.transfer_id, ==, 0);
    if (detail)
        g_assert_cmpstr(r.detail, ==, detail);
    /* The allocation-free check agrees, except on what only the JSON parser can tell and on
     * what only the database can tell (funds). */
    bool json = r.detail && strncmp(r.detail, "metadata", 8) == 0;
    bool checkable =
        want == ENCORE_LEDGER_UNKNOWN_ACCOUNT || (want == ENCORE_LEDGER_INVALID && !json);
    g_assert_cmpint(encore_transfer_check(req, NULL), ==, checkable ? want : ENCORE_LEDGER_OK);
}

static void test_bad_requests(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:alice", 1000);
    encore_leg legs[ENCORE_LEDGER_MAX_LEGS + 1];
    encore_transfer_req req = {.id = "bad-1", .kind = "test", .legs = legs, .n_legs = 2};
    const int64_t huge[] = {ENCORE_LEDGER_MAX_AMOUNT + 1, INT64_MAX, INT64_MIN,
                            -ENCORE_LEDGER_MAX_AMOUNT - 1};
    legs[0] = (encore_leg){"wallet:alice", 0};
    legs[1] = (encore_leg){"platform:revenue", 0};
    expect_rejected(l, &req, ENCORE_LEDGER_INVALID, "zero amount");
    for (size_t i = 0; i < G_N_ELEMENTS(huge); i++) {
        legs[0].amount = huge[i];
        legs[1].amount = huge[i] == INT64_MIN ? INT64_MAX : -huge[i];
        expect_rejected(l, &req, ENCORE_LEDGER_INVALID, "amount too large");
    }
    /* The largest allowed amount passes the checks (and fails on funds). */
    legs[0].amount = -ENCORE_LEDGER_MAX_AMOUNT;
    legs[1].amount = ENCORE_LEDGER_MAX_AMOUNT;
    req.id = "max-amount";
    expect_rejected(l, &req, ENCORE_LEDGER_INSUFFICIENT_FUNDS, "insufficient funds");
    req.id = "bad-2";
    legs[0].amount = -10;
    legs[1].amount = 9;
    expect_rejected(l, &req, ENCORE_LEDGER_INVALID, "legs do not sum to zero");
    /* Overflowing sums cannot pass: every leg is bounded first. */
    legs[0].amount = INT64_MAX;
    legs[1].amount = 1;
    expect_rejected(l, &req, ENCORE_LEDGER_INVALID, "amount too large");
    legs[0].amount = -10;
    legs[1].amount = 10;
    req.n_legs = 1;
    expect_rejected(l, &req, ENCORE_LEDGER_INVALID, "a transfer has 2 to 16 legs");
    req.n_legs = ENCORE_LEDGER_MAX_LEGS + 1;
    for (size_t i = 0; i < req.n_legs; i++)
        legs[i] = (encore_leg){"platform:revenue", 1};
    expect_rejected(l, &req, ENCORE_LEDGER_INVALID, "a transfer has 2 to 16 legs");
    req.n_legs = 2;
    legs[0] = (encore_leg){"wallet:alice", -10};
    legs[1] = (encore_leg){"wallet:alice", 10};
    expect_rejected(l, &req, ENCORE_LEDGER_INVALID, "an account appears in two legs");
    legs[1] = (encore_leg){"platform:revenue", 10};

    /* Unknown accounts. */
    const char *unknown[] = {"bank:x",     "wallet:",        "wallet:a b",   "wallet",
                             "platform:x", "external:me",    "earnings:a:b", "WALLET:a",
                             NULL,         "escrow:\xc3\xa9"};
    for (size_t i = 0; i < G_N_ELEMENTS(unknown); i++) {
        legs[1].account = unknown[i];
        expect_rejected(l, &req, ENCORE_LEDGER_UNKNOWN_ACCOUNT, "unknown account");
    }
    char long_account[100];
    memset(long_account, 'x', sizeof(long_account));
    memcpy(long_account, "wallet:", 7);
    long_account[7 + 65] = '\0';
    legs[1].account = long_account;
    expect_rejected(l, &req, ENCORE_LEDGER_UNKNOWN_ACCOUNT, NULL);
    long_account[7 + 64] = '\0';
    g_assert_cmpint(encore_ledger_account_kind(long_account), ==, ENCORE_ACCOUNT_WALLET);
    legs[1].account = "platform:revenue";

    /* Ids, kinds and metadata. */
    char long_id[ENCORE_LEDGER_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id));
    long_id[ENCORE_LEDGER_ID_MAX + 1] = '\0';
    const char *bad_ids[] = {"", "a b", "a\nb", "caf\xc3\xa9", long_id, NULL};
    for (size_t i = 0; i < G_N_ELEMENTS(bad_ids); i++) {
        req.id = bad_ids[i];
        expect_rejected(l, &req, ENCORE_LEDGER_INVALID, NULL);
    }
    long_id[ENCORE_LEDGER_ID_MAX] = '\0';
    req.id = long_id;
    g_assert_cmpint(encore_transfer_check(&req, NULL), ==, ENCORE_LEDGER_OK);
    req.id = "bad-3";
    const char *bad_kinds[] = {"", "Gift", "gift card", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL};
    for (size_t i = 0; i < G_N_ELEMENTS(bad_kinds); i++) {
        req.kind = bad_kinds[i];
        expect_rejected(l, &req, ENCORE_LEDGER_INVALID, NULL);
    }
    req.kind = "test";
    req.metadata = "[1,2]";
    expect_rejected(l, &req, ENCORE_LEDGER_INVALID, "metadata is not a JSON object");
    req.metadata = "{\"a\":1";
    expect_rejected(l, &req, ENCORE_LEDGER_INVALID, "metadata is not valid JSON");
    req.metadata = "{\"a\":1,\"a\":2}";
    expect_rejected(l, &req, ENCORE_LEDGER_INVALID, "metadata is not valid JSON");
    GString *big = g_string_new("{\"k\":\"");
    for (int i = 0; i < ENCORE_LEDGER_METADATA_MAX; i++)
        g_string_append_c(big, 'x');
    g_string_append(big, "\"}");
    req.metadata = big->str;
    expect_rejected(l, &req, ENCORE_LEDGER_INVALID, "metadata too long");
    g_string_free(big, TRUE);
    req.metadata = NULL;
    expect_rejected(l, NULL, ENCORE_LEDGER_INVALID, "no request");

    /* The two-leg helper refuses what would move money backwards. */
    encore_transfer_req mv;
    encore_leg mlegs[2];
    const int64_t bad_amounts[] = {0, -1, -100, INT64_MIN, ENCORE_LEDGER_MAX_AMOUNT + 1};
    for (size_t i = 0; i < G_N_ELEMENTS(bad_amounts); i++)
        g_assert_cmpint(encore_transfer_move(&mv, mlegs, "m", "test", "wallet:alice", "wallet:bob",
                                             bad_amounts[i]),
                        ==, ENCORE_LEDGER_INVALID);

    /* Rejections leave no trace: the ids can still be used, and nothing moved. */
    req.id = "bad-1";
    g_assert_cmpint(move(l, "bad-1", "wallet:alice", "platform:revenue", 10, NULL), ==,
                    ENCORE_LEDGER_OK);
    g_assert_cmpint(balance(l, "wallet:alice"), ==, 990);
    g_assert_cmpint(balance(l, "platform:revenue"), ==, 10);

    /* Balance of a malformed account name. */
    int64_t v = 0;
    GError *err = NULL;
    g_assert_false(encore_ledger_balance(l, "bank:x", &v, &err));
    g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_UNKNOWN_ACCOUNT);
    g_clear_error(&err);
    assert_audit(l, TRUE, NULL);
    fx_free(f);
}

/* ---- concurrency ---- */

typedef struct {
    encore_ledger *ledger;
    GMutex *lock;
    GCond *cond;
    bool *go;
    char id[32];
    int64_t amount;
    encore_transfer_result result;
} sender;

static gpointer sender_main(gpointer data)
{
    sender *s = data;
    g_mutex_lock(s->lock);
    while (!*s->go)
        g_cond_wait(s->cond, s->lock);
    g_mutex_unlock(s->lock);
    move(s->ledger, s->id, "wallet:fan", "earnings:singer", s->amount, &s->result);
    s->result.id = NULL;
    return NULL;
}

/* Starts n threads at once, each sending one transfer; joins them. */
static void run_senders(sender *senders, size_t n)
{
    GMutex lock;
    GCond cond;
    bool go = false;
    g_mutex_init(&lock);
    g_cond_init(&cond);
    GThread **threads = g_new(GThread *, n);
    for (size_t i = 0; i < n; i++) {
        senders[i].lock = &lock;
        senders[i].cond = &cond;
        senders[i].go = &go;
        threads[i] = g_thread_new("sender", sender_main, &senders[i]);
    }
    g_mutex_lock(&lock);
    go = true;
    g_cond_broadcast(&cond);
    g_mutex_unlock(&lock);
    for (size_t i = 0; i < n; i++)
        g_thread_join(threads[i]);
    g_free(threads);
    g_mutex_clear(&lock);
    g_cond_clear(&cond);
}

static void test_parallel_affordable(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:fan", 1000);
    enum { N = 100 };
    sender *senders = g_new0(sender, N);
    for (size_t i = 0; i < N; i++) {
        senders[i].ledger = l;
        g_snprintf(senders[i].id, sizeof(senders[i].id), "gift:fan:%zu", i);
        senders[i].amount = 30;
    }
    run_senders(senders, N);
    int ok = 0, refused = 0;
    GHashTable *ids = g_hash_table_new(g_int64_hash, g_int64_equal);
    for (size_t i = 0; i < N; i++) {
        if (senders[i].result.status == ENCORE_LEDGER_OK) {
            ok++;
            g_assert_true(g_hash_table_add(ids, &senders[i].result.transfer_id));
        } else {
            g_assert_cmpint(senders[i].result.status, ==, ENCORE_LEDGER_INSUFFICIENT_FUNDS);
            refused++;
        }
    }
    g_hash_table_unref(ids);
    g_assert_cmpint(ok, ==, 33); /* 1000 / 30 */
    g_assert_cmpint(refused, ==, 67);
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 10);
    g_assert_cmpint(balance(l, "earnings:singer"), ==, 990);
    /* Every answer is remembered: retries answer the same. */
    for (size_t i = 0; i < N; i++) {
        encore_transfer_result r;
        move(l, senders[i].id, "wallet:fan", "earnings:singer", 30, &r);
        g_assert_cmpint(r.status, ==, senders[i].result.status);
        g_assert_cmpint(r.transfer_id, ==, senders[i].result.transfer_id);
        g_assert_true(r.replayed);
    }
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 10);
    char *rows = testdb_query(f->db, "SELECT count(*) FROM ledger_transfers");
    g_assert_cmpstr(rows, ==, "101");
    g_free(rows);
    assert_audit(l, TRUE, NULL);
    g_free(senders);
    fx_free(f);
}

static void test_parallel_same_id(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:fan", 1000);
    enum { N = 100 };
    sender *senders = g_new0(sender, N);
    for (size_t i = 0; i < N; i++) {
        senders[i].ledger = l;
        g_strlcpy(senders[i].id, "gift:fan:same", sizeof(senders[i].id));
        senders[i].amount = 70;
    }
    run_senders(senders, N);
    int fresh = 0;
    for (size_t i = 0; i < N; i++) {
        g_assert_cmpint(senders[i].result.status, ==, ENCORE_LEDGER_OK);
        g_assert_cmpint(senders[i].result.transfer_id, ==, senders[0].result.transfer_id);
        fresh += !senders[i].result.replayed;
    }
    g_assert_cmpint(fresh, ==, 1);
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 930);
    g_assert_cmpint(balance(l, "earnings:singer"), ==, 70);
    /* One transfer: two rows of requests, and the statement postings of external:topups and
     * earnings:singer. */
    char *rows = testdb_query(f->db, "SELECT count(*) FROM ledger_transfers");
    g_assert_cmpstr(rows, ==, "2");
    g_free(rows);
    rows = testdb_query(f->db, "SELECT count(*) FROM ledger_postings");
    g_assert_cmpstr(rows, ==, "2");
    g_free(rows);
    assert_audit(l, TRUE, NULL);
    g_free(senders);
    fx_free(f);
}

/* ---- group commit, contexts, backpressure ---- */

typedef struct {
    GMainContext *ctx;
    int answered;
    int ok;
    int overloaded;
    bool wrong_thread;
} tally;

static void on_done(const encore_transfer_result *r, void *user_data)
{
    tally *t = user_data;
    if (!g_main_context_is_owner(t->ctx))
        t->wrong_thread = true;
    t->answered++;
    t->ok += r->status == ENCORE_LEDGER_OK;
    t->overloaded += r->status == ENCORE_LEDGER_OVERLOADED;
}

/* One asynchronous lookup: its answer, copied in the callback. */
typedef struct {
    GMainContext *ctx;
    const char *id;
    int answered;
    int destroyed;
    bool on_owner;
    gboolean ok;
    bool found;
    encore_ledger_status status;
    int64_t transfer_id;
    size_t n_legs;
    char *metadata;
    GError *error;
} async_lookup;

static void on_lookup(gboolean ok, const encore_ledger_record *rec, const GError *error,
                      void *user_data)
{
    async_lookup *a = user_data;
    a->answered++;
    a->on_owner = g_main_context_is_owner(a->ctx);
    a->ok = ok;
    a->found = rec != NULL;
    if (rec) {
        a->status = rec->status;
        a->transfer_id = rec->transfer_id;
        a->n_legs = rec->n_legs;
        a->metadata = g_strdup(rec->metadata);
        g_assert_cmpstr(rec->request_id, ==, a->id);
    }
    a->error = error ? g_error_copy(error) : NULL;
}

static void on_lookup_destroy(gpointer user_data)
{
    async_lookup *a = user_data;
    a->destroyed++;
}

/* An asynchronous statement: its answer. */
typedef struct {
    GMainContext *ctx;
    bool done;
    bool on_owner;
    gboolean ok;
    GPtrArray *lines;
    GError *error;
} async_statement;

static void on_statement(gboolean ok, GPtrArray *lines, const GError *error, void *user_data)
{
    async_statement *a = user_data;
    a->done = true;
    a->on_owner = g_main_context_is_owner(a->ctx);
    a->ok = ok;
    a->lines = lines ? g_ptr_array_ref(lines) : NULL;
    a->error = error ? g_error_copy(error) : NULL;
}

static void submit_move(encore_ledger *l, const char *id, int64_t amount, tally *t)
{
    encore_transfer_req req;
    encore_leg legs[2];
    g_assert_cmpint(
        encore_transfer_move(&req, legs, id, "gift", "wallet:fan", "earnings:singer", amount), ==,
        ENCORE_LEDGER_OK);
    encore_ledger_submit(l, &req, t->ctx, on_done, t, NULL);
}

static void test_group_commit(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    f->cfg.max_batch = 64;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:fan", 1000000);
    tally t = {.ctx = g_main_context_new()};
    /* Hold the ledger thread in its first batch while 499 more requests queue up. */
    gate_arm(&f->plan);
    submit_move(l, "g-0", 1, &t);
    gate_wait_entered(&f->plan);
    for (int i = 1; i < 500; i++) {
        char id[32];
        g_snprintf(id, sizeof(id), "g-%d", i);
        submit_move(l, id, i + 1, &t);
    }
    gate_release(&f->plan);
    while (t.answered < 500)
        g_main_context_iteration(t.ctx, TRUE);
    g_assert_false(t.wrong_thread);
    g_assert_cmpint(t.ok, ==, 500);
    encore_ledger_stats st;
    encore_ledger_get_stats(l, &st);
    /* 1 (top-up) + 1 (g-0) + ceil(499 / 64) = 8 batches of at most 64. */
    g_assert_cmpuint(st.batches, ==, 10);
    g_assert_cmpuint(st.largest_batch, ==, 64);
    g_assert_cmpint(balance(l, "earnings:singer"), ==, 500 * 501 / 2);
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 1000000 - 500 * 501 / 2);
    assert_audit(l, TRUE, NULL);
    fx_free(f);
    g_main_context_unref(t.ctx);
}

static void test_overloaded(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    f->cfg.max_queue = 2;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:fan", 100);
    tally t = {.ctx = g_main_context_new()};
    gate_arm(&f->plan);
    submit_move(l, "o-1", 1, &t);
    gate_wait_entered(&f->plan);
    submit_move(l, "o-2", 1, &t);
    submit_move(l, "o-3", 1, &t);
    submit_move(l, "o-4", 1, &t); /* third waiting request: refused */
    /* Reads are refused as well, on the caller's context. */
    async_lookup q = {.ctx = t.ctx, .id = "o-1"};
    encore_ledger_lookup_async(l, "o-1", t.ctx, on_lookup, &q, on_lookup_destroy);
    async_statement a = {.ctx = t.ctx};
    encore_ledger_statement_async(l, "earnings:singer", 0, 10, t.ctx, on_statement, &a, NULL);
    gate_release(&f->plan);
    while (t.answered < 4 || !q.destroyed || !a.done)
        g_main_context_iteration(t.ctx, TRUE);
    g_assert_false(q.ok);
    g_assert_error(q.error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE);
    g_clear_error(&q.error);
    g_assert_false(a.ok);
    g_assert_null(a.lines);
    g_assert_error(a.error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE);
    g_clear_error(&a.error);
    g_assert_cmpint(t.ok, ==, 3);
    g_assert_cmpint(t.overloaded, ==, 1);
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 97);
    /* Nothing of o-4 was kept: it can be sent again. */
    g_assert_cmpint(move(l, "o-4", "wallet:fan", "earnings:singer", 1, NULL), ==, ENCORE_LEDGER_OK);
    fx_free(f);
    g_main_context_unref(t.ctx);
}

typedef struct {
    encore_ledger *ledger;
    encore_ledger_status nested;
    const char *nested_detail;
    GError *nested_error;
    GError *lookup_error;
    GError *scan_error;
    GError *statement_error;
    int64_t async_balance;
    int balance_ok;
    int balance_failed;
    bool balance_on_owner;
    GMainContext *ctx;
    int done;
} nested;

static void on_done_nested(const encore_transfer_result *r, void *user_data)
{
    nested *n = user_data;
    encore_transfer_result inner;
    n->nested = move(n->ledger, "inner", "wallet:fan", "earnings:singer", 1, &inner);
    n->nested_detail = inner.detail;
    int64_t v;
    encore_ledger_balance(n->ledger, "wallet:fan", &v, &n->nested_error);
    encore_ledger_record *rec = NULL;
    g_assert_false(encore_ledger_lookup(n->ledger, "outer", &rec, &n->lookup_error));
    g_assert_null(encore_ledger_scan(n->ledger, "", 0, 10, &n->scan_error));
    g_assert_null(
        encore_ledger_statement(n->ledger, "earnings:singer", 0, 10, &n->statement_error));
}

static void on_balance(gboolean ok, int64_t value, const GError *error, void *user_data)
{
    nested *n = user_data;
    if (ok && !error) {
        n->balance_ok++;
        n->async_balance = value;
    } else {
        g_assert_error((GError *)error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_UNKNOWN_ACCOUNT);
        n->balance_failed++;
    }
    n->balance_on_owner = g_main_context_is_owner(n->ctx);
    n->done++;
}

static void test_threads_and_contexts(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:fan", 100);
    nested n = {.ledger = l, .ctx = g_main_context_new()};
    /* Blocking calls from the ledger thread (reply_ctx NULL) are refused, not deadlocked. */
    encore_transfer_req req;
    encore_leg legs[2];
    g_assert_cmpint(
        encore_transfer_move(&req, legs, "outer", "gift", "wallet:fan", "earnings:singer", 5), ==,
        ENCORE_LEDGER_OK);
    encore_ledger_submit(l, &req, NULL, on_done_nested, &n, NULL);
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 95); /* queued after: answered after */
    g_assert_cmpint(n.nested, ==, ENCORE_LEDGER_INVALID);
    g_assert_cmpstr(n.nested_detail, ==, "called from the ledger thread");
    g_assert_error(n.nested_error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_WRONG_THREAD);
    g_clear_error(&n.nested_error);
    g_assert_error(n.lookup_error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_WRONG_THREAD);
    g_clear_error(&n.lookup_error);
    g_assert_error(n.scan_error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_WRONG_THREAD);
    g_clear_error(&n.scan_error);
    g_assert_error(n.statement_error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_WRONG_THREAD);
    g_clear_error(&n.statement_error);
    /* Asynchronous balance on a context. */
    encore_ledger_balance_async(l, "wallet:fan", n.ctx, on_balance, &n, NULL);
    encore_ledger_balance_async(l, "nope:x", n.ctx, on_balance, &n, NULL);
    while (n.done < 2)
        g_main_context_iteration(n.ctx, TRUE);
    g_assert_cmpint(n.balance_ok, ==, 1);
    g_assert_cmpint(n.balance_failed, ==, 1);
    g_assert_cmpint(n.async_balance, ==, 95);
    g_assert_true(n.balance_on_owner);
    fx_free(f);
    g_main_context_unref(n.ctx);
}

/* A destroy notify is called exactly once, also when the reply context is never run. */
static int destroyed;
static void count_destroy(gpointer data)
{
    destroyed++;
}

static void test_destroy_notify(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:fan", 100);
    destroyed = 0;
    GMainContext *ctx = g_main_context_new();
    tally t = {.ctx = ctx};
    encore_transfer_req req;
    encore_leg legs[2];
    g_assert_cmpint(
        encore_transfer_move(&req, legs, "d-1", "gift", "wallet:fan", "earnings:singer", 5), ==,
        ENCORE_LEDGER_OK);
    encore_ledger_submit(l, &req, ctx, on_done, &t, count_destroy);
    req.id = ""; /* invalid: answered at once, through the context too */
    encore_ledger_submit(l, &req, ctx, on_done, &t, count_destroy);
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 95); /* committed, answer not yet run */
    g_assert_cmpint(t.answered, ==, 0);
    g_main_context_unref(ctx); /* never iterated: only destroy runs */
    g_assert_cmpint(destroyed, ==, 2);
    g_assert_cmpint(t.answered, ==, 0);
    fx_free(f);
}

/* Within one batch, a debit sees the credits of earlier requests (held back until the commit
 * otherwise), and a refusal in the middle changes nothing for the others. */
typedef struct {
    GMainContext *ctx;
    int answered;
    encore_transfer_result results[8];
} ordered;

static void on_ordered(const encore_transfer_result *r, void *user_data)
{
    ordered *o = user_data;
    o->results[o->answered] = *r;
    o->results[o->answered].id = NULL;
    o->answered++;
}

static void test_one_batch_order(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-0", "wallet:x", 5);
    ordered o = {.ctx = g_main_context_new()};
    gate_arm(&f->plan);
    encore_transfer_req req;
    encore_leg legs[2];
    struct {
        const char *id, *from, *to;
        int64_t amount;
    } steps[] = {
        {"b-1", "external:topups", "wallet:x", 100}, /* credit, held until the commit */
        {"b-2", "wallet:x", "earnings:s", 60},       /* needs b-1's credit: ok, x = 41 */
        {"b-3", "wallet:x", "earnings:s", 50},       /* refused: x has 41 */
        {"b-4", "earnings:s", "escrow:wd-1", 60},    /* needs b-2's credit: ok, s = 0 */
        {"b-5", "earnings:s", "escrow:wd-2", 1},     /* refused: s has 0 */
        {"b-6", "wallet:x", "earnings:s", 41},       /* ok: x = 0, s = 41 */
    };
    /* The first request (x: 5 -> 1) reaches the gate alone; the rest queue behind it and
     * commit as one batch. */
    g_assert_cmpint(
        encore_transfer_move(&req, legs, "b-0", "test", "wallet:x", "platform:revenue", 4), ==,
        ENCORE_LEDGER_OK);
    encore_ledger_submit(l, &req, o.ctx, on_ordered, &o, NULL);
    gate_wait_entered(&f->plan);
    for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
        g_assert_cmpint(encore_transfer_move(&req, legs, steps[i].id, "test", steps[i].from,
                                             steps[i].to, steps[i].amount),
                        ==, ENCORE_LEDGER_OK);
        encore_ledger_submit(l, &req, o.ctx, on_ordered, &o, NULL);
    }
    gate_release(&f->plan);
    while (o.answered < 7)
        g_main_context_iteration(o.ctx, TRUE);
    const encore_ledger_status want[] = {ENCORE_LEDGER_OK, ENCORE_LEDGER_OK,
                                         ENCORE_LEDGER_OK, ENCORE_LEDGER_INSUFFICIENT_FUNDS,
                                         ENCORE_LEDGER_OK, ENCORE_LEDGER_INSUFFICIENT_FUNDS,
                                         ENCORE_LEDGER_OK};
    for (int i = 0; i < 7; i++)
        g_assert_cmpint(o.results[i].status, ==, want[i]);
    encore_ledger_stats st;
    encore_ledger_get_stats(l, &st);
    g_assert_cmpuint(st.largest_batch, ==, 6);
    g_assert_cmpint(balance(l, "wallet:x"), ==, 0);
    g_assert_cmpint(balance(l, "earnings:s"), ==, 41);
    g_assert_cmpint(balance(l, "escrow:wd-1"), ==, 60);
    g_assert_cmpint(balance(l, "escrow:wd-2"), ==, 0);
    g_assert_cmpint(balance(l, "platform:revenue"), ==, 4);
    g_assert_cmpint(balance(l, "external:topups"), ==, -105);
    assert_audit(l, TRUE, NULL);
    fx_free(f);
    g_main_context_unref(o.ctx);
}

static void test_statements(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:fan", 1000);
    encore_transfer_result r[5];
    for (int i = 0; i < 5; i++) {
        char id[16];
        g_snprintf(id, sizeof(id), "g-%d", i);
        encore_leg legs[] = {{"wallet:fan", -(10 + i)}, {"earnings:bob", 10 + i}};
        encore_transfer_req req = {
            .id = id, .kind = "gift", .metadata = "{\"gift\":\"rose\"}", .legs = legs, .n_legs = 2};
        g_assert_cmpint(encore_ledger_transfer_sync(l, &req, &r[i]), ==, ENCORE_LEDGER_OK);
    }
    g_assert_cmpint(move(l, "wd-1", "earnings:bob", "escrow:wd-1", 30, NULL), ==, ENCORE_LEDGER_OK);
    GError *err = NULL;
    GPtrArray *lines = encore_ledger_statement(l, "earnings:bob", 0, 3, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(lines->len, ==, 3);
    const encore_statement_line *first = g_ptr_array_index(lines, 0);
    g_assert_cmpstr(first->request_id, ==, "wd-1");
    g_assert_cmpint(first->amount, ==, -30);
    g_assert_cmpstr(first->kind, ==, "test");
    g_assert_null(first->metadata);
    const encore_statement_line *third = g_ptr_array_index(lines, 2);
    g_assert_cmpstr(third->request_id, ==, "g-3");
    g_assert_cmpint(third->transfer_id, ==, r[3].transfer_id);
    g_assert_cmpint(third->amount, ==, 13);
    g_assert_cmpstr(third->metadata, ==, "{\"gift\":\"rose\"}");
    g_assert_cmpint(third->created_us, >, 0);
    /* The next page. */
    int64_t before = third->transfer_id;
    g_ptr_array_unref(lines);
    lines = encore_ledger_statement(l, "earnings:bob", before, 1000, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(lines->len, ==, 3);
    g_assert_cmpstr(((encore_statement_line *)g_ptr_array_index(lines, 0))->request_id, ==, "g-2");
    g_assert_cmpstr(((encore_statement_line *)g_ptr_array_index(lines, 2))->request_id, ==, "g-0");
    g_ptr_array_unref(lines);
    lines = encore_ledger_statement(l, "escrow:wd-1", 0, 10, &err);
    g_assert_cmpuint(lines->len, ==, 1);
    g_ptr_array_unref(lines);
    lines = encore_ledger_statement(l, "external:topups", 0, 10, &err);
    g_assert_cmpuint(lines->len, ==, 1);
    g_assert_cmpint(((encore_statement_line *)g_ptr_array_index(lines, 0))->amount, ==, -1000);
    g_ptr_array_unref(lines);
    lines = encore_ledger_statement(l, "earnings:nobody", 0, 10, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(lines->len, ==, 0);
    g_ptr_array_unref(lines);
    /* Wallets and the platform keep no statement; bad names and limits are refused. */
    g_assert_null(encore_ledger_statement(l, "wallet:fan", 0, 10, &err));
    g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_NO_STATEMENT);
    g_clear_error(&err);
    g_assert_null(encore_ledger_statement(l, "platform:revenue", 0, 10, &err));
    g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_NO_STATEMENT);
    g_clear_error(&err);
    g_assert_null(encore_ledger_statement(l, "bank:x", 0, 10, &err));
    g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_UNKNOWN_ACCOUNT);
    g_clear_error(&err);
    g_assert_null(encore_ledger_statement(l, "earnings:bob", 0, 0, &err));
    g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_CONFIG);
    g_clear_error(&err);
    g_assert_null(encore_ledger_statement(l, "earnings:bob", 0, 1001, &err));
    g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_CONFIG);
    g_clear_error(&err);
    fx_free(f);
}

/* ---- faults and retries ---- */

static void test_transient_faults(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:fan", 10000);
    const encore_ledger_fault_point points[] = {ENCORE_LEDGER_FAULT_AT_BEGIN,
                                                ENCORE_LEDGER_FAULT_BEFORE_COMMIT,
                                                ENCORE_LEDGER_FAULT_AFTER_COMMIT};
    const encore_ledger_fault faults[] = {ENCORE_LEDGER_FAULT_BUSY, ENCORE_LEDGER_FAULT_DEADLOCK,
                                          ENCORE_LEDGER_FAULT_LOST_CONNECTION};
    int64_t expect = 10000;
    int n = 0;
    for (size_t p = 0; p < G_N_ELEMENTS(points); p++) {
        for (size_t k = 0; k < G_N_ELEMENTS(faults); k++) {
            char id[32];
            g_snprintf(id, sizeof(id), "tf-%zu-%zu", p, k);
            plan_set(&f->plan, points[p], faults[k], 3);
            encore_transfer_result r;
            g_assert_cmpint(move(l, id, "wallet:fan", "earnings:singer", 7, &r), ==,
                            ENCORE_LEDGER_OK);
            g_assert_cmpint(f->plan.injected, ==, 3);
            /* After a lost commit answer, the retry finds the transfer already there. */
            g_assert_cmpint(r.replayed, ==, points[p] == ENCORE_LEDGER_FAULT_AFTER_COMMIT);
            expect -= 7;
            n++;
            g_assert_cmpint(balance(l, "wallet:fan"), ==, expect);
        }
    }
    encore_ledger_stats st;
    encore_ledger_get_stats(l, &st);
    g_assert_cmpuint(st.retries, ==, 3 * (uint64_t)n);
    char *rows = testdb_query(f->db, "SELECT count(*) FROM ledger_transfers");
    g_assert_cmpint(g_ascii_strtoll(rows, NULL, 10), ==, n + 1);
    g_free(rows);
    assert_audit(l, TRUE, NULL);
    fx_free(f);
}

static void test_retries_exhausted(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    f->cfg.max_retries = 2;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:fan", 100);
    /* Never committed: a store error, and the same id later goes through once. */
    plan_set(&f->plan, ENCORE_LEDGER_FAULT_BEFORE_COMMIT, ENCORE_LEDGER_FAULT_BUSY, 1000);
    encore_transfer_result r;
    g_test_expect_message("encore-ledger", G_LOG_LEVEL_WARNING, "*failed after retries*");
    g_assert_cmpint(move(l, "x-1", "wallet:fan", "earnings:singer", 10, &r), ==,
                    ENCORE_LEDGER_STORE_ERROR);
    g_test_assert_expected_messages();
    g_assert_cmpint(f->plan.injected, ==, 3);
    g_assert_cmpstr(encore_ledger_status_name(r.status), ==, "store_error");
    plan_set(&f->plan, ENCORE_LEDGER_FAULT_BEFORE_COMMIT, ENCORE_LEDGER_FAULT_NONE, 0);
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 100);
    g_assert_cmpint(move(l, "x-1", "wallet:fan", "earnings:singer", 10, &r), ==, ENCORE_LEDGER_OK);
    g_assert_false(r.replayed);
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 90);
    /* Committed every time but the answer always lost: a store error now, and the retry learns
     * that it happened, once. */
    plan_set(&f->plan, ENCORE_LEDGER_FAULT_AFTER_COMMIT, ENCORE_LEDGER_FAULT_LOST_CONNECTION, 1000);
    g_test_expect_message("encore-ledger", G_LOG_LEVEL_WARNING, "*failed after retries*");
    g_assert_cmpint(move(l, "x-2", "wallet:fan", "earnings:singer", 10, &r), ==,
                    ENCORE_LEDGER_STORE_ERROR);
    g_test_assert_expected_messages();
    plan_set(&f->plan, ENCORE_LEDGER_FAULT_AFTER_COMMIT, ENCORE_LEDGER_FAULT_NONE, 0);
    g_assert_cmpint(move(l, "x-2", "wallet:fan", "earnings:singer", 10, &r), ==, ENCORE_LEDGER_OK);
    g_assert_true(r.replayed);
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 80);
    encore_ledger_stats st;
    encore_ledger_get_stats(l, &st);
    g_assert_cmpuint(st.store_errors, ==, 2);
    assert_audit(l, TRUE, NULL);
    fx_free(f);
}

static void test_fatal_isolated(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:fan", 100);
    tally t = {.ctx = g_main_context_new()};
    /* A batch of 5 fails once with a non-retryable error: each request is then run alone.
     * (The ledger thread is held in a warm-up batch while the 5 queue up.) */
    gate_arm(&f->plan);
    submit_move(l, "f-warm-up", 1, &t);
    gate_wait_entered(&f->plan);
    for (int i = 0; i < 5; i++) {
        char id[16];
        g_snprintf(id, sizeof(id), "f-%d", i);
        submit_move(l, id, 1, &t);
    }
    plan_set(&f->plan, ENCORE_LEDGER_FAULT_BEFORE_COMMIT, ENCORE_LEDGER_FAULT_FATAL, 1);
    f->plan.skip = 1; /* the warm-up batch commits */
    g_test_expect_message("encore-ledger", G_LOG_LEVEL_WARNING, "*batch of 5 request(s) failed*");
    gate_release(&f->plan);
    while (t.answered < 6)
        g_main_context_iteration(t.ctx, TRUE);
    g_test_assert_expected_messages();
    g_assert_cmpint(t.ok, ==, 6);
    g_assert_cmpint(f->plan.injected, ==, 1);
    encore_ledger_stats st;
    encore_ledger_get_stats(l, &st);
    g_assert_cmpuint(st.retries, ==, 0);
    g_assert_cmpuint(st.largest_batch, ==, 1); /* the batch of 5 never committed as one */
    g_assert_cmpuint(st.batches, ==, 7);
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 94);
    /* When every attempt fails, every request gets a store error and nothing moves. */
    plan_set(&f->plan, ENCORE_LEDGER_FAULT_AT_BEGIN, ENCORE_LEDGER_FAULT_FATAL, 1000);
    encore_transfer_result r;
    g_test_expect_message("encore-ledger", G_LOG_LEVEL_WARNING, "*batch of 1 request(s) failed*");
    g_assert_cmpint(move(l, "f-9", "wallet:fan", "earnings:singer", 1, &r), ==,
                    ENCORE_LEDGER_STORE_ERROR);
    g_test_assert_expected_messages();
    plan_set(&f->plan, ENCORE_LEDGER_FAULT_AT_BEGIN, ENCORE_LEDGER_FAULT_NONE, 0);
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 94);
    assert_audit(l, TRUE, NULL);
    fx_free(f);
    g_main_context_unref(t.ctx);
}

/* Balances are int64: a transfer that would overflow one is refused by the database (SQLite would
 * silently turn the sum into a float without its typeof CHECK), and fails alone. */
static unsigned overflow_warnings;
static void count_warning(const gchar *domain, GLogLevelFlags level, const gchar *message,
                          gpointer user_data)
{
    overflow_warnings++;
}

static void test_balance_overflow(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    GLogLevelFlags fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    guint handler = g_log_set_handler("encore-ledger", G_LOG_LEVEL_WARNING, count_warning, NULL);
    overflow_warnings = 0;
    enum { N = 9300 };
    tally t = {.ctx = g_main_context_new()};
    int store_errors = 0;
    for (int i = 0; i < N; i++) {
        char id[32];
        g_snprintf(id, sizeof(id), "big-%d", i);
        encore_transfer_req req;
        encore_leg legs[2];
        g_assert_cmpint(encore_transfer_move(&req, legs, id, "topup", "external:topups",
                                             "wallet:rich", ENCORE_LEDGER_MAX_AMOUNT),
                        ==, ENCORE_LEDGER_OK);
        encore_ledger_submit(l, &req, t.ctx, on_done, &t, NULL);
    }
    while (t.answered < N)
        g_main_context_iteration(t.ctx, TRUE);
    encore_ledger_stats st;
    encore_ledger_get_stats(l, &st);
    store_errors = (int)st.store_errors;
    g_log_remove_handler("encore-ledger", handler);
    g_log_set_always_fatal(fatal);
    /* INT64_MAX / 10^15 = 9223 fit. */
    g_assert_cmpint(t.ok, ==, 9223);
    g_assert_cmpint(store_errors, ==, N - 9223);
    g_assert_cmpuint(overflow_warnings, >=, N - 9223);
    g_assert_cmpint(balance(l, "wallet:rich"), ==, 9223 * ENCORE_LEDGER_MAX_AMOUNT);
    g_assert_cmpint(balance(l, "external:topups"), ==, -9223 * ENCORE_LEDGER_MAX_AMOUNT);
    assert_audit(l, TRUE, NULL);
    fx_free(f);
    g_main_context_unref(t.ctx);
}

/* ---- reads for the layers above: lookup, scan, asynchronous statements ---- */

static void assert_legs(const encore_ledger_record *r, const encore_leg *want, size_t n)
{
    g_assert_cmpuint(r->n_legs, ==, n);
    g_assert_true(n == 0 ? r->legs == NULL : r->legs != NULL);
    for (size_t i = 0; i < n; i++) {
        g_assert_cmpstr(r->legs[i].account, ==, want[i].account);
        g_assert_cmpint(r->legs[i].amount, ==, want[i].amount);
    }
}

/* The record of `id`, or NULL when unknown; the lookup itself must succeed. */
static encore_ledger_record *lookup(encore_ledger *l, const char *id)
{
    encore_ledger_record *rec = NULL;
    GError *err = NULL;
    g_assert_true(encore_ledger_lookup(l, id, &rec, &err));
    g_assert_no_error(err);
    return rec;
}

static void expect_lookup_error(encore_ledger *l, const char *id, encore_ledger_error code)
{
    encore_ledger_record *rec = (encore_ledger_record *)&rec; /* must be reset to NULL */
    GError *err = NULL;
    g_assert_false(encore_ledger_lookup(l, id, &rec, &err));
    g_assert_error(err, ENCORE_LEDGER_ERROR, (gint)code);
    g_clear_error(&err);
    g_assert_null(rec);
}

static void test_lookup(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    gint64 t0 = g_get_real_time();
    encore_transfer_result top, gift, refused, refused2;
    g_assert_cmpint(move(l, "top-1", "external:topups", "wallet:alice", 1000, &top), ==,
                    ENCORE_LEDGER_OK);
    /* Legs out of account order, metadata not canonical (spaces, key order, nested, UTF-8). */
    encore_leg legs[] = {{"wallet:alice", -300},
                         {"platform:revenue", 90},
                         {"earnings:bob", 150},
                         {"earnings:agent-1", 60}};
    encore_transfer_req req = {.id = "gift:alice:1",
                               .kind = "gift",
                               .metadata =
                                   "{ \"room\": \"r-1\", \"gift\": \"rose\", \"count\": 3,\n"
                                   "  \"note\": \"caf\\u00e9 \\\"x\\\"\", \"n\": -12345678901234,\n"
                                   "  \"list\": [1, {\"b\": 2, \"a\": 1}] }",
                               .legs = legs,
                               .n_legs = 4};
    const char *canonical = "{\"count\":3,\"gift\":\"rose\",\"list\":[1,{\"a\":1,\"b\":2}],"
                            "\"n\":-12345678901234,\"note\":\"caf\xc3\xa9 \\\"x\\\"\","
                            "\"room\":\"r-1\"}";
    g_assert_cmpint(encore_ledger_transfer_sync(l, &req, &gift), ==, ENCORE_LEDGER_OK);
    gint64 t1 = g_get_real_time();

    encore_ledger_record *rec = lookup(l, "gift:alice:1");
    g_assert_nonnull(rec);
    g_assert_cmpint(rec->status, ==, ENCORE_LEDGER_OK);
    g_assert_cmpint(rec->transfer_id, ==, gift.transfer_id);
    g_assert_cmpstr(rec->request_id, ==, "gift:alice:1");
    g_assert_cmpstr(rec->kind, ==, "gift");
    g_assert_cmpstr(rec->metadata, ==, canonical);
    g_assert_cmpint(rec->created_us, >=, t0);
    g_assert_cmpint(rec->created_us, <=, t1);
    const encore_leg sorted[] = {{"earnings:agent-1", 60},
                                 {"earnings:bob", 150},
                                 {"platform:revenue", 90},
                                 {"wallet:alice", -300}};
    assert_legs(rec, sorted, 4);
    /* The statement line of the same transfer says the same. */
    GError *err = NULL;
    GPtrArray *lines = encore_ledger_statement(l, "earnings:bob", 0, 10, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(lines->len, ==, 1);
    const encore_statement_line *line = g_ptr_array_index(lines, 0);
    g_assert_cmpint(line->transfer_id, ==, rec->transfer_id);
    g_assert_cmpint(line->created_us, ==, rec->created_us);
    g_assert_cmpstr(line->metadata, ==, canonical);
    g_ptr_array_unref(lines);
    encore_ledger_record_free(rec);

    rec = lookup(l, "top-1");
    g_assert_cmpint(rec->transfer_id, ==, top.transfer_id);
    g_assert_cmpstr(rec->kind, ==, "test");
    g_assert_null(rec->metadata);
    const encore_leg top_legs[] = {{"external:topups", -1000}, {"wallet:alice", 1000}};
    assert_legs(rec, top_legs, 2);
    encore_ledger_record_free(rec);

    /* A refusal is remembered with its kind and metadata, without legs or transfer id; with one
     * debit (the row is marked refused) and with two (the savepoint is rolled back). */
    g_assert_cmpint(move(l, "spend-big", "wallet:alice", "platform:revenue", 5000, &refused), ==,
                    ENCORE_LEDGER_INSUFFICIENT_FUNDS);
    rec = lookup(l, "spend-big");
    g_assert_cmpint(rec->status, ==, ENCORE_LEDGER_INSUFFICIENT_FUNDS);
    g_assert_cmpint(rec->transfer_id, ==, 0);
    g_assert_cmpstr(rec->kind, ==, "test");
    g_assert_null(rec->metadata);
    g_assert_cmpint(rec->created_us, >=, t0);
    assert_legs(rec, NULL, 0);
    encore_ledger_record_free(rec);
    encore_leg two_debits[] = {{"wallet:alice", -100}, {"earnings:bob", -1000}, {"escrow:x", 1100}};
    encore_transfer_req req2 = {
        .id = "multi-1", .kind = "multi", .metadata = "{\"k\":1}", .legs = two_debits, .n_legs = 3};
    g_assert_cmpint(encore_ledger_transfer_sync(l, &req2, &refused2), ==,
                    ENCORE_LEDGER_INSUFFICIENT_FUNDS);
    rec = lookup(l, "multi-1");
    g_assert_cmpint(rec->status, ==, ENCORE_LEDGER_INSUFFICIENT_FUNDS);
    g_assert_cmpint(rec->transfer_id, ==, 0);
    g_assert_cmpstr(rec->kind, ==, "multi");
    g_assert_cmpstr(rec->metadata, ==, "{\"k\":1}");
    assert_legs(rec, NULL, 0);
    encore_ledger_record_free(rec);

    /* Unknown: never used, or refused before the database (no trace). */
    g_assert_null(lookup(l, "never-used"));
    encore_leg zero[] = {{"wallet:alice", 0}, {"platform:revenue", 0}};
    encore_transfer_req bad = {.id = "bad-1", .kind = "test", .legs = zero, .n_legs = 2};
    encore_transfer_result r;
    g_assert_cmpint(encore_ledger_transfer_sync(l, &bad, &r), ==, ENCORE_LEDGER_INVALID);
    g_assert_null(lookup(l, "bad-1"));
    /* Malformed ids are refused. */
    char longest[ENCORE_LEDGER_ID_MAX + 2];
    memset(longest, 'a', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    expect_lookup_error(l, longest, ENCORE_LEDGER_ERROR_INVALID);
    longest[ENCORE_LEDGER_ID_MAX] = '\0';
    g_assert_null(lookup(l, longest)); /* 128 characters: well-formed */
    const char *malformed[] = {"", NULL, "has space", "semi;colon", "quote'"};
    for (size_t i = 0; i < G_N_ELEMENTS(malformed); i++)
        expect_lookup_error(l, malformed[i], ENCORE_LEDGER_ERROR_INVALID);

    /* Sixteen legs, amounts at the limit, back in account order. */
    encore_leg many[ENCORE_LEDGER_MAX_LEGS];
    char names[ENCORE_LEDGER_MAX_LEGS][32];
    many[0] = (encore_leg){"external:topups", -ENCORE_LEDGER_MAX_AMOUNT};
    for (int i = 1; i < 15; i++) {
        g_snprintf(names[i], sizeof(names[i]), "wallet:m-%02d", 15 - i);
        many[i] = (encore_leg){names[i], 1};
    }
    many[15] = (encore_leg){"escrow:big", ENCORE_LEDGER_MAX_AMOUNT - 14};
    encore_transfer_req big = {.id = "big-1", .kind = "topup", .legs = many, .n_legs = 16};
    g_assert_cmpint(encore_ledger_transfer_sync(l, &big, &r), ==, ENCORE_LEDGER_OK);
    rec = lookup(l, "big-1");
    encore_leg want[ENCORE_LEDGER_MAX_LEGS];
    want[0] = (encore_leg){"escrow:big", ENCORE_LEDGER_MAX_AMOUNT - 14};
    want[1] = (encore_leg){"external:topups", -ENCORE_LEDGER_MAX_AMOUNT};
    for (int i = 2; i < 16; i++) {
        g_snprintf(names[i - 2], sizeof(names[0]), "wallet:m-%02d", i - 1);
        want[i] = (encore_leg){names[i - 2], 1};
    }
    assert_legs(rec, want, 16);
    g_assert_cmpint(rec->transfer_id, ==, r.transfer_id);
    encore_ledger_record_free(rec);

    /* Asynchronously, answered on the caller's context, then destroyed. */
    GMainContext *ctx = g_main_context_new();
    async_lookup q[] = {
        {.id = "gift:alice:1"}, {.id = "spend-big"}, {.id = "never-used"}, {.id = "no way"}};
    for (size_t i = 0; i < G_N_ELEMENTS(q); i++) {
        q[i].ctx = ctx;
        encore_ledger_lookup_async(l, q[i].id, ctx, on_lookup, &q[i], on_lookup_destroy);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(q); i++) {
        while (!q[i].destroyed)
            g_main_context_iteration(ctx, TRUE);
        g_assert_cmpint(q[i].answered, ==, 1);
        g_assert_cmpint(q[i].destroyed, ==, 1);
        g_assert_true(q[i].on_owner);
    }
    g_assert_true(q[0].ok && q[0].found && !q[0].error);
    g_assert_cmpint(q[0].status, ==, ENCORE_LEDGER_OK);
    g_assert_cmpint(q[0].transfer_id, ==, gift.transfer_id);
    g_assert_cmpuint(q[0].n_legs, ==, 4);
    g_assert_cmpstr(q[0].metadata, ==, canonical);
    g_assert_true(q[1].ok && q[1].found && !q[1].error);
    g_assert_cmpint(q[1].status, ==, ENCORE_LEDGER_INSUFFICIENT_FUNDS);
    g_assert_cmpint(q[1].transfer_id, ==, 0);
    g_assert_cmpuint(q[1].n_legs, ==, 0);
    g_assert_true(q[2].ok && !q[2].found && !q[2].error);
    g_assert_false(q[3].ok);
    g_assert_false(q[3].found);
    g_assert_error(q[3].error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_INVALID);
    for (size_t i = 0; i < G_N_ELEMENTS(q); i++) {
        g_free(q[i].metadata);
        g_clear_error(&q[i].error);
    }
    /* A lookup queued behind a transfer sees it committed. */
    async_lookup after = {.ctx = ctx, .id = "late-1"};
    tally t = {.ctx = ctx};
    encore_transfer_req late;
    encore_leg late_legs[2];
    g_assert_cmpint(
        encore_transfer_move(&late, late_legs, "late-1", "gift", "wallet:alice", "earnings:bob", 7),
        ==, ENCORE_LEDGER_OK);
    encore_ledger_submit(l, &late, ctx, on_done, &t, NULL);
    encore_ledger_lookup_async(l, "late-1", ctx, on_lookup, &after, NULL);
    while (!after.answered || !t.answered)
        g_main_context_iteration(ctx, TRUE);
    g_assert_true(after.found);
    g_assert_cmpint(after.status, ==, ENCORE_LEDGER_OK);
    g_free(after.metadata);
    g_main_context_unref(ctx);
    assert_audit(l, TRUE, NULL);
    fx_free(f);
}

/* The canonical legs text: strict parsing. */
static void test_legs_text(void)
{
    encore_store_leg legs[] = {{.account = "earnings:bob", .amount = 30},
                               {.account = "wallet:alice", .amount = -30}};
    char *text = encore_store_legs_json(legs, 2);
    g_assert_cmpstr(text, ==, "[[\"earnings:bob\",30],[\"wallet:alice\",-30]]");
    encore_ledger_record rec = {0};
    g_assert_true(encore_store_legs_parse(text, strlen(text), &rec));
    const encore_leg want[] = {{"earnings:bob", 30}, {"wallet:alice", -30}};
    assert_legs(&rec, want, 2);
    for (size_t i = 0; i < rec.n_legs; i++)
        g_free((char *)rec.legs[i].account);
    g_free(rec.legs);
    g_free(text);
    const char *good[] = {
        "[[\"escrow:x\",1]]",
        "[[\"external:topups\",-1000000000000000],[\"wallet:a\",1000000000000000]]",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        encore_ledger_record r = {0};
        g_assert_true(encore_store_legs_parse(good[i], strlen(good[i]), &r));
        for (size_t k = 0; k < r.n_legs; k++)
            g_free((char *)r.legs[k].account);
        g_free(r.legs);
    }
    const char *bad[] = {
        "",
        "[]",
        "[[]]",
        "[[\"wallet:a\",1]",
        "[[\"wallet:a\",1]] ",
        " [[\"wallet:a\",1]]",
        "[[\"wallet:a\",1],]",
        "[[\"wallet:a\", 1]]",
        "[[\"wallet:a\",+1]]",
        "[[\"wallet:a\",01]]",
        "[[\"wallet:a\",0]]",
        "[[\"wallet:a\",-0]]",
        "[[\"wallet:a\",1.0]]",
        "[[\"wallet:a\",1e3]]",
        "[[\"wallet:a\",1000000000000001]]",
        "[[\"wallet:a\",-10000000000000000]]",
        "[[\"wallet:a\",99999999999999999999]]",
        "[[\"wallet:\",1]]",
        "[[\"bank:a\",1]]",
        "[[\"wallet:a b\",1]]",
        "[[\"wallet:\\u0061\",1]]",
        "[[\"wallet:b\",1],[\"wallet:a\",-1]]",
        "[[\"wallet:a\",1],[\"wallet:a\",-1]]",
        "[[\"wallet:a\",\"1\"]]",
        "[[\"wallet:a\",1,2]]",
        "[{\"wallet:a\":1}]",
        "[[\"wallet:a\",1]][[\"wallet:b\",1]]",
        "[[\"wallet:a\",-]]",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        encore_ledger_record r = {0};
        if (encore_store_legs_parse(bad[i], strlen(bad[i]), &r))
            g_error("accepted: %s", bad[i]);
        g_assert_null(r.legs);
        g_assert_cmpuint(r.n_legs, ==, 0);
    }
    /* Seventeen pairs: one too many. */
    GString *many = g_string_new("[");
    for (int i = 0; i < 17; i++)
        g_string_append_printf(many, "%s[\"wallet:a%02d\",1]", i ? "," : "", i);
    g_string_append_c(many, ']');
    encore_ledger_record r = {0};
    g_assert_false(encore_store_legs_parse(many->str, many->len, &r));
    /* A NUL inside is not the end. */
    g_assert_false(encore_store_legs_parse("[[\"wallet:a\",1]]\0", 17, &r));
    g_assert_false(encore_store_legs_parse("[[\"wal\0let:a\",1]]", 17, &r));
    g_string_free(many, TRUE);
}

/* One expected transfer of the scan test. */
typedef struct {
    char id[48];
    char kind[24];
    char metadata[24]; /* "" for none */
    encore_leg legs[4];
    char accounts[4][40];
    size_t n_legs;
    int64_t transfer_id;
    bool refused;
} scan_model;

/* Builds request i: gifts (4 legs), VIP purchases, withdrawal holds and payouts, top-ups, and
 * every 10th a gift from an empty wallet, refused. Legs are given in account order. */
static void scan_request(scan_model *m, int i)
{
    memset(m, 0, sizeof(*m));
    g_snprintf(m->id, sizeof(m->id), "scan-%d", i);
    if (i % 3 == 0)
        g_snprintf(m->metadata, sizeof(m->metadata), "{\"i\":%d}", i);
    int64_t amount = 1 + i % 97;
    const char *a[4] = {0};
    int64_t v[4] = {0};
    switch (i % 10) {
    case 0:
        g_strlcpy(m->kind, "vip", sizeof(m->kind));
        a[0] = "platform:revenue", v[0] = amount, a[1] = "wallet:fan", v[1] = -amount;
        break;
    case 1:
        g_strlcpy(m->kind, "withdrawal.hold", sizeof(m->kind));
        a[0] = "earnings:s", v[0] = -amount, a[1] = "escrow:wd", v[1] = amount;
        break;
    case 2:
        g_strlcpy(m->kind, "withdrawal.pay", sizeof(m->kind));
        a[0] = "earnings:s", v[0] = -amount, a[1] = "external:payouts", v[1] = amount;
        break;
    case 3:
        g_strlcpy(m->kind, "topup", sizeof(m->kind));
        a[0] = "external:topups", v[0] = -amount, a[1] = "wallet:fan", v[1] = amount;
        break;
    case 4:
        g_strlcpy(m->kind, "gift", sizeof(m->kind));
        a[0] = "earnings:s", v[0] = amount, a[1] = "wallet:empty", v[1] = -amount;
        m->refused = true;
        break;
    default:
        g_strlcpy(m->kind, "gift", sizeof(m->kind));
        a[0] = "earnings:a", v[0] = 1, a[1] = "earnings:s", v[1] = amount;
        a[2] = "platform:revenue", v[2] = 2, a[3] = "wallet:fan", v[3] = -amount - 3;
        break;
    }
    for (size_t k = 0; k < 4 && a[k]; k++) {
        g_strlcpy(m->accounts[k], a[k], sizeof(m->accounts[k]));
        m->legs[k] = (encore_leg){m->accounts[k], v[k]};
        m->n_legs = k + 1;
    }
}

typedef struct {
    GMainContext *ctx;
    scan_model *models;
    int answered;
    int failed;
} scan_run;

typedef struct {
    scan_run *run;
    int index;
} scan_ticket;

static void on_scan_done(const encore_transfer_result *r, void *user_data)
{
    scan_ticket *t = user_data;
    scan_model *m = &t->run->models[t->index];
    t->run->answered++;
    encore_ledger_status want = m->refused ? ENCORE_LEDGER_INSUFFICIENT_FUNDS : ENCORE_LEDGER_OK;
    if (r->status != want)
        t->run->failed++;
    m->transfer_id = r->transfer_id;
}

/* Pages through scan(prefix) with `limit` and checks the result against the model. */
static void check_scan(encore_ledger *l, scan_model *models, int n, const char *prefix,
                       unsigned limit)
{
    int next = 0; /* index of the next model the scan must return */
    int64_t after = 0;
    size_t pages = 0;
    for (;;) {
        GError *err = NULL;
        GPtrArray *page = encore_ledger_scan(l, prefix, after, limit, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(page->len, <=, limit);
        pages++;
        for (guint k = 0; k < page->len; k++) {
            const encore_ledger_record *rec = g_ptr_array_index(page, k);
            while (next < n && (models[next].refused ||
                                !g_str_has_prefix(models[next].kind, prefix ? prefix : "")))
                next++;
            g_assert_cmpint(next, <, n);
            const scan_model *m = &models[next++];
            g_assert_cmpint(rec->transfer_id, ==, m->transfer_id);
            g_assert_cmpint(rec->transfer_id, >, after);
            g_assert_cmpint(rec->status, ==, ENCORE_LEDGER_OK);
            g_assert_cmpstr(rec->request_id, ==, m->id);
            g_assert_cmpstr(rec->kind, ==, m->kind);
            if (m->metadata[0])
                g_assert_cmpstr(rec->metadata, ==, m->metadata);
            else
                g_assert_null(rec->metadata);
            g_assert_cmpint(rec->created_us, >, 0);
            assert_legs(rec, m->legs, m->n_legs);
            after = rec->transfer_id;
        }
        bool end = page->len == 0;
        g_ptr_array_unref(page);
        if (end)
            break;
    }
    while (next < n &&
           (models[next].refused || !g_str_has_prefix(models[next].kind, prefix ? prefix : "")))
        next++;
    g_assert_cmpint(next, ==, n); /* nothing left out */
    g_assert_cmpuint(pages, >=, 1);
}

static GPtrArray *scan(encore_ledger *l, const char *prefix, int64_t after, unsigned limit)
{
    GError *err = NULL;
    GPtrArray *page = encore_ledger_scan(l, prefix, after, limit, &err);
    g_assert_no_error(err);
    g_assert_nonnull(page);
    return page;
}

static void expect_scan_error(encore_ledger *l, const char *prefix, unsigned limit,
                              encore_ledger_error code)
{
    GError *err = NULL;
    g_assert_null(encore_ledger_scan(l, prefix, 0, limit, &err));
    g_assert_error(err, ENCORE_LEDGER_ERROR, (gint)code);
    g_clear_error(&err);
}

static void test_scan(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    enum { N = 3000 };
    /* Funds first (kind "seed", in no prefix below but ""). */
    enum { MORE = 10 }; /* requests added after a gap in the ids */
    scan_model *models = g_new0(scan_model, N + 2 + MORE);
    /* Legs in account order, as the scan returns them. */
    const char *seeds[2][2] = {{"external:topups", "wallet:fan"},
                               {"earnings:s", "external:topups"}};
    const int64_t seed_amounts[2][2] = {{-1000000, 1000000}, {1000000, -1000000}};
    for (int i = 0; i < 2; i++) {
        scan_model *m = &models[i];
        g_snprintf(m->id, sizeof(m->id), "seed-%d", i);
        g_strlcpy(m->kind, "seed", sizeof(m->kind));
        g_strlcpy(m->accounts[0], seeds[i][0], sizeof(m->accounts[0]));
        g_strlcpy(m->accounts[1], seeds[i][1], sizeof(m->accounts[1]));
        m->legs[0] = (encore_leg){m->accounts[0], seed_amounts[i][0]};
        m->legs[1] = (encore_leg){m->accounts[1], seed_amounts[i][1]};
        m->n_legs = 2;
        encore_transfer_req req = {.id = m->id, .kind = m->kind, .legs = m->legs, .n_legs = 2};
        encore_transfer_result r;
        g_assert_cmpint(encore_ledger_transfer_sync(l, &req, &r), ==, ENCORE_LEDGER_OK);
        m->transfer_id = r.transfer_id;
    }
    /* Then N requests, submitted at once (group commit keeps this quick). */
    scan_run run = {.ctx = g_main_context_new(), .models = models};
    scan_ticket *tickets = g_new0(scan_ticket, N + 2);
    for (int i = 2; i < N + 2; i++) {
        scan_request(&models[i], i);
        tickets[i] = (scan_ticket){&run, i};
        encore_transfer_req req = {.id = models[i].id,
                                   .kind = models[i].kind,
                                   .metadata = models[i].metadata[0] ? models[i].metadata : NULL,
                                   .legs = models[i].legs,
                                   .n_legs = models[i].n_legs};
        encore_ledger_submit(l, &req, run.ctx, on_scan_done, &tickets[i], NULL);
    }
    while (run.answered < N)
        g_main_context_iteration(run.ctx, TRUE);
    g_assert_cmpint(run.failed, ==, 0);
    for (int i = 1; i < N + 2; i++)
        if (!models[i].refused)
            g_assert_cmpint(models[i].transfer_id, >, models[i - 1].transfer_id);

    /* Every prefix, paged, equals the model exactly. */
    const char *prefixes[] = {"",    "gift",  "withdrawal.", "withdrawal", "w",
                              "vip", "topup", "t",           "s",          "nomatch"};
    for (size_t i = 0; i < G_N_ELEMENTS(prefixes); i++)
        check_scan(l, models, N + 2, prefixes[i], 250);
    check_scan(l, models, N + 2, NULL, ENCORE_LEDGER_SCAN_MAX);
    check_scan(l, models, N + 2, "withdrawal.pay", 1000);
    check_scan(l, models, N + 2, "vip", 7);

    /* after_id boundaries. */
    int k = 1234;
    while (models[k].refused)
        k++;
    GPtrArray *page = scan(l, "", models[k].transfer_id - 1, 1);
    g_assert_cmpuint(page->len, ==, 1);
    g_assert_cmpstr(((encore_ledger_record *)g_ptr_array_index(page, 0))->request_id, ==,
                    models[k].id);
    g_ptr_array_unref(page);
    page = scan(l, "", models[k].transfer_id, 1);
    int k2 = k + 1;
    while (models[k2].refused)
        k2++;
    g_assert_cmpstr(((encore_ledger_record *)g_ptr_array_index(page, 0))->request_id, ==,
                    models[k2].id);
    g_ptr_array_unref(page);
    page = scan(l, "", -5, 2);
    g_assert_cmpuint(page->len, ==, 2);
    g_assert_cmpstr(((encore_ledger_record *)g_ptr_array_index(page, 0))->request_id, ==, "seed-0");
    g_ptr_array_unref(page);
    int last = N + 1;
    while (models[last].refused)
        last--;
    page = scan(l, "", models[last].transfer_id, ENCORE_LEDGER_SCAN_MAX);
    g_assert_cmpuint(page->len, ==, 0);
    g_ptr_array_unref(page);
    page = scan(l, "", models[last].transfer_id - 1, ENCORE_LEDGER_SCAN_MAX);
    g_assert_cmpuint(page->len, ==, 1);
    g_ptr_array_unref(page);
    page = scan(l, "", INT64_MAX, 10);
    g_assert_cmpuint(page->len, ==, 0);
    g_ptr_array_unref(page);
    /* A 32-character prefix is well-formed (and matches nothing here). */
    page = scan(l, "abcdefghijklmnopqrstuvwxyz-._012", 0, 10);
    g_assert_cmpuint(page->len, ==, 0);
    g_ptr_array_unref(page);

    /* Arguments refused. */
    expect_scan_error(l, "", 0, ENCORE_LEDGER_ERROR_CONFIG);
    expect_scan_error(l, "", ENCORE_LEDGER_SCAN_MAX + 1, ENCORE_LEDGER_ERROR_CONFIG);
    expect_scan_error(l, "Gift", 10, ENCORE_LEDGER_ERROR_INVALID);
    expect_scan_error(l, "gift%", 10, ENCORE_LEDGER_ERROR_INVALID);
    expect_scan_error(l, "gift'", 10, ENCORE_LEDGER_ERROR_INVALID);
    expect_scan_error(l, "abcdefghijklmnopqrstuvwxyz-._0123", 10, ENCORE_LEDGER_ERROR_INVALID);

    /* Ids with a gap of many times a page (PostgreSQL sequences have gaps, e.g. after a
     * rollback): the scan crosses it. */
    if (f->db->pg)
        expect_sql(f->db,
                   "SELECT setval('ledger_transfers_id_seq', "
                   "(SELECT max(id) FROM ledger_transfers) + 100000)",
                   TRUE);
    for (int i = N + 2; i < N + 2 + MORE; i++) {
        scan_request(&models[i], 10 * i + (i % 2 ? 0 : 5)); /* a VIP purchase or a gift */
        g_snprintf(models[i].id, sizeof(models[i].id), "more-%d", i);
        encore_transfer_req req = {.id = models[i].id,
                                   .kind = models[i].kind,
                                   .metadata = models[i].metadata[0] ? models[i].metadata : NULL,
                                   .legs = models[i].legs,
                                   .n_legs = models[i].n_legs};
        encore_transfer_result r;
        g_assert_cmpint(encore_ledger_transfer_sync(l, &req, &r), ==, ENCORE_LEDGER_OK);
        models[i].transfer_id = r.transfer_id;
    }
    if (f->db->pg)
        g_assert_cmpint(models[N + 2].transfer_id, >, models[last].transfer_id + 100000);
    check_scan(l, models, N + 2 + MORE, "", 3);
    check_scan(l, models, N + 2 + MORE, "", ENCORE_LEDGER_SCAN_MAX);
    check_scan(l, models, N + 2 + MORE, "withdrawal.", 100);
    page = scan(l, "", models[last].transfer_id, 5);
    g_assert_cmpuint(page->len, ==, 5);
    g_assert_cmpstr(((encore_ledger_record *)g_ptr_array_index(page, 0))->request_id, ==,
                    models[N + 2].id);
    g_ptr_array_unref(page);

    /* What the scan returns adds up to the balances. */
    GHashTable *sums = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    int64_t after = 0;
    for (;;) {
        page = scan(l, "", after, 500);
        for (guint i = 0; i < page->len; i++) {
            const encore_ledger_record *rec = g_ptr_array_index(page, i);
            for (size_t j = 0; j < rec->n_legs; j++) {
                int64_t *sum = g_hash_table_lookup(sums, rec->legs[j].account);
                if (!sum) {
                    sum = g_new0(int64_t, 1);
                    g_hash_table_insert(sums, g_strdup(rec->legs[j].account), sum);
                }
                *sum += rec->legs[j].amount;
            }
            after = rec->transfer_id;
        }
        bool end = page->len == 0;
        g_ptr_array_unref(page);
        if (end)
            break;
    }
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, sums);
    while (g_hash_table_iter_next(&it, &key, &value))
        g_assert_cmpint(balance(l, key), ==, *(int64_t *)value);
    g_assert_cmpint(balance(l, "wallet:empty"), ==, 0);
    g_hash_table_destroy(sums);
    assert_audit(l, TRUE, NULL);
    g_main_context_unref(run.ctx);
    g_free(tickets);
    g_free(models);
    fx_free(f);
}

static void statement_async_wait(encore_ledger *l, const char *account, int64_t before,
                                 unsigned limit, async_statement *a)
{
    a->done = false;
    encore_ledger_statement_async(l, account, before, limit, a->ctx, on_statement, a, NULL);
    while (!a->done)
        g_main_context_iteration(a->ctx, TRUE);
    g_assert_true(a->on_owner);
}

static void test_statement_async(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:fan", 100000);
    for (int i = 0; i < 40; i++) {
        char id[32], meta[32];
        g_snprintf(id, sizeof(id), "g-%d", i);
        g_snprintf(meta, sizeof(meta), "{\"n\":%d}", i);
        encore_leg legs[] = {{"wallet:fan", -(100 + i)},
                             {"earnings:bob", 60 + i},
                             {"earnings:agent", 10},
                             {"platform:revenue", 30}};
        encore_transfer_req req = {.id = id,
                                   .kind = i % 2 ? "gift" : "tip",
                                   .metadata = i % 5 ? meta : NULL,
                                   .legs = legs,
                                   .n_legs = 4};
        encore_transfer_result r;
        g_assert_cmpint(encore_ledger_transfer_sync(l, &req, &r), ==, ENCORE_LEDGER_OK);
        if (i % 7 == 0) {
            g_snprintf(id, sizeof(id), "wd-%d", i);
            g_assert_cmpint(move(l, id, "earnings:bob", "escrow:wd", 20, NULL), ==,
                            ENCORE_LEDGER_OK);
        }
    }
    async_statement a = {.ctx = g_main_context_new()};
    /* Page through both ways at once: the same lines, field by field. */
    int64_t before = 0;
    size_t total = 0;
    for (;;) {
        GError *err = NULL;
        GPtrArray *sync = encore_ledger_statement(l, "earnings:bob", before, 7, &err);
        g_assert_no_error(err);
        statement_async_wait(l, "earnings:bob", before, 7, &a);
        g_assert_true(a.ok);
        g_assert_no_error(a.error);
        g_assert_cmpuint(a.lines->len, ==, sync->len);
        for (guint i = 0; i < sync->len; i++) {
            const encore_statement_line *x = g_ptr_array_index(sync, i);
            const encore_statement_line *y = g_ptr_array_index(a.lines, i);
            g_assert_cmpint(x->transfer_id, ==, y->transfer_id);
            g_assert_cmpint(x->amount, ==, y->amount);
            g_assert_cmpint(x->created_us, ==, y->created_us);
            g_assert_cmpstr(x->request_id, ==, y->request_id);
            g_assert_cmpstr(x->kind, ==, y->kind);
            g_assert_cmpstr(x->metadata, ==, y->metadata);
            if (before)
                g_assert_cmpint(x->transfer_id, <, before);
            before = x->transfer_id;
        }
        total += sync->len;
        bool end = sync->len == 0;
        g_ptr_array_unref(sync);
        g_ptr_array_unref(a.lines);
        a.lines = NULL;
        if (end)
            break;
    }
    g_assert_cmpuint(total, ==, 40 + 6);
    /* The array is the caller's to keep once referenced: still valid after more calls. */
    statement_async_wait(l, "earnings:agent", 0, 1000, &a);
    GPtrArray *kept = a.lines;
    statement_async_wait(l, "escrow:wd", 0, 1000, &a);
    g_assert_cmpuint(kept->len, ==, 40);
    g_assert_cmpuint(a.lines->len, ==, 6);
    g_assert_cmpint(((encore_statement_line *)g_ptr_array_index(kept, 0))->amount, ==, 10);
    g_ptr_array_unref(kept);
    g_ptr_array_unref(a.lines);
    /* Errors come on the context too. */
    struct {
        const char *account;
        unsigned limit;
        encore_ledger_error code;
    } errors[] = {
        {"wallet:fan", 10, ENCORE_LEDGER_ERROR_NO_STATEMENT},
        {"platform:revenue", 10, ENCORE_LEDGER_ERROR_NO_STATEMENT},
        {"bank:x", 10, ENCORE_LEDGER_ERROR_UNKNOWN_ACCOUNT},
        {NULL, 10, ENCORE_LEDGER_ERROR_UNKNOWN_ACCOUNT},
        {"earnings:bob", 0, ENCORE_LEDGER_ERROR_CONFIG},
        {"earnings:bob", 1001, ENCORE_LEDGER_ERROR_CONFIG},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(errors); i++) {
        a.lines = NULL;
        statement_async_wait(l, errors[i].account, 0, errors[i].limit, &a);
        g_assert_false(a.ok);
        g_assert_null(a.lines);
        g_assert_error(a.error, ENCORE_LEDGER_ERROR, (gint)errors[i].code);
        g_clear_error(&a.error);
    }
    g_main_context_unref(a.ctx);
    fx_free(f);
}

/* Many ids in one batch and across batches, replayed, conflicting and looked up: with
 * "sqlite-collide" every id shares its key with dozens of others. */
static void test_many_ids(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-0", "wallet:fan", 1000000);
    enum { N = 200 };
    tally t = {.ctx = g_main_context_new()};
    for (int round = 0; round < 2; round++) {
        /* Round 0 stores them (one batch); round 1 replays them, interleaved with conflicts. */
        gate_arm(&f->plan);
        submit_move(l, round ? "gate-1" : "gate-0", 1, &t);
        gate_wait_entered(&f->plan);
        for (int i = 0; i < N; i++) {
            char id[32];
            g_snprintf(id, sizeof(id), "many-%d", i);
            submit_move(l, id, 1 + i, &t);
        }
        gate_release(&f->plan);
        while (t.answered < (round + 1) * (N + 1))
            g_main_context_iteration(t.ctx, TRUE);
    }
    g_assert_cmpint(t.ok, ==, 2 * (N + 1));
    encore_ledger_stats st;
    encore_ledger_get_stats(l, &st);
    g_assert_cmpuint(st.transfers, ==, 1 + N + 2);
    g_assert_cmpuint(st.replays, ==, N);
    encore_transfer_result r;
    for (int i = 0; i < N; i += 7) {
        char id[32];
        g_snprintf(id, sizeof(id), "many-%d", i);
        g_assert_cmpint(move(l, id, "wallet:fan", "earnings:singer", 2 + i, &r), ==,
                        ENCORE_LEDGER_IDEMPOTENCY_CONFLICT);
        encore_ledger_record *rec = lookup(l, id);
        g_assert_nonnull(rec);
        g_assert_cmpstr(rec->request_id, ==, id);
        g_assert_cmpint(rec->legs[0].amount, ==, 1 + i); /* earnings:singer */
        encore_ledger_record_free(rec);
        g_snprintf(id, sizeof(id), "absent-%d", i);
        g_assert_null(lookup(l, id));
    }
    g_assert_cmpint(balance(l, "earnings:singer"), ==, N * (N + 1) / 2 + 2);
    assert_audit(l, TRUE, NULL);
    encore_ledger_close(l);
    l = fx_open(f);
    encore_transfer_req req;
    encore_leg legs[2];
    g_assert_cmpint(
        encore_transfer_move(&req, legs, "many-3", "gift", "wallet:fan", "earnings:singer", 4), ==,
        ENCORE_LEDGER_OK);
    g_assert_cmpint(encore_ledger_transfer_sync(l, &req, &r), ==, ENCORE_LEDGER_OK);
    g_assert_true(r.replayed);
    assert_audit(l, TRUE, NULL);
    fx_free(f);
    g_main_context_unref(t.ctx);
}

/* SQLite syncs committed batches on the syncer thread. When a sync fails, nothing committed
 * since is acknowledged, the ledger answers everything with store_error, and a reopen finds what
 * reached the disk. */
static unsigned sync_criticals;
static void count_critical(const gchar *domain, GLogLevelFlags level, const gchar *message,
                           gpointer user_data)
{
    __atomic_fetch_add(&sync_criticals, 1, __ATOMIC_RELAXED);
}

static void test_sync_failure(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:fan", 100);
    GLogLevelFlags fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK);
    guint handler = g_log_set_handler("encore-ledger", G_LOG_LEVEL_CRITICAL, count_critical, NULL);
    sync_criticals = 0;
    plan_set(&f->plan, ENCORE_LEDGER_FAULT_AT_SYNC, ENCORE_LEDGER_FAULT_FATAL, 1);
    encore_transfer_result r;
    g_assert_cmpint(move(l, "g-1", "wallet:fan", "earnings:singer", 10, &r), ==,
                    ENCORE_LEDGER_STORE_ERROR);
    g_assert_cmpint(r.transfer_id, ==, 0);
    g_assert_cmpint(f->plan.injected, ==, 1);
    /* Stopped: later requests and reads fail too, without a sync being tried again. */
    g_assert_cmpint(move(l, "g-2", "wallet:fan", "earnings:singer", 10, &r), ==,
                    ENCORE_LEDGER_STORE_ERROR);
    expect_lookup_error(l, "g-1", ENCORE_LEDGER_ERROR_STORE);
    GError *err = NULL;
    int64_t v = 0;
    g_assert_false(encore_ledger_balance(l, "wallet:fan", &v, &err));
    g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE);
    g_clear_error(&err);
    g_assert_cmpint(f->plan.injected, ==, 1);
    g_assert_cmpuint(sync_criticals, ==, 1);
    g_log_remove_handler("encore-ledger", handler);
    g_log_set_always_fatal(fatal);
    /* Reopened, the ledger holds what was committed (g-1 reached the page cache here; after a
     * crash it might not have), and retries with the same ids learn the truth. */
    encore_ledger_close(l);
    l = fx_open(f);
    g_assert_cmpint(move(l, "g-1", "wallet:fan", "earnings:singer", 10, &r), ==, ENCORE_LEDGER_OK);
    g_assert_true(r.replayed);
    g_assert_cmpint(move(l, "g-2", "wallet:fan", "earnings:singer", 10, &r), ==, ENCORE_LEDGER_OK);
    g_assert_false(r.replayed); /* never run: the ledger had stopped */
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 80);
    assert_audit(l, TRUE, NULL);
    fx_free(f);
}

/* ---- persistence, schema, audit ---- */

static void test_reopen(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    encore_transfer_result first, again;
    topup(l, "top-1", "wallet:fan", 100);
    g_assert_cmpint(move(l, "r-1", "wallet:fan", "earnings:singer", 60, &first), ==,
                    ENCORE_LEDGER_OK);
    encore_ledger_close(l);
    l = fx_open(f);
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 40);
    g_assert_cmpint(move(l, "r-1", "wallet:fan", "earnings:singer", 60, &again), ==,
                    ENCORE_LEDGER_OK);
    g_assert_true(again.replayed);
    g_assert_cmpint(again.transfer_id, ==, first.transfer_id);
    g_assert_cmpint(balance(l, "wallet:fan"), ==, 40);
    assert_audit(l, TRUE, NULL);
    fx_free(f);
}

static void test_open_errors(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    GError *err = NULL;
    const char *bad[] = {"mysql:x", "sqlite:", "sqlite", "", "postgresql:"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        encore_ledger_config c = {.backend = bad[i]};
        g_assert_null(encore_ledger_open(&c, &err));
        g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_CONFIG);
        g_clear_error(&err);
    }
    g_assert_null(encore_ledger_open(NULL, &err));
    g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_CONFIG);
    g_clear_error(&err);

    /* open_existing on an empty store: no schema. */
    if (!f->db->pg)
        g_assert_true(g_file_set_contents(f->db->path, "", 0, NULL));
    f->cfg.open_existing = true;
    g_assert_null(encore_ledger_open(&f->cfg, &err));
    g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_SCHEMA);
    g_clear_error(&err);
    f->cfg.open_existing = false;

    /* A schema newer than the code is refused. */
    encore_ledger_close(fx_open(f));
    f->ledger = NULL;
    char *msg = NULL;
    g_assert_true(testdb_exec(f->db, "UPDATE ledger_schema_version SET version = 99", &msg));
    g_assert_null(encore_ledger_open(&f->cfg, &err));
    g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_SCHEMA);
    g_clear_error(&err);
    g_assert_true(testdb_exec(f->db, "UPDATE ledger_schema_version SET version = 2", &msg));
    f->cfg.open_existing = true;
    fx_open(f);
    fx_free(f);

    if (strcmp(kind, "sqlite") == 0) {
        encore_ledger_config c = {.backend = "sqlite:/nonexistent-dir/x.db"};
        g_assert_null(encore_ledger_open(&c, &err));
        g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE);
        g_clear_error(&err);
    } else {
        encore_ledger_config c = {.backend = "postgresql:host=/nonexistent port=1 "
                                             "connect_timeout=1"};
        g_assert_null(encore_ledger_open(&c, &err));
        g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE);
        g_clear_error(&err);
    }
}

static void test_audit_detects_corruption(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    encore_ledger *l = fx_open(f);
    topup(l, "top-1", "wallet:alice", 100);
    g_assert_cmpint(move(l, "gift-1", "wallet:alice", "earnings:bob", 40, NULL), ==,
                    ENCORE_LEDGER_OK);
    assert_audit(l, TRUE, "2 transfers applied");

    /* The database itself refuses negative balances and negative-allowed wallets. */
    expect_sql(f->db, "UPDATE ledger_accounts SET balance = -1 WHERE name = 'wallet:alice'", FALSE);
    expect_sql(f->db,
               "UPDATE ledger_accounts SET allow_negative = (1 = 1) WHERE name = 'wallet:alice'",
               FALSE);
    expect_sql(f->db,
               "INSERT INTO ledger_postings (transfer_id, account, amount) "
               "SELECT id, 'earnings:bob', 0 FROM ledger_transfers WHERE request_id = 'top-1'",
               FALSE);

    /* A balance that no longer matches its legs. */
    expect_sql(f->db,
               "UPDATE ledger_accounts SET balance = balance + 5 WHERE name = 'wallet:alice'",
               TRUE);
    assert_audit(l, FALSE, "account wallet:alice has balance 65 but its legs sum to 60");
    expect_sql(f->db,
               "UPDATE ledger_accounts SET balance = balance - 5 WHERE name = 'wallet:alice'",
               TRUE);
    assert_audit(l, TRUE, NULL);

    /* A transfer whose legs no longer sum to zero (its statement posting no longer matches). */
    const char *gift_legs = "[[\"earnings:bob\",40],[\"wallet:alice\",-40]]";
    char *stored = testdb_query(f->db, "SELECT legs FROM ledger_transfers "
                                       "WHERE request_id = 'gift-1'");
    g_assert_cmpstr(stored, ==, gift_legs);
    g_free(stored);
    expect_sql(f->db,
               "UPDATE ledger_transfers SET legs = '[[\"earnings:bob\",41],"
               "[\"wallet:alice\",-40]]' WHERE request_id = 'gift-1'",
               TRUE);
    assert_audit(l, FALSE, "(gift-1) has legs summing to 1");
    assert_audit(l, FALSE, "on earnings:bob (40) matches no leg of an applied transfer");
    /* Legs that are not canonical. */
    const char *malformed[] = {
        "[[\"earnings:bob\",40],[\"wallet:alice\",-40]",
        "[[\"earnings:bob\",40]]",
        "[[\"wallet:alice\",-40],[\"earnings:bob\",40]]", /* out of order (SQLite only) */
        "[[\"earnings:bob\",40],[\"earnings:bob\",-40]]",
        "[[\"earnings:bob\",40.0],[\"wallet:alice\",-40]]",
        "[[\"earnings:bob\", 40],[\"wallet:alice\",-40]]",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(malformed); i++) {
        char *sql = g_strdup_printf("UPDATE ledger_transfers SET legs = '%s' "
                                    "WHERE request_id = 'gift-1'",
                                    malformed[i]);
        expect_sql(f->db, sql, TRUE);
        g_free(sql);
        if (!f->db->pg || i != 2)
            assert_audit(l, FALSE, "(gift-1) has malformed legs");
        /* Reading it back fails rather than return wrong legs. */
        encore_ledger_record *rec = NULL;
        GError *err = NULL;
        g_assert_false(encore_ledger_lookup(l, "gift-1", &rec, &err));
        g_assert_error(err, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE);
        g_clear_error(&err);
        g_assert_null(rec);
    }
    char *sql = g_strdup_printf("UPDATE ledger_transfers SET legs = '%s' "
                                "WHERE request_id = 'gift-1'",
                                gift_legs);
    expect_sql(f->db, sql, TRUE);
    g_free(sql);
    assert_audit(l, TRUE, NULL);

    /* A lost statement posting, then a stray one. */
    expect_sql(f->db, "DELETE FROM ledger_postings WHERE account = 'earnings:bob'", TRUE);
    assert_audit(l, FALSE, "on earnings:bob has no statement posting");
    expect_sql(f->db,
               "INSERT INTO ledger_postings (transfer_id, account, amount) "
               "SELECT id, 'earnings:bob', 40 FROM ledger_transfers WHERE request_id = 'gift-1'",
               TRUE);
    assert_audit(l, TRUE, NULL);
    expect_sql(f->db,
               "INSERT INTO ledger_postings (transfer_id, account, amount) "
               "SELECT id, 'escrow:x', 40 FROM ledger_transfers WHERE request_id = 'gift-1'",
               TRUE);
    assert_audit(l, FALSE, "on escrow:x (40) matches no leg of an applied transfer");
    expect_sql(f->db, "DELETE FROM ledger_postings WHERE account = 'escrow:x'", TRUE);

    /* A remembered refusal that grew legs. */
    g_assert_cmpint(move(l, "gift-2", "wallet:alice", "earnings:bob", 1000, NULL), ==,
                    ENCORE_LEDGER_INSUFFICIENT_FUNDS);
    assert_audit(l, TRUE, "1 refused");
    expect_sql(f->db,
               "UPDATE ledger_transfers SET legs = '[[\"earnings:bob\",1000],"
               "[\"wallet:alice\",-1000]]' WHERE request_id = 'gift-2'",
               TRUE);
    assert_audit(l, FALSE, "refused request");
    expect_sql(f->db, "UPDATE ledger_transfers SET legs = NULL WHERE request_id = 'gift-2'", TRUE);

    if (!f->db->pg) {
        /* SQLite finds requests by key: a row moved off its run of keys is out of reach. */
        char *key = testdb_query(f->db, "SELECT request_key FROM ledger_transfers "
                                        "WHERE request_id = 'gift-1'");
        g_assert_nonnull(key);
        expect_sql(f->db,
                   "UPDATE ledger_transfers SET request_key = 4611686018427387904 "
                   "WHERE request_id = 'gift-1'",
                   TRUE);
        assert_audit(l, FALSE, "request gift-1 (transfer ");
        assert_audit(l, FALSE, "is stored at key 4611686018427387904, out of a lookup's reach");
        g_assert_null(lookup(l, "gift-1"));
        char *restore = g_strdup_printf("UPDATE ledger_transfers SET request_key = %s "
                                        "WHERE request_id = 'gift-1'",
                                        key);
        expect_sql(f->db, restore, TRUE);
        g_free(restore);
        g_free(key);
        assert_audit(l, TRUE, NULL);
        encore_ledger_record *rec = lookup(l, "gift-1");
        g_assert_nonnull(rec);
        encore_ledger_record_free(rec);
        /* The same id stored twice. */
        expect_sql(f->db,
                   "INSERT INTO ledger_transfers (request_key, request_id, request_hash, status, "
                   "kind, created_at) SELECT 4611686018427387905, request_id, request_hash, 1, "
                   "kind, created_at FROM ledger_transfers WHERE request_id = 'gift-1'",
                   TRUE);
        assert_audit(l, FALSE, "request id gift-1 is stored 2 times");
        expect_sql(f->db, "DELETE FROM ledger_transfers WHERE request_key = 4611686018427387905",
                   TRUE);
        assert_audit(l, TRUE, NULL);
    }

    /* A leg naming an account that has no row. */
    expect_sql(f->db, "DELETE FROM ledger_accounts WHERE name = 'earnings:bob'", TRUE);
    assert_audit(l, FALSE, "names earnings:bob, which has no account");
    fx_free(f);
}

/* Schema version 1 as it was created (a frozen fixture: the migration to version 2 must keep
 * working on it). */
static const char v1_sqlite[] =
    "CREATE TABLE ledger_schema_version (version INTEGER NOT NULL);"
    "INSERT INTO ledger_schema_version VALUES (1);"
    "CREATE TABLE ledger_accounts (name TEXT PRIMARY KEY, balance INTEGER NOT NULL DEFAULT 0,"
    "  allow_negative INTEGER NOT NULL DEFAULT 0 CHECK (allow_negative IN (0, 1)),"
    "  created_at INTEGER NOT NULL, CHECK (typeof(balance) = 'integer'),"
    "  CHECK (allow_negative = 1 OR balance >= 0),"
    "  CHECK (allow_negative = 0 OR name LIKE 'external:%')) WITHOUT ROWID;"
    "CREATE TABLE ledger_transfers (id INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE,"
    "  request_hash BLOB NOT NULL CHECK (length(request_hash) = 32),"
    "  status INTEGER NOT NULL CHECK (status IN (0, 1)), kind TEXT NOT NULL, metadata TEXT,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE ledger_postings ("
    "  transfer_id INTEGER NOT NULL REFERENCES ledger_transfers(id),"
    "  account TEXT NOT NULL REFERENCES ledger_accounts(name) DEFERRABLE INITIALLY DEFERRED,"
    "  amount INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount <> 0),"
    "  PRIMARY KEY (transfer_id, account)) WITHOUT ROWID;"
    "CREATE INDEX ledger_postings_statements ON ledger_postings(account, transfer_id) "
    "WHERE account < 'platform:';";

static const char v1_pg[] =
    "CREATE TABLE ledger_schema_version (version int NOT NULL);"
    "INSERT INTO ledger_schema_version VALUES (1);"
    "CREATE TABLE ledger_accounts (name text PRIMARY KEY, balance bigint NOT NULL DEFAULT 0,"
    "  allow_negative boolean NOT NULL DEFAULT false, created_at bigint NOT NULL,"
    "  CONSTRAINT ledger_accounts_non_negative CHECK (allow_negative OR balance >= 0),"
    "  CONSTRAINT ledger_accounts_negative_only_external"
    "    CHECK (NOT allow_negative OR name LIKE 'external:%'));"
    "CREATE TABLE ledger_transfers (id bigserial PRIMARY KEY, request_id text NOT NULL UNIQUE,"
    "  request_hash bytea NOT NULL CHECK (length(request_hash) = 32),"
    "  status smallint NOT NULL CHECK (status IN (0, 1)), kind text NOT NULL, metadata text,"
    "  created_at bigint NOT NULL);"
    "CREATE TABLE ledger_postings (transfer_id bigint NOT NULL, account text NOT NULL,"
    "  amount bigint NOT NULL CHECK (amount <> 0), PRIMARY KEY (transfer_id, account));"
    "CREATE INDEX ledger_postings_statements ON ledger_postings(account, transfer_id) "
    "WHERE account < 'platform:';"
    /* Stands for version 1's batch function (same signature), which the migration replaces. */
    "CREATE FUNCTION ledger_apply_batch(text[], text[], text[], text[], text[], bigint, text)"
    "  RETURNS int LANGUAGE sql AS 'SELECT 1';";

#define V1_CREATED INT64_C(1700000000000000)

/* Appends the version 1 rows of one stored request (its postings when applied). */
static void v1_request(GString *sql, bool pg, int64_t id, const char *request_id, const char *kind,
                       const char *metadata, const encore_leg *legs, size_t n_legs, bool refused)
{
    encore_transfer_req req = {
        .id = request_id, .kind = kind, .metadata = metadata, .legs = legs, .n_legs = n_legs};
    encore_store_item item;
    const char *detail = NULL;
    g_assert_cmpint(encore_store_item_init(&item, &req, &detail), ==, ENCORE_LEDGER_OK);
    g_string_append_printf(sql,
                           "INSERT INTO ledger_transfers (id, request_id, request_hash, status, "
                           "kind, metadata, created_at) VALUES (%" G_GINT64_FORMAT ", '%s', ",
                           id, request_id);
    if (pg)
        g_string_append_printf(sql, "decode('%s', 'hex')", item.hash_hex);
    else
        g_string_append_printf(sql, "X'%s'", item.hash_hex);
    g_string_append_printf(sql, ", %d, '%s', ", refused ? 1 : 0, kind);
    if (item.metadata)
        g_string_append_printf(sql, "'%s'", item.metadata);
    else
        g_string_append(sql, "NULL");
    g_string_append_printf(sql, ", %" G_GINT64_FORMAT ");", V1_CREATED + id);
    for (size_t i = 0; i < n_legs && !refused; i++)
        g_string_append_printf(sql,
                               "INSERT INTO ledger_postings (transfer_id, account, amount) "
                               "VALUES (%" G_GINT64_FORMAT ", '%s', %" G_GINT64_FORMAT ");",
                               id, legs[i].account, legs[i].amount);
    encore_store_item_clear(&item);
}

static void test_migrate_v1(gconstpointer kind)
{
    fx *f = fx_new(kind);
    if (!f)
        return;
    bool pg = f->db->pg;
    GString *sql = g_string_new(pg ? v1_pg : v1_sqlite);
    const encore_leg top[] = {{"external:topups", -1000}, {"wallet:alice", 1000}};
    const encore_leg gift[] = {{"wallet:alice", -300},
                               {"earnings:bob", 150},
                               {"earnings:agent-1", 60},
                               {"platform:revenue", 90}};
    const encore_leg spend[] = {{"wallet:alice", -5000}, {"platform:revenue", 5000}};
    const encore_leg hold[] = {{"earnings:bob", -100}, {"escrow:wd-1", 100}};
    v1_request(sql, pg, 1, "top-1", "topup", NULL, top, 2, false);
    v1_request(sql, pg, 2, "gift:alice:1", "gift", "{\"gift\": \"rose\", \"count\": 1}", gift, 4,
               false);
    v1_request(sql, pg, 3, "spend-big", "test", NULL, spend, 2, true);
    v1_request(sql, pg, 4, "wd-1", "withdrawal.hold", NULL, hold, 2, false);
    const struct {
        const char *name;
        int64_t balance;
    } accounts[] = {{"external:topups", -1000}, {"wallet:alice", 700},    {"earnings:bob", 50},
                    {"earnings:agent-1", 60},   {"platform:revenue", 90}, {"escrow:wd-1", 100}};
    for (size_t i = 0; i < G_N_ELEMENTS(accounts); i++) {
        bool neg = accounts[i].balance < 0;
        g_string_append_printf(sql,
                               "INSERT INTO ledger_accounts (name, balance, allow_negative, "
                               "created_at) VALUES ('%s', %" G_GINT64_FORMAT ", %s, 1);",
                               accounts[i].name, accounts[i].balance,
                               pg ? (neg ? "true" : "false") : (neg ? "1" : "0"));
    }
    if (pg)
        g_string_append(sql, "SELECT setval('ledger_transfers_id_seq', 4);");
    expect_sql(f->db, sql->str, TRUE);
    g_string_free(sql, TRUE);

    /* Opening migrates. */
    encore_ledger *l = fx_open(f);
    char *version = testdb_query(f->db, "SELECT max(version) FROM ledger_schema_version");
    g_assert_cmpstr(version, ==, "2");
    g_free(version);
    char *rows = testdb_query(f->db, "SELECT count(*) FROM ledger_postings");
    g_assert_cmpstr(rows, ==, "5"); /* external:topups, earnings:bob x2, earnings:agent-1, escrow */
    g_free(rows);
    assert_audit(l, TRUE, "3 transfers applied, 1 refused, 8 legs, 5 statement postings");

    encore_ledger_record *rec = lookup(l, "gift:alice:1");
    g_assert_cmpint(rec->transfer_id, ==, 2);
    g_assert_cmpint(rec->created_us, ==, V1_CREATED + 2);
    g_assert_cmpstr(rec->metadata, ==, "{\"count\":1,\"gift\":\"rose\"}");
    const encore_leg gift_sorted[] = {{"earnings:agent-1", 60},
                                      {"earnings:bob", 150},
                                      {"platform:revenue", 90},
                                      {"wallet:alice", -300}};
    assert_legs(rec, gift_sorted, 4);
    encore_ledger_record_free(rec);
    rec = lookup(l, "spend-big");
    g_assert_cmpint(rec->status, ==, ENCORE_LEDGER_INSUFFICIENT_FUNDS);
    assert_legs(rec, NULL, 0);
    encore_ledger_record_free(rec);
    GPtrArray *page = scan(l, "", 0, 100);
    g_assert_cmpuint(page->len, ==, 3);
    const char *ids[] = {"top-1", "gift:alice:1", "wd-1"};
    for (guint i = 0; i < page->len; i++)
        g_assert_cmpstr(((encore_ledger_record *)g_ptr_array_index(page, i))->request_id, ==,
                        ids[i]);
    g_ptr_array_unref(page);
    GError *err = NULL;
    GPtrArray *lines = encore_ledger_statement(l, "earnings:bob", 0, 10, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(lines->len, ==, 2);
    g_assert_cmpint(((encore_statement_line *)g_ptr_array_index(lines, 0))->amount, ==, -100);
    g_assert_cmpint(((encore_statement_line *)g_ptr_array_index(lines, 1))->amount, ==, 150);
    g_ptr_array_unref(lines);

    /* Old requests replay from their rows (same hash), new ones go on after them. */
    encore_transfer_req req = {.id = "gift:alice:1",
                               .kind = "gift",
                               .metadata = "{\"count\":1,\"gift\":\"rose\"}",
                               .legs = gift,
                               .n_legs = 4};
    encore_transfer_result r;
    g_assert_cmpint(encore_ledger_transfer_sync(l, &req, &r), ==, ENCORE_LEDGER_OK);
    g_assert_true(r.replayed);
    g_assert_cmpint(r.transfer_id, ==, 2);
    g_assert_cmpint(move(l, "spend-big", "wallet:alice", "platform:revenue", 5000, &r), ==,
                    ENCORE_LEDGER_INSUFFICIENT_FUNDS);
    g_assert_true(r.replayed);
    g_assert_cmpint(move(l, "gift:alice:2", "wallet:alice", "earnings:bob", 700, &r), ==,
                    ENCORE_LEDGER_OK);
    g_assert_cmpint(r.transfer_id, >, 4);
    g_assert_cmpint(balance(l, "earnings:bob"), ==, 750);
    assert_audit(l, TRUE, "4 transfers applied");
    /* Reopening does not migrate again. */
    encore_ledger_close(l);
    l = fx_open(f);
    assert_audit(l, TRUE, "4 transfers applied");
    fx_free(f);
}

static void add_kinds(const char *name, GTestDataFunc fn, const char *const *kinds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *path = g_strdup_printf("/ledger/%s/%s", kinds[i], name);
        g_test_add_data_func(path, kinds[i], fn);
        g_free(path);
    }
}

/* On SQLite and PostgreSQL. */
static void add(const char *name, GTestDataFunc fn)
{
    static const char *const kinds[] = {"sqlite", "postgresql"};
    add_kinds(name, fn, kinds, G_N_ELEMENTS(kinds));
}

/* Also on SQLite with request keys that collide (every id shares its key with others). */
static void add_keyed(const char *name, GTestDataFunc fn)
{
    static const char *const kinds[] = {"sqlite", "postgresql", "sqlite-collide"};
    add_kinds(name, fn, kinds, G_N_ELEMENTS(kinds));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    add_keyed("exact-balances", test_exact_balances);
    add_keyed("insufficient-funds", test_insufficient_funds);
    add_keyed("idempotency", test_idempotency);
    add("bad-requests", test_bad_requests);
    add("parallel-affordable", test_parallel_affordable);
    add_keyed("parallel-same-id", test_parallel_same_id);
    add("group-commit", test_group_commit);
    add("overloaded", test_overloaded);
    add_keyed("one-batch-order", test_one_batch_order);
    add("threads-and-contexts", test_threads_and_contexts);
    add("destroy-notify", test_destroy_notify);
    add_keyed("transient-faults", test_transient_faults);
    add("retries-exhausted", test_retries_exhausted);
    add("fatal-isolated", test_fatal_isolated);
    add("balance-overflow", test_balance_overflow);
    g_test_add_data_func("/ledger/sqlite/sync-failure", "sqlite", test_sync_failure);
    add("statements", test_statements);
    add_keyed("lookup", test_lookup);
    add_keyed("many-ids", test_many_ids);
    add("scan", test_scan);
    add("statement-async", test_statement_async);
    g_test_add_func("/ledger/legs-text", test_legs_text);
    add_keyed("reopen", test_reopen);
    add("open-errors", test_open_errors);
    add_keyed("audit-detects-corruption", test_audit_detects_corruption);
    add_keyed("migrate-v1", test_migrate_v1);
    return g_test_run();
}
