/* The users store's threads and rules: callers' operations are checked and copied on their own
 * thread, run on the database thread (which alone owns the backend connection) and, for
 * sign-up and sign-in, on the Argon2id pool in between; answers are attached to the callers'
 * contexts. Neither thread ever runs a caller's callback, and the pool never holds the
 * database. Passwords are wiped as soon as they are hashed or verified. */
#define G_LOG_DOMAIN "encore-users"
#include "config.h"

#include <openssl/crypto.h>
#include <string.h>

#include "server/accounts/users.h"
#include "server/accounts/users_store.h"

#define DEFAULT_HASH_THREADS 2
#define MAX_HASH_THREADS 16
#define DEFAULT_MAX_HASH_QUEUE 64
#define DEFAULT_MAX_QUEUE 10000
#define DEFAULT_BUSY_TIMEOUT_MS 5000
/* Retries of a database step after a transient error (busy, lost connection), 20 ms apart. */
#define MAX_RETRIES 3
#define RETRY_DELAY_US 20000

GQuark encore_users_error_quark(void)
{
    return g_quark_from_static_string("encore-users-error-quark");
}

GQuark encore_users_store_error_quark(void)
{
    return g_quark_from_static_string("encore-users-store-error-quark");
}

typedef enum {
    OP_SIGNUP,
    OP_SIGNIN,
    OP_GET,
    OP_FIND,
    OP_SET_ROLE,
    OP_SET_DISABLED,
    OP_LIST,
    OP_OFFER,
    OP_ACCEPT,
    OP_END,
    OP_CONTRACTS_OF,
    OP_CONTRACTS_LOAD,
    OP_CLAIM,
    OP_CHANNELS_LOAD,
} op_kind;

static const char *const op_names[] = {
    "signup", "signin", "get", "find",         "set_role",       "set_disabled",  "list",
    "offer",  "accept", "end", "contracts_of", "contracts_load", "channel_claim", "channels_load",
};

/* Where an operation goes after a step. */
typedef enum {
    NEXT_DB,   /* the database thread */
    NEXT_POOL, /* the Argon2id pool */
    NEXT_DONE, /* answered */
} op_next;

/* A caller blocked in a blocking call: woken through the store's sync_cond. */
typedef struct {
    bool done;
} sync_wait;

/* One operation. Owned by the caller's call, then the queue, the database thread or the pool
 * (one at a time), then the delivery source on the caller's context (or the blocked caller). */
typedef struct {
    op_kind kind;
    int stage;    /* sign-up: 0 check name, 1 hash, 2 insert; sign-in: 0 read, 1 verify, 2 rehash */
    bool hashing; /* counted in hash_inflight */

    /* The request. */
    char name[ENCORE_USERS_NAME_MAX + 1];     /* as given (valid names only) */
    char name_key[ENCORE_USERS_NAME_MAX + 1]; /* lowercase; empty when the name is invalid */
    char *password;                           /* owned, wiped when freed or used */
    size_t password_len;
    int birth_year;
    encore_role role;
    int disabled; /* set_disabled */
    int64_t now;
    int64_t id;       /* user, singer (accept, end, contracts_of) */
    int64_t agent_id; /* offer, accept, end, claim */
    int singer_bp, agent_bp;
    int64_t after;
    unsigned limit;
    char room[ENCORE_USERS_ROOM_MAX + 1];

    /* Work in progress. */
    char *hash;     /* sign-up: the new hash; sign-in: the stored one (NULL: unknown name) */
    char *new_hash; /* sign-in: the replacement when a rehash is due */

    /* The answer. */
    const char *error; /* static code, NULL on success */
    encore_user user;
    encore_contract contract;
    encore_channel channel;
    GArray *list;   /* list ops */
    GError *gerror; /* blocking ops: the error to hand over */

    /* Delivery. */
    GMainContext *ctx; /* a reference until attached */
    encore_users_user_fn user_done;
    encore_users_contract_fn contract_done;
    encore_users_contracts_fn contracts_done;
    encore_users_channel_fn channel_done;
    void *user_data;
    GDestroyNotify destroy;
    sync_wait *wait; /* blocking ops */
} users_op;

struct encore_users {
    const struct encore_users_store_ops *ops;
    encore_users_store *store;
    encore_password_params params;
    unsigned max_hash_queue, max_queue;
    GThread *thread; /* the database thread */
    GThreadPool *pool;

    GMutex lock; /* guards everything below up to sync_lock */
    GCond cond;  /* the database thread waits for work or stop */
    GQueue queue;
    bool closing;           /* no new operations */
    bool stop;              /* the database thread may exit (set once nothing is in flight) */
    unsigned inflight;      /* accepted operations not yet answered */
    unsigned hash_inflight; /* of which sign-ups and sign-ins */
    GCond idle_cond;        /* close() waits here for inflight == 0 */

    GMutex sync_lock; /* guards every sync_wait.done */
    GCond sync_cond;
};

bool encore_users_name_valid(const char *name, size_t len)
{
    if (!name || len < ENCORE_USERS_NAME_MIN || len > ENCORE_USERS_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!g_ascii_isalnum(c) && c != '_' && c != '.' && c != '-')
            return false;
    }
    return true;
}

