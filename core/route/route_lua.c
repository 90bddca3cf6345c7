/*
 * route_lua.c - the `cwroute` module of the system VM: an external number's
 * routing data for one call, the objects its targets name, and tenant
 * decisions (a rule's sandboxed Lua, run in the tenant's VM).
 *
 * Only the system VM gets the functions (tenant VMs see an empty table):
 * they read any domain. Decisions run with a time limit; whatever a tenant
 * script returns is checked like a saved rule before the call follows it.
 * Core thread only.
 */
#include "route/route.h"
#include "base/cw.h"
#include "base/tz.h"
#include "config/config.h"
#include "call/call.h"
#include "domain/domain.h"
#include "events/events.h"
#include "log/log.h"
#include "loop/loop.h"
#include "lua/script.h"
#include "mail/mail.h"
#include "store/store.h"

#include <event2/event.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

void route_number_norm(const char *in, char *out, size_t outlen)
{
    char d[64];
    size_t n = 0;
    for (const char *p = in ? in : ""; *p && n + 1 < sizeof d; p++)
        if (*p >= '0' && *p <= '9') d[n++] = *p;
    d[n] = '\0';
    const char *s = d;
    if (n == 11 && (d[0] == '7' || d[0] == '8')) s = d + 1;
    cw_strlcpy(out, s, outlen);
}

/* Both forms a prefix may match: all digits, and without the country code. */
static void number_forms(const char *in, char *digits, size_t dlen, char *national, size_t nlen)
{
    size_t n = 0;
    for (const char *p = in ? in : ""; *p && n + 1 < dlen; p++)
        if (*p >= '0' && *p <= '9') digits[n++] = *p;
    digits[n] = '\0';
    route_number_norm(digits, national, nlen);
}

/* ------------------------------------------------------- reading the data */

static json_t *parse(const char *text)
{
    return text ? json_loads(text, 0, NULL) : NULL;
}

/* Dates of a day group's list as a set {date: name}. */
static json_t *date_set(const char *text)
{
    json_t *list = parse(text), *set = json_object();
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        const char *date = json_string_value(json_object_get(o, "date"));
        const char *name = json_string_value(json_object_get(o, "name"));
        if (date) json_object_set_new(set, date, json_string(name ? name : ""));
    }
    json_decref(list);
    return set;
}

static int hhmm(const char *s, bool end)
{
    if (!s || strlen(s) != 5) return 0;
    int m = ((s[0] - '0') * 10 + (s[1] - '0')) * 60 + (s[3] - '0') * 10 + (s[4] - '0');
    if (end && (m == 0 || m == 23 * 60 + 59)) m = 24 * 60;
    return m;
}

/*
 * Periods as the interpreter wants them: {mask (bit d = weekday d), from,
 * to (minutes, to exclusive), holidays = {date: name}, extra = {date:
 * name}}, day groups expanded.
 */
static json_t *periods_resolved(int64_t domain, json_t *periods)
{
    json_t *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(periods, i, p)
    {
        int mask = 0;
        json_t *holidays = NULL, *extra = NULL;
        json_t *days = json_object_get(p, "days");
        json_t *dg = json_object_get(p, "day_group_id");
        if (dg) {
            store_res *r;
            if (store_query(store_main(), &r,
                            "SELECT days, holidays, extra_days FROM day_groups WHERE id = ? AND "
                            "domain_id = ?",
                            SA_INT(json_integer_value(dg)), SA_INT(domain), SA_END) >= 0 &&
                store_next(r)) {
                days = parse(store_str(r, 0));
                holidays = date_set(store_str(r, 1));
                extra = date_set(store_str(r, 2));
            }
            store_res_free(r);
        } else {
            json_incref(days);
        }
        size_t k;
        json_t *d;
        json_array_foreach(days, k, d) mask |= 1 << (int)json_integer_value(d);
        json_decref(days);
        json_t *o = json_pack("{s:i,s:i,s:i}", "mask", mask, "from",
                              hhmm(json_string_value(json_object_get(p, "from")), false), "to",
                              hhmm(json_string_value(json_object_get(p, "to")), true));
        json_object_set_new(o, "holidays", holidays ? holidays : json_object());
        json_object_set_new(o, "extra", extra ? extra : json_object());
        json_array_append_new(out, o);
    }
    return out;
}

