/*
 * store.c - the backend-neutral half of the store: argument handling,
 * results, transactions and migrations.
 */
#include "store/store_int.h"
#include "log/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static store *main_store;

store *store_main(void)
{
    return main_store;
}

void store_set_main(store *st)
{
    main_store = st;
}

/* Expand the portable dialect: {{pk}} {{blob}} {{bigint}} {{now}}. */
static char *dialect(const store *st, const char *sql)
{
    static const struct {
        const char *tok, *sqlite, *pg;
    } subst[] = {
        {"{{pk}}", "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"},
        {"{{blob}}", "BLOB", "BYTEA"},
        {"{{bigint}}", "INTEGER", "BIGINT"},
    };
    cw_buf b;
    cw_buf_init(&b);
    const char *p = sql;
    while (*p) {
        bool done = false;
        for (size_t i = 0; i < CW_ARRAY_LEN(subst); i++) {
            size_t n = strlen(subst[i].tok);
            if (strncmp(p, subst[i].tok, n) == 0) {
                cw_buf_puts(&b, st->backend == STORE_PG ? subst[i].pg : subst[i].sqlite);
                p += n;
                done = true;
                break;
            }
        }
        if (!done) cw_buf_append(&b, p++, 1);
    }
    return cw_buf_steal(&b);
}

