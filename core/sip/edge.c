/*
 * edge.c - the core-thread half of the SIP edge: start and stop, the two
 * queues to and from the sofia thread, the legs as the core sees them, and
 * the public call API of sip.h (sip_call, sip_respond, sip_hangup, ...).
 *
 * Owns the core-side leg table (struct core_leg): a leg is added when an
 * INVITE is handed to the call layer or sip_call() starts one, and removed
 * when its final event is delivered or the core ends it. Runs on the core
 * thread only; the sofia thread is reached only through edge_command().
 */
#include "base/cw.h"
#include "config/config.h"
#include "log/log.h"
#include "loop/loop.h"
#include "sip/sdp.h"
#include "sip/sip_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct core_leg {
    sip_leg_id id;
    bool inbound;
    bool answered;
    bool final_sent;
    int64_t trunk_id;
    char call_id[128];
    char local_tag[64]; /* known once answered */
    char remote_tag[64];
};

static struct {
    bool running;
    struct sip_config cfg;
    struct sip_handlers h;
    cw_queue *to_core;
    cw_queue *commands;
    struct event *qev;
    struct idmap legs;
} E;

static _Atomic uint64_t next_id = 1;

uint64_t sip_next_id(void)
{
    return atomic_fetch_add(&next_id, 1);
}

/* ------------------------------------------------------------------ */
/* causes */

const char *sip_cause_name(enum sip_cause c)
{
    switch (c) {
    case SIP_CAUSE_NONE:
        return "none";
    case SIP_CAUSE_NORMAL:
        return "normal";
    case SIP_CAUSE_BUSY:
        return "busy";
    case SIP_CAUSE_NO_ANSWER:
        return "no_answer";
    case SIP_CAUSE_REJECTED:
        return "rejected";
    case SIP_CAUSE_NO_ROUTE:
        return "no_route";
    case SIP_CAUSE_UNAVAILABLE:
        return "unavailable";
    case SIP_CAUSE_CANCELLED:
        return "cancelled";
    case SIP_CAUSE_MEDIA:
        return "media";
    case SIP_CAUSE_RTP_TIMEOUT:
        return "rtp_timeout";
    case SIP_CAUSE_FAILED:
        return "failed";
    }
    return "failed";
}

enum sip_cause sip_cause_from_status(int status)
{
    switch (status) {
    case 486:
    case 600:
        return SIP_CAUSE_BUSY;
    case 480:
    case 408:
        return SIP_CAUSE_NO_ANSWER;
    case 603:
    case 403:
        return SIP_CAUSE_REJECTED;
    case 404:
    case 484:
    case 604:
        return SIP_CAUSE_NO_ROUTE;
    case 502:
    case 503:
        return SIP_CAUSE_UNAVAILABLE;
    case 487:
        return SIP_CAUSE_CANCELLED;
    case 488:
    case 606:
        return SIP_CAUSE_MEDIA;
    default:
        return status < 300 ? SIP_CAUSE_NORMAL : SIP_CAUSE_FAILED;
    }
}

int sip_status_from_cause(enum sip_cause c)
{
    switch (c) {
    case SIP_CAUSE_BUSY:
        return 486;
    case SIP_CAUSE_NO_ANSWER:
        return 480;
    case SIP_CAUSE_REJECTED:
        return 603;
    case SIP_CAUSE_NO_ROUTE:
        return 404;
    case SIP_CAUSE_UNAVAILABLE:
        return 503;
    case SIP_CAUSE_MEDIA:
        return 488;
    case SIP_CAUSE_RTP_TIMEOUT:
        return 408;
    case SIP_CAUSE_FAILED:
        return 500;
    default:
        return 487; /* none, normal, cancelled: the caller's attempt just ends */
    }
}

/* ------------------------------------------------------------------ */
/* messages */

void edge_msg_free(cw_msg *m)
{
    if (m->type == EDGE_REQUEST) free(((struct edge_request *)m)->body);
    free(m);
}

