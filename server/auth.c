/* Access (see auth.h): token keys from the secret file, sign-up/sign-in over HTTP, the `auth`
 * request, the Origin allowlist and Bearer checks. Main thread only: the users store answers on
 * the main context, and anything answered late looks its connection up again by id. */
#define G_LOG_DOMAIN "encore-auth"
#include "config.h"

#include "server/auth.h"

#include <string.h>

#include "server/accounts/origin.h"
#include "server/accounts/roles.h"
#include "server/accounts/users.h"
#include "server/httpjson.h"
#include "server/secrets.h"

/* Sign-in and sign-up attempts per client address, and sign-ins per account name (so guessing
 * one account's password from many addresses is slow too): token buckets. */
#define ATTEMPT_RATE 1.0               /* per second, sustained */
#define ATTEMPT_BURST 20.0             /* at once */
#define ATTEMPT_ACCOUNT_RATE (1.0 / 6) /* sign-ins per second to one account: 10 a minute */
#define ATTEMPT_TABLE_MAX 100000

typedef struct {
    double tokens;
    int64_t last_us;
} bucket;

struct encore_auth {
    encore_server *srv;
    encore_token_keyring *keyring;
    encore_origin_list *origins; /* NULL: only the server's own origin */
    GHashTable *attempts;        /* address -> bucket */
    GHashTable *sessions;        /* conn id -> session: when an authenticated websocket ends */
};

/* An authenticated websocket lives as long as its newest token: when that expires without a
 * fresh `auth` or `token.refresh`, the connection is closed (1008), so a removed signing key or
 * a disabled account cannot keep a connection open forever. */
typedef struct {
    encore_auth *auth;
    uint64_t conn_id;
    guint timer;
} session;

static void session_free(gpointer data)
{
    session *s = data;
    if (s->timer)
        g_source_remove(s->timer);
    g_free(s);
}

static gboolean session_expired(gpointer data)
{
    session *s = data;
    s->timer = 0;
    encore_ws_conn *c = encore_ws_conn_lookup(s->auth->srv->ws, s->conn_id);
    if (c)
        encore_ws_conn_close(c, 1008, "token expired");
    g_hash_table_remove(s->auth->sessions, &s->conn_id);
    return G_SOURCE_REMOVE;
}

/* Sets when the connection's session ends (Unix seconds). */
static void session_until(encore_auth *a, encore_ws_conn *c, int64_t expires)
{
    uint64_t id = encore_ws_conn_id(c);
    session *s = g_hash_table_lookup(a->sessions, &id);
    if (!s) {
        s = g_new0(session, 1);
        s->auth = a;
        s->conn_id = id;
        uint64_t *key = g_new(uint64_t, 1);
        *key = id;
        g_hash_table_insert(a->sessions, key, s);
    }
    if (s->timer)
        g_source_remove(s->timer);
    int64_t left = expires - encore_server_now();
    s->timer = g_timeout_add_seconds((guint)CLAMP(left, 1, 86400), session_expired, s);
}

void encore_auth_disconnect(encore_auth *a, encore_ws_conn *c)
{
    uint64_t id = encore_ws_conn_id(c);
    g_hash_table_remove(a->sessions, &id);
}

/* ---- setup --------------------------------------------------------------------------------- */

encore_auth *encore_auth_new(encore_server *srv, GError **error)
{
    const encore_config *cfg = srv->cfg;
    GArray *keys = encore_secrets_load(cfg->token_secret_file, TRUE, error);
    if (!keys)
        return NULL;
    encore_auth *a = g_new0(encore_auth, 1);
    a->srv = srv;
    a->attempts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    a->sessions = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, session_free);
    encore_token_config tc = {.max_lifetime_s = 86400};
    a->keyring = encore_token_keyring_new(&tc);
    for (guint i = 0; i < keys->len; i++) {
        const encore_secret *s = &g_array_index(keys, encore_secret, i);
        if (encore_token_keyring_add(a->keyring, s->kid, s->key, s->len) != 0) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: key %s is not usable",
                        cfg->token_secret_file, s->kid);
            encore_secrets_free(keys);
            encore_auth_free(a);
            return NULL;
        }
    }
    encore_secrets_free(keys);
    if (cfg->allowed_origins && cfg->allowed_origins[0]) {
        size_t n = g_strv_length(cfg->allowed_origins), bad = 0;
        a->origins = encore_origin_list_new((const char *const *)cfg->allowed_origins, n, &bad);
        if (!a->origins) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "[accounts] allowed_origins: '%s' is not scheme://host[:port]",
                        bad < n ? cfg->allowed_origins[bad] : "?");
            encore_auth_free(a);
            return NULL;
        }
    }
    return a;
}

