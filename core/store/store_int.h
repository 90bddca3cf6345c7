/*
 * store_int.h - what the store backends share; not for use outside store/.
 */
#ifndef CW_STORE_INT_H
#define CW_STORE_INT_H

#include "store/store.h"
#include "base/cw.h"

struct store_ops {
    /* Run sql; when out is non-NULL, read all rows into a new result. */
    int (*run)(store *st, const char *sql, const store_arg *args, int nargs, store_res **out);
    void (*close)(store *st);
    /* See store_generation(); NULL when the backend cannot tell. */
    uint64_t (*generation)(store *st);
    /* optional: see store_share_reads() */
    void (*share_reads)(store *st, void (*arm)(void *arg), void *arg);
    void (*end_reads)(store *st);
};

struct store {
    enum store_backend backend;
    const struct store_ops *ops;
    void *conn;
    char err[512];
    int tx_depth;
};

struct store_cell {
    const char *p; /* NULL means SQL NULL */
    size_t len;
};

struct store_res {
    int nrows, ncols, cur;
    int cap_rows; /* rows cells and offs have room for */
    char **colnames;
    struct store_cell *cells; /* nrows * ncols */
    cw_buf data;              /* cell bytes, NUL-separated */
    size_t *offs;             /* pending offsets while building */
};

/* Result building for backends. */
store_res *store_res_new(int ncols);
void store_res_set_colname(store_res *r, int col, const char *name);
void store_res_add_row(store_res *r);
void store_res_set_cell(store_res *r, int col, const void *p, size_t len, bool isnull);
void store_res_finish(store_res *r);

int store_sqlite_open(store *st, const char *path);
int store_pg_open(store *st, const char *url);

/* Schema migrations, written in the portable dialect (see schema.c). */
struct store_migration {
    int version;
    const char *name;
    const char *sql;
};
extern const struct store_migration store_migrations[];
extern const int store_n_migrations;

#endif
