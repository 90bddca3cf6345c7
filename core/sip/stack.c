/*
 * stack.c - the sofia-sip thread: nua on its own su_root, translating SIP
 * into edge messages for the core and core commands back into SIP.
 *
 * Owns every nua handle and the per-handle bookkeeping (struct st_obj),
 * keyed by the ids the core knows. It makes no decisions: authentication,
 * registrations, bans, routing and call logic live on the core thread. It
 * only answers by itself what needs no domain state (OPTIONS, hold/unhold
 * re-offers mirrored from the last SDP it sent, session refreshes) and it
 * keeps a copy of the banned addresses so their requests get no answer.
 * Never touches the store, the event bus or any core object.
 */
#include "base/cw.h"
#include "log/log.h"
#include "sip/sdp.h"
#include "sip/sip_int.h"

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_tag_io.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HELD_MAX     1024  /* requests from banned addresses kept unanswered at once */
#define HELD_MS      33000 /* how long: the sender's transaction is over by then (64*T1) */
#define OBJ_BUCKETS  1024
#define BANS_BUCKETS 256

enum obj_kind { OBJ_REQ = 1, OBJ_LEG_IN, OBJ_LEG_OUT, OBJ_SUB, OBJ_TRUNK, OBJ_PING, OBJ_HELD };

struct st_obj;

struct branch {
    struct st_obj *obj; /* the handle magic points here */
    nua_handle_t *nh;
    int status; /* final status seen, 0 while pending */
    bool done;
    bool auth_tried;
    bool redirected;
};

struct st_obj {
    uint64_t id;
    enum obj_kind kind;
    struct st_obj *next;
    int nbr;
    struct branch br[CALL_MAX_BRANCHES + 1];
    nua_saved_event_t saved[1];
    bool has_saved;
    int winner; /* outbound: answering branch, -1 before */
    bool answered, acked, final_sent, reported_end, core_gone, reoffer_pending;
    bool redirect_used;
    int progress; /* highest provisional status reported */
    bool early_sdp;
    char *local_sdp;
    enum sdp_dir remote_dir;
    char refer_event[64];
    su_timer_t *timer;
    char call_id[128];
    char from[384];
    char to[384];
    char auth_user[64];
    char auth_pass[128];
    char *headers;
    int timeout_s;
    int trunk_expires;
};

struct banned {
    struct banned *next;
    char ip[64];
};

static struct {
    struct stack_params p;
    pthread_t thread;
    su_home_t home[1];
    su_root_t *root;
    nua_t *nua;
    su_wait_t wait[1];
    int wait_index;
    struct st_obj *objs[OBJ_BUCKETS];
    struct banned *bans[BANS_BUCKETS];
    int held;
    bool stopping;
    su_timer_t *guard; /* ends a shutdown that waits too long for the network */
    /* start-up handshake with sip_start() */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int start_rc;
    bool start_done;
} S;

/* ------------------------------------------------------------------ */
/* small helpers */

static unsigned bucket_of(uint64_t id)
{
    return (unsigned)((id * 0x9E3779B97F4A7C15ull) >> 54) % OBJ_BUCKETS;
}

static struct st_obj *obj_find(uint64_t id)
{
    for (struct st_obj *o = S.objs[bucket_of(id)]; o; o = o->next)
        if (o->id == id) return o;
    return NULL;
}

static struct st_obj *obj_new(uint64_t id, enum obj_kind kind)
{
    struct st_obj *o = cw_calloc(1, sizeof *o);
    o->id = id;
    o->kind = kind;
    o->winner = -1;
    unsigned b = bucket_of(id);
    o->next = S.objs[b];
    S.objs[b] = o;
    return o;
}

static void obj_free(struct st_obj *o)
{
    struct st_obj **pp = &S.objs[bucket_of(o->id)];
    while (*pp && *pp != o)
        pp = &(*pp)->next;
    if (*pp) *pp = o->next;
    if (o->has_saved) nua_destroy_event(o->saved);
    if (o->timer) su_timer_destroy(o->timer);
    if (o->kind == OBJ_HELD) S.held--;
    for (int i = 0; i < o->nbr; i++)
        if (o->br[i].nh) {
            nua_handle_bind(o->br[i].nh, NULL);
            nua_handle_destroy(o->br[i].nh);
        }
    free(o->local_sdp);
    free(o->headers);
    free(o);
}

static struct branch *branch_add(struct st_obj *o, nua_handle_t *nh)
{
    if (o->nbr >= (int)CW_ARRAY_LEN(o->br)) return NULL;
    struct branch *b = &o->br[o->nbr++];
    memset(b, 0, sizeof *b);
    b->obj = o;
    b->nh = nh;
    nua_handle_bind(nh, (nua_hmagic_t *)b);
    return b;
}

/* Forget a handle; free the object when it has none left. */
static void branch_close(struct branch *b)
{
    struct st_obj *o = b->obj;
    if (b->nh) {
        nua_handle_bind(b->nh, NULL);
        nua_handle_destroy(b->nh);
        b->nh = NULL;
    }
    b->done = true;
    for (int i = 0; i < o->nbr; i++)
        if (o->br[i].nh) return;
    obj_free(o);
}

static unsigned ban_bucket(const char *ip)
{
    unsigned h = 5381;
    for (const char *p = ip; *p; p++)
        h = h * 33 + (unsigned char)*p;
    return h % BANS_BUCKETS;
}

static bool is_banned(const char *ip)
{
    for (struct banned *b = S.bans[ban_bucket(ip)]; b; b = b->next)
        if (!strcmp(b->ip, ip)) return true;
    return false;
}

static void ban_set(const char *ip, bool on)
{
    struct banned **pp = &S.bans[ban_bucket(ip)];
    while (*pp && strcmp((*pp)->ip, ip))
        pp = &(*pp)->next;
    if (on && !*pp) {
        struct banned *b = cw_calloc(1, sizeof *b);
        cw_strlcpy(b->ip, ip, sizeof b->ip);
        *pp = b;
    } else if (!on && *pp) {
        struct banned *b = *pp;
        *pp = b->next;
        free(b);
    }
}

/*
 * nua_respond() keeps the phrase pointer until its signal is processed, so
 * phrases live here for the life of the process: a fixed set of distinct
 * strings (ours are literals; the call layer's are few). Past the cap the
 * standard phrase for the status is used.
 */
static const char *phrase_of(const char *s)
{
    static char *table[256];
    static int n;
    if (!s || !*s) return NULL;
    for (int i = 0; i < n; i++)
        if (!strcmp(table[i], s)) return table[i];
    if (n == (int)CW_ARRAY_LEN(table)) return NULL;
    table[n] = cw_strdup(s);
    return table[n++];
}

static void copy_url_user(const url_t *u, char *user, size_t ulen, char *host, size_t hlen)
{
    if (user) cw_strlcpy(user, u && u->url_user ? u->url_user : "", ulen);
    if (host) cw_strlcpy(host, u && u->url_host ? u->url_host : "", hlen);
}

static void copy_display(const char *d, char *out, size_t len)
{
    out[0] = '\0';
    if (!d) return;
    size_t j = 0;
    for (const char *p = d; *p && j + 1 < len; p++)
        if (*p != '"' && *p != '\\' && *p != '\r' && *p != '\n') out[j++] = *p;
    out[j] = '\0';
}

