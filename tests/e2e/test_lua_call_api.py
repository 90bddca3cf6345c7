#!/usr/bin/python3
"""The Lua call API from a scripted flow, with real phones.

Each case is a flow file written into the daemon's flows_dir (a folder of
the test) and an IVR flow on an extension that runs it. What the script
learns is sent out with cw.emit as a custom.* event, read from the API's
event stream; what the phones hear is measured on their recordings
(op101 calls and says 600 Hz, op102 says 900 Hz, op103 1400 Hz).

- call.vars and call:on_hangup: the digits a caller typed, kept in
  call.vars, reach the on_hangup handler after the caller hangs up, and each
  call has its own;
- call:ring() alone: the caller's phone rings, is never answered, and
  hears busy when the script hangs up with "busy";
- call:bridge returns "rejected" (the callee declines with 603) and
  "cancelled" (the caller gives up while the callee rings) to the script;
- call:hold() and call:unhold() during a conversation: the callee hears
  music instead of the caller while held, and the caller again afterwards;
- call:transfer(): the caller ends up talking to op103, op102 is released;
- call:fax_send(): a fax machine calling the flow receives the document.
"""

import os
import shutil
import tempfile
import time

import audio
import faxtools
from cwtest import DEMO, EventStream, TestFailure, check, run_tests, wait_until
from sipua import demo_phone

DOM = "/api/v1/domains/demo.local"
FLOWS = tempfile.mkdtemp(prefix="cwflows-")
S = {}

FLOW_FILES = {
    "vars_hangup": """
return function(call, ivr)
  local dom, uuid = call.domain_id, call.uuid
  call:answer()
  call:on_hangup(function(gone)
    cw.emit("custom.call_done", { uuid = gone, same = gone == uuid,
                                  order = call.vars.order or "" }, dom)
  end)
  call:play("en/enter_number")
  call.vars.order = call:read_digits(3, 10000, 3000, "#")
  call:moh("default")
  call:sleep(60000)
end
""",
    "ring_only": """
return function(call, ivr)
  call:ring()
  call:sleep(3000)
  call:hangup("busy")
end
""",
    "bridge_report": """
return function(call, ivr)
  local dom, uuid = call.domain_id, call.uuid
  local outcome = call:bridge(ivr.flow.target, { timeout = 20 })
  cw.emit("custom.bridge_outcome", { uuid = uuid, outcome = outcome,
                                     alive = call.alive }, dom)
  if call.alive then call:hangup(outcome == "rejected" and "rejected" or "normal") end
end
""",
    "hold_line": """
return function(call, ivr)
  local dom = call.domain_id
  local function report(what, ok, why)
    cw.emit("custom.hold", { what = what, ok = ok == true, why = why or "" }, dom)
  end
  call:answer()
  -- on hold 4 s after the flow started, back 4 s later; before any conversation: refused
  report("early", call:hold())
  cw.after(4000, function() report("hold", call:hold()) end)
  cw.after(8000, function() report("unhold", call:unhold()) end)
  call:bridge("102", { timeout = 20 })
end
""",
    "transfer_line": """
return function(call, ivr)
  local dom = call.domain_id
  cw.after(4000, function()
    local ok, why = call:transfer("103")
    cw.emit("custom.transfer", { ok = ok == true, why = why or "" }, dom)
  end)
  local outcome = call:bridge("102", { timeout = 20 })
  cw.emit("custom.transfer_bridge", { outcome = outcome }, dom)
end
""",
    "fax_on_demand": """
return function(call, ivr)
  local dom = call.domain_id
  local ok, fax = call:fax_send(ivr.flow.document)
  cw.emit("custom.fax_sent", { ok = ok == true, pages = fax and fax.pages or 0,
                               status = fax and fax.status or "" }, dom)
end
""",
}
EXTENSIONS = {"vars_hangup": "521", "ring_only": "522", "bridge_report": "523",
              "hold_line": "524", "transfer_line": "525", "fax_on_demand": "526"}


def flow(name, settings=None):
    S["a"].ok("POST", DOM + "/ivr-flows", {"name": name, "extension": EXTENSIONS[name],
                                            "script": name, "flow": settings or {}},
              status=201)
    return "sip:%s@demo.local" % EXTENSIONS[name]


def events():
    return EventStream(S["d"].http_port, cookies=S["a"].cookies, types=["custom."], timeout=30)


def clear(*phones):
    for p in phones:
        p.events.clear()