void stack_cmd_free(cw_msg *m)
{
    switch (m->type) {
    case CMD_RESPOND:
    case CMD_REOFFER:
        free(((struct cmd_respond *)m)->headers);
        free(((struct cmd_respond *)m)->body);
        break;
    case CMD_CALL:
        free(((struct cmd_call *)m)->sdp);
        free(((struct cmd_call *)m)->headers);
        break;
    case CMD_NOTIFY:
        free(((struct cmd_notify *)m)->body);
        break;
    case CMD_TRUNK_REG: {
        struct cmd_trunk *t = (struct cmd_trunk *)m;
        /* the password never outlives the command */
        memset(t->pass, 0, sizeof t->pass);
        break;
    }
    default:
        break;
    }
    free(m);
}

bool edge_running(void)
{
    return E.running;
}

void edge_command(cw_msg *m)
{
    if (!E.running) {
        stack_cmd_free(m);
        return;
    }
    cw_queue_push(E.commands, m);
}

void edge_respond(uint64_t id, int status, const char *reason, const char *headers,
                  const char *body, const char *ctype)
{
    struct cmd_respond *c = cw_calloc(1, sizeof *c);
    c->m.type = CMD_RESPOND;
    c->id = id;
    c->status = status;
    cw_strlcpy(c->reason, reason ? reason : "", sizeof c->reason);
    c->headers = headers ? cw_strdup(headers) : NULL;
    c->body = body ? cw_strdup(body) : NULL;
    cw_strlcpy(c->ctype, ctype ? ctype : "", sizeof c->ctype);
    edge_command(&c->m);
}

void edge_drop(uint64_t id)
{
    struct cmd_respond *c = cw_calloc(1, sizeof *c);
    c->m.type = CMD_RESPOND;
    c->id = id;
    c->drop = true;
    edge_command(&c->m);
}

/* ------------------------------------------------------------------ */
/* legs */

static struct core_leg *leg_add(sip_leg_id id, bool inbound, const char *call_id)
{
    struct core_leg *l = cw_calloc(1, sizeof *l);
    l->id = id;
    l->inbound = inbound;
    cw_strlcpy(l->call_id, call_id ? call_id : "", sizeof l->call_id);
    idmap_put(&E.legs, id, l);
    return l;
}

static void leg_remove(struct core_leg *l)
{
    idmap_del(&E.legs, l->id);
    if (l->trunk_id) trunks_call_ended(l->trunk_id, l->inbound);
    free(l);
}

static void deliver(const struct sip_leg_event *ev)
{
    if (E.h.leg_event) E.h.leg_event(ev, E.h.arg);
}

static void on_leg(struct edge_leg *m)
{
    struct core_leg *l = idmap_get(&E.legs, m->ev.leg);
    if (!l) return; /* the core ended it already */
    if (!l->call_id[0] && m->call_id[0]) cw_strlcpy(l->call_id, m->call_id, sizeof l->call_id);
    if (m->ev.type == SIP_EV_ANSWERED) {
        l->answered = true;
        cw_strlcpy(l->local_tag, m->local_tag, sizeof l->local_tag);
        cw_strlcpy(l->remote_tag, m->remote_tag, sizeof l->remote_tag);
    }
    log_debug("sip", "leg %llu: event %d status %d cause %s", (unsigned long long)m->ev.leg,
              m->ev.type, m->ev.status, sip_cause_name(m->ev.cause));
    bool final = m->ev.type == SIP_EV_FAILED || m->ev.type == SIP_EV_ENDED;
    struct sip_leg_event ev = m->ev;
    if (final) leg_remove(l);
    deliver(&ev);
}

/* Deliver a failure for a leg that never reached the network. */
struct late_fail {
    sip_leg_id id;
    int status;
    enum sip_cause cause;
};

static void late_fail_cb(evutil_socket_t fd, short what, void *arg)
{
    struct late_fail *f = arg;
    struct core_leg *l = idmap_get(&E.legs, f->id);
    if (l) {
        leg_remove(l);
        struct sip_leg_event ev = {
            .type = SIP_EV_FAILED, .leg = f->id, .status = f->status, .cause = f->cause};
        deliver(&ev);
    }
    free(f);
}

