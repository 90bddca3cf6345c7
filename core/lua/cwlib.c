/*
 * cwlib.c - the `cw` module every VM gets: log, events, timers, HTTP, JSON
 * and read access to the domain model.
 *
 * Timers and subscriptions are resources of their VM: cancelled when the
 * VM is retired. Waiting calls (cw.sleep, cw.http) suspend the calling
 * coroutine and hold a reference to it until they resume it. Tenant VMs see
 * only their own domain's events and rows, emit only "script." and
 * "custom." events, and have limits on timers, subscriptions and requests.
 */
#include "lua/script_int.h"
#include "base/cw.h"
#include "config/config.h"
#include "events/events.h"
#include "loop/loop.h"
#include "net/httpc.h"
#include "store/store.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TENANT_ITEMS  1000 /* timers + subscriptions per tenant VM */
#define MAX_TENANT_HTTP   32   /* requests in flight per tenant VM */
#define MAX_MS            2147483647LL
#define HTTP_TIMEOUT_MS   10000
#define HTTP_MAX_TIMEOUT  120000
#define MAX_HEADERS       64
#define HANDLE_META       "cw.handle"
#define CBOX_META         "cw.cbox"
#define HTTP_INFLIGHT_KEY "cw.http.inflight"

/* ---- timers and subscriptions ---- */

enum item_kind { ITEM_TIMER, ITEM_SUB };

struct item {
    struct script_res res; /* first: the runtime hands us this pointer back */
    script_vm *vm;
    enum item_kind kind;
    bool linked, closed, handle;
    int pending; /* deliveries and timer runs in progress holding it */
    int fnref;
    /* timers */
    struct event *ev;
    bool repeat;
    script_co *last; /* the latest run of a repeating timer */
    /* subscriptions */
    int sub_id;
};

static void item_maybe_free(struct item *it)
{
    if (it->closed && !it->handle && it->pending == 0) free(it);
}

static void item_close(struct item *it)
{
    if (it->closed) return;
    it->closed = true;
    if (it->linked) {
        it->linked = false;
        script_res_remove(it->vm, &it->res);
    }
    if (it->ev) event_free(it->ev);
    it->ev = NULL;
    if (it->last) script_co_unref(it->last);
    it->last = NULL;
    if (it->sub_id) events_unsubscribe(it->sub_id);
    it->sub_id = 0;
    luaL_unref(script_vm_state(it->vm), LUA_REGISTRYINDEX, it->fnref);
    it->fnref = LUA_NOREF;
    item_maybe_free(it);
}

static void res_close(struct script_res *r)
{
    struct item *it = (struct item *)r;
    it->linked = false;
    item_close(it);
}

static int handle_cancel(lua_State *L)
{
    struct item **box = luaL_checkudata(L, 1, HANDLE_META);
    if (*box) item_close(*box);
    return 0;
}

static int handle_active(lua_State *L)
{
    struct item **box = luaL_checkudata(L, 1, HANDLE_META);
    lua_pushboolean(L, *box && !(*box)->closed);
    return 1;
}

static int handle_gc(lua_State *L)
{
    struct item **box = luaL_checkudata(L, 1, HANDLE_META);
    struct item *it = *box;
    *box = NULL;
    if (it) {
        it->handle = false;
        item_maybe_free(it);
    }
    return 0;
}

/*
 * A new item for the function at fn_idx; raises a Lua error (nothing
 * allocated) when the VM may not have more. Pushes the handle.
 */
