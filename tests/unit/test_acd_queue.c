/*
 * test_acd_queue.c - the ACD with a fake clock and fake edges.
 *
 * The real acd.c, the real store (SQLite in memory), the real event bus and
 * core loop; the call layer, SIP presence, media and timers are replaced by
 * the fakes below so each test decides when an agent's phone answers, fails
 * or hangs up, and when time passes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acd/acd.h"
#include "base/cw.h"
#include "cdr/cdr.h"
#include "events/events.h"
#include "loop/loop.h"
#include "loop/timer.h"
#include "store/store.h"

/* ---------------- fake call layer ---------------- */

struct call {
    char uuid[37];
    int64_t domain;
    char caller[32];
    call_leg *a;
    call_leg *bridged;
    int refs;
    bool answered;
    enum acd_result result;
    bool done;
};

struct call_leg {
    call *c;
    enum leg_state state;
    int64_t user_id;
    char number[64]; /* an outside number dialled */
    struct leg_watch w;
};

#define MAX_LEGS 256
static call_leg *legs[MAX_LEGS];
static int nlegs;
static call *calls[MAX_LEGS]; /* every fake call, freed at teardown */
static int ncalls;
static int64_t offline_user;

static call *fake_call(const char *caller)
{
    static int n;
    call *c = cw_calloc(1, sizeof *c);
    snprintf(c->uuid, sizeof c->uuid, "call-%d", ++n);
    c->domain = 1;
    cw_strlcpy(c->caller, caller, sizeof c->caller);
    c->a = cw_calloc(1, sizeof *c->a);
    c->a->c = c;
    c->a->state = LEG_RINGING;
    c->refs = 1;
    calls[ncalls++] = c;
    return c;
}

call_leg *call_dial(call *c, enum leg_role role, const struct dial_target *t,
                    const struct leg_watch *w)
{
    call_leg *l = cw_calloc(1, sizeof *l);
    l->c = c;
    l->state = LEG_RINGING;
    l->user_id = t->user_id;
    cw_strlcpy(l->number, t->uri, sizeof l->number);
    l->w = *w;
    legs[nlegs++] = l;
    return l;
}

int call_bridge(call *c, call_leg *b)
{
    c->bridged = b;
    return 0;
}

/* originated calls (callbacks): the A leg rings the agent */
static call *originated[16];
static int noriginated;

call *call_originate(int64_t domain_id, const struct dial_target *t, const char *caller,
                     const char *caller_name, const struct leg_watch *w)
{
    call *c = fake_call(caller);
    c->a->user_id = t->user_id;
    c->a->w = *w;
    legs[nlegs++] = c->a;
    originated[noriginated++] = c;
    return c;
}

int call_target(call *c, const char *t, int timeout_s, struct dial_target *out, const char **why)
{
    memset(out, 0, sizeof *out);
    out->kind = SIP_TARGET_TRUNK;
    cw_strlcpy(out->uri, t, sizeof out->uri);
    out->timeout_s = timeout_s;
    return 0;
}

void call_set_parties(call *c, const char *a_number, const char *a_name) {}

void call_hangup(call *c, enum sip_cause cause)
{
    for (int i = 0; i < nlegs; i++)
        if (legs[i]->c == c && legs[i] != c->a) leg_hangup(legs[i], cause);
    leg_hangup(c->a, cause);
}

void leg_hangup(call_leg *l, enum sip_cause cause)
{
    if (l->state == LEG_ENDED) return;
    bool up = l->state == LEG_UP;
    l->state = LEG_ENDED;
    if (l->w.ended) l->w.ended(l, cause, up, l->w.arg);
}

void leg_set_watch(call_leg *l, const struct leg_watch *w)
{
    l->w = *w;
}

