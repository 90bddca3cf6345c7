/*
 * opmsg.c - operator messages (seed 001 §8.2): a supervisor writes to one
 * or more call-processing groups; the operators of those groups read the
 * message on their desktop and confirm reading with their password; the
 * sender sees who has read it and who has not.
 *
 * Choices where the seed is silent: recipients are the groups' operators
 * at the moment the message is sent (a fixed list, so the read report
 * stays true when membership changes later); messages cannot be edited,
 * only deleted; they do not expire. A group without an operator is refused,
 * as the seed says. Sending emits agent.message with the recipients in
 * user_ids, so each operator's event stream carries it live; a confirmation
 * emits agent.message_read. Core thread only.
 */
#include "domain/crud.h"
#include "auth/auth.h"
#include "events/events.h"
#include "log/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* descriptor tables name the leading members and leave the rest zero */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static const struct crud_field fields[] = {
    {"title", FT_TEXT, FF_REQUIRED | FF_CREATE | FF_SEARCH, 1, 200},
    {"text", FT_TEXT, FF_REQUIRED | FF_CREATE | FF_SEARCH, 1, 4000},
    {"group_ids", FT_IDLIST, FF_VIRTUAL | FF_REQUIRED | FF_CREATE, 0, 0, NULL, NULL, 0, NULL,
     "the call-processing groups whose operators receive it"},
    {"author_id", FT_ID, FF_READONLY},
    {"created_at", FT_INT, FF_READONLY},
};

/* Below supervisor: the messages one received. */
static bool recipient_reach(struct crud_ctx *c, cw_buf *w, store_arg *args, int *n)
{
    if (cw_role_at_least(c->req->auth->role, ROLE_SUPERVISOR)) return true;
    cw_buf_puts(w, " AND id IN (SELECT message_id FROM operator_message_recipients WHERE "
                   "user_id = ?)");
    args[(*n)++] = SA_INT(c->req->auth->user_id);
    return true;
}

static bool opmsg_validate(struct crud_ctx *c)
{
    if (!c->creating) return true;
    json_t *groups = json_object_get(c->in, "group_ids");
    if (!json_array_size(groups))
        return crud_fail(c, 400, "invalid_value", "group_ids", "group_ids names no group");
    size_t i, k;
    json_t *v;
    json_array_foreach(groups, i, v)
    {
        for (k = 0; k < i; k++)
            if (json_equal(json_array_get(groups, k), v))
                return crud_fail(c, 400, "invalid_value", "group_ids",
                                 "group_ids[%zu] repeats group_ids[%zu]", i, k);
        store_res *r;
        char name[80] = "";
        if (store_query(store_main(), &r,
                        "SELECT name FROM call_groups WHERE id = ? AND domain_id = ?",
                        SA_INT(json_integer_value(v)), SA_INT(c->domain_id), SA_END) >= 0 &&
            store_next(r))
            cw_strlcpy(name, store_str(r, 0), sizeof name);
        store_res_free(r);
        if (!name[0])
            return crud_fail(c, 400, "invalid_value", "group_ids",
                             "group_ids[%zu]: no such call-processing group", i);
        int64_t ops = 0;
        store_query_int(store_main(), &ops,
                        "SELECT COUNT(*) FROM call_group_members m JOIN users u ON u.id = "
                        "m.user_id WHERE m.group_id = ? AND u.is_operator = 1",
                        SA_INT(json_integer_value(v)), SA_END);
        if (!ops)
            return crud_fail(c, 400, "no_operators", "group_ids",
                             "group_ids[%zu]: group \"%s\" has no operator to read the message", i,
                             name);
    }
    json_object_set_new(c->cols, "author_id", json_integer(c->req->auth->user_id));
    return true;
}

static bool opmsg_after_write(struct crud_ctx *c)
{
    if (!c->creating) return true;
    store *st = store_main();
    json_t *groups = json_object_get(c->in, "group_ids");
    size_t i;
    json_t *v;
    int rc = CW_OK;
    json_array_foreach(groups, i, v)
    {
        if (rc < 0) break;
        rc = store_exec(st, "INSERT INTO operator_message_groups(message_id, group_id) VALUES(?,?)",
                        SA_INT(c->id), SA_INT(json_integer_value(v)), SA_END);
        if (rc >= 0)
            rc =
                store_exec(st,
                           "INSERT INTO operator_message_recipients(message_id, user_id) "
                           "SELECT DISTINCT CAST(? AS BIGINT), m.user_id FROM call_group_members m "
                           "JOIN users u "
                           "ON u.id = m.user_id WHERE m.group_id = ? AND u.is_operator = 1 AND "
                           "NOT EXISTS (SELECT 1 FROM operator_message_recipients x WHERE "
                           "x.message_id = ? AND x.user_id = m.user_id)",
                           SA_INT(c->id), SA_INT(json_integer_value(v)), SA_INT(c->id), SA_END);
    }
    return rc < 0 ? crud_store_fail(c, rc) : true;
}

