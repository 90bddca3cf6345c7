#!/usr/bin/python3
# cw-test: both-stores
"""Password reset by e-mailed link against a real local SMTP server: the
mail reaches the account's address, its link opens the reset page, the
token sets a new password once, expires, ends old sessions, and the answer
never tells whether an account exists."""

import re
import time

from cwtest import DEMO, DEMO_DOMAIN, Daemon, SmtpSink, run_tests

SINK = SmtpSink()


def link_of(message):
    text = SmtpSink.text_of(message)
    m = re.search(r"(http://127\.0\.0\.1:\d+)(/reset\?token=([0-9a-f]{64}))", text)
    assert m, text
    return m.group(1), m.group(2), m.group(3)


def set_email(d, login, email):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    uid = c.ok("GET", "/api/v1/domains/demo.local/users", query={"login": login})["items"][0]["id"]
    c.ok("PATCH", "/api/v1/domains/demo.local/users/%d" % uid, {"email": email})


def test_reset_link_arrives_and_sets_a_new_password(d):
    set_email(d, "op101", "op101@example.com")
    old_session = d.login("op101", DEMO["op101"], DEMO_DOMAIN)
    n = len(SINK.messages)
    r = d.client().post("/api/v1/auth/reset-request", {"login": "op101", "domain": DEMO_DOMAIN})
    assert r.status == 202, r
    msg = SINK.wait(n + 1)[n]
    assert msg["to"] == ["op101@example.com"], msg["to"]
    assert msg["from"] == "pbx@example.com"
    assert msg["msg"]["Subject"] == "Callwright password reset"
    base, path, token = link_of(msg)
    assert base == "http://127.0.0.1:%d" % d.http_port
    # the link opens the reset page of the web app
    page = d.client().get(path)
    assert page.status == 200 and b"/api/v1/auth/reset" in page.body, page
    # the token is stored hashed only
    assert token not in str(d.sql("SELECT token_hash FROM password_resets"))
    c = d.client()
    r = c.post("/api/v1/auth/reset", {"token": token, "password": "weak"})
    assert r.status == 400 and r.error()["field"] == "password", r
    c.ok("POST", "/api/v1/auth/reset", {"token": token, "password": "Fresh-op101-pass"})
    d.client().login("op101", "Fresh-op101-pass", DEMO_DOMAIN)
    d.client().login("op101", DEMO["op101"], DEMO_DOMAIN, expect=401)
    assert old_session.get("/api/v1/auth/me").status == 401
    # once only
    r = c.post("/api/v1/auth/reset", {"token": token, "password": "Second-op101-pass"})
    assert r.status == 400 and r.error()["code"] == "invalid_token", r
    d.client().login("op101", "Fresh-op101-pass", DEMO_DOMAIN)
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    rows = admin.ok("GET", "/api/v1/audit", query={"user": "op101"})["items"]
    assert rows[0]["details"] == {"password": "reset by e-mailed link"}, rows[0]


def test_unknown_accounts_get_the_same_answer_and_no_mail(d):
    n = len(SINK.messages)
    c = d.client()
    for body in ({"login": "ghost", "domain": DEMO_DOMAIN},
                 {"login": "op102", "domain": "nowhere.example"},
                 {"login": "op103", "domain": DEMO_DOMAIN}):  # op103 has no e-mail address
        r = c.post("/api/v1/auth/reset-request", body)
        assert r.status == 202 and r.json["status"].startswith("if the account exists"), r
    time.sleep(1.0)
    assert len(SINK.messages) == n
    r = c.post("/api/v1/auth/reset", {"token": "0" * 64, "password": "Whatever-pass-1"})
    assert r.status == 400 and r.error()["code"] == "invalid_token", r


def test_links_expire(d):
    set_email(d, "op102", "op102@example.com")
    n = len(SINK.messages)
    d.client().post("/api/v1/auth/reset-request", {"login": "op102", "domain": DEMO_DOMAIN})
    _, _, token = link_of(SINK.wait(n + 1)[n])
    # its lifetime (auth.reset_ttl) passes
    d.sql_exec("UPDATE password_resets SET expires_at = expires_at - 7200")
    r = d.client().post("/api/v1/auth/reset", {"token": token, "password": "Late-op102-pass"})
    assert r.status == 400 and r.error()["code"] == "invalid_token", r
    d.client().login("op102", DEMO["op102"], DEMO_DOMAIN)


def test_system_admins_reset_without_a_domain(d):
    sa = d.login("sysadmin", DEMO["sysadmin"])
    me = sa.ok("GET", "/api/v1/auth/me")
    sa.ok("PATCH", "/api/v1/sysadmins/%d" % me["id"], {"email": "root@example.com"})
    n = len(SINK.messages)
    d.client().post("/api/v1/auth/reset-request", {"login": "sysadmin"})
    msg = SINK.wait(n + 1)[n]
    assert msg["to"] == ["root@example.com"]
    _, _, token = link_of(msg)
    d.client().ok("POST", "/api/v1/auth/reset", {"token": token, "password": "Root-new-pass-1"})
    d.client().login("sysadmin", "Root-new-pass-1")


if __name__ == "__main__":
    try:
        run_tests([test_reset_link_arrives_and_sets_a_new_password,
                   test_unknown_accounts_get_the_same_answer_and_no_mail,
                   test_links_expire,
                   test_system_admins_reset_without_a_domain],
                  demo=True, sets={"smtp.url": SINK.url, "smtp.from": "pbx@example.com",
                                   "auth.login_max_failures": "100",
                                   "auth.login_max_failures_ip": "100"})
    finally:
        SINK.close()
