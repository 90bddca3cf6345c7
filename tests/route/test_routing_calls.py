#!/usr/bin/python3
"""Routing rules at call time, with real phones: a carrier's phone calls the
domain's external number through a trunk (from 127.0.0.2, any caller
number), and the test asserts which agent phone the call reached, or that
the carrier heard busy.

- a schedule switches targets at its boundary while the (shifted) clock runs
  through it, in the domain's time zone (Asia/Yekaterinburg, UTC+5, so a
  UTC reading would pick the wrong rule), and a holiday follows the
  off-hours rule;
- caller prefixes and classifier membership pick their rules;
- a black list refuses its callers, an empty white list refuses everyone;
- dialplan steps move on after busy, no answer, no route and completion;
- a tenant's own Lua decides, and one that errs, loops or exhausts its
  memory falls back: the caller hears the fallback's phone each time, and a
  call in progress meanwhile carries audio both ways without a break.
"""

import datetime
import os
import time

import audio
import routelib
from cwtest import DEMO, TestFailure, wait_until
from routelib import DOM, ProviderPhone, check, set_clock
from sipua import Phone

TZ = "Asia/Yekaterinburg"
S = {}
OP101_HZ, OP103_HZ, BYSTANDER_HZ = 900, 1400, 700


def tone(d, name, hz):
    return audio.write_tone_wav(os.path.join(d.dir, name + "-mic.wav"), hz, 600, amplitude=9000)


def setup(d):
    sa = d.login("sysadmin", DEMO["sysadmin"])
    # a token, not a session: the tests move the clock by days
    tok = d.login("admin", DEMO["admin"], "demo.local").ok(
        "POST", "/api/v1/auth/tokens", {"name": "routing tests"}, status=201)["token"]
    a = d.client(token=tok)
    S["a"], S["d"] = a, d
    dom = a.ok("GET", "/api/v1/domains")["items"][0]
    a.ok("PATCH", "/api/v1/domains/%d" % dom["id"], {"timezone": TZ})
    routelib.add_trunk(sa)
    # an office PBX behind a private route: a phone answering for its extension 252
    office = ProviderPhone("252", d.sip_port, ip="127.0.0.3", realm="office.example",
                           auto_answer=True, seconds=600)
    office.start()
    S["office"] = office
    S["office_trunk"] = routelib.add_trunk(sa, kind="private_route", name="Office",
                                           host="127.0.0.3", port=office.sip_listen,
                                           realm="office.example")
    S["nums"] = {}
    for n in ("74950000001", "74950000002", "74950000003", "74950000004", "74950000005",
              "74950000006"):
        S["nums"][n] = sa.ok("POST", DOM + "/numbers", {"number": n}, status=201)["id"]
    S["users"] = {u["login"]: u["id"] for u in a.ok("GET", DOM + "/users")["items"]}
    # op102 rings for 4 s before its scheme gives up (for the no-answer step)
    main = a.ok("GET", DOM + "/forwarding-rules",
                query={"owner_id": S["users"]["op102"]})["items"][0]
    a.ok("PATCH", DOM + "/forwarding-rules/%d" % main["id"], {"ring_time": 5})
    # The clock only ever moves back from here, so registrations (and their expiry,
    # kept in wall-clock time) stay valid: Thursday 3 December 2026, noon, in the domain.
    set_clock(d, datetime.datetime(2026, 12, 3, 12, 0), TZ)
    phones = {
        "op101": Phone("op101", "op101", DEMO["op101"], d.sip_port, auto_answer=True,
                       seconds=600, mic_wav=tone(d, "op101", OP101_HZ)),
        "op102": Phone("op102", "op102", DEMO["op102"], d.sip_port, seconds=600),
        "op103": Phone("op103", "op103", DEMO["op103"], d.sip_port, auto_answer=True,
                       seconds=600, mic_wav=tone(d, "op103", OP103_HZ)),
    }
    for p in phones.values():
        p.start()
        check(p.wait_registered(15), "%s did not register" % p.name)
    S["phones"] = phones
    S["callers"] = {}


def caller(number, mic_wav=None):
    p = S["callers"].get(number)
    if not p:
        p = ProviderPhone(number, S["d"].sip_port, seconds=600, mic_wav=mic_wav)
        p.start()
        S["callers"][number] = p
    return p


