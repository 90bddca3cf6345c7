/*
 * test_http_json_text.c - the API's reply writer gives exactly the bytes
 * jansson's json_dumps(JSON_COMPACT) gives: every control character and
 * escape, UTF-8 text, embedded NULs, numbers, nesting, empty containers and
 * member order; and it refuses a cycle instead of recursing forever.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/http.h"

static void same_as_jansson(json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT);
    cw_buf got;
    cw_buf_init(&got);
    assert_int_equal(http_json_text(&got, v), 0);
    assert_non_null(want);
    if (strlen(want) != got.len || memcmp(want, got.data, got.len))
        fail_msg("jansson: %s\nours:    %s", want, got.data);
    free(want);
    cw_buf_free(&got);
    json_decref(v);
}

static void json_text_escapes_every_byte_like_jansson(void **state)
{
    (void)state;
    for (int c = 1; c < 0x80; c++) {
        char s[8] = {'a', (char)c, 'b', '\0'};
        same_as_jansson(json_pack("{s:s}", s, s));
    }
    same_as_jansson(json_pack("[s]", "Привет, мир — 日本語 😀 \"q\" \\ / \x7f"));
    same_as_jansson(json_pack("[o]", json_stringn("a\0b", 3)));
    same_as_jansson(json_pack("{s:s}", "", ""));
}

static void json_text_writes_values_and_order_like_jansson(void **state)
{
    (void)state;
    same_as_jansson(json_pack("{s:I,s:I,s:i,s:b,s:b,s:n,s:f,s:f,s:f}", "max", (json_int_t)INT64_MAX,
                              "min", (json_int_t)INT64_MIN, "zero", 0, "t", 1, "f", 0, "none", "r1",
                              1.0, "r2", 0.1, "r3", -2.5e300));
    same_as_jansson(json_pack("{s:[],s:{},s:[[],{},[i,[i,[i]]]]}", "a", "o", "n", 1, 2, 3));
    json_t *o = json_object();
    for (int i = 0; i < 40; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", (i * 7) % 40);
        json_object_set_new(o, key, json_integer(i));
    }
    json_object_set_new(o, "k3", json_string("replaced keeps its place"));
    same_as_jansson(json_pack("{s:o,s:[o]}", "items", o, "list", json_array()));
}

static void json_text_refuses_a_cycle(void **state)
{
    (void)state;
    json_t *a = json_array(), *b = json_array();
    json_array_append(a, b);
    json_array_append(b, a);
    cw_buf out;
    cw_buf_init(&out);
    cw_buf_puts(&out, "kept");
    assert_int_not_equal(http_json_text(&out, a), 0);
    assert_string_equal(out.data, "kept");
    cw_buf_free(&out);
    json_array_clear(b);
    json_decref(b);
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_text_escapes_every_byte_like_jansson),
        cmocka_unit_test(json_text_writes_values_and_order_like_jansson),
        cmocka_unit_test(json_text_refuses_a_cycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
