"""A recorded call between two real phones: each channel of the recording is its party.

An IVR flow on extension 510 runs ivr-flows/recorded_line.lua: it tells the
caller the call may be recorded, starts a stereo call:record() and puts the
caller through to 102. Each phone "speaks" a known WAV of its own (noise
bursts of random length and loudness, different seeds). After the call the
CDR links the recording; its left channel correlates with the caller's WAV
and its right channel with the callee's (normalised cross-correlation at
the best lag >= 0.9), and not the other way round.
"""
import array
import math
import os
import random
import time
import wave

import audio
from cwtest import TestFailure, run_tests, wait_until
from sipua import Phone

RATE = 8000


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def bursts_wav(path, seed, seconds=40):
    """Band-limited noise in bursts of 60..300 ms at random loudness: a signal with a
    loudness contour to align on and fine structure to correlate."""
    rnd = random.Random(seed)
    out = array.array("h")
    prev = 0.0
    while len(out) < seconds * RATE:
        n = int(RATE * rnd.uniform(0.06, 0.3))
        amp = rnd.choice([0.0, 2500.0, 6000.0, 11000.0])
        for _ in range(n):
            x = rnd.uniform(-1.0, 1.0)
            prev = 0.6 * prev + 0.4 * x  # keep it within the telephone band
            out.append(int(amp * prev * 1.8))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(out.tobytes())
    return path, list(out)


def ncc_at(a, b, lag):
    seg = b[lag:lag + len(a)]
    if len(seg) < len(a):
        return 0.0
    ea = math.sqrt(sum(x * x for x in a))
    eb = math.sqrt(sum(x * x for x in seg))
    return sum(x * y for x, y in zip(a, seg)) / (ea * eb) if ea and eb else 0.0


def best_ncc(piece, source):
    """Where piece (from the recording) sits in source (the WAV a phone sent), by the
    loudness contour first (10 ms frames), then sample by sample around it: the NCC there."""
    ea, eb = audio.envelope(piece, RATE), audio.envelope(source, RATE)
    ma = sum(ea) / len(ea)
    da = [x - ma for x in ea]
    na = math.sqrt(sum(x * x for x in da)) or 1.0
    best, best_lag = -1.0, 0
    for lag in range(0, len(eb) - len(ea)):
        seg = eb[lag:lag + len(ea)]
        mb = sum(seg) / len(seg)
        num = sum(x * (y - mb) for x, y in zip(da, seg))
        den = math.sqrt(sum((y - mb) ** 2 for y in seg)) or 1.0
        c = num / (na * den)
        if c > best:
            best, best_lag = c, lag
    centre = best_lag * RATE // 100
    return max(ncc_at(piece, source, lag)
               for lag in range(max(0, centre - 120), centre + 121))


def test_stereo_recording_channels_are_the_parties(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    admin.ok("POST", "/api/v1/domains/demo.local/ivr-flows",
             {"name": "Recorded line", "extension": "510", "script": "recorded_line",
              "flow": {"target": "102", "language": "en"}}, status=201)
    caller_wav, caller_sent = bursts_wav(os.path.join(d.dir, "caller.wav"), 11)
    callee_wav, callee_sent = bursts_wav(os.path.join(d.dir, "callee.wav"), 22)
    caller = Phone("caller", "admin", "Demo-admin-1", d.sip_port, mic_wav=caller_wav, seconds=60)
    callee = Phone("callee", "op102", "Demo-op102-1", d.sip_port, auto_answer=True,
                   mic_wav=callee_wav, seconds=60)
    try:
        for p in (caller, callee):
            p.start()
            check(p.wait_registered(15), "%s did not register" % p.name)
        caller.dial("sip:510@demo.local")
        check(caller.wait_event("CALL_ESTABLISHED", 10), "the line did not answer")
        check(callee.wait_event("CALL_ESTABLISHED", 15), "102 was not put through")
        time.sleep(7.0)
        caller.hangup()
        check(callee.wait_event("CALL_CLOSED", 8), "102 stayed in the call")
    finally:
        caller.stop()
        callee.stop()
    row = wait_until(lambda: d.sql("SELECT recording, talk_s FROM cdrs WHERE dialed = '510'"),
                     10, 0.2, "the CDR")[0]
    check(row[0] and os.path.exists(row[0]) and int(row[1]) >= 5, "CDR %r" % row)
    rate, _, chans = audio.read_wav(row[0])
    check(rate == RATE and len(chans) == 2, "not an 8 kHz stereo recording")
    left, right = chans
    n = len(left)
    check(n > 6 * RATE, "recording of %.1f s" % (n / RATE))
    # a second and a half from the conversation, well after the prompt and the ringing
    piece_l = left[n - 3 * RATE:n - int(1.5 * RATE)]
    piece_r = right[n - 3 * RATE:n - int(1.5 * RATE)]
    check(audio.dbfs(piece_l) > -40 and audio.dbfs(piece_r) > -40, "a silent channel")
    c_left = best_ncc(piece_l, caller_sent)
    c_right = best_ncc(piece_r, callee_sent)
    check(c_left >= 0.9, "left channel vs the caller's WAV: NCC %.3f" % c_left)
    check(c_right >= 0.9, "right channel vs the callee's WAV: NCC %.3f" % c_right)
    x_left = best_ncc(piece_l, callee_sent)
    check(x_left < 0.3, "left channel correlates with the callee (%.3f): channels mixed" % x_left)


if __name__ == "__main__":
    run_tests([test_stereo_recording_channels_are_the_parties], demo=True)
