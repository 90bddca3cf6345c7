"""faxtools - fax documents and fax machines for tests (stdlib only).

Pages are lists of rows; a row is bytes of 1-bit pixels, MSB first, 1 =
black (1728 pixels = 216 bytes). write_tiff() makes a multi-page,
uncompressed, 204 x 196 dpi TIFF; read_tiff() reads any TIFF libtiff can
(it is decompressed with tiffcp first); png_pages() and gif_pages() decode
the images the API renders. FaxPeer runs build/tests/faxpeer, a SIP fax
machine, and collects the JSON lines it prints.
"""
import json
import os
import struct
import subprocess
import tempfile
import threading
import time
import zlib

from cwtest import BUILD, TestFailure

WIDTH = 1728
ROW_BYTES = WIDTH // 8


def test_page(number, rows=300):
    """A page nobody could mistake for another: bars and a block placed by its number."""
    out = []
    for r in range(rows):
        row = bytearray(ROW_BYTES)
        if (r // 24) % 2 == number % 2:
            start = 80 + number % 5 * 260 + (r % 24) * 6
            for x in range(start, min(start + 360, WIDTH)):
                row[x // 8] |= 0x80 >> (x % 8)
        if 120 <= r < 170:
            for x in range(1100 + number % 4 * 150, 1200 + number % 4 * 150):
                row[x // 8] |= 0x80 >> (x % 8)
        out.append(bytes(row))
    return out


def write_tiff(path, pages, xres=204, yres=196):
    """Uncompressed bilevel pages (WhiteIsZero) into one TIFF file."""
    data = bytearray(b"II*\x00\x00\x00\x00\x00")
    ifd_offsets = []
    strips = []
    for rows in pages:
        strips.append(len(data))
        for r in rows:
            data += r
        if len(data) % 2:
            data += b"\x00"
    prev_link = 4
    for i, rows in enumerate(pages):
        width, height = len(rows[0]) * 8, len(rows)
        rat = len(data)
        data += struct.pack("<IIII", xres, 1, yres, 1)
        entries = [
            (254, 4, 1, 2),                     # NewSubfileType: page
            (256, 4, 1, width),
            (257, 4, 1, height),
            (258, 3, 1, 1),                     # BitsPerSample
            (259, 3, 1, 1),                     # Compression: none
            (262, 3, 1, 0),                     # WhiteIsZero
            (273, 4, 1, strips[i]),             # StripOffsets
            (277, 3, 1, 1),                     # SamplesPerPixel
            (278, 4, 1, height),                # RowsPerStrip
            (279, 4, 1, height * len(rows[0])),  # StripByteCounts
            (282, 5, 1, rat),                   # XResolution
            (283, 5, 1, rat + 8),               # YResolution
            (296, 3, 1, 2),                     # inches
            (297, 3, 2, i | (len(pages) << 16)),  # PageNumber
        ]
        off = len(data)
        struct.pack_into("<I", data, prev_link, off)
        data += struct.pack("<H", len(entries))
        for tag, typ, count, value in entries:
            if typ == 3 and count == 1:
                data += struct.pack("<HHIHH", tag, typ, count, value, 0)
            else:
                data += struct.pack("<HHII", tag, typ, count, value)
        prev_link = len(data)
        data += b"\x00\x00\x00\x00"
        ifd_offsets.append(off)
    with open(path, "wb") as f:
        f.write(bytes(data))
    return path


_REVERSED = bytes(int("{:08b}".format(i)[::-1], 2) for i in range(256))


def write_grey_tiff(path, width, height, box, dpi=100):
    """One 8-bit grey page, white with a black rectangle box = (x0, y0, x1, y1): a picture,
    not a fax document, for conversion."""
    x0, y0, x1, y1 = box
    pixels = bytearray(b"\xff" * (width * height))
    for y in range(y0, y1):
        pixels[y * width + x0:y * width + x1] = b"\x00" * (x1 - x0)
    data = bytearray(b"II*\x00\x00\x00\x00\x00")
    strip = len(data)
    data += pixels
    rat = len(data)
    data += struct.pack("<IIII", dpi, 1, dpi, 1)
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1),
               (262, 3, 1, 1), (273, 4, 1, strip), (277, 3, 1, 1), (278, 4, 1, height),
               (279, 4, 1, len(pixels)), (282, 5, 1, rat), (283, 5, 1, rat + 8), (296, 3, 1, 2)]
    struct.pack_into("<I", data, 4, len(data))
    data += struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        if typ == 3:
            data += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            data += struct.pack("<HHII", tag, typ, count, value)
    data += b"\x00\x00\x00\x00"
    with open(path, "wb") as f:
        f.write(bytes(data))
    return path


def _parse_uncompressed(raw):
    """Pages of an uncompressed bilevel little- or big-endian TIFF."""
    end = "<" if raw[:2] == b"II" else ">"
    (off,) = struct.unpack(end + "I", raw[4:8])
    pages = []
    while off:
        (n,) = struct.unpack(end + "H", raw[off:off + 2])
        tags = {}
        for i in range(n):
            e = raw[off + 2 + 12 * i: off + 14 + 12 * i]
            tag, typ, count = struct.unpack(end + "HHI", e[:8])
            if typ == 3 and count == 1:
                (value,) = struct.unpack(end + "H", e[8:10])
            elif typ == 3 and count == 2:
                value = struct.unpack(end + "HH", e[8:12])
            else:
                (value,) = struct.unpack(end + "I", e[8:12])
            if typ == 5:
                num, den = struct.unpack(end + "II", raw[value:value + 8])
                value = num / den if den else 0
            if tag in (273, 279) and count > 1:
                fmt = end + ("I" if typ == 4 else "H") * count
                size = struct.calcsize(fmt)
                value = list(struct.unpack(fmt, raw[value:value + size]))
            tags[tag] = value
        (off,) = struct.unpack(end + "I", raw[off + 2 + 12 * n: off + 6 + 12 * n])
        width, height = tags[256], tags[257]
        if tags.get(259, 1) != 1 or tags.get(258, 1) != 1:
            raise TestFailure("not an uncompressed bilevel page: %r" % tags)
        offs = tags[273] if isinstance(tags[273], list) else [tags[273]]
        counts = tags[279] if isinstance(tags[279], list) else [tags[279]]
        body = b"".join(raw[o:o + c] for o, c in zip(offs, counts))
        stride = (width + 7) // 8
        invert = tags.get(262, 0) == 1  # BlackIsZero
        if tags.get(266, 1) == 2:  # FillOrder: least significant bit first
            body = body.translate(_REVERSED)
        rows = []
        for r in range(height):
            row = body[r * stride:(r + 1) * stride]
            rows.append(bytes(b ^ 0xff for b in row) if invert else row)
        pages.append({"width": width, "rows": rows, "yres": tags.get(283, 0)})
    return pages


def read_tiff(path):
    """Every page of a TIFF: [{width, rows, yres}], rows with 1 = black."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "plain.tiff")
        r = subprocess.run(["tiffcp", "-c", "none", path, out], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise TestFailure("tiffcp %s: %s" % (path, r.stderr.strip()))
        with open(out, "rb") as f:
            return _parse_uncompressed(f.read())


def same_page(sent_rows, got, min_share=0.98):
    """Share of the sent rows the received page holds (fine rows, or every other row for
    standard resolution); fails below min_share."""
    rows = got["rows"]
    step = 2 if got["yres"] and got["yres"] < 150 else 1
    compared = same = 0
    for i, row in enumerate(rows):
        src = i * step
        if src >= len(sent_rows):
            break
        compared += 1
        same += row == sent_rows[src]
    share = same / compared if compared else 0.0
    if share < min_share or compared < len(sent_rows) // step - 2:
        raise TestFailure("page differs: %d of %d rows equal (%d rows received, %d sent)"
                          % (same, compared, len(rows), len(sent_rows)))
    return share


def png_decode(data):
    """A 1-bit greyscale PNG: (width, rows) with rows as 1 = black."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise TestFailure("not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        typ = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(typ + body) != crc:
            raise TestFailure("PNG chunk %r has a bad CRC" % typ)
        if typ == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, colour = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
    if depth != 1 or colour != 0:
        raise TestFailure("PNG is not 1-bit grey: %r" % (ihdr,))
    raw = zlib.decompress(idat)
    stride = (w + 7) // 8
    rows = []
    for r in range(h):
        if raw[r * (stride + 1)] != 0:
            raise TestFailure("unexpected PNG filter")
        rows.append(bytes(b ^ 0xff for b in raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)]))
    return w, rows


