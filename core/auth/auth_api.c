/*
 * auth_api.c - /api/v1/auth: login, logout, me, password change, password
 * reset by e-mailed link, and API tokens.
 *
 * Every password check and hash runs on the worker pool (auth_pw_submit),
 * so a login never stalls the core loop; the handler replies from the
 * job's completion. Unknown accounts cost the same KDF as known ones.
 */
#include "auth/auth.h"
#include "base/cw.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "mail/mail.h"
#include "store/store.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A hash that never matches: verifying against it costs a real KDF run. */
static const char decoy_hash[] = "pbkdf2_sha256$210000$00000000000000000000000000000000$"
                                 "0000000000000000000000000000000000000000000000000000000000000000";

struct pending {
    http_req *req;
    int64_t user_id;
    int64_t domain_id;
    char account[300];
    char status[16];
    char reset_hash[65];
    bool rehash;
};

static void account_key(char *out, size_t n, const char *domain, const char *login)
{
    snprintf(out, n, "%s/%s", domain ? domain : "", login);
}

/* ----------------------------------------------------------------- login */

static void login_done(struct auth_pw_job *job)
{
    struct pending *p = job->arg;
    http_req *req = p->req;
    store *st = store_main();
    if (!job->verified || !p->user_id) {
        auth_throttle_fail(p->account, req->ip);
        log_info("auth", "failed login for %s from %s", p->account, req->ip);
        http_reply_error(req, 401, "invalid_credentials", NULL, "wrong login, domain or password");
    } else if (strcmp(p->status, "active") != 0) {
        http_reply_error(req, 403, "account_blocked", NULL, "this account is blocked");
    } else {
        auth_throttle_ok(p->account);
        if (job->hash[0] && job->rc == CW_OK)
            store_exec(st, "UPDATE users SET password_hash = ? WHERE id = ?", SA_STR(job->hash),
                       SA_INT(p->user_id), SA_END);
        if (auth_session_create(req, p->user_id)) {
            http_reply_error(req, 500, "store", NULL, "cannot create a session");
        } else {
            log_info("auth", "login of %s from %s", p->account, req->ip);
            json_t *me = auth_user_json(p->user_id);
            http_reply_json(req, 200,
                            json_pack("{s:o,s:I}", "user", me ? me : json_null(), "expires_in",
                                      (json_int_t)config_int("auth.session_ttl")));
        }
    }
    free(p);
    auth_pw_job_free(job);
}

static void login(http_req *req)
{
    static const struct json_field f[] = {
        {"login", JK_STRING, true}, {"password", JK_STRING, true}, {"domain", JK_STRING, false}};
    json_t *b = http_json_body(req);
    if (!b) return;
    if (!http_json_check(req, b, f, 3)) {
        json_decref(b);
        return;
    }
    const char *login = json_string_value(json_object_get(b, "login"));
    const char *password = json_string_value(json_object_get(b, "password"));
    const char *domain = json_string_value(json_object_get(b, "domain"));
    if (domain && !*domain) domain = NULL;
    struct pending *p = cw_calloc(1, sizeof *p);
    p->req = req;
    account_key(p->account, sizeof p->account, domain, login);
    int64_t retry;
    if (auth_throttled(p->account, req->ip, &retry)) {
        char ra[32];
        snprintf(ra, sizeof ra, "%lld", (long long)retry);
        http_add_header(req, "Retry-After", ra);
        http_reply_error(req, 429, "too_many_attempts", NULL,
                         "too many failed logins; try again in %lld seconds", (long long)retry);
        free(p);
        json_decref(b);
        return;
    }
    struct auth_pw_job *job = auth_pw_job_new();
    cw_strlcpy(job->verify, password, sizeof job->verify);
    cw_strlcpy(job->verify_hash, decoy_hash, sizeof job->verify_hash);
    store_res *r = NULL;
    int rc = domain ? store_query(store_main(), &r,
                                  "SELECT u.id, u.password_hash, u.status, d.status FROM users u "
                                  "JOIN domains d ON d.id = u.domain_id WHERE d.name = ? AND "
                                  "u.login = ?",
                                  SA_STR(domain), SA_STR(login), SA_END)
                    : store_query(store_main(), &r,
                                  "SELECT id, password_hash, status, 'active' FROM users WHERE "
                                  "domain_id IS NULL AND login = ?",
                                  SA_STR(login), SA_END);
    if (rc >= 0 && store_next(r)) {
        p->user_id = store_int(r, 0);
        cw_strlcpy(job->verify_hash, store_str(r, 1), sizeof job->verify_hash);
        bool active = !strcmp(store_str(r, 2), "active") && !strcmp(store_str(r, 3), "active");
        cw_strlcpy(p->status, active ? "active" : "blocked", sizeof p->status);
        /* an older, cheaper hash is upgraded while we hold the password */
        if (auth_hash_iterations(store_str(r, 1)) <
            CW_MAX(config_int("auth.pbkdf2_iterations"), AUTH_PBKDF2_MIN_ITERATIONS))
            cw_strlcpy(job->password, password, sizeof job->password);
    }
    store_res_free(r);
    json_decref(b);
    job->done = login_done;
    job->arg = p;
    http_async(req);
    auth_pw_submit(job);
}

