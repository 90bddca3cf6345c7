/*
 * acd.c - queues, agents and offers.
 *
 * Owns every queue entry (a caller waiting), every agent record and every
 * outstanding offer, all on the core thread. A caller hears the group's
 * greeting once, then waits with music on hold or ringing; whenever
 * something changes (a join, an agent becoming free, an
 * offer failing) the queue dispatches at once, choosing agents with the
 * strategies of strategy.c and ringing them as B legs of the caller's call.
 * The first agent to answer is bridged; an unanswered offer returns the
 * caller to its place at the head and counts a miss against the agent.
 */
#include "acd/acd.h"
#include "acd/strategy.h"
#include "base/cw.h"
#include "base/map.h"
#include "cdr/cdr.h"
#include "events/events.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "loop/loop.h"
#include "loop/timer.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#define MAX_OFFERS 32
#define MAX_MISSED 32
#define RETRY_MS   5000 /* before re-offering a caller to agents that already missed it */
#define STATS_MS   50   /* queue.stats: changes gathered this long, then announced */

/* Tags of what the queue plays to a waiting caller, to tell their ends apart. */
#define TAG_HOLD     0x51480001u /* music on hold or ringback */
#define TAG_GREETING 0x51480002u
#define TAG_ANNOUNCE 0x51480003u

struct queue;
struct entry;

struct agent {
    int64_t user_id, domain_id;
    enum agent_state state;
    char reason[64];
    int64_t since_ms;
    int64_t idle_since_ms, login_ms, calls, talk_ms, talk_start_ms;
    int misses;
    bool has_pending;
    enum agent_state pending;
    char pending_reason[64];
    struct offer *offer;   /* ringing for this offer */
    struct entry *talking; /* in conversation with this caller */
    cw_timer *wrap_timer;
    char name[128], ext[16];
    bool unsaved;              /* its state waits for the next store write (on A.unsaved) */
    struct agent *next_unsaved;
};

struct offer {
    struct entry *e;
    struct agent *a;
    call_leg *leg;
    bool cancelled;
    bool acd;      /* an ACD offer moves the agent through ringing / on call / wrap-up */
    bool callback; /* the agent is rung first by a call of its own */
};

struct member {
    int64_t user_id;
    int priority, penalty, order;
    bool is_operator;
};

struct entry {
    struct queue *q;
    call *c;         /* the caller's call; for a callback, the attempt in progress or NULL */
    char uuid[37];   /* of the call that joined: names the entry in logs and events */
    char caller[64]; /* number to call back */
    bool callback;   /* the caller hung up and waits to be called back */
    int callback_tries;
    int64_t not_before_ms; /* a callback retry waits until then */
    uint64_t seq;
    int priority;
    int64_t join_ms;
    bool talking;
    struct offer *offers[MAX_OFFERS];
    int noffers;
    int64_t missed[MAX_MISSED];
    int nmissed;
    acd_done_fn done;
    void *arg;
    cw_timer *timeout_timer;
    cw_timer *progress_timer;
    cw_timer *retry_timer; /* after everyone free missed this caller */
    cw_timer *announce_timer;
    cw_timer *tier_timer; /* the next priority tier becomes eligible */
    bool announcing;
    bool greeting; /* the queue's greeting is playing: nobody is rung yet */
    struct agent *agent;
    char moh[64];
    bool moh_chosen; /* the script named a music stream: it overrides ringback */
    bool finishing;
    struct entry *next;
};

struct queue {
    int64_t id, domain_id;
    char name[128], ext[16];
    enum acd_strategy strategy;
    int ring_timeout, wrapup, max_wait, max_len, max_misses, avg_talk, tier_escalation;
    int progressive_step; /* ring_progressive: seconds before the next member is added */
    int announce_interval;
    bool announce_position;
    char lang[8];
    bool join_empty, leave_empty;
    char callback_key; /* DTMF that turns waiting into a callback; 0 = none */
    char moh[64];
    bool ringback;      /* the caller hears ringing while waiting, not music */
    char greeting[512]; /* sound file played once on entering; "" = none */
    char greeting_text[256], info_url[512];
    struct member *members;
    int nmembers;
    cw_map member_idx; /* user_id -> index + 1 */
    struct entry *entries;
    int nentries;
    int rr_last;
    int64_t answered, abandoned;
    struct queue *next_active, *prev_active;
    bool active;
    bool dirty; /* wants a dispatch on the next kick (and is on A.dirty) */
    struct queue *next_dirty;
    bool stats_dirty; /* its counts may have changed (and is on A.stats_dirty) */
    struct queue *next_stats;
    json_t *stats_sent; /* the counts last sent as queue.stats */
};

/* The loaded queues a user is a member of, so an agent becoming free looks
 * at its own queues only, not at every queue with callers. */
struct membership {
    struct queue **q;
    int n, cap;
};

static struct {
    cw_map queues;             /* id -> queue */
    cw_map agents;             /* user_id -> agent */
    cw_map entries;            /* hash(call uuid) -> entry */
    cw_map memberships;        /* user_id -> struct membership */
    struct queue *active;      /* queues with callers */
    struct queue *dirty;       /* queues waiting for the kick to dispatch them */
    struct event *kick;        /* runs the dispatches asked for, outside any callback */
    struct queue *stats_dirty; /* queues whose counts to compare and announce */
    cw_timer *stats_timer;     /* runs while stats_dirty is not empty */
    struct agent *unsaved;     /* agents whose state the kick writes to the store */
    uint64_t seq;
    uint64_t rng;
} A;

static const char *state_names[AGENT_STATE_COUNT] = {
    "logged_out", "available", "ringing", "on_call_in", "on_call_out",
    "wrap_up",    "break",     "away",    "campaign",
};

const char *agent_state_name(enum agent_state s)
{
    return s < AGENT_STATE_COUNT ? state_names[s] : "logged_out";
}

int agent_state_parse(const char *s, enum agent_state *out)
{
    for (int i = 0; i < AGENT_STATE_COUNT; i++)
        if (s && !strcmp(s, state_names[i])) {
            *out = (enum agent_state)i;
            return CW_OK;
        }
    return CW_EINVAL;
}

const char *acd_result_name(enum acd_result r)
{
    static const char *n[] = {"answered", "timeout",      "full", "empty",
                              "hangup",   "callback", "no_operators", "error"};
    return r <= ACD_ERROR ? n[r] : "error";
}

