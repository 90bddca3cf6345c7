"""Voicemail with real phones and a real mail server.

Operator 102 has voicemail on, mail notices on and a PIN, and no phone
registered: a call from 100 falls through the forwarding scheme to
voicemail. The caller hears the greeting, leaves a 440 Hz "message" and
hangs up. The message is stored, its recording holds the caller's tone,
a mail with the caller's number, the time of the call (in the domain's
time zone, Asia/Vladivostok, UTC+10, within a minute) and the recording
reaches a local SMTP server, and 102 hears the message from their own phone with *97 and the
PIN. Someone else's box by number (*98102) needs the PIN.
"""
import datetime
import email
import os
import re
import time
import zoneinfo

import audio
from cwtest import BUILD, SmtpSink, TestFailure, run_tests, wait_until
from sipua import Phone

SMTP = SmtpSink()
TZ = "Asia/Vladivostok"


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def prompt_seconds(*names):
    total = 0.0
    for n in names:
        rate, samples, _ = audio.read_wav(os.path.join(BUILD, "sounds", "en", n + ".wav"))
        total += len(samples) / rate
    return total


def user_id(api, login):
    items = api.get("/api/v1/domains/demo.local/users", query={"q": login}).json["items"]
    return [u["id"] for u in items if u["login"] == login][0]


def test_voicemail_left_mailed_and_heard(d):
    admin = d.login("admin", "Demo-admin-1", "demo.local")
    box = user_id(admin, "op102")
    r = admin.patch("/api/v1/domains/demo.local/users/%d" % box,
                    {"voicemail_enabled": True, "voicemail_notify": True, "language": "en",
                     "email": "op102@example.com", "voicemail_pin": "4321"})
    check(r.status == 200, "enable voicemail: %r" % r)
    check("voicemail_pin" not in r.json, "the PIN is shown back: %r" % r.json)
    stored = d.sql("SELECT voicemail_pin FROM users WHERE id = %d" % box)[0][0]
    check(stored.startswith("sha256$") and "4321" not in stored, "PIN stored as typed")
    dom = admin.get("/api/v1/domains").json["items"][0]
    r = admin.patch("/api/v1/domains/%d" % dom["id"], {"timezone": TZ})
    check(r.status == 200, "time zone: %r" % r)

    mic = audio.write_tone_wav(os.path.join(d.dir, "caller.wav"), 440, 90, amplitude=9000)
    caller = Phone("caller", "admin", "Demo-admin-1", d.sip_port, mic_wav=mic, seconds=120)
    owner = None
    try:
        caller.start()
        check(caller.wait_registered(15), "caller did not register")
        caller.dial("sip:102@demo.local")
        check(caller.wait_event("CALL_ESTABLISHED", 10), "voicemail did not answer")
        answered = time.time()
        # "not available, leave a message after the tone", the beep, then 4 s of message
        time.sleep(prompt_seconds("vm_unavailable", "leave_message") + 0.4 + 4.5)
        caller.hangup()

        rows = wait_until(lambda: d.sql("SELECT caller, duration_ms, path, heard, owner_id "
                                        "FROM voicemail_messages"), 10, 0.2, "the message")
        check(len(rows) == 1, "messages: %r" % rows)
        who, ms, path, heard, owner_id = rows[0]
        check(who == "100" and int(owner_id) == box and heard == "0", "message row %r" % rows[0])
        check(3000 <= int(ms) <= 7000, "message length %s ms" % ms)
        rate, rec, _ = audio.read_wav(path)
        share = audio.tone_share(audio.segment(rec, rate, 0.3, len(rec) / rate - 0.3), rate, 440)
        check(share > 0.6, "the recording does not hold the caller's voice (440 Hz %.2f)" % share)

        mail = SMTP.wait(1, 20)[0]
        check("op102@example.com" in " ".join(mail["to"]), "mail to %r" % mail["to"])
        msg = mail["msg"]
        check("100" in msg["Subject"], "subject %r" % msg["Subject"])
        body = SmtpSink.text_of(mail)
        check("From: 100" in body, "mail text: %r" % body)
        m = re.search(r"^Received: (\d{4}-\d\d-\d\d \d\d:\d\d) \(([\w/]+)\)$", body, re.M)
        check(m and m.group(2) == TZ, "no time in %s in the mail: %r" % (TZ, body))
        said = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M").replace(
            tzinfo=zoneinfo.ZoneInfo(TZ)).timestamp()
        # the mail shows minutes: the minute the message came in, within a minute of the answer
        check(answered - 60 <= said <= time.time(),
              "the mail says %s %s, the call was at %s UTC" %
              (m.group(1), m.group(2), time.strftime("%H:%M:%S", time.gmtime(answered))))
        wavs = [p for p in msg.iter_attachments() if p.get_content_type() == "audio/wav"]
        check(len(wavs) == 1 and len(wavs[0].get_content()) == os.path.getsize(path),
              "the recording is not attached whole")

        # the owner listens from their own phone with the PIN
        owner = Phone("owner", "op102", "Demo-op102-1", d.sip_port, seconds=120)
        owner.start()
        check(owner.wait_registered(15), "op102 did not register")
        owner.dial("sip:*97@demo.local")
        check(owner.wait_event("CALL_ESTABLISHED", 10), "*97 did not answer")
        time.sleep(3)
        owner.dtmf("4321#")
        time.sleep(12)  # "you have one new message", "first message", the message
        owner.dtmf("9")   # save
        time.sleep(3)
        owner.hangup()
        wait_until(lambda: d.sql("SELECT heard FROM voicemail_messages")[0][0] == "1", 8, 0.2,
                   "the message marked heard")
    finally:
        caller.stop()
        if owner:
            owner.stop()
    rate, heard_audio = audio.read_wav(owner.received_wavs()[0])[:2]
    check(audio.has_tone(heard_audio, rate, 440, min_seconds=1.5),
          "the owner did not hear the message")

    # someone else's box by number: the PIN is required
    intruder = Phone("intruder", "admin", "Demo-admin-1", d.sip_port, seconds=60)
    try:
        intruder.start()
        check(intruder.wait_registered(15), "admin did not register again")
        intruder.dial("sip:*98102@demo.local")
        check(intruder.wait_event("CALL_ESTABLISHED", 10), "*98 did not answer")
        time.sleep(2)
        intruder.dtmf("1111#")
        time.sleep(3)
        intruder.dtmf("2222#")
        time.sleep(3)
        intruder.dtmf("3333#")
        check(intruder.wait_event("CALL_CLOSED", 15), "three wrong PINs did not end the call")
    finally:
        intruder.stop()
    rate, got = audio.read_wav(intruder.received_wavs()[0])[:2]
    check(not audio.has_tone(got, rate, 440, min_seconds=0.5),
          "a wrong PIN played the message")


if __name__ == "__main__":
    try:
        run_tests([test_voicemail_left_mailed_and_heard], demo=True,
                  sets={"smtp.url": SMTP.url, "smtp.from": "pbx@demo.local"})
    finally:
        SMTP.close()
