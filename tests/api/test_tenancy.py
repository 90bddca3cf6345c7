#!/usr/bin/python3
# cw-test: both-stores
"""Role x tenant matrix over every endpoint of the OpenAPI document.

Tenants: pool P1 (subgroups S1, S2) with domain A in S1 and domain C in S2;
pool P2 with domain B. Callers from the A side: A's domain admin,
supervisor, operator and subscriber, P1's supervisor and P1's subgroup
admin (S1 only), and nobody. Every route is called with B's (and C's)
objects and a body that would be valid, so a missing check would succeed:
each answer must be 401, 403 or 404, and afterwards B and C are unchanged.
Every placeholder of a path is filled with a live object of the other
tenant: a CDR row, an agent, a call in progress into a conference room
with its member (a phone of B, and one of C, stays in the room all along),
a fax page and a banned SIP address; a path with a placeholder the test
cannot fill fails it. The same objects behind the caller's own domain in
the path are refused too. Lists without a tenant in the path must not show
other tenants' rows.
"""

import io
import time
import wave

import sipraw
from cwtest import DEMO, TestFailure, run_tests, wait_until
from sipua import Phone

PW = "Matrix-pass-1"
S = {}  # the world built by test_build_the_world


def wav():
    buf = io.BytesIO()
    w = wave.open(buf, "wb")
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(8000)
    w.writeframes(b"\x00\x10" * 800)
    w.close()
    return buf.getvalue()


