"""rtppeer - a SIP caller that sends and receives RTP itself.

Where a softphone hides its media, this peer lets a test decide packet by
packet: which packets are lost on the way (drop), when each one leaves
(delay), when the stream stops, which DTMF digits go in-band in the audio.
It keeps what arrives (decoded PCMU audio, RFC 4733 telephone-events, the
arrival of every packet), counts its own reception as RFC 3550 says and
sends RTCP receiver reports about it from the port after its RTP port.

    peer = RtpPeer(d.sip_port, "admin", DEMO["admin"], hz=440)
    peer.call("sip:102@demo.local")   # INVITE with digest auth, ACK, RTP starts
    (or peer.register(); peer.answer() to be the one called)
    ...
    peer.hangup()                     # BYE
    peer.close()

SIP goes through sipraw.Client; RTP runs on two threads of its own. Every
wait has a timeout.
"""
import math
import os
import re
import socket
import struct
import threading
import time

import audio
import sipraw
from cwtest import TestFailure

DTMF_FREQS = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
              "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
              "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
              "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633)}
EVENT_CHARS = "0123456789*#ABCD"


def _port_pair():
    """Two sockets on consecutive ports, the first even (RTP and RTCP)."""
    for _ in range(200):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1] & ~1
        probe.close()
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            a.bind(("127.0.0.1", port))
            b.bind(("127.0.0.1", port + 1))
            return a, b
        except OSError:
            a.close()
            b.close()
    raise TestFailure("no free RTP/RTCP port pair")


class RxStats:
    """RFC 3550 reception statistics of one stream (no wrap-around: tests are short)."""

    def __init__(self):
        self.ssrc = None
        self.first = self.max_seq = None
        self.received = 0
        self.jitter = 0.0  # in sample periods
        self.last_transit = None
        self.expected_prior = self.received_prior = 0

    def update(self, ssrc, seq, ts, arrival):
        if self.ssrc is None:
            self.ssrc, self.first, self.max_seq = ssrc, seq, seq
        self.max_seq = max(self.max_seq, seq)
        self.received += 1
        transit = int(arrival * 8000) - ts
        if self.last_transit is not None:
            self.jitter += (abs(transit - self.last_transit) - self.jitter) / 16.0
        self.last_transit = transit

    def expected(self):
        return 0 if self.first is None else self.max_seq - self.first + 1

    def report_block(self):
        """Fraction lost since the last report (0..255), cumulative lost, highest seq, jitter."""
        expected = self.expected()
        exp_int = expected - self.expected_prior
        rec_int = self.received - self.received_prior
        self.expected_prior, self.received_prior = expected, self.received
        lost_int = exp_int - rec_int
        fraction = 0 if exp_int <= 0 or lost_int <= 0 else (lost_int << 8) // exp_int
        return fraction, max(0, expected - self.received), self.max_seq or 0, int(self.jitter)


def rfc3550_jitter_ms(sent):
    """The interarrival jitter (ms) a receiver ends with for packets [(ts, time sent)] that
    arrive in order, as sent: the estimator of RFC 3550 6.4.1 run on the sender's clock."""
    j, last = 0.0, None
    for ts, at in sent:
        transit = int(at * 8000) - ts
        if last is not None:
            j += (abs(transit - last) - j) / 16.0
        last = transit
    return j / 8.0


def dtmf_frames(digit, ms=120, gap_ms=120, amplitude=7000):
    """mu-law 20 ms frames of one in-band DTMF digit followed by silence."""
    lo, hi = DTMF_FREQS[digit]
    n_on, n_all = 8 * ms, 8 * (ms + gap_ms)
    pcm = [int(amplitude * (math.sin(2 * math.pi * lo * i / 8000) +
                            math.sin(2 * math.pi * hi * i / 8000))) if i < n_on else 0
           for i in range(n_all)]
    data = bytes(audio._ulaw_encode(s) for s in pcm)
    return [data[k:k + 160] for k in range(0, len(data) - 159, 160)]


