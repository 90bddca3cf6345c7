/*
 * call.c - the B2BUA core: calls, legs, and the glue between the SIP edge
 * and the media engine.
 *
 * Owns every call and leg. SIP leg events and media events arrive here on
 * the core thread; this file keeps leg state, answers, dials, bridges and
 * hangs up, and hands decisions to whoever drives the call (the routing
 * script, the ACD) through struct call_driver and struct leg_watch.
 */
#include "call/call_int.h"
#include "base/cw.h"
#include "base/map.h"
#include "cdr/cdr.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct call_leg {
    call *call;
    call_leg *next;
    enum leg_role role;
    enum leg_state state;
    sip_leg_id sip;
    media_id media;
    int port;
    int64_t user_id;
    char number[64];
    char name[128];
    int pt, dtmf_pt;
    bool remote_hold;
    bool media_closed;
    bool outbound;   /* we sent the INVITE (B legs, spies, an originated A leg) */
    bool late_offer; /* an INVITE without SDP: their answer comes in the ACK */
    bool no_pickup;  /* from dial_target.no_pickup */
    leg_media_fn media_hook;
    void *media_arg;
    struct leg_watch watch;
    char *local_sdp;
    unsigned long long sdp_version;
    int64_t start_ms, answer_ms, end_ms;
    enum sip_cause cause;
};

struct call {
    char uuid[37];
    int64_t domain_id;
    char domain_name[128];
    int refs;
    bool finished;
    bool transferring; /* a transfer is connecting a new party */
    call_leg *legs;
    call_leg *a;
    call_leg *bridged;
    struct call_driver drv;
    call *next, *prev;

    /* what the CDR needs */
    char direction[16];
    char a_number[64], a_name[128], b_number[64], b_name[128], dialed[64], trunk[64];
    int64_t a_user_id;
    int64_t start_ms, answer_ms, bridge_ms, end_ms;
    int64_t queue_id, agent_id;
    int wait_s;
    char released_by[8];
    enum sip_cause cause;
    char *recording;
    json_t *states;
    json_t *events;
    json_t *quality;
    void *feature; /* in-call DTMF features (dtmf.c) */
    void (*feature_free)(void *);
};

static struct {
    call *calls;
    int ncalls;
    cw_map by_sip;   /* sip_leg_id -> call_leg */
    cw_map by_media; /* media_id -> call_leg */
    cw_map by_uuid;  /* hash(uuid) -> call */
    unsigned long long sdp_session;
} C;

static const int offer_pts[] = {MEDIA_PCMU, MEDIA_PCMA};
#define DTMF_PT 101

const char *call_outcome_name(enum call_outcome o)
{
    static const char *n[] = {"answered", "busy",      "no_answer", "no_route",
                              "rejected", "cancelled", "failed"};
    return o <= OUT_FAILED ? n[o] : "failed";
}

enum call_outcome call_outcome_from_cause(enum sip_cause c)
{
    switch (c) {
    case SIP_CAUSE_NONE:
    case SIP_CAUSE_NORMAL:
        return OUT_ANSWERED;
    case SIP_CAUSE_BUSY:
        return OUT_BUSY;
    case SIP_CAUSE_NO_ANSWER:
        return OUT_NO_ANSWER;
    case SIP_CAUSE_NO_ROUTE:
    case SIP_CAUSE_UNAVAILABLE: /* 503: nobody to reach there now, as scripts see it */
        return OUT_NO_ROUTE;
    case SIP_CAUSE_REJECTED:
        return OUT_REJECTED;
    case SIP_CAUSE_CANCELLED:
        return OUT_CANCELLED;
    default:
        return OUT_FAILED;
    }
}

/* ---- small accessors ---- */

call *call_by_uuid(const char *uuid)
{
    call *c = cw_map_get(&C.by_uuid, cw_hash_str(uuid));
    return c && strcmp(c->uuid, uuid) == 0 ? c : NULL;
}

const char *call_uuid(const call *c)
{
    return c->uuid;
}

int64_t call_domain(const call *c)
{
    return c->domain_id;
}

const char *call_caller_number(const call *c)
{
    return c->a_number;
}

const char *call_direction(const call *c)
{
    return c->direction[0] ? c->direction : "internal";
}

const char *call_caller_name(const call *c)
{
    return c->a_name;
}

const char *call_dialed(const call *c)
{
    return c->dialed;
}

bool call_answered(const call *c)
{
    return c->answer_ms != 0;
}

void leg_set_watch(call_leg *l, const struct leg_watch *w)
{
    l->watch = *w;
}

void leg_set_media_hook(call_leg *l, leg_media_fn fn, void *arg)
{
    l->media_hook = fn;
    l->media_arg = arg;
}

call_leg *call_a_leg(call *c)
{
    return c->a;
}

call *leg_call(call_leg *l)
{
    return l->call;
}

enum leg_state leg_state(const call_leg *l)
{
    return l->state;
}

media_id leg_media(const call_leg *l)
{
    return l->media;
}

int64_t leg_user(const call_leg *l)
{
    return l->user_id;
}

const char *leg_number(const call_leg *l)
{
    return l->number;
}

call_leg *call_bridged(call *c)
{
    return c->bridged;
}

bool call_busy_elsewhere(const call *c)
{
    /* a transfer in progress, or a conversation that no longer needs its script */
    return c->transferring ||
           (c->bridged && c->bridged->state == LEG_UP && c->a && c->a->state == LEG_UP);
}

void call_set_driver(call *c, const struct call_driver *d)
{
    c->drv = *d;
}

void call_set_transferring(call *c, bool on)
{
    c->transferring = on;
}

struct leg_watch leg_get_watch(const call_leg *l)
{
    return l->watch;
}

sip_leg_id leg_sip(const call_leg *l)
{
    return l->sip;
}

enum leg_role leg_role(const call_leg *l)
{
    return l->role;
}

bool leg_outbound(const call_leg *l)
{
    return l->outbound;
}

bool leg_pickable(const call_leg *l)
{
    return l->outbound && !l->no_pickup && l->role == LEG_B &&
           (l->state == LEG_RINGING || l->state == LEG_EARLY);
}

call_leg *call_legs(call *c)
{
    return c->legs;
}

