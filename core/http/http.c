/*
 * http.c - the HTTP edge: listeners (plain and TLS), the route table,
 * request dispatch with its checks, replies, async replies and streams.
 *
 * Runs on the core thread. Owns every http_req from the moment evhttp hands
 * a request over until its reply (or stream) ends or the client goes away.
 * It never blocks: file bodies go out through evbuffer_add_file().
 */
#include "http/http.h"
#include "auth/auth.h"
#include "base/cw.h"
#include "config/config.h"
#include "http/http_int.h"
#include "log/log.h"
#include "loop/loop.h"
#include "metrics/metrics.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SEGS        16
#define STREAM_MAX_OUT  (1024 * 1024)
#define IDLE_TIMEOUT_S  60
#define MAX_HEADER_SIZE 16384

struct route {
    char *method;
    char *pattern;
    char *segs[MAX_SEGS];
    int nsegs;
    http_handler fn;
    enum cw_role min_role;
    unsigned flags;
    char *summary;
    json_t *schema;
    void *arg;
};

struct http_priv {
    const struct route *route;
    struct evkeyvalq query;
    bool query_parsed;
    struct auth_ctx auth;
    bool in_handler, async, replied, streaming;
    http_close_fn on_close;
    void *close_arg;
    struct evhttp_connection *evcon;
    char *path;
    char *raw_path;
};

struct full_req {
    http_req pub;
    struct http_priv priv;
};

struct listener {
    struct evhttp *http;
    bool tls;
};

static struct {
    struct route *routes;
    int nroutes, cap;
    struct listener plain, secure;
    SSL_CTX *ssl;
    int64_t started_ms;
    bool running;
    struct http_counters counters;
} H;

/* ------------------------------------------------------------------ roles */

static const char *const role_names[] = {
    [ROLE_NONE] = "none",
    [ROLE_SYSADMIN] = "sysadmin",
    [ROLE_POOL_SUPERVISOR] = "pool_supervisor",
    [ROLE_SUBGROUP_ADMIN] = "subgroup_admin",
    [ROLE_DOMAIN_ADMIN] = "domain_admin",
    [ROLE_SUPERVISOR] = "supervisor",
    [ROLE_OPERATOR] = "operator",
    [ROLE_SUBSCRIBER] = "subscriber",
};

const char *cw_role_name(enum cw_role r)
{
    return (unsigned)r < CW_ARRAY_LEN(role_names) ? role_names[r] : "none";
}

enum cw_role cw_role_parse(const char *s)
{
    for (size_t i = 1; s && i < CW_ARRAY_LEN(role_names); i++)
        if (!strcmp(role_names[i], s)) return (enum cw_role)i;
    return ROLE_NONE;
}

bool cw_role_at_least(enum cw_role r, enum cw_role min)
{
    return r != ROLE_NONE && r <= min;
}

/* ------------------------------------------------------------ route table */

static int split_path(char *path, char **segs, int max)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == max) return -1;
        segs[n++] = t;
    }
    return n;
}

static struct route *find_route(const char *method, const char *pattern)
{
    for (int i = 0; i < H.nroutes; i++)
        if (!strcmp(H.routes[i].method, method) && !strcmp(H.routes[i].pattern, pattern))
            return &H.routes[i];
    return NULL;
}

void http_route(const char *method, const char *pattern, http_handler fn, enum cw_role min_role,
                unsigned flags, const char *summary)
{
    http_route_with(method, pattern, fn, NULL, min_role, flags, summary);
}

void http_route_with(const char *method, const char *pattern, http_handler fn, void *arg,
                     enum cw_role min_role, unsigned flags, const char *summary)
{
    if (find_route(method, pattern)) {
        log_error("http", "route %s %s registered twice; keeping the first", method, pattern);
        return;
    }
    if (H.nroutes == H.cap) {
        H.cap = H.cap ? H.cap * 2 : 64;
        H.routes = cw_realloc(H.routes, sizeof *H.routes * (size_t)H.cap);
    }
    struct route *r = &H.routes[H.nroutes++];
    memset(r, 0, sizeof *r);
    r->method = cw_strdup(method);
    r->pattern = cw_strdup(pattern);
    char *copy = cw_strdup(pattern);
    char *segs[MAX_SEGS];
    r->nsegs = split_path(copy, segs, MAX_SEGS);
    for (int i = 0; i < r->nsegs; i++)
        r->segs[i] = cw_strdup(segs[i]);
    free(copy);
    r->fn = fn;
    r->arg = arg;
    r->min_role = min_role;
    r->flags = flags;
    r->summary = cw_strdup(summary ? summary : "");
}

