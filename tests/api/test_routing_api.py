#!/usr/bin/python3
# cw-test: both-stores
"""Routing data through the API: day groups with holidays, schedules,
classifiers, routing rules (create at a position, reorder, disable, copy to
another number, rules that can never fire), black and white lists, and the
checks on save: every invalid element is refused with its path named and
nothing stored. The routing check endpoint runs the same interpreter calls
use (scripts/cw/routing.lua), so seed 001 §9.5's examples are checked here
over many times and callers; tests/route/ places the real calls."""

import datetime
import time
import zoneinfo

from cwtest import DEMO, DEMO_DOMAIN, TestFailure, run_tests

DOM = "/api/v1/domains/" + DEMO_DOMAIN
S = {}


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def refused(c, method, path, body, field, path_part, status=400):
    """The request is refused naming the field (and the element) and nothing changes."""
    before = snapshot(S["d"])
    r = c.request(method, path, body=body)
    check(r.status == status, "%s %s %r: expected %d, got %r" % (method, path, body, status, r))
    err = r.error()
    check(err.get("field") == field, "field %r expected, got %r" % (field, err))
    if path_part:
        check(path_part in err.get("path", "") and path_part in err.get("message", ""),
              "element %r not named: %r" % (path_part, err))
    check(snapshot(S["d"]) == before, "a refused %s %s changed the store" % (method, path))
    return err


def snapshot(d):
    return {t: d.sql("SELECT * FROM %s ORDER BY 1" % t)
            for t in ("routing_rules", "day_groups", "schedules", "classifiers",
                      "classifier_numbers", "external_numbers", "ivr_flows", "routing_refs")}


def at(zone, y, mo, day, h, mi):
    return int(datetime.datetime(y, mo, day, h, mi, tzinfo=zoneinfo.ZoneInfo(zone)).timestamp())


def setup(d):
    S["d"] = d
    sa = d.login("sysadmin", DEMO["sysadmin"])
    S["sa"] = sa
    a = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    S["a"] = a
    S["domain"] = "/api/v1/domains/%d" % a.ok("GET", "/api/v1/domains")["items"][0]["id"]
    a.ok("PATCH", S["domain"], {"timezone": "Asia/Yekaterinburg"})
    for n in ("74951230001", "74951230002", "74951230003"):
        sa.ok("POST", DOM + "/numbers", {"number": n}, status=201)
    S["nums"] = {n["number"]: n["id"] for n in a.ok("GET", DOM + "/numbers")["items"]}
    users = {u["login"]: u["id"] for u in a.ok("GET", DOM + "/users")["items"]}
    S["users"] = users
    for name, ext in (("Клиентская служба", "210"), ("Поддержка_МСК", "211"),
                      ("Поддержка_СПБ", "212"), ("Analitika", "213")):
        g = a.ok("POST", DOM + "/call-groups", {"name": name, "extension": ext,
                                               "voicemail_enabled": True,
                                               "members": [{"user_id": users["op101"]}]},
                 status=201)
        S[name] = g["id"]


# ---------------------------------------------------------------- CRUD

