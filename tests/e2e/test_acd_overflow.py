"""Where a group's caller goes when no agent takes the call, with real phones.

A plain group whose strategy is "not set" and whose voicemail is on takes
the caller straight to the group's voicemail: the caller's 440 Hz message is
stored for the group (row, recording, and the list the API shows). A queue
with nobody logged in, join-empty on and a 3 s maximum wait sends its caller
to the overflow target, extension 103, when the wait expires: 103's phone
rings then (not before), and once answered caller and 103 hear each other.
"""
import time

import audio
from cwtest import DEMO, TestFailure, run_tests, wait_until
from sipua import demo_phone

DOM = "/api/v1/domains/demo.local"


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def test_not_set_group_takes_a_message(d):
    admin = d.login("admin", DEMO["admin"], "demo.local")
    sales = admin.ok("POST", DOM + "/call-groups",
                     {"name": "Sales", "extension": "210", "strategy": "not_set",
                      "voicemail_enabled": True}, status=201)
    caller = demo_phone(d, "vm-caller", "admin", 440, seconds=60)
    try:
        caller.dial("sip:210@demo.local")
        check(caller.wait_event("CALL_ESTABLISHED", 10), "the group did not answer")
        time.sleep(10)  # "leave a message", the beep, then several seconds of tone
        caller.hangup()
    finally:
        caller.stop()
    rows = wait_until(lambda: d.sql("SELECT id, group_id, owner_id, caller, duration_ms, path "
                                    "FROM voicemail_messages"), 10, 0.2, "the message row")
    check(len(rows) == 1, "messages: %r" % rows)
    mid, group, owner, who, ms, path = rows[0]
    check(int(group) == sales["id"] and owner in (None, "", "NULL") and who == "100",
          "the message is not the group's: %r" % (rows[0],))
    check(int(ms) >= 3000, "message of %s ms" % ms)
    rate, rec, _ = audio.read_wav(path)
    share = audio.tone_share(audio.segment(rec, rate, 0.3, len(rec) / rate - 0.3), rate, 440)
    check(share > 0.6, "the recording does not hold the caller (440 Hz share %.2f)" % share)
    listed = admin.ok("GET", DOM + "/voicemail")["items"]
    check([m["id"] for m in listed if m["id"] == int(mid)], "the API does not list it: %r" %
          listed)
    # nobody was queued: a plain group has no ACD entry
    check(d.sql("SELECT event FROM queue_log WHERE queue_id = ?", (sales["id"],)) in ([], ()),
          "the not-set group queued the caller")


def test_max_wait_overflows_to_an_extension(d):
    admin = d.login("admin", DEMO["admin"], "demo.local")
    users = {u["login"]: u["id"] for u in
             admin.get(DOM + "/users", query={"limit": 100}).json["items"]}
    q = admin.ok("POST", DOM + "/call-groups",
                 {"name": "Night", "extension": "220", "strategy": "ring_all", "max_wait": 3,
                  "join_empty": True, "overflow_target": "103",
                  "members": [{"user_id": users["op101"]}]}, status=201)
    callee = demo_phone(d, "op103", "op103", 1700, seconds=60)
    caller = demo_phone(d, "night-caller", "admin", 440, seconds=60)
    try:
        caller.dial("sip:220@demo.local")
        check(caller.wait_event("CALL_ESTABLISHED", 10), "the queue did not answer")
        t_join = time.time()
        check(callee.wait_event("CALL_INCOMING", 10), "the overflow target did not ring")
        waited = time.time() - t_join
        check(2.5 <= waited <= 6.0, "103 rang %.1f s after the caller queued (max wait 3 s)" %
              waited)
        callee.accept()
        check(callee.wait_event("CALL_ESTABLISHED", 5), "103 could not answer")
        time.sleep(3.0)
        caller.hangup()
        check(callee.wait_event("CALL_CLOSED", 5), "103 stayed in the call")
    finally:
        caller.stop()
        callee.stop()
    check(callee.hears(440, 0.5, -0.3, index=0), "103 does not hear the caller")
    rate, s = caller.heard(-2.5, -0.3, index=0)
    check(audio.tone_share(s, rate, 1700) > 0.5, "the caller does not hear 103")
    log = [r[0] for r in d.sql("SELECT event FROM queue_log WHERE queue_id = ? ORDER BY id",
                               (q["id"],))]
    check(log == ["join", "timeout"], "queue log: %r" % log)


if __name__ == "__main__":
    run_tests([test_not_set_group_takes_a_message, test_max_wait_overflows_to_an_extension],
              demo=True)
