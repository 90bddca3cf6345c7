/*
 * call_fax.c - fax boxes: faxes received on calls, faxes sent on calls, and
 * faxes sent through the API, where the platform dials the number itself.
 *
 * Every fax is a row of `faxes` with its document under
 * var_dir/faxes/<domain>/<id>.tiff and a protocol: what happened, in order,
 * with times (seed 001 §7.5.4). A received fax is mailed to its box's
 * owner. An API send (seed 001 §4.4) goes: upload -> conversion to a fax
 * document (on a worker) -> converted -> at send_at or at once: the
 * platform dials, and on answer runs T.30 -> delivered; a failed attempt
 * is retried fax.retries times, fax.retry_interval apart, then the fax is
 * not_delivered. Jobs survive a restart (rows in converted, retry_wait or
 * sending are picked up again at start).
 *
 * Owns struct fax_op (one fax running on a leg) and struct fax_job (an API
 * send). Core thread only; file conversion and page images run on workers.
 */
#include "base/cw.h"
#include "base/map.h"
#include "base/tz.h"
#include "call/call_int.h"
#include "config/config.h"
#include "events/events.h"
#include "http/http.h"
#include "log/log.h"
#include "loop/timer.h"
#include "loop/work.h"
#include "mail/mail.h"
#include "route/numbers.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fax_job;

/* One fax running on a leg (a script's call, or an API send's call). */
struct fax_op {
    media_id media;
    uint32_t tag;
    int64_t row, domain_id;
    bool send, done;
    struct fax_job *job; /* API send, or NULL */
    /* the outcome, for call:fax_last() */
    int reason, pages, resolution, bit_rate;
    bool ecm;
    char remote_ident[24];
};

struct fax_job {
    struct fax_job *next;
    int64_t id, domain_id, owner_id;
    char number[40];
    char *path;
    int attempts, max_attempts;
    cw_timer *timer;
    call *c;
    struct fax_op *op;
    bool answered;
    bool dialing;           /* inside call_originate() */
    const char *early_fail; /* the call failed while being dialled */
};

static struct {
    cw_map ops;  /* media id -> struct fax_op */
    cw_map last; /* media id -> struct fax_op of a finished fax (call:fax_last) */
    struct fax_job *jobs;
} F;

/* ---- the row and its protocol ---- */

static void protocol_add(int64_t row, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void protocol_add(int64_t row, const char *fmt, ...)
{
    cw_buf b;
    cw_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    cw_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    store_res *r;
    json_t *list = NULL;
    if (store_query(store_main(), &r, "SELECT protocol FROM faxes WHERE id = ?", SA_INT(row),
                    SA_END) >= 0 &&
        store_next(r))
        list = json_loads(store_str(r, 0), 0, NULL);
    store_res_free(r);
    if (!json_is_array(list)) {
        json_decref(list);
        list = json_array();
    }
    json_array_append_new(
        list, json_pack("{s:I,s:s}", "t", (json_int_t)cw_wall_ms(), "text", b.data ? b.data : ""));
    char *text = json_dumps(list, JSON_COMPACT);
    store_exec(store_main(), "UPDATE faxes SET protocol = ?, updated_at = ? WHERE id = ?",
               SA_STR(text), SA_INT(cw_wall_time()), SA_INT(row), SA_END);
    free(text);
    json_decref(list);
    cw_buf_free(&b);
}

static void set_status(int64_t row, const char *status)
{
    store_exec(store_main(), "UPDATE faxes SET status = ?, updated_at = ? WHERE id = ?",
               SA_STR(status), SA_INT(cw_wall_time()), SA_INT(row), SA_END);
}

static char *fax_dir(int64_t domain)
{
    return cw_sprintf("%s/faxes/%lld", config_str("var_dir"), (long long)domain);
}

static char *fax_file(int64_t domain, int64_t row)
{
    return cw_sprintf("%s/faxes/%lld/%lld.tiff", config_str("var_dir"), (long long)domain,
                      (long long)row);
}

static void emit_fax(const char *type, int64_t domain, int64_t row)
{
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT direction, counterpart, status, pages, owner_id, group_id FROM faxes "
                    "WHERE id = ?",
                    SA_INT(row), SA_END) < 0 ||
        !store_next(r)) {
        store_res_free(r);
        return;
    }
    json_t *d = json_pack("{s:I,s:s,s:s,s:s,s:I}", "id", (json_int_t)row, "direction",
                          store_str(r, 0), "counterpart", store_str(r, 1), "status",
                          store_str(r, 2), "pages", (json_int_t)store_int(r, 3));
    if (!store_isnull(r, 4)) json_object_set_new(d, "owner_id", json_integer(store_int(r, 4)));
    if (!store_isnull(r, 5)) json_object_set_new(d, "group_id", json_integer(store_int(r, 5)));
    store_res_free(r);
    events_emit(type, domain, d);
}

/* ---- mail for a received fax ---- */

struct fax_mail {
    int64_t row;
};

static void mail_done(int rc, const char *error, void *arg)
{
    struct fax_mail *m = arg;
    if (rc)
        log_warn("fax", "mail of fax %lld not sent: %s", (long long)m->row,
                 error ? error : cw_strerror(rc));
    else
        protocol_add(m->row, "mailed to the box owner");
    free(m);
}