static bool in_classifier(int64_t classifier, const char *norm)
{
    int64_t one;
    return store_query_int(store_main(), &one,
                           "SELECT 1 FROM classifier_numbers WHERE classifier_id = ? AND norm = ?",
                           SA_INT(classifier), SA_STR(norm), SA_END) == CW_OK;
}

/*
 * An external number's routing as one JSON object (see scripts/cw/routing.lua),
 * NULL when dialled is not a number of the domain.
 */
static json_t *number_config(int64_t domain, const char *dialled, const char *caller)
{
    store *st = store_main();
    store_res *r;
    const char *num = dialled[0] == '+' ? dialled + 1 : dialled;
    if (store_query(st, &r,
                    "SELECT id, number, target, filter_mode, filter_list FROM external_numbers "
                    "WHERE domain_id = ? AND number = ?",
                    SA_INT(domain), SA_STR(num), SA_END) < 0)
        return NULL;
    if (!store_next(r)) {
        store_res_free(r);
        return NULL;
    }
    int64_t id = store_int(r, 0);
    char digits[64], national[64];
    number_forms(caller, digits, sizeof digits, national, sizeof national);
    json_t *cfg = json_pack("{s:I,s:s,s:{s:s,s:s}}", "id", (json_int_t)id, "number",
                            store_str(r, 1), "caller", "digits", digits, "national", national);
    if (store_str(r, 2) && *store_str(r, 2))
        json_object_set_new(cfg, "fallback", json_string(store_str(r, 2)));
    json_t *entries = parse(store_str(r, 4));
    json_object_set_new(cfg, "filter",
                        json_pack("{s:s,s:o}", "mode", store_str(r, 3), "entries",
                                  entries ? entries : json_array()));
    store_res_free(r);

    json_t *rules = json_array();
    if (store_query(st, &r,
                    "SELECT r.id, r.priority, r.name, r.schedule, r.schedule_match, r.prefixes, "
                    "r.classifier_id, r.target, s.periods FROM routing_rules r LEFT JOIN schedules "
                    "s ON s.id = r.schedule_id WHERE r.number_id = ? AND r.enabled = 1 "
                    "ORDER BY r.priority, r.id",
                    SA_INT(id), SA_END) >= 0) {
        while (store_next(r)) {
            json_t *target = parse(store_str(r, 7));
            if (!target) continue;
            json_t *rule =
                json_pack("{s:I,s:I,s:s,s:o}", "id", (json_int_t)store_int(r, 0), "priority",
                          (json_int_t)store_int(r, 1), "name", store_str(r, 2), "target", target);
            json_t *periods = NULL;
            if (store_str(r, 3)) {
                json_t *sch = parse(store_str(r, 3));
                periods = json_incref(json_object_get(sch, "periods"));
                json_decref(sch);
            } else if (store_str(r, 8)) {
                periods = parse(store_str(r, 8));
            }
            if (periods) {
                json_object_set_new(rule, "periods", periods_resolved(domain, periods));
                json_object_set_new(rule, "outside",
                                    json_boolean(!strcmp(store_str(r, 4), "outside")));
                json_decref(periods);
            }
            json_t *pre = parse(store_str(r, 5));
            if (json_is_array(pre))
                json_object_set_new(rule, "prefixes", pre);
            else
                json_decref(pre);
            if (!store_isnull(r, 6)) {
                json_object_set_new(rule, "classifier", json_integer(store_int(r, 6)));
                json_object_set_new(rule, "member",
                                    json_boolean(in_classifier(store_int(r, 6), national)));
            }
            json_array_append_new(rules, rule);
        }
        store_res_free(r);
    }
    json_object_set_new(cfg, "rules", rules);
    return cfg;
}

