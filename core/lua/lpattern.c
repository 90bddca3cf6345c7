/*
 * lpattern.c - string.find, match, gmatch and gsub for tenant VMs.
 *
 * The same Lua patterns as the standard library (reference manual 6.4.1),
 * but the matcher charges its work to the running script's budget: a
 * pattern that backtracks for ever (".-.-.-.-x" on a long subject), or a
 * plain search with a quadratic worst case, is stopped like a loop in Lua
 * code instead of holding the core thread. Raises Lua errors only; holds no
 * C allocations across them.
 */
#include "lua/script_int.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

#define MAX_CAPTURES 32
#define MAX_DEPTH    200
#define CHARGE_EVERY 1024
#define CAP_OPEN     (-1)
#define CAP_POSITION (-2)
#define ESC          '%'
#define SPECIALS     "^$*+?.([%-"

struct matcher {
    lua_State *L;
    const char *s0, *s_end; /* subject */
    const char *p_end;      /* pattern end */
    int depth;
    unsigned steps;
    int ncap;
    struct {
        const char *at;
        ptrdiff_t len;
    } cap[MAX_CAPTURES];
};

static void step(struct matcher *m)
{
    if (++m->steps >= CHARGE_EVERY) {
        script_charge(m->L, m->steps);
        m->steps = 0;
    }
}

static void settle(struct matcher *m)
{
    if (m->steps) script_charge(m->L, m->steps);
    m->steps = 0;
}

/* ---- single items ---- */

static bool class_match(int c, int cl)
{
    bool r;
    switch (tolower(cl)) {
    case 'a':
        r = isalpha(c);
        break;
    case 'c':
        r = iscntrl(c);
        break;
    case 'd':
        r = isdigit(c);
        break;
    case 'g':
        r = isgraph(c);
        break;
    case 'l':
        r = islower(c);
        break;
    case 'p':
        r = ispunct(c);
        break;
    case 's':
        r = isspace(c);
        break;
    case 'u':
        r = isupper(c);
        break;
    case 'w':
        r = isalnum(c);
        break;
    case 'x':
        r = isxdigit(c);
        break;
    case 'z':
        r = c == 0;
        break; /* old spelling of "\0", still accepted */
    default:
        return cl == c; /* %. %% %( ... stand for themselves */
    }
    return isupper(cl) ? !r : r;
}

/* Where the item starting at p ends (after a class, an escape or a set). */
static const char *item_end(struct matcher *m, const char *p)
{
    if (*p++ == ESC) {
        if (p >= m->p_end) luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (p[-1] == '[') {
        if (p < m->p_end && *p == '^') p++;
        do { /* the first character of a set is always in it, even ']' */
            if (p >= m->p_end) luaL_error(m->L, "malformed pattern (missing ']')");
            if (*p++ == ESC && p < m->p_end) p++;
        } while (*p != ']');
        return p + 1;
    }
    return p;
}

/* Does c belong to the set [p, last] (p at '[', last at ']')? */
static bool set_match(int c, const char *p, const char *last)
{
    bool want = true;
    if (*++p == '^') {
        want = false;
        p++;
    }
    while (p < last) {
        if (*p == ESC) {
            p++;
            if (class_match(c, (unsigned char)*p)) return want;
            p++;
        } else if (p[1] == '-' && p + 2 < last) {
            if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2]) return want;
            p += 3;
        } else {
            if ((unsigned char)*p == c) return want;
            p++;
        }
    }
    return !want;
}

static bool single_match(struct matcher *m, const char *s, const char *p, const char *ep)
{
    if (s >= m->s_end) return false;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.':
        return true;
    case ESC:
        return class_match(c, (unsigned char)p[1]);
    case '[':
        return set_match(c, p, ep - 1);
    default:
        return (unsigned char)*p == c;
    }
}

/* ---- the matcher ---- */

static const char *do_match(struct matcher *m, const char *s, const char *p);

static const char *greedy(struct matcher *m, const char *s, const char *p, const char *ep)
{
    ptrdiff_t n = 0;
    while (single_match(m, s + n, p, ep)) {
        n++;
        step(m);
    }
    for (; n >= 0; n--) { /* longest first */
        const char *r = do_match(m, s + n, ep + 1);
        if (r) return r;
        step(m);
    }
    return NULL;
}

