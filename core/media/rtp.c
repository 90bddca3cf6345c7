/*
 * rtp.c - RTP packet parsing and building, RFC 3550 receive statistics,
 * the adaptive jitter buffer with packet-loss concealment, and the RFC 4733
 * telephone-event receiver.
 *
 * Each object here belongs to one session on one worker thread; nothing is
 * shared or locked. Packets come from the network: every length is checked
 * before it is read.
 */
#include "media/media_int.h"
#include "base/cw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- RTP ---- */

int rtp_parse(const uint8_t *b, int len, struct rtp_hdr *h)
{
    if (len < 12 || (b[0] >> 6) != 2) return CW_EINVAL;
    int cc = b[0] & 0x0F;
    int off = 12 + 4 * cc;
    if (off > len) return CW_EINVAL;
    if (b[0] & 0x10) { /* header extension */
        if (off + 4 > len) return CW_EINVAL;
        int xlen = 4 * ((b[off + 2] << 8) | b[off + 3]);
        off += 4 + xlen;
        if (off > len) return CW_EINVAL;
    }
    int end = len;
    if (b[0] & 0x20) { /* padding */
        int pad = b[len - 1];
        if (pad == 0 || off + pad > len) return CW_EINVAL;
        end -= pad;
    }
    h->marker = b[1] & 0x80;
    h->pt = b[1] & 0x7F;
    if (h->pt >= 72 && h->pt <= 76) return CW_EINVAL; /* RTCP multiplexed on the port */
    h->seq = (uint16_t)((b[2] << 8) | b[3]);
    h->ts = ((uint32_t)b[4] << 24) | ((uint32_t)b[5] << 16) | ((uint32_t)b[6] << 8) | b[7];
    h->ssrc = ((uint32_t)b[8] << 24) | ((uint32_t)b[9] << 16) | ((uint32_t)b[10] << 8) | b[11];
    h->payload = b + off;
    h->len = end - off;
    return CW_OK;
}

int rtp_write_header(uint8_t *b, int pt, bool marker, uint16_t seq, uint32_t ts, uint32_t ssrc)
{
    b[0] = 0x80;
    b[1] = (uint8_t)((marker ? 0x80 : 0) | (pt & 0x7F));
    b[2] = (uint8_t)(seq >> 8);
    b[3] = (uint8_t)seq;
    b[4] = (uint8_t)(ts >> 24);
    b[5] = (uint8_t)(ts >> 16);
    b[6] = (uint8_t)(ts >> 8);
    b[7] = (uint8_t)ts;
    b[8] = (uint8_t)(ssrc >> 24);
    b[9] = (uint8_t)(ssrc >> 16);
    b[10] = (uint8_t)(ssrc >> 8);
    b[11] = (uint8_t)ssrc;
    return 12;
}

/* ---- RTCP ---- */

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int rtcp_parse(const uint8_t *b, int len, uint32_t our_ssrc, struct rtcp_info *out)
{
    memset(out, 0, sizeof *out);
    int off = 0, parts = 0;
    while (off + 8 <= len) {
        const uint8_t *p = b + off;
        if ((p[0] >> 6) != 2) break;
        int rc = p[0] & 0x1F, pt = p[1];
        int plen = 4 * (((p[2] << 8) | p[3]) + 1);
        if (plen > len - off) break;
        parts++;
        int blocks_at = 0;
        if (pt == 200 && plen >= 28) { /* SR: the NTP middle bits, for LSR */
            out->has_sr = true;
            out->sr_mid = be32(p + 10);
            blocks_at = 28;
        } else if (pt == 201) {
            blocks_at = 8;
        }
        if (blocks_at) {
            for (int i = 0; i < rc && blocks_at + 24 * (i + 1) <= plen; i++) {
                const uint8_t *rb = p + blocks_at + 24 * i;
                if (be32(rb) != our_ssrc) continue;
                out->has_block = true;
                out->loss = rb[4] / 256.0;
                out->jitter = be32(rb + 12);
            }
        }
        off += plen;
    }
    return parts ? CW_OK : CW_EINVAL;
}

/* ---- RFC 3550 A.1 / A.8 statistics ---- */

#define MAX_DROPOUT  3000
#define MAX_MISORDER 100
#define RTP_SEQ_MOD  (1u << 16)