def test_day_groups_schedules_classifiers(d):
    setup(d)
    a = S["a"]
    wd = a.ok("POST", DOM + "/day-groups",
              {"name": "Workdays", "days": [1, 2, 3, 4, 5],
               "holidays": [{"date": "2026-11-25", "name": "Office party"},
                            {"date": "01-01", "name": "New Year"}],
               "extra_days": [{"date": "2026-11-28", "name": "Working Saturday"}]}, status=201)
    check(wd["holidays"][1]["date"] == "01-01", "holidays kept: %r" % wd)
    S["workdays"] = wd["id"]
    sch = a.ok("POST", DOM + "/schedules",
               {"name": "Business hours",
                "periods": [{"day_group_id": wd["id"], "from": "10:00", "to": "19:00"}]},
               status=201)
    S["business"] = sch["id"]
    cl = a.ok("POST", DOM + "/classifiers",
              {"name": "VIP", "description": "key clients",
               "numbers": ["+73432628900", "89161112233"]}, status=201)
    check(cl["size"] == 2 and "+73432628900" in cl["numbers"], "classifier: %r" % cl)
    S["vip"] = cl["id"]
    cl = a.ok("PATCH", DOM + "/classifiers/%d" % cl["id"],
              {"numbers": ["+73432628900", "89161112233", "74950000000"]})
    check(cl["size"] == 3, "classifier numbers replaced: %r" % cl)
    listed = a.ok("GET", DOM + "/day-groups")["items"]
    check([x["name"] for x in listed] == ["Workdays"], "list: %r" % listed)
    # who may change them
    sup = d.login("supervisor", DEMO["supervisor"], DEMO_DOMAIN)
    check(sup.ok("GET", DOM + "/schedules")["total"] == 1, "supervisors read schedules")
    r = sup.post(DOM + "/day-groups", {"name": "X", "days": [1]})
    check(r.status == 403, "a supervisor may not add a day group: %r" % r)
    op = d.login("op101", DEMO["op101"], DEMO_DOMAIN)
    check(op.get(DOM + "/routing-rules").status == 403, "operators do not see routing")


def test_rules_positions_reorder_disable_copy(d):
    a = S["a"]
    n1, n2 = S["nums"]["74951230001"], S["nums"]["74951230002"]
    base = DOM + "/routing-rules"
    r_busy = a.ok("POST", base, {"number_id": n1, "name": "all", "target": {"type": "busy"}},
                  status=201)
    r_grp = a.ok("POST", base, {"number_id": n1, "name": "office", "priority": 1,
                                "schedule_id": S["business"],
                                "target": {"type": "group", "id": S["Клиентская служба"]}},
                 status=201)
    r_vm = a.ok("POST", base, {"number_id": n1, "name": "vm", "priority": 2,
                               "target": {"type": "voicemail", "group": S["Клиентская служба"]}},
                status=201)
    rules = a.ok("GET", base, query={"number_id": n1})["items"]
    check([(x["name"], x["priority"]) for x in rules] ==
          [("office", 1), ("vm", 2), ("all", 3)], "positions: %r" % rules)
    # "all" can never fire: "vm" above it takes every call
    check(rules[2]["unreachable_by"] == r_vm["id"], "shadowed rule: %r" % rules[2])
    check(rules[0]["unreachable_by"] is None and rules[1]["unreachable_by"] is None,
          "reachable rules: %r" % rules)
    # reorder: the whole list, each rule once
    r = a.post(DOM + "/numbers/%d/routing/order" % n1,
               {"rule_ids": [r_busy["id"], r_grp["id"]]})
    check(r.status == 400 and r.error()["field"] == "rule_ids", "partial order refused: %r" % r)
    got = a.ok("POST", DOM + "/numbers/%d/routing/order" % n1,
               {"rule_ids": [r_vm["id"], r_grp["id"], r_busy["id"]]})["items"]
    check([x["name"] for x in got] == ["vm", "office", "all"], "reordered: %r" % got)
    check(got[1]["unreachable_by"] == r_vm["id"], "office now shadowed by vm: %r" % got[1])
    # disable: the rule stays but routing skips it, and what it shadowed is reachable again
    a.ok("PATCH", base + "/%d" % r_vm["id"], {"enabled": False})
    got = a.ok("GET", base, query={"number_id": n1})["items"]
    check(got[0]["enabled"] is False and got[1]["unreachable_by"] is None, "disabled: %r" % got)
    # copy to another number: its own rules are replaced
    a.ok("POST", base, {"number_id": n2, "target": {"type": "busy"}, "name": "old"}, status=201)
    copied = a.ok("POST", DOM + "/numbers/%d/routing/copy" % n1, {"to_number_id": n2})["items"]
    check([(x["name"], x["enabled"], x["number_id"]) for x in copied] ==
          [("vm", False, n2), ("office", True, n2), ("all", True, n2)], "copied: %r" % copied)
    check(a.ok("GET", base, query={"number_id": n1})["total"] == 3, "the source keeps its rules")
    r = a.post(DOM + "/numbers/%d/routing/copy" % n1, {"to_number_id": n1})
    check(r.status == 400, "copy onto itself refused: %r" % r)
    audit = a.ok("GET", "/api/v1/audit", query={"object_type": "routing_rule"})["items"]
    check("copy" in [x["action"] for x in audit] and "reorder" in [x["action"] for x in audit],
          "copy and reorder are audited: %r" % [x["action"] for x in audit])
    # moving a rule by priority renumbers the others
    a.ok("PATCH", base + "/%d" % r_busy["id"], {"priority": 1})
    got = a.ok("GET", base, query={"number_id": n1})["items"]
    check([(x["name"], x["priority"]) for x in got] == [("all", 1), ("vm", 2), ("office", 3)],
          "moved first: %r" % got)
    # clean number 1 for the checks below
    for x in got:
        a.ok("DELETE", base + "/%d" % x["id"])
    check(a.ok("GET", base, query={"number_id": n1})["total"] == 0, "deleted")


