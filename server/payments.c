/* Top-ups (see payments.h). A webhook request is answered only after the ledger made the credit
 * durable (200), or refused before anything moved (4xx), or left for the provider to retry (503).
 * The event id is the idempotency key ("topup:<provider>:<event>"), so a replayed or retried
 * webhook credits once. Main thread. */
#define G_LOG_DOMAIN "encore-payments"
#include "config.h"

#include "server/payments.h"

#include <gio/gio.h>
#include <openssl/rand.h>
#include <string.h>

#include "server/accounts/roles.h"
#include "server/accounts/users.h"
#include "server/accounts/webhook.h"
#include "server/auth.h"
#include "server/economy/catalog.h"
#include "server/economy/ledger.h"
#include "server/httpjson.h"
#include "server/secrets.h"

#define SANDBOX "sandbox"
#define SANDBOX_MAX_AMOUNT 1000000 /* minor units in one sandbox checkout (10,000.00) */

typedef struct {
    char *name;
    GArray *secrets; /* encore_secret */
} provider;

struct encore_payments {
    encore_server *srv;
    GHashTable *providers; /* name -> provider */
    uint64_t credited, duplicates, refused, bad_signature, unavailable, held;
};

static void provider_free(gpointer data)
{
    provider *p = data;
    encore_secrets_free(p->secrets);
    g_free(p->name);
    g_free(p);
}

static gboolean name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 32)
        return FALSE;
    for (; *s; s++)
        if (!g_ascii_islower(*s) && !g_ascii_isdigit(*s) && *s != '_' && *s != '-')
            return FALSE;
    return TRUE;
}

encore_payments *encore_payments_new(encore_server *srv, GError **error)
{
    encore_payments *p = g_new0(encore_payments, 1);
    p->srv = srv;
    p->providers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, provider_free);
    gsize n = 0;
    char **groups = g_key_file_get_groups(srv->cfg->file, &n);
    gboolean ok = TRUE;
    for (gsize i = 0; ok && i < n; i++) {
        if (!g_str_has_prefix(groups[i], "provider."))
            continue;
        const char *name = groups[i] + strlen("provider.");
        char *file = g_key_file_get_string(srv->cfg->file, groups[i], "secret_file", NULL);
        if (!name_ok(name) || strcmp(name, SANDBOX) == 0 || !file) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "[%s] needs a name of 1-32 [a-z0-9_-] (not 'sandbox') and a "
                        "secret_file",
                        groups[i]);
            ok = FALSE;
        } else {
            GArray *s = encore_secrets_load(file, FALSE, error);
            if (!s) {
                ok = FALSE;
            } else {
                provider *pv = g_new0(provider, 1);
                pv->name = g_strdup(name);
                pv->secrets = s;
                g_hash_table_replace(p->providers, pv->name, pv);
            }
        }
        g_free(file);
    }
    g_strfreev(groups);
    if (ok && srv->cfg->sandbox) {
        GArray *s = encore_secrets_load(srv->cfg->sandbox_secret_file, TRUE, error);
        if (!s) {
            ok = FALSE;
        } else {
            provider *pv = g_new0(provider, 1);
            pv->name = g_strdup(SANDBOX);
            pv->secrets = s;
            g_hash_table_replace(p->providers, pv->name, pv);
        }
    }
    if (!ok) {
        encore_payments_free(p);
        return NULL;
    }
    return p;
}

void encore_payments_free(encore_payments *p)
{
    if (!p)
        return;
    g_hash_table_destroy(p->providers);
    g_free(p);
}

/* ---- the webhook --------------------------------------------------------------------------- */

typedef struct {
    encore_payments *pay;
    uint64_t req_id;
    char provider[33];
    encore_webhook_event ev;
    int64_t coins;
} credit;

static encore_ws_http *req_of(credit *c)
{
    return encore_ws_http_lookup(c->pay->srv->ws, c->req_id);
}

