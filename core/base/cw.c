/*
 * cw.c - shared helpers: errors, allocation, buffers, clocks, randomness.
 */
#include "base/cw.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

const char *cw_strerror(int err)
{
    switch (err) {
    case CW_OK:
        return "ok";
    case CW_EINVAL:
        return "invalid input";
    case CW_ENOENT:
        return "not found";
    case CW_EEXIST:
        return "already exists";
    case CW_EPERM:
        return "not allowed";
    case CW_ENOMEM:
        return "out of memory or budget";
    case CW_EIO:
        return "i/o error";
    case CW_EBUSY:
        return "busy";
    case CW_ETIMEDOUT:
        return "timed out";
    case CW_ESTATE:
        return "invalid state";
    default:
        return "unknown error";
    }
}

static void oom(size_t n)
{
    fprintf(stderr, "callwright: out of memory allocating %zu bytes\n", n);
    abort();
}

void *cw_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *cw_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *cw_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *cw_strdup(const char *s)
{
    if (!s) return NULL;
    return cw_strndup(s, strlen(s));
}

char *cw_strndup(const char *s, size_t n)
{
    char *d = cw_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *cw_sprintf(const char *fmt, ...)
{
    cw_buf b;
    cw_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    cw_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return cw_buf_steal(&b);
}

size_t cw_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size) {
        size_t c = n >= size ? size - 1 : n;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

bool cw_str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool cw_str_is_digits(const char *s)
{
    if (!s || !*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

int cw_parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s) return CW_EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return CW_EINVAL;
    *out = v;
    return CW_OK;
}

void cw_buf_init(cw_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void cw_buf_free(cw_buf *b)
{
    free(b->data);
    cw_buf_init(b);
}

void cw_buf_reset(cw_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

static void buf_reserve(cw_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = cw_realloc(b->data, cap);
    b->cap = cap;
}

void cw_buf_append(cw_buf *b, const void *data, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cw_buf_puts(cw_buf *b, const char *s)
{
    cw_buf_append(b, s, strlen(s));
}

void cw_buf_vprintf(cw_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0) return;
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void cw_buf_printf(cw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cw_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

char *cw_buf_steal(cw_buf *b)
{
    char *d = b->data ? b->data : cw_strdup("");
    cw_buf_init(b);
    return d;
}

int64_t cw_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cw_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static _Atomic int64_t clock_offset;

int64_t cw_wall_time(void)
{
    return (int64_t)time(NULL) + atomic_load(&clock_offset);
}

int64_t cw_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((int64_t)ts.tv_sec + atomic_load(&clock_offset)) * 1000 + ts.tv_nsec / 1000000;
}

void cw_clock_set_offset(int64_t seconds)
{
    atomic_store(&clock_offset, seconds);
}

int64_t cw_clock_offset(void)
{
    return atomic_load(&clock_offset);
}

int cw_mkdir_parents(const char *path)
{
    char *p = cw_strdup(path);
    int rc = CW_OK;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0750) && errno != EEXIST) rc = CW_EIO;
        *s = '/';
    }
    free(p);
    return rc;
}

int cw_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return CW_EIO;
        }
        p += r;
        n -= (size_t)r;
    }
    return CW_OK;
}

void cw_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}
