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


class Response:
    def __init__(self, raw):
        self.raw = raw
        head, _, self.body = raw.partition("\r\n\r\n")
        lines = head.split("\r\n")
        first = lines[0].split(" ", 2)
        self.status = int(first[1]) if len(first) > 1 and first[1].isdigit() else 0
        self.reason = first[2] if len(first) > 2 else ""
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

    def __repr__(self):
        return "<Response %d %s>" % (self.status, self.reason)


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
        else:
            self.sock = socket.create_connection(self.server, timeout=5)
        self.local = self.sock.getsockname()
        self.buf = b""
        self.cseq = 0
        self.last_cseq, self.last_method, self.last_uri = 0, "", ""
        self.call_id = os.urandom(8).hex() + "@sipraw"
        self.tag = os.urandom(4).hex()

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
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
                return Response(text)
            # a request from the server (e.g. OPTIONS keep-alive): answer 200
            self._answer(text)

    def _answer(self, text):
        head = text.split("\r\n\r\n", 1)[0].split("\r\n")
        keep = [l for l in head[1:] if re.match(r"(?i)(via|from|to|call-id|cseq)\s*:", l)]
        self.send_raw("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n")

    def final(self, timeout=5.0, cseq=None, method=None):
        """The final response to a request of ours (default: the last one
        sent), skipping provisional responses and answers to other requests;
        None after timeout."""
        want = "%d %s" % (cseq or self.last_cseq, method or self.last_method)
        deadline = time.time() + timeout
        while True:
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

    def ack(self, resp, request_uri=None):
        """ACK a final response to our INVITE (same branch for non-2xx)."""
        num = int((resp.get("cseq") or "0").split()[0])
        via = resp.get("via") if resp.status >= 300 else self.via()
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
        t = "UDP" if self.transport == "udp" else "TCP"
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
            t = "" if self.transport == "udp" else ";transport=tcp"
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