def call(from_number, to_number, expect, talk=0.5, why=None):
    """A call from the carrier: expect is the login of the phone that must answer, or "busy"
    (then `why` is what the call's protocol must say: which list or rule refused it)."""
    p = caller(from_number)
    known = routelib.cdr_uuids(S["a"], from_number) if why else ()
    for ph in S["phones"].values():
        ph.events.clear()
    p.events.clear()
    p.call(to_number, S["d"].sip_port)
    if expect == "busy":
        e = p.wait_event("CALL_CLOSED", 10)
        check(e is not None, "%s -> %s: the call did not end" % (from_number, to_number))
        check("486" in e.get("param", ""), "%s -> %s: expected busy, got %r" %
              (from_number, to_number, e))
        check(not any(ph.seen("CALL_ESTABLISHED") or ph.seen("CALL_INCOMING")
                      for ph in S["phones"].values()), "a phone rang for a refused call")
        if why:
            routelib.cdr_says(S["a"], from_number, why, known)
        return
    agent = S["phones"][expect]
    check(agent.wait_event("CALL_ESTABLISHED", 15) is not None,
          "%s -> %s: %s did not answer" % (from_number, to_number, expect))
    check(p.wait_event("CALL_ESTABLISHED", 5) is not None, "the carrier's call was not answered")
    for name, ph in S["phones"].items():
        if name != expect:
            check(not ph.seen("CALL_ESTABLISHED"), "%s answered too" % name)
    time.sleep(talk)
    p.hangup()
    check(agent.wait_event("CALL_CLOSED", 8) is not None, "%s was not hung up" % expect)
    check(p.wait_event("CALL_CLOSED", 8) is not None, "the carrier's call did not close")


def rules(number, *bodies):
    a = S["a"]
    for x in a.ok("GET", DOM + "/routing-rules", query={"number_id": S["nums"][number]})["items"]:
        a.ok("DELETE", DOM + "/routing-rules/%d" % x["id"])
    return [a.ok("POST", DOM + "/routing-rules", dict(b, number_id=S["nums"][number]),
                 status=201) for b in bodies]


def user(login, **on):
    t = {"type": "user", "id": S["users"][login]}
    if on:
        t["on"] = on
    return t


def test_schedule_switches_at_its_boundary(d):
    setup(d)
    a = S["a"]
    wd = a.ok("POST", DOM + "/day-groups",
              {"name": "Workdays", "days": [1, 2, 3, 4, 5],
               "holidays": [{"date": "2026-12-02", "name": "Founders' day"}]}, status=201)
    biz = a.ok("POST", DOM + "/schedules",
               {"name": "Office", "periods": [{"day_group_id": wd["id"], "from": "10:00",
                                               "to": "19:00"}]}, status=201)
    num = "74950000001"
    rules(num, {"schedule_id": biz["id"], "target": user("op101")},
          {"schedule_id": biz["id"], "schedule_match": "outside", "target": user("op103")})
    # Thursday noon (set up above): office hours
    call("74951110001", num, "op101")
    # the holiday on Wednesday at noon follows the off-hours rule
    set_clock(d, datetime.datetime(2026, 12, 2, 12, 0), TZ)
    call("74951110001", num, "op103")
    # Monday 18:59:50 in Yekaterinburg (13:59:50 UTC): still office hours
    t0 = time.monotonic()
    set_clock(d, datetime.datetime(2026, 11, 30, 18, 59, 50), TZ)
    call("74951110001", num, "op101")
    # the clock runs on past 19:00: the next call takes the off-hours rule
    time.sleep(max(0.0, 12 - (time.monotonic() - t0)))
    known = routelib.cdr_uuids(a, "74951110001")
    call("74951110001", num, "op103")
    routelib.cdr_says(a, "74951110001", "(priority 2) -> user", known)


def test_prefix_and_classifier_conditions(d):
    a = S["a"]
    vip = a.ok("POST", DOM + "/classifiers", {"name": "Key clients",
                                              "numbers": ["+73432628900"]}, status=201)
    num = "74950000002"
    rules(num, {"prefixes": ["495", "499"], "target": user("op101")},
          {"classifier_id": vip["id"], "target": user("op103")},
          {"target": {"type": "busy"}})
    call("74951112233", num, "op101")
    call("84991112233", num, "op101")
    call("73432628900", num, "op103")   # listed as +73432628900
    call("78121112233", num, "busy", why="rule")
    call("73432628901", num, "busy", why="-> busy")  # a neighbour of the key client is not one


