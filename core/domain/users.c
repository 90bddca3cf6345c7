/*
 * users.c - domain users (seed 001 §7.2): the entity descriptor and its
 * rules (auto extension, role and flags, caller-id number, call-group
 * membership, the domain's user limit), the next-extension suggestion and
 * the colleagues' directory. Passwords are hashed by the engine on a worker
 * together with the SIP HA1 digests (realm = domain name). Core thread only.
 */
#include "call/call.h"
#include "domain/crud.h"

/* descriptor tables name the leading members and leave the rest zero */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <stdio.h>
#include <string.h>

static const char *const user_roles[] = {"subscriber", "operator", "supervisor", "domain_admin",
                                         NULL};
static const char *const restrictions[] = {"none", "no_international",
                                           "no_international_longdistance", "internal_only", NULL};
static const char *const dtmf_modes[] = {"auto", "rfc4733", "inband", NULL};

static const struct crud_field user_fields[] = {
    {"login", FT_TEXT, FF_REQUIRED | FF_CREATE | FF_UNIQUE | FF_SEARCH | FF_FILTER, 1, 64, NULL,
     "[a-z][a-z0-9._-]{0,63}", 0, NULL,
     "lower-case Latin letters, digits, . _ -; starts with a letter; SIP login is login@domain"},
    {"display_name", FT_TEXT, FF_REQUIRED | FF_SEARCH, 1, 128},
    {"extension", FT_DIGITS, FF_FILTER | FF_SEARCH, 1, 5, NULL, NULL, 0, NULL,
     "unique in the domain; chosen automatically when absent"},
    {"job_title", FT_TEXT, FF_NULLABLE, 0, 128},
    {"email", FT_EMAIL, FF_NULLABLE | FF_SEARCH},
    {"phone", FT_TEXT, FF_NULLABLE | FF_SEARCH, 0, 32, NULL, "[+]?[0-9 ()-]{0,31}"},
    {"password", FT_PASSWORD, FF_REQUIRED},
    {"cli_number", FT_DIGITS, FF_NULLABLE, 3, 15, NULL, NULL, 0, NULL,
     "caller id for outgoing calls: one of the domain's numbers; null = the domain default"},
    {"restriction", FT_ENUM, FF_FILTER, 0, 0, restrictions},
    {"role", FT_ENUM, FF_FILTER, 0, 0, user_roles},
    {"is_operator", FT_BOOL, FF_FILTER},
    {"is_domain_admin", FT_BOOL, FF_VIRTUAL, 0, 0, NULL, NULL, 0, NULL, "true = role domain_admin"},
    {"language", FT_ENUM, 0, 0, 0, crud_languages},
    {"status", FT_ENUM, FF_FILTER, 0, 0, crud_statuses},
    {"voicemail_enabled", FT_BOOL},
    {"voicemail_notify", FT_BOOL},
    {"voicemail_pin", FT_DIGITS, FF_NULLABLE | FF_WRITEONLY, 4, 8, NULL, NULL, 0, NULL,
     "write-only: digits asked before voicemail is played; stored hashed; null = none"},
    {"recording_enabled", FT_BOOL},
    {"greeting_sound_id", FT_ID, FF_NULLABLE, 0, 0, NULL, NULL, 0, "sound_files",
     "played to callers before the call is put through (seed 001 §4.2)"},
    {"vm_greeting_sound_id", FT_ID, FF_NULLABLE, 0, 0, NULL, NULL, 0, "sound_files",
     "the voicemail greeting; null = the standard prompt"},
    {"ringback_sound_id", FT_ID, FF_NULLABLE, 0, 0, NULL, NULL, 0, "sound_files",
     "a melody callers hear instead of ringing"},
    {"dtmf_mode", FT_ENUM, 0, 0, 0, dtmf_modes},
    {"call_groups", FT_IDLIST, FF_VIRTUAL, 0, 0, NULL, NULL, 0, NULL,
     "ids of the call-processing groups the user is a member of"},
    {"created_at", FT_INT, FF_READONLY},
};

