/*
 * acd_bench.c - how fast the ACD decides who gets a call, at contact-center
 * scale: 10,000 agents, 1,000 queues, 100,000 callers waiting.
 *
 * The real acd.c and strategy.c run on the real core loop, store (SQLite in
 * memory, as the unit tests use it) and event bus; the call layer, SIP
 * presence and media are the thin fakes below, as in the ACD unit test, so
 * the figures are the ACD's own work: choosing, state changes written
 * through to the store, events, queue-log calls.
 *
 * Each agent is a member of two queues (its own at priority 1, another at
 * priority 2), so a queue has 20 members. All agents log in; 110,000 callers
 * join round the queues: the first 10,000 are offered at once and answered,
 * the other 100,000 wait. Then, repeatedly, a random talking agent's call
 * ends, and the decision is timed from that hang-up to the moment the ACD
 * dials the next caller's offer to that agent (the dispatch runs from the
 * loop's kick event, as in the daemon). The offer is answered and a new
 * caller joins, so 100,000 keep waiting. Printed: decisions a second, the
 * decision latency p50/p99/max, the whole cycle's rate, and join latency.
 *
 *   acd_bench [-a agents] [-q queues] [-w waiting] [-n decisions]
 */
#include "acd/acd.h"
#include "base/cw.h"
#include "cdr/cdr.h"
#include "events/events.h"
#include "log/log.h"
#include "loop/loop.h"
#include "loop/timer.h"
#include "store/store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---------------- fake call layer ---------------- */

struct call {
    char uuid[37];
    int64_t domain;
    call_leg *a;
    call_leg *bridged;
    int refs;
};

struct call_leg {
    call *c;
    enum leg_state state;
    int64_t user_id;
    struct leg_watch w;
};

static int64_t offer_ns; /* when the last offer was dialled */
static call_leg *last_offer;
static int64_t offers;

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

call_leg *call_dial(call *c, enum leg_role role, const struct dial_target *t,
                    const struct leg_watch *w)
{
    offer_ns = mono_ns();
    call_leg *l = cw_calloc(1, sizeof *l);
    l->c = c;
    l->state = LEG_RINGING;
    l->user_id = t->user_id;
    l->w = *w;
    last_offer = l;
    offers++;
    return l;
}

int call_bridge(call *c, call_leg *b)
{
    c->bridged = b;
    return 0;
}

void leg_hangup(call_leg *l, enum sip_cause cause)
{
    if (l->state == LEG_ENDED) return;
    bool up = l->state == LEG_UP;
    l->state = LEG_ENDED;
    if (l->w.ended) l->w.ended(l, cause, up, l->w.arg);
}

/* callbacks (agent first) are not part of the benchmark: never dialled */
call *call_originate(int64_t domain_id, const struct dial_target *t, const char *caller,
                     const char *caller_name, const struct leg_watch *w)
{
    return NULL;
}

int call_target(call *c, const char *t, int timeout_s, struct dial_target *out, const char **why)
{
    *why = "not in the benchmark";
    return -1;
}

void call_set_parties(call *c, const char *a_number, const char *a_name) {}

void call_hangup(call *c, enum sip_cause cause)
{
    leg_hangup(c->a, cause);
}

void leg_set_watch(call_leg *l, const struct leg_watch *w)
{
    l->w = *w;
}

int call_answer(call *c)
{
    c->a->state = LEG_UP;
    return 0;
}

void call_mark_state(call *c, const char *s) {}

void call_log(call *c, const char *what, const char *fmt, ...) {}

void call_set_queue(call *c, int64_t q, int64_t agent, int wait_s) {}

const char *call_uuid(const call *c)
{
    return c->uuid;
}

int64_t call_domain(const call *c)
{
    return c->domain;
}

const char *call_caller_number(const call *c)
{
    return "79001112233";
}

call_leg *call_a_leg(call *c)
{
    return c->a;
}

enum leg_state leg_state(const call_leg *l)
{
    return l->state;
}

media_id leg_media(const call_leg *l)
{
    return 1;
}

void call_ref(call *c)
{
    c->refs++;
}