static void mail_received(int64_t row)
{
    if (!mail_enabled()) return;
    store_res *r;
    if (store_query(
            store_main(), &r,
            "SELECT COALESCE(u.email, g.email), f.counterpart, f.counterpart_name, "
            "f.pages, f.path, d.timezone, d.name, COALESCE(u.display_name, g.name), "
            "f.remote_ident, f.created_at FROM faxes f JOIN domains d ON d.id = f.domain_id "
            "LEFT JOIN users u ON u.id = f.owner_id "
            "LEFT JOIN call_groups g ON g.id = f.group_id WHERE f.id = ?",
            SA_INT(row), SA_END) < 0 ||
        !store_next(r) || !store_str(r, 0) || !*store_str(r, 0)) {
        store_res_free(r);
        return;
    }
    struct cw_localtime lt;
    cw_tz_local(store_str(r, 5), store_int(r, 9), &lt);
    const char *who = store_str(r, 1), *name = store_str(r, 2);
    char *subject =
        cw_sprintf("Fax from %s%s%s%s (%lld page%s)", who, *name ? " (" : "", name,
                   *name ? ")" : "", (long long)store_int(r, 3), store_int(r, 3) == 1 ? "" : "s");
    char *text = cw_sprintf(
        "Hello %s,\n\nyou have a new fax.\n\n"
        "From: %s %s\nSender ident: %s\nReceived: %04d-%02d-%02d %02d:%02d (%s)\nPages: %lld\n\n"
        "View online: %s/api/v1/me/faxes/%lld/pages/1?format=png\n"
        "The document is attached as TIFF.\n",
        store_str(r, 7) ? store_str(r, 7) : "", who, name, store_str(r, 8), lt.year, lt.month,
        lt.day, lt.hour, lt.min, store_str(r, 5), (long long)store_int(r, 3),
        config_str("public_url"), (long long)row);
    char fname[48];
    snprintf(fname, sizeof fname, "fax-%lld.tiff", (long long)row);
    struct mail_attachment att = {
        .filename = fname, .content_type = "image/tiff", .path = store_str(r, 4)};
    struct fax_mail *m = cw_calloc(1, sizeof *m);
    m->row = row;
    if (mail_send(store_str(r, 0), subject, text, &att, mail_done, m)) {
        log_warn("fax", "mail of fax %lld not queued", (long long)row);
        free(m);
    }
    free(subject);
    free(text);
    store_res_free(r);
}

/* ---- running a fax on a leg ---- */

static struct fax_op *op_start(media_id media, uint32_t tag, int64_t row, int64_t domain, bool send,
                               struct fax_job *job)
{
    struct fax_op *op = cw_calloc(1, sizeof *op);
    op->media = media;
    op->tag = tag;
    op->row = row;
    op->domain_id = domain;
    op->send = send;
    op->job = job;
    free(cw_map_del(&F.last, media));
    cw_map_put(&F.ops, media, op);
    return op;
}

static void job_attempt_failed(struct fax_job *j, const char *why);
static void job_finish_call(struct fax_job *j);

/* A fax is over: row, protocol, mail, job. */
static void op_done(struct fax_op *op, const struct media_event *ev)
{
    op->done = true;
    op->reason = ev->reason;
    op->pages = ev->pages;
    op->resolution = ev->resolution;
    op->bit_rate = ev->bit_rate;
    op->ecm = ev->ecm;
    cw_strlcpy(op->remote_ident, ev->remote_ident, sizeof op->remote_ident);
    const char *result = media_fax_result_text(ev->reason);
    const char *status;
    if (op->send)
        status = ev->reason == 0 ? "delivered" : op->job ? "retry_wait" : "not_delivered";
    else
        status = ev->reason == 0 ? "received" : ev->pages > 0 ? "partial" : "failed";
    if (op->row) {
        struct stat sb;
        int64_t size = 0;
        if (!op->send) {
            char *path = fax_file(op->domain_id, op->row);
            if (!stat(path, &sb)) size = sb.st_size;
            free(path);
        }
        store_exec(store_main(),
                   "UPDATE faxes SET status = ?, pages = ?, resolution = ?, bit_rate = ?, "
                   "remote_ident = ?, error = ?, size = CASE WHEN ? > 0 THEN ? ELSE size END, "
                   "updated_at = ? WHERE id = ?",
                   SA_STR(status), SA_INT(ev->pages), SA_INT(ev->resolution), SA_INT(ev->bit_rate),
                   SA_STR(ev->remote_ident), SA_STR(ev->reason ? result : ""), SA_INT(size),
                   SA_INT(size), SA_INT(cw_wall_time()), SA_INT(op->row), SA_END);
        if (ev->reason == 0)
            protocol_add(op->row, "%s: %d page%s, %d dpi, %d bit/s%s%s%s",
                         op->send ? "delivered" : "received", ev->pages, ev->pages == 1 ? "" : "s",
                         ev->resolution, ev->bit_rate, ev->ecm ? ", ECM" : "",
                         ev->remote_ident[0] ? ", ident " : "", ev->remote_ident);
        else
            protocol_add(op->row, "T.30 ended: %s (code %d) after %d page%s", result, ev->reason,
                         ev->pages, ev->pages == 1 ? "" : "s");
        if (!op->send && ev->pages > 0) mail_received(op->row);
        if (!op->job) emit_fax(op->send ? "fax.sent" : "fax.received", op->domain_id, op->row);
    }
    log_info("fax", "fax %lld %s: %s, %d page(s)", (long long)op->row,
             op->send ? "sent" : "received", result, ev->pages);
    cw_map_del(&F.ops, op->media);
    struct fax_op *old = cw_map_get(&F.last, op->media);
    if (old != op) free(old);
    cw_map_put(&F.last, op->media, op);
    struct fax_job *j = op->job;
    op->job = NULL;
    if (j) {
        j->op = NULL;
        if (ev->reason == 0) {
            set_status(j->id, "delivered");
            emit_fax("fax.sent", j->domain_id, j->id);
            job_finish_call(j);
        } else {
            job_finish_call(j);
            job_attempt_failed(j, result);
        }
    }
}

