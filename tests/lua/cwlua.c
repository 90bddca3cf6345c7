/*
 * cwlua.c - the host that runs tests/lua/test_*.lua: the real core loop,
 * store, HTTP client and script runtime, with the test file as a script of
 * the system VM.
 *
 *   cwlua [--set key=value]... FILE.lua
 *
 * The test gets a `host` module besides `cw`: host.sql() to set up rows,
 * host.tenant(domain_id, code) to run code in a tenant VM and wait for its
 * end, host.http_server() for a local HTTP server to call, host.config(),
 * host.lag_ms(), host.reload(). Exit status: 0 when the file ran to its end,
 * 1 when it failed, 2 on set-up errors, 3 on timeout (CWLUA_TIMEOUT seconds,
 * default 60). The store is a throw-away SQLite file, or with
 * CW_TEST_DB=pg a fresh database on the suite's PostgreSQL.
 */
#include "base/cw.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "loop/loop.h"
#include "lua/script.h"
#include "net/httpc.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <lauxlib.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static struct {
    int status;
    bool finished, timed_out;
    char tmpdir[64];
    char pg_admin[512], pg_db[64];
    struct evhttp *http;
    int http_port;
} H = {.status = 1};

/* ---- host.sql ---- */

static int h_sql(lua_State *L)
{
    const char *sql = luaL_checkstring(L, 1);
    int n = lua_gettop(L) - 1;
    if (n > 16) return luaL_error(L, "host.sql: at most 16 arguments");
    store_arg args[16];
    for (int i = 0; i < n; i++) {
        int idx = i + 2;
        if (lua_isinteger(L, idx))
            args[i] = SA_INT(lua_tointeger(L, idx));
        else if (lua_isnil(L, idx))
            args[i] = SA_NULL;
        else if (lua_isboolean(L, idx))
            args[i] = SA_BOOL(lua_toboolean(L, idx));
        else
            args[i] = SA_STR(luaL_checkstring(L, idx));
    }
    store *st = store_main();
    const char *p = sql;
    while (*p == ' ' || *p == '\n')
        p++;
    if (strncasecmp(p, "SELECT", 6) == 0 || strstr(sql, "RETURNING")) {
        store_res *r = NULL;
        if (store_queryv(st, &r, sql, args, n) < 0 || !r)
            return luaL_error(L, "host.sql: %s", store_errmsg(st));
        lua_newtable(L);
        int row = 1;
        while (store_next(r)) {
            lua_newtable(L);
            for (int c = 0; c < store_ncols(r); c++) {
                if (store_isnull(r, c)) continue;
                lua_pushstring(L, store_str(r, c));
                lua_setfield(L, -2, store_colname(r, c));
            }
            lua_rawseti(L, -2, row++);
        }
        store_res_free(r);
        return 1;
    }
    int rc = store_execv(st, sql, args, n);
    if (rc < 0) return luaL_error(L, "host.sql: %s", store_errmsg(st));
    lua_pushinteger(L, rc);
    return 1;
}

/* ---- host.tenant ---- */

struct tenant_run {
    script_co *caller, *co;
    bool sync, ended;
    enum script_status st;
    char err[512];
    json_t *result;
};

static int push_tenant_result(lua_State *L, struct tenant_run *t)
{
    lua_pushstring(L, script_status_name(t->st));
    if (t->st == SCRIPT_DONE)
        lua_pushnil(L);
    else
        lua_pushstring(L, t->err);
    if (t->result)
        script_push_json(L, t->result);
    else
        lua_pushnil(L);
    json_decref(t->result);
    return 3;
}

static void tenant_done(script_co *co, enum script_status st, const char *err, void *arg)
{
    struct tenant_run *t = arg;
    t->ended = true;
    t->st = st;
    if (err) cw_strlcpy(t->err, err, sizeof t->err);
    lua_State *T = script_co_thread(co);
    if (st == SCRIPT_DONE && lua_gettop(T) >= 1 && !lua_isnil(T, 1)) {
        char e[128];
        t->result = script_to_json(T, 1, "result", e, sizeof e);
    }
    if (t->sync) return;
    script_co *caller = t->caller;
    if (script_co_suspended(caller)) {
        int n = push_tenant_result(script_co_thread(caller), t);
        script_co_resume(caller, n);
    } else {
        json_decref(t->result);
    }
    script_co_unref(caller);
    script_co_unref(t->co);
    free(t);
}

