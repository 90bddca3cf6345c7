/*
 * entities.c - the descriptors of API v1's entities and their hooks:
 * pools, subgroups, domains, pool admins, system admins, pickup groups,
 * call-processing groups, external numbers, address books, IVR flows.
 * Users live in users.c, sound-file uploads in sounds.c.
 *
 * Every rule that is not a field limit lives in a hook here, next to its
 * entity. Core thread only.
 */
#include "domain/crud.h"
#include "config/config.h"
#include "log/log.h"
#include "loop/work.h"
#include "recording/recording.h"

/* descriptor tables name the leading members and leave the rest zero */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOGIN_RE  "[a-z][a-z0-9._-]{0,63}"
#define PHONE_RE  "[+]?[0-9 ()-]{0,31}"
#define HOST_RE   "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+"
#define TZ_RE     "UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2}"
#define DIAL_RE   "[0-9*#+]{1,32}"
#define SCRIPT_RE "[A-Za-z0-9_][A-Za-z0-9_./-]{0,127}"

static const char *const admin_roles[] = {"subgroup_admin", "pool_supervisor", NULL};
static const char *const number_kinds[] = {"city", "mobile", "tollfree", "sip", NULL};
static const char *const strategies[] = {
    "not_set",         "ring_all",         "random",      "longest_idle",
    "least_loaded",    "fewest_calls",     "round_robin", "linear",
    "weighted_random", "ring_progressive", NULL};
static const char *const waiting_audios[] = {"moh", "ringback", NULL};
static const char *const phone_types[] = {"home", "work", "mobile", "ip", NULL};

/* ------------------------------------------------------- shared helpers */

static int64_t count_of(const char *sql, int64_t id)
{
    int64_t n = 0;
    store_query_int(store_main(), &n, sql, SA_INT(id), SA_END);
    return n;
}

/* A login must be unique among accounts without a domain (pool and system admins). */
static bool global_login_free(struct crud_ctx *c)
{
    json_t *login = json_object_get(c->cols, "login");
    if (!c->creating || !login) return true;
    int64_t one;
    if (store_query_int(store_main(), &one,
                        "SELECT 1 FROM users WHERE domain_id IS NULL AND login = ?",
                        SA_STR(json_string_value(login)), SA_END) == CW_OK)
        return crud_fail(c, 409, "conflict", "login", "login \"%s\" is already taken",
                         json_string_value(login));
    return true;
}

/* Every id of list is a user of the object's domain; the first stranger is named. */
static bool users_of_domain(struct crud_ctx *c, json_t *list, const char *field)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        int64_t one;
        if (store_query_int(store_main(), &one,
                            "SELECT 1 FROM users WHERE id = ? AND domain_id = ?",
                            SA_INT(json_integer_value(v)), SA_INT(c->domain_id), SA_END) != CW_OK)
            return crud_fail(c, 400, "invalid_value", field, "%s[%zu]: no such user", field, i);
    }
    return true;
}

bool domain_extension_free(int64_t domain_id, const char *ext, const char *self_table,
                           int64_t self_id)
{
    static const char *const tables[] = {"users", "call_groups", "ivr_flows", "conference_rooms",
                                         "ring_lists"};
    for (size_t i = 0; i < CW_ARRAY_LEN(tables); i++) {
        char *sql = cw_sprintf("SELECT 1 FROM %s WHERE domain_id = ? AND extension = ? AND id <> ?",
                               tables[i]);
        int64_t one;
        int rc = store_query_int(store_main(), &one, sql, SA_INT(domain_id), SA_STR(ext),
                                 SA_INT(strcmp(tables[i], self_table) ? 0 : self_id), SA_END);
        free(sql);
        if (rc == CW_OK) return false;
    }
    return true;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int domain_next_extension(int64_t domain_id, char *out, size_t outlen)
{
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT extension FROM users WHERE domain_id = ? AND extension IS NOT NULL "
                    "UNION SELECT extension FROM call_groups WHERE domain_id = ? UNION SELECT "
                    "extension FROM ivr_flows WHERE domain_id = ? AND extension IS NOT NULL "
                    "UNION SELECT extension FROM conference_rooms WHERE domain_id = ? "
                    "UNION SELECT extension FROM ring_lists WHERE domain_id = ?",
                    SA_INT(domain_id), SA_INT(domain_id), SA_INT(domain_id), SA_INT(domain_id),
                    SA_INT(domain_id), SA_END) < 0)
        return CW_EIO;
    int n = 0;
    int64_t *used = cw_calloc((size_t)store_nrows(r) + 1, sizeof *used);
    while (store_next(r)) {
        const char *e = store_str(r, 0);
        int64_t v;
        if (e && e[0] != '0' && strlen(e) <= 5 && !cw_parse_i64(e, &v)) used[n++] = v;
    }
    store_res_free(r);
    qsort(used, (size_t)n, sizeof *used, cmp_i64);
    int64_t next = 100;
    for (int i = 0; i < n; i++) {
        if (used[i] < next) continue;
        if (used[i] > next) break;
        next++;
    }
    free(used);
    if (next > 99999) return CW_ENOMEM;
    snprintf(out, outlen, "%lld", (long long)next);
    return CW_OK;
}

bool domain_extension_rule(struct crud_ctx *c, bool required)
{
    json_t *ext = json_object_get(c->cols, "extension");
    if (ext && json_is_string(ext)) {
        if (!domain_extension_free(c->domain_id, json_string_value(ext), c->e->table, c->id))
            return crud_fail(c, 409, "conflict", "extension",
                             "extension %s is already used in this domain", json_string_value(ext));
    } else if (c->creating && required && !ext) {
        char next[16];
        if (domain_next_extension(c->domain_id, next, sizeof next))
            return crud_fail(c, 409, "no_extension", "extension", "no free extension is left");
        json_object_set_new(c->cols, "extension", json_string(next));
    }
    return true;
}

/* ------------------------------------------------------------------ pools */

static const struct crud_field pool_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_GLOBAL | FF_SEARCH, 1, 128},
    {"created_at", FT_INT, FF_READONLY},
};

static bool pool_reach(struct crud_ctx *c, cw_buf *w, store_arg *args, int *n)
{
    if (c->req->auth->role == ROLE_SYSADMIN) return true;
    cw_buf_puts(w, " AND id = ?");
    args[(*n)++] = SA_INT(c->req->auth->pool_id);
    return true;
}

