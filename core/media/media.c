/*
 * media.c - the media engine's interface on the core thread.
 *
 * Owns the directory of sessions (which worker holds each one, which room it
 * is in) and of conference rooms, binds RTP/RTCP port pairs, turns each call
 * of media.h into a command for the worker that owns the session, and moves
 * sessions between workers so that parties that hear each other share one.
 * Worker events come back on one queue attached to the core loop and are
 * handed to the media_event_fn there.
 *
 * Runs on the core thread only; the only shared state is the two queues.
 */
#include "media/media.h"
#include "media/media_int.h"
#include "base/cw.h"
#include "log/log.h"
#include "loop/loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct mref {
    media_id id;
    int worker;
    uint32_t room; /* conference room, 0 = none */
    struct mref *next;
};

struct rroom {
    uint32_t id;
    int worker;
    int count;
    struct rroom *next;
};

struct evmsg {
    cw_msg m;
    struct media_event ev;
};

#define REF_BUCKETS 4096

static struct {
    bool up;
    struct media_config cfg;
    media_event_fn fn;
    void *arg;
    cw_queue *evq;
    struct event *ev;
    struct mref *refs[REF_BUCKETS];
    int nsessions;
    struct rroom *rooms;
    media_id next_id;
    int next_port;
    int rr; /* round-robin worker for new sessions */
} g;

/* ---- events from workers ---- */

void engine_emit(const struct media_event *ev)
{
    struct evmsg *e = cw_malloc(sizeof *e);
    memset(e, 0, sizeof *e);
    e->ev = *ev;
    cw_queue_push(g.evq, &e->m);
}

static void on_event(cw_msg *m, void *arg)
{
    struct evmsg *e = (struct evmsg *)m;
    if (g.fn) g.fn(&e->ev, g.arg);
    free(e);
}

/* ---- directory ---- */

static struct mref *ref_find(media_id id)
{
    for (struct mref *r = g.refs[id % REF_BUCKETS]; r; r = r->next)
        if (r->id == id) return r;
    return NULL;
}

static void ref_del(media_id id)
{
    struct mref **pp = &g.refs[id % REF_BUCKETS];
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->next;
    if (*pp) {
        struct mref *r = *pp;
        *pp = r->next;
        free(r);
        g.nsessions--;
    }
}

static struct rroom *room_find(uint32_t id)
{
    for (struct rroom *r = g.rooms; r; r = r->next)
        if (r->id == id) return r;
    return NULL;
}

/* s left its room (by leave, close, move or a bridge) */
static void room_left(struct mref *s)
{
    if (!s->room) return;
    struct rroom **pp = &g.rooms;
    while (*pp && (*pp)->id != s->room)
        pp = &(*pp)->next;
    if (*pp && --(*pp)->count <= 0) {
        struct rroom *r = *pp;
        *pp = r->next;
        free(r);
    }
    s->room = 0;
}

static void post(struct mref *r, struct mcmd *c)
{
    engine_post(r->worker, c);
}

/* Put session s on worker to (it leaves its bridge, room and spy group). */
static void move_to(struct mref *s, int to)
{
    if (s->worker == to) return;
    room_left(s);
    engine_post(to, mcmd_new(CMD_EXPECT, s->id));
    struct mcmd *c = mcmd_new(CMD_MOVE, s->id);
    c->to = to;
    c->posted_us = cw_mono_us();
    post(s, c);
    s->worker = to;
}

/* ---- life cycle ---- */

int media_init(const struct media_config *cfg, media_event_fn fn, void *arg)
{
    if (g.up) return CW_ESTATE;
    if (!loop_base()) return CW_ESTATE;
    if (cfg->rtp_min < 1024 || cfg->rtp_max > 65534 || cfg->rtp_max - cfg->rtp_min < 4) {
        log_error("media", "bad RTP port range %d-%d", cfg->rtp_min, cfg->rtp_max);
        return CW_EINVAL;
    }
    struct in_addr a;
    if (inet_pton(AF_INET, cfg->ip[0] ? cfg->ip : "0.0.0.0", &a) != 1) {
        log_error("media", "bad RTP address '%s' (IPv4 expected)", cfg->ip);
        return CW_EINVAL;
    }
    memset(&g, 0, sizeof g);
    g.cfg = *cfg;
    if (!g.cfg.ip[0]) cw_strlcpy(g.cfg.ip, "0.0.0.0", sizeof g.cfg.ip);
    g.fn = fn;
    g.arg = arg;
    media_cfg.rtp_timeout_s = cfg->rtp_timeout_s;
    media_cfg.realtime = cfg->realtime;
    cw_strlcpy(media_cfg.tone_locale, cfg->tone_locale[0] ? cfg->tone_locale : "ru",
               sizeof media_cfg.tone_locale);
    sound_set_dirs(cfg->sounds_dir, cfg->var_dir);
    g.evq = cw_queue_new();
    if (!g.evq) return CW_EIO;
    g.ev = loop_attach_queue(g.evq, on_event, NULL);
    int n = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    g.next_id = 1;
    g.next_port = g.cfg.rtp_min + (g.cfg.rtp_min & 1);
    if (engine_start(n)) {
        log_error("media", "cannot start media workers");
        return CW_EIO;
    }
    g.up = true;
    log_info("media", "%d worker(s), RTP %s:%d-%d, tones %s", n, g.cfg.ip, g.cfg.rtp_min,
             g.cfg.rtp_max, media_cfg.tone_locale);
    return CW_OK;
}

