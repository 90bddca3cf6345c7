/*
 * http.h - the HTTP edge: REST API v1, Server-Sent Events, static web apps.
 *
 * evhttp on the core loop (plain and TLS listeners). Handlers run on the
 * core thread. Any subsystem adds its endpoints with http_route(); the route
 * table is also the source of /api/v1/openapi.json, so every route carries a
 * summary and the role it needs.
 *
 * Order of checks for every request: route match (404/405), body size
 * (413, limit http.max_body or http.max_upload for HTTP_UPLOAD routes),
 * authentication (401), role (403), then the handler, which does the
 * tenant check (404 for other tenants' objects) and validates its input.
 * Every error reply is JSON: {"error": {"code", "message", "field"?}}.
 */
#ifndef CW_HTTP_H
#define CW_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cw.h"
#include "store/store.h"

struct evhttp_request;

/* Roles, from most to least powerful. A domain user has one of the last four. */
enum cw_role {
    ROLE_NONE = 0,
    ROLE_SYSADMIN,
    ROLE_POOL_SUPERVISOR,
    ROLE_SUBGROUP_ADMIN,
    ROLE_DOMAIN_ADMIN,
    ROLE_SUPERVISOR,
    ROLE_OPERATOR,
    ROLE_SUBSCRIBER,
};
const char *cw_role_name(enum cw_role r);
enum cw_role cw_role_parse(const char *s); /* ROLE_NONE when unknown */
/* True when role r is at least as powerful as min (and is a real role). */
bool cw_role_at_least(enum cw_role r, enum cw_role min);

/* Who is calling, once authenticated (session cookie or API token). */
struct auth_ctx {
    int64_t user_id;
    enum cw_role role;
    int64_t domain_id; /* for domain users, else 0 */
    int64_t pool_id;   /* for pool admins, else 0 */
    bool is_operator;
    bool via_token; /* API token rather than a session */
    char login[128];
    char name[128];
    char domain[128]; /* domain name, for domain users */
};

struct http_priv; /* the edge's own per-request state */

/*
 * One request. Owned by the HTTP edge: it lives until the reply is sent
 * (for async handlers and streams, until the reply or the stream ends).
 */
typedef struct http_req {
    struct evhttp_request *ev; /* NULL once the client has gone away */
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* decoded path without query */
    char *params[8];           /* values of :name segments, in pattern order */
    int nparams;
    struct auth_ctx *auth; /* NULL on public routes without credentials */
    char ip[64];
    bool tls;   /* arrived on the HTTPS listener */
    void *priv; /* the route's argument (http_route_with) */
    struct http_priv *p;
} http_req;

typedef void (*http_handler)(http_req *req);

enum {
    HTTP_PUBLIC = 1,   /* no authentication needed */
    HTTP_NO_AUDIT = 2, /* a write that is not an audited change (login, logout) */
    HTTP_UPLOAD = 4,   /* body limit is http.max_upload instead of http.max_body */
    HTTP_STREAM = 8,   /* long-lived reply (SSE): no idle timeout */
};

/*
 * Register a route. pattern: "/api/v1/domains/:domain/users/:id".
 * min_role: the least powerful role allowed (checked before the handler;
 * tenant checks are the handler's job via http_domain_access()).
 * Routes must be registered before http_start().
 */
void http_route(const char *method, const char *pattern, http_handler fn, enum cw_role min_role,
                unsigned flags, const char *summary);
/* The same with an argument the handler finds in req->priv (e.g. a descriptor). */
void http_route_with(const char *method, const char *pattern, http_handler fn, void *arg,
                     enum cw_role min_role, unsigned flags, const char *summary);
/* Attach an OpenAPI request-body schema to a registered route (stolen). */
void http_route_schema(const char *method, const char *pattern, json_t *schema);
/* The route table as an OpenAPI 3 document (new reference). */
json_t *http_openapi(void);

int http_start(void);
/*
 * Close the listeners and every connection: event streams end cleanly
 * first; async requests still waiting for a worker are answered into the
 * void (their reply only releases them).
 */
void http_stop(void);

/* Counters for metrics (core thread). */
struct http_counters {
    uint64_t requests;  /* requests dispatched */
    uint64_t status[6]; /* replies by class: [2] = 2xx ... [5] = 5xx */
    int streams;        /* event-stream clients connected now */
};
void http_get_counters(struct http_counters *out);

