/*
 * api.c - the SIP edge's HTTP endpoints (core thread): trunks and outbound
 * lines (CRUD, live status, per-line log), registrations, banned addresses.
 *
 * Trunks belong to a domain. Pool supervisors and system administrators
 * create and delete them and may change every field; a domain admin may
 * list them, see status and log, and change what seed 001 §9.6.1 gives
 * the domain: enabled, name, priority, dial pattern, digit stripping,
 * prefix, outgoing numbers and the group restriction. The password is
 * write-only: responses say only whether one is set. Every change is
 * validated before anything is stored, audited, and applied at once
 * (changed trunks re-register).
 */
#include "base/cw.h"
#include "http/http.h"
#include "log/log.h"
#include "sip/sip.h"
#include "sip/sip_int.h"
#include "store/store.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_CALLER_IDS 16

static const char *const kinds[] = {"sip_trunk", "sip_phone", "gsm_gateway", "private_route", NULL};
static const char *const transports[] = {"udp", "tcp", "tls", NULL};

/* Columns, in the order rows are read. */
static const char COLS[] =
    "id, domain_id, name, kind, enabled, host, port, transport, login, password <> '', realm,"
    " register, register_expires, priority, dial_pattern, strip_digits, prefix, max_in,"
    " max_out, caller_ids, only_group_id, created_at, updated_at";

static json_t *status_json(int64_t id)
{
    struct sip_trunk_status st;
    if (sip_trunk_status(id, &st)) return json_null();
    return json_pack("{ss ss sI sI si si}", "state", sip_trunk_state_name(st.state), "reason",
                     st.reason, "since", (json_int_t)st.since, "next_retry",
                     (json_int_t)st.next_retry, "calls_in", st.calls_in, "calls_out", st.calls_out);
}

static json_t *row_json(store_res *r)
{
    json_t *ids = json_array();
    char list[512];
    cw_strlcpy(list, store_str(r, 19) ? store_str(r, 19) : "", sizeof list);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(ids, json_string(t));
    json_t *j = json_pack(
        "{sI sI ss ss sb ss si ss ss sb ss sb si si ss si ss si si so sI sI}", "id",
        (json_int_t)store_int(r, 0), "domain_id", (json_int_t)store_int(r, 1), "name",
        store_str(r, 2), "kind", store_str(r, 3), "enabled", (int)store_int(r, 4), "host",
        store_str(r, 5), "port", (int)store_int(r, 6), "transport", store_str(r, 7), "login",
        store_str(r, 8), "password_set", (int)store_int(r, 9), "realm", store_str(r, 10),
        "register", (int)store_int(r, 11), "register_expires", (int)store_int(r, 12), "priority",
        (int)store_int(r, 13), "dial_pattern", store_str(r, 14), "strip_digits",
        (int)store_int(r, 15), "prefix", store_str(r, 16), "max_in", (int)store_int(r, 17),
        "max_out", (int)store_int(r, 18), "caller_ids", ids, "created_at",
        (json_int_t)store_int(r, 21), "updated_at", (json_int_t)store_int(r, 22));
    json_object_set_new(j, "only_group_id",
                        store_isnull(r, 20) ? json_null() : json_integer(store_int(r, 20)));
    json_object_set_new(j, "status", status_json(store_int(r, 0)));
    return j;
}

/* The trunk :id of the domain, as JSON; NULL (and 404 sent) when not there. */
static json_t *trunk_get(http_req *req, int64_t dom, int64_t id)
{
    store_res *r;
    char *sql = cw_sprintf("SELECT %s FROM trunks WHERE id = ? AND domain_id = ?", COLS);
    int rc = store_query(store_main(), &r, sql, SA_INT(id), SA_INT(dom), SA_END);
    free(sql);
    if (rc < 0 || !r) {
        http_reply_error(req, 500, "store", NULL, "cannot read trunks");
        return NULL;
    }
    json_t *j = store_next(r) ? row_json(r) : NULL;
    store_res_free(r);
    if (!j) http_reply_error(req, 404, "not_found", NULL, "no such trunk");
    return j;
}

