#!/usr/bin/python3
"""Outbound restrictions and inter-domain calls with real phones.

Restrictions (seed 001 §4.2) are enforced before anything is dialled: with
a trunk to a raw SIP provider, op101 restricted to no_international dials
an international number and is refused (403) while the provider gets no
INVITE; a long-distance number still goes out through the same trunk;
internal_only stops even a city number. Inter-domain (seed 001 §4.5.4): a
phone of branch.local, another domain of the demo pool (routing number
4455), dials 4455 + 102 and talks to op102 of demo.local, and op101 dials
branch.local's routing number + 201 the other way; a domain of another
pool is not reachable by its routing number.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import audio  # noqa: E402
import sipraw  # noqa: E402
from cwtest import DEMO, DEMO_DOMAIN, check, run_tests  # noqa: E402
from sipua import Phone, demo_phone  # noqa: E402

A_HZ, B_HZ, X_HZ = 440, 1000, 1700
DOM = "/api/v1/domains/%s" % DEMO_DOMAIN


def user_id(admin, login):
    items = admin.get(DOM + "/users", query={"q": login}).json["items"]
    return [u["id"] for u in items if u["login"] == login][0]


def set_restriction(admin, login, level):
    r = admin.patch(DOM + "/users/%d" % user_id(admin, login), {"restriction": level})
    check(r.status == 200, "restriction %s: %s" % (level, r))


def refused(a, prov, number, what):
    a.dial("sip:%s@%s" % (number, DEMO_DOMAIN))
    e = a.wait_event("CALL_CLOSED", 10)
    got = e and e.get("param", "")
    check(got and got[:3] in ("403", "603"), "%s: A is told %r, not refused" % (what, got))
    check(prov.wait_request("INVITE", timeout=2) is None,
          "%s: an INVITE reached the provider" % what)


def test_restrictions_stop_calls_before_the_trunk(d):
    sysadmin = d.login("sysadmin", DEMO["sysadmin"])
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    prov = sipraw.Client(d.sip_port)
    r = sysadmin.post(DOM + "/trunks", {
        "name": "world", "host": "127.0.0.1", "port": prov.local[1], "register": False,
        "dial_pattern": r"sip:(\d+)@.*", "caller_ids": ["74950001111"]})
    check(r.status == 201, "trunk created: %s" % r)
    set_restriction(admin, "op101", "no_international")
    a = demo_phone(d, "a", "op101", A_HZ)
    try:
        refused(a, prov, "810441234567", "no_international, 810 44...")
        refused(a, prov, "00441234567", "no_international, 00 44...")
        # the same trunk takes a long-distance number: the restriction was the reason
        a.dial("sip:89161234567@%s" % DEMO_DOMAIN)
        inv = prov.wait_request("INVITE", timeout=10)
        check(inv is not None and inv.uri.startswith("sip:89161234567@"),
              "a long-distance call did not reach the provider: %s" % (inv and inv.uri))
        prov.reply(inv, 486, to_tag="p1")
        check(a.wait_event("CALL_CLOSED", 10), "the busy provider does not end A's call")
        set_restriction(admin, "op101", "internal_only")
        refused(a, prov, "1234567", "internal_only, a city number")
        refused(a, prov, "89161234567", "internal_only, long distance")
        set_restriction(admin, "op101", "none")
        a.dial("sip:810441234567@%s" % DEMO_DOMAIN)
        inv = prov.wait_request("INVITE", timeout=10)
        check(inv is not None and inv.uri.startswith("sip:810441234567@"),
              "without a restriction the international call does not go out")
        prov.reply(inv, 486, to_tag="p2")
        check(a.wait_event("CALL_CLOSED", 10), "A's international call did not end")
        rows = d.sql("SELECT COUNT(*) FROM cdrs WHERE a_number = '101' AND cause = 'rejected'")
        check(int(rows[0][0]) == 4, "four refused calls in the history: %r" % rows)
    finally:
        a.stop()
        prov.close()


def test_interdomain_by_routing_number(d):
    sysadmin = d.login("sysadmin", DEMO["sysadmin"])
    pool = sysadmin.get("/api/v1/pools").json["items"]
    demo_pool = [p for p in pool if p["name"] == "Demo pool"][0]
    r = sysadmin.post("/api/v1/domains", {"name": "branch.local", "pool_id": demo_pool["id"],
                                          "routing_number": "5566"})
    check(r.status == 201, "branch.local: %s" % r)
    other_pool = sysadmin.post("/api/v1/pools", {"name": "Elsewhere"}).json
    r = sysadmin.post("/api/v1/domains", {"name": "far.local", "pool_id": other_pool["id"],
                                          "routing_number": "7788"})
    check(r.status == 201, "far.local: %s" % r)
    d.add_user("br201", "201", "Br201-secret-1", domain="branch.local")
    d.add_user("far301", "301", "Far301-secret-1", domain="far.local")
    mic = audio.write_tone_wav(os.path.join(d.dir, "x.wav"), X_HZ, 60, amplitude=9000)
    x = Phone("x", "br201", "Br201-secret-1", d.sip_port, domain="branch.local", mic_wav=mic,
              seconds=60, auto_answer=True)
    far = Phone("far", "far301", "Far301-secret-1", d.sip_port, domain="far.local",
                auto_answer=True)
    a = demo_phone(d, "a2", "op101", A_HZ)
    b = demo_phone(d, "b2", "op102", B_HZ, auto=True)
    try:
        x.start()
        far.start()
        check(x.wait_registered(15) and far.wait_registered(15), "the other domains' phones")
        x.dial("sip:4455102@branch.local")
        check(b.wait_event("CALL_ESTABLISHED", 10), "op102 did not get branch.local's call")
        check(x.wait_event("CALL_ESTABLISHED", 5), "branch.local's phone is not connected")
        time.sleep(3)
        x.hangup()
        check(b.wait_event("CALL_CLOSED", 5), "op102 did not get BYE")
        a.dial("sip:5566201@%s" % DEMO_DOMAIN)
        check(x.wait_event("CALL_ESTABLISHED", 10), "br201 did not get op101's call")
        time.sleep(3)
        a.hangup()
        check(x.wait_event("CALL_CLOSED", 5), "br201 did not get BYE")
        a.dial("sip:7788301@%s" % DEMO_DOMAIN)
        e = a.wait_event("CALL_CLOSED", 10)
        check(e is not None, "a call to another pool's routing number was not refused")
        check(far.wait_event("CALL_INCOMING", 1) is None,
              "a domain of another pool was reached by its routing number")
    finally:
        for p in (x, far, a, b):
            p.stop()
    rate, s, _ = audio.read_wav(b.received_wavs()[-1])
    check(audio.has_tone(s, rate, X_HZ, min_seconds=1.5), "op102 did not hear branch.local")
    rate, s, _ = audio.read_wav(x.received_wavs()[0])
    check(audio.has_tone(s, rate, B_HZ, min_seconds=1.5), "branch.local did not hear op102")
    rate, s, _ = audio.read_wav(x.received_wavs()[-1])
    check(audio.has_tone(s, rate, A_HZ, min_seconds=1.5), "br201 did not hear op101")


if __name__ == "__main__":
    run_tests([test_restrictions_stop_calls_before_the_trunk, test_interdomain_by_routing_number],
              demo=True, sets={"sip.keepalive": "0"})
