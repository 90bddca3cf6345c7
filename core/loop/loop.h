/*
 * loop.h - the core thread's event loop.
 *
 * One libevent base runs on the core thread and owns all domain state.
 * Other threads reach it only through queues attached here.
 */
#ifndef CW_LOOP_H
#define CW_LOOP_H

#include <event2/event.h>
#include <stdbool.h>

#include "loop/queue.h"

typedef void (*loop_msg_fn)(cw_msg *m, void *arg);

int loop_init(void);
void loop_free(void);
struct event_base *loop_base(void);
bool loop_on_core_thread(void);

/* Deliver messages pushed on q to fn on the core thread; fn owns each message. */
struct event *loop_attach_queue(cw_queue *q, loop_msg_fn fn, void *arg);
/* Undo loop_attach_queue(): stop delivering and free the event (not the queue). */
void loop_detach_queue(struct event *ev);

/* Run until loop_stop(). */
int loop_run(void);
void loop_stop(void);

/* Milliseconds the loop woke up late on its 100 ms probe, for metrics. */
double loop_lag_ms_last(void);
double loop_lag_ms_max(void);

#endif