static json_t *members_of(int64_t group)
{
    json_t *a = json_array();
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT user_id FROM call_group_members WHERE group_id = ? ORDER BY user_id",
                    SA_INT(group), SA_END) >= 0) {
        while (store_next(r))
            json_array_append_new(a, json_integer(store_int(r, 0)));
        store_res_free(r);
    }
    return a;
}

/* What a target names: user, group, ivr (with its flow and the domain's IVR settings), sound. */
static json_t *lookup(int64_t domain, const char *kind, int64_t id)
{
    store *st = store_main();
    store_res *r;
    json_t *o = NULL;
    if (!strcmp(kind, "user")) {
        if (store_query(st, &r,
                        "SELECT extension, login, display_name, status FROM users WHERE id = ? "
                        "AND domain_id = ?",
                        SA_INT(id), SA_INT(domain), SA_END) >= 0 &&
            store_next(r) && store_str(r, 0))
            o = json_pack("{s:I,s:s,s:s,s:s,s:b}", "id", (json_int_t)id, "extension",
                          store_str(r, 0), "login", store_str(r, 1), "name", store_str(r, 2),
                          "active", !strcmp(store_str(r, 3), "active"));
    } else if (!strcmp(kind, "group")) {
        if (store_query(st, &r,
                        "SELECT extension, name, voicemail_enabled FROM call_groups WHERE id = ? "
                        "AND domain_id = ?",
                        SA_INT(id), SA_INT(domain), SA_END) >= 0 &&
            store_next(r))
            o = json_pack("{s:I,s:s,s:s,s:b}", "id", (json_int_t)id, "extension", store_str(r, 0),
                          "name", store_str(r, 1), "voicemail", store_int(r, 2) != 0);
    } else if (!strcmp(kind, "ivr")) {
        if (store_query(st, &r,
                        "SELECT f.name, f.extension, f.script, f.flow, d.ivr_timeout, "
                        "d.ivr_max_errors, d.language FROM ivr_flows f JOIN domains d ON d.id = "
                        "f.domain_id WHERE f.id = ? AND f.domain_id = ?",
                        SA_INT(id), SA_INT(domain), SA_END) >= 0 &&
            store_next(r)) {
            json_t *flow = parse(store_str(r, 3));
            o = json_pack("{s:s,s:I,s:s,s:o,s:{s:I,s:I,s:s}}", "kind", "ivr", "id", (json_int_t)id,
                          "name", store_str(r, 0), "flow",
                          json_is_object(flow) ? flow : json_object(), "settings", "timeout",
                          (json_int_t)store_int(r, 4), "max_errors", (json_int_t)store_int(r, 5),
                          "language", store_str(r, 6));
            if (!json_is_object(flow)) json_decref(flow);
            if (store_str(r, 1)) json_object_set_new(o, "extension", json_string(store_str(r, 1)));
            if (store_str(r, 2) && *store_str(r, 2))
                json_object_set_new(o, "script", json_string(store_str(r, 2)));
        }
    } else if (!strcmp(kind, "sound")) {
        if (store_query(st, &r, "SELECT path FROM sound_files WHERE id = ? AND domain_id = ?",
                        SA_INT(id), SA_INT(domain), SA_END) >= 0 &&
            store_next(r))
            o = json_pack("{s:s}", "path", store_str(r, 0));
    } else {
        return NULL;
    }
    store_res_free(r);
    return o;
}

/* ------------------------------------------------------------- Lua side */

static void push_or_nil(lua_State *L, json_t *j)
{
    if (j)
        script_push_json(L, j);
    else
        lua_pushnil(L);
    json_decref(j);
}

/* cwroute.number(domain_id, dialled, caller) -> routing data or nil */
static int l_number(lua_State *L)
{
    int64_t domain = luaL_checkinteger(L, 1);
    const char *dialled = luaL_checkstring(L, 2);
    const char *caller = luaL_optstring(L, 3, "");
    push_or_nil(L, number_config(domain, dialled, caller));
    return 1;
}

/* cwroute.lookup(domain_id, kind, id) -> {...} or nil */
static int l_lookup(lua_State *L)
{
    int64_t domain = luaL_checkinteger(L, 1);
    const char *kind = luaL_checkstring(L, 2);
    int64_t id = luaL_checkinteger(L, 3);
    push_or_nil(L, lookup(domain, kind, id));
    return 1;
}

