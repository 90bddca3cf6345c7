"""smtpsink - a local SMTP server for tests (stdlib only, RFC 5321 subset).

As a module: SmtpSink() listens on a free port of 127.0.0.1, accepts every
message and keeps it in .messages. As a program (for C tests):
    python3 smtpsink.py DIR
prints the port on its first line, then stores each message as DIR/N.eml
and stops on SIGTERM or when stdin closes.
"""

import email
import email.policy
import os
import socketserver
import sys
import threading
import time


def _wait_until(pred, timeout, what):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


class SmtpSink:
    """A local SMTP server that accepts every message and keeps it.

    messages: list of dicts {from, to: [...], data: bytes, msg: email.message}.
    """

    def __init__(self, store_dir=None):
        sink = self
        self.store_dir = store_dir
        self.messages = []
        self.lock = threading.Lock()

        class Handler(socketserver.StreamRequestHandler):
            timeout = 30

            def reply(self, line):
                self.wfile.write((line + "\r\n").encode())
                self.wfile.flush()

            def handle(self):
                self.reply("220 cwtest-smtp ready")
                mail_from, rcpt = None, []
                while True:
                    line = self.rfile.readline(4096)
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                    verb = cmd[:4].upper()
                    if verb in ("EHLO", "HELO"):
                        if verb == "EHLO":
                            self.reply("250-cwtest-smtp")
                            self.reply("250-8BITMIME")
                            self.reply("250 SIZE 104857600")
                        else:
                            self.reply("250 cwtest-smtp")
                    elif verb == "MAIL":
                        mail_from = cmd.split(":", 1)[1].strip().split()[0].strip("<>")
                        rcpt = []
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        rcpt.append(cmd.split(":", 1)[1].strip().split()[0].strip("<>"))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        if mail_from is None or not rcpt:
                            self.reply("503 need MAIL and RCPT first")
                            continue
                        self.reply("354 end with <CRLF>.<CRLF>")
                        lines = []
                        while True:
                            l = self.rfile.readline(1 << 20)
                            if not l:
                                return
                            if l in (b".\r\n", b".\n"):
                                break
                            if l.startswith(b".."):
                                l = l[1:]
                            lines.append(l)
                        data = b"".join(lines)
                        with sink.lock:
                            if sink.store_dir:
                                path = os.path.join(sink.store_dir, "%d.eml" % len(sink.messages))
                                with open(path + ".part", "wb") as f:
                                    f.write(data)
                                os.rename(path + ".part", path)
                            sink.messages.append({
                                "from": mail_from, "to": list(rcpt), "data": data,
                                "msg": email.message_from_bytes(data, policy=email.policy.default)})
                        self.reply("250 queued")
                        mail_from, rcpt = None, []
                    elif verb == "RSET":
                        mail_from, rcpt = None, []
                        self.reply("250 ok")
                    elif verb == "NOOP":
                        self.reply("250 ok")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "smtp://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, count=1, timeout=15):
        """The first `count` messages, waiting for them to arrive."""
        _wait_until(lambda: len(self.messages) >= count, timeout, "%d mail(s)" % count)
        with self.lock:
            return list(self.messages[:count])

    @staticmethod
    def text_of(message):
        """The decoded text/plain body of a received message."""
        part = message["msg"].get_body(preferencelist=("plain",))
        return part.get_content() if part else ""

    def close(self):
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    s = SmtpSink(sys.argv[1] if len(sys.argv) > 1 else None)
    sys.stdout.write("%d\n" % s.port)  # one write: the reader may close the pipe after it
    sys.stdout.flush()
    try:
        sys.stdin.read()  # until the parent closes our stdin (or kills us)
    finally:
        s.close()
