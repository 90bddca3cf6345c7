/*
 * faxpeer.c - a fax machine on SIP for tests: a real user agent (sofia-sip
 * nua) that registers with digest authentication, then either dials a
 * number and sends a TIFF, or waits for calls and receives them into TIFF
 * files, running T.30 (spandsp) over G.711 RTP of its own on a 20 ms clock.
 * It can also refuse every call with a status, to exercise retries.
 *
 *   faxpeer --server 127.0.0.1:5060 --domain demo.local --user op101 --password pw
 *           --send doc.tiff --to sip:102@demo.local
 *   faxpeer ... --receive in.tiff [--calls 2]      (in.tiff, in-2.tiff, ...)
 *   faxpeer ... --receive in.tiff --to sip:510@demo.local   (dials, then receives:
 *                                                            fax on demand)
 *   faxpeer ... --reject 486 [--calls 4]
 *
 * Everything it sees goes to stdout as one JSON object a line
 * ({"event": "registered"}, {"event": "page", "pages": 1}, {"event": "fax",
 * "code": 0, "text": "OK", "pages": 2, ...}, {"event": "exit"}). Exit status:
 * 0 every fax went through (or every call was refused as asked), 1 a fax
 * failed, 2 bad usage or no registration, 3 the overall --timeout passed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NUA_MAGIC_T  void
#define NUA_HMAGIC_T void
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_wait.h>

#include <spandsp.h>

#define FRAME 160

static struct {
    char server[128], domain[128], user[64], password[64], ident[24];
    char send_file[512], to[256], recv_file[512];
    int reject, calls, timeout_s, sip_port;
    bool ecm;
} O = {.calls = 1, .timeout_s = 60, .ecm = true, .ident = "faxpeer"};

/* One call: its SIP handle, RTP socket and T.30 state. */
static struct {
    nua_handle_t *nh;
    bool active, answered, ended, auth_tried;
    int rtp_fd, rtp_port;
    struct sockaddr_in remote;
    int pt;
    uint16_t seq;
    uint32_t ts, ssrc;
    bool have_rx;
    uint16_t rx_seq;
    fax_state_t *fax;
    bool fax_done;
    int result;
    int64_t bye_at_ms;
    char file[600];
} C = {.rtp_fd = -1};

static struct {
    su_root_t *root;
    nua_t *nua;
    nua_handle_t *reg;
    bool registered, reg_auth_tried;
    int calls_seen, faxes_ok, faxes_failed, rejected;
    int tfd;
    int64_t deadline_ms;
    int exit_code;
    bool quitting;
} S = {.tfd = -1, .exit_code = -1};

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* ---------------------------------------------------------------- G.711 */

static uint8_t ulaw_enc(int16_t pcm)
{
    int s = pcm, sign = s < 0 ? 0x80 : 0;
    if (s < 0) s = -s;
    if (s > 32635) s = 32635;
    s += 0x84;
    int exp = 7;
    for (int mask = 0x4000; !(s & mask) && exp > 0; mask >>= 1)
        exp--;
    int mant = (s >> (exp + 3)) & 0x0f;
    return (uint8_t) ~(sign | (exp << 4) | mant);
}

