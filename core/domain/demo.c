/*
 * demo.c - the demo tenant that `make run` starts with (config demo=true):
 * a system admin, pool "Demo pool", domain demo.local with its admin, a
 * supervisor, three operators, the "Support" queue and the "Main menu" IVR
 * flow on a city number. The passwords are documented in the README.
 * Idempotent: each object is created only when missing. Runs at start-up,
 * before the loop, so hashing the few passwords here blocks nobody.
 */
#include "auth/auth.h"
#include "base/cw.h"
#include "config/config.h"
#include "domain/domain.h"
#include "log/log.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

#define DEMO_DOMAIN "demo.local"

struct demo_user {
    const char *login, *name, *ext, *role, *password;
    bool operator;
};

static const struct demo_user demo_users[] = {
    {"admin", "Demo Admin", "100", "domain_admin", "Demo-admin-1", false},
    {"supervisor", "Demo Supervisor", "110", "supervisor", "Demo-super-1", false},
    {"op101", "Operator 101", "101", "operator", "Demo-op101-1", true},
    {"op102", "Operator 102", "102", "operator", "Demo-op102-1", true},
    {"op103", "Operator 103", "103", "operator", "Demo-op103-1", true},
};

static int64_t find(const char *sql, const char *arg)
{
    int64_t id = 0;
    store_query_int(store_main(), &id, sql, SA_STR(arg), SA_END);
    return id;
}

static int insert_id(int64_t *id, const char *sql, const store_arg *args, int n)
{
    store_res *r;
    int rc = store_queryv(store_main(), &r, sql, args, n);
    if (rc >= 0 && store_next(r)) *id = store_int(r, 0);
    store_res_free(r);
    return rc < 0 ? rc : CW_OK;
}

