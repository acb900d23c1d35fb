/* Janus signaling adapter of the load generator: the Janus 1.x websocket API (subprotocol
 * "janus-protocol") with the VideoRoom plugin. All peers of one thread share one websocket and one
 * session (a keepalive every 25 s); each peer attaches its own handle. The singer joins the room as
 * a publisher and publishes our offer; a listener joins as a subscriber to the singer's feed,
 * answers Janus's offer with `start`. Runs on its thread's context only; it must not call back from
 * inside its public calls. */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/load/signal.h"

#define JANUS_PLUGIN "janus.plugin.videoroom"
#define JANUS_KEEPALIVE_S 25
#define JANUS_ERR_NO_SUCH_ROOM 426
#define JANUS_ERR_ROOM_EXISTS 427

typedef enum {
    SESS_IDLE,       /* no websocket yet */
    SESS_CONNECTING, /* websocket handshake */
    SESS_CREATING,   /* `create` sent */
    SESS_READY,
    SESS_DEAD, /* the websocket closed or `create` failed: every peer fails */
} sess_state;

/* What a transaction was for. */
typedef enum {
    TX_CREATE_SESSION,
    TX_ATTACH,
    TX_JOIN,
    TX_CREATE_ROOM,
    TX_PUBLISH,
    TX_START,
    TX_OTHER, /* keepalive, trickle, detach: answers are ignored */
} tx_kind;

typedef struct {
    tx_kind kind;
    guint peer; /* serial of the peer it belongs to (0: the session) */
} tx_entry;

struct lg_sig_thread {
    lg_sig_config *cfg;
    GMainContext *ctx;
    lg_ws_loop *loop; /* this thread's websockets */
    lg_ws *ws;
    sess_state state;
    char dead_why[96];
    uint64_t session;
    guint next_serial;
    guint next_tx;
    GHashTable *peers;     /* serial (guint) -> lg_sig_peer */
    GHashTable *by_handle; /* &peer->handle (guint64) -> lg_sig_peer */
    GHashTable *tx;        /* transaction string -> tx_entry */
    GSource *keepalive;
    GSource *kick;      /* starts the connection or reports a dead session, from the loop */
    bool shutting_down; /* no `detach` per handle: `destroy` of the session covers them */
};

struct lg_sig_peer {
    lg_sig_thread *t;
    guint serial;
    bool singer;
    unsigned index;
    lg_sig_callbacks cb;
    void *user_data;
    uint64_t handle; /* 0 until attached */
    bool attaching;  /* `attach` sent */
    bool done;       /* failed was reported */
    bool room_create_tried;
};

/* ---- sending ----------------------------------------------------------------------------------
 */

/* Sends msg (stolen) with a fresh transaction recorded as kind for peer serial. */
static void send_tx(lg_sig_thread *t, json_t *msg, tx_kind kind, guint serial)
{
    char txid[24];
    snprintf(txid, sizeof txid, "t%u", ++t->next_tx);
    json_object_set_new(msg, "transaction", json_string(txid));
    if (t->session)
        json_object_set_new(msg, "session_id", json_integer((json_int_t)t->session));
    if (kind != TX_OTHER) {
        tx_entry *e = g_new(tx_entry, 1);
        e->kind = kind;
        e->peer = serial;
        g_hash_table_insert(t->tx, g_strdup(txid), e);
    }
    char *text = json_dumps(msg, JSON_COMPACT);
    if (text && t->ws)
        (void)lg_ws_send_text(t->ws, text, strlen(text));
    free(text);
    json_decref(msg);
}

/* Sends a plugin message (body stolen, jsep stolen or NULL) on the peer's handle. */
static void send_message(lg_sig_peer *p, json_t *body, json_t *jsep, tx_kind kind)
{
    json_t *msg = json_pack("{s:s, s:I, s:o}", "janus", "message", "handle_id",
                            (json_int_t)p->handle, "body", body);
    if (jsep)
        json_object_set_new(msg, "jsep", jsep);
    send_tx(p->t, msg, kind, p->serial);
}

/* ---- failure ----------------------------------------------------------------------------------
 */

static void peer_failed(lg_sig_peer *p, const char *why)
{
    if (p->done)
        return;
    p->done = true;
    if (p->cb.failed)
        p->cb.failed(why, p->user_data); /* may free p */
}

/* Fails every peer of the thread (the session is gone). Peers may be freed by the callbacks, so
 * the walk goes over a snapshot of serials. */
static void session_dead(lg_sig_thread *t, const char *why)
{
    t->state = SESS_DEAD;
    g_strlcpy(t->dead_why, why, sizeof t->dead_why);
    GList *serials = g_hash_table_get_keys(t->peers);
    for (GList *l = serials; l; l = l->next) {
        lg_sig_peer *p = g_hash_table_lookup(t->peers, l->data);
        if (p)
            peer_failed(p, why);
    }
    g_list_free(serials);
}

