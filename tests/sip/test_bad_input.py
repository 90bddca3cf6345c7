#!/usr/bin/python3
"""Bad SIP input: junk datagrams, requests missing headers, bad credentials,
unusable SDP, other tenants' domains, oversized and truncated messages over
UDP and TCP, and a few hundred mutated REGISTERs. Every request that can be
answered gets the proper code; the daemon keeps serving and stops cleanly."""

import os
import random
import re
import socket
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


def raw_request(c, lines, body=""):
    text = "\r\n".join(lines) + "\r\nContent-Length: %d\r\n\r\n%s" % (len(body.encode()), body)
    c.send_raw(text)


def base_headers(c, method, cseq=1, uri="sip:demo.local"):
    return ["%s %s SIP/2.0" % (method, uri), "Via: " + c.via(), "Max-Forwards: 70",
            "From: <sip:alice@demo.local>;tag=%s" % os.urandom(3).hex(),
            "To: <sip:alice@demo.local>", "Call-ID: %s@bad" % os.urandom(6).hex(),
            "CSeq: %d %s" % (cseq, method)]


def alive(d):
    c = sipraw.Client(d.sip_port)
    c.request("OPTIONS", "sip:demo.local", "sip:probe@demo.local", "sip:demo.local")
    r = c.final(timeout=3)
    c.close()
    return r is not None and r.status == 200


def invite_auth(c, body, ctype="application/sdp", frm="alice", pw="secret1",
                uri="sip:102@demo.local"):
    c.new_call()
    hdr = ["Content-Type: " + ctype]
    c.request("INVITE", uri, "sip:%s@demo.local" % frm, uri, hdr, body=body)
    r = c.final()
    if r is None or r.status != 407:
        return r
    c.ack(r)
    chal = sipraw.parse_challenge(r.all("proxy-authenticate")[-1])
    auth = sipraw.digest_header(chal, "INVITE", uri, frm, pw)
    c.request("INVITE", uri, "sip:%s@demo.local" % frm, uri,
              hdr + ["Proxy-Authorization: " + auth], body=body)
    r = c.final()
    if r is not None and r.status >= 300:
        c.ack(r)
    return r


