/*
 * report.c - cwload's figures: percentiles, the table for people and the
 * JSON for scripts (bench/run reads it). Runs once, after every thread has
 * stopped.
 */
#include "cwload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void samples_add(struct samples *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) abort();
    }
    s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile (p in 0..100); NAN without samples. */
static double pct_of(double *v, size_t n, double p)
{
    if (!n) return NAN;
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}

double samples_pct(struct samples *s, double p)
{
    qsort(s->v, s->n, sizeof *s->v, cmp_double);
    return pct_of(s->v, s->n, p);
}

static double hist_pct(const uint64_t *h, int n, double p)
{
    uint64_t total = 0;
    for (int i = 0; i <= n; i++)
        total += h[i];
    if (!total) return NAN;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)total), acc = 0;
    if (rank < 1) rank = 1;
    for (int i = 0; i <= n; i++) {
        acc += h[i];
        if (acc >= rank) return (i + 1) * 0.1; /* bucket upper edge, ms */
    }
    return n * 0.1;
}

static double hist_max(const uint64_t *h, int n)
{
    for (int i = n; i >= 0; i--)
        if (h[i]) return (i + 1) * 0.1;
    return NAN;
}

struct pcts {
    double p50, p99, max;
    size_t n;
};

static struct pcts pcts_of(struct samples *s)
{
    struct pcts r = {NAN, NAN, NAN, s->n};
    if (s->n) {
        r.p50 = samples_pct(s, 50);
        r.p99 = samples_pct(s, 99);
        r.max = s->v[s->n - 1];
    }
    return r;
}

static const char *scenario_name(void)
{
    static const char *const n[] = {"register", "ivr", "queue", "bridge"};
    return n[O.sc];
}

static void json_num(FILE *f, const char *key, double v, bool comma)
{
    if (isnan(v))
        fprintf(f, "\"%s\": null%s", key, comma ? ", " : "");
    else
        fprintf(f, "\"%s\": %.3f%s", key, v, comma ? ", " : "");
}