static void logout(http_req *req)
{
    char hash[65];
    if (auth_session_hash(req, hash))
        store_exec(store_main(), "DELETE FROM sessions WHERE token_hash = ?", SA_STR(hash), SA_END);
    http_add_header(req, "Set-Cookie",
                    AUTH_SESSION_COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    http_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static void me(http_req *req)
{
    json_t *j = auth_user_json(req->auth->user_id);
    if (!j) {
        http_reply_error(req, 404, "not_found", NULL, "your account is gone");
        return;
    }
    json_object_set_new(j, "via_token", json_boolean(req->auth->via_token));
    http_reply_json(req, 200, j);
}

/* PATCH /auth/me: the few fields every user may change on their own account. */
static void me_update(http_req *req)
{
    static const struct json_field f[] = {{"display_name", JK_STRING, false},
                                          {"email", JK_STRING, false},
                                          {"phone", JK_STRING, false},
                                          {"language", JK_STRING, false}};
    json_t *b = http_json_body(req);
    if (!b) return;
    if (!http_json_check(req, b, f, 4)) {
        json_decref(b);
        return;
    }
    const char *name = json_string_value(json_object_get(b, "display_name"));
    const char *email = json_string_value(json_object_get(b, "email"));
    const char *phone = json_string_value(json_object_get(b, "phone"));
    const char *lang = json_string_value(json_object_get(b, "language"));
    const char *bad = NULL, *why = NULL;
    if (name && (!*name || strlen(name) > 128))
        bad = "display_name", why = "display_name must be 1..128 characters";
    else if (email && *email && !mail_address_valid(email))
        bad = "email", why = "email is not a valid address";
    else if (phone && (strlen(phone) > 32 || strspn(phone, "+0123456789 -()") != strlen(phone)))
        bad = "phone", why = "phone may hold digits, spaces, + - ( ) and up to 32 characters";
    else if (lang && strcmp(lang, "ru") && strcmp(lang, "en") && strcmp(lang, "de") &&
             strcmp(lang, "es") && strcmp(lang, "fr"))
        bad = "language", why = "language must be one of ru, en, de, es, fr";
    if (bad) {
        http_reply_error(req, 400, "invalid_value", bad, "%s", why);
        json_decref(b);
        return;
    }
    json_t *before = auth_user_json(req->auth->user_id);
    json_t *diff = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(b, key, v)
    {
        json_t *old = json_object_get(before, key);
        if (!json_equal(old, v))
            json_object_set_new(diff, key, json_pack("{s:O?,s:O}", "from", old, "to", v));
    }
    if (json_object_size(diff)) {
        store *st = store_main();
        store_begin(st);
        int rc = store_exec(st,
                            "UPDATE users SET display_name = COALESCE(?, display_name), email = "
                            "CASE WHEN ? = 1 THEN ? ELSE email END, phone = CASE WHEN ? = 1 THEN "
                            "? ELSE phone END, language = COALESCE(?, language), updated_at = ? "
                            "WHERE id = ?",
                            SA_STR(name), SA_BOOL(email != NULL),
                            email && *email ? SA_STR(email) : SA_NULL, SA_BOOL(phone != NULL),
                            phone && *phone ? SA_STR(phone) : SA_NULL, SA_STR(lang),
                            SA_INT(cw_wall_time()), SA_INT(req->auth->user_id), SA_END);
        if (rc < 0) {
            store_rollback(st);
            http_reply_error(req, 500, "store", NULL, "saving failed");
            json_decref(b);
            json_decref(before);
            json_decref(diff);
            return;
        }
        http_audit(req, req->auth->domain_id, "user", req->auth->login, "edit", json_incref(diff));
        store_commit(st);
        events_emit("config.user.updated", req->auth->domain_id,
                    json_pack("{s:I,s:I}", "id", (json_int_t)req->auth->user_id, "user_id",
                              (json_int_t)req->auth->user_id));
    }
    json_decref(diff);
    json_decref(before);
    json_decref(b);
    me(req);
}

/* ------------------------------------------------------- password change */

static void password_done(struct auth_pw_job *job)
{
    struct pending *p = job->arg;
    http_req *req = p->req;
    store *st = store_main();
    if (!job->verified) {
        auth_throttle_fail(p->account, req->ip);
        http_reply_error(req, 403, "wrong_password", "old_password",
                         "the current password is wrong");
    } else if (job->rc) {
        http_reply_error(req, 500, "internal", NULL, "hashing failed");
    } else {
        auth_throttle_ok(p->account);
        store_begin(st);
        int rc = store_exec(st,
                            "UPDATE users SET password_hash = ?, sip_ha1_md5 = ?, sip_ha1_sha256 = "
                            "?, updated_at = ? WHERE id = ?",
                            SA_STR(job->hash), job->realm[0] ? SA_STR(job->ha1_md5) : SA_NULL,
                            job->realm[0] ? SA_STR(job->ha1_sha256) : SA_NULL,
                            SA_INT(cw_wall_time()), SA_INT(p->user_id), SA_END);
        /* every other session of the account ends */
        char keep[65] = "";
        auth_session_hash(req, keep);
        if (rc >= 0)
            rc = store_exec(st, "DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?",
                            SA_INT(p->user_id), SA_STR(keep), SA_END);
        if (rc < 0) {
            store_rollback(st);
            http_reply_error(req, 500, "store", NULL, "saving failed");
        } else {
            http_audit(req, p->domain_id, "user", req->auth->login, "edit",
                       json_pack("{s:s}", "password", "changed"));
            store_commit(st);
            http_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
        }
    }
    free(p);
    auth_pw_job_free(job);
}

static void password_change(http_req *req)
{
    static const struct json_field f[] = {{"old_password", JK_STRING, true},
                                          {"new_password", JK_STRING, true}};
    json_t *b = http_json_body(req);
    if (!b) return;
    if (!http_json_check(req, b, f, 2)) {
        json_decref(b);
        return;
    }
    const char *oldpw = json_string_value(json_object_get(b, "old_password"));
    const char *newpw = json_string_value(json_object_get(b, "new_password"));
    const char *why = auth_password_problem(newpw);
    if (why) {
        http_reply_error(req, 400, "weak_password", "new_password", "new_password %s", why);
        json_decref(b);
        return;
    }
    struct pending *p = cw_calloc(1, sizeof *p);
    p->req = req;
    p->user_id = req->auth->user_id;
    p->domain_id = req->auth->domain_id;
    account_key(p->account, sizeof p->account, req->auth->domain, req->auth->login);
    int64_t retry;
    if (auth_throttled(p->account, req->ip, &retry)) {
        http_reply_error(req, 429, "too_many_attempts", NULL, "try again in %lld seconds",
                         (long long)retry);
        free(p);
        json_decref(b);
        return;
    }
    struct auth_pw_job *job = auth_pw_job_new();
    store_res *r;
    if (store_query(store_main(), &r, "SELECT password_hash FROM users WHERE id = ?",
                    SA_INT(p->user_id), SA_END) >= 0 &&
        store_next(r))
        cw_strlcpy(job->verify_hash, store_str(r, 0), sizeof job->verify_hash);
    else
        cw_strlcpy(job->verify_hash, decoy_hash, sizeof job->verify_hash);
    store_res_free(r);
    cw_strlcpy(job->verify, oldpw, sizeof job->verify);
    cw_strlcpy(job->password, newpw, sizeof job->password);
    cw_strlcpy(job->login, req->auth->login, sizeof job->login);
    cw_strlcpy(job->realm, req->auth->domain, sizeof job->realm);
    json_decref(b);
    job->done = password_done;
    job->arg = p;
    http_async(req);
    auth_pw_submit(job);
}

/* --------------------------------------------------------- password reset */

static void reset_mail_done(int rc, const char *error, void *arg)
{
    int64_t *uid = arg;
    if (rc)
        log_warn("auth", "password-reset mail for user %lld failed: %s", (long long)*uid, error);
    free(uid);
}

static void reset_request(http_req *req)
{
    static const struct json_field f[] = {{"login", JK_STRING, true}, {"domain", JK_STRING, false}};
    json_t *b = http_json_body(req);
    if (!b) return;
    if (!http_json_check(req, b, f, 2)) {
        json_decref(b);
        return;
    }
    const char *login = json_string_value(json_object_get(b, "login"));
    const char *domain = json_string_value(json_object_get(b, "domain"));
    if (domain && !*domain) domain = NULL;
    char account[300];
    account_key(account, sizeof account, domain, login);
    int64_t retry;
    if (auth_throttled(account, req->ip, &retry)) {
        http_reply_error(req, 429, "too_many_attempts", NULL, "try again in %lld seconds",
                         (long long)retry);
        json_decref(b);
        return;
    }
    /* each request counts like a failed login: it cannot become a mail cannon */
    auth_throttle_fail(account, req->ip);
    store *st = store_main();
    store_res *r = NULL;
    int rc = domain ? store_query(st, &r,
                                  "SELECT u.id, u.email, u.status FROM users u JOIN domains d ON "
                                  "d.id = u.domain_id WHERE d.name = ? AND u.login = ?",
                                  SA_STR(domain), SA_STR(login), SA_END)
                    : store_query(st, &r,
                                  "SELECT id, email, status FROM users WHERE domain_id IS NULL "
                                  "AND login = ?",
                                  SA_STR(login), SA_END);
    if (rc >= 0 && store_next(r) && store_str(r, 1) && *store_str(r, 1) &&
        !strcmp(store_str(r, 2), "active")) {
        int64_t uid = store_int(r, 0);
        char token[80], hash[65];
        auth_new_token("", token, sizeof token);
        auth_token_hash(token, hash);
        int64_t now = cw_wall_time();
        store_exec(st, "DELETE FROM password_resets WHERE expires_at <= ? OR used = 1", SA_INT(now),
                   SA_END);
        if (store_exec(st,
                       "INSERT INTO password_resets(token_hash, user_id, expires_at) VALUES(?,?,?)",
                       SA_STR(hash), SA_INT(uid), SA_INT(now + config_int("auth.reset_ttl")),
                       SA_END) >= 0) {
            char *text = cw_sprintf(
                "Someone (hopefully you) asked to reset the password of %s%s%s.\r\n\r\n"
                "Open this link to choose a new password; it works once, for %lld minutes:\r\n"
                "%s/reset?token=%s\r\n\r\nIf you did not ask for this, ignore this mail.\r\n",
                login, domain ? "@" : "", domain ? domain : "",
                (long long)(config_int("auth.reset_ttl") / 60), config_str("public_url"), token);
            int64_t *arg = cw_malloc(sizeof *arg);
            *arg = uid;
            int mrc = mail_send(store_str(r, 1), "Callwright password reset", text, NULL,
                                reset_mail_done, arg);
            if (mrc) {
                free(arg);
                log_warn("auth", "password reset for user %lld: mail not sent (%s)", (long long)uid,
                         mrc == CW_ESTATE ? "smtp.url is not set" : "bad address");
            } else {
                log_info("auth", "password-reset link mailed for user %lld", (long long)uid);
            }
            OPENSSL_cleanse(text, strlen(text));
            free(text);
        }
        OPENSSL_cleanse(token, sizeof token);
    }
    store_res_free(r);
    json_decref(b);
    /* the same answer whether or not the account exists */
    http_reply_json(req, 202,
                    json_pack("{s:s}", "status",
                              "if the account exists and has an e-mail address, a link is on "
                              "its way"));
}

static void reset_done(struct auth_pw_job *job)
{
    struct pending *p = job->arg;
    http_req *req = p->req;
    store *st = store_main();
    store_begin(st);
    /* claim the token first: of two racing uses, one wins */
    int rc = store_exec(st,
                        "UPDATE password_resets SET used = 1 WHERE token_hash = ? AND used = 0 "
                        "AND expires_at > ?",
                        SA_STR(p->reset_hash), SA_INT(cw_wall_time()), SA_END);
    if (rc != 1 || job->rc) {
        store_rollback(st);
        http_reply_error(req, 400, "invalid_token", "token",
                         "the reset link is invalid, used or expired");
    } else {
        rc = store_exec(st,
                        "UPDATE users SET password_hash = ?, sip_ha1_md5 = ?, sip_ha1_sha256 = ?, "
                        "updated_at = ? WHERE id = ?",
                        SA_STR(job->hash), job->realm[0] ? SA_STR(job->ha1_md5) : SA_NULL,
                        job->realm[0] ? SA_STR(job->ha1_sha256) : SA_NULL, SA_INT(cw_wall_time()),
                        SA_INT(p->user_id), SA_END);
        if (rc >= 0)
            rc = store_exec(st, "DELETE FROM sessions WHERE user_id = ?", SA_INT(p->user_id),
                            SA_END);
        if (rc < 0) {
            store_rollback(st);
            http_reply_error(req, 500, "store", NULL, "saving failed");
        } else {
            struct auth_ctx actor = {.user_id = p->user_id};
            cw_strlcpy(actor.login, job->login, sizeof actor.login);
            cw_strlcpy(actor.name, p->account, sizeof actor.name);
            http_audit_as(&actor, req->ip, p->domain_id, "user", job->login, "edit",
                          json_pack("{s:s}", "password", "reset by e-mailed link"));
            store_commit(st);
            auth_throttle_ok(p->account);
            http_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
        }
    }
    free(p);
    auth_pw_job_free(job);
}

static void reset_confirm(http_req *req)
{
    static const struct json_field f[] = {{"token", JK_STRING, true},
                                          {"password", JK_STRING, true}};
    json_t *b = http_json_body(req);
    if (!b) return;
    if (!http_json_check(req, b, f, 2)) {
        json_decref(b);
        return;
    }
    const char *token = json_string_value(json_object_get(b, "token"));
    const char *pw = json_string_value(json_object_get(b, "password"));
    const char *why = auth_password_problem(pw);
    if (why) {
        http_reply_error(req, 400, "weak_password", "password", "password %s", why);
        json_decref(b);
        return;
    }
    struct pending *p = cw_calloc(1, sizeof *p);
    p->req = req;
    auth_token_hash(token, p->reset_hash);
    store_res *r;
    bool found = store_query(store_main(), &r,
                             "SELECT u.id, u.login, COALESCE(u.domain_id, 0), COALESCE(d.name, "
                             "''), u.display_name FROM password_resets pr JOIN users u ON u.id = "
                             "pr.user_id LEFT JOIN domains d ON d.id = u.domain_id WHERE "
                             "pr.token_hash = ? AND pr.used = 0 AND pr.expires_at > ?",
                             SA_STR(p->reset_hash), SA_INT(cw_wall_time()), SA_END) >= 0 &&
                 store_next(r);
    if (!found) {
        store_res_free(r);
        free(p);
        json_decref(b);
        http_reply_error(req, 400, "invalid_token", "token",
                         "the reset link is invalid, used or expired");
        return;
    }
    struct auth_pw_job *job = auth_pw_job_new();
    p->user_id = store_int(r, 0);
    p->domain_id = store_int(r, 2);
    cw_strlcpy(job->login, store_str(r, 1), sizeof job->login);
    cw_strlcpy(job->realm, store_str(r, 3), sizeof job->realm);
    account_key(p->account, sizeof p->account, store_str(r, 3)[0] ? store_str(r, 3) : NULL,
                store_str(r, 1));
    store_res_free(r);
    cw_strlcpy(job->password, pw, sizeof job->password);
    json_decref(b);
    job->done = reset_done;
    job->arg = p;
    http_async(req);
    auth_pw_submit(job);
}

/* ------------------------------------------------------------ API tokens */

static void tokens_list(http_req *req)
{
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT id, name, created_at, last_used_at FROM api_tokens WHERE user_id = ? "
                    "ORDER BY id",
                    SA_INT(req->auth->user_id), SA_END) < 0) {
        http_reply_error(req, 500, "store", NULL, "reading tokens failed");
        return;
    }
    json_t *items = json_array();
    while (store_next(r)) {
        json_t *t = json_pack("{s:I,s:s,s:I}", "id", (json_int_t)store_int(r, 0), "name",
                              store_str(r, 1), "created_at", (json_int_t)store_int(r, 2));
        json_object_set_new(t, "last_used_at",
                            store_isnull(r, 3) ? json_null() : json_integer(store_int(r, 3)));
        json_array_append_new(items, t);
    }
    store_res_free(r);
    http_reply_json(
        req, 200,
        json_pack("{s:o,s:I}", "items", items, "total", (json_int_t)json_array_size(items)));
}

