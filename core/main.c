/*
 * main.c - the callwright daemon: parse the command line, load the
 * configuration, open the store, start the edges and run the core loop.
 *
 * SIGTERM/SIGINT: graceful stop (stop accepting, flush writes, exit 0).
 * SIGHUP: reload configuration that can change live, and scripts.
 */
#include "acd/acd.h"
#include "auth/auth.h"
#include "base/cw.h"
#include "call/call.h"
#include "cdr/cdr.h"
#include "config/config.h"
#include "domain/domain.h"
#include "events/events.h"
#include "http/http.h"
#include "log/log.h"
#include "loop/loop.h"
#include "loop/work.h"
#include "lua/script.h"
#include "mail/mail.h"
#include "media/media.h"
#include "metrics/metrics.h"
#include "net/httpc.h"
#include "plugin/plugin.h"
#include "recording/recording.h"
#include "route/route.h"
#include "sip/sip.h"
#include "store/store.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: callwright [--config FILE] [--set key=value]... [--help-config[=FORMAT]]\n"
            "  --config FILE   configuration file (default etc/callwright.lua)\n"
            "  --set key=value override one configuration key (repeatable)\n"
            "  --help-config   print every configuration key with its default\n"
            "                  (=markdown: the table of the README; =lua: a\n"
            "                  configuration file documenting every key)\n"
            "  --version       print the version\n");
}

static int apply_clock(void)
{
    int64_t off;
    if (cw_parse_i64(config_str("clock.offset"), &off)) {
        fprintf(stderr, "callwright: clock.offset must be a whole number of seconds\n");
        return CW_EINVAL;
    }
    cw_clock_set_offset(off);
    return CW_OK;
}

static int apply_logging(void)
{
    if (log_open(config_str("log.file"))) {
        fprintf(stderr, "callwright: cannot open log file %s\n", config_str("log.file"));
        return CW_EIO;
    }
    if (log_set_level(config_str("log.level")) || log_set_levels(config_str("log.levels"))) {
        fprintf(stderr, "callwright: bad log.level or log.levels\n");
        return CW_EINVAL;
    }
    return CW_OK;
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    log_info("core", "signal %d: stopping", (int)sig);
    loop_stop();
}

static void on_end_reads(evutil_socket_t fd, short what, void *arg)
{
    store_end_reads(arg);
}

static void arm_end_reads(void *arg)
{
    event_active(arg, EV_TIMEOUT, 0);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    char err[512];
    if (config_reload(err, sizeof err)) {
        log_error("core", "reload refused, keeping the running configuration: %s", err);
        return;
    }
    apply_logging();
    apply_clock();
    log_reopen();
    if (script_reload())
        log_error("core", "scripts not reloaded: the running ones are kept (see errors above)");
    log_info("core", "configuration reloaded");
    events_emit("config.reloaded", 0, NULL);
}

static void media_config_from(struct media_config *m)
{
    memset(m, 0, sizeof *m);
    m->workers = (int)config_int("media.workers");
    m->rtp_min = (int)config_int("media.rtp_min");
    m->rtp_max = (int)config_int("media.rtp_max");
    const char *ip = config_str("media.ip");
    if (!*ip) ip = config_str("sip.public_ip");
    if (!*ip || !strcmp(ip, "0.0.0.0")) ip = config_str("sip.listen");
    cw_strlcpy(m->ip, strcmp(ip, "0.0.0.0") ? ip : "0.0.0.0", sizeof m->ip);
    m->rtp_timeout_s = (int)config_int("media.rtp_timeout");
    cw_strlcpy(m->sounds_dir, config_str("sounds_dir"), sizeof m->sounds_dir);
    cw_strlcpy(m->var_dir, config_str("var_dir"), sizeof m->var_dir);
    cw_strlcpy(m->tone_locale, config_str("media.tone_locale"), sizeof m->tone_locale);
    m->realtime = config_bool("media.realtime");
    m->max_sessions = (int)config_int("media.max_sessions");
}

/* Start order: the domain layers register their routes and Lua modules
 * first, then the VMs, then the edges that bring outside traffic in. */
