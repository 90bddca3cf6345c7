#!/usr/bin/python3
"""In-call DTMF codes of the called party, with real phones (seed 002 ring
lists, seed 001 §13.1).

100 (440 Hz) calls 101 (1000 Hz), who dials ##103#: 100 waits with music,
103 (2300 Hz) answers and talks to 101; 101 hangs up and 100 talks to 103.
In another call 101 dials ##102#, talks to 102 (1700 Hz), switches back to
100 with * and to 102 again, then # brings all three into a conference;
when 101 leaves, 100 and 102 talk on. A number nobody answers brings 101
back to 100. When 102 answers a fax machine and dials 0, the machine's
document lands in 102's fax box and 102 is let go.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import audio  # noqa: E402
import faxtools  # noqa: E402
from cwtest import DEMO, DEMO_DOMAIN, check, run_tests, wait_until  # noqa: E402
from sipua import demo_phone  # noqa: E402

HZ = {"admin": 440, "op101": 1000, "op102": 1700, "op103": 2300}


def phone(d, name, login, auto=False):
    return demo_phone(d, name, login, HZ[login], auto)


class Clock:
    """Seconds since a phone's call began: where to look in what it recorded."""

    def __init__(self):
        self.t0 = time.time()
        self.marks = {}

    def mark(self, name):
        self.marks[name] = time.time() - self.t0


def hears(p, start, end, login, share=0.5):
    """The phone heard login's tone in [start, end] s of its last call."""
    return p.hears(HZ[login], start, end, share=share)


def cdr(admin, uuid):
    def get():
        r = admin.get("/api/v1/domains/%s/cdrs/%s" % (DEMO_DOMAIN, uuid))
        return r.json if r.status == 200 else None
    return wait_until(get, 5, 0.2, "the call record")


def start_call(d, admin, a, b):
    a.dial("sip:101@%s" % DEMO_DOMAIN)
    check(a.wait_event("CALL_ESTABLISHED", 10) and b.wait_event("CALL_ESTABLISHED", 5),
          "101 did not answer")
    clock = Clock()
    items = wait_until(lambda: admin.get("/api/v1/domains/%s/calls" % DEMO_DOMAIN).json["items"],
                       5, 0.2, "the live call")
    return clock, items[0]["uuid"]


