/* Rooms, members, the stage and the mic queue. Owns every room and member object; the media of a
 * room is owned by its media/room.h handle. Main thread only: media results arrive here through
 * callbacks queued on the main context. */
#define G_LOG_DOMAIN "encore-rooms"
#include "config.h"

#include "server/rooms.h"

#include <stdlib.h>
#include <string.h>

#include "media/room.h"

typedef struct room room;

struct encore_member {
    encore_rooms *rooms;
    encore_ws_conn *conn;
    uint64_t conn_id;
    char id[24]; /* "c<conn id>", shown to clients */
    char *name;
    int64_t user_id; /* 0 until authenticated */
    int role, birth_year;
    room *room;
    GList *link; /* in room->members */
    bool queued; /* in room->queue */
    bool has_pub, has_sub;
    bool pub_connected, sub_connected;
    json_t *pending[2]; /* request ids awaiting an answer: [0] publish, [1] subscribe */
};

struct room {
    encore_rooms *rooms;
    char *name;
    GQueue members; /* in join order: the owner is handed to the longest present */
    GQueue queue;   /* of encore_member*, waiting for the stage */
    encore_member *owner;
    encore_member *stage;
    unsigned shows;     /* stage changes to a singer so far */
    char show[128];     /* "<room>-<shows>" while someone sings, else "" */
    unsigned listeners; /* connected subscribe peers */
    encore_media_room *media;
    guint state_timer; /* a room.state push is scheduled */
};

struct encore_rooms {
    encore_media *media;
    GHashTable *by_name;  /* name -> room */
    GHashTable *by_conn;  /* conn id -> member */
    GHashTable *channels; /* room name -> owning user id (int64) */
    encore_rooms_hooks hooks;
    void *hooks_data;
    unsigned members;
    unsigned listeners;
};

static uint64_t peer_id(const encore_member *m, bool publish)
{
    return m->conn_id * 2 + (publish ? 0 : 1);
}

static const char *pc_name(bool publish)
{
    return publish ? "publish" : "subscribe";
}

/* ---- room state ---------------------------------------------------------------------------- */

static json_t *member_json(const encore_member *m)
{
    const encore_rooms *rs = m->rooms;
    const char *badge =
        rs->hooks.badge && m->user_id ? rs->hooks.badge(m->user_id, rs->hooks_data) : NULL;
    return json_pack("{s:s, s:s, s:I, s:s*}", "id", m->id, "name", m->name ? m->name : "", "user",
                     (json_int_t)m->user_id, "vip", badge);
}

/* Sends the room's state to every member: serialized once, whatever the member count. */
static void send_state(room *r)
{
    json_t *queue = json_array();
    for (GList *l = r->queue.head; l; l = l->next)
        json_array_append_new(queue, member_json(l->data));
    json_t *state =
        json_pack("{s:s, s:s, s:s?, s:o, s:o, s:i, s:i}", "type", "room.state", "room", r->name,
                  "owner", r->owner ? r->owner->id : NULL, "stage",
                  r->stage ? member_json(r->stage) : json_null(), "queue", queue, "members",
                  (json_int_t)r->members.length, "listeners", (json_int_t)r->listeners);
    char *text = json_dumps(state, JSON_COMPACT);
    json_decref(state);
    if (!text)
        return;
    size_t len = strlen(text);
    for (GList *l = r->members.head; l; l = l->next) {
        encore_member *m = l->data;
        encore_ws_send_text(m->conn, text, len);
    }
    free(text);
}

static gboolean state_timer_cb(gpointer data)
{
    room *r = data;
    r->state_timer = 0;
    send_state(r);
    return G_SOURCE_REMOVE;
}

/* Schedules a room.state push. Changes within STATE_COALESCE_MS go out as one push, so a crowd
 * joining a big room costs one broadcast per window, not one per join (which is O(members^2)). */
#define STATE_COALESCE_MS 100

static void push_state(room *r)
{
    if (!r->state_timer)
        r->state_timer = g_timeout_add(STATE_COALESCE_MS, state_timer_cb, r);
}

/* ---- media callbacks ----------------------------------------------------------------------- */

