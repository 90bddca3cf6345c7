"""Three phones in a conference room: everyone hears the other two, never themselves.

A room (extension 300, recorded) is made through the API. Three baresip
phones dial it, each "speaking" a tone of its own (A 450 Hz, B 1150 Hz,
C 2050 Hz). While all three are in, each phone hears the other two tones
and not its own (Goertzel shares of what it received). The live view lists
the three parties as talking; a supervisor mutes C (A and B stop hearing C,
C still hears them) and removes B (B's call ends); the event stream carries
every step. When the room empties its recording holds all three tones.
"""
import time

import audio
import os
from cwtest import EventStream, TestFailure, run_tests, wait_until
from sipua import Phone

TONES = {"A": 450, "B": 1150, "C": 2050}
USERS = {"A": ("admin", "Demo-admin-1"), "B": ("op101", "Demo-op101-1"),
         "C": ("op102", "Demo-op102-1")}


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def heard(phone, start, end, base):
    rate, samples, _ = audio.read_wav(phone.received_wavs()[0])
    return rate, audio.segment(samples, rate, start - base, end - base)


def test_three_party_conference(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    room = admin.ok("POST", "/api/v1/domains/demo.local/conference-rooms",
                    {"name": "Standup", "extension": "300", "record": True}, status=201)
    check(room["max_parties"] == 16, "room %r" % room)
    events = EventStream(d.http_port, cookies=admin.cookies, types=["conference."], timeout=30)
    phones, joined = {}, {}
    try:
        for name in ("A", "B", "C"):
            user, pw = USERS[name]
            mic = audio.write_tone_wav(os.path.join(d.dir, name + ".wav"), TONES[name], 60,
                                       amplitude=8000)
            phones[name] = Phone(name, user, pw, d.sip_port, mic_wav=mic, seconds=60)
            phones[name].start()
            check(phones[name].wait_registered(15), "%s did not register" % name)
        for name in ("A", "B", "C"):
            phones[name].dial("sip:300@demo.local")
            check(phones[name].wait_event("CALL_ESTABLISHED", 10), "%s: room did not answer" % name)
            joined[name] = time.time()
            time.sleep(0.5)
        live = wait_until(lambda: [r for r in admin.get("/api/v1/domains/demo.local/conferences")
                                   .json["items"] if len(r["members"]) == 3], 8, 0.2,
                          "three parties in the room")[0]
        check(live["name"] == "Standup" and live["id"] == room["id"] and live["recording"],
              "live room %r" % live)
        members = {m["number"]: m for m in live["members"]}
        check(sorted(members) == ["100", "101", "102"], "members %r" % list(members))
        time.sleep(2.5)  # "you are the first participant" and the join cues are over
        t1 = time.time()
        time.sleep(4.0)
        t2 = time.time()
        talking = admin.get("/api/v1/domains/demo.local/conferences/Standup").json["members"]
        check(all(m["talking"] for m in talking), "not everyone is talking: %r" % talking)

        # the moderator's actions
        r = admin.patch("/api/v1/domains/demo.local/conferences/%d/members/%d"
                        % (room["id"], members["102"]["id"]), {"muted": True})
        check(r.status == 200 and r.json["muted"], "mute: %r" % r)
        r = admin.patch("/api/v1/domains/demo.local/conferences/Standup/members/%d"
                        % members["102"]["id"], {"muted": "yes"})
        check(r.status == 400, "a bad mute value: %r" % r)
        time.sleep(2.0)  # C hears "you are muted"
        t3 = time.time()
        time.sleep(4.0)
        t4 = time.time()
        r = admin.delete("/api/v1/domains/demo.local/conferences/Standup/members/%d"
                         % members["101"]["id"])
        check(r.status == 200, "kick: %r" % r)
        check(phones["B"].wait_event("CALL_CLOSED", 10), "B's call did not end after the kick")
        check(admin.delete("/api/v1/domains/demo.local/conferences/Standup/members/999999")
              .status == 404, "kicking nobody")
        left = wait_until(lambda: len(admin.get("/api/v1/domains/demo.local/conferences/Standup")
                                      .json["members"]) == 2, 5, 0.1, "two parties left")
        check(left, "B is still listed")
        phones["A"].hangup()
        phones["C"].hangup()
        for name in ("A", "C"):
            check(phones[name].wait_event("CALL_CLOSED", 8), "%s did not hang up" % name)
        wait_until(lambda: not admin.get("/api/v1/domains/demo.local/conferences")
                   .json["items"], 5, 0.1, "the room closed")
        seen = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(e["event"] == "conference.ended"
                                                      for e in seen):
            seen.append(events.next(10))
    finally:
        events.close()
        for p in phones.values():
            p.stop()

    # ---- what each phone heard ----
    def share(name, start, end, hz):
        rate, s = heard(phones[name], start, end, joined[name])
        return audio.tone_share(s, rate, hz)

    for name, others in (("A", "BC"), ("B", "AC"), ("C", "AB")):
        for o in others:
            v = share(name, t1, t2, TONES[o])
            check(v > 0.2, "%s does not hear %s in the room (%.2f)" % (name, o, v))
        v = share(name, t1, t2, TONES[name])
        check(v < 0.05, "%s hears itself (%.2f)" % (name, v))
    for name in ("A", "B"):
        v = share(name, t3, t4, TONES["C"])
        check(v < 0.03, "%s still hears muted C (%.2f)" % (name, v))
    check(share("A", t3, t4, TONES["B"]) > 0.5, "A stopped hearing B while C was muted")
    for o in "AB":
        v = share("C", t3, t4, TONES[o])
        check(v > 0.2, "muted C no longer hears %s (%.2f)" % (o, v))

    # ---- the event stream ----
    data = [(e["event"], e["data"]["data"]) for e in seen]  # the SSE envelope holds the event
    kinds = [(k, v["member"]["number"] if "member" in v else None) for k, v in data]
    for want in (("conference.started", None), ("conference.joined", "100"),
                 ("conference.joined", "101"), ("conference.joined", "102"),
                 ("conference.talking", "101"), ("conference.member", "102"),
                 ("conference.left", "101"), ("conference.ended", None)):
        check(want in kinds, "event %r missing: %r" % (want, kinds))
    gone = [v for k, v in data if k == "conference.left"]
    check({g["member"]["number"]: g["reason"] for g in gone}.get("101") == "kicked",
          "B's leaving %r" % gone)

    # ---- the room's recording ----
    rec = wait_until(lambda: d.sql("SELECT path, duration_ms FROM recordings WHERE room_id = %d"
                                   % room["id"]), 10, 0.2, "the room recording")
    rate, samples, chans = audio.read_wav(rec[0][0])
    check(len(chans) == 1 and int(rec[0][1]) > 10000, "recording %r" % rec)
    whole = audio.segment(samples, rate, t1 - joined["A"], t2 - joined["A"])
    for name, hz in TONES.items():
        v = audio.tone_share(whole, rate, hz)
        check(v > 0.15, "the recording lacks %s (%.2f)" % (name, v))


if __name__ == "__main__":
    run_tests([test_three_party_conference], demo=True)