static struct item *item_new(lua_State *L, enum item_kind kind, int fn_idx, const char *what)
{
    script_vm *vm = script_vm_of(L);
    if (script_vm_retired(vm))
        luaL_error(L, "%s: this VM was replaced by a reload; it takes no new %s", what,
                   kind == ITEM_TIMER ? "timers" : "subscriptions");
    if (script_vm_sandboxed(vm) && script_res_count(vm) >= MAX_TENANT_ITEMS)
        luaL_error(L, "%s: too many timers and subscriptions (limit %d)", what, MAX_TENANT_ITEMS);
    struct item **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, HANDLE_META);
    lua_pushvalue(L, fn_idx);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    /* no Lua errors from here on */
    struct item *it = cw_calloc(1, sizeof *it);
    it->vm = vm;
    it->kind = kind;
    it->fnref = ref;
    it->handle = true;
    it->res.close = res_close;
    script_res_add(vm, &it->res);
    it->linked = true;
    *box = it;
    return it;
}

static int64_t check_ms(lua_State *L, int idx, int64_t min)
{
    lua_Number n = luaL_checknumber(L, idx);
    if (!(n >= (lua_Number)min && n <= (lua_Number)MAX_MS))
        luaL_argerror(
            L, idx,
            lua_pushfstring(L, "milliseconds between %d and %d expected", (int)min, (int)MAX_MS));
    return (int64_t)(n + 0.5);
}

/*
 * The loop caches the time at the start of each pass; refresh it so a
 * timer added late in a pass still waits the whole delay.
 */
static struct timeval ms_tv(int64_t ms)
{
    event_base_update_cache_time(loop_base());
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    return tv;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct item *it = arg;
    if (it->closed) return;
    script_vm *vm = it->vm;
    if (it->repeat && it->last && !script_co_ended(it->last)) {
        log_debug("script", "%s: timer tick skipped: the previous run is still waiting",
                  script_vm_name(vm));
        return;
    }
    lua_State *L = script_vm_state(vm);
    lua_rawgeti(L, LUA_REGISTRYINDEX, it->fnref);
    it->pending++;
    if (!it->repeat) item_close(it);
    script_co *co = script_co_start_internal(vm, 0, NULL, NULL);
    it->pending--;
    if (it->repeat && !it->closed && !script_co_ended(co)) {
        if (it->last) script_co_unref(it->last);
        it->last = co;
    } else {
        script_co_unref(co);
    }
    item_maybe_free(it);
}

static int timer_new(lua_State *L, bool repeat)
{
    const char *what = repeat ? "cw.every" : "cw.after";
    int64_t ms = check_ms(L, 1, repeat ? 1 : 0);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    struct item *it = item_new(L, ITEM_TIMER, 2, what);
    it->repeat = repeat;
    it->ev = event_new(loop_base(), -1, repeat ? EV_PERSIST : 0, on_timer, it);
    struct timeval tv = ms_tv(ms);
    event_add(it->ev, &tv);
    return 1;
}

static int l_after(lua_State *L)
{
    return timer_new(L, false);
}

static int l_every(lua_State *L)
{
    return timer_new(L, true);
}

struct sleeper {
    struct event *ev;
    script_co *co;
    int64_t due_us;
};

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct sleeper *s = arg;
    /* the loop's clock is coarse: a wake-up a little early waits out the rest */
    int64_t left = s->due_us - cw_mono_us();
    if (left > 0) {
        struct timeval tv = {(time_t)(left / 1000000), (suseconds_t)(left % 1000000)};
        evtimer_add(s->ev, &tv);
        return;
    }
    script_co *co = s->co;
    event_free(s->ev);
    free(s);
    script_co_resume(co, 0);
    script_co_unref(co);
}

static void sleep_cancel(void *arg)
{
    struct sleeper *s = arg;
    event_free(s->ev);
    script_co_unref(s->co);
    free(s);
}

static int l_sleep(lua_State *L)
{
    int64_t ms = check_ms(L, 1, 0);
    script_co *co = script_co_check(L);
    struct sleeper *s = cw_calloc(1, sizeof *s);
    s->co = co;
    script_co_ref(co);
    s->ev = evtimer_new(loop_base(), on_wake, s);
    struct timeval tv = ms_tv(ms);
    s->due_us = cw_mono_us() + ms * 1000;
    evtimer_add(s->ev, &tv);
    script_co_on_cancel(co, sleep_cancel, s);
    return script_co_suspend(L);
}

