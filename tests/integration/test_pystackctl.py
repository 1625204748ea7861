#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: pystackctl(1) against crashes made for real.

Run as root from the build directory (after `make`):

    /usr/bin/python3 ../tests/integration/test_pystackctl.py

Environment:
  PYSTACKCTL         the program under test
  PYSTACKD           the service
  PYSTACK_COREDUMP   the kernel handler
  PYSTACK            the analyzer pystackd runs
                     (the defaults, below the build directory:
                     harness/programs.py)
  PYSTACK_TEST_ONLY  regular expression over the group names (list, time,
                     match, info, show, dump, debug, analyze, groups, access,
                     privsep, pager, vacuum, store); the others are not run
  PYSTACKCTL_TEST_TIMEOUT  seconds for the whole run (default 600)
  PYSTACK_CAPTURE_KEEP=1   keep the scratch directories

What it does.  core_pattern is pointed (under the flock and with the repair
discipline of harness/corepattern.py) at pystack-coredump with a
configuration of its own: storage in /tmp/pystackd-incoming.XXXXXXXX/s
(0700), the configuration, the crash program and pystackd's
RuntimeDirectory in /tmp/pystackctl-test.XXXXXXXX (0755, so that an
unprivileged user reaches the query socket).  pystackd runs with
Analyzer=pystack and QueryUser=pstctl-query.  The users `pstctl-test` and
`pstctl-query` are created (harness/users.py) and removed at the end.  Four crashes of Debian's /usr/bin/python3.11 running
crasher.py (written here; it records its own Python stack, then faults in a
C call on the same line):

    A1  root, comm ctlsegv, SIGSEGV in memmove (via ctypes)
    A2  root, comm ctlsegv, the same code: the same signature as A1
    B   root, comm ctlabort, SIGABRT (os.abort)
    U   pstctl-test, comm ctluser, SIGSEGV

with at least two seconds between A1, A2 and U, so that --since/--until
can split them.  Then every verb, match, filter and flag of pystackctl(1).

Everything is restored on every exit path (try/finally; SIGTERM, SIGINT and
SIGHUP unwind through it; the watchdog too): every pystackd started here is
stopped, the user is removed, core_pattern and core_pipe_limit are put back,
the scratch directories are removed.
"""
import atexit
import fcntl
import json
import os
import re
import select
import shutil
import signal
import sqlite3
import stat
import struct
import subprocess
import sys
import tempfile
import termios
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import corepattern, programs, users  # noqa: E402
from harness.corepattern import CoreLock  # noqa: E402
from harness.tap import TAP, Interrupted, Watchdog, on_signal, \
    watchdog  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3.11"
TEST_USER = "pstctl-test"
TEST_USER_GECOS = "pystackctl test user (removed at the end)"
QUERY_USER = "pstctl-query"     # pystackd's QueryUser= here
QUERY_USER_GECOS = "pystackctl test QueryUser (removed at the end)"
RUN_TIMEOUT = 30            # one pystackctl run
HANDLER_TIMEOUT = 60        # crash -> row recorded, handlers gone
ANALYZE_TIMEOUT = 90        # row -> state done
PTY_ROWS, PTY_COLS = 10, 80

CRASHER = r'''
import ctypes, json, os, sys, traceback

def set_comm(name):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)     # PR_SET_NAME

def record(path):
    """Our Python stack as the caller sees it, written just before the crash
    (the crash is on the same line as the call to record)."""
    stack = traceback.extract_stack(sys._getframe(1))
    info = {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(),
            "exe": os.readlink("/proc/self/exe"),
            "comm": open("/proc/self/comm").read().strip(),
            "frames": [{"file": f.filename, "line": f.lineno,
                        "function": f.name} for f in stack]}
    with open(path + ".tmp", "w") as fh:
        json.dump(info, fh)
    os.rename(path + ".tmp", path)

def crash_segv(path, depth):
    marker = "pystackctl-marker-%d" % depth
    items = [depth, depth + 1, marker]
    record(path); ctypes.memmove(0, b"x", 1)

def crash_abort(path, depth):
    marker = "pystackctl-marker-%d" % depth
    items = [depth, depth + 1, marker]
    record(path); os.abort()

def handle(path, mode, depth):
    if depth > 0:
        return handle(path, mode, depth - 1)
    if mode == "segv":
        return crash_segv(path, depth)
    return crash_abort(path, depth)

def main():
    path, mode, comm = sys.argv[1:4]
    set_comm(comm)
    handle(path, mode, 2)

main()
'''


CTL = programs.pystackctl()
PYSTACKD = programs.pystackd()
HANDLER = programs.coredump()
ANALYZER = programs.daemon_analyzer()


def q(s):
    return s if re.match(r"^[\w@%+=:,./-]+$", s) else "'%s'" % s.replace(
        "'", "'\\''")


# --------------------------------------------------------------------------
# running pystackctl

class Run(object):
    def __init__(self, argv, rc, out, err, secs, timed_out):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        self.secs, self.timed_out = secs, timed_out

    @property
    def text(self):
        return self.out.decode("utf-8", "backslashreplace")

    @property
    def errlines(self):
        return self.err.decode("utf-8", "backslashreplace").splitlines()

    def json(self):
        try:
            return json.loads(self.out.decode("utf-8"))
        except ValueError:
            return None

    def describe(self, limit=15):
        d = ["$ %s" % " ".join(q(a) for a in self.argv),
             "exit %r%s (%.2fs)" % (self.rc, " TIMED OUT" if self.timed_out
                                    else "", self.secs)]
        for name, data in (("stderr", self.err), ("stdout", self.out)):
            lines = data.decode("utf-8", "backslashreplace").splitlines()
            if lines:
                d.append("%s (%d lines):" % (name, len(lines)))
                d += ["  | " + l[:200] for l in lines[:limit]]
                if len(lines) > limit:
                    d.append("  | ...")
        return d


class Ctx(object):
    """Everything the checks need."""

    def __init__(self):
        self.user = None        # pwd entry of the test user
        self.conf = None        # configuration (root-owned, 0644)
        self.pub = None
        self.storage = None
        self.db = None
        self.crashes = {}       # label -> dict
        self.daemons = []


def user_prefix(ctx):
    return users.as_user(ctx.user)


def base_env(extra=None):
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LC_ALL": "C.UTF-8", "HOME": "/", "TERM": "xterm"}
    if extra:
        env.update(extra)
    return env


def ctl(ctx, args, user=False, conf=None, stdin=None, timeout=RUN_TIMEOUT,
        env=None):
    argv = [CTL, "--config=%s" % (conf or ctx.conf)] + list(args)
    if user:
        argv = user_prefix(ctx) + argv
    t0 = time.time()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL if stdin is None
                         else subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True,
                         env=base_env(env), cwd="/")
    timed_out = False
    try:
        out, err = p.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            p.kill()
        out, err = p.communicate()
    return Run(argv, p.returncode, out, err, time.time() - t0, timed_out)


def one_line_error(r, code):
    """[] when r exited with `code`, one line on stderr, nothing on stdout."""
    d = []
    if r.rc != code:
        d.append("expected exit %d, got %r" % (code, r.rc))
    if len(r.errlines) != 1:
        d.append("expected exactly one line on stderr, got %d"
                 % len(r.errlines))
    if r.out:
        d.append("expected nothing on stdout, got %d bytes" % len(r.out))
    return d + (r.describe() if d else [])


def no_repeated_keys(pairs):
    """json.loads' object_pairs_hook: a key given twice is an error."""
    seen = set()
    for k, _ in pairs:
        if k in seen:
            raise ValueError("the key %r is repeated in an object" % k)
        seen.add(k)
    return dict(pairs)


def run_pty(argv, env, rows=PTY_ROWS, cols=PTY_COLS, timeout=20,
            watch_less=True):
    """Run argv with stdin/stdout/stderr a pty (its controlling terminal).
    Presses q when the output stalls.  Returns (rc, output bytes,
    [environ of every `less` seen in its session])."""
    import pty
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ,
                struct.pack("HHHH", rows, cols, 0, 0))

    def pre():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                         start_new_session=True, preexec_fn=pre, env=env,
                         cwd="/")
    os.close(slave)
    chunks, lesses, seen = [], [], set()
    deadline = time.time() + timeout
    last_out = time.time()
    try:
        while time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.02)
            if r:
                try:
                    b = os.read(master, 65536)
                except OSError:
                    b = b""
                if b:
                    chunks.append(b)
                    last_out = time.time()
                elif p.poll() is not None:
                    break
            elif p.poll() is not None:
                # drain what is left
                try:
                    while select.select([master], [], [], 0.05)[0]:
                        b = os.read(master, 65536)
                        if not b:
                            break
                        chunks.append(b)
                except OSError:
                    pass
                break
            if watch_less:
                for pid in session_pids(p.pid):
                    if pid in seen:
                        continue
                    try:
                        with open("/proc/%d/comm" % pid) as fh:
                            comm = fh.read().strip()
                        with open("/proc/%d/environ" % pid, "rb") as fh:
                            envb = fh.read()
                    except OSError:
                        continue
                    # exec sets the new comm before it sets up the new
                    # stack: a "less" whose environ is still empty is
                    # read again on the next turn, not recorded as such
                    if comm == "less" and envb:
                        seen.add(pid)
                        lesses.append(dict(
                            kv.split("=", 1) for kv in
                            envb.decode("utf-8", "replace").split("\0")
                            if "=" in kv))
            if time.time() - last_out > 1.0 and p.poll() is None:
                try:
                    os.write(master, b"q")
                except OSError:
                    pass
                last_out = time.time()
    finally:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        os.close(master)
    return p.returncode, b"".join(chunks), lesses


