"""audio.py - what a test can say about a recorded phone call.

Reads 16-bit PCM WAV files (what a baresip phone heard or sent) and
answers the questions tests ask: is there sound here, what tone is it,
does this match that. Stdlib only; tolerant of a noisy 2-core machine
(energy and frequency windows, never sample-exact timing).
"""
import array
import math
import wave


def read_wav(path):
    """Return (rate, first_channel, all_channels) as lists of ints."""
    with wave.open(path, "rb") as w:
        rate, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError("%s: expected 16-bit samples, got %d-bit" % (path, width * 8))
    a = array.array("h")
    a.frombytes(raw)
    return rate, list(a[::ch]), [list(a[i::ch]) for i in range(ch)]


def rms(samples):
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def dbfs(samples):
    r = rms(samples)
    return -120.0 if r <= 0 else 20 * math.log10(r / 32768.0)


def windows(samples, rate, ms=100):
    n = max(1, int(rate * ms / 1000))
    return [samples[i:i + n] for i in range(0, len(samples) - n + 1, n)]


def active_seconds(samples, rate, threshold_dbfs=-40.0, ms=100):
    """How many seconds of the signal are louder than threshold."""
    return sum(ms / 1000.0 for w in windows(samples, rate, ms) if dbfs(w) > threshold_dbfs)


def goertzel_power(samples, rate, freq):
    """Relative power of one frequency (normalised by the block's energy)."""
    n = len(samples)
    if n == 0:
        return 0.0
    k = int(0.5 + n * freq / rate)
    w = 2 * math.pi * k / n
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    energy = sum(x * x for x in samples) * n / 2.0
    return power / energy if energy > 0 else 0.0


def tone_power(samples, rate, freq):
    """Share of the block's energy at exactly freq (Goertzel at a fractional bin)."""
    n = len(samples)
    energy = sum(x * x for x in samples) * n / 2.0
    if energy <= 0:
        return 0.0
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / energy


DTMF_LOW, DTMF_HIGH = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")


def dtmf_digits(samples, rate=8000, threshold_dbfs=-40.0):
    """The DTMF digits in a signal: 20 ms frames where one low and one high DTMF
    frequency together hold most of the energy, 40 ms of the same pair making a
    digit, any other frame ending it."""
    out, run, cur = [], 0, None
    for w in windows(samples, rate, 20):
        digit = None
        if dbfs(w) > threshold_dbfs:
            lo = max(DTMF_LOW, key=lambda f: tone_power(w, rate, f))
            hi = max(DTMF_HIGH, key=lambda f: tone_power(w, rate, f))
            if tone_power(w, rate, lo) > 0.2 and tone_power(w, rate, hi) > 0.2:
                digit = DTMF_KEYS[DTMF_LOW.index(lo)][DTMF_HIGH.index(hi)]
        if digit is not None and digit == cur:
            run += 1
            if run == 2:
                out.append(digit)
        else:
            cur, run = digit, 1
    return "".join(out)


def dominant_frequency(samples, rate, lo=100, hi=3800, step=10):
    """The strongest frequency between lo and hi (Hz), by a Goertzel sweep."""
    block = samples[: min(len(samples), rate)]  # one second is plenty
    best, best_p = 0, -1.0
    for f in range(lo, hi + 1, step):
        p = goertzel_power(block, rate, f)
        if p > best_p:
            best, best_p = f, p
    return best, best_p


def has_tone(samples, rate, freq, min_seconds=0.5, ms=100, share=0.5, threshold_dbfs=-45.0):
    """True if freq dominates (>= share of the energy) in at least min_seconds of windows."""
    hits = 0
    for w in windows(samples, rate, ms):
        if dbfs(w) > threshold_dbfs and goertzel_power(w, rate, freq) >= share:
            hits += 1
    return hits * ms / 1000.0 >= min_seconds