int call_answer(call *c)
{
    c->answered = true;
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
    return c->caller;
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

/* what the waiting caller hears now: "moh:<stream>", "ringback" or "play" */
static char hearing[80];
static uint32_t play_tag; /* of the newest play, to report its end */

int media_moh(media_id id, const char *stream, uint32_t tag)
{
    snprintf(hearing, sizeof hearing, "moh:%s", stream);
    return 0;
}

int media_play_tone(media_id id, enum media_tone tone, uint32_t tag)
{
    cw_strlcpy(hearing, tone == MEDIA_TONE_RINGBACK ? "ringback" : "tone", sizeof hearing);
    return 0;
}

/* files the queue played, newest last */
static char played[64][256];
static int nplayed;

int media_play(media_id id, const char *const *files, int nfiles, bool loop, uint32_t tag)
{
    cw_strlcpy(hearing, "play", sizeof hearing);
    play_tag = tag;
    if (nplayed < 64) {
        played[nplayed][0] = '\0';
        for (int i = 0; i < nfiles; i++) {
            strncat(played[nplayed], files[i], 255 - strlen(played[nplayed]));
            strncat(played[nplayed], " ", 255 - strlen(played[nplayed]));
        }
        nplayed++;
    }
    return 0;
}

int call_say_words(const char *lang, const char *kind, int64_t value, char **files, int max)
{
    if (max < 1) return 0;
    files[0] = cw_sprintf("%s/%s_%lld", lang, kind, (long long)value);
    return 1;
}

bool sip_user_online(int64_t user_id)
{
    return user_id != offline_user;
}

const char *sip_cause_name(enum sip_cause c)
{
    return c == SIP_CAUSE_NO_ANSWER ? "no_answer" : "other";
}

void acd_api_init(void) {}

/* queue log rows, newest last, with their data */
static char qlog[256][64];
static json_t *qlog_data[256];
static int nqlog;

void cdr_queue_log(int64_t domain_id, int64_t queue_id, const char *call_uuid, int64_t agent_id,
                   const char *event, json_t *data)
{
    if (nqlog < 256) {
        qlog_data[nqlog] = data ? json_incref(data) : NULL;
        snprintf(qlog[nqlog++], sizeof qlog[0], "%s %s %lld", call_uuid, event,
                 (long long)agent_id);
    }
    json_decref(data);
}

/* ---------------- fake clock and timers ---------------- */

struct cw_timer {
    cw_timer_fn fn;
    void *arg;
    int64_t due; /* 0 = stopped */
};

static int64_t now_ms = 1000000;
static cw_timer *timers[256];
static int ntimers;

cw_timer *cw_timer_new(cw_timer_fn fn, void *arg)
{
    cw_timer *t = cw_calloc(1, sizeof *t);
    t->fn = fn;
    t->arg = arg;
    timers[ntimers++] = t;
    return t;
}

void cw_timer_start(cw_timer *t, int64_t ms)
{
    t->due = now_ms + ms;
}

void cw_timer_stop(cw_timer *t)
{
    if (t) t->due = 0;
}

void cw_timer_free(cw_timer *t)
{
    if (!t) return;
    for (int i = 0; i < ntimers; i++)
        if (timers[i] == t) timers[i] = timers[--ntimers];
    free(t);
}

static void pump(void)
{
    event_base_loop(loop_base(), EVLOOP_NONBLOCK);
}

/* Let seconds pass: the wall clock moves and due timers fire in order. */
static void advance(int seconds)
{
    for (int s = 0; s < seconds; s++) {
        now_ms += 1000;
        cw_clock_set_offset(cw_clock_offset() + 1);
        for (;;) {
            cw_timer *next = NULL;
            for (int i = 0; i < ntimers; i++)
                if (timers[i]->due && timers[i]->due <= now_ms &&
                    (!next || timers[i]->due < next->due))
                    next = timers[i];
            if (!next) break;
            next->due = 0;
            next->fn(next->arg);
            pump();
        }
        pump();
    }
}

/* ---------------- helpers ---------------- */

static store *st;
static int64_t qid;

static void on_done(call *c, enum acd_result r, void *arg)
{
    c->done = true;
    c->result = r;
}

static int64_t add_user(const char *ext, bool is_operator)
{
    int64_t id;
    store_query_int(
        st, &id,
        "INSERT INTO users(domain_id, login, display_name, extension, role, is_operator, "
        "password_hash, created_at, updated_at) VALUES (1, ?, ?, ?, ?, ?, 'x', 0, 0) "
        "RETURNING id",
        SA_STR(ext), SA_STR(ext), SA_STR(ext), SA_STR(is_operator ? "operator" : "subscriber"),
        SA_INT(is_operator), SA_END);
    return id;
}

static void add_member(int64_t queue, int64_t user, int priority)
{
    store_exec(st, "INSERT INTO call_group_members(group_id, user_id, priority) VALUES (?, ?, ?)",
               SA_INT(queue), SA_INT(user), SA_INT(priority), SA_END);
}

/* An operator, member of the test's queue. */
static int64_t add_agent(const char *ext, int priority)
{
    int64_t id = add_user(ext, true);
    add_member(qid, id, priority);
    return id;
}

static void set_queue(const char *strategy, int wrapup, int max_wait, int max_misses)
{
    store_exec(st,
               "UPDATE call_groups SET strategy = ?, wrapup_time = ?, max_wait = ?, max_misses = ? "
               "WHERE id = ?",
               SA_STR(strategy), SA_INT(wrapup), SA_INT(max_wait), SA_INT(max_misses), SA_INT(qid),
               SA_END);
}

static call *join(const char *caller, int priority)
{
    call *c = fake_call(caller);
    struct acd_join_opts o = {.priority = priority};
    assert_int_equal(acd_join(c, qid, &o, on_done, NULL), 0);
    pump();
    return c;
}

/* The leg now ringing for user (or NULL). */
static call_leg *ringing(int64_t user)
{
    for (int i = nlegs - 1; i >= 0; i--)
        if (legs[i]->user_id == user && legs[i]->state == LEG_RINGING) return legs[i];
    return NULL;
}

static int ringing_count(void)
{
    int n = 0;
    for (int i = 0; i < nlegs; i++)
        if (legs[i]->state == LEG_RINGING) n++;
    return n;
}

static void answer(call_leg *l)
{
    l->state = LEG_UP;
    l->w.answered(l, l->w.arg);
    pump();
}

static void no_answer_from(call_leg *l, enum sip_cause cause)
{
    l->state = LEG_ENDED;
    l->w.ended(l, cause, false, l->w.arg);
    pump();
}

static void hang_up_talk(call_leg *l)
{
    l->state = LEG_ENDED;
    l->w.ended(l, SIP_CAUSE_NORMAL, true, l->w.arg);
    pump();
}

static const char *state_of(int64_t user)
{
    json_t *j = acd_agent_json(1, user);
    static char buf[32];
    cw_strlcpy(buf, json_string_value(json_object_get(j, "state")), sizeof buf);
    json_decref(j);
    return buf;
}

/* The media layer reports the end of the newest play to the waiting caller. */
static void play_done(call *c)
{
    struct media_event ev = {.type = MEDIA_EV_PLAY_DONE, .tag = play_tag};
    acd_caller_media_event(c, &ev);
    pump();
}

/* The newest queue-log row of this event for this call, or NULL. */
static json_t *qlog_row(const call *c, const char *event)
{
    char key[80];
    snprintf(key, sizeof key, "%s %s ", c->uuid, event);
    for (int i = nqlog - 1; i >= 0; i--)
        if (!strncmp(qlog[i], key, strlen(key))) return qlog_data[i] ? qlog_data[i] : json_null();
    return NULL;
}

static int64_t add_queue(const char *name, const char *ext, const char *strategy)
{
    int64_t id;
    store_query_int(st, &id,
                    "INSERT INTO call_groups(domain_id, name, extension, strategy, created_at) "
                    "VALUES (1, ?, ?, ?, 0) RETURNING id",
                    SA_STR(name), SA_STR(ext), SA_STR(strategy), SA_END);
    return id;
}

static void set_int(const char *column, int64_t value)
{
    char *sql = cw_sprintf("UPDATE call_groups SET %s = ? WHERE id = ?", column);
    store_exec(st, sql, SA_INT(value), SA_INT(qid), SA_END);
    free(sql);
}

static call *join_queue(int64_t queue, const char *caller)
{
    call *c = fake_call(caller);
    assert_int_equal(acd_join(c, queue, &(struct acd_join_opts){0}, on_done, NULL), 0);
    pump();
    return c;
}

static void login(int64_t user)
{
    assert_int_equal(acd_agent_set_state(1, user, AGENT_AVAILABLE, NULL), 0);
    pump();
}

static int setup(void **state)
{
    char err[256];
    cw_clock_set_offset(0);
    assert_int_equal(loop_init(), 0);
    assert_int_equal(store_open(":memory:", &st, err, sizeof err), 0);
    store_set_main(st);
    store_exec(st, "INSERT INTO domains(id, name, created_at) VALUES (1, 'd.test', 0)", SA_END);
    store_query_int(st, &qid,
                    "INSERT INTO call_groups(domain_id, name, extension, strategy, created_at) "
                    "VALUES (1, 'Support', '200', 'longest_idle', 0) RETURNING id",
                    SA_END);
    nlegs = nqlog = ntimers = nplayed = noriginated = ncalls = 0;
    hearing[0] = '\0';
    play_tag = 0;
    offline_user = 0;
    acd_init();
    return 0;
}

static int teardown(void **state)
{
    acd_shutdown();
    events_shutdown();
    store_close(st);
    loop_free();
    for (int i = 0; i < ncalls; i++) {
        bool listed = false; /* an originated call's own leg is also in legs[] */
        for (int j = 0; j < nlegs && !listed; j++)
            listed = legs[j] == calls[i]->a;
        if (!listed) free(calls[i]->a);
        free(calls[i]);
    }
    for (int i = 0; i < nlegs; i++)
        free(legs[i]);
    for (int i = 0; i < nqlog; i++)
        json_decref(qlog_data[i]);
    return 0;
}

/* ---------------- tests ---------------- */

static void acd_longest_idle_offers_the_longest_free_agent(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    int64_t a1 = add_agent("101", 10), a2 = add_agent("102", 10), a3 = add_agent("103", 10);
    login(a2);
    advance(5);
    login(a3);
    login(a1);
    call *c = join("79001112233", 0);
    assert_non_null(ringing(a2)); /* free since 5 s before the others */
    assert_int_equal(ringing_count(), 1);
    assert_string_equal(state_of(a2), "ringing");
    answer(ringing(a2));
    assert_int_equal(c->bridged->user_id, a2);
    assert_string_equal(state_of(a2), "on_call_in");
    assert_false(c->done); /* done comes when the conversation ends */
    hang_up_talk(c->bridged);
    assert_true(c->done);
    assert_int_equal(c->result, ACD_ANSWERED);
    assert_string_equal(state_of(a2), "available");
    (void)a3;
}

static void acd_unanswered_offer_returns_caller_to_head(void **state)
{
    set_queue("linear", 0, 0, 3);
    int64_t a1 = add_agent("101", 10), a2 = add_agent("102", 10);
    login(a1);
    call *first = join("111", 0);
    call *second = join("222", 0);
    call_leg *l = ringing(a1);
    assert_non_null(l);
    assert_ptr_equal(l->c, first);
    /* a1 lets it ring out: the first caller is back at the head, ahead of the second */
    no_answer_from(l, SIP_CAUSE_NO_ANSWER);
    json_t *row = qlog_row(first, "ring_timeout");
    assert_non_null(row);
    assert_int_equal(json_integer_value(json_object_get(row, "misses")), 1);
    /* the next agent to become free is offered the first caller, not the second */
    int before = nlegs;
    login(a2);
    assert_true(nlegs > before);
    assert_int_equal(legs[before]->user_id, a2);
    assert_ptr_equal(legs[before]->c, first);
    assert_false(second->done);
}

static void acd_misses_in_a_row_set_agent_away(void **state)
{
    set_queue("linear", 0, 0, 2);
    int64_t a1 = add_agent("101", 10);
    login(a1);
    join("111", 0);
    no_answer_from(ringing(a1), SIP_CAUSE_NO_ANSWER);
    assert_string_equal(state_of(a1), "available");
    /* not rung again at once for the caller it just missed; a new round after a pause */
    assert_null(ringing(a1));
    advance(5);
    call_leg *again = ringing(a1);
    assert_non_null(again);
    no_answer_from(again, SIP_CAUSE_NO_ANSWER);
    assert_string_equal(state_of(a1), "away");
    assert_int_equal(ringing_count(), 0);
}

static void acd_vip_caller_overtakes(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    int64_t a1 = add_agent("101", 10);
    call *normal = join("111", 0);
    call *vip = join("999", 1);           /* lower value is served first */
    assert_int_equal(ringing_count(), 0); /* nobody logged in yet */
    login(a1);
    call_leg *l = ringing(a1);
    assert_non_null(l);
    assert_ptr_equal(l->c, vip);
    (void)normal;
}

static void acd_max_wait_ends_with_timeout(void **state)
{
    set_queue("longest_idle", 0, 30, 3);
    add_agent("101", 10); /* never logs in */
    call *c = join("111", 0);
    advance(29);
    assert_false(c->done);
    advance(1);
    assert_true(c->done);
    assert_int_equal(c->result, ACD_TIMEOUT);
}

static void acd_wrapup_delays_next_offer(void **state)
{
    set_queue("longest_idle", 10, 0, 3);
    int64_t a1 = add_agent("101", 10);
    login(a1);
    call *c1 = join("111", 0);
    answer(ringing(a1));
    hang_up_talk(c1->bridged);
    assert_string_equal(state_of(a1), "wrap_up");
    join("222", 0);
    assert_null(ringing(a1));
    advance(9);
    assert_null(ringing(a1));
    advance(1);
    assert_non_null(ringing(a1));
    assert_string_equal(state_of(a1), "ringing");
}

static void acd_break_and_offline_agents_get_no_offers(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    int64_t a1 = add_agent("101", 10), a2 = add_agent("102", 10), a3 = add_agent("103", 10);
    login(a1);
    login(a2);
    login(a3);
    assert_int_equal(acd_agent_set_state(1, a1, AGENT_BREAK, "lunch"), 0);
    offline_user = a2; /* phone not registered */
    join("111", 0);
    assert_null(ringing(a1));
    assert_null(ringing(a2));
    assert_non_null(ringing(a3));
}

static void acd_ring_all_rings_the_top_tier_together(void **state)
{
    set_queue("ring_all", 0, 0, 3);
    int64_t a1 = add_agent("101", 10), a2 = add_agent("102", 10), a3 = add_agent("103", 20);
    call *c = join("111", 0);
    assert_non_null(ringing(a1));
    assert_non_null(ringing(a2));
    assert_null(ringing(a3));
    answer(ringing(a2));
    assert_int_equal(ringing_count(), 0); /* the other offer was withdrawn */
    assert_int_equal(c->bridged->user_id, a2);
}

static void acd_caller_hangup_withdraws_offers(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    int64_t a1 = add_agent("101", 10);
    login(a1);
    call *c = join("111", 0);
    call_leg *l = ringing(a1);
    assert_non_null(l);
    c->a->state = LEG_ENDED;
    leg_hangup(l, SIP_CAUSE_NORMAL); /* the call layer ends every leg */
    acd_caller_gone(c);
    pump();
    assert_true(c->done);
    assert_int_equal(c->result, ACD_HANGUP);
    assert_string_equal(state_of(a1), "available");
    bool abandoned = false;
    for (int i = 0; i < nqlog; i++)
        if (strstr(qlog[i], "abandon")) abandoned = true;
    assert_true(abandoned);
}

static void acd_busy_agents_mean_position_and_wait_announcements(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    store_exec(st,
               "UPDATE call_groups SET announce_position = 1, avg_talk_time = 120, "
               "announce_interval = 30 WHERE id = ?",
               SA_INT(qid), SA_END);
    int64_t a1 = add_agent("101", 10);
    login(a1);
    call *first = join("111", 0);
    answer(ringing(a1)); /* the only agent is now busy */
    call *second = join("222", 0);
    assert_string_equal(hearing, "moh:default");
    advance(2);
    assert_int_equal(nplayed, 1);
    assert_string_equal(hearing, "play");
    /* in the domain's language (ru by default); second in line is next once the first
     * is talking; one agent at 120 s a call */
    assert_non_null(strstr(played[0], "ru/you_are_next"));
    assert_non_null(strstr(played[0], "ru/estimated_wait ru/duration_120"));
    play_done(second);
    assert_string_equal(hearing, "moh:default"); /* the music comes back */
    advance(30);
    assert_int_equal(nplayed, 2); /* and again every announce_interval */
    (void)first;
}

static call_leg *dialled(const char *number)
{
    for (int i = nlegs - 1; i >= 0; i--)
        if (!strcmp(legs[i]->number, number) && legs[i]->state == LEG_RINGING) return legs[i];
    return NULL;
}

static void acd_callback_keeps_the_place_and_rings_the_agent_first(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    store_exec(st, "UPDATE call_groups SET callback_key = '1' WHERE id = ?", SA_INT(qid), SA_END);
    int64_t a1 = add_agent("101", 10);
    call *first = join("79001112233", 0);
    call *second = join("222", 0);
    /* the first caller presses 1: done with "callback", the call may end */
    struct media_event dt = {.type = MEDIA_EV_DTMF, .digit = '1'};
    acd_caller_media_event(first, &dt);
    pump();
    assert_true(first->done);
    assert_int_equal(first->result, ACD_CALLBACK);
    /* when an agent is free, the callback is first in line: the agent is rung by a new call */
    login(a1);
    assert_int_equal(noriginated, 1);
    call *cb = originated[0];
    assert_int_equal(cb->a->user_id, a1);
    assert_ptr_equal(ringing(a1), cb->a); /* the callback, not the second caller */
    assert_false(second->done);
    /* the agent answers: the customer's number is dialled and bridged on answer */
    answer(cb->a);
    call_leg *cust = dialled("79001112233");
    assert_non_null(cust);
    assert_string_equal(state_of(a1), "on_call_out");
    answer(cust);
    assert_ptr_equal(cb->bridged, cust);
    hang_up_talk(cust);
    assert_int_equal(cb->a->state, LEG_ENDED); /* the agent's call ends with the customer's */
    /* the agent is free again and offered the second caller, who waited all along */
    assert_string_equal(state_of(a1), "ringing");
    call_leg *l = ringing(a1);
    assert_non_null(l);
    assert_ptr_equal(l->c, second);
    bool requested = false, answered = false;
    for (int i = 0; i < nqlog; i++) {
        if (strstr(qlog[i], "callback_request")) requested = true;
        if (strstr(qlog[i], " answer ")) answered = true;
    }
    assert_true(requested && answered);
}

static void acd_unanswered_callback_is_retried_later(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    store_exec(st, "UPDATE call_groups SET callback_key = '1' WHERE id = ?", SA_INT(qid), SA_END);
    int64_t a1 = add_agent("101", 10);
    login(a1);
    store_exec(st, "UPDATE agents SET state = 'break' WHERE user_id = ?", SA_INT(a1), SA_END);
    assert_int_equal(acd_agent_set_state(1, a1, AGENT_BREAK, "x"), 0);
    call *c = join("79005550000", 0);
    struct media_event dt = {.type = MEDIA_EV_DTMF, .digit = '1'};
    acd_caller_media_event(c, &dt);
    pump();
    login(a1);
    answer(originated[0]->a);
    no_answer_from(dialled("79005550000"), SIP_CAUSE_NO_ANSWER); /* the customer does not answer */
    assert_string_equal(state_of(a1), "available");
    assert_int_equal(noriginated, 1); /* not at once */
    advance(59);
    assert_int_equal(noriginated, 1);
    advance(1);
    assert_int_equal(noriginated, 2); /* tried again after a minute */
}

static void acd_leave_empty_sends_callers_away_when_the_last_agent_logs_out(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    store_exec(st, "UPDATE call_groups SET leave_empty = 1 WHERE id = ?", SA_INT(qid), SA_END);
    int64_t a1 = add_agent("101", 10);
    login(a1);
    assert_int_equal(acd_agent_set_state(1, a1, AGENT_BREAK, "coffee"), 0);
    call *c = join("111", 0);
    assert_false(c->done); /* a logged-in agent on a break: keep waiting */
    assert_int_equal(acd_agent_set_state(1, a1, AGENT_LOGGED_OUT, NULL), 0);
    pump();
    assert_true(c->done);
    assert_int_equal(c->result, ACD_EMPTY);
}

static void acd_tier_escalation_opens_lower_priorities_after_the_set_wait(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    set_int("tier_escalation", 10);
    int64_t a1 = add_agent("101", 1), a2 = add_agent("102", 2), a3 = add_agent("103", 3);
    login(a1);
    login(a2);
    login(a3);
    call *first = join("111", 0);
    assert_int_equal(ringing_count(), 1);
    answer(ringing(a1)); /* the top tier is busy */
    call *second = join("222", 0);
    advance(9);
    assert_int_equal(ringing_count(), 0); /* priority 2 waits 1 x 10 s */
    advance(1);
    call_leg *l = ringing(a2);
    assert_non_null(l);
    assert_ptr_equal(l->c, second);
    assert_null(ringing(a3));
    answer(l);
    /* priority 3 is two steps down: 20 s of this caller's own wait */
    call *third = join("333", 0);
    advance(19);
    assert_null(ringing(a3));
    advance(1);
    l = ringing(a3);
    assert_non_null(l);
    assert_ptr_equal(l->c, third);
    (void)first;
}

static void
acd_without_tier_escalation_lower_priorities_take_calls_when_the_top_is_busy(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    int64_t a1 = add_agent("101", 1), a2 = add_agent("102", 2);
    login(a2);
    login(a1);
    join("111", 0);
    assert_non_null(ringing(a1)); /* the better priority first, though a2 waited longer */
    assert_null(ringing(a2));
    answer(ringing(a1));
    call *second = join("222", 0);
    call_leg *l = ringing(a2);
    assert_non_null(l); /* at once */
    assert_ptr_equal(l->c, second);
}

static void acd_ring_progressive_adds_one_agent_each_step(void **state)
{
    set_queue("ring_progressive", 0, 0, 3);
    set_int("progressive_step", 8);
    int64_t a1 = add_agent("101", 10), a2 = add_agent("102", 10), a3 = add_agent("103", 10);
    login(a3);
    login(a2);
    login(a1);
    call *c = join("111", 0);
    assert_int_equal(ringing_count(), 1);
    assert_non_null(ringing(a1));
    advance(7);
    assert_int_equal(ringing_count(), 1);
    advance(1);
    assert_int_equal(ringing_count(), 2);
    assert_non_null(ringing(a1));
    assert_non_null(ringing(a2));
    advance(8);
    assert_int_equal(ringing_count(), 3);
    /* in member-list order, one per step */
    assert_int_equal(legs[0]->user_id, a1);
    assert_int_equal(legs[1]->user_id, a2);
    assert_int_equal(legs[2]->user_id, a3);
    advance(8);
    assert_int_equal(nlegs, 3); /* nobody is left to add */
    answer(ringing(a3));
    assert_int_equal(ringing_count(), 0);
    assert_int_equal(c->bridged->user_id, a3);
}

static void acd_round_robin_remembers_the_last_agent_across_calls(void **state)
{
    set_queue("round_robin", 0, 0, 3);
    int64_t a = add_agent("101", 10), b = add_agent("102", 10), c = add_agent("103", 10);
    login(c);
    login(b);
    login(a);
    const int64_t expect[] = {a, b, c, a, b};
    for (int i = 0; i < 5; i++) {
        char caller[16];
        snprintf(caller, sizeof caller, "7900%d", i);
        call *x = join(caller, 0);
        assert_int_equal(ringing_count(), 1);
        call_leg *l = ringing(expect[i]);
        assert_non_null(l);
        answer(l);
        hang_up_talk(x->bridged);
        assert_int_equal(x->result, ACD_ANSWERED);
    }
}

static void acd_agent_in_two_queues_is_offered_one_call_at_a_time(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    int64_t sales = add_queue("Sales", "201", "longest_idle");
    store_exec(st, "UPDATE call_groups SET wrapup_time = 0 WHERE id = ?", SA_INT(sales), SA_END);
    int64_t a1 = add_agent("101", 10);
    add_member(sales, a1, 10);
    call *c1 = join("111", 0);
    call *c2 = join_queue(sales, "222");
    login(a1);
    assert_int_equal(ringing_count(), 1);
    call_leg *l = ringing(a1);
    call *other = l->c == c1 ? c2 : c1;
    /* a miss frees the agent: the other queue's caller is next, still one offer */
    no_answer_from(l, SIP_CAUSE_NO_ANSWER);
    assert_int_equal(ringing_count(), 1);
    l = ringing(a1);
    assert_ptr_equal(l->c, other);
    answer(l);
    advance(10); /* the missed caller's new round comes while the agent talks */
    assert_int_equal(ringing_count(), 0);
    hang_up_talk(other->bridged);
    assert_int_equal(ringing_count(), 1); /* free again: the caller still waiting */
    assert_ptr_not_equal(ringing(a1)->c, other);
}

static void acd_non_operator_members_are_never_offered_acd_calls(void **state)
{
    set_queue("linear", 0, 0, 3);
    int64_t sub = add_user("101", false);
    add_member(qid, sub, 1); /* first in the list and the best priority */
    int64_t op = add_agent("102", 10);
    assert_int_equal(acd_agent_set_state(1, sub, AGENT_AVAILABLE, NULL), 0);
    login(op);
    call *c = join("111", 0);
    assert_null(ringing(sub));
    call_leg *l = ringing(op);
    assert_non_null(l);
    /* the operator goes on a break: the caller waits rather than ring the non-operator */
    no_answer_from(l, SIP_CAUSE_NO_ANSWER);
    assert_int_equal(acd_agent_set_state(1, op, AGENT_BREAK, "lunch"), 0);
    advance(30);
    assert_int_equal(ringing_count(), 0);
    assert_false(c->done);
}

static void acd_group_without_operators_ends_every_call(void **state)
{
    /* seed 001 §8.1 (L2650): members, but not one operator: the call is ended */
    set_queue("longest_idle", 0, 0, 3);
    int64_t sub = add_user("101", false);
    add_member(qid, sub, 1);
    assert_int_equal(acd_agent_set_state(1, sub, AGENT_AVAILABLE, NULL), 0);
    call *c = join("111", 0);
    assert_true(c->done);
    assert_int_equal(c->result, ACD_NO_OPERATORS);
    assert_string_equal(acd_result_name(c->result), "no_operators");
    assert_int_equal(ringing_count(), 0);
    /* one operator among the members and callers wait for it again */
    add_agent("102", 10);
    call *c2 = join("222", 0);
    assert_false(c2->done);
}

static void acd_plain_ring_all_group_rings_every_member(void **state)
{
    /* seed 001 §8.0: "all at once" is not an ACD algorithm; it rings users too */
    set_queue("ring_all", 0, 0, 3);
    int64_t sub = add_user("101", false);
    add_member(qid, sub, 10);
    int64_t op = add_agent("102", 10);
    join("111", 0);
    assert_non_null(ringing(sub));
    assert_non_null(ringing(op));
}

static void acd_without_join_empty_callers_leave_when_nobody_is_logged_in(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    set_int("join_empty", 0);
    int64_t a1 = add_agent("101", 10);
    call *c = join("111", 0);
    assert_true(c->done);
    assert_int_equal(c->result, ACD_EMPTY);
    assert_non_null(qlog_row(c, "empty"));
    /* a logged-in agent on a break is enough to wait for */
    login(a1);
    assert_int_equal(acd_agent_set_state(1, a1, AGENT_BREAK, "coffee"), 0);
    call *c2 = join("222", 0);
    assert_false(c2->done);
    login(a1);
    assert_ptr_equal(ringing(a1)->c, c2);
}

static void acd_with_join_empty_callers_wait_for_an_agent(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    int64_t a1 = add_agent("101", 10); /* logged out */
    call *c = join("111", 0);
    advance(60);
    assert_false(c->done);
    login(a1);
    assert_ptr_equal(ringing(a1)->c, c);
}

static void acd_max_length_turns_the_next_caller_away_as_full(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    set_int("max_length", 2);
    add_agent("101", 10); /* logged out: everyone waits */
    call *c1 = join("111", 0);
    call *c2 = join("222", 0);
    call *c3 = join("333", 0);
    assert_false(c1->done);
    assert_false(c2->done);
    assert_true(c3->done);
    assert_int_equal(c3->result, ACD_FULL);
    assert_non_null(qlog_row(c3, "full"));
    /* a place frees up: the next caller gets in */
    c1->a->state = LEG_ENDED;
    acd_caller_gone(c1);
    pump();
    call *c4 = join("444", 0);
    assert_false(c4->done);
    json_t *q = acd_queues_json(1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(q, 0), "queue")), 2);
    json_decref(q);
}

