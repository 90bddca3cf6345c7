/*
 * queue.h - a multi-producer, single-consumer message queue between threads.
 *
 * Messages are intrusive: a message struct starts with a cw_msg. Producers on
 * any thread push; the consumer wakes on the queue's eventfd and takes the
 * whole batch at once, in the order pushed. The queue never frees messages:
 * ownership passes from the producer to the consumer on push.
 */
#ifndef CW_QUEUE_H
#define CW_QUEUE_H

#include <stdint.h>

typedef struct cw_msg {
    struct cw_msg *next;
    int type;
} cw_msg;

typedef struct cw_queue cw_queue;

cw_queue *cw_queue_new(void);
void cw_queue_free(cw_queue *q); /* frees queued messages with free() */
/* Returns the fd that becomes readable when messages are waiting. */
int cw_queue_fd(cw_queue *q);
void cw_queue_push(cw_queue *q, cw_msg *m);
/* Take every waiting message (FIFO list linked by next), clearing the fd. */
cw_msg *cw_queue_take_all(cw_queue *q);

#endif
