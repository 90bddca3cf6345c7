"""Ring lists of seed 002 with real peers.

Three baresip phones (100 calls; 102 and 103 are members) and a loopback
mobile network behind a trunk (a member "89001234567" that rings). Answer
timeouts are 5 s (the shortest allowed) to keep the test short.

- sequential: 102, the mobile, 103 ring one after another, each for the
  answer timeout; 103 answers and talks to 100. With 102 busy in another
  call and one line, it is skipped: the mobile rings at once.
- simultaneous: 102, 103 and the mobile ring together; nobody answers and
  the list fails after the answer timeout, every leg cancelled then.
- retry: nobody answers the first attempt; the caller hears the pause melody
  (1200 Hz) between the ringing melody (800 Hz) of both attempts, and 102
  rings again after the pause.
- announce and record: 103 answers and first hears "call from one zero zero"
  (its loudness contour against the prompt set), only then the caller's
  440 Hz; the caller is connected only after the announcement. The
  conversation is kept as a recording of the list: caller left, 103 right.
- default list: a call from a provider trunk to one of the domain's numbers
  that selects nothing goes to the domain's default list (102 rings).
"""
import os
import sys
import time
import traceback

import audio
import sipraw
from cwtest import BUILD, DEMO, Daemon, TestFailure, wait_until
from mobilenet import MobileNetwork
from sipua import Phone

MOBILE = "89001234567"
BASE = "/api/v1/domains/demo.local"


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def prompt(lang, *names):
    out = []
    for n in names:
        rate, s, _ = audio.read_wav(os.path.join(BUILD, "sounds", lang, n + ".wav"))
        out += s
    return out


class World:
    def __init__(self):
        self.d = Daemon(demo=True, sets={"sip.keepalive": "0"})
        self.d.start()
        self.net = MobileNetwork(self.d.sip_port)
        sa = self.d.login("sysadmin", DEMO["sysadmin"])
        self.admin = self.d.login("admin", DEMO["admin"], "demo.local")
        r = sa.post(BASE + "/trunks", {"name": "mobile", "host": "127.0.0.1",
                                       "port": self.net.port, "register": False,
                                       "dial_pattern": "sip:(8\\d{10})@.*"})
        check(r.status == 201, "trunk: %r" % r)
        self.dir = self.d.dir
        caller_mic = audio.write_tone_wav(os.path.join(self.dir, "c.wav"), 440, 300, amplitude=9000)
        mic102 = audio.write_tone_wav(os.path.join(self.dir, "p2.wav"), 1700, 300, amplitude=9000)
        mic103 = audio.write_tone_wav(os.path.join(self.dir, "p3.wav"), 1700, 300, amplitude=9000)
        self.caller = Phone("caller", "admin", DEMO["admin"], self.d.sip_port, mic_wav=caller_mic,
                            seconds=300)
        self.p102 = Phone("p102", "op102", DEMO["op102"], self.d.sip_port, mic_wav=mic102,
                          seconds=300)
        self.p103 = Phone("p103", "op103", DEMO["op103"], self.d.sip_port, mic_wav=mic103,
                          seconds=300)
        self.phones = (self.caller, self.p102, self.p103)
        for p in self.phones:
            p.start()
            check(p.wait_registered(15), "%s did not register" % p.name)

    def ring_list(self, **body):
        r = self.admin.post(BASE + "/ring-lists", body)
        check(r.status == 201, "ring list: %r" % r)
        return r.json

    def sound(self, name, hz, seconds):
        path = audio.write_tone_wav(os.path.join(self.dir, name + ".wav"), hz, seconds,
                                    amplitude=9000)
        with open(path, "rb") as f:
            r = self.admin.request("POST", BASE + "/sounds", body=f.read(),
                                   headers={"Content-Type": "audio/wav"}, query={"name": name})
        check(r.status == 201, "upload %s: %r" % (name, r))
        return r.json["id"]

    def call(self, ext, budget, answer=None, after=0.0):
        """100 dials ext; answer names the phone that accepts (after `after` s of ringing).
        Returns {who: [seconds from the dial each time it rang]}, how it ended, times."""
        self.net.invites.clear()
        self.net.cancels.clear()
        for p in self.phones:
            p.events.clear()
        t0 = time.time()
        self.caller.dial("sip:%s@demo.local" % ext)
        rang = {"102": [], "103": [], "mobile": []}
        seen_mobile = 0
        end = t0 + budget
        outcome, t_answer, t_established = None, None, None
        pending = None
        while time.time() < end:
            for name, p in (("102", self.p102), ("103", self.p103)):
                if p.wait_event("CALL_INCOMING", 0.05):
                    rang[name].append(time.time() - t0)
                    if answer is p:
                        pending = time.time() + after
            if pending and time.time() >= pending:
                answer.accept()
                t_answer = time.time()
                pending = None
            while len(self.net.invites) > seen_mobile:
                rang["mobile"].append(self.net.invites[seen_mobile][1] - t0)
                seen_mobile += 1
            if self.caller.wait_event("CALL_ESTABLISHED", 0.05):
                outcome, t_established = "answered", time.time()
                break
            e = self.caller.wait_event("CALL_CLOSED", 0.05)
            if e:
                outcome = (e.get("param") or "")[:3]
                break
        return rang, outcome, {"t0": t0, "answer": t_answer, "established": t_established,
                               "closed": time.time() if outcome and outcome != "answered"
                               else None}

    def hang_up(self, talk=2.0):
        time.sleep(talk)
        self.caller.hangup()
        self.caller.wait_event("CALL_CLOSED", 5)
        for p in (self.p102, self.p103):
            p.wait_event("CALL_CLOSED", 3)
        time.sleep(0.5)

    def close(self):
        for p in self.phones:
            p.stop()
        self.net.close()
        self.d.stop()
        self.d.cleanup()


