/*
 * call_api.c - live calls through the API: list, inspect, hang up, and the
 * supervisor's listen / whisper / barge. For a spy action the platform
 * rings the supervisor's own phone and, when it answers, joins it to the
 * conversation in the chosen mode (seed 001 §8.5.1).
 */
#include "base/cw.h"
#include "call/call_int.h"
#include "http/http.h"
#include "log/log.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

struct list_ctx {
    int64_t domain;
    json_t *items;
};

static bool add_call(call *c, void *arg)
{
    struct list_ctx *x = arg;
    if (call_domain(c) == x->domain) json_array_append_new(x->items, call_to_json(c));
    return true;
}

static void list_calls(http_req *req)
{
    int64_t dom;
    if (!http_domain_param(req, 0, &dom)) return;
    struct list_ctx x = {dom, json_array()};
    call_foreach(add_call, &x);
    http_reply_json(req, 200, json_pack("{s:o}", "items", x.items));
}

static call *call_param(http_req *req, int64_t *dom)
{
    if (!http_domain_param(req, 0, dom)) return NULL;
    call *c = call_by_uuid(req->params[1]);
    if (!c || call_domain(c) != *dom) {
        http_reply_error(req, 404, "not_found", NULL, "no such active call");
        return NULL;
    }
    return c;
}

static void get_call(http_req *req)
{
    int64_t dom;
    call *c = call_param(req, &dom);
    if (c) http_reply_json(req, 200, call_to_json(c));
}

static void hangup_call(http_req *req)
{
    int64_t dom;
    call *c = call_param(req, &dom);
    if (!c) return;
    http_audit(req, dom, "call", call_uuid(c), "delete", json_pack("{s:s}", "action", "hangup"));
    call_hangup(c, SIP_CAUSE_NORMAL);
    http_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
}

/* ---- listen / whisper / barge ---- */

struct spy {
    enum media_spy_mode mode;
    int64_t supervisor;
};

static void spy_answered(call_leg *leg, void *arg)
{
    struct spy *s = arg;
    call *c = leg_call(leg);
    call_leg *b = call_bridged(c);
    if (!b || media_spy(leg_media(leg), leg_media(call_a_leg(c)), leg_media(b), s->mode)) {
        call_log(c, "spy-failed", "the conversation is no longer bridged");
        leg_hangup(leg, SIP_CAUSE_NORMAL);
        return;
    }
    static const char *const names[] = {"", "listen", "whisper", "barge"};
    call_log(c, "spy", "%s by user %lld", names[s->mode], (long long)s->supervisor);
}

static void spy_ended(call_leg *leg, enum sip_cause cause, bool was_answered, void *arg)
{
    free(arg);
}

/*
 * Whose phone may be rung into the conversation: a supervisor's own only;
 * a domain admin (or a pool or system admin) may choose any supervisor or
 * admin of the call's domain. Replies and returns false when refused.
 */
static bool spy_allowed(http_req *req, int64_t dom, int64_t sup)
{
    if (sup != req->auth->user_id && !cw_role_at_least(req->auth->role, ROLE_DOMAIN_ADMIN)) {
        http_reply_error(req, 403, "forbidden", "user_id",
                         "a supervisor may listen only from their own phone");
        return false;
    }
    int64_t found;
    if (store_query_int(store_main(), &found,
                        "SELECT id FROM users WHERE id = ? AND domain_id = ? AND status = 'active' "
                        "AND role IN ('supervisor', 'domain_admin')",
                        SA_INT(sup), SA_INT(dom), SA_END)) {
        http_reply_error(req, 400, "invalid", "user_id",
                         "the listener must be a supervisor or admin of this domain with a phone");
        return false;
    }
    return true;
}

