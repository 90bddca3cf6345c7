/*
 * api.c - the SIP edge's HTTP endpoints (core thread): trunks and outbound
 * lines (API v1's CRUD engine, plus live status and per-line log),
 * registrations, banned addresses.
 *
 * Trunks belong to a domain. Pool supervisors and system administrators
 * create and delete them; the platform's administrators may change every
 * field; a domain admin may list them, see status and log, and change
 * what seed 001 §9.6.1 gives the domain: enabled, name, priority, dial
 * pattern, digit stripping, prefix, outgoing numbers and the group
 * restriction. The password is write-only: responses say only whether one
 * is set. The engine validates every change before anything is stored and
 * audits it; the edge applies it at once (changed trunks re-register).
 */
#include "base/cw.h"
#include "domain/crud.h"
#include "http/http.h"
#include "log/log.h"
#include "sip/sip.h"
#include "sip/sip_int.h"
#include "store/store.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Field tables name only the members they need. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define MAX_CALLER_IDS 16

static const char *const kinds[] = {"sip_trunk", "sip_phone", "gsm_gateway", "private_route", NULL};
static const char *const transports[] = {"udp", "tcp", "tls", NULL};

/* What only the platform's administrators (subgroup admin and up) may set. */
#define PLATFORM ROLE_SUBGROUP_ADMIN

static const struct crud_field trunk_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_SEARCH, 1, 127},
    {"kind", FT_ENUM, FF_FILTER, 0, 0, kinds, NULL, PLATFORM},
    {"enabled", FT_BOOL, FF_FILTER},
    {"host", FT_TEXT, FF_REQUIRED, 1, 127, NULL, "[]A-Za-z0-9.:[-]+", PLATFORM, NULL,
     "a host name or address"},
    {"port", FT_INT, 0, 1, 65535, NULL, NULL, PLATFORM},
    {"transport", FT_ENUM, 0, 0, 0, transports, NULL, PLATFORM},
    {"login", FT_TEXT, 0, 0, 63, NULL, "[A-Za-z0-9_.!~*'()&=+$,;?/%-]*", PLATFORM},
    {"password", FT_TEXT, FF_WRITEONLY, 0, 127, NULL, "[^\"\\\\]*", PLATFORM, NULL,
     "no quotes or backslashes; responses only say password_set"},
    {"realm", FT_TEXT, 0, 0, 127, NULL, "[A-Za-z0-9.:-]*", PLATFORM, NULL, "a domain name"},
    {"register", FT_BOOL, 0, 0, 0, NULL, NULL, PLATFORM, NULL,
     "register with the provider (default: when there is a login)"},
    {"register_expires", FT_INT, 0, 60, 86400, NULL, NULL, PLATFORM},
    {"priority", FT_INT, 0, 0, 1000000, NULL, NULL, 0, NULL, "lower is tried first"},
    {"dial_pattern", FT_TEXT, 0, 0, 240, NULL, NULL, 0, NULL,
     "extended regex with \\d \\w \\s matched against sip:<number>@<domain>"},
    {"strip_digits", FT_INT, 0, 0, 20},
    {"prefix", FT_TEXT, 0, 0, 16, NULL, "[0-9+*#]*", 0, NULL, "digits"},
    {"max_in", FT_INT, 0, 0, 10000, NULL, NULL, PLATFORM},
    {"max_out", FT_INT, 0, 0, 10000, NULL, NULL, PLATFORM},
    {"caller_ids", FT_JSON, FF_VIRTUAL, 0, 0, NULL, NULL, 0, NULL,
     "outgoing numbers, one chosen at random: [\"74951110000\", ...]"},
    {"only_group_id", FT_ID, FF_NULLABLE, 0, 0, NULL, NULL, 0, "call_groups",
     "only this call-processing group may call out through it"},
    {"domain_id", FT_INT, FF_READONLY},
    {"created_at", FT_INT, FF_READONLY},
    {"updated_at", FT_INT, FF_READONLY},
};

static bool digits_ok(const char *s, const char *extra)
{
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr(extra, *p)) return false;
    return true;
}

static bool chars_ok(const char *s, const char *extra)
{
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(extra, *p)) return false;
    return true;
}

