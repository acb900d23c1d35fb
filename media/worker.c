/* Media worker pool: one thread and one GMainContext per worker. Owns the threads and their loops;
 * the peers and rooms placed on a worker are owned by their modules but run only on its thread. */
#include "media/worker.h"

#include <stdio.h>
#include <string.h>

struct encore_worker {
    int index;
    GThread *thread;
    GMainContext *ctx;
    GMainLoop *loop;
    encore_worker_stats stats;
};

struct encore_workers {
    int n;
    bool stopped;
    encore_worker *w;
};

static gpointer worker_main(gpointer data)
{
    encore_worker *w = data;
    g_main_context_push_thread_default(w->ctx);
    g_main_loop_run(w->loop);
    /* Run what was queued before the quit so destroy notifies fire on this thread. */
    while (g_main_context_iteration(w->ctx, FALSE))
        ;
    g_main_context_pop_thread_default(w->ctx);
    return NULL;
}

encore_workers *encore_workers_new(int n)
{
    if (n <= 0)
        n = (int)g_get_num_processors();
    encore_workers *ws = g_new0(encore_workers, 1);
    ws->n = n;
    ws->w = g_new0(encore_worker, n);
    for (int i = 0; i < n; i++) {
        encore_worker *w = &ws->w[i];
        w->index = i;
        w->ctx = g_main_context_new();
        w->loop = g_main_loop_new(w->ctx, FALSE);
        char name[32];
        snprintf(name, sizeof name, "media-%d", i);
        w->thread = g_thread_new(name, worker_main, w);
    }
    return ws;
}

static gboolean quit_loop(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

void encore_workers_stop(encore_workers *ws)
{
    if (ws->stopped)
        return;
    ws->stopped = true;
    for (int i = 0; i < ws->n; i++)
        g_main_context_invoke(ws->w[i].ctx, quit_loop, ws->w[i].loop);
    for (int i = 0; i < ws->n; i++) {
        g_thread_join(ws->w[i].thread);
        ws->w[i].thread = NULL;
    }
}

void encore_workers_free(encore_workers *ws)
{
    if (!ws)
        return;
    encore_workers_stop(ws);
    for (int i = 0; i < ws->n; i++) {
        g_main_loop_unref(ws->w[i].loop);
        g_main_context_unref(ws->w[i].ctx);
    }
    g_free(ws->w);
    g_free(ws);
}

int encore_workers_count(const encore_workers *ws)
{
    return ws->n;
}

encore_worker *encore_workers_get(encore_workers *ws, int index)
{
    g_return_val_if_fail(index >= 0 && index < ws->n, NULL);
    return &ws->w[index];
}

encore_worker *encore_workers_pick(encore_workers *ws, const char *key)
{
    return &ws->w[g_str_hash(key) % (guint)ws->n];
}

void encore_workers_stats(encore_workers *ws, encore_worker_stats *out)
{
    memset(out, 0, sizeof *out);
    uint64_t *dst = (uint64_t *)out;
    size_t nfields = sizeof *out / sizeof(uint64_t);
    for (int i = 0; i < ws->n; i++) {
        const uint64_t *src = (const uint64_t *)&ws->w[i].stats;
        for (size_t f = 0; f < nfields; f++)
            dst[f] += __atomic_load_n(&src[f], __ATOMIC_RELAXED);
    }
}

GMainContext *encore_worker_context(encore_worker *w)
{
    return w->ctx;
}

int encore_worker_index(const encore_worker *w)
{
    return w->index;
}

encore_worker_stats *encore_worker_stats_of(encore_worker *w)
{
    return &w->stats;
}

bool encore_worker_is_current(encore_worker *w)
{
    return g_main_context_is_owner(w->ctx);
}

void encore_worker_invoke(encore_worker *w, GSourceFunc fn, gpointer data, GDestroyNotify destroy)
{
    g_main_context_invoke_full(w->ctx, G_PRIORITY_DEFAULT, fn, data, destroy);
}
