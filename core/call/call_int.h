/*
 * call_int.h - what the files of call/ share; not for other folders.
 */
#ifndef CW_CALL_INT_H
#define CW_CALL_INT_H

#include "call/call.h"

/* Start the routing script for a new inbound call (call_lua.c). */
void call_lua_route(call *c);
/* Register the Lua `call` API (call_lua.c). */
void call_lua_init(void);
/* HTTP endpoints for live calls and supervisor actions (call_api.c). */
void call_api_init(void);

#endif
