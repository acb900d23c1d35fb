/* The websocket request table: one small handler per request type, each with the schema the
 * signaling layer validates before calling it. Main thread only. */
#ifndef ENCORE_SERVER_API_H
#define ENCORE_SERVER_API_H

#include "server/server.h"

/* Installs every websocket and HTTP route, the connection callbacks, the origin check and the
 * auth gate on srv->ws; handlers get srv as user_data. */
void encore_api_register(encore_server *srv);

#endif
