/*
 * numbers.c - number classes and outbound restrictions.
 */
#include "route/numbers.h"
#include "base/cw.h"

#include <string.h>

static bool all_digits(const char *s, size_t *n)
{
    *n = 0;
    for (; *s; s++, (*n)++)
        if (*s < '0' || *s > '9') return false;
    return *n > 0;
}

enum number_class route_classify(const char *d)
{
    size_t n;
    if (!d || !*d) return NUM_INVALID;
    if (d[0] == '+') {
        if (!all_digits(d + 1, &n) || n < 3) return NUM_INVALID;
        return d[1] == '7' ? NUM_LONG_DISTANCE : NUM_INTERNATIONAL;
    }
    if (!all_digits(d, &n)) return NUM_INVALID;
    static const char *const emergency[] = {"112", "101", "102", "103", "104",
                                            "01",  "02",  "03",  "04"};
    for (size_t i = 0; i < CW_ARRAY_LEN(emergency); i++)
        if (!strcmp(d, emergency[i])) return NUM_EMERGENCY;
    if (!strncmp(d, "810", 3) && n > 5) return NUM_INTERNATIONAL;
    if (!strncmp(d, "00", 2) && n > 4) return NUM_INTERNATIONAL;
    if (n == 11 && (d[0] == '8' || d[0] == '7')) return NUM_LONG_DISTANCE;
    if (n == 10) return NUM_LONG_DISTANCE;
    if (n <= 7) return NUM_LOCAL;
    return NUM_INTERNATIONAL; /* longer than a national number: treat as abroad */
}

const char *route_class_name(enum number_class c)
{
    static const char *n[] = {"invalid", "emergency", "local", "long_distance", "international"};
    return c <= NUM_INTERNATIONAL ? n[c] : "invalid";
}

bool route_restriction_allows(const char *r, enum number_class c)
{
    if (c == NUM_INVALID) return false;
    if (c == NUM_EMERGENCY || !r || !strcmp(r, "none")) return true;
    if (!strcmp(r, "internal_only")) return false;
    if (!strcmp(r, "no_international")) return c != NUM_INTERNATIONAL;
    if (!strcmp(r, "no_international_longdistance"))
        return c != NUM_INTERNATIONAL && c != NUM_LONG_DISTANCE;
    return false; /* an unknown restriction allows nothing outside */
}