/*
 * Source address of a request: the socket address nta saw, else the Via
 * with nta's received/rport parameters (which name the real source).
 */
static void request_source(msg_t *msg, const sip_t *sip, char *ip, size_t iplen, int *port,
                           char *transport, size_t tlen)
{
    ip[0] = '\0';
    *port = 0;
    su_sockaddr_t su;
    socklen_t sulen = sizeof su;
    memset(&su, 0, sizeof su);
    if (msg && msg_get_address(msg, &su, &sulen) == 0 &&
        (su.su_family == AF_INET || su.su_family == AF_INET6)) {
        const void *a = su.su_family == AF_INET ? (const void *)&su.su_sin.sin_addr
                                                : (const void *)&su.su_sin6.sin6_addr;
        if (inet_ntop(su.su_family, a, ip, (socklen_t)iplen)) *port = ntohs(su.su_port);
    }
    const sip_via_t *v = sip ? sip->sip_via : NULL;
    if (!ip[0] && v) {
        cw_strlcpy(ip, v->v_received ? v->v_received : v->v_host ? v->v_host : "", iplen);
        if (v->v_rport && *v->v_rport)
            *port = atoi(v->v_rport);
        else
            *port = v->v_port ? atoi(v->v_port) : 5060;
    }
    const char *t = "udp";
    if (v && v->v_protocol) {
        if (strcasestr(v->v_protocol, "TLS"))
            t = "tls";
        else if (strcasestr(v->v_protocol, "TCP"))
            t = "tcp";
    }
    cw_strlcpy(transport, t, tlen);
}

static char *dup_body(const sip_t *sip)
{
    if (!sip || !sip->sip_payload || !sip->sip_payload->pl_data || !sip->sip_payload->pl_len)
        return NULL;
    return cw_strndup(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
}

static bool body_sdp(const sip_t *sip, struct sdp_media *m)
{
    if (!sip || !sip->sip_payload || !sip->sip_payload->pl_data) return false;
    if (sip->sip_content_type && sip->sip_content_type->c_type &&
        strcasecmp(sip->sip_content_type->c_type, "application/sdp") != 0)
        return false;
    return sdp_parse(sip->sip_payload->pl_data, sip->sip_payload->pl_len, m) == CW_OK;
}

/* Join the params of an auth header back into "Digest a=b, c=d". */
static void auth_text(const msg_auth_t *au, const char *want_realm, char *out, size_t len)
{
    out[0] = '\0';
    const msg_auth_t *pick = NULL;
    for (const msg_auth_t *a = au; a; a = a->au_next) {
        if (!a->au_scheme || strcasecmp(a->au_scheme, "Digest")) continue;
        if (!pick) pick = a;
        const char *r = msg_params_find(a->au_params, "realm=");
        if (r && want_realm) {
            char unq[160];
            cw_strlcpy(unq, r[0] == '"' ? r + 1 : r, sizeof unq);
            size_t n = strlen(unq);
            if (n && unq[n - 1] == '"') unq[n - 1] = '\0';
            if (!strcasecmp(unq, want_realm)) {
                pick = a;
                break;
            }
        }
    }
    if (!pick) return;
    cw_buf b;
    cw_buf_init(&b);
    cw_buf_puts(&b, pick->au_scheme);
    for (int i = 0; pick->au_params && pick->au_params[i]; i++)
        cw_buf_printf(&b, "%s%s", i ? ", " : " ", pick->au_params[i]);
    if (b.len < len) cw_strlcpy(out, b.data, len);
    cw_buf_free(&b);
}

static void push(cw_msg *m)
{
    cw_queue_push(S.p.to_core, m);
}

static struct edge_leg *leg_event(struct st_obj *o, enum sip_leg_event_type type, int status,
                                  enum sip_cause cause, const struct sdp_media *sdp)
{
    struct edge_leg *e = cw_calloc(1, sizeof *e);
    e->m.type = EDGE_LEG;
    e->ev.type = type;
    e->ev.leg = o->id;
    e->ev.status = status;
    e->ev.cause = cause;
    if (sdp) {
        e->ev.has_sdp = true;
        e->ev.sdp = *sdp;
    }
    cw_strlcpy(e->call_id, o->call_id, sizeof e->call_id);
    return e;
}

static void push_leg(struct st_obj *o, enum sip_leg_event_type type, int status,
                     enum sip_cause cause, const struct sdp_media *sdp)
{
    if (o->core_gone) return;
    push(&leg_event(o, type, status, cause, sdp)->m);
}

/*
 * The dialog is up: report it with both tags (the 200 we got, or the ACK
 * to ours), so a later Replaces can be matched against the whole dialog.
 */
static void push_answered(struct st_obj *o, int status, const struct sdp_media *sdp,
                          const sip_t *sip, bool outbound)
{
    if (o->core_gone) return;
    struct edge_leg *e = leg_event(o, SIP_EV_ANSWERED, status, SIP_CAUSE_NONE, sdp);
    const char *from_tag = sip && sip->sip_from ? sip->sip_from->a_tag : NULL;
    const char *to_tag = sip && sip->sip_to ? sip->sip_to->a_tag : NULL;
    const char *ours = outbound ? from_tag : to_tag, *theirs = outbound ? to_tag : from_tag;
    cw_strlcpy(e->local_tag, ours ? ours : "", sizeof e->local_tag);
    cw_strlcpy(e->remote_tag, theirs ? theirs : "", sizeof e->remote_tag);
    push(&e->m);
}

static void push_result(enum edge_result_kind kind, uint64_t id, int status, const char *phrase,
                        int expires)
{
    struct edge_result *r = cw_calloc(1, sizeof *r);
    r->m.type = EDGE_RESULT;
    r->kind = kind;
    r->id = id;
    r->status = status;
    cw_strlcpy(r->phrase, phrase ? phrase : "", sizeof r->phrase);
    r->expires = expires;
    push(&r->m);
}

/* ------------------------------------------------------------------ */
/* new requests */

static struct edge_request *request_new(enum req_kind kind, uint64_t id, nua_t *nua,
                                        const sip_t *sip)
{
    struct edge_request *r = cw_calloc(1, sizeof *r);
    r->m.type = EDGE_REQUEST;
    r->id = id;
    r->kind = kind;
    r->expires = -1;
    request_source(nua_current_request(nua), sip, r->src_ip, sizeof r->src_ip, &r->src_port,
                   r->transport, sizeof r->transport);
    if (sip->sip_request)
        copy_url_user(sip->sip_request->rq_url, r->ruri_user, sizeof r->ruri_user, r->ruri_host,
                      sizeof r->ruri_host);
    if (sip->sip_from) {
        copy_url_user(sip->sip_from->a_url, r->from_user, sizeof r->from_user, r->from_host,
                      sizeof r->from_host);
        copy_display(sip->sip_from->a_display, r->from_display, sizeof r->from_display);
    }
    if (sip->sip_to)
        copy_url_user(sip->sip_to->a_url, r->to_user, sizeof r->to_user, r->to_host,
                      sizeof r->to_host);
    if (sip->sip_call_id && sip->sip_call_id->i_id)
        cw_strlcpy(r->call_id, sip->sip_call_id->i_id, sizeof r->call_id);
    if (sip->sip_cseq) r->cseq = sip->sip_cseq->cs_seq;
    const char *realm = kind == REQ_REGISTER ? r->to_host : r->from_host;
    if (sip->sip_authorization)
        auth_text(sip->sip_authorization, realm, r->auth, sizeof r->auth);
    else if (sip->sip_proxy_authorization)
        auth_text(sip->sip_proxy_authorization, realm, r->auth, sizeof r->auth);
    if (sip->sip_user_agent && sip->sip_user_agent->g_string)
        cw_strlcpy(r->user_agent, sip->sip_user_agent->g_string, sizeof r->user_agent);
    if (sip->sip_expires) r->expires = (int)CW_MIN(sip->sip_expires->ex_delta, 0x7fffffffu);
    for (const sip_contact_t *m = sip->sip_contact; m; m = m->m_next) {
        if (m->m_url->url_type == url_any ||
            (m->m_url->url_scheme && !strcmp(m->m_url->url_scheme, "*"))) {
            r->star = true;
            continue;
        }
        if (r->ncontacts == EDGE_MAX_CONTACTS) break;
        struct edge_contact *c = &r->contacts[r->ncontacts];
        issize_t n = url_e(c->uri, sizeof c->uri, m->m_url);
        if (n <= 0 || (size_t)n >= sizeof c->uri) continue;
        c->uri[n] = '\0';
        c->expires = -1;
        const char *e = msg_params_find(m->m_params, "expires=");
        if (e) {
            char *end;
            long v = strtol(e, &end, 10);
            if (end != e && v >= 0) c->expires = (int)CW_MIN(v, 0x7fffffffL);
        }
        r->ncontacts++;
    }
    if (sip->sip_event && sip->sip_event->o_type)
        cw_strlcpy(r->event, sip->sip_event->o_type, sizeof r->event);
    if (sip->sip_accept && sip->sip_accept->ac_type)
        cw_strlcpy(r->accept, sip->sip_accept->ac_type, sizeof r->accept);
    if (sip->sip_replaces && sip->sip_replaces->rp_call_id)
        cw_strlcpy(r->replaces, sip->sip_replaces->rp_call_id, sizeof r->replaces);
    r->body = dup_body(sip);
    return r;
}

/*
 * A request from a banned address gets no answer at all. Its handle is kept,
 * unanswered, until the sender's transaction is over (64*T1), and only then
 * closed with a 408, which for a non-INVITE is never sent (RFC 4320) and for
 * an INVITE reaches a caller who stopped listening. (Answering 408 at once
 * is not enough: nta repeats a stored 408 to every retransmission.) Past
 * HELD_MAX such requests (a flood) the 408 is given at once.
 */
static void held_timeout(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
    struct st_obj *o = (struct st_obj *)arg;
    if (o->br[0].nh) {
        if (o->has_saved)
            nua_respond(o->br[0].nh, SIP_408_REQUEST_TIMEOUT, NUTAG_WITH_SAVED(o->saved),
                        TAG_END());
        else
            nua_respond(o->br[0].nh, SIP_408_REQUEST_TIMEOUT, TAG_END());
    }
    branch_close(&o->br[0]);
}

/* o holds one handle (and, for a non-INVITE, its saved event). */
static void hold_request(struct st_obj *o)
{
    if (o->kind != OBJ_HELD) S.held++;
    o->kind = OBJ_HELD;
    o->core_gone = true;
    o->final_sent = true;
    if (S.held > HELD_MAX) {
        held_timeout(NULL, NULL, (su_timer_arg_t *)o);
        return;
    }
    if (o->timer) su_timer_destroy(o->timer);
    o->timer = su_timer_create(su_root_task(S.root), HELD_MS);
    su_timer_set(o->timer, held_timeout, (su_timer_arg_t *)o);
}

static void on_new_request(nua_event_t event, nua_t *nua, nua_handle_t *nh, const sip_t *sip)
{
    char ip[64], transport[8];
    int port;
    request_source(nua_current_request(nua), sip, ip, sizeof ip, &port, transport,
                   sizeof transport);
    bool banned = is_banned(ip);

    if (banned) {
        log_debug("sip", "ignoring %s from banned %s",
                  sip_method_name(sip->sip_request->rq_method, "?"), ip);
        struct st_obj *o = obj_new(sip_next_id(), OBJ_HELD);
        branch_add(o, nh);
        if (event != nua_i_invite) {
            nua_save_event(nua, o->saved);
            o->has_saved = true;
        }
        hold_request(o);
        return;
    }
    if (event == nua_i_options) {
        /* no domain state needed: answered here */
        nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(nua), SIPTAG_ACCEPT_STR("application/sdp"),
                    TAG_END());
        nua_handle_destroy(nh);
        return;
    }
    if (event == nua_i_invite) {
        struct st_obj *o = obj_new(sip_next_id(), OBJ_LEG_IN);
        branch_add(o, nh);
        if (sip->sip_call_id) cw_strlcpy(o->call_id, sip->sip_call_id->i_id, sizeof o->call_id);
        struct sdp_media m;
        if (body_sdp(sip, &m)) o->remote_dir = m.dir;
        push(&request_new(REQ_INVITE, o->id, nua, sip)->m);
        return;
    }
    enum req_kind kind = event == nua_i_register ? REQ_REGISTER : REQ_SUBSCRIBE;
    struct st_obj *o = obj_new(sip_next_id(), OBJ_REQ);
    branch_add(o, nh);
    nua_save_event(nua, o->saved);
    o->has_saved = true;
    push(&request_new(kind, o->id, nua, sip)->m);
}

