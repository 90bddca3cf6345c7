#!/usr/bin/python3
# cw-test: both-stores
"""The SIP edge through the API: trunks (create with validation, write-only
password, live status after a real registration, per-line log, domain-admin
limits, delete), registrations of the domain, and banned addresses listed
and lifted by an administrator."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sipraw  # noqa: E402
from sipraw import Provider  # noqa: E402
from cwtest import DEMO, DEMO_DOMAIN, TestFailure, run_tests, wait_until  # noqa: E402

T = "/api/v1/domains/%s/trunks" % DEMO_DOMAIN


def expect(cond, what):
    if not cond:
        raise TestFailure(what)


def test_trunks(d):
    sysadmin = d.login("sysadmin", DEMO["sysadmin"])
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    r = admin.get(T)
    expect(r.status == 200 and r.json["items"] == [], "empty trunk list: %s" % r)
    r = admin.post(T, {"name": "carrier", "host": "127.0.0.1"})
    expect(r.status == 403, "a domain admin cannot create trunks: %s" % r)

    for body, field in (({"name": "x", "host": "127.0.0.1", "colour": "red"}, "colour"),
                        ({"name": "x", "host": "127.0.0.1", "port": 0}, "port"),
                        ({"name": "x", "host": "127.0.0.1", "transport": "sctp"}, "transport"),
                        ({"name": "x", "host": "bad host!"}, "host"),
                        ({"name": "x", "host": "127.0.0.1", "dial_pattern": "sip:(8"},
                         "dial_pattern"),
                        ({"name": "x", "host": "127.0.0.1", "dial_pattern": "8+++++"},
                         "dial_pattern"),
                        ({"name": "x", "host": "127.0.0.1", "register": True}, "login"),
                        ({"host": "127.0.0.1"}, "name"),
                        ({"name": "x", "host": "127.0.0.1", "caller_ids": ["12a"]},
                         "caller_ids")):
        r = sysadmin.post(T, body)
        expect(r.status == 400 and r.error().get("field") == field,
               "%s refused naming %s: %s %s" % (body, field, r, r.text))
    expect(sysadmin.get(T).json["items"] == [], "nothing stored by refused requests")

    p = Provider(d.sip_port)
    r = sysadmin.post(T, {"name": "carrier", "kind": "sip_trunk", "host": "127.0.0.1",
                          "port": p.port, "login": "acct7", "password": "s3cret",
                          "realm": p.realm, "register": True, "caller_ids": ["74951110000"],
                          "max_out": 2})
    expect(r.status == 201, "trunk created: %s %s" % (r, r.text))
    t = r.json
    expect("password" not in t and t["password_set"] is True, "the password is write-only")
    expect(t["dial_pattern"] == "sip:8(\\d{3}@.*)", "default dial pattern: %s" % t["dial_pattern"])
    expect(p.serve("s3cret") is True, "the new trunk registers with its credentials")
    tid = t["id"]
    wait_until(lambda: sysadmin.get("%s/%d/status" % (T, tid)).json["state"] == "registered",
               5, what="status registered")
    log = sysadmin.get("%s/%d/log" % (T, tid)).json["items"]
    events = [e["event"] for e in log]
    expect(events[:2] == ["registered", "registering"], "log, newest first: %s" % events)
    audit = d.sql("SELECT details FROM audit_log WHERE object_type = 'trunk'")
    expect(audit and "s3cret" not in str(audit), "audited without the password")

    # a new password alone is a change: stored, audited without it, and used at once
    r = sysadmin.patch("%s/%d" % (T, tid), {"password": "n3wer"})
    expect(r.status == 200 and "password" not in r.json, "password changed: %s" % r)
    expect(p.serve("n3wer") is True, "the trunk registers again with the new password")
    audit = d.sql("SELECT details FROM audit_log WHERE object_type = 'trunk' ORDER BY id")
    expect(len(audit) == 2 and "n3wer" not in str(audit) and '"set"' in audit[-1][0],
           "the password change is audited, without the password: %s" % audit)
    wait_until(lambda: sysadmin.get("%s/%d/status" % (T, tid)).json["state"] == "registered",
               5, what="registered again")

    # registration turned off: un-REGISTER at the provider, the line shows unregistered
    r = sysadmin.patch("%s/%d" % (T, tid), {"register": False})
    expect(r.status == 200, "registration turned off: %s" % r)
    req = p.c.wait_request("REGISTER", timeout=5)
    expect(req is not None and (req.get("expires") == "0" or
                                "expires=0" in (req.get("contact") or "")),
           "the provider gets an un-REGISTER: %s" % (req and req.get("expires")))
    if req:
        p.c.reply(req, 200, to_tag="r")
    st = sysadmin.get("%s/%d/status" % (T, tid)).json
    expect(st["state"] == "unregistered" and st["reason"] == "registration turned off",
           "status after turning registration off: %s" % st)
    log = sysadmin.get("%s/%d/log" % (T, tid)).json["items"]
    expect(log and log[0]["event"] == "unregistered", "the line's log says so: %s" % log[:2])
    r = sysadmin.patch("%s/%d" % (T, tid), {"register": True})
    expect(r.status == 200 and p.serve("n3wer") is True, "registration turned on again")

    # a domain admin may switch it off and change routing, not the connection
    r = admin.patch("%s/%d" % (T, tid), {"host": "10.0.0.1"})
    expect(r.status == 403 and r.error().get("field") == "host",
           "domain admin cannot move the trunk: %s" % r)
    r = admin.patch("%s/%d" % (T, tid), {"enabled": False, "strip_digits": 1})
    expect(r.status == 200 and r.json["status"]["state"] == "disabled",
           "domain admin disables it: %s %s" % (r, r.text))
    r = admin.patch("%s/%d" % (T, tid), {"strip_digits": 99})
    expect(r.status == 400 and r.error().get("field") == "strip_digits", "range checked")
    r = admin.delete("%s/%d" % (T, tid))
    expect(r.status == 403, "domain admin cannot delete: %s" % r)
    r = sysadmin.delete("%s/%d" % (T, tid))
    expect(r.status == 200, "sysadmin deletes: %s" % r)
    expect(sysadmin.get("%s/%d" % (T, tid)).status == 404, "gone")
    p.c.close()


def test_registrations_and_bans(d):
    d.add_user("deskphone", "150", "pw150")
    c = sipraw.Client(d.sip_port)
    r = c.register("deskphone", DEMO_DOMAIN, "pw150")
    expect(r is not None and r.status == 200, "the phone registers")
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    items = admin.get("/api/v1/domains/%s/registrations" % DEMO_DOMAIN).json["items"]
    mine = [i for i in items if i["login"] == "deskphone"]
    expect(len(mine) == 1 and mine[0]["user_agent"] == "sipraw" and
           mine[0]["source"] == "127.0.0.1:%d" % c.local[1], "registration listed: %s" % items)

    # five failures from 127.0.0.5 ban it; the sixth REGISTER gets nothing
    b = sipraw.Client(d.sip_port, local_ip="127.0.0.5")
    for i in range(5):
        r = b.register("deskphone", DEMO_DOMAIN, "wrong%d" % i)
        expect(r is not None and r.status == 403, "bad password %d: 403" % i)
    expect(b.register("deskphone", DEMO_DOMAIN, "pw150") is None, "6th REGISTER ignored")
    sysadmin = d.login("sysadmin", DEMO["sysadmin"])
    bans = sysadmin.get("/api/v1/sip/bans").json["items"]
    expect([x["ip"] for x in bans] == ["127.0.0.5"] and bans[0]["failures"] == 5,
           "the ban is listed: %s" % bans)
    expect(admin.get("/api/v1/sip/bans").status == 403, "a domain admin cannot see bans")
    expect(admin.delete("/api/v1/sip/bans/127.0.0.5").status == 403, "nor lift them")
    r = sysadmin.delete("/api/v1/sip/bans/127.0.0.5")
    expect(r.status == 200, "sysadmin lifts the ban: %s" % r)
    expect(sysadmin.get("/api/v1/sip/bans").json["items"] == [], "no bans left")
    r = b.register("deskphone", DEMO_DOMAIN, "pw150")
    expect(r is not None and r.status == 200, "the address registers again")
    expect(sysadmin.delete("/api/v1/sip/bans/127.0.0.5").status == 404, "lifting twice: 404")
    c.close()
    b.close()


if __name__ == "__main__":
    run_tests([test_trunks, test_registrations_and_bans], demo=True,
              sets={"sip.keepalive": "0"})
