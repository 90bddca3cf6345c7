/*
 * auth.c - digest authentication of SIP requests against the store (core
 * thread).
 *
 * The realm is the tenant domain's name; the digest username is the
 * user's login; HA1 comes from users.sip_ha1_md5 / sip_ha1_sha256, so no
 * password is ever known here. Challenges follow sip.digest: MD5 (the
 * default: many deployed phones, baresip's libre among them, give up on a
 * response that carries any challenge they cannot compute), SHA-256, or
 * both with SHA-256 first (RFC 8760). Credentials of either algorithm are
 * checked whatever was offered. Every wrong credential, unknown user or unknown domain is
 * counted against the source address (bans.c); a missing or stale
 * credential is not. Every path answers the request exactly once.
 */
#include "base/cw.h"
#include "config/config.h"
#include "log/log.h"
#include "sip/sip_int.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static unsigned char nonce_key[32];

void auth_init(void)
{
    cw_random_bytes(nonce_key, sizeof nonce_key);
}

static void lower(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < size; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

static void challenge(const struct edge_request *r, const char *realm, bool proxy, bool stale)
{
    char nonce[64];
    digest_nonce_make(nonce_key, realm, cw_wall_time(), nonce, sizeof nonce);
    const char *name = proxy ? "Proxy-Authenticate" : "WWW-Authenticate";
    const char *which = config_str("sip.digest");
    bool want_sha = !strcasecmp(which, "sha-256") || !strcasecmp(which, "both");
    bool want_md5 = !strcasecmp(which, "both") || !want_sha;
    char *sha = want_sha ? digest_challenge(realm, nonce, DIGEST_SHA256, stale) : NULL;
    char *md5 = want_md5 ? digest_challenge(realm, nonce, DIGEST_MD5, stale) : NULL;
    cw_buf b;
    cw_buf_init(&b);
    if (sha) cw_buf_printf(&b, "%s: %s\r\n", name, sha);
    if (md5) cw_buf_printf(&b, "%s: %s\r\n", name, md5);
    char *h = cw_buf_steal(&b);
    edge_respond(r->id, proxy ? 407 : 401, proxy ? "Proxy Authentication Required" : "Unauthorized",
                 h, NULL, NULL);
    free(h);
    free(sha);
    free(md5);
}

static enum auth_result reject(const struct edge_request *r, int status, const char *reason,
                               const char *why, bool count)
{
    if (count) {
        log_warn("sip", "auth failure from %s:%d: %s (%s %s@%s)", r->src_ip, r->src_port, why,
                 r->kind == REQ_REGISTER ? "REGISTER"
                 : r->kind == REQ_INVITE ? "INVITE"
                                         : "SUBSCRIBE",
                 r->kind == REQ_REGISTER ? r->to_user : r->from_user,
                 r->kind == REQ_REGISTER ? r->to_host : r->from_host);
        /* the failure that starts a ban is still answered; the next are not */
        bans_failure(r->src_ip, why);
    }
    edge_respond(r->id, status, reason, NULL, NULL, NULL);
    return AUTH_REJECTED;
}

struct user_row {
    int64_t id;
    char login[64];
    char extension[16];
    char display[128];
    char ha1_md5[72];
    char ha1_sha256[72];
    char status[16];
};

static int user_query(store *st, int64_t domain_id, const char *name, bool aor, struct user_row *u)
{
    store_res *res;
    int rc = aor ? store_query(st, &res,
                               "SELECT id, login, extension, display_name, sip_ha1_md5,"
                               " sip_ha1_sha256, status FROM users WHERE (domain_id = ? AND"
                               " login = ?) OR (domain_id = ? AND extension = ?)"
                               " ORDER BY login = ? DESC",
                               /* the domain in each branch: both use an index */
                               SA_INT(domain_id), SA_STR(name), SA_INT(domain_id), SA_STR(name),
                               SA_STR(name), SA_END)
                 : store_query(st, &res,
                               "SELECT id, login, extension, display_name, sip_ha1_md5,"
                               " sip_ha1_sha256, status FROM users WHERE domain_id = ?"
                               " AND login = ?",
                               SA_INT(domain_id), SA_STR(name), SA_END);
    if (rc < 0 || !res) {
        log_error("sip", "store: user lookup: %s", store_errmsg(st));
        return CW_EIO;
    }
    if (!store_next(res)) {
        store_res_free(res);
        return CW_ENOENT;
    }
    memset(u, 0, sizeof *u);
    u->id = store_int(res, 0);
#define COL(i, f) cw_strlcpy(u->f, store_str(res, i) ? store_str(res, i) : "", sizeof u->f)
    COL(1, login);
    COL(2, extension);
    COL(3, display);
    COL(4, ha1_md5);
    COL(5, ha1_sha256);
    COL(6, status);
#undef COL
    store_res_free(res);
    return CW_OK;
}

enum auth_result auth_request(const struct edge_request *r, const char *method,
                              const char *realm_in, const char *aor_user, bool proxy,
                              struct auth_user *out)
{
    store *st = store_main();
    char realm[128];
    lower(realm, sizeof realm, realm_in);
    memset(out, 0, sizeof *out);

    if (bans_is_banned(r->src_ip)) {
        edge_drop(r->id);
        return AUTH_DROPPED;
    }
    /* the domain: a tenant we serve, or nothing to talk about */
    int64_t domain_id = 0;
    store_res *res;
    if (store_query(st, &res, "SELECT id, status FROM domains WHERE name = ?", SA_STR(realm),
                    SA_END) < 0 ||
        !res) {
        log_error("sip", "store: domain lookup: %s", store_errmsg(st));
        edge_respond(r->id, 500, "Server Error", NULL, NULL, NULL);
        return AUTH_REJECTED;
    }
    bool active = false;
    if (store_next(res)) {
        domain_id = store_int(res, 0);
        active = store_str(res, 1) && !strcmp(store_str(res, 1), "active");
    }
    store_res_free(res);
    if (!domain_id)
        return reject(r, r->kind == REQ_REGISTER ? 404 : 403,
                      r->kind == REQ_REGISTER ? "Domain Not Found" : "Forbidden", "unknown domain",
                      true);
    if (!active) return reject(r, 403, "Domain Disabled", "domain disabled", false);

    /* the AOR names a user of this domain (by login or extension) */
    struct user_row aor;
    bool have_aor = false;
    if (aor_user) {
        int rc = user_query(st, domain_id, aor_user, true, &aor);
        if (rc == CW_EIO) {
            edge_respond(r->id, 500, "Server Error", NULL, NULL, NULL);
            return AUTH_REJECTED;
        }
        have_aor = rc == CW_OK;
    }

    struct digest_cred cred;
    if (!r->auth[0]) {
        challenge(r, realm, proxy, false);
        return AUTH_CHALLENGED;
    }
    if (digest_parse(r->auth, &cred) != CW_OK)
        return reject(r, 400, "Malformed Credentials", "malformed credentials", true);
    char cred_realm[128];
    lower(cred_realm, sizeof cred_realm, cred.realm);
    enum digest_alg alg;
    if (strcmp(cred_realm, realm) != 0 || digest_alg_of(&cred, &alg) != CW_OK) {
        challenge(r, realm, proxy, false);
        return AUTH_CHALLENGED;
    }
    int64_t age = 0;
    if (digest_nonce_check(nonce_key, realm, cred.nonce, cw_wall_time(), &age) != CW_OK) {
        /* not one of ours (another node, a restart): ask again */
        challenge(r, realm, proxy, false);
        return AUTH_CHALLENGED;
    }
    struct user_row u;
    int rc = user_query(st, domain_id, cred.username, false, &u);
    if (rc == CW_EIO) {
        edge_respond(r->id, 500, "Server Error", NULL, NULL, NULL);
        return AUTH_REJECTED;
    }
    if (rc == CW_ENOENT) return reject(r, 403, "Forbidden", "unknown user", true);
    const char *ha1 = alg == DIGEST_SHA256 ? u.ha1_sha256 : u.ha1_md5;
    if (!ha1[0]) return reject(r, 403, "Forbidden", "no SIP credentials for algorithm", false);
    if (!digest_verify(&cred, method, ha1, alg))
        return reject(r, 403, "Forbidden", "wrong password", true);
    if (age > config_int("sip.nonce_ttl")) {
        challenge(r, realm, proxy, true);
        return AUTH_CHALLENGED;
    }
    if (aor_user && (!have_aor || aor.id != u.id))
        return reject(r, 403, "Forbidden", "credentials of another user", true);
    if (strcmp(u.status, "active") != 0)
        return reject(r, 403, "User Disabled", "user disabled", false);

    out->domain_id = domain_id;
    out->user_id = u.id;
    cw_strlcpy(out->login, u.login, sizeof out->login);
    cw_strlcpy(out->extension, u.extension, sizeof out->extension);
    cw_strlcpy(out->display, u.display, sizeof out->display);
    cw_strlcpy(out->domain, realm, sizeof out->domain);
    return AUTH_OK;
}

int auth_target_host(const char *host, const char *own_domain)
{
    if (!host || !host[0] || !strcasecmp(host, own_domain) || !strcasecmp(host, "localhost"))
        return 0;
    char lit[64];
    size_t n = strlen(host);
    if (host[0] == '[' && n > 2 && n - 2 < sizeof lit) { /* [IPv6] */
        memcpy(lit, host + 1, n - 2);
        lit[n - 2] = '\0';
    } else {
        cw_strlcpy(lit, host, sizeof lit);
    }
    unsigned char addr[16];
    if (inet_pton(AF_INET, lit, addr) == 1 || inet_pton(AF_INET6, lit, addr) == 1) return 0;
    const char *pub = config_str("sip.public_ip");
    if (pub && pub[0] && !strcasecmp(host, pub)) return 0;
    int64_t id;
    if (store_query_int(store_main(), &id, "SELECT id FROM domains WHERE lower(name) = lower(?)",
                        SA_STR(host), SA_END) == CW_OK)
        return 403;
    return 404;
}
