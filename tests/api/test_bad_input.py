#!/usr/bin/python3
# cw-test: both-stores
"""Bad input changes nothing: malformed JSON, wrong types, unknown and
read-only fields, bad values, junk query parameters, oversized bodies and
broken CSV each get a 4xx JSON error naming the field, parameter or row;
no row is stored and no audit row is written; the daemon never answers 5xx
and keeps running through random bytes."""

import json
import random

from cwtest import DEMO, DEMO_DOMAIN, run_tests

DOM = "/api/v1/domains/" + DEMO_DOMAIN
TABLES = ["users", "domains", "pools", "subgroups", "call_groups", "call_group_members",
          "pickup_groups", "pickup_members", "contact_groups", "contacts", "ivr_flows",
          "sound_files", "external_numbers", "api_tokens", "sessions", "password_resets",
          "audit_log"]


def snapshot(d):
    return {t: d.sql("SELECT * FROM %s ORDER BY 1" % t) for t in TABLES}


def admin(d):
    return d.login("admin", DEMO["admin"], DEMO_DOMAIN)


VALID_USER = {"login": "valid.user", "display_name": "Valid", "password": "Valid-pass-1"}


def test_malformed_json_is_refused(d):
    c = admin(d)
    before = snapshot(d)
    for raw in (b"{", b"[1, 2]", b"", b"null", b'"text"', b'{"login": "a", "login": "b"}',
                b'{"login": "a\\u0000b"}', b'{"login": "\xff\xfe"}', b"{" * 5000 + b"}" * 5000,
                b'{"display_name": "x",}'):
        for url in (DOM + "/users", DOM + "/call-groups", "/api/v1/auth/tokens",
                    "/api/v1/auth/password"):
            r = c.post(url, raw, headers={"Content-Type": "application/json"})
            assert r.status == 400 and r.error()["code"] == "invalid_json", (url, raw[:40], r)
    r = c.patch(DOM + "/users/2", b"{oops")
    assert r.status == 400 and r.error()["code"] == "invalid_json", r
    assert snapshot(d) == before


