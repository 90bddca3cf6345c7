"""Stray and malformed RTP against real calls.

1. Before the call starts, a stray sender aims a 1500 Hz RTP stream, plus
   malformed datagrams and junk RTCP, at every port of the daemon's RTP
   range (a phone of an earlier call that goes on sending to a port now
   given to a new call, or someone probing). Then 100 (440 Hz) calls 102
   (1700 Hz), which lets it ring for 2 s so the caller's leg waits a while
   before its phone sends, and the two talk for 4 s. Each phone hears the
   other and never the stray stream; the daemon keeps serving (a second call
   goes through) and says in its log what it refused.
2. A caller behind NAT: a raw SIP client whose SDP names a private address
   that is never heard from, while its RTP (440 Hz) comes from elsewhere.
   After the short grace the daemon latches onto that source: 102 hears the
   caller and the caller gets 102's audio at the address it sends from. A
   stray stream that starts once the call runs never takes it over.
"""
import math
import os
import socket
import struct
import threading
import time

import audio
import sipraw
from cwtest import DEMO, TestFailure, run_tests
from sipua import Phone


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def ulaw(sample):
    """G.711 mu-law of one 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    mag = min(abs(sample), 32635) + 0x84
    exp = 7
    while exp > 0 and not mag & (0x4000 >> (7 - exp)):
        exp -= 1
    return ~(sign | exp << 4 | (mag >> (exp + 3)) & 0x0F) & 0xFF


def ulaw_decode(u):
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if u & 0x80 else (t - 0x84)


class Stray:
    """Sends to every port of a range every 20 ms: 1500 Hz RTP to the even ports
    (a steady stream: its own SSRC and sequence), junk to the odd ones, and every
    tenth round a malformed RTP datagram to the even ones."""

    def __init__(self, first, count):
        self.ports = range(first, first + count)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        # 1500 Hz fits 30 whole periods in 20 ms: every frame is the same
        self.payload = bytes(ulaw(int(12000 * math.sin(2 * math.pi * 1500 * i / 8000)))
                             for i in range(160))
        self.stop = False
        self.sent = 0
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        seq, ts, n = 0, 0, 0
        next_at = time.monotonic()
        while not self.stop:
            head = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, 0x5EED5EED)
            for p in self.ports:
                try:
                    if p % 2 == 0:
                        self.sock.sendto(head + self.payload, ("127.0.0.1", p))
                        if n % 10 == 0:  # claims 15 CSRCs it does not carry
                            self.sock.sendto(b"\x8f\x00\x00\x01" + b"\xa5" * 12, ("127.0.0.1", p))
                    else:
                        self.sock.sendto(b"\x81\xc9\x00\x07" + os.urandom(n % 40), ("127.0.0.1", p))
                    self.sent += 1
                except OSError:
                    pass
            seq, ts, n = seq + 1, ts + 160, n + 1
            next_at += 0.02
            time.sleep(max(0.0, next_at - time.monotonic()))

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.t.join(2)
        self.sock.close()


def stray_windows(samples, rate, skip_s):
    """100 ms windows after skip_s where the stray's 1500 Hz is a real part of what was heard."""
    bad = []
    for i, w in enumerate(audio.windows(audio.segment(samples, rate, skip_s, len(samples) / rate),
                                        rate, 100)):
        if audio.dbfs(w) > -45 and audio.goertzel_power(w, rate, 1500) > 0.1:
            bad.append(round(skip_s + i * 0.1, 1))
    return bad


def call_once(d, caller, callee, ring_s, talk_s):
    for p in (caller, callee):
        p.events.clear()
    caller.dial("sip:102@demo.local")
    check(callee.wait_event("CALL_INCOMING", 10), "102 did not ring")
    time.sleep(ring_s)
    callee.accept()
    check(caller.wait_event("CALL_ESTABLISHED", 5), "the call was not connected")
    time.sleep(talk_s)
    caller.hangup()
    check(caller.wait_event("CALL_CLOSED", 5), "the caller's call did not end")
    callee.wait_event("CALL_CLOSED", 5)


