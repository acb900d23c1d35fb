/* Rooms: who is in which room, who owns it, who sings (the stage) and who waits (the mic queue),
 * and each member's media peers. Pushes `room.state` to members when any of that changes.
 * Main thread only. Knows the signaling and media APIs, nothing of their insides. */
#ifndef ENCORE_SERVER_ROOMS_H
#define ENCORE_SERVER_ROOMS_H

#include <jansson.h>

#include "media/media.h"
#include "signaling/ws.h"

typedef struct encore_rooms encore_rooms;
typedef struct encore_member encore_member;

encore_rooms *encore_rooms_new(encore_media *media);
/* Frees every room and member (their connections must be closed or closing). NULL is fine. */
void encore_rooms_free(encore_rooms *rooms);

/* A websocket connection opened / closed: members are made on open and freed on close. */
encore_member *encore_rooms_connect(encore_rooms *rooms, encore_ws_conn *conn);
void encore_rooms_disconnect(encore_rooms *rooms, encore_member *member);

/* Requests. Each replies to `id` on the member's connection (a result or an error). */
void encore_rooms_join(encore_rooms *rooms, encore_member *m, json_t *id, const char *room,
                       const char *name);
void encore_rooms_leave(encore_rooms *rooms, encore_member *m, json_t *id);
void encore_rooms_queue_join(encore_rooms *rooms, encore_member *m, json_t *id);
void encore_rooms_queue_leave(encore_rooms *rooms, encore_member *m, json_t *id);
void encore_rooms_queue_advance(encore_rooms *rooms, encore_member *m, json_t *id);
/* publish = true: a singer's offer; false: a listener's. The reply comes when the media worker
 * answers. */
void encore_rooms_offer(encore_rooms *rooms, encore_member *m, json_t *id, bool publish,
                        const char *sdp);
void encore_rooms_candidate(encore_rooms *rooms, encore_member *m, json_t *id, bool publish,
                            const char *candidate);

/* Counts for /metrics. */
unsigned encore_rooms_count(const encore_rooms *rooms);
unsigned encore_rooms_members(const encore_rooms *rooms);
unsigned encore_rooms_listeners(const encore_rooms *rooms);

#endif
