"""Two fax machines fax each other through the platform.

faxpeer A (registered as op101) dials extension 102; faxpeer B (registered
as op102) answers. The platform anchors the media of both legs (B2BUA) and
relays the modem audio through its jitter buffers; A's phone offers PCMA
and the platform's leg to B offers PCMU first, so the relay also transcodes.
Both ends run T.30 with spandsp: the 2-page TIFF arrives and every row of
both pages is the row that was sent; both sides report 2 pages, OK.
"""
import os

import faxtools
from cwtest import TestFailure, run_tests, wait_until


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def test_fax_between_two_machines_through_the_platform(d):
    pages = [faxtools.test_page(0), faxtools.test_page(1)]
    doc = faxtools.write_tiff(os.path.join(d.dir, "doc.tiff"), pages)
    got = os.path.join(d.dir, "received.tiff")
    rx = faxtools.FaxPeer(d.sip_port, "op102", "Demo-op102-1", timeout=45)
    tx = faxtools.FaxPeer(d.sip_port, "op101", "Demo-op101-1", timeout=45)
    try:
        rx.receive(got)
        rx.wait_for("registered", 10)
        tx.send(doc, "sip:102@demo.local")
        check(tx.wait_exit(50) == 0, "the sender's fax failed: %r" % tx.events)
        check(rx.wait_exit(10) == 0, "the receiver's fax failed: %r" % rx.events)
    finally:
        tx.stop()
        rx.stop()
    codecs = (tx.seen("answered")[0]["codec"], rx.seen("answered")[0]["codec"])
    check(codecs == ("PCMA", "PCMU"), "legs' codecs %r: the relay should transcode" % (codecs,))
    sent, received = tx.seen("fax")[0], rx.seen("fax")[0]
    check(sent["pages"] == 2 and received["pages"] == 2, "pages: %r / %r" % (sent, received))
    check(received["remote_ident"] == "faxpeer" and sent["remote_ident"] == "faxpeer",
          "the machines did not see each other: %r / %r" % (sent, received))
    got_pages = faxtools.read_tiff(got)
    check(len(got_pages) == 2, "%d pages received" % len(got_pages))
    for i, p in enumerate(got_pages):
        faxtools.same_page(pages[i], p)
    # it was a call through the platform: bridged, with both legs in the CDR
    cdr = wait_until(lambda: d.sql("SELECT a_number, b_number, talk_s FROM cdrs"), 10, 0.1,
                     "the CDR")
    check(cdr[0][0] == "101" and cdr[0][1] == "102" and int(cdr[0][2]) >= 5, "CDR %r" % cdr)


if __name__ == "__main__":
    run_tests([test_fax_between_two_machines_through_the_platform], demo=True)
