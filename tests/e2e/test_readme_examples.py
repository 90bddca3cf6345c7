#!/usr/bin/python3
"""Every example of scripts/README.md's call API runs, as the README says to
run it: saved as a flow file (the first line names it, and its flow JSON),
an IVR flow with that script on an extension, and a real call to it.

What each example does is asserted where it shows: a recorded line records
the call and puts the caller through to 102; the account check reads the
digits into the call's protocol and queues the caller in Support (op102
answers); the town hall takes the PIN and seats the caller muted, and #
leaves; the fax line files a fax in Support's box; the concierge parks
one caller and lets another take the call from the slot; fax on demand
sends the price list on 1. An example without a scenario here is still
called, and its script must not fail.
"""

import json
import os
import re
import shutil
import tempfile
import time

import audio
import faxtools
from cwtest import BUILD, DEMO, SOURCE, EventStream, check, run_tests, wait_until
from sipua import demo_phone

DOM = "/api/v1/domains/demo.local"
FLOWS = tempfile.mkdtemp(prefix="cwflows-")
S = {}


def examples():
    """[(name, flow settings, code)] of the README's call API part, in order."""
    with open(os.path.join(SOURCE, "scripts", "README.md"), encoding="utf-8") as f:
        text = f.read()
    out = []
    for code in re.findall(r"```lua\n(.*?)```", text[text.index("## The call API"):], re.S):
        m = re.match(r"-- ivr-flows/([a-z0-9_]+)\.lua(?:\s+flow: (\{.*\}))?\n", code)
        check(m, "an example does not start with its file name: %r" % code[:80])
        out.append((m.group(1), json.loads(m.group(2) or "{}"), code))
    return out


def prompt(name):
    return audio.read_wav(os.path.join(BUILD, "sounds", "en", name + ".wav"))[1]


def hears_prompt(phone, name, start, end, index=-1):
    rate, heard = phone.heard(start, end, index)
    ref = prompt(name)
    return len(heard) > len(ref) and \
        audio.contour_match(ref, heard, rate, max_lag_s=len(heard) / rate) > 0.75


def newest_cdr(number):
    """The newest call from number not seen before (its CDR)."""
    def find():
        for x in S["a"].ok("GET", DOM + "/cdrs", query={"number": number, "limit": 5})["items"]:
            if x["uuid"] not in S["known"]:
                return x
        return None
    row = wait_until(find, 10, 0.2, "the CDR of the call from %s" % number)
    S["known"].add(row["uuid"])
    return row


def script_lines(row):
    return [e["text"] for e in row["events"] if e["what"] == "script"]


def dial(phone, ext):
    phone.events.clear()
    phone.dial("sip:%s@demo.local" % ext)
    check(phone.wait_event("CALL_ESTABLISHED", 10) is not None, "%s did not answer" % ext)


def hang_up(*phones):
    phones[0].hangup()
    for p in phones:
        check(p.wait_event("CALL_CLOSED", 10) is not None, "%s's call did not end" % p.name)
    time.sleep(0.3)


# ------------------------------------------------------------------ scenarios

def sales_recorded(ext):
    caller, op102 = S["caller"], S["op102"]
    op102.events.clear()
    dial(caller, ext)
    check(op102.wait_event("CALL_ESTABLISHED", 15) is not None, "102 was not put through")
    time.sleep(3)
    hang_up(caller, op102)
    check(hears_prompt(caller, "call_recorded", 0, 4), "the caller was not told of the recording")
    check(op102.hears(600, 0.5, -0.3), "102 does not hear the caller")
    row = newest_cdr("101")
    path = os.path.join(S["d"].dir, "var", "recordings", str(S["dom"]), row["uuid"] + ".wav")
    rate, rec, _ = audio.read_wav(path)
    check(len(rec) / rate > 2.5, "the recording is %.1f s long" % (len(rec) / rate))


def account_check(ext):
    caller, op102 = S["caller"], S["op102"]
    op102.events.clear()
    dial(caller, ext)
    time.sleep(1.0)
    caller.dtmf("4321#")
    check(op102.wait_event("CALL_ESTABLISHED", 20) is not None, "Support's op102 did not answer")
    time.sleep(1.5)
    hang_up(caller, op102)
    check("account 4321" in script_lines(newest_cdr("101")), "the account was not logged")


def town_hall(ext):
    caller = S["caller"]
    dial(caller, ext)
    time.sleep(1.0)
    caller.dtmf("2468#")
    live = wait_until(lambda: [r for r in S["a"].ok("GET", DOM + "/conferences")["items"]
                               if r["name"] == "Town hall" and r["members"]], 10, 0.2,
                      "the caller in the town hall")[0]
    check([m["muted"] for m in live["members"]] == [True], "members %r" % live["members"])
    time.sleep(2)
    caller.dtmf("#")
    check(caller.wait_event("CALL_CLOSED", 10) is not None, "# did not end the call")
    time.sleep(0.3)
    check("left the town hall: left" in script_lines(newest_cdr("101")),
          "leaving was not logged")


