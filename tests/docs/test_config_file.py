#!/usr/bin/python3
"""etc/callwright.lua documents every configuration key with its default.

The file is `callwright --help-config=lua` with values chosen for
`make run`: line for line it must match that output, except that an
assignment's value may differ from the default (its comment still names
the default). A key added to the daemon and not to the file, a changed
default or meaning, or a key the daemon no longer knows fails the test.
That the file loads is tests/api/test_config.py's job.
"""

import difflib
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cwtest import BUILD, SOURCE  # noqa: E402

ASSIGN = re.compile(r'^(\s*(?:-- )?(?:\w+|\["[\w.]+"\]) = ).*,$')


def shape(text):
    """The lines with assignment values blanked."""
    return [ASSIGN.sub(r"\1...,", line) for line in text.splitlines()]


def main():
    ref = subprocess.run([os.path.join(BUILD, "callwright"), "--help-config=lua"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    keys = subprocess.run([os.path.join(BUILD, "callwright"), "--help-config"],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    nkeys = len(keys.splitlines())
    assigns = [line for line in ref.splitlines() if ASSIGN.match(line)]
    if len(assigns) != nkeys:
        print("--help-config=lua has %d assignments for %d keys" % (len(assigns), nkeys))
        sys.exit(1)
    with open(os.path.join(SOURCE, "etc", "callwright.lua"), encoding="utf-8") as f:
        shipped = f.read()
    diff = list(difflib.unified_diff(shape(ref), shape(shipped), "callwright --help-config=lua",
                                     "etc/callwright.lua", lineterm="", n=1))
    if diff:
        print("\n".join(diff))
        print("regenerate with: build/callwright --help-config=lua > etc/callwright.lua "
              "(then set the values make run needs, e.g. plugins)")
        sys.exit(1)
    print("ok   etc/callwright.lua documents all %d keys with their defaults" % nkeys)


main()
