"""cwload's register scenario, short: 40 users register, refresh every
second for three seconds, then unregister.

cwload must report every registration and refresh answered 200; the
platform's registrations table must hold all 40 contacts during the run and
none after it.
"""
import threading

from cwtest import TestFailure, run_tests
from loadkit import cwload, login_admin, make_users

USERS = 40


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def test_cwload_register_smoke(d):
    api = login_admin(d)
    make_users(api, "rg", 7401, USERS, groups="Registered")
    seen = []
    done = threading.Event()

    def watch():  # the most contacts the platform held at once
        while not done.wait(0.2):
            seen.append(int(d.sql("SELECT COUNT(*) FROM registrations")[0][0]))
    t = threading.Thread(target=watch)
    t.start()
    try:
        r = cwload("register", d, ["--callee", "rg%d:Load-pw-%d", "--callees",
                                   "7401-%d" % (7400 + USERS), "--reg-rate", "100",
                                   "--refresh", "1", "--duration", "3", "--setup-timeout", "5"],
                   timeout=60)
    finally:
        done.set()
        t.join(10)
    f = r.figures
    check(r.code == 0 and f, "cwload failed: %r" % r)
    reg = f["registrations"]
    check(reg["ok"] == USERS and reg["failed"] == 0, "registrations: %r" % reg)
    check(reg["refresh_ok"] >= USERS and reg["refresh_failed"] == 0, "refreshes: %r" % reg)
    check(f["register_ms"]["n"] == USERS and f["refresh_ms"]["n"] == reg["refresh_ok"],
          "timings: %r %r" % (f["register_ms"], f["refresh_ms"]))
    check(max(seen or [0]) == USERS, "the platform held at most %r contacts" % max(seen or [0]))
    left = int(d.sql("SELECT COUNT(*) FROM registrations")[0][0])
    check(left == 0, "%d contacts left after cwload unregistered" % left)
    check(f["failures"] == {}, "failures: %r" % f["failures"])


if __name__ == "__main__":
    run_tests([test_cwload_register_smoke], demo=True)