void call_unref(call *c)
{
    c->refs--;
}

int media_moh(media_id id, const char *stream, uint32_t tag)
{
    return 0;
}

int media_play(media_id id, const char *const *files, int nfiles, bool loop, uint32_t tag)
{
    return 0;
}

int media_play_tone(media_id id, enum media_tone tone, uint32_t tag)
{
    return 0;
}

int call_say_words(const char *lang, const char *kind, int64_t value, char **files, int max)
{
    return 0;
}

bool sip_user_online(int64_t user_id)
{
    return true;
}

const char *sip_cause_name(enum sip_cause c)
{
    return "normal";
}

void acd_api_init(void) {}

static int64_t qlog_rows;

void cdr_queue_log(int64_t domain_id, int64_t queue_id, const char *call_uuid, int64_t agent_id,
                   const char *event, json_t *data)
{
    qlog_rows++; /* the real one appends to a batch written off the hot path */
    json_decref(data);
}

/* ---------------- timers: kept, never due (no max wait, no wrap-up) ---------------- */

struct cw_timer {
    cw_timer_fn fn;
    void *arg;
};

cw_timer *cw_timer_new(cw_timer_fn fn, void *arg)
{
    cw_timer *t = cw_calloc(1, sizeof *t);
    t->fn = fn;
    t->arg = arg;
    return t;
}

void cw_timer_start(cw_timer *t, int64_t ms) {}

void cw_timer_stop(cw_timer *t) {}

void cw_timer_free(cw_timer *t)
{
    free(t);
}

/* ---------------- the bench ---------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(int64_t *v, int n, double p)
{
    int rank = (int)ceil(p / 100.0 * n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return (double)v[rank - 1] / 1000.0; /* us */
}

static void pump(void)
{
    event_base_loop(loop_base(), EVLOOP_NONBLOCK);
}

static void on_done(call *c, enum acd_result r, void *arg) {}

static int64_t ncalls;

static call *new_call(void)
{
    call *c = cw_calloc(1, sizeof *c);
    snprintf(c->uuid, sizeof c->uuid, "bench-%012lld", (long long)++ncalls);
    c->domain = 1;
    c->a = cw_calloc(1, sizeof *c->a);
    c->a->c = c;
    c->a->state = LEG_RINGING;
    c->refs = 1;
    return c;
}

