/*
 * test_media_jbuf.c - the adaptive jitter buffer over time: a stream that
 * arrives evenly, then with up to 140 ms of jitter, then evenly again. The
 * buffer is driven as a worker drives it (a packet put when it arrives, a
 * frame taken every 20 ms tick) on a simulated clock, and the test watches
 * what a listener would get: how deep the buffer is (the delay added), how
 * many packets come too late to play, how many frames are concealed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/cw.h"
#include "media/media.h"
#include "media/media_int.h"

#include <stdlib.h>
#include <string.h>

#define FRAME_MS 20
#define TS0      5000u /* the sender's first timestamp */

struct phase_result {
    uint64_t late;      /* packets too late to play */
    uint64_t concealed; /* frames that had nothing to play */
    int max_delay_ms;   /* the longest the buffer held audio back */
    int end_delay_ms;   /* how long it held it back at the end of the phase */
    int end_target_ms;  /* the delay the buffer aims at, at the end */
};

struct sim {
    struct jbuf jb;
    int64_t now_ms; /* the receiver's clock */
    int next;       /* next packet the sender produces */
    int64_t arrive[8192];
    int pending[8192]; /* packets on the way: sequence numbers */
    int npending;
    uint32_t rng;
};

static int jitter_ms(struct sim *s, int max)
{
    s->rng = s->rng * 1103515245u + 12345u;
    return max ? (int)((s->rng >> 16) % (uint32_t)(max + 1)) : 0;
}

/* The delay the buffer adds: how long ago the sender sent the audio playing now. */
static int delay_ms(const struct sim *s)
{
    int32_t sent_at = (int32_t)(s->jb.play_ts - TS0) / (MEDIA_RATE / 1000);
    return (int)(s->now_ms - sent_at);
}

/* seconds of stream whose packets each arrive 0..jitter ms late */
static struct phase_result run_phase(struct sim *s, int seconds, int jitter)
{
    struct phase_result r = {0};
    uint64_t late0 = s->jb.late, conc0 = s->jb.concealed;
    int16_t pcm[MEDIA_FRAME], out[MEDIA_FRAME];
    for (int i = 0; i < MEDIA_FRAME; i++)
        pcm[i] = (int16_t)(i * 37 % 2000 - 1000);
    int64_t end = s->now_ms + seconds * 1000;
    while (s->now_ms < end) {
        /* the sender: one packet every 20 ms, on its way for 0..jitter ms */
        while ((int64_t)s->next * FRAME_MS <= s->now_ms) {
            assert_true(s->npending < 8192);
            s->pending[s->npending] = s->next;
            s->arrive[s->npending++] = (int64_t)s->next * FRAME_MS + jitter_ms(s, jitter);
            s->next++;
        }
        /* the receiver: what has arrived goes in (in arrival order), then one frame out */
        for (int64_t t = s->now_ms - FRAME_MS + 1; t <= s->now_ms; t++) {
            for (int k = 0; k < s->npending;) {
                if (s->arrive[k] == t) {
                    jb_put(&s->jb, TS0 + (uint32_t)s->pending[k] * MEDIA_FRAME, pcm, MEDIA_FRAME);
                    s->pending[k] = s->pending[--s->npending];
                    s->arrive[k] = s->arrive[s->npending];
                } else {
                    k++;
                }
            }
        }
        if (s->jb.started) r.max_delay_ms = CW_MAX(r.max_delay_ms, delay_ms(s));
        jb_get(&s->jb, out, MEDIA_FRAME);
        s->now_ms += FRAME_MS;
    }
    r.late = s->jb.late - late0;
    r.concealed = s->jb.concealed - conc0;
    r.end_delay_ms = delay_ms(s);
    r.end_target_ms = s->jb.target / (MEDIA_RATE / 1000);
    return r;
}

static void jitter_buffer_grows_under_jitter_and_shrinks_after(void **st)
{
    CW_UNUSED(st);
    struct sim *s = calloc(1, sizeof *s);
    assert_non_null(s);
    jb_init(&s->jb, true);
    s->rng = 42;
    s->now_ms = FRAME_MS;

    /* an even stream: 40 ms of delay, nothing late, nothing concealed after the lead-in */
    struct phase_result calm = run_phase(s, 5, 2);
    assert_int_equal(calm.late, 0);
    assert_true(calm.concealed <= 2);
    assert_int_equal(calm.end_target_ms, 40);
    assert_true(calm.end_delay_ms <= 60);

    /* up to 140 ms of jitter: packets come too late at first; the buffer deepens
     * until they stop, and then every frame plays */
    struct phase_result first = run_phase(s, 3, 140);
    struct phase_result settled = run_phase(s, 12, 140);
    if (first.late == 0) fail_msg("140 ms of jitter made no packet late");
    if (settled.late || settled.concealed)
        fail_msg("the buffer did not adapt: %llu late and %llu concealed after the first 3 s",
                 (unsigned long long)settled.late, (unsigned long long)settled.concealed);
    if (settled.end_target_ms < 100 || settled.end_delay_ms < 120)
        fail_msg("under 140 ms of jitter the buffer aims at %d ms and holds audio %d ms",
                 settled.end_target_ms, settled.end_delay_ms);
    assert_true(settled.end_target_ms <= 150); /* the ceiling */

    /* the jitter stops: a short lull changes nothing (no late packet for 10 s is the rule) */
    struct phase_result lull = run_phase(s, 5, 0);
    assert_int_equal(lull.end_target_ms, settled.end_target_ms);
    /* then the buffer shrinks back 10 ms every 10 s to 40 ms, and the delay with it,
     * without a late or concealed frame */
    int steps = (settled.end_target_ms - 40) / 10;
    struct phase_result back = run_phase(s, 10 * steps + 10, 0);
    assert_int_equal(back.late, 0);
    assert_int_equal(back.concealed, 0);
    assert_int_equal(back.end_target_ms, 40);
    if (back.end_delay_ms > 40 + 2 * FRAME_MS)
        fail_msg("the jitter stopped but audio is still held back %d ms", back.end_delay_ms);
    struct phase_result after = run_phase(s, 5, 0);
    assert_int_equal(after.concealed, 0);
    assert_true(after.max_delay_ms <= 40 + 2 * FRAME_MS);
    jb_free(&s->jb);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jitter_buffer_grows_under_jitter_and_shrinks_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