static void credit_free(gpointer data)
{
    g_free(data);
}

static void on_credit_lookup(gboolean ok, const encore_ledger_record *rec, const GError *error,
                             void *user_data)
{
    credit *c = user_data;
    encore_ws_http *req = req_of(c);
    json_t *m = ok && rec && rec->metadata ? json_loads(rec->metadata, 0, NULL) : NULL;
    bool same = m &&
                g_strcmp0(json_string_value(json_object_get(m, "provider")), c->provider) == 0 &&
                g_strcmp0(json_string_value(json_object_get(m, "event")), c->ev.id) == 0 &&
                json_integer_value(json_object_get(m, "user")) == c->ev.user_id &&
                json_integer_value(json_object_get(m, "amount")) == c->ev.amount &&
                g_strcmp0(json_string_value(json_object_get(m, "currency")), c->ev.currency) == 0;
    if (same) {
        c->pay->duplicates++;
        if (req)
            encore_ws_http_respond_json(req, 200,
                                        json_pack("{s:b, s:b, s:I, s:I}", "credited", 1,
                                                  "duplicate", 1, "coins",
                                                  json_integer_value(json_object_get(m, "coins")),
                                                  "transfer", (json_int_t)rec->transfer_id));
    } else {
        c->pay->refused++;
        g_warning("top-up %s:%s: the same event id came with other contents", c->provider,
                  c->ev.id);
        if (req && ok)
            encore_httpjson_error(req, 409, "conflict",
                                  "this event id was credited before with other contents");
        else if (req)
            encore_httpjson_error(req, 503, "unavailable", "the ledger could not answer: %s",
                                  error ? error->message : "?");
    }
    json_decref(m);
}

static void lookup_credit(credit *c)
{
    char id[ENCORE_LEDGER_ID_MAX + 1];
    snprintf(id, sizeof id, "topup:%s:%s", c->provider, c->ev.id);
    credit *copy = g_memdup2(c, sizeof *c);
    encore_ledger_lookup_async(c->pay->srv->ledger, id, c->pay->srv->ctx, on_credit_lookup, copy,
                               credit_free);
}

static void on_credited(const encore_transfer_result *r, void *user_data)
{
    credit *c = user_data;
    encore_payments *p = c->pay;
    encore_ws_http *req = req_of(c);
    switch (r->status) {
    case ENCORE_LEDGER_OK:
        if (r->replayed)
            p->duplicates++;
        else
            p->credited++;
        g_message("top-up %s:%s: %" G_GINT64_FORMAT " coins to user %" G_GINT64_FORMAT "%s",
                  c->provider, c->ev.id, c->coins, c->ev.user_id,
                  r->replayed ? " (already credited)" : "");
        if (req)
            encore_ws_http_respond_json(
                req, 200,
                json_pack("{s:b, s:b, s:I, s:I}", "credited", 1, "duplicate", r->replayed, "coins",
                          (json_int_t)c->coins, "transfer", (json_int_t)r->transfer_id));
        break;
    case ENCORE_LEDGER_IDEMPOTENCY_CONFLICT:
        /* The event was booked before under other terms of this server's (the coin rate or the
         * buyer's age changed since): a replay of the same event is a duplicate, anything else
         * a conflict. */
        if (p->srv->ledger) /* NULL while shutting down */
            lookup_credit(c);
        return;
    case ENCORE_LEDGER_STORE_ERROR:
    case ENCORE_LEDGER_OVERLOADED:
    case ENCORE_LEDGER_CLOSED:
        p->unavailable++;
        if (req)
            encore_httpjson_error(req, 503, "unavailable", "the ledger is unavailable (%s); retry",
                                  encore_ledger_status_name(r->status));
        break;
    default:
        p->refused++;
        if (req)
            encore_httpjson_error(req, 422, "unknown_account", "%s", r->detail);
        break;
    }
}

