/* The ledger thread and its queue: requests from any thread are queued, the thread takes every
 * pending request (up to max_batch), runs them in one store transaction (group commit), retries
 * transient failures, and only after the commit delivers each answer to its caller's context.
 * With a store that syncs apart (SQLite), a syncer thread makes each round durable while the
 * ledger thread runs the next one, and delivers the round's answers after the sync. The store
 * connection belongs to the ledger thread alone; no answer leaves before its commit is durable. */
#define G_LOG_DOMAIN "encore-ledger"
#include "config.h"

#include <string.h>

#include "server/economy/ledger.h"
#include "server/economy/store.h"

#define DEFAULT_MAX_BATCH 1024
#define DEFAULT_MAX_QUEUE 100000
#define DEFAULT_MAX_RETRIES 8
#define DEFAULT_BUSY_TIMEOUT_MS 5000
#define BACKOFF_FIRST_US 1000
#define BACKOFF_MAX_US 100000

typedef enum {
    OP_TRANSFER,
    OP_BALANCE,
    OP_STATEMENT,
    OP_AUDIT,
    OP_LOOKUP,
    OP_SCAN,
} op_type;

/* A caller blocked in a *_sync call (or a blocking read): woken through the ledger's sync_cond. */
typedef struct {
    bool done;
} sync_wait;

/* One queued operation. Owned by the queue, then by the ledger thread, then by the delivery
 * (async) or by the blocked caller (sync). */
typedef struct {
    op_type type;
    encore_store_item item; /* OP_TRANSFER: the request and, once run, its answer */
    const char *detail;     /* static explanation of a status set before the store */
    char *arg;              /* the account (OP_BALANCE, OP_STATEMENT), request id (OP_LOOKUP) or
                             * kind prefix (OP_SCAN) */
    int64_t balance;        /* OP_BALANCE answer */
    int64_t bound;          /* OP_STATEMENT: before; OP_SCAN: after_id */
    unsigned limit;         /* OP_STATEMENT, OP_SCAN */
    GPtrArray *lines;       /* OP_STATEMENT answer (of encore_statement_line*), OP_SCAN answer
                             * (of encore_ledger_record*) */
    encore_ledger_record *record; /* OP_LOOKUP answer (NULL: not found) */
    GString *report;              /* OP_AUDIT: the caller's (sync only) */
    gboolean ok;                  /* a read ran (for OP_AUDIT: and found the ledger sound) */
    GError *error;                /* why a read failed or was refused */
    GMainContext *ctx;            /* reply context (a reference), or NULL */
    encore_ledger_done_fn done;
    encore_ledger_balance_fn balance_done;
    encore_ledger_statement_fn statement_done;
    encore_ledger_lookup_fn lookup_done;
    void *user_data;
    GDestroyNotify destroy;
    sync_wait *wait; /* set for blocking callers */
} ledger_op;

struct encore_ledger {
    const struct encore_store_ops *ops;
    encore_store *store;
    GThread *thread;
    unsigned max_batch, max_queue, max_retries;

    GMutex lock; /* guards queue, closing, sleeping */
    GCond cond;
    GQueue queue; /* of ledger_op */
    bool closing;
    bool sleeping; /* the ledger thread waits on cond */

    GMutex sync_lock; /* guards every sync_wait.done */
    GCond sync_cond;

    /* Stores with a sync op: rounds (answered ops of one batch and its reads) wait here, in
     * order, for the syncer thread's next sync; only then are their answers delivered. */
    GThread *syncer;
    GMutex rounds_lock; /* guards rounds, syncer_stop */
    GCond rounds_cond;
    GQueue rounds; /* of ledger_round */
    bool syncer_stop;
    gint failed; /* atomic: a sync failed; every later request and read gets a store error */

    encore_ledger_stats stats; /* written by the ledger thread (and submit for `rejected`) */
};

/* The ops of one round of the ledger thread, handed to the syncer. */
typedef struct {
    ledger_op **ops;
    size_t n;
} ledger_round;

#define STAT_ADD(l, field, n) __atomic_fetch_add(&(l)->stats.field, (n), __ATOMIC_RELAXED)

