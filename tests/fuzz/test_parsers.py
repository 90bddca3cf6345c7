#!/usr/bin/python3
"""Every libFuzzer target of ours runs in the suite.

The targets (core/*/fuzz_*.c: SDP, digest, dial patterns, the SIP text we
parse ourselves, dialled numbers, RTP/RTCP/RFC 4733) need clang and
-DCW_FUZZ=ON, so this driver keeps a build of its own under the build
tree ($CW_BUILD_DIR/fuzz), builds only those targets, and runs each one for
a bounded time from the seeds in tests/fuzz/seeds/<target> plus the corpus
earlier runs kept. Any crash, sanitizer report (ASan, UBSan) or leak fails
the test and names the input libFuzzer saved.

cw-test: serial  (two compiler processes: timing-sensitive tests wait)

CW_FUZZ_SECONDS sets the time per target (default 10); `make fuzz` runs
the same for longer.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cwtest import BUILD, SOURCE  # noqa: E402

SECONDS = int(os.environ.get("CW_FUZZ_SECONDS", "10"))
JOBS = os.environ.get("CW_FUZZ_JOBS", "2")
FUZZ_DIR = os.path.join(os.path.abspath(BUILD), "fuzz")
SEEDS = os.path.join(os.path.abspath(SOURCE), "tests", "fuzz", "seeds")
REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
           "ERROR: libFuzzer", "deadly signal")


def targets():
    return sorted(os.path.basename(p)[:-2]
                  for p in glob.glob(os.path.join(SOURCE, "core", "*", "fuzz_*.c")))


def build(names):
    clang = shutil.which("clang")
    if not clang:
        print("FAIL clang is not installed (scripts/install-deps installs it)")
        return False
    if not os.path.exists(os.path.join(FUZZ_DIR, "CMakeCache.txt")):
        r = subprocess.run(["cmake", "-S", SOURCE, "-B", FUZZ_DIR, "-DCMAKE_C_COMPILER=" + clang,
                            "-DCW_FUZZ=ON", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           timeout=300)
        if r.returncode:
            print("FAIL configuring the fuzz build:\n" + r.stderr[-3000:])
            return False
    r = subprocess.run(["cmake", "--build", FUZZ_DIR, "-j" + JOBS, "--target"] + names,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=1200)
    if r.returncode:
        print("FAIL building the fuzz targets:\n" + r.stdout[-4000:])
        return False
    return True


def run(name, work):
    corpus = os.path.join(FUZZ_DIR, "corpus", name)  # kept: later runs start from it
    os.makedirs(corpus, exist_ok=True)
    dirs = [corpus]
    if os.path.isdir(os.path.join(SEEDS, name)):
        dirs.append(os.path.join(SEEDS, name))
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    prefix = os.path.join(work, name + "-")
    cmd = [os.path.join(FUZZ_DIR, name), "-max_total_time=%d" % SECONDS, "-max_len=4096",
           "-timeout=10", "-rss_limit_mb=1024", "-print_final_stats=1",
           "-artifact_prefix=" + prefix] + dirs
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors="replace", timeout=SECONDS + 120, env=env)
    except subprocess.TimeoutExpired:
        print("FAIL %s did not finish within %d s" % (name, SECONDS + 120))
        return False
    out = r.stdout
    found = [w for w in REPORTS if w in out]
    runs = [l for l in out.splitlines() if l.startswith("stat::number_of_executed_units")]
    if r.returncode or found:
        saved = glob.glob(prefix + "*")
        print("FAIL %s (exit %d, %s); input kept: %s\n%s" % (
            name, r.returncode, ", ".join(found) or "no report", " ".join(saved) or "-",
            out[-6000:]))
        for s in saved:  # outlive the temp folder, next to the build
            shutil.copy(s, FUZZ_DIR)
        return False
    print("ok   %-20s %6.1f s  %s" % (name, time.monotonic() - t0,
                                      runs[0].split(":")[-1].strip() + " runs" if runs else ""))
    return bool(runs) and int(runs[0].split(":")[-1]) > 0


def main():
    names = targets()
    if len(names) < 6:
        print("FAIL expected the fuzz targets of every parser, found %r" % names)
        return 1
    t0 = time.monotonic()
    if not build(names):
        return 1
    print("built %d targets in %.0f s" % (len(names), time.monotonic() - t0))
    work = tempfile.mkdtemp(prefix="cwfuzz-")
    try:
        failed = [n for n in names if not run(n, work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        print("FAIL %s" % " ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
