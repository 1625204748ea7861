#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: pystack-coredump, run as root by the kernel, against hostile
processes and a hostile file system.

Run as root from the build directory (after `make`):

    /usr/bin/python3 ../tests/integration/test_hardening.py

Environment:
  PYSTACK_COREDUMP   handler under test
  PYSTACKCTL, PYSTACKD, PYSTACK   the other programs (defaults for all four:
                     harness/programs.py)
  PYSTACK_TEST_ONLY  regular expression over the case names (files, races,
                     notify, config, pidfd, setuid, namespace, names); the
                     others are not run
  PYSTACK_CAPTURE_KEEP=1  keep the scratch directory /tmp/pystackd-incoming.*
  PYSTACK_HARDENING_TIMEOUT  the whole run's limit in seconds (default 900)

Everything happens below one 0711 scratch directory
/tmp/pystackd-incoming.XXXXXXXX, under the core_pattern flock of
harness/corepattern.py, which restores core_pattern and core_pipe_limit on
every exit path; fs.suid_dumpable (the setuid case), the users created
here (harness/users.py), the tmpfs and namespaces are restored or removed on
every exit path too (hardening_fixture.py).  Handler runs "by hand" get a pidfd of a live
process and a fake core on stdin; kernel runs crash real processes.

Cases
  files      a symbolic link, a hard link or a FIFO planted at every path
             the handler writes or reads (the storage directory, cores/,
             pystack.db and its -wal/-shm, previous-core-pattern); storage
             directories owned by a user or writable by others, or below a
             directory that is: nothing outside is touched, nothing blocks
  races      the same objects swapped in and out (renameat2 RENAME_EXCHANGE)
             by a racing thread while the handler runs again and again
  notify     <RuntimeDirectory>/notify: a link to another socket, a FIFO, a
             runtime directory owned by a user
  config     a configuration refused when it, or a directory above it, is a
             user's or writable by others, a link or a FIFO; the defaults
             used (in a private mount namespace with a tmpfs on /var/lib, so
             the default storage directory is not the host's)
  pidfd      %F of one process and %P of another: the /proc data refused;
             uid/gid from the kernel's arguments; no %F: only a process
             being dumped is read
  setuid     a set-uid root program run by a user crashes (suid_dumpable=2):
             core 0600 root, record dumpable=2; the user cannot see the
             crash through pystackd/pystackctl
  namespace  Python in its own user, mount and pid namespaces, its
             executable on a tmpfs that exists only there: strace of the
             handler shows nothing inside the process's root is opened,
             followed or executed; a previous handler path that the container
             shadows is run from the host; container=1
  names      executables named with spaces, a newline, ") R 1 2", escape
             sequences, C1 controls, bytes that are not UTF-8, 255 bytes;
             comm set to "--config=/tmp/e", "--help"; 5 MiB of arguments and
             a 4 MiB environment: stored exactly (or cut at the handler's
             256 KiB limit), printed by pystackctl list/info without control
             characters, the handler's peak RSS bounded
"""
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import stat
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
from harness import programs  # noqa: E402
from harness.corepattern import CoreLock  # noqa: E402
from harness.tap import TAP, Watchdog, run_case, watchdog  # noqa: E402
from test_capture import Case as _Case, crash, wait_ready, \
    SYSTEM_PYTHON  # noqa: E402


class Case(_Case):
    """test_capture's case, reading comm/exe that are not UTF-8 too."""

    def rows(self):
        return rows_of(self.db)

SIGSEGV = signal.SIGSEGV
HAND_TIMEOUT = 20          # one handler run by hand
BOUND = 10                 # what "finishes in bounded time" means here, s
PROC_MAX_CMDLINE = 256 << 10
RSS_LIMIT_KIB = 64 << 10



def rows_of(db, sql="SELECT * FROM crashes ORDER BY id"):
    # never open a planted FIFO or write through a planted link ourselves
    if not hf.store_is_plain(db):
        return []
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=20)
    try:
        con.text_factory = hf.text_factory
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql)]
    finally:
        con.close()


class Dir(object):
    """A by-hand case: config c (safe), storage s, runtime r, and a
    directory o "outside" the storage that must not change."""

    def __init__(self, fx, name, conf="", processes="all"):
        self.dir = fx.mkdir(name)
        self.conf = os.path.join(self.dir, "c")
        self.storage = os.path.join(self.dir, "s")
        self.runtime = os.path.join(self.dir, "r")
        self.outside = os.path.join(self.dir, "o")
        self.db = os.path.join(self.storage, "pystack.db")
        os.mkdir(self.outside, 0o700)
        with open(os.path.join(self.outside, "victim"), "wb") as fh:
            fh.write(b"")            # an empty file: SQLite would adopt it
        with open(os.path.join(self.outside, "victim.txt"), "wb") as fh:
            fh.write(b"precious\n")
        os.mkdir(os.path.join(self.outside, "dir"), 0o700)
        self.write_conf(conf, processes)

    def write_conf(self, conf="", processes="all"):
        with open(self.conf, "w") as fh:
            fh.write("[Storage]\nDirectory=%s\n%s\n[Capture]\nProcesses=%s\n"
                     "RateLimitBurst=0\n[Daemon]\nRuntimeDirectory=%s\n"
                     % (self.storage, conf, processes, self.runtime))
        os.chmod(self.conf, 0o600)

    def rows(self):
        try:
            return rows_of(self.db)
        except sqlite3.Error:
            return []


def bounded(run):
    return not run.timed_out and run.seconds < BOUND


# --------------------------------------------------------------------------
# files: planted objects at every path

def plant(kind, path, target):
    """symlink | hardlink | fifo | file at path."""
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    if kind == "symlink":
        os.symlink(target, path)
    elif kind == "hardlink":
        os.link(target, path)
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "file":
        with open(path, "w") as fh:
            fh.write("not a directory\n")
        os.chmod(path, 0o600)


