#!/usr/bin/python3
# cw-test: both-stores
"""Faxes sent through the API: the platform dials, runs T.30, retries, and says how it went.

op101 uploads a 2-page TIFF to send to extension 103, where a fax machine
(faxpeer, registered as op103) answers: the fax is converted, dialled,
delivered, the pages arrive intact, and its protocol tells the steps of
seed 001 §7.5.4. A picture (8-bit grey, 100 dpi) sent to a machine that
answers every call busy is converted to one fax page, tried 1 + 3 times
(fax.retries) a second apart (fax.retry_interval) and ends not delivered,
the machine having seen 4 calls. A fax scheduled for later (send_at) waits,
survives a restart of the daemon and is then tried; one deleted while it
waits is never dialled. Bad uploads change nothing.
"""
import os
import time

import faxtools
from cwtest import free_port, free_udp_range, TestFailure, run_tests, wait_until


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def restart_on_fresh_ports(d):
    """Start the stopped daemon again; its SIP and RTP ports may have gone to a parallel test."""
    d.sip_port = free_port(udp_too=True)
    d.rtp_min = free_udp_range(64)
    d.sets.update({"sip.port": str(d.sip_port), "media.rtp_min": str(d.rtp_min),
                   "media.rtp_max": str(d.rtp_min + 63)})
    d.start()


def fax_row(api, fid, statuses, timeout):
    def settled():
        r = api.get("/api/v1/me/faxes/%d" % fid)
        return r.json if r.status == 200 and r.json["status"] in statuses else None
    return wait_until(settled, timeout, 0.2, "fax %d in %s" % (fid, statuses))


def test_api_fax_is_dialled_and_delivered(d):
    pages = [faxtools.test_page(2), faxtools.test_page(3)]
    doc = faxtools.write_tiff(os.path.join(d.dir, "doc.tiff"), pages)
    op = d.login("op101", "Demo-op101-1", "demo.local")
    got = os.path.join(d.dir, "at-103.tiff")
    rx = faxtools.FaxPeer(d.sip_port, "op103", "Demo-op103-1", timeout=45)
    try:
        rx.receive(got)
        rx.wait_for("registered", 10)
        with open(doc, "rb") as f:
            r = op.post("/api/v1/me/faxes", f.read(), query={"number": "103"},
                        headers={"Content-Type": "image/tiff"})
        check(r.status == 202 and r.json["doc_pages"] == 2 and r.json["max_attempts"] == 4,
              "send: %r" % r)
        fid = r.json["id"]
        row = fax_row(op, fid, ("delivered", "not_delivered"), 45)
        check(rx.wait_exit(10) == 0, "the receiving machine failed: %r" % rx.events)
    finally:
        rx.stop()
    check(row["status"] == "delivered" and row["pages"] == 2 and row["attempts"] == 1,
          "fax %r" % row)
    check(row["remote_ident"] == "faxpeer" and row["bit_rate"] >= 9600, "T.30 figures %r" % row)
    texts = [e["text"] for e in row["protocol"]]
    for want in ("document uploaded", "taken for conversion", "conversion succeeded: 2 pages",
                 "send command: attempt 1 of 4, calling 103", "103 answered; sending",
                 "page 2 sent", "delivered: 2 pages"):
        check(any(t.startswith(want) for t in texts), "protocol lacks %r: %r" % (want, texts))
    received = faxtools.read_tiff(got)
    check(len(received) == 2, "%d pages arrived" % len(received))
    for i, p in enumerate(received):
        faxtools.same_page(pages[i], p)
    check(rx.seen("fax")[0]["remote_ident"] == "Callwright", "the machine saw %r" % rx.events)
    # the fax's call is a CDR of an outgoing call to 103
    uuid = row["call_uuid"]
    cdr = wait_until(lambda: d.sql("SELECT direction, dialed FROM cdrs WHERE uuid = '%s'" % uuid),
                     10, 0.1, "the fax call's CDR")
    check(cdr[0] == ["outgoing", "103"], "CDR %r" % cdr)


def test_api_fax_retries_then_not_delivered(d):
    op = d.login("op101", "Demo-op101-1", "demo.local")
    picture = faxtools.write_grey_tiff(os.path.join(d.dir, "picture.tiff"), 400, 300,
                                       (100, 100, 300, 200))
    busy = faxtools.FaxPeer(d.sip_port, "op102", "Demo-op102-1", timeout=30)
    try:
        busy.reject(486, calls=4)
        busy.wait_for("registered", 10)
        t0 = time.monotonic()
        with open(picture, "rb") as f:
            r = op.post("/api/v1/me/faxes", f.read(), query={"number": "102"})
        check(r.status == 202 and r.json["doc_pages"] == 1, "send: %r" % r)
        fid = r.json["id"]
        row = fax_row(op, fid, ("delivered", "not_delivered"), 25)
        elapsed = time.monotonic() - t0
    finally:
        busy.stop()
    check(row["status"] == "not_delivered" and row["attempts"] == 4, "fax %r" % row)
    check(len(busy.seen("rejected")) == 4, "the machine saw %d calls" % len(busy.seen("rejected")))
    check(elapsed >= 3.0, "4 attempts 1 s apart took %.1f s" % elapsed)
    texts = [e["text"] for e in row["protocol"]]
    check(sum(t.startswith("send command: attempt") for t in texts) == 4 and
          texts[-1] == "attempt 4 failed: busy; not delivered", "protocol %r" % texts)
    # the picture became one fax page: 1728 wide, the black box scaled with it
    png = op.get("/api/v1/me/faxes/%d/pages/1" % fid)
    check(png.status == 200, "page image %r" % png)
    width, rows = faxtools.png_decode(png.body)
    check(width == 1728, "converted width %d" % width)
    black_rows = [i for i, row_bits in enumerate(rows) if any(row_bits)]
    # 100..200 of 300 rows at 100 dpi -> 196..392 at 196 dpi (fit to 1728 px: x4.32 across)
    check(black_rows and abs(len(black_rows) - 100 * 4.32 * 196 / 204) < 12,
          "converted picture: %d black rows" % len(black_rows))


