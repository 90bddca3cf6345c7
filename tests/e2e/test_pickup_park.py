#!/usr/bin/python3
"""Call pickup and call park with real phones.

Pickup: 100 (440 Hz) calls 101, whose phone rings; 102 (1700 Hz), in 101's
pickup group, dials the domain's pickup code and gets the call: 101 stops
ringing, 100 and 102 hear each other, the call history names 102. Someone
outside the group cannot pick up; directed pickup (**<extension>) works
for anyone of the domain.

Park: 100 calls 101 (1000 Hz), who transfers 100 to the park code: 101
hears the slot and is let go, 100 hears music, a BLF watcher of the slot
sees it taken, and 102 dials the slot and talks to 100. A call nobody
takes rings the one who parked it again when the park time is up.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import audio  # noqa: E402
import sipraw  # noqa: E402
from cwtest import DEMO, DEMO_DOMAIN, EventStream, check, run_tests, wait_until  # noqa: E402
from sipua import demo_phone  # noqa: E402

HZ = {"admin": 440, "op101": 1000, "op102": 1700, "op103": 2300}
PARK_TIMEOUT = 8


def phone(d, name, login, auto=False):
    return demo_phone(d, name, login, HZ[login], auto)


def user_id(admin, login):
    items = admin.get("/api/v1/domains/%s/users" % DEMO_DOMAIN, query={"q": login}).json["items"]
    return [u["id"] for u in items if u["login"] == login][0]


def cdr(admin, uuid):
    def get():
        r = admin.get("/api/v1/domains/%s/cdrs/%s" % (DEMO_DOMAIN, uuid))
        return r.json if r.status == 200 else None
    return wait_until(get, 5, 0.2, "the call record")


def live_uuid(admin):
    items = wait_until(lambda: admin.get("/api/v1/domains/%s/calls" % DEMO_DOMAIN).json["items"],
                       5, 0.2, "a live call")
    return items[0]["uuid"]


def tail_hears(p, login, seconds=2.0):
    """The last seconds of the phone's last call carry login's tone."""
    return p.hears(HZ[login], -seconds - 0.3, -0.3)


def pick_up(a, ringing, picker, extension, code, before_pickup=None):
    """a calls extension, ringing's phone rings, picker dials code and gets the call;
    they talk, a hangs up. before_pickup(): what else happens while it rings."""
    try:
        a.dial("sip:%s@%s" % (extension, DEMO_DOMAIN))
        check(ringing.wait_event("CALL_INCOMING", 10), "%s does not ring" % extension)
        if before_pickup:
            before_pickup()
        picker.dial("sip:%s@%s" % (code, DEMO_DOMAIN))
        check(picker.wait_event("CALL_ESTABLISHED", 10), "%s did not get the call" % code)
        check(a.wait_event("CALL_ESTABLISHED", 5), "the caller's call was not answered")
        check(ringing.wait_event("CALL_CLOSED", 5), "%s kept ringing" % extension)
        time.sleep(2.5)
        a.hangup()
        check(picker.wait_event("CALL_CLOSED", 5), "the picker did not get BYE")
    finally:
        for p in (a, ringing, picker):
            p.stop()


def test_group_pickup(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    r = admin.post("/api/v1/domains/%s/pickup-groups" % DEMO_DOMAIN,
                   {"name": "Front desk",
                    "members": [user_id(admin, "op101"), user_id(admin, "op102")]})
    check(r.status == 201, "pickup group: %r" % r)
    a, b, c, x = (phone(d, "a", "admin"), phone(d, "b", "op101"), phone(d, "c", "op102"),
                  phone(d, "x", "op103"))
    found = {}

    def outsider():
        found["uuid"] = live_uuid(admin)
        # 103 is in no pickup group: refused, and 101 keeps ringing
        x.dial("sip:*8@%s" % DEMO_DOMAIN)
        check(x.wait_event("CALL_CLOSED", 5), "103's pickup was not refused")
        check(not b.seen("CALL_CLOSED"), "101 stopped ringing for 103")
        x.stop()
    pick_up(a, b, c, "101", "*8", outsider)
    check(tail_hears(a, "op102"), "100 does not hear 102")
    check(tail_hears(c, "admin"), "102 does not hear 100")
    row = cdr(admin, found["uuid"])
    check(row["a_number"] == "100" and row["b_number"] == "102", "call record: %r" % row)
    check(any(e["what"] == "picked-up" for e in row["events"]), "protocol: %r" % row["events"])


def test_directed_pickup(d):
    a, b, c = phone(d, "a2", "admin"), phone(d, "b2", "op103"), phone(d, "c2", "op101")
    pick_up(a, b, c, "103", "**103")
    check(tail_hears(a, "op101", 1.5), "100 does not hear 101")
    check(tail_hears(c, "admin", 1.5), "101 does not hear 100")


def watch_slot(d, slot):
    """op103 subscribes to the slot's dialog state (BLF); returns the client."""
    w = sipraw.Client(d.sip_port)
    r = w.watch_dialog(slot, DEMO_DOMAIN, "op103", DEMO["op103"])
    check(r is not None and r.status == 202, "BLF subscription to slot %s: %s" % (slot, r))
    n = w.wait_request("NOTIFY")
    check(n is not None and "<state>" not in n.body, "a free slot shows no dialog: %r" % n)
    return w


