#!/usr/bin/python3
"""The shipped IVR samples (ivr-flows/samples/*.json) taking real calls, and the
domain's IVR settings.

op101 calls (its microphone says 440 Hz); prompts are recognised at its
phone by their loudness contour; where a call went is what the target's
phone saw and what the call's protocol (CDR) says.

- after-hours: its menu prompt plays; 1 leaves a voicemail in box 100
  (a stored message of admin's box); silence plays "call back later" and
  the IVR hangs up; 9 hangs up at once;
- language choice: 2 leads to the Russian menu (its Russian prompt heard),
  whose 1 queues the caller in Support, where op102 (available) answers;
  silence leads to the English menu, whose default dials the extension
  typed (301: a phone added for the test rings and answers);
- the support line: a message action (sales, 1: "working hours") plays,
  then the menu again;
- a flow that leaves out timeout and max_errors takes the domain's
  ivr_timeout and ivr_max_errors (2 s, 2 errors): a silent caller is hung
  up after two short time-outs, not three five-second ones.
"""

import json
import os
import time

import audio
from cwtest import BUILD, DEMO, SOURCE, EventStream, check, run_tests, wait_until
from sipua import Phone, demo_phone

DOM = "/api/v1/domains/demo.local"
S = {}


def prompt(name, lang="en"):
    return audio.read_wav(os.path.join(BUILD, "sounds", lang, name + ".wav"))[1]


def prompt_seconds(names, lang="en"):
    return sum(len(prompt(n, lang)) / 8000.0 for n in names)


def hears_prompt(phone, name, start, end, lang="en", index=-1):
    """The prompt's contour is within [start, end] s of the phone's call (0.75 or better)."""
    rate, heard = phone.heard(start, end, index)
    ref = prompt(name, lang)
    if len(heard) <= len(ref):
        return False
    return audio.contour_match(ref, heard, rate, max_lag_s=len(heard) / rate) > 0.75


def sample(name, extension):
    with open(os.path.join(SOURCE, "ivr-flows", "samples", name + ".json")) as f:
        flow = json.load(f)
    r = S["a"].post(DOM + "/ivr-flows", {"name": flow.pop("name"), "extension": extension,
                                         "flow": flow})
    check(r.status == 201, "%s saved: %r" % (name, r))


def protocol(known):
    """The script lines of the newest call not in known."""
    def newest():
        rows = S["a"].ok("GET", DOM + "/cdrs", query={"number": "101", "limit": 5})["items"]
        rows = [x for x in rows if x["uuid"] not in known]
        return rows[0] if rows else None
    row = wait_until(newest, 10, 0.2, "the call's CDR")
    known.add(row["uuid"])
    return row, [e["text"] for e in row["events"] if e["what"] == "script"]


def dial(ext):
    caller = S["caller"]
    caller.events.clear()
    caller.dial("sip:%s@demo.local" % ext)
    check(caller.wait_event("CALL_ESTABLISHED", 10) is not None, "%s did not answer" % ext)
    return time.monotonic()


def ended(timeout=15):
    e = S["caller"].wait_event("CALL_CLOSED", timeout)
    check(e is not None, "the call did not end")
    time.sleep(0.3)
    return time.monotonic()


def setup(d):
    S["d"] = d
    S["a"] = d.login("admin", DEMO["admin"], "demo.local")
    S["known"] = set()
    S["op301"] = d.add_user("op301", "301", "Test-op301-1")
    S["caller"] = demo_phone(d, "caller", "op101", 440, seconds=300)
    S["op102"] = demo_phone(d, "op102", "op102", 900, auto=True, seconds=300)
    p301 = Phone("op301", "op301", "Test-op301-1", d.sip_port, auto_answer=True, seconds=300)
    p301.start()
    check(p301.wait_registered(15), "op301 did not register")
    S["p301"] = p301


def test_after_hours(d):
    setup(d)
    sample("after-hours", "503")
    caller, known = S["caller"], S["known"]
    menu = ["office_closed", "working_hours", "for_voicemail", "press_1"]
    # 1: admin's voicemail (box 100) takes a message
    dial("503")
    time.sleep(prompt_seconds(menu) + 0.5)
    caller.dtmf("1")
    time.sleep(prompt_seconds(["vm_unavailable", "leave_message"]) + 5)
    caller.hangup()
    ended()
    check(hears_prompt(caller, "office_closed", 0, 3.5), "the after-hours prompt was not heard")
    admin_id = int(d.sql("SELECT id FROM users WHERE login = 'admin'")[0][0])
    rows = wait_until(lambda: d.sql("SELECT owner_id, caller, duration_ms FROM "
                                    "voicemail_messages"), 10, 0.2, "the voicemail message")
    check(len(rows) == 1 and int(rows[0][0]) == admin_id and rows[0][1] == "101" and
          int(rows[0][2]) >= 2000, "the message in box 100: %r" % rows)
    _, texts = protocol(known)
    check("ivr: menu closed key 1 -> forward" in texts, "path of the voicemail call: %r" % texts)
    # silence: "call back later", goodbye, and the IVR hangs up
    t0 = dial("503")
    t1 = ended(prompt_seconds(menu) + 5 + prompt_seconds(["call_back_later", "goodbye"]) + 8)
    check(hears_prompt(caller, "call_back_later", t1 - t0 - 4.5, t1 - t0),
          "the timeout's message was not heard")
    row, texts = protocol(known)
    check("ivr: menu closed key nil -> message" in texts and row["released_by"] == "system",
          "path of the silent call: %r %s" % (texts, row["released_by"]))
    # 9: the IVR hangs up at once
    dial("503")
    time.sleep(1.0)
    caller.dtmf("9")
    t0 = time.monotonic()
    t1 = ended()
    check(t1 - t0 < 3, "9 took %.1f s to hang up" % (t1 - t0))
    row, texts = protocol(known)
    check("ivr: menu closed key 9 -> hangup" in texts and row["released_by"] == "system",
          "path of the 9 call: %r" % texts)