def test_bad_uploads_change_nothing(d):
    op = d.login("op101", "Demo-op101-1", "demo.local")
    before = d.sql("SELECT COUNT(*) FROM faxes")
    r = op.post("/api/v1/me/faxes", b"GIF89a this is not a tiff", query={"number": "103"})
    check(r.status == 415 and "TIFF" in r.error()["message"], "not a TIFF: %r" % r)
    r = op.post("/api/v1/me/faxes", b"II*\x00\x08\x00\x00\x00garbage-ifd", query={"number": "103"})
    check(r.status == 415, "a broken TIFF: %r" % r)
    r = op.post("/api/v1/me/faxes", b"II*\x00", query={"number": "1x3"})
    check(r.status == 400 and r.error()["field"] == "number", "bad number: %r" % r)
    r = op.post("/api/v1/me/faxes", b"", query={"number": "103"})
    check(r.status == 400, "empty body: %r" % r)
    r = op.post("/api/v1/me/faxes", b"II*\x00", query={"number": "103", "send_at": "soon"})
    check(r.status == 400 and r.error()["field"] == "send_at", "bad send_at: %r" % r)
    r = op.post("/api/v1/me/faxes", b"II*\x00", query={"number": "103", "colour": "red"})
    check(r.status == 400, "unknown parameter: %r" % r)
    check(d.sql("SELECT COUNT(*) FROM faxes") == before, "a refused upload left a fax")
    leftovers = [f for f in os.listdir(os.path.join(d.dir, "var", "faxes", "1"))
                 if f.startswith(("upload-", "ready-"))]
    check(not leftovers, "temporary files left: %r" % leftovers)


def test_scheduled_fax_survives_a_restart(d):
    op = d.login("op101", "Demo-op101-1", "demo.local")
    doc = faxtools.write_tiff(os.path.join(d.dir, "one.tiff"), [faxtools.test_page(4, 120)])
    with open(doc, "rb") as f:
        body = f.read()
    at = int(time.time()) + 5
    r = op.post("/api/v1/me/faxes", body, query={"number": "103", "send_at": str(at)})
    check(r.status == 202 and r.json["send_at"] == at, "scheduled send: %r" % r)
    fid = r.json["id"]
    r = op.post("/api/v1/me/faxes", body, query={"number": "103",
                                                  "send_at": str(at + 3600)})
    check(r.status == 202, "second scheduled send: %r" % r)
    cancelled = r.json["id"]
    check(op.delete("/api/v1/me/faxes/%d" % cancelled).status == 200, "delete a waiting fax")
    row = op.get("/api/v1/me/faxes/%d" % fid).json
    check(row["status"] == "converted" and row["attempts"] == 0, "waiting fax %r" % row)
    # a fax machine is sending to op102's box when the daemon stops
    doc2 = faxtools.write_tiff(os.path.join(d.dir, "two.tiff"),
                               [faxtools.test_page(5), faxtools.test_page(6)])
    sender = faxtools.FaxPeer(d.sip_port, "op101", "Demo-op101-1", timeout=40)
    try:
        sender.send(doc2, "sip:*96102@demo.local")
        sender.wait_for("answered", 10)
        time.sleep(2.0)
        d.stop()  # exit status 0: a clean stop with a fax running
    finally:
        sender.stop()
    restart_on_fresh_ports(d)
    busy = faxtools.FaxPeer(d.sip_port, "op103", "Demo-op103-1", timeout=40)
    try:
        busy.reject(486, calls=4)
        busy.wait_for("registered", 10)
        op = d.login("op101", "Demo-op101-1", "demo.local")
        row = fax_row(op, fid, ("delivered", "not_delivered"), 25)
        time.sleep(1.5)  # nothing else is dialled
    finally:
        busy.stop()
    check(row["attempts"] == 4 and row["status"] == "not_delivered", "fax %r" % row)
    check(len(busy.seen("rejected")) == 4, "calls seen: %r" % busy.events)
    first_call = [e["t"] for e in row["protocol"] if e["text"].startswith("send command")][0]
    check(first_call >= at * 1000 - 500, "dialled %d ms before send_at" % (at * 1000 - first_call))
    cut = d.sql("SELECT status, error FROM faxes WHERE direction = 'in'")
    check(cut == [["failed", "cut short by a restart"]], "the interrupted fax: %r" % cut)


if __name__ == "__main__":
    run_tests([test_api_fax_is_dialled_and_delivered, test_api_fax_retries_then_not_delivered,
               test_scheduled_fax_survives_a_restart, test_bad_uploads_change_nothing],
              demo=True, sets={"fax.retry_interval": "1", "fax.retries": "3"})
