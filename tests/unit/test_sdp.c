/*
 * test_sdp.c - SDP parsing, codec negotiation, writing and the direction
 * rewrite the SIP edge uses to answer hold re-offers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/cw.h"
#include "sip/sdp.h"

static const char baresip_offer[] = "v=0\r\n"
                                    "o=- 1234 5678 IN IP4 127.0.0.1\r\n"
                                    "s=-\r\n"
                                    "c=IN IP4 127.0.0.1\r\n"
                                    "t=0 0\r\n"
                                    "m=audio 25062 RTP/AVP 9 0 8 101\r\n"
                                    "a=rtpmap:9 G722/8000\r\n"
                                    "a=rtpmap:0 PCMU/8000\r\n"
                                    "a=rtpmap:8 PCMA/8000\r\n"
                                    "a=rtpmap:101 telephone-event/8000\r\n"
                                    "a=fmtp:101 0-15\r\n"
                                    "a=ptime:20\r\n"
                                    "a=sendrecv\r\n";

static void sdp_parse_reads_first_audio_stream(void **state)
{
    struct sdp_media m;
    assert_int_equal(sdp_parse(baresip_offer, strlen(baresip_offer), &m), CW_OK);
    assert_string_equal(m.addr, "127.0.0.1");
    assert_int_equal(m.port, 25062);
    assert_int_equal(m.ncodecs, 4);
    assert_int_equal(m.codecs[0].pt, 9);
    assert_string_equal(m.codecs[0].name, "G722");
    assert_string_equal(m.codecs[3].name, "telephone-event");
    assert_int_equal(m.ptime, 20);
    assert_int_equal(m.dir, SDP_SENDRECV);
}

static void sdp_parse_media_level_overrides_session(void **state)
{
    const char *s = "v=0\no=x 1 1 IN IP4 10.0.0.1\ns=x\nc=IN IP4 10.0.0.1\nt=0 0\na=sendonly\n"
                    "m=video 4000 RTP/AVP 96\nc=IN IP4 10.9.9.9\na=inactive\n"
                    "m=audio 5000 RTP/AVP 0\nc=IN IP4 10.0.0.2\n";
    struct sdp_media m;
    assert_int_equal(sdp_parse(s, strlen(s), &m), CW_OK);
    assert_string_equal(m.addr, "10.0.0.2");
    assert_int_equal(m.port, 5000);
    assert_int_equal(m.dir, SDP_SENDONLY); /* session level applies */
    assert_string_equal(m.codecs[0].name, "PCMU");
}

static void sdp_parse_null_address_is_hold(void **state)
{
    const char *s = "v=0\r\no=x 1 1 IN IP4 0.0.0.0\r\ns=x\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                    "m=audio 5000 RTP/AVP 8\r\n";
    struct sdp_media m;
    assert_int_equal(sdp_parse(s, strlen(s), &m), CW_OK);
    assert_true(sdp_dir_is_hold(m.dir));
}

static void sdp_parse_rejects_junk(void **state)
{
    struct sdp_media m;
    const char *bad[] = {
        "",
        "hello world",
        "v=0\r\nm=audio 99999 RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\n",
        "v=0\r\nm=audio 5000 RTP/AVP 0\r\n", /* no address */
        "v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 5000 RTP/AVP 96\r\n",
        "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/SAVP 0\r\n",
        "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 300\r\n",
        "v=0\r\nc=IN IP4 <script>\r\nm=audio 5000 RTP/AVP 0\r\n",
        "v=1\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n",
    };
    for (size_t i = 0; i < CW_ARRAY_LEN(bad); i++)
        assert_int_equal(sdp_parse(bad[i], strlen(bad[i]), &m), CW_EINVAL);
    /* length is honoured: the text is cut before the m= line */
    assert_int_equal(sdp_parse(baresip_offer, 60, &m), CW_EINVAL);
}

