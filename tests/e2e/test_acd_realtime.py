"""Agent states and the real-time views of operators and groups, with real phones.

Agent states over the API: an operator takes a break with a reason, may not
change a colleague's state (403), and a state we do not know is refused by
name (400) without a change. From a real phone, *53, *52 and *51 make
operator 103 available, on break and logged out, as the API then shows.

Then, with 101 on break, 103 away and 102 available, a first caller reaches
102 (whose offer event carries the group's greeting text and info URL) and
a second caller waits. The operator view shows 102 online, on an inbound
call, for a growing time, with the call's id; the group view counts the
queue, the logged-in, available, inbound, outbound, wrap-up, break, away and
campaign operators and lists the waiting caller. Every change of a group's
counts (a caller joining, leaving, an agent's state) reaches the SSE stream
as queue.stats within 200 ms; another tenant's stream sees none of it.
"""
import time

from cwtest import DEMO, TestFailure, EventStream, run_tests, wait_until
from sipua import demo_phone

DOM = "/api/v1/domains/demo.local"
PW = "Realtime-pass-1"
GREETING = "Support line: check the contract number first"
INFO_URL = "https://crm.example/support?caller={caller}"


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def stats_of(ev, name="Support"):
    return ev.get("event") == "queue.stats" and ev["data"]["data"]["name"] == name


def group_view(api, name="Support"):
    return [g for g in api.get(DOM + "/queues/live").json["items"] if g["name"] == name][0]


def expect_counts(view, what, **counts):
    for k, v in counts.items():
        check(view.get(k) == v, "%s: %s is %r, not %r (%r)" % (what, k, view.get(k), v, view))


def test_agent_states_over_the_api(d):
    admin = d.login("admin", DEMO["admin"], "demo.local")
    users = {u["login"]: u["id"] for u in
             admin.get(DOM + "/users", query={"limit": 100}).json["items"]}
    op101 = d.login("op101", DEMO["op101"], "demo.local")
    url = DOM + "/agents/%d/state"

    r = op101.request("PUT", url % users["op101"], body={"state": "break", "reason": "lunch"})
    check(r.status == 200 and r.json["state"] == "break" and r.json["reason"] == "lunch",
          "break with a reason: %r" % r)
    view = admin.get(DOM + "/agents/%d" % users["op101"]).json
    check(view["state"] == "break" and view.get("reason") == "lunch", "the view: %r" % view)
    row = d.sql("SELECT state, reason FROM agents WHERE user_id = ?", (users["op101"],))
    check(row == [["break", "lunch"]] or row == [("break", "lunch")], "agents row %r" % row)

    before = admin.get(DOM + "/agents/%d" % users["op102"]).json["state"]
    r = op101.request("PUT", url % users["op102"], body={"state": "available"})
    check(r.status == 403, "an operator changed a colleague's state: %r" % r)
    r = admin.request("PUT", url % users["op101"], body={"state": "sleeping"})
    check(r.status == 400 and r.error().get("field") == "state", "unknown state: %r" % r)
    r = admin.request("PUT", url % users["op101"], body={"state": "ringing"})
    check(r.status == 400 and r.error().get("field") == "state", "a platform state: %r" % r)
    r = admin.request("PUT", url % users["op101"], body={"state": "away", "reason": "x" * 64})
    check(r.status == 400 and r.error().get("field") == "reason", "a long reason: %r" % r)
    check(admin.get(DOM + "/agents/%d" % users["op102"]).json["state"] == before,
          "the refused change went through")
    view = admin.get(DOM + "/agents/%d" % users["op101"]).json
    check(view["state"] == "break" and view.get("reason") == "lunch",
          "refused requests changed 101: %r" % view)


