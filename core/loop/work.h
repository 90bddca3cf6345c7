/*
 * work.h - a small pool of worker threads for jobs that would block the
 * core loop: password hashing (slow KDF), file writes, SMTP transfers.
 *
 * work_submit(run, done, arg): run(arg) executes on a worker thread and must
 * not touch domain state; done(arg) then runs on the core thread, where the
 * result is used and arg is freed. The caller owns arg throughout.
 * Without work_init() (unit tests, tools) both run at once on the caller.
 */
#ifndef CW_WORK_H
#define CW_WORK_H

typedef void (*work_fn)(void *arg);

/* Start nthreads workers whose completions are delivered on the core loop. */
int work_init(int nthreads);
/* Finish every submitted job (run and done), then stop the workers. */
void work_shutdown(void);
void work_submit(work_fn run, work_fn done, void *arg);
/* Jobs submitted and not yet completed on the core thread. */
int work_pending(void);

#endif
