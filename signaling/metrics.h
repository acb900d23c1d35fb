/* A small metrics registry rendered as Prometheus text (exposition format 0.0.4) at /metrics:
 * counters and gauges with at most one label, plus collector callbacks that append their own text
 * at scrape time. Counters and gauges may be updated from any thread (lock-free atomics); creating
 * metrics and rendering take a mutex. Knows nothing of what is counted. */
#ifndef ENCORE_SIGNALING_METRICS_H
#define ENCORE_SIGNALING_METRICS_H

#include <stdint.h>

#include <glib.h>

typedef struct encore_metrics encore_metrics;
/* One time series (a metric name plus, optionally, one label value). Owned by its registry and
 * valid until the registry is freed; never free it yourself. */
typedef struct encore_metric encore_metric;

/* Appends Prometheus text (complete "# HELP"/"# TYPE" blocks and samples, each line ending in
 * '\n') to out. Runs at scrape time on the thread that renders, with the registry's mutex held:
 * it must not call encore_metrics_* functions on the same registry. */
typedef void (*encore_metrics_collect_fn)(GString *out, void *user_data);

/* A new, empty registry. Never fails. */
encore_metrics *encore_metrics_new(void);

/* Frees the registry, every metric it handed out, and runs the collectors' destroy functions.
 * Accepts NULL. No other thread may be using the registry or its metrics any more. */
void encore_metrics_free(encore_metrics *m);

/* The process-wide registry, created on first use and never freed. Thread-safe. */
encore_metrics *encore_metrics_default(void);

/* Returns the counter series name{label_name="label_value"} (or plain name when label_name is
 * NULL), creating it (at 0) on first use; later calls with the same name and label value return
 * the same pointer. help is used when the family is first created. All strings are copied.
 * Returns NULL (with a g_critical) when name is not a valid Prometheus metric name
 * ([a-zA-Z_:][a-zA-Z0-9_:]*), label_name is not a valid label name, label_name is given without
 * label_value (or the reverse), or the name is already registered as a gauge or with another
 * label name. Thread-safe. */
encore_metric *encore_metrics_counter(encore_metrics *m, const char *name, const char *help,
                                      const char *label_name, const char *label_value);

/* Same as encore_metrics_counter() for a gauge (a signed value that goes up and down). */
encore_metric *encore_metrics_gauge(encore_metrics *m, const char *name, const char *help,
                                    const char *label_name, const char *label_value);

/* Adds n to a counter or gauge. Lock-free, any thread. NULL is ignored. */
void encore_metrics_add(encore_metric *c, uint64_t n);
/* Increments by one. */
void encore_metrics_inc(encore_metric *c);
/* Gauges only: subtracts n (a counter is left unchanged, with a g_critical). */
void encore_metrics_sub(encore_metric *g, uint64_t n);
/* Gauges only: sets the value. */
void encore_metrics_set(encore_metric *g, int64_t v);
/* Current value (counters are unsigned, shown here as int64 up to 2^63-1). */
int64_t encore_metrics_get(encore_metric *c);

/* Registers a collector. destroy (may be NULL) is called with user_data when the collector is
 * removed or the registry is freed. Returns an id > 0 for encore_metrics_remove_collector().
 * Thread-safe. */
guint encore_metrics_add_collector(encore_metrics *m, encore_metrics_collect_fn fn, void *user_data,
                                   GDestroyNotify destroy);

/* Removes a collector by id (unknown ids are ignored) and calls its destroy function. Must not be
 * called from inside a collector. Thread-safe. */
void encore_metrics_remove_collector(encore_metrics *m, guint id);

/* Appends the whole registry as Prometheus text to out: families in creation order, series in
 * creation order, then the collectors' text in registration order. */
void encore_metrics_render(encore_metrics *m, GString *out);

/* Appends a Prometheus label value to out with backslash, double quote and newline escaped.
 * For collectors. */
void encore_metrics_append_label_value(GString *out, const char *value);

#endif /* ENCORE_SIGNALING_METRICS_H */
