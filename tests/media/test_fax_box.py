"""A fax machine sends 2 pages to a user's fax box; the box keeps, mails and shows them.

faxpeer (a SIP fax machine registered as op101) dials *96102, the fax box
of operator 102. The platform answers and runs T.30 (spandsp) over G.711;
afterwards the fax is a row of op102's box with 2 pages and a protocol, the
document arrives by mail at a local SMTP server, and through the API it is
listed (for the domain and for op102 alone), downloadable as TIFF, and each
page renders as PNG and GIF whose pixels are the pages that were sent.
"""
import os

import faxtools
from cwtest import SmtpSink, TestFailure, run_tests, wait_until

SMTP = SmtpSink()


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def test_fax_box_receives_mails_and_shows(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    items = admin.get("/api/v1/domains/demo.local/users", query={"q": "op102"}).json["items"]
    owner = [u["id"] for u in items if u["login"] == "op102"][0]
    r = admin.patch("/api/v1/domains/demo.local/users/%d" % owner, {"email": "op102@example.com"})
    check(r.status == 200, "owner e-mail: %r" % r)

    pages = [faxtools.test_page(0), faxtools.test_page(1)]
    doc = faxtools.write_tiff(os.path.join(d.dir, "doc.tiff"), pages)
    peer = faxtools.FaxPeer(d.sip_port, "op101", "Demo-op101-1", timeout=45)
    try:
        peer.send(doc, "sip:*96102@demo.local")
        check(peer.wait_exit(50) == 0, "the sender's fax failed: %r" % peer.events)
    finally:
        peer.stop()
    done = peer.seen("fax")[0]
    check(done["pages"] == 2 and done["remote_ident"] == "Callwright",
          "the sender saw %r" % done)

    # the fax box row
    rows = wait_until(lambda: d.sql("SELECT id, owner_id, direction, counterpart, status, pages, "
                                    "remote_ident, path FROM faxes WHERE status <> 'receiving'"),
                      10, 0.1, "the fax settled")
    fid, oid, direction, who, status, npages, ident, path = rows[0]
    check((int(oid), direction, who, status, int(npages), ident) ==
          (owner, "in", "101", "received", 2, "faxpeer"), "fax row %r" % rows[0])
    stored = faxtools.read_tiff(path)
    for i, p in enumerate(stored):
        faxtools.same_page(pages[i], p)

    # the mail, with the document attached whole
    mail = SMTP.wait(1, 20)[0]
    check("op102@example.com" in " ".join(mail["to"]), "mail to %r" % mail["to"])
    check("101" in mail["msg"]["Subject"] and "2 pages" in mail["msg"]["Subject"],
          "subject %r" % mail["msg"]["Subject"])
    tiffs = [p for p in mail["msg"].iter_attachments() if p.get_content_type() == "image/tiff"]
    with open(path, "rb") as f:
        check(len(tiffs) == 1 and tiffs[0].get_content() == f.read(),
              "the document is not attached whole")

    # the API: the domain's list and the owner's own list
    lst = admin.get("/api/v1/domains/demo.local/faxes", query={"direction": "in"}).json
    check(lst["total"] == 1 and lst["items"][0]["pages"] == 2, "domain list %r" % lst)
    item = lst["items"][0]
    texts = [e["text"] for e in item["protocol"]]
    check(any(t.startswith("received: 2 pages") for t in texts) and
          "mailed to the box owner" in texts, "protocol %r" % texts)
    check(any(e["text"].startswith("page 2 received") for e in item["protocol"]),
          "pages in the protocol %r" % item["protocol"])
    owner_api = d.login("op102", "Demo-op102-1", "demo.local")
    mine = owner_api.get("/api/v1/me/faxes").json
    check([x["id"] for x in mine["items"]] == [int(fid)], "op102's faxes %r" % mine)
    other = d.login("op103", "Demo-op103-1", "demo.local")
    check(other.get("/api/v1/me/faxes").json["total"] == 0, "op103 sees op102's fax")
    check(other.get("/api/v1/me/faxes/%s/file" % fid).status == 404, "op103 downloads it")
    check(other.get("/api/v1/domains/demo.local/faxes").status == 403, "an operator lists all")

    tiff = owner_api.get("/api/v1/me/faxes/%s/file" % fid)
    with open(path, "rb") as f:
        check(tiff.status == 200 and tiff.header("content-type") == "image/tiff" and
              tiff.body == f.read(), "TIFF download %r" % tiff)
    for n in (1, 2):
        png = admin.get("/api/v1/domains/demo.local/faxes/%s/pages/%d" % (fid, n))
        check(png.status == 200 and png.header("content-type") == "image/png", "PNG %r" % png)
        width, rows_png = faxtools.png_decode(png.body)
        check(width == 1728, "PNG width %d" % width)
        faxtools.same_page(pages[n - 1], {"rows": rows_png, "yres": 196})
        gif = owner_api.get("/api/v1/me/faxes/%s/pages/%d" % (fid, n), query={"format": "gif"})
        check(gif.status == 200 and gif.header("content-type") == "image/gif", "GIF %r" % gif)
        width, rows_gif = faxtools.gif_decode(gif.body)
        check(width == 1728 and rows_gif == rows_png, "the GIF differs from the PNG")
    check(owner_api.get("/api/v1/me/faxes/%s/pages/3" % fid).status == 404, "page 3 exists")
    r = owner_api.get("/api/v1/me/faxes/%s/pages/1" % fid, query={"format": "bmp"})
    check(r.status == 400 and r.error()["field"] == "format", "format bmp: %r" % r)

    # deleting removes the row and the document
    check(owner_api.delete("/api/v1/me/faxes/%s" % fid).status == 200, "delete")
    check(not os.path.exists(path) and not d.sql("SELECT id FROM faxes"), "fax not deleted")


if __name__ == "__main__":
    try:
        run_tests([test_fax_box_receives_mails_and_shows], demo=True,
                  sets={"smtp.url": SMTP.url, "smtp.from": "pbx@demo.local"})
    finally:
        SMTP.close()
