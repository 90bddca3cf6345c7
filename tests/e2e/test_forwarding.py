"""The forwarding examples of seed 001 §7.5.2.6 (E1-E4), with real peers.

User 102 has the main SIP rule (their baresip phone) and a rule for
"Mobile_1", a mobile number reached through a trunk to a loopback mobile
network that records every INVITE and rings, answers or says busy as each
case asks. E1's schedule is Mon-Fri 10:00-19:00, Sat 10:00-16:00 in the
domain's time zone (Europe/Moscow); the daemon's clock is set to a
Wednesday noon ("in schedule") and then to a Sunday noon ("out of
schedule") with clock.offset. Ring times are 5 s to keep the test short.

Equal priorities and schedules (E3) follow this reading: within one
priority a rule whose schedule covers now takes precedence over rules
without a schedule; with no schedules, equal priorities ring together (E4).
"""
import datetime
import os
import sys
import threading
import time
import traceback
import zoneinfo

import audio
import sipraw
from cwtest import DEMO, Daemon, TestFailure, wait_until
from sipua import Phone

MOBILE = "89001234567"
TZ = "Europe/Moscow"
E1_SCHEDULE = {"periods": [{"days": [1, 2, 3, 4, 5], "from": "10:00", "to": "19:00"},
                           {"days": [6], "from": "10:00", "to": "16:00"}]}


def check(cond, what):
    if not cond:
        raise TestFailure(what)


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


def offset_for(weekday, hour):
    """clock.offset that makes now the next `weekday` (1 = Monday) at hour:00 in TZ."""
    now = datetime.datetime.now(zoneinfo.ZoneInfo(TZ))
    days = (weekday - now.isoweekday()) % 7 or 7
    target = (now + datetime.timedelta(days=days)).replace(hour=hour, minute=0, second=0,
                                                           microsecond=0)
    return int(target.timestamp() - time.time())


class World:
    def __init__(self, offset):
        self.d = Daemon(demo=True, sets={"clock.offset": str(offset), "sip.keepalive": "0"})
        self.d.start()
        self.net = MobileNetwork(self.d.sip_port)
        sa = self.d.login("sysadmin", DEMO["sysadmin"])
        self.admin = self.d.login("admin", DEMO["admin"], "demo.local")
        me = self.admin.get("/api/v1/auth/me").json
        dom = (me.get("user") or me)["domain_id"]
        r = sa.patch("/api/v1/domains/%d" % dom, {"timezone": TZ})
        check(r.status == 200, "time zone: %r" % r)
        r = sa.post("/api/v1/domains/demo.local/trunks",
                    {"name": "mobile", "host": "127.0.0.1", "port": self.net.port,
                     "register": False, "dial_pattern": "sip:(8\\d{10})@.*"})
        check(r.status == 201, "trunk: %r" % r)
        users = self.admin.get("/api/v1/domains/demo.local/users", query={"q": "op102"})
        self.user = users.json["items"][0]["id"]
        rules = self.admin.get("/api/v1/domains/demo.local/forwarding-rules",
                               query={"owner_id": self.user}).json["items"]
        self.main = [r for r in rules if r["is_main"]][0]["id"]
        self.mobile = None
        self.caller = Phone("caller", "admin", DEMO["admin"], self.d.sip_port, seconds=300)
        self.callee = Phone("sip102", "op102", DEMO["op102"], self.d.sip_port, seconds=300)
        for p in (self.caller, self.callee):
            p.start()
            check(p.wait_registered(15), "%s did not register" % p.name)

    def rules(self, sip_prio, mobile_prio, schedule):
        base = "/api/v1/domains/demo.local/forwarding-rules/"
        r = self.admin.patch(base + str(self.main), {"priority": sip_prio, "ring_time": 5})
        check(r.status == 200, "main rule: %r" % r)
        body = {"priority": mobile_prio, "ring_time": 5, "schedule": schedule}
        if self.mobile is None:
            body.update(owner_id=self.user, kind="mobile", number=MOBILE)
            r = self.admin.post("/api/v1/domains/demo.local/forwarding-rules", body)
            check(r.status == 201, "mobile rule: %r" % r)
            self.mobile = r.json["id"]
        else:
            r = self.admin.patch(base + str(self.mobile), body)
            check(r.status == 200, "mobile rule: %r" % r)

    def call(self, answer_sip=False, mobile="ring", budget=14):
        """Call 102; returns (order of what rang with seconds from the dial, how it ended)."""
        self.net.behaviour[MOBILE] = mobile
        self.net.invites.clear()
        for p in (self.caller, self.callee):
            p.events.clear()
        t0 = time.time()
        self.caller.dial("sip:102@demo.local")
        rang = []
        end = time.time() + budget
        outcome = None
        while time.time() < end:
            if self.callee.wait_event("CALL_INCOMING", 0.1):
                rang.append(("sip", time.time() - t0))
                if answer_sip:
                    self.callee.accept()
            if len(self.net.invites) > len([r for r in rang if r[0] == "mobile"]):
                rang.append(("mobile", self.net.invites[-1][1] - t0))
            e = self.caller.wait_event("CALL_ESTABLISHED", 0.05)
            if e:
                outcome = "answered"
                break
            e = self.caller.wait_event("CALL_CLOSED", 0.05)
            if e:
                outcome = (e.get("param") or "")[:3]
                break
        if outcome == "answered":
            time.sleep(1)
            self.caller.hangup()
            self.caller.wait_event("CALL_CLOSED", 5)
        self.callee.wait_event("CALL_CLOSED", 3)
        time.sleep(0.5)
        return [r[0] for r in sorted(rang, key=lambda x: x[1])], rang, outcome

    def close(self):
        for p in (self.caller, self.callee):
            p.stop()
        self.net.close()
        self.d.stop()
        self.d.cleanup()