static const char *status_detail(encore_ledger_status st)
{
    switch (st) {
    case ENCORE_LEDGER_OK:
        return "ok";
    case ENCORE_LEDGER_INSUFFICIENT_FUNDS:
        return "insufficient funds";
    case ENCORE_LEDGER_IDEMPOTENCY_CONFLICT:
        return "this request id was already used with other contents";
    case ENCORE_LEDGER_STORE_ERROR:
        return "the database failed; retry with the same id";
    case ENCORE_LEDGER_CLOSED:
        return "the ledger is closing";
    case ENCORE_LEDGER_OVERLOADED:
        return "too many requests waiting";
    case ENCORE_LEDGER_INVALID:
        return "invalid request";
    case ENCORE_LEDGER_UNKNOWN_ACCOUNT:
        return "unknown account";
    }
    return "unknown";
}

static void op_free(ledger_op *op)
{
    encore_store_item_clear(&op->item);
    g_free(op->arg);
    if (op->lines)
        g_ptr_array_unref(op->lines);
    encore_ledger_record_free(op->record);
    g_clear_error(&op->error);
    if (op->ctx)
        g_main_context_unref(op->ctx);
    g_free(op);
}

static void op_result(const ledger_op *op, encore_transfer_result *r)
{
    *r = (encore_transfer_result){
        .status = op->item.status,
        .transfer_id = op->item.status == ENCORE_LEDGER_OK ? op->item.transfer_id : 0,
        .replayed = op->item.replayed,
        .detail = op->detail ? op->detail : status_detail(op->item.status),
        .id = op->item.id ? op->item.id : "",
    };
}

/* Calls the op's callback and destroy function, then frees it (async ops only). */
static void op_deliver(ledger_op *op)
{
    if (op->type == OP_TRANSFER && op->done) {
        encore_transfer_result r;
        op_result(op, &r);
        op->done(&r, op->user_data);
    } else if (op->type == OP_BALANCE && op->balance_done) {
        op->balance_done(op->ok, op->balance, op->error, op->user_data);
    } else if (op->type == OP_STATEMENT && op->statement_done) {
        op->statement_done(op->ok, op->ok ? op->lines : NULL, op->error, op->user_data);
    } else if (op->type == OP_LOOKUP && op->lookup_done) {
        op->lookup_done(op->ok, op->ok ? op->record : NULL, op->error, op->user_data);
    }
    if (op->destroy)
        op->destroy(op->user_data);
    op_free(op);
}

/* Undelivered ops (their context went away): only destroy. */
static void op_drop(ledger_op *op)
{
    if (op->destroy)
        op->destroy(op->user_data);
    op_free(op);
}

static gboolean deliver_batch(gpointer data)
{
    GPtrArray *ops = data;
    for (guint i = 0; i < ops->len; i++) {
        op_deliver(g_ptr_array_index(ops, i));
        ops->pdata[i] = NULL;
    }
    return G_SOURCE_REMOVE;
}

static void drop_batch(gpointer data)
{
    GPtrArray *ops = data;
    for (guint i = 0; i < ops->len; i++)
        if (ops->pdata[i])
            op_drop(ops->pdata[i]);
    g_ptr_array_free(ops, TRUE);
}

static void attach_delivery(GMainContext *ctx, GPtrArray *ops)
{
    /* The ops' own references go first: once attached, the context owns the answers (and its
     * thread may run and free them at once), and references held by ops sitting in the
     * context's own sources would keep a context its caller dropped alive forever. */
    g_main_context_ref(ctx);
    for (guint i = 0; i < ops->len; i++) {
        ledger_op *op = g_ptr_array_index(ops, i);
        g_main_context_unref(op->ctx);
        op->ctx = NULL;
    }
    GSource *src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_DEFAULT);
    g_source_set_callback(src, deliver_batch, ops, drop_batch);
    g_source_attach(src, ctx);
    g_source_unref(src);
    g_main_context_unref(ctx);
}

/* Hands answered ops back, in this order: ops without a context run here, ops with one go to it
 * as one idle source per context, and only then blocked callers are woken (one broadcast), so a
 * blocked caller that returns sees every earlier answer already delivered or queued. */
