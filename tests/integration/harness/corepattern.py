# -*- coding: utf-8 -*-
"""core_pattern for tests: one lock, two fixtures.

Every test that changes /proc/sys/kernel/core_pattern does it while holding
an exclusive flock on LOCK_FILE (/run/lock/pystackd-core-pattern.lock), so
that concurrent tests serialize, and restores it on every exit path:
__exit__ (try/finally), atexit, and SIGTERM/SIGINT/SIGHUP (restore, then die
of the same signal).  Every pattern written contains MARKER
("pystackd-incoming") and the original is saved in SAVED_FILE first, so a
run killed with SIGKILL is repaired by the next one of either fixture.
RLIMIT_CORE is raised (to unlimited, or the hard limit) while a fixture is
held, and every child it started is killed on the way out.

CorePattern(base_dir)
    core files of crashing children go to a fresh directory
    <base_dir>/pystackd-incoming.XXXX (or /tmp/... when that path does not
    fit the kernel's 127 bytes) as core.<pid>: spawn(), reap(),
    run_crash().  Incoming directories of killed runs below base_dir are
    removed on entry.  tests/integration/cores.py makes its cache with it.

PipeHandlerFixture(pipe_limit=64)
    pipe handlers: set_pattern("|handler ...") with a pattern below
    fx.root, a fresh 0700 scratch directory /tmp/pystackd-incoming.XXXX
    (removed at the end unless PYSTACK_CAPTURE_KEEP is set);
    core_pipe_limit set to pipe_limit, its original saved in
    PIPE_LIMIT_SAVED; mount_tmpfs() mounts that are unmounted on every exit
    path.  On entry it also repairs what a killed run left: the pattern,
    core_pipe_limit, mounts and scratch directories below
    /tmp/pystackd-incoming.*.

CoreLock() alone (a `with` block) holds the lock, e.g. to read
core_pattern while no other test has its own pattern in place.
"""
import atexit
import errno
import fcntl
import glob
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

CORE_PATTERN = "/proc/sys/kernel/core_pattern"
CORE_PIPE_LIMIT = "/proc/sys/kernel/core_pipe_limit"
LOCK_FILE = "/run/lock/pystackd-core-pattern.lock"
SAVED_FILE = "/run/lock/pystackd-core-pattern.saved"
PIPE_LIMIT_SAVED = "/run/lock/pystackd-core-pipe-limit.saved"
MARKER = "pystackd-incoming"         # in every pattern we write
SCRATCH_PREFIX = "/tmp/" + MARKER + "."
CORENAME_MAX = 127                   # kernel CORENAME_MAX_SIZE - 1
SCENARIO_TIMEOUT = 60


def log(msg):
    sys.stderr.write("harness.corepattern: %s\n" % msg)
    sys.stderr.flush()


def _read(path):
    with open(path) as fh:
        return fh.read().rstrip("\n")


def _write(path, value):
    with open(path, "w") as fh:
        fh.write(value + "\n")


def _save(path, value):
    """Write path atomically (a .tmp renamed over it)."""
    with open(path + ".tmp", "w") as fh:
        fh.write(value + "\n")
    os.rename(path + ".tmp", path)


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def read_core_pattern():
    return _read(CORE_PATTERN)


def mounts_below(prefix):
    """Mount points starting with prefix, deepest first."""
    out = []
    try:
        with open("/proc/self/mounts") as fh:
            for line in fh:
                mp = line.split()[1].replace("\\040", " ")
                if mp.startswith(prefix):
                    out.append(mp)
    except OSError:
        pass
    return sorted(out, key=len, reverse=True)


def umount(path):
    for args in (["umount", path], ["umount", "-l", path]):
        try:
            if subprocess.run(args, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              timeout=30).returncode == 0:
                return True
        except (OSError, subprocess.SubprocessError):
            pass
    return False


# --------------------------------------------------------------------------
# the lock

class CoreLock(object):
    """The exclusive flock on LOCK_FILE.  acquire() polls for it (and says
    once on stderr that it waits) until `timeout` seconds have passed
    (RuntimeError then); with timeout None it blocks.  Closing the
    descriptor releases it."""

    def __init__(self, timeout=None):
        self.timeout = timeout
        self.fd = None

    def acquire(self):
        try:
            os.makedirs(os.path.dirname(LOCK_FILE), exist_ok=True)
        except OSError:
            pass
        self.fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        if self.timeout is None:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            return
        deadline = time.time() + self.timeout
        warned = False
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if not warned:
                log("waiting for %s (another test changes core_pattern)"
                    % LOCK_FILE)
                warned = True
            if time.time() > deadline:
                raise RuntimeError("timed out waiting for " + LOCK_FILE)
            time.sleep(0.2)

    def release(self):
        if self.fd is not None:
            os.close(self.fd)      # releases the flock
            self.fd = None

    @property
    def held(self):
        return self.fd is not None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False