bool call_fax_event(const struct media_event *ev)
{
    if (ev->type == MEDIA_EV_CLOSED) {
        free(cw_map_del(&F.last, ev->id));
        return false;
    }
    if (ev->type != MEDIA_EV_FAX_PAGE && ev->type != MEDIA_EV_FAX_DONE) return false;
    struct fax_op *op = cw_map_get(&F.ops, ev->id);
    if (!op || op->tag != ev->tag) return false;
    if (ev->type == MEDIA_EV_FAX_PAGE) {
        if (op->row)
            protocol_add(op->row, "page %d %s (%d dpi, %d bit/s%s)", ev->pages,
                         op->send ? "sent" : "received", ev->resolution, ev->bit_rate,
                         ev->ecm ? ", ECM" : "");
        return false;
    }
    op_done(op, ev);
    return false;
}

/* ---- boxes ---- */

/* The box a script names: a user (id, "user:<id>", extension or login) or
 * "group:<id | extension | name>" of the call's domain. */
static bool box_resolve(lua_State *L, int idx, int64_t domain, int64_t *user, int64_t *group)
{
    *user = *group = 0;
    if (lua_isnoneornil(L, idx)) return true;
    int64_t found = 0;
    if (lua_isinteger(L, idx)) {
        int64_t id = lua_tointeger(L, idx);
        if (store_query_int(store_main(), &found,
                            "SELECT id FROM users WHERE id = ? AND domain_id = ?", SA_INT(id),
                            SA_INT(domain), SA_END))
            return false;
        *user = found;
        return true;
    }
    const char *s = lua_tostring(L, idx);
    if (!s) return false;
    if (cw_str_has_prefix(s, "group:")) {
        const char *k = s + 6;
        int64_t id = 0;
        cw_parse_i64(k, &id);
        if (store_query_int(store_main(), &found,
                            "SELECT id FROM call_groups WHERE domain_id = ? AND "
                            "(id = ? OR extension = ? OR name = ?)",
                            SA_INT(domain), SA_INT(id), SA_STR(k), SA_STR(k), SA_END))
            return false;
        *group = found;
        return true;
    }
    int64_t id = 0;
    if (cw_str_has_prefix(s, "user:") && cw_parse_i64(s + 5, &id)) return false;
    if (store_query_int(store_main(), &found,
                        "SELECT id FROM users WHERE domain_id = ? AND "
                        "(id = ? OR extension = ? OR login = ?)",
                        SA_INT(domain), SA_INT(id), SA_STR(s), SA_STR(s), SA_END))
        return false;
    *user = found;
    return true;
}

/* A new fax row; origin: "call" (a script's call) or "api" (a send job). */
static int64_t row_new(int64_t domain, int64_t user, int64_t group, const char *direction,
                       const char *counterpart, const char *name, const char *status,
                       const char *call_uuid, int max_attempts, const char *origin)
{
    int64_t id = 0, now = cw_wall_time();
    if (store_query_int(store_main(), &id,
                        "INSERT INTO faxes(domain_id, owner_id, group_id, direction, counterpart, "
                        "counterpart_name, status, call_uuid, max_attempts, origin, created_at, "
                        "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                        SA_INT(domain), user ? SA_INT(user) : SA_NULL,
                        group ? SA_INT(group) : SA_NULL, SA_STR(direction), SA_STR(counterpart),
                        SA_STR(name), SA_STR(status), SA_STR(call_uuid), SA_INT(max_attempts),
                        SA_STR(origin), SA_INT(now), SA_INT(now), SA_END)) {
        log_error("fax", "fax row not stored: %s", store_errmsg(store_main()));
        return 0;
    }
    return id;
}

/* ---- Lua ---- */

