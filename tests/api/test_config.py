#!/usr/bin/python3
"""Configuration: the file, --set, and what the daemon refuses.

The shipped etc/callwright.lua starts a daemon (its plugin list loads the
metrics plugin). An unknown key or a value of the wrong type, in the file
or on --set, stops the daemon before it listens: it exits non-zero with a
message naming the key. --set beats the file (seen through http.max_body:
the file's limit answers 413 naming it, a --set one lets the request in).
log.levels sets one level a subsystem: at debug it writes debug lines, at
warn not even info lines, while the rest stays at log.level.
"""

import os
import re
import subprocess

from cwtest import SOURCE, Daemon, TestFailure, run_tests

SHIPPED = os.path.join(SOURCE, "etc", "callwright.lua")


def refused(sets=None, config_text=None):
    """Run the daemon with a bad configuration; (exit code, what it printed)."""
    d = Daemon(sets=sets)
    try:
        if config_text is not None:
            d.config = os.path.join(d.dir, "callwright.lua")
            with open(d.config, "w") as f:
                f.write(config_text)
        try:
            r = subprocess.run(d.command(), cwd=d.dir, capture_output=True, text=True,
                               timeout=30)
        except subprocess.TimeoutExpired:
            raise TestFailure("the daemon started with a bad configuration")
        return r.returncode, r.stdout + r.stderr
    finally:
        d.cleanup()


def test_the_shipped_file_loads(d):
    assert d.client().get("/health").status == 200
    r = d.client().get("/metrics")
    assert r.status == 200 and "cw_" in r.text, r  # "plugins" of the file loaded metrics
    assert re.search(r"\[plugin\] loaded metrics ", d.log_text()), d.log_text()[-2000:]


def test_unknown_key_in_the_file_is_refused(d):
    code, out = refused(config_text='return { http = { prot = 8080 }, db = "x.db" }\n')
    assert code != 0 and "http.prot" in out and "unknown" in out, (code, out)
    code, out = refused(config_text='return { colour = "blue" }\n')
    assert code != 0 and "colour" in out, (code, out)


def test_wrong_type_in_the_file_is_refused(d):
    for text, key in (('return { http = { port = "eighty" } }', "http.port"),
                      ('return { media = { realtime = "yes please" } }', "media.realtime"),
                      ('return { plugins = "metrics" }', "plugins"),
                      ('return { auth = { session_ttl = -5 } }', "auth.session_ttl"),
                      ('return { http = 8080 }', "http")):
        code, out = refused(config_text=text + "\n")
        assert code != 0 and key in out, (text, code, out)


def test_unknown_key_on_the_command_line_is_refused(d):
    code, out = refused(sets={"sip.prot": "5070"})
    assert code != 0 and "sip.prot" in out and "unknown" in out, (code, out)


def test_wrong_type_on_the_command_line_is_refused(d):
    for key, value in (("http.max_body", "big"), ("media.realtime", "maybe"),
                       ("sip.port", "-1")):
        code, out = refused(sets={key: value})
        assert code != 0 and key in out and value in out, (key, code, out)


def test_set_beats_the_file(d):
    text = 'return { http = { max_body = 100 } }\n'
    body = {"login": "nobody", "password": "x" * 300}
    for sets, status in (({}, 413), ({"http.max_body": "5000"}, 401)):
        e = Daemon(sets=sets)
        e.config = os.path.join(e.dir, "callwright.lua")
        with open(e.config, "w") as f:
            f.write(text)
        with e:
            r = e.client().post("/api/v1/auth/login", body)
            assert r.status == status, (sets, r)
            if status == 413:
                # the answer names the limit and the key that sets it
                msg = r.error()["message"]
                assert "limit of 100 bytes" in msg and "http.max_body" in msg, r


def levels_seen(levels):
    """{subsystem: set of levels} the daemon logged with log.levels = levels, after a
    request; and the log."""
    e = Daemon(sets={"log.levels": levels})
    try:
        e.start()
        e.client().get("/health")
        e.stop()
        text = e.log_text()
    finally:
        e.cleanup()
    seen = {}
    for lvl, sub in re.findall(r"^\S+Z (\w+)\s+\[(\w+)\] ", text, re.M):
        seen.setdefault(sub, set()).add(lvl)
    return seen, text


def test_log_levels_per_subsystem(d):
    seen, text = levels_seen("http=debug,sip=warn")
    assert "debug" in seen.get("http", set()), seen
    assert re.search(r"debug +\[http\] .*GET /health", text), text[-3000:]
    assert not seen.get("sip", set()) & {"info", "debug", "trace"}, seen
    # the others stay at log.level (info): info lines, no debug lines
    assert "info" in seen.get("core", set()), seen
    others = {s for s, lv in seen.items() if s not in ("http", "sip") and "debug" in lv}
    assert not others, seen
    # and the other way round
    seen, text = levels_seen("sip=debug,http=warn")
    assert "debug" in seen.get("sip", set()) and "info" in seen.get("sip", set()), seen
    assert not seen.get("http", set()) & {"info", "debug", "trace"}, seen


if __name__ == "__main__":
    run_tests([test_the_shipped_file_loads,
               test_unknown_key_in_the_file_is_refused,
               test_wrong_type_in_the_file_is_refused,
               test_unknown_key_on_the_command_line_is_refused,
               test_wrong_type_on_the_command_line_is_refused,
               test_set_beats_the_file,
               test_log_levels_per_subsystem],
              config=SHIPPED, sets={"plugins": None})
