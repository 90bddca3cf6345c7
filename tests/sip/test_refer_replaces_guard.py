#!/usr/bin/python3
"""A REFER with Replaces may only name the transferor's own dialog.

Three live calls, every phone a Net::SIP softphone that sends its own tone:
  demo.local:  A (op102) calls B (op101);  Z (op103) calls A
  other.local: X (x1) calls Y (x2)
B, in its call with A, sends REFER with Replaces naming
  - X's dialog, exactly (Call-ID and both tags): another tenant's call -> 403;
  - Z's dialog with A, exactly: a call of the same tenant B is no party to -> 403;
  - X's Call-ID with a guessed tag -> 481 (no such dialog);
  - only a Call-ID, no tags -> the REFER itself is refused with 400.
Each refusal reaches B as the NOTIFY's sipfrag status, and nothing changes:
no phone gets a BYE, the tenants' call lists still show the same parties,
and Y and A still hear X and Z.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cwtest import DEMO, DEMO_DOMAIN, check, run_tests  # noqa: E402
from netsip import NetSipPhone  # noqa: E402

OTHER = "other.local"
A_HZ, B_HZ, Z_HZ, X_HZ, Y_HZ = 440, 1000, 1300, 700, 1700


def parties(client, domain):
    calls = client.get("/api/v1/domains/%s/calls" % domain).json["items"]
    return sorted((c["from"], c["b_number"]) for c in calls)


def tail_hears(phone, name, hz):
    """The last second of what call `name` received is mostly the tone hz."""
    rate, s = phone.heard(name)
    end = len(s) / rate
    return end > 1.5 and phone.hears(name, hz, end - 1.2, end - 0.2)


def test_replaces_names_only_own_dialogs(d):
    d.add_user("x1", "201", "X1-secret-1", domain=OTHER)
    d.add_user("x2", "202", "X2-secret-1", domain=OTHER)
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    sysadmin = d.login("sysadmin", DEMO["sysadmin"])
    phones = []

    def phone(name, user, password, hz, domain=DEMO_DOMAIN):
        p = NetSipPhone(name, user, password, d.sip_port, d.dir, send_hz=hz, domain=domain)
        phones.append(p.start())
        check(p.register(), "%s (%s) did not register" % (name, user))
        return p

    try:
        a = phone("a", "op102", DEMO["op102"], A_HZ)
        b = phone("b", "op101", DEMO["op101"], B_HZ)
        z = phone("z", "op103", DEMO["op103"], Z_HZ)
        x = phone("x", "x1", "X1-secret-1", X_HZ, OTHER)
        y = phone("y", "x2", "X2-secret-1", Y_HZ, OTHER)

        x.call("out1", "sip:202@%s" % OTHER)
        check(x.expect("answered", "out1"), "Y did not answer X")
        xd = x.expect("dialog", "out1")
        check(xd and len(xd) == 5, "X reports no dialog: %r" % xd)
        x_cid, x_tag, x_ours = xd[2], xd[3], xd[4]  # X's tag; the platform's tag

        a.call("out1", "sip:101@%s" % DEMO_DOMAIN)
        check(a.expect("answered", "out1"), "B did not answer A")
        check(b.expect("established", "in1"), "B's call from A is not up")
        z.call("out1", "sip:102@%s" % DEMO_DOMAIN)
        check(z.expect("answered", "out1"), "A did not answer Z")
        zd = z.expect("dialog", "out1")
        check(zd and len(zd) == 5, "Z reports no dialog: %r" % zd)
        time.sleep(1.0)
        demo_before = parties(admin, DEMO_DOMAIN)
        other_before = parties(sysadmin, OTHER)
        check(demo_before == [("102", "101"), ("103", "102")],
              "demo calls before: %r" % demo_before)
        check(other_before == [("201", "202")], "other.local calls before: %r" % other_before)

        # RFC 3891: to-tag is the replaced dialog's tag at its recipient (us), from-tag X's
        b.refer("in1", "sip:202@%s" % OTHER, dialog=(x_cid, x_ours, x_tag))
        check(b.expect("refer", "in1", "202"), "the REFER was not accepted for processing")
        check(b.expect("notify", "in1", "403"), "another tenant's dialog: no NOTIFY 403")

        b.refer("in1", "sip:102@%s" % DEMO_DOMAIN, dialog=(zd[2], zd[4], zd[3]))
        check(b.expect("refer", "in1", "202"), "the second REFER was not accepted")
        check(b.expect("notify", "in1", "403"), "a dialog B is no party to: no NOTIFY 403")

        b.refer("in1", "sip:202@%s" % OTHER, dialog=(x_cid, x_ours, "guessed1"))
        check(b.expect("refer", "in1", "202"), "the third REFER was not accepted")
        check(b.expect("notify", "in1", "481"), "a guessed tag: no NOTIFY 481")

        b.refer("in1", "sip:202@%s" % OTHER, replaces=x_cid + ";early-only")
        check(b.expect("refer", "in1", "400"), "a Replaces without tags is not refused with 400")

        time.sleep(1.5)
        for p, call in ((x, "out1"), (y, "in1"), (a, "out1"), (a, "in1"), (b, "in1"),
                        (z, "out1")):
            check(p.expect("closed", call, timeout=0.1) is None,
                  "%s's call %s was ended by a refused REFER" % (p.name, call))
        check(parties(admin, DEMO_DOMAIN) == demo_before,
              "demo calls changed: %r" % parties(admin, DEMO_DOMAIN))
        check(parties(sysadmin, OTHER) == other_before,
              "other.local calls changed: %r" % parties(sysadmin, OTHER))
        check(tail_hears(y, "in1", X_HZ), "Y no longer hears X")
        check(tail_hears(x, "out1", Y_HZ), "X no longer hears Y")
        check(tail_hears(a, "in1", Z_HZ), "A no longer hears Z")
        check(tail_hears(b, "in1", A_HZ), "B no longer hears A")
    finally:
        for p in phones:
            p.stop()


if __name__ == "__main__":
    run_tests([test_replaces_names_only_own_dialogs], demo=True)