def test_feature_codes_from_a_phone(d):
    admin = d.login("admin", DEMO["admin"], "demo.local")
    uid = [u["id"] for u in admin.get(DOM + "/users", query={"limit": 100}).json["items"]
           if u["login"] == "op103"][0]
    phone = demo_phone(d, "op103-codes", "op103", 800)
    try:
        for code, state in (("*53", "available"), ("*52", "break"), ("*51", "logged_out")):
            phone.dial("sip:%s@demo.local" % code)
            check(phone.wait_event("CALL_ESTABLISHED", 10), "%s was not answered" % code)
            check(phone.wait_event("CALL_CLOSED", 15), "%s did not hang up" % code)
            wait_until(lambda: admin.get(DOM + "/agents/%d" % uid).json["state"] == state, 3,
                       0.1, "%s: 103 %s" % (code, state))
    finally:
        phone.stop()


def test_views_and_stream_with_calls(d):
    admin = d.login("admin", DEMO["admin"], "demo.local")
    users = {u["login"]: u["id"] for u in
             admin.get(DOM + "/users", query={"limit": 100}).json["items"]}
    support = [g for g in admin.get(DOM + "/call-groups").json["items"]
               if g["name"] == "Support"][0]
    admin.ok("PATCH", DOM + "/call-groups/%d" % support["id"],
             {"strategy": "linear", "ring_timeout": 20, "wrapup_time": 3, "max_misses": 0,
              "greeting_text": GREETING, "info_url": INFO_URL})
    other = d.tenant_login("other.example", "oadmin", "domain_admin", PW)
    theirs = EventStream(d.http_port, other.cookies, types=["queue.", "agent."])
    ev = EventStream(d.http_port, admin.cookies, types=["queue.", "agent."])
    state_url = DOM + "/agents/%d/state"

    phones = []
    try:
        phones.append(demo_phone(d, "op101", "op101", 800, seconds=90))
        agent = demo_phone(d, "op102", "op102", 1000, auto=True, seconds=90)
        phones.append(agent)
        phones.append(demo_phone(d, "op103", "op103", 1700, seconds=90))
        c1 = demo_phone(d, "c1", "admin", 440, seconds=90)
        c2 = demo_phone(d, "c2", "supervisor", 600, seconds=90)
        phones += [c1, c2]
        for login, state in (("op101", "break"), ("op103", "away"), ("op102", "available")):
            admin.ok("PUT", state_url % users[login], {"state": state})
        wait_until(lambda: group_view(admin)["logged_in"] == 3, 5, 0.1, "three logged in")
        expect_counts(group_view(admin), "before the calls", queue=0, logged_in=3,
                      available=1, inbound=0, outbound=0, wrap_up=0, away=1, campaign=0,
                      waiting=[], **{"break": 1})

        # an agent's state change reaches the stream as the group's new counts
        t0 = time.time()
        admin.ok("PUT", state_url % users["op103"], {"state": "break", "reason": "coffee"})
        e = ev.wait_for(lambda e: stats_of(e) and e["data"]["data"]["break"] == 2, 2)
        took = time.time() - t0
        check(took < 0.2, "queue.stats came %.0f ms after 103's break" % (took * 1000))
        expect_counts(e["data"]["data"], "queue.stats", away=0, available=1, queue=0)
        admin.ok("PUT", state_url % users["op103"], {"state": "away"})

        # caller 1 is offered to 102, with the group's workplace settings
        c1.dial("sip:200@demo.local")
        offer = ev.wait_for(lambda e: e.get("event") == "agent.offer", 10)["data"]["data"]
        check(offer["user_id"] == users["op102"] and offer["queue"] == "Support" and
              offer["queue_id"] == support["id"] and offer["caller"] == "100",
              "offer: %r" % offer)
        check(offer["greeting_text"] == GREETING and offer["info_url"] == INFO_URL,
              "the offer lacks the group's greeting and info URL: %r" % offer)
        uuid1 = offer["call"]
        check(agent.wait_event("CALL_ESTABLISHED", 10), "102 did not answer")
        ev.wait_for(lambda e: stats_of(e) and e["data"]["data"]["inbound"] == 1 and
                    e["data"]["data"]["queue"] == 0, 3)

        # caller 2 waits: its joining is in the counts within 200 ms
        c2.dial("sip:200@demo.local")
        join = ev.wait_for(lambda e: e.get("event") == "queue.join", 10)
        t_join = time.time()
        e = ev.wait_for(lambda e: stats_of(e) and e["data"]["data"]["queue"] == 1, 2)
        lag = max(time.time() - t_join, (e["data"]["ts"] - join["data"]["ts"]) / 1000.0)
        check(lag < 0.2, "queue.stats came %.0f ms after the join" % (lag * 1000))
        uuid2 = join["data"]["data"]["call"]

        time.sleep(2.2)
        me = admin.get(DOM + "/agents/%d" % users["op102"]).json
        check(me["online"] is True and me["state"] == "on_call_in" and me.get("call") == uuid1,
              "102 on the call: %r" % me)
        check(me["time_in_state_s"] >= 2, "102's time in state: %r" % me)
        listed = {a["user_id"]: a for a in admin.get(DOM + "/agents").json["items"]}
        check(listed[users["op101"]]["state"] == "break" and listed[users["op101"]]["online"],
              "101 in the list: %r" % listed[users["op101"]])
        check(listed[users["op103"]]["state"] == "away", "103: %r" % listed[users["op103"]])
        check("call" not in listed[users["op101"]], "101 has a call: %r" % listed[users["op101"]])
        time.sleep(1.1)
        later = admin.get(DOM + "/agents/%d" % users["op102"]).json["time_in_state_s"]
        check(later > me["time_in_state_s"], "time in state does not grow: %r" % later)
        view = group_view(admin)
        expect_counts(view, "with a call and a waiting caller", queue=1, logged_in=3,
                      available=0, inbound=1, outbound=0, wrap_up=0, away=1, campaign=0,
                      **{"break": 1})
        check([w["call"] for w in view["waiting"]] == [uuid2] and
              view["waiting"][0]["wait_s"] >= 2, "the waiting list: %r" % view["waiting"])

        # caller 2 gives up: the queue empties within 200 ms of the abandon
        c2.hangup()
        gone = ev.wait_for(lambda e: e.get("event") == "queue.abandon", 5)
        t_gone = time.time()
        e = ev.wait_for(lambda e: stats_of(e) and e["data"]["data"]["queue"] == 0, 2)
        lag = max(time.time() - t_gone, (e["data"]["ts"] - gone["data"]["ts"]) / 1000.0)
        check(lag < 0.2, "queue.stats came %.0f ms after the abandon" % (lag * 1000))

        # caller 1 ends: 102 wraps up, as the view and the stream show
        c1.hangup()
        ev.wait_for(lambda e: stats_of(e) and e["data"]["data"]["wrap_up"] == 1, 5)
        expect_counts(group_view(admin), "in wrap-up", queue=0, inbound=0, wrap_up=1,
                      available=0)
        ev.wait_for(lambda e: stats_of(e) and e["data"]["data"]["available"] == 1 and
                    e["data"]["data"]["wrap_up"] == 0, 6)
        ev.close()

        # another tenant saw nothing of it: the first event on its stream is its own
        check(theirs.status == 200, "the other tenant's stream: %r" % theirs.status)
        oid = int(d.sql("SELECT id FROM users WHERE login = 'oadmin'")[0][0])
        other.ok("PUT", "/api/v1/domains/other.example/agents/%d/state" % oid,
                 {"state": "available"})
        seen = theirs.next(timeout=3.0)
        check(seen["event"] == "agent.state" and seen["data"]["data"]["user_id"] == oid,
              "another tenant's stream got %r" % seen)
        theirs.close()
    finally:
        for p in phones:
            p.stop()


if __name__ == "__main__":
    run_tests([test_agent_states_over_the_api, test_feature_codes_from_a_phone,
               test_views_and_stream_with_calls], demo=True)