static sip_leg_id fail_later(sip_leg_id id, int status, enum sip_cause cause)
{
    struct late_fail *f = cw_calloc(1, sizeof *f);
    f->id = id;
    f->status = status;
    f->cause = cause;
    leg_add(id, false, NULL);
    static const struct timeval now = {0, 0};
    event_base_once(loop_base(), -1, EV_TIMEOUT, late_fail_cb, f, &now);
    return id;
}

/* ------------------------------------------------------------------ */
/* inbound INVITE */

static const int media_codecs[] = {9}; /* besides PCMU/PCMA, which are always allowed */

static void invite_incoming(struct edge_request *r)
{
    if (bans_is_banned(r->src_ip)) {
        edge_drop(r->id);
        return;
    }
    struct sip_incoming in;
    memset(&in, 0, sizeof in);
    in.leg = r->id;
    cw_strlcpy(in.call_id, r->call_id, sizeof in.call_id);
    cw_strlcpy(in.src_ip, r->src_ip, sizeof in.src_ip);
    in.src_port = r->src_port;
    cw_strlcpy(in.replaces, r->replaces, sizeof in.replaces);
    cw_strlcpy(in.to_user, r->ruri_user, sizeof in.to_user);
    cw_strlcpy(in.to_host, r->ruri_host, sizeof in.to_host);

    char trunk_login[64] = "";
    int64_t domain_id = 0;
    int64_t trunk_id = trunks_match_source(r->src_ip, r->src_port, r->from_host, &domain_id,
                                           trunk_login, sizeof trunk_login);
    if (trunk_id > 0) {
        /* a trunk, trusted by its address: what was dialled is in the To
           header when the request URI only names our registration */
        in.from.trunk_id = trunk_id;
        in.from.domain_id = domain_id;
        if (!in.to_user[0] || (trunk_login[0] && !strcmp(in.to_user, trunk_login)))
            cw_strlcpy(in.to_user, r->to_user, sizeof in.to_user);
        if (!trunks_line_free(trunk_id, true)) {
            log_info("sip", "trunk %lld: no free incoming line for call %s", (long long)trunk_id,
                     r->call_id);
            edge_respond(r->id, 503, "No Free Line", NULL, NULL, NULL);
            return;
        }
    } else {
        struct auth_user u;
        if (!r->from_host[0]) {
            edge_respond(r->id, 400, "Missing From Host", NULL, NULL, NULL);
            return;
        }
        if (auth_request(r, "INVITE", r->from_host, NULL, true, &u) != AUTH_OK) return;
        int host_status = auth_target_host(r->ruri_host, u.domain);
        if (host_status) {
            /* not an open proxy: a device calls within its own domain (other domains of
               the pool by routing number) */
            log_info("sip", "call %s from %s@%s to %s@%s: %s", r->call_id, u.login, u.domain,
                     r->ruri_user, r->ruri_host,
                     host_status == 403 ? "another tenant's domain" : "a domain not served");
            edge_respond(r->id, host_status,
                         host_status == 403 ? "Forbidden (Another Domain)" : "Domain Not Served",
                         NULL, NULL, NULL);
            return;
        }
        in.from.domain_id = u.domain_id;
        in.from.user_id = u.user_id;
        if (!r->from_display[0]) cw_strlcpy(r->from_display, u.display, sizeof r->from_display);
        cw_strlcpy(r->from_user, u.extension[0] ? u.extension : u.login, sizeof r->from_user);
        cw_strlcpy(r->from_host, u.domain, sizeof r->from_host);
    }
    cw_strlcpy(in.from.user, r->from_user, sizeof in.from.user);
    cw_strlcpy(in.from.host, r->from_host, sizeof in.from.host);
    cw_strlcpy(in.from.display, r->from_display, sizeof in.from.display);

    if (r->body) {
        int pt, dtmf;
        if (sdp_parse(r->body, strlen(r->body), &in.offer) != CW_OK) {
            edge_respond(r->id, 488, "Not Acceptable Here",
                         "Warning: 399 callwright \"Unusable SDP\"\r\n", NULL, NULL);
            return;
        }
        if (sdp_negotiate(&in.offer, media_codecs, (int)CW_ARRAY_LEN(media_codecs), &pt, &dtmf) !=
            CW_OK) {
            log_info("sip", "call %s from %s: no common codec", r->call_id, r->src_ip);
            edge_respond(r->id, 488, "Not Acceptable Here",
                         "Warning: 305 callwright \"Incompatible media format\"\r\n", NULL, NULL);
            return;
        }
        in.has_offer = true;
    }
    if (!E.h.incoming) {
        edge_respond(r->id, 480, "No Call Handler", NULL, NULL, NULL);
        return;
    }
    struct core_leg *l = leg_add(r->id, true, r->call_id);
    if (trunk_id > 0) {
        l->trunk_id = trunk_id;
        trunks_call_started(trunk_id, true);
    }
    log_info("sip", "call %s: %s@%s -> %s (leg %llu)", r->call_id, in.from.user, in.from.host,
             in.to_user, (unsigned long long)r->id);
    E.h.incoming(&in, E.h.arg);
}

