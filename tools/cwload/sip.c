/*
 * sip.c - cwload's SIP side: one sofia-sip nua stack on the main thread.
 *
 * It registers the callee endpoints (queue agents, bridge B parties, the
 * register scenario's users) and answers the calls the platform offers them,
 * places the callers' calls at the set rate, answers digest challenges,
 * hangs up after the drawn hold time, and times everything it sees:
 * INVITE -> 200 (from the first INVITE, so the challenge round trip counts,
 * as it does for a phone), REGISTER -> 200, and in the queue scenario the
 * time from a caller's 200 to the agent's INVITE while an agent was free.
 *
 * One 5 ms timer drives the run: it launches calls, fires hang-ups and
 * answer delays, enforces every timeout and moves through the phases
 * (register, log in, calls, drain, unregister). Nothing waits without a
 * deadline; past the run's hard limit whatever is left is counted as failed
 * and the stack is torn down.
 *
 * Owns every call and endpoint; the RTP sessions go to rtp.c once started.
 */
#include "cwload.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#define NUA_MAGIC_T  void
#define NUA_HMAGIC_T struct hobj

#include <sofia-sip/msg_header.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/tport_tag.h>

#define TICK_MS       5
#define DONE_GRACE_US 5000000 /* a finished call's handle must terminate within this */
#define UNREG_WAIT_US 5000000
#define LOGIN_HOLD_US 10000000

enum hkind { H_CALL = 1, H_EP };

struct hobj {
    enum hkind kind;
};

/* A registered user agent that answers what the platform offers it. */
struct ep {
    struct hobj h;
    int num;
    char login[64], pass[64], ext[32];
    nua_handle_t *reg;
    bool reg_pending, registered, reg_failed, auth_tried, unreg_done, login_done;
    bool refreshing;
    int64_t reg_sent_us, next_refresh_us;
    int active;    /* calls offered to it now */
    bool reserved; /* a bridge caller is dialling it */
    int64_t free_since_us;
    struct ep *hnext; /* by-login hash chain */
};

enum call_kind { K_OUT, K_IN, K_LOGIN };
enum call_state { CS_INVITING, CS_RINGING, CS_ANSWERED, CS_BYE_SENT, CS_DONE };

struct call {
    struct hobj h;
    enum call_kind kind;
    enum call_state state;
    nua_handle_t *nh;
    struct rtp_sess *rtp;
    bool rtp_started, finished, auth_tried, cancelled;
    int rtp_port;
    int remote_dtmf_pt;
    struct ep *ep;     /* K_IN: who answers; K_LOGIN: who dials */
    struct ep *target; /* K_OUT bridge: who is dialled */
    char caller_ext[32];
    int caller_num;            /* K_OUT: number in the callers' set */
    struct sockaddr_in remote; /* K_IN: where the offer asked for media */
    int64_t t_invite, t_answer, t_hangup_at, t_answer_due, t_done;
    bool waiting_offer, offer_free; /* queue: answered, no agent INVITE matched yet */
    struct call *next, *prev;
};

enum phase { P_REGISTER, P_LOGIN, P_CALLS, P_DRAIN, P_UNREGISTER, P_END };

static struct {
    su_root_t *root;
    nua_t *nua;
    su_timer_t *tick;
    char proxy[128];
    enum phase phase;
    struct ep *eps;
    int neps;
    struct ep **by_login;
    int nbuckets;
    int reg_next; /* next endpoint to register or log in */
    int64_t phase_start_us, run_start_us, calls_start_us, hard_deadline_us, drain_deadline_us;
    int64_t next_launch_us;
    int launched, caller_next, callee_next;
    int live_out; /* outbound calls not finished */
    struct call *calls;
    int ncalls;
    bool heard_platform; /* a provisional, 2xx, challenge or request came from it */
} S;

struct sip_totals ST;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ---------------------------------------------------------------- helpers */