static void tokens_create(http_req *req)
{
    static const struct json_field f[] = {{"name", JK_STRING, true}};
    json_t *b = http_json_body(req);
    if (!b) return;
    if (!http_json_check(req, b, f, 1)) {
        json_decref(b);
        return;
    }
    const char *name = json_string_value(json_object_get(b, "name"));
    if (!*name || strlen(name) > 64) {
        http_reply_error(req, 400, "invalid_value", "name", "name must be 1..64 characters");
        json_decref(b);
        return;
    }
    char token[80], hash[65];
    auth_new_token("cwt_", token, sizeof token);
    auth_token_hash(token, hash);
    store *st = store_main();
    store_res *r;
    store_begin(st);
    int rc = store_query(st, &r,
                         "INSERT INTO api_tokens(user_id, name, token_hash, created_at) "
                         "VALUES(?,?,?,?) RETURNING id",
                         SA_INT(req->auth->user_id), SA_STR(name), SA_STR(hash),
                         SA_INT(cw_wall_time()), SA_END);
    if (rc < 0 || !store_next(r)) {
        store_res_free(r);
        store_rollback(st);
        http_reply_error(req, 500, "store", NULL, "saving the token failed");
        json_decref(b);
        return;
    }
    int64_t id = store_int(r, 0);
    store_res_free(r);
    http_audit(req, req->auth->domain_id, "api_token", name, "add",
               json_pack("{s:I,s:s}", "id", (json_int_t)id, "name", name));
    store_commit(st);
    /* the only time the token is shown */
    http_reply_json(req, 201,
                    json_pack("{s:I,s:s,s:s}", "id", (json_int_t)id, "name", name, "token", token));
    OPENSSL_cleanse(token, sizeof token);
    json_decref(b);
}

