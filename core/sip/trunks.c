/*
 * trunks.c - SIP trunks and outbound lines (core thread): SIP trunks, SIP
 * phones and GSM gateways a tenant reaches the public network through, and
 * private routes to an office PBX.
 *
 * Owns the in-memory copy of the trunks table with each trunk's live state:
 * outbound registration (with retry and back-off), status with the reason
 * of the last failure, a per-line event log kept in trunk_log, line counts
 * against the configured limits, and the resolved address inbound calls are
 * matched by. Also the outbound routing helper: priority order, dial-pattern
 * regex, digit stripping, line limits, a random caller id from the list.
 */
#include "base/cw.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "loop/loop.h"
#include "sip/sip_int.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <event2/dns.h>
#include <netdb.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LOG_KEEP 100 /* trunk_log lines kept per trunk */

struct trunk {
    struct trunk *next;
    int64_t id;
    int64_t domain_id;
    char name[128];
    char kind[24];
    bool enabled;
    char host[128];
    int port;
    char transport[8];
    char login[64];
    char password[128];
    char realm[128];
    bool reg;
    int reg_expires;
    int priority;
    char dial_pattern[256];
    int strip;
    char prefix[32];
    int max_in, max_out;
    char caller_ids[512];
    int64_t only_group_id;
    int64_t updated_at;

    /* live state */
    enum sip_trunk_state state;
    char reason[128];
    int64_t since;
    int64_t retry_at; /* wall clock; 0 = no retry pending */
    int failures;
    int calls_in, calls_out;
    char addr[64]; /* resolved address of host, "" until known */
    struct evdns_getaddrinfo_request *dns;
    bool gone; /* removed from the store: delete once the DNS query ends */
};

static struct {
    struct trunk *list;
    struct event *tick;
    struct evdns_base *dns;
} T;

static bool is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static struct trunk *trunk_find(int64_t id)
{
    for (struct trunk *t = T.list; t; t = t->next)
        if (t->id == id && !t->gone) return t;
    return NULL;
}

const char *sip_trunk_state_name(enum sip_trunk_state s)
{
    switch (s) {
    case SIP_TRUNK_REGISTERING:
        return "registering";
    case SIP_TRUNK_REGISTERED:
        return "registered";
    case SIP_TRUNK_FAILED:
        return "failed";
    case SIP_TRUNK_NO_REGISTRATION:
        return "no_registration";
    case SIP_TRUNK_DISABLED:
        return "disabled";
    default:
        return "unregistered";
    }
}