static bool id_param(http_req *req, int idx, int64_t *id)
{
    if (idx >= req->nparams || cw_parse_i64(req->params[idx], id) || *id <= 0) {
        http_reply_error(req, 404, "not_found", NULL, "no such trunk");
        return false;
    }
    return true;
}

static bool one_of(const char *s, const char *const *set)
{
    for (int i = 0; set[i]; i++)
        if (!strcmp(s, set[i])) return true;
    return false;
}

static bool digits_ok(const char *s, const char *extra)
{
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr(extra, *p)) return false;
    return true;
}

static bool chars_ok(const char *s, const char *extra)
{
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(extra, *p)) return false;
    return true;
}

/* The values being written, after validation. */
struct trunk_in {
    bool has[32];
    char name[128], kind[24], host[128], transport[8], login[64], password[128], realm[128];
    char dial_pattern[256], prefix[32], caller_ids[512];
    int64_t enabled, port, reg, reg_expires, priority, strip, max_in, max_out, only_group;
    bool only_group_null;
};

enum f {
    F_NAME,
    F_KIND,
    F_ENABLED,
    F_HOST,
    F_PORT,
    F_TRANSPORT,
    F_LOGIN,
    F_PASSWORD,
    F_REALM,
    F_REG,
    F_REG_EXPIRES,
    F_PRIORITY,
    F_DIAL,
    F_STRIP,
    F_PREFIX,
    F_MAX_IN,
    F_MAX_OUT,
    F_CALLER_IDS,
    F_ONLY_GROUP,
    F_COUNT
};

static const struct {
    const char *name;
    const char *column;
    bool domain_admin; /* a domain admin may change it */
} FIELDS[F_COUNT] = {
    [F_NAME] = {"name", "name", true},
    [F_KIND] = {"kind", "kind", false},
    [F_ENABLED] = {"enabled", "enabled", true},
    [F_HOST] = {"host", "host", false},
    [F_PORT] = {"port", "port", false},
    [F_TRANSPORT] = {"transport", "transport", false},
    [F_LOGIN] = {"login", "login", false},
    [F_PASSWORD] = {"password", "password", false},
    [F_REALM] = {"realm", "realm", false},
    [F_REG] = {"register", "register", false},
    [F_REG_EXPIRES] = {"register_expires", "register_expires", false},
    [F_PRIORITY] = {"priority", "priority", true},
    [F_DIAL] = {"dial_pattern", "dial_pattern", true},
    [F_STRIP] = {"strip_digits", "strip_digits", true},
    [F_PREFIX] = {"prefix", "prefix", true},
    [F_MAX_IN] = {"max_in", "max_in", false},
    [F_MAX_OUT] = {"max_out", "max_out", false},
    [F_CALLER_IDS] = {"caller_ids", "caller_ids", true},
    [F_ONLY_GROUP] = {"only_group_id", "only_group_id", true},
};

static bool bad(http_req *req, const char *field, const char *msg)
{
    http_reply_error(req, 400, "invalid", field, "%s: %s", field, msg);
    return false;
}

static bool get_str(http_req *req, json_t *v, const char *f, char *out, size_t size, size_t min)
{
    if (!json_is_string(v)) return bad(req, f, "must be a string");
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    if (n < min || n >= size) return bad(req, f, "length out of range");
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20) return bad(req, f, "control characters are not allowed");
    cw_strlcpy(out, s, size);
    return true;
}

static bool get_int(http_req *req, json_t *v, const char *f, int64_t lo, int64_t hi, int64_t *out)
{
    if (!json_is_integer(v)) return bad(req, f, "must be an integer");
    int64_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        http_reply_error(req, 400, "invalid", f, "%s: must be %lld..%lld", f, (long long)lo,
                         (long long)hi);
        return false;
    }
    *out = x;
    return true;
}

static bool get_bool(http_req *req, json_t *v, const char *f, int64_t *out)
{
    if (!json_is_boolean(v)) return bad(req, f, "must be true or false");
    *out = json_is_true(v);
    return true;
}