/* ---- events ---- */

struct delivery {
    struct item *it;
    cw_event ev;
};

static void push_event(lua_State *L, const cw_event *ev)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, ev->type);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)ev->id);
    lua_setfield(L, -2, "id");
    lua_pushinteger(L, (lua_Integer)ev->ts_ms);
    lua_setfield(L, -2, "ts");
    lua_pushinteger(L, (lua_Integer)ev->domain_id);
    lua_setfield(L, -2, "domain_id");
    script_push_json(L, ev->data);
    lua_setfield(L, -2, "data");
}

static void deliver(void *arg)
{
    struct delivery *d = arg;
    struct item *it = d->it;
    if (!it->closed) {
        lua_State *L = script_vm_state(it->vm);
        lua_checkstack(L, 4);
        lua_rawgeti(L, LUA_REGISTRYINDEX, it->fnref);
        push_event(L, &d->ev);
        script_co_unref(script_co_start_internal(it->vm, 1, NULL, NULL));
    }
    it->pending--;
    json_decref(d->ev.data);
    free(d);
    item_maybe_free(it);
}

/* From the bus, possibly while a script runs: handlers run later, in order, each in a coroutine. */
static void on_bus(const cw_event *ev, void *arg)
{
    struct item *it = arg;
    if (it->closed) return;
    if (script_vm_sandboxed(it->vm) && ev->domain_id != script_vm_domain(it->vm)) return;
    struct delivery *d = cw_calloc(1, sizeof *d);
    d->it = it;
    d->ev = *ev;
    json_incref(d->ev.data);
    it->pending++;
    script_defer(deliver, d);
}

static int l_on(lua_State *L)
{
    size_t len;
    const char *prefix = luaL_checklstring(L, 1, &len);
    if (len >= sizeof(((cw_event *)0)->type)) luaL_argerror(L, 1, "event type prefix too long");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    struct item *it = item_new(L, ITEM_SUB, 2, "cw.on");
    it->sub_id = events_subscribe(prefix, on_bus, it);
    return 1;
}

static bool type_ok(const char *s, size_t len)
{
    if (len == 0 || len >= sizeof(((cw_event *)0)->type)) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int l_emit(lua_State *L)
{
    script_vm *vm = script_vm_of(L);
    size_t len;
    const char *type = luaL_checklstring(L, 1, &len);
    if (!type_ok(type, len))
        return luaL_argerror(L, 1, "event type: 1-47 characters of a-z 0-9 . _ -");
    int64_t domain = 0;
    if (script_vm_sandboxed(vm)) {
        if (!cw_str_has_prefix(type, "script.") && !cw_str_has_prefix(type, "custom."))
            return luaL_argerror(L, 1, "tenant scripts emit only script.* and custom.* events");
        if (!lua_isnoneornil(L, 3) && luaL_checkinteger(L, 3) != script_vm_domain(vm))
            return luaL_argerror(L, 3, "tenant scripts emit only for their own domain");
        domain = script_vm_domain(vm);
    } else {
        domain = luaL_optinteger(L, 3, 0);
    }
    if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2)) return luaL_typeerror(L, 2, "table or nil");
    json_t *data = NULL;
    if (lua_istable(L, 2)) {
        char err[256];
        data = script_to_json(L, 2, "data", err, sizeof err);
        if (!data) return luaL_error(L, "cw.emit: %s", err);
        if (!json_is_object(data)) {
            json_decref(data);
            return luaL_error(L, "cw.emit: data must be a table with named fields");
        }
    }
    if (!script_vm_allow_emit(vm)) {
        json_decref(data);
        return luaL_error(L, "cw.emit: more than 1000 events a second; slow down");
    }
    events_emit(type, domain, data);
    return 0;
}

/* ---- log, time, JSON ---- */