static void on_request(struct edge_request *r)
{
    switch (r->kind) {
    case REQ_REGISTER:
        registrar_on_register(r);
        break;
    case REQ_INVITE:
        invite_incoming(r);
        break;
    case REQ_SUBSCRIBE:
        blf_on_subscribe(r);
        break;
    case REQ_OPTIONS:
        edge_respond(r->id, 200, "OK", NULL, NULL, NULL);
        break;
    }
}

static void on_result(struct edge_result *r)
{
    switch (r->kind) {
    case RES_PING:
        registrar_ping_result(r);
        break;
    case RES_TRUNK_REG:
        trunks_reg_result(r);
        break;
    case RES_SUB_ENDED:
        blf_sub_ended(r->id);
        break;
    }
}

static void on_edge_msg(cw_msg *m, void *arg)
{
    switch (m->type) {
    case EDGE_REQUEST:
        on_request((struct edge_request *)m);
        break;
    case EDGE_LEG:
        on_leg((struct edge_leg *)m);
        break;
    case EDGE_RESULT:
        on_result((struct edge_result *)m);
        break;
    }
    edge_msg_free(m);
}

/* ------------------------------------------------------------------ */
/* start / stop */

void sip_config_from_settings(struct sip_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cw_strlcpy(cfg->listen, config_str("sip.listen"), sizeof cfg->listen);
    cfg->port = (int)config_int("sip.port");
    cfg->tls_port = (int)config_int("sip.tls_port");
    cw_strlcpy(cfg->tls_dir, config_str("sip.tls_cert"), sizeof cfg->tls_dir);
    cw_strlcpy(cfg->public_ip, config_str("sip.public_ip"), sizeof cfg->public_ip);
    snprintf(cfg->user_agent, sizeof cfg->user_agent, "Callwright/%s", CW_VERSION);
}

void sip_set_handlers(const struct sip_handlers *h)
{
    if (h)
        E.h = *h;
    else
        memset(&E.h, 0, sizeof E.h);
}

int sip_start(const struct sip_config *cfg, const struct sip_handlers *h)
{
    if (E.running) return CW_ESTATE;
    memset(&E, 0, sizeof E);
    E.cfg = *cfg;
    sip_set_handlers(h);
    E.to_core = cw_queue_new();
    E.commands = cw_queue_new();
    if (!E.to_core || !E.commands) {
        cw_queue_free(E.to_core);
        cw_queue_free(E.commands);
        return CW_ENOMEM;
    }
    E.qev = loop_attach_queue(E.to_core, on_edge_msg, NULL);
    struct stack_params p = {.cfg = *cfg,
                             .session_timer = (int)config_int("sip.session_timer"),
                             .session_min_se = (int)config_int("sip.session_min_se"),
                             .to_core = E.to_core,
                             .commands = E.commands};
    int rc = stack_start(&p);
    if (rc) {
        loop_detach_queue(E.qev);
        cw_queue_free(E.to_core);
        cw_queue_free(E.commands);
        memset(&E, 0, sizeof E);
        return rc;
    }
    E.running = true;
    auth_init();
    bans_init();
    registrar_init();
    blf_init();
    trunks_init();
    return CW_OK;
}

static void free_leg(void *p)
{
    free(p);
}