/*
 * Counters for everyone; for the sender's side (supervisors) the report of
 * who read it (seed: the «Прочитали» modal); for a recipient, their own read_at.
 */
static void opmsg_decorate(struct crud_ctx *c, json_t *o)
{
    int64_t id = json_integer_value(json_object_get(o, "id"));
    json_object_set_new(
        o, "group_ids",
        crud_id_list("SELECT group_id FROM operator_message_groups WHERE message_id = ? ORDER BY "
                     "group_id",
                     id));
    json_t *read = json_array(), *unread = json_array();
    json_t *mine = json_null();
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT x.user_id, u.display_name, u.extension, x.read_at FROM "
                    "operator_message_recipients x JOIN users u ON u.id = x.user_id WHERE "
                    "x.message_id = ? ORDER BY u.display_name, x.user_id",
                    SA_INT(id), SA_END) >= 0) {
        while (store_next(r)) {
            json_t *who = json_pack("{s:I,s:s,s:s?}", "user_id", (json_int_t)store_int(r, 0),
                                    "name", store_str(r, 1), "extension", store_str(r, 2));
            if (!store_isnull(r, 3))
                json_object_set_new(who, "read_at", json_integer(store_int(r, 3)));
            json_array_append_new(store_isnull(r, 3) ? unread : read, who);
            if (store_int(r, 0) == c->req->auth->user_id) {
                json_decref(mine);
                mine = store_isnull(r, 3) ? json_false() : json_integer(store_int(r, 3));
            }
        }
        store_res_free(r);
    }
    json_object_set_new(
        o, "recipients",
        json_integer((json_int_t)(json_array_size(read) + json_array_size(unread))));
    json_object_set_new(o, "read_count", json_integer((json_int_t)json_array_size(read)));
    if (cw_role_at_least(c->req->auth->role, ROLE_SUPERVISOR)) {
        json_object_set_new(o, "read", read);
        json_object_set_new(o, "unread", unread);
    } else {
        json_decref(read);
        json_decref(unread);
    }
    /* false: not yet read by the caller; a time: when; null: not a recipient */
    json_object_set_new(o, "read_at", json_is_false(mine) ? json_null() : mine);
    json_object_set_new(o, "read_by_me", json_boolean(json_is_integer(mine)));
}

static const struct crud_entity messages = {.path = "operator-messages",
                                            .type = "operator_message",
                                            .label = "operator message",
                                            .table = "operator_messages",
                                            .scope = SCOPE_DOMAIN,
                                            .fields = fields,
                                            .nfields = CW_ARRAY_LEN(fields),
                                            .name_field = "title",
                                            .order = "created_at DESC",
                                            .read_role = ROLE_SUBSCRIBER,
                                            .write_role = ROLE_SUPERVISOR,
                                            .created_at = true,
                                            .reach = recipient_reach,
                                            .validate = opmsg_validate,
                                            .after_write = opmsg_after_write,
                                            .decorate = opmsg_decorate};

/* ------------------------------------------------------- read receipts */

struct confirm {
    http_req *req;
    int64_t domain, message, user;
    char account[300];
};

static void reply_message(http_req *req, int64_t domain, int64_t id)
{
    struct crud_ctx cx = {.req = req, .e = &messages, .scope_id = domain, .domain_id = domain};
    json_t *o = crud_fetch(&cx, id);
    if (o)
        http_reply_json(req, 200, o);
    else
        http_reply_error(req, 404, "not_found", NULL, "no such operator message");
}

static void confirm_done(struct auth_pw_job *job)
{
    struct confirm *p = job->arg;
    http_req *req = p->req;
    if (!job->verified) {
        auth_throttle_fail(p->account, req->ip);
        http_reply_error(req, 403, "wrong_password", "password",
                         "the password does not match; reading is not confirmed");
    } else {
        auth_throttle_ok(p->account);
        int64_t now = cw_wall_time();
        int rc = store_exec(store_main(),
                            "UPDATE operator_message_recipients SET read_at = ? WHERE message_id "
                            "= ? AND user_id = ? AND read_at IS NULL",
                            SA_INT(now), SA_INT(p->message), SA_INT(p->user), SA_END);
        if (rc > 0) {
            char title[210] = "";
            store_res *r;
            if (store_query(store_main(), &r, "SELECT title FROM operator_messages WHERE id = ?",
                            SA_INT(p->message), SA_END) >= 0 &&
                store_next(r))
                cw_strlcpy(title, store_str(r, 0), sizeof title);
            store_res_free(r);
            http_audit(req, p->domain, "operator_message", title, "read",
                       json_pack("{s:I}", "message_id", (json_int_t)p->message));
            events_emit("agent.message_read", p->domain,
                        json_pack("{s:I,s:I,s:s,s:I}", "message_id", (json_int_t)p->message,
                                  "user_id", (json_int_t)p->user, "title", title, "read_at",
                                  (json_int_t)now));
        }
        if (rc < 0)
            http_reply_error(req, 500, "store", NULL, "the store failed");
        else
            reply_message(req, p->domain, p->message);
    }
    free(p);
    auth_pw_job_free(job);
}