def case_files(tap, fx, users):
    user = users.create("f")
    # (label, setup(d) -> None, expect: "refused" | "error-row" | "row")
    scenarios = []

    def add(label, fn, expect):
        scenarios.append((label, fn, expect))

    add("storage dir is a symlink to a root directory elsewhere",
        lambda d: plant("symlink", d.storage, os.path.join(d.outside, "dir")),
        "refused")
    add("storage dir is a FIFO", lambda d: plant("fifo", d.storage, None),
        "refused")
    add("storage dir is a file", lambda d: plant("file", d.storage, None),
        "refused")

    def user_owned(d):
        os.mkdir(d.storage, 0o700)
        os.chown(d.storage, user.pw_uid, user.pw_gid)
    add("storage dir owned by a user", user_owned, "refused")

    def world_writable(d):
        os.mkdir(d.storage)
        os.chmod(d.storage, 0o777)
    add("storage dir writable by others (0777)", world_writable, "refused")

    def parent_user(d):
        sub = os.path.join(d.dir, "u")
        os.mkdir(sub, 0o755)
        os.chown(sub, user.pw_uid, user.pw_gid)
        d.storage = os.path.join(sub, "s")
        d.db = os.path.join(d.storage, "pystack.db")
        d.write_conf()
    add("storage dir below a directory owned by a user", parent_user,
        "refused")

    def parent_ww(d):
        sub = os.path.join(d.dir, "w")
        os.mkdir(sub)
        os.chmod(sub, 0o777)
        d.storage = os.path.join(sub, "s")
        d.db = os.path.join(d.storage, "pystack.db")
        d.write_conf()
    add("storage dir below a directory writable by others (0777, not "
        "sticky)", parent_ww, "refused")

    def parent_link(d):
        os.symlink(d.dir, os.path.join(d.dir, "l"))
        d.write_conf()
        with open(d.conf, "w") as fh:
            fh.write("[Storage]\nDirectory=%s\n[Capture]\nProcesses=all\n"
                     "[Daemon]\nRuntimeDirectory=%s\n"
                     % (os.path.join(d.dir, "l", "s"), d.runtime))
    add("storage path through a symbolic link", parent_link, "refused")

    def mk_storage(d):
        os.mkdir(d.storage, 0o700)

    for kind in ("symlink", "fifo", "file"):
        add("cores/ is a %s" % kind, lambda d, k=kind: (
            mk_storage(d), plant(k, os.path.join(d.storage, "cores"),
                                 os.path.join(d.outside, "dir"))),
            "error-row")
    for name in ("pystack.db", "pystack.db-wal", "pystack.db-shm"):
        for kind, target in (("symlink", "victim"), ("hardlink", "victim"),
                             ("fifo", None)):
            def setup(d, name=name, kind=kind, target=target):
                if name != "pystack.db":
                    r = hf.run_handler(d.conf, fx_sleeper.pid,
                                       fx_sleeper.pidfd)
                    if r.rc != 0:
                        raise RuntimeError("priming the store failed: %s"
                                           % r.describe())
                else:
                    mk_storage(d)
                plant(kind, os.path.join(d.storage, name),
                      os.path.join(d.outside, target) if target else None)
            add("%s is a %s" % (name, kind), setup, "refused")

    with hf.Sleeper() as fx_sleeper:
        for i, (label, setup, expect) in enumerate(scenarios):
            d = Dir(fx, "f%d" % i)
            try:
                setup(d)
            except Exception:
                tap.ok(False, "files: %s: set up" % label,
                       traceback.format_exc().splitlines())
                continue
            before = hf.snapshot(d.outside)
            nrows = len(d.rows())
            r = hf.run_handler(d.conf, fx_sleeper.pid, fx_sleeper.pidfd,
                               timeout=HAND_TIMEOUT)
            diag = r.describe()
            diag += hf.diff_snapshots(before, hf.snapshot(d.outside))
            rows = d.rows()
            ok = bounded(r) and not hf.diff_snapshots(
                before, hf.snapshot(d.outside))
            if expect == "refused":
                ok = ok and r.rc == 1 and len(rows) == nrows
                what = "refused (exit 1, no row)"
            elif expect == "error-row":
                ok = ok and r.rc == 0 and len(rows) == nrows + 1 and \
                    rows[-1]["core_state"] == "error" and \
                    not rows[-1]["core_path"]
                what = "recorded with core_state error, no core"
                diag += ["rows: %r" % [(x["core_state"], x["capture_note"])
                                       for x in rows]]
            tap.ok(ok, "files: %s: %s, nothing outside touched, done in "
                   "%.2fs" % (label, what, r.seconds), diag)

    # previous-core-pattern: a non-Python process is forwarded to it
    def prev_setup(d, kind):
        os.mkdir(d.storage, 0o700)
        evil = os.path.join(d.outside, "evil.sh")
        with open(evil, "w") as fh:
            fh.write("#!/bin/sh\necho ran > %s\ncat > /dev/null\n"
                     % os.path.join(d.dir, "ran"))
        os.chmod(evil, 0o700)
        pattern = os.path.join(d.outside, "pattern")
        with open(pattern, "w") as fh:
            fh.write("|%s %%p\n" % evil)
        os.chmod(pattern, 0o600)
        dst = os.path.join(d.storage, "previous-core-pattern")
        if kind == "file":
            shutil.copy(pattern, dst)
            os.chmod(dst, 0o600)
        else:
            plant(kind, dst, pattern)

    with hf.Sleeper(["/usr/bin/sleep", "600"]) as sl:
        for kind, want_run in (("file", True), ("symlink", False),
                               ("hardlink", False), ("fifo", False)):
            d = Dir(fx, "fp-%s" % kind, processes="python")
            prev_setup(d, kind)
            before = hf.snapshot(d.outside)
            r = hf.run_handler(d.conf, sl.pid, sl.pidfd, comm="sleep",
                               timeout=HAND_TIMEOUT)
            ran = os.path.exists(os.path.join(d.dir, "ran"))
            diag = r.describe() + hf.diff_snapshots(before,
                                                    hf.snapshot(d.outside))
            tap.ok(bounded(r) and ran == want_run and
                   not hf.diff_snapshots(before, hf.snapshot(d.outside)),
                   "files: previous-core-pattern is a %s: the previous "
                   "handler %s, done in %.2fs" % (
                       kind, "runs (control)" if want_run else
                       "is not run", r.seconds),
                   diag + ["previous handler ran: %r" % ran])


# --------------------------------------------------------------------------
# races

_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def exchange(a, b):
    if _libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b),
                       RENAME_EXCHANGE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)


class Racer(threading.Thread):
    """Swaps `path` with each of `alternatives` and back, as fast as it
    can, until stopped."""

    def __init__(self, path, alternatives):
        threading.Thread.__init__(self)
        self.daemon = True
        self.path = path
        self.alternatives = alternatives
        self.stop = threading.Event()
        self.swaps = 0
        self.errors = []

    def run(self):
        while not self.stop.is_set():
            for alt in self.alternatives:
                try:
                    exchange(self.path, alt)
                    self.swaps += 1
                    time.sleep(0.0002)
                    exchange(self.path, alt)
                    self.swaps += 1
                except OSError as e:
                    if len(self.errors) < 5:
                        self.errors.append(str(e))


