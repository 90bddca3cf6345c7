/*
 * worker.c - the media worker threads: each owns a set of RTP sessions and
 * runs them on a 20 ms timerfd tick.
 *
 * A tick reads every RTP socket once (recvmmsg, kernel receive
 * timestamps), takes one frame per session from its jitter buffer, runs
 * DTMF/talk/fax receivers, mixes bridges, conference rooms and supervisor
 * legs, plays prompts, tones and music on hold, records, then encodes and
 * sends (sendmmsg). Sessions that must hear each other live on the same
 * worker: the core moves a session (CMD_MOVE -> CMD_ADOPT) before it joins a
 * bridge, room or spy group, so mixing never crosses threads.
 *
 * Runs on a media worker: never touches call state; talks to the core only
 * through its command queue and engine_emit().
 */
#include "media/media_int.h"
#include "base/cw.h"
#include "log/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <spandsp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROOM    64
#define MAX_SPIES   4
#define RECV_BATCH  16
#define PKT_MAX     1500
#define TALK_ON_DB  -38.0
#define TALK_OFF_DB -45.0
#define SILENCE_DB  -50.0
#define DTMF_QUEUE  32
/* How long the SDP address must stay silent before another source may be latched (NAT). */
#define LATCH_GRACE_MS 500

struct player {
    int kind; /* 0 none, 1 files, 2 tone, 3 moh */
    uint32_t tag;
    struct sound **snd;
    int n, idx;
    size_t pos;
    bool loop;
    struct tone_gen tg;
    struct moh_stream *moh;
};

struct room {
    uint32_t id;
    struct msession *m[MAX_ROOM];
    int n;
    struct tone_gen cue;
    bool cue_on;
    int32_t sum[MEDIA_FRAME];
    struct wav_writer rec; /* media_conf_record(): the whole room, mono */
    bool rec_on;
    uint32_t rec_tag;
    int64_t rec_frames;
    struct room *next;
};

struct msession {
    media_id id;
    struct worker *w;
    struct msession *hnext, *next, *prev;
    int fd, fd_rtcp, port;

    struct sockaddr_in raddr, rcaddr;     /* where we send RTP and RTCP (the latched sources) */
    struct sockaddr_in sdp_rtp, sdp_rtcp; /* what the SDP said */
    bool have_remote, latched, rtcp_latched, connected;
    bool latched_sdp, rtcp_latched_sdp; /* latched to the SDP address: for good */
    int pt, dtmf_pt;
    enum media_dtmf_mode dmode;
    bool send, recv;

    uint32_t ssrc, tx_ts;
    uint16_t tx_seq;
    bool tx_marker;
    uint64_t tx_packets, tx_octets;

    bool have_rx_ssrc;
    uint32_t rx_ssrc;
    struct rtp_rx_stats rxs;
    struct jbuf jb;
    uint64_t rx_packets, rx_bad, rx_foreign;
    int64_t last_rx_ms, remote_set_ms;
    bool timeout_sent;
    g722_encode_state_t *g722e;
    g722_decode_state_t *g722d;

    int64_t next_rtcp_ms;
    uint32_t last_sr_mid;
    int64_t last_sr_rx_us;
    double remote_loss, remote_jitter_ms;

    int16_t in[MEDIA_FRAME], out[MEDIA_FRAME];

    dtmf_rx_state_t *drx;
    struct dtmf4733_rx r4733;
    bool rfc_seen;
    int64_t samples_in, inband_start, pend_start, pend_end;
    char inband_digit, pend_digit;

    char dq[DTMF_QUEUE];
    int dq_ms[DTMF_QUEUE];
    int dq_n;
    struct {
        bool active;
        int code, total, sent, ends, gap;
        uint32_t ts;
    } ev;
    dtmf_tx_state_t *dtx;
    bool dtx_active;

    struct player pl;
    uint32_t play_gen; /* bumped by every play/tone/moh/stop command */

    struct msession *peer;
    struct room *room;
    unsigned conf_flags;
    struct msession *spy_c, *spy_a; /* this session supervises c and a */
    int spy_mode;
    struct msession *spies[MAX_SPIES]; /* supervisors of this session */
    int nspies;

    struct wav_writer rec;
    bool rec_on, rec_paused, rec_stereo;
    int64_t rec_frames, rec_max_frames, rec_quiet, rec_quiet_max;
    uint32_t rec_tag;

    bool talk_detect, talking;
    int talk_run, talk_hang;

    fax_state_t *fax;
    uint32_t fax_tag;
    bool fax_sending;
    bool fax_finished;
    int fax_code;
};

struct pending {
    media_id id;
    struct mcmd *head, *tail;
    struct pending *next;
};

struct worker {
    int idx;
    pthread_t th;
    cw_queue *q;
    int ep, tfd;
    struct msession **hash;
    unsigned hsize, count;
    struct msession *head;
    struct room *rooms;
    struct pending *pend;
    int64_t now_ms;
    uint64_t ticks, late;
    bool quit;
    /* receive batch buffers */
    struct mmsghdr msgs[RECV_BATCH];
    struct iovec iov[RECV_BATCH];
    uint8_t bufs[RECV_BATCH][PKT_MAX];
    struct sockaddr_in from[RECV_BATCH];
    char ctl[RECV_BATCH][64];
};

static struct worker *workers;
static int nworkers;
static uint64_t move_count, move_us_sum, move_us_max;

/* ---- small helpers ---- */

struct mcmd *mcmd_new(int op, media_id id)
{
    struct mcmd *c = cw_calloc(1, sizeof *c);
    c->m.type = op;
    c->id = id;
    return c;
}

void mcmd_free(struct mcmd *c)
{
    if (!c) return;
    for (int i = 0; i < c->nfiles; i++)
        free(c->files[i]);
    free(c->files);
    free(c->str);
    if (c->sess) engine_session_free(c->sess);
    free(c);
}

int engine_workers(void)
{
    return nworkers;
}

void engine_post(int w, struct mcmd *c)
{
    cw_queue_push(workers[w].q, &c->m);
}

void engine_move_stats(uint64_t *moves, double *avg_us, double *max_us)
{
    uint64_t n = __atomic_load_n(&move_count, __ATOMIC_RELAXED);
    *moves = n;
    *avg_us = n ? (double)__atomic_load_n(&move_us_sum, __ATOMIC_RELAXED) / (double)n : 0;
    *max_us = (double)__atomic_load_n(&move_us_max, __ATOMIC_RELAXED);
}

uint64_t engine_late_ticks(void)
{
    uint64_t n = 0;
    for (int i = 0; i < nworkers; i++)
        n += __atomic_load_n(&workers[i].late, __ATOMIC_RELAXED);
    return n;
}

static void emit(struct msession *s, int type, uint32_t tag, int reason)
{
    struct media_event ev = {.type = type, .id = s->id, .tag = tag, .reason = reason};
    engine_emit(&ev);
}

struct msession *engine_session_new(media_id id, int fd, int fd_rtcp, int port)
{
    struct msession *s = cw_calloc(1, sizeof *s);
    s->id = id;
    s->fd = fd;
    s->fd_rtcp = fd_rtcp;
    s->port = port;
    s->pt = MEDIA_PCMU;
    s->send = s->recv = true;
    /* SSRC, first timestamp and sequence number: one system call for the three */
    unsigned char rnd[sizeof s->ssrc + sizeof s->tx_ts + sizeof s->tx_seq];
    cw_random_bytes(rnd, sizeof rnd);
    memcpy(&s->ssrc, rnd, sizeof s->ssrc);
    memcpy(&s->tx_ts, rnd + sizeof s->ssrc, sizeof s->tx_ts);
    memcpy(&s->tx_seq, rnd + sizeof s->ssrc + sizeof s->tx_ts, sizeof s->tx_seq);
    s->tx_marker = true;
    jb_init(&s->jb, true);
    return s;
}

