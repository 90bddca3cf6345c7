#!/usr/bin/python3
"""Calls between real phones through the whole platform (SIP edge, call
layer, media): A calls B by extension and both hear each other; A gives up
before B answers (CANCEL); B is busy; B does not answer; A puts B on hold
and takes them off; a BLF watcher sees early, confirmed, terminated; a call
to an outside number leaves through a trunk with the stripped digits and
the provider's digest. What each phone saw and heard is checked, and the
call history says how each call ended."""

import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import audio  # noqa: E402
import sipraw  # noqa: E402
from cwtest import DEMO, DEMO_DOMAIN, TestFailure, run_tests, wait_until  # noqa: E402
from sipua import Phone  # noqa: E402

A_HZ, B_HZ = 440, 1000


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def phone(d, name, login, hz, auto=False):
    wav = audio.write_tone_wav(os.path.join(d.dir, name + ".wav"), hz, 60, amplitude=9000)
    p = Phone(name, login, DEMO[login], d.sip_port, auto_answer=auto, mic_wav=wav, seconds=90)
    p.start()
    check(p.wait_registered(15), "%s did not register" % name)
    return p


def last_cdr(d, admin, since_ms, n=1):
    """The n newest call records started after since_ms (waits for the writer)."""
    def get():
        items = admin.get("/api/v1/domains/%s/cdrs" % DEMO_DOMAIN).json["items"]
        items = [c for c in items if c["start_ms"] >= since_ms]
        return items if len(items) >= n else None
    return wait_until(get, 10, 0.2, "call record")


