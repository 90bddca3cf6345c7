/*
 * metrics.c - the registry of metric families and their series, and the
 * Prometheus text renderer.
 *
 * A series is found by its label values joined into one key; families keep
 * their series in the order they appeared, so the output is stable. A
 * family holds at most MAX_SERIES series: past that, new label sets are
 * dropped (logged once) rather than letting a bug grow memory without end.
 */
#include "metrics/metrics.h"
#include "events/events.h"
#include "log/log.h"
#include "loop/loop.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 8
#define MAX_SERIES 10000

enum kind { COUNTER, GAUGE };

struct series {
    char *key; /* label values joined by \x1f */
    char **values;
    double v;
};

struct metric {
    char *name, *help;
    enum kind kind;
    int nlabels;
    char *labels[MAX_LABELS];
    struct series *series;
    int nseries, cap;
    bool overflow_logged;
};

struct collector {
    metrics_collect_fn fn;
    void *arg;
};

static struct {
    metric **fams;
    int nfams;
    struct collector *cols;
    int ncols;
    bool inited;
    int events_sub;
    metric *events, *lag, *lag_max;
} M;

static bool name_ok(const char *s, bool label)
{
    if (!s || !*s) return false;
    if (label && s[0] == '_' && s[1] == '_') return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
        if (!alpha && !(p > s && c >= '0' && c <= '9')) return false;
    }
    return true;
}

static void family_free(metric *m)
{
    for (int i = 0; i < m->nseries; i++) {
        free(m->series[i].key);
        for (int j = 0; j < m->nlabels; j++)
            free(m->series[i].values[j]);
        free(m->series[i].values);
    }
    free(m->series);
    for (int j = 0; j < m->nlabels; j++)
        free(m->labels[j]);
    free(m->name);
    free(m->help);
    free(m);
}

/* Split "a,b" into names; false on a bad name or too many. */
static bool parse_labels(const char *labels, char **out, int *n)
{
    *n = 0;
    if (!labels || !*labels) return true;
    char *copy = cw_strdup(labels);
    bool ok = true;
    for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (*n == MAX_LABELS || !name_ok(t, true)) {
            ok = false;
            break;
        }
        out[(*n)++] = cw_strdup(t);
    }
    free(copy);
    if (!ok) {
        for (int i = 0; i < *n; i++)
            free(out[i]);
        *n = 0;
    }
    return ok;
}

static metric *declare(const char *name, const char *help, const char *labels, enum kind kind)
{
    char *ln[MAX_LABELS];
    int n;
    if (!name_ok(name, false) || !parse_labels(labels, ln, &n)) {
        log_error("metrics", "bad metric name or labels: %s {%s}", name ? name : "(null)",
                  labels ? labels : "");
        return NULL;
    }
    for (int i = 0; i < M.nfams; i++) {
        metric *m = M.fams[i];
        if (strcmp(m->name, name) != 0) continue;
        bool same = m->kind == kind && m->nlabels == n;
        for (int j = 0; same && j < n; j++)
            same = strcmp(m->labels[j], ln[j]) == 0;
        for (int j = 0; j < n; j++)
            free(ln[j]);
        if (!same) {
            log_error("metrics", "metric %s declared twice with different kinds or labels", name);
            return NULL;
        }
        return m;
    }
    metric *m = cw_calloc(1, sizeof *m);
    m->name = cw_strdup(name);
    m->help = cw_strdup(help ? help : "");
    m->kind = kind;
    m->nlabels = n;
    memcpy(m->labels, ln, sizeof(char *) * (size_t)n);
    M.fams = cw_realloc(M.fams, sizeof *M.fams * (size_t)(M.nfams + 1));
    M.fams[M.nfams++] = m;
    return m;
}

metric *metrics_counter(const char *name, const char *help, const char *labels)
{
    return declare(name, help, labels, COUNTER);
}

