/*
 * sqlite.c - the embedded store backend: one connection, WAL journal,
 * foreign keys on, prepared statements cached by their SQL text, a data
 * generation for callers that reuse what they read, and the reads of a loop
 * turn in one shared read transaction (store_share_reads).
 */
#include "store/store_int.h"
#include "log/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NBUCKETS 512

struct cached {
    struct cached *next;
    char *sql;
    sqlite3_stmt *stmt;
};

struct lite {
    sqlite3 *db;
    struct cached *bucket[NBUCKETS];
    /* shared reads: on for the owner thread once store_share_reads() is called */
    bool share;
    pthread_t owner;
    void (*arm)(void *arg);
    void *arm_arg;
    bool reading; /* our read transaction is open */
    sqlite3_stmt *begin, *commit; /* prepared once: a turn runs each of them */
};

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NBUCKETS;
}

static sqlite3_stmt *prepare(store *st, const char *sql)
{
    struct lite *l = st->conn;
    unsigned h = hash(sql);
    for (struct cached *c = l->bucket[h]; c; c = c->next)
        if (strcmp(c->sql, sql) == 0) return c->stmt;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(l->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        snprintf(st->err, sizeof st->err, "%s", sqlite3_errmsg(l->db));
        return NULL;
    }
    /* transaction control is not worth caching */
    if (!strcmp(sql, "BEGIN") || !strcmp(sql, "COMMIT") || !strcmp(sql, "ROLLBACK")) return stmt;
    struct cached *c = cw_calloc(1, sizeof *c);
    c->sql = cw_strdup(sql);
    c->stmt = stmt;
    c->next = l->bucket[h];
    l->bucket[h] = c;
    return stmt;
}

static bool is_cached(store *st, sqlite3_stmt *stmt)
{
    struct lite *l = st->conn;
    const char *sql = sqlite3_sql(stmt);
    for (struct cached *c = l->bucket[hash(sql)]; c; c = c->next)
        if (c->stmt == stmt) return true;
    return false;
}

static int map_error(store *st, int rc)
{
    struct lite *l = st->conn;
    snprintf(st->err, sizeof st->err, "%s", sqlite3_errmsg(l->db));
    int ext = sqlite3_extended_errcode(l->db);
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) return CW_EEXIST;
    if (ext == SQLITE_CONSTRAINT_FOREIGNKEY) return CW_ESTATE;
    if (rc == SQLITE_BUSY) return CW_EBUSY;
    return CW_EIO;
}

static void lite_end_reads(store *st)
{
    struct lite *l = st->conn;
    if (!l || !l->reading) return;
    l->reading = false;
    /* a read-only transaction: COMMIT only drops the locks */
    int rc = sqlite3_step(l->commit);
    sqlite3_reset(l->commit);
    if (rc != SQLITE_DONE) sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
}

static void lite_share_reads(store *st, void (*arm)(void *arg), void *arg)
{
    struct lite *l = st->conn;
    lite_end_reads(st);
    l->share = false;
    if (arm && !l->begin && (sqlite3_prepare_v2(l->db, "BEGIN", -1, &l->begin, NULL) != SQLITE_OK ||
                             sqlite3_prepare_v2(l->db, "COMMIT", -1, &l->commit, NULL) != SQLITE_OK)) {
        log_warn("store", "reads run alone: %s", sqlite3_errmsg(l->db));
        sqlite3_finalize(l->begin);
        sqlite3_finalize(l->commit);
        l->begin = l->commit = NULL;
        return;
    }
    l->share = arm != NULL;
    l->owner = pthread_self();
    l->arm = arm;
    l->arm_arg = arg;
}

static bool is_tx_control(const char *sql)
{
    static const char *words[] = {"BEGIN",     "COMMIT",  "END",   "ROLLBACK",
                                  "SAVEPOINT", "RELEASE", "PRAGMA"};
    while (*sql == ' ' || *sql == '\n' || *sql == '\t') sql++;
    for (size_t i = 0; i < CW_ARRAY_LEN(words); i++)
        if (!strncasecmp(sql, words[i], strlen(words[i]))) return true;
    return false;
}

/*
 * Before running stmt: a read outside any transaction joins (or opens) the
 * turn's read transaction; anything else ends it, so it runs as before.
 */
static void shared_read_or_end(store *st, sqlite3_stmt *stmt, const char *sql)
{
    struct lite *l = st->conn;
    if (!l->share || !pthread_equal(l->owner, pthread_self())) return;
    bool read = st->tx_depth == 0 && sqlite3_stmt_readonly(stmt) && !is_tx_control(sql);
    if (!read) {
        lite_end_reads(st);
        return;
    }
    if (l->reading || !sqlite3_get_autocommit(l->db)) return;
    int rc = sqlite3_step(l->begin);
    sqlite3_reset(l->begin);
    if (rc != SQLITE_DONE) return;
    l->reading = true;
    l->arm(l->arm_arg);
}

