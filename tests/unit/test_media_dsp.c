/*
 * test_media_dsp.c - the media engine's building blocks without sockets:
 * G.711, the mixer's clipping, the resampler, the jitter buffer, the RFC 4733
 * receiver state machine, WAV/MP3 decoding and refusal of bad sound files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/cw.h"
#include "log/log.h"
#include "media/media.h"
#include "media/media_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static int setup(void **st)
{
    log_open(NULL);
    log_set_level("error");
    snprintf(dir, sizeof dir, "/tmp/cw-media-dsp-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    sound_set_dirs(dir, dir);
    return 0;
}

static int teardown(void **st)
{
    sound_cache_clear();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void g711_round_trip_is_close(void **st)
{
    for (int s = -32768; s <= 32767; s += 7) {
        int16_t u = g711_ulaw_decode(g711_ulaw_encode((int16_t)s));
        int16_t a = g711_alaw_decode(g711_alaw_encode((int16_t)s));
        int tol = abs(s) / 16 + 40; /* companding step: about 1/16 of the magnitude */
        assert_true(abs(u - s) <= tol);
        assert_true(abs(a - s) <= tol);
    }
    /* silence codes */
    assert_int_equal(g711_ulaw_encode(0), 0xFF);
    assert_int_equal(g711_alaw_encode(0), 0xD5);
    /* every code decodes to a value that encodes back to itself */
    for (int c = 0; c < 256; c++) {
        if (c != 0x7F) assert_int_equal(g711_ulaw_encode(g711_ulaw_decode((uint8_t)c)), c);
        assert_int_equal(g711_alaw_encode(g711_alaw_decode((uint8_t)c)), c);
    }
}

static void mixer_sums_within_one_lsb_with_clipping(void **st)
{
    int16_t a[MEDIA_FRAME], b[MEDIA_FRAME], c[MEDIA_FRAME], out[MEDIA_FRAME];
    for (int i = 0; i < MEDIA_FRAME; i++) {
        a[i] = (int16_t)(20000 * sin(i * 0.1));
        b[i] = (int16_t)(15000 * sin(i * 0.27 + 1));
        c[i] = (int16_t)((i * 977) % 20001 - 10000);
    }
    int32_t acc[MEDIA_FRAME] = {0};
    dsp_mix_add(acc, a, MEDIA_FRAME);
    dsp_mix_add(acc, b, MEDIA_FRAME);
    dsp_mix_add(acc, c, MEDIA_FRAME);
    dsp_mix_clip(out, acc, MEDIA_FRAME);
    int clipped = 0;
    for (int i = 0; i < MEDIA_FRAME; i++) {
        int32_t sum = (int32_t)a[i] + b[i] + c[i];
        int32_t want = sum > 32767 ? 32767 : sum < -32768 ? -32768 : sum;
        assert_true(abs(out[i] - want) <= 1);
        if (sum != want) clipped++;
    }
    assert_true(clipped > 0); /* the inputs were chosen so that some samples clip */
}

/* Frequency of the strongest Goertzel bin between lo and hi, in 0.5 Hz steps. */
static double peak_freq(const int16_t *x, int n, double lo, double hi)
{
    double best = 0, bf = 0;
    for (double f = lo; f <= hi; f += 0.5) {
        double r = dsp_goertzel_ratio(x, n, f, MEDIA_RATE);
        if (r > best) {
            best = r;
            bf = f;
        }
    }
    return bf;
}