static bool trunk_validate(struct crud_ctx *c)
{
    json_t *v = json_object_get(c->in, "dial_pattern");
    const char *pat = json_string_value(v);
    if (pat && *pat) {
        char ere[600], probe[8];
        if (dialpat_translate(pat, ere, sizeof ere) != CW_OK ||
            dialpat_match(pat, "sip:0@x", 0, probe, sizeof probe) < 0)
            return crud_fail(
                c, 400, "invalid_value", "dial_pattern",
                "dial_pattern: not a usable regular expression (ERE with \\d \\w \\s)");
    }
    v = json_object_get(c->in, "caller_ids");
    if (v) {
        if (!json_is_array(v) || json_array_size(v) > MAX_CALLER_IDS)
            return crud_fail(c, 400, "invalid_value", "caller_ids",
                             "caller_ids: a list of at most %d numbers", MAX_CALLER_IDS);
        cw_buf b;
        cw_buf_init(&b);
        size_t i;
        json_t *n;
        json_array_foreach(v, i, n)
        {
            const char *num = json_string_value(n);
            if (!num || !*num || strlen(num) > 20 || !digits_ok(num, "+")) {
                cw_buf_free(&b);
                return crud_fail(c, 400, "invalid_value", "caller_ids",
                                 "caller_ids: each number is digits with an optional +");
            }
            cw_buf_printf(&b, "%s%s", i ? "," : "", num);
        }
        json_object_set_new(c->cols, "caller_ids", json_string(b.data ? b.data : ""));
        cw_buf_free(&b);
    }
    /* a trunk with a login registers unless told otherwise; registering needs a login */
    const char *login = json_string_value(crud_value(c, "login"));
    bool has_login = login && *login;
    json_t *reg = json_object_get(c->in, "register");
    if (c->creating && !reg) json_object_set_new(c->cols, "register", json_boolean(has_login));
    bool registers = reg           ? json_is_true(reg)
                     : c->creating ? has_login
                                   : json_is_true(crud_value(c, "register"));
    if (registers && !has_login)
        return crud_fail(c, 400, "invalid_value", "login", "login: required when register is true");
    return true;
}

/* The edge applies every change at once: changed trunks re-register. */
static bool trunk_after_write(struct crud_ctx *c)
{
    sip_trunks_reload();
    return true;
}

static void trunk_after_delete(struct crud_ctx *c)
{
    sip_trunks_reload();
}

static json_t *status_json(int64_t id)
{
    struct sip_trunk_status st;
    if (sip_trunk_status(id, &st)) return json_null();
    return json_pack("{ss ss sI sI si si}", "state", sip_trunk_state_name(st.state), "reason",
                     st.reason, "since", (json_int_t)st.since, "next_retry",
                     (json_int_t)st.next_retry, "calls_in", st.calls_in, "calls_out", st.calls_out);
}

/* What the columns do not say as the API shows it: numbers, password_set, live status. */
static void trunk_decorate(struct crud_ctx *c, json_t *o)
{
    int64_t id = json_integer_value(json_object_get(o, "id"));
    json_t *ids = json_array();
    bool pw = false;
    store_res *r;
    if (store_query(store_main(), &r, "SELECT caller_ids, password <> '' FROM trunks WHERE id = ?",
                    SA_INT(id), SA_END) >= 0 &&
        store_next(r)) {
        char list[512];
        cw_strlcpy(list, store_str(r, 0) ? store_str(r, 0) : "", sizeof list);
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(ids, json_string(t));
        pw = store_int(r, 1) != 0;
    }
    store_res_free(r);
    json_object_set_new(o, "caller_ids", ids);
    json_object_set_new(o, "password_set", json_boolean(pw));
    json_object_set_new(o, "status", status_json(id));
}

static const struct crud_entity trunks = {.path = "trunks",
                                          .type = "trunk",
                                          .label = "trunk",
                                          .table = "trunks",
                                          .scope = SCOPE_DOMAIN,
                                          .fields = trunk_fields,
                                          .nfields = CW_ARRAY_LEN(trunk_fields),
                                          .name_field = "name",
                                          .order = "priority, id",
                                          .read_role = ROLE_DOMAIN_ADMIN,
                                          .write_role = ROLE_DOMAIN_ADMIN,
                                          .create_role = ROLE_POOL_SUPERVISOR,
                                          .delete_role = ROLE_POOL_SUPERVISOR,
                                          .created_at = true,
                                          .updated_at = true,
                                          .validate = trunk_validate,
                                          .after_write = trunk_after_write,
                                          .after_delete = trunk_after_delete,
                                          .decorate = trunk_decorate};