/* Validate every member of body; on error a 400 naming the field is sent. */
static bool parse_trunk(http_req *req, json_t *body, int64_t dom, bool creating,
                        struct trunk_in *in)
{
    memset(in, 0, sizeof *in);
    bool full =
        req->auth && (req->auth->role == ROLE_SYSADMIN || req->auth->role == ROLE_POOL_SUPERVISOR ||
                      req->auth->role == ROLE_SUBGROUP_ADMIN);
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        int f = -1;
        for (int i = 0; i < F_COUNT; i++)
            if (!strcmp(key, FIELDS[i].name)) f = i;
        if (f < 0) {
            http_reply_error(req, 400, "unknown_field", key, "unknown field %s", key);
            return false;
        }
        if (!full && !FIELDS[f].domain_admin) {
            http_reply_error(req, 403, "forbidden", key,
                             "%s is set by the platform's administrators", key);
            return false;
        }
        in->has[f] = true;
        bool ok = true;
        switch ((enum f)f) {
        case F_NAME:
            ok = get_str(req, v, key, in->name, sizeof in->name, 1);
            break;
        case F_KIND:
            ok = get_str(req, v, key, in->kind, sizeof in->kind, 1) &&
                 (one_of(in->kind, kinds) ||
                  bad(req, key, "must be sip_trunk, sip_phone, gsm_gateway or private_route"));
            break;
        case F_ENABLED:
            ok = get_bool(req, v, key, &in->enabled);
            break;
        case F_HOST:
            ok = get_str(req, v, key, in->host, sizeof in->host, 1) &&
                 (chars_ok(in->host, ".-:[]") || bad(req, key, "not a host name or address"));
            break;
        case F_PORT:
            ok = get_int(req, v, key, 1, 65535, &in->port);
            break;
        case F_TRANSPORT:
            ok = get_str(req, v, key, in->transport, sizeof in->transport, 1) &&
                 (one_of(in->transport, transports) || bad(req, key, "must be udp, tcp or tls"));
            break;
        case F_LOGIN:
            ok = get_str(req, v, key, in->login, sizeof in->login, 0) &&
                 (chars_ok(in->login, "-_.!~*'()&=+$,;?/%") || bad(req, key, "invalid characters"));
            break;
        case F_PASSWORD:
            ok = get_str(req, v, key, in->password, sizeof in->password, 0) &&
                 (!strpbrk(in->password, "\"\\") || bad(req, key, "no quotes or backslashes"));
            break;
        case F_REALM:
            ok = get_str(req, v, key, in->realm, sizeof in->realm, 0) &&
                 (chars_ok(in->realm, ".-:") || bad(req, key, "not a domain name"));
            break;
        case F_REG:
            ok = get_bool(req, v, key, &in->reg);
            break;
        case F_REG_EXPIRES:
            ok = get_int(req, v, key, 60, 86400, &in->reg_expires);
            break;
        case F_PRIORITY:
            ok = get_int(req, v, key, 0, 1000000, &in->priority);
            break;
        case F_DIAL: {
            char ere[600];
            ok = get_str(req, v, key, in->dial_pattern, 241, 0) &&
                 (!in->dial_pattern[0] ||
                  dialpat_translate(in->dial_pattern, ere, sizeof ere) == CW_OK ||
                  bad(req, key, "not a usable regular expression (ERE with \\d \\w \\s)"));
            if (ok && in->dial_pattern[0]) {
                char probe[8];
                if (dialpat_match(in->dial_pattern, "sip:0@x", 0, probe, sizeof probe) < 0)
                    ok = bad(req, key, "not a usable regular expression");
            }
            break;
        }
        case F_STRIP:
            ok = get_int(req, v, key, 0, 20, &in->strip);
            break;
        case F_PREFIX:
            ok = get_str(req, v, key, in->prefix, 17, 0) &&
                 (digits_ok(in->prefix, "+*#") || bad(req, key, "digits only"));
            break;
        case F_MAX_IN:
            ok = get_int(req, v, key, 0, 10000, &in->max_in);
            break;
        case F_MAX_OUT:
            ok = get_int(req, v, key, 0, 10000, &in->max_out);
            break;
        case F_CALLER_IDS: {
            if (!json_is_array(v) || json_array_size(v) > MAX_CALLER_IDS)
                return bad(req, key, "must be a list of at most 16 numbers");
            size_t i;
            json_t *n;
            cw_buf b;
            cw_buf_init(&b);
            json_array_foreach(v, i, n)
            {
                const char *s = json_string_value(n);
                if (!s || !*s || strlen(s) > 20 || !digits_ok(s, "+")) {
                    cw_buf_free(&b);
                    return bad(req, key, "each number: digits with an optional +");
                }
                cw_buf_printf(&b, "%s%s", i ? "," : "", s);
            }
            cw_strlcpy(in->caller_ids, b.data ? b.data : "", sizeof in->caller_ids);
            cw_buf_free(&b);
            break;
        }
        case F_ONLY_GROUP:
            if (json_is_null(v)) {
                in->only_group_null = true;
                break;
            }
            ok = get_int(req, v, key, 1, INT64_MAX, &in->only_group);
            if (ok) {
                int64_t n = 0;
                store_query_int(store_main(), &n,
                                "SELECT COUNT(*) FROM call_groups WHERE id = ? AND domain_id = ?",
                                SA_INT(in->only_group), SA_INT(dom), SA_END);
                if (!n) ok = bad(req, key, "no such group in this domain");
            }
            break;
        case F_COUNT:
            break;
        }
        if (!ok) return false;
    }
    if (creating) {
        if (!in->has[F_NAME]) return bad(req, "name", "required");
        if (!in->has[F_HOST]) return bad(req, "host", "required");
        if (!in->has[F_REG]) {
            /* a trunk with a login registers unless told otherwise */
            in->has[F_REG] = true;
            in->reg = in->has[F_LOGIN] && in->login[0];
        }
        if (in->has[F_REG] && in->reg && (!in->has[F_LOGIN] || !in->login[0]))
            return bad(req, "login", "required when register is true");
    }
    return true;
}

