/*
 * blf.c - busy lamp field: the RFC 4235 dialog event package (core thread).
 *
 * Phones SUBSCRIBE (Event: dialog) to another user of their own domain;
 * the call layer reports what each user's phone is doing through
 * sip_blf_update(), and every watcher of that user gets a NOTIFY with a
 * dialog-info document: early (ringing), confirmed (in a call), terminated
 * (the call ended), or no dialog (idle). Besides users, a phone may watch
 * what sip_blf_set_resources() names (park slots). Owns the subscriptions
 * and the last state of each watched user. Subscriptions expire unless
 * refreshed.
 */
#include "base/cw.h"
#include "config/config.h"
#include "log/log.h"
#include "loop/loop.h"
#include "sip/sip_int.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SUB_MIN_EXPIRES 60
#define SUB_MAX_EXPIRES 3600
#define MAX_PER_WATCHER 200

struct sub {
    uint64_t id;
    int64_t watcher_id;
    int64_t target_id;
    int64_t domain_id;
    char entity[200];
    int64_t expires_at;
    unsigned version;
};

struct user_state {
    enum sip_dialog_state st;
    char call_id[128];
    bool initiator;
};

static struct {
    struct idmap subs;  /* subscription id -> struct sub */
    struct idmap users; /* user id -> struct user_state */
    struct event *tick;
} L;

/* Outlives blf_init()/blf_shutdown(): set once by the call layer. */
static int64_t (*resources)(int64_t domain_id, const char *name);

void sip_blf_set_resources(int64_t (*fn)(int64_t domain_id, const char *name))
{
    resources = fn;
}

static void xml_escape(cw_buf *b, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<':
            cw_buf_puts(b, "&lt;");
            break;
        case '>':
            cw_buf_puts(b, "&gt;");
            break;
        case '&':
            cw_buf_puts(b, "&amp;");
            break;
        case '"':
            cw_buf_puts(b, "&quot;");
            break;
        case '\'':
            cw_buf_puts(b, "&apos;");
            break;
        default:
            if ((unsigned char)*s >= 0x20) cw_buf_append(b, s, 1);
        }
}

static char *dialog_info(struct sub *s)
{
    const struct user_state *u = idmap_get(&L.users, (uint64_t)s->target_id);
    cw_buf b;
    cw_buf_init(&b);
    cw_buf_printf(&b,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
                  "<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"%u\" "
                  "state=\"full\" entity=\"",
                  s->version++);
    xml_escape(&b, s->entity);
    cw_buf_puts(&b, "\">\r\n");
    if (u && u->call_id[0]) {
        const char *state = u->st == SIP_DLG_EARLY       ? "early"
                            : u->st == SIP_DLG_CONFIRMED ? "confirmed"
                                                         : "terminated";
        cw_buf_puts(&b, "<dialog id=\"");
        xml_escape(&b, u->call_id);
        cw_buf_puts(&b, "\" call-id=\"");
        xml_escape(&b, u->call_id);
        cw_buf_printf(&b, "\" direction=\"%s\">\r\n<state>%s</state>\r\n</dialog>\r\n",
                      u->initiator ? "initiator" : "recipient", state);
    }
    cw_buf_puts(&b, "</dialog-info>\r\n");
    return cw_buf_steal(&b);
}

static void notify(struct sub *s, bool terminated)
{
    struct cmd_notify *c = cw_calloc(1, sizeof *c);
    c->m.type = CMD_NOTIFY;
    c->id = s->id;
    cw_strlcpy(c->event, "dialog", sizeof c->event);
    cw_strlcpy(c->ctype, "application/dialog-info+xml", sizeof c->ctype);
    c->terminated = terminated;
    int64_t left = s->expires_at - cw_wall_time();
    c->expires = left > 0 ? (int)left : 0;
    c->body = dialog_info(s);
    edge_command(&c->m);
}

static void sub_remove(struct sub *s)
{
    idmap_del(&L.subs, s->id);
    free(s);
}

static int watcher_count(int64_t watcher_id)
{
    uint64_t *keys;
    size_t n = idmap_keys(&L.subs, &keys);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        struct sub *s = idmap_get(&L.subs, keys[i]);
        if (s && s->watcher_id == watcher_id) count++;
    }
    free(keys);
    return count;
}

static int clamp_expires(int e)
{
    if (e < 0) return SUB_MAX_EXPIRES;
    if (e == 0) return 0;
    if (e < SUB_MIN_EXPIRES) return SUB_MIN_EXPIRES;
    return e > SUB_MAX_EXPIRES ? SUB_MAX_EXPIRES : e;
}

static void respond_expires(uint64_t id, int status, const char *reason, int e, bool keep)
{
    char h[48];
    snprintf(h, sizeof h, "Expires: %d\r\n", e);
    struct cmd_respond *c = cw_calloc(1, sizeof *c);
    c->m.type = CMD_RESPOND;
    c->id = id;
    c->status = status;
    cw_strlcpy(c->reason, reason, sizeof c->reason);
    c->headers = cw_strdup(h);
    c->keep = keep;
    edge_command(&c->m);
}

