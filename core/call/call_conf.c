/*
 * call_conf.c - conference rooms as calls see them: who is in which room
 * now, who talks, the moderator's mute and kick, and the room recording.
 *
 * A live room is named by its domain and name (a conference_rooms row, or
 * an ad-hoc name a script chose) and maps to one mixer room of the media
 * engine. A member is the A leg of a call whose script waits in
 * call:conference_join(); it waits for a PLAY_DONE with its own tag, and
 * every way out of the room (kicked, the room ended, the exit key) plays a
 * cue or a prompt with that tag, so the script resumes when the party has
 * heard why. A hang-up resumes it at once (call_lua.c).
 *
 * Owns struct room and struct member; core thread only.
 */
#include "base/cw.h"
#include "base/map.h"
#include "call/call_int.h"
#include "config/config.h"
#include "events/events.h"
#include "http/http.h"
#include "log/log.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define ROOM_LIMIT   64 /* the mixer's room size */
#define ROOM_DEFAULT 16 /* parties of a room nobody set a limit for (seed 002) */

struct room;

struct member {
    struct member *next;
    struct room *room;
    call *c;
    media_id media;
    uint32_t tag; /* the script waits for a PLAY_DONE with this tag */
    int64_t user_id;
    char number[64], name[128];
    int64_t joined_ms;
    bool muted, deaf, moderator, talking;
    char exit_key;
};

struct room {
    struct room *next;
    uint32_t mid; /* the mixer's room */
    int64_t domain_id, row_id;
    char name[72], extension[16], lang[8];
    int max;
    bool end_with_moderator;
    int64_t started_ms;
    char first_call[40];
    struct member *members;
    int n;
    uint32_t rec_tag; /* 0 = not recording */
    bool ending;      /* end_room() is letting everyone go */
};

/* A room recording in progress (its RECORD_DONE comes after the room is gone). */
struct room_rec {
    struct room_rec *next;
    uint32_t tag;
    int64_t domain_id, row_id;
    char name[72], call_uuid[40];
    char *path;
    int64_t started;
};

static struct {
    struct room *rooms;
    cw_map members;  /* media id -> struct member */
    cw_map outcomes; /* media id -> static string: why the last room was left */
    struct room_rec *recs;
    uint32_t next_mid, next_rec_tag;
} K;

/* ---- events ---- */

static json_t *member_json(const struct member *m)
{
    return json_pack("{s:I,s:s,s:s,s:s,s:I,s:I,s:b,s:b,s:b,s:b}", "id", (json_int_t)m->media,
                     "call", call_uuid(m->c), "number", m->number, "name", m->name, "user_id",
                     (json_int_t)m->user_id, "joined_ms", (json_int_t)m->joined_ms, "muted",
                     m->muted, "deaf", m->deaf, "moderator", m->moderator, "talking", m->talking);
}

static json_t *room_json(const struct room *r)
{
    json_t *ms = json_array();
    for (const struct member *m = r->members; m; m = m->next)
        json_array_append_new(ms, member_json(m));
    json_t *j = json_pack("{s:s,s:s,s:I,s:i,s:i,s:b,s:o}", "name", r->name, "extension",
                          r->extension, "started_ms", (json_int_t)r->started_ms, "parties", r->n,
                          "max_parties", r->max, "recording", r->rec_tag != 0, "members", ms);
    json_object_set_new(j, "id", r->row_id ? json_integer(r->row_id) : json_null());
    return j;
}

static void emit_member(const char *type, const struct room *r, const struct member *m,
                        json_t *extra)
{
    json_t *d = json_pack("{s:s,s:o}", "room", r->name, "member", member_json(m));
    json_object_set_new(d, "room_id", r->row_id ? json_integer(r->row_id) : json_null());
    if (extra) json_object_update(d, extra), json_decref(extra);
    events_emit(type, r->domain_id, d);
}

/* ---- rooms ---- */

static struct room *room_find(int64_t domain, const char *name)
{
    for (struct room *r = K.rooms; r; r = r->next)
        if (r->domain_id == domain && !strcmp(r->name, name)) return r;
    return NULL;
}