# ---------------------------------------------------------------- refusals

def test_invalid_rules_are_refused_naming_the_element(d):
    a = S["a"]
    n = S["nums"]["74951230003"]
    base = DOM + "/routing-rules"
    good = a.ok("POST", base, {"number_id": n, "target": {"type": "busy"}, "name": "keep"},
                status=201)
    grp = S["Поддержка_МСК"]
    cases = [
        ({"target": {"type": "group", "id": 99999}}, "target", "target.id"),
        ({"target": {"type": "user", "id": S["users"]["op101"],
                     "on": {"busy": {"type": "ivr", "id": 4242}}}}, "target", "target.on.busy.id"),
        ({"target": {"type": "group", "id": grp, "on": {"nobody": {"type": "busy"}}}},
         "target", "target.on.nobody"),
        ({"target": {"type": "ivr", "id": 1, "on": {"busy": {"type": "busy"}}}},
         "target", "target.on.busy"),
        ({"target": {"type": "teleport"}}, "target", "target"),
        ({"target": {"type": "busy", "colour": "red"}}, "target", "target.colour"),
        ({"target": {"type": "voicemail", "user": S["users"]["op102"]}}, "target",
         "target.user"),  # op102 has voicemail off
        ({"target": {"type": "external", "number": "12ab"}}, "target", "target.number"),
        ({"target": {"type": "message", "prompt": "en/no_such_prompt"}}, "target",
         "target.prompt"),
        ({"target": {"type": "script", "code": "return {type = 'busy'\n"}}, "target",
         "target.code"),
        ({"target": {"type": "private_route", "trunk_id": 777, "number": "8252"}}, "target",
         "target.trunk_id"),
        ({"target": {"type": "busy"}, "schedule": {"periods": [
            {"days": [1, 2, 3, 4, 5], "from": "19:00", "to": "10:00"}]}}, "schedule",
         "schedule.periods[0]"),
        ({"target": {"type": "busy"}, "schedule": {"periods": [
            {"days": [1, 2, 3, 4, 5], "from": "10:00", "to": "19:00"},
            {"days": [5, 6], "from": "18:00", "to": "20:00"}]}}, "schedule",
         "schedule.periods[1]"),
        ({"target": {"type": "busy"}, "schedule": {"periods": [
            {"days": [8], "from": "10:00", "to": "19:00"}]}}, "schedule", "schedule.periods[0]"),
        ({"target": {"type": "busy"}, "schedule": {"periods": [
            {"day_group_id": 5555, "from": "10:00", "to": "19:00"}]}}, "schedule",
         "schedule.periods[0]"),
        ({"target": {"type": "busy"}, "prefixes": ["495", "4x9"]}, "prefixes", "prefixes[1]"),
        ({"target": {"type": "busy"}, "prefixes": ["495", "495"]}, "prefixes", "prefixes[1]"),
    ]
    for body, field, where in cases:
        body = dict(body, number_id=n)
        err = refused(a, "POST", base, body, field, where)
        check(err["code"] == "invalid_value", "code: %r" % err)
    # a change to an existing rule is refused the same way; the rule keeps working as it was
    refused(a, "PATCH", base + "/%d" % good["id"],
            {"target": {"type": "group", "id": grp, "on": {"busy": {"type": "user", "id": 0}}}},
            "target", "target.on.busy.id")
    r = a.post(base, {"number_id": n, "target": {"type": "busy"}, "schedule": {"periods": []},
                      "schedule_id": S["business"]})
    check(r.status == 400, "inline and named schedule at once: %r" % r)
    # a script that does not compile is named with its line
    err = refused(a, "POST", base, {"number_id": n, "target": {
        "type": "script", "code": "local x = 1\nif x then\n"}}, "target", "target.code")
    check(":3:" in err["message"] or "line 3" in err["message"] or "<eof>" in err["message"],
          "the Lua error says where: %r" % err)
    got = a.ok("GET", base + "/%d" % good["id"])
    check(got["target"] == {"type": "busy"}, "the rule is as it was: %r" % got)


