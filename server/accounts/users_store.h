/* The backends behind the users store (internal to server/accounts/): one vtable, two
 * implementations (users_sqlite.c, users_pg.c). Every call runs on the store's database thread,
 * which owns the connection; nothing here is thread-safe. Each call is one statement (so one
 * atomic step on both engines); the rules that combine them live in users.c. */
#ifndef ENCORE_ACCOUNTS_USERS_STORE_H
#define ENCORE_ACCOUNTS_USERS_STORE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/accounts/users.h"

/* Schema version the code writes; both backends migrate up to it on open. */
#define ENCORE_USERS_SCHEMA_VERSION 1

/* Outcome of a store call. */
typedef enum {
    USERS_STORE_OK = 0,
    USERS_STORE_NOT_FOUND, /* no (matching) row */
    USERS_STORE_CONFLICT,  /* a unique key or a guarded upsert refused the write */
    USERS_STORE_ERROR,     /* database error: *error is set (domain ENCORE_USERS_STORE_ERROR) */
} users_store_result;

/* Error classes of store calls (GError domain ENCORE_USERS_STORE_ERROR). */
typedef enum {
    ENCORE_USERS_STORE_TRANSIENT, /* busy, serialization failure, lost connection: may be retried */
    ENCORE_USERS_STORE_FATAL,
} encore_users_store_error;

#define ENCORE_USERS_STORE_ERROR (encore_users_store_error_quark())
GQuark encore_users_store_error_quark(void);

typedef struct encore_users_store encore_users_store;

typedef struct {
    bool open_existing;
    unsigned busy_timeout_ms;
} encore_users_store_options;

struct encore_users_store_ops {
    const char *name; /* backend prefix: "sqlite", "postgresql" */
    /* Connects, creates or migrates the schema. Errors: ENCORE_USERS_ERROR (_STORE, _SCHEMA). */
    encore_users_store *(*open)(const char *target, const encore_users_store_options *opts,
                                GError **error);
    void (*close)(encore_users_store *s);
    /* Inserts a user (u->name, role, birth_year, created_at; name_key its lowercase form) with
     * the encoded password hash. OK with *out filled (id assigned), or CONFLICT when name_key
     * exists. */
    users_store_result (*insert_user)(encore_users_store *s, const encore_user *u,
                                      const char *name_key, const char *password, encore_user *out,
                                      GError **error);
    /* Reads the user with id (when id > 0) or with name_key. password (may be NULL) receives a
     * copy of the stored hash (g_free). OK or NOT_FOUND. */
    users_store_result (*find_user)(encore_users_store *s, int64_t id, const char *name_key,
                                    encore_user *out, char **password, GError **error);
    /* Replaces the hash of user id when it still equals old_password. OK or NOT_FOUND. */
    users_store_result (*set_password)(encore_users_store *s, int64_t id, const char *old_password,
                                       const char *new_password, GError **error);
    /* Sets role (>= 0) and/or disabled (0 or 1; -1 keeps either) of the user with name_key. OK
     * with *out the updated row, or NOT_FOUND. */
    users_store_result (*update_user)(encore_users_store *s, const char *name_key, int role,
                                      int disabled, encore_user *out, GError **error);
    /* Appends up to limit users with id > after_id, by id, to out (GArray of encore_user). */
    users_store_result (*list_users)(encore_users_store *s, int64_t after_id, unsigned limit,
                                     GArray *out, GError **error);
    /* Writes c (singer_id, agent_id, shares, offered_at) as the singer's offered contract unless
     * the singer's row is active. OK with *out, or CONFLICT (active). */
    users_store_result (*offer)(encore_users_store *s, const encore_contract *c,
                                encore_contract *out, GError **error);
    /* offered -> active (accepted_at = now) when the singer's row is offered by agent_id. OK
     * with *out, or NOT_FOUND. */
    users_store_result (*accept)(encore_users_store *s, int64_t singer_id, int64_t agent_id,
                                 int64_t now, encore_contract *out, GError **error);
    /* offered/active -> ended (ended_at = now), only when agent_id is 0 or the row's agent. OK
     * with *out, or NOT_FOUND. */
    users_store_result (*end)(encore_users_store *s, int64_t singer_id, int64_t agent_id,
                              int64_t now, encore_contract *out, GError **error);
    /* The singer's row, whatever its status. OK or NOT_FOUND. */
    users_store_result (*get_contract)(encore_users_store *s, int64_t singer_id,
                                       encore_contract *out, GError **error);
    /* Appends to out (GArray of encore_contract), by singer id: with user_id 0 every active
     * contract, else the offered and active ones where user_id is the singer or the agent. */
    users_store_result (*list_contracts)(encore_users_store *s, int64_t user_id, GArray *out,
                                         GError **error);
    /* Inserts the channel unless the room exists, then reads the room's row into *out (whoever
     * owns it). OK. */
    users_store_result (*claim_channel)(encore_users_store *s, const char *room, int64_t agent_id,
                                        int64_t now, encore_channel *out, GError **error);
    /* Appends every channel, by room, to out (GArray of encore_channel). */
    users_store_result (*list_channels)(encore_users_store *s, GArray *out, GError **error);
};

extern const struct encore_users_store_ops encore_users_sqlite_ops;
extern const struct encore_users_store_ops encore_users_pg_ops;

/* Shared by both backends: "offered"/"active"/"ended" -> the enum (ENDED for anything else,
 * which the CHECK constraints rule out). */
encore_contract_status encore_users_store_status_parse(const char *s);

#endif
