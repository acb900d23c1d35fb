/* The users store: everything about accounts that is not money (users with their password hash,
 * role and birth year; singer contracts; channels owned by agents) on SQLite or PostgreSQL.
 * Callable from any thread, typically the main loop, and never blocks it: database work runs on
 * the store's own thread and Argon2id on its own small pool; answers come back on the caller's
 * GMainContext. Never logs secrets (passwords are wiped from memory once hashed or verified).
 *
 * Threads. One database thread owns the connection and runs every statement, one operation at a
 * time, in submission order (a GMutex-protected connection shared by the callers' threads was the
 * alternative: it would make the hashing threads hold the database while they queue for it, give
 * no ordering between callers, and put a lock on the main thread's path; a single owner is what
 * the ledger does too, and the load, a few sign-ins a second, is far below one thread's
 * capacity). A GThreadPool of hash_threads (default 2, the machine's cores) runs Argon2id, which
 * costs 64 MiB and ~0.3 s per call: a sign-up or sign-in goes database -> pool -> database ->
 * answer, so the database thread never waits for a hash and the pool never holds the database.
 * Every uniqueness rule is enforced by the database itself (unique keys, conditional upserts), so
 * two servers sharing one PostgreSQL database obey the same rules.
 *
 * docs/accounts.md ("Users store") describes the model and the tables. */
#ifndef ENCORE_ACCOUNTS_USERS_H
#define ENCORE_ACCOUNTS_USERS_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/accounts/password.h"
#include "server/accounts/roles.h"

/* User names: 3-32 characters of [A-Za-z0-9_.-], stored as given, unique and looked up
 * case-insensitively (ASCII lowercase). */
#define ENCORE_USERS_NAME_MIN 3
#define ENCORE_USERS_NAME_MAX 32
/* Room (channel) names, as the protocol's room.join: 1-64 characters of [A-Za-z0-9_-], exact. */
#define ENCORE_USERS_ROOM_MAX 64
/* Revenue shares are basis points: singer_bp + agent_bp <= 10000, the platform keeps the rest. */
#define ENCORE_USERS_BP_TOTAL 10000
/* Most users one encore_users_list() call returns. */
#define ENCORE_USERS_LIST_MAX 10000

/* Error codes of the asynchronous calls (stable strings, compare with strcmp). Which call may
 * answer which is listed at each call. */
#define ENCORE_USERS_E_NAME_TAKEN "name_taken"         /* signup: the name exists in any case */
#define ENCORE_USERS_E_BAD_NAME "bad_name"             /* signup: not 3-32 of [A-Za-z0-9_.-] */
#define ENCORE_USERS_E_WEAK_PASSWORD "weak_password"   /* signup: encore_password_check_policy */
#define ENCORE_USERS_E_BAD_BIRTH_YEAR "bad_birth_year" /* signup: not in [1900, year of now] */
#define ENCORE_USERS_E_BAD_ROLE "bad_role"             /* not an encore_role value */
#define ENCORE_USERS_E_BAD_CREDENTIALS                                                             \
    "bad_credentials"                          /* signin: unknown name or wrong password */
#define ENCORE_USERS_E_DISABLED "disabled"     /* signin: right password, account disabled */
#define ENCORE_USERS_E_NOT_FOUND "not_found"   /* no user with this id or name */
#define ENCORE_USERS_E_NOT_AGENT "not_agent"   /* the acting user is not an enabled agent */
#define ENCORE_USERS_E_NOT_SINGER "not_singer" /* the user named is not an enabled singer */
#define ENCORE_USERS_E_UNKNOWN_SINGER "unknown_singer" /* offer: no such (enabled) user */
#define ENCORE_USERS_E_BAD_SPLIT "bad_split" /* a share < 0, or singer_bp + agent_bp > 10000 */
#define ENCORE_USERS_E_ALREADY_SIGNED "already_signed" /* the singer has an active contract */
#define ENCORE_USERS_E_NO_OFFER "no_offer"       /* accept: no pending offer from this agent */
#define ENCORE_USERS_E_NO_CONTRACT "no_contract" /* end: nothing offered or active to end */
#define ENCORE_USERS_E_BAD_ROOM "bad_room"       /* not 1-64 of [A-Za-z0-9_-] */
#define ENCORE_USERS_E_ROOM_TAKEN "room_taken"   /* the room belongs to another agent */
#define ENCORE_USERS_E_OVERLOADED "overloaded"   /* too many operations waiting; nothing done */
#define ENCORE_USERS_E_CLOSED "closed"           /* the store is closing; nothing done */
#define ENCORE_USERS_E_STORE                                                                       \
    "store_error" /* the database (or Argon2's allocation) failed                                  \
                   * after retries; a write may or may not have                                    \
                   * been committed (details are logged) */

