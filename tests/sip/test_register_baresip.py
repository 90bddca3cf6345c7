#!/usr/bin/python3
"""baresip registers with the right password only.

Three baresip phones register to demo.local's registrar: op101 with the
right password (OK, listed by the registrations API with baresip's user
agent), op102 with a wrong one, and op103 under a domain the platform does
not serve. The last two are refused: baresip reports the failure with the
status (401/403, 404/403), its account is not registered, and neither
appears in the registrations API or the store.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cwtest import DEMO, DEMO_DOMAIN, check, run_tests, wait_until  # noqa: E402
from sipua import Phone  # noqa: E402


def failure_status(phone, timeout=15):
    """The status of baresip's registration failure, from its events or its log."""
    end = time.time() + timeout
    while time.time() < end:
        e = phone.wait_event("REGISTER_FAIL", 0.5)
        m = re.search(r"\b([3-6]\d\d)\b", (e or {}).get("param", "")) if e else None
        if m:
            return int(m.group(1))
        m = re.search(r"reg: .*?\b([3-6]\d\d)\b", phone.output())
        if m:
            return int(m.group(1))
    return None


def test_wrong_password_and_unknown_domain_are_refused(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    good = Phone("good", "op101", DEMO["op101"], d.sip_port)
    wrong = Phone("wrong", "op102", "not-the-password", d.sip_port)
    stray = Phone("stray", "op103", DEMO["op103"], d.sip_port, domain="nowhere.example")
    try:
        for p in (good, wrong, stray):
            p.start()
        check(good.wait_registered(15), "op101 with the right password did not register")
        status = failure_status(wrong)
        check(status in (401, 403), "a wrong password: baresip reports %r" % status)
        status = failure_status(stray)
        check(status in (403, 404), "an unknown domain: baresip reports %r" % status)
        check(not wrong.registered() and not stray.registered(),
              "a refused phone's account shows registered")

        def listed():
            items = admin.get("/api/v1/domains/%s/registrations" % DEMO_DOMAIN).json["items"]
            return items if any(i.get("login") == "op101" for i in items) else None
        items = wait_until(listed, 5, 0.2, "op101 in the registrations API")
        check([i["login"] for i in items] == ["op101"],
              "registrations list: %r" % [i.get("login") for i in items])
        check("baresip" in items[0].get("user_agent", "").lower(),
              "user agent recorded: %r" % items[0])
        rows = d.registrations()
        check([r[0] for r in rows] == ["op101"], "stored bindings: %r" % rows)
    finally:
        for p in (good, wrong, stray):
            p.stop()


if __name__ == "__main__":
    run_tests([test_wrong_password_and_unknown_domain_are_refused], demo=True,
              sets={"sip.keepalive": "0"})
