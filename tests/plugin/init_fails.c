/*
 * init_fails - registers a route, a Lua module and a subscription, then
 * refuses to start: none of them may take effect.
 */
#include <callwright/plugin.h>

static void never(struct http_req *req) {}

static int never_open(lua_State *L)
{
    return 0;
}

static void on_any(const struct cw_plugin_event *ev, void *arg) {}

static int init(const struct cw_host *host)
{
    host->http_route("GET", "/api/v1/test/init-fails", never, "public", "must not exist");
    host->lua_module("init_fails", never_open);
    host->subscribe("", on_any, NULL);
    host->log("init_fails", CW_PLUGIN_LOG_WARN, "refusing to start, as this test plugin must");
    return -1;
}

CW_PLUGIN_DEFINE(.name = "init_fails", .version = "0", .init = init);
