/*
 * luajson.c - JSON values to Lua and back, for events, HTTP bodies and the
 * call API.
 *
 * Lua to JSON never raises a Lua error (it reads the table with raw access
 * and no conversions), so a partly built JSON value is never leaked.
 */
#include "lua/script_int.h"
#include "base/cw.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 64

const char script_null_key = 0;

void script_push_null(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&script_null_key);
}

bool script_is_null(lua_State *L, int idx)
{
    return lua_touserdata(L, idx) == &script_null_key;
}

static void push_json(lua_State *L, json_t *j, int depth)
{
    luaL_checkstack(L, 3, "JSON nested too deep");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            push_json(L, v, depth + 1);
            lua_setfield(L, -2, k);
        }
        break;
    }
    case JSON_ARRAY: {
        lua_createtable(L, (int)json_array_size(j), 0);
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            push_json(L, v, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(j));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(j));
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    case JSON_NULL:
        script_push_null(L);
        break;
    }
}

void script_push_json(lua_State *L, json_t *j)
{
    if (!j)
        script_push_null(L);
    else
        push_json(L, j, 0);
}

struct conv {
    char *err;
    size_t errlen;
    cw_buf path;
};

static json_t *conv_fail(struct conv *c, const char *fmt, const char *detail)
{
    char what[160];
    snprintf(what, sizeof what, fmt, detail);
    bool cut = c->path.len > 100;
    snprintf(c->err, c->errlen, "%s: %.100s%s", what, c->path.data, cut ? "..." : "");
    return NULL;
}

static json_t *to_json(lua_State *L, int idx, struct conv *c, int depth);

/* A table with exactly the keys 1..n (n > 0) is an array. */
static bool is_array(lua_State *L, int idx, lua_Integer *n)
{
    lua_Integer count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1)) {
            lua_pop(L, 1);
            return false;
        }
        lua_Integer k = lua_tointeger(L, -1);
        if (k < 1) {
            lua_pop(L, 1);
            return false;
        }
        if (k > max) max = k;
        count++;
    }
    *n = count;
    return count > 0 && count == max;
}

static json_t *table_to_json(lua_State *L, int idx, struct conv *c, int depth)
{
    size_t mark = c->path.len;
    lua_Integer n;
    if (is_array(L, idx, &n)) {
        json_t *arr = json_array();
        for (lua_Integer i = 1; i <= n; i++) {
            cw_buf_printf(&c->path, "[%lld]", (long long)i);
            lua_rawgeti(L, idx, i);
            json_t *v = to_json(L, lua_gettop(L), c, depth + 1);
            lua_pop(L, 1);
            if (!v) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, v);
            c->path.len = mark;
            c->path.data[mark] = '\0';
        }
        return arr;
    }
    json_t *obj = json_object();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        char keybuf[32];
        const char *key;
        size_t klen;
        if (lua_type(L, -2) == LUA_TSTRING) {
            key = lua_tolstring(L, -2, &klen);
        } else if (lua_isinteger(L, -2)) {
            klen = (size_t)snprintf(keybuf, sizeof keybuf, "%lld", (long long)lua_tointeger(L, -2));
            key = keybuf;
        } else {
            const char *tn = luaL_typename(L, -2);
            lua_pop(L, 2);
            json_decref(obj);
            return conv_fail(c, "a %s cannot be a key", tn);
        }
        if (strlen(key) != klen) {
            lua_pop(L, 2);
            json_decref(obj);
            return conv_fail(c, "a key holds a zero byte%s", "");
        }
        cw_buf_printf(&c->path, ".%s", key);
        json_t *v = to_json(L, lua_gettop(L), c, depth + 1);
        if (!v) {
            lua_pop(L, 2);
            json_decref(obj);
            return NULL;
        }
        if (json_object_setn_new(obj, key, klen, v)) {
            lua_pop(L, 2);
            json_decref(obj);
            return conv_fail(c, "key is not valid UTF-8%s", "");
        }
        c->path.len = mark;
        c->path.data[mark] = '\0';
        lua_pop(L, 1);
    }
    return obj;
}

static json_t *to_json(lua_State *L, int idx, struct conv *c, int depth)
{
    if (depth > MAX_DEPTH || !lua_checkstack(L, 4))
        return conv_fail(c, "nested deeper than %s levels (or a table contains itself)", "64");
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) return json_integer((json_int_t)lua_tointeger(L, idx));
        {
            double d = lua_tonumber(L, idx);
            if (!isfinite(d)) return conv_fail(c, "%s is not a JSON number", "inf or nan");
            return json_real(d);
        }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        json_t *j = json_stringn(s, len);
        if (!j) return conv_fail(c, "string is not valid UTF-8%s", "");
        return j;
    }
    case LUA_TTABLE:
        return table_to_json(L, idx, c, depth);
    case LUA_TLIGHTUSERDATA:
        if (script_is_null(L, idx)) return json_null();
        /* fall through */
    default:
        return conv_fail(c, "a %s cannot be sent as JSON", luaL_typename(L, idx));
    }
}

json_t *script_to_json(lua_State *L, int idx, const char *what, char *err, size_t errlen)
{
    struct conv c = {.err = err, .errlen = errlen};
    cw_buf_init(&c.path);
    cw_buf_puts(&c.path, what ? what : "value");
    json_t *j = to_json(L, lua_absindex(L, idx), &c, 0);
    cw_buf_free(&c.path);
    return j;
}
