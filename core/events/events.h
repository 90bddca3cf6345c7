/*
 * events.h - the typed event bus of the core thread.
 *
 * Every state change worth telling (call.*, agent.*, queue.*, campaign.*,
 * config.*, sip.*) is emitted here once; C code, Lua scripts, plugins and
 * the SSE stream subscribe by type prefix. Emission and delivery happen on
 * the core thread only. An event emitted while others are being delivered
 * is queued and delivered after them, so subscribers see events in order.
 */
#ifndef CW_EVENTS_H
#define CW_EVENTS_H

#include <jansson.h>
#include <stdint.h>

typedef struct cw_event {
    uint64_t id;       /* increasing, unique for the process lifetime */
    int64_t ts_ms;     /* wall clock */
    int64_t domain_id; /* tenant it belongs to; 0 = system-wide */
    char type[48];     /* e.g. "call.answered" */
    json_t *data;      /* owned by the bus; a subscriber that keeps it takes a reference */
} cw_event;

typedef void (*events_fn)(const cw_event *ev, void *arg);

/* Subscribe to every type starting with prefix ("" = all). Returns an id > 0. */
int events_subscribe(const char *prefix, events_fn fn, void *arg);
void events_unsubscribe(int id);

/* Emit; takes ownership of data (may be NULL = empty object). */
void events_emit(const char *type, int64_t domain_id, json_t *data);

/*
 * Recent events, for SSE clients resuming with Last-Event-ID: calls fn for
 * each kept event with id > after_id, oldest first. The ring keeps the last
 * 4096 events.
 */
void events_replay(uint64_t after_id, events_fn fn, void *arg);

/* Full event as JSON {id, ts, type, domain_id, data} (new reference). */
json_t *events_to_json(const cw_event *ev);

void events_shutdown(void);

#endif