void rtp_stats_update(struct rtp_rx_stats *st, uint16_t seq, uint32_t ts, int64_t arrival_us)
{
    if (!st->init) {
        memset(st, 0, sizeof *st);
        st->init = true;
        st->base_seq = seq;
        st->max_seq = seq;
        st->bad_seq = RTP_SEQ_MOD + 1;
    } else {
        uint16_t udelta = (uint16_t)(seq - st->max_seq);
        if (udelta < MAX_DROPOUT) {
            if (seq < st->max_seq) st->cycles += RTP_SEQ_MOD;
            st->max_seq = seq;
        } else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
            if (seq == st->bad_seq) { /* two in a row: the sender restarted */
                st->base_seq = seq;
                st->max_seq = seq;
                st->cycles = 0;
                st->received = 0;
                st->expected_prior = st->received_prior = 0;
                st->bad_seq = RTP_SEQ_MOD + 1;
            } else {
                st->bad_seq = (seq + 1) & (RTP_SEQ_MOD - 1);
                return;
            }
        }
        /* else duplicate or reordered: counted, no sequence change */
    }
    st->received++;
    int64_t arrival_ts = arrival_us / (1000000 / MEDIA_RATE); /* in sample periods */
    int64_t transit = arrival_ts - (int64_t)ts;
    if (st->have_transit) {
        int64_t d = transit - st->last_transit;
        if (d < 0) d = -d;
        if (d < MEDIA_RATE * 10) st->jitter += ((double)d - st->jitter) / 16.0;
    }
    st->last_transit = transit;
    st->have_transit = true;
}

uint32_t rtp_stats_expected(const struct rtp_rx_stats *st)
{
    if (!st->init) return 0;
    return st->cycles + st->max_seq - st->base_seq + 1;
}

int64_t rtp_stats_lost(const struct rtp_rx_stats *st)
{
    int64_t lost = (int64_t)rtp_stats_expected(st) - st->received;
    return lost < 0 ? 0 : lost;
}

/* ---- packet-loss concealment ---- */

void plc_reset(struct plc *p)
{
    memset(p, 0, sizeof *p);
}

static void plc_push(struct plc *p, const int16_t *x, int n)
{
    if (n >= PLC_HIST) {
        memcpy(p->hist, x + n - PLC_HIST, sizeof p->hist);
        return;
    }
    memmove(p->hist, p->hist + n, (size_t)(PLC_HIST - n) * sizeof *p->hist);
    memcpy(p->hist + PLC_HIST - n, x, (size_t)n * sizeof *x);
}

/* The lag (32..160 samples, 50..250 Hz and its multiples) at which the last
 * 20 ms of history best matches itself. The sums are exact in 64-bit
 * integers (160 products of 16-bit samples), and the energy of the lagged
 * window slides by one sample a lag instead of being summed afresh. */
static int plc_pitch(const int16_t *h)
{
    enum { w = 160, minl = 32, maxl = 160 };
    const int16_t *x = h + PLC_HIST - w;
    int64_t yy = 1;
    for (int i = 0; i < w; i++)
        yy += (int32_t)x[i - minl] * x[i - minl];
    int best = maxl;
    double bestc = -1e30;
    for (int lag = minl; lag <= maxl; lag++) {
        const int16_t *y = x - lag;
        int64_t xy = 0;
        for (int i = 0; i < w; i++)
            xy += (int32_t)x[i] * y[i];
        double c = (double)xy / sqrt((double)yy);
        if (c > bestc) {
            bestc = c;
            best = lag;
        }
        /* the next lag's window: one sample earlier in, the last one out */
        yy += (int32_t)y[-1] * y[-1] - (int32_t)y[w - 1] * y[w - 1];
    }
    return best;
}

static double plc_gain(int lost)
{
    /* full level for 10 ms, then a linear fade to silence at 60 ms */
    if (lost < 80) return 1.0;
    double g = 1.0 - (lost - 80) / 400.0;
    return g < 0 ? 0 : g;
}

