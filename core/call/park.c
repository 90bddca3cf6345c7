/*
 * park.c - call park: a party waits in a numbered slot of its domain,
 * hearing music on hold, until someone of the domain dials the slot and
 * takes the call, or the park time runs out and the call rings whoever
 * parked it (with nobody to ring, it ends).
 *
 * A party is parked by a transfer (REFER, or ##<code> in a call) to the
 * park code (the first free slot) or to a slot number, or parks itself
 * from a script (call:park()); call:unpark(slot) takes it. Whoever parked
 * it hears the slot number before being let go. Slot changes go to the
 * event bus (call.parked, call.unparked) and to BLF watchers of the slot.
 *
 * Core thread. Owns the list of taken slots; a parked call is held with
 * call_ref() while it sits in its slot, and its parked leg's watcher is
 * chained: whoever watched it before hears of it again when it leaves.
 */
#include "base/cw.h"
#include "call/call_int.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "loop/timer.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 16

struct slot {
    struct slot *next;
    int64_t domain_id;
    int number;
    call *c;
    call_leg *leg;         /* the parked party */
    struct leg_watch prev; /* who watched that leg before */
    int64_t parker_id;     /* user to ring when the time is up (0: nobody) */
    char parker[64];
    cw_timer *timer;
    call_leg *ring; /* ringing the parker again */
    uint32_t tag;   /* the slot's announcement to a party that parked itself */
};

/* The one who parked hears the slot number, then is let go. */
struct announce {
    call_leg *leg;
    struct leg_watch prev;
    uint32_t tag;
    bool refer; /* a REFER waits for its NOTIFY */
};

static struct {
    struct slot *taken;
    uint32_t next_tag;
} P;

static uint32_t new_tag(void)
{
    return 0x50000000u | (++P.next_tag & 0x0fffffffu);
}

/* The configured slot range; false (and park off) when call.park_slots is not "first-last". */
static bool slot_range(int *first, int *last)
{
    const char *r = config_str("call.park_slots");
    char tail;
    int n = sscanf(r, "%d-%d%c", first, last, &tail);
    if (n == 1) *last = *first;
    if ((n != 1 && n != 2) || *first < 1 || *last < *first || *last - *first > 999) {
        log_warn("call", "call.park_slots '%s' is not a range like 701-709: park is off", r);
        return false;
    }
    return true;
}

static struct slot *slot_find(int64_t domain_id, int number)
{
    for (struct slot *s = P.taken; s; s = s->next)
        if (s->domain_id == domain_id && s->number == number) return s;
    return NULL;
}

int call_park_slot(int64_t domain_id, const char *target)
{
    int first, last;
    if (!target || !*target || !slot_range(&first, &last)) return 0;
    if (!strcmp(target, config_str("call.park_code"))) {
        for (int n = first; n <= last; n++)
            if (!slot_find(domain_id, n)) return n;
        return CW_EBUSY;
    }
    for (const char *p = target; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    if (strlen(target) > 6) return 0;
    int n = atoi(target);
    if (n < first || n > last) return 0;
    return slot_find(domain_id, n) ? CW_EBUSY : n;
}

/* ---- the slot's words: "call parked at", then its digits ---- */

static int slot_words(int64_t domain_id, const char *prompt, int number, char **files)
{
    char lang[8] = "en";
    store_res *r;
    if (store_query(store_main(), &r, "SELECT language FROM domains WHERE id = ?",
                    SA_INT(domain_id), SA_END) >= 0 &&
        store_next(r) && !strcmp(store_str(r, 0), "ru"))
        cw_strlcpy(lang, "ru", sizeof lang);
    store_res_free(r);
    files[0] = cw_sprintf("%s/%s", lang, prompt);
    int n = 1;
    if (number > 0) n += call_say_words(lang, "digits", number, files + 1, MAX_WORDS - 1);
    return n;
}

static int play_words(call_leg *l, int64_t domain_id, const char *prompt, int number, uint32_t tag)
{
    char *files[MAX_WORDS];
    int n = slot_words(domain_id, prompt, number, files);
    int rc = media_play(leg_media(l), (const char *const *)files, n, false, tag);
    for (int i = 0; i < n; i++)
        free(files[i]);
    return rc;
}

static void blf_slot(struct slot *s, enum sip_dialog_state st)
{
    sip_blf_update(call_park_blf_id(s->domain_id, s->number), st, s->c ? call_uuid(s->c) : "",
                   false);
}

/* ---- leaving the slot ---- */

static void talk_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    /* the conversation after the park is over: nobody else is left to end it */
    call *c = leg_call(leg);
    if (call_a_leg(c) && leg_state(call_a_leg(c)) != LEG_ENDED)
        call_hangup(c, cause ? cause : SIP_CAUSE_NORMAL);
}

