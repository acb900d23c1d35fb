/* Access: sign-up and sign-in over HTTP (tokens out), the websocket `auth` gate (tokens in), the
 * Origin allowlist of the websocket handshake, and the Bearer check of authenticated HTTP routes.
 * Main thread only; password hashing and the users database run on the users store's threads. */
#ifndef ENCORE_SERVER_AUTH_H
#define ENCORE_SERVER_AUTH_H

#include <glib.h>

#include "server/accounts/roles.h"
#include "server/accounts/token.h"
#include "server/server.h"

/* Loads (or makes) the token keys of cfg->token_secret_file and the origin allowlist. Errors:
 * unreadable or malformed secret file, a bad allowed origin. */
encore_auth *encore_auth_new(encore_server *srv, GError **error);
void encore_auth_free(encore_auth *auth);

/* A websocket closed: forgets its session. */
void encore_auth_disconnect(encore_auth *auth, encore_ws_conn *conn);

/* Installs the origin check and the auth gate on srv->ws. */
void encore_auth_attach(encore_auth *auth, encore_ws *ws);

/* Websocket routes (auth, token.refresh) and HTTP routes (/api/signup, /api/signin); the
 * handlers' user_data is the encore_server. */
extern const encore_ws_route encore_auth_routes[];
extern const size_t encore_auth_n_routes;
extern const encore_ws_http_route encore_auth_http_routes[];
extern const size_t encore_auth_n_http_routes;

/* Checks "Authorization: Bearer <token>" of an HTTP request. TRUE with *claims filled; FALSE
 * after answering 401 itself. */
gboolean encore_auth_http_bearer(encore_server *srv, encore_ws_http *req,
                                 encore_token_claims *claims);

/* The member of an authenticated connection (the gate guarantees one for every route but auth). */
encore_member *encore_auth_member(encore_ws_conn *conn);

/* Whether the connection's role grants perm (the server decides, whatever a page shows); when
 * not, answers `forbidden` to id and returns false. */
bool encore_auth_may(encore_ws_conn *conn, json_t *id, encore_perm perm);

/* {"id":..,"name":..,"role":..,"adult":..} of a member. */
json_t *encore_auth_member_json(const encore_member *m);

#endif
