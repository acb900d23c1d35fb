/* The money requests of the websocket (docs/protocol.md "Accounts, coins and gifts"): wallet,
 * gifts with combos and the room's leaderboard, VIP status, earnings, withdrawals and contracts.
 * The ledger is the one source of truth: what is derived from money (VIP expiry, rankings,
 * today's spending, withdrawal states) is rebuilt from its committed transfers at start and then
 * follows each committed answer, never applying a transfer id twice. Main thread only. */
#ifndef ENCORE_SERVER_MONEY_H
#define ENCORE_SERVER_MONEY_H

#include <glib.h>

#include "server/server.h"

/* Loads the active contracts, rebuilds the derived state from the ledger (blocking: at start
 * only) and installs the rooms hooks. Errors: the users store or the ledger could not be read. */
encore_money *encore_money_new(encore_server *srv, GError **error);
void encore_money_free(encore_money *money);

extern const encore_ws_route encore_money_routes[];
extern const size_t encore_money_n_routes;

/* Counters and gauges for /metrics. */
void encore_money_collect(encore_money *money, GString *out);

#endif