def case_races(tap, fx, runs=40):
    scenarios = []

    def storage_alts(d):
        os.mkdir(d.storage, 0o700)
        hf.run_handler(d.conf, S.pid, S.pidfd)
        a1 = d.storage + ".l"
        os.symlink(os.path.join(d.outside, "dir"), a1)
        a2 = d.storage + ".f"
        os.mkfifo(a2)
        return d.storage, [a1, a2]

    def cores_alts(d):
        storage_alts_prime(d)
        p = os.path.join(d.storage, "cores")
        a1 = os.path.join(d.storage, "cores.l")
        os.symlink(os.path.join(d.outside, "dir"), a1)
        a2 = os.path.join(d.storage, "cores.f")
        os.mkfifo(a2)
        return p, [a1, a2]

    def storage_alts_prime(d):
        os.mkdir(d.storage, 0o700)
        r = hf.run_handler(d.conf, S.pid, S.pidfd)
        if r.rc != 0:
            raise RuntimeError("priming: %s" % r.describe())

    def db_alts(name):
        def fn(d):
            storage_alts_prime(d)
            p = os.path.join(d.storage, name)
            if not os.path.exists(p):
                with open(p, "wb"):
                    pass
                os.chmod(p, 0o600)
            a1 = os.path.join(d.storage, "x.l")
            os.symlink(os.path.join(d.outside, "victim"), a1)
            a2 = os.path.join(d.storage, "x.h")
            os.link(os.path.join(d.outside, "victim"), a2)
            a3 = os.path.join(d.storage, "x.f")
            os.mkfifo(a3)
            return p, [a1, a2, a3]
        return fn

    def prev_alts(d):
        storage_alts_prime(d)
        evil = os.path.join(d.outside, "evil.sh")
        with open(evil, "w") as fh:
            fh.write("#!/bin/sh\necho ran >> %s\ncat > /dev/null\n"
                     % os.path.join(d.dir, "ran"))
        os.chmod(evil, 0o700)
        pattern = os.path.join(d.outside, "pattern")
        with open(pattern, "w") as fh:
            fh.write("|%s %%p\n" % evil)
        p = os.path.join(d.storage, "previous-core-pattern")
        with open(p, "w") as fh:
            fh.write("|/bin/true\n")
        os.chmod(p, 0o600)
        a1 = os.path.join(d.storage, "x.l")
        os.symlink(pattern, a1)
        a2 = os.path.join(d.storage, "x.h")
        os.link(pattern, a2)
        a3 = os.path.join(d.storage, "x.f")
        os.mkfifo(a3)
        return p, [a1, a2, a3]

    scenarios = [("the storage directory", storage_alts, "all"),
                 ("cores/", cores_alts, "all"),
                 ("pystack.db", db_alts("pystack.db"), "all"),
                 ("pystack.db-wal", db_alts("pystack.db-wal"), "all"),
                 ("pystack.db-shm", db_alts("pystack.db-shm"), "all"),
                 ("previous-core-pattern", prev_alts, "python")]
    with hf.Sleeper() as S, hf.Sleeper(["/usr/bin/sleep", "600"]) as SL:
        for i, (label, setup, procs) in enumerate(scenarios):
            d = Dir(fx, "r%d" % i, processes=procs)
            try:
                path, alts = setup(d)
            except Exception:
                tap.ok(False, "races: %s: set up" % label,
                       traceback.format_exc().splitlines())
                continue
            before = hf.snapshot(d.outside)
            racer = Racer(path, alts)
            racer.start()
            results = []
            try:
                for n in range(runs):
                    if procs == "python":
                        r = hf.run_handler(d.conf, SL.pid, SL.pidfd,
                                           comm="sleep",
                                           timeout=HAND_TIMEOUT)
                    else:
                        r = hf.run_handler(d.conf, S.pid, S.pidfd,
                                           timeout=HAND_TIMEOUT)
                    results.append(r)
                    if r.timed_out:
                        break
            finally:
                racer.stop.set()
                racer.join(10)
            diag = hf.diff_snapshots(before, hf.snapshot(d.outside))
            slow = [r for r in results if not bounded(r)]
            for r in slow[:3]:
                diag += r.describe()
            ran = os.path.exists(os.path.join(d.dir, "ran"))
            if ran:
                diag.append("the planted previous handler ran")
            codes = {}
            for r in results:
                codes[r.rc] = codes.get(r.rc, 0) + 1
            # SQLite opens the store's files through the checked directory's
            # descriptor (store_vfs.c): no swap is followed, even by root
            report = tap.ok
            report(not diag and racer.swaps > 0,
                   "races: %s swapped with a symlink/hard link/FIFO %d "
                   "times during %d handler runs (exit codes %r): nothing "
                   "outside touched, every run done within %ds (slowest "
                   "%.2fs)" % (label, racer.swaps, len(results), codes,
                               BOUND, max(r.seconds for r in results)),
                   diag + racer.errors)
            # the store is intact (once the planted objects are gone)
            for alt in alts:
                if os.path.lexists(alt):
                    os.unlink(alt)
            if hf.store_is_plain(d.db):
                try:
                    con = sqlite3.connect(d.db, timeout=20)
                    res = [x[0] for x in con.execute("PRAGMA integrity_check")]
                    con.close()
                except sqlite3.Error as e:
                    res = [str(e)]
                tap.ok(res == ["ok"], "races: %s: the store passes "
                       "integrity_check afterwards" % label, res[:5])


USER_RACER = r'''
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
a, b, until = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2]), float(sys.argv[3])
n = 0
while time.time() < until:
    if libc.renameat2(-100, a, -100, b, 2) == 0:
        n += 1
print(n)
'''


