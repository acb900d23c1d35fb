/* Tests of the users store (server/accounts/users.h) on SQLite and, when ENCORE_TEST_PG is set
 * (scripts/pg start), on PostgreSQL: sign-up and sign-in, name rules, concurrent sign-ups,
 * rehash, contracts, channels, persistence, overload and closing with work in flight. Runs the
 * store's threads for real and waits on a private GMainContext; fast Argon2id parameters
 * except where the cost itself is tested. */
#include "config.h"

#include <string.h>

#include "server/accounts/users.h"
#include "tests/ledger/testdb.h"

#define NOW INT64_C(1764160000) /* 2025-11-26 12:26:40 UTC */
#define WAIT_S 60

static const encore_password_params fast = ENCORE_PASSWORD_PARAMS_TEST;

typedef struct {
    testdb *db;
    encore_users *users;
    GMainContext *ctx;
} fixture;

/* One answer, whatever the call. */
typedef struct {
    bool done;
    bool ok;
    char error[32];
    encore_user user;
    encore_contract contract;
    encore_channel channel;
    GArray *contracts;
    int destroyed; /* atomic */
} result;

static encore_users *open_store(const char *backend, encore_password_params params,
                                unsigned max_hash_queue)
{
    encore_users_config cfg = {
        .backend = backend,
        .password = params,
        .allow_weak_password_params = true,
        .max_hash_queue = max_hash_queue,
    };
    GError *err = NULL;
    encore_users *u = encore_users_open(&cfg, &err);
    g_assert_no_error(err);
    g_assert_nonnull(u);
    return u;
}

/* A fresh store of the backend named by data; FALSE (test skipped) without PostgreSQL. */
static gboolean setup(fixture *f, gconstpointer data)
{
    const char *kind = data;
    memset(f, 0, sizeof(*f));
    if (strcmp(kind, "postgresql") == 0 && testdb_pg_skip_reason()) {
        g_test_skip(testdb_pg_skip_reason());
        return FALSE;
    }
    f->db = testdb_new(kind);
    f->users = open_store(f->db->backend, fast, 0);
    f->ctx = g_main_context_new();
    return TRUE;
}

static void teardown(fixture *f)
{
    encore_users_close(f->users);
    /* Answers still attached to the context are dropped with it (their destroy runs). */
    if (f->ctx)
        g_main_context_unref(f->ctx);
    testdb_free(f->db);
}

static void reopen(fixture *f, encore_password_params params)
{
    encore_users_close(f->users);
    f->users = open_store(f->db->backend, params, 0);
}

static gboolean on_timeout(gpointer data)
{
    *(bool *)data = true;
    return G_SOURCE_REMOVE;
}

/* Iterates ctx until every result in rs[0..n) is done (and destroyed), failing after WAIT_S. */
static void wait_all(GMainContext *ctx, result *rs, size_t n)
{
    bool expired = false;
    GSource *t = g_timeout_source_new_seconds(WAIT_S);
    g_source_set_callback(t, on_timeout, &expired, NULL);
    g_source_attach(t, ctx);
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += rs[i].done && g_atomic_int_get(&rs[i].destroyed) == 1;
        if (done == n || expired)
            break;
        g_main_context_iteration(ctx, TRUE);
    }
    g_source_destroy(t);
    g_source_unref(t);
    g_assert_false(expired);
}

static void on_destroy(void *ud)
{
    result *r = ud;
    g_atomic_int_inc(&r->destroyed);
}

static void finish(result *r, bool ok, const char *error)
{
    g_assert_false(r->done); /* exactly once */
    g_assert_true(ok != (error != NULL));
    r->done = true;
    r->ok = ok;
    if (error)
        g_strlcpy(r->error, error, sizeof(r->error));
}

static void on_user(const encore_user *u, const char *error, void *ud)
{
    result *r = ud;
    finish(r, u != NULL, error);
    if (u)
        r->user = *u;
}

static void on_contract(const encore_contract *c, const char *error, void *ud)
{
    result *r = ud;
    finish(r, c != NULL, error);
    if (c)
        r->contract = *c;
}

static void on_contracts(const encore_contract *cs, size_t n, const char *error, void *ud)
{
    result *r = ud;
    finish(r, cs != NULL, error);
    if (cs) {
        r->contracts = g_array_new(FALSE, FALSE, sizeof(encore_contract));
        g_array_append_vals(r->contracts, cs, (guint)n);
    }
}

static void on_channel(const encore_channel *ch, const char *error, void *ud)
{
    result *r = ud;
    finish(r, ch != NULL, error);
    if (ch)
        r->channel = *ch;
}

/* Blocking wrappers over the asynchronous calls, for readable tests. */
static result signup_at(fixture *f, const char *name, const char *pw, int year, encore_role role,
                        int64_t now)
{
    result r = {0};
    encore_users_signup_async(f->users, name, pw, strlen(pw), year, role, now, f->ctx, on_user, &r,
                              on_destroy);
    g_assert_false(r.done); /* never answered inside the call */
    wait_all(f->ctx, &r, 1);
    return r;
}

static result signup(fixture *f, const char *name, const char *pw, encore_role role)
{
    return signup_at(f, name, pw, 1990, role, NOW);
}

static int64_t new_user(fixture *f, const char *name, encore_role role)
{
    result r = signup(f, name, "password-123", role);
    g_assert_cmpstr(r.error, ==, "");
    g_assert_true(r.ok);
    return r.user.id;
}

static result signin(fixture *f, const char *name, const char *pw)
{
    result r = {0};
    encore_users_signin_async(f->users, name, pw, strlen(pw), f->ctx, on_user, &r, on_destroy);
    g_assert_false(r.done);
    wait_all(f->ctx, &r, 1);
    return r;
}

