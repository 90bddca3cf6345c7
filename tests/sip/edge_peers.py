#!/usr/bin/python3
"""The phones and trunks for test_sip_edge (tests/unit/test_sip_edge.c).

The C side runs the real SIP edge and does what the call layer would (it
answers, calls, hangs up when told); this script plays every SIP peer on
loopback and checks what both sides saw. Arguments: SIP port, store path,
edge log path. Commands go to stdout, the edge's reports come on stdin.
"""

import hashlib
import os
import re
import select
import sqlite3
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sipraw  # noqa: E402

PORT = int(sys.argv[1])
DB = sys.argv[2]
LOG = sys.argv[3]
DOMAIN = "demo.local"
FAILED = []


def note(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def check(cond, what):
    note(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILED.append(what)
    return cond


class Harness:
    """Line protocol with the C side."""

    def __init__(self):
        self.buf = b""
        self.lines = []

    def _read(self, timeout):
        r, _, _ = select.select([0], [], [], max(timeout, 0))
        if not r:
            return
        data = os.read(0, 65536)
        if not data:
            raise SystemExit("harness went away")
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.lines.append(line.decode(errors="replace"))

    def cmd(self, text, timeout=5):
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        word = text.split()[0]
        return self.wait(lambda l: l.startswith("ok " + word) or l.startswith("error"), timeout)

    def wait(self, pred, timeout=5):
        deadline = time.time() + timeout
        while True:
            for l in self.lines:
                if pred(l):
                    self.lines.remove(l)
                    return l
            left = deadline - time.time()
            if left <= 0:
                return None
            self._read(min(left, 0.1))

    def event(self, leg, etype, timeout=5):
        return self.wait(lambda l: l.startswith("event leg=%s type=%s " % (leg, etype)), timeout)

    def incoming(self, timeout=5):
        return self.wait(lambda l: l.startswith("incoming "), timeout)

    def drain(self, t=0.3):
        self._read(t)
        out, self.lines = self.lines, []
        return out


def field(line, name):
    m = re.search(r"(?:^| )%s=(\S*)" % name, line or "")
    return m.group(1) if m else None


def seed():
    db = sqlite3.connect(DB, timeout=10)
    now = int(time.time())
    db.execute("INSERT INTO domains (name, created_at) VALUES (?, ?)", (DOMAIN, now))
    did = db.execute("SELECT id FROM domains WHERE name = ?", (DOMAIN,)).fetchone()[0]
    ids = {}
    for login, ext, pw in (("alice", "101", "secret1"), ("bob", "102", "secret2"),
                           ("carol", "103", "secret3")):
        md5 = hashlib.md5(("%s:%s:%s" % (login, DOMAIN, pw)).encode()).hexdigest()
        sha = hashlib.sha256(("%s:%s:%s" % (login, DOMAIN, pw)).encode()).hexdigest()
        db.execute("INSERT INTO users (domain_id, login, display_name, extension, role,"
                   " password_hash, sip_ha1_md5, sip_ha1_sha256, created_at, updated_at)"
                   " VALUES (?, ?, ?, ?, 'operator', 'x', ?, ?, ?, ?)",
                   (did, login, login.title(), ext, md5, sha, now, now))
        ids[login] = db.execute("SELECT id FROM users WHERE login = ?", (login,)).fetchone()[0]
    db.commit()
    db.close()
    return did, ids


def invite(c, user, password, to_user, body, extra=()):
    """INVITE from a raw client with digest auth (407); the final response."""
    uri = "sip:%s@%s" % (to_user, DOMAIN)
    frm = "sip:%s@%s" % (user, DOMAIN)
    c.new_call()
    c.request("INVITE", uri, frm, uri, list(extra), body=body)
    r = c.final()
    if r is None or r.status != 407:
        return r
    c.ack(r)
    chal = sipraw.parse_challenge(r.all("proxy-authenticate")[-1])
    auth = sipraw.digest_header(chal, "INVITE", uri, user, password)
    c.request("INVITE", uri, frm, uri, list(extra) + ["Proxy-Authorization: " + auth], body=body)
    return c.final(timeout=8)


def invite_start(c, user, password, to_user, body, extra=()):
    """Like invite() but returns once the authenticated INVITE is on its way."""
    uri = "sip:%s@%s" % (to_user, DOMAIN)
    frm = "sip:%s@%s" % (user, DOMAIN)
    c.new_call()
    c.request("INVITE", uri, frm, uri, list(extra), body=body)
    r = c.final()
    c.ack(r)
    chal = sipraw.parse_challenge(r.all("proxy-authenticate")[-1])
    auth = sipraw.digest_header(chal, "INVITE", uri, user, password)
    return c.request("INVITE", uri, frm, uri, list(extra) + ["Proxy-Authorization: " + auth],
                     body=body)


def inbound_calls(h, ids):
    note("-- inbound calls")
    a = sipraw.Client(PORT)
    # answered call, caller hangs up; the caller asks for session timers
    invite_start(a, "alice", "secret1", "102", sipraw.sdp(4000),
                 ["Supported: timer", "Session-Expires: 120;refresher=uac", "Min-SE: 90"])
    inc = h.incoming()
    check(inc is not None, "an authenticated INVITE reaches the call layer")
    leg = field(inc, "leg")
    check(field(inc, "from_user") == "101" and field(inc, "user_id") == str(ids["alice"]) and
          field(inc, "to_user") == "102" and field(inc, "has_offer") == "1" and
          field(inc, "codec") == "PCMU" and field(inc, "trunk_id") == "0",
          "incoming: caller 101 (alice), dialled 102, offer PCMU")
    h.cmd("respond %s 180" % leg)
    check(a.provisional(180) is not None, "caller hears 180")
    h.cmd("respond %s 200 sdp 40010 sendrecv" % leg)
    r = a.final()
    check(r is not None and r.status == 200 and "m=audio 40010" in r.body,
          "caller gets 200 with our SDP")
    se = (r.get("session-expires") or r.get("x") or "") if r else ""
    check(se.startswith("120") and "refresher=uac" in se,
          "session timer: 120 s, refreshed by the caller (%s)" % se)
    a.ack(r)
    ev = h.event(leg, "ANSWERED")
    check(ev is not None, "ACK -> ANSWERED")
    dlg = sipraw.Dialog.from_uac(a, r)

    # DTMF by SIP INFO
    dlg.request("INFO", ["Content-Type: application/dtmf-relay"], "Signal=5\r\nDuration=160\r\n")
    check(a.final() is not None, "INFO answered")
    ev = h.event(leg, "DTMF")
    check(field(ev, "digit") == "5", "INFO dtmf-relay -> DTMF 5")

    # hold and unhold by re-INVITE: answered by the edge, mirrored
    dlg.request("INVITE", body=sipraw.sdp(4000, "sendonly", version=2))
    r = a.final()
    check(r is not None and r.status == 200 and sipraw.sdp_dir(r.body) == "recvonly",
          "re-INVITE sendonly answered recvonly")
    a.ack(r)
    check(h.event(leg, "HOLD") is not None, "HOLD reported")
    dlg.request("INVITE", body=sipraw.sdp(4002, "sendrecv", version=3))
    r = a.final()
    check(r is not None and r.status == 200 and sipraw.sdp_dir(r.body) == "sendrecv",
          "re-INVITE sendrecv answered sendrecv")
    a.ack(r)
    ev = h.event(leg, "UNHOLD")
    check(ev is not None and field(ev, "port") == "4002", "UNHOLD reported with the new port")
    # hold by UPDATE
    dlg.request("UPDATE", body=sipraw.sdp(4002, "inactive", version=4))
    r = a.final()
    check(r is not None and r.status == 200 and sipraw.sdp_dir(r.body) == "inactive",
          "UPDATE inactive answered inactive")
    check(h.event(leg, "HOLD") is not None, "HOLD by UPDATE reported")
    dlg.request("UPDATE", body=sipraw.sdp(4002, "sendrecv", version=5))
    a.final()
    check(h.event(leg, "UNHOLD") is not None, "UNHOLD by UPDATE reported")

    # a session refresh by UPDATE without SDP: answered, nothing to report
    dlg.request("UPDATE", ["Session-Expires: 120;refresher=uac"])
    r = a.final()
    check(r is not None and r.status == 200 and not r.body, "a refresh UPDATE gets 200")
    check(h.wait(lambda l: l.startswith("event leg=%s " % leg), 0.5) is None,
          "a refresh is not an event")

    # the core puts the far end on hold: re-INVITE from us
    h.cmd("reoffer %s 40010 sendonly" % leg)
    req = a.wait_request("INVITE")
    check(req is not None and sipraw.sdp_dir(req.body) == "sendonly", "sip_reoffer sends re-INVITE")
    if req:
        a.reply(req, 200, body=sipraw.sdp(4002, "recvonly", version=6))
        ev = h.event(leg, "MEDIA")
        check(ev is not None and field(ev, "status") == "200" and field(ev, "dir") == "recvonly",
              "the answer to our re-offer is reported as MEDIA 200 recvonly")
        check(a.wait_request("ACK") is not None, "our re-INVITE is ACKed")

    # blind transfer: REFER -> REFER event -> NOTIFY sipfrag
    dlg.request("REFER", ["Refer-To: <sip:103@demo.local>", "Referred-By: <sip:101@demo.local>"])
    r = a.final()
    check(r is not None and r.status == 202, "REFER gets 202")
    ev = h.event(leg, "REFER")
    check(field(ev, "refer_user") == "103" and field(ev, "refer_host") == "demo.local" and
          field(ev, "replaces") == "-", "REFER reported with the target 103")
    h.cmd("refer_result %s 200" % leg)
    n = a.wait_request("NOTIFY", pred=lambda m: "200" in m.body)
    check(n is not None and "SIP/2.0 200" in n.body and "sipfrag" in (n.get("content-type") or ""),
          "NOTIFY with sipfrag 200 goes to the transferor")
    # attended transfer: REFER with Replaces
    dlg.request("REFER", ["Refer-To: <sip:102@demo.local?Replaces=abc%40host%3Bto-tag%3D1"
                          "%3Bfrom-tag%3D2>"])
    r = a.final()
    ev = h.event(leg, "REFER")
    check(field(ev, "replaces") == "abc@host" and field(ev, "to_tag") == "1" and
          field(ev, "from_tag") == "2", "REFER with Replaces reports the dialog: Call-ID and tags")
    # a Replaces naming only a Call-ID names no dialog: refused, nothing reported
    dlg.request("REFER", ["Refer-To: <sip:102@demo.local?Replaces=abc%40host>"])
    r = a.final()
    check(r is not None and r.status == 400, "REFER with a Replaces without tags gets 400")
    check(h.wait(lambda l: l.startswith("event leg=%s type=REFER" % leg), 0.5) is None,
          "a REFER refused by the edge is not an event")

    # caller hangs up
    dlg.request("BYE")
    r = a.final()
    check(r is not None and r.status == 200, "BYE answered")
    ev = h.event(leg, "ENDED")
    check(ev is not None and field(ev, "cause") == "normal", "BYE -> ENDED normal")

    # answered call, the core hangs up
    invite_start(a, "alice", "secret1", "102", sipraw.sdp(4000))
    leg = field(h.incoming(), "leg")
    h.cmd("respond %s 200 sdp 40012 sendrecv" % leg)
    r = a.final()
    a.ack(r)
    h.event(leg, "ANSWERED")
    h.cmd("hangup %s normal" % leg)
    bye = a.wait_request("BYE")
    check(bye is not None, "sip_hangup on an answered leg sends BYE")

    # CANCEL before answer
    invite_start(a, "alice", "secret1", "102", sipraw.sdp(4000))
    inv_text_cseq = a.last_cseq
    leg = field(h.incoming(), "leg")
    h.cmd("respond %s 180" % leg)
    a.provisional(180)
    # CANCEL: same branch as the INVITE
    last = [l for l in a.sent if l.startswith("INVITE")][-1] if hasattr(a, "sent") else None
    check(last is not None, "the INVITE we sent is known")
    if last:
        via = re.search(r"(?m)^Via: (.*)\r$", last).group(1)
        a.send_raw("CANCEL sip:102@demo.local SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\n"
                   "From: <sip:alice@demo.local>;tag=%s\r\nTo: <sip:102@demo.local>\r\n"
                   "Call-ID: %s\r\nCSeq: %d CANCEL\r\nContent-Length: 0\r\n\r\n"
                   % (via, a.tag, a.call_id, inv_text_cseq))
        r = a.final(cseq=inv_text_cseq, method="INVITE")
        check(r is not None and r.status == 487, "CANCEL: the INVITE ends with 487")
        if r:
            a.ack(r)
        ev = h.event(leg, "ENDED")
        check(ev is not None and field(ev, "cause") == "cancelled", "CANCEL -> ENDED cancelled")

    # early media: 183 with our SDP, then 200
    invite_start(a, "alice", "secret1", "102", sipraw.sdp(4000))
    leg = field(h.incoming(), "leg")
    h.cmd("respond %s 183 sdp 40014 sendrecv" % leg)
    r = a.provisional(183)
    check(r is not None and "m=audio 40014" in r.body, "183 carries early-media SDP")
    h.cmd("respond %s 200 sdp 40014 sendrecv" % leg)
    r = a.final()
    if r:
        a.ack(r)
    check(h.event(leg, "ANSWERED") is not None, "and the call is answered after early media")
    h.cmd("hangup %s normal" % leg)
    a.wait_request("BYE")

    # late offer: no SDP in the INVITE, our offer in 200, their answer in ACK
    invite_start(a, "alice", "secret1", "102", "")
    inc = h.incoming()
    check(inc is not None and field(inc, "has_offer") == "0", "an INVITE without SDP: no offer")
    leg = field(inc, "leg")
    h.cmd("respond %s 200 sdp 40016 sendrecv" % leg)
    r = a.final()
    check(r is not None and "m=audio 40016" in r.body, "our 200 carries the offer")
    if r:
        dlg = sipraw.Dialog.from_uac(a, r)
        a.send_raw("ACK %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\n"
                   "Call-ID: %s\r\nCSeq: %s ACK\r\nContent-Type: application/sdp\r\n"
                   "Content-Length: %d\r\n\r\n%s"
                   % (dlg.target, a.via(), r.get("from"), r.get("to"), r.get("call-id"),
                      r.get("cseq").split()[0], len(sipraw.sdp(4020)), sipraw.sdp(4020)))
        ev = h.event(leg, "ANSWERED")
        check(ev is not None and field(ev, "has_sdp") == "1" and field(ev, "port") == "4020",
              "the answer in ACK comes with ANSWERED")
        h.cmd("hangup %s normal" % leg)
        a.wait_request("BYE")

    # the core refuses: busy
    invite_start(a, "alice", "secret1", "102", sipraw.sdp(4000))
    leg = field(h.incoming(), "leg")
    h.cmd("hangup %s busy" % leg)
    r = a.final()
    check(r is not None and r.status == 486, "sip_hangup(busy) on a ringing leg sends 486")
    if r:
        a.ack(r)

    # no common codec: 488 from the edge, nothing reaches the core
    r = invite(a, "alice", "secret1", "102", sipraw.sdp(4000, codecs=(18,), dtmf=0))
    check(r is not None and r.status == 488, "no common codec gets 488")
    if r:
        a.ack(r)
    check(h.incoming(timeout=0.5) is None, "a call without a common codec never reaches the core")
    # an INVITE from a user of a domain we do not serve
    a.new_call()
    a.request("INVITE", "sip:102@demo.local", "sip:eve@elsewhere.example", "sip:102@demo.local",
              body=sipraw.sdp(4000))
    r = a.final()
    check(r is not None and r.status == 403, "INVITE from another domain gets 403")
    if r:
        a.ack(r)
    a.close()


def outbound_calls(h, ids):
    note("-- outbound calls")
    c1, c2 = sipraw.Client(PORT), sipraw.Client(PORT)
    check(c1.register("bob", DOMAIN, "secret2").status == 200 and
          c2.register("bob", DOMAIN, "secret2", aor_user="102").status == 200,
          "bob registers two contacts")
    bus = [h.wait(lambda l: l.startswith("bus sip.registered ") and '"login":"bob"' in l, 3)
           for _ in range(2)]
    check(all(bus) and '"contact":"sip:bob@127.0.0.1:%d"' % c1.local[1] in bus[0] + bus[1],
          "sip.registered on the bus for each contact")
    check(h.cmd("locate %d" % ids["bob"]).startswith("ok locate 2 "), "sip_locate finds both")
    reply = h.cmd("call user %d" % ids["bob"])
    leg = reply.split()[2]
    i1, i2 = c1.wait_request("INVITE"), c2.wait_request("INVITE")
    check(i1 is not None and i2 is not None, "the call forks to both contacts")
    if not (i1 and i2):
        return
    check(i1.uri == "sip:bob@127.0.0.1:%d" % c1.local[1], "request URI is the contact")
    check('"Front Desk" <sip:100@demo.local>' in i1.get("from") and
          i1.get("call-id") == reply.split()[3], "From shows the caller; Call-ID as reported")
    check(sipraw.sdp_dir(i1.body) == "sendrecv" and "m=audio 40000" in i1.body,
          "the offer is the core's SDP")
    c1.reply(i1, 180, to_tag="t1")
    ev = h.event(leg, "PROGRESS")
    check(ev is not None and field(ev, "status") == "180", "180 from one branch -> PROGRESS")
    c1.reply(i1, 183, to_tag="t1", body=sipraw.sdp(5006))
    ev = h.event(leg, "PROGRESS")
    check(ev is not None and field(ev, "status") == "183" and field(ev, "port") == "5006",
          "183 with SDP -> PROGRESS with early media")
    c2.reply(i2, 200, to_tag="t2", body=sipraw.sdp(5002))
    ev = h.event(leg, "ANSWERED")
    check(ev is not None and field(ev, "port") == "5002", "200 -> ANSWERED with the answer SDP")
    check(c2.wait_request("ACK") is not None, "the answering branch gets ACK")
    cancel = c1.wait_request("CANCEL")
    check(cancel is not None, "the other branch is cancelled")
    if cancel:
        c1.reply(cancel, 200)
        c1.reply(i1, 487, to_tag="t1")
    # the callee hangs up
    dlg = sipraw.Dialog.from_uas(c2, i2, "t2")
    dlg.request("BYE")
    r = c2.final()
    check(r is not None and r.status == 200, "callee's BYE answered")
    ev = h.event(leg, "ENDED")
    check(ev is not None and field(ev, "cause") == "normal", "callee's BYE -> ENDED normal")

    # busy everywhere
    leg = h.cmd("call user %d" % ids["bob"]).split()[2]
    for c in (c1, c2):
        i = c.wait_request("INVITE")
        if i:
            c.reply(i, 486, to_tag="b")
    ev = h.event(leg, "FAILED")
    check(ev is not None and field(ev, "status") == "486" and field(ev, "cause") == "busy",
          "486 from every branch -> FAILED busy")

    # nobody answers: our ring timeout cancels both
    leg = h.cmd("call user %d timeout 2" % ids["bob"]).split()[2]
    invs = [(c, c.wait_request("INVITE")) for c in (c1, c2)]
    for c, i in invs:
        if i:
            c.reply(i, 180, to_tag="r")
    h.event(leg, "PROGRESS")
    ev = h.event(leg, "FAILED", timeout=6)
    check(ev is not None and field(ev, "cause") == "no_answer", "ring timeout -> FAILED no_answer")
    for c, i in invs:
        cancel = c.wait_request("CANCEL")
        check(cancel is not None, "ring timeout cancels every branch")
        if cancel and i:
            c.reply(cancel, 200)
            c.reply(i, 487, to_tag="r")

    # the core gives up first: CANCEL, and no event comes back
    leg = h.cmd("call user %d" % ids["bob"]).split()[2]
    invs = [(c, c.wait_request("INVITE")) for c in (c1, c2)]
    for c, i in invs:  # a CANCEL waits for a provisional response (RFC 3261 9.1)
        if i:
            c.reply(i, 180, to_tag="x")
    h.event(leg, "PROGRESS")
    h.cmd("hangup %s cancelled" % leg)
    for c, i in invs:
        cancel = c.wait_request("CANCEL")
        check(cancel is not None, "sip_hangup before answer cancels the branch")
        if cancel and i:
            c.reply(cancel, 200)
            c.reply(i, 487, to_tag="x")
    check(h.wait(lambda l: l.startswith("event leg=%s " % leg), 1) is None,
          "no event after the core's own hangup")

    # a user with no registration
    leg = h.cmd("call user %d" % ids["carol"]).split()[2]
    ev = h.event(leg, "FAILED")
    check(ev is not None and field(ev, "cause") == "no_route", "unregistered user -> no_route")

    # 302: follow one hop
    c3, c4 = sipraw.Client(PORT), sipraw.Client(PORT)
    leg = h.cmd("call uri sip:desk@127.0.0.1:%d" % c3.local[1]).split()[2]
    i3 = c3.wait_request("INVITE")
    check(i3 is not None, "a call to a URI goes there")
    if i3:
        c3.reply(i3, 302, to_tag="m", headers=["Contact: <sip:desk2@127.0.0.1:%d>" % c4.local[1]])
        i4 = c4.wait_request("INVITE")
        check(i4 is not None and i4.uri == "sip:desk2@127.0.0.1:%d" % c4.local[1],
              "302 is followed to the new contact")
        if i4:
            c4.reply(i4, 200, to_tag="n", body=sipraw.sdp(5004))
            check(h.event(leg, "ANSWERED") is not None, "the redirected call is answered")
            h.cmd("hangup %s normal" % leg)
            check(c4.wait_request("BYE") is not None, "sip_hangup after answer sends BYE")
    # keep-alive: a contact that stops answering is dropped
    h.drain()
    c2.close()
    time.sleep(0.2)
    ev = h.wait(lambda l: l.startswith("bus sip.unregistered ") and '"reason":"unreachable"' in l,
                15)
    check(ev is not None and "127.0.0.1:%d" % c2.local[1] in ev,
          "a contact that no longer answers OPTIONS is dropped (%s)" % (ev or "")[:80])
    check(h.cmd("locate %d" % ids["bob"]).startswith("ok locate 1 "), "one contact left")
    for c in (c1, c3, c4):
        c.close()

    # a phone registered over TCP is called over its own connection
    ct = sipraw.Client(PORT, transport="tcp")
    check(ct.register("carol", DOMAIN, "secret3").status == 200, "carol registers over TCP")
    leg = h.cmd("call user %d" % ids["carol"]).split()[2]
    i = ct.wait_request("INVITE")
    check(i is not None and "TCP" in (i.get("via") or ""),
          "the INVITE comes back over the phone's TCP connection")
    if i:
        ct.reply(i, 486, to_tag="c")
        ev = h.event(leg, "FAILED")
        check(ev is not None and field(ev, "cause") == "busy", "busy over TCP")
        check(ct.wait_request("ACK") is not None, "ACK over TCP")
    r = ct.register("carol", DOMAIN, "secret3", expires=0)
    check(r is not None and r.status == 200, "carol unregisters over TCP")
    ct.close()


class Provider:
    """A SIP provider on loopback: a registrar and a proxy that challenge."""

    def __init__(self, realm="provider.example"):
        self.c = sipraw.Client(PORT)
        self.c.auto_answer = True
        self.realm = realm
        self.port = self.c.local[1]

    def verify(self, req, header, method, password):
        cred = sipraw.parse_challenge(req.get(header) or "")
        if not cred.get("response"):
            return False
        ha1 = hashlib.md5(("%s:%s:%s" % (cred["username"], self.realm, password)).encode())
        ha2 = hashlib.md5(("%s:%s" % (method, cred["uri"])).encode()).hexdigest()
        if cred.get("qop"):
            data = "%s:%s:%s:%s:auth:%s" % (ha1.hexdigest(), cred["nonce"], cred["nc"],
                                            cred["cnonce"], ha2)
        else:
            data = "%s:%s:%s" % (ha1.hexdigest(), cred["nonce"], ha2)
        return hashlib.md5(data.encode()).hexdigest() == cred["response"]

    def serve_register(self, password, timeout=8):
        """Answer REGISTERs (challenge, then check) until one is decided:
        returns (ok, request) or (None, None)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            req = self.c.wait_request("REGISTER", timeout=deadline - time.time())
            if req is None:
                return None, None
            if not req.get("authorization"):
                self.c.reply(req, 401, to_tag="reg", headers=[
                    'WWW-Authenticate: Digest realm="%s", nonce="%s", qop="auth"'
                    % (self.realm, os.urandom(8).hex())])
                continue
            ok = self.verify(req, "authorization", "REGISTER", password)
            if ok:
                self.c.reply(req, 200, to_tag="reg",
                             headers=["Contact: %s;expires=600" % req.get("contact")])
            else:
                self.c.reply(req, 403, to_tag="reg")
            return ok, req
        return None, None


def trunks(h, did, ids):
    note("-- trunks")
    p = Provider()
    db = sqlite3.connect(DB, timeout=10)
    now = int(time.time())
    db.execute("INSERT INTO trunks (domain_id, name, host, port, transport, login, password,"
               " realm, caller_ids, max_out, created_at, updated_at)"
               " VALUES (?, 'provider', '127.0.0.1', ?, 'udp', 'acct', 'pw', 'provider.example',"
               " '74950001111', 1, ?, ?)", (did, p.port, now, now))
    db.commit()
    tid = db.execute("SELECT id FROM trunks WHERE name = 'provider'").fetchone()[0]
    h.cmd("trunks_reload")
    ok, req = p.serve_register("pw")
    check(ok is True, "the trunk registers with the provider's digest challenge")
    check(req is not None and "sip:acct@provider.example" in (req.get("to") or ""),
          "REGISTER names the trunk's login at its realm")
    state = None
    deadline = time.time() + 5
    while time.time() < deadline:
        state = h.cmd("trunk %d" % tid)
        if " registered " in state:
            break
        time.sleep(0.1)
    check(state is not None and " registered " in state, "trunk status: registered")

    r = h.cmd("route %d %d 8123" % (did, ids["alice"]))
    check(r == "ok route 0 %d 123 74950001111" % tid,
          "8123 routes to the trunk as 123 with the trunk's number (%s)" % r)
    r = h.cmd("route %d %d 5555" % (did, ids["alice"]))
    check(r.split()[2] == "-2", "a number no pattern matches has no route")

    # outbound through the trunk, with the proxy's challenge
    leg = h.cmd("call trunk %d 123 from 74950001111" % tid).split()[2]
    inv = p.c.wait_request("INVITE")
    check(inv is not None and inv.uri.startswith("sip:123@127.0.0.1:%d" % p.port),
          "INVITE to the provider with the stripped number")
    if inv:
        check("sip:74950001111@provider.example" in inv.get("from"),
              "From carries the outgoing number at the provider's realm")
        p.c.reply(inv, 407, to_tag="p1", headers=[
            'Proxy-Authenticate: Digest realm="provider.example", nonce="abc", qop="auth"'])
        p.c.wait_request("ACK")
        inv2 = p.c.wait_request("INVITE")
        check(inv2 is not None and p.verify(inv2, "proxy-authorization", "INVITE", "pw"),
              "the INVITE is repeated with valid credentials")
        if inv2:
            p.c.reply(inv2, 200, to_tag="p2", body=sipraw.sdp(5010))
            check(h.event(leg, "ANSWERED") is not None, "the trunk call is answered")
            state = h.cmd("trunk %d" % tid)
            check(state.endswith("|0|1"), "one outgoing line in use (%s)" % state)
            # the line limit is 1: a second call cannot start
            leg2 = h.cmd("call trunk %d 124" % tid).split()[2]
            ev = h.event(leg2, "FAILED")
            check(ev is not None and field(ev, "cause") == "unavailable",
                  "over the line limit -> unavailable")
            r = h.cmd("route %d %d 8124" % (did, ids["alice"]))
            check(r.split()[2] == "-7", "routing reports busy lines")
            h.cmd("hangup %s normal" % leg)
            check(p.c.wait_request("BYE") is not None, "hangup sends BYE to the provider")
            state = h.cmd("trunk %d" % tid)
            check(state.endswith("|0|0"), "the line is free again (%s)" % state)

    # inbound from the trunk: trusted by address, the number is in To
    p.c.new_call()
    p.c.request("INVITE", "sip:acct@127.0.0.1:%d" % PORT, "sip:+74951234567@provider.example",
                "sip:74950001122@provider.example", body=sipraw.sdp(5012))
    inc = h.incoming()
    check(inc is not None and field(inc, "trunk_id") == str(tid) and
          field(inc, "to_user") == "74950001122" and field(inc, "from_user") == "+74951234567" and
          field(inc, "domain_id") == str(did), "a call from the trunk arrives without a challenge")
    if inc:
        h.cmd("hangup %s busy" % field(inc, "leg"))
        r = p.c.final()
        check(r is not None and r.status == 486, "and can be refused busy")
        if r:
            p.c.ack(r)

    # a phone on the trunk's address (another port) is no trunk: it must authenticate
    x = sipraw.Client(PORT)
    x.new_call()
    x.request("INVITE", "sip:102@demo.local", "sip:alice@demo.local", "sip:102@demo.local",
              body=sipraw.sdp(5014))
    r = x.final()
    check(r is not None and r.status == 407, "same address, other port: challenged like any phone")
    if r:
        x.ack(r)
    x.close()

    # a wrong password: failed with the reason, then retried
    db.execute("UPDATE trunks SET password = 'wrong', updated_at = ? WHERE id = ?", (now + 1, tid))
    db.commit()
    h.cmd("trunks_reload")
    seen = []
    deadline = time.time() + 6
    while False not in seen and time.time() < deadline:
        # first the old binding is removed (old password), then the new one fails
        ok, _ = p.serve_register("pw", timeout=deadline - time.time())
        if ok is None:
            break
        seen.append(ok)
    check(False in seen, "the changed trunk registers again and is refused")
    deadline = time.time() + 3
    while time.time() < deadline:
        state = h.cmd("trunk %d" % tid)
        if " failed " in state:
            break
        time.sleep(0.05)
    check(state is not None and " failed 403 Forbidden" in state,
          "trunk status: failed with the reason (%s)" % state)
    ok, _ = p.serve_register("pw", timeout=6)
    check(ok is False, "a failed registration is retried")
    rows = db.execute("SELECT event FROM trunk_log WHERE trunk_id = ? ORDER BY id",
                      (tid,)).fetchall()
    events = [r[0] for r in rows]
    check("registered" in events and "failed" in events and "registering" in events,
          "the trunk's log keeps its events (%s)" % ",".join(events))
    db.execute("UPDATE trunks SET enabled = 0, updated_at = ? WHERE id = ?", (now + 2, tid))
    db.commit()
    h.cmd("trunks_reload")
    state = h.cmd("trunk %d" % tid)
    check(" disabled " in state, "a disabled trunk says so")
    db.close()
    p.c.close()


def blf(h, ids):
    note("-- BLF")
    w = sipraw.Client(PORT)
    w.new_call()
    hdrs = ["Event: dialog", "Accept: application/dialog-info+xml", "Expires: 600"]
    w.request("SUBSCRIBE", "sip:102@demo.local", "sip:alice@demo.local", "sip:102@demo.local",
              hdrs)
    r = w.final()
    check(r is not None and r.status == 401, "SUBSCRIBE is challenged")
    chal = sipraw.parse_challenge(r.all("www-authenticate")[-1])
    auth = sipraw.digest_header(chal, "SUBSCRIBE", "sip:102@demo.local", "alice", "secret1")
    w.request("SUBSCRIBE", "sip:102@demo.local", "sip:alice@demo.local", "sip:102@demo.local",
              hdrs + ["Authorization: " + auth])
    r = w.final()
    check(r is not None and r.status == 202, "SUBSCRIBE accepted")
    n = w.wait_request("NOTIFY")
    check(n is not None and "dialog-info" in n.body and "<dialog " not in n.body and
          "sip:102@demo.local" in n.body, "first NOTIFY: 102 is idle")
    versions = []

    def version(body):
        m = re.search(r'version="(\d+)"', body or "")
        return int(m.group(1)) if m else -1

    if n:
        versions.append(version(n.body))
    for state in ("early", "confirmed", "idle"):
        h.cmd("blf %d %s call-77@x" % (ids["bob"], state))
        n = w.wait_request("NOTIFY")
        want = "terminated" if state == "idle" else state
        check(n is not None and "<state>%s</state>" % want in n.body and
              'call-id="call-77@x"' in n.body, "NOTIFY says %s" % want)
        if n:
            versions.append(version(n.body))
    check(versions == sorted(versions) and len(set(versions)) == len(versions),
          "versions increase (%s)" % versions)
    # unsubscribe
    if r is not None and r.status == 202:
        dlg = sipraw.Dialog.from_uac(w, r)
        dlg.request("SUBSCRIBE", ["Event: dialog", "Expires: 0"])
        r2 = w.final()
        check(r2 is not None and r2.status == 200, "unsubscribe answered")
        n = w.wait_request("NOTIFY")
        check(n is not None and "terminated" in (n.get("subscription-state") or ""),
              "the last NOTIFY ends the subscription")
        h.cmd("blf %d early call-78@x" % ids["bob"])
        check(w.wait_request("NOTIFY", timeout=1) is None, "no NOTIFY after unsubscribe")
    # an event package we do not serve, a user of no domain of ours
    w.new_call()
    w.request("SUBSCRIBE", "sip:102@demo.local", "sip:alice@demo.local", "sip:102@demo.local",
              ["Event: presence", "Expires: 600"])
    r = w.final()
    check(r is not None and r.status == 489, "unknown event package -> 489")
    w.close()


def baresip_calls(h, ids):
    note("-- baresip phones")
    import sipua
    with sipua.Phone("alice", "alice", "secret1", PORT) as a, \
            sipua.Phone("bob", "bob", "secret2", PORT, auto_answer=True) as b:
        check(a.wait_registered() and b.wait_registered(), "baresip phones register")
        a.dial("sip:102@demo.local")
        inc = h.incoming(timeout=8)
        check(inc is not None and field(inc, "from_user") == "101", "baresip's call arrives")
        if not inc:
            return
        in_leg = field(inc, "leg")
        h.cmd("respond %s 180" % in_leg)
        out_leg = h.cmd("call user %d" % ids["bob"]).split()[2]
        ev = h.event(out_leg, "ANSWERED", timeout=8)
        check(ev is not None and field(ev, "has_sdp") == "1", "baresip bob answers by itself")
        h.cmd("respond %s 200 sdp 40020 sendrecv" % in_leg)
        check(h.event(in_leg, "ANSWERED", timeout=5) is not None, "baresip alice ACKs our 200")
        check(a.wait_event("CALL_ESTABLISHED", 5) is not None, "alice's call is established")
        a.hold()
        ev = h.event(in_leg, "HOLD", timeout=5)
        check(ev is not None, "baresip hold -> HOLD")
        a.resume()
        check(h.event(in_leg, "UNHOLD", timeout=5) is not None, "baresip resume -> UNHOLD")
        a.hangup()
        ev = h.event(in_leg, "ENDED", timeout=5)
        check(ev is not None and field(ev, "cause") == "normal", "alice hangs up -> ENDED")
        h.cmd("hangup %s normal" % out_leg)
        check(b.wait_event("CALL_CLOSED", 5) is not None, "bob's phone gets BYE")


def bans(h):
    note("-- bans")
    c = sipraw.Client(PORT, local_ip="127.0.0.2")  # its own address: the ban is its alone
    for i in range(5):
        r = c.register("alice", DOMAIN, "wrong")
        check(r is not None and r.status == 403, "bad password %d gets 403" % (i + 1))
    r = c.register("alice", DOMAIN, "secret1")
    check(r is None, "the 6th REGISTER from the address is ignored, even with the right password")
    other = sipraw.Client(PORT)
    r = other.register("alice", DOMAIN, "secret1")
    check(r is not None and r.status == 200, "another address is not affected")
    other.close()
    r = h.cmd("bans")
    check(r == "ok bans 1 127.0.0.2/5", "sip_bans lists the address (%s)" % r)
    check(h.cmd("lift 127.0.0.2") == "ok lift 0", "sip_ban_lift lifts it")
    r = c.register("alice", DOMAIN, "secret1")
    check(r is not None and r.status == 200, "after the lift the phone registers")
    check(h.cmd("lift 127.0.0.2") == "ok lift -2", "lifting twice: not found")
    c.close()


def main():
    h = Harness()
    did, ids = seed()
    try:
        inbound_calls(h, ids)
        outbound_calls(h, ids)
        trunks(h, did, ids)
        blf(h, ids)
        baresip_calls(h, ids)
        bans(h)
    except Exception:
        FAILED.append("exception")
        note(traceback.format_exc())
    sys.stdout.write("quit\n")
    sys.stdout.flush()
    if FAILED:
        note("%d check(s) failed: %s" % (len(FAILED), "; ".join(FAILED)))
        sys.exit(1)


if __name__ == "__main__":
    main()
