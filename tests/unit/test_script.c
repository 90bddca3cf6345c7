/*
 * test_script.c - the Lua runtime: sandbox, budgets, memory cap, coroutine
 * suspend/resume/kill from C, reload.
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

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scripts_dir[256];

/* ---- helpers ---- */

struct outcome {
    bool ended;
    enum script_status st;
    char err[512];
    int64_t start_us, end_us;
    int64_t start_wait_us, end_wait_us; /* time this thread waited for a CPU */
    lua_Integer result;
    bool has_result;
};

/* Microseconds this thread has waited for a CPU (the box is shared and noisy). */
static int64_t runq_wait_us(void)
{
    unsigned long long run = 0, wait = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &run, &wait) != 2) wait = 0;
        fclose(f);
    }
    return (int64_t)(wait / 1000);
}

static void on_done(script_co *co, enum script_status st, const char *err, void *arg)
{
    struct outcome *o = arg;
    o->ended = true;
    o->st = st;
    o->end_us = cw_mono_us();
    o->end_wait_us = runq_wait_us();
    if (err) cw_strlcpy(o->err, err, sizeof o->err);
    lua_State *T = script_co_thread(co);
    if (st == SCRIPT_DONE && lua_gettop(T) >= 1 && lua_isinteger(T, -1)) {
        o->result = lua_tointeger(T, -1);
        o->has_result = true;
    }
}

static void pump_until(const bool *flag, int timeout_ms)
{
    int64_t end = cw_mono_ms() + timeout_ms;
    while (!*flag && cw_mono_ms() < end) {
        event_base_loop(loop_base(), EVLOOP_NONBLOCK);
        if (!*flag) usleep(500);
    }
}

static void pump_for(int ms)
{
    bool never = false;
    pump_until(&never, ms);
}

/* Start code in vm; returns the coroutine (caller's reference). */
static script_co *start(script_vm *vm, const char *code, struct outcome *o)
{
    char err[512];
    memset(o, 0, sizeof *o);
    int rc = script_compile(vm, "=test", code, err, sizeof err);
    if (rc) fail_msg("compile: %s", err);
    o->start_us = cw_mono_us();
    o->start_wait_us = runq_wait_us();
    return script_co_start(vm, 0, on_done, o);
}

/* Run code to its end (pumping the loop); returns its status. */
static enum script_status run(script_vm *vm, const char *code, struct outcome *o, int timeout_ms)
{
    script_co *co = start(vm, code, o);
    pump_until(&o->ended, timeout_ms);
    assert_true(o->ended);
    script_co_unref(co);
    return o->st;
}

/*
 * How long the script held the core thread, less the time the thread sat
 * waiting for a CPU that other programs on the box had: what the daemon's
 * other work would have waited for. Plain wall time is checked loosely.
 */
static int64_t elapsed_ms(const struct outcome *o)
{
    int64_t wall = o->end_us - o->start_us;
    assert_true(wall < 30000 * 1000); /* a box four times oversubscribed still passes */
    return (wall - (o->end_wait_us - o->start_wait_us)) / 1000;
}

/* ---- a C module that suspends: testmod.wait() ---- */

static script_co *waiting;
static int cancels;

static void wait_cancel(void *arg)
{
    cancels++;
    script_co_unref(arg);
    waiting = NULL;
}

static int t_wait(lua_State *L)
{
    script_co *co = script_co_check(L);
    script_co_ref(co);
    waiting = co;
    script_co_on_cancel(co, wait_cancel, co);
    return script_co_suspend(L);
}

static int t_kill_self(lua_State *L)
{
    script_co_kill(script_co_of(L));
    return 0;
}

