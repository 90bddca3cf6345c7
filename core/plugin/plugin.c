/*
 * plugin.c - the plugin loader and the host API handed to plugins.
 *
 * Owns the loaded plugins. A plugin's registrations made during init are
 * staged and applied only if init returns 0, so a refused plugin leaves no
 * route or Lua module behind; its event subscriptions are dropped. A
 * plugin whose code has run is never unloaded (it may have left timers on
 * the loop), only a file refused before init is closed again.
 */
#include "plugin/plugin.h"
#include "base/cw.h"
#include "config/config.h"
#include "events/events.h"
#include "http/http.h"
#include "log/log.h"
#include "loop/loop.h"
#include "lua/script.h"
#include "metrics/metrics.h"

#include <callwright/plugin.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * The HTTP edge is optional here: programs that link the core without it
 * (test hosts, tools) can still load plugins, whose routes are then refused.
 * In the daemon these resolve to the edge.
 */
#pragma weak http_route
#pragma weak http_query
#pragma weak http_header
#pragma weak http_body
#pragma weak http_add_header
#pragma weak http_reply_bytes
#pragma weak http_reply_json
#pragma weak http_reply_error
#pragma weak cw_role_name
#pragma weak cw_role_parse

_Static_assert((int)CW_PLUGIN_LOG_ERROR == (int)LOG_ERROR &&
                   (int)CW_PLUGIN_LOG_WARN == (int)LOG_WARN &&
                   (int)CW_PLUGIN_LOG_INFO == (int)LOG_INFO &&
                   (int)CW_PLUGIN_LOG_DEBUG == (int)LOG_DEBUG,
               "plugin log levels follow log.h");

struct staged_route {
    char *method, *pattern, *summary;
    cw_plugin_http_fn fn;
    enum cw_role role;
    unsigned flags;
};

struct staged_module {
    char *name;
    lua_CFunction open;
};

struct staged_collector {
    void (*fn)(void *);
    void *arg;
};

struct psub {
    int id;
    cw_plugin_event_fn fn;
    void *arg;
    struct plugin *owner; /* NULL once its plugin is running */
};

struct plugin {
    char name[64];
    char path[1024];
    void *dl;
    const struct cw_plugin *info;
    struct staged_route *routes;
    int nroutes;
    struct staged_module *mods;
    int nmods;
    struct staged_collector *cols;
    int ncols;
};

static struct {
    struct plugin **list;
    int n;
    struct plugin *initing; /* the plugin whose init is running */
    struct psub **subs;
    int nsubs;
} P;

/* ---- the host API ---- */

static void host_log(const char *plugin, int level, const char *fmt, ...)
{
    if (level < LOG_ERROR) level = LOG_ERROR;
    if (level > LOG_TRACE) level = LOG_TRACE;
    char sub[24];
    cw_strlcpy(sub, plugin && *plugin ? plugin : "plugin", sizeof sub);
    if (!log_enabled(sub, (enum log_level)level)) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_write(sub, (enum log_level)level, "%s", msg);
}

static void on_event(const cw_event *ev, void *arg)
{
    struct psub *s = arg;
    struct cw_plugin_event pe = {.id = ev->id,
                                 .ts_ms = ev->ts_ms,
                                 .domain_id = ev->domain_id,
                                 .type = ev->type,
                                 .data = ev->data};
    s->fn(&pe, s->arg);
}

/*
 * Subscriptions made during a plugin's init belong to it (dropped if init
 * fails); later ones (from its callbacks) are kept until the daemon stops.
 */
static int host_subscribe(const char *prefix, cw_plugin_event_fn fn, void *arg)
{
    if (!fn) return -1;
    struct psub *s = cw_calloc(1, sizeof *s);
    s->fn = fn;
    s->arg = arg;
    s->owner = P.initing;
    s->id = events_subscribe(prefix ? prefix : "", on_event, s);
    P.subs = cw_realloc(P.subs, sizeof *P.subs * (size_t)(P.nsubs + 1));
    P.subs[P.nsubs++] = s;
    return s->id;
}

