/*
 * targets.c - where a dialled string leads: a user of the domain, a user of
 * another domain of the pool, a SIP URI, or an outside number through a
 * trunk within the caller's outbound restriction. Shared by the Lua bridge
 * and the ACD's callbacks. Core thread; reads the store.
 */
#include "base/cw.h"
#include "call/call_int.h"
#include "route/numbers.h"
#include "store/store.h"

#include <string.h>

/* A user of another domain of the caller's pool: routing number + extension (seed 001 §4.5.4). */
static int64_t interdomain_user(int64_t domain, const char *num)
{
    store_res *r;
    int64_t found = 0;
    if (store_query(store_main(), &r,
                    "SELECT u.id FROM domains d JOIN domains o ON o.pool_id = d.pool_id "
                    "JOIN users u ON u.domain_id = o.id "
                    "WHERE d.id = ? AND o.id <> d.id AND o.routing_number IS NOT NULL "
                    "AND o.routing_number <> '' AND u.status = 'active' "
                    "AND ? = o.routing_number || u.extension",
                    SA_INT(domain), SA_STR(num), SA_END) >= 0 &&
        store_next(r))
        found = store_int(r, 0);
    store_res_free(r);
    return found;
}

/* The caller's restriction and presented number for calls out of the platform. */
static void caller_policy(call *c, char *restriction, size_t rlen, char *cli, size_t clen)
{
    int64_t user = leg_user(call_a_leg(c));
    cw_strlcpy(restriction, "none", rlen);
    cli[0] = '\0';
    if (!user) return; /* a call from a trunk forwarded on: nobody's restriction */
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT u.restriction, COALESCE(u.cli_number, d.default_cli, '') "
                    "FROM users u JOIN domains d ON d.id = u.domain_id WHERE u.id = ?",
                    SA_INT(user), SA_END) >= 0 &&
        store_next(r)) {
        cw_strlcpy(restriction, store_str(r, 0), rlen);
        cw_strlcpy(cli, store_str(r, 1), clen);
    }
    store_res_free(r);
}

/*
 * Where a target leads: "user:<id>" (this domain), "trunk:<id>:<number>" (a
 * number behind one trunk of the domain), "sip:..." (a URI), or a
 * number: a user of this domain by extension or login, a user of another
 * domain of the pool by routing number + extension, else an outside number
 * through a trunk, when the caller's outbound restriction allows it.
 * *why names the refusal: "no_route" or "restricted".
 */
int call_target(call *c, const char *t, int timeout_s, struct dial_target *out, const char **why)
{
    memset(out, 0, sizeof *out);
    out->timeout_s = timeout_s;
    *why = "no_route";
    int64_t dom = call_domain(c);
    if (cw_str_has_prefix(t, "user:")) {
        int64_t id, ok;
        if (cw_parse_i64(t + 5, &id)) return CW_EINVAL;
        if (store_query_int(store_main(), &ok,
                            "SELECT id FROM users WHERE id = ? AND domain_id = ?", SA_INT(id),
                            SA_INT(dom), SA_END))
            return CW_ENOENT;
        out->kind = SIP_TARGET_USER;
        out->user_id = id;
        return CW_OK;
    }
    if (cw_str_has_prefix(t, "trunk:")) {
        /* "trunk:<id>:<number>": a number behind one trunk of the domain (a private route);
           the caller's outbound restriction does not apply, the caller's number is shown */
        char idbuf[24];
        const char *colon = strchr(t + 6, ':');
        size_t n = colon ? (size_t)(colon - (t + 6)) : 0;
        int64_t id, ok;
        if (!n || n >= sizeof idbuf || !colon[1] || strlen(colon + 1) >= sizeof out->uri)
            return CW_EINVAL;
        memcpy(idbuf, t + 6, n);
        idbuf[n] = '\0';
        if (cw_parse_i64(idbuf, &id) ||
            store_query_int(store_main(), &ok,
                            "SELECT 1 FROM trunks WHERE id = ? AND domain_id = ? AND enabled = 1",
                            SA_INT(id), SA_INT(dom), SA_END))
            return CW_ENOENT;
        out->kind = SIP_TARGET_TRUNK;
        out->trunk_id = id;
        cw_strlcpy(out->uri, colon + 1, sizeof out->uri);
        return CW_OK;
    }
    if (cw_str_has_prefix(t, "sip:")) {
        out->kind = SIP_TARGET_URI;
        cw_strlcpy(out->uri, t, sizeof out->uri);
        return CW_OK;
    }
    const char *num = cw_str_has_prefix(t, "ext:") ? t + 4 : t;
    int64_t id;
    if (store_query_int(store_main(), &id,
                        "SELECT id FROM users WHERE domain_id = ? AND status = 'active' AND "
                        "(extension = ? OR login = ?)",
                        SA_INT(dom), SA_STR(num), SA_STR(num), SA_END) == CW_OK ||
        (id = interdomain_user(dom, num)) > 0) {
        out->kind = SIP_TARGET_USER;
        out->user_id = id;
        return CW_OK;
    }
    if (t != num) return CW_ENOENT; /* "ext:" asks for an extension only */
    char restriction[48], cli[64];
    caller_policy(c, restriction, sizeof restriction, cli, sizeof cli);
    enum number_class cls = route_classify(num);
    if (!route_restriction_allows(restriction, cls)) {
        *why = cls == NUM_INVALID ? "no_route" : "restricted";
        call_log(c, "restricted", "%s is %s; restriction %s", num, route_class_name(cls),
                 restriction);
        return CW_EPERM;
    }
    struct sip_route route;
    int rc = sip_route_outbound(dom, leg_user(call_a_leg(c)), num, &route);
    if (rc) {
        call_log(c, "no-trunk", "%s: %s", num, rc == CW_EBUSY ? "all lines busy" : "no trunk");
        return rc;
    }
    out->kind = SIP_TARGET_TRUNK;
    out->trunk_id = route.trunk_id;
    cw_strlcpy(out->uri, route.number, sizeof out->uri);
    cw_strlcpy(out->from_user, route.caller_id[0] ? route.caller_id : cli, sizeof out->from_user);
    return CW_OK;
}