void http_route_schema(const char *method, const char *pattern, json_t *schema)
{
    struct route *r = find_route(method, pattern);
    if (!r) {
        json_decref(schema);
        return;
    }
    json_decref(r->schema);
    r->schema = schema;
}

/* Match path segments against a route; fills params on success. */
static bool route_match(const struct route *r, char **segs, int nsegs, http_req *req)
{
    if (r->nsegs != nsegs) return false;
    int np = 0;
    for (int i = 0; i < nsegs; i++) {
        if (r->segs[i][0] == ':') {
            if (np < (int)CW_ARRAY_LEN(req->params)) req->params[np++] = segs[i];
        } else if (strcmp(r->segs[i], segs[i]) != 0) {
            return false;
        }
    }
    req->nparams = np;
    return true;
}

json_t *http_openapi(void)
{
    json_t *paths = json_object();
    for (int i = 0; i < H.nroutes; i++) {
        const struct route *r = &H.routes[i];
        cw_buf p;
        cw_buf_init(&p);
        json_t *params = json_array();
        for (int s = 0; s < r->nsegs; s++) {
            if (r->segs[s][0] == ':') {
                cw_buf_printf(&p, "/{%s}", r->segs[s] + 1);
                json_array_append_new(params, json_pack("{s:s,s:s,s:b,s:{s:s}}", "name",
                                                        r->segs[s] + 1, "in", "path", "required", 1,
                                                        "schema", "type", "string"));
            } else {
                cw_buf_printf(&p, "/%s", r->segs[s]);
            }
        }
        json_t *item = json_object_get(paths, p.data);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, p.data, item);
        }
        char lower[16];
        size_t k = 0;
        for (; r->method[k] && k + 1 < sizeof lower; k++)
            lower[k] = (char)(r->method[k] >= 'A' && r->method[k] <= 'Z' ? r->method[k] + 32
                                                                         : r->method[k]);
        lower[k] = '\0';
        const char *tag = r->nsegs > 2 ? r->segs[2] : "misc";
        json_t *op = json_pack("{s:s,s:s,s:[s],s:o,s:{s:{s:s},s:{s:s}}}", "summary", r->summary,
                               "operationId", r->pattern, "tags", tag, "parameters", params,
                               "responses", "200", "description", "success", "default",
                               "description", "error: {\"error\": {code, message, field}}");
        json_object_set_new(
            op, "x-min-role",
            json_string((r->flags & HTTP_PUBLIC) ? "public" : cw_role_name(r->min_role)));
        if (!(r->flags & HTTP_PUBLIC))
            json_object_set_new(op, "security", json_pack("[{s:[]},{s:[]}]", "session", "token"));
        if (r->schema)
            json_object_set_new(
                op, "requestBody",
                json_pack("{s:{s:{s:O}}}", "content", "application/json", "schema", r->schema));
        json_object_set_new(item, lower, op);
        cw_buf_free(&p);
    }
    return json_pack(
        "{s:s,s:{s:s,s:s,s:s},s:o,s:{s:{s:{s:s,s:s,s:s},s:{s:s,s:s}}}}", "openapi", "3.0.3", "info",
        "title", "Callwright API", "version", CW_VERSION, "description",
        "REST API v1 of the Callwright contact-center platform. Every error is "
        "{\"error\": {\"code\", \"message\", \"field\"}}.",
        "paths", paths, "components", "securitySchemes", "session", "type", "apiKey", "in",
        "cookie", "name", AUTH_SESSION_COOKIE, "token", "type", "http", "scheme", "bearer");
}

/* -------------------------------------------------------- request access */

static struct http_priv *priv(http_req *req)
{
    return req->p;
}

