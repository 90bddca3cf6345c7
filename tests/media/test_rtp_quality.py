# cw-test: both-stores (the call record is read back from either store)
"""RTP timeout and per-leg call quality, with a caller whose RTP the test controls.

1. 100 (a raw RTP peer, 440 Hz) calls 102 (a softphone that answers, 1700 Hz)
   on a daemon with media.rtp_timeout = 2 s. They talk for 3 s (longer than
   the timeout: a live stream never times out), then 100's stream stops while
   its dialog stays. About 2 s later the platform ends the call: 102 gets BYE,
   so does 100, and the call record says cause rtp_timeout, in the API's
   call history and in the cdrs row.
   The same with the roles turned: 102 (a raw RTP peer this time) answers
   100's softphone and goes silent; the call ends the same way and the
   record names 102's leg.
2. 100 calls 102 again over a bad network: 10 % of its packets never leave
   (every tenth), every other one leaves 8 ms late, and of what comes back it
   counts 5 % as lost and every third packet as 6 ms late (and says so in RTCP
   receiver reports every second).
   The call record's quality for 100's leg has exactly the packets lost, the
   RFC 3550 jitter its send times imply, and the loss and jitter 100
   reported; 102's clean leg shows neither.
"""
import os
import time

import audio
from cwtest import DEMO, TestFailure, call_records, new_call_record, run_tests
from rtppeer import RtpPeer, rfc3550_jitter_ms
from sipua import Phone

TIMEOUT_S = 2


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def callee(d, name):
    mic = audio.write_tone_wav(os.path.join(d.dir, name + ".wav"), 1700, 60, amplitude=9000)
    p = Phone(name, "op102", DEMO["op102"], d.sip_port, mic_wav=mic, seconds=60,
              auto_answer=True)
    p.start()
    check(p.wait_registered(15), "102 did not register")
    return p


def silence_ends_the_call(peer, other, other_ext, role):
    """Both send for longer than the timeout and the call stays; then the RtpPeer stops
    sending and, the timeout later, both it and the other phone get a BYE."""
    time.sleep(TIMEOUT_S + 1.0)
    check(not other.seen("CALL_CLOSED"), "the call ended while both phones were sending")
    peer.stop_sending()
    t_stop = time.monotonic()
    check(other.wait_event("CALL_CLOSED", TIMEOUT_S + 6),
          "%s got no BYE after the %s's RTP stopped" % (other_ext, role))
    after = time.monotonic() - t_stop
    check(TIMEOUT_S - 0.5 <= after <= TIMEOUT_S + 3,
          "the call ended %.1f s after the RTP stopped (timeout %d s)" % (after, TIMEOUT_S))
    check(peer.wait_bye(5) is not None, "the silent %s got no BYE" % role)


def test_silent_caller_ends_the_call_with_rtp_timeout(d):
    admin = d.login("admin", DEMO["admin"], "demo.local")
    known = {x["uuid"] for x in call_records(admin, "100")}
    b = callee(d, "b1")
    peer = RtpPeer(d.sip_port, "admin", DEMO["admin"], hz=440)
    try:
        peer.call("sip:102@demo.local")
        check(b.wait_event("CALL_ESTABLISHED", 5), "102 did not answer")
        silence_ends_the_call(peer, b, "102", "caller")
    finally:
        peer.close()
        b.stop()
    heard = peer.heard
    check(audio.tone_share(heard[8000:], 8000, 1700) > 0.5, "100 did not hear 102 before")
    row = new_call_record(admin, known, "100")
    check(row["cause"] == "rtp_timeout" and row["released_by"] == "system",
          "call history: cause %r, released by %r" % (row["cause"], row["released_by"]))
    check(row["a_number"] == "100" and row["b_number"] == "102", "parties: %r" % row)
    db = d.sql("SELECT cause, talk_s FROM cdrs WHERE uuid = ?", (row["uuid"],))
    check(db and db[0][0] == "rtp_timeout", "cdrs row: %r" % db)
    check(TIMEOUT_S + 2 <= int(db[0][1]) <= 2 * TIMEOUT_S + 5, "talk time %r s" % db[0][1])
    timeouts = [e["text"] for e in row["events"] if e["what"] == "rtp-timeout"]
    check(timeouts == ["100"], "the protocol does not name 100's leg as silent: %r" % timeouts)


