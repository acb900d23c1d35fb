/* Role names, the role -> permission table (as data) and the conservative birth-year age rule.
 * Pure functions over constant tables: any thread, no state, no logging, no allocation. */
#include <string.h>

#include "server/accounts/roles.h"

static const char *const role_names[ENCORE_ROLE_COUNT] = {
    [ENCORE_ROLE_LISTENER] = "listener", [ENCORE_ROLE_SINGER] = "singer",
    [ENCORE_ROLE_HOST] = "host",         [ENCORE_ROLE_AGENT] = "agent",
    [ENCORE_ROLE_ADMIN] = "admin",
};

static const char *const perm_names[ENCORE_PERM_COUNT] = {
    [ENCORE_PERM_LISTEN] = "listen",
    [ENCORE_PERM_PUBLISH] = "publish",
    [ENCORE_PERM_HOST] = "host",
    [ENCORE_PERM_SIGN_SINGERS] = "sign_singers",
    [ENCORE_PERM_APPROVE_WITHDRAWALS] = "approve_withdrawals",
    [ENCORE_PERM_SPEND] = "spend",
    [ENCORE_PERM_WITHDRAW] = "withdraw",
};

/* The permission table. Admins do not spend (staff accounts hold no coins: separation of duties)
 * and do not publish; agents run channels (host) but do not sing from their agent account. */
#define P(perm) (1u << (perm))
static const unsigned role_perms[ENCORE_ROLE_COUNT] = {
    [ENCORE_ROLE_LISTENER] = P(ENCORE_PERM_LISTEN) | P(ENCORE_PERM_SPEND),
    [ENCORE_ROLE_SINGER] = P(ENCORE_PERM_LISTEN) | P(ENCORE_PERM_PUBLISH) | P(ENCORE_PERM_SPEND) |
                           P(ENCORE_PERM_WITHDRAW),
    [ENCORE_ROLE_HOST] =
        P(ENCORE_PERM_LISTEN) | P(ENCORE_PERM_PUBLISH) | P(ENCORE_PERM_HOST) | P(ENCORE_PERM_SPEND),
    [ENCORE_ROLE_AGENT] = P(ENCORE_PERM_LISTEN) | P(ENCORE_PERM_HOST) |
                          P(ENCORE_PERM_SIGN_SINGERS) | P(ENCORE_PERM_SPEND) |
                          P(ENCORE_PERM_WITHDRAW),
    [ENCORE_ROLE_ADMIN] =
        P(ENCORE_PERM_LISTEN) | P(ENCORE_PERM_HOST) | P(ENCORE_PERM_APPROVE_WITHDRAWALS),
};
#undef P

const char *encore_roles_name(encore_role role)
{
    if ((unsigned)role >= ENCORE_ROLE_COUNT)
        return NULL;
    return role_names[role];
}

int encore_roles_parse(const char *s, size_t len, encore_role *out)
{
    if (!s)
        return ENCORE_ROLES_EUNKNOWN;
    for (unsigned i = 0; i < ENCORE_ROLE_COUNT; i++) {
        if (strlen(role_names[i]) == len && memcmp(role_names[i], s, len) == 0) {
            *out = (encore_role)i;
            return 0;
        }
    }
    return ENCORE_ROLES_EUNKNOWN;
}

const char *encore_roles_perm_name(encore_perm perm)
{
    if ((unsigned)perm >= ENCORE_PERM_COUNT)
        return NULL;
    return perm_names[perm];
}

bool encore_roles_may(encore_role role, encore_perm perm)
{
    if ((unsigned)role >= ENCORE_ROLE_COUNT || (unsigned)perm >= ENCORE_PERM_COUNT)
        return false;
    return (role_perms[role] >> perm) & 1u;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The UTC calendar year of Unix time t (H. Hinnant's civil_from_days, year only). */
static int64_t year_of(int64_t t)
{
    int64_t z = (t >= 0 ? t / 86400 : (t - 86399) / 86400) + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return y + (m <= 2);
}

bool encore_accounts_birth_year_valid(int birth_year, int64_t now)
{
    /* Keep year_of() away from extreme values: clamp now to a sane range first. */
    if (now < 0 || now > (int64_t)253402300799) /* 9999-12-31T23:59:59Z */
        return false;
    return birth_year >= ENCORE_ACCOUNTS_MIN_BIRTH_YEAR && birth_year <= year_of(now);
}

int64_t encore_accounts_adult_from(int birth_year)
{
    if (birth_year < ENCORE_ACCOUNTS_MIN_BIRTH_YEAR || birth_year > 9999)
        return INT64_MAX;
    return days_from_civil((int64_t)birth_year + 18, 12, 31) * 86400 + 12 * 3600;
}

bool encore_accounts_is_adult(int birth_year, int64_t now)
{
    return encore_accounts_birth_year_valid(birth_year, now) &&
           now >= encore_accounts_adult_from(birth_year);
}

bool encore_accounts_may_spend(encore_role role, int birth_year, int64_t now)
{
    return encore_roles_may(role, ENCORE_PERM_SPEND) && encore_accounts_is_adult(birth_year, now);
}