const char *http_header(http_req *req, const char *name)
{
    if (!req->ev) return NULL;
    return evhttp_find_header(evhttp_request_get_input_headers(req->ev), name);
}

const char *http_query(http_req *req, const char *name)
{
    struct http_priv *p = priv(req);
    if (!p->query_parsed) {
        p->query_parsed = true;
        TAILQ_INIT(&p->query);
        const char *q =
            req->ev ? evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req->ev)) : NULL;
        if (q && evhttp_parse_query_str(q, &p->query) != 0) {
            evhttp_clear_headers(&p->query);
            TAILQ_INIT(&p->query);
        }
    }
    return evhttp_find_header(&p->query, name);
}

bool http_query_only(http_req *req, const char *const *allowed)
{
    http_query(req, "");
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, &priv(req)->query, next)
    {
        bool ok = false;
        for (const char *const *a = allowed; a && *a; a++)
            if (!strcmp(*a, kv->key)) ok = true;
        if (!ok) {
            http_reply_error(req, 400, "unknown_parameter", kv->key,
                             "unknown query parameter \"%s\"", kv->key);
            return false;
        }
    }
    return true;
}

bool http_query_int(http_req *req, const char *name, int64_t def, int64_t *out)
{
    const char *v = http_query(req, name);
    if (!v) {
        *out = def;
        return true;
    }
    if (cw_parse_i64(v, out)) {
        http_reply_error(req, 400, "invalid_parameter", name, "%s must be an integer", name);
        return false;
    }
    return true;
}

bool http_page(http_req *req, int64_t *limit, int64_t *offset)
{
    if (!http_query_int(req, "limit", 50, limit) || !http_query_int(req, "offset", 0, offset))
        return false;
    if (*limit < 1 || *limit > 1000) {
        http_reply_error(req, 400, "invalid_parameter", "limit", "limit must be 1..1000");
        return false;
    }
    if (*offset < 0) {
        http_reply_error(req, 400, "invalid_parameter", "offset", "offset must be >= 0");
        return false;
    }
    return true;
}

const unsigned char *http_body(http_req *req, size_t *len)
{
    *len = 0;
    if (!req->ev) return NULL;
    struct evbuffer *b = evhttp_request_get_input_buffer(req->ev);
    *len = evbuffer_get_length(b);
    if (!*len) return NULL;
    return evbuffer_pullup(b, -1);
}

/*
 * Where the first repeated object key is: its object's path ("flow.menus.main.keys")
 * and the key, found by walking the text (which parsed, apart from the repeat).
 */
static bool duplicate_key(const char *s, size_t n, char *path, size_t plen, char *key, size_t klen)
{
    enum { MAXD = 48 };
    struct frame {
        bool object, want_key;
        long index;
        size_t key_at, key_len; /* the member being read */
        struct {
            size_t at, len;
        } * seen; /* keys of this object so far */
        size_t nseen, cap;
    } st[MAXD];
    int depth = 0;
    bool found = false;
    for (size_t i = 0; i < n && !found; i++) {
        char ch = s[i];
        struct frame *f = depth ? &st[depth - 1] : NULL;
        if (ch == '{' || ch == '[') {
            if (depth == MAXD) break;
            st[depth++] = (struct frame){.object = ch == '{', .want_key = ch == '{'};
        } else if (ch == '}' || ch == ']') {
            if (!depth) break;
            free(st[--depth].seen);
        } else if (ch == ',') {
            if (f && f->object) f->want_key = true;
            if (f && !f->object) f->index++;
        } else if (ch == '"') {
            size_t start = ++i;
            while (i < n && s[i] != '"')
                i += s[i] == '\\' ? 2 : 1;
            if (!f || !f->object || !f->want_key) continue;
            size_t len = i - start;
            for (size_t k = 0; k < f->nseen; k++)
                if (f->seen[k].len == len && !memcmp(s + f->seen[k].at, s + start, len))
                    found = true;
            if (found) {
                cw_buf b;
                cw_buf_init(&b);
                for (int d = 0; d < depth - 1; d++) {
                    if (st[d].object)
                        cw_buf_printf(&b, "%s%.*s", b.len ? "." : "", (int)st[d].key_len,
                                      s + st[d].key_at);
                    else
                        cw_buf_printf(&b, "[%ld]", st[d].index);
                }
                snprintf(path, plen, "%s", b.len ? b.data : "");
                snprintf(key, klen, "%.*s", (int)len, s + start);
                cw_buf_free(&b);
                break;
            }
            if (f->nseen == f->cap) {
                f->cap = f->cap ? f->cap * 2 : 8;
                f->seen = cw_realloc(f->seen, f->cap * sizeof *f->seen);
            }
            f->seen[f->nseen].at = start;
            f->seen[f->nseen++].len = len;
            f->key_at = start;
            f->key_len = len;
            f->want_key = false;
        }
    }
    while (depth > 0)
        free(st[--depth].seen);
    return found;
}