/* Posts the credit (or, for an account that may not buy coins, the hold for a refund). */
static void submit_credit(credit *c, bool minor)
{
    encore_server *srv = c->pay->srv;
    char id[ENCORE_LEDGER_ID_MAX + 1], to[ENCORE_LEDGER_ACCOUNT_MAX + 1];
    snprintf(id, sizeof id, "topup:%s:%s", c->provider, c->ev.id);
    if (minor) /* held in escrow for a refund, out of the buyer's reach, still on the books */
        snprintf(to, sizeof to, "escrow:minor-%" G_GINT64_FORMAT, c->ev.user_id);
    else
        snprintf(to, sizeof to, "wallet:%" G_GINT64_FORMAT, c->ev.user_id);
    json_t *meta =
        json_pack("{s:s, s:s, s:I, s:I, s:s, s:I}", "provider", c->provider, "event", c->ev.id,
                  "user", (json_int_t)c->ev.user_id, "amount", (json_int_t)c->ev.amount, "currency",
                  c->ev.currency, "coins", (json_int_t)c->coins);
    char *m = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(meta);
    encore_transfer_req req;
    encore_leg legs[2];
    encore_transfer_move(&req, legs, id, minor ? "topup.held" : "topup", "external:topups", to,
                         c->coins);
    req.metadata = m;
    encore_ledger_submit(srv->ledger, &req, srv->ctx, on_credited, c, g_free);
    free(m);
}

static void on_event_user(const encore_user *u, const char *code, void *user_data)
{
    credit *c = user_data;
    encore_ws_http *req = req_of(c);
    if (!u) {
        bool gone = strcmp(code, "not_found") == 0;
        if (gone)
            c->pay->refused++;
        else
            c->pay->unavailable++;
        if (req) {
            if (gone)
                encore_httpjson_error(req, 422, "unknown_account", "no user %" G_GINT64_FORMAT,
                                      c->ev.user_id);
            else
                encore_httpjson_error(req, 503, "unavailable", "the accounts store failed; retry");
        }
        g_free(c);
        return;
    }
    /* Coins only for accounts that may spend them: a minor's (or a staff account's) payment is
     * held in escrow for a refund, on the books, out of reach. */
    bool minor = !encore_accounts_may_spend(u->role, u->birth_year, encore_server_now());
    if (minor) {
        c->pay->held++;
        g_warning("top-up %s:%s for user %" G_GINT64_FORMAT
                  " who may not buy coins (under 18 or staff): held for a refund",
                  c->provider, c->ev.id, u->id);
    }
    if (!c->pay->srv->ledger) { /* shutting down: the provider retries */
        g_free(c);
        return;
    }
    submit_credit(c, minor); /* c passes to the ledger callback */
}