static const char *lazy(struct matcher *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *r = do_match(m, s, ep + 1);
        if (r) return r;
        if (!single_match(m, s, p, ep)) return NULL;
        s++;
        step(m);
    }
}

static const char *open_capture(struct matcher *m, const char *s, const char *p, ptrdiff_t what)
{
    if (m->ncap >= MAX_CAPTURES) luaL_error(m->L, "too many captures");
    m->cap[m->ncap].at = s;
    m->cap[m->ncap].len = what;
    m->ncap++;
    const char *r = do_match(m, s, p);
    if (!r) m->ncap--; /* undo */
    return r;
}

static const char *close_capture(struct matcher *m, const char *s, const char *p)
{
    int i = m->ncap - 1;
    while (i >= 0 && m->cap[i].len != CAP_OPEN)
        i--;
    if (i < 0) luaL_error(m->L, "invalid pattern capture");
    m->cap[i].len = s - m->cap[i].at;
    const char *r = do_match(m, s, p);
    if (!r) m->cap[i].len = CAP_OPEN;
    return r;
}

static const char *balance(struct matcher *m, const char *s, const char *p)
{
    if (p + 1 >= m->p_end) luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->s_end || *s != *p) return NULL;
    char open = p[0], close = p[1];
    int level = 1;
    while (++s < m->s_end) {
        step(m);
        if (*s == close) {
            if (--level == 0) return s + 1;
        } else if (*s == open) {
            level++;
        }
    }
    return NULL;
}

static const char *backref(struct matcher *m, const char *s, int l)
{
    l -= '1';
    if (l < 0 || l >= m->ncap || m->cap[l].len == CAP_OPEN)
        luaL_error(m->L, "invalid capture index %%%d", l + 1);
    size_t len = (size_t)m->cap[l].len;
    if ((size_t)(m->s_end - s) >= len && memcmp(m->cap[l].at, s, len) == 0) return s + len;
    return NULL;
}

static const char *do_match(struct matcher *m, const char *s, const char *p)
{
    if (++m->depth > MAX_DEPTH) luaL_error(m->L, "pattern too complex");
    const char *r = NULL;
    for (;;) {
        step(m);
        if (p >= m->p_end) {
            r = s;
            break;
        }
        if (*p == '(') {
            r = p[1] == ')' ? open_capture(m, s, p + 2, CAP_POSITION)
                            : open_capture(m, s, p + 1, CAP_OPEN);
            break;
        }
        if (*p == ')') {
            r = close_capture(m, s, p + 1);
            break;
        }
        if (*p == '$' && p + 1 == m->p_end) {
            r = s == m->s_end ? s : NULL;
            break;
        }
        if (*p == ESC && p + 1 < m->p_end && p[1] == 'b') {
            s = balance(m, s, p + 2);
            if (!s) break;
            p += 4;
            continue;
        }
        if (*p == ESC && p + 1 < m->p_end && p[1] == 'f') {
            p += 2;
            if (p >= m->p_end || *p != '[') luaL_error(m->L, "missing '[' after '%%f' in pattern");
            const char *ep = item_end(m, p);
            int prev = s == m->s0 ? 0 : (unsigned char)s[-1];
            int cur = s < m->s_end ? (unsigned char)*s : 0;
            if (set_match(prev, p, ep - 1) || !set_match(cur, p, ep - 1)) break;
            p = ep;
            continue;
        }
        if (*p == ESC && p + 1 < m->p_end && isdigit((unsigned char)p[1])) {
            s = backref(m, s, (unsigned char)p[1]);
            if (!s) break;
            p += 2;
            continue;
        }
        const char *ep = item_end(m, p);
        char q = ep < m->p_end ? *ep : '\0';
        if (!single_match(m, s, p, ep)) {
            if (q == '*' || q == '?' || q == '-') { /* zero is allowed */
                p = ep + 1;
                continue;
            }
            break; /* r stays NULL */
        }
        if (q == '?') {
            r = do_match(m, s + 1, ep + 1);
            if (r) break;
            p = ep + 1;
            continue;
        }
        if (q == '+') {
            r = greedy(m, s + 1, p, ep);
            break;
        }
        if (q == '*') {
            r = greedy(m, s, p, ep);
            break;
        }
        if (q == '-') {
            r = lazy(m, s, p, ep);
            break;
        }
        s++;
        p = ep;
    }
    m->depth--;
    return r;
}