/* ---- group voicemail boxes (user boxes are scripts/cw/voicemail.lua's) ---- */

static void group_mail_done(int rc, const char *error, void *arg)
{
    if (rc)
        log_warn("voicemail", "group message notice not sent: %s", error ? error : cw_strerror(rc));
}

/* The group's address learns of the message, with the recording attached. */
static void group_mail(int64_t group, int64_t id, const char *caller, const char *name, int64_t ms,
                       const char *path)
{
    store_res *r;
    if (!mail_enabled() ||
        store_query(store_main(), &r,
                    "SELECT g.email, g.name, d.timezone, d.name FROM call_groups g JOIN domains d "
                    "ON d.id = g.domain_id WHERE g.id = ?",
                    SA_INT(group), SA_END) < 0)
        return;
    if (store_next(r) && store_str(r, 0) && *store_str(r, 0)) {
        struct cw_localtime lt;
        cw_tz_local(store_str(r, 2), cw_wall_time(), &lt);
        char *subject = cw_sprintf("Voicemail for %s from %s", store_str(r, 1), caller);
        char *text = cw_sprintf("A caller left a message for the group %s.\n\n"
                                "From: %s %s\nReceived: %04d-%02d-%02d %02d:%02d (%s)\n"
                                "Length: %lld s\n\n"
                                "Listen online: %s/api/v1/domains/%s/voicemail/%lld/audio\n",
                                store_str(r, 1), caller, name, lt.year, lt.month, lt.day, lt.hour,
                                lt.min, store_str(r, 2), (long long)(ms / 1000),
                                config_str("public_url"), store_str(r, 3), (long long)id);
        struct mail_attachment att = {
            .filename = "voicemail.wav", .content_type = "audio/wav", .path = path};
        if (mail_send(store_str(r, 0), subject, text, &att, group_mail_done, NULL))
            log_warn("voicemail", "group %lld: notice of message %lld not queued", (long long)group,
                     (long long)id);
        free(subject);
        free(text);
    }
    store_res_free(r);
}

/*
 * cwroute.group_message(call_uuid, group_id, path, ms) -> message id | nil, why:
 * a message just recorded (path as given to call:record) into a group's box.
 */
static int l_group_message(lua_State *L)
{
    call *c = call_by_uuid(luaL_checkstring(L, 1));
    int64_t group = luaL_checkinteger(L, 2);
    const char *path = luaL_checkstring(L, 3);
    int64_t ms = luaL_checkinteger(L, 4);
    int64_t one;
    if (!c || store_query_int(store_main(), &one,
                              "SELECT 1 FROM call_groups WHERE id = ? AND domain_id = ? AND "
                              "voicemail_enabled = 1",
                              SA_INT(group), SA_INT(call_domain(c)), SA_END) != CW_OK) {
        lua_pushnil(L);
        lua_pushstring(L, "no_box");
        return 2;
    }
    if (strstr(path, "..")) return luaL_argerror(L, 3, "path may not contain ..");
    char *full =
        path[0] == '/' ? cw_strdup(path) : cw_sprintf("%s/%s", config_str("var_dir"), path);
    json_t *info = call_to_json(c);
    const char *caller = json_string_value(json_object_get(info, "from"));
    const char *name = json_string_value(json_object_get(info, "from_name"));
    caller = caller ? caller : "";
    name = name ? name : "";
    int64_t id = 0;
    int rc =
        store_query_int(store_main(), &id,
                        "INSERT INTO voicemail_messages(domain_id, group_id, call_uuid, "
                        "caller, caller_name, duration_ms, path, created_at) VALUES "
                        "(?,?,?,?,?,?,?,?) RETURNING id",
                        SA_INT(call_domain(c)), SA_INT(group), SA_STR(call_uuid(c)), SA_STR(caller),
                        SA_STR(name), SA_INT(ms), SA_STR(full), SA_INT(cw_wall_time()), SA_END);
    if (rc == CW_OK) {
        call_log(c, "voicemail", "message %lld for group %lld, %lld ms", (long long)id,
                 (long long)group, (long long)ms);
        events_emit("voicemail.new", call_domain(c),
                    json_pack("{s:I,s:I,s:s,s:s,s:I,s:o}", "id", (json_int_t)id, "group_id",
                              (json_int_t)group, "caller", caller, "caller_name", name,
                              "duration_ms", (json_int_t)ms, "user_ids", members_of(group)));
        group_mail(group, id, caller, name, ms, full);
        lua_pushinteger(L, id);
    } else {
        log_error("voicemail", "message for group %lld not stored: %s", (long long)group,
                  store_errmsg(store_main()));
        lua_pushnil(L);
        lua_pushstring(L, "store");
    }
    json_decref(info);
    free(full);
    return rc == CW_OK ? 1 : 2;
}

