/*
 * tenant.c - who may reach which domain, pool and audit rows.
 *
 * sysadmin: everything. pool_supervisor: the domains of its pool.
 * subgroup_admin: the domains of its pool that sit in its allowed
 * subgroups. Domain users: their own domain. Anything else is answered
 * 404, so other tenants' objects are not even confirmed to exist.
 */
#include "base/cw.h"
#include "http/http.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

bool http_domain_reachable(const struct auth_ctx *a, int64_t domain_id)
{
    if (!a || domain_id <= 0) return false;
    /* a domain user reaches only its own domain, which exists while the user does */
    if (a->role != ROLE_SYSADMIN && a->role != ROLE_POOL_SUPERVISOR &&
        a->role != ROLE_SUBGROUP_ADMIN && a->role != ROLE_NONE)
        return a->domain_id == domain_id;
    store_res *r;
    if (store_query(store_main(), &r, "SELECT pool_id, subgroup_id FROM domains WHERE id = ?",
                    SA_INT(domain_id), SA_END) < 0)
        return false;
    bool ok = false;
    if (store_next(r)) {
        int64_t pool = store_int(r, 0), sub = store_int(r, 1);
        switch (a->role) {
        case ROLE_SYSADMIN:
            ok = true;
            break;
        case ROLE_POOL_SUPERVISOR:
            ok = pool && pool == a->pool_id;
            break;
        case ROLE_SUBGROUP_ADMIN: {
            int64_t one;
            ok = pool && pool == a->pool_id &&
                 store_query_int(store_main(), &one,
                                 "SELECT 1 FROM user_subgroups WHERE user_id = ? AND "
                                 "subgroup_id = ?",
                                 SA_INT(a->user_id), SA_INT(sub), SA_END) == CW_OK;
            break;
        }
        case ROLE_NONE:
            break;
        default:
            ok = a->domain_id == domain_id;
            break;
        }
    }
    store_res_free(r);
    return ok;
}

bool http_domain_access(http_req *req, int64_t domain_id)
{
    if (http_domain_reachable(req->auth, domain_id)) return true;
    http_reply_error(req, 404, "not_found", NULL, "no such domain");
    return false;
}

bool http_domain_param(http_req *req, int idx, int64_t *domain_id)
{
    const char *v = idx < req->nparams ? req->params[idx] : NULL;
    int64_t id = 0;
    if (v && cw_str_is_digits(v)) {
        cw_parse_i64(v, &id);
    } else if (v && req->auth && req->auth->domain_id && !strcmp(v, req->auth->domain)) {
        id = req->auth->domain_id; /* the caller's own domain, by name */
    } else if (v) {
        store_query_int(store_main(), &id, "SELECT id FROM domains WHERE name = ?", SA_STR(v),
                        SA_END);
    }
    if (!http_domain_access(req, id)) return false;
    *domain_id = id;
    return true;
}

bool http_pool_param(http_req *req, int idx, int64_t *pool_id)
{
    const char *v = idx < req->nparams ? req->params[idx] : NULL;
    int64_t id = 0, one;
    bool ok = v && cw_str_is_digits(v) && cw_parse_i64(v, &id) == CW_OK &&
              store_query_int(store_main(), &one, "SELECT 1 FROM pools WHERE id = ?", SA_INT(id),
                              SA_END) == CW_OK;
    if (ok && req->auth->role != ROLE_SYSADMIN)
        ok = (req->auth->role == ROLE_POOL_SUPERVISOR || req->auth->role == ROLE_SUBGROUP_ADMIN) &&
             req->auth->pool_id == id;
    if (!ok) {
        http_reply_error(req, 404, "not_found", NULL, "no such pool");
        return false;
    }
    *pool_id = id;
    return true;
}

const char *http_domain_reach_sql(const struct auth_ctx *a, const char *col, char *buf,
                                  size_t buflen, store_arg *args, int *nargs)
{
    switch (a ? a->role : ROLE_NONE) {
    case ROLE_SYSADMIN:
        snprintf(buf, buflen, "1 = 1");
        break;
    case ROLE_POOL_SUPERVISOR:
        snprintf(buf, buflen, "%s IN (SELECT id FROM domains WHERE pool_id = ?)", col);
        args[(*nargs)++] = SA_INT(a->pool_id);
        break;
    case ROLE_SUBGROUP_ADMIN:
        snprintf(buf, buflen,
                 "%s IN (SELECT id FROM domains WHERE pool_id = ? AND subgroup_id IN "
                 "(SELECT subgroup_id FROM user_subgroups WHERE user_id = ?))",
                 col);
        args[(*nargs)++] = SA_INT(a->pool_id);
        args[(*nargs)++] = SA_INT(a->user_id);
        break;
    case ROLE_NONE:
        snprintf(buf, buflen, "1 = 0");
        break;
    default:
        snprintf(buf, buflen, "%s = ?", col);
        args[(*nargs)++] = SA_INT(a->domain_id);
        break;
    }
    return buf;
}
