/*
 * dsp.c - sample-level signal processing of the media engine: G.711,
 * mixing with clipping, power, resampling, Goertzel and tone generation.
 *
 * Pure functions over buffers; the lookup tables are built once on first use
 * and are read-only afterwards, so any thread may call these.
 */
#include "media/media.h"
#include "media/media_int.h"
#include "base/cw.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- G.711 ---- */

static int16_t ulaw_dec[256], alaw_dec[256];
static uint8_t ulaw_enc[16384], alaw_enc[16384]; /* indexed by sample >> 2, offset */
static float sine_table[1024];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static uint8_t ulaw_encode_slow(int s)
{
    int sign = 0;
    if (s < 0) {
        sign = 0x80;
        s = -s;
    }
    if (s > 32635) s = 32635;
    s += 0x84;
    int seg = 7;
    for (int mask = 0x4000; !(s & mask) && seg > 0; mask >>= 1)
        seg--;
    int mant = (s >> (seg + 3)) & 0x0F;
    return (uint8_t) ~(sign | (seg << 4) | mant);
}

static int16_t ulaw_decode_slow(uint8_t u)
{
    u = (uint8_t)~u;
    int t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4);
    return (int16_t)((u & 0x80) ? 0x84 - t : t - 0x84);
}

static uint8_t alaw_encode_slow(int s)
{
    int mask;
    if (s >= 0) {
        mask = 0xD5;
    } else {
        mask = 0x55;
        s = -s - 1;
    }
    int m = s >> 3; /* 12-bit magnitude */
    int seg, mant;
    if (m < 32) {
        seg = 0;
        mant = m >> 1;
    } else {
        seg = 1;
        while ((m >> seg) >= 32 && seg < 7)
            seg++;
        mant = (m >> seg) & 0x0F;
        if ((m >> seg) >= 32) mant = 0x0F; /* clip the top segment */
    }
    return (uint8_t)(((seg << 4) | mant) ^ mask);
}

static int16_t alaw_decode_slow(uint8_t a)
{
    a ^= 0x55;
    int seg = (a >> 4) & 7;
    int t = (a & 0x0F) << 4;
    if (seg == 0)
        t += 8;
    else
        t = (t + 0x108) << (seg - 1);
    return (int16_t)((a & 0x80) ? t : -t);
}

static void build_tables(void)
{
    for (int i = 0; i < 256; i++) {
        ulaw_dec[i] = ulaw_decode_slow((uint8_t)i);
        alaw_dec[i] = alaw_decode_slow((uint8_t)i);
    }
    for (int i = 0; i < 16384; i++) {
        int s = (i - 8192) * 4 + 2; /* centre of the 4-sample bucket */
        ulaw_enc[i] = ulaw_encode_slow(s);
        alaw_enc[i] = alaw_encode_slow(s);
    }
    for (int i = 0; i < 1024; i++)
        sine_table[i] = (float)sin(2.0 * M_PI * i / 1024.0);
}

static inline void tables(void)
{
    pthread_once(&tables_once, build_tables);
}

uint8_t g711_ulaw_encode(int16_t s)
{
    tables();
    return ulaw_enc[(s >> 2) + 8192];
}

int16_t g711_ulaw_decode(uint8_t u)
{
    tables();
    return ulaw_dec[u];
}

uint8_t g711_alaw_encode(int16_t s)
{
    tables();
    return alaw_enc[(s >> 2) + 8192];
}

int16_t g711_alaw_decode(uint8_t a)
{
    tables();
    return alaw_dec[a];
}

void g711_encode_frame(int codec, const int16_t *in, uint8_t *out, int n)
{
    tables();
    const uint8_t *t = codec == MEDIA_PCMA ? alaw_enc : ulaw_enc;
    for (int i = 0; i < n; i++)
        out[i] = t[(in[i] >> 2) + 8192];
}

void g711_decode_frame(int codec, const uint8_t *in, int16_t *out, int n)
{
    tables();
    const int16_t *t = codec == MEDIA_PCMA ? alaw_dec : ulaw_dec;
    for (int i = 0; i < n; i++)
        out[i] = t[in[i]];
}

/* ---- mixing and levels ---- */