/*
 * The slot is free again: the parked leg gets its old watcher back, the
 * call is not held here any more. The caller drops the reference the slot
 * held (slot_unref) when it is done with the call.
 */
static call *slot_release(struct slot *s, const char *why)
{
    for (struct slot **pp = &P.taken; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    call *c = s->c;
    cw_timer_free(s->timer);
    if (s->ring) {
        call_leg *ring = s->ring;
        s->ring = NULL;
        leg_set_watch(ring, &(struct leg_watch){0});
        leg_hangup(ring, SIP_CAUSE_NORMAL);
    }
    if (s->tag) leg_set_media_hook(s->leg, NULL, NULL);
    if (leg_state(s->leg) != LEG_ENDED) leg_set_watch(s->leg, &s->prev);
    call_set_transferring(c, false);
    blf_slot(s, SIP_DLG_IDLE);
    call_log(c, "unparked", "slot %d: %s", s->number, why);
    events_emit("call.unparked", s->domain_id,
                json_pack("{s:s,s:i,s:s}", "call", call_uuid(c), "slot", s->number, "why", why));
    free(s);
    return c;
}

/* The parked party hung up. */
static void parked_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    struct slot *s = arg;
    struct leg_watch prev = s->prev;
    call *c = slot_release(s, "hangup");
    if (prev.ended) prev.ended(leg, cause, was_answered, prev.arg);
    call_unref(c);
}

/* A party that parked itself hears its slot, then the music. */
static void parked_media(call_leg *leg, const struct media_event *ev, void *arg)
{
    struct slot *s = arg;
    if (ev->type == MEDIA_EV_PLAY_DONE && ev->tag == s->tag && s->tag) {
        s->tag = 0;
        leg_set_media_hook(leg, NULL, NULL);
        media_moh(leg_media(leg), "default", 0);
    }
}

static void connect_to(call *c, call_leg *leg)
{
    leg_set_watch(leg, &(struct leg_watch){NULL, NULL, talk_ended, NULL});
    if (call_bridge(c, leg)) {
        log_warn("call", "%s: cannot connect the unparked call", call_uuid(c));
        call_hangup(c, SIP_CAUSE_FAILED);
    }
}

static void return_answered(call_leg *leg, void *arg)
{
    struct slot *s = arg;
    s->ring = NULL;
    call *c = slot_release(s, "returned");
    connect_to(c, leg);
    call_unref(c);
}

static void return_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    struct slot *s = arg;
    s->ring = NULL;
    call *c = s->c;
    call_log(c, "park-timeout", "slot %d: %s did not take it back (%s)", s->number, s->parker,
             sip_cause_name(cause));
    call_hangup(c, SIP_CAUSE_NO_ANSWER); /* the parked leg's end frees the slot */
}

static void park_timeout(void *arg)
{
    struct slot *s = arg;
    call *c = s->c;
    if (!s->parker_id) {
        call_log(c, "park-timeout", "slot %d: nobody to return to", s->number);
        call_hangup(c, SIP_CAUSE_NO_ANSWER);
        return;
    }
    call_log(c, "park-timeout", "slot %d: ringing %s", s->number, s->parker);
    struct dial_target t = {.kind = SIP_TARGET_USER,
                            .user_id = s->parker_id,
                            .timeout_s = (int)config_int("sip.ring_timeout")};
    s->ring = call_dial(c, LEG_B, &t, &(struct leg_watch){NULL, return_answered, return_ended, s});
    if (!s->ring) call_hangup(c, SIP_CAUSE_NO_ANSWER);
}