json_t *http_json_body(http_req *req)
{
    size_t len;
    const unsigned char *data = http_body(req, &len);
    if (!data) {
        http_reply_error(req, 400, "invalid_json", NULL, "the request needs a JSON object body");
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &err);
    char path[256], key[128];
    if (!j && strstr(err.text, "duplicate") &&
        duplicate_key((const char *)data, len, path, sizeof path, key, sizeof key)) {
        char field[128], msg[512];
        snprintf(field, sizeof field, "%.*s", (int)strcspn(path, ".["), path);
        snprintf(msg, sizeof msg, "%s%skey \"%s\" is used twice", path, path[0] ? ": " : "", key);
        http_reply_error_with(req, 400, "invalid_json", path[0] ? field : key,
                              json_pack("{s:s}", "path", path), msg);
        return NULL;
    }
    if (!j) {
        http_reply_error(req, 400, "invalid_json", NULL, "malformed JSON at line %d column %d: %s",
                         err.line, err.column, err.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        http_reply_error(req, 400, "invalid_json", NULL, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

static const char *kind_name(enum json_kind k)
{
    switch (k) {
    case JK_STRING:
        return "a string";
    case JK_INT:
        return "an integer";
    case JK_BOOL:
        return "true or false";
    case JK_ARRAY:
        return "an array";
    case JK_OBJECT:
        return "an object";
    }
    return "?";
}

static bool kind_ok(enum json_kind k, json_t *v)
{
    switch (k) {
    case JK_STRING:
        return json_is_string(v);
    case JK_INT:
        return json_is_integer(v);
    case JK_BOOL:
        return json_is_boolean(v);
    case JK_ARRAY:
        return json_is_array(v);
    case JK_OBJECT:
        return json_is_object(v);
    }
    return false;
}

bool http_json_check(http_req *req, json_t *obj, const struct json_field *fields, int n)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int i = 0;
        while (i < n && strcmp(fields[i].name, key) != 0)
            i++;
        if (i == n) {
            http_reply_error(req, 400, "unknown_field", key, "unknown field \"%s\"", key);
            return false;
        }
        if (!kind_ok(fields[i].kind, v)) {
            http_reply_error(req, 400, "invalid_type", key, "%s must be %s", key,
                             kind_name(fields[i].kind));
            return false;
        }
    }
    for (int i = 0; i < n; i++) {
        if (fields[i].required && !json_object_get(obj, fields[i].name)) {
            http_reply_error(req, 400, "missing_field", fields[i].name, "%s is required",
                             fields[i].name);
            return false;
        }
    }
    return true;
}

/* ----------------------------------------------------------------- replies */

static void req_free(http_req *req)
{
    struct http_priv *p = priv(req);
    if (p->query_parsed) evhttp_clear_headers(&p->query);
    free(p->path);
    free(p->raw_path);
    free(req);
}

/* After a final reply: free now, or let the dispatcher free it on return. */
static void req_done(http_req *req)
{
    struct http_priv *p = priv(req);
    p->replied = true;
    if (!p->in_handler) req_free(req);
}

static void detach_close(http_req *req)
{
    struct http_priv *p = priv(req);
    if ((p->async || p->streaming) && p->evcon && req->ev)
        evhttp_connection_set_closecb(p->evcon, NULL, NULL);
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "";
    }
}

void http_add_header(http_req *req, const char *name, const char *value)
{
    if (req->ev) evhttp_add_header(evhttp_request_get_output_headers(req->ev), name, value);
}

/* Every reply counts in cw_http_requests_total{method,status}. */
static void count_request(const http_req *req, int status)
{
    static metric *requests;
    if (!requests)
        requests =
            metrics_counter("cw_http_requests_total", "API requests answered", "method,status");
    char code[12];
    snprintf(code, sizeof code, "%d", status);
    metrics_add(requests, 1, req->method ? req->method : "?", code);
}

static void send_buffer(http_req *req, int status, struct evbuffer *buf)
{
    if (priv(req)->replied) {
        log_error("http", "%s %s: second reply ignored", req->method, req->path);
        return;
    }
    detach_close(req);
    count_request(req, status);
    if (status >= 100 && status < 600) H.counters.status[status / 100]++;
    if (req->ev) evhttp_send_reply(req->ev, status, reason(status), buf);
    req_done(req);
}

void http_reply_bytes(http_req *req, int status, const char *content_type, const void *data,
                      size_t len)
{
    struct evbuffer *buf = evbuffer_new();
    if (len) evbuffer_add(buf, data, len);
    if (content_type) http_add_header(req, "Content-Type", content_type);
    send_buffer(req, status, buf);
    evbuffer_free(buf);
}

void http_reply_json(http_req *req, int status, json_t *json)
{
    cw_buf text;
    cw_buf_init(&text);
    if (http_json_text(&text, json))
        log_error("http", "%s %s: reply not encodable", req->method, req->path);
    json_decref(json);
    http_reply_bytes(req, status, "application/json", text.data, text.len);
    cw_buf_free(&text);
}

void http_reply_error_with(http_req *req, int status, const char *code, const char *field,
                           json_t *extra, const char *message)
{
    json_t *e = json_pack("{s:s,s:s}", "code", code, "message", message);
    if (field) json_object_set_new(e, "field", json_string(field));
    if (extra) json_object_update(e, extra);
    json_decref(extra);
    if (status >= 500)
        log_error("http", "%s %s -> %d %s", req->method, req->path, status, message);
    else
        log_debug("http", "%s %s -> %d %s%s%s", req->method, req->path, status, code,
                  field ? " field=" : "", field ? field : "");
    http_reply_json(req, status, json_pack("{s:o}", "error", e));
}

void http_reply_error(http_req *req, int status, const char *code, const char *field,
                      const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_reply_error_with(req, status, code, field, NULL, msg);
}

void http_reply_file(http_req *req, const char *path, const char *content_type,
                     const char *download_name)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0) close(fd);
        http_reply_error(req, 404, "not_found", NULL, "no such file");
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    if (sb.st_size > 0 && evbuffer_add_file(buf, fd, 0, sb.st_size) != 0) {
        evbuffer_free(buf);
        http_reply_error(req, 500, "internal", NULL, "cannot send file");
        return;
    }
    if (sb.st_size == 0) close(fd);
    if (content_type) http_add_header(req, "Content-Type", content_type);
    if (download_name) {
        char cd[300];
        snprintf(cd, sizeof cd, "attachment; filename=\"%s\"", download_name);
        http_add_header(req, "Content-Disposition", cd);
    }
    send_buffer(req, 200, buf);
    evbuffer_free(buf);
}

