/*
 * log.c - the log sink and per-subsystem levels.
 *
 * Levels are read from any thread; they change only on the core thread
 * (start, SIGHUP), so a torn read shows one level or the other, never junk.
 */
#include "log/log.h"
#include "base/cw.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_OVERRIDES 32

static struct {
    int fd;
    char *path;
    _Atomic int level;
    int n_over;
    struct {
        char name[24];
        _Atomic int level;
    } over[MAX_OVERRIDES];
} L = {.fd = 2, .level = LOG_INFO};

static const char *level_names[] = {"error", "warn", "info", "debug", "trace"};

int log_level_parse(const char *name, enum log_level *out)
{
    for (int i = 0; i < (int)CW_ARRAY_LEN(level_names); i++)
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return CW_OK;
        }
    return CW_EINVAL;
}

int log_open(const char *path)
{
    if (!path || !*path) {
        log_close();
        return CW_OK;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return CW_EIO;
    log_close();
    L.fd = fd;
    L.path = cw_strdup(path);
    return CW_OK;
}

void log_close(void)
{
    if (L.fd > 2) close(L.fd);
    L.fd = 2;
    free(L.path);
    L.path = NULL;
}

int log_reopen(void)
{
    if (!L.path) return CW_OK;
    char *p = cw_strdup(L.path);
    int rc = log_open(p);
    free(p);
    return rc;
}

int log_set_level(const char *level)
{
    enum log_level l;
    if (log_level_parse(level, &l)) return CW_EINVAL;
    atomic_store(&L.level, (int)l);
    return CW_OK;
}

int log_set_levels(const char *spec)
{
    /* Validate everything first so a bad spec changes nothing. */
    char *copy = cw_strdup(spec ? spec : "");
    struct {
        char name[24];
        int level;
    } parsed[MAX_OVERRIDES];
    int n = 0, rc = CW_OK;
    for (char *save = NULL, *tok = strtok_r(copy, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        char *eq = strchr(tok, '=');
        enum log_level l;
        if (!eq || eq == tok || (size_t)(eq - tok) >= sizeof parsed[0].name || n == MAX_OVERRIDES ||
            log_level_parse(eq + 1, &l)) {
            rc = CW_EINVAL;
            break;
        }
        *eq = '\0';
        cw_strlcpy(parsed[n].name, tok, sizeof parsed[n].name);
        parsed[n++].level = (int)l;
    }
    free(copy);
    if (rc) return rc;
    /* Existing names keep their slot so concurrent readers never see a gap. */
    for (int i = 0; i < L.n_over; i++) atomic_store(&L.over[i].level, -1);
    for (int i = 0; i < n; i++) {
        int slot = -1;
        for (int j = 0; j < L.n_over; j++)
            if (strcmp(L.over[j].name, parsed[i].name) == 0) slot = j;
        if (slot < 0) {
            slot = L.n_over;
            cw_strlcpy(L.over[slot].name, parsed[i].name, sizeof L.over[slot].name);
            L.n_over++;
        }
        atomic_store(&L.over[slot].level, parsed[i].level);
    }
    return CW_OK;
}

bool log_enabled(const char *subsys, enum log_level lvl)
{
    for (int i = 0; i < L.n_over; i++) {
        if (strcmp(L.over[i].name, subsys) == 0) {
            int l = atomic_load(&L.over[i].level);
            if (l >= 0) return (int)lvl <= l;
        }
    }
    return (int)lvl <= atomic_load(&L.level);
}

void log_write(const char *subsys, enum log_level lvl, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), level_names[lvl], subsys);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : CW_MIN((size_t)m, sizeof line - (size_t)n - 2));
    /* One line per record: control characters from outside are flattened. */
    for (size_t i = (size_t)n; i < len; i++)
        if ((unsigned char)line[i] < 0x20 && line[i] != '\t') line[i] = ' ';
    line[len++] = '\n';
    ssize_t w;
    do {
        w = write(L.fd, line, len);
    } while (w < 0 && errno == EINTR);
}