def normalised_xcorr(a, b, max_lag):
    """Best normalised cross-correlation of b against a over lags 0..max_lag (samples)."""
    best = 0.0
    n = min(len(a), len(b) - max_lag) if len(b) > max_lag else 0
    if n <= 0:
        return 0.0
    ea = math.sqrt(sum(x * x for x in a[:n]))
    for lag in range(0, max_lag + 1):
        seg = b[lag:lag + n]
        eb = math.sqrt(sum(x * x for x in seg))
        if ea == 0 or eb == 0:
            continue
        c = sum(x * y for x, y in zip(a[:n], seg)) / (ea * eb)
        best = max(best, c)
    return best


def write_tone_wav(path, freq, seconds, rate=8000, amplitude=12000, silence_before=0.0):
    """A mono 16-bit sine, optionally after some silence (what a phone will 'say')."""
    pre = int(rate * silence_before)
    n = int(rate * seconds)
    a = array.array("h", [0] * pre)
    a.extend(int(amplitude * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(a.tobytes())
    return path


def envelope(samples, rate, ms=10):
    """RMS per ms-long frame: the loudness contour of speech."""
    return [rms(w) for w in windows(samples, rate, ms)]


def contour_match(reference, received, rate, max_lag_s=5.0, ms=10):
    """How well received contains reference: the best normalised correlation of their
    loudness contours over lags up to max_lag_s (1.0 = same shape). Robust to G.711
    round trips and jitter, cheap enough for pure Python."""
    a = envelope(reference, rate, ms)
    b = envelope(received, rate, ms)
    mean_a = sum(a) / len(a) if a else 0.0
    a = [x - mean_a for x in a]
    ea = math.sqrt(sum(x * x for x in a))
    best = 0.0
    if not a or ea == 0:
        return 0.0
    for lag in range(0, min(int(max_lag_s * 1000 / ms), len(b) - len(a)) + 1):
        seg = b[lag:lag + len(a)]
        m = sum(seg) / len(seg)
        seg = [x - m for x in seg]
        eb = math.sqrt(sum(x * x for x in seg))
        if eb == 0:
            continue
        best = max(best, sum(x * y for x, y in zip(a, seg)) / (ea * eb))
    return best


def tone_share(samples, rate, freq, ms=100):
    """Share of the signal's energy at freq (0..1): the mean over ms-long windows, so a
    phase jump (a lost packet concealed, a re-latched stream) does not hide a steady tone."""
    ws = windows(samples, rate, ms)
    if not ws:
        return 0.0
    return sum(goertzel_power(w, rate, freq) for w in ws) / len(ws)


def segment(samples, rate, start_s, end_s):
    return samples[max(0, int(start_s * rate)):max(0, int(end_s * rate))]


# G.711 mu-law (raw PCMU payload files, as Net::SIP sends and stores them)
def _ulaw_decode(b):
    b = ~b & 0xFF
    sign, exponent, mantissa = b & 0x80, (b >> 4) & 0x07, b & 0x0F
    v = ((mantissa << 3) + 0x84) << exponent
    v -= 0x84
    return -v if sign else v


_ULAW = [_ulaw_decode(i) for i in range(256)]


def _ulaw_encode(s):
    sign = 0x80 if s < 0 else 0
    s = min(abs(s), 32635) + 0x84
    exponent = 7
    for e in range(7, -1, -1):
        if s & (0x4000 >> (7 - e)):
            exponent = e
            break
    mantissa = (s >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def read_pcmu(path):
    """Samples of a raw mu-law file ([] when there is none yet)."""
    try:
        with open(path, "rb") as f:
            return [_ULAW[b] for b in f.read()]
    except OSError:
        return []


def write_tone_pcmu(path, freq, seconds, rate=8000, amplitude=12000):
    """A sine as raw mu-law bytes, a whole number of 20 ms packets long."""
    n = int(rate * seconds) // 160 * 160
    data = bytes(_ulaw_encode(int(amplitude * math.sin(2 * math.pi * freq * i / rate)))
                 for i in range(n))
    with open(path, "wb") as f:
        f.write(data)
    return path
