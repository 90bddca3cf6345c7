/*
 * digest.c - HTTP digest for SIP (RFC 3261 §22, RFC 7616, RFC 8760):
 * parse credentials, verify a response against a stored HA1 (MD5 or
 * SHA-256), and make/check stateless nonces.
 *
 * A nonce is 16 hex digits of its creation time followed by 32 hex digits
 * of HMAC-SHA256(process key, time || realm): the registrar keeps no nonce
 * table, an old nonce is recognised as stale, and a forged one fails the
 * HMAC. No shared state (the keyed HMAC context is per thread); safe on
 * any thread.
 */
#include "base/cw.h"
#include "sip/sip_int.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

static bool is_token(char c)
{
    return c && (isalnum((unsigned char)c) || strchr("-.!%*_+`'~", c));
}

static char *field_of(struct digest_cred *c, const char *name, size_t n, size_t *size)
{
#define F(f)                                                                                       \
    if (n == strlen(#f) && !strncasecmp(name, #f, n)) {                                            \
        *size = sizeof c->f;                                                                       \
        return c->f;                                                                               \
    }
    F(username)
    F(realm)
    F(nonce)
    F(uri)
    F(response) F(algorithm) F(cnonce) F(nc) F(qop) F(opaque)
#undef F
        return NULL;
}

int digest_parse(const char *text, struct digest_cred *out)
{
    memset(out, 0, sizeof *out);
    if (!text) return CW_EINVAL;
    const char *p = skip_ws(text);
    size_t n = 0;
    while (is_token(p[n]))
        n++;
    if (n == 0 || n >= sizeof out->scheme) return CW_EINVAL;
    memcpy(out->scheme, p, n);
    p = skip_ws(p + n);
    while (*p) {
        const char *name = p;
        size_t nlen = 0;
        while (is_token(name[nlen]))
            nlen++;
        if (nlen == 0) return CW_EINVAL;
        p = skip_ws(name + nlen);
        if (*p != '=') return CW_EINVAL;
        p = skip_ws(p + 1);
        size_t size = 0;
        char *dst = field_of(out, name, nlen, &size);
        char tmp[512];
        size_t len = 0;
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1]) p++;
                if (len + 1 >= sizeof tmp) return CW_EINVAL;
                tmp[len++] = *p++;
            }
            if (*p != '"') return CW_EINVAL;
            p++;
        } else {
            while (*p && *p != ',' && *p != ' ' && *p != '\t') {
                if (len + 1 >= sizeof tmp) return CW_EINVAL;
                tmp[len++] = *p++;
            }
            if (len == 0) return CW_EINVAL;
        }
        tmp[len] = '\0';
        if (dst) {
            if (len >= size) return CW_EINVAL;
            memcpy(dst, tmp, len + 1);
        }
        p = skip_ws(p);
        if (*p == ',')
            p = skip_ws(p + 1);
        else if (*p)
            return CW_EINVAL;
    }
    if (strcasecmp(out->scheme, "Digest") != 0) return CW_EINVAL;
    if (!out->username[0] || !out->nonce[0] || !out->response[0] || !out->uri[0]) return CW_EINVAL;
    return CW_OK;
}

int digest_alg_of(const struct digest_cred *c, enum digest_alg *alg)
{
    if (!c->algorithm[0] || !strcasecmp(c->algorithm, "MD5"))
        *alg = DIGEST_MD5;
    else if (!strcasecmp(c->algorithm, "SHA-256"))
        *alg = DIGEST_SHA256;
    else
        return CW_EINVAL;
    return CW_OK;
}

void digest_hash_hex(enum digest_alg alg, const char *s, size_t len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(s, len, md, &mdlen, alg == DIGEST_SHA256 ? EVP_sha256() : EVP_md5(), NULL);
    cw_hex(md, mdlen, out);
}

bool digest_verify(const struct digest_cred *c, const char *method, const char *ha1_hex,
                   enum digest_alg alg)
{
    if (!ha1_hex || !method) return false;
    size_t hexlen = alg == DIGEST_SHA256 ? 64 : 32;
    if (strlen(ha1_hex) != hexlen || strlen(c->response) != hexlen) return false;
    if (c->qop[0] && strcasecmp(c->qop, "auth") != 0) return false;
    if (c->qop[0] && (!c->nc[0] || !c->cnonce[0])) return false;

