#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: `pystack core CORE --json --locals` on the cores of the
`locals` scenario of every installed CPython, compared value by value with
what the crashing program computed (scenarios/locals.py: Python's repr()
with pystack's default limits applied).

Environment: as test_stacks.py (PYSTACK, PYSTACK_WRAPPER,
PYSTACK_TEST_CORES, PYSTACK_TIMEOUT, PYSTACK_TEST_ONLY).

TAP lines per interpreter: runs, the crash frame, one line per variable
(name, argument or local, rendering), the variable list as a whole, the
expectation's own consistency, and the other frames' variables being
readable.  Exit status 0 unless the harness itself broke.
"""
from __future__ import print_function

import os
import re
import sys

sys.dont_write_bytecode = True   # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cores  # noqa: E402
from harness import programs  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP  # noqa: E402

SCENARIO = "locals"


def py_frames(thread):
    return [f for f in (thread.get("frames") or [])
            if f.get("kind", "python") == "python"]


def crash_frame(exp, rep):
    """The innermost Python frame of the crashed thread, or (None, why)."""
    threads = dict((t.get("tid"), t) for t in rep.get("threads") or [])
    t = threads.get(exp["crash_tid"])
    if t is None:
        return None, "crashed thread %d not in the report" % exp["crash_tid"]
    frames = py_frames(t)
    if not frames:
        return None, "crashed thread has no Python frames"
    return frames[-1], None


def report(tap, entry, res):
    tag = "%s %s" % (entry.interp.label, entry.scenario)
    exp = entry.expectation()
    want = (exp.get("notes") or {}).get("variables")
    rep, d = None, []
    if res.timed_out:
        d.append("timed out")
    elif res.rc != 0:
        d.append("exit status %r, expected 0" % res.rc)
    else:
        try:
            rep = res.json()
            if not isinstance(rep, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            d.append("stdout is not one JSON object: %s" % e)
            rep = None
    if d:
        d += res.describe()
    tap.ok(rep is not None, "%s: runs (--json --locals, exit 0, JSON)" % tag, d)
    if rep is None or want is None:
        if want is None:
            tap.ok(False, "%s: expectation has notes.variables" % tag)
        return

    frame, why = crash_frame(exp, rep)
    d = [why] if why else []
    if frame is not None:
        if frame.get("function") != exp["notes"]["function"]:
            d.append("innermost frame: expected %r, got %r"
                     % (exp["notes"]["function"], frame.get("function")))
        for key in ("arguments", "locals"):
            if not isinstance(frame.get(key), list):
                d.append("%r: expected a list, got %r" % (key, frame.get(key)))
        if frame.get("locals_error") is not None:
            d.append("locals_error: expected null, got %r"
                     % frame.get("locals_error"))
    tap.ok(not d, "%s: crash frame carries its variables" % tag, d)
    if d:
        return

    got = [(v.get("name"), True, v.get("repr"))
           for v in frame.get("arguments") or []]
    got += [(v.get("name"), False, v.get("repr"))
            for v in frame.get("locals") or []]
    by_name = dict((g[0], g) for g in got)
    for w in want:
        g = by_name.get(w["name"])
        kind = "argument" if w["argument"] else "local"
        d = []
        if g is None:
            d.append("missing (expected %s %s = %s)"
                     % (kind, w["name"], w["expected"]))
        else:
            if g[1] != w["argument"]:
                d.append("expected an %s, reported as %s" % (
                    kind, "an argument" if g[1] else "a local"))
            if g[2] != w["expected"]:
                d.append("expected: %s" % w["expected"])
                d.append("     got: %s" % g[2])
                if w["python_repr"] != w["expected"]:
                    d.append("(Python's full repr: %s)" % w["python_repr"][:300])
        tap.ok(not d, "%s: %s %s (%s)" % (tag, kind, w["name"], w["type"]), d)

    # the list as a whole: order, and nothing extra (unbound locals are omitted)
    want_order = [(w["name"], w["argument"]) for w in want]
    got_order = [(g[0], g[1]) for g in got]
    d = []
    if want_order != got_order:
        d.append("expected: %s" % ", ".join(
            ("*" if a else "") + n for n, a in want_order))
        d.append("     got: %s" % ", ".join(
            ("*" if a else "") + n for n, a in got_order))
        d.append("(* = argument)")
    tap.ok(not d, "%s: variables in the interpreter's order, no extras" % tag, d)

    # the scenario's renderer agrees with repr() wherever no limit applies
    d = ["%s: rendering %s, repr %s" % (w["name"], w["expected"], w["python_repr"])
         for w in want if not w["limited"] and not w["expected"].startswith("<")
         and w["expected"] != w["python_repr"]]
    tap.ok(not d, "%s: expectation equals repr() where no limit applies" % tag, d)

    # every other frame of every thread: variables readable
    d = []
    for t in rep.get("threads") or []:
        for f in py_frames(t):
            if f is frame:
                continue
            if f.get("locals_error") is not None:
                d.append("thread %s, %s (%s:%s): locals_error %r"
                         % (t.get("tid"), f.get("function"), f.get("file"),
                            f.get("line"), f.get("locals_error")))
            elif not isinstance(f.get("arguments"), list) or \
                    not isinstance(f.get("locals"), list):
                d.append("thread %s, %s: no arguments/locals lists"
                         % (t.get("tid"), f.get("function")))
    tap.ok(not d, "%s: every other frame's variables are readable" % tag, d)


def main():
    tap = TAP()
    pystack = programs.pystack()
    if not os.access(pystack, os.X_OK):
        tap.ok(False, "analyzer %s is built" % pystack,
               ["build it first (make), or set PYSTACK"])
        return tap.done()
    try:
        entries = cores.ensure_cores(scenarios=[SCENARIO], verbose=False)
    except Exception as e:
        return tap.skip_all("cannot make test cores: %s: %s"
                            % (type(e).__name__, e))
    interps = cores.find_interpreters()
    for reason in cores.missing_interpreters(interps, system=False):
        tap.skip(reason)
    timeout = float(os.environ.get("PYSTACK_TIMEOUT", "60"))
    only = os.environ.get("PYSTACK_TEST_ONLY")
    rx = re.compile(only) if only else None
    for e in entries:
        tag = "%s %s" % (e.interp.label, e.scenario)
        if e.scenario != SCENARIO or (rx and not rx.search(tag)):
            continue
        if e.status == "skip":
            tap.skip("%s: %s" % (tag, e.message))
            continue
        if e.status != "ok":
            tap.ok(False, "%s: core generation" % tag, [e.message])
            continue
        res = run_pystack(["core", e.core, "--json", "--locals"] + e.pystack_args, timeout)
        try:
            report(tap, e, res)
        except Exception as ex:  # a malformed report must not kill the test
            tap.ok(False, "%s: checker" % tag,
                   ["checker raised %s: %s" % (type(ex).__name__, ex)])
    tap.diag("%d tests, %d failed, %d skipped"
             % (tap.n, tap.failed, tap.skipped))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
