/*
 * tz.h - local time in a named IANA time zone ("Europe/Moscow"), read from
 * the system's zoneinfo files, without touching the process's TZ.
 *
 * Tenants keep their own time zone (schedules, holidays, reports); this
 * turns an instant into their wall clock. Zones are loaded once and cached.
 * Thread-safe for readers once loaded; loading happens on the core thread.
 */
#ifndef CW_TZ_H
#define CW_TZ_H

#include <stdint.h>

struct cw_localtime {
    int year, month, day;   /* 2026, 1..12, 1..31 */
    int wday;               /* 1 = Monday .. 7 = Sunday (ISO) */
    int hour, min, sec;
    int utc_offset;         /* seconds east of UTC */
};

/* CW_EINVAL for a name that is not a zone (the answer is then UTC). */
int cw_tz_local(const char *zone, int64_t utc, struct cw_localtime *out);
/* Is this a zone name we can load? */
int cw_tz_valid(const char *zone);

#endif