metric *metrics_gauge(const char *name, const char *help, const char *labels)
{
    return declare(name, help, labels, GAUGE);
}

static char *make_key(const metric *m, const char *const *values)
{
    cw_buf b;
    cw_buf_init(&b);
    cw_buf_puts(&b, "");
    for (int i = 0; i < m->nlabels; i++) {
        if (i) cw_buf_append(&b, "\x1f", 1);
        cw_buf_puts(&b, values[i] ? values[i] : "");
    }
    return cw_buf_steal(&b);
}

static struct series *find(metric *m, const char *const *values, bool create)
{
    char *key = make_key(m, values);
    for (int i = 0; i < m->nseries; i++)
        if (strcmp(m->series[i].key, key) == 0) {
            free(key);
            return &m->series[i];
        }
    if (!create) {
        free(key);
        return NULL;
    }
    if (m->nseries >= MAX_SERIES) {
        if (!m->overflow_logged)
            log_error("metrics", "%s: more than %d label sets; new ones are dropped", m->name,
                      MAX_SERIES);
        m->overflow_logged = true;
        free(key);
        return NULL;
    }
    if (m->nseries == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        m->series = cw_realloc(m->series, sizeof *m->series * (size_t)m->cap);
    }
    struct series *s = &m->series[m->nseries++];
    s->key = key;
    s->values = cw_calloc((size_t)CW_MAX(m->nlabels, 1), sizeof(char *));
    for (int i = 0; i < m->nlabels; i++)
        s->values[i] = cw_strdup(values[i] ? values[i] : "");
    s->v = 0;
    return s;
}

void metrics_addv(metric *m, double delta, const char *const *values)
{
    if (!m || (m->kind == COUNTER && !(delta >= 0))) return;
    struct series *s = find(m, values, true);
    if (s) s->v += delta;
}

void metrics_setv(metric *m, double value, const char *const *values)
{
    if (!m) return;
    struct series *s = find(m, values, true);
    if (s) s->v = value;
}

double metrics_getv(metric *m, const char *const *values)
{
    if (!m) return 0;
    struct series *s = find(m, values, false);
    return s ? s->v : 0;
}

/* Collect the variadic label values of m into out. */
#define LABEL_ARGS(m, last, out)                                                                   \
    const char *out[MAX_LABELS] = {0};                                                             \
    do {                                                                                           \
        va_list ap;                                                                                \
        va_start(ap, last);                                                                        \
        for (int i_ = 0; m && i_ < m->nlabels; i_++)                                               \
            out[i_] = va_arg(ap, const char *);                                                    \
        va_end(ap);                                                                                \
    } while (0)

void metrics_add(metric *m, double delta, ...)
{
    LABEL_ARGS(m, delta, v);
    metrics_addv(m, delta, v);
}

void metrics_set(metric *m, double value, ...)
{
    LABEL_ARGS(m, value, v);
    metrics_setv(m, value, v);
}

double metrics_get(metric *m, ...)
{
    LABEL_ARGS(m, m, v);
    return metrics_getv(m, v);
}

void metrics_remove(metric *m, ...)
{
    if (!m) return;
    LABEL_ARGS(m, m, v);
    struct series *s = find(m, v, false);
    if (!s) return;
    int i = (int)(s - m->series);
    free(s->key);
    for (int j = 0; j < m->nlabels; j++)
        free(s->values[j]);
    free(s->values);
    memmove(&m->series[i], &m->series[i + 1], sizeof *s * (size_t)(m->nseries - i - 1));
    m->nseries--;
}

void metrics_clear(metric *m)
{
    if (!m) return;
    for (int i = 0; i < m->nseries; i++) {
        free(m->series[i].key);
        for (int j = 0; j < m->nlabels; j++)
            free(m->series[i].values[j]);
        free(m->series[i].values);
    }
    m->nseries = 0;
}

