#!/usr/bin/python3
# cw-test: both-stores
"""Create, read, list (pagination, filters, search), update and delete of
every entity of API v1, the rules special to each (default subgroup,
extensions, members, typed numbers, sound-file formats), and the audit row
each change leaves (newest first, filters, never deletable)."""

import io
import math
import os
import struct
import wave

from cwtest import DEMO, DEMO_DOMAIN, run_tests, wait_until

DOM = "/api/v1/domains/" + DEMO_DOMAIN


def crud_cycle(c, base, create, change, name_field, audit_type, auditor=None):
    """Create, get, list, update, delete one object; check each step and its audit rows."""
    auditor = auditor or c
    obj = c.ok("POST", base, create, status=201)
    for k, v in create.items():
        if k != "password":
            assert obj[k] == v, (k, obj)
    assert "password" not in obj and "password_hash" not in obj
    item = "%s/%d" % (base, obj["id"])
    assert c.ok("GET", item) == obj
    listed = c.ok("GET", base, query={"limit": 1000})
    assert obj["id"] in [x["id"] for x in listed["items"]] and listed["total"] >= 1
    upd = c.ok("PATCH", item, change)
    for k, v in change.items():
        if k != "password":
            assert upd[k] == v, (k, upd)
    assert c.ok("GET", item) == upd
    # the same PATCH again changes nothing and leaves no audit row
    n_audit = auditor.ok("GET", "/api/v1/audit", query={"object_type": audit_type})["total"]
    if "password" not in change:
        c.ok("PATCH", item, change)
        assert auditor.ok("GET", "/api/v1/audit",
                          query={"object_type": audit_type})["total"] == n_audit
    c.ok("DELETE", item)
    assert c.get(item).status == 404
    assert c.delete(item).status == 404
    rows = auditor.ok("GET", "/api/v1/audit",
                      query={"object_type": audit_type, "limit": 3})["items"]
    assert [r["action"] for r in rows[:3]] == ["delete", "edit", "add"], rows
    name = upd[name_field]
    assert all(r["object_name"] == name or r["action"] == "add" for r in rows[:3]), rows
    for k, v in change.items():
        if k != "password":
            assert rows[1]["details"][k]["to"] == v, rows[1]
    return obj


def test_pools_subgroups_and_pool_admins(d):
    sa = d.login("sysadmin", DEMO["sysadmin"])
    pool = sa.ok("POST", "/api/v1/pools", {"name": "Pool A"}, status=201)
    subs = sa.ok("GET", "/api/v1/pools/%d/subgroups" % pool["id"])["items"]
    assert len(subs) == 1 and subs[0]["is_default"] is True, subs
    default = subs[0]
    r = sa.delete("/api/v1/pools/%d/subgroups/%d" % (pool["id"], default["id"]))
    assert r.status == 409 and r.error()["code"] == "default_subgroup", r
    crud_cycle(sa, "/api/v1/pools/%d/subgroups" % pool["id"], {"name": "North"},
               {"name": "North-West"}, "name", "subgroup")
    crud_cycle(sa, "/api/v1/pools/%d/admins" % pool["id"],
               {"login": "anna", "display_name": "Anna", "email": "anna@example.com",
                "password": "Pool-admin-1", "subgroups": [default["id"]]},
               {"display_name": "Anna K", "status": "blocked"}, "login", "pool_admin")
    # a domain joins the pool in its default subgroup; deleting a subgroup moves its domains back
    dom = sa.ok("POST", "/api/v1/domains", {"name": "a.example", "pool_id": pool["id"]},
                status=201)
    assert dom["subgroup_id"] == default["id"], dom
    east = sa.ok("POST", "/api/v1/pools/%d/subgroups" % pool["id"], {"name": "East"}, status=201)
    moved = sa.ok("POST", "/api/v1/pools/%d/subgroups/%d/domains" % (pool["id"], east["id"]),
                  {"domain_ids": [dom["id"]]})
    assert moved["domains"] == [dom["id"]], moved
    sa.ok("DELETE", "/api/v1/pools/%d/subgroups/%d" % (pool["id"], east["id"]))
    assert sa.ok("GET", "/api/v1/domains/%d" % dom["id"])["subgroup_id"] == default["id"]
    r = sa.delete("/api/v1/pools/%d" % pool["id"])
    assert r.status == 409 and r.error()["code"] == "not_empty", r
    sa.ok("DELETE", "/api/v1/domains/%d" % dom["id"])
    sa.ok("DELETE", "/api/v1/pools/%d" % pool["id"])
    assert sa.get("/api/v1/pools/%d" % pool["id"]).status == 404