/* The trunk :id of the domain exists; else 404 (sent). */
static bool trunk_exists(http_req *req, int64_t *id)
{
    int64_t dom, n = 0;
    if (!http_domain_param(req, 0, &dom)) return false;
    if (req->nparams < 2 || cw_parse_i64(req->params[1], id) || *id <= 0 ||
        store_query_int(store_main(), &n,
                        "SELECT COUNT(*) FROM trunks WHERE id = ? AND domain_id = ?", SA_INT(*id),
                        SA_INT(dom), SA_END) ||
        !n) {
        http_reply_error(req, 404, "not_found", NULL, "no such trunk");
        return false;
    }
    return true;
}

static void trunk_status(http_req *req)
{
    int64_t id;
    if (trunk_exists(req, &id)) http_reply_json(req, 200, status_json(id));
}

static void trunk_log(http_req *req)
{
    int64_t id;
    if (!trunk_exists(req, &id)) return;
    int64_t limit = 50;
    const char *q = http_query(req, "limit");
    if (q && (cw_parse_i64(q, &limit) || limit < 1 || limit > 100)) {
        http_reply_error(req, 400, "invalid", "limit", "limit must be 1..100");
        return;
    }
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT ts_ms, event, detail FROM trunk_log WHERE trunk_id = ?"
                    " ORDER BY id DESC LIMIT ?",
                    SA_INT(id), SA_INT(limit), SA_END) < 0 ||
        !r) {
        http_reply_error(req, 500, "store", NULL, "cannot read the log");
        return;
    }
    json_t *items = json_array();
    while (store_next(r))
        json_array_append_new(items,
                              json_pack("{sI ss ss}", "ts_ms", (json_int_t)store_int(r, 0), "event",
                                        store_str(r, 1), "detail", store_str(r, 2)));
    store_res_free(r);
    http_reply_json(req, 200, json_pack("{so}", "items", items));
}

static void list_registrations(http_req *req)
{
    int64_t dom;
    if (!http_domain_param(req, 0, &dom)) return;
    int max = 10000;
    struct sip_registration *regs = cw_calloc((size_t)max, sizeof *regs);
    int n = sip_registrations(dom, regs, max);
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(
            items, json_pack("{sI ss ss ss ss sI ss ss}", "user_id", (json_int_t)regs[i].user_id,
                             "login", regs[i].login, "extension", regs[i].extension, "contact",
                             regs[i].contact.uri, "user_agent", regs[i].contact.user_agent,
                             "expires_at", (json_int_t)regs[i].contact.expires_at, "source",
                             regs[i].source, "transport", regs[i].transport));
    free(regs);
    http_reply_json(req, 200, json_pack("{so}", "items", items));
}

static void list_bans(http_req *req)
{
    struct sip_ban b[512];
    int n = sip_bans(b, (int)CW_ARRAY_LEN(b));
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, json_pack("{ss sI si}", "ip", b[i].ip, "until",
                                               (json_int_t)b[i].until, "failures", b[i].failures));
    http_reply_json(req, 200, json_pack("{so}", "items", items));
}

static void lift_ban(http_req *req)
{
    const char *ip = req->nparams > 0 ? req->params[0] : "";
    if (!*ip || strlen(ip) >= 64 || !chars_ok(ip, ".:")) {
        http_reply_error(req, 400, "invalid", "ip", "not an address");
        return;
    }
    if (sip_ban_lift(ip) != CW_OK) {
        http_reply_error(req, 404, "not_found", NULL, "%s is not banned", ip);
        return;
    }
    http_audit(req, 0, "sip_ban", ip, "delete", json_object());
    http_reply_json(req, 200, json_pack("{sb}", "ok", 1));
}

void sip_api_init(void)
{
    crud_register(&trunks);
    http_route("GET", "/api/v1/domains/:domain/trunks/:id/status", trunk_status, ROLE_DOMAIN_ADMIN,
               0, "Live registration status and lines in use");
    http_route("GET", "/api/v1/domains/:domain/trunks/:id/log", trunk_log, ROLE_DOMAIN_ADMIN, 0,
               "The trunk's recent events, newest first");
    http_route("GET", "/api/v1/domains/:domain/registrations", list_registrations,
               ROLE_DOMAIN_ADMIN, 0, "Registered SIP devices of the domain");
    http_route("GET", "/api/v1/sip/bans", list_bans, ROLE_SYSADMIN, 0,
               "Addresses banned after failed SIP authentications");
    http_route("DELETE", "/api/v1/sip/bans/:ip", lift_ban, ROLE_SYSADMIN, 0,
               "Lift the ban on an address");
    log_debug("sip", "API routes registered");
}
