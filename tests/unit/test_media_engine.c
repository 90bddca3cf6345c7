/*
 * test_media_engine.c - the media engine through real UDP sockets on
 * 127.0.0.1, with test RTP peers: prompt playback arrives at its frequency,
 * tones and music on hold, DTMF both ways (in-band at -6..-30 dBm0 with and
 * without noise, RFC 4733 with lost and repeated end packets), and bad input
 * (foreign source after latching, malformed RTP, bad files) refused without
 * harm; a stray stream that starts first does not win over the SDP peer, and
 * a peer behind NAT is still latched when the SDP address stays silent. Every wait has a bound;
 * audio checks use frequency/energy windows.
 */
#include "media_harness.h"

#include <spandsp.h>

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

static int16_t silence[MEDIA_FRAME];

static void send_silence(int f, void *arg)
{
    peer_send_pcm(arg, silence);
}

static void prompt_plays_at_its_frequency(void **st)
{
    struct peer p;
    peer_open(&p, MEDIA_PCMU);
    media_id id = h_session(&p, 0, MEDIA_DTMF_AUTO);
    char wav[512];
    /* a 44.1 kHz stereo file: converted to 8 kHz mono on first use */
    snprintf(wav, sizeof wav, "%s/tone.wav", h_dir);
    h_write_tone_wav(wav, 44100, 2, 1000, 1.0, 12000);
    const char *files[] = {wav};
    assert_int_equal(media_play(id, files, 1, false, 77), 0);
    h_drive(70, send_silence, &p);
    const struct media_event *ev = h_find(id, MEDIA_EV_PLAY_DONE);
    assert_non_null(ev);
    assert_int_equal(ev->tag, 77);
    assert_int_equal(ev->reason, 0);
    /* the peer got about a second of 1 kHz, then silence */
    assert_true(p.ncap >= 8000);
    int start = 0;
    while (start < p.ncap && abs(p.cap[start]) < 1000)
        start++;
    assert_true(start + 6000 < p.ncap);
    assert_true(peer_tone(&p, start + 400, 6400, 1000) > 0.9);
    assert_true(peer_tone(&p, start + 400, 6400, 900) < 0.05);
    assert_true(peer_power(&p, start + 8400, 1000) < -60);
    assert_int_equal(media_session_close(id), 0);
    assert_true(h_wait_event(id, MEDIA_EV_CLOSED, 1, 1000));
    ev = h_find(id, MEDIA_EV_CLOSED);
    assert_true(ev->stats.tx_packets >= 60);
    assert_true(ev->stats.rx_packets >= 60);
    assert_int_equal(ev->stats.rx_lost, 0);
    peer_close(&p);
}

static const struct media_event *find_tag(media_id id, enum media_event_type type, uint32_t tag)
{
    for (int i = 0; i < h_nev; i++)
        if (h_ev[i].id == id && h_ev[i].type == type && h_ev[i].tag == tag) return &h_ev[i];
    return NULL;
}

static void long_file_is_converted_off_the_tick(void **st)
{
    struct peer p;
    peer_open(&p, MEDIA_PCMU);
    media_id id = h_session(&p, 0, MEDIA_DTMF_AUTO);
    char big[512], bad[512];
    snprintf(big, sizeof big, "%s/long.wav", h_dir);
    h_write_tone_wav(big, 44100, 2, 1000, 4.0, 10000); /* 700 KB: left to the loader */
    const char *files[] = {big};
    const char *next[] = {"en/n_1"};
    /* replaced while it is still being converted: PLAY_DONE 1 for it, the next plays */
    assert_int_equal(media_play(id, files, 1, false, 10), 0);
    assert_int_equal(media_play(id, next, 1, false, 11), 0);
    /* the replaced one is reported when the loader hands it back: on a loaded
     * machine that can be after the short prompt has finished */
    for (int i = 0;
         i < 500 && !(find_tag(id, MEDIA_EV_PLAY_DONE, 11) && find_tag(id, MEDIA_EV_PLAY_DONE, 10));
         i++)
        h_drive(1, send_silence, &p);
    const struct media_event *a = find_tag(id, MEDIA_EV_PLAY_DONE, 10);
    const struct media_event *b = find_tag(id, MEDIA_EV_PLAY_DONE, 11);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->reason, 1);
    assert_int_equal(b->reason, 0);
    /* now converted and cached: it plays at its frequency */
    int from = p.ncap;
    assert_int_equal(media_play(id, files, 1, false, 12), 0);
    h_drive(60, send_silence, &p);
    assert_null(find_tag(id, MEDIA_EV_PLAY_DONE, 12)); /* 4 s long: still playing */
    assert_true(peer_tone(&p, from + 2400, 4000, 1000) > 0.9);
    /* a file with a bad header through the engine: refused with -1 */
    snprintf(bad, sizeof bad, "%s/bad.wav", h_dir);
    FILE *f = fopen(bad, "wb");
    fputs("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00garbage-garbage!", f);
    fclose(f);
    const char *bads[] = {bad};
    assert_int_equal(media_play(id, bads, 1, false, 13), 0);
    for (int i = 0; i < 50 && !find_tag(id, MEDIA_EV_PLAY_DONE, 13); i++)
        h_drive(1, NULL, NULL);
    assert_int_equal(find_tag(id, MEDIA_EV_PLAY_DONE, 12)->reason, 1);
    assert_int_equal(find_tag(id, MEDIA_EV_PLAY_DONE, 13)->reason, -1);
    media_session_close(id);
    assert_true(h_wait_event(id, MEDIA_EV_CLOSED, 1, 1000));
    peer_close(&p);
}

