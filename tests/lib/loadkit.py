"""loadkit - what the load tests and bench/run share (stdlib only).

    from loadkit import cwload, make_users, make_agents, queue_of

cwload(args, timeout): runs build/tools/cwload with --json and returns a
Result (exit code, the parsed figures, stderr, wall time). make_users()
creates numbered users through the CSV import endpoint; make_agents() turns
them into operators of a queue and logs them in through the API. Every wait
has a timeout.
"""

import json
import os
import subprocess
import time

from cwtest import BUILD, TestFailure

CWLOAD = os.path.join(BUILD, "tools", "cwload")
DOMAIN = "demo.local"


class Result:
    def __init__(self, code, figures, stderr, seconds, stdout):
        self.code, self.figures, self.stderr, self.seconds = code, figures, stderr, seconds
        self.stdout = stdout

    @property
    def failures(self):
        return (self.figures or {}).get("failures", {})

    def __getitem__(self, key):
        return self.figures[key]

    def __repr__(self):
        return "<cwload exit %s after %.1f s: %s %s>" % (
            self.code, self.seconds, json.dumps(self.figures)[:3000], self.stderr[-1500:])


def cwload(scenario, d_or_port, args, timeout=120):
    """Run one scenario against a daemon (or a bare SIP port); its Result."""
    port = d_or_port if isinstance(d_or_port, int) else d_or_port.sip_port
    cmd = [CWLOAD, scenario, "--server", "127.0.0.1:%d" % port, "--json"] + list(args)
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise TestFailure("cwload %s did not finish within %d s: %s" % (scenario, timeout, e))
    seconds = time.monotonic() - t0
    figures = None
    if p.stdout.strip():
        try:
            figures = json.loads(p.stdout)
        except ValueError:
            raise TestFailure("cwload printed no JSON:\n%s\n%s" % (p.stdout[-2000:], p.stderr[-2000:]))
    return Result(p.returncode, figures, p.stderr, seconds, p.stdout)


def login_admin(d):
    return d.login("admin", "Demo-admin-1", DOMAIN)


def make_users(api, prefix, first, count, password="Load-pw-%d", groups="Load", chunk=500):
    """Users <prefix><n> (extension n, password with %d = n), n = first..first+count-1.

    Created through POST /users/import in files of `chunk` rows; every
    user joins the call-processing groups named in `groups` (created when
    missing). Returns {login: id}.
    """
    ids = {}
    n = first
    while n < first + count:
        size = min(chunk, first + count - n)
        rows = ["login,password,display_name,extension,groups"]
        for k in range(n, n + size):
            rows.append("%s%d,%s,Load %d,%d,%s" % (prefix, k, password.replace("%d", str(k)), k, k,
                                                 groups))
        r = api.post("/api/v1/domains/%s/users/import?mode=commit" % DOMAIN,
                     "\n".join(rows) + "\n", headers={"Content-Type": "text/csv"})
        if r.status != 201:
            raise TestFailure("import of %d users: %r" % (size, r))
        for u in r.json["users"]:
            ids[u["login"]] = u["id"]
        n += size
    return ids


def queue_of(api, name):
    items = api.get("/api/v1/domains/%s/call-groups" % DOMAIN, query={"q": name}).json["items"]
    found = [g for g in items if g["name"] == name]
    if not found:
        raise TestFailure("no call-processing group %s" % name)
    return found[0]


def set_queue(api, name, **fields):
    g = queue_of(api, name)
    api.ok("PATCH", "/api/v1/domains/%s/call-groups/%d" % (DOMAIN, g["id"]), fields)
    return g


def make_agents(api, ids):
    """Operators, logged in (available): what the ACD offers calls to."""
    for uid in ids:
        api.ok("PATCH", "/api/v1/domains/%s/users/%d" % (DOMAIN, uid),
               {"role": "operator", "is_operator": True})
        api.ok("PUT", "/api/v1/domains/%s/agents/%d/state" % (DOMAIN, uid), {"state": "available"})
