/*
 * acd.h - automatic call distribution: queues (call-processing groups),
 * agents and their states, offers, and the real-time view.
 *
 * Runs on the core thread. Queue settings and members come from the
 * call_groups and call_group_members tables (re-read when a caller joins,
 * so API edits apply to the next call); agent states are kept in memory and
 * written through to the agents table. Offers are event-driven: a join, an
 * agent becoming available or an offer failing dispatches at once.
 */
#ifndef CW_ACD_H
#define CW_ACD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "call/call.h"

enum agent_state {
    AGENT_LOGGED_OUT = 0,
    AGENT_AVAILABLE,
    AGENT_RINGING,
    AGENT_ON_CALL_IN,
    AGENT_ON_CALL_OUT,
    AGENT_WRAP_UP,
    AGENT_BREAK,
    AGENT_AWAY,
    AGENT_CAMPAIGN,
    AGENT_STATE_COUNT
};
const char *agent_state_name(enum agent_state s);
int agent_state_parse(const char *s, enum agent_state *out);

int acd_init(void);
void acd_shutdown(void);

struct acd_join_opts {
    int max_wait_s;  /* 0 = the queue's setting */
    int priority;    /* lower is served first; 0 = from the VIP list, else normal */
    const char *moh; /* a music stream; NULL = the queue's waiting audio (music or ringback) */
};

/* How a caller left the queue. */
enum acd_result {
    ACD_ANSWERED = 0, /* talked to an agent; returned when that conversation ended */
    ACD_TIMEOUT,      /* max wait reached */
    ACD_FULL,         /* max queue length reached */
    ACD_EMPTY,        /* no agent logged in (join-empty / leave-empty policy) */
    ACD_HANGUP,       /* caller hung up while waiting */
    ACD_CALLBACK,     /* caller chose to be called back */
    ACD_NO_OPERATORS, /* an ACD group whose members include no operator ends the call */
    ACD_ERROR,
};
const char *acd_result_name(enum acd_result r);

typedef void (*acd_done_fn)(call *c, enum acd_result r, void *arg);

/* Find a queue of a domain by id, name or extension; 0 if none. */
int64_t acd_queue_find(int64_t domain_id, const char *key);
/* Put a caller into a queue; done is called exactly once. */
int acd_join(call *c, int64_t queue_id, const struct acd_join_opts *o, acd_done_fn done, void *arg);
/* Forward the caller's media events while queued (DTMF for callback, play-done). */
void acd_caller_media_event(call *c, const struct media_event *ev);
/* The caller's A leg ended while queued or talking. */
void acd_caller_gone(call *c);

/* Agent control (API, feature codes). */
int acd_agent_set_state(int64_t domain_id, int64_t user_id, enum agent_state st,
                        const char *reason);
json_t *acd_agent_json(int64_t domain_id, int64_t user_id);
json_t *acd_agents_json(int64_t domain_id);
json_t *acd_queues_json(int64_t domain_id);

#endif
