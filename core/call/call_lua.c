/*
 * call_lua.c - the Lua call API: one coroutine per call.
 *
 * A call is a userdata whose methods look blocking to the script
 * (call:play(), call:read_digits(), call:bridge(), call:queue()) and suspend
 * the coroutine underneath; the media, SIP and ACD events that finish them
 * resume it with the outcome as return values, never as Lua errors. The
 * primitives live here; scripts/cw/call.lua composes them (collect, say).
 *
 * Runs on the core thread. Owns struct cscript, one per routed call.
 */
#include "acd/acd.h"
#include "base/cw.h"
#include "base/tz.h"
#include "call/call_int.h"
#include "config/config.h"
#include "log/log.h"
#include "route/numbers.h"
#include "loop/loop.h"
#include "lua/script.h"
#include "store/store.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CALL_MT      "cw.call"
#define MAX_TARGETS  16
#define MAX_ANNOUNCE 32

enum wait_kind {
    W_NONE = 0,
    W_PLAY,
    W_DIGITS,
    W_SLEEP,
    W_BRIDGE,
    W_QUEUE,
    W_RECORD,
    W_MEDIA, /* call_lua_await(): one media event of a type and tag */
    W_FALLBACK
};

struct cscript;

struct call_ud {
    struct cscript *s;
};

struct dial_attempt {
    call_leg *leg;
    bool done;
    enum sip_cause cause;
};

struct cscript {
    call *c;
    struct call_ud *ud;
    script_co *co;     /* the routing coroutine */
    script_co *waiter; /* the coroutine suspended in a call method */
    enum wait_kind wait;
    uint32_t tag;
    uint32_t next_tag;
    bool interrupt; /* current play stops on a digit */
    bool hungup;
    bool handed_over; /* another script drives the call now; this one only ends */
    char *fallback;   /* where the call goes if this (tenant) script fails */
    bool script_done;
    bool starting;
    struct event *timer;
    /* digits */
    char typeahead[64];
    int nahead;
    int max_digits;
    char terminators[8];
    int interdigit_ms;
    cw_buf digits;
    /* bridge */
    struct dial_attempt att[MAX_TARGETS];
    int natt, next_att;
    bool sequential;
    struct dial_target *targets; /* ntargets of them, allocated by each bridge */
    int lines[MAX_TARGETS]; /* a target is skipped (busy) when this many of its lines are in use */
    int ntargets;
    call_leg *winner;
    char *announce[MAX_ANNOUNCE]; /* played to whoever answers before the two are connected */
    int nannounce;
    bool announcing; /* the winner is hearing the announcement */
    uint32_t announce_tag;
    bool record_talk; /* record the conversation once connected */
    int64_t record_ring_list;
    bool ringback_on;
    char *ringback_file; /* a melody instead of the ringing tone; NULL: the tone */
    int sync_result;
    int dialing; /* attempt slot being dialled, -1 when none */
    enum media_event_type await_type;
    int on_hangup_ref;
};

static void cscript_release(struct cscript *s);

/* ---- resuming the waiting coroutine ---- */

static lua_State *resume_begin(struct cscript *s, script_co **co)
{
    *co = s->waiter;
    s->waiter = NULL;
    s->wait = W_NONE;
    if (s->timer) evtimer_del(s->timer);
    return *co ? script_co_thread(*co) : NULL;
}

static void resume_end(script_co *co, int n)
{
    script_co_resume(co, n);
    script_co_unref(co);
}

static void resume_ok(struct cscript *s, const char *detail)
{
    script_co *co;
    lua_State *T = resume_begin(s, &co);
    if (!T) return;
    lua_pushboolean(T, 1);
    if (detail) lua_pushstring(T, detail);
    resume_end(co, detail ? 2 : 1);
}

static void resume_fail(struct cscript *s, const char *reason)
{
    script_co *co;
    lua_State *T = resume_begin(s, &co);
    if (!T) return;
    lua_pushnil(T);
    lua_pushstring(T, reason);
    resume_end(co, 2);
}

static void resume_str(struct cscript *s, const char *value, const char *detail)
{
    script_co *co;
    lua_State *T = resume_begin(s, &co);
    if (!T) return;
    lua_pushstring(T, value);
    lua_pushstring(T, detail);
    resume_end(co, 2);
}

/* The waiting coroutine ended without being resumed (killed, VM closed). */
static void waiter_cancelled(void *arg)
{
    struct cscript *s = arg;
    script_co *co = s->waiter;
    s->waiter = NULL;
    s->wait = W_NONE;
    if (s->timer) evtimer_del(s->timer);
    if (co) script_co_unref(co);
}

/*
 * Methods that wait call may_suspend() before they start anything, so an
 * impossible suspension (inside coroutine.wrap, a metamethod) raises
 * before a prompt or a dial has begun.
 */
static void may_suspend(lua_State *L, struct cscript *s)
{
    script_co_check(L);
    if (s->waiter) luaL_error(L, "call is already waiting in another coroutine");
}

static int suspend(lua_State *L, struct cscript *s, enum wait_kind kind)
{
    script_co *co = script_co_of(L);
    s->wait = kind;
    s->waiter = co;
    script_co_ref(co);
    script_co_on_cancel(co, waiter_cancelled, s);
    return script_co_suspend(L);
}

static struct cscript *check_call(lua_State *L);

uint32_t call_lua_tag(lua_State *L)
{
    struct cscript *s = check_call(L);
    if (!s || !s->c) return 0;
    may_suspend(L, s); /* raises now, before the caller starts anything */
    return ++s->next_tag;
}

int call_lua_await(lua_State *L, enum media_event_type type, uint32_t tag)
{
    struct cscript *s = check_call(L);
    if (!s || !s->c || !tag) {
        lua_pushnil(L);
        lua_pushstring(L, "hangup");
        return 2;
    }
    s->await_type = type;
    s->tag = tag;
    return suspend(L, s, W_MEDIA);
}

static void on_timer(evutil_socket_t fd, short what, void *arg);

static void arm_timer(struct cscript *s, int ms)
{
    if (!s->timer) s->timer = evtimer_new(loop_base(), on_timer, s);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(s->timer, &tv);
}

/* ---- userdata ---- */

static struct cscript *check_call(lua_State *L)
{
    struct call_ud *ud = luaL_checkudata(L, 1, CALL_MT);
    return ud->s;
}

call *call_lua_check(lua_State *L)
{
    struct cscript *s = check_call(L);
    return s ? s->c : NULL;
}

/* For methods: NULL (and nil, "hangup" pushed) when the call is gone. */
#define CALL_OR_GONE(L, s)                                                                         \
    struct cscript *s = check_call(L);                                                             \
    if (!s || !s->c || s->hungup || s->handed_over || leg_state(call_a_leg(s->c)) == LEG_ENDED) {  \
        lua_pushnil(L);                                                                            \
        lua_pushstring(L, "hangup");                                                               \
        return 2;                                                                                  \
    }

static void push_call(lua_State *L, struct cscript *s)
{
    struct call_ud *ud = lua_newuserdatauv(L, sizeof *ud, 1);
    ud->s = s;
    s->ud = ud;
    luaL_setmetatable(L, CALL_MT);
    lua_newtable(L); /* call.vars */
    lua_setiuservalue(L, -2, 1);
}

static int l_gc(lua_State *L)
{
    struct call_ud *ud = luaL_checkudata(L, 1, CALL_MT);
    if (ud->s) ud->s->ud = NULL;
    ud->s = NULL;
    return 0;
}

