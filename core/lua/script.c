/*
 * script.c - Lua VMs and the coroutines C code drives.
 *
 * Owns the system VM, the tenant VMs (created on first use, replaced after a
 * reload or when a memory-cap hit leaves one full) and every script_co.
 * Runs on the core thread only. Tenant VMs run under a counting allocator
 * and a count hook, so a tenant script can exhaust only its own budget: it
 * is stopped and reported, never the daemon. No tenant Lua code runs outside
 * a coroutine (no __gc metamethods), so every instruction is budgeted.
 */
#include "lua/script_int.h"
#include "base/cw.h"
#include "config/config.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "net/httpc.h"

#include <dirent.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The count hook runs every HOOK_EVERY VM instructions of a tenant script. */
#define HOOK_EVERY 1000
/* A tenant VM still this full after a memory-cap hit and a full GC is rebuilt. */
#define POISON_NUM 3
#define POISON_DEN 4

enum co_state { CO_RUNNING, CO_SUSPENDED, CO_ENDED };

struct script_co {
    script_vm *vm;
    lua_State *L;
    int ref; /* registry reference anchoring L */
    int refcount;
    enum co_state state;
    bool internal;
    bool suspending;
    bool mem_refused; /* the allocator refused memory during the current run */
    enum script_status abort;
    char abort_msg[96];
    script_done_fn done;
    void *done_arg;
    void *user;
    void (*cancel)(void *);
    void *cancel_arg;
    int64_t run_start_us, run_start_wait_us;
    int64_t instr;
    char where[96];
    script_co *prev, *next; /* the VM's live coroutines */
};

struct bucket {
    double tokens;
    int64_t last_us;
};

struct script_vm {
    lua_State *L;
    int64_t domain_id;
    bool sandboxed;
    bool retired;
    bool reap_scheduled;
    char name[32];
    size_t mem, mem_cap;
    uint64_t mem_refusals;
    size_t alloc_bytes; /* since the last time check */
    int alloc_calls;
    int enforce; /* > 0 while script code of this VM runs */
    int64_t instr_budget, time_budget_us;
    script_co *running;
    script_co *cos;
    int ncos;
    struct script_res *res;
    int nres;
    struct bucket log_bucket, emit_bucket;
    uint64_t log_dropped;
    script_vm *next_retired;
};

struct module {
    char *name;
    lua_CFunction open;
};

struct deferred {
    struct deferred *next;
    void (*fn)(void *);
    void *arg;
};

static struct {
    bool up;
    script_vm *system;
    struct tenant {
        int64_t domain_id;
        script_vm *vm;
    } * tenants;
    int ntenants, cap_tenants;
    script_vm *retired;
    struct module *mods;
    int nmods;
    script_co *current; /* innermost running coroutine, any VM */
    struct event *defer_ev;
    struct deferred *dhead, *dtail;
    uint64_t started, ended[5];
    int ncos;
} R;

/* Marks the thread of a coroutine that has ended: Lua code may not resume it. */
static script_co ended_marker;

static void co_finish(script_co *co, enum script_status st, const char *msg);
static void vm_retire(script_vm *vm);
static void vm_open_module(script_vm *vm, const struct module *m);

const char *script_status_name(enum script_status st)
{
    static const char *names[] = {"done", "error", "budget", "memory", "killed"};
    return (unsigned)st < CW_ARRAY_LEN(names) ? names[st] : "?";
}

/* ---- deferred work ---- */

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
    struct deferred *d = R.dhead;
    R.dhead = R.dtail = NULL;
    while (d) {
        struct deferred *next = d->next;
        d->fn(d->arg);
        free(d);
        d = next;
    }
}

void script_defer(void (*fn)(void *arg), void *arg)
{
    struct deferred *d = cw_calloc(1, sizeof *d);
    d->fn = fn;
    d->arg = arg;
    if (R.dtail)
        R.dtail->next = d;
    else
        R.dhead = d;
    R.dtail = d;
    if (R.defer_ev) event_active(R.defer_ev, 0, 0);
}

/* ---- allocator and budgets ---- */

static void hook(lua_State *L, lua_Debug *ar);

/*
 * Microseconds the core thread has waited for a CPU (run queue), from the
 * kernel's scheduler statistics; 0 when they are not available.
 */
static int sched_fd = -1;

static int64_t runq_wait_us(void)
{
    char buf[96];
    if (sched_fd < 0) return 0;
    ssize_t n = pread(sched_fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = '\0';
    unsigned long long run, wait;
    if (sscanf(buf, "%llu %llu", &run, &wait) != 2) return 0;
    return (int64_t)(wait / 1000);
}

/*
 * Out of time? The budget is wall time, less what the thread spent waiting
 * for a CPU: a script is not blamed for a busy machine. If so, mark the
 * coroutine to stop; every instruction from now on ends in the hook.
 */
static bool over_time(script_vm *vm, script_co *co)
{
    if (!vm->time_budget_us) return false;
    int64_t wall = cw_mono_us() - co->run_start_us;
    if (wall < vm->time_budget_us) return false;
    if (wall - (runq_wait_us() - co->run_start_wait_us) < vm->time_budget_us) return false;
    co->abort = SCRIPT_BUDGET;
    snprintf(co->abort_msg, sizeof co->abort_msg, "time budget of %lld ms exhausted",
             (long long)(vm->time_budget_us / 1000));
    lua_sethook(co->L, hook, LUA_MASKCOUNT, 1);
    return true;
}

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    script_vm *vm = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        vm->mem -= old;
        return NULL;
    }
    if (nsize > old && vm->enforce && vm->sandboxed && vm->running) {
        script_co *co = vm->running;
        if (co->abort) return NULL; /* stopping: nothing more for it */
        /*
         * A few VM instructions can run long when each allocates a lot
         * (string building): the time budget is checked here too.
         */
        vm->alloc_bytes += nsize - old;
        if (++vm->alloc_calls >= 64 || vm->alloc_bytes >= 256 * 1024) {
            vm->alloc_calls = 0;
            vm->alloc_bytes = 0;
            if (over_time(vm, co)) return NULL;
        }
        if (vm->mem_cap && vm->mem - old + nsize > vm->mem_cap) {
            /* Lua collects garbage and asks once more before it raises the error. */
            vm->mem_refusals++;
            co->mem_refused = true;
            return NULL;
        }
    }
    void *p = realloc(ptr, nsize);
    if (!p) return NULL;
    vm->mem = vm->mem - old + nsize;
    return p;
}