static void drop_sub(int i)
{
    events_unsubscribe(P.subs[i]->id);
    free(P.subs[i]);
    P.subs[i] = P.subs[--P.nsubs];
}

static void host_unsubscribe(int id)
{
    for (int i = 0; i < P.nsubs; i++)
        if (P.subs[i]->id == id) {
            drop_sub(i);
            return;
        }
}

static void host_emit(const char *type, int64_t domain_id, json_t *data)
{
    if (!type || !*type) {
        json_decref(data);
        return;
    }
    events_emit(type, domain_id, data);
}

static int host_http_route(const char *method, const char *pattern, cw_plugin_http_fn fn,
                           const char *role, const char *summary)
{
    struct plugin *p = P.initing;
    if (!p || !method || !pattern || !fn || !role) {
        log_error("plugin", "http_route: only during init, with method, pattern, handler and role");
        return -1;
    }
    if (!http_route) {
        log_error("plugin", "%s: http_route %s %s: this program has no HTTP edge", p->name, method,
                  pattern);
        return -1;
    }
    unsigned flags = 0;
    enum cw_role r;
    if (strcmp(role, "public") == 0) {
        flags = HTTP_PUBLIC;
        r = ROLE_SUBSCRIBER;
    } else if ((r = cw_role_parse(role)) == ROLE_NONE) {
        log_error("plugin", "%s: http_route %s %s: unknown role \"%s\"", p->name, method, pattern,
                  role);
        return -1;
    }
    p->routes = cw_realloc(p->routes, sizeof *p->routes * (size_t)(p->nroutes + 1));
    struct staged_route *s = &p->routes[p->nroutes++];
    s->method = cw_strdup(method);
    s->pattern = cw_strdup(pattern);
    s->summary = cw_strdup(summary ? summary : "");
    s->fn = fn;
    s->role = r;
    s->flags = flags;
    return 0;
}

static const char *host_http_method(struct http_req *req)
{
    return req->method;
}

static const char *host_http_path(struct http_req *req)
{
    return req->path;
}

static const char *host_http_param(struct http_req *req, int idx)
{
    return idx >= 0 && idx < req->nparams ? req->params[idx] : NULL;
}

static const char *host_http_query(struct http_req *req, const char *name)
{
    return http_query(req, name);
}

static const char *host_http_header(struct http_req *req, const char *name)
{
    return http_header(req, name);
}

static const unsigned char *host_http_body(struct http_req *req, size_t *len)
{
    return http_body(req, len);
}

static const char *host_http_role(struct http_req *req)
{
    return req->auth ? cw_role_name(req->auth->role) : "";
}

static int64_t host_http_domain(struct http_req *req)
{
    return req->auth ? req->auth->domain_id : 0;
}

static void host_http_add_header(struct http_req *req, const char *name, const char *value)
{
    http_add_header(req, name, value);
}

static void host_http_reply(struct http_req *req, int status, const char *content_type,
                            const void *data, size_t len)
{
    http_reply_bytes(req, status, content_type, data, len);
}

static void host_http_reply_json(struct http_req *req, int status, json_t *json)
{
    http_reply_json(req, status, json);
}

static void host_http_reply_error(struct http_req *req, int status, const char *code,
                                  const char *message)
{
    http_reply_error(req, status, code, NULL, "%s", message ? message : "");
}

static void host_lua_module(const char *name, lua_CFunction open)
{
    struct plugin *p = P.initing;
    if (!p || !name || !open) {
        log_error("plugin", "lua_module: only during init, with a name and an open function");
        return;
    }
    p->mods = cw_realloc(p->mods, sizeof *p->mods * (size_t)(p->nmods + 1));
    p->mods[p->nmods].name = cw_strdup(name);
    p->mods[p->nmods].open = open;
    p->nmods++;
}