static void acd_number_on_the_domain_vip_list_overtakes(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    store_exec(st, "INSERT INTO domains(id, name, created_at) VALUES (2, 'other.test', 0)", SA_END);
    store_exec(st,
               "INSERT INTO vip_numbers(domain_id, number, priority, created_at) VALUES "
               "(1, '79009990000', 5, 0), (2, '79005550000', 1, 0)",
               SA_END);
    int64_t a1 = add_agent("101", 10);
    call *normal = join("111", 0);
    call *foreign = join("79005550000", 0); /* a VIP of another domain: not here */
    call *vip = join("79009990000", 0);
    login(a1);
    call_leg *l = ringing(a1);
    assert_ptr_equal(l->c, vip);
    assert_int_equal(json_integer_value(json_object_get(qlog_row(vip, "join"), "priority")), 5);
    answer(l);
    hang_up_talk(vip->bridged);
    /* then in arrival order: the other domain's VIP number came second */
    assert_ptr_equal(ringing(a1)->c, normal);
    assert_int_equal(json_integer_value(json_object_get(qlog_row(foreign, "join"), "priority")),
                     100);
}

static void acd_abandon_is_logged_with_the_time_waited(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    add_agent("101", 10);
    call *c = join("111", 0);
    advance(7);
    c->a->state = LEG_ENDED;
    acd_caller_gone(c);
    pump();
    assert_int_equal(c->result, ACD_HANGUP);
    json_t *row = qlog_row(c, "abandon");
    assert_non_null(row);
    assert_int_equal(json_integer_value(json_object_get(row, "wait_s")), 7);
    json_t *q = acd_queues_json(1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(q, 0), "abandoned")), 1);
    json_decref(q);
}