static encore_member *member_of_peer(encore_rooms *rs, uint64_t pid, bool *publish)
{
    uint64_t conn_id = pid / 2;
    *publish = (pid % 2) == 0;
    return g_hash_table_lookup(rs->by_conn, &conn_id);
}

static void on_answer(uint64_t pid, const char *sdp, const char *code, const char *message,
                      void *user_data)
{
    room *r = user_data;
    bool publish;
    encore_member *m = member_of_peer(r->rooms, pid, &publish);
    if (!m || m->room != r)
        return;
    json_t **pending = &m->pending[publish ? 0 : 1];
    json_t *id = *pending;
    *pending = NULL;
    if (sdp) {
        encore_ws_reply(m->conn, id, json_pack("{s:s}", "sdp", sdp));
    } else {
        if (publish ? !m->pub_connected : !m->sub_connected) {
            if (publish)
                m->has_pub = false;
            else
                m->has_sub = false;
        }
        encore_ws_error(m->conn, id, code, NULL, "%s", message);
    }
    json_decref(id);
}

static void on_candidate(uint64_t pid, const char *candidate, void *user_data)
{
    room *r = user_data;
    bool publish;
    encore_member *m = member_of_peer(r->rooms, pid, &publish);
    if (!m || m->room != r)
        return;
    encore_ws_send(m->conn, json_pack("{s:s, s:s, s:s, s:i}", "type", "ice.candidate", "pc",
                                      pc_name(publish), "candidate", candidate, "sdpMid", "0",
                                      "sdpMLineIndex", 0));
}

static void on_connected(uint64_t pid, void *user_data)
{
    room *r = user_data;
    bool publish;
    encore_member *m = member_of_peer(r->rooms, pid, &publish);
    if (!m || m->room != r)
        return;
    g_message("room %s: %s (%s) %s connected", r->name, m->id, m->name, pc_name(publish));
    if (publish) {
        m->pub_connected = true;
        return;
    }
    if (!m->sub_connected) {
        m->sub_connected = true;
        r->listeners++;
        r->rooms->listeners++;
        push_state(r);
    }
}

static void peer_gone(room *r, encore_member *m, bool publish)
{
    if (publish) {
        m->has_pub = false;
        m->pub_connected = false;
    } else {
        m->has_sub = false;
        if (m->sub_connected) {
            m->sub_connected = false;
            r->listeners--;
            r->rooms->listeners--;
            push_state(r);
        }
    }
}

static void on_closed(uint64_t pid, const char *reason, void *user_data)
{
    room *r = user_data;
    bool publish;
    encore_member *m = member_of_peer(r->rooms, pid, &publish);
    if (!m || m->room != r)
        return;
    g_message("room %s: %s %s peer closed: %s", r->name, m->id, pc_name(publish), reason);
    peer_gone(r, m, publish);
    encore_ws_send(m->conn, json_pack("{s:s, s:s, s:s}", "type", "peer.closed", "pc",
                                      pc_name(publish), "reason", reason));
}

static const encore_media_room_callbacks media_callbacks = {
    .answer = on_answer,
    .candidate = on_candidate,
    .connected = on_connected,
    .closed = on_closed,
};

/* ---- rooms --------------------------------------------------------------------------------- */

static room *room_get(encore_rooms *rs, const char *name)
{
    room *r = g_hash_table_lookup(rs->by_name, name);
    if (r)
        return r;
    r = g_new0(room, 1);
    r->rooms = rs;
    r->name = g_strdup(name);
    g_queue_init(&r->members);
    g_queue_init(&r->queue);
    r->media = encore_media_room_new(rs->media, name, &media_callbacks, r);
    g_hash_table_insert(rs->by_name, r->name, r);
    g_message("room %s: created (stage ssrc %u)", name, encore_media_room_ssrc(r->media));
    return r;
}

static void room_free(gpointer data)
{
    room *r = data;
    if (r->state_timer)
        g_source_remove(r->state_timer);
    encore_media_room_free(r->media);
    g_queue_clear(&r->queue);
    g_queue_clear(&r->members);
    g_free(r->name);
    g_free(r);
}