static const char *host_config_str(const char *key)
{
    return key && config_kind(key) == 's' ? config_str(key) : NULL;
}

static int host_config_int(const char *key, int64_t *out)
{
    if (!key || config_kind(key) != 'i') return -1;
    *out = config_int(key);
    return 0;
}

static int host_config_bool(const char *key, bool *out)
{
    if (!key || config_kind(key) != 'b') return -1;
    *out = config_bool(key);
    return 0;
}

static struct metric *host_metric_counter(const char *name, const char *help, const char *labels)
{
    return metrics_counter(name, help, labels);
}

static struct metric *host_metric_gauge(const char *name, const char *help, const char *labels)
{
    return metrics_gauge(name, help, labels);
}

static void host_metrics_on_collect(void (*fn)(void *), void *arg)
{
    struct plugin *p = P.initing;
    if (!p || !fn) {
        log_error("plugin", "metrics_on_collect: only during init");
        return;
    }
    p->cols = cw_realloc(p->cols, sizeof *p->cols * (size_t)(p->ncols + 1));
    p->cols[p->ncols].fn = fn;
    p->cols[p->ncols].arg = arg;
    p->ncols++;
}

static char *host_metrics_render(size_t *len)
{
    cw_buf b;
    cw_buf_init(&b);
    cw_buf_puts(&b, "");
    metrics_render(&b);
    if (len) *len = b.len;
    return cw_buf_steal(&b);
}

static const struct cw_host host = {
    .abi = CW_PLUGIN_ABI,
    .size = sizeof(struct cw_host),
    .version = CW_VERSION,
    .log = host_log,
    .subscribe = host_subscribe,
    .unsubscribe = host_unsubscribe,
    .emit = host_emit,
    .http_route = host_http_route,
    .http_method = host_http_method,
    .http_path = host_http_path,
    .http_param = host_http_param,
    .http_query = host_http_query,
    .http_header = host_http_header,
    .http_body = host_http_body,
    .http_role = host_http_role,
    .http_domain = host_http_domain,
    .http_add_header = host_http_add_header,
    .http_reply = host_http_reply,
    .http_reply_json = host_http_reply_json,
    .http_reply_error = host_http_reply_error,
    .lua_module = host_lua_module,
    .config_str = host_config_str,
    .config_int = host_config_int,
    .config_bool = host_config_bool,
    .metric_counter = host_metric_counter,
    .metric_gauge = host_metric_gauge,
    .metric_add = metrics_addv,
    .metric_set = metrics_setv,
    .metrics_on_collect = host_metrics_on_collect,
    .metrics_render = host_metrics_render,
    .loop_base = loop_base,
    .free = free,
};

/* ---- loading ---- */

static void staged_free(struct plugin *p)
{
    for (int i = 0; i < p->nroutes; i++) {
        free(p->routes[i].method);
        free(p->routes[i].pattern);
        free(p->routes[i].summary);
    }
    free(p->routes);
    p->routes = NULL;
    p->nroutes = 0;
    for (int i = 0; i < p->nmods; i++)
        free(p->mods[i].name);
    free(p->mods);
    p->mods = NULL;
    p->nmods = 0;
    free(p->cols);
    p->cols = NULL;
    p->ncols = 0;
}

/* Drop p's subscriptions (p NULL: all of them). */
static void drop_subs(struct plugin *p)
{
    for (int i = P.nsubs - 1; i >= 0; i--)
        if (!p || P.subs[i]->owner == p) drop_sub(i);
}

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 48) return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-'))
            return false;
    return true;
}

bool plugin_loaded(const char *name)
{
    for (int i = 0; i < P.n; i++)
        if (strcmp(P.list[i]->name, name) == 0) return true;
    return false;
}

