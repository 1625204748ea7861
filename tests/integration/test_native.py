#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: `pystack core CORE --native` (and --native-all, --native-last)
on the real cores of every installed CPython and every scenario.

For each core, pystack runs five times: plain --json (the reference Python
frames), --native --json, --native-all --json, --native-last --json and
--native (text).  One TAP line per (interpreter, scenario, aspect):

  runs         the five runs exit 0 and the JSON ones print one object
  python       in every thread, the kind "python" frames of the three
               native JSON reports are exactly those of the plain run
  native       every thread has native frames; no unknown "kind"
  merged       "merged" is true for every Python thread; --native shows no
               evaluation-loop frame (_PyEval_EvalFrameDefault,
               PyEval_EvalFrameEx): the Python frames replace them
  outermost    main thread: _start (executable), __libc_start_main*,
               __libc_start_call_main (libc.so.6, file and line from
               libc6-dbg), then main/Py_BytesMain/Py_Main/_Py_UnixMain;
               other threads: clone3/clone, start_thread (libc.so.6)
  innermost    crashing thread, frames below its last Python frame:
               SIGABRT: abort, raise, pthread_kill* in libc.so.6 with
               file and line; segv_ctypes: __strlen_* (libc.so.6) and
               string_at in _ctypes (2.7: PyString_FromString, its tail
               call; nothing for Debian's stripped _ctypes);
               cext_inline: crash_in_helper at the helper's call line,
               then crashext_deref_helper (inlined) at the faulting line,
               both in crashext.c; tutorial_bug: tupleiter_next
               (Objects/tupleobject.c) when libpython has DWARF; always:
               the innermost frame is the one --native-all shows (the
               faulting pc is never hidden)
  between      tutorial_bug only: PySequence_Tuple sits between the Python
               frames <module> and element_types (expect.json notes)
  dynsym       Debian's stripped /usr/bin/python3.X only: native function
               names of the executable come from .dynsym and the stack is
               merged
  native-all   at least as many native frames as --native in every thread,
               and the crashing thread shows the evaluation-loop frames
  native-last  no native frame before the last Python frame; the native
               frames below it are those of --native
  A thread block line such as "    (native frames missing: ...)" is a note:
  shown as a diagnostic, not compared.
  text         the --native text report prints, for every thread, exactly
               the frames of the --native JSON report as
               `    (C) File "F", line N, in SYMBOL[ (inlined)] (LIBRARY)`
               and `    (Python) File "F", line N, in NAME` (+ source)

Environment: PYSTACK, PYSTACK_WRAPPER, PYSTACK_TEST_CORES, PYSTACK_TIMEOUT
(default 60), PYSTACK_JOBS (default 4), PYSTACK_TEST_ONLY (regular
expression over "<interpreter label> <scenario>"), as test_stacks.py.

The cext_inline scenario's module (cext/crashext.c) is built first for
every interpreter into <cache>/<label>/_crashext (cross-compiled for the
arm64 ones, cores.build_crashext()); a rebuilt module makes its core be
generated again.  Exit status 0 unless the harness broke.
"""
from __future__ import print_function

import concurrent.futures
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True   # the source tree may be read-only
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cores  # noqa: E402
from harness import programs  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP  # noqa: E402
from test_stacks import THREAD_RE, compare_frames  # noqa: E402

ASPECTS = ["python", "native", "merged", "outermost", "innermost", "between",
           "dynsym", "native-all", "native-last", "text"]
EVAL_FUNCS = ("_PyEval_EvalFrameDefault", "PyEval_EvalFrameEx")
ENTRY_FUNCS = ("main", "Py_BytesMain", "Py_Main", "_Py_UnixMain")
MODES = [("plain", ["--json"]), ("native", ["--native", "--json"]),
         ("all", ["--native-all", "--json"]),
         ("last", ["--native-last", "--json"]), ("text", ["--native"])]

# Exact libc lines, verified with gdb on Debian 12's glibc 2.36 (libc6-dbg
# 2.36-9+deb12u14); with another glibc only "file known, line > 0".
GLIBC_LINES_FOR = "2.36-"
GLIBC_LINES = {"abort": ("./stdlib/abort.c", 79),
               "raise": ("../sysdeps/posix/raise.c", 26),
               "pthread_kill": ("./nptl/pthread_kill.c", 44),  # innermost
               "__libc_start_main": ("../csu/libc-start.c", 360),
               "__libc_start_call_main":
                   ("../sysdeps/nptl/libc_start_call_main.h", 58),
               "start_thread": ("./nptl/pthread_create.c", 442)}

RX_ABORT = re.compile(r"^(__GI_)?abort(@@?GLIBC_[\d.]+)?$")
RX_RAISE = re.compile(r"^(__GI_)?(raise|gsignal)(@@?GLIBC_[\d.]+)?$")
RX_PTKILL = re.compile(r"^(__)?pthread_kill(_internal|_implementation)?"
                       r"(@@?GLIBC_[\d.]+)?$")
RX_STRLEN = re.compile(r"^__strlen_")
RX_CLONE = re.compile(r"^(__)?clone3?$")
C_LINE_RE = re.compile(r'^    \(C\) File "(.*)", line (-?\d+), in (.*?)'
                       r'( \(inlined\))? \(([^()]*)\)$')
# a note of the text report inside a thread block, e.g.
# "    (native frames missing: ...)": reported as a diagnostic
NOTE_RE = re.compile(r"^(    \((?!C\) |Python\) ).*\)|\* - Unable to merge native "
                     r"stack due to insufficient native information - \*|"
                     r"    Exception: .*)$")
PY_LINE_RE = re.compile(r'^    \(Python\) File "(.*)", line (-?\d+), in (.*)$')


def glibc_version():
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}",
                              "libc6-dbg"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL,
                             universal_newlines=True, timeout=20)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


LIBC_DBG = glibc_version()
EXACT_LIBC = bool(LIBC_DBG and LIBC_DBG.startswith(GLIBC_LINES_FOR))


def fmt(f):
    if f.get("kind") == "python":
        return "(Python) %s:%s in %s" % (f.get("file"), f.get("line"),
                                         f.get("function"))
    return "(C) %s:%s in %s%s (%s)" % (
        f.get("file") or "???", f.get("line"), f.get("function") or "???",
        " (inlined)" if f.get("inlined") else "", f.get("library"))


def is_py(f):
    return f.get("kind") == "python"


def is_native(f):
    return f.get("kind") == "native"


def threads_by_tid(rep):
    return dict((t.get("tid"), t) for t in (rep or {}).get("threads") or [])


def last_py_index(frames):
    idx = [i for i, f in enumerate(frames) if is_py(f)]
    return idx[-1] if idx else -1


def first_py_index(frames):
    for i, f in enumerate(frames):
        if is_py(f):
            return i
    return len(frames)


def show(frames, lo=0, hi=None, limit=14):
    """Diagnostic lines listing frames[lo:hi]."""
    hi = len(frames) if hi is None else hi
    sel = list(range(max(0, lo), min(len(frames), hi)))
    out = []
    if len(sel) > limit:
        sel = sel[:limit // 2] + [None] + sel[-(limit // 2):]
    for i in sel:
        out.append("    ..." if i is None else "    [%d] %s" % (i, fmt(frames[i])))
    return out


def check_libc_frame(f, key, what, dbg=True):
    """Problems of a libc frame: library, and file/line from libc6-dbg
    (dbg: the core's libc is the one libc6-dbg describes)."""
    d = []
    if f.get("library") != "libc.so.6":
        d.append("%s: library expected 'libc.so.6', got %r"
                 % (what, f.get("library")))
    if not dbg:
        return d
    if not f.get("file") or not isinstance(f.get("line"), int) \
            or f.get("line") <= 0:
        d.append("%s: expected file and line from libc6-dbg's DWARF, got "
                 "%r line %r" % (what, f.get("file"), f.get("line")))
    elif EXACT_LIBC and key in GLIBC_LINES:
        wf, wl = GLIBC_LINES[key]
        if (f.get("file"), f.get("line")) != (wf, wl):
            d.append("%s: expected %s line %d (glibc %s), got %s line %s"
                     % (what, wf, wl, LIBC_DBG, f.get("file"), f.get("line")))
    return d


# --------------------------------------------------------------------------
# aspects

def check_python(ctx):
    d = []
    plain = threads_by_tid(ctx.rep["plain"])
    for mode in ("native", "all", "last"):
        got = threads_by_tid(ctx.rep[mode])
        for tid, pt in sorted(plain.items()):
            g = got.get(tid)
            if g is None:
                d.append("--%s: thread %d missing" % (ctx.flag(mode), tid))
                continue
            want = [f for f in pt.get("frames") or [] if is_py(f)]
            have = [f for f in g.get("frames") or [] if is_py(f)]
            d += compare_frames("--%s thread %d" % (ctx.flag(mode), tid),
                                want, have)
        extra = sorted(set(got) - set(plain))
        if extra and mode != "all":
            d.append("--%s: threads not in the plain report: %s"
                     % (ctx.flag(mode), extra))
    return d


def check_native(ctx):
    d = []
    for t in ctx.rep["native"].get("threads") or []:
        frames = t.get("frames") or []
        kinds = set(f.get("kind") for f in frames)
        if kinds - set(["python", "native"]):
            d.append("thread %d: unknown frame kinds %r"
                     % (t.get("tid"), sorted(kinds - set(["python", "native"]))))
        if not any(is_native(f) for f in frames):
            d.append("thread %d: no native frame (native_error %r)"
                     % (t.get("tid"), t.get("native_error")))
        for i, f in enumerate(frames):
            if is_native(f):
                miss = [k for k in ("function", "file", "line", "library",
                                    "address", "inlined") if k not in f]
                if miss:
                    d.append("thread %d frame %d: keys missing: %s"
                             % (t.get("tid"), i, miss))
                    break
    return d


def check_merged(ctx):
    d = []
    for t in ctx.rep["native"].get("threads") or []:
        if not t.get("python"):
            continue
        if t.get("merged") is not True:
            d.append("thread %d: merged: expected true, got %r "
                     "(native_error %r)" % (t.get("tid"), t.get("merged"),
                                            t.get("native_error")))
        ev = [i for i, f in enumerate(t.get("frames") or [])
              if is_native(f) and f.get("function") in EVAL_FUNCS]
        if ev:
            d.append("thread %d: --native shows %d evaluation-loop frame(s),"
                     " first at index %d: %s" % (
                         t.get("tid"), len(ev), ev[0],
                         fmt(t["frames"][ev[0]])))
    return d


def check_outermost(ctx):
    d = []
    dbg = ctx.dbg
    pid = (ctx.rep["native"].get("process") or {}).get("pid")
    exe = os.path.basename(ctx.rep["native"].get("executable") or "")
    for t in ctx.rep["native"].get("threads") or []:
        tid = t.get("tid")
        frames = t.get("frames") or []
        nat = frames[:first_py_index(frames)]
        tag = "thread %d" % tid
        if tid == pid:
            want = "_start, __libc_start_main*, __libc_start_call_main, " \
                   "then one of " + "/".join(ENTRY_FUNCS)
            dd = []
            if len(nat) < 4:
                dd.append("%s: expected at least 4 native frames before the "
                          "first Python frame (%s), got %d"
                          % (tag, want, len(nat)))
            else:
                if nat[0].get("function") != "_start" or \
                        nat[0].get("library") != exe:
                    dd.append("%s: outermost frame: expected _start (%s), "
                              "got %s" % (tag, exe, fmt(nat[0])))
                if not (nat[1].get("function") or "").startswith(
                        "__libc_start_main"):
                    dd.append("%s: frame 1: expected __libc_start_main*, got %s"
                              % (tag, fmt(nat[1])))
                else:
                    dd += check_libc_frame(nat[1], "__libc_start_main",
                                           tag + " __libc_start_main", dbg=dbg)
                if not dbg:
                    # not exported: a libc frame without a name
                    dd += check_libc_frame(nat[2], "", tag + " frame 2",
                                           dbg=False)
                elif nat[2].get("function") != "__libc_start_call_main":
                    dd.append("%s: frame 2: expected __libc_start_call_main, "
                              "got %s" % (tag, fmt(nat[2])))
                else:
                    dd += check_libc_frame(nat[2], "__libc_start_call_main",
                                           tag + " __libc_start_call_main")
                if nat[3].get("function") not in ENTRY_FUNCS:
                    dd.append("%s: frame 3: expected one of %s, got %s"
                              % (tag, "/".join(ENTRY_FUNCS), fmt(nat[3])))
            if dd:
                d += dd + show(frames, 0, len(nat) + 1, 10)
        else:
            dd = []
            if len(nat) < 2:
                dd.append("%s: expected clone3, start_thread before the first "
                          "Python frame, got %d native frames" % (tag, len(nat)))
            elif not dbg:
                # clone3 and start_thread are not exported: two libc frames
                for k in (0, 1):
                    dd += check_libc_frame(nat[k], "", "%s frame %d" % (tag, k),
                                           dbg=False)
            else:
                if not RX_CLONE.match(nat[0].get("function") or "") or \
                        nat[0].get("library") != "libc.so.6":
                    dd.append("%s: outermost frame: expected clone3/clone "
                              "(libc.so.6), got %s" % (tag, fmt(nat[0])))
                if nat[1].get("function") != "start_thread":
                    dd.append("%s: frame 1: expected start_thread, got %s"
                              % (tag, fmt(nat[1])))
                else:
                    dd += check_libc_frame(nat[1], "start_thread",
                                           tag + " start_thread")
            if dd:
                d += dd + show(frames, 0, len(nat) + 1, 10)
    return d


def crashed_thread(rep):
    for t in rep.get("threads") or []:
        if t.get("crashed"):
            return t
    return None


def inner_abort(tail, d, dbg=True):
    """abort, raise, then only pthread_kill* frames (outermost first); a libc
    without debug information names none of those (they are not exported),
    so there they are only libc frames."""
    ks = [i for i, f in enumerate(tail)
          if RX_ABORT.match(f.get("function") or "")]
    if not ks:
        d.append("SIGABRT: no abort frame below the last Python frame")
        return
    k = ks[-1]
    d += check_libc_frame(tail[k], "abort", "abort", dbg=dbg)
    if k + 1 >= len(tail) or \
            not RX_RAISE.match(tail[k + 1].get("function") or ""):
        d.append("SIGABRT: expected raise just below abort, got %s"
                 % (fmt(tail[k + 1]) if k + 1 < len(tail) else "nothing"))
        return
    d += check_libc_frame(tail[k + 1], "raise", "raise", dbg=dbg)
    kills = tail[k + 2:]
    if not kills:
        d.append("SIGABRT: expected pthread_kill frame(s) below raise, "
                 "got nothing")
    for j, f in enumerate(kills):
        if not dbg and not f.get("function") and f.get("library") == "libc.so.6":
            continue
        if not RX_PTKILL.match(f.get("function") or ""):
            d.append("SIGABRT: expected only pthread_kill frames below raise,"
                     " got %s" % fmt(f))
            break
        # the exact line is checked for the innermost one only
        d += check_libc_frame(
            f, "pthread_kill" if j == len(kills) - 1 else "pthread_kill-",
            f.get("function"), dbg=dbg)


def check_innermost(ctx):
    d = []
    t = crashed_thread(ctx.rep["native"])
    if t is None:
        return ["no crashed thread in the --native report"]
    frames = t.get("frames") or []
    dbg = ctx.dbg
    lp = last_py_index(frames)
    tail = frames[lp + 1:]
    if not tail:
        alle = crashed_thread(ctx.rep["all"]) or {}
        af = alle.get("frames") or []
        return ["crashed thread %d: no native frame below the last Python "
                "frame" % t.get("tid")] + show(frames, len(frames) - 4) + \
            ["--native-all shows below it:"] + \
            show(af, last_py_index(af) + 1, None, 10)
    # the faulting pc is never hidden: --native-all's innermost frame
    alle = crashed_thread(ctx.rep["all"]) or {}
    af = [f for f in alle.get("frames") or [] if is_native(f)]
    if af and (tail[-1].get("address") != af[-1].get("address")
               or tail[-1].get("function") != af[-1].get("function")):
        d.append("innermost frame: expected the faulting frame that "
                 "--native-all shows, %s at %#x; got %s%s"
                 % (fmt(af[-1]), af[-1].get("address") or 0, fmt(tail[-1]),
                    " at %#x" % tail[-1]["address"]
                    if isinstance(tail[-1].get("address"), int) else ""))
    sig = ctx.exp["signal"]
    sc = ctx.entry.scenario
    if sig == "SIGABRT":
        inner_abort(tail, d, ctx.dbg)
    elif sc == "segv_ctypes":
        f = tail[-1]
        if not dbg and not f.get("function"):
            # __strlen_* is not exported: the fault is in an unnamed libc frame
            d += check_libc_frame(f, "strlen", "innermost", dbg=False)
        elif not RX_STRLEN.match(f.get("function") or ""):
            d.append("innermost: expected __strlen_* (string_at(0) faults in "
                     "strlen), got %s" % fmt(f))
        else:
            d += check_libc_frame(f, "strlen", "innermost " + f["function"], dbg=dbg)
        if ctx.entry.interp.minor == "2.7":
            # 2.7's string_at() tail-calls PyString_FromString(ptr)
            up = tail[-2] if len(tail) > 1 else {}
            if up.get("function") != "PyString_FromString":
                d.append("expected PyString_FromString (string_at's tail "
                         "call) just above strlen, got %s"
                         % (fmt(up) if up else "nothing"))
        elif ctx.entry.interp.origin == "pyenv" and not any(
                g.get("function") == "string_at" and
                (g.get("library") or "").startswith("_ctypes")
                for g in tail[:-1]):
            d.append("expected a string_at frame (_ctypes) above strlen")
    elif sc == "cext_inline":
        n = ctx.exp.get("notes") or {}
        want = [{"function": n.get("function"), "file": n.get("source"),
                 "line": n.get("call_line"), "library": n.get("module_name"),
                 "inlined": False},
                {"function": n.get("helper_function"), "file": n.get("source"),
                 "line": n.get("helper_line"),
                 "library": n.get("module_name"), "inlined": True}]
        have = tail[-2:]
        for w, h in zip(want, have if len(have) == 2 else [{}, {}]):
            bad = [k for k in w if h.get(k) != w[k]]
            if bad:
                d.append("expected %s" % fmt(w))
                d.append("     got %s" % (fmt(h) if h else "nothing"))
    elif sc == "tutorial_bug":
        if ctx.entry.interp.origin == "pyenv":
            ti = [f for f in tail if f.get("function") == "tupleiter_next"]
            if not ti:
                d.append("expected a tupleiter_next frame (the NULL item is "
                         "read by the tuple iterator)")
            elif not (ti[-1].get("file") or "").endswith(
                    "Objects/tupleobject.c"):
                d.append("tupleiter_next: expected file Objects/tupleobject.c"
                         " (its inlined callees follow as separate frames), "
                         "got %s line %s" % (ti[-1].get("file"),
                                             ti[-1].get("line")))
    else:
        return ["no innermost expectation for scenario %s (%s)" % (sc, sig)]
    if d:
        d += ["crashed thread %d below its last Python frame:" % t["tid"]]
        d += show(frames, lp, None, 16)
    return d


def check_between(ctx):
    if ctx.entry.scenario != "tutorial_bug":
        return None
    n = ctx.exp.get("notes") or {}
    fn = n.get("native_function", "PySequence_Tuple")
    outer, inner = n.get("native_between", ["<module>", "element_types"])
    t = crashed_thread(ctx.rep["native"])
    if t is None:
        return ["no crashed thread"]
    frames = t.get("frames") or []
    py = [i for i, f in enumerate(frames) if is_py(f)]
    pairs = [(a, b) for a, b in zip(py, py[1:])
             if frames[a].get("function") == outer
             and frames[b].get("function") == inner]
    if not pairs:
        return ["no Python frame %s directly followed (among Python frames)"
                " by %s" % (outer, inner)] + show(frames)
    a, b = pairs[-1]
    mid = frames[a + 1:b]
    hits = [f for f in mid if f.get("function") == fn]
    if not hits:
        return ["expected native frame %s between %s and %s; got:"
                % (fn, fmt(frames[a]), fmt(frames[b]))] + \
            (show(frames, a + 1, b) or ["    (nothing)"])
    d = []
    f = hits[0]
    if ctx.entry.interp.origin == "pyenv" and (
            not (f.get("file") or "").endswith("Objects/abstract.c")
            or not f.get("line")):
        d.append("%s: expected file Objects/abstract.c and a line, got %s"
                 % (fn, fmt(f)))
    return d


def check_dynsym(ctx):
    if ctx.entry.interp.origin != "system":
        return None
    exe = os.path.basename(ctx.rep["native"].get("executable") or "")
    d = []
    named = [f for t in ctx.rep["native"].get("threads") or []
             for f in t.get("frames") or []
             if is_native(f) and f.get("library") == exe and f.get("function")]
    if not named:
        d.append("no native frame of %s with a function name (.dynsym) in "
                 "any thread" % exe)
    if ctx.entry.scenario == "tutorial_bug" and not any(
            f.get("function") == "PySequence_Tuple" for f in named):
        d.append("PySequence_Tuple (in .dynsym) not named")
    for th in ctx.rep["native"].get("threads") or []:
        if th.get("python") and th.get("merged") is not True:
            d.append("thread %d: merged %r" % (th.get("tid"), th.get("merged")))
    if not any(f.get("function") == "_PyEval_EvalFrameDefault"
               for t in ctx.rep["all"].get("threads") or []
               for f in t.get("frames") or []):
        d.append("--native-all: no _PyEval_EvalFrameDefault (in .dynsym)")
    return d


def check_all(ctx):
    d = []
    nat = threads_by_tid(ctx.rep["native"])
    for tid, t in sorted(threads_by_tid(ctx.rep["all"]).items()):
        n = nat.get(tid)
        if n is None:
            continue
        ca = sum(1 for f in t.get("frames") or [] if is_native(f))
        cn = sum(1 for f in n.get("frames") or [] if is_native(f))
        if ca < cn:
            d.append("thread %d: --native-all has %d native frames, --native "
                     "%d" % (tid, ca, cn))
    missing = [tid for tid in nat if tid not in threads_by_tid(ctx.rep["all"])]
    if missing:
        d.append("--native-all lacks threads %s" % missing)
    t = crashed_thread(ctx.rep["all"])
    if t is None:
        d.append("--native-all: no crashed thread")
    else:
        # the evaluation loop: by name, or (stripped interpreters, whose loop
        # runs in an unnamed .cold part) found by where its frame lives
        ev = [f for f in t.get("frames") or [] if is_native(f) and f.get("eval")]
        if not ev:
            d.append("--native-all: crashed thread %d shows no evaluation-loop "
                     "frame" % t.get("tid"))
        named = [f for f in ev if f.get("function")]
        if any(f.get("function") not in EVAL_FUNCS for f in named):
            d.append("--native-all: frames marked as the evaluation loop that "
                     "are not one of %s: %s" % ("/".join(EVAL_FUNCS),
                                               [fmt(f) for f in named]))
        if ctx.dbg and not named:
            d.append("--native-all: no evaluation-loop frame by name (%s)"
                     % "/".join(EVAL_FUNCS))
    return d


def check_last(ctx):
    d = []
    nat = threads_by_tid(ctx.rep["native"])
    for tid, t in sorted(threads_by_tid(ctx.rep["last"]).items()):
        frames = t.get("frames") or []
        lp = last_py_index(frames)
        early = [i for i in range(max(lp, 0)) if is_native(frames[i])]
        if early:
            d.append("thread %d: %d native frame(s) before the last Python "
                     "frame (index %d), first: [%d] %s"
                     % (tid, len(early), lp, early[0], fmt(frames[early[0]])))
            continue
        n = nat.get(tid)
        if n is None or lp < 0:
            continue
        nf = n.get("frames") or []
        want = [fmt(f) for f in nf[last_py_index(nf) + 1:]]
        have = [fmt(f) for f in frames[lp + 1:]]
        if want != have:
            d.append("thread %d: native frames below the last Python frame "
                     "differ from --native (%d vs %d)"
                     % (tid, len(have), len(want)))
            d += ["    --native:      " + x for x in want[-4:]]
            d += ["    --native-last: " + x for x in have[-4:]]
    return d


def expected_text_lines(frames):
    lines = []
    for f in frames:
        if is_py(f):
            lines.append('    (Python) File "%s", line %d, in %s'
                         % (f["file"], f["line"], f["function"]))
            if f.get("source"):
                lines.append("        " + f["source"])
        else:
            lines.append('    (C) File "%s", line %d, in %s%s (%s)'
                         % (f.get("file") or ("???" if f.get("function")
                                              else f.get("library") or "???"),
                            f.get("line") or 0,
                            f.get("function") or "???",
                            " (inlined)" if f.get("inlined") else "",
                            f.get("library") or "???"))
    return lines


def parse_blocks(text):
    blocks, cur = [], None
    for line in text.split("\n"):
        m = THREAD_RE.match(line)
        if m:
            cur = {"tid": int(m.group(1)), "lines": []}
            blocks.append(cur)
        elif cur is not None:
            if line == "":
                cur = None
            else:
                cur["lines"].append(line)
    return blocks


def check_text(ctx):
    d = []
    res = ctx.res["text"]
    blocks = parse_blocks(res.out)
    got = dict((b["tid"], b) for b in blocks)
    shapes_bad = 0
    notes = []
    n_c = n_py = 0
    for b in blocks:
        for line in b["lines"]:
            if line.startswith("    (C) "):
                n_c += 1
                if not C_LINE_RE.match(line):
                    shapes_bad += 1
                    if shapes_bad <= 3:
                        d.append("bad (C) line shape: %r" % line)
            elif line.startswith("    (Python) "):
                n_py += 1
                if not PY_LINE_RE.match(line):
                    shapes_bad += 1
                    if shapes_bad <= 3:
                        d.append("bad (Python) line shape: %r" % line)
            elif NOTE_RE.match(line):
                notes.append("thread %d: %s" % (b["tid"], line.strip()))
            elif not line.startswith("        "):
                shapes_bad += 1
                if shapes_bad <= 3:
                    d.append("unexpected line in a thread block: %r" % line)
    if not n_c or not n_py:
        d.append("text report has %d (C) and %d (Python) lines" % (n_c, n_py))
    for t in ctx.rep["native"].get("threads") or []:
        b = got.get(t.get("tid"))
        if b is None:
            d.append("thread %d: no 'Traceback for thread' block" % t["tid"])
            continue
        want = expected_text_lines(t.get("frames") or [])
        have = [l for l in b["lines"] if not NOTE_RE.match(l)]
        if want != have:
            i = next((i for i in range(min(len(want), len(have)))
                      if want[i] != have[i]), min(len(want), len(have)))
            d.append("thread %d: text differs from the JSON frames at line %d"
                     " of %d (got %d lines)" % (t["tid"], i + 1, len(want),
                                               len(have)))
            d.append("  expected: %r" % (want[i] if i < len(want) else "<end>"))
            d.append("       got: %r" % (have[i] if i < len(have) else "<end>"))
    ctx.notes += notes
    return d


APPLIES = {"between": lambda ctx: ctx.entry.scenario == "tutorial_bug",
           "dynsym": lambda ctx: ctx.entry.interp.origin == "system"}
CHECKS = [("python", check_python), ("native", check_native),
          ("merged", check_merged), ("outermost", check_outermost),
          ("innermost", check_innermost), ("between", check_between),
          ("dynsym", check_dynsym), ("native-all", check_all),
          ("native-last", check_last), ("text", check_text)]


# --------------------------------------------------------------------------

class Ctx(object):
    FLAGS = {"plain": "json", "native": "native", "all": "native-all",
             "last": "native-last", "text": "native (text)"}

    def __init__(self, entry):
        self.entry = entry
        self.exp = entry.expectation()
        self.res = {}
        self.rep = {}
        self.notes = []
        # libc6-dbg describes the host's libc only: an interpreter of
        # another root (Debian sid's) runs a libc with exported names alone
        self.dbg = bool(LIBC_DBG) and not entry.interp.root

    def flag(self, mode):
        return self.FLAGS[mode]


def analyse(entry, timeout):
    ctx = Ctx(entry)
    for mode, args in MODES:
        ctx.res[mode] = run_pystack(["core", entry.core] + args + entry.pystack_args, timeout)
    return ctx


def report_entry(tap, ctx):
    e = ctx.entry
    tag = "%s %s" % (e.interp.label, e.scenario)
    d = []
    for mode, args in MODES:
        r = ctx.res[mode]
        if r.timed_out or r.rc != 0:
            d.append("pystack %s: exit status %r%s" % (
                " ".join(args), r.rc, " (timed out)" if r.timed_out else ""))
            d += r.describe(8)
            continue
        if mode == "text":
            continue
        try:
            rep = r.json()
            if not isinstance(rep, dict):
                raise ValueError("not a JSON object")
            ctx.rep[mode] = rep
        except ValueError as ex:
            d.append("pystack %s: stdout is not one JSON object: %s"
                     % (" ".join(args), ex))
    ok = tap.ok(not d, "%s: runs (plain, --native, --native-all, "
                "--native-last; JSON and text)" % tag, d)
    for name, fn in CHECKS:
        if name in APPLIES and not APPLIES[name](ctx):
            continue            # aspect not applicable to this core
        if not ok:
            tap.ok(False, "%s: %s" % (tag, name), ["a run failed"])
            continue
        try:
            dd = fn(ctx)
        except Exception as ex:  # a malformed report must not kill the test
            dd = ["checker raised %s: %s" % (type(ex).__name__, ex)]
        if dd is None:
            continue            # aspect not applicable to this core
        tap.ok(not dd, "%s: %s" % (tag, name), dd)
    for n in ctx.notes[:4]:
        tap.diag("%s: text note: %s" % (tag, n))


def prepare_crashext(interps, cache):
    """Build crashext for every interpreter; regenerate the cext_inline
    cores whose module changed.  Returns {label: error message}."""
    errors = {}
    stale = []
    for i in interps:
        outdir = os.path.join(cache, i.label, "_crashext")
        try:
            so = cores.build_crashext(i, outdir)
        except cores.CrashextUnavailable:
            continue            # cext_inline is a SKIP there, saying why
        except Exception as ex:
            errors[i.label] = "cannot build crashext: %s" % ex
            continue
        e = cores.Entry(cache, i, "cext_inline")
        if os.path.exists(e.meta_path) and \
                os.path.getmtime(so) >= os.path.getmtime(e.meta_path):
            stale.append(i)
    if stale:
        cores.ensure_cores(cache=cache, interpreters=stale,
                           scenarios=["cext_inline"], force=True,
                           verbose=False)
    return errors


def main():
    tap = TAP()
    pystack = programs.pystack()
    if not os.access(pystack, os.X_OK):
        tap.ok(False, "analyzer %s is built" % pystack,
               ["build it first (make), or set PYSTACK"])
        return tap.done()
    cache = cores.cache_dir()
    interps = cores.find_interpreters()
    try:
        build_errors = prepare_crashext(interps, cache)
        entries = cores.ensure_cores(cache=cache, interpreters=interps,
                                     verbose=False)
    except Exception as ex:
        return tap.skip_all("cannot make test cores: %s: %s"
                            % (type(ex).__name__, ex))
    for reason in cores.missing_interpreters(interps):
        tap.skip(reason)
    if not LIBC_DBG:
        tap.diag("libc6-dbg is not installed: libc frames have no file/line;"
                 " install it (apt-get install libc6-dbg)")
    elif not EXACT_LIBC:
        tap.diag("libc6-dbg %s: exact libc lines are only checked for %s*"
                 % (LIBC_DBG, GLIBC_LINES_FOR))
    timeout = float(os.environ.get("PYSTACK_TIMEOUT", "60"))
    jobs = int(os.environ.get("PYSTACK_JOBS", "4"))
    only = os.environ.get("PYSTACK_TEST_ONLY")
    rx = re.compile(only) if only else None
    selected = [e for e in entries
                if not rx or rx.search("%s %s" % (e.interp.label, e.scenario))]
    runnable = [e for e in selected if e.status == "ok"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        futs = dict((e, ex.submit(analyse, e, timeout)) for e in runnable)
        for e in selected:
            tag = "%s %s" % (e.interp.label, e.scenario)
            if e.status == "skip":
                tap.skip("%s: %s" % (tag, e.message))
                continue
            if e.status != "ok":
                msg = [e.message]
                if e.scenario == "cext_inline" and \
                        e.interp.label in build_errors:
                    msg.append(build_errors[e.interp.label])
                tap.ok(False, "%s: core generation" % tag, msg)
                continue
            report_entry(tap, futs[e].result())
    tap.diag("%d tests, %d failed, %d skipped"
             % (tap.n, tap.failed, tap.skipped))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