def main():
    d = cwtest.Daemon(sets={"sip.keepalive": "0", "sip.ban_failures": "1000"}).start()
    try:
        d.add_domain()
        d.add_domain("other.local")
        d.add_user("alice", "101", "secret1")
        d.add_user("bob", "102", "secret2")
        d.add_user("carol", "103", "secret3")
        d.add_user("olga", "101", "secret9", domain="other.local")
        port = d.sip_port
        c = sipraw.Client(port)

        # junk datagrams: no answer, no harm
        for junk in (b"\x00" * 100, os.urandom(1400), b"SIP/2.0 200 OK\r\n\r\n",
                     b"INVITE\r\n\r\n", b"\r\n\r\n", b"REGISTER sip:x SIP/9.9\r\n\r\n"):
            c.send_raw(junk)
        check(alive(d), "junk datagrams do not stop the daemon")

        # missing mandatory headers -> 400
        lines = [l for l in base_headers(c, "REGISTER") if not l.startswith("Call-ID")]
        raw_request(c, lines)
        r = c.recv(3)
        check(r is not None and r.status == 400, "REGISTER without Call-ID gets 400")

        # unknown method, unsupported URI scheme, bad Expires
        lines = base_headers(c, "FROB")
        raw_request(c, lines)
        r = c.recv(3)
        check(r is not None and r.status in (405, 501), "unknown method gets 405/501 (%s)"
              % (r and r.status))
        lines = base_headers(c, "OPTIONS", uri="mailto:alice@demo.local")
        raw_request(c, lines)
        r = c.recv(3)
        check(r is not None and r.status in (400, 416), "mailto: request URI is refused (%s)"
              % (r and r.status))
        lines = base_headers(c, "REGISTER") + ["Expires: soon",
                                               "Contact: <sip:alice@127.0.0.1:1>"]
        raw_request(c, lines)
        r = c.recv(3)
        check(r is not None and r.status in (400, 401), "non-numeric Expires is refused (%s)"
              % (r and r.status))

        # credentials that are not digest, or digest junk
        for junk in ("Basic YWxpY2U6c2VjcmV0MQ==", 'Digest username="alice", nonce=',
                     "Digest " + "x" * 900):
            c.new_call()
            c.request("REGISTER", "sip:demo.local", "sip:alice@demo.local",
                      "sip:alice@demo.local", ["Authorization: " + junk])
            r = c.final()
            check(r is not None and r.status in (400, 401), "credentials %r... refused with %s"
                  % (junk[:20], r and r.status))
        check(d.registrations() == [], "nothing registered by bad credentials")

        # other tenants' domains
        r = c.register("olga", "other.local", "secret9")
        check(r is not None and r.status == 200, "a user of another tenant registers in hers")
        r = c.register("olga", "demo.local", "secret9")
        check(r is not None and r.status == 403, "her credentials are not valid in demo.local")
        r = c.register("alice", "unknown.example", "secret1")
        check(r is not None and r.status == 404, "REGISTER for a domain we do not serve: 404")
        c.new_call()
        c.request("INVITE", "sip:102@demo.local", "sip:x@unknown.example", "sip:102@demo.local",
                  body=sipraw.sdp())
        r = c.final()
        check(r is not None and r.status == 403, "INVITE from a domain we do not serve: 403")
        if r:
            c.ack(r)
        r = invite_auth(c, sipraw.sdp(), frm="olga", pw="secret9")
        check(r is not None and r.status == 403, "olga's credentials in demo.local's realm: 403")

        # a device calls within its own domain: not another tenant's, not one we do not serve
        r = invite_auth(c, sipraw.sdp(), uri="sip:101@other.local")
        check(r is not None and r.status == 403, "INVITE to another tenant's domain: 403 (%s)"
              % (r and r.status))
        r = invite_auth(c, sipraw.sdp(), uri="sip:102@nowhere.example")
        check(r is not None and r.status == 404, "INVITE to a domain we do not serve: 404 (%s)"
              % (r and r.status))
        check("to 101@other.local: another tenant's domain" in d.log_text(),
              "the refused INVITE is logged and reached no call")

        # BLF: one watcher, several subscriptions; other domains and unknown users refused
        w = sipraw.Client(port)
        for target in ("102", "103", "bob"):
            w.new_call()
            r = w.watch_dialog(target, "demo.local", "alice", "secret1")
            check(r is not None and r.status == 202, "alice watches %s: %s" % (
                target, r and r.status))
        entities = set()
        for _ in range(3):
            n = w.wait_request("NOTIFY", timeout=3)
            m = re.search(r'entity="([^"]+)"', n.body if n else "")
            entities.add(m.group(1) if m else None)
        check(entities == {"sip:102@demo.local", "sip:103@demo.local"},
              "each subscription gets its own NOTIFY: %s" % entities)
        for target, dom, want, what in (("999", None, 404, "an unknown user"),
                                        ("101", "other.local", 403, "another tenant's user"),
                                        ("102", "nowhere.example", 404, "a domain not served")):
            w.new_call()
            r = w.watch_dialog(target, "demo.local", "alice", "secret1", target_domain=dom)
            check(r is not None and r.status == want, "watching %s: %s, expected %d" % (
                what, r and r.status, want))
        check(w.wait_request("NOTIFY", timeout=1) is None, "a refused SUBSCRIBE got a NOTIFY")
        w.close()

        # SDP: none common, junk, unusable
        r = invite_auth(c, sipraw.sdp(codecs=(18, 3), dtmf=0))
        check(r is not None and r.status == 488, "no common codec gets 488")
        check(r is not None and "305" in (r.get("warning") or ""), "with Warning 305")
        r = invite_auth(c, "this is not sdp\r\n")
        check(r is not None and r.status == 488, "junk SDP gets 488")
        r = invite_auth(c, "v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 5000 RTP/AVP 96\r\n")
        check(r is not None and r.status == 488, "SDP without audio gets 488")
        r = invite_auth(c, sipraw.sdp().replace("m=audio 4000", "m=audio 99999"))
        check(r is not None and r.status == 488, "SDP with port 99999 gets 488")

        # more contacts than we keep in one REGISTER, and an absurd number of headers
        contacts = ["Contact: <sip:alice@127.0.0.1:%d>" % (2000 + i) for i in range(30)]
        c.new_call()
        r = c.register("alice", "demo.local", "secret1", contact=None, extra=contacts)
        check(r is not None and r.status == 200, "30 contacts in one REGISTER: answered 200")
        rows = d.registrations("alice")
        check(0 < len(rows) <= 10, "at most 10 bindings kept for an AOR (%d)" % len(rows))
        lines = base_headers(c, "OPTIONS") + ["X-Junk-%d: %s" % (i, "y" * 50) for i in range(600)]
        raw_request(c, lines)
        c.recv(2)
        check(alive(d), "a 35 kB request does not stop the daemon")

        # TCP: a truncated message, a body shorter than Content-Length, then a good one
        t = socket.create_connection(("127.0.0.1", port), timeout=3)
        t.sendall(b"REGISTER sip:demo.local SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;bran")
        t.close()
        t = socket.create_connection(("127.0.0.1", port), timeout=3)
        t.sendall(b"OPTIONS sip:demo.local SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK1"
                  b"\r\nFrom: <sip:a@demo.local>;tag=1\r\nTo: <sip:demo.local>\r\nCall-ID: tcp1\r\n"
                  b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 50000\r\n\r\nshort")
        t.close()
        tc = sipraw.Client(port, transport="tcp")
        tc.request("OPTIONS", "sip:demo.local", "sip:a@demo.local", "sip:demo.local")
        r = tc.final()
        check(r is not None and r.status == 200, "TCP still answers after broken connections")
        tc.close()

        # mutations of a good REGISTER
        rnd = random.Random(4242)
        good = ("REGISTER sip:demo.local SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKm"
                "\r\nMax-Forwards: 70\r\nFrom: <sip:alice@demo.local>;tag=m\r\n"
                "To: <sip:alice@demo.local>\r\nCall-ID: mut@x\r\nCSeq: 1 REGISTER\r\n"
                "Contact: <sip:alice@127.0.0.1:5>;expires=60\r\nAuthorization: Digest "
                "username=\"alice\", realm=\"demo.local\", nonce=\"00\", uri=\"sip:demo.local\", "
                "response=\"00\"\r\nContent-Length: 0\r\n\r\n" % c.local[1]).encode()
        for i in range(400):
            m = bytearray(good)
            for _ in range(rnd.randint(1, 8)):
                op = rnd.random()
                pos = rnd.randrange(len(m))
                if op < 0.4:
                    m[pos] = rnd.randrange(256)
                elif op < 0.7:
                    del m[pos:pos + rnd.randint(1, 20)]
                else:
                    m[pos:pos] = bytes(rnd.choice(b";:<>\"\r\n=,@ \x00") for _ in
                                       range(rnd.randint(1, 10)))
            c.send_raw(bytes(m))
            if i % 50 == 0:
                time.sleep(0.05)
        time.sleep(1)
        check(alive(d), "400 mutated REGISTERs do not stop the daemon")
        c.close()
    finally:
        try:
            code = d.stop()
            output = d.log_text()  # the daemon's stderr goes there too
        finally:
            d.cleanup()
    check(code == 0, "the daemon stops cleanly (exit %s)" % code)
    check("Sanitizer" not in output and "runtime error" not in output, "no sanitizer reports")


if __name__ == "__main__":
    main()
    if FAILED:
        print("%d check(s) failed" % len(FAILED))
        sys.exit(1)
