/*
 * http.h - the HTTP edge: REST API v1, Server-Sent Events, static web apps.
 *
 * evhttp on the core loop (plain and TLS listeners). Handlers run on the
 * core thread. Any subsystem adds its endpoints with http_route(); the route
 * table is also the source of /api/v1/openapi.json, so every route carries a
 * summary and the role it needs.
 */
#ifndef CW_HTTP_H
#define CW_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

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

/* Who is calling, once authenticated (session cookie or API token). */
struct auth_ctx {
    int64_t user_id;
    enum cw_role role;
    int64_t domain_id; /* for domain users */
    int64_t pool_id;   /* for pool admins */
    bool is_operator;
    char login[128];
    char name[128];
};

typedef struct http_req {
    struct evhttp_request *ev;
    const char *method;   /* "GET", "POST", ... */
    const char *path;     /* decoded path without query */
    char *params[8];      /* values of :name segments, in pattern order */
    int nparams;
    struct auth_ctx *auth; /* NULL on public routes without credentials */
    char ip[64];
    void *priv;
} http_req;

typedef void (*http_handler)(http_req *req);

enum {
    HTTP_PUBLIC = 1,  /* no authentication needed */
    HTTP_NO_AUDIT = 2 /* a write that is not an audited change (login, logout) */
};

/*
 * Register a route. pattern: "/api/v1/domains/:domain/users/:id".
 * min_role: the least powerful role allowed (checked before the handler;
 * tenant checks are the handler's job via http_domain_access()).
 */
void http_route(const char *method, const char *pattern, http_handler fn, enum cw_role min_role,
                unsigned flags, const char *summary);

int http_start(void);
/* Stop accepting; in-flight replies finish. */
void http_stop(void);

/* Body parsing: JSON object or 400 sent and NULL returned. */
json_t *http_json_body(http_req *req);
/* Raw body (uploads); len set; NULL if empty. Owned by the request. */
const unsigned char *http_body(http_req *req, size_t *len);
const char *http_query(http_req *req, const char *name); /* NULL if absent */
const char *http_header(http_req *req, const char *name);

/* Replies. json is stolen. */
void http_reply_json(http_req *req, int status, json_t *json);
/* {"error": {"code": code, "message": ..., "field": field}} */
void http_reply_error(http_req *req, int status, const char *code, const char *field,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void http_reply_bytes(http_req *req, int status, const char *content_type, const void *data,
                      size_t len);
void http_reply_file(http_req *req, const char *path, const char *content_type,
                     const char *download_name);
void http_add_header(http_req *req, const char *name, const char *value);

/*
 * Tenant check: may the caller act on this domain? Sends 404 and returns
 * false when the domain does not exist or is outside the caller's reach
 * (so other tenants' objects are not even confirmed to exist).
 */
bool http_domain_access(http_req *req, int64_t domain_id);
/* Resolve a :domain path value (id or name) to an id the caller may use. */
bool http_domain_param(http_req *req, int idx, int64_t *domain_id);

/* Record a change in the audit log (after it succeeded). details is stolen. */
void http_audit(http_req *req, int64_t domain_id, const char *object_type,
                const char *object_name, const char *action, json_t *details);

#endif