static void player_clear(struct player *p)
{
    for (int i = 0; i < p->n; i++)
        sound_unref(p->snd[i]);
    free(p->snd);
    p->snd = NULL;
    p->n = 0;
    moh_unref(p->moh);
    p->moh = NULL;
    p->kind = 0;
}

void engine_session_free(struct msession *s)
{
    if (!s) return;
    player_clear(&s->pl);
    if (s->rec_on) wav_writer_close(&s->rec);
    if (s->drx) dtmf_rx_free(s->drx);
    if (s->dtx) dtmf_tx_free(s->dtx);
    if (s->fax) fax_free(s->fax);
    if (s->g722e) g722_encode_free(s->g722e);
    if (s->g722d) g722_decode_free(s->g722d);
    jb_free(&s->jb);
    if (s->fd >= 0) close(s->fd);
    if (s->fd_rtcp >= 0) close(s->fd_rtcp);
    free(s);
}

/* ---- session table of a worker ---- */

static struct msession *find(struct worker *w, media_id id)
{
    for (struct msession *s = w->hash[id & (w->hsize - 1)]; s; s = s->hnext)
        if (s->id == id) return s;
    return NULL;
}

static void hash_grow(struct worker *w)
{
    unsigned nsize = w->hsize * 2;
    struct msession **nh = cw_calloc(nsize, sizeof *nh);
    for (unsigned i = 0; i < w->hsize; i++) {
        struct msession *s = w->hash[i];
        while (s) {
            struct msession *n = s->hnext;
            s->hnext = nh[s->id & (nsize - 1)];
            nh[s->id & (nsize - 1)] = s;
            s = n;
        }
    }
    free(w->hash);
    w->hash = nh;
    w->hsize = nsize;
}

static void attach(struct worker *w, struct msession *s)
{
    if (w->count + 1 > w->hsize) hash_grow(w);
    s->w = w;
    unsigned b = s->id & (w->hsize - 1);
    s->hnext = w->hash[b];
    w->hash[b] = s;
    s->prev = NULL;
    s->next = w->head;
    if (w->head) w->head->prev = s;
    w->head = s;
    w->count++;
}

static void detach(struct worker *w, struct msession *s)
{
    struct msession **pp = &w->hash[s->id & (w->hsize - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp) *pp = s->hnext;
    if (s->prev)
        s->prev->next = s->next;
    else
        w->head = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = s->hnext = NULL;
    w->count--;
    s->w = NULL;
}

/* ---- relations: bridge, room, spies ---- */

static void room_leave(struct msession *s, bool cue);

static void unbridge(struct msession *s)
{
    if (s->peer) {
        s->peer->peer = NULL;
        s->peer = NULL;
    }
}

static void spy_remove_from(struct msession *target, struct msession *sup)
{
    if (!target) return;
    for (int i = 0; i < target->nspies; i++) {
        if (target->spies[i] == sup) {
            target->spies[i] = target->spies[--target->nspies];
            return;
        }
    }
}

static void spy_stop(struct msession *sup)
{
    spy_remove_from(sup->spy_c, sup);
    if (sup->spy_a != sup->spy_c) spy_remove_from(sup->spy_a, sup);
    sup->spy_c = sup->spy_a = NULL;
    sup->spy_mode = 0;
}

/* Drop every relation of s (before it closes or leaves the worker). */
static void relations_clear(struct msession *s)
{
    unbridge(s);
    room_leave(s, true);
    spy_stop(s);
    while (s->nspies) {
        struct msession *sup = s->spies[0];
        spy_stop(sup);
    }
}

static struct room *room_find(struct worker *w, uint32_t id, bool create)
{
    for (struct room *r = w->rooms; r; r = r->next)
        if (r->id == id) return r;
    if (!create) return NULL;
    struct room *r = cw_calloc(1, sizeof *r);
    r->id = id;
    r->next = w->rooms;
    w->rooms = r;
    return r;
}

static void room_cue(struct room *r, const struct tone_plan *p)
{
    tone_gen_start(&r->cue, p);
    r->cue_on = true;
}

static void room_record_stop(struct room *r, int reason)
{
    if (!r->rec_on) return;
    if (wav_writer_close(&r->rec)) {
        log_error("media", "room %u: recording could not be finished", r->id);
        reason = -1;
    }
    r->rec_on = false;
    struct media_event ev = {.type = MEDIA_EV_RECORD_DONE,
                             .tag = r->rec_tag,
                             .reason = reason,
                             .ms = r->rec_frames * 20,
                             .room = r->id};
    engine_emit(&ev);
}

static void room_leave(struct msession *s, bool cue)
{
    struct room *r = s->room;
    if (!r) return;
    for (int i = 0; i < r->n; i++) {
        if (r->m[i] == s) {
            r->m[i] = r->m[--r->n];
            break;
        }
    }
    s->room = NULL;
    if (s->talking) {
        s->talking = false;
        emit(s, MEDIA_EV_TALK_STOP, 0, 0);
    }
    if (cue && !(s->conf_flags & MEDIA_CONF_NO_TONES) && r->n > 0) room_cue(r, tone_plan_leave());
    s->conf_flags = 0;
    if (r->n == 0) {
        room_record_stop(r, 0);
        struct worker *w = s->w;
        struct room **pp = &w->rooms;
        while (*pp && *pp != r)
            pp = &(*pp)->next;
        if (*pp) *pp = r->next;
        free(r);
    }
}

/* ---- playback ---- */

static void play_finish(struct msession *s, int reason)
{
    if (!s->pl.kind) return;
    uint32_t tag = s->pl.tag;
    player_clear(&s->pl);
    emit(s, MEDIA_EV_PLAY_DONE, tag, reason);
}

/* Fill out from the player; false when there is nothing (left) to play. */
static bool player_fill(struct msession *s, int16_t *out)
{
    struct player *p = &s->pl;
    switch (p->kind) {
    case 1: {
        int i = 0;
        while (i < MEDIA_FRAME) {
            if (p->idx >= p->n) {
                if (!p->loop || p->n == 0) break;
                p->idx = 0;
                p->pos = 0;
            }
            struct sound *sd = p->snd[p->idx];
            size_t take = CW_MIN((size_t)(MEDIA_FRAME - i), sd->n - p->pos);
            memcpy(out + i, sd->pcm + p->pos, take * sizeof *out);
            i += (int)take;
            p->pos += take;
            if (p->pos >= sd->n) {
                p->idx++;
                p->pos = 0;
            }
        }
        if (i == 0) {
            play_finish(s, 0);
            return false;
        }
        if (i < MEDIA_FRAME) memset(out + i, 0, (size_t)(MEDIA_FRAME - i) * sizeof *out);
        return true;
    }
    case 2:
        if (!tone_gen_fill(&p->tg, out, MEDIA_FRAME)) {
            play_finish(s, 0);
            return false;
        }
        return true;
    case 3: {
        const int16_t *pcm;
        const uint8_t *u, *a;
        moh_frame(p->moh, s->w->now_ms, &pcm, &u, &a);
        memcpy(out, pcm, MEDIA_FRAME * sizeof *out);
        return true;
    }
    }
    return false;
}

/* ---- DTMF ---- */

/* In-band digits are reported when the tone ends, 40 ms later: a dropout
 * shorter than that (a lost packet, a jitter-buffer adjustment) inside one key
 * press joins the two halves instead of reporting the digit twice. */
#define INBAND_JOIN_SAMPLES 320

static void inband_flush(struct msession *s)
{
    if (!s->pend_digit) return;
    struct media_event ev = {.type = MEDIA_EV_DTMF, .id = s->id, .digit = s->pend_digit};
    ev.duration_ms = (int)((s->pend_end - s->pend_start) / (MEDIA_RATE / 1000));
    s->pend_digit = 0;
    engine_emit(&ev);
}

static void on_inband_tone(void *arg, int code, int level, int delay)
{
    struct msession *s = arg;
    if (code) {
        if (s->pend_digit == code && s->samples_in - s->pend_end <= INBAND_JOIN_SAMPLES) {
            s->inband_start = s->pend_start; /* the same press resumes */
            s->pend_digit = 0;
        } else {
            inband_flush(s);
            s->inband_start = s->samples_in;
        }
        s->inband_digit = (char)code;
    } else if (s->inband_digit) {
        s->pend_digit = s->inband_digit;
        s->pend_start = s->inband_start;
        s->pend_end = s->samples_in;
        s->inband_digit = 0;
    }
}

/* Peak below 1/64 of full scale: two DTMF tones of -39 dBm0 each peak above it. */
static bool frame_quiet(const int16_t *x)
{
    int peak = 0;
    for (int i = 0; i < MEDIA_FRAME; i++) {
        int a = x[i] < 0 ? -x[i] : x[i];
        peak = a > peak ? a : peak;
    }
    return peak < 512;
}

static bool inband_wanted(struct msession *s)
{
    if (s->fax) return false;
    if (s->dmode == MEDIA_DTMF_INBAND) return true;
    if (s->dmode == MEDIA_DTMF_RFC4733) return false;
    return !s->rfc_seen; /* auto: until the peer shows it sends RFC 4733 */
}

static void emit_digit(struct msession *s, const struct dtmf_digit *d)
{
    struct media_event ev = {
        .type = MEDIA_EV_DTMF, .id = s->id, .digit = d->digit, .duration_ms = d->ms};
    engine_emit(&ev);
}

/* ---- receiving ---- */

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static void rate_limited(struct msession *s, uint64_t count, const char *what,
                         const struct sockaddr_in *from)
{
    if (count == 1 || count % 1000 == 0) {
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &from->sin_addr, ip, sizeof ip);
        log_warn("media", "session %u: %s from %s:%d (%llu so far)", s->id, what, ip,
                 ntohs(from->sin_port), (unsigned long long)count);
    }
}