static void prompt_sequence_loop_and_stop(void **st)
{
    struct peer p;
    peer_open(&p, MEDIA_PCMA);
    media_id id = h_session(&p, 0, MEDIA_DTMF_AUTO);
    /* two generated prompts by name, looped */
    const char *files[] = {"en/n_1", "ru/n_2"};
    assert_int_equal(media_play(id, files, 2, true, 5), 0);
    h_drive(150, send_silence, &p); /* 3 s: longer than both prompts */
    assert_int_equal(h_count(id, MEDIA_EV_PLAY_DONE), 0);
    assert_true(peer_power(&p, 0, p.ncap) > -40);
    assert_int_equal(media_stop(id), 0);
    assert_true(h_wait_event(id, MEDIA_EV_PLAY_DONE, 1, 1000));
    assert_int_equal(h_find(id, MEDIA_EV_PLAY_DONE)->reason, 1);
    int n = p.ncap;
    h_drive(25, send_silence, &p);
    assert_true(peer_power(&p, n + 800, p.ncap - n - 800) < -60); /* silence after stop */
    /* a missing file: PLAY_DONE with -1, nothing else happens */
    const char *missing[] = {"en/no_such_prompt"};
    assert_int_equal(media_play(id, missing, 1, false, 6), 0);
    assert_true(h_wait_event(id, MEDIA_EV_PLAY_DONE, 2, 1000));
    assert_int_equal(h_ev[h_nev - 1].reason, -1);
    assert_int_equal(h_ev[h_nev - 1].tag, 6);
    /* names that escape the sounds folder are refused at once */
    const char *escape[] = {"../../etc/passwd"};
    assert_int_equal(media_play(id, escape, 1, false, 7), CW_EINVAL);
    media_session_close(id);
    assert_true(h_wait_event(id, MEDIA_EV_CLOSED, 1, 1000));
    peer_close(&p);
}

static void tones_follow_the_locale_and_moh_is_shared(void **st)
{
    struct peer p1, p2;
    peer_open(&p1, MEDIA_PCMU);
    peer_open(&p2, MEDIA_PCMU);
    media_id a = h_session(&p1, 0, MEDIA_DTMF_AUTO);
    media_id b = h_session(&p2, 0, MEDIA_DTMF_AUTO);
    assert_int_not_equal(media_worker_of(a), media_worker_of(b)); /* two workers */
    assert_int_equal(media_play_tone(a, MEDIA_TONE_DIAL, 1), 0);
    h_drive(30, NULL, NULL);
    assert_true(peer_tone(&p1, 1600, 2400, 425) > 0.9); /* ru dial tone: 425 Hz */
    /* music on hold: both sessions on different workers join the same stream */
    const char *moh[] = {"moh/default"};
    assert_int_equal(media_moh_define("test", moh, 1), 0);
    assert_int_equal(media_moh(a, "test", 2), 0);
    assert_int_equal(media_moh(b, "test", 3), 0);
    int a0 = p1.ncap, b0 = p2.ncap;
    h_drive(100, NULL, NULL);
    assert_true(peer_power(&p1, a0 + 1600, p1.ncap - a0 - 1600) > -40);
    assert_true(peer_power(&p2, b0 + 1600, p2.ncap - b0 - 1600) > -40);
    assert_int_equal(moh_decode_count("test"), 1); /* one decode for all listeners */
    /* the tone that was playing was stopped by the music */
    const struct media_event *ev = h_find(a, MEDIA_EV_PLAY_DONE);
    assert_non_null(ev);
    assert_int_equal(ev->tag, 1);
    assert_int_equal(ev->reason, 1);
    /* an unknown stream */
    assert_int_equal(media_moh(a, "nothing-here", 4), 0);
    assert_true(h_wait_event(a, MEDIA_EV_PLAY_DONE, 3, 1000));
    assert_int_equal(h_ev[h_nev - 1].reason, -1);
    media_session_close(a);
    media_session_close(b);
    assert_true(h_wait_event(b, MEDIA_EV_CLOSED, 1, 1000));
    peer_close(&p1);
    peer_close(&p2);
}