def test_silent_callee_ends_the_call_with_rtp_timeout(d):
    admin = d.login("admin", DEMO["admin"], "demo.local")
    known = {x["uuid"] for x in call_records(admin, "100")}
    mic = audio.write_tone_wav(os.path.join(d.dir, "a3.wav"), 440, 60, amplitude=9000)
    a = Phone("a3", "admin", DEMO["admin"], d.sip_port, mic_wav=mic, seconds=60)
    peer = RtpPeer(d.sip_port, "op102", DEMO["op102"], hz=1700)
    try:
        a.start()
        check(a.wait_registered(15), "100 did not register")
        peer.register()
        a.dial("sip:102@demo.local")
        peer.answer()
        check(a.wait_event("CALL_ESTABLISHED", 5), "the call was not connected")
        silence_ends_the_call(peer, a, "100", "callee")
    finally:
        peer.close()
        a.stop()
    row = new_call_record(admin, known, "100")
    check(row["cause"] == "rtp_timeout" and row["released_by"] == "system",
          "call history: cause %r, released by %r" % (row["cause"], row["released_by"]))
    timeouts = [e["text"] for e in row["events"] if e["what"] == "rtp-timeout"]
    check(timeouts == ["102"], "the protocol does not name 102's leg as silent: %r" % timeouts)
    check(row["quality"]["b"]["rx_packets"] < row["quality"]["a"]["rx_packets"],
          "102's leg received as much as 100's: %r" % row["quality"])


def test_lossy_caller_quality_in_the_call_record(d):
    admin = d.login("admin", DEMO["admin"], "demo.local")
    known = {x["uuid"] for x in call_records(admin, "100")}
    b = callee(d, "b2")
    peer = RtpPeer(d.sip_port, "admin", DEMO["admin"], hz=440,
                   drop=lambda seq: seq % 10 == 5,
                   delay=lambda seq: 0.008 if seq % 2 else 0.0,
                   ignore=lambda seq: seq % 20 == 7,
                   rx_delay=lambda seq: 0.006 if seq % 3 == 0 else 0.0, rtcp_s=1.0)
    try:
        peer.call("sip:102@demo.local")
        check(b.wait_event("CALL_ESTABLISHED", 5), "102 did not answer")
        time.sleep(8.0)
        peer.rtcp_s = 0  # the last report has arrived before the call ends
        time.sleep(0.6)
        peer.stop_sending()
        time.sleep(0.1)
        r = peer.hangup()
        check(r is not None and r.status == 200, "BYE: %r" % r)
        check(b.wait_event("CALL_CLOSED", 5), "102 got no BYE")
    finally:
        peer.close()
        b.stop()
    sent, lost = len(peer.sent), len(peer.dropped)
    check(sent > 350 and lost > 35, "the peer sent %d packets, lost %d" % (sent, lost))
    check(len(peer.reports) >= 5, "the peer sent %d receiver reports" % len(peer.reports))
    row = new_call_record(admin, known, "100")
    q = row["quality"]
    a, bq = q["a"], q["b"]
    # loss: every packet that never left, and only those (the last one sent is not lost)
    check(abs(a["rx_lost"] - lost) <= 1, "rx_lost %r, %d never left" % (a["rx_lost"], lost))
    check(abs(a["rx_packets"] - sent) <= 2, "rx_packets %r of %d sent" % (a["rx_packets"], sent))
    pct = 100.0 * a["rx_lost"] / (a["rx_lost"] + a["rx_packets"])
    check(9.0 <= pct <= 11.0, "loss %.1f %% on 100's leg, not 10 %%" % pct)
    # jitter: what RFC 3550 makes of the times the packets left (about 7 ms)
    want = rfc3550_jitter_ms([(ts, at) for _seq, ts, at in peer.sent])
    check(want > 4.0, "the peer's send pattern carries %.1f ms jitter" % want)
    check(abs(a["jitter_ms"] - want) <= 1.5,
          "jitter_ms %.2f, the send times say %.2f" % (a["jitter_ms"], want))
    # what 100 reported of the platform's stream (5 % lost) in its last RTCP report
    fraction, _cum, jit = peer.reports[-1]
    check(0.03 <= fraction / 256.0 <= 0.08, "the peer reported %d/256 lost" % fraction)
    check(jit / 8.0 > 2.0, "the peer reported %.2f ms of jitter" % (jit / 8.0))
    check(abs(a["remote_loss"] - fraction / 256.0) < 0.005,
          "remote_loss %r, the peer reported %.3f" % (a["remote_loss"], fraction / 256.0))
    check(abs(a["remote_jitter_ms"] - jit / 8.0) < 0.2,
          "remote_jitter_ms %r, the peer reported %.2f" % (a["remote_jitter_ms"], jit / 8.0))
    # 102's leg: a softphone on loopback, no loss, little jitter
    check(bq["rx_packets"] > 350 and bq["rx_lost"] <= 2, "102's leg: %r" % bq)
    check(bq["jitter_ms"] < a["jitter_ms"], "102's leg shows more jitter than 100's: %r" % q)
    check(row["cause"] == "normal", "cause of a normal hang-up: %r" % row["cause"])


if __name__ == "__main__":
    run_tests([test_silent_caller_ends_the_call_with_rtp_timeout,
               test_silent_callee_ends_the_call_with_rtp_timeout,
               test_lossy_caller_quality_in_the_call_record],
              demo=True, sets={"media.rtp_timeout": str(TIMEOUT_S)})
