#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: every line `pystack core` prints has one of PyStack 1.7's line
shapes, and the lines come in PyStack's order.

The shapes are in pystack-shapes.txt, one regular expression per kind of
line, with the PyStack source each comes from; the lines PyStack does not
print but our analyzer does are listed there apart, as our additions.  For
every cached core of every interpreter (cores.py) and each of the modes
plain, --native, --locals and --native --locals, the test checks that

  * every stdout line matches exactly one shape (source lines and --locals
    items may look alike: the line before them decides),
  * the report is the preamble (executable, the "Core file information"
    block, the failure line) and then thread blocks, and inside a block the
    lines come where PyStack puts them: source lines right after a frame
    line, Arguments/Locals blocks after a frame line and never empty, C
    frames only with --native and, after "Unable to merge ...", only once
    the Python frames are all out (PyStack prints no C frame there; we add
    them after the Python ones: README, differences on purpose),
  * one blank line separates thread blocks, and none ends the report
    (PyStack 1.7.0's print_threads).

A self-check first runs known-bad lines and reports through the same
matcher and expects each to be rejected.

Environment: as test_stacks.py (PYSTACK, PYSTACK_WRAPPER,
PYSTACK_TEST_CORES, PYSTACK_TIMEOUT, PYSTACK_JOBS, PYSTACK_TEST_ONLY).
One TAP line per (interpreter, scenario, mode).
"""
from __future__ import print_function

import collections
import concurrent.futures
import os
import re
import sys
import time

sys.dont_write_bytecode = True   # the source tree may be read-only
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cores  # noqa: E402
from harness import programs  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP  # noqa: E402

SHAPES_FILE = os.path.join(HERE, "pystack-shapes.txt")
MODES = [("plain", []), ("--native", ["--native"]), ("--locals", ["--locals"]),
         ("--native --locals", ["--native", "--locals"])]
MAX_DIAG = 12          # kinds of problem listed per report

FAILURE_LINES = {"died_signal", "died_segv", "died_on_demand"}
BLOCK_STARTS = {"header", "header_multi", "frame_empty"}
INTERP_LINES = {"interp_main", "interp_n", "interp_none", "interp_addr"}
# Our additions that explain a thread before its frames.
THREAD_NOTES = {"exception", "py_missing", "native_missing", "out_of_memory"}
C_FRAMES = {"c_frame", "c_frame_inlined", "c_frame_nodwarf", "c_frame_nosym"}
PREAMBLE_LINES = {"using_exe", "using_exe_given", "core_info", "ps_state",
                  "ps_ids", "ps_creds", "ps_exe"} | FAILURE_LINES
# Every shape the order rules below know; the file must define these and
# no others.
KNOWN = (BLOCK_STARTS | INTERP_LINES | THREAD_NOTES | C_FRAMES | PREAMBLE_LINES
         | {"blank", "unable_to_merge", "py_frame", "source", "vars_args",
            "vars_locals", "var_item", "locals_unavailable"})


class Shapes(object):
    """The shapes of pystack-shapes.txt (see its header for the syntax)."""

    def __init__(self, path=SHAPES_FILE):
        self.rx = collections.OrderedDict()
        self.section = {}
        self.overlaps = set()
        defines = {}
        section = None
        with open(path, encoding="utf-8") as fh:
            for n, raw in enumerate(fh, 1):
                line = raw.rstrip("\n")
                where = "%s:%d" % (os.path.basename(path), n)
                if not line.strip() or line.startswith("#"):
                    continue
                if line.startswith("@define "):
                    name, rx = line[len("@define "):].split(" ", 1)
                    defines[name] = "(?:%s)" % self._expand(rx, defines, where)
                elif line.startswith("@section "):
                    section = line.split(None, 1)[1]
                elif line.startswith("@overlap "):
                    a, b = line.split()[1:]
                    self.overlaps.add(frozenset((a, b)))
                else:
                    name, rx = line.split(None, 1)
                    if not (rx.startswith("^") and rx.endswith("$")):
                        raise ValueError("%s: %s: the regex must be ^...$"
                                         % (where, name))
                    if name in self.rx:
                        raise ValueError("%s: %s defined twice" % (where, name))
                    self.rx[name] = re.compile(
                        self._expand(rx, defines, where), re.ASCII)
                    self.section[name] = section
        for pair in self.overlaps:
            if not pair <= set(self.rx):
                raise ValueError("@overlap names an unknown shape: %s"
                                 % sorted(pair))
        if set(self.rx) != KNOWN:
            raise ValueError("shapes the order rules do not know: %s; "
                             "shapes missing from the file: %s"
                             % (sorted(set(self.rx) - KNOWN),
                                sorted(KNOWN - set(self.rx))))

    @staticmethod
    def _expand(rx, defines, where):
        def sub(m):
            if m.group(1) not in defines:
                raise ValueError("%s: {%s} is not defined" % (where, m.group(1)))
            return defines[m.group(1)]
        return re.sub(r"\{([A-Z]+)\}", sub, rx)

    def matches(self, line):
        """The names of the shapes `line` matches, as bytes (see the file)."""
        b = line.encode("utf-8", "surrogateescape").decode("latin-1")
        return [name for name, rx in self.rx.items() if rx.fullmatch(b)]


def classify(shapes, lines):
    """[(name or None, why)] per line: the one shape it matches.  A line
    that matches two shapes declared @overlap (a source line and a --locals
    item) is an item when it follows an Arguments:/Locals: header or another
    item, and a source line otherwise."""
    out = []
    prev = None
    for line in lines:
        names = shapes.matches(line)
        if len(names) == 2 and frozenset(names) in shapes.overlaps:
            names = ["var_item" if prev in ("vars_args", "vars_locals",
                                            "var_item") else "source"]
        if len(names) == 1:
            out.append((names[0], None))
        elif not names:
            out.append((None, "matches no PyStack 1.7 line shape"))
        else:
            out.append((None, "matches %d shapes (%s): the shapes file is "
                        "ambiguous" % (len(names), ", ".join(names))))
        prev = out[-1][0]
    return out


def check_report(shapes, text, native, with_locals, exe_given=False):
    """The problems of one report: [(line number, line, message)], by line."""
    return sorted(_report_problems(shapes, text, native, with_locals,
                                   exe_given), key=lambda p: p[0])


def _report_problems(shapes, text, native, with_locals, exe_given):
    problems = []
    if not text:
        return [(0, "", "empty report")]
    if not text.endswith("\n"):
        problems.append((0, "", "the last line has no newline"))
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    kinds = classify(shapes, lines)

    def bad(i, msg):
        problems.append((i + 1, lines[i], msg))

    for i, (k, why) in enumerate(kinds):
        if k is None:
            bad(i, why)

    # -- preamble: __main__.py process_core
    using = "using_exe_given" if exe_given else "using_exe"
    want = [{using}, {"blank"}, {"core_info"}, {"ps_state"}, {"ps_ids"},
            {"ps_creds"}, {"ps_exe"}, {"blank"}, FAILURE_LINES]
    i = 0
    for w in want:
        if i >= len(lines):
            problems.append((i + 1, "<end>", "the report ends in its preamble"
                             " (expected %s)" % "/".join(sorted(w))))
            return problems
        # a line of no shape is reported already: take it as the one due
        if kinds[i][0] is not None and kinds[i][0] not in w:
            bad(i, "%s where the preamble has %s"
                % (kinds[i][0], "/".join(sorted(w))))
            while i < len(lines) and kinds[i][0] not in BLOCK_STARTS:
                i += 1          # go on from the first thread block
            break
        i += 1
    if i >= len(lines):
        problems.append((len(lines), lines[-1], "no thread block follows"))
        return problems

    # -- thread blocks: traceback_formatter.py print_threads / format_thread
    multi = kinds[i][0] == "header_multi"
    tids = {}
    block = None        # state of the current block

    def close_vars():
        if block is not None and block["vars_open"] is not None:
            bad(block["vars_open"], "an Arguments:/Locals: header with "
                "nothing under it (format_frame prints none then)")
            block["vars_open"] = None

    def end_block():
        if block is None:
            return
        close_vars()
        if block["kind"] == "header" and not native and \
                not block["py_frames"] and not block["py_missing"]:
            bad(block["start"], "a header with no Python frame (PyStack "
                "prints \"The frame stack for thread N is empty\" instead)")
        if block["kind"] == "header_multi" and not block["sections"]:
            bad(block["start"], "no interpreter line under a header without "
                "status")

    prev = kinds[i - 1][0] if i else None
    for i in range(i, len(lines)):
        k = kinds[i][0]
        if k is None:
            prev = k
            continue
        if k != "var_item":
            close_vars()
        if k == "blank":
            if prev == "blank":
                bad(i, "two blank lines in a row")
            elif i == len(lines) - 1:
                bad(i, "a blank line after the last thread block (1.7.0 "
                    "prints one only between blocks)")
            elif kinds[i + 1][0] not in BLOCK_STARTS and \
                    kinds[i + 1][0] not in (None, "blank"):
                bad(i, "a blank line inside a thread block")
        elif k in BLOCK_STARTS:
            if block is None and prev == "blank":
                bad(i, "a blank line between the failure line and the first"
                    " thread block")
            if block is not None and prev != "blank":
                bad(i, "no blank line before this thread block")
            end_block()
            block = {"kind": k, "start": i, "py_frames": 0, "sections": 0,
                     "py_missing": False, "unable": False, "frames": False,
                     "vars_open": None, "vars": None}
            if k == "frame_empty" and native:
                bad(i, "\"is empty\" in native mode (format_thread prints "
                    "the header then)")
            if (k == "header_multi") != multi and k != "frame_empty":
                bad(i, "headers with and without status in one report")
            if k == "frame_empty" and multi:
                bad(i, "\"is empty\" with several interpreters")
            tid = re.search(r"thread (\d+)", lines[i]).group(1)
            if tid in tids and tid != "0":
                bad(i, "thread %s has a block already (line %d): one TID, "
                    "one block" % (tid, tids[tid] + 1))
            tids.setdefault(tid, i)
        elif block is None:
            bad(i, "%s before the first thread block" % k)
        elif block["kind"] == "frame_empty":
            bad(i, "%s after \"The frame stack for thread N is empty\"" % k)
        elif k in PREAMBLE_LINES:
            bad(i, "a preamble line (%s) inside a thread block" % k)
        elif k in INTERP_LINES:
            if not multi:
                bad(i, "an interpreter line with only one interpreter "
                    "(the header carries the status then)")
            elif block["sections"] == 0 and prev != "header_multi":
                bad(i, "the interpreter line must follow the header")
            block["sections"] += 1
            block["unable"] = block["frames"] = block["c_frames"] = False
        elif block["kind"] == "header_multi" and block["sections"] == 0:
            bad(i, "%s before the interpreter line" % k)
        elif k in THREAD_NOTES or k == "unable_to_merge":
            if block["frames"] or block["unable"]:
                bad(i, "%s after the thread's frames began" % k)
            if k == "unable_to_merge":
                if not native:
                    bad(i, "\"Unable to merge\" without --native")
                block["unable"] = True
            block["py_missing"] |= k == "py_missing"
        elif k == "py_frame":
            if block["unable"] and block.get("c_frames"):
                bad(i, "a Python frame after a C frame below \"Unable to merge\" "
                    "(the Python frames come first, then the unmerged C ones)")
            block["py_frames"] += 1
            block["frames"] = True
        elif k in C_FRAMES:
            if not native:
                bad(i, "a C frame without --native")
            block["c_frames"] = True
            block["frames"] = True
        elif k == "source":
            if prev != "py_frame":
                bad(i, "a source line not right after a (Python) frame line")
        elif k in ("vars_args", "vars_locals", "locals_unavailable"):
            if not with_locals:
                bad(i, "%s without --locals" % k)
            after = {"py_frame", "source"}
            if k == "vars_locals":
                after.add("var_item")
            if prev not in after:
                bad(i, "%s not right after a (Python) frame line%s"
                    % (k, " or its Arguments" if k == "vars_locals" else ""))
            elif k == "vars_locals" and prev == "var_item" and \
                    block["vars"] != "vars_args":
                bad(i, "Locals: twice for one frame")
            if k != "locals_unavailable":
                block["vars_open"] = i
                block["vars"] = k
        elif k == "var_item":
            block["vars_open"] = None   # classify() saw the header before
        prev = k
    end_block()
    return problems


# --------------------------------------------------------------------------
# self-check: the matcher must be able to say no

PREAMBLE = """\
Using executable found in the core file: /usr/bin/python3.8

Core file information:
state: t zombie: True niceness: 0
pid: 570 ppid: 1 sid: 1
uid: 0 gid: 0 pgrp: 570
executable: python3.8 arguments: python3.8 test.py

The process died due receiving signal SIGSTOP
"""
# docs/corefile.rst's example, with a second thread and the 1.7.0 blank line
GOOD_PLAIN = PREAMBLE + """\
Traceback for thread 570 [Has the GIL,Garbage collecting] (most recent call last):
    (Python) File "/test.py", line 19, in <module>
        first_func({1: None}, [1,2,3])

The frame stack for thread 571 is empty
"""
GOOD_NATIVE_LOCALS = PREAMBLE + """\
Traceback for thread 570 [Waiting for the GIL] (most recent call last):
    (C) File "???", line 0, in _start (/usr/bin/python3.8)
    (C) File "Modules/main.c", line 743, in Py_BytesMain (/usr/lib/libpython3.8.so.1.0)
    (C) File "Modules/main.c", line 610, in pymain_run_python (inlined) (/usr/lib/libpython3.8.so.1.0)
    (Python) File "/test.py", line 19, in <module>
        first_func({1: None}, [1,2,3])
      Arguments:
        x: 1
      Locals:
        y: "two"
    (C) File "/usr/lib/libc.so.6", line 0, in ??? (/usr/lib/libc.so.6)

Traceback for thread 571 [] (most recent call last):
* - Unable to merge native stack due to insufficient native information - *
    (Python) File "/test.py", line 3, in f
"""
GOOD_MULTI = PREAMBLE + """\
Traceback for thread 392464 (InterpreterPool) (most recent call last):
  In the main interpreter []
    (Python) File "/usr/lib/python3.14/threading.py", line 1044, in _bootstrap
  In interpreter 2 [Has the GIL]
    (Python) File "/tmp/interpreter_demo.py", line 14, in interpreter2_body

Traceback for thread 392462 (most recent call last):
  In the main interpreter []
"""

BAD_LINES = [
    ("two status brackets",
     "Traceback for thread 1 [Has the GIL] [Garbage collecting] (most recent call last):"),
    ("a space after the status comma",
     "Traceback for thread 1 [Has the GIL, Garbage collecting] (most recent call last):"),
    ("statuses out of order",
     "Traceback for thread 1 [Garbage collecting,Has the GIL] (most recent call last):"),
    ("no status bracket and no colon",
     "Traceback for thread 1 (most recent call last)"),
    ("a frame line with 3 spaces", '   (Python) File "x.py", line 1, in f'),
    ("a frame line with 5 spaces", '     (Python) File "x.py", line 1, in f'),
    ("a frame line without quotes", '    (Python) File x.py, line 1, in f'),
    ("a C frame without its library", '    (C) File "x.c", line 1, in f'),
    ("a C frame with no symbol", '    (C) File "???", line 0, in  (libc.so.6)'),
    ("an unresolved C symbol whose file is not the library",
     '    (C) File "???", line 0, in ??? (libc.so.6)'),
    ("zombie: neither True nor False", "state: R zombie: 0 niceness: 0"),
    ("psargs with the kernel's trailing space (we trim it)",
     "executable: python3 arguments: python3 test.py "),
    ("a source line with trailing spaces", "        x = 1   "),
    ("a Locals header with 4 spaces", "    Locals:"),
    ("a signal by number", "The process died due receiving signal 34"),
]

BAD_REPORTS = [
    ("a blank line after the last block", GOOD_PLAIN + "\n", False, False),
    ("two blank lines between blocks",
     GOOD_PLAIN.replace("\n\nThe frame", "\n\n\nThe frame"), False, False),
    ("no blank line between blocks",
     GOOD_PLAIN.replace("\n\nThe frame", "\nThe frame"), False, False),
    ("a blank line before the first block",
     GOOD_PLAIN.replace("SIGSTOP\n", "SIGSTOP\n\n"), False, False),
    ("a source line right after the header",
     PREAMBLE + "Traceback for thread 1 [] (most recent call last):\n"
     "        x = 1\n", True, False),
    ("Locals: after the header, no frame",
     PREAMBLE + "Traceback for thread 1 [] (most recent call last):\n"
     "      Locals:\n        x: 1\n", True, True),
    ("an empty Arguments: block",
     GOOD_NATIVE_LOCALS.replace("        x: 1\n", ""), True, True),
    ("a Python frame after a C frame below Unable to merge",
     GOOD_NATIVE_LOCALS + '    (C) File "???", line 0, in f (libc.so.6)\n'
     '    (Python) File "/t.py", line 2, in g\n', True, True),
    ("C frames in plain mode", GOOD_NATIVE_LOCALS, False, True),
    ("Arguments: without --locals", GOOD_NATIVE_LOCALS, True, False),
    ("Unable to merge in plain mode",
     PREAMBLE + "Traceback for thread 1 [] (most recent call last):\n"
     "* - Unable to merge native stack due to insufficient native information - *\n"
     '    (Python) File "/t.py", line 1, in f\n', False, False),
    ("a header without Python frames in plain mode",
     PREAMBLE + "Traceback for thread 1 [] (most recent call last):\n",
     False, False),
    ("is empty in native mode",
     PREAMBLE + "The frame stack for thread 1 is empty\n", True, False),
    ("no preamble",
     "Traceback for thread 1 [] (most recent call last):\n"
     '    (Python) File "/t.py", line 1, in f\n', False, False),
    ("a status-less header with one interpreter",
     PREAMBLE + "Traceback for thread 1 (most recent call last):\n"
     '    (Python) File "/t.py", line 1, in f\n', False, False),
    ("the same TID twice",
     GOOD_PLAIN.replace("thread 571", "thread 570"), False, False),
]


def self_check(tap, shapes):
    for desc, line in BAD_LINES:
        k = classify(shapes, [line])[0][0]
        tap.ok(k is None, "self-check: rejects %s" % desc,
               ["line %r was taken as %s" % (line, k)])
    for desc, text, native, with_locals in BAD_REPORTS:
        p = check_report(shapes, text, native, with_locals)
        tap.ok(bool(p), "self-check: rejects %s" % desc,
               ["the report was accepted:"] + ["  | " + l for l in
                                               text.splitlines()])
    for desc, text, native, with_locals in [
            ("the documented core report", GOOD_PLAIN, False, False),
            ("a native --locals report", GOOD_NATIVE_LOCALS, True, True),
            ("a report of two interpreters", GOOD_MULTI, False, False)]:
        p = check_report(shapes, text, native, with_locals)
        tap.ok(not p, "self-check: accepts %s" % desc,
               ["line %d: %s: %r" % (n, m, l) for n, l, m in p])


# --------------------------------------------------------------------------

def run(entry, args, timeout):
    return run_pystack(["core", entry.core] + args + entry.pystack_args,
                       timeout)


def report(tap, shapes, entry, mode, args, res, tally):
    tag = "%s %s %s" % (entry.interp.label, entry.scenario, mode)
    native = "--native" in args
    with_locals = "--locals" in args
    if res.timed_out or res.rc != 0:
        return tap.ok(False, "%s: PyStack line shapes" % tag,
                      ["exit status %r, expected 0" % res.rc] + res.describe())
    problems = check_report(shapes, res.out, native, with_locals)
    # One diagnostic per kind of problem (its first line), so that a
    # problem on every C frame does not hide a rarer one.
    kinds = collections.OrderedDict()
    for n, line, msg in problems:
        key = "%s: %r" % (re.sub(r"[0-9]+", "N", msg),
                          re.sub(r"[0-9]+", "N", line)[:72])
        tally[key] += 1
        kinds.setdefault(key, []).append((n, line, msg))
    d = []
    if problems:
        d.append("core %s, mode %s: %d problem(s) in %d stdout lines"
                 % (entry.core, mode, len(problems), len(res.out.splitlines())))
    for key, same in list(kinds.items())[:MAX_DIAG]:
        n, line, msg = same[0]
        more = " (and %d more like it)" % (len(same) - 1) if len(same) > 1 \
            else ""
        d.append("line %d: %s: %r%s" % (n, msg, line, more))
    if len(kinds) > MAX_DIAG:
        d.append("... and %d more kinds" % (len(kinds) - MAX_DIAG))
    return tap.ok(not problems, "%s: PyStack line shapes" % tag, d)


def main():
    tap = TAP()
    t0 = time.time()
    try:
        shapes = Shapes()
    except (OSError, ValueError, re.error) as e:
        tap.ok(False, "%s loads" % SHAPES_FILE, [str(e)])
        return tap.done()
    self_check(tap, shapes)
    pystack = programs.pystack()
    if not os.access(pystack, os.X_OK):
        tap.ok(False, "analyzer %s is built" % pystack,
               ["build it first (make), or set PYSTACK"])
        return tap.done()
    try:
        entries = cores.ensure_cores(verbose=False)
    except Exception as e:
        tap.skip("cannot make test cores: %s: %s" % (type(e).__name__, e))
        return tap.done()
    for reason in cores.missing_interpreters([e.interp for e in entries]):
        tap.skip(reason)
    timeout = float(os.environ.get("PYSTACK_TIMEOUT", "60"))
    jobs = int(os.environ.get("PYSTACK_JOBS", "4"))
    only = os.environ.get("PYSTACK_TEST_ONLY")
    rx = re.compile(only) if only else None
    chosen = [e for e in entries
              if not rx or rx.search("%s %s" % (e.interp.label, e.scenario))]
    tally = collections.Counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        futs = dict(((e, mode), ex.submit(run, e, args, timeout))
                    for e in chosen if e.status == "ok"
                    for mode, args in MODES)
        for e in chosen:
            tag = "%s %s" % (e.interp.label, e.scenario)
            if e.status == "skip":
                tap.skip("%s: %s" % (tag, e.message))
                continue
            if e.status != "ok":
                tap.ok(False, "%s: core generation" % tag, [e.message])
                continue
            for mode, args in MODES:
                report(tap, shapes, e, mode, args, futs[(e, mode)].result(),
                       tally)
    if tally:
        tap.diag("the most common problems over all reports (digits as N):")
        for msg, n in tally.most_common(15):
            tap.diag("  %6d  %s" % (n, msg))
    tap.diag("%d tests, %d failed, %d skipped in %.0fs"
             % (tap.n, tap.failed, tap.skipped, time.time() - t0))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