void dsp_mix_add(int32_t *acc, const int16_t *in, int n)
{
    for (int i = 0; i < n; i++)
        acc[i] += in[i];
}

void dsp_mix_clip(int16_t *out, const int32_t *acc, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = dsp_clip16(acc[i]);
}

double dsp_power_dbov(const int16_t *in, int n)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)in[i] * in[i];
    if (n <= 0 || sum <= 0) return -100.0;
    double p = 10.0 * log10(sum / n / (32767.0 * 32767.0));
    return p < -100.0 ? -100.0 : p;
}

double dsp_dbm0_amplitude(double dbm0)
{
    return 32767.0 * pow(10.0, (dbm0 - 3.14) / 20.0);
}

double dsp_goertzel_ratio(const int16_t *in, int n, double f, int rate)
{
    double w = 2.0 * M_PI * f / rate, c = 2.0 * cos(w);
    double s1 = 0, s2 = 0, energy = 0;
    for (int i = 0; i < n; i++) {
        double s0 = in[i] + c * s1 - s2;
        s2 = s1;
        s1 = s0;
        energy += (double)in[i] * in[i];
    }
    double power = s1 * s1 + s2 * s2 - c * s1 * s2;
    if (energy <= 0) return 0;
    return power * 2.0 / (n * energy);
}

/* ---- resampling: windowed sinc from a precomputed kernel table ---- */

#define RS_ZEROS  16  /* zero crossings of the low-pass on each side */
#define RS_PHASES 256 /* table entries per unit of kernel argument */

int16_t *dsp_resample(const int16_t *in, size_t n, int in_rate, int out_rate, size_t *out_n)
{
    if (in_rate == out_rate || n == 0) {
        int16_t *o = cw_malloc((n ? n : 1) * sizeof *o);
        if (n) memcpy(o, in, n * sizeof *o);
        *out_n = n;
        return o;
    }
    /* cut-off as a fraction of the input rate: 0.45 of the lower rate */
    double fc = 0.45 * (in_rate < out_rate ? in_rate : out_rate) / in_rate;
    double half = RS_ZEROS / (2.0 * fc); /* kernel half-width in input samples */
    int tlen = (int)(RS_ZEROS * RS_PHASES) + 2;
    /* kernel over u = 2*fc*x (zero crossings at integers), u in [0, RS_ZEROS] */
    float *kt = cw_malloc((size_t)tlen * sizeof *kt);
    for (int i = 0; i < tlen; i++) {
        double u = (double)i / RS_PHASES;
        double sinc = u == 0 ? 1.0 : sin(M_PI * u) / (M_PI * u);
        double r = u / RS_ZEROS;
        double win = r >= 1.0 ? 0.0 : 0.42 + 0.5 * cos(M_PI * r) + 0.08 * cos(2 * M_PI * r);
        kt[i] = (float)(2.0 * fc * sinc * win);
    }
    size_t on = (size_t)((double)n * out_rate / in_rate);
    int16_t *o = cw_malloc((on ? on : 1) * sizeof *o);
    double step = (double)in_rate / out_rate;
    for (size_t j = 0; j < on; j++) {
        double t = j * step;
        long k0 = (long)ceil(t - half), k1 = (long)floor(t + half);
        if (k0 < 0) k0 = 0;
        if (k1 >= (long)n) k1 = (long)n - 1;
        double acc = 0;
        for (long k = k0; k <= k1; k++) {
            double u = fabs(t - (double)k) * 2.0 * fc * RS_PHASES;
            int iu = (int)u;
            if (iu >= tlen - 1) continue;
            double fr = u - iu;
            acc += in[k] * (kt[iu] + (kt[iu + 1] - kt[iu]) * fr);
        }
        o[j] = dsp_clip16((int32_t)lrint(acc));
    }
    free(kt);
    *out_n = on;
    return o;
}

/* ---- tones ---- */