def test_park_and_retrieve(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    ev = EventStream(d.http_port, cookies=admin.cookies, types=["call.parked", "call.unparked"])
    w = watch_slot(d, "701")
    a, b, c = phone(d, "a3", "admin"), phone(d, "b3", "op101", auto=True), phone(d, "c3", "op102")
    try:
        a.dial("sip:101@%s" % DEMO_DOMAIN)
        check(a.wait_event("CALL_ESTABLISHED", 10), "101 did not answer")
        t_talk = time.time()
        uuid = live_uuid(admin)
        time.sleep(1.5)
        t_park = time.time()
        b.transfer("sip:*70@%s" % DEMO_DOMAIN)
        parked = ev.wait_for(lambda e: e.get("event") == "call.parked", timeout=5)
        parked = parked["data"]["data"]
        check(parked["slot"] == 701 and parked["call"] == uuid and parked["by"] == "101",
              "parked where: %r" % parked)
        n = w.wait_request("NOTIFY", pred=lambda m: "<state>" in m.body, timeout=5)
        check(n is not None and "confirmed" in n.body, "BLF: the slot is not shown taken")
        check(b.wait_event("CALL_CLOSED", 10), "101 was not let go after parking")
        t_closed = time.time()
        time.sleep(1.5)
        c.dial("sip:701@%s" % DEMO_DOMAIN)
        check(c.wait_event("CALL_ESTABLISHED", 10), "102 could not take the parked call")
        ev.wait_for(lambda e: e.get("event") == "call.unparked", timeout=5)
        n = w.wait_request("NOTIFY", pred=lambda m: "terminated" in m.body, timeout=5)
        check(n is not None, "BLF: the slot is not shown free again")
        time.sleep(2.5)
        c.hangup()
        check(a.wait_event("CALL_CLOSED", 5), "100 did not get BYE")
    finally:
        for p in (a, b, c):
            p.stop()
        w.close()
        ev.close()
    # 101 heard the slot being said (speech, not 100's tone) before being let go
    rate, said = b.heard(-(t_closed - t_park) + 0.3, -0.2)
    check(audio.active_seconds(said, rate) >= 1.0 and audio.tone_share(said, rate, HZ["admin"])
          < 0.3, "101 did not hear the slot announced")
    rate, moh = a.heard(t_closed - t_talk + 0.1, t_closed - t_talk + 1.3)
    check(audio.active_seconds(moh, rate) >= 0.8 and audio.tone_share(moh, rate, HZ["op101"]) < 0.3,
          "100 heard no music while parked")
    check(tail_hears(a, "op102"), "100 does not hear 102 after the park")
    check(tail_hears(c, "admin"), "102 does not hear 100")
    row = cdr(admin, uuid)
    whats = [e["what"] for e in row["events"]]
    check("parked" in whats and "unpark" in whats, "protocol: %r" % whats)
    check(row["b_number"] == "102", "call record: %r" % row)


def test_park_times_out_back_to_parker(d):
    a, b = phone(d, "a4", "admin"), phone(d, "b4", "op101", auto=True)
    try:
        a.dial("sip:101@%s" % DEMO_DOMAIN)
        check(a.wait_event("CALL_ESTABLISHED", 10) and b.wait_event("CALL_ESTABLISHED", 5),
              "101 did not answer")
        time.sleep(1)
        b.transfer("sip:702@%s" % DEMO_DOMAIN)
        check(b.wait_event("CALL_CLOSED", 10), "101 was not let go after parking")
        check(b.wait_event("CALL_ESTABLISHED", PARK_TIMEOUT + 5),
              "the parked call did not come back to 101")
        time.sleep(2.5)
        a.hangup()
        check(b.wait_event("CALL_CLOSED", 5), "101 did not get BYE")
    finally:
        a.stop()
        b.stop()
    check(tail_hears(a, "op101", 1.5), "100 does not hear 101 again")
    check(tail_hears(b, "admin", 1.5), "101 does not hear 100 again")


if __name__ == "__main__":
    run_tests([test_group_pickup, test_directed_pickup, test_park_and_retrieve,
               test_park_times_out_back_to_parker],
              demo=True, sets={"call.park_timeout": str(PARK_TIMEOUT)})