def test_pool_cycle_and_system_admins(d):
    sa = d.login("sysadmin", DEMO["sysadmin"])
    crud_cycle(sa, "/api/v1/pools", {"name": "Pool Z"}, {"name": "Pool Zeta"}, "name", "pool")
    crud_cycle(sa, "/api/v1/sysadmins",
               {"login": "root2", "display_name": "Second admin", "password": "Root-pass-22"},
               {"display_name": "Second system admin"}, "login", "sysadmin")
    me = sa.ok("GET", "/api/v1/auth/me")
    r = sa.delete("/api/v1/sysadmins/%d" % me["id"])
    assert r.status == 409 and r.error()["code"] == "self", r


def test_domains(d):
    sa = d.login("sysadmin", DEMO["sysadmin"])
    obj = crud_cycle(sa, "/api/v1/domains",
                     {"name": "crud.example", "display_name": "Crud Ltd", "routing_number": "7001",
                      "timezone": "Europe/Moscow", "max_users": 50},
                     {"display_name": "Crud Limited", "default_cli": "74950000001",
                      "language": "en", "pickup_code": "*9"},
                     "name", "domain")
    assert obj["counters"] == {"users": 0, "operators": 0, "numbers": 0}
    demo = sa.ok("GET", "/api/v1/domains", query={"name": DEMO_DOMAIN})["items"]
    assert len(demo) == 1 and demo[0]["counters"]["operators"] == 3, demo
    # name is fixed after creation; routing numbers are unique
    r = sa.patch("/api/v1/domains/%d" % demo[0]["id"], {"name": "other.example"})
    assert r.status == 400 and r.error()["code"] == "immutable", r
    x = sa.ok("POST", "/api/v1/domains", {"name": "x.example", "routing_number": "7002"},
              status=201)
    r = sa.post("/api/v1/domains", {"name": "y.example", "routing_number": "7002"})
    assert r.status == 409 and r.error()["field"] == "routing_number", r
    sa.ok("DELETE", "/api/v1/domains/%d" % x["id"])


