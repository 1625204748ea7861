# -*- coding: utf-8 -*-
"""Helpers for test_hardening.py and test_faults.py.

* SuidDumpable: fs.suid_dumpable changed and restored on every exit path
  (try/finally, atexit, SIGTERM/SIGINT/SIGHUP through the core_pattern
  fixture's handlers, and a saved copy in /run/lock that the next run
  restores when a run was SIGKILLed).  Use it only while holding the
  PipeHandlerFixture (its flock serialises every test that changes these).
* TestUsers: unprivileged users created with useradd and removed on every
  exit path; each carries the GECOS marker below, and users left by a
  killed run (same marker) are removed on entry.  A user of that name
  without the marker is never touched.
* run_handler(): the handler run by hand (as a person or a hostile caller
  would), with a pidfd it inherits, a bounded time, stderr captured.
* Wrappers installed in place of the handler: one that logs the handler's
  stderr (PYSTACK_COREDUMP_STDERR=1), one that measures its peak RSS
  (/usr/bin/time -f %M), one that runs it under strace.
* snapshot()/diff_snapshots(): everything below a directory (names, types,
  sizes, modes, owners, contents' hashes) to prove it was not touched.
* CtlGuard: a pystackd (for the unprivileged users' queries) stopped on
  every exit path.

Stdlib only, Python 3.
"""
import atexit
import hashlib
import os
import re
import signal
import stat
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import programs, users  # noqa: E402

SUID_DUMPABLE = "/proc/sys/fs/suid_dumpable"
SUID_SAVED = "/run/lock/pystackd-suid-dumpable.saved"
USER_GECOS = "pystackd hardening test user"
USER_PREFIX = "pysd-h"


def log(msg):
    sys.stderr.write("hardening_fixture: %s\n" % msg)
    sys.stderr.flush()


def _read(path):
    with open(path) as fh:
        return fh.read().strip()


def _write(path, value):
    with open(path, "w") as fh:
        fh.write(value + "\n")


# ---------------------------------------------------------------------------
# fs.suid_dumpable

def repair_suid_dumpable():
    """A run killed with SIGKILL left its saved value: put it back."""
    try:
        saved = _read(SUID_SAVED)
    except OSError:
        return
    if re.match(r"^[0-2]$", saved) and _read(SUID_DUMPABLE) != saved:
        log("fs.suid_dumpable was left at %s by a killed run; original %s"
            % (_read(SUID_DUMPABLE), saved))
        _write(SUID_DUMPABLE, saved)
    try:
        os.unlink(SUID_SAVED)
    except OSError:
        pass


ACTIVE = []     # SuidDumpable objects not yet restored


def restore_all():
    for g in list(ACTIVE):
        g.restore()


class SuidDumpable(object):
    def __init__(self, value):
        self.value = str(value)
        self.original = None

    def restore(self):
        if self.original is not None:
            try:
                _write(SUID_DUMPABLE, self.original)
                os.unlink(SUID_SAVED)
            except OSError as e:
                log("CANNOT RESTORE fs.suid_dumpable to %s: %s"
                    % (self.original, e))
            self.original = None
        if self in ACTIVE:
            ACTIVE.remove(self)

    def __enter__(self):
        repair_suid_dumpable()
        self.original = _read(SUID_DUMPABLE)
        with open(SUID_SAVED + ".tmp", "w") as fh:
            fh.write(self.original + "\n")
        os.rename(SUID_SAVED + ".tmp", SUID_SAVED)
        atexit.register(self.restore)
        ACTIVE.append(self)
        _write(SUID_DUMPABLE, self.value)
        return self

    def __exit__(self, *exc):
        self.restore()
        return False


# ---------------------------------------------------------------------------
# users (harness.users, with this file's names and marker)

class TestUsers(users.TestUsers):
    def __init__(self):
        users.TestUsers.__init__(self, USER_PREFIX, USER_GECOS)


def install_signal_cleanup(fx, users):
    """SIGTERM/SIGINT/SIGHUP: users and suid_dumpable first, then the
    core_pattern fixture's own handler (which restores and re-raises)."""
    def on_signal(signum, frame):
        try:
            restore_all()
            users.remove_all()
        finally:
            fx._on_signal(signum, frame)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)


as_user = users.as_user


# ---------------------------------------------------------------------------
# running the handler by hand

class HandRun(object):
    def __init__(self, rc, err, seconds, timed_out):
        self.rc = rc
        self.err = err
        self.seconds = seconds
        self.timed_out = timed_out

    def describe(self):
        return ["exit %r%s after %.2fs" % (self.rc, " TIMED OUT" if
                                           self.timed_out else "",
                                           self.seconds)] + \
            ["  | " + l for l in self.err.decode("utf-8", "replace")
             .splitlines()[:12]]


