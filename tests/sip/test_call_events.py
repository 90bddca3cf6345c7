#!/usr/bin/python3
"""Every state change of a real call reaches the event stream.

An admin watches GET /api/v1/events (types=call.) while A (baresip, op101)
calls B (op102): B rings and answers, B holds and resumes, B transfers A to
C (op103, answers by itself) with REFER, A hangs up. The stream carries,
for that one call and in that order, call.created, call.ringing (to 102),
call.answered, call.held and call.unheld (by 102), call.transferred (to 103
by 102) and call.ended with cause normal released by A; A hears C at the
end. A second call that B refuses ends with call.ended cause busy, and a
tenant admin of another domain sees none of it.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import audio  # noqa: E402
from cwtest import DEMO, DEMO_DOMAIN, EventStream, TestFailure, check, run_tests  # noqa: E402
from sipua import demo_phone  # noqa: E402

A_HZ, B_HZ, C_HZ = 440, 1000, 1700


class CallEvents:
    """The call.* events of the stream, gathered per call uuid."""

    def __init__(self, d, client):
        self.es = EventStream(d.http_port, cookies=client.cookies, types=["call."])
        check(self.es.status == 200, "event stream: %s" % self.es.status)
        self.seen = []

    def wait(self, etype, pred=lambda data: True, timeout=10):
        """The payload of the first etype event for which pred(payload) holds; None."""
        for t, data in self.seen:
            if t == etype and pred(data):
                return data
        end = time.monotonic() + timeout
        while True:
            try:
                ev = self.es.next(max(0.05, end - time.monotonic()))
            except TestFailure:
                return None
            item = (ev["event"], ev["data"].get("data") or {})
            self.seen.append(item)
            if item[0] == etype and pred(item[1]):
                return item[1]

    def of(self, uuid):
        return [(t, data) for t, data in self.seen if data.get("call") == uuid]


def test_call_events_of_a_real_call(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    sysadmin = d.login("sysadmin", DEMO["sysadmin"])
    dom = sysadmin.ok("POST", "/api/v1/domains", {"name": "other.local"}, status=201)
    sysadmin.ok("POST", "/api/v1/domains/%d/users" % dom["id"],
                {"login": "boss", "display_name": "Boss", "password": "Boss-pass-123",
                 "role": "domain_admin"}, status=201)
    other = d.login("boss", "Boss-pass-123", "other.local")
    ev = CallEvents(d, admin)
    other_ev = CallEvents(d, other)
    a = demo_phone(d, "a", "op101", A_HZ, seconds=90)
    b = demo_phone(d, "b", "op102", B_HZ, seconds=90)
    c = demo_phone(d, "c", "op103", C_HZ, auto=True, seconds=90)
    try:
        a.dial("sip:102@%s" % DEMO_DOMAIN)
        created = ev.wait("call.created", lambda x: x.get("from") == "101")
        check(created and created.get("to") == "102", "call.created: %r" % created)
        uuid = created["call"]
        mine = lambda x: x.get("call") == uuid  # noqa: E731
        check(b.wait_event("CALL_INCOMING", 10), "B does not ring")
        ringing = ev.wait("call.ringing", mine)
        check(ringing and ringing.get("to") == "102", "call.ringing: %r" % ringing)
        b.accept()
        check(a.wait_event("CALL_ESTABLISHED", 5), "A's call is not established")
        check(ev.wait("call.answered", mine) is not None, "no call.answered")
        time.sleep(1)
        b.hold()
        held = ev.wait("call.held", mine)
        check(held and held.get("by") == "102", "call.held: %r" % held)
        time.sleep(1)
        b.resume()
        unheld = ev.wait("call.unheld", mine)
        check(unheld and unheld.get("by") == "102", "call.unheld: %r" % unheld)
        time.sleep(1)
        b.transfer("sip:103@%s" % DEMO_DOMAIN)
        check(c.wait_event("CALL_ESTABLISHED", 10), "C did not answer the transferred call")
        moved = ev.wait("call.transferred", mine)
        check(moved and moved.get("to") == "103" and moved.get("by") == "102",
              "call.transferred: %r" % moved)
        time.sleep(3)
        a.hangup()
        ended = ev.wait("call.ended", mine)
        check(ended and ended.get("cause") == "normal" and ended.get("released_by") == "A",
              "call.ended: %r" % ended)
        order = [t for t, _ in ev.of(uuid)]
        firsts = [t for i, t in enumerate(order) if t not in order[:i]]
        want = ["call.created", "call.ringing", "call.answered", "call.held", "call.unheld",
                "call.transferred", "call.ended"]
        check([t for t in firsts if t in want] == want, "event order: %r" % order)
        check(order.count("call.ended") == 1 and order[-1] == "call.ended",
              "call.ended is the call's last event, once: %r" % order)

        # B refuses the next call: ended, cause busy
        a.dial("sip:102@%s" % DEMO_DOMAIN)
        created = ev.wait("call.created", lambda x: x.get("call") != uuid)
        check(created is not None, "no call.created for the second call")
        check(b.wait_event("CALL_INCOMING", 10), "B does not ring the second time")
        b.hangup()
        ended = ev.wait("call.ended", lambda x: x.get("call") == created["call"])
        check(ended and ended.get("cause") == "busy", "refused call.ended: %r" % ended)
        check(other_ev.wait("call.created", timeout=0.5) is None and not other_ev.seen,
              "another tenant's admin saw demo.local's calls: %r" % other_ev.seen)
    finally:
        for p in (a, b, c):
            p.stop()
        ev.es.close()
        other_ev.es.close()
    # A's talk is the longest of its two recordings (the refused call has none or a short one)
    rate, s, _ = max((audio.read_wav(w) for w in a.received_wavs()), key=lambda r: len(r[1]))
    tail = audio.segment(s, rate, len(s) / rate - 2.5, len(s) / rate - 0.3)
    check(audio.tone_share(tail, rate, C_HZ) > 0.5, "A does not hear C after the transfer")


if __name__ == "__main__":
    run_tests([test_call_events_of_a_real_call], demo=True)