def test_stray_stream_never_reaches_the_parties(d):
    d_dir = d.dir
    mic_a = audio.write_tone_wav(os.path.join(d_dir, "a.wav"), 440, 120, amplitude=9000)
    mic_b = audio.write_tone_wav(os.path.join(d_dir, "b.wav"), 1700, 120, amplitude=9000)
    caller = Phone("caller", "admin", DEMO["admin"], d.sip_port, mic_wav=mic_a, seconds=120)
    callee = Phone("callee", "op102", DEMO["op102"], d.sip_port, mic_wav=mic_b, seconds=120)
    try:
        for p in (caller, callee):
            p.start()
            check(p.wait_registered(15), "%s did not register" % p.name)
        with Stray(d.rtp_min, 64) as stray:
            time.sleep(0.5)  # the stream is there before the call's sessions are
            call_once(d, caller, callee, ring_s=2.0, talk_s=4.0)
            check(stray.sent > 1000, "the stray sender did not run")
            check(d.alive(), "the daemon died")
            call_once(d, caller, callee, ring_s=0.5, talk_s=2.0)  # and it goes on serving
    finally:
        caller.stop()
        callee.stop()
    for phone, own, other in ((callee, 1700, 440), (caller, 440, 1700)):
        wavs = phone.received_wavs()
        check(len(wavs) == 2, "%s has %d recordings, not 2" % (phone.name, len(wavs)))
        rate, heard = audio.read_wav(wavs[0])[:2]
        talk = audio.segment(heard, rate, 1.0, len(heard) / rate - 0.3)
        check(audio.tone_share(talk, rate, other) > 0.5,
              "%s does not hear the other party (%d Hz)" % (phone.name, other))
        # the first moments of the conversation may race the caller's first packet
        bad = stray_windows(heard, rate, 0.5)
        check(not bad, "%s heard the stray stream at %s s" % (phone.name, bad))
    log = d.log_text()
    check("held back" in log or "refused" in log, "the daemon did not say what it refused")
    check("malformed RTP ignored" in log, "the malformed datagrams were not noticed")


class NatCaller:
    """A caller behind NAT: RTP (440 Hz) from a socket whose address the SDP never names;
    keeps what comes back."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.005)
        self.payload = [bytes(ulaw(int(9000 * math.sin(2 * math.pi * 440 * (k * 160 + i) / 8000)))
                              for i in range(160)) for k in range(50)]  # 1 s, 22 periods/frame
        self.heard = []
        self.to = None
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        seq, next_at = 0, time.monotonic()
        while not self.stop:
            head = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, 0xCA11E5)
            self.sock.sendto(head + self.payload[seq % 50], self.to)
            seq += 1
            next_at += 0.02
            while time.monotonic() < next_at:
                try:
                    data = self.sock.recv(2048)
                except (socket.timeout, BlockingIOError):
                    continue
                if len(data) > 12 and data[1] & 0x7F == 0:
                    self.heard += [ulaw_decode(b) for b in data[12:]]

    def start(self, to):
        self.to = to
        self.t.start()

    def close(self):
        self.stop = True
        self.t.join(2)
        self.sock.close()


def test_nat_caller_is_latched_and_keeps_its_call(d):
    mic_b = audio.write_tone_wav(os.path.join(d.dir, "b2.wav"), 1700, 120, amplitude=9000)
    callee = Phone("callee2", "op102", DEMO["op102"], d.sip_port, mic_wav=mic_b, seconds=120,
                   auto_answer=True)
    c = sipraw.Client(d.sip_port)
    nat = NatCaller()
    try:
        callee.start()
        check(callee.wait_registered(15), "102 did not register")
        uri = "sip:102@demo.local"
        frm = "sip:admin@demo.local"
        body = sipraw.sdp(4000, addr="10.0.0.99")  # a private address: never heard from
        c.request("INVITE", uri, frm, uri, body=body)
        r = c.final()
        check(r is not None and r.status == 407, "no challenge: %r" % r)
        c.ack(r)
        auth = sipraw.digest_header(sipraw.parse_challenge(r.all("proxy-authenticate")[-1]),
                                    "INVITE", uri, "admin", DEMO["admin"])
        c.request("INVITE", uri, frm, uri, ["Proxy-Authorization: " + auth], body=body)
        ok = c.final(10)
        check(ok is not None and ok.status == 200, "102 did not answer: %r" % ok)
        c.ack(ok)
        port = int(ok.body.split("m=audio ")[1].split()[0])
        nat.start(("127.0.0.1", port))
        time.sleep(2.0)
        with Stray(d.rtp_min, 64):  # starts while the NAT'd caller is latched
            time.sleep(3.0)
        time.sleep(0.5)
        dlg = sipraw.Dialog.from_uac(c, ok)
        dlg.request("BYE")
        check(callee.wait_event("CALL_CLOSED", 5), "102's call did not end")
    finally:
        nat.close()
        c.close()
        callee.stop()
    rate, heard = audio.read_wav(callee.received_wavs()[0])[:2]
    talk = audio.segment(heard, rate, 1.0, len(heard) / rate - 0.3)
    check(audio.tone_share(talk, rate, 440) > 0.5, "102 does not hear the NAT'd caller")
    bad = stray_windows(heard, rate, 0.0)
    check(not bad, "102 heard the stray stream at %s s" % bad)
    back = nat.heard
    check(len(back) > 8000 * 3, "the caller got %.1f s of audio back" % (len(back) / 8000))
    tail = back[-8000 * 2:]
    check(audio.tone_share(tail, 8000, 1700) > 0.5,
          "the NAT'd caller does not get 102's audio at the address it sends from")
    check(not stray_windows(back, 8000, 0.0), "the NAT'd caller got the stray stream")
    check("not the SDP address: NAT" in d.log_text(), "the daemon did not say it latched")


if __name__ == "__main__":
    run_tests([test_stray_stream_never_reaches_the_parties,
               test_nat_caller_is_latched_and_keeps_its_call], demo=True)
