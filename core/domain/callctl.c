/*
 * callctl.c - the call-control entities of API v1: per-user forwarding
 * schemes (seed 001 §7.5.2), VIP numbers (§8.3).
 *
 * Every user has one main SIP rule (priority 10, 40 s, no schedule) that
 * cannot be deleted and whose number cannot change; it is created with the
 * user. A rule's schedule is {"periods": [{"days": [1..7], "from": "HH:MM",
 * "to": "HH:MM"}, ...]} in the domain's time zone (1 = Monday); null means
 * around the clock. Core thread only.
 */
#include "domain/crud.h"
#include "events/events.h"
#include "log/log.h"
#include "lua/script.h"

#include <stdlib.h>
#include <string.h>

/* Field tables name only the members that matter; the rest are zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static const char *const fwd_kinds[] = {"sip", "landline", "mobile", "rt_mobile", NULL};

#define FWD_FIELDS                                                                                 \
    {"kind",    FT_ENUM,                                                                           \
     FF_FILTER, 0,                                                                                 \
     0,         fwd_kinds,                                                                         \
     NULL,      0,                                                                                 \
     NULL,      "sip (login@domain or extension), landline, mobile, rt_mobile"},                   \
        {"number", FT_TEXT, FF_REQUIRED | FF_SEARCH, 1, 64},                                       \
        {"priority", FT_INT, 0, 1,    1000,                                                        \
         NULL,       NULL,   0, NULL, "lower rings first; equal priorities ring together"},        \
        {"ring_time", FT_INT, 0, 5, 600, NULL, NULL, 0, NULL, "seconds before the next number"},   \
        {"schedule",  FT_JSON,                                                                     \
         FF_NULLABLE, 0,                                                                           \
         0,           NULL,                                                                        \
         NULL,        0,                                                                           \
         NULL,        "{periods: [{days: [1..7], from: HH:MM, to: HH:MM}]}; null = always"},       \
        {"enabled", FT_BOOL, FF_FILTER},                                                           \
        {"is_main",   FT_BOOL,                                                                     \
         FF_READONLY, 0,                                                                           \
         0,           NULL,                                                                        \
         NULL,        0,                                                                           \
         NULL,        "the user's own SIP number: cannot be deleted or renumbered"},               \
        {"created_at", FT_INT, FF_READONLY},                                                       \
    {                                                                                              \
        "updated_at", FT_INT, FF_READONLY                                                          \
    }

static const struct crud_field fwd_admin_fields[] = {
    {"owner_id", FT_ID, FF_REQUIRED | FF_CREATE | FF_FILTER, 0, 0, NULL, NULL, 0, "users",
     "the user whose incoming calls the rule forwards"},
    FWD_FIELDS,
};

static const struct crud_field fwd_own_fields[] = {FWD_FIELDS};

static bool hhmm(json_t *v, int *minutes)
{
    const char *s = json_string_value(v);
    int h, m;
    char tail;
    if (!s || strlen(s) != 5 || sscanf(s, "%2d:%2d%c", &h, &m, &tail) != 2 || h < 0 || h > 23 ||
        m < 0 || m > 59)
        return false;
    *minutes = h * 60 + m;
    return true;
}

/* Shared by forwarding rules and, later, routing schedules. */
static bool schedule_ok(struct crud_ctx *c, const char *field, json_t *sch)
{
    if (!sch || json_is_null(sch)) return true;
    json_t *periods = json_object_get(sch, "periods");
    if (!json_is_object(sch) || json_object_size(sch) != 1 || !json_is_array(periods) ||
        json_array_size(periods) < 1 || json_array_size(periods) > 32)
        return crud_fail(c, 400, "invalid_value", field,
                         "%s must be {periods: [1..32 periods]} or null", field);
    size_t i;
    json_t *p;
    json_array_foreach(periods, i, p)
    {
        json_t *days = json_object_get(p, "days");
        int from, to;
        bool ok = json_is_object(p) && json_object_size(p) == 3 && json_is_array(days) &&
                  json_array_size(days) >= 1 && json_array_size(days) <= 7 &&
                  hhmm(json_object_get(p, "from"), &from) && hhmm(json_object_get(p, "to"), &to) &&
                  from < to;
        size_t k;
        json_t *d;
        json_array_foreach(days, k, d) if (!json_is_integer(d) || json_integer_value(d) < 1 ||
                                           json_integer_value(d) > 7) ok = false;
        if (!ok)
            return crud_fail(c, 400, "invalid_value", field,
                             "%s.periods[%zu] must be {days: [1..7 (Monday = 1)], from: \"HH:MM\", "
                             "to: \"HH:MM\"} with from before to",
                             field, i);
    }
    return true;
}

