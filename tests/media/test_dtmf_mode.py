"""Per-device DTMF mode (users.dtmf_mode): what a phone gets and what it may send.

A flow on extension 560 answers, sends the caller 1590 (call:send_dtmf),
then listens twice for up to three digits (4 s each), writes each round
into the call's protocol and sends back what it got. The caller, 100, is a
raw RTP peer, so the test sees every packet:

- 100 set to `inband`: the 1590 arrives as tones in the audio and not one
  telephone-event packet comes; the 274 it keys as tones reaches the flow
  (round 1) and comes back as tones.
- 100 set to `rfc4733`: the 1590 arrives as RFC 4733 events and no tones are
  in the audio; the 274 it keys as tones is not taken for digits (round 1
  hears nothing), the 274 it then sends as events is (round 2).
- Any other mode through the API: 400 naming dtmf_mode, and nothing changes.
"""
import time

import audio
from cwtest import DEMO, TestFailure, call_records, flows_dir, new_call_record, run_tests
from rtppeer import RtpPeer

FLOW = """
return function(call)
  call:answer()
  call:sleep(1000)
  call:send_dtmf("1590")
  for round = 1, 2 do
    local digits = call:read_digits(3, 4000, 2000, "")
    if digits == nil then return end
    call:log(("round %d: [%s]"):format(round, digits))
    if #digits > 0 then call:send_dtmf(digits) end
  end
  call:sleep(1500)
  call:hangup()
end
"""


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def setup(d, mode):
    admin = d.login("admin", DEMO["admin"], "demo.local")
    flows = admin.get("/api/v1/domains/demo.local/ivr-flows").json["items"]
    if not [f for f in flows if f.get("extension") == "560"]:
        r = admin.post("/api/v1/domains/demo.local/ivr-flows",
                       {"name": "DTMF echo", "extension": "560", "script": "dtmf_echo"})
        check(r.status == 201, "flow saved: %r" % r)
    users = admin.get("/api/v1/domains/demo.local/users", query={"q": "admin"}).json["items"]
    uid = [u["id"] for u in users if u["login"] == "admin"][0]
    url = "/api/v1/domains/demo.local/users/%d" % uid
    before = d.sql("SELECT dtmf_mode FROM users WHERE id = ?", (uid,))
    for bad in ("sipinfo", "", "INBAND", 2, None):
        r = admin.patch(url, {"dtmf_mode": bad})
        check(r.status == 400 and r.error().get("field") == "dtmf_mode",
              "dtmf_mode %r: %r" % (bad, r))
    check(d.sql("SELECT dtmf_mode FROM users WHERE id = ?", (uid,)) == before,
          "a refused dtmf_mode changed the user")
    r = admin.patch(url, {"dtmf_mode": mode})
    check(r.status == 200 and r.json["dtmf_mode"] == mode, "dtmf_mode %s: %r" % (mode, r))
    return admin


def run_call(d, admin, keys):
    """Call 560 as 100; keys(peer) runs while the flow listens. The peer and the
    flow's protocol lines ("round N: [...]")."""
    known = {x["uuid"] for x in call_records(admin, "100")}
    peer = RtpPeer(d.sip_port, "admin", DEMO["admin"], hz=440, amplitude=3000)
    try:
        peer.call("sip:560@demo.local")
        keys(peer)
        check(peer.wait_bye(15) is not None, "the flow did not end the call")
    finally:
        peer.close()

    row = new_call_record(admin, known, "100")
    rounds = [e["text"] for e in row["events"] if e["what"] == "script"]
    return peer, rounds


def test_inband_phone_gets_tones_and_its_tones_reach_the_flow(d):
    admin = setup(d, "inband")

    def keys(peer):
        time.sleep(2.0)
        peer.send_inband("274")
        time.sleep(8.0)
    peer, rounds = run_call(d, admin, keys)
    events = [a for a in peer.arrivals if a[1] == 101]
    check(not events, "an in-band phone got %d telephone-event packets" % len(events))
    heard = audio.dtmf_digits(peer.heard)
    check(heard == "1590274", "the in-band phone heard the digits %r, not 1590 then 274" % heard)
    check(rounds[:1] == ["round 1: [274]"], "the flow got %r" % rounds)


def test_rfc4733_phone_gets_events_and_its_tones_are_not_digits(d):
    admin = setup(d, "rfc4733")

    def keys(peer):
        time.sleep(2.0)
        peer.send_inband("274")  # round 1 (until about 5 s) must not take these
        time.sleep(4.0)
        peer.send_events("274")
        time.sleep(4.0)
    peer, rounds = run_call(d, admin, keys)
    got = peer.event_digits()
    check(got == "1590274", "the RFC 4733 phone got the events %r, not 1590 then 274" % got)
    ends = [e for e in peer.events if e[1]]
    check(ends and all(e[2] >= 640 for e in ends),
          "the end packets do not say 100 ms: %r" % ends[:3])
    heard = audio.dtmf_digits(peer.heard)
    check(heard == "", "an RFC 4733 phone heard DTMF tones %r in its audio" % heard)
    check(rounds == ["round 1: []", "round 2: [274]"],
          "the flow got %r: in-band tones of an RFC 4733 phone were taken for digits, or "
          "its events were lost" % rounds)


if __name__ == "__main__":
    run_tests([test_inband_phone_gets_tones_and_its_tones_reach_the_flow,
               test_rfc4733_phone_gets_events_and_its_tones_are_not_digits],
              demo=True, sets={"flows_dir": flows_dir({"dtmf_echo": FLOW})})
