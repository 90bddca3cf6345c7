/*
 * crud.c - the engine: turns an entity descriptor into list / get / create
 * / update / delete handlers.
 *
 * Order inside a write: scope and tenant (404), body shape and field rules
 * (400 naming the field), field write roles (403), uniqueness (409), the
 * entity's validate hook, password hashing on a worker when a password is
 * set, then one transaction: the write, the after_write hook, the audit
 * row. Nothing is written when any step refuses. Core thread only.
 */
#include "domain/crud.h"
#include "events/events.h"
#include "log/log.h"
#include "mail/mail.h"

#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const crud_languages[] = {"ru", "en", "de", "es", "fr", NULL};
const char *const crud_statuses[] = {"active", "blocked", NULL};

#define MAX_ARGS 48

/* ---------------------------------------------------------------- helpers */

static bool is_column(const struct crud_field *f)
{
    return !(f->flags & FF_VIRTUAL) && f->type != FT_PASSWORD && f->type != FT_IDLIST;
}

static const struct crud_field *field_of(const struct crud_entity *e, const char *name)
{
    for (int i = 0; i < e->nfields; i++)
        if (!strcmp(e->fields[i].name, name)) return &e->fields[i];
    return NULL;
}

bool crud_fail(struct crud_ctx *c, int status, const char *code, const char *field, const char *fmt,
               ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_reply_error_with(c->req, status, code, field, NULL, msg);
    return false;
}

bool crud_store_fail(struct crud_ctx *c, int rc)
{
    if (rc == CW_EEXIST)
        return crud_fail(c, 409, "conflict", NULL, "an object with the same unique value exists");
    if (rc == CW_ESTATE)
        return crud_fail(c, 409, "in_use", NULL, "the object is referenced by others");
    log_error("api", "%s %s: store error: %s", c->req->method, c->req->path,
              store_errmsg(store_main()));
    return crud_fail(c, 500, "store", NULL, "the store failed");
}

json_t *crud_value(struct crud_ctx *c, const char *field)
{
    json_t *v = c->in ? json_object_get(c->in, field) : NULL;
    if (!v && c->old) v = json_object_get(c->old, field);
    return v;
}

bool crud_not_self(struct crud_ctx *c)
{
    if (c->id == c->req->auth->user_id)
        return crud_fail(c, 409, "self", NULL, "you cannot delete your own account");
    return true;
}

json_t *crud_id_list(const char *sql, int64_t id)
{
    json_t *a = json_array();
    store_res *r;
    if (store_query(store_main(), &r, sql, SA_INT(id), SA_END) >= 0) {
        while (store_next(r))
            json_array_append_new(a, json_integer(store_int(r, 0)));
        store_res_free(r);
    }
    return a;
}

store_res *crud_page_query(json_t *items, const char *sql)
{
    const char *mark = strstr(sql, "(?)");
    size_t n = json_array_size(items), padded = 8;
    while (padded < n)
        padded *= 2;
    store_arg *args = cw_calloc(padded, sizeof *args);
    cw_buf q;
    cw_buf_init(&q);
    cw_buf_append(&q, sql, (size_t)(mark - sql));
    cw_buf_puts(&q, "(");
    for (size_t i = 0; i < padded; i++) {
        json_t *id = i < n ? json_object_get(json_array_get(items, i), "id") : NULL;
        args[i] = SA_INT(id ? json_integer_value(id) : 0);
        cw_buf_puts(&q, i ? ", ?" : "?");
    }
    cw_buf_puts(&q, mark + 2);
    store_res *r = NULL;
    if (store_queryv(store_main(), &r, q.data, args, (int)padded) < 0) r = NULL;
    cw_buf_free(&q);
    free(args);
    return r;
}

json_t *crud_page_index(json_t *items)
{
    json_t *index = json_object();
    size_t i;
    json_t *o;
    json_array_foreach(items, i, o)
    {
        char key[24];
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_object_get(o, "id")));
        json_object_set(index, key, o);
    }
    return index;
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

static bool regex_match(const char *pattern, const char *s)
{
    static struct {
        const char *pattern;
        regex_t re;
    } cache[64];
    static int ncache;
    regex_t *re = NULL;
    for (int i = 0; i < ncache; i++)
        if (cache[i].pattern == pattern) re = &cache[i].re;
    if (!re) {
        if (ncache == (int)CW_ARRAY_LEN(cache)) return false;
        char *anchored = cw_sprintf("^(%s)$", pattern);
        int rc = regcomp(&cache[ncache].re, anchored, REG_EXTENDED | REG_NOSUB);
        free(anchored);
        if (rc) {
            log_error("api", "bad field pattern %s", pattern);
            return false;
        }
        cache[ncache].pattern = pattern;
        re = &cache[ncache++].re;
    }
    return regexec(re, s, 0, NULL, 0) == 0;
}

/* ------------------------------------------------------------- reading */

static void select_list(const struct crud_entity *e, cw_buf *b)
{
    cw_buf_puts(b, "id");
    for (int i = 0; i < e->nfields; i++)
        if (is_column(&e->fields[i])) {
            cw_buf_append(b, ", ", 2);
            cw_buf_puts(b, e->fields[i].name);
        }
}

