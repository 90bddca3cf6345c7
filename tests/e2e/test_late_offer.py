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
import audio  # noqa: E402
from cwtest import DEMO, DEMO_DOMAIN, TestFailure, run_tests, wait_until  # noqa: E402
from netsip import NetSipPhone  # noqa: E402
from sipua import Phone  # noqa: E402

A_HZ, B_HZ = 1000, 1700


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def test_invite_without_sdp(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    mic = audio.write_tone_wav(os.path.join(d.dir, "b.wav"), B_HZ, 60, amplitude=9000)
    b = Phone("b", "op102", DEMO["op102"], d.sip_port, auto_answer=True, mic_wav=mic, seconds=60)
    b.start()
    a = NetSipPhone("a", "op101", DEMO["op101"], d.sip_port, d.dir, send_hz=A_HZ).start()
    try:
        check(b.wait_registered(15), "B did not register")
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
    rate, s = a.heard("late1")
    check(audio.has_tone(audio.segment(s, rate, 0.5, 2.5), rate, B_HZ, min_seconds=1.2),
          "A does not hear B (%d samples)" % len(s))
    rate, s, _ = audio.read_wav(b.received_wavs()[-1])
    check(audio.has_tone(audio.segment(s, rate, 0.5, 2.5), rate, A_HZ, min_seconds=1.2),
          "B does not hear A")

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
