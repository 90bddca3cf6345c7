"""An edited IVR flow file applies to the next call (the platform keeps the
compiled flow, and must notice the change): cwload calls a flow that keeps
the call up, the file is rewritten to hang up at once, and the next calls
must be ended by the platform; then back again.
"""
import os
import shutil

from cwtest import SOURCE, Daemon, TestFailure
from loadkit import cwload, login_admin

KEEP = """return function(call)
  call:answer()
  call:play("en/please_hold")
  call:sleep(30)
end
"""
DROP = """return function(call)
  call:answer()
  call:hangup()
end
"""
EARLY = "the platform hung up before the hold time"


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def calls(d, n=4):
    return cwload("ivr", d, ["--to", "510", "--rate", "8", "--calls", str(n), "--hold", "fixed:2",
                             "--dtmf", "", "--setup-timeout", "8"], timeout=60)


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main():
    d = Daemon(demo=True)
    flows = os.path.join(d.dir, "flows")
    shutil.copytree(os.path.join(SOURCE, "ivr-flows"), flows)
    d.sets["flows_dir"] = flows
    script = os.path.join(flows, "loadflow.lua")
    write(script, KEEP)
    ok = False
    try:
        d.start()
        api = login_admin(d)
        api.ok("POST", "/api/v1/domains/demo.local/ivr-flows",
               {"name": "Load flow", "extension": "510", "script": "loadflow"})
        r = calls(d)
        check(r.code == 0 and r["calls"]["completed"] == 4, "the flow that keeps calls up: %r" % r)
        write(script, DROP)
        r = calls(d)
        check(r.code == 1 and r.failures.get(EARLY) == 4, "after the edit (hang up): %r" % r)
        write(script, KEEP)
        r = calls(d)
        check(r.code == 0 and r["calls"]["completed"] == 4, "after the edit back: %r" % r)
        d.stop()
        ok = True
        print("ok   test_flow_edit_applies_to_the_next_call")
    finally:
        if not ok:
            print("FAIL test_flow_edit_applies_to_the_next_call\n---- daemon log ----\n" +
                  d.log_text()[-6000:])
        d.cleanup()


if __name__ == "__main__":
    main()
