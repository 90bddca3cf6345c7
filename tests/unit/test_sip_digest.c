/*
 * test_sip_digest.c - digest credentials (RFC 7616 / 8760 for SIP): parsing,
 * verification with MD5 and SHA-256 HA1, and the stateless nonces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/cw.h"
#include "sip/sip_int.h"

/* RFC 2617 §3.5 example, with its well-known response */
static const char rfc2617[] =
    "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", "
    "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, "
    "nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", "
    "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

static void digest_parse_reads_fields(void **state)
{
    struct digest_cred c;
    assert_int_equal(digest_parse(rfc2617, &c), CW_OK);
    assert_string_equal(c.username, "Mufasa");
    assert_string_equal(c.realm, "testrealm@host.com");
    assert_string_equal(c.qop, "auth");
    assert_string_equal(c.nc, "00000001");
    assert_string_equal(c.cnonce, "0a4f113b");
    enum digest_alg alg;
    assert_int_equal(digest_alg_of(&c, &alg), CW_OK);
    assert_int_equal(alg, DIGEST_MD5);
}

static void digest_verify_md5_rfc_example(void **state)
{
    struct digest_cred c;
    assert_int_equal(digest_parse(rfc2617, &c), CW_OK);
    char ha1[65];
    const char *a1 = "Mufasa:testrealm@host.com:Circle Of Life";
    digest_hash_hex(DIGEST_MD5, a1, strlen(a1), ha1);
    assert_true(digest_verify(&c, "GET", ha1, DIGEST_MD5));
    assert_false(digest_verify(&c, "POST", ha1, DIGEST_MD5));
    ha1[0] = ha1[0] == 'a' ? 'b' : 'a';
    assert_false(digest_verify(&c, "GET", ha1, DIGEST_MD5));
}

static void digest_verify_sha256(void **state)
{
    /* compute a response the way a client does, then check it */
    char ha1[65], ha2[65], resp[65];
    const char *a1 = "alice:demo.local:secret";
    digest_hash_hex(DIGEST_SHA256, a1, strlen(a1), ha1);
    const char *a2 = "REGISTER:sip:demo.local";
    digest_hash_hex(DIGEST_SHA256, a2, strlen(a2), ha2);
    char *kd = cw_sprintf("%s:abc:00000001:xyz:auth:%s", ha1, ha2);
    digest_hash_hex(DIGEST_SHA256, kd, strlen(kd), resp);
    free(kd);
    char *hdr = cw_sprintf("Digest username=\"alice\",realm=\"demo.local\",nonce=\"abc\","
                           "uri=\"sip:demo.local\",response=\"%s\",algorithm=SHA-256,"
                           "cnonce=\"xyz\",qop=auth,nc=00000001",
                           resp);
    struct digest_cred c;
    assert_int_equal(digest_parse(hdr, &c), CW_OK);
    enum digest_alg alg;
    assert_int_equal(digest_alg_of(&c, &alg), CW_OK);
    assert_int_equal(alg, DIGEST_SHA256);
    assert_true(digest_verify(&c, "REGISTER", ha1, DIGEST_SHA256));
    /* an MD5 HA1 can never verify a SHA-256 response */
    char md5[65];
    digest_hash_hex(DIGEST_MD5, a1, strlen(a1), md5);
    assert_false(digest_verify(&c, "REGISTER", md5, DIGEST_SHA256));
    free(hdr);
}

static void digest_parse_rejects_junk(void **state)
{
    struct digest_cred c;
    const char *bad[] = {
        "",
        "Basic dXNlcjpwYXNz",
        "Digest",
        "Digest username=\"a\"",            /* no nonce/response/uri */
        "Digest username=\"a, nonce=\"b\"", /* unterminated quote */
        "Digest username==a",
        "Digest =a, nonce=b, uri=c, response=d",
    };
    for (size_t i = 0; i < CW_ARRAY_LEN(bad); i++)
        assert_int_equal(digest_parse(bad[i], &c), CW_EINVAL);
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *hdr = cw_sprintf("Digest username=\"%s\", nonce=n, uri=u, response=r", big);
    assert_int_equal(digest_parse(hdr, &c), CW_EINVAL);
    free(hdr);
    assert_int_equal(digest_parse("Digest username=a, nonce=b, uri=c, response=d, "
                                  "algorithm=MD5-sess",
                                  &c),
                     CW_OK);
    enum digest_alg alg;
    assert_int_equal(digest_alg_of(&c, &alg), CW_EINVAL);
}

static void digest_nonce_round_trip(void **state)
{
    unsigned char key[32], other[32];
    memset(key, 7, sizeof key);
    memset(other, 8, sizeof other);
    char n[64];
    digest_nonce_make(key, "demo.local", 1000000, n, sizeof n);
    assert_int_equal(strlen(n), 48);
    int64_t age = -1;
    assert_int_equal(digest_nonce_check(key, "demo.local", n, 1000030, &age), CW_OK);
    assert_int_equal(age, 30);
    /* another key, another realm, a changed digit: not ours */
    assert_int_equal(digest_nonce_check(other, "demo.local", n, 1000030, &age), CW_EINVAL);
    assert_int_equal(digest_nonce_check(key, "other.local", n, 1000030, &age), CW_EINVAL);
    n[20] = n[20] == '0' ? '1' : '0';
    assert_int_equal(digest_nonce_check(key, "demo.local", n, 1000030, &age), CW_EINVAL);
    assert_int_equal(digest_nonce_check(key, "demo.local", "short", 1000030, &age), CW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digest_parse_reads_fields),
        cmocka_unit_test(digest_verify_md5_rfc_example),
        cmocka_unit_test(digest_verify_sha256),
        cmocka_unit_test(digest_parse_rejects_junk),
        cmocka_unit_test(digest_nonce_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