static int ensure_user(int64_t domain_id, const struct demo_user *u, int64_t *out)
{
    store *st = store_main();
    if (store_query_int(st, out, "SELECT id FROM users WHERE domain_id = ? AND login = ?",
                        SA_INT(domain_id), SA_STR(u->login), SA_END) == CW_OK)
        return CW_OK;
    char hash[AUTH_HASH_MAX], md5[33], sha[65];
    if (auth_hash_password(u->password, config_int("auth.pbkdf2_iterations"), hash, sizeof hash))
        return CW_EIO;
    auth_sip_ha1(u->login, DEMO_DOMAIN, u->password, md5, sha);
    int64_t now = cw_wall_time();
    store_arg a[] = {SA_INT(domain_id), SA_STR(u->login),     SA_STR(u->name), SA_STR(u->ext),
                     SA_STR(u->role),   SA_BOOL(u->operator), SA_STR(hash),    SA_STR(md5),
                     SA_STR(sha),       SA_INT(now),          SA_INT(now)};
    log_info("core", "demo: user %s@%s (extension %s)", u->login, DEMO_DOMAIN, u->ext);
    return insert_id(out,
                     "INSERT INTO users(domain_id, login, display_name, extension, role, "
                     "is_operator, password_hash, sip_ha1_md5, sip_ha1_sha256, created_at, "
                     "updated_at) VALUES(?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                     a, (int)CW_ARRAY_LEN(a));
}

static int ensure(void)
{
    store *st = store_main();
    int64_t now = cw_wall_time(), id;
    int rc;
    if (!find("SELECT id FROM users WHERE domain_id IS NULL AND login = ?", "sysadmin")) {
        char hash[AUTH_HASH_MAX];
        if (auth_hash_password("Demo-sysadmin-1", config_int("auth.pbkdf2_iterations"), hash,
                               sizeof hash))
            return CW_EIO;
        store_arg a[] = {SA_STR(hash), SA_INT(now), SA_INT(now)};
        if ((rc = insert_id(&id,
                            "INSERT INTO users(login, display_name, role, password_hash, "
                            "created_at, updated_at) VALUES('sysadmin', 'System Administrator', "
                            "'sysadmin', ?, ?, ?) RETURNING id",
                            a, 3)))
            return rc;
        log_info("core", "demo: system administrator sysadmin");
    }
    int64_t pool = find("SELECT id FROM pools WHERE name = ?", "Demo pool"), sub = 0;
    if (!pool) {
        store_arg a[] = {SA_INT(now)};
        if ((rc = insert_id(
                 &pool, "INSERT INTO pools(name, created_at) VALUES('Demo pool', ?) RETURNING id",
                 a, 1)))
            return rc;
        store_arg b[] = {SA_INT(pool), SA_INT(now)};
        if ((rc = insert_id(&sub,
                            "INSERT INTO subgroups(pool_id, name, is_default, created_at) "
                            "VALUES(?, 'Ungrouped', 1, ?) RETURNING id",
                            b, 2)))
            return rc;
    }
    store_query_int(st, &sub, "SELECT id FROM subgroups WHERE pool_id = ? AND is_default = 1",
                    SA_INT(pool), SA_END);
    int64_t domain = find("SELECT id FROM domains WHERE name = ?", DEMO_DOMAIN);
    if (!domain) {
        store_arg a[] = {SA_INT(pool), sub ? SA_INT(sub) : SA_NULL, SA_INT(now)};
        if ((rc = insert_id(&domain,
                            "INSERT INTO domains(pool_id, subgroup_id, name, display_name, "
                            "routing_number, timezone, created_at) VALUES(?, ?, '" DEMO_DOMAIN
                            "', 'Demo company', '4455', 'Europe/Moscow', ?) RETURNING id",
                            a, 3)))
            return rc;
        log_info("core", "demo: domain " DEMO_DOMAIN);
    }
    int64_t uid[CW_ARRAY_LEN(demo_users)];
    for (size_t i = 0; i < CW_ARRAY_LEN(demo_users); i++)
        if ((rc = ensure_user(domain, &demo_users[i], &uid[i]))) return rc;
    int64_t group = 0;
    if (store_query_int(st, &group,
                        "SELECT id FROM call_groups WHERE domain_id = ? AND name = 'Support'",
                        SA_INT(domain), SA_END) != CW_OK) {
        store_arg a[] = {SA_INT(domain), SA_INT(now)};
        if ((rc = insert_id(&group,
                            "INSERT INTO call_groups(domain_id, name, extension, strategy, "
                            "created_at) VALUES(?, 'Support', '200', 'longest_idle', ?) "
                            "RETURNING id",
                            a, 2)))
            return rc;
        for (size_t i = 0; i < CW_ARRAY_LEN(demo_users); i++)
            if (demo_users[i].operator&&
                store_exec(st, "INSERT INTO call_group_members(group_id, user_id) VALUES(?,?)",
                           SA_INT(group), SA_INT(uid[i]), SA_END) < 0)
                return CW_EIO;
        log_info("core", "demo: queue Support (extension 200, longest_idle)");
    }
    int64_t one;
    if (store_query_int(st, &one, "SELECT 1 FROM ivr_flows WHERE domain_id = ? AND name = ?",
                        SA_INT(domain), SA_STR("Main menu"), SA_END) != CW_OK) {
        if (store_exec(st,
                       "INSERT INTO ivr_flows(domain_id, name, extension, script, updated_at) "
                       "VALUES(?, 'Main menu', '500', 'main_menu', ?)",
                       SA_INT(domain), SA_INT(now), SA_END) < 0)
            return CW_EIO;
        log_info("core", "demo: IVR flow Main menu (extension 500)");
    }
    if (store_query_int(st, &one, "SELECT 1 FROM external_numbers WHERE number = ?",
                        SA_STR("74951234567"), SA_END) != CW_OK &&
        store_exec(st,
                   "INSERT INTO external_numbers(domain_id, number, description, kind, target, "
                   "created_at) VALUES(?, '74951234567', 'Main number: IVR', 'city', '500', ?)",
                   SA_INT(domain), SA_INT(now), SA_END) < 0)
        return CW_EIO;
    return CW_OK;
}

int domain_demo_ensure(void)
{
    store *st = store_main();
    store_begin(st);
    int rc = ensure();
    if (rc) {
        log_error("core", "demo tenant: %s", store_errmsg(st));
        store_rollback(st);
        return rc;
    }
    return store_commit(st);
}