/* ----------------------------------------------------- async and streams */

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    http_req *req = arg;
    struct http_priv *p = priv(req);
    /*
     * A failed connection detaches the unfinished request and leaves it to
     * us; when the whole server goes down it stays attached and evhttp
     * frees it right after this callback.
     */
    if (req->ev && !evhttp_request_get_connection(req->ev)) evhttp_request_free(req->ev);
    req->ev = NULL;
    p->evcon = NULL;
    if (p->streaming && !p->replied) {
        p->replied = true;
        if (p->on_close) p->on_close(req, p->close_arg);
        req_free(req);
    }
    /* an async request waits for its reply, which then only frees it */
}

void http_async(http_req *req)
{
    struct http_priv *p = priv(req);
    if (p->async) return;
    p->async = true;
    if (p->evcon) evhttp_connection_set_closecb(p->evcon, on_conn_close, req);
}

void http_stream_start(http_req *req, const char *content_type, http_close_fn on_close, void *arg)
{
    struct http_priv *p = priv(req);
    p->streaming = true;
    p->on_close = on_close;
    p->close_arg = arg;
    if (!req->ev) return;
    evhttp_connection_set_closecb(p->evcon, on_conn_close, req);
    /* no idle timeout on a stream: heartbeats keep it honest */
    evhttp_connection_set_timeout(p->evcon, 0);
    http_add_header(req, "Content-Type", content_type);
    http_add_header(req, "Cache-Control", "no-store");
    http_add_header(req, "X-Accel-Buffering", "no");
    count_request(req, 200);
    H.counters.status[2]++;
    evhttp_send_reply_start(req->ev, 200, "OK");
}

