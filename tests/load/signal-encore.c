/* Encore signaling adapter of the load generator (docs/protocol.md): one websocket per peer,
 * `auth` with the run's token, `room.join`, then `queue.join` for the singer, then `publish` or
 * `subscribe` with our offer and trickled `ice.candidate` both ways. Runs on the thread of its
 * websocket's context; it must not call back from inside its public calls. */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "tests/load/signal.h"

enum {
    ID_JOIN = 1,
    ID_QUEUE = 2,
    ID_MEDIA = 3,
    ID_AUTH = 4,
};

struct lg_sig_thread {
    lg_sig_config *cfg;
    GMainContext *ctx;
    lg_ws_loop *loop; /* this thread's websockets */
};

struct lg_sig_peer {
    lg_sig_thread *t;
    bool singer;
    unsigned index;
    lg_sig_callbacks cb;
    void *user_data;
    lg_ws *ws;
    GSource *start_failure; /* reports a websocket that could not be created */
    bool done;              /* failed was reported: nothing more is called */
    int busy;               /* > 0 inside a websocket callback */
    bool freed;             /* peer_free was called during a callback */
};

static lg_sig_thread *enc_thread_new(lg_sig_config *cfg, GMainContext *ctx)
{
    lg_sig_thread *t = g_new0(lg_sig_thread, 1);
    t->cfg = cfg;
    t->ctx = ctx;
    t->loop = lg_ws_loop_new(ctx);
    return t;
}

static void enc_thread_shutdown(lg_sig_thread *t)
{
}

static void enc_thread_free(lg_sig_thread *t)
{
    if (!t)
        return;
    lg_ws_loop_free(t->loop);
    g_free(t);
}

static const char *pc_name(const lg_sig_peer *p)
{
    return p->singer ? "publish" : "subscribe";
}

static void send_json(lg_sig_peer *p, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    if (text && p->ws)
        (void)lg_ws_send_text(p->ws, text, strlen(text));
    free(text);
    json_decref(msg);
}

/* Reports failure once; the owner may free the peer inside the callback. */
static void peer_failed(lg_sig_peer *p, const char *why)
{
    if (p->done)
        return;
    p->done = true;
    if (p->cb.failed)
        p->cb.failed(why, p->user_data);
}

static void send_media_request(lg_sig_peer *p)
{
    if (p->cb.media_requested)
        p->cb.media_requested(p->user_data);
    if (!p->freed && !p->done && p->cb.want_offer)
        p->cb.want_offer(p->user_data);
}

/* An answer (result or error) to one of our requests. */
static void on_reply(lg_sig_peer *p, json_t *msg, bool ok)
{
    json_int_t id = json_integer_value(json_object_get(msg, "id"));
    if (!ok) {
        char why[160];
        snprintf(why, sizeof why, "request %d refused: %s", (int)id,
                 json_string_value(json_object_get(msg, "code")) ?: "?");
        peer_failed(p, why);
        return;
    }
    json_t *data = json_object_get(msg, "data");
    switch (id) {
    case ID_AUTH: {
        char name[32];
        snprintf(name, sizeof name, "%s-%u", p->singer ? "singer" : "listener", p->index);
        send_json(p, json_pack("{s:s, s:i, s:s, s:s}", "type", "room.join", "id", ID_JOIN, "room",
                               p->t->cfg->room, "name", name));
        return;
    }
    case ID_JOIN:
        if (p->singer) {
            send_json(p, json_pack("{s:s, s:i}", "type", "queue.join", "id", ID_QUEUE));
            return;
        }
        send_media_request(p);
        return;
    case ID_QUEUE:
        send_media_request(p);
        return;
    case ID_MEDIA: {
        const char *sdp = json_string_value(json_object_get(data, "sdp"));
        if (!sdp) {
            peer_failed(p, "answer without sdp");
            return;
        }
        if (p->cb.remote_sdp)
            p->cb.remote_sdp(sdp, false, p->user_data);
        return;
    }
    default:
        return;
    }
}

