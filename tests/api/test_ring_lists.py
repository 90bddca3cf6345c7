#!/usr/bin/python3
# cw-test: both-stores
"""Ring lists (seed 002) through API v1: every setting round-trips, members
keep their order, line counts and schedules; the list's extension shares the
domain's dial plan; one default list a domain; a sound file deleted leaves
the list without its melody. Bad input (members that are not users or phone
numbers, another dial-plan entry, bad lines or schedules, too many members,
an unknown method or sound) is refused with the field named and changes
nothing."""

import io
import wave

from cwtest import DEMO, DEMO_DOMAIN, run_tests

DOM = "/api/v1/domains/" + DEMO_DOMAIN
WEEKDAYS = {"periods": [{"days": [1, 2, 3, 4, 5], "from": "09:00", "to": "18:00"}]}


def wav_bytes(seconds=1.0, rate=8000):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x10" * int(rate * seconds))
    return buf.getvalue()


def rows(d):
    return (d.sql("SELECT * FROM ring_lists ORDER BY id"),
            d.sql("SELECT * FROM ring_list_members ORDER BY list_id, position"))


def test_a_ring_list_round_trips(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    snd = c.ok("POST", DOM + "/sounds", wav_bytes(), query={"name": "ringing melody"},
               headers={"Content-Type": "audio/wav"}, status=201)
    body = {"name": "Office", "extension": "6", "method": "simultaneous", "answer_timeout": 25,
            "retries": 2, "retry_pause": 15, "ring_sound_id": snd["id"],
            "pause_sound_id": snd["id"], "announce_caller": True, "record": True,
            "is_default": True, "language": "ru",
            "members": [{"number": "101", "lines": 1, "schedule": None},
                        {"number": "op102", "lines": 1, "schedule": WEEKDAYS},
                        {"number": "+79001234567", "lines": 3, "schedule": None}]}
    rl = c.ok("POST", DOM + "/ring-lists", body, status=201)
    for k, v in body.items():
        assert rl[k] == v, (k, rl)
    assert c.ok("GET", DOM + "/ring-lists/%d" % rl["id"]) == rl
    # defaults of a bare list; its extension is the lowest free one
    bare = c.ok("POST", DOM + "/ring-lists", {"name": "Bare"}, status=201)
    assert bare["method"] == "sequential" and bare["answer_timeout"] == 20, bare
    assert bare["retries"] == 0 and bare["members"] == [] and not bare["is_default"], bare
    assert bare["extension"].isdigit() and bare["extension"] != "6", bare
    # members are replaced as a whole, in the order given
    upd = c.ok("PATCH", DOM + "/ring-lists/%d" % rl["id"],
               {"members": [{"number": "103"}, {"number": "101", "lines": 2}]})
    assert [(m["number"], m["lines"]) for m in upd["members"]] == [("103", 1), ("101", 2)], upd
    # one default a domain: the newest wins
    c.ok("PATCH", DOM + "/ring-lists/%d" % bare["id"], {"is_default": True})
    defaults = c.ok("GET", DOM + "/ring-lists", query={"is_default": "true"})["items"]
    assert [x["id"] for x in defaults] == [bare["id"]], defaults
    # a sound file deleted: the list keeps going without it
    c.ok("DELETE", DOM + "/sounds/%d" % snd["id"])
    after = c.ok("GET", DOM + "/ring-lists/%d" % rl["id"])
    assert after["ring_sound_id"] is None and after["pause_sound_id"] is None, after
    # the list's extension belongs to the dial plan: a user cannot take it
    uid = c.ok("GET", DOM + "/users", query={"q": "op103"})["items"][0]["id"]
    r = c.patch(DOM + "/users/%d" % uid, {"extension": "6"})
    assert r.status == 409 and r.error()["field"] == "extension", r
    c.ok("DELETE", DOM + "/ring-lists/%d" % bare["id"])
    assert d.sql("SELECT COUNT(*) FROM ring_list_members WHERE list_id = %d" % bare["id"]) == \
        [["0"]]


def test_bad_ring_lists_are_refused_and_change_nothing(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    existing = c.ok("GET", DOM + "/ring-lists")["items"][0]
    before = rows(d)
    many = [{"number": "7900100%04d" % i} for i in range(17)]
    cases = [
        ({"name": "Q", "extension": "200"}, 409, "extension"),  # the Support queue's
        ({"name": "Q", "method": "round_robin"}, 400, "method"),
        ({"name": "Q", "answer_timeout": 2}, 400, "answer_timeout"),
        ({"name": "Q", "retries": 11}, 400, "retries"),
        ({"name": "Q", "ring_sound_id": 999999}, 400, "ring_sound_id"),
        ({"name": "Q", "members": {"number": "101"}}, 400, "members"),
        ({"name": "Q", "members": [{"number": "500"}]}, 400, "members"),  # the IVR's
        ({"name": "Q", "members": [{"number": "12ab"}]}, 400, "members"),
        ({"name": "Q", "members": [{"number": "101", "lines": 0}]}, 400, "members"),
        ({"name": "Q", "members": [{"number": "101", "ring": 5}]}, 400, "members"),
        ({"name": "Q", "members": [{"number": 101}]}, 400, "members"),
        ({"name": "Q", "members": many}, 400, "members"),
        ({"name": "Q", "members": [{"number": "101", "schedule": {"periods": [
            {"days": [8], "from": "09:00", "to": "18:00"}]}}]}, 400, "members[0].schedule"),
    ]
    for body, status, field in cases:
        r = c.post(DOM + "/ring-lists", body)
        assert r.status == status and r.error().get("field") == field, (body, r)
        r = c.patch(DOM + "/ring-lists/%d" % existing["id"], body)
        assert r.status == status and r.error().get("field") == field, (body, r)
    r = c.post(DOM + "/ring-lists", {"name": existing["name"]})
    assert r.status == 409 and r.error().get("field") == "name", r
    assert rows(d) == before
    # a supervisor may look, not change
    s = d.login("supervisor", DEMO["supervisor"], DEMO_DOMAIN)
    assert s.ok("GET", DOM + "/ring-lists")["total"] >= 1
    r = s.post(DOM + "/ring-lists", {"name": "Mine"})
    assert r.status == 403, r
    assert rows(d) == before


if __name__ == "__main__":
    run_tests([test_a_ring_list_round_trips, test_bad_ring_lists_are_refused_and_change_nothing],
              demo=True)