static void complete(encore_ledger *l, ledger_op **ops, size_t n)
{
    GPtrArray *per_ctx[16];
    GMainContext *ctxs[16];
    size_t n_ctx = 0;
    size_t n_wait = 0;
    for (size_t i = 0; i < n; i++) {
        ledger_op *op = ops[i];
        if (op->wait) {
            /* Compacted to the front: the other ops may be freed by their contexts' threads as
             * soon as they are attached, so the loop below must not look at them. */
            ops[n_wait++] = op;
            continue;
        }
        if (!op->ctx) {
            op_deliver(op);
            continue;
        }
        size_t k = 0;
        while (k < n_ctx && ctxs[k] != op->ctx)
            k++;
        if (k == G_N_ELEMENTS(ctxs)) {
            /* Many distinct contexts in one batch: this op gets its own source. */
            GPtrArray *one = g_ptr_array_new();
            g_ptr_array_add(one, op);
            attach_delivery(op->ctx, one);
            continue;
        }
        if (k == n_ctx) {
            ctxs[n_ctx] = op->ctx;
            per_ctx[n_ctx] = g_ptr_array_new();
            n_ctx++;
        }
        g_ptr_array_add(per_ctx[k], op);
    }
    for (size_t k = 0; k < n_ctx; k++)
        attach_delivery(ctxs[k], per_ctx[k]);
    if (!n_wait)
        return;
    g_mutex_lock(&l->sync_lock);
    for (size_t i = 0; i < n_wait; i++)
        ops[i]->wait->done = true;
    g_cond_broadcast(&l->sync_cond);
    g_mutex_unlock(&l->sync_lock);
}

/* Runs items in one transaction, retrying transient failures with backoff. When the batch fails
 * for good with a non-transient error, each request is run alone so that one bad request cannot
 * fail the others; what still fails is answered ENCORE_LEDGER_STORE_ERROR. */
static void run_items(encore_ledger *l, encore_store_item **items, size_t n)
{
    gboolean transient = FALSE;
    for (unsigned attempt = 0;; attempt++) {
        GError *err = NULL;
        if (l->ops->run_batch(l->store, items, n, g_get_real_time(), &err)) {
            STAT_ADD(l, batches, 1);
            if (n > l->stats.largest_batch)
                __atomic_store_n(&l->stats.largest_batch, n, __ATOMIC_RELAXED);
            return;
        }
        transient = err->domain == ENCORE_STORE_ERROR && err->code == ENCORE_STORE_ERROR_TRANSIENT;
        if (!transient || attempt >= l->max_retries) {
            g_warning("%s batch of %zu request(s) failed%s: %s", l->ops->name, n,
                      transient ? " after retries" : "", err->message);
            g_error_free(err);
            break;
        }
        g_debug("%s batch of %zu: retry %u: %s", l->ops->name, n, attempt + 1, err->message);
        g_error_free(err);
        STAT_ADD(l, retries, 1);
        unsigned shift = attempt < 7 ? attempt : 7;
        gulong delay = MIN((gulong)BACKOFF_FIRST_US << shift, (gulong)BACKOFF_MAX_US);
        g_usleep(delay / 2 + (gulong)g_random_int_range(0, (gint32)(delay / 2 + 1)));
    }
    if (n > 1 && !transient) {
        for (size_t i = 0; i < n; i++)
            run_items(l, &items[i], 1);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        items[i]->status = ENCORE_LEDGER_STORE_ERROR;
        items[i]->transfer_id = 0;
        items[i]->replayed = false;
    }
}

static void run_read(encore_ledger *l, ledger_op *op)
{
    GError *err = NULL;
    switch (op->type) {
    case OP_BALANCE:
        op->ok = l->ops->balance(l->store, op->arg, &op->balance, &err);
        break;
    case OP_STATEMENT:
        op->lines = g_ptr_array_new_with_free_func(encore_store_statement_line_free);
        op->ok = l->ops->statement(l->store, op->arg, op->bound, op->limit, op->lines, &err);
        break;
    case OP_LOOKUP:
        op->ok = l->ops->lookup(l->store, op->arg, &op->record, &err);
        break;
    case OP_SCAN:
        op->lines = g_ptr_array_new_full(MIN(op->limit, 1024u), encore_store_record_free);
        op->ok = l->ops->scan(l->store, op->arg, op->bound, op->limit, op->lines, &err);
        break;
    case OP_AUDIT: {
        gboolean sound = FALSE;
        if (l->ops->audit(l->store, op->report, &sound, &err))
            op->ok = sound;
        break;
    }
    case OP_TRANSFER:
        break;
    }
    if (err) {
        g_set_error(&op->error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE, "%s", err->message);
        g_error_free(err);
    }
}