/* The box argument: opts.box / opts.group, or a bare box value. Pushes nothing. */
static bool script_box(lua_State *L, int idx, int64_t domain, int64_t *user, int64_t *group)
{
    if (!lua_istable(L, idx)) return box_resolve(L, idx, domain, user, group);
    lua_getfield(L, idx, "box");
    bool ok = box_resolve(L, lua_gettop(L), domain, user, group);
    lua_pop(L, 1);
    if (!ok || *user) return ok;
    lua_getfield(L, idx, "group");
    if (!lua_isnil(L, -1)) {
        if (lua_isinteger(L, -1))
            lua_pushfstring(L, "group:%d", (int)lua_tointeger(L, -1));
        else
            lua_pushfstring(L, "group:%s", lua_tostring(L, -1));
        ok = box_resolve(L, lua_gettop(L), domain, user, group);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return ok;
}

static int no(lua_State *L, const char *why)
{
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
}

int call_fax_receive_leg(call *c, call_leg *l, int64_t user, int64_t group, uint32_t tag)
{
    json_t *info = call_to_json(c);
    const char *nm = json_string_value(json_object_get(info, "from_name"));
    int64_t row = row_new(call_domain(c), user, group, "in", call_caller_number(c), nm ? nm : "",
                          "receiving", call_uuid(c), 1, "call");
    json_decref(info);
    if (!row) return CW_EIO;
    char *path = fax_file(call_domain(c), row);
    cw_mkdir_parents(path);
    store_exec(store_main(), "UPDATE faxes SET path = ? WHERE id = ?", SA_STR(path), SA_INT(row),
               SA_END);
    protocol_add(row, "call from %s answered; receiving", call_caller_number(c));
    int rc = media_fax_start(leg_media(l), path, false, false, tag); /* we answered */
    free(path);
    if (rc) {
        set_status(row, "failed");
        protocol_add(row, "the fax receiver did not start: %s", cw_strerror(rc));
        return rc;
    }
    op_start(leg_media(l), tag, row, call_domain(c), false, NULL);
    call_log(c, "fax", "receiving fax %lld", (long long)row);
    emit_fax("fax.receiving", call_domain(c), row);
    return CW_OK;
}

/*
 * call:fax_receive(box | {box=, group=}) answers and receives a fax into the
 * box's fax list (or the domain's, with no box); waits for the end of T.30.
 * -> ok, {reason, pages, resolution, hungup} (cw/fax.lua adds the rest)
 */
int call_fax_lua_receive(lua_State *L)
{
    call *c = call_lua_check(L);
    if (!c) return no(L, "hangup");
    int64_t user, group;
    if (!script_box(L, 2, call_domain(c), &user, &group)) return no(L, "no_box");
    uint32_t tag = call_lua_tag(L);
    call_leg *a = call_a_leg(c);
    if (!tag || leg_state(a) == LEG_ENDED) return call_lua_await(L, 0, 0);
    if (call_answer(c)) return no(L, "hangup");
    int rc = call_fax_receive_leg(c, a, user, group, tag);
    if (rc) return no(L, rc == CW_EIO ? "store" : cw_strerror(rc));
    return call_lua_await(L, MEDIA_EV_FAX_DONE, tag);
}

/*
 * call:fax_send(tiff, {box=}) answers and sends a fax-ready TIFF (absolute,
 * or under var_dir) on this call; the fax is listed in the box's fax list.
 * -> ok, {reason, pages, resolution, hungup}
 */
int call_fax_lua_send(lua_State *L)
{
    call *c = call_lua_check(L);
    const char *file = luaL_checkstring(L, 2);
    if (!c) return no(L, "hangup");
    if (strstr(file, "..")) return luaL_argerror(L, 2, "path may not contain ..");
    int64_t user, group;
    if (!script_box(L, 3, call_domain(c), &user, &group)) return no(L, "no_box");
    char *path =
        file[0] == '/' ? cw_strdup(file) : cw_sprintf("%s/%s", config_str("var_dir"), file);
    int pages = 0;
    if (media_fax_pages(path, &pages)) {
        free(path);
        return no(L, "no_document");
    }
    uint32_t tag = call_lua_tag(L);
    call_leg *a = call_a_leg(c);
    if (!tag || leg_state(a) == LEG_ENDED) {
        free(path);
        return call_lua_await(L, 0, 0);
    }
    if (call_answer(c)) {
        free(path);
        return no(L, "hangup");
    }
    json_t *info = call_to_json(c);
    const char *nm = json_string_value(json_object_get(info, "from_name"));
    int64_t row = row_new(call_domain(c), user, group, "out", call_caller_number(c), nm ? nm : "",
                          "sending", call_uuid(c), 1, "call");
    json_decref(info);
    if (!row) {
        free(path);
        return no(L, "store");
    }
    store_exec(store_main(), "UPDATE faxes SET path = ?, doc_pages = ?, attempts = 1 WHERE id = ?",
               SA_STR(path), SA_INT(pages), SA_INT(row), SA_END);
    protocol_add(row, "sending %d page%s on the call from %s", pages, pages == 1 ? "" : "s",
                 call_caller_number(c));
    int rc = media_fax_start(leg_media(a), path, true, false, tag); /* we answered */
    free(path);
    if (rc) {
        set_status(row, "not_delivered");
        protocol_add(row, "the fax sender did not start: %s", cw_strerror(rc));
        return no(L, cw_strerror(rc));
    }
    op_start(leg_media(a), tag, row, call_domain(c), true, NULL);
    call_log(c, "fax", "sending fax %lld", (long long)row);
    return call_lua_await(L, MEDIA_EV_FAX_DONE, tag);
}

/* call:fax_last() -> {id, direction, status, pages, resolution, bit_rate, ecm, remote_ident,
 * result, error} of the call's last fax, or nil */
int call_fax_lua_last(lua_State *L)
{
    call *c = call_lua_check(L);
    if (!c) return 0;
    media_id m = leg_media(call_a_leg(c));
    struct fax_op *op = cw_map_get(&F.last, m);
    if (!op) op = cw_map_get(&F.ops, m);
    if (!op) return 0;
    lua_createtable(L, 0, 10);
    lua_pushinteger(L, op->row), lua_setfield(L, -2, "id");
    lua_pushstring(L, op->send ? "out" : "in"), lua_setfield(L, -2, "direction");
    const char *st = !op->done         ? (op->send ? "sending" : "receiving")
                     : op->reason == 0 ? (op->send ? "delivered" : "received")
                     : op->send        ? "not_delivered"
                     : op->pages > 0   ? "partial"
                                       : "failed";
    lua_pushstring(L, st), lua_setfield(L, -2, "status");
    lua_pushinteger(L, op->pages), lua_setfield(L, -2, "pages");
    lua_pushinteger(L, op->resolution), lua_setfield(L, -2, "resolution");
    lua_pushinteger(L, op->bit_rate), lua_setfield(L, -2, "bit_rate");
    lua_pushboolean(L, op->ecm), lua_setfield(L, -2, "ecm");
    lua_pushstring(L, op->remote_ident), lua_setfield(L, -2, "remote_ident");
    lua_pushstring(L, op->done ? media_fax_result_text(op->reason) : ""),
        lua_setfield(L, -2, "result");
    lua_pushinteger(L, op->reason), lua_setfield(L, -2, "reason");
    return 1;
}

/* ---- API sends: the platform dials ---- */

static void job_free(struct fax_job *j)
{
    struct fax_job **pp = &F.jobs;
    while (*pp && *pp != j)
        pp = &(*pp)->next;
    if (*pp) *pp = j->next;
    cw_timer_free(j->timer);
    free(j->path);
    free(j);
}

static void job_run(void *arg);

static void job_schedule(struct fax_job *j, int64_t delay_ms)
{
    if (!j->timer) j->timer = cw_timer_new(job_run, j);
    cw_timer_start(j->timer, delay_ms < 0 ? 0 : delay_ms);
}

static void job_finish_call(struct fax_job *j)
{
    if (!j->c) return;
    call *c = j->c;
    j->c = NULL;
    call_hangup(c, SIP_CAUSE_NORMAL);
    call_unref(c);
}

static void job_attempt_failed(struct fax_job *j, const char *why)
{
    store_exec(store_main(), "UPDATE faxes SET error = ? WHERE id = ?", SA_STR(why), SA_INT(j->id),
               SA_END);
    if (j->attempts < j->max_attempts) {
        int64_t wait = CW_MAX(1, config_int("fax.retry_interval"));
        set_status(j->id, "retry_wait");
        protocol_add(j->id, "attempt %d failed: %s; next attempt in %lld s", j->attempts, why,
                     (long long)wait);
        store_exec(store_main(), "UPDATE faxes SET send_at = ? WHERE id = ?",
                   SA_INT(cw_wall_time() + wait), SA_INT(j->id), SA_END);
        job_schedule(j, wait * 1000);
        return;
    }
    set_status(j->id, "not_delivered");
    protocol_add(j->id, "attempt %d failed: %s; not delivered", j->attempts, why);
    emit_fax("fax.sent", j->domain_id, j->id);
    job_free(j);
}

static void job_answered(call_leg *leg, void *arg)
{
    struct fax_job *j = arg;
    j->answered = true;
    uint32_t tag = (uint32_t)j->id * 8u + (uint32_t)j->attempts;
    protocol_add(j->id, "%s answered; sending", j->number);
    if (media_fax_send(leg_media(leg), j->path, tag)) {
        job_finish_call(j);
        job_attempt_failed(j, "the fax sender did not start");
        return;
    }
    j->op = op_start(leg_media(leg), tag, j->id, j->domain_id, true, j);
}

static void job_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    struct fax_job *j = arg;
    if (j->op) return; /* T.30 was running: its FAX_DONE decides */
    if (j->dialing) {
        j->early_fail = sip_cause_name(cause);
        return;
    }
    if (!j->c) return; /* already decided */
    call *c = j->c;
    j->c = NULL;
    call_unref(c);
    job_attempt_failed(j, was_answered ? "the call ended before the fax started"
                                       : sip_cause_name(cause));
}