/* ---- results ---- */

static void push_capture(struct matcher *m, int i, const char *s, const char *e)
{
    if (i >= m->ncap) {
        if (i != 0) luaL_error(m->L, "invalid capture index %%%d", i + 1);
        lua_pushlstring(m->L, s, (size_t)(e - s));
        return;
    }
    if (m->cap[i].len == CAP_OPEN) luaL_error(m->L, "unfinished capture");
    if (m->cap[i].len == CAP_POSITION)
        lua_pushinteger(m->L, (lua_Integer)(m->cap[i].at - m->s0) + 1);
    else
        lua_pushlstring(m->L, m->cap[i].at, (size_t)m->cap[i].len);
}

/* All captures, or the whole match when there are none (s NULL: captures only). */
static int push_captures(struct matcher *m, const char *s, const char *e)
{
    int n = (m->ncap == 0 && s) ? 1 : m->ncap;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

static void start(struct matcher *m, lua_State *L, const char *s, size_t ls, const char *p,
                  size_t lp)
{
    m->L = L;
    m->s0 = s;
    m->s_end = s + ls;
    m->p_end = p + lp;
    m->depth = 0;
    m->steps = 0;
    m->ncap = 0;
}

/* Position argument: 1-based, negative from the end, clamped. */
static size_t init_pos(lua_State *L, int arg, size_t len)
{
    lua_Integer pos = luaL_optinteger(L, arg, 1);
    if (pos > 0) return (size_t)pos;
    if (pos == 0) return 1;
    if (pos < -(lua_Integer)len) return 1;
    return len + (size_t)pos + 1;
}

/* Plain search with its work charged: the naive worst case is quadratic. */
static const char *plain_find(struct matcher *m, const char *s, size_t ls, const char *p, size_t lp)
{
    if (lp == 0) return s;
    if (lp > ls) return NULL;
    const char *last = s + (ls - lp);
    while (s <= last) {
        const char *hit = memchr(s, *p, (size_t)(last - s) + 1);
        if (!hit) return NULL;
        m->steps += (unsigned)(hit - s) / 16 + (unsigned)lp / 8 + 1;
        if (m->steps >= CHARGE_EVERY) settle(m);
        if (memcmp(hit + 1, p + 1, lp - 1) == 0) return hit;
        s = hit + 1;
    }
    return NULL;
}

/* A pattern without magic characters (in any of its zero-separated pieces) is a plain search. */
static bool no_specials(const char *p, size_t lp)
{
    size_t upto = 0;
    do {
        if (strpbrk(p + upto, SPECIALS)) return false;
        upto += strlen(p + upto) + 1;
    } while (upto <= lp);
    return true;
}

static int find_aux(lua_State *L, bool find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = init_pos(L, 3, ls) - 1;
    if (init > ls) {
        lua_pushnil(L);
        return 1;
    }
    struct matcher m;
    start(&m, L, s, ls, p, lp);
    if (find && (lua_toboolean(L, 4) || no_specials(p, lp))) {
        const char *hit = plain_find(&m, s + init, ls - init, p, lp);
        settle(&m);
        if (hit) {
            lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
            lua_pushinteger(L, (lua_Integer)(hit - s) + (lua_Integer)lp);
            return 2;
        }
        lua_pushnil(L);
        return 1;
    }
    bool anchor = lp > 0 && *p == '^';
    if (anchor) {
        p++;
        m.p_end = p + lp - 1;
    }
    const char *at = s + init;
    do {
        m.ncap = 0;
        m.depth = 0;
        const char *e = do_match(&m, at, p);
        if (e) {
            settle(&m);
            if (find) {
                lua_pushinteger(L, (lua_Integer)(at - s) + 1);
                lua_pushinteger(L, (lua_Integer)(e - s));
                return push_captures(&m, NULL, NULL) + 2;
            }
            return push_captures(&m, at, e);
        }
    } while (at++ < m.s_end && !anchor);
    settle(&m);
    lua_pushnil(L);
    return 1;
}

static int p_find(lua_State *L)
{
    return find_aux(L, true);
}

static int p_match(lua_State *L)
{
    return find_aux(L, false);
}

/* gmatch state lives in a userdata upvalue; subject and pattern are upvalues too. */
struct gm {
    size_t pos;     /* next start, offset in the subject */
    ptrdiff_t last; /* end offset of the last match, -1 none */
};

static int gmatch_next(lua_State *L)
{
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
    struct gm *g = lua_touserdata(L, lua_upvalueindex(3));
    struct matcher m;
    start(&m, L, s, ls, p, lp);
    for (const char *at = s + g->pos; at <= m.s_end; at++) {
        m.ncap = 0;
        m.depth = 0;
        const char *e = do_match(&m, at, p);
        if (e && e - s != g->last) {
            settle(&m);
            g->pos = (size_t)(e - s);
            g->last = e - s;
            return push_captures(&m, at, e);
        }
    }
    settle(&m);
    g->pos = ls + 1;
    return 0;
}

static int p_gmatch(lua_State *L)
{
    size_t ls;
    luaL_checklstring(L, 1, &ls);
    luaL_checkstring(L, 2);
    size_t init = init_pos(L, 3, ls) - 1;
    lua_settop(L, 2);
    struct gm *g = lua_newuserdatauv(L, sizeof *g, 0);
    g->pos = init > ls ? ls + 1 : init;
    g->last = -1;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

static void add_replacement(struct matcher *m, luaL_Buffer *b, const char *s, const char *e, int tr)
{
    lua_State *L = m->L;
    if (tr == LUA_TSTRING || tr == LUA_TNUMBER) {
        size_t l;
        const char *r = lua_tolstring(L, 3, &l);
        const char *end = r + l;
        while (r < end) {
            const char *pc = memchr(r, ESC, (size_t)(end - r));
            if (!pc) {
                luaL_addlstring(b, r, (size_t)(end - r));
                break;
            }
            luaL_addlstring(b, r, (size_t)(pc - r));
            pc++;
            if (pc < end && *pc == ESC) {
                luaL_addchar(b, ESC);
            } else if (pc < end && isdigit((unsigned char)*pc)) {
                if (*pc == '0')
                    luaL_addlstring(b, s, (size_t)(e - s));
                else {
                    push_capture(m, *pc - '1', s, e);
                    luaL_tolstring(L, -1, NULL);
                    lua_remove(L, -2);
                    luaL_addvalue(b);
                }
            } else {
                luaL_error(L, "invalid use of '%c' in replacement string", ESC);
            }
            r = pc + 1;
        }
        return;
    }
    if (tr == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
    } else { /* table */
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    }
    if (!lua_toboolean(L, -1)) { /* nil or false: keep the original */
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    } else {
        luaL_addvalue(b);
    }
}

static int p_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int tr = lua_type(L, 3);
    lua_Integer max_s = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(
        L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
        "string/function/table");
    bool anchor = lp > 0 && *p == '^';
    if (anchor) {
        p++;
        lp--;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    struct matcher m;
    start(&m, L, src, ls, p, lp);
    const char *s = src, *last = NULL;
    lua_Integer n = 0;
    while (n < max_s) {
        m.ncap = 0;
        m.depth = 0;
        const char *e = do_match(&m, s, p);
        if (e && e != last) {
            n++;
            add_replacement(&m, &b, s, e, tr);
            s = last = e;
        } else if (s < m.s_end) {
            luaL_addchar(&b, *s++);
        } else {
            break;
        }
        if (anchor) break;
    }
    settle(&m);
    if (n == 0) { /* nothing replaced: the subject itself */
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, s, (size_t)(m.s_end - s));
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

void script_open_patterns(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"find", p_find}, {"match", p_match}, {"gmatch", p_gmatch}, {"gsub", p_gsub}, {NULL, NULL},
    };
    lua_getglobal(L, LUA_STRLIBNAME);
    luaL_setfuncs(L, fns, 0);
    lua_pop(L, 1);
}
