/*
 * pg.c - the PostgreSQL store backend over libpq: `?` placeholders become
 * $n, arguments go as text (or binary for blobs), results are copied out.
 */
#include "store/store_int.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rewrite ? to $1.. outside quotes; n counts placeholders. */
static char *rewrite(const char *sql, int *n)
{
    cw_buf b;
    cw_buf_init(&b);
    char q = 0;
    *n = 0;
    for (const char *p = sql; *p; p++) {
        if (q) {
            if (*p == q) q = 0;
            cw_buf_append(&b, p, 1);
        } else if (*p == '\'' || *p == '"') {
            q = *p;
            cw_buf_append(&b, p, 1);
        } else if (*p == '?') {
            cw_buf_printf(&b, "$%d", ++*n);
        } else {
            cw_buf_append(&b, p, 1);
        }
    }
    return cw_buf_steal(&b);
}

static int map_error(store *st, PGresult *res)
{
    PGconn *c = st->conn;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(c);
    snprintf(st->err, sizeof st->err, "%s", msg && *msg ? msg : PQerrorMessage(c));
    size_t l = strlen(st->err);
    while (l && (st->err[l - 1] == '\n' || st->err[l - 1] == ' ')) st->err[--l] = '\0';
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state && !strcmp(state, "23505")) return CW_EEXIST;
    if (state && !strcmp(state, "23503")) return CW_ESTATE;
    return CW_EIO;
}

static int pg_run(store *st, const char *sql, const store_arg *args, int nargs, store_res **out)
{
    PGconn *c = st->conn;
    int nph;
    char *q = rewrite(sql, &nph);
    if (nph != nargs) {
        snprintf(st->err, sizeof st->err, "statement wants %d arguments, got %d", nph, nargs);
        free(q);
        return CW_EINVAL;
    }
    const char *vals[64];
    int lens[64], fmts[64];
    char nums[64][24];
    for (int i = 0; i < nargs && i < 64; i++) {
        lens[i] = 0;
        fmts[i] = 0;
        switch (args[i].kind) {
        case STORE_A_INT:
            snprintf(nums[i], sizeof nums[i], "%lld", (long long)args[i].i);
            vals[i] = nums[i];
            break;
        case STORE_A_STR: vals[i] = args[i].s; break;
        case STORE_A_BLOB:
            vals[i] = args[i].s;
            lens[i] = (int)args[i].len;
            fmts[i] = 1;
            break;
        default: vals[i] = NULL; break;
        }
    }
    PGresult *res = PQexecParams(c, q, nargs, NULL, vals, lens, fmts, 0);
    free(q);
    ExecStatusType s = PQresultStatus(res);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        int rc = map_error(st, res);
        PQclear(res);
        return rc;
    }
    int changed = s == PGRES_TUPLES_OK ? PQntuples(res) : atoi(PQcmdTuples(res));
    if (out) {
        int nc = PQnfields(res), nr = PQntuples(res);
        store_res *r = store_res_new(nc);
        for (int i = 0; i < nc; i++) store_res_set_colname(r, i, PQfname(res, i));
        for (int row = 0; row < nr; row++) {
            store_res_add_row(r);
            for (int col = 0; col < nc; col++) {
                bool isnull = PQgetisnull(res, row, col);
                const char *v = PQgetvalue(res, row, col);
                size_t len = (size_t)PQgetlength(res, row, col);
                if (!isnull && PQftype(res, col) == 17 /* bytea */) {
                    size_t blen;
                    unsigned char *bin = PQunescapeBytea((const unsigned char *)v, &blen);
                    store_res_set_cell(r, col, bin, blen, false);
                    PQfreemem(bin);
                } else {
                    store_res_set_cell(r, col, v, len, isnull);
                }
            }
        }
        store_res_finish(r);
        *out = r;
    }
    PQclear(res);
    return changed;
}

static void pg_close(store *st)
{
    if (st->conn) PQfinish(st->conn);
    st->conn = NULL;
}

static const struct store_ops pg_ops = {.run = pg_run, .close = pg_close};

static void quiet_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

int store_pg_open(store *st, const char *url)
{
    st->backend = STORE_PG;
    st->ops = &pg_ops;
    PGconn *c = PQconnectdb(url);
    st->conn = c;
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(st->err, sizeof st->err, "postgresql: %s", PQerrorMessage(c));
        return CW_EIO;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    return CW_OK;
}
