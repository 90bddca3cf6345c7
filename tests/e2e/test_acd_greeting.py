"""What a caller to a queue hears, with real phones.

Support plays an uploaded greeting (2 s of 1000 Hz) once to each caller and
rings no operator meanwhile; then, with waiting_audio "ringback", the caller
hears ringing (425 Hz, 1 s on / 4 s off: the ru tone plan) while operator
102's phone rings, not music and not the greeting again; when 102 answers
both hear each other. With the greeting turned off and waiting_audio "moh"
the caller hears music on hold from the start.
"""
import os
import time

import audio
from cwtest import TestFailure, run_tests
from sipua import demo_phone

BASE = "/api/v1/domains/demo.local"
GREETING_HZ = 1000
RINGBACK_HZ = 425
HZ = {"caller": 440, "op102": 800}


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def support(admin):
    return [g for g in admin.ok("GET", BASE + "/call-groups")["items"]
            if g["name"] == "Support"][0]


def test_greeting_then_ringback_then_the_operator(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    users = {u["login"]: u["id"] for u in
             admin.ok("GET", BASE + "/users", query={"limit": 100})["items"]}
    path = audio.write_tone_wav(os.path.join(d.dir, "greeting.wav"), GREETING_HZ, 2.0,
                                amplitude=9000)
    with open(path, "rb") as f:
        snd = admin.ok("POST", BASE + "/sounds", f.read(), query={"name": "queue greeting"},
                       headers={"Content-Type": "audio/wav"}, status=201)
    q = support(admin)
    admin.ok("PATCH", BASE + "/call-groups/%d" % q["id"],
             {"strategy": "linear", "ring_timeout": 30, "greeting_sound_id": snd["id"],
              "waiting_audio": "ringback"})
    phones = []
    try:
        op = demo_phone(d, "op102", "op102", HZ["op102"], auto=False)
        phones.append(op)
        caller = demo_phone(d, "caller", "admin", HZ["caller"])
        phones.append(caller)
        admin.ok("PUT", BASE + "/agents/%d/state" % users["op102"], {"state": "available"})
        caller.dial("sip:200@demo.local")
        check(caller.wait_event("CALL_ESTABLISHED", 8), "the queue did not answer")
        t0 = time.time()
        check(op.wait_event("CALL_INCOMING", 10), "102 was not offered the call")
        rang_after = time.time() - t0
        check(rang_after >= 1.6, "102 rang %.1f s after the caller entered, during the "
              "2 s greeting" % rang_after)
        time.sleep(6.0)  # the caller waits while 102 rings
        op.accept()
        check(op.wait_event("CALL_ESTABLISHED", 5), "102 could not answer")
        t_talk = time.time() - t0
        time.sleep(3.0)
        caller.hangup()
        time.sleep(1.0)
    finally:
        for p in phones:
            p.stop()

    check(caller.hears(GREETING_HZ, 0.2, 1.8), "the caller did not hear the greeting first")
    rate, wait = caller.heard(rang_after + 0.3, rang_after + 5.3)
    # 200 ms windows put 425 Hz on a Goertzel bin of its own
    check(audio.has_tone(wait, rate, RINGBACK_HZ, min_seconds=0.6, ms=200),
          "no ringback while waiting")
    check(audio.active_seconds(wait, rate) <= 2.5,
          "%.1f s of sound in 5 s of waiting: not ringback's cadence" %
          audio.active_seconds(wait, rate))
    check(not audio.has_tone(wait, rate, GREETING_HZ, min_seconds=0.3),
          "the greeting was played again")
    check(caller.hears(HZ["op102"], t_talk + 0.8, t_talk + 2.5), "the caller does not hear 102")
    check(op.hears(HZ["caller"], 0.8, 2.5, index=0), "102 does not hear the caller")


def test_music_on_hold_without_a_greeting(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    q = support(admin)
    admin.ok("PATCH", BASE + "/call-groups/%d" % q["id"],
             {"greeting_sound_id": None, "waiting_audio": "moh", "moh": "default"})
    users = {u["login"]: u["id"] for u in
             admin.ok("GET", BASE + "/users", query={"limit": 100})["items"]}
    admin.ok("PUT", BASE + "/agents/%d/state" % users["op102"],
             {"state": "break", "reason": "test"})
    caller = demo_phone(d, "caller2", "admin", HZ["caller"])
    try:
        caller.dial("sip:200@demo.local")
        check(caller.wait_event("CALL_ESTABLISHED", 8), "the queue did not answer")
        time.sleep(5.0)
        caller.hangup()
        time.sleep(1.0)
    finally:
        caller.stop()
    rate, wait = caller.heard(0.3, 4.3)
    check(audio.active_seconds(wait, rate) >= 3.0,
          "%.1f s of sound in 4 s: no music on hold" % audio.active_seconds(wait, rate))
    check(not audio.has_tone(wait, rate, GREETING_HZ, min_seconds=0.3),
          "a greeting was played though none is set")
    check(not audio.has_tone(wait, rate, RINGBACK_HZ, min_seconds=0.6, ms=200),
          "ringback instead of music")


if __name__ == "__main__":
    run_tests([test_greeting_then_ringback_then_the_operator,
               test_music_on_hold_without_a_greeting], demo=True)