bool encore_users_room_valid(const char *room, size_t len)
{
    if (!room || len < 1 || len > ENCORE_USERS_ROOM_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = room[i];
        if (!g_ascii_isalnum(c) && c != '_' && c != '-')
            return false;
    }
    return true;
}

const char *encore_contract_status_name(encore_contract_status status)
{
    switch (status) {
    case ENCORE_CONTRACT_OFFERED:
        return "offered";
    case ENCORE_CONTRACT_ACTIVE:
        return "active";
    case ENCORE_CONTRACT_ENDED:
        return "ended";
    }
    return NULL;
}

encore_contract_status encore_users_store_status_parse(const char *s)
{
    if (g_strcmp0(s, "offered") == 0)
        return ENCORE_CONTRACT_OFFERED;
    if (g_strcmp0(s, "active") == 0)
        return ENCORE_CONTRACT_ACTIVE;
    return ENCORE_CONTRACT_ENDED;
}

/* Copies a NUL-terminated name into op (name and lowercase key) when it is valid; leaves both
 * empty otherwise. Returns whether it was valid. */
static bool op_set_name(users_op *op, const char *name)
{
    size_t len = name ? strnlen(name, ENCORE_USERS_NAME_MAX + 1) : 0;
    if (!encore_users_name_valid(name, len))
        return false;
    memcpy(op->name, name, len);
    op->name[len] = '\0';
    for (size_t i = 0; i <= len; i++)
        op->name_key[i] = g_ascii_tolower(name[i]);
    return true;
}

static void wipe_free(char *s, size_t len)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, len);
    g_free(s);
}

static void op_wipe_password(users_op *op)
{
    wipe_free(op->password, op->password_len);
    op->password = NULL;
    op->password_len = 0;
}

static void op_free(users_op *op)
{
    op_wipe_password(op);
    if (op->hash)
        wipe_free(op->hash, strlen(op->hash));
    if (op->new_hash)
        wipe_free(op->new_hash, strlen(op->new_hash));
    if (op->list)
        g_array_unref(op->list);
    g_clear_error(&op->gerror);
    if (op->ctx)
        g_main_context_unref(op->ctx);
    g_free(op);
}

static users_op *op_new(op_kind kind, GMainContext *reply_ctx, void *user_data,
                        GDestroyNotify destroy)
{
    users_op *op = g_new0(users_op, 1);
    op->kind = kind;
    op->ctx = reply_ctx ? g_main_context_ref(reply_ctx) : g_main_context_ref_thread_default();
    op->user_data = user_data;
    op->destroy = destroy;
    return op;
}

/* Runs on the reply context: the callback, once. The source's destroy notify then frees op. */
static gboolean op_deliver(gpointer data)
{
    users_op *op = data;
    const char *e = op->error;
    switch (op->kind) {
    case OP_SIGNUP:
    case OP_SIGNIN:
    case OP_GET:
    case OP_FIND:
    case OP_SET_ROLE:
    case OP_SET_DISABLED:
        if (op->user_done)
            op->user_done(e ? NULL : &op->user, e, op->user_data);
        break;
    case OP_OFFER:
    case OP_ACCEPT:
    case OP_END:
        if (op->contract_done)
            op->contract_done(e ? NULL : &op->contract, e, op->user_data);
        break;
    case OP_CONTRACTS_OF:
        if (op->contracts_done) {
            static const encore_contract none;
            const encore_contract *items = NULL;
            size_t n = 0;
            if (!e) {
                n = op->list->len;
                items = n ? &g_array_index(op->list, encore_contract, 0) : &none;
            }
            op->contracts_done(items, n, e, op->user_data);
        }
        break;
    case OP_CLAIM:
        if (op->channel_done)
            op->channel_done(e ? NULL : &op->channel, e, op->user_data);
        break;
    case OP_LIST:
    case OP_CONTRACTS_LOAD:
    case OP_CHANNELS_LOAD:
        break; /* blocking only */
    }
    return G_SOURCE_REMOVE;
}

/* The delivery source's destroy notify: runs whether or not the answer was delivered. */
static void op_release(gpointer data)
{
    users_op *op = data;
    if (op->destroy)
        op->destroy(op->user_data);
    op_free(op);
}

/* Hands an asynchronous op's answer to its context. op is not touched afterwards: the
 * context's thread may run and free it at once. */
static void op_attach(users_op *op)
{
    GMainContext *ctx = op->ctx;
    /* The op's reference goes first (after the source holds the op): a context whose caller
     * dropped it must not be kept alive by the answers sitting in it. */
    op->ctx = NULL;
    GSource *src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_DEFAULT);
    g_source_set_callback(src, op_deliver, op, op_release);
    g_source_attach(src, ctx);
    g_source_unref(src);
    g_main_context_unref(ctx);
}

/* Answers an op that was accepted (counted in inflight). */
static void op_finish(encore_users *u, users_op *op)
{
    g_mutex_lock(&u->lock);
    if (op->hashing)
        u->hash_inflight--;
    g_mutex_unlock(&u->lock);
    if (op->wait) {
        g_mutex_lock(&u->sync_lock);
        op->wait->done = true;
        g_cond_broadcast(&u->sync_cond);
        g_mutex_unlock(&u->sync_lock);
    } else {
        op_attach(op);
    }
    g_mutex_lock(&u->lock);
    if (--u->inflight == 0)
        g_cond_broadcast(&u->idle_cond);
    g_mutex_unlock(&u->lock);
}

