/* VIP status: the plan of a purchase (a ledger transfer to the platform) and the fold of
 * committed purchases into each user's tier and expiry. Main thread only (no locks); no I/O. It
 * must not submit to the ledger: the server submits the plan and applies the committed answer
 * (and, at start, every committed "vip" transfer read back from the ledger, oldest first).
 *
 * Rules of the fold, per user, for a purchase of `months` of a tier of rank R at time t:
 * - a month is 30 days (ENCORE_VIP_MONTH_US), whatever the calendar says;
 * - status is active while t < expiry;
 * - not active: the tier becomes R and expiry = t + months;
 * - active with the same or a higher rank: expiry = expiry + months (extends from the current
 *   expiry) and the tier becomes R at once, for the time that was left too (an upgrade lifts the
 *   remaining days without charge: simple, and never takes anything from the buyer);
 * - active with a lower rank (refused up front by encore_vip_may_buy(); only two purchases in
 *   flight at once get here): expiry = expiry + months and the higher tier stays.
 * Expiry is capped at ENCORE_VIP_MAX_EXPIRY_US. */
#ifndef ENCORE_ECONOMY_VIP_H
#define ENCORE_ECONOMY_VIP_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/economy/catalog.h"
#include "server/economy/ledger.h"

#define ENCORE_VIP_MONTH_US (INT64_C(30) * 86400 * 1000000)
#define ENCORE_VIP_MAX_MONTHS 12
/* 9999-12-31T23:59:59Z in microseconds: an expiry never goes past it. */
#define ENCORE_VIP_MAX_EXPIRY_US INT64_C(253402300799000000)
#define ENCORE_VIP_METADATA_MAX 256

/* Outcomes. The names are the protocol's error codes. */
typedef enum {
    ENCORE_VIP_OK = 0,
    ENCORE_VIP_INVALID,      /* "invalid_request": a user id <= 0, a rank out of 1..100, a
                              * transfer id <= 0 (the server's bug, not the client's) */
    ENCORE_VIP_BAD_KEY,      /* "bad_key": key is not 1..64 of [A-Za-z0-9_-] */
    ENCORE_VIP_UNKNOWN_TIER, /* "unknown_tier": no such tier in the catalog */
    ENCORE_VIP_BAD_MONTHS,   /* "bad_months": months not in 1..12 */
    ENCORE_VIP_LOWER_TIER,   /* "lower_tier": a lower tier than the one active */
    ENCORE_VIP_DUPLICATE,    /* "duplicate": this transfer id was applied already */
    ENCORE_VIP_STALE,        /* "stale": the transfer id is older than the applied-id window
                              * (server/economy/seen.h); assumed applied, ignored */
} encore_vip_result;

/* The names above; NULL when out of range. */
const char *encore_vip_result_name(encore_vip_result result);

/* A planned purchase; `req` points into the struct: use it in place, do not copy it by value. */
typedef struct {
    encore_transfer_req req;
    encore_leg legs[2];
    const encore_catalog_vip *tier; /* borrowed from the catalog */
    int64_t months;
    int64_t total; /* price_per_month * months */
    char id[ENCORE_LEDGER_ID_MAX + 1];
    char wallet[ENCORE_LEDGER_ACCOUNT_MAX + 1];
    char metadata[ENCORE_VIP_METADATA_MAX];
} encore_vip_purchase;

/* Builds the purchase of `months` of tier `tier_id` by `user` with the client's `key`: id
 * "vip:<user>:<key>", kind "vip", legs wallet:<user> -total, platform:revenue +total, metadata
 * in canonical form {"months":M,"price":P,"rank":R,"tier":"ID","user":U} where P is the price
 * per month (the rank makes the record independent of later catalog changes). Checks in this
 * order: INVALID (user), BAD_KEY, UNKNOWN_TIER, BAD_MONTHS. The result passes
 * encore_transfer_check(). */
encore_vip_result encore_vip_plan(const encore_catalog *catalog, int64_t user, const char *tier_id,
                                  int64_t months, const char *key,
                                  encore_vip_purchase *plan) G_GNUC_WARN_UNUSED_RESULT;

/* A committed purchase read back from its metadata. */
typedef struct {
    int64_t user;   /* > 0 */
    int rank;       /* 1..ENCORE_CATALOG_RANK_MAX */
    int64_t months; /* 1..12 */
    int64_t price;  /* per month, >= 1, price * months <= ENCORE_LEDGER_MAX_AMOUNT */
    char tier[ENCORE_CATALOG_ID_MAX + 1];
} encore_vip_record;

/* Return value of encore_vip_record_from_metadata() for input it refuses. */
#define ENCORE_VIP_EMETADATA (-1)

/* Parses the metadata of a committed "vip" transfer, buf[0..len): one flat JSON object with each
 * of months, price, rank, tier, user exactly once, in the ranges above (tier [a-z0-9_-]{1,32});
 * other members are ignored. Pure, no allocation. Returns 0 with *out filled, or
 * ENCORE_VIP_EMETADATA (*out zeroed). */
int encore_vip_record_from_metadata(const uint8_t *buf, size_t len,
                                    encore_vip_record *out) G_GNUC_WARN_UNUSED_RESULT;

/* The folded state. */
typedef struct encore_vip encore_vip;

/* A user's status: rank 0 and expiry 0 when none is active. */
typedef struct {
    int rank;
    int64_t expires_us;
} encore_vip_status;

/* An empty fold with an applied-id set of `seen_capacity` (0: the default of seen.h). */
encore_vip *encore_vip_new(size_t seen_capacity);
void encore_vip_free(encore_vip *vip);

/* Applies one committed purchase (transfer_id > 0) at time_us (the commit time when rebuilding,
 * the time of the answer otherwise) by the rules at the top. Returns OK with *expires_us (may be
 * NULL) set to the new expiry, DUPLICATE or STALE (nothing changed; *expires_us set to the
 * current expiry), or INVALID (user <= 0, rank out of 1..100, months out of 1..12, transfer_id
 * <= 0, time_us outside 0..ENCORE_VIP_MAX_EXPIRY_US; nothing recorded). */
encore_vip_result encore_vip_apply(encore_vip *vip, int64_t user, int rank, int64_t months,
                                   int64_t transfer_id, int64_t time_us, int64_t *expires_us);

/* The user's status at now_us: TRUE with *out filled when active (now_us < expiry), else FALSE
 * with *out zeroed. */
bool encore_vip_get(const encore_vip *vip, int64_t user, int64_t now_us, encore_vip_status *out);

/* Whether `user` may buy a tier of `rank` at now_us: OK, or LOWER_TIER while a higher one is
 * active. */
encore_vip_result encore_vip_may_buy(const encore_vip *vip, int64_t user, int rank, int64_t now_us);

/* Forgets users whose status expired at or before now_us (call now and then; returns how many
 * were dropped). Memory is one entry per user with a status not yet pruned. */
size_t encore_vip_prune(encore_vip *vip, int64_t now_us);

/* Users with an entry. */
size_t encore_vip_size(const encore_vip *vip);

#endif /* ENCORE_ECONOMY_VIP_H */