/*
 * Symmetric RTP that a stray stream cannot steal. Packets from the address
 * the SDP gave are always taken and latch the session for good (the socket
 * is connected to it, so the kernel drops every other source). Another
 * source - the same peer behind NAT - is latched only when nothing has come
 * from the SDP address for LATCH_GRACE_MS since the remote was set; it gives
 * way to the SDP address the moment that one sends, and to a third source
 * only after it has itself been silent that long (a NAT rebinding).
 */
static void latch_rtp(struct msession *s, const struct sockaddr_in *from, bool is_sdp)
{
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &from->sin_addr, ip, sizeof ip);
    if (!is_sdp || (s->latched && !s->latched_sdp))
        log_info("media", "session %u: latched RTP to %s:%d%s", s->id, ip, ntohs(from->sin_port),
                 is_sdp ? " (the SDP address)" : " (not the SDP address: NAT)");
    s->raddr = *from;
    s->latched = true;
    s->latched_sdp = is_sdp;
    /* connected to the SDP address: the kernel keeps the route and drops other sources */
    if (is_sdp) s->connected = connect(s->fd, (const struct sockaddr *)from, sizeof *from) == 0;
}

static bool rtp_source_ok(struct msession *s, const struct sockaddr_in *from)
{
    if (same_addr(from, &s->sdp_rtp)) {
        if (!s->latched_sdp) latch_rtp(s, from, true);
        return true;
    }
    if (s->latched && same_addr(from, &s->raddr)) return true;
    int64_t quiet_since = s->latched ? s->last_rx_ms : s->remote_set_ms;
    if (!s->latched_sdp && s->w->now_ms - quiet_since >= LATCH_GRACE_MS) {
        latch_rtp(s, from, false);
        return true;
    }
    rate_limited(s, ++s->rx_foreign,
                 s->latched ? "RTP from a source other than the latched one refused"
                            : "RTP from a source other than the SDP address held back",
                 from);
    return false;
}

/* RTCP: the SDP's RTCP address for good; else, once RTP has latched, the RTP source's host. */
static bool rtcp_source_ok(struct msession *s, const struct sockaddr_in *from)
{
    if (same_addr(from, &s->sdp_rtcp)) {
        s->rcaddr = *from;
        s->rtcp_latched = s->rtcp_latched_sdp = true;
        return true;
    }
    if (s->rtcp_latched) return same_addr(from, &s->rcaddr);
    if (!s->latched || from->sin_addr.s_addr != s->raddr.sin_addr.s_addr) return false;
    s->rcaddr = *from;
    s->rtcp_latched = true;
    return true;
}

static void handle_rtp(struct msession *s, const uint8_t *b, int len,
                       const struct sockaddr_in *from, int64_t arrival_us)
{
    if (!s->have_remote || !s->recv) return;
    struct rtp_hdr h;
    if (rtp_parse(b, len, &h)) {
        rate_limited(s, ++s->rx_bad, "malformed RTP ignored", from);
        return;
    }
    if (!rtp_source_ok(s, from)) return;
    if (!s->have_rx_ssrc || h.ssrc != s->rx_ssrc) {
        if (s->have_rx_ssrc) {
            log_debug("media", "session %u: new RTP stream (SSRC %08x)", s->id, h.ssrc);
            jb_reset(&s->jb);
            memset(&s->rxs, 0, sizeof s->rxs);
        }
        s->have_rx_ssrc = true;
        s->rx_ssrc = h.ssrc;
    }
    s->rx_packets++;
    s->last_rx_ms = s->w->now_ms;
    s->timeout_sent = false;
    rtp_stats_update(&s->rxs, h.seq, h.ts, arrival_us);
    if (s->dtmf_pt && h.pt == s->dtmf_pt) {
        if (s->dmode == MEDIA_DTMF_INBAND) return;
        struct dtmf_digit d[2];
        s->rfc_seen = true;
        int n = dtmf4733_rx_packet(&s->r4733, h.ts, h.payload, h.len, s->w->now_ms, d);
        for (int i = 0; i < n; i++)
            emit_digit(s, &d[i]);
        return;
    }
    if (h.pt == MEDIA_PCMU || h.pt == MEDIA_PCMA) {
        if (h.len > 0) jb_put_g711(&s->jb, h.ts, h.pt, h.payload, h.len);
        return;
    }
    int16_t pcm[PKT_MAX];
    int n;
    if (h.pt == MEDIA_G722 && s->g722d) {
        if (h.len > PKT_MAX / 2) return;
        n = g722_decode(s->g722d, pcm, h.payload, h.len);
    } else {
        return; /* comfort noise, or a codec not negotiated: ignored */
    }
    if (n > 0) jb_put(&s->jb, h.ts, pcm, n);
}

