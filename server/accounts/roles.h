/* Account roles, what each role may do (a permission table kept as data in roles.c) and the age
 * rule for spending. Pure functions over constant data: any thread, no state, no logging. The
 * server applies these; a page's claims about roles or age are never trusted. */
#ifndef ENCORE_ACCOUNTS_ROLES_H
#define ENCORE_ACCOUNTS_ROLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One role per account. The numeric values are stable (they may be stored). */
typedef enum {
    ENCORE_ROLE_LISTENER = 0, /* audience: listens, buys coins, sends gifts */
    ENCORE_ROLE_SINGER = 1,   /* goes on stage; earns a share of gifts */
    ENCORE_ROLE_HOST = 2,     /* runs a room: stage, mic queue, moderation */
    ENCORE_ROLE_AGENT = 3,    /* signs singers, owns channels (rooms), earns a share */
    ENCORE_ROLE_ADMIN = 4,    /* platform staff: approves withdrawals, moderates */
} encore_role;
#define ENCORE_ROLE_COUNT 5

/* Capabilities a role grants. Room-level rules (which room a host runs, who is on stage) are
 * decided by the rooms layer on top of these. */
typedef enum {
    ENCORE_PERM_LISTEN = 0,              /* join rooms and receive the stage audio */
    ENCORE_PERM_PUBLISH = 1,             /* publish audio (take the stage) */
    ENCORE_PERM_HOST = 2,                /* create/run rooms: manage stage, queue, listeners */
    ENCORE_PERM_SIGN_SINGERS = 3,        /* sign singers to contracts with a revenue share */
    ENCORE_PERM_APPROVE_WITHDRAWALS = 4, /* approve or reject earnings withdrawals */
    ENCORE_PERM_SPEND = 5,    /* buy coins, send gifts, buy VIP (adults only, see below) */
    ENCORE_PERM_WITHDRAW = 6, /* request a withdrawal of own earnings */
} encore_perm;
#define ENCORE_PERM_COUNT 7

/* Return value of encore_roles_parse() for a string that names no role. */
#define ENCORE_ROLES_EUNKNOWN (-1)

/* The role's wire name: "listener", "singer", "host", "agent", "admin"; NULL when role is out of
 * range. Static strings. */
const char *encore_roles_name(encore_role role);

/* Parses s[0..len) (need not be NUL-terminated), which must equal a wire name exactly (lowercase).
 * Returns 0 with *out set, or ENCORE_ROLES_EUNKNOWN (*out untouched). */
int encore_roles_parse(const char *s, size_t len, encore_role *out);

/* The permission's name ("listen", "publish", "host", "sign_singers", "approve_withdrawals",
 * "spend", "withdraw"), or NULL when out of range. */
const char *encore_roles_perm_name(encore_perm perm);

/* Whether role is granted perm by the table (docs/accounts.md prints it). False for out-of-range
 * values. ENCORE_PERM_SPEND also needs the age rule: use encore_accounts_may_spend(). */
bool encore_roles_may(encore_role role, encore_perm perm);

/* The age rule. Only the birth year is known, so the rule is the conservative one: an account
 * born in year Y becomes adult at 12:00 UTC on 31 December of year Y + 18, the first instant at
 * which anyone born in Y, anywhere (down to UTC-12), has had an 18th birthday. Until then the
 * account may not buy coins, send gifts or buy status. */

/* Earliest and latest birth years accepted on an account: 1900 .. the current UTC year. */
#define ENCORE_ACCOUNTS_MIN_BIRTH_YEAR 1900

/* True when birth_year lies in [1900, UTC year of now]. now is Unix seconds. */
bool encore_accounts_birth_year_valid(int birth_year, int64_t now);

/* The Unix time at which an account born in birth_year becomes adult under the rule above. For
 * a year outside [1900, 9999] returns INT64_MAX (never adult). */
int64_t encore_accounts_adult_from(int birth_year);

/* True when birth_year is valid (encore_accounts_birth_year_valid) and now is at or after
 * encore_accounts_adult_from(birth_year). An invalid birth year is never adult. */
bool encore_accounts_is_adult(int birth_year, int64_t now);

/* encore_roles_may(role, ENCORE_PERM_SPEND) && encore_accounts_is_adult(birth_year, now). */
bool encore_accounts_may_spend(encore_role role, int birth_year, int64_t now);

#endif /* ENCORE_ACCOUNTS_ROLES_H */
