#!/usr/bin/python3
# cw-test: both-stores
"""Bulk user import from CSV (seed 001 §7.3): the seed's template with its
Russian header and ';' separator, a preview with per-cell errors, warnings
and counts that stores nothing, and a commit that creates the valid rows
atomically (groups created on the way), with working SIP credentials."""

import hashlib

from cwtest import DEMO, DEMO_DOMAIN, run_tests

DOM = "/api/v1/domains/" + DEMO_DOMAIN

# The seed's template: Логин | Пароль | Отображаемое имя | Внутренний номер |
# Названия групп | АОН для исходящих вызовов | Email  (Excel in Russia writes ';')
SEED_CSV = (
    "\ufeffЛогин;Пароль;Отображаемое имя;Внутренний номер;Названия групп;"
    "АОН для исходящих вызовов;Email\r\n"
    "ivanov.ii;G7zNo0vHDTDGyVAdQ5Wp;Иванов Иван Иванович;3020;Операторы;;ivanov@company.name\r\n"
    "petrov.pp;Hq8-Lm2-Zx9;Петров Пётр;;\"Операторы, Администрация\";7495123456;\r\n"
    "sidorov;xY7!xY7!xY7!;Сидоров С.;;Support;74951234567;sidorov@company.name\r\n"
    "BadLogin;Good-pass-1;Плохой логин;;Операторы;;\r\n"
    "weak;password;Слабый пароль;;Операторы;;\r\n"
    "dup.ext;Good-pass-1;Повтор номера;3020;Операторы;;\r\n"
    "taken;Good-pass-1;Занятый номер;101;Операторы;;\r\n"
    "nogroup;Good-pass-1;Без группы;;;;\r\n"
    "bademail;Good-pass-1;Почта;;Операторы;;not-an-address\r\n"
    "ivanov.ii;Good-pass-1;Повтор логина;;Операторы;;\r\n"
)


def counts(d):
    return (d.sql("SELECT COUNT(*) FROM users")[0][0],
            d.sql("SELECT COUNT(*) FROM call_groups")[0][0],
            d.sql("SELECT COUNT(*) FROM audit_log")[0][0])