void metrics_on_collect(metrics_collect_fn fn, void *arg)
{
    M.cols = cw_realloc(M.cols, sizeof *M.cols * (size_t)(M.ncols + 1));
    M.cols[M.ncols].fn = fn;
    M.cols[M.ncols].arg = arg;
    M.ncols++;
}

/* ---- rendering ---- */

static void put_escaped(cw_buf *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            cw_buf_puts(b, "\\\\");
        else if (*s == '\n')
            cw_buf_puts(b, "\\n");
        else if (quote && *s == '"')
            cw_buf_puts(b, "\\\"");
        else
            cw_buf_append(b, s, 1);
    }
}

static void put_value(cw_buf *b, double v)
{
    if (isnan(v))
        cw_buf_puts(b, "NaN");
    else if (isinf(v))
        cw_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        cw_buf_printf(b, "%.0f", v);
    else {
        /* the shortest form that reads back as the same number */
        char tmp[40];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof tmp, "%.*g", prec, v);
            if (strtod(tmp, NULL) == v) break;
        }
        cw_buf_puts(b, tmp);
    }
}

void metrics_render(cw_buf *out)
{
    for (int i = 0; i < M.ncols; i++)
        M.cols[i].fn(M.cols[i].arg);
    for (int f = 0; f < M.nfams; f++) {
        metric *m = M.fams[f];
        cw_buf_printf(out, "# HELP %s ", m->name);
        put_escaped(out, m->help, false);
        cw_buf_printf(out, "\n# TYPE %s %s\n", m->name, m->kind == COUNTER ? "counter" : "gauge");
        for (int i = 0; i < m->nseries; i++) {
            struct series *s = &m->series[i];
            cw_buf_puts(out, m->name);
            if (m->nlabels) {
                cw_buf_puts(out, "{");
                for (int j = 0; j < m->nlabels; j++) {
                    cw_buf_printf(out, "%s%s=\"", j ? "," : "", m->labels[j]);
                    put_escaped(out, s->values[j], true);
                    cw_buf_puts(out, "\"");
                }
                cw_buf_puts(out, "}");
            }
            cw_buf_puts(out, " ");
            put_value(out, s->v);
            cw_buf_puts(out, "\n");
        }
    }
}

/* ---- the shared families ---- */

static void collect_loop(void *arg)
{
    metrics_set(M.lag, loop_lag_ms_last());
    metrics_set(M.lag_max, loop_lag_ms_max());
}

static void on_event(const cw_event *ev, void *arg)
{
    char kind[48];
    cw_strlcpy(kind, ev->type, sizeof kind);
    char *dot = strchr(kind, '.');
    if (dot) *dot = '\0';
    metrics_add(M.events, 1, kind);
}

void metrics_init(void)
{
    if (M.inited) return;
    M.inited = true;
    metrics_counter("cw_calls_total", "Calls started", "domain,direction");
    metrics_gauge("cw_calls_active", "Calls in progress", "domain");
    metrics_gauge("cw_registrations", "Registered SIP contacts", "domain");
    metrics_gauge("cw_queue_waiting", "Callers waiting in a queue", "domain,queue");
    metrics_gauge("cw_agents", "Agents by state", "domain,state");
    metrics_counter("cw_http_requests_total", "API requests answered", "method,status");
    M.events = metrics_counter("cw_events_total", "Events emitted, by kind", "kind");
    M.lag = metrics_gauge("cw_loop_lag_ms", "Core loop wake-up delay on its last probe, ms", NULL);
    M.lag_max = metrics_gauge("cw_loop_lag_max_ms", "Worst core loop wake-up delay, ms", NULL);
    metrics_on_collect(collect_loop, NULL);
    M.events_sub = events_subscribe("", on_event, NULL);
}

void metrics_shutdown(void)
{
    if (M.events_sub) events_unsubscribe(M.events_sub);
    for (int i = 0; i < M.nfams; i++)
        family_free(M.fams[i]);
    free(M.fams);
    free(M.cols);
    memset(&M, 0, sizeof M);
}