static int l_log(lua_State *L)
{
    enum log_level lvl;
    const char *name = luaL_checkstring(L, 1);
    if (log_level_parse(name, &lvl))
        return luaL_argerror(L, 1, "level: error, warn, info, debug or trace");
    int n = lua_gettop(L); /* before the buffer puts its own slot on the stack */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 2; i <= n; i++) {
        if (i > 2) luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    char cut[4100];
    if (len > 4096) {
        snprintf(cut, sizeof cut, "%.4093s...", msg);
        msg = cut;
    }
    script_log(script_vm_of(L), lvl, msg);
    return 0;
}

static int l_now(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)cw_wall_ms());
    return 1;
}

/*
 * A userdata that owns a C pointer until it is taken back: if a Lua error
 * (out of memory) interrupts us, the collector frees what it holds.
 */
struct cbox {
    void *p;
    void (*free)(void *);
};

static int cbox_gc(lua_State *L)
{
    struct cbox *b = lua_touserdata(L, 1);
    if (b->p) b->free(b->p);
    b->p = NULL;
    return 0;
}

static struct cbox *cbox_new(lua_State *L, void (*fr)(void *))
{
    struct cbox *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->p = NULL;
    b->free = fr;
    luaL_setmetatable(L, CBOX_META);
    return b;
}

static void json_free(void *p)
{
    json_decref(p);
}

static int l_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    struct cbox *jb = cbox_new(L, json_free);
    struct cbox *sb = cbox_new(L, free);
    char err[256];
    jb->p = script_to_json(L, 1, "value", err, sizeof err);
    if (!jb->p) return luaL_error(L, "cw.json.encode: %s", err);
    sb->p = json_dumps(jb->p, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!sb->p) return luaL_error(L, "cw.json.encode: cannot encode");
    lua_pushstring(L, sb->p);
    json_decref(jb->p);
    jb->p = NULL;
    free(sb->p);
    sb->p = NULL;
    return 1;
}

static int l_json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    struct cbox *b = cbox_new(L, json_free);
    json_error_t jerr;
    b->p = json_loadb(s, len, JSON_DECODE_ANY, &jerr);
    if (!b->p) {
        lua_pushnil(L);
        lua_pushfstring(L, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return 2;
    }
    script_push_json(L, b->p);
    json_decref(b->p);
    b->p = NULL;
    return 1;
}

/* ---- HTTP ---- */

struct hwait {
    httpc_req *req;
    script_co *co;
    script_vm *vm;
};

static void inflight_add(lua_State *L, int delta)
{
    lua_getfield(L, LUA_REGISTRYINDEX, HTTP_INFLIGHT_KEY);
    lua_Integer n = lua_tointeger(L, -1) + delta;
    lua_pop(L, 1);
    lua_pushinteger(L, n);
    lua_setfield(L, LUA_REGISTRYINDEX, HTTP_INFLIGHT_KEY);
}

static void http_cancel(void *arg)
{
    struct hwait *w = arg;
    httpc_cancel(w->req);
    inflight_add(script_vm_state(w->vm), -1);
    script_co_unref(w->co);
    free(w);
}

static void http_done(const struct httpc_response *res, void *arg)
{
    struct hwait *w = arg;
    script_co *co = w->co;
    inflight_add(script_vm_state(w->vm), -1);
    free(w);
    lua_State *T = script_co_thread(co);
    if (!script_co_suspended(co) || !T) {
        script_co_unref(co);
        return;
    }
    lua_checkstack(T, 8);
    if (res->error) {
        lua_pushnil(T);
        lua_pushstring(T, res->error);
        script_co_resume(co, 2);
    } else {
        lua_createtable(T, 0, 3);
        lua_pushinteger(T, res->status);
        lua_setfield(T, -2, "status");
        lua_newtable(T);
        for (int i = 0; i < res->nheaders; i++) {
            const struct httpc_header *h = &res->headers[i];
            if (lua_getfield(T, -1, h->name) == LUA_TSTRING) {
                lua_pushfstring(T, "%s, %s", lua_tostring(T, -1), h->value);
                lua_remove(T, -2);
            } else {
                lua_pop(T, 1);
                lua_pushstring(T, h->value);
            }
            lua_setfield(T, -2, h->name);
        }
        lua_setfield(T, -2, "headers");
        lua_pushlstring(T, res->body, res->body_len);
        lua_setfield(T, -2, "body");
        script_co_resume(co, 1);
    }
    script_co_unref(co);
}