def closed(*phones):
    for p in phones:
        check(p.wait_event("CALL_CLOSED", 10) is not None, "%s's call did not end" % p.name)
    time.sleep(0.3)


def setup(d):
    S["d"] = d
    S["a"] = d.login("admin", DEMO["admin"], "demo.local")
    S["caller"] = demo_phone(d, "caller101", "op101", 600, seconds=300)
    S["op102"] = demo_phone(d, "phone102", "op102", 900, auto=True, seconds=300)
    S["op103"] = demo_phone(d, "phone103", "op103", 1400, seconds=300)


def test_vars_reach_on_hangup(d):
    setup(d)
    uri = flow("vars_hangup")
    caller = S["caller"]
    ev = events()
    try:
        for order in ("123", "456"):
            clear(caller)
            caller.dial(uri)
            check(caller.wait_event("CALL_ESTABLISHED", 10) is not None, "the flow did not answer")
            time.sleep(1.5)
            caller.dtmf(order)
            time.sleep(1.5)
            caller.hangup()
            closed(caller)
            e = ev.wait_for(lambda x: x["event"] == "custom.call_done", 10)["data"]["data"]
            check(e["order"] == order and e["same"] is True,
                  "on_hangup saw %r after the caller typed %s" % (e, order))
            cdr = wait_until(lambda: S["a"].get(DOM + "/cdrs/" + e["uuid"]).status == 200,
                             10, 0.2, "the CDR of the call on_hangup named (%s)" % e["uuid"])
            check(cdr, "no CDR")
    finally:
        ev.close()


def test_ring_alone_then_busy(d):
    caller = S["caller"]
    clear(caller)
    t0 = time.monotonic()
    caller.dial(flow("ring_only"))
    check(caller.wait_event("CALL_RINGING", 5) is not None, "the caller's phone does not ring")
    e = caller.wait_event("CALL_CLOSED", 10)
    took = time.monotonic() - t0
    check(e is not None and "486" in e.get("param", ""), "expected busy after ringing: %r" % e)
    check(not caller.seen("CALL_ESTABLISHED"), "call:ring() answered the call")
    check(2.5 <= took <= 8, "the call ended %.1f s after dialling (the script rings 3 s)" % took)
    time.sleep(0.3)


def test_bridge_returns_rejected_and_cancelled(d):
    caller, op103 = S["caller"], S["op103"]
    # rejected: the supervisor's phone (a fax machine here) declines with 603
    decliner = faxtools.FaxPeer(d.sip_port, "supervisor", DEMO["supervisor"], timeout=40)
    decliner.reject(603)
    ev = events()
    try:
        decliner.wait_for("registered", 10)
        uri = flow("bridge_report", {"target": "110"})
        clear(caller)
        caller.dial(uri)
        e = ev.wait_for(lambda x: x["event"] == "custom.bridge_outcome", 15)["data"]["data"]
        check(e["outcome"] == "rejected" and e["alive"] is True, "603 came back as %r" % e)
        check(decliner.wait_exit(10) == 0 and decliner.seen("rejected"), "nobody declined")
        closed(caller)
        # cancelled: 103 rings, the caller hangs up before it answers
        S["a"].ok("PATCH", DOM + "/ivr-flows/%d" % flow_id("bridge_report"),
                  {"flow": {"target": "103"}})
        clear(caller, op103)
        caller.dial(uri)
        check(op103.wait_event("CALL_INCOMING", 10) is not None, "103 did not ring")
        time.sleep(1)
        caller.hangup()
        e = ev.wait_for(lambda x: x["event"] == "custom.bridge_outcome", 15)["data"]["data"]
        check(e["outcome"] == "cancelled" and e["alive"] is False,
              "giving up while 103 rang came back as %r" % e)
        check(op103.wait_event("CALL_CLOSED", 10) is not None, "103 kept ringing")
        check(not op103.seen("CALL_ESTABLISHED"), "103 was connected")
        time.sleep(0.3)
    finally:
        ev.close()
        decliner.stop()


def flow_id(name):
    items = S["a"].ok("GET", DOM + "/ivr-flows", query={"q": name})["items"]
    return [f["id"] for f in items if f.get("script") == name][0]


