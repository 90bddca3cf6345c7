/*
 * sip_int.h - private to core/sip: the messages between the sofia thread
 * (stack.c) and the core thread (edge.c and the registrar, auth, bans,
 * trunks and BLF files), plus the pure helpers they share (digest, dial
 * patterns). Nothing outside core/sip includes this.
 *
 * Ownership: a message belongs to whoever pushed it until the push, then
 * to the consumer, which frees it (and the heap strings it points to) with
 * edge_msg_free() / stack_cmd_free().
 */
#ifndef CW_SIP_INT_H
#define CW_SIP_INT_H

#include "loop/queue.h"
#include "sip/sip.h"

#include <stdbool.h>
#include <stdint.h>

/* Ids of legs, requests, subscriptions and pings: one counter, any thread. */
uint64_t sip_next_id(void);

/* A hash map from 64-bit ids to pointers it does not own (idmap.c); one thread. */
struct idmap {
    struct idmap_ent **b;
    size_t nb, n;
};
void *idmap_get(const struct idmap *m, uint64_t key);
void idmap_put(struct idmap *m, uint64_t key, void *val);
void *idmap_del(struct idmap *m, uint64_t key);
/* A malloc'd array of the keys (safe to delete while walking it); returns the count. */
size_t idmap_keys(const struct idmap *m, uint64_t **out);
void idmap_clear(struct idmap *m, void (*free_val)(void *));

/* ---------------------------------------------------------------------
 * Sofia thread -> core thread
 */
enum edge_msg_type {
    EDGE_REQUEST = 1, /* struct edge_request: initial request needing a decision */
    EDGE_LEG,         /* struct edge_leg: something happened on a leg */
    EDGE_RESULT,      /* struct edge_result: ping / trunk registration / subscription */
};

enum req_kind { REQ_REGISTER = 1, REQ_INVITE, REQ_SUBSCRIBE, REQ_OPTIONS };

#define EDGE_MAX_CONTACTS 8

struct edge_contact {
    char uri[256];
    int expires; /* -1 when the contact has no expires parameter */
};

struct edge_request {
    cw_msg m;
    uint64_t id; /* leg id for INVITE, request id otherwise */
    enum req_kind kind;
    bool in_dialog; /* SUBSCRIBE refresh inside an existing subscription */
    char src_ip[64];
    int src_port;
    char transport[8]; /* "udp", "tcp", "tls" */
    char ruri_user[64];
    char ruri_host[128];
    char from_user[64];
    char from_host[128];
    char from_display[128];
    char to_user[64];
    char to_host[128];
    char call_id[128];
    uint32_t cseq;
    char auth[1024]; /* Authorization or Proxy-Authorization value, "" if none */
    char user_agent[128];
    int expires; /* Expires header, -1 when absent */
    bool star;   /* Contact: * */
    int ncontacts;
    struct edge_contact contacts[EDGE_MAX_CONTACTS];
    char event[32]; /* SUBSCRIBE: event package */
    char accept[128];
    char replaces[256];
    char *body; /* owned: the request body, NUL-terminated; NULL if none */
};

struct edge_leg {
    cw_msg m;
    struct sip_leg_event ev;
    char call_id[128];   /* the dialog's Call-ID, when known */
    char local_tag[64];  /* SIP_EV_ANSWERED: the dialog's tags, ours */
    char remote_tag[64]; /* and the far end's */
};

enum edge_result_kind { RES_PING = 1, RES_TRUNK_REG, RES_SUB_ENDED };

struct edge_result {
    cw_msg m;
    enum edge_result_kind kind;
    uint64_t id; /* ping id, trunk id or subscription id */
    int status;
    char phrase[128];
    int expires; /* trunk registration: granted expiry */
};

void edge_msg_free(cw_msg *m);

/* ---------------------------------------------------------------------
 * Core thread -> sofia thread
 */
enum stack_cmd_type {
    CMD_RESPOND = 1,  /* struct cmd_respond */
    CMD_CALL,         /* struct cmd_call */
    CMD_HANGUP,       /* struct cmd_simple: status = response for an inbound ringing leg */
    CMD_REOFFER,      /* struct cmd_respond: id, body */
    CMD_REFER_RESULT, /* struct cmd_simple: status of the transfer */
    CMD_NOTIFY,       /* struct cmd_notify */
    CMD_PING,         /* struct cmd_ping */
    CMD_TRUNK_REG,    /* struct cmd_trunk */
    CMD_BAN,          /* struct cmd_ban */
    CMD_UNBAN,        /* struct cmd_ban */
    CMD_STOP,         /* struct cmd_simple */
};

