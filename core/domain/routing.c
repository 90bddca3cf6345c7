/*
 * routing.c - the data of incoming-call routing (seed 001 §9.1-9.5, seed
 * 002 day groups and schedules, seed 003 dialplan steps and classifiers):
 * day groups with holidays, named schedules, classifiers (named caller
 * lists), routing rules per external number with their targets, and the
 * number's black or white list. Everything is validated here on save, so
 * the Lua interpreter (scripts/cw/routing.lua) only ever sees sound data;
 * a refused change leaves the running version as it was.
 *
 * Times: a period is {days: [1..7] | day_group_id, from, to} in the
 * domain's time zone; from is inclusive, to exclusive, and a `to` of
 * "00:00" or "23:59" means the end of the day. A period never crosses
 * midnight. What refers to what is kept in routing_refs, so an object a
 * rule or schedule uses cannot be deleted from under it. Core thread only.
 */
#include "domain/crud.h"
#include "config/config.h"
#include "domain/domain.h"
#include "events/events.h"
#include "log/log.h"
#include "lua/script.h"
#include "route/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* descriptor tables name the leading members and leave the rest zero */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static const char *const day_names[] = {"",         "Monday", "Tuesday",  "Wednesday",
                                        "Thursday", "Friday", "Saturday", "Sunday"};

/* ------------------------------------------------------------ small parts */

static bool members_only(json_t *o, const char *const *allowed, const char **bad)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(*a, k)) ok = true;
        if (!ok) {
            *bad = k;
            return false;
        }
    }
    return true;
}

/* "HH:MM" -> minutes; end = true maps 00:00 and 23:59 to the end of the day. */
static bool parse_hhmm(json_t *v, bool end, int *out)
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) != 5 || s[2] != ':') return false;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9')) return false;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59) return false;
    *out = h * 60 + m;
    if (end && (*out == 0 || *out == 23 * 60 + 59)) *out = 24 * 60;
    return true;
}

/* "YYYY-MM-DD" (that day) or "MM-DD" (every year). */
static bool parse_date(const char *s)
{
    int y = 2000, m, d;
    char tail;
    size_t n = s ? strlen(s) : 0;
    if (n == 10) {
        if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || s[4] != '-' || s[7] != '-')
            return false;
        if (y < 1970 || y > 2200) return false;
    } else if (n == 5) {
        if (sscanf(s, "%2d-%2d%c", &m, &d, &tail) != 2 || s[2] != '-') return false;
    } else {
        return false;
    }
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return false;
    if (n == 10 && m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return false;
    return true;
}

static bool digits_only(const char *s, size_t min, size_t max, bool plus)
{
    if (!s) return false;
    if (plus && *s == '+') s++;
    size_t n = strlen(s);
    return n >= min && n <= max && strspn(s, "0123456789") == n;
}

static int64_t store_count(const char *sql, int64_t a, int64_t b)
{
    int64_t n = 0;
    store_query_int(store_main(), &n, sql, SA_INT(a), SA_INT(b), SA_END);
    return n;
}

/* Fail naming both the top-level field and the exact element (path). */
static bool fail_at(struct crud_ctx *c, const char *field, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool fail_at(struct crud_ctx *c, const char *field, const char *path, const char *fmt, ...)
{
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_reply_error_with(c->req, 400, "invalid_value", field, json_pack("{s:s}", "path", path),
                          msg);
    return false;
}

/* ------------------------------------------------------------- references */

/* Replace what an object refers to: refs is [{type, id}, ...]. */
static int refs_store(int64_t domain, const char *owner_type, int64_t owner_id, json_t *refs)
{
    store *st = store_main();
    int rc = store_exec(st, "DELETE FROM routing_refs WHERE owner_type = ? AND owner_id = ?",
                        SA_STR(owner_type), SA_INT(owner_id), SA_END);
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r)
    {
        if (rc < 0) break;
        rc = store_exec(st,
                        "INSERT INTO routing_refs(domain_id, owner_type, owner_id, ref_type, "
                        "ref_id) VALUES(?,?,?,?,?)",
                        SA_INT(domain), SA_STR(owner_type), SA_INT(owner_id),
                        SA_STR(json_string_value(json_object_get(r, "type"))),
                        SA_INT(json_integer_value(json_object_get(r, "id"))), SA_END);
    }
    return rc < 0 ? rc : CW_OK;
}

static void ref_add(json_t *refs, const char *type, int64_t id)
{
    if (refs)
        json_array_append_new(refs, json_pack("{s:s,s:I}", "type", type, "id", (json_int_t)id));
}

bool routing_not_referenced(struct crud_ctx *c, const char *ref_type)
{
    store_res *r;
    bool free_ = true;
    if (store_query(
            store_main(), &r,
            "SELECT f.owner_type, f.owner_id, n.number, s.name FROM routing_refs f "
            "LEFT JOIN routing_rules u ON f.owner_type = 'routing_rule' AND u.id = f.owner_id "
            "LEFT JOIN external_numbers n ON n.id = u.number_id "
            "LEFT JOIN schedules s ON f.owner_type = 'schedule' AND s.id = f.owner_id "
            "WHERE f.ref_type = ? AND f.ref_id = ? ORDER BY f.owner_type, f.owner_id",
            SA_STR(ref_type), SA_INT(c->id), SA_END) >= 0 &&
        store_next(r)) {
        free_ = false;
        if (!strcmp(store_str(r, 0), "routing_rule"))
            crud_fail(c, 409, "in_use", NULL,
                      "the %s is used by routing rule %lld of number %s; change that rule first",
                      c->e->label, (long long)store_int(r, 1),
                      store_str(r, 2) ? store_str(r, 2) : "?");
        else
            crud_fail(c, 409, "in_use", NULL, "the %s is used by schedule \"%s\"", c->e->label,
                      store_str(r, 3) ? store_str(r, 3) : "?");
    }
    store_res_free(r);
    if (free_)
        store_exec(store_main(), "DELETE FROM routing_refs WHERE owner_type = ? AND owner_id = ?",
                   SA_STR(c->e->type), SA_INT(c->id), SA_END);
    return free_;
}

/* -------------------------------------------------------------- schedules */

/* The weekday mask of a day group (bit d for day d); -1 if it is not the domain's. */
static int day_group_mask(int64_t domain, int64_t id)
{
    store_res *r;
    int mask = -1;
    if (store_query(store_main(), &r, "SELECT days FROM day_groups WHERE id = ? AND domain_id = ?",
                    SA_INT(id), SA_INT(domain), SA_END) >= 0 &&
        store_next(r)) {
        mask = 0;
        json_t *days = json_loads(store_str(r, 0), 0, NULL);
        size_t i;
        json_t *d;
        json_array_foreach(days, i, d) mask |= 1 << (int)json_integer_value(d);
        json_decref(days);
    }
    store_res_free(r);
    return mask;
}

