/*
 * rtp.c - cwload's RTP engine: one UDP socket a call, run by a few threads
 * on a 20 ms tick.
 *
 * Each tick a thread drains every session's socket with recvmmsg (kernel
 * receive timestamps, so a busy tick does not blur the figures), then sends
 * that session's next packet: a G.711 µ-law frame of its tone, or an
 * RFC 4733 telephone-event while a digit is due (the three end packets of a
 * digit leave in one sendmmsg). One socket a call is what a phone does and
 * what the platform must cope with, so datagrams cannot be batched across
 * calls; the batching is per socket.
 *
 * Received packets are accounted per RFC 3550: loss from the extended
 * highest sequence number (A.1, A.3), interarrival jitter J (A.8), and
 * |D(i-1,i)| per packet, whose distribution and the count above late_ms
 * ("late": later than its predecessor's pace by more than a 40 ms jitter
 * buffer holds) say how steadily the platform sends. Audio frames are
 * judged for energy and for the tone the far end is expected to send.
 *
 * Ownership: the SIP thread owns a session until rtp_start(); then the
 * engine thread does, and frees it after rtp_stop(). The only fields both
 * touch afterwards are the two atomics (remote, stop).
 */
#include "cwload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK_US      20000
#define FRAME        160
#define RECV_BATCH   8
#define PKT_MAX      512
#define MAX_CATCHUP  5 /* ticks run back to back after a stall before skipping ahead */
#define ACTIVE_MS    (184.0 * 184.0) /* about -45 dBFS mean square */
#define TONE_SHARE   0.5
#define DTMF_PACKETS 5       /* 100 ms digits */
#define DTMF_GAP     3       /* 60 ms of audio between digits */
#define JUDGE_TICKS  50      /* a session shorter than 1 s is not judged */
#define TS_JUMP      80000.0 /* 10 s in timestamp units */

struct stream { /* one SSRC as received (RFC 3550 A.1) */
    bool init;
    uint32_t ssrc;
    uint16_t max_seq;
    uint32_t cycles, base_seq, bad_seq, received;
    double transit, jitter; /* in timestamp units */
    bool have_transit;
};

struct rtp_sess {
    int fd;
    _Atomic uint64_t remote; /* ip << 16 | port, network order values */
    uint64_t connected;      /* the remote the socket is connect()ed to, 0 = none */
    _Atomic int stop;
    struct rtp_sess *next; /* in a thread's inbox or run list */
    enum rtp_role role;
    /* sending */
    const uint8_t *tone;
    uint32_t ssrc, ts;
    uint16_t seq;
    uint64_t tick;
    bool marker;
    char dtmf[16];
    int dtmf_pt, dtmf_idx, dtmf_pkt, dtmf_gap;
    uint64_t dtmf_start_tick;
    uint32_t dtmf_ts;
    /* receiving */
    struct stream st;
    uint64_t expected, received, dups;
    double coeff;
    bool expect_tone;
    uint32_t frames_active, frames_tone;
    double last_jitter_ms;
};

struct rtp_thread {
    pthread_t th;
    pthread_mutex_t lock;
    struct rtp_sess *inbox;
    struct rtp_sess **run;
    size_t nrun, caprun;
    _Atomic int nsessions; /* for placing new sessions */
    struct rtp_totals tot;
    bool quit;
};

struct rtp_totals RT;

static struct rtp_thread *T;
static int nthreads;
static int late_units; /* late_ms in timestamp units */
static _Atomic bool stopping;
static _Atomic unsigned next_thread;
static bool realtime;
static _Atomic bool realtime_refused;

int64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static uint64_t pack_addr(const struct sockaddr_in *a)
{
    return ((uint64_t)a->sin_addr.s_addr << 16) | a->sin_port;
}

static void unpack_addr(uint64_t v, struct sockaddr_in *a)
{
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = (in_addr_t)(v >> 16);
    a->sin_port = (in_port_t)(v & 0xFFFF);
}

/* ---------------------------------------------------------------- sessions */

struct rtp_sess *rtp_open(const char *local_ip, int *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return NULL;
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, local_ip, &a.sin_addr);
    int on = 1;
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        close(fd);
        return NULL;
    }
    struct rtp_sess *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return NULL;
    }
    s->fd = fd;
    *port = ntohs(a.sin_port);
    return s;
}

void rtp_discard(struct rtp_sess *s)
{
    if (!s) return;
    close(s->fd);
    free(s);
}