static int l_http(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    script_co *co = script_co_check(L);
    script_vm *vm = script_vm_of(L);
    struct httpc_opts o = {0};
    /* option values stay on the stack while their strings are in use */
    if (lua_getfield(L, 1, "url") != LUA_TSTRING) return luaL_error(L, "cw.http: url is required");
    o.url = lua_tostring(L, -1);
    char method[17] = "";
    if (lua_getfield(L, 1, "method") != LUA_TNIL) {
        size_t mlen;
        const char *m = lua_tolstring(L, -1, &mlen);
        if (!m || mlen == 0 || mlen >= sizeof method)
            return luaL_error(L, "cw.http: method must be a short string");
        for (size_t i = 0; i <= mlen; i++)
            method[i] = (char)toupper((unsigned char)m[i]);
        o.method = method;
    }
    int bt = lua_getfield(L, 1, "body");
    if (bt == LUA_TSTRING) {
        o.body = lua_tolstring(L, -1, &o.body_len);
    } else if (bt != LUA_TNIL) {
        return luaL_error(L, "cw.http: body must be a string (cw.json.encode a table)");
    }
    o.timeout_ms = HTTP_TIMEOUT_MS;
    if (lua_getfield(L, 1, "timeout") != LUA_TNIL) {
        if (!lua_isnumber(L, -1)) return luaL_error(L, "cw.http: timeout must be milliseconds");
        lua_Number t = lua_tonumber(L, -1);
        if (!(t >= 1 && t <= HTTP_MAX_TIMEOUT))
            return luaL_error(L, "cw.http: timeout between 1 and %d ms", HTTP_MAX_TIMEOUT);
        o.timeout_ms = (long)t;
    }
    lua_pop(L, 1);
    const char *hname[MAX_HEADERS], *hval[MAX_HEADERS];
    int nh = 0;
    int ht = lua_getfield(L, 1, "headers");
    if (ht == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "cw.http: headers must map names to strings");
            if (nh == MAX_HEADERS)
                return luaL_error(L, "cw.http: more than %d headers", MAX_HEADERS);
            hname[nh] = lua_tostring(L, -2);
            hval[nh] = lua_tostring(L, -1);
            nh++;
            lua_pop(L, 1);
        }
    } else if (ht != LUA_TNIL) {
        return luaL_error(L, "cw.http: headers must be a table");
    }
    /* the headers table stays on the stack, anchoring the strings */
    if (script_vm_sandboxed(vm)) {
        lua_getfield(L, LUA_REGISTRYINDEX, HTTP_INFLIGHT_KEY);
        lua_Integer n = lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (n >= MAX_TENANT_HTTP)
            return luaL_error(L, "cw.http: %d requests already in flight", MAX_TENANT_HTTP);
    }
    /* no Lua errors from here until the suspension */
    char *lines[MAX_HEADERS];
    for (int i = 0; i < nh; i++)
        lines[i] = cw_sprintf("%s: %s", hname[i], hval[i]);
    o.headers = (const char *const *)lines;
    o.nheaders = nh;
    o.max_body = (size_t)config_int("lua.http_max_body");
    o.public_only = script_vm_sandboxed(vm) && !config_bool("lua.tenant_http_private");
    struct hwait *w = cw_calloc(1, sizeof *w);
    char err[256];
    w->req = httpc_start(&o, http_done, w, err, sizeof err);
    for (int i = 0; i < nh; i++)
        free(lines[i]);
    if (!w->req) {
        free(w);
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    w->co = co;
    w->vm = vm;
    script_co_ref(co);
    inflight_add(L, 1);
    script_co_on_cancel(co, http_cancel, w);
    return script_co_suspend(L);
}

