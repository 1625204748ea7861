#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: a crash inside a subinterpreter, on every installed CPython that
has one (3.8+: _xxsubinterpreters, 3.13+: _interpreters).

The scenario (scenarios/subinterpreters.py) runs code in interpreter N from
the thread "sub-runner" and aborts there while the main thread waits.  The
report must show PyStack 1.7's form for several interpreters: one
"Traceback for thread" header per OS thread, then "  In the main
interpreter [..]" / "  In interpreter N [..]" with the frames each
interpreter ran, outermost first; in JSON every thread entry names its
interpreter_id, and only the innermost entry of the crashed thread is the
crashed one.  With --native each interpreter's entry gets its own part of
the one native stack (3.10+; up to 3.9 nothing in the core says which
thread runs a borrowed thread state, see below).

Environment: as test_stacks.py (PYSTACK, PYSTACK_TEST_CORES, PYSTACK_TIMEOUT,
PYSTACK_SID_TREE).
"""
from __future__ import print_function

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cores  # noqa: E402
from harness import programs  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP  # noqa: E402


def version(entry):
    return tuple(int(x) for x in entry.interp.minor.split("."))


def borrowed_tstate_unknown(entry):
    """3.8 and 3.9: _xxsubinterpreters.run_string borrows the thread state
    the creating thread made, which names that thread, and neither the
    thread state nor the heap frames point into the running thread's C
    stack (3.10+ keep the eval loop's CFrame there)."""
    return version(entry) < (3, 10)


def key(t):
    return (t.get("tid"), t.get("interpreter_id", t.get("interpreter")))


def frame_lines(frames):
    out = []
    for f in frames:
        out.append('    (Python) File "%s", line %d, in %s'
                   % (f["file"], f["line"], f["function"]))
        if f.get("source"):
            out.append("        " + f["source"])
    return out


def expected_text(exp):
    """The thread blocks, as PyStack 1.7 prints several interpreters."""
    lines = []
    order = []
    for t in exp["threads"]:
        if t["tid"] not in order:
            order.append(t["tid"])
    order.sort(key=lambda tid: tid != exp["crash_tid"])
    for tid in order:
        if lines:
            lines.append("")
        lines.append("Traceback for thread %d (most recent call last):" % tid)
        for t in [t for t in exp["threads"] if t["tid"] == tid]:
            where = ("In the main interpreter" if t["interpreter"] == 0
                     else "In interpreter %d" % t["interpreter"])
            lines.append("  %s [%s]" % (where, "Has the GIL" if t["has_gil"] else ""))
            lines += frame_lines(t["frames"])
    return lines


def py_frames(t):
    return [{"file": f.get("file"), "line": f.get("line"), "function": f.get("function")}
            for f in t.get("frames") or [] if f.get("kind", "python") == "python"]


def check_json(exp, rep, entry):
    d = []
    got = rep.get("threads") or []
    want = exp["threads"]
    if [key(t) for t in got] != [key(t) for t in sorted(
            want, key=lambda t: (t["tid"] != exp["crash_tid"],))]:
        d.append("thread entries (tid, interpreter_id): expected %r, got %r"
                 % ([key(t) for t in want], [key(t) for t in got]))
    byk = dict((key(t), t) for t in got)
    for t in want:
        g = byk.get(key(t))
        if g is None:
            continue
        ef = [{"file": f["file"], "line": f["line"], "function": f["function"]}
              for f in t["frames"]]
        if py_frames(g) != ef:
            d.append("thread %d in interpreter %d: frames %r, expected %r"
                     % (t["tid"], t["interpreter"], py_frames(g), ef))
        if g.get("crashed") is not t["crashed"]:
            d.append("thread %d in interpreter %d: crashed %r, expected %r"
                     % (t["tid"], t["interpreter"], g.get("crashed"), t["crashed"]))
        if g.get("has_gil") is not t["has_gil"]:
            d.append("thread %d in interpreter %d: has_gil %r, expected %r"
                     % (t["tid"], t["interpreter"], g.get("has_gil"), t["has_gil"]))
    return d


def check_text(exp, res):
    if res.rc != 0:
        return ["exit status %r" % res.rc] + res.describe()
    lines = res.out.rstrip("\n").split("\n")
    at = next((i for i, l in enumerate(lines)
               if l.startswith("Traceback for thread")), len(lines))
    want = expected_text(exp)
    have = lines[at:]
    if have == want:
        return []
    i = next((i for i in range(min(len(want), len(have)))
              if want[i] != have[i]), min(len(want), len(have)))
    return ["text differs at thread line %d of %d (got %d)" % (i + 1, len(want), len(have)),
            "  expected: %r" % (want[i] if i < len(want) else "<end>"),
            "       got: %r" % (have[i] if i < len(have) else "<end>")]


def native_names(t):
    return [f.get("function") for f in t.get("frames") or []
            if f.get("kind") == "native"]


def check_native(exp, rep, res_text, entry):
    """The crashed thread's native stack, split between its interpreters:
    abort() only in the innermost part, both parts merged."""
    d = []
    parts = [t for t in rep.get("threads") or [] if t.get("tid") == exp["crash_tid"]]
    if len(parts) != 2:
        return ["crashed thread: %d entries, expected 2" % len(parts)]
    outer, inner = parts
    if "abort" not in native_names(inner):
        d.append("innermost part lacks abort(): %r" % native_names(inner))
    if "abort" in native_names(outer):
        d.append("outer part has abort(): %r" % native_names(outer))
    for name, t in (("outer", outer), ("inner", inner)):
        if t.get("merged") is not True:
            d.append("%s part: merged %r (native_error %r)"
                     % (name, t.get("merged"), t.get("native_error")))
    block = res_text.out.split("Traceback for thread %d " % exp["crash_tid"], 1)[-1]
    block = block.split("\nTraceback for thread", 1)[0]
    if "Unable to merge native stack" in block:
        d.append("the crashed thread's text says it could not merge")
    return d


def main():
    tap = TAP()
    pystack = programs.pystack()
    if not os.access(pystack, os.X_OK):
        tap.ok(False, "analyzer %s is built" % pystack, ["build it first (make), or set PYSTACK"])
        return tap.done()
    try:
        entries = cores.ensure_cores(scenarios=["subinterpreters"], verbose=False)
    except Exception as e:
        return tap.skip_all("cannot make test cores: %s: %s" % (type(e).__name__, e))
    timeout = float(os.environ.get("PYSTACK_TIMEOUT", "60"))
    for e in entries:
        tag = e.interp.label
        if e.status == "skip":
            tap.skip("%s: %s" % (tag, e.message))
            continue
        if e.status != "ok":
            tap.ok(False, "%s: core generation" % tag, [e.message])
            continue
        exp = e.expectation()
        if borrowed_tstate_unknown(e):
            tap.skip("%s: Python %s: which thread runs a subinterpreter's borrowed thread "
                     "state is not in the core (3.10+ only)" % (tag, e.interp.minor))
            continue
        res = run_pystack(["core", e.core, "--json"] + e.pystack_args, timeout)
        rep = None
        try:
            rep = res.json() if res.rc == 0 else None
        except ValueError:
            pass
        tap.ok(rep is not None, "%s: --json runs" % tag, res.describe() if rep is None else [])
        tap.ok(rep is not None and not check_json(exp, rep, e),
               "%s: one entry per thread and interpreter, frames, crashed, GIL" % tag,
               check_json(exp, rep, e) if rep is not None else ["no report"])
        text = run_pystack(["core", e.core] + e.pystack_args, timeout)
        tap.ok(not check_text(exp, text), "%s: text in PyStack 1.7's form for several "
               "interpreters" % tag, check_text(exp, text))
        nrep = run_pystack(["core", e.core, "--native", "--json"] + e.pystack_args, timeout)
        ntext = run_pystack(["core", e.core, "--native"] + e.pystack_args, timeout)
        try:
            nr = nrep.json()
            d = check_native(exp, nr, ntext, e)
        except ValueError:
            d = ["--native --json: not JSON"] + nrep.describe()
        tap.ok(not d, "%s: --native: each interpreter its part of the native stack" % tag, d)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