/* Bind the fields present as "col = ?" (update) or columns/values (insert). */
static int bind_fields(const struct trunk_in *in, store_arg *args, const char **cols)
{
    int n = 0;
    for (int f = 0; f < F_COUNT; f++) {
        if (!in->has[f]) continue;
        cols[n] = FIELDS[f].column;
        switch ((enum f)f) {
        case F_NAME:
            args[n] = SA_STR(in->name);
            break;
        case F_KIND:
            args[n] = SA_STR(in->kind);
            break;
        case F_ENABLED:
            args[n] = SA_INT(in->enabled);
            break;
        case F_HOST:
            args[n] = SA_STR(in->host);
            break;
        case F_PORT:
            args[n] = SA_INT(in->port);
            break;
        case F_TRANSPORT:
            args[n] = SA_STR(in->transport);
            break;
        case F_LOGIN:
            args[n] = SA_STR(in->login);
            break;
        case F_PASSWORD:
            args[n] = SA_STR(in->password);
            break;
        case F_REALM:
            args[n] = SA_STR(in->realm);
            break;
        case F_REG:
            args[n] = SA_INT(in->reg);
            break;
        case F_REG_EXPIRES:
            args[n] = SA_INT(in->reg_expires);
            break;
        case F_PRIORITY:
            args[n] = SA_INT(in->priority);
            break;
        case F_DIAL:
            args[n] = SA_STR(in->dial_pattern);
            break;
        case F_STRIP:
            args[n] = SA_INT(in->strip);
            break;
        case F_PREFIX:
            args[n] = SA_STR(in->prefix);
            break;
        case F_MAX_IN:
            args[n] = SA_INT(in->max_in);
            break;
        case F_MAX_OUT:
            args[n] = SA_INT(in->max_out);
            break;
        case F_CALLER_IDS:
            args[n] = SA_STR(in->caller_ids);
            break;
        case F_ONLY_GROUP:
            args[n] = in->only_group_null ? SA_NULL : SA_INT(in->only_group);
            break;
        case F_COUNT:
            break;
        }
        n++;
    }
    return n;
}

