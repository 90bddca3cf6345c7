/*
 * httpc.c - a curl multi handle driven by the core libevent loop.
 *
 * curl tells us which sockets to watch (socket callback) and when to call
 * it back (timer callback); libevent events do the watching. Finished
 * transfers are collected after each curl_multi_socket_action() and their
 * callbacks run outside every curl callback, so a callback may start new
 * transfers.
 */
#include "net/httpc.h"
#include "base/cw.h"
#include "log/log.h"
#include "loop/loop.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_BODY   (8u << 20)

struct httpc_xfer {
    CURL *easy;
    void (*done)(CURL *easy, CURLcode rc, void *arg);
    void *arg;
    struct httpc_xfer *prev, *next;
};

struct httpc_req {
    httpc_xfer *x;
    CURL *easy;
    struct curl_slist *hdrs;
    httpc_done_fn done;
    void *arg;
    cw_buf body;
    size_t max_body;
    bool too_big;
    bool public_only;
    char refused[64]; /* the address refused by public_only */
    struct httpc_header *rh;
    int nrh, caprh;
    char errbuf[CURL_ERROR_SIZE];
};

struct sock {
    curl_socket_t fd;
    struct event *ev;
};

static struct {
    bool global;
    CURLM *multi;
    struct event *timer;
    httpc_xfer *xfers;
    int active;
} H;

static void check_done(void);

static void on_sock(evutil_socket_t fd, short what, void *arg)
{
    int flags = 0;
    if (what & EV_READ) flags |= CURL_CSELECT_IN;
    if (what & EV_WRITE) flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(H.multi, fd, flags, &running);
    check_done();
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    int running;
    curl_multi_socket_action(H.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done();
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            event_free(s->ev);
            free(s);
            curl_multi_assign(H.multi, fd, NULL);
        }
        return 0;
    }
    short kind = EV_PERSIST;
    if (what & CURL_POLL_IN) kind |= EV_READ;
    if (what & CURL_POLL_OUT) kind |= EV_WRITE;
    if (!s) {
        s = cw_calloc(1, sizeof *s);
        s->fd = fd;
        curl_multi_assign(H.multi, fd, s);
    } else {
        event_free(s->ev);
    }
    s->ev = event_new(loop_base(), fd, kind, on_sock, NULL);
    event_add(s->ev, NULL);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    if (timeout_ms < 0) {
        evtimer_del(H.timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(H.timer, &tv);
    return 0;
}

int httpc_init(void)
{
    if (!H.global) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return CW_EIO;
        H.global = true;
    }
    return CW_OK;
}