static uint64_t rnd(void *arg)
{
    /* xorshift64*, seeded from the OS */
    uint64_t x = A.rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    A.rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- agents ---- */

/* Agents' states reach the store in one transaction at the end of the kick
 * (the same loop turn), not one write per change on the decision path. Only
 * a restart reads them back. */
static void agents_save(void)
{
    if (!A.unsaved) return;
    store *st = store_main();
    bool tx = store_begin(st) == 0;
    for (struct agent *a = A.unsaved, *next; a; a = next) {
        next = a->next_unsaved;
        a->next_unsaved = NULL;
        a->unsaved = false;
        const char *state = agent_state_name(a->state), *reason = a->reason[0] ? a->reason : NULL;
        int rc = store_exec(st, "UPDATE agents SET state = ?, reason = ?, since = ? WHERE user_id = ?",
                            SA_STR(state), SA_STR(reason), SA_INT(a->since_ms / 1000),
                            SA_INT(a->user_id), SA_END);
        if (rc == 0)
            store_exec(st, "INSERT INTO agents(user_id, state, reason, since) VALUES (?, ?, ?, ?)",
                       SA_INT(a->user_id), SA_STR(state), SA_STR(reason),
                       SA_INT(a->since_ms / 1000), SA_END);
    }
    A.unsaved = NULL;
    if (tx && store_commit(st) != 0) log_error("acd", "agent states were not saved");
}

static void agent_persist(struct agent *a)
{
    if (!a->unsaved) {
        a->unsaved = true;
        a->next_unsaved = A.unsaved;
        A.unsaved = a;
    }
    if (A.kick) event_active(A.kick, 0, 0);
}

static struct agent *agent_get(int64_t user_id)
{
    struct agent *a = cw_map_get(&A.agents, (uint64_t)user_id);
    if (a) return a;
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT u.domain_id, u.display_name, u.extension, g.state, g.reason, g.since "
                    "FROM users u LEFT JOIN agents g ON g.user_id = u.id WHERE u.id = ?",
                    SA_INT(user_id), SA_END) < 0 ||
        !store_next(r)) {
        store_res_free(r);
        return NULL;
    }
    a = cw_calloc(1, sizeof *a);
    a->user_id = user_id;
    a->domain_id = store_int(r, 0);
    cw_strlcpy(a->name, store_str(r, 1), sizeof a->name);
    cw_strlcpy(a->ext, store_str(r, 2) ? store_str(r, 2) : "", sizeof a->ext);
    a->state = AGENT_LOGGED_OUT;
    enum agent_state s;
    if (store_str(r, 3) && !agent_state_parse(store_str(r, 3), &s)) {
        /* a restart ends every call: transient states come back as available */
        if (s == AGENT_RINGING || s == AGENT_ON_CALL_IN || s == AGENT_ON_CALL_OUT ||
            s == AGENT_WRAP_UP)
            s = AGENT_AVAILABLE;
        a->state = s;
        if (store_str(r, 4)) cw_strlcpy(a->reason, store_str(r, 4), sizeof a->reason);
    }
    a->since_ms = store_isnull(r, 5) ? cw_wall_ms() : store_int(r, 5) * 1000;
    a->idle_since_ms = a->login_ms = cw_wall_ms();
    store_res_free(r);
    cw_map_put(&A.agents, (uint64_t)user_id, a);
    return a;
}

static void dispatch_for_agent(struct agent *a);
static void leave_if_empty(struct agent *a);
static void stats_touch(struct queue *q);
static void stats_touch_agent(const struct agent *a);

static void agent_set(struct agent *a, enum agent_state st, const char *reason)
{
    enum agent_state old = a->state;
    int64_t now = cw_wall_ms();
    if (old == st && !strcmp(a->reason, reason ? reason : "")) return;
    if (old == AGENT_LOGGED_OUT && st != AGENT_LOGGED_OUT) {
        a->login_ms = now;
        a->calls = a->talk_ms = 0;
        a->misses = 0;
    }
    if (st == AGENT_AVAILABLE && old != AGENT_RINGING) a->idle_since_ms = now;
    a->state = st;
    cw_strlcpy(a->reason, reason ? reason : "", sizeof a->reason);
    a->since_ms = now;
    agent_persist(a);
    events_emit("agent.state", a->domain_id,
                json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "user_id", (json_int_t)a->user_id, "name",
                          a->name, "extension", a->ext, "state", agent_state_name(st), "previous",
                          agent_state_name(old), "reason", a->reason));
    log_debug("acd", "agent %lld: %s -> %s", (long long)a->user_id, agent_state_name(old),
              agent_state_name(st));
    stats_touch_agent(a);
    if (st == AGENT_AVAILABLE) dispatch_for_agent(a);
    if (st == AGENT_LOGGED_OUT) leave_if_empty(a);
}

/* The agent's call (or wrap-up) is over: apply what was asked meanwhile. */
static void agent_free_again(struct agent *a)
{
    if (a->has_pending) {
        a->has_pending = false;
        agent_set(a, a->pending, a->pending_reason);
    } else {
        agent_set(a, AGENT_AVAILABLE, NULL);
    }
}

static void on_wrapup_end(void *arg)
{
    struct agent *a = arg;
    if (a->state == AGENT_WRAP_UP) agent_free_again(a);
}

static bool agent_busy(const struct agent *a)
{
    return a->state == AGENT_RINGING || a->state == AGENT_ON_CALL_IN ||
           a->state == AGENT_ON_CALL_OUT || a->state == AGENT_WRAP_UP || a->offer || a->talking;
}

int acd_agent_set_state(int64_t domain_id, int64_t user_id, enum agent_state st, const char *reason)
{
    if (st == AGENT_RINGING || st == AGENT_ON_CALL_IN || st == AGENT_ON_CALL_OUT ||
        st == AGENT_WRAP_UP || st == AGENT_CAMPAIGN)
        return CW_EINVAL; /* the platform sets these itself */
    struct agent *a = agent_get(user_id);
    if (!a || a->domain_id != domain_id) return CW_ENOENT;
    if (agent_busy(a)) {
        a->has_pending = true;
        a->pending = st;
        cw_strlcpy(a->pending_reason, reason ? reason : "", sizeof a->pending_reason);
        if (a->state == AGENT_WRAP_UP && st != AGENT_AVAILABLE) {
            /* ending wrap-up early into another state is the agent's choice */
            if (a->wrap_timer) cw_timer_stop(a->wrap_timer);
            agent_free_again(a);
        }
        return CW_OK;
    }
    a->has_pending = false;
    agent_set(a, st, reason);
    return CW_OK;
}

/* ---- queues ---- */

static void queue_activate(struct queue *q, bool on)
{
    if (q->active == on) return;
    q->active = on;
    if (on) {
        q->prev_active = NULL;
        q->next_active = A.active;
        if (A.active) A.active->prev_active = q;
        A.active = q;
    } else {
        if (q->prev_active)
            q->prev_active->next_active = q->next_active;
        else
            A.active = q->next_active;
        if (q->next_active) q->next_active->prev_active = q->prev_active;
        q->next_active = q->prev_active = NULL;
    }
}

static void membership_add(int64_t user_id, struct queue *q)
{
    struct membership *m = cw_map_get(&A.memberships, (uint64_t)user_id);
    if (!m) {
        m = cw_calloc(1, sizeof *m);
        cw_map_put(&A.memberships, (uint64_t)user_id, m);
    }
    for (int i = 0; i < m->n; i++)
        if (m->q[i] == q) return;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 4;
        m->q = cw_realloc(m->q, (size_t)m->cap * sizeof *m->q);
    }
    m->q[m->n++] = q;
}

static void membership_remove(int64_t user_id, struct queue *q)
{
    struct membership *m = cw_map_get(&A.memberships, (uint64_t)user_id);
    if (!m) return;
    for (int i = 0; i < m->n; i++)
        if (m->q[i] == q) {
            m->q[i] = m->q[--m->n];
            break;
        }
}