/* Replaces the answers of a round that cannot be acknowledged (its sync failed, or an earlier
 * one did): transfers become STORE_ERROR (they may or may not be on disk), reads errors. */
static void fail_round(encore_ledger *l, ledger_op **ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ledger_op *op = ops[i];
        if (op->type == OP_TRANSFER) {
            if (op->item.status != ENCORE_LEDGER_STORE_ERROR)
                STAT_ADD(l, store_errors, 1);
            op->item.status = ENCORE_LEDGER_STORE_ERROR;
            op->item.transfer_id = 0;
            op->item.replayed = false;
            continue;
        }
        op->ok = FALSE;
        g_clear_pointer(&op->lines, g_ptr_array_unref);
        g_clear_pointer(&op->record, encore_ledger_record_free);
        g_clear_error(&op->error);
        g_set_error(&op->error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_STORE,
                    "the ledger stopped after a failed sync; reopen it");
    }
}

static void count_answers(encore_ledger *l, encore_store_item **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const encore_store_item *it = items[i];
        if (it->status == ENCORE_LEDGER_STORE_ERROR) {
            STAT_ADD(l, store_errors, 1);
            continue;
        }
        STAT_ADD(l, requests, 1);
        if (it->status == ENCORE_LEDGER_IDEMPOTENCY_CONFLICT)
            STAT_ADD(l, conflicts, 1);
        else if (it->replayed)
            STAT_ADD(l, replays, 1);
        else if (it->status == ENCORE_LEDGER_OK)
            STAT_ADD(l, transfers, 1);
        else
            STAT_ADD(l, insufficient, 1);
    }
}

static gpointer ledger_thread(gpointer data)
{
    encore_ledger *l = data;
    ledger_op **ops = g_new(ledger_op *, l->max_batch);
    encore_store_item **items = g_new(encore_store_item *, l->max_batch);
    for (;;) {
        g_mutex_lock(&l->lock);
        while (g_queue_is_empty(&l->queue) && !l->closing) {
            l->sleeping = true;
            g_cond_wait(&l->cond, &l->lock);
            l->sleeping = false;
        }
        size_t n = 0;
        while (n < l->max_batch && !g_queue_is_empty(&l->queue))
            ops[n++] = g_queue_pop_head(&l->queue);
        bool stop = n == 0 && l->closing;
        g_mutex_unlock(&l->lock);
        if (stop)
            break;
        if (g_atomic_int_get(&l->failed)) {
            /* After a failed sync the store is not touched again (see submit in ledger.h). */
            fail_round(l, ops, n);
            complete(l, ops, n);
            continue;
        }
        size_t n_items = 0;
        for (size_t i = 0; i < n; i++)
            if (ops[i]->type == OP_TRANSFER)
                items[n_items++] = &ops[i]->item;
        if (n_items) {
            run_items(l, items, n_items);
            count_answers(l, items, n_items);
        }
        /* Reads run after the batch: they see everything committed before they were queued
         * (and are answered with the batch, once it is durable). */
        for (size_t i = 0; i < n; i++)
            if (ops[i]->type != OP_TRANSFER)
                run_read(l, ops[i]);
        if (!l->syncer) {
            complete(l, ops, n);
            continue;
        }
        ledger_round *round = g_new(ledger_round, 1);
        round->ops = g_memdup2(ops, n * sizeof(*ops));
        round->n = n;
        g_mutex_lock(&l->rounds_lock);
        g_queue_push_tail(&l->rounds, round);
        g_cond_signal(&l->rounds_cond);
        g_mutex_unlock(&l->rounds_lock);
    }
    g_free(items);
    g_free(ops);
    return NULL;
}

/* The syncer thread: takes every round waiting, syncs once (every batch they hold was committed
 * before), then delivers their answers in order. Runs the store's sync only, never its
 * connection. A failed sync stops the ledger: retrying it could report success for data the
 * kernel dropped after the first failure, so nothing committed since is acknowledged. */
