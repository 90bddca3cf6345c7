#!/usr/bin/python3
"""The README's configuration reference is the daemon's own: every line of
`callwright --help-config=markdown` appears in README.md, and the README's
demo passwords are the ones the demo tenant is created with."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cwtest import BUILD, DEMO, SOURCE  # noqa: E402


def main():
    out = subprocess.run([os.path.join(BUILD, "callwright"), "--help-config=markdown"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    with open(os.path.join(SOURCE, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    missing = [line for line in out.splitlines() if line not in readme]
    for line in missing:
        print("README.md lacks: %s" % line)
    for login, pw in DEMO.items():
        if "`%s` | `%s`" % (login, pw) not in readme:
            missing.append(login)
            print("README.md lacks the demo account %s with password %s" % (login, pw))
    if missing:
        print("regenerate the table with: build/callwright --help-config=markdown")
        sys.exit(1)
    print("ok   README configuration reference and demo accounts match")


main()
