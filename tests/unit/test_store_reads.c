/*
 * test_store_reads.c - the reads of a loop turn share one SQLite read
 * transaction, and nobody else can tell: another connection (the sqlite3
 * shell, a report, a test) sees every write at once, and the next turn
 * reads what others wrote meanwhile.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "base/cw.h"
#include "store/store.h"

struct world {
    char dir[64], path[128];
    store *st;
    sqlite3 *other; /* a second connection, as another process would have */
    int armed;
};

static void arm(void *arg)
{
    ((struct world *)arg)->armed++;
}

static int setup(void **state)
{
    struct world *w = cw_calloc(1, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "/tmp/cw-store-reads-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    snprintf(w->path, sizeof w->path, "%s/cw.db", w->dir);
    char err[512];
    assert_int_equal(store_open(w->path, &w->st, err, sizeof err), CW_OK);
    assert_int_equal(sqlite3_open(w->path, &w->other), SQLITE_OK);
    sqlite3_busy_timeout(w->other, 2000);
    store_share_reads(w->st, arm, w);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    sqlite3_close(w->other);
    store_close(w->st);
    char p[160];
    snprintf(p, sizeof p, "%s-wal", w->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", w->path);
    unlink(p);
    unlink(w->path);
    rmdir(w->dir);
    free(w);
    return 0;
}

static int64_t count_here(struct world *w, const char *name)
{
    int64_t n = -1;
    assert_int_equal(store_query_int(w->st, &n, "SELECT count(*) FROM domains WHERE name = ?",
                                     SA_STR(name), SA_END),
                     CW_OK);
    return n;
}

static int count_there(struct world *w, const char *name)
{
    sqlite3_stmt *s;
    assert_int_equal(
        sqlite3_prepare_v2(w->other, "SELECT count(*) FROM domains WHERE name = ?", -1, &s, NULL),
        SQLITE_OK);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return n;
}

static void add_here(struct world *w, const char *name)
{
    assert_int_equal(store_exec(w->st, "INSERT INTO domains(name, created_at) VALUES(?, 1)",
                                SA_STR(name), SA_END),
                     1);
}

static void store_reads_of_a_turn_share_one_transaction(void **state)
{
    struct world *w = *state;
    assert_int_equal(count_here(w, "a.test"), 0);
    assert_int_equal(w->armed, 1);
    assert_int_equal(count_here(w, "a.test"), 0);
    assert_int_equal(count_here(w, "b.test"), 0);
    assert_int_equal(w->armed, 1); /* one turn, one transaction */
    store_end_reads(w->st);
    assert_int_equal(count_here(w, "a.test"), 0);
    assert_int_equal(w->armed, 2);
    store_end_reads(w->st);
}

static void store_write_after_reads_is_seen_by_others_at_once(void **state)
{
    struct world *w = *state;
    assert_int_equal(count_here(w, "w.test"), 0);
    add_here(w, "w.test");
    /* committed before the turn ends: not held in the turn's transaction */
    assert_int_equal(count_there(w, "w.test"), 1);
    assert_int_equal(count_here(w, "w.test"), 1);
    /* an explicit transaction inside the turn is a transaction of its own */
    assert_int_equal(store_begin(w->st), CW_OK);
    add_here(w, "t1.test");
    add_here(w, "t2.test");
    assert_int_equal(count_there(w, "t1.test"), 0);
    assert_int_equal(store_commit(w->st), CW_OK);
    assert_int_equal(count_there(w, "t1.test"), 1);
    assert_int_equal(count_there(w, "t2.test"), 1);
    assert_int_equal(count_here(w, "t2.test"), 1);
    store_end_reads(w->st);
}

static void store_next_turn_reads_what_others_wrote(void **state)
{
    struct world *w = *state;
    assert_int_equal(count_here(w, "o.test"), 0);
    /* others can write while a turn reads (WAL) */
    assert_int_equal(sqlite3_exec(w->other,
                                  "INSERT INTO domains(name, created_at) VALUES('o.test', 1)", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    store_end_reads(w->st);
    assert_int_equal(count_here(w, "o.test"), 1);
    store_end_reads(w->st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(store_reads_of_a_turn_share_one_transaction, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(store_write_after_reads_is_seen_by_others_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(store_next_turn_reads_what_others_wrote, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