/* While a day group is being changed, its new days (for re-checking its users). */
static struct {
    int64_t id;
    int mask;
} pending_group;

struct period {
    int mask, from, to;
};

/*
 * Check periods (the array at path) of a domain: shape, times, no period
 * crossing midnight, and no two periods covering the same minute of the same
 * weekday. Day groups referred to are added to refs. On error: where, msg.
 */
static bool periods_valid(int64_t domain, json_t *periods, const char *path, json_t *refs,
                          char *where, size_t wlen, char *msg, size_t mlen)
{
    static const char *const allowed[] = {"days", "day_group_id", "from", "to", NULL};
    size_t n = json_is_array(periods) ? json_array_size(periods) : 0;
    if (n < 1 || n > 32) {
        snprintf(where, wlen, "%s", path);
        snprintf(msg, mlen, "%s must be an array of 1..32 periods", path);
        return false;
    }
    struct period p[32];
    size_t i;
    json_t *o;
    json_array_foreach(periods, i, o)
    {
        snprintf(where, wlen, "%s[%zu]", path, i);
        const char *bad;
        if (!json_is_object(o)) {
            snprintf(msg, mlen, "%s must be {days | day_group_id, from, to}", where);
            return false;
        }
        if (!members_only(o, allowed, &bad)) {
            snprintf(msg, mlen, "%s: unknown field \"%s\"", where, bad);
            return false;
        }
        json_t *days = json_object_get(o, "days"), *dg = json_object_get(o, "day_group_id");
        if (!days == !dg) {
            snprintf(msg, mlen, "%s needs either days (1 = Monday .. 7) or day_group_id", where);
            return false;
        }
        p[i].mask = 0;
        if (days) {
            size_t k;
            json_t *d;
            if (!json_is_array(days) || !json_array_size(days)) {
                snprintf(msg, mlen, "%s.days must list weekdays 1..7 (1 = Monday)", where);
                return false;
            }
            json_array_foreach(days, k, d)
            {
                int64_t v = json_integer_value(d);
                if (!json_is_integer(d) || v < 1 || v > 7 || (p[i].mask & (1 << v))) {
                    snprintf(msg, mlen, "%s.days[%zu] must be a weekday 1..7 named once", where, k);
                    return false;
                }
                p[i].mask |= 1 << v;
            }
        } else {
            int64_t id = json_integer_value(dg);
            p[i].mask = pending_group.id && id == pending_group.id ? pending_group.mask
                                                                   : day_group_mask(domain, id);
            if (!json_is_integer(dg) || p[i].mask < 0) {
                snprintf(msg, mlen, "%s.day_group_id: no such day group", where);
                return false;
            }
            ref_add(refs, "day_group", id);
        }
        if (!parse_hhmm(json_object_get(o, "from"), false, &p[i].from) ||
            !parse_hhmm(json_object_get(o, "to"), true, &p[i].to)) {
            snprintf(msg, mlen, "%s: from and to must be \"HH:MM\"", where);
            return false;
        }
        if (p[i].from >= p[i].to) {
            snprintf(msg, mlen,
                     "%s: a period cannot cross midnight or be empty (from %s to %s); split it "
                     "into two, e.g. 19:00-00:00 and 00:00-10:00",
                     where, json_string_value(json_object_get(o, "from")),
                     json_string_value(json_object_get(o, "to")));
            return false;
        }
        for (size_t k = 0; k < i; k++) {
            int common = p[i].mask & p[k].mask;
            if (!common || p[i].from >= p[k].to || p[k].from >= p[i].to) continue;
            int day = 1;
            while (!(common & (1 << day)))
                day++;
            int from = p[i].from > p[k].from ? p[i].from : p[k].from;
            int to = p[i].to < p[k].to ? p[i].to : p[k].to;
            snprintf(msg, mlen,
                     "%s overlaps %s[%zu] on %s %02d:%02d-%02d:%02d; which one applies would "
                     "be ambiguous",
                     where, path, k, day_names[day], from / 60, from % 60, to / 60 % 24, to % 60);
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------- targets */

struct tcheck {
    int64_t domain;
    json_t *refs;
    char *where, *msg;
    size_t wlen, mlen;
};

static bool tfail(struct tcheck *t, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool tfail(struct tcheck *t, const char *path, const char *fmt, ...)
{
    char m[360];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    snprintf(t->where, t->wlen, "%s", path);
    snprintf(t->msg, t->mlen, "%s: %s", path, m);
    return false;
}

static bool row_exists(const char *table, int64_t id, int64_t domain, const char *cond)
{
    char *sql = cw_sprintf("SELECT 1 FROM %s WHERE id = ? AND domain_id = ?%s%s", table,
                           cond ? " AND " : "", cond ? cond : "");
    int64_t one;
    int rc = store_query_int(store_main(), &one, sql, SA_INT(id), SA_INT(domain), SA_END);
    free(sql);
    return rc == CW_OK;
}

/* A member that must be the id of a row of table in the domain. */
static bool tid(struct tcheck *t, json_t *o, const char *key, const char *path, const char *table,
                const char *what, const char *ref_type)
{
    char p[200];
    snprintf(p, sizeof p, "%s.%s", path, key);
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return tfail(t, p, "must be the id of a %s", what);
    if (!row_exists(table, json_integer_value(v), t->domain, NULL))
        return tfail(t, p, "no %s %lld in this domain", what, (long long)json_integer_value(v));
    ref_add(t->refs, ref_type, json_integer_value(v));
    return true;
}

static bool ttimeout(struct tcheck *t, json_t *o, const char *path, int min, int max)
{
    json_t *v = json_object_get(o, "timeout");
    if (!v) return true;
    char p[200];
    snprintf(p, sizeof p, "%s.timeout", path);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return tfail(t, p, "must be %d..%d seconds", min, max);
    return true;
}

/* Exactly one of a user box and a group box, each with the flag that must be on. */
static bool tbox(struct tcheck *t, json_t *o, const char *path, const char *what, const char *flag)
{
    json_t *u = json_object_get(o, "user"), *g = json_object_get(o, "group");
    if (!u == !g) return tfail(t, path, "needs either user or group (an id)");
    const char *key = u ? "user" : "group";
    const char *table = u ? "users" : "call_groups";
    if (!tid(t, o, key, path, table, u ? "user" : "call-processing group",
             u ? "user" : "call_group"))
        return false;
    if (flag && !row_exists(table, json_integer_value(u ? u : g), t->domain, flag)) {
        char p[200];
        snprintf(p, sizeof p, "%s.%s", path, key);
        return tfail(t, p, "%s is turned off for this %s", what, u ? "user" : "group");
    }
    return true;
}

static bool target_walk(struct tcheck *t, json_t *o, const char *path, int depth);

static bool tscript(struct tcheck *t, json_t *o, const char *path, int depth)
{
    char p[200];
    snprintf(p, sizeof p, "%s.code", path);
    json_t *code = json_object_get(o, "code");
    if (!json_is_string(code) || !json_string_length(code) || json_string_length(code) > 16384)
        return tfail(t, p, "must be Lua text of 1..16384 bytes");
    script_vm *vm = script_tenant(t->domain);
    if (!vm) return tfail(t, p, "the domain's script VM is not available");
    char err[256];
    if (script_compile(vm, "routing rule", json_string_value(code), err, sizeof err))
        return tfail(t, p, "does not compile: %s", err);
    lua_pop(script_vm_state(vm), 1);
    json_t *fb = json_object_get(o, "fallback");
    if (fb) {
        snprintf(p, sizeof p, "%s.fallback", path);
        if (json_is_object(fb) && json_is_string(json_object_get(fb, "type")) &&
            !strcmp(json_string_value(json_object_get(fb, "type")), "script"))
            return tfail(t, p, "a fallback cannot be another script");
        return target_walk(t, fb, p, depth + 1);
    }
    return true;
}

static bool tmessage(struct tcheck *t, json_t *o, const char *path)
{
    json_t *s = json_object_get(o, "sound_id"), *pr = json_object_get(o, "prompt");
    if (!s == !pr) return tfail(t, path, "needs either sound_id or prompt");
    if (s) return tid(t, o, "sound_id", path, "sound_files", "sound file", "sound_file");
    char p[200];
    snprintf(p, sizeof p, "%s.prompt", path);
    const char *name = json_string_value(pr);
    size_t n = name ? strlen(name) : 0;
    if (n < 4 || n > 80 || name[2] != '/' || strspn(name, "abcdefghijklmnopqrstuvwxyz") != 2 ||
        strspn(name + 3, "abcdefghijklmnopqrstuvwxyz0123456789_") != n - 3)
        return tfail(t, p, "must name a prompt such as \"en/welcome\"");
    char *file = cw_sprintf("%s/%s.wav", config_str("sounds_dir"), name);
    struct stat sb;
    bool ok = stat(file, &sb) == 0;
    free(file);
    return ok ? true : tfail(t, p, "no prompt %s", name);
}

static bool target_walk(struct tcheck *t, json_t *o, const char *path, int depth)
{
    static const struct {
        const char *type;
        const char *const members[6];
        const char *const outcomes[5];
    } kinds[] = {
        {"user", {"id", "on"}, {"no_answer", "busy", "no_route", "done"}},
        {"group", {"id", "timeout", "on"}, {"no_answer", "busy", "no_route", "done"}},
        {"ivr", {"id", "on"}, {"done"}},
        {"voicemail", {"user", "group"}, {0}},
        {"fax", {"user", "group"}, {0}},
        {"busy", {0}, {0}},
        {"external", {"number", "timeout", "on"}, {"no_answer", "busy", "no_route", "done"}},
        {"private_route",
         {"trunk_id", "number", "timeout", "on"},
         {"no_answer", "busy", "no_route", "done"}},
        {"script", {"code", "fallback"}, {0}},
        {"message", {"sound_id", "prompt", "on"}, {"done"}},
    };
    if (depth > 8) return tfail(t, path, "steps are nested more than 8 deep");
    if (!json_is_object(o)) return tfail(t, path, "must be an object {type, ...}");
    const char *type = json_string_value(json_object_get(o, "type"));
    size_t k = 0;
    while (k < CW_ARRAY_LEN(kinds) && (!type || strcmp(kinds[k].type, type)))
        k++;
    if (k == CW_ARRAY_LEN(kinds))
        return tfail(t, path,
                     "type must be one of user, group, ivr, voicemail, fax, busy, external, "
                     "private_route, script, message");
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        bool ok = !strcmp(key, "type");
        for (int i = 0; i < 6 && kinds[k].members[i]; i++)
            if (!strcmp(kinds[k].members[i], key)) ok = true;
        if (!ok) {
            char p[200];
            snprintf(p, sizeof p, "%s.%s", path, key);
            return tfail(t, p, "unknown field for a %s target", type);
        }
    }
    bool ok = true;
    if (!strcmp(type, "user")) {
        ok = tid(t, o, "id", path, "users", "user", "user");
    } else if (!strcmp(type, "group")) {
        ok = tid(t, o, "id", path, "call_groups", "call-processing group", "call_group") &&
             ttimeout(t, o, path, 1, 86400);
    } else if (!strcmp(type, "ivr")) {
        ok = tid(t, o, "id", path, "ivr_flows", "IVR flow", "ivr_flow");
    } else if (!strcmp(type, "voicemail")) {
        ok = tbox(t, o, path, "voicemail", "voicemail_enabled = 1");
    } else if (!strcmp(type, "fax")) {
        ok = tbox(t, o, path, "fax", NULL);
    } else if (!strcmp(type, "external")) {
        char p[200];
        snprintf(p, sizeof p, "%s.number", path);
        if (!digits_only(json_string_value(json_object_get(o, "number")), 3, 20, true))
            return tfail(t, p, "must be a phone number of 3..20 digits, optionally with +");
        ok = ttimeout(t, o, path, 5, 600);
    } else if (!strcmp(type, "private_route")) {
        char p[200];
        ok = tid(t, o, "trunk_id", path, "trunks", "private route", "trunk");
        if (ok && !row_exists("trunks", json_integer_value(json_object_get(o, "trunk_id")),
                              t->domain, "kind = 'private_route'")) {
            snprintf(p, sizeof p, "%s.trunk_id", path);
            return tfail(t, p, "trunk %lld is not a private route",
                         (long long)json_integer_value(json_object_get(o, "trunk_id")));
        }
        const char *num = json_string_value(json_object_get(o, "number"));
        snprintf(p, sizeof p, "%s.number", path);
        if (ok &&
            (!num || !*num || strlen(num) > 32 || strspn(num, "0123456789*#+") != strlen(num)))
            return tfail(t, p, "must be 1..32 of 0-9 * # +");
        ok = ok && ttimeout(t, o, path, 5, 600);
    } else if (!strcmp(type, "script")) {
        ok = tscript(t, o, path, depth);
    } else if (!strcmp(type, "message")) {
        ok = tmessage(t, o, path);
    }
    if (!ok) return false;
    json_t *on = json_object_get(o, "on");
    if (!on) return true;
    char p[200];
    snprintf(p, sizeof p, "%s.on", path);
    if (!json_is_object(on)) return tfail(t, p, "must map outcomes to next steps");
    json_object_foreach(on, key, v)
    {
        bool known = false;
        for (int i = 0; i < 5 && kinds[k].outcomes[i]; i++)
            if (!strcmp(kinds[k].outcomes[i], key)) known = true;
        char q[220];
        snprintf(q, sizeof q, "%s.%s", p, key);
        if (!known) {
            cw_buf b;
            cw_buf_init(&b);
            for (int i = 0; i < 5 && kinds[k].outcomes[i]; i++)
                cw_buf_printf(&b, "%s%s", i ? ", " : "", kinds[k].outcomes[i]);
            tfail(t, q, "a %s step has no outcome \"%s\" (it has: %s)", type, key, b.data);
            cw_buf_free(&b);
            return false;
        }
        if (!target_walk(t, v, q, depth + 1)) return false;
    }
    return true;
}

bool domain_target_valid(int64_t domain_id, json_t *target, const char *path, char *where,
                         size_t wlen, char *msg, size_t mlen)
{
    struct tcheck t = {domain_id, NULL, where, msg, wlen, mlen};
    return target_walk(&t, target, path, 0);
}

/* Runtime form of the same check, collecting what the target refers to. */
static bool target_valid_refs(int64_t domain, json_t *target, const char *path, json_t *refs,
                              char *where, size_t wlen, char *msg, size_t mlen)
{
    struct tcheck t = {domain, refs, where, msg, wlen, mlen};
    return target_walk(&t, target, path, 0);
}

/* ------------------------------------------------------------ day groups */

static const struct crud_field day_group_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_SEARCH, 1, 64},
    {"days", FT_JSON, 0, 0, 0, NULL, NULL, 0, NULL, "weekdays of the group: [1..7], 1 = Monday"},
    {"holidays", FT_JSON, 0, 0, 0, NULL, NULL, 0, NULL,
     "[{date: YYYY-MM-DD | MM-DD (every year), name}]: the group does not apply on these dates "
     "(they follow the non-working-time rules)"},
    {"extra_days", FT_JSON, 0, 0, 0, NULL, NULL, 0, NULL,
     "[{date, name}]: special dates on which the group applies whatever the weekday"},
    {"created_at", FT_INT, FF_READONLY},
    {"updated_at", FT_INT, FF_READONLY},
};

static bool dates_valid(struct crud_ctx *c, const char *field, json_t *list, json_t *seen)
{
    if (!list) return true;
    if (!json_is_array(list) || json_array_size(list) > 366)
        return fail_at(c, field, field, "%s must be an array of at most 366 {date, name}", field);
    static const char *const allowed[] = {"date", "name", NULL};
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        char p[64];
        snprintf(p, sizeof p, "%s[%zu]", field, i);
        const char *bad;
        const char *date = json_string_value(json_object_get(o, "date"));
        json_t *name = json_object_get(o, "name");
        if (!json_is_object(o) || !members_only(o, allowed, &bad) || !parse_date(date) ||
            (name && (!json_is_string(name) || json_string_length(name) > 64)))
            return fail_at(c, field, p,
                           "%s must be {date: \"YYYY-MM-DD\" or \"MM-DD\" (every year), name: "
                           "up to 64 characters}",
                           p);
        json_t *prev = json_object_get(seen, date);
        if (prev)
            return fail_at(c, field, p, "%s: %s is already listed as %s", p, date,
                           json_string_value(prev));
        json_object_set_new(seen, date, json_string(p));
    }
    return true;
}