static script_vm *vm_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

static void hook(lua_State *L, lua_Debug *ar)
{
    script_vm *vm = vm_of(L);
    script_co *co = vm->running;
    if (!co) {
        if (vm->sandboxed) luaL_error(L, "tenant code may only run in a script coroutine");
        return; /* trusted code C runs directly: not budgeted */
    }
    if (!co->abort) {
        int step = lua_gethookcount(L);
        co->instr += step;
        if (!vm->instr_budget && !vm->time_budget_us) {
            lua_sethook(L, NULL, 0, 0); /* was set only to deliver a kill */
            return;
        }
        if (step != HOOK_EVERY) lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
        if (vm->instr_budget && co->instr >= vm->instr_budget) {
            co->abort = SCRIPT_BUDGET;
            snprintf(co->abort_msg, sizeof co->abort_msg, "instruction budget of %lld exhausted",
                     (long long)vm->instr_budget);
        } else {
            over_time(vm, co);
        }
        if (!co->abort) return;
    }
    /*
     * Stop: from now on every instruction comes here. Yielding cannot be
     * caught by pcall; where a C call prevents the yield, an error unwinds to
     * the next Lua frame, which comes back here.
     */
    lua_sethook(L, hook, LUA_MASKCOUNT, 1);
    if (L != co->L) lua_sethook(co->L, hook, LUA_MASKCOUNT, 1);
    if (L == co->L && lua_isyieldable(L)) {
        lua_yield(L, 0);
        return;
    }
    luaL_error(L, "%s", co->abort_msg);
}

void script_charge(lua_State *L, unsigned units)
{
    script_vm *vm = vm_of(L);
    script_co *co = vm->running;
    if (!co || (!vm->instr_budget && !vm->time_budget_us)) return;
    if (!co->abort) {
        co->instr += units;
        if (vm->instr_budget && co->instr >= vm->instr_budget) {
            co->abort = SCRIPT_BUDGET;
            snprintf(co->abort_msg, sizeof co->abort_msg, "instruction budget of %lld exhausted",
                     (long long)vm->instr_budget);
            lua_sethook(co->L, hook, LUA_MASKCOUNT, 1);
        } else {
            over_time(vm, co);
        }
    }
    if (co->abort) luaL_error(L, "%s", co->abort_msg);
}

/* ---- token buckets ---- */

static bool bucket_take(struct bucket *b, double rate, double burst)
{
    int64_t now = cw_mono_us();
    if (b->last_us == 0) b->tokens = burst;
    b->tokens += (double)(now - b->last_us) / 1e6 * rate;
    if (b->tokens > burst) b->tokens = burst;
    b->last_us = now;
    if (b->tokens < 1) return false;
    b->tokens -= 1;
    return true;
}

bool script_vm_allow_emit(script_vm *vm)
{
    return !vm->sandboxed || bucket_take(&vm->emit_bucket, 1000, 2000);
}

void script_log(script_vm *vm, enum log_level lvl, const char *msg)
{
    if (!log_enabled("script", lvl)) return;
    if (vm->sandboxed && !bucket_take(&vm->log_bucket, 100, 200)) {
        vm->log_dropped++;
        return;
    }
    if (vm->log_dropped) {
        log_write("script", LOG_WARN, "%s: %llu log lines dropped (over 100 a second)", vm->name,
                  (unsigned long long)vm->log_dropped);
        vm->log_dropped = 0;
    }
    log_write("script", lvl, "%s: %s", vm->name, msg);
}

static void on_warn(void *ud, const char *msg, int tocont)
{
    script_vm *vm = ud;
    if (tocont || !msg || msg[0] == '@') return; /* control messages and pieces: dropped */
    script_log(vm, LOG_WARN, msg);
}

static int on_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    log_error("script", "unprotected Lua error: %s", msg ? msg : "?");
    abort();
    return 0;
}

/* ---- sandbox ---- */

static int is_script_thread(lua_State *T)
{
    return T && *(script_co **)lua_getextraspace(T) != NULL;
}