struct room_row {
    int64_t id, owner_id;
    char name[72], extension[16], pin[16], moderator_pin[16], lang[8];
    int max;
    bool record, end_with_moderator;
};

/* A conference_rooms row by extension, name or "room:<id>" in the domain. */
static bool room_row(int64_t domain, const char *key, struct room_row *out)
{
    int64_t id = 0;
    if (cw_str_has_prefix(key, "room:") && cw_parse_i64(key + 5, &id)) return false;
    store_res *r;
    bool found = false;
    if (store_query(store_main(), &r,
                    "SELECT c.id, c.name, c.extension, c.pin, c.moderator_pin, c.owner_id, "
                    "c.max_parties, c.record, c.end_with_moderator, "
                    "COALESCE(c.language, d.language) FROM conference_rooms c "
                    "JOIN domains d ON d.id = c.domain_id WHERE c.domain_id = ? AND "
                    "(c.id = ? OR c.extension = ? OR c.name = ?)",
                    SA_INT(domain), SA_INT(id), SA_STR(key), SA_STR(key), SA_END) >= 0 &&
        store_next(r)) {
        memset(out, 0, sizeof *out);
        out->id = store_int(r, 0);
        cw_strlcpy(out->name, store_str(r, 1), sizeof out->name);
        cw_strlcpy(out->extension, store_str(r, 2), sizeof out->extension);
        if (store_str(r, 3)) cw_strlcpy(out->pin, store_str(r, 3), sizeof out->pin);
        if (store_str(r, 4)) cw_strlcpy(out->moderator_pin, store_str(r, 4), sizeof out->pin);
        out->owner_id = store_isnull(r, 5) ? 0 : store_int(r, 5);
        out->max = (int)store_int(r, 6);
        out->record = store_int(r, 7) != 0;
        out->end_with_moderator = store_int(r, 8) != 0;
        cw_strlcpy(out->lang, store_str(r, 9), sizeof out->lang);
        found = true;
    }
    store_res_free(r);
    return found;
}

static void domain_language(int64_t domain, char *lang, size_t len)
{
    cw_strlcpy(lang, "en", len);
    store_res *r;
    if (store_query(store_main(), &r, "SELECT language FROM domains WHERE id = ?", SA_INT(domain),
                    SA_END) >= 0 &&
        store_next(r))
        cw_strlcpy(lang, store_str(r, 0), len);
    store_res_free(r);
}

static void play_prompt(struct member *m, const char *name, uint32_t tag)
{
    char file[64];
    snprintf(file, sizeof file, "%s/%s", m->room->lang, name);
    const char *files[] = {file};
    media_play(m->media, files, 1, false, tag);
}

/* Months of recording retention of the domain, as a time in the future. */
static int64_t retention_end(int64_t domain, int64_t from)
{
    int64_t months = 6;
    store_query_int(store_main(), &months, "SELECT recording_retention FROM domains WHERE id = ?",
                    SA_INT(domain), SA_END);
    struct tm tm;
    time_t t = (time_t)from;
    gmtime_r(&t, &tm);
    tm.tm_mon += (int)months;
    return (int64_t)timegm(&tm);
}

static void room_record_start(struct room *r, struct member *first)
{
    struct room_rec *rec = cw_calloc(1, sizeof *rec);
    rec->tag = ++K.next_rec_tag ? K.next_rec_tag : ++K.next_rec_tag;
    rec->domain_id = r->domain_id;
    rec->row_id = r->row_id;
    rec->started = cw_wall_time();
    cw_strlcpy(rec->name, r->name, sizeof rec->name);
    cw_strlcpy(rec->call_uuid, r->first_call, sizeof rec->call_uuid);
    struct tm tm;
    time_t now = (time_t)rec->started;
    gmtime_r(&now, &tm);
    rec->path =
        cw_sprintf("%s/recordings/%lld/%04d-%02d-%02d/conference-%lld-%lld.wav",
                   config_str("var_dir"), (long long)r->domain_id, tm.tm_year + 1900, tm.tm_mon + 1,
                   tm.tm_mday, (long long)r->row_id, (long long)cw_wall_ms());
    cw_mkdir_parents(rec->path);
    if (media_conf_record(first->media, rec->path, rec->tag)) {
        log_warn("conference", "room %s: recording did not start", r->name);
        free(rec->path);
        free(rec);
        return;
    }
    rec->next = K.recs;
    K.recs = rec;
    r->rec_tag = rec->tag;
}