/* What the audit log keeps of a change: the fields, never the password. */
static json_t *audit_details(const struct trunk_in *in, json_t *body)
{
    json_t *d = json_deep_copy(body);
    if (in->has[F_PASSWORD]) json_object_set_new(d, "password", json_string("(changed)"));
    return d;
}

static void list_trunks(http_req *req)
{
    int64_t dom;
    if (!http_domain_param(req, 0, &dom)) return;
    store_res *r;
    char *sql = cw_sprintf("SELECT %s FROM trunks WHERE domain_id = ? ORDER BY priority, id", COLS);
    int rc = store_query(store_main(), &r, sql, SA_INT(dom), SA_END);
    free(sql);
    if (rc < 0 || !r) {
        http_reply_error(req, 500, "store", NULL, "cannot read trunks");
        return;
    }
    json_t *items = json_array();
    while (store_next(r))
        json_array_append_new(items, row_json(r));
    store_res_free(r);
    http_reply_json(req, 200, json_pack("{so}", "items", items));
}

static void create_trunk(http_req *req)
{
    int64_t dom;
    if (!http_domain_param(req, 0, &dom)) return;
    json_t *body = http_json_body(req);
    if (!body) return;
    struct trunk_in in;
    if (!parse_trunk(req, body, dom, true, &in)) {
        json_decref(body);
        return;
    }
    store_arg args[F_COUNT + 4];
    const char *cols[F_COUNT];
    int n = bind_fields(&in, args, cols);
    int64_t now = cw_wall_time();
    cw_buf sql;
    cw_buf_init(&sql);
    cw_buf_puts(&sql, "INSERT INTO trunks (domain_id, created_at, updated_at");
    for (int i = 0; i < n; i++)
        cw_buf_printf(&sql, ", %s", cols[i]);
    cw_buf_puts(&sql, ") VALUES (?, ?, ?");
    for (int i = 0; i < n; i++)
        cw_buf_puts(&sql, ", ?");
    cw_buf_puts(&sql, ")");
    store_arg all[F_COUNT + 4];
    all[0] = SA_INT(dom);
    all[1] = SA_INT(now);
    all[2] = SA_INT(now);
    memcpy(all + 3, args, sizeof args[0] * (size_t)n);
    int rc = store_execv(store_main(), sql.data, all, n + 3);
    cw_buf_free(&sql);
    if (rc == CW_EEXIST) {
        http_reply_error(req, 409, "exists", "name", "a trunk named %s exists", in.name);
        json_decref(body);
        return;
    }
    int64_t id = 0;
    if (rc < 0 ||
        store_query_int(store_main(), &id, "SELECT id FROM trunks WHERE domain_id = ? AND name = ?",
                        SA_INT(dom), SA_STR(in.name), SA_END)) {
        http_reply_error(req, 500, "store", NULL, "cannot save the trunk");
        json_decref(body);
        return;
    }
    sip_trunks_reload();
    http_audit(req, dom, "trunk", in.name, "create", audit_details(&in, body));
    json_decref(body);
    json_t *j = trunk_get(req, dom, id);
    if (j) http_reply_json(req, 201, j);
}

static void get_trunk(http_req *req)
{
    int64_t dom, id;
    if (!http_domain_param(req, 0, &dom) || !id_param(req, 1, &id)) return;
    json_t *j = trunk_get(req, dom, id);
    if (j) http_reply_json(req, 200, j);
}

