/*
 * registrar.c - the SIP registrar and location service (core thread).
 *
 * Owns the in-memory location table: one struct aor per registered user
 * with its bindings (contacts), mirrored row by row into the store's
 * registrations table so another node or a restarted daemon finds them.
 * Handles REGISTER after digest authentication (auth.c): add, refresh,
 * remove one or all bindings, query; expires bindings on a timer; sends
 * OPTIONS keep-alives to every contact (NAT bindings) and drops a contact
 * that stops answering. Emits sip.registered / sip.unregistered.
 */
#include "base/cw.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "loop/loop.h"
#include "sip/sip_int.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BINDINGS   10 /* contacts per AOR; the one expiring first makes room */
#define PING_MISSES    3  /* keep-alives unanswered before a contact is dropped */
#define DEFAULT_EXPIRY 3600

struct binding {
    struct binding *next;
    char uri[256];
    char user_agent[128];
    char transport[8];
    char source[96]; /* "1.2.3.4:5060" where the REGISTER came from */
    char route[160]; /* "sip:1.2.3.4:5060;transport=udp": where requests go */
    char call_id[128];
    uint32_t cseq;
    int64_t expires_at;
    int misses;
};

struct aor {
    int64_t user_id;
    int64_t domain_id;
    char login[64];
    char extension[16];
    char domain[128];
    struct binding *bindings;
};

struct ping {
    int64_t user_id;
    char uri[256];
};

static struct {
    struct idmap aors;  /* user id -> struct aor */
    struct idmap pings; /* ping id -> struct ping */
    struct event *tick;
    int64_t next_ping;
} R;

static struct aor *aor_get(int64_t user_id)
{
    return idmap_get(&R.aors, (uint64_t)user_id);
}

static struct aor *aor_make(const struct auth_user *u)
{
    struct aor *a = aor_get(u->user_id);
    if (!a) {
        a = cw_calloc(1, sizeof *a);
        a->user_id = u->user_id;
        idmap_put(&R.aors, (uint64_t)u->user_id, a);
    }
    a->domain_id = u->domain_id;
    cw_strlcpy(a->login, u->login, sizeof a->login);
    cw_strlcpy(a->extension, u->extension, sizeof a->extension);
    cw_strlcpy(a->domain, u->domain, sizeof a->domain);
    return a;
}

static void aor_free_if_empty(struct aor *a)
{
    if (a->bindings) return;
    idmap_del(&R.aors, (uint64_t)a->user_id);
    free(a);
}

static void make_route(struct binding *b, const char *ip, int port)
{
    bool v6 = strchr(ip, ':') != NULL;
    snprintf(b->source, sizeof b->source, v6 ? "[%s]:%d" : "%s:%d", ip, port);
    snprintf(b->route, sizeof b->route, "sip:%s;transport=%s", b->source, b->transport);
}

static json_t *binding_json(const struct aor *a, const struct binding *b)
{
    return json_pack("{sI sI ss ss ss ss ss ss ss sI}", "user_id", (json_int_t)a->user_id,
                     "domain_id", (json_int_t)a->domain_id, "login", a->login, "extension",
                     a->extension, "domain", a->domain, "contact", b->uri, "user_agent",
                     b->user_agent, "source", b->source, "transport", b->transport, "expires_at",
                     (json_int_t)b->expires_at);
}

static void store_upsert(const struct aor *a, const struct binding *b)
{
    int rc = store_exec(
        store_main(),
        "INSERT INTO registrations (domain_id, user_id, contact, expires_at, user_agent, source,"
        " transport, call_id, node, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?)"
        " ON CONFLICT (user_id, contact) DO UPDATE SET expires_at = excluded.expires_at,"
        " user_agent = excluded.user_agent, source = excluded.source,"
        " transport = excluded.transport, call_id = excluded.call_id,"
        " updated_at = excluded.updated_at",
        SA_INT(a->domain_id), SA_INT(a->user_id), SA_STR(b->uri), SA_INT(b->expires_at),
        SA_STR(b->user_agent), SA_STR(b->source), SA_STR(b->transport), SA_STR(b->call_id),
        SA_INT(cw_wall_time()), SA_END);
    if (rc < 0) log_error("sip", "store: saving registration: %s", store_errmsg(store_main()));
}

static void store_delete(const struct aor *a, const struct binding *b)
{
    if (store_exec(store_main(), "DELETE FROM registrations WHERE user_id = ? AND contact = ?",
                   SA_INT(a->user_id), SA_STR(b->uri), SA_END) < 0)
        log_error("sip", "store: removing registration: %s", store_errmsg(store_main()));
}

