#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: pystackd, the analysis service, with real crashes captured by
pystack-coredump as the kernel's core_pattern pipe handler.

Run as root from the build directory (after `make`):

    /usr/bin/python3 ../tests/integration/test_pystackd.py

Environment:
  PYSTACKD           service under test  } default: below the build
  PYSTACK_COREDUMP   handler             } directory, harness/programs.py
  PYSTACK            analyzer; Analyzer= in every config but case 4's
  PYSTACK_TEST_ONLY  regular expression over the case names (case1 ...
                     case10); the others are not run
  PYSTACK_COREDUMPCTL  a coredumpctl to use when none is installed (see
                     case 1)
  PYSTACK_UNIT_WAIT  seconds case 6 waits for systemd/pystackd.service.in
                     (default 30)
  PYSTACK_CAPTURE_KEEP=1  keep the scratch directory /tmp/pystackd-incoming.*
  PYSTACKD_TEST_TIMEOUT  the whole run's limit in seconds (default 1500)

Every case has its own 0711 directory below one scratch directory
/tmp/pystackd-incoming.XXXXXXXX: config `c` (Directory=`s`,
RuntimeDirectory=`r`, Analyzer=...), pystackd's stderr `log`, the worker
`worker.py`.  Crashes are real: Debian's /usr/bin/python3.11 running
worker.py (main -> sorted(key=f) -> f -> time.sleep, plus a thread named
pw-idler) gets SIGSEGV from this process while core_pattern is
`|pystack-coredump --config=<case>/c %F %P %u %g %s %t %c %h %d %e`.
core_pattern and core_pipe_limit (64 while running) are changed under the
flock of harness/corepattern.py and restored on every exit path.
Every pystackd and journald started here is stopped on every exit path
(pystackd_fixture.cleanup_processes, and PR_SET_PDEATHSIG).

The journal: pystackd's entries go to /run/systemd/journal/socket.  When
no journald listens there (PID 1 is not systemd), one of ours runs as a
plain background process in a private mount namespace (fresh tmpfs on
/run/systemd and /run/log, Storage=volatile, no kmsg/audit), pystackd runs
in that namespace through nsenter, and journalctl/coredumpctl read
/proc/<journald>/root/run/log/journal with --directory; the namespace and
its mounts vanish with journald.  Details: pystackd_fixture.py.

coredumpctl: Debian's package systemd-coredump is not installed by this
test: its postinst runs `/lib/systemd/systemd-sysctl
/usr/lib/sysctl.d/50-coredump.conf` unconditionally (not only when systemd
is PID 1), which sets kernel.core_pattern to systemd-coredump,
core_pipe_limit=16 and fs.suid_dumpable=2.  When coredumpctl is not on PATH
the coredumpctl checks are skipped, unless PYSTACK_COREDUMPCTL names one,
e.g. unpacked without running any maintainer script:
    apt-get download systemd-coredump && dpkg-deb -x systemd-coredump_*.deb x
    PYSTACK_COREDUMPCTL=$PWD/x/usr/bin/coredumpctl

Cases:
 1 end to end: crash -> stored -> analysed -> SQLite rows (crashes,
   threads, frames, locals, signatures) -> journal entry (journalctl -o
   json) -> coredumpctl list/info/dump; a root crash of a pyenv CPython
   (unreadable by the analyzer user by its path) is analysed with the
   interpreter the handler kept at the crash
 2 crashes stored while pystackd is down are analysed when it starts
 3 SIGKILL during analyses (10 queued, Workers=1), restart: each crash
   analysed and recorded exactly once
 4 analyzers that crash, hang, run out of memory: failed after
   MaxAttempts=2 with the reason; pystackd survives; SIGHUP back to the
   real analyzer and the next crash is analysed
 5 a backlog of 50 crashes is drained with a flat RSS
 6 systemd-analyze verify systemd/pystackd.service
 7 retention: MaxAge=1s removes analysed cores at the next start, the rows
   stay
 8 the command line: --help, an unknown option, a config typo
 9 a crash with 120 libraries loaded: the stored analysis has `pystack
   core`'s signature and crashed thread, frame for frame