/* Accepts op into the database queue, or sets op->error ("closed", "overloaded") and returns
 * false. */
static bool op_admit(encore_users *u, users_op *op)
{
    bool ok = false;
    g_mutex_lock(&u->lock);
    if (u->closing) {
        op->error = ENCORE_USERS_E_CLOSED;
    } else if (op->hashing ? u->hash_inflight >= u->max_hash_queue
                           : g_queue_get_length(&u->queue) >= u->max_queue) {
        op->error = ENCORE_USERS_E_OVERLOADED;
    } else {
        u->inflight++;
        if (op->hashing)
            u->hash_inflight++;
        g_queue_push_tail(&u->queue, op);
        g_cond_signal(&u->cond);
        ok = true;
    }
    g_mutex_unlock(&u->lock);
    return ok;
}

/* Submits an asynchronous op; an op refused before or at admission is answered through its
 * context all the same (never inside this call). */
static void op_submit(encore_users *u, users_op *op)
{
    if (op->error || !op_admit(u, op))
        op_attach(op);
}

/* A blocking call: queues op and waits. Returns TRUE on success; else FALSE with error. The
 * caller frees op. */
static gboolean op_run_sync(encore_users *u, users_op *op, GError **error)
{
    if (g_thread_self() == u->thread) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_WRONG_THREAD,
                    "blocking users store call from its database thread");
        return FALSE;
    }
    sync_wait w = {false};
    op->wait = &w;
    if (!op_admit(u, op)) {
        bool closed = strcmp(op->error, ENCORE_USERS_E_CLOSED) == 0;
        g_set_error(error, ENCORE_USERS_ERROR,
                    closed ? ENCORE_USERS_ERROR_CLOSED : ENCORE_USERS_ERROR_STORE,
                    "users store: %s", op->error);
        return FALSE;
    }
    g_mutex_lock(&u->sync_lock);
    while (!w.done)
        g_cond_wait(&u->sync_cond, &u->sync_lock);
    g_mutex_unlock(&u->sync_lock);
    if (!op->error)
        return TRUE;
    if (op->gerror) {
        g_propagate_error(error, op->gerror);
        op->gerror = NULL;
    } else {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_STORE, "users store: %s",
                    op->error);
    }
    return FALSE;
}

/* ---- Database steps (database thread) ---- */

static bool is_enabled(const encore_user *user, encore_role role)
{
    return user->role == role && !user->disabled;
}

/* Reads a user that must be an enabled `role`. Returns OK, NOT_FOUND (also for another role or
 * a disabled account) or ERROR. */
static users_store_result find_enabled(encore_users *u, int64_t id, const char *key,
                                       encore_role role, encore_user *out, GError **error)
{
    if (id <= 0 && (!key || !*key))
        return USERS_STORE_NOT_FOUND;
    users_store_result r = u->ops->find_user(u->store, id, key, out, NULL, error);
    if (r == USERS_STORE_OK && !is_enabled(out, role))
        return USERS_STORE_NOT_FOUND;
    return r;
}

static op_next step_signup(encore_users *u, users_op *op, GError **error)
{
    users_store_result r;
    if (op->stage == 0) {
        /* Most taken names are refused here, before 0.3 s of Argon2id are spent on them. */
        r = u->ops->find_user(u->store, 0, op->name_key, &op->user, NULL, error);
        if (r == USERS_STORE_ERROR)
            return NEXT_DONE;
        if (r == USERS_STORE_OK) {
            op->error = ENCORE_USERS_E_NAME_TAKEN;
            return NEXT_DONE;
        }
        op->stage = 1;
        return NEXT_POOL;
    }
    encore_user row = {
        .role = op->role,
        .birth_year = op->birth_year,
        .created_at = op->now,
    };
    memcpy(row.name, op->name, sizeof(row.name));
    r = u->ops->insert_user(u->store, &row, op->name_key, op->hash, &op->user, error);
    if (r != USERS_STORE_CONFLICT)
        return NEXT_DONE;
    /* Taken, unless the row is ours: a retried insert whose first commit succeeded but whose
     * answer was lost. The hash, with its random salt, tells. */
    char *stored = NULL;
    r = u->ops->find_user(u->store, 0, op->name_key, &op->user, &stored, error);
    if (r != USERS_STORE_ERROR && !(r == USERS_STORE_OK && g_strcmp0(stored, op->hash) == 0))
        op->error = ENCORE_USERS_E_NAME_TAKEN;
    g_free(stored);
    return NEXT_DONE;
}

