"""cwsip - the command line over cwtest.Daemon for Perl SIP tests (CwSip.pm):
a daemon with free ports, a temp folder and its own store, tenants and users
seeded straight into the store, left running for the caller, then stopped.

    python3 cwsip.py start [--demo] [--set key=value]... [--user login:ext:password]...
        prints one JSON line {pid, dir, sip_port, http_port, log, users, ...}
        (--demo: the demo tenant, its users and passwords, instead of an empty demo.local)
    python3 cwsip.py stop JSON      SIGTERM by pid, waits, removes the folder and store
    python3 cwsip.py sql JSON SQL   runs one statement, prints its rows as JSON
    python3 cwsip.py api JSON LOGIN[@DOMAIN] PASSWORD METHOD PATH [BODY]
        one REST API request as that user: prints {"status": N, "json": ...}
"""

import json
import os
import shutil
import signal
import sys
import time

from cwtest import DEMO_DOMAIN, Client, Daemon, PgDatabase


def attach(desc):
    """A Daemon object for one another process started (no process handle)."""
    d = Daemon.__new__(Daemon)
    d.dir, d.db, d.store = desc["dir"], desc["db"], desc["store"]
    d.pg = PgDatabase(desc["pg_name"]) if desc["pg_name"] else None
    d.sip_port, d.http_port, d.log_path = desc["sip_port"], desc["http_port"], desc["log"]
    d.proc = None
    return d


def stop(desc, timeout=20):
    """SIGTERM; gone within timeout is exit 0 (its status belongs to its parent), else -9."""
    pid, code = desc["pid"], 0
    try:
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        code = -9
    except ProcessLookupError:
        pass
    d = attach(desc)
    if d.pg:
        d.pg.drop()
    if not os.environ.get("CW_KEEP_TMP"):
        shutil.rmtree(desc["dir"], ignore_errors=True)
    return code


def main(argv):
    if argv[:1] == ["start"]:
        sets, users = {}, []
        demo = "--demo" in argv
        argv = [a for a in argv if a != "--demo"]
        for opt, val in zip(argv[1::2], argv[2::2]):
            if opt == "--set":
                k, _, v = val.partition("=")
                sets[k] = v
            elif opt == "--user":
                users.append(val.split(":", 2))
        d = Daemon(demo=demo, sets=sets, log_level="debug").start()
        d.log_file.close()  # the daemon keeps its own descriptor; it outlives this front end
        if not demo:
            d.add_domain(DEMO_DOMAIN)
        out = d.describe()
        out["users"] = {login: d.add_user(login, ext, pw) for login, ext, pw in users}
        print(json.dumps(out), flush=True)
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        print(json.dumps({"exit": stop(json.loads(argv[1]))}))
        return 0
    if len(argv) in (6, 7) and argv[0] == "api":
        desc = json.loads(argv[1])
        login, _, domain = argv[2].partition("@")
        c = Client(desc["http_port"])
        c.login(login, argv[3], domain or None)
        r = c.request(argv[4], argv[5], body=json.loads(argv[6]) if len(argv) == 7 else None)
        try:
            body = r.json
        except ValueError:
            body = None
        print(json.dumps({"status": r.status, "json": body}))
        return 0
    if len(argv) == 3 and argv[0] == "sql":
        print(json.dumps(attach(json.loads(argv[1])).sql(argv[2])))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
