#!/usr/bin/python3
"""Outbound trunk choice (seed 004; seed 001 §9.6) with raw SIP providers.

Two trunks match the same numbers: "first" (priority 1, one outgoing line)
and "second" (priority 2). A call goes to the first; while it talks, the
next call finds the first at its line limit and goes to the second; once
the first call ends the first trunk is chosen again. A trunk with three
outgoing numbers presents one of them, chosen at random: over a dozen
calls the provider sees more than one, and only those. Each call's record
names the trunk it left through.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sipraw  # noqa: E402
from cwtest import DEMO, DEMO_DOMAIN, check, run_tests, wait_until  # noqa: E402
from sipua import demo_phone  # noqa: E402

DOM = "/api/v1/domains/%s" % DEMO_DOMAIN
CLIS = ["74950000001", "74950000002", "74950000003"]


def trunk(sysadmin, name, prov, **kw):
    body = {"name": name, "host": "127.0.0.1", "port": prov.local[1], "register": False,
            "dial_pattern": r"sip:(\d+)@.*"}
    body.update(kw)
    r = sysadmin.post(DOM + "/trunks", body)
    check(r.status == 201, "trunk %s: %s" % (name, r))
    return r.json["id"]


def answer(prov, inv, tag):
    prov.reply(inv, 200, to_tag=tag, body=sipraw.sdp(prov.local[1] + 2))
    check(prov.wait_request("ACK", 5) is not None, "no ACK for the provider's 200")


def from_user(inv):
    m = re.search(r"<sip:([^@>]+)@", inv.get("from") or "")
    return m.group(1) if m else None


def test_priority_and_line_limit(d):
    sysadmin = d.login("sysadmin", DEMO["sysadmin"])
    p1, p2 = sipraw.Client(d.sip_port), sipraw.Client(d.sip_port)
    t1 = trunk(sysadmin, "first", p1, priority=1, max_out=1)
    t2 = trunk(sysadmin, "second", p2, priority=2)
    a = demo_phone(d, "a", "op101", 440)
    b = demo_phone(d, "b", "op102", 1000)
    try:
        a.dial("sip:89161110001@%s" % DEMO_DOMAIN)
        inv1 = p1.wait_request("INVITE", 10)
        check(inv1 is not None and inv1.uri.startswith("sip:89161110001@"),
              "the first call did not go to the priority 1 trunk")
        answer(p1, inv1, "p1")
        check(a.wait_event("CALL_ESTABLISHED", 5), "A's outside call is not up")
        st = sysadmin.get(DOM + "/trunks/%d/status" % t1).json
        check(st.get("calls_out") == 1, "the first trunk's status counts its call: %r" % st)

        b.dial("sip:89161110002@%s" % DEMO_DOMAIN)
        inv2 = p2.wait_request("INVITE", 10)
        check(inv2 is not None and inv2.uri.startswith("sip:89161110002@"),
              "with the first trunk's only line busy the call did not take the second")
        check(p1.wait_request("INVITE", 1) is None, "the full trunk got a second INVITE")
        answer(p2, inv2, "p2")
        check(b.wait_event("CALL_ESTABLISHED", 5), "B's outside call is not up")
        time.sleep(0.5)
        a.hangup()
        check(p1.wait_request("BYE", 5) is not None, "the first provider got no BYE")
        b.hangup()
        check(p2.wait_request("BYE", 5) is not None, "the second provider got no BYE")
        time.sleep(0.5)

        a.dial("sip:89161110003@%s" % DEMO_DOMAIN)
        inv3 = p1.wait_request("INVITE", 10)
        check(inv3 is not None, "with its line free again the first trunk was not chosen")
        p1.reply(inv3, 486, to_tag="p3")
        check(a.wait_event("CALL_CLOSED", 5), "the busy provider did not end A's call")
        rows = wait_until(lambda: (lambda r: r if len(r) == 3 else None)(d.sql(
            "SELECT dialed, trunk FROM cdrs WHERE dialed LIKE '8916111000%' ORDER BY dialed")),
            10, 0.2, "three call records")
        check(rows == [["89161110001", str(t1)], ["89161110002", str(t2)],
                       ["89161110003", str(t1)]], "the records name the trunks: %r" % rows)
    finally:
        a.stop()
        b.stop()
        p1.close()
        p2.close()


def test_random_outgoing_number(d):
    sysadmin = d.login("sysadmin", DEMO["sysadmin"])
    for t in sysadmin.get(DOM + "/trunks").json["items"]:
        sysadmin.delete(DOM + "/trunks/%d" % t["id"])
    prov = sipraw.Client(d.sip_port)
    trunk(sysadmin, "numbers", prov, caller_ids=CLIS)
    a = demo_phone(d, "a2", "op101", 440)
    seen = []
    try:
        for i in range(12):
            a.dial("sip:8916222%04d@%s" % (i, DEMO_DOMAIN))
            inv = prov.wait_request("INVITE", 10)
            check(inv is not None, "call %d did not reach the provider" % i)
            seen.append(from_user(inv))
            prov.reply(inv, 486, to_tag="n%d" % i)
            check(a.wait_event("CALL_CLOSED", 5), "call %d did not end" % i)
            time.sleep(0.2)
    finally:
        a.stop()
        prov.close()
    check(set(seen) <= set(CLIS), "a number not in the trunk's list was shown: %r" % seen)
    check(len(set(seen)) >= 2, "always the same outgoing number: %r" % seen)


if __name__ == "__main__":
    run_tests([test_priority_and_line_limit, test_random_outgoing_number], demo=True,
              sets={"sip.keepalive": "0"})