static void h_webhook(encore_ws_http *req, void *user_data)
{
    encore_server *srv = user_data;
    encore_payments *p = srv->payments;
    const char *name = encore_ws_http_path(req) + strlen("/api/webhooks/");
    provider *pv = g_hash_table_lookup(p->providers, name);
    if (!pv) {
        encore_httpjson_error(req, 404, "not_found", "no such payment provider");
        return;
    }
    size_t len = 0;
    const uint8_t *body = encore_ws_http_body(req, &len);
    const char *sig = encore_ws_http_header(req, "encore-signature");
    encore_webhook_secret secrets[8];
    size_t n = MIN(pv->secrets->len, G_N_ELEMENTS(secrets));
    for (size_t i = 0; i < n; i++) {
        const encore_secret *s = &g_array_index(pv->secrets, encore_secret, i);
        secrets[i] = (encore_webhook_secret){s->key, s->len};
    }
    int rc = encore_webhook_verify(sig, sig ? strlen(sig) : 0, body, len, secrets, n,
                                   encore_server_now(), ENCORE_WEBHOOK_TOLERANCE);
    if (rc != 0) {
        p->bad_signature++;
        encore_httpjson_error(req, 401, rc == ENCORE_WEBHOOK_ESTALE ? "stale" : "bad_signature",
                              "signature check failed: %s", encore_webhook_error_code(rc));
        return;
    }
    credit *c = g_new0(credit, 1);
    const char *bad = NULL;
    rc = encore_webhook_parse_event(body, len, 0, &c->ev, &bad);
    if (rc == ENCORE_WEBHOOK_EUNSUPPORTED) {
        encore_ws_http_respond_json(req, 200,
                                    json_pack("{s:b, s:s}", "credited", 0, "ignored", c->ev.type));
        g_free(c);
        return;
    }
    if (rc != 0) {
        p->refused++;
        encore_httpjson_error(req, 400, "bad_event", "the event is malformed%s%s",
                              bad ? " at field " : "", bad ? bad : "");
        g_free(c);
        return;
    }
    int rc2 = encore_catalog_topup_coins(srv->catalog, c->ev.currency, c->ev.amount, &c->coins);
    if (rc2 != 0) {
        p->refused++;
        g_warning("top-up %s:%s refused: %s", pv->name, c->ev.id,
                  rc2 == ENCORE_CATALOG_ECURRENCY ? "other currency"
                                                  : "not a whole number of coins");
        encore_httpjson_error(req, 422, "bad_event", "%s",
                              rc2 == ENCORE_CATALOG_ECURRENCY
                                  ? "this server does not sell coins in that currency"
                                  : "the amount does not buy a whole number of coins");
        g_free(c);
        return;
    }
    c->pay = p;
    c->req_id = encore_ws_http_id(req);
    g_strlcpy(c->provider, pv->name, sizeof c->provider);
    encore_users_get_async(srv->users, c->ev.user_id, srv->ctx, on_event_user, c, NULL);
}

/* ---- the sandbox provider ------------------------------------------------------------------ */

typedef struct {
    encore_server *srv;
    uint64_t req_id;
    int64_t user_id, amount;
    char key[41]; /* the client's key ("" without): the same key is the same event */
    char event[72];
    char *host;
    int port;
    GString *request; /* the full HTTP request to the webhook */
} checkout;

static void checkout_free(checkout *c)
{
    g_free(c->host);
    if (c->request)
        g_string_free(c->request, TRUE);
    g_free(c);
}

/* GTask thread: one HTTP/1.1 POST to our own webhook, answer status and body. */
static void post_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
    checkout *c = data;
    GError *error = NULL;
    GSocketClient *client = g_socket_client_new();
    g_socket_client_set_timeout(client, 15);
    GSocketConnection *conn =
        g_socket_client_connect_to_host(client, c->host, (guint16)c->port, cancel, &error);
    g_object_unref(client);
    if (!conn) {
        g_task_return_error(task, error);
        return;
    }
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
    GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(conn));
    GString *resp = g_string_new(NULL);
    if (g_output_stream_write_all(out, c->request->str, c->request->len, NULL, cancel, &error)) {
        char buf[4096];
        gssize n;
        while ((n = g_input_stream_read(in, buf, sizeof buf, cancel, &error)) > 0 &&
               resp->len < 65536)
            g_string_append_len(resp, buf, n);
    }
    g_object_unref(conn);
    if (error && resp->len == 0) {
        g_string_free(resp, TRUE);
        g_task_return_error(task, error);
        return;
    }
    g_clear_error(&error);
    g_task_return_pointer(task, g_string_free(resp, FALSE), g_free);
}

