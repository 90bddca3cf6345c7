/*
 * callwright/plugin.h - the C ABI of Callwright plugins.
 *
 * A plugin is a shared object (NAME.so in the daemon's plugin_dir, loaded
 * when NAME is listed in the `plugins` configuration key) that defines one
 * symbol:
 *
 *     CW_PLUGIN_DEFINE(.name = "hello", .version = "1.0",
 *                      .description = "says hello", .init = hello_init);
 *
 * The daemon reads cw_plugin.abi first and refuses the file unless it
 * equals its own CW_PLUGIN_ABI; then it calls init() with the host API on
 * the core thread. Everything a plugin does goes through that struct (the
 * daemon also exports its own functions, but those are not a stable ABI).
 * All host calls and all callbacks run on the core thread: never block in
 * them.
 *
 * CW_PLUGIN_ABI changes whenever struct cw_host or struct cw_plugin change
 * in a way an old plugin would misread; fields are only ever added at the
 * end of cw_host, and host->size tells a plugin which ones exist.
 */
#ifndef CALLWRIGHT_PLUGIN_H
#define CALLWRIGHT_PLUGIN_H

#include <jansson.h>
#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef CW_PLUGIN_ABI
#define CW_PLUGIN_ABI 1
#endif

#define CW_PLUGIN_SYMBOL "cw_plugin"

/* Log levels for host->log. */
enum {
    CW_PLUGIN_LOG_ERROR = 0,
    CW_PLUGIN_LOG_WARN = 1,
    CW_PLUGIN_LOG_INFO = 2,
    CW_PLUGIN_LOG_DEBUG = 3,
};

/* One event of the bus; valid during the callback (take a reference to data to keep it). */
struct cw_plugin_event {
    uint64_t id;
    int64_t ts_ms;
    int64_t domain_id; /* 0 = system-wide */
    const char *type;  /* "call.answered" */
    json_t *data;
};
typedef void (*cw_plugin_event_fn)(const struct cw_plugin_event *ev, void *arg);

/* An HTTP request of the daemon's API; opaque, read through the host functions. */
struct http_req;
typedef void (*cw_plugin_http_fn)(struct http_req *req);

struct metric;
struct event_base;

struct cw_host {
    int abi;             /* CW_PLUGIN_ABI of the daemon */
    size_t size;         /* sizeof(struct cw_host) of the daemon */
    const char *version; /* daemon version, "0.1.0" */

    /* Logging, under the plugin's name. */
    void (*log)(const char *plugin, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* Events: prefix "" = all. Returns a subscription id > 0. emit steals data (may be NULL). */
    int (*subscribe)(const char *prefix, cw_plugin_event_fn fn, void *arg);
    void (*unsubscribe)(int id);
    void (*emit)(const char *type, int64_t domain_id, json_t *data);

    /*
     * HTTP API routes, registered during init. pattern: "/api/v1/things/:id".
     * role: the least powerful role allowed ("sysadmin", "pool_supervisor",
     * "subgroup_admin", "domain_admin", "supervisor", "operator",
     * "subscriber"), or "public" for no authentication. Returns 0 or -1
     * (bad role, or the HTTP edge is not running in this build).
     */
    int (*http_route)(const char *method, const char *pattern, cw_plugin_http_fn fn,
                      const char *role, const char *summary);
    const char *(*http_method)(struct http_req *req);
    const char *(*http_path)(struct http_req *req);
    const char *(*http_param)(struct http_req *req, int idx); /* :name segments, 0-based */
    const char *(*http_query)(struct http_req *req, const char *name);
    const char *(*http_header)(struct http_req *req, const char *name);
    const unsigned char *(*http_body)(struct http_req *req, size_t *len);
    /* Who calls: role name ("" on public routes without credentials) and domain id (0 if none). */
    const char *(*http_role)(struct http_req *req);
    int64_t (*http_domain)(struct http_req *req);
    void (*http_add_header)(struct http_req *req, const char *name, const char *value);
    void (*http_reply)(struct http_req *req, int status, const char *content_type, const void *data,
                       size_t len);
    void (*http_reply_json)(struct http_req *req, int status, json_t *json); /* steals json */
    void (*http_reply_error)(struct http_req *req, int status, const char *code,
                             const char *message);

    /* A Lua module for every VM: open leaves one table on the stack (see script_add_module). */
    void (*lua_module)(const char *name, lua_CFunction open);

    /* Configuration (keys of `callwright --help-config`). NULL / -1 when no such key of that type.
     */
    const char *(*config_str)(const char *key);
    int (*config_int)(const char *key, int64_t *out);
    int (*config_bool)(const char *key, bool *out);

    /* Metrics registry: labels "a,b"; label values as an array of that many strings. */
    struct metric *(*metric_counter)(const char *name, const char *help, const char *labels);
    struct metric *(*metric_gauge)(const char *name, const char *help, const char *labels);
    void (*metric_add)(struct metric *m, double delta, const char *const *values);
    void (*metric_set)(struct metric *m, double value, const char *const *values);
    void (*metrics_on_collect)(void (*fn)(void *arg), void *arg);
    /* Every metric in Prometheus text format; free the result with host->free. */
    char *(*metrics_render)(size_t *len);

    /* The core loop, for the plugin's own timers and sockets (libevent). */
    struct event_base *(*loop_base)(void);
    /* Frees what the host allocated for the plugin. */
    void (*free)(void *p);
};

struct cw_plugin {
    int abi; /* must be first: the CW_PLUGIN_ABI the plugin was built against */
    const char *name;
    const char *version;
    const char *description;
    /* 0 = ready; anything else = refused (logged; the daemon goes on without it). */
    int (*init)(const struct cw_host *host);
    /* At daemon stop, before the subsystems it used are gone. May be NULL. */
    void (*shutdown)(void);
};

#define CW_PLUGIN_DEFINE(...)                                                                      \
    __attribute__((visibility("default")))                                                         \
    const struct cw_plugin cw_plugin = {.abi = CW_PLUGIN_ABI, __VA_ARGS__}

#endif