static void tokens_delete(http_req *req)
{
    int64_t id;
    store_res *r;
    if (cw_parse_i64(req->params[0], &id) ||
        store_query(store_main(), &r, "SELECT name FROM api_tokens WHERE id = ? AND user_id = ?",
                    SA_INT(id), SA_INT(req->auth->user_id), SA_END) < 0) {
        http_reply_error(req, 404, "not_found", NULL, "no such token");
        return;
    }
    if (!store_next(r)) {
        store_res_free(r);
        http_reply_error(req, 404, "not_found", NULL, "no such token");
        return;
    }
    char *name = cw_strdup(store_str(r, 0));
    store_res_free(r);
    store *st = store_main();
    store_begin(st);
    store_exec(st, "DELETE FROM api_tokens WHERE id = ?", SA_INT(id), SA_END);
    http_audit(req, req->auth->domain_id, "api_token", name, "delete",
               json_pack("{s:I}", "id", (json_int_t)id));
    store_commit(st);
    free(name);
    http_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static json_t *schema_of(const struct json_field *f, int n)
{
    static const char *const types[] = {"", "string", "integer", "boolean", "array", "object"};
    json_t *props = json_object(), *req = json_array();
    for (int i = 0; i < n; i++) {
        json_object_set_new(props, f[i].name, json_pack("{s:s}", "type", types[f[i].kind]));
        if (f[i].required) json_array_append_new(req, json_string(f[i].name));
    }
    return json_pack("{s:s,s:o,s:o,s:b}", "type", "object", "properties", props, "required", req,
                     "additionalProperties", 0);
}

void auth_api_init(void)
{
    static const struct json_field login_f[] = {
        {"login", JK_STRING, true}, {"password", JK_STRING, true}, {"domain", JK_STRING, false}};
    http_route("POST", "/api/v1/auth/login", login, ROLE_NONE, HTTP_PUBLIC | HTTP_NO_AUDIT,
               "Log in with login, password and domain (pool and system admins: no domain); "
               "sets the session cookie");
    http_route_schema("POST", "/api/v1/auth/login", schema_of(login_f, 3));
    http_route("POST", "/api/v1/auth/logout", logout, ROLE_NONE, HTTP_PUBLIC | HTTP_NO_AUDIT,
               "End the session and clear its cookie");
    http_route("GET", "/api/v1/auth/me", me, ROLE_SUBSCRIBER, 0, "The logged-in account");
    http_route("PATCH", "/api/v1/auth/me", me_update, ROLE_SUBSCRIBER, 0,
               "Change own display name, e-mail, phone or language");
    http_route("POST", "/api/v1/auth/password", password_change, ROLE_SUBSCRIBER, 0,
               "Change own password (needs the current one); ends other sessions");
    http_route("POST", "/api/v1/auth/reset-request", reset_request, ROLE_NONE,
               HTTP_PUBLIC | HTTP_NO_AUDIT,
               "Mail a one-time password-reset link to the account's e-mail address");
    http_route("POST", "/api/v1/auth/reset", reset_confirm, ROLE_NONE, HTTP_PUBLIC,
               "Set a new password with the token from a reset link");
    http_route("GET", "/api/v1/auth/tokens", tokens_list, ROLE_SUBSCRIBER, 0,
               "Own API tokens (names and dates, never the secrets)");
    http_route("POST", "/api/v1/auth/tokens", tokens_create, ROLE_SUBSCRIBER, 0,
               "Create an API token for machines (shown once; use as Authorization: Bearer)");
    http_route("DELETE", "/api/v1/auth/tokens/:id", tokens_delete, ROLE_SUBSCRIBER, 0,
               "Revoke an API token");
}
