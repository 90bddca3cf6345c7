/*
 * sse.c - GET /api/v1/events: the event bus as Server-Sent Events.
 *
 * One bus subscription fans out to every connected client, filtered by the
 * client's tenant and role (see may_see()). A client resuming with
 * Last-Event-ID (header, or ?last_event_id= for the first connect) first
 * gets the kept events after that id. A comment line every
 * http.sse_heartbeat seconds keeps proxies and dead peers honest.
 * Core thread only.
 */
#include "base/cw.h"
#include "config/config.h"
#include "events/events.h"
#include "http/http.h"
#include "http/http_int.h"
#include "log/log.h"
#include "loop/loop.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PREFIXES 8
#define MAX_REACH    4096

struct client {
    struct client *next;
    http_req *req;
    struct auth_ctx auth;
    char *prefixes[MAX_PREFIXES];
    int nprefixes;
    int64_t *reach; /* pool admins: the domain ids they may see */
    int nreach;
    bool dead;
};

static struct {
    struct client *clients;
    int sub;
    struct event *heartbeat;
    int count;
    int busy; /* > 0 while walking the client list */
} S;

static void load_reach(struct client *c)
{
    free(c->reach);
    c->reach = NULL;
    c->nreach = 0;
    if (c->auth.role != ROLE_POOL_SUPERVISOR && c->auth.role != ROLE_SUBGROUP_ADMIN) return;
    char cond[256];
    store_arg args[4];
    int n = 0;
    http_domain_reach_sql(&c->auth, "id", cond, sizeof cond, args, &n);
    char *sql = cw_sprintf("SELECT id FROM domains WHERE %s ORDER BY id", cond);
    store_res *r;
    if (store_queryv(store_main(), &r, sql, args, n) >= 0) {
        c->reach = cw_calloc((size_t)store_nrows(r) + 1, sizeof(int64_t));
        while (store_next(r) && c->nreach < MAX_REACH)
            c->reach[c->nreach++] = store_int(r, 0);
        store_res_free(r);
    }
    free(sql);
}

static bool about_user(const cw_event *ev, int64_t user_id)
{
    static const char *const keys[] = {"user_id", "agent_id"};
    for (size_t i = 0; i < CW_ARRAY_LEN(keys); i++) {
        json_t *v = json_object_get(ev->data, keys[i]);
        if (json_is_integer(v) && json_integer_value(v) == user_id) return true;
    }
    json_t *ids = json_object_get(ev->data, "user_ids");
    size_t i;
    json_t *v;
    json_array_foreach(ids, i,
                       v) if (json_is_integer(v) && json_integer_value(v) == user_id) return true;
    return false;
}

/*
 * sysadmin: every event. Pool admins: events of the domains they reach.
 * Domain admins and supervisors: every event of their domain. Operators:
 * events of their domain about themselves (data.user_id, data.agent_id or
 * data.user_ids) and queue.* events. Subscribers: events about themselves.
 */
static bool may_see(const struct client *c, const cw_event *ev)
{
    const struct auth_ctx *a = &c->auth;
    switch (a->role) {
    case ROLE_SYSADMIN:
        return true;
    case ROLE_POOL_SUPERVISOR:
    case ROLE_SUBGROUP_ADMIN:
        for (int i = 0; i < c->nreach; i++)
            if (c->reach[i] == ev->domain_id) return true;
        return false;
    case ROLE_DOMAIN_ADMIN:
    case ROLE_SUPERVISOR:
        return ev->domain_id == a->domain_id;
    case ROLE_OPERATOR:
        if (ev->domain_id != a->domain_id) return false;
        return cw_str_has_prefix(ev->type, "queue.") || about_user(ev, a->user_id);
    case ROLE_SUBSCRIBER:
        return ev->domain_id == a->domain_id && about_user(ev, a->user_id);
    case ROLE_NONE:
        return false;
    }
    return false;
}

static bool wanted(const struct client *c, const cw_event *ev)
{
    if (!c->nprefixes) return true;
    for (int i = 0; i < c->nprefixes; i++)
        if (cw_str_has_prefix(ev->type, c->prefixes[i])) return true;
    return false;
}

static void client_free(struct client *c)
{
    for (int i = 0; i < c->nprefixes; i++)
        free(c->prefixes[i]);
    free(c->reach);
    free(c);
}