/* ---- peer steps -------------------------------------------------------------------------------
 */

static void attach(lg_sig_peer *p)
{
    if (p->attaching || p->done)
        return;
    p->attaching = true;
    send_tx(p->t, json_pack("{s:s, s:s}", "janus", "attach", "plugin", JANUS_PLUGIN), TX_ATTACH,
            p->serial);
}

static void join(lg_sig_peer *p)
{
    lg_sig_thread *t = p->t;
    if (p->singer) {
        send_message(p,
                     json_pack("{s:s, s:I, s:s, s:s}", "request", "join", "room",
                               (json_int_t)t->cfg->janus_room, "ptype", "publisher", "display",
                               "singer"),
                     NULL, TX_JOIN);
        return;
    }
    uint64_t feed = atomic_load(&t->cfg->janus_feed);
    if (!feed) {
        peer_failed(p, "no publisher to subscribe to");
        return;
    }
    send_message(p,
                 json_pack("{s:s, s:I, s:s, s:[{s:I}]}", "request", "join", "room",
                           (json_int_t)t->cfg->janus_room, "ptype", "subscriber", "streams", "feed",
                           (json_int_t)feed),
                 NULL, TX_JOIN);
    if (p->cb.media_requested)
        p->cb.media_requested(p->user_data);
}

static void create_room(lg_sig_peer *p)
{
    p->room_create_tried = true;
    send_message(p,
                 json_pack("{s:s, s:I, s:i, s:s, s:s, s:b, s:b, s:s}", "request", "create", "room",
                           (json_int_t)p->t->cfg->janus_room, "publishers", 16, "audiocodec",
                           "opus", "videocodec", "vp8", "permanent", 0, "notify_joining", 0,
                           "description", "encore-loadgen"),
                 NULL, TX_CREATE_ROOM);
}

/* A plugin event that answers one of our requests (or arrives on its own). */
static void on_plugin_event(lg_sig_peer *p, tx_kind kind, json_t *msg)
{
    json_t *data = json_object_get(json_object_get(msg, "plugindata"), "data");
    json_t *jsep = json_object_get(msg, "jsep");
    const char *vr = json_string_value(json_object_get(data, "videoroom"));
    json_int_t err = json_integer_value(json_object_get(data, "error_code"));
    if (err) {
        if (kind == TX_JOIN && p->singer && err == JANUS_ERR_NO_SUCH_ROOM &&
            !p->room_create_tried) {
            create_room(p);
            return;
        }
        if (kind == TX_CREATE_ROOM && err == JANUS_ERR_ROOM_EXISTS) {
            join(p);
            return;
        }
        char why[200];
        snprintf(why, sizeof why, "videoroom error %d: %s", (int)err,
                 json_string_value(json_object_get(data, "error")) ?: "?");
        peer_failed(p, why);
        return;
    }
    if (kind == TX_CREATE_ROOM) {
        join(p);
        return;
    }
    if (vr && strcmp(vr, "joined") == 0 && p->singer) {
        json_int_t id = json_integer_value(json_object_get(data, "id"));
        atomic_store(&p->t->cfg->janus_feed, (uint64_t)id);
        if (p->cb.want_offer)
            p->cb.want_offer(p->user_data);
        return;
    }
    const char *sdp = json_string_value(json_object_get(jsep, "sdp"));
    const char *type = json_string_value(json_object_get(jsep, "type"));
    if (sdp && type && p->cb.remote_sdp) {
        p->cb.remote_sdp(sdp, strcmp(type, "offer") == 0, p->user_data);
        return;
    }
    if (kind == TX_PUBLISH || (kind == TX_JOIN && !p->singer))
        peer_failed(p, "videoroom answered without jsep");
}

/* ---- incoming ---------------------------------------------------------------------------------
 */

