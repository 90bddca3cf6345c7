"""netsip - a Net::SIP softphone for tests that need what baresip cannot do
(REFER with Replaces, INVITE without SDP): tests/lib/netsip_phone.pl driven
line by line.

    p = NetSipPhone("b", "op101", DEMO["op101"], d.sip_port, send_hz=1000, dir=d.dir)
    p.start(); p.register()
    p.call("out1", "sip:102@demo.local", late=True)
    p.expect("answered", "out1")
    p.hears("out1", 1700, 0.5, 2.5)   # the call heard a 1700 Hz tone then
    p.stop()

Each call sends a tone of send_hz and keeps what it receives in
<dir>/<name>.pcmu. Every wait has a timeout.
"""

import os
import queue
import subprocess
import threading
import time

import audio

HERE = os.path.dirname(os.path.abspath(__file__))


class NetSipPhone:
    def __init__(self, name, user, password, sip_port, dir, send_hz=1000, domain="demo.local"):
        self.name = name
        self.user, self.password, self.sip_port, self.domain = user, password, sip_port, domain
        self.dir = os.path.join(dir, "netsip-" + name)
        self.send_hz = send_hz
        self.proc = None
        self.lines = queue.Queue()
        self.seen = []

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        tone = audio.write_tone_pcmu(os.path.join(self.dir, "send.pcmu"), self.send_hz, 4,
                                     amplitude=9000)
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen(
            ["/usr/bin/perl", os.path.join(HERE, "netsip_phone.pl"),
             "--server", "127.0.0.1:%d" % self.sip_port, "--user", self.user,
             "--pass", self.password, "--domain", self.domain, "--send", tone,
             "--dir", self.dir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)
        threading.Thread(target=self._reader, daemon=True).start()
        return self

    def _reader(self):
        for line in self.proc.stdout:
            self.lines.put(line.split())
        self.lines.put(["eof"])

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, *words, timeout=10):
        """The first report starting with words (others are kept in self.seen); None on timeout."""
        want = list(words)
        for i, got in enumerate(self.seen):
            if got[:len(want)] == want:
                return self.seen.pop(i)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                got = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if got[:len(want)] == want:
                return got
            if got == ["eof"]:
                self.lines.put(got)
                return None
            self.seen.append(got)

    def register(self, timeout=10):
        self.send("register")
        return self.expect("registered", timeout=timeout) is not None

    def call(self, name, uri, late=False):
        self.send("call %s %s%s" % (name, uri, " late" if late else ""))

    def hold(self, name):
        self.send("hold " + name)

    def refer(self, name, uri, replaces=None, dialog=None):
        """REFER in call name; replaces: another call of this phone (attended transfer);
        dialog: (call_id, to_tag, from_tag) for a Replaces naming any dialog at all."""
        if dialog:
            replaces = "%s;to-tag=%s;from-tag=%s" % dialog
        self.send("refer %s %s%s" % (name, uri, " " + replaces if replaces else ""))

    def dtmf(self, name, digits):
        self.send("dtmf %s %s" % (name, digits))

    def bye(self, name):
        self.send("bye " + name)

    def heard(self, name, start=0.0, end=None):
        """(rate, samples) the call `name` received between start and end seconds."""
        s = audio.read_pcmu(os.path.join(self.dir, name + ".pcmu"))
        return 8000, audio.segment(s, 8000, start, len(s) / 8000 if end is None else end)

    def hears(self, name, hz, start=0.0, end=None):
        """The tone hz fills most 100 ms windows of what call `name` heard in [start, end]."""
        rate, s = self.heard(name, start, end)
        return bool(s) and audio.has_tone(s, rate, hz, min_seconds=0.6 * len(s) / rate)

    def stop(self):
        if not self.proc:
            return
        try:
            self.send("quit")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
        self.log.close()
