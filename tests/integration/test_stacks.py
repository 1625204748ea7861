#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: `pystack core CORE --json` (and the text mode) on real cores of
every installed CPython, checked against what the crashing programs knew.

Environment:
  PYSTACK             analyzer to test (default: harness/programs.py)
  PYSTACK_WRAPPER     command prefix, e.g. "valgrind -q --error-exitcode=99"
  PYSTACK_TEST_CORES  core cache (default tests/integration/cores-cache)
  PYSTACK_TIMEOUT     seconds per pystack run (default 60)
  PYSTACK_JOBS        parallel pystack runs (default 4)
  PYSTACK_TEST_ONLY   regular expression: only the cores whose
                      "<interpreter label> <scenario>" it matches (searched),
                      e.g. "3\.12.*threads"; the others are reported as SKIP

One TAP line per (interpreter, scenario, aspect).  Exit status 0 unless the
harness itself broke.
"""
from __future__ import print_function

import concurrent.futures
import json
import os
import re
import sys

sys.dont_write_bytecode = True   # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cores  # noqa: E402
from harness import programs  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP  # noqa: E402

ASPECTS = ["runs", "process", "signal", "threads", "frames", "source",
           "gil", "gc", "text"]
SIGNUMS = {"SIGABRT": 6, "SIGSEGV": 11, "SIGBUS": 7, "SIGFPE": 8,
           "SIGILL": 4, "SIGKILL": 9, "SIGTERM": 15}


def fmt_frame(f):
    return '%s:%s in %s' % (f.get("file"), f.get("line"), f.get("function"))


def compare_frames(tag, exp, got, keys=("file", "line", "function")):
    """Diagnostic lines for differences between two frame lists (outermost
    first); [] when equal on `keys`."""
    diag = []
    mism = [i for i in range(min(len(exp), len(got)))
            if any(exp[i].get(k) != got[i].get(k) for k in keys)]
    if len(exp) != len(got):
        diag.append("%s: expected %d frames, got %d"
                    % (tag, len(exp), len(got)))
    if mism:
        diag.append("%s: %d frame(s) differ, first at index %d (0 = outermost)"
                    % (tag, len(mism), mism[0]))
        for i in mism[:6]:
            e, g = exp[i], got[i]
            if keys == ("source",):
                diag.append("  [%d] %s: expected source %r, got %r"
                            % (i, fmt_frame(e), e.get("source"),
                               g.get("source")))
            else:
                note = ""
                if g.get("function") == e.get("qualname") and \
                        e.get("qualname") != e.get("function"):
                    note = "  (got co_qualname, expected co_name)"
                diag.append("  [%d] expected %s" % (i, fmt_frame(e)))
                diag.append("  [%d]      got %s%s" % (i, fmt_frame(g), note))
    if len(exp) != len(got) and not mism:
        n = min(len(exp), len(got))
        longer, which = (exp, "missing") if len(exp) > len(got) else \
            (got, "unexpected")
        for i in range(n, min(len(longer), n + 4)):
            diag.append("  [%d] %s %s" % (i, which, fmt_frame(longer[i])))
        if n and len(exp) > len(got):
            diag.append("  last frame got: %s" % fmt_frame(got[n - 1]))
    return diag


def py_frames(thread):
    return [f for f in (thread.get("frames") or [])
            if f.get("kind", "python") == "python"]


# --------------------------------------------------------------------------
# aspects of the JSON report

def expected_script(exp):
    """What the report should name the program: the rule of cmdline_script() over pr_psargs,
    whose last argument is not used when the kernel may have cut it (79 bytes)."""
    args = exp["psargs"].split(" ")
    if len(exp["psargs"]) >= 79 and len(args) > 1:
        args = args[:-1]
    i = 1
    while i < len(args):
        a = args[i]
        if a.startswith("-c"):
            return "-c"
        if a.startswith("-m"):
            module = a[2:] or (args[i + 1] if i + 1 < len(args) else "")
            return "-m " + module if module else "-m"
        if a in ("-W", "-X"):
            i += 2
            continue
        if a == "-" or not a.startswith("-"):
            return "-" if a == "-" else os.path.basename(a)
        i += 1
    return exp["comm"]


def check_derived(exp, rep):
    """What the analyzer derives for the whole crash (schema 2)."""
    d = []
    if rep.get("core_truncated") is not False:
        d.append("core_truncated: expected false, got %r" % rep.get("core_truncated"))
    if not re.match(r"^[0-9a-f]{16}$", rep.get("signature") or ""):
        d.append("signature %r is not 16 hex digits" % rep.get("signature"))
    if not (rep.get("summary") or "").startswith(exp["signal"]):
        d.append("summary %r does not start with %s" % (rep.get("summary"), exp["signal"]))
    if rep.get("script") != expected_script(exp):
        d.append("script: expected %r (from psargs %r), got %r"
                 % (expected_script(exp), exp["psargs"], rep.get("script")))
    threads = rep.get("threads") or []
    crashed = next((t for t in threads if t.get("crashed")), threads[0] if threads else {})
    py = [f for f in crashed.get("frames") or [] if f.get("kind") == "python"]
    want = {"function": py[-1]["function"], "file": py[-1]["file"], "line": py[-1]["line"]} if py else None
    if rep.get("frame") != want:
        d.append("frame: expected the crashed thread's innermost Python frame %r, got %r"
                 % (want, rep.get("frame")))
    if not isinstance(rep.get("multiple_interpreters"), bool):
        d.append("multiple_interpreters %r is not a boolean" % rep.get("multiple_interpreters"))
    return d


def check_process(exp, rep, entry):
    d = []
    proc = rep.get("process") or {}
    want = {"pid": exp["pid"], "ppid": exp["ppid"], "uid": exp["uid"],
            "gid": exp["gid"], "comm": exp["comm"]}
    for k, v in sorted(want.items()):
        if proc.get(k) != v:
            d.append("process.%s: expected %r, got %r" % (k, v, proc.get(k)))
    if (proc.get("args") or "").rstrip() != exp["psargs"].rstrip():
        d.append("process.args: expected %r, got %r"
                 % (exp["psargs"], proc.get("args")))
    if rep.get("schema_version") != 2:
        d.append("schema_version: expected 2, got %r"
                 % rep.get("schema_version"))
    d += check_derived(exp, rep)
    if rep.get("executable") != exp["executable"]:
        d.append("executable: expected %r, got %r"
                 % (exp["executable"], rep.get("executable")))
    if rep.get("executable_source") != "core":
        d.append("executable_source: expected 'core', got %r"
                 % rep.get("executable_source"))
    mm = ".".join(exp["python_version"].split(".")[:2])
    if rep.get("python_version") != mm:
        d.append("python_version: expected %r, got %r"
                 % (mm, rep.get("python_version")))
    if rep.get("free_threaded") is not exp["free_threaded"]:
        d.append("free_threaded: expected %s, got %r"
                 % (json.dumps(exp["free_threaded"]), rep.get("free_threaded")))
    return d


def check_signal(exp, rep, entry):
    sig = rep.get("signal") or {}
    d = []
    if sig.get("name") != exp["signal"]:
        d.append("signal.name: expected %r, got %r"
                 % (exp["signal"], sig.get("name")))
    if sig.get("number") != SIGNUMS.get(exp["signal"]):
        d.append("signal.number: expected %r, got %r"
                 % (SIGNUMS.get(exp["signal"]), sig.get("number")))
    if exp["signal"] == "SIGSEGV":
        # a kernel-sent SEGV_MAPERR: string_at(0) reads address 0; the
        # tutorial's bug takes a reference to a NULL object, whose count is
        # at 0, or in a free-threaded build at 12 (ob_ref_local)
        fault = 12 if (exp.get("free_threaded") and
                       exp.get("scenario") == "tutorial_bug") else 0
        want = {"code": 1, "fault_address": fault, "sender_pid": None}
    else:
        # abort() -> raise() -> tgkill(): SI_TKILL from the process itself
        want = {"code": -6, "fault_address": None, "sender_pid": exp["pid"]}
    if entry.emulated:
        # qemu-user's cores have no NT_SIGINFO: what it would say is unknown, and said so
        want = {"code": None, "fault_address": None, "sender_pid": None}
    for k, v in sorted(want.items()):
        if sig.get(k) != v:
            d.append("signal.%s: expected %r, got %r" % (k, v, sig.get(k)))
    return d


def check_threads(exp, rep, entry):
    d = []
    threads = rep.get("threads") or []
    got = dict((t.get("tid"), t) for t in threads)
    want = dict((t["tid"], t) for t in exp["threads"])
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    if missing:
        d.append("threads missing from the report: %s (expected %d threads,"
                 " got %d)" % (", ".join(
                     "%d (%s)" % (t, want[t]["name"]) for t in missing),
                     len(want), len(got)))
    if extra:
        d.append("unexpected threads in the report: %s"
                 % ", ".join(str(t) for t in extra))
    if len(got) != len(threads):
        d.append("duplicate tids in the report")
    crashed = [t.get("tid") for t in threads if t.get("crashed")]
    if crashed != [exp["crash_tid"]]:
        d.append("crashed thread(s): expected [%d], got %r"
                 % (exp["crash_tid"], crashed))
    if threads and threads[0].get("tid") != exp["crash_tid"]:
        d.append("first thread: expected the crashed one (%d), got %r"
                 % (exp["crash_tid"], threads[0].get("tid")))
    for tid in sorted(set(want) & set(got)):
        g = got[tid]
        if g.get("python") is not True:
            d.append("thread %d: python: expected true, got %r"
                     % (tid, g.get("python")))
        if g.get("pthread_id") != want[tid]["ident"]:
            d.append("thread %d: pthread_id: expected %d (threading ident),"
                     " got %r" % (tid, want[tid]["ident"],
                                  g.get("pthread_id")))
    return d


def check_frames(exp, rep, entry):
    d = []
    got = dict((t.get("tid"), t) for t in rep.get("threads") or [])
    for t in exp["threads"]:
        g = got.get(t["tid"])
        if g is None:
            d.append("thread %d (%s): not in the report" % (t["tid"], t["name"]))
            continue
        d += compare_frames("thread %d (%s)" % (t["tid"], t["name"]),
                            t["frames"], py_frames(g))
        if g.get("truncated") is not None:
            d.append("thread %d: truncated: expected null, got %r"
                     % (t["tid"], g.get("truncated")))
    return d


def check_source(exp, rep, entry):
    d = []
    got = dict((t.get("tid"), t) for t in rep.get("threads") or [])
    for t in exp["threads"]:
        g = got.get(t["tid"])
        if g is None:
            d.append("thread %d: not in the report" % t["tid"])
            continue
        gf = py_frames(g)
        if len(gf) != len(t["frames"]):
            d.append("thread %d: frame count differs (see frames)" % t["tid"])
            continue
        d += compare_frames("thread %d (%s)" % (t["tid"], t["name"]),
                            t["frames"], gf, keys=("source",))
    return d


def check_gil(exp, rep, entry):
    d = []
    got = dict((t.get("tid"), t) for t in rep.get("threads") or [])
    for t in exp["threads"]:
        g = got.get(t["tid"])
        if g is None:
            d.append("thread %d: not in the report" % t["tid"])
        elif g.get("has_gil") is not t["has_gil"]:
            d.append("thread %d (%s%s): has_gil: expected %s, got %r"
                     % (t["tid"], t["name"], ", crashed" if t["crashed"]
                        else ", blocked", json.dumps(t["has_gil"]),
                        g.get("has_gil")))
    return d


def check_gc(exp, rep, entry):
    d = []
    got = dict((t.get("tid"), t) for t in rep.get("threads") or [])
    for t in exp["threads"]:
        if t.get("gc_collecting") is None:
            continue
        g = got.get(t["tid"])
        if g is None:
            d.append("thread %d: not in the report" % t["tid"])
        elif g.get("gc_collecting") is not t["gc_collecting"]:
            d.append("thread %d (%s): gc_collecting: expected %s, got %r%s"
                     % (t["tid"], t["name"], json.dumps(t["gc_collecting"]),
                        g.get("gc_collecting"),
                        " (crash inside %s)" % (exp.get("notes") or {}).get("via")
                        if t["gc_collecting"] else ""))
    return d


# --------------------------------------------------------------------------
# text mode

def shows_exception(entry):
    """Versions whose debug offsets publish the thread's exception (3.15+)."""
    return tuple(int(x) for x in entry.interp.minor.split(".")) >= (3, 15)


