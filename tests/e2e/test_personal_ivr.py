"""A subscriber's personal IVR (seed 000): their own Lua, sandboxed.

102 saves a script through the API: it greets the caller and sends 1 to
extension 101. A caller presses 1 and reaches 101. Scripts that loop
forever, eat memory or raise an error end with the call taking the
fallback (102's ordinary forwarding: their phone rings, and the caller
hears 102 after each case), while the daemon keeps serving the API and
another call (103 talking to 101, in progress all along) carries audio both
ways without a break; a script that does not compile is refused on save
naming the line, and the running one stays.
"""
import os
import threading
import time

import audio
from cwtest import DEMO, TestFailure, run_tests
from sipua import Phone

GOOD = """
local call = ...
call:answer()
local key = call:collect{ prompt = { "en/welcome", "en/press_1" }, timeout = 6 }
if key == "1" then call:bridge("101") end
"""
LOOP = "local call = ...\ncall:answer()\nwhile true do end\n"
# a megabyte more each turn: the memory cap, long before the time budget
HOG = "local call = ...\nlocal t = {}\nwhile true do t[#t + 1] = string.rep('x', 1 << 20) end\n"
RAISE = "local call = ...\nerror('oops in my script')\n"


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def phone(d, name, login, hz, auto=False):
    mic = audio.write_tone_wav(os.path.join(d.dir, name + ".wav"), hz, 90, amplitude=9000)
    p = Phone(name, login, DEMO[login], d.sip_port, auto_answer=auto, mic_wav=mic, seconds=200)
    p.start()
    check(p.wait_registered(15), "%s did not register" % name)
    return p


def unbroken(p, hz, what):
    """p heard hz in every second of its last call (but the first and the last)."""
    rate, s = audio.read_wav(p.received_wavs()[-1])[:2]
    seconds = int(len(s) / rate)
    check(seconds >= 4, "%s: the call lasted %d s" % (what, seconds))
    for t in range(1, seconds - 1):
        share = audio.tone_share(audio.segment(s, rate, t, t + 1), rate, hz)
        check(share > 0.5, "%s: %d Hz missing %d-%d s into the call (%.2f)" %
              (what, hz, t, t + 1, share))


def test_personal_ivr(d):
    me = d.login("op102", DEMO["op102"], "demo.local")
    r = me.request("PUT", "/api/v1/me/personal-ivr", body={"script": "local x = = 1"})
    check(r.status == 400 and r.error().get("field") == "script" and ":1:" in r.error()["message"],
          "a broken script is refused naming the line: %r" % r)
    r = me.request("PUT", "/api/v1/me/personal-ivr", body={"script": GOOD})
    check(r.status == 200, "saved: %r" % r)
    r = me.request("PUT", "/api/v1/me/personal-ivr", body={"script": "end end"})
    check(r.status == 400, "a second broken script is refused: %r" % r)
    check(me.get("/api/v1/me/personal-ivr").json["script"] == GOOD, "the running script changed")

    caller = phone(d, "caller", "admin", 440)
    op101 = phone(d, "op101", "op101", 1000, auto=True)
    owner = phone(d, "owner", "op102", 1700, auto=True)
    other = phone(d, "other", "op103", 600)
    try:
        caller.dial("sip:102@demo.local")
        check(caller.wait_event("CALL_ESTABLISHED", 10), "the personal IVR did not answer")
        time.sleep(2)
        caller.dtmf("1")
        check(op101.wait_event("CALL_ESTABLISHED", 10), "1 did not reach 101")
        check(not owner.seen("CALL_INCOMING"), "102's phone rang although the script answered")
        time.sleep(2)
        caller.hangup()
        check(caller.wait_event("CALL_CLOSED", 5), "hang-up not seen")
        op101.wait_event("CALL_CLOSED", 5)

        for name, code in (("loop", LOOP), ("memory", HOG), ("error", RAISE)):
            r = me.request("PUT", "/api/v1/me/personal-ivr", body={"script": code})
            check(r.status == 200, "%s script saved: %r" % (name, r))
            # another call, talking before the script starts and until after it failed
            other.events.clear()
            op101.events.clear()
            other.dial("sip:101@demo.local")
            check(op101.wait_event("CALL_ESTABLISHED", 10) and
                  other.wait_event("CALL_ESTABLISHED", 5), "%s: 103 did not reach 101" % name)
            time.sleep(1.5)
            answered = []
            health = threading.Thread(target=lambda: answered.append(
                d.client().get("/health").status))
            t0 = time.time()
            caller.dial("sip:102@demo.local")
            health.start()
            check(owner.wait_event("CALL_ESTABLISHED", 10),
                  "%s: the call did not fall back to 102's phone" % name)
            took = time.time() - t0
            health.join(5)
            check(answered == [200], "%s: the API did not answer meanwhile" % name)
            check(took < 5, "%s: the fallback took %.1f s" % (name, took))
            time.sleep(2)
            caller.hangup()
            check(caller.wait_event("CALL_CLOSED", 5), "%s: hang-up not seen" % name)
            owner.wait_event("CALL_CLOSED", 5)
            time.sleep(1)
            other.hangup()
            check(other.wait_event("CALL_CLOSED", 5) and op101.wait_event("CALL_CLOSED", 5),
                  "%s: 103's call did not end" % name)
            time.sleep(0.5)
            rate, s = audio.read_wav(caller.received_wavs()[-1])[:2]
            tail = audio.segment(s, rate, len(s) / rate - 2.0, len(s) / rate - 0.3)
            check(audio.tone_share(tail, rate, 1700) > 0.5,
                  "%s: the caller did not hear 102 after the fallback" % name)
            unbroken(other, 1000, "%s: 103 hearing 101" % name)
            unbroken(op101, 600, "%s: 101 hearing 103" % name)
    finally:
        for p in (caller, op101, owner, other):
            p.stop()
    log = d.log_text()
    for why in ("budget", "memory cap of", "oops in my script"):
        check(why in log, "the script's end (%s) is not logged" % why)


if __name__ == "__main__":
    run_tests([test_personal_ivr], demo=True)