/* Closes a member's peer; `reason` (or NULL for none) is sent to the member in `peer.closed`. */
static void close_peer(room *r, encore_member *m, bool publish, const char *reason)
{
    if (!(publish ? m->has_pub : m->has_sub))
        return;
    if (reason)
        encore_ws_send(m->conn, json_pack("{s:s, s:s, s:s}", "type", "peer.closed", "pc",
                                          pc_name(publish), "reason", reason));
    encore_media_room_close_peer(r->media, peer_id(m, publish));
    json_t **pending = &m->pending[publish ? 0 : 1];
    if (*pending) {
        encore_ws_error(m->conn, *pending, "internal", NULL, "the peer was closed");
        json_decref(*pending);
        *pending = NULL;
    }
    peer_gone(r, m, publish);
}

/* Records a stage change: a new show id, and the hook. */
static void stage_changed(room *r)
{
    if (r->stage) {
        /* Unique across restarts too: the start time, and a counter for two in one millisecond. */
        r->shows++;
        snprintf(r->show, sizeof r->show, "%s-%" G_GINT64_FORMAT "-%u", r->name,
                 g_get_real_time() / 1000, r->shows);
    } else {
        r->show[0] = '\0';
    }
    encore_rooms *rs = r->rooms;
    if (rs->hooks.stage_changed)
        rs->hooks.stage_changed(rs, r->name, r->stage ? r->show : NULL, r->stage, rs->hooks_data);
}

/* Puts the next singer of the queue on stage (or nobody). */
static void advance(room *r)
{
    encore_member *next = g_queue_pop_head(&r->queue);
    if (next)
        next->queued = false;
    encore_member *prev = r->stage;
    r->stage = next;
    if (prev && prev != next)
        close_peer(r, prev, true, "left_stage"); /* the singer who stepped down stops */
    encore_media_room_set_stage(r->media, next ? peer_id(next, true) : 0);
    g_message("room %s: stage %s -> %s", r->name, prev ? prev->id : "-", next ? next->id : "-");
    if (prev != next)
        stage_changed(r);
}

static int queue_position(const room *r, const encore_member *m)
{
    if (r->stage == m)
        return 0;
    int pos = g_queue_index((GQueue *)&r->queue, (gpointer)m);
    return pos < 0 ? -1 : pos + 1;
}

/* Takes a member out of its room: stage, queue, peers, ownership; frees an empty room. */
static void leave_room(encore_rooms *rs, encore_member *m)
{
    room *r = m->room;
    if (!r)
        return;
    close_peer(r, m, true, NULL);
    close_peer(r, m, false, NULL);
    if (m->queued) {
        g_queue_remove(&r->queue, m);
        m->queued = false;
    }
    if (r->stage == m)
        advance(r);
    g_queue_delete_link(&r->members, m->link);
    m->link = NULL;
    m->room = NULL;
    if (r->owner == m)
        r->owner = r->members.head ? r->members.head->data : NULL;
    g_message("room %s: %s (%s) left", r->name, m->id, m->name);
    if (r->members.length == 0)
        g_hash_table_remove(rs->by_name, r->name);
    else
        push_state(r);
}

/* ---- public API ---------------------------------------------------------------------------- */

encore_rooms *encore_rooms_new(encore_media *media)
{
    encore_rooms *rs = g_new0(encore_rooms, 1);
    rs->media = media;
    rs->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, room_free);
    rs->by_conn = g_hash_table_new(g_int64_hash, g_int64_equal);
    rs->channels = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return rs;
}

void encore_rooms_free(encore_rooms *rs)
{
    if (!rs)
        return;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, rs->by_conn);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        encore_member *m = value;
        json_decref(m->pending[0]);
        json_decref(m->pending[1]);
        g_free(m->name);
        g_free(m);
    }
    g_hash_table_destroy(rs->by_conn);
    g_hash_table_destroy(rs->by_name);
    g_hash_table_destroy(rs->channels);
    g_free(rs);
}