def test_language_choice(d):
    a = S["a"]
    users = {u["login"]: u["id"] for u in a.ok("GET", DOM + "/users")["items"]}
    ev = EventStream(d.http_port, cookies=a.cookies, types=["agent."])
    try:
        r = a.request("PUT", DOM + "/agents/%d/state" % users["op102"],
                      body={"state": "available"})
        check(r.status == 200, "op102 available: %r" % r)
        ev.wait_for(lambda e: e["event"] == "agent.state" and
                    e["data"]["data"]["user_id"] == users["op102"], 10)
    finally:
        ev.close()
    sample("language-choice", "504")
    caller, known, op102, p301 = S["caller"], S["known"], S["op102"], S["p301"]
    choose = [("choose_language", "en"), ("choose_language", "ru")]
    choose_s = sum(len(prompt(n, lang)) for n, lang in choose) / 8000.0
    # 2: Russian; its 1 queues the caller in Support, op102 answers
    op102.events.clear()
    dial("504")
    time.sleep(choose_s + 0.3)
    caller.dtmf("2")
    time.sleep(2.8)
    caller.dtmf("1")
    check(op102.wait_event("CALL_ESTABLISHED", 15) is not None, "Support's op102 did not answer")
    time.sleep(2)
    caller.hangup()
    ended()
    check(op102.wait_event("CALL_CLOSED", 8) is not None, "op102's call did not end")
    check(hears_prompt(caller, "welcome", choose_s - 0.5, choose_s + 5, lang="ru"),
          "the Russian menu was not heard")
    _, texts = protocol(known)
    check([t for t in texts if t.startswith("ivr:")] ==
          ["ivr: menu choose key 2 -> menu", "ivr: menu russian key 1 -> forward"],
          "path of the Russian call: %r" % texts)
    # silence: English; a key it does not have starts an extension: 301 rings
    p301.events.clear()
    dial("504")
    english = choose_s + 5 + prompt_seconds(["welcome", "for_support", "press_1"])
    time.sleep(english + 0.5)
    caller.dtmf("301")
    check(p301.wait_event("CALL_ESTABLISHED", 15) is not None, "dialling 301 did not reach it")
    time.sleep(1)
    caller.hangup()
    ended()
    check(p301.wait_event("CALL_CLOSED", 8) is not None, "301's call did not end")
    check(hears_prompt(caller, "welcome", choose_s + 4, english + 0.5),
          "the English menu was not heard after the silence")
    _, texts = protocol(known)
    check([t for t in texts if t.startswith("ivr:")] ==
          ["ivr: menu choose key nil -> menu", "ivr: menu english key 3 -> dial_extension"],
          "path of the English call: %r" % texts)


def test_support_line_message(d):
    sample("support-line", "505")
    caller, known = S["caller"], S["known"]
    t0 = dial("505")
    time.sleep(1.0)
    caller.dtmf("2")  # type-ahead: the sales menu at once
    time.sleep(1.5)
    caller.dtmf("1")  # the message
    t_msg = time.monotonic() - t0
    time.sleep(prompt_seconds(["working_hours"]) + 2.5)
    caller.hangup()
    ended()
    check(hears_prompt(caller, "working_hours", t_msg - 0.5, t_msg + 5),
          "the message action was not heard")
    check(hears_prompt(caller, "main_menu", t_msg + 3, t_msg + 8),
          "the sales menu did not come back after the message")
    _, texts = protocol(known)
    check("ivr: menu sales key 1 -> message" in texts, "path: %r" % texts)


def test_domain_ivr_settings_apply(d):
    a, caller, known = S["a"], S["caller"], S["known"]
    dom = a.ok("GET", "/api/v1/domains")["items"][0]
    a.ok("PATCH", "/api/v1/domains/%d" % dom["id"], {"ivr_timeout": 2, "ivr_max_errors": 2})
    try:
        flow = {"start": "main", "language": "en",
                "menus": {"main": {"prompt": ["press_1"], "keys": {"1": {"action": "hangup"}},
                                   "default": {"action": "repeat"},
                                   "timeout": {"action": "repeat"}}}}
        r = a.post(DOM + "/ivr-flows", {"name": "Domain settings", "extension": "506",
                                        "flow": flow})
        check(r.status == 201, "flow saved: %r" % r)
        t0 = dial("506")
        t1 = ended(40)
    finally:
        a.ok("PATCH", "/api/v1/domains/%d" % dom["id"], {"ivr_timeout": 5, "ivr_max_errors": 3})
    row, texts = protocol(known)
    keys = [t for t in texts if t.startswith("ivr: menu")]
    check(keys == ["ivr: menu main key nil -> repeat"] * 2,
          "two time-outs (ivr_max_errors 2) expected: %r" % texts)
    p = prompt_seconds(["press_1"])
    took = t1 - t0
    check(2 * (p + 2) <= took <= 2 * (p + 2) + prompt_seconds(["too_many_errors", "goodbye"]) + 3,
          "the silent call took %.1f s (two %.1f s prompts and 2 s time-outs)" % (took, p))
    check(row["released_by"] == "system", "the IVR did not end the call: %r" % row)


def test_cleanup(d):
    for p in ("caller", "op102", "p301"):
        if p in S:
            S[p].cleanup()


if __name__ == "__main__":
    run_tests([test_after_hours, test_language_choice, test_support_line_message,
               test_domain_ivr_settings_apply, test_cleanup], demo=True)
