/*
 * call_media.c - the media features of the Lua call object: conference
 * rooms (call_conf.c), fax (call_fax.c) and recording variants, gathered
 * into one method table; and the hook every media event passes first.
 *
 * The composed forms scripts normally use (call:conference() with its PIN
 * prompt, call:fax_receive() returning the fax's record) are written in
 * Lua on top of these: scripts/cw/conference.lua, scripts/cw/fax.lua.
 * Core thread only.
 */
#include "base/cw.h"
#include "call/call_int.h"

#include <stdlib.h>

/* call:record_pause(paused) pauses (true) or resumes (false) the call's recording. */
static int l_record_pause(lua_State *L)
{
    call *c = call_lua_check(L);
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    if (!c || leg_state(call_a_leg(c)) == LEG_ENDED) {
        lua_pushnil(L);
        lua_pushstring(L, "hangup");
        return 2;
    }
    int rc = media_record_pause(leg_media(call_a_leg(c)), lua_toboolean(L, 2));
    if (rc) {
        lua_pushnil(L);
        lua_pushstring(L, cw_strerror(rc));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

const luaL_Reg call_media_methods[] = {
    {"conference_join", call_conf_lua_join},
    {"conference_room", call_conf_lua_room},
    {"conference_result", call_conf_lua_result},
    {"fax_receive", call_fax_lua_receive},
    {"fax_send", call_fax_lua_send},
    {"fax_last", call_fax_lua_last},
    {"record_pause", l_record_pause},
    {NULL, NULL},
};

bool call_media_event(const struct media_event *ev)
{
    bool mine = call_conf_event(ev);
    return call_fax_event(ev) || mine;
}

void call_media_init(void)
{
    call_conf_init();
    call_fax_init();
}

void call_media_shutdown(void)
{
    call_conf_shutdown();
    call_fax_shutdown();
}
