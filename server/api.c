/* Request handlers: turn validated websocket messages into calls on the rooms. Main thread only;
 * validation of types and ranges happens in signaling/ from the schemas below. */
#include "config.h"

#include "server/api.h"

#include <string.h>

static const encore_proto_field join_schema[] = {
    {.name = "room",
     .kind = ENCORE_PROTO_STRING,
     .required = true,
     .min = 1,
     .max = 64,
     .flags = ENCORE_PROTO_IDENT},
    {.name = "name",
     .kind = ENCORE_PROTO_STRING,
     .required = true,
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

static void h_join(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_rooms_join(ud, member(c), id, json_string_value(json_object_get(msg, "room")),
                      json_string_value(json_object_get(msg, "name")));
}

static void h_leave(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_rooms_leave(ud, member(c), id);
}

static void h_queue_join(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_rooms_queue_join(ud, member(c), id);
}

static void h_queue_leave(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_rooms_queue_leave(ud, member(c), id);
}

static void h_queue_advance(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_rooms_queue_advance(ud, member(c), id);
}

static void h_publish(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_rooms_offer(ud, member(c), id, true, json_string_value(json_object_get(msg, "sdp")));
}

static void h_subscribe(encore_ws_conn *c, json_t *id, json_t *msg, void *ud)
{
    encore_rooms_offer(ud, member(c), id, false, json_string_value(json_object_get(msg, "sdp")));
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
    encore_rooms_candidate(ud, member(c), id, publish,
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
    encore_ws_conn_set_data(c, encore_rooms_connect(ud, c));
}

static void on_close(encore_ws_conn *c, void *ud)
{
    encore_rooms_disconnect(ud, member(c));
    encore_ws_conn_set_data(c, NULL);
}

void encore_api_register(encore_ws *ws, encore_rooms *rooms)
{
    encore_ws_set_routes(ws, routes, G_N_ELEMENTS(routes), rooms);
    encore_ws_set_conn_callbacks(ws, on_open, on_close, rooms);
}
