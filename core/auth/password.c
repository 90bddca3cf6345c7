/*
 * password.c - the pure, thread-safe half of auth: PBKDF2-SHA256 password
 * hashes, SIP HA1 digests, token hashing and the password policy.
 * Runs on worker threads as well as the core thread; keeps no state.
 */
#include "auth/auth.h"
#include "base/cw.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN 16
#define KEY_LEN  32
#define SCHEME   "pbkdf2_sha256"

static int pbkdf2(const char *password, const unsigned char *salt, size_t saltlen,
                  int64_t iterations, unsigned char *key)
{
    if (iterations < 1 || iterations > 100000000) return CW_EINVAL;
    if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)saltlen, (int)iterations,
                           EVP_sha256(), KEY_LEN, key))
        return CW_EIO;
    return CW_OK;
}

int auth_hash_password(const char *password, int64_t iterations, char *out, size_t outlen)
{
    if (iterations < AUTH_PBKDF2_MIN_ITERATIONS) iterations = AUTH_PBKDF2_MIN_ITERATIONS;
    unsigned char salt[SALT_LEN], key[KEY_LEN];
    if (cw_random_bytes(salt, sizeof salt)) return CW_EIO;
    int rc = pbkdf2(password, salt, sizeof salt, iterations, key);
    if (rc) return rc;
    char salt_hex[2 * SALT_LEN + 1], key_hex[2 * KEY_LEN + 1];
    cw_hex(salt, sizeof salt, salt_hex);
    cw_hex(key, sizeof key, key_hex);
    OPENSSL_cleanse(key, sizeof key);
    int n = snprintf(out, outlen, SCHEME "$%" PRId64 "$%s$%s", iterations, salt_hex, key_hex);
    return n > 0 && (size_t)n < outlen ? CW_OK : CW_EINVAL;
}

static int unhex(const char *s, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + (size_t)k];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= (unsigned)(c - 'a' + 10);
            else
                return CW_EINVAL;
        }
        out[i] = (unsigned char)v;
    }
    return CW_OK;
}

#define SALT_MAX 64

/* Split a stored hash into its parts; CW_EINVAL when malformed. */
static int parse(const char *stored, int64_t *iterations, unsigned char *salt, size_t *saltlen,
                 unsigned char *key)
{
    if (!stored || !cw_str_has_prefix(stored, SCHEME "$")) return CW_EINVAL;
    const char *p = stored + strlen(SCHEME) + 1;
    char *end;
    long long it = strtoll(p, &end, 10);
    if (end == p || *end != '$' || it < 1) return CW_EINVAL;
    const char *s = end + 1;
    const char *d = strchr(s, '$');
    if (!d || d == s || (d - s) % 2 || d - s > 2 * SALT_MAX || strlen(d + 1) != 2 * KEY_LEN)
        return CW_EINVAL;
    *saltlen = (size_t)(d - s) / 2;
    if (unhex(s, *saltlen, salt) || unhex(d + 1, KEY_LEN, key)) return CW_EINVAL;
    *iterations = it;
    return CW_OK;
}

int64_t auth_hash_iterations(const char *stored)
{
    unsigned char salt[SALT_MAX], key[KEY_LEN];
    size_t saltlen;
    int64_t it;
    return parse(stored, &it, salt, &saltlen, key) ? 0 : it;
}

bool auth_verify_password(const char *password, const char *stored)
{
    unsigned char salt[SALT_MAX], want[KEY_LEN], got[KEY_LEN];
    size_t saltlen;
    int64_t it;
    if (!password || parse(stored, &it, salt, &saltlen, want)) return false;
    if (pbkdf2(password, salt, saltlen, it, got)) return false;
    bool ok = CRYPTO_memcmp(got, want, KEY_LEN) == 0;
    OPENSSL_cleanse(got, sizeof got);
    return ok;
}

static void digest_hex(const EVP_MD *md, const char *a, const char *b, const char *c, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, md, NULL);
    EVP_DigestUpdate(ctx, a, strlen(a));
    EVP_DigestUpdate(ctx, ":", 1);
    EVP_DigestUpdate(ctx, b, strlen(b));
    EVP_DigestUpdate(ctx, ":", 1);
    EVP_DigestUpdate(ctx, c, strlen(c));
    EVP_DigestFinal_ex(ctx, d, &n);
    EVP_MD_CTX_free(ctx);
    cw_hex(d, n, out);
    OPENSSL_cleanse(d, sizeof d);
}

void auth_sip_ha1(const char *login, const char *realm, const char *password, char md5_hex[33],
                  char sha256_hex[65])
{
    digest_hex(EVP_md5(), login, realm, password, md5_hex);
    digest_hex(EVP_sha256(), login, realm, password, sha256_hex);
}

void auth_token_hash(const char *token, char out[65])
{
    unsigned char d[32];
    unsigned int n = 0;
    EVP_Digest(token, strlen(token), d, &n, EVP_sha256(), NULL);
    cw_hex(d, n, out);
}

void auth_new_token(const char *prefix, char *out, size_t outlen)
{
    unsigned char raw[32];
    char hex[65];
    cw_random_bytes(raw, sizeof raw);
    cw_hex(raw, sizeof raw, hex);
    snprintf(out, outlen, "%s%s", prefix, hex);
}

const char *auth_password_problem(const char *pw)
{
    size_t n = strlen(pw);
    if (n < 8) return "must be at least 8 characters";
    if (n > 128) return "must be at most 128 characters";
    bool lower = false, upper = false, digit = false, other = false;
    for (const unsigned char *p = (const unsigned char *)pw; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) return "must not contain control characters";
        if (*p >= 'a' && *p <= 'z')
            lower = true;
        else if (*p >= 'A' && *p <= 'Z')
            upper = true;
        else if (*p >= '0' && *p <= '9')
            digit = true;
        else
            other = true;
    }
    if (lower + upper + digit + other < 3)
        return "must mix at least 3 of: lower-case letters, upper-case letters, digits, "
               "other characters";
    return NULL;
}