def sequential_order_and_timing(w):
    rl = w.ring_list(name="Sequential", extension="601", method="sequential", answer_timeout=5,
                     members=[{"number": "102"}, {"number": MOBILE}, {"number": "103"}])
    rang, outcome, t = w.call("601", 22, answer=w.p103, after=0.5)
    check(outcome == "answered", "the list was not answered: %r %s" % (rang, outcome))
    check(len(rang["102"]) == 1 and len(rang["mobile"]) == 1 and len(rang["103"]) == 1,
          "each member rings once: %r" % rang)
    a, b, c = rang["102"][0], rang["mobile"][0], rang["103"][0]
    check(a < b < c, "order 102, mobile, 103: %r" % rang)
    check(4.0 <= b - a <= 7.5 and 4.0 <= c - b <= 7.5,
          "each member rings for the answer timeout (5 s): %r" % rang)
    check(len(w.net.cancels) == 1 and w.net.cancels[0] - t["t0"] < c + 0.5,
          "the mobile was let go when 103's turn came")
    w.hang_up()
    rate, heard = audio.read_wav(w.caller.received_wavs()[-1])[:2]
    tail = audio.segment(heard, rate, len(heard) / rate - 2.0, len(heard) / rate - 0.3)
    check(audio.tone_share(tail, rate, 1700) > 0.5, "the caller does not hear 103")
    cdr = wait_until(lambda: [x for x in w.admin.get(BASE + "/cdrs", query={"limit": 3})
                              .json["items"] if x["dialed"] == "601"], 5, 0.2, "the CDR")[0]
    check(cdr["b_number"] == "103", "the CDR shows %r as the B party" % cdr["b_number"])

    # 102 on one line and already in a call: skipped, the mobile rings at once
    w.admin.patch(BASE + "/ring-lists/%d" % rl["id"],
                  {"members": [{"number": "102", "lines": 1}, {"number": MOBILE}]})
    for p in w.phones:
        p.events.clear()
    w.p103.dial("sip:102@demo.local")
    check(w.p102.wait_event("CALL_INCOMING", 10), "102 did not ring for 103")
    w.p102.accept()
    check(w.p103.wait_event("CALL_ESTABLISHED", 5), "102 and 103 did not talk")
    rang, outcome, t = w.call("601", 8)
    check(not rang["102"] and len(rang["mobile"]) == 1 and rang["mobile"][0] < 2.0,
          "102 had no free line: the mobile rings at once: %r" % rang)
    if outcome is None:
        w.caller.hangup()
        w.caller.wait_event("CALL_CLOSED", 5)
    w.p103.hangup()
    w.p102.wait_event("CALL_CLOSED", 5)
    w.p103.wait_event("CALL_CLOSED", 5)
    time.sleep(0.5)


def simultaneous_fails_after_the_timeout(w):
    w.ring_list(name="Together", extension="602", method="simultaneous", answer_timeout=5,
                members=[{"number": "102"}, {"number": "103"}, {"number": MOBILE}])
    rang, outcome, t = w.call("602", 14)
    starts = [v[0] for v in rang.values() if len(v) == 1]
    check(len(starts) == 3 and max(starts) - min(starts) < 1.5,
          "all three ring together: %r" % rang)
    check(outcome in ("480", "408"), "the list fails when nobody answers: %s" % outcome)
    took = t["closed"] - t["t0"]
    check(4.5 <= took <= 8.0, "the list failed after %.1f s (answer timeout 5 s)" % took)
    wait_until(lambda: w.net.cancels, 3, 0.05, "the mobile's CANCEL")
    check(len(w.net.cancels) == 1 and abs(w.net.cancels[0] - t["t0"] - min(starts) - 5) < 1.5,
          "the mobile was cancelled at the timeout")
    for p in (w.p102, w.p103):
        check(p.wait_event("CALL_CLOSED", 3), "%s was not let go" % p.name)
    time.sleep(0.5)


