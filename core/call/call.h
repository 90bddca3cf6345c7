/*
 * call.h - calls and legs: the B2BUA core.
 *
 * A call is one conversation as the platform sees it: the inbound leg that
 * started it (the A leg), the legs the platform dials for it (B legs: a user,
 * a queue agent, a trunk) and supervisor legs listening in. Every leg is one
 * SIP dialog plus one media session, and media is always anchored here, so
 * recording, listening and transfers work on any call.
 *
 * Owned by the core thread. A call lives until all its legs have ended and
 * its script has finished; then its CDR is written and it is freed.
 */
#ifndef CW_CALL_H
#define CW_CALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "media/media.h"
#include "sip/sip.h"

typedef struct call call;
typedef struct call_leg call_leg;

enum leg_role { LEG_A = 1, LEG_B, LEG_SPY };
enum leg_state { LEG_NEW = 0, LEG_RINGING, LEG_EARLY, LEG_UP, LEG_ENDED };

/* What became of an attempt to reach someone (the values scripts see). */
enum call_outcome {
    OUT_ANSWERED = 0,
    OUT_BUSY,
    OUT_NO_ANSWER,
    OUT_NO_ROUTE,
    OUT_REJECTED,
    OUT_CANCELLED,
    OUT_FAILED,
};
const char *call_outcome_name(enum call_outcome o);
enum call_outcome call_outcome_from_cause(enum sip_cause c);

/* Notifications about a leg the caller of call_dial() asked for. */
struct leg_watch {
    /* ringing (180/183) */
    void (*ringing)(call_leg *leg, void *arg);
    /* answered: media is ready, not yet bridged */
    void (*answered)(call_leg *leg, void *arg);
    /* failed before answer, or ended after answer */
    void (*ended)(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg);
    void *arg;
};

struct dial_target {
    enum sip_target_kind kind;
    bool no_pickup;  /* nobody else may answer it (a queue's offer to one agent) */
    int64_t user_id; /* may be of another domain of the pool (inter-domain calls) */
    int64_t trunk_id;
    char uri[256];      /* URI, or the number to send through the trunk */
    char from_user[64]; /* caller id to present; "" = the caller's number */
    int timeout_s;
    char headers[512];
};

int call_init(void);
/* Handlers the daemon gives to sip_start() and media_init(). */
const struct sip_handlers *call_sip_handlers(void);
void call_on_media_event(const struct media_event *ev, void *arg);
/* Hang up every call (graceful stop); CDRs are flushed by cdr_shutdown(). */
void call_shutdown(void);

/* ---- lookup ---- */
call *call_by_uuid(const char *uuid);
const char *call_uuid(const call *c);
int64_t call_domain(const call *c);
const char *call_caller_number(const call *c);
const char *call_direction(const call *c);
const char *call_caller_name(const call *c);
const char *call_dialed(const call *c);
bool call_answered(const call *c);
call_leg *call_a_leg(call *c);
call *leg_call(call_leg *l);
enum leg_state leg_state(const call_leg *l);
media_id leg_media(const call_leg *l);
int64_t leg_user(const call_leg *l);
const char *leg_number(const call_leg *l);
enum leg_role leg_role(const call_leg *l);
bool leg_outbound(const call_leg *l); /* we sent its INVITE */
/* A B leg ringing a phone that someone else may answer instead (pickup). */
bool leg_pickable(const call_leg *l);
/* Who hears about a leg now (to chain a watcher in front of it). */
struct leg_watch leg_get_watch(const call_leg *l);
sip_leg_id leg_sip(const call_leg *l);
/* The legs of a call, newest first: for (l = call_legs(c); l; l = leg_next(l)). */
call_leg *call_legs(call *c);
call_leg *leg_next(call_leg *l);

/* Iterate active calls (for the API): fn returns false to stop. */
void call_foreach(bool (*fn)(call *c, void *arg), void *arg);
json_t *call_to_json(const call *c);

/* ---- actions ---- */

/* Answer the A leg (200 with our SDP); no-op when already answered. */
int call_answer(call *c);
/* Answer an inbound leg whatever its role (a leg moved into another call). */
int leg_answer(call_leg *l);
/*
 * Move a leg into another call (attended transfer, pickup, park): its old
 * call loses it (an A leg: the old driver's a_ended; its watcher's ended,
 * with the leg still naming the old call) and ends when it was the last
 * leg there. The leg arrives with no watcher: set one.
 */
void call_leg_move(call_leg *l, call *to, enum leg_role role);
/* Send 180 (or 183 with early media when early is true) on the A leg. */
int call_ring(call *c, bool early);

