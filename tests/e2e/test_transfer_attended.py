#!/usr/bin/python3
"""Attended transfer with Replaces, with real phones.

A (baresip, 440 Hz) calls B (Net::SIP, 1000 Hz). B holds A, calls C
(baresip, 1700 Hz) and talks to C, then sends REFER in its dialog with A
with Refer-To: C?Replaces=<B's dialog with C>. The platform connects A
with C: they hear each other; B's REFER is answered 202 and NOTIFY 200,
and both of B's dialogs end with a BYE from the platform. The call history
records the transfer and its parties.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cwtest import DEMO, DEMO_DOMAIN, check, run_tests, wait_until  # noqa: E402
from netsip import NetSipPhone  # noqa: E402
from sipua import demo_phone  # noqa: E402

A_HZ, B_HZ, C_HZ = 440, 1000, 1700


def live_calls(admin):
    return admin.get("/api/v1/domains/%s/calls" % DEMO_DOMAIN).json["items"]


def test_attended_transfer_with_replaces(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    a = demo_phone(d, "a", "admin", A_HZ)
    c = demo_phone(d, "c", "op102", C_HZ, auto=True)
    b = NetSipPhone("b", "op101", DEMO["op101"], d.sip_port, d.dir, send_hz=B_HZ).start()
    try:
        check(b.register(), "B (Net::SIP) did not register")
        a.dial("sip:101@%s" % DEMO_DOMAIN)
        check(b.expect("established", "in1", timeout=10), "B did not get A's call")
        check(a.wait_event("CALL_ESTABLISHED", 5), "A's call is not established")
        time.sleep(1.5)
        b.hold("in1")
        check(b.expect("held", "in1", "200"), "B could not hold A")
        b.call("out1", "sip:102@%s" % DEMO_DOMAIN)
        check(b.expect("answered", "out1", timeout=10), "C did not answer B")
        time.sleep(1.5)
        check(len(live_calls(admin)) == 2, "two calls before the transfer")
        b.refer("in1", "sip:102@%s" % DEMO_DOMAIN, replaces="out1")
        check(b.expect("refer", "in1", "202"), "REFER was not accepted")
        check(b.expect("notify", "in1", "200"), "no NOTIFY with 200 for the REFER")
        check(b.expect("closed", "in1", timeout=5), "B's dialog with A did not end")
        check(b.expect("closed", "out1", timeout=5), "B's dialog with C did not end")
        calls = wait_until(lambda: (lambda x: x if len(x) == 1 else None)(live_calls(admin)), 5,
                           0.2, "one live call")
        check(calls[0]["from"] == "100" and calls[0]["b_number"] == "102",
              "the live call is not A-C: %r" % calls[0])
        uuid = calls[0]["uuid"]
        time.sleep(3)
        a.hangup()
        check(c.wait_event("CALL_CLOSED", 5), "C did not get BYE when A hung up")
    finally:
        for p in (a, c, b):
            p.stop()
    check(a.hears(C_HZ, -2.5, -0.3), "A does not hear C after the transfer")
    check(c.hears(A_HZ, -2.5, -0.3), "C does not hear A after the transfer")
    check(b.hears("in1", A_HZ, 0.2, 1.2), "B did not hear A before holding")
    check(b.hears("out1", C_HZ, 0.2, 1.2), "B did not hear C while consulting")

    def cdr():
        r = admin.get("/api/v1/domains/%s/cdrs/%s" % (DEMO_DOMAIN, uuid))
        return r.json if r.status == 200 else None
    row = wait_until(cdr, 5, 0.2, "the call record")
    texts = [e["text"] for e in row["events"] if e["what"] == "transferred"]
    check(texts and "attended" in texts[0], "no attended transfer in the protocol: %r"
          % row["events"])
    check(row["a_number"] == "100" and row["b_number"] == "102" and row["released_by"] == "A",
          "call record parties: %r" % row)


if __name__ == "__main__":
    run_tests([test_attended_transfer_with_replaces], demo=True)