# --------------------------------------------------------------------------
# what both fixtures do around their own changes

class _Fixture(object):
    """The lock, RLIMIT_CORE, the signal handlers and atexit, the children;
    subclasses change and restore() the sysctls and own a scratch
    directory (_remove_scratch())."""

    def __init__(self, lock_timeout=900):
        self.lock = CoreLock(lock_timeout)
        self.original = None
        self.changed = False
        self.children = set()       # Popen objects killed on every exit path
        self._old_handlers = {}
        self._old_rlimit = None
        self._restore_lock = threading.RLock()  # re-entered by signal handlers

    @property
    def lock_fd(self):
        return self.lock.fd

    def restore(self):
        raise NotImplementedError

    def _remove_scratch(self, on_signal):
        raise NotImplementedError

    def _kill_children(self):
        for p in list(self.children):
            try:
                p.kill()
            except OSError:
                pass

    def _enter_common(self):
        """Signal handlers and atexit first (restore whatever happens next),
        then the lock, then RLIMIT_CORE."""
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self._old_handlers[s] = signal.signal(s, self._on_signal)
        atexit.register(self.restore)
        self.lock.acquire()

    def _raise_rlimit_core(self):
        self._old_rlimit = resource.getrlimit(resource.RLIMIT_CORE)
        try:
            resource.setrlimit(resource.RLIMIT_CORE,
                               (resource.RLIM_INFINITY,
                                resource.RLIM_INFINITY))
        except (ValueError, OSError):
            hard = self._old_rlimit[1]
            resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))

    def _on_signal(self, signum, frame):
        self._kill_children()
        self.restore()
        self.lock.release()
        self._remove_scratch(on_signal=True)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def __exit__(self, *exc):
        try:
            self._kill_children()
            self.restore()
        finally:
            self.lock.release()
            if self._old_rlimit is not None:
                try:
                    resource.setrlimit(resource.RLIMIT_CORE, self._old_rlimit)
                except (ValueError, OSError):
                    pass
                self._old_rlimit = None
            for s, h in self._old_handlers.items():
                signal.signal(s, h)
            self._old_handlers = {}
            self._remove_scratch(on_signal=False)
        return False


# --------------------------------------------------------------------------
# cores written to a directory

class CorePattern(_Fixture):
    """Context manager: core files of crashing children go to a fresh
    directory as core.<pid>; core_pattern is restored on every exit path."""

    def __init__(self, base_dir):
        _Fixture.__init__(self, lock_timeout=900)
        self.base_dir = base_dir
        self.incoming = None

    def restore(self):
        with self._restore_lock:
            if self.changed:
                try:
                    _write(CORE_PATTERN, self.original)
                    self.changed = False
                    _unlink(SAVED_FILE)
                except OSError as e:
                    log("CANNOT RESTORE core_pattern to %r: %s"
                        % (self.original, e))

    def _remove_scratch(self, on_signal):
        if self.incoming and (on_signal or os.path.isdir(self.incoming)):
            shutil.rmtree(self.incoming, ignore_errors=True)

    def __enter__(self):
        self._enter_common_safely()
        return self

    def _enter_common_safely(self):
        try:
            self._enter_common()
            current = _read(CORE_PATTERN)
            if left_by_a_run(current):
                # A previous run died without restoring (SIGKILL?).
                try:
                    saved = _read(SAVED_FILE)
                except OSError:
                    saved = "core"
                log("core_pattern %r was left by a killed run; original %r"
                    % (current, saved))
                current = saved
                _write(CORE_PATTERN, current)
            self.original = current
            # Incoming directories of runs that died (we hold the lock, so
            # no live run owns one).
            for d in glob.glob(os.path.join(self.base_dir, MARKER + ".*")):
                shutil.rmtree(d, ignore_errors=True)
            self._raise_rlimit_core()
            self.incoming = self._make_incoming()
            pattern = os.path.join(self.incoming, "core.%p")
            _save(SAVED_FILE, self.original)
            self.changed = True
            _write(CORE_PATTERN, pattern)
            if _read(CORE_PATTERN) != pattern:
                raise RuntimeError("core_pattern did not take %r" % pattern)
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _make_incoming(self):
        # The pattern must fit in the kernel's 128 bytes and must not hold
        # '%' or a leading '|' of its own: otherwise use a short /tmp dir.
        base = self.base_dir
        os.makedirs(base, exist_ok=True)
        d = tempfile.mkdtemp(prefix=MARKER + ".", dir=base)
        if len(os.path.join(d, "core.%p")) > CORENAME_MAX or "%" in d \
                or " " in d:
            os.rmdir(d)
            d = tempfile.mkdtemp(prefix=MARKER + ".", dir="/tmp")
        return d

    # -- running crashing children
    def spawn(self, argv, env=None, cwd=None, log_path=None):
        """Start argv (RLIMIT_CORE unlimited: set in this process and
        inherited).  Call from the main thread only: the kernel records the
        forking *thread* as pr_ppid in the core, which must equal the
        child's getppid().  Output goes to log_path (or is discarded)."""
        out = open(log_path, "wb") if log_path else subprocess.DEVNULL
        try:
            p = subprocess.Popen(argv, env=env, cwd=cwd,
                                 stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT,
                                 start_new_session=True)
        finally:
            if log_path:
                out.close()
        self.children.add(p)
        return p

    def reap(self, p):
        """Forget a finished child; return its core file or None."""
        self.children.discard(p)
        core = os.path.join(self.incoming, "core.%d" % p.pid)
        return core if os.path.exists(core) else None

    def run_crash(self, argv, env=None, cwd=None, timeout=SCENARIO_TIMEOUT,
                  kill_after=None, kill_signal=signal.SIGSEGV):
        """Run argv to its end; with kill_after, send it kill_signal after
        that many seconds.  Returns (returncode or None on timeout, core
        path or None)."""
        p = self.spawn(argv, env=env, cwd=cwd)
        if kill_after is not None:
            time.sleep(kill_after)
            p.send_signal(kill_signal)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
        return rc, self.reap(p)


