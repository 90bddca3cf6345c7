/*
 * cdr_api.c - call history through the API: list with filters and paging,
 * one record with its event protocol. Operators and subscribers see only
 * calls of their own extension.
 */
#include "base/cw.h"
#include "cdr/cdr.h"
#include "http/http.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

static const char cols[] =
    "uuid, direction, a_number, a_name, b_number, b_name, dialed, trunk, queue_id, agent_id, "
    "states, released_by, cause, start_ms, answer_ms, end_ms, talk_s, wait_s, recording, quality, "
    "events";

/* One CDR row as JSON: integers stay integers, JSON columns are parsed. */
static json_t *row_json(store_res *r)
{
    static const char *ints[] = {"queue_id", "agent_id", "start_ms", "answer_ms",
                                 "end_ms",   "talk_s",   "wait_s"};
    static const char *jsons[] = {"states", "quality", "events"};
    json_t *o = json_object();
    for (int c = 0; c < store_ncols(r); c++) {
        const char *name = store_colname(r, c);
        json_t *v = NULL;
        if (store_isnull(r, c)) {
            v = json_null();
        } else {
            for (size_t i = 0; i < CW_ARRAY_LEN(ints) && !v; i++)
                if (!strcmp(name, ints[i])) v = json_integer(store_int(r, c));
            for (size_t i = 0; i < CW_ARRAY_LEN(jsons) && !v; i++)
                if (!strcmp(name, jsons[i])) v = json_loads(store_str(r, c), 0, NULL);
            if (!v) v = json_string(store_str(r, c));
        }
        json_object_set_new(o, name, v ? v : json_null());
    }
    return o;
}

static const char *own_extension(http_req *req, char *buf, size_t len)
{
    if (req->auth->role != ROLE_OPERATOR && req->auth->role != ROLE_SUBSCRIBER) return NULL;
    store_res *r;
    buf[0] = '\0';
    if (store_query(store_main(), &r, "SELECT extension FROM users WHERE id = ?",
                    SA_INT(req->auth->user_id), SA_END) >= 0 &&
        store_next(r) && store_str(r, 0))
        cw_strlcpy(buf, store_str(r, 0), len);
    store_res_free(r);
    return buf;
}

static bool int_param(http_req *req, const char *name, int64_t def, int64_t min, int64_t max,
                      int64_t *out)
{
    const char *v = http_query(req, name);
    *out = def;
    if (!v) return true;
    if (cw_parse_i64(v, out) || *out < min || *out > max) {
        http_reply_error(req, 400, "invalid", name, "%s must be an integer in %lld..%lld", name,
                         (long long)min, (long long)max);
        return false;
    }
    return true;
}

static void list_cdrs(http_req *req)
{
    int64_t dom;
    if (!http_domain_param(req, 0, &dom)) return;
    int64_t limit, offset, from, to;
    if (!int_param(req, "limit", 50, 1, 1000, &limit) ||
        !int_param(req, "offset", 0, 0, INT64_MAX, &offset) ||
        !int_param(req, "from", 0, 0, INT64_MAX, &from) ||
        !int_param(req, "to", INT64_MAX, 0, INT64_MAX, &to))
        return;
    const char *dir = http_query(req, "direction");
    if (dir && strcmp(dir, "internal") && strcmp(dir, "incoming") && strcmp(dir, "outgoing") &&
        strcmp(dir, "transit")) {
        http_reply_error(req, 400, "invalid", "direction",
                         "direction must be internal, incoming, outgoing or transit");
        return;
    }
    const char *number = http_query(req, "number");
    if (number && (!*number || strlen(number) > 32)) {
        http_reply_error(req, 400, "invalid", "number", "number must be 1..32 characters");
        return;
    }
    char ownbuf[32];
    const char *own = own_extension(req, ownbuf, sizeof ownbuf);
    char *prefix = number ? cw_sprintf("%s%%", number) : NULL;
    const char *where = "domain_id = ? AND start_ms >= ? AND start_ms < ? "
                        "AND (CAST(? AS TEXT) IS NULL OR direction = ?) "
                        "AND (CAST(? AS TEXT) IS NULL OR a_number LIKE ? OR b_number LIKE ? "
                        "OR dialed LIKE ?) "
                        "AND (CAST(? AS TEXT) IS NULL OR a_number = ? OR b_number = ?)";
    store_arg args[] = {SA_INT(dom),    SA_INT(from),   SA_INT(to),     SA_STR(dir),    SA_STR(dir),
                        SA_STR(prefix), SA_STR(prefix), SA_STR(prefix), SA_STR(prefix), SA_STR(own),
                        SA_STR(own),    SA_STR(own),    SA_INT(limit),  SA_INT(offset)};
    char *sql = cw_sprintf("SELECT %s FROM cdrs WHERE %s ORDER BY start_ms DESC, id DESC "
                           "LIMIT ? OFFSET ?",
                           cols, where);
    char *count_sql = cw_sprintf("SELECT COUNT(*) FROM cdrs WHERE %s", where);
    store_res *r;
    json_t *items = json_array();
    int rc = store_queryv(store_main(), &r, sql, args, 14);
    if (rc >= 0)
        while (store_next(r))
            json_array_append_new(items, row_json(r));
    store_res_free(r);
    int64_t total = 0;
    store_res *cr;
    if (rc >= 0 && store_queryv(store_main(), &cr, count_sql, args, 12) >= 0 && store_next(cr))
        total = store_int(cr, 0);
    if (rc >= 0) store_res_free(cr);
    free(sql);
    free(count_sql);
    free(prefix);
    if (rc < 0) {
        json_decref(items);
        http_reply_error(req, 500, "store", NULL, "reading call history failed");
        return;
    }
    http_reply_json(req, 200,
                    json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total,
                              "limit", (json_int_t)limit, "offset", (json_int_t)offset));
}

static void get_cdr(http_req *req)
{
    int64_t dom;
    if (!http_domain_param(req, 0, &dom)) return;
    char ownbuf[32];
    const char *own = own_extension(req, ownbuf, sizeof ownbuf);
    char *sql = cw_sprintf("SELECT %s FROM cdrs WHERE domain_id = ? AND uuid = ? "
                           "AND (CAST(? AS TEXT) IS NULL OR a_number = ? OR b_number = ?)",
                           cols);
    store_res *r;
    int rc = store_query(store_main(), &r, sql, SA_INT(dom), SA_STR(req->params[1]), SA_STR(own),
                         SA_STR(own), SA_STR(own), SA_END);
    free(sql);
    if (rc >= 0 && store_next(r))
        http_reply_json(req, 200, row_json(r));
    else
        http_reply_error(req, 404, "not_found", NULL, "no such call record");
    store_res_free(r);
}

void cdr_api_init(void)
{
    http_route("GET", "/api/v1/domains/:domain/cdrs", list_cdrs, ROLE_SUBSCRIBER, 0,
               "Call history (filters: from, to in ms, direction, number prefix; limit, offset)");
    http_route("GET", "/api/v1/domains/:domain/cdrs/:uuid", get_cdr, ROLE_SUBSCRIBER, 0,
               "One call record with its states, quality and event protocol");
}
