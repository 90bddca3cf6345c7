/*
 * main.c - cwload's command line: options, the run's time bounds, and the
 * exit status (0 only when every call, registration and audio check passed).
 *
 *   cwload SCENARIO [options]       SCENARIO: register | ivr | queue | bridge
 *
 * Traffic goes to loopback only: the server and local addresses, and every
 * address an SDP names, must be 127.x.x.x. A watchdog ends the process if
 * the run outlives its own time limit by 20 s, whatever state the SIP stack
 * is in, so cwload never hangs.
 */
#include "cwload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct load_opts O;

static void usage(FILE *f)
{
    fprintf(f, "usage: cwload register|ivr|queue|bridge [options]\n"
               "\n"
               "  -s, --server IP:PORT      platform's SIP address (127.0.0.1:5060)\n"
               "  -d, --domain NAME         tenant domain (demo.local)\n"
               "      --local-ip IP         our address, loopback (127.0.0.1)\n"
               "      --sip-port N          our SIP port (any free one)\n"
               "  -c, --caller L:P[:E]      callers' login:password[:extension]; %%d = number\n"
               "      --callers A-B         numbers of the callers (one caller, no %%d)\n"
               "  -e, --callee L:P[:E]      registered endpoints (queue agents, bridge B\n"
               "                            parties, users of register); %%d = number\n"
               "      --callees A-B         their numbers\n"
               "  -t, --to NUMBER           number dialled: ivr 500, queue 200\n"
               "  -r, --rate N              calls a second (10)\n"
               "  -n, --calls N             at most N calls (0 = no limit but the time)\n"
               "  -T, --duration S          place calls (or keep registrations) for S s (10)\n"
               "  -m, --max-concurrent N    never more than N calls up at once\n"
               "      --hold DIST           answer to BYE, seconds: fixed:S uniform:A,B\n"
               "                            exp:MEAN[,MAX] normal:MEAN,SD (fixed:5)\n"
               "      --dtmf DIGITS         ivr: RFC 4733 digits sent after the answer (1)\n"
               "      --dtmf-delay MS       ... this long after the answer (1500)\n"
               "      --setup-timeout S     INVITE or REGISTER without a final answer (10)\n"
               "      --reg-rate N          registrations a second (200)\n"
               "      --reg-expires S       Expires asked for (3600)\n"
               "      --refresh S           register: re-REGISTER every S s (expires/2)\n"
               "      --login-code CODE     each endpoint dials CODE once registered (*50)\n"
               "      --answer-delay MS     endpoints ring this long, then answer (0)\n"
               "      --caller-hz HZ        tone callers send (400)\n"
               "      --callee-hz HZ        tone endpoints send (1000)\n"
               "      --no-tone-check       callers only need energy, not the far tone\n"
               "      --min-audio-ms MS     audio needed to count as heard (500)\n"
               "      --late-ms MS          |D| over this counts a packet late (40)\n"
               "      --rtp-threads N       RTP engine threads (1)\n"
               "      --realtime            RTP threads at SCHED_FIFO, like the platform's\n"
               "                            media workers (needs the privilege)\n"
               "      --max-time S          hard limit on the whole run (derived)\n"
               "      --json                print the figures as JSON\n"
               "  -v, --verbose             progress and SIP stack messages on stderr\n");
}

int users_count(const struct user_set *u)
{
    return u->last - u->first + 1;
}

void user_field(const char *pattern, int i, char *out, size_t n)
{
    size_t j = 0;
    for (const char *p = pattern; *p && j + 1 < n; p++) {
        if (p[0] == '%' && p[1] == 'd') {
            char num[16];
            int k = snprintf(num, sizeof num, "%d", i);
            for (int q = 0; q < k && j + 1 < n; q++)
                out[j++] = num[q];
            p++;
        } else {
            out[j++] = *p;
        }
    }
    out[j] = '\0';
}

static double uniform01(void)
{
    return ((double)random() + 0.5) / ((double)RAND_MAX + 1.0);
}

double dist_draw(const struct dist *d)
{
    switch (d->kind) {
    case DIST_FIXED:
        return d->a;
    case DIST_UNIFORM:
        return d->a + (d->b - d->a) * uniform01();
    case DIST_EXP: {
        double v = -d->a * log(uniform01());
        return d->b > 0 && v > d->b ? d->b : v;
    }
    case DIST_NORMAL: {
        double v = d->a + d->b * sqrt(-2.0 * log(uniform01())) * cos(2.0 * M_PI * uniform01());
        return v < 0.5 ? 0.5 : (v > d->a + 4 * d->b ? d->a + 4 * d->b : v);
    }
    }
    return d->a;
}

