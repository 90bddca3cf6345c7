/*
 * audit.c - the audit log: one row per change made through the API, and
 * the read endpoint (newest first, filters, no delete).
 *
 * Rows are written inside the caller's transaction when there is one, so a
 * change and its audit row land together. Secrets never reach a row: any
 * member named like a password, digest or token is replaced by "***".
 */
#include "base/cw.h"
#include "http/http.h"
#include "log/log.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static bool secret_key(const char *k)
{
    static const char *const words[] = {"password", "passwd", "secret", "token", "ha1", "hash", "_pin"};
    for (size_t i = 0; i < CW_ARRAY_LEN(words); i++)
        if (strstr(k, words[i])) return true;
    return false;
}

/* What may stand in a secret's place: words saying that it changed. */
static bool marker(json_t *v)
{
    static const char *const ok[] = {"set", "changed", "reset by e-mailed link"};
    for (size_t i = 0; json_is_string(v) && i < CW_ARRAY_LEN(ok); i++)
        if (!strcmp(json_string_value(v), ok[i])) return true;
    return false;
}

static void scrub(json_t *j)
{
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(j)) {
        json_object_foreach(j, k, v)
        {
            if (secret_key(k) && !marker(v))
                json_object_set_new(j, k, json_string("***"));
            else
                scrub(v);
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) scrub(v);
    }
}

static void audit_write(const struct auth_ctx *actor, const char *ip, int64_t pool_id,
                        int64_t domain_id, const char *object_type, const char *object_name,
                        const char *action, json_t *details)
{
    store *st = store_main();
    if (domain_id > 0)
        store_query_int(st, &pool_id, "SELECT pool_id FROM domains WHERE id = ?", SA_INT(domain_id),
                        SA_END);
    if (!details) details = json_object();
    scrub(details);
    char *d = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(details);
    int rc = store_exec(st,
                        "INSERT INTO audit_log(ts, pool_id, domain_id, actor_id, actor_login, "
                        "actor_name, ip, object_type, object_name, action, details) "
                        "VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                        SA_INT(cw_wall_time()), pool_id > 0 ? SA_INT(pool_id) : SA_NULL,
                        domain_id > 0 ? SA_INT(domain_id) : SA_NULL,
                        actor && actor->user_id ? SA_INT(actor->user_id) : SA_NULL,
                        SA_STR(actor ? actor->login : "system"),
                        SA_STR(actor ? actor->name : "system"), SA_STR(ip ? ip : ""),
                        SA_STR(object_type), SA_STR(object_name ? object_name : ""), SA_STR(action),
                        SA_STR(d ? d : "{}"), SA_END);
    if (rc < 0) log_error("http", "audit row not written: %s", store_errmsg(st));
    free(d);
}

void http_audit_as(const struct auth_ctx *actor, const char *ip, int64_t domain_id,
                   const char *object_type, const char *object_name, const char *action,
                   json_t *details)
{
    audit_write(actor, ip, actor ? actor->pool_id : 0, domain_id, object_type, object_name, action,
                details);
}

void http_audit_pool(http_req *req, int64_t pool_id, const char *object_type,
                     const char *object_name, const char *action, json_t *details)
{
    audit_write(req->auth, req->ip, pool_id, 0, object_type, object_name, action, details);
}

void http_audit(http_req *req, int64_t domain_id, const char *object_type, const char *object_name,
                const char *action, json_t *details)
{
    http_audit_as(req->auth, req->ip, domain_id, object_type, object_name, action, details);
}

/* "today", "week", "30d", "45d" to a start time; 0 when unknown. */
static int64_t period_start(const char *p, int64_t now)
{
    if (!strcmp(p, "today")) {
        time_t t = (time_t)now;
        struct tm tm;
        gmtime_r(&t, &tm);
        return now - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
    }
    if (!strcmp(p, "week") || !strcmp(p, "7d")) return now - 7 * 86400;
    if (!strcmp(p, "30d")) return now - 30 * 86400;
    if (!strcmp(p, "45d")) return now - 45 * 86400;
    return 0;
}

static json_t *row_json(store_res *r)
{
    json_error_t e;
    json_t *details = json_loads(store_str(r, 10) ? store_str(r, 10) : "{}", 0, &e);
    time_t ts = (time_t)store_int(r, 1);
    struct tm tm;
    char iso[32];
    gmtime_r(&ts, &tm);
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *o = json_pack(
        "{s:I,s:I,s:s,s:s,s:{s:I,s:s,s:s},s:s,s:s,s:s,s:o}", "id", (json_int_t)store_int(r, 0),
        "ts", (json_int_t)ts, "time", iso, "ip", store_str(r, 5) ? store_str(r, 5) : "", "actor",
        "id", (json_int_t)store_int(r, 2), "login", store_str(r, 3), "name", store_str(r, 4),
        "object_type", store_str(r, 7), "object_name", store_str(r, 8), "action", store_str(r, 9),
        "details", details ? details : json_object());
    json_object_set_new(o, "domain_id",
                        store_isnull(r, 6) ? json_null() : json_integer(store_int(r, 6)));
    return o;
}