/* ru: 425 Hz plan (GOST); us: precise tone plan (ANSI T1.401). */
static const struct tone_seg ru_dial[] = {{425, 0, 1000}};
static const struct tone_seg ru_ringback[] = {{425, 0, 1000}, {0, 0, 4000}};
static const struct tone_seg ru_busy[] = {{425, 0, 350}, {0, 0, 350}};
static const struct tone_seg ru_congestion[] = {{425, 0, 175}, {0, 0, 175}};
static const struct tone_seg ru_waiting[] = {{425, 0, 200}, {0, 0, 200}, {425, 0, 200}};
static const struct tone_seg us_dial[] = {{350, 440, 1000}};
static const struct tone_seg us_ringback[] = {{440, 480, 2000}, {0, 0, 4000}};
static const struct tone_seg us_busy[] = {{480, 620, 500}, {0, 0, 500}};
static const struct tone_seg us_congestion[] = {{480, 620, 250}, {0, 0, 250}};
static const struct tone_seg us_waiting[] = {{440, 0, 300}, {0, 0, 100}, {440, 0, 300}};
static const struct tone_seg beep[] = {{1000, 0, 250}};
static const struct tone_seg join[] = {{660, 0, 100}, {0, 0, 30}, {880, 0, 120}};
static const struct tone_seg leave[] = {{880, 0, 100}, {0, 0, 30}, {660, 0, 120}};

#define PLAN(segs, rep, lvl)                                                                       \
    {                                                                                              \
        segs, (int)CW_ARRAY_LEN(segs), rep, lvl                                                    \
    }
static const struct tone_plan ru_plans[] = {
    PLAN(ru_dial, true, -10),       PLAN(ru_ringback, true, -10), PLAN(ru_busy, true, -10),
    PLAN(ru_congestion, true, -10), PLAN(ru_waiting, false, -13), PLAN(beep, false, -8),
};
static const struct tone_plan us_plans[] = {
    PLAN(us_dial, true, -13),       PLAN(us_ringback, true, -16), PLAN(us_busy, true, -16),
    PLAN(us_congestion, true, -16), PLAN(us_waiting, false, -13), PLAN(beep, false, -8),
};
static const struct tone_plan join_plan = PLAN(join, false, -16);
static const struct tone_plan leave_plan = PLAN(leave, false, -16);

const struct tone_plan *tone_plan_for(const char *locale, int tone)
{
    if (tone < MEDIA_TONE_DIAL || tone > MEDIA_TONE_BEEP) return NULL;
    const struct tone_plan *plans = (locale && !strcmp(locale, "us")) ? us_plans : ru_plans;
    return &plans[tone - MEDIA_TONE_DIAL];
}

const struct tone_plan *tone_plan_join(void)
{
    return &join_plan;
}

const struct tone_plan *tone_plan_leave(void)
{
    return &leave_plan;
}

void tone_gen_start(struct tone_gen *g, const struct tone_plan *p)
{
    tables();
    memset(g, 0, sizeof *g);
    g->plan = p;
    g->amp = (int)dsp_dbm0_amplitude(p->level_dbm0);
}

bool tone_gen_fill(struct tone_gen *g, int16_t *out, int n)
{
    int i = 0;
    while (i < n && !g->done) {
        const struct tone_seg *sg = &g->plan->segs[g->seg];
        int seg_len = sg->ms * (MEDIA_RATE / 1000);
        int take = CW_MIN(n - i, seg_len - g->seg_pos);
        uint32_t inc1 = (uint32_t)((double)sg->f1 * 4294967296.0 / MEDIA_RATE);
        uint32_t inc2 = (uint32_t)((double)sg->f2 * 4294967296.0 / MEDIA_RATE);
        for (int k = 0; k < take; k++) {
            float v = 0;
            if (sg->f1) v += sine_table[g->ph1 >> 22];
            if (sg->f2) v += sine_table[g->ph2 >> 22];
            g->ph1 += inc1;
            g->ph2 += inc2;
            out[i + k] = dsp_clip16((int32_t)(v * g->amp));
        }
        i += take;
        g->seg_pos += take;
        if (g->seg_pos >= seg_len) {
            g->seg_pos = 0;
            g->ph1 = g->ph2 = 0;
            if (++g->seg >= g->plan->nsegs) {
                if (g->plan->repeat)
                    g->seg = 0;
                else
                    g->done = true;
            }
        }
    }
    if (i < n) memset(out + i, 0, (size_t)(n - i) * sizeof *out);
    return !g->done || i > 0;
}