static void json_pcts(FILE *f, const char *key, struct pcts p)
{
    fprintf(f, "  \"%s\": {", key);
    json_num(f, "p50", p.p50, true);
    json_num(f, "p99", p.p99, true);
    json_num(f, "max", p.max, true);
    fprintf(f, "\"n\": %zu},\n", p.n);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void fmt(char *buf, size_t n, double v, const char *unit)
{
    if (isnan(v))
        snprintf(buf, n, "-");
    else if (v >= 100)
        snprintf(buf, n, "%.0f%s", v, unit);
    else
        snprintf(buf, n, "%.2f%s", v, unit);
}

void report_print(bool json)
{
    struct pcts setup = pcts_of(&ST.setup_ms), reg = pcts_of(&ST.reg_ms),
                refresh = pcts_of(&ST.refresh_ms), offer = pcts_of(&ST.offer_ms);
    struct samples jit = {RT.jitter_ms, RT.njitter, RT.njitter};
    struct pcts jitter = pcts_of(&jit);
    double d50 = hist_pct(RT.pdv_hist, PDV_BUCKETS, 50),
           d99 = hist_pct(RT.pdv_hist, PDV_BUCKETS, 99), dmax = hist_max(RT.pdv_hist, PDV_BUCKETS);
    double loss = RT.rx_expected ? 100.0 * (double)RT.rx_lost / (double)RT.rx_expected : 0;
    double late = RT.rx_packets ? 100.0 * (double)RT.rx_late / (double)RT.rx_packets : 0;
    double cpu = ST.elapsed_s > 0 ? 100.0 * ST.cpu_s / ST.elapsed_s : 0;

    if (json) {
        FILE *f = stdout;
        fprintf(f,
                "{\n  \"scenario\": \"%s\", \"server\": \"%s:%d\", \"domain\": ", scenario_name(),
                O.server_ip, O.server_port);
        json_str(f, O.domain);
        fprintf(f, ", \"to\": ");
        json_str(f, O.to);
        fprintf(f, ",\n  \"rate\": %.3f, \"duration_s\": %.3f, \"elapsed_s\": %.3f, ", O.rate,
                O.duration_s, ST.elapsed_s);
        fprintf(f, "\"cpu_s\": %.3f, \"load1_at_start\": %.2f,\n", ST.cpu_s, ST.load1);
        fprintf(f,
                "  \"calls\": {\"attempted\": %llu, \"answered\": %llu, \"completed\": %llu, "
                "\"failed\": %llu, \"throttled\": %llu, \"peak_concurrent\": %d, "
                "\"dtmf_calls\": %llu},\n",
                (unsigned long long)ST.attempted, (unsigned long long)ST.answered,
                (unsigned long long)ST.completed, (unsigned long long)ST.failed,
                (unsigned long long)ST.throttled, ST.peak_concurrent,
                (unsigned long long)ST.dtmf_calls);
        json_pcts(f, "setup_ms", setup);
        json_pcts(f, "offer_ms", offer);
        fprintf(f,
                "  \"registrations\": {\"attempted\": %llu, \"ok\": %llu, \"failed\": %llu, "
                "\"refresh_ok\": %llu, \"refresh_failed\": %llu},\n",
                (unsigned long long)ST.reg_attempted, (unsigned long long)ST.reg_ok,
                (unsigned long long)ST.reg_failed, (unsigned long long)ST.refresh_ok,
                (unsigned long long)ST.refresh_failed);
        json_pcts(f, "register_ms", reg);
        json_pcts(f, "refresh_ms", refresh);
        fprintf(f,
                "  \"agent_calls\": {\"offered\": %llu, \"answered\": %llu},\n"
                "  \"rtp\": {\"rx_packets\": %llu, \"expected\": %llu, \"lost\": %llu, "
                "\"loss_pct\": %.4f, \"late\": %llu, \"late_pct\": %.4f, \"late_ms\": %d, "
                "\"duplicates\": %llu, \"malformed\": %llu, \"tx_packets\": %llu, "
                "\"tx_errors\": %llu, \"dtmf_digits\": %llu, \"ticks\": %llu, "
                "\"ticks_late\": %llu, \"ticks_skipped\": %llu, \"ts_jumps\": %llu},\n",
                (unsigned long long)ST.callee_calls, (unsigned long long)ST.callee_answered,
                (unsigned long long)RT.rx_packets, (unsigned long long)RT.rx_expected,
                (unsigned long long)RT.rx_lost, loss, (unsigned long long)RT.rx_late, late,
                O.late_ms, (unsigned long long)RT.rx_dup, (unsigned long long)RT.rx_bad,
                (unsigned long long)RT.tx_packets, (unsigned long long)RT.tx_errors,
                (unsigned long long)RT.dtmf_digits, (unsigned long long)RT.ticks,
                (unsigned long long)RT.ticks_late, (unsigned long long)RT.ticks_skipped,
                (unsigned long long)RT.ts_jumps);
        json_pcts(f, "jitter_ms", jitter);
        fprintf(f, "  \"pdv_ms\": {");
        json_num(f, "p50", d50, true);
        json_num(f, "p99", d99, true);
        json_num(f, "max", dmax, false);
        fprintf(f, "},\n");
        fprintf(f,
                "  \"audio\": {\"caller\": {\"sessions\": %llu, \"judged\": %llu, \"no_audio\": "
                "%llu, \"no_tone\": %llu}, \"agent\": {\"sessions\": %llu, \"judged\": %llu, "
                "\"no_audio\": %llu, \"no_tone\": %llu}},\n",
                (unsigned long long)RT.role[0].sessions, (unsigned long long)RT.role[0].judged,
                (unsigned long long)RT.role[0].no_audio, (unsigned long long)RT.role[0].no_tone,
                (unsigned long long)RT.role[1].sessions, (unsigned long long)RT.role[1].judged,
                (unsigned long long)RT.role[1].no_audio, (unsigned long long)RT.role[1].no_tone);
        fprintf(f, "  \"failures\": {");
        for (int i = 0; i < ST.ncauses; i++) {
            json_str(f, ST.causes[i].what);
            fprintf(f, ": %llu%s", (unsigned long long)ST.causes[i].n,
                    i + 1 < ST.ncauses ? ", " : "");
        }
        fprintf(f, "}\n}\n");
        return;
    }

    char a[32], b[32], c[32];
    printf("cwload %s -> %s:%d, domain %s", scenario_name(), O.server_ip, O.server_port, O.domain);
    if (O.sc != SC_REGISTER)
        printf(", %s, %.1f calls/s for %.0f s", O.sc == SC_BRIDGE ? "to the endpoints" : O.to,
               O.rate, O.duration_s);
    printf("\n");
    printf("  %-14s %.1f s, cwload CPU %.1f s (%.0f %% of a core), load average %.2f at start\n",
           "run", ST.elapsed_s, ST.cpu_s, cpu, ST.load1);
    if (O.sc != SC_REGISTER) {
        printf("  %-14s attempted %llu, answered %llu, completed %llu, failed %llu, peak "
               "concurrent %d\n",
               "calls", (unsigned long long)ST.attempted, (unsigned long long)ST.answered,
               (unsigned long long)ST.completed, (unsigned long long)ST.failed, ST.peak_concurrent);
        if (ST.throttled)
            printf("  %-14s %llu launches skipped (at the concurrency cap, or no free endpoint)\n",
                   "", (unsigned long long)ST.throttled);
        fmt(a, sizeof a, setup.p50, ""), fmt(b, sizeof b, setup.p99, ""),
            fmt(c, sizeof c, setup.max, "");
        printf("  %-14s p50 %s  p99 %s  max %s  (INVITE -> 200, challenge included; %zu)\n",
               "setup ms", a, b, c, setup.n);
    }
    if (O.sc == SC_QUEUE) {
        fmt(a, sizeof a, offer.p50, ""), fmt(b, sizeof b, offer.p99, ""),
            fmt(c, sizeof c, offer.max, "");
        printf("  %-14s p50 %s  p99 %s  max %s  (caller's 200 -> agent's INVITE, agent free; "
               "%zu)\n",
               "offer ms", a, b, c, offer.n);
    }
    if (ST.reg_attempted) {
        fmt(a, sizeof a, reg.p50, ""), fmt(b, sizeof b, reg.p99, "");
        printf("  %-14s ok %llu of %llu, failed %llu; ms p50 %s p99 %s\n", "registrations",
               (unsigned long long)ST.reg_ok, (unsigned long long)ST.reg_attempted,
               (unsigned long long)ST.reg_failed, a, b);
        if (ST.refresh_ok || ST.refresh_failed) {
            fmt(a, sizeof a, refresh.p50, ""), fmt(b, sizeof b, refresh.p99, "");
            printf("  %-14s ok %llu, failed %llu; ms p50 %s p99 %s\n", "refreshes",
                   (unsigned long long)ST.refresh_ok, (unsigned long long)ST.refresh_failed, a, b);
        }
    }
    if (O.sc != SC_REGISTER) {
        if (ST.callee_calls)
            printf("  %-14s offered %llu, answered %llu\n", "agent calls",
                   (unsigned long long)ST.callee_calls, (unsigned long long)ST.callee_answered);
        printf("  %-14s %llu packets, lost %llu (%.3f %%), late %llu (%.3f %%, |D| > %d ms), "
               "duplicates %llu\n",
               "rtp received", (unsigned long long)RT.rx_packets, (unsigned long long)RT.rx_lost,
               loss, (unsigned long long)RT.rx_late, late, O.late_ms,
               (unsigned long long)RT.rx_dup);
        if (RT.ts_jumps)
            printf("  %-14s %llu timestamp jumps of more than 10 s within one SSRC (not timed)\n",
                   "", (unsigned long long)RT.ts_jumps);
        fmt(a, sizeof a, jitter.p50, ""), fmt(b, sizeof b, jitter.p99, ""),
            fmt(c, sizeof c, jitter.max, "");
        printf("  %-14s p50 %s  p99 %s  max %s  (RFC 3550 J of each call at its end; %zu)\n",
               "jitter ms", a, b, c, jitter.n);
        fmt(a, sizeof a, d50, ""), fmt(b, sizeof b, d99, ""), fmt(c, sizeof c, dmax, "");
        printf("  %-14s p50 %s  p99 %s  max %s  (per packet, 0.1 ms steps)\n", "|D| ms", a, b, c);
        printf("  %-14s callers judged %llu: no audio %llu, no far tone %llu", "audio",
               (unsigned long long)RT.role[0].judged, (unsigned long long)RT.role[0].no_audio,
               (unsigned long long)RT.role[0].no_tone);
        if (RT.role[1].sessions)
            printf("; agents judged %llu: no audio %llu, no far tone %llu",
                   (unsigned long long)RT.role[1].judged, (unsigned long long)RT.role[1].no_audio,
                   (unsigned long long)RT.role[1].no_tone);
        printf("\n");
        printf("  %-14s %llu packets, %llu errors, %llu RFC 4733 digits; ticks %llu, late %llu, "
               "skipped %llu\n",
               "rtp sent", (unsigned long long)RT.tx_packets, (unsigned long long)RT.tx_errors,
               (unsigned long long)RT.dtmf_digits, (unsigned long long)RT.ticks,
               (unsigned long long)RT.ticks_late, (unsigned long long)RT.ticks_skipped);
    }
    if (!ST.ncauses) {
        printf("  %-14s none\n", "failures");
        return;
    }
    printf("  %-14s\n", "failures");
    for (int i = 0; i < ST.ncauses; i++)
        printf("  %14llu  %s\n", (unsigned long long)ST.causes[i].n, ST.causes[i].what);
}