/* coroutine.resume/close wrappers: a script coroutine belongs to C code. */
static int co_guard(lua_State *L)
{
    lua_State *T = lua_tothread(L, 1);
    if (is_script_thread(T))
        return luaL_error(L, "a script coroutine is driven by the runtime; it cannot be "
                             "resumed or closed from Lua");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static void guard_field(lua_State *L, const char *name)
{
    /* coroutine table at -1 */
    lua_getfield(L, -1, name);
    lua_pushcclosure(L, co_guard, 1);
    lua_setfield(L, -2, name);
}

static int safe_load(lua_State *L)
{
    int top = lua_gettop(L);
    const char *mode = luaL_optstring(L, 3, "t");
    if (strcmp(mode, "t") != 0) return luaL_error(L, "load: only text chunks are allowed");
    if (top < 3) {
        lua_settop(L, 2);
        lua_pushliteral(L, "t");
    } else {
        lua_pushliteral(L, "t");
        lua_replace(L, 3);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int safe_collectgarbage(lua_State *L)
{
    static const char *const allowed[] = {"collect", "count", "step", "isrunning", NULL};
    luaL_checkoption(L, 1, "collect", allowed);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int safe_setmetatable(lua_State *L)
{
    if (lua_istable(L, 2)) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L,
                              "setmetatable: __gc metamethods are not allowed in tenant scripts");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/*
 * string.rep for tenants: the standard one copies piece by piece, which
 * for a one-byte piece is a long loop no hook can interrupt; this one
 * doubles what it has already built.
 */
static int fast_rep(lua_State *L)
{
    size_t l, lsep;
    const char *s = luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    const char *sep = luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    size_t unit = l + lsep;
    if ((lua_Unsigned)n > ((size_t)0x7fffffff * 16) / unit)
        return luaL_error(L, "resulting string too large");
    size_t size = unit * (size_t)n;
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, size);
    memcpy(p, s, l);
    memcpy(p + l, sep, lsep);
    size_t filled = unit;
    while (filled < size) {
        size_t chunk = CW_MIN(filled, size - filled);
        memcpy(p + filled, p, chunk);
        filled += chunk;
    }
    luaL_pushresultsize(&b, size - lsep);
    return 1;
}

/*
 * table.sort and table.move for tenants, in Lua so the count hook sees
 * their work (the C ones can loop for seconds on a big or sparse range).
 */
static const char tenant_table_lua[] =
    "local sort, type, error = table.sort, type, error\n"
    "local function lt(a, b) return a < b end\n"
    "table.sort = function(t, f) return sort(t, f or lt) end\n"
    "table.move = function(a1, f, e, t, a2)\n"
    "  a2 = a2 or a1\n"
    "  if type(a1) ~= 'table' or type(a2) ~= 'table' then error('table.move: tables expected', 2) "
    "end\n"
    "  if math.type(f) ~= 'integer' or math.type(e) ~= 'integer' or math.type(t) ~= 'integer' "
    "then\n"
    "    error('table.move: integer positions expected', 2) end\n"
    "  if e >= f then\n"
    "    if t > e or t <= f or a1 ~= a2 then\n"
    "      for i = 0, e - f do a2[t + i] = a1[f + i] end\n"
    "    else\n"
    "      for i = e - f, 0, -1 do a2[t + i] = a1[f + i] end\n"
    "    end\n"
    "  end\n"
    "  return a2\n"
    "end\n";

static int lua_print(lua_State *L)
{
    int n = lua_gettop(L); /* before the buffer puts its own slot on the stack */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    script_log(vm_of(L), LOG_INFO, lua_tostring(L, -1));
    return 0;
}

/* Module names for require: dotted identifiers only, so they cannot leave the folders. */
static bool module_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > 64) return false;
    bool start = true;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (start) return false;
            start = true;
            continue;
        }
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && !start)) return false;
        start = false;
    }
    return !start;
}

struct file_reader {
    FILE *f;
    char buf[4096];
};

static const char *read_file(lua_State *L, void *arg, size_t *size)
{
    struct file_reader *r = arg;
    *size = fread(r->buf, 1, sizeof r->buf, r->f);
    return *size ? r->buf : NULL;
}

/*
 * require for tenant VMs: modules added by C (script_add_module), then Lua
 * text from scripts_dir and flows_dir. No C modules, no binary chunks, no
 * path the script chooses.
 */
static int lua_require(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    if (!module_name_ok(name, len)) return luaL_error(L, "require: bad module name '%s'", name);
    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, 2, name) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    char rel[80];
    cw_strlcpy(rel, name, sizeof rel);
    for (char *p = rel; *p; p++)
        if (*p == '.') *p = '/';
    const char *dirs[] = {config_str("scripts_dir"), config_str("flows_dir")};
    const char *forms[] = {"%s/%s.lua", "%s/%s/init.lua"};
    char path[1024];
    bool found = false;
    for (size_t d = 0; d < CW_ARRAY_LEN(dirs) && !found; d++)
        for (size_t f = 0; f < CW_ARRAY_LEN(forms) && !found; f++) {
            struct stat sb;
            snprintf(path, sizeof path, forms[f], dirs[d], rel);
            if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) found = true;
        }
    if (!found) return luaL_error(L, "require: module '%s' not found", name);
    /* named by its place in the folder, so messages do not show the server's paths */
    char chunk[96];
    snprintf(chunk, sizeof chunk, "@%s%s", rel, strstr(path, "/init.lua") ? "/init.lua" : ".lua");
    struct file_reader fr = {.f = fopen(path, "r")};
    if (!fr.f) return luaL_error(L, "require: cannot read module '%s'", name);
    int rc = lua_load(L, read_file, &fr, chunk, "t");
    fclose(fr.f);
    if (rc != LUA_OK) return lua_error(L);
    lua_pushstring(L, name);
    lua_pushstring(L, chunk + 1);
    lua_call(L, 2, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, 2, name);
    return 1;
}

