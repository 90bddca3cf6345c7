#!/usr/bin/python3
"""Routing-rule targets that leave the phones of the domain, with real calls,
and saves the store refuses while calls keep following the version before.

- fax: a fax machine (faxpeer, registered as op101) dials a number whose
  rule sends faxes to op102's box; the fax is a row of op102's box (not the
  domain's) with the pages that were sent;
- external number: a caller dials a number whose rule forwards to an outside
  number; the call leaves through the provider's trunk to a loopback carrier
  phone, which answers and hears the caller's tone;
- a refused save: a rule edited to point at a missing user and a flow edited
  with a key action that does not exist get 400 naming the element, and the
  next call still takes the saved rule and the saved flow.
"""

import os
import time

import faxtools
import routelib
from cwtest import DEMO, wait_until
from routelib import DOM, ProviderPhone, check
from sipua import demo_phone

S = {}
FAX_NUMBER = "74950000011"
OUT_NUMBER = "74950000012"
FLOW_NUMBER = "74950000013"
CARRIER_NUMBER = "89005550101"
CALLER_HZ = 600


def setup(d):
    sa = d.login("sysadmin", DEMO["sysadmin"])
    a = d.login("admin", DEMO["admin"], "demo.local")
    S["a"], S["d"] = a, d
    S["nums"] = {n: sa.ok("POST", DOM + "/numbers", {"number": n}, status=201)["id"]
                 for n in (FAX_NUMBER, OUT_NUMBER, FLOW_NUMBER)}
    S["users"] = {u["login"]: u["id"] for u in a.ok("GET", DOM + "/users")["items"]}
    # the carrier's phone behind the provider's trunk: it answers whatever arrives
    carrier = ProviderPhone(CARRIER_NUMBER, d.sip_port, ip="127.0.0.4", realm="provider.example",
                            auto_answer=True, seconds=300)
    carrier.start()
    S["carrier"] = carrier
    routelib.add_trunk(sa, name="Provider", host="127.0.0.4", port=carrier.sip_listen,
                       realm="provider.example", dial_pattern="sip:(8\\d{10})@.*")
    S["caller"] = demo_phone(d, "caller103", "op103", CALLER_HZ, seconds=300)
    S["op101"] = demo_phone(d, "phone101", "op101", 900, auto=True, seconds=300)


def rule(number, target):
    a = S["a"]
    for x in a.ok("GET", DOM + "/routing-rules", query={"number_id": S["nums"][number]})["items"]:
        a.ok("DELETE", DOM + "/routing-rules/%d" % x["id"])
    return a.ok("POST", DOM + "/routing-rules", {"number_id": S["nums"][number],
                                                  "target": target}, status=201)


def test_fax_target_fills_the_users_box(d):
    setup(d)
    op102 = S["users"]["op102"]
    rule(FAX_NUMBER, {"type": "fax", "user": op102})
    pages = [faxtools.test_page(0), faxtools.test_page(1)]
    doc = faxtools.write_tiff(os.path.join(d.dir, "doc.tiff"), pages)
    peer = faxtools.FaxPeer(d.sip_port, "op101", DEMO["op101"], timeout=45)
    try:
        peer.send(doc, "sip:%s@demo.local" % FAX_NUMBER)
        check(peer.wait_exit(50) == 0, "the sender's fax failed: %r" % peer.events)
    finally:
        peer.stop()
    check(peer.seen("fax")[0]["pages"] == 2, "the sender saw %r" % peer.seen("fax"))
    rows = wait_until(lambda: d.sql("SELECT owner_id, group_id, direction, status, pages, path "
                                    "FROM faxes WHERE status <> 'receiving'"),
                      10, 0.1, "the fax settled")
    owner, group, direction, status, npages, path = rows[0]
    check(len(rows) == 1 and owner is not None and int(owner) == op102 and group is None,
          "the fax is not in op102's box: %r" % rows)
    check((direction, status, int(npages)) == ("in", "received", 2), "fax row %r" % (rows[0],))
    for sent, stored in zip(pages, faxtools.read_tiff(path)):
        faxtools.same_page(sent, stored)
    mine = d.login("op102", DEMO["op102"], "demo.local").ok("GET", "/api/v1/me/faxes")
    check(mine["total"] == 1, "op102's own list shows %r" % mine)