void plc_conceal(struct plc *p, int16_t *out, int n)
{
    if (p->lost == 0) {
        int peak = 0;
        for (int i = PLC_HIST - 160; i < PLC_HIST; i++)
            peak = CW_MAX(peak, abs(p->hist[i]));
        p->pitch = peak < 64 ? 160 : plc_pitch(p->hist); /* silence needs no pitch search */
        memcpy(p->period, p->hist + PLC_HIST - p->pitch, (size_t)p->pitch * sizeof *p->period);
        p->pos = 0;
    }
    for (int i = 0; i < n; i++) {
        out[i] = (int16_t)(p->period[p->pos] * plc_gain(p->lost));
        p->pos = (p->pos + 1) % p->pitch;
        p->lost++;
    }
    plc_push(p, out, n);
}

void plc_good(struct plc *p, int16_t *pcm, int n)
{
    if (p->lost > 0) { /* crossfade from the synthetic continuation into the real audio */
        int k = CW_MIN(PLC_OLA, n);
        int pos = p->pos;
        for (int i = 0; i < k; i++) {
            double syn = p->period[pos] * plc_gain(p->lost + i);
            pos = (pos + 1) % p->pitch;
            pcm[i] = dsp_clip16((int32_t)lrint((syn * (k - i) + (double)pcm[i] * i) / k));
        }
        p->lost = 0;
    }
    plc_push(p, pcm, n);
}

/* ---- jitter buffer ---- */

#define JB_MASK       (JB_SIZE - 1)
#define JB_MIN_TARGET 320  /* 40 ms */
#define JB_MAX_TARGET 1200 /* 150 ms */
#define JB_START      320  /* 40 ms */
#define JB_STEP       80   /* 10 ms: one adjustment */

/*
 * The have bits: one per sample of the ring. bits_mask() gives the mask of
 * the first word that samples i..i+n-1 touch and how many of them it covers;
 * callers pass runs that do not wrap the ring.
 */
static uint64_t bits_mask(uint32_t i, int n, uint32_t *word, int *taken)
{
    uint32_t off = i & 63;
    int k = CW_MIN(n, 64 - (int)off);
    *word = i >> 6;
    *taken = k;
    return (k == 64 ? ~(uint64_t)0 : (((uint64_t)1 << k) - 1)) << off;
}

static void bits_fill(uint64_t *bits, uint32_t i, int n, bool on)
{
    while (n > 0) {
        uint32_t w;
        int k;
        uint64_t m = bits_mask(i, n, &w, &k);
        bits[w] = on ? bits[w] | m : bits[w] & ~m;
        i += (uint32_t)k;
        n -= k;
    }
}

static bool bits_all(const uint64_t *bits, uint32_t i, int n)
{
    while (n > 0) {
        uint32_t w;
        int k;
        uint64_t m = bits_mask(i, n, &w, &k);
        if ((bits[w] & m) != m) return false;
        i += (uint32_t)k;
        n -= k;
    }
    return true;
}

static bool bit_get(const uint64_t *bits, uint32_t i)
{
    return (bits[i >> 6] >> (i & 63)) & 1;
}

void jb_init(struct jbuf *jb, bool plc)
{
    memset(jb, 0, sizeof *jb);
    jb->target = JB_START;
    jb->plc_on = plc;
}

void jb_free(struct jbuf *jb)
{
    free(jb->ring);
    jb->ring = NULL;
    jb->form = JB_EMPTY;
}

static int law_codec(enum jb_form f)
{
    return f == JB_ALAW ? MEDIA_PCMA : MEDIA_PCMU;
}

/* Make the ring hold samples in form f: allocated on first use; a ring of one
 * law that meets the other law or linear audio is decoded to linear once. */
static void jb_use_form(struct jbuf *jb, enum jb_form f)
{
    if (jb->form == f || jb->form == JB_LINEAR) return;
    if (jb->form == JB_EMPTY) {
        jb->ring = cw_calloc(JB_SIZE, f == JB_LINEAR ? sizeof(int16_t) : 1);
        jb->form = f;
        return;
    }
    int16_t *pcm = cw_malloc(JB_SIZE * sizeof *pcm);
    g711_decode_frame(law_codec(jb->form), jb->ring, pcm, JB_SIZE);
    free(jb->ring);
    jb->ring = pcm;
    jb->form = JB_LINEAR;
}

/* n samples of the ring from idx (no wrap) into out, decoded. */
static void ring_read(const struct jbuf *jb, uint32_t idx, int16_t *out, int n)
{
    if (jb->form == JB_LINEAR)
        memcpy(out, (const int16_t *)jb->ring + idx, (size_t)n * sizeof *out);
    else
        g711_decode_frame(law_codec(jb->form), (const uint8_t *)jb->ring + idx, out, n);
}

