/*
 * sip.h - the SIP edge: sofia-sip nua on its own thread, plus the registrar,
 * authentication, trunks and BLF halves that run on the core thread.
 *
 * The edge turns SIP into calls on legs and back; it makes no routing
 * decisions. Everything in this header is called on the core thread, and
 * the handlers given to sip_set_handlers() are called on the core thread.
 * A leg is one SIP dialog (one side of a B2BUA call), named by sip_leg_id;
 * ids are never reused within a process.
 */
#ifndef CW_SIP_H
#define CW_SIP_H

#include <stdbool.h>
#include <stdint.h>

#include "sip/sdp.h"

typedef uint64_t sip_leg_id;

/* Why a leg failed or ended, as scripts see it. */
enum sip_cause {
    SIP_CAUSE_NONE = 0,
    SIP_CAUSE_NORMAL,      /* BYE after answer */
    SIP_CAUSE_BUSY,        /* 486, 600 */
    SIP_CAUSE_NO_ANSWER,   /* 480, 408, our ring timeout */
    SIP_CAUSE_REJECTED,    /* 603, 403 */
    SIP_CAUSE_NO_ROUTE,    /* 404, 484, 604, not registered */
    SIP_CAUSE_UNAVAILABLE, /* 503, 502, transport error */
    SIP_CAUSE_CANCELLED,   /* caller gave up before answer */
    SIP_CAUSE_MEDIA,       /* 488, no common codec */
    SIP_CAUSE_RTP_TIMEOUT,
    SIP_CAUSE_FAILED, /* anything else */
};
const char *sip_cause_name(enum sip_cause c); /* "busy", "no_answer", ... */
enum sip_cause sip_cause_from_status(int status);
int sip_status_from_cause(enum sip_cause c); /* for answering an inbound leg */

/* Who is on the far end of a leg, as authenticated by the edge. */
struct sip_party {
    int64_t domain_id; /* 0 when unknown */
    int64_t user_id;   /* > 0 for a registered device's user */
    int64_t trunk_id;  /* > 0 for a call from a trunk */
    char user[64];     /* URI user part (extension, number or login) */
    char host[128];    /* URI host (the tenant domain name for devices) */
    char display[128];
};

/*
 * A new inbound INVITE, already authenticated (devices by digest, trunks by
 * address). For a device, from.user is the user's extension (or login when
 * it has none) and from.host its domain; for a trunk, from.user is the
 * caller's number and to_user the number dialled (from To when the request
 * URI only names our registration). An offer without a codec in common
 * never gets here: the edge answers 488 itself.
 */
struct sip_incoming {
    sip_leg_id leg;
    struct sip_party from;
    char to_user[64]; /* request-URI user: what was dialled */
    char to_host[128];
    char call_id[128];
    bool has_offer;
    struct sdp_media offer;
    char replaces[256]; /* Replaces header (attended transfer), "" if none */
    char src_ip[64];
    int src_port;
};

enum sip_leg_event_type {
    SIP_EV_PROGRESS = 1, /* status 180/183; has_sdp with early media */
    SIP_EV_ANSWERED,     /* outbound leg got 200 (ACK sent) / inbound leg got ACK */
    SIP_EV_FAILED,       /* outbound leg got a final error, or timed out; cause */
    SIP_EV_ENDED,        /* BYE or CANCEL from the far end; cause */
    SIP_EV_HOLD,         /* far end put us on hold (re-INVITE/UPDATE), answered by the edge */
    SIP_EV_UNHOLD,       /* ... and took us off; sdp has the (maybe new) address */
    SIP_EV_REFER,        /* transfer request: refer_to, replaces; answer with sip_refer_result */
    SIP_EV_DTMF,         /* SIP INFO dtmf: digit, duration_ms */
    SIP_EV_MEDIA,        /* far end changed media without a hold change (answered by the
                            edge; sdp), or the answer to our sip_reoffer (status; sdp when 2xx) */
};