static void reap(void)
{
    if (S.busy) return;
    struct client **pp = &S.clients;
    while (*pp) {
        struct client *c = *pp;
        if (c->dead) {
            *pp = c->next;
            client_free(c);
            S.count--;
        } else {
            pp = &c->next;
        }
    }
}

static void client_send(struct client *c, const char *data, size_t len)
{
    if (c->dead) return;
    if (http_stream_send(c->req, data, len) != CW_OK) {
        c->dead = true;
        http_stream_end(c->req);
    }
}

static void send_event(const cw_event *ev, void *arg)
{
    struct client *c = arg;
    if (c->dead || !wanted(c, ev) || !may_see(c, ev)) return;
    json_t *j = events_to_json(ev);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    char *frame = cw_sprintf("id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)ev->id,
                             ev->type, s ? s : "{}");
    client_send(c, frame, strlen(frame));
    free(frame);
    free(s);
}

static void on_event(const cw_event *ev, void *arg)
{
    bool tenancy = cw_str_has_prefix(ev->type, "config.domain.") ||
                   cw_str_has_prefix(ev->type, "config.subgroup.") ||
                   cw_str_has_prefix(ev->type, "config.pool_admin.");
    S.busy++;
    for (struct client *c = S.clients; c; c = c->next) {
        if (tenancy && !c->dead) load_reach(c);
        send_event(ev, c);
    }
    S.busy--;
    reap();
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    static const char ping[] = ": ping\n\n";
    S.busy++;
    for (struct client *c = S.clients; c; c = c->next)
        client_send(c, ping, sizeof ping - 1);
    S.busy--;
    reap();
}

static void on_client_gone(http_req *req, void *arg)
{
    struct client *c = arg;
    c->dead = true; /* the request is already gone; reaped on the next pass */
    log_debug("http", "event stream client %s went away", c->auth.login);
    reap();
}

static void events_stream(http_req *req)
{
    static const char *const allowed[] = {"types", "last_event_id", NULL};
    if (!http_query_only(req, allowed)) return;
    const char *last = http_header(req, "Last-Event-ID");
    if (!last) last = http_query(req, "last_event_id");
    int64_t after = -1;
    if (last && (cw_parse_i64(last, &after) || after < 0)) {
        http_reply_error(req, 400, "invalid_parameter", "last_event_id",
                         "Last-Event-ID must be a non-negative integer");
        return;
    }
    struct client *c = cw_calloc(1, sizeof *c);
    c->req = req;
    c->auth = *req->auth;
    const char *types = http_query(req, "types");
    if (types) {
        char *copy = cw_strdup(types);
        for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && c->nprefixes < MAX_PREFIXES;
             t = strtok_r(NULL, ",", &save))
            c->prefixes[c->nprefixes++] = cw_strdup(t);
        free(copy);
    }
    load_reach(c);
    http_stream_start(req, "text/event-stream", on_client_gone, c);
    c->next = S.clients;
    S.clients = c;
    S.count++;
    static const char hello[] = "retry: 3000\n: connected\n\n";
    S.busy++;
    client_send(c, hello, sizeof hello - 1);
    if (after >= 0) events_replay((uint64_t)after, send_event, c);
    S.busy--;
    reap();
}

void http_sse_init(void)
{
    http_route("GET", "/api/v1/events", events_stream, ROLE_SUBSCRIBER, HTTP_STREAM,
               "Server-Sent Events of the event bus, filtered by tenant and role "
               "(types=prefix,...; Last-Event-ID resumes)");
    if (!S.sub) S.sub = events_subscribe("", on_event, NULL);
    if (!S.heartbeat && loop_base()) {
        S.heartbeat = event_new(loop_base(), -1, EV_PERSIST, on_heartbeat, NULL);
        int64_t s = config_int("http.sse_heartbeat");
        struct timeval tv = {s > 0 ? s : 15, 0};
        event_add(S.heartbeat, &tv);
    }
}

void http_sse_shutdown(void)
{
    S.busy++;
    for (struct client *c = S.clients; c; c = c->next) {
        if (c->dead) continue;
        c->dead = true;
        http_stream_end(c->req);
    }
    S.busy--;
    reap();
    if (S.sub) events_unsubscribe(S.sub);
    S.sub = 0;
    if (S.heartbeat) event_free(S.heartbeat);
    S.heartbeat = NULL;
}

int http_sse_clients(void)
{
    return S.count;
}
