/* Rooms: who is in which room, who owns it, who sings (the stage) and who waits (the mic queue),
 * and each member's media peers. Pushes `room.state` to members when any of that changes.
 * Main thread only. Knows the signaling and media APIs, nothing of their insides. */
#ifndef ENCORE_SERVER_ROOMS_H
#define ENCORE_SERVER_ROOMS_H

#include <jansson.h>
#include <stdint.h>

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

/* Who a member is once its connection authenticated (user_id 0 before). name is copied; it is
 * also the name shown in the room. */
void encore_member_set_user(encore_member *m, int64_t user_id, const char *name, int role,
                            int birth_year);
int64_t encore_member_user_id(const encore_member *m);
const char *encore_member_name(const encore_member *m); /* NULL before auth and room.join */
int encore_member_role(const encore_member *m);
int encore_member_birth_year(const encore_member *m);
encore_ws_conn *encore_member_conn(const encore_member *m);
/* The member's room name, or NULL when it is in none. */
const char *encore_member_room(const encore_member *m);
/* The singer on stage in m's room (NULL: no room or nobody sings) and the id of the current show
 * ("<room>-<start ms>-<n>", unique across restarts; NULL when nobody sings). */
encore_member *encore_rooms_stage_of(const encore_member *m);
const char *encore_rooms_show_of(const encore_member *m);
/* Sends an already serialized event to every member of m's room (nothing when m is in none). */
void encore_rooms_broadcast(encore_rooms *rooms, const encore_member *m, const char *text,
                            size_t len);
/* The same to every member of the room named `room` (nothing when it does not exist). */
void encore_rooms_broadcast_room(encore_rooms *rooms, const char *room, const char *text,
                                 size_t len);

/* Channels: the room named `room` belongs to user `owner` (an agent; 0: nobody). Whenever that
 * user is in the room, they own it (queue.advance and the owner's other rights), ahead of the
 * longest-present member. */
void encore_rooms_set_channel_owner(encore_rooms *rooms, const char *room, int64_t owner);

/* What the layers above (the money side) want to hear about. Every field may be NULL. */
typedef struct {
    /* m joined a room (after the reply and the state push were queued). */
    void (*joined)(encore_member *m, void *user_data);
    /* The stage of `room` changed: singer is the new one (NULL: nobody), show its show id. */
    void (*stage_changed)(encore_rooms *rooms, const char *room, const char *show,
                          encore_member *singer, void *user_data);
    /* The VIP badge of a user shown in room.state (a static or long-lived string), or NULL. */
    const char *(*badge)(int64_t user_id, void *user_data);
} encore_rooms_hooks;
void encore_rooms_set_hooks(encore_rooms *rooms, const encore_rooms_hooks *hooks, void *user_data);

/* Counts for /metrics. */
unsigned encore_rooms_count(const encore_rooms *rooms);
unsigned encore_rooms_members(const encore_rooms *rooms);
unsigned encore_rooms_listeners(const encore_rooms *rooms);

#endif
