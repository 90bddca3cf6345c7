"""mobilenet - a loopback mobile network behind a trunk, for tests.

A raw SIP endpoint (sipraw) the daemon's trunk points at: it records every
INVITE (number dialled, time) and CANCEL, and rings, answers or is busy per
number as the test says (behaviour[number] = "ring" | "answer" | "busy").
An answered call gets SDP but no audio.

    net = MobileNetwork(d.sip_port)
    net.behaviour["89001234567"] = "busy"
    ...
    net.close()
"""
import threading
import time

import sipraw


class MobileNetwork:
    """A loopback mobile network behind a trunk: records INVITEs (number, time)
    and rings, answers or is busy per number as told."""

    def __init__(self, daemon_port):
        self.c = sipraw.Client(daemon_port)
        self.c.auto_answer = True
        self.port = self.c.local[1]
        self.behaviour = {}
        self.invites = []  # (number, time)
        self.cancels = []
        self.pending = {}
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            req = self.c.wait_request("INVITE", timeout=0.05)
            if req:
                num = req.uri.split(":")[1].split("@")[0]
                self.invites.append((num, time.time()))
                how = self.behaviour.get(num, "ring")
                if how == "busy":
                    self.c.reply(req, 486, to_tag="m")
                elif how == "answer":
                    self.c.reply(req, 200, to_tag="m", body=sipraw.sdp(self.port + 2))
                else:
                    self.c.reply(req, 180, to_tag="m")
                    self.pending[req.get("call-id")] = req
            can = self.c.wait_request("CANCEL", timeout=0.05)
            if can:
                self.cancels.append(time.time())
                self.c.reply(can, 200, to_tag="m")
                inv = self.pending.pop(can.get("call-id"), None)
                if inv:
                    self.c.reply(inv, 487, to_tag="m")
            self.c.wait_request("ACK", timeout=0.01)

    def close(self):
        self.stop = True
        self.t.join(2)
        self.c.close()
