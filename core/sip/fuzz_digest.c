/*
 * fuzz_digest.c - libFuzzer target for our digest credential parser and
 * verifier, and the nonce check: all of them see Authorization headers and
 * nonces straight from the network.
 */
#include "base/cw.h"
#include "sip/sip_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = cw_strndup((const char *)data, size);
    struct digest_cred c;
    if (digest_parse(text, &c) == CW_OK) {
        enum digest_alg alg;
        if (digest_alg_of(&c, &alg) == CW_OK) {
            digest_verify(&c, "REGISTER", "0123456789abcdef0123456789abcdef", DIGEST_MD5);
            digest_verify(&c, "INVITE",
                          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                          DIGEST_SHA256);
        }
        static const unsigned char key[32] = {1, 2, 3};
        int64_t age;
        digest_nonce_check(key, c.realm, c.nonce, 1700000000, &age);
    }
    free(text);
    return 0;
}
