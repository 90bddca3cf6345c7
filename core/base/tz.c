/*
 * tz.c - a TZif (RFC 8536) reader: transition times and their offsets, and
 * for instants after the last transition the POSIX rule in the footer
 * ("MSK-3", "CET-1CEST,M3.5.0,M10.5.0/3").
 */
#include "base/tz.h"
#include "base/cw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef CW_ZONEINFO
#define CW_ZONEINFO "/usr/share/zoneinfo"
#endif

struct rule_date {
    int kind; /* 'M' month.week.day, 'J' julian 1..365, 'N' 0..365 */
    int m, w, d, n;
    int secs; /* time of day of the change, local */
};

struct zone {
    struct zone *next;
    char name[64];
    int64_t *times;
    int *offsets; /* offset in effect from times[i] */
    int n;
    int first_offset;
    /* footer rule */
    int std_off, dst_off; /* seconds east of UTC */
    int has_dst;
    struct rule_date start, end;
};

static struct zone *zones;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* POSIX TZ offsets are west-positive: "MSK-3" is UTC+3. */
static const char *parse_offset(const char *s, int *secs)
{
    int sign = 1;
    if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
    int h = 0, m = 0, sec = 0;
    if (*s < '0' || *s > '9') return NULL;
    while (*s >= '0' && *s <= '9') h = h * 10 + (*s++ - '0');
    if (*s == ':') {
        s++;
        while (*s >= '0' && *s <= '9') m = m * 10 + (*s++ - '0');
        if (*s == ':') {
            s++;
            while (*s >= '0' && *s <= '9') sec = sec * 10 + (*s++ - '0');
        }
    }
    *secs = sign * (h * 3600 + m * 60 + sec);
    return s;
}

static const char *parse_name(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e ? e + 1 : NULL;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) s++;
    return s;
}

static const char *parse_date(const char *s, struct rule_date *r)
{
    memset(r, 0, sizeof *r);
    r->secs = 7200;
    if (*s == 'M') {
        r->kind = 'M';
        if (sscanf(s + 1, "%d.%d.%d", &r->m, &r->w, &r->d) != 3) return NULL;
        s++;
        while ((*s >= '0' && *s <= '9') || *s == '.') s++;
    } else if (*s == 'J') {
        r->kind = 'J';
        r->n = atoi(++s);
        while (*s >= '0' && *s <= '9') s++;
    } else {
        r->kind = 'N';
        r->n = atoi(s);
        while (*s >= '0' && *s <= '9') s++;
    }
    if (*s == '/') {
        s = parse_offset(s + 1, &r->secs);
        if (!s) return NULL;
    }
    return s;
}

static void parse_footer(struct zone *z, const char *f)
{
    const char *s = parse_name(f);
    int off;
    if (!s || !(s = parse_offset(s, &off))) return;
    z->std_off = -off;
    z->dst_off = z->std_off + 3600;
    if (!*s) return;
    s = parse_name(s);
    if (!s) return;
    if (*s && *s != ',') {
        if (!(s = parse_offset(s, &off))) return;
        z->dst_off = -off;
    }
    if (*s != ',') return;
    if (!(s = parse_date(s + 1, &z->start)) || *s != ',') return;
    if (!(s = parse_date(s + 1, &z->end))) return;
    z->has_dst = 1;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d[m - 1] + (m == 2 && leap);
}

/* Days since the epoch of a civil date. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* UTC instant of a rule change in year y, given the offset in effect before it. */
static int64_t rule_instant(const struct rule_date *r, int y, int before_off)
{
    int64_t day;
    if (r->kind == 'M') {
        int64_t first = days_from_civil(y, r->m, 1);
        int wd_first = (int)((first + 4) % 7); /* 0 = Sunday; 1970-01-01 was a Thursday */
        if (wd_first < 0) wd_first += 7;
        int dom = 1 + (r->d - wd_first + 7) % 7 + (r->w - 1) * 7;
        while (dom > days_in_month(y, r->m)) dom -= 7;
        day = first + dom - 1;
    } else if (r->kind == 'J') {
        day = days_from_civil(y, 1, 1) + r->n - 1;
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        if (leap && r->n >= 60) day++;
    } else {
        day = days_from_civil(y, 1, 1) + r->n;
    }
    return day * 86400 + r->secs - before_off;
}

static int footer_offset(const struct zone *z, int64_t t)
{
    if (!z->has_dst) return z->std_off;
    time_t tt = (time_t)(t + z->std_off);
    struct tm tm;
    gmtime_r(&tt, &tm);
    int y = tm.tm_year + 1900;
    int64_t start = rule_instant(&z->start, y, z->std_off);
    int64_t end = rule_instant(&z->end, y, z->dst_off);
    if (start < end) return t >= start && t < end ? z->dst_off : z->std_off;
    return t >= end && t < start ? z->std_off : z->dst_off; /* southern hemisphere */
}