static void open_lib(lua_State *L, const char *name, lua_CFunction fn)
{
    luaL_requiref(L, name, fn, 1);
    lua_pop(L, 1);
}

static void wrap_global(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_getglobal(L, name);
    lua_pushcclosure(L, fn, 1);
    lua_setglobal(L, name);
}

/* Runs protected: open the libraries of a new VM. */
static int vm_setup(lua_State *L)
{
    script_vm *vm = lua_touserdata(L, 1);
    if (!vm->sandboxed) {
        /* trusted: the whole standard library; require looks in our folders first */
        luaL_openlibs(L);
        lua_getglobal(L, LUA_LOADLIBNAME);
        lua_getfield(L, -1, "path");
        const char *sd = config_str("scripts_dir"), *fd = config_str("flows_dir");
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s/?.lua;%s/?/init.lua;%s", sd, sd, fd, fd,
                        lua_tostring(L, -1));
        lua_setfield(L, -3, "path");
        lua_pop(L, 2);
    } else {
        open_lib(L, LUA_GNAME, luaopen_base);
        open_lib(L, LUA_COLIBNAME, luaopen_coroutine);
        open_lib(L, LUA_TABLIBNAME, luaopen_table);
        open_lib(L, LUA_STRLIBNAME, luaopen_string);
        open_lib(L, LUA_MATHLIBNAME, luaopen_math);
        open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
        luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
        lua_newtable(L);
        static const char *const keep[] = {"time", "date", "clock", "difftime"};
        for (size_t i = 0; i < CW_ARRAY_LEN(keep); i++) {
            lua_getfield(L, -2, keep[i]);
            lua_setfield(L, -2, keep[i]);
        }
        lua_setglobal(L, LUA_OSLIBNAME);
        lua_pop(L, 1);
        lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
        lua_getglobal(L, LUA_OSLIBNAME);
        lua_setfield(L, -2, LUA_OSLIBNAME);
        lua_pop(L, 1);
        lua_getglobal(L, LUA_STRLIBNAME);
        lua_pushnil(L);
        lua_setfield(L, -2, "dump");
        lua_pushcfunction(L, fast_rep);
        lua_setfield(L, -2, "rep");
        lua_pop(L, 1);
        script_open_patterns(L);
        if (luaL_loadbufferx(L, tenant_table_lua, sizeof tenant_table_lua - 1, "=sandbox", "t"))
            return lua_error(L);
        lua_call(L, 0, 0);
        static const char *const drop[] = {"dofile", "loadfile", "warn"};
        for (size_t i = 0; i < CW_ARRAY_LEN(drop); i++) {
            lua_pushnil(L);
            lua_setglobal(L, drop[i]);
        }
        wrap_global(L, "load", safe_load);
        wrap_global(L, "collectgarbage", safe_collectgarbage);
        wrap_global(L, "setmetatable", safe_setmetatable);
        lua_pushcfunction(L, lua_require);
        lua_setglobal(L, "require");
    }
    lua_pushcfunction(L, lua_print);
    lua_setglobal(L, "print");
    lua_getglobal(L, LUA_COLIBNAME);
    guard_field(L, "resume");
    guard_field(L, "close");
    lua_pop(L, 1);
    luaL_requiref(L, "cw", cwlib_open, 1);
    lua_pop(L, 1);
    return 0;
}

/* ---- VMs ---- */

static script_vm *vm_new(int64_t domain_id)
{
    script_vm *vm = cw_calloc(1, sizeof *vm);
    vm->domain_id = domain_id;
    vm->sandboxed = domain_id > 0;
    if (vm->sandboxed) {
        snprintf(vm->name, sizeof vm->name, "domain %lld", (long long)domain_id);
        vm->mem_cap = (size_t)config_int("lua.memory_cap");
        vm->instr_budget = config_int("lua.instruction_budget");
        vm->time_budget_us = config_int("lua.time_budget_ms") * 1000;
    } else {
        /* trusted, but a runaway would still stop the whole daemon: a generous time budget */
        snprintf(vm->name, sizeof vm->name, "system");
        vm->time_budget_us = config_int("lua.system_time_budget_ms") * 1000;
    }
    vm->L = lua_newstate(vm_alloc, vm);
    if (!vm->L) {
        log_error("script", "%s: cannot create a Lua state", vm->name);
        free(vm);
        return NULL;
    }
    lua_atpanic(vm->L, on_panic);
    lua_setwarnf(vm->L, on_warn, vm);
    *(script_co **)lua_getextraspace(vm->L) = NULL;
    lua_pushcfunction(vm->L, vm_setup);
    lua_pushlightuserdata(vm->L, vm);
    if (lua_pcall(vm->L, 1, 0, 0) != LUA_OK) {
        log_error("script", "%s: cannot set up the Lua state: %s", vm->name,
                  lua_tostring(vm->L, -1));
        lua_close(vm->L);
        free(vm);
        return NULL;
    }
    for (int i = 0; i < R.nmods; i++)
        vm_open_module(vm, &R.mods[i]);
    if (vm->instr_budget || vm->time_budget_us) lua_sethook(vm->L, hook, LUA_MASKCOUNT, HOOK_EVERY);
    lua_gc(vm->L, LUA_GCCOLLECT);
    log_debug("script", "%s: VM created (%zu bytes)", vm->name, vm->mem);
    return vm;
}