# --------------------------------------------------------------------------
# pipe handlers

class PipeHandlerFixture(_Fixture):
    """with PipeHandlerFixture(pipe_limit=64) as fx:
           fx.set_pattern("|/path/handler ...")    # must contain fx.root
       fx.root is a fresh 0700 scratch directory under /tmp (removed at
       the end); fx.mount_tmpfs(dir, size) mounts a tmpfs that is unmounted
       on every exit path."""

    def __init__(self, pipe_limit=64, lock_timeout=900):
        _Fixture.__init__(self, lock_timeout=lock_timeout)
        self.pipe_limit = pipe_limit
        self.lock_timeout = lock_timeout
        self.original_limit = None
        self.saved_written = False
        self.limit_changed = False
        self.root = None
        self.mounts = []

    # -- repair what a killed run left (called with the lock held)
    def _repair(self):
        current = _read(CORE_PATTERN)
        if left_by_a_run(current):
            try:
                saved = _read(SAVED_FILE)
            except OSError:
                saved = "core"
            log("core_pattern %r was left by a killed run; original %r"
                % (current, saved))
            _write(CORE_PATTERN, saved)
            _unlink(SAVED_FILE)
        try:
            saved_limit = _read(PIPE_LIMIT_SAVED)
        except OSError:
            saved_limit = None
        if saved_limit is not None and re.match(r"^\d+$", saved_limit):
            if _read(CORE_PIPE_LIMIT) != saved_limit:
                log("core_pipe_limit was left at %s by a killed run; "
                    "original %s" % (_read(CORE_PIPE_LIMIT), saved_limit))
                _write(CORE_PIPE_LIMIT, saved_limit)
        if saved_limit is not None:
            _unlink(PIPE_LIMIT_SAVED)
        # mounts and scratch directories of killed runs (no live run owns
        # one: we hold the lock)
        for mp in mounts_below(SCRATCH_PREFIX):
            log("unmounting %s left by a killed run" % mp)
            umount(mp)
        for d in glob.glob(SCRATCH_PREFIX + "*"):
            if not mounts_below(d):
                shutil.rmtree(d, ignore_errors=True)

    # -- restore
    def restore(self):
        with self._restore_lock:
            for mp in list(reversed(self.mounts)):
                if umount(mp):
                    self.mounts.remove(mp)
                else:
                    log("CANNOT UNMOUNT %s" % mp)
            if self.changed:
                try:
                    _write(CORE_PATTERN, self.original)
                    self.changed = False
                except OSError as e:
                    log("CANNOT RESTORE core_pattern to %r: %s"
                        % (self.original, e))
            if self.saved_written and not self.changed:
                _unlink(SAVED_FILE)
                self.saved_written = False
            if self.limit_changed:
                try:
                    _write(CORE_PIPE_LIMIT, self.original_limit)
                    self.limit_changed = False
                    _unlink(PIPE_LIMIT_SAVED)
                except OSError as e:
                    log("CANNOT RESTORE core_pipe_limit to %r: %s"
                        % (self.original_limit, e))

    def _remove_scratch(self, on_signal):
        if not self.root:
            return
        if not on_signal and (not os.path.isdir(self.root) or
                              os.environ.get("PYSTACK_CAPTURE_KEEP")):
            return
        if not mounts_below(self.root):
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        try:
            self._enter_common()
            self._repair()
            self.original = _read(CORE_PATTERN)
            self.original_limit = _read(CORE_PIPE_LIMIT)
            self._raise_rlimit_core()
            self.root = tempfile.mkdtemp(prefix=MARKER + ".", dir="/tmp")
            os.chmod(self.root, 0o700)
            # saved values first, then change
            _save(SAVED_FILE, self.original)
            self.saved_written = True
            _save(PIPE_LIMIT_SAVED, self.original_limit)
            self.limit_changed = True
            _write(CORE_PIPE_LIMIT, str(self.pipe_limit))
            if _read(CORE_PIPE_LIMIT) != str(self.pipe_limit):
                raise RuntimeError("core_pipe_limit did not take %d"
                                   % self.pipe_limit)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    # -- helpers
    def kill_children(self):
        """SIGKILL and reap every child started under this fixture."""
        for p in list(self.children):
            try:
                p.kill()
                p.wait(timeout=10)
            except (OSError, subprocess.SubprocessError):
                pass
            self.children.discard(p)

    def run_child(self, argv, timeout=60, **popen):
        """Run argv to its end as a child of this fixture (killed on any exit
        path meanwhile); stdin is /dev/null and stderr is captured.  Returns
        (exit status, stderr bytes); a child past the timeout is killed."""
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, **popen)
        self.children.add(p)
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        self.children.discard(p)
        return p.returncode, err

    def set_pattern(self, pattern):
        """Install a pattern; it must name something below self.root (so
        that it contains MARKER) and fit in the kernel's 127 bytes."""
        if MARKER not in pattern:
            raise ValueError("pattern without %r: %r" % (MARKER, pattern))
        if len(pattern) > CORENAME_MAX:
            raise ValueError("pattern longer than %d bytes (%d): %r"
                             % (CORENAME_MAX, len(pattern), pattern))
        with self._restore_lock:
            self.changed = True
            _write(CORE_PATTERN, pattern)
        got = _read(CORE_PATTERN)
        if got != pattern:
            raise RuntimeError("core_pattern did not take %r (reads %r)"
                               % (pattern, got))

    def reset_pattern(self):
        """Back to the original between cases (the lock stays held)."""
        with self._restore_lock:
            if self.changed:
                _write(CORE_PATTERN, self.original)
                self.changed = False

    def mkdir(self, name):
        d = os.path.join(self.root, name)
        os.mkdir(d, 0o700)
        os.chmod(d, 0o700)
        return d

    def mount_tmpfs(self, path, size):
        os.makedirs(path, mode=0o700, exist_ok=True)
        with self._restore_lock:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                                "size=%s,mode=0700" % size, "tmpfs", path],
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            if r.returncode != 0:
                raise RuntimeError("mount tmpfs on %s: %s"
                                   % (path, r.stdout.decode(errors="replace")))
            self.mounts.append(path)

    def unmount(self, path):
        with self._restore_lock:
            if path in self.mounts and umount(path):
                self.mounts.remove(path)
                return True
        return path not in self.mounts