static op_next step_signin(encore_users *u, users_op *op, GError **error)
{
    if (op->stage == 0) {
        if (op->hash) {
            wipe_free(op->hash, strlen(op->hash));
            op->hash = NULL;
        }
        if (op->name_key[0]) {
            users_store_result r =
                u->ops->find_user(u->store, 0, op->name_key, &op->user, &op->hash, error);
            if (r == USERS_STORE_ERROR)
                return NEXT_DONE;
        }
        op->stage = 1;
        return NEXT_POOL;
    }
    /* Stage 2: store the rehash, unless the hash changed meanwhile. A failure costs nothing
     * but a later rehash: the sign-in has succeeded either way. */
    GError *local = NULL;
    users_store_result r =
        u->ops->set_password(u->store, op->user.id, op->hash, op->new_hash, &local);
    if (r == USERS_STORE_ERROR) {
        g_warning("rehash of user %" G_GINT64_FORMAT " not stored: %s", op->user.id,
                  local->message);
        g_error_free(local);
    } else if (r == USERS_STORE_NOT_FOUND) {
        g_debug("rehash of user %" G_GINT64_FORMAT " skipped: the hash changed", op->user.id);
    }
    return NEXT_DONE;
}

static op_next step_offer(encore_users *u, users_op *op, GError **error)
{
    encore_user agent, singer;
    users_store_result r = find_enabled(u, op->agent_id, NULL, ENCORE_ROLE_AGENT, &agent, error);
    if (r != USERS_STORE_OK) {
        op->error = r == USERS_STORE_ERROR ? NULL : ENCORE_USERS_E_NOT_AGENT;
        return NEXT_DONE;
    }
    r = u->ops->find_user(u->store, 0, op->name_key, &singer, NULL, error);
    if (r == USERS_STORE_ERROR)
        return NEXT_DONE;
    if (r == USERS_STORE_NOT_FOUND || singer.disabled) {
        op->error = ENCORE_USERS_E_UNKNOWN_SINGER;
        return NEXT_DONE;
    }
    if (singer.role != ENCORE_ROLE_SINGER) {
        op->error = ENCORE_USERS_E_NOT_SINGER;
        return NEXT_DONE;
    }
    encore_contract c = {
        .singer_id = singer.id,
        .agent_id = agent.id,
        .singer_bp = op->singer_bp,
        .agent_bp = op->agent_bp,
        .status = ENCORE_CONTRACT_OFFERED,
        .offered_at = op->now,
    };
    r = u->ops->offer(u->store, &c, &op->contract, error);
    if (r == USERS_STORE_CONFLICT)
        op->error = ENCORE_USERS_E_ALREADY_SIGNED;
    return NEXT_DONE;
}

static op_next step_accept(encore_users *u, users_op *op, GError **error)
{
    encore_user someone;
    users_store_result r = find_enabled(u, op->id, NULL, ENCORE_ROLE_SINGER, &someone, error);
    if (r != USERS_STORE_OK) {
        op->error = r == USERS_STORE_ERROR ? NULL : ENCORE_USERS_E_NOT_SINGER;
        return NEXT_DONE;
    }
    r = find_enabled(u, op->agent_id, NULL, ENCORE_ROLE_AGENT, &someone, error);
    if (r != USERS_STORE_OK) {
        op->error = r == USERS_STORE_ERROR ? NULL : ENCORE_USERS_E_NO_OFFER;
        return NEXT_DONE;
    }
    r = u->ops->accept(u->store, op->id, op->agent_id, op->now, &op->contract, error);
    if (r != USERS_STORE_NOT_FOUND)
        return NEXT_DONE;
    /* Nothing pending from this agent: a retry of an accept that succeeded, or a refusal. */
    r = u->ops->get_contract(u->store, op->id, &op->contract, error);
    if (r == USERS_STORE_ERROR)
        return NEXT_DONE;
    if (r == USERS_STORE_OK && op->contract.status == ENCORE_CONTRACT_ACTIVE)
        op->error = op->contract.agent_id == op->agent_id ? NULL : ENCORE_USERS_E_ALREADY_SIGNED;
    else
        op->error = ENCORE_USERS_E_NO_OFFER;
    return NEXT_DONE;
}

static op_next step_claim(encore_users *u, users_op *op, GError **error)
{
    encore_user agent;
    users_store_result r = find_enabled(u, op->agent_id, NULL, ENCORE_ROLE_AGENT, &agent, error);
    if (r != USERS_STORE_OK) {
        op->error = r == USERS_STORE_ERROR ? NULL : ENCORE_USERS_E_NOT_AGENT;
        return NEXT_DONE;
    }
    r = u->ops->claim_channel(u->store, op->room, op->agent_id, op->now, &op->channel, error);
    if (r == USERS_STORE_OK && op->channel.agent_id != op->agent_id)
        op->error = ENCORE_USERS_E_ROOM_TAKEN;
    return NEXT_DONE;
}

/* One database step of op. Business refusals set op->error; a database failure sets *error
 * (op->error is then set by the caller). Must be safe to run again after a transient error. */