struct sip_leg_event {
    enum sip_leg_event_type type;
    sip_leg_id leg;
    int status;
    enum sip_cause cause;
    bool has_sdp;
    struct sdp_media sdp;
    char refer_to_user[64]; /* REFER: target user part */
    char refer_to_host[128];
    char replaces_call_id[128]; /* REFER with Replaces: the dialog to replace, */
    char replaces_to_tag[64];   /* its tag on our side */
    char replaces_from_tag[64]; /* and on the transferor's side (both always set) */
    char digit;
    int duration_ms;
};

struct sip_handlers {
    void (*incoming)(const struct sip_incoming *in, void *arg);
    void (*leg_event)(const struct sip_leg_event *ev, void *arg);
    void *arg;
};

struct sip_config {
    char listen[64];
    int port;     /* UDP and TCP */
    int tls_port; /* used when tls_dir is set */
    char tls_dir[512];
    char public_ip[64];
    char user_agent[64];
};

/* The configuration from the sip.* keys (core thread). */
void sip_config_from_settings(struct sip_config *cfg);
/*
 * Start the sofia thread and bind the listeners; CW_EIO when a port cannot
 * be bound. h may be NULL: until handlers are set, inbound calls are
 * answered 480 and outbound legs cannot be made.
 */
int sip_start(const struct sip_config *cfg, const struct sip_handlers *h);
/* Set or replace the call handlers (the call layer, once it is up). */
void sip_set_handlers(const struct sip_handlers *h);
/* Publish cw_registrations{domain} on /metrics. */
void sip_metrics_init(void);
/* Stop accepting, end dialogs with BYE, unregister trunks, join the thread. */
void sip_stop(void);

/* --- outbound legs --- */

enum sip_target_kind {
    SIP_TARGET_USER = 1, /* every registered contact of user_id (forked, first 200 wins) */
    SIP_TARGET_TRUNK,    /* request URI user@trunk host, via trunk_id with its credentials */
    SIP_TARGET_URI,      /* a literal SIP URI (tests, private routes) */
};

struct sip_invite {
    enum sip_target_kind kind;
    int64_t user_id;
    int64_t trunk_id;
    char uri[256];      /* SIP_TARGET_URI; or the number for SIP_TARGET_TRUNK */
    char from_user[64]; /* caller number shown */
    char from_display[128];
    char from_host[128]; /* tenant domain name */
    const char *sdp;     /* our offer (copied) */
    int timeout_s;       /* ring timeout: FAILED with SIP_CAUSE_NO_ANSWER after it */
    char headers[512];   /* extra header lines, "Name: value\r\n" each (e.g. Alert-Info) */
};

/*
 * Start an outbound leg; events come to the leg_event handler. 0 on error
 * (bad URI or headers, edge not running). A user with no registered
 * contact, an unknown trunk or a trunk without a free line still gets an
 * id: SIP_EV_FAILED (no_route / unavailable) follows from the loop.
 */
sip_leg_id sip_call(const struct sip_invite *inv);

/* Inbound leg: send a provisional (180/183) or final response. sdp may be
 * NULL, except with a 2xx. After a final error the leg is gone. */
int sip_respond(sip_leg_id leg, int status, const char *reason, const char *sdp);
/*
 * End a leg: BYE when answered, CANCEL for outbound ringing (sent once a
 * provisional response came, RFC 3261 9.1), and for inbound ringing the
 * response sip_status_from_cause(cause) (486 busy, 487 by default). The
 * leg is gone at once: no event follows.
 */
int sip_hangup(sip_leg_id leg, enum sip_cause cause);
/* Send a re-INVITE with a new offer (hold/unhold, media change). */
int sip_reoffer(sip_leg_id leg, const char *sdp);
/* After SIP_EV_REFER: tell the transferor how it went (NOTIFY with sipfrag). */
int sip_refer_result(sip_leg_id leg, int status);
/* The Call-ID of the leg's dialog (copy). */
int sip_leg_call_id(sip_leg_id leg, char *out, size_t len);
/*
 * The live, answered leg whose dialog is exactly this one: Call-ID, our tag
 * (local_tag) and the far end's (remote_tag), as Replaces names it for an
 * attended transfer; 0 = none.
 */