static bool pool_after_write(struct crud_ctx *c)
{
    if (!c->creating) return true;
    int rc = store_exec(store_main(),
                        "INSERT INTO subgroups(pool_id, name, is_default, created_at) "
                        "VALUES(?, 'Ungrouped', 1, ?)",
                        SA_INT(c->id), SA_INT(cw_wall_time()), SA_END);
    return rc < 0 ? crud_store_fail(c, rc) : true;
}

static bool pool_before_delete(struct crud_ctx *c)
{
    if (count_of("SELECT COUNT(*) FROM domains WHERE pool_id = ?", c->id))
        return crud_fail(c, 409, "not_empty", NULL,
                         "the pool still has domains; move or delete them first");
    store_exec(store_main(), "DELETE FROM subgroups WHERE pool_id = ?", SA_INT(c->id), SA_END);
    return true;
}

static void pool_decorate(struct crud_ctx *c, json_t *o)
{
    int64_t id = json_integer_value(json_object_get(o, "id"));
    json_object_set_new(
        o, "domain_count",
        json_integer(count_of("SELECT COUNT(*) FROM domains WHERE pool_id = ?", id)));
}

static const struct crud_entity pools = {.path = "pools",
                                         .type = "pool",
                                         .label = "pool",
                                         .table = "pools",
                                         .scope = SCOPE_GLOBAL,
                                         .fields = pool_fields,
                                         .nfields = CW_ARRAY_LEN(pool_fields),
                                         .name_field = "name",
                                         .order = "name",
                                         .read_role = ROLE_SUBGROUP_ADMIN,
                                         .write_role = ROLE_POOL_SUPERVISOR,
                                         .create_role = ROLE_SYSADMIN,
                                         .delete_role = ROLE_SYSADMIN,
                                         .created_at = true,
                                         .is_pool = true,
                                         .reach = pool_reach,
                                         .after_write = pool_after_write,
                                         .before_delete = pool_before_delete,
                                         .decorate = pool_decorate};

/* -------------------------------------------------------------- subgroups */

static const struct crud_field subgroup_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_SEARCH, 1, 64},
    {"is_default", FT_BOOL, FF_READONLY | FF_FILTER},
    {"created_at", FT_INT, FF_READONLY},
};

static bool subgroup_reach(struct crud_ctx *c, cw_buf *w, store_arg *args, int *n)
{
    if (c->req->auth->role != ROLE_SUBGROUP_ADMIN) return true;
    cw_buf_puts(w, " AND id IN (SELECT subgroup_id FROM user_subgroups WHERE user_id = ?)");
    args[(*n)++] = SA_INT(c->req->auth->user_id);
    return true;
}

static bool subgroup_before_delete(struct crud_ctx *c)
{
    if (json_is_true(json_object_get(c->old, "is_default")))
        return crud_fail(c, 409, "default_subgroup", NULL,
                         "the default subgroup cannot be deleted");
    /* its domains fall back to the pool's default subgroup */
    int rc = store_exec(store_main(),
                        "UPDATE domains SET subgroup_id = (SELECT id FROM subgroups WHERE pool_id "
                        "= ? AND is_default = 1) WHERE subgroup_id = ?",
                        SA_INT(c->pool_id), SA_INT(c->id), SA_END);
    return rc < 0 ? crud_store_fail(c, rc) : true;
}

static void subgroup_decorate(struct crud_ctx *c, json_t *o)
{
    int64_t id = json_integer_value(json_object_get(o, "id"));
    json_object_set_new(
        o, "domains", crud_id_list("SELECT id FROM domains WHERE subgroup_id = ? ORDER BY id", id));
}

static const struct crud_entity subgroups = {.path = "subgroups",
                                             .type = "subgroup",
                                             .label = "subgroup",
                                             .table = "subgroups",
                                             .scope = SCOPE_POOL,
                                             .fields = subgroup_fields,
                                             .nfields = CW_ARRAY_LEN(subgroup_fields),
                                             .name_field = "name",
                                             .order = "name",
                                             .read_role = ROLE_SUBGROUP_ADMIN,
                                             .write_role = ROLE_POOL_SUPERVISOR,
                                             .created_at = true,
                                             .reach = subgroup_reach,
                                             .before_delete = subgroup_before_delete,
                                             .decorate = subgroup_decorate};

/* POST /pools/:pool/subgroups/:id/domains {"domain_ids": [...]}: bulk move (seed 4.7.3). */
static void subgroup_move_domains(http_req *req)
{
    static const struct json_field f[] = {{"domain_ids", JK_ARRAY, true}};
    struct crud_ctx cx = {.req = req, .e = &subgroups};
    int64_t pool, sub, one;
    if (!http_pool_param(req, 0, &pool)) return;
    cx.scope_id = cx.pool_id = pool;
    if (cw_parse_i64(req->params[1], &sub) ||
        store_query_int(store_main(), &one, "SELECT 1 FROM subgroups WHERE id = ? AND pool_id = ?",
                        SA_INT(sub), SA_INT(pool), SA_END) != CW_OK) {
        http_reply_error(req, 404, "not_found", NULL, "no such subgroup");
        return;
    }
    json_t *b = http_json_body(req);
    if (!b) return;
    if (!http_json_check(req, b, f, 1)) goto out;
    json_t *ids = json_object_get(b, "domain_ids");
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (!json_is_integer(v) ||
            store_query_int(store_main(), &one,
                            "SELECT 1 FROM domains WHERE id = ? AND pool_id = ?",
                            SA_INT(json_integer_value(v)), SA_INT(pool), SA_END) != CW_OK) {
            crud_fail(&cx, 400, "invalid_value", "domain_ids",
                      "domain_ids[%zu]: no such domain "
                      "in this pool",
                      i);
            goto out;
        }
    }
    store *st = store_main();
    store_begin(st);
    json_array_foreach(ids, i, v)
    {
        int64_t d = json_integer_value(v), from = 0;
        store_query_int(st, &from, "SELECT subgroup_id FROM domains WHERE id = ?", SA_INT(d),
                        SA_END);
        if (from == sub) continue;
        store_exec(st, "UPDATE domains SET subgroup_id = ? WHERE id = ?", SA_INT(sub), SA_INT(d),
                   SA_END);
        store_res *r;
        char name[256] = "";
        if (store_query(st, &r, "SELECT name FROM domains WHERE id = ?", SA_INT(d), SA_END) >= 0 &&
            store_next(r))
            cw_strlcpy(name, store_str(r, 0), sizeof name);
        store_res_free(r);
        http_audit(req, d, "domain", name, "edit",
                   json_pack("{s:{s:I,s:I}}", "subgroup_id", "from", (json_int_t)from, "to",
                             (json_int_t)sub));
    }
    store_commit(st);
    http_reply_json(req, 200, crud_fetch(&cx, sub));