static op_next db_run(encore_users *u, users_op *op, GError **error)
{
    users_store_result r = USERS_STORE_OK;
    op->error = NULL;
    if (op->list)
        g_array_set_size(op->list, 0);
    switch (op->kind) {
    case OP_SIGNUP:
        return step_signup(u, op, error);
    case OP_SIGNIN:
        return step_signin(u, op, error);
    case OP_GET:
    case OP_FIND:
        r = u->ops->find_user(u->store, op->id, op->name_key, &op->user, NULL, error);
        break;
    case OP_SET_ROLE:
        r = u->ops->update_user(u->store, op->name_key, (int)op->role, -1, &op->user, error);
        break;
    case OP_SET_DISABLED:
        r = u->ops->update_user(u->store, op->name_key, -1, op->disabled, &op->user, error);
        break;
    case OP_LIST:
        r = u->ops->list_users(u->store, op->after, op->limit, op->list, error);
        break;
    case OP_OFFER:
        return step_offer(u, op, error);
    case OP_ACCEPT:
        return step_accept(u, op, error);
    case OP_END:
        r = u->ops->end(u->store, op->id, op->agent_id, op->now, &op->contract, error);
        if (r == USERS_STORE_NOT_FOUND)
            op->error = ENCORE_USERS_E_NO_CONTRACT;
        return NEXT_DONE;
    case OP_CONTRACTS_OF:
        r = u->ops->list_contracts(u->store, op->id, op->list, error);
        break;
    case OP_CONTRACTS_LOAD:
        r = u->ops->list_contracts(u->store, 0, op->list, error);
        break;
    case OP_CLAIM:
        return step_claim(u, op, error);
    case OP_CHANNELS_LOAD:
        r = u->ops->list_channels(u->store, op->list, error);
        break;
    }
    if (r == USERS_STORE_NOT_FOUND) {
        op->error = ENCORE_USERS_E_NOT_FOUND;
        g_set_error(&op->gerror, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_NOT_FOUND,
                    "no user %" G_GINT64_FORMAT, op->id);
    }
    return NEXT_DONE;
}

/* Runs db_run() with retries of transient errors; a lasting error answers "store_error". */
static op_next db_step(encore_users *u, users_op *op)
{
    for (unsigned attempt = 0;; attempt++) {
        GError *err = NULL;
        g_clear_error(&op->gerror);
        op_next next = db_run(u, op, &err);
        if (!err)
            return next;
        bool transient =
            err->domain == ENCORE_USERS_STORE_ERROR && err->code == ENCORE_USERS_STORE_TRANSIENT;
        if (transient && attempt < MAX_RETRIES) {
            g_debug("%s %s: retry %u: %s", u->ops->name, op_names[op->kind], attempt + 1,
                    err->message);
            g_error_free(err);
            g_usleep(RETRY_DELAY_US);
            continue;
        }
        g_warning("%s %s failed: %s", u->ops->name, op_names[op->kind], err->message);
        op->error = ENCORE_USERS_E_STORE;
        g_set_error(&op->gerror, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_STORE, "%s", err->message);
        g_error_free(err);
        return NEXT_DONE;
    }
}

/* ---- Argon2id steps (pool threads) ---- */

static op_next hash_signup(encore_users *u, users_op *op)
{
    char buf[ENCORE_PASSWORD_ENCODED_MAX];
    int rc = encore_password_hash(&u->params, op->password, op->password_len, buf, sizeof(buf));
    op_wipe_password(op);
    if (rc != 0) {
        g_warning("signup: hashing failed: %s", encore_password_error_code(rc));
        op->error = ENCORE_USERS_E_STORE;
        return NEXT_DONE;
    }
    op->hash = g_strdup(buf);
    op->stage = 2;
    return NEXT_DB;
}

static op_next hash_signin(encore_users *u, users_op *op)
{
    op_next next = NEXT_DONE;
    const char *pw = op->password ? op->password : "";
    int rc;
    if (op->hash)
        rc = encore_password_verify(op->hash, pw, op->password_len);
    else
        rc = encore_password_verify_dummy(&u->params, pw, op->password_len);
    switch (rc) {
    case 0:
        break;
    case ENCORE_PASSWORD_EMISMATCH:
    case ENCORE_PASSWORD_ETOOLONG:
    case ENCORE_PASSWORD_EINVALID:
    case ENCORE_PASSWORD_ETOOSHORT:
        op->error = ENCORE_USERS_E_BAD_CREDENTIALS;
        goto out;
    case ENCORE_PASSWORD_EENCODED:
        g_warning("signin: user %" G_GINT64_FORMAT " has an unreadable password hash", op->user.id);
        op->error = ENCORE_USERS_E_BAD_CREDENTIALS;
        goto out;
    default:
        g_warning("signin: verification failed: %s", encore_password_error_code(rc));
        op->error = ENCORE_USERS_E_STORE;
        goto out;
    }
    if (op->user.disabled) {
        op->error = ENCORE_USERS_E_DISABLED;
        goto out;
    }
    if (encore_password_needs_rehash(op->hash, &u->params)) {
        char buf[ENCORE_PASSWORD_ENCODED_MAX];
        rc = encore_password_hash(&u->params, pw, op->password_len, buf, sizeof(buf));
        if (rc == 0) {
            op->new_hash = g_strdup(buf);
            op->stage = 2;
            next = NEXT_DB;
        } else {
            /* E.g. a password shorter than today's policy: it keeps its old hash. */
            g_debug("signin: no rehash for user %" G_GINT64_FORMAT ": %s", op->user.id,
                    encore_password_error_code(rc));
        }
    }
out:
    op_wipe_password(op);
    return next;
}

/* ---- Routing ---- */