call_leg *leg_next(call_leg *l)
{
    return l->next;
}

void *call_feature(call *c)
{
    return c->feature;
}

void call_set_feature(call *c, void *data, void (*free_fn)(void *))
{
    if (c->feature && c->feature_free) c->feature_free(c->feature);
    c->feature = data;
    c->feature_free = free_fn;
}

void call_clear_driver(call *c, void *arg)
{
    if (c->drv.arg == arg) c->drv = (struct call_driver){0};
}

void call_foreach(bool (*fn)(call *c, void *arg), void *arg)
{
    for (call *c = C.calls; c; c = c->next)
        if (!c->finished && !fn(c, arg)) break;
}

/* ---- the call's own record ---- */

void call_log(call *c, const char *what, const char *fmt, ...)
{
    cw_buf b;
    cw_buf_init(&b);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        cw_buf_vprintf(&b, fmt, ap);
        va_end(ap);
    }
    json_array_append_new(c->events, json_pack("{s:I,s:s,s:s}", "t", (json_int_t)cw_wall_ms(),
                                               "what", what, "text", b.data ? b.data : ""));
    cw_buf_free(&b);
}

void call_mark_state(call *c, const char *state)
{
    size_t n = json_array_size(c->states);
    if (n && !strcmp(json_string_value(json_array_get(c->states, n - 1)), state)) return;
    json_array_append_new(c->states, json_string(state));
}

void call_set_queue(call *c, int64_t queue_id, int64_t agent_id, int wait_s)
{
    c->queue_id = queue_id;
    if (agent_id) c->agent_id = agent_id;
    c->wait_s = wait_s;
}

void call_set_direction(call *c, const char *direction, int64_t trunk_id)
{
    cw_strlcpy(c->direction, direction, sizeof c->direction);
    if (trunk_id) snprintf(c->trunk, sizeof c->trunk, "%lld", (long long)trunk_id);
}

void call_set_parties(call *c, const char *a_number, const char *a_name)
{
    cw_strlcpy(c->a_number, a_number, sizeof c->a_number);
    cw_strlcpy(c->a_name, a_name, sizeof c->a_name);
}

void call_set_recording(call *c, const char *path)
{
    free(c->recording);
    c->recording = cw_strdup(path);
}

static json_t *event_body(const call *c)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "call", c->uuid, "from", c->a_number, "from_name",
                     c->a_name, "to", c->dialed);
}

static void emit(const call *c, const char *type, json_t *extra)
{
    json_t *d = event_body(c);
    if (extra) json_object_update(d, extra), json_decref(extra);
    events_emit(type, c->domain_id, d);
}

/* ---- lifetime ---- */

