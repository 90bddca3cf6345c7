/*
 * test_sip_edge.c - drives the SIP edge's call API (sip.h) the way the call
 * layer does, while tests/sip/edge_peers.py plays the phones and trunks on
 * loopback with real SIP (baresip and a raw client).
 *
 * This program owns a real core loop, a real SQLite store and the real
 * edge. It runs the peer script as a child, reads one command per line from
 * it (call, respond, hangup, reoffer, refer_result, blf, route, trunk
 * status, bans) and writes back what the edge reported (incoming calls,
 * leg events, results). The script makes the assertions; its exit status
 * is this test's.
 */
#include "base/cw.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "loop/loop.h"
#include "sip/sdp.h"
#include "sip/sip.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

static FILE *to_peer;
static int from_peer = -1;
static pid_t peer_pid;
static int peer_status = -1;
static cw_buf inbuf;
static struct event *peer_ev;
static unsigned long long sdp_version = 1;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(to_peer, fmt, ap);
    va_end(ap);
    fputc('\n', to_peer);
    fflush(to_peer);
}

static const char *type_name(enum sip_leg_event_type t)
{
    switch (t) {
    case SIP_EV_PROGRESS:
        return "PROGRESS";
    case SIP_EV_ANSWERED:
        return "ANSWERED";
    case SIP_EV_FAILED:
        return "FAILED";
    case SIP_EV_ENDED:
        return "ENDED";
    case SIP_EV_HOLD:
        return "HOLD";
    case SIP_EV_UNHOLD:
        return "UNHOLD";
    case SIP_EV_REFER:
        return "REFER";
    case SIP_EV_DTMF:
        return "DTMF";
    case SIP_EV_MEDIA:
        return "MEDIA";
    }
    return "?";
}

static char *our_sdp(int port, enum sdp_dir dir)
{
    int pts[] = {0, 8};
    struct sdp_local l = {.addr = "127.0.0.1",
                          .port = port,
                          .session_id = 4242,
                          .version = sdp_version++,
                          .pts = pts,
                          .npts = 2,
                          .dtmf_pt = 101,
                          .ptime = 20,
                          .dir = dir};
    return sdp_write(&l);
}

static void on_incoming(const struct sip_incoming *in, void *arg)
{
    say("incoming leg=%llu from_user=%s from_host=%s user_id=%lld domain_id=%lld trunk_id=%lld "
        "to_user=%s has_offer=%d codec=%s dir=%s replaces=%s call_id=%s src=%s:%d",
        (unsigned long long)in->leg, in->from.user, in->from.host, (long long)in->from.user_id,
        (long long)in->from.domain_id, (long long)in->from.trunk_id, in->to_user, in->has_offer,
        in->has_offer && in->offer.ncodecs ? in->offer.codecs[0].name : "-",
        sdp_dir_name(in->offer.dir), in->replaces[0] ? in->replaces : "-", in->call_id, in->src_ip,
        in->src_port);
}

static void on_leg_event(const struct sip_leg_event *ev, void *arg)
{
    say("event leg=%llu type=%s status=%d cause=%s has_sdp=%d dir=%s port=%d refer_user=%s "
        "refer_host=%s replaces=%s to_tag=%s from_tag=%s digit=%c",
        (unsigned long long)ev->leg, type_name(ev->type), ev->status, sip_cause_name(ev->cause),
        ev->has_sdp, ev->has_sdp ? sdp_dir_name(ev->sdp.dir) : "-", ev->has_sdp ? ev->sdp.port : 0,
        ev->refer_to_user[0] ? ev->refer_to_user : "-",
        ev->refer_to_host[0] ? ev->refer_to_host : "-",
        ev->replaces_call_id[0] ? ev->replaces_call_id : "-",
        ev->replaces_to_tag[0] ? ev->replaces_to_tag : "-",
        ev->replaces_from_tag[0] ? ev->replaces_from_tag : "-", ev->digit ? ev->digit : '-');
}

static void on_bus(const cw_event *ev, void *arg)
{
    char *j = json_dumps(ev->data, JSON_COMPACT);
    say("bus %s %s", ev->type, j ? j : "{}");
    free(j);
}

static enum sip_cause cause_parse(const char *s)
{
    for (int c = SIP_CAUSE_NONE; c <= SIP_CAUSE_FAILED; c++)
        if (!strcmp(sip_cause_name((enum sip_cause)c), s)) return (enum sip_cause)c;
    return SIP_CAUSE_FAILED;
}

static enum sdp_dir dir_parse(const char *s)
{
    for (int d = SDP_SENDRECV; d <= SDP_INACTIVE; d++)
        if (!strcmp(sdp_dir_name((enum sdp_dir)d), s)) return (enum sdp_dir)d;
    return SDP_SENDRECV;
}

