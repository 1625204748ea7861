#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: crash signatures stay byte-identical for the same crash.

Run from the build directory (after `make`); the pystackd part as root:

    /usr/bin/python3 ../tests/integration/test_signatures.py

Environment:
  PYSTACK             the analyzer (default analyzer/pystack)
  PYSTACK_DAEMON_ANALYZER  the analyzer pystackd runs (default: PYSTACK)
  PYSTACKD, PYSTACKCTL     the service and its query tool (defaults in the build tree)
  PYSTACK_TEST_CORES, PYSTACK_TIMEOUT, PYSTACK_JOBS, PYSTACK_TEST_ONLY
                      as in test_stacks.py (the last one: a regular expression
                      over "<interpreter> <scenario>", and "fixture" for the
                      fixture's crashes)

signature_v1.py is the signature of pystackd 1 (daemon/pystackd.c,
gather_facts()) in Python, computed from the analyzer's JSON report.  Three
groups of checks:

1. fixture: for every crash of tests/fixtures/store-v2 (a store the release
   wrote; see its README.md), signature_v1 on the stored report and signal
   gives the stored crashes.signature, and signatures.title is signature_v1's
   title of the signature's first crash.  This holds the Python copy to the
   C it mirrors.
2. fixture, again (root): a copy of the fixture, this build's pystackd on
   it, `pystackctl analyze ID=N` for every crash with a core; once filed
   again, crashes.signature is the one the release stored, and so is
   signatures.title.  A crash whose core names a library (the interpreter,
   libc, ...) whose build-id on this host differs, or whose debug file the
   first analysis read (/usr/lib/debug/.build-id/: libc6-dbg) is missing,
   is a SKIP: its core cannot be analysed as it was.
3. cores: every core of the cache (cores.py) through this build's analyzer
   with pystackd's arguments (core --json --with-text --native --locals
   --no-color); the report's "signature" equals signature_v1's.  The
   analyzer does not emit "signature" yet: until it does, each core is a
   SKIP that says so.