/* Unlink and free a binding, telling the store and the bus why. */
static void binding_remove(struct aor *a, struct binding *b, const char *reason)
{
    struct binding **pp = &a->bindings;
    while (*pp && *pp != b)
        pp = &(*pp)->next;
    if (*pp) *pp = b->next;
    store_delete(a, b);
    log_info("sip", "unregistered %s@%s contact %s (%s)", a->login, a->domain, b->uri, reason);
    json_t *j = binding_json(a, b);
    json_object_set_new(j, "reason", json_string(reason));
    events_emit("sip.unregistered", a->domain_id, j);
    free(b);
}

static struct binding *binding_find(struct aor *a, const char *uri)
{
    for (struct binding *b = a->bindings; b; b = b->next)
        if (!strcmp(b->uri, uri)) return b;
    return NULL;
}

static int binding_count(const struct aor *a)
{
    int n = 0;
    for (const struct binding *b = a->bindings; b; b = b->next)
        n++;
    return n;
}

/* 200 OK to a REGISTER: every current binding with its remaining time. */
static void reply_bindings(uint64_t id, const struct aor *a)
{
    cw_buf h;
    cw_buf_init(&h);
    int64_t now = cw_wall_time();
    if (a)
        for (const struct binding *b = a->bindings; b; b = b->next)
            cw_buf_printf(&h, "Contact: <%s>;expires=%lld\r\n", b->uri,
                          (long long)CW_MAX(b->expires_at - now, 0));
    edge_respond(id, 200, "OK", h.len ? h.data : NULL, NULL, NULL);
    cw_buf_free(&h);
}

void registrar_on_register(struct edge_request *r)
{
    if (bans_is_banned(r->src_ip)) {
        edge_drop(r->id);
        return;
    }
    if (!r->to_host[0] || !r->to_user[0]) {
        edge_respond(r->id, 400, "Missing AOR", NULL, NULL, NULL);
        return;
    }
    struct auth_user u;
    if (auth_request(r, "REGISTER", r->to_host, r->to_user, false, &u) != AUTH_OK) return;

    int min = (int)config_int("sip.reg_min_expires");
    int max = (int)config_int("sip.reg_max_expires");
    int def = r->expires >= 0 ? r->expires : DEFAULT_EXPIRY;
    struct aor *a = aor_get(u.user_id);

    if (r->star) {
        /* RFC 3261 10.3 step 6: "*" only alone and with Expires: 0 */
        if (r->expires != 0 || r->ncontacts > 0) {
            edge_respond(r->id, 400, "Invalid Wildcard Contact", NULL, NULL, NULL);
            return;
        }
        while (a && a->bindings)
            binding_remove(a, a->bindings, "unregister");
        if (a) aor_free_if_empty(a);
        reply_bindings(r->id, NULL);
        return;
    }
    for (int i = 0; i < r->ncontacts; i++) {
        int e = r->contacts[i].expires >= 0 ? r->contacts[i].expires : def;
        if (e > 0 && e < min) {
            char h[64];
            snprintf(h, sizeof h, "Min-Expires: %d\r\n", min);
            edge_respond(r->id, 423, "Interval Too Brief", h, NULL, NULL);
            return;
        }
    }
    if (r->ncontacts == 0) {
        reply_bindings(r->id, a); /* a query */
        return;
    }
    a = aor_make(&u);
    int64_t now = cw_wall_time();
    for (int i = 0; i < r->ncontacts; i++) {
        const struct edge_contact *c = &r->contacts[i];
        int e = c->expires >= 0 ? c->expires : def;
        if (e > max) e = max;
        struct binding *b = binding_find(a, c->uri);
        if (b && !strcmp(b->call_id, r->call_id) && r->cseq <= b->cseq) continue; /* stale */
        if (e == 0) {
            if (b) binding_remove(a, b, "unregister");
            continue;
        }
        bool fresh = !b;
        if (fresh) {
            if (binding_count(a) >= MAX_BINDINGS) {
                struct binding *old = a->bindings;
                for (struct binding *x = a->bindings; x; x = x->next)
                    if (x->expires_at < old->expires_at) old = x;
                binding_remove(a, old, "replaced");
            }
            b = cw_calloc(1, sizeof *b);
            cw_strlcpy(b->uri, c->uri, sizeof b->uri);
            b->next = a->bindings;
            a->bindings = b;
        }
        cw_strlcpy(b->user_agent, r->user_agent, sizeof b->user_agent);
        cw_strlcpy(b->transport, r->transport, sizeof b->transport);
        make_route(b, r->src_ip, r->src_port);
        cw_strlcpy(b->call_id, r->call_id, sizeof b->call_id);
        b->cseq = r->cseq;
        b->expires_at = now + e;
        b->misses = 0;
        store_upsert(a, b);
        if (fresh) {
            log_info("sip", "registered %s@%s contact %s from %s/%s (%s), %d s", a->login,
                     a->domain, b->uri, b->source, b->transport,
                     b->user_agent[0] ? b->user_agent : "no user agent", e);
            events_emit("sip.registered", a->domain_id, binding_json(a, b));
        }
    }
    reply_bindings(r->id, a);
    aor_free_if_empty(a);
}

