#!/usr/bin/python3
# cw-test: both-stores
"""Call recordings from policy to expiry, with real phones.

Policy: per user (users.recording_enabled), per call-processing group
(call_groups.recording_enabled) or for the whole domain (record_all). The
caller speaks 440 Hz, each agent its own tone, so the stereo recording
shows who is on which channel. Asserted: what is recorded and what is not
(a user without recording, a call nobody answered, a queue call answered by
an agent whose calls are not recorded), the recording's link to its call,
who may list and download it (WAV and MP3), and that it is gone - row,
file and CDR link - once the domain's retention has passed on the clock.
"""

import datetime
import os
import time

import audio
import routelib
from cwtest import DEMO, DEMO_DOMAIN, wait_until
from routelib import DOM, check, set_clock
from sipua import Phone

S = {}
CALLER_HZ, HZ = 440, {"op101": 1000, "op102": 1400, "op103": 1800}


def tone(d, name, hz):
    return audio.write_tone_wav(os.path.join(d.dir, name + ".wav"), hz, 120, amplitude=9000)


def setup(d):
    tok = d.login("admin", DEMO["admin"], DEMO_DOMAIN).ok(
        "POST", "/api/v1/auth/tokens", {"name": "rec"}, status=201)["token"]
    a = d.client(token=tok)  # the clock will move by a month
    S.update(a=a, d=d)
    S["users"] = {u["login"]: u["id"] for u in a.ok("GET", DOM + "/users")["items"]}
    S["domain"] = a.ok("GET", "/api/v1/domains")["items"][0]["id"]
    S["support"] = [g for g in a.ok("GET", DOM + "/call-groups")["items"]
                    if g["name"] == "Support"][0]["id"]
    a.ok("PATCH", DOM + "/users/%d" % S["users"]["op101"], {"recording_enabled": True})
    S["phones"] = {"admin": Phone("admin", "admin", DEMO["admin"], d.sip_port, seconds=600,
                                  mic_wav=tone(d, "caller", CALLER_HZ))}
    for op in ("op101", "op102", "op103"):
        S["phones"][op] = Phone(op, op, DEMO[op], d.sip_port, auto_answer=op != "op103",
                                seconds=600, mic_wav=tone(d, op, HZ[op]))
        a.ok("PUT", DOM + "/agents/%d/state" % S["users"][op], {"state": "logged_out"})
    for p in S["phones"].values():
        p.start()
        check(p.wait_registered(15), "%s did not register" % p.name)


def talk(dial, agent, seconds=3.0):
    """admin calls `dial`; agent (a login) answers; they talk; admin hangs up. The call's uuid."""
    c, ag = S["phones"]["admin"], S["phones"][agent]
    known = calls_to(dial)
    c.events.clear()
    ag.events.clear()
    c.dial("sip:%s@%s" % (dial, DEMO_DOMAIN))
    check(ag.wait_event("CALL_ESTABLISHED", 15) is not None, "%s did not answer" % agent)
    check(c.wait_event("CALL_ESTABLISHED", 10) is not None, "the caller is not connected")
    time.sleep(seconds)
    c.hangup()
    check(ag.wait_event("CALL_CLOSED", 8) is not None, "%s not hung up" % agent)
    return new_call(dial, known)


def calls_to(dial):
    return {x["uuid"] for x in S["a"].ok("GET", DOM + "/cdrs",
                                         query={"number": dial, "limit": 1000})["items"]}


def new_call(dial, known):
    """The CDR of the call to `dial` that was not there before (CDRs are written in batches)."""
    def find():
        items = S["a"].ok("GET", DOM + "/cdrs", query={"number": dial, "limit": 1000})["items"]
        fresh = [x for x in items if x["uuid"] not in known]
        return fresh[0] if fresh else None
    return wait_until(find, 10, 0.2, "the CDR of the call to %s" % dial)


def recording_of(uuid, present=True):
    def find():
        items = S["a"].ok("GET", DOM + "/recordings", query={"call_uuid": uuid})["items"]
        return items[0] if items and items[0]["duration_ms"] > 0 else None
    if present:
        return wait_until(find, 10, 0.2, "the recording of %s" % uuid)
    time.sleep(2.0)  # the decision is taken when the call ends; give it time to be wrong
    check(find() is None and not S["a"].ok("GET", DOM + "/recordings",
                                           query={"call_uuid": uuid})["items"],
          "call %s must not be recorded" % uuid)
    left = S["d"].sql("SELECT COUNT(*) FROM recordings WHERE call_uuid = '%s'" % uuid)[0][0]
    check(left == "0", "a row is left for %s" % uuid)