void media_shutdown(void)
{
    if (!g.up) return;
    engine_stop();
    if (g.ev) {
        free(event_get_callback_arg(g.ev));
        event_free(g.ev);
    }
    cw_queue_free(g.evq);
    for (int i = 0; i < REF_BUCKETS; i++) {
        while (g.refs[i]) {
            struct mref *r = g.refs[i];
            g.refs[i] = r->next;
            free(r);
        }
    }
    while (g.rooms) {
        struct rroom *r = g.rooms;
        g.rooms = r->next;
        free(r);
    }
    sound_cache_clear();
    moh_clear_all();
    memset(&g, 0, sizeof g);
}

static int bind_udp(const struct in_addr *ip, int port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr = *ip;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    return fd;
}

int media_session_open(media_id near, media_id *out_id, int *out_port)
{
    if (!g.up) return CW_ESTATE;
    if (g.cfg.max_sessions > 0 && g.nsessions >= g.cfg.max_sessions) {
        log_warn("media", "session refused: %d sessions is the configured maximum", g.nsessions);
        return CW_EBUSY;
    }
    struct in_addr ip;
    inet_pton(AF_INET, g.cfg.ip, &ip);
    int span = (g.cfg.rtp_max - g.cfg.rtp_min) / 2;
    int fd = -1, fd2 = -1, port = 0;
    for (int tries = 0; tries < span; tries++) {
        port = g.next_port;
        g.next_port += 2;
        if (g.next_port + 1 > g.cfg.rtp_max) g.next_port = g.cfg.rtp_min + (g.cfg.rtp_min & 1);
        fd = bind_udp(&ip, port);
        if (fd < 0) continue;
        fd2 = bind_udp(&ip, port + 1);
        if (fd2 >= 0) break;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        log_error("media", "no free RTP port pair in %d-%d", g.cfg.rtp_min, g.cfg.rtp_max);
        return CW_EBUSY;
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    int tos = 0xB8; /* DSCP EF */
    setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
    media_id id;
    do {
        id = g.next_id++;
        if (!g.next_id) g.next_id = 1;
    } while (!id || ref_find(id));
    struct mref *r = cw_calloc(1, sizeof *r);
    r->id = id;
    struct mref *nr = near ? ref_find(near) : NULL;
    if (nr) {
        r->worker = nr->worker;
    } else {
        r->worker = g.rr;
        g.rr = (g.rr + 1) % engine_workers();
    }
    r->next = g.refs[id % REF_BUCKETS];
    g.refs[id % REF_BUCKETS] = r;
    g.nsessions++;
    struct mcmd *c = mcmd_new(CMD_ADD, id);
    c->sess = engine_session_new(id, fd, fd2, port);
    post(r, c);
    *out_id = id;
    if (out_port) *out_port = port;
    return CW_OK;
}

int media_session_set_remote(media_id id, const struct media_remote *rm)
{
    struct mref *r = g.up ? ref_find(id) : NULL;
    if (!r) return CW_ENOENT;
    struct in_addr a;
    if (!rm || inet_pton(AF_INET, rm->ip, &a) != 1 || rm->port < 1 || rm->port > 65535)
        return CW_EINVAL;
    if (rm->pt != MEDIA_PCMU && rm->pt != MEDIA_PCMA && rm->pt != MEDIA_G722) return CW_EINVAL;
    if (rm->dtmf_pt < 0 || rm->dtmf_pt > 127 || (rm->dtmf_pt >= 72 && rm->dtmf_pt <= 76) ||
        (rm->dtmf_pt && rm->dtmf_pt == rm->pt))
        return CW_EINVAL;
    if (rm->ptime && rm->ptime != 20) {
        log_debug("media", "session %u: remote ptime %d: sending 20 ms packets", id, rm->ptime);
    }
    struct mcmd *c = mcmd_new(CMD_REMOTE, id);
    c->remote = *rm;
    post(r, c);
    return CW_OK;
}

int media_session_close(media_id id)
{
    struct mref *r = g.up ? ref_find(id) : NULL;
    if (!r) return CW_ENOENT;
    room_left(r);
    post(r, mcmd_new(CMD_CLOSE, id));
    ref_del(id);
    return CW_OK;
}

/* ---- playback ---- */

static struct mref *get(media_id id)
{
    return g.up ? ref_find(id) : NULL;
}

int media_play(media_id id, const char *const *files, int nfiles, bool loop, uint32_t tag)
{
    struct mref *r = get(id);
    if (!r) return CW_ENOENT;
    if (!files || nfiles < 1 || nfiles > 256) return CW_EINVAL;
    struct mcmd *c = mcmd_new(CMD_PLAY, id);
    c->files = cw_calloc((size_t)nfiles, sizeof *c->files);
    for (int i = 0; i < nfiles; i++) {
        char path[1024];
        if (!files[i] || sound_resolve(files[i], path, sizeof path)) {
            log_warn("media", "session %u: bad sound name '%s'", id, files[i] ? files[i] : "");
            c->nfiles = i;
            mcmd_free(c);
            return CW_EINVAL;
        }
        c->files[i] = cw_strdup(path);
        c->nfiles = i + 1;
    }
    c->bval = loop;
    c->tag = tag;
    post(r, c);
    return CW_OK;
}

int media_play_tone(media_id id, enum media_tone tone, uint32_t tag)
{
    struct mref *r = get(id);
    if (!r) return CW_ENOENT;
    if (!tone_plan_for(media_cfg.tone_locale, (int)tone)) return CW_EINVAL;
    struct mcmd *c = mcmd_new(CMD_TONE, id);
    c->ival = (int)tone;
    c->tag = tag;
    post(r, c);
    return CW_OK;
}

int media_moh(media_id id, const char *stream, uint32_t tag)
{
    struct mref *r = get(id);
    if (!r) return CW_ENOENT;
    if (!stream || !*stream || strlen(stream) >= 64) return CW_EINVAL;
    struct mcmd *c = mcmd_new(CMD_MOH, id);
    c->str = cw_strdup(stream);
    c->tag = tag;
    post(r, c);
    return CW_OK;
}

int media_moh_define(const char *stream, const char *const *files, int nfiles)
{
    return moh_define(stream, files, nfiles);
}

int media_stop(media_id id)
{
    struct mref *r = get(id);
    if (!r) return CW_ENOENT;
    post(r, mcmd_new(CMD_STOP, id));
    return CW_OK;
}

/* ---- recording ---- */

int media_record_start(media_id id, const char *path, bool stereo, int max_s, int silence_s,
                       uint32_t tag)
{
    struct mref *r = get(id);
    if (!r) return CW_ENOENT;
    if (!path || !*path || max_s < 0 || silence_s < 0) return CW_EINVAL;
    struct mcmd *c = mcmd_new(CMD_REC_START, id);
    c->str = cw_strdup(path);
    c->bval = stereo;
    c->ival = max_s;
    c->ival2 = silence_s;
    c->tag = tag;
    post(r, c);
    return CW_OK;
}

int media_record_pause(media_id id, bool paused)
{
    struct mref *r = get(id);
    if (!r) return CW_ENOENT;
    struct mcmd *c = mcmd_new(CMD_REC_PAUSE, id);
    c->bval = paused;
    post(r, c);
    return CW_OK;
}

int media_record_stop(media_id id)
{
    struct mref *r = get(id);
    if (!r) return CW_ENOENT;
    post(r, mcmd_new(CMD_REC_STOP, id));
    return CW_OK;
}

int media_send_dtmf(media_id id, char digit, int duration_ms)
{
    struct mref *r = get(id);
    if (!r) return CW_ENOENT;
    if (dtmf_event_code(digit) < 0) return CW_EINVAL;
    if (duration_ms <= 0) duration_ms = 100;
    if (duration_ms < 40) duration_ms = 40;
    if (duration_ms > 5000) duration_ms = 5000;
    struct mcmd *c = mcmd_new(CMD_DTMF, id);
    c->ival = digit >= 'a' && digit <= 'd' ? digit - 'a' + 'A' : digit;
    c->ival2 = duration_ms;
    post(r, c);
    return CW_OK;
}

int media_talk_detect(media_id id, bool on)
{
    struct mref *r = get(id);
    if (!r) return CW_ENOENT;
    struct mcmd *c = mcmd_new(CMD_TALK, id);
    c->bval = on;
    post(r, c);
    return CW_OK;
}

/* ---- bridge, conference, spy ---- */

int media_bridge(media_id a, media_id b)
{
    struct mref *ra = get(a), *rb = get(b);
    if (!ra || !rb) return CW_ENOENT;
    if (a == b) return CW_EINVAL;
    room_left(ra);
    room_left(rb);
    move_to(rb, ra->worker);
    struct mcmd *c = mcmd_new(CMD_BRIDGE, a);
    c->id2 = b;
    post(ra, c);
    return CW_OK;
}

int media_unbridge(media_id a)
{
    struct mref *r = get(a);
    if (!r) return CW_ENOENT;
    post(r, mcmd_new(CMD_UNBRIDGE, a));
    return CW_OK;
}

int media_conf_join(media_id id, uint32_t room, unsigned flags)
{
    struct mref *r = get(id);
    if (!r) return CW_ENOENT;
    if (!room) return CW_EINVAL;
    if (r->room == room) return media_conf_set(id, flags);
    room_left(r);
    struct rroom *rm = room_find(room);
    if (!rm) {
        rm = cw_calloc(1, sizeof *rm);
        rm->id = room;
        rm->worker = r->worker;
        rm->next = g.rooms;
        g.rooms = rm;
    }
    move_to(r, rm->worker);
    rm->count++;
    r->room = room;
    struct mcmd *c = mcmd_new(CMD_CONF_JOIN, id);
    c->ival = (int)room;
    c->flags = flags;
    post(r, c);
    return CW_OK;
}

int media_conf_set(media_id id, unsigned flags)
{
    struct mref *r = get(id);
    if (!r) return CW_ENOENT;
    if (!r->room) return CW_ESTATE;
    struct mcmd *c = mcmd_new(CMD_CONF_SET, id);
    c->flags = flags;
    post(r, c);
    return CW_OK;
}

int media_conf_leave(media_id id)
{
    struct mref *r = get(id);
    if (!r) return CW_ENOENT;
    if (!r->room) return CW_ESTATE;
    room_left(r);
    post(r, mcmd_new(CMD_CONF_LEAVE, id));
    return CW_OK;
}

int media_spy(media_id supervisor, media_id customer, media_id agent, enum media_spy_mode mode)
{
    struct mref *rs = get(supervisor), *rc = get(customer), *ra = get(agent);
    if (!rs || !rc || !ra) return CW_ENOENT;
    if (supervisor == customer || supervisor == agent || customer == agent) return CW_EINVAL;
    if (mode < MEDIA_SPY_LISTEN || mode > MEDIA_SPY_BARGE) return CW_EINVAL;
    move_to(ra, rc->worker);
    room_left(rs);
    move_to(rs, rc->worker);
    struct mcmd *c = mcmd_new(CMD_SPY, supervisor);
    c->id2 = customer;
    c->id3 = agent;
    c->ival = (int)mode;
    post(rs, c);
    return CW_OK;
}

int media_spy_stop(media_id supervisor)
{
    struct mref *r = get(supervisor);
    if (!r) return CW_ENOENT;
    post(r, mcmd_new(CMD_SPY_STOP, supervisor));
    return CW_OK;
}

/* ---- fax ---- */

static int fax(media_id id, const char *tiff, bool send, uint32_t tag)
{
    struct mref *r = get(id);
    if (!r) return CW_ENOENT;
    if (!tiff || !*tiff) return CW_EINVAL;
    if (send && access(tiff, R_OK)) {
        log_warn("media", "session %u: fax file %s: %s", id, tiff, strerror(errno));
        return CW_EINVAL;
    }
    struct mcmd *c = mcmd_new(CMD_FAX, id);
    c->str = cw_strdup(tiff);
    c->bval = send;
    c->tag = tag;
    post(r, c);
    return CW_OK;
}

int media_fax_receive(media_id id, const char *tiff_path, uint32_t tag)
{
    return fax(id, tiff_path, false, tag);
}

int media_fax_send(media_id id, const char *tiff_path, uint32_t tag)
{
    return fax(id, tiff_path, true, tag);
}

int media_dtmf_mode_parse(const char *name, enum media_dtmf_mode *out)
{
    if (!name) return CW_EINVAL;
    if (!strcmp(name, "auto"))
        *out = MEDIA_DTMF_AUTO;
    else if (!strcmp(name, "rfc4733") || !strcmp(name, "rfc2833"))
        *out = MEDIA_DTMF_RFC4733;
    else if (!strcmp(name, "inband"))
        *out = MEDIA_DTMF_INBAND;
    else
        return CW_EINVAL;
    return CW_OK;
}

int media_active_sessions(void)
{
    return g.nsessions;
}

int media_worker_of(media_id id)
{
    struct mref *r = get(id);
    return r ? r->worker : CW_ENOENT;
}
