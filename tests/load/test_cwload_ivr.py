"""cwload's ivr scenario, short: callers dial the demo IVR (500), hear its
prompts, press 1 by RFC 4733 after the welcome starts, hold and hang up.

cwload must report every call completed with audio heard and a digit sent;
the platform's call history must show that the digit arrived (each call
reached the Support queue, which only the key 1 leads to).
"""

from cwtest import TestFailure, free_udp_range, run_tests, wait_until
from loadkit import cwload

CALLS = 24

def check(cond, what):
    if not cond:
        raise TestFailure(what)

def test_cwload_ivr_smoke(d):
    r = cwload("ivr", d, ["--to", "500", "--rate", "8", "--calls", str(CALLS),
                          "--hold", "uniform:6.5,7.5", "--dtmf", "1", "--dtmf-delay", "1200",
                          "--setup-timeout", "8"], timeout=120)
    f = r.figures
    check(r.code == 0 and f, "cwload failed: %r" % r)
    calls = f["calls"]
    check(calls["attempted"] == CALLS and calls["completed"] == CALLS and calls["failed"] == 0,
          "calls: %r" % r)
    check(f["setup_ms"]["n"] == CALLS and f["setup_ms"]["p99"] < 2000, "setup: %r" % f["setup_ms"])
    caller = f["audio"]["caller"]
    check(caller["judged"] == CALLS and caller["no_audio"] == 0, "audio: %r" % caller)
    check(f["rtp"]["dtmf_digits"] == CALLS, "digits sent: %r" % f["rtp"])
    # about 7 s of 50 packets a second each, nearly all of them
    check(f["rtp"]["rx_packets"] > CALLS * 6 * 50, "packets received: %r" % f["rtp"])
    check(f["rtp"]["loss_pct"] < 1.0, "loss: %r" % f["rtp"])
    check(f["failures"] == {}, "failures: %r" % f["failures"])

    # the platform saw the digit: every call went on to the queue
    def queued():
        n = d.sql("SELECT COUNT(*) FROM cdrs WHERE dialed = '500' AND states LIKE '%queued%'")
        return int(n[0][0]) == CALLS
    wait_until(queued, 10, 0.2, "%d calls of the IVR in the call history, queued" % CALLS)

if __name__ == "__main__":
    base = free_udp_range(256)
    run_tests([test_cwload_ivr_smoke], demo=True,
              sets={"media.rtp_min": str(base), "media.rtp_max": str(base + 255)})