def test_invalid_groups_schedules_lists_are_refused(d):
    a = S["a"]
    refused(a, "POST", DOM + "/day-groups", {"name": "Bad", "days": [1, 9]}, "days", "days[1]")
    refused(a, "POST", DOM + "/day-groups",
            {"name": "Bad", "days": [1], "holidays": [{"date": "2026-02-30"}]}, "holidays",
            "holidays[0]")
    refused(a, "POST", DOM + "/day-groups",
            {"name": "Bad", "days": [1], "holidays": [{"date": "05-01", "name": "May"}],
             "extra_days": [{"date": "05-01"}]}, "extra_days", "extra_days[0]")
    refused(a, "POST", DOM + "/schedules",
            {"name": "Bad", "periods": [{"day_group_id": S["workdays"], "from": "09:00",
                                         "to": "13:00"},
                                        {"days": [3], "from": "12:00", "to": "14:00"}]},
            "periods", "periods[1]")
    # a day group whose new weekdays would make a schedule that uses it ambiguous
    sat = a.ok("POST", DOM + "/day-groups", {"name": "Saturday", "days": [6]}, status=201)
    a.ok("POST", DOM + "/schedules",
         {"name": "Week", "periods": [{"day_group_id": S["workdays"], "from": "10:00",
                                       "to": "19:00"},
                                      {"day_group_id": sat["id"], "from": "11:00",
                                       "to": "15:00"}]}, status=201)
    err = refused(a, "PATCH", DOM + "/day-groups/%d" % sat["id"], {"days": [5, 6]}, "days", "")
    check("Week" in err["message"] and "Friday" in err["message"], "names the schedule: %r" % err)
    refused(a, "POST", DOM + "/classifiers", {"name": "Dup", "numbers": ["+74951112233",
                                                                       "84951112233"]},
            "numbers", "numbers[1]")
    refused(a, "POST", DOM + "/classifiers", {"name": "Bad", "numbers": ["call me"]},
            "numbers", "numbers[0]")
    n = S["nums"]["74951230003"]
    r = a.patch(DOM + "/numbers/%d" % n, {"filter_mode": "greylist"})
    check(r.status == 400 and r.error()["field"] == "filter_mode", "bad mode: %r" % r)
    r = a.patch(DOM + "/numbers/%d" % n, {"filter_list": [{"value": "495"}, {"value": "7-495"}]})
    check(r.status == 400 and "filter_list[1]" in r.error()["message"], "bad entry: %r" % r)
    r = a.patch(DOM + "/numbers/%d" % n, {"target": "999"})
    check(r.status == 400 and r.error()["field"] == "target", "missing fallback: %r" % r)
    ok = a.ok("PATCH", DOM + "/numbers/%d" % n,
              {"filter_mode": "blacklist",
               "filter_list": [{"value": "+7495", "exact": False, "comment": "Moscow"},
                               {"value": "79161234567", "exact": True}]})
    check(ok["filter_mode"] == "blacklist" and len(ok["filter_list"]) == 2, "list: %r" % ok)