static int h_tenant(lua_State *L)
{
    lua_Integer d = luaL_checkinteger(L, 1);
    const char *code = luaL_checkstring(L, 2);
    script_co *caller = script_co_check(L);
    script_vm *vm = script_tenant(d);
    if (!vm) return luaL_error(L, "host.tenant: no VM for domain %d", (int)d);
    char err[512];
    if (script_compile(vm, "=tenant", code, err, sizeof err)) {
        lua_pushliteral(L, "compile");
        lua_pushstring(L, err);
        return 2;
    }
    struct tenant_run *t = cw_calloc(1, sizeof *t);
    t->sync = true;
    t->co = script_co_start(vm, 0, tenant_done, t);
    t->sync = false;
    if (t->ended) {
        int n = push_tenant_result(L, t);
        script_co_unref(t->co);
        free(t);
        return n;
    }
    t->caller = caller;
    script_co_ref(caller);
    return script_co_suspend(L);
}

/* ---- host.http_server: a small real HTTP server to call ---- */

/* A reply held back by /slow; dropped if the client goes away first. */
struct delayed {
    struct evhttp_request *req;
    struct event *ev;
    struct delayed *next;
};
static struct delayed *delayed_list;

static void delayed_drop(struct delayed *d)
{
    for (struct delayed **p = &delayed_list; *p; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            break;
        }
    evhttp_connection_set_closecb(evhttp_request_get_connection(d->req), NULL, NULL);
    event_free(d->ev);
    free(d);
}

static void on_client_gone(struct evhttp_connection *conn, void *arg)
{
    struct delayed *d = arg;
    for (struct delayed **p = &delayed_list; *p; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            event_free(d->ev);
            free(d);
            return;
        }
}

static void reply_echo(struct evhttp_request *req)
{
    json_t *o = json_object();
    static const char *methods[] = {"GET",     "POST",  "HEAD",    "PUT",  "DELETE",
                                    "OPTIONS", "TRACE", "CONNECT", "PATCH"};
    int cmd = evhttp_request_get_command(req);
    const char *method = "?";
    for (int i = 0; i < 9; i++)
        if (cmd == (1 << i)) method = methods[i];
    json_object_set_new(o, "method", json_string(method));
    json_object_set_new(o, "uri", json_string(evhttp_request_get_uri(req)));
    json_t *h = json_object();
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next) {
        char name[128];
        cw_strlcpy(name, kv->key, sizeof name);
        for (char *p = name; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
        json_object_set_new(h, name, json_string(kv->value));
    }
    json_object_set_new(o, "headers", h);
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(body);
    char *b = cw_malloc(len + 1);
    evbuffer_copyout(body, b, len);
    b[len] = '\0';
    json_object_set_new(o, "body", json_stringn(b, len));
    free(b);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, s, strlen(s));
    free(s);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Test", "one");
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Test", "two");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    struct delayed *d = arg;
    struct evhttp_request *req = d->req;
    delayed_drop(d);
    reply_echo(req);
}

static int query_int(struct evhttp_request *req, const char *name, int def)
{
    struct evkeyvalq q;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *qs = evhttp_uri_get_query(u);
    int v = def;
    if (qs && evhttp_parse_query_str(qs, &q) == 0) {
        const char *s = evhttp_find_header(&q, name);
        if (s) v = atoi(s);
        evhttp_clear_headers(&q);
    }
    return v;
}

/* Bodies POSTed to /record, in order; GET /recorded returns them as a JSON array. */
static json_t *recorded;

static void on_http(struct evhttp_request *req, void *arg)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (!path) path = "/";
    if (strcmp(path, "/record") == 0) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        char *b = cw_malloc(len + 1);
        evbuffer_copyout(in, b, len);
        if (!recorded) recorded = json_array();
        json_array_append_new(recorded, json_stringn(b, len));
        free(b);
        int status = query_int(req, "status", 200);
        evhttp_send_reply(req, status, "Recorded", NULL);
    } else if (strcmp(path, "/recorded") == 0) {
        char *s = json_dumps(recorded ? recorded : json_array(), JSON_COMPACT);
        struct evbuffer *out = evbuffer_new();
        evbuffer_add(out, s, strlen(s));
        free(s);
        evhttp_send_reply(req, 200, "OK", out);
        evbuffer_free(out);
    } else if (strcmp(path, "/echo") == 0) {
        reply_echo(req);
    } else if (strcmp(path, "/slow") == 0) {
        struct delayed *d = cw_calloc(1, sizeof *d);
        d->req = req;
        d->ev = evtimer_new(loop_base(), on_delay, d);
        d->next = delayed_list;
        delayed_list = d;
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_client_gone, d);
        int ms = query_int(req, "ms", 200);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(d->ev, &tv);
    } else if (strncmp(path, "/status/", 8) == 0) {
        struct evbuffer *out = evbuffer_new();
        evbuffer_add_printf(out, "status %s", path + 8);
        evhttp_send_reply(req, atoi(path + 8), "Status", out);
        evbuffer_free(out);
    } else if (strcmp(path, "/big") == 0) {
        int n = query_int(req, "n", 1000);
        struct evbuffer *out = evbuffer_new();
        char block[1024];
        memset(block, 'b', sizeof block);
        for (int left = n; left > 0; left -= (int)sizeof block)
            evbuffer_add(out, block, (size_t)CW_MIN(left, (int)sizeof block));
        evhttp_send_reply(req, 200, "OK", out);
        evbuffer_free(out);
    } else if (strcmp(path, "/redirect") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location",
                          "/echo?from=redirect");
        evhttp_send_reply(req, 302, "Found", NULL);
    } else {
        evhttp_send_error(req, 404, "Not Found");
    }
}

