/*
 * metrics.h - counters and gauges with labels, rendered as Prometheus text.
 *
 * A subsystem declares a family once (name, help, label names) and updates
 * its series as things happen; collectors registered with
 * metrics_on_collect() refresh gauges that are cheaper to read than to
 * track (loop lag, Lua VMs) just before a render. The registry owns every
 * family and series; a family pointer stays valid until metrics_shutdown().
 * Core thread only.
 *
 * Families every part of the daemon shares (declared by metrics_init(), so
 * /metrics lists them from the start; the owning subsystem updates them):
 *   cw_calls_total{domain,direction}    counter  calls started (inbound, outbound, internal)
 *   cw_calls_active{domain}             gauge    calls in progress
 *   cw_registrations{domain}            gauge    registered SIP contacts
 *   cw_queue_waiting{domain,queue}      gauge    callers waiting in a queue
 *   cw_agents{domain,state}             gauge    agents by state
 *   cw_http_requests_total{method,status} counter  API requests answered
 *   cw_events_total{kind}               counter  events emitted, by type up to the first dot
 *   cw_loop_lag_ms / cw_loop_lag_max_ms gauge    core loop wake-up delay (last / worst)
 */
#ifndef CW_METRICS_H
#define CW_METRICS_H

#include "base/cw.h"

typedef struct metric metric;

/* Declare the standard families and the loop-lag and event collectors. Idempotent. */
void metrics_init(void);
void metrics_shutdown(void);

/*
 * Declare a family. labels: comma-separated label names ("domain,queue"),
 * NULL or "" for none. Declaring the same name again with the same kind
 * and labels returns the same family; a different shape or a bad name
 * returns NULL (logged).
 */
metric *metrics_counter(const char *name, const char *help, const char *labels);
metric *metrics_gauge(const char *name, const char *help, const char *labels);

/*
 * Update one series; the label values follow, as many as declared (none
 * for a family without labels). A series is created on first use. A
 * counter only goes up: a negative delta is ignored. m may be NULL (no-op).
 */
void metrics_add(metric *m, double delta, ...);
void metrics_set(metric *m, double value, ...);
/* Current value (0 when the series does not exist). */
double metrics_get(metric *m, ...);
/* Forget one series (a queue was deleted), or all of them (a collector refills the family). */
void metrics_remove(metric *m, ...);
void metrics_clear(metric *m);

/* The same with the label values in an array (plugins, run-time label lists). */
void metrics_addv(metric *m, double delta, const char *const *values);
void metrics_setv(metric *m, double value, const char *const *values);
double metrics_getv(metric *m, const char *const *values);

/* Called before every render, in registration order. */
typedef void (*metrics_collect_fn)(void *arg);
void metrics_on_collect(metrics_collect_fn fn, void *arg);

/* Every family in the Prometheus text exposition format (version 0.0.4). */
void metrics_render(cw_buf *out);
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