def gif_decode(data):
    """A two-colour GIF (palette index 1 = black): (width, rows) as 1 = black."""
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise TestFailure("not a GIF")
    w, h, flags = struct.unpack("<HHB", data[6:11])
    pos = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    palette = data[13:pos]
    black = 1 if palette[3:6] == b"\x00\x00\x00" else 0
    if data[pos:pos + 1] != b",":
        raise TestFailure("GIF: no image descriptor")
    iw, ih, iflags = struct.unpack("<4xHHB", data[pos + 1:pos + 10])
    pos += 10
    min_size = data[pos]
    pos += 1
    stream = bytearray()
    while data[pos]:
        stream += data[pos + 1:pos + 1 + data[pos]]
        pos += 1 + data[pos]
    # LZW decode
    clear, eoi = 1 << min_size, (1 << min_size) + 1
    size = min_size + 1
    table = [bytes([i]) for i in range(clear)] + [b"", b""]
    out = bytearray()
    prev = None
    bitpos = 0
    nbits = len(stream) * 8
    while bitpos + size <= nbits:
        code = 0
        for i in range(size):
            if stream[(bitpos + i) >> 3] & (1 << ((bitpos + i) & 7)):
                code |= 1 << i
        bitpos += size
        if code == clear:
            table = table[:eoi + 1]
            size = min_size + 1
            prev = None
            continue
        if code == eoi:
            break
        if code < len(table):
            entry = table[code]
            if prev is not None:
                table.append(prev + entry[:1])
        elif prev is not None and code == len(table):
            entry = prev + prev[:1]
            table.append(entry)
        else:
            raise TestFailure("GIF: bad LZW code %d" % code)
        out += entry
        prev = entry
        if len(table) == (1 << size) and size < 12:
            size += 1
    if len(out) < iw * ih:
        raise TestFailure("GIF: %d pixels of %d" % (len(out), iw * ih))
    stride = (iw + 7) // 8
    rows = []
    for r in range(ih):
        row = bytearray(stride)
        line = out[r * iw:(r + 1) * iw]
        for x, px in enumerate(line):
            if px == black:
                row[x >> 3] |= 0x80 >> (x & 7)
        rows.append(bytes(row))
    return iw, rows