/* Kill coroutines: all of them, or only the runtime's. Running ones stop at their next instruction.
 */
static void vm_kill_cos(script_vm *vm, bool internal_only)
{
    bool again = true;
    while (again) {
        again = false;
        for (script_co *co = vm->cos; co; co = co->next) {
            if (co->state == CO_SUSPENDED && (!internal_only || co->internal)) {
                script_co_kill(co);
                again = true; /* the list changed */
                break;
            }
            if (co->state == CO_RUNNING && (!internal_only || co->internal)) script_co_kill(co);
        }
    }
}

static void vm_close_res(script_vm *vm)
{
    while (vm->res) {
        struct script_res *r = vm->res;
        script_res_remove(vm, r);
        r->close(r);
    }
}

static void vm_free(script_vm *vm)
{
    vm_close_res(vm);
    vm_kill_cos(vm, false);
    log_debug("script", "%s: VM closed", vm->name);
    lua_close(vm->L);
    free(vm);
}

static void vm_reap(void *arg)
{
    /* only VMs still on the retired list: shutdown may have freed it already */
    for (script_vm **p = &R.retired; *p; p = &(*p)->next_retired) {
        script_vm *vm = *p;
        if (vm != arg) continue;
        vm->reap_scheduled = false;
        if (vm->ncos > 0) return; /* someone started another coroutine in it */
        *p = vm->next_retired;
        vm_free(vm);
        return;
    }
}

static void vm_maybe_reap(script_vm *vm)
{
    if (vm->retired && vm->ncos == 0 && !vm->reap_scheduled) {
        vm->reap_scheduled = true;
        script_defer(vm_reap, vm);
    }
}

/* Take vm out of service: no new timers or subscriptions; runtime coroutines end. */
static void vm_retire(script_vm *vm)
{
    if (vm->retired) return;
    vm->retired = true;
    if (R.system == vm) R.system = NULL;
    for (int i = 0; i < R.ntenants; i++)
        if (R.tenants[i].vm == vm) {
            R.tenants[i] = R.tenants[--R.ntenants];
            break;
        }
    vm->next_retired = R.retired;
    R.retired = vm;
    vm_close_res(vm);
    vm_kill_cos(vm, true);
    vm_maybe_reap(vm);
}

static void vm_open_module(script_vm *vm, const struct module *m)
{
    lua_State *L = vm->L;
    lua_pushcfunction(L, m->open);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
        log_error("script", "%s: module %s: %s", vm->name, m->name,
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "open did not return a table");
        lua_pop(L, 1);
        return;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, m->name);
    lua_pop(L, 1);
    const char *dot = strrchr(m->name, '.');
    if (!dot) {
        lua_setglobal(L, m->name);
        return;
    }
    /* "cw.crm": walk to the parent table through the globals */
    lua_pushglobaltable(L);
    const char *p = m->name;
    while (p < dot) {
        const char *e = strchr(p, '.');
        lua_pushlstring(L, p, (size_t)(e - p));
        if (lua_rawget(L, -2) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushlstring(L, p, (size_t)(e - p));
            lua_pushvalue(L, -2);
            lua_rawset(L, -4);
        }
        lua_remove(L, -2);
        p = e + 1;
    }
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, dot + 1);
    lua_pop(L, 2);
}

void script_add_module(const char *name, lua_CFunction open)
{
    R.mods = cw_realloc(R.mods, sizeof *R.mods * (size_t)(R.nmods + 1));
    struct module *m = &R.mods[R.nmods++];
    m->name = cw_strdup(name);
    m->open = open;
    if (R.system) vm_open_module(R.system, m);
    for (int i = 0; i < R.ntenants; i++)
        vm_open_module(R.tenants[i].vm, m);
}

script_vm *script_system(void)
{
    return R.system;
}

script_vm *script_tenant(int64_t domain_id)
{
    if (domain_id <= 0 || !R.up) return NULL;
    for (int i = 0; i < R.ntenants; i++)
        if (R.tenants[i].domain_id == domain_id) return R.tenants[i].vm;
    script_vm *vm = vm_new(domain_id);
    if (!vm) return NULL;
    if (R.ntenants == R.cap_tenants) {
        R.cap_tenants = R.cap_tenants ? R.cap_tenants * 2 : 16;
        R.tenants = cw_realloc(R.tenants, sizeof *R.tenants * (size_t)R.cap_tenants);
    }
    R.tenants[R.ntenants].domain_id = domain_id;
    R.tenants[R.ntenants].vm = vm;
    R.ntenants++;
    return vm;
}

lua_State *script_vm_state(script_vm *vm)
{
    return vm ? vm->L : NULL;
}

bool script_vm_sandboxed(const script_vm *vm)
{
    return vm->sandboxed;
}

int64_t script_vm_domain(const script_vm *vm)
{
    return vm->domain_id;
}

script_vm *script_vm_of(lua_State *L)
{
    return vm_of(L);
}

size_t script_vm_memory(const script_vm *vm)
{
    return vm->mem;
}

bool script_vm_retired(const script_vm *vm)
{
    return vm->retired;
}

const char *script_vm_name(const script_vm *vm)
{
    return vm->name;
}

int script_res_add(script_vm *vm, struct script_res *r)
{
    if (vm->retired) return CW_ESTATE;
    r->prev = NULL;
    r->next = vm->res;
    if (vm->res) vm->res->prev = r;
    vm->res = r;
    vm->nres++;
    return CW_OK;
}

