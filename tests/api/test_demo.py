#!/usr/bin/python3
# cw-test: both-stores
"""The demo tenant of `make run` (config demo=true): the accounts and
passwords of the README log in, the domain holds its admin, a supervisor,
three operators 101-103, the Support queue and the Main menu IVR on a city
number; a second start creates nothing twice."""

from cwtest import DEMO, DEMO_DOMAIN, Daemon, run_tests

DOM = "/api/v1/domains/" + DEMO_DOMAIN


def test_every_demo_account_logs_in_with_its_readme_password(d):
    assert d.login("sysadmin", DEMO["sysadmin"]).ok("GET", "/api/v1/auth/me")["role"] == \
        "sysadmin"
    roles = {}
    for login in ("admin", "supervisor", "op101", "op102", "op103"):
        me = d.login(login, DEMO[login], DEMO_DOMAIN).ok("GET", "/api/v1/auth/me")
        roles[login] = (me["role"], me["extension"], me["is_operator"])
    assert roles == {"admin": ("domain_admin", "100", False),
                     "supervisor": ("supervisor", "110", False),
                     "op101": ("operator", "101", True), "op102": ("operator", "102", True),
                     "op103": ("operator", "103", True)}, roles


def test_the_domain_has_its_queue_ivr_and_number(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    users = {u["login"]: u for u in c.ok("GET", DOM + "/users")["items"]}
    q = c.ok("GET", DOM + "/call-groups")["items"]
    assert len(q) == 1 and q[0]["name"] == "Support" and q[0]["extension"] == "200"
    assert q[0]["strategy"] == "longest_idle"
    assert sorted(m["user_id"] for m in q[0]["members"]) == sorted(
        users[x]["id"] for x in ("op101", "op102", "op103"))
    ivr = c.ok("GET", DOM + "/ivr-flows")["items"]
    assert [(f["name"], f["extension"], f["script"]) for f in ivr] == \
        [("Main menu", "500", "main_menu")]
    nums = c.ok("GET", DOM + "/numbers")["items"]
    assert [(n["number"], n["target"]) for n in nums] == [("74951234567", "500")]
    dom = c.ok("GET", "/api/v1/domains")["items"][0]
    assert dom["name"] == DEMO_DOMAIN and dom["pool_id"] and dom["subgroup_id"]
    # the SIP registrar can authenticate the demo phones
    for login in ("op101", "admin"):
        md5 = d.sql("SELECT sip_ha1_md5 FROM users WHERE login = '%s'" % login)[0][0]
        assert len(md5) == 32


def test_a_second_start_changes_nothing(d):
    tables = ("users", "domains", "pools", "subgroups", "call_groups", "call_group_members",
              "ivr_flows", "external_numbers")
    before = {t: d.sql("SELECT * FROM %s ORDER BY 1" % t) for t in tables}
    d.stop()
    d.start()
    after = {t: d.sql("SELECT * FROM %s ORDER BY 1" % t) for t in tables}
    assert after == before
    d.login("admin", DEMO["admin"], DEMO_DOMAIN)


def test_without_demo_the_store_starts_empty(d):
    e = Daemon(demo=False, store="sqlite")
    try:
        e.start()
        assert e.sql("SELECT COUNT(*) FROM users") == [["0"]]
        assert e.sql("SELECT COUNT(*) FROM domains") == [["0"]]
        e.client().login("admin", DEMO["admin"], DEMO_DOMAIN, expect=401)
        e.stop()
    finally:
        e.cleanup()


if __name__ == "__main__":
    run_tests([test_every_demo_account_logs_in_with_its_readme_password,
               test_the_domain_has_its_queue_ivr_and_number,
               test_a_second_start_changes_nothing,
               test_without_demo_the_store_starts_empty],
              demo=True)
