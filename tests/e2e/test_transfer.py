"""Blind transfer from a phone (REFER), and transfer through the API.

A (440 Hz) calls B (1000 Hz); B transfers A to C (1700 Hz) with REFER:
C rings and answers, A and C hear each other, B's leg ends and the call
history records the transfer. Then the API transfers a live call to
another extension the same way.
"""
import os
import time

import audio
from cwtest import TestFailure, run_tests, wait_until
from sipua import Phone

A_HZ, B_HZ, C_HZ = 440, 1000, 1700


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def phone(d, name, login, pw, hz, auto=False):
    mic = audio.write_tone_wav(os.path.join(d.dir, name + ".wav"), hz, 90, amplitude=9000)
    p = Phone(name, login, pw, d.sip_port, auto_answer=auto, mic_wav=mic, seconds=120)
    p.start()
    check(p.wait_registered(15), "%s did not register" % name)
    return p


def live_call(admin):
    items = admin.get("/api/v1/domains/demo.local/calls").json["items"]
    return items[0] if items else None


def heard(p, index=-1):
    rate, s = audio.read_wav(p.received_wavs()[index])[:2]
    return rate, s


def test_blind_transfer_by_refer(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    a = phone(d, "a", "admin", "Demo-admin-1", A_HZ)
    b = phone(d, "b", "op101", "Demo-op101-1", B_HZ, auto=True)
    c = phone(d, "c", "op102", "Demo-op102-1", C_HZ, auto=True)
    try:
        a.dial("sip:101@demo.local")
        check(a.wait_event("CALL_ESTABLISHED", 10), "B did not answer")
        time.sleep(2)
        b.transfer("sip:102@demo.local")
        check(c.wait_event("CALL_ESTABLISHED", 10), "C did not answer the transferred call")
        check(b.wait_event("CALL_CLOSED", 10), "B's leg did not end after the transfer")
        t_xfer = time.time()
        time.sleep(3)
        call = live_call(admin)
        check(call and call["b_number"] == "102", "the live call is not A-C: %r" % call)
        uuid = call["uuid"]
        a.hangup()
        check(c.wait_event("CALL_CLOSED", 10), "C did not get BYE")
    finally:
        for p in (a, b, c):
            p.stop()
    rate, s = heard(a)
    tail = audio.segment(s, rate, len(s) / rate - 2.5, len(s) / rate - 0.3)
    check(audio.tone_share(tail, rate, C_HZ) > 0.5, "A does not hear C after the transfer")
    rate, s = heard(c)
    mid = audio.segment(s, rate, 0.5, len(s) / rate - 0.3)
    check(audio.tone_share(mid, rate, A_HZ) > 0.5, "C does not hear A")
    rate, s = heard(b)
    check(audio.tone_share(audio.segment(s, rate, 0.3, 1.8), rate, A_HZ) > 0.5,
          "B did not hear A before transferring")

    def cdr():
        rows = admin.get("/api/v1/domains/demo.local/cdrs/" + uuid)
        return rows.json if rows.status == 200 else None
    row = wait_until(cdr, 5, 0.2, "the CDR")
    whats = [e["what"] for e in row["events"]]
    check("transferred" in whats, "no transfer in the protocol: %r" % whats)
    check(row["b_number"] == "102" and row["a_number"] == "100", "parties: %r" % row)


def test_transfer_through_the_api(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    a = phone(d, "a2", "admin", "Demo-admin-1", A_HZ)
    b = phone(d, "b2", "op101", "Demo-op101-1", B_HZ, auto=True)
    c = phone(d, "c2", "op103", "Demo-op103-1", C_HZ, auto=True)
    t_unhold = 0
    try:
        a.dial("sip:101@demo.local")
        check(a.wait_event("CALL_ESTABLISHED", 10), "B did not answer")
        call = wait_until(lambda: live_call(admin), 5, 0.2, "the call")
        # hold through the API: music for the caller instead of B, then B again
        r = admin.post("/api/v1/domains/demo.local/calls/%s/hold" % call["uuid"], {"on": True})
        check(r.status == 200, "hold: %r" % r)
        time.sleep(3)
        r = admin.post("/api/v1/domains/demo.local/calls/%s/hold" % call["uuid"], {"on": False})
        check(r.status == 200, "unhold: %r" % r)
        t_unhold = time.time()
        time.sleep(2.5)
        r = admin.post("/api/v1/domains/demo.local/calls/%s/transfer" % call["uuid"],
                       {"to": "103"})
        check(r.status == 202, "transfer: %r" % r)
        check(c.wait_event("CALL_ESTABLISHED", 10), "103 did not answer")
        check(b.wait_event("CALL_CLOSED", 10), "101 was not released")
        bad = admin.post("/api/v1/domains/demo.local/calls/%s/transfer" % call["uuid"],
                         {"to": "999"})
        check(bad.status in (404, 409), "transfer to nobody: %r" % bad)
        time.sleep(2.5)
        a.hangup()
        c.wait_event("CALL_CLOSED", 10)
    finally:
        for p in (a, b, c):
            p.stop()
    rate, s = heard(a)
    tail = audio.segment(s, rate, len(s) / rate - 2.0, len(s) / rate - 0.3)
    check(audio.tone_share(tail, rate, C_HZ) > 0.5, "A does not hear 103 after the API transfer")
    # before the transfer: ~3 s of music on hold, then B again (positions from the end)
    end = len(s) / rate
    since_unhold = time.time() - t_unhold
    held = audio.segment(s, rate, end - since_unhold - 2.7, end - since_unhold - 0.3)
    back = audio.segment(s, rate, end - since_unhold + 0.5, end - since_unhold + 2.2)
    check(audio.tone_share(held, rate, B_HZ) < 0.2 and audio.active_seconds(held, rate, -45) > 1.5,
          "A did not hear music instead of B while held")
    check(audio.tone_share(back, rate, B_HZ) > 0.5, "A does not hear B after unhold")


if __name__ == "__main__":
    run_tests([test_blind_transfer_by_refer, test_transfer_through_the_api], demo=True)