static void resampler_keeps_1khz(void **st)
{
    int rates[] = {44100, 48000, 16000, 11025, 22050, 6000};
    for (size_t k = 0; k < CW_ARRAY_LEN(rates); k++) {
        int rate = rates[k];
        int n = rate * 2;
        int16_t *in = malloc((size_t)n * sizeof *in);
        for (int i = 0; i < n; i++)
            in[i] = (int16_t)(12000 * sin(2 * M_PI * 1000.0 * i / rate));
        size_t on;
        int16_t *o = dsp_resample(in, (size_t)n, rate, MEDIA_RATE, &on);
        assert_true(labs((long)on - 16000) <= 2);
        double f = peak_freq(o + 800, 8000, 980, 1020);
        assert_true(fabs(f - 1000.0) <= 5.0);
        assert_true(dsp_goertzel_ratio(o + 800, 8000, 1000, MEDIA_RATE) > 0.95);
        /* level kept within 1 dB */
        double db = dsp_power_dbov(o + 800, 8000);
        double want = dsp_power_dbov(in + rate / 10, rate);
        assert_true(fabs(db - want) < 1.0);
        free(in);
        free(o);
    }
    /* a 6 kHz tone at 48 kHz is above the new Nyquist frequency and must go */
    int n = 48000;
    int16_t *in = malloc((size_t)n * sizeof *in);
    for (int i = 0; i < n; i++)
        in[i] = (int16_t)(12000 * sin(2 * M_PI * 6000.0 * i / 48000));
    size_t on;
    int16_t *o = dsp_resample(in, (size_t)n, 48000, MEDIA_RATE, &on);
    assert_true(dsp_power_dbov(o + 400, (int)on - 800) < -50);
    free(in);
    free(o);
}

static void tone(int16_t *x, int n, int64_t start)
{
    for (int i = 0; i < n; i++)
        x[i] = (int16_t)(8000 * sin(2 * M_PI * 700.0 * (start + i) / 8000));
}

static void jitter_buffer_reorders_and_conceals(void **st)
{
    struct jbuf jb;
    jb_init(&jb, true);
    int16_t f[MEDIA_FRAME], out[MEDIA_FRAME];
    uint32_t ts0 = 123456;
    /* frames 0..9 arrive in the order 0 2 1 3 5 4 6 (7 lost) 8 9 */
    int order[] = {0, 2, 1, 3, 5, 4, 6, 8, 9};
    for (size_t k = 0; k < CW_ARRAY_LEN(order); k++) {
        tone(f, MEDIA_FRAME, order[k] * MEDIA_FRAME);
        assert_int_equal(jb_put(&jb, ts0 + (uint32_t)(order[k] * MEDIA_FRAME), f, MEDIA_FRAME),
                         JB_OK);
    }
    /* a duplicate is recognised */
    tone(f, MEDIA_FRAME, 3 * MEDIA_FRAME);
    assert_int_equal(jb_put(&jb, ts0 + 3 * MEDIA_FRAME, f, MEDIA_FRAME), JB_DUP);
    /* the first get comes after the 40 ms playout delay: two frames of lead-in */
    assert_int_equal(jb_get(&jb, out, MEDIA_FRAME), 0);
    assert_int_equal(jb_get(&jb, out, MEDIA_FRAME), 0);
    for (int k = 0; k < 10; k++) {
        int r = jb_get(&jb, out, MEDIA_FRAME);
        int16_t want[MEDIA_FRAME];
        tone(want, MEDIA_FRAME, k * MEDIA_FRAME);
        if (k == 7) {
            assert_int_equal(r, 0); /* lost: concealed from the history */
            double p = dsp_power_dbov(out, MEDIA_FRAME);
            assert_true(p > dsp_power_dbov(want, MEDIA_FRAME) - 6);
            assert_true(dsp_goertzel_ratio(out, MEDIA_FRAME, 700, 8000) > 0.5);
        } else if (k == 8) { /* the frame after a loss is blended with the concealment */
            assert_int_equal(r, 1);
            assert_memory_equal(out + 80, want + 80, sizeof want / 2);
        } else {
            assert_int_equal(r, 1);
            assert_memory_equal(out, want, sizeof want); /* in order, sample-exact */
        }
    }
    /* a packet older than what was played is late and dropped */
    tone(f, MEDIA_FRAME, 0);
    assert_int_equal(jb_put(&jb, ts0 + 2 * MEDIA_FRAME, f, MEDIA_FRAME), JB_LATE);
    assert_true(jb.late == 1);
    assert_true(jb.dup == 1);
    assert_true(jb.concealed >= 1);
    jb_free(&jb);
}

