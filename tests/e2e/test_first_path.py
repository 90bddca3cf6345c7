"""The platform's first end-to-end path, with real phones.

A registered softphone dials the IVR number (500 in the demo tenant),
hears the generated welcome prompt, presses 1, waits in the Support queue
hearing music on hold, an agent phone rings and answers, both hear each
other, a supervisor listens in, and the call shows up in the call history
through the API with the right fields.

Every party "speaks" a tone of its own (caller 440 Hz, agent 1000 Hz,
supervisor 1700 Hz), so what each phone heard says exactly who reached it.
"""
import os
import sys
import time

import audio
from cwtest import SOURCE, BUILD, TestFailure, run_tests, wait_until
from sipua import Phone

CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ = 440, 1000, 1700


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def tone_wav(d, name, hz):
    return audio.write_tone_wav(os.path.join(d.dir, name + ".wav"), hz, 90, amplitude=9000)


def user_id(api, login):
    items = api.get("/api/v1/domains/demo.local/users", query={"q": login}).json["items"]
    return [u["id"] for u in items if u["login"] == login][0]


def heard(wav):
    rate, samples, _ = audio.read_wav(wav)
    return rate, samples


def test_first_path(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    op = d.login("op101", "Demo-op101-1", "demo.local")
    op_id, sup_id = user_id(admin, "op101"), user_id(admin, "supervisor")
    # the operator starts logged out, so the caller has to wait in the queue
    r = op.request("PUT", "/api/v1/domains/demo.local/agents/%d/state" % op_id,
                   body={"state": "logged_out"})
    check(r.status == 200, "agent logout: %r" % r)

    phones = []
    try:
        caller = Phone("caller", "admin", "Demo-admin-1", d.sip_port,
                       mic_wav=tone_wav(d, "caller", CALLER_HZ), seconds=120)
        agent = Phone("agent", "op101", "Demo-op101-1", d.sip_port, auto_answer=True,
                      mic_wav=tone_wav(d, "agent", AGENT_HZ), seconds=120)
        sup = Phone("sup", "supervisor", "Demo-super-1", d.sip_port, auto_answer=True,
                    mic_wav=tone_wav(d, "sup", SUPERVISOR_HZ), seconds=120)
        for p in (caller, agent, sup):
            phones.append(p)
            p.start()
            check(p.wait_registered(15), "%s did not register" % p.name)

        # 1. dial the IVR: it answers and plays the welcome prompt
        t_dial = time.time()
        caller.dial("sip:500@demo.local")
        check(caller.wait_event("CALL_ESTABLISHED", 10), "the IVR did not answer")
        t_answer = time.time()
        time.sleep(6.0)  # welcome + "for support, press 1"
        # 2. press 1: the flow says please hold and queues the caller with music
        caller.dtmf("1")
        t_dtmf = time.time()
        calls = wait_until(lambda: [c for c in admin.get("/api/v1/domains/demo.local/calls")
                                    .json["items"] if c.get("queue_id")], 8, 0.2,
                           "the call in the Support queue")
        uuid = calls[0]["uuid"]
        live = admin.get("/api/v1/domains/demo.local/queues/live").json["items"]
        support = [q for q in live if q["name"] == "Support"][0]
        check(support["queue"] == 1 and support["waiting"][0]["call"] == uuid,
              "the caller is not waiting in Support: %r" % support)
        time.sleep(4.0)  # music on hold while no agent is logged in
        t_login = time.time()
        # 3. the agent logs in: its phone rings at once and answers
        r = op.request("PUT", "/api/v1/domains/demo.local/agents/%d/state" % op_id,
                       body={"state": "available"})
        check(r.status == 200, "agent login: %r" % r)
        check(agent.wait_event("CALL_INCOMING", 5) or agent.wait_event("CALL_ESTABLISHED", 1),
              "the agent phone did not ring")
        wait_until(lambda: admin.get("/api/v1/domains/demo.local/calls/" + uuid)
                   .json.get("bridge_ms"), 8, 0.2, "caller and agent bridged")
        t_bridge = time.time()
        # the live view in /metrics: one call, three phones, the agent talking
        m = d.client().get("/metrics").text
        for series in ('cw_calls_active{domain="demo.local"} 1',
                       'cw_registrations{domain="demo.local"} 3',
                       'cw_agents{domain="demo.local",state="on_call_in"} 1',
                       'cw_calls_total{domain="demo.local",direction="internal"} 1'):
            check(series in m, "/metrics lacks %s" % series)
        time.sleep(2.5)
        # 4. the supervisor listens: their phone rings, answers, hears both
        r = admin.post("/api/v1/domains/demo.local/calls/%s/spy" % uuid,
                       body={"mode": "listen", "user_id": sup_id})
        check(r.status == 202, "spy: %r" % r)
        check(sup.wait_event("CALL_ESTABLISHED", 8), "the supervisor phone did not answer")
        t_spy = time.time()
        time.sleep(4.0)
        t_end = time.time()
        caller.hangup()
        check(agent.wait_event("CALL_CLOSED", 8), "the agent did not get BYE")
        check(sup.wait_event("CALL_CLOSED", 8), "the supervisor leg did not end")
    finally:
        for p in phones:
            p.stop()

    # ---- what each phone heard ----
    rate, c = heard(caller.received_wavs()[0])
    # the generated welcome prompt reached the caller (shape of its loudness)
    _, welcome, _ = audio.read_wav(os.path.join(BUILD, "sounds", "en", "welcome.wav"))
    match = audio.contour_match(welcome, audio.segment(c, rate, 0, 4.0), rate, max_lag_s=2.5)
    check(match > 0.75, "the welcome prompt did not arrive (contour match %.2f)" % match)
    # music on hold while waiting: sound, and neither party's tone
    base = t_answer
    hold = audio.segment(c, rate, t_dtmf - base + 2.5, t_login - base - 0.3)
    check(audio.active_seconds(hold, rate, -45) > 0.6 * len(hold) / rate,
          "the caller heard silence while queued (%.1f s of %.1f)" %
          (audio.active_seconds(hold, rate, -45), len(hold) / rate))
    check(audio.tone_share(hold, rate, AGENT_HZ) < 0.2, "agent audio before the agent answered")
    # caller hears the agent
    talk = audio.segment(c, rate, t_bridge - base + 0.5, t_spy - base)
    check(audio.tone_share(talk, rate, AGENT_HZ) > 0.5,
          "the caller does not hear the agent (%.2f)" % audio.tone_share(talk, rate, AGENT_HZ))
    # listen mode: nobody hears the supervisor
    spy_part = audio.segment(c, rate, t_spy - base + 0.5, t_end - base - 0.3)
    check(audio.tone_share(spy_part, rate, SUPERVISOR_HZ) < 0.05,
          "the caller hears the listening supervisor")

    rate, a = heard(agent.received_wavs()[0])
    share = audio.tone_share(audio.segment(a, rate, 0.5, 3.0), rate, CALLER_HZ)
    check(share > 0.5, "the agent does not hear the caller (%.2f)" % share)
    tail = audio.segment(a, rate, len(a) / rate - 3.5, len(a) / rate - 0.5)
    check(audio.tone_share(tail, rate, SUPERVISOR_HZ) < 0.05,
          "the agent hears the listening supervisor")

    rate, s = heard(sup.received_wavs()[0])
    mid = audio.segment(s, rate, 0.5, len(s) / rate - 0.5)
    both = (audio.tone_share(mid, rate, CALLER_HZ), audio.tone_share(mid, rate, AGENT_HZ))
    check(both[0] > 0.15 and both[1] > 0.15,
          "the supervisor does not hear both parties (caller %.2f, agent %.2f)" % both)

    # ---- the call history through the API ----
    def cdr():
        items = admin.get("/api/v1/domains/demo.local/cdrs", query={"number": "100"}).json
        rows = [x for x in items["items"] if x["uuid"] == uuid]
        return rows[0] if rows else None
    row = wait_until(cdr, 5, 0.2, "the CDR of the call")
    check(row["a_number"] == "100" and row["a_name"] == "Demo Admin", "A party: %r" % row)
    check(row["dialed"] == "500", "dialled number: %r" % row["dialed"])
    check(row["b_number"] == "101" and row["agent_id"] == op_id, "agent: %r" % row)
    check(row["queue_id"] == support["id"], "queue: %r" % row["queue_id"])
    check(row["released_by"] == "A" and row["cause"] == "normal", "release: %r" % row)
    check(row["wait_s"] >= 3, "waited %r s in the queue" % row["wait_s"])
    check(row["talk_s"] >= 5, "talked %r s" % row["talk_s"])
    for st in ("answered", "queued", "released"):
        check(st in row["states"], "state %s missing: %r" % (st, row["states"]))
    check(row["quality"]["a"]["rx_packets"] > 100 and row["quality"]["b"]["rx_packets"] > 100,
          "RTP quality not recorded: %r" % row["quality"])
    whats = [e["what"] for e in row["events"]]
    for w in ("incoming", "dial", "answered", "bridged", "spy"):
        check(w in whats, "event %s missing from the protocol: %r" % (w, whats))
    one = admin.get("/api/v1/domains/demo.local/cdrs/" + uuid)
    check(one.status == 200 and one.json["uuid"] == uuid, "GET one CDR: %r" % one)
    # an operator sees their own calls only, and this one is theirs
    mine = op.get("/api/v1/domains/demo.local/cdrs").json["items"]
    check([x["uuid"] for x in mine] == [uuid], "operator's history: %r" % mine)


if __name__ == "__main__":
    run_tests([test_first_path], demo=True, sets={"plugins": "metrics"})
