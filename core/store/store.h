/*
 * store.h - the one interface to persistent data, with two backends:
 * SQLite (embedded default, WAL) and PostgreSQL (libpq).
 *
 * SQL is written once with `?` placeholders; the PostgreSQL backend rewrites
 * them to $n. Results are fully read before store_query() returns, so a
 * result never holds a statement or connection open. A store handle belongs
 * to one thread (the core thread, or a worker that opened its own).
 */
#ifndef CW_STORE_H
#define CW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct store_res store_res;

enum store_backend { STORE_SQLITE = 1, STORE_PG = 2 };

enum store_arg_kind { STORE_A_END = 0, STORE_A_NULL, STORE_A_INT, STORE_A_STR, STORE_A_BLOB };

typedef struct store_arg {
    enum store_arg_kind kind;
    int64_t i;
    const char *s; /* NULL with STORE_A_STR binds NULL */
    size_t len;    /* for blobs */
} store_arg;

#define SA_INT(v)     ((store_arg){.kind = STORE_A_INT, .i = (int64_t)(v)})
#define SA_STR(v)     ((store_arg){.kind = STORE_A_STR, .s = (v)})
#define SA_BOOL(v)    SA_INT((v) ? 1 : 0)
#define SA_NULL       ((store_arg){.kind = STORE_A_NULL})
#define SA_BLOB(p, n) ((store_arg){.kind = STORE_A_BLOB, .s = (const char *)(p), .len = (n)})
#define SA_END        ((store_arg){.kind = STORE_A_END})

/* url: a file path (SQLite) or postgresql://... ; runs pending migrations. */
int store_open(const char *url, store **out, char *err, size_t errlen);
void store_close(store *st);
enum store_backend store_backend_of(const store *st);
const char *store_errmsg(const store *st);

/*
 * Run a statement; args are store_arg values ended by SA_END.
 * Returns rows changed (>= 0) or CW_EEXIST (unique violation),
 * CW_ESTATE (foreign key), CW_EIO (anything else; see store_errmsg).
 */
int store_exec(store *st, const char *sql, ...);
/* Run a query and read all rows. *out is NULL on error. */
int store_query(store *st, store_res **out, const char *sql, ...);
/* Array forms for callers that build argument lists at run time. */
int store_execv(store *st, const char *sql, const store_arg *args, int nargs);
int store_queryv(store *st, store_res **out, const char *sql, const store_arg *args, int nargs);

/* Walk rows: store_next() moves to the next row, false when done. */
bool store_next(store_res *r);
int store_nrows(const store_res *r);
int store_ncols(const store_res *r);
const char *store_colname(const store_res *r, int col);
bool store_isnull(const store_res *r, int col);
const char *store_str(const store_res *r, int col); /* NULL when NULL */
int64_t store_int(const store_res *r, int col);     /* 0 when NULL */
const void *store_blob(const store_res *r, int col, size_t *len);
void store_res_free(store_res *r);

/* Shorthand: first column of the first row as an integer; CW_ENOENT if none. */
int store_query_int(store *st, int64_t *out, const char *sql, ...);

int store_begin(store *st);
int store_commit(store *st);
int store_rollback(store *st);

/*
 * A number that changes whenever the data may have changed: a write by this
 * handle, or a commit by any other connection to the same database. 0 means
 * the backend cannot tell (PostgreSQL, where other nodes write): nothing read
 * may then be reused.
 */
uint64_t store_generation(store *st);

/*
 * Reads of one loop turn share one transaction (SQLite: each transaction
 * takes and drops file locks, several system calls, and a call set-up
 * reads a dozen rows). After this, a read outside any transaction on the
 * calling thread opens a read transaction and calls arm(arg) once; arm
 * must make store_end_reads() run before the loop next waits. Any write,
 * store_begin() or other transaction control ends the shared one first,
 * so writes keep exactly their own transactions. arm NULL: reads run
 * alone again. No-op for PostgreSQL.
 */
void store_share_reads(store *st, void (*arm)(void *arg), void *arg);
void store_end_reads(store *st);

/* Schema version applied (for /health and tests). */
int store_schema_version(store *st);

/* The store the core thread uses (set by main). */
store *store_main(void);
void store_set_main(store *st);

#endif