static int64_t rule_owner(struct crud_ctx *c)
{
    json_t *o = crud_value(c, "owner_id");
    return o ? json_integer_value(o) : c->scope_id;
}

static bool fwd_validate(struct crud_ctx *c)
{
    if (!schedule_ok(c, "schedule", json_object_get(c->in, "schedule"))) return false;
    bool is_main = c->old && json_is_true(json_object_get(c->old, "is_main"));
    if (is_main && (json_object_get(c->in, "number") || json_object_get(c->in, "kind"))) {
        const char *was = json_string_value(json_object_get(c->old, "number"));
        const char *now = json_string_value(json_object_get(c->in, "number"));
        const char *kind = json_string_value(json_object_get(c->in, "kind"));
        if ((now && strcmp(now, was)) || (kind && strcmp(kind, "sip")))
            return crud_fail(c, 400, "invalid_value", now ? "number" : "kind",
                             "the main SIP number of a user cannot be changed");
    }
    json_t *jk = crud_value(c, "kind"), *jn = crud_value(c, "number");
    const char *kind = jk ? json_string_value(jk) : "sip";
    const char *num = json_string_value(jn);
    if (!num) return true;
    if (!strcmp(kind, "sip")) {
        /* a user of this domain: login@domain, login or extension */
        char login[128];
        cw_strlcpy(login, num, sizeof login);
        char *at = strchr(login, '@');
        if (at) *at = '\0';
        int64_t id;
        if (store_query_int(store_main(), &id,
                            "SELECT u.id FROM users u JOIN domains d ON d.id = u.domain_id "
                            "WHERE u.domain_id = ? AND (u.login = ? OR u.extension = ?) "
                            "AND (CAST(? AS TEXT) IS NULL OR d.name = ?)",
                            SA_INT(c->domain_id), SA_STR(login), SA_STR(login),
                            SA_STR(at ? at + 1 : NULL), SA_STR(at ? at + 1 : NULL), SA_END))
            return crud_fail(c, 400, "invalid_value", "number", "number: no user %s in this domain",
                             num);
    } else {
        size_t n = strlen(num), digits = strspn(num[0] == '+' ? num + 1 : num, "0123456789");
        if (n < 3 || n > 20 || digits != n - (num[0] == '+'))
            return crud_fail(c, 400, "invalid_value", "number",
                             "number: a phone number of 3..20 digits, optionally with a leading +");
    }
    if (c->creating) {
        json_object_set_new(c->cols, "owner_id", json_integer(rule_owner(c)));
        json_object_set_new(c->cols, "is_main", json_integer(0));
    }
    return true;
}

static bool fwd_before_delete(struct crud_ctx *c)
{
    if (json_is_true(json_object_get(c->old, "is_main")))
        return crud_fail(c, 409, "main_rule", NULL,
                         "the main SIP number of a user cannot be deleted; disable it instead");
    return true;
}

static bool fwd_owner_in_domain(struct crud_ctx *c)
{
    if (!c->creating) return fwd_validate(c);
    int64_t one;
    if (store_query_int(store_main(), &one, "SELECT 1 FROM users WHERE id = ? AND domain_id = ?",
                        SA_INT(rule_owner(c)), SA_INT(c->domain_id), SA_END))
        return crud_fail(c, 400, "invalid_value", "owner_id", "owner_id: no such user");
    return fwd_validate(c);
}

