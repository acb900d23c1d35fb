/* encore-users: the administrator's tool for the users store (add an account with any role,
 * list accounts, change a role, disable or re-enable an account). A short-lived program on one
 * thread that waits for each answer on its own GMainContext; it never prints a password or a
 * hash. Exit codes: 0 done, 1 refused (name taken, unknown user, weak password...), 2 usage,
 * 3 the store could not be opened or failed. */
#define G_LOG_DOMAIN "encore-users"
#include "config.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "server/accounts/users.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_STORE 3
#define DEFAULT_STORE "sqlite:var/users.db"

static const char usage_text[] =
    "Usage: encore-users [--store BACKEND] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  add NAME --birth-year YEAR [--role ROLE]   create an account; the password is read\n"
    "                                             from standard input (one line)\n"
    "  list                                       every account: id, name, role, birth year,\n"
    "                                             created (UTC), enabled/disabled (tab-separated)\n"
    "  set-role NAME ROLE                         ROLE: listener, singer, host, agent, admin\n"
    "  disable NAME                               refuse sign-ins from now on\n"
    "  enable NAME                                allow them again\n"
    "\n"
    "Options:\n"
    "  --store BACKEND   sqlite:PATH or postgresql:CONNINFO (default " DEFAULT_STORE ")\n"
    "\n"
    "Exit status: 0 done, 1 refused (name taken, no such user, weak password, bad name or\n"
    "birth year), 2 usage error, 3 the store could not be opened or failed.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "encore-users: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (encore-users help shows the usage)\n");
    return EXIT_USAGE;
}

/* One awaited answer. */
typedef struct {
    bool done;
    bool ok;
    encore_user user;
    char error[32];
} answer;

static void on_user(const encore_user *u, const char *error, void *ud)
{
    answer *a = ud;
    a->done = true;
    a->ok = u != NULL;
    if (u)
        a->user = *u;
    else
        g_strlcpy(a->error, error, sizeof(a->error));
}

static void wait_answer(GMainContext *ctx, answer *a)
{
    while (!a->done)
        g_main_context_iteration(ctx, TRUE);
}

/* Exit code of a refused answer. */
static int refused(const answer *a, const char *what)
{
    fprintf(stderr, "encore-users: %s: %s\n", what, a->error);
    return strcmp(a->error, ENCORE_USERS_E_STORE) == 0 ? EXIT_STORE : EXIT_REFUSED;
}

/* Reads one line from stdin into buf (without the line end); echo off on a terminal. Returns
 * the length, or -1 when the line is longer than the buffer or there is no input. */
static ssize_t read_password(char *buf, size_t cap)
{
    struct termios saved, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        fprintf(stderr, "Password: ");
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    ssize_t len = -1;
    if (fgets(buf, (int)cap, stdin)) {
        size_t n = strlen(buf);
        bool complete = n > 0 && buf[n - 1] == '\n';
        if (complete || feof(stdin)) {
            while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                buf[--n] = '\0';
            len = (ssize_t)n;
        }
    }
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fprintf(stderr, "\n");
    }
    return len;
}

static int cmd_add(encore_users *users, GMainContext *ctx, const char *name, const char *role_name,
                   int birth_year)
{
    encore_role role;
    if (encore_roles_parse(role_name, strlen(role_name), &role) != 0)
        return usage_error("unknown role \"%s\"", role_name);
    /* Room for the longest password the policy accepts, its line end and one byte more (to
     * tell an over-long line). */
    char pw[ENCORE_PASSWORD_MAX_BYTES + 4];
    ssize_t len = read_password(pw, sizeof(pw));
    int rc = 0;
    if (len < 0) {
        fprintf(stderr,
                "encore-users: add: no password line on standard input (or longer "
                "than %d bytes)\n",
                ENCORE_PASSWORD_MAX_BYTES);
        rc = EXIT_REFUSED;
        goto out;
    }
    answer a = {0};
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    encore_users_signup_async(users, name, pw, (size_t)len, birth_year, role, now, ctx, on_user, &a,
                              NULL);
    wait_answer(ctx, &a);
    if (!a.ok) {
        rc = refused(&a, "add");
        goto out;
    }
    printf("added user %" G_GINT64_FORMAT " %s (%s)\n", a.user.id, a.user.name,
           encore_roles_name(a.user.role));
out:
    OPENSSL_cleanse(pw, sizeof(pw));
    return rc;
}

