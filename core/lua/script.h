/*
 * script.h - embedded Lua 5.4: the trusted system VM and sandboxed tenant VMs,
 * and coroutines that C code can suspend and resume.
 *
 * Runs on the core thread only. The system VM loads the library under
 * scripts_dir (cw/*.lua) and the IVR flows; it is trusted. Each tenant gets
 * its own VM lazily, sandboxed: no io, os (but os.time/os.date/os.clock),
 * debug, package.loadlib or C-module require; a memory cap (custom
 * allocator) and an instruction and wall-time budget per resume (count hook).
 * A script error or an exhausted budget ends that coroutine with an error
 * reported to its owner and logged; it never stops the daemon.
 */
#ifndef CW_SCRIPT_H
#define CW_SCRIPT_H

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct script_vm script_vm;
typedef struct script_co script_co;

int script_init(void);
void script_shutdown(void);
/* Reload the library and flows (SIGHUP); tenant VMs are rebuilt on next use. */
int script_reload(void);

script_vm *script_system(void);
script_vm *script_tenant(int64_t domain_id);
lua_State *script_vm_state(script_vm *vm);
bool script_vm_sandboxed(const script_vm *vm);

/*
 * Modules that C subsystems add to every VM (system and tenant): open is
 * called with the VM's state and must leave one table on the stack, which
 * becomes the global `name` (e.g. "cw" extensions, "call").
 */
void script_add_module(const char *name, lua_CFunction open);

/* ---- coroutines ---- */

enum script_status {
    SCRIPT_DONE = 0,     /* returned normally */
    SCRIPT_ERROR,        /* raised an error */
    SCRIPT_BUDGET,       /* instruction or time budget exhausted */
    SCRIPT_MEMORY,       /* memory cap hit */
    SCRIPT_KILLED,       /* script_co_kill() */
};

/* Called once when the coroutine ends; err is NULL on SCRIPT_DONE. */
typedef void (*script_done_fn)(script_co *co, enum script_status st, const char *err, void *arg);

/*
 * Run fn(args...) in a new coroutine of vm. Before the call, push the
 * function and nargs arguments onto script_vm_state(vm). Runs at once until
 * the first suspension or the end (done may be called before this returns).
 * Returns NULL only if vm is NULL.
 */
script_co *script_co_start(script_vm *vm, int nargs, script_done_fn done, void *arg);

/*
 * Suspend the running coroutine from inside a C function called by Lua:
 *   return script_co_suspend(L);
 * The coroutine stays suspended until script_co_resume().
 */
int script_co_suspend(lua_State *L);
/* The coroutine running on L (NULL if L is not a script coroutine). */
script_co *script_co_of(lua_State *L);
/* The coroutine's own Lua thread (push resume values onto it). */
lua_State *script_co_thread(script_co *co);
/*
 * Resume a suspended coroutine; nres values already pushed on its thread
 * become the results of the suspended call. Returns false when the
 * coroutine is not suspended (already ended or killed).
 */
bool script_co_resume(script_co *co, int nres);
/* End a coroutine from outside (call hung up and script must stop). */
void script_co_kill(script_co *co);
bool script_co_suspended(const script_co *co);
/* Reference counting: the creator holds one reference. */
void script_co_ref(script_co *co);
void script_co_unref(script_co *co);
/* Per-coroutine user pointer (e.g. the call). */
void script_co_set_user(script_co *co, void *user);
void *script_co_user(const script_co *co);

/* Load and run a chunk in vm (tenant code: text only). Errors are returned in err. */
int script_load_string(script_vm *vm, const char *chunkname, const char *code, char *err,
                       size_t errlen);

#endif