void script_res_remove(script_vm *vm, struct script_res *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        vm->res = r->next;
    if (r->next) r->next->prev = r->prev;
    r->prev = r->next = NULL;
    vm->nres--;
}

int script_res_count(const script_vm *vm)
{
    return vm->nres;
}

/* ---- coroutines ---- */

static void describe(lua_State *L, int idx, char *out, size_t outlen)
{
    lua_Debug ar;
    lua_pushvalue(L, idx);
    if (lua_isfunction(L, -1) && lua_getinfo(L, ">S", &ar))
        snprintf(out, outlen, "%s:%d", ar.short_src, ar.linedefined);
    else {
        lua_pop(L, 1);
        snprintf(out, outlen, "(not a function)");
    }
}

static void co_run(script_co *co, int narg)
{
    script_vm *vm = co->vm;
    script_co_ref(co);
    script_co *prev_vm = vm->running, *prev = R.current;
    vm->running = co;
    R.current = co;
    co->state = CO_RUNNING;
    co->suspending = false;
    co->mem_refused = false;
    co->instr = 0;
    co->run_start_us = cw_mono_us();
    co->run_start_wait_us = vm->time_budget_us ? runq_wait_us() : 0;
    vm->enforce++;
    int nres = 0;
    int rc = lua_resume(co->L, prev ? prev->L : NULL, narg, &nres);
    vm->enforce--;
    vm->running = prev_vm;
    R.current = prev;

    if (co->abort) {
        co_finish(co, co->abort, co->abort_msg);
    } else if (rc == LUA_YIELD && co->suspending) {
        co->state = CO_SUSPENDED;
        lua_pop(co->L, nres);
    } else if (rc == LUA_YIELD) {
        co_finish(co, SCRIPT_ERROR, "attempt to yield from outside a coroutine");
    } else if (rc == LUA_OK) {
        co_finish(co, SCRIPT_DONE, NULL);
    } else {
        const char *msg = lua_type(co->L, -1) == LUA_TSTRING ? lua_tostring(co->L, -1) : NULL;
        bool memory = rc == LUA_ERRMEM ||
                      (co->mem_refused && msg && strstr(msg, "not enough memory") != NULL);
        if (memory) {
            char m[96];
            snprintf(m, sizeof m, "memory cap of %zu bytes reached", vm->mem_cap);
            co_finish(co, SCRIPT_MEMORY, m);
        } else {
            char m[512];
            snprintf(m, sizeof m, "%s", msg ? msg : "(error object is not a string)");
            if (log_enabled("script", LOG_DEBUG)) {
                luaL_traceback(vm->L, co->L, m, 0);
                log_debug("script", "%s: %s", vm->name, lua_tostring(vm->L, -1));
                lua_pop(vm->L, 1);
            }
            co_finish(co, SCRIPT_ERROR, m);
        }
    }
    script_co_unref(co);
}

/* After a memory-cap hit: collect; if the VM is still nearly full its globals hold it. */
static void vm_after_memory_hit(script_vm *vm)
{
    lua_gc(vm->L, LUA_GCCOLLECT);
    if (vm->sandboxed && vm->mem_cap && vm->mem * POISON_DEN > vm->mem_cap * POISON_NUM &&
        !vm->retired) {
        log_warn("script",
                 "%s: still holds %zu of %zu bytes after a memory-cap hit; "
                 "replacing the VM (its running calls finish in the old one)",
                 vm->name, vm->mem, vm->mem_cap);
        vm_retire(vm);
    }
}

static void co_finish(script_co *co, enum script_status st, const char *msg)
{
    script_vm *vm = co->vm;
    if (co->cancel) {
        void (*fn)(void *) = co->cancel;
        co->cancel = NULL;
        fn(co->cancel_arg);
    }
    co->state = CO_ENDED;
    if (co->prev)
        co->prev->next = co->next;
    else
        vm->cos = co->next;
    if (co->next) co->next->prev = co->prev;
    co->prev = co->next = NULL;
    vm->ncos--;
    R.ncos--;
    R.ended[st]++;
    if (st == SCRIPT_KILLED)
        log_debug("script", "%s: %s: killed", vm->name, co->where);
    else if (st != SCRIPT_DONE) {
        char line[640];
        snprintf(line, sizeof line, "%s (%s): %s", co->where, script_status_name(st), msg);
        script_log(vm, LOG_WARN, line);
    }
    if (co->done) co->done(co, st, st == SCRIPT_DONE ? NULL : msg, co->done_arg);
    *(script_co **)lua_getextraspace(co->L) = &ended_marker;
    lua_settop(co->L, 0);
    luaL_unref(vm->L, LUA_REGISTRYINDEX, co->ref);
    co->L = NULL;
    co->vm = NULL;
    if (st == SCRIPT_MEMORY)
        vm_after_memory_hit(vm);
    else if (st == SCRIPT_BUDGET && vm->sandboxed)
        lua_gc(vm->L, LUA_GCCOLLECT); /* a runaway often leaves much garbage */
    vm_maybe_reap(vm);
}