int plugin_load(const char *name, char *err, size_t errlen)
{
    if (!name_ok(name)) {
        snprintf(err, errlen, "plugin name \"%s\": use letters, digits, _ and - only", name);
        return CW_EINVAL;
    }
    if (plugin_loaded(name)) {
        snprintf(err, errlen, "plugin %s is already loaded", name);
        return CW_EEXIST;
    }
    struct plugin *p = cw_calloc(1, sizeof *p);
    cw_strlcpy(p->name, name, sizeof p->name);
    snprintf(p->path, sizeof p->path, "%s/%s.so", config_str("plugin_dir"), name);
    struct stat sb;
    if (stat(p->path, &sb) != 0) {
        snprintf(err, errlen, "plugin %s: %s: no such file", name, p->path);
        free(p);
        return CW_ENOENT;
    }
    p->dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        snprintf(err, errlen, "plugin %s: cannot load %s: %s", name, p->path, dlerror());
        free(p);
        return CW_EINVAL;
    }
    p->info = dlsym(p->dl, CW_PLUGIN_SYMBOL);
    if (!p->info) {
        snprintf(err, errlen, "plugin %s: %s has no %s symbol: not a Callwright plugin", name,
                 p->path, CW_PLUGIN_SYMBOL);
        dlclose(p->dl);
        free(p);
        return CW_EINVAL;
    }
    if (p->info->abi != CW_PLUGIN_ABI) {
        snprintf(err, errlen,
                 "plugin %s: %s was built for plugin ABI %d, this daemon speaks ABI %d; "
                 "rebuild it against this version's callwright/plugin.h",
                 name, p->path, p->info->abi, CW_PLUGIN_ABI);
        dlclose(p->dl);
        free(p);
        return CW_EINVAL;
    }
    if (!p->info->init) {
        snprintf(err, errlen, "plugin %s: %s has no init function", name, p->path);
        dlclose(p->dl);
        free(p);
        return CW_EINVAL;
    }
    P.initing = p;
    int rc = p->info->init(&host);
    P.initing = NULL;
    if (rc != 0) {
        snprintf(err, errlen, "plugin %s: %s: init refused (%d)", name, p->path, rc);
        drop_subs(p);
        staged_free(p);
        /* its code has run: it stays mapped, but nothing refers to it */
        free(p);
        return CW_EINVAL;
    }
    for (int i = 0; i < p->nroutes; i++) {
        struct staged_route *s = &p->routes[i];
        http_route(s->method, s->pattern, s->fn, s->role, s->flags, s->summary);
    }
    for (int i = 0; i < p->nmods; i++)
        script_add_module(p->mods[i].name, p->mods[i].open);
    for (int i = 0; i < p->ncols; i++)
        metrics_on_collect(p->cols[i].fn, p->cols[i].arg);
    staged_free(p);
    for (int i = 0; i < P.nsubs; i++)
        if (P.subs[i]->owner == p) P.subs[i]->owner = NULL;
    P.list = cw_realloc(P.list, sizeof *P.list * (size_t)(P.n + 1));
    P.list[P.n++] = p;
    log_info("plugin", "loaded %s %s from %s%s%s", name, p->info->version ? p->info->version : "",
             p->path, p->info->description ? ": " : "",
             p->info->description ? p->info->description : "");
    return CW_OK;
}

int plugins_load_config(void)
{
    const char *const *names;
    int n = config_list("plugins", &names);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        char err[1400];
        if (plugin_load(names[i], err, sizeof err) == CW_OK)
            ok++;
        else
            log_error("plugin", "%s; starting without it", err);
    }
    return ok;
}

void plugins_shutdown(void)
{
    for (int i = P.n - 1; i >= 0; i--) {
        struct plugin *p = P.list[i];
        if (p->info->shutdown) p->info->shutdown();
        free(p);
    }
    drop_subs(NULL);
    free(P.subs);
    free(P.list);
    memset(&P, 0, sizeof P);
}