static void jitter_buffer_follows_a_timestamp_jump(void **st)
{
    struct jbuf jb;
    jb_init(&jb, true);
    int16_t f[MEDIA_FRAME], out[MEDIA_FRAME];
    tone(f, MEDIA_FRAME, 0);
    for (int k = 0; k < 5; k++)
        jb_put(&jb, 1000 + (uint32_t)k * MEDIA_FRAME, f, MEDIA_FRAME);
    for (int k = 0; k < 5; k++)
        jb_get(&jb, out, MEDIA_FRAME);
    /* the sender restarts its clock far away: the buffer resynchronises */
    assert_int_equal(jb_put(&jb, 900000000, f, MEDIA_FRAME), JB_RESYNC);
    jb_get(&jb, out, MEDIA_FRAME);
    jb_get(&jb, out, MEDIA_FRAME);
    assert_int_equal(jb_get(&jb, out, MEDIA_FRAME), 1);
    jb_free(&jb);
}

/*
 * G.711 packets are kept undecoded while they come in one law: what plays out
 * is sample for sample what the same packets decoded on arrival give, through
 * reordering, a loss, a duplicate and a switch to the other law mid-stream.
 */
static void jitter_buffer_keeps_g711_as_decoded(void **st)
{
    struct jbuf coded, linear;
    jb_init(&coded, true);
    jb_init(&linear, true);
    uint32_t ts0 = 777;
    /* frames 0..39 in the order 0 2 1 3 ... with 11 lost and 5 sent twice; A-law from 20 */
    int order[44], n = 0;
    for (int k = 0; k < 40; k++) {
        if (k == 11) continue;
        order[n++] = k % 2 == 1 && k < 20 ? k - 1 : k % 2 == 0 && k < 20 ? k + 1 : k;
        if (k == 5) order[n++] = 5;
    }
    int16_t out_c[MEDIA_FRAME], out_l[MEDIA_FRAME];
    int played = 0, ticks = 0;
    for (int k = 0; k < n; k++) {
        int f = order[k];
        int codec = f < 20 ? MEDIA_PCMU : MEDIA_PCMA;
        int16_t pcm[MEDIA_FRAME];
        uint8_t pay[MEDIA_FRAME];
        tone(pcm, MEDIA_FRAME, f * MEDIA_FRAME);
        g711_encode_frame(codec, pcm, pay, MEDIA_FRAME);
        g711_decode_frame(codec, pay, pcm, MEDIA_FRAME);
        uint32_t ts = ts0 + (uint32_t)(f * MEDIA_FRAME);
        assert_int_equal(jb_put_g711(&coded, ts, codec, pay, MEDIA_FRAME),
                         jb_put(&linear, ts, pcm, MEDIA_FRAME));
        if (k % 2 == 1) { /* a frame played every other packet, then the rest */
            int rc = jb_get(&coded, out_c, MEDIA_FRAME);
            assert_int_equal(rc, jb_get(&linear, out_l, MEDIA_FRAME));
            assert_memory_equal(out_c, out_l, sizeof out_c);
            played += rc == 1;
            ticks++;
        }
    }
    assert_int_equal(coded.form, JB_LINEAR); /* the other law came: decoded once */
    for (; ticks < 44; ticks++) {
        int rc = jb_get(&coded, out_c, MEDIA_FRAME);
        assert_int_equal(rc, jb_get(&linear, out_l, MEDIA_FRAME));
        assert_memory_equal(out_c, out_l, sizeof out_c);
        played += rc == 1;
    }
    assert_true(played > 30);
    assert_true(coded.dup == 1 && linear.dup == 1);
    jb_free(&coded);
    jb_free(&linear);
}

static void ev(uint8_t *p, int code, bool end, int dur)
{
    p[0] = (uint8_t)code;
    p[1] = (uint8_t)((end ? 0x80 : 0) | 10);
    p[2] = (uint8_t)(dur >> 8);
    p[3] = (uint8_t)dur;
}