def check_exception(exp, rep, entry):
    d = []
    got = dict((t.get("tid"), t) for t in rep.get("threads") or [])
    for t in exp["threads"]:
        g = got.get(t["tid"])
        if g is None:
            continue
        want = t.get("exception") if shows_exception(entry) else None
        if g.get("exception") != want:
            d.append("thread %d: exception %r, expected %r"
                     % (t["tid"], g.get("exception"), want))
    return d


def expected_frame_lines(frames, exception=None):
    lines = []
    if exception:
        lines.append("    Exception: %s%s" % (exception["text"],
                                            " (being handled)"
                                            if exception["handled"] else ""))
    for f in frames:
        lines.append('    (Python) File "%s", line %d, in %s'
                     % (f["file"], f["line"], f["function"]))
        if f.get("source"):
            lines.append("        " + f["source"])
    return lines


# PyStack 1.7's header: every status in one bracket, comma-joined, [] for none
THREAD_RE = re.compile(r"^Traceback for thread (\d+) \[([^\]]*)\] "
                       r"\(most recent call last\):$")
STATUS_WORDS = ("Thread terminated", "Has the GIL", "Waiting for the GIL",
                "Dropping the GIL", "Garbage collecting")


def check_text(exp, res, entry):
    d = []
    if res.rc != 0:
        return ["exit status %r (expected 0)" % res.rc] + res.describe()
    lines = res.out.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    head = [
        ("line 1", "^" + re.escape("Using executable found in the core file: "
                                   + exp["executable"]) + "$"),
        ("line 2", "^$"),
        ("line 3", "^Core file information:$"),
        ("line 4", r"^state: \S+ zombie: (True|False) niceness: -?\d+$"),
        ("line 5", r"^pid: %d ppid: %d sid: \d+$" % (exp["pid"], exp["ppid"])),
        ("line 6", r"^uid: %d gid: %d pgrp: \d+$" % (exp["uid"], exp["gid"])),
        ("line 7", "^" + re.escape("executable: %s arguments: %s"
                                   % (exp["comm"], exp["psargs"].rstrip()))
         + " *$"),
        ("line 8", "^$"),
        ("line 9", "^" + re.escape("The process died due receiving signal "
                                   + exp["signal"]) + "$"),
    ]
    for i, (what, rx) in enumerate(head):
        got = lines[i] if i < len(lines) else None
        if got is None or not re.match(rx, got):
            d.append("%s: expected /%s/, got %r" % (what, rx, got))
    # thread blocks
    blocks = []
    cur = None
    for line in lines[len(head):]:
        m = THREAD_RE.match(line)
        if m:
            cur = {"tid": int(m.group(1)),
                   "flags": m.group(2).split(",") if m.group(2) else [],
                   "lines": [], "header": line}
            bad = [w for w in cur["flags"] if w not in STATUS_WORDS]
            if bad:
                d.append("thread %d: status words not PyStack's: %r"
                         % (cur["tid"], bad))
            blocks.append(cur)
        elif cur is not None:
            cur["lines"].append(line)
        elif line.strip():
            d.append("unexpected line before the first thread: %r" % line)
    for i, b in enumerate(blocks):
        blank = 0
        while b["lines"] and b["lines"][-1] == "":
            b["lines"].pop()
            blank += 1
        if i < len(blocks) - 1 and blank != 1:
            d.append("thread %d: followed by %d blank lines, expected 1"
                     % (b["tid"], blank))
    got = dict((b["tid"], b) for b in blocks)
    if blocks and blocks[0]["tid"] != exp["crash_tid"]:
        d.append("first thread block: expected %d (crashed), got %d"
                 % (exp["crash_tid"], blocks[0]["tid"]))
    want_tids = set(t["tid"] for t in exp["threads"])
    extra = sorted(set(got) - want_tids)
    if extra:
        d.append("unexpected thread blocks: %s" % extra)
    for t in exp["threads"]:
        b = got.get(t["tid"])
        if b is None:
            d.append("thread %d (%s): no 'Traceback for thread' line"
                     % (t["tid"], t["name"]))
            continue
        flags = []
        if t["has_gil"]:
            flags.append("Has the GIL")
        if t.get("gc_collecting"):
            flags.append("Garbage collecting")
        bf = b["flags"]
        if t.get("gc_collecting") is None:     # not checked for this thread
            bf = [f for f in bf if f != "Garbage collecting"]
        if bf != flags:
            d.append("thread %d: header %r, expected flags %r"
                     % (t["tid"], b["header"], flags))
        want = expected_frame_lines(
            t["frames"], t.get("exception") if shows_exception(entry) else None)
        have = b["lines"]
        if want != have:
            first = next((i for i in range(min(len(want), len(have)))
                          if want[i] != have[i]), min(len(want), len(have)))
            d.append("thread %d (%s): traceback differs at line %d of %d "
                     "(got %d lines)" % (t["tid"], t["name"], first + 1,
                                         len(want), len(have)))
            d.append("  expected: %r" % (want[first] if first < len(want)
                                         else "<end>"))
            d.append("       got: %r" % (have[first] if first < len(have)
                                         else "<end>"))
    return d