def test_build_the_world(d):
    sa = d.login("sysadmin", DEMO["sysadmin"])
    S["sa"] = sa
    p1 = sa.ok("POST", "/api/v1/pools", {"name": "P1"}, status=201)
    p2 = sa.ok("POST", "/api/v1/pools", {"name": "P2"}, status=201)
    s1 = sa.ok("POST", "/api/v1/pools/%d/subgroups" % p1["id"], {"name": "S1"}, status=201)
    s2 = sa.ok("POST", "/api/v1/pools/%d/subgroups" % p1["id"], {"name": "S2"}, status=201)
    p2sub = sa.ok("GET", "/api/v1/pools/%d/subgroups" % p2["id"])["items"][0]
    a = sa.ok("POST", "/api/v1/domains", {"name": "a.example", "pool_id": p1["id"],
                                          "subgroup_id": s1["id"], "routing_number": "11"},
              status=201)
    c = sa.ok("POST", "/api/v1/domains", {"name": "c.example", "pool_id": p1["id"],
                                          "subgroup_id": s2["id"]}, status=201)
    b = sa.ok("POST", "/api/v1/domains", {"name": "b.example", "pool_id": p2["id"]}, status=201)
    S.update(p1=p1, p2=p2, s1=s1, s2=s2, p2sub=p2sub, a=a, b=b, c=c)
    for dom in (a, b, c):
        sa.ok("POST", "/api/v1/domains/%d/numbers" % dom["id"],
              {"number": "7495%07d" % dom["id"]}, status=201)
    users = {}
    for dom, prefix in ((a, "a"), (b, "b"), (c, "c")):
        for role in ("domain_admin", "supervisor", "operator", "subscriber"):
            login = "%s-%s" % (prefix, role.replace("_", ""))
            users[login] = sa.ok("POST", "/api/v1/domains/%d/users" % dom["id"],
                                 {"login": login, "display_name": login, "password": PW,
                                  "role": role}, status=201)
    S["users"] = users
    S["p1sup"] = sa.ok("POST", "/api/v1/pools/%d/admins" % p1["id"],
                       {"login": "p1sup", "display_name": "P1 sup", "email": "p1@example.com",
                        "password": PW, "role": "pool_supervisor"}, status=201)
    S["p1sg"] = sa.ok("POST", "/api/v1/pools/%d/admins" % p1["id"],
                      {"login": "p1sg", "display_name": "P1 subgroups", "email": "sg@example.com",
                       "password": PW, "subgroups": [s1["id"]]}, status=201)
    S["p2adm"] = sa.ok("POST", "/api/v1/pools/%d/admins" % p2["id"],
                       {"login": "p2sup", "display_name": "P2 sup", "email": "p2@example.com",
                        "password": PW, "role": "pool_supervisor"}, status=201)
    # objects of B and C, created by their own admins
    for dom, prefix in ((b, "b"), (c, "c")):
        adm = d.login("%s-domainadmin" % prefix, PW, dom["name"])
        base = "/api/v1/domains/%d" % dom["id"]
        o = {"users": users["%s-operator" % prefix]}
        o["call-groups"] = adm.ok("POST", base + "/call-groups", {"name": "Q"}, status=201)
        o["pickup-groups"] = adm.ok("POST", base + "/pickup-groups", {"name": "PG"}, status=201)
        o["contact-groups"] = adm.ok("POST", base + "/contact-groups", {"name": "CG"}, status=201)
        o["contacts"] = adm.ok("POST", base + "/contacts",
                               {"name": "K", "speed_dial": "1",
                                "numbers": [{"type": "work", "number": "1"}]}, status=201)
        o["ivr-flows"] = adm.ok("POST", base + "/ivr-flows", {"name": "IVR"}, status=201)
        o["sounds"] = adm.ok("POST", base + "/sounds", wav(), query={"name": "snd"}, status=201)
        o["numbers"] = adm.ok("GET", base + "/numbers")["items"][0]
        o["me/contacts"] = adm.ok("POST", "/api/v1/me/contacts",
                                  {"name": "own", "speed_dial": "9",
                                   "numbers": [{"type": "home", "number": "2"}]}, status=201)
        o["me/contact-groups"] = adm.ok("POST", "/api/v1/me/contact-groups", {"name": "own"},
                                        status=201)
        o["tokens"] = adm.ok("POST", "/api/v1/auth/tokens", {"name": "t"}, status=201)
        o["forwarding-rules"] = adm.ok("POST", base + "/forwarding-rules",
                                       {"owner_id": users["%s-operator" % prefix]["id"],
                                        "kind": "mobile", "number": "79001234567"}, status=201)
        o["me/forwarding-rules"] = adm.ok("POST", "/api/v1/me/forwarding-rules",
                                          {"kind": "mobile", "number": "79007654321"}, status=201)
        o["vip-numbers"] = adm.ok("POST", base + "/vip-numbers",
                                  {"number": "79005550000", "priority": 1}, status=201)
        o["trunks"] = sa.ok("POST", base + "/trunks",
                            {"name": "T", "host": "192.0.2.%d" % dom["id"], "register": False},
                            status=201)
        o["conference-rooms"] = adm.ok("POST", base + "/conference-rooms", {"name": "Room"},
                                       status=201)
        o["ring-lists"] = adm.ok("POST", base + "/ring-lists",
                                 {"name": "RL", "members": [{"number": "79001234567"}]},
                                 status=201)
        now_ms = int(time.time() * 1000)
        d.sql_exec("INSERT INTO cdrs(uuid, domain_id, direction, a_number, b_number, states, "
                   "start_ms, end_ms) VALUES ('cdr-%s', %d, 'in', '555', '100', '[]', %d, %d)"
                   % (prefix, dom["id"], now_ms - 60000, now_ms))
        o["cdrs"] = adm.ok("GET", base + "/cdrs/cdr-%s" % prefix)
        # faxes come from calls: a received one in the domain admin's own box
        owner = users["%s-domainadmin" % prefix]["id"]
        d.sql_exec("INSERT INTO faxes(domain_id, owner_id, direction, counterpart, status, "
                   "path, created_at, updated_at) VALUES (%d, %d, 'in', '555', 'received', "
                   "'/nonexistent/fax.tiff', 1, 1)" % (dom["id"], owner))
        fax = {"id": int(d.sql("SELECT MAX(id) FROM faxes")[0][0])}
        o["faxes"] = o["me/faxes"] = fax
        op = users["%s-operator" % prefix]["id"]
        adm.ok("PATCH", base + "/users/%d" % op, {"is_operator": True})
        o["agents"] = {"user": op}
        ops_group = adm.ok("POST", base + "/call-groups",
                           {"name": "Ops", "members": [{"user_id": op}]}, status=201)
        o["day-groups"] = adm.ok("POST", base + "/day-groups", {"name": "W", "days": [1]},
                                 status=201)
        o["schedules"] = adm.ok("POST", base + "/schedules", {"name": "S", "periods": [
            {"day_group_id": o["day-groups"]["id"], "from": "09:00", "to": "18:00"}]},
            status=201)
        o["classifiers"] = adm.ok("POST", base + "/classifiers",
                                  {"name": "C", "numbers": ["74951112233"]}, status=201)
        o["routing-rules"] = adm.ok("POST", base + "/routing-rules",
                                    {"number_id": o["numbers"]["id"],
                                     "schedule_id": o["schedules"]["id"],
                                     "target": {"type": "group", "id": ops_group["id"]}},
                                    status=201)
        o["operator-messages"] = adm.ok("POST", base + "/operator-messages",
                                        {"title": "T", "text": "X",
                                         "group_ids": [ops_group["id"]]}, status=201)
        now = int(time.time())
        d.sql_exec("INSERT INTO recordings(domain_id, call_uuid, path, user_id, created_at, "
                   "expires_at, state) VALUES (%d, 'rec-%s', '/nonexistent.wav', %d, %d, %d, "
                   "'done')" % (dom["id"], prefix, op, now, now + 86400))
        d.sql_exec("INSERT INTO voicemail_messages(domain_id, owner_id, call_uuid, caller, "
                   "duration_ms, path, created_at) VALUES (%d, %d, 'vm-%s', '1', 1000, "
                   "'/nonexistent.wav', %d)" % (dom["id"], op, prefix, now))
        o["recordings"] = {"id": int(d.sql("SELECT id FROM recordings WHERE call_uuid = 'rec-%s'"
                                           % prefix)[0][0])}
        o["voicemail"] = {"id": int(d.sql("SELECT id FROM voicemail_messages WHERE call_uuid = "
                                          "'vm-%s'" % prefix)[0][0])}
        S[prefix + "_objects"] = o
    callers = {"nobody": d.client()}
    for login in ("a-domainadmin", "a-supervisor", "a-operator", "a-subscriber"):
        callers[login] = d.login(login, PW, "a.example")
    callers["p1sup"] = d.login("p1sup", PW)
    callers["p1sg"] = d.login("p1sg", PW)
    S["callers"] = callers