static void new_uuid(char out[37])
{
    unsigned char b[16];
    cw_random_bytes(b, sizeof b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static call *call_new(int64_t domain_id)
{
    call *c = cw_calloc(1, sizeof *c);
    new_uuid(c->uuid);
    c->domain_id = domain_id;
    c->refs = 1; /* dropped when the legs are all gone */
    c->start_ms = cw_wall_ms();
    c->states = json_array();
    c->events = json_array();
    c->quality = json_object();
    store_res *r;
    if (store_query(store_main(), &r, "SELECT name FROM domains WHERE id = ?", SA_INT(domain_id),
                    SA_END) >= 0 &&
        store_next(r))
        cw_strlcpy(c->domain_name, store_str(r, 0), sizeof c->domain_name);
    store_res_free(r);
    c->next = C.calls;
    if (C.calls) C.calls->prev = c;
    C.calls = c;
    C.ncalls++;
    cw_map_put(&C.by_uuid, cw_hash_str(c->uuid), c);
    return c;
}

static void write_cdr(call *c)
{
    int64_t talk = c->bridge_ms ? (c->end_ms - c->bridge_ms) / 1000 : 0;
    json_t *row = json_pack(
        "{s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O,s:s,s:s,s:I,s:I,s:I,s:I,s:O,s:O}", "uuid",
        c->uuid, "domain_id", (json_int_t)c->domain_id, "direction",
        c->direction[0] ? c->direction : "internal", "a_number", c->a_number, "a_name", c->a_name,
        "b_number", c->b_number, "b_name", c->b_name, "dialed", c->dialed, "trunk", c->trunk,
        "states", c->states, "released_by", c->released_by[0] ? c->released_by : "system", "cause",
        sip_cause_name(c->cause), "start_ms", (json_int_t)c->start_ms, "end_ms",
        (json_int_t)c->end_ms, "talk_s", (json_int_t)talk, "wait_s", (json_int_t)c->wait_s,
        "quality", c->quality, "events", c->events);
    if (c->answer_ms) json_object_set_new(row, "answer_ms", json_integer(c->answer_ms));
    if (c->queue_id) json_object_set_new(row, "queue_id", json_integer(c->queue_id));
    if (c->agent_id) json_object_set_new(row, "agent_id", json_integer(c->agent_id));
    if (c->recording) json_object_set_new(row, "recording", json_string(c->recording));
    cdr_submit(row);
}

static void call_free(call *c)
{
    for (call_leg *l = c->legs, *n; l; l = n) {
        n = l->next;
        if (l->sip) cw_map_del(&C.by_sip, l->sip);
        if (l->media) cw_map_del(&C.by_media, l->media);
        free(l->local_sdp);
        free(l);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        C.calls = c->next;
    if (c->next) c->next->prev = c->prev;
    C.ncalls--;
    cw_map_del(&C.by_uuid, cw_hash_str(c->uuid));
    json_decref(c->states);
    json_decref(c->events);
    json_decref(c->quality);
    free(c->recording);
    if (c->feature && c->feature_free) c->feature_free(c->feature);
    free(c);
}

void call_ref(call *c)
{
    c->refs++;
}

void call_unref(call *c)
{
    if (--c->refs > 0) return;
    call_free(c);
}

/* When every leg has ended and its media has reported its final stats. */
static void maybe_finish(call *c)
{
    if (c->finished) return;
    for (call_leg *l = c->legs; l; l = l->next)
        if (l->state != LEG_ENDED || (l->media && !l->media_closed)) return;
    c->finished = true;
    c->end_ms = cw_wall_ms();
    call_mark_state(c, "released");
    write_cdr(c);
    emit(c, "call.ended",
         json_pack("{s:s,s:s}", "cause", sip_cause_name(c->cause), "released_by",
                   c->released_by[0] ? c->released_by : "system"));
    log_info("call", "%s ended: %s, released by %s", c->uuid, sip_cause_name(c->cause),
             c->released_by[0] ? c->released_by : "system");
    call_unref(c);
}

/* ---- SDP ---- */

static char *local_sdp(call_leg *l, const int *pts, int npts, int dtmf_pt)
{
    char ip[64];
    cw_strlcpy(ip, config_str("sip.public_ip"), sizeof ip);
    if (!ip[0]) cw_strlcpy(ip, config_str("sip.listen"), sizeof ip);
    if (!strcmp(ip, "0.0.0.0")) cw_strlcpy(ip, "127.0.0.1", sizeof ip);
    struct sdp_local sl = {
        .addr = ip,
        .port = l->port,
        .session_id = ++C.sdp_session + 1000,
        .version = ++l->sdp_version,
        .pts = pts,
        .npts = npts,
        .dtmf_pt = dtmf_pt,
        .ptime = 20,
        .dir = SDP_SENDRECV,
    };
    return sdp_write(&sl);
}

static enum media_dtmf_mode dtmf_mode_of(int64_t user_id)
{
    const char *m = config_str("media.dtmf_mode");
    if (user_id) {
        store_res *r;
        if (store_query(store_main(), &r, "SELECT dtmf_mode FROM users WHERE id = ?",
                        SA_INT(user_id), SA_END) >= 0 &&
            store_next(r)) {
            enum media_dtmf_mode v = !strcmp(store_str(r, 0), "rfc4733")  ? MEDIA_DTMF_RFC4733
                                     : !strcmp(store_str(r, 0), "inband") ? MEDIA_DTMF_INBAND
                                                                          : MEDIA_DTMF_AUTO;
            store_res_free(r);
            return v;
        }
        store_res_free(r);
    }
    return !strcmp(m, "rfc4733")  ? MEDIA_DTMF_RFC4733
           : !strcmp(m, "inband") ? MEDIA_DTMF_INBAND
                                  : MEDIA_DTMF_AUTO;
}

static int apply_remote(call_leg *l, const struct sdp_media *m)
{
    struct media_remote r = {0};
    cw_strlcpy(r.ip, m->addr, sizeof r.ip);
    r.port = m->port;
    r.pt = l->pt;
    r.dtmf_pt = l->dtmf_pt;
    r.ptime = m->ptime ? m->ptime : 20;
    r.dtmf_mode = dtmf_mode_of(l->user_id);
    r.send = m->dir == SDP_SENDRECV || m->dir == SDP_RECVONLY;
    r.recv = m->dir == SDP_SENDRECV || m->dir == SDP_SENDONLY;
    return media_session_set_remote(l->media, &r);
}

/* ---- legs ---- */

static call_leg *leg_new(call *c, enum leg_role role)
{
    call_leg *l = cw_calloc(1, sizeof *l);
    l->call = c;
    l->role = role;
    l->start_ms = cw_wall_ms();
    l->next = c->legs;
    c->legs = l;
    return l;
}

static int leg_open_media(call_leg *l, media_id near)
{
    int rc = media_session_open(near, &l->media, &l->port);
    if (rc) {
        log_error("call", "%s: no media session: %s", l->call->uuid, cw_strerror(rc));
        l->media = 0;
        return rc;
    }
    cw_map_put(&C.by_media, l->media, l);
    return CW_OK;
}

static void blf(call_leg *l, enum sip_dialog_state st)
{
    if (l->user_id) sip_blf_update(l->user_id, st, l->call->uuid, l->role == LEG_A);
}

/* A leg is over, whoever ended it. by_remote: the far end hung up. */
static void leg_ended(call_leg *l, enum sip_cause cause, bool by_remote)
{
    if (l->state == LEG_ENDED) return;
    call *c = l->call;
    bool was_up = l->state == LEG_UP;
    l->state = LEG_ENDED;
    l->cause = cause;
    l->end_ms = cw_wall_ms();
    blf(l, SIP_DLG_IDLE);
    if (l->media) media_session_close(l->media);
    call_ref(c);
    if (l->role == LEG_A) {
        if (!c->released_by[0]) cw_strlcpy(c->released_by, by_remote ? "A" : "system", 8);
        if (!c->cause) c->cause = cause ? cause : SIP_CAUSE_NORMAL;
        call_log(c, "a-ended", "%s", sip_cause_name(cause));
        for (call_leg *o = c->legs; o; o = o->next)
            if (o != l && o->state != LEG_ENDED) leg_hangup(o, SIP_CAUSE_NORMAL);
        if (c->drv.a_ended) c->drv.a_ended(c, cause, c->drv.arg);
        if (l->watch.ended) l->watch.ended(l, cause, was_up, l->watch.arg);
    } else {
        if (l == c->bridged) {
            c->bridged = NULL;
            if (!c->released_by[0] && by_remote) cw_strlcpy(c->released_by, "B", 8);
            if (!c->cause) c->cause = cause ? cause : SIP_CAUSE_NORMAL;
        }
        call_log(c, l->role == LEG_SPY ? "spy-ended" : "b-ended", "%s %s", l->number,
                 sip_cause_name(cause));
        if (l->watch.ended) l->watch.ended(l, cause, was_up, l->watch.arg);
    }
    maybe_finish(c);
    call_unref(c);
}

void leg_hangup(call_leg *l, enum sip_cause cause)
{
    if (l->state == LEG_ENDED) return;
    if (l->sip) sip_hangup(l->sip, cause);
    leg_ended(l, cause, false);
}

void call_hangup(call *c, enum sip_cause cause)
{
    if (!c->released_by[0]) cw_strlcpy(c->released_by, "system", 8);
    if (!c->cause) c->cause = cause;
    /* B legs first so the A leg's BYE comes last */
    for (call_leg *l = c->legs; l; l = l->next)
        if (l != c->a && l->state != LEG_ENDED) leg_hangup(l, cause);
    if (c->a) leg_hangup(c->a, cause);
}

int leg_answer(call_leg *l)
{
    if (l->outbound || l->state == LEG_ENDED) return CW_ESTATE;
    if (l->state == LEG_UP) return CW_OK;
    int rc = sip_respond(l->sip, 200, "OK", l->local_sdp);
    if (rc) return rc;
    l->state = LEG_UP;
    l->answer_ms = cw_wall_ms();
    blf(l, SIP_DLG_CONFIRMED);
    return CW_OK;
}

int call_answer(call *c)
{
    call_leg *a = c->a;
    if (!a || a->state == LEG_ENDED) return CW_ESTATE;
    if (a->state == LEG_UP) return CW_OK;
    int rc = leg_answer(a);
    if (rc) return rc;
    c->answer_ms = a->answer_ms;
    call_mark_state(c, "answered");
    emit(c, "call.answered", NULL);
    return CW_OK;
}

void call_leg_move(call_leg *l, call *to, enum leg_role role)
{
    call *from = l->call;
    l->role = role;
    if (from == to) return;
    call_ref(from);
    for (call_leg **pp = &from->legs; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    bool was_a = from->a == l;
    if (was_a) from->a = NULL;
    if (from->bridged == l) from->bridged = NULL;
    if (!from->cause) from->cause = SIP_CAUSE_NORMAL;
    struct leg_watch w = l->watch;
    l->watch = (struct leg_watch){0};
    call_log(from, "leg-moved", "%s to call %s", l->number, to->uuid);
    /* the old owners hear the leg is gone from their call (it still belongs to it meanwhile) */
    if (was_a && from->drv.a_ended) from->drv.a_ended(from, SIP_CAUSE_NORMAL, from->drv.arg);
    if (w.ended) w.ended(l, SIP_CAUSE_NORMAL, l->state == LEG_UP, w.arg);
    l->call = to;
    l->next = to->legs;
    to->legs = l;
    call_log(to, "leg-joined", "%s from call %s", l->number, from->uuid);
    maybe_finish(from);
    call_unref(from);
}

int call_ring(call *c, bool early)
{
    call_leg *a = c->a;
    if (!a || a->state == LEG_ENDED || a->state == LEG_UP) return CW_ESTATE;
    if (early && a->state == LEG_EARLY) return CW_OK;
    if (!early && a->state != LEG_NEW) return CW_OK;
    int rc = sip_respond(a->sip, early ? 183 : 180, early ? "Session Progress" : "Ringing",
                         early ? a->local_sdp : NULL);
    if (rc) return rc;
    a->state = early ? LEG_EARLY : LEG_RINGING;
    call_mark_state(c, "alerting");
    return CW_OK;
}

/* Send the INVITE of a new outbound leg; false (leg ended) when it cannot start. */
static bool leg_dial(call *c, call_leg *l, const struct dial_target *t, media_id near)
{
    l->outbound = true;
    l->no_pickup = t->no_pickup;
    l->user_id = t->kind == SIP_TARGET_USER ? t->user_id : 0;
    if (l->user_id) {
        store_res *r;
        if (store_query(store_main(), &r, "SELECT extension, display_name FROM users WHERE id = ?",
                        SA_INT(l->user_id), SA_END) >= 0 &&
            store_next(r)) {
            cw_strlcpy(l->number, store_str(r, 0) ? store_str(r, 0) : "", sizeof l->number);
            cw_strlcpy(l->name, store_str(r, 1), sizeof l->name);
        }
        store_res_free(r);
    } else {
        cw_strlcpy(l->number, t->uri, sizeof l->number);
    }
    if (leg_open_media(l, near)) {
        l->state = LEG_ENDED;
        return false;
    }
    l->pt = MEDIA_PCMU;
    l->dtmf_pt = DTMF_PT;
    l->local_sdp = local_sdp(l, offer_pts, (int)CW_ARRAY_LEN(offer_pts), DTMF_PT);
    struct sip_invite inv = {0};
    inv.kind = t->kind;
    inv.user_id = t->user_id;
    inv.trunk_id = t->trunk_id;
    cw_strlcpy(inv.uri, t->uri, sizeof inv.uri);
    cw_strlcpy(inv.from_user, t->from_user[0] ? t->from_user : c->a_number, sizeof inv.from_user);
    cw_strlcpy(inv.from_display, c->a_name, sizeof inv.from_display);
    cw_strlcpy(inv.from_host, c->domain_name, sizeof inv.from_host);
    inv.sdp = l->local_sdp;
    inv.timeout_s = t->timeout_s > 0 ? t->timeout_s : (int)config_int("sip.ring_timeout");
    cw_strlcpy(inv.headers, t->headers, sizeof inv.headers);
    l->sip = sip_call(&inv);
    if (!l->sip) {
        l->state = LEG_ENDED;
        l->cause = SIP_CAUSE_FAILED;
        media_session_close(l->media);
        return false;
    }
    cw_map_put(&C.by_sip, l->sip, l);
    return true;
}

call_leg *call_dial(call *c, enum leg_role role, const struct dial_target *t,
                    const struct leg_watch *w)
{
    if (!c->a || c->a->state == LEG_ENDED) return NULL;
    call_leg *l = leg_new(c, role);
    l->watch = *w;
    if (!leg_dial(c, l, t, c->a->media)) return NULL;
    call_log(c, role == LEG_SPY ? "spy-dial" : "dial", "%s", l->number);
    if (role == LEG_B) {
        cw_strlcpy(c->b_number, l->number, sizeof c->b_number);
        cw_strlcpy(c->b_name, l->name, sizeof c->b_name);
        call_mark_state(c, "dialing");
    }
    return l;
}

call *call_originate(int64_t domain_id, const struct dial_target *t, const char *caller,
                     const char *caller_name, const struct leg_watch *w)
{
    call *c = call_new(domain_id);
    cw_strlcpy(c->a_number, caller ? caller : "", sizeof c->a_number);
    cw_strlcpy(c->a_name, caller_name ? caller_name : "", sizeof c->a_name);
    cw_strlcpy(c->direction, "outgoing", sizeof c->direction);
    call_leg *a = leg_new(c, LEG_A);
    a->watch = *w;
    c->a = a;
    call_mark_state(c, "dialing");
    if (!leg_dial(c, a, t, 0)) {
        c->cause = SIP_CAUSE_FAILED;
        maybe_finish(c);
        return NULL;
    }
    cw_strlcpy(c->dialed, a->number, sizeof c->dialed);
    call_log(c, "originate", "%s", a->number);
    metrics_add(metrics_counter("cw_calls_total", "Calls started", "domain,direction"), 1,
                c->domain_name, c->direction);
    emit(c, "call.created", json_pack("{s:s}", "originated", a->number));
    return c;
}

int call_legs_to(const struct dial_target *t)
{
    int n = 0;
    for (call *c = C.calls; c; c = c->next)
        for (call_leg *l = c->legs; l; l = l->next) {
            if (l->state == LEG_ENDED || l->role == LEG_SPY) continue;
            if (t->kind == SIP_TARGET_USER ? l->user_id == t->user_id
                                           : !l->user_id && !strcmp(l->number, t->uri))
                n++;
        }
    return n;
}

int call_bridge(call *c, call_leg *b)
{
    if (!c->a || c->a->state == LEG_ENDED || b->state != LEG_UP) return CW_ESTATE;
    int rc = call_answer(c);
    if (rc) return rc;
    media_stop(c->a->media);
    rc = media_bridge(c->a->media, b->media);
    if (rc) return rc;
    c->bridged = b;
    c->bridge_ms = cw_wall_ms();
    cw_strlcpy(c->b_number, b->number, sizeof c->b_number);
    cw_strlcpy(c->b_name, b->name, sizeof c->b_name);
    call_log(c, "bridged", "%s", b->number);
    emit(c, "call.bridged", json_pack("{s:s,s:s}", "to", b->number, "to_name", b->name));
    return CW_OK;
}

/* ---- SIP events ---- */

static void load_caller(call *c, const struct sip_party *p)
{
    if (p->user_id) {
        store_res *r;
        if (store_query(store_main(), &r, "SELECT extension, display_name FROM users WHERE id = ?",
                        SA_INT(p->user_id), SA_END) >= 0 &&
            store_next(r)) {
            cw_strlcpy(c->a_number, store_str(r, 0) ? store_str(r, 0) : p->user,
                       sizeof c->a_number);
            cw_strlcpy(c->a_name, store_str(r, 1), sizeof c->a_name);
        }
        store_res_free(r);
        c->a_user_id = p->user_id;
    } else {
        cw_strlcpy(c->a_number, p->user, sizeof c->a_number);
        cw_strlcpy(c->a_name, p->display, sizeof c->a_name);
    }
}

static int64_t trunk_domain(const char *number)
{
    int64_t d = 0;
    store_query_int(store_main(), &d, "SELECT domain_id FROM external_numbers WHERE number = ?",
                    SA_STR(number), SA_END);
    return d;
}

static void on_incoming(const struct sip_incoming *in, void *arg)
{
    int64_t domain = in->from.domain_id;
    if (in->from.trunk_id) domain = trunk_domain(in->to_user);
    if (!domain) {
        sip_respond(in->leg, 404, "Not Found", NULL);
        return;
    }
    int pt = MEDIA_PCMU, dtmf_pt = DTMF_PT;
    if (in->has_offer &&
        sdp_negotiate(&in->offer, offer_pts, (int)CW_ARRAY_LEN(offer_pts), &pt, &dtmf_pt)) {
        sip_respond(in->leg, 488, "Not Acceptable Here", NULL);
        return;
    }
    call *c = call_new(domain);
    call_leg *a = leg_new(c, LEG_A);
    c->a = a;
    a->sip = in->leg;
    a->user_id = in->from.user_id;
    a->pt = pt;
    a->dtmf_pt = dtmf_pt;
    cw_map_put(&C.by_sip, a->sip, a);
    load_caller(c, &in->from);
    cw_strlcpy(a->number, c->a_number, sizeof a->number);
    cw_strlcpy(a->name, c->a_name, sizeof a->name);
    cw_strlcpy(c->dialed, in->to_user, sizeof c->dialed);
    cw_strlcpy(c->direction, in->from.trunk_id ? "incoming" : "internal", sizeof c->direction);
    if (in->from.trunk_id)
        snprintf(c->trunk, sizeof c->trunk, "%lld", (long long)in->from.trunk_id);
    if (leg_open_media(a, 0)) {
        sip_respond(in->leg, 503, "Service Unavailable", NULL);
        a->state = LEG_ENDED;
        c->cause = SIP_CAUSE_UNAVAILABLE;
        maybe_finish(c);
        return;
    }
    if (in->has_offer) {
        int one_pt = pt;
        a->local_sdp = local_sdp(a, &one_pt, 1, dtmf_pt);
        apply_remote(a, &in->offer);
    } else {
        /* late offer: ours goes in the 200 (or a reliable 183), theirs comes with the ACK */
        a->late_offer = true;
        a->local_sdp = local_sdp(a, offer_pts, (int)CW_ARRAY_LEN(offer_pts), DTMF_PT);
    }
    blf(a, SIP_DLG_EARLY);
    call_mark_state(c, "dialing");
    call_log(c, "incoming", "%s -> %s from %s:%d%s", c->a_number, c->dialed, in->src_ip,
             in->src_port, in->has_offer ? "" : " (late offer)");
    log_info("call", "%s: %s (%s) -> %s", c->uuid, c->a_number, c->a_name, c->dialed);
    emit(c, "call.created", NULL);
    metrics_add(metrics_counter("cw_calls_total", "Calls started", "domain,direction"), 1,
                c->domain_name, c->direction);
    call_lua_route(c);
}

/* ---- transfers ----
 *
 * A transfer connects the party that stays (keep, always made the call's
 * A leg) with a new leg, then lets the transferor (from) go. While it runs
 * the call is "transferring", so a routing script or queue that sees its
 * own leg end does not hang the call up under it.
 */

struct xfer {
    call *c;
    call_leg *from; /* who asked (REFER), or NULL for the API / scripts */
    call_leg *keep;
    call_leg *to;
};

static void xfer_done(struct xfer *x)
{
    x->c->transferring = false;
    free(x);
}

static void xfer_talk_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    /* the conversation after a transfer is over: nobody else is left to end it */
    call *c = leg_call(leg);
    if (c->a && c->a->state != LEG_ENDED) call_hangup(c, cause ? cause : SIP_CAUSE_NORMAL);
}

static void xfer_ringing(call_leg *leg, void *arg)
{
    struct xfer *x = arg;
    if (x->keep->state == LEG_UP) media_play_tone(x->keep->media, MEDIA_TONE_RINGBACK, 0);
}

static void xfer_answered(call_leg *leg, void *arg)
{
    struct xfer *x = arg;
    call *c = x->c;
    if (x->keep->state != LEG_UP) {
        leg_hangup(leg, SIP_CAUSE_NORMAL);
        return;
    }
    leg->watch = (struct leg_watch){NULL, NULL, xfer_talk_ended, NULL};
    media_stop(x->keep->media);
    media_bridge(x->keep->media, leg->media);
    c->bridged = leg;
    c->bridge_ms = cw_wall_ms();
    cw_strlcpy(c->b_number, leg->number, sizeof c->b_number);
    cw_strlcpy(c->b_name, leg->name, sizeof c->b_name);
    call_log(c, "transferred", "%s -> %s", x->from ? x->from->number : "api", leg->number);
    emit(c, "call.transferred",
         json_pack("{s:s,s:s}", "to", leg->number, "by", x->from ? x->from->number : ""));
    call_leg *from = x->from;
    xfer_done(x);
    if (from && from->state != LEG_ENDED) {
        sip_refer_result(from->sip, 200);
        leg_hangup(from, SIP_CAUSE_NORMAL);
    }
}

static void xfer_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    struct xfer *x = arg;
    call *c = x->c;
    call_leg *from = x->from, *keep = x->keep;
    xfer_done(x);
    call_log(c, "transfer-failed", "%s: %s", leg->number, sip_cause_name(cause));
    if (from && from->state == LEG_UP && keep->state == LEG_UP) {
        /* the transferor is still there: back to them */
        sip_refer_result(from->sip, sip_status_from_cause(cause));
        media_stop(keep->media);
        media_bridge(keep->media, from->media);
        c->bridged = from;
    } else if (keep->state != LEG_ENDED) {
        call_hangup(c, cause ? cause : SIP_CAUSE_FAILED);
    }
}

/* The party that stays becomes the call's A leg, so the transferor's end is a B leg's end. */
static void reanchor(call *c, call_leg *keep, call_leg *from)
{
    if (c->a != from) return;
    if (c->drv.a_ended) c->drv.a_ended(c, SIP_CAUSE_NORMAL, c->drv.arg); /* its script is done */
    c->drv = (struct call_driver){0};
    keep->role = LEG_A;
    from->role = LEG_B;
    c->a = keep;
    c->bridged = from;
    cw_strlcpy(c->a_number, keep->number, sizeof c->a_number);
    cw_strlcpy(c->a_name, keep->name, sizeof c->a_name);
}

int call_hold(call *c, bool on)
{
    if (!c->a || c->a->state != LEG_UP || !c->bridged || c->bridged->state != LEG_UP)
        return CW_ESTATE;
    if (on) {
        media_unbridge(c->a->media);
        media_moh(c->a->media, "default", 0);
        media_moh(c->bridged->media, "default", 0);
        call_mark_state(c, "hold_a");
        call_log(c, "hold", "by the platform");
    } else {
        media_stop(c->a->media);
        media_stop(c->bridged->media);
        media_bridge(c->a->media, c->bridged->media);
        call_mark_state(c, "answered");
        call_log(c, "unhold", "by the platform");
    }
    emit(c, on ? "call.held" : "call.unheld", json_pack("{s:s}", "by", "platform"));
    return CW_OK;
}

int call_transfer(call *c, const char *target)
{
    call_leg *keep = c->a;
    if (!keep || keep->state != LEG_UP || c->transferring) return CW_ESTATE;
    struct dial_target t;
    const char *why;
    int rc = call_target(c, target, 0, &t, &why);
    if (rc) return rc;
    struct xfer *x = cw_calloc(1, sizeof *x);
    x->c = c;
    x->keep = keep;
    x->from = c->bridged;
    c->transferring = true;
    if (c->bridged) media_unbridge(keep->media);
    x->to =
        call_dial(c, LEG_B, &t, &(struct leg_watch){xfer_ringing, xfer_answered, xfer_ended, x});
    if (!x->to) {
        if (x->from) media_bridge(keep->media, x->from->media);
        xfer_done(x);
        return CW_EIO;
    }
    return CW_OK;
}

/*
 * Attended transfer: connect keep with the other party of the dialog
 * Replaces names (the transferor's consultation call, whichever way it was
 * placed); that party's leg moves into this call and both of the
 * transferor's legs end.
 *
 * Replaces must name a whole dialog (Call-ID and both tags) and that
 * dialog must be the transferor's own: the transferor is party to both
 * calls (RFC 3891 section 3: only a participant may ask to replace a
 * dialog), so nobody can pull a stranger's call, or another tenant's, into
 * theirs. The SIP status the transferor is told: 0 done, 481 no such
 * dialog, 403 not theirs.
 */
static bool same_party(const call_leg *a, const call_leg *b)
{
    if (a->user_id || b->user_id) return a->user_id == b->user_id;
    return a->number[0] && !strcmp(a->number, b->number);
}

static int refer_replaces(call_leg *from, call_leg *keep, const struct sip_leg_event *ev)
{
    call *c = from->call;
    call_leg *z = cw_map_get(&C.by_sip, sip_leg_by_dialog(ev->replaces_call_id, ev->replaces_to_tag,
                                                          ev->replaces_from_tag));
    if (!z || z->state != LEG_UP || z == from) return 481;
    call *c2 = z->call;
    if (c2 == c || c2->domain_id != c->domain_id || !same_party(z, from)) {
        call_log(c, "transfer-refused", "%s named a dialog of another party", from->number);
        return 403;
    }
    call_leg *other = c2->a == z ? c2->bridged : c2->bridged == z ? c2->a : NULL;
    if (!other || other->state != LEG_UP) return 481;
    reanchor(c, keep, from);
    call_leg_move(other, c, LEG_B);
    other->watch = (struct leg_watch){NULL, NULL, xfer_talk_ended, NULL};
    media_stop(keep->media);
    media_bridge(keep->media, other->media);
    c->bridged = other;
    c->bridge_ms = cw_wall_ms();
    cw_strlcpy(c->b_number, other->number, sizeof c->b_number);
    cw_strlcpy(c->b_name, other->name, sizeof c->b_name);
    call_log(c, "transferred", "%s -> %s (attended)", from->number, other->number);
    emit(c, "call.transferred",
         json_pack("{s:s,s:s,s:b}", "to", other->number, "by", from->number, "attended", 1));
    sip_refer_result(from->sip, 200);
    leg_hangup(from, SIP_CAUSE_NORMAL);
    leg_hangup(z, SIP_CAUSE_NORMAL); /* the transferor's consultation call ends */
    return 0;
}

static void on_refer(call_leg *from, const struct sip_leg_event *ev)
{
    call *c = from->call;
    call_leg *keep = from == c->a ? c->bridged : from == c->bridged ? c->a : NULL;
    if (!keep || keep->state != LEG_UP || c->transferring) {
        sip_refer_result(from->sip, 603);
        return;
    }
    if (ev->replaces_call_id[0]) {
        int status = refer_replaces(from, keep, ev);
        if (status) sip_refer_result(from->sip, status);
        return;
    }
    int slot = call_park_slot(c->domain_id, ev->refer_to_user);
    if (slot) { /* a park code or slot */
        if (slot < 0) {
            sip_refer_result(from->sip, 486);
            return;
        }
        reanchor(c, keep, from);
        call_park_refer(c, keep, from, slot);
        return;
    }
    struct dial_target t;
    const char *why;
    if (call_target(c, ev->refer_to_user, 0, &t, &why)) {
        sip_refer_result(from->sip, strcmp(why, "restricted") ? 404 : 403);
        return;
    }
    reanchor(c, keep, from);
    struct xfer *x = cw_calloc(1, sizeof *x);
    x->c = c;
    x->keep = keep;
    x->from = from;
    c->transferring = true;
    media_unbridge(keep->media);
    media_moh(keep->media, "default", 0);
    call_log(c, "transfer", "%s asks for %s", from->number, ev->refer_to_user);
    x->to =
        call_dial(c, LEG_B, &t, &(struct leg_watch){xfer_ringing, xfer_answered, xfer_ended, x});
    if (!x->to) {
        sip_refer_result(from->sip, 503);
        xfer_done(x);
    }
}

static void on_leg_event(const struct sip_leg_event *ev, void *arg)
{
    call_leg *l = cw_map_get(&C.by_sip, ev->leg);
    if (!l || l->state == LEG_ENDED) return;
    call *c = l->call;
    switch (ev->type) {
    case SIP_EV_PROGRESS:
        if (!l->outbound) break;
        if (ev->has_sdp && l->state != LEG_EARLY) {
            int pt, dtmf;
            if (!sdp_negotiate(&ev->sdp, offer_pts, (int)CW_ARRAY_LEN(offer_pts), &pt, &dtmf)) {
                l->pt = pt;
                l->dtmf_pt = dtmf;
                apply_remote(l, &ev->sdp);
            }
        }
        if (l->state == LEG_NEW) {
            blf(l, SIP_DLG_EARLY);
            if (l->role == LEG_B) {
                call_mark_state(c, "alerting");
                emit(c, "call.ringing", json_pack("{s:s}", "to", l->number));
            }
        }
        l->state = ev->has_sdp ? LEG_EARLY : (l->state == LEG_EARLY ? LEG_EARLY : LEG_RINGING);
        if (l->watch.ringing) l->watch.ringing(l, l->watch.arg);
        break;
    case SIP_EV_ANSWERED:
        if (!l->outbound) { /* ACK of our 200: with a late offer, it carries their answer */
            int pt, dtmf;
            if (l->late_offer && ev->has_sdp &&
                !sdp_negotiate(&ev->sdp, offer_pts, (int)CW_ARRAY_LEN(offer_pts), &pt, &dtmf)) {
                l->late_offer = false;
                l->pt = pt;
                l->dtmf_pt = dtmf;
                apply_remote(l, &ev->sdp);
            } else if (l->late_offer) {
                log_warn("call", "%s: late-offer ACK without a usable answer", c->uuid);
                call_hangup(c, SIP_CAUSE_MEDIA);
            }
            break;
        }
        if (!ev->has_sdp && l->state != LEG_EARLY) {
            log_warn("call", "%s: answer without SDP from %s", c->uuid, l->number);
            leg_hangup(l, SIP_CAUSE_MEDIA);
            break;
        }
        if (ev->has_sdp) {
            int pt, dtmf;
            if (sdp_negotiate(&ev->sdp, offer_pts, (int)CW_ARRAY_LEN(offer_pts), &pt, &dtmf)) {
                leg_hangup(l, SIP_CAUSE_MEDIA);
                break;
            }
            l->pt = pt;
            l->dtmf_pt = dtmf;
            apply_remote(l, &ev->sdp);
        }
        l->state = LEG_UP;
        l->answer_ms = cw_wall_ms();
        if (l->role == LEG_A) { /* an originated call was answered */
            c->answer_ms = l->answer_ms;
            call_mark_state(c, "answered");
            emit(c, "call.answered", NULL);
        }
        blf(l, SIP_DLG_CONFIRMED);
        call_log(c, l->role == LEG_SPY ? "spy-answered" : "answered", "%s", l->number);
        if (l->watch.answered) l->watch.answered(l, l->watch.arg);
        break;
    case SIP_EV_FAILED:
    case SIP_EV_ENDED:
        leg_ended(l, ev->cause, true);
        break;
    case SIP_EV_HOLD:
    case SIP_EV_UNHOLD: {
        bool hold = ev->type == SIP_EV_HOLD;
        l->remote_hold = hold;
        if (ev->has_sdp) apply_remote(l, &ev->sdp);
        call_mark_state(c, hold ? (l->role == LEG_A ? "hold_a" : "hold_b") : "answered");
        call_log(c, hold ? "hold" : "unhold", "%s", l->number);
        emit(c, hold ? "call.held" : "call.unheld", json_pack("{s:s}", "by", l->number));
        break;
    }
    case SIP_EV_MEDIA:
        /* new address or codec from the far end, hold state unchanged */
        if (ev->has_sdp) {
            int pt, dtmf;
            if (!sdp_negotiate(&ev->sdp, offer_pts, (int)CW_ARRAY_LEN(offer_pts), &pt, &dtmf)) {
                l->pt = pt;
                l->dtmf_pt = dtmf;
                apply_remote(l, &ev->sdp);
            }
        }
        break;
    case SIP_EV_REFER:
        on_refer(l, ev);
        break;
    case SIP_EV_DTMF: {
        struct media_event me = {.type = MEDIA_EV_DTMF,
                                 .id = l->media,
                                 .digit = ev->digit,
                                 .duration_ms = ev->duration_ms};
        if (l != c->a && call_dtmf_feature(c, l, ev->digit)) break;
        if (c->drv.media_event) c->drv.media_event(c, l, &me, c->drv.arg);
        break;
    }
    }
}

/* ---- media events ---- */

static void on_media_event(const struct media_event *ev, void *arg)
{
    if (call_media_event(ev)) return; /* conference rooms and fax boxes look first */
    call_leg *l = cw_map_get(&C.by_media, ev->id);
    if (!l) return;
    call *c = l->call;
    if (ev->type == MEDIA_EV_CLOSED) {
        l->media_closed = true;
        const char *key = l->role == LEG_A ? "a" : l->role == LEG_B ? "b" : "spy";
        json_object_set_new(c->quality, key,
                            json_pack("{s:I,s:I,s:I,s:I,s:f,s:f,s:f}", "rx_packets",
                                      (json_int_t)ev->stats.rx_packets, "tx_packets",
                                      (json_int_t)ev->stats.tx_packets, "rx_lost",
                                      (json_int_t)ev->stats.rx_lost, "rx_late",
                                      (json_int_t)ev->stats.rx_late, "jitter_ms",
                                      ev->stats.jitter_ms, "remote_loss", ev->stats.remote_loss,
                                      "remote_jitter_ms", ev->stats.remote_jitter_ms));
        cw_map_del(&C.by_media, ev->id);
        maybe_finish(c);
        return;
    }
    if (ev->type == MEDIA_EV_RECORD_DONE || ev->type == MEDIA_EV_FAX_DONE) {
        /* a recording or fax ends (its file complete) even when the call is over */
        if (c->drv.media_event) c->drv.media_event(c, l, ev, c->drv.arg);
        return;
    }
    if (l->state == LEG_ENDED) return;
    if (ev->type == MEDIA_EV_RTP_TIMEOUT) {
        call_log(c, "rtp-timeout", "%s", l->number);
        if (l->role == LEG_A)
            call_hangup(c, SIP_CAUSE_RTP_TIMEOUT);
        else
            leg_hangup(l, SIP_CAUSE_RTP_TIMEOUT);
        return;
    }
    if (l->media_hook) {
        l->media_hook(l, ev, l->media_arg);
        if (l->state == LEG_ENDED) return;
    }
    if (ev->type == MEDIA_EV_DTMF) {
        call_log(c, "dtmf", "%s %c", l->number, ev->digit);
        if (l != c->a && call_dtmf_feature(c, l, ev->digit)) return;
    }
    if (c->drv.media_event) c->drv.media_event(c, l, ev, c->drv.arg);
}

json_t *call_to_json(const call *c)
{
    json_t *legs = json_array();
    static const char *st[] = {"new", "ringing", "early", "up", "ended"};
    static const char *ro[] = {"", "a", "b", "spy"};
    for (const call_leg *l = c->legs; l; l = l->next)
        json_array_append_new(legs, json_pack("{s:s,s:s,s:s,s:s,s:I}", "role", ro[l->role], "state",
                                              st[l->state], "number", l->number, "name", l->name,
                                              "user_id", (json_int_t)l->user_id));
    json_t *j = json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:o}", "uuid", c->uuid, "domain_id",
                          (json_int_t)c->domain_id, "direction",
                          c->direction[0] ? c->direction : "internal", "from", c->a_number,
                          "from_name", c->a_name, "to", c->dialed, "b_number", c->b_number,
                          "b_name", c->b_name, "start_ms", (json_int_t)c->start_ms, "legs", legs);
    if (c->answer_ms) json_object_set_new(j, "answer_ms", json_integer(c->answer_ms));
    if (c->bridge_ms) json_object_set_new(j, "bridge_ms", json_integer(c->bridge_ms));
    if (c->queue_id) json_object_set_new(j, "queue_id", json_integer(c->queue_id));
    if (c->agent_id) json_object_set_new(j, "agent_id", json_integer(c->agent_id));
    return j;
}

