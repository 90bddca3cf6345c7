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

/* Pickup and park (pickup.c, park.c): methods of the call object, added to the method table. */
extern const luaL_Reg call_pickup_methods[];
extern const luaL_Reg call_park_methods[];
/* What a transfer target means for park: 0 not a park code or slot, the free slot it
 * names (the code: the first free one), or CW_EBUSY when that slot or every slot is taken. */
int call_park_slot(int64_t domain_id, const char *target);
/* After a REFER to call_park_slot()'s slot: park keep there, tell from the slot and let it go. */
void call_park_refer(call *c, call_leg *keep, call_leg *from, int slot);
/* Park keep in slot (from: who parked it, NULL for the caller itself); CW_EBUSY when taken. */
int call_park(call *c, call_leg *keep, call_leg *from, int slot);
/* Park the other party of the call's bridged leg from (in-call ##<code>) and tell from the slot. */
int call_park_other(call *c, call_leg *from, int slot);
/* The caller's leg x of call taker takes the call parked in slot; CW_ENOENT when empty. */
int call_unpark(call *taker, call_leg *x, int slot);
/* The BLF id of a park slot (a negative number: users have positive ones); call_park_init()
 * lets phones watch slots by their number. */
int64_t call_park_blf_id(int64_t domain_id, int slot);
void call_park_init(void);

/* In-call DTMF codes (dtmf.c): a digit from a leg other than A; true when consumed. */
bool call_dtmf_feature(call *c, call_leg *l, char digit);

#endif