static const struct crud_entity fwd_admin = {.path = "forwarding-rules",
                                             .type = "forwarding_rule",
                                             .label = "forwarding rule",
                                             .table = "forwarding_rules",
                                             .scope = SCOPE_DOMAIN,
                                             .fields = fwd_admin_fields,
                                             .nfields = CW_ARRAY_LEN(fwd_admin_fields),
                                             .name_field = "number",
                                             .order = "owner_id, priority, id",
                                             .read_role = ROLE_SUPERVISOR,
                                             .write_role = ROLE_DOMAIN_ADMIN,
                                             .created_at = true,
                                             .updated_at = true,
                                             .validate = fwd_owner_in_domain,
                                             .before_delete = fwd_before_delete};

static const struct crud_entity fwd_own = {.path = "forwarding-rules",
                                           .type = "forwarding_rule",
                                           .label = "own forwarding rule",
                                           .table = "forwarding_rules",
                                           .scope = SCOPE_OWNER,
                                           .fields = fwd_own_fields,
                                           .nfields = CW_ARRAY_LEN(fwd_own_fields),
                                           .name_field = "number",
                                           .order = "priority, id",
                                           .read_role = ROLE_SUBSCRIBER,
                                           .write_role = ROLE_SUBSCRIBER,
                                           .created_at = true,
                                           .updated_at = true,
                                           .validate = fwd_validate,
                                           .before_delete = fwd_before_delete};

/* ---- VIP numbers (seed 001 §8.3): lower priority value is served first ---- */

static const struct crud_field vip_fields[] = {
    {"number", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_SEARCH, 1, 32, NULL, "^\\+?[0-9]+$", 0, NULL,
     "caller number as it arrives"},
    {"priority", FT_INT, 0, 1, 99, NULL, NULL, 0, NULL,
     "queue priority: lower is served first; ordinary callers are 100"},
    {"comment", FT_TEXT, FF_SEARCH, 0, 256},
    {"created_at", FT_INT, FF_READONLY},
};

static const struct crud_entity vip_numbers = {.path = "vip-numbers",
                                               .type = "vip_number",
                                               .label = "VIP number",
                                               .table = "vip_numbers",
                                               .scope = SCOPE_DOMAIN,
                                               .fields = vip_fields,
                                               .nfields = CW_ARRAY_LEN(vip_fields),
                                               .name_field = "number",
                                               .order = "priority, number",
                                               .read_role = ROLE_SUPERVISOR,
                                               .write_role = ROLE_SUPERVISOR,
                                               .created_at = true};

/* ---- ring lists (seed 002): scripts/cw/ringlist.lua rings them ---- */

#define RING_LIST_MAX_MEMBERS 16

static const char *const ring_methods[] = {"sequential", "simultaneous", NULL};

static const struct crud_field ring_list_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_SEARCH, 1, 64},
    {"extension", FT_DIGITS, FF_FILTER | FF_SEARCH, 1, 5, NULL, NULL, 0, NULL,
     "number to dial; the lowest free one when not given"},
    {"method", FT_ENUM, FF_FILTER, 0, 0, ring_methods, NULL, 0, NULL,
     "sequential: one member at a time, the next after answer_timeout; simultaneous: all "
     "at once, the attempt fails after answer_timeout"},
    {"answer_timeout", FT_INT, 0, 5, 300, NULL, NULL, 0, NULL, "seconds a member rings"},
    {"retries", FT_INT, 0, 0, 10, NULL, NULL, 0, NULL,
     "how many more times the whole list is tried after it failed"},
    {"retry_pause", FT_INT, 0, 1, 600, NULL, NULL, 0, NULL,
     "seconds between attempts; the caller hears pause_sound_id (else ringing)"},
    {"ring_sound_id", FT_ID, FF_NULLABLE, 0, 0, NULL, NULL, 0, "sound_files",
     "melody the caller hears while members ring; null = ringing tone"},
    {"pause_sound_id", FT_ID, FF_NULLABLE, 0, 0, NULL, NULL, 0, "sound_files",
     "melody the caller hears between attempts"},
    {"announce_caller", FT_BOOL, 0, 0, 0, NULL, NULL, 0, NULL,
     "whoever answers first hears \"call from\" and the caller's number, then is connected"},
    {"record", FT_BOOL, 0, 0, 0, NULL, NULL, 0, NULL,
     "record the conversation (stereo: caller left, member right)"},
    {"is_default", FT_BOOL, FF_FILTER, 0, 0, NULL, NULL, 0, NULL,
     "the domain's default list: incoming calls to a number with no selection; one a domain"},
    {"language", FT_ENUM, FF_NULLABLE, 0, 0, crud_languages, NULL, 0, NULL,
     "language of the announcement; null = the domain's"},
    {"created_at", FT_INT, FF_READONLY},
    {"updated_at", FT_INT, FF_READONLY},
    {"members", FT_JSON, FF_VIRTUAL, 0, 0, NULL, NULL, 0, NULL,
     "in order: [{\"number\": extension, login or phone number, \"lines\": 1..30, "
     "\"schedule\": {periods: [...]} or null}] (at most 16)"},
};

