/*
 * log.h - leveled logging with a level per subsystem.
 *
 * Lines go to stderr or to a file, one write() per line so threads do not
 * interleave. Never pass secrets (passwords, digests, tokens) to these calls.
 */
#ifndef CW_LOG_H
#define CW_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

/* Open the sink: path NULL or "" = stderr. Returns 0 or CW_EIO. */
int log_open(const char *path);
void log_close(void);
/* Reopen the same file (after logrotate, on SIGHUP). */
int log_reopen(void);

/* Default level and per-subsystem overrides: "info" and "sip=debug,media=warn". */
int log_set_level(const char *level);
int log_set_levels(const char *spec);
int log_level_parse(const char *name, enum log_level *out);

bool log_enabled(const char *subsys, enum log_level lvl);
void log_write(const char *subsys, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_AT(sub, lvl, ...)                                                                      \
    do {                                                                                           \
        if (log_enabled(sub, lvl)) log_write(sub, lvl, __VA_ARGS__);                               \
    } while (0)
#define log_error(sub, ...) LOG_AT(sub, LOG_ERROR, __VA_ARGS__)
#define log_warn(sub, ...)  LOG_AT(sub, LOG_WARN, __VA_ARGS__)
#define log_info(sub, ...)  LOG_AT(sub, LOG_INFO, __VA_ARGS__)
#define log_debug(sub, ...) LOG_AT(sub, LOG_DEBUG, __VA_ARGS__)
#define log_trace(sub, ...) LOG_AT(sub, LOG_TRACE, __VA_ARGS__)

#endif