out:
    json_decref(b);
}

/* ---------------------------------------------------------------- domains */

static const struct crud_field domain_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_CREATE | FF_UNIQUE | FF_GLOBAL | FF_SEARCH | FF_FILTER, 3,
     253, NULL, HOST_RE, ROLE_SYSADMIN, NULL, "a DNS name such as example.com"},
    {"display_name", FT_TEXT, FF_SEARCH, 0, 128, NULL, NULL, ROLE_SUBGROUP_ADMIN},
    {"routing_number", FT_DIGITS, FF_NULLABLE | FF_UNIQUE | FF_GLOBAL | FF_SEARCH, 1, 10, NULL,
     NULL, ROLE_SUBGROUP_ADMIN, NULL, "prefix that reaches this domain from others of its pool"},
    {"timezone", FT_TEXT, 0, 1, 64, NULL, TZ_RE, 0, NULL, "an IANA zone such as Europe/Moscow"},
    {"default_cli", FT_DIGITS, FF_NULLABLE, 3, 15},
    {"language", FT_ENUM, 0, 0, 0, crud_languages},
    {"max_users", FT_INT, 0, 1, 100000, NULL, NULL, ROLE_SYSADMIN},
    {"max_channels", FT_INT, 0, 1, 100000, NULL, NULL, ROLE_SYSADMIN},
    {"pickup_code", FT_TEXT, 0, 1, 6, NULL, "[*#][0-9*#]{0,5}"},
    {"ivr_timeout", FT_INT, 0, 1, 60},
    {"ivr_max_errors", FT_INT, 0, 1, 10},
    {"notify_email", FT_EMAIL, FF_NULLABLE},
    {"record_all", FT_BOOL, 0, 0, 0, NULL, NULL, 0, NULL, "record every call of the domain"},
    {"recording_retention", FT_INT, 0, 1, 12, NULL, NULL, 0, NULL,
     "months recordings are kept: 1, 6 or 12; older ones are deleted"},
    {"status", FT_ENUM, FF_FILTER, 0, 0, crud_statuses, NULL, ROLE_SYSADMIN},
    {"pool_id", FT_ID, FF_NULLABLE | FF_FILTER, 0, 0, NULL, NULL, ROLE_SYSADMIN},
    {"subgroup_id", FT_ID, FF_NULLABLE | FF_FILTER, 0, 0, NULL, NULL, ROLE_POOL_SUPERVISOR},
    {"created_at", FT_INT, FF_READONLY},
};

static bool domain_reach(struct crud_ctx *c, cw_buf *w, store_arg *args, int *n)
{
    char cond[256];
    http_domain_reach_sql(c->req->auth, "id", cond, sizeof cond, args, n);
    cw_buf_printf(w, " AND %s", cond);
    return true;
}

/* A zone the system's tz database knows (package tzdata), or UTC. */
static bool timezone_known(const char *tz)
{
    if (!strcmp(tz, "UTC")) return true;
    char *path = cw_sprintf("/usr/share/zoneinfo/%s", tz);
    struct stat sb;
    bool ok = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
    free(path);
    return ok;
}

static bool domain_validate(struct crud_ctx *c)
{
    json_t *ret = json_object_get(c->cols, "recording_retention");
    if (ret && json_integer_value(ret) != 1 && json_integer_value(ret) != 6 &&
        json_integer_value(ret) != 12)
        return crud_fail(c, 400, "invalid_value", "recording_retention",
                         "recording_retention must be 1, 6 or 12 months");
    json_t *tz = json_object_get(c->cols, "timezone");
    if (tz && !timezone_known(json_string_value(tz)))
        return crud_fail(c, 400, "invalid_value", "timezone", "unknown time zone \"%s\"",
                         json_string_value(tz));
    json_t *pool = crud_value(c, "pool_id");
    json_t *sub = json_object_get(c->cols, "subgroup_id");
    int64_t pid = json_integer_value(pool), one;
    if (json_object_get(c->cols, "pool_id") && pid &&
        store_query_int(store_main(), &one, "SELECT 1 FROM pools WHERE id = ?", SA_INT(pid),
                        SA_END) != CW_OK)
        return crud_fail(c, 400, "invalid_value", "pool_id", "pool_id: no such pool");
    /* a pool admin may only move domains between subgroups of its own pool */
    if (c->req->auth->role != ROLE_SYSADMIN && pid != c->req->auth->pool_id &&
        json_object_get(c->cols, "subgroup_id"))
        return crud_fail(c, 403, "forbidden", "subgroup_id", "the domain is not in your pool");
    if (sub && !json_is_null(sub)) {
        if (!pid || store_query_int(store_main(), &one,
                                    "SELECT 1 FROM subgroups WHERE id = ? AND pool_id = ?",
                                    SA_INT(json_integer_value(sub)), SA_INT(pid), SA_END) != CW_OK)
            return crud_fail(c, 400, "invalid_value", "subgroup_id",
                             "subgroup_id: no such subgroup in the domain's pool");
    } else if (json_object_get(c->cols, "pool_id") || (sub && json_is_null(sub))) {
        /* joining a pool, or leaving a subgroup: the pool's default subgroup */
        int64_t def = 0;
        if (pid)
            store_query_int(store_main(), &def,
                            "SELECT id FROM subgroups WHERE pool_id = ? AND is_default = 1",
                            SA_INT(pid), SA_END);
        json_object_set_new(c->cols, "subgroup_id", def ? json_integer(def) : json_null());
    }
    return true;
}

/* A changed retention applies to the recordings already kept, too. */
static bool domain_after_write(struct crud_ctx *c)
{
    json_t *ret = json_object_get(c->cols, "recording_retention");
    if (!ret || c->creating) return true;
    int rc = recording_retention_changed(c->id, (int)json_integer_value(ret));
    return rc ? crud_store_fail(c, rc) : true;
}

static void domain_decorate(struct crud_ctx *c, json_t *o)
{
    int64_t id = json_integer_value(json_object_get(o, "id"));
    json_object_set_new(
        o, "counters",
        json_pack(
            "{s:I,s:I,s:I}", "users",
            (json_int_t)count_of("SELECT COUNT(*) FROM users WHERE domain_id = ?", id), "operators",
            (json_int_t)count_of(
                "SELECT COUNT(*) FROM users WHERE domain_id = ? AND is_operator = 1", id),
            "numbers",
            (json_int_t)count_of("SELECT COUNT(*) FROM external_numbers WHERE domain_id = ?", id)));
}

struct rmdir_job {
    char *dir;
};