/* The engine finished a room recording: keep it as a recording of the domain. */
static void room_record_done(const struct media_event *ev)
{
    struct room_rec **pp = &K.recs, *rec;
    while (*pp && (*pp)->tag != ev->tag)
        pp = &(*pp)->next;
    if (!(rec = *pp)) return;
    *pp = rec->next;
    struct stat sb;
    if (ev->reason < 0 || stat(rec->path, &sb) || sb.st_size <= 44) {
        log_warn("conference", "room %s: recording %s failed or empty", rec->name, rec->path);
        remove(rec->path);
    } else {
        int rc = store_exec(
            store_main(),
            "INSERT INTO recordings(domain_id, call_uuid, path, duration_ms, size, a_number, "
            "b_number, created_at, expires_at, room_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
            SA_INT(rec->domain_id), SA_STR(rec->call_uuid), SA_STR(rec->path), SA_INT(ev->ms),
            SA_INT((int64_t)sb.st_size), SA_STR(rec->name), SA_STR(""), SA_INT(rec->started),
            SA_INT(retention_end(rec->domain_id, rec->started)),
            rec->row_id ? SA_INT(rec->row_id) : SA_NULL, SA_END);
        if (rc < 0)
            log_error("conference", "room %s: recording not stored: %s", rec->name,
                      store_errmsg(store_main()));
        else
            events_emit("conference.recorded", rec->domain_id,
                        json_pack("{s:s,s:I,s:I}", "room", rec->name, "duration_ms",
                                  (json_int_t)ev->ms, "size", (json_int_t)sb.st_size));
    }
    free(rec->path);
    free(rec);
}

static void room_free_if_empty(struct room *r)
{
    if (r->n > 0) return;
    struct room **pp = &K.rooms;
    while (*pp && *pp != r)
        pp = &(*pp)->next;
    if (*pp) *pp = r->next;
    events_emit("conference.ended", r->domain_id,
                json_pack("{s:s,s:o,s:I}", "room", r->name, "room_id",
                          r->row_id ? json_integer(r->row_id) : json_null(), "duration_ms",
                          (json_int_t)(cw_wall_ms() - r->started_ms)));
    log_info("conference", "room %s of domain %lld ended", r->name, (long long)r->domain_id);
    free(r);
}

static void end_room(struct room *r);

/*
 * Take m out of its room. why: "hangup" (its leg is gone), or "kicked",
 * "ended", "left": then the media leaves the mixer and a prompt (or the
 * exit cue) with the script's tag tells the party and wakes the script.
 */
static void member_remove(struct member *m, const char *why)
{
    struct room *r = m->room;
    struct member **pp = &r->members;
    while (*pp && *pp != m)
        pp = &(*pp)->next;
    if (*pp) *pp = m->next;
    r->n--;
    cw_map_del(&K.members, m->media);
    emit_member("conference.left", r, m, json_pack("{s:s}", "reason", why));
    call_log(m->c, "conference-left", "%s: %s", r->name, why);
    if (strcmp(why, "hangup")) {
        cw_map_put(&K.outcomes, m->media, (void *)why);
        media_conf_leave(m->media);
        if (!strcmp(why, "left"))
            media_play_tone(m->media, MEDIA_TONE_BEEP, m->tag);
        else
            play_prompt(m, !strcmp(why, "kicked") ? "conf_kicked" : "conf_ended", m->tag);
    }
    bool was_moderator = m->moderator;
    call_unref(m->c);
    free(m);
    if (r->n > 0 && was_moderator && r->end_with_moderator && !r->ending) {
        bool any = false;
        for (struct member *o = r->members; o; o = o->next)
            any |= o->moderator;
        if (!any) {
            end_room(r);
            return;
        }
    }
    room_free_if_empty(r);
}

