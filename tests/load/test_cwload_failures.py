"""cwload against a platform that is not there or not right: it must report
the causes it saw and exit non-zero, within a bounded time, never hang.

- nothing listens on the SIP port (stopped platform): every call and
  registration fails, and cwload says nothing came from that address;
- something holds the port but never answers: calls time out after the
  setup timeout;
- a running platform, wrong password: 403 per call;
- a running platform, a number it does not serve: the refusal per call.
"""
import socket

from cwtest import TestFailure, free_port, run_tests
from loadkit import cwload

NOTHING = "nothing came from"


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def failed_with(r, fragment, calls=None):
    check(r.figures is not None, "no figures: %r" % r)
    check(r.code == 1, "exit status %r, expected 1: %r" % (r.code, r))
    causes = r.failures
    check(any(fragment in k for k in causes), "no failure cause with %r: %r" % (fragment, causes))
    if calls is not None:
        check(r["calls"]["failed"] == calls and r["calls"]["completed"] == 0, "calls: %r" % r)


def test_stopped_platform(d):
    port = free_port(udp_too=True)
    r = cwload("ivr", port, ["--rate", "10", "--calls", "5", "--setup-timeout", "3"], timeout=60)
    failed_with(r, NOTHING, calls=5)
    check(r.seconds < 15, "took %.1f s" % r.seconds)
    r = cwload("queue", port, ["--rate", "10", "--calls", "5", "--setup-timeout", "3"], timeout=60)
    failed_with(r, "no endpoint registered")
    failed_with(r, NOTHING)
    check(r["registrations"]["failed"] == 3, "registrations: %r" % r["registrations"])
    check(r.seconds < 15, "took %.1f s" % r.seconds)
    r = cwload("register", port, ["--duration", "2", "--setup-timeout", "3"], timeout=60)
    failed_with(r, NOTHING)
    check(r.seconds < 15, "took %.1f s" % r.seconds)


def test_silent_platform(d):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))  # holds the port, reads nothing, answers nothing
    try:
        r = cwload("ivr", s.getsockname()[1], ["--rate", "10", "--calls", "3",
                                               "--setup-timeout", "2"], timeout=60)
    finally:
        s.close()
    failed_with(r, "no answer within 2 s", calls=3)
    failed_with(r, NOTHING)
    check(r.seconds < 20, "took %.1f s" % r.seconds)


def test_wrong_password(d):
    r = cwload("ivr", d, ["--caller", "admin:Not-the-password-1:100", "--rate", "10",
                          "--calls", "3", "--setup-timeout", "5"], timeout=60)
    failed_with(r, "403", calls=3)
    check(r.seconds < 20, "took %.1f s" % r.seconds)


def test_unknown_number(d):
    r = cwload("ivr", d, ["--to", "98765", "--rate", "10", "--calls", "3", "--setup-timeout", "5"],
               timeout=60)
    check(r["calls"]["completed"] == 0 and r["calls"]["failed"] == 3, "calls: %r" % r)
    check(r.code == 1 and r.failures, "exit %r, causes %r" % (r.code, r.failures))
    check(not any(NOTHING in k for k in r.failures), "the platform did answer: %r" % r.failures)


if __name__ == "__main__":
    # the wrong password must not get 127.0.0.1 banned for the rest of the run
    run_tests([test_stopped_platform, test_silent_platform, test_wrong_password,
               test_unknown_number], demo=True, sets={"sip.ban_failures": "1000"})