static int l_index(lua_State *L)
{
    struct call_ud *ud = luaL_checkudata(L, 1, CALL_MT);
    const char *k = luaL_checkstring(L, 2);
    /* methods first */
    luaL_getmetafield(L, 1, "methods");
    lua_getfield(L, -1, k);
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 2);
    if (!strcmp(k, "vars")) {
        lua_getiuservalue(L, 1, 1);
        return 1;
    }
    struct cscript *s = ud->s;
    if (!strcmp(k, "alive")) {
        /* the caller's leg may end before the script hears of it (a bridge cancelled by it) */
        lua_pushboolean(L, s && s->c && !s->hungup && leg_state(call_a_leg(s->c)) != LEG_ENDED);
        return 1;
    }
    /* read straight from the call: scripts ask these on every step of a flow */
    const call *c = s ? s->c : NULL;
    if (!c) {
        lua_pushnil(L);
    } else if (!strcmp(k, "uuid")) {
        lua_pushstring(L, call_uuid(c));
    } else if (!strcmp(k, "caller")) {
        lua_pushstring(L, call_caller_number(c));
    } else if (!strcmp(k, "caller_name")) {
        lua_pushstring(L, call_caller_name(c));
    } else if (!strcmp(k, "dialed")) {
        lua_pushstring(L, call_dialed(c));
    } else if (!strcmp(k, "domain_id")) {
        lua_pushinteger(L, (lua_Integer)call_domain(c));
    } else if (!strcmp(k, "direction")) {
        lua_pushstring(L, call_direction(c));
    } else if (!strcmp(k, "answered")) {
        lua_pushboolean(L, call_answered(c));
    } else {
        lua_pushnil(L);
    }
    return 1;
}

static int l_newindex(lua_State *L)
{
    return luaL_error(L, "call fields are read-only; keep your data in call.vars");
}

/* ---- simple actions ---- */

