/*
 * test_media_mix.c - who hears whom: two-party bridge across workers, a
 * three-party conference with mute and deaf, supervisor listen / whisper /
 * barge, and recording (stereo channels correlate with what each party sent;
 * pause, max length and silence stop). Each party sends its own frequency;
 * the checks are Goertzel ratios on what each peer received.
 */
#include "media_harness.h"

static int setup(void **st)
{
    h_init(2);
    return 0;
}

static int teardown(void **st)
{
    h_done();
    return 0;
}

#define NPARTY 4
struct party {
    struct peer p;
    media_id id;
    double f;
    int64_t phase;
    bool quiet;
};
static struct party P[NPARTY];
static int nparty;

static void talk(int frame, void *arg)
{
    for (int i = 0; i < nparty; i++) {
        int16_t b[MEDIA_FRAME];
        if (P[i].quiet)
            memset(b, 0, sizeof b);
        else
            h_sine(b, MEDIA_FRAME, P[i].f, 6000, &P[i].phase);
        peer_send_pcm(&P[i].p, b);
    }
}

static void parties(int n)
{
    static const double freqs[NPARTY] = {500, 1100, 1700, 2300};
    nparty = n;
    for (int i = 0; i < n; i++) {
        peer_open(&P[i].p, i % 2 ? MEDIA_PCMA : MEDIA_PCMU);
        P[i].id = h_session(&P[i].p, 0, MEDIA_DTMF_AUTO);
        P[i].f = freqs[i];
        P[i].phase = 0;
        P[i].quiet = false;
    }
}

static void parties_close(void)
{
    for (int i = 0; i < nparty; i++)
        media_session_close(P[i].id);
    h_wait_event(P[nparty - 1].id, MEDIA_EV_CLOSED, 1, 1000);
    for (int i = 0; i < nparty; i++)
        peer_close(&P[i].p);
    nparty = 0;
}

/* Does party i hear party j? Checked over the last 400 ms received. */
static double hears(int i, int j)
{
    struct peer *p = &P[i].p;
    if (p->ncap < 3200) return 0;
    return dsp_goertzel_ratio(p->cap + p->ncap - 3200, 3200, P[j].f, MEDIA_RATE);
}

static void expect(int i, int j, bool yes)
{
    double r = hears(i, j);
    if (yes && r < 0.15) print_error("party %d should hear %d (ratio %.3f)\n", i, j, r);
    if (!yes && r > 0.02) print_error("party %d should not hear %d (ratio %.3f)\n", i, j, r);
    assert_true(yes ? r >= 0.15 : r <= 0.02);
}

static void bridge_carries_audio_both_ways_across_workers(void **st)
{
    parties(2);
    assert_int_not_equal(media_worker_of(P[0].id), media_worker_of(P[1].id));
    assert_int_equal(media_bridge(P[0].id, P[1].id), 0);
    assert_int_equal(media_worker_of(P[0].id), media_worker_of(P[1].id)); /* moved together */
    h_drive(40, talk, NULL);
    expect(0, 1, true);
    expect(1, 0, true);
    expect(0, 0, false); /* no echo of one's own voice */
    expect(1, 1, false);
    assert_true(hears(0, 1) > 0.8);
    /* unbridged: silence both ways */
    assert_int_equal(media_unbridge(P[0].id), 0);
    h_drive(30, talk, NULL);
    assert_true(peer_power(&P[0].p, P[0].p.ncap - 3200, 3200) < -60);
    assert_true(peer_power(&P[1].p, P[1].p.ncap - 3200, 3200) < -60);
    /* a session opened near another starts on its worker (no move needed later) */
    media_id near;
    int port;
    assert_int_equal(media_session_open(P[1].id, &near, &port), 0);
    assert_int_equal(media_worker_of(near), media_worker_of(P[1].id));
    media_session_close(near);
    parties_close();
}