void blf_on_subscribe(struct edge_request *r)
{
    if (r->in_dialog) {
        struct sub *s = idmap_get(&L.subs, r->id);
        if (!s) {
            edge_respond(r->id, 481, "Subscription Does Not Exist", NULL, NULL, NULL);
            return;
        }
        int e = clamp_expires(r->expires);
        s->expires_at = cw_wall_time() + e;
        respond_expires(r->id, 200, "OK", e, true);
        notify(s, e == 0);
        if (e == 0) sub_remove(s);
        return;
    }
    if (strcasecmp(r->event, "dialog") != 0) {
        edge_respond(r->id, 489, "Bad Event", "Allow-Events: dialog\r\n", NULL, NULL);
        return;
    }
    if (r->accept[0] && !strcasestr(r->accept, "dialog-info") && !strstr(r->accept, "*/*")) {
        edge_respond(r->id, 406, "Not Acceptable", "Accept: application/dialog-info+xml\r\n", NULL,
                     NULL);
        return;
    }
    if (!r->from_host[0]) {
        edge_respond(r->id, 400, "Missing From Host", NULL, NULL, NULL);
        return;
    }
    struct auth_user u;
    if (auth_request(r, "SUBSCRIBE", r->from_host, NULL, false, &u) != AUTH_OK) return;
    int host_status = auth_target_host(r->ruri_host, u.domain);
    if (host_status) { /* a user of another domain, or of none we serve */
        edge_respond(r->id, host_status,
                     host_status == 403 ? "Forbidden (Another Domain)" : "Domain Not Served", NULL,
                     NULL, NULL);
        return;
    }

    /* the watched user: a user of the watcher's own domain */
    const char *who = r->ruri_user[0] ? r->ruri_user : r->to_user;
    store_res *res;
    int64_t target = 0;
    char ext[16] = "", login[64] = "";
    if (store_query(store_main(), &res,
                    "SELECT id, extension, login FROM users WHERE status = 'active' AND"
                    " ((domain_id = ? AND login = ?) OR (domain_id = ? AND extension = ?))",
                    SA_INT(u.domain_id), SA_STR(who), SA_INT(u.domain_id), SA_STR(who),
                    SA_END) >= 0 &&
        res) {
        if (store_next(res)) {
            target = store_int(res, 0);
            cw_strlcpy(ext, store_str(res, 1) ? store_str(res, 1) : "", sizeof ext);
            cw_strlcpy(login, store_str(res, 2) ? store_str(res, 2) : "", sizeof login);
        }
        store_res_free(res);
    }
    if (!target && resources && (target = resources(u.domain_id, who)) != 0) {
        cw_strlcpy(ext, who, sizeof ext);
    }
    if (!target) {
        edge_respond(r->id, 404, "Not Found", NULL, NULL, NULL);
        return;
    }
    if (watcher_count(u.user_id) >= MAX_PER_WATCHER) {
        edge_respond(r->id, 403, "Too Many Subscriptions", NULL, NULL, NULL);
        return;
    }
    int e = clamp_expires(r->expires);
    struct sub *s = cw_calloc(1, sizeof *s);
    s->id = r->id;
    s->watcher_id = u.user_id;
    s->target_id = target;
    s->domain_id = u.domain_id;
    snprintf(s->entity, sizeof s->entity, "sip:%s@%s", ext[0] ? ext : login, u.domain);
    s->expires_at = cw_wall_time() + e;
    idmap_put(&L.subs, s->id, s);
    log_info("sip", "BLF: %s@%s watches %s (%d s)", u.login, u.domain, s->entity, e);
    respond_expires(r->id, 202, "Accepted", e, true);
    notify(s, e == 0);
    if (e == 0) sub_remove(s);
}

void blf_sub_ended(uint64_t id)
{
    struct sub *s = idmap_get(&L.subs, id);
    if (s) sub_remove(s);
}

void sip_blf_update(int64_t user_id, enum sip_dialog_state st, const char *call_id, bool initiator)
{
    struct user_state *u = idmap_get(&L.users, (uint64_t)user_id);
    if (!u) {
        u = cw_calloc(1, sizeof *u);
        idmap_put(&L.users, (uint64_t)user_id, u);
    }
    u->st = st;
    if (call_id && *call_id) cw_strlcpy(u->call_id, call_id, sizeof u->call_id);
    u->initiator = initiator;
    uint64_t *keys;
    size_t n = idmap_keys(&L.subs, &keys);
    for (size_t i = 0; i < n; i++) {
        struct sub *s = idmap_get(&L.subs, keys[i]);
        if (s && s->target_id == user_id) notify(s, false);
    }
    free(keys);
    if (st == SIP_DLG_IDLE) {
        /* "terminated" went out; the next document has no dialog at all */
        u->call_id[0] = '\0';
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = cw_wall_time();
    uint64_t *keys;
    size_t n = idmap_keys(&L.subs, &keys);
    for (size_t i = 0; i < n; i++) {
        struct sub *s = idmap_get(&L.subs, keys[i]);
        if (s && s->expires_at <= now) {
            notify(s, true);
            sub_remove(s);
        }
    }
    free(keys);
}

void blf_init(void)
{
    memset(&L, 0, sizeof L);
    L.tick = event_new(loop_base(), -1, EV_PERSIST, on_tick, NULL);
    static const struct timeval tv = {1, 0};
    event_add(L.tick, &tv);
}

void blf_shutdown(void)
{
    if (L.tick) event_free(L.tick);
    idmap_clear(&L.subs, free);
    idmap_clear(&L.users, free);
    memset(&L, 0, sizeof L);
}