static void acd_zero_average_talk_time_announces_no_estimated_wait(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    store_exec(st,
               "UPDATE call_groups SET announce_position = 1, avg_talk_time = 0, "
               "announce_interval = 30 WHERE id = ?",
               SA_INT(qid), SA_END);
    int64_t a1 = add_agent("101", 10);
    login(a1);
    /* a call of 60 s is measured, so only the setting can keep the estimate off */
    call *first = join("111", 0);
    answer(ringing(a1));
    advance(60);
    hang_up_talk(first->bridged);
    call *second = join("222", 0);
    answer(ringing(a1));
    join("333", 0);
    advance(2);
    assert_int_equal(nplayed, 1);
    assert_non_null(strstr(played[0], "ru/you_are_next"));
    assert_null(strstr(played[0], "estimated_wait"));
    (void)second;
}

static int64_t add_sound(int64_t domain, const char *path)
{
    int64_t id;
    store_query_int(st, &id,
                    "INSERT INTO sound_files(domain_id, name, format, size, path, created_at) "
                    "VALUES (?, ?, 'wav', 1, ?, 0) RETURNING id",
                    SA_INT(domain), SA_STR(path), SA_STR(path), SA_END);
    return id;
}

static void acd_greeting_plays_once_before_any_agent_rings(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    set_int("greeting_sound_id", add_sound(1, "/var/sounds/1/welcome.wav"));
    int64_t a1 = add_agent("101", 10);
    login(a1);
    call *c = join("111", 0);
    assert_int_equal(nplayed, 1);
    assert_string_equal(played[0], "/var/sounds/1/welcome.wav ");
    assert_string_equal(hearing, "play");
    advance(3);
    assert_int_equal(ringing_count(), 0); /* the greeting comes before the group */
    play_done(c);
    assert_string_equal(hearing, "moh:default");
    assert_non_null(ringing(a1));
    /* a missed offer and a new round do not repeat it */
    no_answer_from(ringing(a1), SIP_CAUSE_NO_ANSWER);
    advance(5);
    assert_non_null(ringing(a1));
    assert_int_equal(nplayed, 1);
}