static int16_t ulaw_dec(uint8_t u)
{
    u = (uint8_t)~u;
    int t = ((u & 0x0f) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    return (int16_t)((u & 0x80) ? 0x84 - t : t - 0x84);
}

static uint8_t alaw_enc(int16_t pcm)
{
    int s = pcm, mask = 0xd5;
    if (s < 0) {
        mask = 0x55;
        s = -s - 1;
    }
    static const int seg_end[8] = {0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff, 0x3fff, 0x7fff};
    s >>= 3;
    int seg = 0;
    while (seg < 8 && s > seg_end[seg] >> 3)
        seg++;
    if (seg >= 8) return (uint8_t)(0x7f ^ mask);
    int a = seg << 4;
    a |= seg < 2 ? (s >> 1) & 0x0f : (s >> seg) & 0x0f;
    return (uint8_t)(a ^ mask);
}

static int16_t alaw_dec(uint8_t a)
{
    a ^= 0x55;
    int t = (a & 0x0f) << 4;
    int seg = (a & 0x70) >> 4;
    if (seg == 0)
        t += 8;
    else if (seg == 1)
        t += 0x108;
    else
        t = (t + 0x108) << (seg - 1);
    return (int16_t)((a & 0x80) ? t : -t);
}

/* ---------------------------------------------------------------- SDP */

static const char *local_ip(void)
{
    return "127.0.0.1";
}

/* An offer lists PCMA then PCMU; an answer only the payload type chosen. */
static void sdp_make(char *out, size_t len, bool offer)
{
    snprintf(out, len,
             "v=0\r\no=faxpeer %ld 1 IN IP4 %s\r\ns=fax\r\nc=IN IP4 %s\r\nt=0 0\r\n"
             "m=audio %d RTP/AVP %s\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
             "a=ptime:20\r\na=sendrecv\r\n",
             (long)time(NULL), local_ip(), local_ip(), C.rtp_port,
             offer       ? "8 0"
             : C.pt == 8 ? "8"
                         : "0");
}

/* The remote's address, port and the first of PCMA/PCMU it lists. */
static bool sdp_read(const sip_t *sip)
{
    if (!sip || !sip->sip_payload || !sip->sip_payload->pl_data) return false;
    char body[4096];
    size_t n =
        sip->sip_payload->pl_len < sizeof body - 1 ? sip->sip_payload->pl_len : sizeof body - 1;
    memcpy(body, sip->sip_payload->pl_data, n);
    body[n] = '\0';
    char ip[64] = "";
    int port = 0, pt = -1;
    char *save = NULL;
    for (char *l = strtok_r(body, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save)) {
        if (!strncmp(l, "c=IN IP4 ", 9)) {
            snprintf(ip, sizeof ip, "%s", l + 9);
        } else if (!strncmp(l, "m=audio ", 8) && port == 0) {
            char *p = l + 8;
            port = (int)strtol(p, &p, 10);
            p = strchr(p + 1, ' '); /* after the profile */
            while (p && *p) {
                char *e;
                long v = strtol(p, &e, 10);
                if (e == p) break;
                if ((v == 0 || v == 8) && pt < 0) pt = (int)v;
                p = e;
            }
        }
    }
    if (!ip[0] || port <= 0 || pt < 0) return false;
    memset(&C.remote, 0, sizeof C.remote);
    C.remote.sin_family = AF_INET;
    C.remote.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &C.remote.sin_addr) != 1) return false;
    C.pt = pt;
    return true;
}

/* ---------------------------------------------------------------- RTP and T.30 */

/* An RTP socket on a port the kernel picks: outside the ranges tests give daemons. */
static int rtp_open(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    inet_pton(AF_INET, local_ip(), &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &len)) {
        close(fd);
        return -1;
    }
    C.rtp_port = ntohs(a.sin_port);
    return fd;
}

static int on_page(t30_state_t *t, void *arg, int result)
{
    t30_stats_t st;
    t30_get_transfer_statistics(t, &st);
    say("{\"event\": \"page\", \"pages\": %d, \"bit_rate\": %d}",
        st.pages_tx > st.pages_rx ? st.pages_tx : st.pages_rx, st.bit_rate);
    return T30_ERR_OK;
}

static void on_fax_end(t30_state_t *t, void *arg, int code)
{
    t30_stats_t st;
    t30_get_transfer_statistics(t, &st);
    const char *far = t30_get_rx_ident(t);
    say("{\"event\": \"fax\", \"code\": %d, \"text\": \"%s\", \"pages\": %d, \"bit_rate\": %d, "
        "\"ecm\": %s, \"x_dpi\": %d, \"remote_ident\": \"%s\", \"file\": \"%s\"}",
        code, t30_completion_code_to_str(code),
        st.pages_tx > st.pages_rx ? st.pages_tx : st.pages_rx, st.bit_rate,
        st.error_correcting_mode ? "true" : "false", (int)(st.x_resolution * 0.0254 + 0.5),
        far ? far : "", C.file);
    C.fax_done = true;
    C.result = code;
    if (code == T30_ERR_OK)
        S.faxes_ok++;
    else
        S.faxes_failed++;
    if (C.active && !C.ended) C.bye_at_ms = now_ms() + 200;
}