/* WHERE for the entity's scope; false when the caller reaches nothing. */
static bool scope_where(struct crud_ctx *c, cw_buf *w, store_arg *args, int *n)
{
    const struct crud_entity *e = c->e;
    switch (e->scope) {
    case SCOPE_GLOBAL:
        cw_buf_puts(w, "1 = 1");
        break;
    case SCOPE_POOL:
        cw_buf_puts(w, "pool_id = ?");
        args[(*n)++] = SA_INT(c->scope_id);
        break;
    case SCOPE_DOMAIN:
        cw_buf_puts(w, "domain_id = ?");
        args[(*n)++] = SA_INT(c->scope_id);
        break;
    case SCOPE_OWNER:
        cw_buf_puts(w, "domain_id = ? AND owner_id = ?");
        args[(*n)++] = SA_INT(c->domain_id);
        args[(*n)++] = SA_INT(c->scope_id);
        break;
    }
    if (e->where) cw_buf_printf(w, " AND (%s)", e->where);
    return !e->reach || e->reach(c, w, args, n);
}

static json_t *cell_json(const struct crud_field *f, store_res *r, int col)
{
    if (store_isnull(r, col)) return json_null();
    switch (f->type) {
    case FT_INT:
    case FT_ID:
        return json_integer(store_int(r, col));
    case FT_BOOL:
        return json_boolean(store_int(r, col) != 0);
    case FT_JSON: {
        json_t *j = json_loads(store_str(r, col), 0, NULL);
        return j ? j : json_null();
    }
    default:
        return json_string(store_str(r, col));
    }
}

/* The object of the current row, without the entity's virtual members. */
static json_t *row_object(struct crud_ctx *c, store_res *r)
{
    const struct crud_entity *e = c->e;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(store_int(r, 0)));
    int col = 1;
    for (int i = 0; i < e->nfields; i++) {
        const struct crud_field *f = &e->fields[i];
        if (!is_column(f)) continue;
        if (!(f->flags & (FF_HIDDEN | FF_WRITEONLY)))
            json_object_set_new(o, f->name, cell_json(f, r, col));
        col++;
    }
    return o;
}

static json_t *row_json(struct crud_ctx *c, store_res *r)
{
    json_t *o = row_object(c, r);
    if (c->e->decorate) c->e->decorate(c, o);
    return o;
}

json_t *crud_fetch(struct crud_ctx *c, int64_t id)
{
    cw_buf sql, w;
    cw_buf_init(&sql);
    cw_buf_init(&w);
    store_arg args[MAX_ARGS];
    int n = 0;
    json_t *o = NULL;
    if (scope_where(c, &w, args, &n)) {
        args[n++] = SA_INT(id);
        cw_buf_puts(&sql, "SELECT ");
        select_list(c->e, &sql);
        cw_buf_printf(&sql, " FROM %s WHERE %s AND id = ?", c->e->table, w.data);
        store_res *r;
        if (store_queryv(store_main(), &r, sql.data, args, n) >= 0) {
            if (store_next(r)) o = row_json(c, r);
            store_res_free(r);
        }
    }
    cw_buf_free(&sql);
    cw_buf_free(&w);
    return o;
}

/* The object's name for the audit log and events. */
static const char *object_label(struct crud_ctx *c, json_t *obj)
{
    json_t *v = c->e->name_field ? json_object_get(obj, c->e->name_field) : NULL;
    return json_is_string(v) ? json_string_value(v) : "";
}

/* ------------------------------------------------------------ the scope */

static bool resolve_scope(struct crud_ctx *c)
{
    http_req *req = c->req;
    switch (c->e->scope) {
    case SCOPE_GLOBAL:
        return true;
    case SCOPE_POOL:
        if (!http_pool_param(req, 0, &c->scope_id)) return false;
        c->pool_id = c->scope_id;
        return true;
    case SCOPE_DOMAIN:
        if (!http_domain_param(req, 0, &c->scope_id)) return false;
        c->domain_id = c->scope_id;
        return true;
    case SCOPE_OWNER:
        if (!req->auth->domain_id)
            return crud_fail(c, 404, "not_found", NULL, "only domain users have an address book");
        c->scope_id = req->auth->user_id;
        c->domain_id = req->auth->domain_id;
        return true;
    }
    return false;
}

static bool object_id(struct crud_ctx *c)
{
    const char *v = c->req->nparams ? c->req->params[c->req->nparams - 1] : NULL;
    if (!v || cw_parse_i64(v, &c->id) || c->id <= 0)
        return crud_fail(c, 404, "not_found", NULL, "no such %s", c->e->label);
    return true;
}

static void ctx_free(struct crud_ctx *c)
{
    json_decref(c->in);
    json_decref(c->cols);
    json_decref(c->old);
    json_decref(c->extra);
    free(c);
}

static struct crud_ctx *ctx_new(http_req *req)
{
    struct crud_ctx *c = cw_calloc(1, sizeof *c);
    c->req = req;
    c->e = req->priv;
    return c;
}

/* ----------------------------------------------------------------- list */

/*
 * List pages served again while the store is unchanged: keyed by the page's
 * SQL and arguments and the caller, valid for one store generation. Only for
 * entities whose objects come from the store alone, and only where the store
 * can tell that nothing changed (SQLite); PostgreSQL lists always read.
 */
#define PAGE_CACHE_SLOTS     16
#define PAGE_CACHE_MAX_BYTES (1 << 20)