static result get_user(fixture *f, int64_t id)
{
    result r = {0};
    encore_users_get_async(f->users, id, f->ctx, on_user, &r, on_destroy);
    wait_all(f->ctx, &r, 1);
    return r;
}

static result find_user(fixture *f, const char *name)
{
    result r = {0};
    encore_users_find_by_name_async(f->users, name, f->ctx, on_user, &r, on_destroy);
    wait_all(f->ctx, &r, 1);
    return r;
}

static result set_role(fixture *f, const char *name, encore_role role)
{
    result r = {0};
    encore_users_set_role_async(f->users, name, role, f->ctx, on_user, &r, on_destroy);
    wait_all(f->ctx, &r, 1);
    return r;
}

static result set_disabled(fixture *f, const char *name, bool disabled)
{
    result r = {0};
    encore_users_set_disabled_async(f->users, name, disabled, f->ctx, on_user, &r, on_destroy);
    wait_all(f->ctx, &r, 1);
    return r;
}

static result make_offer(fixture *f, int64_t agent, const char *singer, int sbp, int abp,
                         int64_t now)
{
    result r = {0};
    encore_users_contract_offer_async(f->users, agent, singer, sbp, abp, now, f->ctx, on_contract,
                                      &r, on_destroy);
    wait_all(f->ctx, &r, 1);
    return r;
}

static result accept_offer(fixture *f, int64_t singer, int64_t agent, int64_t now)
{
    result r = {0};
    encore_users_contract_accept_async(f->users, singer, agent, now, f->ctx, on_contract, &r,
                                       on_destroy);
    wait_all(f->ctx, &r, 1);
    return r;
}

static result end_contract(fixture *f, int64_t singer, int64_t agent, int64_t now)
{
    result r = {0};
    encore_users_contract_end_async(f->users, singer, agent, now, f->ctx, on_contract, &r,
                                    on_destroy);
    wait_all(f->ctx, &r, 1);
    return r;
}

static result contracts_of(fixture *f, int64_t user)
{
    result r = {0};
    encore_users_contracts_of_async(f->users, user, f->ctx, on_contracts, &r, on_destroy);
    wait_all(f->ctx, &r, 1);
    return r;
}

static result claim_room(fixture *f, int64_t agent, const char *room, int64_t now)
{
    result r = {0};
    encore_users_channel_claim_async(f->users, agent, room, now, f->ctx, on_channel, &r,
                                     on_destroy);
    wait_all(f->ctx, &r, 1);
    return r;
}

#define assert_error(r, code)                                                                      \
    do {                                                                                           \
        result r_ = (r);                                                                           \
        g_assert_false(r_.ok);                                                                     \
        g_assert_cmpstr(r_.error, ==, (code));                                                     \
    } while (0)

static void assert_same_user(const encore_user *a, const encore_user *b)
{
    g_assert_cmpint(a->id, ==, b->id);
    g_assert_cmpstr(a->name, ==, b->name);
    g_assert_cmpint(a->role, ==, b->role);
    g_assert_cmpint(a->birth_year, ==, b->birth_year);
    g_assert_cmpint(a->created_at, ==, b->created_at);
    g_assert_cmpint(a->disabled, ==, b->disabled);
}

/* ---- Tests ---- */

