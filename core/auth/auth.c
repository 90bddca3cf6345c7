/*
 * auth.c - who is calling: session cookies and API tokens, login
 * throttling, and password jobs run on the worker pool.
 *
 * Core thread only, except pw_run() which runs on a worker and touches
 * nothing but its job. Throttle state is in memory, per node: a restart
 * forgets it, which is acceptable for a lockout measured in minutes.
 */
#include "auth/auth.h"
#include "base/cw.h"
#include "config/config.h"
#include "log/log.h"
#include "loop/work.h"
#include "store/store.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ throttling */

#define THROTTLE_SLOTS 4096

struct slot {
    char key[200];
    int failures;
    int64_t window_start;
    int64_t locked_until;
    int64_t touched;
};

static struct slot slots[THROTTLE_SLOTS];

static struct slot *slot_find(const char *key, bool create)
{
    struct slot *oldest = &slots[0];
    for (int i = 0; i < THROTTLE_SLOTS; i++) {
        if (slots[i].key[0] && !strcmp(slots[i].key, key)) return &slots[i];
        if (slots[i].touched < oldest->touched) oldest = &slots[i];
    }
    if (!create) return NULL;
    memset(oldest, 0, sizeof *oldest);
    cw_strlcpy(oldest->key, key, sizeof oldest->key);
    return oldest;
}

static int64_t slot_locked(const char *key, int64_t now)
{
    struct slot *s = slot_find(key, false);
    return s && s->locked_until > now ? s->locked_until - now : 0;
}

bool auth_throttled(const char *account, const char *ip, int64_t *retry_after)
{
    int64_t now = cw_wall_time();
    char k[200];
    snprintf(k, sizeof k, "a:%s", account);
    int64_t a = slot_locked(k, now);
    snprintf(k, sizeof k, "i:%s", ip);
    int64_t b = slot_locked(k, now);
    *retry_after = CW_MAX(a, b);
    return *retry_after > 0;
}

static void slot_fail(const char *key, int64_t now, int64_t max)
{
    struct slot *s = slot_find(key, true);
    int64_t window = config_int("auth.login_window");
    if (now - s->window_start > window) {
        s->window_start = now;
        s->failures = 0;
    }
    s->touched = now;
    if (++s->failures >= max) {
        s->locked_until = now + config_int("auth.lockout");
        s->failures = 0;
        s->window_start = now;
        log_warn("auth", "too many failed logins for %s: locked for %lld s", key,
                 (long long)config_int("auth.lockout"));
    }
}

void auth_throttle_fail(const char *account, const char *ip)
{
    int64_t now = cw_wall_time();
    char k[200];
    snprintf(k, sizeof k, "a:%s", account);
    slot_fail(k, now, config_int("auth.login_max_failures"));
    snprintf(k, sizeof k, "i:%s", ip);
    slot_fail(k, now, config_int("auth.login_max_failures_ip"));
}

void auth_throttle_ok(const char *account)
{
    char k[200];
    snprintf(k, sizeof k, "a:%s", account);
    struct slot *s = slot_find(k, false);
    if (s) memset(s, 0, sizeof *s);
}

void auth_throttle_reset(void)
{
    memset(slots, 0, sizeof slots);
}

/* -------------------------------------------------------- password jobs */

struct auth_pw_job *auth_pw_job_new(void)
{
    struct auth_pw_job *j = cw_calloc(1, sizeof *j);
    j->iterations = config_int("auth.pbkdf2_iterations");
    return j;
}

static void pw_run(void *arg)
{
    struct auth_pw_job *j = arg;
    if (j->verify_hash[0]) j->verified = auth_verify_password(j->verify, j->verify_hash);
    if (j->password[0]) {
        j->rc = auth_hash_password(j->password, j->iterations, j->hash, sizeof j->hash);
        if (j->realm[0]) auth_sip_ha1(j->login, j->realm, j->password, j->ha1_md5, j->ha1_sha256);
    }
    OPENSSL_cleanse(j->verify, sizeof j->verify);
}

static void pw_done(void *arg)
{
    struct auth_pw_job *j = arg;
    j->done(j);
}

void auth_pw_submit(struct auth_pw_job *job)
{
    work_submit(pw_run, pw_done, job);
}

void auth_pw_job_free(struct auth_pw_job *job)
{
    if (!job) return;
    OPENSSL_cleanse(job, sizeof *job);
    free(job);
}

/* ------------------------------------------------------- authentication */