static void on_posted(GObject *source, GAsyncResult *res, gpointer data)
{
    checkout *c = data;
    GError *error = NULL;
    char *resp = g_task_propagate_pointer(G_TASK(res), &error);
    encore_ws_http *req = encore_ws_http_lookup(c->srv->ws, c->req_id);
    if (req) {
        unsigned status = 0;
        const char *body = resp ? strstr(resp, "\r\n\r\n") : NULL;
        if (resp && sscanf(resp, "HTTP/1.%*d %u", &status) != 1)
            status = 0;
        json_t *answer = body ? json_loads(body + 4, 0, NULL) : NULL;
        if (status == 200 && json_is_object(answer)) {
            json_object_set_new(answer, "event", json_string(c->event));
            encore_ws_http_respond_json(req, 200, json_incref(answer));
        } else if (answer && json_is_object(answer)) {
            encore_ws_http_respond_json(req, status >= 400 ? status : 502, json_incref(answer));
        } else {
            encore_httpjson_error(req, 502, "unavailable", "the webhook did not answer: %s",
                                  error ? error->message : "no JSON answer");
        }
        json_decref(answer);
    }
    g_free(resp);
    g_clear_error(&error);
    checkout_free(c);
}

static const encore_proto_field checkout_schema[] = {
    {.name = "amount",
     .kind = ENCORE_PROTO_INT,
     .required = true,
     .min = 1,
     .max = SANDBOX_MAX_AMOUNT},
    {.name = "currency", .kind = ENCORE_PROTO_STRING, .required = true, .min = 3, .max = 3},
    /* Optional: a retry with the same key is the same payment (credited once). */
    {.name = "key",
     .kind = ENCORE_PROTO_STRING,
     .required = false,
     .min = 1,
     .max = 40,
     .flags = ENCORE_PROTO_IDENT},
    {.name = NULL},
};

/* The buyer must be an adult who may spend: the sandbox stands for the provider's checkout page,
 * which is where a real purchase by a minor is refused. */