static struct page_cache_slot {
    uint64_t gen;
    char *key; /* binary, klen bytes */
    size_t klen;
    char *body;
    size_t len;
} page_cache[PAGE_CACHE_SLOTS];
static int page_cache_next;

static bool page_cacheable(const struct crud_entity *e)
{
    return e->decorate_stored || (!e->decorate && !e->decorate_page);
}

static char *page_key(struct crud_ctx *c, const char *sql, const store_arg *args, int n,
                      size_t *klen)
{
    /* binary: the numbers as they are in memory, strings with their length */
    int64_t who[3] = {c->req->auth->user_id, c->domain_id, c->scope_id};
    cw_buf k;
    cw_buf_init(&k);
    cw_buf_puts(&k, c->e->path);
    cw_buf_append(&k, who, sizeof who);
    cw_buf_puts(&k, sql);
    for (int i = 0; i < n; i++) {
        size_t len = args[i].kind == STORE_A_STR && args[i].s ? strlen(args[i].s) : 0;
        cw_buf_append(&k, &args[i].kind, sizeof args[i].kind);
        if (args[i].kind == STORE_A_INT) cw_buf_append(&k, &args[i].i, sizeof args[i].i);
        if (len || args[i].kind == STORE_A_STR) {
            cw_buf_append(&k, &len, sizeof len);
            if (len) cw_buf_append(&k, args[i].s, len);
        }
    }
    *klen = k.len;
    return cw_buf_steal(&k);
}

static struct page_cache_slot *page_cache_find(uint64_t gen, const char *key, size_t klen)
{
    for (int i = 0; i < PAGE_CACHE_SLOTS; i++)
        if (page_cache[i].key && page_cache[i].gen == gen && page_cache[i].klen == klen &&
            !memcmp(page_cache[i].key, key, klen))
            return &page_cache[i];
    return NULL;
}

/* Keep body (taken) as the page for key in generation gen. */
static void page_cache_put(uint64_t gen, char *key, size_t klen, char *body, size_t len)
{
    struct page_cache_slot *s = NULL;
    for (int i = 0; i < PAGE_CACHE_SLOTS && !s; i++)
        if (page_cache[i].key && page_cache[i].gen != gen) s = &page_cache[i]; /* stale */
    if (!s) {
        s = &page_cache[page_cache_next];
        page_cache_next = (page_cache_next + 1) % PAGE_CACHE_SLOTS;
    }
    free(s->key);
    free(s->body);
    *s = (struct page_cache_slot){gen, key, klen, body, len};
}

static bool parse_filter(struct crud_ctx *c, const struct crud_field *f, const char *v,
                         store_arg *arg)
{
    switch (f->type) {
    case FT_INT:
    case FT_ID: {
        int64_t i;
        if (cw_parse_i64(v, &i))
            return crud_fail(c, 400, "invalid_parameter", f->name, "%s must be an integer",
                             f->name);
        *arg = SA_INT(i);
        return true;
    }
    case FT_BOOL:
        if (strcmp(v, "true") && strcmp(v, "false"))
            return crud_fail(c, 400, "invalid_parameter", f->name, "%s must be true or false",
                             f->name);
        *arg = SA_BOOL(!strcmp(v, "true"));
        return true;
    default:
        *arg = SA_STR(v);
        return true;
    }
}

