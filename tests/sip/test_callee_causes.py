#!/usr/bin/python3
"""How a callee refuses reaches the caller and the call history.

B is a raw SIP client registered as op102; A (baresip, op101) calls 102
and B answers 180 then a final error. For each: the status A is told, the
cause of B's leg in the call record's protocol, the outcome the routing
script saw (its "forwarding 102: ..." line in the protocol) and the call's
cause:
  603 Decline              -> A 603, leg rejected,    script rejected,  call rejected
  404 Not Found            -> A 503, leg no_route,    script no_route,  call unavailable
  503 Service Unavailable  -> A 503, leg unavailable, script no_route,  call unavailable
  408 Request Timeout      -> A 480, leg no_answer,   script no_answer, call no_answer
  486 Busy Here            -> A 486, leg busy,        script busy,      call busy
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sipraw  # noqa: E402
from cwtest import DEMO, DEMO_DOMAIN, check, run_tests, wait_until  # noqa: E402
from sipua import demo_phone  # noqa: E402

CASES = [
    (603, "Decline", "603", "rejected", "rejected", "rejected"),
    (404, "Not Found", "503", "no_route", "no_route", "unavailable"),
    (503, "Service Unavailable", "503", "unavailable", "no_route", "unavailable"),
    (408, "Request Timeout", "480", "no_answer", "no_answer", "no_answer"),
    (486, "Busy Here", "486", "busy", "busy", "busy"),
]


def test_callee_failures_map_to_causes(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    b = sipraw.Client(d.sip_port)
    r = b.register("op102", DEMO_DOMAIN, DEMO["op102"], expires=300)
    check(r is not None and r.status == 200, "B registered: %s" % r)
    a = demo_phone(d, "a", "op101", 440, seconds=60)
    try:
        for status, reason, told, leg_cause, outcome, call_cause in CASES:
            t0 = int(time.time() * 1000)
            a.dial("sip:102@%s" % DEMO_DOMAIN)
            inv = b.wait_request("INVITE", 10)
            check(inv is not None, "%d: B got no INVITE" % status)
            b.reply(inv, 180, to_tag="b%d" % status)
            check(a.wait_event("CALL_RINGING", 5), "%d: A does not hear B ring" % status)
            b.reply(inv, status, reason, to_tag="b%d" % status)
            check(b.wait_request("ACK", 5) is not None, "%d: our final answer is not ACKed"
                  % status)
            e = a.wait_event("CALL_CLOSED", 10)
            got = e and e.get("param", "")
            check(got and got.startswith(told), "%d: A is told %r, expected %s" % (
                status, got, told))

            def record():
                items = admin.get("/api/v1/domains/%s/cdrs" % DEMO_DOMAIN).json["items"]
                items = [c for c in items if c["start_ms"] >= t0]
                return items[0] if items else None
            row = wait_until(record, 10, 0.2, "the call record")
            full = admin.get("/api/v1/domains/%s/cdrs/%s" % (DEMO_DOMAIN, row["uuid"])).json
            ended = [e["text"] for e in full["events"] if e["what"] == "b-ended"]
            check(ended == ["102 %s" % leg_cause], "%d: B's leg ended %r, expected %s" % (
                status, ended, leg_cause))
            saw = [e["text"] for e in full["events"] if e["what"] == "script" and
                   e["text"].startswith("forwarding 102: ") and "number(s)" not in e["text"]]
            check(saw == ["forwarding 102: " + outcome], "%d: the script saw %r, expected %s" % (
                status, saw, outcome))
            check(full["cause"] == call_cause, "%d: call cause %r, expected %s" % (
                status, full["cause"], call_cause))
            time.sleep(0.3)
    finally:
        a.stop()
        b.close()


if __name__ == "__main__":
    run_tests([test_callee_failures_map_to_causes], demo=True)