def test_objects_in_use_cannot_be_deleted(d):
    a = S["a"]
    n = S["nums"]["74951230003"]
    rule = a.ok("POST", DOM + "/routing-rules",
                {"number_id": n, "schedule_id": S["business"], "classifier_id": S["vip"],
                 "target": {"type": "group", "id": S["Analitika"],
                            "on": {"no_answer": {"type": "user", "id": S["users"]["op103"]}}}},
                status=201)
    for path, label in ((DOM + "/call-groups/%d" % S["Analitika"], "routing rule"),
                        (DOM + "/users/%d" % S["users"]["op103"], "routing rule"),
                        (DOM + "/schedules/%d" % S["business"], "routing rule"),
                        (DOM + "/classifiers/%d" % S["vip"], "routing rule"),
                        (DOM + "/day-groups/%d" % S["workdays"], "schedule")):
        r = a.delete(path)
        check(r.status == 409 and r.error()["code"] == "in_use" and label in
              r.error()["message"], "%s in use: %r" % (path, r))
    a.ok("DELETE", DOM + "/routing-rules/%d" % rule["id"])
    a.ok("DELETE", DOM + "/classifiers/%d" % S["vip"])  # free now
    S["vip"] = a.ok("POST", DOM + "/classifiers",
                    {"name": "VIP", "numbers": ["+73432628900"]}, status=201)["id"]


# ---------------------------------------------------------------- decisions

def decide(number, caller, when):
    return S["a"].ok("POST", DOM + "/numbers/%d/routing/check" % S["nums"][number],
                     {"caller": caller, "at": when})


def reset(number):
    for x in S["a"].ok("GET", DOM + "/routing-rules",
                       query={"number_id": S["nums"][number]})["items"]:
        S["a"].ok("DELETE", DOM + "/routing-rules/%d" % x["id"])


def rule(number, **kw):
    return S["a"].ok("POST", DOM + "/routing-rules", dict(kw, number_id=S["nums"][number]),
                     status=201)


WEEKDAYS = {"mon-fri": [1, 2, 3, 4, 5], "sat-sun": [6, 7]}
TZ = "Asia/Yekaterinburg"


