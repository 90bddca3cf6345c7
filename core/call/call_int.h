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
int call_fax_lua_send(lua_State *L);
int call_fax_lua_last(lua_State *L);

#endif