static gpointer syncer_thread(gpointer data)
{
    encore_ledger *l = data;
    GQueue rounds = G_QUEUE_INIT;
    for (;;) {
        g_mutex_lock(&l->rounds_lock);
        while (g_queue_is_empty(&l->rounds) && !l->syncer_stop)
            g_cond_wait(&l->rounds_cond, &l->rounds_lock);
        bool stop = g_queue_is_empty(&l->rounds);
        rounds = l->rounds;
        g_queue_init(&l->rounds);
        g_mutex_unlock(&l->rounds_lock);
        if (stop)
            break;
        GError *err = NULL;
        if (!g_atomic_int_get(&l->failed) && !l->ops->sync(l->store, &err)) {
            g_critical("%s: syncing committed batches failed, the ledger stops: %s", l->ops->name,
                       err->message);
            g_error_free(err);
            g_atomic_int_set(&l->failed, 1);
        }
        ledger_round *round;
        while ((round = g_queue_pop_head(&rounds))) {
            if (g_atomic_int_get(&l->failed))
                fail_round(l, round->ops, round->n);
            complete(l, round->ops, round->n);
            g_free(round->ops);
            g_free(round);
        }
    }
    return NULL;
}

/* Queues op or, when refused (closing or full), answers it at once with that status.
 * Returns TRUE when queued. */
static gboolean enqueue(encore_ledger *l, ledger_op *op)
{
    g_mutex_lock(&l->lock);
    encore_ledger_status refused = ENCORE_LEDGER_OK;
    if (l->closing)
        refused = ENCORE_LEDGER_CLOSED;
    else if (g_queue_get_length(&l->queue) >= l->max_queue)
        refused = ENCORE_LEDGER_OVERLOADED;
    else
        g_queue_push_tail(&l->queue, op);
    bool wake = refused == ENCORE_LEDGER_OK && l->sleeping;
    g_mutex_unlock(&l->lock);
    if (wake)
        g_cond_signal(&l->cond);
    if (refused == ENCORE_LEDGER_OK)
        return TRUE;
    STAT_ADD(l, rejected, 1);
    op->item.status = refused;
    op->detail = status_detail(refused);
    if (op->type != OP_TRANSFER) {
        g_set_error(&op->error, ENCORE_LEDGER_ERROR,
                    refused == ENCORE_LEDGER_CLOSED ? ENCORE_LEDGER_ERROR_CLOSED
                                                    : ENCORE_LEDGER_ERROR_STORE,
                    "%s", op->detail);
        op->ok = FALSE;
    }
    return FALSE;
}

/* Answers an op that never reached the queue, on the caller's terms (its context, else here). */
static void answer_now(encore_ledger *l, ledger_op *op)
{
    if (op->wait) {
        op->wait->done = true;
        return;
    }
    if (op->ctx) {
        complete(l, &op, 1);
        return;
    }
    op_deliver(op);
}

static bool on_ledger_thread(encore_ledger *l)
{
    GThread *self = g_thread_self();
    return self == l->thread || (l->syncer && self == l->syncer);
}

static ledger_op *transfer_op(encore_ledger *l, const encore_transfer_req *req)
{
    ledger_op *op = g_new0(ledger_op, 1);
    op->type = OP_TRANSFER;
    const char *detail = NULL;
    encore_ledger_status st = encore_store_item_init(&op->item, req, &detail);
    if (st != ENCORE_LEDGER_OK) {
        /* Keep the id (when it is printable) so the answer can name its request. */
        encore_store_item_clear(&op->item);
        op->item.status = st;
        op->detail = detail;
        STAT_ADD(l, rejected, 1);
    }
    return op;
}

void encore_ledger_submit(encore_ledger *ledger, const encore_transfer_req *req,
                          GMainContext *reply_ctx, encore_ledger_done_fn done, void *user_data,
                          GDestroyNotify destroy)
{
    ledger_op *op = transfer_op(ledger, req);
    op->ctx = reply_ctx ? g_main_context_ref(reply_ctx) : NULL;
    op->done = done;
    op->user_data = user_data;
    op->destroy = destroy;
    if (op->item.status != ENCORE_LEDGER_OK || !enqueue(ledger, op))
        answer_now(ledger, op);
}