class RtpPeer:
    """One call placed by a raw SIP client whose RTP the test controls.

    hz: the tone it talks (PCMU); drop(seq) -> True loses that packet on the way
    out; delay(seq) -> seconds added to its departure; ignore(seq) -> True
    treats an incoming packet as lost on the way in, rx_delay(seq) -> seconds it
    is taken to have been held up on the way in (both counted so in the RTCP
    reports); rtcp_s: seconds between receiver reports (0 = none)."""

    def __init__(self, sip_port, user, password, domain="demo.local", hz=440, amplitude=9000,
                 drop=None, delay=None, ignore=None, rx_delay=None, rtcp_s=0, dtmf_pt=101):
        self.c = sipraw.Client(sip_port)
        self.user, self.password, self.domain = user, password, domain
        self.rtp, self.rtcp = _port_pair()
        self.port = self.rtp.getsockname()[1]
        self.rtp.settimeout(0.05)
        self.drop = drop or (lambda seq: False)
        self.delay = delay or (lambda seq: 0.0)
        self.ignore = ignore or (lambda seq: False)
        self.rx_delay = rx_delay or (lambda seq: 0.0)
        self.rtcp_s = rtcp_s
        self.dtmf_pt = dtmf_pt
        self.ssrc = 0x5EE7A001
        tone = [audio._ulaw_encode(int(amplitude * math.sin(2 * math.pi * hz * i / 8000)))
                for i in range(8000)]
        self.tone = [bytes(tone[k:k + 160]) for k in range(0, 8000, 160)]  # 1 s of frames
        self.remote = None
        self.dialog = None
        self.sending = threading.Event()
        self.closing = False
        self.lock = threading.Lock()
        self.digits = []      # in-band digits still to send
        self.sent = []        # (seq, ts, time it left) of every packet that left
        self.dropped = []     # seq of the packets lost on purpose
        self.heard = []       # decoded PCMU samples, in arrival order
        self.events = []      # (event code, end flag, duration, ts) of telephone-events
        self.arrivals = []    # (time, payload type) of every RTP packet received
        self.rx = RxStats()
        self.reports = []     # (fraction, lost, jitter) of each RR sent
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._recv, daemon=True)]

    # ---- SIP
    def call(self, uri, timeout=10):
        """INVITE (answering one digest challenge), ACK the 200, start RTP; the 200."""
        frm = "sip:%s@%s" % (self.user, self.domain)
        body = sipraw.sdp(self.port, codecs=(0,), dtmf=self.dtmf_pt)
        self.c.request("INVITE", uri, frm, uri, body=body)
        r = self.c.final(timeout)
        if r is not None and r.status in (401, 407):
            self.c.ack(r)
            hdr = "proxy-authenticate" if r.status == 407 else "www-authenticate"
            auth = sipraw.digest_header(sipraw.parse_challenge(r.all(hdr)[-1]), "INVITE", uri,
                                        self.user, self.password)
            name = "Proxy-Authorization" if r.status == 407 else "Authorization"
            self.c.request("INVITE", uri, frm, uri, [name + ": " + auth], body=body)
            r = self.c.final(timeout)
        if r is None or r.status != 200:
            raise TestFailure("%s calling %s: %r" % (self.user, uri, r))
        self.c.ack(r)
        self.dialog = sipraw.Dialog.from_uac(self.c, r)
        self._start(r.body)
        return r

    def _start(self, sdp):
        """RTP to the address the other side's SDP names, from now on."""
        addr = re.search(r"(?m)^c=IN IP4 (\S+)", sdp).group(1)
        port = int(re.search(r"(?m)^m=audio (\d+)", sdp).group(1))
        self.remote = (addr, port)
        self.sending.set()
        for t in self.threads:
            t.start()

    def register(self, timeout=5):
        """REGISTER this peer's SIP socket as the user's phone; the final response."""
        r = self.c.register(self.user, self.domain, self.password, timeout=timeout)
        if r is None or r.status != 200:
            raise TestFailure("%s did not register: %r" % (self.user, r))
        return r

    def answer(self, timeout=10):
        """Wait for an INVITE, answer it 200 with our SDP, start RTP; the INVITE."""
        inv = self.c.wait_request("INVITE", timeout)
        if inv is None:
            raise TestFailure("%s: no INVITE came" % self.user)
        tag = os.urandom(4).hex()
        self.c.reply(inv, 200, body=sipraw.sdp(self.port, codecs=(0,), dtmf=self.dtmf_pt),
                     to_tag=tag)
        self.dialog = sipraw.Dialog.from_uas(self.c, inv, tag)
        self._start(inv.body)
        return inv

    def hangup(self, timeout=5):
        """BYE; the final response (None when none came)."""
        self.sending.clear()
        self.dialog.request("BYE")
        return self.c.final(timeout)

    def wait_bye(self, timeout=10):
        """The BYE the platform sends us (answered 200 by sipraw), or None."""
        return self.c.wait_request("BYE", timeout)

    # ---- media
    def stop_sending(self):
        """Go silent: no more RTP (the phone's stream dies, the dialog stays)."""
        self.sending.clear()

    def send_inband(self, digits):
        """Queue digits to go as DTMF tones in the audio (no telephone-events)."""
        with self.lock:
            for d in digits:
                self.digits += [(0, f, False) for f in dtmf_frames(d)]

    def send_events(self, digits, ms=120, gap_ms=120):
        """Queue digits to go as RFC 4733 telephone-events (one timestamp a digit, the
        end packet sent three times), each followed by gap_ms of silence."""
        silence = bytes([0xFF]) * 160
        with self.lock:
            for d in digits:
                code, n = EVENT_CHARS.index(d), max(1, ms // 20)
                for k in range(n):
                    end = 0x80 if k == n - 1 else 0
                    ev = struct.pack("!BBH", code, end | 10, 160 * (k + 1))
                    self.digits += [(self.dtmf_pt, ev, k > 0)] * (3 if end else 1)
                self.digits += [(0, silence, False)] * max(1, gap_ms // 20)

    def _send(self):
        seq, start, ev_ts = 0, time.monotonic(), 0
        wall0 = time.time() - start
        while not self.closing:
            if not self.sending.is_set():
                time.sleep(0.02)
                start += 0.02  # a pause shifts the schedule; the timestamps keep counting
                continue
            due = start + seq * 0.02 + self.delay(seq)
            time.sleep(max(0.0, due - time.monotonic()))
            with self.lock:
                pt, payload, same_ts = self.digits.pop(0) if self.digits else \
                    (0, self.tone[seq % 50], False)
            ts = ev_ts if same_ts else seq * 160  # an event's packets share its timestamp
            ev_ts = ts
            if self.drop(seq):
                self.dropped.append(seq)
            else:
                mark = 0x80 if pt == self.dtmf_pt and not same_ts else 0
                head = struct.pack("!BBHII", 0x80, mark | pt, seq & 0xFFFF, ts, self.ssrc)
                self.rtp.sendto(head + payload, self.remote)
                self.sent.append((seq, ts, time.monotonic() + wall0))
            seq += 1

    def _recv(self):
        next_rr = time.monotonic() + (self.rtcp_s or 1e9)
        while not self.closing:
            try:
                data = self.rtp.recv(2048)
            except (socket.timeout, OSError):
                data = None
            now = time.monotonic()
            if data and len(data) >= 12 and data[0] >> 6 == 2:
                pt = data[1] & 0x7F
                seq, ts, ssrc = struct.unpack("!HII", data[2:12])
                self.arrivals.append((now, pt))
                if not self.ignore(seq):
                    self.rx.update(ssrc, seq, ts, time.time() + self.rx_delay(seq))
                    if pt == 0:
                        self.heard += [audio._ULAW[b] for b in data[12:]]
                    elif pt == self.dtmf_pt and len(data) >= 16:
                        ev, flags, dur = struct.unpack("!BBH", data[12:16])
                        self.events.append((ev, bool(flags & 0x80), dur, ts))
            if self.rtcp_s and now >= next_rr and self.rx.ssrc is not None:
                next_rr = now + self.rtcp_s
                self._send_rr()

    def _send_rr(self):
        fraction, lost, max_seq, jitter = self.rx.report_block()
        rr = struct.pack("!BBHI", 0x81, 201, 7, self.ssrc)
        rr += struct.pack("!IIIIII", self.rx.ssrc, fraction << 24 | lost, max_seq, jitter, 0, 0)
        self.reports.append((fraction, lost, jitter))
        self.rtcp.sendto(rr, (self.remote[0], self.remote[1] + 1))

    def event_digits(self):
        """The digits of the telephone-events received, one per event (by timestamp)."""
        seen, out = set(), []
        for ev, _end, _dur, ts in self.events:
            if ts not in seen:
                seen.add(ts)
                out.append(EVENT_CHARS[ev] if ev < 16 else "?")
        return "".join(out)

    def close(self):
        self.closing = True
        self.sending.clear()
        for t in self.threads:
            if t.is_alive():
                t.join(2)
        self.rtp.close()
        self.rtcp.close()
        self.c.close()