/* A tenant's decision in progress. Freed once both sides are done with it. */
struct decision {
    script_co *waiter; /* the call's routing coroutine (a reference), NULL once gone */
    script_co *tenant; /* the tenant's coroutine (a reference) */
    struct event *timer;
    int64_t domain;
    bool starting, finished, timed_out;
    json_t *target; /* the checked answer, or NULL */
    char why[512];
};

static void decision_free(struct decision *d)
{
    if (d->timer) event_free(d->timer);
    json_decref(d->target);
    free(d);
}

static void push_answer(lua_State *T, struct decision *d)
{
    if (d->target) {
        script_push_json(T, d->target);
        lua_pushstring(T, "ok");
    } else {
        lua_pushnil(T);
        lua_pushstring(T, d->why);
    }
}

/* On the loop, after the tenant coroutine has ended: resume the call's script. */
static void deliver(evutil_socket_t fd, short what, void *arg)
{
    struct decision *d = arg;
    script_co *w = d->waiter;
    d->waiter = NULL;
    if (w) {
        lua_State *T = script_co_thread(w);
        if (T) {
            push_answer(T, d);
            script_co_resume(w, 2);
        }
        script_co_unref(w);
    }
    decision_free(d);
}

static void tenant_done(script_co *co, enum script_status st, const char *err, void *arg)
{
    struct decision *d = arg;
    d->finished = true;
    if (d->timed_out) {
        snprintf(d->why, sizeof d->why, "timeout");
    } else if (st != SCRIPT_DONE) {
        snprintf(d->why, sizeof d->why, "%s: %s", script_status_name(st), err ? err : "");
    } else {
        lua_State *T = script_co_thread(co);
        if (lua_gettop(T) < 1 || lua_isnil(T, 1)) {
            snprintf(d->why, sizeof d->why, "none");
        } else if (!lua_istable(T, 1)) {
            snprintf(d->why, sizeof d->why, "invalid: the script must return a target or nil");
        } else {
            char err2[200], where[160], msg[400];
            json_t *t = script_to_json(T, 1, "target", err2, sizeof err2);
            if (!t)
                snprintf(d->why, sizeof d->why, "invalid: %s", err2);
            else if (!domain_target_valid(d->domain, t, "target", where, sizeof where, msg,
                                          sizeof msg))
                snprintf(d->why, sizeof d->why, "invalid: %s", msg);
            else
                d->target = json_incref(t);
            json_decref(t);
        }
    }
    if (d->tenant) {
        script_co_unref(d->tenant);
        d->tenant = NULL;
    }
    if (d->starting) return; /* l_decide answers at once */
    if (d->timer) event_del(d->timer);
    struct timeval now = {0, 0};
    event_base_once(loop_base(), -1, EV_TIMEOUT, deliver, d, &now);
}

static void decision_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct decision *d = arg;
    d->timed_out = true;
    if (d->tenant) script_co_kill(d->tenant);
}

/* The call's coroutine ended while waiting (hang-up, reload): stop the tenant's. */
static void waiter_gone(void *arg)
{
    struct decision *d = arg;
    if (d->waiter) {
        script_co_unref(d->waiter);
        d->waiter = NULL;
    }
    if (d->tenant) script_co_kill(d->tenant); /* its done schedules deliver(), which frees */
}