static void rmdir_run(void *arg)
{
    struct rmdir_job *j = arg;
    DIR *d = opendir(j->dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char *p = cw_sprintf("%s/%s", j->dir, de->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(j->dir);
}

static void rmdir_done(void *arg)
{
    struct rmdir_job *j = arg;
    free(j->dir);
    free(j);
}

static void domain_after_delete(struct crud_ctx *c)
{
    const char *name = json_string_value(json_object_get(c->old, "name"));
    if (!name || !*name || strchr(name, '/')) return;
    struct rmdir_job *j = cw_calloc(1, sizeof *j);
    j->dir = cw_sprintf("%s/sounds/%s", config_str("var_dir"), name);
    work_submit(rmdir_run, rmdir_done, j);
}

static const struct crud_entity domains = {.path = "domains",
                                           .type = "domain",
                                           .label = "domain",
                                           .table = "domains",
                                           .scope = SCOPE_GLOBAL,
                                           .fields = domain_fields,
                                           .nfields = CW_ARRAY_LEN(domain_fields),
                                           .name_field = "name",
                                           .order = "name",
                                           .read_role = ROLE_SUBSCRIBER,
                                           .write_role = ROLE_DOMAIN_ADMIN,
                                           .create_role = ROLE_SYSADMIN,
                                           .delete_role = ROLE_SYSADMIN,
                                           .created_at = true,
                                           .is_domain = true,
                                           .reach = domain_reach,
                                           .validate = domain_validate,
                                           .after_write = domain_after_write,
                                           .after_delete = domain_after_delete,
                                           .decorate = domain_decorate};

/* ------------------------------------------------ pool and system admins */

static const struct crud_field pool_admin_fields[] = {
    {"login", FT_TEXT, FF_REQUIRED | FF_CREATE | FF_SEARCH, 1, 64, NULL, LOGIN_RE, 0, NULL,
     "lower-case Latin letters, digits, . _ -; starts with a letter"},
    {"display_name", FT_TEXT, FF_REQUIRED | FF_SEARCH, 1, 128},
    {"email", FT_EMAIL, FF_REQUIRED | FF_SEARCH},
    {"phone", FT_TEXT, FF_NULLABLE, 0, 32, NULL, PHONE_RE},
    {"password", FT_PASSWORD, FF_REQUIRED},
    {"role", FT_ENUM, FF_CREATE | FF_FILTER, 0, 0, admin_roles},
    {"status", FT_ENUM, FF_FILTER, 0, 0, crud_statuses},
    {"subgroups", FT_IDLIST, FF_VIRTUAL},
    {"created_at", FT_INT, FF_READONLY},
};

static bool pool_admin_validate(struct crud_ctx *c)
{
    if (!global_login_free(c)) return false;
    if (c->creating && !json_object_get(c->cols, "role"))
        json_object_set_new(c->cols, "role", json_string("subgroup_admin"));
    json_t *subs = json_object_get(c->in, "subgroups");
    size_t i;
    json_t *v;
    json_array_foreach(subs, i, v)
    {
        int64_t one;
        if (store_query_int(store_main(), &one,
                            "SELECT 1 FROM subgroups WHERE id = ? AND pool_id = ?",
                            SA_INT(json_integer_value(v)), SA_INT(c->pool_id), SA_END) != CW_OK)
            return crud_fail(c, 400, "invalid_value", "subgroups",
                             "subgroups[%zu]: no such subgroup in this pool", i);
    }
    return true;
}

static bool pool_admin_after_write(struct crud_ctx *c)
{
    json_t *subs = json_object_get(c->in, "subgroups");
    if (!subs) return true;
    store *st = store_main();
    int rc = store_exec(st, "DELETE FROM user_subgroups WHERE user_id = ?", SA_INT(c->id), SA_END);
    size_t i;
    json_t *v;
    json_array_foreach(subs, i, v)
    {
        if (rc < 0) break;
        int64_t one;
        if (store_query_int(st, &one,
                            "SELECT 1 FROM user_subgroups WHERE user_id = ? AND subgroup_id = ?",
                            SA_INT(c->id), SA_INT(json_integer_value(v)), SA_END) == CW_OK)
            continue;
        rc = store_exec(st, "INSERT INTO user_subgroups(user_id, subgroup_id) VALUES(?,?)",
                        SA_INT(c->id), SA_INT(json_integer_value(v)), SA_END);
    }
    return rc < 0 ? crud_store_fail(c, rc) : true;
}

static void pool_admin_decorate(struct crud_ctx *c, json_t *o)
{
    int64_t id = json_integer_value(json_object_get(o, "id"));
    json_object_set_new(o, "subgroups",
                        crud_id_list("SELECT subgroup_id FROM user_subgroups WHERE user_id = ? "
                                     "ORDER BY subgroup_id",
                                     id));
}

static const struct crud_entity pool_admins = {
    .path = "admins",
    .type = "pool_admin",
    .label = "pool administrator",
    .table = "users",
    .scope = SCOPE_POOL,
    .where = "domain_id IS NULL AND role IN ('pool_supervisor', "
             "'subgroup_admin')",
    .fields = pool_admin_fields,
    .nfields = CW_ARRAY_LEN(pool_admin_fields),
    .name_field = "login",
    .order = "login",
    .read_role = ROLE_POOL_SUPERVISOR,
    .write_role = ROLE_POOL_SUPERVISOR,
    .created_at = true,
    .updated_at = true,
    .validate = pool_admin_validate,
    .after_write = pool_admin_after_write,
    .before_delete = crud_not_self,
    .decorate = pool_admin_decorate};

static const struct crud_field sysadmin_fields[] = {
    {"login", FT_TEXT, FF_REQUIRED | FF_CREATE | FF_SEARCH, 1, 64, NULL, LOGIN_RE},
    {"display_name", FT_TEXT, FF_REQUIRED | FF_SEARCH, 1, 128},
    {"email", FT_EMAIL, FF_NULLABLE},
    {"phone", FT_TEXT, FF_NULLABLE, 0, 32, NULL, PHONE_RE},
    {"password", FT_PASSWORD, FF_REQUIRED},
    {"status", FT_ENUM, FF_FILTER, 0, 0, crud_statuses},
    {"created_at", FT_INT, FF_READONLY},
};

static bool sysadmin_validate(struct crud_ctx *c)
{
    if (!global_login_free(c)) return false;
    if (c->creating) json_object_set_new(c->cols, "role", json_string("sysadmin"));
    return true;
}

static const struct crud_entity sysadmins = {
    .path = "sysadmins",
    .type = "sysadmin",
    .label = "system administrator",
    .table = "users",
    .scope = SCOPE_GLOBAL,
    .where = "domain_id IS NULL AND pool_id IS NULL AND role = 'sysadmin'",
    .fields = sysadmin_fields,
    .nfields = CW_ARRAY_LEN(sysadmin_fields),
    .name_field = "login",
    .order = "login",
    .read_role = ROLE_SYSADMIN,
    .write_role = ROLE_SYSADMIN,
    .created_at = true,
    .updated_at = true,
    .validate = sysadmin_validate,
    .before_delete = crud_not_self};

/* ---------------------------------------------------------- pickup groups */

static const struct crud_field pickup_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_SEARCH, 1, 64},
    {"members", FT_IDLIST, FF_VIRTUAL, 0, 0, NULL, NULL, 0, NULL,
     "user ids; a user is in at most "
     "one pickup group"},
};