static bool day_group_validate(struct crud_ctx *c)
{
    json_t *days = json_object_get(c->in, "days");
    int mask = 0;
    if (days) {
        size_t i;
        json_t *d;
        if (!json_is_array(days))
            return fail_at(c, "days", "days", "days must be an array of weekdays 1..7");
        json_array_foreach(days, i, d)
        {
            char p[32];
            snprintf(p, sizeof p, "days[%zu]", i);
            if (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > 7 ||
                (mask & (1 << json_integer_value(d))))
                return fail_at(c, "days", p, "%s must be a weekday 1..7 (1 = Monday) named once",
                               p);
            mask |= 1 << json_integer_value(d);
        }
    }
    json_t *seen = json_object();
    bool ok = dates_valid(c, "holidays", crud_value(c, "holidays"), seen) &&
              dates_valid(c, "extra_days", crud_value(c, "extra_days"), seen);
    json_decref(seen);
    if (!ok) return false;
    if (!days || c->creating) return true;
    /* new weekdays must not make a schedule that uses the group ambiguous */
    pending_group.id = c->id;
    pending_group.mask = mask;
    store_res *r;
    bool good = true;
    if (store_query(store_main(), &r,
                    "SELECT s.name, s.periods FROM schedules s JOIN routing_refs f ON "
                    "f.owner_type = 'schedule' AND f.owner_id = s.id WHERE f.ref_type = "
                    "'day_group' AND f.ref_id = ?",
                    SA_INT(c->id), SA_END) >= 0) {
        while (good && store_next(r)) {
            json_t *periods = json_loads(store_str(r, 1), 0, NULL);
            char where[160], msg[400];
            if (!periods_valid(c->domain_id, periods, "periods", NULL, where, sizeof where, msg,
                               sizeof msg))
                good = fail_at(c, "days", "days", "schedule \"%s\" would become ambiguous: %s",
                               store_str(r, 0), msg);
            json_decref(periods);
        }
        store_res_free(r);
    }
    pending_group.id = 0;
    return good;
}