void sip_stop(void)
{
    if (!E.running) return;
    trunks_shutdown();
    blf_shutdown();
    registrar_shutdown();
    bans_shutdown();
    struct cmd_simple *c = cw_calloc(1, sizeof *c);
    c->m.type = CMD_STOP;
    cw_queue_push(E.commands, &c->m);
    stack_join();
    E.running = false;
    loop_detach_queue(E.qev);
    cw_queue_free(E.to_core); /* frees what the loop did not get to */
    cw_queue_free(E.commands);
    idmap_clear(&E.legs, free_leg);
    memset(&E, 0, sizeof E);
    log_info("sip", "stopped");
}

/* ------------------------------------------------------------------ */
/* the call API */

/* Keep what may go inside a quoted display name or a URI user part. */
static void clean(char *dst, size_t size, const char *src, bool uri_user)
{
    size_t j = 0;
    for (const char *p = src ? src : ""; *p && j + 1 < size; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>') continue;
        if (uri_user && (c == ' ' || c == '@' || c == ':' || c == ';' || c == '?' || c == ','))
            continue;
        dst[j++] = (char)c;
    }
    dst[j] = '\0';
}

static bool uri_ok(const char *uri)
{
    if (strncasecmp(uri, "sip:", 4) && strncasecmp(uri, "sips:", 5)) return false;
    for (const char *p = uri; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == '<' || *p == '>' || *p == '"') return false;
    return strlen(uri) > 5;
}

static bool headers_ok(const char *h)
{
    /* "Name: value\r\n" lines only: no bare CR or LF, no empty line */
    for (const char *p = h; *p; p++) {
        if (*p == '\r' && p[1] != '\n') return false;
        if (*p == '\n' && (p == h || p[-1] != '\r')) return false;
        if (*p == '\n' && p[1] == '\r') return false;
    }
    return true;
}

sip_leg_id sip_call(const struct sip_invite *inv)
{
    if (!E.running || !inv || !inv->sdp) return 0;
    if (inv->headers[0] && !headers_ok(inv->headers)) {
        log_error("sip", "sip_call: malformed extra headers");
        return 0;
    }
    sip_leg_id id = sip_next_id();
    struct cmd_call *c = cw_calloc(1, sizeof *c);
    c->m.type = CMD_CALL;
    c->id = id;
    unsigned char rnd[12];
    char hex[25];
    cw_random_bytes(rnd, sizeof rnd);
    cw_hex(rnd, sizeof rnd, hex);
    snprintf(c->call_id, sizeof c->call_id, "%s@callwright", hex);
    c->timeout_s = inv->timeout_s > 0 ? inv->timeout_s : (int)config_int("sip.ring_timeout");

    char disp[128], user[64], host[128];
    clean(disp, sizeof disp, inv->from_display, false);
    clean(user, sizeof user, inv->from_user[0] ? inv->from_user : "anonymous", true);
    clean(host, sizeof host, inv->from_host, true);
    int64_t trunk_id = 0;

    switch (inv->kind) {
    case SIP_TARGET_USER: {
        char aor[256];
        c->nbranches =
            registrar_branches(inv->user_id, c->branches, CALL_MAX_BRANCHES, aor, sizeof aor);
        if (c->nbranches == 0) {
            stack_cmd_free(&c->m);
            return fail_later(id, 480, SIP_CAUSE_NO_ROUTE);
        }
        snprintf(c->to, sizeof c->to, "<%s>", aor);
        break;
    }
    case SIP_TARGET_TRUNK: {
        int64_t dom = 0;
        int rc = trunks_target(inv->trunk_id, inv->uri, c, &dom);
        if (rc == CW_EBUSY) {
            stack_cmd_free(&c->m);
            return fail_later(id, 503, SIP_CAUSE_UNAVAILABLE);
        }
        if (rc) {
            stack_cmd_free(&c->m);
            return fail_later(id, 404, SIP_CAUSE_NO_ROUTE);
        }
        trunk_id = inv->trunk_id;
        /* towards a provider, From names its realm or host, not our tenant */
        clean(host, sizeof host, trunks_from_host(trunk_id), true);
        break;
    }
    case SIP_TARGET_URI:
        if (!uri_ok(inv->uri)) {
            stack_cmd_free(&c->m);
            log_error("sip", "sip_call: not a SIP URI: %.80s", inv->uri);
            return 0;
        }
        cw_strlcpy(c->branches[0].uri, inv->uri, sizeof c->branches[0].uri);
        c->nbranches = 1;
        snprintf(c->to, sizeof c->to, "<%s>", inv->uri);
        break;
    default:
        stack_cmd_free(&c->m);
        return 0;
    }
    if (!host[0]) cw_strlcpy(host, "callwright.invalid", sizeof host);
    if (disp[0])
        snprintf(c->from, sizeof c->from, "\"%s\" <sip:%s@%s>", disp, user, host);
    else
        snprintf(c->from, sizeof c->from, "<sip:%s@%s>", user, host);
    c->sdp = cw_strdup(inv->sdp);
    c->headers = inv->headers[0] ? cw_strdup(inv->headers) : NULL;
    struct core_leg *l = leg_add(id, false, c->call_id);
    if (trunk_id) {
        l->trunk_id = trunk_id;
        trunks_call_started(trunk_id, false);
    }
    log_info("sip", "call %s: %s -> %s (leg %llu, %d branch%s)", c->call_id, c->from,
             c->branches[0].uri, (unsigned long long)id, c->nbranches,
             c->nbranches == 1 ? "" : "es");
    edge_command(&c->m);
    return id;
}