/* POST /operator-messages/:id/read {"password": "..."}: a recipient confirms reading. */
static void confirm_read(http_req *req)
{
    static const struct json_field f[] = {{"password", JK_STRING, true}};
    int64_t domain, id;
    if (!http_domain_param(req, 0, &domain)) return;
    int64_t one;
    if (cw_parse_i64(req->params[1], &id) ||
        store_query_int(store_main(), &one,
                        "SELECT 1 FROM operator_message_recipients x JOIN operator_messages m ON "
                        "m.id = x.message_id WHERE x.message_id = ? AND x.user_id = ? AND "
                        "m.domain_id = ?",
                        SA_INT(id), SA_INT(req->auth->user_id), SA_INT(domain), SA_END) != CW_OK) {
        http_reply_error(req, 404, "not_found", NULL, "no such message addressed to you");
        return;
    }
    json_t *b = http_json_body(req);
    if (!b) return;
    if (!http_json_check(req, b, f, 1)) {
        json_decref(b);
        return;
    }
    struct confirm *p = cw_calloc(1, sizeof *p);
    p->req = req;
    p->domain = domain;
    p->message = id;
    p->user = req->auth->user_id;
    snprintf(p->account, sizeof p->account, "%s/%s", req->auth->domain, req->auth->login);
    int64_t retry;
    if (auth_throttled(p->account, req->ip, &retry)) {
        http_reply_error(req, 429, "too_many_attempts", "password",
                         "too many wrong passwords; try again in %lld seconds", (long long)retry);
        free(p);
        json_decref(b);
        return;
    }
    struct auth_pw_job *job = auth_pw_job_new();
    cw_strlcpy(job->verify, json_string_value(json_object_get(b, "password")), sizeof job->verify);
    store_res *r;
    if (store_query(store_main(), &r, "SELECT password_hash FROM users WHERE id = ?",
                    SA_INT(p->user), SA_END) >= 0 &&
        store_next(r))
        cw_strlcpy(job->verify_hash, store_str(r, 0), sizeof job->verify_hash);
    store_res_free(r);
    json_decref(b);
    job->done = confirm_done;
    job->arg = p;
    http_async(req);
    auth_pw_submit(job);
}

/* A sent message goes to each recipient's desktop at once. */
static void on_created(const cw_event *ev, void *arg)
{
    int64_t id = json_integer_value(json_object_get(ev->data, "id"));
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT m.title, m.text, m.author_id, u.display_name, m.created_at FROM "
                    "operator_messages m LEFT JOIN users u ON u.id = m.author_id WHERE m.id = ?",
                    SA_INT(id), SA_END) < 0 ||
        !store_next(r)) {
        store_res_free(r);
        return;
    }
    json_t *data = json_pack(
        "{s:I,s:s,s:s,s:I,s:s,s:I,s:o,s:o}", "message_id", (json_int_t)id, "title", store_str(r, 0),
        "text", store_str(r, 1), "author_id", (json_int_t)store_int(r, 2), "author",
        store_str(r, 3) ? store_str(r, 3) : "", "created_at", (json_int_t)store_int(r, 4),
        "group_ids",
        crud_id_list("SELECT group_id FROM operator_message_groups WHERE message_id = ? ORDER BY "
                     "group_id",
                     id),
        "user_ids",
        crud_id_list("SELECT user_id FROM operator_message_recipients WHERE message_id = ? ORDER "
                     "BY user_id",
                     id));
    store_res_free(r);
    events_emit("agent.message", ev->domain_id, data);
}

void opmsg_api_init(void)
{
    crud_register(&messages);
    http_route("POST", "/api/v1/domains/:domain/operator-messages/:id/read", confirm_read,
               ROLE_OPERATOR, 0, "Confirm reading an operator message ({\"password\": \"...\"})");
    events_subscribe("config.operator_message.created", on_created, NULL);
}
