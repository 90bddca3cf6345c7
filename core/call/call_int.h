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
/* Route a call whose tenant script failed: dialplan.fallback(call, to) in the system VM. */
void call_lua_fallback(call *c, const char *to);
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
/*
 * Media features of the call object: conference rooms (call_conf.c), fax
 * (call_fax.c), recording variants (call_media.c). call_media_methods is
 * added to the method table like call_vm_methods.
 */
extern const luaL_Reg call_media_methods[];
/* Their API routes and state (call_init); dropped first thing in call_shutdown(). */
void call_media_init(void);
void call_media_shutdown(void);
/*
 * Every media event passes here first (call.c, before the leg lookup):
 * rooms follow who talks and who left, fax jobs their results. True when
 * the event was for these features only (a room recording's RECORD_DONE).
 */
bool call_media_event(const struct media_event *ev);
/* resolve() for a conference room's extension: pushes the target and returns 1, else 0. */
int call_conf_resolve(lua_State *L, int64_t domain_id, const char *number);
/* The same for a ring list's extension (call_ringlist.c), and call:ring_list(). */
int call_ringlist_resolve(lua_State *L, int64_t domain_id, const char *number);
extern const luaL_Reg call_ringlist_methods[];
/*
 * Record the conversation of c (its A leg bridged to a B leg) from now on,
 * stereo; the file becomes a row of recordings (with the ring list, if not 0)
 * when it is complete, and the CDR links it (call_media.c).
 */
int call_record_conversation(call *c, int64_t ring_list_id);
/* When a recording made now expires: the domain's retention in months (call_conf.c). */
int64_t call_retention_end(int64_t domain, int64_t from);

/* Inside the media features (call_conf.c, call_fax.c). */
void call_conf_init(void);
void call_conf_shutdown(void);
bool call_conf_event(const struct media_event *ev);
int call_conf_lua_join(lua_State *L);
int call_conf_lua_room(lua_State *L);
int call_conf_lua_result(lua_State *L);
void call_fax_init(void);
void call_fax_shutdown(void);
bool call_fax_event(const struct media_event *ev);
int call_fax_lua_receive(lua_State *L);
/*
 * Receive a fax on leg l (answered) of call c into a box: a user, a group,
 * or with both 0 the domain's list. Its row, protocol and mail follow as for
 * call:fax_receive(); MEDIA_EV_FAX_DONE with tag ends it.
 */
int call_fax_receive_leg(call *c, call_leg *l, int64_t user, int64_t group, uint32_t tag);
int call_fax_lua_send(lua_State *L);
int call_fax_lua_last(lua_State *L);

#endif