static void test_round_trip(gconstpointer data)
{
    fixture f;
    if (!setup(&f, data))
        return;
    result up = signup_at(&f, "Alice_1", "correct horse", 1990, ENCORE_ROLE_SINGER, NOW);
    g_assert_true(up.ok);
    g_assert_cmpint(up.user.id, >=, 1);
    g_assert_cmpstr(up.user.name, ==, "Alice_1");
    g_assert_cmpint(up.user.role, ==, ENCORE_ROLE_SINGER);
    g_assert_cmpint(up.user.birth_year, ==, 1990);
    g_assert_cmpint(up.user.created_at, ==, NOW);
    g_assert_false(up.user.disabled);

    /* Any case signs in; the name comes back as given. */
    result in = signin(&f, "alice_1", "correct horse");
    g_assert_true(in.ok);
    assert_same_user(&in.user, &up.user);
    in = signin(&f, "ALICE_1", "correct horse");
    g_assert_true(in.ok);
    g_assert_cmpint(in.user.id, ==, up.user.id);

    result got = get_user(&f, up.user.id);
    g_assert_true(got.ok);
    assert_same_user(&got.user, &up.user);
    got = find_user(&f, "aLiCe_1");
    g_assert_true(got.ok);
    assert_same_user(&got.user, &up.user);
    assert_error(get_user(&f, up.user.id + 1000), "not_found");
    assert_error(get_user(&f, 0), "not_found");
    assert_error(find_user(&f, "nobody"), "not_found");
    assert_error(find_user(&f, "x"), "not_found");

    encore_user blocking;
    GError *err = NULL;
    g_assert_true(encore_users_get(f.users, up.user.id, &blocking, &err));
    g_assert_no_error(err);
    assert_same_user(&blocking, &up.user);
    g_assert_false(encore_users_get(f.users, up.user.id + 1000, &blocking, &err));
    g_assert_error(err, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_NOT_FOUND);
    g_clear_error(&err);

    /* A NULL reply context means the caller's thread-default context. */
    result r = {0};
    g_main_context_push_thread_default(f.ctx);
    encore_users_get_async(f.users, up.user.id, NULL, on_user, &r, on_destroy);
    g_main_context_pop_thread_default(f.ctx);
    wait_all(f.ctx, &r, 1);
    g_assert_true(r.ok);
    g_assert_cmpint(r.user.id, ==, up.user.id);

    /* Ids are assigned in order; the list pages by id. */
    int64_t bob = new_user(&f, "bob", ENCORE_ROLE_LISTENER);
    int64_t cy = new_user(&f, "cy.2-x", ENCORE_ROLE_AGENT);
    g_assert_cmpint(bob, >, up.user.id);
    g_assert_cmpint(cy, >, bob);
    GArray *list = encore_users_list(f.users, 0, 2, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(list->len, ==, 2);
    g_assert_cmpstr(g_array_index(list, encore_user, 0).name, ==, "Alice_1");
    g_assert_cmpstr(g_array_index(list, encore_user, 1).name, ==, "bob");
    g_array_unref(list);
    list = encore_users_list(f.users, bob, 100, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(list->len, ==, 1);
    g_assert_cmpint(g_array_index(list, encore_user, 0).id, ==, cy);
    g_assert_cmpint(g_array_index(list, encore_user, 0).role, ==, ENCORE_ROLE_AGENT);
    g_array_unref(list);
    g_assert_null(encore_users_list(f.users, 0, 0, &err));
    g_assert_error(err, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_CONFIG);
    g_clear_error(&err);
    teardown(&f);
}

static void test_duplicate_name(gconstpointer data)
{
    fixture f;
    if (!setup(&f, data))
        return;
    int64_t id = new_user(&f, "Bob.Smith", ENCORE_ROLE_LISTENER);
    assert_error(signup(&f, "bob.smith", "another password", ENCORE_ROLE_LISTENER), "name_taken");
    assert_error(signup(&f, "BOB.SMITH", "another password", ENCORE_ROLE_SINGER), "name_taken");
    assert_error(signup(&f, "Bob.Smith", "password-123", ENCORE_ROLE_LISTENER), "name_taken");
    /* The first account is untouched. */
    result in = signin(&f, "bob.smith", "password-123");
    g_assert_true(in.ok);
    g_assert_cmpint(in.user.id, ==, id);
    g_assert_cmpstr(in.user.name, ==, "Bob.Smith");
    assert_error(signin(&f, "bob.smith", "another password"), "bad_credentials");
    char *count = testdb_query(f.db, "SELECT count(*) FROM users");
    g_assert_cmpstr(count, ==, "1");
    g_free(count);
    teardown(&f);
}

static void test_bad_credentials(gconstpointer data)
{
    fixture f;
    if (!setup(&f, data))
        return;
    new_user(&f, "carol", ENCORE_ROLE_LISTENER);
    /* Wrong password, unknown name, invalid name, over-long or invalid password: one answer. */
    assert_error(signin(&f, "carol", "password-124"), "bad_credentials");
    assert_error(signin(&f, "carol", ""), "bad_credentials");
    assert_error(signin(&f, "nobody", "password-123"), "bad_credentials");
    assert_error(signin(&f, "x", "password-123"), "bad_credentials");
    assert_error(signin(&f, "car ol", "password-123"), "bad_credentials");
    char *longpw = g_strnfill(300, 'a');
    assert_error(signin(&f, "carol", longpw), "bad_credentials");
    g_free(longpw);
    assert_error(signin(&f, "carol",
                        "password\x01"
                        "123"),
                 "bad_credentials");
    /* A NULL name or password is an unknown account, not a crash. */
    result r = {0};
    encore_users_signin_async(f.users, NULL, NULL, 0, f.ctx, on_user, &r, on_destroy);
    wait_all(f.ctx, &r, 1);
    assert_error(r, "bad_credentials");
    /* The right one still works afterwards. */
    g_assert_true(signin(&f, "carol", "password-123").ok);
    teardown(&f);
}

static void test_policy(gconstpointer data)
{
    fixture f;
    if (!setup(&f, data))
        return;
    const char *bad_names[] = {
        "ab",        "abcdefghijklmnopqrstuvwxyz0123456", "bad name", "name!", "émile", "a/b", "",
        "semi;colon"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad_names); i++)
        assert_error(signup(&f, bad_names[i], "password-123", ENCORE_ROLE_LISTENER), "bad_name");
    result r = {0};
    encore_users_signup_async(f.users, NULL, "password-123", 12, 1990, ENCORE_ROLE_LISTENER, NOW,
                              f.ctx, on_user, &r, on_destroy);
    wait_all(f.ctx, &r, 1);
    assert_error(r, "bad_name");
    /* Boundaries of the name rule pass. */
    g_assert_true(signup(&f, "abc", "password-123", ENCORE_ROLE_LISTENER).ok);
    g_assert_true(
        signup(&f, "abcdefghijklmnopqrstuvwxyz012345", "password-123", ENCORE_ROLE_LISTENER).ok);
    g_assert_true(signup(&f, "A-b_c.9", "password-123", ENCORE_ROLE_LISTENER).ok);

    assert_error(signup(&f, "dave", "short", ENCORE_ROLE_LISTENER), "weak_password");
    assert_error(signup(&f, "dave", "1234567", ENCORE_ROLE_LISTENER), "weak_password");
    assert_error(signup(&f, "dave", "with\ttab!", ENCORE_ROLE_LISTENER), "weak_password");
    char *longpw = g_strnfill(257, 'p');
    assert_error(signup(&f, "dave", longpw, ENCORE_ROLE_LISTENER), "weak_password");
    g_free(longpw);
    /* An embedded NUL is part of the password (length given), and a control character. */
    r = (result){0};
    encore_users_signup_async(f.users, "dave", "abcdefgh\0xyz", 12, 1990, ENCORE_ROLE_LISTENER, NOW,
                              f.ctx, on_user, &r, on_destroy);
    wait_all(f.ctx, &r, 1);
    assert_error(r, "weak_password");

    assert_error(signup_at(&f, "dave", "password-123", 1899, ENCORE_ROLE_LISTENER, NOW),
                 "bad_birth_year");
    assert_error(signup_at(&f, "dave", "password-123", 2026, ENCORE_ROLE_LISTENER, NOW),
                 "bad_birth_year");
    assert_error(signup_at(&f, "dave", "password-123", 1990, (encore_role)5, NOW), "bad_role");
    assert_error(signup_at(&f, "dave", "password-123", 1990, (encore_role)-1, NOW), "bad_role");
    /* Order of the checks: name, role, birth year, password. */
    assert_error(signup_at(&f, "x", "short", 1800, (encore_role)9, NOW), "bad_name");
    assert_error(signup_at(&f, "dave", "short", 1800, (encore_role)9, NOW), "bad_role");
    assert_error(signup_at(&f, "dave", "short", 1800, ENCORE_ROLE_LISTENER, NOW), "bad_birth_year");
    /* The birth year of now's year is valid (a minor may sign up, not spend). */
    result kid = signup_at(&f, "dave", "password-123", 2025, ENCORE_ROLE_LISTENER, NOW);
    g_assert_true(kid.ok);
    g_assert_cmpint(kid.user.birth_year, ==, 2025);
    char *count = testdb_query(f.db, "SELECT count(*) FROM users");
    g_assert_cmpstr(count, ==, "4");
    g_free(count);
    teardown(&f);
}

static void test_disable_and_roles(gconstpointer data)
{
    fixture f;
    if (!setup(&f, data))
        return;
    int64_t id = new_user(&f, "Erin", ENCORE_ROLE_LISTENER);
    result r = set_disabled(&f, "ERIN", true);
    g_assert_true(r.ok);
    g_assert_cmpint(r.user.id, ==, id);
    g_assert_true(r.user.disabled);
    /* Disabled shows only behind the right password. */
    assert_error(signin(&f, "erin", "password-123"), "disabled");
    assert_error(signin(&f, "erin", "wrong-password"), "bad_credentials");
    g_assert_true(get_user(&f, id).user.disabled);
    r = set_disabled(&f, "erin", false);
    g_assert_true(r.ok);
    g_assert_false(r.user.disabled);
    g_assert_true(signin(&f, "erin", "password-123").ok);

    r = set_role(&f, "erin", ENCORE_ROLE_ADMIN);
    g_assert_true(r.ok);
    g_assert_cmpint(r.user.role, ==, ENCORE_ROLE_ADMIN);
    g_assert_cmpstr(r.user.name, ==, "Erin");
    g_assert_cmpint(signin(&f, "erin", "password-123").user.role, ==, ENCORE_ROLE_ADMIN);
    assert_error(set_role(&f, "erin", (encore_role)7), "bad_role");
    assert_error(set_role(&f, "nobody", ENCORE_ROLE_AGENT), "not_found");
    assert_error(set_disabled(&f, "nobody", true), "not_found");
    assert_error(set_disabled(&f, "no", true), "not_found");
    teardown(&f);
}

static void test_rehash(gconstpointer data)
{
    fixture f;
    if (!setup(&f, data))
        return;
    int64_t id = new_user(&f, "frank", ENCORE_ROLE_LISTENER);
    char *before = testdb_query(f.db, "SELECT password FROM users WHERE name_key = 'frank'");
    g_assert_true(g_str_has_prefix(before, "$argon2id$v=19$m=256,t=1,p=1$"));
    /* Same parameters: no rehash. */
    g_assert_true(signin(&f, "frank", "password-123").ok);
    char *same = testdb_query(f.db, "SELECT password FROM users WHERE name_key = 'frank'");
    g_assert_cmpstr(same, ==, before);
    /* New parameters: the next successful sign-in stores a new hash before answering. */
    reopen(&f, (encore_password_params){512, 2, 1});
    assert_error(signin(&f, "frank", "password-124"), "bad_credentials");
    char *after = testdb_query(f.db, "SELECT password FROM users WHERE name_key = 'frank'");
    g_assert_cmpstr(after, ==, before); /* a failed sign-in rehashes nothing */
    g_free(after);
    result r = signin(&f, "frank", "password-123");
    g_assert_true(r.ok);
    g_assert_cmpint(r.user.id, ==, id);
    after = testdb_query(f.db, "SELECT password FROM users WHERE name_key = 'frank'");
    g_assert_true(g_str_has_prefix(after, "$argon2id$v=19$m=512,t=2,p=1$"));
    g_assert_true(signin(&f, "frank", "password-123").ok);
    g_free(before);
    g_free(same);
    g_free(after);
    teardown(&f);
}

/* Concurrent sign-ups of one name in several cases, through two stores on the same database
 * (two servers): exactly one wins. */
static void test_concurrent_signups(gconstpointer data)
{
    fixture f;
    if (!setup(&f, data))
        return;
    encore_users *other = open_store(f.db->backend, fast, 0);
    const char *names[] = {"Dana", "dana", "DANA", "dAna", "danA", "DAna", "daNA", "DanA"};
    enum { N = G_N_ELEMENTS(names) };
    result rs[N] = {{0}};
    char pw[N][32];
    for (int i = 0; i < N; i++) {
        g_snprintf(pw[i], sizeof(pw[i]), "password-%d", i);
        encore_users_signup_async(i % 2 ? other : f.users, names[i], pw[i], strlen(pw[i]), 1990,
                                  ENCORE_ROLE_LISTENER, NOW, f.ctx, on_user, &rs[i], on_destroy);
    }
    wait_all(f.ctx, rs, N);
    int winner = -1;
    for (int i = 0; i < N; i++) {
        if (rs[i].ok) {
            g_assert_cmpint(winner, ==, -1);
            winner = i;
        } else {
            g_assert_cmpstr(rs[i].error, ==, "name_taken");
        }
    }
    g_assert_cmpint(winner, >=, 0);
    g_assert_cmpstr(rs[winner].user.name, ==, names[winner]);
    result in = signin(&f, "DANA", pw[winner]);
    g_assert_true(in.ok);
    g_assert_cmpint(in.user.id, ==, rs[winner].user.id);
    assert_error(signin(&f, "dana", pw[(winner + 1) % N]), "bad_credentials");
    char *count = testdb_query(f.db, "SELECT count(*) FROM users");
    g_assert_cmpstr(count, ==, "1");
    g_free(count);
    encore_users_close(other);
    teardown(&f);
}

static void assert_contract(const encore_contract *c, int64_t singer, int64_t agent, int sbp,
                            int abp, encore_contract_status status)
{
    g_assert_cmpint(c->singer_id, ==, singer);
    g_assert_cmpint(c->agent_id, ==, agent);
    g_assert_cmpint(c->singer_bp, ==, sbp);
    g_assert_cmpint(c->agent_bp, ==, abp);
    g_assert_cmpstr(encore_contract_status_name(c->status), ==,
                    encore_contract_status_name(status));
}

static void test_contracts(gconstpointer data)
{
    fixture f;
    if (!setup(&f, data))
        return;
    int64_t ag1 = new_user(&f, "agent1", ENCORE_ROLE_AGENT);
    int64_t ag2 = new_user(&f, "agent2", ENCORE_ROLE_AGENT);
    int64_t sing = new_user(&f, "Singer1", ENCORE_ROLE_SINGER);
    int64_t lis = new_user(&f, "lis", ENCORE_ROLE_LISTENER);
    int64_t ag3 = new_user(&f, "agent3", ENCORE_ROLE_AGENT);

    /* Who may offer to whom, and the split rule. */
    assert_error(make_offer(&f, lis, "singer1", 6000, 2000, NOW), "not_agent");
    assert_error(make_offer(&f, sing, "singer1", 6000, 2000, NOW), "not_agent");
    assert_error(make_offer(&f, 9999, "singer1", 6000, 2000, NOW), "not_agent");
    assert_error(make_offer(&f, ag1, "lis", 6000, 2000, NOW), "not_singer");
    assert_error(make_offer(&f, ag1, "agent2", 6000, 2000, NOW), "not_singer");
    assert_error(make_offer(&f, ag1, "nobody", 6000, 2000, NOW), "unknown_singer");
    assert_error(make_offer(&f, ag1, "x", 6000, 2000, NOW), "unknown_singer");
    assert_error(make_offer(&f, ag1, "singer1", 6000, 4001, NOW), "bad_split");
    assert_error(make_offer(&f, ag1, "singer1", -1, 2000, NOW), "bad_split");
    assert_error(make_offer(&f, ag1, "singer1", 10001, 0, NOW), "bad_split");
    assert_error(make_offer(&f, ag1, "singer1", 0, 10001, NOW), "bad_split");
    g_assert_true(set_disabled(&f, "agent3", true).ok);
    assert_error(make_offer(&f, ag3, "singer1", 6000, 2000, NOW), "not_agent");

    result r = make_offer(&f, ag1, "SINGER1", 6000, 4000, NOW);
    g_assert_true(r.ok);
    assert_contract(&r.contract, sing, ag1, 6000, 4000, ENCORE_CONTRACT_OFFERED);
    g_assert_cmpint(r.contract.offered_at, ==, NOW);
    g_assert_cmpint(r.contract.accepted_at, ==, 0);
    /* Nothing is active yet. */
    GError *err = NULL;
    GArray *active = encore_users_contracts_load(f.users, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(active->len, ==, 0);
    g_array_unref(active);

    /* The latest offer replaces a pending one, even from another agent. */
    r = make_offer(&f, ag2, "singer1", 7000, 1500, NOW + 1);
    g_assert_true(r.ok);
    assert_contract(&r.contract, sing, ag2, 7000, 1500, ENCORE_CONTRACT_OFFERED);
    assert_error(accept_offer(&f, sing, ag1, NOW + 2), "no_offer");
    assert_error(accept_offer(&f, lis, ag2, NOW + 2), "not_singer");
    assert_error(accept_offer(&f, sing, lis, NOW + 2), "no_offer");
    r = accept_offer(&f, sing, ag2, NOW + 2);
    g_assert_true(r.ok);
    assert_contract(&r.contract, sing, ag2, 7000, 1500, ENCORE_CONTRACT_ACTIVE);
    g_assert_cmpint(r.contract.offered_at, ==, NOW + 1);
    g_assert_cmpint(r.contract.accepted_at, ==, NOW + 2);
    /* Accepting again is a retry; accepting another agent is refused. */
    r = accept_offer(&f, sing, ag2, NOW + 3);
    g_assert_true(r.ok);
    g_assert_cmpint(r.contract.accepted_at, ==, NOW + 2);
    assert_error(accept_offer(&f, sing, ag1, NOW + 3), "already_signed");
    /* No new offer while one is active, from anyone. */
    assert_error(make_offer(&f, ag1, "singer1", 5000, 1000, NOW + 4), "already_signed");
    assert_error(make_offer(&f, ag2, "singer1", 5000, 1000, NOW + 4), "already_signed");

    active = encore_users_contracts_load(f.users, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(active->len, ==, 1);
    assert_contract(&g_array_index(active, encore_contract, 0), sing, ag2, 7000, 1500,
                    ENCORE_CONTRACT_ACTIVE);
    g_array_unref(active);
    r = contracts_of(&f, ag2);
    g_assert_true(r.ok);
    g_assert_cmpuint(r.contracts->len, ==, 1);
    assert_contract(&g_array_index(r.contracts, encore_contract, 0), sing, ag2, 7000, 1500,
                    ENCORE_CONTRACT_ACTIVE);
    g_array_unref(r.contracts);
    r = contracts_of(&f, sing);
    g_assert_cmpuint(r.contracts->len, ==, 1);
    g_array_unref(r.contracts);
    r = contracts_of(&f, ag1);
    g_assert_true(r.ok);
    g_assert_cmpuint(r.contracts->len, ==, 0);
    g_array_unref(r.contracts);
    r = contracts_of(&f, 0);
    g_assert_true(r.ok);
    g_assert_cmpuint(r.contracts->len, ==, 0);
    g_array_unref(r.contracts);

    /* Only its agent (or anyone, with agent 0) ends it. */
    assert_error(end_contract(&f, sing, ag1, NOW + 5), "no_contract");
    assert_error(end_contract(&f, lis, 0, NOW + 5), "no_contract");
    r = end_contract(&f, sing, ag2, NOW + 5);
    g_assert_true(r.ok);
    assert_contract(&r.contract, sing, ag2, 7000, 1500, ENCORE_CONTRACT_ENDED);
    g_assert_cmpint(r.contract.ended_at, ==, NOW + 5);
    assert_error(end_contract(&f, sing, 0, NOW + 6), "no_contract");
    active = encore_users_contracts_load(f.users, &err);
    g_assert_cmpuint(active->len, ==, 0);
    g_array_unref(active);
    r = contracts_of(&f, ag2);
    g_assert_cmpuint(r.contracts->len, ==, 0);
    g_array_unref(r.contracts);

    /* After the end a new offer is possible; the singer can decline it (end with agent 0). */
    r = make_offer(&f, ag1, "singer1", 5000, 3000, NOW + 7);
    g_assert_true(r.ok);
    g_assert_cmpint(r.contract.accepted_at, ==, 0);
    g_assert_cmpint(r.contract.ended_at, ==, 0);
    r = contracts_of(&f, sing);
    g_assert_cmpuint(r.contracts->len, ==, 1);
    g_assert_cmpint(g_array_index(r.contracts, encore_contract, 0).status, ==,
                    ENCORE_CONTRACT_OFFERED);
    g_array_unref(r.contracts);
    r = end_contract(&f, sing, 0, NOW + 8);
    g_assert_true(r.ok);
    assert_error(accept_offer(&f, sing, ag1, NOW + 9), "no_offer");
    /* A disabled agent's offer cannot be accepted. */
    g_assert_true(make_offer(&f, ag1, "singer1", 5000, 3000, NOW + 10).ok);
    g_assert_true(set_disabled(&f, "agent1", true).ok);
    assert_error(accept_offer(&f, sing, ag1, NOW + 11), "no_offer");
    teardown(&f);
}

static void test_channels(gconstpointer data)
{
    fixture f;
    if (!setup(&f, data))
        return;
    int64_t ag1 = new_user(&f, "agent1", ENCORE_ROLE_AGENT);
    int64_t ag2 = new_user(&f, "agent2", ENCORE_ROLE_AGENT);
    int64_t lis = new_user(&f, "lis", ENCORE_ROLE_LISTENER);
    result r = claim_room(&f, ag1, "lobby", NOW);
    g_assert_true(r.ok);
    g_assert_cmpstr(r.channel.room, ==, "lobby");
    g_assert_cmpint(r.channel.agent_id, ==, ag1);
    g_assert_cmpint(r.channel.claimed_at, ==, NOW);
    /* Claiming one's own room again answers it as it was. */
    r = claim_room(&f, ag1, "lobby", NOW + 10);
    g_assert_true(r.ok);
    g_assert_cmpint(r.channel.claimed_at, ==, NOW);
    assert_error(claim_room(&f, ag2, "lobby", NOW), "room_taken");
    /* Room names are exact (case-sensitive, as room.join). */
    g_assert_true(claim_room(&f, ag2, "Lobby", NOW).ok);
    g_assert_true(claim_room(&f, ag2, "b-room_2", NOW).ok);
    assert_error(claim_room(&f, lis, "mine", NOW), "not_agent");
    assert_error(claim_room(&f, 0, "mine", NOW), "not_agent");
    assert_error(claim_room(&f, ag1, "", NOW), "bad_room");
    assert_error(claim_room(&f, ag1, "a b", NOW), "bad_room");
    assert_error(claim_room(&f, ag1, "a.b", NOW), "bad_room");
    char *room = g_strnfill(65, 'r');
    assert_error(claim_room(&f, ag1, room, NOW), "bad_room");
    room[64] = '\0';
    g_assert_true(claim_room(&f, ag1, room, NOW).ok);
    GError *err = NULL;
    GArray *all = encore_users_channels_load(f.users, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(all->len, ==, 4);
    /* Bytewise order: uppercase first. */
    g_assert_cmpstr(g_array_index(all, encore_channel, 0).room, ==, "Lobby");
    g_assert_cmpint(g_array_index(all, encore_channel, 0).agent_id, ==, ag2);
    g_assert_cmpstr(g_array_index(all, encore_channel, 1).room, ==, "b-room_2");
    g_assert_cmpstr(g_array_index(all, encore_channel, 2).room, ==, "lobby");
    g_assert_cmpint(g_array_index(all, encore_channel, 2).agent_id, ==, ag1);
    g_assert_cmpstr(g_array_index(all, encore_channel, 3).room, ==, room);
    g_array_unref(all);
    g_free(room);
    teardown(&f);
}

static void test_reopen_persists(gconstpointer data)
{
    fixture f;
    if (!setup(&f, data))
        return;
    int64_t ag = new_user(&f, "Agent.Zed", ENCORE_ROLE_AGENT);
    int64_t sing = new_user(&f, "singer-z", ENCORE_ROLE_SINGER);
    g_assert_true(make_offer(&f, ag, "singer-z", 6000, 2000, NOW).ok);
    g_assert_true(accept_offer(&f, sing, ag, NOW + 1).ok);
    g_assert_true(claim_room(&f, ag, "zroom", NOW).ok);
    int64_t gone = new_user(&f, "gone", ENCORE_ROLE_LISTENER);
    g_assert_true(set_disabled(&f, "gone", true).ok);

    reopen(&f, fast);
    result in = signin(&f, "agent.zed", "password-123");
    g_assert_true(in.ok);
    g_assert_cmpint(in.user.id, ==, ag);
    g_assert_cmpstr(in.user.name, ==, "Agent.Zed");
    g_assert_cmpint(in.user.role, ==, ENCORE_ROLE_AGENT);
    assert_error(signin(&f, "gone", "password-123"), "disabled");
    GError *err = NULL;
    GArray *active = encore_users_contracts_load(f.users, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(active->len, ==, 1);
    encore_contract *c = &g_array_index(active, encore_contract, 0);
    assert_contract(c, sing, ag, 6000, 2000, ENCORE_CONTRACT_ACTIVE);
    g_assert_cmpint(c->offered_at, ==, NOW);
    g_assert_cmpint(c->accepted_at, ==, NOW + 1);
    g_array_unref(active);
    GArray *channels = encore_users_channels_load(f.users, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(channels->len, ==, 1);
    g_assert_cmpstr(g_array_index(channels, encore_channel, 0).room, ==, "zroom");
    g_assert_cmpint(g_array_index(channels, encore_channel, 0).agent_id, ==, ag);
    g_array_unref(channels);
    /* Ids keep growing (they name ledger accounts: never reused). */
    g_assert_cmpint(new_user(&f, "newbie", ENCORE_ROLE_LISTENER), >, gone);
    teardown(&f);
}

/* Closing with work in flight finishes it: every answer still arrives. */
static void test_close_drains(gconstpointer data)
{
    fixture f;
    if (!setup(&f, data))
        return;
    int64_t ag = new_user(&f, "agent", ENCORE_ROLE_AGENT);
    new_user(&f, "singer", ENCORE_ROLE_SINGER);
    result rs[4] = {{0}};
    const char *names[] = {"u1", "user2", "user3"};
    for (int i = 0; i < 3; i++)
        encore_users_signup_async(f.users, names[i], "password-123", 12, 1990, ENCORE_ROLE_LISTENER,
                                  NOW, f.ctx, on_user, &rs[i], on_destroy);
    encore_users_contract_offer_async(f.users, ag, "singer", 5000, 2000, NOW, f.ctx, on_contract,
                                      &rs[3], on_destroy);
    reopen(&f, fast);
    wait_all(f.ctx, rs, 4);
    assert_error(rs[0], "bad_name");
    g_assert_true(rs[1].ok);
    g_assert_true(rs[2].ok);
    g_assert_true(rs[3].ok);
    g_assert_true(signin(&f, "user3", "password-123").ok);
    teardown(&f);
}

/* A reply context dropped before the answer: only destroy runs (on the store's thread). */
static void test_context_gone(gconstpointer data)
{
    fixture f;
    if (!setup(&f, data))
        return;
    int64_t id = new_user(&f, "gina", ENCORE_ROLE_LISTENER);
    result r = {0};
    GMainContext *ctx = g_main_context_new();
    encore_users_get_async(f.users, id, ctx, on_user, &r, on_destroy);
    encore_users_signin_async(f.users, "gina", "password-123", 12, ctx, on_user, &r, on_destroy);
    g_main_context_unref(ctx);
    for (int i = 0; i < WAIT_S * 1000 && g_atomic_int_get(&r.destroyed) < 2; i++)
        g_usleep(1000);
    g_assert_cmpint(g_atomic_int_get(&r.destroyed), ==, 2);
    g_assert_false(r.done);
    teardown(&f);
}

/* Sign-ups and sign-ins beyond max_hash_queue are refused at once; others are not. Real
 * production parameters here, so that the first hash is surely still running. */
static void test_overloaded(gconstpointer data)
{
    fixture f;
    if (!setup(&f, data))
        return;
    int64_t id = new_user(&f, "henry", ENCORE_ROLE_LISTENER);
    encore_users_close(f.users);
    encore_users_config cfg = {.backend = f.db->backend, .max_hash_queue = 1};
    GError *err = NULL;
    f.users = encore_users_open(&cfg, &err);
    g_assert_no_error(err);
    result rs[4] = {{0}};
    encore_users_signup_async(f.users, "ivy", "password-123", 12, 1990, ENCORE_ROLE_LISTENER, NOW,
                              f.ctx, on_user, &rs[0], on_destroy);
    encore_users_signup_async(f.users, "jack", "password-123", 12, 1990, ENCORE_ROLE_LISTENER, NOW,
                              f.ctx, on_user, &rs[1], on_destroy);
    encore_users_signin_async(f.users, "henry", "password-123", 12, f.ctx, on_user, &rs[2],
                              on_destroy);
    encore_users_get_async(f.users, id, f.ctx, on_user, &rs[3], on_destroy);
    wait_all(f.ctx, rs, 4);
    g_assert_true(rs[0].ok);
    assert_error(rs[1], "overloaded");
    assert_error(rs[2], "overloaded");
    g_assert_true(rs[3].ok);
    char *pw = testdb_query(f.db, "SELECT password FROM users WHERE name_key = 'ivy'");
    g_assert_true(g_str_has_prefix(pw, "$argon2id$v=19$m=65536,t=3,p=1$"));
    g_free(pw);
    /* The slot is free again; the old fast hash is upgraded at this sign-in. */
    g_assert_true(signin(&f, "henry", "password-123").ok);
    pw = testdb_query(f.db, "SELECT password FROM users WHERE name_key = 'henry'");
    g_assert_true(g_str_has_prefix(pw, "$argon2id$v=19$m=65536,t=3,p=1$"));
    g_free(pw);
    teardown(&f);
}

static void test_open_errors(void)
{
    GError *err = NULL;
    encore_users_config cfg = {.backend = "mysql:users"};
    g_assert_null(encore_users_open(&cfg, &err));
    g_assert_error(err, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_CONFIG);
    g_clear_error(&err);
    cfg.backend = "sqlite:";
    g_assert_null(encore_users_open(&cfg, &err));
    g_assert_error(err, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_CONFIG);
    g_clear_error(&err);
    g_assert_null(encore_users_open(NULL, &err));
    g_assert_error(err, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_CONFIG);
    g_clear_error(&err);

    testdb *db = testdb_new("sqlite");
    /* Fast parameters need the test flag; invalid ones are refused anyway. */
    cfg = (encore_users_config){.backend = db->backend, .password = fast};
    g_assert_null(encore_users_open(&cfg, &err));
    g_assert_error(err, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_CONFIG);
    g_clear_error(&err);
    cfg.password = (encore_password_params){8, 0, 1};
    cfg.allow_weak_password_params = true;
    g_assert_null(encore_users_open(&cfg, &err));
    g_assert_error(err, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_CONFIG);
    g_clear_error(&err);
    cfg.password = fast;
    cfg.hash_threads = 17;
    g_assert_null(encore_users_open(&cfg, &err));
    g_assert_error(err, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_CONFIG);
    g_clear_error(&err);
    /* open_existing: no file, then a file without the schema. */
    cfg = (encore_users_config){.backend = db->backend, .open_existing = true};
    g_assert_null(encore_users_open(&cfg, &err));
    g_assert_error(err, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_SCHEMA);
    g_clear_error(&err);
    char *msg = NULL;
    g_assert_true(testdb_exec(db, "CREATE TABLE unrelated (x)", &msg));
    g_assert_null(encore_users_open(&cfg, &err));
    g_assert_error(err, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_SCHEMA);
    g_clear_error(&err);
    /* A schema newer than the code. */
    cfg.open_existing = false;
    encore_users *u = encore_users_open(&cfg, &err);
    g_assert_no_error(err);
    encore_users_close(u);
    g_assert_true(testdb_exec(db, "UPDATE users_schema_version SET version = 99", &msg));
    g_assert_null(encore_users_open(&cfg, &err));
    g_assert_error(err, ENCORE_USERS_ERROR, ENCORE_USERS_ERROR_SCHEMA);
    g_clear_error(&err);
    testdb_free(db);
    encore_users_close(NULL);
}

static void test_pure_checks(void)
{
    g_assert_true(encore_users_name_valid("abc", 3));
    g_assert_true(encore_users_name_valid("A.b-c_9", 7));
    g_assert_false(encore_users_name_valid("ab", 2));
    g_assert_false(encore_users_name_valid("abc", 0));
    g_assert_false(encore_users_name_valid(NULL, 3));
    g_assert_false(encore_users_name_valid("ab\0c", 4));
    g_assert_false(encore_users_name_valid("abcdefghijklmnopqrstuvwxyz0123456", 33));
    g_assert_true(encore_users_room_valid("a", 1));
    g_assert_false(encore_users_room_valid("a.b", 3));
    g_assert_false(encore_users_room_valid("", 0));
    g_assert_cmpstr(encore_contract_status_name(ENCORE_CONTRACT_OFFERED), ==, "offered");
    g_assert_cmpstr(encore_contract_status_name(ENCORE_CONTRACT_ACTIVE), ==, "active");
    g_assert_cmpstr(encore_contract_status_name(ENCORE_CONTRACT_ENDED), ==, "ended");
    g_assert_null(encore_contract_status_name((encore_contract_status)3));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/users/pure-checks", test_pure_checks);
    g_test_add_func("/users/open-errors", test_open_errors);
    const char *kinds[] = {"sqlite", "postgresql"};
    struct {
        const char *name;
        GTestDataFunc fn;
    } tests[] = {
        {"round-trip", test_round_trip},
        {"duplicate-name", test_duplicate_name},
        {"bad-credentials", test_bad_credentials},
        {"policy", test_policy},
        {"disable-and-roles", test_disable_and_roles},
        {"rehash", test_rehash},
        {"concurrent-signups", test_concurrent_signups},
        {"contracts", test_contracts},
        {"channels", test_channels},
        {"reopen-persists", test_reopen_persists},
        {"close-drains", test_close_drains},
        {"context-gone", test_context_gone},
        {"overloaded", test_overloaded},
    };
    for (size_t k = 0; k < G_N_ELEMENTS(kinds); k++) {
        for (size_t i = 0; i < G_N_ELEMENTS(tests); i++) {
            char *path = g_strdup_printf("/users/%s/%s", kinds[k], tests[i].name);
            g_test_add_data_func(path, kinds[k], tests[i].fn);
            g_free(path);
        }
    }
    return g_test_run();
}