/* ------------------------------------------------------------------ */
/* in-dialog requests on our legs */

static enum sip_cause cause_of(int status)
{
    return sip_cause_from_status(status);
}

/* A re-INVITE or UPDATE from the far end: answer it from our last SDP. */
static void on_reoffer(struct st_obj *o, nua_t *nua, nua_handle_t *nh, const sip_t *sip,
                       bool update)
{
    struct sdp_media m;
    bool has = sip->sip_payload && sip->sip_payload->pl_len;
    if (!has) {
        /* session refresh without an offer: an UPDATE needs no body; a
           re-INVITE gets our SDP as the offer and the answer comes in ACK */
        if (update || !o->local_sdp)
            nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(nua), TAG_END());
        else
            nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(nua),
                        SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                        SIPTAG_PAYLOAD_STR(o->local_sdp), TAG_END());
        return;
    }
    if (!body_sdp(sip, &m)) {
        nua_respond(nh, SIP_488_NOT_ACCEPTABLE, NUTAG_WITH_THIS(nua),
                    SIPTAG_WARNING_STR("399 callwright \"Unusable SDP\""), TAG_END());
        return;
    }
    int pt, dtmf;
    if (m.port != 0 && sdp_negotiate(&m, (const int[]){9}, 1, &pt, &dtmf) != CW_OK) {
        nua_respond(nh, SIP_488_NOT_ACCEPTABLE, NUTAG_WITH_THIS(nua),
                    SIPTAG_WARNING_STR("305 callwright \"Incompatible media format\""), TAG_END());
        return;
    }
    enum sdp_dir was = o->remote_dir;
    enum sdp_dir now = m.port == 0 ? SDP_INACTIVE : m.dir;
    char *answer = NULL;
    if (o->local_sdp) {
        enum sdp_dir ours = sdp_answer_dir(now);
        bool changed = !strstr(o->local_sdp, sdp_dir_name(ours));
        answer = sdp_with_dir(o->local_sdp, ours, changed);
    }
    if (!answer) {
        nua_respond(nh, SIP_488_NOT_ACCEPTABLE, NUTAG_WITH_THIS(nua), TAG_END());
        return;
    }
    nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(nua), SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                SIPTAG_PAYLOAD_STR(answer), TAG_END());
    free(o->local_sdp);
    o->local_sdp = answer;
    o->remote_dir = now;
    if (sdp_dir_is_hold(now) && !sdp_dir_is_hold(was))
        push_leg(o, SIP_EV_HOLD, 200, SIP_CAUSE_NONE, &m);
    else if (!sdp_dir_is_hold(now) && sdp_dir_is_hold(was))
        push_leg(o, SIP_EV_UNHOLD, 200, SIP_CAUSE_NONE, &m);
    else
        push_leg(o, SIP_EV_MEDIA, 200, SIP_CAUSE_NONE, &m);
}