static int start_subsystems(void)
{
    struct media_config mc;
    struct sip_config sc;
    /* worker pool for password hashing, files and mail */
    work_init(2);
    metrics_init(); /* before anyone declares or collects metrics */
    mail_init();
    if (config_bool("demo") && domain_demo_ensure()) {
        log_error("core", "cannot create the demo tenant");
        return CW_EIO;
    }
    auth_api_init();
    domain_api_init();
    sip_api_init();
    if (cdr_init() || call_init() || acd_init()) return CW_EIO;
    sip_metrics_init();
    route_init();
    recording_init();
    /* plugins before the VMs and the HTTP edge: they add Lua modules and routes */
    httpc_init();
    plugins_load_config();
    if (script_init()) {
        log_error("core", "the system scripts failed to start");
        return CW_EIO;
    }
    media_config_from(&mc);
    if (media_init(&mc, call_on_media_event, NULL)) {
        log_error("core", "media engine failed to start");
        return CW_EIO;
    }
    sip_config_from_settings(&sc);
    if (sip_start(&sc, call_sip_handlers())) {
        log_error("core", "SIP failed to start on %s:%d", sc.listen, sc.port);
        return CW_EIO;
    }
    if (http_start()) {
        log_error("core", "HTTP failed to start on %s:%lld", config_str("http.listen"),
                  (long long)config_int("http.port"));
        return CW_EIO;
    }
    return CW_OK;
}

/* Graceful stop: refuse new work, end calls (their CDRs are written), stop
 * the edges and workers, flush what is buffered. */
static void stop_subsystems(void)
{
    http_stop();
    call_shutdown();
    sip_stop();
    media_shutdown();
    acd_shutdown();
    recording_shutdown();
    cdr_shutdown();
    script_shutdown();
    plugins_shutdown();
    metrics_shutdown();
    httpc_shutdown();
    work_shutdown();
    mail_shutdown();
}

int main(int argc, char **argv)
{
    const char *config_path = "etc/callwright.lua";
    bool config_given = false;
    const char **sets = cw_calloc((size_t)argc, sizeof(char *));
    int nsets = 0;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
        {"help-config", optional_argument, NULL, 'H'},  {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:s:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            config_given = true;
            break;
        case 's': sets[nsets++] = optarg; break;
        case 'H':
            if (optarg && strcmp(optarg, "markdown") && strcmp(optarg, "lua")) {
                usage(stderr);
                free(sets);
                return 2;
            }
            config_print_reference(stdout, !optarg                       ? CONFIG_REF_TEXT
                                           : !strcmp(optarg, "markdown") ? CONFIG_REF_MARKDOWN
                                                                         : CONFIG_REF_LUA);
            free(sets);
            return 0;
        case 'V': printf("callwright %s\n", CW_VERSION); free(sets); return 0;
        case 'h': usage(stdout); free(sets); return 0;
        default: usage(stderr); free(sets); return 2;
        }
    }
    struct stat sb;
    if (!config_given && stat(config_path, &sb) != 0) config_path = NULL;
    char err[512];
    if (config_load(config_path, sets, nsets, err, sizeof err)) {
        fprintf(stderr, "callwright: configuration: %s\n", err);
        return 2;
    }
    free(sets);
    if (apply_logging() || apply_clock()) return 2;
    signal(SIGPIPE, SIG_IGN);

    mkdir(config_str("var_dir"), 0750);
    store *st;
    if (store_open(config_str("db"), &st, err, sizeof err)) {
        log_error("core", "store: %s", err);
        return 1;
    }
    store_set_main(st);
    if (loop_init()) return 1;
    /* the reads of one loop turn share a transaction, ended before the loop waits */
    struct event *end_reads = event_new(loop_base(), -1, 0, on_end_reads, st);
    store_share_reads(st, arm_end_reads, end_reads);

    struct event *sigterm = evsignal_new(loop_base(), SIGTERM, on_term, NULL);
    struct event *sigint = evsignal_new(loop_base(), SIGINT, on_term, NULL);
    struct event *sighup = evsignal_new(loop_base(), SIGHUP, on_hup, NULL);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_add(sighup, NULL);

    if (start_subsystems()) return 1;
    log_info("core", "callwright %s started (store schema %d)", CW_VERSION,
             store_schema_version(st));
    loop_run();

    log_info("core", "stopping: no new requests or calls");
    stop_subsystems();
    log_info("core", "stopped");
    store_share_reads(st, NULL, NULL);
    event_free(end_reads);
    event_free(sigterm);
    event_free(sigint);
    event_free(sighup);
    events_shutdown();
    loop_free();
    store_close(st);
    config_free();
    log_close();
    return 0;
}
