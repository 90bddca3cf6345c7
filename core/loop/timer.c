/*
 * timer.c - cw_timer on the core event base.
 */
#include "loop/timer.h"
#include "base/cw.h"
#include "loop/loop.h"

#include <stdlib.h>

struct cw_timer {
    struct event *ev;
    cw_timer_fn fn;
    void *arg;
};

static void fire(evutil_socket_t fd, short what, void *arg)
{
    cw_timer *t = arg;
    t->fn(t->arg);
}

cw_timer *cw_timer_new(cw_timer_fn fn, void *arg)
{
    cw_timer *t = cw_calloc(1, sizeof *t);
    t->fn = fn;
    t->arg = arg;
    t->ev = evtimer_new(loop_base(), fire, t);
    return t;
}

void cw_timer_start(cw_timer *t, int64_t ms)
{
    if (ms < 0) ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(t->ev, &tv);
}

void cw_timer_stop(cw_timer *t)
{
    evtimer_del(t->ev);
}

void cw_timer_free(cw_timer *t)
{
    if (!t) return;
    event_free(t->ev);
    free(t);
}