static bool day_group_before_delete(struct crud_ctx *c)
{
    return routing_not_referenced(c, "day_group");
}

static const struct crud_entity day_groups = {.path = "day-groups",
                                              .type = "day_group",
                                              .label = "day group",
                                              .table = "day_groups",
                                              .scope = SCOPE_DOMAIN,
                                              .fields = day_group_fields,
                                              .nfields = CW_ARRAY_LEN(day_group_fields),
                                              .name_field = "name",
                                              .order = "name",
                                              .read_role = ROLE_SUPERVISOR,
                                              .write_role = ROLE_DOMAIN_ADMIN,
                                              .created_at = true,
                                              .updated_at = true,
                                              .validate = day_group_validate,
                                              .before_delete = day_group_before_delete};

/* ------------------------------------------------------------- schedules */

static const struct crud_field schedule_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_SEARCH, 1, 64},
    {"periods", FT_JSON, FF_REQUIRED, 0, 0, NULL, NULL, 0, NULL,
     "[{days: [1..7] | day_group_id, from: HH:MM, to: HH:MM}], 1..32, none overlapping"},
    {"created_at", FT_INT, FF_READONLY},
    {"updated_at", FT_INT, FF_READONLY},
};

static bool schedule_validate(struct crud_ctx *c)
{
    json_t *periods = json_object_get(c->in, "periods");
    if (!periods) return true;
    char where[160], msg[400];
    json_t *refs = json_array();
    bool ok =
        periods_valid(c->domain_id, periods, "periods", refs, where, sizeof where, msg, sizeof msg);
    if (ok)
        json_object_set_new(c->extra ? c->extra : (c->extra = json_object()), "refs", refs);
    else
        json_decref(refs);
    return ok ? true : fail_at(c, "periods", where, "%s", msg);
}