/* "Signal=5\r\nDuration=160" (application/dtmf-relay) or "5" (application/dtmf). */
static void on_info(struct st_obj *o, const sip_t *sip)
{
    if (!sip->sip_payload || !sip->sip_payload->pl_data || o->core_gone) return;
    bool plain = sip->sip_content_type && sip->sip_content_type->c_type &&
                 !strcasecmp(sip->sip_content_type->c_type, "application/dtmf");
    char digit;
    int duration;
    if (sip_dtmf_info_parse(sip->sip_payload->pl_data, sip->sip_payload->pl_len, plain, &digit,
                            &duration))
        return;
    struct edge_leg *e = cw_calloc(1, sizeof *e);
    e->m.type = EDGE_LEG;
    e->ev.type = SIP_EV_DTMF;
    e->ev.leg = o->id;
    e->ev.digit = digit;
    e->ev.duration_ms = duration;
    push(&e->m);
}

static void on_refer(struct st_obj *o, nua_t *nua, nua_handle_t *nh, const sip_t *sip,
                     tagi_t tags[])
{
    struct sip_replaces rep;
    int rrc = CW_ENOENT;
    if (sip->sip_refer_to && sip->sip_refer_to->r_url->url_headers)
        rrc = sip_replaces_parse(sip->sip_refer_to->r_url->url_headers, &rep);
    if (!sip->sip_refer_to || o->core_gone || rrc == CW_EINVAL) {
        /* a Replaces without both tags names no dialog (RFC 3891 section 3) */
        nua_respond(nh, SIP_400_BAD_REQUEST, NUTAG_WITH_THIS(nua), TAG_END());
        return;
    }
    nua_respond(nh, SIP_202_ACCEPTED, NUTAG_WITH_THIS(nua), TAG_END());
    const sip_event_t *ev = NULL;
    tl_gets(tags, NUTAG_REFER_EVENT_REF(ev), TAG_END());
    o->refer_event[0] = '\0';
    if (ev) {
        char buf[64];
        issize_t n = sip_event_e(buf, sizeof buf, (msg_header_t *)ev, 0);
        if (n > 0 && (size_t)n < sizeof buf) cw_strlcpy(o->refer_event, buf, sizeof o->refer_event);
    }
    struct edge_leg *e = cw_calloc(1, sizeof *e);
    e->m.type = EDGE_LEG;
    e->ev.type = SIP_EV_REFER;
    e->ev.leg = o->id;
    const url_t *u = sip->sip_refer_to->r_url;
    copy_url_user(u, e->ev.refer_to_user, sizeof e->ev.refer_to_user, e->ev.refer_to_host,
                  sizeof e->ev.refer_to_host);
    if (rrc == CW_OK) {
        cw_strlcpy(e->ev.replaces_call_id, rep.call_id, sizeof e->ev.replaces_call_id);
        cw_strlcpy(e->ev.replaces_to_tag, rep.to_tag, sizeof e->ev.replaces_to_tag);
        cw_strlcpy(e->ev.replaces_from_tag, rep.from_tag, sizeof e->ev.replaces_from_tag);
    }
    cw_strlcpy(e->call_id, o->call_id, sizeof e->call_id);
    push(&e->m);
}

/* ------------------------------------------------------------------ */
/* outbound legs */

static bool all_branches_done(struct st_obj *o)
{
    for (int i = 0; i < o->nbr; i++)
        if (!o->br[i].done) return false;
    return true;
}

/* RFC 3261 16.7-ish: a 6xx wins, then busy, then the lowest class. */
static int best_status(struct st_obj *o)
{
    int best = 0;
    for (int i = 0; i < o->nbr; i++) {
        int s = o->br[i].status;
        if (s <= 0) continue;
        if (s >= 600) return s;
        if (!best || s == 486 || (best != 486 && s < best && s != 408 && s != 503)) best = s;
    }
    return best ? best : 408;
}

static void cancel_others(struct st_obj *o, int keep)
{
    for (int i = 0; i < o->nbr; i++) {
        if (i == keep || o->br[i].done || !o->br[i].nh) continue;
        nua_cancel(o->br[i].nh, TAG_END());
        o->br[i].done = true;
    }
}

static nua_handle_t *branch_handle(struct st_obj *o, const char *uri, const char *route)
{
    sip_to_t *to = sip_to_make(S.home, o->to);
    sip_from_t *from = sip_from_make(S.home, o->from);
    /* no session timer asked of the far end: a peer that does not support one makes us
       the refresher, and sofia refreshes with UPDATE, which phones without UPDATE (baresip
       among them) answer by ending the call; a dead peer is found by the RTP timeout */
    nua_handle_t *nh =
        nua_handle(S.nua, NULL, NUTAG_URL(uri), TAG_IF(to, SIPTAG_TO(to)),
                   TAG_IF(from, SIPTAG_FROM(from)), NUTAG_SESSION_TIMER(0), TAG_END());
    su_free(S.home, to);
    su_free(S.home, from);
    (void)route;
    return nh;
}

static void branch_invite(struct st_obj *o, struct branch *b, const char *route)
{
    nua_invite(b->nh, SIPTAG_CALL_ID_STR(o->call_id), TAG_IF(route && *route, NUTAG_PROXY(route)),
               SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(o->local_sdp),
               TAG_IF(o->headers, SIPTAG_HEADER_STR(o->headers)), TAG_END());
}

static void ring_timeout(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
    struct st_obj *o = (struct st_obj *)arg;
    if (o->answered || o->reported_end) return;
    cancel_others(o, -1);
    o->reported_end = true;
    push_leg(o, SIP_EV_FAILED, 408, SIP_CAUSE_NO_ANSWER, NULL);
}