/* A member's number: a user of the domain, or an outside number (not another dial-plan entry). */
static bool ring_member_number_ok(struct crud_ctx *c, size_t i, const char *num)
{
    int64_t id;
    if (store_query_int(store_main(), &id,
                        "SELECT id FROM users WHERE domain_id = ? AND (extension = ? OR login = ?)",
                        SA_INT(c->domain_id), SA_STR(num), SA_STR(num), SA_END) == CW_OK)
        return true;
    if (!domain_extension_free(c->domain_id, num, "", 0))
        return crud_fail(c, 400, "invalid_value", "members",
                         "members[%zu].number: %s is not a user's extension; a member is a user "
                         "or an outside number",
                         i, num);
    size_t n = strlen(num), digits = strspn(num[0] == '+' ? num + 1 : num, "0123456789");
    if (n < 3 || n > 20 || digits != n - (num[0] == '+'))
        return crud_fail(c, 400, "invalid_value", "members",
                         "members[%zu].number: an extension or login of this domain, or a phone "
                         "number of 3..20 digits with an optional leading +",
                         i);
    return true;
}

static bool ring_list_validate(struct crud_ctx *c)
{
    if (!domain_extension_rule(c, true)) return false;
    json_t *m = json_object_get(c->in, "members");
    if (!m) return true;
    if (!json_is_array(m) || json_array_size(m) > RING_LIST_MAX_MEMBERS)
        return crud_fail(c, 400, "invalid_value", "members",
                         "members must be an array of at most %d members", RING_LIST_MAX_MEMBERS);
    size_t i;
    json_t *v;
    json_array_foreach(m, i, v)
    {
        json_t *num = json_object_get(v, "number"), *lines = json_object_get(v, "lines");
        const char *k;
        json_t *x;
        bool bad = !json_is_object(v) || !json_is_string(num);
        if (!bad)
            json_object_foreach(v, k, x) if (strcmp(k, "number") && strcmp(k, "lines") &&
                                             strcmp(k, "schedule")) bad = true;
        if (!bad && lines &&
            (!json_is_integer(lines) || json_integer_value(lines) < 1 ||
             json_integer_value(lines) > 30))
            bad = true;
        if (bad)
            return crud_fail(c, 400, "invalid_value", "members",
                             "members[%zu] must be {number, lines 1..30, schedule}", i);
        if (!ring_member_number_ok(c, i, json_string_value(num))) return false;
        char field[48];
        snprintf(field, sizeof field, "members[%zu].schedule", i);
        if (!schedule_ok(c, field, json_object_get(v, "schedule"))) return false;
    }
    return true;
}

