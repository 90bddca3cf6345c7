/*
 * media_bench.c - how many concurrent G.711 sessions the media engine keeps
 * on time on this machine.
 *
 * For growing N it runs N engine sessions, each playing a looped prompt with
 * in-band DTMF detection on, against a load side in this process that sends
 * every session a 20 ms µ-law packet (with a DTMF digit now and then) and
 * timestamps what comes back (kernel receive time). Printed per N:
 * send-interval jitter p50/p99 (|interval - 20 ms| between consecutive
 * packets of a session), late packets (interval > 40 ms), engine ticks that
 * ran late, digits detected / sent since the start, CPU % of the engine and
 * of the load side,
 * and RSS per session. First it measures the raw bound: 172-byte datagrams a
 * second one thread can send and receive on loopback, one socket a session.
 *
 *   media_bench [-w workers] [-s seconds] [-n] [N ...]  (default 500 1000 2000 3000 4000)
 *   -n: workers at nice -10 instead of SCHED_FIFO
 */
#include "base/cw.h"
#include "log/log.h"
#include "loop/loop.h"
#include "media/media.h"
#include "media/media_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HIST_BUCKETS 2000 /* 0.05 ms buckets up to 100 ms */

struct lsess {
    int fd;
    struct sockaddr_in to;
    media_id id;
    uint16_t seq;
    uint32_t ts, ssrc;
    int64_t last_rx_us;
};

static struct lsess *S;
static int nS;
static double g_raw_per_core;
static long g_rss_base;
static uint64_t hist[HIST_BUCKETS + 1];
static uint64_t intervals, late_pkts, rx_pkts;
static int digits_rx, digits_tx;
static uint8_t silence_u[MEDIA_FRAME], dtmf_u[5][MEDIA_FRAME];

static void on_event(const struct media_event *ev, void *arg)
{
    if (ev->type == MEDIA_EV_DTMF && ev->digit == '5') digits_rx++;
}

static int64_t now_us(void)
{
    return cw_mono_us();
}

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- raw bound ---- */

static void raw_bound(int nsock)
{
    int *tx = calloc((size_t)nsock, sizeof *tx), *rx = calloc((size_t)nsock, sizeof *rx);
    struct sockaddr_in *addr = calloc((size_t)nsock, sizeof *addr);
    for (int i = 0; i < nsock; i++) {
        tx[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        rx[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = {.sin_family = AF_INET};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        bind(rx[i], (struct sockaddr *)&a, sizeof a);
        socklen_t l = sizeof addr[i];
        getsockname(rx[i], (struct sockaddr *)&addr[i], &l);
        connect(tx[i], (struct sockaddr *)&addr[i], sizeof addr[i]); /* as the engine does */
    }
    uint8_t pkt[172] = {0x80}, buf[2048];
    int64_t t_send = 0, t_recv = 0;
    uint64_t sent = 0, got = 0;
    int64_t end = now_us() + 2000000;
    while (now_us() < end) {
        int64_t t0 = now_us();
        for (int i = 0; i < nsock; i++)
            if (send(tx[i], pkt, sizeof pkt, 0) > 0) sent++;
        int64_t t1 = now_us();
        for (int i = 0; i < nsock; i++)
            if (recv(rx[i], buf, sizeof buf, MSG_DONTWAIT) > 0) got++;
        int64_t t2 = now_us();
        t_send += t1 - t0;
        t_recv += t2 - t1;
    }
    double srate = sent / (t_send / 1e6), rrate = got / (t_recv / 1e6);
    printf("raw bound (1 thread, %d connected sockets, 172-byte datagrams on loopback):\n", nsock);
    printf("  send %.0f/s, receive %.0f/s, both %.0f/s per thread\n", srate, rrate,
           1.0 / (1.0 / srate + 1.0 / rrate));
    double per_core = 1.0 / (1.0 / srate + 1.0 / rrate) / 50.0;
    printf("  => %.0f sessions per core before any DSP (50 packets/s each way)\n", per_core);
    for (int i = 0; i < nsock; i++) {
        close(tx[i]);
        close(rx[i]);
    }
    free(tx);
    free(rx);
    free(addr);
    fflush(stdout);
    g_raw_per_core = per_core;
}

/* ---- load side ---- */

static void add_sessions(int upto)
{
    for (int i = nS; i < upto; i++) {
        struct lsess *l = &S[i];
        l->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = {.sin_family = AF_INET};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        bind(l->fd, (struct sockaddr *)&a, sizeof a);
        int on = 1;
        setsockopt(l->fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
        socklen_t len = sizeof a;
        getsockname(l->fd, (struct sockaddr *)&a, &len);
        int port;
        if (media_session_open(0, &l->id, &port)) {
            fprintf(stderr, "media_session_open failed at %d\n", i);
            exit(1);
        }
        struct media_remote r = {.port = ntohs(a.sin_port),
                                 .pt = MEDIA_PCMU,
                                 .ptime = 20,
                                 .dtmf_mode = MEDIA_DTMF_INBAND,
                                 .send = true,
                                 .recv = true};
        snprintf(r.ip, sizeof r.ip, "127.0.0.1");
        media_session_set_remote(l->id, &r);
        const char *files[] = {"en/please_hold"};
        media_play(l->id, files, 1, true, 1);
        l->to = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &l->to.sin_addr);
        connect(l->fd, (struct sockaddr *)&l->to, sizeof l->to); /* a phone talks to one peer */
        l->ssrc = (uint32_t)rand();
        l->last_rx_us = 0;
    }
    nS = upto;
}

static void drain(struct lsess *l)
{
    struct mmsghdr mm[8];
    struct iovec iov[8];
    static uint8_t bufs[8][512];
    char ctl[8][64];
    for (;;) {
        for (int i = 0; i < 8; i++) {
            iov[i] = (struct iovec){bufs[i], sizeof bufs[i]};
            memset(&mm[i], 0, sizeof mm[i]);
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
            mm[i].msg_hdr.msg_control = ctl[i];
            mm[i].msg_hdr.msg_controllen = sizeof ctl[i];
        }
        int n = recvmmsg(l->fd, mm, 8, MSG_DONTWAIT, NULL);
        if (n <= 0) return;
        for (int i = 0; i < n; i++) {
            int64_t at = 0;
            struct msghdr *mh = &mm[i].msg_hdr;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(c), sizeof ts);
                    at = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
                }
            if (mm[i].msg_len < 12 || (bufs[i][1] & 0x7F) != 0) continue; /* audio only */
            rx_pkts++;
            if (l->last_rx_us && at) {
                int64_t d = at - l->last_rx_us - 20000;
                if (d < 0) d = -d;
                int b = (int)(d / 50);
                hist[b > HIST_BUCKETS ? HIST_BUCKETS : b]++;
                intervals++;
                if (at - l->last_rx_us > 40000) late_pkts++;
            }
            l->last_rx_us = at;
        }
        if (n < 8) return;
    }
}