static bool pickup_validate(struct crud_ctx *c)
{
    json_t *m = json_object_get(c->in, "members");
    return !m || users_of_domain(c, m, "members");
}

static bool pickup_after_write(struct crud_ctx *c)
{
    json_t *m = json_object_get(c->in, "members");
    if (!m) return true;
    store *st = store_main();
    int rc = store_exec(st, "DELETE FROM pickup_members WHERE group_id = ?", SA_INT(c->id), SA_END);
    size_t i;
    json_t *v;
    json_array_foreach(m, i, v)
    {
        if (rc < 0) break;
        /* joining moves the user out of any other pickup group */
        rc = store_exec(st, "DELETE FROM pickup_members WHERE user_id = ?",
                        SA_INT(json_integer_value(v)), SA_END);
        if (rc >= 0)
            rc = store_exec(st, "INSERT INTO pickup_members(group_id, user_id) VALUES(?,?)",
                            SA_INT(c->id), SA_INT(json_integer_value(v)), SA_END);
    }
    return rc < 0 ? crud_store_fail(c, rc) : true;
}

static void pickup_decorate(struct crud_ctx *c, json_t *o)
{
    int64_t id = json_integer_value(json_object_get(o, "id"));
    json_object_set_new(
        o, "members",
        crud_id_list("SELECT user_id FROM pickup_members WHERE group_id = ? ORDER BY user_id", id));
}

static const struct crud_entity pickup_groups = {.path = "pickup-groups",
                                                 .type = "pickup_group",
                                                 .label = "pickup group",
                                                 .table = "pickup_groups",
                                                 .scope = SCOPE_DOMAIN,
                                                 .fields = pickup_fields,
                                                 .nfields = CW_ARRAY_LEN(pickup_fields),
                                                 .name_field = "name",
                                                 .order = "name",
                                                 .read_role = ROLE_SUPERVISOR,
                                                 .write_role = ROLE_DOMAIN_ADMIN,
                                                 .validate = pickup_validate,
                                                 .after_write = pickup_after_write,
                                                 .decorate = pickup_decorate};

/* -------------------------------------------------- call-processing groups */

static const struct crud_field call_group_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_SEARCH, 1, 64},
    {"extension", FT_DIGITS, FF_FILTER | FF_SEARCH, 1, 5, NULL, NULL, ROLE_DOMAIN_ADMIN},
    {"strategy", FT_ENUM, FF_FILTER, 0, 0, strategies},
    {"email", FT_EMAIL, FF_NULLABLE},
    {"greeting_text", FT_TEXT, FF_NULLABLE, 0, 500},
    {"info_url", FT_TEXT, FF_NULLABLE, 0, 500, NULL, "https?://[^[:space:]]+"},
    {"voicemail_enabled", FT_BOOL},
    {"ring_timeout", FT_INT, 0, 5, 300},
    {"wrapup_time", FT_INT, 0, 0, 600},
    {"max_wait", FT_INT, 0, 0, 86400},
    {"max_length", FT_INT, 0, 0, 10000},
    {"max_misses", FT_INT, 0, 0, 100},
    {"greeting_sound_id", FT_ID, FF_NULLABLE, 0, 0, NULL, NULL, 0, "sound_files",
     "sound file of the domain the caller hears once on entering the queue, before any "
     "operator is rung; null = none"},
    {"waiting_audio", FT_ENUM, 0, 0, 0, waiting_audios, NULL, 0, NULL,
     "what the caller hears while waiting: moh (the stream named by moh) or ringback"},
    {"moh", FT_TEXT, 0, 1, 64, NULL, SCRIPT_RE, 0, NULL,
     "music-on-hold stream played while waiting (waiting_audio moh)"},
    {"announce_interval", FT_INT, 0, 0, 3600},
    {"announce_position", FT_BOOL},
    {"avg_talk_time", FT_INT, 0, 0, 3600, NULL, NULL, 0, NULL,
     "seconds an operator talks on average, for the caller's estimated-wait announcement "
     "(seed 001 L2762); 0 = no estimated wait is announced"},
    {"overflow_target", FT_TEXT, FF_NULLABLE, 1, 32, NULL, DIAL_RE},
    {"join_empty", FT_BOOL},
    {"leave_empty", FT_BOOL},
    {"callback_key", FT_TEXT, FF_NULLABLE, 1, 1, NULL, "[0-9*#]"},
    {"tier_escalation", FT_INT, 0, 0, 3600, NULL, NULL, 0, NULL,
     "seconds per priority step: a member whose priority is k above the group's best is "
     "offered a call only after the caller waited k times this; 0 = lower priorities take "
     "calls as soon as every better one is busy"},
    {"progressive_step", FT_INT, 0, 1, 300, NULL, NULL, 0, NULL,
     "ring_progressive: seconds before the next member is rung as well"},
    {"recording_enabled", FT_BOOL, 0, 0, 0, NULL, NULL, 0, NULL,
     "record every call the group's members take through it"},
    {"created_at", FT_INT, FF_READONLY},
    {"members", FT_JSON, FF_VIRTUAL, 0, 0, NULL, NULL, 0, NULL,
     "[{\"user_id\": id, \"priority\": 1..100, \"penalty\": 0..100}]"},
};

