"""cwsip - a callwright daemon for SIP tests: free ports, a temp folder, a
store (SQLite, or a fresh PostgreSQL database when CW_TEST_DB=pg), tenants
and users seeded straight into the store, and a clean stop.

Python tests use the Daemon class; Perl tests drive the same code through
the command line:
    python3 cwsip.py start [--set key=value]... [--user login:ext:password]...
        prints one JSON line {pid, dir, sip_port, db, ...} and leaves the daemon running
    python3 cwsip.py stop JSON      stops it (by pid), checks its exit, removes the folder
    python3 cwsip.py sql JSON SQL   runs one statement, prints rows as JSON
"""

import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("CW_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
BUILD = os.environ.get("CW_BUILD_DIR", os.path.join(SOURCE, "build"))
DOMAIN = "demo.local"


def free_port(udp_too=True):
    """A port free for TCP (and UDP) on 127.0.0.1."""
    for _ in range(50):
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        if not udp_too:
            t.close()
            return port
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            t.close()
            u.close()
            continue
        t.close()
        u.close()
        return port
    raise RuntimeError("no free port")


def ha1(login, realm, password, alg="md5"):
    h = hashlib.sha256 if alg == "sha256" else hashlib.md5
    return h(("%s:%s:%s" % (login, realm, password)).encode()).hexdigest()


def sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


class Daemon:
    def __init__(self, sets=(), backend=None, lsan_suppressions=None):
        self.sets = list(sets)
        self.lsan = lsan_suppressions  # a file in tests/lib, for known third-party leaks
        self.backend = backend or os.environ.get("CW_TEST_DB", "sqlite")
        self.proc = None
        self.pid = None
        self.dir = None
        self.sip_port = None
        self.http_port = None
        self.db = None
        self.pg_admin = None
        self.pg_name = None
        self.final_log = ""
        self.final_stderr = ""

    # --- lifecycle -------------------------------------------------------
    def start(self, timeout=15):
        self.dir = tempfile.mkdtemp(prefix="cw-sip-")
        os.makedirs(os.path.join(self.dir, "var"))
        self.sip_port = free_port()
        self.http_port = free_port(udp_too=False)
        if self.backend == "pg":
            with open(os.path.join(BUILD, "test-pg", "url")) as f:
                self.pg_admin = f.read().strip()
            self.pg_name = "cw_sip_%d_%d" % (os.getpid(), int(time.time() * 1000) % 1000000)
            self._psql(self.pg_admin, "CREATE DATABASE %s" % self.pg_name)
            self.db = self.pg_admin.rsplit("/", 1)[0] + "/" + self.pg_name
        else:
            self.db = os.path.join(self.dir, "var", "callwright.db")
        self._launch(timeout)
        return self

    def _launch(self, timeout):
        args = [os.path.join(BUILD, "callwright"),
                "--set", "db=" + self.db,
                "--set", "var_dir=" + os.path.join(self.dir, "var"),
                "--set", "sip.listen=127.0.0.1",
                "--set", "sip.port=%d" % self.sip_port,
                "--set", "http.listen=127.0.0.1",
                "--set", "http.port=%d" % self.http_port,
                "--set", "log.file=" + self.log_path(),
                "--set", "log.level=debug"]
        for s in self.sets:
            args += ["--set", s]
        err = open(os.path.join(self.dir, "stderr.log"), "ab")
        env = dict(os.environ)
        if self.lsan:
            env["LSAN_OPTIONS"] = "suppressions=%s:print_suppressions=0" % os.path.join(HERE,
                                                                                       self.lsan)
        self.proc = subprocess.Popen(args, cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=err, stderr=err, env=env)
        err.close()
        self.pid = self.proc.pid
        self._wait_sip(timeout)

    def restart(self, timeout=15):
        """Stop the process (SIGTERM) and start it again on the same store and
        ports; returns the first run's exit code."""
        code = self._terminate(timeout)
        self._launch(timeout)
        return code

    def log_path(self):
        return os.path.join(self.dir, "callwright.log")

    def log(self):
        try:
            with open(self.log_path(), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _wait_sip(self, timeout):
        """Until the daemon answers OPTIONS over UDP."""
        deadline = time.time() + timeout
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        n = 0
        try:
            while time.time() < deadline:
                if self.proc and self.proc.poll() is not None:
                    raise RuntimeError("callwright exited with %s:\n%s"
                                       % (self.proc.returncode, self.log()[-3000:]))
                n += 1
                msg = ("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKw%d"
                       "\r\nFrom: <sip:probe@%s>;tag=p\r\nTo: <sip:%s>\r\nCall-ID: probe%d\r\n"
                       "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                       % (DOMAIN, port, n, DOMAIN, DOMAIN, n))
                s.sendto(msg.encode(), ("127.0.0.1", self.sip_port))
                s.settimeout(0.3)
                try:
                    data = s.recv(4096)
                    if data.startswith(b"SIP/2.0 200"):
                        return
                except socket.timeout:
                    pass
            raise RuntimeError("callwright did not answer SIP in %ds:\n%s"
                               % (timeout, self.log()[-3000:]))
        finally:
            s.close()

    def stop(self, timeout=15):
        """SIGTERM; returns the exit code (the test asserts it is 0). What the
        daemon logged and wrote to stderr stays in final_log / final_stderr."""
        code = self._terminate(timeout)
        self.final_log = self.log()
        try:
            with open(os.path.join(self.dir, "stderr.log"), errors="replace") as f:
                self.final_stderr = f.read()
        except (OSError, TypeError):
            self.final_stderr = ""
        if code != 0 or "Sanitizer" in self.final_stderr:
            sys.stderr.write("callwright exit %s; stderr:\n%s\nlog tail:\n%s\n"
                             % (code, self.final_stderr[-4000:], self.final_log[-3000:]))
        if self.pg_name:
            self._psql(self.pg_admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.pg_name)
            self.pg_name = None
        if self.dir and not os.environ.get("CW_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)
        return code

    def _terminate(self, timeout):
        code = None
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.time() + timeout
            while time.time() < deadline:
                code = self._reap()
                if code is not None:
                    break
                time.sleep(0.05)
            if code is None:
                os.kill(self.pid, signal.SIGKILL)
                code = -9
                self._reap(block=True)
            self.pid = None
        return code

    def _reap(self, block=False):
        if self.proc:
            if block:
                return self.proc.wait()
            return self.proc.poll()
        try:
            os.kill(self.pid, 0)
            return None
        except ProcessLookupError:
            return 0  # not our child (Perl front end): gone is all we can see

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- store -------------------------------------------------------------
    @staticmethod
    def _psql(url, statement):
        out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-F", "\x1f",
                              "-c", statement], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError("psql: %s" % out.stderr.strip())
        return out.stdout

    def sql(self, statement, params=()):
        """Run one statement with ? placeholders; returns rows as tuples of strings."""
        if self.backend == "pg":
            parts = statement.split("?")
            if len(parts) - 1 != len(params):
                raise ValueError("placeholder count")
            text = parts[0] + "".join(sql_literal(p) + rest for p, rest in zip(params, parts[1:]))
            out = self._psql(self.db, text)
            return [tuple(line.split("\x1f")) for line in out.splitlines() if line]
        con = sqlite3.connect(self.db, timeout=10)
        try:
            cur = con.execute(statement, params)
            rows = [tuple("" if v is None else str(v) for v in r) for r in cur.fetchall()]
            con.commit()
            return rows
        finally:
            con.close()

    def add_domain(self, name=DOMAIN, status="active"):
        now = int(time.time())
        self.sql("INSERT INTO domains (name, status, created_at) VALUES (?, ?, ?)",
                 (name, status, now))
        return int(self.sql("SELECT id FROM domains WHERE name = ?", (name,))[0][0])

    def add_user(self, login, extension, password, domain=DOMAIN, status="active"):
        now = int(time.time())
        did = self.sql("SELECT id FROM domains WHERE name = ?", (domain,))
        domain_id = int(did[0][0]) if did else self.add_domain(domain)
        self.sql("INSERT INTO users (domain_id, login, display_name, extension, role,"
                 " password_hash, sip_ha1_md5, sip_ha1_sha256, status, created_at, updated_at)"
                 " VALUES (?, ?, ?, ?, 'operator', 'not-a-web-login', ?, ?, ?, ?, ?)",
                 (domain_id, login, login.title(), extension, ha1(login, domain, password),
                  ha1(login, domain, password, "sha256"), status, now, now))
        return int(self.sql("SELECT id FROM users WHERE domain_id = ? AND login = ?",
                            (domain_id, login))[0][0])

    def registrations(self, login=None):
        q = ("SELECT u.login, r.contact, r.expires_at, r.user_agent, r.source, r.transport"
             " FROM registrations r JOIN users u ON u.id = r.user_id")
        if login:
            return self.sql(q + " WHERE u.login = ? ORDER BY r.contact", (login,))
        return self.sql(q + " ORDER BY u.login, r.contact")

    def wait_log(self, text, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log():
                return True
            time.sleep(0.1)
        return False

    def describe(self):
        return {"pid": self.pid, "dir": self.dir, "sip_port": self.sip_port,
                "http_port": self.http_port, "db": self.db, "backend": self.backend,
                "pg_admin": self.pg_admin, "pg_name": self.pg_name}

    @classmethod
    def attach(cls, desc):
        d = cls(backend=desc["backend"])
        for k in ("pid", "dir", "sip_port", "http_port", "db", "pg_admin", "pg_name"):
            setattr(d, k, desc[k])
        return d


def main(argv):
    if len(argv) >= 1 and argv[0] == "start":
        sets, users = [], []
        i = 1
        while i < len(argv):
            if argv[i] == "--set":
                sets.append(argv[i + 1])
            elif argv[i] == "--user":
                users.append(argv[i + 1])
            i += 2
        d = Daemon(sets)
        d.start()
        d.proc = None  # the daemon outlives this front end
        d.add_domain()
        ids = {}
        for u in users:
            login, ext, pw = u.split(":", 2)
            ids[login] = d.add_user(login, ext, pw)
        out = d.describe()
        out["users"] = ids
        print(json.dumps(out), flush=True)
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        d = Daemon.attach(json.loads(argv[1]))
        print(json.dumps({"exit": d.stop()}))
        return 0
    if len(argv) == 3 and argv[0] == "sql":
        d = Daemon.attach(json.loads(argv[1]))
        print(json.dumps(d.sql(argv[2])))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