static int multi_up(void)
{
    if (H.multi) return CW_OK;
    if (httpc_init()) return CW_EIO;
    H.multi = curl_multi_init();
    if (!H.multi) return CW_EIO;
    H.timer = evtimer_new(loop_base(), on_timer, NULL);
    curl_multi_setopt(H.multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(H.multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    return CW_OK;
}

static void xfer_unlink(httpc_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        H.xfers = x->next;
    if (x->next) x->next->prev = x->prev;
    x->prev = x->next = NULL;
    H.active--;
}

httpc_xfer *httpc_perform(CURL *easy, void (*done)(CURL *easy, CURLcode rc, void *arg), void *arg)
{
    if (multi_up()) return NULL;
    httpc_xfer *x = cw_calloc(1, sizeof *x);
    x->easy = easy;
    x->done = done;
    x->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    if (curl_multi_add_handle(H.multi, easy) != CURLM_OK) {
        free(x);
        return NULL;
    }
    x->next = H.xfers;
    if (H.xfers) H.xfers->prev = x;
    H.xfers = x;
    H.active++;
    return x;
}

void httpc_perform_cancel(httpc_xfer *x)
{
    if (!x) return;
    curl_multi_remove_handle(H.multi, x->easy);
    xfer_unlink(x);
    free(x);
}

int httpc_active(void)
{
    return H.active;
}

static void check_done(void)
{
    /* collect first: a callback may start or cancel transfers */
    struct fin {
        httpc_xfer *x;
        CURLcode rc;
    } *fins = NULL;
    int n = 0, cap = 0;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(H.multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        httpc_xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (!x) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            fins = cw_realloc(fins, sizeof *fins * (size_t)cap);
        }
        fins[n].x = x;
        fins[n].rc = m->data.result;
        n++;
    }
    for (int i = 0; i < n; i++) {
        curl_multi_remove_handle(H.multi, fins[i].x->easy);
        xfer_unlink(fins[i].x);
    }
    for (int i = 0; i < n; i++) {
        httpc_xfer *x = fins[i].x;
        x->done(x->easy, fins[i].rc, x->arg);
        free(x);
    }
    free(fins);
}

/* ---- plain HTTP requests ---- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    httpc_req *r = arg;
    size_t len = size * n;
    if (r->body.len + len > r->max_body) {
        r->too_big = true;
        return 0;
    }
    cw_buf_append(&r->body, p, len);
    return len;
}

static void clear_headers(httpc_req *r)
{
    for (int i = 0; i < r->nrh; i++) {
        free(r->rh[i].name);
        free(r->rh[i].value);
    }
    r->nrh = 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    httpc_req *r = arg;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        clear_headers(r); /* a new response (redirect, 100 Continue) */
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || r->nrh >= 200) return len;
    size_t nlen = (size_t)(colon - p);
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    if (r->nrh == r->caprh) {
        r->caprh = r->caprh ? r->caprh * 2 : 16;
        r->rh = cw_realloc(r->rh, sizeof *r->rh * (size_t)r->caprh);
    }
    char *name = cw_strndup(p, nlen);
    for (char *q = name; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    r->rh[r->nrh].name = name;
    r->rh[r->nrh].value = cw_strndup(v, (size_t)(end - v));
    r->nrh++;
    return len;
}

/* Loopback, private, shared, link-local, multicast or reserved: not for tenants. */
static bool ip4_private(uint32_t a)
{
    return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 || (a >> 22) == (100u << 2 | 1) ||
           (a >> 16) == (169u << 8 | 254) || (a >> 20) == (172u << 4 | 1) ||
           (a >> 16) == (192u << 8 | 168) || (a >> 28) >= 14;
}

static bool addr_private(const struct sockaddr *sa, char *text, size_t len)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, text, (socklen_t)len);
        return ip4_private(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *b = in6->sin6_addr.s6_addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, text, (socklen_t)len);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) || IN6_IS_ADDR_V4COMPAT(&in6->sin6_addr))
            return ip4_private((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
                               (uint32_t)b[14] << 8 | b[15]);
        return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr) || IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
               (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || b[0] == 0xff;
    }
    snprintf(text, len, "(family %d)", sa->sa_family);
    return true;
}