static void handle_rtcp(struct msession *s, const uint8_t *b, int len,
                        const struct sockaddr_in *from, int64_t arrival_us)
{
    if (!s->have_remote || !rtcp_source_ok(s, from)) return;
    struct rtcp_info ri;
    if (rtcp_parse(b, len, s->ssrc, &ri)) return;
    if (ri.has_sr) {
        s->last_sr_mid = ri.sr_mid;
        s->last_sr_rx_us = arrival_us;
    }
    if (ri.has_block) {
        s->remote_loss = ri.loss;
        s->remote_jitter_ms = ri.jitter / (double)(MEDIA_RATE / 1000);
    }
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void drain(struct worker *w, struct msession *s, bool rtcp)
{
    int fd = rtcp ? s->fd_rtcp : s->fd;
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < RECV_BATCH; i++) { /* the rest was set up in worker_main */
            w->msgs[i].msg_hdr.msg_namelen = sizeof w->from[i];
            w->msgs[i].msg_hdr.msg_controllen = sizeof w->ctl[i];
        }
        int n = recvmmsg(fd, w->msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) return;
        int64_t now = wall_us();
        for (int i = 0; i < n; i++) {
            int64_t at = now;
            struct msghdr *mh = &w->msgs[i].msg_hdr;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(c), sizeof ts);
                    at = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
                }
            }
            if (mh->msg_namelen < sizeof(struct sockaddr_in) || w->from[i].sin_family != AF_INET)
                continue;
            if (rtcp)
                handle_rtcp(s, w->bufs[i], (int)w->msgs[i].msg_len, &w->from[i], at);
            else
                handle_rtp(s, w->bufs[i], (int)w->msgs[i].msg_len, &w->from[i], at);
            if (!s->w) return; /* cannot happen today; guard for the future */
        }
        if (n < RECV_BATCH) return;
    }
}

/* ---- sending ---- */

static void send_rtcp(struct msession *s)
{
    uint8_t b[128];
    int64_t now_us = wall_us();
    uint64_t ntp_sec = (uint64_t)(now_us / 1000000) + 2208988800ull;
    uint64_t ntp_frac = ((uint64_t)(now_us % 1000000) << 32) / 1000000;
    bool rr = s->rxs.init;
    int len = 28 + (rr ? 24 : 0);
    b[0] = (uint8_t)(0x80 | (rr ? 1 : 0));
    b[1] = 200;
    b[2] = 0;
    b[3] = (uint8_t)(len / 4 - 1);
    uint32_t v[6] = {s->ssrc,  (uint32_t)ntp_sec,       (uint32_t)ntp_frac,
                     s->tx_ts, (uint32_t)s->tx_packets, (uint32_t)s->tx_octets};
    for (int i = 0; i < 6; i++) {
        b[4 + 4 * i] = (uint8_t)(v[i] >> 24);
        b[5 + 4 * i] = (uint8_t)(v[i] >> 16);
        b[6 + 4 * i] = (uint8_t)(v[i] >> 8);
        b[7 + 4 * i] = (uint8_t)v[i];
    }
    if (rr) {
        struct rtp_rx_stats *st = &s->rxs;
        uint32_t expected = rtp_stats_expected(st);
        uint32_t exp_int = expected - st->expected_prior;
        uint32_t rec_int = st->received - st->received_prior;
        st->expected_prior = expected;
        st->received_prior = st->received;
        int32_t lost_int = (int32_t)(exp_int - rec_int);
        uint8_t fraction = exp_int == 0 || lost_int <= 0 ? 0 : (uint8_t)((lost_int << 8) / exp_int);
        int64_t lost = rtp_stats_lost(st);
        if (lost > 0x7FFFFF) lost = 0x7FFFFF;
        uint32_t ext_max = st->cycles + st->max_seq;
        uint32_t dlsr = 0;
        if (s->last_sr_rx_us) dlsr = (uint32_t)(((now_us - s->last_sr_rx_us) * 65536) / 1000000);
        uint32_t r[6] = {s->rx_ssrc,     ((uint32_t)fraction << 24) | (uint32_t)lost,
                         ext_max,        (uint32_t)st->jitter,
                         s->last_sr_mid, s->last_sr_mid ? dlsr : 0};
        for (int i = 0; i < 6; i++) {
            b[28 + 4 * i] = (uint8_t)(r[i] >> 24);
            b[29 + 4 * i] = (uint8_t)(r[i] >> 16);
            b[30 + 4 * i] = (uint8_t)(r[i] >> 8);
            b[31 + 4 * i] = (uint8_t)r[i];
        }
    }
    /* SDES with a CNAME, as a compound packet must carry */
    static const char cname[] = "callwright";
    int sd = len;
    int clen = (int)sizeof cname - 1;
    int sdes_len = 4 + 4 + 2 + clen + 1;
    sdes_len = (sdes_len + 3) & ~3;
    memset(b + sd, 0, (size_t)sdes_len);
    b[sd] = 0x81;
    b[sd + 1] = 202;
    b[sd + 2] = 0;
    b[sd + 3] = (uint8_t)(sdes_len / 4 - 1);
    b[sd + 4] = (uint8_t)(s->ssrc >> 24);
    b[sd + 5] = (uint8_t)(s->ssrc >> 16);
    b[sd + 6] = (uint8_t)(s->ssrc >> 8);
    b[sd + 7] = (uint8_t)s->ssrc;
    b[sd + 8] = 1;
    b[sd + 9] = (uint8_t)clen;
    memcpy(b + sd + 10, cname, (size_t)clen);
    len += sdes_len;
    const struct sockaddr_in *to = &s->rcaddr;
    sendto(s->fd_rtcp, b, (size_t)len, MSG_DONTWAIT, (const struct sockaddr *)to, sizeof *to);
}

static void send_frame(struct msession *s)
{
    uint8_t pkt[3][12 + MEDIA_FRAME];
    struct iovec iov[3];
    struct mmsghdr mm[3];
    int np = 0;
    uint32_t ts = s->tx_ts;
    s->tx_ts += MEDIA_FRAME;
    if (!s->have_remote || !s->send) return;
    if (s->ev.active) {
        uint8_t *p = pkt[np];
        bool first = s->ev.sent == 0;
        s->ev.sent = CW_MIN(s->ev.sent + MEDIA_FRAME, s->ev.total);
        bool end = s->ev.sent >= s->ev.total;
        rtp_write_header(p, s->dtmf_pt, first, s->tx_seq++, s->ev.ts, s->ssrc);
        p[12] = (uint8_t)s->ev.code;
        p[13] = (uint8_t)((end ? 0x80 : 0) | 10); /* volume -10 dBm0 */
        p[14] = (uint8_t)(s->ev.sent >> 8);
        p[15] = (uint8_t)s->ev.sent;
        iov[np].iov_base = p;
        iov[np].iov_len = 16;
        np++;
        if (end && ++s->ev.ends >= 3) {
            s->ev.active = false;
            s->ev.gap = 3;
            s->tx_marker = true;
        }
    } else {
        uint8_t *p = pkt[np];
        rtp_write_header(p, s->pt, s->tx_marker, s->tx_seq++, ts, s->ssrc);
        s->tx_marker = false;
        int plen = MEDIA_FRAME;
        if (s->pt == MEDIA_G722 && s->g722e)
            plen = g722_encode(s->g722e, p + 12, s->out, MEDIA_FRAME);
        else
            g711_encode_frame(s->pt, s->out, p + 12, MEDIA_FRAME);
        iov[np].iov_base = p;
        iov[np].iov_len = 12 + (size_t)plen;
        np++;
    }
    for (int i = 0; i < np; i++) {
        memset(&mm[i], 0, sizeof mm[i]);
        if (!s->connected) {
            mm[i].msg_hdr.msg_name = &s->raddr;
            mm[i].msg_hdr.msg_namelen = sizeof s->raddr;
        }
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
        s->tx_octets += iov[i].iov_len - 12;
    }
    int sent = sendmmsg(s->fd, mm, (unsigned)np, MSG_DONTWAIT);
    if (sent > 0) s->tx_packets += (uint64_t)sent;
}

/* ---- recording ---- */

static void record_stop(struct msession *s, int reason)
{
    if (!s->rec_on) return;
    int64_t ms = s->rec_frames * 20;
    if (wav_writer_close(&s->rec)) {
        log_error("media", "session %u: recording could not be finished", s->id);
        reason = -1;
    }
    s->rec_on = false;
    struct media_event ev = {
        .type = MEDIA_EV_RECORD_DONE, .id = s->id, .tag = s->rec_tag, .reason = reason, .ms = ms};
    engine_emit(&ev);
}