/* (Re)load a queue's settings and members from the store. */
static struct queue *queue_load(int64_t id)
{
    store *st = store_main();
    store_res *r;
    if (store_query(st, &r,
                    "SELECT domain_id, name, extension, strategy, ring_timeout, wrapup_time, "
                    "max_wait, max_length, max_misses, avg_talk_time, tier_escalation, "
                    "join_empty, leave_empty, moh, greeting_text, info_url, announce_interval, "
                    "announce_position, (SELECT language FROM domains d WHERE d.id = domain_id), "
                    "callback_key, progressive_step, (SELECT path FROM sound_files f WHERE "
                    "f.id = greeting_sound_id AND f.domain_id = call_groups.domain_id), "
                    "waiting_audio FROM call_groups WHERE id = ?",
                    SA_INT(id), SA_END) < 0 ||
        !store_next(r)) {
        store_res_free(r);
        return NULL;
    }
    struct queue *q = cw_map_get(&A.queues, (uint64_t)id);
    if (!q) {
        q = cw_calloc(1, sizeof *q);
        q->id = id;
        q->rr_last = -1;
        cw_map_init(&q->member_idx);
        cw_map_put(&A.queues, (uint64_t)id, q);
    }
    q->domain_id = store_int(r, 0);
    cw_strlcpy(q->name, store_str(r, 1), sizeof q->name);
    cw_strlcpy(q->ext, store_str(r, 2), sizeof q->ext);
    if (acd_strategy_parse(store_str(r, 3), &q->strategy)) q->strategy = ACD_RING_ALL;
    q->ring_timeout = (int)store_int(r, 4);
    q->wrapup = (int)store_int(r, 5);
    q->max_wait = (int)store_int(r, 6);
    q->max_len = (int)store_int(r, 7);
    q->max_misses = (int)store_int(r, 8);
    q->avg_talk = (int)store_int(r, 9);
    q->tier_escalation = (int)store_int(r, 10);
    q->join_empty = store_int(r, 11) != 0;
    q->leave_empty = store_int(r, 12) != 0;
    cw_strlcpy(q->moh, store_str(r, 13), sizeof q->moh);
    cw_strlcpy(q->greeting_text, store_str(r, 14) ? store_str(r, 14) : "", sizeof q->greeting_text);
    cw_strlcpy(q->info_url, store_str(r, 15) ? store_str(r, 15) : "", sizeof q->info_url);
    q->announce_interval = (int)store_int(r, 16);
    q->announce_position = store_int(r, 17) != 0;
    cw_strlcpy(q->lang, store_str(r, 18) && !strcmp(store_str(r, 18), "ru") ? "ru" : "en",
               sizeof q->lang);
    q->callback_key = store_str(r, 19) && strlen(store_str(r, 19)) == 1 ? store_str(r, 19)[0] : 0;
    q->progressive_step = (int)store_int(r, 20);
    cw_strlcpy(q->greeting, store_str(r, 21) ? store_str(r, 21) : "", sizeof q->greeting);
    q->ringback = store_str(r, 22) && !strcmp(store_str(r, 22), "ringback");
    store_res_free(r);
    if (q->ring_timeout <= 0) q->ring_timeout = 20;
    if (q->progressive_step <= 0) q->progressive_step = 5;

    if (store_query(
            st, &r,
            "SELECT m.user_id, m.priority, m.penalty, u.is_operator FROM call_group_members m "
            "JOIN users u ON u.id = m.user_id WHERE m.group_id = ? AND u.status = 'active' "
            "ORDER BY m.priority, u.extension, u.id",
            SA_INT(id), SA_END) < 0) {
        store_res_free(r);
        return q;
    }
    for (int i = 0; i < q->nmembers; i++)
        membership_remove(q->members[i].user_id, q);
    free(q->members);
    cw_map_free(&q->member_idx);
    cw_map_init(&q->member_idx);
    q->nmembers = store_nrows(r);
    q->members = cw_calloc((size_t)q->nmembers + 1, sizeof *q->members);
    for (int i = 0; store_next(r); i++) {
        struct member *m = &q->members[i];
        m->user_id = store_int(r, 0);
        m->priority = (int)store_int(r, 1);
        m->penalty = (int)store_int(r, 2);
        m->is_operator = store_int(r, 3) != 0;
        m->order = i;
        cw_map_put(&q->member_idx, (uint64_t)m->user_id, (void *)(intptr_t)(i + 1));
        membership_add(m->user_id, q);
    }
    store_res_free(r);
    return q;
}

int64_t acd_queue_find(int64_t domain_id, const char *key)
{
    int64_t id = 0;
    store *st = store_main();
    if (store_query_int(
            st, &id,
            "SELECT id FROM call_groups WHERE domain_id = ? AND (extension = ? OR name = ?)",
            SA_INT(domain_id), SA_STR(key), SA_STR(key), SA_END) == CW_OK)
        return id;
    int64_t n;
    if (cw_parse_i64(key, &n) == CW_OK &&
        store_query_int(st, &id, "SELECT id FROM call_groups WHERE domain_id = ? AND id = ?",
                        SA_INT(domain_id), SA_INT(n), SA_END) == CW_OK)
        return id;
    return 0;
}

static int logged_in_members(const struct queue *q)
{
    int n = 0;
    for (int i = 0; i < q->nmembers; i++) {
        struct agent *a = cw_map_get(&A.agents, (uint64_t)q->members[i].user_id);
        if (a && a->state != AGENT_LOGGED_OUT && sip_user_online(a->user_id)) n++;
    }
    return n;
}

/* seed 001 §8.1: ACD algorithms distribute to operators only; a group with
 * members but not one operator among them ends every call. */
static bool members_without_operator(const struct queue *q)
{
    if (q->nmembers == 0) return false;
    for (int i = 0; i < q->nmembers; i++)
        if (q->members[i].is_operator) return false;
    return true;
}

/* Tiers: how long a caller waits before a member of this priority may be offered the call,
 * (priority - best priority of the group) x tier_escalation seconds; 0 without escalation. */
static int64_t tier_open_ms(const struct queue *q, const struct member *m)
{
    if (q->tier_escalation <= 0 || q->nmembers == 0) return 0;
    return (int64_t)(m->priority - q->members[0].priority) * q->tier_escalation * 1000;
}

static bool member_eligible(const struct queue *q, const struct member *m, struct agent *a,
                            const struct entry *e, int64_t now)
{
    if (!a || a->offer || a->talking) return false;
    if (acd_strategy_is_acd(q->strategy)) {
        if (!m->is_operator || a->state != AGENT_AVAILABLE) return false;
    } else if (a->state != AGENT_AVAILABLE && a->state != AGENT_LOGGED_OUT) {
        return false; /* plain groups ring members who are not busy on a queue call */
    }
    if (!sip_user_online(a->user_id)) return false;
    for (int i = 0; i < e->nmissed; i++)
        if (e->missed[i] == a->user_id) return false;
    return tier_open_ms(q, m) <= now - e->join_ms;
}

/* ---- offers ---- */

static void entry_finish(struct entry *e, enum acd_result r);
static void dispatch(struct queue *q);

static void queue_log(struct entry *e, int64_t agent_id, const char *event, json_t *data)
{
    cdr_queue_log(e->q->domain_id, e->q->id, e->uuid, agent_id, event, data);
    json_t *ev =
        json_pack("{s:I,s:s,s:s,s:s,s:I}", "queue_id", (json_int_t)e->q->id, "queue", e->q->name,
                  "call", e->uuid, "event", event, "agent_id", (json_int_t)agent_id);
    char type[48];
    snprintf(type, sizeof type, "queue.%s", event);
    events_emit(type, e->q->domain_id, ev);
    stats_touch(e->q);
}

static void offer_remove(struct entry *e, struct offer *o)
{
    for (int i = 0; i < e->noffers; i++)
        if (e->offers[i] == o) {
            e->offers[i] = e->offers[--e->noffers];
            break;
        }
    if (o->a && o->a->offer == o) o->a->offer = NULL;
    free(o);
}