/* ---- parking ---- */

int call_park(call *c, call_leg *keep, call_leg *from, int slot)
{
    int64_t dom = call_domain(c);
    if (slot <= 0 || slot_find(dom, slot)) return CW_EBUSY;
    struct slot *s = cw_calloc(1, sizeof *s);
    s->domain_id = dom;
    s->number = slot;
    s->c = c;
    s->leg = keep;
    s->prev = leg_get_watch(keep);
    if (from) {
        s->parker_id = leg_user(from);
        cw_strlcpy(s->parker, leg_number(from), sizeof s->parker);
    }
    s->next = P.taken;
    P.taken = s;
    call_ref(c);
    call_set_transferring(c, true);
    leg_set_watch(keep, &(struct leg_watch){NULL, NULL, parked_ended, s});
    media_unbridge(leg_media(keep));
    s->tag = from ? 0 : new_tag(); /* a party that parked itself hears its slot first */
    if (s->tag) leg_set_media_hook(keep, parked_media, s);
    if (!s->tag || play_words(keep, dom, "parked_at", slot, s->tag)) {
        s->tag = 0;
        media_moh(leg_media(keep), "default", 0);
    }
    s->timer = cw_timer_new(park_timeout, s);
    cw_timer_start(s->timer, config_int("call.park_timeout") * 1000);
    blf_slot(s, SIP_DLG_CONFIRMED);
    call_log(c, "parked", "%s in slot %d by %s", leg_number(keep), slot,
             from ? leg_number(from) : "itself");
    events_emit("call.parked", dom,
                json_pack("{s:s,s:i,s:s,s:s}", "call", call_uuid(c), "slot", slot, "party",
                          leg_number(keep), "by", from ? leg_number(from) : ""));
    log_info("call", "%s: %s parked in slot %d", call_uuid(c), leg_number(keep), slot);
    return CW_OK;
}

static void announce_done(struct announce *a)
{
    call_leg *l = a->leg;
    leg_set_watch(l, &a->prev);
    leg_set_media_hook(l, NULL, NULL);
    if (a->refer) sip_refer_result(leg_sip(l), 200);
    free(a);
    leg_hangup(l, SIP_CAUSE_NORMAL);
}

static void announce_media(call_leg *leg, const struct media_event *ev, void *arg)
{
    struct announce *a = arg;
    if (ev->type == MEDIA_EV_PLAY_DONE && ev->tag == a->tag) announce_done(a);
}

static void announce_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    struct announce *a = arg;
    struct leg_watch prev = a->prev;
    leg_set_media_hook(leg, NULL, NULL);
    free(a);
    if (prev.ended) prev.ended(leg, cause, was_answered, prev.arg);
}

/* Tell the parker where the call is, then let them go. */
static void announce(call *c, call_leg *parker, int slot, bool refer)
{
    struct announce *a = cw_calloc(1, sizeof *a);
    a->leg = parker;
    a->prev = leg_get_watch(parker);
    a->refer = refer;
    a->tag = new_tag();
    leg_set_watch(parker, &(struct leg_watch){NULL, NULL, announce_ended, a});
    leg_set_media_hook(parker, announce_media, a);
    if (play_words(parker, call_domain(c), "parked_at", slot, a->tag)) announce_done(a);
}

void call_park_refer(call *c, call_leg *keep, call_leg *from, int slot)
{
    if (call_park(c, keep, from, slot)) {
        sip_refer_result(leg_sip(from), 486);
        return;
    }
    announce(c, from, slot, true);
}

int call_park_other(call *c, call_leg *from, int slot)
{
    call_leg *keep = from == call_bridged(c) ? call_a_leg(c) : NULL;
    if (!keep || leg_state(keep) != LEG_UP) return CW_ESTATE;
    int rc = call_park(c, keep, from, slot);
    if (rc == CW_OK) announce(c, from, slot, false);
    return rc;
}

/* ---- taking a parked call ---- */