static void op_route(encore_users *u, users_op *op, op_next next)
{
    switch (next) {
    case NEXT_DB:
        g_mutex_lock(&u->lock);
        g_queue_push_tail(&u->queue, op);
        g_cond_signal(&u->cond);
        g_mutex_unlock(&u->lock);
        return;
    case NEXT_POOL: {
        GError *err = NULL;
        if (g_thread_pool_push(u->pool, op, &err))
            return;
        g_warning("%s: cannot queue for hashing: %s", op_names[op->kind], err->message);
        g_error_free(err);
        op->error = ENCORE_USERS_E_STORE;
        break;
    }
    case NEXT_DONE:
        break;
    }
    op_finish(u, op);
}

static void pool_run(gpointer data, gpointer user_data)
{
    encore_users *u = user_data;
    users_op *op = data;
    op_route(u, op, op->kind == OP_SIGNUP ? hash_signup(u, op) : hash_signin(u, op));
}

static gpointer db_thread(gpointer data)
{
    encore_users *u = data;
    for (;;) {
        g_mutex_lock(&u->lock);
        while (g_queue_is_empty(&u->queue) && !u->stop)
            g_cond_wait(&u->cond, &u->lock);
        users_op *op = g_queue_pop_head(&u->queue);
        g_mutex_unlock(&u->lock);
        if (!op)
            break;
        op_route(u, op, db_step(u, op));
    }
    return NULL;
}

/* ---- Open and close ---- */

static bool params_valid(const encore_password_params *p)
{
    return p->p >= 1 && p->p <= ENCORE_PASSWORD_MAX_P && p->t >= 1 &&
           p->t <= ENCORE_PASSWORD_MAX_T && p->m_kib >= 8 * p->p &&
           p->m_kib <= ENCORE_PASSWORD_MAX_M_KIB;
}

encore_users *encore_users_open(const encore_users_config *cfg, GError **error)
{
    const char *backend = cfg ? cfg->backend : NULL;
    const struct encore_users_store_ops *ops = NULL;
    const char *target = NULL;
    static const struct encore_users_store_ops *const all[] = {&encore_users_sqlite_ops,
                                                               &encore_users_pg_ops};
    for (size_t i = 0; backend && i < G_N_ELEMENTS(all); i++) {
        size_t len = strlen(all[i]->name);
        if (strncmp(backend, all[i]->name, len) == 0 && backend[len] == ':') {
            ops = all[i];
            target = backend + len + 1;
        }
    }
    if (!ops || !*target) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_CONFIG,
                    "users backend must be sqlite:PATH or postgresql:CONNINFO, not \"%s\"",
                    backend ? backend : "");
        return NULL;
    }
    encore_password_params params = cfg->password;
    if (params.m_kib == 0 && params.t == 0 && params.p == 0)
        params = ENCORE_PASSWORD_PARAMS_DEFAULT;
    if (!params_valid(&params) ||
        (!cfg->allow_weak_password_params && !encore_password_params_strong(&params))) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_CONFIG,
                    "password parameters m=%u,t=%u,p=%u are %s", params.m_kib, params.t, params.p,
                    params_valid(&params) ? "weaker than m=19456,t=2" : "invalid");
        return NULL;
    }
    unsigned threads = cfg->hash_threads ? cfg->hash_threads : DEFAULT_HASH_THREADS;
    if (threads > MAX_HASH_THREADS) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_CONFIG,
                    "hash_threads must be at most %d, not %u", MAX_HASH_THREADS, threads);
        return NULL;
    }
    encore_users_store_options opts = {
        .open_existing = cfg->open_existing,
        .busy_timeout_ms = cfg->busy_timeout_ms ? cfg->busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS,
    };
    encore_users_store *store = ops->open(target, &opts, error);
    if (!store)
        return NULL;
    encore_users *u = g_new0(encore_users, 1);
    u->ops = ops;
    u->store = store;
    u->params = params;
    u->max_hash_queue = cfg->max_hash_queue ? cfg->max_hash_queue : DEFAULT_MAX_HASH_QUEUE;
    u->max_queue = cfg->max_queue ? cfg->max_queue : DEFAULT_MAX_QUEUE;
    g_mutex_init(&u->lock);
    g_cond_init(&u->cond);
    g_cond_init(&u->idle_cond);
    g_queue_init(&u->queue);
    g_mutex_init(&u->sync_lock);
    g_cond_init(&u->sync_cond);
    GError *local = NULL;
    u->pool = g_thread_pool_new(pool_run, u, (gint)threads, TRUE, &local);
    if (!u->pool) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_CONFIG,
                    "cannot start the hashing threads: %s", local->message);
        g_error_free(local);
        ops->close(store);
        g_mutex_clear(&u->lock);
        g_cond_clear(&u->cond);
        g_cond_clear(&u->idle_cond);
        g_mutex_clear(&u->sync_lock);
        g_cond_clear(&u->sync_cond);
        g_free(u);
        return NULL;
    }
    u->thread = g_thread_new("encore-users", db_thread, u);
    return u;
}

void encore_users_close(encore_users *users)
{
    if (!users)
        return;
    g_mutex_lock(&users->lock);
    users->closing = true;
    /* Operations in flight move between the two kinds of thread: both stay until none is
     * left. */
    while (users->inflight > 0)
        g_cond_wait(&users->idle_cond, &users->lock);
    users->stop = true;
    g_cond_signal(&users->cond);
    g_mutex_unlock(&users->lock);
    g_thread_join(users->thread);
    g_thread_pool_free(users->pool, FALSE, TRUE);
    users->ops->close(users->store);
    g_mutex_clear(&users->lock);
    g_cond_clear(&users->cond);
    g_cond_clear(&users->idle_cond);
    g_mutex_clear(&users->sync_lock);
    g_cond_clear(&users->sync_cond);
    g_free(users);
}

