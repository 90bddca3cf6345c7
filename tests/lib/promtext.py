"""promtext - a strict reader of the Prometheus text format (version 0.0.4) and
a scrape of a daemon's /metrics (the metrics plugin).

    samples, types = scrape(d)
    val(samples, "cw_agents", domain="demo.local", state="available")
"""

import re

from cwtest import TestFailure

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r"(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|NaN|[+-]Inf)"
SAMPLE = re.compile(r"^(%s)(\{(.*)\})? (%s)(?: -?\d+)?$" % (NAME, VALUE))
LABEL_PAIR = re.compile(r'(%s)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)' % LABEL)


def parse_prometheus(text):
    """Return ({(name, labels): value}, {family: type}); raise on any deviation."""
    if not text.endswith("\n"):
        raise TestFailure("exposition does not end with a newline")
    samples, types, helps, seen_families = {}, {}, {}, []
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line == "":
            continue
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (%s) ?(.*)$" % NAME, line)
            if not m:
                continue  # a plain comment
            kind, name, rest = m.groups()
            if kind == "TYPE":
                if rest not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise TestFailure("line %d: bad type %r" % (n, rest))
                if name in types:
                    raise TestFailure("line %d: second TYPE for %s" % (n, name))
                if any(s[0] == name for s in samples):
                    raise TestFailure("line %d: TYPE for %s after its samples" % (n, name))
                types[name] = rest
            else:
                if name in helps:
                    raise TestFailure("line %d: second HELP for %s" % (n, name))
                helps[name] = rest
            continue
        m = SAMPLE.match(line)
        if not m:
            raise TestFailure("line %d: not a sample: %r" % (n, line))
        name, _, body, value = m.groups()
        labels = {}
        if body:
            pos = 0
            while pos < len(body):
                lm = LABEL_PAIR.match(body, pos)
                if not lm:
                    raise TestFailure("line %d: bad labels %r" % (n, body))
                if lm.group(1) in labels:
                    raise TestFailure("line %d: label %s twice" % (n, lm.group(1)))
                labels[lm.group(1)] = (lm.group(2).replace("\\n", "\n").replace('\\"', '"')
                                       .replace("\\\\", "\\"))
                pos = lm.end()
        family = name[:-6] if name.endswith("_total") and name[:-6] in types else name
        if family != current:
            if family in seen_families:
                raise TestFailure("line %d: samples of %s are not together" % (n, family))
            seen_families.append(family)
            current = family
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            raise TestFailure("line %d: series %r twice" % (n, key))
        samples[key] = float(value.replace("Inf", "inf"))
    return samples, types


def scrape(d):
    """GET /metrics of a Daemon: (samples, types), the answer checked as Prometheus text."""
    r = d.client().get("/metrics")
    assert r.status == 200, r
    ctype = r.header("Content-Type") or ""
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    return parse_prometheus(r.text)


def val(samples, name, **labels):
    """The value of one series (0 when it is absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