void jb_reset(struct jbuf *jb)
{
    plc_reset(&jb->plc);
    jb->started = false;
    memset(jb->have, 0, sizeof jb->have);
    jb->over_frames = jb->under_frames = 0;
}

static void jb_start_at(struct jbuf *jb, uint32_t ts, int n)
{
    memset(jb->have, 0, sizeof jb->have);
    jb->started = true;
    jb->play_ts = ts - (uint32_t)jb->target;
    jb->max_end = ts + (uint32_t)n;
    jb->over_frames = jb->under_frames = 0;
}

/* src holds n samples in the ring's form (2 or 1 bytes each). */
static int jb_store(struct jbuf *jb, uint32_t ts, const void *src, int n)
{
    size_t size = jb->form == JB_LINEAR ? sizeof(int16_t) : 1;
    int rc = JB_OK;
    if (!jb->started) {
        jb_start_at(jb, ts, n);
    }
    int32_t d = (int32_t)(ts - jb->play_ts);
    if (d + n <= 0) {
        /* late: after a long underrun the sender's clock moved on, so follow it */
        if (jb->under_frames > 3 || d < -MEDIA_RATE) {
            jb_start_at(jb, ts, n);
            d = (int32_t)(ts - jb->play_ts);
            rc = JB_RESYNC;
        } else {
            jb->late++;
            jb->last_late_frame = jb->frames;
            if (jb->target < JB_MAX_TARGET) { /* grow: replay 10 ms of concealment */
                jb->target += JB_STEP;
                jb->play_ts -= JB_STEP;
            }
            return JB_LATE;
        }
    }
    if (d + n > JB_SIZE - MEDIA_FRAME) {
        if (d > 4 * JB_SIZE) { /* a jump far ahead: new timeline */
            jb_start_at(jb, ts, n);
            d = (int32_t)(ts - jb->play_ts);
            rc = JB_RESYNC;
        } else { /* more than the window holds: drop the oldest audio to make room */
            uint32_t np = ts + (uint32_t)n - (uint32_t)(JB_SIZE - MEDIA_FRAME);
            for (uint32_t t = jb->play_ts; t != np; t++)
                bits_fill(jb->have, t & JB_MASK, 1, false);
            jb->play_ts = np;
            d = (int32_t)(ts - jb->play_ts);
        }
    }
    int start = d < 0 ? -d : 0; /* partly late packet: keep the part still ahead */
    bool all_had = start < n;
    /* copy in at most two runs (the ring may wrap) */
    for (int i = start; i < n;) {
        uint32_t idx = (jb->play_ts + (uint32_t)d + (uint32_t)i) & JB_MASK;
        int run = CW_MIN(n - i, (int)(JB_SIZE - idx));
        if (all_had && !bits_all(jb->have, idx, run)) all_had = false;
        memcpy((uint8_t *)jb->ring + idx * size, (const uint8_t *)src + (size_t)i * size,
               (size_t)run * size);
        bits_fill(jb->have, idx, run, true);
        i += run;
    }
    if (all_had) {
        jb->dup++;
        return JB_DUP;
    }
    if ((int32_t)(ts + (uint32_t)n - jb->max_end) > 0) jb->max_end = ts + (uint32_t)n;
    return rc;
}

int jb_put(struct jbuf *jb, uint32_t ts, const int16_t *pcm, int n)
{
    if (n <= 0 || n > JB_SIZE / 2) return JB_LATE;
    jb_use_form(jb, JB_LINEAR);
    return jb_store(jb, ts, pcm, n);
}

int jb_put_g711(struct jbuf *jb, uint32_t ts, int codec, const uint8_t *payload, int n)
{
    if (n <= 0 || n > JB_SIZE / 2) return JB_LATE;
    jb_use_form(jb, codec == MEDIA_PCMA ? JB_ALAW : JB_ULAW);
    if (jb->form != JB_LINEAR) return jb_store(jb, ts, payload, n);
    int16_t pcm[JB_SIZE / 2];
    g711_decode_frame(codec, payload, pcm, n);
    return jb_store(jb, ts, pcm, n);
}

