#!/usr/bin/python3
# cw-test: both-stores
"""Authentication: login for domain users and for accounts without a
domain, the session cookie, logout, API tokens, password change (needs the
old password), the stored hash format and the SIP HA1 digests; a user
blocked or changed is refused or seen changed on the very next request."""

import hashlib

from cwtest import DEMO, DEMO_DOMAIN, run_tests

DOM = "/api/v1/domains/" + DEMO_DOMAIN


def test_login_sets_a_strict_httponly_session_cookie(d):
    c = d.client()
    r = c.login("admin", DEMO["admin"], DEMO_DOMAIN)
    cookie = r.header("set-cookie")
    assert cookie.startswith("cw_session="), cookie
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"):
        assert attr in cookie, cookie
    assert "Secure" not in cookie, "plain HTTP must not mark the cookie Secure"
    u = r.json["user"]
    assert u["login"] == "admin" and u["role"] == "domain_admin" and u["domain"] == DEMO_DOMAIN
    assert u["sip_address"] == "admin@demo.local"
    me = c.ok("GET", "/api/v1/auth/me")
    assert me["id"] == u["id"] and me["via_token"] is False
    # the session row stores a hash, not the cookie value
    token = c.cookies["cw_session"]
    rows = d.sql("SELECT token_hash FROM sessions")
    assert rows and all(token not in row[0] for row in rows)
    assert [hashlib.sha256(token.encode()).hexdigest()] in rows


def test_wrong_password_unknown_user_and_wrong_domain_all_get_401(d):
    c = d.client()
    for login, pw, dom in (("admin", "Demo-admin-2", DEMO_DOMAIN),
                           ("nobody", DEMO["admin"], DEMO_DOMAIN),
                           ("admin", DEMO["admin"], "other.example"),
                           ("admin", DEMO["admin"], None)):
        r = c.login(login, pw, dom, expect=None)
        assert r.status == 401 and r.error()["code"] == "invalid_credentials", (login, dom, r)
        assert "set-cookie" not in r.headers
    assert c.get("/api/v1/auth/me").status == 401


def test_system_admin_logs_in_without_a_domain(d):
    c = d.login("sysadmin", DEMO["sysadmin"])
    me = c.ok("GET", "/api/v1/auth/me")
    assert me["role"] == "sysadmin" and me["domain_id"] is None


def test_logout_ends_the_session(d):
    c = d.login("op101", DEMO["op101"], DEMO_DOMAIN)
    stolen = dict(c.cookies)
    assert c.get("/api/v1/auth/me").status == 200
    r = c.post("/api/v1/auth/logout")
    assert r.status == 200 and "Max-Age=0" in r.header("set-cookie"), r
    c2 = d.client()
    c2.cookies = stolen  # the old cookie value no longer works
    assert c2.get("/api/v1/auth/me").status == 401


