/*
 * events.c - subscriber list, in-order delivery, and the replay ring.
 */
#include "events/events.h"
#include "base/cw.h"
#include "log/log.h"

#include <stdlib.h>
#include <string.h>

#define RING 4096

struct sub {
    int id;
    char prefix[48];
    size_t plen;
    events_fn fn;
    void *arg;
    bool dead;
};

struct pending {
    struct pending *next;
    cw_event ev;
};

static struct {
    struct sub *subs;
    int nsubs, cap, next_id;
    uint64_t next_event;
    bool delivering;
    struct pending *head, *tail;
    cw_event ring[RING];
    int ring_len, ring_pos;
} B = {.next_id = 1, .next_event = 1};

int events_subscribe(const char *prefix, events_fn fn, void *arg)
{
    if (B.nsubs == B.cap) {
        B.cap = B.cap ? B.cap * 2 : 16;
        B.subs = cw_realloc(B.subs, sizeof *B.subs * (size_t)B.cap);
    }
    struct sub *s = &B.subs[B.nsubs++];
    memset(s, 0, sizeof *s);
    s->id = B.next_id++;
    cw_strlcpy(s->prefix, prefix ? prefix : "", sizeof s->prefix);
    s->plen = strlen(s->prefix);
    s->fn = fn;
    s->arg = arg;
    return s->id;
}

static void compact(void)
{
    int j = 0;
    for (int i = 0; i < B.nsubs; i++)
        if (!B.subs[i].dead) B.subs[j++] = B.subs[i];
    B.nsubs = j;
}

void events_unsubscribe(int id)
{
    for (int i = 0; i < B.nsubs; i++)
        if (B.subs[i].id == id) B.subs[i].dead = true;
    if (!B.delivering) compact();
}

static void keep(const cw_event *ev)
{
    cw_event *slot = &B.ring[B.ring_pos];
    if (B.ring_len == RING) json_decref(slot->data);
    *slot = *ev;
    json_incref(slot->data);
    B.ring_pos = (B.ring_pos + 1) % RING;
    if (B.ring_len < RING) B.ring_len++;
}

static void deliver(cw_event *ev)
{
    keep(ev);
    int n = B.nsubs; /* subscribers added during delivery start with the next event */
    for (int i = 0; i < n; i++) {
        struct sub *s = &B.subs[i];
        if (s->dead || strncmp(ev->type, s->prefix, s->plen) != 0) continue;
        s->fn(ev, s->arg);
    }
    json_decref(ev->data);
}

void events_emit(const char *type, int64_t domain_id, json_t *data)
{
    struct pending *p = cw_calloc(1, sizeof *p);
    p->ev.id = B.next_event++;
    p->ev.ts_ms = cw_wall_ms();
    p->ev.domain_id = domain_id;
    cw_strlcpy(p->ev.type, type, sizeof p->ev.type);
    p->ev.data = data ? data : json_object();
    if (B.tail)
        B.tail->next = p;
    else
        B.head = p;
    B.tail = p;
    if (B.delivering) return;
    B.delivering = true;
    while (B.head) {
        struct pending *cur = B.head;
        B.head = cur->next;
        if (!B.head) B.tail = NULL;
        deliver(&cur->ev);
        free(cur);
    }
    B.delivering = false;
    compact();
}

void events_replay(uint64_t after_id, events_fn fn, void *arg)
{
    int start = (B.ring_pos - B.ring_len + RING) % RING;
    for (int i = 0; i < B.ring_len; i++) {
        const cw_event *ev = &B.ring[(start + i) % RING];
        if (ev->id > after_id) fn(ev, arg);
    }
}

json_t *events_to_json(const cw_event *ev)
{
    return json_pack("{s:I,s:I,s:s,s:I,s:O}", "id", (json_int_t)ev->id, "ts", (json_int_t)ev->ts_ms,
                     "type", ev->type, "domain_id", (json_int_t)ev->domain_id, "data", ev->data);
}

void events_shutdown(void)
{
    int start = (B.ring_pos - B.ring_len + RING) % RING;
    for (int i = 0; i < B.ring_len; i++) json_decref(B.ring[(start + i) % RING].data);
    B.ring_len = 0;
    free(B.subs);
    B.subs = NULL;
    B.nsubs = B.cap = 0;
}
