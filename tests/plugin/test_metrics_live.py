#!/usr/bin/python3
"""/metrics follows real phones, a queue and an agent.

On the demo tenant with the metrics plugin: operator 101's phone and the
admin's phone register (cw_registrations); 101 logs in as an agent and
goes on a break through the API (cw_agents by state); the admin calls the
Support queue, where nobody is available, and waits (cw_queue_waiting,
cw_calls_active, cw_calls_total); 101 becomes available, the queue rings
its phone, it answers and the two hear each other (the caller stops
waiting, 101 leaves "available"); the caller hangs up and the call is gone
from the figures.
"""

import os
import time

import audio
from cwtest import DEMO, DEMO_DOMAIN, TestFailure, run_tests, wait_until
from promtext import scrape, val
from sipua import Phone

DOM = "/api/v1/domains/" + DEMO_DOMAIN
HZ = {"caller": 600, "op101": 1700}


def figure(d, name, **labels):
    return val(scrape(d)[0], name, **labels)


def becomes(d, what, name, value, **labels):
    """Wait until the series has value; (TestFailure naming what otherwise)."""
    return wait_until(lambda: figure(d, name, **labels) == value or None, 10, 0.1,
                      "%s: %s%r == %s (now %s)" % (what, name, labels, value,
                                                   figure(d, name, **labels)))


def calls_total(d):
    samples = scrape(d)[0]
    return sum(v for (n, labels), v in samples.items()
               if n == "cw_calls_total" and ("domain", DEMO_DOMAIN) in labels)


def phone(d, name, login, auto):
    mic = audio.write_tone_wav(os.path.join(d.dir, name + ".wav"), HZ[name], 60, amplitude=9000)
    p = Phone(name, login, DEMO[login], d.sip_port, auto_answer=auto, mic_wav=mic, seconds=90)
    p.start()
    if not p.wait_registered(15):
        raise TestFailure("%s did not register" % name)
    return p


def test_metrics_follow_a_call_and_an_agent(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    users = {u["login"]: u["id"] for u in
             admin.ok("GET", DOM + "/users", query={"limit": 100})["items"]}
    agent_url = DOM + "/agents/%d" % users["op101"]
    for login in ("op102", "op103"):  # only 101 takes calls here
        admin.ok("PUT", DOM + "/agents/%d/state" % users[login], {"state": "logged_out"})
    regs0 = figure(d, "cw_registrations", domain=DEMO_DOMAIN)
    avail0 = figure(d, "cw_agents", domain=DEMO_DOMAIN, state="available")
    brk0 = figure(d, "cw_agents", domain=DEMO_DOMAIN, state="break")
    total0 = calls_total(d)
    assert figure(d, "cw_calls_active", domain=DEMO_DOMAIN) == 0
    phones = {}
    try:
        phones["op101"] = phone(d, "op101", "op101", auto=True)
        becomes(d, "101 registered", "cw_registrations", regs0 + 1, domain=DEMO_DOMAIN)
        phones["caller"] = phone(d, "caller", "admin", auto=False)
        becomes(d, "the caller registered", "cw_registrations", regs0 + 2, domain=DEMO_DOMAIN)

        admin.ok("PUT", agent_url + "/state", {"state": "available"})
        becomes(d, "101 logged in", "cw_agents", avail0 + 1, domain=DEMO_DOMAIN,
                state="available")
        admin.ok("PUT", agent_url + "/state", {"state": "break", "reason": "coffee"})
        becomes(d, "101 on a break", "cw_agents", brk0 + 1, domain=DEMO_DOMAIN, state="break")
        assert figure(d, "cw_agents", domain=DEMO_DOMAIN, state="available") == avail0

        phones["caller"].dial("sip:200@%s" % DEMO_DOMAIN)
        becomes(d, "the caller waits", "cw_queue_waiting", 1, domain=DEMO_DOMAIN,
                queue="Support")
        assert figure(d, "cw_calls_active", domain=DEMO_DOMAIN) == 1
        assert calls_total(d) == total0 + 1, (total0, calls_total(d))

        admin.ok("PUT", agent_url + "/state", {"state": "available"})
        if not phones["op101"].wait_event("CALL_ESTABLISHED", 12):
            raise TestFailure("the queue did not give 101 the call")
        becomes(d, "nobody waits", "cw_queue_waiting", 0, domain=DEMO_DOMAIN, queue="Support")
        wait_until(lambda: admin.ok("GET", agent_url)["state"] == "on_call_in", 5, 0.1,
                   "101 on the call (API)")
        becomes(d, "101 on the call", "cw_agents", 1, domain=DEMO_DOMAIN, state="on_call_in")
        assert figure(d, "cw_agents", domain=DEMO_DOMAIN, state="available") == avail0
        assert figure(d, "cw_agents", domain=DEMO_DOMAIN, state="break") == brk0
        assert figure(d, "cw_calls_active", domain=DEMO_DOMAIN) == 1
        time.sleep(2.5)  # the conversation the audio check below listens to

        phones["caller"].hangup()
        if not phones["op101"].wait_event("CALL_CLOSED", 8):
            raise TestFailure("101's phone did not get BYE")
        becomes(d, "the call ended", "cw_calls_active", 0, domain=DEMO_DOMAIN)
        assert calls_total(d) == total0 + 1
    finally:
        for p in phones.values():
            p.stop()
    # the call the figures counted was real: each side heard the other
    rate, s = audio.read_wav(phones["op101"].received_wavs()[0])[:2]
    seg = audio.segment(s, rate, 0.5, 2.0)
    assert audio.tone_share(seg, rate, HZ["caller"]) > 0.4, "101 did not hear the caller"


if __name__ == "__main__":
    run_tests([test_metrics_follow_a_call_and_an_agent], demo=True,
              sets={"plugins": "metrics"})