def test_live_objects_of_the_other_tenants(d):
    """A call in progress in B's and C's conference rooms, and a banned address."""
    sa = S["sa"]
    S["phones"] = []
    for dom, prefix in ((S["b"], "b"), (S["c"], "c")):
        o = S[prefix + "_objects"]
        base = "/api/v1/domains/%d" % dom["id"]
        phone = Phone(prefix, "%s-operator" % prefix, PW, d.sip_port, domain=dom["name"],
                      seconds=600)
        S["phones"].append(phone)
        phone.start()
        if not phone.wait_registered(15):
            raise TestFailure("%s-operator did not register" % prefix)
        phone.dial("sip:%s@%s" % (o["conference-rooms"]["extension"], dom["name"]))
        if not phone.wait_event("CALL_ESTABLISHED", 15):
            raise TestFailure("%s's conference room did not answer" % prefix)
        calls = wait_until(lambda: sa.ok("GET", base + "/calls")["items"], 10, 0.1,
                           "the call of %s listed" % prefix)
        o["calls"] = {"uuid": calls[0]["uuid"]}
        room = wait_until(lambda: [r for r in sa.ok("GET", base + "/conferences")["items"]
                                   if r["members"]], 10, 0.1, "the room of %s live" % prefix)[0]
        o["conferences"] = {"room": room["id"], "member": room["members"][0]["id"]}
    # five bad passwords from an address of its own get it banned (not tenant-scoped:
    # system administrators only)
    c = sipraw.Client(d.sip_port, local_ip="127.0.0.3")
    try:
        for _ in range(5):
            c.register("b-operator", "b.example", "wrong-password")
    finally:
        c.close()
    bans = wait_until(lambda: [b for b in sa.ok("GET", "/api/v1/sip/bans")["items"]
                               if b["ip"] == "127.0.0.3"], 5, 0.1, "127.0.0.3 banned")
    S["ban_ip"] = bans[0]["ip"]


def test_live_objects_survive_the_matrix(d):
    """The refused hang-ups, kicks and lifts changed nothing; then the phones hang up."""
    sa = S["sa"]
    try:
        for dom, prefix in ((S["b"], "b"), (S["c"], "c")):
            o = S[prefix + "_objects"]
            base = "/api/v1/domains/%d" % dom["id"]
            assert sa.get(base + "/calls/%s" % o["calls"]["uuid"]).status == 200, prefix
            room = sa.ok("GET", base + "/conferences/%d" % o["conferences"]["room"])
            assert [m["id"] for m in room["members"]] == [o["conferences"]["member"]], room
            assert not room["members"][0]["muted"], room
        assert [b for b in sa.ok("GET", "/api/v1/sip/bans")["items"]
                if b["ip"] == S["ban_ip"]], "the ban was lifted"
    finally:
        for phone in S.get("phones", []):
            phone.stop()


