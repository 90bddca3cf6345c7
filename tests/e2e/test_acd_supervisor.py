"""A supervisor on a real queue call: who may listen in, and what each mode sounds like.

A caller (440 Hz) dials the Support queue (200); operator 102 (1000 Hz) is
the only agent logged in and answers. Before anyone listens, the spy API
refuses what it must: operators and subscribers (403), a supervisor naming
someone else's phone (403), a domain admin choosing an operator's phone
(400, user_id), and a supervisor of another tenant (404, through either
domain). None of these leaves an audit row. Then the supervisor (1700 Hz)
listens, whispers and barges from their own phone, each start leaving an
audit row (actor, call, mode): in listen the supervisor hears both and
nobody hears the supervisor; in whisper only the agent hears the
supervisor; in barge all three hear each other.
"""
import time

import audio
from cwtest import DEMO, TestFailure, run_tests, wait_until
from sipua import demo_phone

CALLER, AGENT, SUP = 440, 1000, 1700
PW = "Spy-check-pass-1"
DOM = "/api/v1/domains/demo.local"


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def share(phone, base, start, end, hz, index=0):
    """Share of 100 ms windows of phone's call `index` between two wall-clock times
    (base: when that call started) filled by the tone hz."""
    rate, s = phone.heard(start - base, end - base, index)
    return audio.tone_share(s, rate, hz)


def spy_audit_rows(d, uuid):
    return d.sql("SELECT actor_id, object_type, object_name, details FROM audit_log "
                 "WHERE object_name = ? AND details LIKE '%supervisor%' ORDER BY id", (uuid,))


def test_spy_on_a_queue_call(d):
    admin = d.login("admin", DEMO["admin"], "demo.local")
    users = {u["login"]: u["id"] for u in
             admin.get(DOM + "/users", query={"limit": 100}).json["items"]}
    admin.ok("POST", DOM + "/users", {"login": "sub1", "display_name": "Subscriber",
                                      "password": PW, "role": "subscriber"}, status=201)
    sup_api = d.login("supervisor", DEMO["supervisor"], "demo.local")
    op_api = d.login("op101", DEMO["op101"], "demo.local")
    sub_api = d.login("sub1", PW, "demo.local")
    other = d.tenant_login("other.example", "osup", "supervisor", PW)

    phones = []
    try:
        caller = demo_phone(d, "caller", "admin", CALLER, seconds=120)
        agent = demo_phone(d, "agent", "op102", AGENT, auto=True, seconds=120)
        sup = demo_phone(d, "sup", "supervisor", SUP, auto=True, seconds=120)
        phones = [caller, agent, sup]
        admin.ok("PUT", DOM + "/agents/%d/state" % users["op102"], {"state": "available"})

        caller.dial("sip:200@demo.local")
        check(caller.wait_event("CALL_ESTABLISHED", 10), "the queue did not answer the caller")
        t_caller = time.time()
        check(agent.wait_event("CALL_ESTABLISHED", 10), "agent 102 was not offered the call")
        t_agent = time.time()
        calls = wait_until(lambda: [c for c in admin.get(DOM + "/calls").json["items"]
                                    if c.get("bridge_ms")], 5, 0.1, "the bridged queue call")
        uuid = calls[0]["uuid"]
        check(calls[0].get("queue_id"), "the call is not a queue call: %r" % calls[0])
        url = DOM + "/calls/%s/spy" % uuid

        # refused: the wrong role, someone else's phone, an operator's phone, another tenant
        for who, api in (("operator", op_api), ("subscriber", sub_api)):
            r = api.post(url, {"mode": "listen"})
            check(r.status == 403, "%s may spy: %r" % (who, r))
        for login in ("op101", "admin"):
            r = sup_api.post(url, {"mode": "listen", "user_id": users[login]})
            check(r.status == 403 and r.error().get("field") == "user_id",
                  "a supervisor rang %s's phone into the call: %r" % (login, r))
        r = admin.post(url, {"mode": "listen", "user_id": users["op101"]})
        check(r.status == 400 and r.error().get("field") == "user_id",
              "an operator's phone was accepted as the listener: %r" % r)
        r = other.post(url, {"mode": "listen"})
        check(r.status == 404, "another tenant reached the call through our domain: %r" % r)
        r = other.post("/api/v1/domains/other.example/calls/%s/spy" % uuid, {"mode": "listen"})
        check(r.status == 404, "another tenant reached the call through its domain: %r" % r)
        time.sleep(0.5)
        check(not sup.seen("CALL_INCOMING") and not sup.seen("CALL_ESTABLISHED"),
              "a refused request rang the supervisor")
        check(spy_audit_rows(d, uuid) == [], "refused requests were audited as spying: %r" %
              spy_audit_rows(d, uuid))

        # the supervisor's own phone, three times
        windows = {}
        for n, mode in enumerate(("listen", "whisper", "barge")):
            r = sup_api.post(url, {"mode": mode})
            check(r.status == 202 and r.json["supervisor"] == users["supervisor"],
                  "%s: %r" % (mode, r))
            check(sup.wait_event("CALL_ESTABLISHED", 8),
                  "the supervisor's phone did not answer for %s" % mode)
            t_sup = time.time()
            time.sleep(1.0)
            w0 = time.time()
            time.sleep(4.0)
            windows[mode] = (t_sup, w0, time.time())
            rows = spy_audit_rows(d, uuid)
            check(len(rows) == n + 1, "%s start not audited: %r" % (mode, rows))
            actor, otype, oname, details = rows[-1]
            check(int(actor) == users["supervisor"] and otype == "call" and oname == uuid and
                  '"%s"' % mode in details, "audit row for %s: %r" % (mode, rows[-1]))
            if mode != "barge":
                sup.hangup()
                check(sup.wait_event("CALL_CLOSED", 5),
                      "the %s leg did not end" % mode)
                time.sleep(1.0)
        caller.hangup()
        for p in (agent, sup):
            check(p.wait_event("CALL_CLOSED", 8), "%s stayed in the call" % p.name)
    finally:
        for p in phones:
            p.stop()

    def hears(phone, base, mode, hz, index=0):
        _, w0, w1 = windows[mode]
        return share(phone, base, w0, w1, hz, index)

    for n, mode in enumerate(("listen", "whisper", "barge")):
        t_sup = windows[mode][0]
        for hz, who in ((CALLER, "caller"), (AGENT, "agent")):
            v = hears(sup, t_sup, mode, hz, n)
            check(v > 0.15, "%s: the supervisor does not hear the %s (%.2f)" % (mode, who, v))
        v = hears(caller, t_caller, mode, AGENT)
        check(v > 0.2, "%s: the caller does not hear the agent (%.2f)" % (mode, v))
        v = hears(agent, t_agent, mode, CALLER)
        check(v > 0.2, "%s: the agent does not hear the caller (%.2f)" % (mode, v))
    # who hears the supervisor
    expect = {"listen": (False, False), "whisper": (False, True), "barge": (True, True)}
    for mode, (caller_hears, agent_hears) in expect.items():
        for phone, base, should, who in ((caller, t_caller, caller_hears, "caller"),
                                         (agent, t_agent, agent_hears, "agent")):
            v = hears(phone, base, mode, SUP)
            if should:
                check(v > 0.2, "%s: the %s does not hear the supervisor (%.2f)" % (mode, who, v))
            else:
                check(v < 0.03, "%s: the %s hears the supervisor (%.2f)" % (mode, who, v))


if __name__ == "__main__":
    run_tests([test_spy_on_a_queue_call], demo=True)