static void update_trunk(http_req *req)
{
    int64_t dom, id;
    if (!http_domain_param(req, 0, &dom) || !id_param(req, 1, &id)) return;
    json_t *old = trunk_get(req, dom, id);
    if (!old) return;
    json_t *body = http_json_body(req);
    if (!body) {
        json_decref(old);
        return;
    }
    struct trunk_in in;
    if (!parse_trunk(req, body, dom, false, &in)) {
        json_decref(old);
        json_decref(body);
        return;
    }
    /* registration needs a login: check against the merged result */
    bool reg = in.has[F_REG] ? in.reg : json_is_true(json_object_get(old, "register"));
    const char *login =
        in.has[F_LOGIN] ? in.login : json_string_value(json_object_get(old, "login"));
    if (reg && (!login || !*login)) {
        bad(req, "login", "required when register is true");
        json_decref(old);
        json_decref(body);
        return;
    }
    store_arg args[F_COUNT + 3];
    const char *cols[F_COUNT];
    int n = bind_fields(&in, args, cols);
    cw_buf sql;
    cw_buf_init(&sql);
    cw_buf_puts(&sql, "UPDATE trunks SET updated_at = ?");
    for (int i = 0; i < n; i++)
        cw_buf_printf(&sql, ", %s = ?", cols[i]);
    cw_buf_puts(&sql, " WHERE id = ? AND domain_id = ?");
    store_arg all[F_COUNT + 4];
    all[0] = SA_INT(cw_wall_time());
    memcpy(all + 1, args, sizeof args[0] * (size_t)n);
    all[n + 1] = SA_INT(id);
    all[n + 2] = SA_INT(dom);
    int rc = store_execv(store_main(), sql.data, all, n + 3);
    cw_buf_free(&sql);
    if (rc == CW_EEXIST) {
        http_reply_error(req, 409, "exists", "name", "a trunk with that name exists");
    } else if (rc < 0) {
        http_reply_error(req, 500, "store", NULL, "cannot save the trunk");
    } else {
        sip_trunks_reload();
        const char *name =
            in.has[F_NAME] ? in.name : json_string_value(json_object_get(old, "name"));
        http_audit(req, dom, "trunk", name ? name : "", "update", audit_details(&in, body));
        json_t *j = trunk_get(req, dom, id);
        if (j) http_reply_json(req, 200, j);
    }
    json_decref(old);
    json_decref(body);
}

static void delete_trunk(http_req *req)
{
    int64_t dom, id;
    if (!http_domain_param(req, 0, &dom) || !id_param(req, 1, &id)) return;
    json_t *old = trunk_get(req, dom, id);
    if (!old) return;
    if (store_exec(store_main(), "DELETE FROM trunks WHERE id = ? AND domain_id = ?", SA_INT(id),
                   SA_INT(dom), SA_END) < 0) {
        http_reply_error(req, 500, "store", NULL, "cannot delete the trunk");
        json_decref(old);
        return;
    }
    sip_trunks_reload();
    const char *name = json_string_value(json_object_get(old, "name"));
    http_audit(req, dom, "trunk", name ? name : "", "delete", json_object());
    json_decref(old);
    http_reply_json(req, 200, json_pack("{sb}", "ok", 1));
}

static void trunk_status(http_req *req)
{
    int64_t dom, id;
    if (!http_domain_param(req, 0, &dom) || !id_param(req, 1, &id)) return;
    json_t *t = trunk_get(req, dom, id);
    if (!t) return;
    json_t *st = json_incref(json_object_get(t, "status"));
    json_decref(t);
    http_reply_json(req, 200, st);
}

static void trunk_log(http_req *req)
{
    int64_t dom, id;
    if (!http_domain_param(req, 0, &dom) || !id_param(req, 1, &id)) return;
    json_t *t = trunk_get(req, dom, id);
    if (!t) return;
    json_decref(t);
    int64_t limit = 50;
    const char *q = http_query(req, "limit");
    if (q && (cw_parse_i64(q, &limit) || limit < 1 || limit > 100)) {
        http_reply_error(req, 400, "invalid", "limit", "limit must be 1..100");
        return;
    }
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT ts_ms, event, detail FROM trunk_log WHERE trunk_id = ?"
                    " ORDER BY id DESC LIMIT ?",
                    SA_INT(id), SA_INT(limit), SA_END) < 0 ||
        !r) {
        http_reply_error(req, 500, "store", NULL, "cannot read the log");
        return;
    }
    json_t *items = json_array();
    while (store_next(r))
        json_array_append_new(items,
                              json_pack("{sI ss ss}", "ts_ms", (json_int_t)store_int(r, 0), "event",
                                        store_str(r, 1), "detail", store_str(r, 2)));
    store_res_free(r);
    http_reply_json(req, 200, json_pack("{so}", "items", items));
}