def test_wrong_types_unknown_and_read_only_fields_name_the_field(d):
    c = admin(d)
    before = snapshot(d)
    cases = [
        (DOM + "/users", dict(VALID_USER, display_name=5), "display_name", "invalid_type"),
        (DOM + "/users", dict(VALID_USER, is_operator="yes"), "is_operator", "invalid_type"),
        (DOM + "/users", dict(VALID_USER, extension=101), "extension", "invalid_type"),
        (DOM + "/users", dict(VALID_USER, nickname="x"), "nickname", "unknown_field"),
        (DOM + "/users", dict(VALID_USER, id=7), "id", "read_only"),
        (DOM + "/users", dict(VALID_USER, created_at=1), "created_at", "read_only"),
        (DOM + "/users", dict(VALID_USER, password_hash="x"), "password_hash", "unknown_field"),
        (DOM + "/users", dict(VALID_USER, login="Ivanov"), "login", "invalid_value"),
        (DOM + "/users", dict(VALID_USER, login=""), "login", "invalid_value"),
        (DOM + "/users", dict(VALID_USER, password="short"), "password", "weak_password"),
        (DOM + "/users", dict(VALID_USER, password="alllowercase"), "password", "weak_password"),
        (DOM + "/users", dict(VALID_USER, email="not-mail"), "email", "invalid_value"),
        (DOM + "/users", dict(VALID_USER, restriction="none-at-all"), "restriction",
         "invalid_value"),
        (DOM + "/users", dict(VALID_USER, language="klingon"), "language", "invalid_value"),
        (DOM + "/users", dict(VALID_USER, display_name="x" * 129), "display_name",
         "invalid_value"),
        (DOM + "/users", dict(VALID_USER, display_name="a\u0007b"), "display_name",
         "invalid_value"),
        (DOM + "/users", dict(VALID_USER, call_groups=[0]), "call_groups", "invalid_type"),
        (DOM + "/users", dict(VALID_USER, call_groups=[424242]), "call_groups",
         "invalid_value"),
        (DOM + "/users", {"display_name": "No login", "password": "Valid-pass-1"}, "login",
         "missing_field"),
        (DOM + "/users", {"login": "nopw", "display_name": "No pw"}, "password",
         "missing_field"),
        (DOM + "/call-groups", {"name": "Q", "ring_timeout": 1}, "ring_timeout", "invalid_value"),
        (DOM + "/call-groups", {"name": "Q", "ring_timeout": 1.5}, "ring_timeout",
         "invalid_type"),
        (DOM + "/call-groups", {"name": "Q", "members": {"user_id": 4}}, "members",
         "invalid_type"),
        (DOM + "/call-groups", {"name": "Q", "members": [{"user_id": 4, "x": 1}]}, "members",
         "invalid_value"),
        (DOM + "/call-groups", {"name": "Q", "info_url": "javascript:alert(1)"}, "info_url",
         "invalid_value"),
        (DOM + "/contacts", {"name": "K", "speed_dial": "1", "numbers": []}, "numbers",
         "invalid_value"),
        (DOM + "/contacts", {"name": "K", "speed_dial": "*1",
                             "numbers": [{"type": "work", "number": "1"}]}, "speed_dial",
         "invalid_value"),
        (DOM + "/ivr-flows", {"name": "F", "flow": "text"}, "flow", "invalid_type"),
        (DOM + "/ivr-flows", {"name": "F", "script": "../../etc/passwd"}, "script",
         "invalid_value"),
        ("/api/v1/auth/tokens", {"name": 1}, "name", "invalid_type"),
        ("/api/v1/auth/tokens", {"name": "t", "scope": "all"}, "scope", "unknown_field"),
        ("/api/v1/auth/password", {"old_password": DEMO["admin"]}, "new_password",
         "missing_field"),
    ]
    for url, body, field, code in cases:
        r = c.post(url, body)
        assert r.status == 400, (url, body, r)
        assert r.error()["field"] == field and r.error()["code"] == code, (body, r)
    for body, field, code in (({"timezone": "Mars/Base"}, "timezone", "invalid_value"),
                              ({"max_users": 5}, "max_users", "forbidden"),
                              ({"name": "x.example"}, "name", "immutable"),
                              ({"pickup_code": "88"}, "pickup_code", "invalid_value"),
                              ({"counters": {}}, "counters", "unknown_field")):
        r = c.patch("/api/v1/domains/1", body)
        assert r.status in (400, 403) and r.error()["field"] == field, (body, r)
        assert r.error()["code"] == code, r
    assert snapshot(d) == before


def test_junk_query_parameters_are_named(d):
    c = admin(d)
    for query, name in (({"limit": "ten"}, "limit"), ({"limit": "0"}, "limit"),
                        ({"limit": "100000"}, "limit"), ({"offset": "-1"}, "offset"),
                        ({"colour": "red"}, "colour"), ({"sort": "password_hash"}, "sort"),
                        ({"is_operator": "maybe"}, "is_operator")):
        r = c.get(DOM + "/users", query=query)
        assert r.status == 400 and r.error()["field"] == name, (query, r)
    for query, name in (({"action": "drop"}, "action"), ({"period": "forever"}, "period"),
                        ({"from": "yesterday"}, "from")):
        r = c.get("/api/v1/audit", query=query)
        assert r.status == 400 and r.error()["field"] == name, (query, r)
    r = c.get("/api/v1/events", query={"last_event_id": "abc"})
    assert r.status == 400 and r.error()["field"] == "last_event_id", r