static void crud_list(http_req *req)
{
    struct crud_ctx *c = ctx_new(req);
    const struct crud_entity *e = c->e;
    const char *allowed[MAX_ARGS] = {"limit", "offset", "q", "sort"};
    int na = 4;
    for (int i = 0; i < e->nfields && na + 1 < MAX_ARGS; i++)
        if (e->fields[i].flags & FF_FILTER) allowed[na++] = e->fields[i].name;
    allowed[na] = NULL;
    int64_t limit, offset;
    cw_buf w, sql;
    cw_buf_init(&w);
    cw_buf_init(&sql);
    store_arg args[MAX_ARGS];
    int n = 0;
    char *like = NULL, *key = NULL;
    size_t klen = 0;
    if (!resolve_scope(c) || !http_query_only(req, allowed) || !http_page(req, &limit, &offset))
        goto out;
    bool any = scope_where(c, &w, args, &n);
    for (int i = 0; i < e->nfields; i++) {
        const struct crud_field *f = &e->fields[i];
        const char *v = (f->flags & FF_FILTER) ? http_query(req, f->name) : NULL;
        if (!v) continue;
        if (!parse_filter(c, f, v, &args[n])) goto out;
        n++;
        cw_buf_printf(&w, " AND %s = ?", f->name);
    }
    const char *q = http_query(req, "q");
    if (q && *q) {
        like = cw_sprintf("%%%s%%", q);
        cw_buf_puts(&w, " AND (1 = 0");
        for (int i = 0; i < e->nfields; i++)
            if (e->fields[i].flags & FF_SEARCH) {
                cw_buf_printf(&w, " OR LOWER(%s) LIKE LOWER(?)", e->fields[i].name);
                args[n++] = SA_STR(like);
            }
        cw_buf_puts(&w, ")");
    }
    char order[96];
    snprintf(order, sizeof order, "%s", e->order ? e->order : "id");
    const char *sort = http_query(req, "sort");
    if (sort) {
        bool desc = sort[0] == '-';
        const struct crud_field *f = field_of(e, sort + desc);
        if ((!f || !is_column(f) || (f->flags & (FF_HIDDEN | FF_WRITEONLY))) &&
            strcmp(sort + desc, "id")) {
            crud_fail(c, 400, "invalid_parameter", "sort", "cannot sort by \"%s\"", sort + desc);
            goto out;
        }
        snprintf(order, sizeof order, "%s%s", sort + desc, desc ? " DESC" : "");
    }
    store *st = store_main();
    /* read before the queries: a change after it makes this page stale, never the reverse */
    uint64_t gen = page_cacheable(e) ? store_generation(st) : 0;
    cw_buf_puts(&sql, "SELECT ");
    select_list(e, &sql);
    cw_buf_printf(&sql, " FROM %s WHERE %s ORDER BY %s, id LIMIT ? OFFSET ?", e->table, w.data,
                  order);
    args[n] = SA_INT(limit);
    args[n + 1] = SA_INT(offset);
    if (gen) {
        key = page_key(c, any ? sql.data : "", args, n + 2, &klen);
        struct page_cache_slot *hit = page_cache_find(gen, key, klen);
        if (hit) {
            http_reply_bytes(req, 200, "application/json", hit->body, hit->len);
            goto out;
        }
    }
    json_t *items = json_array();
    int64_t total = 0;
    if (any) {
        store_res *r;
        char *count = cw_sprintf("SELECT COUNT(*) FROM %s WHERE %s", e->table, w.data);
        if (store_queryv(st, &r, count, args, n) >= 0 && store_next(r)) total = store_int(r, 0);
        store_res_free(r);
        free(count);
        if (store_queryv(st, &r, sql.data, args, n + 2) < 0) {
            json_decref(items);
            crud_store_fail(c, CW_EIO);
            goto out;
        }
        while (store_next(r))
            json_array_append_new(items, e->decorate_page ? row_object(c, r) : row_json(c, r));
        store_res_free(r);
        if (e->decorate_page && json_array_size(items)) e->decorate_page(c, items);
    }
    json_t *page = json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total,
                             "limit", (json_int_t)limit, "offset", (json_int_t)offset);
    cw_buf text;
    cw_buf_init(&text);
    if (http_json_text(&text, page)) {
        crud_fail(c, 500, "internal", NULL, "the list could not be written");
    } else {
        http_reply_bytes(req, 200, "application/json", text.data, text.len);
        if (gen && text.len <= PAGE_CACHE_MAX_BYTES) {
            size_t len = text.len;
            page_cache_put(gen, key, klen, cw_buf_steal(&text), len);
            key = NULL;
        }
    }
    json_decref(page);
    cw_buf_free(&text);
out:
    free(key);
    free(like);
    cw_buf_free(&w);
    cw_buf_free(&sql);
    ctx_free(c);
}

static void crud_get(http_req *req)
{
    struct crud_ctx *c = ctx_new(req);
    if (resolve_scope(c) && object_id(c)) {
        json_t *o = crud_fetch(c, c->id);
        if (o)
            http_reply_json(req, 200, o);
        else
            crud_fail(c, 404, "not_found", NULL, "no such %s", c->e->label);
    }
    ctx_free(c);
}

/* ------------------------------------------------------------ validation */