/* Errors of the GError-returning calls (domain ENCORE_USERS_ERROR). */
typedef enum {
    ENCORE_USERS_ERROR_CONFIG,       /* bad backend string or configuration value */
    ENCORE_USERS_ERROR_STORE,        /* the database could not be opened, migrated or read */
    ENCORE_USERS_ERROR_SCHEMA,       /* schema newer than this code, or missing with
                                      * open_existing */
    ENCORE_USERS_ERROR_NOT_FOUND,    /* encore_users_get(): no user with this id */
    ENCORE_USERS_ERROR_CLOSED,       /* the store is closing */
    ENCORE_USERS_ERROR_WRONG_THREAD, /* a blocking call made from the store's database thread */
} encore_users_error;

#define ENCORE_USERS_ERROR (encore_users_error_quark())
GQuark encore_users_error_quark(void);

/* A user as the store answers it (plain data: copy it to keep it). The password hash never
 * leaves the store. */
typedef struct {
    int64_t id;                           /* >= 1, assigned by the store, never reused */
    char name[ENCORE_USERS_NAME_MAX + 1]; /* as given at sign-up, NUL-terminated */
    encore_role role;
    int birth_year;
    int64_t created_at; /* Unix seconds (the `now` of the sign-up) */
    bool disabled;      /* may not sign in; existing tokens are the server's concern */
} encore_user;

typedef enum {
    ENCORE_CONTRACT_OFFERED = 0, /* offered by the agent, waiting for the singer */
    ENCORE_CONTRACT_ACTIVE = 1,  /* accepted: gifts to the singer are split by it */
    ENCORE_CONTRACT_ENDED = 2,   /* ended (or an offer withdrawn/declined) */
} encore_contract_status;

/* A singer's contract: at most one row per singer (a new offer replaces a pending or ended one;
 * an active one must be ended first). */
typedef struct {
    int64_t singer_id;
    int64_t agent_id;
    int singer_bp; /* singer's share of a gift, basis points */
    int agent_bp;  /* agent's share; the platform keeps 10000 - singer_bp - agent_bp */
    encore_contract_status status;
    int64_t offered_at;  /* Unix seconds */
    int64_t accepted_at; /* 0 until accepted */
    int64_t ended_at;    /* 0 unless ended */
} encore_contract;

/* A room owned by an agent. */
typedef struct {
    char room[ENCORE_USERS_ROOM_MAX + 1];
    int64_t agent_id;
    int64_t claimed_at; /* Unix seconds */
} encore_channel;

typedef struct {
    /* "sqlite:PATH" (created if missing unless open_existing; the default deployment uses
     * var/users.db) or "postgresql:CONNINFO" (tables in the first schema of the search_path).
     * Required. */
    const char *backend;
    /* Fail with ENCORE_USERS_ERROR_SCHEMA instead of creating a missing schema (admin tools). */
    bool open_existing;
    /* Argon2id parameters for new hashes and for the dummy verification of unknown names. All
     * zero: ENCORE_PASSWORD_PARAMS_DEFAULT. They must be strong (encore_password_params_strong)
     * unless allow_weak_password_params is set. Stored hashes with other parameters still verify
     * and are rehashed at the next successful sign-in. */
    encore_password_params password;
    /* Tests only: accept fast parameters such as ENCORE_PASSWORD_PARAMS_TEST. */
    bool allow_weak_password_params;
    /* Argon2id threads (0: 2; at most 16). */
    unsigned hash_threads;
    /* Sign-ups and sign-ins in progress at once (0: 64); beyond, they are answered
     * "overloaded" at once, before any work. */
    unsigned max_hash_queue;
    /* Other operations waiting for the database thread (0: 10000); beyond, "overloaded". */
    unsigned max_queue;
    /* SQLite busy timeout in milliseconds (0: 5000). */
    unsigned busy_timeout_ms;
} encore_users_config;

typedef struct encore_users encore_users; /* opaque */

/* True when name[0..len) is a valid user name (3-32 of [A-Za-z0-9_.-]). Pure; any thread. */
bool encore_users_name_valid(const char *name, size_t len);
/* True when room[0..len) is a valid room name (1-64 of [A-Za-z0-9_-]). Pure; any thread. */
bool encore_users_room_valid(const char *room, size_t len);
/* "offered", "active", "ended"; NULL when out of range. */
const char *encore_contract_status_name(encore_contract_status status);