static void rfc4733_lost_and_duplicated_end_packets(void **st)
{
    struct dtmf4733_rx r = {0};
    struct dtmf_digit d[2];
    uint8_t p[4];
    char got[16] = {0};
    int ng = 0;
    int64_t now = 1000;
    /* '1': normal, end packet sent three times */
    for (int k = 1; k <= 4; k++) {
        ev(p, 1, false, k * 160);
        assert_int_equal(dtmf4733_rx_packet(&r, 8000, p, 4, now += 20, d), 0);
    }
    ev(p, 1, true, 800);
    int n = dtmf4733_rx_packet(&r, 8000, p, 4, now += 20, d);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].ms, 100);
    got[ng++] = d[0].digit;
    assert_int_equal(dtmf4733_rx_packet(&r, 8000, p, 4, now += 20, d), 0);
    assert_int_equal(dtmf4733_rx_packet(&r, 8000, p, 4, now += 20, d), 0);
    /* '2': every end packet lost, the next event '3' starts: '2' is closed */
    for (int k = 1; k <= 3; k++) {
        ev(p, 2, false, k * 160);
        assert_int_equal(dtmf4733_rx_packet(&r, 16000, p, 4, now += 20, d), 0);
    }
    ev(p, 3, false, 160);
    n = dtmf4733_rx_packet(&r, 24000, p, 4, now += 20, d);
    assert_int_equal(n, 1);
    got[ng++] = d[0].digit;
    /* '3': the start packets were lost; only ends arrive, twice */
    ev(p, 3, true, 640);
    n = dtmf4733_rx_packet(&r, 24000, p, 4, now += 20, d);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].ms, 80);
    got[ng++] = d[0].digit;
    assert_int_equal(dtmf4733_rx_packet(&r, 24000, p, 4, now += 20, d), 0);
    /* '#': its end packets lost and nothing follows: closed by the timeout */
    ev(p, 11, false, 160);
    assert_int_equal(dtmf4733_rx_packet(&r, 32000, p, 4, now += 20, d), 0);
    assert_int_equal(dtmf4733_rx_poll(&r, now + 100, d), 0);
    assert_int_equal(dtmf4733_rx_poll(&r, now + 200, d), 1);
    got[ng++] = d[0].digit;
    /* a short payload is ignored */
    assert_int_equal(dtmf4733_rx_packet(&r, 40000, p, 3, now, d), 0);
    assert_string_equal(got, "123#");
}

static void rtp_parser_refuses_malformed(void **st)
{
    struct rtp_hdr h;
    uint8_t b[64] = {0};
    assert_int_equal(rtp_parse(b, 11, &h), CW_EINVAL);
    b[0] = 0x40; /* version 1 */
    assert_int_equal(rtp_parse(b, 20, &h), CW_EINVAL);
    b[0] = 0x8F; /* 15 CSRCs in a 20-byte packet */
    assert_int_equal(rtp_parse(b, 20, &h), CW_EINVAL);
    b[0] = 0x90; /* extension header longer than the packet */
    b[14] = 0x7F;
    assert_int_equal(rtp_parse(b, 20, &h), CW_EINVAL);
    b[0] = 0xA0; /* padding count larger than the packet */
    b[19] = 200;
    assert_int_equal(rtp_parse(b, 20, &h), CW_EINVAL);
    memset(b, 0, sizeof b);
    rtp_write_header(b, 0, true, 7, 1234, 99);
    assert_int_equal(rtp_parse(b, 12 + 160, &h), 0);
    assert_int_equal(h.len, 160);
    assert_int_equal(h.seq, 7);
    assert_true(h.marker);
}

static void write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(b, 1, n, f);
    fclose(f);
}