def call_out(number):
    """op103 dials number; the carrier's phone must answer and hear op103's tone."""
    caller, carrier = S["caller"], S["carrier"]
    caller.events.clear()
    carrier.events.clear()
    caller.dial("sip:%s@demo.local" % number)
    e = carrier.wait_event("CALL_ESTABLISHED", 15)
    check(e is not None, "the call did not reach the carrier's phone")
    check(caller.wait_event("CALL_ESTABLISHED", 5) is not None, "the caller was not connected")
    time.sleep(3)
    caller.hangup()
    check(carrier.wait_event("CALL_CLOSED", 8) is not None, "the carrier's call did not end")
    check(caller.wait_event("CALL_CLOSED", 8) is not None, "the caller's call did not end")
    time.sleep(0.3)
    check(carrier.hears(CALLER_HZ, 0.8, -0.3),
          "the carrier did not hear the caller's %d Hz tone" % CALLER_HZ)
    return e


def test_external_target_leaves_through_the_trunk(d):
    rule(OUT_NUMBER, {"type": "external", "number": CARRIER_NUMBER, "timeout": 20})
    e = call_out(OUT_NUMBER)
    check("103" in e.get("peeruri", ""), "the carrier sees the caller as %r" % e)
    line = [x for x in S["d"].log_text().splitlines() if CARRIER_NUMBER in x]
    check(line, "the daemon's log never names %s" % CARRIER_NUMBER)


def test_refused_rule_edit_keeps_the_saved_rule(d):
    a = S["a"]
    saved = rule(OUT_NUMBER, {"type": "external", "number": CARRIER_NUMBER, "timeout": 20})
    r = a.patch(DOM + "/routing-rules/%d" % saved["id"],
                {"target": {"type": "user", "id": 999999}})
    check(r.status == 400 and r.error()["path"] == "target.id", "bad target: %r" % r)
    r = a.patch(DOM + "/routing-rules/%d" % saved["id"],
                {"target": {"type": "external", "number": "call-me"}})
    check(r.status == 400 and r.error()["path"] == "target.number", "bad number: %r" % r)
    now = a.ok("GET", DOM + "/routing-rules/%d" % saved["id"])
    check(now["target"] == saved["target"], "the refused edit changed the rule: %r" % now)
    call_out(OUT_NUMBER)


def flow_call_reaches_op101():
    """op103 calls the flow's number and presses 1: op101 must answer."""
    caller, op101 = S["caller"], S["op101"]
    caller.events.clear()
    op101.events.clear()
    caller.dial("sip:%s@demo.local" % FLOW_NUMBER)
    check(caller.wait_event("CALL_ESTABLISHED", 10) is not None, "the flow did not answer")
    time.sleep(1.5)
    caller.dtmf("1")
    check(op101.wait_event("CALL_ESTABLISHED", 15) is not None, "key 1 did not reach op101")
    caller.hangup()
    check(op101.wait_event("CALL_CLOSED", 8) is not None, "op101's call did not end")
    check(caller.wait_event("CALL_CLOSED", 8) is not None, "the caller's call did not end")
    time.sleep(0.3)


def test_refused_flow_edit_keeps_the_saved_flow(d):
    a = S["a"]
    good = {"language": "en", "menus": {"main": {
        "prompt": ["welcome", "press_1"],
        "keys": {"1": {"action": "forward", "target": {"type": "user", "id": "101"}}},
        "default": {"action": "repeat"}, "timeout": {"action": "repeat"}}}}
    flow = a.ok("POST", DOM + "/ivr-flows", {"name": "Front desk", "flow": good}, status=201)
    rule(FLOW_NUMBER, {"type": "ivr", "id": flow["id"]})
    flow_call_reaches_op101()
    bad = {"language": "en", "menus": {"main": {
        "prompt": ["welcome"],
        "keys": {"1": {"action": "teleport"}},
        "default": {"action": "repeat"}, "timeout": {"action": "repeat"}}}}
    r = a.patch(DOM + "/ivr-flows/%d" % flow["id"], {"flow": bad})
    check(r.status == 400 and r.error()["path"] == "flow.menus.main.keys.1.action",
          "a flow with an unknown action: %r" % r)
    check(a.ok("GET", DOM + "/ivr-flows/%d" % flow["id"])["flow"] == good,
          "the refused edit changed the flow")
    flow_call_reaches_op101()


def test_cleanup(d):
    for p in (S.get("carrier"), S.get("caller"), S.get("op101")):
        if p:
            p.cleanup()


if __name__ == "__main__":
    routelib.run([test_fax_target_fills_the_users_box,
                  test_external_target_leaves_through_the_trunk,
                  test_refused_rule_edit_keeps_the_saved_rule,
                  test_refused_flow_edit_keeps_the_saved_flow, test_cleanup], demo=True)