static void record_frame(struct msession *s)
{
    if (!s->rec_on || s->rec_paused) return;
    int16_t buf[2 * MEDIA_FRAME];
    if (s->rec_stereo) {
        for (int i = 0; i < MEDIA_FRAME; i++) {
            buf[2 * i] = s->in[i];
            buf[2 * i + 1] = s->out[i];
        }
    } else {
        for (int i = 0; i < MEDIA_FRAME; i++)
            buf[i] = dsp_clip16((int32_t)s->in[i] + s->out[i]);
    }
    if (wav_writer_write(&s->rec, buf, MEDIA_FRAME)) {
        log_error("media", "session %u: recording write failed", s->id);
        record_stop(s, -1);
        return;
    }
    s->rec_frames++;
    if (s->rec_max_frames && s->rec_frames >= s->rec_max_frames) {
        record_stop(s, 1);
        return;
    }
    if (s->rec_quiet_max) {
        if (dsp_power_dbov(s->in, MEDIA_FRAME) < SILENCE_DB)
            s->rec_quiet++;
        else
            s->rec_quiet = 0;
        if (s->rec_quiet >= s->rec_quiet_max) {
            emit(s, MEDIA_EV_SILENCE, s->rec_tag, 0);
            record_stop(s, 2);
        }
    }
}

/* ---- fax ---- */

static void on_fax_done(t30_state_t *t, void *arg, int code)
{
    struct msession *s = arg;
    s->fax_finished = true;
    s->fax_code = code;
}

/* The figures of a transfer so far, for FAX_PAGE and FAX_DONE. */
static void fax_figures(struct msession *s, struct media_event *ev)
{
    t30_state_t *t = fax_get_t30_state(s->fax);
    t30_stats_t st;
    t30_get_transfer_statistics(t, &st);
    ev->pages = st.pages_tx > st.pages_rx ? st.pages_tx : st.pages_rx;
    ev->resolution = (int)(st.x_resolution * 0.0254 + 0.5); /* pixels per metre -> dpi */
    ev->bit_rate = st.bit_rate;
    ev->ecm = st.error_correcting_mode != 0;
    const char *far = t30_get_rx_ident(t);
    cw_strlcpy(ev->remote_ident, far ? far : "", sizeof ev->remote_ident);
}

static int on_fax_page(t30_state_t *t, void *arg, int result)
{
    struct msession *s = arg;
    struct media_event ev = {.type = MEDIA_EV_FAX_PAGE, .id = s->id, .tag = s->fax_tag};
    fax_figures(s, &ev);
    engine_emit(&ev);
    return T30_ERR_OK;
}

static void fax_finish(struct msession *s)
{
    struct media_event ev = {.type = MEDIA_EV_FAX_DONE, .id = s->id, .tag = s->fax_tag};
    ev.reason = s->fax_code == T30_ERR_OK ? 0 : s->fax_code;
    fax_figures(s, &ev);
    if (s->fax_sending && s->fax_code == T30_ERR_CALLDROPPED) {
        /* a receiver hangs up as soon as it has our DCN, often before our modem has
         * finished sending it: every page confirmed (MCF) is a delivered fax */
        t30_stats_t st;
        t30_get_transfer_statistics(fax_get_t30_state(s->fax), &st);
        if (st.pages_in_file > 0 && st.pages_tx >= st.pages_in_file) ev.reason = 0;
    }
    log_info("media", "session %u: fax done: %s, %d page(s)", s->id,
             t30_completion_code_to_str(s->fax_code), ev.pages);
    fax_free(s->fax);
    s->fax = NULL;
    s->fax_finished = false;
    s->jb.plc_on = true;
    engine_emit(&ev);
}

/* ---- the tick ---- */

static void session_input(struct msession *s)
{
    int got = s->recv && s->have_remote ? jb_get(&s->jb, s->in, MEDIA_FRAME) : -1;
    if (got < 0) memset(s->in, 0, sizeof s->in);
    s->samples_in += MEDIA_FRAME;
    struct dtmf_digit d;
    if (dtmf4733_rx_poll(&s->r4733, s->w->now_ms, &d)) emit_digit(s, &d);
    if (inband_wanted(s)) {
        if (!s->drx) {
            s->drx = dtmf_rx_init(NULL, NULL, NULL);
            dtmf_rx_set_realtime_callback(s->drx, on_inband_tone, s);
        }
        /* a quiet frame cannot hold a digit: skip the filters while none is in progress */
        if (got >= 0 && (s->inband_digit || !frame_quiet(s->in)))
            dtmf_rx(s->drx, s->in, MEDIA_FRAME);
        if (s->pend_digit && s->samples_in - s->pend_end > INBAND_JOIN_SAMPLES) inband_flush(s);
    } else if (s->drx) { /* the peer sends RFC 4733 (or a fax took over): no detector */
        dtmf_rx_free(s->drx);
        s->drx = NULL;
    }
    if (s->fax) fax_rx(s->fax, s->in, MEDIA_FRAME);
    if (s->talk_detect || s->room) {
        double db = dsp_power_dbov(s->in, MEDIA_FRAME);
        if (db > TALK_ON_DB) {
            s->talk_hang = 0;
            if (!s->talking && ++s->talk_run >= 3) {
                s->talking = true;
                emit(s, MEDIA_EV_TALK_START, 0, 0);
            }
        } else {
            s->talk_run = 0;
            if (db < TALK_OFF_DB && s->talking && ++s->talk_hang >= 25) {
                s->talking = false;
                emit(s, MEDIA_EV_TALK_STOP, 0, 0);
            }
        }
    }
    if (media_cfg.rtp_timeout_s > 0 && s->have_remote && s->recv && !s->timeout_sent) {
        int64_t since = s->last_rx_ms ? s->last_rx_ms : s->remote_set_ms;
        if (s->w->now_ms - since > (int64_t)media_cfg.rtp_timeout_s * 1000) {
            s->timeout_sent = true;
            log_info("media", "session %u: no RTP for %d s", s->id, media_cfg.rtp_timeout_s);
            emit(s, MEDIA_EV_RTP_TIMEOUT, 0, 0);
        }
    }
}

static void room_mix(struct room *r)
{
    memset(r->sum, 0, sizeof r->sum);
    for (int i = 0; i < r->n; i++)
        if (!(r->m[i]->conf_flags & MEDIA_CONF_MUTE)) dsp_mix_add(r->sum, r->m[i]->in, MEDIA_FRAME);
    if (r->cue_on) {
        int16_t cue[MEDIA_FRAME];
        if (tone_gen_fill(&r->cue, cue, MEDIA_FRAME))
            dsp_mix_add(r->sum, cue, MEDIA_FRAME);
        else
            r->cue_on = false;
    }
    if (r->rec_on) {
        int16_t pcm[MEDIA_FRAME];
        dsp_mix_clip(pcm, r->sum, MEDIA_FRAME);
        if (wav_writer_write(&r->rec, pcm, MEDIA_FRAME)) {
            log_error("media", "room %u: recording write failed", r->id);
            room_record_stop(r, -1);
        } else {
            r->rec_frames++;
        }
    }
}

