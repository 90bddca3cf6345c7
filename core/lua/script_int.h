/*
 * script_int.h - what the files of core/lua share; not for use outside it.
 */
#ifndef CW_SCRIPT_INT_H
#define CW_SCRIPT_INT_H

#include "lua/script.h"
#include "log/log.h"

/*
 * Something a VM owns that must be let go when the VM is retired or closed
 * (timers, event subscriptions). close() is called once, after the entry
 * was unlinked; it must not run Lua code.
 */
struct script_res {
    struct script_res *prev, *next;
    void (*close)(struct script_res *r);
};

/* Link r into vm; CW_ESTATE when the VM is retired (nothing linked). */
int script_res_add(script_vm *vm, struct script_res *r);
void script_res_remove(script_vm *vm, struct script_res *r);
int script_res_count(const script_vm *vm);
bool script_vm_retired(const script_vm *vm);
/* "system" or "domain 12", for messages. */
const char *script_vm_name(const script_vm *vm);

/*
 * Start a coroutine owned by the runtime (script bodies, timer and event
 * handlers): killed when its VM is retired. Same stack protocol as
 * script_co_start(); returns the coroutine with the caller's reference.
 */
script_co *script_co_start_internal(script_vm *vm, int nargs, script_done_fn done, void *arg);

/* Run fn(arg) on the core loop soon, after what is queued before it. */
void script_defer(void (*fn)(void *arg), void *arg);

/* Log a line on behalf of the VM's scripts (rate-limited for tenants). */
void script_log(script_vm *vm, enum log_level lvl, const char *msg);

/*
 * Token bucket per VM for things a tenant could flood (events emitted,
 * timers started): true if one more is allowed now.
 */
bool script_vm_allow_emit(script_vm *vm);

/*
 * Charge work done in C for the running tenant script (pattern matching)
 * to its instruction and time budget; raises a Lua error once it is spent.
 * No-op outside tenant coroutines.
 */
void script_charge(lua_State *L, unsigned units);
/* Replace string.find/match/gmatch/gsub with the budgeted ones (lpattern.c). */
void script_open_patterns(lua_State *L);

/* The cw module (cwlib.c); leaves the table on the stack. */
int cwlib_open(lua_State *L);
/* The JSON sentinel pushed for null. */
void script_push_null(lua_State *L);
bool script_is_null(lua_State *L, int idx);
/* Light userdata key of the cw module's null value. */
extern const char script_null_key;

#endif
