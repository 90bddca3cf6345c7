/*
 * test_metrics.c - the metrics registry and its Prometheus text.
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
#include "metrics/metrics.h"

#include <stdlib.h>
#include <string.h>

static char *render(void)
{
    cw_buf b;
    cw_buf_init(&b);
    cw_buf_puts(&b, "");
    metrics_render(&b);
    return cw_buf_steal(&b);
}

static void counter_with_labels_renders(void **state)
{
    metric *m = metrics_counter("t_calls_total", "Calls \\ seen\nby test", "domain,dir");
    assert_non_null(m);
    metrics_add(m, 1, "a.test", "in");
    metrics_add(m, 2, "a.test", "in");
    metrics_add(m, 1, "b \"quoted\"\\x\n", "out");
    metrics_add(m, -5, "a.test", "in"); /* counters never go down */
    assert_true(metrics_get(m, "a.test", "in") == 3);
    char *text = render();
    assert_non_null(strstr(text,
                           "# HELP t_calls_total Calls \\\\ seen\\nby test\n"
                           "# TYPE t_calls_total counter\n"
                           "t_calls_total{domain=\"a.test\",dir=\"in\"} 3\n"
                           "t_calls_total{domain=\"b \\\"quoted\\\"\\\\x\\n\",dir=\"out\"} 1\n"));
    free(text);
}

static void gauge_set_remove_clear(void **state)
{
    metric *g = metrics_gauge("t_waiting", "Waiting", "queue");
    metrics_set(g, 4, "support");
    metrics_set(g, 1.5, "sales");
    metrics_add(g, -1, "support");
    assert_true(metrics_get(g, "support") == 3);
    char *text = render();
    assert_non_null(
        strstr(text, "t_waiting{queue=\"support\"} 3\nt_waiting{queue=\"sales\"} 1.5\n"));
    free(text);
    metrics_remove(g, "support");
    assert_true(metrics_get(g, "support") == 0);
    text = render();
    assert_null(strstr(text, "queue=\"support\""));
    free(text);
    metrics_clear(g);
    text = render();
    assert_non_null(strstr(text, "# TYPE t_waiting gauge\n"));
    assert_null(strstr(text, "t_waiting{"));
    free(text);
}

static void declarations_are_checked(void **state)
{
    metric *a = metrics_gauge("t_same", "x", "l");
    assert_ptr_equal(metrics_gauge("t_same", "x", "l"), a);
    assert_null(metrics_counter("t_same", "x", "l")); /* other kind */
    assert_null(metrics_gauge("t_same", "x", "l,m")); /* other labels */
    assert_null(metrics_gauge("bad name", "x", NULL));
    assert_null(metrics_gauge("t_ok", "x", "__reserved"));
    assert_null(metrics_gauge("9lives", "x", NULL));
    metrics_add(NULL, 1); /* harmless */
}

static void special_values(void **state)
{
    metric *g = metrics_gauge("t_special", "x", NULL);
    metrics_set(g, 1.0 / 0.0);
    char *text = render();
    assert_non_null(strstr(text, "t_special +Inf\n"));
    free(text);
    metrics_set(g, 0.25);
    text = render();
    assert_non_null(strstr(text, "t_special 0.25\n"));
    free(text);
}

static int collected;
static void collector(void *arg)
{
    collected++;
    metrics_set(arg, collected);
}

static void collectors_run_before_render(void **state)
{
    metric *g = metrics_gauge("t_collected", "x", NULL);
    metrics_on_collect(collector, g);
    free(render());
    char *text = render();
    assert_non_null(strstr(text, "t_collected 2\n"));
    free(text);
}

static void standard_families_and_events(void **state)
{
    metrics_init();
    events_emit("call.started", 1, NULL);
    events_emit("call.ended", 1, NULL);
    events_emit("agent.state", 1, NULL);
    char *text = render();
    assert_non_null(strstr(text, "# TYPE cw_calls_total counter\n"));
    assert_non_null(strstr(text, "# TYPE cw_agents gauge\n"));
    assert_non_null(strstr(text, "cw_events_total{kind=\"call\"} 2\n"));
    assert_non_null(strstr(text, "cw_events_total{kind=\"agent\"} 1\n"));
    assert_non_null(strstr(text, "cw_loop_lag_ms "));
    free(text);
}

static void series_are_bounded(void **state)
{
    metric *g = metrics_gauge("t_many", "x", "id");
    char id[16];
    for (int i = 0; i < 10050; i++) {
        snprintf(id, sizeof id, "%d", i);
        metrics_set(g, 1, id);
    }
    assert_true(metrics_get(g, "9999") == 1);
    assert_true(metrics_get(g, "10010") == 0);
    metrics_clear(g);
}

static int setup(void **state)
{
    log_set_level("error");
    return loop_init();
}

static int teardown(void **state)
{
    metrics_shutdown();
    events_shutdown();
    loop_free();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counter_with_labels_renders),
        cmocka_unit_test(gauge_set_remove_clear),
        cmocka_unit_test(declarations_are_checked),
        cmocka_unit_test(special_values),
        cmocka_unit_test(collectors_run_before_render),
        cmocka_unit_test(standard_families_and_events),
        cmocka_unit_test(series_are_bounded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
