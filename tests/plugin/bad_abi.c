/*
 * bad_abi - a plugin built against another plugin ABI version: the daemon
 * must refuse it, naming the file, and start without it. Its init would
 * register a route, so the test can tell it never ran.
 */
#define CW_PLUGIN_ABI 999
#include <callwright/plugin.h>

static void never(struct http_req *req) {}

static int init(const struct cw_host *host)
{
    host->http_route("GET", "/api/v1/test/bad-abi", never, "public", "must not exist");
    return 0;
}

CW_PLUGIN_DEFINE(.name = "bad_abi", .version = "0", .init = init);
