/*
 * cdr.h - call detail records and the queue log, written in batches.
 *
 * Rows are buffered on the core thread and written in one transaction every
 * cdr.flush_ms, and on a clean stop, so the hot path never waits for the
 * store; a crash loses at most one flush window.
 */
#ifndef CW_CDR_H
#define CW_CDR_H

#include <jansson.h>
#include <stdint.h>

int cdr_init(void);
/* Write everything buffered (called on stop). */
void cdr_flush(void);
void cdr_shutdown(void);

/* A finished call: an object whose keys are cdrs columns. Stolen. */
void cdr_submit(json_t *row);
/* One queue event: join, offer, answer, timeout, abandon, exit, ... data stolen (may be NULL). */
void cdr_queue_log(int64_t domain_id, int64_t queue_id, const char *call_uuid, int64_t agent_id,
                   const char *event, json_t *data);

#endif