static int migrate(store *st, char *err, size_t errlen)
{
    int rc = store_exec(st,
                        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY "
                        "KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                        SA_END);
    if (rc < 0) {
        snprintf(err, errlen, "creating schema_migrations: %s", st->err);
        return CW_EIO;
    }
    for (int i = 0; i < store_n_migrations; i++) {
        const struct store_migration *m = &store_migrations[i];
        int64_t one;
        if (store_query_int(st, &one, "SELECT 1 FROM schema_migrations WHERE version = ?",
                            SA_INT(m->version), SA_END) == CW_OK)
            continue;
        char *sql = dialect(st, m->sql);
        store_begin(st);
        /* statements are separated by ";\n" so bodies may hold semicolons */
        char *s = sql;
        rc = 0;
        while (s && *s && rc >= 0) {
            char *end = strstr(s, ";\n");
            if (end) *end = '\0';
            const char *q = s;
            while (*q == ' ' || *q == '\n') q++;
            if (*q) rc = store_exec(st, q, SA_END);
            s = end ? end + 2 : NULL;
        }
        if (rc >= 0)
            rc = store_exec(st, "INSERT INTO schema_migrations(version,name,applied_at) VALUES(?,?,?)",
                            SA_INT(m->version), SA_STR(m->name), SA_INT(cw_wall_time()), SA_END);
        free(sql);
        if (rc < 0) {
            snprintf(err, errlen, "migration %d (%s): %s", m->version, m->name, st->err);
            store_rollback(st);
            return CW_EIO;
        }
        store_commit(st);
        log_info("store", "applied migration %d: %s", m->version, m->name);
    }
    return CW_OK;
}

int store_open(const char *url, store **out, char *err, size_t errlen)
{
    store *st = cw_calloc(1, sizeof *st);
    int rc;
    if (cw_str_has_prefix(url, "postgresql://") || cw_str_has_prefix(url, "postgres://"))
        rc = store_pg_open(st, url);
    else
        rc = store_sqlite_open(st, url);
    if (rc) {
        snprintf(err, errlen, "%s", st->err);
        if (st->ops) st->ops->close(st);
        free(st);
        return rc;
    }
    rc = migrate(st, err, errlen);
    if (rc) {
        store_close(st);
        return rc;
    }
    *out = st;
    return CW_OK;
}

void store_close(store *st)
{
    if (!st) return;
    st->ops->close(st);
    free(st);
}

enum store_backend store_backend_of(const store *st)
{
    return st->backend;
}

const char *store_errmsg(const store *st)
{
    return st->err;
}

static int collect_args(va_list ap, store_arg *args, int max)
{
    int n = 0;
    for (;;) {
        store_arg a = va_arg(ap, store_arg);
        if (a.kind == STORE_A_END) break;
        if (n == max) return -1;
        args[n++] = a;
    }
    return n;
}

#define MAX_ARGS 64

int store_execv(store *st, const char *sql, const store_arg *args, int nargs)
{
    return st->ops->run(st, sql, args, nargs, NULL);
}

int store_queryv(store *st, store_res **out, const char *sql, const store_arg *args, int nargs)
{
    *out = NULL;
    return st->ops->run(st, sql, args, nargs, out);
}

int store_exec(store *st, const char *sql, ...)
{
    store_arg args[MAX_ARGS];
    va_list ap;
    va_start(ap, sql);
    int n = collect_args(ap, args, MAX_ARGS);
    va_end(ap);
    if (n < 0) return CW_EINVAL;
    return store_execv(st, sql, args, n);
}

int store_query(store *st, store_res **out, const char *sql, ...)
{
    store_arg args[MAX_ARGS];
    va_list ap;
    va_start(ap, sql);
    int n = collect_args(ap, args, MAX_ARGS);
    va_end(ap);
    *out = NULL;
    if (n < 0) return CW_EINVAL;
    return store_queryv(st, out, sql, args, n);
}

int store_query_int(store *st, int64_t *out, const char *sql, ...)
{
    store_arg args[MAX_ARGS];
    va_list ap;
    va_start(ap, sql);
    int n = collect_args(ap, args, MAX_ARGS);
    va_end(ap);
    if (n < 0) return CW_EINVAL;
    store_res *r;
    int rc = store_queryv(st, &r, sql, args, n);
    if (rc < 0) return rc;
    rc = CW_ENOENT;
    if (store_next(r) && !store_isnull(r, 0)) {
        *out = store_int(r, 0);
        rc = CW_OK;
    }
    store_res_free(r);
    return rc;
}

int store_begin(store *st)
{
    if (st->tx_depth++ > 0) return CW_OK; /* nested: joins the outer transaction */
    return store_exec(st, "BEGIN", SA_END) < 0 ? CW_EIO : CW_OK;
}

int store_commit(store *st)
{
    if (st->tx_depth == 0) return CW_ESTATE;
    if (--st->tx_depth > 0) return CW_OK;
    return store_exec(st, "COMMIT", SA_END) < 0 ? CW_EIO : CW_OK;
}

int store_rollback(store *st)
{
    if (st->tx_depth == 0) return CW_ESTATE;
    st->tx_depth = 0;
    return store_exec(st, "ROLLBACK", SA_END) < 0 ? CW_EIO : CW_OK;
}

uint64_t store_generation(store *st)
{
    return st->ops->generation ? st->ops->generation(st) : 0;
}

void store_share_reads(store *st, void (*arm)(void *arg), void *arg)
{
    if (st->ops->share_reads) st->ops->share_reads(st, arm, arg);
}

void store_end_reads(store *st)
{
    if (st->ops->end_reads) st->ops->end_reads(st);
}

int store_schema_version(store *st)
{
    int64_t v = 0;
    store_query_int(st, &v, "SELECT COALESCE(MAX(version),0) FROM schema_migrations", SA_END);
    return (int)v;
}

/* ---- results ---- */

store_res *store_res_new(int ncols)
{
    store_res *r = cw_calloc(1, sizeof *r);
    r->ncols = ncols;
    r->cur = -1;
    r->colnames = cw_calloc((size_t)ncols + 1, sizeof(char *));
    cw_buf_init(&r->data);
    return r;
}

void store_res_set_colname(store_res *r, int col, const char *name)
{
    r->colnames[col] = cw_strdup(name);
}

void store_res_add_row(store_res *r)
{
    r->nrows++;
    if (r->nrows > r->cap_rows) { /* doubling: a page of rows is not copied once a row */
        r->cap_rows = r->cap_rows ? 2 * r->cap_rows : 16;
        size_t n = (size_t)r->cap_rows * (size_t)r->ncols;
        r->cells = cw_realloc(r->cells, sizeof(struct store_cell) * n);
        r->offs = cw_realloc(r->offs, sizeof(size_t) * n);
    }
    for (int c = 0; c < r->ncols; c++) {
        size_t i = (size_t)(r->nrows - 1) * (size_t)r->ncols + (size_t)c;
        r->cells[i].p = NULL;
        r->cells[i].len = 0;
        r->offs[i] = (size_t)-1;
    }
}

void store_res_set_cell(store_res *r, int col, const void *p, size_t len, bool isnull)
{
    size_t i = (size_t)(r->nrows - 1) * (size_t)r->ncols + (size_t)col;
    r->cells[i].len = len;
    if (isnull) return;
    r->offs[i] = r->data.len;
    cw_buf_append(&r->data, p ? p : "", len);
    cw_buf_append(&r->data, "", 1);
}

void store_res_finish(store_res *r)
{
    size_t n = (size_t)r->nrows * (size_t)r->ncols;
    for (size_t i = 0; i < n; i++)
        r->cells[i].p = r->offs[i] == (size_t)-1 ? NULL : r->data.data + r->offs[i];
    free(r->offs);
    r->offs = NULL;
}

bool store_next(store_res *r)
{
    if (!r || r->cur + 1 >= r->nrows) return false;
    r->cur++;
    return true;
}

int store_nrows(const store_res *r)
{
    return r ? r->nrows : 0;
}

int store_ncols(const store_res *r)
{
    return r->ncols;
}

const char *store_colname(const store_res *r, int col)
{
    return r->colnames[col];
}

static const struct store_cell *cell(const store_res *r, int col)
{
    if (r->cur < 0 || r->cur >= r->nrows || col < 0 || col >= r->ncols) return NULL;
    return &r->cells[(size_t)r->cur * (size_t)r->ncols + (size_t)col];
}

bool store_isnull(const store_res *r, int col)
{
    const struct store_cell *c = cell(r, col);
    return !c || !c->p;
}

const char *store_str(const store_res *r, int col)
{
    const struct store_cell *c = cell(r, col);
    return c ? c->p : NULL;
}

int64_t store_int(const store_res *r, int col)
{
    const char *s = store_str(r, col);
    if (!s) return 0;
    if (s[0] == 't' && s[1] == '\0') return 1; /* PostgreSQL booleans */
    return strtoll(s, NULL, 10);
}

const void *store_blob(const store_res *r, int col, size_t *len)
{
    const struct store_cell *c = cell(r, col);
    *len = c && c->p ? c->len : 0;
    return c ? c->p : NULL;
}

void store_res_free(store_res *r)
{
    if (!r) return;
    for (int i = 0; i < r->ncols; i++) free(r->colnames[i]);
    free(r->colnames);
    free(r->cells);
    free(r->offs);
    cw_buf_free(&r->data);
    free(r);
}