static void end_room(struct room *r)
{
    r->ending = true;
    r->n++; /* keep it alive while its members go */
    while (r->members)
        member_remove(r->members, "ended");
    r->n--;
    room_free_if_empty(r);
}

/* ---- the Lua side ---- */

static bool opt_flag(lua_State *L, int idx, const char *key, bool def)
{
    if (!lua_istable(L, idx)) return def;
    lua_getfield(L, idx, key);
    bool v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static bool room_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64) return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20) return false;
    return true;
}

/*
 * call:conference_join(room, {mute=, deaf=, moderator=, max=, exit_key=, language=,
 * record=, announce=}) -> (ok, info) once the party is out of the room again (then
 * call:conference_result() says why), nil and "full" | "invalid" | "hangup" at once.
 */
int call_conf_lua_join(lua_State *L)
{
    call *c = call_lua_check(L);
    const char *key = luaL_checkstring(L, 2);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    if (!room_name_ok(key)) return luaL_argerror(L, 2, "a room name of 1..64 characters");
    lua_Integer max = ROOM_DEFAULT;
    bool max_given = false;
    const char *exit_key = NULL, *lang = NULL;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "max");
        if (!lua_isnil(L, -1)) {
            max_given = true;
            max = luaL_checkinteger(L, -1);
            if (max < 2 || max > ROOM_LIMIT) return luaL_argerror(L, 3, "max must be 2..64");
        }
        lua_getfield(L, 3, "exit_key");
        exit_key = lua_tostring(L, -1);
        if (exit_key && (strlen(exit_key) != 1 || !strchr("0123456789*#", exit_key[0])))
            return luaL_argerror(L, 3, "exit_key must be one of 0-9 * #");
        lua_getfield(L, 3, "language");
        lang = lua_tostring(L, -1);
        if (lang && strcmp(lang, "en") && strcmp(lang, "ru"))
            return luaL_argerror(L, 3, "language must be en or ru");
        lua_pop(L, 3); /* the strings stay alive in the option table */
    }
    uint32_t tag = call_lua_tag(L);
    if (!tag || !c || leg_state(call_a_leg(c)) == LEG_ENDED) return call_lua_await(L, 0, 0);
    call_leg *a = call_a_leg(c);
    int64_t dom = call_domain(c);
    struct room_row row;
    bool has_row = room_row(dom, key, &row);
    const char *name = has_row ? row.name : key;
    struct room *r = room_find(dom, name);
    int limit = (int)max;
    if (has_row && !max_given) limit = row.max;
    if (r && r->n >= CW_MIN(r->max, limit)) {
        lua_pushnil(L);
        lua_pushstring(L, "full");
        return 2;
    }
    if (call_answer(c)) {
        lua_pushnil(L);
        lua_pushstring(L, "hangup");
        return 2;
    }
    bool created = false;
    if (!r) {
        r = cw_calloc(1, sizeof *r);
        r->mid = ++K.next_mid ? K.next_mid : ++K.next_mid;
        r->domain_id = dom;
        r->row_id = has_row ? row.id : 0;
        cw_strlcpy(r->name, name, sizeof r->name);
        cw_strlcpy(r->extension, has_row ? row.extension : "", sizeof r->extension);
        r->max = limit;
        r->end_with_moderator = has_row && row.end_with_moderator;
        r->started_ms = cw_wall_ms();
        cw_strlcpy(r->first_call, call_uuid(c), sizeof r->first_call);
        if (has_row && row.lang[0])
            cw_strlcpy(r->lang, row.lang, sizeof r->lang);
        else
            domain_language(dom, r->lang, sizeof r->lang);
        if (strcmp(r->lang, "ru")) cw_strlcpy(r->lang, "en", sizeof r->lang);
        r->next = K.rooms;
        K.rooms = r;
        created = true;
    }
    struct member *m = cw_calloc(1, sizeof *m);
    m->room = r;
    m->c = c;
    m->media = leg_media(a);
    m->tag = tag;
    m->user_id = leg_user(a);
    json_t *info = call_to_json(c);
    cw_strlcpy(m->number, call_caller_number(c), sizeof m->number);
    const char *nm = json_string_value(json_object_get(info, "from_name"));
    cw_strlcpy(m->name, nm ? nm : "", sizeof m->name);
    json_decref(info);
    m->joined_ms = cw_wall_ms();
    m->muted = opt_flag(L, 3, "mute", false);
    m->deaf = opt_flag(L, 3, "deaf", false);
    m->moderator = opt_flag(L, 3, "moderator", false) ||
                   (has_row && row.owner_id && row.owner_id == m->user_id);
    m->exit_key = exit_key ? exit_key[0] : 0;
    unsigned flags = (m->muted ? MEDIA_CONF_MUTE : 0) | (m->deaf ? MEDIA_CONF_DEAF : 0);
    int rc = media_conf_join(m->media, r->mid, flags);
    if (rc) {
        free(m);
        if (created) {
            K.rooms = r->next;
            free(r);
        }
        lua_pushnil(L);
        lua_pushstring(L, cw_strerror(rc));
        return 2;
    }
    call_ref(c);
    m->next = r->members;
    r->members = m;
    r->n++;
    cw_map_put(&K.members, m->media, m);
    cw_map_del(&K.outcomes, m->media);
    if (created) {
        events_emit("conference.started", dom,
                    json_pack("{s:s,s:o}", "room", r->name, "room_id",
                              r->row_id ? json_integer(r->row_id) : json_null()));
        log_info("conference", "room %s of domain %lld started", r->name, (long long)dom);
    }
    if (!r->rec_tag && ((has_row && row.record) || opt_flag(L, 3, "record", false)))
        room_record_start(r, m);
    if (lang) cw_strlcpy(r->lang, lang, sizeof r->lang);
    if (r->n == 1 && opt_flag(L, 3, "announce", true)) play_prompt(m, "conf_first", 0);
    call_log(c, "conference", "%s%s%s", r->name, m->moderator ? " as moderator" : "",
             m->muted ? ", muted" : "");
    emit_member("conference.joined", r, m, NULL);
    return call_lua_await(L, MEDIA_EV_PLAY_DONE, tag);
}