sip_leg_id sip_leg_by_dialog(const char *call_id, const char *local_tag, const char *remote_tag);

/* --- registrar (core thread, backed by the store) --- */

struct sip_contact {
    char uri[256];
    char user_agent[128];
    int64_t expires_at;
};
/* Registered contacts of a user; returns the count (0 = not registered). */
int sip_locate(int64_t user_id, struct sip_contact *out, int max);
bool sip_user_online(int64_t user_id);

/* Every live binding (of one domain, or all when domain_id is 0); returns the count. */
struct sip_registration {
    int64_t user_id;
    int64_t domain_id;
    char login[64];
    char extension[16];
    struct sip_contact contact;
    char source[96];   /* "ip:port" the REGISTER came from */
    char transport[8]; /* "udp", "tcp", "tls" */
};
int sip_registrations(int64_t domain_id, struct sip_registration *out, int max);

/* --- trunks and outbound lines (SIP trunk, SIP phone, GSM gateway, private route) --- */

enum sip_trunk_state {
    SIP_TRUNK_UNREGISTERED = 0, /* its registration was withdrawn (un-REGISTER sent) */
    SIP_TRUNK_REGISTERING,
    SIP_TRUNK_REGISTERED,
    SIP_TRUNK_FAILED,          /* reason says why; retried with back-off */
    SIP_TRUNK_NO_REGISTRATION, /* enabled, registration not configured */
    SIP_TRUNK_DISABLED,
};
const char *sip_trunk_state_name(enum sip_trunk_state s);

struct sip_trunk_status {
    int64_t trunk_id;
    enum sip_trunk_state state;
    char reason[128]; /* e.g. "403 Forbidden" */
    int64_t since;    /* when the state last changed */
    int64_t next_retry;
    int calls_in, calls_out;
};
int sip_trunk_status(int64_t trunk_id, struct sip_trunk_status *out);
/* Re-read the trunks table after a change; changed trunks re-register. */
void sip_trunks_reload(void);

/*
 * Outbound routing: the enabled trunks of the domain in priority order
 * (lowest number first) whose dial pattern (an extended regex; \d \w \s
 * allowed; default sip:8(\d{3}@.*)) matches "sip:<dialled>@<domain>", that
 * the caller may use (trunk limited to a group) and that have a free
 * outgoing line. number: capture group 1 (or the whole match) up to '@',
 * with strip_digits removed and the trunk's prefix added; caller_id: one of
 * the trunk's outgoing numbers at random, "" when it has none.
 * CW_ENOENT: no trunk matches; CW_EBUSY: every match is at its line limit.
 */
struct sip_route {
    int64_t trunk_id;
    char number[64];
    char caller_id[64];
};
int sip_route_outbound(int64_t domain_id, int64_t caller_user_id, const char *dialled,
                       struct sip_route *out);

/* --- BLF: the call layer tells the edge what a user's phone is doing --- */
enum sip_dialog_state { SIP_DLG_IDLE = 0, SIP_DLG_EARLY, SIP_DLG_CONFIRMED };
void sip_blf_update(int64_t user_id, enum sip_dialog_state st, const char *call_id, bool initiator);
/*
 * Things other than users that phones may watch (park slots): fn names the
 * resource of a domain by a non-zero id of its own, not a user's (negative),
 * or returns 0; sip_blf_update() with that id reports its state.
 */
void sip_blf_set_resources(int64_t (*fn)(int64_t domain_id, const char *name));

/* --- security: banned addresses --- */
struct sip_ban {
    char ip[64];
    int64_t until;
    int failures;
};
int sip_bans(struct sip_ban *out, int max);
int sip_ban_lift(const char *ip);

/* Register the SIP endpoints (trunks, registrations, bans) before http_start(). */
void sip_api_init(void);

#endif