def test_black_and_white_lists(d):
    a = S["a"]
    num = "74950000003"
    n = S["nums"][num]
    rules(num, {"target": user("op101")})
    a.ok("PATCH", DOM + "/numbers/%d" % n,
         {"filter_mode": "blacklist", "filter_list": [{"value": "7495", "exact": False}]})
    call("74951112233", num, "busy", why="refused by the blacklist")
    call("78121112233", num, "op101")
    a.ok("PATCH", DOM + "/numbers/%d" % n, {"filter_mode": "whitelist", "filter_list": []})
    call("78121112233", num, "busy", why="refused by the whitelist")
    call("74951112233", num, "busy", why="refused by the whitelist")
    a.ok("PATCH", DOM + "/numbers/%d" % n,
         {"filter_list": [{"value": "78121112233", "exact": True}]})
    call("78121112233", num, "op101")
    call("78121112234", num, "busy", why="refused by the whitelist")
    a.ok("PATCH", DOM + "/numbers/%d" % n, {"filter_mode": "none"})


def test_steps_move_on_after_busy_no_answer_no_route_and_done(d):
    num = "74950000004"
    op102 = S["phones"]["op102"]
    # busy: op102 refuses the call, the next step takes it
    rules(num, {"target": user("op102", busy=user("op103"))})
    p = caller("74951110004")
    op102.events.clear()
    p.call(num, d.sip_port)
    check(op102.wait_event("CALL_INCOMING", 10) is not None, "op102 did not ring")
    op102.hangup()  # 486 Busy Here
    check(S["phones"]["op103"].wait_event("CALL_ESTABLISHED", 10) is not None,
          "busy did not move to op103")
    p.hangup()
    check(p.wait_event("CALL_CLOSED", 8) is not None, "busy case did not end")
    time.sleep(0.5)
    # no answer: op102 rings for its 5 s, then op101 takes the call
    rules(num, {"target": user("op102", no_answer=user("op101"))})
    op102.events.clear()
    t0 = time.monotonic()
    p.call(num, d.sip_port)
    check(op102.wait_event("CALL_INCOMING", 10) is not None, "op102 did not ring")
    check(S["phones"]["op101"].wait_event("CALL_ESTABLISHED", 15) is not None,
          "no answer did not move to op101")
    waited = time.monotonic() - t0
    check(4 <= waited <= 12, "the no-answer step took %.1f s (ring time 5 s)" % waited)
    check(op102.wait_event("CALL_CLOSED", 5) is not None, "op102 kept ringing")
    p.hangup()
    check(p.wait_event("CALL_CLOSED", 8) is not None, "no-answer case did not end")
    time.sleep(0.5)
    # no route: the supervisor has no phone registered
    rules(num, {"target": user("supervisor", no_route=user("op103"))})
    call("74951110004", num, "op103")
    # done: a message first, then on to op101 (after the prompt's length)
    rules(num, {"target": {"type": "message", "prompt": "en/welcome", "on": {"done": user("op101")}}})
    t0 = time.monotonic()
    known = routelib.cdr_uuids(S["a"], "74951110004")
    call("74951110004", num, "op101")
    check(time.monotonic() - t0 >= 1.0, "the message was not played before the next step")
    routelib.cdr_says(S["a"], "74951110004", "done after message -> user", known)


def test_tenant_script_decides_and_falls_back(d):
    num = "74950000005"
    op101, op103 = S["users"]["op101"], S["users"]["op103"]
    code = ("local call = ...\n"
            "if call.caller:sub(1, 4) == '7495' then return {type = 'user', id = %d} end\n"
            "return nil -- the next rule decides\n" % op101)
    rules(num, {"target": {"type": "script", "code": code}}, {"target": {"type": "busy"}})
    call("74951117777", num, "op101")
    call("78121117777", num, "busy", why="(priority 2) -> busy")
    # an error, a loop and a memory hog each end in the rule's fallback, which the caller
    # hears; a call to op101 in progress all the while carries audio both ways unbroken
    rules("74950000003", {"target": user("op101")})
    bystander = caller("74951118888", mic_wav=tone(d, "bystander", BYSTANDER_HZ))
    op101 = S["phones"]["op101"]
    for name, code in (("error", "error('no CRM today')"), ("loop", "while true do end"),
                       ("memory", "local t = {}\n"
                                  "while true do t[#t + 1] = string.rep('x', 1 << 20) end")):
        rules(num, {"target": {"type": "script", "code": code, "fallback": user("op103")}})
        bystander.events.clear()
        op101.events.clear()
        bystander.call("74950000003", d.sip_port)
        check(op101.wait_event("CALL_ESTABLISHED", 10) and
              bystander.wait_event("CALL_ESTABLISHED", 5), "%s: the bystander's call" % name)
        time.sleep(1.5)
        t0 = time.monotonic()
        call("74951117777", num, "op103", talk=2.5)
        check(time.monotonic() - t0 < 10, "%s: the script held the call too long" % name)
        time.sleep(1)
        bystander.hangup()
        check(bystander.wait_event("CALL_CLOSED", 8) and op101.wait_event("CALL_CLOSED", 8),
              "%s: the bystander's call did not end" % name)
        time.sleep(0.5)
        check(caller("74951117777").hears(OP103_HZ, -2.2, -0.3),
              "%s: the caller did not hear the fallback (op103)" % name)
        unbroken(bystander, OP101_HZ, "%s: the bystander hearing op101" % name)
        unbroken(op101, BYSTANDER_HZ, "%s: op101 hearing the bystander" % name)
    # an answer that is not a valid target is refused like a bad rule
    rules(num, {"target": {"type": "script", "code": "return {type = 'group', id = 424242}",
                           "fallback": user("op101")}})
    call("74951117777", num, "op101")
    log = S["d"].log_text()
    check("budget" in log and "no CRM today" in log and "memory cap of" in log,
          "the failures are logged")


