/*
 * cw.h - the few things every part of Callwright shares: error codes,
 * checked allocation, a growable string buffer and the clocks.
 *
 * Nothing here knows about calls, tenants or threads; it is safe to use
 * from any thread.
 */
#ifndef CW_BASE_H
#define CW_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Error codes: 0 is success, negative values say what went wrong. */
enum {
    CW_OK = 0,
    CW_EINVAL = -1,  /* bad input from outside */
    CW_ENOENT = -2,  /* no such object */
    CW_EEXIST = -3,  /* already exists / not unique */
    CW_EPERM = -4,   /* not allowed */
    CW_ENOMEM = -5,  /* out of memory or over a budget */
    CW_EIO = -6,     /* store, socket or file failed */
    CW_EBUSY = -7,   /* resource busy, try later */
    CW_ETIMEDOUT = -8,
    CW_ESTATE = -9,  /* operation not valid in the current state */
};

const char *cw_strerror(int err);

#define CW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CW_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define CW_MAX(a, b)    ((a) > (b) ? (a) : (b))
#define CW_UNUSED(x)    ((void)(x))

/* Allocation that never returns NULL: out of memory is fatal. */
void *cw_malloc(size_t n);
void *cw_calloc(size_t n, size_t size);
void *cw_realloc(void *p, size_t n);
char *cw_strdup(const char *s);
char *cw_strndup(const char *s, size_t n);
char *cw_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copy with truncation; always NUL-terminates when size > 0. */
size_t cw_strlcpy(char *dst, const char *src, size_t size);
bool cw_str_has_prefix(const char *s, const char *prefix);
bool cw_str_is_digits(const char *s);
/* Parse a whole decimal integer; returns CW_EINVAL on junk or overflow. */
int cw_parse_i64(const char *s, int64_t *out);

/* A growable NUL-terminated byte buffer. Owned by whoever declared it. */
typedef struct cw_buf {
    char *data;
    size_t len;
    size_t cap;
} cw_buf;

void cw_buf_init(cw_buf *b);
void cw_buf_free(cw_buf *b);
void cw_buf_reset(cw_buf *b);
void cw_buf_append(cw_buf *b, const void *data, size_t n);
void cw_buf_puts(cw_buf *b, const char *s);
void cw_buf_printf(cw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cw_buf_vprintf(cw_buf *b, const char *fmt, va_list ap);
/* Hand the data to the caller (who frees it) and reset the buffer. */
char *cw_buf_steal(cw_buf *b);

/* Monotonic milliseconds and microseconds (never jump). */
int64_t cw_mono_ms(void);
int64_t cw_mono_us(void);
/*
 * Wall clock in seconds since the epoch. Tests may shift it with
 * cw_clock_set_offset() to cross schedule boundaries without waiting.
 */
int64_t cw_wall_time(void);
int64_t cw_wall_ms(void);
void cw_clock_set_offset(int64_t seconds);
int64_t cw_clock_offset(void);

/* Make every folder above the file `path` (like mkdir -p of its dirname). */
int cw_mkdir_parents(const char *path);

/* Random bytes from the OS CSPRNG; hex helper for tokens. */
int cw_random_bytes(void *buf, size_t n);
void cw_hex(const unsigned char *in, size_t n, char *out /* 2n+1 */);

#endif