/* Where the job's number leads: a user of the domain, or a trunk. */
static int job_target(struct fax_job *j, struct dial_target *t, char *cli, size_t clen)
{
    memset(t, 0, sizeof *t);
    t->timeout_s = (int)config_int("sip.ring_timeout");
    cli[0] = '\0';
    store_res *r;
    char restriction[48] = "none";
    if (store_query(store_main(), &r,
                    "SELECT u.extension, u.restriction, COALESCE(u.cli_number, d.default_cli, '') "
                    "FROM users u JOIN domains d ON d.id = u.domain_id WHERE u.id = ?",
                    SA_INT(j->owner_id), SA_END) >= 0 &&
        store_next(r)) {
        cw_strlcpy(cli, store_str(r, 0) ? store_str(r, 0) : "", clen);
        cw_strlcpy(restriction, store_str(r, 1), sizeof restriction);
        if (store_str(r, 2) && *store_str(r, 2)) cw_strlcpy(t->from_user, store_str(r, 2), 64);
    }
    store_res_free(r);
    int64_t uid;
    if (store_query_int(store_main(), &uid,
                        "SELECT id FROM users WHERE domain_id = ? AND status = 'active' AND "
                        "extension = ?",
                        SA_INT(j->domain_id), SA_STR(j->number), SA_END) == CW_OK) {
        t->kind = SIP_TARGET_USER;
        t->user_id = uid;
        t->from_user[0] = '\0';
        return CW_OK;
    }
    enum number_class cls = route_classify(j->number);
    if (!route_restriction_allows(restriction, cls)) return CW_EPERM;
    struct sip_route route;
    int rc = sip_route_outbound(j->domain_id, j->owner_id, j->number, &route);
    if (rc) return rc;
    t->kind = SIP_TARGET_TRUNK;
    t->trunk_id = route.trunk_id;
    cw_strlcpy(t->uri, route.number, sizeof t->uri);
    if (route.caller_id[0]) cw_strlcpy(t->from_user, route.caller_id, sizeof t->from_user);
    return CW_OK;
}