static bool schedule_after_write(struct crud_ctx *c)
{
    json_t *refs = c->extra ? json_object_get(c->extra, "refs") : NULL;
    if (!refs) return true;
    int rc = refs_store(c->domain_id, "schedule", c->id, refs);
    return rc ? crud_store_fail(c, rc) : true;
}

static bool schedule_before_delete(struct crud_ctx *c)
{
    return routing_not_referenced(c, "schedule");
}

static const struct crud_entity schedules = {.path = "schedules",
                                             .type = "schedule",
                                             .label = "schedule",
                                             .table = "schedules",
                                             .scope = SCOPE_DOMAIN,
                                             .fields = schedule_fields,
                                             .nfields = CW_ARRAY_LEN(schedule_fields),
                                             .name_field = "name",
                                             .order = "name",
                                             .read_role = ROLE_SUPERVISOR,
                                             .write_role = ROLE_DOMAIN_ADMIN,
                                             .created_at = true,
                                             .updated_at = true,
                                             .validate = schedule_validate,
                                             .after_write = schedule_after_write,
                                             .before_delete = schedule_before_delete};

/* ----------------------------------------------------------- classifiers */

static const struct crud_field classifier_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_SEARCH, 1, 64},
    {"description", FT_TEXT, FF_SEARCH, 0, 500},
    {"numbers", FT_JSON, FF_VIRTUAL, 0, 0, NULL, NULL, 0, NULL,
     "caller numbers (CLIP, e.g. +74951234567), up to 10000; matched exactly, with 8 / 7 / +7 "
     "treated alike"},
    {"created_at", FT_INT, FF_READONLY},
    {"updated_at", FT_INT, FF_READONLY},
};

static bool classifier_validate(struct crud_ctx *c)
{
    json_t *nums = json_object_get(c->in, "numbers");
    if (!nums) return true;
    if (!json_is_array(nums) || json_array_size(nums) > 10000)
        return fail_at(c, "numbers", "numbers", "numbers must be an array of up to 10000 numbers");
    json_t *seen = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(nums, i, v)
    {
        char p[32], norm[32];
        snprintf(p, sizeof p, "numbers[%zu]", i);
        const char *s = json_string_value(v);
        if (!digits_only(s, 3, 20, true)) {
            json_decref(seen);
            return fail_at(c, "numbers", p, "%s must be a phone number of 3..20 digits", p);
        }
        route_number_norm(s, norm, sizeof norm);
        json_t *prev = json_object_get(seen, norm);
        if (prev) {
            bool r =
                fail_at(c, "numbers", p, "%s is the same number as %s", p, json_string_value(prev));
            json_decref(seen);
            return r;
        }
        json_object_set_new(seen, norm, json_string(p));
    }
    json_decref(seen);
    return true;
}

static bool classifier_after_write(struct crud_ctx *c)
{
    json_t *nums = json_object_get(c->in, "numbers");
    if (!nums) return true;
    store *st = store_main();
    int rc = store_exec(st, "DELETE FROM classifier_numbers WHERE classifier_id = ?", SA_INT(c->id),
                        SA_END);
    size_t i;
    json_t *v;
    json_array_foreach(nums, i, v)
    {
        if (rc < 0) break;
        char norm[32];
        route_number_norm(json_string_value(v), norm, sizeof norm);
        rc = store_exec(st,
                        "INSERT INTO classifier_numbers(classifier_id, number, norm) VALUES(?,?,?)",
                        SA_INT(c->id), SA_STR(json_string_value(v)), SA_STR(norm), SA_END);
    }
    /* the member list is not a column: make the change visible to the engine's diff */
    if (rc >= 0)
        rc = store_exec(st, "UPDATE classifiers SET updated_at = ? WHERE id = ?",
                        SA_INT(cw_wall_time()), SA_INT(c->id), SA_END);
    return rc < 0 ? crud_store_fail(c, rc) : true;
}

static void classifier_decorate(struct crud_ctx *c, json_t *o)
{
    int64_t id = json_integer_value(json_object_get(o, "id"));
    json_t *a = json_array();
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT number FROM classifier_numbers WHERE classifier_id = ? ORDER BY number",
                    SA_INT(id), SA_END) >= 0) {
        while (store_next(r))
            json_array_append_new(a, json_string(store_str(r, 0)));
        store_res_free(r);
    }
    json_object_set_new(o, "size", json_integer((json_int_t)json_array_size(a)));
    json_object_set_new(o, "numbers", a);
}

static bool classifier_before_delete(struct crud_ctx *c)
{
    return routing_not_referenced(c, "classifier");
}

static const struct crud_entity classifiers = {.path = "classifiers",
                                               .type = "classifier",
                                               .label = "classifier",
                                               .table = "classifiers",
                                               .scope = SCOPE_DOMAIN,
                                               .fields = classifier_fields,
                                               .nfields = CW_ARRAY_LEN(classifier_fields),
                                               .name_field = "name",
                                               .order = "name",
                                               .read_role = ROLE_SUPERVISOR,
                                               .write_role = ROLE_DOMAIN_ADMIN,
                                               .created_at = true,
                                               .updated_at = true,
                                               .validate = classifier_validate,
                                               .after_write = classifier_after_write,
                                               .decorate = classifier_decorate,
                                               .before_delete = classifier_before_delete};

/* --------------------------------------------------------- routing rules */

static const char *const schedule_matches[] = {"inside", "outside", NULL};

static const struct crud_field rule_fields[] = {
    {"number_id", FT_ID, FF_REQUIRED | FF_CREATE | FF_FILTER, 0, 0, NULL, NULL, 0,
     "external_numbers", "the external number whose incoming calls the rule handles"},
    {"priority", FT_INT, 0, 1, 1000, NULL, NULL, 0, NULL,
     "1 is evaluated first; a new rule goes last unless given; the others move to make room"},
    {"name", FT_TEXT, FF_SEARCH, 0, 64},
    {"enabled", FT_BOOL, FF_FILTER},
    {"schedule", FT_JSON, FF_NULLABLE, 0, 0, NULL, NULL, 0, NULL,
     "{periods: [{days: [1..7] | day_group_id, from, to}]}; null = any time"},
    {"schedule_id", FT_ID, FF_NULLABLE, 0, 0, NULL, NULL, 0, "schedules",
     "a named schedule instead of inline periods"},
    {"schedule_match", FT_ENUM, 0, 0, 0, schedule_matches, NULL, 0, NULL,
     "inside (default): calls during the schedule; outside: calls at any other time "
     "(holidays included)"},
    {"prefixes", FT_JSON, FF_NULLABLE, 0, 0, NULL, NULL, 0, NULL,
     "caller prefixes such as [\"495\", \"499\"], matched with or without the country code; "
     "null = any caller"},
    {"classifier_id", FT_ID, FF_NULLABLE, 0, 0, NULL, NULL, 0, "classifiers",
     "only callers listed in this classifier"},
    {"target", FT_JSON, FF_REQUIRED, 0, 0, NULL, NULL, 0, NULL,
     "{type: user|group|ivr|voicemail|fax|busy|external|private_route|script|message, ..., on: "
     "{no_answer|busy|no_route|done: next step}}"},
    {"created_at", FT_INT, FF_READONLY},
    {"updated_at", FT_INT, FF_READONLY},
};

