/*
 * dtmf.c - in-call codes of the called party (seed 002 ring lists, seed 001
 * §13.1), dialled from the phone during a conversation:
 *
 *   ##<number>[#]  transfer: the caller waits with music while <number>
 *                  rings for the one who dialled it. Hanging up then hands
 *                  the caller over, before the answer (blind) or after
 *                  talking to the new party first (consultative). If the
 *                  new party does not answer, the caller comes back.
 *                  ##<park code> or ##<slot> parks the caller instead.
 *   *              while the new party talks: switch to the waiting caller
 *                  and back (whoever waits hears music); while it rings:
 *                  give up and return to the caller.
 *   #              while it rings: give up and return; once answered: all
 *                  three in one conference.
 *   0              switch the caller to fax: the dialler's fax box receives
 *                  the document (stored, mailed as call:fax_receive() does)
 *                  and the dialler is let go.
 *
 * The number ends with # or a pause of call.dtmf_timeout seconds. The
 * caller's (A leg's) digits stay the routing script's; after a transfer the
 * new party may transfer again. Core thread; the state hangs on the call
 * (call_feature()).
 */
#include "base/cw.h"
#include "call/call_int.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "loop/timer.h"

#include <stdlib.h>
#include <string.h>

#define FIRST_DIGIT_MS 10000 /* after ##, the wait for the number's first digit */

enum step {
    IDLE,
    HASH1,   /* one # seen */
    COLLECT, /* reading the number */
    RINGING, /* the new party rings; the caller hears music */
    CONSULT, /* the dialler talks to the new party */
    TOGGLED, /* the dialler talks to the caller again; the new party hears music */
    BLIND,   /* the dialler hung up while the new party rang */
    CONF,    /* all three */
    FAX,     /* the caller sends a fax to the dialler's box */
};

struct feat {
    call *c;
    enum step step;
    call_leg *b; /* the one who dialled the code */
    call_leg *t; /* the new party */
    struct leg_watch b_prev;
    char digits[32];
    int n;
    cw_timer *timer;
    uint32_t fax_tag;
};

static uint32_t next_room;

static void feat_free(void *p)
{
    struct feat *f = p;
    cw_timer_free(f->timer);
    free(f);
}

static bool up(call_leg *l)
{
    return l && leg_state(l) == LEG_UP;
}

static void talk_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    /* the conversation after a transfer is over: nobody else is left to end it */
    call *c = leg_call(leg);
    if (call_a_leg(c) && leg_state(call_a_leg(c)) != LEG_ENDED)
        call_hangup(c, cause ? cause : SIP_CAUSE_NORMAL);
}

static void reset(struct feat *f)
{
    cw_timer_stop(f->timer);
    f->step = IDLE;
    f->n = 0;
    f->digits[0] = '\0';
    f->b = f->t = NULL;
}

/* The dialler and the caller talk again (the new party is gone or never came). */
static void back_to_caller(struct feat *f)
{
    call *c = f->c;
    call_leg *b = f->b;
    if (f->step >= RINGING) {
        leg_set_watch(b, &f->b_prev);
        call_set_transferring(c, false);
    }
    reset(f);
    if (!up(call_a_leg(c)) || !up(b)) return;
    media_stop(leg_media(b));
    if (call_bridge(c, b)) call_hangup(c, SIP_CAUSE_FAILED);
}

/* The caller and the new party talk; the dialler is out. */
static void hand_over(struct feat *f)
{
    call *c = f->c;
    call_leg *t = f->t, *b = f->b;
    leg_set_watch(t, &(struct leg_watch){NULL, NULL, talk_ended, NULL});
    call_set_transferring(c, false);
    reset(f);
    if (!up(call_a_leg(c))) return;
    call_log(c, "transferred", "%s -> %s (in-call code)", leg_number(b), leg_number(t));
    events_emit(
        "call.transferred", call_domain(c),
        json_pack("{s:s,s:s,s:s}", "call", call_uuid(c), "to", leg_number(t), "by", leg_number(b)));
    if (call_bridge(c, t)) call_hangup(c, SIP_CAUSE_FAILED);
}