def test_seed_examples_9_5_decisions(d):
    num = "74951230001"
    ks, msk, spb, an = (S["Клиентская служба"], S["Поддержка_МСК"], S["Поддержка_СПБ"],
                        S["Analitika"])
    mon, sat = (2026, 11, 23), (2026, 11, 29)  # a Monday and a Sunday
    # example 1: one rule without a condition -> Analitika, whoever calls whenever
    reset(num)
    rule(num, target={"type": "group", "id": an})
    for caller, when in (("74951112233", at(TZ, *mon, 3, 0)), ("100", at(TZ, *sat, 23, 59))):
        check(decide(num, caller, when)["target"] == {"type": "group", "id": an}, "example 1")
    # example 2: A weekdays 10-19 -> group; B all -> that group's voicemail
    reset(num)
    a_ = rule(num, schedule={"periods": [{"days": WEEKDAYS["mon-fri"], "from": "10:00",
                                          "to": "19:00"}]}, target={"type": "group", "id": ks})
    b_ = rule(num, target={"type": "voicemail", "group": ks})
    for h, m, want in ((9, 59, b_), (10, 0, a_), (18, 59, a_), (19, 0, b_), (23, 30, b_)):
        got = decide(num, "74951112233", at(TZ, *mon, h, m))
        check(got["rule_id"] == want["id"], "example 2 at %02d:%02d: %r" % (h, m, got))
    check(decide(num, "1", at(TZ, *sat, 12, 0))["rule_id"] == b_["id"], "example 2 weekend")
    # example 3: the same rules with B first: A never fires, and is shown so
    S["a"].ok("POST", DOM + "/numbers/%d/routing/order" % S["nums"][num],
              {"rule_ids": [b_["id"], a_["id"]]})
    for h in (3, 12, 18):
        check(decide(num, "74951112233", at(TZ, *mon, h, 0))["rule_id"] == b_["id"],
              "example 3 at %d h" % h)
    shown = S["a"].ok("GET", DOM + "/routing-rules/%d" % a_["id"])
    check(shown["unreachable_by"] == b_["id"], "example 3: A is marked unreachable: %r" % shown)
    # example 4: regional split by caller prefix; an unknown region hears busy
    reset(num)
    rule(num, prefixes=["495", "499"], target={"type": "group", "id": msk})
    rule(num, prefixes=["812"], target={"type": "group", "id": spb})
    noon = at(TZ, *mon, 12, 0)
    for caller, want in (("+74951112233", msk), ("84991112233", msk), ("4951112233", msk),
                         ("78121112233", spb), ("88127654321", spb)):
        got = decide(num, caller, noon)
        check(got["target"] == {"type": "group", "id": want}, "example 4 %s: %r" % (caller, got))
    got = decide(num, "73431112233", noon)
    check("rule_id" not in got and not got.get("blocked"), "example 4: 343 matches no rule")
    # example 5: prefix AND schedule, four rules, each group's voicemail off-hours
    reset(num)
    biz = {"periods": [{"days": WEEKDAYS["mon-fri"], "from": "10:00", "to": "19:00"}]}
    off = {"periods": [{"days": WEEKDAYS["mon-fri"], "from": "00:00", "to": "10:00"},
                       {"days": WEEKDAYS["mon-fri"], "from": "19:00", "to": "00:00"},
                       {"days": WEEKDAYS["sat-sun"], "from": "00:00", "to": "00:00"}]}
    ra = rule(num, prefixes=["495", "499"], schedule=biz, target={"type": "group", "id": msk})
    rb = rule(num, prefixes=["495", "499"], schedule=off,
              target={"type": "voicemail", "group": msk})
    rc = rule(num, prefixes=["812"], schedule=biz, target={"type": "group", "id": spb})
    rd = rule(num, prefixes=["812"], schedule=off, target={"type": "voicemail", "group": spb})
    for caller, when, want in (("74951112233", at(TZ, *mon, 10, 0), ra),
                               ("74991112233", at(TZ, *mon, 18, 59), ra),
                               ("74951112233", at(TZ, *mon, 19, 0), rb),
                               ("74951112233", at(TZ, *mon, 0, 0), rb),
                               ("74951112233", at(TZ, *sat, 12, 0), rb),
                               ("78121112233", at(TZ, *mon, 12, 0), rc),
                               ("78121112233", at(TZ, *mon, 9, 59), rd),
                               ("78121112233", at(TZ, *sat, 23, 59), rd)):
        got = decide(num, caller, when)
        check(got.get("rule_id") == want["id"],
              "example 5 %s at %s: %r" % (caller, got.get("local_time"), got))
    check("rule_id" not in decide(num, "73431112233", at(TZ, *mon, 12, 0)), "example 5: 343")
    reset(num)