10 the report as data in the journal (PYSTACK_REPORT_JSON): with
   JournalLocals=yes the locals are in it; after a SIGHUP to
   JournalReportMax=2K the next crash's is cut (valid JSON, at most 2K,
   journal_cut, PYSTACK_REPORT_TRUNCATED=1), the innermost frames kept;
   a crash of an interpreter with an FDO package note (objcopy'd):
   COREDUMP_PACKAGE_NAME, _VERSION and _JSON
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import atexit

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import cores  # noqa: E402
from harness import corepattern  # noqa: E402
import pystackd_fixture as pf  # noqa: E402
from pystackd_fixture import brief  # noqa: E402
from harness import programs  # noqa: E402
from harness.tap import TAP, Watchdog, run_case, watchdog  # noqa: E402

SIGSEGV = signal.SIGSEGV
ANALYSE_TIMEOUT = 120          # stored -> done, one crash


def zstd_d(path, timeout=120):
    r = subprocess.run(["zstd", "-q", "-d", "-c", path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def pick_pyenv():
    best = None
    for i in cores.find_interpreters():
        if i.origin == "pyenv" and i.version.startswith("3.") and \
                int(i.version.split(".")[1]) >= 6:
            best = i
    return best


def report_counts(report):
    """(threads, frames, locals) the report lists."""
    th = report.get("threads") or []
    frames = sum(len(t.get("frames") or []) for t in th)
    loc = sum(len(f.get("arguments") or []) + len(f.get("locals") or [])
              for t in th for f in (t.get("frames") or []))
    return len(th), frames, loc


def db_counts(store, cid):
    q = store.query
    return (q("SELECT count(*) AS n FROM threads WHERE crash_id = ?", (cid,))[0]["n"],
            q("SELECT count(*) AS n FROM frames WHERE crash_id = ?", (cid,))[0]["n"],
            q("SELECT count(*) AS n FROM locals WHERE crash_id = ?", (cid,))[0]["n"])


def expected_title(frames):
    """The title from the crashed thread's frames (outermost first), as an
    independent reading of what pystackd promises: '<SIG> in <innermost
    Python function> (<file name>:<line>)', plus ' via <C function>' when
    native frames lie between that frame and the Python frame calling it
    (the outermost of them)."""
    inner = None
    via = None
    for fr in reversed(frames):
        py = fr["kind"] == "python"
        if inner is None:
            if py:
                inner = fr
            continue
        if py:
            break
        if fr["function"]:
            via = fr["function"]
    if inner is None:
        return None
    t = "SIGSEGV in %s (%s:%d)" % (inner["function"],
                                    os.path.basename(inner["file"] or ""),
                                    inner["line"])
    return t + (" via %s" % via if via else "")


def queue_gaps(rows, t_start):
    """Seconds between the start and the first analysis, then between
    consecutive analyses (analyzed_usec), for a backlog drained at once."""
    ts = sorted(r["analyzed_usec"] / 1e6 for r in rows if r["analyzed_usec"])
    return [b - a for a, b in zip([t_start] + ts[:-1], ts)]


def check_queue_moves(tap, label, rows, t_start, workers):
    gaps = queue_gaps(rows, t_start)
    big = [g for g in gaps if g >= 4.0]
    tap.ok(gaps and not big, "%s: a free worker takes the next pending crash "
           "at once: no gap of 4s or more between analyses (largest %.2fs, "
           "%d of %d gaps >= 4s; the rescan interval is 5s)"
           % (label, max(gaps or [0]), len(big), len(gaps)),
           ["Workers=%s; gaps between consecutive analyzed_usec: %s"
            % (workers, " ".join("%.2f" % g for g in gaps))])


def by_storage(entries, store):
    pre = store.storage + "/"
    return [e for e in entries
            if (e.get("COREDUMP_FILENAME") or "").startswith(pre)]


def coredumpctl_path():
    p = os.environ.get("PYSTACK_COREDUMPCTL")
    if p:
        return p if os.access(p, os.X_OK) else None
    return shutil.which("coredumpctl")


# --------------------------------------------------------------------------
# case 1

def case1_end_to_end(tap, fx, jd):
    st = pf.Store(fx, "1", analysis="Workers=1\nTimeoutSec=60\nMaxAttempts=2")
    st.install()
    d = st.daemon(jd)
    if not tap.ok(d.start(), "case1: pystackd starts (%s)" % jd.describe(),
                  d.log_tail()):
        return
    w = pf.Worker(fx, st, tag="e2e")
    if not tap.ok(w.wait_ready(), "case1: the worker is ready"):
        w.discard()
        return
    exp = w.expect()
    rc = w.crash()
    t_reap = time.time()
    ok, rows = st.wait(lambda rs: len(rs) == 1 and rs[0]["state"] in
                       ("done", "failed"), ANALYSE_TIMEOUT)
    t_done = time.time()
    row = rows[0] if rows else {}
    dg = ["returncode %r" % rc] + [brief(r) for r in rows] + d.log_tail()
    if not tap.ok(ok and rc == -SIGSEGV and row.get("state") == "done" and
                  row.get("attempts") == 1 and row.get("error") is None,
                  "case1: crash -> stored -> analysed: state done, attempts "
                  "1, no error (%.1fs after the reap)" % (t_done - t_reap), dg):
        d.stop()
        return
    cid = row["id"]

    # -- the crash row
    dd = []
    try:
        report = json.loads(row.get("report") or "null")
    except ValueError as e:
        report = None
        dd.append("report is not JSON: %s" % e)
    if not isinstance(report, dict):
        dd.append("no report")
        report = {}
    for k, want in (("pid", exp["pid"]), ("uid", 0), ("gid", 0),
                    ("signal", int(SIGSEGV)), ("tid", exp["pid"]),
                    ("exe", pf.SYSTEM_PYTHON), ("python_version", "3.11"),
                    ("core_state", "present")):
        if row.get(k) != want:
            dd.append("%s: expected %r, got %r" % (k, want, row.get(k)))
    if not re.match(r"^[0-9a-f]{16}$", row.get("signature") or ""):
        dd.append("signature %r is not 16 hex digits" % row.get("signature"))
    if not (row.get("analyzed_usec") or 0) >= row.get("time_usec", 0):
        dd.append("analyzed_usec %r before time_usec %r"
                  % (row.get("analyzed_usec"), row.get("time_usec")))
    if report.get("python_version") != "3.11" or not report.get("text"):
        dd.append("report: python_version %r, text %d chars"
                  % (report.get("python_version"), len(report.get("text") or "")))
    tap.ok(not dd, "case1: crashes row: pid, uid, gid, signal, tid, exe, "
           "python_version 3.11, signature, report with text", dd)

    # -- threads
    dd = []
    threads = st.query("SELECT * FROM threads WHERE crash_id = ? ORDER BY idx",
                       (cid,))
    n_th, n_fr, n_loc = report_counts(report)
    if len(threads) != n_th or n_th != 2:
        dd.append("%d threads rows, the report has %d, the worker %d (%r)"
                  % (len(threads), n_th, len(exp["tids"]), exp["tids"]))
    crashed = [t for t in threads if t["crashed"]]
    if len(crashed) != 1 or crashed[0]["idx"] != 0 or \
            crashed[0]["tid"] != exp["pid"] or not crashed[0]["python"]:
        dd.append("crashed thread rows: %r" % crashed)
    if sorted(t["tid"] for t in threads) != sorted(exp["tids"]):
        dd.append("tids %r, the worker's %r"
                  % (sorted(t["tid"] for t in threads), exp["tids"]))
    names = dict((t["tid"], t["name"]) for t in threads)
    if "pw-idler" not in names.values():
        dd.append("thread names %r: no pw-idler" % names)
    if sum(1 for t in threads if t["has_gil"]) > 1:
        dd.append("more than one thread has the GIL")
    tap.ok(not dd, "case1: threads rows: 2 (crashed main thread first, "
           "pw-idler), tids and names", dd + ["%r" % t for t in threads])

    # -- frames of the crashed thread
    dd = []
    frames = st.query("SELECT * FROM frames WHERE crash_id = ? AND thread_idx = 0"
                      " ORDER BY idx", (cid,))
    allf = st.query("SELECT count(*) AS n FROM frames WHERE crash_id = ?",
                    (cid,))[0]["n"]
    if allf != n_fr:
        dd.append("%d frames rows, the report lists %d" % (allf, n_fr))
    py = [f for f in frames if f["kind"] == "python"]
    got = [(f["function"], os.path.basename(f["file"] or ""), f["line"])
           for f in py]
    L = exp["lines"]
    want = [("<module>", "worker.py", L["CALL-MAIN"]),
            ("main", "worker.py", L["CALL-F"]),
            ("f", "worker.py", L["CRASH-SITE"])]
    if got != want:
        dd.append("Python frames: expected %r" % want)
        dd.append("                    got %r" % got)
    for f in py:
        if f["function"] == "f" and "time.sleep(3600)" not in (f["source"] or ""):
            dd.append("f's source %r" % f["source"])
    tap.ok(not dd, "case1: frames rows of the crashed thread: <module> -> "
           "main -> f with files, lines and source", dd)

    dd = []
    native = [f for f in frames if f["kind"] == "native"]
    f_idx = [f["idx"] for f in py if f["function"] == "f"]
    inner = [f for f in native if f_idx and f["idx"] > f_idx[0]]
    between = [f for f in native if len(py) >= 2 and
               py[-2]["idx"] < f["idx"] < py[-1]["idx"]]
    if not inner or not inner[-1]["function"] or not inner[-1]["library"]:
        dd.append("no named native frame inside f (the sleep): %r"
                  % [(f["function"], f["library"]) for f in inner])
    if not between:
        dd.append("no native frame between main and f (tuple(f(1)): "
                  "PySequence_Tuple)")
    nob = [f for f in native if f["library"] and not f["build_id"]]
    if nob:
        dd.append("native frames without build_id although in modules: %r"
                  % [(f["function"], f["library"]) for f in nob[:5]])
    tap.ok(not dd, "case1: native frames: %s innermost, %s between main "
           "and f, build_ids from modules" % (
               "/".join("%s@%s" % (f["function"], f["library"]) for f in inner[-1:]),
               ",".join(str(f["function"]) for f in between)),
           dd + ["%s %s %s %s:%s" % (f["idx"], f["kind"], f["function"],
                                     f["library"] or f["file"], f["line"])
                 for f in frames])

    # -- locals of f
    dd = []
    loc = st.query("SELECT l.* FROM locals l JOIN frames f ON f.crash_id = "
                   "l.crash_id AND f.thread_idx = l.thread_idx AND f.idx = "
                   "l.frame_idx WHERE l.crash_id = ? AND l.thread_idx = 0 AND "
                   "f.function = 'f' ORDER BY l.argument DESC, l.idx", (cid,))
    nloc = st.query("SELECT count(*) AS n FROM locals WHERE crash_id = ?",
                    (cid,))[0]["n"]
    args = [(l["name"], l["repr"]) for l in loc if l["argument"]]
    locs = [(l["name"], l["repr"]) for l in loc if not l["argument"]]
    if args != [("item", "1")]:
        dd.append("arguments of f: expected [('item', '1')], got %r" % args)
    if ("payload", "'crash-me-1'") not in locs:
        dd.append("locals of f: no ('payload', \"'crash-me-1'\"): %r" % locs)
    if nloc != n_loc:
        dd.append("%d locals rows, the report lists %d" % (nloc, n_loc))
    tap.ok(not dd, "case1: locals rows: f(item=1), payload='crash-me-1'", dd)

    # -- modules and signature
    dd = []
    mods = st.query("SELECT * FROM modules WHERE crash_id = ?", (cid,))
    if not any(m["path"] == pf.SYSTEM_PYTHON and m["build_id"] for m in mods):
        dd.append("modules: no %s with a build_id: %r"
                  % (pf.SYSTEM_PYTHON, [m["path"] for m in mods]))
    title = expected_title(frames)
    sig = st.query("SELECT * FROM signatures WHERE signature = ?",
                   (row.get("signature"),))
    if len(sig) != 1 or sig[0]["count"] != 1 or sig[0]["title"] != title:
        dd.append("signatures: expected one row, count 1, title %r; got %r"
                  % (title, sig))
    elif not (sig[0]["first_usec"] and sig[0]["first_usec"] == sig[0]["last_usec"]):
        dd.append("first_usec/last_usec: %r" % sig)
    tap.ok(not dd, "case1: modules with build_ids; signatures row: count 1, "
           "title %r" % title, dd)

    # -- the journal entry
    msg = "Python process %d (worker.py) of user 0 crashed with %s" % (
        exp["pid"], title)
    ents = jd.wait_entries(lambda e: e.get("COREDUMP_PID") == str(exp["pid"])
                           and e.get("COREDUMP_FILENAME", "").startswith(
                               st.storage + "/"), timeout=30)
    t_journal = time.time()
    dd = []
    if len(ents) != 1:
        dd.append("%d journal entries for pid %d" % (len(ents), exp["pid"]))
    e = ents[0] if ents else {}
    core_file = os.path.join(st.storage, row.get("core_path") or "?")
    want = {
        "MESSAGE": msg, "PRIORITY": "2",
        "MESSAGE_ID": pf.COREDUMP_MESSAGE_ID,
        "SYSLOG_IDENTIFIER": "pystackd",
        "COREDUMP_PID": str(exp["pid"]), "COREDUMP_UID": "0",
        "COREDUMP_GID": "0", "COREDUMP_SIGNAL": str(int(SIGSEGV)),
        "COREDUMP_SIGNAL_NAME": "SIGSEGV",
        "COREDUMP_EXE": pf.SYSTEM_PYTHON, "COREDUMP_COMM": exp["comm"],
        "COREDUMP_CMDLINE": " ".join(w.argv),
        "COREDUMP_TIMESTAMP": str(row.get("time_usec")),
        "COREDUMP_FILENAME": core_file,
        "COREDUMP_CWD": st.dir,
        "PYSTACK_CRASH_ID": str(cid),
        "PYSTACK_SIGNATURE": row.get("signature"),
        "PYSTACK_TITLE": title,
        "PYSTACK_PYTHON_VERSION": "3.11",
        # the one renderer's text without locals (JournalLocals=no), as pystackctl show --native
        "PYSTACK_REPORT": show_native(st, cid),
    }
    if ents:
        for k, v in sorted(want.items()):
            if e.get(k) != v:
                dd.append("%s: expected %r" % (k, v if k != "PYSTACK_REPORT"
                                                else (v or "")[:200]))
                dd.append("%s      got %r" % (" " * len(k), e.get(k) if k !=
                                              "PYSTACK_REPORT" else
                                              (e.get(k) or "")[:200]))
        if e.get("_PID") != str(d.pid):
            dd.append("_PID %r, pystackd is %d" % (e.get("_PID"), d.pid))
        if not os.path.isfile(core_file):
            dd.append("COREDUMP_FILENAME %s does not exist" % core_file)
    tap.ok(not dd, "case1: journal entry (journalctl -o json, %.1fs after "
           "the reap): MESSAGE %r, PRIORITY, MESSAGE_ID, COREDUMP_*, "
           "PYSTACK_*" % (t_journal - t_reap, msg), dd)
    case1_journal_data(tap, e, report, row, L)
    if dd and ents:
        tap.diag(["entry: " + json.dumps(dict((k, v) for k, v in e.items()
                                              if k != "PYSTACK_REPORT"))[:3000]])
    text = report.get("text") or ""
    tap.ok(re.search(r'worker\.py", line %d, in f\n' % L["CRASH-SITE"], text)
           and "time.sleep(3600)" in text and "payload: 'crash-me-1'" in text,
           "case1: the stored report's text shows f in worker.py, "
           "its source line and locals", text.splitlines()[:60])
    jtext = e.get("PYSTACK_REPORT") or ""
    tap.ok(re.search(r'worker\.py", line %d, in f\n' % L["CRASH-SITE"], jtext)
           and "time.sleep(3600)" in jtext and "crash-me-1" not in jtext,
           "case1: the journal's text (PYSTACK_REPORT) shows f in worker.py and its source line, "
           "not its locals", jtext.splitlines()[:60])

    case1_coredumpctl(tap, jd, st, row, exp)
    case1_pyenv(tap, fx, jd, st, d)
    rc = d.stop()
    tap.ok(rc == 0, "case1: pystackd stops on SIGTERM with status 0",
           ["exit %r" % rc] + d.log_tail())


def show_native(st, cid):
    r = subprocess.run([programs.pystackctl(), "--config=%s" % st.conf, "--no-pager", "show", "--native",
                        "ID=%d" % cid], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return r.stdout.decode("utf-8", "surrogateescape") if r.returncode == 0 else None


def without_text_and_locals(report):
    """The report as PYSTACK_REPORT_JSON carries it by default."""
    want = dict((k, v) for k, v in report.items() if k != "text")
    want["threads"] = [dict(t, frames=[dict((k, v) for k, v in f.items()
                                            if k not in ("arguments", "locals", "locals_error"))
                                       for f in t.get("frames", [])])
                       for t in report.get("threads", [])]
    return want


def case1_journal_data(tap, e, report, row, L):
    """The entry's report as data, and systemd-coredump's newer fields."""
    dd = []
    try:
        data = json.loads(e.get("PYSTACK_REPORT_JSON") or "null")
    except ValueError as ex:
        data = None
        dd.append("PYSTACK_REPORT_JSON is not JSON: %s" % ex)
    if data != without_text_and_locals(report):
        dd.append("PYSTACK_REPORT_JSON is not the stored report without text and locals")
        dd.append("keys %r" % sorted((data or {}).keys()))
    if "PYSTACK_REPORT_TRUNCATED" in e:
        dd.append("PYSTACK_REPORT_TRUNCATED=%r for a whole report" % e["PYSTACK_REPORT_TRUNCATED"])
    tap.ok(not dd, "case1: PYSTACK_REPORT_JSON is the stored report as data, without its text and locals "
           "(JournalLocals=no), %d bytes" % len(e.get("PYSTACK_REPORT_JSON") or ""), dd)
    crashed = [t for t in report.get("threads", []) if t.get("crashed")]
    tid = crashed[-1]["tid"] if crashed else None
    names = dict((str(t), n) for t, n in json.loads(row.get("thread_names") or "[]"))
    want = {
        "COREDUMP_TID": str(tid), "COREDUMP_THREAD_NAME": names.get(str(tid)),
        "COREDUMP_CODE": str(report["signal"]["code"]),
        "PYSTACK_SCRIPT": "worker.py", "PYSTACK_FUNCTION": "f",
        "PYSTACK_FILE": report["frame"]["file"], "PYSTACK_LINE": str(L["CRASH-SITE"]),
    }
    dd = ["%s: %r, expected %r" % (k, e.get(k), v) for k, v in sorted(want.items()) if e.get(k) != v]
    if not report["frame"]["file"].endswith("/worker.py"):
        dd.append("the report's frame %r" % report["frame"])
    tap.ok(not dd, "case1: COREDUMP_TID %s, COREDUMP_THREAD_NAME %r, COREDUMP_CODE %s, PYSTACK_SCRIPT, "
           "PYSTACK_FUNCTION, PYSTACK_FILE, PYSTACK_LINE" % (want["COREDUMP_TID"], want["COREDUMP_THREAD_NAME"],
                                                           want["COREDUMP_CODE"]), dd)


def case10_journal_json(tap, fx, jd):
    st = pf.Store(fx, "10", analysis="Workers=1", daemon="JournalLocals=yes")
    st.install()
    d = st.daemon(jd)
    if not tap.ok(d.start(), "case10: pystackd starts", d.log_tail()):
        return

    def one(tag):
        w = pf.Worker(fx, st, tag=tag)
        if not w.wait_ready():
            w.discard()
            return None, None
        w.crash()
        ok, rows = st.wait(lambda rs: any(r["pid"] == w.pid and r["state"] == "done" for r in rs),
                           ANALYSE_TIMEOUT)
        row = [r for r in rows if r["pid"] == w.pid]
        ents = jd.wait_entries(lambda e: e.get("COREDUMP_PID") == str(w.pid), timeout=30,
                               matches=("COREDUMP_PID=%d" % w.pid,))
        return (row[0] if row and ok else None), (ents[0] if ents else None)

    row, e = one("10a")
    if not tap.ok(row and e, "case10: a crash analysed and its entry written", d.log_tail()):
        return
    report = json.loads(st.query("SELECT report FROM crashes WHERE id = ?", (row["id"],))[0]["report"])
    data = json.loads(e.get("PYSTACK_REPORT_JSON") or "null")
    want = dict((k, v) for k, v in report.items() if k != "text")
    tap.ok(data == want and "PYSTACK_REPORT_TRUNCATED" not in e,
           "case10: JournalLocals=yes: the report with its locals (%d bytes)" % len(e.get("PYSTACK_REPORT_JSON", "")),
           ["keys %r" % sorted((data or {}).keys())])
    tap.ok("payload: 'crash-me-1'" in (e.get("PYSTACK_REPORT") or ""),
           "case10: JournalLocals=yes: the text report has them too",
           (e.get("PYSTACK_REPORT") or "").splitlines()[:40])
    st.write_conf(analysis="Workers=1", daemon="JournalLocals=yes\nJournalReportMax=2K")
    d.signal(signal.SIGHUP)
    time.sleep(1)
    row, e = one("10b")
    if not tap.ok(row and e, "case10: after SIGHUP, another crash analysed", d.log_tail()):
        return
    report = json.loads(st.query("SELECT report FROM crashes WHERE id = ?", (row["id"],))[0]["report"])
    raw = e.get("PYSTACK_REPORT_JSON") or ""
    dd = []
    try:
        data = json.loads(raw)
    except ValueError as ex:
        data = {}
        dd.append("not JSON: %s" % ex)
    crashed = [t for t in report["threads"] if t.get("crashed")][-1]
    mine = [t for t in data.get("threads", []) if t.get("crashed")]
    if len(raw.encode()) > 2048:
        dd.append("%d bytes" % len(raw.encode()))
    if e.get("PYSTACK_REPORT_TRUNCATED") != "1":
        dd.append("PYSTACK_REPORT_TRUNCATED %r" % e.get("PYSTACK_REPORT_TRUNCATED"))
    cut = data.get("journal_cut") or []
    if not cut or cut[0] != "locals":
        dd.append("journal_cut %r" % cut)
    if not mine or not mine[-1]["frames"] or mine[-1]["frames"][-1] != \
            dict((k, v) for k, v in crashed["frames"][-1].items()
                 if k not in ("arguments", "locals", "locals_error")):
        dd.append("the crashed thread's innermost frame is not kept: %r" % (mine[-1]["frames"][-1:] if mine else None))
    elif len(mine[-1]["frames"]) + mine[-1].get("frames_omitted", 0) != len(crashed["frames"]):
        dd.append("%d frames kept + %r omitted != %d" % (len(mine[-1]["frames"]), mine[-1].get("frames_omitted"),
                                                         len(crashed["frames"])))
    if data.get("signature") != report.get("signature"):
        dd.append("signature %r" % data.get("signature"))
    tap.ok(not dd, "case10: JournalReportMax=2K: cut to %d bytes of valid JSON (%s), the crashed thread's "
           "innermost frames kept, PYSTACK_REPORT_TRUNCATED=1" % (len(raw.encode()), ", ".join(cut)), dd)
    case10_package(tap, fx, st, d, jd)
    d.stop()


def case10_package(tap, fx, st, d, jd):
    """A crash of an interpreter whose file has an FDO package note: the entry names its package."""
    import test_package_notes as tpn
    if not shutil.which("objcopy"):
        tap.skip("case10: package note: objcopy is not installed")
        return
    exe = os.path.join(st.dir, "python3.11-packaged")
    note = os.path.join(st.dir, "note.bin")
    pkg = {"type": "deb", "name": "python3-pystackd-test", "version": "3.11.2-6+case10", "architecture": "amd64"}
    with open(note, "wb") as fh:
        fh.write(tpn.note_file(json.dumps(pkg).encode()))
    r = subprocess.run(["objcopy", "--add-section", ".note.package=" + note, "--set-section-flags",
                        ".note.package=alloc,readonly", pf.SYSTEM_PYTHON, exe], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    if not tap.ok(r.returncode == 0, "case10: objcopy gives a copy of %s a package note" % pf.SYSTEM_PYTHON,
                  [r.stdout.decode(errors="replace")[-300:]]):
        return
    os.chmod(exe, 0o755)
    w = pf.Worker(fx, st, interp=exe, tag="10c")
    if not w.wait_ready():
        w.discard()
        tap.ok(False, "case10: the packaged interpreter's worker is ready")
        return
    w.crash()
    ents = jd.wait_entries(lambda e: e.get("COREDUMP_PID") == str(w.pid), timeout=ANALYSE_TIMEOUT,
                           matches=("COREDUMP_PID=%d" % w.pid,))
    e = ents[0] if ents else {}
    try:
        pj = json.loads(e.get("COREDUMP_PACKAGE_JSON") or "null")
    except ValueError:
        pj = None
    tap.ok(e.get("COREDUMP_PACKAGE_NAME") == pkg["name"] and e.get("COREDUMP_PACKAGE_VERSION") == pkg["version"]
           and isinstance(pj, dict) and pj.get(exe) == pkg,
           "case10: the entry of a crash of an interpreter with a package note: COREDUMP_PACKAGE_NAME %r, "
           "_VERSION %r, _JSON keyed by its path" % (pkg["name"], pkg["version"]),
           ["%s=%r" % (k, v) for k, v in sorted(e.items()) if k.startswith("COREDUMP_PACKAGE")] + d.log_tail(3))


def case1_coredumpctl(tap, jd, st, row, exp):
    cdc = coredumpctl_path()
    if not cdc:
        tap.skip("case1: coredumpctl: not installed; systemd-coredump is "
                 "not installed here because its postinst runs systemd-sysctl "
                 "50-coredump.conf unconditionally (sets kernel.core_pattern "
                 "even without systemd as PID 1); set PYSTACK_COREDUMPCTL to "
                 "an unpacked one")
        return
    pid = str(exp["pid"])
    rc, out, err = jd.run(cdc, ["--no-pager", "--no-legend", "list"])
    lines = [l for l in out.decode(errors="replace").splitlines()
             if re.search(r"\b%s\b" % pid, l)]
    tap.ok(rc == 0 and len(lines) == 1 and "SIGSEGV" in lines[0] and
           "present" in lines[0] and pf.SYSTEM_PYTHON in lines[0],
           "case1: coredumpctl --directory list shows pid %s: %r"
           % (pid, lines[0] if lines else None),
           ["exit %r" % rc, "stdout: %r" % out[-1500:], "stderr: %r" % err[-500:]])
    rc, out, err = jd.run(cdc, ["--no-pager", "info", pid])
    text = out.decode(errors="replace")
    core_file = os.path.join(st.storage, row["core_path"])
    dd = []
    for pat in (r"PID: %s \(python3\.11\)" % pid, r"UID: 0 \(root\)",
                r"Signal: 11 \(SEGV\)", r"Executable: /usr/bin/python3\.11",
                r"Storage: %s \(present\)" % re.escape(core_file),
                r"Command Line: .*worker\.py",
                r"Message: Python process %s \(worker\.py\)" % pid):
        if not re.search(pat, text):
            dd.append("no line matching %r" % pat)
    tap.ok(rc == 0 and not dd, "case1: coredumpctl info %s: PID, UID, "
           "Signal, Executable, Storage (present), Message" % pid,
           dd + ["exit %r" % rc] + ["  | " + l for l in text.splitlines()[:40]]
           + ["stderr: %r" % err[-500:]])
    tmp = tempfile.mkdtemp(prefix="pystackd-test-dump.")
    try:
        dump = os.path.join(tmp, "core")
        rc, out, err = jd.run(cdc, ["--no-pager", "dump", pid, "-o", dump],
                              timeout=120)
        dd = ["exit %r, stderr %r" % (rc, err[-500:])]
        zrc, plain, zerr = zstd_d(core_file)
        ok = False
        if rc == 0 and os.path.exists(dump) and zrc == 0:
            with open(dump, "rb") as fh:
                got = fh.read()
            ok = got == plain
            dd.append("dump %d bytes, zstd -d of the stored core %d bytes, "
                      "core_size %r" % (len(got), len(plain), row["core_size"]))
        tap.ok(ok, "case1: coredumpctl dump %s -o FILE restores the core "
               "(the stored .zst decompressed)" % pid, dd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case1_pyenv(tap, fx, jd, st, d):
    """Root's crash of a pyenv CPython in root's 0700 home: the analyzer
    user cannot read the interpreter by its path, and reads the copy the
    handler kept at the crash instead (issue 13)."""
    interp = pick_pyenv()
    if not interp:
        tap.skip("case1 pyenv: no pyenv CPython 3 installed")
        return
    w = pf.Worker(fx, st, interp=interp.path, tag="pyenv")
    if not tap.ok(w.wait_ready(), "case1 pyenv: the %s worker is ready"
                  % interp.label):
        w.discard()
        return
    exp = w.expect()
    rc = w.crash()
    t0 = time.time()
    ok, rows = st.wait(lambda rs: any(r["pid"] == exp["pid"] and r["state"] in
                                      ("done", "failed") for r in rs), 90)
    row = [r for r in rows if r["pid"] == exp["pid"]]
    row = row[0] if row else {}
    dd = ["returncode %r" % rc, brief(row) if row else "no row"] + d.log_tail(5)
    tap.ok(ok and row.get("state") == "done" and d.alive(),
           "case1 pyenv: a root crash of %s from root's 0700 home is analysed "
           "within %.0fs" % (interp.label, time.time() - t0), dd)
    kept = st.query("SELECT path, hash, note FROM crash_binaries WHERE crash_id = ?",
                    (row.get("id", -1),))
    exe = [k for k in kept if k["path"] == interp.path]
    tap.ok(exe and exe[0]["hash"] and not exe[0]["note"],
           "case1 pyenv: the interpreter was kept at the crash (binaries/<sha256>)",
           ["kept: %r" % [(k["path"], k["hash"], k["note"]) for k in kept]])
    funcs = []
    if row.get("state") == "done":
        rep = json.loads(st.query("SELECT report FROM crashes WHERE id = ?", (row["id"],))[0]["report"])
        funcs = [f.get("function") for t in rep.get("threads", []) for f in t.get("frames", [])
                 if f.get("kind") == "python"]
    tap.ok("f" in funcs, "case1 pyenv: its Python frames are there (f)", ["python frames: %r" % funcs])


# --------------------------------------------------------------------------
# case 2

def case2_stored_while_down(tap, fx, jd, n=3):
    st = pf.Store(fx, "2", analysis="Workers=2")
    st.install()
    ws, diag = pf.crash_many(fx, st, n, tag="down")
    fx.reset_pattern()
    rows = st.crashes()
    tap.ok(not diag and len(rows) == n and all(r["state"] == "pending"
                                              for r in rows),
           "case2: %d crashes stored with no pystackd running: pending" % n,
           diag + [brief(r) for r in rows])
    if os.path.exists(st.runtime):
        tap.diag("case2: the runtime directory exists before pystackd ran")
    d = st.daemon(jd)
    t0 = time.time()
    if not tap.ok(d.start(), "case2: pystackd starts", d.log_tail()):
        return
    ok, rows = st.wait_settled(n, ANALYSE_TIMEOUT)
    dt = time.time() - t0
    bad = [r for r in rows if r["state"] != "done" or r["attempts"] != 1]
    tap.ok(ok and not bad and len(rows) == n,
           "case2: all %d analysed after the start (%.1fs), attempts 1"
           % (n, dt), [brief(r) for r in rows] + d.log_tail())
    ents = by_storage(jd.wait_entries(lambda e: e.get("COREDUMP_FILENAME", "")
                                      .startswith(st.storage + "/"), n, 30), st)
    tap.ok(len(ents) == n, "case2: %d journal entries" % n,
           ["%d entries" % len(ents)])
    rc = d.stop()
    tap.ok(rc == 0, "case2: pystackd stops (status 0)", ["exit %r" % rc])


# --------------------------------------------------------------------------
# case 9

MANY_LIBS_SCRIPT = r'''
import ctypes, glob, os, signal, sys
# every shared library of the system that loads, up to 120: a process with
# as many mapped ELF files as a numpy or torch service has
n = 0
for path in sorted(glob.glob("/usr/lib/x86_64-linux-gnu/lib*.so.*")):
    if n >= 120:
        break
    try:
        ctypes.CDLL(path)
        n += 1
    except OSError:
        pass
sys.stdout.write("%d\n" % n)
sys.stdout.flush()
os.kill(os.getpid(), signal.SIGSEGV)
'''


def case9_many_libraries(tap, fx, jd):
    """The analysis pystackd runs is the one `pystack core` gives, also for a
    process with many libraries (the analyzer holds two descriptors per
    mapped ELF file; at RLIMIT_NOFILE 64 the innermost frames went)."""
    st = pf.Store(fx, "9", analysis="Workers=1")
    st.install()
    d = st.daemon(jd)
    if not tap.ok(d.start(), "case9: pystackd starts", d.log_tail()):
        return
    script = os.path.join(st.dir, "many_libs.py")
    with open(script, "w") as fh:
        fh.write(MANY_LIBS_SCRIPT)
    os.chmod(script, 0o644)
    p = subprocess.run([pf.SYSTEM_PYTHON, "-E", "-s", "-B", script], cwd=st.dir,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, env=pf.child_env(), timeout=120)
    loaded = int(p.stdout.split()[0]) if p.stdout.split() else 0
    ok, rows = st.wait_settled(1, ANALYSE_TIMEOUT)
    row = rows[0] if rows else {}
    if not tap.ok(ok and row.get("state") == "done" and loaded >= 60,
                  "case9: a crash with %d libraries loaded by ctypes is analysed" % loaded,
                  ["returncode %r" % p.returncode, brief(row) if row else "no row"] + d.log_tail()):
        return
    # the analysis of the raw core can be done before the compressed one is recorded
    ok, rows = st.wait(lambda rs: rs and rs[0]["core_path"], 120)
    if not tap.ok(ok, "case9: the compressed core is recorded", [brief(r) for r in rows]):
        return
    stored = json.loads(st.query("SELECT report FROM crashes WHERE id = ?", (row["id"],))[0]["report"])
    core = os.path.join(st.storage, rows[0]["core_path"])
    r = subprocess.run([programs.pystack(), "core", core, "--native", "--locals", "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    try:
        direct = json.loads(r.stdout)
    except ValueError:
        direct = None

    def frames(doc):
        t = doc["threads"][0]
        return [(f.get("kind"), f.get("function"), f.get("file") or f.get("library"))
                for f in t.get("frames", [])]
    dd = []
    if direct is None:
        dd = ["pystack core exit %r: %r" % (r.returncode, r.stderr[-500:])]
    else:
        if stored.get("signature") != direct.get("signature"):
            dd.append("signature: pystackd's %r, pystack core's %r"
                      % (stored.get("signature"), direct.get("signature")))
        if frames(stored) != frames(direct):
            dd.append("crashed thread: pystackd's %d frames, pystack core's %d"
                      % (len(frames(stored)), len(frames(direct))))
            dd += ["  %r" % (x,) for x in frames(stored)[:8]]
            dd += ["  direct %r" % (x,) for x in frames(direct)[:8]]
    tap.ok(not dd, "case9: pystackd's stored analysis has pystack core's signature and crashed "
           "thread, frame for frame (%d libraries mapped)" % len(stored.get("modules", [])), dd)
    d.stop()


# --------------------------------------------------------------------------
# case 3

def case3_sigkill(tap, fx, jd, n=10, kill_after=3):
    st = pf.Store(fx, "3", analysis="Workers=1\nMaxAttempts=3")
    st.install()
    ws, diag = pf.crash_many(fx, st, n, tag="k")
    fx.reset_pattern()
    if not tap.ok(not diag and len(st.crashes()) == n,
                  "case3: %d crashes queued" % n, diag):
        return
    d = st.daemon(jd)
    if not tap.ok(d.start(), "case3: pystackd starts (Workers=1)",
                  d.log_tail()):
        return
    # kill while an analysis runs, once kill_after are done
    ok, rows = st.wait(lambda rs: sum(r["state"] == "done" for r in rs)
                       >= kill_after and any(r["state"] == "running"
                                             for r in rs),
                       ANALYSE_TIMEOUT, interval=0.01)
    kids = d.children()
    d.kill()
    t_kill = time.time()
    at_kill = dict((s, n_) for s, n_ in st.states().items())
    tap.diag("case3: SIGKILL with states %r; analyzer children %r"
             % (at_kill, kids))
    tap.ok(ok and at_kill.get("done", 0) < n and at_kill.get("running"),
           "case3: SIGKILL pystackd during an analysis, after %d (states at "
           "the kill: %r)" % (kill_after, at_kill), [brief(r) for r in rows])
    # an orphaned analysis: its pipe is gone, it should end by itself
    left = []
    deadline = time.time() + 15
    while time.time() < deadline:
        left = [k for k in kids if os.path.exists("/proc/%d" % k)]
        if not left:
            break
        time.sleep(0.1)
    if kids:
        tap.diag("case3: orphaned analyzer %r %s" % (
            kids, "still running 15s after the kill" if left else
            "ended %.1fs after the kill" % (time.time() - t_kill)))
    running_before = [r["id"] for r in st.crashes() if r["state"] == "running"]
    d2 = st.daemon(jd)
    t_restart = time.time()
    if not tap.ok(d2.start(), "case3: pystackd restarts", d2.log_tail()):
        return
    ok, rows = st.wait_settled(n, ANALYSE_TIMEOUT * 2)
    tap.diag("case3: the rest drained in %.1fs after the restart; gaps "
             "between analyses: %s" % (time.time() - t_restart, " ".join(
                 "%.2f" % g for g in queue_gaps(
                     [r for r in rows if (r["analyzed_usec"] or 0) / 1e6 >=
                      t_restart], t_restart))))
    dd = []
    if not ok:
        dd.append("not all settled")
    dd += [brief(r) for r in rows if r["state"] != "done"]
    if any(r["state"] == "running" for r in rows):
        dd.append("rows left running")
    tap.ok(ok and not dd and len(rows) == n, "case3: after the restart all "
           "%d done, none running (claimed while killed: %r)"
           % (n, running_before), dd + d2.log_tail())
    dd = []
    for r in rows:
        try:
            rep = json.loads(r["report"] or "null") or {}
        except ValueError:
            rep = {}
        want = report_counts(rep)
        got = db_counts(st, r["id"])
        if want != got or want[0] == 0:
            dd.append("crash %d: threads/frames/locals rows %r, the report "
                      "lists %r" % (r["id"], got, want))
    tap.ok(not dd, "case3: every crash has exactly its report's threads, "
           "frames and locals rows (no duplicates, none missing)", dd)
    dd = []
    per = dict((x["signature"], x["n"]) for x in st.query(
        "SELECT signature, count(*) AS n FROM crashes GROUP BY signature"))
    sigs = st.query("SELECT signature, count, title FROM signatures")
    if None in per:
        dd.append("%d done crashes without a signature" % per[None])
    for s in sigs:
        if per.get(s["signature"]) != s["count"]:
            dd.append("signature %s: count %d, crashes with it %r"
                      % (s["signature"], s["count"], per.get(s["signature"])))
    if sum(s["count"] for s in sigs) != n or len(sigs) != 1:
        dd.append("signatures %r: expected one with count %d" % (sigs, n))
    tap.ok(not dd, "case3: signature counts equal the crashes (%s)"
           % ", ".join("%s=%d" % (s["signature"], s["count"]) for s in sigs), dd)
    ents = by_storage(jd.wait_entries(lambda e: e.get("COREDUMP_FILENAME", "")
                                      .startswith(st.storage + "/"), n, 30), st)
    ids = sorted(int(e.get("PYSTACK_CRASH_ID", 0)) for e in ents)
    want = sorted(r["id"] for r in rows)
    tap.ok(ids == want, "case3: one journal entry per crash (%d)" % n,
           ["crash ids in the journal: %r, expected %r" % (ids, want)])
    attempts = [r["attempts"] for r in rows]
    tap.diag("case3: attempts %r" % attempts)
    rc = d2.stop()
    tap.ok(rc == 0, "case3: pystackd stops (status 0)", ["exit %r" % rc])


# --------------------------------------------------------------------------
# case 4

BAD_ANALYZER_C = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    const char *mode = strrchr(argv[0], '-') + 1;
    if (!strcmp(mode, "segv")) {
        volatile int *p = NULL;
        return *p;
    }
    if (!strcmp(mode, "hang"))
        for (;;)
            pause();
    if (!strcmp(mode, "oom")) {
        /* as the real analyzer does when malloc fails under RLIMIT_AS */
        size_t total = 0;
        for (;;) {
            char *p = malloc(1 << 20);
            if (!p) {
                fprintf(stderr, "pystack: /dev/fd/3: out of memory (%zu MiB)\n", total >> 20);
                return 1;
            }
            memset(p, 1, 1 << 20);
            total += 1 << 20;
        }
    }
    return 2;
}
"""


def case4_bad_analyzers(tap, fx, jd):
    st = pf.Store(fx, "4", analysis="Workers=1\nTimeoutSec=2\nMemoryMax=64M\n"
                  "MaxAttempts=2")
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        tap.skip("case4: no C compiler for the fake analyzers")
        return
    src = os.path.join(st.dir, "bad.c")
    with open(src, "w") as fh:
        fh.write(BAD_ANALYZER_C)
    exe = os.path.join(st.dir, "bad-analyzer")
    r = subprocess.run([cc, "-O0", "-o", exe, src], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    if not tap.ok(r.returncode == 0, "case4: fake analyzers compile",
                  [r.stdout.decode(errors="replace")]):
        return
    modes = [("segv", "the analyzer crashed with SIGSEGV"),
             ("hang", "the analysis took longer than TimeoutSec=2"),
             ("oom", "the analysis needed more than MemoryMax (64 MiB)")]
    for m, _ in modes:
        os.link(exe, exe + "-" + m)
        os.chmod(exe + "-" + m, 0o755)
    conf = "Workers=1\nTimeoutSec=2\nMemoryMax=64M\nMaxAttempts=2"
    st.write_conf(analysis=conf, analyzer=exe + "-segv")
    st.install()
    d = st.daemon(jd)
    if not tap.ok(d.start(), "case4: pystackd starts with Analyzer=%s-segv"
                  % os.path.basename(exe), d.log_tail()):
        return
    pid0 = d.pid
    for i, (m, reason) in enumerate(modes):
        if i:
            st.write_conf(analysis=conf, analyzer=exe + "-" + m)
            d.signal(signal.SIGHUP)
            deadline = time.time() + 10
            while time.time() < deadline and \
                    d.log().count("configuration reloaded") < i:
                time.sleep(0.05)
        ws, diag = pf.crash_many(fx, st, 1, tag=m)
        t0 = time.time()
        ok, rows = st.wait(lambda rs: len(rs) == i + 1 and rs[i]["state"] in
                           ("done", "failed"), 60)
        row = rows[i] if len(rows) > i else {}
        tap.ok(ok and not diag and row.get("state") == "failed" and
               row.get("attempts") == 2 and row.get("error") == reason and
               d.alive() and d.pid == pid0,
               "case4: Analyzer that %s: failed after %s attempts (%.1fs), "
               "error %r; pystackd still running"
               % ({"segv": "segfaults", "hang": "hangs",
                   "oom": "exceeds MemoryMax"}[m], row.get("attempts"),
                  time.time() - t0, row.get("error")),
               diag + ["expected error %r, attempts 2" % reason,
                       brief(row) if row else "no row"] + d.log_tail(8))
        left = [k for k in d.children()]
        if left:
            tap.diag("case4: analyzer processes still running: %r" % left)
    # back to the real analyzer
    st.write_conf(analysis=conf)
    d.signal(signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and \
            d.log().count("configuration reloaded") < len(modes):
        time.sleep(0.05)
    ws, diag = pf.crash_many(fx, st, 1, tag="good")
    fx.reset_pattern()
    ok, rows = st.wait(lambda rs: len(rs) == 4 and rs[3]["state"] in
                       ("done", "failed"), ANALYSE_TIMEOUT)
    row = rows[3] if len(rows) > 3 else {}
    tap.ok(ok and row.get("state") == "done" and row.get("attempts") == 1 and
           d.pid == pid0 and d.alive(),
           "case4: after SIGHUP (Analyzer= the real one) the next crash is "
           "analysed by the same pystackd", [brief(r) for r in rows]
           + d.log_tail(8))
    tap.ok(all(r["state"] == "failed" for r in rows[:3]),
           "case4: the failed crashes stay failed (not retried after the "
           "reload)", [brief(r) for r in rows])
    rc = d.stop()
    tap.ok(rc == 0, "case4: pystackd stops (status 0)", ["exit %r" % rc])


# --------------------------------------------------------------------------
# case 5

def case5_backlog(tap, fx, jd, n=50):
    st = pf.Store(fx, "5", analysis="Workers=0")
    st.install()
    t0 = time.time()
    ws, diag = pf.crash_many(fx, st, n, tag="b")
    fx.reset_pattern()
    if not tap.ok(not diag and len(st.crashes()) == n,
                  "case5: %d crashes stored (%.0fs)" % (n, time.time() - t0),
                  diag):
        return
    d = st.daemon(jd)
    if not tap.ok(d.start(), "case5: pystackd starts (Workers=0)",
                  d.log_tail()):
        return
    samples = []
    t0 = time.time()
    deadline = t0 + 600
    rows = []
    while time.time() < deadline:
        rss = d.rss_kib()
        if rss is not None:
            samples.append((time.time() - t0, rss))
        rows = st.crashes()
        if all(r["state"] in ("done", "failed") for r in rows):
            break
        time.sleep(0.25)
    dt = time.time() - t0
    rss_end = d.rss_kib()
    done = sum(r["state"] == "done" for r in rows)
    tap.ok(done == n, "case5: the backlog of %d is drained: %d done in "
           "%.1fs (%.2f crashes/s)" % (n, done, dt, done / dt if dt else 0),
           [brief(r) for r in rows if r["state"] != "done"][:10]
           + d.log_tail())
    check_queue_moves(tap, "case5", rows, t0, "0 (%d CPUs)" % os.cpu_count())
    vals = [s[1] for s in samples]
    if vals:
        step = max(1, len(samples) // 20)
        tap.diag("case5: VmRSS (KiB) over the drain: " + " ".join(
            "%.1fs:%d" % s for s in samples[::step]) +
            " end:%s" % rss_end)
        limit = 2 * vals[0] + 8192
        with open(programs.pystackd(), "rb") as fh:
            asan = b"__asan_init" in fh.read()
        if asan:
            # AddressSanitizer's quarantine keeps freed memory on purpose
            tap.skip("case5: pystackd RSS in an ASan build (max %d KiB) is its quarantine, "
                     "not ours: measured in the plain suite" % max(vals))
        else:
            tap.ok(max(vals) <= limit, "case5: pystackd RSS stays flat: first "
                   "%d KiB, max %d KiB, last %d KiB (limit 2x first + 8 MiB = "
                   "%d KiB)" % (vals[0], max(vals), vals[-1], limit))
    else:
        tap.ok(False, "case5: RSS samples", ["none"])
    sigs = st.query("SELECT sum(count) AS n FROM signatures")
    tap.ok(sigs and sigs[0]["n"] == done, "case5: signature counts add up "
           "to %d" % done, ["%r" % sigs])
    rc = d.stop()
    tap.ok(rc == 0, "case5: pystackd stops (status 0)", ["exit %r" % rc])


# --------------------------------------------------------------------------
# case 6

def case6_unit(tap):
    src = os.path.join(SRCDIR, "systemd", "pystackd.service.in")
    wait = int(os.environ.get("PYSTACK_UNIT_WAIT", "30"))
    deadline = time.time() + wait
    while not os.path.exists(src) and time.time() < deadline:
        time.sleep(1)
    if not os.path.exists(src):
        tap.skip("case6: %s does not exist (waited %ds)" % (src, wait))
        return
    sa = shutil.which("systemd-analyze")
    if not sa:
        tap.skip("case6: systemd-analyze is not installed")
        return
    tmp = tempfile.mkdtemp(prefix="pystackd-test-unit.")
    try:
        # the unit as installed, ExecStart= pointing at the built pystackd
        # (the real sbindir is not installed here)
        with open(src) as fh:
            text = fh.read()
        unit = os.path.join(tmp, "pystackd.service")
        with open(unit, "w") as fh:
            fh.write(text.replace("@sbindir@",
                                  os.path.dirname(programs.pystackd())))
        args = [sa, "verify"]
        env = dict(os.environ, SYSTEMD_LOG_LEVEL="info", SYSTEMD_PAGER="")
        # Documentation=man:...: the project's own pages, found via MANPATH
        if shutil.which("man"):
            pages = {"pystackd.8": "daemon/pystackd", "pystack-coredump.8": "daemon/capture",
                     "pystack.conf.5": "etc", "pystack.1": "analyzer"}
            for page, sub in pages.items():
                p = os.path.join(SRCDIR, sub, page)
                if os.path.exists(p):
                    mdir = os.path.join(tmp, "man", "man" + page[-1])
                    os.makedirs(mdir, exist_ok=True)
                    shutil.copy(p, mdir)
            env["MANPATH"] = os.path.join(tmp, "man")
            how = "Documentation= checked against the tree's man pages"
        else:
            args.append("--man=no")
            how = "--man=no (no man)"
        try:
            r = subprocess.run(args + [unit], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=120, env=env)
        except subprocess.TimeoutExpired:
            tap.ok(False, "case6: systemd-analyze verify finishes", ["timeout"])
            return
        out = (r.stdout + r.stderr).decode(errors="replace")
        if r.returncode != 0 and re.search(r"(?i)system has not been booted|"
                                           r"failed to connect to bus|"
                                           r"failed to initialize manager",
                                           out):
            tap.skip("case6: systemd-analyze verify cannot run here: %s"
                     % out.strip().splitlines()[-1])
            return
        warn = [l for l in out.splitlines() if "pystackd.service" in l]
        tap.ok(r.returncode == 0 and not warn,
               "case6: systemd-analyze verify accepts systemd/pystackd.service "
               "(ExecStart= the built pystackd; %s)" % how,
               ["exit %r" % r.returncode] + out.splitlines()[-30:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# case 7

def case7_retention(tap, fx, jd, n=2):
    st = pf.Store(fx, "7", analysis="Workers=2")
    st.install()
    ws, diag = pf.crash_many(fx, st, n, tag="r")
    fx.reset_pattern()
    d = st.daemon(jd)
    if not tap.ok(d.start(), "case7: pystackd starts (MaxAge default)",
                  d.log_tail()):
        return
    ok, rows = st.wait_settled(n, ANALYSE_TIMEOUT)
    d.stop()
    cores_before = sorted(os.listdir(os.path.join(st.storage, "cores")))
    before = dict((r["id"], db_counts(st, r["id"])) for r in rows)
    if not tap.ok(ok and all(r["state"] == "done" and r["core_state"] ==
                             "present" for r in rows) and
                  len(cores_before) == n,
                  "case7: %d analysed, cores present (%d files)"
                  % (n, len(cores_before)), [brief(r) for r in rows]):
        return
    st.write_conf(analysis="Workers=2", storage="MaxAge=1s")
    time.sleep(1.5)
    d = st.daemon(jd)
    if not tap.ok(d.start(), "case7: pystackd restarts with MaxAge=1s",
                  d.log_tail()):
        return
    ok, rows = st.wait(lambda rs: all(r["core_state"] == "removed"
                                      for r in rs), 20)
    cores_after = sorted(os.listdir(os.path.join(st.storage, "cores")))
    dd = []
    for r in rows:
        if r["core_state"] != "removed" or r["state"] != "done" or \
                r["capture_note"] != "removed by retention: older than MaxAge":
            dd.append(brief(r) + " note=%r" % r["capture_note"])
        if db_counts(st, r["id"]) != before.get(r["id"]):
            dd.append("crash %d rows: %r before, %r after"
                      % (r["id"], before.get(r["id"]), db_counts(st, r["id"])))
        if not r["report"] or not r["signature"]:
            dd.append("crash %d lost its report or signature" % r["id"])
    if cores_after:
        dd.append("files left in cores/: %r" % cores_after)
    tap.ok(ok and not dd, "case7: MaxAge=1s: cores removed at the start "
           "(core_state removed, note), state done, threads/frames/locals "
           "rows kept", dd + d.log_tail(5))
    tap.ok("retention removed %d cores" % n in d.log(),
           "case7: pystackd logs 'retention removed %d cores'" % n,
           d.log_tail(5))
    rc = d.stop()
    tap.ok(rc == 0, "case7: pystackd stops (status 0)", ["exit %r" % rc])


# --------------------------------------------------------------------------
# case 8

def case8_cli(tap):
    exe = programs.pystackd()
    r = subprocess.run([exe, "--help"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10)
    tap.ok(r.returncode == 0 and r.stdout.startswith(b"Usage:") and
           not r.stderr, "case8: pystackd --help exits 0 with a usage",
           ["exit %r, stdout %r, stderr %r" % (r.returncode, r.stdout[:200],
                                               r.stderr[:200])])
    for args in (["--bogus"], ["-x"], ["--config"]):
        r = subprocess.run([exe] + args, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10)
        lines = r.stderr.decode(errors="replace").splitlines()
        tap.ok(r.returncode == 2 and len(lines) == 1 and not r.stdout,
               "case8: pystackd %s: exit 2, one line on stderr" % " ".join(args),
               ["exit %r, stdout %r, stderr %r" % (r.returncode, r.stdout[:200],
                                                   r.stderr[:300])])
    if os.geteuid() != 0:
        tap.skip("case8: config typos: not root (pystackd refuses)")
        return
    tmp = tempfile.mkdtemp(prefix="pystackd-test-conf.")
    try:
        for label, text, line in (
                ("unknown key", "[Storage]\nDirectory=%s/s\n\n[Analysis]\n"
                 "Workres=2\n", 5),
                ("bad value", "[Analysis]\nWorkers=2\nTimeoutSec=ten\n", 3),
                ("unknown section", "# c\n[Analysys]\nWorkers=2\n", 2)):
            conf = os.path.join(tmp, "c")
            with open(conf, "w") as fh:
                fh.write(text % tmp if "%s" in text else text)
            os.chmod(conf, 0o600)
            try:
                r = subprocess.run([exe, "--config=%s" % conf],
                                   stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=10)
                rc, out, err = r.returncode, r.stdout, r.stderr
            except subprocess.TimeoutExpired:
                rc, out, err = "timeout (it ran)", b"", b""
            lines = err.decode(errors="replace").splitlines()
            tap.ok(isinstance(rc, int) and rc != 0 and len(lines) == 1 and
                   "%s:%d" % (conf, line) in lines[0],
                   "case8: config with a typo (%s): exit non-zero, one line "
                   "naming FILE:%d: %r" % (label, line, lines[0] if lines
                                           else None),
                   ["exit %r, stdout %r, stderr %r" % (rc, out[:200], err[:300])])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------

def main():
    tap = TAP()
    only = os.environ.get("PYSTACK_TEST_ONLY")
    rx = re.compile(only) if only else None

    def want(name):
        return rx is None or rx.search(name)

    for what, p in (("pystackd", programs.pystackd()),
                    ("pystack-coredump", programs.coredump()),
                    ("the analyzer", programs.daemon_analyzer())):
        if not os.access(p, os.X_OK):
            tap.ok(False, "%s %s is built" % (what, p),
                   ["build it first (make), or set PYSTACKD/PYSTACK_COREDUMP/"
                    "PYSTACK"])
            return tap.done()
    atexit.register(pf.cleanup_processes)
    t_all = time.time()
    if want("case8"):
        case8_cli(tap)
    if want("case6"):
        case6_unit(tap)
    crash_cases = [("case1", case1_end_to_end), ("case2", case2_stored_while_down),
                   ("case3", case3_sigkill), ("case4", case4_bad_analyzers),
                   ("case5", case5_backlog), ("case7", case7_retention),
                   ("case9", case9_many_libraries), ("case10", case10_journal_json)]
    crash_cases = [c for c in crash_cases if want(c[0])]
    if not crash_cases:
        return tap.done()
    if os.geteuid() != 0:
        tap.skip("not root: core_pattern cannot be changed")
        return tap.done()
    if not os.access(pf.SYSTEM_PYTHON, os.X_OK):
        tap.skip("%s not installed" % pf.SYSTEM_PYTHON)
        return tap.done()
    limit = int(os.environ.get("PYSTACKD_TEST_TIMEOUT", "1500"))
    alarm = watchdog(limit)
    jd = None
    scratch = []
    try:
        with corepattern.PipeHandlerFixture(pipe_limit=64) as fx:
            # the analyzer user must reach <case>/r and <case>/worker.py
            os.chmod(fx.root, 0o711)
            scratch.append(fx.root)
            tap.diag("scratch %s, core_pattern %r / core_pipe_limit %s "
                     "restored at the end" % (fx.root, fx.original,
                                              fx.original_limit))
            jd = pf.Journald(os.path.join(fx.root, "journald.log"))
            if not tap.ok(jd.start(), "a journald to write to: %s"
                          % (jd.describe() if not jd.error else jd.error),
                          [jd.error or ""]):
                return tap.done()
            for name, fn in crash_cases:
                # this case's pystackds are stopped after it, not the journald
                run_case(tap, fx, name, lambda: fn(tap, fx, jd),
                         cleanup=lambda: pf.stop_started(keep=jd.proc))
            jrc = jd.stop()
            if jd.own:
                tap.ok(jrc == 0, "our journald stops on SIGTERM (status %r)"
                       % jrc)
    except Watchdog as e:
        tap.ok(False, "the test finished within %ds" % limit, [str(e)])
    finally:
        alarm.cancel()
        pf.cleanup_processes()
    with open(corepattern.CORE_PATTERN) as fh:
        cp = fh.read().rstrip("\n")
    left = [p.pid for p in pf.STARTED if p.poll() is None]
    # another run may hold the lock by now: only our own pattern counts
    mine = scratch[0] if scratch else corepattern.SCRATCH_PREFIX
    tap.ok(mine not in cp and not corepattern.mounts_below(mine) and not left,
           "core_pattern restored (%r now), no mounts below %s, no "
           "pystackd/journald left" % (cp, mine), ["left: %r" % left])
    tap.diag("%d tests, %d failed, %d skipped in %.0fs"
             % (tap.n, tap.failed, tap.skipped, time.time() - t_all))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