static void spy_call(http_req *req)
{
    int64_t dom;
    call *c = call_param(req, &dom);
    if (!c) return;
    json_t *body = http_json_body(req);
    static const struct json_field fields[] = {{"mode", JK_STRING, true},
                                               {"user_id", JK_INT, false}};
    if (!body) return;
    if (!http_json_check(req, body, fields, 2)) {
        json_decref(body);
        return;
    }
    static const char *const modes[] = {NULL, "listen", "whisper", "barge"};
    const char *given = json_string_value(json_object_get(body, "mode"));
    enum media_spy_mode m = 0;
    for (int i = 1; i <= 3 && given; i++)
        if (!strcmp(given, modes[i])) m = (enum media_spy_mode)i;
    const char *mode = m ? modes[m] : NULL;
    if (!m) {
        http_reply_error(req, 400, "invalid", "mode", "mode must be listen, whisper or barge");
        json_decref(body);
        return;
    }
    json_t *ju = json_object_get(body, "user_id");
    int64_t sup = ju ? json_integer_value(ju) : req->auth->user_id;
    json_decref(body);
    if (!spy_allowed(req, dom, sup)) return;
    if (!call_bridged(c)) {
        http_reply_error(req, 409, "not_bridged", NULL,
                         "the call is not in a conversation yet; try when it is answered");
        return;
    }
    if (!sip_user_online(sup)) {
        http_reply_error(req, 409, "offline", "user_id",
                         "the supervisor's phone is not registered");
        return;
    }
    struct spy *s = cw_calloc(1, sizeof *s);
    s->mode = m;
    s->supervisor = sup;
    struct dial_target t = {.kind = SIP_TARGET_USER, .user_id = sup, .timeout_s = 30};
    call_leg *l = call_dial(c, LEG_SPY, &t, &(struct leg_watch){NULL, spy_answered, spy_ended, s});
    if (!l) {
        free(s);
        http_reply_error(req, 503, "unavailable", NULL, "could not ring the supervisor's phone");
        return;
    }
    http_audit(req, dom, "call", call_uuid(c), "edit",
               json_pack("{s:s,s:I}", "action", mode, "supervisor", (json_int_t)sup));
    http_reply_json(req, 202,
                    json_pack("{s:s,s:s,s:I}", "call", call_uuid(c), "mode", mode, "supervisor",
                              (json_int_t)sup));
}

static void transfer_call(http_req *req)
{
    int64_t dom;
    call *c = call_param(req, &dom);
    if (!c) return;
    json_t *body = http_json_body(req);
    static const struct json_field fields[] = {{"to", JK_STRING, true}};
    if (!body) return;
    if (!http_json_check(req, body, fields, 1)) {
        json_decref(body);
        return;
    }
    const char *to = json_string_value(json_object_get(body, "to"));
    if (!to || !*to || strlen(to) > 64) {
        http_reply_error(req, 400, "invalid", "to", "to: the extension or number to transfer to");
        json_decref(body);
        return;
    }
    char target[80];
    cw_strlcpy(target, to, sizeof target);
    json_decref(body);
    int rc = call_transfer(c, target);
    if (rc == CW_ESTATE) {
        http_reply_error(req, 409, "state", NULL,
                         "the caller is not in a conversation, or a transfer is under way");
        return;
    }
    if (rc) {
        http_reply_error(req, 404, "no_route", "to", "nobody to transfer to at %s", target);
        return;
    }
    http_audit(req, dom, "call", call_uuid(c), "edit",
               json_pack("{s:s,s:s}", "action", "transfer", "to", target));
    http_reply_json(req, 202, json_pack("{s:s,s:s}", "call", call_uuid(c), "to", target));
}

static void hold_call(http_req *req)
{
    int64_t dom;
    call *c = call_param(req, &dom);
    if (!c) return;
    json_t *body = http_json_body(req);
    static const struct json_field fields[] = {{"on", JK_BOOL, true}};
    if (!body) return;
    if (!http_json_check(req, body, fields, 1)) {
        json_decref(body);
        return;
    }
    bool on = json_is_true(json_object_get(body, "on"));
    json_decref(body);
    if (call_hold(c, on)) {
        http_reply_error(req, 409, "state", NULL, "the call is not in a conversation");
        return;
    }
    http_audit(req, dom, "call", call_uuid(c), "edit",
               json_pack("{s:s}", "action", on ? "hold" : "unhold"));
    http_reply_json(req, 200, json_pack("{s:s,s:b}", "call", call_uuid(c), "on_hold", on));
}

void call_api_init(void)
{
    http_route("GET", "/api/v1/domains/:domain/calls", list_calls, ROLE_SUPERVISOR, 0,
               "Active calls of the domain");
    http_route("GET", "/api/v1/domains/:domain/calls/:uuid", get_call, ROLE_SUPERVISOR, 0,
               "One active call with its legs");
    http_route("DELETE", "/api/v1/domains/:domain/calls/:uuid", hangup_call, ROLE_SUPERVISOR, 0,
               "Hang up an active call");
    http_route("POST", "/api/v1/domains/:domain/calls/:uuid/hold", hold_call, ROLE_SUPERVISOR, 0,
               "Put a conversation on hold (both hear music) or take it off (on)");
    http_route("POST", "/api/v1/domains/:domain/calls/:uuid/transfer", transfer_call,
               ROLE_SUPERVISOR, 0, "Blind transfer of the caller to an extension or number (to)");
    http_route("POST", "/api/v1/domains/:domain/calls/:uuid/spy", spy_call, ROLE_SUPERVISOR, 0,
               "Supervisor listen, whisper or barge: rings the supervisor's own phone (mode; "
               "user_id: a domain admin may choose a supervisor of the domain)");
}