def test_holidays_time_zones_and_classifiers(d):
    num = "74951230001"
    # named schedule on the Workdays group: the holiday (Wed 2026-11-25) is non-working
    # time, the working Saturday (2026-11-28) is working time; New Year every year
    work = rule(num, schedule_id=S["business"],
                target={"type": "group", "id": S["Клиентская служба"]})
    rest = rule(num, schedule_id=S["business"], schedule_match="outside",
                target={"type": "voicemail", "group": S["Клиентская служба"]})
    for day, h, want in (((2026, 11, 24), 12, work), ((2026, 11, 25), 12, rest),
                         ((2026, 11, 26), 12, work), ((2026, 11, 28), 12, work),
                         ((2026, 11, 29), 12, rest), ((2027, 1, 1), 12, rest),
                         ((2027, 1, 4), 12, work), ((2026, 11, 24), 19, rest)):
        got = decide(num, "100", at(TZ, *day, h, 0))
        check(got.get("rule_id") == want["id"], "%r %d h: %r" % (day, h, got))
    # the same instant is 19:30 in Yekaterinburg but 17:30 in Moscow
    instant = at(TZ, 2026, 11, 24, 19, 30)
    check(decide(num, "100", instant)["rule_id"] == rest["id"], "after hours in Yekaterinburg")
    S["a"].ok("PATCH", S["domain"], {"timezone": "Europe/Moscow"})
    got = decide(num, "100", instant)
    check(got["rule_id"] == work["id"] and got["local_time"].endswith("17:30"),
          "business hours in Moscow: %r" % got)
    S["a"].ok("PATCH", S["domain"], {"timezone": TZ})
    # classifier membership, in any of the number's spellings
    reset(num)
    vip = rule(num, classifier_id=S["vip"], target={"type": "group", "id": S["Analitika"]})
    rule(num, target={"type": "busy"})
    for caller, want in (("+73432628900", vip["id"]), ("83432628900", vip["id"]),
                         ("3432628900", vip["id"]), ("73432628901", None)):
        got = decide(num, caller, at(TZ, 2026, 11, 24, 12, 0))
        check((got["rule_id"] == want) if want else (got["rule_id"] != vip["id"]),
              "classifier %s: %r" % (caller, got))
    reset(num)


def test_black_and_white_lists(d):
    num = "74951230002"
    n = S["nums"][num]
    a = S["a"]
    reset(num)
    rule(num, target={"type": "group", "id": S["Analitika"]})
    a.ok("PATCH", DOM + "/numbers/%d" % n, {"filter_mode": "blacklist", "filter_list": [
        {"value": "495", "exact": False}, {"value": "+79161234567", "exact": True}]})
    noon = at(TZ, 2026, 11, 24, 12, 0)
    for caller, blocked in (("74951112233", True), ("4951112233", True), ("84951112233", True),
                            ("79161234567", True), ("89161234567", True), ("79161234568", False),
                            ("78121112233", False)):
        got = decide(num, caller, noon)
        check(bool(got.get("blocked")) == blocked, "blacklist %s: %r" % (caller, got))
    a.ok("PATCH", DOM + "/numbers/%d" % n, {"filter_mode": "whitelist", "filter_list": []})
    for caller in ("74951112233", "100", "78121112233"):
        check(decide(num, caller, noon).get("blocked") == "whitelist",
              "an empty whitelist blocks %s" % caller)
    a.ok("PATCH", DOM + "/numbers/%d" % n,
         {"filter_list": [{"value": "7812", "exact": False}]})
    check(not decide(num, "78121112233", noon).get("blocked"), "listed caller passes")
    check(decide(num, "74951112233", noon).get("blocked") == "whitelist", "others do not")
    a.ok("PATCH", DOM + "/numbers/%d" % n, {"filter_mode": "none"})


# ---------------------------------------------------------------- IVR flows