static bool rule_validate(struct crud_ctx *c)
{
    if (!c->extra) c->extra = json_object();
    /* priority alone */
    json_t *prio = json_object_get(c->cols, "priority");
    if (c->creating || prio) {
        int64_t number = json_integer_value(crud_value(c, "number_id"));
        int64_t n = store_count("SELECT COUNT(*) FROM routing_rules WHERE number_id = ? AND "
                                "id <> ?",
                                number, c->id);
        int64_t want = prio ? json_integer_value(prio) : n + 1;
        if (want > n + 1) want = n + 1;
        json_object_set_new(c->extra, "priority", json_integer(want));
        json_object_set_new(c->cols, "priority", json_integer(want));
    }
    if (c->creating && !json_object_get(c->in, "enabled"))
        json_object_set_new(c->cols, "enabled", json_integer(1));
    /* what the rule selects and where it sends: checked whole whenever any of it changes */
    static const char *const routing[] = {"schedule", "schedule_id",   "schedule_match",
                                          "prefixes", "classifier_id", "target"};
    bool changed = c->creating;
    for (size_t i = 0; i < CW_ARRAY_LEN(routing); i++)
        if (json_object_get(c->in, routing[i])) changed = true;
    if (!changed) return true;
    json_t *refs = json_array();
    json_object_set_new(c->extra, "refs", refs);
    char where[160], msg[400];
    json_t *sch = crud_value(c, "schedule"), *sid = crud_value(c, "schedule_id");
    bool has_sch = sch && !json_is_null(sch), has_sid = sid && !json_is_null(sid);
    if (has_sch && has_sid)
        return fail_at(c, json_object_get(c->in, "schedule") ? "schedule" : "schedule_id",
                       "schedule", "a rule has either inline schedule periods or a schedule_id");
    if (has_sch) {
        static const char *const allowed[] = {"periods", NULL};
        const char *bad;
        if (!json_is_object(sch) || !members_only(sch, allowed, &bad))
            return fail_at(c, "schedule", "schedule", "schedule must be {periods: [...]} or null");
        if (!periods_valid(c->domain_id, json_object_get(sch, "periods"), "schedule.periods", refs,
                           where, sizeof where, msg, sizeof msg))
            return fail_at(c, "schedule", where, "%s", msg);
    }
    if (has_sid) ref_add(refs, "schedule", json_integer_value(sid));
    json_t *sm = json_object_get(c->in, "schedule_match");
    if (sm && !has_sch && !has_sid && strcmp(json_string_value(sm), "inside"))
        return fail_at(c, "schedule_match", "schedule_match",
                       "schedule_match outside needs a schedule");
    json_t *pre = crud_value(c, "prefixes");
    if (pre && !json_is_null(pre)) {
        if (!json_is_array(pre) || json_array_size(pre) < 1 || json_array_size(pre) > 100)
            return fail_at(c, "prefixes", "prefixes",
                           "prefixes must be an array of 1..100 digit strings, or null");
        size_t i, k;
        json_t *v;
        json_array_foreach(pre, i, v)
        {
            char p[32];
            snprintf(p, sizeof p, "prefixes[%zu]", i);
            if (!digits_only(json_string_value(v), 1, 15, false))
                return fail_at(c, "prefixes", p, "%s must be 1..15 digits", p);
            for (k = 0; k < i; k++)
                if (!strcmp(json_string_value(json_array_get(pre, k)), json_string_value(v)))
                    return fail_at(c, "prefixes", p, "%s repeats prefixes[%zu]", p, k);
        }
    }
    json_t *cl = crud_value(c, "classifier_id");
    if (cl && !json_is_null(cl)) ref_add(refs, "classifier", json_integer_value(cl));
    json_t *target = crud_value(c, "target");
    if (!target_valid_refs(c->domain_id, target, "target", refs, where, sizeof where, msg,
                           sizeof msg))
        return fail_at(c, "target", where, "%s", msg);
    return true;
}

/* Dense priorities 1..n for a number's rules, `moved` (if any) at position `at`. */
static int renumber(int64_t number, int64_t moved, int64_t at, int64_t skip)
{
    store *st = store_main();
    store_res *r;
    int rc = store_query(st, &r,
                         "SELECT id FROM routing_rules WHERE number_id = ? AND id <> ? AND id <> ? "
                         "ORDER BY priority, id",
                         SA_INT(number), SA_INT(moved), SA_INT(skip), SA_END);
    if (rc < 0) return rc;
    int64_t pos = 1;
    rc = CW_OK;
    while (rc >= 0 && store_next(r)) {
        if (moved && pos == at) pos++;
        rc = store_exec(st, "UPDATE routing_rules SET priority = ? WHERE id = ?", SA_INT(pos),
                        SA_INT(store_int(r, 0)), SA_END);
        pos++;
    }
    store_res_free(r);
    if (rc >= 0 && moved) {
        if (at > pos) at = pos;
        rc = store_exec(st, "UPDATE routing_rules SET priority = ? WHERE id = ?", SA_INT(at),
                        SA_INT(moved), SA_END);
    }
    return rc < 0 ? rc : CW_OK;
}

static bool rule_after_write(struct crud_ctx *c)
{
    json_t *refs = json_object_get(c->extra, "refs");
    int rc = refs ? refs_store(c->domain_id, "routing_rule", c->id, refs) : CW_OK;
    json_t *prio = json_object_get(c->extra, "priority");
    if (!rc && prio) {
        int64_t number = json_integer_value(crud_value(c, "number_id"));
        rc = renumber(number, c->id, json_integer_value(prio), 0);
    }
    return rc ? crud_store_fail(c, rc) : true;
}