int call_unpark(call *taker, call_leg *x, int number)
{
    struct slot *s = slot_find(call_domain(taker), number);
    if (!s || s->c == taker) return CW_ENOENT;
    if (leg_state(x) != LEG_UP && (leg_outbound(x) || leg_answer(x))) return CW_ESTATE;
    call *c = slot_release(s, "taken");
    call_leg_move(x, c, LEG_B);
    call_log(c, "unpark", "%s took the call from slot %d", leg_number(x), number);
    connect_to(c, x);
    call_unref(c);
    return CW_OK;
}

int64_t call_park_blf_id(int64_t domain_id, int slot)
{
    /* BLF names users by their (positive) ids; a slot is a negative id of its own */
    return -(domain_id * 100000 + slot);
}

/* BLF: phones watch a slot by its number. */
static int64_t blf_resource(int64_t domain_id, const char *name)
{
    int first, last;
    if (!name || !*name || strlen(name) > 6 || !slot_range(&first, &last)) return 0;
    for (const char *p = name; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    int n = atoi(name);
    return n >= first && n <= last ? call_park_blf_id(domain_id, n) : 0;
}

void call_park_init(void)
{
    sip_blf_set_resources(blf_resource);
}

/* ---- Lua ---- */

static call_leg *live_a(lua_State *L, call **c)
{
    *c = call_lua_check(L);
    call_leg *a = *c ? call_a_leg(*c) : NULL;
    return a && leg_state(a) != LEG_ENDED ? a : NULL;
}

static int fail(lua_State *L, const char *why)
{
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
}

/* call:park([slot]) -> slot | nil, why: the caller waits in a slot (the first free one). */
static int l_park(lua_State *L)
{
    call *c;
    call_leg *a = live_a(L, &c);
    if (!a) return fail(L, "hangup");
    const char *want = luaL_optstring(L, 2, config_str("call.park_code"));
    int slot = call_park_slot(call_domain(c), want);
    if (slot == 0) return fail(L, "not_a_slot");
    if (slot < 0) return fail(L, "taken");
    if (call_bridged(c)) return fail(L, "in_conversation");
    if (call_answer(c)) return fail(L, "hangup");
    if (call_park(c, a, NULL, slot)) return fail(L, "taken");
    lua_pushinteger(L, slot);
    return 1;
}

/* call:unpark(slot) -> true | nil, why: the caller takes the call parked there. */
static int l_unpark(lua_State *L)
{
    call *c;
    call_leg *a = live_a(L, &c);
    if (!a) return fail(L, "hangup");
    const char *num = luaL_checkstring(L, 2);
    int first, last;
    if (!slot_range(&first, &last)) return fail(L, "not_a_slot");
    int n = atoi(num);
    if (n < first || n > last) return fail(L, "not_a_slot");
    int rc = call_unpark(c, a, n);
    if (rc) return fail(L, rc == CW_ENOENT ? "empty" : "hangup");
    lua_pushboolean(L, 1);
    return 1;
}

/* call:feature_codes() -> {pickup=, directed_pickup=, park=, park_first=, park_last=} */
static int l_feature_codes(lua_State *L)
{
    call *c = call_lua_check(L);
    lua_createtable(L, 0, 5);
    char code[16] = "*8";
    if (c) {
        store_res *r;
        if (store_query(store_main(), &r, "SELECT pickup_code FROM domains WHERE id = ?",
                        SA_INT(call_domain(c)), SA_END) >= 0 &&
            store_next(r))
            cw_strlcpy(code, store_str(r, 0), sizeof code);
        store_res_free(r);
    }
    lua_pushstring(L, code), lua_setfield(L, -2, "pickup");
    lua_pushstring(L, "**"), lua_setfield(L, -2, "directed_pickup");
    lua_pushstring(L, config_str("call.park_code")), lua_setfield(L, -2, "park");
    int first, last;
    if (slot_range(&first, &last)) {
        lua_pushinteger(L, first), lua_setfield(L, -2, "park_first");
        lua_pushinteger(L, last), lua_setfield(L, -2, "park_last");
    }
    return 1;
}

const luaL_Reg call_park_methods[] = {
    {"park", l_park},
    {"unpark", l_unpark},
    {"feature_codes", l_feature_codes},
    {NULL, NULL},
};
