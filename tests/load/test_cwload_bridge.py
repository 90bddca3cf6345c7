"""cwload's bridge scenario, short: callers dial registered B endpoints
through the platform; both ends send a tone of their own.

cwload must report every call completed, and each side hearing the other's
tone (400 Hz from A, 1000 Hz from B), so the platform relayed both ways; the
call history must show each call answered by a B user.
"""
from cwtest import TestFailure, free_udp_range, run_tests, wait_until
from loadkit import cwload, login_admin, make_users

CALLS, B = 18, 10


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def test_cwload_bridge_smoke(d):
    api = login_admin(d)
    make_users(api, "pa", 7201, 4, groups="Bridge")
    make_users(api, "pb", 7301, B, groups="Bridge")
    r = cwload("bridge", d, ["--rate", "3", "--calls", str(CALLS), "--hold", "uniform:2.5,3",
                             "--caller", "pa%d:Load-pw-%d", "--callers", "7201-7204",
                             "--callee", "pb%d:Load-pw-%d", "--callees", "7301-%d" % (7300 + B),
                             "--setup-timeout", "8"], timeout=120)
    f = r.figures
    check(r.code == 0 and f, "cwload failed: %r" % r)
    calls = f["calls"]
    check(calls["attempted"] == CALLS and calls["completed"] == CALLS and calls["failed"] == 0,
          "calls: %r" % r)
    check(f["agent_calls"]["answered"] == CALLS, "B answered: %r" % f["agent_calls"])
    for side in ("caller", "agent"):
        a = f["audio"][side]
        check(a["judged"] == CALLS and a["no_audio"] == 0 and a["no_tone"] == 0,
              "%s audio: %r" % (side, a))
    check(f["rtp"]["loss_pct"] < 1.0, "loss: %r" % f["rtp"])
    check(f["failures"] == {}, "failures: %r" % f["failures"])

    def answered():
        rows = d.sql("SELECT COUNT(*) FROM cdrs WHERE b_number BETWEEN '7301' AND '%d' "
                     "AND answer_ms IS NOT NULL" % (7300 + B))
        return int(rows[0][0]) == CALLS
    wait_until(answered, 10, 0.2, "%d bridged calls in the history" % CALLS)


if __name__ == "__main__":
    base = free_udp_range(256)
    run_tests([test_cwload_bridge_smoke], demo=True,
              sets={"media.rtp_min": str(base), "media.rtp_max": str(base + 255)})