void rtp_start(struct rtp_sess *s, const struct sockaddr_in *remote, enum rtp_role role, int tx_hz,
               int expect_hz, const char *dtmf, int dtmf_pt, int dtmf_delay_ms)
{
    atomic_store(&s->remote, pack_addr(remote));
    s->role = role;
    s->tone = tone_table(tx_hz);
    s->ssrc = (uint32_t)random() ^ ((uint32_t)random() << 16);
    s->seq = (uint16_t)random();
    s->ts = (uint32_t)random();
    s->marker = true;
    if (dtmf && *dtmf && dtmf_pt > 0) {
        snprintf(s->dtmf, sizeof s->dtmf, "%s", dtmf);
        s->dtmf_pt = dtmf_pt;
        s->dtmf_start_tick = (uint64_t)(dtmf_delay_ms / 20);
        s->dtmf_pkt = -1;
    }
    s->expect_tone = expect_hz > 0;
    s->coeff = expect_hz > 0 ? goertzel_coeff(expect_hz) : 0;
    /* the least loaded thread, ties broken round-robin */
    unsigned first = atomic_fetch_add(&next_thread, 1) % (unsigned)nthreads;
    struct rtp_thread *best = &T[first];
    for (int i = 0; i < nthreads; i++)
        if (T[i].nsessions < best->nsessions) best = &T[i];
    pthread_mutex_lock(&best->lock);
    s->next = best->inbox;
    best->inbox = s;
    pthread_mutex_unlock(&best->lock);
    best->nsessions++;
}

void rtp_set_remote(struct rtp_sess *s, const struct sockaddr_in *remote)
{
    atomic_store(&s->remote, pack_addr(remote));
}

void rtp_stop(struct rtp_sess *s)
{
    atomic_store(&s->stop, 1);
}

/* ---------------------------------------------------------------- receiving */

static void stream_close(struct rtp_sess *s)
{
    struct stream *st = &s->st;
    if (!st->init) return;
    uint64_t ext_max = (uint64_t)st->cycles + st->max_seq;
    uint64_t expected = ext_max - st->base_seq + 1;
    s->expected += expected;
    s->received += st->received;
    s->last_jitter_ms = st->jitter / 8.0;
    st->init = false;
}

static void stream_init(struct stream *st, uint32_t ssrc, uint16_t seq)
{
    memset(st, 0, sizeof *st);
    st->init = true;
    st->ssrc = ssrc;
    st->base_seq = seq;
    st->max_seq = seq;
    st->bad_seq = 65537;
    st->received = 1;
}

/* RFC 3550 A.1, without the probation: the platform is a known sender.
 * false: the packet is a duplicate or a stray and is not looked at. */
static bool seq_update(struct rtp_sess *s, uint32_t ssrc, uint16_t seq)
{
    struct stream *st = &s->st;
    uint16_t udelta = (uint16_t)(seq - st->max_seq);
    if (udelta == 0) {
        s->dups++;
        return false;
    }
    if (udelta < 3000) {
        if (seq < st->max_seq) st->cycles += 65536;
        st->max_seq = seq;
    } else if (udelta <= 65536 - 100) {
        /* a very large jump: the sender restarted if it happens twice in a row */
        if (seq != st->bad_seq) {
            st->bad_seq = (uint32_t)(seq + 1) & 0xFFFF;
            return false;
        }
        stream_close(s);
        stream_init(st, ssrc, seq);
        return true;
    }
    /* else a late packet from before max_seq: counted, max_seq stays */
    st->received++;
    return true;
}