static void offer_ringing(call_leg *leg, void *arg)
{
    struct offer *o = arg;
    if (o->e->c) call_log(o->e->c, "agent-ringing", "%s", o->a->ext);
}

static void cancel_offers(struct entry *e, struct offer *keep)
{
    for (int i = e->noffers - 1; i >= 0; i--) {
        if (i >= e->noffers) continue; /* the list shrank under us */
        struct offer *o = e->offers[i];
        if (o == keep) continue;
        o->cancelled = true;
        if (o->leg) leg_hangup(o->leg, SIP_CAUSE_NORMAL); /* offer_ended frees it */
    }
}

static void talk_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg);

static void offer_answered(call_leg *leg, void *arg)
{
    struct offer *o = arg;
    struct entry *e = o->e;
    struct agent *a = o->a;
    if (e->talking || e->finishing) {
        o->cancelled = true;
        leg_hangup(leg, SIP_CAUSE_NORMAL);
        return;
    }
    e->talking = true;
    e->agent = a;
    for (int i = 0; i < e->noffers; i++)
        if (e->offers[i] == o) e->offers[i] = e->offers[--e->noffers];
    a->offer = NULL;
    a->talking = e;
    a->misses = 0;
    a->calls++;
    a->talk_start_ms = cw_wall_ms();
    bool acd = o->acd;
    free(o);
    leg_set_watch(leg, &(struct leg_watch){NULL, NULL, talk_ended, e});
    cancel_offers(e, NULL);
    cw_timer_stop(e->timeout_timer);
    cw_timer_stop(e->progress_timer);
    cw_timer_stop(e->retry_timer);
    cw_timer_stop(e->announce_timer);
    int wait_s = (int)((cw_wall_ms() - e->join_ms) / 1000);
    call_set_queue(e->c, e->q->id, a->user_id, wait_s);
    e->q->answered++;
    intptr_t idx = (intptr_t)cw_map_get(&e->q->member_idx, (uint64_t)a->user_id);
    if (idx) e->q->rr_last = e->q->members[idx - 1].order;
    if (acd) agent_set(a, AGENT_ON_CALL_IN, NULL);
    queue_log(e, a->user_id, "answer", json_pack("{s:i}", "wait_s", wait_s));
    if (call_bridge(e->c, leg)) {
        log_error("acd", "%s: bridge to agent %lld failed", call_uuid(e->c), (long long)a->user_id);
        leg_hangup(leg, SIP_CAUSE_FAILED);
    }
}

/* The conversation of an answered queue call ended (either side hung up). */
static void talk_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    struct entry *e = arg;
    struct agent *a = e->agent;
    int64_t talk = cw_wall_ms() - a->talk_start_ms;
    a->talk_ms += talk;
    a->talking = NULL;
    queue_log(e, a->user_id, "complete", json_pack("{s:I}", "talk_ms", (json_int_t)talk));
    if (!acd_strategy_is_acd(e->q->strategy)) {
        /* plain groups do not track agent states */
    } else if (e->q->wrapup > 0) {
        agent_set(a, AGENT_WRAP_UP, NULL);
        if (!a->wrap_timer) a->wrap_timer = cw_timer_new(on_wrapup_end, a);
        cw_timer_start(a->wrap_timer, (int64_t)e->q->wrapup * 1000);
    } else {
        agent_free_again(a);
    }
    entry_finish(e, ACD_ANSWERED);
}

static void offer_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    struct offer *o = arg;
    struct entry *e = o->e;
    struct agent *a = o->a;
    /* a callback attempt's A leg is the agent's own: its end is a miss, not an abandon */
    bool abandoned = !o->callback && leg_state(call_a_leg(e->c)) == LEG_ENDED;
    bool missed = !o->cancelled && !abandoned && !e->finishing;
    bool acd = o->acd;
    if (o->callback && e->c) { /* the agent's own call never got going */
        call_unref(e->c);
        e->c = NULL;
    }
    offer_remove(e, o);
    if (missed) {
        a->misses++;
        if (e->nmissed < MAX_MISSED) e->missed[e->nmissed++] = a->user_id;
        queue_log(e, a->user_id, cause == SIP_CAUSE_NO_ANSWER ? "ring_timeout" : "reject",
                  json_pack("{s:s,s:i}", "cause", sip_cause_name(cause), "misses", a->misses));
    }
    if (acd && a->state == AGENT_RINGING) {
        if (missed && e->q->max_misses > 0 && a->misses >= e->q->max_misses) {
            a->has_pending = false;
            agent_set(a, AGENT_AWAY, "missed calls");
        } else {
            agent_free_again(a);
        }
    } else if (!acd) {
        dispatch_for_agent(a);
    }
    /* nobody left ringing: the caller is back at its place (the head) */
    if (!abandoned && !e->finishing && !e->talking && e->noffers == 0) dispatch(e->q);
}

static void offer(struct entry *e, struct agent *a)
{
    struct offer *o = cw_calloc(1, sizeof *o);
    o->e = e;
    o->a = a;
    o->acd = acd_strategy_is_acd(e->q->strategy);
    struct dial_target t = {.kind = SIP_TARGET_USER,
                            .user_id = a->user_id,
                            .timeout_s = e->q->ring_timeout,
                            .no_pickup = true};
    snprintf(t.headers, sizeof t.headers, "X-Cw-Queue: %lld\r\n", (long long)e->q->id);
    struct leg_watch w = {offer_ringing, offer_answered, offer_ended, o};
    a->offer = o;
    e->offers[e->noffers++] = o;
    if (o->acd) agent_set(a, AGENT_RINGING, NULL);
    o->leg = call_dial(e->c, LEG_B, &t, &w);
    if (!o->leg) {
        /* could not even start: skip this agent for this caller for now */
        if (e->nmissed < MAX_MISSED) e->missed[e->nmissed++] = a->user_id;
        offer_remove(e, o);
        if (a->state == AGENT_RINGING) agent_free_again(a);
        return;
    }
    intptr_t idx = (intptr_t)cw_map_get(&e->q->member_idx, (uint64_t)a->user_id);
    if (idx) e->q->rr_last = e->q->members[idx - 1].order; /* round robin goes on after it */
    queue_log(e, a->user_id, "offer", NULL);
    events_emit("agent.offer", e->q->domain_id,
                json_pack("{s:I,s:s,s:I,s:s,s:s,s:s,s:s}", "user_id", (json_int_t)a->user_id,
                          "call", e->uuid, "queue_id", (json_int_t)e->q->id, "queue", e->q->name,
                          "caller", e->caller, "greeting_text", e->q->greeting_text, "info_url",
                          e->q->info_url));
}

/* ---- callbacks: the caller hung up keeping its place; an agent is rung first ---- */

#define CALLBACK_TRIES    3
#define CALLBACK_RETRY_MS 60000

static void cb_failed(struct entry *e, const char *why)
{
    struct agent *a = e->agent;
    e->talking = false;
    e->agent = NULL;
    if (a) {
        a->talking = NULL;
        if (acd_strategy_is_acd(e->q->strategy)) agent_free_again(a);
    }
    queue_log(e, a ? a->user_id : 0, "callback_failed",
              json_pack("{s:s,s:i}", "why", why, "try", e->callback_tries + 1));
    call *c = e->c;
    e->c = NULL;
    if (c) {
        call_hangup(c, SIP_CAUSE_NORMAL);
        call_unref(c);
    }
    if (++e->callback_tries >= CALLBACK_TRIES) {
        entry_finish(e, ACD_ERROR);
        return;
    }
    e->not_before_ms = cw_wall_ms() + CALLBACK_RETRY_MS;
    cw_timer_start(e->retry_timer, CALLBACK_RETRY_MS);
}

