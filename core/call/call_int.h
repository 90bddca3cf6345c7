/*
 * call_int.h - what the files of call/ share; not for other folders.
 */
#ifndef CW_CALL_INT_H
#define CW_CALL_INT_H

#include "call/call.h"

#include <lauxlib.h>
#include <lua.h>

/* Start the routing script for a new inbound call (call_lua.c). */
void call_lua_route(call *c);
/* Register the Lua `call` API (call_lua.c). */
void call_lua_init(void);
/* HTTP endpoints for live calls and supervisor actions (call_api.c). */
void call_api_init(void);

/* The call behind a Lua call object at stack index 1 (NULL once it is gone). */
call *call_lua_check(lua_State *L);
/*
 * For call methods written in other files of call/ (media features):
 *   uint32_t tag = call_lua_tag(L);   -- first: raises if the script cannot wait here
 *   ...start the media command on the A leg with tag...
 *   return call_lua_await(L, MEDIA_EV_FAX_DONE, tag);
 * suspends the script until that event comes for the A leg, resuming it
 * with (ok = reason == 0, {reason, ms, pages, resolution, hungup}), or
 * (nil, "hangup") when the caller hangs up and the event cannot come.
 * A tag of 0 means the call is gone: return call_lua_await() at once.
 */
uint32_t call_lua_tag(lua_State *L);
int call_lua_await(lua_State *L, enum media_event_type type, uint32_t tag);
/* Voicemail methods of the call object (call_vm.c), added to the method table. */
extern const luaL_Reg call_vm_methods[];

#endif