"""
import concurrent.futures
import os
import re
import signal
import sys
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cores  # noqa: E402
import pystackd_fixture as pf  # noqa: E402
import signature_v1  # noqa: E402
import store_fixture as sf  # noqa: E402
from harness import programs  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP  # noqa: E402

# what pystackd passes the analyzer (daemon/pystackd.c, run_analyzer()), the core aside
PYSTACKD_ARGS = ["--json", "--with-text", "--native", "--locals", "--no-color"]
ANALYZE_TIMEOUT = 300


def show(b):
    return b.decode("utf-8", "backslashreplace") if isinstance(b, bytes) else repr(b)


def stored_crashes(copy):
    """{id: row} of a store: signal, signature, its title, report, analyzed_usec, core state."""
    rows = copy.query(
        "SELECT c.id, c.signal, c.signature, s.title, c.report, c.analyzed_usec, c.core_state, c.state"
        " FROM crashes c LEFT JOIN signatures s ON s.signature = c.signature ORDER BY c.id")
    keys = ("id", "signal", "signature", "title", "report", "analyzed_usec", "core_state", "state")
    return dict((r[0], dict(zip(keys, r))) for r in rows)


# --------------------------------------------------------------------------
# 1. the fixture as the release stored it

def check_fixture_stored(tap, crashes):
    first_title = {}
    for cid, c in sorted(crashes.items()):
        if c["report"] is None:
            tap.ok(c["signature"] is None,
                   "fixture crash %d: no report (core %s), no signature" % (cid, show(c["core_state"])))
            continue
        sig, title = signature_v1.signature(c["report"], signal=c["signal"])
        stored = show(c["signature"])
        tap.ok(sig == stored, "fixture crash %d: signature_v1 gives the stored signature %s"
               % (cid, stored), ["signature_v1: %s" % sig] +
               signature_v1.named_frames(signature_v1.loads(c["report"])))
        first_title.setdefault(sig, (cid, title))
        fcid, ftitle = first_title[sig]
        tap.ok(c["title"] == ftitle,
               "fixture crash %d: the signature's title is signature_v1's of its first crash (%d): %s"
               % (cid, fcid, show(c["title"])), ["signature_v1: %s" % show(ftitle)])


# --------------------------------------------------------------------------
# 2. the fixture analysed again by this build's pystackd

def cannot_reanalyse(report):
    """Why the core of a stored report cannot be analysed here as it was:
    a module whose file on this host has another build-id (or is gone), or
    whose debug file (/usr/lib/debug/.build-id/, as Debian's libc6-dbg
    installs it) gave the first analysis file names and is not here now.
    [] when nothing is known to be missing."""
    rep = signature_v1.loads(report)
    why = []
    modules = [(m.get("path"), m.get("build_id")) for m in (rep.get("modules") or [])
               if m.get("path") and m.get("build_id")]
    for path, bid in modules:
        here = sf.elf_build_id(path)
        if here != bid:
            why.append("%s has build-id %s, the core's is %s" % (path, here or "(none: missing)", bid))
    with_dwarf = set()
    for t in rep.get("threads") or []:
        for f in t.get("frames") or []:
            if f.get("kind") == "native" and f.get("file") and f.get("library"):
                with_dwarf.add(f["library"])
    for lib in sorted(with_dwarf):
        for path, bid in modules:
            debug = "/usr/lib/debug/.build-id/%s/%s.debug" % (bid[:2], bid[2:])
            if path.endswith("/" + lib) and not os.path.exists(debug):
                why.append("%s: no %s (the first analysis had its debug information)" % (path, debug))
    return why


def check_fixture_reanalysed(tap, before):
    copy = sf.Copy(analyzer=programs.daemon_analyzer())
    ctl = programs.pystackctl()
    daemon = None
    try:
        todo = []
        for cid, c in sorted(before.items()):
            if c["core_state"] != b"present" or c["report"] is None:
                continue
            why = cannot_reanalyse(c["report"])
            if why:
                tap.skip("fixture crash %d: cannot be analysed again as it was here: %s"
                         % (cid, "; ".join(why)))
                continue
            todo.append(cid)
        if not todo:
            return
        daemon = pf.Daemon(copy.conf, os.path.join(copy.root, "log"))
        if not tap.ok(daemon.start(), "pystackd %s starts on a copy of the fixture" % programs.pystackd(),
                      daemon.log_tail()):
            return
        for cid in todo:
            rc, out, err = sf.run_ctl(ctl, copy.conf, ["analyze", "ID=%d" % cid])
            tap.ok(rc == 0, "fixture crash %d: pystackctl analyze ID=%d queues it" % (cid, cid),
                   ["exit %r, stdout %r, stderr %r" % (rc, out[:300], err[:300])])
        deadline = time.time() + ANALYZE_TIMEOUT
        while True:
            after = stored_crashes(copy)
            waiting = [cid for cid in todo if after[cid]["state"] not in (b"done", b"failed")
                       or after[cid]["analyzed_usec"] == before[cid]["analyzed_usec"]]
            if not waiting or time.time() > deadline:
                break
            time.sleep(0.2)
        rc = daemon.stop()
        tap.ok(not waiting and rc == 0,
               "fixture crashes %s analysed again, pystackd stopped (status %r)"
               % (",".join(map(str, todo)), rc),
               ["still waiting for %r" % waiting] + daemon.log_tail())
        for cid in todo:
            b, a = before[cid], after[cid]
            d = ["before: %s %s" % (show(b["signature"]), show(b["title"])),
                 "after:  %s %s (state %s)" % (show(a["signature"]), show(a["title"]), show(a["state"]))]
            if a["report"] is not None:
                rep = signature_v1.loads(a["report"])
                d.append("signature_v1 of the new report: %s %s" % tuple(
                    show(x) for x in signature_v1.signature(rep, signal=a["signal"])))
                d += ["  new: " + f for f in signature_v1.named_frames(rep)]
                d += ["  old: " + f for f in signature_v1.named_frames(signature_v1.loads(b["report"]))]
            tap.ok(a["signature"] == b["signature"] and a["state"] == b"done",
                   "fixture crash %d: analysed again, the same signature %s" % (cid, show(b["signature"])), d)
            tap.ok(a["title"] == b["title"],
                   "fixture crash %d: and the same title: %s" % (cid, show(b["title"])), d)
            if a["report"] is not None:
                field = signature_v1.loads(a["report"]).get("signature")
                if field is not None:
                    tap.ok(field == show(b["signature"]),
                           "fixture crash %d: the new report's signature field is the stored one" % cid,
                           ["report: %r, stored %s" % (field, show(b["signature"]))])
    finally:
        if daemon is not None:
            daemon.stop()
        copy.remove()


# --------------------------------------------------------------------------
# 3. every core of the cache

def analyse(entry, timeout):
    return run_pystack(["core", entry.core] + PYSTACKD_ARGS + entry.pystack_args, timeout)


def check_core(tap, entry, res):
    tag = "%s %s" % (entry.interp.label, entry.scenario)
    rep = None
    d = []
    if res.timed_out:
        d.append("timed out")
    elif res.rc not in (0, 3):
        d.append("exit status %r (pystackd files the reports of 0 and 3)" % res.rc)
    else:
        try:
            rep = signature_v1.loads(res.out)
            if not isinstance(rep, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            d.append("stdout is not one JSON object: %s" % e)
            rep = None
    if rep is None:
        tap.ok(False, "%s: the analyzer gives a report" % tag, d + res.describe())
        return
    sig, title = signature_v1.signature(rep)
    field = rep.get("signature")
    if field is None:
        tap.skip("%s: the analyzer's report has no signature field yet (signature_v1: %s, %s)"
                 % (tag, sig, show(title)))
        return
    tap.ok(field == sig, "%s: the report's signature is signature_v1's %s" % (tag, sig),
           ["report: %r" % (field,)] + signature_v1.named_frames(rep))


def check_cores(tap, rx):
    pystack = programs.pystack()
    if not os.access(pystack, os.X_OK):
        tap.ok(False, "analyzer %s is built" % pystack, ["build it first (make), or set PYSTACK"])
        return
    def wanted(entries):
        return [e for e in entries if rx is None or rx.search("%s %s" % (e.interp.label, e.scenario))]

    try:
        # only the selected entries are made (again) when missing or stale
        selected = wanted(cores.all_entries())
        if not selected:
            return
        interps = list(dict((e.interp.label, e.interp) for e in selected).values())
        scenarios = sorted(set(e.scenario for e in selected))
        selected = wanted(cores.ensure_cores(interpreters=interps, scenarios=scenarios, verbose=False))
    except Exception as e:
        tap.skip("cannot make test cores: %s: %s" % (type(e).__name__, e))
        return
    timeout = float(os.environ.get("PYSTACK_TIMEOUT", "60"))
    jobs = int(os.environ.get("PYSTACK_JOBS", "4"))
    runnable = [e for e in selected if e.status == "ok"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        futs = dict((e, ex.submit(analyse, e, timeout)) for e in runnable)
        for e in selected:
            tag = "%s %s" % (e.interp.label, e.scenario)
            if e.status == "skip":
                tap.skip("%s: %s" % (tag, e.message))
                continue
            if e.status != "ok":
                tap.ok(False, "%s: core generation" % tag, [e.message])
                continue
            try:
                check_core(tap, e, futs[e].result())
            except Exception:
                tap.ok(False, "%s: the harness" % tag, traceback.format_exc().splitlines())


def main():
    tap = TAP()
    only = os.environ.get("PYSTACK_TEST_ONLY")
    rx = re.compile(only) if only else None
    if rx is None or rx.search("fixture"):
        try:
            copy = sf.Copy()
            try:
                before = stored_crashes(copy)
            finally:
                copy.remove()
            check_fixture_stored(tap, before)
            if os.geteuid() != 0:
                tap.skip("fixture: not root: pystackd cannot analyse the fixture again")
            elif not os.access(programs.pystackd(), os.X_OK) or not os.access(programs.daemon_analyzer(), os.X_OK):
                tap.ok(False, "pystackd %s and the analyzer %s are built"
                       % (programs.pystackd(), programs.daemon_analyzer()),
                       ["build them first (make), or set PYSTACKD/PYSTACK"])
            else:
                old = signal.signal(signal.SIGTERM, lambda s, f: sys.exit(128 + s))
                try:
                    check_fixture_reanalysed(tap, before)
                finally:
                    signal.signal(signal.SIGTERM, old)
                    pf.cleanup_processes()
        except Exception:
            tap.ok(False, "fixture: the harness", traceback.format_exc().splitlines())
    check_cores(tap, rx)
    tap.diag("%d tests, %d failed, %d skipped" % (tap.n, tap.failed, tap.skipped))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
