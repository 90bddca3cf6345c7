/*
 * fuzz_rtp.c - libFuzzer target for the media packets a worker reads off
 * the network: RTP headers (CSRCs, extension, padding), RTCP compound
 * packets, and RFC 4733 telephone-event payloads fed to the digit
 * receiver as a stream.
 */
#include "base/cw.h"
#include "media/media_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) return 0;
    int len = (int)size;
    struct rtp_hdr h;
    if (rtp_parse(data, len, &h) == CW_OK) {
        if (h.len < 0 || h.payload < data || h.payload + h.len > data + len) abort();
        volatile uint8_t sink = 0;
        for (int i = 0; i < h.len; i++)
            sink ^= h.payload[i]; /* every payload byte is inside the packet */
        (void)sink;
    }
    struct rtcp_info ri;
    if (rtcp_parse(data, len, 0x01020304u, &ri) == CW_OK && ri.has_block &&
        (ri.loss < 0 || ri.loss >= 1))
        abort();
    /* the same bytes as a run of telephone-event payloads, 4 at a time */
    struct dtmf4733_rx rx = {0};
    struct dtmf_digit out[2];
    int64_t now = 0;
    for (int off = 0; off + 4 <= len; off += 4) {
        uint32_t ts = (uint32_t)(data[off] & 0x3) * 160;
        int n = dtmf4733_rx_packet(&rx, ts, data + off, len - off, now += 20, out);
        if (n < 0 || n > 2) abort();
        for (int i = 0; i < n; i++)
            if (!strchr("0123456789*#ABCD", out[i].digit)) abort();
    }
    if (dtmf4733_rx_poll(&rx, now + 1000, out) == 1 && !out[0].digit) abort();
    return 0;
}