encore_member *encore_rooms_connect(encore_rooms *rs, encore_ws_conn *conn)
{
    encore_member *m = g_new0(encore_member, 1);
    m->rooms = rs;
    m->conn = conn;
    m->conn_id = encore_ws_conn_id(conn);
    snprintf(m->id, sizeof m->id, "c%" G_GUINT64_FORMAT, m->conn_id);
    g_hash_table_insert(rs->by_conn, &m->conn_id, m);
    rs->members++;
    return m;
}

void encore_rooms_disconnect(encore_rooms *rs, encore_member *m)
{
    if (!m)
        return;
    leave_room(rs, m);
    g_hash_table_remove(rs->by_conn, &m->conn_id);
    rs->members--;
    json_decref(m->pending[0]);
    json_decref(m->pending[1]);
    g_free(m->name);
    g_free(m);
}

void encore_rooms_join(encore_rooms *rs, encore_member *m, json_t *id, const char *name,
                       const char *display)
{
    if (m->room) {
        encore_ws_error(m->conn, id, "already_in_room", NULL, "this connection is in room '%s'",
                        m->room->name);
        return;
    }
    room *r = room_get(rs, name);
    if (!m->user_id || !m->name) { /* unauthenticated servers (tests of this layer) */
        g_free(m->name);
        m->name = g_strdup(display ? display : m->id);
    }
    m->room = r;
    g_queue_push_tail(&r->members, m);
    m->link = r->members.tail;
    const int64_t *channel_owner = g_hash_table_lookup(rs->channels, r->name);
    if (!r->owner || (channel_owner && m->user_id && *channel_owner == m->user_id))
        r->owner = m;
    g_message("room %s: %s (%s) joined", r->name, m->id, m->name);
    encore_ws_reply(m->conn, id,
                    json_pack("{s:s, s:s, s:s}", "you", m->id, "room", r->name, "name", m->name));
    push_state(r);
    if (rs->hooks.joined)
        rs->hooks.joined(m, rs->hooks_data);
}

static room *need_room(encore_member *m, json_t *id)
{
    if (!m->room)
        encore_ws_error(m->conn, id, "not_in_room", NULL, "join a room first (room.join)");
    return m->room;
}

void encore_rooms_leave(encore_rooms *rs, encore_member *m, json_t *id)
{
    if (!need_room(m, id))
        return;
    leave_room(rs, m);
    encore_ws_reply(m->conn, id, NULL);
}

void encore_rooms_queue_join(encore_rooms *rs, encore_member *m, json_t *id)
{
    room *r = need_room(m, id);
    if (!r)
        return;
    int pos = queue_position(r, m);
    if (pos < 0) {
        if (!r->stage) {
            r->stage = m;
            encore_media_room_set_stage(r->media, peer_id(m, true));
            g_message("room %s: stage - -> %s", r->name, m->id);
            stage_changed(r);
            pos = 0;
        } else {
            g_queue_push_tail(&r->queue, m);
            m->queued = true;
            pos = (int)r->queue.length;
        }
        push_state(r);
    }
    encore_ws_reply(m->conn, id, json_pack("{s:i}", "position", pos));
}

void encore_rooms_queue_leave(encore_rooms *rs, encore_member *m, json_t *id)
{
    room *r = need_room(m, id);
    if (!r)
        return;
    if (m->queued) {
        g_queue_remove(&r->queue, m);
        m->queued = false;
        close_peer(r, m, true, "left_queue");
        push_state(r);
    } else if (r->stage == m) {
        advance(r);
        push_state(r);
    }
    encore_ws_reply(m->conn, id, NULL);
}

void encore_rooms_queue_advance(encore_rooms *rs, encore_member *m, json_t *id)
{
    room *r = need_room(m, id);
    if (!r)
        return;
    if (m != r->owner && m != r->stage) {
        encore_ws_error(m->conn, id, "forbidden", NULL,
                        "only the room owner or the singer on stage may advance the queue");
        return;
    }
    advance(r);
    push_state(r);
    encore_ws_reply(m->conn, id, json_pack("{s:s?}", "stage", r->stage ? r->stage->id : NULL));
}