static void bad_sound_files_are_refused(void **st)
{
    char path[512], fmt[96], err[256];
    int64_t ms;
    snprintf(path, sizeof path, "%s/bad1.wav", dir);
    write_bytes(path, "RIFF\x10\0\0\0WAVEjunk", 16);
    assert_int_equal(media_sound_check(path, fmt, sizeof fmt, &ms, err, sizeof err), CW_EINVAL);
    assert_non_null(strstr(err, "fmt"));
    /* fmt chunk claims 0 channels */
    uint8_t w[64] =
        "RIFF\x38\0\0\0WAVEfmt "
        "\x10\0\0\0\x01\0\0\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data\x04\0\0\0\0\0\0\0";
    snprintf(path, sizeof path, "%s/bad2.wav", dir);
    write_bytes(path, w, 52);
    assert_int_equal(media_sound_check(path, fmt, sizeof fmt, &ms, err, sizeof err), CW_EINVAL);
    /* an unsupported encoding (ADPCM, tag 2) */
    w[20] = 2;
    w[22] = 1;
    snprintf(path, sizeof path, "%s/bad3.wav", dir);
    write_bytes(path, w, 52);
    assert_int_equal(media_sound_check(path, fmt, sizeof fmt, &ms, err, sizeof err), CW_EINVAL);
    assert_non_null(strstr(err, "not supported"));
    /* a chunk length running past the end of the file */
    uint8_t t[] = "RIFF\xff\xff\xff\xffWAVEfmt \xff\xff\xff\x7f";
    snprintf(path, sizeof path, "%s/bad4.wav", dir);
    write_bytes(path, t, sizeof t - 1);
    assert_int_equal(media_sound_check(path, fmt, sizeof fmt, &ms, err, sizeof err), CW_EINVAL);
    /* not a sound at all */
    snprintf(path, sizeof path, "%s/text.wav", dir);
    write_bytes(path, "hello, world\n", 13);
    assert_int_equal(media_sound_check(path, fmt, sizeof fmt, &ms, err, sizeof err), CW_EINVAL);
    assert_non_null(strstr(err, "unsupported"));
    /* missing */
    snprintf(path, sizeof path, "%s/none.wav", dir);
    assert_int_equal(media_sound_check(path, fmt, sizeof fmt, &ms, err, sizeof err), CW_ENOENT);
    assert_null(sound_load(path, err, sizeof err));
}

static void write_tone_wav(const char *path, int rate, int ch, double f, double secs)
{
    int n = (int)(rate * secs);
    struct wav_writer w;
    /* the writer stamps 8 kHz; write the header by hand for other rates */
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint32_t data = (uint32_t)(n * ch * 2), v;
    uint16_t s;
    fwrite("RIFF", 1, 4, fp);
    v = 36 + data;
    fwrite(&v, 4, 1, fp);
    fwrite("WAVEfmt ", 1, 8, fp);
    v = 16;
    fwrite(&v, 4, 1, fp);
    s = 1;
    fwrite(&s, 2, 1, fp);
    s = (uint16_t)ch;
    fwrite(&s, 2, 1, fp);
    v = (uint32_t)rate;
    fwrite(&v, 4, 1, fp);
    v = (uint32_t)(rate * ch * 2);
    fwrite(&v, 4, 1, fp);
    s = (uint16_t)(ch * 2);
    fwrite(&s, 2, 1, fp);
    s = 16;
    fwrite(&s, 2, 1, fp);
    fwrite("data", 1, 4, fp);
    fwrite(&data, 4, 1, fp);
    for (int i = 0; i < n; i++) {
        int16_t x = (int16_t)(10000 * sin(2 * M_PI * f * i / rate));
        for (int c = 0; c < ch; c++)
            fwrite(&x, 2, 1, fp);
    }
    fclose(fp);
    (void)w;
}

static void wav_any_rate_converted_once_and_cached(void **st)
{
    char path[512], fmt[96], err[256];
    int64_t ms;
    snprintf(path, sizeof path, "%s/tone44.wav", dir);
    write_tone_wav(path, 44100, 2, 1000, 1.5);
    assert_int_equal(media_sound_check(path, fmt, sizeof fmt, &ms, err, sizeof err), 0);
    assert_string_equal(fmt, "wav pcm16 44100 Hz 2 ch");
    assert_true(ms == 1500);
    /* the converted copy is in var_dir/cache/sounds */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(ls '%s/cache/sounds' | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);
    struct sound *s = sound_load(path, err, sizeof err);
    assert_non_null(s);
    assert_true(labs((long)s->n - 12000) <= 2);
    assert_true(fabs(peak_freq(s->pcm + 2000, 8000, 990, 1010) - 1000) <= 5);
    /* a second load is the same shared object */
    struct sound *s2 = sound_load(path, err, sizeof err);
    assert_ptr_equal(s, s2);
    sound_unref(s2);
    sound_unref(s);
}

