#!/usr/bin/python3
# cw-test: both-stores
"""Failed-login throttling: after auth.login_max_failures failures an
account is locked (429 with Retry-After, even with the right password)
while other accounts still log in; an IP that keeps failing across many
accounts is locked too; the lock ends after auth.lockout seconds."""

import time

from cwtest import DEMO, DEMO_DOMAIN, run_tests, wait_until


def test_account_locks_after_repeated_failures(d):
    c = d.client()
    for i in range(3):
        r = c.login("op101", "Wrong-pass-%d" % i, DEMO_DOMAIN, expect=None)
        assert r.status == 401, r
    r = c.login("op101", DEMO["op101"], DEMO_DOMAIN, expect=None)
    assert r.status == 429, r
    assert r.error()["code"] == "too_many_attempts" and int(r.header("retry-after")) > 0, r
    # another account from the same address is not locked by op101's failures alone
    d.client().login("op102", DEMO["op102"], DEMO_DOMAIN)
    # the lock ends after auth.lockout (3 s here)
    wait_until(lambda: c.login("op101", DEMO["op101"], DEMO_DOMAIN, expect=None).status == 200,
               timeout=10, interval=0.5, what="the account lock to end")


def test_an_address_guessing_many_accounts_is_locked(d):
    c = d.client()
    # one failure each on 3 accounts (after 3 earlier ones): the IP reaches its limit of 6
    for login in ("nobody1", "nobody2", "nobody3"):
        assert c.login(login, "Guess-pass-1", DEMO_DOMAIN, expect=None).status == 401
    r = c.login("op103", DEMO["op103"], DEMO_DOMAIN, expect=None)
    assert r.status == 429, r
    time.sleep(3.2)
    c.login("op103", DEMO["op103"], DEMO_DOMAIN)


def test_password_reset_requests_count_against_the_limit(d):
    c = d.client()
    for _ in range(3):
        assert c.post("/api/v1/auth/reset-request",
                      {"login": "op102", "domain": DEMO_DOMAIN}).status == 202
    r = c.post("/api/v1/auth/reset-request", {"login": "op102", "domain": DEMO_DOMAIN})
    assert r.status == 429, r
    time.sleep(3.2)


if __name__ == "__main__":
    run_tests([test_account_locks_after_repeated_failures,
               test_an_address_guessing_many_accounts_is_locked,
               test_password_reset_requests_count_against_the_limit],
              demo=True, sets={"auth.login_max_failures": "3", "auth.login_max_failures_ip": "6",
                               "auth.login_window": "60",
                               "auth.lockout": "3"})