static int l_answer(lua_State *L)
{
    CALL_OR_GONE(L, s);
    int rc = call_answer(s->c);
    if (rc) {
        lua_pushnil(L);
        lua_pushstring(L, cw_strerror(rc));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_ring(lua_State *L)
{
    CALL_OR_GONE(L, s);
    call_ring(s->c, lua_toboolean(L, 2));
    lua_pushboolean(L, 1);
    return 1;
}

static enum sip_cause cause_parse(const char *s)
{
    static const struct {
        const char *n;
        enum sip_cause c;
    } t[] = {{"normal", SIP_CAUSE_NORMAL},       {"busy", SIP_CAUSE_BUSY},
             {"no_answer", SIP_CAUSE_NO_ANSWER}, {"rejected", SIP_CAUSE_REJECTED},
             {"no_route", SIP_CAUSE_NO_ROUTE},   {"unavailable", SIP_CAUSE_UNAVAILABLE},
             {"failed", SIP_CAUSE_FAILED}};
    for (size_t i = 0; i < CW_ARRAY_LEN(t); i++)
        if (!strcmp(s, t[i].n)) return t[i].c;
    return SIP_CAUSE_NONE;
}

static int l_hangup(lua_State *L)
{
    CALL_OR_GONE(L, s);
    const char *cs = luaL_optstring(L, 2, "normal");
    enum sip_cause cause = cause_parse(cs);
    if (!cause) return luaL_argerror(L, 2, "unknown cause");
    call_hangup(s->c, cause);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_log(lua_State *L)
{
    struct cscript *s = check_call(L);
    const char *msg = luaL_checkstring(L, 2);
    if (s && s->c) {
        call_log(s->c, "script", "%s", msg);
        log_info("script", "%s: %s", call_uuid(s->c), msg);
    }
    return 0;
}

/* ---- playback ---- */

static int collect_files(lua_State *L, int idx, const char **files, int max)
{
    if (lua_isstring(L, idx)) {
        files[0] = lua_tostring(L, idx);
        return 1;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = 0;
    lua_Integer len = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= len && n < max; i++) {
        lua_geti(L, idx, i);
        if (!lua_isstring(L, -1)) luaL_error(L, "play: file %d is not a string", (int)i);
        files[n++] = lua_tostring(L, -1);
        lua_pop(L, 1); /* the string stays alive in the table */
    }
    return n;
}

static bool opt_bool(lua_State *L, int idx, const char *key)
{
    if (!lua_istable(L, idx)) return false;
    lua_getfield(L, idx, key);
    bool v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static lua_Integer opt_int(lua_State *L, int idx, const char *key, lua_Integer def)
{
    if (!lua_istable(L, idx)) return def;
    lua_getfield(L, idx, key);
    lua_Integer v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : def;
    if (lua_isnumber(L, -1) && !lua_isinteger(L, -1)) v = (lua_Integer)lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static const char *opt_str(lua_State *L, int idx, const char *key, const char *def)
{
    if (!lua_istable(L, idx)) return def;
    lua_getfield(L, idx, key);
    const char *v = lua_isstring(L, -1) ? lua_tostring(L, -1) : def;
    lua_pop(L, 1); /* strings from an option table stay alive while it does */
    return v;
}

/* call:play(files, {loop=, interrupt=, max= s}) -> true | true,"digit" | true,"max" | nil,reason
 * max: stop after that many seconds (a looped melody for a while). */
static int l_play(lua_State *L)
{
    CALL_OR_GONE(L, s);
    may_suspend(L, s);
    const char *files[32];
    int n = collect_files(L, 2, files, 32);
    if (n == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    s->interrupt = opt_bool(L, 3, "interrupt");
    if (s->interrupt && s->nahead > 0) {
        lua_pushboolean(L, 1);
        lua_pushstring(L, "digit");
        return 2;
    }
    lua_Integer max_ms = 0;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "max");
        if (!lua_isnil(L, -1)) {
            lua_Number v = lua_tonumber(L, -1);
            if (!lua_isnumber(L, -1) || v <= 0 || v > 3600)
                return luaL_argerror(L, 3, "max must be 0..3600 s");
            max_ms = (lua_Integer)(v * 1000);
        }
        lua_pop(L, 1);
    }
    s->tag = ++s->next_tag;
    int rc = media_play(leg_media(call_a_leg(s->c)), files, n, opt_bool(L, 3, "loop"), s->tag);
    if (rc) {
        lua_pushnil(L);
        lua_pushstring(L, "error");
        return 2;
    }
    if (max_ms > 0) arm_timer(s, (int)max_ms);
    return suspend(L, s, W_PLAY);
}

static const struct {
    const char *name;
    enum media_tone tone;
} tones[] = {{"dial", MEDIA_TONE_DIAL},
             {"ringback", MEDIA_TONE_RINGBACK},
             {"busy", MEDIA_TONE_BUSY},
             {"congestion", MEDIA_TONE_CONGESTION},
             {"call_waiting", MEDIA_TONE_CALL_WAITING},
             {"beep", MEDIA_TONE_BEEP}};

/* call:tone(name): starts a tone and returns at once; call:stop() ends it. */
static int l_tone(lua_State *L)
{
    CALL_OR_GONE(L, s);
    const char *name = luaL_checkstring(L, 2);
    for (size_t i = 0; i < CW_ARRAY_LEN(tones); i++) {
        if (strcmp(name, tones[i].name)) continue;
        media_play_tone(leg_media(call_a_leg(s->c)), tones[i].tone, ++s->next_tag);
        lua_pushboolean(L, 1);
        return 1;
    }
    return luaL_argerror(L, 2, "unknown tone");
}

static int l_moh(lua_State *L)
{
    CALL_OR_GONE(L, s);
    media_moh(leg_media(call_a_leg(s->c)), luaL_optstring(L, 2, "default"), ++s->next_tag);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_stop(lua_State *L)
{
    CALL_OR_GONE(L, s);
    media_stop(leg_media(call_a_leg(s->c)));
    lua_pushboolean(L, 1);
    return 1;
}

static int l_sleep(lua_State *L)
{
    CALL_OR_GONE(L, s);
    may_suspend(L, s);
    lua_Integer ms = luaL_checkinteger(L, 2);
    if (ms < 0 || ms > 3600000) return luaL_argerror(L, 2, "0..3600000 ms");
    arm_timer(s, (int)ms);
    return suspend(L, s, W_SLEEP);
}

/* ---- digits ---- */

/* Take digits from the type-ahead buffer; true when the read is complete. */
static bool take_ahead(struct cscript *s, const char **why)
{
    while (s->nahead > 0) {
        char d = s->typeahead[0];
        memmove(s->typeahead, s->typeahead + 1, (size_t)--s->nahead);
        if (strchr(s->terminators, d) && d) {
            *why = "terminator";
            return true;
        }
        cw_buf_append(&s->digits, &d, 1);
        if ((int)s->digits.len >= s->max_digits) {
            *why = "max";
            return true;
        }
    }
    return false;
}

/* call:read_digits(max, timeout_ms, interdigit_ms, terminators) -> digits, why */
static int l_read_digits(lua_State *L)
{
    CALL_OR_GONE(L, s);
    may_suspend(L, s);
    lua_Integer max = luaL_checkinteger(L, 2);
    lua_Integer timeout = luaL_optinteger(L, 3, 5000);
    lua_Integer inter = luaL_optinteger(L, 4, 3000);
    const char *term = luaL_optstring(L, 5, "");
    if (max < 1 || max > 64) return luaL_argerror(L, 2, "1..64 digits");
    if (timeout < 0 || inter < 0) return luaL_argerror(L, 3, "timeouts must be >= 0");
    s->max_digits = (int)max;
    cw_strlcpy(s->terminators, term, sizeof s->terminators);
    s->interdigit_ms = (int)inter;
    cw_buf_reset(&s->digits);
    const char *why;
    if (take_ahead(s, &why)) {
        lua_pushstring(L, s->digits.data ? s->digits.data : "");
        lua_pushstring(L, why);
        return 2;
    }
    arm_timer(s, s->digits.len ? (int)inter : (int)timeout);
    return suspend(L, s, W_DIGITS);
}

static int l_flush_digits(lua_State *L)
{
    struct cscript *s = check_call(L);
    if (s) s->nahead = 0;
    return 0;
}

static int l_send_dtmf(lua_State *L)
{
    CALL_OR_GONE(L, s);
    const char *d = luaL_checkstring(L, 2);
    for (; *d; d++)
        media_send_dtmf(leg_media(call_a_leg(s->c)), *d, 100);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- resolving numbers ---- */

/* The domain's IVR settings: input timeout, max errors, language. */
static void push_ivr_settings(lua_State *L, int64_t domain)
{
    lua_createtable(L, 0, 3);
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT ivr_timeout, ivr_max_errors, language FROM domains WHERE id = ?",
                    SA_INT(domain), SA_END) >= 0 &&
        store_next(r)) {
        lua_pushinteger(L, store_int(r, 0)), lua_setfield(L, -2, "timeout");
        lua_pushinteger(L, store_int(r, 1)), lua_setfield(L, -2, "max_errors");
        lua_pushstring(L, store_str(r, 2)), lua_setfield(L, -2, "language");
    }
    store_res_free(r);
}

static int l_resolve(lua_State *L)
{
    struct cscript *s = check_call(L);
    const char *num = luaL_checkstring(L, 2);
    if (!s || !s->c) return 0;
    int64_t dom = call_domain(s->c);
    store *st = store_main();
    store_res *r;
    if (store_query(st, &r,
                    "SELECT u.id, u.display_name, u.extension, u.voicemail_enabled, u.language, "
                    "(SELECT path FROM sound_files f WHERE f.id = u.greeting_sound_id "
                    "AND f.domain_id = u.domain_id), u.login, u.personal_ivr, "
                    "(SELECT path FROM sound_files f WHERE f.id = u.ringback_sound_id "
                    "AND f.domain_id = u.domain_id) "
                    "FROM users u WHERE u.status = 'active' AND ((u.domain_id = ? AND "
                    "u.extension = ?) OR (u.domain_id = ? AND u.login = ?))",
                    /* the domain in each branch: both use an index, no scan of the domain */
                    SA_INT(dom), SA_STR(num), SA_INT(dom), SA_STR(num), SA_END) >= 0 &&
        store_next(r)) {
        lua_createtable(L, 0, 8);
        lua_pushstring(L, "user"), lua_setfield(L, -2, "kind");
        lua_pushinteger(L, store_int(r, 0)), lua_setfield(L, -2, "id");
        lua_pushstring(L, store_str(r, 1)), lua_setfield(L, -2, "name");
        lua_pushstring(L, store_str(r, 2)), lua_setfield(L, -2, "extension");
        lua_pushboolean(L, store_int(r, 3) != 0), lua_setfield(L, -2, "voicemail");
        lua_pushstring(L, store_str(r, 4)), lua_setfield(L, -2, "language");
        if (store_str(r, 5)) lua_pushstring(L, store_str(r, 5)), lua_setfield(L, -2, "greeting");
        lua_pushstring(L, store_str(r, 6)), lua_setfield(L, -2, "login");
        if (store_str(r, 7) && *store_str(r, 7))
            lua_pushstring(L, store_str(r, 7)), lua_setfield(L, -2, "personal_ivr");
        if (store_str(r, 8)) lua_pushstring(L, store_str(r, 8)), lua_setfield(L, -2, "ringback");
        store_res_free(r);
        return 1;
    }
    store_res_free(r);
    if (store_query(st, &r,
                    "SELECT id, name, extension, strategy, overflow_target, voicemail_enabled "
                    "FROM call_groups WHERE domain_id = ? AND extension = ?",
                    SA_INT(dom), SA_STR(num), SA_END) >= 0 &&
        store_next(r)) {
        lua_createtable(L, 0, 7);
        lua_pushstring(L, "group"), lua_setfield(L, -2, "kind");
        lua_pushinteger(L, store_int(r, 0)), lua_setfield(L, -2, "id");
        lua_pushstring(L, store_str(r, 1)), lua_setfield(L, -2, "name");
        lua_pushstring(L, store_str(r, 2)), lua_setfield(L, -2, "extension");
        lua_pushstring(L, store_str(r, 3)), lua_setfield(L, -2, "strategy");
        if (store_str(r, 4) && *store_str(r, 4))
            lua_pushstring(L, store_str(r, 4)), lua_setfield(L, -2, "overflow");
        lua_pushboolean(L, store_int(r, 5) != 0), lua_setfield(L, -2, "voicemail");
        store_res_free(r);
        return 1;
    }
    store_res_free(r);
    if (store_query(st, &r,
                    "SELECT id, name, extension, script, flow FROM ivr_flows WHERE domain_id = ? "
                    "AND extension = ?",
                    SA_INT(dom), SA_STR(num), SA_END) >= 0 &&
        store_next(r)) {
        lua_createtable(L, 0, 6);
        lua_pushstring(L, "ivr"), lua_setfield(L, -2, "kind");
        lua_pushinteger(L, store_int(r, 0)), lua_setfield(L, -2, "id");
        lua_pushstring(L, store_str(r, 1)), lua_setfield(L, -2, "name");
        lua_pushstring(L, store_str(r, 2)), lua_setfield(L, -2, "extension");
        lua_pushstring(L, store_str(r, 3)), lua_setfield(L, -2, "script");
        json_t *flow = json_loads(store_str(r, 4) ? store_str(r, 4) : "{}", 0, NULL);
        if (flow)
            script_push_json(L, flow);
        else
            lua_newtable(L);
        json_decref(flow);
        lua_setfield(L, -2, "flow");
        push_ivr_settings(L, dom);
        lua_setfield(L, -2, "settings");
        store_res_free(r);
        return 1;
    }
    store_res_free(r);
    if (call_ringlist_resolve(L, dom, num)) return 1;
    return call_conf_resolve(L, dom, num);
}

/* call:agent_state(state, reason): the calling user's own ACD state (feature codes). */
static int l_agent_state(lua_State *L)
{
    CALL_OR_GONE(L, s);
    const char *name = luaL_checkstring(L, 2);
    const char *reason = luaL_optstring(L, 3, NULL);
    enum agent_state st;
    if (agent_state_parse(name, &st)) return luaL_argerror(L, 2, "unknown agent state");
    int64_t user = leg_user(call_a_leg(s->c));
    int64_t op = 0;
    if (!user ||
        store_query_int(store_main(), &op, "SELECT is_operator FROM users WHERE id = ?",
                        SA_INT(user), SA_END) ||
        !op) {
        lua_pushnil(L);
        lua_pushstring(L, "not_operator");
        return 2;
    }
    int rc = acd_agent_set_state(call_domain(s->c), user, st, reason);
    if (rc) {
        lua_pushnil(L);
        lua_pushstring(L, cw_strerror(rc));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* call:transfer(target): ring target for the caller, connect them on answer and
 * release the current party; returns at once (true, or nil and why). */
static int l_transfer(lua_State *L)
{
    CALL_OR_GONE(L, s);
    int rc = call_transfer(s->c, luaL_checkstring(L, 2));
    if (rc) {
        lua_pushnil(L);
        lua_pushstring(L, rc == CW_ESTATE ? "not_in_conversation" : "no_route");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* call:hold() / call:unhold(): music for both parties of the conversation, then back. */
static int hold_common(lua_State *L, bool on)
{
    CALL_OR_GONE(L, s);
    if (call_hold(s->c, on)) {
        lua_pushnil(L);
        lua_pushstring(L, "not_in_conversation");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_hold(lua_State *L)
{
    return hold_common(L, true);
}

static int l_unhold(lua_State *L)
{
    return hold_common(L, false);
}

/* call:forwarding(user_id) -> the user's rules, lowest priority first:
 * {kind, number, priority, ring_time, schedule (table or nil), enabled, is_main} */
static int l_forwarding(lua_State *L)
{
    CALL_OR_GONE(L, s);
    lua_Integer uid = luaL_checkinteger(L, 2);
    store_res *r;
    lua_newtable(L);
    if (store_query(store_main(), &r,
                    "SELECT kind, number, priority, ring_time, schedule, enabled, is_main "
                    "FROM forwarding_rules WHERE owner_id = ? AND domain_id = ? "
                    "ORDER BY priority, id",
                    SA_INT(uid), SA_INT(call_domain(s->c)), SA_END) < 0)
        return 1;
    for (int i = 1; store_next(r); i++) {
        lua_createtable(L, 0, 7);
        lua_pushstring(L, store_str(r, 0)), lua_setfield(L, -2, "kind");
        lua_pushstring(L, store_str(r, 1)), lua_setfield(L, -2, "number");
        lua_pushinteger(L, store_int(r, 2)), lua_setfield(L, -2, "priority");
        lua_pushinteger(L, store_int(r, 3)), lua_setfield(L, -2, "ring_time");
        json_t *sch = store_str(r, 4) ? json_loads(store_str(r, 4), 0, NULL) : NULL;
        if (sch && !json_is_null(sch)) {
            script_push_json(L, sch);
            lua_setfield(L, -2, "schedule");
        }
        json_decref(sch);
        lua_pushboolean(L, store_int(r, 5) != 0), lua_setfield(L, -2, "enabled");
        lua_pushboolean(L, store_int(r, 6) != 0), lua_setfield(L, -2, "is_main");
        lua_rawseti(L, -2, i);
    }
    store_res_free(r);
    return 1;
}

/* call:local_time() -> {year, month, day, wday (1 = Monday), hour, min, date = "YYYY-MM-DD",
 * minutes = minutes since local midnight} in the domain's time zone */
static int l_local_time(lua_State *L)
{
    struct cscript *s = check_call(L);
    char tz[64] = "UTC";
    if (s && s->c) {
        store_res *r;
        if (store_query(store_main(), &r, "SELECT timezone FROM domains WHERE id = ?",
                        SA_INT(call_domain(s->c)), SA_END) >= 0 &&
            store_next(r))
            cw_strlcpy(tz, store_str(r, 0), sizeof tz);
        store_res_free(r);
    }
    struct cw_localtime lt;
    cw_tz_local(tz, cw_wall_time(), &lt);
    lua_createtable(L, 0, 9);
    lua_pushinteger(L, lt.year), lua_setfield(L, -2, "year");
    lua_pushinteger(L, lt.month), lua_setfield(L, -2, "month");
    lua_pushinteger(L, lt.day), lua_setfield(L, -2, "day");
    lua_pushinteger(L, lt.wday), lua_setfield(L, -2, "wday");
    lua_pushinteger(L, lt.hour), lua_setfield(L, -2, "hour");
    lua_pushinteger(L, lt.min), lua_setfield(L, -2, "min");
    lua_pushinteger(L, lt.hour * 60 + lt.min), lua_setfield(L, -2, "minutes");
    lua_pushfstring(L, "%d-%s%d-%s%d", lt.year, lt.month < 10 ? "0" : "", lt.month,
                    lt.day < 10 ? "0" : "", lt.day);
    lua_setfield(L, -2, "date");
    lua_pushstring(L, tz), lua_setfield(L, -2, "zone");
    return 1;
}

/* call:sound_path(id) -> the file of an uploaded sound of the call's domain, or nil */
static int l_sound_path(lua_State *L)
{
    struct cscript *s = check_call(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    if (!s || !s->c) return 0;
    store_res *r;
    if (store_query(store_main(), &r, "SELECT path FROM sound_files WHERE id = ? AND domain_id = ?",
                    SA_INT(id), SA_INT(call_domain(s->c)), SA_END) >= 0 &&
        store_next(r)) {
        lua_pushstring(L, store_str(r, 0));
        store_res_free(r);
        return 1;
    }
    store_res_free(r);
    return 0;
}

/* ---- bridge: dial one or more targets, connect the first to answer ---- */

static enum sip_cause worst_cause(struct cscript *s)
{
    /* the most telling failure wins: busy, then no answer, then the rest */
    static const enum sip_cause order[] = {SIP_CAUSE_BUSY,        SIP_CAUSE_NO_ANSWER,
                                           SIP_CAUSE_REJECTED,    SIP_CAUSE_NO_ROUTE,
                                           SIP_CAUSE_UNAVAILABLE, SIP_CAUSE_MEDIA};
    for (size_t i = 0; i < CW_ARRAY_LEN(order); i++)
        for (int a = 0; a < s->natt; a++)
            if (s->att[a].cause == order[i]) return order[i];
    return SIP_CAUSE_FAILED;
}

static void bridge_ringing(call_leg *leg, void *arg);
static void bridge_answered(call_leg *leg, void *arg);
static void bridge_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg);

/*
 * Dial targets until one is ringing (sequential) or the next one (parallel
 * callers loop). A leg may fail while it is being dialled (nobody
 * registered): bridge_ended() then marks the slot in s->dialing and leaves
 * the decision to this loop, which moves on.
 */
static int dial_next(struct cscript *s)
{
    while (s->next_att < s->ntargets) {
        int i = s->next_att++;
        int k = s->natt++;
        s->att[k] = (struct dial_attempt){0};
        struct leg_watch w = {bridge_ringing, bridge_answered, bridge_ended, s};
        const struct dial_target *t = &s->targets[i];
        if (s->lines[i] > 0 && call_legs_to(t) >= s->lines[i]) {
            call_log(s->c, "lines-busy", "%s: all %d line(s) in use",
                     t->kind == SIP_TARGET_USER ? "user" : t->uri, s->lines[i]);
            s->att[k].done = true;
            s->att[k].cause = SIP_CAUSE_BUSY;
            continue;
        }
        if (t->kind == SIP_TARGET_TRUNK)
            call_set_direction(s->c,
                               strcmp(call_direction(s->c), "incoming") ? "outgoing" : "transit",
                               t->trunk_id);
        s->dialing = k;
        call_leg *l = call_dial(s->c, LEG_B, t, &w);
        s->dialing = -1;
        if (s->att[k].done) continue; /* failed at once */
        s->att[k].leg = l;
        if (!l) {
            s->att[k].done = true;
            s->att[k].cause = SIP_CAUSE_NO_ROUTE;
            continue;
        }
        return 1;
    }
    return 0;
}

static int attempts_pending(struct cscript *s)
{
    int n = 0;
    for (int i = 0; i < s->natt; i++)
        if (!s->att[i].done) n++;
    return n;
}

static void announce_clear(struct cscript *s)
{
    for (int i = 0; i < s->nannounce; i++)
        free(s->announce[i]);
    s->nannounce = 0;
    s->announcing = false;
}

static void bridge_finish(struct cscript *s, const char *outcome)
{
    call *c = s->c;
    announce_clear(s);
    if (s->ringback_on && call_a_leg(c) && leg_state(call_a_leg(c)) != LEG_ENDED)
        media_stop(leg_media(call_a_leg(c)));
    s->ringback_on = false;
    resume_str(s, outcome, s->winner ? leg_number(s->winner) : "");
}

/*
 * The caller hears ringing: its phone's own (180) while not answered, our
 * tone once it is, or the callee's ringback melody (seed 001 §4.2) as
 * early media either way.
 */
static void bridge_ringing(call_leg *leg, void *arg)
{
    struct cscript *s = arg;
    call *c = s->c;
    call_leg *a = call_a_leg(c);
    if (s->ringback_on) return;
    if (s->ringback_file) {
        if (leg_state(a) != LEG_UP) call_ring(c, true);
        const char *files[] = {s->ringback_file};
        media_play(leg_media(a), files, 1, true, ++s->next_tag);
        s->ringback_on = true;
    } else if (leg_state(a) == LEG_UP) {
        media_play_tone(leg_media(a), MEDIA_TONE_RINGBACK, ++s->next_tag);
        s->ringback_on = true;
    } else {
        call_ring(c, false);
    }
}

/* Connect the caller with the party that answered (after its announcement, if any). */
static void connect_winner(struct cscript *s)
{
    call_leg *leg = s->winner;
    s->announcing = false;
    s->ringback_on = false;
    if (call_bridge(s->c, leg)) {
        leg_hangup(leg, SIP_CAUSE_FAILED);
        return;
    }
    if (s->record_talk) call_record_conversation(s->c, s->record_ring_list);
    /* stays suspended until the conversation ends */
}

static void bridge_answered(call_leg *leg, void *arg)
{
    struct cscript *s = arg;
    if (s->winner || s->wait != W_BRIDGE) {
        leg_hangup(leg, SIP_CAUSE_NORMAL);
        return;
    }
    s->winner = leg;
    for (int i = 0; i < s->natt; i++) {
        if (s->att[i].leg == leg) continue;
        if (!s->att[i].done && s->att[i].leg) {
            s->att[i].done = true;
            leg_hangup(s->att[i].leg, SIP_CAUSE_NORMAL);
        }
    }
    if (s->nannounce > 0) {
        /* the caller goes on hearing ringing; on_media() connects on the PLAY_DONE */
        s->announce_tag = ++s->next_tag;
        if (media_play(leg_media(leg), (const char *const *)s->announce, s->nannounce, false,
                       s->announce_tag) == CW_OK) {
            s->announcing = true;
            call_log(s->c, "announce", "to %s", leg_number(leg));
            return;
        }
    }
    connect_winner(s);
}

static void bridge_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    struct cscript *s = arg;
    bool found = false;
    for (int i = 0; i < s->natt; i++) {
        if (s->att[i].leg != leg) continue;
        s->att[i].done = true;
        s->att[i].cause = cause;
        found = true;
    }
    if (!found && s->dialing >= 0) {
        s->att[s->dialing].done = true;
        s->att[s->dialing].cause = cause;
        return; /* dial_next() goes on */
    }
    if (s->wait != W_BRIDGE) return;
    if (leg == s->winner && s->announcing) {
        /* gone while hearing who calls: nobody took the call, the attempt goes on */
        s->announcing = false;
        s->winner = NULL;
        for (int i = 0; i < s->natt; i++)
            if (s->att[i].leg == leg) s->att[i].cause = SIP_CAUSE_NO_ANSWER;
        call_log(s->c, "announce-left", "%s hung up before being connected", leg_number(leg));
    } else if (leg == s->winner) {
        bridge_finish(s, "answered");
        return;
    }
    if (s->winner || attempts_pending(s) > 0) return;
    if (s->hungup || leg_state(call_a_leg(s->c)) == LEG_ENDED) {
        bridge_finish(s, "cancelled");
        return;
    }
    if (s->sequential && dial_next(s)) return;
    bridge_finish(s, call_outcome_name(call_outcome_from_cause(worst_cause(s))));
}

/* bridge's announce option: a file name or a list of them, kept until the bridge ends. */
static void announce_set(lua_State *L, struct cscript *s)
{
    announce_clear(s);
    if (!lua_istable(L, 3)) return;
    lua_getfield(L, 3, "announce");
    int idx = lua_gettop(L);
    if (lua_isstring(L, idx)) {
        s->announce[s->nannounce++] = cw_strdup(lua_tostring(L, idx));
    } else if (lua_istable(L, idx)) {
        lua_Integer len = luaL_len(L, idx);
        for (lua_Integer i = 1; i <= len && s->nannounce < MAX_ANNOUNCE; i++) {
            lua_geti(L, idx, i);
            if (lua_isstring(L, -1)) s->announce[s->nannounce++] = cw_strdup(lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, idx)) {
        luaL_argerror(L, 3, "announce must be a file name or a list of them");
    }
    lua_pop(L, 1);
}

/*
 * call:bridge(target | {targets}, {timeout=, sequential=, ringback=, announce=, record=})
 * -> outcome, number. A target entry may be {to=, timeout=, lines=}: lines = how many
 * calls that destination takes at once (it counts as busy beyond). announce = files
 * played to whoever answers before the caller is connected; record = true (or
 * {ring_list = id}) records the conversation from then on.
 */
static int l_bridge(lua_State *L)
{
    CALL_OR_GONE(L, s);
    may_suspend(L, s);
    int timeout = (int)opt_int(L, 3, "timeout", config_int("sip.ring_timeout"));
    if (timeout <= 0 || timeout > 600) return luaL_argerror(L, 3, "timeout must be 1..600 s");
    s->sequential = opt_bool(L, 3, "sequential");
    const char *ringback = opt_str(L, 3, "ringback", "");
    free(s->ringback_file);
    s->ringback_file = ringback[0] ? cw_strdup(ringback) : NULL;
    s->record_talk = false;
    s->record_ring_list = 0;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "record");
        s->record_talk = lua_toboolean(L, -1);
        if (lua_istable(L, -1)) s->record_ring_list = opt_int(L, lua_gettop(L), "ring_list", 0);
        lua_pop(L, 1);
    }
    announce_set(L, s);
    s->ntargets = s->natt = s->next_att = 0;
    s->winner = NULL;
    /* targets: "x", {"x", "y"}, or entries {to = "x", timeout = s, lines = n} */
    const char *list[MAX_TARGETS];
    int times[MAX_TARGETS], lines[MAX_TARGETS];
    int n = 0;
    if (lua_isstring(L, 2)) {
        list[0] = lua_tostring(L, 2);
        lines[n] = 0;
        times[n++] = timeout;
    } else {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_Integer len = luaL_len(L, 2);
        for (lua_Integer i = 1; i <= len && n < MAX_TARGETS; i++) {
            lua_geti(L, 2, i);
            if (lua_istable(L, -1)) {
                lua_getfield(L, -1, "to");
                lua_getfield(L, -2, "timeout");
                lua_getfield(L, -3, "lines");
                lua_Integer t = luaL_optinteger(L, -2, timeout);
                lua_Integer ln = luaL_optinteger(L, -1, 0);
                if (!lua_isstring(L, -3) || t <= 0 || t > 600 || ln < 0 || ln > 1000)
                    return luaL_error(
                        L, "bridge: target %d needs to = string, timeout 1..600, lines 0..1000",
                        (int)i);
                list[n] = lua_tostring(L, -3);
                lines[n] = (int)ln;
                times[n++] = (int)t;
                lua_pop(L, 3);
            } else if (lua_isstring(L, -1)) {
                list[n] = lua_tostring(L, -1);
                lines[n] = 0;
                times[n++] = timeout;
            } else {
                return luaL_error(L, "bridge: target %d is not a string or {to=, timeout=}",
                                  (int)i);
            }
            lua_pop(L, 1); /* strings stay alive in the argument table */
        }
    }
    const char *why = "no_route";
    free(s->targets);
    s->targets = n ? cw_calloc((size_t)n, sizeof *s->targets) : NULL;
    for (int i = 0; i < n; i++) {
        const char *w;
        int rc = call_target(s->c, list[i], times[i], &s->targets[s->ntargets], &w);
        if (rc == CW_OK)
            s->lines[s->ntargets++] = lines[i];
        else if (!strcmp(w, "restricted"))
            why = w;
    }
    if (s->ntargets == 0) {
        lua_pushstring(L, !strcmp(why, "restricted") ? "rejected" : "no_route");
        lua_pushstring(L, why);
        return 2;
    }
    int started = 0;
    if (s->sequential)
        started = dial_next(s);
    else
        while (dial_next(s))
            started++;
    if (!started) { /* every target failed at once */
        lua_pushstring(L, call_outcome_name(call_outcome_from_cause(worst_cause(s))));
        lua_pushstring(L, "");
        return 2;
    }
    return suspend(L, s, W_BRIDGE);
}

/* ---- queues ---- */

static void queue_done(call *c, enum acd_result r, void *arg)
{
    struct cscript *s = arg;
    if (s->wait != W_QUEUE) return;
    if (!s->waiter) { /* finished inside acd_join(): l_queue returns it */
        s->sync_result = (int)r;
        s->wait = W_NONE;
        return;
    }
    resume_str(s, acd_result_name(r), "");
}

/* call:queue(name | extension | id, {max_wait=, priority=, moh=}) -> result */
static int l_queue(lua_State *L)
{
    CALL_OR_GONE(L, s);
    may_suspend(L, s);
    const char *key = luaL_checkstring(L, 2);
    int64_t qid = acd_queue_find(call_domain(s->c), key);
    if (!qid) {
        lua_pushnil(L);
        lua_pushstring(L, "no_queue");
        return 2;
    }
    struct acd_join_opts o = {
        .max_wait_s = (int)opt_int(L, 3, "max_wait", 0),
        .priority = (int)opt_int(L, 3, "priority", 0),
        .moh = opt_str(L, 3, "moh", NULL),
    };
    if (o.max_wait_s < 0) return luaL_argerror(L, 3, "max_wait must be >= 0");
    s->wait = W_QUEUE; /* acd_join may finish at once (full, empty) */
    s->sync_result = -1;
    int rc = acd_join(s->c, qid, &o, queue_done, s);
    if (rc) {
        s->wait = W_NONE;
        lua_pushnil(L);
        lua_pushstring(L, cw_strerror(rc));
        return 2;
    }
    if (s->sync_result >= 0) {
        lua_pushstring(L, acd_result_name((enum acd_result)s->sync_result));
        lua_pushstring(L, "");
        return 2;
    }
    s->wait = W_NONE;
    return suspend(L, s, W_QUEUE);
}

/* ---- recording ---- */

/*
 * call:record(path, {mono=, max= s, silence= s, wait=}) records the call
 * (stereo: caller left, the other party right). Relative paths are under
 * var_dir (e.g. "recordings/<uuid>.wav"); folders are made as needed. With wait = true it returns
 * when the recording ends (max length, silence, call:record_stop() or hang-up): true, ms, why.
 */
static int l_record(lua_State *L)
{
    CALL_OR_GONE(L, s);
    const char *path = luaL_checkstring(L, 2);
    bool wait = opt_bool(L, 3, "wait");
    if (wait) may_suspend(L, s);
    if (strstr(path, "..")) return luaL_argerror(L, 2, "path may not contain ..");
    char *full =
        path[0] == '/' ? cw_strdup(path) : cw_sprintf("%s/%s", config_str("var_dir"), path);
    cw_mkdir_parents(full);
    s->tag = ++s->next_tag;
    int rc =
        media_record_start(leg_media(call_a_leg(s->c)), full, !opt_bool(L, 3, "mono"),
                           (int)opt_int(L, 3, "max", 0), (int)opt_int(L, 3, "silence", 0), s->tag);
    if (rc == CW_OK && !wait) call_set_recording(s->c, full);
    free(full);
    if (rc) {
        lua_pushnil(L);
        lua_pushstring(L, cw_strerror(rc));
        return 2;
    }
    if (wait) return suspend(L, s, W_RECORD);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_record_stop(lua_State *L)
{
    CALL_OR_GONE(L, s);
    media_record_stop(leg_media(call_a_leg(s->c)));
    lua_pushboolean(L, 1);
    return 1;
}

static int l_on_hangup(lua_State *L)
{
    struct cscript *s = check_call(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (!s) return 0;
    if (s->on_hangup_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->on_hangup_ref);
    lua_pushvalue(L, 2);
    s->on_hangup_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* callapi.flow(name) -> the function an IVR flow file returns */
/*
 * The compiled chunk of a flow file, kept in the VM's registry by path with
 * the file's mtime and size: every call runs the chunk afresh (so a flow's
 * top-level locals are per call, as before), but the file is read and
 * compiled again only when it changed. Pushes the chunk or raises the
 * loader's error.
 */
#define FLOW_CACHE "cw.flow_chunks"

static void flow_chunk(lua_State *L, const char *path)
{
    struct stat sb;
    bool have_stat = stat(path, &sb) == 0;
    if (lua_getfield(L, LUA_REGISTRYINDEX, FLOW_CACHE) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, FLOW_CACHE);
    }
    int cache = lua_gettop(L);
    char stamp[64];
    snprintf(stamp, sizeof stamp, "%lld.%09ld:%lld", have_stat ? (long long)sb.st_mtim.tv_sec : 0,
             have_stat ? (long)sb.st_mtim.tv_nsec : 0L, have_stat ? (long long)sb.st_size : -1);
    if (have_stat && lua_getfield(L, cache, path) == LUA_TTABLE) {
        lua_getfield(L, -1, "stamp");
        bool same = lua_isstring(L, -1) && !strcmp(lua_tostring(L, -1), stamp);
        lua_pop(L, 1);
        if (same) {
            lua_getfield(L, -1, "chunk");
            lua_replace(L, cache);
            lua_settop(L, cache);
            return;
        }
    }
    lua_settop(L, cache);
    if (luaL_loadfilex(L, path, "t") != LUA_OK) lua_error(L);
    if (have_stat) {
        lua_createtable(L, 0, 2);
        lua_pushvalue(L, -2);
        lua_setfield(L, -2, "chunk");
        lua_pushstring(L, stamp);
        lua_setfield(L, -2, "stamp");
        lua_setfield(L, cache, path);
    }
    lua_replace(L, cache);
}

static int l_flow(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return luaL_error(L, "flow name '%s': only a-z 0-9 _ -", name);
    lua_pushfstring(L, "%s/%s.lua", config_str("flows_dir"), name);
    flow_chunk(L, lua_tostring(L, -1));
    lua_call(L, 0, 1);
    if (!lua_isfunction(L, -1)) return luaL_error(L, "flow '%s' must return a function", name);
    return 1;
}

static int l_handover(lua_State *L);

static const luaL_Reg methods[] = {
    {"answer", l_answer},
    {"ring", l_ring},
    {"hangup", l_hangup},
    {"log", l_log},
    {"play", l_play},
    {"tone", l_tone},
    {"moh", l_moh},
    {"stop", l_stop},
    {"sleep", l_sleep},
    {"read_digits", l_read_digits},
    {"flush_digits", l_flush_digits},
    {"send_dtmf", l_send_dtmf},
    {"resolve", l_resolve},
    {"sound_path", l_sound_path},
    {"forwarding", l_forwarding},
    {"transfer", l_transfer},
    {"hold", l_hold},
    {"unhold", l_unhold},
    {"handover", l_handover},
    {"local_time", l_local_time},
    {"agent_state", l_agent_state},
    {"bridge", l_bridge},
    {"queue", l_queue},
    {"record", l_record},
    {"record_stop", l_record_stop},
    {"on_hangup", l_on_hangup},
    {NULL, NULL},
};

/*
 * The module table `callapi`: { methods = the call methods (scripts/cw/call.lua
 * adds the composed ones), flow = load an IVR flow }.
 */
static int open_callapi(lua_State *L)
{
    if (luaL_newmetatable(L, CALL_MT)) {
        lua_pushcfunction(L, l_index);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_newindex);
        lua_setfield(L, -2, "__newindex");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
        luaL_newlib(L, methods);
        luaL_setfuncs(L, call_vm_methods, 0);
        luaL_setfuncs(L, call_pickup_methods, 0);
        luaL_setfuncs(L, call_park_methods, 0);
        luaL_setfuncs(L, call_media_methods, 0);
        luaL_setfuncs(L, call_ringlist_methods, 0);
        lua_setfield(L, -2, "methods");
    }
    lua_createtable(L, 0, 2);
    lua_getfield(L, -2, "methods");
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, l_flow);
    lua_setfield(L, -2, "flow");
    lua_remove(L, -2);
    return 1;
}

/* ---- events from the call ---- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cscript *s = arg;
    if (s->wait == W_SLEEP) {
        resume_ok(s, NULL);
    } else if (s->wait == W_PLAY) { /* play's max: the prompt is cut short */
        s->tag = 0;
        media_stop(leg_media(call_a_leg(s->c)));
        resume_ok(s, "max");
    } else if (s->wait == W_DIGITS) {
        resume_str(s, s->digits.data ? s->digits.data : "", "timeout");
    }
}

static void on_media(call *c, call_leg *l, const struct media_event *ev, void *arg)
{
    struct cscript *s = arg;
    if (l != call_a_leg(c)) {
        /* the party that answered a bridge has heard its announcement: connect */
        if (s->announcing && l == s->winner && ev->type == MEDIA_EV_PLAY_DONE &&
            ev->tag == s->announce_tag) {
            if (ev->reason < 0) call_log(c, "announce-failed", "a prompt could not be played");
            connect_winner(s);
        }
        return;
    }
    if (s->wait == W_MEDIA && ev->type == s->await_type && ev->tag == s->tag) {
        script_co *co;
        lua_State *T = resume_begin(s, &co);
        if (!T) return;
        lua_pushboolean(T, ev->reason == 0);
        lua_createtable(T, 0, 5);
        lua_pushinteger(T, ev->reason), lua_setfield(T, -2, "reason");
        lua_pushinteger(T, (lua_Integer)ev->ms), lua_setfield(T, -2, "ms");
        lua_pushinteger(T, ev->pages), lua_setfield(T, -2, "pages");
        lua_pushinteger(T, ev->resolution), lua_setfield(T, -2, "resolution");
        lua_pushboolean(T, s->hungup), lua_setfield(T, -2, "hungup");
        resume_end(co, 2);
        return;
    }
    if (ev->type == MEDIA_EV_RECORD_DONE) {
        if (s->wait != W_RECORD || ev->tag != s->tag) return;
        static const char *const why[] = {"stopped", "max", "silence"};
        script_co *co;
        lua_State *T = resume_begin(s, &co);
        if (!T) return;
        if (ev->reason < 0) {
            lua_pushnil(T);
            lua_pushstring(T, "error");
        } else {
            lua_pushboolean(T, 1);
            lua_pushinteger(T, (lua_Integer)ev->ms);
            lua_pushstring(T, s->hungup ? "hangup" : why[ev->reason <= 2 ? ev->reason : 0]);
        }
        resume_end(co, ev->reason < 0 ? 2 : 3);
        return;
    }
    if (s->wait == W_QUEUE) {
        acd_caller_media_event(c, ev);
        return;
    }
    if (s->wait == W_FALLBACK) {
        if (ev->type == MEDIA_EV_PLAY_DONE) call_hangup(c, SIP_CAUSE_FAILED);
        return;
    }
    if (ev->type == MEDIA_EV_PLAY_DONE) {
        if (s->wait == W_PLAY && ev->tag == s->tag)
            ev->reason < 0 ? resume_fail(s, "error") : resume_ok(s, NULL);
        return;
    }
    if (ev->type != MEDIA_EV_DTMF) return;
    if (s->wait == W_RECORD && ev->digit == '#') { /* "hang up or press pound" */
        media_record_stop(leg_media(l));
        return;
    }
    if (s->nahead < (int)sizeof s->typeahead) s->typeahead[s->nahead++] = ev->digit;
    if (s->wait == W_PLAY && s->interrupt) {
        s->tag = 0; /* the PLAY_DONE of the stopped prompt is not ours any more */
        media_stop(leg_media(l));
        resume_ok(s, "digit");
    } else if (s->wait == W_DIGITS) {
        const char *why;
        if (take_ahead(s, &why))
            resume_str(s, s->digits.data ? s->digits.data : "", why);
        else
            arm_timer(s, s->interdigit_ms);
    }
}

/* Run the script's on_hangup hook once, in the VM the script runs in. */
static void run_on_hangup(struct cscript *s)
{
    if (s->on_hangup_ref == LUA_NOREF) return;
    script_vm *vm = s->co ? script_co_vm(s->co) : NULL;
    if (!vm) return;
    lua_State *L = script_vm_state(vm);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_hangup_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, s->on_hangup_ref);
    s->on_hangup_ref = LUA_NOREF;
    lua_pushstring(L, call_uuid(s->c));
    script_co *co = script_co_start(vm, 1, NULL, NULL);
    if (co) script_co_unref(co);
}

static void on_a_ended(call *c, enum sip_cause cause, void *arg)
{
    struct cscript *s = arg;
    s->hungup = true;
    run_on_hangup(s);
    switch (s->wait) {
    case W_QUEUE:
        acd_caller_gone(c);
        break;
    case W_BRIDGE:
        break; /* the B legs' ends resume it */
    case W_RECORD:
        break; /* the finished file's RECORD_DONE resumes it */
    case W_MEDIA:
        /* events that report a result at the end (fax) still come; others cannot */
        if (s->await_type != MEDIA_EV_FAX_DONE && s->await_type != MEDIA_EV_RECORD_DONE)
            resume_fail(s, "hangup");
        break;
    case W_NONE:
        break;
    default:
        resume_fail(s, "hangup");
        break;
    }
}

static void fallback_a_ended(call *c, enum sip_cause cause, void *arg);

static void fallback(struct cscript *s)
{
    call *c = s->c;
    call_leg *a = call_a_leg(c);
    if (!a || leg_state(a) == LEG_ENDED) return;
    if (leg_state(a) != LEG_UP) {
        call_hangup(c, SIP_CAUSE_UNAVAILABLE);
        return;
    }
    const char *lang = "en";
    char file[64];
    store_res *r;
    if (store_query(store_main(), &r, "SELECT language FROM domains WHERE id = ?",
                    SA_INT(call_domain(c)), SA_END) >= 0 &&
        store_next(r) && !strcmp(store_str(r, 0), "ru"))
        lang = "ru";
    store_res_free(r);
    snprintf(file, sizeof file, "%s/call_cannot_be_completed", lang);
    const char *files[] = {file};
    s->wait = W_FALLBACK;
    call_set_driver(c, &(struct call_driver){on_media, fallback_a_ended, s});
    if (media_play(leg_media(a), files, 1, false, ++s->next_tag)) call_hangup(c, SIP_CAUSE_FAILED);
}

static void on_script_done(script_co *co, enum script_status st, const char *err, void *arg)
{
    struct cscript *s = arg;
    if (!s->co) s->co = co; /* ended inside script_co_start() */
    run_on_hangup(s);       /* the call ends with its script */
    s->script_done = true;
    call *c = s->c;
    bool alive = call_a_leg(c) && leg_state(call_a_leg(c)) != LEG_ENDED;
    if (s->handed_over) {
        /* the call is another script's now */
    } else if (st != SCRIPT_DONE) {
        log_warn("script", "%s: routing script ended: %s", call_uuid(c), err ? err : "error");
        call_log(c, "script-error", "%s", err ? err : "error");
        if (s->fallback && alive) {
            char *to = s->fallback;
            s->fallback = NULL;
            s->handed_over = true;
            call_lua_fallback(c, to);
            free(to);
        } else {
            fallback(s);
        }
    } else if (alive && !call_busy_elsewhere(c)) {
        call_hangup(c, SIP_CAUSE_NORMAL);
    }
    if (!s->starting) cscript_release(s);
}

static void cscript_release(struct cscript *s)
{
    if (s->wait == W_FALLBACK && call_a_leg(s->c) && leg_state(call_a_leg(s->c)) != LEG_ENDED)
        return; /* released when the fallback prompt ends the call */
    if (s->ud) s->ud->s = NULL;
    if (s->timer) event_free(s->timer);
    announce_clear(s);
    free(s->targets);
    free(s->ringback_file);
    free(s->fallback);
    cw_buf_free(&s->digits);
    if (s->co) script_co_unref(s->co);
    call *c = s->c;
    call_clear_driver(c, s);
    free(s);
    call_unref(c);
}

static void fallback_a_ended(call *c, enum sip_cause cause, void *arg)
{
    cscript_release(arg);
}

/*
 * Start a script that drives the call: push puts the function (and its
 * extra arguments) on vm's state; the call object goes first among them. The call's
 * media and hang-up events go to the new script from now on.
 */
/* Returns false when there was nothing to run (push left no function). */
static bool drive(call *c, script_vm *vm, void (*push)(lua_State *L, void *arg), void *arg,
                  const char *fallback_to)
{
    struct cscript *s = cw_calloc(1, sizeof *s);
    s->c = c;
    s->on_hangup_ref = LUA_NOREF;
    s->dialing = -1;
    if (fallback_to) s->fallback = cw_strdup(fallback_to);
    cw_buf_init(&s->digits);
    call_ref(c);
    call_set_driver(c, &(struct call_driver){on_media, on_a_ended, s});
    lua_State *L = script_vm_state(vm);
    int base = lua_gettop(L);
    push(L, arg);
    if (lua_gettop(L) == base || !lua_isfunction(L, base + 1)) {
        lua_settop(L, base);
        s->script_done = true;
        cscript_release(s);
        return false;
    }
    int nargs = lua_gettop(L) - base - 1;
    push_call(L, s);
    lua_insert(L, base + 2); /* the call is the first argument */
    s->starting = true;
    s->co = script_co_start(vm, nargs + 1, on_script_done, s);
    s->starting = false;
    if (s->script_done) cscript_release(s);
    return true;
}

/* dialplan.<name>, or nothing pushed when the system scripts lack it. */
static void push_dialplan_fn(lua_State *L, const char *name)
{
    lua_getglobal(L, "dialplan");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    if (!lua_isfunction(L, -1)) lua_pop(L, 1);
}

static void push_route(lua_State *L, void *arg)
{
    push_dialplan_fn(L, "route");
}

void call_lua_route(call *c)
{
    if (!drive(c, script_system(), push_route, NULL, NULL) &&
        leg_state(call_a_leg(c)) != LEG_ENDED && !call_busy_elsewhere(c)) {
        log_error("call", "%s: the system scripts have no dialplan.route", call_uuid(c));
        call_hangup(c, SIP_CAUSE_UNAVAILABLE);
    }
}

static void push_fallback(lua_State *L, void *arg)
{
    push_dialplan_fn(L, "fallback");
    if (lua_gettop(L) && lua_isfunction(L, -1)) lua_pushstring(L, arg);
}

void call_lua_fallback(call *c, const char *to)
{
    call_log(c, "fallback", "%s", to);
    char *copy = cw_strdup(to);
    if (!drive(c, script_system(), push_fallback, copy, NULL) &&
        leg_state(call_a_leg(c)) != LEG_ENDED && !call_busy_elsewhere(c))
        call_hangup(c, SIP_CAUSE_UNAVAILABLE);
    free(copy);
}

struct tenant_chunk {
    script_vm *vm;
    const char *name, *code;
    char err[256];
};

static void push_tenant_chunk(lua_State *L, void *arg)
{
    struct tenant_chunk *t = arg;
    /* the composed call methods (collect, say) in the tenant's VM too */
    lua_getglobal(L, "require");
    lua_pushstring(L, "cw.call");
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        log_warn("script", "tenant VM: cw.call: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    script_compile(t->vm, t->name, t->code, t->err, sizeof t->err);
}

/*
 * call:handover{code =, name =, fallback =}: a tenant's own script (sandboxed,
 * in the tenant's VM, with its budgets) takes the call; the chunk gets the
 * call as `...`. If it fails (error, budget, memory cap) the call goes to
 * fallback through dialplan.fallback(). The calling script must not touch
 * the call again: its methods answer nil, "hangup" from here on.
 */
static int l_handover(lua_State *L)
{
    CALL_OR_GONE(L, s);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct tenant_chunk t = {0};
    t.code = opt_str(L, 2, "code", NULL);
    t.name = opt_str(L, 2, "name", "tenant script");
    const char *fb = opt_str(L, 2, "fallback", NULL);
    if (!t.code) return luaL_argerror(L, 2, "code is required");
    t.vm = script_tenant(call_domain(s->c));
    if (!t.vm) {
        lua_pushnil(L);
        lua_pushstring(L, "no_vm");
        return 2;
    }
    s->handed_over = true;
    call *c = s->c;
    call_log(c, "handover", "%s", t.name);
    if (!drive(c, t.vm, push_tenant_chunk, &t, fb) && t.err[0]) {
        log_warn("script", "%s: %s", call_uuid(c), t.err);
        call_log(c, "script-error", "%s", t.err);
        if (fb)
            call_lua_fallback(c, fb);
        else
            call_hangup(c, SIP_CAUSE_UNAVAILABLE);
    }
    lua_pushboolean(L, 1);
    return 1;
}

int call_say_words(const char *lang, const char *kind, int64_t value, char **files, int max)
{
    script_vm *vm = script_system();
    if (!vm || max <= 0) return 0;
    lua_State *L = script_vm_state(vm);
    int top = lua_gettop(L);
    int n = 0;
    lua_getglobal(L, "require");
    lua_pushstring(L, "cw.say");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
        lua_getfield(L, -1, "words");
        lua_pushstring(L, lang);
        lua_pushstring(L, kind);
        lua_pushinteger(L, (lua_Integer)value);
        if (lua_pcall(L, 3, 1, 0) == LUA_OK && lua_istable(L, -1)) {
            lua_Integer len = luaL_len(L, -1);
            for (lua_Integer i = 1; i <= len && n < max; i++) {
                lua_geti(L, -1, i);
                if (lua_isstring(L, -1)) files[n++] = cw_strdup(lua_tostring(L, -1));
                lua_pop(L, 1);
            }
        } else {
            log_warn("call", "say %s %s %lld: %s", lang, kind, (long long)value,
                     lua_isstring(L, -1) ? lua_tostring(L, -1) : "no words");
        }
    }
    lua_settop(L, top);
    return n;
}

void call_lua_init(void)
{
    script_add_module("callapi", open_callapi);
}