def unbroken(p, hz, what):
    """p heard hz in every second of its last call (but the first and the last)."""
    rate, s, _ = audio.read_wav(p.received_wavs()[-1])
    seconds = int(len(s) / rate)
    check(seconds >= 4, "%s: the call lasted %d s" % (what, seconds))
    for t in range(1, seconds - 1):
        share = audio.tone_share(audio.segment(s, rate, t, t + 1), rate, hz)
        check(share > 0.5, "%s: %d Hz missing %d-%d s into the call (%.2f)" %
              (what, hz, t, t + 1, share))


def test_ivr_flow_and_private_route_targets(d):
    num = "74950000006"
    a = S["a"]
    flow = a.ok("POST", DOM + "/ivr-flows", {"name": "Front desk", "flow": {
        "language": "en", "menus": {"main": {
            "prompt": ["welcome", "press_1"],
            "keys": {"1": {"action": "forward", "target": {"type": "user", "id": "101"}}},
            "default": {"action": "repeat"}, "timeout": {"action": "repeat"}}}}},
        status=201)
    rules(num, {"target": {"type": "ivr", "id": flow["id"]}})
    p = caller("74951110006")
    p.events.clear()
    p.call(num, d.sip_port)
    check(p.wait_event("CALL_ESTABLISHED", 10) is not None, "the IVR did not answer")
    time.sleep(1.5)
    p.dtmf("1")
    check(S["phones"]["op101"].wait_event("CALL_ESTABLISHED", 15) is not None,
          "key 1 of the flow did not reach op101")
    p.hangup()
    check(p.wait_event("CALL_CLOSED", 8) is not None, "the IVR call did not end")
    check(a.ok("GET", DOM + "/ivr-flows/%d" % flow["id"])["numbers"] == [num], "numbers shown")
    time.sleep(0.5)
    # a private route: the office PBX's phone for 252 answers, and sees the caller's number
    rules(num, {"target": {"type": "private_route", "trunk_id": S["office_trunk"],
                           "number": "252"}})
    office = S["office"]
    office.events.clear()
    p.events.clear()
    p.call(num, d.sip_port)
    e = office.wait_event("CALL_ESTABLISHED", 10)
    check(e is not None, "the office PBX was not called")
    check("74951110006" in e.get("peeruri", ""), "the caller's number reaches the office: %r" % e)
    check(p.wait_event("CALL_ESTABLISHED", 5) is not None, "the carrier's call was not answered")
    p.hangup()
    check(office.wait_event("CALL_CLOSED", 8) is not None, "the office call did not end")


def teardown(d):
    others = [S["office"]] if "office" in S else []
    for p in list(S.get("phones", {}).values()) + list(S.get("callers", {}).values()) + others:
        p.cleanup()


def test_cleanup(d):
    teardown(d)


if __name__ == "__main__":
    routelib.run([test_schedule_switches_at_its_boundary, test_prefix_and_classifier_conditions,
                  test_black_and_white_lists,
                  test_steps_move_on_after_busy_no_answer_no_route_and_done,
                  test_tenant_script_decides_and_falls_back,
                  test_ivr_flow_and_private_route_targets, test_cleanup],
                 demo=True, sets={"route.script_time_ms": "2000"})
