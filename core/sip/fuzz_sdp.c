/*
 * fuzz_sdp.c - libFuzzer target for the SDP code the SIP edge runs on
 * network input: parse, negotiate, and the direction rewrite (which also
 * sees text from the network when it comes back in a re-offer).
 */
#include "base/cw.h"
#include "sip/sdp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sdp_media m;
    if (sdp_parse((const char *)data, size, &m) == CW_OK) {
        int pt, dtmf;
        static const int allowed[] = {9};
        sdp_negotiate(&m, allowed, 1, &pt, &dtmf);
        if (m.ncodecs < 0 || m.ncodecs > SDP_MAX_CODECS) abort();
        if (strnlen(m.addr, sizeof m.addr) == sizeof m.addr) abort();
    }
    char *text = cw_strndup((const char *)data, size);
    for (int d = SDP_SENDRECV; d <= SDP_INACTIVE; d++) {
        char *out = sdp_with_dir(text, (enum sdp_dir)d, true);
        free(out);
    }
    free(text);
    return 0;
}
