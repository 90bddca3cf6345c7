"""JSON menu trees with a real phone.

The sample ivr-flows/samples/support-line.json is loaded through the API as
an IVR flow on extension 501. The caller hears its menu prompt, stays
silent (the menu's timeout action repeats it: heard again), then presses 2
(the sales sub-menu), * (back), then 0 (the operator, extension 101): 101's
phone rings and the two hear each other. A short menu on 502 (4 s input
timeout, 3 errors) whose default says "try again" and whose timeout says
"no input" takes a caller who presses a key it does not have, stays
silent, and presses another wrong key: each counts as an error, the caller
hears its prompt, "invalid choice" and "try again" after the wrong key,
"no input" after the silence, then "too many errors", and the IVR ends the
call.
"""
import json
import os
import time

import audio
from cwtest import BUILD, SOURCE, TestFailure, run_tests, wait_until
from sipua import Phone


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def prompt(name):
    return audio.read_wav(os.path.join(BUILD, "sounds", "en", name + ".wav"))[1]


def seconds(names):
    return sum(len(prompt(n)) / 8000.0 for n in names)


def hears(phone, name, start, end, index=-1):
    """The prompt's loudness contour is within [start, end] s of the phone's call."""
    rate, heard = phone.heard(start, end, index)
    ref = prompt(name)
    return len(heard) > len(ref) and \
        audio.contour_match(ref, heard, rate, max_lag_s=len(heard) / rate) > 0.75


def test_support_line_menu(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    with open(os.path.join(SOURCE, "ivr-flows", "samples", "support-line.json")) as f:
        flow = json.load(f)
    r = admin.post("/api/v1/domains/demo.local/ivr-flows",
                   {"name": "Support line", "extension": "501", "flow": flow})
    check(r.status == 201, "flow saved: %r" % r)
    short = {"start": "main", "language": "en", "timeout": 4, "max_errors": 3,
             "menus": {"main": {"prompt": ["press_1"],
                                "keys": {"1": {"action": "hangup"}},
                                "default": {"action": "message", "prompt": ["try_again"]},
                                "timeout": {"action": "message", "prompt": ["no_input"]}}}}
    r = admin.post("/api/v1/domains/demo.local/ivr-flows",
                   {"name": "Short", "extension": "502", "flow": short})
    check(r.status == 201, "short flow saved: %r" % r)

    mic = audio.write_tone_wav(os.path.join(d.dir, "caller.wav"), 440, 90, amplitude=9000)
    opmic = audio.write_tone_wav(os.path.join(d.dir, "op.wav"), 1000, 90, amplitude=9000)
    caller = Phone("caller", "admin", "Demo-admin-1", d.sip_port, mic_wav=mic, seconds=150)
    op = Phone("op101", "op101", "Demo-op101-1", d.sip_port, auto_answer=True, mic_wav=opmic,
               seconds=150)
    try:
        for p in (caller, op):
            p.start()
            check(p.wait_registered(15), "%s did not register" % p.name)
        # silence: the menu again; 2 -> sales, * -> back to the main menu, 0 -> operator 101
        caller.dial("sip:501@demo.local")
        check(caller.wait_event("CALL_ESTABLISHED", 10), "the IVR did not answer")
        again = seconds(flow["menus"]["main"]["prompt"]) + 5
        time.sleep(again + 2.5)
        caller.dtmf("2")
        time.sleep(2.5)
        caller.dtmf("*")
        time.sleep(2.5)
        caller.dtmf("0")
        check(op.wait_event("CALL_ESTABLISHED", 10), "0 did not reach the operator")
        time.sleep(3)
        caller.hangup()
        check(caller.wait_event("CALL_CLOSED", 8), "the caller's hang-up was not seen")
        check(op.wait_event("CALL_CLOSED", 8), "the operator's leg did not end")

        # errors: a key the menu lacks, silence, another wrong key -> too many errors
        caller.dial("sip:502@demo.local")
        check(caller.wait_event("CALL_ESTABLISHED", 10), "the short IVR did not answer")
        time.sleep(1.5)
        caller.dtmf("5")   # not in the menu: error 1, "invalid choice", "try again", the menu
        time.sleep(9)      # the prompts, then 4 s of silence: error 2, "no input", the menu
        caller.dtmf("9")   # error 3
        check(caller.wait_event("CALL_CLOSED", 15), "the IVR did not hang up after 3 errors")
    finally:
        caller.stop()
        op.stop()

    # the short menu: its prompt first; the wrong key's prompts, then (only after the
    # silence) the timeout's; too many errors at the end
    for name, start, end in (("press_1", 0, 1.5), ("invalid_choice", 1.5, 5.5),
                             ("try_again", 1.5, 5.5), ("no_input", 8, 12),
                             ("too_many_errors", 10.5, None)):
        check(hears(caller, name, start, end), "the caller did not hear %s in %s-%s s" %
              (name, start, end))
    check(not hears(caller, "no_input", 1.5, 8), "silence's prompt after the wrong key")
    # the support line: its menu, and the menu again after a silence
    check(hears(caller, "welcome", 0, 3, index=0), "the support line's menu was not heard")
    check(hears(caller, "welcome", again - 1, again + 3.5, index=0),
          "the support line's menu did not repeat after the silence")
    rate, heard = audio.read_wav(op.received_wavs()[0])[:2]
    check(audio.tone_share(audio.segment(heard, rate, 0.5, 2.5), rate, 440) > 0.5,
          "the operator does not hear the caller")
    rate, heard = audio.read_wav(caller.received_wavs()[0])[:2]
    tail = audio.segment(heard, rate, len(heard) / rate - 2.5, len(heard) / rate - 0.3)
    check(audio.tone_share(tail, rate, 1000) > 0.5, "the caller does not hear the operator")

    def ivr_log():
        rows = admin.get("/api/v1/domains/demo.local/cdrs", query={"limit": 5}).json["items"]
        return rows if len(rows) >= 2 else None
    rows = wait_until(ivr_log, 5, 0.2, "two CDRs")
    first, second = rows[1], rows[0]
    texts = [e["text"] for e in first["events"] if e["what"] == "script"]
    path = [t.split(" -> ")[1] for t in texts if t.startswith("ivr: menu")]
    check(path == ["repeat", "menu", "back", "forward"], "the first caller's path: %r" % texts)
    check(first["b_number"] == "101", "the first call ended at %r" % first["b_number"])
    texts = [e["text"] for e in second["events"] if e["what"] == "script"]
    keys = [t.split(" key ")[1] for t in texts if t.startswith("ivr: menu")]
    check(keys == ["5 -> message", "nil -> message", "9 -> message"],
          "the second caller's keys and timeout: %r" % texts)
    check(second["released_by"] == "system", "the IVR ended the second call: %r" % second)


if __name__ == "__main__":
    run_tests([test_support_line_menu], demo=True)