/* Opens (creating or migrating the schema in one transaction) and starts the threads. cfg is
 * copied. Returns NULL with error: ENCORE_USERS_ERROR_CONFIG (unknown backend prefix, empty
 * target, invalid or weak password parameters, hash_threads > 16), ENCORE_USERS_ERROR_STORE
 * (cannot connect, open or migrate), ENCORE_USERS_ERROR_SCHEMA (newer schema; missing with
 * open_existing). */
encore_users *encore_users_open(const encore_users_config *cfg, GError **error);

/* Refuses new operations (answered "closed" / ENCORE_USERS_ERROR_CLOSED), lets every operation
 * already accepted finish (their answers are still attached to their contexts), then stops the
 * threads and closes the database. Blocks while work is in flight (a sign-up's hash included).
 * Accepts NULL. Must not run on the store's threads or concurrently with other calls. */
void encore_users_close(encore_users *users);

/* Answer callbacks. They run on the reply context given with the call (NULL: the caller's
 * thread-default context at the time of the call, see g_main_context_ref_thread_default()),
 * never inside the call itself, exactly once each, then destroy(user_data) if given. Exactly one
 * of the pointer and `error` is non-NULL; both are valid during the callback only. If the
 * context is destroyed before it runs the answer, only destroy(user_data) is called. */
typedef void (*encore_users_user_fn)(const encore_user *user, const char *error, void *user_data);
typedef void (*encore_users_contract_fn)(const encore_contract *contract, const char *error,
                                         void *user_data);
/* contracts is NULL only with an error; n may be 0. */
typedef void (*encore_users_contracts_fn)(const encore_contract *contracts, size_t n,
                                          const char *error, void *user_data);
typedef void (*encore_users_channel_fn)(const encore_channel *channel, const char *error,
                                        void *user_data);

/* Creates an account: name (NUL-terminated), password[0..password_len) (copied, then wiped once
 * hashed), birth_year, role, now (Unix seconds: created_at and the birth-year check). The
 * server decides which roles a visitor may choose; the store accepts any encore_role.
 * Errors: "bad_name", "bad_role", "bad_birth_year", "weak_password" (checked in this order, at
 * once, without touching the database), "name_taken" (found before hashing, or lost the race
 * for the name: exactly one of concurrent sign-ups of one name in any case wins), "overloaded",
 * "closed", "store_error". */
void encore_users_signup_async(encore_users *users, const char *name, const char *password,
                               size_t password_len, int birth_year, encore_role role, int64_t now,
                               GMainContext *reply_ctx, encore_users_user_fn done, void *user_data,
                               GDestroyNotify destroy);

/* Checks a name (any case) and password[0..password_len) (copied, then wiped). An unknown or
 * invalid name costs the same Argon2id work as a wrong password (encore_password_verify_dummy)
 * and gets the same answer. After a successful verification the hash is replaced when
 * encore_password_needs_rehash() says so (before the answer; a failed rehash is only logged).
 * Errors: "bad_credentials" (unknown name, wrong, over-long or invalid password, unreadable
 * stored hash: the last is logged), "disabled" (only after the right password), "overloaded",
 * "closed", "store_error". */
void encore_users_signin_async(encore_users *users, const char *name, const char *password,
                               size_t password_len, GMainContext *reply_ctx,
                               encore_users_user_fn done, void *user_data, GDestroyNotify destroy);

/* Reads a user by id, or by name (any case). Errors: "not_found" (also for an invalid name),
 * "overloaded", "closed", "store_error". */
void encore_users_get_async(encore_users *users, int64_t id, GMainContext *reply_ctx,
                            encore_users_user_fn done, void *user_data, GDestroyNotify destroy);
void encore_users_find_by_name_async(encore_users *users, const char *name, GMainContext *reply_ctx,
                                     encore_users_user_fn done, void *user_data,
                                     GDestroyNotify destroy);

/* Blocking read of a user by id into *out (tests, tools, startup). Any thread but the store's
 * database thread. Returns FALSE with error: ENCORE_USERS_ERROR_NOT_FOUND, _STORE (database
 * error, or the queue is full), _CLOSED, _WRONG_THREAD. */
gboolean encore_users_get(encore_users *users, int64_t id, encore_user *out, GError **error);