static long rss_kib(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    int nagents = 10000, nqueues = 1000, nwaiting = 100000, ndecisions = 20000, opt;
    while ((opt = getopt(argc, argv, "a:q:w:n:")) != -1) {
        int v = atoi(optarg);
        if (v <= 0) {
            fprintf(stderr, "acd_bench: -%c wants a positive number\n", opt);
            return 2;
        }
        if (opt == 'a')
            nagents = v;
        else if (opt == 'q')
            nqueues = v;
        else if (opt == 'w')
            nwaiting = v;
        else if (opt == 'n')
            ndecisions = v;
        else {
            fprintf(stderr,
                    "usage: acd_bench [-a agents] [-q queues] [-w waiting] [-n decisions]\n");
            return 2;
        }
    }
    if (nagents < nqueues) {
        fprintf(stderr, "acd_bench: at least one agent a queue\n");
        return 2;
    }
    log_set_level("warn");
    char err[256];
    store *st;
    if (loop_init() || store_open(":memory:", &st, err, sizeof err)) {
        fprintf(stderr, "acd_bench: cannot start the loop or the store: %s\n", err);
        return 1;
    }
    store_set_main(st);
    int64_t t0 = mono_ns();
    store_begin(st);
    store_exec(st, "INSERT INTO domains(id, name, created_at) VALUES (1, 'bench.test', 0)", SA_END);
    int64_t *qid = cw_calloc((size_t)nqueues, sizeof *qid);
    for (int q = 0; q < nqueues; q++) {
        char name[32], ext[16];
        snprintf(name, sizeof name, "Queue %d", q);
        snprintf(ext, sizeof ext, "%d", 20000 + q);
        store_query_int(st, &qid[q],
                        "INSERT INTO call_groups(domain_id, name, extension, strategy, "
                        "wrapup_time, max_misses, created_at) VALUES (1, ?, ?, 'longest_idle', 0, "
                        "3, 0) RETURNING id",
                        SA_STR(name), SA_STR(ext), SA_END);
    }
    int64_t *uid = cw_calloc((size_t)nagents, sizeof *uid);
    for (int i = 0; i < nagents; i++) {
        char login[32], ext[16];
        snprintf(login, sizeof login, "agent%d", i);
        snprintf(ext, sizeof ext, "%d", 30000 + i);
        store_query_int(st, &uid[i],
                        "INSERT INTO users(domain_id, login, display_name, extension, role, "
                        "is_operator, password_hash, created_at, updated_at) VALUES (1, ?, ?, ?, "
                        "'operator', 1, 'x', 0, 0) RETURNING id",
                        SA_STR(login), SA_STR(login), SA_STR(ext), SA_END);
        int home = i % nqueues, other = (i * 7 + 3) % nqueues;
        store_exec(st, "INSERT INTO call_group_members(group_id, user_id, priority) VALUES (?,?,1)",
                   SA_INT(qid[home]), SA_INT(uid[i]), SA_END);
        if (other != home)
            store_exec(st,
                       "INSERT INTO call_group_members(group_id, user_id, priority) VALUES (?,?,2)",
                       SA_INT(qid[other]), SA_INT(uid[i]), SA_END);
    }
    store_commit(st);
    acd_init();
    for (int i = 0; i < nagents; i++)
        acd_agent_set_state(1, uid[i], AGENT_AVAILABLE, NULL);
    pump();

    /* callers: the first ones are offered at once and answered, the rest wait */
    call_leg **talk = cw_calloc((size_t)nagents, sizeof *talk); /* by agent index */
    int64_t *join_offer = cw_calloc((size_t)(nagents + nwaiting), sizeof *join_offer);
    int64_t *join_wait = cw_calloc((size_t)(nagents + nwaiting), sizeof *join_wait);
    int njo = 0, njw = 0;
    int64_t base_uid = uid[0];
    for (int i = 0; i < nagents; i++)
        if (uid[i] != base_uid + i) {
            fprintf(stderr, "acd_bench: user ids are not consecutive\n");
            return 1;
        }
    long rss0 = rss_kib();
    for (int k = 0; k < nagents + nwaiting; k++) {
        call *c = new_call();
        last_offer = NULL;
        int64_t a = mono_ns();
        if (acd_join(c, qid[k % nqueues], NULL, on_done, NULL)) {
            fprintf(stderr, "acd_bench: join failed\n");
            return 1;
        }
        pump();
        if (last_offer)
            join_offer[njo++] = offer_ns - a;
        else
            join_wait[njw++] = mono_ns() - a;
        if (last_offer) {
            call_leg *l = last_offer;
            l->state = LEG_UP;
            l->w.answered(l, l->w.arg);
            talk[l->user_id - base_uid] = l;
            pump();
        }
    }
    long rss1 = rss_kib();
    int64_t setup_ns = mono_ns() - t0;
    int talking = 0;
    for (int i = 0; i < nagents; i++)
        talking += talk[i] != NULL;

    /* the measured part: a call ends, the ACD offers that agent the next caller */
    int64_t *dec = cw_calloc((size_t)ndecisions, sizeof *dec);
    int64_t sum_dec = 0, missing = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    double c0 = cpu_s();
    int64_t cycle0 = mono_ns();
    for (int k = 0; k < ndecisions; k++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        int i = (int)(rng % (uint64_t)nagents);
        call_leg *l = talk[i];
        if (!l) {
            k--;
            continue;
        }
        talk[i] = NULL;
        last_offer = NULL;
        int64_t a = mono_ns();
        l->state = LEG_ENDED;
        l->w.ended(l, SIP_CAUSE_NORMAL, true, l->w.arg); /* the agent hangs up */
        pump();                                          /* the kick: dispatch */
        if (!last_offer) {
            missing++;
            continue;
        }
        dec[k] = offer_ns - a;
        sum_dec += dec[k];
        /* answered; a new caller keeps the waiting count */
        call_leg *o = last_offer;
        o->state = LEG_UP;
        o->w.answered(o, o->w.arg);
        talk[o->user_id - base_uid] = o;
        pump();
        call *c = new_call();
        acd_join(c, qid[(int)(rng >> 20) % nqueues], NULL, on_done, NULL);
        pump();
    }
    int64_t cycle_ns = mono_ns() - cycle0;
    double cpu = cpu_s() - c0;
    int n = ndecisions - (int)missing;
    qsort(dec, (size_t)ndecisions, sizeof *dec, cmp_i64);
    int64_t *d = dec + missing; /* the zeros of missing decisions sort first */
    qsort(join_offer, (size_t)njo, sizeof *join_offer, cmp_i64);
    qsort(join_wait, (size_t)njw, sizeof *join_wait, cmp_i64);
    if (!njo || !njw || !n) {
        fprintf(stderr, "acd_bench: nothing to measure (offers %d, waits %d, decisions %d)\n", njo,
                njw, n);
        return 1;
    }

    printf("acd_bench: %d agents, %d queues (%d members each, 2 queues an agent), %d callers "
           "waiting, strategy longest_idle\n",
           nagents, nqueues, 2 * nagents / nqueues, nwaiting);
    printf("  setup          %.1f s (store rows, %d logins, %d joins); %d agents talking\n",
           (double)setup_ns / 1e9, nagents, njo + njw, talking);
    printf("  decisions      %d timed (%lld without an offer)\n", n, (long long)missing);
    printf("  decision us    p50 %.1f  p99 %.1f  max %.1f   (agent's call ends -> next offer "
           "dialled)\n",
           pct(d, n, 50), pct(d, n, 99), (double)d[n - 1] / 1000.0);
    printf("  decisions/s    %.0f   (1 / mean decision time, one core)\n",
           sum_dec ? (double)n * 1e9 / (double)sum_dec : 0.0);
    printf("  cycle/s        %.0f   (hang-up, decision, answer, a new caller joining; CPU %.1f s "
           "of %.1f s)\n",
           (double)n * 1e9 / (double)cycle_ns, cpu, (double)cycle_ns / 1e9);
    printf("  join->offer us p50 %.1f  p99 %.1f  max %.1f   (a caller joins, an agent is free: "
           "acd_join to the offer dialled; %d)\n",
           pct(join_offer, njo, 50), pct(join_offer, njo, 99), (double)join_offer[njo - 1] / 1000.0,
           njo);
    printf("  join us        p50 %.1f  p99 %.1f  max %.1f   (a caller joins, all agents busy; "
           "%d)\n",
           pct(join_wait, njw, 50), pct(join_wait, njw, 99), (double)join_wait[njw - 1] / 1000.0,
           njw);
    printf("  memory         %.2f KiB a waiting caller (ACD + fake call), RSS %ld MiB\n",
           (double)(rss1 - rss0) / (double)(nagents + nwaiting), rss1 / 1024);
    printf("JSON {\"agents\": %d, \"queues\": %d, \"waiting\": %d, \"decisions\": %d, "
           "\"decision_us\": {\"p50\": %.2f, \"p99\": %.2f, \"max\": %.2f}, \"decisions_per_s\": "
           "%.0f, \"cycles_per_s\": %.0f, \"join_offer_us\": {\"p50\": %.2f, \"p99\": %.2f}, "
           "\"join_wait_us\": {\"p50\": %.2f, \"p99\": %.2f}}\n",
           nagents, nqueues, nwaiting, n, pct(d, n, 50), pct(d, n, 99), (double)d[n - 1] / 1000.0,
           sum_dec ? (double)n * 1e9 / (double)sum_dec : 0.0, (double)n * 1e9 / (double)cycle_ns,
           pct(join_offer, njo, 50), pct(join_offer, njo, 99), pct(join_wait, njw, 50),
           pct(join_wait, njw, 99));
    acd_shutdown();
    events_shutdown();
    store_close(st);
    loop_free();
    return missing ? 1 : 0;
}
