/*
 * test_media_tones.c - the tone plans callers hear, by locale: ringback,
 * congestion and the call-waiting beep in ru (425 Hz, GOST) and us (the
 * precise tone plan). Each tone is generated as the worker does and measured
 * like a phone would: the on/off cadence to the millisecond, the frequencies
 * that make up each burst (and no other locale's), the level in dBm0, and
 * whether it repeats or ends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/cw.h"
#include "media/media.h"
#include "media/media_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RATE   8000
#define MAXRUN 16

struct expect {
    const char *locale;
    enum media_tone tone;
    int f1, f2;        /* Hz of every burst; f2 0 = a single tone */
    int cadence_ms[4]; /* on, off, on, ... of one cycle (0 ends the list) */
    bool repeats;
    double level_dbm0; /* per frequency */
};

/* A run of at least this many zero samples is a pause; a sine crosses zero
 * in one sample. */
#define PAUSE_MIN 8

/* Split a signal into alternating on/off runs (ms), starting with an on run. */
static int runs_ms(const int16_t *x, int n, double *out, int max)
{
    int k = 0, i = 0;
    while (i < n && k < max) {
        int start = i;
        if (k % 2 == 0) { /* on: until a pause begins */
            while (i < n) {
                int z = 0;
                while (i + z < n && x[i + z] == 0)
                    z++;
                if (z >= PAUSE_MIN || i + z >= n) break;
                i += z + 1;
            }
        } else {
            while (i < n && x[i] == 0)
                i++;
        }
        out[k++] = (i - start) * 1000.0 / RATE;
    }
    return k;
}

static int16_t *generate(const char *locale, enum media_tone t, int n, bool *ended)
{
    const struct tone_plan *p = tone_plan_for(locale, t);
    assert_non_null(p);
    struct tone_gen g;
    tone_gen_start(&g, p);
    int16_t *x = calloc((size_t)n, sizeof *x);
    assert_non_null(x);
    bool more = true;
    for (int i = 0; i < n; i += MEDIA_FRAME) /* one worker tick at a time */
        more = tone_gen_fill(&g, x + i, CW_MIN(MEDIA_FRAME, n - i));
    *ended = !more;
    return x;
}

static void check_bursts(const struct expect *e, const int16_t *x, const double *r, int nr)
{
    const char *other = !strcmp(e->locale, "ru") ? "us" : "ru";
    const struct tone_plan *op = tone_plan_for(other, (int)e->tone);
    int pos = 0;
    for (int k = 0; k < nr; k += 2) {
        int len = (int)lrint(r[k] * RATE / 1000);
        /* the middle of the burst, away from the edges */
        const int16_t *b = x + pos + len / 8;
        int bn = len - len / 4;
        pos += len + (k + 1 < nr ? (int)lrint(r[k + 1] * RATE / 1000) : 0);
        double want = e->f2 ? 0.45 : 0.9;
        double p1 = dsp_goertzel_ratio(b, bn, e->f1, RATE);
        if (p1 < want)
            fail_msg("%s tone %d burst %d: %d Hz has %.2f of the energy", e->locale, e->tone, k / 2,
                     e->f1, p1);
        if (e->f2) {
            double p2 = dsp_goertzel_ratio(b, bn, e->f2, RATE);
            if (p2 < want)
                fail_msg("%s tone %d burst %d: %d Hz has %.2f", e->locale, e->tone, k / 2, e->f2,
                         p2);
        }
        /* nothing of the other locale's frequencies, unless the two share one */
        int of = op->segs[0].f1;
        if (of != e->f1 && of != e->f2) {
            double po = dsp_goertzel_ratio(b, bn, of, RATE);
            if (po > 0.02) fail_msg("%s tone %d carries %d Hz (%s)", e->locale, e->tone, of, other);
        }
        /* level: a sine at L dBm0 is L - 3.14 dB below a full-scale sine (G.711) */
        double want_dbov = e->level_dbm0 - 3.14 - 3.01 + (e->f2 ? 3.01 : 0);
        double got = dsp_power_dbov(b, bn);
        if (fabs(got - want_dbov) > 0.5)
            fail_msg("%s tone %d: %.1f dBov, want %.1f", e->locale, e->tone, got, want_dbov);
    }
}