struct cmd_respond {
    cw_msg m;
    uint64_t id;
    int status;
    char reason[64];
    bool drop;      /* say nothing at all (a banned address) */
    bool keep;      /* SUBSCRIBE accepted: keep the dialog as a subscription */
    char *headers;  /* owned: extra header lines "Name: value\r\n" */
    char *body;     /* owned: SDP or other body */
    char ctype[64]; /* body content type; "" = application/sdp */
};

#define CALL_MAX_BRANCHES 8

struct call_branch {
    char uri[256];   /* request URI */
    char route[256]; /* where to send it ("sip:ip:port;transport=x"), "" = by the URI */
};

struct cmd_call {
    cw_msg m;
    uint64_t id;
    char call_id[128];
    char from[384]; /* From header value */
    char to[384];   /* To header value */
    int nbranches;
    struct call_branch branches[CALL_MAX_BRANCHES];
    char auth_user[64]; /* credentials for 401/407 (trunks), "" = none */
    char auth_pass[128];
    int timeout_s;
    char *sdp;     /* owned */
    char *headers; /* owned, may be NULL */
};

struct cmd_simple {
    cw_msg m;
    uint64_t id;
    int status;
};

struct cmd_notify {
    cw_msg m;
    uint64_t id; /* subscription id */
    char event[32];
    char ctype[64];
    bool terminated;
    int expires;
    char *body; /* owned */
};

struct cmd_ping {
    cw_msg m;
    uint64_t id;
    char uri[256];
    char route[256];
};

struct cmd_trunk {
    cw_msg m;
    uint64_t id;         /* trunk id */
    bool unregister;     /* stop (and remove the binding) */
    char registrar[256]; /* sip:host:port;transport=x */
    char aor[256];       /* sip:login@host */
    char user[64];
    char pass[128];
    int expires;
};

struct cmd_ban {
    cw_msg m;
    char ip[64];
};

void stack_cmd_free(cw_msg *m);

/* stack.c: the sofia thread. */
struct stack_params {
    struct sip_config cfg;
    int session_timer;
    int session_min_se; /* shortest session interval accepted (Min-SE) */
    cw_queue *to_core;  /* the stack pushes edge messages here */
    cw_queue *commands; /* and takes commands from here */
};
int stack_start(const struct stack_params *p);
void stack_join(void);

/* edge.c: send a command to the sofia thread (core thread). */
void edge_command(cw_msg *m);
bool edge_running(void);
/* Respond to a request by id; headers and body are copied. */
void edge_respond(uint64_t id, int status, const char *reason, const char *headers,
                  const char *body, const char *ctype);
void edge_drop(uint64_t id);

/* ---------------------------------------------------------------------
 * Core-thread halves (registrar.c, auth.c, bans.c, trunks.c, blf.c)
 */
void registrar_init(void);
void registrar_shutdown(void);
void registrar_on_register(struct edge_request *r);
void registrar_ping_result(const struct edge_result *res);
/* Branches to every registered contact of a user and the user's AOR; 0 = none. */
int registrar_branches(int64_t user_id, struct call_branch *out, int max, char *aor, size_t aorlen);

/* Digest authentication of a request against the store (auth.c). */
enum auth_result {
    AUTH_OK = 0,
    AUTH_CHALLENGED, /* a challenge was sent (401/407) */
    AUTH_REJECTED,   /* a final error was sent (403/404) */
    AUTH_DROPPED,    /* banned address: nothing was sent */
};
struct auth_user {
    int64_t domain_id;
    int64_t user_id;
    char login[64];
    char extension[16];
    char display[128];
    char domain[128];
};
/*
 * Authenticate r as a user of `realm` (a tenant domain name). proxy:
 * use 407/Proxy-Authenticate instead of 401/WWW-Authenticate. aor_user:
 * when not NULL, the AOR user part (login or extension) must name the same
 * user. On anything but AUTH_OK the response has already been sent.
 */
enum auth_result auth_request(const struct edge_request *r, const char *method, const char *realm,
                              const char *aor_user, bool proxy, struct auth_user *out);
void auth_init(void);
/*
 * May a user of own_domain address a request to this Request-URI host? 0
 * when it is their own domain, an address literal or a name of this server
 * (localhost, sip.public_ip); 403 when it names another tenant's domain;
 * 404 when it names a domain this platform does not serve.
 */