class FaxPeer:
    """build/tests/faxpeer as a registered SIP fax machine."""

    def __init__(self, sip_port, user, password, domain="demo.local", timeout=60):
        self.base = [os.path.join(BUILD, "tests", "faxpeer"), "--server",
                     "127.0.0.1:%d" % sip_port, "--domain", domain, "--user", user,
                     "--password", password, "--timeout", str(timeout)]
        self.proc = None
        self.events = []
        self.lock = threading.Lock()
        self.reader = None

    def start(self, *args):
        self.proc = subprocess.Popen(self.base + list(args), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"event": "text", "text": line.rstrip()}
            with self.lock:
                self.events.append(ev)

    def send(self, tiff, to):
        return self.start("--send", tiff, "--to", to)

    def receive(self, tiff, calls=1):
        return self.start("--receive", tiff, "--calls", str(calls))

    def fetch(self, tiff, to):
        """Dial `to` and receive what the answering side sends (fax on demand) into tiff."""
        return self.start("--receive", tiff, "--to", to)

    def reject(self, status=486, calls=1):
        return self.start("--reject", str(status), "--calls", str(calls))

    def seen(self, kind):
        with self.lock:
            return [e for e in self.events if e.get("event") == kind]

    def wait_for(self, kind, timeout, count=1):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self.seen(kind)
            if len(got) >= count:
                return got
            if self.proc.poll() is not None and len(self.seen(kind)) < count:
                time.sleep(0.1)
                got = self.seen(kind)
                if len(got) >= count:
                    return got
                raise TestFailure("faxpeer ended (%s) before %d %s event(s): %r"
                                  % (self.proc.returncode, count, kind, self.events))
            time.sleep(0.05)
        raise TestFailure("no %s from faxpeer within %.0f s: %r" % (kind, timeout, self.events))

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure("faxpeer did not finish within %.0f s: %r" % (timeout, self.events))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.reader:
            self.reader.join(2)