CHECKS = [("process", check_process), ("signal", check_signal),
          ("threads", check_threads), ("frames", check_frames),
          ("source", check_source), ("gil", check_gil), ("gc", check_gc),
          ("exception", check_exception)]


def analyse(entry, timeout):
    res_json = run_pystack(["core", entry.core, "--json"] + entry.pystack_args, timeout)
    res_text = run_pystack(["core", entry.core] + entry.pystack_args, timeout)
    return res_json, res_text


def report_entry(tap, entry, res_json, res_text):
    tag = "%s %s" % (entry.interp.label, entry.scenario)
    exp = entry.expectation()
    rep = None
    d = []
    if res_json.timed_out:
        d.append("timed out")
    elif res_json.rc != 0:
        d.append("exit status %r, expected 0" % res_json.rc)
    else:
        try:
            rep = res_json.json()
            if not isinstance(rep, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            d.append("stdout is not one JSON object: %s" % e)
            rep = None
    if d:
        d += res_json.describe()
    elif res_json.err.strip():
        tap.diag("%s: stderr: %s" % (tag, res_json.err.strip()[:500]))
    if rep is not None and rep.get("warnings"):
        tap.diag("%s: warnings: %s" % (tag, rep.get("warnings")))
    tap.ok(rep is not None, "%s: runs (--json, exit 0, JSON)" % tag, d)
    for name, fn in CHECKS:
        if rep is None:
            tap.ok(False, "%s: %s" % (tag, name), ["no report"])
            continue
        try:
            d = fn(exp, rep, entry)
        except Exception as e:  # a malformed report must not kill the test
            d = ["checker raised %s: %s" % (type(e).__name__, e)]
        tap.ok(not d, "%s: %s" % (tag, name), d)
    try:
        d = check_text(exp, res_text, entry)
    except Exception as e:
        d = ["checker raised %s: %s" % (type(e).__name__, e)]
    tap.ok(not d, "%s: text" % tag, d)


def main():
    tap = TAP()
    pystack = programs.pystack()
    if not os.access(pystack, os.X_OK):
        tap.ok(False, "analyzer %s is built" % pystack,
               ["build it first (make), or set PYSTACK"])
        return tap.done()
    try:
        entries = cores.ensure_cores(verbose=False)
    except Exception as e:
        return tap.skip_all("cannot make test cores: %s: %s"
                            % (type(e).__name__, e))
    interps = cores.find_interpreters()
    for reason in cores.missing_interpreters(interps):
        tap.skip(reason)
    timeout = float(os.environ.get("PYSTACK_TIMEOUT", "60"))
    jobs = int(os.environ.get("PYSTACK_JOBS", "4"))
    only = os.environ.get("PYSTACK_TEST_ONLY")
    if only:
        rx = re.compile(only)
        for e in entries:
            if not rx.search("%s %s" % (e.interp.label, e.scenario)):
                e.filtered = True
    runnable = [e for e in entries if e.status == "ok"
                and not getattr(e, "filtered", False)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        futs = dict((e, ex.submit(analyse, e, timeout)) for e in runnable)
        for e in entries:
            tag = "%s %s" % (e.interp.label, e.scenario)
            if getattr(e, "filtered", False):
                continue
            if e.status == "skip":
                tap.skip("%s: %s" % (tag, e.message))
                continue
            if e.status != "ok":
                tap.ok(False, "%s: core generation" % tag, [e.message])
                continue
            res_json, res_text = futs[e].result()
            report_entry(tap, e, res_json, res_text)
    tap.diag("%d tests, %d failed, %d skipped"
             % (tap.n, tap.failed, tap.skipped))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
