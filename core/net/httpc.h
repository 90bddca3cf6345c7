/*
 * httpc.h - outbound HTTP (and any other libcurl transfer) on the core loop.
 *
 * One curl multi handle driven by libevent: curl's sockets and its timer are
 * events on loop_base(), so a request never blocks the core thread. Results
 * arrive through a callback on the core thread, never from inside the call
 * that started the request. Core thread only.
 */
#ifndef CW_HTTPC_H
#define CW_HTTPC_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct httpc_req httpc_req;

struct httpc_header {
    char *name; /* lower case */
    char *value;
};

struct httpc_response {
    long status;       /* 0 when no response arrived */
    const char *error; /* NULL on a complete response (any status), else why it failed */
    const struct httpc_header *headers; /* of the final response (after redirects) */
    int nheaders;
    const char *body; /* NUL-terminated for convenience; may contain zero bytes */
    size_t body_len;
    double total_ms;
};

/* Called once on the core thread; res and everything in it is valid only during the call. */
typedef void (*httpc_done_fn)(const struct httpc_response *res, void *arg);

struct httpc_opts {
    const char *method;         /* NULL = GET, or POST when there is a body */
    const char *url;            /* http:// or https:// only */
    const char *const *headers; /* "Name: value" lines */
    int nheaders;
    const void *body;
    size_t body_len;
    long timeout_ms; /* whole transfer; 0 = 30000 */
    size_t max_body; /* larger responses fail; 0 = 8 MiB */
    /* refuse loopback, private, link-local and multicast addresses (checked on
       every connection, redirects included) */
    bool public_only;
};

/* Set up libcurl (once, before other threads start); idempotent. */
int httpc_init(void);
/* Cancel every transfer (their callbacks are not called) and free the multi handle. */
void httpc_shutdown(void);

/*
 * Start a request. Returns NULL with a message in err for input that cannot
 * be sent (bad URL scheme, method, header); then done is never called.
 */
httpc_req *httpc_start(const struct httpc_opts *o, httpc_done_fn done, void *arg, char *err,
                       size_t errlen);
/* Drop a request in flight; its callback is not called. */
void httpc_cancel(httpc_req *r);

/*
 * Run any prepared easy handle (SMTP mail, uploads) on the loop. done gets
 * the handle and curl's result; the caller cleans the handle up after.
 * Returns NULL if curl refused the handle.
 */
typedef struct httpc_xfer httpc_xfer;
httpc_xfer *httpc_perform(CURL *easy, void (*done)(CURL *easy, CURLcode rc, void *arg), void *arg);
/* Cancel a transfer started with httpc_perform (callback not called; the handle is the caller's).
 */
void httpc_perform_cancel(httpc_xfer *x);

/* Transfers in flight (metrics, tests). */
int httpc_active(void);

#endif