void encore_rooms_offer(encore_rooms *rs, encore_member *m, json_t *id, bool publish,
                        const char *sdp)
{
    room *r = need_room(m, id);
    if (!r)
        return;
    if (publish && queue_position(r, m) < 0) {
        encore_ws_error(m->conn, id, "not_in_queue", NULL,
                        "join the mic queue (queue.join) before publishing");
        return;
    }
    json_t **pending = &m->pending[publish ? 0 : 1];
    if (*pending) {
        encore_ws_error(m->conn, *pending, "internal", NULL, "superseded by a newer offer");
        json_decref(*pending);
    }
    *pending = id ? json_incref(id) : json_null();
    if (publish)
        m->has_pub = true;
    else
        m->has_sub = true;
    encore_media_room_offer(r->media, peer_id(m, publish),
                            publish ? ENCORE_MEDIA_PUBLISH : ENCORE_MEDIA_SUBSCRIBE, sdp);
}

void encore_rooms_candidate(encore_rooms *rs, encore_member *m, json_t *id, bool publish,
                            const char *candidate)
{
    room *r = need_room(m, id);
    if (!r)
        return;
    if (publish ? m->has_pub : m->has_sub)
        encore_media_room_candidate(r->media, peer_id(m, publish), candidate);
    if (id)
        encore_ws_reply(m->conn, id, NULL);
}

void encore_member_set_user(encore_member *m, int64_t user_id, const char *name, int role,
                            int birth_year)
{
    m->user_id = user_id;
    g_free(m->name);
    m->name = g_strdup(name);
    m->role = role;
    m->birth_year = birth_year;
}

int64_t encore_member_user_id(const encore_member *m)
{
    return m->user_id;
}

const char *encore_member_name(const encore_member *m)
{
    return m->name;
}

int encore_member_role(const encore_member *m)
{
    return m->role;
}

int encore_member_birth_year(const encore_member *m)
{
    return m->birth_year;
}

encore_ws_conn *encore_member_conn(const encore_member *m)
{
    return m->conn;
}

const char *encore_member_room(const encore_member *m)
{
    return m->room ? m->room->name : NULL;
}

encore_member *encore_rooms_stage_of(const encore_member *m)
{
    return m->room ? m->room->stage : NULL;
}

const char *encore_rooms_show_of(const encore_member *m)
{
    return m->room && m->room->stage ? m->room->show : NULL;
}

void encore_rooms_broadcast(encore_rooms *rs, const encore_member *m, const char *text, size_t len)
{
    if (!m->room)
        return;
    for (GList *l = m->room->members.head; l; l = l->next)
        encore_ws_send_text(((encore_member *)l->data)->conn, text, len);
}

void encore_rooms_broadcast_room(encore_rooms *rs, const char *name, const char *text, size_t len)
{
    room *r = g_hash_table_lookup(rs->by_name, name);
    for (GList *l = r ? r->members.head : NULL; l; l = l->next)
        encore_ws_send_text(((encore_member *)l->data)->conn, text, len);
}

void encore_rooms_set_channel_owner(encore_rooms *rs, const char *name, int64_t owner)
{
    if (owner <= 0) {
        g_hash_table_remove(rs->channels, name);
        return;
    }
    int64_t *v = g_new(int64_t, 1);
    *v = owner;
    g_hash_table_replace(rs->channels, g_strdup(name), v);
    room *r = g_hash_table_lookup(rs->by_name, name);
    for (GList *l = r ? r->members.head : NULL; l; l = l->next) {
        encore_member *m = l->data;
        if (m->user_id == owner && r->owner != m) {
            r->owner = m;
            push_state(r);
            break;
        }
    }
}

void encore_rooms_set_hooks(encore_rooms *rs, const encore_rooms_hooks *hooks, void *user_data)
{
    rs->hooks = *hooks;
    rs->hooks_data = user_data;
}

unsigned encore_rooms_count(const encore_rooms *rs)
{
    return g_hash_table_size(rs->by_name);
}

unsigned encore_rooms_members(const encore_rooms *rs)
{
    return rs->members;
}

unsigned encore_rooms_listeners(const encore_rooms *rs)
{
    return rs->listeners;
}