/* ---- domain model (read only) ---- */

static store *need_store(lua_State *L)
{
    store *st = store_main();
    if (!st) luaL_error(L, "the store is not open");
    return st;
}

/*
 * Which domain a call is about: tenants only ever their own (another
 * domain reads as absent: -1); the system VM names one by id or name.
 */
static int64_t domain_arg(lua_State *L, int idx, const char *what)
{
    script_vm *vm = script_vm_of(L);
    int64_t id = 0;
    if (lua_isnoneornil(L, idx)) {
        if (script_vm_sandboxed(vm)) return script_vm_domain(vm);
        luaL_error(L, "%s: which domain? (id or name)", what);
    }
    if (lua_isinteger(L, idx)) {
        id = lua_tointeger(L, idx);
    } else if (lua_type(L, idx) == LUA_TSTRING) {
        store *st = need_store(L);
        int64_t v;
        if (store_query_int(st, &v, "SELECT id FROM domains WHERE name = ?",
                            SA_STR(lua_tostring(L, idx)), SA_END) == CW_OK)
            id = v;
        else
            id = -1;
    } else {
        luaL_error(L, "%s: domain must be an id or a name", what);
    }
    if (script_vm_sandboxed(vm) && id != script_vm_domain(vm)) return -1;
    return id;
}

/* Push the current row as a table; types: one letter per column, i(nt) s(tring) b(ool). */
static void push_row(lua_State *L, store_res *r, const char *types)
{
    int nc = store_ncols(r);
    lua_createtable(L, 0, nc);
    for (int c = 0; c < nc && types[c]; c++) {
        if (store_isnull(r, c)) continue;
        switch (types[c]) {
        case 'i':
            lua_pushinteger(L, (lua_Integer)store_int(r, c));
            break;
        case 'b':
            lua_pushboolean(L, store_int(r, c) != 0);
            break;
        default:
            lua_pushstring(L, store_str(r, c));
            break;
        }
        lua_setfield(L, -2, store_colname(r, c));
    }
}

/* Run a query; a store error becomes a Lua error after the result is freed. */
static store_res *query(lua_State *L, const char *sql, const store_arg *args, int nargs)
{
    store *st = need_store(L);
    store_res *r = NULL;
    if (store_queryv(st, &r, sql, args, nargs) < 0 || !r)
        luaL_error(L, "store: %s", store_errmsg(st));
    return r;
}

/*
 * Results are copied into a Lua table inside a protected call, so a memory
 * error while building it cannot leak the result.
 */
struct rows_ctx {
    store_res *r;
    const char *types;
    bool many;
};

static int rows_to_lua(lua_State *L)
{
    struct rows_ctx *c = lua_touserdata(L, 1);
    if (!c->many) {
        if (store_next(c->r))
            push_row(L, c->r, c->types);
        else
            lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, store_nrows(c->r), 0);
    lua_Integer i = 1;
    while (store_next(c->r)) {
        push_row(L, c->r, c->types);
        lua_rawseti(L, -2, i++);
    }
    return 1;
}

static void push_rows(lua_State *L, store_res *r, const char *types, bool many)
{
    struct rows_ctx c = {r, types, many};
    lua_pushcfunction(L, rows_to_lua);
    lua_pushlightuserdata(L, &c);
    int rc = lua_pcall(L, 1, 1, 0);
    store_res_free(r);
    if (rc != LUA_OK) lua_error(L);
}

#define DOMAIN_COLS                                                                                \
    "id, name, display_name, routing_number, timezone, default_cli, language, max_users, "         \
    "max_channels, pickup_code, ivr_timeout, ivr_max_errors, status"
