"""A user's own sounds: the greeting before the call is put through, and a
ringback melody instead of ringing (seed 001 §4.2), uploaded as sound
files through the API. The caller hears the greeting (800 Hz), then the
melody (1200 Hz) while 102 rings, then 102 (1700 Hz) once it answers.
"""
import os
import time

import audio
from cwtest import DEMO, TestFailure, run_tests
from sipua import Phone


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def upload(admin, d, name, hz, seconds):
    path = audio.write_tone_wav(os.path.join(d.dir, name + ".wav"), hz, seconds, amplitude=9000)
    with open(path, "rb") as f:
        r = admin.request("POST", "/api/v1/domains/demo.local/sounds", body=f.read(),
                          headers={"Content-Type": "audio/wav"}, query={"name": name})
    check(r.status == 201, "upload %s: %r" % (name, r))
    return r.json["id"]


def test_greeting_and_ringback(d):
    admin = d.login("admin", DEMO["admin"], "demo.local")
    greeting = upload(admin, d, "greeting", 800, 2.0)
    melody = upload(admin, d, "melody", 1200, 1.5)
    uid = admin.get("/api/v1/domains/demo.local/users", query={"q": "op102"}).json["items"][0]["id"]
    r = admin.patch("/api/v1/domains/demo.local/users/%d" % uid,
                    {"greeting_sound_id": greeting, "ringback_sound_id": melody})
    check(r.status == 200, "set sounds: %r" % r)
    r = admin.patch("/api/v1/domains/demo.local/users/%d" % uid, {"ringback_sound_id": 999999})
    check(r.status == 400 and r.error().get("field") == "ringback_sound_id",
          "a sound that does not exist is refused: %r" % r)

    mic = audio.write_tone_wav(os.path.join(d.dir, "callee.wav"), 1700, 90, amplitude=9000)
    caller = Phone("caller", "admin", DEMO["admin"], d.sip_port, seconds=90)
    callee = Phone("callee", "op102", DEMO["op102"], d.sip_port, mic_wav=mic, seconds=90)
    try:
        for p in (caller, callee):
            p.start()
            check(p.wait_registered(15), "%s did not register" % p.name)
        caller.dial("sip:102@demo.local")
        check(callee.wait_event("CALL_INCOMING", 10), "102 did not ring")
        t_ring = time.time()
        time.sleep(4)
        callee.accept()
        check(caller.wait_event("CALL_ESTABLISHED", 5), "the call was not answered")
        t_answer = time.time()
        time.sleep(3)
        caller.hangup()
        callee.wait_event("CALL_CLOSED", 5)
    finally:
        caller.stop()
        callee.stop()
    rate, s = audio.read_wav(caller.received_wavs()[0])[:2]
    check(audio.has_tone(s, rate, 800, min_seconds=1.5), "the caller did not hear the greeting")
    check(audio.has_tone(s, rate, 1200, min_seconds=2.5), "the caller did not hear the melody")
    tail = audio.segment(s, rate, len(s) / rate - 2.5, len(s) / rate - 0.3)
    check(audio.tone_share(tail, rate, 1700) > 0.5, "the caller does not hear 102")
    check(t_answer - t_ring > 3.5, "answered too early to hear the melody")


if __name__ == "__main__":
    run_tests([test_greeting_and_ringback], demo=True)
