/*
 * audio.c - what cwload sends and how it judges what it hears: G.711 µ-law
 * (ITU-T G.711 segment coding), one-second sine tables, and a frame's
 * energy and tone share (Goertzel at one frequency).
 *
 * Tables are built once by audio_init() before any thread starts and are
 * read-only afterwards.
 */
#include "cwload.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TONES 8

static int16_t ulaw_table[256];
static struct {
    int hz;
    uint8_t *tab;
} tones[MAX_TONES];
static int ntones;

int16_t ulaw_decode(uint8_t u)
{
    return ulaw_table[u];
}

uint8_t ulaw_encode(int16_t sample)
{
    const int bias = 0x84, clip = 32635;
    int s = sample, sign = 0;
    if (s < 0) {
        s = -s;
        sign = 0x80;
    }
    if (s > clip) s = clip;
    s += bias;
    int exp = 7;
    for (int mask = 0x4000; !(s & mask) && exp > 0; mask >>= 1)
        exp--;
    int mant = (s >> (exp + 3)) & 0x0F;
    return (uint8_t) ~(sign | (exp << 4) | mant);
}

static int16_t decode_slow(uint8_t u)
{
    u = (uint8_t)~u;
    int t = ((u & 0x0F) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    return (int16_t)((u & 0x80) ? 0x84 - t : t - 0x84);
}

static const uint8_t *make_tone(int hz)
{
    uint8_t *t = malloc(8000);
    if (!t) abort();
    for (int i = 0; i < 8000; i++) {
        double v = 8000.0 * sin(2.0 * M_PI * hz * i / 8000.0); /* about -12 dBFS */
        t[i] = ulaw_encode((int16_t)lrint(v));
    }
    return t;
}

void audio_init(void)
{
    for (int i = 0; i < 256; i++)
        ulaw_table[i] = decode_slow((uint8_t)i);
}

const uint8_t *tone_table(int hz)
{
    if (hz <= 0) return NULL;
    for (int i = 0; i < ntones; i++)
        if (tones[i].hz == hz) return tones[i].tab;
    if (ntones == MAX_TONES) abort(); /* options allow two tones; never reached */
    tones[ntones].hz = hz;
    tones[ntones].tab = (uint8_t *)make_tone(hz);
    return tones[ntones++].tab;
}

double goertzel_coeff(int hz)
{
    return 2.0 * cos(2.0 * M_PI * hz / 8000.0);
}

void frame_analyse(const uint8_t *ulaw, int n, double coeff, double *mean_sq, double *tone_share)
{
    double e = 0, s1 = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        double x = ulaw_table[ulaw[i]];
        e += x * x;
        double s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    *mean_sq = n ? e / n : 0;
    /* a pure tone at the frequency gives |X|^2 = energy * n / 2 */
    double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    *tone_share = e > 0 ? power / (e * n / 2.0) : 0;
}