static bool check_value(struct crud_ctx *c, const struct crud_field *f, json_t *v)
{
    const char *n = f->name;
    if (json_is_null(v)) {
        if (f->flags & FF_NULLABLE || f->type == FT_EMAIL) return true;
        return crud_fail(c, 400, "invalid_value", n, "%s must not be null", n);
    }
    switch (f->type) {
    case FT_TEXT:
    case FT_PASSWORD: {
        if (!json_is_string(v))
            return crud_fail(c, 400, "invalid_type", n, "%s must be a string", n);
        const char *s = json_string_value(v);
        if (f->type == FT_PASSWORD) {
            const char *why = auth_password_problem(s);
            return why ? crud_fail(c, 400, "weak_password", n, "%s %s", n, why) : true;
        }
        size_t len = utf8_len(s);
        if ((int64_t)len < f->min || (f->max && (int64_t)len > f->max))
            return crud_fail(c, 400, "invalid_value", n, "%s must be %lld..%lld characters", n,
                             (long long)f->min, (long long)f->max);
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
            if (*p < 0x20 && *p != '\t')
                return crud_fail(c, 400, "invalid_value", n, "%s holds control characters", n);
        if (f->pattern && !regex_match(f->pattern, s))
            return crud_fail(c, 400, "invalid_value", n, "%s has the wrong format%s%s", n,
                             f->doc ? ": " : "", f->doc ? f->doc : "");
        return true;
    }
    case FT_INT:
    case FT_ID: {
        if (!json_is_integer(v))
            return crud_fail(c, 400, "invalid_type", n, "%s must be an integer", n);
        int64_t i = json_integer_value(v);
        if (f->type == FT_ID) {
            if (i <= 0) return crud_fail(c, 400, "invalid_value", n, "%s must be an id", n);
            if (f->ref) {
                char *sql = cw_sprintf("SELECT 1 FROM %s WHERE id = ? AND domain_id = ?", f->ref);
                int64_t one;
                int rc = store_query_int(store_main(), &one, sql, SA_INT(i), SA_INT(c->domain_id),
                                         SA_END);
                free(sql);
                if (rc != CW_OK)
                    return crud_fail(c, 400, "invalid_value", n, "%s: no such object", n);
            }
            return true;
        }
        if (i < f->min || i > f->max)
            return crud_fail(c, 400, "invalid_value", n, "%s must be %lld..%lld", n,
                             (long long)f->min, (long long)f->max);
        return true;
    }
    case FT_BOOL:
        return json_is_boolean(v) ? true
                                  : crud_fail(c, 400, "invalid_type", n,
                                              "%s must be true or "
                                              "false",
                                              n);
    case FT_ENUM: {
        if (!json_is_string(v))
            return crud_fail(c, 400, "invalid_type", n, "%s must be a string", n);
        for (const char *const *e = f->values; *e; e++)
            if (!strcmp(*e, json_string_value(v))) return true;
        cw_buf b;
        cw_buf_init(&b);
        for (const char *const *e = f->values; *e; e++)
            cw_buf_printf(&b, "%s%s", e == f->values ? "" : ", ", *e);
        crud_fail(c, 400, "invalid_value", n, "%s must be one of: %s", n, b.data);
        cw_buf_free(&b);
        return false;
    }
    case FT_DIGITS: {
        if (!json_is_string(v))
            return crud_fail(c, 400, "invalid_type", n, "%s must be a string of digits", n);
        const char *s = json_string_value(v);
        size_t len = strlen(s);
        if (!cw_str_is_digits(s) || (int64_t)len < f->min || (int64_t)len > f->max)
            return crud_fail(c, 400, "invalid_value", n, "%s must be %lld..%lld digits", n,
                             (long long)f->min, (long long)f->max);
        return true;
    }
    case FT_EMAIL:
        if (!json_is_string(v))
            return crud_fail(c, 400, "invalid_type", n, "%s must be a string", n);
        if (*json_string_value(v) && !mail_address_valid(json_string_value(v)))
            return crud_fail(c, 400, "invalid_value", n, "%s is not a valid e-mail address", n);
        return true;
    case FT_JSON:
        return json_is_array(v) || json_is_object(v)
                   ? true
                   : crud_fail(c, 400, "invalid_type", n, "%s must be an array or object", n);
    case FT_IDLIST: {
        if (!json_is_array(v))
            return crud_fail(c, 400, "invalid_type", n, "%s must be an array of ids", n);
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) if (!json_is_integer(x) ||
                                        json_integer_value(x) <=
                                            0) return crud_fail(c, 400, "invalid_type", n,
                                                                "%s must be an array of ids", n);
        return true;
    }
    }
    return false;
}

/* Shape, types, limits and write roles of the body; fills c->in and c->cols. */
static bool check_body(struct crud_ctx *c, json_t *body)
{
    const struct crud_entity *e = c->e;
    const char *key;
    json_t *v;
    c->cols = json_object();
    json_object_foreach(body, key, v)
    {
        const struct crud_field *f = field_of(e, key);
        if (!f || (f->flags & FF_HIDDEN)) {
            if (!strcmp(key, "id"))
                return crud_fail(c, 400, "read_only", key, "id is set by the server");
            return crud_fail(c, 400, "unknown_field", key, "unknown field \"%s\"", key);
        }
        if (f->flags & FF_READONLY)
            return crud_fail(c, 400, "read_only", key, "%s is set by the server", key);
        if (!c->creating && (f->flags & FF_CREATE) && !json_equal(v, json_object_get(c->old, key)))
            return crud_fail(c, 400, "immutable", key, "%s cannot be changed", key);
        if (!check_value(c, f, v)) return false;
        enum cw_role need = f->write_role ? f->write_role : e->write_role;
        if (!cw_role_at_least(c->req->auth->role, need))
            return crud_fail(c, 403, "forbidden", key, "setting %s needs the %s role", key,
                             cw_role_name(need));
        if (f->type == FT_PASSWORD) c->password = json_string_value(v);
        if (is_column(f)) {
            json_t *col = v;
            if (f->type == FT_EMAIL && json_is_string(v) && !*json_string_value(v))
                col = json_null();
            json_object_set(c->cols, key, col);
        }
    }
    if (c->creating)
        for (int i = 0; i < e->nfields; i++)
            if ((e->fields[i].flags & FF_REQUIRED) && !json_object_get(body, e->fields[i].name))
                return crud_fail(c, 400, "missing_field", e->fields[i].name, "%s is required",
                                 e->fields[i].name);
    return true;
}

