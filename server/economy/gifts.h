/* Gifts: turning a gift.send into a ledger transfer (the legs of the split, the scoped id and the
 * metadata), reading a committed gift's metadata back, and counting combos. Main thread; pure
 * except for the combo tracker's own memory. It must not submit anything or do I/O: the server
 * submits the planned request and applies the answer. */
#ifndef ENCORE_ECONOMY_GIFTS_H
#define ENCORE_ECONOMY_GIFTS_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/economy/catalog.h"
#include "server/economy/ledger.h"

/* Client keys: 1..64 bytes of [A-Za-z0-9_-] (docs/protocol.md "Money requests"). */
#define ENCORE_GIFTS_KEY_MAX 64
/* Room names: 1..64 bytes of [A-Za-z0-9_-] (docs/protocol.md room.join). */
#define ENCORE_GIFTS_ROOM_MAX 64
/* Show ids ("lobby-3"): 0..96 bytes of [A-Za-z0-9_.:-]; empty = not part of a show. */
#define ENCORE_GIFTS_SHOW_MAX 96
/* Room for the metadata JSON of one gift (the longest is under 400 bytes). */
#define ENCORE_GIFTS_METADATA_MAX 512

/* Outcomes of encore_gifts_plan(). The names are the protocol's error codes. */
typedef enum {
    ENCORE_GIFTS_OK = 0,
    ENCORE_GIFTS_INVALID,       /* "invalid_request": a user id <= 0, a bad room or show id, a
                                 * contract with shares over 10000 bp, a share for agent 0, or
                                 * the agent being the singer (the server's bug, not the client's) */
    ENCORE_GIFTS_BAD_KEY,       /* "bad_key": key is not 1..64 of [A-Za-z0-9_-] */
    ENCORE_GIFTS_SELF_GIFT,     /* "self_gift": sender == singer */
    ENCORE_GIFTS_UNKNOWN_GIFT,  /* "unknown_gift": no such gift in the catalog */
    ENCORE_GIFTS_BAD_COUNT,     /* "bad_count": count < 1 or > the catalog's max_count */
    ENCORE_GIFTS_TOO_EXPENSIVE, /* "too_expensive": price * count > ENCORE_LEDGER_MAX_AMOUNT */
} encore_gifts_status;

/* "ok", "invalid_request", "bad_key", "self_gift", "unknown_gift", "bad_count",
 * "too_expensive"; NULL when out of range. */
const char *encore_gifts_status_name(encore_gifts_status status);

/* A singer's contract with an agent (from the users store). */
typedef struct {
    int64_t agent;      /* the agent's user id, or 0 for none (then agent_bp must be 0) */
    uint32_t singer_bp; /* the singer's share in basis points */
    uint32_t agent_bp;  /* the agent's share; singer_bp + agent_bp <= 10000, the platform keeps
                         * the rest */
} encore_gift_contract;

/* One gift.send, checked by encore_gifts_plan(). Strings are borrowed for the call. */
typedef struct {
    int64_t from;                         /* the sender's user id (> 0) */
    int64_t to;                           /* the singer's user id (> 0) */
    const encore_gift_contract *contract; /* the singer's contract, or NULL: no agent and the
                                           * catalog's singer_bp */
    const char *gift;                     /* catalog gift id */
    int64_t count;                        /* 1..max_count */
    const char *key;                      /* the client's key */
    const char *room;                     /* the room it is sent in */
    const char *show;                     /* the show on stage, or NULL/"" for none */
} encore_gift_order;

/* A planned gift transfer. `req` points into this struct (legs, id, accounts, metadata): use it
 * in place, do not copy the struct by value. */
typedef struct {
    encore_transfer_req req; /* ready for encore_ledger_submit() */
    encore_leg legs[4];
    const encore_catalog_gift *gift; /* borrowed from the catalog */
    int64_t total;                   /* price * count: what the sender pays */
    int64_t singer_part;             /* the parts of encore_split(total, ...): they sum to total */
    int64_t agent_part;
    int64_t platform_part;
    int64_t agent; /* the agent credited, 0 when none */
    char id[ENCORE_LEDGER_ID_MAX + 1];
    char accounts[4][ENCORE_LEDGER_ACCOUNT_MAX + 1];
    char metadata[ENCORE_GIFTS_METADATA_MAX];
} encore_gift_plan;