static bool user_validate(struct crud_ctx *c)
{
    store *st = store_main();
    json_t *cols = c->cols;
    json_t *pin = json_object_get(cols, "voicemail_pin");
    if (json_is_string(pin)) { /* never stored as typed */
        char *h = call_vm_pin_hash(json_string_value(pin));
        json_object_set_new(cols, "voicemail_pin", json_string(h));
        free(h);
    }
    if (c->creating) {
        int64_t n = 0, max = 0;
        store_query_int(st, &n, "SELECT COUNT(*) FROM users WHERE domain_id = ?",
                        SA_INT(c->domain_id), SA_END);
        store_query_int(st, &max, "SELECT max_users FROM domains WHERE id = ?",
                        SA_INT(c->domain_id), SA_END);
        if (n >= max)
            return crud_fail(c, 409, "limit", NULL,
                             "the domain already has its maximum of %lld "
                             "users",
                             (long long)max);
    }
    /* role, the operator flag and the domain-admin flag tell one story */
    json_t *role = json_object_get(cols, "role"), *op = json_object_get(cols, "is_operator");
    json_t *adm = json_object_get(c->in, "is_domain_admin");
    if (adm) {
        if (role && json_is_true(adm) != !strcmp(json_string_value(role), "domain_admin"))
            return crud_fail(c, 400, "invalid_value", "is_domain_admin",
                             "is_domain_admin contradicts role");
        if (json_is_true(adm)) {
            json_object_set_new(cols, "role", json_string("domain_admin"));
        } else if (!role) {
            json_t *cur = crud_value(c, "role");
            if (!cur || !strcmp(json_string_value(cur), "domain_admin")) {
                json_t *isop = crud_value(c, "is_operator");
                json_object_set_new(cols, "role",
                                    json_string(json_is_true(isop) ? "operator" : "subscriber"));
            }
        }
        role = json_object_get(cols, "role");
    }
    if (c->creating && role && !op && !strcmp(json_string_value(role), "operator"))
        json_object_set_new(cols, "is_operator", json_true());
    if (c->creating && !role)
        json_object_set_new(cols, "role",
                            json_string(json_is_true(op) ? "operator" : "subscriber"));
    /* the extension: free across users, groups and IVR numbers, or chosen now */
    if (!domain_extension_rule(c, true)) return false;
    json_t *cli = json_object_get(cols, "cli_number");
    int64_t one;
    if (cli && !json_is_null(cli) &&
        store_query_int(st, &one,
                        "SELECT 1 FROM external_numbers WHERE domain_id = ? AND number = ?",
                        SA_INT(c->domain_id), SA_STR(json_string_value(cli)), SA_END) != CW_OK)
        return crud_fail(c, 400, "invalid_value", "cli_number",
                         "cli_number %s is not a number of this domain", json_string_value(cli));
    json_t *groups = json_object_get(c->in, "call_groups");
    size_t i;
    json_t *v;
    json_array_foreach(groups, i, v)
    {
        if (store_query_int(st, &one, "SELECT 1 FROM call_groups WHERE id = ? AND domain_id = ?",
                            SA_INT(json_integer_value(v)), SA_INT(c->domain_id), SA_END) != CW_OK)
            return crud_fail(c, 400, "invalid_value", "call_groups",
                             "call_groups[%zu]: no such group in this domain", i);
    }
    return true;
}

static bool user_after_write(struct crud_ctx *c)
{
    json_t *groups = json_object_get(c->in, "call_groups");
    if (!groups) return true;
    store *st = store_main();
    /* leave the groups not listed, join the listed ones not yet joined */
    store_res *r;
    int rc = store_query(st, &r, "SELECT group_id FROM call_group_members WHERE user_id = ?",
                         SA_INT(c->id), SA_END);
    while (rc >= 0 && store_next(r)) {
        int64_t g = store_int(r, 0);
        bool keep = false;
        size_t i;
        json_t *v;
        json_array_foreach(groups, i, v) if (json_integer_value(v) == g) keep = true;
        if (!keep)
            rc = store_exec(st, "DELETE FROM call_group_members WHERE user_id = ? AND group_id = ?",
                            SA_INT(c->id), SA_INT(g), SA_END);
    }
    store_res_free(r);
    size_t i;
    json_t *v;
    json_array_foreach(groups, i, v)
    {
        int64_t one;
        if (rc < 0) break;
        if (store_query_int(st, &one,
                            "SELECT 1 FROM call_group_members WHERE user_id = ? AND group_id = ?",
                            SA_INT(c->id), SA_INT(json_integer_value(v)), SA_END) == CW_OK)
            continue;
        rc = store_exec(st, "INSERT INTO call_group_members(group_id, user_id) VALUES(?,?)",
                        SA_INT(json_integer_value(v)), SA_INT(c->id), SA_END);
    }
    return rc < 0 ? crud_store_fail(c, rc) : true;
}