# Bodies that would succeed if the checks were missing.
def bodies(collection):
    return {
        "users": {"login": "intruder", "display_name": "X", "password": PW},
        "call-groups": {"name": "Intruders"},
        "pickup-groups": {"name": "Intruders"},
        "contact-groups": {"name": "Intruders"},
        "contacts": {"name": "I", "speed_dial": "7", "numbers": [{"type": "work", "number": "3"}]},
        "ivr-flows": {"name": "Intruder IVR"},
        "numbers": {"number": "74990000001"},
        "subgroups": {"name": "Intruders"},
        "admins": {"login": "intruder", "display_name": "X", "email": "x@example.com",
                   "password": PW},
        "domains": {"display_name": "hacked", "domain_ids": []},
        "pools": {"name": "hacked"},
        "sysadmins": {"login": "intruder", "display_name": "X", "password": PW},
        "forwarding-rules": {"owner_id": S["users"]["b-operator"]["id"], "kind": "mobile",
                             "number": "79001110000"},
        "vip-numbers": {"number": "79005550001"},
        "trunks": {"name": "Intruder", "host": "192.0.2.99", "register": False},
        "transfer": {"to": "100"},
        "spy": {"mode": "listen"},
    }.get(collection, {"name": "hacked", "display_name": "hacked"})


def patch_bodies(collection):
    return {"users": {"display_name": "hacked"}, "numbers": {"description": "hacked"},
            "forwarding-rules": {"number": "79009990000"}, "vip-numbers": {"comment": "hacked"},
            "trunks": {"name": "hacked"},
            "domains": {"display_name": "hacked"}, "admins": {"display_name": "hacked"},
            "sysadmins": {"display_name": "hacked"}, "contacts": {"name": "hacked"},
            "members": {"muted": True}}.get(
        collection, {"name": "hacked"})


def target_url(path, dom, pool, objs):
    """Fill a path template with the other tenant's ids; the URL and the collection.
    A placeholder this does not know raises: every route must be tried with real values."""
    segs = path.strip("/").split("/")
    out = []
    collection = None
    for i, s in enumerate(segs):
        prev = segs[i - 1]
        if s == "{domain}":
            out.append(str(dom["id"]))
        elif s == "{pool}":
            out.append(str(pool["id"]))
        elif s == "{id}":
            key = "me/" + prev if segs[i - 2] == "me" else prev
            if prev == "domains":
                oid = dom["id"]
            elif prev == "pools":
                oid = pool["id"]
            elif prev == "subgroups":
                oid = S["p2sub"]["id"] if pool is S["p2"] else S["s2"]["id"]
            elif prev == "admins":
                oid = S["p2adm"]["id"]
            elif prev == "sysadmins":
                oid = 1
            else:
                oid = objs[key]["id"]
            out.append(str(oid))
        elif s == "{uuid}" and prev in ("calls", "cdrs"):
            out.append(objs[prev]["uuid"])
        elif s == "{user}" and prev == "agents":
            out.append(str(objs["agents"]["user"]))
        elif s == "{room}" and prev == "conferences":
            out.append(str(objs["conferences"]["room"]))
        elif s == "{member}" and prev == "members":
            out.append(str(objs["conferences"]["member"]))
        elif s == "{page}" and prev == "pages":
            out.append("1")
        elif s == "{ip}" and prev == "bans":
            out.append(S["ban_ip"])
        elif s.startswith("{"):
            raise TestFailure("%s: no value of the other tenant for %s" % (path, s))
        else:
            out.append(s)
            collection = s
    return "/" + "/".join(out), collection


def snapshot(d):
    """Every row of the tenant tables, to prove nothing changed."""
    tables = ["users", "domains", "pools", "subgroups", "call_groups", "call_group_members",
              "pickup_groups", "pickup_members", "contact_groups", "contacts", "ivr_flows",
              "forwarding_rules", "vip_numbers", "trunks", "day_groups", "schedules",
              "classifiers", "classifier_numbers", "routing_rules", "recordings",
              "voicemail_messages", "operator_messages", "operator_message_recipients",
              "sound_files", "external_numbers", "api_tokens", "user_subgroups",
              "conference_rooms", "faxes", "ring_lists", "ring_list_members"]
    return {t: d.sql("SELECT * FROM %s ORDER BY 1" % t) for t in tables}