static void cmd_call(struct cmd_call *c)
{
    struct st_obj *o = obj_new(c->id, OBJ_LEG_OUT);
    cw_strlcpy(o->call_id, c->call_id, sizeof o->call_id);
    cw_strlcpy(o->from, c->from, sizeof o->from);
    cw_strlcpy(o->to, c->to, sizeof o->to);
    cw_strlcpy(o->auth_user, c->auth_user, sizeof o->auth_user);
    cw_strlcpy(o->auth_pass, c->auth_pass, sizeof o->auth_pass);
    o->local_sdp = c->sdp;
    c->sdp = NULL;
    o->headers = c->headers;
    c->headers = NULL;
    o->timeout_s = c->timeout_s;
    int started = 0;
    for (int i = 0; i < c->nbranches; i++) {
        nua_handle_t *nh = branch_handle(o, c->branches[i].uri, c->branches[i].route);
        if (!nh) continue;
        struct branch *b = branch_add(o, nh);
        branch_invite(o, b, c->branches[i].route);
        started++;
    }
    if (!started) {
        o->reported_end = true;
        push_leg(o, SIP_EV_FAILED, 404, SIP_CAUSE_NO_ROUTE, NULL);
        obj_free(o);
        return;
    }
    if (o->timeout_s > 0) {
        o->timer = su_timer_create(su_root_task(S.root), (su_duration_t)o->timeout_s * 1000);
        su_timer_set(o->timer, ring_timeout, (su_timer_arg_t *)o);
    }
}

static const char *challenge_realm(const sip_t *sip, char *out, size_t len)
{
    const msg_auth_t *au = sip->sip_proxy_authenticate
                               ? (const msg_auth_t *)sip->sip_proxy_authenticate
                               : (const msg_auth_t *)sip->sip_www_authenticate;
    out[0] = '\0';
    if (!au) return NULL;
    const char *r = msg_params_find(au->au_params, "realm=");
    if (!r) return NULL;
    cw_strlcpy(out, *r == '"' ? r + 1 : r, len);
    size_t n = strlen(out);
    if (n && out[n - 1] == '"') out[n - 1] = '\0';
    return out;
}

static void authenticate(nua_handle_t *nh, const sip_t *sip, const char *user, const char *pass)
{
    char realm[128];
    challenge_realm(sip, realm, sizeof realm);
    const msg_auth_t *au = sip->sip_proxy_authenticate
                               ? (const msg_auth_t *)sip->sip_proxy_authenticate
                               : (const msg_auth_t *)sip->sip_www_authenticate;
    char *cred = cw_sprintf("%s:\"%s\":%s:%s", au && au->au_scheme ? au->au_scheme : "Digest",
                            realm, user, pass);
    nua_authenticate(nh, NUTAG_AUTH(cred), TAG_END());
    free(cred);
}

/* A response to one branch of an outbound leg. */
static void on_invite_response(struct branch *b, int status, const char *phrase, const sip_t *sip)
{
    struct st_obj *o = b->obj;
    struct sdp_media m;
    bool has_sdp = body_sdp(sip, &m);

    if (o->answered && (int)(b - o->br) == o->winner) {
        /* the answer to our re-INVITE (sip_reoffer), or a retransmitted 200 */
        if (!o->reoffer_pending || status < 200) return;
        o->reoffer_pending = false;
        if (status < 300 && has_sdp) o->remote_dir = m.dir;
        push_leg(o, SIP_EV_MEDIA, status, SIP_CAUSE_NONE, has_sdp && status < 300 ? &m : NULL);
        return;
    }
    if (status < 200) {
        if (status <= 100 || o->answered || o->reported_end) return;
        if (status > o->progress || (has_sdp && !o->early_sdp)) {
            o->progress = CW_MAX(o->progress, status);
            if (has_sdp) o->early_sdp = true;
            push_leg(o, SIP_EV_PROGRESS, status, SIP_CAUSE_NONE, has_sdp ? &m : NULL);
        }
        return;
    }
    if (status < 300) {
        if (o->answered || o->reported_end) {
            /* a second branch answered, or the ring time is over: let it go */
            nua_bye(b->nh, TAG_END());
            b->done = true;
            return;
        }
        o->answered = true;
        o->winner = (int)(b - o->br);
        if (o->timer) {
            su_timer_destroy(o->timer);
            o->timer = NULL;
        }
        cancel_others(o, o->winner);
        if (has_sdp) o->remote_dir = m.dir;
        push_answered(o, status, has_sdp ? &m : NULL, sip, true);
        return;
    }
    if ((status == 401 || status == 407) && o->auth_user[0] && !b->auth_tried && !b->done) {
        b->auth_tried = true;
        authenticate(b->nh, sip, o->auth_user, o->auth_pass);
        return;
    }
    if (status >= 300 && status < 400 && !o->redirect_used && !o->answered && !o->reported_end &&
        sip && sip->sip_contact) {
        /* follow one hop of redirection */
        char uri[256];
        issize_t n = url_e(uri, sizeof uri, sip->sip_contact->m_url);
        if (n > 0 && (size_t)n < sizeof uri) {
            uri[n] = '\0';
            o->redirect_used = true;
            b->status = status;
            b->done = true;
            nua_handle_t *nh = branch_handle(o, uri, NULL);
            struct branch *nb = nh ? branch_add(o, nh) : NULL;
            if (nb) {
                nb->redirected = true;
                log_debug("sip", "leg %llu: %d redirect to %s", (unsigned long long)o->id, status,
                          uri);
                branch_invite(o, nb, NULL);
                return;
            }
            if (nh) nua_handle_destroy(nh);
        }
    }
    b->status = status;
    b->done = true;
    if (!o->answered && !o->reported_end && all_branches_done(o)) {
        int best = best_status(o);
        o->reported_end = true;
        push_leg(o, SIP_EV_FAILED, best, cause_of(best), NULL);
        (void)phrase;
    }
}

/* ------------------------------------------------------------------ */
/* the nua callback */

static void on_terminated(struct branch *b, int status)
{
    struct st_obj *o = b->obj;
    int idx = (int)(b - o->br);
    if (!o->reported_end) {
        if (o->kind == OBJ_LEG_IN) {
            o->reported_end = true;
            if (o->answered && o->acked)
                push_leg(o, SIP_EV_ENDED, status,
                         status >= 300 ? cause_of(status) : SIP_CAUSE_NORMAL, NULL);
            else
                push_leg(o, o->answered ? SIP_EV_ENDED : SIP_EV_FAILED, status,
                         status >= 300 ? cause_of(status) : SIP_CAUSE_FAILED, NULL);
        } else if (o->kind == OBJ_LEG_OUT) {
            if (o->answered && idx == o->winner) {
                o->reported_end = true;
                push_leg(o, SIP_EV_ENDED, status,
                         status >= 300 && status != 487 ? cause_of(status) : SIP_CAUSE_NORMAL,
                         NULL);
            } else if (!o->answered) {
                if (!b->done) {
                    b->done = true;
                    b->status = status >= 300 ? status : 503;
                }
                if (all_branches_done(o)) {
                    int best = best_status(o);
                    o->reported_end = true;
                    push_leg(o, SIP_EV_FAILED, best, cause_of(best), NULL);
                }
            }
        }
    }
    branch_close(b);
}

