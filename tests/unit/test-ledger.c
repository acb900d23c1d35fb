/* Unit tests for server/economy/ledger: exact balances, insufficient funds, idempotency (replays,
 * conflicts, 100 parallel copies), 100 parallel transfers that only partly fit, bad requests,
 * group commit, backpressure, injected faults and retries, reopen, schema versions, and audit
 * over a deliberately corrupted database. Every test runs on SQLite and on PostgreSQL (skipped
 * unless ENCORE_TEST_PG is set). */
#include "config.h"

#include <string.h>

#include "server/economy/ledger.h"
#include "server/economy/split.h"
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
    char *rows = testdb_query(f->db, "SELECT count(*) FROM ledger_postings");
    g_assert_cmpstr(rows, ==, "4");
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
    gate_release(&f->plan);
    while (t.answered < 4)
        g_main_context_iteration(t.ctx, TRUE);
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
    g_assert_true(testdb_exec(f->db, "UPDATE ledger_schema_version SET version = 1", &msg));
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

static void expect_sql(testdb *db, const char *sql, gboolean ok)
{
    char *msg = NULL;
    gboolean done = testdb_exec(db, sql, &msg);
    if (done != ok)
        g_printerr("%s: %s\n", sql, msg ? msg : "succeeded");
    g_assert_cmpint(done, ==, ok);
    g_free(msg);
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

    /* A balance that no longer matches its postings. */
    expect_sql(f->db,
               "UPDATE ledger_accounts SET balance = balance + 5 WHERE name = 'wallet:alice'",
               TRUE);
    assert_audit(l, FALSE, "account wallet:alice has balance 65 but its postings sum to 60");
    expect_sql(f->db,
               "UPDATE ledger_accounts SET balance = balance - 5 WHERE name = 'wallet:alice'",
               TRUE);
    assert_audit(l, TRUE, NULL);

    /* A transfer whose legs no longer sum to zero. */
    expect_sql(f->db, "UPDATE ledger_postings SET amount = 41 WHERE account = 'earnings:bob'",
               TRUE);
    assert_audit(l, FALSE, "postings summing to 1");
    expect_sql(f->db, "UPDATE ledger_postings SET amount = 40 WHERE account = 'earnings:bob'",
               TRUE);
    /* A lost posting. */
    expect_sql(f->db, "DELETE FROM ledger_postings WHERE account = 'earnings:bob'", TRUE);
    assert_audit(l, FALSE, "has 1 postings summing to -40");
    fx_free(f);
}

static void add(const char *name, GTestDataFunc fn)
{
    const char *kinds[] = {"sqlite", "postgresql"};
    for (size_t i = 0; i < G_N_ELEMENTS(kinds); i++) {
        char *path = g_strdup_printf("/ledger/%s/%s", kinds[i], name);
        g_test_add_data_func(path, kinds[i], fn);
        g_free(path);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    add("exact-balances", test_exact_balances);
    add("insufficient-funds", test_insufficient_funds);
    add("idempotency", test_idempotency);
    add("bad-requests", test_bad_requests);
    add("parallel-affordable", test_parallel_affordable);
    add("parallel-same-id", test_parallel_same_id);
    add("group-commit", test_group_commit);
    add("overloaded", test_overloaded);
    add("one-batch-order", test_one_batch_order);
    add("threads-and-contexts", test_threads_and_contexts);
    add("destroy-notify", test_destroy_notify);
    add("transient-faults", test_transient_faults);
    add("retries-exhausted", test_retries_exhausted);
    add("fatal-isolated", test_fatal_isolated);
    add("balance-overflow", test_balance_overflow);
    add("statements", test_statements);
    add("reopen", test_reopen);
    add("open-errors", test_open_errors);
    add("audit-detects-corruption", test_audit_detects_corruption);
    return g_test_run();
}
