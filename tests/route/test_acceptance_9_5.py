#!/usr/bin/python3
"""Seed 001 §9.5's routing examples as acceptance tests, with real phones.

One external number per example, configured exactly as the seed describes;
a carrier phone calls in through the trunk with Moscow (495/499),
St Petersburg (812) or Yekaterinburg (343) caller numbers at office and
off hours (the daemon's clock is shifted, in the domain's time zone), and
the test asserts what the caller reached: the agent phone of the group
that answered, the group's voicemail (a message stored in that group's
box, holding the caller's own voice), or busy.

  1  one rule, no condition -> group Analitika: every call
  2  A weekdays 10-19 -> Клиентская служба; B all -> its voicemail
  3  the same with B first: A never fires (and is shown so)
  4  495/499 -> Поддержка_МСК; 812 -> Поддержка_СПБ; others busy
  5  prefix AND schedule: each region's group by day, its voicemail off hours
"""

import datetime
import os
import time

import audio
import routelib
from cwtest import DEMO, wait_until
from routelib import DOM, ProviderPhone, check, set_clock
from sipua import Phone

TZ = "Europe/Moscow"
PW = "Agent-pass-1"
CALLER_HZ = 440  # what the carrier's phone says (sipua's default tone)
S = {}
GROUPS = [("Analitika", "an"), ("Клиентская служба", "ks"), ("Поддержка_МСК", "msk"),
          ("Поддержка_СПБ", "spb")]
WEEKDAYS, WEEKEND = [1, 2, 3, 4, 5], [6, 7]


def setup(d):
    sa = d.login("sysadmin", DEMO["sysadmin"])
    tok = d.login("admin", DEMO["admin"], "demo.local").ok(
        "POST", "/api/v1/auth/tokens", {"name": "acceptance"}, status=201)["token"]
    a = d.client(token=tok)  # the clock moves by days: no session would last
    S.update(a=a, d=d, phones={}, callers={}, groups={})
    dom = a.ok("GET", "/api/v1/domains")["items"][0]
    a.ok("PATCH", "/api/v1/domains/%d" % dom["id"], {"timezone": TZ})
    routelib.add_trunk(sa)
    S["nums"] = {}
    for ex in range(1, 6):
        S["nums"][ex] = "7495000010%d" % ex
        S["nums"][ex, "id"] = sa.ok("POST", DOM + "/numbers", {"number": S["nums"][ex]},
                                    status=201)["id"]
    # the clock only moves back from here (registrations stay valid): Saturday 5 December
    set_clock(d, datetime.datetime(2026, 12, 5, 12, 0), TZ)
    for i, (name, login) in enumerate(GROUPS):
        u = a.ok("POST", DOM + "/users", {"login": login, "display_name": name + " agent",
                                          "extension": "30%d" % i, "password": PW,
                                          "is_operator": True}, status=201)
        g = a.ok("POST", DOM + "/call-groups",
                 {"name": name, "extension": "40%d" % i, "strategy": "ring_all",
                  "voicemail_enabled": True, "members": [{"user_id": u["id"]}]}, status=201)
        S["groups"][login] = g["id"]
        ph = Phone(login, login, PW, d.sip_port, auto_answer=True, seconds=600)
        ph.start()
        check(ph.wait_registered(15), "%s did not register" % login)
        S["phones"][login] = ph
        a.ok("PUT", DOM + "/agents/%d/state" % u["id"], {"state": "available"})


def rule(ex, **body):
    return S["a"].ok("POST", DOM + "/routing-rules", dict(body, number_id=S["nums"][ex, "id"]),
                     status=201)


def group(login):
    return {"type": "group", "id": S["groups"][login]}


def voicemail(login):
    return {"type": "voicemail", "group": S["groups"][login]}


def caller(number):
    p = S["callers"].get(number)
    if not p:
        p = ProviderPhone(number, S["d"].sip_port, seconds=600)
        p.start()
        S["callers"][number] = p
    return p


