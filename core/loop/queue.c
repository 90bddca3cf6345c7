/*
 * queue.c - mutex-guarded intrusive list plus an eventfd for wake-ups.
 *
 * The lock is held only to link or unlink a list head, so contention costs
 * tens of nanoseconds; the eventfd is written only when the queue goes from
 * empty to non-empty, so a burst costs one syscall.
 */
#include "loop/queue.h"
#include "base/cw.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct cw_queue {
    pthread_mutex_t lock;
    cw_msg *head, *tail;
    int efd;
};

cw_queue *cw_queue_new(void)
{
    cw_queue *q = cw_calloc(1, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) {
        free(q);
        return NULL;
    }
    return q;
}

void cw_queue_free(cw_queue *q)
{
    if (!q) return;
    cw_msg *m = cw_queue_take_all(q);
    while (m) {
        cw_msg *n = m->next;
        free(m);
        m = n;
    }
    close(q->efd);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

int cw_queue_fd(cw_queue *q)
{
    return q->efd;
}

void cw_queue_push(cw_queue *q, cw_msg *m)
{
    m->next = NULL;
    pthread_mutex_lock(&q->lock);
    int was_empty = q->head == NULL;
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    pthread_mutex_unlock(&q->lock);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(q->efd, &one, sizeof one);
        (void)w; /* counter overflow is impossible; EAGAIN means already signalled */
    }
}

cw_msg *cw_queue_take_all(cw_queue *q)
{
    uint64_t v;
    ssize_t r = read(q->efd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&q->lock);
    cw_msg *m = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    return m;
}
