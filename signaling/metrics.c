/* The metrics registry: families of counters and gauges, and collectors, rendered as Prometheus
 * text. Values are C11 atomics updated lock-free from any thread; the family list is guarded by
 * one mutex taken only to create metrics, manage collectors and render. Never logs per update. */
#include "config.h"

#define G_LOG_DOMAIN "encore-metrics"

#include "signaling/metrics.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

typedef enum { KIND_COUNTER, KIND_GAUGE } metric_kind;

struct encore_metric {
    _Atomic int64_t value; /* counters: an unsigned count stored in the same bits */
    metric_kind kind;
    char *label_value; /* NULL for a family without label */
};

typedef struct {
    char *name;
    char *help;
    char *label_name; /* NULL when the family has no label */
    metric_kind kind;
    GPtrArray *series; /* of encore_metric *, creation order */
} family;

typedef struct {
    guint id;
    encore_metrics_collect_fn fn;
    void *user_data;
    GDestroyNotify destroy;
} collector;

struct encore_metrics {
    GMutex lock;
    GPtrArray *families; /* of family *, creation order */
    GHashTable *by_name; /* name -> family * (borrowed keys) */
    GArray *collectors;  /* of collector */
    guint next_collector;
};

static void metric_free(void *p)
{
    encore_metric *c = p;
    g_free(c->label_value);
    g_free(c);
}

static void family_free(void *p)
{
    family *f = p;
    g_ptr_array_unref(f->series);
    g_free(f->name);
    g_free(f->help);
    g_free(f->label_name);
    g_free(f);
}

encore_metrics *encore_metrics_new(void)
{
    encore_metrics *m = g_new0(encore_metrics, 1);
    g_mutex_init(&m->lock);
    m->families = g_ptr_array_new_with_free_func(family_free);
    m->by_name = g_hash_table_new(g_str_hash, g_str_equal);
    m->collectors = g_array_new(FALSE, FALSE, sizeof(collector));
    m->next_collector = 1;
    return m;
}

void encore_metrics_free(encore_metrics *m)
{
    if (!m)
        return;
    for (guint i = 0; i < m->collectors->len; i++) {
        collector *c = &g_array_index(m->collectors, collector, i);
        if (c->destroy)
            c->destroy(c->user_data);
    }
    g_array_unref(m->collectors);
    g_hash_table_unref(m->by_name);
    g_ptr_array_unref(m->families);
    g_mutex_clear(&m->lock);
    g_free(m);
}

encore_metrics *encore_metrics_default(void)
{
    static encore_metrics *def;
    if (g_once_init_enter(&def))
        g_once_init_leave(&def, encore_metrics_new());
    return def;
}

static bool valid_name(const char *s, bool colon_ok)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static encore_metric *get_or_create(encore_metrics *m, metric_kind kind, const char *name,
                                    const char *help, const char *label_name,
                                    const char *label_value)
{
    g_return_val_if_fail(m != NULL, NULL);
    g_return_val_if_fail(valid_name(name, true), NULL);
    g_return_val_if_fail(label_name == NULL || valid_name(label_name, false), NULL);
    g_return_val_if_fail((label_name == NULL) == (label_value == NULL), NULL);

    encore_metric *c = NULL;
    g_mutex_lock(&m->lock);
    family *f = g_hash_table_lookup(m->by_name, name);
    if (!f) {
        f = g_new0(family, 1);
        f->name = g_strdup(name);
        f->help = g_strdup(help ? help : name);
        f->label_name = g_strdup(label_name);
        f->kind = kind;
        f->series = g_ptr_array_new_with_free_func(metric_free);
        g_ptr_array_add(m->families, f);
        g_hash_table_insert(m->by_name, f->name, f);
    } else if (f->kind != kind || g_strcmp0(f->label_name, label_name) != 0) {
        goto out_unlock; /* reported below, outside the lock */
    }
    for (guint i = 0; i < f->series->len; i++) {
        encore_metric *s = g_ptr_array_index(f->series, i);
        if (g_strcmp0(s->label_value, label_value) == 0) {
            c = s;
            goto out_unlock;
        }
    }
    c = g_new0(encore_metric, 1);
    atomic_init(&c->value, 0);
    c->kind = kind;
    c->label_value = g_strdup(label_value);
    g_ptr_array_add(f->series, c);

out_unlock:
    g_mutex_unlock(&m->lock);
    if (!c)
        g_critical("metric %s is already registered with another type or label", name);
    return c;
}