static int valid_name(const char *zone)
{
    size_t n = strlen(zone);
    if (n == 0 || n >= 64 || zone[0] == '/' || strstr(zone, "..")) return 0;
    for (const char *p = zone; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '/' || *p == '_' || *p == '-' || *p == '+'))
            return 0;
    return 1;
}

static struct zone *load(const char *name)
{
    for (struct zone *z = zones; z; z = z->next)
        if (!strcmp(z->name, name)) return z;
    if (!valid_name(name)) return NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/%s", CW_ZONEINFO, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) buf = cw_realloc(buf, cap = cap ? cap * 2 : 4096);
        size_t r = fread(buf + len, 1, cap - len, f);
        if (r == 0) break;
        len += r;
        if (len > (1 << 20)) break;
    }
    fclose(f);
    struct zone *z = NULL;
    if (len < 44 || memcmp(buf, "TZif", 4)) goto out;
    /* skip the v1 block: its counts, then take the v2 (64-bit) one */
    const unsigned char *h = buf;
    uint32_t isutc = be32(h + 20), isstd = be32(h + 24), leap = be32(h + 28), timecnt = be32(h + 32),
             typecnt = be32(h + 36), charcnt = be32(h + 40);
    size_t v1 = 44 + timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isutc;
    int v2 = buf[4] >= '2' && len > v1 + 44;
    if (v2) {
        h = buf + v1;
        if (memcmp(h, "TZif", 4)) goto out;
        isutc = be32(h + 20), isstd = be32(h + 24), leap = be32(h + 28), timecnt = be32(h + 32),
        typecnt = be32(h + 36), charcnt = be32(h + 40);
    }
    size_t tsz = v2 ? 8 : 4;
    const unsigned char *p = h + 44, *end = buf + len;
    size_t need = timecnt * tsz + timecnt + typecnt * 6 + charcnt + leap * (tsz + 4) + isstd + isutc;
    if (typecnt == 0 || (size_t)(end - p) < need) goto out;
    z = cw_calloc(1, sizeof *z);
    cw_strlcpy(z->name, name, sizeof z->name);
    z->n = (int)timecnt;
    z->times = cw_calloc(timecnt + 1, sizeof *z->times);
    z->offsets = cw_calloc(timecnt + 1, sizeof *z->offsets);
    const unsigned char *idx = p + timecnt * tsz, *types = idx + timecnt;
    for (uint32_t i = 0; i < timecnt; i++) {
        z->times[i] = v2 ? be64(p + i * 8) : (int32_t)be32(p + i * 4);
        unsigned t = idx[i] < typecnt ? idx[i] : 0;
        z->offsets[i] = (int32_t)be32(types + t * 6);
    }
    z->first_offset = (int32_t)be32(types); /* type 0 before the first transition */
    z->std_off = z->n ? z->offsets[z->n - 1] : z->first_offset;
    const unsigned char *foot = p + need;
    if (v2 && foot < end && *foot == '\n') {
        const unsigned char *e = memchr(foot + 1, '\n', (size_t)(end - foot - 1));
        if (e) {
            char rule[128];
            size_t rl = CW_MIN((size_t)(e - foot - 1), sizeof rule - 1);
            memcpy(rule, foot + 1, rl);
            rule[rl] = '\0';
            if (rl) parse_footer(z, rule);
        }
    }
    z->next = zones;
    zones = z;
out:
    free(buf);
    return z;
}

int cw_tz_valid(const char *zone)
{
    return zone && (!strcmp(zone, "UTC") || load(zone) != NULL);
}

int cw_tz_local(const char *zone, int64_t utc, struct cw_localtime *out)
{
    struct zone *z = zone && strcmp(zone, "UTC") ? load(zone) : NULL;
    int off = 0;
    int rc = CW_OK;
    if (z) {
        if (z->n == 0 || utc < z->times[0]) {
            off = z->n ? z->first_offset : footer_offset(z, utc);
        } else if (utc >= z->times[z->n - 1] && (z->has_dst || z->std_off != z->offsets[z->n - 1])) {
            off = footer_offset(z, utc);
        } else {
            int lo = 0, hi = z->n - 1;
            while (lo < hi) { /* last transition <= utc */
                int mid = (lo + hi + 1) / 2;
                if (z->times[mid] <= utc)
                    lo = mid;
                else
                    hi = mid - 1;
            }
            off = z->offsets[lo];
        }
    } else if (zone && strcmp(zone, "UTC")) {
        rc = CW_EINVAL;
    }
    time_t t = (time_t)(utc + off);
    struct tm tm;
    gmtime_r(&t, &tm);
    out->year = tm.tm_year + 1900;
    out->month = tm.tm_mon + 1;
    out->day = tm.tm_mday;
    out->wday = tm.tm_wday == 0 ? 7 : tm.tm_wday;
    out->hour = tm.tm_hour;
    out->min = tm.tm_min;
    out->sec = tm.tm_sec;
    out->utc_offset = off;
    return rc;
}