static void job_run(void *arg)
{
    struct fax_job *j = arg;
    char status[24] = "";
    store_res *r;
    if (store_query(store_main(), &r, "SELECT status FROM faxes WHERE id = ?", SA_INT(j->id),
                    SA_END) >= 0 &&
        store_next(r))
        cw_strlcpy(status, store_str(r, 0), sizeof status);
    store_res_free(r);
    if (strcmp(status, "converted") && strcmp(status, "retry_wait")) {
        job_free(j); /* deleted or settled meanwhile */
        return;
    }
    j->attempts++;
    j->answered = false;
    store_exec(store_main(),
               "UPDATE faxes SET status = 'sending', attempts = ?, send_at = NULL, updated_at = ? "
               "WHERE id = ?",
               SA_INT(j->attempts), SA_INT(cw_wall_time()), SA_INT(j->id), SA_END);
    struct dial_target t;
    char cli[64];
    int rc = job_target(j, &t, cli, sizeof cli);
    if (rc) {
        protocol_add(j->id, "attempt %d: %s cannot be dialled (%s)", j->attempts, j->number,
                     rc == CW_EPERM ? "the sender's restriction forbids it" : "no route");
        j->attempts = j->max_attempts; /* no point in trying again */
        job_attempt_failed(j, rc == CW_EPERM ? "restricted" : "no_route");
        return;
    }
    protocol_add(j->id, "send command: attempt %d of %d, calling %s", j->attempts, j->max_attempts,
                 j->number);
    struct leg_watch w = {NULL, job_answered, job_ended, j};
    j->dialing = true;
    j->early_fail = NULL;
    call *c = call_originate(j->domain_id, &t, cli, "Fax", &w);
    j->dialing = false;
    if (!c || j->early_fail || leg_state(call_a_leg(c)) == LEG_ENDED) {
        job_attempt_failed(j, j->early_fail ? j->early_fail : "the call could not start");
        return;
    }
    call_ref(c);
    j->c = c;
    call_log(c, "fax", "sending fax %lld to %s", (long long)j->id, j->number);
    store_exec(store_main(), "UPDATE faxes SET call_uuid = ? WHERE id = ?", SA_STR(call_uuid(c)),
               SA_INT(j->id), SA_END);
}

static struct fax_job *job_new(int64_t id, int64_t domain, int64_t owner, const char *number,
                               const char *path, int attempts, int max_attempts)
{
    struct fax_job *j = cw_calloc(1, sizeof *j);
    j->id = id;
    j->domain_id = domain;
    j->owner_id = owner;
    cw_strlcpy(j->number, number, sizeof j->number);
    j->path = cw_strdup(path);
    j->attempts = attempts;
    j->max_attempts = max_attempts;
    j->next = F.jobs;
    F.jobs = j;
    return j;
}

/* At start: faxes of calls a stop cut short are settled; API sends left unfinished go on. */
static void jobs_resume(void)
{
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT id, direction FROM faxes WHERE origin = 'call' AND "
                    "status IN ('receiving', 'sending')",
                    SA_END) >= 0) {
        while (store_next(r)) {
            bool in = !strcmp(store_str(r, 1), "in");
            int64_t id = store_int(r, 0);
            store_exec(store_main(),
                       "UPDATE faxes SET status = ?, error = 'cut short by a restart' WHERE id = ?",
                       SA_STR(in ? "failed" : "not_delivered"), SA_INT(id), SA_END);
            protocol_add(id, "the call was cut short by a restart of the platform");
        }
        store_res_free(r);
    }
    if (store_query(store_main(), &r,
                    "SELECT id, domain_id, owner_id, counterpart, path, attempts, max_attempts, "
                    "status, send_at FROM faxes WHERE origin = 'api' AND owner_id IS NOT NULL "
                    "AND status IN ('converted', 'retry_wait', 'sending')",
                    SA_END) < 0)
        return;
    int64_t now = cw_wall_time();
    while (store_next(r)) {
        struct fax_job *j = job_new(store_int(r, 0), store_int(r, 1), store_int(r, 2),
                                    store_str(r, 3), store_str(r, 4) ? store_str(r, 4) : "",
                                    (int)store_int(r, 5), (int)store_int(r, 6));
        int64_t at = store_isnull(r, 8) ? now : store_int(r, 8);
        if (!strcmp(store_str(r, 7), "sending")) {
            set_status(j->id, "retry_wait");
            protocol_add(j->id, "attempt %d was cut short by a restart", j->attempts);
            if (j->attempts >= j->max_attempts) j->max_attempts = j->attempts + 1;
            at = now;
        }
        job_schedule(j, (at - now) * 1000);
    }
    store_res_free(r);
}

/* ---- API: send, download, page images ---- */

struct upload {
    http_req *req;
    int64_t domain_id, owner_id, send_at;
    char number[40];
    char *tmp, *ready;
    unsigned char *data;
    size_t len;
    int pages, rc;
    char err[200];
};