static int t_open(lua_State *L)
{
    static const luaL_Reg fns[] = {{"wait", t_wait}, {"kill_self", t_kill_self}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

/* resume the waiting coroutine with one integer */
static void wake(lua_Integer v)
{
    script_co *co = waiting;
    assert_non_null(co);
    waiting = NULL;
    lua_pushinteger(script_co_thread(co), v);
    assert_true(script_co_resume(co, 1));
    script_co_unref(co);
}

/* ---- tests ---- */

static void sandbox_removes_dangerous_libraries(void **state)
{
    script_vm *vm = script_tenant(101);
    assert_non_null(vm);
    assert_true(script_vm_sandboxed(vm));
    struct outcome o;
    const char *code =
        "assert(io == nil, 'io') assert(debug == nil, 'debug') assert(package == nil, 'package')\n"
        "assert(dofile == nil and loadfile == nil, 'dofile')\n"
        "assert(string.dump == nil, 'dump') assert(('').dump == nil, 'dump via metatable')\n"
        "assert(os.execute == nil and os.getenv == nil and os.exit == nil and os.remove == nil)\n"
        "assert(type(os.time()) == 'number' and type(os.clock()) == 'number')\n"
        "assert(type(os.date('%Y')) == 'string' and os.difftime(2, 1) == 1)\n"
        "assert(not pcall(require, 'io'), 'require io')\n"
        "assert(not pcall(require, '../etc/passwd'), 'require path')\n"
        "local ok, e = pcall(load, 'return 1', 'x', 'b') assert(not ok and e:find('text'), e)\n"
        "local f, e2 = load(BIN) assert(f == nil and e2:find('binary'), tostring(e2))\n"
        "assert(load('return 7')() == 7)\n"
        "local ok3, e3 = pcall(setmetatable, {}, {__gc = function() end})\n"
        "assert(not ok3 and e3:find('__gc'), tostring(e3))\n"
        "assert(not pcall(collectgarbage, 'stop'))\n"
        "assert(type(collectgarbage('count')) == 'number')\n"
        "return 1";
    /* a binary chunk made by the trusted VM */
    lua_State *S = script_vm_state(script_system());
    luaL_dostring(S, "return string.dump(function() return 1 end)");
    size_t len;
    const char *bin = lua_tolstring(S, -1, &len);
    lua_pushlstring(script_vm_state(vm), bin, len);
    lua_setglobal(script_vm_state(vm), "BIN");
    lua_pop(S, 1);
    assert_int_equal(run(vm, code, &o, 2000), SCRIPT_DONE);
}

static void sandbox_library_replacements_behave(void **state)
{
    struct outcome o;
    const char *code =
        "assert(('ab'):rep(3, ',') == 'ab,ab,ab' and ('ab'):rep(1, ',') == 'ab')\n"
        "assert(('x'):rep(0) == '' and ('x'):rep(-1) == '' and (''):rep(5) == '')\n"
        "assert(#('xyz'):rep(100000) == 300000 and ('xyz'):rep(5) == 'xyzxyzxyzxyzxyz')\n"
        "local t = {5, 3, 9, 1} table.sort(t) assert(table.concat(t, ' ') == '1 3 5 9')\n"
        "table.sort(t, function(a, b) return a > b end) assert(table.concat(t, ' ') == '9 5 3 1')\n"
        "local m = {1, 2, 3, 4, 5} table.move(m, 1, 3, 2) assert(table.concat(m, ' ') == '1 1 2 3 "
        "5')\n"
        "m = {1, 2, 3, 4, 5} table.move(m, 2, 4, 1) assert(table.concat(m, ' ') == '2 3 4 4 5')\n"
        "local d = table.move({1, 2}, 1, 2, 3, {7, 8}) assert(table.concat(d, ' ') == '7 8 1 2')\n"
        "return 1";
    assert_int_equal(run(script_tenant(117), code, &o, 2000), SCRIPT_DONE);
    /* the C versions would loop far past the budget here */
    assert_int_equal(run(script_tenant(117), "table.move({}, 1, math.maxinteger - 1, 1)", &o, 2000),
                     SCRIPT_BUDGET);
    assert_true(elapsed_ms(&o) < 100);
    assert_int_equal(run(script_tenant(117),
                         "local t = {} for i = 1, 300000 do t[i] = (i * 7919) % 300007 end "
                         "table.sort(t)",
                         &o, 2000),
                     SCRIPT_BUDGET);
    assert_true(elapsed_ms(&o) < 100);
}

/*
 * The tenant's budgeted pattern functions against the standard ones: the
 * same corpus, plus random patterns and subjects, run in the system VM
 * (standard library) and a tenant VM must give the same results and the
 * same errors.
 */
static const char pattern_corpus[] =
    "local out = {}\n"
    "local function ser(...)\n"
    "  local t = table.pack(...)\n"
    "  for i = 1, t.n do\n"
    "    local ty = type(t[i])\n"
    "    t[i] = (ty == 'function' or ty == 'table') and ty or (ty .. ':' .. tostring(t[i]))\n"
    "  end\n"
    "  return table.concat(t, ',', 1, t.n)\n"
    "end\n"
    "local names = {}\n"
    "for k, v in pairs(string) do names[v] = k end\n"
    "local function try(f, ...)\n"
    "  local r = table.pack(pcall(f, ...))\n"
    "  if not r[1] then r[2] = tostring(r[2]):gsub('^[^:]*:%d+: ', '') end\n"
    "  out[#out + 1] = (names[f] or 'gmatch') .. '(' .. ser(...):gsub('%c', '?') .. ') => ' .. "
    "ser(table.unpack(r, 1, r.n)):gsub('%c', '?')\n"
    "end\n"
    "local function gm(s, p, init)\n"
    "  local acc = {}\n"
    "  for a, b in string.gmatch(s, p, init) do acc[#acc + 1] = tostring(a) .. '/' .. "
    "tostring(b) if #acc > 50 then break end end\n"
    "  return table.concat(acc, ' ')\n"
    "end\n"
    "local cases = {\n"
    "  {'hello world', 'o'}, {'hello world', 'l+'}, {'hello world', '(h)(e)'}, {'hello', "
    "'()ll()'},\n"
    "  {'hello', '^h'}, {'hello', '^e'}, {'hello', 'o$'}, {'hel$lo', 'l$l'}, {'abc', ''},\n"
    "  {'', ''}, {'', 'a*'}, {'aaa', 'a-b'}, {'aaab', 'a-b'}, {'aaab', 'a*'}, {'x = 10', "
    "'(%w+)%s*=%s*(%w+)'},\n"
    "  {'THE (quick) fox', '%((%a+)%)'}, {'f(a(b)c)d', '%b()'}, {'[[x]]', '%[(.-)%]'},\n"
    "  {'THE (quick) fox', '%f[%a]%a+'}, {'key=val; k2=v2', '(%w+)=(%w+)'}, {'abcabc', "
    "'(abc)%1'},\n"
    "  {'a.b.c', '.', 1, true}, {'a.b.c', '%.'}, {'x+y', '+', 1, true}, {'2024-01-05', "
    "'(%d+)-(%d+)-(%d+)'},\n"
    "  {'hello', 'l', -2}, {'hello', 'l', 10}, {'hello', 'l', -10}, {'hello', '[aeiou]'},\n"
    "  {'hello', '[^aeiou]+'}, {'a]b', '[]]'}, {'a-b', '[a-]'}, {'a^b', '[%^]'}, {'\\0a\\0', "
    "'%z'},\n"
    "  {'x\\0y', '\\0'}, {'x\\0y', '.\\0.'}, {'hello', '%'}, {'hello', '[a'}, {'hello', '(l'},\n"
    "  {'hello', 'l)'}, {'hello', '%b'}, {'hello', '%f'}, {'hello', '%1'}, {'hello', '(l)%2'},\n"
    "  {'hello', '%g+'}, {'tab\there', '%c'}, {'MiXeD', '%u%l'}, {'0x1F', '%x+'}, {'a,b;c', "
    "'%p'},\n"
    "  {'  trim  ', '^%s*(.-)%s*$'}, {'aaa', 'a?a?a?aaa'}, {'abc', '.-'}, {'abc', '()'},\n"
    "}\n"
    "for _, c in ipairs(cases) do\n"
    "  try(string.find, table.unpack(c, 1, 4))\n"
    "  try(string.match, c[1], c[2], c[3])\n"
    "  try(gm, c[1], c[2], c[3])\n"
    "  try(string.gsub, c[1], c[2], '<%0>')\n"
    "  try(string.gsub, c[1], c[2], '%1|', 2)\n"
    "  try(string.gsub, c[1], c[2], function(a, b) return b and (a .. b) or nil end)\n"
    "  try(string.gsub, c[1], c[2], {hello = 'HI', l = 'L'})\n"
    "end\n"
    "try(string.gsub, 'abc', '%w', '%2')\n"
    "try(string.gsub, 'abc', '%w', '%')\n"
    "try(string.gsub, 'abc', '%w', '%x')\n"
    "try(string.gsub, 'abc', '%w', function() return {} end)\n"
    "try(string.gsub, 'abc', '%w', 5)\n"
    "try(string.gsub, 'abc', '', '-')\n"
    "try(string.gsub, 'abc', '^', '>')\n"
    "try(string.gsub, 'abc', 'b*', '-')\n"
    "try(string.gsub, 'abc', '%w', true)\n"
    "try(string.find, 'abc', 'b', 1.5)\n"
    "try(string.rep)\n"
    "try(string.find, ('a'):rep(300), ('a?'):rep(300) .. ('a'):rep(300))\n"
    "try(string.match, 'x', ('('):rep(40) .. 'x' .. (')'):rep(40))\n"
    "-- random patterns\n"
    "local seed = 12345\n"
    "local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648 return seed % n + 1 "
    "end\n"
    "local atoms = {'a', 'b', '.', '%a', '%d', '[ab]', '[^a]', '%s', '(', ')', '()', '%b()', "
    "'%f[%w]', '%1', '^', '$', '[a-c]', '%%', '-', '*', '+', '?', ']', '['}\n"
    "local letters = {'a', 'b', 'c', '1', ' ', '(', ')', '%', '-', '\\0'}\n"
    "for i = 1, 4000 do\n"
    "  local p, s = {}, {}\n"
    "  for j = 1, rnd(6) do p[#p + 1] = atoms[rnd(#atoms)] end\n"
    "  for j = 1, rnd(12) - 1 do s[#s + 1] = letters[rnd(#letters)] end\n"
    "  p, s = table.concat(p), table.concat(s)\n"
    "  try(string.find, s, p, rnd(4) - 2)\n"
    "  try(string.gsub, s, p, '[%0]')\n"
    "  try(gm, s, p)\n"
    "  if i % 500 == 0 then cw.sleep(0) end\n"
    "end\n"
    "RESULT = table.concat(out, '\\n')\n"
    "return #out";

static char *corpus_result(script_vm *vm)
{
    struct outcome o;
    assert_int_equal(run(vm, pattern_corpus, &o, 20000), SCRIPT_DONE);
    lua_State *L = script_vm_state(vm);
    lua_getglobal(L, "RESULT");
    char *r = cw_strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return r;
}

static void tenant_patterns_behave_like_the_standard_ones(void **state)
{
    /* a generous budget: this compares results, the budget is tested elsewhere */
    char err[128];
    config_set("lua.time_budget_ms", "20000", err, sizeof err);
    config_set("lua.instruction_budget", "2000000000", err, sizeof err);
    script_vm *vm = script_tenant(119);
    config_set("lua.time_budget_ms", "30", err, sizeof err);
    config_set("lua.instruction_budget", "20000000", err, sizeof err);
    char *std = corpus_result(script_system());
    char *mine = corpus_result(vm);
    if (strcmp(std, mine) != 0) {
        /* name the first line that differs */
        char *a = std, *b = mine;
        while (*a && *a == *b)
            a++, b++;
        while (a > std && a[-1] != '\n')
            a--, b--;
        fail_msg("standard: %.200s\n  tenant: %.200s", a, b);
    }
    assert_true(strlen(std) > 10000);
    free(std);
    free(mine);
}

static void pattern_bombs_are_stopped(void **state)
{
    struct outcome o;
    const char *bombs[] = {
        "local s = ('a'):rep(30000) return s:find('.-.-.-.-.-.-b')",
        "local s = ('a'):rep(20000) return s:match('(.-)(.-)(.-)x')",
        ("local s = ('a'):rep(3000000) local p = ('a'):rep(2000000) .. 'b' return s:find(p, 1, "
         "true)"),
        "local s = ('a'):rep(4000000) return select(2, s:gsub('', '-'))",
        "local s = ('ab'):rep(40000) for w in s:gmatch('.-.-.-.-z') do end",
    };
    for (size_t i = 0; i < CW_ARRAY_LEN(bombs); i++) {
        enum script_status st = run(script_tenant(120), bombs[i], &o, 5000);
        if (st != SCRIPT_BUDGET && st != SCRIPT_MEMORY)
            fail_msg("bomb %zu ended %d: %s", i, st, o.err);
        assert_true(elapsed_ms(&o) < 100);
    }
    /* ordinary use on a big subject is fine */
    assert_int_equal(run(script_tenant(120),
                         "local s = ('word '):rep(2000) local n = 0 "
                         "for w in s:gmatch('%a+') do n = n + 1 end return n",
                         &o, 2000),
                     SCRIPT_DONE);
    assert_int_equal(o.result, 2000);
}

static void system_vm_is_trusted(void **state)
{
    script_vm *vm = script_system();
    assert_false(script_vm_sandboxed(vm));
    struct outcome o;
    assert_int_equal(run(vm, "assert(io and debug and os.getenv) return 1", &o, 2000), SCRIPT_DONE);
}

static void tenant_vms_are_separate(void **state)
{
    struct outcome o;
    assert_int_equal(run(script_tenant(102), "shared = 'a' return 1", &o, 2000), SCRIPT_DONE);
    assert_int_equal(run(script_tenant(103), "assert(shared == nil) return 1", &o, 2000),
                     SCRIPT_DONE);
    assert_int_equal(run(script_tenant(102), "assert(shared == 'a') return 1", &o, 2000),
                     SCRIPT_DONE);
    assert_ptr_equal(script_tenant(102), script_tenant(102));
    assert_null(script_tenant(0));
}

static void endless_loop_is_stopped_within_100ms(void **state)
{
    struct outcome o;
    assert_int_equal(run(script_tenant(104), "while true do end", &o, 2000), SCRIPT_BUDGET);
    assert_true(elapsed_ms(&o) < 100);
    assert_non_null(strstr(o.err, "budget"));
    /* pcall cannot catch the stop */
    assert_int_equal(run(script_tenant(104),
                         "while true do pcall(function() while true do end end) end", &o, 2000),
                     SCRIPT_BUDGET);
    assert_true(elapsed_ms(&o) < 100);
    /* nor can a coroutine of the script's own */
    assert_int_equal(run(script_tenant(104),
                         "while true do coroutine.resume(coroutine.create(function() "
                         "while true do end end)) end",
                         &o, 2000),
                     SCRIPT_BUDGET);
    assert_true(elapsed_ms(&o) < 100);
    /* the VM still works */
    assert_int_equal(run(script_tenant(104), "return 5", &o, 2000), SCRIPT_DONE);
    assert_int_equal(o.result, 5);
}

static void instruction_budget_counts_instructions(void **state)
{
    char err[128];
    config_set("lua.time_budget_ms", "60000", err, sizeof err);
    config_set("lua.instruction_budget", "100000", err, sizeof err);
    script_vm *vm = script_tenant(105); /* budgets are read when the VM is built */
    config_set("lua.time_budget_ms", "30", err, sizeof err);
    config_set("lua.instruction_budget", "20000000", err, sizeof err);
    struct outcome o;
    assert_int_equal(run(vm, "local n = 0 for i = 1, 10000 do n = n + i end return n", &o, 2000),
                     SCRIPT_DONE);
    assert_int_equal(run(vm, "local n = 0 for i = 1, 1000000 do n = n + i end return n", &o, 2000),
                     SCRIPT_BUDGET);
    assert_non_null(strstr(o.err, "instruction budget"));
}

static void budget_is_per_resume(void **state)
{
    /* 40 slices of 3 ms each: 120 ms in all, each well inside the budget */
    struct outcome o;
    const char *code = "for i = 1, 40 do local t = cw.now() while cw.now() - t < 3 do end "
                       "cw.sleep(0) end return 40";
    assert_int_equal(run(script_tenant(106), code, &o, 10000), SCRIPT_DONE);
    assert_int_equal(o.result, 40);
}

/* A tenant VM with a small memory cap and a long time budget: only the cap can end its scripts. */
static script_vm *small_vm(int64_t domain_id)
{
    char err[128];
    config_set("lua.memory_cap", "4194304", err, sizeof err);
    config_set("lua.time_budget_ms", "10000", err, sizeof err);
    script_vm *vm = script_tenant(domain_id);
    config_set("lua.memory_cap", "33554432", err, sizeof err);
    config_set("lua.time_budget_ms", "30", err, sizeof err);
    return vm;
}

static void unbounded_allocation_is_stopped_within_100ms(void **state)
{
    script_vm *vm = script_tenant(107);
    struct outcome o;
    /* whichever comes first, time budget or memory cap */
    const char *small =
        "local t, i = {}, 0 while true do i = i + 1 t[i] = string.rep('x', 200) .. i "
        "end";
    const char *big = "local t = {} while true do t[#t + 1] = ('x'):rep(1 << 20) .. #t end";
    const char *swallowed = "while true do pcall(function() local t = {} while true do "
                            "t[#t + 1] = ('y'):rep(1 << 16) .. #t end end) end";
    const char *codes[] = {small, big, swallowed};
    for (size_t i = 0; i < CW_ARRAY_LEN(codes); i++) {
        enum script_status st = run(vm, codes[i], &o, 2000);
        assert_true(st == SCRIPT_BUDGET || st == SCRIPT_MEMORY);
        assert_true(elapsed_ms(&o) < 100);
    }
    /* one huge allocation */
    assert_int_equal(run(vm, "local s = string.rep('x', 1 << 30) return 1", &o, 2000),
                     SCRIPT_MEMORY);
    assert_non_null(strstr(o.err, "memory cap"));
    /* the garbage is gone and the same VM serves the next coroutine */
    assert_true(script_vm_memory(vm) < (size_t)config_int("lua.memory_cap") / 4);
    assert_ptr_equal(script_tenant(107), vm);
    assert_int_equal(run(vm, "local t = {} for i = 1, 1000 do t[i] = i end return #t", &o, 2000),
                     SCRIPT_DONE);
    assert_int_equal(o.result, 1000);
}

static void memory_cap_ends_the_coroutine(void **state)
{
    script_vm *vm = small_vm(116);
    struct outcome o;
    assert_int_equal(
        run(vm, "local t = {} while true do t[#t + 1] = ('x'):rep(1 << 18) .. #t end", &o, 2000),
        SCRIPT_MEMORY);
    assert_non_null(strstr(o.err, "memory cap of 4194304 bytes"));
    /* allocating without bound is stopped within 100 ms of core-thread time */
    assert_true(elapsed_ms(&o) < 100);
    /* each slice stays inside the time budget; the cap ends it */
    assert_int_equal(run(vm,
                         "local t = {} while true do for j = 1, 200 do t[#t + 1] = "
                         "('z'):rep(1000) .. j end cw.sleep(0) end",
                         &o, 10000),
                     SCRIPT_MEMORY);
    assert_ptr_equal(script_tenant(116), vm);
    assert_int_equal(run(vm,
                         "local t = {} for i = 1, 1000 do t[i] = ('q'):rep(100) .. i end "
                         "return #t",
                         &o, 2000),
                     SCRIPT_DONE);
    assert_int_equal(o.result, 1000);
}

static void vm_full_after_memory_hit_is_replaced(void **state)
{
    script_vm *vm = small_vm(108);
    struct outcome waiter, o;
    /* a call-like coroutine waiting in the VM */
    script_co *w = start(vm, "local v = testmod.wait() return v + 1", &waiter);
    assert_non_null(waiting);
    /* a script that keeps everything it allocates in a global */
    assert_int_equal(
        run(vm, "big = {} while true do big[#big + 1] = ('x'):rep(1 << 16) .. #big end", &o, 2000),
        SCRIPT_MEMORY);
    script_vm *fresh = script_tenant(108);
    assert_non_null(fresh);
    assert_ptr_not_equal(fresh, vm);
    assert_int_equal(run(fresh, "assert(big == nil) return 3", &o, 2000), SCRIPT_DONE);
    /* the waiting coroutine still finishes in the old VM */
    assert_false(waiter.ended);
    wake(41);
    assert_true(waiter.ended);
    assert_int_equal(waiter.st, SCRIPT_DONE);
    assert_int_equal(waiter.result, 42);
    script_co_unref(w);
    pump_for(20); /* the old VM is reaped */
}

static void suspend_and_resume_from_c(void **state)
{
    struct outcome o;
    script_co *co = start(script_tenant(109),
                          "local a = testmod.wait() local b = testmod.wait() "
                          "return a * 100 + b",
                          &o);
    int user;
    script_co_set_user(co, &user);
    assert_ptr_equal(script_co_user(co), &user);
    assert_true(script_co_suspended(co));
    assert_false(o.ended);
    wake(4);
    assert_true(script_co_suspended(co));
    wake(2);
    assert_true(o.ended);
    assert_int_equal(o.st, SCRIPT_DONE);
    assert_int_equal(o.result, 402);
    assert_true(script_co_ended(co));
    assert_false(script_co_resume(co, 0));
    assert_null(script_co_thread(co));
    script_co_unref(co);
}

static void kill_suspended_runs_cancel_and_done(void **state)
{
    struct outcome o;
    cancels = 0;
    script_co *co = start(script_system(), "testmod.wait() error('not reached')", &o);
    assert_true(script_co_suspended(co));
    script_co_kill(co);
    assert_true(o.ended);
    assert_int_equal(o.st, SCRIPT_KILLED);
    assert_int_equal(cancels, 1);
    script_co_kill(co); /* twice is harmless */
    script_co_unref(co);

    /* releasing the last reference while suspended kills it */
    co = start(script_tenant(109), "testmod.wait()", &o);
    assert_non_null(waiting);
    script_co_unref(waiting); /* the module lets go of its reference ... */
    script_co_on_cancel(co, NULL, NULL);
    waiting = NULL;
    script_co_unref(co); /* ... and so does the creator */
    assert_true(o.ended);
    assert_int_equal(o.st, SCRIPT_KILLED);
}

static void kill_running_stops_at_next_instruction(void **state)
{
    struct outcome o;
    /* the system VM's budget is long: the kill stops this loop first */
    assert_int_equal(run(script_system(), "testmod.kill_self() while true do end", &o, 2000),
                     SCRIPT_KILLED);
    assert_true(elapsed_ms(&o) < 100);
}

static void system_scripts_have_a_long_budget(void **state)
{
    struct outcome o;
    /* 100 ms of work is fine for trusted code ... */
    assert_int_equal(run(script_system(),
                         "local t = os.clock() while os.clock() - t < 0.1 do end return 1", &o,
                         5000),
                     SCRIPT_DONE);
    /* ... but not for ever: lua.system_time_budget_ms (2 s) */
    assert_int_equal(run(script_system(), "while true do end", &o, 30000), SCRIPT_BUDGET);
    assert_true(elapsed_ms(&o) >= 1900 && elapsed_ms(&o) < 2600);
}

static void wait_refused_where_it_cannot_suspend(void **state)
{
    struct outcome o;
    assert_int_equal(
        run(script_tenant(110), "coroutine.wrap(function() testmod.wait() end)()", &o, 2000),
        SCRIPT_ERROR);
    assert_non_null(strstr(o.err, "cannot wait here"));
    assert_null(waiting);
    assert_int_equal(run(script_tenant(110),
                         "table.sort({3, 2, 1}, function(a, b) cw.sleep(1) return a < b end)", &o,
                         2000),
                     SCRIPT_ERROR);
    assert_non_null(strstr(o.err, "cannot wait here"));
    /* pcall is fine to wait through */
    assert_int_equal(
        run(script_tenant(110), "local ok = pcall(cw.sleep, 1) assert(ok) return 1", &o, 2000),
        SCRIPT_DONE);
}

static void script_cannot_drive_a_script_coroutine(void **state)
{
    struct outcome a, b;
    script_vm *vm = script_tenant(111);
    script_co *ca = start(vm, "T = coroutine.running() local v = testmod.wait() return v", &a);
    assert_true(script_co_suspended(ca));
    assert_int_equal(run(vm, "return coroutine.resume(T)", &b, 2000), SCRIPT_ERROR);
    assert_non_null(strstr(b.err, "cannot be resumed"));
    assert_int_equal(run(vm, "coroutine.close(T)", &b, 2000), SCRIPT_ERROR);
    assert_true(script_co_suspended(ca));
    wake(9);
    assert_int_equal(a.st, SCRIPT_DONE);
    assert_int_equal(a.result, 9);
    script_co_unref(ca);
}

static void errors_are_reported(void **state)
{
    struct outcome o;
    assert_int_equal(run(script_tenant(112), "local x = nil\nreturn x.field", &o, 2000),
                     SCRIPT_ERROR);
    assert_non_null(strstr(o.err, "test:2:"));
    assert_int_equal(run(script_tenant(112), "error({})", &o, 2000), SCRIPT_ERROR);
    assert_non_null(strstr(o.err, "not a string"));
    assert_int_equal(run(script_tenant(112), "coroutine.yield()", &o, 2000), SCRIPT_ERROR);
    assert_non_null(strstr(o.err, "outside a coroutine"));
    char err[256];
    assert_int_equal(script_compile(script_tenant(112), "=bad", "x = = 1", err, sizeof err),
                     CW_EINVAL);
    assert_non_null(strstr(err, "bad:1:"));
    assert_int_equal(
        script_load_string(script_tenant(112), "=bad", "error('early')", err, sizeof err),
        CW_EINVAL);
    assert_non_null(strstr(err, "early"));
    assert_int_equal(
        script_load_string(script_tenant(112), "=ok", "cw.sleep(5) x = 1", err, sizeof err), CW_OK);
}

static void modules_reach_every_vm(void **state)
{
    struct outcome o;
    assert_int_equal(run(script_tenant(113), "return testmod and 1 or 0", &o, 2000), SCRIPT_DONE);
    assert_int_equal(o.result, 1);
    assert_int_equal(run(script_tenant(113), "return cw.extra.answer", &o, 2000), SCRIPT_DONE);
    assert_int_equal(o.result, 42);
    assert_int_equal(run(script_system(), "return require('cw.extra').answer", &o, 2000),
                     SCRIPT_DONE);
    assert_int_equal(o.result, 42);
}

/* ---- reload ---- */

static int pongs, last_gen;

static void on_pong(const cw_event *ev, void *arg)
{
    pongs++;
    last_gen = (int)json_integer_value(json_object_get(ev->data, "gen"));
}

static void write_script(const char *name, const char *body)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", scripts_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
}

static int ping(void)
{
    pongs = 0;
    events_emit("test.ping", 0, NULL);
    pump_for(30);
    return pongs;
}

static void reload_replaces_handlers(void **state)
{
    int sub = events_subscribe("test.pong", on_pong, NULL);
    write_script("a.lua", "cw.on('test.ping', function(ev) cw.emit('test.pong', {gen = 1}) end)");
    assert_int_equal(script_reload(), CW_OK);
    assert_int_equal(ping(), 1);
    assert_int_equal(last_gen, 1);
    write_script("a.lua", "cw.on('test.ping', function(ev) cw.emit('test.pong', {gen = 2}) end)");
    assert_int_equal(script_reload(), CW_OK);
    assert_int_equal(ping(), 1); /* the old handler is gone */
    assert_int_equal(last_gen, 2);
    /* a script that does not compile: the running ones stay */
    write_script("b.lua", "this is not lua");
    assert_int_equal(script_reload(), CW_EINVAL);
    assert_int_equal(ping(), 1);
    assert_int_equal(last_gen, 2);
    char path[512];
    snprintf(path, sizeof path, "%s/b.lua", scripts_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/a.lua", scripts_dir);
    unlink(path);
    assert_int_equal(script_reload(), CW_OK);
    assert_int_equal(ping(), 0);
    events_unsubscribe(sub);
}

static void tenant_sees_only_its_events(void **state)
{
    struct outcome o;
    script_vm *vm = script_tenant(114);
    script_co *co = start(vm,
                          "local got = {} cw.on('test.', function(ev) got[#got + 1] = ev end) "
                          "while #got < 1 do cw.sleep(5) end cw.sleep(30) "
                          "assert(#got == 1, #got) assert(got[1].domain_id == 114) "
                          "assert(got[1].data.n == 7) return #got",
                          &o);
    events_emit("test.x", 115, json_pack("{s:i}", "n", 1));
    events_emit("test.x", 0, json_pack("{s:i}", "n", 2));
    events_emit("test.x", 114, json_pack("{s:i}", "n", 7));
    pump_until(&o.ended, 2000);
    assert_int_equal(o.st, SCRIPT_DONE);
    script_co_unref(co);
    assert_int_equal(run(vm, "cw.emit('call.fake', {})", &o, 2000), SCRIPT_ERROR);
    assert_non_null(strstr(o.err, "script.* and custom.*"));
    assert_int_equal(run(vm, "cw.emit('script.x', {}, 1)", &o, 2000), SCRIPT_ERROR);
    assert_int_equal(run(vm, "cw.emit('script.x', {f = print})", &o, 2000), SCRIPT_ERROR);
    assert_non_null(strstr(o.err, "data.f"));
}

static void log_lines_hold_what_the_script_said(void **state)
{
    char path[300];
    snprintf(path, sizeof path, "%s/log.txt", scripts_dir);
    assert_int_equal(log_open(path), CW_OK);
    log_set_level("warn");
    struct outcome o;
    assert_int_equal(run(script_tenant(118),
                         "cw.log('error', 'answer', 42, nil, true) print('p', 1) return 1", &o,
                         2000),
                     SCRIPT_DONE);
    assert_int_equal(run(script_tenant(118), "cw.log('loud', 'x')", &o, 2000), SCRIPT_ERROR);
    log_close();
    log_set_level("error");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "[script] domain 118: answer 42 nil true\n"));
    assert_null(strstr(buf, "userdata"));
    assert_non_null(strstr(buf, "level: error, warn"));
}

