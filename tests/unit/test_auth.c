/*
 * test_auth.c - password hashing (PBKDF2-SHA256, RFC 7914 vectors), the
 * stored-hash format, SIP HA1 digests (RFC 2617 / RFC 7616 examples), token
 * hashing and the password policy.
 */
#include "auth/auth.h"
#include "base/cw.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

/* RFC 7914 section 11: PBKDF2-HMAC-SHA256, first 32 bytes of the output. */
static void pbkdf2_rfc7914_vectors_verify(void **state)
{
    /* P="passwd", S="salt", c=1 */
    assert_true(auth_verify_password(
        "passwd", "pbkdf2_sha256$1$73616c74$"
                  "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"));
    /* P="Password", S="NaCl", c=80000 */
    assert_true(auth_verify_password(
        "Password", "pbkdf2_sha256$80000$4e61436c$"
                    "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"));
    assert_false(auth_verify_password(
        "Passwore", "pbkdf2_sha256$80000$4e61436c$"
                    "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"));
}

static void hash_string_names_its_parameters(void **state)
{
    char h[AUTH_HASH_MAX], h2[AUTH_HASH_MAX];
    /* a request for fewer iterations is raised to the minimum */
    assert_int_equal(auth_hash_password("Correct-horse-1", 1000, h, sizeof h), 0);
    assert_true(cw_str_has_prefix(h, "pbkdf2_sha256$210000$"));
    assert_int_equal(auth_hash_iterations(h), 210000);
    /* 16-byte salt, 32-byte key, hex */
    const char *salt = strchr(h + strlen("pbkdf2_sha256$"), '$') + 1;
    const char *key = strchr(salt, '$') + 1;
    assert_int_equal(key - salt - 1, 32);
    assert_int_equal(strlen(key), 64);
    assert_true(auth_verify_password("Correct-horse-1", h));
    assert_false(auth_verify_password("correct-horse-1", h));
    assert_false(auth_verify_password("", h));
    /* per-hash salt: the same password hashes differently */
    assert_int_equal(auth_hash_password("Correct-horse-1", 210000, h2, sizeof h2), 0);
    assert_string_not_equal(h, h2);
    assert_true(auth_verify_password("Correct-horse-1", h2));
    /* the password never appears in its hash */
    assert_null(strstr(h, "Correct-horse-1"));
}

static void malformed_hashes_never_verify(void **state)
{
    static const char *const bad[] = {
        "",
        "plaintext",
        "pbkdf2_sha256$$73616c74$55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc",
        "pbkdf2_sha256$1$73616c7$55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc",
        "pbkdf2_sha256$1$73616c74$55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacb",
        "pbkdf2_sha256$1$73616c74$55AC046E56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc",
        "pbkdf2_sha1$1$73616c74$55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(auth_verify_password("passwd", bad[i]));
        assert_int_equal(auth_hash_iterations(bad[i]), 0);
    }
    assert_false(auth_verify_password("passwd", NULL));
}

static void sip_ha1_matches_rfc_examples(void **state)
{
    char md5[33], sha[65];
    /* RFC 2617 section 3.5 */
    auth_sip_ha1("Mufasa", "testrealm@host.com", "Circle Of Life", md5, sha);
    assert_string_equal(md5, "939e7578ed9e3c518a452acee763bce9");
    /* RFC 7616 section 3.9.1 */
    auth_sip_ha1("Mufasa", "http-auth@example.org", "Circle of Life", md5, sha);
    assert_string_equal(sha, "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232");
    /* what the registrar will read for a demo operator (realm = domain name) */
    auth_sip_ha1("op101", "demo.local", "Demo-op101-1", md5, sha);
    assert_string_equal(md5, "dc369b9a1dce5c6b9a52077ad53289d7");
    assert_string_equal(sha, "6ae8c1174d48d99c5bd33ffcca4b387421cfde1393b1ff73b6982ccab0ca1818");
}

static void tokens_are_random_and_hashed(void **state)
{
    char h[65], a[80], b[80];
    auth_token_hash("abc", h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    auth_new_token("cwt_", a, sizeof a);
    auth_new_token("cwt_", b, sizeof b);
    assert_true(cw_str_has_prefix(a, "cwt_"));
    assert_int_equal(strlen(a), 4 + 64);
    assert_string_not_equal(a, b);
}

static void password_policy_needs_length_and_three_classes(void **state)
{
    assert_null(auth_password_problem("Demo-admin-1"));
    assert_null(auth_password_problem("abcdefG1"));
    assert_null(auth_password_problem("abcdef1!"));
    assert_non_null(auth_password_problem("Ab1-"));          /* short */
    assert_non_null(auth_password_problem("abcdefgh"));      /* one class */
    assert_non_null(auth_password_problem("abcdefgh12"));    /* two classes */
    assert_non_null(auth_password_problem("Abcdefg1\x01x")); /* control character */
    char longpw[140];
    memset(longpw, 'a', sizeof longpw - 1);
    longpw[sizeof longpw - 1] = '\0';
    longpw[0] = 'A';
    longpw[1] = '1';
    assert_non_null(auth_password_problem(longpw)); /* too long */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pbkdf2_rfc7914_vectors_verify),
        cmocka_unit_test(hash_string_names_its_parameters),
        cmocka_unit_test(malformed_hashes_never_verify),
        cmocka_unit_test(sip_ha1_matches_rfc_examples),
        cmocka_unit_test(tokens_are_random_and_hashed),
        cmocka_unit_test(password_policy_needs_length_and_three_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