/* ---- DTMF ---- */

struct dtmf_src {
    struct peer *p[10];
    dtmf_tx_state_t *tx[10];
    awgn_state_t *noise[10];
    int n;
};

static void send_dtmf_audio(int f, void *arg)
{
    struct dtmf_src *d = arg;
    for (int i = 0; i < d->n; i++) {
        int16_t buf[MEDIA_FRAME];
        int k = dtmf_tx(d->tx[i], buf, MEDIA_FRAME);
        if (k < MEDIA_FRAME) memset(buf + k, 0, (size_t)(MEDIA_FRAME - k) * sizeof *buf);
        if (d->noise[i])
            for (int s = 0; s < MEDIA_FRAME; s++)
                buf[s] = dsp_clip16((int32_t)buf[s] + awgn(d->noise[i]));
        peer_send_pcm(d->p[i], buf);
    }
}

static void inband_dtmf_levels_with_and_without_noise(void **st)
{
    static const char digits[] = "1234567890*#ABCD";
    int levels[] = {-6, -12, -18, -24, -30};
    struct peer peers[10];
    media_id ids[10];
    struct dtmf_src d = {.n = 10};
    for (int i = 0; i < 10; i++) {
        peer_open(&peers[i], MEDIA_PCMU);
        ids[i] = h_session(&peers[i], 0, MEDIA_DTMF_INBAND);
        d.p[i] = &peers[i];
        d.tx[i] = dtmf_tx_init(NULL);
        dtmf_tx_set_level(d.tx[i], levels[i % 5], 0);
        dtmf_tx_set_timing(d.tx[i], 60, 60);
        dtmf_tx_put(d.tx[i], digits, -1);
        /* half of them with white noise 20 dB under the tones */
        d.noise[i] = i >= 5 ? awgn_init_dbm0(NULL, 1234 + i, (float)(levels[i % 5] - 20)) : NULL;
    }
    h_drive(120, send_dtmf_audio, &d);
    h_drive(10, NULL, NULL);
    for (int i = 0; i < 10; i++) {
        char got[64];
        h_digits(ids[i], got, sizeof got);
        if (strcmp(got, digits))
            print_error("level %d dBm0%s: got '%s'\n", levels[i % 5], i >= 5 ? " + noise" : "",
                        got);
        assert_string_equal(got, digits);
        for (int k = 0; k < h_nev; k++)
            if (h_ev[k].id == ids[i] && h_ev[k].type == MEDIA_EV_DTMF)
                assert_true(h_ev[k].duration_ms >= 40 && h_ev[k].duration_ms <= 100);
        media_session_close(ids[i]);
        dtmf_tx_free(d.tx[i]);
        if (d.noise[i]) awgn_free(d.noise[i]);
    }
    assert_true(h_wait_event(ids[9], MEDIA_EV_CLOSED, 1, 1000));
    for (int i = 0; i < 10; i++)
        peer_close(&peers[i]);
}

struct gap_src {
    struct peer *p;
    dtmf_tx_state_t *tx;
};

static void send_dtmf_with_gap(int f, void *arg)
{
    struct gap_src *g = arg;
    int16_t buf[MEDIA_FRAME];
    int k = dtmf_tx(g->tx, buf, MEDIA_FRAME);
    if (k < MEDIA_FRAME) memset(buf + k, 0, (size_t)(MEDIA_FRAME - k) * sizeof *buf);
    if (f == 6) { /* a packet lost in the middle of the first key press */
        g->p->seq++;
        g->p->ts += MEDIA_FRAME;
        return;
    }
    if (f == 15 || f == 16) /* 30 ms of dropout in the middle of the second */
        memset(buf + (f == 15 ? 80 : 0), 0, (f == 15 ? 80 : 160) * sizeof *buf);
    peer_send_pcm(g->p, buf);
}

static void inband_digit_survives_loss_and_dropout(void **st)
{
    struct peer p;
    peer_open(&p, MEDIA_PCMA);
    media_id id = h_session(&p, 0, MEDIA_DTMF_AUTO);
    struct gap_src g = {.p = &p, .tx = dtmf_tx_init(NULL)};
    dtmf_tx_set_timing(g.tx, 200, 60);
    dtmf_tx_put(g.tx, "55", -1);
    h_drive(40, send_dtmf_with_gap, &g);
    char got[16];
    h_digits(id, got, sizeof got);
    assert_string_equal(got, "55"); /* two presses, not four */
    dtmf_tx_free(g.tx);
    media_session_close(id);
    assert_true(h_wait_event(id, MEDIA_EV_CLOSED, 1, 1000));
    peer_close(&p);
}

struct rfc_script {
    struct peer *p;
    uint32_t ts;
};

/* digit 1: clean (3 ends); 2: end packets lost; 3: ends duplicated 6 times and
 * its first packets lost; 4: all packets doubled. Audio flows in between. */