static void cb_talk_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    struct entry *e = arg;
    call_hangup(e->c, SIP_CAUSE_NORMAL); /* the agent's leg, when the customer left first */
    talk_ended(leg, cause, was_answered, e);
}

static void cb_customer_answered(call_leg *leg, void *arg)
{
    struct entry *e = arg;
    struct agent *a = e->agent;
    leg_set_watch(leg, &(struct leg_watch){NULL, NULL, cb_talk_ended, e});
    if (call_bridge(e->c, leg)) {
        cb_failed(e, "bridge");
        return;
    }
    a->calls++;
    a->talk_start_ms = cw_wall_ms();
    e->q->answered++;
    int wait_s = (int)((cw_wall_ms() - e->join_ms) / 1000);
    call_set_queue(e->c, e->q->id, a->user_id, wait_s);
    queue_log(e, a->user_id, "answer", json_pack("{s:i,s:b}", "wait_s", wait_s, "callback", 1));
}

static void cb_customer_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    cb_failed(arg, sip_cause_name(cause));
}

static void cb_agent_answered(call_leg *leg, void *arg)
{
    struct offer *o = arg;
    struct entry *e = o->e;
    struct agent *a = o->a;
    bool acd = o->acd;
    for (int i = 0; i < e->noffers; i++)
        if (e->offers[i] == o) e->offers[i] = e->offers[--e->noffers];
    a->offer = NULL;
    a->talking = e;
    a->misses = 0;
    e->talking = true;
    e->agent = a;
    free(o);
    /* from here the customer's leg tells how it ends; the agent hanging up ends it too */
    leg_set_watch(leg, &(struct leg_watch){0});
    if (acd) agent_set(a, AGENT_ON_CALL_OUT, NULL);
    call_set_parties(e->c, a->ext, a->name);
    struct dial_target t;
    const char *why = "no_route";
    call_leg *b = NULL;
    if (call_target(e->c, e->caller, e->q->ring_timeout > 20 ? e->q->ring_timeout : 40, &t, &why) ==
        CW_OK)
        b = call_dial(e->c, LEG_B, &t,
                      &(struct leg_watch){NULL, cb_customer_answered, cb_customer_ended, e});
    if (!b) {
        cb_failed(e, why);
        return;
    }
    queue_log(e, a->user_id, "callback_dial", json_pack("{s:s}", "number", e->caller));
}

static void offer_callback(struct entry *e, struct agent *a)
{
    struct offer *o = cw_calloc(1, sizeof *o);
    o->e = e;
    o->a = a;
    o->acd = acd_strategy_is_acd(e->q->strategy);
    o->callback = true;
    a->offer = o;
    e->offers[e->noffers++] = o;
    if (o->acd) agent_set(a, AGENT_RINGING, NULL);
    struct dial_target t = {.kind = SIP_TARGET_USER,
                            .user_id = a->user_id,
                            .timeout_s = e->q->ring_timeout,
                            .no_pickup = true};
    snprintf(t.headers, sizeof t.headers, "X-Cw-Queue: %lld\r\nX-Cw-Callback: %s\r\n",
             (long long)e->q->id, e->caller);
    call *c = call_originate(e->q->domain_id, &t, e->caller, "Callback",
                             &(struct leg_watch){offer_ringing, cb_agent_answered, offer_ended, o});
    if (!c) {
        if (e->nmissed < MAX_MISSED) e->missed[e->nmissed++] = a->user_id;
        offer_remove(e, o);
        if (a->state == AGENT_RINGING) agent_free_again(a);
        return;
    }
    e->c = c;
    call_ref(c);
    o->leg = call_a_leg(c);
    call_set_queue(c, e->q->id, 0, 0);
    queue_log(e, a->user_id, "offer", json_pack("{s:b}", "callback", 1));
}

/* The waiting caller chose to be called back: the entry keeps its place without a call. */
static void entry_to_callback(struct entry *e)
{
    call *c = e->c;
    cw_map_del(&A.entries, cw_hash_str(e->uuid));
    e->callback = true;
    e->c = NULL;
    cw_timer_stop(e->announce_timer);
    cw_timer_stop(e->timeout_timer);
    int wait_s = (int)((cw_wall_ms() - e->join_ms) / 1000);
    call_set_queue(c, e->q->id, 0, wait_s);
    queue_log(e, 0, "callback_request",
              json_pack("{s:s,s:i}", "number", e->caller, "wait_s", wait_s));
    e->done(c, ACD_CALLBACK, e->arg); /* the script confirms and hangs up */
    call_unref(c);
}

static struct acd_candidate candidate(const struct member *m, const struct agent *a, int64_t now)
{
    return (struct acd_candidate){
        .user_id = a->user_id,
        .priority = m->priority,
        .penalty = m->penalty,
        .order = m->order,
        .idle_since_ms = a->idle_since_ms,
        .calls = a->calls,
        .talk_ms = a->talk_ms,
        .logged_in_ms = now - a->login_ms,
    };
}

static int gather(struct queue *q, struct entry *e, int64_t now, struct acd_candidate *cand,
                  struct agent **agents, int max)
{
    int n = 0;
    for (int i = 0; i < q->nmembers && n < max; i++) {
        struct member *m = &q->members[i];
        struct agent *a = agent_get(m->user_id);
        if (!member_eligible(q, m, a, e, now)) continue;
        agents[n] = a;
        cand[n++] = candidate(m, a, now);
    }
    return n;
}

static void on_progress(void *arg);

/* With tier escalation, wake the entry when the next priority tier opens for it. */
static void arm_tier_timer(struct queue *q, struct entry *e, int64_t now)
{
    int64_t waited = now - e->join_ms, next = -1;
    for (int i = 0; i < q->nmembers; i++) {
        int64_t open = tier_open_ms(q, &q->members[i]);
        if (open > waited && (next < 0 || open < next)) next = open;
    }
    if (next >= 0) cw_timer_start(e->tier_timer, next - waited);
}

static void dispatch_entry(struct queue *q, struct entry *e, int64_t now)
{
    struct acd_candidate cand[256];
    struct agent *agents[256];
    if (q->tier_escalation > 0) arm_tier_timer(q, e, now);
    int n = gather(q, e, now, cand, agents, 256);
    if (n == 0 && e->nmissed > 0 && e->noffers == 0) {
        /* everyone free has missed this caller: a new round after a pause */
        cw_timer_start(e->retry_timer, RETRY_MS);
        return;
    }
    if (n == 0) return;
    int picks[256];
    int k = acd_pick(q->strategy, cand, n, q->rr_last, rnd, NULL, picks, 256);
    if (q->strategy == ACD_RING_PROGRESSIVE && k > 0) {
        k = 1; /* one now, one more every progressive_step seconds while nobody answers */
        cw_timer_start(e->progress_timer, (int64_t)q->progressive_step * 1000);
    }
    if (e->callback) {
        offer_callback(e, agents[picks[0]]);
        return;
    }
    for (int i = 0; i < k; i++)
        offer(e, agents[picks[i]]);
}