def case_user_race(tap, fx, users, runs=40):
    """The storage directory below a directory of a user, who swaps it with
    a symbolic link to a root directory elsewhere as fast as they can."""
    user = users.create("r")
    d = Dir(fx, "ur")
    os.chmod(d.dir, 0o711)
    home = os.path.join(d.dir, "home")
    os.mkdir(home, 0o755)
    d.storage = os.path.join(home, "s")
    d.db = os.path.join(d.storage, "pystack.db")
    d.write_conf()
    os.mkdir(d.storage, 0o700)             # root's, as the admin made it
    os.symlink(os.path.join(d.outside, "dir"), os.path.join(home, "l"))
    os.lchown(os.path.join(home, "l"), user.pw_uid, user.pw_gid)
    os.chown(home, user.pw_uid, user.pw_gid)
    before = hf.snapshot(d.outside)
    with hf.Sleeper() as S:
        racer = subprocess.Popen(hf.as_user(user) + [
            sys.executable, "-c", USER_RACER, d.storage,
            os.path.join(home, "l"), str(time.time() + 600)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
        fx.children.add(racer)
        results = []
        try:
            for n in range(runs):
                results.append(hf.run_handler(d.conf, S.pid, S.pidfd,
                                              timeout=HAND_TIMEOUT))
        finally:
            racer.kill()
            out, err = racer.communicate()
            fx.children.discard(racer)
    diag = hf.diff_snapshots(before, hf.snapshot(d.outside))
    codes = sorted(set(r.rc for r in results))
    tap.ok(not diag and codes == [1] and all(bounded(r) for r in results),
           "races: a user swaps the storage directory (below their own "
           "directory) with a link to a root directory elsewhere during %d "
           "handler runs: every run refuses the path, nothing outside "
           "touched" % len(results),
           diag + ["exit codes %r" % codes, "racer: %r %r" % (out[-200:],
                                                               err[-300:])]
           + results[0].describe())


# --------------------------------------------------------------------------
# notify

def bind_dgram(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.setblocking(False)
    return s


def drain(s):
    """The datagrams waiting on s; one that carried a descriptor (the raw core the handler hands
    to pystackd) is marked " +fd", and the descriptor is checked to be a regular file, closed."""
    got = []
    while True:
        try:
            msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(4))
        except (BlockingIOError, OSError):
            return got
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS and len(data) >= 4:
                fd = int.from_bytes(data[:4], sys.byteorder)
                regular = stat.S_ISREG(os.fstat(fd).st_mode)
                os.close(fd)
                msg += b" +fd" if regular else b" +fd(not a file)"
        got.append(msg)


def case_notify(tap, fx, users):
    user = users.create("n")
    with hf.Sleeper() as S:
        # control: a root socket in a root 0755 directory
        scenarios = []

        def control(d):
            os.mkdir(d.runtime, 0o755)
            return bind_dgram(os.path.join(d.runtime, "notify")), True

        def link(d):
            os.mkdir(d.runtime, 0o755)
            other = bind_dgram(os.path.join(d.outside, "sock"))
            os.symlink(os.path.join(d.outside, "sock"),
                       os.path.join(d.runtime, "notify"))
            return other, False

        def fifo(d):
            os.mkdir(d.runtime, 0o755)
            os.mkfifo(os.path.join(d.runtime, "notify"))
            return None, False

        def userdir(d):
            os.mkdir(d.runtime, 0o755)
            s = bind_dgram(os.path.join(d.runtime, "notify"))
            os.chown(d.runtime, user.pw_uid, user.pw_gid)
            return s, False

        for label, fn in (("a root socket in a root directory (control)",
                           control),
                          ("a symlink to another program's socket", link),
                          ("a FIFO", fifo),
                          ("a root socket in a directory owned by a user",
                           userdir)):
            d = Dir(fx, "n-%s" % fn.__name__)
            sock, want = fn(d)
            r = hf.run_handler(d.conf, S.pid, S.pidfd, timeout=HAND_TIMEOUT)
            got = drain(sock) if sock else []
            if sock:
                sock.close()
            ok = bounded(r) and r.rc == 0 and len(d.rows()) == 1 and \
                (got == [b"CORE=1 +fd", b"CRASH=1"] if want else not got)
            tap.ok(ok, "notify: %s: %s, done in %.2fs" % (
                label, "pystackd gets the raw core, then is woken for the stored crash" if want else
                "nothing is sent through it", r.seconds),
                r.describe() + ["received: %r" % got])


# --------------------------------------------------------------------------
# config

NS_SCRIPT = r'''
mount -t tmpfs -o mode=0755,size=64m pystackd-hardening /var/lib || exit 97
"$@"
echo "handler-exit=$?" >&2
if [ -e /var/lib/pystack/pystack.db ]; then
    echo "default-rows=$(sqlite3 /var/lib/pystack/pystack.db 'SELECT count(*) FROM crashes')" >&2
else
    echo "default-rows=none" >&2
fi
'''


def case_config(tap, fx, users):
    user = users.create("c")
    ns = ["unshare", "--mount", "--propagation", "private", "--",
          "/bin/sh", "-c", NS_SCRIPT, "sh"]
    with hf.Sleeper() as S:
        def write(path, d, mode=0o600, owner=None):
            with open(path, "w") as fh:
                fh.write("[Storage]\nDirectory=%s\n[Capture]\nProcesses=all"
                         "\n[Daemon]\nRuntimeDirectory=%s\n"
                         % (d.evil, d.runtime))
            os.chmod(path, mode)
            if owner:
                os.chown(path, owner.pw_uid, owner.pw_gid)

        def control(d):
            write(d.conf, d)
            return d.conf

        def user_file(d):
            write(d.conf, d, 0o644, user)
            return d.conf

        def mode666(d):
            write(d.conf, d, 0o666)
            return d.conf

        def user_dir(d):
            sub = os.path.join(d.dir, "u")
            os.mkdir(sub, 0o755)
            write(os.path.join(sub, "c"), d)
            os.chown(sub, user.pw_uid, user.pw_gid)
            return os.path.join(sub, "c")

        def ww_dir(d):
            sub = os.path.join(d.dir, "w")
            os.mkdir(sub)
            os.chmod(sub, 0o777)
            write(os.path.join(sub, "c"), d)
            return os.path.join(sub, "c")

        def symlink(d):
            write(os.path.join(d.outside, "real"), d)
            os.symlink(os.path.join(d.outside, "real"), d.conf + "l")
            return d.conf + "l"

        def hardlink(d):
            owned = os.path.join(d.dir, "owned")
            write(owned, d, 0o644, user)
            os.link(owned, d.conf + "h")
            return d.conf + "h"

        def fifo(d):
            os.mkfifo(d.conf + "f", 0o600)
            return d.conf + "f"

        for label, fn, refused in (
                ("root's 0600 file in root's directories (control)", control,
                 False),
                ("a file owned by a user", user_file, True),
                ("root's file writable by others (0666)", mode666, True),
                ("root's file in a directory owned by a user", user_dir,
                 True),
                ("root's file in a directory writable by others", ww_dir,
                 True),
                ("a symbolic link to root's file", symlink, True),
                ("a hard link to a user's file", hardlink, True),
                ("a FIFO", fifo, True)):
            d = Dir(fx, "c-%s" % fn.__name__)
            d.evil = os.path.join(d.dir, "evil")
            path = fn(d)
            r = hf.run_handler(path, S.pid, S.pidfd, timeout=HAND_TIMEOUT,
                               prefix=ns)
            err = r.err.decode("utf-8", "replace")
            m = re.search(r"handler-exit=(\d+)", err)
            hrc = int(m.group(1)) if m else None
            m = re.search(r"default-rows=(\S+)", err)
            drows = m.group(1) if m else None
            evil_rows = len(rows_of(os.path.join(d.evil, "pystack.db")))
            diag = r.describe() + ["evil dir exists: %r, rows there %d, "
                                   "rows in the default /var/lib/pystack: %r"
                                   % (os.path.exists(d.evil), evil_rows,
                                      drows)]
            if refused:
                logged = re.search(r"(?i)refused|must be owned|not a regular"
                                   r"|symbolic|too many levels", err)
                ok = bounded(r) and hrc == 0 and not os.path.exists(d.evil) \
                    and drows == "1" and logged is not None
                desc = "refused with a logged error, the defaults used"
            else:
                ok = bounded(r) and hrc == 0 and evil_rows == 1 and \
                    drows == "none"
                desc = "used"
            tap.ok(ok, "config: %s: %s" % (label, desc), diag)


# --------------------------------------------------------------------------
# pidfd

def case_pidfd(tap, fx):
    marker = "PIDFD-OTHER-%d" % os.getpid()
    with hf.Sleeper() as A, hf.Sleeper(
            ["/usr/bin/python3.11", "-c",
             "import time; time.sleep(600)", marker]) as B:
        # A's pidfd, B's pid
        d = Dir(fx, "p1")
        r = hf.run_handler(d.conf, B.pid, A.pidfd, comm="kernel-comm",
                           timeout=HAND_TIMEOUT)
        rows = d.rows()
        row = rows[0] if rows else {}
        blob = json.dumps(row)
        ok = bounded(r) and r.rc == 0 and len(rows) == 1 and \
            marker not in blob and row.get("comm") == "kernel-comm" and \
            row.get("exe") is None and row.get("cmdline") is None and \
            row.get("cwd") is None and row.get("thread_names") is None and \
            row.get("container") == 0 and row.get("pid") == B.pid
        tap.ok(ok, "pidfd: %%F of process A, %%P of process B: nothing of "
               "/proc/B is recorded (comm from %%e, exe/cmdline/cwd/threads "
               "NULL)", r.describe() + ["row: %s" % blob[:800]])
        # the same with Processes=python: not recognised as Python
        d = Dir(fx, "p2", processes="python")
        r = hf.run_handler(d.conf, B.pid, A.pidfd, comm="python3",
                           timeout=HAND_TIMEOUT)
        tap.ok(bounded(r) and r.rc == 0 and not d.rows(),
               "pidfd: mismatch with Processes=python: not captured "
               "(B's /proc/exe is not trusted to say it is Python)",
               r.describe() + ["rows: %r" % d.rows()])
        # no pidfd at all, a live process that is not being dumped
        d = Dir(fx, "p3")
        r = hf.run_handler(d.conf, B.pid, None, pidfd_arg="",
                           comm="kernel-comm", timeout=HAND_TIMEOUT)
        rows = d.rows()
        blob = json.dumps(rows[0]) if rows else ""
        tap.ok(bounded(r) and r.rc == 0 and len(rows) == 1 and
               marker not in blob and rows[0].get("exe") is None,
               "pidfd: no %F and a process that is not dumping core: its "
               "/proc is not read", r.describe() + ["row: %s" % blob[:600]])
        # uid/gid: the kernel's arguments, not /proc's
        d = Dir(fx, "p4")
        r = hf.run_handler(d.conf, A.pid, A.pidfd, uid=4242, gid=4343,
                           timeout=HAND_TIMEOUT)
        rows = d.rows()
        tap.ok(bounded(r) and r.rc == 0 and len(rows) == 1 and
               rows[0]["uid"] == 4242 and rows[0]["gid"] == 4343 and
               rows[0]["exe"] == "/usr/bin/python3.11",
               "pidfd: matching pidfd, %u=4242 %g=4343 while /proc says 0: "
               "the row has the kernel's uid and gid (and /proc's exe)",
               r.describe() + ["rows: %r" % [(x["uid"], x["gid"], x["exe"])
                                             for x in rows]])
        # a pidfd that died: A killed, its pid not reused yet
        d = Dir(fx, "p5")
        pid, pidfd = A.pid, os.dup(A.pidfd)
        A.close()
        r = hf.run_handler(d.conf, pid, pidfd, comm="kernel-comm",
                           timeout=HAND_TIMEOUT)
        os.close(pidfd)
        rows = d.rows()
        tap.ok(bounded(r) and r.rc == 0 and len(rows) == 1 and
               rows[0]["exe"] is None,
               "pidfd: the pidfd's process has exited: /proc/PID is not "
               "read", r.describe() + ["rows: %r" % rows])


# --------------------------------------------------------------------------
# setuid

SUID_C = r'''
#include <stdio.h>
#include <unistd.h>
int main(void) {
    volatile int *p = 0;
    /* prove we run set-uid: euid root, uid the user */
    printf("uid=%d euid=%d\n", (int)getuid(), (int)geteuid());
    fflush(stdout);
    *p = 42;
    return 0;
}
'''


def case_setuid(tap, fx, users):
    user = users.create("s")
    c = Case(fx, "suid", "[Capture]\nProcesses=all\nRateLimitBurst=0\n")
    os.chmod(c.dir, 0o711)
    bindir = os.path.join(c.dir, "bin")
    os.mkdir(bindir, 0o755)
    src = os.path.join(bindir, "crash.c")
    exe = os.path.join(bindir, "suidcrash")
    with open(src, "w") as fh:
        fh.write(SUID_C)
    r = subprocess.run(["gcc", "-O0", "-o", exe, src], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    if not tap.ok(r.returncode == 0, "setuid: the helper compiles",
                  [r.stdout.decode(errors="replace")]):
        return
    os.chown(exe, 0, 0)
    os.chmod(exe, 0o4755)
    c.install()
    with hf.SuidDumpable(2):
        p = subprocess.run(hf.as_user(user) + [exe], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60, cwd="/")
        rows, diag = c.wait(1, timeout=60)
    fx.reset_pattern()
    out = p.stdout.decode(errors="replace").strip()
    tap.ok(p.returncode == -SIGSEGV and
           out == "uid=%d euid=0" % user.pw_uid and len(rows) == 1,
           "setuid: a set-uid root program run by %s crashes and is "
           "recorded" % user.pw_name,
           diag + ["exit %r, stdout %r" % (p.returncode, out)])
    if not rows:
        return
    row = rows[0]
    d = []
    if row.get("dumpable") != 2:
        d.append("dumpable %r, expected 2 (suid_dumpable=2)"
                 % row.get("dumpable"))
    path = os.path.join(c.storage, row.get("core_path") or "-")
    try:
        st = os.lstat(path)
        if st.st_uid != 0 or stat.S_IMODE(st.st_mode) != 0o600:
            d.append("core %s: uid %d mode %o" % (path, st.st_uid,
                                                  stat.S_IMODE(st.st_mode)))
    except OSError as e:
        d.append("core: %s" % e)
    for p_ in (c.storage, c.cores):
        st = os.lstat(p_)
        if st.st_uid != 0 or stat.S_IMODE(st.st_mode) & 0o077:
            d.append("%s: uid %d mode %o" % (p_, st.st_uid,
                                             stat.S_IMODE(st.st_mode)))
    st = os.lstat(c.db)
    if st.st_uid != 0 or stat.S_IMODE(st.st_mode) & 0o077:
        d.append("pystack.db: uid %d mode %o" % (st.st_uid,
                                                stat.S_IMODE(st.st_mode)))
    # the user can neither open the core nor the store directly
    for target in (path, c.db):
        rr = subprocess.run(hf.as_user(user) + ["/bin/cat", target],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, timeout=20)
        if rr.returncode == 0:
            d.append("%s can read %s" % (user.pw_name, target))
    tap.ok(not d, "setuid: row dumpable=2 (uid %r = the real uid the kernel "
           "gave), core 0600 root in 0700 root directories, not readable "
           "by the user" % row.get("uid"), d)

    # through pystackd's query socket, the user sees only crashes of their
    # own processes that were dumpable
    runtime = os.path.join(c.dir, "r")
    with open(c.conf, "a") as fh:
        fh.write("Journal=no\n[Analysis]\nAnalyzer=%s\nWorkers=1\n"
                 % programs.daemon_analyzer())
    log = open(os.path.join(c.dir, "pystackd.log"), "ab")
    d_proc = subprocess.Popen([programs.pystackd(), "--config=%s" % c.conf],
                              stdin=subprocess.DEVNULL, stdout=log,
                              stderr=log, start_new_session=True)
    fx.children.add(d_proc)
    try:
        deadline = time.time() + 20
        while time.time() < deadline and not os.path.exists(
                os.path.join(runtime, "query")):
            time.sleep(0.05)
        os.chmod(c.conf, 0o644)
        rr = subprocess.run(hf.as_user(user) + [
            programs.pystackctl(), "--config=%s" % c.conf, "--no-pager",
            "--json", "list"], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
            cwd="/")
        try:
            seen = json.loads(rr.stdout.decode() or "[]")
        except ValueError:
            seen = None
        outdir = os.path.join(c.dir, "out")
        os.mkdir(outdir, 0o700)
        os.chown(outdir, user.pw_uid, user.pw_gid)
        rd = subprocess.run(hf.as_user(user) + [
            programs.pystackctl(), "--config=%s" % c.conf, "dump", "-o",
            os.path.join(outdir, "core")], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
            cwd="/")
        diag = ["pystackctl --json list as %s: exit %r, stdout %r, stderr %r"
                % (user.pw_name, rr.returncode, rr.stdout[:300],
                   rr.stderr[:300]),
                "pystackctl dump as the user: exit %r, stderr %r"
                % (rd.returncode, rd.stderr[:300])]
        leaked = seen is None or any(x.get("pid") == row["pid"] for x in seen)
        dumped = os.path.exists(os.path.join(outdir, "core"))
        diag.append("the user got the core: %r" % dumped)
        ok = os.path.exists(os.path.join(runtime, "query")) and not leaked \
            and rd.returncode != 0 and not dumped
        tap.ok(ok, "setuid: %s does not see the set-uid crash (dumpable=2)"
               " through pystackd: list omits it, dump refuses" % user.pw_name, diag)
    finally:
        d_proc.terminate()
        try:
            d_proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            d_proc.kill()
            d_proc.wait()
        fx.children.discard(d_proc)
        log.close()


# --------------------------------------------------------------------------
# namespace

NS_CHILD = r'''
set -e
mount -t tmpfs -o mode=0755 pystackd-ns "$NSDIR"
cp /usr/bin/python3.11 "$NSDIR/python3"
cp /usr/bin/sleep "$NSDIR/sleep"
# the previous handler's directory, shadowed inside
mount -t tmpfs -o mode=0755 pystackd-ns2 "$PREVDIR"
printf '#!/bin/sh\necho container >> %s\ncat >/dev/null\n' "$MARK" > "$PREVDIR/prev.sh"
chmod 755 "$PREVDIR/prev.sh"
echo ready > "$READY"
read go
"$NSDIR/python3" -c 'import os, signal; os.kill(os.getpid(), signal.SIGSEGV)' || true
"$NSDIR/sleep" 600 &
sleep 0.5
kill -SEGV $! || true
wait || true
echo done > "$DONE"
'''


def case_namespace(tap, fx):
    c = Case(fx, "ns", "[Capture]\nProcesses=python\nRateLimitBurst=0\n")
    nsdir = os.path.join(c.dir, "nsonly")
    prevdir = os.path.join(c.dir, "prev")
    os.mkdir(nsdir, 0o755)
    os.mkdir(prevdir, 0o755)
    mark = os.path.join(c.dir, "prev-ran")
    with open(os.path.join(prevdir, "prev.sh"), "w") as fh:
        fh.write("#!/bin/sh\necho host >> %s\ncat > /dev/null\n" % mark)
    os.chmod(os.path.join(prevdir, "prev.sh"), 0o755)
    os.makedirs(c.storage, 0o700)
    with open(os.path.join(c.storage, "previous-core-pattern"), "w") as fh:
        fh.write("|%s %%p\n" % os.path.join(prevdir, "prev.sh"))
    os.chmod(os.path.join(c.storage, "previous-core-pattern"), 0o600)
    trace = os.path.join(c.dir, "trace")
    wrapper = hf.strace_wrapper(os.path.join(c.dir, "st"), trace)
    c.install(handler=wrapper)
    ready = os.path.join(c.dir, "ready")
    done = os.path.join(c.dir, "done")
    env = dict(os.environ, NSDIR=nsdir, PREVDIR=prevdir, MARK=mark,
               READY=ready, DONE=done)
    p = subprocess.Popen(["unshare", "--user", "--map-root-user", "--mount",
                          "--pid", "--fork", "--propagation", "private",
                          "--", "/bin/sh", "-c", NS_CHILD],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    fx.children.add(p)
    deadline = time.time() + 30
    while not os.path.exists(ready) and time.time() < deadline and \
            p.poll() is None:
        time.sleep(0.05)
    if not tap.ok(os.path.exists(ready), "namespace: the container is set "
                  "up (user+mount+pid namespaces, tmpfs only inside)",
                  [p.stdout.read().decode(errors="replace")
                   if p.poll() is not None else "timeout"]):
        return
    p.stdin.write(b"go\n")
    p.stdin.flush()
    try:
        out, _ = p.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    fx.children.discard(p)
    rows, diag = c.wait(1, timeout=60)
    corepattern.wait_handlers_gone(trace, 30)
    fx.reset_pattern()
    row = rows[0] if rows else {}
    tap.ok(len(rows) == 1 and row.get("container") == 1 and
           (row.get("exe") or "").endswith("/python3") and
           row.get("core_state") == "present",
           "namespace: the container's Python crash is recorded, "
           "container=1, exe %r (a string, not followed)" % row.get("exe"),
           diag + ["rows: %r" % [(r.get("container"), r.get("exe"),
                                  r.get("core_state")) for r in rows],
                   "container output: %s" % out.decode(errors="replace")])
    # strace: no path inside the container's root
    try:
        with open(trace, errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError as e:
        lines = []
        diag = ["no trace: %s" % e]
    bad = []
    for line in lines:
        m = re.match(r"^\d+\s+(\w+)\((.*)$", line)
        if not m:
            continue
        call, args = m.groups()
        if call.startswith("readlink"):
            # readlinkat(fd, "exe", "<the target, what we read>", n)
            args = args.split(", ")[0:2]
            args = ", ".join(args)
        if nsdir in args or re.search(r"/proc/\d+/(root|cwd)(/|\")", args) \
                or re.search(r"/proc/\d+/exe\"", args) and \
                not call.startswith("readlink"):
            bad.append(line[:300])
    opened = [l for l in lines if re.match(r"^\d+\s+(open|openat|execve)", l)]
    tap.ok(lines and not bad,
           "namespace: strace -f -e trace=%%file,execve of the handler (%d "
           "calls): nothing inside the crashed process's root is opened, "
           "followed or executed" % len(lines),
           bad[:20] + ["(opened: %s)" % " | ".join(x[:120] for x in
                                                   opened[:40])])
    try:
        with open(mark) as fh:
            ran = fh.read().split()
    except OSError:
        ran = []
    tap.ok(ran == ["host"], "namespace: a non-Python crash in the container "
           "is forwarded to the previous handler of the host, not the "
           "container's file at the same path (ran: %r)" % ran,
           ["container output: %s" % out.decode(errors="replace")])


# --------------------------------------------------------------------------
# names

NAMES_CHILD = r'''
import ctypes, json, os, sys, time
name = bytes.fromhex(sys.argv[2])
if name:
    ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)
def rd(p):
    with open(p, "rb") as fh:
        return fh.read()
info = {"pid": os.getpid(), "comm_hex": rd("/proc/self/comm").rstrip(b"\n").hex(),
        "exe_hex": os.fsencode(os.readlink("/proc/self/exe")).hex(),
        "cmdline_hex": rd("/proc/self/cmdline").hex(),
        "environ_len": len(rd("/proc/self/environ"))}
with open(sys.argv[1] + ".tmp", "w") as fh:
    json.dump(info, fh)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
sys.stdout.write("ready\n")
sys.stdout.flush()
time.sleep(600)
'''


def unesc(s):
    return s.encode("utf-8", "surrogateescape") if s is not None else None


def case_names(tap, fx):
    c = Case(fx, "names", "[Capture]\nProcesses=python\nRateLimitBurst=0\n"
             "StoreEnvironment=yes\n")
    os.chmod(c.dir, 0o700)
    xdir = os.path.join(c.dir, "x")
    os.mkdir(xdir, 0o755)
    script = os.path.join(c.dir, "child.py")
    with open(script, "w") as fh:
        fh.write(NAMES_CHILD)
    rss_log = os.path.join(c.dir, "rss")
    hlog = os.path.join(c.dir, "handler.log")
    c.install(handler=hf.rss_wrapper(os.path.join(c.dir, "t"), rss_log, hlog))
    big_arg = "A" * ((128 << 10) - 1)
    exes = [
        ("spaces", b"python3 two words", b"", [], {}),
        ("newline", b"python3\nnext line", b"", [], {}),
        ("stat-like", b"python3) R 1 2", b"", [], {}),
        ("escapes", b"python3\x1b[31mred\x1b]0;title\x07", b"", [], {}),
        ("C1 CSI", b"python3\xc2\x9b31m", b"", [], {}),
        ("not UTF-8", b"python3\xff\xfe\x80", b"", [], {}),
        ("255 bytes", b"python3" + b"y" * 248, b"", [], {}),
        ("comm --config", b"python3", b"--config=/tmp/e", [], {}),
        ("comm --help", b"python3", b"--help", [], {}),
        ("comm newline", b"python3", b"a\nb\x1b[2J", [], {}),
        ("5 MiB of arguments", b"python3", b"",
         [big_arg] * 40, {}),
        ("4 MiB environment", b"python3", b"", [],
         dict(("PYSD_%03d" % i, "E" * ((128 << 10) - 16)) for i in range(32))),
    ]
    results = []
    for label, name, comm, args, env in exes:
        exe = os.path.join(xdir, os.fsdecode(name))
        if not os.path.exists(exe):
            shutil.copy(SYSTEM_PYTHON, exe)
            os.chmod(exe, 0o755)
        e = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
        e.update(env)
        expect = os.path.join(c.dir, "expect.%d.json" % len(results))

        def pre():
            import resource
            resource.setrlimit(resource.RLIMIT_STACK, (64 << 20, 64 << 20))
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                                      resource.RLIM_INFINITY))
        try:
            p = subprocess.Popen([exe, "-E", "-s", "-B", script, expect,
                                  comm.hex()] + args,
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=e,
                                 preexec_fn=pre, start_new_session=True)
        except OSError as ex:
            tap.ok(False, "names: %s: start" % label, [str(ex)])
            continue
        fx.children.add(p)
        if not wait_ready(p):
            p.kill()
            _, err = p.communicate()
            fx.children.discard(p)
            tap.ok(False, "names: %s: the child is ready" % label,
                   [err.decode(errors="replace")[-500:]])
            continue
        with open(expect) as fh:
            exp = json.load(fh)
        rc, dt = crash(fx, p)
        p.stderr.close()
        rows, diag = c.wait(len(results) + 1)
        row = rows[-1] if rows and rows[-1]["pid"] == exp["pid"] else None
        results.append((label, exp, row))
        d = list(diag)
        if rc != -SIGSEGV:
            d.append("returncode %r" % rc)
        if row is None:
            d.append("no row for pid %d" % exp["pid"])
            tap.ok(False, "names: %s: recorded" % label, d)
            continue
        want_comm = bytes.fromhex(exp["comm_hex"])
        if unesc(row["comm"]) != want_comm:
            d.append("comm: expected %r, got %r" % (want_comm, row["comm"]))
        want_exe = bytes.fromhex(exp["exe_hex"])
        if unesc(row["exe"]) != want_exe:
            d.append("exe: expected %r, got %r" % (want_exe, row["exe"]))
        cmd = bytes.fromhex(exp["cmdline_hex"])
        try:
            got = [unesc(s) for s in json.loads(row["cmdline"])]
        except (ValueError, TypeError) as ex:
            got = None
            d.append("cmdline not JSON: %s" % ex)
        if got is not None:
            if len(cmd) <= PROC_MAX_CMDLINE:
                want = cmd.split(b"\0")[:-1]
                if got != want:
                    d.append("cmdline differs: %d args stored, %d expected"
                             % (len(got), len(want)))
            else:
                joined = b"\0".join(got)
                if joined != cmd[:len(joined)] or \
                        len(joined) < PROC_MAX_CMDLINE - 1 or \
                        len(joined) > PROC_MAX_CMDLINE:
                    d.append("cmdline of %d bytes: stored %d bytes, not the "
                             "first %d bytes" % (len(cmd), len(joined),
                                                 PROC_MAX_CMDLINE))
        if env:
            try:
                envs = [unesc(s) for s in json.loads(row["environ"] or "null")]
                total = sum(len(x) + 1 for x in envs)
                if total > PROC_MAX_CMDLINE + 1 or total < PROC_MAX_CMDLINE - 1:
                    d.append("environ: %d bytes stored of %d, expected the "
                             "256 KiB limit" % (total, exp["environ_len"]))
            except (ValueError, TypeError) as ex:
                d.append("environ not JSON: %s" % ex)
        core = row.get("core_state")
        if core != "present":
            d.append("core_state %r (%s)" % (core, row.get("capture_note")))
        size = len(cmd) if len(cmd) > PROC_MAX_CMDLINE else None
        tap.ok(not d, "names: %s: comm, exe and %s stored exactly%s" % (
            label, "the arguments" if not size else
            "the first 256 KiB of %d bytes of arguments" % size,
            " (environment cut at 256 KiB of %d bytes)" % exp["environ_len"]
            if env else ""), d)
    fx.reset_pattern()

    # the handler's memory
    try:
        with open(rss_log) as fh:
            rss = [int(x) for x in re.findall(r"^(\d+)$", fh.read(), re.M)]
    except OSError:
        rss = []
    tap.ok(rss and max(rss) < RSS_LIMIT_KIB,
           "names: the handler's peak RSS stays under %d MiB (max %s KiB over "
           "%d runs, including 5 MiB argv / 4 MiB environment)"
           % (RSS_LIMIT_KIB >> 10, max(rss) if rss else "?", len(rss)),
           ["rss: %r" % rss])

    # pystackctl prints them escaped
    ctl = programs.pystackctl()
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "TERM": "xterm"}
    for args in (["list"], ["list", "--no-legend"]):
        r = subprocess.run([ctl, "--config=%s" % c.conf, "--no-pager"] + args,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60, env=env)
        bad = hf.raw_controls(r.stdout) + hf.raw_controls(r.stderr)
        tap.ok(r.returncode == 0 and not bad and
               len(r.stdout.splitlines()) >= len(results),
               "names: pystackctl %s prints no raw control characters"
               % " ".join(args),
               bad[:10] + ["exit %r" % r.returncode])
    bad_info = []
    c1_only = []
    for label, exp, row in results:
        if not row:
            continue
        r = subprocess.run([ctl, "--config=%s" % c.conf, "--no-pager",
                            "info", "ID=%d" % row["id"]],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60, env=env)
        bad = hf.raw_controls(r.stdout) + hf.raw_controls(r.stderr)
        if r.returncode != 0:
            bad.append("exit %r: %r" % (r.returncode, r.stderr[:200]))
        if bad:
            if all(b.startswith("C1 ") for b in bad):
                c1_only.append("%s: %s" % (label, bad[0]))
            else:
                bad_info.append("%s: %s" % (label, "; ".join(bad[:3])))
        rj = subprocess.run([ctl, "--config=%s" % c.conf, "--no-pager",
                             "--json", "info", "ID=%d" % row["id"]],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=60, env=env)
        try:
            j = json.loads(rj.stdout.decode("utf-8"))
            if unesc(j.get("comm")) != unesc(row["comm"]) or \
                    unesc(j.get("exe")) != unesc(row["exe"]):
                bad_info.append("%s: --json info comm/exe %r %r differ from "
                                "the store" % (label, j.get("comm"),
                                               j.get("exe")))
        except ValueError as ex:
            bad_info.append("%s: --json info is not JSON: %s (%r)"
                            % (label, ex, rj.stdout[:200]))
    tap.ok(not bad_info, "names: pystackctl info (text and --json) of each "
           "crash: no raw C0 control characters, JSON round-trips comm/exe",
           bad_info)
    tap.ok(not c1_only, "names: pystackctl info prints no raw C1 control "
           "characters (U+0080..U+009F, e.g. U+009B CSI)", c1_only)


# --------------------------------------------------------------------------

def main():
    tap = TAP()
    only = os.environ.get("PYSTACK_TEST_ONLY")
    rx = re.compile(only) if only else None

    def want(name):
        return rx is None or rx.search(name)

    h = programs.coredump()
    if not os.access(h, os.X_OK):
        tap.ok(False, "handler %s is built" % h)
        return tap.done()
    if os.geteuid() != 0:
        tap.skip("not root")
        return tap.done()
    for tool in ("unshare", "strace", "setpriv", "useradd", "gcc", "sqlite3",
                 "zstd"):
        if not shutil.which(tool):
            tap.skip("%s is not installed" % tool)
            return tap.done()
    limit = int(os.environ.get("PYSTACK_HARDENING_TIMEOUT", "900"))
    alarm = watchdog(limit)
    t_all = time.time()
    cases = [("files", lambda fx, u: case_files(tap, fx, u)),
             ("races", lambda fx, u: case_races(tap, fx)),
             ("races", lambda fx, u: case_user_race(tap, fx, u)),
             ("notify", lambda fx, u: case_notify(tap, fx, u)),
             ("config", lambda fx, u: case_config(tap, fx, u)),
             ("pidfd", lambda fx, u: case_pidfd(tap, fx)),
             ("setuid", lambda fx, u: case_setuid(tap, fx, u)),
             ("namespace", lambda fx, u: case_namespace(tap, fx)),
             ("names", lambda fx, u: case_names(tap, fx))]
    try:
        with corepattern.PipeHandlerFixture(pipe_limit=64) as fx, \
                hf.TestUsers() as users:
            hf.repair_suid_dumpable()
            hf.install_signal_cleanup(fx, users)
            os.chmod(fx.root, 0o711)
            tap.diag("scratch %s, core_pattern %r, core_pipe_limit %s, "
                     "suid_dumpable %s: restored at the end"
                     % (fx.root, fx.original, fx.original_limit,
                        open(hf.SUID_DUMPABLE).read().strip()))
            for name, fn in cases:
                if not want(name):
                    continue
                run_case(tap, fx, name, lambda: fn(fx, users))
    except Watchdog as e:
        tap.ok(False, "the test finished within %ds" % limit, [str(e)])
    finally:
        alarm.cancel()
    # under the lock: another test may hold it and have its own pattern,
    # mounts, users and suid_dumpable in place meanwhile
    with CoreLock():
        cp = corepattern.read_core_pattern()
        users_left = [l.split(":")[0] for l in open("/etc/passwd")
                      if l.startswith(hf.USER_PREFIX)]
        sd = open(hf.SUID_DUMPABLE).read().strip()
        mounts = corepattern.mounts_below(corepattern.SCRATCH_PREFIX)
        saved = os.path.exists(hf.SUID_SAVED)
    tap.ok(corepattern.MARKER not in cp and not mounts
           and not users_left and not saved,
           "core_pattern (%r), suid_dumpable (%s) restored, no mounts and no "
           "test users left" % (cp, sd),
           ["users: %r, mounts: %r" % (users_left, mounts)])
    tap.diag("%d tests, %d failed, %d skipped in %.0fs"
             % (tap.n, tap.failed, tap.skipped, time.time() - t_all))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