static void send_rfc(int f, void *arg)
{
    struct rfc_script *s = arg;
    struct peer *p = s->p;
    int slot = f / 15, ph = f % 15; /* 300 ms per digit */
    uint32_t ets = 50000 + (uint32_t)slot * 2400;
    if (slot >= 4 || ph >= 8) {
        peer_send_pcm(p, silence);
        return;
    }
    int dur = (ph + 1) * 160;
    switch (slot) {
    case 0:
        if (ph < 5) peer_send_event(p, ets, 1, false, dur, ph == 0);
        if (ph >= 5) peer_send_event(p, ets, 1, true, 800, false);
        break;
    case 1:
        if (ph < 5) peer_send_event(p, ets, 2, false, dur, ph == 0);
        break; /* ends lost */
    case 2:
        if (ph >= 3 && ph < 5) peer_send_event(p, ets, 3, false, dur, false);
        if (ph >= 5) {
            peer_send_event(p, ets, 3, true, 800, false);
            peer_send_event(p, ets, 3, true, 800, false);
        }
        break;
    case 3:
        if (ph < 5) {
            peer_send_event(p, ets, 11, false, dur, ph == 0);
            peer_send_event(p, ets, 11, false, dur, false);
        } else {
            peer_send_event(p, ets, 11, true, 800, false);
            peer_send_event(p, ets, 11, true, 800, false);
        }
        break;
    }
}

static void rfc4733_digits_with_lost_and_repeated_ends(void **st)
{
    struct peer p;
    peer_open(&p, MEDIA_PCMU);
    media_id id = h_session(&p, 101, MEDIA_DTMF_AUTO);
    struct rfc_script s = {.p = &p};
    h_drive(70, send_rfc, &s);
    h_drive(15, NULL, NULL);
    char got[16];
    h_digits(id, got, sizeof got);
    assert_string_equal(got, "123#");
    const struct media_event *e = h_find(id, MEDIA_EV_DTMF);
    assert_int_equal(e->duration_ms, 100);
    media_session_close(id);
    assert_true(h_wait_event(id, MEDIA_EV_CLOSED, 1, 1000));
    peer_close(&p);
}

static void engine_sends_dtmf_both_ways(void **st)
{
    /* RFC 4733 to a peer that negotiated it */
    struct peer p;
    peer_open(&p, MEDIA_PCMU);
    media_id id = h_session(&p, 101, MEDIA_DTMF_AUTO);
    assert_int_equal(media_send_dtmf(id, '7', 120), 0);
    assert_int_equal(media_send_dtmf(id, 'x', 120), CW_EINVAL);
    h_drive(25, NULL, NULL);
    assert_int_equal(p.events_rx, 8); /* 5 updates, then the end packet 3 times */
    assert_int_equal(p.last_event[0], 7);
    assert_true(p.last_event[1] & 0x80);
    assert_int_equal((p.last_event[2] << 8) | p.last_event[3], 960);
    /* in-band to a peer without telephone-event: a spandsp receiver hears the digits */
    struct peer q;
    peer_open(&q, MEDIA_PCMU);
    media_id id2 = h_session(&q, 0, MEDIA_DTMF_AUTO);
    media_send_dtmf(id2, '4', 100);
    media_send_dtmf(id2, '2', 100);
    media_send_dtmf(id2, '#', 100);
    h_drive(40, NULL, NULL);
    dtmf_rx_state_t *rx = dtmf_rx_init(NULL, NULL, NULL);
    dtmf_rx(rx, q.cap, q.ncap);
    char got[16] = {0};
    dtmf_rx_get(rx, got, 15);
    dtmf_rx_free(rx);
    assert_string_equal(got, "42#");
    media_session_close(id);
    media_session_close(id2);
    assert_true(h_wait_event(id2, MEDIA_EV_CLOSED, 1, 1000));
    peer_close(&p);
    peer_close(&q);
}

/* ---- G.722 ---- */

/* A G.722 phone (900 Hz) bridged to a G.711 phone (1300 Hz): each hears the other, the
 * wide one in G.722 that it decodes itself. */