#define DOMAIN_TYPES "issssssiisiis"
#define USER_COLS                                                                                  \
    "id, domain_id, login, display_name, extension, role, is_operator, email, job_title, "         \
    "language, status, restriction, voicemail_enabled, recording_enabled"
#define USER_TYPES "iissssbsssssbb"

static int l_domain(lua_State *L)
{
    int64_t id = domain_arg(L, 1, "cw.domain");
    if (id < 0) {
        lua_pushnil(L);
        return 1;
    }
    store_arg a[] = {SA_INT(id)};
    push_rows(L, query(L, "SELECT " DOMAIN_COLS " FROM domains WHERE id = ?", a, 1), DOMAIN_TYPES,
              false);
    return 1;
}

static int l_users(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_isnil(L, 1)) {
        lua_newtable(L);
        lua_replace(L, 1);
    }
    lua_getfield(L, 1, "domain");
    int64_t id = domain_arg(L, 2, "cw.users");
    if (id < 0) {
        lua_newtable(L);
        return 1;
    }
    cw_buf sql;
    store_arg a[8];
    int na = 0;
    lua_Integer limit = 500, offset = 0;
    /* read every option before building anything that needs freeing */
    int op = lua_getfield(L, 1, "operator");
    bool opv = lua_toboolean(L, -1);
    const char *role = NULL, *ext = NULL;
    if (lua_getfield(L, 1, "role") != LUA_TNIL) role = luaL_checkstring(L, -1);
    if (lua_getfield(L, 1, "extension") != LUA_TNIL) ext = luaL_checkstring(L, -1);
    if (lua_getfield(L, 1, "limit") != LUA_TNIL) limit = luaL_checkinteger(L, -1);
    if (lua_getfield(L, 1, "offset") != LUA_TNIL) offset = luaL_checkinteger(L, -1);
    if (limit < 1 || limit > 5000) return luaL_error(L, "cw.users: limit between 1 and 5000");
    if (offset < 0) return luaL_error(L, "cw.users: offset must not be negative");
    cw_buf_init(&sql);
    cw_buf_puts(&sql, "SELECT " USER_COLS " FROM users WHERE domain_id = ?");
    a[na++] = SA_INT(id);
    if (op != LUA_TNIL) {
        cw_buf_puts(&sql, " AND is_operator = ?");
        a[na++] = SA_INT(opv ? 1 : 0);
    }
    if (role) {
        cw_buf_puts(&sql, " AND role = ?");
        a[na++] = SA_STR(role);
    }
    if (ext) {
        cw_buf_puts(&sql, " AND extension = ?");
        a[na++] = SA_STR(ext);
    }
    cw_buf_puts(&sql, " ORDER BY extension, id LIMIT ? OFFSET ?");
    a[na++] = SA_INT(limit);
    a[na++] = SA_INT(offset);
    store *st = need_store(L);
    store_res *r = NULL;
    int rc = store_queryv(st, &r, sql.data, a, na);
    cw_buf_free(&sql);
    if (rc < 0 || !r) return luaL_error(L, "store: %s", store_errmsg(st));
    push_rows(L, r, USER_TYPES, true);
    return 1;
}

static int l_user(lua_State *L)
{
    int64_t id = domain_arg(L, 2, "cw.user");
    if (id < 0) {
        lua_pushnil(L);
        return 1;
    }
    const char *col = "extension";
    store_arg key;
    if (lua_type(L, 1) == LUA_TSTRING) {
        key = SA_STR(lua_tostring(L, 1));
    } else if (lua_istable(L, 1)) {
        if (lua_getfield(L, 1, "id") != LUA_TNIL) {
            col = "id";
            key = SA_INT(luaL_checkinteger(L, -1));
        } else if (lua_getfield(L, 1, "login") != LUA_TNIL) {
            col = "login";
            key = SA_STR(luaL_checkstring(L, -1));
        } else if (lua_getfield(L, 1, "extension") != LUA_TNIL) {
            key = SA_STR(luaL_checkstring(L, -1));
        } else {
            return luaL_error(L, "cw.user: give an extension, or {id=}, {login=} or {extension=}");
        }
    } else {
        return luaL_typeerror(L, 1, "extension string or table");
    }
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT " USER_COLS " FROM users WHERE domain_id = ? AND %s = ?",
             col);
    store_arg a[] = {SA_INT(id), key};
    push_rows(L, query(L, sql, a, 2), USER_TYPES, false);
    return 1;
}