static int h_http_server(lua_State *L)
{
    if (!H.http) {
        H.http = evhttp_new(loop_base());
        evhttp_set_allowed_methods(H.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                               EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                               EVHTTP_REQ_HEAD);
        struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(H.http, "127.0.0.1", 0);
        if (!s) return luaL_error(L, "host.http_server: cannot listen");
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&ss, &len);
        H.http_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        evhttp_set_gencb(H.http, on_http, NULL);
    }
    lua_pushfstring(L, "http://127.0.0.1:%d", H.http_port);
    return 1;
}

/* ---- small helpers ---- */

static int h_config(lua_State *L)
{
    char err[256];
    if (config_set(luaL_checkstring(L, 1), luaL_checkstring(L, 2), err, sizeof err))
        return luaL_error(L, "host.config: %s", err);
    return 0;
}

static int h_lag_ms(lua_State *L)
{
    lua_pushnumber(L, loop_lag_ms_max());
    return 1;
}

static int h_reload(lua_State *L)
{
    lua_pushboolean(L, script_reload() == CW_OK);
    return 1;
}

static int h_mono_ms(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)cw_mono_ms());
    return 1;
}

/*
 * Monotonic milliseconds less the time this thread waited for a CPU: time
 * the core thread was busy or idle by itself, not stolen by other programs.
 */
static int h_busy_ms(lua_State *L)
{
    unsigned long long run = 0, wait = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &run, &wait) != 2) wait = 0;
        fclose(f);
    }
    lua_pushnumber(L, (double)cw_mono_us() / 1000.0 - (double)wait / 1e6);
    return 1;
}

static int h_stats(lua_State *L)
{
    struct script_stats s;
    script_get_stats(&s);
    lua_newtable(L);
    lua_pushinteger(L, s.vms);
    lua_setfield(L, -2, "vms");
    lua_pushinteger(L, s.coroutines);
    lua_setfield(L, -2, "coroutines");
    lua_pushinteger(L, httpc_active());
    lua_setfield(L, -2, "http_active");
    return 1;
}

static int host_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"sql", h_sql},         {"tenant", h_tenant}, {"http_server", h_http_server},
        {"config", h_config},   {"lag_ms", h_lag_ms}, {"reload", h_reload},
        {"mono_ms", h_mono_ms}, {"stats", h_stats},   {"busy_ms", h_busy_ms},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    return 1;
}

/*
 * The helpers every test file has: test(name, fn) and eq(a, b, what); and
 * print writes to stdout here (in the daemon it writes to the log).
 */
static const char prelude[] =
    "function print(...)\n"
    "  local t = table.pack(...)\n"
    "  for i = 1, t.n do t[i] = tostring(t[i]) end\n"
    "  io.write(table.concat(t, '\\t', 1, t.n), '\\n')\n"
    "end\n"
    "local failures = 0\n"
    "function test(name, fn)\n"
    "  local ok, err = pcall(fn)\n"
    "  if ok then io.write('ok - ', name, '\\n')\n"
    "  else failures = failures + 1 io.write('not ok - ', name, ': ', tostring(err), '\\n') end\n"
    "  io.flush()\n"
    "end\n"
    "function eq(a, b, what)\n"
    "  if a ~= b then error((what or 'value') .. ': expected ' .. tostring(b) .. ', got ' .. "
    "tostring(a), 2) end\n"
    "end\n"
    "function test_failures() return failures end\n";

/* ---- running the file ---- */

static void file_done(script_co *co, enum script_status st, const char *err, void *arg)
{
    H.finished = true;
    if (H.timed_out) return;
    if (st != SCRIPT_DONE) {
        fprintf(stderr, "cwlua: %s\n", err);
        H.status = 1;
    } else {
        /* the file's own VM: a test may have reloaded the scripts */
        lua_State *S = script_vm_state(script_co_vm(co));
        lua_getglobal(S, "test_failures");
        int failures = 1;
        if (lua_pcall(S, 0, 1, 0) == LUA_OK) failures = (int)lua_tointeger(S, -1);
        lua_pop(S, 1);
        H.status = failures ? 1 : 0;
        if (failures) fprintf(stderr, "cwlua: %d test(s) failed\n", failures);
    }
    loop_stop();
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    fprintf(stderr, "cwlua: timed out\n");
    H.status = 3;
    H.timed_out = true;
    loop_stop();
}

