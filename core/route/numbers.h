/*
 * numbers.h - what kind of number was dialled, and whether a user's
 * outbound restriction lets them dial it (seed 001 §4.2).
 *
 * Pure functions over the digits; the Russian numbering plan the seeds
 * describe (8 / 810 prefixes) and E.164 with a leading +.
 */
#ifndef CW_ROUTE_NUMBERS_H
#define CW_ROUTE_NUMBERS_H

#include <stdbool.h>

enum number_class {
    NUM_INVALID = 0,
    NUM_EMERGENCY,     /* 112, 101-104, 01-04: always allowed */
    NUM_LOCAL,         /* a city number (up to 7 digits) */
    NUM_LONG_DISTANCE, /* 8 / 7 / +7 followed by 10 digits, or 10 digits */
    NUM_INTERNATIONAL, /* 810..., 00..., + and a country other than 7 */
};

enum number_class route_classify(const char *dialled);
const char *route_class_name(enum number_class c);

/* restriction: none, no_international, no_international_longdistance, internal_only. */
bool route_restriction_allows(const char *restriction, enum number_class c);

#endif