static int ext_open(lua_State *L)
{
    lua_newtable(L);
    lua_pushinteger(L, 42);
    lua_setfield(L, -2, "answer");
    return 1;
}

static int setup(void **state)
{
    snprintf(scripts_dir, sizeof scripts_dir, "/tmp/cw-script-XXXXXX");
    if (!mkdtemp(scripts_dir)) return -1;
    char err[256];
    char set[300];
    snprintf(set, sizeof set, "scripts_dir=%s", scripts_dir);
    const char *sets[] = {set, "log.level=error"};
    if (config_load(NULL, sets, 2, err, sizeof err)) return -1;
    log_set_level("error");
    if (loop_init()) return -1;
    script_add_module("testmod", t_open);
    if (script_init()) return -1;
    script_add_module("cw.extra", ext_open); /* after start: reaches existing VMs too */
    return 0;
}

static int teardown(void **state)
{
    script_shutdown();
    events_shutdown();
    loop_free();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", scripts_dir);
    if (system(cmd) != 0) return -1;
    config_free();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sandbox_removes_dangerous_libraries),
        cmocka_unit_test(sandbox_library_replacements_behave),
        cmocka_unit_test(tenant_patterns_behave_like_the_standard_ones),
        cmocka_unit_test(pattern_bombs_are_stopped),
        cmocka_unit_test(system_vm_is_trusted),
        cmocka_unit_test(tenant_vms_are_separate),
        cmocka_unit_test(endless_loop_is_stopped_within_100ms),
        cmocka_unit_test(instruction_budget_counts_instructions),
        cmocka_unit_test(budget_is_per_resume),
        cmocka_unit_test(unbounded_allocation_is_stopped_within_100ms),
        cmocka_unit_test(memory_cap_ends_the_coroutine),
        cmocka_unit_test(vm_full_after_memory_hit_is_replaced),
        cmocka_unit_test(suspend_and_resume_from_c),
        cmocka_unit_test(kill_suspended_runs_cancel_and_done),
        cmocka_unit_test(kill_running_stops_at_next_instruction),
        cmocka_unit_test(system_scripts_have_a_long_budget),
        cmocka_unit_test(wait_refused_where_it_cannot_suspend),
        cmocka_unit_test(script_cannot_drive_a_script_coroutine),
        cmocka_unit_test(errors_are_reported),
        cmocka_unit_test(modules_reach_every_vm),
        cmocka_unit_test(reload_replaces_handlers),
        cmocka_unit_test(tenant_sees_only_its_events),
        cmocka_unit_test(log_lines_hold_what_the_script_said),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