int http_stream_send(http_req *req, const void *data, size_t len)
{
    struct http_priv *p = priv(req);
    if (!req->ev || p->replied) return CW_ESTATE;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(p->evcon);
    if (bev && evbuffer_get_length(bufferevent_get_output(bev)) > STREAM_MAX_OUT) {
        log_warn("http", "stream to %s too slow; closing it", req->ip);
        return CW_EBUSY;
    }
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, data, len);
    evhttp_send_reply_chunk(req->ev, buf);
    evbuffer_free(buf);
    return CW_OK;
}

void http_stream_end(http_req *req)
{
    struct http_priv *p = priv(req);
    if (p->replied) return;
    if (req->ev) {
        evhttp_connection_set_closecb(p->evcon, NULL, NULL);
        evhttp_send_reply_end(req->ev);
    }
    req_done(req);
}

/* ----------------------------------------------------------- static files */

static const char *mime_of(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
        {".wav", "audio/wav"},
        {".mp3", "audio/mpeg"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < CW_ARRAY_LEN(types); i++)
        if (!strcmp(dot, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

static void serve_static(http_req *req, char **segs, int nsegs)
{
    cw_buf b;
    cw_buf_init(&b);
    cw_buf_puts(&b, config_str("http.web_root"));
    for (int i = 0; i < nsegs; i++) {
        if (segs[i][0] == '.' || strchr(segs[i], '\\')) {
            cw_buf_free(&b);
            http_reply_error(req, 404, "not_found", NULL, "no such page");
            return;
        }
        cw_buf_printf(&b, "/%s", segs[i]);
    }
    struct stat sb;
    if (stat(b.data, &sb) == 0 && S_ISDIR(sb.st_mode)) cw_buf_puts(&b, "/index.html");
    /* "/reset" and other app paths without an extension map to NAME.html */
    if (stat(b.data, &sb) != 0 && nsegs > 0 && !strchr(segs[nsegs - 1], '.'))
        cw_buf_puts(&b, ".html");
    http_reply_file(req, b.data, mime_of(b.data), NULL);
    cw_buf_free(&b);
}

/* ---------------------------------------------------------------- dispatch */

static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "OTHER";
    }
}

static void set_peer(http_req *req, struct evhttp_connection *evcon)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evcon, &addr, &port);
    cw_strlcpy(req->ip, addr ? addr : "", sizeof req->ip);
}

/* Route lookup: the route, or NULL with *path_known set when only the method differs. */
static const struct route *lookup(http_req *req, char **segs, int nsegs, bool *path_known,
                                  cw_buf *allow)
{
    const char *m = !strcmp(req->method, "HEAD") ? "GET" : req->method;
    *path_known = false;
    for (int i = 0; i < H.nroutes; i++) {
        if (!route_match(&H.routes[i], segs, nsegs, req)) continue;
        if (!strcmp(H.routes[i].method, m)) return &H.routes[i];
        *path_known = true;
        cw_buf_printf(allow, "%s%s", allow->len ? ", " : "", H.routes[i].method);
    }
    req->nparams = 0;
    return NULL;
}