/*
 * What a target string means for this call: "user:<id>", "sip:..." or a
 * number (an extension or login of the domain, routing number + extension
 * of another domain of the pool, or an outside number through a trunk when
 * the caller's restriction allows). why: "no_route" or "restricted".
 */
int call_target(call *c, const char *t, int timeout_s, struct dial_target *out, const char **why);

/*
 * How many lines of a destination are in use: live legs of any call to or
 * from that user (t->kind user), or to that number (trunk or URI targets).
 */
int call_legs_to(const struct dial_target *t);

/* Dial a new B (or spy) leg for this call; events go to w. NULL on failure. */
call_leg *call_dial(call *c, enum leg_role role, const struct dial_target *t,
                    const struct leg_watch *w);
/* Replace who hears about a leg (e.g. once an offer became a conversation). */
void leg_set_watch(call_leg *l, const struct leg_watch *w);
/* Hear the leg's media events too (a prompt played to it ended); fn NULL stops. */
typedef void (*leg_media_fn)(call_leg *l, const struct media_event *ev, void *arg);
void leg_set_media_hook(call_leg *l, leg_media_fn fn, void *arg);
/* Hang up one leg (BYE, CANCEL or a final error on an unanswered inbound leg). */
void leg_hangup(call_leg *l, enum sip_cause cause);
/* Hang up the whole call: every leg. */
void call_hangup(call *c, enum sip_cause cause);

/*
 * A call the platform places itself (callbacks, click-to-call, campaigns):
 * its A leg dials t, showing caller / caller_name; w hears of that leg
 * (answered: dial and bridge a B leg from there). NULL when it cannot start.
 */
call *call_originate(int64_t domain_id, const struct dial_target *t, const char *caller,
                     const char *caller_name, const struct leg_watch *w);

/* Bridge A with a B leg; answers A first if needed. */
int call_bridge(call *c, call_leg *b);
/* The B leg currently bridged to A (NULL if none). */
call_leg *call_bridged(call *c);
/*
 * Blind transfer by the platform (API, scripts): ring target for the A
 * party, connect them on answer and then let the current B leg go; on
 * failure A goes back to B. REFER from phones (blind, and attended with
 * Replaces) is handled the same way inside the call layer.
 */
int call_transfer(call *c, const char *target);
/* Put the conversation on hold (both parties hear music) or take it off. */
int call_hold(call *c, bool on);
/* The call lives on without its script: a transfer is running or A talks to someone. */
bool call_busy_elsewhere(const call *c);
/* Mark a transfer (or a park) as running: the call outlives its script meanwhile. */
void call_set_transferring(call *c, bool on);

/*
 * Prompt names that speak a value ("en/n_20", ...) via the cw.say library:
 * kind is number, digits, duration (seconds), date or time. Appends up to
 * max names to files (each owned by the caller, free()) and returns how many.
 */
int call_say_words(const char *lang, const char *kind, int64_t value, char **files, int max);

/* A voicemail PIN as stored in users.voicemail_pin (malloc'd). */
char *call_vm_pin_hash(const char *pin);

/* ---- record keeping ---- */

/* Add an entry to the call's event protocol (goes to the CDR). */
void call_log(call *c, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Mark the CDR state list (dialing, alerting, answered, hold_a, hold_b, released). */
void call_mark_state(call *c, const char *state);
void call_set_queue(call *c, int64_t queue_id, int64_t agent_id, int wait_s);
void call_set_recording(call *c, const char *path);
/* Who the CDR shows as the A party (an originated call shows the callee otherwise). */
void call_set_parties(call *c, const char *a_number, const char *a_name);
/* CDR type: internal, incoming, outgoing, transit; and the trunk used. */
void call_set_direction(call *c, const char *direction, int64_t trunk_id);

/* Keep the call alive while something (a script, the ACD) refers to it. */
void call_ref(call *c);
void call_unref(call *c);

/*
 * Per-call hooks for the scripting and ACD layers: a media event for the A
 * leg, and the end of the A leg. Set by whoever drives the call.
 */
struct call_driver {
    void (*media_event)(call *c, call_leg *l, const struct media_event *ev, void *arg);
    void (*a_ended)(call *c, enum sip_cause cause, void *arg);
    void *arg;
};
void call_set_driver(call *c, const struct call_driver *d);
/* Forget the driver if it is still the one with this arg (another may have taken over). */
void call_clear_driver(call *c, void *arg);

/* One feature's state hung on the call (in-call DTMF codes); free_fn runs when the call is freed.
 */
void *call_feature(call *c);
void call_set_feature(call *c, void *data, void (*free_fn)(void *));

#endif