static void on_event(nua_event_t event, int status, char const *phrase, nua_t *nua,
                     nua_magic_t *magic, nua_handle_t *nh, nua_hmagic_t *hmagic, sip_t const *sip,
                     tagi_t tags[])
{
    struct branch *b = (struct branch *)hmagic;
    struct st_obj *o = b ? b->obj : NULL;

    switch (event) {
    case nua_i_register:
    case nua_i_options:
    case nua_i_subscribe:
    case nua_i_invite:
        if (!sip || !sip->sip_request) return;
        if (!o) {
            if (S.stopping) {
                nua_respond(nh, SIP_503_SERVICE_UNAVAILABLE, NUTAG_WITH_THIS(nua), TAG_END());
                nua_handle_destroy(nh);
                return;
            }
            on_new_request(event, nua, nh, sip);
            return;
        }
        if (event == nua_i_options) {
            nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(nua), TAG_END());
        } else if (event == nua_i_invite && (o->kind == OBJ_LEG_IN || o->kind == OBJ_LEG_OUT)) {
            on_reoffer(o, nua, nh, sip, false);
        } else if (event == nua_i_subscribe && o->kind == OBJ_SUB) {
            /* refresh or unsubscribe: the core decides and answers */
            if (o->has_saved) nua_destroy_event(o->saved);
            nua_save_event(nua, o->saved);
            o->has_saved = true;
            struct edge_request *r = request_new(REQ_SUBSCRIBE, o->id, nua, sip);
            r->in_dialog = true;
            push(&r->m);
        } else {
            nua_respond(nh, SIP_481_NO_TRANSACTION, NUTAG_WITH_THIS(nua), TAG_END());
        }
        return;

    case nua_i_update:
        if (o && (o->kind == OBJ_LEG_IN || o->kind == OBJ_LEG_OUT))
            on_reoffer(o, nua, nh, sip, true);
        else
            nua_respond(nh, SIP_481_NO_TRANSACTION, NUTAG_WITH_THIS(nua), TAG_END());
        return;

    case nua_i_refer:
        if (o && (o->kind == OBJ_LEG_IN || o->kind == OBJ_LEG_OUT) && o->answered)
            on_refer(o, nua, nh, sip, tags);
        else
            nua_respond(nh, SIP_603_DECLINE, NUTAG_WITH_THIS(nua), TAG_END());
        return;

    case nua_i_ack:
        if (o && o->kind == OBJ_LEG_IN && o->answered && !o->acked) {
            o->acked = true;
            struct sdp_media m;
            bool has = body_sdp(sip, &m);
            if (has) o->remote_dir = m.dir;
            push_answered(o, 200, has ? &m : NULL, sip, false);
        }
        return;

    case nua_i_cancel:
        if (o && o->kind == OBJ_LEG_IN && !o->reported_end) {
            o->reported_end = true;
            push_leg(o, SIP_EV_ENDED, 487, SIP_CAUSE_CANCELLED, NULL);
        }
        return;

    case nua_i_bye:
        if (o && (o->kind == OBJ_LEG_IN || o->kind == OBJ_LEG_OUT) && !o->reported_end) {
            o->reported_end = true;
            push_leg(o, SIP_EV_ENDED, 200, SIP_CAUSE_NORMAL, NULL);
        }
        return;

    case nua_i_info:
        if (o && (o->kind == OBJ_LEG_IN || o->kind == OBJ_LEG_OUT)) on_info(o, sip);
        return;

    case nua_i_state: {
        int cs = -1;
        tl_gets(tags, NUTAG_CALLSTATE_REF(cs), TAG_END());
        if (cs == nua_callstate_terminated && b &&
            (o->kind == OBJ_LEG_IN || o->kind == OBJ_LEG_OUT))
            on_terminated(b, status);
        return;
    }

    case nua_r_invite:
        if (b && o->kind == OBJ_LEG_OUT)
            on_invite_response(b, status, phrase, sip);
        else if (b && o->kind == OBJ_LEG_IN && o->reoffer_pending && status >= 200) {
            struct sdp_media m;
            bool has = status < 300 && body_sdp(sip, &m);
            o->reoffer_pending = false;
            if (has) o->remote_dir = m.dir;
            push_leg(o, SIP_EV_MEDIA, status, SIP_CAUSE_NONE, has ? &m : NULL);
        }
        return;

    case nua_r_register:
        if (!b || o->kind != OBJ_TRUNK) return;
        if ((status == 401 || status == 407) && !b->auth_tried && o->auth_user[0]) {
            b->auth_tried = true;
            authenticate(nh, sip, o->auth_user, o->auth_pass);
            return;
        }
        if (status < 200) return;
        if (status < 300) {
            b->auth_tried = false; /* the next refresh may be challenged again */
            int exp = o->trunk_expires;
            if (sip && sip->sip_expires) exp = (int)sip->sip_expires->ex_delta;
            push_result(RES_TRUNK_REG, o->id, status, phrase, exp);
        } else {
            push_result(RES_TRUNK_REG, o->id, status, phrase, 0);
            branch_close(b);
        }
        return;

    case nua_r_unregister:
        if (b && o->kind == OBJ_TRUNK && status >= 200) {
            if ((status == 401 || status == 407) && !b->auth_tried && o->auth_user[0]) {
                b->auth_tried = true;
                authenticate(nh, sip, o->auth_user, o->auth_pass);
                return;
            }
            branch_close(b);
        }
        return;

    case nua_r_options:
        if (b && o->kind == OBJ_PING && status >= 200) {
            push_result(RES_PING, o->id, status, phrase, 0);
            branch_close(b);
        }
        return;

    case nua_r_notify:
        if (b && o->kind == OBJ_SUB && status >= 200) {
            int ss = nua_substate_active;
            tl_gets(tags, NUTAG_SUBSTATE_REF(ss), TAG_END());
            if (status >= 300 || ss == nua_substate_terminated) {
                push_result(RES_SUB_ENDED, o->id, status, phrase, 0);
                branch_close(b);
            }
        }
        return;

    case nua_i_subscription:
        return;

    case nua_r_shutdown:
        if (status >= 200) su_root_break(S.root);
        return;

    case nua_i_terminated:
        if (b && o->kind == OBJ_SUB) {
            push_result(RES_SUB_ENDED, o->id, status, phrase, 0);
            branch_close(b);
        }
        return;

    default:
        if (nua_event_is_incoming_request(event) && !b && nh) {
            /* a request nobody asked for on a handle we do not know */
            nua_handle_destroy(nh);
        }
        return;
    }
}

/* ------------------------------------------------------------------ */
/* commands from the core */

static void respond_obj(struct st_obj *o, struct cmd_respond *c)
{
    nua_handle_t *nh = o->br[0].nh;
    if (!nh) return;
    int status = c->drop ? 408 : c->status;
    const char *ctype = c->ctype[0] ? c->ctype : "application/sdp";
    if (c->drop && (o->kind == OBJ_REQ || (o->kind == OBJ_LEG_IN && !o->final_sent))) {
        /* the core found the sender banned */
        hold_request(o);
        return;
    }
    switch (o->kind) {
    case OBJ_REQ:
    case OBJ_SUB:
        if (!o->has_saved) return;
        nua_respond(nh, status, c->drop ? "Request Timeout" : phrase_of(c->reason),
                    NUTAG_WITH_SAVED(o->saved), TAG_IF(c->headers, SIPTAG_HEADER_STR(c->headers)),
                    TAG_IF(c->body, SIPTAG_CONTENT_TYPE_STR(ctype)),
                    TAG_IF(c->body, SIPTAG_PAYLOAD_STR(c->body)), TAG_END());
        nua_destroy_event(o->saved);
        o->has_saved = false;
        if (o->kind == OBJ_REQ && c->keep && status < 300)
            o->kind = OBJ_SUB;
        else if (o->kind == OBJ_REQ)
            branch_close(&o->br[0]);
        return;
    case OBJ_LEG_IN:
        if (o->final_sent) return;
        nua_respond(nh, status, phrase_of(c->reason),
                    TAG_IF(c->headers, SIPTAG_HEADER_STR(c->headers)),
                    TAG_IF(c->body, SIPTAG_CONTENT_TYPE_STR(ctype)),
                    TAG_IF(c->body, SIPTAG_PAYLOAD_STR(c->body)), TAG_END());
        if (c->body && status < 300) {
            free(o->local_sdp);
            o->local_sdp = c->body;
            c->body = NULL;
        }
        if (status >= 200) o->final_sent = true;
        if (status >= 200 && status < 300) o->answered = true;
        if (status >= 300) {
            o->core_gone = true;
            o->reported_end = true;
        }
        return;
    default:
        return;
    }
}