static bool fax_start(bool sending, bool calling)
{
    C.fax = fax_init(NULL, calling);
    if (!C.fax) return false;
    t30_state_t *t = fax_get_t30_state(C.fax);
    fax_set_transmit_on_idle(C.fax, 1);
    fax_set_tep_mode(C.fax, 0);
    t30_set_tx_ident(t, O.ident);
    t30_set_ecm_capability(t, O.ecm);
    t30_set_supported_compressions(t, T30_SUPPORT_T4_1D_COMPRESSION |
                                          T30_SUPPORT_T4_2D_COMPRESSION |
                                          T30_SUPPORT_T6_COMPRESSION);
    if (sending)
        t30_set_tx_file(t, C.file, -1, -1);
    else
        t30_set_rx_file(t, C.file, -1);
    t30_set_phase_d_handler(t, on_page, NULL);
    t30_set_phase_e_handler(t, on_fax_end, NULL);
    C.fax_done = false;
    return true;
}

static void rtp_tick(int frames)
{
    if (!C.active || !C.answered || C.rtp_fd < 0 || !C.fax) return;
    /* what came in, in order; a gap of lost packets is filled in */
    uint8_t pkt[1500];
    for (;;) {
        ssize_t n = recv(C.rtp_fd, pkt, sizeof pkt, 0);
        if (n < 0) break;
        if (n < 12 || (pkt[0] >> 6) != 2) continue;
        int cc = pkt[0] & 0x0f, pt = pkt[1] & 0x7f;
        size_t hdr = 12 + (size_t)cc * 4;
        if ((size_t)n <= hdr || (pt != 0 && pt != 8)) continue;
        uint16_t seq = (uint16_t)(pkt[2] << 8 | pkt[3]);
        if (C.have_rx) {
            int16_t gap = (int16_t)(seq - (uint16_t)(C.rx_seq + 1));
            if (gap < 0) continue; /* late or repeated */
            if (gap > 0 && gap < 10) fax_rx_fillin(C.fax, gap * FRAME);
        }
        C.have_rx = true;
        C.rx_seq = seq;
        int16_t pcm[1500];
        size_t samples = (size_t)n - hdr;
        for (size_t i = 0; i < samples; i++)
            pcm[i] = pt == 8 ? alaw_dec(pkt[hdr + i]) : ulaw_dec(pkt[hdr + i]);
        fax_rx(C.fax, pcm, (int)samples);
    }
    for (int f = 0; f < frames; f++) {
        int16_t out[FRAME];
        int got = fax_tx(C.fax, out, FRAME);
        if (got < FRAME) memset(out + got, 0, (size_t)(FRAME - got) * sizeof *out);
        uint8_t p[12 + FRAME];
        p[0] = 0x80;
        p[1] = (uint8_t)C.pt;
        p[2] = (uint8_t)(C.seq >> 8);
        p[3] = (uint8_t)C.seq;
        p[4] = (uint8_t)(C.ts >> 24), p[5] = (uint8_t)(C.ts >> 16);
        p[6] = (uint8_t)(C.ts >> 8), p[7] = (uint8_t)C.ts;
        p[8] = (uint8_t)(C.ssrc >> 24), p[9] = (uint8_t)(C.ssrc >> 16);
        p[10] = (uint8_t)(C.ssrc >> 8), p[11] = (uint8_t)C.ssrc;
        for (int i = 0; i < FRAME; i++)
            p[12 + i] = C.pt == 8 ? alaw_enc(out[i]) : ulaw_enc(out[i]);
        sendto(C.rtp_fd, p, sizeof p, 0, (struct sockaddr *)&C.remote, sizeof C.remote);
        C.seq++;
        C.ts += FRAME;
    }
}

static void call_reset(void)
{
    if (C.fax) fax_free(C.fax);
    if (C.rtp_fd >= 0) close(C.rtp_fd);
    if (C.nh) nua_handle_destroy(C.nh);
    memset(&C, 0, sizeof C);
    C.rtp_fd = -1;
}

static void quit(int code)
{
    if (S.quitting) return;
    S.quitting = true;
    S.exit_code = code;
    if (S.reg) nua_unregister(S.reg, TAG_END());
    nua_shutdown(S.nua);
}

/* A call is over: decide whether there is more to do. */
static void call_over(void)
{
    bool was_fax = C.fax != NULL;
    call_reset();
    if (O.to[0]) { /* the calling side: one call */
        quit(S.faxes_ok == 1 ? 0 : 1);
        return;
    }
    if (!was_fax && !O.reject) return;
    if (O.reject ? S.rejected >= O.calls : S.faxes_ok + S.faxes_failed >= O.calls)
        quit(S.faxes_failed ? 1 : 0);
}