/* ---- start and stop ---- */

static const struct sip_handlers sip_h = {on_incoming, on_leg_event, NULL};

/* cw_calls_active{domain}, refreshed just before /metrics is rendered. */
static void collect_active(void *arg)
{
    metric *m = metrics_gauge("cw_calls_active", "Calls in progress", "domain");
    metrics_clear(m);
    for (call *c = C.calls; c; c = c->next)
        if (!c->finished) metrics_add(m, 1, c->domain_name);
}

int call_init(void)
{
    metrics_on_collect(collect_active, NULL);
    cw_map_init(&C.by_sip);
    cw_map_init(&C.by_media);
    cw_map_init(&C.by_uuid);
    call_lua_init();
    call_api_init();
    call_park_init();
    call_media_init();
    return CW_OK;
}

const struct sip_handlers *call_sip_handlers(void)
{
    return &sip_h;
}

void call_on_media_event(const struct media_event *ev, void *arg)
{
    on_media_event(ev, arg);
}

void call_shutdown(void)
{
    call_media_shutdown(); /* rooms and fax jobs let go of their calls */
    for (call *c = C.calls, *n; c; c = n) {
        n = c->next;
        if (c->finished) continue;
        call_ref(c);
        call_hangup(c, SIP_CAUSE_UNAVAILABLE);
        /* the media engine stops with us: its final reports will not come */
        for (call_leg *l = c->legs; l; l = l->next)
            l->media_closed = true;
        maybe_finish(c);
        n = c->next;
        call_unref(c);
    }
}
