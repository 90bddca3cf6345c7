/*
 * counter - a test plugin without routes: an event subscription, a Lua
 * module reading what it counted, a metric and a shutdown hook.
 */
#include <callwright/plugin.h>

#include <stdio.h>
#include <stdlib.h>

static const struct cw_host *H;
static struct metric *seen_metric;
static int seen;

static void on_event(const struct cw_plugin_event *ev, void *arg)
{
    seen++;
    H->metric_set(seen_metric, seen, NULL);
}

static int l_seen(lua_State *L)
{
    lua_pushinteger(L, seen);
    return 1;
}

static int open_counter(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, l_seen);
    lua_setfield(L, -2, "seen");
    return 1;
}

static int init(const struct cw_host *host)
{
    H = host;
    if (host->abi != CW_PLUGIN_ABI || host->size < sizeof(struct cw_host)) return -1;
    int64_t cap;
    if (host->config_int("lua.memory_cap", &cap) != 0 || cap <= 0) return -2;
    int64_t dummy;
    if (host->config_int("no.such.key", &dummy) == 0) return -3;
    if (host->config_str("lua.memory_cap") != NULL) return -4; /* an integer, not a string */
    seen_metric = host->metric_gauge("cw_test_counter_seen", "counter.* events seen", NULL);
    host->subscribe("counter.", on_event, NULL);
    host->lua_module("counter", open_counter);
    return 0;
}

static void shutdown_(void)
{
    /* leaves a trace the test can read */
    const char *path = getenv("CW_COUNTER_SHUTDOWN_FILE");
    if (!path) return;
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d\n", seen);
        fclose(f);
    }
}

CW_PLUGIN_DEFINE(.name = "counter", .version = "1.0", .description = "counts counter.* events",
                 .init = init, .shutdown = shutdown_);