static void on_retry(void *arg)
{
    struct entry *e = arg;
    if (e->talking || e->finishing) return;
    e->nmissed = 0;
    dispatch(e->q);
}

static void on_progress(void *arg)
{
    struct entry *e = arg;
    if (e->talking || e->finishing) return;
    dispatch_entry(e->q, e, cw_wall_ms());
}

static void on_tier_open(void *arg)
{
    struct entry *e = arg;
    if (e->talking || e->finishing || e->noffers > 0) return; /* a failed offer dispatches */
    dispatch(e->q);
}

static void dispatch_now(struct queue *q)
{
    int64_t now = cw_wall_ms();
    for (struct entry *e = q->entries; e; e = e->next) {
        if (e->talking || e->noffers > 0 || e->finishing || e->greeting) continue;
        if (e->callback && now < e->not_before_ms) continue;
        dispatch_entry(q, e, now);
        if (e->noffers == 0 && q->tier_escalation == 0) break; /* nobody free for the head */
    }
}

/* Dispatches run from the kick event, never inside a leg or agent callback.
 * Only the queues marked dirty are visited, so the cost of a kick does not
 * grow with the number of queues that have callers. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    for (int round = 0; round < 8 && A.dirty; round++) {
        struct queue *list = A.dirty;
        A.dirty = NULL;
        for (struct queue *q = list, *next; q; q = next) {
            next = q->next_dirty;
            q->next_dirty = NULL;
            q->dirty = false;
            if (q->active) dispatch_now(q);
        }
    }
    if (A.dirty) event_active(A.kick, 0, 0); /* a long chain: go on at the next turn */
    agents_save();
}

static void dispatch(struct queue *q)
{
    if (!q->dirty) {
        q->dirty = true;
        q->next_dirty = A.dirty;
        A.dirty = q;
    }
    event_active(A.kick, 0, 0);
}

/* leave-empty: when the last agent of a queue logs out, its waiting callers leave. */
static void leave_if_empty(struct agent *gone)
{
    for (struct queue *q = A.active, *nq; q; q = nq) {
        nq = q->next_active;
        if (!q->leave_empty || !cw_map_get(&q->member_idx, (uint64_t)gone->user_id)) continue;
        if (logged_in_members(q) > 0) continue;
        for (struct entry *e = q->entries, *ne; e; e = ne) {
            ne = e->next;
            if (!e->talking && e->noffers == 0 && !e->callback) entry_finish(e, ACD_EMPTY);
        }
    }
}

static void dispatch_for_agent(struct agent *a)
{
    struct membership *m = cw_map_get(&A.memberships, (uint64_t)a->user_id);
    for (int i = 0; m && i < m->n; i++)
        if (m->q[i]->active) dispatch(m->q[i]);
}

/* ---- announcements ---- */

static int entry_position(const struct entry *e)
{
    int pos = 0;
    for (const struct entry *x = e->q->entries; x; x = x->next) {
        if (x->talking) continue;
        pos++;
        if (x == e) break;
    }
    return pos;
}

/* Seconds until an agent is likely free: position x average talk time / agents;
 * -1 when the group sets no average talk time (seed 001 L2762: 0 = off). */
static int64_t estimated_wait_s(const struct entry *e)
{
    const struct queue *q = e->q;
    if (q->avg_talk <= 0) return -1;
    int agents = logged_in_members(q);
    return (int64_t)entry_position(e) * q->avg_talk / (agents > 0 ? agents : 1);
}

static int add_prompt(char **files, int n, int max, const char *lang, const char *name)
{
    if (n < max) files[n++] = cw_sprintf("%s/%s", lang, name);
    return n;
}

/* Position and estimated wait while all agents are busy; MOH resumes after. */
static void on_announce(void *arg)
{
    struct entry *e = arg;
    struct queue *q = e->q;
    if (e->talking || e->finishing || e->noffers > 0 || e->greeting || e->announcing) goto again;
    char *files[24];
    int n = 0;
    if (q->announce_position) {
        int pos = entry_position(e);
        if (pos == 1) {
            n = add_prompt(files, n, 24, q->lang, "you_are_next");
        } else {
            n = add_prompt(files, n, 24, q->lang, "you_are_caller_number");
            n += call_say_words(q->lang, "number", pos, files + n, 24 - n);
        }
    }
    if (q->callback_key == '1') n = add_prompt(files, n, 24, q->lang, "callback_offer");
    int64_t est = estimated_wait_s(e);
    if (est >= 0) {
        n = add_prompt(files, n, 24, q->lang, "estimated_wait");
        if (est < 60)
            n = add_prompt(files, n, 24, q->lang, "less_than_minute");
        else
            n += call_say_words(q->lang, "duration", (est + 59) / 60 * 60, files + n, 24 - n);
    }
    if (n > 0) {
        e->announcing = true;
        media_play(leg_media(call_a_leg(e->c)), (const char *const *)files, n, false, TAG_ANNOUNCE);
        for (int i = 0; i < n; i++)
            free(files[i]);
    }
again:
    if (q->announce_interval > 0)
        cw_timer_start(e->announce_timer, (int64_t)q->announce_interval * 1000);
}

/* ---- entries ---- */