/* call:conference_result() -> why the party's last room ended for it: left | kicked | ended */
int call_conf_lua_result(lua_State *L)
{
    call *c = call_lua_check(L);
    const char *why = c ? cw_map_get(&K.outcomes, leg_media(call_a_leg(c))) : NULL;
    lua_pushstring(L, why ? why : "hangup");
    return 1;
}

/* call:conference_room(room) -> {id, name, extension, pin, moderator_pin, max_parties, record,
 * end_with_moderator, language, owner} (owner = true when the caller owns it), or nil */
int call_conf_lua_room(lua_State *L)
{
    call *c = call_lua_check(L);
    const char *key = luaL_checkstring(L, 2);
    struct room_row row;
    if (!c || !room_row(call_domain(c), key, &row)) return 0;
    lua_createtable(L, 0, 10);
    lua_pushinteger(L, row.id), lua_setfield(L, -2, "id");
    lua_pushstring(L, row.name), lua_setfield(L, -2, "name");
    lua_pushstring(L, row.extension), lua_setfield(L, -2, "extension");
    if (row.pin[0]) lua_pushstring(L, row.pin), lua_setfield(L, -2, "pin");
    if (row.moderator_pin[0])
        lua_pushstring(L, row.moderator_pin), lua_setfield(L, -2, "moderator_pin");
    lua_pushinteger(L, row.max), lua_setfield(L, -2, "max_parties");
    lua_pushboolean(L, row.record), lua_setfield(L, -2, "record");
    lua_pushboolean(L, row.end_with_moderator), lua_setfield(L, -2, "end_with_moderator");
    lua_pushstring(L, !strcmp(row.lang, "ru") ? "ru" : "en"), lua_setfield(L, -2, "language");
    lua_pushboolean(L, row.owner_id && row.owner_id == leg_user(call_a_leg(c)));
    lua_setfield(L, -2, "owner");
    return 1;
}

