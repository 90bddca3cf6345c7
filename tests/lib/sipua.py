"""sipua - baresip softphones for tests.

Each Phone is one baresip process with its own config folder, SIP port and
RTP ports, driven over baresip's ctrl_tcp module (netstring JSON): commands
go in, call events come out. What the phone heard is recorded by the
sndfile module as <dir>/dump-*-dec.wav; what it says comes from mic_wav.

    with Phone("alice", "alice", "secret1", sip_port=d.sip_port) as a:
        a.wait_registered()
        a.dial("sip:102@demo.local")
        a.wait_event("CALL_ESTABLISHED")
        a.dtmf("123")
        a.hangup()
"""

import glob
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import wave

from cwsip import free_port

MODULES = "/usr/lib/baresip/modules"


def write_tone_wav(path, seconds=3.0, freq=440.0, rate=8000, amp=8000):
    """A mono 16-bit 8 kHz sine: something audible for the far end."""
    import math
    n = int(seconds * rate)
    frames = b"".join(struct.pack("<h", int(amp * math.sin(2 * math.pi * freq * i / rate)))
                      for i in range(n))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return path


def wav_rms(path):
    """Root mean square of a 16-bit WAV (0 = silence)."""
    with wave.open(path, "rb") as w:
        data = w.readframes(w.getnframes())
        width = w.getsampwidth()
    if width != 2 or not data:
        return 0.0
    n = len(data) // 2
    samples = struct.unpack("<%dh" % n, data[:n * 2])
    return (sum(s * s for s in samples) / max(n, 1)) ** 0.5


class Phone:
    def __init__(self, name, user, password, sip_port, domain="demo.local", auto_answer=False,
                 mic_wav=None, seconds=60, regint=120, transport="udp", extra_account=""):
        self.name = name
        self.user = user
        self.password = password
        self.server_port = sip_port
        self.domain = domain
        self.auto_answer = auto_answer
        self.mic_wav = mic_wav
        self.seconds = seconds
        self.regint = regint
        self.transport = transport
        self.extra_account = extra_account
        self.dir = None
        self.proc = None
        self.sock = None
        self.buf = b""
        self.events = []
        self.responses = []
        self.token = 0

    # --- lifecycle -------------------------------------------------------
    def start(self, timeout=10):
        self.dir = tempfile.mkdtemp(prefix="cw-phone-%s-" % self.name)
        self.sip_listen = free_port()
        self.ctrl_port = free_port(udp_too=False)
        rtp = free_port()
        if not self.mic_wav:
            self.mic_wav = write_tone_wav(os.path.join(self.dir, "mic.wav"), seconds=30)
        cfg = [
            "poll_method epoll",
            "sip_listen 127.0.0.1:%d" % self.sip_listen,
            "audio_source aufile,%s" % self.mic_wav,
            "audio_player aubridge,%s" % self.name,
            "audio_alert aubridge,%s" % self.name,
            "rtp_ports %d-%d" % (rtp, rtp + 40),
            "module_path " + MODULES,
            "module g711.so",
            "module aufile.so",
            "module aubridge.so",
            "module sndfile.so",
            "module_app account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            "ctrl_tcp_listen 127.0.0.1:%d" % self.ctrl_port,
            "snd_path " + self.dir,
            "dns_server 127.0.0.1:53",
        ]
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write("\n".join(cfg) + "\n")
        tr = "" if self.transport == "udp" else ";transport=%s" % self.transport
        acc = ('<sip:%s@%s>;auth_pass=%s;outbound="sip:127.0.0.1:%d%s";regint=%d;'
               'audio_codecs=PCMU,PCMA;answermode=%s%s'
               % (self.user, self.domain, self.password, self.server_port, tr, self.regint,
                  "auto" if self.auto_answer else "manual", self.extra_account))
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write(acc + "\n")
        self.log = open(os.path.join(self.dir, "baresip.log"), "w")
        self.proc = subprocess.Popen(["baresip", "-f", self.dir, "-t", str(self.seconds)],
                                     cwd=self.dir, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("baresip exited: %s" % self.output())
                time.sleep(0.1)
        raise RuntimeError("baresip control port did not open")

    def output(self):
        try:
            with open(os.path.join(self.dir, "baresip.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.sock:
            try:
                self.command("quit", timeout=1)
            except Exception:
                pass
            self.sock.close()
            self.sock = None
        if self.proc:
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
            self.log.close()

    def cleanup(self):
        self.stop()
        if self.dir and not os.environ.get("CW_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # --- control ---------------------------------------------------------
    def _read(self, timeout):
        """Read netstring messages for up to timeout seconds."""
        deadline = time.time() + timeout
        while True:
            colon = self.buf.find(b":")
            if colon > 0 and self.buf[:colon].isdigit():
                n = int(self.buf[:colon])
                if len(self.buf) >= colon + 1 + n + 1:
                    payload = self.buf[colon + 1:colon + 1 + n]
                    self.buf = self.buf[colon + 1 + n + 1:]
                    try:
                        msg = json.loads(payload.decode(errors="replace"))
                    except ValueError:
                        continue
                    if msg.get("event"):
                        self.events.append(msg)
                    elif msg.get("response"):
                        self.responses.append(msg)
                    continue
            left = deadline - time.time()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return
            if not chunk:
                return
            self.buf += chunk

    def command(self, cmd, params="", timeout=5):
        self.token += 1
        tok = str(self.token)
        body = json.dumps({"command": cmd, "params": params, "token": tok}).encode()
        self.sock.sendall(b"%d:%s," % (len(body), body))
        deadline = time.time() + timeout
        while time.time() < deadline:
            for r in self.responses:
                if r.get("token") == tok:
                    self.responses.remove(r)
                    return r
            self._read(0.1)
        return None

    def wait_event(self, etype, timeout=10, pred=None):
        """The first event of type etype (e.g. CALL_ESTABLISHED) not yet taken."""
        deadline = time.time() + timeout
        while True:
            for e in self.events:
                if e.get("type") == etype and (pred is None or pred(e)):
                    self.events.remove(e)
                    return e
            left = deadline - time.time()
            if left <= 0:
                return None
            self._read(min(left, 0.2))

    def seen(self, etype):
        self._read(0)
        return [e for e in self.events if e.get("type") == etype]

    def registered(self):
        """True when baresip's account shows OK (asked over ctrl_tcp)."""
        r = self.command("reginfo", timeout=2)
        return bool(r and r.get("ok") and "OK" in r.get("data", ""))

    def wait_registered(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.registered():
                return True
            time.sleep(0.2)
        return False

    def dial(self, uri):
        return self.command("dial", uri)

    def accept(self):
        return self.command("accept")

    def hangup(self):
        return self.command("hangup")

    def hold(self):
        return self.command("hold")

    def resume(self):
        return self.command("resume")

    def transfer(self, uri):
        return self.command("transfer", uri)

    def dtmf(self, digits):
        for d in digits:
            self.command("sndcode", d)
            time.sleep(0.25)

    def received_wavs(self):
        """What the phone heard, one WAV per call (sndfile's -dec.wav)."""
        return sorted(glob.glob(os.path.join(self.dir, "*-dec.wav")))
