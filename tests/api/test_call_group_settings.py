#!/usr/bin/python3
# cw-test: both-stores
"""The queue settings of call-processing groups through API v1: tier
escalation in seconds, the ring-progressively step, the average talk time of
the estimated-wait announcement (0 = off), a greeting sound played before the
queue and what the caller hears while waiting (music or ringback) round-trip
and reach the rows the ACD reads. Bad input - negative timeouts, a member or
a greeting sound of another tenant, unknown waiting audio - gets 400 naming
the field, on create and on change, and the group is left as it was."""

import os
import tempfile

from audio import write_tone_wav
from cwtest import DEMO, DEMO_DOMAIN, run_tests

DOM = "/api/v1/domains/" + DEMO_DOMAIN
S = {}  # what test_a_foreign_tenant builds


def admin(d):
    return d.login("admin", DEMO["admin"], DEMO_DOMAIN)


def tone_wav(freq):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tone.wav")
        write_tone_wav(path, freq, 1.0)
        with open(path, "rb") as f:
            return f.read()


def upload(client, dom_url, name):
    return client.ok("POST", dom_url + "/sounds", tone_wav(440), query={"name": name},
                     headers={"Content-Type": "audio/wav"}, status=201)


def snapshot(d):
    return (d.sql("SELECT * FROM call_groups ORDER BY id"),
            d.sql("SELECT * FROM call_group_members ORDER BY group_id, user_id"))


def test_a_foreign_tenant(d):
    sa = d.login("sysadmin", DEMO["sysadmin"])
    other = sa.ok("POST", "/api/v1/domains", {"name": "other.example"}, status=201)
    S["foreign_user"] = d.add_user("stranger", "101", "Stranger-pass-1", domain="other.example")
    S["foreign_sound"] = upload(sa, "/api/v1/domains/%d" % other["id"], "their greeting")


def test_queue_settings_round_trip(d):
    c = admin(d)
    ids = {u["login"]: u["id"] for u in c.ok("GET", DOM + "/users")["items"]}
    greeting = upload(c, DOM, "queue greeting")
    body = {"name": "Escalating", "strategy": "ring_progressive", "tier_escalation": 15,
            "progressive_step": 8, "avg_talk_time": 90, "greeting_sound_id": greeting["id"],
            "waiting_audio": "ringback",
            "members": [{"user_id": ids["op101"], "priority": 1, "penalty": 0},
                        {"user_id": ids["op102"], "priority": 2, "penalty": 0}]}
    g = c.ok("POST", DOM + "/call-groups", body, status=201)
    for k, v in body.items():
        assert g[k] == v, (k, g)
    assert c.ok("GET", DOM + "/call-groups/%d" % g["id"]) == g
    row = d.sql("SELECT tier_escalation, progressive_step, avg_talk_time, greeting_sound_id, "
                "waiting_audio FROM call_groups WHERE id = ?", (g["id"],))
    assert row == [["15", "8", "90", str(greeting["id"]), "ringback"]], row
    # defaults of a bare group: no escalation wait, a 5 s step, no estimate, music, no greeting
    bare = c.ok("POST", DOM + "/call-groups", {"name": "Bare"}, status=201)
    assert bare["tier_escalation"] == 0 and bare["progressive_step"] == 5, bare
    assert bare["avg_talk_time"] == 0 and bare["waiting_audio"] == "moh", bare
    assert bare["greeting_sound_id"] is None and bare["moh"] == "default", bare
    # turned off again
    upd = c.ok("PATCH", DOM + "/call-groups/%d" % g["id"],
               {"tier_escalation": 0, "avg_talk_time": 0, "greeting_sound_id": None,
                "waiting_audio": "moh", "moh": "jazz"})
    assert upd["tier_escalation"] == 0 and upd["avg_talk_time"] == 0, upd
    assert upd["greeting_sound_id"] is None and upd["moh"] == "jazz", upd
    # a greeting sound deleted leaves the group without one
    c.ok("PATCH", DOM + "/call-groups/%d" % bare["id"], {"greeting_sound_id": greeting["id"]})
    c.ok("DELETE", DOM + "/sounds/%d" % greeting["id"])
    assert c.ok("GET", DOM + "/call-groups/%d" % bare["id"])["greeting_sound_id"] is None


def test_bad_settings_are_named_and_change_nothing(d):
    c = admin(d)
    ids = {u["login"]: u["id"] for u in c.ok("GET", DOM + "/users")["items"]}
    support = c.ok("GET", DOM + "/call-groups", query={"q": "Support"})["items"][0]
    url = DOM + "/call-groups/%d" % support["id"]
    mine = [{"user_id": ids["op101"], "priority": 1, "penalty": 0}]
    cases = [
        ({"ring_timeout": -1}, "ring_timeout", "invalid_value"),
        ({"wrapup_time": -5}, "wrapup_time", "invalid_value"),
        ({"max_wait": -1}, "max_wait", "invalid_value"),
        ({"tier_escalation": -1}, "tier_escalation", "invalid_value"),
        ({"tier_escalation": True}, "tier_escalation", "invalid_type"),
        ({"progressive_step": 0}, "progressive_step", "invalid_value"),
        ({"avg_talk_time": -30}, "avg_talk_time", "invalid_value"),
        ({"avg_talk_time": "120"}, "avg_talk_time", "invalid_type"),
        ({"waiting_audio": "silence"}, "waiting_audio", "invalid_value"),
        ({"greeting_sound_id": S["foreign_sound"]["id"]}, "greeting_sound_id",
         "invalid_value"),
        ({"greeting_sound_id": 987654}, "greeting_sound_id", "invalid_value"),
        # a member of another tenant, alone or next to one of ours
        ({"members": [{"user_id": S["foreign_user"], "priority": 1}]}, "members", None),
        ({"members": mine + [{"user_id": S["foreign_user"], "priority": 2}]}, "members", None),
    ]
    before = snapshot(d)
    assert before[1], "Support has members to lose"
    for body, field, code in cases:
        for method, target, full in (("POST", DOM + "/call-groups", dict(body, name="New")),
                                     ("PATCH", url, body)):
            r = c.request(method, target, full)
            assert r.status == 400, (method, body, r)
            assert r.error()["field"] == field, (method, body, r)
            if code:
                assert r.error()["code"] == code, (method, body, r)
    assert snapshot(d) == before
    assert c.ok("GET", url) == support


if __name__ == "__main__":
    run_tests([test_a_foreign_tenant,
               test_queue_settings_round_trip,
               test_bad_settings_are_named_and_change_nothing],
              demo=True)
