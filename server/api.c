/* The request tables: the rooms' websocket requests (here), the access and money modules' own
 * routes, and the HTTP routes, installed together on the websocket server. Main thread only;
 * validation of types and ranges happens in signaling/ from the schemas. */
#include "config.h"

#include "server/api.h"

#include "server/accounts/roles.h"
#include "server/auth.h"
#include "server/economy/catalog.h"
#include "server/money.h"
#include "server/payments.h"

#include <string.h>

static const encore_proto_field join_schema[] = {
    {.name = "room",
     .kind = ENCORE_PROTO_STRING,
     .required = true,
     .min = 1,
     .max = 64,
     .flags = ENCORE_PROTO_IDENT},
    {.name = "name", /* ignored once authenticated: the room shows the account's name */
     .kind = ENCORE_PROTO_STRING,
     .required = false,
     .min = 1,
     .max = 64,
     .flags = ENCORE_PROTO_NO_CONTROL},
    {.name = NULL},
};

static const encore_proto_field offer_schema[] = {
    {.name = "sdp", .kind = ENCORE_PROTO_STRING, .required = true, .min = 10, .max = 60000},
    {.name = NULL},
};

static const encore_proto_field candidate_schema[] = {
    {.name = "pc",
     .kind = ENCORE_PROTO_STRING,
     .required = true,
     .min = 7,
     .max = 9,
     .flags = ENCORE_PROTO_IDENT},
    {.name = "candidate",
     .kind = ENCORE_PROTO_STRING,
     .required = true,
     .min = 0,
     .max = 1024,
     .flags = ENCORE_PROTO_NO_CONTROL},
    {.name = "sdpMid", .kind = ENCORE_PROTO_STRING, .required = false, .min = 0, .max = 32},
    {.name = "sdpMLineIndex", .kind = ENCORE_PROTO_INT, .required = false, .min = 0, .max = 64},
    {.name = NULL},
};

static const encore_proto_field empty_schema[] = {
    {.name = NULL},
};

static encore_member *member(encore_ws_conn *c)
{
    return encore_ws_conn_get_data(c);
}

static encore_rooms *rooms_of(void *ud)
{
    return ((encore_server *)ud)->rooms;
}

static void h_join(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_rooms_join(rooms_of(ud), member(c), id, json_string_value(json_object_get(msg, "room")),
                      json_string_value(json_object_get(msg, "name")));
}

static void h_leave(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_rooms_leave(rooms_of(ud), member(c), id);
}

static void h_queue_join(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    if (!encore_auth_may(c, id, ENCORE_PERM_PUBLISH))
        return;
    encore_rooms_queue_join(rooms_of(ud), member(c), id);
}

static void h_queue_leave(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_rooms_queue_leave(rooms_of(ud), member(c), id);
}

static void h_queue_advance(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_rooms_queue_advance(rooms_of(ud), member(c), id);
}

static void h_publish(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    if (!encore_auth_may(c, id, ENCORE_PERM_PUBLISH))
        return;
    encore_rooms_offer(rooms_of(ud), member(c), id, true,
                       json_string_value(json_object_get(msg, "sdp")));
}

static void h_subscribe(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_rooms_offer(rooms_of(ud), member(c), id, false,
                       json_string_value(json_object_get(msg, "sdp")));
}

static void h_candidate(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    const char *pc = json_string_value(json_object_get(msg, "pc"));
    bool publish = strcmp(pc, "publish") == 0;
    if (!publish && strcmp(pc, "subscribe") != 0) {
        encore_ws_error(c, id, "invalid_field", "pc",
                        "field 'pc' must be 'publish' or 'subscribe'");
        return;
    }
    encore_rooms_candidate(rooms_of(ud), member(c), id, publish,
                           json_string_value(json_object_get(msg, "candidate")));
}

static void h_ping(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    if (id)
        encore_ws_reply(c, id, NULL);
}

static const encore_ws_route routes[] = {
    {"room.join", h_join, join_schema},
    {"room.leave", h_leave, empty_schema},
    {"queue.join", h_queue_join, empty_schema},
    {"queue.leave", h_queue_leave, empty_schema},
    {"queue.advance", h_queue_advance, empty_schema},
    {"publish", h_publish, offer_schema},
    {"subscribe", h_subscribe, offer_schema},
    {"ice.candidate", h_candidate, candidate_schema},
    {"ping", h_ping, empty_schema},
};

static void on_open(encore_ws_conn *c, void *ud)
{
    encore_ws_conn_set_data(c, encore_rooms_connect(rooms_of(ud), c));
}

static void on_close(encore_ws_conn *c, void *ud)
{
    encore_server *srv = ud;
    encore_member *m = member(c);
    if (srv->auth)
        encore_auth_disconnect(srv->auth, c);
    encore_rooms_disconnect(srv->rooms, m);
    encore_ws_conn_set_data(c, NULL);
}

static void h_catalog(encore_ws_http *req, void *ud)
{
    encore_server *srv = ud;
    char *json = encore_catalog_to_json(srv->catalog);
    encore_ws_http_respond(req, 200, "application/json", json, strlen(json));
    g_free(json);
}

static const encore_ws_http_route http_routes[] = {
    {"GET", "/api/catalog", h_catalog, 0},
};

/* Appends n routes of type T to a growing array. */
#define ADD(arr, table, n) g_array_append_vals(arr, table, n)

void encore_api_register(encore_server *srv)
{
    GArray *ws = g_array_new(FALSE, FALSE, sizeof(encore_ws_route));
    ADD(ws, routes, G_N_ELEMENTS(routes));
    ADD(ws, encore_auth_routes, encore_auth_n_routes);
    ADD(ws, encore_money_routes, encore_money_n_routes);
    encore_ws_set_routes(srv->ws, (const encore_ws_route *)ws->data, ws->len, srv);
    g_array_free(ws, TRUE);

    GArray *http = g_array_new(FALSE, FALSE, sizeof(encore_ws_http_route));
    ADD(http, http_routes, G_N_ELEMENTS(http_routes));
    ADD(http, encore_auth_http_routes, encore_auth_n_http_routes);
    ADD(http, encore_payments_http_routes, encore_payments_n_http_routes);
    encore_ws_set_http_routes(srv->ws, (const encore_ws_http_route *)http->data, http->len, srv);
    g_array_free(http, TRUE);

    encore_ws_set_conn_callbacks(srv->ws, on_open, on_close, srv);
    encore_auth_attach(srv->auth, srv->ws);
}
