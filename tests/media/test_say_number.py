"""call:say in a real call: a flow says 3742 in English, then in Russian.

A flow on extension 561 answers and says the number with call:say, first
"three thousand seven hundred forty two" (en), 1.5 s later "три тысячи
семьсот сорок два" (ru), and hangs up. The caller is a raw RTP peer that
keeps every sample it gets. What it heard must be two utterances, each as
long as the generated word prompts put end to end (build/sounds/<lang>/),
with the same loudness contour as those prompts: speech, in the right words
and order, not a tone or silence.
"""
import os

import audio
from cwtest import BUILD, DEMO, TestFailure, flows_dir, run_tests
from rtppeer import RtpPeer

FLOW = """
return function(call)
  call:answer()
  call:sleep(1000)
  call:log("en: " .. tostring(call:say("number", 3742, "en")))
  call:sleep(1500)
  call:log("ru: " .. tostring(call:say("number", 3742, "ru")))
  call:sleep(1000)
  call:hangup()
end
"""
# the prompts cw/say.lua picks for 3742 (sounds/prompts.txt)
WORDS = {"en": ["n_3", "thousand", "n_7", "hundred", "n_40", "n_2"],
         "ru": ["n_3", "thousand_2", "n_700", "n_40", "n_2"]}
WINDOW_MS = 20
LOUD_DBFS = -45


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def reference(lang):
    """The word prompts of the number end to end (8 kHz samples)."""
    out = []
    for w in WORDS[lang]:
        rate, samples, _ = audio.read_wav(os.path.join(BUILD, "sounds", lang, w + ".wav"))
        check(rate == 8000, "%s/%s.wav is %d Hz" % (lang, w, rate))
        out += samples
    return out


def utterances(samples, gap_s=0.8):
    """(start, end) seconds of the stretches of sound, split by gap_s of silence."""
    loud = [i * WINDOW_MS / 1000.0 for i, w in enumerate(audio.windows(samples, 8000, WINDOW_MS))
            if audio.dbfs(w) > LOUD_DBFS]
    spans = []
    for t in loud:
        if spans and t - spans[-1][1] < gap_s:
            spans[-1][1] = t + WINDOW_MS / 1000.0
        else:
            spans.append([t, t + WINDOW_MS / 1000.0])
    return [tuple(s) for s in spans]


def test_flow_says_a_number_in_english_and_russian(d):
    admin = d.login("admin", DEMO["admin"], "demo.local")
    r = admin.post("/api/v1/domains/demo.local/ivr-flows",
                   {"name": "Say a number", "extension": "561", "script": "say_number"})
    check(r.status == 201, "flow saved: %r" % r)
    peer = RtpPeer(d.sip_port, "admin", DEMO["admin"], hz=440)
    try:
        peer.call("sip:561@demo.local")
        check(peer.wait_bye(20) is not None, "the flow did not end the call")
    finally:
        peer.close()
    heard = peer.heard
    spans = utterances(heard)
    check(len(spans) == 2, "the caller heard %d stretches of sound, not 2: %r"
          % (len(spans), spans))
    for lang, (start, end) in zip(("en", "ru"), spans):
        ref = reference(lang)
        want = utterances(ref)
        want_s = want[-1][1] - want[0][0]
        got_s = end - start
        check(abs(got_s - want_s) <= 0.25,
              "%s: %.2f s of speech, the prompts of 3742 last %.2f s" % (lang, got_s, want_s))
        part = audio.segment(heard, 8000, max(0.0, start - 0.2), end + 0.2)
        match = audio.contour_match(ref, part, 8000, max_lag_s=0.5)
        check(match > 0.8, "%s: what the caller heard is not the prompts of 3742 (contour %.2f)"
              % (lang, match))
    en, ru = spans
    check(1.2 <= ru[0] - en[1] <= 2.5, "the pause between the two was %.2f s" % (ru[0] - en[1]))


if __name__ == "__main__":
    run_tests([test_flow_says_a_number_in_english_and_russian],
              demo=True, sets={"flows_dir": flows_dir({"say_number": FLOW})})
