/*
 * call_media.c - the media features of the Lua call object: conference
 * rooms (call_conf.c), fax (call_fax.c) and recording variants, gathered
 * into one method table; the hook every media event passes first; and
 * conversation recordings (a bridge's record option), which become rows of
 * recordings when their file is complete, whether or not a script still
 * drives the call by then.
 *
 * The composed forms scripts normally use (call:conference() with its PIN
 * prompt, call:fax_receive() returning the fax's record) are written in
 * Lua on top of these: scripts/cw/conference.lua, scripts/cw/fax.lua.
 * Core thread only.
 */
#include "base/cw.h"
#include "call/call_int.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- conversation recordings ---- */

struct talk_rec {
    struct talk_rec *next;
    media_id media;
    uint32_t tag;
    int64_t domain_id, ring_list_id, user_id, started;
    char call_uuid[37], a_number[64], b_number[64];
    char *path;
};

static struct {
    struct talk_rec *recs;
    uint32_t next_tag;
} T;

int call_record_conversation(call *c, int64_t ring_list_id)
{
    call_leg *a = call_a_leg(c), *b = call_bridged(c);
    if (!a || !b || leg_state(a) != LEG_UP) return CW_ESTATE;
    struct talk_rec *rec = cw_calloc(1, sizeof *rec);
    /* tags of their own range: the scripts' tags on the same session count up from 1 */
    rec->tag = 0x40000000u | (++T.next_tag & 0x3fffffffu);
    rec->media = leg_media(a);
    rec->domain_id = call_domain(c);
    rec->ring_list_id = ring_list_id;
    rec->user_id = leg_user(b);
    rec->started = cw_wall_time();
    cw_strlcpy(rec->call_uuid, call_uuid(c), sizeof rec->call_uuid);
    cw_strlcpy(rec->a_number, call_caller_number(c), sizeof rec->a_number);
    cw_strlcpy(rec->b_number, leg_number(b), sizeof rec->b_number);
    struct tm tm;
    time_t now = (time_t)rec->started;
    gmtime_r(&now, &tm);
    rec->path = cw_sprintf("%s/recordings/%lld/%04d-%02d-%02d/%s.wav", config_str("var_dir"),
                           (long long)rec->domain_id, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                           rec->call_uuid);
    cw_mkdir_parents(rec->path);
    int rc = media_record_start(rec->media, rec->path, true, 0, 0, rec->tag);
    if (rc) {
        log_warn("call", "%s: the conversation cannot be recorded: %s", rec->call_uuid,
                 cw_strerror(rc));
        free(rec->path);
        free(rec);
        return rc;
    }
    call_set_recording(c, rec->path);
    call_log(c, "recording", "conversation to %s", rec->path);
    rec->next = T.recs;
    T.recs = rec;
    return CW_OK;
}

/* A conversation recording is complete: keep it as a recording of the domain. */
static bool talk_record_event(const struct media_event *ev)
{
    if (ev->type != MEDIA_EV_RECORD_DONE) return false;
    struct talk_rec **pp = &T.recs, *rec;
    while (*pp && ((*pp)->media != ev->id || (*pp)->tag != ev->tag))
        pp = &(*pp)->next;
    if (!(rec = *pp)) return false;
    *pp = rec->next;
    struct stat sb;
    if (ev->reason < 0 || stat(rec->path, &sb) || sb.st_size <= 44) {
        log_warn("call", "%s: recording %s failed or empty", rec->call_uuid, rec->path);
        remove(rec->path);
    } else {
        int rc = store_exec(
            store_main(),
            "INSERT INTO recordings(domain_id, call_uuid, path, duration_ms, size, a_number, "
            "b_number, user_id, created_at, expires_at, ring_list_id) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            SA_INT(rec->domain_id), SA_STR(rec->call_uuid), SA_STR(rec->path), SA_INT(ev->ms),
            SA_INT((int64_t)sb.st_size), SA_STR(rec->a_number), SA_STR(rec->b_number),
            rec->user_id ? SA_INT(rec->user_id) : SA_NULL, SA_INT(rec->started),
            SA_INT(call_retention_end(rec->domain_id, rec->started)),
            rec->ring_list_id ? SA_INT(rec->ring_list_id) : SA_NULL, SA_END);
        if (rc < 0)
            log_error("call", "%s: recording not stored: %s", rec->call_uuid,
                      store_errmsg(store_main()));
        else
            events_emit(
                "call.recorded", rec->domain_id,
                json_pack("{s:s,s:I,s:I,s:o}", "call", rec->call_uuid, "duration_ms",
                          (json_int_t)ev->ms, "size", (json_int_t)sb.st_size, "ring_list_id",
                          rec->ring_list_id ? json_integer(rec->ring_list_id) : json_null()));
    }
    free(rec->path);
    free(rec);
    return true;
}

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
    if (talk_record_event(ev)) return true;
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
    while (T.recs) { /* the engine stops with us: the files end where they are */
        struct talk_rec *rec = T.recs;
        T.recs = rec->next;
        free(rec->path);
        free(rec);
    }
}