def session_pids(sid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as fh:
                s = fh.read()
            fields = s[s.rindex(")") + 2:].split()
            if int(fields[3]) == sid:     # field 6: session
                out.append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return out


# --------------------------------------------------------------------------
# fixtures: the user, pystackd, the crashes

def remove_user():
    gone = [users.remove_user(TEST_USER, TEST_USER_GECOS),
            users.remove_user(QUERY_USER, QUERY_USER_GECOS)]
    return all(gone)


def create_user():
    """The test user; pystackd's QueryUser too."""
    atexit.register(remove_user)
    users.create_user(QUERY_USER, QUERY_USER_GECOS)
    return users.create_user(TEST_USER, TEST_USER_GECOS)


def write_conf(path, storage, runtime, extra=""):
    with open(path + ".tmp", "w") as fh:
        fh.write("[Storage]\nDirectory=%s\n%s\n[Capture]\nRateLimitBurst=0\n"
                 "[Daemon]\nRuntimeDirectory=%s\nJournal=no\nQueryUser=%s\n"
                 "[Analysis]\nAnalyzer=%s\nWorkers=2\nTimeoutSec=60\n"
                 % (storage, extra, runtime, QUERY_USER, ANALYZER))
    os.chmod(path + ".tmp", 0o644)
    os.rename(path + ".tmp", path)


class Daemon(object):
    def __init__(self, fx, conf, log_path, runtime):
        self.log_path = log_path
        self.runtime = runtime
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen([PYSTACKD, "--config=" + conf],
                                  stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=self.log, start_new_session=True,
                                  env=base_env())
        fx.children.add(self.p)
        self.fx = fx

    def wait_ready(self, timeout=20):
        """The notify socket (pystackd binds it before READY) and, when
        pystackd serves queries, the query socket."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.p.poll() is not None:
                return False
            if os.path.exists(os.path.join(self.runtime, "notify")) and \
                    os.path.exists(os.path.join(self.runtime, "query")):
                return True
            time.sleep(0.05)
        return os.path.exists(os.path.join(self.runtime, "notify"))

    def stop(self, timeout=20):
        if self.p.poll() is None:
            try:
                self.p.send_signal(signal.SIGTERM)
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                corepattern.log("pystackd %d did not stop on SIGTERM: SIGKILL"
                       % self.p.pid)
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except OSError:
                    self.p.kill()
                self.p.wait(timeout=10)
        self.fx.children.discard(self.p)
        self.log.close()
        return self.p.returncode

    def tail(self, n=20):
        try:
            with open(self.log_path, "rb") as fh:
                return ["pystackd: " + l for l in fh.read().decode(
                    "utf-8", "replace").splitlines()[-n:]]
        except OSError:
            return []


def db_rows(ctx, sql="SELECT * FROM crashes ORDER BY id", args=()):
    if not os.path.exists(ctx.db):
        return []
    con = sqlite3.connect(ctx.db, timeout=20)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql, args)]
    finally:
        con.close()


def make_crash(ctx, fx, label, mode, comm, as_user=False):
    """Run crasher.py as root or the test user; wait for its row.
    Returns the crash dict (expectation + row) or raises."""
    d = ctx.udir if as_user else ctx.rdir
    expect = os.path.join(d, "expect.%s.json" % label)
    argv = [SYSTEM_PYTHON, "-E", "-s", "-B", ctx.crasher, expect, mode, comm]
    if as_user:
        argv = user_prefix(ctx) + argv
    before = len(db_rows(ctx))
    rc, err = fx.run_child(argv, cwd=d, stdout=subprocess.DEVNULL,
                           start_new_session=True, env=base_env())
    want_rc = -signal.SIGSEGV if mode == "segv" else -signal.SIGABRT
    if rc != want_rc:
        raise RuntimeError("%s: crasher exited %r, expected %d: %s"
                           % (label, rc, want_rc,
                              err.decode(errors="replace")[-500:]))
    with open(expect) as fh:
        exp = json.load(fh)
    t0 = time.time()
    row = None
    while time.time() - t0 < HANDLER_TIMEOUT:
        rows = [r for r in db_rows(ctx) if r["pid"] == exp["pid"]]
        if rows and not corepattern.handler_pids(ctx.link):
            row = rows[-1]
            break
        time.sleep(0.05)
    if row is None:
        raise RuntimeError("%s: no row for pid %d after %ds (%d rows before)"
                           % (label, exp["pid"], HANDLER_TIMEOUT, before))
    exp.update(label=label, id=row["id"], time_usec=row["time_usec"],
               signal=int(-want_rc), mode=mode, row=row)
    ctx.crashes[label] = exp
    return exp


def wait_done(ctx, ids, timeout=ANALYZE_TIMEOUT):
    t0 = time.time()
    while True:
        rows = {r["id"]: r for r in db_rows(ctx)}
        states = {i: (rows.get(i) or {}).get("state") for i in ids}
        if all(s in ("done", "failed") for s in states.values()):
            return states
        if time.time() - t0 > timeout:
            return states
        time.sleep(0.1)


def refresh(ctx):
    rows = {r["id"]: r for r in db_rows(ctx)}
    for c in ctx.crashes.values():
        c["row"] = rows.get(c["id"], c["row"])


def sleep_past_second(margin=1.1):
    """Sleep into the next second and a bit: returns the integer second
    boundary that lies between what happened before and after."""
    now = time.time()
    boundary = int(now) + 1
    time.sleep(boundary + margin - now)
    return boundary


# --------------------------------------------------------------------------
# checks

def ids_of(lst):
    return [e.get("id") for e in lst] if isinstance(lst, list) else lst


def list_ids(ctx, args, user=False, conf=None):
    r = ctl(ctx, ["list", "--json"] + list(args), user=user, conf=conf)
    js = r.json()
    if r.rc == 1 and not r.out:
        return r, []
    if r.rc != 0 or not isinstance(js, list):
        return r, None
    return r, ids_of(js)


def check_ids(tap, ctx, desc, args, want, user=False):
    """want: the ids list --json must print (exit 0); [] means no match:
    checked in text mode (exit 1, one line on stderr, nothing on stdout),
    since --json with no match is a case of its own (group_match)."""
    if not want:
        r = ctl(ctx, ["list"] + list(args), user=user)
        d = one_line_error(r, 1)
        tap.ok(not d, desc, d)
        return r
    r, got = list_ids(ctx, args, user=user)
    d = []
    if want:
        if got != want or r.rc != 0:
            d = ["expected ids %r (exit 0), got %r" % (want, got)] + \
                r.describe()
    else:
        if got != [] or r.rc != 1:
            d = ["expected no match: exit 1, nothing on stdout; got ids %r"
                 % (got,)] + r.describe()
        elif len(r.errlines) != 1:
            d = ["expected one line on stderr"] + r.describe()
    tap.ok(not d, desc, d)
    return r


def group_list(tap, ctx):
    C = ctx.crashes
    allids = [C[k]["id"] for k in ("A1", "A2", "B", "U")]
    r = ctl(ctx, ["list", "--json"])
    js = r.json()
    d = []
    if r.rc != 0 or not isinstance(js, list):
        d = ["expected a JSON array, exit 0"] + r.describe()
    else:
        if ids_of(js) != allids:
            d.append("expected ids %r (oldest first), got %r"
                     % (allids, ids_of(js)))
        keys = {"id", "time_usec", "pid", "uid", "gid", "signal",
                "signal_name", "python_version", "core", "comm", "exe",
                "script", "frame", "state", "error", "signature"}
        for e in js:
            missing = keys - set(e)
            if missing:
                d.append("id %s: missing keys %s" % (e.get("id"),
                                                     sorted(missing)))
    tap.ok(not d, "list --json: the four crashes, oldest first, every key", d)
    if d:
        return
    byid = {e["id"]: e for e in js}
    for k in ("A1", "A2", "B", "U"):
        c = C[k]
        e = byid[c["id"]]
        inner = c["frames"][-1]
        want = {"pid": c["pid"], "uid": c["uid"], "gid": c["gid"],
                "signal": c["signal"],
                "signal_name": "SIGSEGV" if c["mode"] == "segv" else "SIGABRT",
                "python_version": "3.11", "core": "present",
                "comm": c["comm"], "exe": SYSTEM_PYTHON, "state": "done",
                "time_usec": c["time_usec"],
                "signature": c["row"]["signature"],
                "frame": {"function": inner["function"],
                          "file": inner["file"], "line": inner["line"]}}
        dd = ["%s: expected %r, got %r" % (key, v, e.get(key))
              for key, v in sorted(want.items()) if e.get(key) != v]
        if e.get("script") not in (ctx.crasher, os.path.basename(ctx.crasher)):
            dd.append("script: expected %r, got %r" % (ctx.crasher,
                                                       e.get("script")))
        tap.ok(not dd, "list --json: %s (%s) fields match the crash and the "
               "store" % (k, c["comm"]), dd)

    check_ids(tap, ctx, "list -r: newest first", ["-r"], allids[::-1])
    check_ids(tap, ctx, "list --reverse: newest first", ["--reverse"],
              allids[::-1])
    check_ids(tap, ctx, "list -n 2: the last two, oldest first", ["-n", "2"],
              allids[-2:])
    check_ids(tap, ctx, "list -n 2 -r: the last two, newest first",
              ["-n", "2", "-r"], allids[::-1][:2])
    check_ids(tap, ctx, "list -1: the last one", ["-1"], allids[-1:])
    check_ids(tap, ctx, "list -n 10: all four", ["-n", "10"], allids)
    r = ctl(ctx, ["list", "-n", "abc"])
    tap.ok(not one_line_error(r, 2), "list -n abc: exit 2, one line",
           one_line_error(r, 2))

    # text
    r = ctl(ctx, ["list"])
    r2 = ctl(ctx, ["list", "--no-legend"])
    lines = r.text.splitlines()
    lines2 = [l for l in r2.text.splitlines() if l.strip()]
    d = []
    if r.rc != 0 or r2.rc != 0:
        d += r.describe() + r2.describe()
    else:
        if len(lines2) != 4:
            d.append("--no-legend: expected 4 lines, got %d" % len(lines2))
        if len(lines) <= len(lines2):
            d.append("with the legend: expected more than %d lines, got %d"
                     % (len(lines2), len(lines)))
        for i, k in enumerate(("A1", "A2", "B", "U")):
            if i >= len(lines2):
                break
            c = C[k]
            words = lines2[i].split()
            for want in (str(c["id"]), str(c["pid"]), str(c["uid"])):
                if want not in words:
                    d.append("line %d (%s): no field %r: %r"
                             % (i + 1, k, want, lines2[i]))
            sig = "SIGSEGV" if c["mode"] == "segv" else "SIGABRT"
            for want in (sig, "3.11", "done", c["frames"][-1]["function"]):
                if want not in lines2[i]:
                    d.append("line %d (%s): no %r: %r"
                             % (i + 1, k, want, lines2[i]))
        for l in lines:
            if l in lines2:
                continue
            if any(str(C[k]["pid"]) in l.split() for k in C):
                d.append("a crash line with the legend differs from "
                         "--no-legend: %r" % l)
    tap.ok(not d, "list: one line per crash in order (id, PID, UID, signal, "
           "version, frame, state); --no-legend drops only headings and "
           "summary", d + (["with legend:"] + lines[:8] +
                           ["--no-legend:"] + lines2[:8] if d else []))


def group_time(tap, ctx):
    C = ctx.crashes
    A1, A2, B, U = (C[k]["id"] for k in ("A1", "A2", "B", "U"))
    allids = [A1, A2, B, U]
    t1, t2 = ctx.t1, ctx.t2

    def expect(since=None, until=None):
        out = []
        for k in ("A1", "A2", "B", "U"):
            t = C[k]["time_usec"]
            if since is not None and t < since * 1000000:
                continue
            if until is not None and t > until * 1000000:
                continue
            out.append(C[k]["id"])
        return out

    cases = [
        ("--since=@%d" % t1, expect(since=t1)),
        ("--until=@%d" % t1, expect(until=t1)),
        ("--since=@%d" % t2, expect(since=t2)),
        ("--since=@%d --until=@%d" % (t1, t2), expect(since=t1, until=t2)),
        ("-S @%d" % t1, expect(since=t1)),
        ("-U @%d" % t1, expect(until=t1)),
    ]
    lt1 = time.localtime(t1)
    midnight = int(time.mktime(lt1[:3] + (0, 0, 0, 0, 0, -1)))
    minute = t1 - lt1.tm_sec
    today = time.strftime("%Y-%m-%d", time.localtime())
    cases += [
        ("--since=%s" % time.strftime("%Y-%m-%d %H:%M:%S", lt1),
         expect(since=t1)),
        ("--until=%s" % time.strftime("%Y-%m-%d %H:%M:%S", lt1),
         expect(until=t1)),
        ("--since=%s" % time.strftime("%Y-%m-%d %H:%M", lt1),
         expect(since=minute)),
        ("--until=%s" % time.strftime("%Y-%m-%d %H:%M", lt1),
         expect(until=minute)),
        ("--since=%s" % time.strftime("%Y-%m-%d", lt1), expect(since=midnight)),
    ]
    if time.strftime("%Y-%m-%d", lt1) == today:
        cases += [
            ("--since=%s" % time.strftime("%H:%M:%S", lt1), expect(since=t1)),
            ("--until=%s" % time.strftime("%H:%M:%S", lt1), expect(until=t1)),
            ("--since=%s" % time.strftime("%H:%M", lt1), expect(since=minute)),
            ("--since=today", expect(since=midnight)),
            ("--until=today", expect(until=midnight)),
        ]
    cases += [
        ("--since=now", []),
        ("--until=now", allids),
        ("--since=yesterday", allids),
        ("--until=yesterday", []),
        ("--since=tomorrow", []),
        ("--until=tomorrow", allids),
        ("--since=-1h", allids),
        ("--until=-1h", []),
        ("--until=+30min", allids),
        ("--since=+30min", []),
        ("--since=2d ago", allids),
        ("--until=2d ago", []),
        ("--since=1h ago", allids),
        ("--since=-300s", allids),
        ("--since=-5min", allids),
        ("--since=-1d", allids),
        ("--since=-1w", allids),
        ("--since=-1M", allids),
        ("--since=-1y", allids),
        ("--until=-1y", []),
        ("--since=@0", allids),
    ]
    for spec, want in cases:
        args = spec.split(" ", 1) if spec.startswith("-S ") or \
            spec.startswith("-U ") else [spec]
        if spec.startswith("--since=@") and " --until" in spec:
            args = spec.split(" ")
        check_ids(tap, ctx, "list %s: ids %r" % (spec, want), args, want)

    # a relative time in seconds that falls between A1 and A2 (2 s apart)
    mid = (C["A1"]["time_usec"] + C["A2"]["time_usec"]) / 2e6
    n = int(round(time.time() - mid))
    check_ids(tap, ctx, "list --since=-%ds (between A1 and A2)" % n,
              ["--since=-%ds" % n], [A2, B, U])
    n = int(round(time.time() - mid))
    check_ids(tap, ctx, "list --until='%ds ago' (between A1 and A2)" % n,
              ["--until=%ds ago" % n], [A1])

    for bad in ("garbage", "2024-13-45", "25:99", "-1parsec", "@abc", "",
                "2024-02-30 10:00", "1h ago ago"):
        for opt in ("--since=", "--until="):
            r = ctl(ctx, ["list", opt + bad])
            d = one_line_error(r, 2)
            tap.ok(not d, "list %s%r: exit 2, one line on stderr"
                   % (opt, bad), d)


def group_match(tap, ctx):
    C = ctx.crashes
    A1, A2, B, U = (C[k]["id"] for k in ("A1", "A2", "B", "U"))
    sig_a = C["A1"]["row"]["signature"]
    uid = ctx.user.pw_uid
    cases = [
        ("PID number", [str(C["A2"]["pid"])], [A2]),
        ("PID=", ["PID=%d" % C["B"]["pid"]], [B]),
        ("COMM word", ["ctlabort"], [B]),
        ("COMM=", ["COMM=ctlsegv"], [A1, A2]),
        ("EXE path", [SYSTEM_PYTHON], [A1, A2, B, U]),
        ("EXE=", ["EXE=" + SYSTEM_PYTHON], [A1, A2, B, U]),
        ("EXE= another path", ["EXE=/usr/bin/sleep"], []),
        ("path no match", ["/usr/bin/nonexistent-python"], []),
        ("ID=", ["ID=%d" % B], [B]),
        ("UID=0", ["UID=0"], [A1, A2, B]),
        ("UID=user", ["UID=%d" % uid], [U]),
        ("SIG=SIGSEGV", ["SIG=SIGSEGV"], [A1, A2, U]),
        ("SIG=SEGV", ["SIG=SEGV"], [A1, A2, U]),
        ("SIG=11", ["SIG=11"], [A1, A2, U]),
        ("SIG=SIGABRT", ["SIG=SIGABRT"], [B]),
        ("SIG=ABRT", ["SIG=ABRT"], [B]),
        ("SIG=6", ["SIG=6"], [B]),
        ("SIG=SIGBUS", ["SIG=SIGBUS"], []),
        ("SIGNATURE=", ["SIGNATURE=%s" % sig_a],
         [C[k]["id"] for k in ("A1", "A2", "B", "U")
          if C[k]["row"]["signature"] == sig_a]),
        ("all must hold", ["COMM=ctlsegv", "PID=%d" % C["A1"]["pid"]], [A1]),
        ("all must hold (none)", ["COMM=ctlabort", "SIG=11"], []),
        ("ID= of nothing", ["ID=999999"], []),
        ("COMM= no match", ["COMM=nosuchcomm"], []),
    ]
    for name, args, want in cases:
        check_ids(tap, ctx, "match %s (%s): ids %r" % (name, " ".join(args),
                                                       want), args, want)
    # --json, no match: the documented exit status too
    r = ctl(ctx, ["list", "--json", "COMM=nosuchcomm"])
    d = []
    if r.rc != 1:
        d.append("expected exit 1 (no crash matches), got %r" % r.rc)
    if r.out.strip() not in (b"", b"[]"):
        d.append("stdout: %r" % r.out[:200])
    tap.ok(not d, "list --json COMM=nosuchcomm: exit 1 as in text mode "
           "(stdout empty or [])", d + r.describe() if d else [])
    # text mode, no match: exit 1, one line
    r = ctl(ctx, ["list", "COMM=nosuchcomm"])
    d = one_line_error(r, 1)
    tap.ok(not d, "list COMM=nosuchcomm (text): exit 1, one line", d)
    for verb in ("info", "show"):
        r = ctl(ctx, [verb, "ID=999999"])
        d = one_line_error(r, 1)
        tap.ok(not d, "%s ID=999999: exit 1, one line" % verb, d)
    for bad in (["SIG=NOSUCH"], ["ID=abc"], ["PID=-3"], ["FOO=bar"],
                ["UID=x"]):
        r = ctl(ctx, ["list"] + bad)
        d = one_line_error(r, 2)
        tap.ok(not d, "bad match %s: exit 2, one line" % bad[0], d)
    r = ctl(ctx, ["frobnicate"])
    tap.ok(not one_line_error(r, 2), "unknown verb: exit 2, one line",
           one_line_error(r, 2))
    r = ctl(ctx, ["--no-such-option", "list"])
    tap.ok(not one_line_error(r, 2), "unknown option: exit 2, one line",
           one_line_error(r, 2))
    r = ctl(ctx, ["--help"])
    tap.ok(r.rc == 0 and r.out and b"list" in r.out, "--help: exit 0, "
           "mentions the verbs", r.describe())


def group_info(tap, ctx):
    C = ctx.crashes
    c = C["A2"]
    r = ctl(ctx, ["info", "ID=%d" % c["id"]])
    d = []
    if r.rc != 0:
        d = r.describe()
    else:
        t = r.text
        for want in (str(c["pid"]), "SIGSEGV", SYSTEM_PYTHON, "3.11",
                     c["row"]["signature"], "ctlsegv", "done",
                     os.path.basename(c["row"]["core_path"] or "?"),
                     c["frames"][-1]["function"], ctx.crasher):
            if want not in t:
                d.append("no %r in the text" % want)
        if d:
            d += r.describe(40)
    tap.ok(not d, "info ID=A2 (text): pid, signal, exe, version, signature, "
           "comm, state, core, frame, command line", d)

    r = ctl(ctx, ["info", "--json", "ID=%d" % c["id"]])
    js = r.json()
    d = []
    try:
        json.loads(r.out, object_pairs_hook=no_repeated_keys)
    except ValueError as e:
        d.append(str(e))
    if r.rc != 0 or not isinstance(js, dict):
        d = ["expected a JSON object"] + r.describe()
    else:
        want_core = os.path.join(ctx.storage, c["row"]["core_path"])
        for k, v in (("id", c["id"]), ("pid", c["pid"]), ("uid", 0),
                     ("signal", 11), ("comm", "ctlsegv"),
                     ("exe", SYSTEM_PYTHON), ("state", "done"),
                     ("python_version", "3.11"), ("core_file", want_core),
                     ("time_usec", c["time_usec"])):
            if js.get(k) != v:
                d.append("%s: expected %r, got %r" % (k, v, js.get(k)))
        sg = js.get("signature")
        n_a = sum(1 for x in C.values()
                  if x["row"]["signature"] == c["row"]["signature"])
        if not isinstance(sg, dict):
            d.append("signature: expected an object, got %r" % (sg,))
        else:
            if sg.get("signature") != c["row"]["signature"]:
                d.append("signature.signature: expected %r, got %r"
                         % (c["row"]["signature"], sg.get("signature")))
            if sg.get("count") != n_a:
                d.append("signature.count: expected %d, got %r"
                         % (n_a, sg.get("count")))
            for k in ("title", "first_usec", "last_usec"):
                if k not in sg:
                    d.append("signature.%s missing" % k)
        if js.get("core_file") and not os.path.isabs(js["core_file"]):
            d.append("core_file not absolute")
    tap.ok(not d, "info --json ID=A2: the crash's columns, core_file, "
           "signature with its count", d)

    r = ctl(ctx, ["info", "COMM=ctlsegv", "--json"])
    js = r.json()
    tap.ok(r.rc == 0 and isinstance(js, dict) and js.get("id") == c["id"],
           "info COMM=ctlsegv: the newest match (A2)",
           ["expected id %d, got %r" % (c["id"], (js or {}).get("id")
                                        if isinstance(js, dict) else js)]
           + r.describe())


def parse_blocks(text):
    """{tid: [lines of the block]} in order, from a pystack text report."""
    blocks = []
    for line in text.splitlines():
        m = re.match(r"\s*Traceback for thread (\d+)", line)
        if m:
            blocks.append((int(m.group(1)), []))
        elif blocks:
            blocks[-1][1].append(line)
    return blocks


PY_LINE = re.compile(r'^\s*\(Python\) File "(.*)", line (-?\d+), in (.*?)\s*$')


def python_frames(lines):
    out = []
    for l in lines:
        m = PY_LINE.match(l)
        if m:
            out.append({"file": m.group(1), "line": int(m.group(2)),
                        "function": m.group(3)})
    return out


def group_show(tap, ctx):
    for k in ("A1", "B", "U"):
        c = ctx.crashes[k]
        want = c["frames"]
        r = ctl(ctx, ["show", "ID=%d" % c["id"]])
        blocks = parse_blocks(r.text)
        d = []
        if r.rc != 0 or not blocks:
            d = ["no 'Traceback for thread' block"] + r.describe(40)
        else:
            got = python_frames(blocks[0][1])
            if got != want:
                d.append("expected %s" % json.dumps(want))
                d.append("got      %s" % json.dumps(got))
            if blocks[0][0] != c["pid"]:
                d.append("first block: thread %d, expected the crashed "
                         "thread %d" % (blocks[0][0], c["pid"]))
            if any(re.match(r"\s*\(C\)", l) for l in r.text.splitlines()):
                d.append("(C) lines without --native")
        tap.ok(not d, "show %s: the Python frames the program recorded "
               "(%d frames)" % (k, len(want)), d)

        r = ctl(ctx, ["show", "--native", "ID=%d" % c["id"]])
        blocks = parse_blocks(r.text)
        d = []
        if r.rc != 0 or not blocks:
            d = r.describe(40)
        else:
            lines = blocks[0][1]
            if python_frames(lines) != want:
                d.append("Python frames differ from the plain show: %s"
                         % json.dumps(python_frames(lines)))
            nat = [l for l in lines if re.match(r"\s*\(C\)", l)]
            if not nat:
                d.append("no (C) lines")
            else:
                inner = nat[-1]
                fn = "memmove" if c["mode"] == "segv" else "raise|abort|kill"
                if not re.search(fn, inner) and not any(
                        re.search(fn, l) for l in nat[-4:]):
                    d.append("innermost native frames %r: expected %s"
                             % (nat[-4:], fn))
        tap.ok(not d, "show --native %s: (C) lines, the same Python frames"
               % k, d)

        r = ctl(ctx, ["show", "--locals", "ID=%d" % c["id"]])
        d = []
        if r.rc != 0:
            d = r.describe(40)
        else:
            t = r.text
            for w in ("Arguments:", "Locals:", "pystackctl-marker-0",
                      "depth"):
                if w not in t:
                    d.append("no %r" % w)
            if d:
                d += r.describe(60)
        tap.ok(not d, "show --locals %s: Arguments:/Locals: with the crash "
               "function's variables" % k, d)

    c = ctx.crashes["A1"]
    r = ctl(ctx, ["show", "--json", "ID=%d" % c["id"]])
    js = r.json()
    d = []
    if r.rc != 0 or not isinstance(js, dict):
        d = ["expected the stored report as JSON"] + r.describe()
    else:
        th = (js.get("threads") or [{}])[0]
        got = [{"file": f.get("file"), "line": f.get("line"),
                "function": f.get("function")}
               for f in th.get("frames") or [] if f.get("kind") == "python"]
        if got != c["frames"]:
            d.append("python frames: expected %s, got %s"
                     % (json.dumps(c["frames"]), json.dumps(got)))
        if (js.get("process") or {}).get("pid") != c["pid"]:
            d.append("process.pid %r" % (js.get("process") or {}).get("pid"))
        if js.get("python_version") != "3.11":
            d.append("python_version %r" % js.get("python_version"))
    tap.ok(not d, "show --json A1: the stored report (schema of "
           "doc/report-schema.md), frames as recorded", d)


def zstd_d(path):
    r = subprocess.run(["zstd", "-q", "-d", "-c", path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    return r.stdout if r.returncode == 0 else None


def group_dump(tap, ctx):
    c = ctx.crashes["A1"]
    stored = os.path.join(ctx.storage, c["row"]["core_path"])
    plain = zstd_d(stored)
    tap.ok(plain is not None and plain[:4] == b"\x7fELF",
           "zstd -d of A1's stored core gives an ELF core", [stored])
    out = os.path.join(ctx.rdir, "dump.A1")
    r = ctl(ctx, ["dump", "ID=%d" % c["id"], "-o", out])
    d = []
    if r.rc != 0:
        d = r.describe()
    elif not os.path.exists(out):
        d = ["no file %s" % out]
    else:
        with open(out, "rb") as fh:
            got = fh.read()
        if got != plain:
            d.append("%s: %d bytes, zstd -d gives %d; first difference at "
                     "%s" % (out, len(got), len(plain or b""),
                             next((i for i, (a, b) in enumerate(
                                 zip(got, plain or b"")) if a != b),
                                  min(len(got), len(plain or b"")))))
        mode = stat.S_IMODE(os.stat(out).st_mode)
        if mode != 0o600:
            d.append("mode %o, expected 600" % mode)
    tap.ok(not d, "dump ID=A1 -o FILE: byte-identical to zstd -d of the "
           "stored core, mode 0600", d)

    out2 = os.path.join(ctx.rdir, "dump.A1.output")
    r = ctl(ctx, ["dump", "ID=%d" % c["id"], "--output=%s" % out2])
    d = [] if r.rc == 0 and os.path.exists(out2) and \
        open(out2, "rb").read() == plain else r.describe()
    tap.ok(not d, "dump --output=FILE: the same bytes", d)

    r = ctl(ctx, ["dump", "ID=%d" % c["id"]], timeout=60)
    tap.ok(r.rc == 0 and r.out == plain, "dump ID=A1 to a pipe: the same "
           "bytes on stdout", ["got %d bytes, want %d" % (len(r.out),
                                                          len(plain or b""))]
           + r.describe(3))

    with open(out, "wb") as fh:
        fh.write(b"keep me")
    r = ctl(ctx, ["dump", "ID=%d" % c["id"], "-o", out])
    with open(out, "rb") as fh:
        kept = fh.read()
    d = one_line_error(r, 1) if r.rc == 0 or kept != b"keep me" else []
    if kept != b"keep me":
        d.append("the existing file was changed (%d bytes)" % len(kept))
    if r.rc == 0:
        d.append("exit 0")
    if len(r.errlines) != 1:
        d.append("expected one line on stderr") 
        d += r.describe()
    tap.ok(not d, "dump -o EXISTING: refused (non-zero, one line), the file "
           "is untouched", d)

    target = os.path.join(ctx.rdir, "link-target")
    link = os.path.join(ctx.rdir, "dump.link")
    os.symlink(target, link)
    r = ctl(ctx, ["dump", "ID=%d" % c["id"], "-o", link])
    d = []
    if r.rc == 0:
        d.append("exit 0")
    if os.path.exists(target):
        d.append("the core was written through the link to %s" % target)
    tap.ok(not d, "dump -o DANGLING-SYMLINK: refused, nothing written "
           "through the link", d + r.describe())

    # a terminal on stdout
    import pty
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([CTL, "--config=" + ctx.conf, "dump",
                              "ID=%d" % c["id"]], stdin=subprocess.DEVNULL,
                             stdout=slave, stderr=subprocess.PIPE,
                             start_new_session=True, env=base_env())
        os.close(slave)
        slave = None
        got = []
        deadline = time.time() + 20
        while time.time() < deadline:
            rr, _, _ = select.select([master], [], [], 0.1)
            if rr:
                try:
                    b = os.read(master, 65536)
                except OSError:
                    break
                if not b:
                    break
                got.append(b)
            elif p.poll() is not None:
                break
        if p.poll() is None:
            p.kill()
        err = p.stderr.read()
        p.wait(timeout=10)
        data = b"".join(got)
        d = []
        if p.returncode == 0:
            d.append("exit 0")
        if b"ELF" in data or len(data) > 1024:
            d.append("%d bytes reached the terminal" % len(data))
        if len(err.splitlines()) != 1:
            d.append("stderr: %r" % err[:300])
        tap.ok(not d, "dump to a terminal: refused (non-zero, one line on "
               "stderr, no core on the terminal)",
               d + ["exit %r, stderr %r" % (p.returncode, err[:200])])
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)


def write_script(path, body):
    with open(path, "w") as fh:
        fh.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)


def group_debug(tap, ctx):
    for who, k in (("root", "A2"), ("user", "U")):
        c = ctx.crashes[k]
        rec = os.path.join(ctx.recdir, "debug.%s" % who)
        script = os.path.join(ctx.bindir, "fake-debugger")
        write_script(script,
                     'rec=%s\n'
                     'for a in "$@"; do printf "arg:%%s\\n" "$a"; done > "$rec"\n'
                     'for last; do :; done\n'
                     'if [ -f "$last" ]; then echo core-exists >> "$rec"; fi\n'
                     'head -c 4 "$last" | od -An -c | tr -d " " >> "$rec"\n'
                     'printf "core:%%s\\nuid:%%s\\n" "$last" "$(id -u)" >> "$rec"\n'
                     'n=$#; i=0\n'
                     'for a in "$@"; do i=$((i + 1)); [ $i -eq $((n - 1)) ] && '
                     'printf "exe:%%s\\n" "$(readlink -f "$a")" >> "$rec"; done\n'
                     'exit 0\n' % rec)
        if os.path.exists(rec):
            os.unlink(rec)
        r = ctl(ctx, ["debug", "--debugger=%s" % script, "ID=%d" % c["id"]],
                user=(who == "user"), timeout=60)
        d = []
        try:
            with open(rec) as fh:
                lines = fh.read().splitlines()
        except OSError:
            lines = None
        if r.rc != 0:
            d.append("exit %r" % r.rc)
        if lines is None:
            d.append("the debugger did not run (no %s)" % rec)
        else:
            args = [l[4:] for l in lines if l.startswith("arg:")]
            core = ([l[5:] for l in lines if l.startswith("core:")] or [""])[0]
            exe = ([l[4:] for l in lines if l.startswith("exe:")] or [""])[0]
            # the executable under a name of pystackctl's own (the crash
            # chose the real one), linked to the real file
            if (len(args) < 2 or os.path.basename(args[-2]) != "exe"
                    or exe != os.path.realpath(SYSTEM_PYTHON)):
                d.append("arguments %r (EXE resolves to %r): expected ... "
                         "a link to %s, CORE" % (args, exe, SYSTEM_PYTHON))
            if "core-exists" not in lines:
                d.append("the core %r did not exist while it ran" % core)
            if "177ELF" not in lines and "\\177ELF" not in lines:
                d.append("the core does not start with \\177ELF: %r" % lines)
            if core and os.path.exists(core):
                d.append("the core %s is still there afterwards" % core)
            want_uid = str(ctx.user.pw_uid if who == "user" else 0)
            if "uid:" + want_uid not in lines:
                d.append("ran as %r, expected uid %s (the caller)"
                         % ([l for l in lines if l.startswith("uid:")],
                            want_uid))
        tap.ok(not d, "debug --debugger=SCRIPT (%s, %s): EXE CORE as the last "
               "arguments, the core exists while it runs and is removed "
               "afterwards" % (who, k), d + (r.describe() if d else [])
               + (["record: %r" % lines] if d and lines else []))


def groups_json(ctx, user=False):
    r = ctl(ctx, ["groups", "--json"], user=user)
    js = r.json()
    return r, js if isinstance(js, list) else None


def expected_groups(ctx):
    rows = db_rows(ctx, "SELECT signature, count(*) AS n FROM crashes "
                   "WHERE signature IS NOT NULL GROUP BY signature")
    return {r["signature"]: r["n"] for r in rows}


def group_groups(tap, ctx):
    r, js = groups_json(ctx)
    want = expected_groups(ctx)
    d = []
    if js is None:
        d = ["expected a JSON array"] + r.describe()
    else:
        got = {g.get("signature"): g.get("count") for g in js}
        if got != want:
            d.append("expected {signature: count} %r, got %r" % (want, got))
        for g in js:
            for k in ("title", "first_usec", "last_usec"):
                if k not in g:
                    d.append("%s: no %s" % (g.get("signature"), k))
        sa, sb = (ctx.crashes[k]["row"]["signature"] for k in ("A1", "B"))
        if ctx.crashes["A2"]["row"]["signature"] != sa:
            d.append("A1 and A2 (the same code) have different signatures")
        if sa == sb:
            d.append("A1 (SIGSEGV) and B (SIGABRT) have the same signature")
    tap.ok(not d, "groups --json: one entry per signature, counts as in the "
           "store (%s)" % ", ".join("%s…=%d" % (s[:8], n) for s, n in
                                    sorted(want.items())), d)
    r = ctl(ctx, ["groups", "--no-legend"])
    lines = [l for l in r.text.splitlines() if l.strip()]
    d = []
    if r.rc != 0 or len(lines) != len(want):
        d = ["expected %d lines, got %d" % (len(want), len(lines))] + \
            r.describe()
    else:
        for s, n in want.items():
            if not any(s[:8] in l and str(n) in l.split() for l in lines):
                d.append("no line with %s… and count %d" % (s[:8], n))
    tap.ok(not d, "groups --no-legend (text): a line per signature with its "
           "count", d + (lines if d else []))
    r2 = ctl(ctx, ["groups"])
    tap.ok(r2.rc == 0 and len(r2.text.splitlines()) > len(lines),
           "groups (text): a legend", r2.describe())


def group_analyze(tap, ctx):
    c = ctx.crashes["A1"]
    before = db_rows(ctx, "SELECT * FROM crashes WHERE id=?", (c["id"],))[0]
    nframes = db_rows(ctx, "SELECT count(*) AS n FROM frames WHERE "
                      "crash_id=?", (c["id"],))[0]["n"]
    groups0 = expected_groups(ctx)
    r0, g0 = groups_json(ctx)
    show0 = ctl(ctx, ["show", "ID=%d" % c["id"]]).text
    time.sleep(0.01)
    r = ctl(ctx, ["analyze", "--json", "ID=%d" % c["id"]])
    js = r.json()
    states = []
    # watch the state (the store directly, as fast as we can)
    t0 = time.time()
    while time.time() - t0 < ANALYZE_TIMEOUT:
        row = db_rows(ctx, "SELECT * FROM crashes WHERE id=?", (c["id"],))[0]
        if not states or states[-1] != row["state"]:
            states.append(row["state"])
        if row["state"] in ("done", "failed") and \
                row["analyzed_usec"] != before["analyzed_usec"]:
            break
        time.sleep(0.02)
    d = []
    if r.rc != 0 or not isinstance(js, dict) or js.get("id") != c["id"] \
            or js.get("state") != "pending":
        d.append("expected {\"id\": %d, \"state\": \"pending\"}, exit 0"
                 % c["id"])
        d += r.describe()
    tap.ok(not d, "analyze --json ID=A1: {id, state: pending}", d)
    lj = ctl(ctx, ["list", "--json", "ID=%d" % c["id"]]).json()
    d = []
    if states[-1:] != ["done"]:
        d.append("states seen %r: expected to end in done" % states)
    if row["analyzed_usec"] == before["analyzed_usec"]:
        d.append("analyzed_usec unchanged (%r): not analysed again"
                 % row["analyzed_usec"])
    if not (isinstance(lj, list) and lj and lj[0].get("state") == "done"):
        d.append("list --json: %r" % (lj,))
    tap.ok(not d, "analyze: the crash is analysed again (states %s)"
           % " -> ".join(str(s) for s in states), d)
    n2 = db_rows(ctx, "SELECT count(*) AS n FROM frames WHERE crash_id=?",
                 (c["id"],))[0]["n"]
    show1 = ctl(ctx, ["show", "ID=%d" % c["id"]]).text
    d = []
    if n2 != nframes:
        d.append("frames rows: %d before, %d after" % (nframes, n2))
    if python_frames(show1.splitlines()) != python_frames(show0.splitlines()):
        d.append("show differs after the new analysis")
    if row["report"] is None:
        d.append("no report")
    tap.ok(not d, "analyze: the result replaces the old one (%d frame rows, "
           "same report)" % n2, d)
    r1, g1 = groups_json(ctx)
    d = []
    want = expected_groups(ctx)
    if want != groups0:
        d.append("store: signatures per crash %r before, %r after"
                 % (groups0, want))
    if g1 is None:
        d += r1.describe()
    else:
        got = {g.get("signature"): g.get("count") for g in g1}
        if got != want:
            d.append("groups count %r, the crashes with each signature %r"
                     % (got, want))
    tap.ok(not d, "analyze: signature counts stay consistent (a re-analysis "
           "does not count the crash twice)", d)
    # a user cannot queue root's crash
    r = ctl(ctx, ["analyze", "ID=%d" % c["id"]], user=True)
    row2 = db_rows(ctx, "SELECT * FROM crashes WHERE id=?", (c["id"],))[0]
    d = one_line_error(r, 1)
    if row2["state"] != "done" or row2["analyzed_usec"] != row["analyzed_usec"]:
        d.append("root's crash was queued again: state %s" % row2["state"])
    tap.ok(not d, "analyze ID=A1 as the user: no match (exit 1), nothing "
           "queued", d)


def group_access(tap, ctx):
    C = ctx.crashes
    U = C["U"]
    r, got = list_ids(ctx, [], user=True)
    tap.ok(r.rc == 0 and got == [U["id"]], "user: list --json shows only "
           "their own crash (through the socket)",
           ["expected [%d], got %r" % (U["id"], got)] + r.describe())
    r = ctl(ctx, ["list"], user=True)
    d = []
    if r.rc != 0:
        d = r.describe()
    for k in ("A1", "A2", "B"):
        if str(C[k]["pid"]) in r.text.split():
            d.append("root's crash %s (pid %d) is listed" % (k, C[k]["pid"]))
    tap.ok(not d and str(U["pid"]) in r.text.split(),
           "user: list (text) has their crash and none of root's", d
           + r.describe())
    for k in ("A1", "B"):
        r = ctl(ctx, ["list", "ID=%d" % C[k]["id"]], user=True)
        d = one_line_error(r, 1)
        tap.ok(not d, "user: list ID=%s (root's): no match, exit 1, one line"
               % k, d)
    r = ctl(ctx, ["list", "UID=0"], user=True)
    tap.ok(not one_line_error(r, 1), "user: list UID=0: no match",
           one_line_error(r, 1))
    r = ctl(ctx, ["info", "--json", "ID=%d" % U["id"]], user=True)
    js = r.json()
    tap.ok(r.rc == 0 and isinstance(js, dict) and js.get("id") == U["id"]
           and js.get("pid") == U["pid"], "user: info --json of their own "
           "crash", r.describe())
    r = ctl(ctx, ["show", "ID=%d" % U["id"]], user=True)
    blocks = parse_blocks(r.text)
    tap.ok(r.rc == 0 and blocks and python_frames(blocks[0][1]) ==
           U["frames"], "user: show of their own crash, the recorded frames",
           r.describe(30))
    for verb in (["show"], ["show", "--locals"], ["info"]):
        r = ctl(ctx, verb + ["ID=%d" % C["A1"]["id"]], user=True)
        d = one_line_error(r, 1)
        tap.ok(not d, "user: %s ID=A1 (root's): exit 1, one line, nothing "
               "shown" % " ".join(verb), d)
    out = os.path.join(ctx.udir, "dump.root")
    r = ctl(ctx, ["dump", "ID=%d" % C["A1"]["id"], "-o", out], user=True)
    d = one_line_error(r, 1)
    if os.path.exists(out) and os.path.getsize(out) > 0:
        d.append("%s was written (%d bytes)" % (out, os.path.getsize(out)))
    tap.ok(not d, "user: dump ID=A1 (root's) -o FILE: refused, nothing "
           "written", d)
    r = ctl(ctx, ["dump", "ID=%d" % C["A1"]["id"]], user=True)
    tap.ok(r.rc == 1 and b"ELF" not in r.out, "user: dump ID=A1 to stdout: "
           "exit 1, no core", r.describe(2))
    # their own core
    out = os.path.join(ctx.udir, "dump.own")
    r = ctl(ctx, ["dump", "ID=%d" % U["id"], "-o", out], user=True,
            timeout=60)
    plain = zstd_d(os.path.join(ctx.storage, U["row"]["core_path"]))
    d = []
    if r.rc != 0:
        d = r.describe()
    elif not os.path.exists(out):
        d = ["no %s" % out]
    else:
        st = os.stat(out)
        with open(out, "rb") as fh:
            if fh.read() != plain:
                d.append("not byte-identical to zstd -d of the stored core")
        if st.st_uid != ctx.user.pw_uid:
            d.append("owned by uid %d" % st.st_uid)
    tap.ok(not d, "user: dump of their own crash -o FILE: byte-identical, "
           "their file", d)
    r, js = groups_json(ctx, user=True)
    d = []
    sb = C["B"]["row"]["signature"]
    if js is None:
        d = r.describe()
    elif any(g.get("signature") == sb for g in js):
        d.append("root's SIGABRT signature %s is listed" % sb)
    tap.ok(not d, "user: groups shows none of root's signatures", d)
    r = ctl(ctx, ["vacuum"], user=True)
    present = [x for x in db_rows(ctx) if x["core_state"] == "present"]
    d = []
    if r.rc == 0:
        d.append("exit 0")
    if len(r.errlines) != 1:
        d.append("stderr: %r" % r.errlines)
    if len(present) != 4:
        d.append("%d cores present after it (4 before)" % len(present))
    tap.ok(not d, "user: vacuum refused (root only): non-zero, one line, "
           "no core removed", d + r.describe())
    # root sees both
    r, got = list_ids(ctx, ["UID=%d" % ctx.user.pw_uid])
    tap.ok(got == [U["id"]], "root: list UID=user shows the user's crash",
           r.describe())
    r, got = list_ids(ctx, [])
    tap.ok(got and U["id"] in got and C["A1"]["id"] in got,
           "root: list shows root's and the user's crashes", r.describe())
    # pystackd not reachable
    conf2 = os.path.join(ctx.pub, "c-nodaemon")
    write_conf(conf2, ctx.storage, os.path.join(ctx.pub, "no-such-runtime"))
    r = ctl(ctx, ["list"], user=True, conf=conf2)
    tap.ok(not one_line_error(r, 1), "user: pystackd not reachable "
           "(no socket): exit 1, one line", one_line_error(r, 1))


# A connection held open as the test user, its request not yet sent: the
# worker pystackd runs for it waits, already in its sandbox.
HOLDER = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
print("connected", flush=True)
sys.stdin.readline()
s.shutdown(socket.SHUT_WR)
"""


def query_workers(ctx):
    """pids of pystackd's children running --query-worker."""
    return [c for c in corepattern.children(ctx.daemon.p.pid)
            if b"--query-worker" in corepattern.cmdline(c).split(b"\0")]


def open_files(pid):
    """(fd, target, flags) of every descriptor of pid."""
    out = []
    for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as fh:
                flags = int(re.search(r"^flags:\s*(\d+)", fh.read(),
                                      re.M).group(1), 8)
        except (OSError, AttributeError):
            continue
        out.append((int(fd), target, flags))
    return out


def pidfd_getfd(pid, fd):
    """A duplicate of descriptor fd of process pid (pidfd_getfd(2))."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        r = libc.syscall(438, pidfd, fd, 0)     # SYS_pidfd_getfd
        if r < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
        return r
    finally:
        os.close(pidfd)


def ask_channel(chan, msg):
    """Send msg on a worker's channel as the worker would: (reply, fds);
    reply None when pystackd closed the channel."""
    import socket as so
    chan.send(msg)
    data, anc, _, _ = chan.recvmsg(256, so.CMSG_SPACE(4 * 4))
    fds = []
    for level, kind, payload in anc:
        if level == so.SOL_SOCKET and kind == so.SCM_RIGHTS:
            fds += list(struct.unpack("%di" % (len(payload) // 4), payload))
    return (data.decode("utf-8", "replace") if data else None), fds


def group_privsep(tap, ctx):
    import socket as so
    C = ctx.crashes
    U = C["U"]
    qpw = users.ours(QUERY_USER, QUERY_USER_GECOS)
    holder = subprocess.Popen(user_prefix(ctx) + [SYSTEM_PYTHON, "-c", HOLDER,
                              os.path.join(ctx.runtime, "query")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=base_env(), cwd="/")
    try:
        line = holder.stdout.readline()
        pids = []
        deadline = time.time() + 5
        while line == b"connected\n" and not pids and time.time() < deadline:
            pids = query_workers(ctx)
            time.sleep(0.02)
        tap.ok(len(pids) == 1, "privsep: a user's connection has a worker of "
               "its own (pystackd --query-worker)", ["workers: %r, holder "
               "said %r" % (pids, line)] + ctx.daemon.tail(5))
        if len(pids) != 1:
            return
        pid = pids[0]
        # it has dropped everything before the first byte of the request
        time.sleep(0.2)
        st = corepattern.status(pid)
        d = []
        want_ids = "%d\t%d\t%d\t%d" % ((qpw.pw_uid,) * 4) if qpw else None
        if not qpw:
            d.append("the QueryUser %s does not exist" % QUERY_USER)
        elif st.get("Uid") != want_ids or st.get("Gid") != "\t".join(
                [str(qpw.pw_gid)] * 4):
            d.append("Uid %r Gid %r, want QueryUser %s (%d)" % (
                st.get("Uid"), st.get("Gid"), QUERY_USER, qpw.pw_uid))
        if st.get("Groups", "").strip():
            d.append("supplementary groups %r" % st.get("Groups"))
        for k in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            if int(st.get(k, "1"), 16) != 0:
                d.append("%s %s" % (k, st.get(k)))
        if st.get("NoNewPrivs") != "1":
            d.append("NoNewPrivs %r" % st.get("NoNewPrivs"))
        tap.ok(not d, "privsep: the worker runs as QueryUser, no capability, "
               "no group, no_new_privs, before it reads the request", d)
        tap.ok(st.get("Seccomp") == "2", "privsep: the worker is under a "
               "seccomp filter (Seccomp: 2)", ["Seccomp: %r" %
                                               st.get("Seccomp")])
        files = open_files(pid)
        d = []
        store = set()
        # stderr is pystackd's own (the journal's stream under systemd; a
        # log file here): where a sanitizer's report goes
        daemon_err = os.readlink("/proc/%d/fd/2" % ctx.daemon.p.pid)
        for fd, target, flags in files:
            if target.startswith(("socket:", "pipe:", "anon_inode:")):
                continue
            if (target == "/dev/null" and fd <= 1) or (fd == 2 and
                                                        target == daemon_err):
                continue
            if flags & 3 != os.O_RDONLY:
                d.append("fd %d %s is open for writing (flags %o)"
                         % (fd, target, flags))
            if target.startswith(ctx.storage):
                store.add(os.path.relpath(target, ctx.storage))
        for name in ("pystack.db", "pystack.db-wal", "pystack.db-shm",
                     "cores"):
            if name not in store:
                d.append("%s is not open" % name)
        tap.ok(not d, "privsep: the worker holds the store's files and cores/ "
               "read-only, and no file it could write", d + [
                   "%d %s %o" % f for f in files])
        # the channel: what a worker may ask pystackd, checked against the
        # uid pystackd took from the socket, not the worker's word
        try:
            chan = so.socket(fileno=pidfd_getfd(pid, 4))
        except OSError as e:
            tap.ok(False, "privsep: the worker's channel (pidfd_getfd)",
                   [str(e)])
            return
        chan.settimeout(10)
        with chan:
            cases = [
                (b"CORE %d" % C["A1"]["id"], "ERR no such crash", 0,
                 "root's crash's core"),
                (b"ANALYZE %d" % C["B"]["id"], "ERR no such crash", 0,
                 "a new analysis of root's crash"),
                (b"VACUUM", "ERR only root may remove cores", 0, "vacuum"),
                (b"CORE 99999999", "ERR no such crash", 0, "no such crash"),
                (b"CORE -1", "ERR not understood", 0, "a negative id"),
                (b"CORE %d\n" % U["id"], "ERR not understood", 0,
                 "trailing bytes"),
                (b"CORE %d" % U["id"], "OK", 1, "their own crash's core"),
            ]
            for msg, want, n_fds, what in cases:
                try:
                    reply, fds = ask_channel(chan, msg)
                except OSError as e:
                    reply, fds = "(%s)" % e, []
                d = []
                if reply != want or len(fds) != n_fds:
                    d.append("%r: got %r with %d descriptors, want %r with %d"
                             % (msg, reply, len(fds), want, n_fds))
                if fds:
                    size = os.fstat(fds[0]).st_size
                    stored = os.path.getsize(os.path.join(
                        ctx.storage, U["row"]["core_path"]))
                    if size != stored:
                        d.append("the descriptor is %d bytes, the stored core "
                                 "%d" % (size, stored))
                for fd in fds:
                    os.close(fd)
                tap.ok(not d, "privsep: the channel, %s: %s" % (
                    what, "given" if n_fds else "refused"), d)
            try:
                reply, fds = ask_channel(chan, b"CORE " + b"1" * 100)
            except OSError as e:
                reply, fds = "(%s)" % e, []
            tap.ok(reply is None and not fds, "privsep: a message longer "
                   "than any of ours: pystackd hears that worker no more",
                   ["got %r" % reply])
        holder.stdin.write(b"\n")
        holder.stdin.close()
        holder.wait(timeout=15)
        tap.ok(ctx.daemon.p.poll() is None, "privsep: pystackd is still "
               "running", ctx.daemon.tail(5))
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    # a missing core, told by a worker that may not search cores/: it
    # lists the directory, here with 5,000 other names in it
    core = os.path.join(ctx.storage, U["row"]["core_path"])
    cores = os.path.dirname(core)
    filler = [os.path.join(cores, "filler.%05d.zst" % i) for i in range(5000)]
    for path in filler:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    try:
        r = ctl(ctx, ["list", "--json", "ID=%d" % U["id"]], user=True)
        os.rename(core, core + ".away")
        try:
            r2 = ctl(ctx, ["list", "--json", "ID=%d" % U["id"]], user=True)
        finally:
            os.rename(core + ".away", core)
    finally:
        for path in filler:
            os.unlink(path)
    for run, want in ((r, "present"), (r2, "missing")):
        js = run.json()
        tap.ok(run.rc == 0 and isinstance(js, list) and len(js) == 1
               and js[0].get("core") == want, "privsep: among 5,000 other "
               "files in cores/, the user's list says their core is %s%s"
               % (want, "" if want == "present" else " when its file is gone"),
               run.describe() + ctx.daemon.tail(3))


def group_pager(tap, ctx):
    rec = os.path.join(ctx.recdir, "pager")
    pager = os.path.join(ctx.bindir, "fake-pager")
    write_script(pager, 'id -u >> %s\ncat >/dev/null\nexit 0\n' % rec)
    c = ctx.crashes
    for who, k in (("root", "A1"), ("user", "U")):
        for nopager in (False, True):
            if os.path.exists(rec):
                os.unlink(rec)
            argv = [CTL, "--config=" + ctx.conf] + \
                (["--no-pager"] if nopager else []) + \
                ["show", "--native", "--locals", "ID=%d" % c[k]["id"]]
            if who == "user":
                argv = user_prefix(ctx) + argv
            env = base_env({"PAGER": pager, "LESS": "", "LESSSECURE": ""})
            rc, out, lesses = run_pty(argv, env)
            ran = os.path.exists(rec)
            d = []
            nlines = len(out.splitlines())
            if who == "root":
                if ran:
                    d.append("$PAGER ran as root")
                if not nopager:
                    if not lesses:
                        d.append("no less was seen (output %d lines on a "
                                 "%d-row terminal)" % (nlines, PTY_ROWS))
                    elif any(e.get("LESSSECURE") != "1" for e in lesses):
                        d.append("less ran without LESSSECURE=1: %r"
                                 % [e.get("LESSSECURE") for e in lesses])
            else:
                if nopager and ran:
                    d.append("$PAGER ran with --no-pager")
                if not nopager and not ran:
                    d.append("the user's $PAGER did not run (output %d lines "
                             "on a %d-row terminal)" % (nlines, PTY_ROWS))
                if not nopager and ran:
                    with open(rec) as fh:
                        uid = fh.read().split()
                    if uid != [str(ctx.user.pw_uid)]:
                        d.append("the pager ran as %r" % uid)
            if nopager:
                if lesses:
                    d.append("less ran with --no-pager")
                if b"Traceback for thread" not in out:
                    d.append("the report did not reach the terminal")
            if rc != 0:
                d.append("exit %r" % rc)
            if d:
                d.append("output: %r" % out[:300])
            if who == "root":
                desc = ("root, --no-pager: no pager at all, the report on "
                        "the terminal" if nopager else
                        "root, PAGER=script on a terminal: $PAGER is not "
                        "run, less in secure mode (LESSSECURE=1) pages")
            else:
                desc = ("user, --no-pager: $PAGER is not run" if nopager else
                        "user, PAGER=script on a terminal: their $PAGER runs")
            tap.ok(not d, "pager: " + desc, d)
    # not a terminal: never a pager
    if os.path.exists(rec):
        os.unlink(rec)
    r = ctl(ctx, ["show", "ID=%d" % c["U"]["id"]], user=True,
            env={"PAGER": pager})
    tap.ok(r.rc == 0 and not os.path.exists(rec), "pager: stdout not a "
           "terminal: no pager", r.describe(3))


def group_vacuum(tap, ctx):
    n_present = sum(1 for x in db_rows(ctx) if x["core_state"] == "present")
    files0 = sorted(os.listdir(os.path.join(ctx.storage, "cores")))
    conf2 = os.path.join(ctx.pub, "c-maxage")
    write_conf(conf2, ctx.storage, ctx.runtime, "MaxAge=1s")
    time.sleep(1.2)
    r = ctl(ctx, ["vacuum", "--json"], conf=conf2, timeout=60)
    js = r.json()
    rows = db_rows(ctx)
    files = [f for f in os.listdir(os.path.join(ctx.storage, "cores"))
             if not f.startswith(".")]
    d = []
    if r.rc != 0 or not isinstance(js, dict) or js.get("removed") != n_present:
        d.append("expected {\"removed\": %d}, exit 0" % n_present)
        d += r.describe()
    if files:
        d.append("core files left: %r (before: %r)" % (files, files0))
    tap.ok(not d, "vacuum --json with MaxAge=1s: every core removed "
           "({removed: %d})" % n_present, d)
    d = []
    if len(rows) != len(ctx.crashes):
        d.append("%d rows, expected %d" % (len(rows), len(ctx.crashes)))
    for x in rows:
        if x["core_state"] != "removed":
            d.append("id %d: core_state %s" % (x["id"], x["core_state"]))
    r, js = ctl(ctx, ["list", "--json"]), None
    js = r.json()
    if not isinstance(js, list) or len(js) != len(ctx.crashes):
        d.append("list --json after vacuum: %r" % (r.out[:200],))
    else:
        for e in js:
            if e.get("core") != "removed" or e.get("state") != "done":
                d.append("id %s: core %r state %r" % (e.get("id"),
                                                       e.get("core"),
                                                       e.get("state")))
    tap.ok(not d, "vacuum: the records stay, their core shows as removed",
           d)
    c = ctx.crashes["A1"]
    r = ctl(ctx, ["show", "ID=%d" % c["id"]])
    blocks = parse_blocks(r.text)
    tap.ok(r.rc == 0 and blocks and python_frames(blocks[0][1]) ==
           c["frames"], "vacuum: show still gives the stored report",
           r.describe())
    r = ctl(ctx, ["info", "--json", "ID=%d" % c["id"]])
    js = r.json()
    d = []
    try:
        json.loads(r.out, object_pairs_hook=no_repeated_keys)
    except ValueError as e:
        d.append(str(e))
    if r.rc != 0 or not isinstance(js, dict):
        d = r.describe()
    elif js.get("core_file") is not None:
        cfile = js["core_file"]
        d.append("core_file %r (exists: %s), core_state %r, core_path %r"
                 % (cfile, os.path.exists(cfile), js.get("core_state"),
                    js.get("core_path")))
    tap.ok(not d, "vacuum: info --json core_file is null", d)
    out = os.path.join(ctx.rdir, "dump.after-vacuum")
    r = ctl(ctx, ["dump", "ID=%d" % c["id"], "-o", out])
    d = one_line_error(r, 1)
    if os.path.exists(out):
        d.append("%s created" % out)
    tap.ok(not d, "vacuum: dump of a removed core: exit 1, one line", d)
    r = ctl(ctx, ["vacuum", "--json"], conf=conf2)
    tap.ok(r.rc == 0 and r.json() == {"removed": 0}, "vacuum again: "
           "{removed: 0}", r.describe())


def group_store(tap, ctx):
    empty = tempfile.mkdtemp(prefix="pystackctl-empty.", dir=ctx.pub)
    os.chmod(empty, 0o700)
    conf = os.path.join(ctx.pub, "c-empty")
    write_conf(conf, empty, os.path.join(ctx.pub, "r-empty"))
    for args in (["list"], ["info"], ["groups"]):
        r = ctl(ctx, args, conf=conf)
        d = one_line_error(r, 1)
        tap.ok(not d, "store missing (Directory= an empty dir), %s as root: "
               "exit 1, one line" % args[0], d)
    r = ctl(ctx, ["list"], conf="/nonexistent/pystack.conf")
    tap.ok(r.rc in (1, 2) and len(r.errlines) == 1 and not r.out,
           "--config=/nonexistent: exit 1 or 2, one line", r.describe())


# --------------------------------------------------------------------------

def setup_crashes(tap, ctx, fx):
    tap.diag("crashing A1 (root, SIGSEGV)")
    make_crash(ctx, fx, "A1", "segv", "ctlsegv")
    ctx.t1 = sleep_past_second(1.1)
    make_crash(ctx, fx, "A2", "segv", "ctlsegv")
    make_crash(ctx, fx, "B", "abort", "ctlabort")
    ctx.t2 = sleep_past_second(1.1)
    make_crash(ctx, fx, "U", "segv", "ctluser", as_user=True)
    ids = [c["id"] for c in ctx.crashes.values()]
    states = wait_done(ctx, ids)
    refresh(ctx)
    d = ["%s: id %d state %s error %r" % (k, c["id"], c["row"]["state"],
                                          c["row"]["error"])
         for k, c in sorted(ctx.crashes.items())
         if c["row"]["state"] != "done"]
    ok = tap.ok(not d, "fixture: four real crashes recorded by the handler "
                "and analysed by pystackd", d + ctx.daemon.tail())
    for k, c in sorted(ctx.crashes.items()):
        tap.diag("%s: id %d pid %d uid %d comm %s signal %d signature %s"
                 % (k, c["id"], c["pid"], c["uid"], c["comm"], c["signal"],
                    c["row"]["signature"]))
    return ok and all(s == "done" for s in states.values())


def wait_for_ctl(tap):
    """pystackctl is being written: wait for it (bounded)."""
    wait = int(os.environ.get("PYSTACKCTL_WAIT", "0"))
    t0 = time.time()
    while not os.access(CTL, os.X_OK) and time.time() - t0 < wait:
        time.sleep(5)
    return os.access(CTL, os.X_OK)


def main():
    tap = TAP()
    only = os.environ.get("PYSTACK_TEST_ONLY")
    rx = re.compile(only) if only else None

    def want(name):
        return rx is None or rx.search(name)

    if os.geteuid() != 0:
        tap.skip("not root: core_pattern cannot be changed")
        return tap.done()
    for p, what in ((PYSTACKD, "pystackd"), (HANDLER, "pystack-coredump"),
                    (ANALYZER, "pystack")):
        if not os.access(p, os.X_OK):
            tap.ok(False, "%s is built (%s)" % (what, p))
            return tap.done()
    for tool in ("zstd", "useradd", "userdel", "setpriv", "less"):
        if not shutil.which(tool):
            tap.ok(False, "%s is installed" % tool)
            return tap.done()
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        tap.skip("%s not installed" % SYSTEM_PYTHON)
        return tap.done()
    have_ctl = wait_for_ctl(tap)

    limit = int(os.environ.get("PYSTACKCTL_TEST_TIMEOUT", "600"))
    old = {s: signal.signal(s, on_signal)
           for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    alarm = watchdog(limit)
    t_all = time.time()
    ctx = Ctx()
    interrupted = None
    try:
        with corepattern.PipeHandlerFixture(pipe_limit=64) as fx:
            # the fixture put its own signal handlers in: ours unwind
            for s in old:
                signal.signal(s, on_signal)
            try:
                ctx.pub = tempfile.mkdtemp(prefix="pystackctl-test.",
                                           dir="/tmp")
                os.chmod(ctx.pub, 0o755)
                ctx.storage = os.path.join(fx.root, "s")
                ctx.db = os.path.join(ctx.storage, "pystack.db")
                ctx.runtime = os.path.join(ctx.pub, "r")
                ctx.conf = os.path.join(ctx.pub, "c")
                write_conf(ctx.conf, ctx.storage, ctx.runtime)
                ctx.crasher = os.path.join(ctx.pub, "crasher.py")
                with open(ctx.crasher, "w") as fh:
                    fh.write(CRASHER)
                os.chmod(ctx.crasher, 0o644)
                ctx.rdir = fx.mkdir("root")
                ctx.bindir = os.path.join(ctx.pub, "bin")
                os.mkdir(ctx.bindir, 0o755)
                ctx.recdir = os.path.join(ctx.pub, "rec")
                os.mkdir(ctx.recdir)
                os.chmod(ctx.recdir, 0o1777)
                ctx.user = create_user()
                ctx.udir = os.path.join(ctx.pub, "u")
                os.mkdir(ctx.udir, 0o700)
                os.chown(ctx.udir, ctx.user.pw_uid, ctx.user.pw_gid)
                tap.diag("scratch %s and %s, user %s (uid %d); core_pattern "
                         "%r restored at the end" % (fx.root, ctx.pub,
                                                     TEST_USER,
                                                     ctx.user.pw_uid,
                                                     fx.original))

                ctx.daemon = Daemon(fx, ctx.conf,
                                    os.path.join(fx.root, "pystackd.log"),
                                    ctx.runtime)
                ctx.daemons.append(ctx.daemon)
                ready = ctx.daemon.wait_ready()
                tap.ok(ready, "fixture: pystackd is up (%s)"
                       % os.path.join(ctx.runtime, "notify"),
                       ctx.daemon.tail())
                tap.ok(os.path.exists(os.path.join(ctx.runtime, "query")),
                       "pystackd serves queries: %s/query exists"
                       % ctx.runtime, ctx.daemon.tail(5))
                link = ctx.link = os.path.join(fx.root, "h")
                os.symlink(HANDLER, link)
                fx.set_pattern("|%s --config=%s %%F %%P %%u %%g %%s %%t %%c "
                               "%%h %%d %%e" % (link, ctx.conf))
                try:
                    fixture_ok = ready and setup_crashes(tap, ctx, fx)
                except (Watchdog, Interrupted):
                    raise
                except Exception:
                    fixture_ok = False
                    tap.ok(False, "fixture: the crashes",
                           traceback.format_exc().splitlines()
                           + ctx.daemon.tail())
                if not fixture_ok:
                    tap.diag("the fixture failed: no pystackctl checks")
                else:
                    fx.reset_pattern()      # no more crashes needed
                    if not have_ctl:
                        tap.ok(False, "pystackctl is built (%s)" % CTL,
                               ["build it (make), or set PYSTACKCTL; "
                                "PYSTACKCTL_WAIT=SECONDS waits for it"])
                    else:
                        groups = [("list", group_list), ("time", group_time),
                                  ("match", group_match),
                                  ("info", group_info), ("show", group_show),
                                  ("groups", group_groups),
                                  ("access", group_access),
                                  ("privsep", group_privsep),
                                  ("pager", group_pager),
                                  ("dump", group_dump),
                                  ("debug", group_debug),
                                  ("analyze", group_analyze),
                                  ("vacuum", group_vacuum),
                                  ("store", group_store)]
                        for name, fn in groups:
                            if not want(name):
                                continue
                            t0 = time.time()
                            try:
                                fn(tap, ctx)
                            except (Watchdog, Interrupted):
                                raise
                            except Exception:
                                tap.ok(False, "%s: the harness" % name,
                                       traceback.format_exc().splitlines())
                            tap.diag("%s: %.1fs" % (name, time.time() - t0))
            finally:
                fx.reset_pattern()
                for dmn in ctx.daemons:
                    rc = dmn.stop()
                    tap.ok(rc == 0, "pystackd stopped cleanly on SIGTERM "
                           "(exit %r)" % rc, dmn.tail())
                fx.kill_children()
                if ctx.user is not None:
                    tap.ok(remove_user(), "the test user is removed")
                if ctx.pub and not os.environ.get("PYSTACK_CAPTURE_KEEP"):
                    shutil.rmtree(ctx.pub, ignore_errors=True)
    except Watchdog as e:
        tap.ok(False, "the test finished within %ds" % limit, [str(e)])
    except Interrupted as e:
        interrupted = e.signum
    finally:
        alarm.cancel()
        for s, h in old.items():
            signal.signal(s, h)
    with CoreLock():    # another test may have its own pattern in place
        cp = corepattern.read_core_pattern()
    tap.ok(corepattern.MARKER not in cp, "core_pattern restored (%r)" % cp)
    if interrupted:
        tap.diag("interrupted by signal %d: everything restored" % interrupted)
        sys.stdout.flush()
        os.kill(os.getpid(), interrupted)
    tap.diag("%d tests, %d failed, %d skipped in %.0fs"
             % (tap.n, tap.failed, tap.skipped, time.time() - t_all))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
