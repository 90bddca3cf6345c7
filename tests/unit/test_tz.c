/*
 * test_tz.c - local time in named zones agrees with the C library's own
 * reading of the same zoneinfo (checked by setting TZ in this test only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "base/tz.h"

static void compare_with_libc(const char *zone)
{
    setenv("TZ", zone, 1);
    tzset();
    /* every ~9 days from 1995 to 2040, plus both sides of DST changes */
    for (int64_t t = 788918400; t < 2208988800; t += 86400 * 9 + 3671) {
        struct cw_localtime lt;
        assert_int_equal(cw_tz_local(zone, t, &lt), 0);
        time_t tt = (time_t)t;
        struct tm tm;
        localtime_r(&tt, &tm);
        if (lt.hour != tm.tm_hour || lt.day != tm.tm_mday || lt.min != tm.tm_min)
            fail_msg("%s at %lld: got %02d:%02d day %d, libc %02d:%02d day %d", zone, (long long)t,
                     lt.hour, lt.min, lt.day, tm.tm_hour, tm.tm_min, tm.tm_mday);
        assert_int_equal(lt.utc_offset, (int)tm.tm_gmtoff);
        assert_int_equal(lt.wday, tm.tm_wday == 0 ? 7 : tm.tm_wday);
    }
}

static void tz_moscow_berlin_new_york_sydney_match_libc(void **state)
{
    compare_with_libc("Europe/Moscow");
    compare_with_libc("Europe/Berlin");
    compare_with_libc("America/New_York");
    compare_with_libc("Australia/Sydney");
    compare_with_libc("Asia/Yekaterinburg");
}

static void tz_known_instants(void **state)
{
    struct cw_localtime lt;
    /* 2026-11-22 12:00:00 UTC is 15:00 in Moscow (UTC+3, no DST), a Sunday */
    assert_int_equal(cw_tz_local("Europe/Moscow", 1795348800, &lt), 0);
    assert_int_equal(lt.hour, 15);
    assert_int_equal(lt.wday, 7);
    assert_int_equal(lt.utc_offset, 10800);
    assert_int_equal(cw_tz_local("UTC", 1795348800, &lt), 0);
    assert_int_equal(lt.hour, 12);
}

static void tz_bad_names_are_refused(void **state)
{
    struct cw_localtime lt;
    assert_int_not_equal(cw_tz_local("../etc/passwd", 0, &lt), 0);
    assert_int_not_equal(cw_tz_local("Mars/Olympus", 0, &lt), 0);
    assert_false(cw_tz_valid("/etc/passwd"));
    assert_false(cw_tz_valid(""));
    assert_true(cw_tz_valid("Europe/Moscow"));
    assert_true(cw_tz_valid("UTC"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tz_moscow_berlin_new_york_sydney_match_libc),
        cmocka_unit_test(tz_known_instants),
        cmocka_unit_test(tz_bad_names_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