void encore_auth_free(encore_auth *a)
{
    if (!a)
        return;
    encore_token_keyring_free(a->keyring);
    encore_origin_list_free(a->origins);
    g_hash_table_destroy(a->attempts);
    g_hash_table_destroy(a->sessions);
    g_free(a);
}

/* The websocket handshake: browsers always send Origin. Allowed: an entry of the allowlist, or,
 * without one, the origin whose host[:port] is the Host the browser connected to (same origin).
 * No Origin (a non-browser client) is allowed unless configured otherwise. */
static bool origin_ok(const char *origin, size_t len, const char *host, void *user_data)
{
    encore_auth *a = user_data;
    if (!origin)
        return a->srv->cfg->allow_missing_origin;
    if (a->origins)
        return encore_origin_check(a->origins, origin, len) == 0;
    encore_origin o;
    if (!host || encore_origin_parse(origin, len, &o) != 0)
        return false;
    /* Same origin: "http://" + Host (scheme http: this server speaks plain HTTP; TLS is
     * terminated in front of it, and then allowed_origins must be set). */
    char *mine = g_strdup_printf("http://%s", host);
    encore_origin m;
    bool ok = encore_origin_parse(mine, strlen(mine), &m) == 0 && encore_origin_equal(&o, &m);
    g_free(mine);
    return ok;
}

void encore_auth_attach(encore_auth *a, encore_ws *ws)
{
    encore_ws_set_origin_check(ws, origin_ok, a);
    encore_ws_set_auth(ws, "auth", (unsigned)a->srv->cfg->auth_timeout_ms);
}

/* ---- helpers ------------------------------------------------------------------------------- */

/* Drops the buckets that have refilled (idle long enough to be full again): they hold nothing. */
static void attempts_evict(encore_auth *a, int64_t now)
{
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, a->attempts);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        const bucket *b = v;
        if ((double)(now - b->last_us) / G_USEC_PER_SEC * ATTEMPT_ACCOUNT_RATE >= ATTEMPT_BURST)
            g_hash_table_iter_remove(&it);
    }
    if (g_hash_table_size(a->attempts) >= ATTEMPT_TABLE_MAX)
        g_hash_table_remove_all(a->attempts); /* a flood of distinct keys: start over */
}