/* Blocking: up to limit (1..ENCORE_USERS_LIST_MAX) users with id > after_id, by id. Returns a
 * GArray of encore_user (free with g_array_unref) or NULL with error: _CONFIG (limit out of
 * range), _STORE, _CLOSED, _WRONG_THREAD. */
GArray *encore_users_list(encore_users *users, int64_t after_id, unsigned limit, GError **error);

/* Administration: sets the role of, or disables / re-enables, the user named name (any case);
 * the answer is the updated user. Errors: "not_found", "bad_role" (set_role), "overloaded",
 * "closed", "store_error". */
void encore_users_set_role_async(encore_users *users, const char *name, encore_role role,
                                 GMainContext *reply_ctx, encore_users_user_fn done,
                                 void *user_data, GDestroyNotify destroy);
void encore_users_set_disabled_async(encore_users *users, const char *name, bool disabled,
                                     GMainContext *reply_ctx, encore_users_user_fn done,
                                     void *user_data, GDestroyNotify destroy);

/* Contracts. An agent offers, the singer accepts; at most one active contract per singer.
 *
 * offer: agent_id offers singer_name (any case) singer_bp and agent_bp at now. A pending or
 * ended contract of the singer is replaced (by this or another agent: the latest offer is the
 * one the singer sees); an active one is not. Answer: the contract (status offered). Errors:
 * "bad_split" (a share < 0 or the sum > 10000), "unknown_singer" (no such name, or disabled),
 * "not_agent" (agent_id is not an enabled agent), "not_singer" (the user is not a singer),
 * "already_signed" (the singer has an active contract), "overloaded", "closed", "store_error".
 *
 * accept: singer_id accepts the pending offer of agent_id at now. Accepting a contract already
 * active with this agent answers it again (a retry). Answer: the active contract. Errors:
 * "not_singer" (singer_id is not an enabled singer), "no_offer" (no pending offer from this
 * agent, or the agent is no longer an enabled agent), "already_signed" (active with another
 * agent), "overloaded", "closed", "store_error".
 *
 * end: ends the offered or active contract of singer_id at now; agent_id 0 ends it whoever the
 * agent is (the singer itself or an admin), else only when agent_id is its agent (the server
 * checks who may). Answer: the ended contract. Errors: "no_contract", "overloaded", "closed",
 * "store_error". */
void encore_users_contract_offer_async(encore_users *users, int64_t agent_id,
                                       const char *singer_name, int singer_bp, int agent_bp,
                                       int64_t now, GMainContext *reply_ctx,
                                       encore_users_contract_fn done, void *user_data,
                                       GDestroyNotify destroy);
void encore_users_contract_accept_async(encore_users *users, int64_t singer_id, int64_t agent_id,
                                        int64_t now, GMainContext *reply_ctx,
                                        encore_users_contract_fn done, void *user_data,
                                        GDestroyNotify destroy);
void encore_users_contract_end_async(encore_users *users, int64_t singer_id, int64_t agent_id,
                                     int64_t now, GMainContext *reply_ctx,
                                     encore_users_contract_fn done, void *user_data,
                                     GDestroyNotify destroy);

/* The offered and active contracts where user_id is the singer or the agent, by singer id (for
 * contract.get). Errors: "overloaded", "closed", "store_error". */
void encore_users_contracts_of_async(encore_users *users, int64_t user_id, GMainContext *reply_ctx,
                                     encore_users_contracts_fn done, void *user_data,
                                     GDestroyNotify destroy);

/* Blocking: every active contract, by singer id (the server keeps them in memory for gift
 * splits and updates its copy from the answers of offer/accept/end). Returns a GArray of
 * encore_contract (g_array_unref) or NULL with error: _STORE, _CLOSED, _WRONG_THREAD. */
GArray *encore_users_contracts_load(encore_users *users, GError **error);

/* Channels. claim: agent_id takes room at now; claiming a room it already owns answers the
 * existing channel. Errors: "bad_room", "not_agent", "room_taken", "overloaded", "closed",
 * "store_error". */
void encore_users_channel_claim_async(encore_users *users, int64_t agent_id, const char *room,
                                      int64_t now, GMainContext *reply_ctx,
                                      encore_users_channel_fn done, void *user_data,
                                      GDestroyNotify destroy);

/* Blocking: every channel, by room name (bytewise). Returns a GArray of encore_channel
 * (g_array_unref) or NULL with error: _STORE, _CLOSED, _WRONG_THREAD. */
GArray *encore_users_channels_load(encore_users *users, GError **error);

#endif /* ENCORE_ACCOUNTS_USERS_H */