static script_co *co_start(script_vm *vm, int nargs, script_done_fn done, void *arg, bool internal)
{
    if (!vm) return NULL;
    lua_State *L = vm->L;
    script_co *co = cw_calloc(1, sizeof *co);
    co->vm = vm;
    co->refcount = 1;
    co->internal = internal;
    co->done = done;
    co->done_arg = arg;
    describe(L, -(nargs + 1), co->where, sizeof co->where);
    lua_State *T = lua_newthread(L);
    *(script_co **)lua_getextraspace(T) = co;
    co->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    co->L = T;
    lua_checkstack(T, nargs + 1 + LUA_MINSTACK);
    lua_xmove(L, T, nargs + 1);
    co->next = vm->cos;
    if (vm->cos) vm->cos->prev = co;
    vm->cos = co;
    vm->ncos++;
    R.ncos++;
    R.started++;
    co_run(co, nargs);
    return co;
}

script_co *script_co_start(script_vm *vm, int nargs, script_done_fn done, void *arg)
{
    return co_start(vm, nargs, done, arg, false);
}

script_co *script_co_start_internal(script_vm *vm, int nargs, script_done_fn done, void *arg)
{
    return co_start(vm, nargs, done, arg, true);
}

script_co *script_co_of(lua_State *L)
{
    script_co *co = *(script_co **)lua_getextraspace(L);
    return co == &ended_marker ? NULL : co;
}

script_co *script_co_check(lua_State *L)
{
    script_co *co = script_co_of(L);
    if (!co || co->L != L)
        luaL_error(L, "cannot wait here: only the script's own coroutine can wait "
                      "(not inside coroutine.wrap or coroutine.create)");
    if (!lua_isyieldable(L))
        luaL_error(L, "cannot wait here: called through a C function "
                      "(a metamethod, table.sort, string.gsub, require...)");
    return co;
}

int script_co_suspend(lua_State *L)
{
    script_co *co = script_co_check(L);
    co->suspending = true;
    return lua_yield(L, 0);
}

void script_co_on_cancel(script_co *co, void (*fn)(void *arg), void *arg)
{
    co->cancel = fn;
    co->cancel_arg = arg;
}

lua_State *script_co_thread(script_co *co)
{
    return co ? co->L : NULL;
}

script_vm *script_co_vm(const script_co *co)
{
    return co ? co->vm : NULL;
}

bool script_co_resume(script_co *co, int nres)
{
    if (!co || co->state != CO_SUSPENDED) return false;
    co->cancel = NULL;
    co_run(co, nres);
    return true;
}

void script_co_kill(script_co *co)
{
    if (!co || co->state == CO_ENDED) return;
    if (co->state == CO_RUNNING) {
        if (!co->abort) {
            co->abort = SCRIPT_KILLED;
            snprintf(co->abort_msg, sizeof co->abort_msg, "killed");
        }
        lua_sethook(co->L, hook, LUA_MASKCOUNT, 1);
        return;
    }
    script_co_ref(co);
    co_finish(co, SCRIPT_KILLED, "killed");
    script_co_unref(co);
}

bool script_co_suspended(const script_co *co)
{
    return co && co->state == CO_SUSPENDED;
}

bool script_co_ended(const script_co *co)
{
    return !co || co->state == CO_ENDED;
}

void script_co_ref(script_co *co)
{
    if (co) co->refcount++;
}

void script_co_unref(script_co *co)
{
    if (!co) return;
    if (co->refcount == 1 && co->state == CO_SUSPENDED) {
        co->refcount++; /* kill takes and drops its own */
        script_co_kill(co);
        co->refcount--;
    }
    if (--co->refcount == 0) free(co);
}

void script_co_set_user(script_co *co, void *user)
{
    co->user = user;
}

void *script_co_user(const script_co *co)
{
    return co->user;
}

/* ---- loading ---- */

int script_compile(script_vm *vm, const char *chunkname, const char *code, char *err, size_t errlen)
{
    if (!vm || !code) {
        snprintf(err, errlen, "no VM or no code");
        return CW_EINVAL;
    }
    vm->enforce++;
    int rc = luaL_loadbufferx(vm->L, code, strlen(code), chunkname, "t");
    vm->enforce--;
    if (rc != LUA_OK) {
        snprintf(err, errlen, "%s",
                 rc == LUA_ERRMEM ? "not enough memory" : lua_tostring(vm->L, -1));
        lua_pop(vm->L, 1);
        return CW_EINVAL;
    }
    return CW_OK;
}

struct load_result {
    bool ended;
    enum script_status st;
    char err[512];
};

static void load_done(script_co *co, enum script_status st, const char *err, void *arg)
{
    struct load_result *r = arg;
    if (!r) return; /* ended later, in the background: already logged */
    r->ended = true;
    r->st = st;
    if (err) cw_strlcpy(r->err, err, sizeof r->err);
}

static int run_chunk(script_vm *vm, char *err, size_t errlen)
{
    struct load_result r = {0};
    script_co *co = script_co_start_internal(vm, 0, load_done, &r);
    if (!script_co_ended(co)) co->done_arg = NULL;
    script_co_unref(co);
    if (r.ended && r.st != SCRIPT_DONE) {
        snprintf(err, errlen, "%s", r.err);
        return CW_EINVAL;
    }
    return CW_OK;
}

int script_load_string(script_vm *vm, const char *chunkname, const char *code, char *err,
                       size_t errlen)
{
    int rc = script_compile(vm, chunkname, code, err, errlen);
    if (rc) return rc;
    return run_chunk(vm, err, errlen);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The top-level *.lua files of scripts_dir, sorted; count returned. */
static int list_scripts(char ***out)
{
    const char *dir = config_str("scripts_dir");
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        log_info("script", "no scripts folder %s: no system scripts", dir);
        return 0;
    }
    int n = 0;
    char **names = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0) continue;
        char *path = cw_sprintf("%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            free(path);
            continue;
        }
        names = cw_realloc(names, sizeof *names * (size_t)(n + 1));
        names[n++] = path;
    }
    closedir(d);
    if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    return n;
}

