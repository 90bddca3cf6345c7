/*
 * bans.c - failed authentications per source address, and bans (core
 * thread).
 *
 * sip.ban_failures failures from one IP within sip.ban_window seconds ban
 * it for sip.ban_time seconds: the sofia thread gets a copy of the ban and
 * ignores the address's requests without answering. Bans are logged,
 * emitted as sip.banned / sip.unbanned, listed by sip_bans() and lifted by
 * sip_ban_lift() (an admin, through the API). Owns the address table.
 */
#include "base/cw.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "loop/loop.h"
#include "sip/sip_int.h"

#include <stdlib.h>
#include <string.h>

#define BUCKETS   1024
#define MAX_TIMES 64 /* failure times kept per address */

struct addr {
    struct addr *next;
    char ip[64];
    int64_t times[MAX_TIMES]; /* failure times, oldest first */
    int ntimes;
    int total;     /* failures that led to the current ban */
    int64_t until; /* banned until (wall clock), 0 = not banned */
    char last_why[64];
};

static struct {
    struct addr *b[BUCKETS];
    struct event *sweep;
} B;

static unsigned bucket(const char *ip)
{
    unsigned h = 2166136261u;
    for (const char *p = ip; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % BUCKETS;
}

static struct addr *find(const char *ip, bool create)
{
    unsigned k = bucket(ip);
    for (struct addr *a = B.b[k]; a; a = a->next)
        if (!strcmp(a->ip, ip)) return a;
    if (!create) return NULL;
    struct addr *a = cw_calloc(1, sizeof *a);
    cw_strlcpy(a->ip, ip, sizeof a->ip);
    a->next = B.b[k];
    B.b[k] = a;
    return a;
}

static void tell_stack(const char *ip, bool ban)
{
    struct cmd_ban *c = cw_calloc(1, sizeof *c);
    c->m.type = ban ? CMD_BAN : CMD_UNBAN;
    cw_strlcpy(c->ip, ip, sizeof c->ip);
    edge_command(&c->m);
}

bool bans_is_banned(const char *ip)
{
    struct addr *a = find(ip, false);
    return a && a->until > cw_wall_time();
}

bool bans_failure(const char *ip, const char *why)
{
    if (!ip[0]) return false;
    int64_t now = cw_wall_time();
    int64_t window = config_int("sip.ban_window");
    int limit = (int)CW_MIN(config_int("sip.ban_failures"), MAX_TIMES);
    struct addr *a = find(ip, true);
    cw_strlcpy(a->last_why, why, sizeof a->last_why);
    if (a->until > now) return true;
    /* forget failures older than the window */
    int keep = 0;
    for (int i = 0; i < a->ntimes; i++)
        if (a->times[i] > now - window) a->times[keep++] = a->times[i];
    a->ntimes = keep;
    if (a->ntimes == MAX_TIMES) {
        memmove(a->times, a->times + 1, sizeof a->times[0] * (MAX_TIMES - 1));
        a->ntimes--;
    }
    a->times[a->ntimes++] = now;
    if (limit <= 0 || a->ntimes < limit) return false;

    int64_t ban_time = config_int("sip.ban_time");
    a->until = now + ban_time;
    a->total = a->ntimes;
    a->ntimes = 0;
    log_warn("sip", "banned %s for %lld s: %d failed authentications within %lld s (last: %s)", ip,
             (long long)ban_time, a->total, (long long)window, why);
    tell_stack(ip, true);
    events_emit("sip.banned", 0,
                json_pack("{ss sI si ss}", "ip", ip, "until", (json_int_t)a->until, "failures",
                          a->total, "reason", why));
    return true;
}

static void unban(struct addr *a, const char *how)
{
    a->until = 0;
    a->ntimes = 0;
    a->total = 0;
    tell_stack(a->ip, false);
    log_info("sip", "ban on %s %s", a->ip, how);
    events_emit("sip.unbanned", 0, json_pack("{ss ss}", "ip", a->ip, "how", how));
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = cw_wall_time();
    int64_t window = config_int("sip.ban_window");
    for (int i = 0; i < BUCKETS; i++) {
        struct addr **pp = &B.b[i];
        while (*pp) {
            struct addr *a = *pp;
            if (a->until && a->until <= now) unban(a, "expired");
            bool recent = a->ntimes && a->times[a->ntimes - 1] > now - window;
            if (!a->until && !recent) {
                *pp = a->next;
                free(a);
                continue;
            }
            pp = &a->next;
        }
    }
}

int sip_bans(struct sip_ban *out, int max)
{
    int64_t now = cw_wall_time();
    int n = 0;
    for (int i = 0; i < BUCKETS && n < max; i++)
        for (struct addr *a = B.b[i]; a && n < max; a = a->next)
            if (a->until > now) {
                cw_strlcpy(out[n].ip, a->ip, sizeof out[n].ip);
                out[n].until = a->until;
                out[n].failures = a->total;
                n++;
            }
    return n;
}

int sip_ban_lift(const char *ip)
{
    struct addr *a = ip ? find(ip, false) : NULL;
    if (!a || a->until <= cw_wall_time()) return CW_ENOENT;
    unban(a, "lifted");
    return CW_OK;
}

void bans_init(void)
{
    memset(&B, 0, sizeof B);
    B.sweep = event_new(loop_base(), -1, EV_PERSIST, on_sweep, NULL);
    static const struct timeval tv = {1, 0};
    event_add(B.sweep, &tv);
}

void bans_shutdown(void)
{
    if (B.sweep) event_free(B.sweep);
    for (int i = 0; i < BUCKETS; i++)
        while (B.b[i]) {
            struct addr *n = B.b[i]->next;
            free(B.b[i]);
            B.b[i] = n;
        }
    memset(&B, 0, sizeof B);
}
