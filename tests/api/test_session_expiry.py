#!/usr/bin/python3
# cw-test: both-stores
"""A web session ends on the server when auth.session_ttl has passed.

With a 5-second lifetime the login says so (expires_in, the cookie's
Max-Age), the cookie works at once, and after the lifetime the same cookie,
still sent by a client that ignores Max-Age, gets 401 on every route. A
session opened later keeps working until its own end, and the next login
removes the expired session's row.
"""

import time

from cwtest import DEMO, DEMO_DOMAIN, run_tests

TTL = 5  # the store keeps whole seconds: a session lives TTL - 1 to TTL s


def test_a_cookie_stops_working_after_the_session_ttl(d):
    c = d.client()
    r = c.login("admin", DEMO["admin"], DEMO_DOMAIN)
    t0 = time.monotonic()
    assert r.json["expires_in"] == TTL, r
    cookie = r.header("set-cookie")
    assert "Max-Age=%d" % TTL in cookie and "HttpOnly" in cookie, cookie
    assert c.get("/api/v1/auth/me").status == 200
    assert c.get("/api/v1/domains/%s/users" % DEMO_DOMAIN).status == 200
    time.sleep(3.0)
    later = d.login("supervisor", DEMO["supervisor"], DEMO_DOMAIN)
    t1 = time.monotonic()
    assert len(d.sql("SELECT token_hash FROM sessions")) == 2
    time.sleep(max(0.0, t0 + TTL + 1.1 - time.monotonic()))
    for path in ("/api/v1/auth/me", "/api/v1/domains/%s/users" % DEMO_DOMAIN):
        r = c.get(path)
        assert r.status == 401, (path, r)
    assert c.cookies, "the client kept sending the cookie"
    # the later session is still within its lifetime (about 3 of at least 4 s)
    assert time.monotonic() < t1 + TTL - 1.3, "the machine is too slow for this test"
    assert later.get("/api/v1/auth/me").status == 200
    time.sleep(max(0.0, t1 + TTL + 1.1 - time.monotonic()))
    assert later.get("/api/v1/auth/me").status == 401
    d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    assert len(d.sql("SELECT token_hash FROM sessions")) == 1, "expired sessions kept"


if __name__ == "__main__":
    run_tests([test_a_cookie_stops_working_after_the_session_ttl], demo=True,
              sets={"auth.session_ttl": str(TTL)})