/*
 * The virtual members of a page of users: SIP address, domain-admin flag, call groups
 * and pickup group, in three queries whatever the page size.
 */
static void user_decorate_page(struct crud_ctx *c, json_t *items)
{
    store *st = store_main();
    store_res *r;
    char *domain = NULL;
    if (store_query(st, &r, "SELECT name FROM domains WHERE id = ?", SA_INT(c->domain_id),
                    SA_END) >= 0 &&
        store_next(r))
        domain = cw_strdup(store_str(r, 0));
    store_res_free(r);
    size_t i;
    json_t *o;
    json_array_foreach(items, i, o)
    {
        if (domain)
            json_object_set_new(
                o, "sip_address",
                json_sprintf("%s@%s", json_string_value(json_object_get(o, "login")), domain));
        json_object_set_new(
            o, "is_domain_admin",
            json_boolean(!strcmp(json_string_value(json_object_get(o, "role")), "domain_admin")));
        json_object_set_new(o, "call_groups", json_array());
        json_object_set_new(o, "pickup_group_id", json_null());
    }
    free(domain);
    json_t *index = crud_page_index(items);
    r = crud_page_query(items, "SELECT user_id, group_id FROM call_group_members "
                               "WHERE user_id IN (?) ORDER BY user_id, group_id");
    while (r && store_next(r)) {
        json_t *u = json_object_get(index, store_str(r, 0));
        if (u)
            json_array_append_new(json_object_get(u, "call_groups"), json_integer(store_int(r, 1)));
    }
    store_res_free(r);
    r = crud_page_query(items, "SELECT user_id, group_id FROM pickup_members WHERE user_id IN (?)");
    while (r && store_next(r)) {
        json_t *u = json_object_get(index, store_str(r, 0));
        if (u) json_object_set_new(u, "pickup_group_id", json_integer(store_int(r, 1)));
    }
    store_res_free(r);
    json_decref(index);
}

static void user_decorate(struct crud_ctx *c, json_t *o)
{
    json_t *one = json_array();
    json_array_append(one, o);
    user_decorate_page(c, one);
    json_decref(one);
}

static void user_pw_identity(struct crud_ctx *c, char *login, size_t llen, char *realm, size_t rlen)
{
    json_t *l = crud_value(c, "login");
    cw_strlcpy(login, json_is_string(l) ? json_string_value(l) : "", llen);
    store_res *r;
    if (store_query(store_main(), &r, "SELECT name FROM domains WHERE id = ?", SA_INT(c->domain_id),
                    SA_END) >= 0 &&
        store_next(r))
        cw_strlcpy(realm, store_str(r, 0), rlen);
    store_res_free(r);
}

static bool user_before_delete(struct crud_ctx *c)
{
    return crud_not_self(c) && routing_not_referenced(c, "user");
}

static const struct crud_entity users = {.path = "users",
                                         .type = "user",
                                         .label = "user",
                                         .table = "users",
                                         .scope = SCOPE_DOMAIN,
                                         .fields = user_fields,
                                         .nfields = CW_ARRAY_LEN(user_fields),
                                         .name_field = "login",
                                         .order = "display_name",
                                         .read_role = ROLE_SUPERVISOR,
                                         .write_role = ROLE_DOMAIN_ADMIN,
                                         .created_at = true,
                                         .updated_at = true,
                                         .validate = user_validate,
                                         .after_write = user_after_write,
                                         .before_delete = user_before_delete,
                                         .decorate = user_decorate,
                                         .decorate_page = user_decorate_page,
                                         .decorate_stored = true,
                                         .pw_identity = user_pw_identity};

static void next_extension(http_req *req)
{
    int64_t domain;
    if (!http_domain_param(req, 0, &domain)) return;
    char next[16];
    if (domain_next_extension(domain, next, sizeof next)) {
        http_reply_error(req, 409, "no_extension", "extension", "no free extension is left");
        return;
    }
    http_reply_json(req, 200, json_pack("{s:s}", "extension", next));
}

