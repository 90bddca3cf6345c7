#!/usr/bin/python3
"""Late offer through the call layer, with real phones.

A Net::SIP phone (1000 Hz) sends INVITE without SDP to a user (baresip,
1700 Hz, answers by itself): the platform's 200 carries its offer, the
ACK carries the phone's answer, and both hear each other. The call's
protocol records the late offer.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cwtest import DEMO, DEMO_DOMAIN, check, run_tests, wait_until  # noqa: E402
from netsip import NetSipPhone  # noqa: E402
from sipua import demo_phone  # noqa: E402

A_HZ, B_HZ = 1000, 1700


def test_invite_without_sdp(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    b = demo_phone(d, "b", "op102", B_HZ, auto=True)
    a = NetSipPhone("a", "op101", DEMO["op101"], d.sip_port, d.dir, send_hz=A_HZ).start()
    try:
        check(a.register(), "A (Net::SIP) did not register")
        t0 = int(time.time() * 1000)
        a.call("late1", "sip:102@%s" % DEMO_DOMAIN, late=True)
        check(a.expect("answered", "late1", timeout=10), "the late-offer call was not answered")
        check(b.wait_event("CALL_ESTABLISHED", 5), "B's call is not established")
        time.sleep(3)
        a.bye("late1")
        check(b.wait_event("CALL_CLOSED", 5), "B did not get BYE")
    finally:
        b.stop()
        a.stop()
    check(a.hears("late1", B_HZ, 0.5, 2.5), "A does not hear B")
    check(b.hears(A_HZ, 0.5, 2.5), "B does not hear A")

    def cdr():
        items = admin.get("/api/v1/domains/%s/cdrs" % DEMO_DOMAIN).json["items"]
        items = [r for r in items if r["start_ms"] >= t0 and r["a_number"] == "101"]
        return items[0] if items else None
    row = wait_until(cdr, 5, 0.2, "the call record")
    full = admin.get("/api/v1/domains/%s/cdrs/%s" % (DEMO_DOMAIN, row["uuid"])).json
    incoming = [e["text"] for e in full["events"] if e["what"] == "incoming"]
    check(incoming and "late offer" in incoming[0], "protocol: %r" % full["events"])
    check(full["b_number"] == "102" and full["talk_s"] >= 2, "call record: %r" % full)


if __name__ == "__main__":
    run_tests([test_invite_without_sdp], demo=True)