def test_a_calls_b(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    a, b = phone(d, "a", "op101", A_HZ), phone(d, "b", "op102", B_HZ)
    try:
        t0 = int(time.time() * 1000)
        a.dial("sip:102@%s" % DEMO_DOMAIN)
        check(b.wait_event("CALL_INCOMING", 10), "B does not ring")
        check(a.wait_event("CALL_RINGING", 5), "A does not hear that B rings")
        b.accept()
        check(a.wait_event("CALL_ESTABLISHED", 5) and b.wait_event("CALL_ESTABLISHED", 5),
              "the call is not established on both phones")
        time.sleep(4)
        a.hangup()
        check(b.wait_event("CALL_CLOSED", 5), "B does not get BYE")
        cdr = last_cdr(d, admin, t0)[0]
        check(cdr["a_number"] == "101" and cdr["b_number"] == "102" and cdr["cause"] == "normal"
              and cdr["released_by"] == "A", "call record: %s" % cdr)
    finally:
        a.stop()
        b.stop()
    ra, sa, _ = audio.read_wav(a.received_wavs()[-1])
    rb, sb, _ = audio.read_wav(b.received_wavs()[-1])
    check(audio.has_tone(sa, ra, B_HZ, min_seconds=2.0), "A did not hear B (%d Hz)" % B_HZ)
    check(audio.has_tone(sb, rb, A_HZ, min_seconds=2.0), "B did not hear A (%d Hz)" % A_HZ)


def test_cancel_busy_no_answer(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    a, b = phone(d, "a2", "op101", A_HZ), phone(d, "b2", "op102", B_HZ)
    try:
        # A gives up while B rings
        t0 = int(time.time() * 1000)
        a.dial("sip:102@%s" % DEMO_DOMAIN)
        check(b.wait_event("CALL_INCOMING", 10), "B does not ring")
        a.hangup()
        e = b.wait_event("CALL_CLOSED", 5)
        check(e is not None, "B's ringing stops when A hangs up")
        a.wait_event("CALL_CLOSED", 5)  # A's own record of its hangup
        check(last_cdr(d, admin, t0)[0]["cause"] == "cancelled", "recorded as cancelled")
        # B refuses: busy
        t0 = int(time.time() * 1000)
        a.dial("sip:102@%s" % DEMO_DOMAIN)
        check(b.wait_event("CALL_INCOMING", 10), "B does not ring")
        b.hangup()
        e = a.wait_event("CALL_CLOSED", 8)
        check(e is not None and e.get("param", "").startswith("486"),
              "A is told busy: %s" % (e and e.get("param")))
        check(last_cdr(d, admin, t0)[0]["cause"] == "busy", "recorded as busy")
        # B does not answer: the ring time runs out
        t0 = int(time.time() * 1000)
        a.dial("sip:102@%s" % DEMO_DOMAIN)
        check(b.wait_event("CALL_INCOMING", 10), "B does not ring")
        e = a.wait_event("CALL_CLOSED", 15)
        check(e is not None and e.get("param", "")[:3] in ("480", "408"),
              "A is told no answer: %s" % (e and e.get("param")))
        check(b.wait_event("CALL_CLOSED", 5) is not None, "B stops ringing")
        check(last_cdr(d, admin, t0)[0]["cause"] == "no_answer", "recorded as no_answer")
    finally:
        a.stop()
        b.stop()


def test_hold_and_blf(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    a, b = phone(d, "a3", "op101", A_HZ), phone(d, "b3", "op102", B_HZ, auto=True)
    w = sipraw.Client(d.sip_port)
    try:
        # op103 watches 102
        uri = "sip:102@%s" % DEMO_DOMAIN
        hdrs = ["Event: dialog", "Accept: application/dialog-info+xml", "Expires: 300"]
        w.request("SUBSCRIBE", uri, "sip:op103@%s" % DEMO_DOMAIN, uri, hdrs)
        r = w.final()
        chal = sipraw.parse_challenge(r.all("www-authenticate")[-1])
        auth = sipraw.digest_header(chal, "SUBSCRIBE", uri, "op103", DEMO["op103"])
        w.request("SUBSCRIBE", uri, "sip:op103@%s" % DEMO_DOMAIN, uri,
                  hdrs + ["Authorization: " + auth])
        r = w.final()
        check(r is not None and r.status == 202, "BLF subscription accepted: %s" % r)
        check(w.wait_request("NOTIFY") is not None, "first NOTIFY")
        t0 = int(time.time() * 1000)
        a.dial(uri)
        check(a.wait_event("CALL_ESTABLISHED", 10), "B's phone answers by itself")
        states = []
        deadline = time.time() + 5
        while time.time() < deadline and "confirmed" not in states:
            n = w.wait_request("NOTIFY", timeout=deadline - time.time())
            if n and "<state>" in n.body:
                states.append(n.body.split("<state>")[1].split("<")[0])
        check(states[:1] == ["early"] and "confirmed" in states,
              "the watcher sees ringing then talking: %s" % states)
        time.sleep(1.5)
        a.hold()
        uuid = wait_until(lambda: [c["uuid"] for c in admin.get(
            "/api/v1/domains/%s/calls" % DEMO_DOMAIN).json["items"]], 5, 0.2, "the live call")[0]
        time.sleep(2)
        a.resume()
        time.sleep(2)
        a.hangup()
        check(b.wait_event("CALL_CLOSED", 5), "B gets BYE")
        n = w.wait_request("NOTIFY", pred=lambda m: "terminated" in m.body, timeout=5)
        check(n is not None, "the watcher sees the call end")
        cdr = last_cdr(d, admin, t0)[0]
        check(cdr["uuid"] == uuid and "hold_a" in cdr["states"],
              "the call record shows the hold: %s" % cdr["states"])
    finally:
        a.stop()
        b.stop()
        w.close()


def test_outside_call_through_trunk(d):
    sysadmin = d.login("sysadmin", DEMO["sysadmin"])
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    prov = sipraw.Client(d.sip_port)
    realm = "carrier.example"
    r = sysadmin.post("/api/v1/domains/%s/trunks" % DEMO_DOMAIN, {
        "name": "carrier", "host": "127.0.0.1", "port": prov.local[1], "login": "acct",
        "password": "pw", "realm": realm, "register": False, "caller_ids": ["74950001111"]})
    check(r.status == 201, "trunk created: %s" % r)
    a = phone(d, "a4", "op101", A_HZ)
    try:
        t0 = int(time.time() * 1000)
        a.dial("sip:8123@%s" % DEMO_DOMAIN)
        inv = prov.wait_request("INVITE", timeout=10)
        check(inv is not None and inv.uri.startswith("sip:123@127.0.0.1:%d" % prov.local[1]),
              "the provider gets the stripped number: %s" % (inv and inv.uri))
        prov.reply(inv, 407, to_tag="p", headers=[
            'Proxy-Authenticate: Digest realm="%s", nonce="n1"' % realm])
        inv2 = prov.wait_request("INVITE", timeout=5)
        cred = sipraw.parse_challenge(inv2.get("proxy-authorization") or "") if inv2 else {}
        ha1 = hashlib.md5(("acct:%s:pw" % realm).encode()).hexdigest()
        ha2 = hashlib.md5(("INVITE:%s" % cred.get("uri", "")).encode()).hexdigest()
        good = hashlib.md5(("%s:n1:%s" % (ha1, ha2)).encode()).hexdigest()
        check(cred.get("response") == good, "the trunk's digest is right")
        prov.reply(inv2, 200, to_tag="p2", body=sipraw.sdp(prov.local[1] + 2))
        check(a.wait_event("CALL_ESTABLISHED", 8), "the outside call is answered")
        time.sleep(1)
        sipraw.Dialog.from_uas(prov, inv2, "p2").request("BYE")
        check(a.wait_event("CALL_CLOSED", 5), "the far end hangs up")
        cdr = last_cdr(d, admin, t0)[0]
        check(cdr["direction"] == "outgoing" and cdr["trunk"], "recorded as outgoing: %s" % cdr)
    finally:
        a.stop()
        prov.close()


if __name__ == "__main__":
    run_tests([test_a_calls_b, test_cancel_busy_no_answer, test_hold_and_blf,
               test_outside_call_through_trunk], demo=True,
              sets={"sip.keepalive": "0", "sip.ring_timeout": "6"})
