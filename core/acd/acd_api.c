/*
 * acd_api.c - agents and queues through the API: the real-time view of
 * operators and groups, and agent state changes (login, break, logout).
 * An operator may change only their own state; supervisors any in their
 * domain.
 */
#include "acd/acd.h"
#include "base/cw.h"
#include "http/http.h"

#include <string.h>

static bool user_param(http_req *req, int idx, int64_t *out)
{
    if (cw_parse_i64(req->params[idx], out) || *out <= 0) {
        http_reply_error(req, 404, "not_found", NULL, "no such agent");
        return false;
    }
    return true;
}

static void list_agents(http_req *req)
{
    int64_t dom;
    if (!http_domain_param(req, 0, &dom)) return;
    http_reply_json(req, 200, json_pack("{s:o}", "items", acd_agents_json(dom)));
}

static void get_agent(http_req *req)
{
    int64_t dom, uid;
    if (!http_domain_param(req, 0, &dom) || !user_param(req, 1, &uid)) return;
    json_t *j = acd_agent_json(dom, uid);
    if (!j) {
        http_reply_error(req, 404, "not_found", NULL, "no such agent");
        return;
    }
    http_reply_json(req, 200, j);
}

static void set_agent_state(http_req *req)
{
    int64_t dom, uid;
    if (!http_domain_param(req, 0, &dom) || !user_param(req, 1, &uid)) return;
    if ((req->auth->role == ROLE_OPERATOR || req->auth->role == ROLE_SUBSCRIBER) &&
        req->auth->user_id != uid) {
        http_reply_error(req, 403, "forbidden", NULL, "operators may change only their own state");
        return;
    }
    json_t *body = http_json_body(req);
    static const struct json_field fields[] = {{"state", JK_STRING, true},
                                               {"reason", JK_STRING, false}};
    if (!body) return;
    if (!http_json_check(req, body, fields, 2)) {
        json_decref(body);
        return;
    }
    json_t *js = json_object_get(body, "state"), *jr = json_object_get(body, "reason");
    enum agent_state st;
    if (!json_is_string(js) || agent_state_parse(json_string_value(js), &st) ||
        (st != AGENT_LOGGED_OUT && st != AGENT_AVAILABLE && st != AGENT_BREAK &&
         st != AGENT_AWAY)) {
        http_reply_error(req, 400, "invalid", "state",
                         "state must be one of logged_out, available, break, away");
        json_decref(body);
        return;
    }
    if (jr && (!json_is_string(jr) || strlen(json_string_value(jr)) > 63)) {
        http_reply_error(req, 400, "invalid", "reason", "reason must be a string of <= 63 chars");
        json_decref(body);
        return;
    }
    int rc = acd_agent_set_state(dom, uid, st, jr ? json_string_value(jr) : NULL);
    if (rc) {
        http_reply_error(req, 404, "not_found", NULL, "no such agent");
        json_decref(body);
        return;
    }
    json_t *agent = acd_agent_json(dom, uid);
    http_audit(req, dom, "agent", json_string_value(json_object_get(agent, "name")), "edit",
               json_pack("{s:s}", "state", json_string_value(js)));
    json_decref(body);
    http_reply_json(req, 200, agent);
}

static void list_queues(http_req *req)
{
    int64_t dom;
    if (!http_domain_param(req, 0, &dom)) return;
    http_reply_json(req, 200, json_pack("{s:o}", "items", acd_queues_json(dom)));
}

void acd_api_init(void);
void acd_api_init(void)
{
    http_route("GET", "/api/v1/domains/:domain/agents", list_agents, ROLE_SUPERVISOR, 0,
               "Real-time state of every operator: online, state, time in state, current call");
    http_route("GET", "/api/v1/domains/:domain/agents/:user", get_agent, ROLE_OPERATOR, 0,
               "Real-time state of one operator");
    http_route("PUT", "/api/v1/domains/:domain/agents/:user/state", set_agent_state, ROLE_OPERATOR,
               0, "Log in, log out, take a break or go away (state, reason)");
    http_route("GET", "/api/v1/domains/:domain/queues/live", list_queues, ROLE_SUPERVISOR, 0,
               "Real-time state of every call-processing group: waiting callers and agents");
}