def test_preview_reports_every_row_and_stores_nothing(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    before = counts(d)
    p = c.ok("POST", DOM + "/users/import", SEED_CSV.encode(), query={"mode": "preview"},
             headers={"Content-Type": "text/csv"})
    assert (p["total"], p["valid"], p["invalid"]) == (10, 3, 7), p
    rows = {r["row"]: r for r in p["rows"]}
    assert rows[2]["status"] == "ok" and rows[2]["extension"] == "3020", rows[2]
    assert rows[3]["groups"] == ["Операторы", "Администрация"], rows[3]
    # empty extension: chosen by the usual rule (100-103 and 110 are taken)
    assert rows[3]["extension"] == "104" and rows[4]["extension"] == "105", (rows[3], rows[4])
    # a CLI that is not 10 digits of the domain is a warning, not an error
    assert rows[3]["warnings"][0]["column"] == "cli" and rows[3]["status"] == "ok"
    assert rows[4]["warnings"] == [] and rows[4]["status"] == "ok"
    expect = {5: "login", 6: "password", 7: "extension", 8: "extension", 9: "groups",
              10: "email", 11: "login"}
    for row, column in expect.items():
        assert rows[row]["status"] == "error", rows[row]
        assert [e["column"] for e in rows[row]["errors"]] == [column], rows[row]
    assert "не уникально" not in str(rows) and "earlier row" in rows[7]["errors"][0]["message"]
    assert sorted(p["groups_to_create"]) == sorted(["Операторы", "Администрация"]), p
    for r in p["rows"]:
        assert "password" not in r
    assert "G7zNo0vHDTDGyVAdQ5Wp" not in str(p)
    assert counts(d) == before


def test_commit_refuses_a_file_with_bad_rows_unless_told_to_skip(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    before = counts(d)
    r = c.post(DOM + "/users/import", SEED_CSV.encode(), query={"mode": "commit"})
    assert r.status == 400 and r.error()["code"] == "invalid_rows", r
    assert r.error()["valid"] == 3 and r.error()["invalid"] == 7
    assert counts(d) == before
    res = c.ok("POST", DOM + "/users/import", SEED_CSV.encode(),
               query={"mode": "commit", "skip_invalid": "true"}, status=201)
    assert res["created"] == 3, res
    assert sorted(u["login"] for u in res["users"]) == ["ivanov.ii", "petrov.pp", "sidorov"]
    assert sorted(g["name"] for g in res["groups_created"]) == ["Администрация", "Операторы"]
    assert len(res["rows"]) == 7 and all(r["status"] == "error" for r in res["rows"])
    users = {u["login"]: u for u in c.ok("GET", DOM + "/users", query={"limit": 100})["items"]}
    iv, pp, sd = users["ivanov.ii"], users["petrov.pp"], users["sidorov"]
    assert iv["extension"] == "3020" and iv["email"] == "ivanov@company.name"
    assert iv["display_name"] == "Иванов Иван Иванович"
    groups = {g["name"]: g for g in c.ok("GET", DOM + "/call-groups")["items"]}
    assert len(pp["call_groups"]) == 2 and groups["Операторы"]["id"] in pp["call_groups"]
    assert groups["Операторы"]["strategy"] == "not_set"
    assert sd["cli_number"] == "74951234567" and pp["cli_number"] is None
    assert groups["Support"]["id"] in sd["call_groups"]
    # they can log in, and their SIP digests are stored for the registrar
    d.client().login("ivanov.ii", "G7zNo0vHDTDGyVAdQ5Wp", DEMO_DOMAIN)
    md5 = d.sql("SELECT sip_ha1_md5 FROM users WHERE login = 'sidorov'")[0][0]
    assert md5 == hashlib.md5("sidorov:demo.local:xY7!xY7!xY7!".encode()).hexdigest()
    # one audit row per created user and group, without passwords
    audit = c.ok("GET", "/api/v1/audit", query={"action": "add", "limit": 20})["items"]
    names = [(a["object_type"], a["object_name"]) for a in audit]
    for n in (("user", "ivanov.ii"), ("user", "petrov.pp"), ("user", "sidorov"),
              ("call_group", "Операторы"), ("call_group", "Администрация")):
        assert n in names, names
    assert "xY7!" not in str(audit)


def test_plain_file_without_header_in_the_seed_column_order(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    text = ("kuznetsov,Kuz-pass-11,Кузнецов,,Support,,\n"
            "\n"
            "orlov,Orl-pass-11,\"Орлов, \"\"старший\"\"\",,Support,,orlov@example.com\n")
    res = c.ok("POST", DOM + "/users/import", text, query={"mode": "commit"}, status=201)
    assert res["created"] == 2, res
    orlov = c.ok("GET", DOM + "/users", query={"login": "orlov"})["items"][0]
    assert orlov["display_name"] == 'Орлов, "старший"', orlov


def test_the_domain_user_limit_applies_to_imports(d):
    sa = d.login("sysadmin", DEMO["sysadmin"])
    dom = sa.ok("GET", "/api/v1/domains", query={"name": DEMO_DOMAIN})["items"][0]
    n = dom["counters"]["users"]
    sa.ok("PATCH", "/api/v1/domains/%d" % dom["id"], {"max_users": n + 1})
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    text = "lim.one,Lim-pass-11,One,,Support,,\nlim.two,Lim-pass-11,Two,,Support,,\n"
    p = c.ok("POST", DOM + "/users/import", text, query={"mode": "preview"})
    assert (p["valid"], p["invalid"]) == (1, 1), p
    assert "maximum" in p["rows"][1]["errors"][0]["message"]
    r = c.post(DOM + "/users", {"login": "x1", "display_name": "X", "password": "Lim-pass-11"})
    assert r.status == 201, r
    r = c.post(DOM + "/users", {"login": "x2", "display_name": "X", "password": "Lim-pass-11"})
    assert r.status == 409 and r.error()["code"] == "limit", r


if __name__ == "__main__":
    run_tests([test_preview_reports_every_row_and_stores_nothing,
               test_commit_refuses_a_file_with_bad_rows_unless_told_to_skip,
               test_plain_file_without_header_in_the_seed_column_order,
               test_the_domain_user_limit_applies_to_imports],
              demo=True)
