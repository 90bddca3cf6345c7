#!/usr/bin/python3
# cw-test: both-stores
"""Voicemail messages through the API: the box owner (and, for a group's box,
the group's members) and the domain's administrators list, download (WAV,
MP3), mark heard and delete them; nobody else even sees them. Messages are
stored as the voicemail flow stores them (a row and a WAV under var_dir)."""

import os
import time
import uuid

import audio
from cwtest import DEMO, DEMO_DOMAIN, TestFailure, run_tests, wait_until

DOM = "/api/v1/domains/" + DEMO_DOMAIN
S = {}


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def message(d, owner=None, group=None, caller="74951112233", hz=440):
    folder = os.path.join(d.dir, "var", "voicemail", str(owner or "g%d" % group))
    os.makedirs(folder, exist_ok=True)
    path = audio.write_tone_wav(os.path.join(folder, "%s.wav" % uuid.uuid4().hex), hz, 2.0)
    d.sql_exec("INSERT INTO voicemail_messages(domain_id, owner_id, group_id, call_uuid, caller, "
               "caller_name, duration_ms, path, created_at) SELECT id, %s, %s, '%s', '%s', "
               "'Caller', 2000, '%s', %d FROM domains WHERE name = '%s'"
               % (owner or "NULL", group or "NULL", uuid.uuid4(), caller, path, int(time.time()),
                  DEMO_DOMAIN))
    mid = int(d.sql("SELECT id FROM voicemail_messages WHERE path = '%s'" % path)[0][0])
    return mid, path


def test_owners_and_admins_only(d):
    a = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    users = {u["login"]: u["id"] for u in a.ok("GET", DOM + "/users")["items"]}
    support = [g for g in a.ok("GET", DOM + "/call-groups")["items"]
               if g["name"] == "Support"][0]["id"]
    mine, mine_path = message(d, owner=users["op101"], hz=440)
    other, _ = message(d, owner=users["op102"], hz=600)
    grp, grp_path = message(d, group=support, hz=800)
    S.update(users=users, mine=mine, mine_path=mine_path, grp=grp, grp_path=grp_path, a=a)
    op101 = d.login("op101", DEMO["op101"], DEMO_DOMAIN)
    S["op101"] = op101
    seen = sorted(x["id"] for x in op101.ok("GET", DOM + "/voicemail")["items"])
    check(seen == sorted([mine, grp]), "op101: own box and the Support box: %r" % seen)
    check(op101.get(DOM + "/voicemail/%d" % other).status == 404, "not op102's box")
    check(op101.get(DOM + "/voicemail/%d/audio" % other).status == 404, "nor its audio")
    sup = d.login("supervisor", DEMO["supervisor"], DEMO_DOMAIN)
    check(sup.ok("GET", DOM + "/voicemail")["total"] == 0, "a supervisor has no box here")
    every = sorted(x["id"] for x in a.ok("GET", DOM + "/voicemail")["items"])
    check(every == sorted([mine, other, grp]), "the administrator sees every box: %r" % every)
    only = a.ok("GET", DOM + "/voicemail", query={"owner_id": users["op102"]})["items"]
    check([x["id"] for x in only] == [other], "filter by box")
    check(d.client().get(DOM + "/voicemail").status == 401, "anonymous: 401")


def test_download_mark_delete(d):
    op101 = S["op101"]
    item = DOM + "/voicemail/%d" % S["mine"]
    m = op101.ok("GET", item)
    check(m["heard"] is False and m["caller"] == "74951112233" and "path" not in m,
          "message: %r" % m)
    wav = op101.get(m["audio_url"])
    with open(S["mine_path"], "rb") as f:
        check(wav.status == 200 and wav.body == f.read() and
              wav.header("content-type") == "audio/wav", "WAV download: %r" % wav)
    mp3 = op101.get(m["audio_url"], query={"format": "mp3"})
    check(mp3.status == 200 and mp3.header("content-type") == "audio/mpeg" and
          (mp3.body[:3] == b"ID3" or (mp3.body[0] == 0xFF and mp3.body[1] & 0xE0 == 0xE0)),
          "MP3 download: %r" % mp3)
    again = op101.get(m["audio_url"], query={"format": "mp3"})
    check(again.body == mp3.body, "the MP3 is made once and reused")
    check(op101.ok("PATCH", item, {"heard": True})["heard"] is True, "marked heard")
    r = op101.patch(item, {"caller": "1"})
    check(r.status == 400 and r.error()["field"] == "caller", "only heard changes: %r" % r)
    check(op101.ok("GET", DOM + "/voicemail", query={"heard": "false"})["total"] == 1,
          "one unheard left (the group's)")
    op101.ok("DELETE", item)
    check(op101.get(item).status == 404, "deleted")
    mp3_path = S["mine_path"][:-4] + ".mp3"
    wait_until(lambda: not os.path.exists(S["mine_path"]) and not os.path.exists(mp3_path), 10,
               0.1, "the message's files to go")
    # a member of the group may not be the only one to delete the group's message: any member
    # and the administrators may; other users do not even see it
    op103 = d.login("op103", DEMO["op103"], DEMO_DOMAIN)
    check(op103.get(DOM + "/voicemail/%d" % S["grp"]).status == 200, "members share the box")
    S["a"].ok("DELETE", DOM + "/voicemail/%d" % S["grp"])
    wait_until(lambda: not os.path.exists(S["grp_path"]), 10, 0.1, "the group message's file")


if __name__ == "__main__":
    run_tests([test_owners_and_admins_only, test_download_mark_delete], demo=True)
