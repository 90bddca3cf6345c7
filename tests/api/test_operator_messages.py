#!/usr/bin/python3
# cw-test: both-stores
"""Operator messages (seed 001 §8.2): a supervisor writes to call-processing
groups; each operator of those groups gets it live on their event stream
(agent.message), lists it, and confirms reading with their password; the
sender's report says who has read it and who has not. A group without
operators is refused, messages cannot be edited, and nobody else sees them."""

from cwtest import DEMO, DEMO_DOMAIN, EventStream, TestFailure, run_tests

DOM = "/api/v1/domains/" + DEMO_DOMAIN
PW = "Operator-pw-1"
S = {}


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def test_send_to_groups(d):
    a = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    users = {u["login"]: u["id"] for u in a.ok("GET", DOM + "/users")["items"]}
    # a second group: op103 and a new operator; a third group with no operator at all
    a.ok("POST", DOM + "/users", {"login": "op104", "display_name": "Operator 104",
                                  "password": PW, "is_operator": True}, status=201)
    a.ok("POST", DOM + "/users", {"login": "clerk", "display_name": "Clerk", "password": PW},
         status=201)
    users = {u["login"]: u["id"] for u in a.ok("GET", DOM + "/users")["items"]}
    support = [g for g in a.ok("GET", DOM + "/call-groups")["items"]
               if g["name"] == "Support"][0]["id"]
    night = a.ok("POST", DOM + "/call-groups",
                 {"name": "Night", "members": [{"user_id": users["op103"]},
                                               {"user_id": users["op104"]}]}, status=201)["id"]
    empty = a.ok("POST", DOM + "/call-groups",
                 {"name": "Clerks", "members": [{"user_id": users["clerk"]}]}, status=201)["id"]
    S.update(users=users, support=support, night=night)
    sup = d.login("supervisor", DEMO["supervisor"], DEMO_DOMAIN)
    ops = {op: d.login(op, DEMO[op], DEMO_DOMAIN) for op in ("op101", "op102", "op103")}
    ops["op104"] = d.login("op104", PW, DEMO_DOMAIN)
    S.update(sup=sup, ops=ops)
    streams = {op: EventStream(d.http_port, cookies=c.cookies, types=["agent."])
               for op, c in ops.items()}
    sup_stream = EventStream(d.http_port, cookies=sup.cookies, types=["agent.message"])
    before = d.sql("SELECT COUNT(*) FROM operator_messages")
    r = sup.post(DOM + "/operator-messages", {"title": "Hi", "text": "x",
                                             "group_ids": [support, empty]})
    check(r.status == 400 and r.error()["field"] == "group_ids" and
          "group_ids[1]" in r.error()["message"] and "Clerks" in r.error()["message"],
          "a group without operators is refused, named: %r" % r)
    r = sup.post(DOM + "/operator-messages", {"title": "Hi", "text": "x", "group_ids": [9999]})
    check(r.status == 400 and r.error()["field"] == "group_ids", "unknown group: %r" % r)
    r = sup.post(DOM + "/operator-messages", {"title": "", "text": "x", "group_ids": [support]})
    check(r.status == 400 and r.error()["field"] == "title", "empty title: %r" % r)
    check(d.sql("SELECT COUNT(*) FROM operator_messages") == before, "nothing was stored")
    r = ops["op101"].post(DOM + "/operator-messages",
                          {"title": "Hi", "text": "x", "group_ids": [support]})
    check(r.status == 403, "operators do not send: %r" % r)
    msg = sup.ok("POST", DOM + "/operator-messages",
                 {"title": "New tariff", "text": "From Monday the tariff changes.",
                  "group_ids": [support, night]}, status=201)
    check(msg["recipients"] == 4 and msg["read_count"] == 0 and
          sorted(msg["group_ids"]) == sorted([support, night]), "sent: %r" % msg)
    check(sorted(x["user_id"] for x in msg["unread"]) ==
          sorted(users[o] for o in ("op101", "op102", "op103", "op104")),
          "op103 is in both groups and counted once: %r" % msg["unread"])
    S["msg"] = msg
    # live on each recipient's stream, with the text
    for op, st in streams.items():
        ev = st.wait_for(lambda e: e["event"] == "agent.message", timeout=5)
        check(ev["data"]["data"]["message_id"] == msg["id"] and
              ev["data"]["data"]["text"].startswith("From"),
              "%s got %r" % (op, ev))
        st.close()
    S["sup_stream"] = sup_stream


def test_operators_read_and_confirm(d):
    msg, ops, sup = S["msg"], S["ops"], S["sup"]
    item = DOM + "/operator-messages/%d" % msg["id"]
    mine = ops["op101"].ok("GET", DOM + "/operator-messages")["items"]
    check([m["id"] for m in mine] == [msg["id"]] and mine[0]["read_by_me"] is False and
          "unread" not in mine[0], "op101's inbox: %r" % mine)
    r = ops["op101"].post(item + "/read", {"password": "wrong"})
    check(r.status == 403 and r.error()["field"] == "password", "wrong password: %r" % r)
    check(sup.ok("GET", item)["read_count"] == 0, "not confirmed by a wrong password")
    got = ops["op101"].ok("POST", item + "/read", {"password": DEMO["op101"]})
    check(got["read_by_me"] is True and got["read_at"], "confirmed: %r" % got)
    again = ops["op101"].ok("POST", item + "/read", {"password": DEMO["op101"]})
    check(again["read_at"] == got["read_at"], "a second confirmation keeps the first time")
    ops["op104"].ok("POST", item + "/read", {"password": PW})
    ev = S["sup_stream"].wait_for(lambda e: e["event"] == "agent.message_read", timeout=5)
    check(ev["data"]["data"]["message_id"] == msg["id"], "the supervisor sees reads live: %r" % ev)
    S["sup_stream"].close()
    report = sup.ok("GET", item)
    check(report["read_count"] == 2 and report["recipients"] == 4, "counts: %r" % report)
    check(sorted(x["user_id"] for x in report["read"]) ==
          sorted([S["users"]["op101"], S["users"]["op104"]]) and
          sorted(x["user_id"] for x in report["unread"]) ==
          sorted([S["users"]["op102"], S["users"]["op103"]]), "report: %r" % report)
    check(all(x.get("read_at") for x in report["read"]), "read times shown")


def test_nobody_else_sees_or_changes_them(d):
    msg, sup = S["msg"], S["sup"]
    item = DOM + "/operator-messages/%d" % msg["id"]
    clerk = d.login("clerk", PW, DEMO_DOMAIN)
    check(clerk.ok("GET", DOM + "/operator-messages")["total"] == 0, "a non-recipient sees none")
    check(clerk.get(item).status == 404, "nor one by its id")
    a = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    r = a.post(item + "/read", {"password": DEMO["admin"]})
    check(r.status in (403, 404), "an administrator cannot confirm for the operators: %r" % r)
    r = sup.patch(item, {"text": "changed"})
    check(r.status == 400 and r.error()["field"] == "text", "messages are not edited: %r" % r)
    r = S["ops"]["op102"].delete(item)
    check(r.status == 403, "operators do not delete: %r" % r)
    sup.ok("DELETE", item)
    check(S["ops"]["op102"].ok("GET", DOM + "/operator-messages")["total"] == 0, "deleted")
    check(d.sql("SELECT COUNT(*) FROM operator_message_recipients") == [["0"]],
          "the receipts went with it")


if __name__ == "__main__":
    run_tests([test_send_to_groups, test_operators_read_and_confirm,
               test_nobody_else_sees_or_changes_them], demo=True)