def test_every_endpoint_refuses_other_tenants(d):
    doc = d.client().ok("GET", "/api/v1/openapi.json")
    before = snapshot(d)
    audit_before = d.sql("SELECT COUNT(*) FROM audit_log")
    checked = 0
    problems = []
    for target, pool, objs, callers in (
            (S["b"], S["p2"], S["b_objects"], list(S["callers"])),
            (S["c"], S["p2"], S["c_objects"], ["a-domainadmin", "a-supervisor", "a-operator",
                                               "a-subscriber", "p1sg"])):
        for path, ops in doc["paths"].items():
            if not path.startswith("/api/v1/") or path.endswith("/events"):
                continue
            if "{" not in path:
                continue
            if target is S["c"] and "{pool}" in path:
                continue  # C shares A's pool; pool routes are covered with P2
            for method in ops:
                url, collection = target_url(path, target, pool, objs)
                body = None
                kw = {}
                if method == "post":
                    if path.endswith("/sounds"):
                        body, kw = wav(), {"query": {"name": "intruder"}}
                    elif path.endswith("/import"):
                        body = "intruder,%s,X,,Q,,\n" % PW
                        kw = {"query": {"mode": "commit"}}
                    else:
                        body = bodies(collection)
                elif method == "patch":
                    body = patch_bodies(collection)
                elif method == "put" and collection == "state":
                    body = {"state": "break"}
                for who in callers:
                    if (path.endswith("/directory") and who.startswith("a-") and
                            target is S["c"]):
                        continue  # the pool directory is shared by design
                    r = S["callers"][who].request(method.upper(), url, body=body, **kw)
                    checked += 1
                    if r.status not in (401, 403, 404):
                        problems.append("%s %s %s as %s -> %d %s" % (
                            method.upper(), path, url, who, r.status, r.text[:200]))
                    if who == "nobody" and r.status != 401:
                        problems.append("%s %s without login -> %d" % (method, url, r.status))
    assert not problems, "\n".join(problems[:40])
    assert checked > 600, checked
    assert snapshot(d) == before, "a refused request changed something"
    assert d.sql("SELECT COUNT(*) FROM audit_log") == audit_before, "refused requests audited"


def test_own_domain_paths_refuse_other_tenants_objects(d):
    """A's own domain in the path, B's (and C's) object after it: the object's tenant is
    checked, not only the path's."""
    doc = d.client().ok("GET", "/api/v1/openapi.json")
    before = snapshot(d)
    audit_before = d.sql("SELECT COUNT(*) FROM audit_log")
    checked = 0
    problems = []
    for objs in (S["b_objects"], S["c_objects"]):
        for path, ops in doc["paths"].items():
            if not path.startswith("/api/v1/domains/{domain}/") or path.count("{") < 2:
                continue
            url, collection = target_url(path, S["a"], S["p1"], objs)
            for method in ops:
                body = {"post": bodies(collection), "patch": patch_bodies(collection),
                        "put": {"state": "break"}}.get(method)
                for who in ("a-domainadmin", "a-supervisor", "a-operator", "a-subscriber",
                            "p1sup", "p1sg"):
                    r = S["callers"][who].request(method.upper(), url, body=body)
                    checked += 1
                    if r.status not in (403, 404):
                        problems.append("%s %s %s as %s -> %d %s" % (
                            method.upper(), path, url, who, r.status, r.text[:200]))
    assert not problems, "\n".join(problems[:40])
    assert checked > 300, checked
    assert snapshot(d) == before, "a refused request changed something"
    assert d.sql("SELECT COUNT(*) FROM audit_log") == audit_before, "refused requests audited"