static bool check_unique(struct crud_ctx *c)
{
    const struct crud_entity *e = c->e;
    for (int i = 0; i < e->nfields; i++) {
        const struct crud_field *f = &e->fields[i];
        json_t *v = json_object_get(c->cols, f->name);
        if (!(f->flags & FF_UNIQUE) || !v || json_is_null(v)) continue;
        cw_buf sql;
        cw_buf_init(&sql);
        store_arg args[4];
        int n = 0;
        cw_buf_printf(&sql, "SELECT 1 FROM %s WHERE %s = ? AND id <> ?", e->table, f->name);
        args[n++] =
            json_is_integer(v) ? SA_INT(json_integer_value(v)) : SA_STR(json_string_value(v));
        args[n++] = SA_INT(c->id);
        if (!(f->flags & FF_GLOBAL)) {
            if (e->scope == SCOPE_DOMAIN || e->scope == SCOPE_OWNER) {
                cw_buf_puts(&sql, " AND domain_id = ?");
                args[n++] = SA_INT(c->domain_id);
            } else if (e->scope == SCOPE_POOL) {
                cw_buf_puts(&sql, " AND pool_id = ?");
                args[n++] = SA_INT(c->scope_id);
            }
            if (e->scope == SCOPE_OWNER) {
                cw_buf_puts(&sql, " AND owner_id = ?");
                args[n++] = SA_INT(c->scope_id);
            } else if (e->where) {
                cw_buf_printf(&sql, " AND (%s)", e->where);
            }
        }
        store_res *r;
        bool taken = store_queryv(store_main(), &r, sql.data, args, n) >= 0 && store_next(r);
        store_res_free(r);
        cw_buf_free(&sql);
        if (taken)
            return crud_fail(c, 409, "conflict", f->name, "%s \"%s\" is already taken", f->name,
                             json_is_string(v) ? json_string_value(v) : "value");
    }
    return true;
}

/* ---------------------------------------------------------------- writing */

static store_arg json_arg(json_t *v, char **keep)
{
    *keep = NULL;
    if (json_is_integer(v)) return SA_INT(json_integer_value(v));
    if (json_is_boolean(v)) return SA_BOOL(json_is_true(v));
    if (json_is_string(v)) return SA_STR(json_string_value(v));
    if (json_is_array(v) || json_is_object(v)) {
        *keep = json_dumps(v, JSON_COMPACT);
        return SA_STR(*keep);
    }
    return SA_NULL;
}

static int write_row(struct crud_ctx *c)
{
    const struct crud_entity *e = c->e;
    store *st = store_main();
    cw_buf sql, vals;
    cw_buf_init(&sql);
    cw_buf_init(&vals);
    store_arg args[MAX_ARGS];
    char *keep[MAX_ARGS];
    int n = 0, nkeep = 0;
    int64_t now = cw_wall_time();
    if (e->created_at && c->creating) json_object_set_new(c->cols, "created_at", json_integer(now));
    if (e->updated_at) json_object_set_new(c->cols, "updated_at", json_integer(now));
    if (c->creating) {
        if (e->scope == SCOPE_DOMAIN || e->scope == SCOPE_OWNER)
            json_object_set_new(c->cols, "domain_id", json_integer(c->domain_id));
        if (e->scope == SCOPE_POOL)
            json_object_set_new(c->cols, "pool_id", json_integer(c->pool_id));
        if (e->scope == SCOPE_OWNER)
            json_object_set_new(c->cols, "owner_id", json_integer(c->scope_id));
    }
    const char *key;
    json_t *v;
    int rc;
    if (c->creating) {
        cw_buf_printf(&sql, "INSERT INTO %s(", e->table);
        json_object_foreach(c->cols, key, v)
        {
            if (n == MAX_ARGS - 1) break;
            cw_buf_printf(&sql, "%s%s", n ? ", " : "", key);
            cw_buf_printf(&vals, "%s?", n ? ", " : "");
            args[n] = json_arg(v, &keep[nkeep]);
            if (keep[nkeep]) nkeep++;
            n++;
        }
        cw_buf_printf(&sql, ") VALUES(%s) RETURNING id", vals.data);
        store_res *r;
        rc = store_queryv(st, &r, sql.data, args, n);
        if (rc >= 0 && store_next(r)) c->id = store_int(r, 0);
        store_res_free(r);
    } else {
        cw_buf_printf(&sql, "UPDATE %s SET ", e->table);
        json_object_foreach(c->cols, key, v)
        {
            if (n == MAX_ARGS - 1) break;
            cw_buf_printf(&sql, "%s%s = ?", n ? ", " : "", key);
            args[n] = json_arg(v, &keep[nkeep]);
            if (keep[nkeep]) nkeep++;
            n++;
        }
        cw_buf_puts(&sql, " WHERE id = ?");
        args[n++] = SA_INT(c->id);
        rc = n > 1 ? store_execv(st, sql.data, args, n) : 0;
    }
    for (int i = 0; i < nkeep; i++)
        free(keep[i]);
    cw_buf_free(&sql);
    cw_buf_free(&vals);
    return rc < 0 ? rc : CW_OK;
}

/* Members that changed between two versions of an object. */
static json_t *diff(json_t *before, json_t *after)
{
    json_t *d = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(after, key, v)
    {
        json_t *old = json_object_get(before, key);
        if (!json_equal(old, v))
            json_object_set_new(d, key,
                                json_pack("{s:O,s:O}", "from", old ? old : json_null(), "to", v));
    }
    return d;
}

static void emit(struct crud_ctx *c, const char *action, json_t *obj)
{
    char type[48];
    snprintf(type, sizeof type, "config.%s.%s", c->e->type, action);
    json_t *data = json_pack("{s:I,s:s}", "id", (json_int_t)c->id, "name", object_label(c, obj));
    if (!strcmp(c->e->type, "user")) json_object_set_new(data, "user_id", json_integer(c->id));
    events_emit(type, c->domain_id, data);
}