int auth_target_host(const char *host, const char *own_domain);

/* bans.c */
void bans_init(void);
void bans_shutdown(void);
bool bans_is_banned(const char *ip);
/* Count a failed authentication; true when this failure started a ban. */
bool bans_failure(const char *ip, const char *what);

/* blf.c */
void blf_init(void);
void blf_shutdown(void);
void blf_on_subscribe(struct edge_request *r);
void blf_sub_ended(uint64_t id);

/* trunks.c */
void trunks_init(void);
void trunks_shutdown(void);
void trunks_reg_result(const struct edge_result *res);
/* The trunk an address belongs to (enabled trunks only); 0 when none. */
int64_t trunks_match_source(const char *ip, int port, const char *from_host, int64_t *domain_id,
                            char *login, size_t loginlen);
/* The host a call through the trunk names us by in From (its realm or host). */
const char *trunks_from_host(int64_t trunk_id);
int trunks_target(int64_t trunk_id, const char *number, struct cmd_call *c, int64_t *domain_id);
void trunks_call_started(int64_t trunk_id, bool inbound);
void trunks_call_ended(int64_t trunk_id, bool inbound);
bool trunks_line_free(int64_t trunk_id, bool inbound);

/* ---------------------------------------------------------------------
 * Pure helpers (any thread; fuzzed)
 */
enum digest_alg { DIGEST_MD5 = 1, DIGEST_SHA256 = 2 };

struct digest_cred {
    char scheme[16];
    char username[128];
    char realm[128];
    char nonce[128];
    char uri[256];
    char response[72];
    char algorithm[24];
    char cnonce[128];
    char nc[16];
    char qop[16];
    char opaque[128];
};

/* Parse an Authorization / Proxy-Authorization value; CW_EINVAL on junk. */
int digest_parse(const char *text, struct digest_cred *out);
/* Which algorithm the credentials claim; CW_EINVAL for ones we do not do. */
int digest_alg_of(const struct digest_cred *c, enum digest_alg *alg);
/* Hex digest of s with alg into out (65 bytes). */
void digest_hash_hex(enum digest_alg alg, const char *s, size_t len, char *out);
/* True when the response matches HA1 (hex) for this method. */
bool digest_verify(const struct digest_cred *c, const char *method, const char *ha1_hex,
                   enum digest_alg alg);
/* Stateless nonce: timestamp + HMAC(key, timestamp, realm). out >= 49 bytes. */
void digest_nonce_make(const unsigned char key[32], const char *realm, int64_t now, char *out,
                       size_t outlen);
/* 0 when the nonce is ours for this realm; *age set to its age in seconds. */
int digest_nonce_check(const unsigned char key[32], const char *realm, const char *nonce,
                       int64_t now, int64_t *age);
/* Header value of a challenge; malloc'd. */
char *digest_challenge(const char *realm, const char *nonce, enum digest_alg alg, bool stale);

/* Dial patterns (trunks.c): ERE plus \d \w \s; compiled with regcomp. */
int dialpat_translate(const char *pattern, char *out, size_t outlen);
/*
 * Match subject (e.g. "sip:8123@demo.local") against pattern. On a match
 * writes the called number to out: capture group 1 (or the whole match),
 * cut at '@', with strip leading digits removed. 1 = match, 0 = no match,
 * CW_EINVAL = bad pattern.
 */
int dialpat_match(const char *pattern, const char *subject, int strip, char *out, size_t outlen);

/* Replaces (RFC 3891) as a REFER's Refer-To URI carries it (msgparse.c). */
struct sip_replaces {
    char call_id[128];
    char to_tag[64];   /* the replaced dialog's tag on our side */
    char from_tag[64]; /* ... and on the transferor's side */
    bool early_only;
};
/*
 * From the URI headers part ("Replaces=...&..."): CW_ENOENT when there is
 * no Replaces, CW_EINVAL when it is malformed or lacks either tag.
 */
int sip_replaces_parse(const char *uri_headers, struct sip_replaces *out);
/*
 * The digit of a SIP INFO body: application/dtmf-relay ("Signal=5",
 * "Duration=160"), or with plain set (application/dtmf) the bare digit.
 * CW_EINVAL when the body names no DTMF digit; duration defaults to 160 ms.
 */
int sip_dtmf_info_parse(const char *body, size_t len, bool plain, char *digit, int *duration_ms);

#endif
