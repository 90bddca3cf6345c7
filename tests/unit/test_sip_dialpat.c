/*
 * test_sip_dialpat.c - trunk dial patterns: the seed's default
 * sip:8(\d{3}@.*), digit stripping, and patterns that must be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/cw.h"
#include "sip/sip_int.h"

static void dialpat_default_pattern_takes_group(void **state)
{
    char out[64];
    const char *def = "sip:8(\\d{3}@.*)";
    assert_int_equal(dialpat_match(def, "sip:8123@demo.local", 0, out, sizeof out), 1);
    assert_string_equal(out, "123");
    assert_int_equal(dialpat_match(def, "sip:81234@demo.local", 0, out, sizeof out), 0);
    assert_int_equal(dialpat_match(def, "sip:9123@demo.local", 0, out, sizeof out), 0);
    assert_int_equal(dialpat_match(def, "xsip:8123@demo.local", 0, out, sizeof out), 0);
}

static void dialpat_strip_and_whole_match(void **state)
{
    char out[64];
    /* branches 1xxx / 2xxx: strip the branch digit (seed 001 §9.6.3) */
    assert_int_equal(dialpat_match("sip:(2\\d{3})@.*", "sip:2345@demo.local", 1, out, sizeof out),
                     1);
    assert_string_equal(out, "345");
    /* no group: the whole match, up to '@' */
    assert_int_equal(
        dialpat_match("sip:\\+?7\\d{10}@.*", "sip:+79161234567@demo.local", 0, out, sizeof out), 1);
    assert_string_equal(out, "+79161234567");
    assert_int_equal(dialpat_match("sip:([0-9]+)@.*", "sip:0042@x", 0, out, sizeof out), 1);
    assert_string_equal(out, "0042");
    assert_int_equal(dialpat_match("sip:([\\d*#]+)@.*", "sip:12*#@x", 0, out, sizeof out), 1);
    assert_string_equal(out, "12*#");
}

static void dialpat_refuses_bad_patterns(void **state)
{
    char out[64];
    assert_int_equal(dialpat_match("sip:(\\d", "sip:1@x", 0, out, sizeof out), CW_EINVAL);
    assert_int_equal(dialpat_match("sip:\\b1", "sip:1@x", 0, out, sizeof out), CW_EINVAL);
    assert_int_equal(dialpat_match("[abc", "a", 0, out, sizeof out), CW_EINVAL);
    assert_int_equal(dialpat_match("", "a", 0, out, sizeof out), CW_EINVAL);
    assert_int_equal(dialpat_match("sip:1\\", "sip:1", 0, out, sizeof out), CW_EINVAL);
    char t[16];
    assert_int_equal(dialpat_translate("\\d{40}", t, sizeof t), CW_OK);
    assert_int_equal(dialpat_translate("\\d\\d\\d\\d\\d\\d\\d", t, sizeof t), CW_EINVAL);
    /* what would make regcomp() blow up is refused */
    char big[256];
    assert_int_equal(dialpat_translate("8+++++++", big, sizeof big), CW_EINVAL);
    assert_int_equal(dialpat_translate("(((1{99}){99}){99})", big, sizeof big), CW_EINVAL);
    assert_int_equal(dialpat_translate("*1", big, sizeof big), CW_EINVAL);
    assert_int_equal(dialpat_translate("(\\d{3}){3}", big, sizeof big), CW_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dialpat_default_pattern_takes_group),
        cmocka_unit_test(dialpat_strip_and_whole_match),
        cmocka_unit_test(dialpat_refuses_bad_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