#define USER_COLS                                                                                  \
    "u.id, u.role, COALESCE(u.domain_id, 0), COALESCE(u.pool_id, 0), u.is_operator, u.login, "     \
    "u.display_name, u.status, COALESCE(d.name, '')"

static int fill_ctx(store_res *r, struct auth_ctx *out)
{
    if (!store_next(r)) return CW_EPERM;
    if (strcmp(store_str(r, 7), "active") != 0) return CW_EPERM;
    memset(out, 0, sizeof *out);
    out->user_id = store_int(r, 0);
    out->role = cw_role_parse(store_str(r, 1));
    out->domain_id = store_int(r, 2);
    out->pool_id = store_int(r, 3);
    out->is_operator = store_int(r, 4) != 0;
    cw_strlcpy(out->login, store_str(r, 5), sizeof out->login);
    cw_strlcpy(out->name, store_str(r, 6), sizeof out->name);
    cw_strlcpy(out->domain, store_str(r, 8), sizeof out->domain);
    return out->role == ROLE_NONE ? CW_EPERM : CW_OK;
}

/* The value of a cookie in a Cookie header, copied to out. */
static bool cookie_value(const char *header, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = header;
    while (p && *p) {
        while (*p == ' ' || *p == ';')
            p++;
        if (!strncmp(p, name, nlen) && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t n = strcspn(v, ";");
            if (n >= outlen) return false;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        p = strchr(p, ';');
    }
    return false;
}

bool auth_session_hash(http_req *req, char out[65])
{
    const char *cookie = http_header(req, "Cookie");
    char token[160];
    if (!cookie || !cookie_value(cookie, AUTH_SESSION_COOKIE, token, sizeof token)) return false;
    auth_token_hash(token, out);
    OPENSSL_cleanse(token, sizeof token);
    return true;
}

/*
 * Who a session or token is, remembered for as long as the store is
 * unchanged: logging out, revoking a token, blocking or editing a user are
 * all writes, and any write (here or by another connection) starts a new
 * generation. A session's expiry is checked on every use; a token's
 * last_used_at is still written once a minute. Where the store cannot tell
 * (PostgreSQL), every request reads.
 */
#define SEEN_SLOTS 64

static struct seen {
    uint64_t gen;
    char hash[65];
    bool via_token;
    int64_t expires_at; /* sessions */
    int64_t last_used;  /* tokens */
    struct auth_ctx ctx;
} seen[SEEN_SLOTS];
static int seen_next;

static struct seen *seen_find(uint64_t gen, const char *hash, bool via_token)
{
    for (int i = 0; i < SEEN_SLOTS; i++)
        if (seen[i].gen == gen && seen[i].via_token == via_token && !strcmp(seen[i].hash, hash))
            return &seen[i];
    return NULL;
}

static void seen_put(uint64_t gen, const char *hash, bool via_token, int64_t expires_at,
                     int64_t last_used, const struct auth_ctx *ctx)
{
    struct seen *s = &seen[seen_next];
    seen_next = (seen_next + 1) % SEEN_SLOTS;
    s->gen = gen;
    cw_strlcpy(s->hash, hash, sizeof s->hash);
    s->via_token = via_token;
    s->expires_at = expires_at;
    s->last_used = last_used;
    s->ctx = *ctx;
}

int auth_authenticate(http_req *req, struct auth_ctx *out)
{
    store *st = store_main();
    char hash[65];
    store_res *r = NULL;
    int rc = CW_ENOENT;
    const char *authz = http_header(req, "Authorization");
    int64_t now = cw_wall_time();
    /* read before the queries: a change after it only makes what is seen stale */
    uint64_t gen = store_generation(st);
    struct seen *hit;
    if (authz && !strncasecmp(authz, "Bearer ", 7)) {
        auth_token_hash(authz + 7, hash);
        if (gen && (hit = seen_find(gen, hash, true)) && now - hit->last_used < 60) {
            *out = hit->ctx;
            return CW_OK;
        }
        if (store_query(st, &r,
                        "SELECT " USER_COLS ", t.id, COALESCE(t.last_used_at, 0) FROM api_tokens t "
                        "JOIN users u ON u.id = t.user_id LEFT JOIN domains d ON d.id = "
                        "u.domain_id WHERE t.token_hash = ?",
                        SA_STR(hash), SA_END) < 0)
            return CW_EIO;
        rc = fill_ctx(r, out);
        if (rc == CW_OK) {
            out->via_token = true;
            if (now - store_int(r, 10) >= 60)
                store_exec(st, "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", SA_INT(now),
                           SA_INT(store_int(r, 9)), SA_END);
            else if (gen)
                seen_put(gen, hash, true, 0, store_int(r, 10), out);
        }
    } else if (authz) {
        rc = CW_EPERM;
    } else if (auth_session_hash(req, hash)) {
        if (gen && (hit = seen_find(gen, hash, false)) && hit->expires_at > now) {
            *out = hit->ctx;
            return CW_OK;
        }
        if (store_query(st, &r,
                        "SELECT " USER_COLS ", s.expires_at FROM sessions s JOIN users u ON u.id = "
                        "s.user_id LEFT JOIN domains d ON d.id = u.domain_id WHERE s.token_hash = "
                        "? AND s.expires_at > ?",
                        SA_STR(hash), SA_INT(now), SA_END) < 0)
            return CW_EIO;
        rc = fill_ctx(r, out);
        if (rc == CW_OK && gen) seen_put(gen, hash, false, store_int(r, 9), 0, out);
    }
    store_res_free(r);
    return rc;
}

int auth_session_create(http_req *req, int64_t user_id)
{
    char token[80], hash[65];
    auth_new_token("", token, sizeof token);
    auth_token_hash(token, hash);
    int64_t now = cw_wall_time(), ttl = config_int("auth.session_ttl");
    store *st = store_main();
    /* expired sessions of anyone go now; cheap with few rows per login */
    store_exec(st, "DELETE FROM sessions WHERE expires_at <= ?", SA_INT(now), SA_END);
    int rc = store_exec(st,
                        "INSERT INTO sessions(token_hash, user_id, created_at, expires_at, ip) "
                        "VALUES(?,?,?,?,?)",
                        SA_STR(hash), SA_INT(user_id), SA_INT(now), SA_INT(now + ttl),
                        SA_STR(req->ip), SA_END);
    if (rc < 0) return CW_EIO;
    char cookie[256];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
             AUTH_SESSION_COOKIE, token, (long long)ttl, req->tls ? "; Secure" : "");
    http_add_header(req, "Set-Cookie", cookie);
    OPENSSL_cleanse(token, sizeof token);
    OPENSSL_cleanse(cookie, sizeof cookie);
    return CW_OK;
}