static void audit(struct crud_ctx *c, const char *action, json_t *obj, json_t *details)
{
    if (c->e->scope == SCOPE_POOL || (c->pool_id && !c->domain_id))
        http_audit_pool(c->req, c->pool_id, c->e->type, object_label(c, obj), action, details);
    else
        http_audit(c->req, c->domain_id, c->e->type, object_label(c, obj), action, details);
}

/* The transaction of a create or update, after every check passed. */
static void commit_write(struct crud_ctx *c)
{
    store *st = store_main();
    store_begin(st);
    int rc = write_row(c);
    if (rc) {
        store_rollback(st);
        crud_store_fail(c, rc);
        return;
    }
    if (c->e->after_write && !c->e->after_write(c)) {
        store_rollback(st);
        return;
    }
    json_t *obj = crud_fetch(c, c->id);
    if (!obj) {
        store_rollback(st);
        crud_fail(c, 500, "store", NULL, "the object vanished");
        return;
    }
    if (c->e->is_domain) c->domain_id = c->id;
    if (c->e->is_pool) c->pool_id = c->id;
    json_t *details = c->creating ? json_deep_copy(obj) : diff(c->old, obj);
    if (c->password) json_object_set_new(details, "password", json_string("set"));
    /* a write-only value is not in the object: say it was set, so the change counts */
    for (int i = 0; i < c->e->nfields; i++) {
        const struct crud_field *f = &c->e->fields[i];
        json_t *v = f->flags & FF_WRITEONLY ? json_object_get(c->in, f->name) : NULL;
        if (v) json_object_set_new(details, f->name, json_string(json_is_null(v) ? "cleared" : "set"));
    }
    if (!c->creating && json_object_size(details) == 0) {
        /* nothing changed: no audit row, no event */
        store_rollback(st);
        json_decref(details);
        http_reply_json(c->req, 200, obj);
        return;
    }
    audit(c, c->creating ? "add" : "edit", obj, details);
    if (store_commit(st)) {
        crud_store_fail(c, CW_EIO);
        json_decref(obj);
        return;
    }
    emit(c, c->creating ? "created" : "updated", obj);
    http_reply_json(c->req, c->creating ? 201 : 200, obj);
}

static void pw_done(struct auth_pw_job *job)
{
    struct crud_ctx *c = job->arg;
    if (job->rc) {
        crud_fail(c, 500, "internal", NULL, "hashing the password failed");
    } else {
        json_object_set_new(c->cols, "password_hash", json_string(job->hash));
        if (job->realm[0]) {
            json_object_set_new(c->cols, "sip_ha1_md5", json_string(job->ha1_md5));
            json_object_set_new(c->cols, "sip_ha1_sha256", json_string(job->ha1_sha256));
        }
        commit_write(c);
    }
    auth_pw_job_free(job);
    ctx_free(c);
}

/* After validation: hash a password off-thread if there is one, then write. */
static void write_object(struct crud_ctx *c)
{
    if (!c->password) {
        commit_write(c);
        ctx_free(c);
        return;
    }
    struct auth_pw_job *job = auth_pw_job_new();
    cw_strlcpy(job->password, c->password, sizeof job->password);
    if (c->e->pw_identity)
        c->e->pw_identity(c, job->login, sizeof job->login, job->realm, sizeof job->realm);
    job->done = pw_done;
    job->arg = c;
    http_async(c->req);
    auth_pw_submit(job);
}

/* Body, field rules, uniqueness and the entity's rules; then the write. Owns c. */
static void check_and_write(struct crud_ctx *c)
{
    if (!(c->in = http_json_body(c->req)) || !check_body(c, c->in) || !check_unique(c) ||
        (c->e->validate && !c->e->validate(c))) {
        ctx_free(c);
        return;
    }
    write_object(c);
}

static void crud_create(http_req *req)
{
    struct crud_ctx *c = ctx_new(req);
    c->creating = true;
    if (!resolve_scope(c)) {
        ctx_free(c);
        return;
    }
    check_and_write(c);
}

static void crud_update(http_req *req)
{
    struct crud_ctx *c = ctx_new(req);
    if (!resolve_scope(c) || !object_id(c)) {
        ctx_free(c);
        return;
    }
    c->old = crud_fetch(c, c->id);
    if (!c->old) {
        crud_fail(c, 404, "not_found", NULL, "no such %s", c->e->label);
        ctx_free(c);
        return;
    }
    if (c->e->is_domain) c->domain_id = c->id;
    if (c->e->is_pool) c->pool_id = c->id;
    check_and_write(c);
}

static void crud_delete(http_req *req)
{
    struct crud_ctx *c = ctx_new(req);
    if (!resolve_scope(c) || !object_id(c)) goto out;
    c->old = crud_fetch(c, c->id);
    if (!c->old) {
        crud_fail(c, 404, "not_found", NULL, "no such %s", c->e->label);
        goto out;
    }
    if (c->e->is_domain) c->domain_id = c->id;
    if (c->e->is_pool) c->pool_id = c->id;
    store *st = store_main();
    store_begin(st);
    if (c->e->before_delete && !c->e->before_delete(c)) {
        store_rollback(st);
        goto out;
    }
    char *sql = cw_sprintf("DELETE FROM %s WHERE id = ?", c->e->table);
    int rc = store_exec(st, sql, SA_INT(c->id), SA_END);
    free(sql);
    if (rc < 0) {
        store_rollback(st);
        crud_store_fail(c, rc);
        goto out;
    }
    /* the audit row outlives the domain it describes */
    if (c->e->is_domain) {
        c->pool_id = json_integer_value(json_object_get(c->old, "pool_id"));
        c->domain_id = 0;
    }
    audit(c, "delete", c->old, json_deep_copy(c->old));
    if (store_commit(st)) {
        crud_store_fail(c, CW_EIO);
        goto out;
    }
    if (c->e->after_delete) c->e->after_delete(c);
    emit(c, "deleted", c->old);
    http_reply_json(req, 200, json_pack("{s:I}", "deleted", (json_int_t)c->id));
out:
    ctx_free(c);
}