static void cmd_hangup(struct st_obj *o, int status)
{
    o->core_gone = true;
    if (o->kind == OBJ_LEG_IN) {
        if (!o->final_sent) {
            nua_respond(o->br[0].nh, status >= 300 ? status : 487, NULL, TAG_END());
            o->final_sent = true;
        } else if (o->answered && o->br[0].nh) {
            nua_bye(o->br[0].nh, TAG_END());
        }
    } else if (o->kind == OBJ_LEG_OUT) {
        if (o->answered && o->winner >= 0 && o->br[o->winner].nh)
            nua_bye(o->br[o->winner].nh, TAG_END());
        else
            cancel_others(o, -1);
        if (o->timer) {
            su_timer_destroy(o->timer);
            o->timer = NULL;
        }
    }
}

static void cmd_trunk(struct cmd_trunk *c)
{
    struct st_obj *o = obj_find(c->id);
    if (c->unregister) {
        if (o && o->kind == OBJ_TRUNK && o->br[0].nh) {
            o->br[0].auth_tried = false;
            nua_unregister(o->br[0].nh, TAG_END());
        } else if (o) {
            obj_free(o);
        }
        return;
    }
    if (o) {
        /* re-registration with new settings: drop the old binding first */
        if (o->br[0].nh) nua_unregister(o->br[0].nh, TAG_END());
        struct st_obj **pp = &S.objs[bucket_of(o->id)];
        while (*pp && *pp != o)
            pp = &(*pp)->next;
        if (*pp) *pp = o->next;
        o->id = sip_next_id(); /* the old binding lives on under an id nobody knows */
        unsigned bk = bucket_of(o->id);
        o->next = S.objs[bk];
        S.objs[bk] = o;
    }
    o = obj_new(c->id, OBJ_TRUNK);
    cw_strlcpy(o->auth_user, c->user, sizeof o->auth_user);
    cw_strlcpy(o->auth_pass, c->pass, sizeof o->auth_pass);
    o->trunk_expires = c->expires;
    sip_to_t *to = sip_to_make(S.home, c->aor);
    nua_handle_t *nh = nua_handle(S.nua, NULL, TAG_IF(to, SIPTAG_TO(to)),
                                  TAG_IF(to, SIPTAG_FROM_STR(c->aor)), TAG_END());
    su_free(S.home, to);
    if (!nh) {
        push_result(RES_TRUNK_REG, c->id, 500, "cannot create handle", 0);
        obj_free(o);
        return;
    }
    branch_add(o, nh);
    char expires[16];
    snprintf(expires, sizeof expires, "%d", c->expires);
    /* no RFC 5626 self-check through the provider: it resolves the AOR's
       domain, which for a provider's realm often is not a host at all */
    nua_register(nh, NUTAG_REGISTRAR(c->registrar), NUTAG_M_USERNAME(c->user),
                 NUTAG_OUTBOUND("no-validate"), SIPTAG_EXPIRES_STR(expires), TAG_END());
}

static void shutdown_guard(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
    log_warn("sip", "shutdown: not every dialog ended in time");
    su_root_break(S.root);
}

static void run_command(cw_msg *m)
{
    switch (m->type) {
    case CMD_RESPOND: {
        struct cmd_respond *c = (struct cmd_respond *)m;
        struct st_obj *o = obj_find(c->id);
        if (o) respond_obj(o, c);
        break;
    }
    case CMD_CALL:
        cmd_call((struct cmd_call *)m);
        break;
    case CMD_HANGUP: {
        struct cmd_simple *c = (struct cmd_simple *)m;
        struct st_obj *o = obj_find(c->id);
        if (o) cmd_hangup(o, c->status);
        break;
    }
    case CMD_REOFFER: {
        struct cmd_respond *c = (struct cmd_respond *)m;
        struct st_obj *o = obj_find(c->id);
        if (!o || !o->answered || !c->body) break;
        nua_handle_t *nh =
            o->kind == OBJ_LEG_OUT && o->winner >= 0 ? o->br[o->winner].nh : o->br[0].nh;
        if (!nh) break;
        free(o->local_sdp);
        o->local_sdp = c->body;
        c->body = NULL;
        o->reoffer_pending = true;
        nua_invite(nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(o->local_sdp),
                   TAG_END());
        break;
    }
    case CMD_REFER_RESULT: {
        struct cmd_simple *c = (struct cmd_simple *)m;
        struct st_obj *o = obj_find(c->id);
        if (!o) break;
        nua_handle_t *nh =
            o->kind == OBJ_LEG_OUT && o->winner >= 0 ? o->br[o->winner].nh : o->br[0].nh;
        if (!nh) break;
        char frag[64];
        snprintf(frag, sizeof frag, "SIP/2.0 %d %s\r\n", c->status,
                 sip_status_phrase(c->status) ? sip_status_phrase(c->status) : "Unknown");
        nua_notify(nh,
                   NUTAG_SUBSTATE(c->status >= 200 ? nua_substate_terminated : nua_substate_active),
                   SIPTAG_EVENT_STR(o->refer_event[0] ? o->refer_event : "refer"),
                   SIPTAG_CONTENT_TYPE_STR("message/sipfrag;version=2.0"), SIPTAG_PAYLOAD_STR(frag),
                   TAG_END());
        break;
    }
    case CMD_NOTIFY: {
        struct cmd_notify *c = (struct cmd_notify *)m;
        struct st_obj *o = obj_find(c->id);
        if (!o || o->kind != OBJ_SUB || !o->br[0].nh) break;
        nua_notify(o->br[0].nh,
                   NUTAG_SUBSTATE(c->terminated ? nua_substate_terminated : nua_substate_active),
                   SIPTAG_EVENT_STR(c->event), SIPTAG_CONTENT_TYPE_STR(c->ctype),
                   TAG_IF(c->body, SIPTAG_PAYLOAD_STR(c->body)), TAG_END());
        break;
    }
    case CMD_PING: {
        struct cmd_ping *c = (struct cmd_ping *)m;
        struct st_obj *o = obj_new(c->id, OBJ_PING);
        nua_handle_t *nh =
            nua_handle(S.nua, NULL, NUTAG_URL(c->uri), SIPTAG_TO_STR(c->uri), TAG_END());
        if (!nh) {
            push_result(RES_PING, c->id, 500, "cannot create handle", 0);
            obj_free(o);
            break;
        }
        branch_add(o, nh);
        nua_options(nh, TAG_IF(c->route[0], NUTAG_PROXY(c->route)), TAG_END());
        break;
    }
    case CMD_TRUNK_REG:
        cmd_trunk((struct cmd_trunk *)m);
        break;
    case CMD_BAN:
        ban_set(((struct cmd_ban *)m)->ip, true);
        break;
    case CMD_UNBAN:
        ban_set(((struct cmd_ban *)m)->ip, false);
        break;
    case CMD_STOP:
        if (!S.stopping) {
            S.stopping = true;
            S.guard = su_timer_create(su_root_task(S.root), 3000);
            su_timer_set(S.guard, shutdown_guard, NULL);
            nua_shutdown(S.nua);
        }
        break;
    }
}