def test_users_with_extensions_flags_and_groups(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    nxt = c.ok("GET", DOM + "/users/next-extension")["extension"]
    assert nxt == "104", nxt  # 100-103 are taken by the demo users
    u = c.ok("POST", DOM + "/users", {"login": "ivanov.ii", "display_name": "Иванов Иван",
                                      "password": "G7zNo0vHDTDGyVAdQ5Wp", "job_title": "Agent",
                                      "email": "ivanov@company.name", "is_operator": True,
                                      "restriction": "no_international", "call_groups": [1]},
             status=201)
    assert u["extension"] == nxt and u["role"] == "operator" and u["is_operator"] is True, u
    assert u["sip_address"] == "ivanov.ii@demo.local" and u["call_groups"] == [1], u
    assert c.ok("GET", DOM + "/users/next-extension")["extension"] == "105"
    # extension unique across users, groups and IVR numbers
    for ext in ("104", "200", "500"):
        r = c.post(DOM + "/users", {"login": "dup%s" % ext, "display_name": "Dup",
                                    "password": "Dup-pass-01", "extension": ext})
        assert r.status == 409 and r.error()["field"] == "extension", (ext, r)
    r = c.post(DOM + "/users", {"login": "toolong", "display_name": "X",
                                "password": "Dup-pass-01", "extension": "123456"})
    assert r.status == 400 and r.error()["field"] == "extension", r
    # the domain-admin flag and the role agree
    item = DOM + "/users/%d" % u["id"]
    v = c.ok("PATCH", item, {"is_domain_admin": True})
    assert v["role"] == "domain_admin" and v["is_domain_admin"] is True
    v = c.ok("PATCH", item, {"is_domain_admin": False})
    assert v["role"] == "operator" and v["is_domain_admin"] is False
    # caller id must be a number of the domain
    r = c.patch(item, {"cli_number": "74950000999"})
    assert r.status == 400 and r.error()["field"] == "cli_number", r
    v = c.ok("PATCH", item, {"cli_number": "74951234567", "call_groups": []})
    assert v["cli_number"] == "74951234567" and v["call_groups"] == []
    # filters, search, sort and pagination
    ops = c.ok("GET", DOM + "/users", query={"is_operator": "true"})
    assert ops["total"] == 4 and all(x["is_operator"] for x in ops["items"])
    found = c.ok("GET", DOM + "/users", query={"q": "Иван"})
    assert [x["login"] for x in found["items"]] == ["ivanov.ii"], found
    found = c.ok("GET", DOM + "/users", query={"q": "ivanov"})
    assert [x["login"] for x in found["items"]] == ["ivanov.ii"], found
    page1 = c.ok("GET", DOM + "/users", query={"limit": 2, "offset": 0, "sort": "extension"})
    page2 = c.ok("GET", DOM + "/users", query={"limit": 2, "offset": 2, "sort": "extension"})
    assert page1["total"] == page2["total"] == 6 and page1["limit"] == 2
    exts = [x["extension"] for x in page1["items"] + page2["items"]]
    assert exts == ["100", "101", "102", "103"], exts
    # the password is set by PATCH too, with new SIP digests
    old = d.sql("SELECT sip_ha1_md5 FROM users WHERE id = %d" % u["id"])
    c.ok("PATCH", item, {"password": "Another-pass-9"})
    assert d.sql("SELECT sip_ha1_md5 FROM users WHERE id = %d" % u["id"]) != old
    d.client().login("ivanov.ii", "Another-pass-9", DEMO_DOMAIN)
    c.ok("DELETE", item)
    me = c.ok("GET", "/api/v1/auth/me")
    r = c.delete(DOM + "/users/%d" % me["id"])
    assert r.status == 409, r
    crud_cycle(c, DOM + "/users", {"login": "petrov", "display_name": "Petrov",
                                   "password": "Petrov-pass-1", "extension": "150"},
               {"display_name": "Petrov P.", "restriction": "internal_only", "language": "en"},
               "login", "user")


def test_pickup_groups_move_members(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    ids = {x["login"]: x["id"] for x in c.ok("GET", DOM + "/users")["items"]}
    a = c.ok("POST", DOM + "/pickup-groups", {"name": "Floor 1",
                                              "members": [ids["op101"], ids["op102"]]},
             status=201)
    b = c.ok("POST", DOM + "/pickup-groups", {"name": "Floor 2", "members": [ids["op102"]]},
             status=201)
    assert c.ok("GET", DOM + "/pickup-groups/%d" % a["id"])["members"] == [ids["op101"]]
    assert c.ok("GET", DOM + "/users/%d" % ids["op102"])["pickup_group_id"] == b["id"]
    r = c.post(DOM + "/pickup-groups", {"name": "Floor 3", "members": [999999]})
    assert r.status == 400 and r.error()["field"] == "members", r
    c.ok("DELETE", DOM + "/pickup-groups/%d" % a["id"])
    c.ok("DELETE", DOM + "/pickup-groups/%d" % b["id"])
    crud_cycle(c, DOM + "/pickup-groups", {"name": "Floor 9"}, {"name": "Floor 10"}, "name",
               "pickup_group")


def test_call_groups_with_members_and_strategies(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    ids = {x["login"]: x["id"] for x in c.ok("GET", DOM + "/users")["items"]}
    support = c.ok("GET", DOM + "/call-groups", query={"q": "Support"})
    assert support["items"][0]["strategy"] == "longest_idle"
    assert support["items"][0]["operator_count"] == 3
    g = crud_cycle(c, DOM + "/call-groups",
                   {"name": "Sales", "strategy": "round_robin", "wrapup_time": 10,
                    "members": [{"user_id": ids["op101"], "priority": 1, "penalty": 0},
                                {"user_id": ids["op103"], "priority": 2, "penalty": 5}]},
                   {"strategy": "weighted_random", "ring_timeout": 30,
                    "members": [{"user_id": ids["op102"], "priority": 1, "penalty": 0}]},
                   "name", "call_group")
    assert g["extension"] == "104", g  # auto-chosen, after the users' 100-103
    for s in ("not_set", "ring_all", "random", "longest_idle", "least_loaded", "fewest_calls",
              "round_robin", "linear", "weighted_random", "ring_progressive"):
        x = c.ok("POST", DOM + "/call-groups", {"name": "S-" + s, "strategy": s}, status=201)
        c.ok("DELETE", DOM + "/call-groups/%d" % x["id"])
    r = c.post(DOM + "/call-groups", {"name": "Bad", "strategy": "rrmemory"})
    assert r.status == 400 and r.error()["field"] == "strategy", r
    r = c.post(DOM + "/call-groups", {"name": "Bad", "members": [{"user_id": ids["op101"],
                                                                  "priority": 0}]})
    assert r.status == 400 and r.error()["field"] == "members", r
    # the ACD reads these rows
    rows = d.sql("SELECT m.priority FROM call_group_members m JOIN call_groups g ON "
                 "g.id = m.group_id WHERE g.name = 'Support' ORDER BY m.user_id")
    assert rows == [["1"], ["1"], ["1"]], rows


def test_external_numbers_ivr_flows_and_address_books(d):
    sa = d.login("sysadmin", DEMO["sysadmin"])
    crud_cycle(sa, DOM + "/numbers", {"number": "74957654321", "kind": "city",
                                      "description": "Sales line"},
               {"target": "200", "description": "Sales line (queue)"}, "number",
               "external_number")
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    r = c.post(DOM + "/numbers", {"number": "74957654322"})
    assert r.status == 403, r  # numbers are assigned by the operator of the platform
    flow = crud_cycle(c, DOM + "/ivr-flows", {"name": "Night menu", "extension": "510",
                                              "script": "night_menu", "flow": {"start": "hello"}},
                      {"flow": {"start": "closed"}}, "name", "ivr_flow")
    assert flow["version"] == 1
    f2 = c.ok("POST", DOM + "/ivr-flows", {"name": "Day menu", "flow": {"a": 1}}, status=201)
    assert c.ok("PATCH", DOM + "/ivr-flows/%d" % f2["id"], {"flow": {"a": 2}})["version"] == 2
    assert c.ok("PATCH", DOM + "/ivr-flows/%d" % f2["id"], {"flow": {"a": 2}})["version"] == 2
    r = c.post(DOM + "/ivr-flows", {"name": "Clash", "extension": "101"})
    assert r.status == 409 and r.error()["field"] == "extension", r
    c.ok("DELETE", DOM + "/ivr-flows/%d" % f2["id"])
    crud_cycle(c, DOM + "/contact-groups", {"name": "Suppliers"}, {"name": "Vendors"},
                    "name", "contact_group")
    shared = c.ok("POST", DOM + "/contact-groups", {"name": "Clients"}, status=201)
    crud_cycle(c, DOM + "/contacts",
               {"name": "ACME reception", "speed_dial": "15", "group_id": shared["id"],
                "numbers": [{"type": "work", "number": "74951110000"},
                            {"type": "ip", "number": "reception@acme.example"}]},
               {"speed_dial": "16", "numbers": [{"type": "mobile", "number": "+79161112233"}]},
               "name", "contact")
    r = c.post(DOM + "/contacts", {"name": "X", "speed_dial": "123456",
                                   "numbers": [{"type": "work", "number": "1"}]})
    assert r.status == 400 and r.error()["field"] == "speed_dial", r
    r = c.post(DOM + "/contacts", {"name": "X", "speed_dial": "1",
                                   "numbers": [{"type": "fax", "number": "1"}]})
    assert r.status == 400 and r.error()["field"] == "numbers", r
    # personal book of an operator: own rows only; shared book is read-only for them
    op = d.login("op101", DEMO["op101"], DEMO_DOMAIN)
    pg = op.ok("POST", "/api/v1/me/contact-groups", {"name": "Family"}, status=201)
    crud_cycle(op, "/api/v1/me/contacts",
                      {"name": "Mum", "speed_dial": "1", "group_id": pg["id"],
                       "numbers": [{"type": "mobile", "number": "+79160000001"}]},
               {"name": "Mother"}, "name", "contact", auditor=c)
    r = op.post("/api/v1/me/contacts", {"name": "X", "speed_dial": "2", "group_id": shared["id"],
                                        "numbers": [{"type": "home", "number": "1"}]})
    assert r.status == 400 and r.error()["field"] == "group_id", r
    assert op.ok("GET", DOM + "/contact-groups")["total"] >= 1
    assert op.post(DOM + "/contacts", {"name": "X", "speed_dial": "3",
                                       "numbers": [{"type": "home", "number": "1"}]}).status == 403
    assert c.ok("GET", DOM + "/contacts", query={"q": "Mum"})["total"] == 0
    other = d.login("op102", DEMO["op102"], DEMO_DOMAIN)
    assert other.ok("GET", "/api/v1/me/contact-groups")["total"] == 0
    assert other.get("/api/v1/me/contact-groups/%d" % pg["id"]).status == 404


def wav_bytes(seconds=1.0, rate=8000):
    buf = io.BytesIO()
    w = wave.open(buf, "wb")
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    n = int(seconds * rate)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                           for i in range(n)))
    w.close()
    return buf.getvalue()


def mp3_bytes(frames=40):
    """MPEG-1 layer III, 128 kbit/s, 44.1 kHz, with an ID3v2 tag: 417-byte frames."""
    tag = b"ID3\x04\x00\x00\x00\x00\x00\x05" + b"\x00" * 5
    frame = b"\xff\xfb\x90\x64" + b"\x00" * 413
    return tag + frame * frames


def test_sound_files_upload_checks_format_and_size(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    data = wav_bytes(1.5)
    s = c.ok("POST", DOM + "/sounds", data, query={"name": "Welcome", "description": "hello"},
             headers={"Content-Type": "audio/wav"}, status=201)
    assert s["format"] == "wav" and s["size"] == len(data) and s["duration_ms"] == 1500, s
    assert "path" not in s
    path = d.sql("SELECT path FROM sound_files WHERE id = %d" % s["id"])[0][0]
    assert path.startswith(os.path.join(d.dir, "var", "sounds", DEMO_DOMAIN)), path
    with open(path, "rb") as f:
        assert f.read() == data
    r = c.get(DOM + "/sounds/%d/file" % s["id"])
    assert r.status == 200 and r.body == data and r.header("content-type") == "audio/wav", r
    m = c.ok("POST", DOM + "/sounds", mp3_bytes(), query={"name": "Hold music"}, status=201)
    assert m["format"] == "mp3" and abs(m["duration_ms"] - 1044) <= 2, m
    for bad, why in ((b"RIFF\x10\x00\x00\x00WAVEjunk", "WAV"),
                     (b"hello, this is not audio" * 10, "MP3"),
                     (wav_bytes(0.1, rate=96000), "sample rate")):
        r = c.post(DOM + "/sounds", bad, query={"name": "bad"})
        assert r.status == 415 and why in r.error()["message"], r
    r = c.post(DOM + "/sounds", data, query={"name": "Welcome"})
    assert r.status == 409 and r.error()["field"] == "name", r
    r = c.post(DOM + "/sounds", data)
    assert r.status == 400 and r.error()["field"] == "name", r
    big = b"RIFF" + b"\x00" * (300 * 1024)
    r = c.post(DOM + "/sounds", big, query={"name": "big"})
    assert r.status == 413 and "http.max_upload" in r.error()["message"], r
    assert c.ok("GET", DOM + "/sounds")["total"] == 2
    upd = c.ok("PATCH", DOM + "/sounds/%d" % s["id"], {"description": "Greeting"})
    assert upd["description"] == "Greeting"
    r = c.patch(DOM + "/sounds/%d" % s["id"], {"format": "mp3"})
    assert r.status == 400 and r.error()["code"] == "read_only", r
    c.ok("DELETE", DOM + "/sounds/%d" % s["id"])
    wait_until(lambda: not os.path.exists(path), 5, what="the sound file to be removed")
    c.ok("DELETE", DOM + "/sounds/%d" % m["id"])


def test_audit_log_is_newest_first_filterable_and_undeletable(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    all_rows = c.ok("GET", "/api/v1/audit", query={"limit": 1000})
    items = all_rows["items"]
    assert all_rows["total"] == len(items) > 10
    assert [r["id"] for r in items] == sorted((r["id"] for r in items), reverse=True)
    r0 = items[0]
    for k in ("time", "ip", "actor", "object_type", "object_name", "action", "details"):
        assert k in r0, r0
    assert r0["ip"] == "127.0.0.1" and r0["actor"]["login"] in ("admin", "op101", "op102")
    adds = c.ok("GET", "/api/v1/audit", query={"action": "add", "user": "admin"})
    assert adds["total"] > 0 and all(r["action"] == "add" and r["actor"]["login"] == "admin"
                                     for r in adds["items"])
    today = c.ok("GET", "/api/v1/audit", query={"period": "today"})
    assert today["total"] == all_rows["total"]
    future = c.ok("GET", "/api/v1/audit", query={"from": 4102444800})
    assert future["total"] == 0
    obj = c.ok("GET", "/api/v1/audit", query={"object": "ivanov"})
    assert obj["total"] >= 2 and all("ivanov" in r["object_name"] for r in obj["items"])
    # a domain admin sees only its domain's rows; no row can be deleted or changed
    assert all(r["domain_id"] == items[0]["domain_id"] for r in items if r["domain_id"])
    for method in ("DELETE", "PATCH", "PUT", "POST"):
        assert c.request(method, "/api/v1/audit").status == 405
    assert c.request("DELETE", "/api/v1/audit/%d" % r0["id"]).status == 404
    assert c.ok("GET", "/api/v1/audit", query={"limit": 1000})["total"] == all_rows["total"]


if __name__ == "__main__":
    run_tests([test_pools_subgroups_and_pool_admins,
               test_pool_cycle_and_system_admins,
               test_domains,
               test_users_with_extensions_flags_and_groups,
               test_pickup_groups_move_members,
               test_call_groups_with_members_and_strategies,
               test_external_numbers_ivr_flows_and_address_books,
               test_sound_files_upload_checks_format_and_size,
               test_audit_log_is_newest_first_filterable_and_undeletable],
              demo=True, sets={"http.max_upload": str(256 * 1024)})
