/* Top-ups: the payment-provider webhook endpoint (POST /api/webhooks/<provider>, signed with
 * Encore-Signature) that credits each provider event exactly once through the ledger, and the
 * sandbox provider (POST /api/sandbox/checkout) that signs an event and posts it to that same
 * endpoint over HTTP, as a real provider would. Main thread; the sandbox's HTTP client runs on a
 * GTask thread. */
#ifndef ENCORE_SERVER_PAYMENTS_H
#define ENCORE_SERVER_PAYMENTS_H

#include <glib.h>

#include "server/server.h"

/* Loads the secrets of every [provider.NAME] group (secret_file = PATH) and, when the sandbox is
 * on, of the sandbox (made if missing). Errors: a bad provider name, an unreadable or malformed
 * secret file. */
encore_payments *encore_payments_new(encore_server *srv, GError **error);
void encore_payments_free(encore_payments *p);

extern const encore_ws_http_route encore_payments_http_routes[];
extern const size_t encore_payments_n_http_routes;

/* Counters for /metrics. */
void encore_payments_collect(encore_payments *p, GString *out);

#endif