/* ------------------------------------------------------------ registration */

static json_t *field_schema(const struct crud_field *f)
{
    json_t *s = json_object();
    switch (f->type) {
    case FT_INT:
    case FT_ID:
        json_object_set_new(s, "type", json_string("integer"));
        break;
    case FT_BOOL:
        json_object_set_new(s, "type", json_string("boolean"));
        break;
    case FT_JSON:
        break;
    case FT_IDLIST:
        json_object_set_new(s, "type", json_string("array"));
        json_object_set_new(s, "items", json_pack("{s:s}", "type", "integer"));
        break;
    default:
        json_object_set_new(s, "type", json_string("string"));
        break;
    }
    if (f->type == FT_ENUM) {
        json_t *en = json_array();
        for (const char *const *e = f->values; *e; e++)
            json_array_append_new(en, json_string(*e));
        json_object_set_new(s, "enum", en);
    }
    if (f->type == FT_DIGITS || f->type == FT_TEXT) {
        if (f->type == FT_DIGITS)
            json_object_set_new(
                s, "pattern",
                json_sprintf("^[0-9]{%lld,%lld}$", (long long)f->min, (long long)f->max));
        else if (f->pattern)
            json_object_set_new(s, "pattern", json_sprintf("^(%s)$", f->pattern));
        if (f->type == FT_TEXT && f->max) json_object_set_new(s, "maxLength", json_integer(f->max));
    }
    if (f->type == FT_INT) {
        json_object_set_new(s, "minimum", json_integer(f->min));
        json_object_set_new(s, "maximum", json_integer(f->max));
    }
    if (f->type == FT_PASSWORD || (f->flags & FF_WRITEONLY))
        json_object_set_new(s, "writeOnly", json_true());
    if (f->flags & FF_NULLABLE) json_object_set_new(s, "nullable", json_true());
    if (f->doc) json_object_set_new(s, "description", json_string(f->doc));
    return s;
}

static json_t *entity_schema(const struct crud_entity *e, bool creating)
{
    json_t *props = json_object(), *req = json_array();
    for (int i = 0; i < e->nfields; i++) {
        const struct crud_field *f = &e->fields[i];
        if (f->flags & (FF_READONLY | FF_HIDDEN)) continue;
        if (!creating && (f->flags & FF_CREATE)) continue;
        json_object_set_new(props, f->name, field_schema(f));
        if (creating && (f->flags & FF_REQUIRED)) json_array_append_new(req, json_string(f->name));
    }
    json_t *s = json_pack("{s:s,s:o,s:b}", "type", "object", "properties", props,
                          "additionalProperties", 0);
    if (json_array_size(req))
        json_object_set_new(s, "required", req);
    else
        json_decref(req);
    return s;
}

void crud_register(const struct crud_entity *e)
{
    char base[160], item[200], s[5][200];
    switch (e->scope) {
    case SCOPE_GLOBAL:
        snprintf(base, sizeof base, "/api/v1/%s", e->path);
        break;
    case SCOPE_POOL:
        snprintf(base, sizeof base, "/api/v1/pools/:pool/%s", e->path);
        break;
    case SCOPE_DOMAIN:
        snprintf(base, sizeof base, "/api/v1/domains/:domain/%s", e->path);
        break;
    case SCOPE_OWNER:
        snprintf(base, sizeof base, "/api/v1/me/%s", e->path);
        break;
    }
    snprintf(item, sizeof item, "%s/:id", base);
    enum cw_role create = e->create_role ? e->create_role : e->write_role;
    enum cw_role del = e->delete_role ? e->delete_role : e->write_role;
    void *arg = (void *)e;
    snprintf(s[0], sizeof s[0], "List %ss (limit, offset, q, sort, filters)", e->label);
    snprintf(s[1], sizeof s[1], "Create a %s", e->label);
    snprintf(s[2], sizeof s[2], "Get a %s", e->label);
    snprintf(s[3], sizeof s[3], "Change fields of a %s", e->label);
    snprintf(s[4], sizeof s[4], "Delete a %s", e->label);
    http_route_with("GET", base, crud_list, arg, e->read_role, 0, s[0]);
    if (!e->no_create) {
        http_route_with("POST", base, crud_create, arg, create, 0, s[1]);
        http_route_schema("POST", base, entity_schema(e, true));
    }
    http_route_with("GET", item, crud_get, arg, e->read_role, 0, s[2]);
    http_route_with("PATCH", item, crud_update, arg, e->write_role, 0, s[3]);
    http_route_schema("PATCH", item, entity_schema(e, false));
    http_route_with("DELETE", item, crud_delete, arg, del, 0, s[4]);
}