/* Body parsing: JSON object or 400 sent and NULL returned. New reference. */
json_t *http_json_body(http_req *req);
/* Raw body (uploads); len set; NULL if empty. Owned by the request. */
const unsigned char *http_body(http_req *req, size_t *len);
const char *http_query(http_req *req, const char *name); /* NULL if absent */
const char *http_header(http_req *req, const char *name);
/* 400 naming the first query parameter not in allowed (NULL-terminated). */
bool http_query_only(http_req *req, const char *const *allowed);
/* limit (default 50, 1..1000) and offset (>= 0) from the query, or 400. */
bool http_page(http_req *req, int64_t *limit, int64_t *offset);
/* A query parameter as an integer; absent = def; junk = 400 and false. */
bool http_query_int(http_req *req, const char *name, int64_t def, int64_t *out);

/*
 * Check a JSON object against a list of fields: unknown keys, wrong types
 * and missing required keys get a 400 naming the field.
 */
enum json_kind { JK_STRING = 1, JK_INT, JK_BOOL, JK_ARRAY, JK_OBJECT };
struct json_field {
    const char *name;
    enum json_kind kind;
    bool required;
};
bool http_json_check(http_req *req, json_t *obj, const struct json_field *fields, int n);

/* Replies. json is stolen. */
void http_reply_json(http_req *req, int status, json_t *json);
/* Append the compact JSON text of json to out (the bytes json_dumps(JSON_COMPACT) gives). */
int http_json_text(cw_buf *out, json_t *json);
/* {"error": {"code": code, "message": ..., "field": field}} */
void http_reply_error(http_req *req, int status, const char *code, const char *field,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Like http_reply_error with extra members merged into the error object (stolen). */
void http_reply_error_with(http_req *req, int status, const char *code, const char *field,
                           json_t *extra, const char *message);
void http_reply_bytes(http_req *req, int status, const char *content_type, const void *data,
                      size_t len);
void http_reply_file(http_req *req, const char *path, const char *content_type,
                     const char *download_name);
void http_add_header(http_req *req, const char *name, const char *value);

/*
 * A handler that replies later (after work on a worker thread) calls
 * http_async() before returning, then exactly one reply function from the
 * core thread. If the client went away meanwhile, req->ev is NULL and the
 * reply only releases the request.
 */
void http_async(http_req *req);

/*
 * Streams (Server-Sent Events): start sends the status line and headers;
 * send appends a chunk; end finishes. on_close runs once if the client
 * goes away first; after it the request is gone (do not touch it).
 * A stream whose unsent output exceeds 1 MiB is closed as too slow.
 */
typedef void (*http_close_fn)(http_req *req, void *arg);
void http_stream_start(http_req *req, const char *content_type, http_close_fn on_close, void *arg);
int http_stream_send(http_req *req, const void *data, size_t len);
void http_stream_end(http_req *req);

/*
 * Tenant check: may the caller act on this domain? Sends 404 and returns
 * false when the domain does not exist or is outside the caller's reach
 * (so other tenants' objects are not even confirmed to exist).
 */
bool http_domain_access(http_req *req, int64_t domain_id);
/* Same question without replying. */
bool http_domain_reachable(const struct auth_ctx *a, int64_t domain_id);
/* Resolve a :domain path value (id or name) to an id the caller may use. */
bool http_domain_param(http_req *req, int idx, int64_t *domain_id);
/* Resolve a :pool path value (id) the caller may administer (or 404). */
bool http_pool_param(http_req *req, int idx, int64_t *pool_id);
/*
 * SQL condition (on a column holding a domain id) limiting rows to the
 * caller's domains, with its arguments appended to args (at most 2).
 * Returns e.g. "domain_id IN (SELECT id FROM domains WHERE pool_id = ?)".
 */
const char *http_domain_reach_sql(const struct auth_ctx *a, const char *col, char *buf,
                                  size_t buflen, struct store_arg *args, int *nargs);

/* Record a change in the audit log (after it succeeded). details is stolen. */
void http_audit(http_req *req, int64_t domain_id, const char *object_type, const char *object_name,
                const char *action, json_t *details);
/* The same for changes made without a request actor (password reset by link). */
void http_audit_as(const struct auth_ctx *actor, const char *ip, int64_t domain_id,
                   const char *object_type, const char *object_name, const char *action,
                   json_t *details);
/* Pool-level changes (pools, subgroups, pool admins): pool_id given, no domain. */
void http_audit_pool(http_req *req, int64_t pool_id, const char *object_type,
                     const char *object_name, const char *action, json_t *details);

#endif