def test_ivr_flows_are_checked_on_save(d):
    a = S["a"]
    base = DOM + "/ivr-flows"
    # a new scenario gets the starter diagram (default: dial extension, timeout: repeat)
    f = a.ok("POST", base, {"name": "Hotline"}, status=201)
    main = f["flow"]["menus"]["main"]
    check(main["default"] == {"action": "dial_extension"} and
          main["timeout"] == {"action": "repeat"}, "starter diagram: %r" % f)
    check(f["menu_count"] == 1 and f["numbers"] == [], "list view: %r" % f)
    good = {"start": "main", "language": "en", "menus": {
        "main": {"prompt": ["welcome", "for_sales", "press_1"],
                 "keys": {"1": {"action": "menu", "menu": "sales"},
                          "2": {"action": "forward", "target": {"type": "group",
                                                                "id": "Analitika"}},
                          "0": {"action": "forward", "target": {"type": "user", "id": "101"}},
                          "#": {"action": "hangup"}},
                 "default": {"action": "dial_extension"}, "timeout": {"action": "repeat"}},
        "sales": {"prompt": "main_menu", "keys": {"*": {"action": "back"}},
                  "timeout": {"action": "message", "prompt": ["goodbye"], "then": "hangup"}}}}
    f = a.ok("PATCH", base + "/%d" % f["id"], {"flow": good})
    check(f["version"] == 2 and f["menu_count"] == 2, "saved: %r" % f)
    bad = [
        (["menus", "main", "keys", "1"], {"action": "jump"}, "flow.menus.main.keys.1.action"),
        (["menus", "main", "keys", "1"], {"action": "menu", "menu": "nowhere"},
         "flow.menus.main.keys.1.menu"),
        (["menus", "main", "keys", "2"], {"action": "forward",
                                          "target": {"type": "group", "id": "Nobody"}},
         "flow.menus.main.keys.2.target.id"),
        (["menus", "main", "keys", "2"], {"action": "forward", "target": {"type": "planet",
                                                                          "id": "1"}},
         "flow.menus.main.keys.2.target.type"),
        (["menus", "main", "keys", "12"], {"action": "hangup"}, "flow.menus.main.keys.12"),
        (["menus", "sales", "prompt"], ["no_such_prompt"], "flow.menus.sales.prompt[0]"),
        (["menus", "sales", "timeout"], {"action": "message"}, "flow.menus.sales.timeout.prompt"),
        (["menus", "sales", "colour"], "red", "flow.menus.sales.colour"),
        (["start"], "lobby", "flow.start"),
        (["menus", "sales", "keys", "*"], {"action": "back", "then": "x"},
         "flow.menus.sales.keys.*.then"),
    ]
    import copy
    for keys, value, where in bad:
        flow = copy.deepcopy(good)
        node = flow
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
        err = refused(a, "PATCH", base + "/%d" % f["id"], {"flow": flow}, "flow", where)
        check(err["code"] == "invalid_flow", "code: %r" % err)
    # a key used twice in the menu's JSON
    raw = ('{"flow": {"menus": {"main": {"keys": {"1": {"action": "hangup"}, '
           '"1": {"action": "repeat"}}}}}}')
    err = refused(a, "PATCH", base + "/%d" % f["id"], raw, "flow", "flow.menus.main.keys")
    check('"1"' in err["message"] and "twice" in err["message"], "duplicate key: %r" % err)
    check(a.ok("GET", base + "/%d" % f["id"])["version"] == 2, "refusals make no version")
    # the shipped samples are valid flows for the demo tenant
    import json
    import os
    from cwtest import SOURCE
    for name in ("support-line", "after-hours", "language-choice"):
        with open(os.path.join(SOURCE, "ivr-flows", "samples", name + ".json")) as fh:
            flow = json.load(fh)
        a.ok("POST", base, {"name": "Sample " + name, "flow": flow}, status=201)
    # routing a number to a flow: the flow lists the number
    rule("74951230003", target={"type": "ivr", "id": f["id"]})
    check(a.ok("GET", base + "/%d" % f["id"])["numbers"] == ["74951230003"], "numbers shown")
    r = a.delete(base + "/%d" % f["id"])
    check(r.status == 409 and r.error()["code"] == "in_use", "a routed flow stays: %r" % r)


if __name__ == "__main__":
    run_tests([test_day_groups_schedules_classifiers, test_rules_positions_reorder_disable_copy,
               test_invalid_rules_are_refused_naming_the_element,
               test_invalid_groups_schedules_lists_are_refused,
               test_objects_in_use_cannot_be_deleted, test_seed_examples_9_5_decisions,
               test_holidays_time_zones_and_classifiers, test_black_and_white_lists,
               test_ivr_flows_are_checked_on_save], demo=True)