def test_lists_show_only_the_callers_tenants(d):
    cl = S["callers"]
    names = lambda c, url: sorted(x["name"] for x in c.ok("GET", url)["items"])
    assert names(cl["a-domainadmin"], "/api/v1/domains") == ["a.example"]
    assert names(cl["a-subscriber"], "/api/v1/domains") == ["a.example"]
    assert names(cl["p1sup"], "/api/v1/domains") == ["a.example", "c.example"]
    # a subgroup admin sees only the domains of its subgroups
    assert names(cl["p1sg"], "/api/v1/domains") == ["a.example"]
    assert names(cl["p1sg"], "/api/v1/pools/%d/subgroups" % S["p1"]["id"]) == ["S1"]
    assert names(cl["p1sup"], "/api/v1/pools") == ["P1"]
    assert cl["p1sg"].get("/api/v1/domains/%d" % S["c"]["id"]).status == 404
    assert cl["a-domainadmin"].get("/api/v1/pools").status == 403
    assert cl["a-domainadmin"].get("/api/v1/sysadmins").status == 403
    for who in ("a-domainadmin", "p1sg", "p1sup"):
        rows = cl[who].ok("GET", "/api/v1/audit", query={"limit": 1000})["items"]
        assert rows, who
        for r in rows:
            assert r["domain_id"] not in (S["b"]["id"],), (who, r)
            if who != "p1sup":
                assert r["domain_id"] != S["c"]["id"], (who, r)
    # the directory covers the caller's pool only
    assert cl["a-subscriber"].ok("GET", "/api/v1/domains/%d/directory" % S["c"]["id"])["total"] == 4
    assert cl["a-subscriber"].get("/api/v1/domains/%d/directory" % S["b"]["id"]).status == 404
    d_a = cl["a-subscriber"].ok("GET", "/api/v1/domains/a.example/directory")["items"]
    assert all("password" not in x and "email" not in x for x in d_a)


def test_roles_inside_the_own_domain(d):
    cl = S["callers"]
    a = "/api/v1/domains/%d" % S["a"]["id"]
    sub = S["users"]["a-subscriber"]
    # an operator (and a supervisor) cannot change users
    for who in ("a-operator", "a-supervisor", "a-subscriber"):
        c = cl[who]
        assert c.patch(a + "/users/%d" % sub["id"], {"display_name": "x"}).status == 403, who
        assert c.post(a + "/users", bodies("users")).status == 403, who
        assert c.delete(a + "/users/%d" % sub["id"]).status == 403, who
        assert c.post(a + "/users/import", "x,%s,X,,Q,,\n" % PW,
                      query={"mode": "commit"}).status == 403, who
    assert cl["a-subscriber"].get(a + "/users").status == 403
    assert cl["a-operator"].get(a + "/users").status == 403
    assert cl["a-supervisor"].ok("GET", a + "/users")["total"] == 4
    # a supervisor may tune a queue but not create or delete one
    q = cl["a-domainadmin"].ok("POST", a + "/call-groups", {"name": "Line 1"}, status=201)
    assert cl["a-supervisor"].ok("PATCH", a + "/call-groups/%d" % q["id"],
                                 {"strategy": "ring_all"})["strategy"] == "ring_all"
    assert cl["a-supervisor"].patch(a + "/call-groups/%d" % q["id"],
                                    {"extension": "999"}).status == 403
    assert cl["a-supervisor"].delete(a + "/call-groups/%d" % q["id"]).status == 403
    # field roles: a domain admin cannot raise its own limits or move its pool
    r = cl["a-domainadmin"].patch("/api/v1/domains/%d" % S["a"]["id"], {"max_users": 99999})
    assert r.status == 403 and r.error()["field"] == "max_users", r
    r = cl["a-domainadmin"].patch("/api/v1/domains/%d" % S["a"]["id"],
                                  {"routing_number": "12"})
    assert r.status == 403 and r.error()["field"] == "routing_number", r
    # the subgroup admin renames and renumbers domains of its subgroups only
    ok = cl["p1sg"].ok("PATCH", "/api/v1/domains/%d" % S["a"]["id"],
                       {"display_name": "A Ltd", "routing_number": "13"})
    assert ok["display_name"] == "A Ltd" and ok["routing_number"] == "13"
    assert cl["p1sg"].patch("/api/v1/domains/%d" % S["c"]["id"],
                            {"display_name": "C"}).status == 404
    assert cl["p1sg"].post("/api/v1/pools/%d/subgroups" % S["p1"]["id"],
                           {"name": "S3"}).status == 403
    # ... and, like the pool supervisor, works inside its domains as their admin
    assert cl["p1sg"].ok("GET", a + "/users")["total"] == 4
    assert cl["p1sup"].ok("GET", "/api/v1/domains/%d/users" % S["c"]["id"])["total"] == 4


if __name__ == "__main__":
    run_tests([test_build_the_world,
               test_live_objects_of_the_other_tenants,
               test_every_endpoint_refuses_other_tenants,
               test_own_domain_paths_refuse_other_tenants_objects,
               test_live_objects_survive_the_matrix,
               test_lists_show_only_the_callers_tenants,
               test_roles_inside_the_own_domain],
              demo=True)