static int on_commands(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
    cw_msg *m = cw_queue_take_all(S.p.commands);
    while (m) {
        cw_msg *next = m->next;
        run_command(m);
        stack_cmd_free(m);
        m = next;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* thread */

static void sofia_log(void *stream, char const *fmt, va_list ap)
{
    if (!log_enabled("sofia", LOG_DEBUG)) return;
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (n) log_write("sofia", LOG_DEBUG, "%s", buf);
}

static void start_result(int rc)
{
    pthread_mutex_lock(&S.lock);
    S.start_rc = rc;
    S.start_done = true;
    pthread_cond_signal(&S.cond);
    pthread_mutex_unlock(&S.lock);
}

static void *thread_main(void *arg)
{
    const struct sip_config *cfg = &S.p.cfg;
    su_home_init(S.home);
    S.root = su_root_create(NULL);
    if (!S.root) {
        start_result(CW_EIO);
        return NULL;
    }
    su_root_threading(S.root, 0); /* the nua stack runs on this thread too */
    su_log_redirect(NULL, sofia_log, NULL);
    if (log_enabled("sofia", LOG_DEBUG)) su_log_set_level(NULL, 5);

    /* "*" binds every address; with a public address, that is the name we
       give in Via and Contact and maddr is where we bind */
    bool any = !cfg->listen[0] || !strcmp(cfg->listen, "0.0.0.0");
    const char *bind = any ? "*" : cfg->listen;
    const char *maddr = any ? "0.0.0.0" : cfg->listen;
    char url[256], sips[256] = "";
    if (cfg->public_ip[0])
        snprintf(url, sizeof url, "sip:%s:%d;maddr=%s", cfg->public_ip, cfg->port, maddr);
    else
        snprintf(url, sizeof url, "sip:%s:%d", bind, cfg->port);
    if (cfg->tls_dir[0]) {
        if (cfg->public_ip[0])
            snprintf(sips, sizeof sips, "sips:%s:%d;maddr=%s", cfg->public_ip, cfg->tls_port,
                     maddr);
        else
            snprintf(sips, sizeof sips, "sips:%s:%d", bind, cfg->tls_port);
    }
    char st[16];
    snprintf(st, sizeof st, "%d", S.p.session_timer);
    S.nua = nua_create(
        S.root, on_event, NULL, NUTAG_URL(url), TAG_IF(sips[0], NUTAG_SIPS_URL(sips)),
        TAG_IF(sips[0], NUTAG_CERTIFICATE_DIR(cfg->tls_dir)), NUTAG_MEDIA_ENABLE(0),
        NUTAG_AUTOALERT(0), NUTAG_AUTOANSWER(0), NUTAG_AUTOACK(1), NUTAG_ENABLEINVITE(1),
        NUTAG_AUTO302(0), NUTAG_APPL_METHOD("INVITE"), NUTAG_APPL_METHOD("REGISTER"),
        NUTAG_APPL_METHOD("SUBSCRIBE"), NUTAG_APPL_METHOD("OPTIONS"), NUTAG_APPL_METHOD("UPDATE"),
        NUTAG_APPL_METHOD("REFER"),
        NUTAG_ALLOW("INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, REFER, "
                    "UPDATE, INFO"),
        NUTAG_ALLOW_EVENTS("dialog"), NUTAG_ALLOW_EVENTS("refer"),
        NUTAG_SESSION_TIMER(S.p.session_timer), NUTAG_MIN_SE(S.p.session_min_se),
        NUTAG_SESSION_REFRESHER(nua_remote_refresher), NUTAG_UPDATE_REFRESH(1),
        SIPTAG_USER_AGENT_STR(cfg->user_agent), SIPTAG_SERVER_STR(cfg->user_agent),
        /* room for bursts: the kernel default (208 KiB) overflows at a few hundred calls a
         * second while this thread is busy; the kernel caps it at net.core.rmem_max */
        TPTAG_UDP_RMEM(4 << 20), TPTAG_UDP_WMEM(4 << 20), NTATAG_SERVER_RPORT(1),
        NTATAG_CLIENT_RPORT(1), NTATAG_UDP_MTU(65000), NTATAG_USE_NAPTR(0), NTATAG_USE_SRV(0),
        TAG_END());
    if (!S.nua) {
        log_error("sip", "cannot listen on %s%s%s", url, sips[0] ? " and " : "", sips);
        su_root_destroy(S.root);
        S.root = NULL;
        su_home_deinit(S.home);
        start_result(CW_EIO);
        return NULL;
    }
    su_wait_create(S.wait, cw_queue_fd(S.p.commands), SU_WAIT_IN);
    S.wait_index = su_root_register(S.root, S.wait, on_commands, NULL, 0);
    log_info("sip", "listening on %s (udp, tcp)%s%s", url, sips[0] ? " and " : "", sips);
    start_result(CW_OK);

    su_root_run(S.root);
    if (S.guard) su_timer_destroy(S.guard);
    S.guard = NULL;

    /* after nua_shutdown: free what is left */
    for (int i = 0; i < OBJ_BUCKETS; i++)
        while (S.objs[i])
            obj_free(S.objs[i]);
    for (int i = 0; i < BANS_BUCKETS; i++)
        while (S.bans[i]) {
            struct banned *n = S.bans[i]->next;
            free(S.bans[i]);
            S.bans[i] = n;
        }
    nua_destroy(S.nua);
    S.nua = NULL;
    su_root_deregister(S.root, S.wait_index);
    su_root_destroy(S.root);
    S.root = NULL;
    su_home_deinit(S.home);
    return NULL;
}

int stack_start(const struct stack_params *p)
{
    memset(&S, 0, sizeof S);
    S.p = *p;
    pthread_mutex_init(&S.lock, NULL);
    pthread_cond_init(&S.cond, NULL);
    su_init();
    if (pthread_create(&S.thread, NULL, thread_main, NULL) != 0) return CW_EIO;
    pthread_mutex_lock(&S.lock);
    while (!S.start_done)
        pthread_cond_wait(&S.cond, &S.lock);
    int rc = S.start_rc;
    pthread_mutex_unlock(&S.lock);
    if (rc) {
        pthread_join(S.thread, NULL);
        su_deinit();
    }
    return rc;
}

void stack_join(void)
{
    pthread_join(S.thread, NULL);
    pthread_mutex_destroy(&S.lock);
    pthread_cond_destroy(&S.cond);
    su_deinit();
}
