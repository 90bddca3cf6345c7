"""cwload's queue scenario, short: callers dial a queue served by agent
endpoints that cwload registers and logs in itself (feature code *50).

Each caller is answered into the queue, an agent's phone rings at once and
answers, the caller hears the agent's tone and the agent the caller's.
cwload must report no failed call on either side, and the time from the
caller's answer to the agent's INVITE; the platform's call history must
show every call answered by one of the agents.
"""
from cwtest import TestFailure, free_udp_range, run_tests, wait_until
from loadkit import cwload, login_admin, make_users, set_queue

AGENTS, CALLS = 8, 16


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def test_cwload_queue_smoke(d):
    api = login_admin(d)
    agents = make_users(api, "ag", 7001, AGENTS, groups="Load")
    make_users(api, "cl", 7101, 4, groups="Callers")
    for uid in agents.values():
        api.ok("PATCH", "/api/v1/domains/demo.local/users/%d" % uid,
               {"role": "operator", "is_operator": True})
    q = set_queue(api, "Load", strategy="longest_idle", wrapup_time=0)

    r = cwload("queue", d, ["--to", q["extension"], "--rate", "2.5", "--calls", str(CALLS),
                            "--hold", "fixed:3", "--caller", "cl%d:Load-pw-%d",
                            "--callers", "7101-7104", "--callee", "ag%d:Load-pw-%d",
                            "--callees", "7001-%d" % (7000 + AGENTS), "--login-code", "*50",
                            "--setup-timeout", "8"], timeout=120)
    f = r.figures
    check(r.code == 0 and f, "cwload failed: %r" % r)
    check(f["registrations"]["ok"] == AGENTS, "agents registered: %r" % f["registrations"])
    calls = f["calls"]
    check(calls["completed"] == CALLS and calls["failed"] == 0, "calls: %r" % r)
    check(f["agent_calls"]["offered"] == CALLS and f["agent_calls"]["answered"] == CALLS,
          "agent calls: %r" % f["agent_calls"])
    for side in ("caller", "agent"):
        a = f["audio"][side]
        check(a["judged"] == CALLS and a["no_audio"] == 0 and a["no_tone"] == 0,
              "%s audio: %r" % (side, a))
    # every caller found an agent free: the offer was timed for (nearly) all
    check(f["offer_ms"]["n"] >= CALLS - 2 and f["offer_ms"]["p99"] < 1000,
          "offer times: %r" % f["offer_ms"])
    check(f["failures"] == {}, "failures: %r" % f["failures"])

    def answered():
        rows = d.sql("SELECT COUNT(*) FROM cdrs WHERE queue_id = %d AND agent_id IN (%s)"
                     % (q["id"], ",".join(str(i) for i in agents.values())))
        return int(rows[0][0]) == CALLS
    wait_until(answered, 10, 0.2, "%d queue calls answered by the agents in the history" % CALLS)


if __name__ == "__main__":
    base = free_udp_range(256)
    run_tests([test_cwload_queue_smoke], demo=True,
              sets={"media.rtp_min": str(base), "media.rtp_max": str(base + 255)})