/* One attempt against the bucket of `key` (an address, or an account name) at `rate`. */
static bool attempt_allowed(encore_auth *a, const char *key, double rate)
{
    int64_t now = g_get_monotonic_time();
    bucket *b = g_hash_table_lookup(a->attempts, key);
    if (!b) {
        if (g_hash_table_size(a->attempts) >= ATTEMPT_TABLE_MAX)
            attempts_evict(a, now);
        b = g_new(bucket, 1);
        b->tokens = ATTEMPT_BURST;
        b->last_us = now;
        g_hash_table_insert(a->attempts, g_strdup(key), b);
    }
    b->tokens += (double)(now - b->last_us) / G_USEC_PER_SEC * rate;
    if (b->tokens > ATTEMPT_BURST)
        b->tokens = ATTEMPT_BURST;
    b->last_us = now;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

static json_t *user_json(int64_t id, const char *name, int role, int birth_year)
{
    return json_pack("{s:I, s:s, s:s, s:b}", "id", (json_int_t)id, "name", name, "role",
                     encore_roles_name((encore_role)role), "adult",
                     encore_accounts_is_adult(birth_year, encore_server_now()));
}

json_t *encore_auth_member_json(const encore_member *m)
{
    return user_json(encore_member_user_id(m), encore_member_name(m), encore_member_role(m),
                     encore_member_birth_year(m));
}

encore_member *encore_auth_member(encore_ws_conn *conn)
{
    return encore_ws_conn_get_data(conn);
}

bool encore_auth_may(encore_ws_conn *conn, json_t *id, encore_perm perm)
{
    encore_role role = (encore_role)encore_member_role(encore_auth_member(conn));
    if (encore_roles_may(role, perm))
        return true;
    encore_ws_error(conn, id, "forbidden", NULL, "the %s role may not %s", encore_roles_name(role),
                    perm == ENCORE_PERM_PUBLISH ? "sing" : encore_roles_perm_name(perm));
    return false;
}

/* Issues a token; FALSE only when the keyring cannot sign (logged). */
static gboolean issue(encore_auth *a, int64_t user_id, int role, char *out, size_t cap,
                      int64_t *expires)
{
    encore_token_claims c;
    int64_t now = encore_server_now();
    int rc = encore_token_issue(a->keyring, user_id, (encore_role)role, now,
                                a->srv->cfg->token_ttl_s, out, cap, &c);
    if (rc != 0) {
        g_warning("cannot issue a token: %s", encore_token_error_code(rc));
        return FALSE;
    }
    *expires = c.exp;
    return TRUE;
}

/* ---- HTTP: sign-up and sign-in ------------------------------------------------------------- */

typedef struct {
    encore_server *srv;
    uint64_t req_id;
    unsigned ok_status;
} http_pending;

static unsigned users_error_status(const char *code)
{
    if (strcmp(code, "name_taken") == 0)
        return 409;
    if (strcmp(code, "bad_credentials") == 0)
        return 401;
    if (strcmp(code, "disabled") == 0)
        return 403;
    if (strcmp(code, "store_error") == 0 || strcmp(code, "overloaded") == 0 ||
        strcmp(code, "closed") == 0)
        return 503;
    return 400;
}

static const char *users_error_message(const char *code)
{
    if (strcmp(code, "name_taken") == 0)
        return "this name is taken";
    if (strcmp(code, "bad_name") == 0)
        return "names are 3-32 characters of letters, digits, '_', '.' and '-'";
    if (strcmp(code, "weak_password") == 0)
        return "passwords are 8-256 characters";
    if (strcmp(code, "bad_birth_year") == 0)
        return "birth_year must be a year between 1900 and this year";
    if (strcmp(code, "bad_credentials") == 0)
        return "wrong name or password";
    if (strcmp(code, "disabled") == 0)
        return "this account is disabled";
    return "the accounts store is unavailable; try again";
}

static void on_user_for_http(const encore_user *u, const char *code, void *user_data)
{
    http_pending *p = user_data;
    encore_ws_http *req = encore_ws_http_lookup(p->srv->ws, p->req_id);
    if (!req)
        return; /* the client went away */
    if (!u) {
        const char *c = users_error_status(code) == 503 ? "unavailable" : code;
        encore_httpjson_error(req, users_error_status(code), c, "%s", users_error_message(code));
        return;
    }
    char token[ENCORE_TOKEN_BUF_LEN];
    int64_t expires = 0;
    if (!issue(p->srv->auth, u->id, u->role, token, sizeof token, &expires)) {
        encore_httpjson_error(req, 500, "internal", "cannot issue a token");
        return;
    }
    encore_ws_http_respond_json(req, p->ok_status,
                                json_pack("{s:o, s:s, s:I}", "user",
                                          user_json(u->id, u->name, u->role, u->birth_year),
                                          "token", token, "expires", (json_int_t)expires));
}

static const encore_proto_field signup_schema[] = {
    {.name = "name", .kind = ENCORE_PROTO_STRING, .required = true, .min = 1, .max = 64},
    {.name = "password", .kind = ENCORE_PROTO_STRING, .required = true, .min = 1, .max = 1024},
    {.name = "birth_year", .kind = ENCORE_PROTO_INT, .required = true, .min = 0, .max = 99999},
    {.name = "role", .kind = ENCORE_PROTO_STRING, .required = false, .min = 1, .max = 16},
    {.name = NULL},
};

static const encore_proto_field signin_schema[] = {
    {.name = "name", .kind = ENCORE_PROTO_STRING, .required = true, .min = 1, .max = 64},
    {.name = "password", .kind = ENCORE_PROTO_STRING, .required = true, .min = 1, .max = 1024},
    {.name = NULL},
};

static http_pending *pending_new(encore_server *srv, encore_ws_http *req, unsigned ok_status)
{
    http_pending *p = g_new(http_pending, 1);
    p->srv = srv;
    p->req_id = encore_ws_http_id(req);
    p->ok_status = ok_status;
    return p;
}

static void h_signup(encore_ws_http *req, void *user_data)
{
    encore_server *srv = user_data;
    if (!attempt_allowed(srv->auth, encore_ws_http_addr(req), ATTEMPT_RATE)) {
        encore_httpjson_error(req, 429, "rate_limited", "too many attempts; wait a little");
        return;
    }
    json_t *body = encore_httpjson_body(req, signup_schema);
    if (!body)
        return;
    encore_role role = ENCORE_ROLE_LISTENER;
    const char *r = json_string_value(json_object_get(body, "role"));
    if (r && strcmp(r, "listener") != 0) {
        if (strcmp(r, "singer") != 0) {
            encore_httpjson_error(req, 400, "bad_request",
                                  "role must be 'listener' or 'singer' (other roles are given "
                                  "by an administrator)");
            json_decref(body);
            return;
        }
        role = ENCORE_ROLE_SINGER;
    }
    const char *pw = json_string_value(json_object_get(body, "password"));
    encore_users_signup_async(
        srv->users, json_string_value(json_object_get(body, "name")), pw, strlen(pw),
        (int)json_integer_value(json_object_get(body, "birth_year")), role, encore_server_now(),
        srv->ctx, on_user_for_http, pending_new(srv, req, 201), g_free);
    json_decref(body);
}

static void h_signin(encore_ws_http *req, void *user_data)
{
    encore_server *srv = user_data;
    if (!attempt_allowed(srv->auth, encore_ws_http_addr(req), ATTEMPT_RATE)) {
        encore_httpjson_error(req, 429, "rate_limited", "too many attempts; wait a little");
        return;
    }
    json_t *body = encore_httpjson_body(req, signin_schema);
    if (!body)
        return;
    char *account = g_ascii_strdown(json_string_value(json_object_get(body, "name")), -1);
    char *key = g_strconcat("account:", account, NULL);
    bool allowed = attempt_allowed(srv->auth, key, ATTEMPT_ACCOUNT_RATE);
    g_free(key);
    g_free(account);
    if (!allowed) {
        encore_httpjson_error(req, 429, "rate_limited",
                              "too many sign-in attempts for this account; wait a minute");
        json_decref(body);
        return;
    }
    const char *pw = json_string_value(json_object_get(body, "password"));
    encore_users_signin_async(srv->users, json_string_value(json_object_get(body, "name")), pw,
                              strlen(pw), srv->ctx, on_user_for_http, pending_new(srv, req, 200),
                              g_free);
    json_decref(body);
}

const encore_ws_http_route encore_auth_http_routes[] = {
    {"POST", "/api/signup", h_signup, 4096},
    {"POST", "/api/signin", h_signin, 4096},
};
const size_t encore_auth_n_http_routes = G_N_ELEMENTS(encore_auth_http_routes);

gboolean encore_auth_http_bearer(encore_server *srv, encore_ws_http *req,
                                 encore_token_claims *claims)
{
    const char *h = encore_ws_http_header(req, "authorization");
    if (!h || g_ascii_strncasecmp(h, "Bearer ", 7) != 0) {
        encore_httpjson_error(req, 401, "unauthorized", "send Authorization: Bearer <token>");
        return FALSE;
    }
    const char *t = h + 7;
    int rc = encore_token_verify(srv->auth->keyring, t, strlen(t), encore_server_now(), claims);
    if (rc != 0) {
        encore_httpjson_error(req, 401, "unauthorized", "token %s", encore_token_error_code(rc));
        return FALSE;
    }
    return TRUE;
}

/* ---- websocket: auth and token.refresh ----------------------------------------------------- */

typedef struct {
    encore_server *srv;
    uint64_t conn_id;
    json_t *id;
    int64_t expires;
    bool refresh; /* token.refresh: answer a new token */
} ws_pending;

static void ws_pending_free(gpointer data)
{
    ws_pending *p = data;
    json_decref(p->id);
    g_free(p);
}

static void on_user_for_ws(const encore_user *u, const char *code, void *user_data)
{
    ws_pending *p = user_data;
    encore_ws_conn *conn = encore_ws_conn_lookup(p->srv->ws, p->conn_id);
    if (!conn)
        return;
    encore_member *m = encore_auth_member(conn);
    if (!u) {
        if (strcmp(code, ENCORE_USERS_E_NOT_FOUND) == 0)
            encore_ws_error(conn, p->id, "unauthorized", NULL, "the account of this token is gone");
        else /* overloaded, closed, store_error: the token may be fine, the page keeps it */
            encore_ws_error(conn, p->id, "unavailable", NULL,
                            "the accounts store could not answer (%s); try again", code);
        return;
    }
    if (encore_member_user_id(m) && encore_member_user_id(m) != u->id) {
        encore_ws_error(conn, p->id, "forbidden", NULL,
                        "this connection is signed in as another user");
        return;
    }
    if (u->disabled) {
        encore_ws_error(conn, p->id, "forbidden", NULL, "this account is disabled");
        encore_ws_conn_close(conn, 1008, "account disabled");
        return;
    }
    /* The store's role and birth year, every time: an administrator's change applies at the
     * next auth or token.refresh of an open connection. */
    encore_member_set_user(m, u->id, u->name, u->role, u->birth_year);
    encore_ws_conn_set_authenticated(conn, true);
    char token[ENCORE_TOKEN_BUF_LEN];
    if (p->refresh && !issue(p->srv->auth, u->id, u->role, token, sizeof token, &p->expires)) {
        encore_ws_error(conn, p->id, "internal", NULL, "cannot issue a token");
        return;
    }
    session_until(p->srv->auth, conn, p->expires);
    if (p->refresh)
        encore_ws_reply(conn, p->id,
                        json_pack("{s:s, s:I}", "token", token, "expires", (json_int_t)p->expires));
    else
        encore_ws_reply(conn, p->id,
                        json_pack("{s:o, s:I}", "user", encore_auth_member_json(m), "expires",
                                  (json_int_t)p->expires));
}

static const encore_proto_field auth_schema[] = {
    {.name = "token", .kind = ENCORE_PROTO_STRING, .required = true, .min = 1, .max = 4096},
    {.name = NULL},
};

static void h_auth(encore_ws_conn *c, json_t *id, json_t *msg, void *user_data)
{
    encore_server *srv = user_data;
    const char *t = json_string_value(json_object_get(msg, "token"));
    encore_token_claims claims;
    int rc = encore_token_verify(srv->auth->keyring, t, strlen(t), encore_server_now(), &claims);
    if (rc != 0) {
        encore_ws_error(c, id, "unauthorized", "token", "token %s", encore_token_error_code(rc));
        return;
    }
    encore_member *m = encore_auth_member(c);
    if (encore_member_user_id(m) && encore_member_user_id(m) != claims.user_id) {
        encore_ws_error(c, id, "forbidden", "token",
                        "this connection is signed in as another user");
        return;
    }
    ws_pending *p = g_new0(ws_pending, 1);
    p->srv = srv;
    p->conn_id = encore_ws_conn_id(c);
    p->id = id ? json_incref(id) : NULL;
    p->expires = claims.exp;
    /* The role and birth year come from the store, not the token: a role changed by an
     * administrator applies at the next auth. */
    encore_users_get_async(srv->users, claims.user_id, srv->ctx, on_user_for_ws, p,
                           ws_pending_free);
}

/* A new token for the connection's user, read again from the store (a disabled account or a
 * changed role is not carried forward); it also extends the connection's session. */
static void h_refresh(encore_ws_conn *c, json_t *id, json_t *msg, void *user_data)
{
    encore_server *srv = user_data;
    ws_pending *p = g_new0(ws_pending, 1);
    p->srv = srv;
    p->conn_id = encore_ws_conn_id(c);
    p->id = id ? json_incref(id) : NULL;
    p->refresh = true;
    encore_users_get_async(srv->users, encore_member_user_id(encore_auth_member(c)), srv->ctx,
                           on_user_for_ws, p, ws_pending_free);
}

static const encore_proto_field empty_schema[] = {{.name = NULL}};

const encore_ws_route encore_auth_routes[] = {
    {"auth", h_auth, auth_schema},
    {"token.refresh", h_refresh, empty_schema},
};
const size_t encore_auth_n_routes = G_N_ELEMENTS(encore_auth_routes);
