/* The websocket request table: one small handler per request type, each with the schema the
 * signaling layer validates before calling it. Main thread only. */
#ifndef ENCORE_SERVER_API_H
#define ENCORE_SERVER_API_H

#include "server/rooms.h"
#include "signaling/ws.h"

/* Registers every route and the connection callbacks of `ws` against `rooms`. */
void encore_api_register(encore_ws *ws, encore_rooms *rooms);

#endif