int call_conf_resolve(lua_State *L, int64_t domain_id, const char *number)
{
    store_res *r;
    int n = 0;
    if (store_query(store_main(), &r,
                    "SELECT id, name, extension, max_parties, pin FROM conference_rooms "
                    "WHERE domain_id = ? AND extension = ?",
                    SA_INT(domain_id), SA_STR(number), SA_END) >= 0 &&
        store_next(r)) {
        lua_createtable(L, 0, 6);
        lua_pushstring(L, "conference"), lua_setfield(L, -2, "kind");
        lua_pushinteger(L, store_int(r, 0)), lua_setfield(L, -2, "id");
        lua_pushstring(L, store_str(r, 1)), lua_setfield(L, -2, "name");
        lua_pushstring(L, store_str(r, 2)), lua_setfield(L, -2, "extension");
        lua_pushinteger(L, store_int(r, 3)), lua_setfield(L, -2, "max_parties");
        lua_pushboolean(L, !store_isnull(r, 4)), lua_setfield(L, -2, "has_pin");
        n = 1;
    }
    store_res_free(r);
    return n;
}

/* ---- media events of members ---- */

bool call_conf_event(const struct media_event *ev)
{
    if (ev->type == MEDIA_EV_RECORD_DONE && !ev->id && ev->room) {
        room_record_done(ev);
        return true;
    }
    if (ev->type == MEDIA_EV_CLOSED) {
        struct member *m = cw_map_get(&K.members, ev->id);
        if (m) member_remove(m, "hangup");
        cw_map_del(&K.outcomes, ev->id);
        return false;
    }
    struct member *m = cw_map_get(&K.members, ev->id);
    if (!m) return false;
    switch (ev->type) {
    case MEDIA_EV_TALK_START:
    case MEDIA_EV_TALK_STOP:
        m->talking = ev->type == MEDIA_EV_TALK_START;
        emit_member("conference.talking", m->room, m, NULL);
        break;
    case MEDIA_EV_DTMF:
        if (m->exit_key && ev->digit == m->exit_key) member_remove(m, "left");
        break;
    default:
        break;
    }
    return false;
}

/* ---- API: live rooms and the moderator's actions ---- */

static struct room *room_param(http_req *req, int64_t *dom)
{
    if (!http_domain_param(req, 0, dom)) return NULL;
    const char *key = req->params[1];
    int64_t id = 0;
    bool numeric = cw_parse_i64(key, &id) == CW_OK;
    for (struct room *r = K.rooms; r; r = r->next)
        if (r->domain_id == *dom && ((numeric && r->row_id == id) || !strcmp(r->name, key)))
            return r;
    http_reply_error(req, 404, "not_found", NULL, "no such room in progress");
    return NULL;
}

static struct member *member_param(http_req *req, struct room *r)
{
    int64_t id;
    if (cw_parse_i64(req->params[2], &id) == CW_OK)
        for (struct member *m = r->members; m; m = m->next)
            if ((int64_t)m->media == id) return m;
    http_reply_error(req, 404, "not_found", NULL, "no such party in the room");
    return NULL;
}

static void list_rooms(http_req *req)
{
    int64_t dom;
    if (!http_domain_param(req, 0, &dom)) return;
    json_t *items = json_array();
    for (struct room *r = K.rooms; r; r = r->next)
        if (r->domain_id == dom) json_array_append_new(items, room_json(r));
    http_reply_json(req, 200, json_pack("{s:o}", "items", items));
}

static void my_rooms(http_req *req)
{
    json_t *items = json_array();
    for (struct room *r = K.rooms; r; r = r->next) {
        if (r->domain_id != req->auth->domain_id) continue;
        for (struct member *m = r->members; m; m = m->next)
            if (m->user_id == req->auth->user_id) {
                json_array_append_new(items, room_json(r));
                break;
            }
    }
    http_reply_json(req, 200, json_pack("{s:o}", "items", items));
}