static void acd_greeting_of_another_domain_is_not_played(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    store_exec(st, "INSERT INTO domains(id, name, created_at) VALUES (2, 'other.test', 0)", SA_END);
    set_int("greeting_sound_id", add_sound(2, "/var/sounds/2/theirs.wav"));
    int64_t a1 = add_agent("101", 10);
    login(a1);
    join("111", 0);
    assert_int_equal(nplayed, 0);
    assert_string_equal(hearing, "moh:default");
    assert_non_null(ringing(a1));
}

static void acd_caller_hears_ringback_or_the_named_music_while_waiting(void **state)
{
    set_queue("longest_idle", 0, 0, 3);
    add_agent("101", 10);
    store_exec(st, "UPDATE call_groups SET waiting_audio = 'ringback' WHERE id = ?", SA_INT(qid),
               SA_END);
    join("111", 0);
    assert_string_equal(hearing, "ringback");
    store_exec(st, "UPDATE call_groups SET waiting_audio = 'moh', moh = 'jazz' WHERE id = ?",
               SA_INT(qid), SA_END);
    join("222", 0);
    assert_string_equal(hearing, "moh:jazz");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(acd_longest_idle_offers_the_longest_free_agent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acd_unanswered_offer_returns_caller_to_head, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acd_misses_in_a_row_set_agent_away, setup, teardown),
        cmocka_unit_test_setup_teardown(acd_vip_caller_overtakes, setup, teardown),
        cmocka_unit_test_setup_teardown(acd_max_wait_ends_with_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(acd_wrapup_delays_next_offer, setup, teardown),
        cmocka_unit_test_setup_teardown(acd_break_and_offline_agents_get_no_offers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acd_ring_all_rings_the_top_tier_together, setup, teardown),
        cmocka_unit_test_setup_teardown(acd_caller_hangup_withdraws_offers, setup, teardown),
        cmocka_unit_test_setup_teardown(acd_busy_agents_mean_position_and_wait_announcements, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acd_callback_keeps_the_place_and_rings_the_agent_first,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(acd_unanswered_callback_is_retried_later, setup, teardown),
        cmocka_unit_test_setup_teardown(
            acd_leave_empty_sends_callers_away_when_the_last_agent_logs_out, setup, teardown),
        cmocka_unit_test_setup_teardown(
            acd_tier_escalation_opens_lower_priorities_after_the_set_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(
            acd_without_tier_escalation_lower_priorities_take_calls_when_the_top_is_busy, setup,
            teardown),
        cmocka_unit_test_setup_teardown(acd_ring_progressive_adds_one_agent_each_step, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acd_round_robin_remembers_the_last_agent_across_calls,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(acd_agent_in_two_queues_is_offered_one_call_at_a_time,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(acd_non_operator_members_are_never_offered_acd_calls, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acd_group_without_operators_ends_every_call, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acd_plain_ring_all_group_rings_every_member, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            acd_without_join_empty_callers_leave_when_nobody_is_logged_in, setup, teardown),
        cmocka_unit_test_setup_teardown(acd_with_join_empty_callers_wait_for_an_agent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acd_max_length_turns_the_next_caller_away_as_full, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acd_number_on_the_domain_vip_list_overtakes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acd_abandon_is_logged_with_the_time_waited, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acd_zero_average_talk_time_announces_no_estimated_wait,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(acd_greeting_plays_once_before_any_agent_rings, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acd_greeting_of_another_domain_is_not_played, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acd_caller_hears_ringback_or_the_named_music_while_waiting,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