def channels(rec):
    r = S["a"].get(rec["audio_url"])
    check(r.status == 200 and r.header("content-type") == "audio/wav", "download: %r" % r)
    path = os.path.join(S["d"].dir, "rec.wav")
    with open(path, "wb") as f:
        f.write(r.body)
    rate, _, chans = audio.read_wav(path)
    check(len(chans) == 2, "the recording is stereo")
    return rate, chans


def test_user_policy(d):
    setup(d)
    call = talk("101", "op101")
    rec = recording_of(call["uuid"])
    check(rec["user_id"] == S["users"]["op101"] and rec["b_number"] == "101" and
          rec["a_number"] == "100", "linked to its call: %r" % rec)
    check(2500 <= rec["duration_ms"] <= 15000, "length %r" % rec["duration_ms"])
    created = datetime.datetime.fromtimestamp(rec["created_at"], datetime.timezone.utc)
    expires = datetime.datetime.fromtimestamp(rec["expires_at"], datetime.timezone.utc)
    check(150 <= (expires - created).days <= 190, "the default retention is 6 months: %r" % rec)
    rate, (left, right) = channels(rec)
    check(audio.tone_share(left, rate, CALLER_HZ) > 0.3, "the caller is on the left channel")
    check(audio.tone_share(right, rate, HZ["op101"]) > 0.3, "op101 is on the right channel")
    check(call["recording"], "the CDR points at the recording: %r" % call)
    S["rec101"] = rec
    # op102 has no recording: nothing
    recording_of(talk("102", "op102", 1.5)["uuid"], present=False)


def test_unanswered_call_leaves_nothing(d):
    a = S["a"]
    a.ok("PATCH", DOM + "/users/%d" % S["users"]["op103"], {"recording_enabled": True})
    main = a.ok("GET", DOM + "/forwarding-rules",
                query={"owner_id": S["users"]["op103"]})["items"][0]
    a.ok("PATCH", DOM + "/forwarding-rules/%d" % main["id"], {"ring_time": 5})
    c, op103 = S["phones"]["admin"], S["phones"]["op103"]
    known = calls_to("103")
    c.events.clear()
    c.dial("sip:103@%s" % DEMO_DOMAIN)
    check(op103.wait_event("CALL_INCOMING", 10) is not None, "op103 did not ring")
    check(c.wait_event("CALL_CLOSED", 20) is not None, "the unanswered call did not end")
    recording_of(new_call("103", known)["uuid"], present=False)
    def wavs():
        found = []
        for root, _, names in os.walk(os.path.join(d.dir, "var", "recordings")):
            found += [n for n in names if n.endswith(".wav")]
        return found
    wait_until(lambda: len(wavs()) == 1, 10, 0.2, "only op101's recording on disk")


def test_group_and_agent_policy(d):
    a = S["a"]
    agents = {op: S["users"][op] for op in ("op101", "op102")}

    def only(op):
        for name, uid in agents.items():
            a.ok("PUT", DOM + "/agents/%d/state" % uid,
                 {"state": "available" if name == op else "logged_out"})
    # the group does not record; op102 (not recorded) answers: nothing
    only("op102")
    recording_of(talk("200", "op102", 1.5)["uuid"], present=False)
    # the recorded agent op101 answers the same queue: recorded, with the group
    only("op101")
    rec = recording_of(talk("200", "op101", 1.5)["uuid"])
    check(rec["group_id"] == S["support"] and rec["user_id"] == S["users"]["op101"],
          "queue recording: %r" % rec)
    # the group records everything: op102's queue calls too
    a.ok("PATCH", DOM + "/call-groups/%d" % S["support"], {"recording_enabled": True})
    only("op102")
    rec = recording_of(talk("200", "op102", 1.5)["uuid"])
    check(rec["group_id"] == S["support"] and rec["user_id"] == S["users"]["op102"],
          "group policy: %r" % rec)
    a.ok("PATCH", DOM + "/call-groups/%d" % S["support"], {"recording_enabled": False})
    # and the whole domain
    a.ok("PATCH", "/api/v1/domains/%d" % S["domain"], {"record_all": True})
    recording_of(talk("102", "op102", 1.5)["uuid"])
    a.ok("PATCH", "/api/v1/domains/%d" % S["domain"], {"record_all": False})
    for uid in agents.values():
        a.ok("PUT", DOM + "/agents/%d/state" % uid, {"state": "logged_out"})