def reaches(ex, from_number, expect):
    """Call example ex's number; expect: an agent login, ("voicemail", login) or "busy"."""
    p = caller(from_number)
    known = routelib.cdr_uuids(S["a"], from_number)
    p.events.clear()
    for ph in S["phones"].values():
        ph.events.clear()
    p.call(S["nums"][ex], S["d"].sip_port)
    what = "example %d, %s calling" % (ex, from_number)
    if expect == "busy":
        e = p.wait_event("CALL_CLOSED", 10)
        check(e is not None and "486" in e.get("param", ""), "%s: expected busy, got %r" %
              (what, e))
        routelib.cdr_says(S["a"], from_number, "no rule matched; busy", known)
    elif isinstance(expect, tuple):
        box = S["groups"][expect[1]]
        before = S["a"].ok("GET", DOM + "/voicemail", query={"group_id": box})["total"]
        check(p.wait_event("CALL_ESTABLISHED", 10) is not None, "%s: voicemail did not answer"
              % what)
        time.sleep(11.0)  # "unavailable, please leave a message", the beep, ~3 s of message
        p.hangup()
        check(p.wait_event("CALL_CLOSED", 8) is not None, "%s: the call did not end" % what)
        msgs = wait_until(lambda: (lambda r: r["items"] if r["total"] > before else None)(
            S["a"].ok("GET", DOM + "/voicemail", query={"group_id": box})), 10, 0.2,
            "%s: a message in the %s box" % (what, expect[1]))
        m = msgs[0]
        check(m["caller"] == from_number and m["duration_ms"] >= 1500,
              "%s: message %r" % (what, m))
        r = S["a"].get(m["audio_url"])
        check(r.status == 200 and r.header("content-type") == "audio/wav", "audio: %r" % r)
        path = os.path.join(S["d"].dir, "msg.wav")
        with open(path, "wb") as f:
            f.write(r.body)
        rate, samples, _ = audio.read_wav(path)
        share = audio.tone_share(samples, rate, CALLER_HZ)
        check(share > 0.3, "%s: the message does not hold the caller's voice (%.2f)" %
              (what, share))
    else:
        agent = S["phones"][expect]
        check(agent.wait_event("CALL_ESTABLISHED", 15) is not None,
              "%s: the %s agent did not answer" % (what, expect))
        check(p.wait_event("CALL_ESTABLISHED", 5) is not None, "%s: not answered" % what)
        for name, ph in S["phones"].items():
            check(name == expect or not ph.seen("CALL_ESTABLISHED"),
                  "%s: %s answered too" % (what, name))
        time.sleep(0.5)
        p.hangup()
        check(agent.wait_event("CALL_CLOSED", 8) is not None, "%s: agent not hung up" % what)
        check(p.wait_event("CALL_CLOSED", 8) is not None, "%s: call did not end" % what)
    time.sleep(0.3)


def test_configure_the_examples(d):
    setup(d)
    biz = {"periods": [{"days": WEEKDAYS, "from": "10:00", "to": "19:00"}]}
    off = {"periods": [{"days": WEEKDAYS, "from": "00:00", "to": "10:00"},
                       {"days": WEEKDAYS, "from": "19:00", "to": "00:00"},
                       {"days": WEEKEND, "from": "00:00", "to": "00:00"}]}
    rule(1, target=group("an"))
    rule(2, schedule=biz, target=group("ks"))
    rule(2, target=voicemail("ks"))
    a3 = rule(3, schedule=biz, target=group("ks"))
    b3 = rule(3, target=voicemail("ks"), priority=1)
    check(S["a"].ok("GET", DOM + "/routing-rules/%d" % a3["id"])["unreachable_by"] == b3["id"],
          "example 3: A is shown as never firing")
    rule(4, prefixes=["495", "499"], target=group("msk"))
    rule(4, prefixes=["812"], target=group("spb"))
    rule(5, prefixes=["495", "499"], schedule=biz, target=group("msk"))
    rule(5, prefixes=["495", "499"], schedule=off, target=voicemail("msk"))
    rule(5, prefixes=["812"], schedule=biz, target=group("spb"))
    rule(5, prefixes=["812"], schedule=off, target=voicemail("spb"))


def test_saturday_noon(d):
    # the clock reads Saturday 5 December, noon (setup)
    reaches(1, "73431112233", "an")
    reaches(2, "74951112233", ("voicemail", "ks"))
    reaches(5, "78121112233", ("voicemail", "spb"))


def test_monday_night(d):
    set_clock(d, datetime.datetime(2026, 11, 30, 21, 0), TZ)
    reaches(1, "74951112233", "an")
    reaches(5, "74991112233", ("voicemail", "msk"))


def test_monday_office_hours(d):
    set_clock(d, datetime.datetime(2026, 11, 30, 12, 0), TZ)
    reaches(2, "74951112233", "ks")
    reaches(3, "74951112233", ("voicemail", "ks"))
    reaches(4, "74951112233", "msk")
    reaches(4, "84991112233", "msk")
    reaches(4, "78121112233", "spb")
    reaches(4, "73431112233", "busy")
    reaches(5, "74951112233", "msk")
    reaches(5, "78121112233", "spb")
    reaches(5, "73431112233", "busy")


def test_cleanup(d):
    for p in list(S.get("phones", {}).values()) + list(S.get("callers", {}).values()):
        p.cleanup()


if __name__ == "__main__":
    routelib.run([test_configure_the_examples, test_saturday_noon, test_monday_night,
                  test_monday_office_hours, test_cleanup], demo=True)
