#!/usr/bin/python3
# cw-test: both-stores
"""GET /api/v1/events: Server-Sent Events of the event bus, filtered by
tenant and role, resumable with Last-Event-ID, with keep-alive comments;
a client that goes away is dropped without harm."""

import time

from cwtest import DEMO, DEMO_DOMAIN, EventStream, TestFailure, run_tests, wait_until

DOM = "/api/v1/domains/" + DEMO_DOMAIN
S = {}


def stream(d, client, **kw):
    es = EventStream(d.http_port, cookies=client.cookies, **kw)
    assert es.status == 200, es.body
    assert es.resp.getheader("Content-Type") == "text/event-stream"
    return es


def setup_other_tenant(d):
    if "b" in S:
        return
    sa = d.login("sysadmin", DEMO["sysadmin"])
    b = sa.ok("POST", "/api/v1/domains", {"name": "b.example"}, status=201)
    sa.ok("POST", "/api/v1/domains/%d/users" % b["id"],
          {"login": "badmin", "display_name": "B admin", "password": "B-admin-pass-1",
           "role": "domain_admin"}, status=201)
    S["b"] = b
    S["badmin"] = d.login("badmin", "B-admin-pass-1", "b.example")


def test_a_change_shows_up_as_an_event(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    es = stream(d, admin)
    admin.ok("POST", DOM + "/users", {"login": "sse.user", "display_name": "SSE",
                                      "password": "Sse-pass-123"}, status=201)
    ev = es.wait_for(lambda e: e["event"] == "config.user.created")
    assert ev["data"]["type"] == "config.user.created" and ev["data"]["domain_id"] == 1, ev
    assert ev["data"]["data"]["name"] == "sse.user" and ev["id"] == ev["data"]["id"], ev
    S["first_id"] = ev["id"]
    es.close()


def test_events_are_filtered_by_tenant(d):
    setup_other_tenant(d)
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    a_es, b_es = stream(d, admin), stream(d, S["badmin"])
    sa = d.login("sysadmin", DEMO["sysadmin"])
    sa_es = stream(d, sa)
    S["badmin"].ok("POST", "/api/v1/domains/%d/call-groups" % S["b"]["id"], {"name": "B queue"},
                   status=201)
    admin.ok("POST", DOM + "/call-groups", {"name": "A queue"}, status=201)
    a_ev = a_es.next()
    b_ev = b_es.next()
    assert a_ev["event"] == "config.call_group.created" and a_ev["data"]["data"]["name"] == \
        "A queue", a_ev
    assert b_ev["data"]["data"]["name"] == "B queue", b_ev
    # the system admin sees both, in order
    got = [sa_es.next()["data"]["data"]["name"] for _ in range(2)]
    assert got == ["B queue", "A queue"], got
    for es in (a_es, b_es, sa_es):
        es.close()


def test_operators_see_only_events_about_themselves(d):
    op = d.login("op101", DEMO["op101"], DEMO_DOMAIN)
    es = stream(d, op)
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    ids = {u["login"]: u["id"] for u in admin.ok("GET", DOM + "/users")["items"]}
    admin.ok("PATCH", DOM + "/users/%d" % ids["op102"], {"job_title": "Senior"})
    admin.ok("PATCH", DOM + "/users/%d" % ids["op101"], {"job_title": "Junior"})
    ev = es.next()
    assert ev["event"] == "config.user.updated" and ev["data"]["data"]["id"] == ids["op101"], ev
    try:
        extra = es.next(timeout=0.7)
        raise AssertionError("operator saw another event: %r" % extra)
    except TestFailure:
        pass
    es.close()


def test_last_event_id_replays_what_was_missed(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    es = stream(d, admin, last_event_id=S["first_id"] - 1)
    ev = es.next()
    assert ev["id"] == S["first_id"] and ev["data"]["data"]["name"] == "sse.user", ev
    nxt = es.next()
    assert nxt["id"] > ev["id"], nxt
    es.close()
    # the same through ?last_event_id= (a browser's first connect) with a type filter
    es = stream(d, admin, query_last_id=0, types=["config.call_group."])
    ev = es.next()
    assert ev["event"].startswith("config.call_group.") and ev["data"]["domain_id"] == 1, ev
    es.close()


def test_keepalive_comments_and_clients_that_go_away(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    es = stream(d, admin)
    t0 = time.monotonic()
    c = es.next(timeout=5, comments=True)
    assert c["comment"] == "connected", c
    c = es.next(timeout=5, comments=True)
    assert c["comment"] == "ping" and time.monotonic() - t0 < 4, c
    gone = d.log_text().count("went away")
    es.close()
    wait_until(lambda: d.log_text().count("went away") > gone, 10,
               what="the server to notice the closed stream")
    # many streams opened and dropped leave the daemon serving
    for _ in range(20):
        stream(d, admin).close()
    assert admin.ok("GET", "/api/v1/auth/me")["login"] == "admin"
    r = d.client().get("/api/v1/events")
    assert r.status == 401, r


if __name__ == "__main__":
    run_tests([test_a_change_shows_up_as_an_event,
               test_events_are_filtered_by_tenant,
               test_operators_see_only_events_about_themselves,
               test_last_event_id_replays_what_was_missed,
               test_keepalive_comments_and_clients_that_go_away],
              demo=True, log_level="debug", sets={"http.sse_heartbeat": "1"})