static void upload_run(void *arg)
{
    struct upload *u = arg;
    FILE *f = fopen(u->tmp, "wb");
    if (!f || fwrite(u->data, 1, u->len, f) != u->len) {
        if (f) fclose(f);
        u->rc = CW_EIO;
        snprintf(u->err, sizeof u->err, "the upload could not be stored");
        return;
    }
    fclose(f);
    u->rc = media_fax_prepare(u->tmp, u->ready, &u->pages, u->err, sizeof u->err);
    remove(u->tmp);
}

static void upload_done(void *arg)
{
    struct upload *u = arg;
    http_req *req = u->req;
    if (u->rc) {
        remove(u->ready);
        if (u->rc == CW_EINVAL)
            http_reply_error(req, 415, "bad_document", NULL, "not a usable TIFF: %s", u->err);
        else
            http_reply_error(req, 500, "io", NULL, "%s", u->err);
        goto out;
    }
    int max_attempts = 1 + (int)CW_MIN(CW_MAX(config_int("fax.retries"), 0), 10);
    int64_t row = row_new(u->domain_id, u->owner_id, 0, "out", u->number, "", "converted", "",
                          max_attempts, "api");
    char *path = row ? fax_file(u->domain_id, row) : NULL;
    if (!row || rename(u->ready, path)) {
        remove(u->ready);
        if (row) store_exec(store_main(), "DELETE FROM faxes WHERE id = ?", SA_INT(row), SA_END);
        free(path);
        http_reply_error(req, 500, "io", NULL, "the fax could not be stored");
        goto out;
    }
    struct stat sb;
    store_exec(store_main(),
               "UPDATE faxes SET path = ?, doc_pages = ?, size = ?, send_at = ? WHERE id = ?",
               SA_STR(path), SA_INT(u->pages), SA_INT(stat(path, &sb) ? 0 : (int64_t)sb.st_size),
               u->send_at ? SA_INT(u->send_at) : SA_NULL, SA_INT(row), SA_END);
    protocol_add(row, "document uploaded (%zu bytes)", u->len);
    protocol_add(row, "taken for conversion");
    protocol_add(row, "conversion succeeded: %d page%s", u->pages, u->pages == 1 ? "" : "s");
    struct fax_job *j = job_new(row, u->domain_id, u->owner_id, u->number, path, 0, max_attempts);
    int64_t now = cw_wall_time();
    job_schedule(j, u->send_at > now ? (u->send_at - now) * 1000 : 0);
    free(path);
    if (req->ev)
        http_audit(req, u->domain_id, "fax", u->number, "create",
                   json_pack("{s:I,s:i}", "id", (json_int_t)row, "pages", u->pages));
    emit_fax("fax.queued", u->domain_id, row);
    json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:i,s:i}", "id", (json_int_t)row, "direction", "out",
                          "counterpart", u->number, "status", "converted", "doc_pages", u->pages,
                          "max_attempts", max_attempts);
    if (u->send_at) json_object_set_new(o, "send_at", json_integer(u->send_at));
    http_reply_json(req, 202, o);
out:
    free(u->tmp);
    free(u->ready);
    free(u->data);
    free(u);
}

/* POST /api/v1/me/faxes?number=&send_at=  body: a TIFF */
static void send_fax(http_req *req)
{
    static const char *const allowed[] = {"number", "send_at", NULL};
    if (!http_query_only(req, allowed)) return;
    if (!req->auth->domain_id) {
        http_reply_error(req, 404, "not_found", NULL, "only domain users have a fax box");
        return;
    }
    const char *num = http_query(req, "number");
    size_t nlen = num ? strlen(num) : 0;
    size_t digits = num ? strspn(num[0] == '+' ? num + 1 : num, "0123456789") : 0;
    if (!num || nlen < 2 || nlen > 20 || digits != nlen - (num[0] == '+')) {
        http_reply_error(req, 400, "invalid_parameter", "number",
                         "number: 2..20 digits, optionally with a leading +");
        return;
    }
    int64_t send_at = 0;
    if (!http_query_int(req, "send_at", 0, &send_at)) return;
    if (send_at < 0 || (send_at && send_at > cw_wall_time() + 366 * 86400)) {
        http_reply_error(req, 400, "invalid_parameter", "send_at",
                         "send_at: a time (seconds since the epoch) within a year");
        return;
    }
    size_t len;
    const unsigned char *data = http_body(req, &len);
    if (!data || len < 8) {
        http_reply_error(req, 400, "empty_body", NULL, "send the TIFF document as the body");
        return;
    }
    struct upload *u = cw_calloc(1, sizeof *u);
    u->req = req;
    u->domain_id = req->auth->domain_id;
    u->owner_id = req->auth->user_id;
    u->send_at = send_at;
    cw_strlcpy(u->number, num, sizeof u->number);
    char *dir = fax_dir(u->domain_id);
    unsigned char rnd[8];
    char hex[17];
    cw_random_bytes(rnd, sizeof rnd);
    cw_hex(rnd, sizeof rnd, hex);
    u->tmp = cw_sprintf("%s/upload-%s.tiff", dir, hex);
    u->ready = cw_sprintf("%s/ready-%s.tiff", dir, hex);
    cw_mkdir_parents(u->tmp);
    free(dir);
    u->data = cw_malloc(len);
    memcpy(u->data, data, len);
    u->len = len;
    http_async(req);
    work_submit(upload_run, upload_done, u);
}