def test_transfer_by_code(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    a, b, c = phone(d, "a", "admin"), phone(d, "b", "op101", auto=True), \
        phone(d, "c", "op103", auto=True)
    try:
        clock, uuid = start_call(d, admin, a, b)
        time.sleep(1.5)
        b.dtmf("##103#")
        check(c.wait_event("CALL_ESTABLISHED", 10), "103 did not get the transfer")
        clock.mark("consult")
        time.sleep(2.5)
        clock.mark("consult_end")
        b.hangup()
        time.sleep(2.5)
        clock.mark("end")
        a.hangup()
        check(c.wait_event("CALL_CLOSED", 5), "103 did not get BYE")
    finally:
        for p in (a, b, c):
            p.stop()
    m = clock.marks
    check(hears(b, m["consult"] + 0.5, m["consult_end"] - 0.2, "op103"),
          "101 did not talk to 103 first")
    rate, s = a.heard(m["consult"] + 0.5, m["consult_end"] - 0.2)
    check(audio.active_seconds(s, rate) > 1.0 and audio.tone_share(s, rate, HZ["op101"]) < 0.3
          and audio.tone_share(s, rate, HZ["op103"]) < 0.3,
          "100 did not wait with music while 101 consulted")
    check(hears(a, m["end"] - 1.8, m["end"] - 0.3, "op103"),
          "100 does not talk to 103 after 101 hung up")
    check(c.hears(HZ["admin"], -1.8, -0.3), "103 does not hear 100")
    row = cdr(admin, uuid)
    check(row["a_number"] == "100" and row["b_number"] == "103", "call record: %r" % row)
    check(any(e["what"] == "transferred" for e in row["events"]), "protocol: %r" % row["events"])


def test_toggle_and_conference(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    a, b, c = phone(d, "a2", "admin"), phone(d, "b2", "op101", auto=True), \
        phone(d, "c2", "op102", auto=True)
    try:
        clock, uuid = start_call(d, admin, a, b)
        time.sleep(1)
        b.dtmf("##102#")
        check(c.wait_event("CALL_ESTABLISHED", 10), "102 did not answer")
        time.sleep(2)
        b.dtmf("*")  # back to 100; 102 waits
        clock.mark("toggled")
        time.sleep(2.5)
        b.dtmf("*")  # to 102 again
        clock.mark("consult")
        time.sleep(2.5)
        b.dtmf("#")  # all three
        clock.mark("conf")
        time.sleep(3)
        clock.mark("conf_end")
        b.hangup()
        time.sleep(2.5)
        clock.mark("end")
        a.hangup()
        check(c.wait_event("CALL_CLOSED", 5), "102 did not get BYE")
    finally:
        for p in (a, b, c):
            p.stop()
    m = clock.marks
    check(hears(a, m["toggled"] + 0.6, m["consult"] - 0.2, "op101"),
          "* did not bring 101 back to 100")
    check(hears(b, m["consult"] + 0.6, m["conf"] - 0.2, "op102"),
          "the second * did not bring 101 back to 102")
    check(hears(a, m["conf"] + 1.0, m["conf_end"] - 0.2, "op101", share=0.2) and
          hears(a, m["conf"] + 1.0, m["conf_end"] - 0.2, "op102", share=0.2),
          "100 does not hear both 101 and 102 in the conference")
    check(hears(a, m["end"] - 1.8, m["end"] - 0.3, "op102"),
          "100 does not talk to 102 after 101 left the conference")
    row = cdr(admin, uuid)
    whats = [e["what"] for e in row["events"]]
    check("toggle" in whats and "conference" in whats, "protocol: %r" % whats)


def test_no_answer_returns(d):
    a, b = phone(d, "a3", "admin"), phone(d, "b3", "op101", auto=True)
    try:
        clock, _ = start_call(d, d.login("admin", DEMO["admin"], DEMO_DOMAIN), a, b)
        time.sleep(1)
        b.dtmf("##110#")  # the supervisor has no phone registered
        time.sleep(3)
        clock.mark("back")
        time.sleep(2.5)
        clock.mark("end")
        a.hangup()
        check(b.wait_event("CALL_CLOSED", 5), "101 did not get BYE")
    finally:
        a.stop()
        b.stop()
    m = clock.marks
    check(hears(a, m["back"], m["end"] - 0.3, "op101"), "100 and 101 are not back together")
    check(hears(b, m["back"], m["end"] - 0.3, "admin"), "101 does not hear 100 again")


def test_caller_to_fax(d):
    b = phone(d, "b4", "op102", auto=True)
    doc = faxtools.write_tiff(os.path.join(d.dir, "doc.tiff"), [faxtools.test_page(3)])
    peer = faxtools.FaxPeer(d.sip_port, "op103", DEMO["op103"], timeout=40)
    try:
        peer.send(doc, "sip:102@%s" % DEMO_DOMAIN)
        check(b.wait_event("CALL_ESTABLISHED", 10), "102 did not answer the fax machine")
        time.sleep(1)
        b.dtmf("0")
        check(b.wait_event("CALL_CLOSED", 5), "102 was not let go")
        check(peer.wait_exit(40) == 0, "the fax machine's fax failed: %r" % peer.events)
    finally:
        peer.stop()
        b.stop()
    rows = wait_until(lambda: d.sql("SELECT u.login, f.status, f.pages, f.counterpart FROM faxes f"
                                    " JOIN users u ON u.id = f.owner_id WHERE f.status <> "
                                    "'receiving'"), 10, 0.2, "the fax settled")
    check(rows == [["op102", "received", "1", "103"]], "the fax box holds %r" % rows)


if __name__ == "__main__":
    run_tests([test_transfer_by_code, test_toggle_and_conference, test_no_answer_returns,
               test_caller_to_fax], demo=True)