static void sdp_negotiate_follows_remote_order(void **state)
{
    struct sdp_media m;
    int pt, dtmf;
    assert_int_equal(sdp_parse(baresip_offer, strlen(baresip_offer), &m), CW_OK);
    assert_int_equal(sdp_negotiate(&m, NULL, 0, &pt, &dtmf), CW_OK);
    assert_int_equal(pt, 0); /* G722 not allowed: PCMU is next */
    assert_int_equal(dtmf, 101);
    int g722[] = {9};
    assert_int_equal(sdp_negotiate(&m, g722, 1, &pt, &dtmf), CW_OK);
    assert_int_equal(pt, 9);
}

static void sdp_negotiate_no_common_codec(void **state)
{
    const char *s = "v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
                    "m=audio 5000 RTP/AVP 18 96\r\na=rtpmap:96 opus/48000/2\r\n";
    struct sdp_media m;
    int pt, dtmf;
    assert_int_equal(sdp_parse(s, strlen(s), &m), CW_OK);
    assert_int_equal(sdp_negotiate(&m, NULL, 0, &pt, &dtmf), CW_EINVAL);
}

static void sdp_write_then_parse_round_trips(void **state)
{
    int pts[] = {8, 0};
    struct sdp_local l = {.addr = "192.0.2.7",
                          .port = 16390,
                          .session_id = 42,
                          .version = 1,
                          .pts = pts,
                          .npts = 2,
                          .dtmf_pt = 101,
                          .ptime = 20,
                          .dir = SDP_RECVONLY};
    char *s = sdp_write(&l);
    struct sdp_media m;
    assert_int_equal(sdp_parse(s, strlen(s), &m), CW_OK);
    assert_string_equal(m.addr, "192.0.2.7");
    assert_int_equal(m.port, 16390);
    assert_int_equal(m.ncodecs, 3);
    assert_string_equal(m.codecs[0].name, "PCMA");
    assert_string_equal(m.codecs[2].name, "telephone-event");
    assert_int_equal(m.dir, SDP_RECVONLY);
    free(s);
}

static void sdp_with_dir_rewrites_and_bumps(void **state)
{
    char *s = sdp_with_dir(baresip_offer, SDP_RECVONLY, true);
    assert_non_null(s);
    assert_non_null(strstr(s, "o=- 1234 5679 IN IP4"));
    assert_null(strstr(s, "a=sendrecv"));
    struct sdp_media m;
    assert_int_equal(sdp_parse(s, strlen(s), &m), CW_OK);
    assert_int_equal(m.dir, SDP_RECVONLY);
    char *t = sdp_with_dir(s, SDP_SENDRECV, false);
    assert_non_null(strstr(t, "o=- 1234 5679 IN IP4"));
    assert_int_equal(sdp_parse(t, strlen(t), &m), CW_OK);
    assert_int_equal(m.dir, SDP_SENDRECV);
    free(s);
    free(t);
    assert_null(sdp_with_dir("v=0\r\n", SDP_SENDRECV, true));
}

static void sdp_answer_dir_mirrors(void **state)
{
    assert_int_equal(sdp_answer_dir(SDP_SENDONLY), SDP_RECVONLY);
    assert_int_equal(sdp_answer_dir(SDP_RECVONLY), SDP_SENDONLY);
    assert_int_equal(sdp_answer_dir(SDP_INACTIVE), SDP_INACTIVE);
    assert_int_equal(sdp_answer_dir(SDP_SENDRECV), SDP_SENDRECV);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sdp_parse_reads_first_audio_stream),
        cmocka_unit_test(sdp_parse_media_level_overrides_session),
        cmocka_unit_test(sdp_parse_null_address_is_hold),
        cmocka_unit_test(sdp_parse_rejects_junk),
        cmocka_unit_test(sdp_negotiate_follows_remote_order),
        cmocka_unit_test(sdp_negotiate_no_common_codec),
        cmocka_unit_test(sdp_write_then_parse_round_trips),
        cmocka_unit_test(sdp_with_dir_rewrites_and_bumps),
        cmocka_unit_test(sdp_answer_dir_mirrors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