static bool body_within_limit(http_req *req, const struct route *r)
{
    size_t len = req->ev ? evbuffer_get_length(evhttp_request_get_input_buffer(req->ev)) : 0;
    bool upload = r && (r->flags & HTTP_UPLOAD);
    const char *key = upload ? "http.max_upload" : "http.max_body";
    int64_t limit = config_int(key);
    if ((int64_t)len <= limit) return true;
    http_add_header(req, "Connection", "close");
    char msg[160];
    snprintf(msg, sizeof msg, "request body of %zu bytes exceeds the limit of %lld bytes (%s)", len,
             (long long)limit, key);
    /* the limit in numbers too, for clients that split or shrink what they send */
    http_reply_error_with(req, 413, "body_too_large", NULL,
                          json_pack("{s:I,s:s}", "limit", (json_int_t)limit, "setting", key), msg);
    return false;
}

static void dispatch(http_req *req, char **segs, int nsegs)
{
    struct http_priv *p = priv(req);
    bool api = nsegs >= 1 && !strcmp(segs[0], "api");
    if (api || (nsegs == 1 && !strcmp(segs[0], "health")))
        http_add_header(req, "Cache-Control", "no-store");
    bool path_known;
    cw_buf allow;
    cw_buf_init(&allow);
    const struct route *r = lookup(req, segs, nsegs, &path_known, &allow);
    if (!r) {
        if (path_known) {
            http_add_header(req, "Allow", allow.data);
            http_reply_error(req, 405, "method_not_allowed", NULL, "%s is not allowed here",
                             req->method);
        } else if (api || (strcmp(req->method, "GET") && strcmp(req->method, "HEAD"))) {
            http_reply_error(req, 404, "not_found", NULL, "no such endpoint");
        } else {
            serve_static(req, segs, nsegs);
        }
        cw_buf_free(&allow);
        return;
    }
    cw_buf_free(&allow);
    p->route = r;
    if (!body_within_limit(req, r)) return;

    int rc = auth_authenticate(req, &p->auth);
    if (rc == CW_OK) req->auth = &p->auth;
    if (!(r->flags & HTTP_PUBLIC)) {
        if (!req->auth) {
            http_reply_error(req, 401, "unauthenticated", NULL,
                             rc == CW_EPERM ? "the session or token is invalid or expired"
                                            : "log in first");
            return;
        }
        if (!cw_role_at_least(req->auth->role, r->min_role)) {
            http_reply_error(req, 403, "forbidden", NULL, "this needs the %s role or higher",
                             cw_role_name(r->min_role));
            return;
        }
    }
    req->priv = r->arg;
    r->fn(req);
}

static void on_request(struct evhttp_request *ev, void *arg)
{
    struct listener *l = arg;
    struct full_req *f = cw_calloc(1, sizeof *f);
    http_req *req = &f->pub;
    struct http_priv *p = &f->priv;
    req->p = p;
    req->ev = ev;
    req->tls = l->tls;
    req->method = method_name(evhttp_request_get_command(ev));
    p->evcon = evhttp_request_get_connection(ev);
    set_peer(req, p->evcon);
    p->in_handler = true;
    H.counters.requests++;
    http_add_header(req, "X-Content-Type-Options", "nosniff");

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
    size_t dlen = 0;
    p->path = raw ? evhttp_uridecode(raw, 0, &dlen) : NULL;
    char *segs[MAX_SEGS];
    int nsegs = -1;
    if (p->path && strlen(p->path) == dlen && p->path[0] == '/') {
        p->raw_path = cw_strdup(p->path);
        nsegs = split_path(p->raw_path, segs, MAX_SEGS);
    }
    req->path = p->path ? p->path : "";
    int64_t t0 = cw_mono_us();
    if (nsegs < 0)
        http_reply_error(req, 400, "bad_path", NULL, "malformed request path");
    else
        dispatch(req, segs, nsegs);
    p->in_handler = false;
    if (log_enabled("http", LOG_DEBUG))
        log_debug("http", "%s %s %s %.1f ms%s", req->ip, req->method, req->path,
                  (double)(cw_mono_us() - t0) / 1000.0,
                  p->replied ? "" : (p->streaming ? " (stream)" : " (async)"));
    if (p->replied) {
        req_free(req);
    } else if (!p->async && !p->streaming) {
        http_reply_error(req, 500, "internal", NULL, "the handler did not reply");
        req_free(req);
    }
}