/* Every connection curl opens for the request, redirects included, comes here first. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    httpc_req *r = arg;
    char text[64];
    if (r->public_only && addr_private(&a->addr, text, sizeof text)) {
        cw_strlcpy(r->refused, text, sizeof r->refused);
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static void req_free(httpc_req *r)
{
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    cw_buf_free(&r->body);
    clear_headers(r);
    free(r->rh);
    free(r);
}

static void req_done(CURL *easy, CURLcode rc, void *arg)
{
    httpc_req *r = arg;
    r->x = NULL;
    struct httpc_response res = {0};
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &res.status);
    double secs = 0;
    curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME, &secs);
    res.total_ms = secs * 1000;
    char err[CURL_ERROR_SIZE + 64];
    if (r->too_big) {
        snprintf(err, sizeof err, "response body larger than %zu bytes", r->max_body);
        res.error = err;
    } else if (r->refused[0]) {
        snprintf(err, sizeof err, "%s is a loopback or private address: not allowed here",
                 r->refused);
        res.error = err;
    } else if (rc != CURLE_OK) {
        snprintf(err, sizeof err, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
        res.error = err;
    }
    if (res.error) res.status = 0;
    res.headers = r->rh;
    res.nheaders = r->nrh;
    res.body = r->body.data ? r->body.data : "";
    res.body_len = r->body.len;
    r->done(&res, r->arg);
    req_free(r);
}

static bool token_ok(const char *s, size_t maxlen)
{
    size_t n = strlen(s);
    if (n == 0 || n > maxlen) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s)) return false;
    return true;
}

httpc_req *httpc_start(const struct httpc_opts *o, httpc_done_fn done, void *arg, char *err,
                       size_t errlen)
{
    if (!o->url ||
        (strncasecmp(o->url, "http://", 7) != 0 && strncasecmp(o->url, "https://", 8) != 0)) {
        snprintf(err, errlen, "url must start with http:// or https://");
        return NULL;
    }
    if (strpbrk(o->url, " \r\n\t")) {
        snprintf(err, errlen, "url contains white space");
        return NULL;
    }
    const char *method = o->method ? o->method : (o->body ? "POST" : "GET");
    if (!token_ok(method, 16)) {
        snprintf(err, errlen, "bad method \"%s\"", method);
        return NULL;
    }
    for (int i = 0; i < o->nheaders; i++) {
        const char *h = o->headers[i];
        const char *colon = strchr(h, ':');
        char name[128];
        if (!colon || (size_t)(colon - h) >= sizeof name) {
            snprintf(err, errlen, "bad header line");
            return NULL;
        }
        snprintf(name, sizeof name, "%.*s", (int)(colon - h), h);
        if (!token_ok(name, sizeof name - 1) || strpbrk(colon, "\r\n")) {
            snprintf(err, errlen, "bad header \"%s\"", name);
            return NULL;
        }
    }
    if (multi_up()) {
        snprintf(err, errlen, "HTTP client not available");
        return NULL;
    }
    httpc_req *r = cw_calloc(1, sizeof *r);
    r->done = done;
    r->arg = arg;
    r->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
    r->public_only = o->public_only;
    cw_buf_init(&r->body);
    CURL *e = r->easy = curl_easy_init();
    if (!e) {
        free(r);
        snprintf(err, errlen, "HTTP client not available");
        return NULL;
    }
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    long timeout = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout < 10000 ? timeout : 10000L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "callwright/" CW_VERSION);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
    if (r->public_only) {
        /* a pooled connection would skip the address check: always a fresh one */
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (o->body || strcmp(method, "POST") == 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
            curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body ? (const char *)o->body : "");
        }
    }
    if (o->body && strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, (const char *)o->body);
    }
    r->hdrs = curl_slist_append(NULL, "Expect:");
    for (int i = 0; i < o->nheaders; i++)
        r->hdrs = curl_slist_append(r->hdrs, o->headers[i]);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    r->x = httpc_perform(e, req_done, r);
    if (!r->x) {
        req_free(r);
        snprintf(err, errlen, "HTTP client not available");
        return NULL;
    }
    return r;
}

void httpc_cancel(httpc_req *r)
{
    if (!r) return;
    httpc_perform_cancel(r->x);
    req_free(r);
}

void httpc_shutdown(void)
{
    while (H.xfers) {
        httpc_xfer *x = H.xfers;
        curl_multi_remove_handle(H.multi, x->easy);
        xfer_unlink(x);
        /* plain requests are ours to free; perform() handles belong to their caller */
        if (x->done == req_done) {
            httpc_req *r = x->arg;
            r->x = NULL;
            req_free(r);
        }
        free(x);
    }
    if (H.timer) event_free(H.timer);
    H.timer = NULL;
    if (H.multi) curl_multi_cleanup(H.multi);
    H.multi = NULL;
    if (H.global) curl_global_cleanup();
    H.global = false;
}
