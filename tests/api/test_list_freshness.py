#!/usr/bin/python3
# cw-test: both-stores
"""A list page read again shows every change made since, at once: writes
through the API (the listed entity and the member tables its objects
show), a write to the store by another connection, and the pages of
different callers and tenants stay apart (list pages are reused while the
store is unchanged)."""

from cwtest import DEMO, DEMO_DOMAIN, random_name, run_tests

USERS = "/api/v1/domains/%s/users" % DEMO_DOMAIN


def listed(c, **query):
    """The users page, read twice so that a reused page would be the one checked."""
    query.setdefault("limit", 1000)
    first = c.ok("GET", USERS, query=query)
    again = c.ok("GET", USERS, query=query)
    assert first == again, "two reads with no change between them differ"
    return again


def by_id(page, uid):
    found = [u for u in page["items"] if u["id"] == uid]
    return found[0] if found else None


def test_api_changes_show_in_the_next_page(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    before = listed(c)
    login = random_name("fresh")
    u = c.ok("POST", USERS, {"login": login, "display_name": "Aaaa Fresh",
                             "password": "Fresh-pw-1234"}, status=201)
    page = listed(c)
    assert page["total"] == before["total"] + 1, (page["total"], before["total"])
    assert by_id(page, u["id"])["display_name"] == "Aaaa Fresh"
    c.ok("PATCH", "%s/%d" % (USERS, u["id"]), {"display_name": "Zzzz Fresh"})
    assert by_id(listed(c), u["id"])["display_name"] == "Zzzz Fresh"
    assert listed(c, q="zzzz fresh")["items"][0]["id"] == u["id"]
    # a call group and a pickup group written through their own endpoints
    cg = c.ok("POST", "/api/v1/domains/%s/call-groups" % DEMO_DOMAIN,
              {"name": random_name("Fresh group "), "members": [{"user_id": u["id"]}]}, status=201)
    pg = c.ok("POST", "/api/v1/domains/%s/pickup-groups" % DEMO_DOMAIN,
              {"name": random_name("Fresh floor "), "members": [u["id"]]}, status=201)
    shown = by_id(listed(c), u["id"])
    assert shown["call_groups"] == [cg["id"]], shown
    assert shown["pickup_group_id"] == pg["id"], shown
    c.ok("DELETE", "/api/v1/domains/%s/pickup-groups/%d" % (DEMO_DOMAIN, pg["id"]))
    c.ok("DELETE", "/api/v1/domains/%s/call-groups/%d" % (DEMO_DOMAIN, cg["id"]))
    shown = by_id(listed(c), u["id"])
    assert shown["call_groups"] == [] and shown["pickup_group_id"] is None, shown
    c.ok("DELETE", "%s/%d" % (USERS, u["id"]))
    page = listed(c)
    assert by_id(page, u["id"]) is None and page["total"] == before["total"]


def test_a_write_by_another_connection_shows_in_the_next_page(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    uid = c.ok("GET", USERS, query={"login": "supervisor"})["items"][0]["id"]
    old = by_id(listed(c), uid)["display_name"]
    d.sql_exec("UPDATE users SET display_name = ? WHERE id = ?", ("Changed Elsewhere", uid))
    try:
        assert by_id(listed(c), uid)["display_name"] == "Changed Elsewhere"
    finally:
        d.sql_exec("UPDATE users SET display_name = ? WHERE id = ?", (old, uid))
    assert by_id(listed(c), uid)["display_name"] == old


def test_pages_of_other_callers_and_tenants_stay_apart(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    mine = listed(admin)
    other_domain = random_name("fresh") + ".test"
    stranger = d.tenant_login(other_domain, "otheradmin", "domain_admin", "Other-pw-1234")
    # the demo page was just read; another tenant still cannot have it
    r = stranger.get(USERS, query={"limit": 1000})
    assert r.status == 404, (r.status, r.text)
    theirs = stranger.ok("GET", "/api/v1/domains/%s/users" % other_domain,
                         query={"limit": 1000})
    assert [u["login"] for u in theirs["items"]] == ["otheradmin"], theirs
    assert listed(admin) == mine
    # an operator may not list users, whoever read the page before
    op = d.tenant_login(DEMO_DOMAIN, random_name("op"), "operator", "Oper-pw-1234")
    r = op.get(USERS, query={"limit": 1000})
    assert r.status == 403, (r.status, r.text)


if __name__ == "__main__":
    run_tests([test_api_changes_show_in_the_next_page,
               test_a_write_by_another_connection_shows_in_the_next_page,
               test_pages_of_other_callers_and_tenants_stay_apart], demo=True)