def test_oversized_bodies_get_413_and_store_nothing(d):
    c = admin(d)
    before = snapshot(d)
    big = json.dumps(dict(VALID_USER, job_title="x" * 200000)).encode()
    for url in (DOM + "/users", DOM + "/users/import?mode=commit", "/api/v1/auth/login"):
        r = c.post(url, big, headers={"Content-Type": "application/json"})
        assert r.status == 413 and r.error()["code"] == "body_too_large", (url, r)
        assert r.error()["limit"] == 100000 and r.error()["setting"] == "http.max_body", r
    assert snapshot(d) == before


CSV_HEADER = "login,password,display_name,extension,groups,cli,email\n"


def test_bad_csv_gets_400_naming_the_row(d):
    c = admin(d)
    before = snapshot(d)
    for text, row in ((CSV_HEADER + 'a,"Pass-word-1,A,,G,,\n', 2),
                      (CSV_HEADER + "a,Pass-word-1,A,,G,,\nb,Pass-word-1,B\n", 3),
                      ('a,Pass-word-1,A,1"0,G,,\n', 1),
                      ("only,three,columns\n", 1)):
        for mode in ("preview", "commit"):
            r = c.post(DOM + "/users/import", text, query={"mode": mode})
            assert r.status == 400 and r.error()["code"] == "invalid_csv", (text, r)
            assert r.error()["row"] == row, (text, r)
    bad_rows = CSV_HEADER + ("good.one,Good-pass-1,Good One,,Sales,,\n"
                             "Bad Login,Good-pass-1,Bad,,Sales,,\n"
                             "weak.pw,password,Weak,,Sales,,\n"
                             "dup.ext,Good-pass-1,Dup,101,Sales,,\n")
    r = c.post(DOM + "/users/import", bad_rows, query={"mode": "commit"})
    assert r.status == 400 and r.error()["code"] == "invalid_rows", r
    rows = {x["row"]: x for x in r.error()["rows"]}
    assert sorted(rows) == [3, 4, 5], rows
    assert rows[3]["errors"][0]["column"] == "login"
    assert rows[4]["errors"][0]["column"] == "password"
    assert rows[5]["errors"][0]["column"] == "extension"
    assert "Good-pass-1" not in r.text and '"password"' not in r.text.replace(
        '"column":"password"', "")
    for q in ({"mode": "apply"}, {}, {"mode": "commit", "skip_invalid": "yes"},
              {"mode": "preview", "dry": "1"}):
        r = c.post(DOM + "/users/import", bad_rows, query=q)
        assert r.status == 400 and r.error()["code"] in ("invalid_parameter",
                                                         "unknown_parameter"), (q, r)
    assert snapshot(d) == before


def test_random_bytes_never_crash_the_daemon(d):
    c = admin(d)
    rnd = random.Random(1234)
    urls = [DOM + "/users", DOM + "/call-groups", DOM + "/contacts", DOM + "/users/import",
            DOM + "/sounds", "/api/v1/auth/login", "/api/v1/auth/reset", "/api/v1/auth/tokens",
            DOM + "/pickup-groups", DOM + "/ivr-flows"]
    before = snapshot(d)
    for i in range(300):
        url = urls[i % len(urls)]
        body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 400)))
        query = {"mode": "preview", "name": "x"} if "import" in url or "sounds" in url else None
        if "import" in url:
            query = {"mode": "commit"}
        r = c.post(url, body, query=query)
        assert 400 <= r.status < 500, (url, body[:50], r)
        assert r.json and "error" in r.json, r
    assert d.alive()
    assert c.ok("GET", "/api/v1/auth/me")["login"] == "admin"
    after = snapshot(d)
    del after["sessions"], before["sessions"]
    assert after == before


if __name__ == "__main__":
    run_tests([test_malformed_json_is_refused,
               test_wrong_types_unknown_and_read_only_fields_name_the_field,
               test_junk_query_parameters_are_named,
               test_oversized_bodies_get_413_and_store_nothing,
               test_bad_csv_gets_400_naming_the_row,
               test_random_bytes_never_crash_the_daemon],
              demo=True, sets={"http.max_body": "100000", "auth.login_max_failures": "1000",
                               "auth.login_max_failures_ip": "1000"})