static void on_tx_answer(lg_sig_thread *t, const char *janus, json_t *msg, tx_entry *e)
{
    if (e->kind == TX_CREATE_SESSION) {
        if (strcmp(janus, "success") != 0) {
            session_dead(t, "janus: create refused");
            return;
        }
        t->session =
            (uint64_t)json_integer_value(json_object_get(json_object_get(msg, "data"), "id"));
        t->state = SESS_READY;
        GList *serials = g_hash_table_get_keys(t->peers);
        for (GList *l = serials; l; l = l->next) {
            lg_sig_peer *p = g_hash_table_lookup(t->peers, l->data);
            if (p)
                attach(p);
        }
        g_list_free(serials);
        return;
    }
    lg_sig_peer *p = g_hash_table_lookup(t->peers, GUINT_TO_POINTER(e->peer));
    if (!p || p->done)
        return;
    if (strcmp(janus, "error") == 0) {
        json_t *err = json_object_get(msg, "error");
        char why[200];
        snprintf(why, sizeof why, "janus error %d: %s",
                 (int)json_integer_value(json_object_get(err, "code")),
                 json_string_value(json_object_get(err, "reason")) ?: "?");
        peer_failed(p, why);
        return;
    }
    if (e->kind == TX_ATTACH) {
        p->handle =
            (uint64_t)json_integer_value(json_object_get(json_object_get(msg, "data"), "id"));
        if (!p->handle) {
            peer_failed(p, "attach without handle id");
            return;
        }
        g_hash_table_insert(t->by_handle, &p->handle, p);
        join(p);
        return;
    }
    if (strcmp(janus, "event") == 0)
        on_plugin_event(p, e->kind, msg);
}

static void on_handle_event(lg_sig_thread *t, const char *janus, json_t *msg)
{
    guint64 handle = (guint64)json_integer_value(json_object_get(msg, "sender"));
    lg_sig_peer *p = g_hash_table_lookup(t->by_handle, &handle);
    if (!p || p->done)
        return;
    if (strcmp(janus, "trickle") == 0) {
        json_t *c = json_object_get(msg, "candidate");
        const char *cand = json_string_value(json_object_get(c, "candidate"));
        bool completed = json_is_true(json_object_get(c, "completed"));
        if (p->cb.remote_candidate && (cand || completed))
            p->cb.remote_candidate(cand && !completed ? cand : "", p->user_data);
    } else if (strcmp(janus, "hangup") == 0 || strcmp(janus, "detached") == 0) {
        char why[120];
        snprintf(why, sizeof why, "janus %s: %s", janus,
                 json_string_value(json_object_get(msg, "reason")) ?: "-");
        peer_failed(p, why);
    } else if (strcmp(janus, "event") == 0) {
        on_plugin_event(p, TX_OTHER, msg);
    }
}

static void on_message(lg_ws *ws, const char *text, size_t len, void *user_data)
{
    lg_sig_thread *t = user_data;
    json_t *msg = json_loadb(text, len, 0, NULL);
    const char *janus = json_string_value(json_object_get(msg, "janus"));
    const char *txid = json_string_value(json_object_get(msg, "transaction"));
    if (!janus || strcmp(janus, "ack") == 0)
        goto out;
    tx_entry *e = txid ? g_hash_table_lookup(t->tx, txid) : NULL;
    if (e) {
        tx_entry copy = *e;
        g_hash_table_remove(t->tx, txid);
        on_tx_answer(t, janus, msg, &copy);
    } else if (json_object_get(msg, "sender")) {
        on_handle_event(t, janus, msg);
    }
out:
    json_decref(msg);
}

static void on_open(lg_ws *ws, void *user_data)
{
    lg_sig_thread *t = user_data;
    t->state = SESS_CREATING;
    send_tx(t, json_pack("{s:s}", "janus", "create"), TX_CREATE_SESSION, 0);
}

static void on_closed(lg_ws *ws, const char *why, void *user_data)
{
    lg_sig_thread *t = user_data;
    char buf[96];
    snprintf(buf, sizeof buf, "janus websocket: %s", why);
    session_dead(t, buf);
}

static const lg_ws_callbacks ws_cb = {
    .on_open = on_open,
    .on_message = on_message,
    .on_closed = on_closed,
};

static gboolean keepalive_cb(gpointer data)
{
    lg_sig_thread *t = data;
    if (t->state == SESS_READY)
        send_tx(t, json_pack("{s:s}", "janus", "keepalive"), TX_OTHER, 0);
    return G_SOURCE_CONTINUE;
}

/* Runs from the loop: connects the session websocket when needed, fails peers of a dead session,
 * attaches peers of a ready one. */
static gboolean kick_cb(gpointer data)
{
    lg_sig_thread *t = data;
    g_source_unref(t->kick);
    t->kick = NULL;
    if (t->state == SESS_IDLE) {
        t->state = SESS_CONNECTING;
        t->ws =
            !t->loop ? NULL : lg_ws_new(t->loop, &t->cfg->url, "janus-protocol", NULL, &ws_cb, t);
        if (!t->ws)
            session_dead(t, "janus websocket: cannot connect");
    } else if (t->state == SESS_DEAD) {
        session_dead(t, t->dead_why);
    } else if (t->state == SESS_READY) {
        GList *serials = g_hash_table_get_keys(t->peers);
        for (GList *l = serials; l; l = l->next) {
            lg_sig_peer *p = g_hash_table_lookup(t->peers, l->data);
            if (p)
                attach(p);
        }
        g_list_free(serials);
    }
    return G_SOURCE_REMOVE;
}