static bool rule_before_delete(struct crud_ctx *c)
{
    int64_t number = json_integer_value(json_object_get(c->old, "number_id"));
    int rc = store_exec(
        store_main(), "DELETE FROM routing_refs WHERE owner_type = 'routing_rule' AND owner_id = ?",
        SA_INT(c->id), SA_END);
    if (rc >= 0) rc = renumber(number, 0, 0, c->id);
    return rc < 0 ? crud_store_fail(c, rc) : true;
}

static bool has(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return v && !json_is_null(v);
}

/* A rule that can never fire: an earlier active rule takes every call it would take. */
static void rule_decorate(struct crud_ctx *c, json_t *o)
{
    json_t *by = json_null();
    if (json_is_true(json_object_get(o, "enabled"))) {
        store_res *r;
        if (store_query(store_main(), &r,
                        "SELECT id, schedule, schedule_id, schedule_match, prefixes, classifier_id "
                        "FROM routing_rules WHERE number_id = ? AND enabled = 1 AND priority < ? "
                        "ORDER BY priority",
                        SA_INT(json_integer_value(json_object_get(o, "number_id"))),
                        SA_INT(json_integer_value(json_object_get(o, "priority"))), SA_END) >= 0) {
            while (json_is_null(by) && store_next(r)) {
                bool no_sched = !store_str(r, 1) && store_isnull(r, 2);
                bool same_sched =
                    (store_str(r, 1) && has(o, "schedule") &&
                     !strcmp(store_str(r, 3),
                             json_string_value(json_object_get(o, "schedule_match")))) ||
                    (!store_isnull(r, 2) && has(o, "schedule_id") &&
                     store_int(r, 2) == json_integer_value(json_object_get(o, "schedule_id")) &&
                     !strcmp(store_str(r, 3),
                             json_string_value(json_object_get(o, "schedule_match"))));
                if (same_sched && store_str(r, 1)) {
                    json_t *mine = json_object_get(o, "schedule");
                    json_t *theirs = json_loads(store_str(r, 1), 0, NULL);
                    same_sched = json_equal(mine, theirs);
                    json_decref(theirs);
                }
                bool no_prefix = !store_str(r, 4);
                bool same_prefix = false;
                if (store_str(r, 4) && has(o, "prefixes")) {
                    json_t *theirs = json_loads(store_str(r, 4), 0, NULL);
                    same_prefix = json_equal(theirs, json_object_get(o, "prefixes"));
                    json_decref(theirs);
                }
                bool no_class = store_isnull(r, 5);
                bool same_class =
                    !store_isnull(r, 5) && has(o, "classifier_id") &&
                    store_int(r, 5) == json_integer_value(json_object_get(o, "classifier_id"));
                if ((no_sched || same_sched) && (no_prefix || same_prefix) &&
                    (no_class || same_class)) {
                    json_decref(by);
                    by = json_integer(store_int(r, 0));
                }
            }
            store_res_free(r);
        }
    }
    json_object_set_new(o, "unreachable_by", by);
}

static const struct crud_entity rules = {.path = "routing-rules",
                                         .type = "routing_rule",
                                         .label = "routing rule",
                                         .table = "routing_rules",
                                         .scope = SCOPE_DOMAIN,
                                         .fields = rule_fields,
                                         .nfields = CW_ARRAY_LEN(rule_fields),
                                         .name_field = "name",
                                         .order = "number_id, priority",
                                         .read_role = ROLE_SUPERVISOR,
                                         .write_role = ROLE_DOMAIN_ADMIN,
                                         .created_at = true,
                                         .updated_at = true,
                                         .validate = rule_validate,
                                         .after_write = rule_after_write,
                                         .before_delete = rule_before_delete,
                                         .decorate = rule_decorate};

/* ------------------------------------------- reorder, copy, check a number */

/* The :id number of the path, in the caller's domain; 404 otherwise. */
static bool number_param(http_req *req, int64_t *domain, int64_t *number, char *num, size_t nlen)
{
    if (!http_domain_param(req, 0, domain)) return false;
    bool ok = false;
    store_res *r;
    if (!cw_parse_i64(req->params[1], number) &&
        store_query(store_main(), &r,
                    "SELECT number FROM external_numbers WHERE id = ? AND domain_id = ?",
                    SA_INT(*number), SA_INT(*domain), SA_END) >= 0) {
        if (store_next(r)) {
            ok = true;
            cw_strlcpy(num, store_str(r, 0), nlen);
        }
        store_res_free(r);
    }
    if (!ok) http_reply_error(req, 404, "not_found", NULL, "no such external number");
    return ok;
}

static void reply_rules(http_req *req, int64_t domain, int64_t number)
{
    struct crud_ctx cx = {.req = req, .e = &rules, .scope_id = domain, .domain_id = domain};
    json_t *items = json_array();
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT id FROM routing_rules WHERE number_id = ? ORDER BY priority, id",
                    SA_INT(number), SA_END) >= 0) {
        while (store_next(r)) {
            json_t *o = crud_fetch(&cx, store_int(r, 0));
            if (o) json_array_append_new(items, o);
        }
        store_res_free(r);
    }
    http_reply_json(req, 200,
                    json_pack("{s:I,s:o}", "number_id", (json_int_t)number, "items", items));
}

/* POST /numbers/:id/routing/order {"rule_ids": [...]}: the new order, every rule once. */
static void rules_order(http_req *req)
{
    static const struct json_field f[] = {{"rule_ids", JK_ARRAY, true}};
    int64_t domain, number;
    char num[32];
    if (!number_param(req, &domain, &number, num, sizeof num)) return;
    json_t *b = http_json_body(req);
    if (!b) return;
    if (!http_json_check(req, b, f, 1)) goto out;
    json_t *ids = json_object_get(b, "rule_ids");
    int64_t have = store_count("SELECT COUNT(*) FROM routing_rules WHERE number_id = ? AND "
                               "domain_id = ?",
                               number, domain);
    if ((int64_t)json_array_size(ids) != have) {
        http_reply_error(req, 400, "invalid_value", "rule_ids",
                         "rule_ids must list each of the number's %lld rules once",
                         (long long)have);
        goto out;
    }
    size_t i, k;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        int64_t one;
        bool dup = false;
        for (k = 0; k < i; k++)
            if (json_equal(json_array_get(ids, k), v)) dup = true;
        if (dup || !json_is_integer(v) ||
            store_query_int(store_main(), &one,
                            "SELECT 1 FROM routing_rules WHERE id = ? AND number_id = ?",
                            SA_INT(json_integer_value(v)), SA_INT(number), SA_END) != CW_OK) {
            http_reply_error(req, 400, "invalid_value", "rule_ids",
                             "rule_ids[%zu] is not a rule of this number, or is listed twice", i);
            goto out;
        }
    }
    store *st = store_main();
    store_begin(st);
    int rc = CW_OK;
    json_array_foreach(ids, i, v)
    {
        if (rc < 0) break;
        rc = store_exec(st, "UPDATE routing_rules SET priority = ?, updated_at = ? WHERE id = ?",
                        SA_INT((int64_t)i + 1), SA_INT(cw_wall_time()),
                        SA_INT(json_integer_value(v)), SA_END);
    }
    if (rc < 0) {
        store_rollback(st);
        http_reply_error(req, 500, "store", NULL, "the store failed");
        goto out;
    }
    http_audit(req, domain, "routing_rule", num, "reorder", json_pack("{s:O}", "rule_ids", ids));
    store_commit(st);
    events_emit("config.routing_rule.updated", domain,
                json_pack("{s:I,s:s}", "number_id", (json_int_t)number, "name", num));
    reply_rules(req, domain, number);
