/*
 * pickup.c - call pickup: answer, from one's own phone, a call that rings
 * on a colleague's.
 *
 * call:pickup() takes the call that has rung longest on a member of the
 * caller's pickup group (the domain's pickup code, *8 by default);
 * call:pickup(extension) takes a call ringing that extension of the
 * caller's domain (directed pickup, **<extension>). The picker's leg moves
 * into the ringing call in the ringing leg's place and is answered; the
 * ringing leg is cancelled, and whoever placed it (a routing script's
 * bridge, a transfer) sees the picker answer. A queue's offer to an agent
 * cannot be picked up (leg_pickable()).
 *
 * Core thread; keeps no state of its own.
 */
#include "base/cw.h"
#include "call/call_int.h"
#include "log/log.h"
#include "store/store.h"

#include <string.h>

#define MAX_MEMBERS 256

struct search {
    call *picker;
    int64_t picker_user;
    const int64_t *users; /* who may be picked from */
    int nusers;
    call_leg *found; /* the last match: calls are listed newest first */
};

static bool member(const struct search *s, int64_t user)
{
    for (int i = 0; i < s->nusers; i++)
        if (s->users[i] == user) return true;
    return false;
}

static bool search_call(call *c, void *arg)
{
    struct search *s = arg;
    if (c == s->picker || call_domain(c) != call_domain(s->picker)) return true;
    for (call_leg *l = call_legs(c); l; l = leg_next(l))
        if (leg_pickable(l) && leg_user(l) != s->picker_user && member(s, leg_user(l)))
            s->found = l;
    return true;
}

/* The members of the picker's pickup group; 0 when the picker is in none. */
static int group_members(int64_t user, int64_t *out, int max)
{
    store_res *r;
    int n = 0;
    if (store_query(store_main(), &r,
                    "SELECT m.user_id FROM pickup_members m JOIN pickup_members me"
                    " ON me.group_id = m.group_id WHERE me.user_id = ?",
                    SA_INT(user), SA_END) < 0)
        return 0;
    while (n < max && store_next(r))
        out[n++] = store_int(r, 0);
    store_res_free(r);
    return n;
}

static int64_t extension_user(int64_t domain_id, const char *ext)
{
    int64_t id = 0;
    store_query_int(
        store_main(), &id,
        "SELECT id FROM users WHERE domain_id = ? AND extension = ? AND status = 'active'",
        SA_INT(domain_id), SA_STR(ext), SA_END);
    return id;
}

/* The picker's leg x answers in place of the ringing leg r. */
static int take_over(call_leg *r, call_leg *x)
{
    call *c = leg_call(r);
    if (leg_state(x) != LEG_UP && (leg_outbound(x) || leg_answer(x))) return CW_ESTATE;
    struct leg_watch w = leg_get_watch(r);
    leg_set_watch(r, &(struct leg_watch){0});
    call_ref(c);
    call_log(c, "picked-up", "%s answers for %s", leg_number(x), leg_number(r));
    log_info("call", "%s: %s picks up the call ringing %s", call_uuid(c), leg_number(x),
             leg_number(r));
    call_leg_move(x, c, LEG_B);
    leg_set_watch(x, &w);
    if (w.answered) w.answered(x, w.arg);
    leg_hangup(r, SIP_CAUSE_NORMAL); /* stop its ringing (if the owner did not already) */
    call_unref(c);
    return CW_OK;
}

/* call:pickup([extension]) -> true | nil, why ("no_group", "nothing_ringing", "hangup") */
static int l_pickup(lua_State *L)
{
    call *c = call_lua_check(L);
    call_leg *x = c ? call_a_leg(c) : NULL;
    if (!x || leg_state(x) == LEG_ENDED) {
        lua_pushnil(L);
        lua_pushstring(L, "hangup");
        return 2;
    }
    const char *ext = luaL_optstring(L, 2, NULL);
    int64_t users[MAX_MEMBERS];
    struct search s = {.picker = c, .picker_user = leg_user(x), .users = users};
    const char *why = "nothing_ringing";
    if (ext) {
        users[0] = extension_user(call_domain(c), ext);
        s.nusers = users[0] ? 1 : 0;
    } else if (!s.picker_user || !(s.nusers = group_members(s.picker_user, users, MAX_MEMBERS))) {
        why = "no_group";
    }
    if (s.nusers) call_foreach(search_call, &s);
    if (s.found && take_over(s.found, x) == CW_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    call_log(c, "pickup", "%s: %s", ext ? ext : "group", s.found ? "hangup" : why);
    lua_pushnil(L);
    lua_pushstring(L, s.found ? "hangup" : why);
    return 2;
}

const luaL_Reg call_pickup_methods[] = {
    {"pickup", l_pickup},
    {NULL, NULL},
};