# --------------------------------------------------------------------------
# the handlers the kernel started

def left_by_a_run(current):
    """A pattern a killed run left: ours (MARKER), or a coredump socket a test's listener put
    there (its runtime directory need not hold MARKER) while a saved original exists."""
    return MARKER in current or (current.startswith("@@") and os.path.exists(SAVED_FILE))


def cmdline(pid):
    """The command line of pid, NUL-separated bytes (b"" when it is gone)."""
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def ppid(pid):
    """The parent of pid (0 when it is gone)."""
    try:
        with open("/proc/%s/stat" % pid, "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def children(pid):
    """pids whose parent is pid."""
    return [int(d) for d in os.listdir("/proc") if d.isdigit() and ppid(d) == pid]


def status(pid):
    """/proc/PID/status as a dict of stripped values (Uid: "0\t0\t0\t0")."""
    with open("/proc/%d/status" % pid) as fh:
        return dict((k, v.strip()) for k, v in (line.split(":", 1) for line in fh if ":" in line))


def handler_pids(needle):
    """pids of processes whose command line contains `needle` (bytes): the
    handlers taking crashes.  A coredump socket listener (pystack-coredump
    --listen, never gone while it serves) is not one; the processes it forks
    for its connections, with its command line, are."""
    if isinstance(needle, str):
        needle = os.fsencode(needle)
    pids = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        cl = cmdline(d)
        if needle not in cl:
            continue
        if cl.endswith(b"\0--listen\0") and needle not in cmdline(ppid(d)):
            continue
        pids.append(int(d))
    return pids


def wait_handlers_gone(needle, timeout):
    """Wait until no process has `needle` in its command line; returns the
    seconds waited, or None on timeout (the stragglers are left alone)."""
    t0 = time.time()
    while True:
        if not handler_pids(needle):
            return time.time() - t0
        if time.time() - t0 > timeout:
            return None
        time.sleep(0.02)