static void g722_peer_bridged_to_g711_peer(void **st)
{
    struct peer wide, narrow;
    peer_open(&wide, MEDIA_G722);
    peer_open(&narrow, MEDIA_PCMU);
    media_id w = h_session(&wide, 0, MEDIA_DTMF_AUTO);
    media_id n = h_session(&narrow, 0, MEDIA_DTMF_AUTO);
    assert_int_equal(media_bridge(w, n), 0);
    g722_encode_state_t *enc = g722_encode_init(NULL, 64000, G722_SAMPLE_RATE_8000);
    int64_t ph = 0, ph_narrow = 0;
    for (int f = 0; f < 50; f++) {
        int16_t pcm[MEDIA_FRAME];
        uint8_t pkt[12 + MEDIA_FRAME];
        h_sine(pcm, MEDIA_FRAME, 900, 8000, &ph);
        rtp_write_header(pkt, MEDIA_G722, false, wide.seq++, wide.ts, wide.ssrc);
        int len = g722_encode(enc, pkt + 12, pcm, MEDIA_FRAME);
        wide.ts += MEDIA_FRAME; /* G.722 RTP clock runs at 8 kHz */
        peer_send_raw(&wide, pkt, (size_t)(12 + len));
        h_sine(pcm, MEDIA_FRAME, 1300, 8000, &ph_narrow);
        peer_send_pcm(&narrow, pcm);
        h_drive(1, NULL, NULL);
    }
    g722_encode_free(enc);
    /* G.711 side: the G.722 phone's 900 Hz, and nothing of its own 1300 Hz */
    assert_true(narrow.ncap > 3200);
    assert_true(peer_tone(&narrow, narrow.ncap - 3200, 3200, 900) > 0.8);
    assert_true(peer_tone(&narrow, narrow.ncap - 3200, 3200, 1300) < 0.05);
    /* G.722 side: real G.722 packets (160 bytes a 20 ms frame) carrying the 1300 Hz */
    assert_true(wide.rx_packets >= 40);
    assert_true(wide.ncap > 3200);
    double got = peer_tone(&wide, wide.ncap - 3200, 3200, 1300);
    if (got < 0.8) fail_msg("the G.722 phone does not hear the G.711 one (%.2f at 1300 Hz)", got);
    assert_true(peer_tone(&wide, wide.ncap - 3200, 3200, 900) < 0.05);
    assert_true(peer_power(&wide, wide.ncap - 3200, 3200) > -20);
    media_session_close(w);
    media_session_close(n);
    assert_true(h_wait_event(n, MEDIA_EV_CLOSED, 1, 1000));
    peer_close(&wide);
    peer_close(&narrow);
}

/* ---- bad input ---- */

struct bad_script {
    struct peer *good, *evil;
};

static void send_with_intruder(int f, void *arg)
{
    struct bad_script *b = arg;
    int16_t tone[MEDIA_FRAME], loud[MEDIA_FRAME];
    static int64_t ph1, ph2;
    h_sine(tone, MEDIA_FRAME, 600, 8000, &ph1);
    h_sine(loud, MEDIA_FRAME, 1500, 20000, &ph2);
    peer_send_pcm(b->good, tone);
    if (f > 5) {
        peer_send_pcm(b->evil, loud); /* a different source, same target port */
        uint8_t junk[40];
        memset(junk, 0xA5, sizeof junk);
        peer_send_raw(b->good, junk, (size_t)(f % 40)); /* malformed from the right source */
        uint8_t tricky[20] = {0x8F, 0, 0, 1};           /* claims 15 CSRCs */
        peer_send_raw(b->good, tricky, sizeof tricky);
    }
}

static void foreign_and_malformed_rtp_is_refused(void **st)
{
    struct peer good, evil, other;
    peer_open(&good, MEDIA_PCMU);
    peer_open(&evil, MEDIA_PCMU);
    peer_open(&other, MEDIA_PCMU);
    media_id id = h_session(&good, 0, MEDIA_DTMF_AUTO);
    evil.to = good.to;
    /* a second session bridged to the first lets us hear what the engine accepted */
    media_id id2 = h_session(&other, 0, MEDIA_DTMF_AUTO);
    assert_int_equal(media_bridge(id, id2), 0);
    struct bad_script b = {&good, &evil};
    h_drive(60, send_with_intruder, &b);
    assert_true(other.ncap > 4000);
    int from = other.ncap - 3200;
    assert_true(peer_tone(&other, from, 3200, 600) > 0.8);
    assert_true(peer_tone(&other, from, 3200, 1500) < 0.01); /* the intruder never got in */
    media_session_close(id);
    media_session_close(id2);
    assert_true(h_wait_event(id, MEDIA_EV_CLOSED, 1, 1000));
    const struct media_event *ev = h_find(id, MEDIA_EV_CLOSED);
    assert_true(ev->stats.rx_packets >= 50);
    peer_close(&good);
    peer_close(&evil);
    peer_close(&other);
}

/*
 * Latching. Three senders aim at one session's port: the peer the SDP names
 * (sdp), a stray stream (stray: 1500 Hz) and, in the NAT case, the real peer
 * seen from another address (nat: 600 Hz). A second session bridged to the
 * first lets `ear` hear what the engine accepted.
 */
struct latch_script {
    struct peer *sdp, *stray, *nat, *ear;
    int sdp_from, stray_from, nat_from; /* first frame each one sends (-1 never) */
    int frame;                          /* counted across h_drive() calls */
    int64_t ph_sdp, ph_stray, ph_nat, ph_ear;
};