/*
 * cwroute.decide(domain_id, code, info, timeout_ms) -> target, "ok" | nil, why
 * why: "none" (the script returned nil), "timeout", "invalid: ...",
 * "error: ...", "budget: ...", "memory: ...". Waits for the tenant's script.
 */
static int l_decide(lua_State *L)
{
    int64_t domain = luaL_checkinteger(L, 1);
    const char *code = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer timeout = luaL_optinteger(L, 4, config_int("route.script_time_ms"));
    if (timeout < 10 || timeout > 60000) return luaL_argerror(L, 4, "10..60000 ms");
    script_co *self = script_co_check(L);
    char err[300];
    json_t *info = script_to_json(L, 3, "info", err, sizeof err);
    if (!info) return luaL_error(L, "%s", err);
    script_vm *vm = script_tenant(domain);
    if (!vm || script_compile(vm, "routing rule", code, err, sizeof err)) {
        json_decref(info);
        lua_pushnil(L);
        lua_pushfstring(L, "error: %s", vm ? err : "no script VM for the domain");
        return 2;
    }
    script_push_json(script_vm_state(vm), info);
    json_decref(info);
    struct decision *d = cw_calloc(1, sizeof *d);
    d->domain = domain;
    d->starting = true;
    script_co *co = script_co_start(vm, 1, tenant_done, d);
    d->starting = false;
    if (d->finished) {
        if (co) script_co_unref(co);
        push_answer(L, d);
        decision_free(d);
        return 2;
    }
    d->tenant = co;
    d->waiter = self;
    script_co_ref(self);
    d->timer = evtimer_new(loop_base(), decision_timeout, d);
    struct timeval tv = {timeout / 1000, (timeout % 1000) * 1000};
    evtimer_add(d->timer, &tv);
    script_co_on_cancel(self, waiter_gone, d);
    return script_co_suspend(L);
}

/* cwroute.local_time(domain_id, epoch) -> the same table as call:local_time() */
static void push_local_time(lua_State *L, int64_t domain, int64_t at)
{
    char tz[64] = "UTC";
    store_res *r;
    if (store_query(store_main(), &r, "SELECT timezone FROM domains WHERE id = ?", SA_INT(domain),
                    SA_END) >= 0 &&
        store_next(r))
        cw_strlcpy(tz, store_str(r, 0), sizeof tz);
    store_res_free(r);
    struct cw_localtime lt;
    cw_tz_local(tz, at, &lt);
    lua_createtable(L, 0, 10);
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
}

static int open_cwroute(lua_State *L)
{
    lua_newtable(L);
    if (script_vm_sandboxed(script_vm_of(L))) return 1; /* tenants: nothing */
    static const luaL_Reg fns[] = {
        {"number", l_number}, {"lookup", l_lookup},
        {"decide", l_decide}, {"group_message", l_group_message},
        {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
    return 1;
}

void route_init(void)
{
    script_add_module("cwroute", open_cwroute);
}

/* ------------------------------------------------------------- explain */

json_t *route_explain(int64_t domain, const char *number, const char *caller, int64_t at, char *err,
                      size_t errlen)
{
    json_t *cfg = number_config(domain, number, caller);
    if (!cfg) {
        snprintf(err, errlen, "no such number");
        return NULL;
    }
    script_vm *vm = script_system();
    if (!vm) {
        json_decref(cfg);
        snprintf(err, errlen, "no system VM");
        return NULL;
    }
    lua_State *L = script_vm_state(vm);
    int top = lua_gettop(L);
    json_t *out = NULL;
    lua_getglobal(L, "require");
    lua_pushstring(L, "cw.routing");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
        lua_getfield(L, -1, "explain");
        script_push_json(L, cfg);
        push_local_time(L, domain, at);
        if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_istable(L, -1))
            out = script_to_json(L, -1, "result", err, errlen);
        else
            snprintf(err, errlen, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "no result");
    } else {
        snprintf(err, errlen, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "cw.routing");
    }
    lua_settop(L, top);
    json_decref(cfg);
    return out;
}
