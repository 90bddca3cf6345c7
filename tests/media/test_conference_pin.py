"""Conference PINs, moderators and the end of a room, with real phones; bad rooms refused.

Room 301 has a PIN (2468), a moderator PIN (1357) and ends with its
moderator. Phone A keys a wrong PIN (and hears so), then the right one and
is in; phone B keys the moderator PIN and is listed as moderator. When B
hangs up, A is let go: it hears "the conference has ended" and its call
ends. Rooms with a party limit over 16, a moderator PIN equal to the PIN,
or an extension a user already has are refused, and a user cannot take a
room's extension. The daemon stops cleanly with a party in a room.
"""
import os
import time

import audio
from cwtest import free_port, free_udp_range, BUILD, TestFailure, run_tests, wait_until
from sipua import Phone


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def restart_on_fresh_ports(d):
    """Start the stopped daemon again; its SIP and RTP ports may have gone to a parallel test."""
    d.sip_port = free_port(udp_too=True)
    d.rtp_min = free_udp_range(64)
    d.sets.update({"sip.port": str(d.sip_port), "media.rtp_min": str(d.rtp_min),
                   "media.rtp_max": str(d.rtp_min + 63)})
    d.start()


def prompt(name):
    rate, samples, _ = audio.read_wav(os.path.join(BUILD, "sounds", "en", name + ".wav"))
    return rate, samples


def test_pin_moderator_and_end(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    room = admin.ok("POST", "/api/v1/domains/demo.local/conference-rooms",
                    {"name": "Board", "extension": "301", "pin": "2468",
                     "moderator_pin": "1357", "end_with_moderator": True, "language": "en"}, status=201)
    a = Phone("A", "op101", "Demo-op101-1", d.sip_port,
              mic_wav=audio.write_tone_wav(os.path.join(d.dir, "a.wav"), 600, 60), seconds=60)
    b = Phone("B", "op102", "Demo-op102-1", d.sip_port,
              mic_wav=audio.write_tone_wav(os.path.join(d.dir, "b.wav"), 1400, 60), seconds=60)
    try:
        for p in (a, b):
            p.start()
            check(p.wait_registered(15), "%s did not register" % p.name)
        a.dial("sip:301@demo.local")
        check(a.wait_event("CALL_ESTABLISHED", 10), "the room did not answer A")
        t_a = time.time()
        time.sleep(3.5)  # "please enter the conference PIN, then press pound"
        a.dtmf("1111#")
        time.sleep(2.5)  # "incorrect conference PIN", the question again
        check(not admin.get("/api/v1/domains/demo.local/conferences").json["items"],
              "a wrong PIN let A in")
        a.dtmf("2468#")
        wait_until(lambda: admin.get("/api/v1/domains/demo.local/conferences").json["items"],
                   8, 0.2, "A in the room")
        b.dial("sip:301@demo.local")
        check(b.wait_event("CALL_ESTABLISHED", 10), "the room did not answer B")
        time.sleep(3.5)
        b.dtmf("1357#")
        live = wait_until(lambda: [r for r in admin.get("/api/v1/domains/demo.local/conferences")
                                   .json["items"] if len(r["members"]) == 2], 8, 0.2,
                          "B in the room")[0]
        roles = {m["number"]: m["moderator"] for m in live["members"]}
        check(roles == {"101": False, "102": True}, "moderators %r" % roles)
        time.sleep(2.0)
        t_end = time.time()
        b.hangup()
        check(a.wait_event("CALL_CLOSED", 12), "A stayed after the moderator left")
        wait_until(lambda: not admin.get("/api/v1/domains/demo.local/conferences")
                   .json["items"], 5, 0.1, "the room closed")
    finally:
        a.stop()
        b.stop()
    rate, got, _ = audio.read_wav(a.received_wavs()[0])
    _, wrong = prompt("conf_wrong_pin")
    m = audio.contour_match(wrong, audio.segment(got, rate, 3.5, 9.0), rate, max_lag_s=4.0)
    check(m > 0.7, "A did not hear that the PIN was wrong (%.2f)" % m)
    _, ended = prompt("conf_ended")
    tail = audio.segment(got, rate, t_end - t_a - 0.5, len(got) / rate)
    # the phone's recording loses the last moments of a call: the prompt's first second
    m = audio.contour_match(ended[:rate], tail, rate, max_lag_s=3.0)
    check(m > 0.7, "A did not hear that the conference ended (%.2f)" % m)
    check(audio.tone_share(audio.segment(got, rate, t_end - t_a - 1.5, t_end - t_a - 0.2), rate,
                           1400) > 0.3, "A did not hear the moderator")


def test_bad_rooms_are_refused(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    base = "/api/v1/domains/demo.local/conference-rooms"
    before = d.sql("SELECT COUNT(*) FROM conference_rooms")
    for body, field in (({"name": "Big", "max_parties": 17}, "max_parties"),
                        ({"name": "Same", "pin": "1234", "moderator_pin": "1234"},
                         "moderator_pin"),
                        ({"name": "Taken", "extension": "101"}, "extension"),
                        ({"name": "Letters", "pin": "12ab"}, "pin"),
                        ({"name": ""}, "name"),
                        ({"name": "X", "colour": "red"}, "colour")):
        r = admin.post(base, body)
        check(r.status in (400, 409) and r.error().get("field") == field,
              "%r was not refused on %s: %r" % (body, field, r))
    check(d.sql("SELECT COUNT(*) FROM conference_rooms") == before, "a refused room was stored")
    room = admin.ok("POST", base, {"name": "Quiet", "extension": "399"}, status=201)
    r = admin.post("/api/v1/domains/demo.local/users",
                   {"login": "u399", "display_name": "U", "password": "Some-pass-1",
                    "extension": "399"})
    check(r.status == 409 and r.error()["field"] == "extension", "user on a room's number: %r" % r)
    op = d.login("op101", "Demo-op101-1", "demo.local")
    check(op.get(base).status == 403, "an operator lists rooms")
    check(op.delete("%s/%d" % (base, room["id"])).status == 403, "an operator deletes a room")
    check(admin.delete("%s/%d" % (base, room["id"])).status == 200, "delete")


def test_stop_with_a_party_in_a_room(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    admin.ok("POST", "/api/v1/domains/demo.local/conference-rooms",
             {"name": "Lobby", "extension": "302", "record": True}, status=201)
    p = Phone("P", "op103", "Demo-op103-1", d.sip_port, seconds=30)
    try:
        p.start()
        check(p.wait_registered(15), "P did not register")
        p.dial("sip:302@demo.local")
        check(p.wait_event("CALL_ESTABLISHED", 10), "the room did not answer")
        wait_until(lambda: admin.get("/api/v1/domains/demo.local/conferences").json["items"],
                   8, 0.2, "P in the room")
        d.stop()  # exit status 0 (and nothing leaked under the sanitizers)
        check(p.wait_event("CALL_CLOSED", 8), "P's call did not end with the daemon")
    finally:
        p.stop()
    restart_on_fresh_ports(d)


if __name__ == "__main__":
    run_tests([test_pin_moderator_and_end, test_bad_rooms_are_refused,
               test_stop_with_a_party_in_a_room], demo=True)
