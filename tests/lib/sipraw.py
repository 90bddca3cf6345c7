"""sipraw - a small hand-written SIP client for protocol-level tests.

It sends exactly the bytes a test asks for (so malformed requests can be
sent on purpose) over UDP or TCP, parses responses, and computes digest
credentials with MD5 or SHA-256. Real softphones (baresip, Net::SIP) are
used for the happy paths; this is for the corners they cannot reach.
"""

import hashlib
import os
import re
import socket
import time

CRLF = "\r\n"


class Message:
    """A parsed SIP message: a response (status > 0) or a request (method)."""

    def __init__(self, raw):
        self.raw = raw
        head, _, self.body = raw.partition("\r\n\r\n")
        lines = head.split("\r\n")
        first = lines[0].split(" ", 2)
        self.method = None
        self.uri = None
        if lines[0].startswith("SIP/2.0"):
            self.status = int(first[1]) if len(first) > 1 and first[1].isdigit() else 0
            self.reason = first[2] if len(first) > 2 else ""
        else:
            self.status = 0
            self.reason = ""
            self.method = first[0]
            self.uri = first[1] if len(first) > 1 else ""
        self.headers = []
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                self.headers.append((k.strip().lower(), v.strip()))

    def get(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def tag(self, header):
        m = re.search(r";\s*tag=([^;>\s]+)", self.get(header) or "")
        return m.group(1) if m else None

    def uri_of(self, header):
        v = self.get(header) or ""
        m = re.search(r"<([^>]+)>", v)
        return m.group(1) if m else v.split(";")[0].strip()

    def __repr__(self):
        if self.method:
            return "<Request %s %s>" % (self.method, self.uri)
        return "<Response %d %s>" % (self.status, self.reason)


Response = Message


def parse_challenge(value):
    """'Digest realm="x", nonce="y", ...' -> dict (lower-case keys)."""
    scheme, _, rest = value.partition(" ")
    params = {"scheme": scheme}
    for m in re.finditer(r'([A-Za-z0-9_-]+)\s*=\s*("([^"]*)"|[^,\s]+)', rest):
        params[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return params


def digest_header(chal, method, uri, user, password, alg=None, nc=1):
    """Authorization value answering challenge dict chal."""
    alg = alg or chal.get("algorithm", "MD5")
    h = hashlib.sha256 if alg.upper() == "SHA-256" else hashlib.md5

    def hx(s):
        return h(s.encode()).hexdigest()

    realm, nonce = chal["realm"], chal["nonce"]
    ha1 = hx("%s:%s:%s" % (user, realm, password))
    ha2 = hx("%s:%s" % (method, uri))
    cnonce = os.urandom(8).hex()
    ncs = "%08x" % nc
    if "qop" in chal:
        resp = hx("%s:%s:%s:%s:auth:%s" % (ha1, nonce, ncs, cnonce, ha2))
        return ('Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", '
                'algorithm=%s, cnonce="%s", qop=auth, nc=%s'
                % (user, realm, nonce, uri, resp, alg, cnonce, ncs))
    resp = hx("%s:%s:%s" % (ha1, nonce, ha2))
    return ('Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s'
            % (user, realm, nonce, uri, resp, alg))


class Client:
    """One SIP client socket (UDP or TCP) towards one server."""

    def __init__(self, server_port, server_ip="127.0.0.1", transport="udp",
                 local_ip="127.0.0.1"):
        self.server = (server_ip, server_port)
        self.transport = transport
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((local_ip, 0))
        elif transport == "tls":
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the test's own self-signed certificate
            raw = socket.create_connection(self.server, timeout=5)
            self.sock = ctx.wrap_socket(raw)
            self.tls_version = self.sock.version()
        else:
            self.sock = socket.create_connection(self.server, timeout=5)
        self.local = self.sock.getsockname()
        self.buf = b""
        self.requests = []
        self.responses = []
        self.sent = []
        self.seen = set()
        self.auto_answer = True
        self.cseq = 0
        self.last_cseq, self.last_method, self.last_uri = 0, "", ""
        self.call_id = os.urandom(8).hex() + "@sipraw"
        self.tag = os.urandom(4).hex()

    def close(self):
        if self.transport == "tls":
            try:
                self.sock = self.sock.unwrap()  # close_notify, like a polite phone
            except (OSError, ValueError):
                pass
        self.sock.close()

    def new_call(self):
        """A fresh Call-ID and From tag: the next request starts a new dialog."""
        self.call_id = os.urandom(8).hex() + "@sipraw"
        self.tag = os.urandom(4).hex()

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sent = (self.sent + [data.decode(errors="replace")])[-50:]
        if self.transport == "udp":
            self.sock.sendto(data, self.server)
        else:
            self.sock.sendall(data)

    def _read_tcp(self, deadline):
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end >= 0:
                head = self.buf[:head_end].decode(errors="replace")
                m = re.search(r"(?im)^(content-length|l)\s*:\s*(\d+)", head)
                clen = int(m.group(2)) if m else 0
                total = head_end + 4 + clen
                if len(self.buf) >= total:
                    msg, self.buf = self.buf[:total], self.buf[total:]
                    return msg
            left = deadline - time.time()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def recv(self, timeout=3.0):
        """Next message (Response) or None after timeout."""
        deadline = time.time() + timeout
        while True:
            if self.transport == "udp":
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
                try:
                    data, _ = self.sock.recvfrom(65536)
                except socket.timeout:
                    return None
            else:
                data = self._read_tcp(deadline)
                if data is None:
                    return None
            text = data.decode(errors="replace")
            if text.startswith("SIP/2.0"):
                return Message(text)
            self._incoming(Message(text))

    def _incoming(self, req):
        """A request from the server: keep it for wait_request(); OPTIONS,
        NOTIFY and BYE are answered 200 at once, the rest by the test."""
        branch = re.search(r"branch=([^;,\s]+)", req.get("via") or "")
        key = (req.get("call-id"), " ".join((req.get("cseq") or "").split()),
               branch.group(1) if branch else "")
        if key in self.seen:
            return  # a retransmission
        self.seen.add(key)
        if req.method in ("OPTIONS", "NOTIFY", "BYE") and self.auto_answer:
            self.reply(req, 200)
        if req.method != "OPTIONS":
            self.requests.append(req)

    def wait_request(self, method, timeout=5.0, pred=None):
        """The first request of this method received (and not yet taken)."""
        deadline = time.time() + timeout
        while True:
            for r in self.requests:
                if r.method == method and (pred is None or pred(r)):
                    self.requests.remove(r)
                    return r
            left = deadline - time.time()
            if left <= 0:
                return None
            resp = self.recv(min(left, 0.2))
            if resp is not None:
                self.responses.append(resp)

    def reply(self, req, status, reason=None, body="", headers=(), to_tag=None, contact=True):
        """Answer a request the server sent us."""
        reasons = {100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK",
                   202: "Accepted", 302: "Moved Temporarily", 401: "Unauthorized",
                   403: "Forbidden", 404: "Not Found", 407: "Proxy Authentication Required",
                   480: "Temporarily Unavailable", 486: "Busy Here", 487: "Request Terminated",
                   488: "Not Acceptable Here", 603: "Decline"}
        to = req.get("to")
        if to_tag and ";tag=" not in to:
            to += ";tag=" + to_tag
        lines = ["SIP/2.0 %d %s" % (status, reason or reasons.get(status, "Unknown"))]
        lines += ["Via: " + v for v in req.all("via")]
        lines += ["From: " + req.get("from"), "To: " + to, "Call-ID: " + req.get("call-id"),
                  "CSeq: " + req.get("cseq")]
        if contact and req.method in ("INVITE", "SUBSCRIBE", "REFER", "UPDATE") and status < 300:
            t = "" if self.transport == "udp" else ";transport=" + self.transport
            lines.append("Contact: <sip:peer@%s:%d%s>" % (self.local[0], self.local[1], t))
        lines += list(headers)
        if body and not any(h.lower().startswith("content-type") for h in headers):
            lines.append("Content-Type: application/sdp")
        lines.append("Content-Length: %d" % len(body.encode()))
        self.send_raw(CRLF.join(lines) + CRLF + CRLF + body)

    def final(self, timeout=5.0, cseq=None, method=None):
        """The final response to a request of ours (default: the last one
        sent), skipping provisional responses and answers to other requests;
        None after timeout."""
        want = "%d %s" % (cseq or self.last_cseq, method or self.last_method)
        deadline = time.time() + timeout
        while True:
            if self.responses:
                r = self.responses.pop(0)
            else:
                left = deadline - time.time()
                if left <= 0:
                    return None
                r = self.recv(left)
                if r is None:
                    return None
            got = " ".join((r.get("cseq") or "").split())
            if got != want:
                if r.status >= 300 and got.endswith("INVITE"):
                    self.ack(r)  # stop retransmissions of an older answer
                continue
            if r.status >= 200:
                return r

    def provisional(self, status, timeout=5.0):
        """Wait for a provisional response with this status to our last request."""
        want = "%d %s" % (self.last_cseq, self.last_method)
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self.responses.pop(0) if self.responses else self.recv(deadline - time.time())
            if r is None:
                return None
            if " ".join((r.get("cseq") or "").split()) == want and r.status == status:
                return r
            if r.status >= 200:
                self.responses.append(r)
                return None
        return None

    def ack(self, resp, request_uri=None):
        """ACK a final response to our INVITE (same branch for non-2xx; to the
        Contact of a 2xx)."""
        num = int((resp.get("cseq") or "0").split()[0])
        via = resp.get("via") if resp.status >= 300 else self.via()
        if request_uri is None and resp.status < 300 and resp.get("contact"):
            request_uri = resp.uri_of("contact")
        lines = [
            "ACK %s SIP/2.0" % (request_uri or self.last_uri),
            "Via: " + via,
            "Max-Forwards: 70",
            "From: " + resp.get("from"),
            "To: " + resp.get("to"),
            "Call-ID: " + resp.get("call-id"),
            "CSeq: %d ACK" % num,
            "Content-Length: 0",
        ]
        self.send_raw(CRLF.join(lines) + CRLF + CRLF)

    def via(self):
        t = self.transport.upper()
        return "SIP/2.0/%s %s:%d;branch=z9hG4bK%s;rport" % (t, self.local[0], self.local[1],
                                                           os.urandom(6).hex())

    def request(self, method, uri, frm, to, headers=(), body="", contact=None, cseq=None,
                call_id=None, to_tag=None):
        """Build and send a request; returns its text."""
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        self.last_cseq, self.last_method, self.last_uri = cseq, method, uri
        if contact is None:
            t = "" if self.transport == "udp" else ";transport=" + self.transport
            contact = "<sip:%s@%s:%d%s>" % (frm.split("@")[0].replace("sip:", ""),
                                            self.local[0], self.local[1], t)
        lines = [
            "%s %s SIP/2.0" % (method, uri),
            "Via: " + self.via(),
            "Max-Forwards: 70",
            "From: <%s>;tag=%s" % (frm, self.tag),
            "To: <%s>%s" % (to, ";tag=" + to_tag if to_tag else ""),
            "Call-ID: " + (call_id or self.call_id),
            "CSeq: %d %s" % (cseq, method),
        ]
        if contact:
            lines.append("Contact: " + contact)
        lines += list(headers)
        ctype = [h for h in headers if h.lower().startswith("content-type")]
        if body and not ctype:
            lines.append("Content-Type: application/sdp")
        lines.append("Content-Length: %d" % len(body.encode()))
        text = CRLF.join(lines) + CRLF + CRLF + body
        self.send_raw(text)
        return text

    def register(self, user, domain, password, expires=60, alg=None, contact=None,
                 extra=(), aor_user=None, timeout=4.0):
        """REGISTER with digest auth; returns the final Response (None = no answer)."""
        aor = "sip:%s@%s" % (aor_user or user, domain)
        uri = "sip:%s" % domain
        hdrs = ["Expires: %d" % expires, "User-Agent: sipraw"] + list(extra)
        self.request("REGISTER", uri, aor, aor, hdrs, contact=contact)
        r = self.final(timeout)
        if r is None or r.status != 401:
            return r
        chals = [parse_challenge(v) for v in r.all("www-authenticate")]
        want = (alg or "MD5").upper()
        chal = next((c for c in chals if c.get("algorithm", "MD5").upper() == want), chals[0])
        auth = digest_header(chal, "REGISTER", uri, user, password, alg=want)
        self.request("REGISTER", uri, aor, aor, hdrs + ["Authorization: " + auth],
                     contact=contact)
        return self.final(timeout)


    def invite(self, uri, user, domain, password, body="", extra=(), timeout=10.0):
        """A new INVITE to uri as user@domain, answering the 407 challenge with
        digest auth: the final response (an error is ACKed here, a 2xx is left
        to the caller's ack(); None = no answer)."""
        self.new_call()
        frm = "sip:%s@%s" % (user, domain)
        hdrs = list(extra)
        self.request("INVITE", uri, frm, uri, hdrs, body=body)
        r = self.final(timeout)
        if r is not None and r.status == 407:
            self.ack(r)
            chal = parse_challenge(r.all("proxy-authenticate")[-1])
            auth = digest_header(chal, "INVITE", uri, user, password)
            self.request("INVITE", uri, frm, uri, hdrs + ["Proxy-Authorization: " + auth],
                         body=body)
            r = self.final(timeout)
        if r is not None and r.status >= 300:
            self.ack(r)
        return r

    def watch_dialog(self, target, domain, user, password, target_domain=None):
        """SUBSCRIBE (Event: dialog, BLF) as user@domain to target@domain (or
        target@target_domain) with digest auth; the final response (None = no
        answer). The first NOTIFY follows a 202."""
        uri = "sip:%s@%s" % (target, target_domain or domain)
        frm = "sip:%s@%s" % (user, domain)
        hdrs = ["Event: dialog", "Accept: application/dialog-info+xml", "Expires: 300"]
        self.request("SUBSCRIBE", uri, frm, uri, hdrs)
        r = self.final()
        if r is None or r.status not in (401, 407):
            return r
        chal = parse_challenge((r.all("www-authenticate") or r.all("proxy-authenticate"))[-1])
        auth = digest_header(chal, "SUBSCRIBE", uri, user, password)
        self.request("SUBSCRIBE", uri, frm, uri, hdrs + ["Authorization: " + auth])
        return self.final()


class Dialog:
    """An established dialog, for in-dialog requests (re-INVITE, BYE, REFER,
    INFO, NOTIFY answers) from either side."""

    def __init__(self, client, call_id, local, remote, target, cseq):
        self.client = client
        self.call_id = call_id
        self.local = local    # our From header value, with tag
        self.remote = remote  # their To header value, with tag
        self.target = target  # their Contact URI
        self.cseq = cseq

    @classmethod
    def from_uac(cls, client, resp):
        """We sent the INVITE; resp is its 2xx."""
        return cls(client, resp.get("call-id"), resp.get("from"), resp.get("to"),
                   resp.uri_of("contact"), int(resp.get("cseq").split()[0]))

    @classmethod
    def from_uas(cls, client, req, our_tag):
        """They sent the INVITE; we answered with our_tag."""
        return cls(client, req.get("call-id"), req.get("to") + ";tag=" + our_tag,
                   req.get("from"), req.uri_of("contact"), 100)

    def request(self, method, headers=(), body=""):
        self.cseq += 1
        c = self.client
        c.last_cseq, c.last_method, c.last_uri = self.cseq, method, self.target
        t = "" if c.transport == "udp" else ";transport=" + c.transport
        lines = ["%s %s SIP/2.0" % (method, self.target), "Via: " + c.via(), "Max-Forwards: 70",
                 "From: " + self.local, "To: " + self.remote, "Call-ID: " + self.call_id,
                 "CSeq: %d %s" % (self.cseq, method)]
        if method in ("INVITE", "UPDATE", "REFER", "SUBSCRIBE"):
            lines.append("Contact: <sip:peer@%s:%d%s>" % (c.local[0], c.local[1], t))
        lines += list(headers)
        if body and not any(h.lower().startswith("content-type") for h in headers):
            lines.append("Content-Type: application/sdp")
        lines.append("Content-Length: %d" % len(body.encode()))
        c.send_raw(CRLF.join(lines) + CRLF + CRLF + body)
        return self.cseq


def sdp(port=4000, direction="sendrecv", codecs=(0, 8), dtmf=101, addr="127.0.0.1", version=1):
    names = {0: "PCMU", 8: "PCMA", 9: "G722", 18: "G729", 3: "GSM"}
    fmts = " ".join(str(c) for c in codecs) + (" %d" % dtmf if dtmf else "")
    lines = ["v=0", "o=- 1000 %d IN IP4 %s" % (version, addr), "s=-", "c=IN IP4 " + addr, "t=0 0",
             "m=audio %d RTP/AVP %s" % (port, fmts)]
    lines += ["a=rtpmap:%d %s/8000" % (c, names.get(c, "X")) for c in codecs]
    if dtmf:
        lines.append("a=rtpmap:%d telephone-event/8000" % dtmf)
    lines.append("a=" + direction)
    return CRLF.join(lines) + CRLF


def sdp_dir(text):
    m = re.search(r"(?m)^a=(sendrecv|sendonly|recvonly|inactive)\s*$", text or "")
    return m.group(1) if m else "sendrecv"


class Provider:
    """A carrier's registrar on loopback that challenges a trunk and checks its digest
    (the trunk's host is 127.0.0.1, its port .port, its realm .realm)."""

    def __init__(self, sip_port):
        self.c = Client(sip_port)
        self.port = self.c.local[1]
        self.realm = "carrier.example"

    def serve(self, password, timeout=8):
        """Answer REGISTERs until one carries credentials: True when its digest matches
        password, False when not, None when none came."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            req = self.c.wait_request("REGISTER", timeout=deadline - time.time())
            if req is None:
                return None
            if req.get("expires") == "0" or "expires=0" in (req.get("contact") or ""):
                self.c.reply(req, 200, to_tag="r")  # the old registration leaving
                continue
            if not req.get("authorization"):
                self.c.reply(req, 401, to_tag="r", headers=[
                    'WWW-Authenticate: Digest realm="%s", nonce="%s"'
                    % (self.realm, os.urandom(6).hex())])
                continue
            cred = parse_challenge(req.get("authorization"))
            ha1 = hashlib.md5(("%s:%s:%s" % (cred["username"], self.realm, password))
                              .encode()).hexdigest()
            ha2 = hashlib.md5(("REGISTER:%s" % cred["uri"]).encode()).hexdigest()
            ok = hashlib.md5(("%s:%s:%s" % (ha1, cred["nonce"], ha2)).encode()).hexdigest() \
                == cred["response"]
            if ok:
                self.c.reply(req, 200, to_tag="r",
                             headers=["Contact: %s;expires=300" % req.get("contact")])
            else:
                self.c.reply(req, 403, to_tag="r")
            return ok
        return None