static int open_store(char *err, size_t errlen)
{
    const char *db = getenv("CW_TEST_DB");
    char url[1200];
    if (db && strcmp(db, "pg") == 0) {
        const char *bdir = getenv("CW_BUILD_DIR");
        char path[400];
        snprintf(path, sizeof path, "%.380s/test-pg/url", bdir ? bdir : ".");
        FILE *f = fopen(path, "r");
        if (!f || !fgets(H.pg_admin, sizeof H.pg_admin, f)) {
            snprintf(err, errlen, "no PostgreSQL URL in %s", path);
            if (f) fclose(f);
            return CW_EIO;
        }
        fclose(f);
        H.pg_admin[strcspn(H.pg_admin, "\r\n")] = '\0';
        unsigned char rnd[4];
        char hex[9];
        cw_random_bytes(rnd, sizeof rnd);
        cw_hex(rnd, sizeof rnd, hex);
        snprintf(H.pg_db, sizeof H.pg_db, "cwlua_%s", hex);
        PGconn *c = PQconnectdb(H.pg_admin);
        char sql[128];
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", H.pg_db);
        PGresult *r = PQexec(c, sql);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) snprintf(err, errlen, "%s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        if (!ok) return CW_EIO;
        /* same server, the new database */
        char *slash = strrchr(H.pg_admin, '/');
        snprintf(url, sizeof url, "%.*s/%s", (int)(slash - H.pg_admin), H.pg_admin, H.pg_db);
    } else {
        snprintf(url, sizeof url, "%s/test.db", H.tmpdir);
    }
    store *st;
    if (store_open(url, &st, err, errlen)) return CW_EIO;
    store_set_main(st);
    return CW_OK;
}

static void drop_store(void)
{
    if (store_main()) store_close(store_main());
    store_set_main(NULL);
    if (H.pg_db[0]) {
        PGconn *c = PQconnectdb(H.pg_admin);
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", H.pg_db);
        PQclear(PQexec(c, sql));
        PQfinish(c);
    }
}

int main(int argc, char **argv)
{
    const char *sets[64];
    int nsets = 0;
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc && nsets < 60)
            sets[nsets++] = argv[++i];
        else
            file = argv[i];
    }
    if (!file) {
        fprintf(stderr, "usage: cwlua [--set key=value]... FILE.lua\n");
        return 2;
    }
    snprintf(H.tmpdir, sizeof H.tmpdir, "/tmp/cwlua-XXXXXX");
    if (!mkdtemp(H.tmpdir)) return 2;
    char scripts[128];
    snprintf(scripts, sizeof scripts, "scripts_dir=%s", H.tmpdir);
    const char *all[66];
    int n = 0;
    all[n++] = scripts;
    all[n++] = "log.level=warn";
    for (int i = 0; i < nsets; i++)
        all[n++] = sets[i];
    char err[512];
    int rc = 2;
    if (config_load(NULL, all, n, err, sizeof err)) {
        fprintf(stderr, "cwlua: %s\n", err);
        goto out;
    }
    log_set_level(config_str("log.level"));
    log_set_levels(config_str("log.levels"));
    httpc_init();
    if (open_store(err, sizeof err)) {
        fprintf(stderr, "cwlua: store: %s\n", err);
        goto out;
    }
    loop_init();
    script_add_module("host", host_open);
    script_init();
    script_vm *sys = script_system();
    lua_State *S = script_vm_state(sys);
    if (luaL_dostring(S, prelude)) {
        fprintf(stderr, "cwlua: prelude: %s\n", lua_tostring(S, -1));
        goto out;
    }
    if (luaL_loadfilex(S, file, "t")) {
        fprintf(stderr, "cwlua: %s\n", lua_tostring(S, -1));
        goto out;
    }
    const char *t = getenv("CWLUA_TIMEOUT");
    struct timeval tv = {t ? atoi(t) : 60, 0};
    struct event *timeout = evtimer_new(loop_base(), on_timeout, NULL);
    evtimer_add(timeout, &tv);
    script_co *co = script_co_start(sys, 0, file_done, NULL);
    if (!H.finished) loop_run();
    script_co_unref(co);
    rc = H.status;
    event_free(timeout);
    script_shutdown();
    while (delayed_list)
        delayed_drop(delayed_list);
    json_decref(recorded);
    if (H.http) evhttp_free(H.http);
    httpc_shutdown();
    events_shutdown();
    loop_free();
out:
    drop_store();
    config_free();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", H.tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cwlua: could not remove %s\n", H.tmpdir);
    return rc;
}
