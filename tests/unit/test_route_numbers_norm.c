/*
 * test_route_numbers_norm.c - the canonical caller number classifiers and
 * black lists match on, and the calendar arithmetic of recording expiry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "recording/recording.h"
#include "route/route.h"

static void norm_is(const char *in, const char *want)
{
    char out[32];
    route_number_norm(in, out, sizeof out);
    if (strcmp(out, want)) fail_msg("%s -> %s, want %s", in, out, want);
}

static void route_norm_takes_7_8_and_plus7_alike(void **state)
{
    norm_is("+74951234567", "4951234567");
    norm_is("74951234567", "4951234567");
    norm_is("84951234567", "4951234567");
    norm_is("4951234567", "4951234567");
    norm_is("+7 (495) 123-45-67", "4951234567");
    /* other lengths and countries keep every digit */
    norm_is("101", "101");
    norm_is("+4930123456", "4930123456");
    norm_is("8104930123456", "8104930123456");
    norm_is("94951234567", "94951234567");
    norm_is("", "");
    norm_is("anonymous", "");
}

static void expiry(int64_t from, int months, int64_t want)
{
    int64_t got = recording_expiry(from, months);
    if (got != want)
        fail_msg("%lld + %d months = %lld, want %lld", (long long)from, months, (long long)got,
                 (long long)want);
}

static void recording_expiry_counts_calendar_months(void **state)
{
    /* 2026-01-15 10:00 UTC */
    expiry(1768471200, 1, 1771149600);  /* 2026-02-15 10:00 */
    expiry(1768471200, 6, 1784109600);  /* 2026-07-15 10:00 */
    expiry(1768471200, 12, 1800007200); /* 2027-01-15 10:00 */
    /* 2026-01-31 -> the last day of February; 2028-01-31 -> the 29th (leap year) */
    expiry(1769860800, 1, 1772280000); /* 2026-01-31 12:00 -> 2026-02-28 12:00 */
    expiry(1832932800, 1, 1835438400); /* 2028-01-31 12:00 -> 2028-02-29 12:00 */
    /* 2026-08-31 + 6 months -> 2027-02-28 */
    expiry(1788177600, 6, 1803816000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(route_norm_takes_7_8_and_plus7_alike),
        cmocka_unit_test(recording_expiry_counts_calendar_months),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