static void mp3_export_and_decode(void **st)
{
    char wav[512], mp3[512], fmt[96], err[256];
    int64_t ms;
    snprintf(wav, sizeof wav, "%s/rec.wav", dir);
    snprintf(mp3, sizeof mp3, "%s/rec.mp3", dir);
    struct wav_writer w;
    assert_int_equal(wav_writer_open(&w, wav, 2, 8000), 0);
    for (int k = 0; k < 100; k++) { /* 2 s: 600 Hz left, 1400 Hz right */
        int16_t fr[2 * MEDIA_FRAME];
        for (int i = 0; i < MEDIA_FRAME; i++) {
            int n = k * MEDIA_FRAME + i;
            fr[2 * i] = (int16_t)(9000 * sin(2 * M_PI * 600.0 * n / 8000));
            fr[2 * i + 1] = (int16_t)(9000 * sin(2 * M_PI * 1400.0 * n / 8000));
        }
        assert_int_equal(wav_writer_write(&w, fr, MEDIA_FRAME), 0);
    }
    assert_int_equal(wav_writer_close(&w), 0);
    assert_int_equal(media_export_mp3(wav, mp3, 0, err, sizeof err), 0);
    assert_int_equal(media_sound_check(mp3, fmt, sizeof fmt, &ms, err, sizeof err), 0);
    assert_non_null(strstr(fmt, "mp3 8000 Hz 2 ch"));
    assert_true(ms >= 1900 && ms <= 2300);
    int16_t *pcm;
    size_t frames;
    int rate, ch;
    assert_int_equal(sound_decode(mp3, &pcm, &frames, &rate, &ch, NULL, 0, err, sizeof err), 0);
    int16_t left[8000], right[8000];
    for (int i = 0; i < 8000; i++) {
        left[i] = pcm[2 * (i + 2000)];
        right[i] = pcm[2 * (i + 2000) + 1];
    }
    assert_true(dsp_goertzel_ratio(left, 8000, 600, 8000) > 0.8);
    assert_true(dsp_goertzel_ratio(right, 8000, 1400, 8000) > 0.8);
    free(pcm);
    /* exporting something that is not a sound fails cleanly */
    snprintf(wav, sizeof wav, "%s/junk.wav", dir);
    write_bytes(wav, "RIFFxxxxWAVE", 12);
    assert_int_equal(media_export_mp3(wav, mp3, 0, err, sizeof err), CW_EINVAL);
}

static void tone_plans_by_locale(void **st)
{
    struct tone_gen g;
    int16_t buf[8000];
    tone_gen_start(&g, tone_plan_for("ru", MEDIA_TONE_BUSY));
    tone_gen_fill(&g, buf, 8000);
    assert_true(dsp_goertzel_ratio(buf, 2800, 425, 8000) > 0.45); /* 350 ms on, 350 off */
    tone_gen_start(&g, tone_plan_for("us", MEDIA_TONE_BUSY));
    tone_gen_fill(&g, buf, 8000);
    assert_true(dsp_goertzel_ratio(buf, 4000, 480, 8000) > 0.2);
    assert_true(dsp_goertzel_ratio(buf, 4000, 620, 8000) > 0.2);
    assert_true(dsp_goertzel_ratio(buf, 4000, 425, 8000) < 0.01);
    /* the beep ends: a non-repeating plan reports done */
    tone_gen_start(&g, tone_plan_for("us", MEDIA_TONE_BEEP));
    assert_true(tone_gen_fill(&g, buf, 2000));
    assert_true(dsp_goertzel_ratio(buf, 2000, 1000, 8000) > 0.9);
    assert_false(tone_gen_fill(&g, buf, 160));
    assert_null(tone_plan_for("ru", 99));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(g711_round_trip_is_close),
        cmocka_unit_test(mixer_sums_within_one_lsb_with_clipping),
        cmocka_unit_test(resampler_keeps_1khz),
        cmocka_unit_test(jitter_buffer_reorders_and_conceals),
        cmocka_unit_test(jitter_buffer_follows_a_timestamp_jump),
        cmocka_unit_test(jitter_buffer_keeps_g711_as_decoded),
        cmocka_unit_test(rfc4733_lost_and_duplicated_end_packets),
        cmocka_unit_test(rtp_parser_refuses_malformed),
        cmocka_unit_test(bad_sound_files_are_refused),
        cmocka_unit_test(wav_any_rate_converted_once_and_cached),
        cmocka_unit_test(mp3_export_and_decode),
        cmocka_unit_test(tone_plans_by_locale),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
