/*
 * recording.h - call recordings: the domain's policy at call time, the
 * bookkeeping of each recording, and retention.
 *
 * Policy (seed 001 §10.1, extended): a call is recorded when the domain
 * records everything, when a party that is a user of the domain has
 * recording on, or when it went through a call-processing group that has.
 * Scripts start the recording (scripts/cw/recording.lua, on every bridge
 * and queue through the `cwrec` module); the decision is checked again
 * when the call ends, against who actually talked: a call nobody answered,
 * or answered by someone whose calls are not recorded, leaves no recording.
 * A kept recording is a row of `recordings` (with its size and length)
 * that expires after the domain's retention (1, 6 or 12 months); a
 * periodic sweep deletes expired rows and files.
 *
 * Core thread only; files are measured and deleted on worker threads.
 */
#ifndef CW_RECORDING_H
#define CW_RECORDING_H

#include <stdint.h>

/* Register `cwrec`, follow call events, finish what a previous run left, start the sweep. */
void recording_init(void);
void recording_shutdown(void);

/* created_at plus a number of calendar months (UTC). */
int64_t recording_expiry(int64_t created_at, int months);
/* After a domain's retention changed: every recording's expiry follows the new value. */
int recording_retention_changed(int64_t domain_id, int months);
/* Delete expired recordings now (the sweep does it every recording.sweep_interval). */
void recording_sweep(void);

/* Remove a recording's files (the WAV and a converted MP3) on a worker thread. */
void recording_remove_files(const char *wav_path);

#endif
