/*
 * work.c - the worker pool: a mutex-protected FIFO of jobs feeding N
 * threads, and a cw_queue carrying finished jobs back to the core loop.
 */
#include "loop/work.h"
#include "base/cw.h"
#include "log/log.h"
#include "loop/loop.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct job {
    cw_msg msg; /* first: the completion travels on the core queue */
    struct job *next;
    work_fn run, done;
    void *arg;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    bool stopping;
    pthread_t *threads;
    int nthreads;
    cw_queue *done_q;
    struct event *done_ev;
    int pending; /* core thread only */
} W = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *worker_main(void *unused)
{
    for (;;) {
        pthread_mutex_lock(&W.mu);
        while (!W.head && !W.stopping)
            pthread_cond_wait(&W.cv, &W.mu);
        struct job *j = W.head;
        if (j) {
            W.head = j->next;
            if (!W.head) W.tail = NULL;
        }
        pthread_mutex_unlock(&W.mu);
        if (!j) return NULL; /* stopping and drained */
        j->run(j->arg);
        cw_queue_push(W.done_q, &j->msg);
    }
}

static void on_done(cw_msg *m, void *unused)
{
    struct job *j = (struct job *)m;
    W.pending--;
    if (j->done) j->done(j->arg);
    free(j);
}

int work_init(int nthreads)
{
    if (W.nthreads) return CW_OK;
    if (nthreads < 1) nthreads = 1;
    W.done_q = cw_queue_new();
    W.done_ev = loop_attach_queue(W.done_q, on_done, NULL);
    W.threads = cw_calloc((size_t)nthreads, sizeof(pthread_t));
    W.stopping = false;
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&W.threads[i], NULL, worker_main, NULL)) {
            log_error("core", "cannot start worker thread %d", i);
            break;
        }
        W.nthreads++;
    }
    return W.nthreads ? CW_OK : CW_EIO;
}

void work_submit(work_fn run, work_fn done, void *arg)
{
    if (!W.nthreads) {
        run(arg);
        if (done) done(arg);
        return;
    }
    struct job *j = cw_calloc(1, sizeof *j);
    j->run = run;
    j->done = done;
    j->arg = arg;
    W.pending++;
    pthread_mutex_lock(&W.mu);
    if (W.tail)
        W.tail->next = j;
    else
        W.head = j;
    W.tail = j;
    pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
}

int work_pending(void)
{
    return W.pending;
}

void work_shutdown(void)
{
    if (!W.nthreads) return;
    pthread_mutex_lock(&W.mu);
    W.stopping = true;
    pthread_cond_broadcast(&W.cv);
    pthread_mutex_unlock(&W.mu);
    for (int i = 0; i < W.nthreads; i++)
        pthread_join(W.threads[i], NULL);
    W.nthreads = 0; /* jobs submitted from here on run inline */
    /* completions the loop did not see yet: deliver them here, in order */
    cw_msg *m = cw_queue_take_all(W.done_q);
    while (m) {
        cw_msg *next = m->next;
        on_done(m, NULL);
        m = next;
    }
    loop_detach_queue(W.done_ev);
    cw_queue_free(W.done_q);
    free(W.threads);
    W.threads = NULL;
    W.done_q = NULL;
    W.done_ev = NULL;
}
