/*
 * timer.h - one-shot timers on the core loop.
 *
 * A thin layer over libevent so that domain code (the ACD, call scripts)
 * states what it wants in milliseconds, and unit tests can drive the same
 * code with a fake clock by providing these four functions themselves.
 * Owned by whoever created the timer; core thread only.
 */
#ifndef CW_TIMER_H
#define CW_TIMER_H

#include <stdint.h>

typedef struct cw_timer cw_timer;
typedef void (*cw_timer_fn)(void *arg);

cw_timer *cw_timer_new(cw_timer_fn fn, void *arg);
/* (Re)start: fires once after ms milliseconds. */
void cw_timer_start(cw_timer *t, int64_t ms);
void cw_timer_stop(cw_timer *t);
void cw_timer_free(cw_timer *t); /* NULL is fine */

#endif