static bool call_group_validate(struct crud_ctx *c)
{
    if (!domain_extension_rule(c, true)) return false;
    json_t *m = json_object_get(c->in, "members");
    if (!m) return true;
    if (!json_is_array(m))
        return crud_fail(c, 400, "invalid_type", "members", "members must be an array");
    json_t *ids = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(m, i, v)
    {
        json_t *uid = json_object_get(v, "user_id"), *pr = json_object_get(v, "priority"),
               *pen = json_object_get(v, "penalty");
        const char *k;
        json_t *x;
        bool bad = !json_is_object(v) || !json_is_integer(uid);
        json_object_foreach(v, k, x) if (strcmp(k, "user_id") && strcmp(k, "priority") &&
                                         strcmp(k, "penalty")) bad = true;
        if (!bad && pr &&
            (!json_is_integer(pr) || json_integer_value(pr) < 1 || json_integer_value(pr) > 100))
            bad = true;
        if (!bad && pen &&
            (!json_is_integer(pen) || json_integer_value(pen) < 0 || json_integer_value(pen) > 100))
            bad = true;
        if (bad) {
            json_decref(ids);
            return crud_fail(c, 400, "invalid_value", "members",
                             "members[%zu] must be {user_id, priority 1..100, penalty 0..100}", i);
        }
        json_array_append(ids, uid);
    }
    bool ok = users_of_domain(c, ids, "members");
    json_decref(ids);
    return ok;
}

static bool call_group_after_write(struct crud_ctx *c)
{
    json_t *m = json_object_get(c->in, "members");
    if (!m) return true;
    store *st = store_main();
    int rc =
        store_exec(st, "DELETE FROM call_group_members WHERE group_id = ?", SA_INT(c->id), SA_END);
    size_t i;
    json_t *v;
    json_array_foreach(m, i, v)
    {
        if (rc < 0) break;
        json_t *pr = json_object_get(v, "priority"), *pen = json_object_get(v, "penalty");
        rc = store_exec(st,
                        "INSERT INTO call_group_members(group_id, user_id, priority, penalty) "
                        "VALUES(?,?,?,?)",
                        SA_INT(c->id), SA_INT(json_integer_value(json_object_get(v, "user_id"))),
                        SA_INT(pr ? json_integer_value(pr) : 1),
                        SA_INT(pen ? json_integer_value(pen) : 0), SA_END);
    }
    if (rc == CW_EEXIST)
        return crud_fail(c, 400, "invalid_value", "members", "members lists a user twice");
    return rc < 0 ? crud_store_fail(c, rc) : true;
}

static void call_group_decorate(struct crud_ctx *c, json_t *o)
{
    int64_t id = json_integer_value(json_object_get(o, "id"));
    json_t *m = json_array();
    int64_t ops = 0;
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT m.user_id, m.priority, m.penalty, u.is_operator FROM "
                    "call_group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? "
                    "ORDER BY m.priority, m.user_id",
                    SA_INT(id), SA_END) >= 0) {
        while (store_next(r)) {
            json_array_append_new(
                m, json_pack("{s:I,s:I,s:I}", "user_id", (json_int_t)store_int(r, 0), "priority",
                             (json_int_t)store_int(r, 1), "penalty", (json_int_t)store_int(r, 2)));
            ops += store_int(r, 3) != 0;
        }
        store_res_free(r);
    }
    json_object_set_new(o, "operator_count", json_integer(ops));
    json_object_set_new(o, "members", m);
}

static bool call_group_before_delete(struct crud_ctx *c)
{
    return routing_not_referenced(c, "call_group");
}

static const struct crud_entity call_groups = {.path = "call-groups",
                                               .type = "call_group",
                                               .label = "call-processing group",
                                               .table = "call_groups",
                                               .scope = SCOPE_DOMAIN,
                                               .fields = call_group_fields,
                                               .nfields = CW_ARRAY_LEN(call_group_fields),
                                               .name_field = "name",
                                               .order = "name",
                                               .read_role = ROLE_SUPERVISOR,
                                               .write_role = ROLE_SUPERVISOR,
                                               .create_role = ROLE_DOMAIN_ADMIN,
                                               .delete_role = ROLE_DOMAIN_ADMIN,
                                               .created_at = true,
                                               .validate = call_group_validate,
                                               .after_write = call_group_after_write,
                                               .before_delete = call_group_before_delete,
                                               .decorate = call_group_decorate};

/* -------------------------------------------------------- external numbers */

static const char *const filter_modes[] = {"none", "blacklist", "whitelist", NULL};

static const struct crud_field number_fields[] = {
    {"number", FT_DIGITS, FF_REQUIRED | FF_CREATE | FF_UNIQUE | FF_GLOBAL | FF_SEARCH, 3, 15},
    {"description", FT_TEXT, FF_SEARCH, 0, 200},
    {"kind", FT_ENUM, FF_FILTER, 0, 0, number_kinds},
    {"target", FT_TEXT, FF_NULLABLE, 1, 32, NULL, DIAL_RE, 0, NULL,
     "fallback: the extension of the domain that takes calls no routing rule matches; null = "
     "they hear busy"},
    {"filter_mode", FT_ENUM, FF_FILTER, 0, 0, filter_modes, NULL, 0, NULL,
     "none, blacklist (listed callers hear busy) or whitelist (only listed callers get through; "
     "an empty list lets nobody in)"},
    {"filter_list", FT_JSON, 0, 0, 0, NULL, NULL, 0, NULL,
     "[{value: digits (optionally +), exact: bool (false = prefix), comment}], up to 1000"},
    {"created_at", FT_INT, FF_READONLY},
};

static bool number_validate(struct crud_ctx *c)
{
    json_t *t = json_object_get(c->cols, "target");
    if (t && json_is_string(t) && domain_extension_free(c->domain_id, json_string_value(t), "", 0))
        return crud_fail(c, 400, "invalid_value", "target",
                         "target: no user, group or IVR flow has extension %s",
                         json_string_value(t));
    json_t *list = json_object_get(c->in, "filter_list");
    if (!list) return true;
    if (!json_is_array(list) || json_array_size(list) > 1000)
        return crud_fail(c, 400, "invalid_value", "filter_list",
                         "filter_list must be an array of at most 1000 entries");
    static const char *const allowed[] = {"value", "exact", "comment"};
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *v = json_string_value(json_object_get(e, "value"));
        json_t *exact = json_object_get(e, "exact"), *comment = json_object_get(e, "comment");
        bool ok = json_is_object(e) && v && (!exact || json_is_boolean(exact)) &&
                  (!comment || (json_is_string(comment) && json_string_length(comment) <= 200));
        const char *k;
        json_t *x;
        json_object_foreach(e, k, x)
        {
            bool known = false;
            for (size_t a = 0; a < CW_ARRAY_LEN(allowed); a++)
                if (!strcmp(allowed[a], k)) known = true;
            if (!known) ok = false;
        }
        size_t n = v ? strlen(v) : 0, lead = v && v[0] == '+';
        if (!ok || n - lead < 1 || n > 21 || strspn(v + lead, "0123456789") != n - lead)
            return crud_fail(c, 400, "invalid_value", "filter_list",
                             "filter_list[%zu] must be {value: 1..20 digits, optionally with +, "
                             "exact: true | false, comment}",
                             i);
        for (size_t k2 = 0; k2 < i; k2++) {
            json_t *o = json_array_get(list, k2);
            if (!strcmp(json_string_value(json_object_get(o, "value")), v) &&
                json_is_true(json_object_get(o, "exact")) == json_is_true(exact))
                return crud_fail(c, 400, "invalid_value", "filter_list",
                                 "filter_list[%zu] repeats filter_list[%zu]", i, k2);
        }
    }
    return true;
}

