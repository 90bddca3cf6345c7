/*
 * cdr.c - buffered writing of CDRs and queue-log rows.
 *
 * Rows wait in memory (core thread) and go to the store in one transaction
 * per flush; a failed flush keeps them for the next try, so a store hiccup
 * loses nothing while the daemon runs.
 */
#include "cdr/cdr.h"
#include "base/cw.h"
#include "config/config.h"
#include "log/log.h"
#include "loop/loop.h"
#include "store/store.h"

#include <string.h>

static struct {
    json_t *cdrs; /* array of row objects */
    json_t *qlog; /* array of row objects */
    struct event *timer;
} D;

static const char *cdr_cols[] = {"uuid",      "domain_id", "direction",   "a_number", "a_name",
                                 "b_number",  "b_name",    "dialed",      "trunk",    "queue_id",
                                 "agent_id",  "states",    "released_by", "cause",    "start_ms",
                                 "answer_ms", "end_ms",    "talk_s",      "wait_s",   "recording",
                                 "quality",   "events"};

static store_arg arg_of(json_t *v, char **tmp)
{
    *tmp = NULL;
    if (!v || json_is_null(v)) return SA_NULL;
    if (json_is_integer(v)) return SA_INT(json_integer_value(v));
    if (json_is_string(v)) return SA_STR(json_string_value(v));
    if (json_is_boolean(v)) return SA_INT(json_is_true(v));
    *tmp = json_dumps(v, JSON_COMPACT);
    return SA_STR(*tmp);
}

static int write_cdr(store *st, json_t *row)
{
    enum { N = sizeof cdr_cols / sizeof cdr_cols[0] };
    static char *sql;
    if (!sql) {
        cw_buf b;
        cw_buf_init(&b);
        cw_buf_puts(&b, "INSERT INTO cdrs(");
        for (int i = 0; i < N; i++)
            cw_buf_printf(&b, "%s%s", i ? "," : "", cdr_cols[i]);
        cw_buf_puts(&b, ") VALUES (");
        for (int i = 0; i < N; i++)
            cw_buf_puts(&b, i ? ",?" : "?");
        cw_buf_puts(&b, ")");
        sql = cw_buf_steal(&b);
    }
    store_arg args[N];
    char *tmp[N];
    for (int i = 0; i < N; i++)
        args[i] = arg_of(json_object_get(row, cdr_cols[i]), &tmp[i]);
    int rc = store_execv(st, sql, args, N);
    for (int i = 0; i < N; i++)
        free(tmp[i]);
    return rc;
}

static int write_qlog(store *st, json_t *row)
{
    char *data = json_dumps(json_object_get(row, "data"), JSON_COMPACT);
    json_t *agent = json_object_get(row, "agent_id");
    int rc = store_exec(st,
                        "INSERT INTO queue_log(ts_ms, domain_id, queue_id, call_uuid, agent_id, "
                        "event, data) VALUES (?,?,?,?,?,?,?)",
                        SA_INT(json_integer_value(json_object_get(row, "ts_ms"))),
                        SA_INT(json_integer_value(json_object_get(row, "domain_id"))),
                        SA_INT(json_integer_value(json_object_get(row, "queue_id"))),
                        SA_STR(json_string_value(json_object_get(row, "call_uuid"))),
                        json_integer_value(agent) ? SA_INT(json_integer_value(agent)) : SA_NULL,
                        SA_STR(json_string_value(json_object_get(row, "event"))),
                        SA_STR(data ? data : "{}"), SA_END);
    free(data);
    return rc;
}

void cdr_flush(void)
{
    store *st = store_main();
    if (!st || (json_array_size(D.cdrs) == 0 && json_array_size(D.qlog) == 0)) return;
    if (store_begin(st)) return;
    size_t i;
    json_t *row;
    int rc = 0;
    json_array_foreach(D.cdrs, i, row)
    {
        if ((rc = write_cdr(st, row)) < 0 && rc != CW_EEXIST) break;
        rc = 0;
    }
    if (rc >= 0) json_array_foreach(D.qlog, i, row) if ((rc = write_qlog(st, row)) < 0) break;
    if (rc < 0) {
        log_error("cdr", "writing %zu CDRs and %zu queue-log rows failed, will retry: %s",
                  json_array_size(D.cdrs), json_array_size(D.qlog), store_errmsg(st));
        store_rollback(st);
        return;
    }
    if (store_commit(st)) {
        log_error("cdr", "commit failed, will retry: %s", store_errmsg(st));
        return;
    }
    json_array_clear(D.cdrs);
    json_array_clear(D.qlog);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    cdr_flush();
}

void cdr_submit(json_t *row)
{
    json_array_append_new(D.cdrs, row);
    if (json_array_size(D.cdrs) >= 500) cdr_flush();
}

void cdr_queue_log(int64_t domain_id, int64_t queue_id, const char *call_uuid, int64_t agent_id,
                   const char *event, json_t *data)
{
    json_array_append_new(
        D.qlog, json_pack("{s:I,s:I,s:I,s:s,s:I,s:s,s:o}", "ts_ms", (json_int_t)cw_wall_ms(),
                          "domain_id", (json_int_t)domain_id, "queue_id", (json_int_t)queue_id,
                          "call_uuid", call_uuid, "agent_id", (json_int_t)agent_id, "event", event,
                          "data", data ? data : json_object()));
}

void cdr_api_init(void);

int cdr_init(void)
{
    D.cdrs = json_array();
    D.qlog = json_array();
    int64_t ms = config_int("cdr.flush_ms");
    if (ms < 50) ms = 50;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    D.timer = event_new(loop_base(), -1, EV_PERSIST, on_timer, NULL);
    event_add(D.timer, &tv);
    cdr_api_init();
    return CW_OK;
}

void cdr_shutdown(void)
{
    cdr_flush();
    if (D.timer) event_free(D.timer);
    D.timer = NULL;
    json_decref(D.cdrs);
    json_decref(D.qlog);
    D.cdrs = D.qlog = NULL;
}