def retry_after_the_pause_with_its_melody(w):
    ring = w.sound("ringing", 800, 1.5)
    pause = w.sound("pause", 1200, 1.0)
    w.ring_list(name="Retry", extension="603", method="simultaneous", answer_timeout=5,
                retries=1, retry_pause=3, ring_sound_id=ring, pause_sound_id=pause,
                members=[{"number": "102"}])
    # 102 lets the first attempt pass and answers the second one
    first = None
    for p in w.phones:
        p.events.clear()
    t0 = time.time()
    w.caller.dial("sip:603@demo.local")
    check(w.p102.wait_event("CALL_INCOMING", 5), "102 did not ring")
    first = time.time() - t0
    check(w.p102.wait_event("CALL_CLOSED", 8), "the first attempt did not end")
    check(w.p102.wait_event("CALL_INCOMING", 8), "102 did not ring again after the pause")
    second = time.time() - t0
    check(7.0 <= second - first <= 10.5,
          "the second attempt came %.1f s after the first (5 s ringing + 3 s pause)"
          % (second - first))
    time.sleep(1.0)
    w.p102.accept()
    check(w.caller.wait_event("CALL_ESTABLISHED", 5), "the second attempt was not connected")
    t_conn = time.time() - t0
    w.hang_up(talk=2.5)
    rate, heard = audio.read_wav(w.caller.received_wavs()[-1])[:2]

    def share(f, a, b):
        return audio.tone_share(audio.segment(heard, rate, a, b), rate, f)
    # the recording starts with the early media: ringing melody, pause melody, melody again
    windows = [(i * 0.5, share(800, i * 0.5, i * 0.5 + 0.5), share(1200, i * 0.5, i * 0.5 + 0.5),
                share(1700, i * 0.5, i * 0.5 + 0.5)) for i in range(int(len(heard) / rate / 0.5))]

    def first_at(k, after=0.0):
        return next((x[0] for x in windows if x[0] >= after and x[k] > 0.5), None)
    m1 = first_at(1)
    p = first_at(2, m1 if m1 is not None else 0)
    m2 = first_at(1, p if p is not None else 1e9)
    v = first_at(3, m2 if m2 is not None else 1e9)
    check(None not in (m1, p, m2, v),
          "melody %s, pause melody %s, melody again %s, then 102 %s" % (m1, p, m2, v))
    check(2.0 <= p - m1 <= 5.5, "the pause melody came %.1f s after the ringing one" % (p - m1))
    heard_pause = sum(0.5 for x in windows if p <= x[0] < m2 and x[2] > 0.5)
    check(heard_pause >= 2.0, "the pause melody lasted %.1f s (3 s pause)" % heard_pause)
    check(v - m2 >= 0.5 and v <= t_conn - first + 2.0, "102 heard after the melody: %r" % [m2, v])


