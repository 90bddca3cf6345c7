/*
 * test_plugin.c - loading plugins: refusals name the file and leave
 * nothing behind; a good plugin's subscription, Lua module, metric and
 * shutdown hook work through the host API. Needs the test plugins built
 * into $CW_BUILD_DIR/tests/plugins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/cw.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "loop/loop.h"
#include "lua/script.h"
#include "metrics/metrics.h"
#include "plugin/plugin.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[512], shutdown_file[128];

static void other_abi_is_refused_naming_the_file(void **state)
{
    char err[1024];
    assert_int_equal(plugin_load("bad_abi", err, sizeof err), CW_EINVAL);
    assert_non_null(strstr(err, "bad_abi.so"));
    assert_non_null(strstr(err, "ABI 999"));
    assert_non_null(strstr(err, "ABI 1"));
    assert_false(plugin_loaded("bad_abi"));
}

static void missing_symbol_and_file_are_refused(void **state)
{
    char err[1024];
    assert_int_equal(plugin_load("not_a_plugin", err, sizeof err), CW_EINVAL);
    assert_non_null(strstr(err, "not_a_plugin.so has no cw_plugin symbol"));
    assert_int_equal(plugin_load("nowhere", err, sizeof err), CW_ENOENT);
    assert_non_null(strstr(err, "nowhere.so"));
    assert_int_equal(plugin_load("../etc", err, sizeof err), CW_EINVAL);
}

static void refused_init_leaves_nothing(void **state)
{
    char err[1024];
    assert_int_equal(plugin_load("init_fails", err, sizeof err), CW_EINVAL);
    assert_non_null(strstr(err, "init refused"));
    assert_false(plugin_loaded("init_fails"));
    lua_State *L = script_vm_state(script_system());
    lua_getglobal(L, "init_fails");
    assert_true(lua_isnil(L, -1));
    lua_pop(L, 1);
}

static void good_plugin_works_through_the_host_api(void **state)
{
    char err[1024];
    assert_int_equal(plugin_load("counter", err, sizeof err), CW_OK);
    assert_true(plugin_loaded("counter"));
    assert_int_equal(plugin_load("counter", err, sizeof err), CW_EEXIST);
    events_emit("counter.one", 0, NULL);
    events_emit("other.one", 0, NULL);
    events_emit("counter.two", 0, NULL);
    /* its Lua module reached the VMs that already exist */
    lua_State *L = script_vm_state(script_system());
    assert_int_equal(luaL_dostring(L, "return counter.seen()"), LUA_OK);
    assert_int_equal(lua_tointeger(L, -1), 2);
    lua_pop(L, 1);
    lua_State *T = script_vm_state(script_tenant(5));
    assert_int_equal(luaL_dostring(T, "return require('counter').seen()"), LUA_OK);
    assert_int_equal(lua_tointeger(T, -1), 2);
    lua_pop(T, 1);
    cw_buf b;
    cw_buf_init(&b);
    cw_buf_puts(&b, "");
    metrics_render(&b);
    assert_non_null(strstr(b.data, "cw_test_counter_seen 2\n"));
    cw_buf_free(&b);
}

static int setup(void **state)
{
    const char *bd = getenv("CW_BUILD_DIR");
    snprintf(dir, sizeof dir, "plugin_dir=%s/tests/plugins", bd ? bd : ".");
    snprintf(shutdown_file, sizeof shutdown_file, "/tmp/cw-plugin-test-%d", (int)getpid());
    setenv("CW_COUNTER_SHUTDOWN_FILE", shutdown_file, 1);
    const char *sets[] = {dir, "scripts_dir=/nonexistent"};
    char err[256];
    if (config_load(NULL, sets, 2, err, sizeof err)) return -1;
    log_set_level("error");
    if (loop_init()) return -1;
    metrics_init();
    return script_init();
}

static int teardown(void **state)
{
    script_shutdown();
    plugins_shutdown();
    /* the good plugin's shutdown ran and saw both events */
    FILE *f = fopen(shutdown_file, "r");
    int seen = -1;
    if (f) {
        if (fscanf(f, "%d", &seen) != 1) seen = -1;
        fclose(f);
    }
    unlink(shutdown_file);
    metrics_shutdown();
    events_shutdown();
    loop_free();
    config_free();
    return seen == 2 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(other_abi_is_refused_naming_the_file),
        cmocka_unit_test(missing_symbol_and_file_are_refused),
        cmocka_unit_test(refused_init_leaves_nothing),
        cmocka_unit_test(good_plugin_works_through_the_host_api),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