/* The fax a request names, if the caller may see it: its path (malloc'd). */
static char *fax_param(http_req *req, bool own, int64_t *id_out)
{
    int64_t dom, id;
    int idp = own ? 0 : 1;
    if (own) {
        dom = req->auth->domain_id;
    } else if (!http_domain_param(req, 0, &dom)) {
        return NULL;
    }
    store_res *r;
    char *path = NULL;
    if (!cw_parse_i64(req->params[idp], &id) &&
        store_query(store_main(), &r,
                    "SELECT path FROM faxes WHERE id = ? AND domain_id = ? AND "
                    "(? = 0 OR owner_id = ?)",
                    SA_INT(id), SA_INT(dom), SA_INT(own), SA_INT(req->auth->user_id),
                    SA_END) >= 0) {
        if (store_next(r) && store_str(r, 0)) path = cw_strdup(store_str(r, 0));
        store_res_free(r);
    }
    if (!path) {
        http_reply_error(req, 404, "not_found", NULL, "no such fax, or it has no document yet");
        return NULL;
    }
    *id_out = id;
    return path;
}

static void file_common(http_req *req, bool own)
{
    int64_t id;
    char *path = fax_param(req, own, &id);
    if (!path) return;
    char *name = cw_sprintf("fax-%lld.tiff", (long long)id);
    http_reply_file(req, path, "image/tiff", name);
    free(name);
    free(path);
}

static void file_own(http_req *req)
{
    file_common(req, true);
}

static void file_domain(http_req *req)
{
    file_common(req, false);
}

struct render {
    http_req *req;
    char *path;
    int page;
    char format[4];
    unsigned char *out;
    size_t len;
    int rc;
    char err[160];
};

static void render_run(void *arg)
{
    struct render *x = arg;
    x->rc = media_fax_render(x->path, x->page, x->format, &x->out, &x->len, x->err, sizeof x->err);
}

static void render_done(void *arg)
{
    struct render *x = arg;
    if (x->rc == CW_ENOENT)
        http_reply_error(x->req, 404, "not_found", "page", "%s", x->err);
    else if (x->rc)
        http_reply_error(x->req, 422, "bad_document", NULL, "%s", x->err);
    else
        http_reply_bytes(x->req, 200, !strcmp(x->format, "png") ? "image/png" : "image/gif", x->out,
                         x->len);
    free(x->out);
    free(x->path);
    free(x);
}

static void page_common(http_req *req, bool own)
{
    static const char *const allowed[] = {"format", NULL};
    if (!http_query_only(req, allowed)) return;
    const char *fmt = http_query(req, "format");
    if (fmt && strcmp(fmt, "png") && strcmp(fmt, "gif")) {
        http_reply_error(req, 400, "invalid_parameter", "format", "format must be png or gif");
        return;
    }
    int64_t page;
    if (cw_parse_i64(req->params[own ? 1 : 2], &page) || page < 1 || page > 1000) {
        http_reply_error(req, 404, "not_found", "page", "pages are numbered from 1");
        return;
    }
    int64_t id;
    char *path = fax_param(req, own, &id);
    if (!path) return;
    struct render *x = cw_calloc(1, sizeof *x);
    x->req = req;
    x->path = path;
    x->page = (int)page - 1;
    cw_strlcpy(x->format, fmt ? fmt : "png", sizeof x->format);
    http_async(req);
    work_submit(render_run, render_done, x);
}

static void page_own(http_req *req)
{
    page_common(req, true);
}

static void page_domain(http_req *req)
{
    page_common(req, false);
}

static void free_ops(cw_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] && m->keys[i] != UINT64_MAX) free(m->vals[i]);
    cw_map_free(m);
}

void call_fax_shutdown(void)
{
    while (F.jobs) {
        struct fax_job *j = F.jobs;
        if (j->c) { /* its call is being hung up: it must not report to a freed job */
            leg_set_watch(call_a_leg(j->c), &(struct leg_watch){0});
            call_unref(j->c);
            j->c = NULL;
        }
        job_free(j); /* the row stays 'sending' or waiting: resumed at the next start */
    }
    free_ops(&F.ops);
    free_ops(&F.last);
}

void call_fax_init(void)
{
    cw_map_init(&F.ops);
    cw_map_init(&F.last);
    http_route("POST", "/api/v1/me/faxes", send_fax, ROLE_SUBSCRIBER, HTTP_UPLOAD,
               "Send a fax: the TIFF document as the body (?number=, send_at=); converted, then "
               "dialled with retries");
    http_route("GET", "/api/v1/me/faxes/:id/file", file_own, ROLE_SUBSCRIBER, 0,
               "Download one of the caller's faxes as TIFF");
    http_route("GET", "/api/v1/me/faxes/:id/pages/:page", page_own, ROLE_SUBSCRIBER, 0,
               "A page of one of the caller's faxes as an image (?format=png|gif)");
    http_route("GET", "/api/v1/domains/:domain/faxes/:id/file", file_domain, ROLE_SUPERVISOR, 0,
               "Download a fax of the domain as TIFF");
    http_route("GET", "/api/v1/domains/:domain/faxes/:id/pages/:page", page_domain, ROLE_SUPERVISOR,
               0, "A page of a fax of the domain as an image (?format=png|gif)");
    jobs_resume();
}