static void session_output(struct msession *s)
{
    int32_t acc[MEDIA_FRAME];
    bool have_acc = false;
    if (s->fax) {
        int n = fax_tx(s->fax, s->out, MEDIA_FRAME);
        if (n < MEDIA_FRAME) memset(s->out + n, 0, (size_t)(MEDIA_FRAME - n) * sizeof *s->out);
        if (s->fax_finished) fax_finish(s);
        goto out;
    }
    if (s->pl.kind && player_fill(s, s->out)) {
        /* a prompt or music replaces what the session would hear */
    } else if (s->spy_c || s->spy_a) {
        memset(acc, 0, sizeof acc);
        if (s->spy_c) dsp_mix_add(acc, s->spy_c->in, MEDIA_FRAME);
        if (s->spy_a && s->spy_a != s->spy_c) dsp_mix_add(acc, s->spy_a->in, MEDIA_FRAME);
        have_acc = true;
    } else if (s->peer) {
        memcpy(s->out, s->peer->in, sizeof s->out);
    } else if (s->room) {
        if (s->conf_flags & MEDIA_CONF_DEAF) {
            memset(s->out, 0, sizeof s->out);
        } else {
            memcpy(acc, s->room->sum, sizeof acc);
            if (!(s->conf_flags & MEDIA_CONF_MUTE))
                for (int i = 0; i < MEDIA_FRAME; i++)
                    acc[i] -= s->in[i];
            have_acc = true;
        }
    } else {
        memset(s->out, 0, sizeof s->out);
    }
    /* supervisors talking to this session: whisper reaches the agent, barge everyone */
    for (int k = 0; k < s->nspies; k++) {
        struct msession *sup = s->spies[k];
        if (sup->spy_mode == MEDIA_SPY_BARGE ||
            (sup->spy_mode == MEDIA_SPY_WHISPER && sup->spy_a == s)) {
            if (!have_acc) {
                for (int i = 0; i < MEDIA_FRAME; i++)
                    acc[i] = s->out[i];
                have_acc = true;
            }
            dsp_mix_add(acc, sup->in, MEDIA_FRAME);
        }
    }
    if (have_acc) dsp_mix_clip(s->out, acc, MEDIA_FRAME);
out:
    /* DTMF being sent: RFC 4733 packets replace audio in send_frame; in-band replaces samples */
    if (!s->ev.active && s->ev.gap > 0) s->ev.gap--;
    if (!s->ev.active && !s->dtx_active && s->ev.gap == 0 && s->dq_n > 0) {
        char dg = s->dq[0];
        int ms = s->dq_ms[0];
        memmove(s->dq, s->dq + 1, (size_t)(s->dq_n - 1));
        memmove(s->dq_ms, s->dq_ms + 1, (size_t)(s->dq_n - 1) * sizeof *s->dq_ms);
        s->dq_n--;
        if (s->dtmf_pt && s->dmode != MEDIA_DTMF_INBAND) {
            s->ev.active = true;
            s->ev.code = dtmf_event_code(dg);
            s->ev.total = ms * (MEDIA_RATE / 1000);
            s->ev.sent = 0;
            s->ev.ends = 0;
            s->ev.ts = s->tx_ts;
        } else {
            if (!s->dtx) s->dtx = dtmf_tx_init(NULL);
            dtmf_tx_set_level(s->dtx, -10, 0);
            dtmf_tx_set_timing(s->dtx, ms, 60);
            char str[2] = {dg, 0};
            dtmf_tx_put(s->dtx, str, 1);
            s->dtx_active = true;
        }
    }
    if (s->dtx_active) {
        int16_t t[MEDIA_FRAME];
        int n = dtmf_tx(s->dtx, t, MEDIA_FRAME);
        if (n <= 0) {
            s->dtx_active = false;
        } else {
            memcpy(s->out, t, (size_t)n * sizeof *t);
            if (n < MEDIA_FRAME) memset(s->out + n, 0, (size_t)(MEDIA_FRAME - n) * sizeof *t);
        }
    }
    record_frame(s);
    send_frame(s);
    if (s->have_remote && s->w->now_ms >= s->next_rtcp_ms) {
        s->next_rtcp_ms = s->w->now_ms + 4000 + (int64_t)(s->ssrc % 2000);
        send_rtcp(s);
    }
}

static void tick(struct worker *w)
{
    /* Every session expects a packet a tick, so each socket is simply read once
     * (recvmmsg, non-blocking): no readiness set to maintain. RTCP, a packet every
     * few seconds, is read every 10th tick. */
    bool rtcp = w->ticks % 10 == 0;
    for (struct msession *s = w->head; s; s = s->next) {
        if (!s->have_remote) continue;
        drain(w, s, false);
        if (rtcp) drain(w, s, true);
    }
    for (struct msession *s = w->head; s; s = s->next)
        session_input(s);
    for (struct room *r = w->rooms; r; r = r->next)
        room_mix(r);
    for (struct msession *s = w->head; s; s = s->next)
        session_output(s);
}

/* ---- commands ---- */

static void session_close(struct worker *w, struct msession *s)
{
    relations_clear(s);
    record_stop(s, 0);
    play_finish(s, 1);
    if (s->fax) {
        s->fax_code = T30_ERR_CALLDROPPED;
        fax_finish(s);
    }
    struct media_event ev = {.type = MEDIA_EV_CLOSED, .id = s->id};
    ev.stats.rx_packets = s->rx_packets;
    ev.stats.tx_packets = s->tx_packets;
    ev.stats.rx_lost = (uint64_t)rtp_stats_lost(&s->rxs);
    ev.stats.rx_late = s->jb.late;
    ev.stats.rx_dup = s->jb.dup;
    ev.stats.jitter_ms = s->rxs.jitter / (MEDIA_RATE / 1000);
    ev.stats.remote_loss = s->remote_loss;
    ev.stats.remote_jitter_ms = s->remote_jitter_ms;
    detach(w, s);
    engine_session_free(s);
    engine_emit(&ev);
}

static void set_remote(struct msession *s, const struct media_remote *r)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->port)};
    inet_pton(AF_INET, r->ip, &a.sin_addr);
    bool moved = !s->have_remote || !same_addr(&a, &s->sdp_rtp);
    if (moved && s->connected) { /* a new address: other sources may be heard again */
        struct sockaddr un = {.sa_family = AF_UNSPEC};
        connect(s->fd, &un, sizeof un);
        s->connected = false;
    }
    if (moved) { /* a new address: latch again */
        s->sdp_rtp = s->raddr = a;
        s->sdp_rtcp = a;
        s->sdp_rtcp.sin_port = htons((uint16_t)(r->port + 1));
        s->rcaddr = s->sdp_rtcp;
        s->latched = s->rtcp_latched = s->latched_sdp = s->rtcp_latched_sdp = false;
    }
    s->have_remote = true;
    s->pt = r->pt;
    s->dtmf_pt = r->dtmf_pt;
    s->dmode = r->dtmf_mode;
    s->send = r->send && a.sin_addr.s_addr != htonl(INADDR_ANY); /* c=0.0.0.0: on hold */
    s->recv = r->recv;
    s->remote_set_ms = s->w->now_ms;
    s->timeout_sent = false;
    if (moved) s->next_rtcp_ms = s->w->now_ms + 1000; /* first report soon, then every ~5 s */
    if (s->pt == MEDIA_G722) {
        if (!s->g722e) s->g722e = g722_encode_init(NULL, 64000, G722_SAMPLE_RATE_8000);
        if (!s->g722d) s->g722d = g722_decode_init(NULL, 64000, G722_SAMPLE_RATE_8000);
    }
}

static void start_play(struct msession *s, struct mcmd *c)
{
    play_finish(s, 1);
    struct sound **snd = cw_calloc((size_t)c->nfiles, sizeof *snd);
    for (int i = 0; i < c->nfiles; i++) {
        char err[256];
        snd[i] = sound_load(c->files[i], err, sizeof err);
        if (!snd[i]) {
            log_warn("media", "session %u: cannot play: %s", s->id, err);
            for (int k = 0; k < i; k++)
                sound_unref(snd[k]);
            free(snd);
            emit(s, MEDIA_EV_PLAY_DONE, c->tag, -1);
            return;
        }
    }
    size_t total = 0;
    for (int i = 0; i < c->nfiles; i++)
        total += snd[i]->n;
    if (total == 0) { /* nothing audible: done at once */
        for (int i = 0; i < c->nfiles; i++)
            sound_unref(snd[i]);
        free(snd);
        emit(s, MEDIA_EV_PLAY_DONE, c->tag, 0);
        return;
    }
    s->pl.kind = 1;
    s->pl.tag = c->tag;
    s->pl.snd = snd;
    s->pl.n = c->nfiles;
    s->pl.idx = 0;
    s->pl.pos = 0;
    s->pl.loop = c->bval;
}

