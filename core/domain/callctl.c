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
    ensure_main_rules(0);
    events_subscribe("config.user.created", on_user_created, NULL);
}