/* ---------------------------------------------------------------- SIP */

static void authenticate(nua_handle_t *nh, const sip_t *sip)
{
    const msg_auth_t *au =
        sip ? (sip->sip_proxy_authenticate ? (const msg_auth_t *)sip->sip_proxy_authenticate
                                           : (const msg_auth_t *)sip->sip_www_authenticate)
            : NULL;
    char realm[128];
    snprintf(realm, sizeof realm, "%s", O.domain);
    const char *r = au ? msg_params_find(au->au_params, "realm=") : NULL;
    if (r) {
        snprintf(realm, sizeof realm, "%s", *r == '"' ? r + 1 : r);
        size_t l = strlen(realm);
        if (l && realm[l - 1] == '"') realm[l - 1] = '\0';
    }
    char cred[400];
    snprintf(cred, sizeof cred, "%s:\"%s\":%s:%s", au && au->au_scheme ? au->au_scheme : "Digest",
             realm, O.user, O.password);
    nua_authenticate(nh, NUTAG_AUTH(cred), TAG_END());
}

static void place_call(void)
{
    call_reset();
    C.rtp_fd = rtp_open();
    if (C.rtp_fd < 0) {
        say("{\"event\": \"error\", \"text\": \"no RTP port\"}");
        quit(2);
        return;
    }
    snprintf(C.file, sizeof C.file, "%s", O.send_file[0] ? O.send_file : O.recv_file);
    C.ssrc = (uint32_t)rand();
    char from[256], sdp[1024];
    snprintf(from, sizeof from, "<sip:%s@%s>", O.user, O.domain);
    sdp_make(sdp, sizeof sdp, true);
    C.nh = nua_handle(S.nua, NULL, SIPTAG_TO_STR(O.to), SIPTAG_FROM_STR(from), TAG_END());
    C.active = true;
    nua_invite(C.nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(sdp),
               TAG_END());
    say("{\"event\": \"dialling\", \"to\": \"%s\"}", O.to);
}

static void on_incoming(nua_t *nua, nua_handle_t *nh, const sip_t *sip)
{
    S.calls_seen++;
    if (C.active) {
        nua_respond(nh, SIP_486_BUSY_HERE, NUTAG_WITH_THIS(nua), TAG_END());
        nua_handle_destroy(nh);
        return;
    }
    if (O.reject) {
        S.rejected++;
        say("{\"event\": \"rejected\", \"status\": %d, \"count\": %d}", O.reject, S.rejected);
        nua_respond(nh, O.reject, O.reject == 486 ? "Busy Here" : "Declined", NUTAG_WITH_THIS(nua),
                    TAG_END());
        nua_handle_destroy(nh);
        if (S.rejected >= O.calls) quit(0);
        return;
    }
    call_reset();
    C.nh = nh;
    C.active = true;
    if (!sdp_read(sip) || (C.rtp_fd = rtp_open()) < 0) {
        nua_respond(nh, SIP_488_NOT_ACCEPTABLE, NUTAG_WITH_THIS(nua), TAG_END());
        call_reset();
        return;
    }
    int n = S.faxes_ok + S.faxes_failed;
    if (n == 0) {
        snprintf(C.file, sizeof C.file, "%s", O.recv_file);
    } else {
        const char *dot = strrchr(O.recv_file, '.');
        int stem = dot ? (int)(dot - O.recv_file) : (int)strlen(O.recv_file);
        snprintf(C.file, sizeof C.file, "%.*s-%d%s", stem, O.recv_file, n + 1, dot ? dot : "");
    }
    C.ssrc = (uint32_t)rand();
    C.answered = true;
    char sdp[1024];
    sdp_make(sdp, sizeof sdp, false);
    nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(nua), SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                SIPTAG_PAYLOAD_STR(sdp), TAG_END());
    fax_start(false, false);
    say("{\"event\": \"answered\", \"codec\": \"%s\"}", C.pt == 8 ? "PCMA" : "PCMU");
}

