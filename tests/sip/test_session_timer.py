#!/usr/bin/python3
"""Session timers (RFC 4028): a session nobody refreshes is torn down.

With sip.session_timer and sip.session_min_se at 10 s, a raw SIP caller
(op101) asks for Session-Expires 10 with itself as the refresher and calls
op102 (baresip, answers by itself). It then says nothing: before the
interval is over the platform sends it BYE (Reason: session timeout),
op102's phone gets BYE too and the call record ends. A second call whose caller refreshes with UPDATE
every 4 s is still up after three intervals (op102's leg, to a phone
without UPDATE, is not refreshed with one), and ends when the caller hangs
up.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sipraw  # noqa: E402
from cwtest import DEMO, DEMO_DOMAIN, check, run_tests, wait_until  # noqa: E402
from sipua import demo_phone  # noqa: E402

TIMER = ["Supported: timer", "Session-Expires: 10;refresher=uac", "Min-SE: 10"]


def call(a):
    r = a.invite("sip:102@%s" % DEMO_DOMAIN, "op101", DEMO_DOMAIN, DEMO["op101"],
                 sipraw.sdp(a.local[1] + 2), TIMER)
    check(r is not None and r.status == 200, "the call is not answered: %s" % (r and r.status))
    a.ack(r)
    se = r.get("session-expires") or ""
    check(se.split(";")[0].strip() == "10" and "refresher=uac" in se,
          "the answer does not keep our session interval: %r" % se)
    return r


def test_unrefreshed_session_ends(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    b = demo_phone(d, "b", "op102", 1000, auto=True)
    a = sipraw.Client(d.sip_port)
    try:
        t0 = time.monotonic()
        t_ms = int(time.time() * 1000)
        call(a)
        check(b.wait_event("CALL_ESTABLISHED", 5), "op102's phone did not answer")
        bye = a.wait_request("BYE", timeout=20)
        took = time.monotonic() - t0
        check(bye is not None, "no BYE to the caller that stopped refreshing")
        check(5 <= took <= 14, "the BYE came %.1f s into a 10 s session" % took)
        check("session" in (bye.get("reason") or "").lower(), "the BYE gives no session timeout"
              " reason: %r" % bye.get("reason"))
        check(b.wait_event("CALL_CLOSED", 5), "op102's phone did not get BYE")

        def record():
            items = admin.get("/api/v1/domains/%s/cdrs" % DEMO_DOMAIN).json["items"]
            return [c for c in items if c["start_ms"] >= t_ms] or None
        row = wait_until(record, 10, 0.2, "the call record")[0]
        check(row["answer_ms"] and row["end_ms"] - row["answer_ms"] < 14000,
              "the record does not end with the session: %r" % row)
        check(admin.get("/api/v1/domains/%s/calls" % DEMO_DOMAIN).json["items"] == [],
              "the call is still live")

        # refreshed by UPDATE: it lives on
        r = call(a)
        check(b.wait_event("CALL_ESTABLISHED", 5), "op102's phone did not answer again")
        dlg = sipraw.Dialog.from_uac(a, r)
        for _ in range(8):
            time.sleep(4)
            dlg.request("UPDATE", TIMER[1:2])
            u = a.final(5)
            check(u is not None and u.status == 200, "a refresh UPDATE was not answered 200")
        check(a.wait_request("BYE", timeout=0.2) is None, "a refreshed session was torn down")
        check(len(admin.get("/api/v1/domains/%s/calls" % DEMO_DOMAIN).json["items"]) == 1,
              "the refreshed call is not live")
        dlg.request("BYE")
        check(a.final(5) is not None, "our BYE was not answered")
        check(b.wait_event("CALL_CLOSED", 5), "op102's phone did not get BYE at the end")
    finally:
        b.stop()
        a.close()


if __name__ == "__main__":
    run_tests([test_unrefreshed_session_ends], demo=True,
              sets={"sip.session_timer": "10", "sip.session_min_se": "10", "sip.keepalive": "0"})
