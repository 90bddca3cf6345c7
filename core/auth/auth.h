/*
 * auth.h - passwords, SIP digests, sessions, API tokens and login throttling.
 *
 * Password hashes are PBKDF2-SHA256 strings that name their own parameters
 * ("pbkdf2_sha256$<iterations>$<salt hex>$<key hex>"), so the iteration
 * count can rise without breaking old hashes. Session and API tokens are
 * random; only their SHA-256 is stored. The hashing functions are pure and
 * thread-safe (they run on worker threads); everything else runs on the
 * core thread. Never log a password, a token or a digest.
 */
#ifndef CW_AUTH_H
#define CW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

#define AUTH_PBKDF2_MIN_ITERATIONS 210000
#define AUTH_HASH_MAX              192 /* room for a hash string */
#define AUTH_SESSION_COOKIE        "cw_session"

/* Hash a password with a fresh 16-byte salt. iterations below the minimum are raised. */
int auth_hash_password(const char *password, int64_t iterations, char *out, size_t outlen);
/* Constant-time check of password against a stored hash string. */
bool auth_verify_password(const char *password, const char *stored);
/* Iterations recorded in a stored hash, or 0 when it is not one of ours. */
int64_t auth_hash_iterations(const char *stored);

/*
 * SIP digest secrets for the registrar: hex MD5 and SHA-256 of
 * "login:realm:password" (RFC 2617 / RFC 7616 HA1), realm = domain name.
 */
void auth_sip_ha1(const char *login, const char *realm, const char *password, char md5_hex[33],
                  char sha256_hex[65]);

/* SHA-256 of a token, hex (what the store keeps). */
void auth_token_hash(const char *token, char out[65]);
/* A new random token: prefix + 64 hex digits. */
void auth_new_token(const char *prefix, char *out, size_t outlen);

/*
 * Password policy (one rule for every form, the stricter of the seed's
 * two): at least 8 characters, at most 128, from at least 3 of lower-case
 * letters, upper-case letters, digits and other characters.
 * Returns NULL when acceptable, else the reason.
 */
const char *auth_password_problem(const char *password);

/*
 * Identify the caller of a request from its session cookie or
 * "Authorization: Bearer" token. Returns CW_OK and fills out, CW_ENOENT
 * when no credentials were sent, CW_EPERM when they are invalid or expired.
 */
int auth_authenticate(http_req *req, struct auth_ctx *out);

/*
 * Password work off the core thread. Fill the inputs, set done (and arg),
 * submit; done runs on the core thread, then the caller frees the job with
 * auth_pw_job_free(), which wipes the secrets.
 *   verify_hash set: check `verify` against it -> verified
 *   password set:    hash it -> hash; with realm set also the SIP HA1s
 */
struct auth_pw_job {
    char verify[160];
    char verify_hash[AUTH_HASH_MAX];
    char password[160];
    char login[128];
    char realm[128];
    int64_t iterations;
    /* results */
    bool verified;
    int rc;
    char hash[AUTH_HASH_MAX];
    char ha1_md5[33];
    char ha1_sha256[65];
    void (*done)(struct auth_pw_job *job);
    void *arg;
};
struct auth_pw_job *auth_pw_job_new(void);
void auth_pw_submit(struct auth_pw_job *job);
void auth_pw_job_free(struct auth_pw_job *job);

/* Throttling of password guesses, per account key and per IP. */
bool auth_throttled(const char *account, const char *ip, int64_t *retry_after);
void auth_throttle_fail(const char *account, const char *ip);
void auth_throttle_ok(const char *account);

/* SHA-256 (hex) of the request's session cookie; false when it has none. */
bool auth_session_hash(http_req *req, char out[65]);
/* A session for user_id: sets the cookie on the reply. */
int auth_session_create(http_req *req, int64_t user_id);
/* The "me" view of a user row (no secrets). New reference; NULL if gone. */
json_t *auth_user_json(int64_t user_id);

/* Register the /api/v1/auth/... endpoints. */
void auth_api_init(void);
/* Forget throttling state (tests). */
void auth_throttle_reset(void);

#endif