/*
 * Build a system VM and compile every script into it (functions left on
 * its stack, in order). NULL with the first compile error logged.
 */
static script_vm *system_build(int *nscripts, char ***paths)
{
    script_vm *vm = vm_new(0);
    if (!vm) return NULL;
    char **names;
    int n = list_scripts(&names);
    for (int i = 0; i < n; i++) {
        if (luaL_loadfilex(vm->L, names[i], "t") != LUA_OK) {
            log_error("script", "%s", lua_tostring(vm->L, -1));
            for (int j = 0; j < n; j++)
                free(names[j]);
            free(names);
            vm_free(vm);
            return NULL;
        }
    }
    *nscripts = n;
    *paths = names;
    return vm;
}

static void system_run(script_vm *vm, int n, char **paths)
{
    /* the compiled chunks are on the stack, first script lowest */
    int base = lua_gettop(vm->L) - n;
    for (int i = 0; i < n; i++) {
        char err[512];
        lua_pushvalue(vm->L, base + 1 + i);
        if (run_chunk(vm, err, sizeof err) == CW_OK)
            log_info("script", "loaded %s", paths[i]);
        else
            log_error("script", "%s failed: %s", paths[i], err);
        free(paths[i]);
    }
    lua_settop(vm->L, base);
    free(paths);
}

static struct {
    metric *vms, *cos, *ended, *memory, *http;
} LM;

static void collect_lua(void *arg)
{
    struct script_stats s;
    script_get_stats(&s);
    metrics_set(LM.vms, s.vms);
    metrics_set(LM.cos, s.coroutines);
    metrics_set(LM.memory, (double)s.tenant_memory);
    for (int i = 0; i <= SCRIPT_KILLED; i++)
        metrics_set(LM.ended, (double)s.ended[i], script_status_name((enum script_status)i));
    metrics_set(LM.http, httpc_active());
}

static void metrics_declare(void)
{
    static bool done;
    if (done) return;
    done = true;
    LM.vms = metrics_gauge("cw_lua_vms", "Lua VMs, system and tenants", NULL);
    LM.cos = metrics_gauge("cw_lua_coroutines", "Script coroutines alive", NULL);
    LM.ended = metrics_counter("cw_lua_coroutines_ended_total", "Script coroutines ended, by how",
                               "status");
    LM.memory = metrics_gauge("cw_lua_tenant_memory_bytes", "Memory held by tenant Lua VMs", NULL);
    LM.http = metrics_gauge("cw_http_client_active", "Outbound HTTP transfers in flight", NULL);
    metrics_on_collect(collect_lua, NULL);
}

int script_init(void)
{
    if (R.up) return CW_OK;
    metrics_declare();
    sched_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    R.defer_ev = event_new(loop_base(), -1, 0, on_defer, NULL);
    R.up = true;
    int n;
    char **paths;
    script_vm *vm = system_build(&n, &paths);
    if (!vm) {
        /* the daemon runs without system scripts rather than not at all */
        log_error("script", "system scripts not loaded; fix them and send SIGHUP");
        vm = vm_new(0);
        if (!vm) return CW_ENOMEM;
        n = 0;
        paths = NULL;
    }
    R.system = vm;
    system_run(vm, n, paths);
    return CW_OK;
}

int script_reload(void)
{
    if (!R.up) return CW_ESTATE;
    int n;
    char **paths;
    script_vm *vm = system_build(&n, &paths);
    if (!vm) {
        log_error("script", "reload refused: a script does not compile; the running scripts stay");
        return CW_EINVAL;
    }
    if (R.system) vm_retire(R.system);
    while (R.ntenants > 0)
        vm_retire(R.tenants[0].vm);
    R.system = vm;
    system_run(vm, n, paths);
    log_info("script", "scripts reloaded");
    return CW_OK;
}

void script_shutdown(void)
{
    if (!R.up) return;
    if (R.system) vm_retire(R.system);
    while (R.ntenants > 0)
        vm_retire(R.tenants[0].vm);
    /* retired VMs: end everything, external coroutines included */
    while (R.retired) {
        script_vm *vm = R.retired;
        R.retired = vm->next_retired;
        vm_free(vm);
    }
    on_defer(-1, 0, NULL); /* queued reaps find their VM gone and do nothing */
    if (R.defer_ev) event_free(R.defer_ev);
    R.defer_ev = NULL;
    for (int i = 0; i < R.nmods; i++)
        free(R.mods[i].name);
    free(R.mods);
    free(R.tenants);
    memset(&R, 0, sizeof R);
    if (sched_fd >= 0) close(sched_fd);
    sched_fd = -1;
}

void script_get_stats(struct script_stats *out)
{
    memset(out, 0, sizeof *out);
    out->vms = (R.system ? 1 : 0) + R.ntenants;
    for (script_vm *vm = R.retired; vm; vm = vm->next_retired)
        out->vms++;
    out->coroutines = R.ncos;
    out->started = R.started;
    memcpy(out->ended, R.ended, sizeof out->ended);
    for (int i = 0; i < R.ntenants; i++)
        out->tenant_memory += R.tenants[i].vm->mem;
}