/* ---- Calls ---- */

static users_op *user_op(op_kind kind, GMainContext *ctx, encore_users_user_fn done, void *ud,
                         GDestroyNotify destroy)
{
    users_op *op = op_new(kind, ctx, ud, destroy);
    op->user_done = done;
    return op;
}

static users_op *contract_op(op_kind kind, GMainContext *ctx, encore_users_contract_fn done,
                             void *ud, GDestroyNotify destroy)
{
    users_op *op = op_new(kind, ctx, ud, destroy);
    op->contract_done = done;
    return op;
}

void encore_users_signup_async(encore_users *users, const char *name, const char *password,
                               size_t password_len, int birth_year, encore_role role, int64_t now,
                               GMainContext *reply_ctx, encore_users_user_fn done, void *user_data,
                               GDestroyNotify destroy)
{
    users_op *op = user_op(OP_SIGNUP, reply_ctx, done, user_data, destroy);
    op->hashing = true;
    op->birth_year = birth_year;
    op->role = role;
    op->now = now;
    if (!op_set_name(op, name))
        op->error = ENCORE_USERS_E_BAD_NAME;
    else if (!encore_roles_name(role))
        op->error = ENCORE_USERS_E_BAD_ROLE;
    else if (!encore_accounts_birth_year_valid(birth_year, now))
        op->error = ENCORE_USERS_E_BAD_BIRTH_YEAR;
    else if (!password || encore_password_check_policy(password, password_len) != 0)
        op->error = ENCORE_USERS_E_WEAK_PASSWORD;
    else
        op->password = g_memdup2(password, password_len);
    op->password_len = op->password ? password_len : 0;
    op_submit(users, op);
}

void encore_users_signin_async(encore_users *users, const char *name, const char *password,
                               size_t password_len, GMainContext *reply_ctx,
                               encore_users_user_fn done, void *user_data, GDestroyNotify destroy)
{
    users_op *op = user_op(OP_SIGNIN, reply_ctx, done, user_data, destroy);
    op->hashing = true;
    /* An invalid name is looked up nowhere but still costs a (dummy) verification. */
    op_set_name(op, name);
    /* At most one byte beyond the policy's maximum is kept: enough to refuse it as too long. */
    size_t keep = password ? MIN(password_len, (size_t)ENCORE_PASSWORD_MAX_BYTES + 1) : 0;
    op->password = g_memdup2(password ? password : "", keep);
    op->password_len = keep;
    op_submit(users, op);
}

void encore_users_get_async(encore_users *users, int64_t id, GMainContext *reply_ctx,
                            encore_users_user_fn done, void *user_data, GDestroyNotify destroy)
{
    users_op *op = user_op(OP_GET, reply_ctx, done, user_data, destroy);
    op->id = id;
    if (id <= 0)
        op->error = ENCORE_USERS_E_NOT_FOUND;
    op_submit(users, op);
}

void encore_users_find_by_name_async(encore_users *users, const char *name, GMainContext *reply_ctx,
                                     encore_users_user_fn done, void *user_data,
                                     GDestroyNotify destroy)
{
    users_op *op = user_op(OP_FIND, reply_ctx, done, user_data, destroy);
    if (!op_set_name(op, name))
        op->error = ENCORE_USERS_E_NOT_FOUND;
    op_submit(users, op);
}

gboolean encore_users_get(encore_users *users, int64_t id, encore_user *out, GError **error)
{
    if (id <= 0) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_NOT_FOUND,
                    "no user %" G_GINT64_FORMAT, id);
        return FALSE;
    }
    users_op *op = g_new0(users_op, 1);
    op->kind = OP_GET;
    op->id = id;
    gboolean ok = op_run_sync(users, op, error);
    if (ok && out)
        *out = op->user;
    op_free(op);
    return ok;
}

/* A blocking list op of `kind` whose answer is a GArray of element_size. */
static GArray *list_sync(encore_users *users, op_kind kind, size_t element_size, int64_t after,
                         unsigned limit, GError **error)
{
    users_op *op = g_new0(users_op, 1);
    op->kind = kind;
    op->after = after;
    op->limit = limit;
    op->list = g_array_new(FALSE, TRUE, (guint)element_size);
    GArray *list = NULL;
    if (op_run_sync(users, op, error)) {
        list = op->list;
        op->list = NULL;
    }
    op_free(op);
    return list;
}

GArray *encore_users_list(encore_users *users, int64_t after_id, unsigned limit, GError **error)
{
    if (limit < 1 || limit > ENCORE_USERS_LIST_MAX) {
        g_set_error(error, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_CONFIG,
                    "list limit must be 1 to %d, not %u", ENCORE_USERS_LIST_MAX, limit);
        return NULL;
    }
    return list_sync(users, OP_LIST, sizeof(encore_user), after_id, limit, error);
}