def test_who_may_download(d):
    rec = S["rec101"]
    item = DOM + "/recordings/%d" % rec["id"]
    sup = d.login("supervisor", DEMO["supervisor"], DEMO_DOMAIN)
    op101 = d.login("op101", DEMO["op101"], DEMO_DOMAIN)
    op102 = d.login("op102", DEMO["op102"], DEMO_DOMAIN)
    check(sup.get(item).status == 200 and sup.get(rec["audio_url"]).status == 200,
          "a supervisor hears every recording")
    check(op101.get(rec["audio_url"]).status == 200, "a participant hears their own call")
    mine = op102.ok("GET", DOM + "/recordings")["items"]
    check(rec["id"] not in [x["id"] for x in mine] and
          all(x["user_id"] == S["users"]["op102"] for x in mine), "op102 lists only own calls")
    check(op102.get(item).status == 404 and op102.get(rec["audio_url"]).status == 404,
          "op102 may not hear op101's call")
    check(op102.delete(item).status == 403, "operators cannot delete recordings")
    check(d.client().get(rec["audio_url"]).status == 401, "anonymous: 401")
    mp3 = sup.get(rec["audio_url"], query={"format": "mp3"})
    check(mp3.status == 200 and mp3.header("content-type") == "audio/mpeg" and
          (mp3.body[:3] == b"ID3" or (mp3.body[0] == 0xFF and mp3.body[1] & 0xE0 == 0xE0)),
          "MP3 download: %r" % mp3)
    check(len(mp3.body) > 4000, "the MP3 holds the call (%d bytes)" % len(mp3.body))
    check(sup.get(rec["audio_url"], query={"format": "ogg"}).status == 400, "unknown format")


def test_retention_expires_recordings(d):
    a = S["a"]
    rec = S["rec101"]
    a.ok("PATCH", "/api/v1/domains/%d" % S["domain"], {"recording_retention": 12})
    r = a.ok("GET", DOM + "/recordings/%d" % rec["id"])
    days = (r["expires_at"] - r["created_at"]) / 86400
    check(364 <= days <= 366, "12 months apply to kept recordings: %.1f days" % days)
    r = a.patch("/api/v1/domains/%d" % S["domain"], {"recording_retention": 3})
    check(r.status == 400 and r.error()["field"] == "recording_retention", "1, 6 or 12: %r" % r)
    a.ok("PATCH", "/api/v1/domains/%d" % S["domain"], {"recording_retention": 1})
    all_recs = a.ok("GET", DOM + "/recordings")["items"]
    paths = [p[0] for p in d.sql("SELECT path FROM recordings")]
    check(paths and all(os.path.exists(p) for p in paths), "files exist before expiry")
    # 20 days on: still kept; 32 days on: gone (the sweep runs every second here)
    set_clock(d, datetime.datetime.utcnow() + datetime.timedelta(days=20), "UTC")
    time.sleep(2.5)
    check(a.ok("GET", DOM + "/recordings")["total"] == len(all_recs), "kept within a month")
    set_clock(d, datetime.datetime.utcnow() + datetime.timedelta(days=32), "UTC")
    wait_until(lambda: a.ok("GET", DOM + "/recordings")["total"] == 0, 10, 0.3,
               "expired recordings to go")
    check(a.get(rec["audio_url"]).status == 404, "an expired recording cannot be downloaded")
    wait_until(lambda: not any(os.path.exists(p) for p in paths), 10, 0.2, "the files to go")
    links = d.sql("SELECT COUNT(*) FROM cdrs WHERE recording IS NOT NULL")[0][0]
    check(links == "0", "no CDR points at a deleted recording")


def test_cleanup(d):
    for p in S.get("phones", {}).values():
        p.cleanup()


if __name__ == "__main__":
    routelib.run([test_user_policy, test_unanswered_call_leaves_nothing,
                  test_group_and_agent_policy, test_who_may_download,
                  test_retention_expires_recordings, test_cleanup],
                 demo=True, sets={"recording.sweep_interval": "1"})