    char ha1[65], ha2[65], resp[65];
    for (size_t i = 0; i <= hexlen; i++)
        ha1[i] = (char)tolower((unsigned char)ha1_hex[i]);
    char *a2 = cw_sprintf("%s:%s", method, c->uri);
    digest_hash_hex(alg, a2, strlen(a2), ha2);
    free(a2);
    char *kd = c->qop[0]
                   ? cw_sprintf("%s:%s:%s:%s:%s:%s", ha1, c->nonce, c->nc, c->cnonce, "auth", ha2)
                   : cw_sprintf("%s:%s:%s", ha1, c->nonce, ha2);
    digest_hash_hex(alg, kd, strlen(kd), resp);
    free(kd);
    char given[65];
    for (size_t i = 0; i <= hexlen; i++)
        given[i] = (char)tolower((unsigned char)c->response[i]);
    return CRYPTO_memcmp(resp, given, hexlen) == 0;
}

/*
 * HMAC-SHA256 keyed once per thread and key: fetching the algorithms and
 * keying a fresh context for every nonce cost more than the MAC itself,
 * and every INVITE makes or checks one. Each thread keeps its own context,
 * so the functions stay safe on any thread.
 */
static _Thread_local struct {
    EVP_MAC_CTX *ctx;
    unsigned char key[32];
} keyed;

static EVP_MAC_CTX *nonce_hmac(const unsigned char key[32])
{
    if (keyed.ctx && CRYPTO_memcmp(keyed.key, key, 32) == 0) {
        /* a NULL key re-uses the one set before: the context starts over */
        return EVP_MAC_init(keyed.ctx, NULL, 0, NULL) ? keyed.ctx : NULL;
    }
    EVP_MAC_CTX_free(keyed.ctx);
    keyed.ctx = NULL;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac) return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (!ctx || !EVP_MAC_init(ctx, key, 32, params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    keyed.ctx = ctx;
    memcpy(keyed.key, key, 32);
    return ctx;
}

static int nonce_mac(const unsigned char key[32], const char *realm, const char ts_hex[17],
                     char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    EVP_MAC_CTX *ctx = nonce_hmac(key);
    if (!ctx || !EVP_MAC_update(ctx, (const unsigned char *)ts_hex, 16) ||
        !EVP_MAC_update(ctx, (const unsigned char *)"|", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)realm, strlen(realm)) ||
        !EVP_MAC_final(ctx, md, &mdlen, sizeof md) || mdlen < 16) {
        memset(out, '0', 32); /* a nonce made now fails every check */
        out[32] = '\0';
        return CW_EIO;
    }
    cw_hex(md, 16, out);
    return CW_OK;
}

void digest_nonce_make(const unsigned char key[32], const char *realm, int64_t now, char *out,
                       size_t outlen)
{
    char ts[17], mac[33];
    snprintf(ts, sizeof ts, "%016llx", (unsigned long long)now);
    (void)nonce_mac(key, realm, ts, mac);
    snprintf(out, outlen, "%s%s", ts, mac);
}

int digest_nonce_check(const unsigned char key[32], const char *realm, const char *nonce,
                       int64_t now, int64_t *age)
{
    if (strlen(nonce) != 48) return CW_EINVAL;
    char ts[17], mac[33];
    memcpy(ts, nonce, 16);
    ts[16] = '\0';
    for (int i = 0; i < 16; i++)
        if (!isxdigit((unsigned char)ts[i]) || isupper((unsigned char)ts[i])) return CW_EINVAL;
    if (nonce_mac(key, realm, ts, mac) != CW_OK) return CW_EINVAL;
    if (CRYPTO_memcmp(mac, nonce + 16, 32) != 0) return CW_EINVAL;
    int64_t t = (int64_t)strtoull(ts, NULL, 16);
    *age = now - t;
    if (*age < -5) return CW_EINVAL; /* from the future: not one we made */
    return CW_OK;
}

char *digest_challenge(const char *realm, const char *nonce, enum digest_alg alg, bool stale)
{
    return cw_sprintf("Digest realm=\"%s\", nonce=\"%s\", algorithm=%s, qop=\"auth\"%s", realm,
                      nonce, alg == DIGEST_SHA256 ? "SHA-256" : "MD5", stale ? ", stale=true" : "");
}
