/* The parts of a running encored that request handlers reach through their user_data: one
 * instance, made by main.c, main thread only. Each module keeps its own state behind its own
 * opaque type; this struct only wires them together. */
#ifndef ENCORE_SERVER_SERVER_H
#define ENCORE_SERVER_SERVER_H

#include <glib.h>

#include "server/config.h"
#include "server/rooms.h"
#include "signaling/ws.h"

typedef struct encore_users encore_users;
typedef struct encore_ledger encore_ledger;
typedef struct encore_auth encore_auth;
typedef struct encore_money encore_money;
typedef struct encore_payments encore_payments;
typedef struct encore_catalog encore_catalog;

typedef struct encore_server {
    const encore_config *cfg;
    GMainContext *ctx;
    encore_ws *ws;
    encore_rooms *rooms;
    encore_users *users;
    encore_ledger *ledger;
    encore_catalog *catalog;
    encore_auth *auth;
    encore_money *money;
    encore_payments *payments;
} encore_server;

/* Now in Unix seconds (the clock tokens, days and expiries use). */
static inline int64_t encore_server_now(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

#endif