/* The number's rules go with it (foreign key); so does what they referred to. */
static bool number_before_delete(struct crud_ctx *c)
{
    int rc = store_exec(store_main(),
                        "DELETE FROM routing_refs WHERE owner_type = 'routing_rule' AND owner_id "
                        "IN (SELECT id FROM routing_rules WHERE number_id = ?)",
                        SA_INT(c->id), SA_END);
    if (rc >= 0)
        rc = store_exec(store_main(), "DELETE FROM routing_rules WHERE number_id = ?",
                        SA_INT(c->id), SA_END);
    return rc < 0 ? crud_store_fail(c, rc) : true;
}

static const struct crud_entity numbers = {.path = "numbers",
                                           .type = "external_number",
                                           .label = "external number",
                                           .table = "external_numbers",
                                           .scope = SCOPE_DOMAIN,
                                           .fields = number_fields,
                                           .nfields = CW_ARRAY_LEN(number_fields),
                                           .name_field = "number",
                                           .order = "number",
                                           .read_role = ROLE_SUPERVISOR,
                                           .write_role = ROLE_DOMAIN_ADMIN,
                                           .create_role = ROLE_SYSADMIN,
                                           .delete_role = ROLE_SYSADMIN,
                                           .created_at = true,
                                           .validate = number_validate,
                                           .before_delete = number_before_delete};

/* ---------------------------------------------------------- address books */

static const struct crud_field contact_group_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_SEARCH, 1, 64},
};

static const struct crud_field contact_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_SEARCH, 1, 128},
    {"group_id", FT_ID, FF_NULLABLE | FF_FILTER},
    {"speed_dial", FT_DIGITS, FF_REQUIRED | FF_UNIQUE | FF_FILTER, 1, 5, NULL, NULL, 0, NULL,
     "dialled as *<speed_dial>"},
    {"numbers", FT_JSON, FF_REQUIRED | FF_SEARCH, 0, 0, NULL, NULL, 0, NULL,
     "[{\"type\": home|work|mobile|ip, \"number\": \"...\"}], 1..10"},
    {"created_at", FT_INT, FF_READONLY},
};

static bool contact_validate(struct crud_ctx *c)
{
    json_t *nums = json_object_get(c->in, "numbers");
    if (nums) {
        size_t n = json_is_array(nums) ? json_array_size(nums) : 0;
        if (n < 1 || n > 10)
            return crud_fail(c, 400, "invalid_value", "numbers",
                             "numbers must be an array of 1..10 entries");
        size_t i;
        json_t *v;
        json_array_foreach(nums, i, v)
        {
            json_t *t = json_object_get(v, "type"), *num = json_object_get(v, "number");
            bool ok = json_is_object(v) && json_object_size(v) == 2 && json_is_string(t) &&
                      json_is_string(num);
            bool typed = false;
            for (const char *const *p = phone_types; ok && *p; p++)
                if (!strcmp(*p, json_string_value(t))) typed = true;
            const char *s = ok ? json_string_value(num) : "";
            size_t len = strlen(s);
            bool well = len >= 1 && len <= 64 &&
                        strspn(s, typed && !strcmp(json_string_value(t), "ip")
                                      ? "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789@.:_+*#-"
                                      : "0123456789+*#") == len;
            if (!ok || !typed || !well)
                return crud_fail(c, 400, "invalid_value", "numbers",
                                 "numbers[%zu] must be {type: home|work|mobile|ip, number}; "
                                 "phone numbers hold digits, + * #",
                                 i);
        }
    }
    json_t *g = json_object_get(c->cols, "group_id");
    if (g && !json_is_null(g)) {
        int64_t one;
        int rc = c->e->scope == SCOPE_OWNER
                     ? store_query_int(store_main(), &one,
                                       "SELECT 1 FROM contact_groups WHERE id = ? AND owner_id = ?",
                                       SA_INT(json_integer_value(g)), SA_INT(c->scope_id), SA_END)
                     : store_query_int(store_main(), &one,
                                       "SELECT 1 FROM contact_groups WHERE id = ? AND domain_id "
                                       "= ? AND owner_id IS NULL",
                                       SA_INT(json_integer_value(g)), SA_INT(c->domain_id), SA_END);
        if (rc != CW_OK)
            return crud_fail(c, 400, "invalid_value", "group_id", "group_id: no such group");
    }
    return true;
}

static const struct crud_entity shared_contact_groups = {.path = "contact-groups",
                                                         .type = "contact_group",
                                                         .label = "shared contact group",
                                                         .table = "contact_groups",
                                                         .scope = SCOPE_DOMAIN,
                                                         .where = "owner_id IS NULL",
                                                         .fields = contact_group_fields,
                                                         .nfields =
                                                             CW_ARRAY_LEN(contact_group_fields),
                                                         .name_field = "name",
                                                         .order = "name",
                                                         .read_role = ROLE_SUBSCRIBER,
                                                         .write_role = ROLE_DOMAIN_ADMIN};

static const struct crud_entity personal_contact_groups = {.path = "contact-groups",
                                                           .type = "contact_group",
                                                           .label = "personal contact group",
                                                           .table = "contact_groups",
                                                           .scope = SCOPE_OWNER,
                                                           .fields = contact_group_fields,
                                                           .nfields =
                                                               CW_ARRAY_LEN(contact_group_fields),
                                                           .name_field = "name",
                                                           .order = "name",
                                                           .read_role = ROLE_SUBSCRIBER,
                                                           .write_role = ROLE_SUBSCRIBER};

static const struct crud_entity shared_contacts = {.path = "contacts",
                                                   .type = "contact",
                                                   .label = "shared contact",
                                                   .table = "contacts",
                                                   .scope = SCOPE_DOMAIN,
                                                   .where = "owner_id IS NULL",
                                                   .fields = contact_fields,
                                                   .nfields = CW_ARRAY_LEN(contact_fields),
                                                   .name_field = "name",
                                                   .order = "name",
                                                   .read_role = ROLE_SUBSCRIBER,
                                                   .write_role = ROLE_DOMAIN_ADMIN,
                                                   .created_at = true,
                                                   .validate = contact_validate};

