"""Supervisor whisper and barge on a live call, with real phones.

A caller (440 Hz) talks to agent 101 (1000 Hz). The supervisor (1700 Hz)
joins through POST /calls/:uuid/spy, which rings the supervisor's phone:
first in whisper mode, where only the agent hears the supervisor and the
supervisor hears both; then, on a second call, in barge mode, where all
three hear each other. (Listen is covered by tests/e2e/test_first_path.py.)
"""
import os
import time

import audio
from cwtest import TestFailure, run_tests, wait_until
from sipua import Phone

CALLER, AGENT, SUP = 440, 1000, 1700


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def user_id(api, login):
    items = api.get("/api/v1/domains/demo.local/users", query={"q": login}).json["items"]
    return [u["id"] for u in items if u["login"] == login][0]


def share(wav, base, start, end, hz):
    rate, samples, _ = audio.read_wav(wav)
    return audio.tone_share(audio.segment(samples, rate, start - base, end - base), rate, hz)


def test_whisper_then_barge(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    sup_id = user_id(admin, "supervisor")
    mic = lambda name, hz: audio.write_tone_wav(os.path.join(d.dir, name + ".wav"), hz, 80,
                                                amplitude=9000)
    caller = Phone("caller", "admin", "Demo-admin-1", d.sip_port, mic_wav=mic("c", CALLER),
                   seconds=80)
    agent = Phone("agent", "op101", "Demo-op101-1", d.sip_port, auto_answer=True,
                  mic_wav=mic("a", AGENT), seconds=80)
    sup = Phone("sup", "supervisor", "Demo-super-1", d.sip_port, auto_answer=True,
                mic_wav=mic("s", SUP), seconds=80)
    phones = [caller, agent, sup]
    try:
        for p in phones:
            p.start()
            check(p.wait_registered(15), "%s did not register" % p.name)
        caller.dial("sip:101@demo.local")
        check(caller.wait_event("CALL_ESTABLISHED", 10), "the agent did not answer")
        check(agent.wait_event("CALL_ESTABLISHED", 5), "the agent's phone is not in the call")
        t_caller = t_agent = time.time()
        calls = wait_until(lambda: [c for c in admin.get("/api/v1/domains/demo.local/calls")
                                    .json["items"] if c.get("bridge_ms")], 5, 0.1, "the call")
        uuid = calls[0]["uuid"]
        url = "/api/v1/domains/demo.local/calls/%s/spy" % uuid

        r = admin.post(url, {"mode": "whisper", "user_id": sup_id})
        check(r.status == 202 and r.json["mode"] == "whisper", "whisper: %r" % r)
        check(sup.wait_event("CALL_ESTABLISHED", 8), "the supervisor's phone did not answer")
        t_sup1 = time.time()
        time.sleep(1.0)
        w0 = time.time()
        time.sleep(4.0)
        w1 = time.time()
        sup.hangup()
        check(sup.wait_event("CALL_CLOSED", 5), "the whisper leg did not end")
        time.sleep(1.0)

        r = admin.post(url, {"mode": "barge", "user_id": sup_id})
        check(r.status == 202, "barge: %r" % r)
        check(sup.wait_event("CALL_ESTABLISHED", 8), "the supervisor's phone did not answer again")
        t_sup2 = time.time()
        time.sleep(1.0)
        b0 = time.time()
        time.sleep(4.0)
        b1 = time.time()
        r = admin.post(url, {"mode": "shout", "user_id": sup_id})
        check(r.status == 400 and r.error()["field"] == "mode", "a mode we do not know: %r" % r)
        caller.hangup()
        for p in (agent, sup):
            check(p.wait_event("CALL_CLOSED", 8), "%s stayed in the call" % p.name)
    finally:
        for p in phones:
            p.stop()

    c_wav, a_wav = caller.received_wavs()[0], agent.received_wavs()[0]
    s1_wav, s2_wav = sup.received_wavs()[:2]
    # whisper: the agent hears the supervisor, the caller does not; the supervisor hears both
    v = share(a_wav, t_agent, w0, w1, SUP)
    check(v > 0.2, "whisper: the agent does not hear the supervisor (%.2f)" % v)
    v = share(a_wav, t_agent, w0, w1, CALLER)
    check(v > 0.2, "whisper: the agent no longer hears the caller (%.2f)" % v)
    v = share(c_wav, t_caller, w0, w1, SUP)
    check(v < 0.03, "whisper: the caller hears the supervisor (%.2f)" % v)
    v = share(c_wav, t_caller, w0, w1, AGENT)
    check(v > 0.5, "whisper: the caller does not hear the agent (%.2f)" % v)
    for hz, who in ((CALLER, "caller"), (AGENT, "agent")):
        v = share(s1_wav, t_sup1, w0, w1, hz)
        check(v > 0.15, "whisper: the supervisor does not hear the %s (%.2f)" % (who, v))
    # barge: everyone hears everyone
    v = share(c_wav, t_caller, b0, b1, SUP)
    check(v > 0.2, "barge: the caller does not hear the supervisor (%.2f)" % v)
    v = share(c_wav, t_caller, b0, b1, AGENT)
    check(v > 0.2, "barge: the caller does not hear the agent (%.2f)" % v)
    v = share(a_wav, t_agent, b0, b1, SUP)
    check(v > 0.2, "barge: the agent does not hear the supervisor (%.2f)" % v)
    v = share(a_wav, t_agent, b0, b1, CALLER)
    check(v > 0.2, "barge: the agent does not hear the caller (%.2f)" % v)
    for hz, who in ((CALLER, "caller"), (AGENT, "agent")):
        v = share(s2_wav, t_sup2, b0, b1, hz)
        check(v > 0.15, "barge: the supervisor does not hear the %s (%.2f)" % (who, v))
    # nobody hears themselves
    check(share(c_wav, t_caller, b0, b1, CALLER) < 0.05, "barge: the caller hears itself")
    check(share(a_wav, t_agent, b0, b1, AGENT) < 0.05, "barge: the agent hears itself")
    check(share(s2_wav, t_sup2, b0, b1, SUP) < 0.05, "barge: the supervisor hears itself")


if __name__ == "__main__":
    run_tests([test_whisper_then_barge], demo=True)
