/*
 * test_route_numbers.c - number classes and the four outbound restrictions
 * of seed 001 §4.2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "route/numbers.h"

static void numbers_are_classified_by_the_russian_plan_and_e164(void **state)
{
    assert_int_equal(route_classify("2628900"), NUM_LOCAL);
    assert_int_equal(route_classify("83432628900"), NUM_LONG_DISTANCE);
    assert_int_equal(route_classify("79121234567"), NUM_LONG_DISTANCE);
    assert_int_equal(route_classify("9121234567"), NUM_LONG_DISTANCE);
    assert_int_equal(route_classify("+79121234567"), NUM_LONG_DISTANCE);
    assert_int_equal(route_classify("81049301234567"), NUM_INTERNATIONAL);
    assert_int_equal(route_classify("0049301234567"), NUM_INTERNATIONAL);
    assert_int_equal(route_classify("+49301234567"), NUM_INTERNATIONAL);
    assert_int_equal(route_classify("112"), NUM_EMERGENCY);
    assert_int_equal(route_classify("03"), NUM_EMERGENCY);
    assert_int_equal(route_classify(""), NUM_INVALID);
    assert_int_equal(route_classify("12a4"), NUM_INVALID);
    assert_int_equal(route_classify("+"), NUM_INVALID);
}

static void restrictions_allow_what_they_say(void **state)
{
    const char *r[] = {"none", "no_international", "no_international_longdistance",
                       "internal_only"};
    enum number_class c[] = {NUM_LOCAL, NUM_LONG_DISTANCE, NUM_INTERNATIONAL};
    /* rows: restriction; columns: local, long distance, international */
    const int allowed[4][3] = {{1, 1, 1}, {1, 1, 0}, {1, 0, 0}, {0, 0, 0}};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            assert_int_equal(route_restriction_allows(r[i], c[j]), allowed[i][j]);
    /* emergency numbers are never blocked; invalid numbers never dialled */
    for (int i = 0; i < 4; i++) {
        assert_true(route_restriction_allows(r[i], NUM_EMERGENCY));
        assert_false(route_restriction_allows(r[i], NUM_INVALID));
    }
    assert_false(route_restriction_allows("bogus", NUM_LOCAL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers_are_classified_by_the_russian_plan_and_e164),
        cmocka_unit_test(restrictions_allow_what_they_say),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