def test_api_tokens_authenticate_machines_and_can_be_revoked(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    t = c.ok("POST", "/api/v1/auth/tokens", {"name": "crm sync"}, status=201)
    assert t["token"].startswith("cwt_") and len(t["token"]) == 68
    m = d.client(token=t["token"])
    me = m.ok("GET", "/api/v1/auth/me")
    assert me["login"] == "admin" and me["via_token"] is True
    assert m.ok("GET", DOM + "/users")["total"] >= 5
    listed = c.ok("GET", "/api/v1/auth/tokens")["items"]
    assert [x["name"] for x in listed] == ["crm sync"]
    assert all("token" not in x for x in listed) and t["token"] not in str(listed)
    assert d.sql("SELECT COUNT(*) FROM api_tokens WHERE token_hash = '%s'" %
                 hashlib.sha256(t["token"].encode()).hexdigest()) == [["1"]]
    c.ok("DELETE", "/api/v1/auth/tokens/%d" % t["id"])
    assert m.get("/api/v1/auth/me").status == 401
    assert d.client(token="cwt_" + "0" * 64).get("/api/v1/auth/me").status == 401
    audit = c.ok("GET", "/api/v1/audit", query={"object_type": "api_token"})["items"]
    assert [a["action"] for a in audit] == ["delete", "add"], audit


def test_password_change_needs_the_old_password(d):
    c = d.login("op102", DEMO["op102"], DEMO_DOMAIN)
    other = d.login("op102", DEMO["op102"], DEMO_DOMAIN)
    r = c.post("/api/v1/auth/password", {"old_password": "Wrong-pass-1",
                                         "new_password": "New-op102-pass"})
    assert r.status == 403 and r.error()["field"] == "old_password", r
    r = c.post("/api/v1/auth/password", {"old_password": DEMO["op102"], "new_password": "short"})
    assert r.status == 400 and r.error()["field"] == "new_password", r
    d.client().login("op102", DEMO["op102"], DEMO_DOMAIN)  # still the old password
    c.ok("POST", "/api/v1/auth/password", {"old_password": DEMO["op102"],
                                           "new_password": "New-op102-pass"})
    assert c.get("/api/v1/auth/me").status == 200          # this session goes on
    assert other.get("/api/v1/auth/me").status == 401      # other sessions end
    d.client().login("op102", DEMO["op102"], DEMO_DOMAIN, expect=401)
    d.client().login("op102", "New-op102-pass", DEMO_DOMAIN)
    # the SIP digests follow the password
    md5, sha = d.sql("SELECT sip_ha1_md5, sip_ha1_sha256 FROM users WHERE login = 'op102'")[0]
    assert md5 == hashlib.md5(b"op102:demo.local:New-op102-pass").hexdigest()
    assert sha == hashlib.sha256(b"op102:demo.local:New-op102-pass").hexdigest()
    # audited without the password
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    rows = admin.ok("GET", "/api/v1/audit", query={"user": "op102"})["items"]
    assert rows[0]["details"] == {"password": "changed"}, rows
    assert "New-op102-pass" not in str(rows)


def test_stored_hashes_are_pbkdf2_sha256_with_per_user_salt(d):
    rows = d.sql("SELECT login, password_hash, sip_ha1_md5, sip_ha1_sha256 FROM users "
                 "WHERE login IN ('op101', 'op103')")
    salts = set()
    for login, h, md5, sha in rows:
        scheme, iters, salt, key = h.split("$")
        assert scheme == "pbkdf2_sha256" and int(iters) >= 210000, h
        assert len(salt) == 32 and len(key) == 64, h
        salts.add(salt)
        pw = DEMO[login].encode()
        assert hashlib.pbkdf2_hmac("sha256", pw, bytes.fromhex(salt), int(iters)).hex() == key
        assert md5 == hashlib.md5(b"%s:demo.local:%s" % (login.encode(), pw)).hexdigest()
        assert sha == hashlib.sha256(b"%s:demo.local:%s" % (login.encode(), pw)).hexdigest()
    assert len(salts) == 2


def test_own_profile_changes_are_limited_and_audited(d):
    c = d.login("op103", DEMO["op103"], DEMO_DOMAIN)
    me = c.ok("PATCH", "/api/v1/auth/me", {"display_name": "Olga 103", "language": "en"})
    assert me["display_name"] == "Olga 103" and me["language"] == "en"
    for body, field in (({"role": "domain_admin"}, "role"), ({"extension": "999"}, "extension"),
                        ({"language": "xx"}, "language"), ({"email": "bad"}, "email")):
        r = c.patch("/api/v1/auth/me", body)
        assert r.status == 400 and r.error()["field"] == field, (body, r)
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    rows = admin.ok("GET", "/api/v1/audit", query={"user": "op103", "action": "edit"})["items"]
    assert rows[0]["details"]["display_name"] == {"from": "Operator 103", "to": "Olga 103"}


def test_blocking_or_changing_a_user_takes_effect_on_the_next_request(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    u = admin.ok("POST", DOM + "/users", {"login": "blockme", "display_name": "Block Me",
                                          "password": "Block-me-1234", "role": "supervisor"},
                 status=201)
    web = d.login("blockme", "Block-me-1234", DEMO_DOMAIN)
    tok = web.ok("POST", "/api/v1/auth/tokens", {"name": "blockme"}, status=201)["token"]
    machine = d.client(token=tok)
    for c in (web, machine, web, machine):  # used again: what is remembered is what is checked
        assert c.ok("GET", "/api/v1/auth/me")["display_name"] == "Block Me"
        assert c.get(DOM + "/users").status == 200
    admin.ok("PATCH", DOM + "/users/%d" % u["id"], {"role": "operator"})
    for c in (web, machine):
        assert c.ok("GET", "/api/v1/auth/me")["role"] == "operator"
        assert c.get(DOM + "/users").status == 403
    admin.ok("PATCH", DOM + "/users/%d" % u["id"], {"status": "blocked"})
    for c in (web, machine):
        assert c.get("/api/v1/auth/me").status == 401
    admin.ok("PATCH", DOM + "/users/%d" % u["id"], {"status": "active"})
    for c in (web, machine):
        assert c.get("/api/v1/auth/me").status == 200
    # a change by another connection to the store counts as much
    d.sql_exec("UPDATE users SET status = 'blocked' WHERE id = ?", (u["id"],))
    for c in (web, machine):
        assert c.get("/api/v1/auth/me").status == 401


if __name__ == "__main__":
    run_tests([test_login_sets_a_strict_httponly_session_cookie,
               test_wrong_password_unknown_user_and_wrong_domain_all_get_401,
               test_system_admin_logs_in_without_a_domain,
               test_logout_ends_the_session,
               test_api_tokens_authenticate_machines_and_can_be_revoked,
               test_password_change_needs_the_old_password,
               test_stored_hashes_are_pbkdf2_sha256_with_per_user_salt,
               test_own_profile_changes_are_limited_and_audited,
               test_blocking_or_changing_a_user_takes_effect_on_the_next_request],
              demo=True, sets={"auth.login_max_failures": "50"})