/* Queues op with a wait and blocks until it is answered. */
static void wait_for(encore_ledger *l, ledger_op *op)
{
    sync_wait w = {false};
    op->wait = &w;
    if (!enqueue(l, op))
        return;
    g_mutex_lock(&l->sync_lock);
    while (!w.done)
        g_cond_wait(&l->sync_cond, &l->sync_lock);
    g_mutex_unlock(&l->sync_lock);
}

encore_ledger_status encore_ledger_transfer_sync(encore_ledger *ledger,
                                                 const encore_transfer_req *req,
                                                 encore_transfer_result *result)
{
    ledger_op *op = transfer_op(ledger, req);
    if (op->item.status == ENCORE_LEDGER_OK && on_ledger_thread(ledger)) {
        encore_store_item_clear(&op->item);
        op->item.status = ENCORE_LEDGER_INVALID;
        op->detail = "called from the ledger thread";
    }
    if (op->item.status == ENCORE_LEDGER_OK)
        wait_for(ledger, op);
    op_result(op, result);
    result->id = req ? req->id : "";
    op_free(op);
    return result->status;
}

/* Runs a read op for a blocked caller; frees op. */
static gboolean read_sync(encore_ledger *l, ledger_op *op, int64_t *balance, GError **error)
{
    gboolean ok = FALSE;
    if (on_ledger_thread(l)) {
        g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_WRONG_THREAD,
                    "blocking ledger call from the ledger thread");
        goto out;
    }
    wait_for(l, op);
    ok = op->ok;
    if (ok && balance)
        *balance = op->balance;
    if (op->error) {
        g_propagate_error(error, op->error);
        op->error = NULL;
    }
out:
    op_free(op);
    return ok;
}

gboolean encore_ledger_balance(encore_ledger *ledger, const char *account, int64_t *out,
                               GError **error)
{
    if (encore_ledger_account_kind(account) == ENCORE_ACCOUNT_INVALID) {
        g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_UNKNOWN_ACCOUNT,
                    "unknown account: %s", account ? account : "(null)");
        return FALSE;
    }
    ledger_op *op = g_new0(ledger_op, 1);
    op->type = OP_BALANCE;
    op->arg = g_strdup(account);
    return read_sync(ledger, op, out, error);
}

void encore_ledger_balance_async(encore_ledger *ledger, const char *account,
                                 GMainContext *reply_ctx, encore_ledger_balance_fn done,
                                 void *user_data, GDestroyNotify destroy)
{
    ledger_op *op = g_new0(ledger_op, 1);
    op->type = OP_BALANCE;
    op->arg = g_strdup(account);
    op->ctx = reply_ctx ? g_main_context_ref(reply_ctx) : NULL;
    op->balance_done = done;
    op->user_data = user_data;
    op->destroy = destroy;
    if (encore_ledger_account_kind(account) == ENCORE_ACCOUNT_INVALID) {
        g_set_error(&op->error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_UNKNOWN_ACCOUNT,
                    "unknown account: %s", account ? account : "(null)");
        answer_now(ledger, op);
        return;
    }
    if (!enqueue(ledger, op))
        answer_now(ledger, op);
}

/* Queues an asynchronous read op, or answers it at once when its arguments were refused (error
 * already set) or it cannot be queued. */
static void read_async(encore_ledger *l, ledger_op *op, GMainContext *reply_ctx, void *user_data,
                       GDestroyNotify destroy)
{
    op->ctx = reply_ctx ? g_main_context_ref(reply_ctx) : NULL;
    op->user_data = user_data;
    op->destroy = destroy;
    if (op->error || !enqueue(l, op))
        answer_now(l, op);
}

/* Runs a read op for a blocked caller unless its arguments were refused; frees nothing. */
static void read_wait(encore_ledger *l, ledger_op *op)
{
    if (!op->error && on_ledger_thread(l))
        g_set_error(&op->error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_WRONG_THREAD,
                    "blocking ledger call from the ledger thread");
    if (!op->error)
        wait_for(l, op);
}

/* Runs a read op for a blocked caller and takes its array answer; frees op. */
static GPtrArray *read_lines_sync(encore_ledger *l, ledger_op *op, GError **error)
{
    GPtrArray *lines = NULL;
    read_wait(l, op);
    if (op->ok) {
        lines = op->lines;
        op->lines = NULL;
    } else if (op->error) {
        g_propagate_error(error, op->error);
        op->error = NULL;
    }
    op_free(op);
    return lines;
}