static void send_latch(int f, void *arg)
{
    struct latch_script *l = arg;
    int16_t pcm[MEDIA_FRAME];
    f = l->frame++;
    if (l->sdp_from >= 0 && f >= l->sdp_from) {
        h_sine(pcm, MEDIA_FRAME, 600, 8000, &l->ph_sdp);
        peer_send_pcm(l->sdp, pcm);
    }
    if (l->stray_from >= 0 && f >= l->stray_from) {
        h_sine(pcm, MEDIA_FRAME, 1500, 20000, &l->ph_stray);
        peer_send_pcm(l->stray, pcm);
    }
    if (l->nat && l->nat_from >= 0 && f >= l->nat_from) {
        h_sine(pcm, MEDIA_FRAME, 600, 8000, &l->ph_nat);
        peer_send_pcm(l->nat, pcm);
    }
    h_sine(pcm, MEDIA_FRAME, 1000, 8000, &l->ph_ear);
    peer_send_pcm(l->ear, pcm);
}

/* Share of 1500 Hz (the stray) in any 100 ms window of what ear heard from `from` on. */
static double worst_stray_share(struct peer *ear, int from)
{
    double worst = 0;
    for (int at = from; at + 800 <= ear->ncap; at += 800)
        if (peer_power(ear, at, 800) > -60) worst = fmax(worst, peer_tone(ear, at, 800, 1500));
    return worst;
}

/* The SDP peer's session bridged to an ear's; a stray and a NAT'd peer send to the
 * SDP peer's port from their own addresses. Each starts at the frame given (-1 never). */
struct latch_rig {
    struct peer sdp, stray, nat, ear;
    media_id id, id2;
    struct latch_script l;
};

static void latch_rig_open(struct latch_rig *r, int sdp_from, int stray_from, int nat_from)
{
    memset(r, 0, sizeof *r);
    peer_open(&r->sdp, MEDIA_PCMU);
    peer_open(&r->stray, MEDIA_PCMU);
    peer_open(&r->nat, MEDIA_PCMU);
    peer_open(&r->ear, MEDIA_PCMU);
    r->id = h_session(&r->sdp, 0, MEDIA_DTMF_AUTO);
    r->id2 = h_session(&r->ear, 0, MEDIA_DTMF_AUTO);
    r->nat.to = r->stray.to = r->sdp.to;
    assert_int_equal(media_bridge(r->id, r->id2), 0);
    r->l = (struct latch_script){.sdp = &r->sdp,
                                 .stray = &r->stray,
                                 .nat = &r->nat,
                                 .ear = &r->ear,
                                 .sdp_from = sdp_from,
                                 .stray_from = stray_from,
                                 .nat_from = nat_from};
}

static void latch_rig_close(struct latch_rig *r)
{
    media_session_close(r->id);
    media_session_close(r->id2);
    assert_true(h_wait_event(r->id, MEDIA_EV_CLOSED, 1, 1000));
    peer_close(&r->sdp);
    peer_close(&r->stray);
    peer_close(&r->nat);
    peer_close(&r->ear);
}

static void stray_stream_does_not_win_over_the_sdp_peer(void **st)
{
    struct latch_rig r;
    /* the stray starts first; the SDP peer 200 ms later, well within the grace */
    latch_rig_open(&r, 10, 0, -1);
    h_drive(75, send_latch, &r.l);
    assert_true(r.ear.ncap > 8000);
    assert_true(peer_tone(&r.ear, r.ear.ncap - 3200, 3200, 600) > 0.8);
    assert_true(worst_stray_share(&r.ear, 0) < 0.01); /* the stray was never heard */
    assert_int_equal(r.stray.rx_packets, 0);          /* nor sent anything */
    assert_true(r.sdp.rx_packets > 50);
    latch_rig_close(&r);
}

static void sdp_peer_takes_over_from_an_early_stray_for_good(void **st)
{
    struct latch_rig r;
    /* the stray sends alone for 1.2 s (longer than the grace: it may be a NAT'd peer),
     * then the SDP peer starts and keeps the session although the stray goes on */
    latch_rig_open(&r, 60, 0, -1);
    h_drive(70, send_latch, &r.l);
    int ear_at = r.ear.ncap, stray_rx = r.stray.rx_packets;
    h_drive(60, send_latch, &r.l);
    assert_true(r.ear.ncap - ear_at > 6000);
    assert_true(peer_tone(&r.ear, r.ear.ncap - 4800, 4800, 600) > 0.8);
    assert_true(worst_stray_share(&r.ear, ear_at) < 0.01); /* never back to the stray */
    assert_true(r.stray.rx_packets - stray_rx <= 2);       /* nor sending to it */
    latch_rig_close(&r);
}