static int cmd_list(encore_users *users)
{
    int64_t after = 0;
    for (;;) {
        GError *err = NULL;
        GArray *page = encore_users_list(users, after, 1000, &err);
        if (!page) {
            fprintf(stderr, "encore-users: list: %s\n", err->message);
            g_error_free(err);
            return EXIT_STORE;
        }
        for (guint i = 0; i < page->len; i++) {
            const encore_user *u = &g_array_index(page, encore_user, i);
            GDateTime *t = g_date_time_new_from_unix_utc(u->created_at);
            char *created = t ? g_date_time_format(t, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("?");
            printf("%" G_GINT64_FORMAT "\t%s\t%s\t%d\t%s\t%s\n", u->id, u->name,
                   encore_roles_name(u->role) ? encore_roles_name(u->role) : "?", u->birth_year,
                   created, u->disabled ? "disabled" : "enabled");
            g_free(created);
            if (t)
                g_date_time_unref(t);
            after = u->id;
        }
        guint n = page->len;
        g_array_unref(page);
        if (n < 1000)
            return 0;
    }
}

static int cmd_set_role(encore_users *users, GMainContext *ctx, const char *name,
                        const char *role_name)
{
    encore_role role;
    if (encore_roles_parse(role_name, strlen(role_name), &role) != 0)
        return usage_error("unknown role \"%s\"", role_name);
    answer a = {0};
    encore_users_set_role_async(users, name, role, ctx, on_user, &a, NULL);
    wait_answer(ctx, &a);
    if (!a.ok)
        return refused(&a, name);
    printf("user %" G_GINT64_FORMAT " %s is now %s\n", a.user.id, a.user.name,
           encore_roles_name(a.user.role));
    return 0;
}

static int cmd_set_disabled(encore_users *users, GMainContext *ctx, const char *name, bool disabled)
{
    answer a = {0};
    encore_users_set_disabled_async(users, name, disabled, ctx, on_user, &a, NULL);
    wait_answer(ctx, &a);
    if (!a.ok)
        return refused(&a, name);
    printf("user %" G_GINT64_FORMAT " %s is %s\n", a.user.id, a.user.name,
           a.user.disabled ? "disabled" : "enabled");
    return 0;
}

int main(int argc, char **argv)
{
    char *store = NULL, *role = NULL;
    int birth_year = 0;
    GOptionEntry entries[] = {
        {"store", 0, 0, G_OPTION_ARG_STRING, &store, "sqlite:PATH or postgresql:CONNINFO",
         "BACKEND"},
        {"role", 0, 0, G_OPTION_ARG_STRING, &role, "role of a new account (add)", "ROLE"},
        {"birth-year", 0, 0, G_OPTION_ARG_INT, &birth_year, "birth year of a new account (add)",
         "YEAR"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *octx = g_option_context_new("COMMAND [ARGS]");
    g_option_context_add_main_entries(octx, entries, NULL);
    g_option_context_set_help_enabled(octx, FALSE);
    GError *err = NULL;
    int rc = 0;
    encore_users *users = NULL;
    GMainContext *ctx = NULL;
    if (!g_option_context_parse(octx, &argc, &argv, &err)) {
        rc = usage_error("%s", err->message);
        g_error_free(err);
        goto out;
    }
    const char *cmd = argc > 1 ? argv[1] : "";
    struct {
        const char *name;
        int args; /* after the command */
    } commands[] = {{"add", 1},     {"list", 0},   {"set-role", 2},
                    {"disable", 1}, {"enable", 1}, {"help", 0}};
    size_t which = G_N_ELEMENTS(commands);
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
        if (strcmp(cmd, commands[i].name) == 0)
            which = i;
    if (which == G_N_ELEMENTS(commands)) {
        rc = usage_error(*cmd ? "unknown command \"%s\"" : "no command%s", cmd);
        goto out;
    }
    if (strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        goto out;
    }
    if (argc - 2 != commands[which].args) {
        rc = usage_error("wrong number of arguments for %s", cmd);
        goto out;
    }
    bool add = strcmp(cmd, "add") == 0;
    if (add && birth_year == 0) {
        rc = usage_error("add needs --birth-year%s", "");
        goto out;
    }
    if (!add && (role || birth_year)) {
        rc = usage_error("--role and --birth-year are options of add, not %s", cmd);
        goto out;
    }
    /* Production password parameters; only add creates the store. */
    encore_users_config cfg = {
        .backend = store ? store : DEFAULT_STORE,
        .open_existing = !add,
        .hash_threads = 1,
    };
    users = encore_users_open(&cfg, &err);
    if (!users) {
        fprintf(stderr, "encore-users: cannot open %s: %s\n", cfg.backend, err->message);
        g_error_free(err);
        rc = EXIT_STORE;
        goto out;
    }
    ctx = g_main_context_new();
    if (add)
        rc = cmd_add(users, ctx, argv[2], role ? role : "listener", birth_year);
    else if (strcmp(cmd, "list") == 0)
        rc = cmd_list(users);
    else if (strcmp(cmd, "set-role") == 0)
        rc = cmd_set_role(users, ctx, argv[2], argv[3]);
    else
        rc = cmd_set_disabled(users, ctx, argv[2], strcmp(cmd, "disable") == 0);
out:
    encore_users_close(users);
    if (ctx)
        g_main_context_unref(ctx);
    g_option_context_free(octx);
    g_free(store);
    g_free(role);
    return rc;
}