def test_hold_and_unhold(d):
    caller, op102 = S["caller"], S["op102"]
    ev = events()
    try:
        clear(caller, op102)
        caller.dial(flow("hold_line"))
        check(op102.wait_event("CALL_ESTABLISHED", 10) is not None, "102 did not answer")
        reports = {}
        for _ in range(3):
            e = ev.wait_for(lambda x: x["event"] == "custom.hold", 15)["data"]["data"]
            reports[e["what"]] = e
        check(reports["early"]["ok"] is False and reports["early"]["why"] == "not_in_conversation",
              "hold before a conversation: %r" % reports["early"])
        check(reports["hold"]["ok"] and reports["unhold"]["ok"], "hold/unhold: %r" % reports)
        time.sleep(4)
        caller.hangup()
        closed(caller, op102)
    finally:
        ev.close()
    # 102 answered about half a second after the flow started: held from ~3.5 s to ~7.5 s
    rate, before = op102.heard(0.5, 3.0)
    check(audio.has_tone(before, rate, 600, min_seconds=1.5), "102 did not hear the caller first")
    rate, held = op102.heard(4.5, 7.0)
    check(audio.tone_share(held, rate, 600) < 0.2, "102 heard the caller while on hold")
    check(audio.dbfs(held) > -45, "102 heard silence on hold, not music")
    check(op102.hears(600, 9.0, -0.5), "102 did not hear the caller again after unhold")
    rate, held = caller.heard(4.5, 7.0)
    check(audio.tone_share(held, rate, 900) < 0.2, "the caller heard 102 while on hold")


def test_transfer_to_another_phone(d):
    caller, op102, op103 = S["caller"], S["op102"], S["op103"]
    ev = events()
    try:
        clear(caller, op102, op103)
        caller.dial(flow("transfer_line"))
        check(op102.wait_event("CALL_ESTABLISHED", 10) is not None, "102 did not answer")
        check(op103.wait_event("CALL_INCOMING", 10) is not None, "the transfer did not ring 103")
        e = ev.wait_for(lambda x: x["event"] == "custom.transfer", 5)["data"]["data"]
        check(e["ok"] is True, "call:transfer returned %r" % e)
        op103.accept()
        check(op103.wait_event("CALL_ESTABLISHED", 10) is not None, "103 was not connected")
        check(op102.wait_event("CALL_CLOSED", 10) is not None, "102 was not released")
        time.sleep(3)
        caller.hangup()
        closed(caller, op103)
    finally:
        ev.close()
    check(op102.hears(600, 0.5, -0.5), "102 did not hear the caller before the transfer")
    check(caller.hears(1400, -2.8, -0.3), "the caller does not hear 103 after the transfer")
    check(op103.hears(600, 0.5, -0.3), "103 does not hear the caller")


def test_fax_send_to_a_calling_fax_machine(d):
    pages = [faxtools.test_page(0), faxtools.test_page(1)]
    doc = faxtools.write_tiff(os.path.join(d.dir, "price-list.tiff"), pages)
    uri = flow("fax_on_demand", {"document": doc})
    got = os.path.join(d.dir, "fetched.tiff")
    ev = events()
    peer = faxtools.FaxPeer(d.sip_port, "op103", DEMO["op103"], timeout=45)
    try:
        peer.fetch(got, uri)
        check(peer.wait_exit(50) == 0, "the fax machine did not receive: %r" % peer.events)
        e = ev.wait_for(lambda x: x["event"] == "custom.fax_sent", 10)["data"]["data"]
    finally:
        peer.stop()
        ev.close()
    check(e["ok"] is True and e["pages"] == 2, "call:fax_send returned %r" % e)
    received = faxtools.read_tiff(got)
    check(len(received) == 2, "the fax machine got %d pages" % len(received))
    for sent, p in zip(pages, received):
        faxtools.same_page(sent, p)


def test_cleanup(d):
    for p in ("caller", "op102", "op103"):
        if p in S:
            S[p].cleanup()


if __name__ == "__main__":
    for name, code in FLOW_FILES.items():
        with open(os.path.join(FLOWS, name + ".lua"), "w") as f:
            f.write(code.lstrip())
    try:
        run_tests([test_vars_reach_on_hangup, test_ring_alone_then_busy,
                   test_bridge_returns_rejected_and_cancelled, test_hold_and_unhold,
                   test_transfer_to_another_phone, test_fax_send_to_a_calling_fax_machine,
                   test_cleanup], demo=True, sets={"flows_dir": FLOWS})
    finally:
        shutil.rmtree(FLOWS, ignore_errors=True)