static void nat_peer_is_latched_when_the_sdp_address_is_silent(void **st)
{
    struct latch_rig r;
    /* the SDP address never sends; the peer comes from another address (NAT); a stray
     * joins once the NAT'd peer is latched and must not take it over */
    latch_rig_open(&r, -1, 60, 0);
    h_drive(110, send_latch, &r.l);
    assert_true(r.ear.ncap > 12000);
    /* held back for the grace (the first 300 ms ear heard are silent), then latched */
    assert_true(peer_power(&r.ear, 0, 2400) < -50);
    assert_true(peer_tone(&r.ear, r.ear.ncap - 4800, 4800, 600) > 0.8);
    assert_true(worst_stray_share(&r.ear, 0) < 0.01);
    /* and the engine answers the NAT'd address: nat hears ear's 1 kHz */
    assert_true(r.nat.ncap > 4000);
    assert_true(peer_tone(&r.nat, r.nat.ncap - 3200, 3200, 1000) > 0.8);
    assert_int_equal(r.stray.rx_packets, 0);
    latch_rig_close(&r);
}

static void bad_commands_change_nothing(void **st)
{
    struct media_remote r = {.port = 5000, .pt = 0};
    snprintf(r.ip, sizeof r.ip, "127.0.0.1");
    assert_int_equal(media_session_set_remote(999999, &r), CW_ENOENT);
    assert_int_equal(media_play_tone(999999, MEDIA_TONE_BUSY, 0), CW_ENOENT);
    assert_int_equal(media_session_close(999999), CW_ENOENT);
    media_id id;
    int port;
    assert_int_equal(media_session_open(0, &id, &port), 0);
    assert_true(port % 2 == 0);
    snprintf(r.ip, sizeof r.ip, "not-an-ip");
    assert_int_equal(media_session_set_remote(id, &r), CW_EINVAL);
    snprintf(r.ip, sizeof r.ip, "127.0.0.1");
    r.pt = 18; /* G.729: not spoken */
    assert_int_equal(media_session_set_remote(id, &r), CW_EINVAL);
    r.pt = 0;
    r.port = 70000;
    assert_int_equal(media_session_set_remote(id, &r), CW_EINVAL);
    assert_int_equal(media_play_tone(id, (enum media_tone)42, 0), CW_EINVAL);
    assert_int_equal(media_bridge(id, id), CW_EINVAL);
    assert_int_equal(media_conf_leave(id), CW_ESTATE);
    assert_int_equal(media_spy(id, id, id, MEDIA_SPY_LISTEN), CW_EINVAL);
    assert_int_equal(media_fax_send(id, "/nonexistent.tiff", 0), CW_EINVAL);
    assert_int_equal(media_record_start(id, "", true, 0, 0, 0), CW_EINVAL);
    /* a recording into a folder that does not exist: RECORD_DONE with -1 */
    assert_int_equal(media_record_start(id, "/nonexistent/dir/x.wav", true, 0, 0, 9), 0);
    assert_true(h_wait_event(id, MEDIA_EV_RECORD_DONE, 1, 1000));
    assert_int_equal(h_find(id, MEDIA_EV_RECORD_DONE)->reason, -1);
    assert_int_equal(media_session_close(id), 0);
    assert_int_equal(media_session_close(id), CW_ENOENT);
    assert_true(h_wait_event(id, MEDIA_EV_CLOSED, 1, 1000));
}

static void rtp_timeout_is_reported(void **st)
{
    /* restart with a 1 s timeout */
    h_done();
    h_init(1);
    media_shutdown();
    struct media_config cfg = {
        .workers = 1, .rtp_min = 30000, .rtp_max = 30200, .rtp_timeout_s = 1};
    unsigned r;
    cw_random_bytes(&r, sizeof r);
    cfg.rtp_min = 40000 + (int)(r % 1000) * 20;
    cfg.rtp_max = cfg.rtp_min + 200;
    snprintf(cfg.ip, sizeof cfg.ip, "127.0.0.1");
    snprintf(cfg.var_dir, sizeof cfg.var_dir, "%s", h_dir);
    cfg.max_sessions = 1;
    assert_int_equal(media_init(&cfg, h_on_event, NULL), 0);
    struct peer p;
    peer_open(&p, MEDIA_PCMU);
    media_id id = h_session(&p, 0, MEDIA_DTMF_AUTO);
    media_id extra;
    int port;
    assert_int_equal(media_session_open(0, &extra, &port), CW_EBUSY); /* max_sessions = 1 */
    h_drive(25, send_silence, &p);
    assert_int_equal(h_count(id, MEDIA_EV_RTP_TIMEOUT), 0); /* packets flowing */
    assert_true(h_wait_event(id, MEDIA_EV_RTP_TIMEOUT, 1, 2500));
    assert_int_equal(h_count(id, MEDIA_EV_RTP_TIMEOUT), 1); /* once */
    media_session_close(id);
    assert_true(h_wait_event(id, MEDIA_EV_CLOSED, 1, 1000));
    peer_close(&p);
}