static void list_registrations(http_req *req)
{
    int64_t dom;
    if (!http_domain_param(req, 0, &dom)) return;
    int max = 10000;
    struct sip_registration *regs = cw_calloc((size_t)max, sizeof *regs);
    int n = sip_registrations(dom, regs, max);
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(
            items, json_pack("{sI ss ss ss ss sI ss ss}", "user_id", (json_int_t)regs[i].user_id,
                             "login", regs[i].login, "extension", regs[i].extension, "contact",
                             regs[i].contact.uri, "user_agent", regs[i].contact.user_agent,
                             "expires_at", (json_int_t)regs[i].contact.expires_at, "source",
                             regs[i].source, "transport", regs[i].transport));
    free(regs);
    http_reply_json(req, 200, json_pack("{so}", "items", items));
}

static void list_bans(http_req *req)
{
    struct sip_ban b[512];
    int n = sip_bans(b, (int)CW_ARRAY_LEN(b));
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, json_pack("{ss sI si}", "ip", b[i].ip, "until",
                                               (json_int_t)b[i].until, "failures", b[i].failures));
    http_reply_json(req, 200, json_pack("{so}", "items", items));
}

static void lift_ban(http_req *req)
{
    const char *ip = req->nparams > 0 ? req->params[0] : "";
    if (!*ip || strlen(ip) >= 64 || !chars_ok(ip, ".:")) {
        http_reply_error(req, 400, "invalid", "ip", "not an address");
        return;
    }
    if (sip_ban_lift(ip) != CW_OK) {
        http_reply_error(req, 404, "not_found", NULL, "%s is not banned", ip);
        return;
    }
    http_audit(req, 0, "sip_ban", ip, "delete", json_object());
    http_reply_json(req, 200, json_pack("{sb}", "ok", 1));
}

void sip_api_init(void)
{
    const char *t = "/api/v1/domains/:domain/trunks";
    http_route("GET", t, list_trunks, ROLE_DOMAIN_ADMIN, 0, "List the domain's trunks");
    http_route("POST", t, create_trunk, ROLE_POOL_SUPERVISOR, 0, "Create a trunk");
    http_route("GET", "/api/v1/domains/:domain/trunks/:id", get_trunk, ROLE_DOMAIN_ADMIN, 0,
               "One trunk with its live status");
    http_route("PATCH", "/api/v1/domains/:domain/trunks/:id", update_trunk, ROLE_DOMAIN_ADMIN, 0,
               "Change a trunk (domain admins: enabled, name, routing fields)");
    http_route("DELETE", "/api/v1/domains/:domain/trunks/:id", delete_trunk, ROLE_POOL_SUPERVISOR,
               0, "Delete a trunk");
    http_route("GET", "/api/v1/domains/:domain/trunks/:id/status", trunk_status, ROLE_DOMAIN_ADMIN,
               0, "Live registration status and lines in use");
    http_route("GET", "/api/v1/domains/:domain/trunks/:id/log", trunk_log, ROLE_DOMAIN_ADMIN, 0,
               "The trunk's recent events, newest first");
    http_route("GET", "/api/v1/domains/:domain/registrations", list_registrations,
               ROLE_DOMAIN_ADMIN, 0, "Registered SIP devices of the domain");
    http_route("GET", "/api/v1/sip/bans", list_bans, ROLE_SYSADMIN, 0,
               "Addresses banned after failed SIP authentications");
    http_route("DELETE", "/api/v1/sip/bans/:ip", lift_ban, ROLE_SYSADMIN, 0,
               "Lift the ban on an address");
    log_debug("sip", "API routes registered");
}
