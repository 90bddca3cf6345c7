#!/usr/bin/python3
"""Plugins and /metrics against a running daemon.

- plugins built for another ABI version, without the cw_plugin symbol, or
  whose init refuses are named in the log and leave nothing behind; the
  daemon starts and answers without them;
- GET /metrics (the metrics plugin) is valid Prometheus text and its
  figures move when the things they count happen;
- a tenant script that loops or allocates without end is stopped within
  100 ms while the daemon keeps answering /health;
- SIGHUP reloads the scripts: the old event handlers are gone.
"""
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cwtest import BUILD, Daemon, TestFailure, run_tests, wait_until  # noqa: E402
from promtext import parse_prometheus, scrape, val  # noqa: E402

def test_the_reader_refuses_bad_text(d):
    """The checks below are only worth what this reader refuses."""
    good = "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\\\"\"} 1.5\nb 2\n"
    samples, types = parse_prometheus(good)
    assert samples[("a_total", (("l", 'v"'),))] == 1.5 and types["a_total"] == "counter"
    for bad in ["a 1", "a{l=\"v} 1\n", "a{l=v} 1\n", "a 1 2 3\n", "a one\n",
                "# TYPE a counter\n# TYPE a gauge\n", "a 1\n# TYPE a gauge\n",
                "a 1\nb 1\na{x=\"y\"} 1\n", "a 1\na 2\n", "9a 1\n"]:
        try:
            parse_prometheus(bad)
        except TestFailure:
            continue
        raise TestFailure("the reader accepted %r" % bad)


# ---- the daemon with our plugins ----

TEST_PLUGINS = ["bad_abi", "not_a_plugin", "init_fails", "hello"]


def plugin_daemon(scripts):
    pdir = os.path.join(scripts, "plugins")
    os.makedirs(pdir)
    os.symlink(os.path.join(BUILD, "plugins", "metrics.so"), os.path.join(pdir, "metrics.so"))
    for p in TEST_PLUGINS:
        os.symlink(os.path.join(BUILD, "tests", "plugins", p + ".so"),
                   os.path.join(pdir, p + ".so"))
    return Daemon(sets={
        "plugin_dir": pdir,
        "plugins": ",".join(["metrics", "bad_abi", "not_a_plugin", "missing", "init_fails",
                             "hello"]),
        "scripts_dir": scripts,
    })


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_refused_plugins_are_named_and_the_daemon_runs(d):
    log = d.log_text()
    bad = [line for line in log.splitlines() if "bad_abi.so" in line]
    assert bad and "built for plugin ABI 999" in bad[0] and "ABI 1" in bad[0], bad
    assert "starting without it" in bad[0], bad
    assert re.search(r"not_a_plugin\.so has no cw_plugin symbol", log), log
    assert re.search(r"missing\.so: no such file", log), log
    assert re.search(r"init_fails\.so: init refused", log), log
    assert re.search(r"loaded metrics 1\.0 from .*metrics\.so", log), log
    c = d.client()
    assert c.get("/health").status == 200
    # what the refused plugins tried to register does not exist
    assert c.get("/api/v1/test/bad-abi").status == 404
    assert c.get("/api/v1/test/init-fails").status == 404
    r = c.get("/api/v1/test/hello", query={"name": "ann"})
    assert r.status == 200 and r.json["greeting"] == "hello", r


def test_metrics_parse_and_move(d):
    before, types = scrape(d)
    assert types.get("cw_calls_total") == "counter", types
    assert types.get("cw_agents") == "gauge", types
    assert types.get("process_resident_memory_bytes") == "gauge", types
    assert val(before, "process_resident_memory_bytes") > 1e6
    assert val(before, "cw_build_info", version="0.1.0") == 1
    c = d.client()
    for _ in range(3):
        assert c.get("/api/v1/test/hello").status == 200
    after, _ = scrape(d)
    assert val(after, "cw_test_hellos_total") == val(before, "cw_test_hellos_total") + 3
    assert (val(after, "cw_events_total", kind="hello")
            == val(before, "cw_events_total", kind="hello") + 3)
    assert val(after, "cw_test_hello_events") == val(before, "cw_test_hello_events") + 3
    assert val(after, "cw_metrics_scrapes_total") == val(before, "cw_metrics_scrapes_total") + 1
    got = (val(after, "cw_http_requests_total", method="GET", status="200")
           - val(before, "cw_http_requests_total", method="GET", status="200"))
    assert got >= 4, got  # the three hellos and the first scrape
    assert c.get("/api/v1/no/such/thing").status == 404
    assert val(scrape(d)[0], "cw_http_requests_total", method="GET", status="404") >= 1


