#!/usr/bin/python3
"""SIP over TLS: with sip.tls_cert set the daemon listens for TLS on
sip.tls_port; a client registers through it (digest and all) and the
binding is stored with transport tls. Plain UDP keeps working."""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cwsip  # noqa: E402
import sipraw  # noqa: E402

FAILED = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILED.append(what)


def main():
    certs = tempfile.mkdtemp(prefix="cw-tls-")
    key, crt = os.path.join(certs, "key.pem"), os.path.join(certs, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    with open(os.path.join(certs, "agent.pem"), "w") as out:
        out.write(open(key).read() + open(crt).read())
    tls_port = cwsip.free_port(udp_too=False)
    d = cwsip.Daemon(["sip.tls_cert=" + certs, "sip.tls_port=%d" % tls_port,
                      "sip.keepalive=0"], lsan_suppressions="lsan-sofia-tls.supp").start()
    try:
        d.add_domain()
        d.add_user("alice", "101", "secret1")
        c = sipraw.Client(tls_port, transport="tls")
        check(c.tls_version is not None, "TLS handshake (%s)" % c.tls_version)
        r = c.register("alice", "demo.local", "secret1")
        check(r is not None and r.status == 200, "REGISTER over TLS gets 200")
        rows = d.registrations("alice")
        check(len(rows) == 1 and rows[0][5] == "tls", "the binding is stored as tls")
        c.close()
        u = sipraw.Client(d.sip_port)
        r = u.register("alice", "demo.local", "secret1")
        check(r is not None and r.status == 200, "UDP still works next to TLS")
        u.close()
        check("sips:" in d.log(), "the TLS listener is logged")
    finally:
        code = d.stop()
        for f in os.listdir(certs):
            os.unlink(os.path.join(certs, f))
        os.rmdir(certs)
    check(code == 0, "daemon stops cleanly (exit %s)" % code)


if __name__ == "__main__":
    main()
    if FAILED:
        print("%d check(s) failed" % len(FAILED))
        sys.exit(1)