int sip_respond(sip_leg_id leg, int status, const char *reason, const char *sdp)
{
    struct core_leg *l = idmap_get(&E.legs, leg);
    if (!l) return CW_ENOENT;
    if (!l->inbound || l->final_sent) return CW_ESTATE;
    if (status < 101 || status > 699) return CW_EINVAL;
    if (status >= 200 && status < 300 && !sdp) return CW_EINVAL;
    edge_respond(leg, status, reason, NULL, sdp, NULL);
    if (status >= 200) l->final_sent = true;
    if (status >= 300) leg_remove(l);
    return CW_OK;
}

int sip_hangup(sip_leg_id leg, enum sip_cause cause)
{
    struct core_leg *l = idmap_get(&E.legs, leg);
    if (!l) return CW_ENOENT;
    struct cmd_simple *c = cw_calloc(1, sizeof *c);
    c->m.type = CMD_HANGUP;
    c->id = leg;
    c->status = sip_status_from_cause(cause);
    edge_command(&c->m);
    leg_remove(l);
    return CW_OK;
}

int sip_reoffer(sip_leg_id leg, const char *sdp)
{
    struct core_leg *l = idmap_get(&E.legs, leg);
    if (!l) return CW_ENOENT;
    if (!l->answered || !sdp) return CW_ESTATE;
    struct cmd_respond *c = cw_calloc(1, sizeof *c);
    c->m.type = CMD_REOFFER;
    c->id = leg;
    c->body = cw_strdup(sdp);
    edge_command(&c->m);
    return CW_OK;
}

int sip_refer_result(sip_leg_id leg, int status)
{
    struct core_leg *l = idmap_get(&E.legs, leg);
    if (!l) return CW_ENOENT;
    if (status < 100 || status > 699) return CW_EINVAL;
    struct cmd_simple *c = cw_calloc(1, sizeof *c);
    c->m.type = CMD_REFER_RESULT;
    c->id = leg;
    c->status = status;
    edge_command(&c->m);
    return CW_OK;
}

int sip_leg_call_id(sip_leg_id leg, char *out, size_t len)
{
    struct core_leg *l = idmap_get(&E.legs, leg);
    if (!l) return CW_ENOENT;
    cw_strlcpy(out, l->call_id, len);
    return CW_OK;
}

sip_leg_id sip_leg_by_dialog(const char *call_id, const char *local_tag, const char *remote_tag)
{
    if (!call_id[0] || !local_tag[0] || !remote_tag[0]) return 0;
    uint64_t *keys;
    size_t n = idmap_keys(&E.legs, &keys);
    sip_leg_id found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        struct core_leg *l = idmap_get(&E.legs, keys[i]);
        if (l && l->answered && !strcmp(l->call_id, call_id) && !strcmp(l->local_tag, local_tag) &&
            !strcmp(l->remote_tag, remote_tag))
            found = l->id;
    }
    free(keys);
    return found;
}