static void entry_unlink(struct entry *e)
{
    struct queue *q = e->q;
    for (struct entry **p = &q->entries; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    q->nentries--;
    if (!q->entries) queue_activate(q, false);
    if (!e->callback) cw_map_del(&A.entries, cw_hash_str(e->uuid));
}

static void entry_finish(struct entry *e, enum acd_result r)
{
    e->finishing = true;
    entry_unlink(e);
    cancel_offers(e, NULL);
    cw_timer_free(e->timeout_timer);
    cw_timer_free(e->progress_timer);
    cw_timer_free(e->retry_timer);
    cw_timer_free(e->announce_timer);
    cw_timer_free(e->tier_timer);
    if (r != ACD_ANSWERED) {
        int wait_s = (int)((cw_wall_ms() - e->join_ms) / 1000);
        if (e->c) call_set_queue(e->c, e->q->id, 0, wait_s);
        if (r == ACD_HANGUP) e->q->abandoned++;
        queue_log(e, 0, r == ACD_HANGUP ? "abandon" : acd_result_name(r),
                  json_pack("{s:i}", "wait_s", wait_s));
    }
    call *c = e->c;
    acd_done_fn done = e->callback ? NULL : e->done; /* a callback's script ended long ago */
    void *arg = e->arg;
    free(e);
    if (done) done(c, r, arg);
    if (c) call_unref(c);
}

static void on_max_wait(void *arg)
{
    struct entry *e = arg;
    if (e->talking) return;
    entry_finish(e, ACD_TIMEOUT);
}

/* What a waiting caller hears between greeting and announcements: the queue's music on
 * hold (or the stream the script chose) or, if the group says so, ringing. */
static void hold_audio(struct entry *e)
{
    media_id m = leg_media(call_a_leg(e->c));
    if (e->q->ringback && !e->moh_chosen)
        media_play_tone(m, MEDIA_TONE_RINGBACK, TAG_HOLD);
    else
        media_moh(m, e->moh, TAG_HOLD);
}

/* Seed 001 §8.3: a VIP caller's priority (lower is served first); 100 for everyone else. */
static int vip_priority(int64_t domain, const char *number)
{
    int64_t p = 100;
    if (*number)
        store_query_int(store_main(), &p,
                        "SELECT priority FROM vip_numbers WHERE domain_id = ? AND number = ?",
                        SA_INT(domain), SA_STR(number), SA_END);
    return (int)p;
}

int acd_join(call *c, int64_t queue_id, const struct acd_join_opts *o, acd_done_fn done, void *arg)
{
    struct queue *q = queue_load(queue_id);
    if (!q || q->domain_id != call_domain(c)) return CW_ENOENT;
    if (cw_map_get(&A.entries, cw_hash_str(call_uuid(c)))) return CW_ESTATE;
    struct entry *e = cw_calloc(1, sizeof *e);
    e->q = q;
    e->c = c;
    e->seq = ++A.seq;
    cw_strlcpy(e->uuid, call_uuid(c), sizeof e->uuid);
    cw_strlcpy(e->caller, call_caller_number(c), sizeof e->caller);
    e->priority = o && o->priority ? o->priority : vip_priority(q->domain_id, e->caller);
    e->join_ms = cw_wall_ms();
    e->done = done;
    e->arg = arg;
    cw_strlcpy(e->moh, o && o->moh ? o->moh : q->moh, sizeof e->moh);
    e->moh_chosen = o && o->moh;
    e->timeout_timer = cw_timer_new(on_max_wait, e);
    e->progress_timer = cw_timer_new(on_progress, e);
    e->retry_timer = cw_timer_new(on_retry, e);
    e->announce_timer = cw_timer_new(on_announce, e);
    e->tier_timer = cw_timer_new(on_tier_open, e);
    call_ref(c);
    /* ordered by priority (lower first), then arrival */
    struct entry **p = &q->entries;
    while (*p &&
           ((*p)->priority < e->priority || ((*p)->priority == e->priority && (*p)->seq < e->seq)))
        p = &(*p)->next;
    e->next = *p;
    *p = e;
    q->nentries++;
    queue_activate(q, true);
    cw_map_put(&A.entries, cw_hash_str(call_uuid(c)), e);
    queue_log(e, 0, "join",
              json_pack("{s:i,s:i}", "priority", e->priority, "position", q->nentries));
    if (q->strategy == ACD_NOT_SET) {
        entry_finish(e, ACD_EMPTY);
        return CW_OK;
    }
    if (acd_strategy_is_acd(q->strategy) && members_without_operator(q)) {
        log_warn("acd", "queue %s: none of its members is an operator; the call ends", q->name);
        entry_finish(e, ACD_NO_OPERATORS);
        return CW_OK;
    }
    if (q->max_len > 0 && q->nentries > q->max_len) {
        entry_finish(e, ACD_FULL);
        return CW_OK;
    }
    if (!q->join_empty && logged_in_members(q) == 0) {
        entry_finish(e, ACD_EMPTY);
        return CW_OK;
    }
    int max_wait = o && o->max_wait_s ? o->max_wait_s : q->max_wait;
    if (max_wait > 0) cw_timer_start(e->timeout_timer, (int64_t)max_wait * 1000);
    call_answer(c);
    call_set_queue(c, q->id, 0, 0);
    call_mark_state(c, "queued");
    if (q->greeting[0]) {
        /* seed 001 §8.1.2: the greeting comes before the call goes to the group */
        const char *files[] = {q->greeting};
        e->greeting = media_play(leg_media(call_a_leg(c)), files, 1, false, TAG_GREETING) == CW_OK;
    }
    if (!e->greeting) hold_audio(e);
    dispatch(q);
    /* if nobody is free right away, tell the caller where they stand */
    if (q->announce_position || q->avg_talk > 0 || q->announce_interval > 0 || q->callback_key)
        cw_timer_start(e->announce_timer, 1500);
    return CW_OK;
}

void acd_caller_media_event(call *c, const struct media_event *ev)
{
    struct entry *e = cw_map_get(&A.entries, cw_hash_str(call_uuid(c)));
    if (!e || e->talking) return;
    if (ev->type == MEDIA_EV_DTMF && e->q->callback_key && ev->digit == e->q->callback_key &&
        e->noffers == 0 && !e->greeting) {
        entry_to_callback(e);
        return;
    }
    if (ev->type != MEDIA_EV_PLAY_DONE) return;
    if (ev->tag == TAG_GREETING && e->greeting) {
        e->greeting = false;
        hold_audio(e);
        dispatch(e->q); /* now the caller is in line for an operator */
    } else if (ev->tag == TAG_ANNOUNCE && e->announcing) {
        e->announcing = false;
        hold_audio(e);
    }
}

void acd_caller_gone(call *c)
{
    struct entry *e = cw_map_get(&A.entries, cw_hash_str(call_uuid(c)));
    if (!e) return;
    if (e->talking) return; /* talk_ended finishes it when the agent leg goes */
    entry_finish(e, ACD_HANGUP);
}

/* ---- real-time views ---- */

json_t *acd_agent_json(int64_t domain_id, int64_t user_id)
{
    struct agent *a = agent_get(user_id);
    if (!a || a->domain_id != domain_id) return NULL;
    json_t *j =
        json_pack("{s:I,s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:I}", "user_id", (json_int_t)a->user_id,
                  "name", a->name, "extension", a->ext, "state", agent_state_name(a->state),
                  "online", sip_user_online(a->user_id), "since_ms", (json_int_t)a->since_ms,
                  "time_in_state_s", (json_int_t)((cw_wall_ms() - a->since_ms) / 1000), "calls",
                  (json_int_t)a->calls, "talk_s", (json_int_t)(a->talk_ms / 1000));
    if (a->reason[0]) json_object_set_new(j, "reason", json_string(a->reason));
    if (a->talking) json_object_set_new(j, "call", json_string(call_uuid(a->talking->c)));
    if (a->offer) json_object_set_new(j, "call", json_string(a->offer->e->uuid));
    return j;
}

json_t *acd_agents_json(int64_t domain_id)
{
    json_t *arr = json_array();
    store_res *r;
    if (store_query(
            store_main(), &r,
            "SELECT id FROM users WHERE domain_id = ? AND is_operator = 1 ORDER BY extension",
            SA_INT(domain_id), SA_END) >= 0)
        while (store_next(r)) {
            json_t *j = acd_agent_json(domain_id, store_int(r, 0));
            if (j) json_array_append_new(arr, j);
        }
    store_res_free(r);
    return arr;
}

/* A group's counts at this moment (seed 001 §8.5.2), without the callers' list. */
static json_t *queue_counts_json(struct queue *q)
{
    int counts[AGENT_STATE_COUNT] = {0}, online = 0, nwait = 0;
    for (int i = 0; i < q->nmembers; i++) {
        struct agent *a = agent_get(q->members[i].user_id);
        if (!a) continue;
        counts[a->state]++;
        if (a->state != AGENT_LOGGED_OUT && sip_user_online(a->user_id)) online++;
    }
    for (struct entry *e = q->entries; e; e = e->next)
        if (!e->talking) nwait++;
    return json_pack(
        "{s:I,s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:I,s:I}", "id", (json_int_t)q->id,
        "name", q->name, "extension", q->ext, "strategy", acd_strategy_name(q->strategy), "queue",
        nwait, "logged_in", online, "available", counts[AGENT_AVAILABLE], "inbound",
        counts[AGENT_ON_CALL_IN] + counts[AGENT_RINGING], "outbound", counts[AGENT_ON_CALL_OUT],
        "wrap_up", counts[AGENT_WRAP_UP], "break", counts[AGENT_BREAK], "away", counts[AGENT_AWAY],
        "campaign", counts[AGENT_CAMPAIGN], "answered", (json_int_t)q->answered, "abandoned",
        (json_int_t)q->abandoned);
}

json_t *acd_queues_json(int64_t domain_id)
{
    json_t *arr = json_array();
    store_res *r;
    if (store_query(store_main(), &r, "SELECT id FROM call_groups WHERE domain_id = ? ORDER BY id",
                    SA_INT(domain_id), SA_END) < 0) {
        store_res_free(r);
        return arr;
    }
    int64_t now = cw_wall_ms();
    while (store_next(r)) {
        struct queue *q = queue_load(store_int(r, 0));
        if (!q) continue;
        json_t *waiting = json_array();
        for (struct entry *e = q->entries; e; e = e->next) {
            if (e->talking) continue;
            json_array_append_new(waiting, json_pack("{s:s,s:I,s:i}", "call", e->uuid, "wait_s",
                                                     (json_int_t)((now - e->join_ms) / 1000),
                                                     "priority", e->priority));
        }
        json_t *j = queue_counts_json(q);
        json_object_set_new(j, "waiting", waiting);
        json_array_append_new(arr, j);
    }
    store_res_free(r);
    return arr;
}

/*
 * queue.stats: a group's counts, sent to its tenant whenever they differ
 * from the last ones sent. Changes only mark the queue; the comparison runs
 * STATS_MS later, so a burst of changes costs one look per queue and the
 * routing decisions never wait for it.
 */
static void stats_touch(struct queue *q)
{
    if (q->stats_dirty || !A.stats_timer) return;
    if (!A.stats_dirty) cw_timer_start(A.stats_timer, STATS_MS);
    q->stats_dirty = true;
    q->next_stats = A.stats_dirty;
    A.stats_dirty = q;
}

/* An agent's first change loads the groups it belongs to, so their counts are followed
 * from then on even if no caller has joined them since the start. */
static struct membership *stats_memberships(int64_t user_id)
{
    struct membership *m = cw_map_get(&A.memberships, (uint64_t)user_id);
    if (m) return m;
    store_res *r;
    if (store_query(store_main(), &r, "SELECT group_id FROM call_group_members WHERE user_id = ?",
                    SA_INT(user_id), SA_END) >= 0)
        while (store_next(r))
            queue_load(store_int(r, 0));
    store_res_free(r);
    m = cw_map_get(&A.memberships, (uint64_t)user_id);
    if (!m) { /* in no group: remember that, not to ask again */
        m = cw_calloc(1, sizeof *m);
        cw_map_put(&A.memberships, (uint64_t)user_id, m);
    }
    return m;
}

static void stats_touch_agent(const struct agent *a)
{
    struct membership *m = stats_memberships(a->user_id);
    for (int i = 0; m && i < m->n; i++)
        stats_touch(m->q[i]);
}

static void on_stats_due(void *arg)
{
    struct queue *list = A.stats_dirty;
    A.stats_dirty = NULL;
    for (struct queue *q = list, *next; q; q = next) {
        next = q->next_stats;
        q->next_stats = NULL;
        q->stats_dirty = false;
        json_t *now = queue_counts_json(q);
        if (q->stats_sent && json_equal(now, q->stats_sent)) {
            json_decref(now);
            continue;
        }
        json_decref(q->stats_sent);
        q->stats_sent = json_incref(now);
        events_emit("queue.stats", q->domain_id, now);
    }
}

/* ---- start and stop ---- */

void acd_api_init(void);

/* cw_queue_waiting{domain,queue} and cw_agents{domain,state} before each /metrics render. */
static void collect(void *arg)
{
    metric *w = metrics_gauge("cw_queue_waiting", "Callers waiting in a queue", "domain,queue");
    metric *ag = metrics_gauge("cw_agents", "Agents by state", "domain,state");
    metrics_clear(w);
    metrics_clear(ag);
    store_res *r;
    if (store_query(store_main(), &r, "SELECT id, name FROM domains", SA_END) < 0) return;
    cw_map names;
    cw_map_init(&names);
    while (store_next(r))
        cw_map_put(&names, (uint64_t)store_int(r, 0), cw_strdup(store_str(r, 1)));
    for (struct queue *q = A.active; q; q = q->next_active) {
        const char *dn = cw_map_get(&names, (uint64_t)q->domain_id);
        int n = 0;
        for (struct entry *e = q->entries; e; e = e->next)
            if (!e->talking) n++;
        metrics_set(w, n, dn ? dn : "", q->name);
    }
    for (size_t i = 0; i < A.agents.cap; i++) {
        struct agent *a = A.agents.vals[i];
        if (!A.agents.keys[i] || A.agents.keys[i] == UINT64_MAX || !a) continue;
        const char *dn = cw_map_get(&names, (uint64_t)a->domain_id);
        metrics_add(ag, 1, dn ? dn : "", agent_state_name(a->state));
    }
    for (size_t i = 0; i < names.cap; i++)
        if (names.keys[i] && names.keys[i] != UINT64_MAX) free(names.vals[i]);
    cw_map_free(&names);
    store_res_free(r);
}

int acd_init(void)
{
    metrics_on_collect(collect, NULL);
    cw_map_init(&A.queues);
    cw_map_init(&A.agents);
    cw_map_init(&A.entries);
    cw_map_init(&A.memberships);
    cw_random_bytes(&A.rng, sizeof A.rng);
    A.kick = event_new(loop_base(), -1, 0, on_kick, NULL);
    A.stats_timer = cw_timer_new(on_stats_due, NULL);
    if (!A.rng) A.rng = 88172645463325252ULL;
    acd_api_init();
    return CW_OK;
}

void acd_shutdown(void)
{
    agents_save();
    for (size_t i = 0; i < A.agents.cap; i++) {
        struct agent *a = A.agents.vals[i];
        if (!A.agents.keys[i] || A.agents.keys[i] == UINT64_MAX || !a) continue;
        cw_timer_free(a->wrap_timer);
        free(a);
    }
    for (size_t i = 0; i < A.queues.cap; i++) {
        struct queue *q = A.queues.vals[i];
        if (!A.queues.keys[i] || A.queues.keys[i] == UINT64_MAX || !q) continue;
        for (struct entry *e = q->entries, *n; e; e = n) {
            n = e->next;
            for (int k = 0; k < e->noffers; k++)
                free(e->offers[k]);
            cw_timer_free(e->timeout_timer);
            cw_timer_free(e->progress_timer);
            cw_timer_free(e->retry_timer);
            cw_timer_free(e->announce_timer);
            cw_timer_free(e->tier_timer);
            if (e->c) call_unref(e->c);
            free(e);
        }
        free(q->members);
        cw_map_free(&q->member_idx);
        json_decref(q->stats_sent);
        free(q);
    }
    for (size_t i = 0; i < A.memberships.cap; i++) {
        struct membership *m = A.memberships.vals[i];
        if (!A.memberships.keys[i] || A.memberships.keys[i] == UINT64_MAX || !m) continue;
        free(m->q);
        free(m);
    }
    cw_map_free(&A.memberships);
    if (A.kick) event_free(A.kick);
    A.kick = NULL;
    cw_timer_free(A.stats_timer);
    A.stats_timer = NULL;
    A.stats_dirty = NULL;
    A.active = NULL;
    A.dirty = NULL;
    cw_map_free(&A.agents);
    cw_map_free(&A.queues);
    cw_map_free(&A.entries);
}