static void get_room(http_req *req)
{
    int64_t dom;
    struct room *r = room_param(req, &dom);
    if (r) http_reply_json(req, 200, room_json(r));
}

static void end_room_api(http_req *req)
{
    int64_t dom;
    struct room *r = room_param(req, &dom);
    if (!r) return;
    http_audit(req, dom, "conference", r->name, "delete", json_pack("{s:s}", "action", "end"));
    end_room(r);
    http_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static void kick(http_req *req)
{
    int64_t dom;
    struct room *r = room_param(req, &dom);
    struct member *m = r ? member_param(req, r) : NULL;
    if (!m) return;
    http_audit(req, dom, "conference", r->name, "edit",
               json_pack("{s:s,s:s}", "action", "kick", "number", m->number));
    member_remove(m, "kicked");
    http_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static void set_member(http_req *req)
{
    int64_t dom;
    struct room *r = room_param(req, &dom);
    struct member *m = r ? member_param(req, r) : NULL;
    if (!m) return;
    json_t *body = http_json_body(req);
    if (!body) return;
    static const struct json_field fields[] = {{"muted", JK_BOOL, false}, {"deaf", JK_BOOL, false}};
    if (!http_json_check(req, body, fields, 2)) {
        json_decref(body);
        return;
    }
    json_t *mu = json_object_get(body, "muted"), *de = json_object_get(body, "deaf");
    bool was_muted = m->muted;
    if (mu) m->muted = json_is_true(mu);
    if (de) m->deaf = json_is_true(de);
    json_decref(body);
    media_conf_set(m->media, (m->muted ? MEDIA_CONF_MUTE : 0) | (m->deaf ? MEDIA_CONF_DEAF : 0));
    if (m->muted != was_muted) play_prompt(m, m->muted ? "conf_muted" : "conf_unmuted", 0);
    http_audit(req, dom, "conference", r->name, "edit",
               json_pack("{s:s,s:s,s:b,s:b}", "action", "member", "number", m->number, "muted",
                         m->muted, "deaf", m->deaf));
    emit_member("conference.member", r, m, NULL);
    http_reply_json(req, 200, member_json(m));
}

void call_conf_shutdown(void)
{
    while (K.rooms) {
        struct room *r = K.rooms;
        K.rooms = r->next;
        while (r->members) {
            struct member *m = r->members;
            r->members = m->next;
            call_unref(m->c);
            free(m);
        }
        free(r);
    }
    while (K.recs) { /* the engine stops with us: the rooms' files end where they are */
        struct room_rec *rec = K.recs;
        K.recs = rec->next;
        free(rec->path);
        free(rec);
    }
    cw_map_free(&K.members);
    cw_map_free(&K.outcomes);
}

void call_conf_init(void)
{
    cw_map_init(&K.members);
    cw_map_init(&K.outcomes);
    http_route("GET", "/api/v1/domains/:domain/conferences", list_rooms, ROLE_SUPERVISOR, 0,
               "Conference rooms in progress with their parties (who talks, who is muted)");
    http_route("GET", "/api/v1/domains/:domain/conferences/:room", get_room, ROLE_SUPERVISOR, 0,
               "One room in progress, by room id or name");
    http_route("DELETE", "/api/v1/domains/:domain/conferences/:room", end_room_api, ROLE_SUPERVISOR,
               0, "End a room: every party is let go");
    http_route("PATCH", "/api/v1/domains/:domain/conferences/:room/members/:member", set_member,
               ROLE_SUPERVISOR, 0, "Mute or deafen a party ({muted, deaf})");
    http_route("DELETE", "/api/v1/domains/:domain/conferences/:room/members/:member", kick,
               ROLE_SUPERVISOR, 0, "Remove a party from the room");
    http_route("GET", "/api/v1/me/conferences", my_rooms, ROLE_SUBSCRIBER, 0,
               "Rooms the caller is in now");
}