/* ------------------------------------------------------------------ */
/* location */

int sip_locate(int64_t user_id, struct sip_contact *out, int max)
{
    struct aor *a = aor_get(user_id);
    int n = 0;
    int64_t now = cw_wall_time();
    for (struct binding *b = a ? a->bindings : NULL; b && n < max; b = b->next) {
        if (b->expires_at <= now) continue;
        cw_strlcpy(out[n].uri, b->uri, sizeof out[n].uri);
        cw_strlcpy(out[n].user_agent, b->user_agent, sizeof out[n].user_agent);
        out[n].expires_at = b->expires_at;
        n++;
    }
    return n;
}

bool sip_user_online(int64_t user_id)
{
    struct sip_contact c;
    return sip_locate(user_id, &c, 1) > 0;
}

int registrar_branches(int64_t user_id, struct call_branch *out, int max, char *aor, size_t aorlen)
{
    struct aor *a = aor_get(user_id);
    if (!a) return 0;
    snprintf(aor, aorlen, "sip:%s@%s", a->extension[0] ? a->extension : a->login, a->domain);
    int n = 0;
    int64_t now = cw_wall_time();
    for (struct binding *b = a->bindings; b && n < max; b = b->next) {
        if (b->expires_at <= now) continue;
        cw_strlcpy(out[n].uri, b->uri, sizeof out[n].uri);
        cw_strlcpy(out[n].route, b->route, sizeof out[n].route);
        n++;
    }
    return n;
}

int sip_registrations(int64_t domain_id, struct sip_registration *out, int max)
{
    uint64_t *keys;
    size_t nk = idmap_keys(&R.aors, &keys);
    int n = 0;
    for (size_t i = 0; i < nk && n < max; i++) {
        struct aor *a = aor_get((int64_t)keys[i]);
        if (!a || (domain_id && a->domain_id != domain_id)) continue;
        for (struct binding *b = a->bindings; b && n < max; b = b->next) {
            struct sip_registration *o = &out[n++];
            memset(o, 0, sizeof *o);
            o->user_id = a->user_id;
            o->domain_id = a->domain_id;
            cw_strlcpy(o->login, a->login, sizeof o->login);
            cw_strlcpy(o->extension, a->extension, sizeof o->extension);
            cw_strlcpy(o->contact.uri, b->uri, sizeof o->contact.uri);
            cw_strlcpy(o->contact.user_agent, b->user_agent, sizeof o->contact.user_agent);
            o->contact.expires_at = b->expires_at;
            cw_strlcpy(o->source, b->source, sizeof o->source);
            cw_strlcpy(o->transport, b->transport, sizeof o->transport);
        }
    }
    free(keys);
    return n;
}

/* ------------------------------------------------------------------ */
/* expiry and keep-alive */

static void send_ping(struct aor *a, struct binding *b)
{
    struct cmd_ping *c = cw_calloc(1, sizeof *c);
    c->m.type = CMD_PING;
    c->id = sip_next_id();
    cw_strlcpy(c->uri, b->uri, sizeof c->uri);
    cw_strlcpy(c->route, b->route, sizeof c->route);
    struct ping *p = cw_calloc(1, sizeof *p);
    p->user_id = a->user_id;
    cw_strlcpy(p->uri, b->uri, sizeof p->uri);
    idmap_put(&R.pings, c->id, p);
    edge_command(&c->m);
}