static void t_ringing(call_leg *leg, void *arg)
{
    struct feat *f = arg;
    if (f->step == RINGING && up(f->b)) media_play_tone(leg_media(f->b), MEDIA_TONE_RINGBACK, 0);
}

static void t_answered(call_leg *leg, void *arg)
{
    struct feat *f = arg;
    if (f->step == BLIND) {
        hand_over(f);
    } else if (f->step == RINGING && up(f->b)) {
        f->step = CONSULT;
        media_stop(leg_media(f->b));
        media_bridge(leg_media(f->b), leg_media(leg));
        call_log(f->c, "consult", "%s talks to %s", leg_number(f->b), leg_number(leg));
    } else {
        leg_hangup(leg, SIP_CAUSE_NORMAL);
    }
}

static void t_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    struct feat *f = arg;
    call *c = f->c;
    f->t = NULL;
    call_log(c, "consult-ended", "%s: %s", leg_number(leg), sip_cause_name(cause));
    if (f->step == BLIND) { /* nobody is left for the caller */
        call_set_transferring(c, false);
        reset(f);
        call_hangup(c, cause == SIP_CAUSE_NORMAL ? cause : SIP_CAUSE_NO_ANSWER);
        return;
    }
    back_to_caller(f);
}

/* The dialler hung up: the transfer completes (or waits for the answer). */
static void b_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    struct feat *f = arg;
    struct leg_watch prev = f->b_prev;
    if (f->step == RINGING) {
        f->step = BLIND;
        call_log(f->c, "transfer", "%s let go; %s still rings", leg_number(leg), leg_number(f->t));
    } else if (f->step == CONSULT || f->step == TOGGLED || f->step == CONF) {
        hand_over(f);
    }
    if (prev.ended) prev.ended(leg, cause, was_answered, prev.arg);
}

static void start_collect(struct feat *f, call_leg *b)
{
    call_leg *a = call_a_leg(f->c);
    f->step = COLLECT;
    f->b = b;
    f->n = 0;
    f->digits[0] = '\0';
    media_unbridge(leg_media(a));
    media_moh(leg_media(a), "default", 0);
    media_play_tone(leg_media(b), MEDIA_TONE_DIAL, 0);
    cw_timer_start(f->timer, FIRST_DIGIT_MS);
    call_log(f->c, "code", "%s dials a transfer", leg_number(b));
}

static void dial_number(struct feat *f)
{
    call *c = f->c;
    call_leg *b = f->b;
    cw_timer_stop(f->timer);
    media_stop(leg_media(b));
    int slot = call_park_slot(call_domain(c), f->digits);
    if (slot > 0) {
        if (call_park_other(c, b, slot) == CW_OK)
            reset(f);
        else
            back_to_caller(f);
        return;
    }
    struct dial_target t;
    const char *why;
    if (slot < 0 || call_target(c, f->digits, 0, &t, &why)) {
        call_log(c, "code", "%s: cannot transfer to %s", leg_number(b), f->digits);
        back_to_caller(f);
        return;
    }
    f->b_prev = leg_get_watch(b);
    leg_set_watch(b, &(struct leg_watch){NULL, NULL, b_ended, f});
    call_set_transferring(c, true);
    f->step = RINGING;
    call_log(c, "transfer", "%s dials %s", leg_number(b), f->digits);
    f->t = call_dial(c, LEG_B, &t, &(struct leg_watch){t_ringing, t_answered, t_ended, f});
    if (!f->t) back_to_caller(f);
}

static void on_timer(void *arg)
{
    struct feat *f = arg;
    if (f->step == HASH1) {
        f->step = IDLE;
    } else if (f->step == COLLECT) {
        if (f->n && up(f->b) && up(call_a_leg(f->c)))
            dial_number(f);
        else
            back_to_caller(f);
    }
}

static void conference(struct feat *f)
{
    uint32_t room = 0xC0000000u | (++next_room & 0x3fffffffu);
    call_leg *legs[] = {call_a_leg(f->c), f->b, f->t};
    for (size_t i = 0; i < CW_ARRAY_LEN(legs); i++) {
        media_stop(leg_media(legs[i]));
        media_conf_join(leg_media(legs[i]), room, 0);
    }
    f->step = CONF;
    call_log(f->c, "conference", "%s joins %s and %s", leg_number(f->b),
             leg_number(call_a_leg(f->c)), leg_number(f->t));
}