/*
 * The colleagues' directory (seed 001 §4.5.2): any user may list the users
 * of their own domain and of the other domains of their pool, with the
 * fields a phone book needs and nothing more.
 */
static void directory(http_req *req)
{
    static const char *const allowed[] = {"limit", "offset", "q", NULL};
    int64_t domain = 0, limit, offset, one;
    const char *v = req->params[0];
    if (!http_query_only(req, allowed) || !http_page(req, &limit, &offset)) return;
    if (cw_str_is_digits(v))
        cw_parse_i64(v, &domain);
    else
        store_query_int(store_main(), &domain, "SELECT id FROM domains WHERE name = ?", SA_STR(v),
                        SA_END);
    bool ok = http_domain_reachable(req->auth, domain);
    if (!ok && req->auth->domain_id)
        ok = store_query_int(store_main(), &one,
                             "SELECT 1 FROM domains a JOIN domains b ON a.pool_id = b.pool_id "
                             "WHERE a.id = ? AND b.id = ?",
                             SA_INT(req->auth->domain_id), SA_INT(domain), SA_END) == CW_OK;
    if (!ok) {
        http_reply_error(req, 404, "not_found", NULL, "no such domain");
        return;
    }
    const char *q = http_query(req, "q");
    char *like = cw_sprintf("%%%s%%", q ? q : "");
    store_res *r;
    int64_t total = 0;
    store_query_int(store_main(), &total,
                    "SELECT COUNT(*) FROM users WHERE domain_id = ? AND status = 'active' AND "
                    "(LOWER(display_name) LIKE LOWER(?) OR LOWER(login) LIKE LOWER(?))",
                    SA_INT(domain), SA_STR(like), SA_STR(like), SA_END);
    int rc = store_query(store_main(), &r,
                         "SELECT u.id, u.display_name, u.extension, u.login, u.is_operator, "
                         "u.job_title, d.name, d.routing_number FROM users u JOIN domains d ON "
                         "d.id = u.domain_id WHERE u.domain_id = ? AND u.status = 'active' AND "
                         "(LOWER(u.display_name) LIKE LOWER(?) OR LOWER(u.login) LIKE LOWER(?)) "
                         "ORDER BY u.display_name, u.id LIMIT ? OFFSET ?",
                         SA_INT(domain), SA_STR(like), SA_STR(like), SA_INT(limit), SA_INT(offset),
                         SA_END);
    free(like);
    if (rc < 0) {
        http_reply_error(req, 500, "store", NULL, "reading the directory failed");
        return;
    }
    json_t *items = json_array();
    while (store_next(r)) {
        json_t *o = json_pack("{s:I,s:s,s:s?,s:s,s:b,s:s?,s:s}", "id", (json_int_t)store_int(r, 0),
                              "display_name", store_str(r, 1), "extension", store_str(r, 2),
                              "login", store_str(r, 3), "is_operator", store_int(r, 4) != 0,
                              "job_title", store_str(r, 5), "domain", store_str(r, 6));
        json_object_set_new(o, "sip_address",
                            json_sprintf("%s@%s", store_str(r, 3), store_str(r, 6)));
        /* from another domain of the pool: routing number + extension */
        if (store_str(r, 7) && store_str(r, 2))
            json_object_set_new(o, "dial", json_sprintf("%s%s", store_str(r, 7), store_str(r, 2)));
        json_array_append_new(items, o);
    }
    store_res_free(r);
    http_reply_json(req, 200,
                    json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total,
                              "limit", (json_int_t)limit, "offset", (json_int_t)offset));
}

void users_api_init(void)
{
    /* before the entity, so "next-extension" is not taken for an :id */
    http_route("GET", "/api/v1/domains/:domain/users/next-extension", next_extension,
               ROLE_DOMAIN_ADMIN, 0, "The extension a new user would get");
    http_route("GET", "/api/v1/domains/:domain/directory", directory, ROLE_SUBSCRIBER, 0,
               "Colleagues of the caller's domain or pool: names, extensions, SIP addresses");
    crud_register(&users);
}