/* Builds the transfer of one gift.send into *plan:
 * - id "gift:<from>:<key>", kind "gift";
 * - legs: wallet:<from> -total; earnings:<to> +singer_part; earnings:<agent> +agent_part;
 *   platform:revenue +platform_part, where total = price * count and the parts are
 *   encore_split(total, singer_bp, agent_bp). A part of 0 gets no leg (the ledger refuses zero
 *   legs): the singer's leg is missing when the total is too small for a whole coin of share
 *   (1 coin at 50%), the agent's without an agent, the platform's at 100% to the others;
 * - metadata, already in the ledger's canonical form (compact, keys sorted):
 *   {"agent":A,"count":N,"from":F,"gift":"ID","price":P,"room":"R","show":"S","to":T}
 *   (agent 0 when none, show "" when none).
 * Checks in this order and returns the first failure: INVALID, BAD_KEY, SELF_GIFT, UNKNOWN_GIFT,
 * BAD_COUNT, TOO_EXPENSIVE; on failure *plan is unspecified. The result always passes
 * encore_transfer_check(). */
encore_gifts_status encore_gifts_plan(const encore_catalog *catalog, const encore_gift_order *order,
                                      encore_gift_plan *plan) G_GNUC_WARN_UNUSED_RESULT;

/* A committed gift as read back from its metadata. */
typedef struct {
    int64_t from;  /* > 0 */
    int64_t to;    /* > 0, != from */
    int64_t agent; /* >= 0, != to */
    char gift[ENCORE_CATALOG_ID_MAX + 1];
    int64_t count; /* 1..ENCORE_CATALOG_MAX_COUNT */
    int64_t price; /* >= 1; price * count <= ENCORE_LEDGER_MAX_AMOUNT */
    char room[ENCORE_GIFTS_ROOM_MAX + 1];
    char show[ENCORE_GIFTS_SHOW_MAX + 1]; /* "" when none */
} encore_gift_record;

/* Return value of encore_gift_record_from_metadata() for input it refuses. */
#define ENCORE_GIFTS_EMETADATA (-1)

/* Parses the metadata of a committed "gift" transfer, buf[0..len) (need not be NUL-terminated):
 * one flat JSON object (server/accounts/flatjson.h: escape-free ASCII strings and integers) with
 * each of agent, count, from, gift, price, room, show, to exactly once, with the types and ranges
 * of encore_gift_record and the character sets of the plan. Members with other names are
 * ignored (a newer server may add some). Pure: no allocation, bounded by len. Returns 0 with
 * *out filled, or ENCORE_GIFTS_EMETADATA (*out zeroed). */
int encore_gift_record_from_metadata(const uint8_t *buf, size_t len,
                                     encore_gift_record *out) G_GNUC_WARN_UNUSED_RESULT;

/* Combos: the same gift from the same sender to the same singer again within the window after
 * the previous one adds up; anything later starts over at its own count. */
typedef struct encore_gifts_combo encore_gifts_combo;

/* Default bound on the entries kept. */
#define ENCORE_GIFTS_COMBO_DEFAULT_MAX 100000u

/* A tracker with the catalog's window (0: every gift starts over) keeping at most `max_entries`
 * (sender, singer, gift) entries (0: ENCORE_GIFTS_COMBO_DEFAULT_MAX). Entries idle for longer
 * than the window are dropped on the next hit; when full, the entry idle longest goes first. */
encore_gifts_combo *encore_gifts_combo_new(int64_t window_ms, size_t max_entries);
void encore_gifts_combo_free(encore_gifts_combo *combo);

/* Counts one committed gift of `count` (> 0) at `now_ms` (a monotonic clock, never going
 * backwards between calls) and returns the combo count: previous combo + count when the same
 * (from, to, gift) was hit at most window_ms before (now_ms - last <= window_ms), else count.
 * Returns 0 (and records nothing) for count <= 0 or a NULL or over-long gift id. */
int64_t encore_gifts_combo_hit(encore_gifts_combo *combo, int64_t from, int64_t to,
                               const char *gift, int64_t count, int64_t now_ms);

/* Entries currently kept (for tests and metrics). */
size_t encore_gifts_combo_size(const encore_gifts_combo *combo);

#endif /* ENCORE_ECONOMY_GIFTS_H */