void cause_add_n(uint64_t n, const char *fmt, ...)
{
    char what[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const int max = (int)(sizeof ST.causes / sizeof ST.causes[0]);
    for (int i = 0; i < ST.ncauses; i++)
        if (!strcmp(ST.causes[i].what, what)) {
            ST.causes[i].n += n;
            return;
        }
    if (ST.ncauses == max) { /* the last row collects whatever does not fit */
        snprintf(ST.causes[max - 1].what, sizeof ST.causes[max - 1].what, "other causes");
        ST.causes[max - 1].n += n;
        return;
    }
    snprintf(ST.causes[ST.ncauses].what, sizeof ST.causes[0].what, "%s", what);
    ST.causes[ST.ncauses++].n = n;
}

static unsigned hash_str(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static struct ep *ep_by_login(const char *login)
{
    if (!S.nbuckets || !login) return NULL;
    for (struct ep *e = S.by_login[hash_str(login) % (unsigned)S.nbuckets]; e; e = e->hnext)
        if (!strcmp(e->login, login)) return e;
    return NULL;
}

static bool is_loopback(const char *ip)
{
    struct in_addr a;
    return inet_pton(AF_INET, ip, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

struct sdp_info {
    char ip[64];
    int port;
    bool pcmu;
    int dtmf_pt;
};

/* The first audio stream of an SDP body: address, port, PCMU offered or
 * chosen, and the telephone-event payload type. */
static bool sdp_parse(const sip_t *sip, struct sdp_info *out)
{
    memset(out, 0, sizeof *out);
    if (!sip || !sip->sip_payload || !sip->sip_payload->pl_data) return false;
    char body[4096];
    size_t n =
        sip->sip_payload->pl_len < sizeof body - 1 ? sip->sip_payload->pl_len : sizeof body - 1;
    memcpy(body, sip->sip_payload->pl_data, n);
    body[n] = '\0';
    bool in_audio = false, seen_audio = false;
    char *save = NULL;
    for (char *line = strtok_r(body, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        if (!strncmp(line, "m=", 2)) {
            if (seen_audio) break; /* only the first audio stream */
            in_audio = !strncmp(line, "m=audio ", 8);
            if (!in_audio) continue;
            seen_audio = true;
            char proto[32];
            int used = 0;
            if (sscanf(line + 8, "%d %31s %n", &out->port, proto, &used) < 2) return false;
            for (char *p = line + 8 + used; *p;) {
                char *endp;
                long pt = strtol(p, &endp, 10);
                if (endp == p) break;
                if (pt == 0) out->pcmu = true;
                p = endp;
            }
        } else if (!strncmp(line, "c=IN IP4 ", 9) && (!seen_audio || in_audio)) {
            snprintf(out->ip, sizeof out->ip, "%.*s", (int)strcspn(line + 9, " /"), line + 9);
        } else if (in_audio && !strncmp(line, "a=rtpmap:", 9)) {
            int pt;
            char name[32];
            if (sscanf(line + 9, "%d %31[^/]", &pt, name) == 2 &&
                !strcasecmp(name, "telephone-event"))
                out->dtmf_pt = pt;
        }
    }
    return seen_audio && out->ip[0] && out->port > 0;
}

static void sdp_write(char *buf, size_t n, int port, int dtmf_pt)
{
    static unsigned long long version = 1;
    snprintf(buf, n,
             "v=0\r\n"
             "o=cwload %llu %llu IN IP4 %s\r\n"
             "s=cwload\r\n"
             "c=IN IP4 %s\r\n"
             "t=0 0\r\n"
             "m=audio %d RTP/AVP 0 %d\r\n"
             "a=rtpmap:0 PCMU/8000\r\n"
             "a=rtpmap:%d telephone-event/8000\r\n"
             "a=fmtp:%d 0-16\r\n"
             "a=ptime:20\r\n"
             "a=sendrecv\r\n",
             version, version, O.local_ip, O.local_ip, port, dtmf_pt, dtmf_pt, dtmf_pt);
    version++;
}

/* Set up RTP from an SDP: false with the cause written when it cannot be. */
static bool remote_of(const struct sdp_info *m, struct sockaddr_in *a, char *why, size_t n)
{
    if (!m->pcmu) {
        snprintf(why, n, "SDP without PCMU");
        return false;
    }
    if (!is_loopback(m->ip)) {
        snprintf(why, n, "SDP address not on loopback");
        return false;
    }
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)m->port);
    inet_pton(AF_INET, m->ip, &a->sin_addr);
    return true;
}

static void authenticate(nua_handle_t *nh, const sip_t *sip, const char *user, const char *pass)
{
    char realm[128];
    snprintf(realm, sizeof realm, "%s", O.domain);
    const msg_auth_t *au =
        sip ? (sip->sip_proxy_authenticate ? (const msg_auth_t *)sip->sip_proxy_authenticate
                                           : (const msg_auth_t *)sip->sip_www_authenticate)
            : NULL;
    const char *r = au ? msg_params_find(au->au_params, "realm=") : NULL;
    if (r) {
        snprintf(realm, sizeof realm, "%s", *r == '"' ? r + 1 : r);
        size_t l = strlen(realm);
        if (l && realm[l - 1] == '"') realm[l - 1] = '\0';
    }
    char cred[320];
    snprintf(cred, sizeof cred, "%s:\"%s\":%s:%s", au && au->au_scheme ? au->au_scheme : "Digest",
             realm, user, pass);
    nua_authenticate(nh, NUTAG_AUTH(cred), TAG_END());
}

/* ---------------------------------------------------------------- calls */

static struct call *call_new(enum call_kind kind)
{
    struct call *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->h.kind = H_CALL;
    c->kind = kind;
    c->next = S.calls;
    if (S.calls) S.calls->prev = c;
    S.calls = c;
    S.ncalls++;
    if (kind == K_OUT) {
        S.live_out++;
        if (S.live_out > ST.peak_concurrent) ST.peak_concurrent = S.live_out;
    }
    return c;
}

static void call_free(struct call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        S.calls = c->next;
    if (c->next) c->next->prev = c->prev;
    S.ncalls--;
    if (c->nh) {
        nua_handle_bind(c->nh, NULL);
        nua_handle_destroy(c->nh);
    }
    free(c);
}

/* The call's outcome, once: NULL cause = it did what the scenario asked. */
static void call_finish(struct call *c, const char *cause)
{
    if (c->finished) return;
    c->finished = true;
    c->state = CS_DONE;
    c->t_done = now_us();
    if (c->rtp) {
        if (c->rtp_started)
            rtp_stop(c->rtp);
        else
            rtp_discard(c->rtp);
        c->rtp = NULL;
    }
    c->waiting_offer = false;
    switch (c->kind) {
    case K_OUT:
        S.live_out--;
        if (c->target) {
            c->target->reserved = false;
            c->target->free_since_us = now_us();
        }
        if (cause) {
            ST.failed++;
            cause_add("%s", cause);
        } else {
            ST.completed++;
        }
        break;
    case K_IN:
        if (c->ep && --c->ep->active == 0) c->ep->free_since_us = now_us();
        if (cause) {
            ST.failed++;
            cause_add("agent side: %s", cause);
        }
        break;
    case K_LOGIN:
        c->ep->login_done = true;
        if (cause) {
            ST.failed++;
            cause_add("login code %s: %s", O.login_code, cause);
        }
        break;
    }
}

/* INVITE to_user as login; the password is given when challenged. */
static bool place_call(struct call *c, const char *login, const char *to_user,
                       const char *from_display)
{
    c->rtp = rtp_open(O.local_ip, &c->rtp_port);
    if (!c->rtp) {
        call_finish(c, "no local RTP socket");
        return false;
    }
    char to[256], from[256], sdp[512];
    snprintf(to, sizeof to, "<sip:%s@%s>", to_user, O.domain);
    snprintf(from, sizeof from, "%s%s%s<sip:%s@%s>", from_display ? "\"" : "",
             from_display ? from_display : "", from_display ? "\" " : "", login, O.domain);
    sdp_write(sdp, sizeof sdp, c->rtp_port, 101);
    c->nh = nua_handle(S.nua, &c->h, SIPTAG_TO_STR(to), SIPTAG_FROM_STR(from), TAG_END());
    if (!c->nh) {
        call_finish(c, "no SIP handle");
        return false;
    }
    c->t_invite = now_us();
    c->state = CS_INVITING;
    nua_invite(c->nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(sdp),
               TAG_END());
    return true;
}

static struct ep *free_callee(void)
{
    for (int i = 0; i < S.neps; i++) {
        struct ep *e = &S.eps[(S.callee_next + i) % S.neps];
        if (e->registered && !e->reserved && e->active == 0) {
            S.callee_next = (int)((e - S.eps) + 1) % S.neps;
            return e;
        }
    }
    return NULL;
}

static void launch_call(void)
{
    struct ep *target = NULL;
    if (O.sc == SC_BRIDGE) {
        target = free_callee();
        if (!target) {
            ST.throttled++;
            return;
        }
    }
    int n = users_count(&O.callers);
    int num = O.callers.first + S.caller_next;
    S.caller_next = (S.caller_next + 1) % n;
    char login[64];
    user_field(O.callers.login, num, login, sizeof login);
    struct call *c = call_new(K_OUT);
    c->caller_num = num;
    user_field(O.callers.ext, num, c->caller_ext, sizeof c->caller_ext);
    S.launched++;
    ST.attempted++;
    if (target) {
        target->reserved = true;
        c->target = target;
    }
    place_call(c, login, target ? target->ext : O.to, NULL);
}

static void on_out_answered(struct call *c, const sip_t *sip)
{
    int64_t now = now_us();
    if (c->state == CS_BYE_SENT || c->finished) { /* answered after we gave up: end it */
        if (c->state != CS_BYE_SENT && c->state != CS_ANSWERED) nua_bye(c->nh, TAG_END());
        return;
    }
    if (c->state != CS_INVITING) return; /* a repeated 2xx: the call is set up already */
    c->state = CS_ANSWERED;
    c->t_answer = now;
    struct sdp_info m;
    struct sockaddr_in a;
    char why[64];
    if (!sdp_parse(sip, &m)) {
        call_finish(c, "200 OK without usable SDP");
        nua_bye(c->nh, TAG_END());
        c->state = CS_BYE_SENT;
        return;
    }
    if (!remote_of(&m, &a, why, sizeof why)) {
        call_finish(c, why);
        nua_bye(c->nh, TAG_END());
        c->state = CS_BYE_SENT;
        return;
    }
    if (c->kind == K_LOGIN) {
        /* the platform speaks its confirmation and hangs up; we only listen */
        c->t_hangup_at = now + LOGIN_HOLD_US;
        return;
    }
    ST.answered++;
    samples_add(&ST.setup_ms, (double)(now - c->t_invite) / 1000.0);
    const char *dtmf = O.sc == SC_IVR ? O.dtmf : "";
    if (*dtmf && !m.dtmf_pt) cause_add("answer offers no telephone-event (digits not sent)");
    if (*dtmf && m.dtmf_pt) ST.dtmf_calls++;
    bool tone = O.expect_tone && O.sc != SC_IVR;
    rtp_start(c->rtp, &a, ROLE_CALLER, O.caller_hz, tone ? O.callee_hz : 0, dtmf, m.dtmf_pt,
              O.dtmf_delay_ms);
    c->rtp_started = true;
    c->t_hangup_at = now + (int64_t)(dist_draw(&O.hold) * 1e6);
    if (O.sc == SC_QUEUE) {
        /* is an agent free and not already claimed by an earlier caller? */
        int free_agents = 0, waiting = 0;
        for (int i = 0; i < S.neps; i++)
            if (S.eps[i].registered && S.eps[i].active == 0) free_agents++;
        for (struct call *o = S.calls; o; o = o->next)
            if (o->waiting_offer) waiting++;
        c->waiting_offer = true;
        c->offer_free = free_agents > waiting;
    }
}

static void on_out_response(struct call *c, int status, const char *phrase, const sip_t *sip)
{
    if (status < 200) return;
    if (status < 300) {
        on_out_answered(c, sip);
        return;
    }
    if ((status == 401 || status == 407) && !c->auth_tried && !c->finished) {
        c->auth_tried = true;
        char login[64], pass[64];
        if (c->kind == K_LOGIN) {
            snprintf(login, sizeof login, "%s", c->ep->login);
            snprintf(pass, sizeof pass, "%s", c->ep->pass);
        } else {
            user_field(O.callers.login, c->caller_num, login, sizeof login);
            user_field(O.callers.pass, c->caller_num, pass, sizeof pass);
        }
        authenticate(c->nh, sip, login, pass);
        return;
    }
    if (c->finished) return;
    if (c->cancelled) {
        /* our CANCEL after the setup timeout: already counted by the timeout */
        call_finish(c, NULL);
        return;
    }
    char cause[96];
    snprintf(cause, sizeof cause, "%d %s", status, phrase ? phrase : "");
    call_finish(c, cause);
}

/* ---------------------------------------------------------------- answering */

static void respond_200(struct call *c)
{
    char sdp[512];
    sdp_write(sdp, sizeof sdp, c->rtp_port, c->remote_dtmf_pt ? c->remote_dtmf_pt : 101);
    nua_respond(c->nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                SIPTAG_PAYLOAD_STR(sdp), TAG_END());
    c->state = CS_ANSWERED;
    c->t_answer = now_us();
    ST.callee_answered++;
}

static void start_callee_media(struct call *c)
{
    /* agents and B parties expect the caller's tone in the queue and bridge */
    rtp_start(c->rtp, &c->remote, ROLE_CALLEE, O.callee_hz, O.expect_tone ? O.caller_hz : 0, "", 0,
              0);
    c->rtp_started = true;
}

static void on_incoming(nua_t *nua, nua_handle_t *nh, const sip_t *sip)
{
    const char *user = sip && sip->sip_request ? sip->sip_request->rq_url->url_user : NULL;
    struct ep *e = ep_by_login(user);
    if (!e) {
        nua_respond(nh, SIP_404_NOT_FOUND, NUTAG_WITH_THIS(nua), TAG_END());
        nua_handle_destroy(nh);
        return;
    }
    int64_t now = now_us();
    ST.callee_calls++;
    struct call *c = call_new(K_IN);
    c->nh = nh;
    nua_handle_bind(nh, &c->h);
    c->ep = e;
    e->active++;
    c->t_invite = now;
    /* queue: the offer that follows a caller's answer */
    if (O.sc == SC_QUEUE && sip->sip_from && sip->sip_from->a_url->url_user) {
        const char *from = sip->sip_from->a_url->url_user;
        struct call *best = NULL;
        for (struct call *o = S.calls; o; o = o->next)
            if (o->waiting_offer && !strcmp(o->caller_ext, from) &&
                (!best || o->t_answer < best->t_answer))
                best = o;
        if (best) {
            best->waiting_offer = false;
            if (best->offer_free) {
                ST.offers_free++;
                samples_add(&ST.offer_ms, (double)(now - best->t_answer) / 1000.0);
            }
        }
    }
    struct sdp_info m;
    struct sockaddr_in a;
    char why[64];
    if (!sdp_parse(sip, &m)) {
        nua_respond(nh, SIP_488_NOT_ACCEPTABLE, NUTAG_WITH_THIS(nua), TAG_END());
        call_finish(c, "INVITE without usable SDP");
        return;
    }
    if (!remote_of(&m, &a, why, sizeof why)) {
        nua_respond(nh, SIP_488_NOT_ACCEPTABLE, NUTAG_WITH_THIS(nua), TAG_END());
        call_finish(c, why);
        return;
    }
    c->remote_dtmf_pt = m.dtmf_pt;
    c->remote = a;
    c->rtp = rtp_open(O.local_ip, &c->rtp_port);
    if (!c->rtp) {
        nua_respond(nh, SIP_503_SERVICE_UNAVAILABLE, NUTAG_WITH_THIS(nua), TAG_END());
        call_finish(c, "no local RTP socket");
        return;
    }
    if (O.answer_delay_ms > 0) {
        nua_respond(nh, SIP_180_RINGING, NUTAG_WITH_THIS(nua), TAG_END());
        c->state = CS_RINGING;
        c->t_answer_due = now + (int64_t)O.answer_delay_ms * 1000;
        return;
    }
    respond_200(c);
    start_callee_media(c);
}

/* A re-INVITE on a call: answer it with our SDP and follow the far end. */
static void on_reinvite(struct call *c, nua_t *nua, const sip_t *sip)
{
    struct sdp_info m;
    struct sockaddr_in a;
    char why[64];
    if (sdp_parse(sip, &m) && remote_of(&m, &a, why, sizeof why)) {
        c->remote = a;
        if (c->rtp && c->rtp_started) rtp_set_remote(c->rtp, &a);
    }
    char sdp[512];
    sdp_write(sdp, sizeof sdp, c->rtp_port, m.dtmf_pt ? m.dtmf_pt : 101);
    nua_respond(c->nh, SIP_200_OK, NUTAG_WITH_THIS(nua), SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                SIPTAG_PAYLOAD_STR(sdp), TAG_END());
}

/* ---------------------------------------------------------------- registration */

static void reg_send(struct ep *e)
{
    char aor[256], expires[16];
    snprintf(aor, sizeof aor, "<sip:%s@%s>", e->login, O.domain);
    if (!e->reg) {
        e->reg = nua_handle(S.nua, &e->h, SIPTAG_TO_STR(aor), SIPTAG_FROM_STR(aor), TAG_END());
        if (!e->reg) {
            e->reg_failed = true;
            ST.reg_failed++;
            cause_add("REGISTER: no SIP handle");
            return;
        }
        ST.reg_attempted++;
    }
    char registrar[256];
    snprintf(registrar, sizeof registrar, "sip:%s", O.domain);
    snprintf(expires, sizeof expires, "%d", O.reg_expires);
    e->reg_pending = true;
    e->auth_tried = false;
    e->reg_sent_us = now_us();
    nua_register(e->reg, NUTAG_REGISTRAR(registrar), NUTAG_M_USERNAME(e->login),
                 SIPTAG_EXPIRES_STR(expires), NUTAG_OUTBOUND("no-options-keepalive no-validate"),
                 TAG_END());
}

static void reg_failed(struct ep *e, const char *fmt, int status, const char *phrase)
{
    e->reg_pending = false;
    if (e->refreshing) {
        ST.refresh_failed++;
    } else {
        e->reg_failed = true;
        ST.reg_failed++;
    }
    e->registered = false;
    if (status)
        cause_add(fmt, status, phrase ? phrase : "");
    else
        cause_add("%s", fmt);
}

static void on_register(struct ep *e, int status, const char *phrase, const sip_t *sip)
{
    if (status < 200 || !e->reg_pending) return;
    if ((status == 401 || status == 407) && !e->auth_tried) {
        e->auth_tried = true;
        authenticate(e->reg, sip, e->login, e->pass);
        return;
    }
    if (status >= 300) {
        reg_failed(e, e->refreshing ? "re-REGISTER: %d %s" : "REGISTER: %d %s", status, phrase);
        return;
    }
    double ms = (double)(now_us() - e->reg_sent_us) / 1000.0;
    e->reg_pending = false;
    if (e->refreshing) {
        ST.refresh_ok++;
        samples_add(&ST.refresh_ms, ms);
    } else {
        ST.reg_ok++;
        samples_add(&ST.reg_ms, ms);
        e->free_since_us = now_us();
    }
    e->registered = true;
    if (O.refresh_s > 0) e->next_refresh_us = now_us() + (int64_t)(O.refresh_s * 1e6);
}

static void on_unregister(struct ep *e, int status, const sip_t *sip)
{
    if (status < 200) return;
    if ((status == 401 || status == 407) && !e->auth_tried) {
        e->auth_tried = true;
        authenticate(e->reg, sip, e->login, e->pass);
        return;
    }
    e->unreg_done = true;
}

/* ---------------------------------------------------------------- events */

static void on_event(nua_event_t event, int status, char const *phrase, nua_t *nua, void *magic,
                     nua_handle_t *nh, struct hobj *h, sip_t const *sip, tagi_t tags[])
{
    (void)magic;
    struct call *c = h && h->kind == H_CALL ? (struct call *)h : NULL;
    struct ep *e = h && h->kind == H_EP ? (struct ep *)h : NULL;
    /* what only a live platform sends (our own stack makes up 503s and 408s) */
    if (sip &&
        ((status > 100 && status < 300) || status == 401 || status == 407 || sip->sip_request))
        S.heard_platform = true;

    switch (event) {
    case nua_i_invite:
        if (c)
            on_reinvite(c, nua, sip);
        else if (!h)
            on_incoming(nua, nh, sip);
        return;
    case nua_r_invite:
        if (c && (c->kind == K_OUT || c->kind == K_LOGIN)) on_out_response(c, status, phrase, sip);
        return;
    case nua_i_bye:
        if (!c || c->finished) return;
        if (c->kind == K_OUT && now_us() < c->t_hangup_at - 100000)
            call_finish(c, "the platform hung up before the hold time");
        else
            call_finish(c, NULL);
        return;
    case nua_i_cancel:
        if (c && !c->finished) call_finish(c, NULL); /* an offer withdrawn: not our failure */
        return;
    case nua_r_bye:
        if (c && status >= 200 && !c->finished) {
            if (status >= 300 && status != 481) {
                char cause[96];
                snprintf(cause, sizeof cause, "BYE answered %d %s", status, phrase ? phrase : "");
                call_finish(c, cause);
            } else {
                call_finish(c, NULL);
            }
        }
        return;
    case nua_i_state: {
        int cs = -1;
        tl_gets(tags, NUTAG_CALLSTATE_REF(cs), TAG_END());
        if (cs != nua_callstate_terminated || !c) return;
        if (!c->finished) {
            char cause[96];
            if (c->state == CS_INVITING && status >= 300)
                snprintf(cause, sizeof cause, "%d %s", status, phrase ? phrase : "");
            else if (c->state == CS_INVITING || c->state == CS_RINGING)
                snprintf(cause, sizeof cause, "call ended before an answer (%d %s)", status,
                         phrase ? phrase : "");
            else
                cause[0] = '\0';
            call_finish(c, cause[0] ? cause : NULL);
        }
        call_free(c);
        return;
    }
    case nua_r_register:
        if (e) on_register(e, status, phrase, sip);
        return;
    case nua_r_unregister:
        if (e) on_unregister(e, status, sip);
        return;
    case nua_r_shutdown:
        if (status >= 200) su_root_break(S.root);
        return;
    default:
        if (nua_event_is_incoming_request(event) && !h && nh) nua_handle_destroy(nh);
        return;
    }
}

/* ---------------------------------------------------------------- the run */

static void set_phase(enum phase p)
{
    S.phase = p;
    S.phase_start_us = now_us();
    S.reg_next = 0;
    if (O.verbose)
        fprintf(stderr, "cwload: phase %s\n",
                (const char *[]){"register", "login", "calls", "drain", "unregister", "end"}[p]);
}

static bool all_registrations_settled(void)
{
    for (int i = 0; i < S.neps; i++)
        if (S.eps[i].reg_pending || (!S.eps[i].registered && !S.eps[i].reg_failed)) return false;
    return true;
}

static int registered_count(void)
{
    int n = 0;
    for (int i = 0; i < S.neps; i++)
        n += S.eps[i].registered;
    return n;
}

/* Send due registrations at reg_rate (or due refreshes); time out old ones. */
static void pace_registrations(int64_t now)
{
    int64_t since = now - S.phase_start_us;
    int due = (int)(O.reg_rate * (double)since / 1e6) + 1;
    while (S.reg_next < S.neps && S.reg_next < due)
        reg_send(&S.eps[S.reg_next++]);
    int64_t limit = (int64_t)(O.setup_timeout_s * 1e6);
    for (int i = 0; i < S.neps; i++) {
        struct ep *e = &S.eps[i];
        if (e->reg_pending && now - e->reg_sent_us > limit) {
            char what[96];
            snprintf(what, sizeof what, "%s: no answer within %.0f s",
                     e->refreshing ? "re-REGISTER" : "REGISTER", O.setup_timeout_s);
            reg_failed(e, what, 0, NULL);
            nua_handle_bind(e->reg, NULL);
            nua_handle_destroy(e->reg);
            e->reg = NULL;
        }
    }
}

static void refresh_registrations(int64_t now)
{
    for (int i = 0; i < S.neps; i++) {
        struct ep *e = &S.eps[i];
        if (e->registered && e->reg && !e->reg_pending && e->next_refresh_us &&
            now >= e->next_refresh_us) {
            e->refreshing = true;
            reg_send(e);
        }
    }
}

static void login_calls(int64_t now)
{
    int64_t since = now - S.phase_start_us;
    int due = (int)(O.reg_rate * (double)since / 1e6) + 1;
    while (S.reg_next < S.neps && S.reg_next < due) {
        struct ep *e = &S.eps[S.reg_next++];
        if (!e->registered) {
            e->login_done = true;
            continue;
        }
        struct call *c = call_new(K_LOGIN);
        c->ep = e;
        place_call(c, e->login, O.login_code, NULL);
    }
}

static bool logins_done(void)
{
    for (int i = 0; i < S.neps; i++)
        if (!S.eps[i].login_done) return false;
    return true;
}

/* Timeouts, hang-ups and answer delays of every live call. */
static void scan_calls(int64_t now)
{
    int64_t setup = (int64_t)(O.setup_timeout_s * 1e6);
    for (struct call *c = S.calls, *next; c; c = next) {
        next = c->next;
        if (c->finished) {
            if (now - c->t_done > DONE_GRACE_US) call_free(c); /* the stack never closed it */
            continue;
        }
        switch (c->state) {
        case CS_INVITING:
            if (c->kind != K_IN && now - c->t_invite > setup) {
                char cause[96];
                snprintf(cause, sizeof cause, "no answer within %.0f s", O.setup_timeout_s);
                c->cancelled = true;
                nua_cancel(c->nh, TAG_END());
                call_finish(c, cause);
            }
            break;
        case CS_RINGING:
            if (now >= c->t_answer_due) {
                respond_200(c);
                start_callee_media(c);
            }
            break;
        case CS_ANSWERED:
            if (c->kind != K_IN && now >= c->t_hangup_at) {
                c->state = CS_BYE_SENT;
                c->t_done = now;
                nua_bye(c->nh, TAG_END());
            }
            break;
        case CS_BYE_SENT:
            if (now - c->t_done > setup) call_finish(c, "BYE not answered");
            break;
        case CS_DONE:
            break;
        }
    }
}

/* Interrupted or past the drain deadline: hang up everything still up. */
static void end_all_calls(const char *cause)
{
    for (struct call *c = S.calls; c; c = c->next) {
        if (c->finished) continue;
        if (c->state == CS_INVITING && c->kind != K_IN) {
            c->cancelled = true;
            nua_cancel(c->nh, TAG_END());
        } else if (c->state == CS_RINGING) {
            nua_respond(c->nh, SIP_480_TEMPORARILY_UNAVAILABLE, TAG_END());
        } else if (c->state == CS_ANSWERED) {
            nua_bye(c->nh, TAG_END());
        }
        call_finish(c, cause);
    }
}

static void unregister_all(void)
{
    for (int i = 0; i < S.neps; i++) {
        struct ep *e = &S.eps[i];
        if (e->reg && e->registered) {
            e->auth_tried = false;
            nua_unregister(e->reg, TAG_END());
        } else {
            e->unreg_done = true;
        }
    }
}

static bool unregistered_all(void)
{
    for (int i = 0; i < S.neps; i++)
        if (!S.eps[i].unreg_done) return false;
    return true;
}

static void on_tick(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
    (void)m, (void)t, (void)arg;
    int64_t now = now_us();
    if (now > S.hard_deadline_us && S.phase < P_END) {
        end_all_calls("still up at the run's time limit");
        cause_add("the run hit its time limit of %.0f s", O.max_time_s);
        ST.failed++;
        set_phase(P_END);
    }
    if (interrupted && S.phase < P_DRAIN) {
        end_all_calls("interrupted");
        set_phase(P_DRAIN);
        S.drain_deadline_us = now + 3000000;
    }
    scan_calls(now);
    switch (S.phase) {
    case P_REGISTER:
        pace_registrations(now);
        if (O.sc == SC_REGISTER) {
            refresh_registrations(now);
            if (now - S.phase_start_us >= (int64_t)(O.duration_s * 1e6) &&
                all_registrations_settled()) {
                set_phase(P_UNREGISTER);
                unregister_all();
            }
        } else if (S.reg_next >= S.neps && all_registrations_settled()) {
            if (S.neps && !registered_count()) {
                cause_add("no endpoint registered: no calls placed");
                set_phase(P_UNREGISTER);
                unregister_all();
            } else if (O.login_code[0]) {
                set_phase(P_LOGIN);
            } else {
                set_phase(P_CALLS);
                S.calls_start_us = S.next_launch_us = now;
            }
        }
        break;
    case P_LOGIN:
        login_calls(now);
        if (S.reg_next >= S.neps && logins_done()) {
            set_phase(P_CALLS);
            S.calls_start_us = S.next_launch_us = now;
        }
        break;
    case P_CALLS: {
        bool time_over = now - S.calls_start_us >= (int64_t)(O.duration_s * 1e6);
        bool count_over = O.max_calls > 0 && S.launched >= O.max_calls;
        int64_t gap = (int64_t)(1e6 / O.rate);
        while (!time_over && !count_over && now >= S.next_launch_us) {
            if (O.max_concurrent > 0 && S.live_out >= O.max_concurrent) {
                ST.throttled++;
                S.next_launch_us = now + gap; /* no backlog while capped */
                break;
            }
            launch_call();
            S.next_launch_us += gap;
            count_over = O.max_calls > 0 && S.launched >= O.max_calls;
        }
        if (time_over || count_over) {
            set_phase(P_DRAIN);
            S.drain_deadline_us =
                now + (int64_t)((O.setup_timeout_s + dist_max(&O.hold) + 5.0) * 1e6);
        }
        break;
    }
    case P_DRAIN:
        if (S.live_out == 0 || now > S.drain_deadline_us) {
            if (S.live_out) end_all_calls("still up after the drain time");
            set_phase(P_UNREGISTER);
            unregister_all();
        }
        break;
    case P_UNREGISTER:
        if (unregistered_all() || now - S.phase_start_us > UNREG_WAIT_US) set_phase(P_END);
        break;
    case P_END:
        break;
    }
    if (S.phase == P_END) {
        /* let BYEs and CANCELs of the last calls be answered, briefly */
        if (!S.calls || now - S.phase_start_us > 2000000) su_root_break(S.root);
    }
}

/* ---------------------------------------------------------------- start and stop */

static void setup_endpoints(void)
{
    S.neps = O.have_callees ? users_count(&O.callees) : 0;
    if (!S.neps) return;
    S.eps = calloc((size_t)S.neps, sizeof *S.eps);
    S.nbuckets = S.neps * 2 + 1;
    S.by_login = calloc((size_t)S.nbuckets, sizeof *S.by_login);
    if (!S.eps || !S.by_login) abort();
    for (int i = 0; i < S.neps; i++) {
        struct ep *e = &S.eps[i];
        e->h.kind = H_EP;
        e->num = O.callees.first + i;
        user_field(O.callees.login, e->num, e->login, sizeof e->login);
        user_field(O.callees.pass, e->num, e->pass, sizeof e->pass);
        user_field(O.callees.ext, e->num, e->ext, sizeof e->ext);
        unsigned b = hash_str(e->login) % (unsigned)S.nbuckets;
        e->hnext = S.by_login[b];
        S.by_login[b] = e;
    }
}

static void sofia_log(void *stream, char const *fmt, va_list ap)
{
    (void)stream;
    if (O.verbose) vfprintf(stderr, fmt, ap);
}

static void shutdown_guard(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
    (void)m, (void)t, (void)arg;
    su_root_break(S.root);
}

int sip_run(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    su_init();
    su_log_redirect(NULL, sofia_log, NULL);
    S.root = su_root_create(NULL);
    if (!S.root) {
        fprintf(stderr, "cwload: cannot create the SIP event loop\n");
        return 2;
    }
    su_root_threading(S.root, 0); /* the nua stack runs on this thread too */
    char url[128];
    if (O.sip_port)
        snprintf(url, sizeof url, "sip:%s:%d;transport=udp", O.local_ip, O.sip_port);
    else
        snprintf(url, sizeof url, "sip:%s:*;transport=udp", O.local_ip);
    snprintf(S.proxy, sizeof S.proxy, "sip:%s:%d;transport=udp", O.server_ip, O.server_port);
    S.nua = nua_create(S.root, on_event, NULL, NUTAG_URL(url), NUTAG_PROXY(S.proxy),
                       NUTAG_MEDIA_ENABLE(0), NUTAG_AUTOALERT(0), NUTAG_AUTOANSWER(0),
                       NUTAG_AUTOACK(1), NUTAG_ENABLEINVITE(1), NUTAG_SESSION_TIMER(0),
                       NUTAG_OUTBOUND("no-options-keepalive no-validate"),
                       SIPTAG_USER_AGENT_STR("cwload"), NTATAG_USE_NAPTR(0), NTATAG_USE_SRV(0),
                       /* bursts of hundreds of calls a second (capped by net.core.rmem_max) */
                       TPTAG_UDP_RMEM(4 << 20), TPTAG_UDP_WMEM(4 << 20), TAG_END());
    if (!S.nua) {
        fprintf(stderr, "cwload: cannot listen for SIP on %s\n", url);
        su_root_destroy(S.root);
        su_deinit();
        return 2;
    }
    setup_endpoints();
    int64_t now = now_us();
    S.run_start_us = now;
    S.hard_deadline_us = now + (int64_t)(O.max_time_s * 1e6);
    set_phase(P_REGISTER);
    S.tick = su_timer_create(su_root_task(S.root), TICK_MS);
    su_timer_run(S.tick, on_tick, NULL); /* periodic, every TICK_MS */

    su_root_run(S.root);

    su_timer_destroy(S.tick);
    if (!S.heard_platform)
        cause_add("nothing came from %s:%d at all: is the platform running there?", O.server_ip,
                  O.server_port);
    /* every call is finished by now; free what the stack did not close */
    while (S.calls) {
        if (!S.calls->finished) call_finish(S.calls, "still up at the end");
        call_free(S.calls);
    }
    for (int i = 0; i < S.neps; i++)
        if (S.eps[i].reg) {
            nua_handle_bind(S.eps[i].reg, NULL);
            nua_handle_destroy(S.eps[i].reg);
        }
    nua_shutdown(S.nua);
    su_timer_t *guard = su_timer_create(su_root_task(S.root), 3000);
    su_timer_set(guard, shutdown_guard, NULL);
    su_root_run(S.root);
    su_timer_destroy(guard);
    nua_destroy(S.nua);
    su_root_destroy(S.root);
    su_deinit();
    ST.elapsed_s = (double)(now_us() - S.run_start_us) / 1e6;
    free(S.eps);
    free(S.by_login);
    return 0;
}