static void on_packet(struct rtp_thread *t, struct rtp_sess *s, const uint8_t *b, int len,
                      int64_t arrival_ns)
{
    if (len < 12 || (b[0] >> 6) != 2) {
        t->tot.rx_bad++;
        return;
    }
    int off = 12 + 4 * (b[0] & 0x0F);
    if (b[0] & 0x10) {
        if (off + 4 > len) {
            t->tot.rx_bad++;
            return;
        }
        off += 4 + 4 * ((b[off + 2] << 8) | b[off + 3]);
    }
    int end = len;
    if (b[0] & 0x20) end -= b[len - 1];
    if (off > end) {
        t->tot.rx_bad++;
        return;
    }
    int pt = b[1] & 0x7F;
    if (pt >= 72 && pt <= 76) return; /* RTCP on the RTP port */
    uint16_t seq = (uint16_t)((b[2] << 8) | b[3]);
    uint32_t ts = ((uint32_t)b[4] << 24) | ((uint32_t)b[5] << 16) | ((uint32_t)b[6] << 8) | b[7];
    uint32_t ssrc =
        ((uint32_t)b[8] << 24) | ((uint32_t)b[9] << 16) | ((uint32_t)b[10] << 8) | b[11];
    t->tot.rx_packets++;

    struct stream *st = &s->st;
    if (st->init && st->ssrc != ssrc) stream_close(s);
    if (!st->init)
        stream_init(st, ssrc, seq);
    else if (!seq_update(s, ssrc, seq))
        return;
    /* A.8: transit in timestamp units (the arrival clock is the kernel's) */
    double arrival = (double)arrival_ns * 8000.0 / 1e9;
    double transit = arrival - (double)ts;
    if (pt == 0) { /* telephone-events repeat their timestamp: audio only */
        double d = st->have_transit ? fabs(transit - st->transit) : 0;
        if (d > TS_JUMP) {
            /* the sender's clock jumped (a new source behind the same SSRC, without a
             * marker): counted apart, and the timing starts again from this packet */
            t->tot.ts_jumps++;
        } else if (st->have_transit) {
            st->jitter += (d - st->jitter) / 16.0;
            double bucket = d / 0.8; /* 0.1 ms */
            t->tot.pdv_hist[bucket >= PDV_BUCKETS ? PDV_BUCKETS : (int)bucket]++;
            if (transit - st->transit > late_units) t->tot.rx_late++;
        }
        st->transit = transit;
        st->have_transit = true;
        if (end - off >= FRAME) {
            double msq, share;
            frame_analyse(b + off, FRAME, s->coeff, &msq, &share);
            if (msq > ACTIVE_MS) {
                s->frames_active++;
                if (s->expect_tone && share > TONE_SHARE) s->frames_tone++;
            }
        }
    }
}

static void drain(struct rtp_thread *t, struct rtp_sess *s)
{
    uint8_t bufs[RECV_BATCH][PKT_MAX];
    char ctl[RECV_BATCH][CMSG_SPACE(sizeof(struct timespec))];
    struct mmsghdr mm[RECV_BATCH];
    struct iovec iov[RECV_BATCH];
    for (;;) {
        for (int i = 0; i < RECV_BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = PKT_MAX;
            memset(&mm[i], 0, sizeof mm[i]);
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
            mm[i].msg_hdr.msg_control = ctl[i];
            mm[i].msg_hdr.msg_controllen = sizeof ctl[i];
        }
        int n = recvmmsg(s->fd, mm, RECV_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) return;
        struct timespec fallback;
        clock_gettime(CLOCK_REALTIME, &fallback);
        for (int i = 0; i < n; i++) {
            int64_t ns = (int64_t)fallback.tv_sec * 1000000000 + fallback.tv_nsec;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&mm[i].msg_hdr); c;
                 c = CMSG_NXTHDR(&mm[i].msg_hdr, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(c), sizeof ts);
                    ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
                }
            on_packet(t, s, bufs[i], (int)mm[i].msg_len, ns);
        }
        if (n < RECV_BATCH) return;
    }
}

/* ---------------------------------------------------------------- sending */

static int dtmf_code(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c == '*') return 10;
    if (c == '#') return 11;
    if (c >= 'A' && c <= 'D') return 12 + c - 'A';
    return -1;
}

static void put_header(uint8_t *p, int pt, bool marker, uint16_t seq, uint32_t ts, uint32_t ssrc)
{
    p[0] = 0x80;
    p[1] = (uint8_t)((marker ? 0x80 : 0) | pt);
    p[2] = (uint8_t)(seq >> 8);
    p[3] = (uint8_t)seq;
    p[4] = (uint8_t)(ts >> 24);
    p[5] = (uint8_t)(ts >> 16);
    p[6] = (uint8_t)(ts >> 8);
    p[7] = (uint8_t)ts;
    p[8] = (uint8_t)(ssrc >> 24);
    p[9] = (uint8_t)(ssrc >> 16);
    p[10] = (uint8_t)(ssrc >> 8);
    p[11] = (uint8_t)ssrc;
}