/* A play or MOH command whose sounds are slow to prepare goes to the loader
 * thread and comes back preloaded; one that comes back after a newer playback
 * command is reported as replaced. Returns true when c was taken. */
static bool via_loader(struct worker *w, struct msession *s, struct mcmd *c)
{
    if (c->preloaded) {
        if (c->gen == s->play_gen) return false;
        emit(s, MEDIA_EV_PLAY_DONE, c->tag, 1);
        mcmd_free(c);
        return true;
    }
    s->play_gen++;
    bool quick = true;
    if (c->m.type == CMD_PLAY)
        for (int i = 0; i < c->nfiles && quick; i++)
            quick = sound_is_quick(c->files[i]);
    else
        quick = moh_is_loaded(c->str);
    if (quick) return false;
    play_finish(s, 1); /* what played before stops now; silence while loading */
    c->gen = s->play_gen;
    c->from_worker = w->idx;
    loader_post(c);
    return true;
}

static void pending_add(struct worker *w, media_id id)
{
    struct pending *p = cw_calloc(1, sizeof *p);
    p->id = id;
    p->next = w->pend;
    w->pend = p;
}

static struct pending *pending_find(struct worker *w, media_id id)
{
    if (!id) return NULL;
    for (struct pending *p = w->pend; p; p = p->next)
        if (p->id == id) return p;
    return NULL;
}

static void dispatch(struct worker *w, struct mcmd *c);

static void adopt(struct worker *w, struct msession *s)
{
    attach(w, s);
    struct pending **pp = &w->pend;
    while (*pp && (*pp)->id != s->id)
        pp = &(*pp)->next;
    if (!*pp) return;
    struct pending *p = *pp;
    *pp = p->next;
    struct mcmd *c = p->head;
    free(p);
    while (c) {
        struct mcmd *n = (struct mcmd *)c->m.next;
        dispatch(w, c);
        c = n;
    }
}

