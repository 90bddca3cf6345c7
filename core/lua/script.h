/*
 * script.h - embedded Lua 5.4: the trusted system VM and sandboxed tenant VMs,
 * and coroutines that C code can suspend and resume.
 *
 * Runs on the core thread only. The system VM runs the scripts under
 * scripts_dir (*.lua at its top level, in name order) and may require the
 * library modules below it (the cw folder) and the IVR flows; it is trusted
 * (only a long time budget, lua.system_time_budget_ms, guards it). Each
 * tenant gets its own VM lazily, sandboxed: no io, os (but os.time, os.date,
 * os.clock, os.difftime), debug, package, load of binary chunks,
 * string.dump or __gc metamethods; require loads only Lua text from
 * scripts_dir and flows_dir. A tenant VM has a memory cap (counting
 * allocator, lua.memory_cap) and an instruction and wall-time budget per
 * resume (count hook, lua.instruction_budget, lua.time_budget_ms).
 * A script error or an exhausted budget ends that coroutine with a status
 * reported to its owner and logged; it never stops the daemon.
 *
 * Every VM has the `cw` module (log, events, timers, HTTP, domain model;
 * see scripts/README.md) and the modules added with script_add_module().
 */
#ifndef CW_SCRIPT_H
#define CW_SCRIPT_H

#include <jansson.h>
#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct script_vm script_vm;
typedef struct script_co script_co;

/* Create the system VM and run the scripts (needs loop_init() and the store). */
int script_init(void);
/* Kill every coroutine (done callbacks run) and close every VM. */
void script_shutdown(void);
/*
 * Reload (SIGHUP): a new system VM compiles every script first; if one does
 * not compile the running VM is kept and CW_EINVAL returned. Otherwise the
 * old system VM and all tenant VMs are retired: their timers and
 * subscriptions are cancelled and the coroutines the runtime started
 * (script bodies, timer and event handlers) are killed, while coroutines
 * started by C code (calls) run to their end in the old VM. Tenant VMs are
 * rebuilt on next use.
 */
int script_reload(void);

/*
 * VMs. A VM pointer is good until the VM is retired (reload, or a tenant VM
 * left full after a memory-cap hit): ask script_system() / script_tenant()
 * again for each new coroutine instead of keeping it.
 */
script_vm *script_system(void);
/* The tenant's VM, created on first use; NULL if domain_id <= 0 or it cannot be built. */
script_vm *script_tenant(int64_t domain_id);
lua_State *script_vm_state(script_vm *vm);
bool script_vm_sandboxed(const script_vm *vm);
/* 0 for the system VM. */
int64_t script_vm_domain(const script_vm *vm);
/* The VM a Lua state (any of its threads) belongs to. */
script_vm *script_vm_of(lua_State *L);
/* Bytes the VM's Lua state holds now. */
size_t script_vm_memory(const script_vm *vm);

/*
 * Modules that C subsystems add to every VM (system and tenant, existing
 * and future): open is called with the VM's state and must leave one table
 * on the stack, which becomes the global `name` and require(name). A dotted
 * name ("cw.crm") becomes a field of the existing global table ("cw").
 * name is copied. A failing open is logged and skipped for that VM.
 */
void script_add_module(const char *name, lua_CFunction open);

/* ---- coroutines ---- */

enum script_status {
    SCRIPT_DONE = 0, /* returned normally */
    SCRIPT_ERROR,    /* raised an error */
    SCRIPT_BUDGET,   /* instruction or time budget exhausted */
    SCRIPT_MEMORY,   /* memory cap hit */
    SCRIPT_KILLED,   /* script_co_kill(), or its last reference released while suspended */
};
const char *script_status_name(enum script_status st);

/*
 * Called once when the coroutine ends; err is NULL on SCRIPT_DONE. During
 * the call with SCRIPT_DONE, script_co_thread(co) holds the function's
 * return values (lua_gettop() of them); they are dropped afterwards.
 */
typedef void (*script_done_fn)(script_co *co, enum script_status st, const char *err, void *arg);