encore_metric *encore_metrics_counter(encore_metrics *m, const char *name, const char *help,
                                      const char *label_name, const char *label_value)
{
    return get_or_create(m, KIND_COUNTER, name, help, label_name, label_value);
}

encore_metric *encore_metrics_gauge(encore_metrics *m, const char *name, const char *help,
                                    const char *label_name, const char *label_value)
{
    return get_or_create(m, KIND_GAUGE, name, help, label_name, label_value);
}

void encore_metrics_add(encore_metric *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->value, (int64_t)n, memory_order_relaxed);
}

void encore_metrics_inc(encore_metric *c)
{
    encore_metrics_add(c, 1);
}

void encore_metrics_sub(encore_metric *g, uint64_t n)
{
    if (!g)
        return;
    g_return_if_fail(g->kind == KIND_GAUGE);
    atomic_fetch_sub_explicit(&g->value, (int64_t)n, memory_order_relaxed);
}

void encore_metrics_set(encore_metric *g, int64_t v)
{
    if (!g)
        return;
    g_return_if_fail(g->kind == KIND_GAUGE);
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

int64_t encore_metrics_get(encore_metric *c)
{
    return c ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

guint encore_metrics_add_collector(encore_metrics *m, encore_metrics_collect_fn fn, void *user_data,
                                   GDestroyNotify destroy)
{
    g_return_val_if_fail(m != NULL && fn != NULL, 0);
    g_mutex_lock(&m->lock);
    collector c = {m->next_collector++, fn, user_data, destroy};
    g_array_append_val(m->collectors, c);
    g_mutex_unlock(&m->lock);
    return c.id;
}

void encore_metrics_remove_collector(encore_metrics *m, guint id)
{
    g_return_if_fail(m != NULL);
    collector gone = {0};
    g_mutex_lock(&m->lock);
    for (guint i = 0; i < m->collectors->len; i++) {
        if (g_array_index(m->collectors, collector, i).id == id) {
            gone = g_array_index(m->collectors, collector, i);
            g_array_remove_index(m->collectors, i);
            break;
        }
    }
    g_mutex_unlock(&m->lock);
    if (gone.destroy)
        gone.destroy(gone.user_data);
}

void encore_metrics_append_label_value(GString *out, const char *value)
{
    for (const char *p = value; *p; p++) {
        switch (*p) {
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        default:
            g_string_append_c(out, *p);
        }
    }
}

static void append_help(GString *out, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            g_string_append(out, "\\\\");
        else if (*p == '\n')
            g_string_append(out, "\\n");
        else
            g_string_append_c(out, *p);
    }
}

void encore_metrics_render(encore_metrics *m, GString *out)
{
    g_return_if_fail(m != NULL && out != NULL);
    g_mutex_lock(&m->lock);
    for (guint i = 0; i < m->families->len; i++) {
        family *f = g_ptr_array_index(m->families, i);
        g_string_append_printf(out, "# HELP %s ", f->name);
        append_help(out, f->help);
        g_string_append_printf(out, "\n# TYPE %s %s\n", f->name,
                               f->kind == KIND_COUNTER ? "counter" : "gauge");
        for (guint j = 0; j < f->series->len; j++) {
            encore_metric *c = g_ptr_array_index(f->series, j);
            int64_t v = atomic_load_explicit(&c->value, memory_order_relaxed);
            g_string_append(out, f->name);
            if (f->label_name) {
                g_string_append_printf(out, "{%s=\"", f->label_name);
                encore_metrics_append_label_value(out, c->label_value);
                g_string_append(out, "\"}");
            }
            if (f->kind == KIND_COUNTER)
                g_string_append_printf(out, " %" G_GUINT64_FORMAT "\n", (guint64)v);
            else
                g_string_append_printf(out, " %" G_GINT64_FORMAT "\n", (gint64)v);
        }
    }
    for (guint i = 0; i < m->collectors->len; i++) {
        collector *c = &g_array_index(m->collectors, collector, i);
        c->fn(out, c->user_data);
    }
    g_mutex_unlock(&m->lock);
}