static double pct(double p)
{
    uint64_t want = (uint64_t)(p * intervals), acc = 0;
    for (int b = 0; b <= HIST_BUCKETS; b++) {
        acc += hist[b];
        if (acc > want) return b * 0.05;
    }
    return HIST_BUCKETS * 0.05;
}

static void run_step(int n, int secs, int ncores)
{
    add_sessions(n);
    int warm = 2;
    double cpu0 = 0, lcpu0 = 0;
    int64_t t0 = now_us(), tm = 0;
    uint64_t late0 = 0;
    int frames = (warm + secs) * 50;
    uint8_t pkt[12 + MEDIA_FRAME];
    bool overloaded = false;
    int f;
    for (f = 0; f < frames; f++) {
        if (now_us() - t0 > (int64_t)frames * 20000 * 2) { /* the load side cannot keep pace */
            overloaded = true;
            break;
        }
        if (f == warm * 50) { /* start measuring */
            memset(hist, 0, sizeof hist);
            intervals = late_pkts = rx_pkts = 0;
            cpu0 = cpu_s(RUSAGE_SELF);
            lcpu0 = cpu_s(RUSAGE_THREAD);
            tm = now_us();
            late0 = engine_late_ticks();
        }
        for (int i = 0; i < nS; i++) {
            struct lsess *l = &S[i];
            /* every session sends '5' for 100 ms every 2 s, staggered */
            int ph = (f + i * 7) % 100;
            const uint8_t *payload = ph < 5 ? dtmf_u[ph] : silence_u;
            if (ph == 0) digits_tx++;
            rtp_write_header(pkt, 0, false, l->seq++, l->ts, l->ssrc);
            l->ts += MEDIA_FRAME;
            memcpy(pkt + 12, payload, MEDIA_FRAME);
            send(l->fd, pkt, sizeof pkt, 0);
        }
        /* like the engine, read every socket once a tick: no wake-up per packet (on
         * loopback the sender would pay for waking us) */
        for (int i = 0; i < nS; i++)
            drain(&S[i]);
        event_base_loop(loop_base(), EVLOOP_NONBLOCK);
        int64_t until = t0 + (int64_t)(f + 1) * 20000, left = until - now_us();
        if (left > 0) usleep((useconds_t)left);
    }
    if (overloaded || !tm) {
        printf("%6d  overloaded: the engine and the load side need more than this machine gives"
               " (stopped after %d of %d frames)\n",
               n, f, frames);
        fflush(stdout);
        return;
    }
    double wall = (now_us() - tm) / 1e6;
    double cpu = cpu_s(RUSAGE_SELF) - cpu0, lcpu = cpu_s(RUSAGE_THREAD) - lcpu0;
    uint64_t late_ticks = engine_late_ticks() - late0;
    /* let the last digits arrive */
    for (int k = 0; k < 30; k++) {
        event_base_loop(loop_base(), EVLOOP_NONBLOCK);
        usleep(10000);
    }
    double expect = (double)nS * wall * 50;
    printf("%6d  %7.2f  %7.2f  %8llu  %6llu  %5.1f%%  %5d/%-5d  %6.0f%%  %6.0f%%  %7.1f  %6.0f%%\n",
           n, pct(0.50), pct(0.99), (unsigned long long)late_pkts, (unsigned long long)late_ticks,
           100.0 * rx_pkts / expect, digits_rx, digits_tx, 100.0 * (cpu - lcpu) / wall,
           100.0 * lcpu / wall, (double)(rss_kib() - g_rss_base) / nS, 100.0 * n / g_raw_per_core);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int workers = 0, secs = 5;
    bool realtime = true;
    int ns[32], nn = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-w") && i + 1 < argc)
            workers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n"))
            realtime = false;
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            secs = atoi(argv[++i]);
        else if (nn < 32)
            ns[nn++] = atoi(argv[i]);
    }
    if (!nn) {
        int def[] = {500, 1000, 2000, 3000, 4000};
        for (int i = 0; i < 5; i++)
            ns[nn++] = def[i];
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    log_open(NULL);
    log_set_level("error");
    int ncores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    time_t t = time(NULL);
    printf("media_bench: %s", ctime(&t));
    printf("machine: %d cores; engine workers: %d%s\n", ncores, workers ? workers : ncores,
           realtime ? " (SCHED_FIFO)" : " (nice -10)");
    raw_bound(1000);
    raw_bound(4000);

    loop_init();
    char dir[] = "/tmp/cw-media-bench-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    struct media_config cfg = {
        .workers = workers, .rtp_min = 20000, .rtp_max = 40000, .realtime = realtime};
    snprintf(cfg.ip, sizeof cfg.ip, "127.0.0.1");
    snprintf(cfg.sounds_dir, sizeof cfg.sounds_dir, "%s", CW_DEFAULT_SOUNDS_DIR);
    snprintf(cfg.var_dir, sizeof cfg.var_dir, "%s", dir);
    if (media_init(&cfg, on_event, NULL)) return 1;
    /* the load side stands for the phones: it must not be the one starved by the
     * other tenants of this machine, so it gets the priority class of the workers
     * (one step below under SCHED_FIFO) */
    struct sched_param sp = {.sched_priority = 5};
    if (realtime ? pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp)
                 : setpriority(PRIO_PROCESS, 0, -10))
        printf("(load side at normal priority: not permitted)\n");
    /* payloads: silence and 5 frames of DTMF '5' at -10 dBm0 */
    memset(silence_u, 0xFF, sizeof silence_u);
    double amp = dsp_dbm0_amplitude(-10);
    for (int k = 0; k < 5; k++) {
        int16_t pcm[MEDIA_FRAME];
        for (int i = 0; i < MEDIA_FRAME; i++) {
            double tt = (double)(k * MEDIA_FRAME + i) / MEDIA_RATE;
            pcm[i] = (int16_t)(amp * (sin(2 * M_PI * 770 * tt) + sin(2 * M_PI * 1336 * tt)));
        }
        g711_encode_frame(MEDIA_PCMU, pcm, dtmf_u[k], MEDIA_FRAME);
    }
    int max = 0;
    for (int i = 0; i < nn; i++)
        max = ns[i] > max ? ns[i] : max;
    S = calloc((size_t)max, sizeof *S);
    g_rss_base = rss_kib();
    printf("\n%6s  %7s  %7s  %8s  %6s  %6s  %11s  %7s  %7s  %7s  %7s\n", "N", "p50 ms", "p99 ms",
           "late pk", "late t", "recv", "digits", "engine", "load", "KiB/ses", "of raw");
    for (int i = 0; i < nn; i++)
        run_step(ns[i], secs, ncores);
    /* cross-worker bridging: bridge pairs that sit on different workers; each
     * bridge moves one session to its partner's worker */
    int pairs = nS / 2 > 500 ? 500 : nS / 2;
    int64_t tb = now_us();
    for (int i = 0; i < pairs; i++)
        media_bridge(S[2 * i].id, S[2 * i + 1].id);
    double post_us = (double)(now_us() - tb) / (pairs ? pairs : 1);
    uint64_t moves;
    double avg_us, max_us;
    for (int k = 0; k < 300; k++) { /* up to 3 s for the workers to finish the moves */
        event_base_loop(loop_base(), EVLOOP_NONBLOCK);
        usleep(10000);
        engine_move_stats(&moves, &avg_us, &max_us);
        if (moves >= (uint64_t)pairs) break;
    }
    printf("\ncross-worker bridge of %d pairs: %llu sessions moved, %.1f us a media_bridge() call"
           " on the core,\n  %.0f us average / %.0f us max from the call to the session running on"
           " its new worker\n  (audio then flows on the next 20 ms tick)\n",
           pairs, (unsigned long long)moves, post_us, avg_us, max_us);
    for (int i = 0; i < nS; i++) {
        media_session_close(S[i].id);
        close(S[i].fd);
    }
    media_shutdown();
    loop_free();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    free(S);
    return 0;
}