static void fax_media(call_leg *leg, const struct media_event *ev, void *arg)
{
    struct feat *f = arg;
    if (ev->type != MEDIA_EV_FAX_DONE || ev->tag != f->fax_tag) return;
    leg_set_media_hook(leg, NULL, NULL);
    call_set_transferring(f->c, false);
    reset(f);
    call_hangup(f->c, SIP_CAUSE_NORMAL); /* the document is in the box */
}

/* 0: the caller's fax machine talks to the dialler's fax box; the dialler goes. */
static bool to_fax(struct feat *f, call_leg *b)
{
    call *c = f->c;
    call_leg *a = call_a_leg(c);
    if (!leg_user(b)) return false;
    static uint32_t next_tag;
    f->fax_tag = 0xFA000000u | (++next_tag & 0xffffffu);
    media_unbridge(leg_media(a));
    if (call_fax_receive_leg(c, a, leg_user(b), 0, f->fax_tag)) {
        media_bridge(leg_media(a), leg_media(b));
        return false;
    }
    f->step = FAX;
    leg_set_media_hook(a, fax_media, f);
    call_set_transferring(c, true);
    call_log(c, "code", "%s switches the caller to fax", leg_number(b));
    leg_hangup(b, SIP_CAUSE_NORMAL);
    return true;
}

bool call_dtmf_feature(call *c, call_leg *l, char digit)
{
    struct feat *f = call_feature(c);
    if (!f) {
        if (l != call_bridged(c)) return false;
        f = cw_calloc(1, sizeof *f);
        f->c = c;
        f->timer = cw_timer_new(on_timer, f);
        call_set_feature(c, f, feat_free);
    }
    call_leg *a = call_a_leg(c);
    switch (f->step) {
    case IDLE:
        if (l != call_bridged(c) || !up(l) || !up(a)) return false;
        if (digit == '0') return to_fax(f, l);
        if (digit != '#') return false;
        f->step = HASH1;
        f->b = l;
        cw_timer_start(f->timer, config_int("call.dtmf_timeout") * 1000);
        return true;
    case HASH1:
        if (l != f->b) return false;
        if (digit != '#') {
            reset(f);
            return false;
        }
        start_collect(f, l);
        return true;
    case COLLECT:
        if (l != f->b) return false;
        if (digit == '#' && f->n) {
            dial_number(f);
            return true;
        }
        if (digit != '#' && f->n < (int)sizeof f->digits - 1) {
            if (!f->n) media_stop(leg_media(l)); /* the dial tone */
            f->digits[f->n++] = digit;
            f->digits[f->n] = '\0';
        }
        cw_timer_start(f->timer, config_int("call.dtmf_timeout") * 1000);
        return true;
    case RINGING:
        if (l != f->b) return false;
        if (digit == '*' || digit == '#') {
            call_log(c, "transfer", "%s gives up on %s", leg_number(l), leg_number(f->t));
            call_leg *t = f->t;
            leg_set_watch(t, &(struct leg_watch){0});
            f->t = NULL;
            leg_hangup(t, SIP_CAUSE_NORMAL);
            back_to_caller(f);
        }
        return true;
    case CONSULT:
    case TOGGLED:
        if (l != f->b) return false;
        if (digit == '#') {
            conference(f);
        } else if (digit == '*') {
            /* whoever the dialler leaves waits with music */
            call_leg *hear = f->step == CONSULT ? a : f->t;
            call_leg *wait = f->step == CONSULT ? f->t : a;
            media_unbridge(leg_media(l));
            media_moh(leg_media(wait), "default", 0);
            media_stop(leg_media(hear));
            media_bridge(leg_media(l), leg_media(hear));
            f->step = f->step == CONSULT ? TOGGLED : CONSULT;
            call_log(c, "toggle", "%s talks to %s", leg_number(l), leg_number(hear));
        }
        return true;
    case BLIND:
    case CONF:
    case FAX:
        return false;
    }
    return false;
}