/*
 * Run fn(args...) in a new coroutine of vm. Before the call, push the
 * function and nargs arguments onto script_vm_state(vm). Runs at once until
 * the first suspension or the end (done may be called before this returns).
 * The caller owns the one reference the new coroutine has. Returns NULL
 * only if vm is NULL.
 */
script_co *script_co_start(script_vm *vm, int nargs, script_done_fn done, void *arg);

/*
 * Suspending from a C function called by Lua:
 *   script_co *co = script_co_check(L);  -- raises a Lua error if L cannot suspend
 *   ...start the operation; whoever will resume holds a reference...
 *   return script_co_suspend(L);
 * script_co_check() comes first so nothing is started when suspension is
 * impossible (inside coroutine.wrap, a metamethod, table.sort...).
 * The coroutine stays suspended until script_co_resume() or its end.
 */
script_co *script_co_check(lua_State *L);
int script_co_suspend(lua_State *L);
/*
 * While suspended: fn(arg) is called if the coroutine ends without being
 * resumed (killed, its VM closed) so the pending operation can be dropped.
 * Cleared by script_co_resume().
 */
void script_co_on_cancel(script_co *co, void (*fn)(void *arg), void *arg);
/* The coroutine running on L (NULL if L is not a script coroutine's own thread). */
script_co *script_co_of(lua_State *L);
/* The coroutine's own Lua thread (push resume values onto it); NULL once ended. */
lua_State *script_co_thread(script_co *co);
/* Its VM; NULL once ended. */
script_vm *script_co_vm(const script_co *co);
/*
 * Resume a suspended coroutine; nres values already pushed on its thread
 * become the results of the suspended call. Returns false when the
 * coroutine is not suspended (already ended, killed or running).
 */
bool script_co_resume(script_co *co, int nres);
/*
 * End a coroutine from outside (call hung up and script must stop). A
 * suspended one ends at once (its cancel function and done callback run);
 * a running one (kill from a function it called) stops at its next VM
 * instruction. To-be-closed variables of a killed coroutine are not closed.
 */
void script_co_kill(script_co *co);
bool script_co_suspended(const script_co *co);
bool script_co_ended(const script_co *co);
/*
 * Reference counting: the creator holds one reference. Releasing the last
 * reference to a coroutine that is still suspended kills it first.
 */
void script_co_ref(script_co *co);
void script_co_unref(script_co *co);
/* Per-coroutine user pointer (e.g. the call). */
void script_co_set_user(script_co *co, void *user);
void *script_co_user(const script_co *co);

/*
 * Compile Lua text (never binary) and push the chunk as a function onto
 * script_vm_state(vm). Errors (with line) go to err; nothing is pushed.
 */
int script_compile(script_vm *vm, const char *chunkname, const char *code, char *err,
                   size_t errlen);
/*
 * Compile and run a chunk in a new coroutine of vm. Returns 0 when it ran to
 * its end or is suspended (it then goes on in the background, logged if it
 * fails later); CW_EINVAL with the message in err when it did not compile
 * or failed before its first suspension.
 */
int script_load_string(script_vm *vm, const char *chunkname, const char *code, char *err,
                       size_t errlen);

/* ---- values ---- */

/* Push a JSON value as Lua (objects and arrays become tables, null becomes cw.null). */
void script_push_json(lua_State *L, json_t *j);
/*
 * Convert the Lua value at idx to JSON (new reference). Tables with keys
 * 1..n become arrays, other tables objects. NULL with a message naming the
 * offending path ("data.items[2]") for functions, cycles, bad UTF-8...
 */
json_t *script_to_json(lua_State *L, int idx, const char *what, char *err, size_t errlen);

/* ---- figures (metrics) ---- */
struct script_stats {
    int vms;              /* live VMs, system included */
    int coroutines;       /* live coroutines */
    uint64_t started;     /* coroutines started */
    uint64_t ended[5];    /* by enum script_status */
    size_t tenant_memory; /* bytes held by tenant VMs */
};
void script_get_stats(struct script_stats *out);

#endif
