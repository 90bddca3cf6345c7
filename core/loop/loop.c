/*
 * loop.c - the core event base, queue attachment and loop-lag probe.
 */
#include "loop/loop.h"
#include "base/cw.h"
#include "log/log.h"

#include <pthread.h>
#include <stdlib.h>

static struct event_base *base;
static pthread_t core_thread;
static struct event *lag_ev;
static int64_t lag_expect_us;
static double lag_last, lag_max;

struct attached {
    cw_queue *q;
    loop_msg_fn fn;
    void *arg;
};

static void on_lag_probe(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = cw_mono_us();
    double lag = (double)(now - lag_expect_us) / 1000.0;
    lag_last = lag < 0 ? 0 : lag;
    if (lag_last > lag_max) lag_max = lag_last;
    lag_expect_us = now + 100000;
}

int loop_init(void)
{
    base = event_base_new();
    if (!base) return CW_ENOMEM;
    core_thread = pthread_self();
    static const struct timeval tv = {0, 100000};
    lag_ev = event_new(base, -1, EV_PERSIST, on_lag_probe, NULL);
    lag_expect_us = cw_mono_us() + 100000;
    event_add(lag_ev, &tv);
    return CW_OK;
}

void loop_free(void)
{
    if (lag_ev) event_free(lag_ev);
    lag_ev = NULL;
    if (base) event_base_free(base);
    base = NULL;
}

struct event_base *loop_base(void)
{
    return base;
}

bool loop_on_core_thread(void)
{
    return pthread_equal(pthread_self(), core_thread);
}

static void on_queue(evutil_socket_t fd, short what, void *arg)
{
    struct attached *a = arg;
    cw_msg *m = cw_queue_take_all(a->q);
    while (m) {
        cw_msg *next = m->next;
        a->fn(m, a->arg);
        m = next;
    }
}

struct event *loop_attach_queue(cw_queue *q, loop_msg_fn fn, void *arg)
{
    struct attached *a = cw_calloc(1, sizeof *a);
    a->q = q;
    a->fn = fn;
    a->arg = arg;
    struct event *ev = event_new(base, cw_queue_fd(q), EV_READ | EV_PERSIST, on_queue, a);
    event_add(ev, NULL);
    return ev;
}

void loop_detach_queue(struct event *ev)
{
    if (!ev) return;
    struct attached *a = event_get_callback_arg(ev);
    event_free(ev);
    free(a);
}

int loop_run(void)
{
    return event_base_dispatch(base) < 0 ? CW_EIO : CW_OK;
}

void loop_stop(void)
{
    event_base_loopbreak(base);
}

double loop_lag_ms_last(void)
{
    return lag_last;
}

double loop_lag_ms_max(void)
{
    return lag_max;
}
