/*
 * call_ringlist.c - ring lists (seed 002) as calls see them: resolve() of a
 * list's extension, and call:ring_list(key) with everything a script needs
 * to ring one (scripts/cw/ringlist.lua does the ringing with call:bridge()).
 *
 * The lists themselves are data of API v1 (core/domain/callctl.c). Sound
 * files are given as paths, resolved in the call's domain at call time, so
 * a sound deleted since is simply absent. Core thread only; reads the store.
 */
#include "base/cw.h"
#include "call/call_int.h"
#include "lua/script.h"
#include "store/store.h"

#include <jansson.h>
#include <string.h>

int call_ringlist_resolve(lua_State *L, int64_t domain_id, const char *number)
{
    store_res *r;
    int n = 0;
    if (store_query(store_main(), &r,
                    "SELECT id, name, extension FROM ring_lists WHERE domain_id = ? AND "
                    "extension = ?",
                    SA_INT(domain_id), SA_STR(number), SA_END) >= 0 &&
        store_next(r)) {
        lua_createtable(L, 0, 4);
        lua_pushstring(L, "ring_list"), lua_setfield(L, -2, "kind");
        lua_pushinteger(L, store_int(r, 0)), lua_setfield(L, -2, "id");
        lua_pushstring(L, store_str(r, 1)), lua_setfield(L, -2, "name");
        lua_pushstring(L, store_str(r, 2)), lua_setfield(L, -2, "extension");
        n = 1;
    }
    store_res_free(r);
    return n;
}

static void push_members(lua_State *L, int64_t list_id)
{
    lua_newtable(L);
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT number, lines, schedule FROM ring_list_members WHERE list_id = ? "
                    "ORDER BY position",
                    SA_INT(list_id), SA_END) < 0)
        return;
    for (int i = 1; store_next(r); i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, store_str(r, 0)), lua_setfield(L, -2, "number");
        lua_pushinteger(L, store_int(r, 1)), lua_setfield(L, -2, "lines");
        json_t *sch = store_str(r, 2) ? json_loads(store_str(r, 2), 0, NULL) : NULL;
        if (sch && !json_is_null(sch)) {
            script_push_json(L, sch);
            lua_setfield(L, -2, "schedule");
        }
        json_decref(sch);
        lua_rawseti(L, -2, i);
    }
    store_res_free(r);
}

/*
 * call:ring_list(key) -> the list, or nil. key: its id, extension or name, or
 * "default" (the domain's default list). The table: id, name, extension,
 * method, answer_timeout, retries, retry_pause, ring_sound, pause_sound (file
 * paths or nil), announce_caller, record, is_default, language (the list's or
 * the domain's), members = {{number, lines, schedule}, ...} in order.
 */
static int l_ring_list(lua_State *L)
{
    call *c = call_lua_check(L);
    if (!c) return 0;
    int64_t dom = call_domain(c);
    int64_t id = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : 0;
    const char *key = id ? "" : luaL_checkstring(L, 2);
    bool by_default = !id && !strcmp(key, "default");
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT l.id, l.name, l.extension, l.method, l.answer_timeout, l.retries, "
                    "l.retry_pause, (SELECT path FROM sound_files f WHERE f.id = l.ring_sound_id "
                    "AND f.domain_id = l.domain_id), (SELECT path FROM sound_files f WHERE f.id = "
                    "l.pause_sound_id AND f.domain_id = l.domain_id), l.announce_caller, l.record, "
                    "l.is_default, COALESCE(l.language, d.language) "
                    "FROM ring_lists l JOIN domains d ON d.id = l.domain_id WHERE l.domain_id = ? "
                    "AND (l.id = ? OR (? = 1 AND l.is_default = 1) OR (? = 0 AND ? = 0 AND "
                    "(l.extension = ? OR l.name = ?))) ORDER BY l.id LIMIT 1",
                    SA_INT(dom), SA_INT(id), SA_INT(by_default), SA_INT(by_default), SA_INT(id),
                    SA_STR(key), SA_STR(key), SA_END) < 0 ||
        !store_next(r)) {
        store_res_free(r);
        return 0;
    }
    lua_createtable(L, 0, 14);
    int64_t list_id = store_int(r, 0);
    lua_pushinteger(L, list_id), lua_setfield(L, -2, "id");
    lua_pushstring(L, store_str(r, 1)), lua_setfield(L, -2, "name");
    lua_pushstring(L, store_str(r, 2)), lua_setfield(L, -2, "extension");
    lua_pushstring(L, store_str(r, 3)), lua_setfield(L, -2, "method");
    lua_pushinteger(L, store_int(r, 4)), lua_setfield(L, -2, "answer_timeout");
    lua_pushinteger(L, store_int(r, 5)), lua_setfield(L, -2, "retries");
    lua_pushinteger(L, store_int(r, 6)), lua_setfield(L, -2, "retry_pause");
    if (store_str(r, 7)) lua_pushstring(L, store_str(r, 7)), lua_setfield(L, -2, "ring_sound");
    if (store_str(r, 8)) lua_pushstring(L, store_str(r, 8)), lua_setfield(L, -2, "pause_sound");
    lua_pushboolean(L, store_int(r, 9) != 0), lua_setfield(L, -2, "announce_caller");
    lua_pushboolean(L, store_int(r, 10) != 0), lua_setfield(L, -2, "record");
    lua_pushboolean(L, store_int(r, 11) != 0), lua_setfield(L, -2, "is_default");
    lua_pushstring(L, store_str(r, 12)), lua_setfield(L, -2, "language");
    store_res_free(r);
    push_members(L, list_id);
    lua_setfield(L, -2, "members");
    return 1;
}

const luaL_Reg call_ringlist_methods[] = {
    {"ring_list", l_ring_list},
    {NULL, NULL},
};