static bool ring_list_after_write(struct crud_ctx *c)
{
    store *st = store_main();
    int rc = 0;
    json_t *def = json_object_get(c->in, "is_default");
    if (json_is_true(def))
        rc = store_exec(st, "UPDATE ring_lists SET is_default = 0 WHERE domain_id = ? AND id <> ?",
                        SA_INT(c->domain_id), SA_INT(c->id), SA_END);
    json_t *m = json_object_get(c->in, "members");
    if (!m || rc < 0) return rc < 0 ? crud_store_fail(c, rc) : true;
    rc = store_exec(st, "DELETE FROM ring_list_members WHERE list_id = ?", SA_INT(c->id), SA_END);
    size_t i;
    json_t *v;
    json_array_foreach(m, i, v)
    {
        if (rc < 0) break;
        json_t *lines = json_object_get(v, "lines"), *sch = json_object_get(v, "schedule");
        char *sch_text = sch && !json_is_null(sch) ? json_dumps(sch, JSON_COMPACT) : NULL;
        rc = store_exec(st,
                        "INSERT INTO ring_list_members(list_id, position, number, lines, schedule) "
                        "VALUES(?,?,?,?,?)",
                        SA_INT(c->id), SA_INT((int64_t)i + 1),
                        SA_STR(json_string_value(json_object_get(v, "number"))),
                        SA_INT(lines ? json_integer_value(lines) : 1),
                        sch_text ? SA_STR(sch_text) : SA_NULL, SA_END);
        free(sch_text);
    }
    return rc < 0 ? crud_store_fail(c, rc) : true;
}

static void ring_list_decorate(struct crud_ctx *c, json_t *o)
{
    int64_t id = json_integer_value(json_object_get(o, "id"));
    json_t *m = json_array();
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT number, lines, schedule FROM ring_list_members WHERE list_id = ? "
                    "ORDER BY position",
                    SA_INT(id), SA_END) >= 0) {
        while (store_next(r)) {
            json_t *sch = store_str(r, 2) ? json_loads(store_str(r, 2), 0, NULL) : NULL;
            json_array_append_new(m, json_pack("{s:s,s:I,s:o}", "number", store_str(r, 0), "lines",
                                               (json_int_t)store_int(r, 1), "schedule",
                                               sch ? sch : json_null()));
        }
        store_res_free(r);
    }
    json_object_set_new(o, "members", m);
}

static const struct crud_entity ring_lists = {.path = "ring-lists",
                                              .type = "ring_list",
                                              .label = "ring list",
                                              .table = "ring_lists",
                                              .scope = SCOPE_DOMAIN,
                                              .fields = ring_list_fields,
                                              .nfields = CW_ARRAY_LEN(ring_list_fields),
                                              .name_field = "name",
                                              .order = "name",
                                              .read_role = ROLE_SUPERVISOR,
                                              .write_role = ROLE_DOMAIN_ADMIN,
                                              .created_at = true,
                                              .updated_at = true,
                                              .validate = ring_list_validate,
                                              .after_write = ring_list_after_write,
                                              .decorate = ring_list_decorate};

/* ---- personal IVR (seed 000): the subscriber's own script for incoming calls ---- */

#define PERSONAL_IVR_MAX 65536

static bool domain_user(http_req *req)
{
    if (req->auth->domain_id > 0) return true;
    http_reply_error(req, 403, "forbidden", NULL, "only users of a domain have a personal IVR");
    return false;
}

static void personal_ivr_get(http_req *req)
{
    if (!domain_user(req)) return;
    store_res *r;
    if (store_query(store_main(), &r, "SELECT personal_ivr FROM users WHERE id = ?",
                    SA_INT(req->auth->user_id), SA_END) < 0 ||
        !store_next(r)) {
        store_res_free(r);
        http_reply_error(req, 404, "not_found", NULL, "no such user");
        return;
    }
    const char *code = store_str(r, 0);
    http_reply_json(req, 200, json_pack("{s:s?,s:b}", "script", code, "enabled", code && *code));
    store_res_free(r);
}