static void on_buyer(const encore_user *u, const char *code, void *user_data)
{
    checkout *c = user_data;
    encore_server *srv = c->srv;
    encore_ws_http *req = encore_ws_http_lookup(srv->ws, c->req_id);
    if (!req) {
        checkout_free(c);
        return;
    }
    if (!u || u->disabled) {
        encore_httpjson_error(req, 401, "unauthorized", "the account of this token is gone");
        checkout_free(c);
        return;
    }
    if (!encore_accounts_may_spend(u->role, u->birth_year, encore_server_now())) {
        encore_httpjson_error(req, 403, "under_age",
                              encore_roles_may(u->role, ENCORE_PERM_SPEND)
                                  ? "accounts under 18 cannot buy coins"
                                  : "this role cannot buy coins");
        checkout_free(c);
        return;
    }
    provider *pv = g_hash_table_lookup(srv->payments->providers, SANDBOX);
    uint8_t rnd[8];
    if (c->key[0]) {
        snprintf(c->event, sizeof c->event, "sbx_%" G_GINT64_FORMAT "_%s", u->id, c->key);
    } else if (RAND_bytes(rnd, sizeof rnd) == 1) {
        snprintf(c->event, sizeof c->event, "sbx_%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
                 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    } else {
        encore_httpjson_error(req, 500, "internal", "no random bytes");
        checkout_free(c);
        return;
    }
    int64_t now = encore_server_now();
    char *body = g_strdup_printf(
        "{\"id\":\"%s\",\"type\":\"payment.succeeded\",\"user_id\":%" G_GINT64_FORMAT
        ",\"amount\":%" G_GINT64_FORMAT ",\"currency\":\"%s\",\"created\":%" G_GINT64_FORMAT "}",
        c->event, u->id, c->amount, encore_catalog_get_settings(srv->catalog)->currency, now);
    encore_webhook_secret secret = {g_array_index(pv->secrets, encore_secret, 0).key,
                                    g_array_index(pv->secrets, encore_secret, 0).len};
    char sig[ENCORE_WEBHOOK_MAX_HEADER];
    if (encore_webhook_sign(&secret, 1, now, (const uint8_t *)body, strlen(body), sig, sizeof sig,
                            NULL) != 0) {
        encore_httpjson_error(req, 500, "internal", "cannot sign the sandbox event");
        g_free(body);
        checkout_free(c);
        return;
    }
    const char *addr = srv->cfg->listen_addr;
    bool any = strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0;
    c->host = g_strdup(any ? "127.0.0.1" : addr);
    c->port = encore_ws_port(srv->ws);
    c->request = g_string_new(NULL);
    g_string_printf(c->request,
                    "POST /api/webhooks/" SANDBOX " HTTP/1.1\r\nHost: %s:%d\r\n"
                    "Content-Type: application/json\r\nEncore-Signature: %s\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                    c->host, c->port, sig, strlen(body), body);
    g_free(body);
    GTask *task = g_task_new(NULL, NULL, on_posted, c);
    g_task_set_task_data(task, c, NULL);
    g_task_run_in_thread(task, post_thread);
    g_object_unref(task);
}

static void h_checkout(encore_ws_http *req, void *user_data)
{
    encore_server *srv = user_data;
    if (!g_hash_table_contains(srv->payments->providers, SANDBOX)) {
        encore_httpjson_error(req, 404, "not_found", "the sandbox provider is off");
        return;
    }
    encore_token_claims claims;
    if (!encore_auth_http_bearer(srv, req, &claims))
        return;
    json_t *body = encore_httpjson_body(req, checkout_schema);
    if (!body)
        return;
    const char *cur = json_string_value(json_object_get(body, "currency"));
    int64_t amount = json_integer_value(json_object_get(body, "amount")), coins = 0;
    int rc = encore_catalog_topup_coins(srv->catalog, cur, amount, &coins);
    if (rc == ENCORE_CATALOG_ECURRENCY) {
        encore_httpjson_error(req, 400, "bad_request", "coins are sold in %s",
                              encore_catalog_get_settings(srv->catalog)->currency);
    } else if (rc != 0) {
        encore_httpjson_error(req, 400, "bad_request",
                              "the amount must buy a whole number of coins (%" G_GINT64_FORMAT
                              " coins per unit)",
                              encore_catalog_get_settings(srv->catalog)->coins_per_unit);
    } else {
        checkout *c = g_new0(checkout, 1);
        c->srv = srv;
        c->req_id = encore_ws_http_id(req);
        c->user_id = claims.user_id;
        c->amount = amount;
        const char *key = json_string_value(json_object_get(body, "key"));
        if (key)
            g_strlcpy(c->key, key, sizeof c->key);
        encore_users_get_async(srv->users, claims.user_id, srv->ctx, on_buyer, c, NULL);
    }
    json_decref(body);
}

const encore_ws_http_route encore_payments_http_routes[] = {
    {"POST", "/api/webhooks/", h_webhook, ENCORE_WEBHOOK_MAX_BODY},
    {"POST", "/api/sandbox/checkout", h_checkout, 1024},
};
const size_t encore_payments_n_http_routes = G_N_ELEMENTS(encore_payments_http_routes);

void encore_payments_collect(encore_payments *p, GString *out)
{
    g_string_append_printf(out,
                           "# HELP encore_topups_total Webhook top-ups by outcome.\n"
                           "# TYPE encore_topups_total counter\n"
                           "encore_topups_total{outcome=\"credited\"} %" G_GUINT64_FORMAT "\n"
                           "encore_topups_total{outcome=\"duplicate\"} %" G_GUINT64_FORMAT "\n"
                           "encore_topups_total{outcome=\"held_minor\"} %" G_GUINT64_FORMAT "\n"
                           "encore_topups_total{outcome=\"refused\"} %" G_GUINT64_FORMAT "\n"
                           "encore_topups_total{outcome=\"bad_signature\"} %" G_GUINT64_FORMAT "\n"
                           "encore_topups_total{outcome=\"unavailable\"} %" G_GUINT64_FORMAT "\n",
                           p->credited, p->duplicates, p->held, p->refused, p->bad_signature,
                           p->unavailable);
}