def fax_line(ext):
    doc = faxtools.write_tiff(os.path.join(S["d"].dir, "line.tiff"), [faxtools.test_page(0)])
    peer = faxtools.FaxPeer(S["d"].sip_port, "op103", DEMO["op103"], timeout=45)
    try:
        peer.send(doc, "sip:%s@demo.local" % ext)
        check(peer.wait_exit(50) == 0, "the fax did not go through: %r" % peer.events)
    finally:
        peer.stop()
    support = S["d"].sql("SELECT id FROM call_groups WHERE name = 'Support'")[0][0]
    rows = wait_until(lambda: S["d"].sql("SELECT group_id, owner_id, pages FROM faxes WHERE "
                                         "direction = 'in' AND status = 'received'"),
                      10, 0.2, "the received fax")
    check([(str(r[0]), r[1], str(r[2])) for r in rows] == [(str(support), None, "1")],
          "the fax is not in Support's box: %r" % rows)
    check(any(t.startswith("fax ") and "from 103" in t for t in script_lines(newest_cdr("103"))),
          "the fax was not logged")


def concierge(ext):
    caller, taker = S["caller"], S["op103"]
    ev = EventStream(S["d"].http_port, cookies=S["a"].cookies, types=["call.parked"])
    try:
        dial(caller, ext)
        time.sleep(1.0)
        caller.dtmf("1")
        parked = ev.wait_for(lambda e: e["event"] == "call.parked", 10)["data"]["data"]
    finally:
        ev.close()
    slot = parked["slot"]
    time.sleep(3)
    dial(taker, ext)
    time.sleep(1.0)
    taker.dtmf("2")
    time.sleep(2.5)
    taker.dtmf(str(slot))
    time.sleep(5)
    hang_up(taker, caller)
    check(taker.hears(600, -3.0, -0.3), "the taker does not hear the parked caller")
    check(caller.hears(1400, -3.0, -0.3), "the parked caller does not hear the taker")
    lines = script_lines(newest_cdr("101"))
    check(any(t.startswith("waiting in slot %d of " % slot) for t in lines),
          "parking was not logged: %r" % lines)


def fax_on_demand(ext):
    # the caller is a phone, not a fax machine: the platform still sends, and says so
    os.makedirs(os.path.join(S["d"].dir, "var", "documents"), exist_ok=True)
    faxtools.write_tiff(os.path.join(S["d"].dir, "var", "documents", "price-list.tiff"),
                        [faxtools.test_page(1)])
    caller = S["caller"]
    dial(caller, ext)
    time.sleep(1.0)
    caller.dtmf("1")
    time.sleep(4)
    caller.hangup()
    check(caller.wait_event("CALL_CLOSED", 10) is not None, "the call did not end")
    time.sleep(0.3)
    check(hears_prompt(caller, "please_hold", 1.0, None), "please hold was not heard")
    rows = wait_until(lambda: S["d"].sql("SELECT doc_pages FROM faxes WHERE direction = 'out'"),
                      10, 0.2, "the price list's fax")
    check(rows[0][0] == "1" or rows[0][0] == 1, "the fax row %r" % rows)
    lines = script_lines(newest_cdr("101"))
    check(any(t.startswith("price list sent: ") for t in lines), "sending was not logged")


def any_example(ext):
    caller = S["caller"]
    dial(caller, ext)
    time.sleep(3)
    caller.hangup()
    check(caller.wait_event("CALL_CLOSED", 10) is not None, "the call did not end")
    time.sleep(0.3)
    newest_cdr("101")


SCENARIOS = {"sales_recorded": sales_recorded, "account_check": account_check,
             "town_hall": town_hall, "fax_line": fax_line, "concierge": concierge,
             "fax_on_demand": fax_on_demand}


def test_every_readme_example_takes_a_call(d):
    S["d"], S["known"] = d, set()
    a = S["a"] = d.login("admin", DEMO["admin"], "demo.local")
    S["dom"] = a.ok("GET", "/api/v1/domains")["items"][0]["id"]
    users = {u["login"]: u["id"] for u in a.ok("GET", DOM + "/users")["items"]}
    S["caller"] = demo_phone(d, "caller", "op101", 600, seconds=300)
    S["op102"] = demo_phone(d, "op102", "op102", 900, auto=True, seconds=300)
    S["op103"] = demo_phone(d, "op103", "op103", 1400, seconds=300)
    r = a.request("PUT", DOM + "/agents/%d/state" % users["op102"], body={"state": "available"})
    check(r.status == 200, "op102 available: %r" % r)
    found = examples()
    check(len(found) >= 6, "only %d examples found" % len(found))
    failures = []
    for i, (name, settings, code) in enumerate(found):
        with open(os.path.join(FLOWS, name + ".lua"), "w") as f:
            f.write(code)
        ext = str(540 + i)
        a.ok("POST", DOM + "/ivr-flows", {"name": name, "extension": ext, "script": name,
                                          "flow": settings}, status=201)
        mark = len(d.log_text())
        try:
            SCENARIOS.get(name, any_example)(ext)
        except Exception as e:  # go on with the others; report all at the end
            failures.append("%s: %s" % (name, e))
        if "routing script ended" in d.log_text()[mark:]:
            failures.append("%s: the script failed" % name)
        print("     example %s%s" % (name, "" if name in SCENARIOS else " (called only)"),
              flush=True)
    check(not failures, "; ".join(failures))


def test_cleanup(d):
    for p in ("caller", "op102", "op103"):
        if p in S:
            S[p].cleanup()


if __name__ == "__main__":
    try:
        run_tests([test_every_readme_example_takes_a_call, test_cleanup], demo=True,
                  sets={"flows_dir": FLOWS})
    finally:
        shutil.rmtree(FLOWS, ignore_errors=True)