static int lite_run(store *st, const char *sql, const store_arg *args, int nargs, store_res **out)
{
    struct lite *l = st->conn;
    sqlite3_stmt *stmt = prepare(st, sql);
    if (!stmt) return CW_EIO;
    shared_read_or_end(st, stmt, sql);
    bool cached = is_cached(st, stmt);
    /* A cached statement may still be active if a caller re-entered; use a fresh one. */
    if (cached && sqlite3_stmt_busy(stmt)) {
        if (sqlite3_prepare_v2(l->db, sql, -1, &stmt, NULL) != SQLITE_OK) return map_error(st, 1);
        cached = false;
    }
    int rc = CW_OK;
    if (sqlite3_bind_parameter_count(stmt) != nargs) {
        snprintf(st->err, sizeof st->err, "statement wants %d arguments, got %d",
                 sqlite3_bind_parameter_count(stmt), nargs);
        rc = CW_EINVAL;
        goto done;
    }
    for (int i = 0; i < nargs; i++) {
        const store_arg *a = &args[i];
        int b;
        switch (a->kind) {
        case STORE_A_INT: b = sqlite3_bind_int64(stmt, i + 1, a->i); break;
        case STORE_A_STR:
            b = a->s ? sqlite3_bind_text(stmt, i + 1, a->s, -1, SQLITE_TRANSIENT)
                     : sqlite3_bind_null(stmt, i + 1);
            break;
        case STORE_A_BLOB:
            b = sqlite3_bind_blob(stmt, i + 1, a->s, (int)a->len, SQLITE_TRANSIENT);
            break;
        default: b = sqlite3_bind_null(stmt, i + 1); break;
        }
        if (b != SQLITE_OK) {
            rc = map_error(st, b);
            goto done;
        }
    }
    store_res *r = NULL;
    if (out) {
        int nc = sqlite3_column_count(stmt);
        r = store_res_new(nc);
        for (int c = 0; c < nc; c++) store_res_set_colname(r, c, sqlite3_column_name(stmt, c));
    }
    int s;
    while ((s = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (!r) continue;
        store_res_add_row(r);
        for (int c = 0; c < r->ncols; c++) {
            int t = sqlite3_column_type(stmt, c);
            if (t == SQLITE_NULL) {
                store_res_set_cell(r, c, NULL, 0, true);
            } else if (t == SQLITE_BLOB) {
                const void *p = sqlite3_column_blob(stmt, c);
                store_res_set_cell(r, c, p, (size_t)sqlite3_column_bytes(stmt, c), false);
            } else {
                const unsigned char *p = sqlite3_column_text(stmt, c);
                store_res_set_cell(r, c, p, (size_t)sqlite3_column_bytes(stmt, c), false);
            }
        }
    }
    if (s != SQLITE_DONE) {
        rc = map_error(st, s);
        store_res_free(r);
        goto done;
    }
    if (r) {
        store_res_finish(r);
        *out = r;
    }
    rc = sqlite3_changes(l->db);
done:
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (!cached) sqlite3_finalize(stmt);
    return rc;
}

static void lite_close(store *st)
{
    struct lite *l = st->conn;
    if (!l) return;
    lite_end_reads(st);
    sqlite3_finalize(l->begin);
    sqlite3_finalize(l->commit);
    for (int i = 0; i < NBUCKETS; i++) {
        struct cached *c = l->bucket[i];
        while (c) {
            struct cached *n = c->next;
            sqlite3_finalize(c->stmt);
            free(c->sql);
            free(c);
            c = n;
        }
    }
    sqlite3_close(l->db);
    free(l);
    st->conn = NULL;
}

/*
 * Rows changed by this connection plus the commits of others: both only
 * grow, so their sum changes whenever either does.
 */
static uint64_t lite_generation(store *st)
{
    struct lite *l = st->conn;
    sqlite3_stmt *stmt = prepare(st, "PRAGMA data_version");
    if (!stmt || sqlite3_stmt_busy(stmt)) return 0;
    uint64_t gen = 0;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        uint64_t others = (uint64_t)sqlite3_column_int64(stmt, 0);
        gen = others + (uint64_t)sqlite3_total_changes64(l->db) + 1;
    }
    sqlite3_reset(stmt);
    return gen;
}

static const struct store_ops lite_ops = {.run = lite_run,
                                          .close = lite_close,
                                          .generation = lite_generation,
                                          .share_reads = lite_share_reads,
                                          .end_reads = lite_end_reads};

int store_sqlite_open(store *st, const char *path)
{
    struct lite *l = cw_calloc(1, sizeof *l);
    st->backend = STORE_SQLITE;
    st->ops = &lite_ops;
    st->conn = l;
    if (sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(st->err, sizeof st->err, "%s: %s", path,
                 l->db ? sqlite3_errmsg(l->db) : "cannot open");
        return CW_EIO;
    }
    sqlite3_busy_timeout(l->db, 5000);
    char *e = NULL;
    if (sqlite3_exec(l->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
                     NULL, NULL, &e) != SQLITE_OK) {
        snprintf(st->err, sizeof st->err, "%s: %s", path, e ? e : "pragma failed");
        sqlite3_free(e);
        return CW_EIO;
    }
    return CW_OK;
}