/* The next digit's packets this tick, into pkt; how many (0 = send audio). */
static int dtmf_packets(struct rtp_thread *t, struct rtp_sess *s, uint8_t pkt[3][12 + FRAME])
{
    if (!s->dtmf_pt || !s->dtmf[s->dtmf_idx] || s->tick < s->dtmf_start_tick) return 0;
    if (s->dtmf_gap > 0) {
        s->dtmf_gap--;
        return 0;
    }
    int code = dtmf_code(s->dtmf[s->dtmf_idx]);
    if (code < 0) {
        s->dtmf_idx++;
        return 0;
    }
    if (s->dtmf_pkt < 0) { /* a new event: its timestamp is the current one */
        s->dtmf_pkt = 0;
        s->dtmf_ts = s->ts;
    }
    int k = ++s->dtmf_pkt;
    bool end = k >= DTMF_PACKETS;
    uint16_t dur = (uint16_t)(k * FRAME);
    int n = end ? 3 : 1; /* the end packet three times (RFC 4733 2.5.1.4) */
    for (int i = 0; i < n; i++) {
        put_header(pkt[i], s->dtmf_pt, k == 1 && i == 0, s->seq++, s->dtmf_ts, s->ssrc);
        pkt[i][12] = (uint8_t)code;
        pkt[i][13] = (uint8_t)((end ? 0x80 : 0) | 10);
        pkt[i][14] = (uint8_t)(dur >> 8);
        pkt[i][15] = (uint8_t)dur;
    }
    if (end) {
        s->dtmf_idx++;
        s->dtmf_pkt = -1;
        s->dtmf_gap = DTMF_GAP;
        s->marker = true;
        t->tot.dtmf_digits++;
    }
    return n;
}

/* Connect the socket to the far end (again after a re-offer moved it): the
 * kernel keeps the route, and only the far end's packets are received. */
static void follow_remote(struct rtp_sess *s)
{
    uint64_t r = atomic_load_explicit(&s->remote, memory_order_relaxed);
    if (r == s->connected) return;
    struct sockaddr_in to;
    unpack_addr(r, &to);
    if (connect(s->fd, (struct sockaddr *)&to, sizeof to) == 0) s->connected = r;
}

static void send_tick(struct rtp_thread *t, struct rtp_sess *s)
{
    uint8_t pkt[3][12 + FRAME];
    struct iovec iov[3];
    struct mmsghdr mm[3];
    int n = dtmf_packets(t, s, pkt);
    size_t len = 16;
    if (n == 0) {
        put_header(pkt[0], 0, s->marker, s->seq++, s->ts, s->ssrc);
        s->marker = false;
        if (s->tone)
            memcpy(pkt[0] + 12, s->tone + (s->tick % 50) * FRAME, FRAME);
        else
            memset(pkt[0] + 12, 0xFF, FRAME);
        n = 1;
        len = 12 + FRAME;
    }
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = pkt[i];
        iov[i].iov_len = len;
        memset(&mm[i], 0, sizeof mm[i]);
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    int sent = sendmmsg(s->fd, mm, (unsigned)n, MSG_DONTWAIT);
    if (sent > 0) t->tot.tx_packets += (uint64_t)sent;
    if (sent < n) t->tot.tx_errors += (uint64_t)(n - (sent > 0 ? sent : 0));
    s->ts += FRAME;
    s->tick++;
}

/* ---------------------------------------------------------------- finishing */

static void finish(struct rtp_thread *t, struct rtp_sess *s)
{
    drain(t, s);
    stream_close(s);
    struct rtp_totals *tot = &t->tot;
    tot->rx_expected += s->expected;
    tot->rx_lost += s->expected > s->received ? s->expected - s->received : 0;
    tot->rx_dup += s->dups;
    struct rtp_role_totals *r = &tot->role[s->role];
    r->sessions++;
    if (s->tick >= JUDGE_TICKS) {
        int need = O.min_audio_ms / 20;
        r->judged++;
        if ((int)s->frames_active < need)
            r->no_audio++;
        else if (s->expect_tone && (int)s->frames_tone < need)
            r->no_tone++;
        if (s->expected) {
            if (tot->njitter == tot->capjitter) {
                tot->capjitter = tot->capjitter ? tot->capjitter * 2 : 1024;
                tot->jitter_ms = realloc(tot->jitter_ms, tot->capjitter * sizeof(double));
                if (!tot->jitter_ms) abort();
            }
            tot->jitter_ms[tot->njitter++] = s->last_jitter_ms;
        }
    }
    close(s->fd);
    free(s);
}

/* ---------------------------------------------------------------- threads */

static void add_running(struct rtp_thread *t, struct rtp_sess *s)
{
    if (t->nrun == t->caprun) {
        t->caprun = t->caprun ? t->caprun * 2 : 256;
        t->run = realloc(t->run, t->caprun * sizeof *t->run);
        if (!t->run) abort();
    }
    t->run[t->nrun++] = s;
}