def announce_then_connect_and_record(w):
    rl = w.ring_list(name="Announce", extension="604", method="sequential", answer_timeout=10,
                     announce_caller=True, record=True, language="en",
                     members=[{"number": "103"}])
    rang, outcome, t = w.call("604", 20, answer=w.p103, after=0.5)
    check(outcome == "answered", "not connected: %r %s" % (rang, outcome))
    ref = prompt("en", "call_from", "n_1", "n_0", "n_0")
    said = len(ref) / 8000.0
    waited = t["established"] - t["answer"]
    check(waited >= said - 0.3,
          "the caller was connected %.1f s after the answer; the announcement takes %.1f s"
          % (waited, said))
    w.hang_up(talk=3.0)
    rate, heard = audio.read_wav(w.p103.received_wavs()[-1])[:2]
    start = audio.segment(heard, rate, 0, said + 3.0)
    m = audio.contour_match(ref, start, rate, max_lag_s=3.0)
    check(m > 0.85, "103 did not hear 'call from 1 0 0' (contour match %.2f)" % m)
    # the digits matter: another number matches clearly worse
    other = audio.contour_match(prompt("en", "call_from", "n_7", "n_7", "n_7"), start, rate,
                                max_lag_s=3.0)
    check(m - other > 0.2, "'call from 7 7 7' matches as well (%.2f, %.2f)" % (m, other))
    # where the announcement ended, and that the caller came only after it
    first_440 = next((i * 0.1 for i in range(int(len(heard) / rate / 0.1))
                      if audio.tone_share(audio.segment(heard, rate, i * 0.1, i * 0.1 + 0.1),
                                          rate, 440) > 0.6), None)
    check(first_440 is not None and first_440 >= said - 0.3,
          "103 heard the caller at %s s, before the announcement (%.1f s) was over"
          % (first_440, said))
    tail = audio.segment(heard, rate, len(heard) / rate - 2.0, len(heard) / rate - 0.3)
    check(audio.tone_share(tail, rate, 440) > 0.5, "103 does not hear the caller")

    def stored():
        rows = w.d.sql("SELECT path, duration_ms, a_number, b_number FROM recordings "
                       "WHERE ring_list_id = %d" % rl["id"])
        return rows or None
    path, ms, a_number, b_number = wait_until(stored, 10, 0.2, "the recording row")[0]
    check(a_number == "100" and b_number == "103", "recording parties %s %s" % (a_number, b_number))
    check(2000 <= int(ms) <= 6000, "recording of %s ms for a 3 s conversation" % ms)
    rate, left, chans = audio.read_wav(path)
    check(len(chans) == 2, "the recording is not stereo")
    check(audio.tone_share(audio.segment(chans[0], rate, 0.5, 2.0), rate, 440) > 0.5,
          "the caller is not on the left channel")
    check(audio.tone_share(audio.segment(chans[1], rate, 0.5, 2.0), rate, 1700) > 0.5,
          "103 is not on the right channel")
    cdr = wait_until(lambda: [x for x in w.admin.get(BASE + "/cdrs", query={"limit": 3})
                              .json["items"] if x["dialed"] == "604"], 5, 0.2, "the CDR")[0]
    check(cdr.get("recording") == path, "the CDR does not link the recording: %r" % cdr)


def default_list_takes_calls_with_no_selection(w):
    sa = w.d.login("sysadmin", DEMO["sysadmin"])
    pstn = sipraw.Client(w.d.sip_port)
    try:
        r = sa.post(BASE + "/trunks", {"name": "pstn", "host": "127.0.0.1",
                                       "port": pstn.local[1], "register": False})
        check(r.status == 201, "trunk: %r" % r)
        r = sa.post(BASE + "/numbers", {"number": "73430000006", "description": "office"})
        check(r.status == 201, "number: %r" % r)
        w.ring_list(name="Default", extension="606", is_default=True, answer_timeout=10,
                    members=[{"number": "102"}])
        for p in w.phones:
            p.events.clear()
        uri = "sip:73430000006@127.0.0.1:%d" % w.d.sip_port
        pstn.request("INVITE", uri, "sip:79001112233@127.0.0.1", uri,
                     body=sipraw.sdp(pstn.local[1] + 2))
        check(w.p102.wait_event("CALL_INCOMING", 10), "the default list did not ring 102")
        w.p102.accept()
        ok = pstn.final(10)
        check(ok is not None and ok.status == 200, "the provider's call was not answered: %r" % ok)
        pstn.ack(ok)
        time.sleep(1.0)
        w.p102.hangup()
        check(w.p102.wait_event("CALL_CLOSED", 5), "102 did not hang up")
        bye = pstn.wait_request("BYE", 5)
        check(bye is not None, "the provider did not get the BYE")
    finally:
        pstn.close()
    cdr = wait_until(lambda: [x for x in w.admin.get(BASE + "/cdrs", query={"limit": 3})
                              .json["items"] if x["dialed"] == "73430000006"], 5, 0.2, "the CDR")[0]
    check(cdr["b_number"] == "102" and cdr["direction"] == "incoming",
          "the CDR: %s to %s" % (cdr["direction"], cdr["b_number"]))


def main():
    failed = 0
    w = None
    try:
        w = World()
        for fn in (sequential_order_and_timing, simultaneous_fails_after_the_timeout,
                   retry_after_the_pause_with_its_melody, announce_then_connect_and_record,
                   default_list_takes_calls_with_no_selection):
            t0 = time.monotonic()
            try:
                fn(w)
                print("ok   %-50s %6.2f s" % (fn.__name__, time.monotonic() - t0), flush=True)
            except Exception:
                failed += 1
                print("FAIL %s" % fn.__name__, flush=True)
                traceback.print_exc()
                for p in w.phones:
                    p.hangup()
                time.sleep(1)
    except Exception:
        failed += 1
        traceback.print_exc()
    finally:
        if w:
            if failed:
                sys.stderr.write(w.d.log_text()[-8000:])
            w.close()
    print("%d failed" % failed if failed else "all passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