out:
    json_decref(b);
}

/* POST /numbers/:id/routing/copy {"to_number_id": N}: the destination's rules are replaced. */
static void rules_copy(http_req *req)
{
    static const struct json_field f[] = {{"to_number_id", JK_INT, true}};
    int64_t domain, number;
    char num[32];
    if (!number_param(req, &domain, &number, num, sizeof num)) return;
    json_t *b = http_json_body(req);
    if (!b) return;
    if (!http_json_check(req, b, f, 1)) goto out;
    int64_t to = json_integer_value(json_object_get(b, "to_number_id"));
    store_res *r;
    char tonum[32] = "";
    if (store_query(store_main(), &r,
                    "SELECT number FROM external_numbers WHERE id = ? AND domain_id = ?",
                    SA_INT(to), SA_INT(domain), SA_END) >= 0 &&
        store_next(r))
        cw_strlcpy(tonum, store_str(r, 0), sizeof tonum);
    store_res_free(r);
    if (!tonum[0] || to == number) {
        http_reply_error(req, 400, "invalid_value", "to_number_id",
                         "to_number_id must be another external number of this domain");
        goto out;
    }
    store *st = store_main();
    store_begin(st);
    int rc = store_exec(st,
                        "DELETE FROM routing_refs WHERE owner_type = 'routing_rule' AND owner_id "
                        "IN (SELECT id FROM routing_rules WHERE number_id = ?)",
                        SA_INT(to), SA_END);
    if (rc >= 0)
        rc = store_exec(st, "DELETE FROM routing_rules WHERE number_id = ?", SA_INT(to), SA_END);
    int copied = 0;
    if (rc >= 0 &&
        (rc = store_query(st, &r,
                          "SELECT id, priority, name, enabled, schedule, schedule_id, "
                          "schedule_match, prefixes, classifier_id, target FROM routing_rules "
                          "WHERE number_id = ? ORDER BY priority, id",
                          SA_INT(number), SA_END)) >= 0) {
        int64_t now = cw_wall_time();
        while (rc >= 0 && store_next(r)) {
            int64_t id = 0;
            rc = store_query_int(
                st, &id,
                "INSERT INTO routing_rules(domain_id, number_id, priority, name, enabled, "
                "schedule, schedule_id, schedule_match, prefixes, classifier_id, target, "
                "created_at, updated_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                SA_INT(domain), SA_INT(to), SA_INT(store_int(r, 1)), SA_STR(store_str(r, 2)),
                SA_INT(store_int(r, 3)), SA_STR(store_str(r, 4)),
                store_isnull(r, 5) ? SA_NULL : SA_INT(store_int(r, 5)), SA_STR(store_str(r, 6)),
                SA_STR(store_str(r, 7)), store_isnull(r, 8) ? SA_NULL : SA_INT(store_int(r, 8)),
                SA_STR(store_str(r, 9)), SA_INT(now), SA_INT(now), SA_END);
            if (rc >= 0)
                rc = store_exec(
                    st,
                    "INSERT INTO routing_refs(domain_id, owner_type, owner_id, "
                    "ref_type, ref_id) SELECT domain_id, owner_type, CAST(? AS BIGINT), ref_type, "
                    "ref_id FROM routing_refs WHERE owner_type = 'routing_rule' AND "
                    "owner_id = ?",
                    SA_INT(id), SA_INT(store_int(r, 0)), SA_END);
            copied++;
        }
        store_res_free(r);
    }
    if (rc < 0) {
        store_rollback(st);
        http_reply_error(req, 500, "store", NULL, "the store failed");
        goto out;
    }
    http_audit(req, domain, "routing_rule", tonum, "copy",
               json_pack("{s:s,s:i}", "from_number", num, "rules", copied));
    store_commit(st);
    events_emit("config.routing_rule.updated", domain,
                json_pack("{s:I,s:s}", "number_id", (json_int_t)to, "name", tonum));
    reply_rules(req, domain, to);
out:
    json_decref(b);
}

/* POST /numbers/:id/routing/check {"caller", "at"}: which rule would take such a call. */
static void rules_check(http_req *req)
{
    static const struct json_field f[] = {{"caller", JK_STRING, true}, {"at", JK_INT, false}};
    int64_t domain, number;
    char num[32];
    if (!number_param(req, &domain, &number, num, sizeof num)) return;
    json_t *b = http_json_body(req);
    if (!b) return;
    if (!http_json_check(req, b, f, 2)) goto out;
    const char *caller = json_string_value(json_object_get(b, "caller"));
    if (!*caller || strlen(caller) > 64) {
        http_reply_error(req, 400, "invalid_value", "caller", "caller must be 1..64 characters");
        goto out;
    }
    json_t *at = json_object_get(b, "at");
    char err[256];
    json_t *res = route_explain(domain, num, caller, at ? json_integer_value(at) : cw_wall_time(),
                                err, sizeof err);
    if (!res)
        http_reply_error(req, 500, "internal", NULL, "routing check failed: %s", err);
    else
        http_reply_json(req, 200, res);
out:
    json_decref(b);
}

void routing_api_init(void)
{
    crud_register(&day_groups);
    crud_register(&schedules);
    crud_register(&classifiers);
    crud_register(&rules);
    http_route("POST", "/api/v1/domains/:domain/numbers/:id/routing/order", rules_order,
               ROLE_DOMAIN_ADMIN, 0,
               "Reorder a number's routing rules ({\"rule_ids\": [...]}, first = priority 1)");
    http_route("POST", "/api/v1/domains/:domain/numbers/:id/routing/copy", rules_copy,
               ROLE_DOMAIN_ADMIN, 0,
               "Replace another number's routing rules with copies of this one's "
               "({\"to_number_id\": N})");
    http_route("POST", "/api/v1/domains/:domain/numbers/:id/routing/check", rules_check,
               ROLE_SUPERVISOR, HTTP_NO_AUDIT,
               "Which rule would take a call from a caller at a time ({\"caller\", \"at\": "
               "epoch seconds})");
}