#define GROUP_COLS                                                                                 \
    "id, domain_id, name, extension, strategy, email, ring_timeout, wrapup_time, max_wait, "       \
    "max_length, max_misses, moh, voicemail_enabled, join_empty, leave_empty, overflow_target"
#define GROUP_TYPES "iissssiiiiisbbbs"

static int l_group(lua_State *L)
{
    int64_t id = domain_arg(L, 2, "cw.group");
    if (id < 0) {
        lua_pushnil(L);
        return 1;
    }
    store_arg key;
    const char *where;
    if (lua_type(L, 1) == LUA_TSTRING) {
        key = SA_STR(lua_tostring(L, 1));
        where = "(name = ? OR extension = ?)";
    } else if (lua_istable(L, 1) && lua_getfield(L, 1, "id") != LUA_TNIL) {
        key = SA_INT(luaL_checkinteger(L, -1));
        where = "id = ?";
    } else {
        return luaL_typeerror(L, 1, "group name, extension or {id=}");
    }
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT " GROUP_COLS " FROM call_groups WHERE domain_id = ? AND %s",
             where);
    store_arg a[] = {SA_INT(id), key, key};
    push_rows(L, query(L, sql, a, key.kind == STORE_A_STR ? 3 : 2), GROUP_TYPES, false);
    if (lua_isnil(L, -1)) return 1;
    lua_getfield(L, -1, "id");
    store_arg m[] = {SA_INT(lua_tointeger(L, -1))};
    lua_pop(L, 1);
    push_rows(L,
              query(L,
                    "SELECT u.id AS user_id, u.extension, u.display_name, u.login, "
                    "u.is_operator, m.priority, m.penalty FROM call_group_members m "
                    "JOIN users u ON u.id = m.user_id WHERE m.group_id = ? "
                    "ORDER BY m.priority, u.extension",
                    m, 1),
              "isssbii", true);
    lua_setfield(L, -2, "members");
    return 1;
}

/* ---- the module ---- */

int cwlib_open(lua_State *L)
{
    static const luaL_Reg handle_methods[] = {
        {"cancel", handle_cancel},
        {"active", handle_active},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, HANDLE_META)) {
        luaL_newlib(L, handle_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, handle_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "cw handle");
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, CBOX_META)) {
        lua_pushcfunction(L, cbox_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {
        {"log", l_log},       {"on", l_on},       {"emit", l_emit}, {"after", l_after},
        {"every", l_every},   {"sleep", l_sleep}, {"http", l_http}, {"now", l_now},
        {"domain", l_domain}, {"users", l_users}, {"user", l_user}, {"group", l_group},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    static const luaL_Reg json_fns[] = {
        {"encode", l_json_encode},
        {"decode", l_json_decode},
        {NULL, NULL},
    };
    luaL_newlib(L, json_fns);
    lua_setfield(L, -2, "json");
    script_push_null(L);
    lua_setfield(L, -2, "null");
    lua_pushliteral(L, CW_VERSION);
    lua_setfield(L, -2, "version");
    script_vm *vm = script_vm_of(L);
    if (script_vm_sandboxed(vm)) {
        lua_pushinteger(L, (lua_Integer)script_vm_domain(vm));
        lua_setfield(L, -2, "domain_id");
    }
    return 1;
}