/* ------------------------------------------------------------- listeners */

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    SSL *ssl = SSL_new(arg);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev) bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static int listen_on(struct listener *l, const char *addr, int64_t port, bool tls)
{
    l->http = evhttp_new(loop_base());
    l->tls = tls;
    if (!l->http) return CW_ENOMEM;
    evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_OPTIONS);
    /* hard ceiling; the per-route limits below it get a JSON 413 */
    int64_t cap = CW_MAX(config_int("http.max_body"), config_int("http.max_upload")) + 65536;
    evhttp_set_max_body_size(l->http, (ev_ssize_t)cap);
    evhttp_set_max_headers_size(l->http, MAX_HEADER_SIZE);
    evhttp_set_timeout(l->http, IDLE_TIMEOUT_S);
    evhttp_set_gencb(l->http, on_request, l);
    if (tls) evhttp_set_bevcb(l->http, tls_bev, H.ssl);
    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(l->http, addr, (ev_uint16_t)port);
    if (!bound) {
        log_error("http", "cannot listen on %s:%lld%s", addr, (long long)port, tls ? " (TLS)" : "");
        evhttp_free(l->http);
        l->http = NULL;
        return CW_EIO;
    }
    /*
     * Replies go out as headers and body in two writes; with Nagle the body
     * of a keep-alive reply waits for the client's delayed ACK of the
     * headers (40 ms). Accepted connections inherit this from the listener.
     */
    int one = 1;
    if (setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one))
        log_warn("http", "TCP_NODELAY on %s:%lld: %s", addr, (long long)port, strerror(errno));
    log_info("http", "listening on %s://%s:%lld", tls ? "https" : "http", addr, (long long)port);
    return CW_OK;
}

static int tls_context(void)
{
    const char *cert = config_str("http.tls_cert"), *key = config_str("http.tls_key");
    H.ssl = SSL_CTX_new(TLS_server_method());
    if (!H.ssl) return CW_ENOMEM;
    SSL_CTX_set_min_proto_version(H.ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(H.ssl, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(H.ssl, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(H.ssl, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(H.ssl) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof e);
        log_error("http", "TLS certificate %s / key %s: %s", cert, key, e);
        SSL_CTX_free(H.ssl);
        H.ssl = NULL;
        return CW_EINVAL;
    }
    return CW_OK;
}

int http_start(void)
{
    static bool builtins;
    if (H.running) return CW_OK;
    if (!builtins) {
        builtins = true;
        http_builtin_init();
    }
    H.started_ms = cw_mono_ms();
    const char *addr = config_str("http.listen");
    int64_t port = config_int("http.port"), tls_port = config_int("http.tls_port");
    if (port == 0 && tls_port == 0) {
        log_error("http", "neither http.port nor http.tls_port is set");
        return CW_EINVAL;
    }
    if (port && listen_on(&H.plain, addr, port, false)) return CW_EIO;
    if (tls_port) {
        if (!*config_str("http.tls_cert") || !*config_str("http.tls_key")) {
            log_error("http", "http.tls_port needs http.tls_cert and http.tls_key");
            http_stop();
            return CW_EINVAL;
        }
        if (tls_context() || listen_on(&H.secure, addr, tls_port, true)) {
            http_stop();
            return CW_EIO;
        }
    }
    H.running = true;
    return CW_OK;
}

void http_stop(void)
{
    http_sse_shutdown(); /* streams end cleanly before their connections go */
    if (H.plain.http) evhttp_free(H.plain.http);
    if (H.secure.http) evhttp_free(H.secure.http);
    H.plain.http = H.secure.http = NULL;
    if (H.ssl) SSL_CTX_free(H.ssl);
    H.ssl = NULL;
    H.running = false;
}

void http_get_counters(struct http_counters *out)
{
    *out = H.counters;
    out->streams = http_sse_clients();
}

int64_t http_uptime_ms(void)
{
    return cw_mono_ms() - H.started_ms;
}

void http_routes_free(void)
{
    for (int i = 0; i < H.nroutes; i++) {
        struct route *r = &H.routes[i];
        free(r->method);
        free(r->pattern);
        free(r->summary);
        for (int s = 0; s < r->nsegs; s++)
            free(r->segs[s]);
        json_decref(r->schema);
    }
    free(H.routes);
    H.routes = NULL;
    H.nroutes = H.cap = 0;
}
