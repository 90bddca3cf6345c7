#!/usr/bin/python3
# cw-test: both-stores
"""Registrar: digest MD5 and SHA-256, several contacts per AOR, refresh,
un-REGISTER (one contact and *), expiry, 423, 404/403, rport source,
TCP, user agent and store rows, and bindings surviving a restart."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cwtest  # noqa: E402
import sipraw  # noqa: E402

FAILED = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILED.append(what)


def contacts(resp):
    return sorted(v.split(";")[0].strip("<>") for v in resp.all("contact"))


def main():
    # both digest algorithms offered (RFC 8760); the default offers MD5 alone
    d = cwtest.Daemon(sets={"sip.digest": "both", "sip.reg_min_expires": "2",
                            "sip.keepalive": "0", "sip.ban_failures": "100",
                            "sip.nonce_ttl": "2"}, log_level="debug").start()
    try:
        d.add_domain()
        d.add_domain("other.local")
        d.add_user("alice", "101", "secret1")
        d.add_user("bob", "102", "secret2")
        d.add_user("carol", "103", "secret3", status="disabled")
        port = d.sip_port

        # MD5 and SHA-256 both register; the AOR may be the login or the extension
        a = sipraw.Client(port)
        r = a.register("alice", "demo.local", "secret1", expires=60)
        check(r is not None and r.status == 200, "MD5 REGISTER gets 200")
        check(r and contacts(r) == ["sip:alice@127.0.0.1:%d" % a.local[1]],
              "200 lists the new contact")
        b = sipraw.Client(port)
        r = b.register("alice", "demo.local", "secret1", alg="SHA-256", aor_user="101")
        check(r is not None and r.status == 200, "SHA-256 REGISTER to the extension AOR gets 200")
        check(r and len(r.all("contact")) == 2, "both contacts of the AOR are listed")
        rows = d.registrations("alice")
        check(len(rows) == 2, "two registrations rows for alice (%d)" % len(rows))
        check(all(row[3] == "sipraw" for row in rows), "user agent recorded")
        check(sorted(row[4] for row in rows) ==
              sorted("127.0.0.1:%d" % c.local[1] for c in (a, b)), "source ip:port recorded")

        # the challenge offers SHA-256 first, then MD5
        c = sipraw.Client(port)
        c.request("REGISTER", "sip:demo.local", "sip:bob@demo.local", "sip:bob@demo.local")
        r = c.final()
        algs = [sipraw.parse_challenge(v).get("algorithm") for v in r.all("www-authenticate")]
        check(r.status == 401 and algs == ["SHA-256", "MD5"], "401 offers SHA-256 then MD5")

        # wrong password, unknown user, unknown domain, disabled user
        r = c.register("bob", "demo.local", "nope")
        check(r is not None and r.status == 403, "wrong password gets 403")
        r = c.register("mallory", "demo.local", "x")
        check(r is not None and r.status == 403, "unknown user gets 403")
        r = c.register("bob", "nowhere.example", "secret2")
        check(r is not None and r.status == 404, "unknown domain gets 404")
        r = c.register("bob", "other.local", "secret2")
        check(r is not None and r.status in (401, 403), "user of another domain is refused")
        r = c.register("carol", "demo.local", "secret3")
        check(r is not None and r.status == 403, "disabled user gets 403")
        r = c.register("alice", "demo.local", "secret1", aor_user="102")
        check(r is not None and r.status == 403, "alice's credentials for bob's AOR get 403")
        check(d.registrations("bob") == [], "nothing stored for refused requests")

        # a nonce we did not make (forged MAC) is challenged again, not accepted
        chal = {"realm": "demo.local", "nonce": "0" * 48, "qop": "auth"}
        auth = sipraw.digest_header(chal, "REGISTER", "sip:demo.local", "bob", "secret2")
        c.request("REGISTER", "sip:demo.local", "sip:bob@demo.local", "sip:bob@demo.local",
                  ["Expires: 60", "Authorization: " + auth])
        r = c.final()
        check(r is not None and r.status == 401 and "stale" not in r.raw,
              "a nonce we did not make is challenged again")
        # an old nonce of ours with the right password: 401 with stale=true
        c.request("REGISTER", "sip:demo.local", "sip:bob@demo.local", "sip:bob@demo.local")
        chal = sipraw.parse_challenge(c.final().all("www-authenticate")[1])
        time.sleep(3.2)
        auth = sipraw.digest_header(chal, "REGISTER", "sip:demo.local", "bob", "secret2")
        c.request("REGISTER", "sip:demo.local", "sip:bob@demo.local", "sip:bob@demo.local",
                  ["Expires: 60", "Authorization: " + auth])
        r = c.final()
        stale = [sipraw.parse_challenge(v).get("stale") for v in r.all("www-authenticate")]
        check(r.status == 401 and stale == ["true", "true"], "an old nonce is stale=true")
        check(d.registrations("bob") == [], "a stale nonce registers nothing")

        # too brief, then refresh and un-register one contact
        r = b.register("alice", "demo.local", "secret1", expires=1)
        check(r is not None and r.status == 423 and r.get("min-expires") == "2",
              "expires below the minimum gets 423 with Min-Expires")
        before = int(d.registrations("alice")[0][2])
        time.sleep(1.1)
        r = a.register("alice", "demo.local", "secret1", expires=120)
        after = max(int(row[2]) for row in d.registrations("alice"))
        check(r.status == 200 and after >= before + 60, "refresh moves the expiry")
        r = b.register("alice", "demo.local", "secret1", expires=0, aor_user="101")
        check(r.status == 200 and contacts(r) == ["sip:alice@127.0.0.1:%d" % a.local[1]],
              "Expires: 0 removes only that contact")
        check(len(d.registrations("alice")) == 1, "one row left in the store")

        # a query (no Contact) lists the bindings
        a.request("REGISTER", "sip:demo.local", "sip:alice@demo.local", "sip:alice@demo.local",
                  contact="")
        r = a.final()
        if r.status == 401:
            auth = sipraw.digest_header(sipraw.parse_challenge(r.all("www-authenticate")[1]),
                                        "REGISTER", "sip:demo.local", "alice", "secret1")
            a.request("REGISTER", "sip:demo.local", "sip:alice@demo.local",
                      "sip:alice@demo.local", ["Authorization: " + auth], contact="")
            r = a.final()
        check(r.status == 200 and len(r.all("contact")) == 1, "a query lists the bindings")

        # TCP
        t = sipraw.Client(port, transport="tcp")
        r = t.register("bob", "demo.local", "secret2", expires=60)
        check(r is not None and r.status == 200, "REGISTER over TCP gets 200")
        rows = d.registrations("bob")
        check(len(rows) == 1 and rows[0][5] == "tcp", "transport tcp recorded")

        # a contact naming an unreachable address: the source is what counts
        n = sipraw.Client(port)
        r = n.register("bob", "demo.local", "secret2", contact="<sip:bob@10.255.255.1:5099>")
        rows = [row for row in d.registrations("bob") if "10.255.255.1" in row[1]]
        check(r.status == 200 and rows and rows[0][4] == "127.0.0.1:%d" % n.local[1],
              "NAT: the received address and rport are stored with the contact")

        # Contact: * with Expires: 0 removes every binding of the AOR
        r = n.register("bob", "demo.local", "secret2", expires=0, contact="*")
        check(r.status == 200 and not r.all("contact"), "Contact: * removes all")
        check(d.registrations("bob") == [], "no rows left for bob")
        r = n.register("bob", "demo.local", "secret2", expires=60, contact="*")
        check(r.status == 400, "Contact: * without Expires: 0 gets 400")

        # expiry on the daemon's own clock
        e = sipraw.Client(port)
        r = e.register("bob", "demo.local", "secret2", expires=2)
        check(r.status == 200, "short registration accepted")
        deadline = time.time() + 6
        while d.registrations("bob") and time.time() < deadline:
            time.sleep(0.2)
        check(d.registrations("bob") == [], "an expired binding leaves the store")
        check("unregistered bob@demo.local" in d.log_text() and "(expired)" in d.log_text(),
              "expiry logged")

        # bindings survive a restart on the same store (a query shows them)
        code = d.restart()
        check(code == 0, "daemon stops cleanly on SIGTERM (exit %s)" % code)
        a.request("REGISTER", "sip:demo.local", "sip:alice@demo.local", "sip:alice@demo.local",
                  contact="")
        r = a.final()
        auth = sipraw.digest_header(sipraw.parse_challenge(r.all("www-authenticate")[1]),
                                    "REGISTER", "sip:demo.local", "alice", "secret1")
        a.request("REGISTER", "sip:demo.local", "sip:alice@demo.local", "sip:alice@demo.local",
                  ["Authorization: " + auth], contact="")
        r = a.final()
        check(r is not None and contacts(r) == ["sip:alice@127.0.0.1:%d" % a.local[1]],
              "a binding made before a restart is still there after it")
        for cl in (a, b, c, t, n, e):
            cl.close()
    finally:
        try:
            code = d.stop()
        finally:
            d.cleanup()
    check(code == 0, "daemon stops cleanly (exit %s)" % code)


if __name__ == "__main__":
    main()
    if FAILED:
        print("%d check(s) failed" % len(FAILED))
        sys.exit(1)