/* One line of the trunk's log: the store keeps the last LOG_KEEP. */
static void trunk_log(struct trunk *t, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void trunk_log(struct trunk *t, const char *event, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    store *st = store_main();
    if (store_exec(st, "INSERT INTO trunk_log (trunk_id, ts_ms, event, detail) VALUES (?, ?, ?, ?)",
                   SA_INT(t->id), SA_INT(cw_wall_ms()), SA_STR(event), SA_STR(detail), SA_END) < 0)
        log_error("sip", "store: trunk log: %s", store_errmsg(st));
    store_exec(st,
               "DELETE FROM trunk_log WHERE trunk_id = ? AND id < (SELECT MIN(id) FROM"
               " (SELECT id FROM trunk_log WHERE trunk_id = ? ORDER BY id DESC LIMIT ?) AS k)",
               SA_INT(t->id), SA_INT(t->id), SA_INT(LOG_KEEP), SA_END);
    log_info("sip", "trunk %s (%lld): %s%s%s", t->name, (long long)t->id, event,
             detail[0] ? ": " : "", detail);
}

static void set_state(struct trunk *t, enum sip_trunk_state s, const char *reason)
{
    bool changed = t->state != s || strcmp(t->reason, reason ? reason : "");
    t->state = s;
    cw_strlcpy(t->reason, reason ? reason : "", sizeof t->reason);
    if (!changed) return;
    t->since = cw_wall_time();
    events_emit("sip.trunk", t->domain_id,
                json_pack("{sI ss ss ss}", "trunk_id", (json_int_t)t->id, "name", t->name, "state",
                          sip_trunk_state_name(s), "reason", t->reason));
}

static void send_register(struct trunk *t)
{
    struct cmd_trunk *c = cw_calloc(1, sizeof *c);
    c->m.type = CMD_TRUNK_REG;
    c->id = (uint64_t)t->id;
    bool v6 = strchr(t->host, ':') != NULL;
    snprintf(c->registrar, sizeof c->registrar,
             v6 ? "sip:[%s]:%d;transport=%s" : "sip:%s:%d;transport=%s", t->host, t->port,
             t->transport);
    snprintf(c->aor, sizeof c->aor, v6 ? "sip:%s@[%s]" : "sip:%s@%s", t->login,
             t->realm[0] ? t->realm : t->host);
    cw_strlcpy(c->user, t->login, sizeof c->user);
    cw_strlcpy(c->pass, t->password, sizeof c->pass);
    c->expires = t->reg_expires;
    t->retry_at = 0;
    set_state(t, SIP_TRUNK_REGISTERING, "");
    trunk_log(t, "registering", "REGISTER %s as %s, expires %d", c->registrar, c->aor, c->expires);
    edge_command(&c->m);
}

static void send_unregister(struct trunk *t)
{
    struct cmd_trunk *c = cw_calloc(1, sizeof *c);
    c->m.type = CMD_TRUNK_REG;
    c->id = (uint64_t)t->id;
    c->unregister = true;
    edge_command(&c->m);
}

void trunks_reg_result(const struct edge_result *res)
{
    struct trunk *t = trunk_find((int64_t)res->id);
    if (!t || !t->enabled || !t->reg) return;
    if (res->status >= 200 && res->status < 300) {
        bool was = t->state == SIP_TRUNK_REGISTERED;
        t->failures = 0;
        set_state(t, SIP_TRUNK_REGISTERED, "");
        if (!was)
            trunk_log(t, "registered", "%d %s, expires %d", res->status, res->phrase, res->expires);
        return;
    }
    char why[160];
    snprintf(why, sizeof why, "%d %s", res->status, res->phrase);
    t->failures++;
    int64_t base = config_int("sip.trunk_retry");
    int64_t wait = base << CW_MIN(t->failures - 1, 4); /* 1x, 2x, 4x, 8x, 16x */
    if (wait > 3600) wait = 3600;
    t->retry_at = cw_wall_time() + wait;
    set_state(t, SIP_TRUNK_FAILED, why);
    trunk_log(t, "failed", "%s; retry in %lld s", why, (long long)wait);
}

/* ------------------------------------------------------------------ */
/* addresses */

static void on_resolved(int err, struct evutil_addrinfo *ai, void *arg)
{
    struct trunk *t = arg;
    t->dns = NULL;
    if (t->gone) {
        if (ai) evutil_freeaddrinfo(ai);
        free(t);
        return;
    }
    if (err || !ai) {
        t->addr[0] = '\0';
        trunk_log(t, "dns", "cannot resolve %s: %s", t->host, evutil_gai_strerror(err));
        return;
    }
    char ip[64] = "";
    if (ai->ai_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, ip, sizeof ip);
    else if (ai->ai_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, ip, sizeof ip);
    cw_strlcpy(t->addr, ip, sizeof t->addr);
    evutil_freeaddrinfo(ai);
}

static void resolve(struct trunk *t)
{
    if (is_ip(t->host)) {
        cw_strlcpy(t->addr, t->host, sizeof t->addr);
        return;
    }
    if (!T.dns) T.dns = evdns_base_new(loop_base(), EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (!T.dns || t->dns) return;
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
    t->dns = evdns_getaddrinfo(T.dns, t->host, NULL, &hints, on_resolved, t);
}

/*
 * A request is the trunk's when it comes from the trunk's address and its
 * SIP port, or from its address with the trunk's realm in From (providers
 * that send from other ports, or over TCP). An address alone is not
 * enough: phones behind the same NAT as an office PBX share it, and they
 * must still authenticate.
 */
int64_t trunks_match_source(const char *ip, int port, const char *from_host, int64_t *domain_id,
                            char *login, size_t loginlen)
{
    struct trunk *best = NULL;
    int best_score = 0;
    for (struct trunk *t = T.list; t; t = t->next) {
        if (t->gone || !t->enabled || !t->addr[0] || strcmp(t->addr, ip)) continue;
        bool port_ok = t->port == port;
        bool realm_ok = from_host && t->realm[0] && !strcasecmp(t->realm, from_host);
        if (!port_ok && !realm_ok) continue;
        int score = (port_ok ? 2 : 0) + (realm_ok ? 1 : 0);
        if (score > best_score) {
            best = t;
            best_score = score;
        }
    }
    if (!best) return 0;
    *domain_id = best->domain_id;
    cw_strlcpy(login, best->login, loginlen);
    return best->id;
}

/* ------------------------------------------------------------------ */
/* lines */

bool trunks_line_free(int64_t trunk_id, bool inbound)
{
    struct trunk *t = trunk_find(trunk_id);
    if (!t) return false;
    int max = inbound ? t->max_in : t->max_out;
    int used = inbound ? t->calls_in : t->calls_out;
    return max <= 0 || used < max;
}

void trunks_call_started(int64_t trunk_id, bool inbound)
{
    struct trunk *t = trunk_find(trunk_id);
    if (!t) return;
    if (inbound)
        t->calls_in++;
    else
        t->calls_out++;
}

void trunks_call_ended(int64_t trunk_id, bool inbound)
{
    struct trunk *t = trunk_find(trunk_id);
    if (!t) return;
    if (inbound && t->calls_in > 0) t->calls_in--;
    if (!inbound && t->calls_out > 0) t->calls_out--;
}

int trunks_target(int64_t trunk_id, const char *number, struct cmd_call *c, int64_t *domain_id)
{
    struct trunk *t = trunk_find(trunk_id);
    if (!t || !t->enabled) return CW_ENOENT;
    if (!number || !*number || strlen(number) > 64) return CW_EINVAL;
    for (const char *p = number; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("+*#-._", *p)) return CW_EINVAL;
    if (!trunks_line_free(trunk_id, false)) return CW_EBUSY;
    bool v6 = strchr(t->host, ':') != NULL;
    snprintf(c->branches[0].uri, sizeof c->branches[0].uri,
             v6 ? "sip:%s@[%s]:%d;transport=%s" : "sip:%s@%s:%d;transport=%s", number, t->host,
             t->port, t->transport);
    c->nbranches = 1;
    snprintf(c->to, sizeof c->to, v6 ? "<sip:%s@[%s]>" : "<sip:%s@%s>", number,
             t->realm[0] ? t->realm : t->host);
    cw_strlcpy(c->auth_user, t->login, sizeof c->auth_user);
    cw_strlcpy(c->auth_pass, t->password, sizeof c->auth_pass);
    *domain_id = t->domain_id;
    return CW_OK;
}

const char *trunks_from_host(int64_t trunk_id)
{
    struct trunk *t = trunk_find(trunk_id);
    if (!t) return NULL;
    return t->realm[0] ? t->realm : t->host;
}

/* ------------------------------------------------------------------ */
/* dial patterns */

/*
 * Translate to POSIX ERE and refuse what could make regcomp() expensive:
 * a quantifier on a quantifier ("a++", "a*{2}") and repetition counts whose
 * product passes 10000 (glibc copies the repeated tree for each count).
 */
int dialpat_translate(const char *pattern, char *out, size_t outlen)
{
    size_t j = 0;
    bool in_bracket = false, after_quant = false, atom = false;
    long product = 1;
#define PUT(s)                                                                                     \
    do {                                                                                           \
        size_t n_ = strlen(s);                                                                     \
        if (j + n_ >= outlen) return CW_EINVAL;                                                    \
        memcpy(out + j, s, n_);                                                                    \
        j += n_;                                                                                   \
    } while (0)
    for (const char *p = pattern; *p; p++) {
        if (in_bracket) {
            if (*p == '\\') {
                char e = p[1];
                if (!e) return CW_EINVAL;
                p++;
                if (e == 'd')
                    PUT("0-9");
                else if (e == 'w')
                    PUT("A-Za-z0-9_");
                else if (e == 's')
                    PUT("[:space:]");
                else if (isalnum((unsigned char)e))
                    return CW_EINVAL;
                else {
                    char lit[2] = {e, '\0'};
                    PUT(lit);
                }
                continue;
            }
            if (*p == ']') in_bracket = false;
            if ((unsigned char)*p < 0x20) return CW_EINVAL;
            char one[2] = {*p, '\0'};
            PUT(one);
            continue;
        }
        if (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
            if (after_quant || !atom) return CW_EINVAL;
            after_quant = true;
            if (*p == '{') {
                const char *close = strchr(p, '}');
                if (!close || close - p > 12) return CW_EINVAL;
                long lo = 0, hi = -1;
                char *end;
                lo = strtol(p + 1, &end, 10);
                if (end == p + 1 || lo < 0) return CW_EINVAL;
                if (*end == ',') {
                    if (end + 1 == close)
                        hi = lo;
                    else {
                        hi = strtol(end + 1, &end, 10);
                        if (hi < lo) return CW_EINVAL;
                    }
                } else {
                    hi = lo;
                }
                if (end != close) return CW_EINVAL;
                product *= hi > 0 ? hi : 1;
                if (product > 10000) return CW_EINVAL;
                size_t n = (size_t)(close - p + 1);
                if (j + n >= outlen) return CW_EINVAL;
                memcpy(out + j, p, n);
                j += n;
                p = close;
                continue;
            }
            char one[2] = {*p, '\0'};
            PUT(one);
            continue;
        }
        after_quant = false;
        atom = *p != '(' && *p != '|' && *p != '^';
        if (*p == '\\') {
            char e = p[1];
            if (!e) return CW_EINVAL;
            p++;
            switch (e) {
            case 'd':
                PUT("[0-9]");
                break;
            case 'D':
                PUT("[^0-9]");
                break;
            case 'w':
                PUT("[A-Za-z0-9_]");
                break;
            case 's':
                PUT("[[:space:]]");
                break;
            default:
                if (isalnum((unsigned char)e)) return CW_EINVAL; /* \b, \1, ...: not ours */
                {
                    char lit[3] = {'\\', e, '\0'};
                    PUT(lit);
                }
            }
            continue;
        }
        if (*p == '[') {
            in_bracket = true;
            PUT("[");
            if (p[1] == '^') {
                PUT("^");
                p++;
            }
            if (p[1] == ']') {
                PUT("]");
                p++;
            }
            continue;
        }
        if ((unsigned char)*p < 0x20) return CW_EINVAL;
        char one[2] = {*p, '\0'};
        PUT(one);
    }
#undef PUT
    if (in_bracket) return CW_EINVAL;
    out[j] = '\0';
    return CW_OK;
}

int dialpat_match(const char *pattern, const char *subject, int strip, char *out, size_t outlen)
{
    if (!pattern || !*pattern || strlen(pattern) > 240) return CW_EINVAL;
    char ere[600], full[640];
    if (dialpat_translate(pattern, ere, sizeof ere)) return CW_EINVAL;
    snprintf(full, sizeof full, "^(%s)$", ere);
    regex_t re;
    if (regcomp(&re, full, REG_EXTENDED)) return CW_EINVAL;
    regmatch_t m[3];
    int rc = regexec(&re, subject, 3, m, 0);
    size_t ngroups = re.re_nsub;
    regfree(&re);
    if (rc != 0) return 0;
    /* group 1 of the user's pattern is group 2 here; the whole match otherwise */
    const regmatch_t *g = ngroups >= 2 && m[2].rm_so >= 0 ? &m[2] : &m[1];
    size_t len = (size_t)(g->rm_eo - g->rm_so);
    const char *s = subject + g->rm_so;
    if (len > 4 && !strncasecmp(s, "sip:", 4)) s += 4, len -= 4;
    const char *at = memchr(s, '@', len);
    if (at) len = (size_t)(at - s);
    int k = 0;
    while (k < strip && len > 0 && isdigit((unsigned char)*s))
        s++, len--, k++;
    if (len == 0 || len >= outlen) return 0;
    memcpy(out, s, len);
    out[len] = '\0';
    return 1;
}

static bool in_group(int64_t group_id, int64_t user_id)
{
    int64_t n = 0;
    if (store_query_int(
            store_main(), &n,
            "SELECT COUNT(*) FROM call_group_members WHERE group_id = ? AND user_id = ?",
            SA_INT(group_id), SA_INT(user_id), SA_END))
        return false;
    return n > 0;
}

static void pick_caller_id(const struct trunk *t, char *out, size_t len)
{
    out[0] = '\0';
    char ids[16][64];
    int n = 0;
    char copy[512];
    cw_strlcpy(copy, t->caller_ids, sizeof copy);
    for (char *save = NULL, *tok = strtok_r(copy, ", ", &save); tok && n < 16;
         tok = strtok_r(NULL, ", ", &save))
        cw_strlcpy(ids[n++], tok, sizeof ids[0]);
    if (n == 0) return;
    uint32_t r = 0;
    cw_random_bytes(&r, sizeof r);
    cw_strlcpy(out, ids[r % (uint32_t)n], len);
}

int sip_route_outbound(int64_t domain_id, int64_t caller_user_id, const char *dialled,
                       struct sip_route *out)
{
    memset(out, 0, sizeof *out);
    if (!dialled || !*dialled || strlen(dialled) > 64) return CW_EINVAL;
    char domain[128] = "";
    store_res *res;
    if (store_query(store_main(), &res, "SELECT name FROM domains WHERE id = ?", SA_INT(domain_id),
                    SA_END) >= 0 &&
        res) {
        if (store_next(res) && store_str(res, 0))
            cw_strlcpy(domain, store_str(res, 0), sizeof domain);
        store_res_free(res);
    }
    char subject[256];
    snprintf(subject, sizeof subject, "sip:%s@%s", dialled, domain);

    /* enabled trunks of the domain, lowest priority number first */
    struct trunk *cand[64];
    int n = 0;
    for (struct trunk *t = T.list; t && n < 64; t = t->next)
        if (!t->gone && t->enabled && t->domain_id == domain_id && t->dial_pattern[0])
            cand[n++] = t;
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0 && (cand[k]->priority < cand[k - 1]->priority ||
                                  (cand[k]->priority == cand[k - 1]->priority &&
                                   cand[k]->id < cand[k - 1]->id));
             k--) {
            struct trunk *x = cand[k];
            cand[k] = cand[k - 1];
            cand[k - 1] = x;
        }
    bool busy = false;
    for (int i = 0; i < n; i++) {
        struct trunk *t = cand[i];
        char number[64];
        if (dialpat_match(t->dial_pattern, subject, t->strip, number, sizeof number) != 1) continue;
        if (t->only_group_id && caller_user_id && !in_group(t->only_group_id, caller_user_id))
            continue; /* "only for group": others go to the next route */
        if (!trunks_line_free(t->id, false)) {
            busy = true;
            continue;
        }
        if (strlen(t->prefix) + strlen(number) >= sizeof out->number) continue;
        out->trunk_id = t->id;
        cw_strlcpy(out->number, t->prefix, sizeof out->number);
        strcat(out->number, number);
        pick_caller_id(t, out->caller_id, sizeof out->caller_id);
        return CW_OK;
    }
    return busy ? CW_EBUSY : CW_ENOENT;
}

/* ------------------------------------------------------------------ */
/* loading and status */

static void trunk_free(struct trunk *t)
{
    if (t->dns) {
        t->gone = true; /* on_resolved frees it */
        return;
    }
    memset(t->password, 0, sizeof t->password);
    free(t);
}

static bool same_registration(const struct trunk *a, const struct trunk *b)
{
    return a->enabled == b->enabled && a->reg == b->reg && !strcmp(a->host, b->host) &&
           a->port == b->port && !strcmp(a->transport, b->transport) &&
           !strcmp(a->login, b->login) && !strcmp(a->password, b->password) &&
           !strcmp(a->realm, b->realm) && a->reg_expires == b->reg_expires;
}

void sip_trunks_reload(void)
{
    store_res *res;
    store *st = store_main();
    if (store_query(st, &res,
                    "SELECT id, domain_id, name, kind, enabled, host, port, transport, login,"
                    " password, realm, register, register_expires, priority, dial_pattern,"
                    " strip_digits, prefix, max_in, max_out, caller_ids, only_group_id,"
                    " updated_at FROM trunks ORDER BY id",
                    SA_END) < 0 ||
        !res) {
        log_error("sip", "store: loading trunks: %s", store_errmsg(st));
        return;
    }
    struct trunk *fresh = NULL, **tail = &fresh;
    while (store_next(res)) {
        struct trunk *t = cw_calloc(1, sizeof *t);
#define S(i, f) cw_strlcpy(t->f, store_str(res, i) ? store_str(res, i) : "", sizeof t->f)
        t->id = store_int(res, 0);
        t->domain_id = store_int(res, 1);
        S(2, name);
        S(3, kind);
        t->enabled = store_int(res, 4) != 0;
        S(5, host);
        t->port = (int)store_int(res, 6);
        S(7, transport);
        S(8, login);
        S(9, password);
        S(10, realm);
        t->reg = store_int(res, 11) != 0;
        t->reg_expires = (int)store_int(res, 12);
        t->priority = (int)store_int(res, 13);
        S(14, dial_pattern);
        t->strip = (int)store_int(res, 15);
        S(16, prefix);
        t->max_in = (int)store_int(res, 17);
        t->max_out = (int)store_int(res, 18);
        S(19, caller_ids);
        t->only_group_id = store_int(res, 20);
        t->updated_at = store_int(res, 21);
#undef S
        if (t->reg_expires < 60) t->reg_expires = 60;
        *tail = t;
        tail = &t->next;
    }
    store_res_free(res);

    /* carry live state over; (re)register what changed; drop what is gone */
    for (struct trunk *t = fresh; t; t = t->next) {
        struct trunk *old = trunk_find(t->id);
        bool want_reg = t->enabled && t->reg && t->login[0];
        bool withdrawn = false; /* it was registering with the provider and stops now */
        if (old) {
            t->state = old->state;
            cw_strlcpy(t->reason, old->reason, sizeof t->reason);
            t->since = old->since;
            t->retry_at = old->retry_at;
            t->failures = old->failures;
            t->calls_in = old->calls_in;
            t->calls_out = old->calls_out;
            if (!strcmp(old->host, t->host)) cw_strlcpy(t->addr, old->addr, sizeof t->addr);
            if (same_registration(old, t)) continue;
            trunk_log(t, "changed", "settings updated");
            if (old->enabled && old->reg && old->login[0]) {
                send_unregister(old);
                withdrawn = !want_reg;
            }
        }
        t->failures = 0;
        if (!t->addr[0]) resolve(t);
        if (!t->enabled) {
            set_state(t, SIP_TRUNK_DISABLED, "");
        } else if (want_reg) {
            send_register(t);
        } else if (withdrawn) {
            set_state(t, SIP_TRUNK_UNREGISTERED, "registration turned off");
            trunk_log(t, "unregistered", "REGISTER with expires 0: registration turned off");
        } else {
            set_state(t, SIP_TRUNK_NO_REGISTRATION, "");
        }
    }
    for (struct trunk *o = T.list; o; o = o->next) {
        bool kept = false;
        for (struct trunk *t = fresh; t; t = t->next)
            if (t->id == o->id) kept = true;
        if (!kept && !o->gone) {
            if (o->enabled && o->reg && o->login[0]) send_unregister(o);
            log_info("sip", "trunk %s (%lld) removed", o->name, (long long)o->id);
        }
    }
    while (T.list) {
        struct trunk *n = T.list->next;
        trunk_free(T.list);
        T.list = n;
    }
    T.list = fresh;
}

int sip_trunk_status(int64_t trunk_id, struct sip_trunk_status *out)
{
    struct trunk *t = trunk_find(trunk_id);
    if (!t) return CW_ENOENT;
    memset(out, 0, sizeof *out);
    out->trunk_id = t->id;
    out->state = t->state;
    cw_strlcpy(out->reason, t->reason, sizeof out->reason);
    out->since = t->since;
    out->next_retry = t->retry_at;
    out->calls_in = t->calls_in;
    out->calls_out = t->calls_out;
    return CW_OK;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = cw_wall_time();
    for (struct trunk *t = T.list; t; t = t->next)
        if (!t->gone && t->enabled && t->reg && t->login[0] && t->retry_at && t->retry_at <= now)
            send_register(t);
}

void trunks_init(void)
{
    memset(&T, 0, sizeof T);
    sip_trunks_reload();
    T.tick = event_new(loop_base(), -1, EV_PERSIST, on_tick, NULL);
    static const struct timeval tv = {1, 0};
    event_add(T.tick, &tv);
}

void trunks_shutdown(void)
{
    if (T.tick) event_free(T.tick);
    for (struct trunk *t = T.list; t; t = t->next)
        if (t->enabled && t->reg && t->login[0] && t->state == SIP_TRUNK_REGISTERED)
            send_unregister(t);
    while (T.list) {
        struct trunk *n = T.list->next;
        trunk_free(T.list); /* one with a DNS query pending is freed by on_resolved */
        T.list = n;
    }
    if (T.dns) evdns_base_free(T.dns, 1); /* fails the pending queries */
    memset(&T, 0, sizeof T);
}
