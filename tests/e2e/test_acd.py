"""The ACD with real phones: two callers, three agents.

The Support queue distributes linearly (101, 102, 103), rings 5 s, keeps
agents 5 s in wrap-up and sends an agent away after 2 misses in a row.
101's phone never answers. The first caller rings 101, then goes to 102;
the second rings 101 again (its second miss: 101 goes away), then 103.
Each caller and its agent hear each other. When the first conversation
ends, a new caller waits until 102's wrap-up is over. The SSE stream shows
agent state changes within 200 ms, and the queue log has every step.
"""
import os
import time

import audio
from cwtest import EventStream, TestFailure, run_tests, wait_until
from sipua import Phone

HZ = {"c1": 440, "c2": 600, "op101": 800, "op102": 1000, "op103": 1700}


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def phone(d, name, login, pw, auto=False):
    mic = audio.write_tone_wav(os.path.join(d.dir, name + ".wav"), HZ[name], 120, amplitude=9000)
    p = Phone(name, login, pw, d.sip_port, auto_answer=auto, mic_wav=mic, seconds=150)
    p.start()
    check(p.wait_registered(15), "%s did not register" % name)
    return p


def last_seconds(p, secs, index=-1):
    rate, s = audio.read_wav(p.received_wavs()[index])[:2]
    return rate, audio.segment(s, rate, len(s) / rate - secs, len(s) / rate - 0.3)


def test_two_callers_three_agents(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    users = {u["login"]: u["id"] for u in
             admin.get("/api/v1/domains/demo.local/users", query={"limit": 100}).json["items"]}
    groups = admin.get("/api/v1/domains/demo.local/call-groups").json["items"]
    support = [g for g in groups if g["name"] == "Support"][0]
    r = admin.patch("/api/v1/domains/demo.local/call-groups/%d" % support["id"],
                    {"strategy": "linear", "ring_timeout": 5, "wrapup_time": 5,
                     "max_misses": 2})
    check(r.status == 200, "queue settings: %r" % r)
    # refused settings change nothing
    for bad in ({"strategy": "fastest"}, {"ring_timeout": -1}, {"wrapup_time": "long"}):
        r = admin.patch("/api/v1/domains/demo.local/call-groups/%d" % support["id"], bad)
        check(r.status == 400 and r.error().get("field") == list(bad)[0],
              "bad %r not refused by name: %r" % (bad, r))

    agents = {}
    callers = {}
    try:
        agents["op101"] = phone(d, "op101", "op101", "Demo-op101-1", auto=False)
        agents["op102"] = phone(d, "op102", "op102", "Demo-op102-1", auto=True)
        agents["op103"] = phone(d, "op103", "op103", "Demo-op103-1", auto=True)
        callers["c1"] = phone(d, "c1", "admin", "Demo-admin-1")
        callers["c2"] = phone(d, "c2", "supervisor", "Demo-super-1")

        events = EventStream(d.http_port, admin.cookies, types=["agent."])
        for login in ("op101", "op102", "op103"):
            t0 = time.time()
            r = admin.request("PUT", "/api/v1/domains/demo.local/agents/%d/state" % users[login],
                              body={"state": "available"})
            check(r.status == 200, "login %s: %r" % (login, r))
            events.wait_for(lambda e: e.get("event") == "agent.state" and
                            e["data"]["data"]["user_id"] == users[login] and
                            e["data"]["data"]["state"] == "available", timeout=2)
            took = time.time() - t0
            check(took < 0.2, "SSE showed %s's login after %.0f ms" % (login, took * 1000))

        # caller 1: 101 rings first and does not answer; then 102 answers
        callers["c1"].dial("sip:200@demo.local")
        check(agents["op101"].wait_event("CALL_INCOMING", 8), "101 was not offered the call")
        t101 = time.time()
        check(agents["op102"].wait_event("CALL_ESTABLISHED", 12), "102 did not get the call")
        t102 = time.time()
        check(4.0 <= t102 - t101 <= 8.5, "102 rang %.1f s after 101 (ring time 5 s)" %
              (t102 - t101))
        check(agents["op101"].wait_event("CALL_CLOSED", 3), "101's offer was not withdrawn")
        check(not agents["op103"].seen("CALL_INCOMING"), "103 rang for the first caller")

        # caller 2: 101 again (second miss: away), then 103
        callers["c2"].dial("sip:200@demo.local")
        check(agents["op101"].wait_event("CALL_INCOMING", 8), "101 was not offered caller 2")
        check(agents["op103"].wait_event("CALL_ESTABLISHED", 12), "103 did not get caller 2")
        a101 = wait_until(lambda: admin.get("/api/v1/domains/demo.local/agents/%d" %
                                            users["op101"]).json["state"] == "away", 4, 0.1,
                          "101 away after two misses")
        check(a101, "101 not away")
        time.sleep(3)

        # caller 1 hangs up: 102 wraps up for 5 s; a new call waits for it
        callers["c1"].hangup()
        t_end = time.time()
        check(agents["op102"].wait_event("CALL_CLOSED", 5), "102 did not get BYE")
        st = admin.get("/api/v1/domains/demo.local/agents/%d" % users["op102"]).json["state"]
        check(st == "wrap_up", "102 is %s after the call, not wrap_up" % st)
        callers["c1"].dial("sip:200@demo.local")
        check(agents["op102"].wait_event("CALL_ESTABLISHED", 12), "102 never got the next call")
        waited = time.time() - t_end
        check(waited >= 4.5, "102 was offered a call %.1f s after the last (wrap-up 5 s)" % waited)
        time.sleep(2.5)
        for c in callers.values():
            c.hangup()
        time.sleep(1)
        events.close()
    finally:
        for p in list(agents.values()) + list(callers.values()):
            p.stop()

    # who heard whom
    rate, seg = last_seconds(callers["c2"], 2.5)
    check(audio.tone_share(seg, rate, HZ["op103"]) > 0.5, "caller 2 does not hear 103")
    rate, seg = audio.read_wav(agents["op103"].received_wavs()[0])[:2]
    check(audio.tone_share(audio.segment(seg, rate, 0.5, 3.0), rate, HZ["c2"]) > 0.5,
          "103 does not hear caller 2")
    rate, seg = audio.read_wav(agents["op102"].received_wavs()[0])[:2]
    check(audio.tone_share(audio.segment(seg, rate, 0.5, 3.0), rate, HZ["c1"]) > 0.5,
          "102 does not hear caller 1")
    rate, seg = audio.read_wav(callers["c1"].received_wavs()[0])[:2]
    tail = audio.segment(seg, rate, len(seg) / rate - 3.5, len(seg) / rate - 1.0)
    check(audio.tone_share(tail, rate, HZ["op102"]) > 0.5, "caller 1 does not hear 102")

    # the queue log tells the story
    def log():
        return [r[0] for r in d.sql("SELECT event FROM queue_log ORDER BY id")]
    events_seen = wait_until(lambda: log() if log().count("complete") >= 3 else None, 5, 0.2,
                             "queue log rows")
    for ev in ("join", "offer", "ring_timeout", "answer", "complete"):
        check(ev in events_seen, "queue log lacks %s: %r" % (ev, events_seen))
    check(events_seen.count("ring_timeout") == 2, "misses logged: %r" % events_seen)


if __name__ == "__main__":
    run_tests([test_two_callers_three_agents], demo=True)