def run_handler(conf, pid, pidfd, comm="python3", uid=0, gid=0, signo=11,
                core=b"\x7fELF not really a core\n" * 1000, timeout=20,
                prefix=(), env=None, handler=None, dumpable=1, pidfd_arg=None):
    """pystack-coredump --config=conf PIDFD PID UID GID SIG TIME LIMIT
    HOST DUMPABLE COMM with `core` on stdin (a file, as by hand)."""
    import tempfile
    e = dict(os.environ)
    e.pop("PYSTACK_COREDUMP_STDERR", None)
    e["PYSTACK_COREDUMP_STDERR"] = "1"
    if env:
        e.update(env)
    argv = list(prefix) + [handler or programs.coredump(), "--config=%s" % conf,
                           str(pidfd if pidfd_arg is None else pidfd_arg),
                           str(pid), str(uid), str(gid), str(signo),
                           str(int(time.time())), "18446744073709551615",
                           "hardening-host", str(dumpable), comm]
    with tempfile.TemporaryFile() as fh:
        fh.write(core)
        fh.seek(0)
        t0 = time.time()
        p = subprocess.Popen(argv, stdin=fh, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=e,
                             pass_fds=[pidfd] if pidfd is not None and
                             pidfd >= 0 else [],
                             start_new_session=True)
        try:
            _, err = p.communicate(timeout=timeout)
            to = False
        except subprocess.TimeoutExpired:
            to = True
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                p.kill()
            _, err = p.communicate()
        return HandRun(p.returncode, err, time.time() - t0, to)


class Sleeper(object):
    """A live process to name: `python3.11 -c 'sleep'` (or another argv),
    with a pidfd of it."""

    def __init__(self, argv=None, **kw):
        self.p = subprocess.Popen(argv or ["/usr/bin/python3.11", "-c",
                                           "import sys,time; print('ready',"
                                           " flush=True); time.sleep(600)"],
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL,
                                  start_new_session=True, **kw)
        if argv is None:
            self.p.stdout.readline()
        else:
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    if os.readlink("/proc/%d/exe" % self.p.pid) == argv[0]:
                        break
                except OSError:
                    pass
                time.sleep(0.01)
        self.pid = self.p.pid
        self.pidfd = os.pidfd_open(self.pid)

    def close(self):
        try:
            os.close(self.pidfd)
        except OSError:
            pass
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        if self.p.stdout:
            self.p.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ---------------------------------------------------------------------------
# wrappers installed in core_pattern in place of the handler

def stderr_wrapper(path, log_path, handler=None):
    with open(path, "w") as fh:
        fh.write("#!/bin/sh\nPYSTACK_COREDUMP_STDERR=1 exec %s \"$@\" "
                 "2>>%s\n" % (handler or programs.coredump(), log_path))
    os.chmod(path, 0o700)
    return path


def rss_wrapper(path, rss_log, log_path, handler=None):
    """Peak RSS (KiB) of each handler run, one line each in rss_log."""
    with open(path, "w") as fh:
        fh.write("#!/bin/sh\nPYSTACK_COREDUMP_STDERR=1 exec /usr/bin/time "
                 "-f %%M -a -o %s %s \"$@\" 2>>%s\n"
                 % (rss_log, handler or programs.coredump(), log_path))
    os.chmod(path, 0o700)
    return path


def strace_wrapper(path, trace_log, handler=None):
    with open(path, "w") as fh:
        fh.write("#!/bin/sh\nexec /usr/bin/strace -f -qq -s 4096 "
                 "-e trace=%%file,execve,execveat -o %s %s \"$@\"\n"
                 % (trace_log, handler or programs.coredump()))
    os.chmod(path, 0o700)
    return path


# ---------------------------------------------------------------------------
# the state of a directory tree

def snapshot(top):
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            h = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    h = hashlib.sha256(fh.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                h = os.readlink(p)
            # not st_nlink: a hard link planted (or removed) in the storage
            # directory changes it without touching the file
            out[os.path.relpath(p, top)] = (stat.S_IFMT(st.st_mode),
                                            st.st_size, st.st_mode,
                                            st.st_uid, h, st.st_mtime_ns)
    return out


def store_is_plain(db):
    """pystack.db and its -wal/-shm are plain single-link files (or absent):
    only then may a test open the store itself -- SQLite, run by the test
    as root, would write through a planted link just as well."""
    for p in (db, db + "-wal", db + "-shm"):
        try:
            st = os.lstat(p)
        except OSError:
            if p == db:
                return False
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            return False
    return True


def text_factory(b):
    """TEXT from the store as str; bytes that are not UTF-8 (the handler
    stores comm and exe as the kernel's bytes) as surrogate escapes."""
    return b.decode("utf-8", "surrogateescape")


def diff_snapshots(a, b):
    d = []
    for k in sorted(set(a) | set(b)):
        if k not in a:
            d.append("created: %s" % k)
        elif k not in b:
            d.append("removed: %s" % k)
        elif a[k] != b[k]:
            d.append("changed: %s %r -> %r" % (k, a[k], b[k]))
    return d


# ---------------------------------------------------------------------------
# text from pystackctl

C1 = re.compile(u"[\u0080-\u009f]")


def raw_controls(data):
    """Control characters in output that a terminal would act on: C0 but
    newline and tab, DEL, ESC, and C1 (U+0080..U+009F as UTF-8)."""
    bad = []
    for i, b in enumerate(data):
        if (b < 0x20 and b not in (0x0a, 0x09)) or b == 0x7f:
            bad.append("byte 0x%02x at %d: %r" % (b, i,
                                                   data[max(0, i - 20):i + 10]))
    text = data.decode("utf-8", "replace")
    for m in C1.finditer(text):
        bad.append("C1 U+%04X at char %d: %r" % (
            ord(m.group()), m.start(), text[max(0, m.start() - 20):
                                            m.start() + 10]))
    return bad
