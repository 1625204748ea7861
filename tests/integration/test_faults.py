#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: pystack-coredump and pystackd under faults and load, with real
crashing processes.

Run as root from the build directory (after `make`):

    /usr/bin/python3 ../tests/integration/test_faults.py

Environment:
  PYSTACK_COREDUMP, PYSTACKD, PYSTACK   programs under test
  PYSTACK_TEST_ONLY  regular expression over the case names (diskfull,
                     busy, journal, sigkill, loop); the others are not run
  PYSTACK_FAULTS_ROUNDS   SIGKILL rounds (default 30, 5 crashes each)
  PYSTACK_LOOP_CRASHES    crash-loop length (default 200)
  PYSTACK_CAPTURE_KEEP=1  keep the scratch directory /tmp/pystackd-incoming.*
  PYSTACK_FAULTS_TIMEOUT  the whole run's limit in seconds (default 1500)

core_pattern/core_pipe_limit: harness/corepattern.py (flock, restored on
every exit path); tmpfs mounts are the fixture's (unmounted on every exit path);
journald faults are made in private mount namespaces (nothing on the host
changes); every pystackd started here is stopped on every exit path.

Cases
  diskfull  a core larger than a 16 MiB tmpfs; then the tmpfs filled to the
            last block so that the database itself cannot grow: the process
            is let go in bounded time, no partial file, the store passes
            integrity_check, the failure is logged with its reason, and the
            next crash after space is freed is recorded
  busy      another process holds an exclusive lock on pystack.db for 3 s
            (under the 10 s busy timeout), 15 s (over it) and 55 s (over the
            handler's 40 s retry bound) while a Python process crashes
  journal   a journald that does not read (its socket there, its queue
            full) and no journald at all (private mount namespace)
  sigkill   pystackd SIGKILLed at random points while it ingests and
            analyses (ROUNDS rounds of 5 crashes), then left to finish: no
            record lost or duplicated, every crash analysed once, signature
            counts equal to their crashes, integrity_check passes
  loop      a Python program crashing as fast as it can, LOOP times, with
            the default rate limit (RateLimitBurst=10): RateLimitBurst cores
            kept, the rest recorded as rate-limited with the suppressed
            count, disk and log lines bounded, the latency of a trivial
            command measured during the loop
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import corepattern  # noqa: E402
import hardening_fixture as hf  # noqa: E402
import pystackd_fixture as pf  # noqa: E402
from harness import programs  # noqa: E402
from harness.corepattern import CoreLock  # noqa: E402
from harness.tap import TAP, Watchdog, run_case, watchdog  # noqa: E402
from test_capture import Case, crash, wait_ready, spawn_python, \
    SYSTEM_PYTHON  # noqa: E402

SIGSEGV = signal.SIGSEGV



def integrity(db):
    try:
        con = sqlite3.connect(db, timeout=30)
        try:
            return [r[0] for r in con.execute("PRAGMA integrity_check")]
        finally:
            con.close()
    except sqlite3.Error as e:
        return [str(e)]


def read(path):
    try:
        with open(path, errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


# --------------------------------------------------------------------------
# diskfull

def case_diskfull(tap, fx):
    mnt = os.path.join(fx.root, "df", "m")
    c = Case(fx, "df", "KeepFree=0\nMaxUse=100%\n[Capture]\nRateLimitBurst=0",
             storage=os.path.join(mnt, "s"))
    hlog = os.path.join(c.dir, "handler.log")
    wrapper = hf.stderr_wrapper(os.path.join(c.dir, "w"), hlog)
    try:
        fx.mount_tmpfs(mnt, "16m")
    except Exception as e:
        tap.ok(False, "diskfull: mount a 16M tmpfs", [str(e)])
        return
    try:
        c.install(handler=wrapper)
        # 1. a core larger than the file system
        p = spawn_python(fx, c, SYSTEM_PYTHON, "fill", ["48"], tag="big")
        if not tap.ok(wait_ready(p), "diskfull: the 48 MiB child is ready"):
            return
        rc, dt = crash(fx, p)
        rows, diag = c.wait(1, timeout=60)
        d = list(diag)
        if rc != -SIGSEGV or dt > 30:
            d.append("returncode %r, held %.2fs" % (rc, dt))
        if len(rows) != 1 or rows[0]["core_state"] != "no-space" or \
                rows[0]["core_path"] or not rows[0]["capture_note"]:
            d.append("rows: %r" % [(r["core_state"], r["capture_note"])
                                   for r in rows])
        if c.core_files():
            d.append("files left in cores/: %r" % c.core_files())
        tap.ok(not d, "diskfull: a 48 MiB core on a 16 MiB disk: released "
               "in %.2fs, recorded no-space with its reason, no partial file"
               % dt, d)

        # 2. the disk full to the last block: the database cannot grow
        nrows = len(c.rows())     # before: reading a WAL store needs space too
        db_size = os.path.getsize(c.db)
        filler = os.path.join(mnt, "filler")
        try:
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError as e:
            fd = None
            tap.diag("diskfull: cannot even create the filler (%s): %s" % (
                e, subprocess.run(["df", "-k", mnt], stdout=subprocess.PIPE,
                                  timeout=10).stdout.decode()))
        for chunk in (1 << 16, 512):
            while fd is not None:
                try:
                    os.write(fd, b"\xa5" * chunk)
                except OSError:
                    break
        if fd is not None:
            os.close(fd)
        st = os.statvfs(mnt)
        kids = [spawn_python(fx, c, SYSTEM_PYTHON, "plain", tag="f%d" % i)
                for i in range(3)]
        ready = all(wait_ready(k) for k in kids)
        t0 = time.time()
        helds = [crash(fx, k)[1] for k in kids]
        gone = corepattern.wait_handlers_gone(c.conf, 60)
        elapsed = time.time() - t0
        # the test's own reads need space too: look once the space is back
        os.unlink(filler)
        rows = c.rows()
        log = read(hlog)
        d = []
        if not ready:
            d.append("children not ready")
        if gone is None:
            d.append("handlers still running after 60s")
        if max(helds) > 30:
            d.append("processes held %r s" % helds)
        if c.core_files():
            d.append("files left in cores/: %r" % c.core_files())
        res = integrity(c.db)
        if res != ["ok"]:
            d.append("integrity_check: %r" % res[:5])
        kid_pids = [k.pid for k in kids]
        row_pids = set(r["pid"] for r in rows)
        logged_pids = set(int(x) for x in re.findall(
            r"cannot record the crash of process (\d+) \(.*\): \S.*", log))
        recorded = len([x for x in kid_pids if x in row_pids])
        logged = len([x for x in kid_pids if x in logged_pids])
        lost = [x for x in kid_pids if x not in row_pids and
                x not in logged_pids]
        if lost:
            d.append("crashes neither recorded nor logged as not recorded "
                     "(database or disk is full): %r" % lost)
        tap.ok(not d, "diskfull: tmpfs full to the last block (%d blocks "
               "free, db %d bytes): 3 crashes: handlers done in %.1fs, "
               "%d recorded, %d logged as not recorded with the reason, no "
               "partial file, "
               "integrity_check ok" % (st.f_bavail, db_size, elapsed,
                                       recorded, logged),
               d + ["handler log tail:"] + log.splitlines()[-8:])

        # 3. space again: the store still works
        p = spawn_python(fx, c, SYSTEM_PYTHON, "plain", tag="after")
        wait_ready(p)
        crash(fx, p)
        rows2, diag = c.wait(len(rows) + 1, timeout=60)
        tap.ok(len(rows2) == len(rows) + 1 and
               rows2[-1]["core_state"] == "present" and
               integrity(c.db) == ["ok"],
               "diskfull: with space again the next crash is stored "
               "(core present) and the store is intact",
               diag + ["rows: %r" % [(r["core_state"], r["capture_note"])
                                     for r in rows2[-3:]]])
    finally:
        fx.reset_pattern()
        ok = fx.unmount(mnt)
        tap.ok(ok, "diskfull: the tmpfs is unmounted")


# --------------------------------------------------------------------------
# busy

class Locker(object):
    """A separate process holding BEGIN EXCLUSIVE on the db for `hold`
    seconds."""

    def __init__(self, db, hold):
        code = ("import sqlite3, sys, time\n"
                "c = sqlite3.connect(sys.argv[1], isolation_level=None, "
                "timeout=30)\n"
                "c.execute('BEGIN EXCLUSIVE')\n"
                "c.execute('INSERT INTO crashes (time_usec, pid, uid, gid, "
                "signal, core_state) VALUES (0, 1, 0, 0, 0, \"lockmark\")')\n"
                "print('locked', flush=True)\n"
                "time.sleep(float(sys.argv[2]))\n"
                "c.execute('ROLLBACK')\n")
        self.p = subprocess.Popen([sys.executable, "-c", code, db, str(hold)],
                                  stdout=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL)
        self.ok = self.p.stdout.readline().strip() == b"locked"
        self.t0 = time.time()

    def wait(self):
        self.p.wait(timeout=120)
        self.p.stdout.close()


def case_busy(tap, fx):
    for hold, expect_row in ((3, True), (15, True), (55, False)):
        c = Case(fx, "busy%d" % hold, "[Capture]\nRateLimitBurst=0")
        hlog = os.path.join(c.dir, "handler.log")
        c.install(handler=hf.stderr_wrapper(os.path.join(c.dir, "w"), hlog))
        # prime the store
        p = spawn_python(fx, c, SYSTEM_PYTHON, "plain", tag="prime")
        wait_ready(p)
        crash(fx, p)
        c.wait(1)
        p = spawn_python(fx, c, SYSTEM_PYTHON, "plain", tag="x")
        if not wait_ready(p):
            tap.ok(False, "busy: the child is ready")
            continue
        lk = Locker(c.db, hold)
        rc, held = crash(fx, p)
        t_crash = time.time()
        gone = corepattern.wait_handlers_gone(c.conf, hold + 60)
        t_done = time.time() - lk.t0
        lk.wait()
        rows = c.rows()
        log = read(hlog)
        d = []
        if not lk.ok:
            d.append("the locker did not get its lock")
        if gone is None:
            d.append("the handler is still running %ds after the crash"
                     % (hold + 60))
        if rc != -SIGSEGV or held > 12:
            d.append("returncode %r, process held %.1fs (more than the 10 s "
                     "busy timeout + 2)" % (rc, held))
        got = [r for r in rows if r["pid"] == p.pid]
        if expect_row and (len(got) != 1 or got[0]["core_state"] !=
                           "present" or not os.path.exists(
                               os.path.join(c.storage, got[0]["core_path"]))):
            d.append("expected the crash recorded with its core: %r"
                     % [(r["core_state"], r["core_path"]) for r in got])
        if not expect_row:
            if got:
                d.append("recorded although the lock outlived the bound?")
            if not re.search(r"cannot record the crash of process %d" % p.pid,
                             log):
                d.append("the loss is not logged")
            if t_done > 50:
                d.append("the handler took %.1fs after the lock was taken "
                         "(bound: 40 s after it started)" % t_done)
        files = c.core_files()
        named = set(os.path.basename(r["core_path"]) for r in rows
                    if r["core_path"])
        if set(files) != named:
            d.append("cores/ %r vs rows %r" % (files, sorted(named)))
        if any(r["core_state"] == "lockmark" for r in rows):
            d.append("the locker's rolled-back row is visible")
        res = integrity(c.db)
        if res != ["ok"]:
            d.append("integrity_check %r" % res[:5])
        tap.ok(not d, "busy: exclusive lock held %ds: process released in "
               "%.1fs, handler done %.1fs after the lock was taken, %s"
               % (hold, held, t_done, "crash recorded with its core" if
                  expect_row else "crash lost and logged (lock outlived the "
                  "40 s bound), no orphan core"),
               d + ["handler log:"] + log.splitlines()[-6:])
        fx.reset_pattern()


# --------------------------------------------------------------------------
# journal

STUCK_JOURNAL = r'''
import socket, sys, os
os.makedirs("/run/systemd/journal", exist_ok=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/run/systemd/journal/socket")
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.setblocking(False)
n = 0
while True:
    try:
        c.sendto(b"MESSAGE=filler\n", "/run/systemd/journal/socket")
        n += 1
    except BlockingIOError:
        break
sys.stderr.write("queued=%d\n" % n)
sys.stderr.flush()
os.execvp(sys.argv[1], sys.argv[1:])
'''


def case_journal(tap, fx):
    with hf.Sleeper() as S:
        for label, stuck in (("a journald that does not read (socket there, "
                              "queue full)", True),
                             ("no journald at all", False)):
            d = os.path.join(fx.root, "j%d" % stuck)
            os.mkdir(d, 0o700)
            conf = os.path.join(d, "c")
            with open(conf, "w") as fh:
                fh.write("[Storage]\nDirectory=%s/s\n[Capture]\nProcesses=all"
                         "\n[Daemon]\nRuntimeDirectory=%s/r\n" % (d, d))
            os.chmod(conf, 0o600)
            script = "mount -t tmpfs -o mode=0755 pystackd-j /run/systemd " \
                "|| exit 97\n"
            if stuck:
                script += 'exec %s -c "$JOURNAL_PY" "$@"\n' % sys.executable
            else:
                script += 'exec "$@"\n'
            prefix = ["unshare", "--mount", "--propagation", "private", "--",
                      "/bin/sh", "-c", script, "sh"]
            r = hf.run_handler(conf, S.pid, S.pidfd, timeout=30,
                               prefix=prefix, env={"JOURNAL_PY": STUCK_JOURNAL})
            rows = []
            try:
                con = sqlite3.connect(os.path.join(d, "s", "pystack.db"))
                rows = con.execute("SELECT core_state FROM crashes").fetchall()
                con.close()
            except sqlite3.Error:
                pass
            err = r.err.decode(errors="replace")
            ok = not r.timed_out and r.seconds < 5 and r.rc == 0 and \
                rows == [("present",)] and (not stuck or "queued=" in err)
            tap.ok(ok, "journal: %s: the handler finishes in %.2fs and "
                   "records the crash" % (label, r.seconds), r.describe())
        # and with a working journald its lines arrive, escaped
        jd = pf.Journald(os.path.join(fx.root, "journald.log"))
        try:
            if not jd.start():
                tap.skip("journal: no journald to test with: %s" % jd.error)
                return
            d = os.path.join(fx.root, "jlive")
            os.mkdir(d, 0o700)
            conf = os.path.join(d, "c")
            with open(conf, "w") as fh:
                fh.write("[Storage]\nDirectory=%s/s\n[Capture]\nProcesses=all"
                         "\n[Daemon]\nRuntimeDirectory=%s/r\n" % (d, d))
            os.chmod(conf, 0o600)
            marker = "jl%d" % os.getpid()
            with hf.Sleeper(["/usr/bin/sleep", "600"]) as S2:
                r = hf.run_handler(conf, S2.pid, S2.pidfd, prefix=jd.prefix,
                                   comm="x", timeout=30)
            got = []
            deadline = time.time() + 20
            while time.time() < deadline:
                got = [e for e in jd.entries(("SYSLOG_IDENTIFIER=pystack-"
                                              "coredump",))
                       if ("process %d " % S2.pid) in str(e.get("MESSAGE"))]
                if len(got) >= 2:
                    break
                time.sleep(0.2)
            msgs = [e.get("MESSAGE") for e in got]
            ok = r.rc == 0 and len(got) == 2 and all(
                isinstance(m, str) and not re.search(r"[\x00-\x1f\x7f]", m)
                for m in msgs) and all(e.get("PRIORITY") == "6" for e in got)
            tap.ok(ok, "journal: with %s the handler's two lines arrive "
                   "(native protocol, non-blocking)" % jd.describe(),
                   r.describe() + ["entries: %r" % msgs])
        finally:
            jd.stop()


# --------------------------------------------------------------------------
# sigkill

def case_sigkill(tap, fx, rounds):
    st = pf.Store(fx, "kill", analysis="Workers=2\nTimeoutSec=60",
                  daemon="Journal=no")
    os.chmod(fx.root, 0o711)
    pf.write_worker(st.dir)
    st.install()
    rng = random.Random(int(os.environ.get("PYSTACK_FAULTS_SEED", "4242")))
    kills = []
    pids = []
    d = []
    for rnd in range(rounds):
        dm = st.daemon()
        if not dm.start():
            d.append("round %d: pystackd did not start: %s"
                     % (rnd, dm.log_tail()))
            break
        workers = [pf.Worker(fx, st, tag="%d-%d" % (rnd, i))
                   for i in range(5)]
        for w in workers:
            if not w.wait_ready():
                d.append("round %d: worker %d not ready" % (rnd, w.pid))
        for w in workers:
            w.send_crash()
        # analyses of these cores take well under a second: most kills
        # land while the handler records or pystackd ingests or analyses
        delay = rng.uniform(0.0, 0.9)
        time.sleep(delay)
        phase = st.states()
        phase["analyses"] = len(dm.children())
        dm.kill()
        kills.append((delay, phase))
        for w in workers:
            if w.reap() != -SIGSEGV:
                d.append("round %d: worker %d returncode %r"
                         % (rnd, w.pid, w.returncode))
            pids.append(w.pid)
        # any analyzer it left behind dies with it (pdeathsig) or finishes
    ok, rows = st.wait_rows(len(pids), timeout=120)
    dm = st.daemon()
    dm.start()
    settled, rows = st.wait_settled(len(pids), timeout=900)
    dm.stop()
    d_rows = []
    counts = {}
    for r in rows:
        counts[r["pid"]] = counts.get(r["pid"], 0) + 1
    missing = [p for p in pids if p not in counts]
    dup = [p for p, n in counts.items() if n > 1]
    extra = [p for p in counts if p not in pids]
    if missing:
        d_rows.append("missing: %r" % missing[:20])
    if dup:
        d_rows.append("duplicated: %r" % dup[:20])
    if extra:
        d_rows.append("unexpected: %r" % extra[:20])
    states = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    tap.ok(not d and not d_rows and len(rows) == len(pids) and settled,
           "sigkill: %d rounds of 5 crashes, pystackd SIGKILLed at random "
           "points: %d rows for %d crashes, none lost or duplicated, all "
           "settled: %r" % (rounds, len(rows), len(pids), states),
           d + d_rows + ["not settled: %r" % [pf.brief(r) for r in rows
                                               if r["state"] not in
                                               ("done", "failed")][:10]])
    failed = [pf.brief(r) for r in rows if r["state"] == "failed"]
    tap.ok(not failed and states.get("done") == len(pids),
           "sigkill: every crash analysed (done), none failed after the "
           "kills (attempts max %s)" % max([r["attempts"] for r in rows] or
                                           [0]),
           failed[:10])
    # duplicates inside the analysis tables
    q = st.query
    dups = q("SELECT crash_id, count(*) AS n FROM (SELECT DISTINCT crash_id,"
             " idx, tid FROM threads) GROUP BY crash_id HAVING n > 20")
    per = q("SELECT c.id, (SELECT count(*) FROM threads t WHERE "
            "t.crash_id = c.id) AS nt FROM crashes c WHERE c.state = 'done'")
    nthreads = sorted(set(r["nt"] for r in per))
    sig = q("SELECT s.signature, s.count, (SELECT count(*) FROM crashes c "
            "WHERE c.signature = s.signature) AS n FROM signatures s")
    nosig = q("SELECT count(*) AS n FROM crashes WHERE state = 'done' AND "
              "signature IS NULL")[0]["n"]
    bad_sig = [r for r in sig if r["count"] != r["n"]]
    dd = []
    if dups:
        dd.append("threads duplicated: %r" % dups[:5])
    if nthreads != [2]:
        dd.append("threads per analysed crash: %r (expected 2: main and "
                  "pw-idler)" % nthreads)
    tap.ok(not dd, "sigkill: each analysed crash has its 2 threads once", dd)
    tap.ok(not bad_sig and not nosig,
           "sigkill: signature counts equal the crashes that carry them, and "
           "every analysed crash has its signature",
           ["signatures whose count differs from their crashes: %r"
            % [dict(r) for r in bad_sig][:5],
            "analysed crashes without a signature: %d" % nosig])
    res = integrity(st.db_path)
    tap.ok(res == ["ok"], "sigkill: integrity_check after %d SIGKILLs"
           % len(kills), res[:5])
    tap.diag("kill points (delay s, states at the kill): %s" % "; ".join(
        "%.2f %s" % (dl, ph) for dl, ph in kills[:40]))
    fx.reset_pattern()


# --------------------------------------------------------------------------
# loop

class Prober(threading.Thread):
    """Runs /bin/true every 50 ms and records how long each took."""

    def __init__(self):
        threading.Thread.__init__(self)
        self.daemon = True
        self.stop = threading.Event()
        self.lat = []

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            subprocess.run(["/bin/true"])
            self.lat.append(time.monotonic() - t0)
            time.sleep(0.05)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def du(path):
    total = 0
    for dp, dn, fn in os.walk(path):
        for n in fn:
            try:
                total += os.lstat(os.path.join(dp, n)).st_blocks * 512
            except OSError:
                pass
    return total


def case_loop(tap, fx, n):
    c = Case(fx, "loop", "")      # the defaults: RateLimitBurst=10 per 60 s
    hlog = os.path.join(c.dir, "handler.log")
    c.install(handler=hf.stderr_wrapper(os.path.join(c.dir, "w"), hlog))
    prog = os.path.join(c.dir, "crashloop.py")
    with open(prog, "w") as fh:
        fh.write("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    base = Prober()
    base.start()
    time.sleep(3)
    base.stop.set()
    base.join()
    probe = Prober()
    probe.start()
    t0 = time.time()
    rcs = []
    for i in range(n):
        r = subprocess.run([SYSTEM_PYTHON, "-E", "-s", "-B", prog],
                           stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=c.dir)
        rcs.append(r.returncode)
        if time.time() - t0 > 60:
            break
    t_loop = time.time() - t0
    rows, diag = c.wait(len(rcs), timeout=120)
    t_all = time.time() - t0
    probe.stop.set()
    probe.join()
    fx.reset_pattern()
    states = {}
    for r in rows:
        states[r["core_state"]] = states.get(r["core_state"], 0) + 1
    supp = [r["suppressed"] for r in rows if r["core_state"] == "rate-limited"]
    files = c.core_files()
    disk = du(c.storage)
    lines = read(hlog).splitlines()
    d = list(diag)
    if rcs.count(-SIGSEGV) != len(rcs):
        d.append("exit codes: %r" % sorted(set(rcs)))
    if states.get("present") != 10 or \
            states.get("rate-limited") != len(rcs) - 10:
        d.append("core states %r" % states)
    if supp != list(range(1, len(supp) + 1)):
        d.append("suppressed counts not 1..%d: %r" % (len(supp), supp[:20]))
    if len(files) != 10:
        d.append("%d files in cores/" % len(files))
    tap.ok(not d and len(rcs) == n,
           "loop: %d crashes in %.1fs (%.1f/s; all recorded after %.1fs): "
           "10 cores kept, %d rate-limited with suppressed 1..%d"
           % (len(rcs), t_loop, len(rcs) / t_loop, t_all,
              states.get("rate-limited", 0), len(supp)), d)
    tap.ok(disk < 64 << 20, "loop: storage uses %.1f MiB for %d crashes "
           "(10 compressed cores + the store)" % (disk / 1048576.0, len(rcs)))
    per = len(lines) / float(max(1, len(rcs)))
    tap.ok(per <= 2.0, "loop: the handler wrote %d log lines (%.2f per "
           "crash), what it sends to the journal" % (len(lines), per),
           lines[:4])
    p50, p99, mx = pct(probe.lat, 0.5), pct(probe.lat, 0.99), \
        max(probe.lat or [0])
    b50 = pct(base.lat, 0.5)
    tap.ok(p99 < 0.5 and mx < 2.0, "loop: /bin/true during the loop: p50 "
           "%.1f ms (idle %.1f ms), p99 %.1f ms, max %.1f ms over %d runs"
           % (p50 * 1e3, b50 * 1e3, p99 * 1e3, mx * 1e3, len(probe.lat)))


# --------------------------------------------------------------------------

def main():
    tap = TAP()
    only = os.environ.get("PYSTACK_TEST_ONLY")
    rx = re.compile(only) if only else None

    def want(name):
        return rx is None or rx.search(name)

    if not os.access(programs.coredump(), os.X_OK):
        tap.ok(False, "handler %s is built" % programs.coredump())
        return tap.done()
    if os.geteuid() != 0:
        tap.skip("not root")
        return tap.done()
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        tap.skip("%s not installed" % SYSTEM_PYTHON)
        return tap.done()
    rounds = int(os.environ.get("PYSTACK_FAULTS_ROUNDS", "30"))
    loop_n = int(os.environ.get("PYSTACK_LOOP_CRASHES", "200"))
    limit = int(os.environ.get("PYSTACK_FAULTS_TIMEOUT", "1500"))
    alarm = watchdog(limit)
    t_all = time.time()
    cases = [("diskfull", lambda fx: case_diskfull(tap, fx)),
             ("busy", lambda fx: case_busy(tap, fx)),
             ("journal", lambda fx: case_journal(tap, fx)),
             ("sigkill", lambda fx: case_sigkill(tap, fx, rounds)),
             ("loop", lambda fx: case_loop(tap, fx, loop_n))]
    try:
        with corepattern.PipeHandlerFixture(pipe_limit=64) as fx:
            tap.diag("scratch %s, core_pattern %r / core_pipe_limit %s "
                     "restored at the end" % (fx.root, fx.original,
                                              fx.original_limit))
            for name, fn in cases:
                if not want(name):
                    continue
                run_case(tap, fx, name, lambda: fn(fx), cleanup=pf.cleanup_processes)
    except Watchdog as e:
        tap.ok(False, "the test finished within %ds" % limit, [str(e)])
    finally:
        alarm.cancel()
        pf.cleanup_processes()
    # read under the lock: another test (making its cores) may hold it and
    # have its own pattern in place meanwhile
    with CoreLock():
        cp = corepattern.read_core_pattern()
        mounts = corepattern.mounts_below(corepattern.SCRATCH_PREFIX)
    tap.ok(corepattern.MARKER not in cp and not mounts,
           "core_pattern (%r) restored, no mounts left" % cp,
           ["mounts: %r" % mounts])
    tap.diag("%d tests, %d failed, %d skipped in %.0fs"
             % (tap.n, tap.failed, tap.skipped, time.time() - t_all))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
