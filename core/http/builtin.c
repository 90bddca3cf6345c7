/*
 * builtin.c - endpoints the HTTP edge itself serves: /health, the OpenAPI
 * document generated from the route table, and (via audit.c, sse.c) the
 * audit log and the event stream.
 */
#include "base/cw.h"
#include "http/http.h"
#include "http/http_int.h"
#include "store/store.h"

void http_audit_api_init(void);

static void health(http_req *req)
{
    store *st = store_main();
    int64_t one = 0;
    bool store_ok = st && store_query_int(st, &one, "SELECT 1", SA_END) == CW_OK && one == 1;
    json_t *j = json_pack("{s:s,s:s,s:{s:s,s:i,s:b},s:I}", "status", store_ok ? "ok" : "degraded",
                          "version", CW_VERSION, "store", "backend",
                          st && store_backend_of(st) == STORE_PG ? "postgresql" : "sqlite",
                          "schema", st ? store_schema_version(st) : 0, "ok", store_ok, "uptime_s",
                          (json_int_t)(http_uptime_ms() / 1000));
    struct http_counters hc;
    http_get_counters(&hc);
    json_object_set_new(j, "http",
                        json_pack("{s:I,s:i,s:I,s:I,s:I}", "requests", (json_int_t)hc.requests,
                                  "streams", hc.streams, "replies_2xx", (json_int_t)hc.status[2],
                                  "replies_4xx", (json_int_t)hc.status[4], "replies_5xx",
                                  (json_int_t)hc.status[5]));
    http_reply_json(req, store_ok ? 200 : 503, j);
}

static void openapi(http_req *req)
{
    http_reply_json(req, 200, http_openapi());
}

void http_builtin_init(void)
{
    http_route("GET", "/health", health, ROLE_NONE, HTTP_PUBLIC,
               "Liveness: status, version, store backend and schema, uptime");
    http_route("GET", "/api/v1/openapi.json", openapi, ROLE_NONE, HTTP_PUBLIC,
               "This API as an OpenAPI 3 document, generated from the route table");
    http_audit_api_init();
    http_sse_init();
}
