/*
 * metrics - the Prometheus endpoint of Callwright: GET /metrics.
 *
 * Serves the daemon's metrics registry (calls, registrations, queues,
 * agents, HTTP requests, events, loop lag, Lua VMs) in the Prometheus text
 * format, and adds the usual process figures read from /proc at scrape
 * time. Public unless metrics.public is false (then a sysadmin session or
 * API token is needed). Uses only the plugin ABI.
 */
#include <callwright/plugin.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cw_host *H;
static struct metric *scrapes, *cpu, *rss, *vsize, *fds, *start_time, *build;

/* Fields of /proc/self/stat after the command name (which may hold spaces). */
static int self_stat(unsigned long long *utime, unsigned long long *stime,
                     unsigned long long *start, unsigned long long *vsz, long long *rss_pages)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p) return -1;
    /* state is field 3; utime 14, stime 15, starttime 22, vsize 23, rss 24 */
    int got = sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                     "%*d %llu %llu %lld",
                     utime, stime, start, vsz, rss_pages);
    return got == 5 ? 0 : -1;
}

static long long boot_time(void)
{
    char line[256];
    long long bt = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &bt) == 1) break;
    fclose(f);
    return bt;
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory stream's own */
}

static void collect_process(void *arg)
{
    unsigned long long ut, st, start, vsz;
    long long pages;
    double hz = (double)sysconf(_SC_CLK_TCK);
    if (self_stat(&ut, &st, &start, &vsz, &pages) == 0) {
        H->metric_set(cpu, (double)(ut + st) / hz, NULL);
        H->metric_set(rss, (double)pages * (double)sysconf(_SC_PAGESIZE), NULL);
        H->metric_set(vsize, (double)vsz, NULL);
        H->metric_set(start_time, (double)boot_time() + (double)start / hz, NULL);
    }
    int n = open_fds();
    if (n >= 0) H->metric_set(fds, n, NULL);
}

static void serve(struct http_req *req)
{
    H->metric_add(scrapes, 1, NULL);
    size_t len;
    char *text = H->metrics_render(&len);
    H->http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    H->free(text);
}

static int init(const struct cw_host *host)
{
    H = host;
    bool public_ = true;
    host->config_bool("metrics.public", &public_);
    scrapes = host->metric_counter("cw_metrics_scrapes_total", "Scrapes of /metrics", NULL);
    cpu = host->metric_counter("process_cpu_seconds_total", "User and system CPU time", NULL);
    rss = host->metric_gauge("process_resident_memory_bytes", "Resident memory", NULL);
    vsize = host->metric_gauge("process_virtual_memory_bytes", "Virtual memory", NULL);
    fds = host->metric_gauge("process_open_fds", "Open file descriptors", NULL);
    start_time = host->metric_gauge("process_start_time_seconds",
                                    "Start time of the process since the epoch", NULL);
    build = host->metric_gauge("cw_build_info", "Callwright version", "version");
    if (!scrapes || !cpu || !rss || !vsize || !fds || !start_time || !build) return -1;
    const char *v[] = {host->version};
    host->metric_set(build, 1, v);
    host->metrics_on_collect(collect_process, NULL);
    if (host->http_route("GET", "/metrics", serve, public_ ? "public" : "sysadmin",
                         "Prometheus metrics of the daemon") != 0)
        return -1;
    return 0;
}

CW_PLUGIN_DEFINE(.name = "metrics", .version = "1.0", .description = "Prometheus /metrics endpoint",
                 .init = init);