static void on_message(lg_ws *ws, const char *text, size_t len, void *user_data)
{
    lg_sig_peer *p = user_data;
    if (p->done)
        return;
    /* Every join and leave makes the server push room.state to every member (N^2 messages for N
     * listeners); we never need it, so it is recognised from its first bytes and not parsed. */
    if (memmem(text, MIN(len, (size_t)48), "\"room.state\"", 12))
        return;
    json_t *msg = json_loadb(text, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (!type)
        goto out;
    p->busy++;
    if (strcmp(type, "result") == 0 || strcmp(type, "error") == 0) {
        on_reply(p, msg, type[0] == 'r');
    } else if (strcmp(type, "ice.candidate") == 0) {
        const char *pc = json_string_value(json_object_get(msg, "pc"));
        const char *cand = json_string_value(json_object_get(msg, "candidate"));
        if (pc && strcmp(pc, pc_name(p)) == 0 && p->cb.remote_candidate)
            p->cb.remote_candidate(cand ? cand : "", p->user_data);
    } else if (strcmp(type, "peer.closed") == 0) {
        const char *pc = json_string_value(json_object_get(msg, "pc"));
        if (pc && strcmp(pc, pc_name(p)) == 0) {
            char why[96];
            snprintf(why, sizeof why, "peer.closed: %s",
                     json_string_value(json_object_get(msg, "reason")) ?: "?");
            peer_failed(p, why);
        }
    }
    p->busy--;
    if (p->freed && p->busy == 0)
        g_free(p);
out:
    json_decref(msg);
}

static void on_open(lg_ws *ws, void *user_data)
{
    lg_sig_peer *p = user_data;
    const lg_sig_config *cfg = p->t->cfg;
    send_json(p, json_pack("{s:s, s:i, s:s}", "type", "auth", "id", ID_AUTH, "token",
                           p->singer ? cfg->singer_token : cfg->listener_token));
}

static void on_closed(lg_ws *ws, const char *why, void *user_data)
{
    lg_sig_peer *p = user_data;
    char buf[96];
    snprintf(buf, sizeof buf, "websocket: %s", why);
    p->busy++;
    peer_failed(p, buf);
    p->busy--;
    if (p->freed && p->busy == 0)
        g_free(p);
}

static const lg_ws_callbacks ws_cb = {
    .on_open = on_open,
    .on_message = on_message,
    .on_closed = on_closed,
};

/* Reports a connection that could not even start, from the loop (never from peer_new). */
static gboolean report_start_failure(gpointer data)
{
    lg_sig_peer *p = data;
    g_source_unref(p->start_failure);
    p->start_failure = NULL;
    p->busy++;
    peer_failed(p, "websocket: cannot connect");
    p->busy--;
    if (p->freed)
        g_free(p);
    return G_SOURCE_REMOVE;
}

static lg_sig_peer *enc_peer_new(lg_sig_thread *t, bool singer, unsigned index,
                                 const lg_sig_callbacks *cb, void *user_data)
{
    lg_sig_peer *p = g_new0(lg_sig_peer, 1);
    p->t = t;
    p->singer = singer;
    p->index = index;
    p->cb = *cb;
    p->user_data = user_data;
    char src[32];
    const char *bind_ip = NULL;
    if (t->cfg->ws_per_source && g_str_has_prefix(t->cfg->url.addr, "127.")) {
        unsigned k = atomic_fetch_add(&t->cfg->next_conn, 1) / t->cfg->ws_per_source;
        snprintf(src, sizeof src, "127.1.%u.%u", (k / 250) % 256, k % 250 + 1);
        bind_ip = src;
    }
    p->ws = !t->loop ? NULL : lg_ws_new(t->loop, &t->cfg->url, "encore.v1", bind_ip, &ws_cb, p);
    if (!p->ws) {
        p->start_failure = g_idle_source_new();
        g_source_set_callback(p->start_failure, report_start_failure, p, NULL);
        g_source_attach(p->start_failure, t->ctx);
    }
    return p;
}

static void enc_send_sdp(lg_sig_peer *p, const char *sdp)
{
    send_json(p, json_pack("{s:s, s:i, s:s}", "type", pc_name(p), "id", ID_MEDIA, "sdp", sdp));
}

static void enc_send_candidate(lg_sig_peer *p, const char *candidate, const char *mid)
{
    send_json(p, json_pack("{s:s, s:s, s:s, s:s}", "type", "ice.candidate", "pc", pc_name(p),
                           "candidate", candidate, "sdpMid", mid ? mid : "0"));
}

static void enc_peer_free(lg_sig_peer *p)
{
    if (!p || p->freed)
        return;
    p->freed = true;
    p->done = true;
    lg_ws_free(p->ws);
    p->ws = NULL;
    if (p->start_failure) {
        g_source_destroy(p->start_failure);
        g_source_unref(p->start_failure);
        p->start_failure = NULL;
    }
    if (p->busy == 0)
        g_free(p);
}

const lg_sig_ops lg_sig_encore = {
    .name = "encore",
    .thread_new = enc_thread_new,
    .thread_shutdown = enc_thread_shutdown,
    .thread_free = enc_thread_free,
    .peer_new = enc_peer_new,
    .send_sdp = enc_send_sdp,
    .send_candidate = enc_send_candidate,
    .peer_free = enc_peer_free,
};
