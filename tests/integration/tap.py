# -*- coding: utf-8 -*-
"""Small TAP emitter and pystack runner shared by the integration tests."""
from __future__ import print_function

import os
import shlex
import subprocess
import sys
import time


class TAP(object):
    """Prints `ok N - desc`, `not ok N - desc` (with `# ` diagnostics) and
    `ok N # SKIP reason`; the plan comes last (done())."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        self.skipped = 0
        out = sys.stdout
        if hasattr(out, "reconfigure"):
            out.reconfigure(errors="backslashreplace", line_buffering=True)

    @staticmethod
    def _clean(s):
        # A '#' in a description would start a TAP directive.
        return " ".join(str(s).replace("#", "No.").split())

    def diag(self, lines):
        if isinstance(lines, str):
            lines = [lines]
        for chunk in lines:
            for line in str(chunk).splitlines() or [""]:
                print("# " + line)

    def ok(self, cond, desc, diag=()):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, self._clean(desc)))
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, self._clean(desc)))
            self.diag(list(diag))
        return cond

    def skip(self, reason):
        self.n += 1
        self.skipped += 1
        print("ok %d # SKIP %s" % (self.n, self._clean(reason)))

    def done(self):
        print("1..%d" % self.n)
        sys.stdout.flush()
        return 0


def pystack_path():
    p = os.environ.get("PYSTACK") or os.path.join("analyzer", "pystack")
    return os.path.abspath(p)


def daemon_analyzer_path():
    """The analyzer pystackd runs in tests.  The sanitizer suite points this at
    the plain build (PYSTACK_DAEMON_ANALYZER): AddressSanitizer reserves
    terabytes of address space, which MemoryMax (RLIMIT_AS) rightly refuses."""
    p = os.environ.get("PYSTACK_DAEMON_ANALYZER") or pystack_path()
    return os.path.abspath(p)


def pystack_cmd(args):
    wrapper = shlex.split(os.environ.get("PYSTACK_WRAPPER", ""))
    return wrapper + [pystack_path()] + list(args)


class Result(object):
    def __init__(self, cmd, rc, out, err, seconds, timed_out):
        self.cmd = cmd
        self.rc = rc
        self.out = out
        self.err = err
        self.seconds = seconds
        self.timed_out = timed_out

    def describe(self, limit=20):
        """Diagnostic lines about this run."""
        lines = ["command: %s" % " ".join(shlex.quote(c) for c in self.cmd),
                 "exit status: %s%s (%.2fs)" % (
                     self.rc, " TIMED OUT" if self.timed_out else "",
                     self.seconds)]
        err = self.err.splitlines()
        if err:
            lines.append("stderr (%d lines):" % len(err))
            lines += ["  | " + l for l in err[:limit]]
            if len(err) > limit:
                lines.append("  | ...")
        out = self.out.splitlines()
        if out:
            lines.append("stdout (%d lines):" % len(out))
            lines += ["  | " + l for l in out[:limit]]
            if len(out) > limit:
                lines.append("  | ...")
        return lines


def run_pystack(args, timeout):
    cmd = pystack_cmd(args)
    t0 = time.time()
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    except OSError as e:
        return Result(cmd, None, "", "cannot run: %s" % e, 0.0, False)
    timed_out = False
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(p.pid, 9)
        except OSError:
            p.kill()
        out, err = p.communicate()
    return Result(cmd, p.returncode, out.decode("utf-8", "backslashreplace"),
                  err.decode("utf-8", "backslashreplace"),
                  time.time() - t0, timed_out)
