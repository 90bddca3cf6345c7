/*
 * media_harness.h - shared by the media unit tests: starts the real engine
 * on the core loop with a temp var_dir and a random RTP range, and gives
 * tests RTP peers (UDP sockets on 127.0.0.1) that send G.711 frames at the
 * 20 ms pace and capture what the engine sends them.
 *
 * Header-only on purpose: each test program includes it once.
 */
#ifndef MEDIA_HARNESS_H
#define MEDIA_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/cw.h"
#include "log/log.h"
#include "loop/loop.h"
#include "media/media.h"
#include "media/media_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <spandsp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 4096
#define MAX_PEERS  16
#define CAP_MAX    (8000 * 40) /* 40 s of captured audio a peer */

static struct media_event h_ev[MAX_EVENTS];
static int h_nev;
static char h_dir[256];

struct peer {
    int fd, port;
    struct sockaddr_in to;
    uint16_t seq;
    uint32_t ts, ssrc;
    int pt;
    int16_t *cap; /* decoded audio received, in arrival order */
    int ncap;
    int rx_packets;
    int dtmf_pt;
    uint8_t last_event[4]; /* the last telephone-event payload received */
    int events_rx;
    uint32_t rx_ssrc;          /* the engine's SSRC towards this peer */
    g722_decode_state_t *g722; /* a G.722 peer decodes what it gets (at 8 kHz) */
};
static struct peer *h_peers[MAX_PEERS];
static int h_npeers;

static inline void h_on_event(const struct media_event *ev, void *arg)
{
    if (h_nev < MAX_EVENTS) h_ev[h_nev++] = *ev;
}

static inline int h_count(media_id id, enum media_event_type type)
{
    int n = 0;
    for (int i = 0; i < h_nev; i++)
        if (h_ev[i].id == id && h_ev[i].type == type) n++;
    return n;
}

static inline const struct media_event *h_find(media_id id, enum media_event_type type)
{
    for (int i = 0; i < h_nev; i++)
        if (h_ev[i].id == id && h_ev[i].type == type) return &h_ev[i];
    return NULL;
}

/* Digits received on a session, as a string. */
static inline void h_digits(media_id id, char *out, size_t len)
{
    size_t k = 0;
    for (int i = 0; i < h_nev && k + 1 < len; i++)
        if (h_ev[i].id == id && h_ev[i].type == MEDIA_EV_DTMF) out[k++] = h_ev[i].digit;
    out[k] = 0;
}

static inline void h_init(int workers)
{
    log_open(NULL);
    log_set_level(getenv("CW_TEST_LOG") ? getenv("CW_TEST_LOG") : "error");
    assert_int_equal(loop_init(), 0);
    snprintf(h_dir, sizeof h_dir, "/tmp/cw-media-test-XXXXXX");
    assert_non_null(mkdtemp(h_dir));
    struct media_config cfg = {0};
    cfg.workers = workers;
    unsigned r;
    cw_random_bytes(&r, sizeof r);
    cfg.rtp_min = 20000 + (int)(r % 2000) * 20;
    cfg.rtp_max = cfg.rtp_min + 2000;
    snprintf(cfg.ip, sizeof cfg.ip, "127.0.0.1");
    cfg.rtp_timeout_s = 0;
    const char *b = getenv("CW_BUILD_DIR");
    if (b)
        snprintf(cfg.sounds_dir, sizeof cfg.sounds_dir, "%s/sounds", b);
    else
        snprintf(cfg.sounds_dir, sizeof cfg.sounds_dir, "%s", CW_DEFAULT_SOUNDS_DIR);
    snprintf(cfg.var_dir, sizeof cfg.var_dir, "%s", h_dir);
    snprintf(cfg.tone_locale, sizeof cfg.tone_locale, "ru");
    assert_int_equal(media_init(&cfg, h_on_event, NULL), 0);
    h_nev = 0;
    h_npeers = 0;
}

static inline void h_done(void)
{
    media_shutdown();
    loop_free();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", h_dir);
    if (system(cmd)) {
    }
}