static void on_event(nua_event_t event, int status, char const *phrase, nua_t *nua, void *magic,
                     nua_handle_t *nh, void *h, sip_t const *sip, tagi_t tags[])
{
    switch (event) {
    case nua_r_register:
        if (status == 401 || status == 407) {
            if (S.reg_auth_tried) {
                say("{\"event\": \"error\", \"text\": \"registration refused: %d\"}", status);
                quit(2);
                return;
            }
            S.reg_auth_tried = true;
            authenticate(nh, sip);
        } else if (status >= 200 && status < 300) {
            if (!S.registered) {
                S.registered = true;
                say("{\"event\": \"registered\"}");
                if (O.to[0]) place_call();
            }
        } else if (status >= 300) {
            say("{\"event\": \"error\", \"text\": \"registration failed: %d %s\"}", status,
                phrase ? phrase : "");
            quit(2);
        }
        return;
    case nua_i_invite:
        if (nh == C.nh) return; /* a re-INVITE: keep what we have */
        on_incoming(nua, nh, sip);
        return;
    case nua_r_invite:
        if (nh != C.nh) return;
        if ((status == 401 || status == 407) && !C.auth_tried) {
            C.auth_tried = true;
            authenticate(nh, sip);
            return;
        }
        if (status >= 200 && status < 300 && !C.answered) {
            if (!sdp_read(sip)) {
                say("{\"event\": \"error\", \"text\": \"answer without usable SDP\"}");
                nua_bye(nh, TAG_END());
                return;
            }
            C.answered = true;
            fax_start(O.send_file[0] != '\0', true);
            say("{\"event\": \"answered\", \"codec\": \"%s\"}", C.pt == 8 ? "PCMA" : "PCMU");
        } else if (status >= 300) {
            say("{\"event\": \"failed\", \"status\": %d}", status);
        }
        return;
    case nua_i_state: {
        int cs = -1;
        tl_gets(tags, NUTAG_CALLSTATE_REF(cs), TAG_END());
        if (nh != C.nh || cs != nua_callstate_terminated) return;
        C.ended = true;
        if (C.fax && !C.fax_done) {
            /* the call ended in the middle: T.30 reports it as a dropped call */
            t30_terminate(fax_get_t30_state(C.fax));
            if (!C.fax_done) on_fax_end(fax_get_t30_state(C.fax), NULL, T30_ERR_CALLDROPPED);
        }
        say("{\"event\": \"hangup\", \"status\": %d}", status);
        C.nh = NULL; /* terminated handles are destroyed with the stack */
        nua_handle_destroy(nh);
        call_over();
        return;
    }
    case nua_r_shutdown:
        if (status >= 200) su_root_break(S.root);
        return;
    default:
        if (nua_event_is_incoming_request(event) && nh && nh != C.nh && nh != S.reg)
            nua_handle_destroy(nh);
        return;
    }
}

/* The 20 ms clock: a timerfd polled by the SIP loop. */
static int on_clock(su_root_magic_t *m, su_wait_t *w, su_wakeup_arg_t *arg)
{
    uint64_t n = 0;
    if (read(S.tfd, &n, sizeof n) != sizeof n) return 0;
    if (n > 10) n = 10;
    rtp_tick((int)n);
    int64_t now = now_ms();
    if (C.bye_at_ms && now >= C.bye_at_ms && C.nh && !C.ended) {
        C.bye_at_ms = 0;
        nua_bye(C.nh, TAG_END());
    }
    if (now > S.deadline_ms && !S.quitting) {
        say("{\"event\": \"error\", \"text\": \"timed out after %d s\"}", O.timeout_s);
        if (C.nh && !C.ended) nua_bye(C.nh, TAG_END());
        quit(3);
    }
    return 0;
}