/* A statement op; argument errors are set in op->error. */
static ledger_op *statement_op(const char *account, int64_t before, unsigned limit)
{
    ledger_op *op = g_new0(ledger_op, 1);
    op->type = OP_STATEMENT;
    op->arg = g_strdup(account);
    op->bound = before;
    op->limit = limit;
    if (encore_ledger_account_kind(account) == ENCORE_ACCOUNT_INVALID)
        g_set_error(&op->error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_UNKNOWN_ACCOUNT,
                    "unknown account: %s", account ? account : "(null)");
    else if (!encore_ledger_account_has_statement(account))
        g_set_error(&op->error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_NO_STATEMENT,
                    "no statement is kept for %s", account);
    else if (limit < 1 || limit > 1000)
        g_set_error(&op->error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_CONFIG,
                    "statement limit must be 1 to 1000, not %u", limit);
    return op;
}

GPtrArray *encore_ledger_statement(encore_ledger *ledger, const char *account, int64_t before,
                                   unsigned limit, GError **error)
{
    return read_lines_sync(ledger, statement_op(account, before, limit), error);
}

void encore_ledger_statement_async(encore_ledger *ledger, const char *account, int64_t before,
                                   unsigned limit, GMainContext *reply_ctx,
                                   encore_ledger_statement_fn done, void *user_data,
                                   GDestroyNotify destroy)
{
    ledger_op *op = statement_op(account, before, limit);
    op->statement_done = done;
    read_async(ledger, op, reply_ctx, user_data, destroy);
}

/* A lookup op; a malformed request id is set in op->error. */
static ledger_op *lookup_op(const char *request_id)
{
    ledger_op *op = g_new0(ledger_op, 1);
    op->type = OP_LOOKUP;
    op->arg = g_strdup(request_id);
    encore_leg legs[2] = {{"platform:revenue", -1}, {"external:payouts", 1}};
    encore_transfer_req probe = {.id = request_id, .kind = "lookup", .legs = legs, .n_legs = 2};
    if (encore_transfer_check(&probe, NULL) != ENCORE_LEDGER_OK)
        g_set_error(&op->error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_INVALID,
                    "not a request id: it must be 1-128 characters of A-Z a-z 0-9 . _ : @ -");
    return op;
}

void encore_ledger_lookup_async(encore_ledger *ledger, const char *request_id,
                                GMainContext *reply_ctx, encore_ledger_lookup_fn done,
                                void *user_data, GDestroyNotify destroy)
{
    ledger_op *op = lookup_op(request_id);
    op->lookup_done = done;
    read_async(ledger, op, reply_ctx, user_data, destroy);
}

gboolean encore_ledger_lookup(encore_ledger *ledger, const char *request_id,
                              encore_ledger_record **out, GError **error)
{
    ledger_op *op = lookup_op(request_id);
    gboolean ok = FALSE;
    *out = NULL;
    read_wait(ledger, op);
    if (op->ok) {
        ok = TRUE;
        *out = op->record;
        op->record = NULL;
    } else if (op->error) {
        g_propagate_error(error, op->error);
        op->error = NULL;
    }
    op_free(op);
    return ok;
}

