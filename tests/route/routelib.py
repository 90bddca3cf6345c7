"""routelib - what the routing tests share: a provider trunk whose calls come
from 127.0.0.2 (a real baresip acting as the carrier, one per caller number),
agent phones, and helpers to shift the daemon's clock (clock.offset through
its configuration file and SIGHUP) so schedules can be crossed at will.
"""

import datetime
import os
import signal
import time
import zoneinfo

from cwtest import Daemon, TestFailure, wait_until
from sipua import Phone

PROVIDER_IP = "127.0.0.2"
PROVIDER_REALM = "carrier.example"
DOM = "/api/v1/domains/demo.local"


class ProviderPhone(Phone):
    """A carrier's phone: calls arrive from the trunk address with any caller number."""

    def __init__(self, caller_number, sip_port, seconds=40, mic_wav=None, ip=PROVIDER_IP,
                 realm=PROVIDER_REALM, auto_answer=False):
        super().__init__("prov" + caller_number[-4:], caller_number, "", sip_port,
                         domain=realm, seconds=seconds, mic_wav=mic_wav, auto_answer=auto_answer,
                         regint=0, local_ip=ip)
        self.ip = ip

    def call(self, number, port):
        return self.dial("sip:%s@127.0.0.1:%d" % (number, port))


def add_trunk(sysadmin, kind="sip_trunk", name="Carrier", domain="demo.local", host=PROVIDER_IP,
              port=5060, realm=PROVIDER_REALM, dial_pattern=""):
    """The provider's trunk: calls from PROVIDER_IP whose From names its realm; calls to
    numbers matching dial_pattern leave through it."""
    t = sysadmin.ok("POST", "/api/v1/domains/%s/trunks" % domain,
                    {"name": name, "kind": kind, "host": host, "port": port,
                     "realm": realm, "register": False, "dial_pattern": dial_pattern},
                    status=201)
    return t["id"]


# ------------------------------------------------------------------ clock

def set_clock(d, local, zone):
    """Make the daemon's wall clock read `local` (a naive datetime) in `zone`, via SIGHUP."""
    target = local.replace(tzinfo=zoneinfo.ZoneInfo(zone)).timestamp()
    offset = int(round(target - time.time()))
    os.makedirs(os.path.join(d.dir, "etc"), exist_ok=True)
    with open(os.path.join(d.dir, "etc", "callwright.lua"), "w") as f:
        f.write('return { clock = { offset = "%d" } }\n' % offset)
    before = d.log_text().count("configuration reloaded")
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: d.log_text().count("configuration reloaded") > before, 10, 0.05,
               "the daemon to reload its configuration")
    return offset


def monday(week_offset=0):
    """A Monday's date (a fixed, real one: weekdays of the tests are certain)."""
    return datetime.date(2026, 11, 23) + datetime.timedelta(weeks=week_offset)


def cdr_says(client, caller, text, known=(), timeout=10):
    """A call from `caller` not in `known` has `text` in its protocol (CDRs come in batches)."""
    seen = []

    def find():
        items = client.ok("GET", DOM + "/cdrs", query={"number": caller, "limit": 20})["items"]
        del seen[:]
        for x in items:
            if x["uuid"] in known:
                continue
            texts = [e["text"] for e in x["events"]]
            seen.append(texts)
            if any(text in t for t in texts):
                return x
        return None
    try:
        return wait_until(find, timeout, 0.2, "the CDR of the call from %s" % caller)
    except TestFailure:
        raise TestFailure("no call from %s says %r: %r" % (caller, text, seen))


def cdr_uuids(client, caller):
    return {x["uuid"] for x in client.ok("GET", DOM + "/cdrs",
                                         query={"number": caller, "limit": 1000})["items"]}


def check(cond, what):
    if not cond:
        raise TestFailure(what)


class ClockDaemon(Daemon):
    """A daemon started with a configuration file, so clock.offset can change on SIGHUP."""

    def start(self, timeout=90):
        path = os.path.join(self.dir, "etc", "callwright.lua")
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write('return { clock = { offset = "0" } }\n')
        return super().start(timeout)


def run(tests, **daemon_args):
    """Like cwtest.run_tests, on a ClockDaemon."""
    import sys
    import traceback
    from cwtest import free_udp_range
    failed = 0
    # a wider RTP range than the default 64 ports: these tests place many calls
    base = free_udp_range(256)
    sets = dict(daemon_args.pop("sets", {}) or {})
    sets.setdefault("media.rtp_min", str(base))
    sets.setdefault("media.rtp_max", str(base + 255))
    d = ClockDaemon(sets=sets, **daemon_args)
    try:
        d.start()
        for t in tests:
            t0 = time.monotonic()
            try:
                t(d)
                print("ok   %-50s %6.2f s" % (t.__name__, time.monotonic() - t0), flush=True)
            except Exception:
                failed += 1
                print("FAIL %s" % t.__name__, flush=True)
                traceback.print_exc()
            if not d.alive():
                print("FAIL daemon died during %s" % t.__name__)
                failed += 1
                break
        if d.alive():
            d.stop()
    except Exception:
        failed += 1
        traceback.print_exc()
    finally:
        if failed:
            sys.stderr.write("---- daemon log (%s) ----\n%s\n" % (d.dir, d.log_text()[-15000:]))
        d.cleanup()
    print("%d of %d tests failed (store: %s)" % (failed, len(tests), d.store) if failed else
          "all %d tests passed (store: %s)" % (len(tests), d.store))
    sys.exit(1 if failed else 0)