static void dispatch(struct worker *w, struct mcmd *c)
{
    int op = c->m.type;
    if (op == CMD_ADD) {
        attach(w, c->sess);
        c->sess = NULL;
        mcmd_free(c);
        return;
    }
    if (op == CMD_ADOPT) {
        struct msession *s = c->sess;
        c->sess = NULL;
        uint64_t us = (uint64_t)(cw_mono_us() - c->posted_us);
        __atomic_add_fetch(&move_count, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&move_us_sum, us, __ATOMIC_RELAXED);
        uint64_t mx = __atomic_load_n(&move_us_max, __ATOMIC_RELAXED);
        while (us > mx && !__atomic_compare_exchange_n(&move_us_max, &mx, us, false,
                                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
        mcmd_free(c);
        adopt(w, s);
        return;
    }
    if (op == CMD_EXPECT) {
        pending_add(w, c->id);
        mcmd_free(c);
        return;
    }
    /* a command touching a session still on its way here waits for it */
    struct pending *p = pending_find(w, c->id);
    if (!p) p = pending_find(w, c->id2);
    if (!p) p = pending_find(w, c->id3);
    if (p) {
        c->m.next = NULL;
        if (p->tail)
            p->tail->m.next = &c->m;
        else
            p->head = c;
        p->tail = c;
        return;
    }
    struct msession *s = find(w, c->id);
    if (!s) {
        log_debug("media", "worker %d: command %d for unknown session %u", w->idx, op, c->id);
        if (c->preloaded) { /* the session moved or closed while its sound was loading */
            struct media_event ev = {
                .type = MEDIA_EV_PLAY_DONE, .id = c->id, .tag = c->tag, .reason = 1};
            engine_emit(&ev);
        }
        mcmd_free(c);
        return;
    }
    if ((op == CMD_PLAY || op == CMD_MOH) && via_loader(w, s, c)) return;
    if (op == CMD_TONE || op == CMD_STOP) s->play_gen++;
    switch (op) {
    case CMD_REMOTE:
        set_remote(s, &c->remote);
        break;
    case CMD_CLOSE:
        session_close(w, s);
        break;
    case CMD_PLAY:
        start_play(s, c);
        break;
    case CMD_TONE: {
        const struct tone_plan *tp = tone_plan_for(media_cfg.tone_locale, c->ival);
        play_finish(s, 1);
        if (!tp) {
            emit(s, MEDIA_EV_PLAY_DONE, c->tag, -1);
            break;
        }
        s->pl.kind = 2;
        s->pl.tag = c->tag;
        tone_gen_start(&s->pl.tg, tp);
        break;
    }
    case CMD_MOH: {
        play_finish(s, 1);
        struct moh_stream *m = moh_get(c->str);
        if (!m) {
            log_warn("media", "session %u: no music-on-hold stream '%s'", s->id, c->str);
            emit(s, MEDIA_EV_PLAY_DONE, c->tag, -1);
            break;
        }
        s->pl.kind = 3;
        s->pl.tag = c->tag;
        s->pl.moh = m;
        break;
    }
    case CMD_STOP:
        play_finish(s, 1);
        break;
    case CMD_REC_START:
        record_stop(s, 0);
        if (wav_writer_open(&s->rec, c->str, c->bval ? 2 : 1, MEDIA_RATE)) {
            log_error("media", "session %u: cannot create recording %s", s->id, c->str);
            struct media_event ev = {
                .type = MEDIA_EV_RECORD_DONE, .id = s->id, .tag = c->tag, .reason = -1};
            engine_emit(&ev);
            break;
        }
        s->rec_on = true;
        s->rec_paused = false;
        s->rec_stereo = c->bval;
        s->rec_frames = 0;
        s->rec_max_frames = (int64_t)c->ival * 50;
        s->rec_quiet = 0;
        s->rec_quiet_max = (int64_t)c->ival2 * 50;
        s->rec_tag = c->tag;
        break;
    case CMD_REC_PAUSE:
        s->rec_paused = c->bval;
        break;
    case CMD_REC_STOP:
        record_stop(s, 0);
        break;
    case CMD_DTMF:
        if (s->dq_n < DTMF_QUEUE) {
            s->dq[s->dq_n] = (char)c->ival;
            s->dq_ms[s->dq_n++] = c->ival2;
        }
        break;
    case CMD_BRIDGE: {
        struct msession *b = find(w, c->id2);
        if (!b || b == s) break;
        relations_clear(s);
        relations_clear(b);
        play_finish(s, 1);
        play_finish(b, 1);
        s->peer = b;
        b->peer = s;
        break;
    }
    case CMD_UNBRIDGE:
        unbridge(s);
        break;
    case CMD_CONF_JOIN: {
        struct room *r = room_find(w, (uint32_t)c->ival, true);
        if (s->room == r) {
            s->conf_flags = c->flags;
            break;
        }
        relations_clear(s);
        if (r->n >= MAX_ROOM) {
            log_warn("media", "room %u is full (%d)", r->id, MAX_ROOM);
            break;
        }
        r->m[r->n++] = s;
        s->room = r;
        s->conf_flags = c->flags;
        if (!(c->flags & MEDIA_CONF_NO_TONES)) room_cue(r, tone_plan_join());
        break;
    }
    case CMD_CONF_SET:
        if (s->room) s->conf_flags = c->flags;
        break;
    case CMD_CONF_LEAVE:
        room_leave(s, true);
        break;
    case CMD_SPY: {
        struct msession *cu = find(w, c->id2), *ag = find(w, c->id3);
        if (!cu || !ag || cu == s || ag == s) break;
        unbridge(s);
        room_leave(s, true);
        spy_stop(s);
        if (cu->nspies >= MAX_SPIES || ag->nspies >= MAX_SPIES) break;
        s->spy_c = cu;
        s->spy_a = ag;
        s->spy_mode = c->ival;
        cu->spies[cu->nspies++] = s;
        if (ag != cu) ag->spies[ag->nspies++] = s;
        break;
    }
    case CMD_SPY_STOP:
        spy_stop(s);
        break;
    case CMD_FAX: {
        if (s->fax) {
            s->fax_code = T30_ERR_CALLDROPPED;
            fax_finish(s);
        }
        play_finish(s, 1);
        relations_clear(s);
        s->fax = fax_init(NULL, c->ival);
        if (!s->fax) {
            struct media_event ev = {
                .type = MEDIA_EV_FAX_DONE, .id = s->id, .tag = c->tag, .reason = -1};
            engine_emit(&ev);
            break;
        }
        t30_state_t *t = fax_get_t30_state(s->fax);
        fax_set_transmit_on_idle(s->fax, 1);
        fax_set_tep_mode(s->fax, 0);
        t30_set_tx_ident(t, "Callwright");
        t30_set_ecm_capability(t, 1);
        t30_set_supported_compressions(t, T30_SUPPORT_T4_1D_COMPRESSION |
                                              T30_SUPPORT_T4_2D_COMPRESSION |
                                              T30_SUPPORT_T6_COMPRESSION);
        if (c->bval)
            t30_set_tx_file(t, c->str, -1, -1);
        else
            t30_set_rx_file(t, c->str, -1);
        t30_set_phase_e_handler(t, on_fax_done, s);
        t30_set_phase_d_handler(t, on_fax_page, s);
        s->fax_tag = c->tag;
        s->fax_sending = c->bval;
        s->fax_finished = false;
        s->jb.plc_on = false; /* modems want gaps, not synthetic speech */
        break;
    }
    case CMD_TALK:
        s->talk_detect = c->bval;
        break;
    case CMD_CONF_RECORD: {
        struct room *r = s->room;
        if (r) room_record_stop(r, 0);
        if (!c->str) break;
        if (!r || wav_writer_open(&r->rec, c->str, 1, MEDIA_RATE)) {
            log_error("media", "room %u: cannot record into %s", (unsigned)c->ival, c->str);
            struct media_event ev = {.type = MEDIA_EV_RECORD_DONE,
                                     .tag = c->tag,
                                     .reason = -1,
                                     .room = (uint32_t)c->ival};
            engine_emit(&ev);
            break;
        }
        r->rec_on = true;
        r->rec_tag = c->tag;
        r->rec_frames = 0;
        break;
    }
    case CMD_MOVE: {
        relations_clear(s);
        detach(w, s);
        struct mcmd *a = mcmd_new(CMD_ADOPT, s->id);
        a->sess = s;
        a->posted_us = c->posted_us;
        engine_post(c->to, a);
        break;
    }
    }
    mcmd_free(c);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];
    snprintf(name, sizeof name, "media-%d", w->idx);
    pthread_setname_np(pthread_self(), name);
    /* a worker that is late is heard: real-time priority when configured (the kernel
     * still keeps 5 % for others), else a raised nice level; both need CAP_SYS_NICE */
    struct sched_param sp = {.sched_priority = 10};
    int e = media_cfg.realtime ? pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) : -1;
    if (e) {
        if (media_cfg.realtime)
            log_warn("media", "worker %d: no real-time priority (%s)", w->idx, strerror(e));
        if (setpriority(PRIO_PROCESS, (id_t)gettid(), -10))
            log_debug("media", "worker %d: runs at normal priority", w->idx);
    }
    for (int i = 0; i < RECV_BATCH; i++) {
        w->iov[i].iov_base = w->bufs[i];
        w->iov[i].iov_len = PKT_MAX;
        struct msghdr *mh = &w->msgs[i].msg_hdr;
        mh->msg_name = &w->from[i];
        mh->msg_iov = &w->iov[i];
        mh->msg_iovlen = 1;
        mh->msg_control = w->ctl[i];
    }
    w->now_ms = cw_mono_ms();
    while (!__atomic_load_n(&w->quit, __ATOMIC_ACQUIRE)) {
        struct epoll_event evs[4];
        int n = epoll_wait(w->ep, evs, 4, 1000);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u32 == 1) {
                cw_msg *m = cw_queue_take_all(w->q);
                while (m) {
                    cw_msg *next = m->next;
                    w->now_ms = cw_mono_ms();
                    dispatch(w, (struct mcmd *)m);
                    m = next;
                }
            } else {
                uint64_t exp = 0;
                if (read(w->tfd, &exp, sizeof exp) != sizeof exp) continue;
                if (exp > 1) __atomic_add_fetch(&w->late, exp - 1, __ATOMIC_RELAXED);
                if (exp > 5) exp = 5; /* catch up a little; beyond that the audio just slips */
                for (uint64_t k = 0; k < exp; k++) {
                    w->now_ms = cw_mono_ms();
                    w->ticks++;
                    tick(w);
                }
            }
        }
    }
    return NULL;
}

int engine_start(int n)
{
    if (loader_start()) return CW_EIO;
    nworkers = n;
    workers = cw_calloc((size_t)n, sizeof *workers);
    for (int i = 0; i < n; i++) {
        struct worker *w = &workers[i];
        w->idx = i;
        w->q = cw_queue_new();
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        w->hsize = 256;
        w->hash = cw_calloc(w->hsize, sizeof *w->hash);
        if (!w->q || w->ep < 0 || w->tfd < 0) return CW_EIO;
        struct itimerspec its = {.it_interval = {0, 20000000}, .it_value = {0, 20000000}};
        timerfd_settime(w->tfd, 0, &its, NULL);
        struct epoll_event ev = {.events = EPOLLIN};
        ev.data.u32 = 1;
        epoll_ctl(w->ep, EPOLL_CTL_ADD, cw_queue_fd(w->q), &ev);
        ev.data.u32 = 2;
        epoll_ctl(w->ep, EPOLL_CTL_ADD, w->tfd, &ev);
        if (pthread_create(&w->th, NULL, worker_main, w)) return CW_EIO;
    }
    return CW_OK;
}

void engine_stop(void)
{
    loader_stop(); /* first: it posts into the workers' queues */
    for (int i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        __atomic_store_n(&w->quit, true, __ATOMIC_RELEASE);
        cw_queue_push(w->q, &mcmd_new(0, 0)->m); /* wake it up */
    }
    for (int i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        pthread_join(w->th, NULL);
        cw_msg *m = cw_queue_take_all(w->q);
        while (m) {
            cw_msg *n = m->next;
            mcmd_free((struct mcmd *)m);
            m = n;
        }
        while (w->pend) {
            struct pending *p = w->pend;
            w->pend = p->next;
            struct mcmd *c = p->head;
            while (c) {
                struct mcmd *nx = (struct mcmd *)c->m.next;
                mcmd_free(c);
                c = nx;
            }
            free(p);
        }
        while (w->head) {
            struct msession *s = w->head;
            relations_clear(s);
            record_stop(s, 0);
            detach(w, s);
            engine_session_free(s);
        }
        while (w->rooms) {
            struct room *r = w->rooms;
            w->rooms = r->next;
            free(r);
        }
        free(w->hash);
        cw_queue_free(w->q);
        close(w->ep);
        close(w->tfd);
    }
    free(workers);
    workers = NULL;
    nworkers = 0;
}