def run_tenant(d, domain, code):
    r = d.client().post("/api/v1/test/tenant-run", body=code.encode(),
                        query={"domain": str(domain)},
                        headers={"Content-Type": "text/plain"})
    assert r.status == 200, r
    return r.json


def test_runaway_tenant_scripts_stop_and_the_daemon_answers(d):
    stop = threading.Event()
    answers, worst, failures = [0], [0.0], []

    def poll():
        c = d.client()
        while not stop.is_set():
            t0 = time.monotonic()
            r = c.get("/health")
            worst[0] = max(worst[0], time.monotonic() - t0)
            if r.status != 200:
                failures.append(r.status)
            answers[0] += 1

    t = threading.Thread(target=poll)
    t.start()
    try:
        results = []
        for i in range(10):
            results.append(run_tenant(d, 7, "while true do end"))
            results.append(run_tenant(
                d, 8, "local t = {} while true do t[#t + 1] = ('x'):rep(4096) .. #t end"))
    finally:
        stop.set()
        t.join(10)
    for r in results:
        assert not r["ok"], r
        assert "budget" in r["error"] or "memory" in r["error"], r
        assert r["ms"] < 100, r  # the script held the core thread at most this long
    assert not failures, failures
    assert answers[0] >= 10, answers
    assert worst[0] < 2.0, worst
    # the tenant VMs still work
    r = run_tenant(d, 7, "local x = 0 for i = 1, 100 do x = x + i end assert(x == 5050)")
    assert r["ok"], r
    samples, _ = scrape(d)
    assert val(samples, "cw_lua_coroutines_ended_total", status="budget") >= 10


def test_sighup_reloads_scripts(d):
    c = d.client()
    # each hello makes the system script emit one script.* event
    before, _ = scrape(d)
    assert c.get("/api/v1/test/hello").status == 200
    wait_until(lambda: val(scrape(d)[0], "cw_events_total", kind="script")
               == val(before, "cw_events_total", kind="script") + 1, what="script reply")
    write(os.path.join(d.sets["scripts_dir"], "reply.lua"),
          'cw.on("hello.", function(ev) cw.emit("script.reply", {gen = 2}) end)\n')
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "scripts reloaded" in d.log_text(), what="reload")
    before, _ = scrape(d)
    assert c.get("/api/v1/test/hello").status == 200
    wait_until(lambda: val(scrape(d)[0], "cw_events_total", kind="script")
               >= val(before, "cw_events_total", kind="script") + 1, what="script reply")
    time.sleep(0.2)
    after, _ = scrape(d)
    # one handler answered, not the old one as well
    assert (val(after, "cw_events_total", kind="script")
            == val(before, "cw_events_total", kind="script") + 1), (before, after)


def main():
    import tempfile
    scripts = tempfile.mkdtemp(prefix="cw-plugin-scripts-")
    write(os.path.join(scripts, "reply.lua"),
          'cw.on("hello.", function(ev) cw.emit("script.reply", {gen = 1}) end)\n')
    tests = [test_the_reader_refuses_bad_text,
             test_refused_plugins_are_named_and_the_daemon_runs, test_metrics_parse_and_move,
             test_runaway_tenant_scripts_stop_and_the_daemon_answers, test_sighup_reloads_scripts]
    failed = 0
    d = plugin_daemon(scripts)
    try:
        d.start()
        for t in tests:
            try:
                t(d)
                print("ok - %s" % t.__name__)
            except Exception as e:  # noqa: BLE001
                failed += 1
                print("not ok - %s: %r" % (t.__name__, e))
        d.stop()
    finally:
        if failed:
            print(d.log_text())
        d.cleanup()
        import shutil
        shutil.rmtree(scripts, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
