# -*- coding: utf-8 -*-
"""Running the analyzer and reading what it printed.

    r = run_pystack(["core", core, "--json"], timeout)
    r.rc, r.out, r.err, r.seconds, r.timed_out
    doc = r.json()          # the report; ValueError when stdout is not JSON
    doc = r.json_or_none()  # the report, or None
    tap.ok(..., r.describe())
"""
import json
import os
import shlex
import subprocess
import time

from harness.programs import pystack_cmd


class Result(object):
    def __init__(self, cmd, rc, out, err, seconds, timed_out):
        self.cmd = cmd
        self.rc = rc
        self.out = out
        self.err = err
        self.seconds = seconds
        self.timed_out = timed_out

    def json(self):
        """The parsed stdout; raises ValueError when it is not JSON."""
        return json.loads(self.out)

    def json_or_none(self):
        """The parsed stdout, or None when it is not JSON."""
        try:
            return json.loads(self.out)
        except ValueError:
            return None

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


def run(cmd, timeout):
    """Run cmd (stdin /dev/null, its own session, killed as a group past
    the timeout); its output decoded as UTF-8 with backslash escapes."""
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


def run_pystack(args, timeout):
    """One analyzer run: PYSTACK_WRAPPER, pystack, args."""
    return run(pystack_cmd(args), timeout)


def wait_for(pred, timeout, interval=0.02):
    """Poll pred() until it is true or timeout seconds pass; its last value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()