static const struct crud_entity personal_contacts = {.path = "contacts",
                                                     .type = "contact",
                                                     .label = "personal contact",
                                                     .table = "contacts",
                                                     .scope = SCOPE_OWNER,
                                                     .fields = contact_fields,
                                                     .nfields = CW_ARRAY_LEN(contact_fields),
                                                     .name_field = "name",
                                                     .order = "name",
                                                     .read_role = ROLE_SUBSCRIBER,
                                                     .write_role = ROLE_SUBSCRIBER,
                                                     .created_at = true,
                                                     .validate = contact_validate};

/* -------------------------------------------------------------- IVR flows */

static const struct crud_field ivr_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_SEARCH, 1, 64},
    {"extension", FT_DIGITS, FF_NULLABLE | FF_FILTER, 1, 5},
    {"script", FT_TEXT, FF_NULLABLE, 1, 64, NULL, "[a-z0-9_-]{1,64}", 0, NULL,
     "a flow script of flows_dir (name without .lua) run instead of the menu tree"},
    {"flow", FT_JSON, 0, 0, 0, NULL, NULL, 0, NULL,
     "the menu tree (ivr-flows/README.md); new flows get a main menu whose default is "
     "dial_extension and timeout is repeat"},
    {"version", FT_INT, FF_READONLY},
    {"updated_at", FT_INT, FF_READONLY},
};

/* What a new scenario looks like (seed 001 §9.8, the starter diagram). */
static json_t *starter_flow(void)
{
    return json_pack("{s:s,s:{s:{s:[],s:{},s:{s:s},s:{s:s}}}}", "start", "main", "menus", "main",
                     "prompt", "keys", "default", "action", "dial_extension", "timeout", "action",
                     "repeat");
}

static bool ivr_validate(struct crud_ctx *c)
{
    json_t *script = crud_value(c, "script");
    bool scripted = script && json_is_string(script);
    if (json_object_get(c->cols, "script") && scripted) {
        char *path = cw_sprintf("%s/%s.lua", config_str("flows_dir"), json_string_value(script));
        struct stat sb;
        bool ok = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
        free(path);
        if (!ok)
            return crud_fail(c, 400, "invalid_value", "script", "script: no flow file %s.lua",
                             json_string_value(script));
    }
    json_t *flow = json_object_get(c->cols, "flow");
    if (!flow && c->creating && !scripted) json_object_set_new(c->cols, "flow", starter_flow());
    /* with a script, flow holds that script's settings (any object); without, a menu tree */
    if (flow && scripted && !json_is_object(flow))
        return crud_fail(c, 400, "invalid_value", "flow",
                         "flow: a scripted flow's settings must be a JSON object");
    if (flow && !scripted && !flow_check(c, flow)) return false;
    if (!flow && !c->creating && !scripted && json_object_get(c->in, "script")) {
        json_t *old = json_object_get(c->old, "flow");
        if (!json_is_object(old) || json_object_size(old) == 0)
            return crud_fail(c, 400, "invalid_value", "script",
                             "without a script the flow needs a menu tree: give flow too");
        if (!flow_check(c, old)) return false;
    }
    /* every real change makes a new version */
    const char *k;
    json_t *v;
    bool changed = c->creating;
    json_object_foreach(c->cols, k, v) if (!json_equal(v, json_object_get(c->old, k))) changed =
        true;
    if (changed && !c->creating)
        json_object_set_new(
            c->cols, "version",
            json_integer(json_integer_value(json_object_get(c->old, "version")) + 1));
    return domain_extension_rule(c, false);
}

/* The list view of seed 001 §9.8.1: how many menus, which numbers reach the flow. */
static void ivr_decorate(struct crud_ctx *c, json_t *o)
{
    int64_t id = json_integer_value(json_object_get(o, "id"));
    json_t *menus = json_object_get(json_object_get(o, "flow"), "menus");
    json_object_set_new(o, "menu_count", json_integer((json_int_t)json_object_size(menus)));
    json_t *nums = json_array();
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT DISTINCT n.number FROM routing_refs f JOIN routing_rules u ON u.id = "
                    "f.owner_id JOIN external_numbers n ON n.id = u.number_id WHERE f.owner_type = "
                    "'routing_rule' AND f.ref_type = 'ivr_flow' AND f.ref_id = ? AND u.enabled = 1 "
                    "UNION SELECT n.number FROM external_numbers n JOIN ivr_flows f ON f.id = ? "
                    "WHERE n.domain_id = f.domain_id AND f.extension IS NOT NULL AND n.target = "
                    "f.extension ORDER BY 1",
                    SA_INT(id), SA_INT(id), SA_END) >= 0) {
        while (store_next(r))
            json_array_append_new(nums, json_string(store_str(r, 0)));
        store_res_free(r);
    }
    json_object_set_new(o, "numbers", nums);
}

static bool ivr_before_delete(struct crud_ctx *c)
{
    return routing_not_referenced(c, "ivr_flow");
}

static const struct crud_entity ivr_flows = {.path = "ivr-flows",
                                             .type = "ivr_flow",
                                             .label = "IVR flow",
                                             .table = "ivr_flows",
                                             .scope = SCOPE_DOMAIN,
                                             .fields = ivr_fields,
                                             .nfields = CW_ARRAY_LEN(ivr_fields),
                                             .name_field = "name",
                                             .order = "name",
                                             .read_role = ROLE_SUPERVISOR,
                                             .write_role = ROLE_DOMAIN_ADMIN,
                                             .updated_at = true,
                                             .validate = ivr_validate,
                                             .before_delete = ivr_before_delete,
                                             .decorate = ivr_decorate};

void crud_entities_init(void)
{
    crud_register(&pools);
    crud_register(&subgroups);
    http_route("POST", "/api/v1/pools/:pool/subgroups/:id/domains", subgroup_move_domains,
               ROLE_POOL_SUPERVISOR, 0,
               "Move domains of the pool into this subgroup ({\"domain_ids\": [...]})");
    crud_register(&pool_admins);
    crud_register(&sysadmins);
    crud_register(&domains);
    crud_register(&pickup_groups);
    crud_register(&call_groups);
    crud_register(&numbers);
    crud_register(&shared_contact_groups);
    crud_register(&shared_contacts);
    crud_register(&personal_contact_groups);
    crud_register(&personal_contacts);
    crud_register(&ivr_flows);
}
