/*
 * recording.c - recordings from the start of a call to their expiry.
 *
 * cwrec.begin() (called by scripts/cw/recording.lua before a bridge or a
 * queue) decides whether the call may need recording and, if so, makes the
 * row (state 'recording') and the file name; the script then starts
 * call:record(). call.bridged events tell who actually talked; call.ended
 * settles it: the recording is kept (state 'done', measured on a worker)
 * or deleted with its file. Rows a previous run left in 'recording' are
 * settled at start. Owns the list of recordings in progress. Core thread.
 */
#include "recording/recording.h"
#include "acd/acd.h"
#include "base/cw.h"
#include "call/call.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "loop/timer.h"
#include "loop/work.h"
#include "lua/script.h"
#include "store/store.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_PARTIES 8

/* One recording in progress. */
struct active {
    struct active *next;
    char uuid[40];
    int64_t row, domain, caller_user, group;
    int64_t users[MAX_PARTIES]; /* users who answered */
    int nusers;
    bool bridged;
    char *path;
};

static struct {
    struct active *list;
    cw_timer *sweep;
    cw_timer *cdr_fix;
    json_t *cdr_pending; /* [uuid, ...] whose CDR must lose its recording link */
    int sub_bridged, sub_ended;
} R;

static struct active *find(const char *uuid)
{
    for (struct active *a = R.list; a; a = a->next)
        if (!strcmp(a->uuid, uuid)) return a;
    return NULL;
}

static void forget(struct active *a)
{
    for (struct active **p = &R.list; *p; p = &(*p)->next)
        if (*p == a) {
            *p = a->next;
            break;
        }
    free(a->path);
    free(a);
}

/* ----------------------------------------------------------------- policy */

static bool flag(const char *sql, int64_t id)
{
    int64_t v = 0;
    return id > 0 && store_query_int(store_main(), &v, sql, SA_INT(id), SA_END) == CW_OK && v;
}

static bool domain_records_all(int64_t d)
{
    return flag("SELECT record_all FROM domains WHERE id = ?", d);
}

static bool user_records(int64_t u)
{
    return flag("SELECT recording_enabled FROM users WHERE id = ?", u);
}

static bool group_records(int64_t g)
{
    return flag("SELECT recording_enabled FROM call_groups WHERE id = ?", g);
}

static bool group_member_records(int64_t g)
{
    return flag("SELECT COUNT(*) FROM call_group_members m JOIN users u ON u.id = m.user_id "
                "WHERE m.group_id = ? AND u.recording_enabled = 1",
                g);
}

/* A bridge target string as a user of the domain, or 0. */
static int64_t target_user(int64_t domain, const char *t)
{
    int64_t id = 0;
    if (cw_str_has_prefix(t, "user:")) {
        if (cw_parse_i64(t + 5, &id)) return 0;
        int64_t one;
        return store_query_int(store_main(), &one,
                               "SELECT 1 FROM users WHERE id = ? AND domain_id = ?", SA_INT(id),
                               SA_INT(domain), SA_END) == CW_OK
                   ? id
                   : 0;
    }
    if (cw_str_has_prefix(t, "ext:")) t += 4;
    store_query_int(store_main(), &id,
                    "SELECT id FROM users WHERE domain_id = ? AND (extension = ? OR login = ?)",
                    SA_INT(domain), SA_STR(t), SA_STR(t), SA_END);
    return id;
}

/* Does the bridge target list (at idx: a string, or strings / {to=} tables) reach a recorded user?
 */
static bool targets_record(lua_State *L, int idx, int64_t domain)
{
    if (lua_isstring(L, idx)) return user_records(target_user(domain, lua_tostring(L, idx)));
    if (!lua_istable(L, idx)) return false;
    bool any = false;
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n && !any; i++) {
        lua_geti(L, idx, i);
        if (lua_istable(L, -1)) lua_getfield(L, -1, "to");
        if (lua_isstring(L, -1)) any = user_records(target_user(domain, lua_tostring(L, -1)));
        lua_settop(L, idx);
    }
    return any;
}

static int mkdirs(const char *path)
{
    char *p = cw_strdup(path);
    int rc = CW_OK;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0750) && errno != EEXIST) rc = CW_EIO;
        *s = '/';
    }
    free(p);
    return rc;
}