int jb_get(struct jbuf *jb, int16_t *out, int n)
{
    jb->frames++;
    if (!jb->started) {
        memset(out, 0, (size_t)n * sizeof *out);
        return -1;
    }
    int got = 0;
    for (int i = 0; i < n;) {
        uint32_t idx = (jb->play_ts + (uint32_t)i) & JB_MASK;
        int run = CW_MIN(n - i, (int)(JB_SIZE - idx));
        if (bits_all(jb->have, idx, run)) { /* the usual case: all there */
            ring_read(jb, idx, out + i, run);
            got += run;
        } else {
            ring_read(jb, idx, out + i, run);
            for (int k = 0; k < run; k++) {
                bool h = bit_get(jb->have, idx + (uint32_t)k);
                if (!h) out[i + k] = 0;
                got += h;
            }
        }
        bits_fill(jb->have, idx, run, false);
        i += run;
    }
    jb->play_ts += (uint32_t)n;
    int32_t buffered = (int32_t)(jb->max_end - jb->play_ts);
    jb->under_frames = buffered <= 0 ? jb->under_frames + 1 : 0;
    /* shrink after a quiet spell: no late packets for 10 s and too much queued */
    if (jb->target > JB_MIN_TARGET && jb->frames - jb->last_late_frame > 500) {
        jb->target -= JB_STEP;
        jb->last_late_frame = jb->frames;
    }
    if (buffered > jb->target + 2 * MEDIA_FRAME) {
        if (++jb->over_frames >= 25) { /* half a second too deep: drop 10 ms */
            for (int i = 0; i < JB_STEP; i++)
                bits_fill(jb->have, (jb->play_ts + (uint32_t)i) & JB_MASK, 1, false);
            jb->play_ts += JB_STEP;
            jb->over_frames = 0;
        }
    } else {
        jb->over_frames = 0;
    }
    bool plc = jb->plc_on;
    if (got > 0) jb->played = true;
    if (got == n) {
        if (plc) plc_good(&jb->plc, out, n);
        return 1;
    }
    if (got == 0) {
        jb->concealed++;
        /* nothing played yet, or a long gap (hold, silence suppression): silence, not a
         * stretched echo */
        if (plc && jb->played && jb->under_frames < 10) plc_conceal(&jb->plc, out, n);
        return 0;
    }
    if (plc) plc_good(&jb->plc, out, n); /* partly missing: the gaps stay silent */
    return 0;
}

/* ---- RFC 4733 ---- */

int dtmf_event_code(char d)
{
    if (d >= '0' && d <= '9') return d - '0';
    if (d == '*') return 10;
    if (d == '#') return 11;
    if (d >= 'A' && d <= 'D') return 12 + d - 'A';
    if (d >= 'a' && d <= 'd') return 12 + d - 'a';
    return -1;
}

char dtmf_event_char(int code)
{
    static const char map[] = "0123456789*#ABCD";
    return code >= 0 && code < 16 ? map[code] : 0;
}

static int finish(struct dtmf4733_rx *r, struct dtmf_digit *out)
{
    r->active = false;
    r->have_ended = true;
    r->ended_ts = r->ts;
    char c = dtmf_event_char(r->event);
    if (!c) return 0;
    out->digit = c;
    out->ms = r->duration / (MEDIA_RATE / 1000);
    return 1;
}

int dtmf4733_rx_packet(struct dtmf4733_rx *r, uint32_t ts, const uint8_t *p, int len,
                       int64_t now_ms, struct dtmf_digit out[2])
{
    if (len < 4) return 0;
    int event = p[0];
    bool end = p[1] & 0x80;
    int duration = (p[2] << 8) | p[3];
    int n = 0;
    if (r->have_ended && ts == r->ended_ts) return 0;      /* a repeated end packet, or late */
    if (r->active && ts != r->ts) n += finish(r, &out[n]); /* its end packets were lost */
    if (!r->active) {
        r->active = true;
        r->ts = ts;
        r->event = event;
        r->duration = 0;
    }
    if (duration > r->duration) r->duration = duration;
    r->last_ms = now_ms;
    if (end) n += finish(r, &out[n]);
    return n;
}

int dtmf4733_rx_poll(struct dtmf4733_rx *r, int64_t now_ms, struct dtmf_digit *out)
{
    if (r->active && now_ms - r->last_ms > 150) return finish(r, out);
    return 0;
}
