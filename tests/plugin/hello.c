/*
 * hello - a test plugin that uses the whole host API: a route that emits an
 * event and counts, a subscription, a Lua module, configuration, and one
 * route calling the daemon's exported functions directly (to run tenant
 * code, for the budget test over HTTP).
 */
#include <callwright/plugin.h>

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* exported by the daemon (not part of the stable ABI; fine for a test) */
struct script_vm;
struct script_vm *script_tenant(int64_t domain_id);
int script_load_string(struct script_vm *vm, const char *chunkname, const char *code, char *err,
                       size_t errlen);
int64_t cw_mono_us(void);

static const struct cw_host *H;
static struct metric *hellos, *seen;
static int events_seen;

static void on_hello_event(const struct cw_plugin_event *ev, void *arg)
{
    events_seen++;
    H->metric_set(seen, events_seen, NULL);
}

static void hello(struct http_req *req)
{
    const char *name = H->http_query(req, "name");
    H->metric_add(hellos, 1, NULL);
    H->emit("hello.ping", 0, json_pack("{s:s}", "name", name ? name : "world"));
    H->http_reply_json(req, 200,
                       json_pack("{s:s,s:s,s:i,s:s}", "greeting", "hello", "name",
                                 name ? name : "world", "events_seen", events_seen, "scripts_dir",
                                 H->config_str("scripts_dir")));
}

/* Microseconds this thread waited for a CPU (other programs on a shared box). */
static long long runq_wait_us(void)
{
    unsigned long long run = 0, wait = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &run, &wait) != 2) wait = 0;
        fclose(f);
    }
    return (long long)(wait / 1000);
}

/* Run Lua in a tenant VM; "ms" is how long it held the core thread. */
static void tenant_run(struct http_req *req)
{
    size_t len;
    const unsigned char *body = H->http_body(req, &len);
    const char *d = H->http_query(req, "domain");
    if (!body || !d) {
        H->http_reply_error(req, 400, "bad_request", "domain query and a Lua body are needed");
        return;
    }
    char code[4096];
    snprintf(code, sizeof code, "%.*s", (int)(len < sizeof code ? len : sizeof code - 1),
             (const char *)body);
    char err[512] = "";
    long long t0 = cw_mono_us(), w0 = runq_wait_us();
    int rc = script_load_string(script_tenant(strtoll(d, NULL, 10)), "=api", code, err, sizeof err);
    long long held = cw_mono_us() - t0 - (runq_wait_us() - w0);
    H->http_reply_json(
        req, 200,
        json_pack("{s:b,s:s,s:f}", "ok", rc == 0, "error", err, "ms", (double)held / 1000.0));
}

static int greet(lua_State *L)
{
    lua_pushfstring(L, "hello, %s", luaL_checkstring(L, 1));
    return 1;
}

static int open_hello(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, greet);
    lua_setfield(L, -2, "greet");
    return 1;
}

static int init(const struct cw_host *host)
{
    H = host;
    hellos = host->metric_counter("cw_test_hellos_total", "Hello requests served", NULL);
    seen = host->metric_gauge("cw_test_hello_events", "hello.* events the plugin saw", NULL);
    host->subscribe("hello.", on_hello_event, NULL);
    host->lua_module("hello", open_hello);
    if (host->http_route("GET", "/api/v1/test/hello", hello, "public", "say hello") ||
        host->http_route("POST", "/api/v1/test/tenant-run", tenant_run, "public",
                         "run Lua in a tenant VM (test plugin)"))
        return -1;
    host->log("hello", CW_PLUGIN_LOG_INFO, "ready");
    return 0;
}

CW_PLUGIN_DEFINE(.name = "hello", .version = "1.0", .description = "test plugin", .init = init);