int64_t recording_expiry(int64_t created_at, int months)
{
    time_t t = (time_t)created_at;
    struct tm tm;
    gmtime_r(&t, &tm);
    int day = tm.tm_mday;
    tm.tm_mon += months;
    tm.tm_year += tm.tm_mon / 12;
    tm.tm_mon %= 12;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = tm.tm_year + 1900;
    int last =
        mdays[tm.tm_mon] + (tm.tm_mon == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    tm.tm_mday = day > last ? last : day;
    return (int64_t)timegm(&tm);
}

static int domain_retention(int64_t domain)
{
    int64_t m = 6;
    store_query_int(store_main(), &m, "SELECT recording_retention FROM domains WHERE id = ?",
                    SA_INT(domain), SA_END);
    return (int)m;
}

/*
 * cwrec.begin(uuid, what) -> file path to record to, or nil.
 * what: {group = name | extension | id} before a queue, {targets = <bridge targets>}
 * before a bridge. A call already recording gains the group and answers nil.
 */
static int l_begin(lua_State *L)
{
    const char *uuid = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    call *c = call_by_uuid(uuid);
    if (!c || !call_a_leg(c)) return 0;
    int64_t domain = call_domain(c);
    int64_t group = 0;
    lua_getfield(L, 2, "group");
    if (lua_isstring(L, -1)) group = acd_queue_find(domain, lua_tostring(L, -1));
    lua_pop(L, 1);
    struct active *a = find(uuid);
    if (a) {
        if (group && !a->group) {
            a->group = group;
            store_exec(store_main(), "UPDATE recordings SET group_id = ? WHERE id = ?",
                       SA_INT(group), SA_INT(a->row), SA_END);
        }
        return 0;
    }
    int64_t caller = leg_user(call_a_leg(c));
    lua_getfield(L, 2, "targets");
    int t = lua_gettop(L);
    bool wanted = domain_records_all(domain) || user_records(caller) ||
                  (group && (group_records(group) || group_member_records(group))) ||
                  targets_record(L, t, domain);
    lua_settop(L, 2);
    if (!wanted) return 0;
    int64_t now = cw_wall_time();
    time_t tt = (time_t)now;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char *path = cw_sprintf("%s/recordings/%lld/%04d-%02d-%02d/%s.wav", config_str("var_dir"),
                            (long long)domain, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, uuid);
    json_t *info = call_to_json(c);
    int64_t row = 0;
    int rc = mkdirs(path);
    if (rc == CW_OK)
        rc = store_query_int(
            store_main(), &row,
            "INSERT INTO recordings(domain_id, call_uuid, path, a_number, b_number, group_id, "
            "caller_user_id, created_at, expires_at, state) VALUES(?,?,?,?,?,?,?,?,?,'recording') "
            "RETURNING id",
            SA_INT(domain), SA_STR(uuid), SA_STR(path),
            SA_STR(json_string_value(json_object_get(info, "from"))),
            SA_STR(json_string_value(json_object_get(info, "to"))), group ? SA_INT(group) : SA_NULL,
            caller ? SA_INT(caller) : SA_NULL, SA_INT(now),
            SA_INT(recording_expiry(now, domain_retention(domain))), SA_END);
    json_decref(info);
    if (rc != CW_OK) {
        log_error("recording", "%s: cannot prepare %s: %s", uuid, path, store_errmsg(store_main()));
        free(path);
        return 0;
    }
    a = cw_calloc(1, sizeof *a);
    cw_strlcpy(a->uuid, uuid, sizeof a->uuid);
    a->row = row;
    a->domain = domain;
    a->caller_user = caller;
    a->group = group;
    a->path = path;
    a->next = R.list;
    R.list = a;
    call_log(c, "recording", "policy: recording to %s", path);
    lua_pushstring(L, path);
    return 1;
}

/* cwrec.abandon(uuid): the recording could not start; forget it. */
static int l_abandon(lua_State *L)
{
    struct active *a = find(luaL_checkstring(L, 1));
    if (a) {
        store_exec(store_main(), "DELETE FROM recordings WHERE id = ?", SA_INT(a->row), SA_END);
        forget(a);
    }
    return 0;
}

static int open_cwrec(lua_State *L)
{
    lua_newtable(L);
    if (script_vm_sandboxed(script_vm_of(L))) return 1;
    static const luaL_Reg fns[] = {{"begin", l_begin}, {"abandon", l_abandon}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    return 1;
}

/* ----------------------------------------------------------- files, rows */

struct file_job {
    char *path;
    int64_t row;
    int64_t size, ms;
    bool ok;
};

static void file_job_free(void *arg)
{
    struct file_job *j = arg;
    free(j->path);
    free(j);
}

static void unlink_run(void *arg)
{
    struct file_job *j = arg;
    unlink(j->path);
    char *mp3 = cw_sprintf("%.*s.mp3", (int)(strlen(j->path) - 4), j->path);
    if (strlen(j->path) > 4 && !strcmp(j->path + strlen(j->path) - 4, ".wav")) unlink(mp3);
    free(mp3);
}

void recording_remove_files(const char *wav_path)
{
    struct file_job *j = cw_calloc(1, sizeof *j);
    j->path = cw_strdup(wav_path);
    work_submit(unlink_run, file_job_free, j);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* On a worker: size, and length from the WAV header (data bytes / byte rate). */
static void measure_run(void *arg)
{
    struct file_job *j = arg;
    FILE *f = fopen(j->path, "rb");
    if (!f) return;
    unsigned char h[512];
    size_t n = fread(h, 1, sizeof h, f);
    fseek(f, 0, SEEK_END);
    j->size = ftell(f);
    fclose(f);
    if (n < 44 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4)) return;
    uint32_t byte_rate = 0;
    for (size_t pos = 12; pos + 8 <= n;) {
        uint32_t len = le32(h + pos + 4);
        if (!memcmp(h + pos, "fmt ", 4) && pos + 20 <= n) byte_rate = le32(h + pos + 16);
        if (!memcmp(h + pos, "data", 4)) {
            int64_t data = j->size - (int64_t)(pos + 8);
            if (len && len < (uint32_t)data) data = len;
            if (byte_rate) j->ms = data * 1000 / byte_rate;
            j->ok = true;
            break;
        }
        pos += 8 + len + (len & 1);
    }
}

static void measure_done(void *arg)
{
    struct file_job *j = arg;
    if (j->ok)
        store_exec(store_main(),
                   "UPDATE recordings SET state = 'done', size = ?, duration_ms = ? WHERE id = ?",
                   SA_INT(j->size), SA_INT(j->ms), SA_INT(j->row), SA_END);
    else
        store_exec(store_main(), "DELETE FROM recordings WHERE id = ?", SA_INT(j->row), SA_END);
    file_job_free(j);
}

static void measure(int64_t row, const char *path)
{
    struct file_job *j = cw_calloc(1, sizeof *j);
    j->row = row;
    j->path = cw_strdup(path);
    work_submit(measure_run, measure_done, j);
}

/* CDRs are written in batches: unlink their recording once they are surely stored. */
static void cdr_fix_run(void *arg)
{
    size_t i;
    json_t *u;
    json_array_foreach(R.cdr_pending, i, u)
        store_exec(store_main(), "UPDATE cdrs SET recording = NULL WHERE uuid = ?",
                   SA_STR(json_string_value(u)), SA_END);
    json_array_clear(R.cdr_pending);
}

static void cdr_unlink_later(const char *uuid)
{
    json_array_append_new(R.cdr_pending, json_string(uuid));
    cw_timer_start(R.cdr_fix, config_int("cdr.flush_ms") * 2 + 2000);
}

/* ------------------------------------------------------------- call events */

static void on_bridged(const cw_event *ev, void *arg)
{
    const char *uuid = json_string_value(json_object_get(ev->data, "call"));
    struct active *a = uuid ? find(uuid) : NULL;
    if (!a) return;
    a->bridged = true;
    call *c = call_by_uuid(uuid);
    call_leg *b = c ? call_bridged(c) : NULL;
    int64_t u = b ? leg_user(b) : 0;
    if (u && a->nusers < MAX_PARTIES) {
        if (!a->nusers)
            store_exec(store_main(), "UPDATE recordings SET user_id = ?, b_number = ? WHERE id = ?",
                       SA_INT(u), SA_STR(leg_number(b)), SA_INT(a->row), SA_END);
        a->users[a->nusers++] = u;
    }
}

static void on_ended(const cw_event *ev, void *arg)
{
    const char *uuid = json_string_value(json_object_get(ev->data, "call"));
    struct active *a = uuid ? find(uuid) : NULL;
    if (!a) return;
    bool keep = false;
    if (a->bridged) {
        keep = domain_records_all(a->domain) || user_records(a->caller_user) ||
               (a->group && group_records(a->group));
        for (int i = 0; i < a->nusers && !keep; i++)
            keep = user_records(a->users[i]);
    }
    if (keep) {
        measure(a->row, a->path);
    } else {
        log_info("recording", "%s: not kept (%s)", uuid,
                 a->bridged ? "no party's policy records it" : "nobody answered");
        store_exec(store_main(), "DELETE FROM recordings WHERE id = ?", SA_INT(a->row), SA_END);
        recording_remove_files(a->path);
        cdr_unlink_later(uuid);
    }
    forget(a);
}

/* ----------------------------------------------------------------- expiry */

void recording_sweep(void)
{
    store_res *r;
    int64_t now = cw_wall_time();
    if (store_query(store_main(), &r,
                    "SELECT id, path, call_uuid FROM recordings WHERE expires_at <= ? AND state = "
                    "'done' ORDER BY id LIMIT 1000",
                    SA_INT(now), SA_END) < 0)
        return;
    int n = 0;
    while (store_next(r)) {
        if (store_exec(store_main(), "DELETE FROM recordings WHERE id = ?", SA_INT(store_int(r, 0)),
                       SA_END) < 0)
            continue;
        store_exec(store_main(), "UPDATE cdrs SET recording = NULL WHERE uuid = ?",
                   SA_STR(store_str(r, 2)), SA_END);
        recording_remove_files(store_str(r, 1));
        n++;
    }
    store_res_free(r);
    if (n) {
        log_info("recording", "%d recording(s) past their retention deleted", n);
        events_emit("recording.expired", 0, json_pack("{s:i}", "count", n));
    }
}

static void sweep_tick(void *arg)
{
    recording_sweep();
    int64_t s = config_int("recording.sweep_interval");
    cw_timer_start(R.sweep, (s > 0 ? s : 3600) * 1000);
}

int recording_retention_changed(int64_t domain, int months)
{
    store_res *r;
    if (store_query(store_main(), &r, "SELECT id, created_at FROM recordings WHERE domain_id = ?",
                    SA_INT(domain), SA_END) < 0)
        return CW_EIO;
    int rc = CW_OK;
    while (rc >= 0 && store_next(r))
        rc = store_exec(store_main(), "UPDATE recordings SET expires_at = ? WHERE id = ?",
                        SA_INT(recording_expiry(store_int(r, 1), months)), SA_INT(store_int(r, 0)),
                        SA_END);
    store_res_free(r);
    return rc < 0 ? rc : CW_OK;
}

/* Recordings a previous run left unfinished: keep what has sound, drop the rest. */
static void settle_leftovers(void)
{
    store_res *r;
    if (store_query(store_main(), &r, "SELECT id, path FROM recordings WHERE state = 'recording'",
                    SA_END) < 0)
        return;
    while (store_next(r))
        measure(store_int(r, 0), store_str(r, 1));
    store_res_free(r);
}

void recording_init(void)
{
    script_add_module("cwrec", open_cwrec);
    R.cdr_pending = json_array();
    R.cdr_fix = cw_timer_new(cdr_fix_run, NULL);
    R.sub_bridged = events_subscribe("call.bridged", on_bridged, NULL);
    R.sub_ended = events_subscribe("call.ended", on_ended, NULL);
    settle_leftovers();
    R.sweep = cw_timer_new(sweep_tick, NULL);
    cw_timer_start(R.sweep, 1000);
}

void recording_shutdown(void)
{
    events_unsubscribe(R.sub_bridged);
    events_unsubscribe(R.sub_ended);
    cw_timer_free(R.sweep);
    cw_timer_free(R.cdr_fix);
    if (json_array_size(R.cdr_pending)) cdr_fix_run(NULL);
    json_decref(R.cdr_pending);
    while (R.list)
        forget(R.list);
    memset(&R, 0, sizeof R);
}