static void audit_list(http_req *req)
{
    static const char *const allowed[] = {"limit",       "offset", "from", "to",
                                          "period",      "action", "user", "object",
                                          "object_type", "domain", NULL};
    int64_t limit, offset, from, to, domain;
    if (!http_query_only(req, allowed) || !http_page(req, &limit, &offset) ||
        !http_query_int(req, "from", 0, &from) || !http_query_int(req, "to", 0, &to) ||
        !http_query_int(req, "domain", 0, &domain))
        return;
    const char *period = http_query(req, "period");
    if (period) {
        int64_t start = period_start(period, cw_wall_time());
        if (!start) {
            http_reply_error(req, 400, "invalid_parameter", "period",
                             "period must be today, week, 30d or 45d");
            return;
        }
        if (start > from) from = start;
    }
    const char *action = http_query(req, "action");
    if (action && strcmp(action, "add") && strcmp(action, "edit") && strcmp(action, "delete")) {
        http_reply_error(req, 400, "invalid_parameter", "action",
                         "action must be add, edit or delete");
        return;
    }
    cw_buf where;
    cw_buf_init(&where);
    store_arg args[16];
    int n = 0;
    const struct auth_ctx *a = req->auth;
    switch (a->role) {
    case ROLE_SYSADMIN:
        cw_buf_puts(&where, "1 = 1");
        break;
    case ROLE_POOL_SUPERVISOR:
        cw_buf_puts(&where, "pool_id = ?");
        args[n++] = SA_INT(a->pool_id);
        break;
    case ROLE_SUBGROUP_ADMIN: {
        char reach[256];
        http_domain_reach_sql(a, "domain_id", reach, sizeof reach, args, &n);
        cw_buf_printf(&where, "(%s OR actor_id = ?)", reach);
        args[n++] = SA_INT(a->user_id);
        break;
    }
    default:
        cw_buf_puts(&where, "domain_id = ?");
        args[n++] = SA_INT(a->domain_id);
        break;
    }
    if (from) {
        cw_buf_puts(&where, " AND ts >= ?");
        args[n++] = SA_INT(from);
    }
    if (to) {
        cw_buf_puts(&where, " AND ts <= ?");
        args[n++] = SA_INT(to);
    }
    if (domain) {
        cw_buf_puts(&where, " AND domain_id = ?");
        args[n++] = SA_INT(domain);
    }
    if (action) {
        cw_buf_puts(&where, " AND action = ?");
        args[n++] = SA_STR(action);
    }
    const char *user = http_query(req, "user");
    if (user) {
        cw_buf_puts(&where, " AND actor_login = ?");
        args[n++] = SA_STR(user);
    }
    const char *otype = http_query(req, "object_type");
    if (otype) {
        cw_buf_puts(&where, " AND object_type = ?");
        args[n++] = SA_STR(otype);
    }
    char *like = NULL;
    const char *object = http_query(req, "object");
    if (object) {
        like = cw_sprintf("%%%s%%", object);
        cw_buf_puts(&where, " AND LOWER(object_name) LIKE LOWER(?)");
        args[n++] = SA_STR(like);
    }
    store *st = store_main();
    char *sql = cw_sprintf("SELECT COUNT(*) FROM audit_log WHERE %s", where.data);
    store_res *r = NULL;
    int64_t total = 0;
    if (store_queryv(st, &r, sql, args, n) >= 0 && store_next(r)) total = store_int(r, 0);
    store_res_free(r);
    free(sql);
    args[n++] = SA_INT(limit);
    args[n++] = SA_INT(offset);
    sql = cw_sprintf("SELECT id, ts, actor_id, actor_login, actor_name, ip, domain_id, "
                     "object_type, object_name, action, details FROM audit_log WHERE %s "
                     "ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?",
                     where.data);
    int rc = store_queryv(st, &r, sql, args, n);
    free(sql);
    free(like);
    cw_buf_free(&where);
    if (rc < 0) {
        http_reply_error(req, 500, "store", NULL, "reading the audit log failed");
        return;
    }
    json_t *items = json_array();
    while (store_next(r))
        json_array_append_new(items, row_json(r));
    store_res_free(r);
    http_reply_json(req, 200,
                    json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total,
                              "limit", (json_int_t)limit, "offset", (json_int_t)offset));
}

void http_audit_api_init(void)
{
    http_route("GET", "/api/v1/audit", audit_list, ROLE_DOMAIN_ADMIN, 0,
               "Audit log of changes, newest first (filters: from, to, period, action, user, "
               "object, object_type, domain)");
}
