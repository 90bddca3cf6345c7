"""cwtest - run a Callwright daemon for a test and talk to it (stdlib only).

    from cwtest import Daemon, run_tests

    def test_health(d):
        r = d.client().get("/health")
        assert r.status == 200, r

    run_tests([test_health], demo=True)

Daemon: starts $CW_BUILD_DIR/callwright in a temp folder with free ports
(HTTP, SIP, an RTP range) and its own store: a SQLite file, or with
CW_TEST_DB=pg a fresh database on the suite's PostgreSQL (URL in
$CW_BUILD_DIR/test-pg/url), dropped afterwards. It waits for /health, stops
by pid with SIGTERM and checks exit status 0, and prints the daemon's log
when a test fails. Client: the REST API with a session cookie or a token.
SmtpSink: a local SMTP server (RFC 5321 subset) that keeps what it receives.
Every wait has a timeout.
"""

import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

BUILD = os.environ.get("CW_BUILD_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
SOURCE = os.environ.get("CW_SOURCE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")


class TestFailure(AssertionError):
    pass


def check(cond, what):
    """Raise TestFailure(what) unless cond."""
    if not cond:
        raise TestFailure(what)
    return cond


def sip_ha1(login, realm, password, alg="md5"):
    """The digest HA1 the store keeps for a SIP login (users.sip_ha1_md5 / _sha256)."""
    h = hashlib.sha256 if alg == "sha256" else hashlib.md5
    return h(("%s:%s:%s" % (login, realm, password)).encode()).hexdigest()


def _bindable(port, kind):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# Ports are picked below the kernel's ephemeral range (32768+), so a daemon
# restarted on the same port does not find it taken by some client socket.
def free_port(udp_too=False):
    """A port free on 127.0.0.1 for TCP (and UDP when udp_too)."""
    for _ in range(500):
        port = random.randrange(10000, 20000)
        if _bindable(port, socket.SOCK_STREAM) and (
                not udp_too or _bindable(port, socket.SOCK_DGRAM)):
            return port
    raise TestFailure("no free port")


def free_udp_range(count=256):
    """The first port of `count` consecutive UDP ports that are free now (below the
    ephemeral range, so phones' and clients' own ports do not land in it)."""
    for _ in range(200):
        base = random.randrange(10000, 32700 - count, 2)
        if all(_bindable(p, socket.SOCK_DGRAM) for p in range(base, base + count)):
            return base
    raise TestFailure("no free UDP port range")


def random_name(prefix="t", n=10):
    return prefix + "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def wait_until(pred, timeout=10.0, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value; that value, or TestFailure."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise TestFailure("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def flows_dir(flows):
    """A flows_dir (config key) in a temp folder holding the Lua flows {name: code},
    removed when the test process exits."""
    import atexit
    path = tempfile.mkdtemp(prefix="cwtest-flows-")
    atexit.register(shutil.rmtree, path, True)
    for name, code in flows.items():
        with open(os.path.join(path, name + ".lua"), "w") as f:
            f.write(code)
    return path


def call_records(api, number, domain="demo.local"):
    """The call history (CDRs, newest first) of calls from or to number, through the API."""
    return api.get("/api/v1/domains/%s/cdrs" % domain, query={"number": number}).json["items"]


def new_call_record(api, known, number, domain="demo.local", timeout=8):
    """The first call record of number whose uuid is not in known, once it is written."""
    def find():
        rows = [x for x in call_records(api, number, domain) if x["uuid"] not in known]
        return rows[0] if rows else None
    return wait_until(find, timeout, 0.2, "the call record")


# ---------------------------------------------------------------- PostgreSQL

def _psql():
    for cand in sorted(os.popen("ls -d /usr/lib/postgresql/*/bin 2>/dev/null").read().split()):
        if os.path.exists(os.path.join(cand, "psql")):
            return os.path.join(cand, "psql")
    return shutil.which("psql") or "psql"


class PgDatabase:
    """A fresh database on the suite's PostgreSQL server, dropped by drop()."""

    def __init__(self, name=None):
        """A new database, or with name the existing one (another process made it)."""
        path = os.path.join(BUILD, "test-pg", "url")
        if not os.path.exists(path):
            raise TestFailure("CW_TEST_DB=pg but %s is missing (pg_start fixture)" % path)
        with open(path) as f:
            self.admin_url = f.read().strip()
        self.name = name or random_name("t_", 12)
        if not name:
            self._sql("CREATE DATABASE %s" % self.name)
        base = self.admin_url.rsplit("/", 1)[0]
        self.url = "%s/%s" % (base, self.name)

    def _sql(self, sql):
        r = subprocess.run([_psql(), "-q", "-v", "ON_ERROR_STOP=1", self.admin_url, "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise TestFailure("psql %s: %s" % (sql, r.stderr.strip()))

    def query(self, sql):
        """Rows of a query on this database as lists of strings."""
        r = subprocess.run([_psql(), "-q", "-A", "-t", "-F", "\t", self.url, "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise TestFailure("psql %s: %s" % (sql, r.stderr.strip()))
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def drop(self):
        try:
            self._sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)
        except Exception as e:  # keep going: the suite's server is removed at the end anyway
            print("warning: %s" % e, file=sys.stderr)


# ---------------------------------------------------------------- HTTP client

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.header_list = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name):
        return self.headers.get(name.lower())

    def error(self):
        """The {"error": {...}} member of an error reply, or {}."""
        j = self.json
        return j.get("error", {}) if isinstance(j, dict) else {}

    def __repr__(self):
        return "<%d %s>" % (self.status, self.text[:600])


class Client:
    """The REST API over one keep-alive connection, with a session cookie or a token."""

    def __init__(self, port, host="127.0.0.1", token=None, timeout=30):
        self.host, self.port, self.token, self.timeout = host, port, token, timeout
        self.cookies = {}
        self.conn = None

    def _connect(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(self, method, path, body=None, headers=None, query=None):
        if query:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        h = dict(headers or {})
        data = body
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        for attempt in (1, 2):
            if self.conn is None:
                self._connect()
            try:
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                resp = Response(r.status, r.getheaders(), r.read())
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # the server closed a kept-alive connection; retry once on a fresh one
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        if resp.header("connection") == "close":
            self.conn.close()
            self.conn = None
        for k, v in resp.header_list:
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                value = rest.split(";", 1)[0]
                if "Max-Age=0" in v or value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = value
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def login(self, login, password, domain=None, expect=200):
        body = {"login": login, "password": password}
        if domain:
            body["domain"] = domain
        r = self.post("/api/v1/auth/login", body)
        if expect is not None and r.status != expect:
            raise TestFailure("login %s@%s: expected %d, got %r" % (login, domain, expect, r))
        return r

    def ok(self, method, path, body=None, status=(200, 201), **kw):
        """A request that must succeed; its JSON."""
        r = self.request(method, path, body=body, **kw)
        if r.status not in (status if isinstance(status, tuple) else (status,)):
            raise TestFailure("%s %s: expected %s, got %r" % (method, path, status, r))
        return r.json

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


from smtpsink import SmtpSink  # noqa: E402  (re-exported for tests)


# ---------------------------------------------------------------- event stream

class EventStream:
    """GET /api/v1/events as a Server-Sent Events reader.

    next() returns {"id": int, "event": type, "data": {...}} or, with
    comments=True, {"comment": text} for keep-alive lines. Every read has
    a timeout (TestFailure when it passes).
    """

    def __init__(self, port, cookies=None, token=None, last_event_id=None, types=None,
                 query_last_id=None, timeout=10):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        h = {"Accept": "text/event-stream"}
        if cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in cookies.items())
        if token:
            h["Authorization"] = "Bearer " + token
        if last_event_id is not None:
            h["Last-Event-ID"] = str(last_event_id)
        q = {}
        if types:
            q["types"] = ",".join(types)
        if query_last_id is not None:
            q["last_event_id"] = str(query_last_id)
        path = "/api/v1/events" + ("?" + urllib.parse.urlencode(q) if q else "")
        self.conn.request("GET", path, headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        if self.status != 200:
            self.body = self.resp.read()

    def _line(self, timeout):
        self.conn.sock.settimeout(timeout)
        try:
            line = self.resp.readline()
        except socket.timeout:
            raise TestFailure("no event within %.1f s" % timeout)
        if not line:
            raise TestFailure("the event stream ended")
        return line.decode("utf-8").rstrip("\r\n")

    def next(self, timeout=10, comments=False):
        end = time.monotonic() + timeout
        ev = {}
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TestFailure("no event within %.1f s" % timeout)
            line = self._line(left)
            if line == "":
                if "event" in ev:
                    return ev
                ev = {}
                continue
            if line.startswith(":"):
                if comments:
                    return {"comment": line[1:].strip()}
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                ev["id"] = int(value)
            elif field == "event":
                ev["event"] = value
            elif field == "data":
                ev["data"] = json.loads(value)

    def wait_for(self, pred, timeout=10):
        """The first event for which pred(event) is true, skipping others."""
        end = time.monotonic() + timeout
        while True:
            ev = self.next(max(0.05, end - time.monotonic()))
            if pred(ev):
                return ev

    def close(self):
        self.conn.close()


# Passwords of the demo tenant (README "What make run gives you").
DEMO_DOMAIN = "demo.local"
DEMO = {
    "sysadmin": "Demo-sysadmin-1",
    "admin": "Demo-admin-1",
    "supervisor": "Demo-super-1",
    "op101": "Demo-op101-1",
    "op102": "Demo-op102-1",
    "op103": "Demo-op103-1",
}


# ---------------------------------------------------------------- the daemon

def _sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


class Daemon:
    """One callwright process with its own folder, ports and store."""

    def __init__(self, demo=False, sets=None, log_level="info", store=None,
                 lsan_suppressions=None, config=None):
        """sets: config keys (--set; None drops one of the defaults below); config: a
        --config file; lsan_suppressions: a file in tests/lib naming known leaks of
        third-party libraries for LeakSanitizer."""
        self.dir = tempfile.mkdtemp(prefix="cwtest-")
        self.config = config
        self.lsan = lsan_suppressions
        self._pick_ports()
        self.pg = None
        kind = store or os.environ.get("CW_TEST_DB", "sqlite")
        if kind == "pg":
            self.pg = PgDatabase()
            self.db = self.pg.url
        else:
            self.db = os.path.join(self.dir, "callwright.db")
        self.store = kind
        self.sets = {
            "http.listen": "127.0.0.1",
            "sip.listen": "127.0.0.1",
            "db": self.db,
            "var_dir": os.path.join(self.dir, "var"),
            "http.web_root": os.path.join(SOURCE, "web"),
            "log.level": log_level,
            "demo": "true" if demo else "false",
        }
        self.sets.update(self._port_sets())
        for key, path in (("scripts_dir", "scripts"), ("flows_dir", "ivr-flows")):
            if os.path.isdir(os.path.join(SOURCE, path)):
                self.sets[key] = os.path.join(SOURCE, path)
        self.sets["plugin_dir"] = os.path.join(BUILD, "plugins")
        self.sets["plugins"] = ""
        self.fixed = set(sets or {})  # the caller's own keys: never changed here
        self.sets.update(sets or {})
        if "http.port" in self.fixed:
            self.http_port = int(self.sets["http.port"])
        if "sip.port" in self.fixed:
            self.sip_port = int(self.sets["sip.port"])
        self.proc = None
        self.log_path = os.path.join(self.dir, "daemon.log")

    def _pick_ports(self):
        self.http_port = free_port()
        self.sip_port = free_port(udp_too=True)
        self.rtp_min = free_udp_range(256)

    def _port_sets(self):
        return {"http.port": str(self.http_port), "sip.port": str(self.sip_port),
                "media.rtp_min": str(self.rtp_min), "media.rtp_max": str(self.rtp_min + 255),
                "public_url": "http://127.0.0.1:%d" % self.http_port}

    # -- process
    def start(self, timeout=90, attempts=3):
        """Start and wait for /health. A port some other process took since it was
        picked (tests run in parallel) makes the daemon exit at once: it then starts
        again on new ports, unless the caller chose them."""
        for attempt in range(attempts):
            mark = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            try:
                return self._launch(timeout)
            except TestFailure:
                taken = "cannot listen" in self.log_text()[mark:] or \
                    "Address already in use" in self.log_text()[mark:]
                if attempt == attempts - 1 or not taken:
                    raise
                self._pick_ports()
                self.sets.update({k: v for k, v in self._port_sets().items()
                                  if k not in self.fixed})

    def command(self):
        """The daemon's command line: --config when given, then every --set."""
        args = [os.path.join(BUILD, "callwright")]
        if self.config:
            args += ["--config", self.config]
        for k, v in self.sets.items():
            if v is not None:
                args += ["--set", "%s=%s" % (k, v)]
        return args

    def _launch(self, timeout):
        args = self.command()
        env = dict(os.environ)
        if self.lsan:
            env["LSAN_OPTIONS"] = "suppressions=%s:print_suppressions=0" % os.path.join(
                os.path.dirname(os.path.abspath(__file__)), self.lsan)
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, cwd=self.dir, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, env=env)

        def healthy():
            if self.proc.poll() is not None:
                self.log_file.close()
                raise TestFailure("callwright exited with %s at start:\n%s" %
                                  (self.proc.returncode, self.log_text()[-4000:]))
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=2)
                c.request("GET", "/health")
                ok = c.getresponse().status == 200
                c.close()
                return ok
            except OSError:
                return False
        wait_until(healthy, timeout, 0.05, "GET /health")
        return self

    def restart(self, timeout=90):
        """Stop (SIGTERM, exit 0 expected) and start again on the same store and ports;
        returns the first run's exit code."""
        code = self.stop()
        self._launch(timeout)
        return code

    def stop(self, timeout=20, expect_code=0):
        """SIGTERM by pid; the exit status must be expect_code."""
        if not self.proc or self.proc.poll() is not None:
            code = self.proc.returncode if self.proc else None
            self.proc = None
            if code is not None and code != expect_code:
                raise TestFailure("callwright had already exited with %s:\n%s" %
                                  (code, self.log_text()[-4000:]))
            return code
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise TestFailure("callwright did not stop within %d s of SIGTERM" % timeout)
        finally:
            self.log_file.close()
        self.proc = None
        if code != expect_code:
            raise TestFailure("callwright exited with %s, expected %s:\n%s" %
                              (code, expect_code, self.log_text()[-4000:]))
        return code

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self):
        self.kill()
        if self.pg:
            self.pg.drop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- access
    def client(self, token=None):
        return Client(self.http_port, token=token)

    def login(self, login, password, domain=None):
        c = self.client()
        c.login(login, password, domain)
        return c

    def sql_exec(self, statement, params=()):
        """Run one writing statement on the daemon's store (tests that set up edge cases)."""
        self.sql(statement, params)

    def sql(self, query, params=()):
        """Rows of a statement on the daemon's store, as lists of strings (None for NULL);
        ? placeholders take params."""
        if self.pg:
            parts = query.split("?")
            if len(parts) - 1 != len(params):
                raise ValueError("placeholder count")
            return self.pg.query(parts[0] + "".join(
                _sql_literal(p) + rest for p, rest in zip(params, parts[1:])))
        import sqlite3
        con = sqlite3.connect(self.db, timeout=10)
        try:
            rows = [[None if v is None else str(v) for v in row]
                    for row in con.execute(query, params).fetchall()]
            con.commit()
            return rows
        finally:
            con.close()

    def wait_log(self, text, timeout=10):
        """True once text is in the daemon's log."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.log_text():
                return True
            time.sleep(0.1)
        return False

    # -- tenants seeded straight into the store (SIP tests run without the demo)
    def add_domain(self, name=DEMO_DOMAIN, status="active"):
        self.sql("INSERT INTO domains (name, status, created_at) VALUES (?, ?, ?)",
                 (name, status, int(time.time())))
        return int(self.sql("SELECT id FROM domains WHERE name = ?", (name,))[0][0])

    def add_user(self, login, extension, password, domain=DEMO_DOMAIN, status="active"):
        """A user with SIP credentials (no web login); returns the id."""
        did = self.sql("SELECT id FROM domains WHERE name = ?", (domain,))
        domain_id = int(did[0][0]) if did else self.add_domain(domain)
        now = int(time.time())
        self.sql("INSERT INTO users (domain_id, login, display_name, extension, role,"
                 " password_hash, sip_ha1_md5, sip_ha1_sha256, status, created_at, updated_at)"
                 " VALUES (?, ?, ?, ?, 'operator', 'not-a-web-login', ?, ?, ?, ?, ?)",
                 (domain_id, login, login.title(), extension, sip_ha1(login, domain, password),
                  sip_ha1(login, domain, password, "sha256"), status, now, now))
        return int(self.sql("SELECT id FROM users WHERE domain_id = ? AND login = ?",
                            (domain_id, login))[0][0])

    def tenant_login(self, domain, login, role, password):
        """A logged-in API client of a web user of another tenant (domain created in the demo
        pool when missing), for checks that one tenant cannot see or touch another's."""
        sa = self.login("sysadmin", DEMO["sysadmin"])
        found = self.sql("SELECT id FROM domains WHERE name = ?", (domain,))
        if found:
            dom_id = int(found[0][0])
        else:
            pool = int(self.sql("SELECT id FROM pools WHERE name = 'Demo pool'")[0][0])
            dom_id = sa.ok("POST", "/api/v1/domains", {"name": domain, "pool_id": pool},
                           status=201)["id"]
        sa.ok("POST", "/api/v1/domains/%d/users" % dom_id,
              {"login": login, "display_name": login, "password": password, "role": role},
              status=201)
        return self.login(login, password, domain)

    def registrations(self, login=None):
        """[login, contact, expires_at, user_agent, source, transport] rows, by login."""
        q = ("SELECT u.login, r.contact, r.expires_at, r.user_agent, r.source, r.transport"
             " FROM registrations r JOIN users u ON u.id = r.user_id")
        if login:
            return self.sql(q + " WHERE u.login = ? ORDER BY r.contact", (login,))
        return self.sql(q + " ORDER BY u.login, r.contact")

    def describe(self):
        """What another process needs to reach and stop this daemon (tests/lib/cwsip.py)."""
        return {"pid": self.proc.pid if self.proc else None, "dir": self.dir,
                "sip_port": self.sip_port, "http_port": self.http_port, "db": self.db,
                "store": self.store, "pg_name": self.pg.name if self.pg else None,
                "log": self.log_path}

    def __enter__(self):
        return self.start()

    def __exit__(self, et, ev, tb):
        try:
            if et is None:
                self.stop()
            else:
                sys.stderr.write("---- daemon log (%s) ----\n%s\n" %
                                 (self.dir, self.log_text()[-8000:]))
        finally:
            self.cleanup()
        return False


def run_tests(tests, **daemon_args):
    """Run test functions that each take a started Daemon (one daemon for all, in order).

    Prints "ok"/"FAIL" per test; exits 1 when any failed. Daemon args as for Daemon().
    """
    failed = 0
    d = Daemon(**daemon_args)
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
            sys.stderr.write("---- daemon log (%s) ----\n%s\n" % (d.dir, d.log_text()[-12000:]))
        d.cleanup()
    print("%d of %d tests failed (store: %s)" % (failed, len(tests), d.store) if failed else
          "all %d tests passed (store: %s)" % (len(tests), d.store))
    sys.exit(1 if failed else 0)