static inline void peer_open(struct peer *p, int pt)
{
    memset(p, 0, sizeof *p);
    p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(p->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(p->fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(p->fd, (struct sockaddr *)&a, &l);
    p->port = ntohs(a.sin_port);
    p->pt = pt;
    cw_random_bytes(&p->ssrc, sizeof p->ssrc);
    p->ts = 1000;
    p->seq = 100;
    p->cap = calloc(CAP_MAX, sizeof *p->cap);
    if (pt == MEDIA_G722) p->g722 = g722_decode_init(NULL, 64000, G722_SAMPLE_RATE_8000);
    assert_true(h_npeers < MAX_PEERS);
    h_peers[h_npeers++] = p;
}

static inline void peer_close(struct peer *p)
{
    close(p->fd);
    free(p->cap);
    if (p->g722) g722_decode_free(p->g722);
    for (int i = 0; i < h_npeers; i++)
        if (h_peers[i] == p) h_peers[i] = h_peers[--h_npeers];
}

/* Open an engine session talking to peer p (and p to it). */
static inline media_id h_session(struct peer *p, int dtmf_pt, enum media_dtmf_mode mode)
{
    media_id id;
    int port;
    assert_int_equal(media_session_open(0, &id, &port), 0);
    struct media_remote r = {.port = p->port,
                             .pt = p->pt,
                             .dtmf_pt = dtmf_pt,
                             .ptime = 20,
                             .dtmf_mode = mode,
                             .send = true,
                             .recv = true};
    snprintf(r.ip, sizeof r.ip, "127.0.0.1");
    assert_int_equal(media_session_set_remote(id, &r), 0);
    p->to.sin_family = AF_INET;
    p->to.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &p->to.sin_addr);
    p->dtmf_pt = dtmf_pt;
    return id;
}

static inline void peer_send_raw(struct peer *p, const void *b, size_t n)
{
    ssize_t w = sendto(p->fd, b, n, 0, (struct sockaddr *)&p->to, sizeof p->to);
    (void)w;
}

static inline void peer_send_pcm(struct peer *p, const int16_t *pcm)
{
    uint8_t b[12 + MEDIA_FRAME];
    rtp_write_header(b, p->pt, false, p->seq++, p->ts, p->ssrc);
    g711_encode_frame(p->pt, pcm, b + 12, MEDIA_FRAME);
    p->ts += MEDIA_FRAME;
    peer_send_raw(p, b, sizeof b);
}

static inline void peer_send_event(struct peer *p, uint32_t ts, int code, bool end, int dur,
                                   bool marker)
{
    uint8_t b[16];
    rtp_write_header(b, p->dtmf_pt, marker, p->seq++, ts, p->ssrc);
    b[12] = (uint8_t)code;
    b[13] = (uint8_t)((end ? 0x80 : 0) | 10);
    b[14] = (uint8_t)(dur >> 8);
    b[15] = (uint8_t)dur;
    peer_send_raw(p, b, sizeof b);
}

static inline void peer_drain(struct peer *p)
{
    uint8_t b[2048];
    for (;;) {
        ssize_t n = recv(p->fd, b, sizeof b, MSG_DONTWAIT);
        if (n <= 0) return;
        struct rtp_hdr h;
        if (rtp_parse(b, (int)n, &h)) continue;
        p->rx_packets++;
        p->rx_ssrc = h.ssrc;
        if (p->dtmf_pt && h.pt == p->dtmf_pt && h.len >= 4) {
            memcpy(p->last_event, h.payload, 4);
            p->events_rx++;
            continue;
        }
        if (h.pt == MEDIA_G722 && p->g722) {
            int16_t pcm[2 * MEDIA_FRAME];
            if (h.len > MEDIA_FRAME) continue; /* 20 ms of G.722 is 160 bytes */
            int k = g722_decode(p->g722, pcm, h.payload, h.len);
            k = CW_MIN(k, CAP_MAX - p->ncap);
            memcpy(p->cap + p->ncap, pcm, (size_t)k * sizeof *pcm);
            p->ncap += k;
            continue;
        }
        if (h.pt != MEDIA_PCMU && h.pt != MEDIA_PCMA) continue;
        int k = CW_MIN(h.len, CAP_MAX - p->ncap);
        g711_decode_frame(h.pt, h.payload, p->cap + p->ncap, k);
        p->ncap += k;
    }
}

/* Per-test setup: forget peers a failed test left registered. */
static inline int h_reset(void **st)
{
    h_npeers = 0;
    return 0;
}

typedef void (*h_tick_fn)(int frame, void *arg);

/* Run the core loop in real time for frames * 20 ms; fn (if any) runs at each
 * 20 ms step so peers can send; every peer's socket is drained meanwhile. */
static inline void h_drive(int frames, h_tick_fn fn, void *arg)
{
    int64_t t0 = cw_mono_us();
    for (int f = 0; f < frames; f++) {
        if (fn) fn(f, arg);
        int64_t until = t0 + (int64_t)(f + 1) * 20000;
        while (cw_mono_us() < until) {
            event_base_loop(loop_base(), EVLOOP_NONBLOCK);
            for (int i = 0; i < h_npeers; i++)
                peer_drain(h_peers[i]);
            usleep(1000);
        }
    }
    event_base_loop(loop_base(), EVLOOP_NONBLOCK);
}

/* Wait (up to ms) until the event count of (id, type) reaches n. */
static inline bool h_wait_event(media_id id, enum media_event_type type, int n, int ms)
{
    for (int waited = 0; waited < ms; waited += 20) {
        if (h_count(id, type) >= n) return true;
        h_drive(1, NULL, NULL);
    }
    return h_count(id, type) >= n;
}

static inline void h_sine(int16_t *out, int n, double f, double amp, int64_t *phase_samples)
{
    for (int i = 0; i < n; i++)
        out[i] = (int16_t)(amp * sin(2 * M_PI * f * (double)(*phase_samples + i) / MEDIA_RATE));
    *phase_samples += n;
}

/* Write a 16-bit PCM WAV with a sine tone at rate/channels. */
static inline void h_write_tone_wav(const char *path, int rate, int channels, double f, double secs,
                                    double amp)
{
    int n = (int)(rate * secs);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint32_t data = (uint32_t)(n * channels * 2);
    uint8_t h[44] = "RIFF";
    uint32_t v;
    v = 36 + data;
    memcpy(h + 4, &v, 4);
    memcpy(h + 8, "WAVEfmt ", 8);
    v = 16;
    memcpy(h + 16, &v, 4);
    uint16_t s = 1;
    memcpy(h + 20, &s, 2);
    s = (uint16_t)channels;
    memcpy(h + 22, &s, 2);
    v = (uint32_t)rate;
    memcpy(h + 24, &v, 4);
    v = (uint32_t)(rate * channels * 2);
    memcpy(h + 28, &v, 4);
    s = (uint16_t)(channels * 2);
    memcpy(h + 32, &s, 2);
    s = 16;
    memcpy(h + 34, &s, 2);
    memcpy(h + 36, "data", 4);
    memcpy(h + 40, &data, 4);
    fwrite(h, 1, 44, fp);
    for (int i = 0; i < n; i++) {
        int16_t x = (int16_t)(amp * sin(2 * M_PI * f * i / rate));
        for (int c = 0; c < channels; c++)
            fwrite(&x, 2, 1, fp);
    }
    fclose(fp);
}

/* Goertzel ratio of f over the last `len` captured samples of a peer, skipping `skip`. */
static inline double peer_tone(struct peer *p, int skip, int len, double f)
{
    if (p->ncap < skip + len) return 0;
    return dsp_goertzel_ratio(p->cap + skip, len, f, MEDIA_RATE);
}

static inline double peer_power(struct peer *p, int from, int len)
{
    if (from < 0) from = 0;
    if (from + len > p->ncap) len = p->ncap - from;
    if (len <= 0) return -100;
    return dsp_power_dbov(p->cap + from, len);
}

#endif