/* One command line from the peer script. */
static void command(char *line)
{
    char *argv[16];
    int argc = 0;
    for (char *save = NULL, *t = strtok_r(line, " ", &save); t && argc < 16;
         t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    if (argc == 0) return;
    const char *cmd = argv[0];
    if (!strcmp(cmd, "respond") && argc >= 3) {
        /* respond LEG STATUS [sdp PORT DIR] */
        char *sdp = argc >= 6 && !strcmp(argv[3], "sdp")
                        ? our_sdp(atoi(argv[4]), dir_parse(argv[5]))
                        : NULL;
        int rc = sip_respond(strtoull(argv[1], NULL, 10), atoi(argv[2]), NULL, sdp);
        free(sdp);
        say("ok respond %d", rc);
    } else if (!strcmp(cmd, "hangup") && argc >= 3) {
        say("ok hangup %d", sip_hangup(strtoull(argv[1], NULL, 10), cause_parse(argv[2])));
    } else if (!strcmp(cmd, "reoffer") && argc >= 4) {
        char *sdp = our_sdp(atoi(argv[2]), dir_parse(argv[3]));
        say("ok reoffer %d", sip_reoffer(strtoull(argv[1], NULL, 10), sdp));
        free(sdp);
    } else if (!strcmp(cmd, "refer_result") && argc >= 3) {
        say("ok refer_result %d", sip_refer_result(strtoull(argv[1], NULL, 10), atoi(argv[2])));
    } else if (!strcmp(cmd, "call") && argc >= 3) {
        /* call user UID | call uri URI | call trunk TID NUMBER [timeout S] [from USER] */
        struct sip_invite inv;
        memset(&inv, 0, sizeof inv);
        if (!strcmp(argv[1], "user")) {
            inv.kind = SIP_TARGET_USER;
            inv.user_id = atoll(argv[2]);
        } else if (!strcmp(argv[1], "uri")) {
            inv.kind = SIP_TARGET_URI;
            cw_strlcpy(inv.uri, argv[2], sizeof inv.uri);
        } else {
            inv.kind = SIP_TARGET_TRUNK;
            inv.trunk_id = atoll(argv[2]);
            if (argc >= 4) cw_strlcpy(inv.uri, argv[3], sizeof inv.uri);
        }
        cw_strlcpy(inv.from_user, "100", sizeof inv.from_user);
        cw_strlcpy(inv.from_display, "Front Desk", sizeof inv.from_display);
        cw_strlcpy(inv.from_host, "demo.local", sizeof inv.from_host);
        for (int i = 3; i + 1 < argc; i++) {
            if (!strcmp(argv[i], "timeout")) inv.timeout_s = atoi(argv[i + 1]);
            if (!strcmp(argv[i], "from"))
                cw_strlcpy(inv.from_user, argv[i + 1], sizeof inv.from_user);
        }
        char *sdp = our_sdp(40000, SDP_SENDRECV);
        inv.sdp = sdp;
        sip_leg_id leg = sip_call(&inv);
        free(sdp);
        char cid[128] = "";
        sip_leg_call_id(leg, cid, sizeof cid);
        say("ok call %llu %s", (unsigned long long)leg, cid[0] ? cid : "-");
    } else if (!strcmp(cmd, "blf") && argc >= 4) {
        /* blf UID idle|early|confirmed CALLID [initiator] */
        enum sip_dialog_state st = !strcmp(argv[2], "early")       ? SIP_DLG_EARLY
                                   : !strcmp(argv[2], "confirmed") ? SIP_DLG_CONFIRMED
                                                                   : SIP_DLG_IDLE;
        sip_blf_update(atoll(argv[1]), st, argv[3], argc >= 5);
        say("ok blf");
    } else if (!strcmp(cmd, "route") && argc >= 4) {
        /* route DOMAIN_ID USER_ID DIALLED */
        struct sip_route r;
        int rc = sip_route_outbound(atoll(argv[1]), atoll(argv[2]), argv[3], &r);
        say("ok route %d %lld %s %s", rc, (long long)r.trunk_id, r.number[0] ? r.number : "-",
            r.caller_id[0] ? r.caller_id : "-");
    } else if (!strcmp(cmd, "trunks_reload")) {
        sip_trunks_reload();
        say("ok trunks_reload");
    } else if (!strcmp(cmd, "trunk") && argc >= 2) {
        struct sip_trunk_status st;
        int rc = sip_trunk_status(atoll(argv[1]), &st);
        say("ok trunk %d %s %s|%d|%d", rc, rc ? "-" : sip_trunk_state_name(st.state),
            st.reason[0] ? st.reason : "-", st.calls_in, st.calls_out);
    } else if (!strcmp(cmd, "bans")) {
        struct sip_ban b[16];
        int n = sip_bans(b, 16);
        cw_buf list;
        cw_buf_init(&list);
        for (int i = 0; i < n; i++)
            cw_buf_printf(&list, "%s%s/%d", i ? "," : "", b[i].ip, b[i].failures);
        say("ok bans %d %s", n, n ? list.data : "-");
        cw_buf_free(&list);
    } else if (!strcmp(cmd, "lift") && argc >= 2) {
        say("ok lift %d", sip_ban_lift(argv[1]));
    } else if (!strcmp(cmd, "locate") && argc >= 2) {
        struct sip_contact c[8];
        int n = sip_locate(atoll(argv[1]), c, 8);
        say("ok locate %d %s", n, n ? c[0].uri : "-");
    } else if (!strcmp(cmd, "registrations")) {
        struct sip_registration r[32];
        int n = sip_registrations(0, r, 32);
        say("ok registrations %d", n);
    } else if (!strcmp(cmd, "quit")) {
        loop_stop();
    } else {
        say("error unknown command %s", cmd);
    }
}

static void on_peer(evutil_socket_t fd, short what, void *arg)
{
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {
        loop_stop(); /* the script is done */
        return;
    }
    cw_buf_append(&inbuf, buf, (size_t)n);
    char *nl;
    while ((nl = memchr(inbuf.data, '\n', inbuf.len))) {
        *nl = '\0';
        char *line = cw_strdup(inbuf.data);
        size_t used = (size_t)(nl - inbuf.data) + 1;
        memmove(inbuf.data, inbuf.data + used, inbuf.len - used);
        inbuf.len -= used;
        inbuf.data[inbuf.len] = '\0';
        command(line);
        free(line);
    }
}

static int free_port(void)
{
    for (int i = 0; i < 50; i++) {
        int t = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bind(t, (struct sockaddr *)&a, sizeof a);
        socklen_t l = sizeof a;
        getsockname(t, (struct sockaddr *)&a, &l);
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        int ok = bind(u, (struct sockaddr *)&a, sizeof a) == 0;
        close(t);
        close(u);
        if (ok) return ntohs(a.sin_port);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *src = getenv("CW_SOURCE_DIR") ? getenv("CW_SOURCE_DIR") : ".";
    char dir[] = "/tmp/cw-edge-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char db[512], logf[600], script[512], port_s[16];
    snprintf(db, sizeof db, "%s/callwright.db", dir);
    snprintf(logf, sizeof logf, "%s/callwright.log", dir);
    snprintf(script, sizeof script, "%s/tests/sip/edge_peers.py", src);
    int port = free_port();
    snprintf(port_s, sizeof port_s, "%d", port);

    char err[256];
    char set_port[64], set_log[640];
    snprintf(set_port, sizeof set_port, "sip.port=%d", port);
    snprintf(set_log, sizeof set_log, "log.file=%s", logf);
    const char *sets[] = {set_port,
                          "sip.listen=127.0.0.1",
                          "log.level=debug",
                          set_log,
                          "sip.ring_timeout=30",
                          "sip.keepalive=1",
                          "sip.trunk_retry=2"};
    if (config_load(NULL, sets, (int)CW_ARRAY_LEN(sets), err, sizeof err)) {
        fprintf(stderr, "config: %s\n", err);
        return 1;
    }
    log_open(logf);
    log_set_level("debug");
    store *st;
    if (store_open(db, &st, err, sizeof err)) {
        fprintf(stderr, "store: %s\n", err);
        return 1;
    }
    store_set_main(st);
    loop_init();
    events_subscribe("sip.", on_bus, NULL);

    struct sip_config cfg;
    sip_config_from_settings(&cfg);
    struct sip_handlers h = {.incoming = on_incoming, .leg_event = on_leg_event};
    if (sip_start(&cfg, &h)) {
        fprintf(stderr, "sip_start failed\n");
        return 1;
    }

    /* the peer script: our stdout is its stdin, its stdout our commands */
    int down[2], up[2];
    if (pipe(down) || pipe(up)) return 1;
    peer_pid = fork();
    if (peer_pid == 0) {
        dup2(down[0], 0);
        dup2(up[1], 1);
        close(down[1]);
        close(up[0]);
        execlp("python3", "python3", script, port_s, db, logf, (char *)NULL);
        _exit(127);
    }
    close(down[0]);
    close(up[1]);
    to_peer = fdopen(down[1], "w");
    from_peer = up[0];
    cw_buf_init(&inbuf);
    peer_ev = event_new(loop_base(), from_peer, EV_READ | EV_PERSIST, on_peer, NULL);
    event_add(peer_ev, NULL);
    signal(SIGPIPE, SIG_IGN);

    loop_run();

    event_free(peer_ev);
    fclose(to_peer);
    close(from_peer);
    int status = 0;
    if (waitpid(peer_pid, &status, 0) == peer_pid)
        peer_status = WIFEXITED(status) ? WEXITSTATUS(status) : 99;
    sip_stop();
    events_shutdown();
    loop_free();
    store_close(st);
    config_free();
    cw_buf_free(&inbuf);
    if (peer_status == 0 && !getenv("CW_KEEP_TMP")) {
        unlink(db);
        char p[600];
        snprintf(p, sizeof p, "%s-wal", db);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", db);
        unlink(p);
        unlink(logf);
        rmdir(dir);
    } else {
        fprintf(stderr, "edge log kept in %s\n", logf);
    }
    log_close();
    return peer_status;
}