double dist_max(const struct dist *d)
{
    switch (d->kind) {
    case DIST_FIXED:
        return d->a;
    case DIST_UNIFORM:
        return d->b;
    case DIST_EXP:
        return d->b > 0 ? d->b : d->a * 10;
    case DIST_NORMAL:
        return d->a + 4 * d->b;
    }
    return d->a;
}

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "cwload: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    return 2;
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    double v;
    if (!parse_num(s, lo, hi, &v) || v != floor(v)) return false;
    *out = (int)v;
    return true;
}

static bool parse_hostport(const char *s, char *ip, size_t n, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= n) return false;
    memcpy(ip, s, (size_t)(colon - s));
    ip[colon - s] = '\0';
    return parse_int(colon + 1, 1, 65535, port);
}

static bool loopback(const char *ip)
{
    struct in_addr a;
    return inet_pton(AF_INET, ip, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static bool copy_field(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) return false;
    memcpy(dst, src, n + 1);
    return true;
}

static bool parse_users(const char *s, struct user_set *u)
{
    char buf[200];
    if (strlen(s) >= sizeof buf) return false;
    memcpy(buf, s, strlen(s) + 1);
    char *pass = strchr(buf, ':');
    if (!pass) return false;
    *pass++ = '\0';
    char *ext = strchr(pass, ':');
    if (ext) *ext++ = '\0';
    if (!*buf || !*pass) return false;
    for (const char *p = buf; *p; p++)
        if (*p == '%' && p[1] != 'd') return false;
    /* without an extension pattern: the number itself when the login has one */
    const char *e = ext && *ext ? ext : strstr(buf, "%d") ? "%d" : buf;
    return copy_field(u->login, sizeof u->login, buf) &&
           copy_field(u->pass, sizeof u->pass, pass) && copy_field(u->ext, sizeof u->ext, e);
}

static bool parse_range(const char *s, struct user_set *u)
{
    int a, b, used = 0;
    if (sscanf(s, "%d-%d%n", &a, &b, &used) != 2 || s[used] || a < 0 || b < a || b - a > 200000)
        return false;
    u->first = a;
    u->last = b;
    return true;
}

static bool parse_dist(const char *s, struct dist *d)
{
    double a = 0, b = 0;
    int used = 0;
    if (sscanf(s, "fixed:%lf%n", &a, &used) == 1 && !s[used]) {
        *d = (struct dist){DIST_FIXED, a, 0};
    } else if (sscanf(s, "uniform:%lf,%lf%n", &a, &b, &used) == 2 && !s[used] && b >= a) {
        *d = (struct dist){DIST_UNIFORM, a, b};
    } else if (sscanf(s, "exp:%lf,%lf%n", &a, &b, &used) == 2 && !s[used] && b > 0) {
        *d = (struct dist){DIST_EXP, a, b};
    } else if (sscanf(s, "exp:%lf%n", &a, &used) == 1 && !s[used]) {
        *d = (struct dist){DIST_EXP, a, 0};
    } else if (sscanf(s, "normal:%lf,%lf%n", &a, &b, &used) == 2 && !s[used] && b >= 0) {
        *d = (struct dist){DIST_NORMAL, a, b};
    } else {
        return false;
    }
    return d->a >= 0 && d->a <= 86400 && d->b <= 86400;
}

static double load_average(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static void *watchdog(void *arg)
{
    double limit = *(double *)arg + 20.0;
    struct timespec t = {.tv_sec = (time_t)limit, .tv_nsec = 0};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
    static const char msg[] = "cwload: the run outlived its time limit by 20 s; stopping\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
        /* nothing more to say */
    }
    _exit(3);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sc = argv[1];
    if (!strcmp(sc, "register"))
        O.sc = SC_REGISTER;
    else if (!strcmp(sc, "ivr"))
        O.sc = SC_IVR;
    else if (!strcmp(sc, "queue"))
        O.sc = SC_QUEUE;
    else if (!strcmp(sc, "bridge"))
        O.sc = SC_BRIDGE;
    else
        return fail("unknown scenario %s (register, ivr, queue or bridge)", sc);

    snprintf(O.server_ip, sizeof O.server_ip, "127.0.0.1");
    O.server_port = 5060;
    snprintf(O.local_ip, sizeof O.local_ip, "127.0.0.1");
    snprintf(O.domain, sizeof O.domain, "demo.local");
    parse_users("admin:Demo-admin-1:100", &O.callers);
    O.callers.first = O.callers.last = 0;
    parse_users("op%d:Demo-op%d-1", &O.callees);
    O.callees.first = 101;
    O.callees.last = 103;
    O.have_callees = O.sc != SC_IVR;
    snprintf(O.to, sizeof O.to, "%s", O.sc == SC_QUEUE ? "200" : "500");
    O.rate = 10;
    O.duration_s = 10;
    O.hold = (struct dist){DIST_FIXED, 5, 0};
    snprintf(O.dtmf, sizeof O.dtmf, "1");
    O.dtmf_delay_ms = 1500;
    O.setup_timeout_s = 10;
    O.reg_rate = 200;
    O.reg_expires = 3600;
    O.refresh_s = -1;
    O.caller_hz = 400;
    O.callee_hz = 1000;
    O.expect_tone = true;
    O.min_audio_ms = 500;
    O.late_ms = 40;
    O.rtp_threads = 1;

    enum {
        OPT_LOCAL_IP = 256,
        OPT_SIP_PORT,
        OPT_CALLERS,
        OPT_CALLEES,
        OPT_HOLD,
        OPT_DTMF,
        OPT_DTMF_DELAY,
        OPT_SETUP,
        OPT_REG_RATE,
        OPT_REG_EXP,
        OPT_REFRESH,
        OPT_LOGIN,
        OPT_ANSWER_DELAY,
        OPT_CALLER_HZ,
        OPT_CALLEE_HZ,
        OPT_NO_TONE,
        OPT_MIN_AUDIO,
        OPT_LATE,
        OPT_THREADS,
        OPT_REALTIME,
        OPT_MAX_TIME,
        OPT_JSON
    };
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'},
        {"domain", required_argument, NULL, 'd'},
        {"local-ip", required_argument, NULL, OPT_LOCAL_IP},
        {"sip-port", required_argument, NULL, OPT_SIP_PORT},
        {"caller", required_argument, NULL, 'c'},
        {"callers", required_argument, NULL, OPT_CALLERS},
        {"callee", required_argument, NULL, 'e'},
        {"callees", required_argument, NULL, OPT_CALLEES},
        {"to", required_argument, NULL, 't'},
        {"rate", required_argument, NULL, 'r'},
        {"calls", required_argument, NULL, 'n'},
        {"duration", required_argument, NULL, 'T'},
        {"max-concurrent", required_argument, NULL, 'm'},
        {"hold", required_argument, NULL, OPT_HOLD},
        {"dtmf", required_argument, NULL, OPT_DTMF},
        {"dtmf-delay", required_argument, NULL, OPT_DTMF_DELAY},
        {"setup-timeout", required_argument, NULL, OPT_SETUP},
        {"reg-rate", required_argument, NULL, OPT_REG_RATE},
        {"reg-expires", required_argument, NULL, OPT_REG_EXP},
        {"refresh", required_argument, NULL, OPT_REFRESH},
        {"login-code", required_argument, NULL, OPT_LOGIN},
        {"answer-delay", required_argument, NULL, OPT_ANSWER_DELAY},
        {"caller-hz", required_argument, NULL, OPT_CALLER_HZ},
        {"callee-hz", required_argument, NULL, OPT_CALLEE_HZ},
        {"no-tone-check", no_argument, NULL, OPT_NO_TONE},
        {"min-audio-ms", required_argument, NULL, OPT_MIN_AUDIO},
        {"late-ms", required_argument, NULL, OPT_LATE},
        {"rtp-threads", required_argument, NULL, OPT_THREADS},
        {"realtime", no_argument, NULL, OPT_REALTIME},
        {"max-time", required_argument, NULL, OPT_MAX_TIME},
        {"json", no_argument, NULL, OPT_JSON},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    bool callees_given = false;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "s:d:c:e:t:r:n:T:m:vh", longopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            if (!parse_hostport(optarg, O.server_ip, sizeof O.server_ip, &O.server_port))
                return fail("--server wants IP:PORT, not %s", optarg);
            break;
        case 'd':
            if (!*optarg || strlen(optarg) >= sizeof O.domain || strpbrk(optarg, " <>\"@:;"))
                return fail("--domain: not a domain name: %s", optarg);
            snprintf(O.domain, sizeof O.domain, "%s", optarg);
            break;
        case OPT_LOCAL_IP:
            snprintf(O.local_ip, sizeof O.local_ip, "%s", optarg);
            break;
        case OPT_SIP_PORT:
            if (!parse_int(optarg, 1, 65535, &O.sip_port)) return fail("--sip-port: %s", optarg);
            break;
        case 'c':
            if (!parse_users(optarg, &O.callers))
                return fail("--caller wants LOGIN:PASSWORD[:EXTENSION], not %s", optarg);
            break;
        case OPT_CALLERS:
            if (!parse_range(optarg, &O.callers)) return fail("--callers wants A-B: %s", optarg);
            break;
        case 'e':
            if (!parse_users(optarg, &O.callees))
                return fail("--callee wants LOGIN:PASSWORD[:EXTENSION], not %s", optarg);
            callees_given = true;
            break;
        case OPT_CALLEES:
            if (!parse_range(optarg, &O.callees)) return fail("--callees wants A-B: %s", optarg);
            callees_given = true;
            break;
        case 't':
            if (!*optarg || strlen(optarg) >= sizeof O.to || strpbrk(optarg, " <>\"@:;"))
                return fail("--to: not a number: %s", optarg);
            snprintf(O.to, sizeof O.to, "%s", optarg);
            break;
        case 'r':
            if (!parse_num(optarg, 0.01, 100000, &O.rate)) return fail("--rate: %s", optarg);
            break;
        case 'n':
            if (!parse_int(optarg, 0, 100000000, &O.max_calls)) return fail("--calls: %s", optarg);
            break;
        case 'T':
            if (!parse_num(optarg, 0, 86400, &O.duration_s)) return fail("--duration: %s", optarg);
            break;
        case 'm':
            if (!parse_int(optarg, 0, 1000000, &O.max_concurrent))
                return fail("--max-concurrent: %s", optarg);
            break;
        case OPT_HOLD:
            if (!parse_dist(optarg, &O.hold))
                return fail("--hold wants fixed:S, uniform:A,B, exp:MEAN[,MAX] or normal:MEAN,SD, "
                            "not %s",
                            optarg);
            break;
        case OPT_DTMF:
            if (strlen(optarg) >= sizeof O.dtmf ||
                strspn(optarg, "0123456789*#ABCD") != strlen(optarg))
                return fail("--dtmf: digits 0-9 * # A-D only: %s", optarg);
            snprintf(O.dtmf, sizeof O.dtmf, "%s", optarg);
            break;
        case OPT_DTMF_DELAY:
            if (!parse_int(optarg, 0, 600000, &O.dtmf_delay_ms))
                return fail("--dtmf-delay: %s", optarg);
            break;
        case OPT_SETUP:
            if (!parse_num(optarg, 0.1, 600, &O.setup_timeout_s))
                return fail("--setup-timeout: %s", optarg);
            break;
        case OPT_REG_RATE:
            if (!parse_num(optarg, 0.01, 100000, &O.reg_rate))
                return fail("--reg-rate: %s", optarg);
            break;
        case OPT_REG_EXP:
            if (!parse_int(optarg, 10, 86400, &O.reg_expires))
                return fail("--reg-expires: %s", optarg);
            break;
        case OPT_REFRESH:
            if (!parse_num(optarg, 0, 86400, &O.refresh_s)) return fail("--refresh: %s", optarg);
            break;
        case OPT_LOGIN:
            if (strlen(optarg) >= sizeof O.login_code ||
                strspn(optarg, "0123456789*#") != strlen(optarg))
                return fail("--login-code: digits * # only: %s", optarg);
            snprintf(O.login_code, sizeof O.login_code, "%s", optarg);
            break;
        case OPT_ANSWER_DELAY:
            if (!parse_int(optarg, 0, 600000, &O.answer_delay_ms))
                return fail("--answer-delay: %s", optarg);
            break;
        case OPT_CALLER_HZ:
            if (!parse_int(optarg, 100, 3900, &O.caller_hz)) return fail("--caller-hz: %s", optarg);
            break;
        case OPT_CALLEE_HZ:
            if (!parse_int(optarg, 100, 3900, &O.callee_hz)) return fail("--callee-hz: %s", optarg);
            break;
        case OPT_NO_TONE:
            O.expect_tone = false;
            break;
        case OPT_MIN_AUDIO:
            if (!parse_int(optarg, 0, 600000, &O.min_audio_ms))
                return fail("--min-audio-ms: %s", optarg);
            break;
        case OPT_LATE:
            if (!parse_int(optarg, 1, 10000, &O.late_ms)) return fail("--late-ms: %s", optarg);
            break;
        case OPT_THREADS:
            if (!parse_int(optarg, 1, 64, &O.rtp_threads)) return fail("--rtp-threads: %s", optarg);
            break;
        case OPT_REALTIME:
            O.realtime = true;
            break;
        case OPT_MAX_TIME:
            if (!parse_num(optarg, 1, 86400, &O.max_time_s)) return fail("--max-time: %s", optarg);
            break;
        case OPT_JSON:
            O.json = true;
            break;
        case 'v':
            O.verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) return fail("unexpected argument %s", argv[optind]);
    if (!loopback(O.server_ip) || !loopback(O.local_ip))
        return fail("%s",
                    "cwload sends to loopback only: --server and --local-ip must be 127.x.x.x");
    if (O.sc == SC_IVR && callees_given) O.have_callees = true;
    if (O.sc == SC_BRIDGE && O.caller_hz == O.callee_hz)
        return fail("%s", "--caller-hz and --callee-hz must differ to tell the parties apart");
    if (O.refresh_s < 0) O.refresh_s = O.sc == SC_REGISTER ? O.reg_expires / 2.0 : 0;
    if (O.sc == SC_REGISTER) O.have_callees = true;
    if (O.sc != SC_REGISTER && O.sc != SC_IVR && users_count(&O.callees) < 1)
        return fail("%s", "this scenario needs endpoints (--callee, --callees)");
    if (O.max_time_s <= 0) {
        /* registering, the calls, the longest hold and every timeout, with room */
        double regs = O.have_callees ? users_count(&O.callees) / O.reg_rate : 0;
        double hold = O.sc == SC_REGISTER ? 0 : dist_max(&O.hold);
        O.max_time_s = 2 * regs + O.duration_s + hold + 3 * O.setup_timeout_s + 30;
        if (O.login_code[0]) O.max_time_s += regs + 15;
    }

    audio_init();
    tone_table(O.caller_hz);
    tone_table(O.callee_hz);
    srandom((unsigned)(time(NULL) ^ getpid()));
    ST.load1 = load_average();

    pthread_t wd;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_create(&wd, &attr, watchdog, &O.max_time_s);
    pthread_attr_destroy(&attr);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* one socket a call */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rtp_engine_start(O.rtp_threads, O.late_ms, O.realtime)) {
        fprintf(stderr, "cwload: cannot start the RTP threads\n");
        return 2;
    }
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    int rc = sip_run();
    rtp_engine_stop();
    getrusage(RUSAGE_SELF, &r1);
    ST.cpu_s = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
               (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6 +
               (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
               (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
    if (rc) return rc;
    /* what the engine judged joins the failures */
    static const char *const who[2] = {"caller", "agent side"};
    for (int i = 0; i < 2; i++) {
        if (RT.role[i].no_audio) cause_add_n(RT.role[i].no_audio, "%s: heard no audio", who[i]);
        if (RT.role[i].no_tone)
            cause_add_n(RT.role[i].no_tone, "%s: did not hear the far end's tone", who[i]);
        ST.failed += RT.role[i].no_audio + RT.role[i].no_tone;
    }
    if (O.realtime && rtp_engine_realtime_refused())
        fprintf(stderr, "cwload: SCHED_FIFO refused; the RTP threads ran at normal priority\n");
    report_print(O.json);
    bool ok = ST.failed == 0 && ST.reg_failed == 0 && ST.refresh_failed == 0 && ST.ncauses == 0;
    if (O.sc != SC_REGISTER && ST.completed == 0) ok = false;
    if (O.sc == SC_REGISTER && ST.reg_ok == 0) ok = false;
    return ok ? 0 : 1;
}