/* "" or 1..ENCORE_LEDGER_KIND_MAX bytes of the kind alphabet. */
static bool valid_kind_prefix(const char *p)
{
    for (size_t n = 0; p[n]; n++) {
        char c = p[n];
        if (n >= ENCORE_LEDGER_KIND_MAX ||
            !(g_ascii_islower(c) || g_ascii_isdigit(c) || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

GPtrArray *encore_ledger_scan(encore_ledger *ledger, const char *kind_prefix, int64_t after_id,
                              unsigned limit, GError **error)
{
    ledger_op *op = g_new0(ledger_op, 1);
    op->type = OP_SCAN;
    op->arg = g_strdup(kind_prefix ? kind_prefix : "");
    op->bound = after_id;
    op->limit = limit;
    if (!valid_kind_prefix(op->arg))
        g_set_error(&op->error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_INVALID,
                    "not a kind prefix: it must be up to 32 characters of a-z 0-9 . _ -");
    else if (limit < 1 || limit > ENCORE_LEDGER_SCAN_MAX)
        g_set_error(&op->error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_CONFIG,
                    "scan limit must be 1 to %d, not %u", ENCORE_LEDGER_SCAN_MAX, limit);
    return read_lines_sync(ledger, op, error);
}

gboolean encore_ledger_audit(encore_ledger *ledger, GString *report, GError **error)
{
    ledger_op *op = g_new0(ledger_op, 1);
    op->type = OP_AUDIT;
    op->report = report;
    return read_sync(ledger, op, NULL, error);
}

void encore_ledger_get_stats(encore_ledger *ledger, encore_ledger_stats *out)
{
    const uint64_t *src = (const uint64_t *)&ledger->stats;
    uint64_t *dst = (uint64_t *)out;
    for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

encore_ledger *encore_ledger_open(const encore_ledger_config *cfg, GError **error)
{
    const char *backend = cfg ? cfg->backend : NULL;
    const struct encore_store_ops *ops = NULL;
    const char *target = NULL;
    static const struct encore_store_ops *const all[] = {&encore_store_sqlite_ops,
                                                         &encore_store_pg_ops};
    for (size_t i = 0; backend && i < G_N_ELEMENTS(all); i++) {
        size_t len = strlen(all[i]->name);
        if (strncmp(backend, all[i]->name, len) == 0 && backend[len] == ':') {
            ops = all[i];
            target = backend + len + 1;
        }
    }
    if (!ops || !*target) {
        g_set_error(error, ENCORE_LEDGER_ERROR, ENCORE_LEDGER_ERROR_CONFIG,
                    "ledger backend must be sqlite:PATH or postgresql:CONNINFO, not \"%s\"",
                    backend ? backend : "");
        return NULL;
    }
    encore_store_options opts = {
        .open_existing = cfg->open_existing,
        .busy_timeout_ms = cfg->busy_timeout_ms ? cfg->busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS,
        .fault_fn = cfg->fault_fn,
        .fault_user_data = cfg->fault_user_data,
        .request_key_bits = cfg->test_request_key_bits,
    };
    encore_store *store = ops->open(target, &opts, error);
    if (!store)
        return NULL;
    encore_ledger *l = g_new0(encore_ledger, 1);
    l->ops = ops;
    l->store = store;
    l->max_batch = cfg->max_batch ? cfg->max_batch : DEFAULT_MAX_BATCH;
    l->max_queue = cfg->max_queue ? cfg->max_queue : DEFAULT_MAX_QUEUE;
    l->max_retries = cfg->max_retries ? cfg->max_retries : DEFAULT_MAX_RETRIES;
    g_mutex_init(&l->lock);
    g_cond_init(&l->cond);
    g_queue_init(&l->queue);
    g_mutex_init(&l->sync_lock);
    g_cond_init(&l->sync_cond);
    g_mutex_init(&l->rounds_lock);
    g_cond_init(&l->rounds_cond);
    g_queue_init(&l->rounds);
    /* The syncer first: the ledger thread hands it rounds as soon as it runs. */
    if (ops->sync)
        l->syncer = g_thread_new("encore-ledger-sync", syncer_thread, l);
    l->thread = g_thread_new("encore-ledger", ledger_thread, l);
    return l;
}

void encore_ledger_close(encore_ledger *ledger)
{
    if (!ledger)
        return;
    g_mutex_lock(&ledger->lock);
    ledger->closing = true;
    g_mutex_unlock(&ledger->lock);
    g_cond_signal(&ledger->cond);
    g_thread_join(ledger->thread);
    if (ledger->syncer) {
        /* The ledger thread has handed over its last round: the syncer drains them, then ends. */
        g_mutex_lock(&ledger->rounds_lock);
        ledger->syncer_stop = true;
        g_cond_signal(&ledger->rounds_cond);
        g_mutex_unlock(&ledger->rounds_lock);
        g_thread_join(ledger->syncer);
    }
    ledger->ops->close(ledger->store);
    g_mutex_clear(&ledger->lock);
    g_cond_clear(&ledger->cond);
    g_mutex_clear(&ledger->sync_lock);
    g_cond_clear(&ledger->sync_cond);
    g_mutex_clear(&ledger->rounds_lock);
    g_cond_clear(&ledger->rounds_cond);
    g_free(ledger);
}
