/*
 * fuzz_sipmsg.c - libFuzzer target for the SIP text we read ourselves
 * rather than through sofia: the Replaces header inside a REFER's
 * Refer-To URI, and SIP INFO DTMF bodies (dtmf-relay and plain).
 */
#include "base/cw.h"
#include "sip/sip_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char digit = 0;
    int duration = 0;
    for (int plain = 0; plain < 2; plain++) {
        if (sip_dtmf_info_parse((const char *)data, size, plain, &digit, &duration) == CW_OK) {
            if (!strchr("0123456789*#ABCD", digit) || duration <= 0 || duration >= 10000) abort();
        }
    }
    /* sofia hands the URI headers over NUL-terminated */
    char *text = cw_strndup((const char *)data, size);
    struct sip_replaces r;
    int rc = sip_replaces_parse(text, &r);
    if (rc == CW_OK) {
        if (!r.call_id[0] || !r.to_tag[0] || !r.from_tag[0]) abort();
        if (strnlen(r.call_id, sizeof r.call_id) == sizeof r.call_id ||
            strnlen(r.to_tag, sizeof r.to_tag) == sizeof r.to_tag ||
            strnlen(r.from_tag, sizeof r.from_tag) == sizeof r.from_tag)
            abort();
    } else if (rc != CW_EINVAL && rc != CW_ENOENT) {
        abort();
    }
    free(text);
    return 0;
}