static void *thread_main(void *arg)
{
    struct rtp_thread *t = arg;
    if (realtime) {
        /* the platform's media workers run SCHED_FIFO too: an equal footing */
        struct sched_param sp = {.sched_priority = 10};
        if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) != 0)
            atomic_store(&realtime_refused, true);
    }
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        pthread_mutex_lock(&t->lock);
        struct rtp_sess *in = t->inbox;
        t->inbox = NULL;
        bool quit = t->quit;
        pthread_mutex_unlock(&t->lock);
        for (; in; in = in->next)
            add_running(t, in);
        for (size_t i = 0; i < t->nrun;) {
            struct rtp_sess *s = t->run[i];
            if (quit || atomic_load_explicit(&s->stop, memory_order_acquire)) {
                finish(t, s);
                t->run[i] = t->run[--t->nrun];
                t->nsessions--;
                continue;
            }
            follow_remote(s);
            drain(t, s);
            if (s->connected) send_tick(t, s);
            i++;
        }
        if (quit) break;
        t->tot.ticks++;
        /* the next tick; after a stall run a few back to back, then skip ahead */
        next.tv_nsec += TICK_US * 1000;
        if (next.tv_nsec >= 1000000000) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t behind =
            ((int64_t)now.tv_sec - next.tv_sec) * 1000000 + (now.tv_nsec - next.tv_nsec) / 1000;
        if (behind > 5000) t->tot.ticks_late++;
        if (behind > MAX_CATCHUP * TICK_US) {
            int64_t skip = behind / TICK_US;
            t->tot.ticks_skipped += (uint64_t)skip;
            next = now;
        }
        if (behind < 0) clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    return NULL;
}

bool rtp_engine_realtime_refused(void)
{
    return atomic_load(&realtime_refused);
}

int rtp_engine_start(int threads, int late_ms, bool rt)
{
    realtime = rt;
    nthreads = threads > 0 ? threads : 1;
    late_units = late_ms * 8;
    T = calloc((size_t)nthreads, sizeof *T);
    if (!T) return -1;
    for (int i = 0; i < nthreads; i++) {
        pthread_mutex_init(&T[i].lock, NULL);
        if (pthread_create(&T[i].th, NULL, thread_main, &T[i]) != 0) {
            nthreads = i;
            return -1;
        }
    }
    return 0;
}

static void merge(struct rtp_totals *a, const struct rtp_totals *b)
{
    a->rx_packets += b->rx_packets;
    a->rx_expected += b->rx_expected;
    a->rx_lost += b->rx_lost;
    a->rx_late += b->rx_late;
    a->rx_dup += b->rx_dup;
    a->rx_bad += b->rx_bad;
    a->tx_packets += b->tx_packets;
    a->tx_errors += b->tx_errors;
    a->dtmf_digits += b->dtmf_digits;
    a->ticks += b->ticks;
    a->ticks_late += b->ticks_late;
    a->ticks_skipped += b->ticks_skipped;
    a->ts_jumps += b->ts_jumps;
    for (int i = 0; i <= PDV_BUCKETS; i++)
        a->pdv_hist[i] += b->pdv_hist[i];
    for (int r = 0; r < 2; r++) {
        a->role[r].sessions += b->role[r].sessions;
        a->role[r].judged += b->role[r].judged;
        a->role[r].no_audio += b->role[r].no_audio;
        a->role[r].no_tone += b->role[r].no_tone;
    }
    if (b->njitter) {
        a->jitter_ms = realloc(a->jitter_ms, (a->njitter + b->njitter) * sizeof(double));
        if (!a->jitter_ms) abort();
        memcpy(a->jitter_ms + a->njitter, b->jitter_ms, b->njitter * sizeof(double));
        a->njitter += b->njitter;
    }
}

void rtp_engine_stop(void)
{
    if (atomic_exchange(&stopping, true)) return;
    for (int i = 0; i < nthreads; i++) {
        pthread_mutex_lock(&T[i].lock);
        T[i].quit = true;
        pthread_mutex_unlock(&T[i].lock);
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(T[i].th, NULL);
        /* sessions handed over after the last tick */
        for (struct rtp_sess *s = T[i].inbox, *n; s; s = n) {
            n = s->next;
            finish(&T[i], s);
        }
        merge(&RT, &T[i].tot);
        free(T[i].tot.jitter_ms);
        free(T[i].run);
        pthread_mutex_destroy(&T[i].lock);
    }
    free(T);
    T = NULL;
}