static void check_tone(const struct expect *e)
{
    int cycle = 0, parts = 0;
    while (parts < 4 && e->cadence_ms[parts])
        cycle += e->cadence_ms[parts++];
    /* two cycles of a repeating tone and half its first burst; a one-shot and 1 s after it */
    int n = e->repeats ? (2 * cycle + e->cadence_ms[0] / 2) * RATE / 1000
                       : (cycle + 1000) * RATE / 1000;
    bool ended;
    int16_t *x = generate(e->locale, e->tone, n, &ended);
    double r[MAXRUN];
    int nr = runs_ms(x, n, r, MAXRUN);
    /* the cadence, repeated when the tone repeats */
    int want_runs = e->repeats ? 5 : parts + 1; /* a one-shot ends in silence */
    if (nr != want_runs)
        fail_msg("%s tone %d: %d on/off runs, want %d", e->locale, e->tone, nr, want_runs);
    for (int k = 0; k < nr - 1; k++) { /* the last run is cut by the end of the buffer */
        int want = e->cadence_ms[k % parts];
        if (fabs(r[k] - want) > 1.0)
            fail_msg("%s tone %d run %d: %.1f ms, want %d", e->locale, e->tone, k, r[k], want);
    }
    if (e->repeats) {
        if (ended) fail_msg("%s tone %d stopped, it should repeat", e->locale, e->tone);
        assert_true(fabs(r[nr - 1] - e->cadence_ms[0] / 2.0) <= 1.0); /* half a burst */
    } else {
        if (!ended) fail_msg("%s tone %d goes on, it should end", e->locale, e->tone);
        assert_true(r[nr - 1] >= 999.0); /* and after it, silence */
    }
    check_bursts(e, x, r, e->repeats ? nr : nr - 1);
    free(x);
}

static void ringback_by_locale(void **st)
{
    CW_UNUSED(st);
    /* ru: 425 Hz, 1 s on, 4 s off; us: 440 + 480 Hz, 2 s on, 4 s off */
    struct expect ru = {"ru", MEDIA_TONE_RINGBACK, 425, 0, {1000, 4000}, true, -10};
    struct expect us = {"us", MEDIA_TONE_RINGBACK, 440, 480, {2000, 4000}, true, -16};
    check_tone(&ru);
    check_tone(&us);
}

static void congestion_by_locale(void **st)
{
    CW_UNUSED(st);
    /* ru: 425 Hz, 175 ms on and off (twice the busy rate); us: reorder, 480 + 620 Hz,
     * 250 ms on and off */
    struct expect ru = {"ru", MEDIA_TONE_CONGESTION, 425, 0, {175, 175}, true, -10};
    struct expect us = {"us", MEDIA_TONE_CONGESTION, 480, 620, {250, 250}, true, -16};
    check_tone(&ru);
    check_tone(&us);
}

static void call_waiting_by_locale(void **st)
{
    CW_UNUSED(st);
    /* one double beep over the conversation, then nothing: ru 425 Hz 200/200/200 ms,
     * us 440 Hz 300/100/300 ms */
    struct expect ru = {"ru", MEDIA_TONE_CALL_WAITING, 425, 0, {200, 200, 200}, false, -13};
    struct expect us = {"us", MEDIA_TONE_CALL_WAITING, 440, 0, {300, 100, 300}, false, -13};
    check_tone(&ru);
    check_tone(&us);
}

static void unknown_locale_is_ru_and_unknown_tone_is_none(void **st)
{
    CW_UNUSED(st);
    assert_ptr_equal(tone_plan_for("xx", MEDIA_TONE_RINGBACK),
                     tone_plan_for("ru", MEDIA_TONE_RINGBACK));
    assert_ptr_equal(tone_plan_for(NULL, MEDIA_TONE_CONGESTION),
                     tone_plan_for("ru", MEDIA_TONE_CONGESTION));
    assert_ptr_not_equal(tone_plan_for("us", MEDIA_TONE_RINGBACK),
                         tone_plan_for("ru", MEDIA_TONE_RINGBACK));
    assert_null(tone_plan_for("us", 0));
    assert_null(tone_plan_for("us", MEDIA_TONE_BEEP + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ringback_by_locale),
        cmocka_unit_test(congestion_by_locale),
        cmocka_unit_test(call_waiting_by_locale),
        cmocka_unit_test(unknown_locale_is_ru_and_unknown_tone_is_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