static void personal_ivr_put(http_req *req)
{
    if (!domain_user(req)) return;
    json_t *body = http_json_body(req);
    static const struct json_field fields[] = {{"script", JK_STRING, true}};
    if (!body) return;
    if (!http_json_check(req, body, fields, 1)) {
        json_decref(body);
        return;
    }
    const char *code = json_string_value(json_object_get(body, "script"));
    if (strlen(code) > PERSONAL_IVR_MAX) {
        http_reply_error(req, 400, "too_long", "script", "script: at most %d bytes",
                         PERSONAL_IVR_MAX);
        json_decref(body);
        return;
    }
    /* it must compile in the tenant's sandbox before it replaces the running one */
    script_vm *vm = script_tenant(req->auth->domain_id);
    char err[256] = "";
    if (!vm || script_compile(vm, "personal IVR", code, err, sizeof err)) {
        http_reply_error(req, 400, "invalid_script", "script", "script: %s",
                         err[0] ? err : "cannot be compiled");
        json_decref(body);
        return;
    }
    lua_pop(script_vm_state(vm), 1);
    int rc =
        store_exec(store_main(), "UPDATE users SET personal_ivr = ?, updated_at = ? WHERE id = ?",
                   SA_STR(code), SA_INT(cw_wall_time()), SA_INT(req->auth->user_id), SA_END);
    if (rc <= 0) {
        http_reply_error(req, 500, "store", NULL, "the script was not saved");
        json_decref(body);
        return;
    }
    http_audit(req, req->auth->domain_id, "personal_ivr", req->auth->login, "edit",
               json_pack("{s:I}", "bytes", (json_int_t)strlen(code)));
    json_decref(body);
    http_reply_json(req, 200, json_pack("{s:b}", "enabled", 1));
}

static void personal_ivr_delete(http_req *req)
{
    if (!domain_user(req)) return;
    store_exec(store_main(), "UPDATE users SET personal_ivr = NULL, updated_at = ? WHERE id = ?",
               SA_INT(cw_wall_time()), SA_INT(req->auth->user_id), SA_END);
    http_audit(req, req->auth->domain_id, "personal_ivr", req->auth->login, "delete", NULL);
    http_reply_json(req, 200, json_pack("{s:b}", "enabled", 0));
}

/* ---- every user has a main SIP rule ---- */

static void ensure_main_rules(int64_t user_id)
{
    int64_t now = cw_wall_time();
    store_exec(store_main(),
               "INSERT INTO forwarding_rules(domain_id, owner_id, kind, number, priority, "
               "ring_time, enabled, is_main, created_at, updated_at) "
               "SELECT u.domain_id, u.id, 'sip', u.login || '@' || d.name, 10, 40, 1, 1, ?, ? "
               "FROM users u JOIN domains d ON d.id = u.domain_id "
               "WHERE (? = 0 OR u.id = ?) AND NOT EXISTS (SELECT 1 FROM forwarding_rules f "
               "WHERE f.owner_id = u.id AND f.is_main = 1)",
               SA_INT(now), SA_INT(now), SA_INT(user_id), SA_INT(user_id), SA_END);
}

static void on_user_created(const cw_event *ev, void *arg)
{
    json_t *id = json_object_get(ev->data, "user_id");
    if (json_is_integer(id) && ev->domain_id) ensure_main_rules(json_integer_value(id));
}

void callctl_api_init(void)
{
    crud_register(&fwd_admin);
    crud_register(&fwd_own);
    crud_register(&vip_numbers);
    crud_register(&ring_lists);
    http_route("GET", "/api/v1/me/personal-ivr", personal_ivr_get, ROLE_SUBSCRIBER, 0,
               "Your personal IVR script for incoming calls (seed 000)");
    http_route("PUT", "/api/v1/me/personal-ivr", personal_ivr_put, ROLE_SUBSCRIBER, 0,
               "Set your personal IVR (Lua, sandboxed; the call is `...`); must compile");
    http_route("DELETE", "/api/v1/me/personal-ivr", personal_ivr_delete, ROLE_SUBSCRIBER, 0,
               "Remove your personal IVR: calls follow your forwarding scheme again");
    ensure_main_rules(0);
    events_subscribe("config.user.created", on_user_created, NULL);
}