void registrar_ping_result(const struct edge_result *res)
{
    struct ping *p = idmap_del(&R.pings, res->id);
    if (!p) return;
    struct aor *a = aor_get(p->user_id);
    struct binding *b = a ? binding_find(a, p->uri) : NULL;
    if (b) {
        /* any response proves the contact is there; silence (408) or a
           transport error (503: ICMP unreachable, connection refused) is a miss */
        bool miss = res->status == 408 || res->status == 503;
        log_debug("sip", "keep-alive %s: %d %s", b->uri, res->status, res->phrase);
        if (!miss) {
            b->misses = 0;
        } else if (++b->misses >= PING_MISSES) {
            binding_remove(a, b, "unreachable");
            aor_free_if_empty(a);
        }
    }
    free(p);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = cw_wall_time();
    int64_t keepalive = config_int("sip.keepalive");
    bool ping = keepalive > 0 && now >= R.next_ping;
    if (ping) R.next_ping = now + keepalive;
    uint64_t *keys;
    size_t n = idmap_keys(&R.aors, &keys);
    for (size_t i = 0; i < n; i++) {
        struct aor *a = aor_get((int64_t)keys[i]);
        if (!a) continue;
        struct binding *b = a->bindings;
        while (b) {
            struct binding *next = b->next;
            if (b->expires_at <= now)
                binding_remove(a, b, "expired");
            else if (ping)
                send_ping(a, b);
            b = next;
        }
        aor_free_if_empty(a);
    }
    free(keys);
}

/* Bindings a previous run left in the store, still valid, come back. */
static void load_from_store(void)
{
    store *st = store_main();
    int64_t now = cw_wall_time();
    store_exec(st, "DELETE FROM registrations WHERE expires_at <= ?", SA_INT(now), SA_END);
    store_res *res;
    if (store_query(st, &res,
                    "SELECT r.user_id, r.domain_id, r.contact, r.expires_at, r.user_agent,"
                    " r.source, r.transport, r.call_id, u.login, u.extension, d.name"
                    " FROM registrations r JOIN users u ON u.id = r.user_id"
                    " JOIN domains d ON d.id = r.domain_id WHERE r.expires_at > ?",
                    SA_INT(now), SA_END) < 0 ||
        !res) {
        log_error("sip", "store: loading registrations: %s", store_errmsg(st));
        return;
    }
    int count = 0;
    while (store_next(res)) {
        struct auth_user u = {.user_id = store_int(res, 0), .domain_id = store_int(res, 1)};
        cw_strlcpy(u.login, store_str(res, 8) ? store_str(res, 8) : "", sizeof u.login);
        cw_strlcpy(u.extension, store_str(res, 9) ? store_str(res, 9) : "", sizeof u.extension);
        cw_strlcpy(u.domain, store_str(res, 10) ? store_str(res, 10) : "", sizeof u.domain);
        struct aor *a = aor_make(&u);
        const char *uri = store_str(res, 2);
        if (!uri || binding_find(a, uri)) continue;
        struct binding *b = cw_calloc(1, sizeof *b);
        cw_strlcpy(b->uri, uri, sizeof b->uri);
        b->expires_at = store_int(res, 3);
        cw_strlcpy(b->user_agent, store_str(res, 4) ? store_str(res, 4) : "", sizeof b->user_agent);
        cw_strlcpy(b->source, store_str(res, 5) ? store_str(res, 5) : "", sizeof b->source);
        cw_strlcpy(b->transport, store_str(res, 6) ? store_str(res, 6) : "udp",
                   sizeof b->transport);
        cw_strlcpy(b->call_id, store_str(res, 7) ? store_str(res, 7) : "", sizeof b->call_id);
        if (b->source[0])
            snprintf(b->route, sizeof b->route, "sip:%s;transport=%s", b->source, b->transport);
        b->next = a->bindings;
        a->bindings = b;
        count++;
    }
    store_res_free(res);
    if (count)
        log_info("sip", "%d registration%s restored from the store", count, count == 1 ? "" : "s");
}

void registrar_init(void)
{
    memset(&R, 0, sizeof R);
    load_from_store();
    R.next_ping = cw_wall_time() + config_int("sip.keepalive");
    R.tick = event_new(loop_base(), -1, EV_PERSIST, on_tick, NULL);
    static const struct timeval tv = {1, 0};
    event_add(R.tick, &tv);
}

static void free_aor(void *p)
{
    struct aor *a = p;
    while (a->bindings) {
        struct binding *n = a->bindings->next;
        free(a->bindings);
        a->bindings = n;
    }
    free(a);
}

void registrar_shutdown(void)
{
    if (R.tick) event_free(R.tick);
    /* bindings stay in the store: a restart (or another node) picks them up */
    idmap_clear(&R.aors, free_aor);
    idmap_clear(&R.pings, free);
    memset(&R, 0, sizeof R);
}