static void sofia_log(void *stream, char const *fmt, va_list ap)
{
    (void)stream, (void)fmt, (void)ap;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: faxpeer --server HOST:PORT --domain D --user U --password P\n"
            "               (--send FILE.tiff --to URI | --receive FILE.tiff [--to URI] |\n"
            "                --reject STATUS)\n"
            "               [--calls N] [--timeout S] [--ident TEXT] [--no-ecm] [--port N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", 1, 0, 's'},   {"domain", 1, 0, 'd'}, {"user", 1, 0, 'u'},
        {"password", 1, 0, 'p'}, {"send", 1, 0, 'S'},   {"to", 1, 0, 't'},
        {"receive", 1, 0, 'R'},  {"reject", 1, 0, 'j'}, {"calls", 1, 0, 'n'},
        {"timeout", 1, 0, 'T'},  {"ident", 1, 0, 'i'},  {"no-ecm", 0, 0, 'E'},
        {"port", 1, 0, 'P'},     {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            snprintf(O.server, sizeof O.server, "%s", optarg);
            break;
        case 'd':
            snprintf(O.domain, sizeof O.domain, "%s", optarg);
            break;
        case 'u':
            snprintf(O.user, sizeof O.user, "%s", optarg);
            break;
        case 'p':
            snprintf(O.password, sizeof O.password, "%s", optarg);
            break;
        case 'S':
            snprintf(O.send_file, sizeof O.send_file, "%s", optarg);
            break;
        case 't':
            snprintf(O.to, sizeof O.to, "%s", optarg);
            break;
        case 'R':
            snprintf(O.recv_file, sizeof O.recv_file, "%s", optarg);
            break;
        case 'j':
            O.reject = atoi(optarg);
            break;
        case 'n':
            O.calls = atoi(optarg);
            break;
        case 'T':
            O.timeout_s = atoi(optarg);
            break;
        case 'i':
            snprintf(O.ident, sizeof O.ident, "%s", optarg);
            break;
        case 'E':
            O.ecm = false;
            break;
        case 'P':
            O.sip_port = atoi(optarg);
            break;
        default:
            usage();
        }
    }
    int modes = !!O.send_file[0] + !!O.recv_file[0] + !!O.reject;
    if (!O.server[0] || !O.domain[0] || !O.user[0] || modes != 1 || (O.send_file[0] && !O.to[0]) ||
        (O.reject && O.to[0]) || (O.reject && (O.reject < 400 || O.reject > 699)) || O.calls < 1 ||
        O.timeout_s < 1)
        usage();
    if (O.send_file[0] && access(O.send_file, R_OK)) {
        fprintf(stderr, "faxpeer: %s: %s\n", O.send_file, strerror(errno));
        return 2;
    }
    srand((unsigned)(time(NULL) ^ getpid()));
    su_init();
    su_log_redirect(NULL, sofia_log, NULL);
    S.root = su_root_create(NULL);
    su_root_threading(S.root, 0);
    char url[128], proxy[160];
    if (O.sip_port)
        snprintf(url, sizeof url, "sip:%s:%d;transport=udp", local_ip(), O.sip_port);
    else
        snprintf(url, sizeof url, "sip:%s:*;transport=udp", local_ip());
    snprintf(proxy, sizeof proxy, "sip:%s;transport=udp", O.server);
    S.nua = nua_create(
        S.root, on_event, NULL, NUTAG_URL(url), NUTAG_PROXY(proxy), NUTAG_MEDIA_ENABLE(0),
        NUTAG_AUTOALERT(0), NUTAG_AUTOANSWER(0), NUTAG_AUTOACK(1), NUTAG_ENABLEINVITE(1),
        NUTAG_SESSION_TIMER(0), NUTAG_OUTBOUND("no-options-keepalive no-validate"),
        SIPTAG_USER_AGENT_STR("faxpeer"), NTATAG_USE_NAPTR(0), NTATAG_USE_SRV(0), TAG_END());
    if (!S.nua) {
        fprintf(stderr, "faxpeer: cannot listen for SIP on %s\n", url);
        return 2;
    }
    S.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec its = {{0, 20000000}, {0, 20000000}};
    timerfd_settime(S.tfd, 0, &its, NULL);
    su_wait_t w;
    su_wait_create(&w, S.tfd, SU_WAIT_IN);
    su_root_register(S.root, &w, on_clock, NULL, 0);
    S.deadline_ms = now_ms() + (int64_t)O.timeout_s * 1000;

    char aor[256], registrar[200];
    snprintf(aor, sizeof aor, "<sip:%s@%s>", O.user, O.domain);
    snprintf(registrar, sizeof registrar, "sip:%s", O.domain);
    S.reg = nua_handle(S.nua, NULL, SIPTAG_TO_STR(aor), SIPTAG_FROM_STR(aor), TAG_END());
    nua_register(S.reg, NUTAG_REGISTRAR(registrar), NUTAG_M_USERNAME(O.user),
                 SIPTAG_EXPIRES_STR("300"), NUTAG_OUTBOUND("no-options-keepalive no-validate"),
                 TAG_END());
    su_root_run(S.root);
    call_reset();
    nua_destroy(S.nua);
    su_root_destroy(S.root);
    su_deinit();
    close(S.tfd);
    say("{\"event\": \"exit\", \"code\": %d}", S.exit_code < 0 ? 3 : S.exit_code);
    return S.exit_code < 0 ? 3 : S.exit_code;
}