void encore_users_set_role_async(encore_users *users, const char *name, encore_role role,
                                 GMainContext *reply_ctx, encore_users_user_fn done,
                                 void *user_data, GDestroyNotify destroy)
{
    users_op *op = user_op(OP_SET_ROLE, reply_ctx, done, user_data, destroy);
    op->role = role;
    if (!encore_roles_name(role))
        op->error = ENCORE_USERS_E_BAD_ROLE;
    else if (!op_set_name(op, name))
        op->error = ENCORE_USERS_E_NOT_FOUND;
    op_submit(users, op);
}

void encore_users_set_disabled_async(encore_users *users, const char *name, bool disabled,
                                     GMainContext *reply_ctx, encore_users_user_fn done,
                                     void *user_data, GDestroyNotify destroy)
{
    users_op *op = user_op(OP_SET_DISABLED, reply_ctx, done, user_data, destroy);
    op->disabled = disabled ? 1 : 0;
    if (!op_set_name(op, name))
        op->error = ENCORE_USERS_E_NOT_FOUND;
    op_submit(users, op);
}

void encore_users_contract_offer_async(encore_users *users, int64_t agent_id,
                                       const char *singer_name, int singer_bp, int agent_bp,
                                       int64_t now, GMainContext *reply_ctx,
                                       encore_users_contract_fn done, void *user_data,
                                       GDestroyNotify destroy)
{
    users_op *op = contract_op(OP_OFFER, reply_ctx, done, user_data, destroy);
    op->agent_id = agent_id;
    op->singer_bp = singer_bp;
    op->agent_bp = agent_bp;
    op->now = now;
    if (singer_bp < 0 || agent_bp < 0 || singer_bp > ENCORE_USERS_BP_TOTAL ||
        agent_bp > ENCORE_USERS_BP_TOTAL - singer_bp)
        op->error = ENCORE_USERS_E_BAD_SPLIT;
    else if (!op_set_name(op, singer_name))
        op->error = ENCORE_USERS_E_UNKNOWN_SINGER;
    else if (agent_id <= 0)
        op->error = ENCORE_USERS_E_NOT_AGENT;
    op_submit(users, op);
}

void encore_users_contract_accept_async(encore_users *users, int64_t singer_id, int64_t agent_id,
                                        int64_t now, GMainContext *reply_ctx,
                                        encore_users_contract_fn done, void *user_data,
                                        GDestroyNotify destroy)
{
    users_op *op = contract_op(OP_ACCEPT, reply_ctx, done, user_data, destroy);
    op->id = singer_id;
    op->agent_id = agent_id;
    op->now = now;
    if (singer_id <= 0)
        op->error = ENCORE_USERS_E_NOT_SINGER;
    else if (agent_id <= 0)
        op->error = ENCORE_USERS_E_NO_OFFER;
    op_submit(users, op);
}

void encore_users_contract_end_async(encore_users *users, int64_t singer_id, int64_t agent_id,
                                     int64_t now, GMainContext *reply_ctx,
                                     encore_users_contract_fn done, void *user_data,
                                     GDestroyNotify destroy)
{
    users_op *op = contract_op(OP_END, reply_ctx, done, user_data, destroy);
    op->id = singer_id;
    op->agent_id = agent_id;
    op->now = now;
    if (singer_id <= 0 || agent_id < 0)
        op->error = ENCORE_USERS_E_NO_CONTRACT;
    op_submit(users, op);
}

void encore_users_contracts_of_async(encore_users *users, int64_t user_id, GMainContext *reply_ctx,
                                     encore_users_contracts_fn done, void *user_data,
                                     GDestroyNotify destroy)
{
    users_op *op = op_new(OP_CONTRACTS_OF, reply_ctx, user_data, destroy);
    op->contracts_done = done;
    op->id = user_id;
    op->list = g_array_new(FALSE, TRUE, sizeof(encore_contract));
    /* user_id 0 would mean "every active contract" to the store: no user has it. */
    if (user_id <= 0)
        op->id = -1;
    op_submit(users, op);
}

GArray *encore_users_contracts_load(encore_users *users, GError **error)
{
    return list_sync(users, OP_CONTRACTS_LOAD, sizeof(encore_contract), 0, 0, error);
}

void encore_users_channel_claim_async(encore_users *users, int64_t agent_id, const char *room,
                                      int64_t now, GMainContext *reply_ctx,
                                      encore_users_channel_fn done, void *user_data,
                                      GDestroyNotify destroy)
{
    users_op *op = op_new(OP_CLAIM, reply_ctx, user_data, destroy);
    op->channel_done = done;
    op->agent_id = agent_id;
    op->now = now;
    size_t len = room ? strnlen(room, ENCORE_USERS_ROOM_MAX + 1) : 0;
    if (!encore_users_room_valid(room, len)) {
        op->error = ENCORE_USERS_E_BAD_ROOM;
    } else {
        memcpy(op->room, room, len);
        op->room[len] = '\0';
        if (agent_id <= 0)
            op->error = ENCORE_USERS_E_NOT_AGENT;
    }
    op_submit(users, op);
}

GArray *encore_users_channels_load(encore_users *users, GError **error)
{
    return list_sync(users, OP_CHANNELS_LOAD, sizeof(encore_channel), 0, 0, error);
}