static void schedule_kick(lg_sig_thread *t)
{
    if (t->kick)
        return;
    t->kick = g_idle_source_new();
    g_source_set_callback(t->kick, kick_cb, t, NULL);
    g_source_attach(t->kick, t->ctx);
}

/* ---- public -----------------------------------------------------------------------------------
 */

static lg_sig_thread *jan_thread_new(lg_sig_config *cfg, GMainContext *ctx)
{
    lg_sig_thread *t = g_new0(lg_sig_thread, 1);
    t->cfg = cfg;
    t->ctx = ctx;
    t->peers = g_hash_table_new(g_direct_hash, g_direct_equal);
    t->by_handle = g_hash_table_new(g_int64_hash, g_int64_equal);
    t->tx = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    t->loop = lg_ws_loop_new(ctx);
    t->keepalive = g_timeout_source_new_seconds(JANUS_KEEPALIVE_S);
    g_source_set_callback(t->keepalive, keepalive_cb, t, NULL);
    g_source_attach(t->keepalive, ctx);
    return t;
}

static void jan_thread_shutdown(lg_sig_thread *t)
{
    t->shutting_down = true;
}

static void jan_thread_free(lg_sig_thread *t)
{
    if (!t)
        return;
    /* Closing the websocket makes Janus destroy the session and its handles (an explicit
     * `destroy` would race that in Janus's request thread pool and log an error). */
    lg_ws_free(t->ws);
    lg_ws_loop_free(t->loop);
    if (t->kick) {
        g_source_destroy(t->kick);
        g_source_unref(t->kick);
    }
    g_source_destroy(t->keepalive);
    g_source_unref(t->keepalive);
    g_hash_table_destroy(t->peers);
    g_hash_table_destroy(t->by_handle);
    g_hash_table_destroy(t->tx);
    g_free(t);
}

static lg_sig_peer *jan_peer_new(lg_sig_thread *t, bool singer, unsigned index,
                                 const lg_sig_callbacks *cb, void *user_data)
{
    lg_sig_peer *p = g_new0(lg_sig_peer, 1);
    p->t = t;
    p->serial = ++t->next_serial;
    p->singer = singer;
    p->index = index;
    p->cb = *cb;
    p->user_data = user_data;
    g_hash_table_insert(t->peers, GUINT_TO_POINTER(p->serial), p);
    if (t->state != SESS_CONNECTING && t->state != SESS_CREATING)
        schedule_kick(t);
    return p;
}

static void jan_send_sdp(lg_sig_peer *p, const char *sdp)
{
    if (p->done || !p->handle)
        return;
    bool offer = p->singer;
    json_t *jsep = json_pack("{s:s, s:s}", "type", offer ? "offer" : "answer", "sdp", sdp);
    if (offer)
        send_message(p, json_pack("{s:s, s:b, s:b}", "request", "publish", "audio", 1, "video", 0),
                     jsep, TX_PUBLISH);
    else
        send_message(p, json_pack("{s:s}", "request", "start"), jsep, TX_START);
}

static void jan_send_candidate(lg_sig_peer *p, const char *candidate, const char *mid)
{
    if (p->done || !p->handle)
        return;
    json_t *c = candidate[0] ? json_pack("{s:s, s:s, s:i}", "candidate", candidate, "sdpMid",
                                         mid ? mid : "0", "sdpMLineIndex", 0)
                             : json_pack("{s:b}", "completed", 1);
    send_tx(p->t,
            json_pack("{s:s, s:I, s:o}", "janus", "trickle", "handle_id", (json_int_t)p->handle,
                      "candidate", c),
            TX_OTHER, 0);
}

static void jan_peer_free(lg_sig_peer *p)
{
    if (!p)
        return;
    lg_sig_thread *t = p->t;
    if (p->handle) {
        if (!t->shutting_down && t->state == SESS_READY && t->ws && lg_ws_is_open(t->ws))
            send_tx(t,
                    json_pack("{s:s, s:I}", "janus", "detach", "handle_id", (json_int_t)p->handle),
                    TX_OTHER, 0);
        g_hash_table_remove(t->by_handle, &p->handle);
    }
    g_hash_table_remove(t->peers, GUINT_TO_POINTER(p->serial));
    g_free(p);
}

const lg_sig_ops lg_sig_janus = {
    .name = "janus",
    .thread_new = jan_thread_new,
    .thread_shutdown = jan_thread_shutdown,
    .thread_free = jan_thread_free,
    .peer_new = jan_peer_new,
    .send_sdp = jan_send_sdp,
    .send_candidate = jan_send_candidate,
    .peer_free = jan_peer_free,
};