json_t *auth_user_json(int64_t user_id)
{
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT u.id, u.login, u.display_name, u.role, u.domain_id, d.name, "
                    "u.pool_id, u.is_operator, u.email, u.extension, u.language, u.phone, "
                    "u.job_title FROM users u LEFT JOIN domains d ON d.id = u.domain_id WHERE "
                    "u.id = ?",
                    SA_INT(user_id), SA_END) < 0)
        return NULL;
    json_t *j = NULL;
    if (store_next(r)) {
        j = json_pack("{s:I,s:s,s:s,s:s,s:b}", "id", (json_int_t)store_int(r, 0), "login",
                      store_str(r, 1), "display_name", store_str(r, 2), "role", store_str(r, 3),
                      "is_operator", store_int(r, 7) != 0);
        static const struct {
            int col;
            const char *name;
            bool num;
        } opt[] = {{4, "domain_id", true}, {5, "domain", false},    {6, "pool_id", true},
                   {8, "email", false},    {9, "extension", false}, {10, "language", false},
                   {11, "phone", false},   {12, "job_title", false}};
        for (size_t i = 0; i < CW_ARRAY_LEN(opt); i++) {
            json_t *v = store_isnull(r, opt[i].col)
                            ? json_null()
                            : (opt[i].num ? json_integer(store_int(r, opt[i].col))
                                          : json_string(store_str(r, opt[i].col)));
            json_object_set_new(j, opt[i].name, v);
        }
        if (!store_isnull(r, 5))
            json_object_set_new(j, "sip_address",
                                json_sprintf("%s@%s", store_str(r, 1), store_str(r, 5)));
        if (!strcmp(store_str(r, 3), "subgroup_admin")) {
            store_res *s;
            json_t *subs = json_array();
            if (store_query(store_main(), &s,
                            "SELECT subgroup_id FROM user_subgroups WHERE user_id = ? ORDER BY "
                            "subgroup_id",
                            SA_INT(user_id), SA_END) >= 0) {
                while (store_next(s))
                    json_array_append_new(subs, json_integer(store_int(s, 0)));
                store_res_free(s);
            }
            json_object_set_new(j, "subgroups", subs);
        }
    }
    store_res_free(r);
    return j;
}