def in_schedule(w):
    # E1: SIP 10, Mobile_1 5 with a schedule: Mobile_1 first, then SIP on no answer
    w.rules(10, 5, E1_SCHEDULE)
    order, rang, outcome = w.call(answer_sip=True)
    check(order == ["mobile", "sip"] and outcome == "answered",
          "E1 in schedule: %r %s" % (rang, outcome))
    gap = dict(rang)["sip"] - dict(rang)["mobile"]
    check(4.0 <= gap <= 7.5, "E1: SIP rang %.1f s after the mobile (ring time 5 s)" % gap)
    # a busy number stops the sequence
    order, rang, outcome = w.call(mobile="busy", budget=8)
    check(order == ["mobile"] and outcome == "486", "busy stops: %r %s" % (rang, outcome))
    # E2: SIP 4 first; on no answer, in schedule, Mobile_1; then the end
    w.rules(4, 5, E1_SCHEDULE)
    order, rang, outcome = w.call(budget=16)
    check(order == ["sip", "mobile"] and outcome in ("480", "408"),
          "E2 in schedule: %r %s" % (rang, outcome))
    # E3: equal priorities, in schedule: Mobile_1 only, then the end
    w.rules(4, 4, E1_SCHEDULE)
    order, rang, outcome = w.call(budget=10)
    check(order == ["mobile"] and outcome in ("480", "408"),
          "E3 in schedule: %r %s" % (rang, outcome))
    # E4 case 1: no schedules, SIP 10 then mobile 20, then the end
    w.rules(10, 20, None)
    order, rang, outcome = w.call(budget=16)
    check(order == ["sip", "mobile"] and outcome in ("480", "408"), "E4.1: %r %s" % (rang, outcome))
    # E4 case 2: equal priorities without schedules ring together
    w.rules(10, 10, None)
    order, rang, outcome = w.call(budget=10)
    times = dict(rang)
    check(set(order) == {"sip", "mobile"} and abs(times["sip"] - times["mobile"]) < 1.5,
          "E4.2 together: %r %s" % (rang, outcome))


def out_of_schedule(w):
    # E1: out of schedule straight to SIP, answered
    w.rules(10, 5, E1_SCHEDULE)
    order, rang, outcome = w.call(answer_sip=True)
    check(order == ["sip"] and outcome == "answered", "E1 out of schedule: %r %s" % (rang, outcome))
    # E2: SIP first; out of schedule nothing follows
    w.rules(4, 5, E1_SCHEDULE)
    order, rang, outcome = w.call(budget=10)
    check(order == ["sip"] and outcome in ("480", "408"),
          "E2 out of schedule: %r %s" % (rang, outcome))
    # E3: equal priorities, out of schedule: SIP only
    w.rules(4, 4, E1_SCHEDULE)
    order, rang, outcome = w.call(budget=10)
    check(order == ["sip"] and outcome in ("480", "408"),
          "E3 out of schedule: %r %s" % (rang, outcome))


def main():
    failed = 0
    for name, weekday, fn in (("Wednesday 12:00", 3, in_schedule),
                              ("Sunday 12:00", 7, out_of_schedule)):
        w = None
        t0 = time.monotonic()
        try:
            w = World(offset_for(weekday, 12))
            fn(w)
            print("ok   %-50s %6.2f s" % ("%s (%s)" % (fn.__name__, name),
                                          time.monotonic() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s (%s)" % (fn.__name__, name), flush=True)
            traceback.print_exc()
            if w:
                sys.stderr.write(w.d.log_text()[-6000:])
        finally:
            if w:
                w.close()
    print("%d failed" % failed if failed else "all passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