/* ---- RTCP and statistics ---- */

struct lossy {
    struct peer *p;
    int rtcp_fd;
    struct sockaddr_in rtcp_to;
};

static void send_lossy(int f, void *arg)
{
    struct lossy *l = arg;
    if (f % 10 == 9)
        l->p->seq++, l->p->ts += MEDIA_FRAME; /* every 10th packet lost on the way */
    else
        peer_send_pcm(l->p, silence);
    if (f == 5) { /* a receiver report: 25 % lost, jitter 80 samples (10 ms) */
        uint8_t rr[32] = {0x81, 201, 0, 7};
        uint32_t v[7] = {l->p->ssrc, l->p->rx_ssrc, (64u << 24) | 5, 1000, 80, 0, 0};
        for (int i = 0; i < 7; i++) {
            rr[4 + 4 * i] = (uint8_t)(v[i] >> 24);
            rr[5 + 4 * i] = (uint8_t)(v[i] >> 16);
            rr[6 + 4 * i] = (uint8_t)(v[i] >> 8);
            rr[7 + 4 * i] = (uint8_t)v[i];
        }
        sendto(l->rtcp_fd, rr, sizeof rr, 0, (struct sockaddr *)&l->rtcp_to, sizeof l->rtcp_to);
    }
}

static void rtcp_reports_loss_and_jitter(void **st)
{
    struct peer p;
    peer_open(&p, MEDIA_PCMU);
    media_id id = h_session(&p, 0, MEDIA_DTMF_AUTO);
    struct lossy l = {.p = &p};
    l.rtcp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(l.rtcp_fd, (struct sockaddr *)&a, sizeof a), 0);
    l.rtcp_to = p.to;
    l.rtcp_to.sin_port = htons((uint16_t)(ntohs(p.to.sin_port) + 1));
    h_drive(100, send_lossy, &l);
    /* the engine's sender report came to the RTCP source it latched onto */
    uint8_t b[512];
    ssize_t n = recv(l.rtcp_fd, b, sizeof b, MSG_DONTWAIT);
    assert_true(n >= 52);
    assert_int_equal(b[1], 200);      /* SR */
    assert_int_equal(b[0] & 0x1F, 1); /* with one report block */
    uint32_t about =
        ((uint32_t)b[28] << 24) | ((uint32_t)b[29] << 16) | ((uint32_t)b[30] << 8) | b[31];
    assert_int_equal(about, p.ssrc);
    int cum_lost = (b[33] << 16) | (b[34] << 8) | b[35];
    assert_true(cum_lost >= 2 && cum_lost <= 6); /* about 1 s in, every 10th lost */
    media_session_close(id);
    assert_true(h_wait_event(id, MEDIA_EV_CLOSED, 1, 1000));
    const struct media_event *ev = h_find(id, MEDIA_EV_CLOSED);
    assert_true(ev->stats.rx_lost >= 9 && ev->stats.rx_lost <= 10);
    assert_true(ev->stats.rx_packets >= 88);
    assert_true(fabs(ev->stats.remote_loss - 0.25) < 0.001);
    assert_true(fabs(ev->stats.remote_jitter_ms - 10.0) < 0.001);
    assert_true(ev->stats.jitter_ms >= 0 && ev->stats.jitter_ms < 10);
    close(l.rtcp_fd);
    peer_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(prompt_plays_at_its_frequency, h_reset),
        cmocka_unit_test_setup(prompt_sequence_loop_and_stop, h_reset),
        cmocka_unit_test_setup(long_file_is_converted_off_the_tick, h_reset),
        cmocka_unit_test_setup(tones_follow_the_locale_and_moh_is_shared, h_reset),
        cmocka_unit_test_setup(inband_dtmf_levels_with_and_without_noise, h_reset),
        cmocka_unit_test_setup(inband_digit_survives_loss_and_dropout, h_reset),
        cmocka_unit_test_setup(rfc4733_digits_with_lost_and_repeated_ends, h_reset),
        cmocka_unit_test_setup(g722_peer_bridged_to_g711_peer, h_reset),
        cmocka_unit_test_setup(engine_sends_dtmf_both_ways, h_reset),
        cmocka_unit_test_setup(foreign_and_malformed_rtp_is_refused, h_reset),
        cmocka_unit_test_setup(stray_stream_does_not_win_over_the_sdp_peer, h_reset),
        cmocka_unit_test_setup(sdp_peer_takes_over_from_an_early_stray_for_good, h_reset),
        cmocka_unit_test_setup(nat_peer_is_latched_when_the_sdp_address_is_silent, h_reset),
        cmocka_unit_test_setup(bad_commands_change_nothing, h_reset),
        cmocka_unit_test_setup(rtcp_reports_loss_and_jitter, h_reset),
        cmocka_unit_test_setup(rtp_timeout_is_reported, h_reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