static void conference_three_parties_hear_the_other_two(void **st)
{
    parties(3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(media_conf_join(P[i].id, 42, 0), 0);
    h_drive(40, talk, NULL);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            expect(i, j, i != j);
    /* talker detection events for conference members */
    assert_true(h_count(P[0].id, MEDIA_EV_TALK_START) >= 1);
    /* mute 2: nobody hears it; deaf 0: hears nothing, still heard */
    assert_int_equal(media_conf_set(P[2].id, MEDIA_CONF_MUTE), 0);
    assert_int_equal(media_conf_set(P[0].id, MEDIA_CONF_DEAF), 0);
    h_drive(30, talk, NULL);
    expect(1, 2, false);
    expect(1, 0, true);
    expect(2, 0, true);
    expect(2, 1, true);
    assert_true(peer_power(&P[0].p, P[0].p.ncap - 3200, 3200) < -60);
    /* 1 leaves (a kick is a leave): 0 and 2 carry on with each other */
    assert_int_equal(media_conf_set(P[2].id, 0), 0);
    assert_int_equal(media_conf_set(P[0].id, 0), 0);
    assert_int_equal(media_conf_leave(P[1].id), 0);
    h_drive(35, talk, NULL);
    expect(0, 2, true);
    expect(2, 0, true);
    expect(0, 1, false);
    assert_true(peer_power(&P[1].p, P[1].p.ncap - 3200, 3200) < -60);
    parties_close();
}

static void conference_join_and_leave_cues(void **st)
{
    parties(3);
    for (int i = 0; i < 3; i++)
        P[i].quiet = true;
    assert_int_equal(media_conf_join(P[0].id, 9, 0), 0);
    h_drive(10, talk, NULL);
    int from = P[0].p.ncap;
    assert_int_equal(media_conf_join(P[1].id, 9, 0), 0); /* 0 hears the join cue */
    h_drive(20, talk, NULL);
    struct peer *p0 = &P[0].p;
    assert_true(p0->ncap - from >= 2400);
    double lo = 0, hi = 0;
    for (int k = from; k + 400 <= p0->ncap; k += 80) {
        lo = fmax(lo, dsp_goertzel_ratio(p0->cap + k, 400, 660, 8000));
        hi = fmax(hi, dsp_goertzel_ratio(p0->cap + k, 400, 880, 8000));
    }
    assert_true(lo > 0.5 && hi > 0.5);
    /* a member joining with NO_TONES is silent */
    from = p0->ncap;
    assert_int_equal(media_conf_join(P[2].id, 9, MEDIA_CONF_NO_TONES), 0);
    h_drive(20, talk, NULL);
    assert_true(peer_power(p0, from, p0->ncap - from) < -60);
    /* 1 leaves: the others hear the leave cue */
    from = P[2].p.ncap;
    assert_int_equal(media_conf_leave(P[1].id), 0);
    h_drive(20, talk, NULL);
    assert_true(peer_power(&P[2].p, from, P[2].p.ncap - from) > -40);
    parties_close();
}

static void conference_of_sixteen(void **st)
{
    /* 16 parties: each one hears the sum of the other 15 (checked on one tone) */
    struct peer peers[16];
    media_id ids[16];
    int64_t ph = 0;
    for (int i = 0; i < 16; i++) {
        peer_open(&peers[i], MEDIA_PCMU);
        ids[i] = h_session(&peers[i], 0, MEDIA_DTMF_AUTO);
        assert_int_equal(media_conf_join(ids[i], 7, MEDIA_CONF_NO_TONES), 0);
    }
    for (int f = 0; f < 40; f++) {
        int16_t tone[MEDIA_FRAME];
        h_sine(tone, MEDIA_FRAME, 800, 4000, &ph);
        peer_send_pcm(&peers[0], tone); /* only party 0 speaks */
        for (int i = 1; i < 16; i++)
            peer_send_pcm(&peers[i], (int16_t[MEDIA_FRAME]){0});
        h_drive(1, NULL, NULL);
    }
    for (int i = 1; i < 16; i++) {
        assert_true(peers[i].ncap > 3200);
        assert_true(dsp_goertzel_ratio(peers[i].cap + peers[i].ncap - 3200, 3200, 800, 8000) > 0.8);
    }
    assert_true(peer_power(&peers[0], peers[0].ncap - 3200, 3200) < -60);
    for (int i = 0; i < 16; i++)
        media_session_close(ids[i]);
    assert_true(h_wait_event(ids[15], MEDIA_EV_CLOSED, 1, 1000));
    for (int i = 0; i < 16; i++)
        peer_close(&peers[i]);
}

static void supervisor_listen_whisper_barge(void **st)
{
    parties(3); /* 0 customer, 1 agent, 2 supervisor */
    assert_int_equal(media_bridge(P[0].id, P[1].id), 0);
    assert_int_equal(media_spy(P[2].id, P[0].id, P[1].id, MEDIA_SPY_LISTEN), 0);
    h_drive(40, talk, NULL);
    expect(2, 0, true); /* supervisor hears both */
    expect(2, 1, true);
    expect(0, 2, false); /* nobody hears the supervisor */
    expect(1, 2, false);
    expect(0, 1, true); /* the call goes on */
    expect(1, 0, true);
    assert_int_equal(media_spy(P[2].id, P[0].id, P[1].id, MEDIA_SPY_WHISPER), 0);
    h_drive(30, talk, NULL);
    expect(1, 2, true);  /* the agent hears the supervisor */
    expect(0, 2, false); /* the customer does not */
    expect(2, 0, true);
    expect(2, 1, true);
    expect(0, 1, true);
    assert_int_equal(media_spy(P[2].id, P[0].id, P[1].id, MEDIA_SPY_BARGE), 0);
    h_drive(30, talk, NULL);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            expect(i, j, i != j);
    assert_int_equal(media_spy_stop(P[2].id), 0);
    h_drive(30, talk, NULL);
    expect(0, 2, false);
    expect(1, 2, false);
    expect(0, 1, true);
    assert_true(peer_power(&P[2].p, P[2].p.ncap - 3200, 3200) < -60);
    parties_close();
}

/* ---- recording ---- */

static int16_t sent_a[8000 * 8], sent_b[8000 * 8];
static int nsent;
static uint32_t rng = 12345;

static int16_t noise_sample(int32_t *state)
{
    rng = rng * 1103515245u + 12345u;
    int32_t white = (int32_t)((rng >> 16) & 0x7FFF) - 16384;
    *state = (*state * 7 + white) / 8; /* low-passed: speech-like spectrum */
    return (int16_t)(*state);
}

static void talk_noise(int frame, void *arg)
{
    static int32_t sa, sb;
    int16_t a[MEDIA_FRAME], b[MEDIA_FRAME];
    for (int i = 0; i < MEDIA_FRAME; i++) {
        a[i] = noise_sample(&sa);
        b[i] = noise_sample(&sb);
    }
    if (nsent + MEDIA_FRAME <= (int)CW_ARRAY_LEN(sent_a)) {
        memcpy(sent_a + nsent, a, sizeof a);
        memcpy(sent_b + nsent, b, sizeof b);
        nsent += MEDIA_FRAME;
    }
    peer_send_pcm(&P[0].p, a);
    peer_send_pcm(&P[1].p, b);
}

/* Best normalised cross-correlation of rec[0..n) against sent at any lag. */
static double best_ncc(const int16_t *rec, int n, const int16_t *sent, int nsent_)
{
    double best = 0;
    double er = 0;
    for (int i = 0; i < n; i++)
        er += (double)rec[i] * rec[i];
    for (int lag = 0; lag + n <= nsent_; lag++) {
        double xy = 0, es = 0;
        for (int i = 0; i < n; i++) {
            xy += (double)rec[i] * sent[lag + i];
            es += (double)sent[lag + i] * sent[lag + i];
        }
        if (er > 0 && es > 0) {
            double c = xy / sqrt(er * es);
            if (c > best) best = c;
        }
    }
    return best;
}

static void stereo_recording_channels_match_each_party(void **st)
{
    parties(2);
    nsent = 0;
    assert_int_equal(media_bridge(P[0].id, P[1].id), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/call.wav", h_dir);
    assert_int_equal(media_record_start(P[0].id, path, true, 0, 0, 31), 0);
    h_drive(150, talk_noise, NULL);
    assert_int_equal(media_record_stop(P[0].id), 0);
    assert_true(h_wait_event(P[0].id, MEDIA_EV_RECORD_DONE, 1, 1000));
    const struct media_event *ev = h_find(P[0].id, MEDIA_EV_RECORD_DONE);
    assert_int_equal(ev->tag, 31);
    assert_int_equal(ev->reason, 0);
    assert_true(ev->ms >= 2700 && ev->ms <= 3300);
    int16_t *pcm;
    size_t frames;
    int rate, ch;
    char err[256];
    assert_int_equal(sound_decode(path, &pcm, &frames, &rate, &ch, NULL, 0, err, sizeof err), 0);
    assert_int_equal(rate, 8000);
    assert_int_equal(ch, 2);
    assert_true(frames >= 20000);
    /* a 0.25 s window from the middle of each channel, found in what each party sent */
    int n = 2000;
    int16_t left[2000], right[2000];
    for (int i = 0; i < n; i++) {
        left[i] = pcm[2 * (12000 + i)];
        right[i] = pcm[2 * (12000 + i) + 1];
    }
    double cl = best_ncc(left, n, sent_a, nsent);
    double cr = best_ncc(right, n, sent_b, nsent);
    double cx = best_ncc(left, n, sent_b, nsent);
    print_message("recording: left~caller %.3f, right~other %.3f, left~other %.3f\n", cl, cr, cx);
    assert_true(cl >= 0.9);
    assert_true(cr >= 0.9);
    assert_true(cx < 0.5); /* chance alignment of unrelated noise stays well below */
    free(pcm);
    parties_close();
}

static void recording_pause_max_length_and_silence_stop(void **st)
{
    parties(1);
    char path[512];
    /* pause: 1 s recorded, 1 s paused, 1 s recorded */
    snprintf(path, sizeof path, "%s/paused.wav", h_dir);
    assert_int_equal(media_record_start(P[0].id, path, false, 0, 0, 1), 0);
    h_drive(50, talk, NULL);
    assert_int_equal(media_record_pause(P[0].id, true), 0);
    h_drive(50, talk, NULL);
    assert_int_equal(media_record_pause(P[0].id, false), 0);
    h_drive(50, talk, NULL);
    assert_int_equal(media_record_stop(P[0].id), 0);
    assert_true(h_wait_event(P[0].id, MEDIA_EV_RECORD_DONE, 1, 1000));
    const struct media_event *ev = h_find(P[0].id, MEDIA_EV_RECORD_DONE);
    assert_true(ev->ms >= 1800 && ev->ms <= 2200);
    /* max length 1 s */
    snprintf(path, sizeof path, "%s/max.wav", h_dir);
    assert_int_equal(media_record_start(P[0].id, path, false, 1, 0, 2), 0);
    assert_true(h_wait_event(P[0].id, MEDIA_EV_RECORD_DONE, 2, 2000));
    ev = &h_ev[h_nev - 1];
    assert_int_equal(ev->tag, 2);
    assert_int_equal(ev->reason, 1);
    assert_int_equal(ev->ms, 1000);
    /* silence stop: the caller goes quiet for 1 s */
    P[0].quiet = true;
    snprintf(path, sizeof path, "%s/quiet.wav", h_dir);
    assert_int_equal(media_record_start(P[0].id, path, false, 10, 1, 3), 0);
    for (int i = 0; i < 100 && h_count(P[0].id, MEDIA_EV_RECORD_DONE) < 3; i++)
        h_drive(1, talk, NULL);
    assert_int_equal(h_count(P[0].id, MEDIA_EV_SILENCE), 1);
    ev = &h_ev[h_nev - 1];
    assert_int_equal(ev->type, MEDIA_EV_RECORD_DONE);
    assert_int_equal(ev->reason, 2);
    assert_true(ev->ms >= 900 && ev->ms <= 1300);
    parties_close();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(bridge_carries_audio_both_ways_across_workers, h_reset),
        cmocka_unit_test_setup(conference_three_parties_hear_the_other_two, h_reset),
        cmocka_unit_test_setup(conference_join_and_leave_cues, h_reset),
        cmocka_unit_test_setup(conference_of_sixteen, h_reset),
        cmocka_unit_test_setup(supervisor_listen_whisper_barge, h_reset),
        cmocka_unit_test_setup(stereo_recording_channels_match_each_party, h_reset),
        cmocka_unit_test_setup(recording_pause_max_length_and_silence_stop, h_reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
