# -*- coding: utf-8 -*-
"""core_pattern / core_pipe_limit fixture for pipe-handler tests
(test_capture.py, contrib/bench/bench-capture).

The discipline of cores.CorePattern, extended to pipe handlers:

* the exclusive flock on cores.LOCK_FILE is held while core_pattern is not
  the original;
* the original core_pattern is saved in cores.SAVED_FILE (same format as
  cores.py) and every pattern written here contains cores.MARKER
  ("pystackd-incoming": our scratch directories are
  /tmp/pystackd-incoming.XXXXXXXX), so a run killed with SIGKILL is repaired
  by the next run of this fixture *or* of cores.py;
* the original core_pipe_limit is saved in PIPE_LIMIT_SAVED; a run that finds
  that file while holding the lock restores it (cores.py does not touch
  core_pipe_limit);
* tmpfs mounts made through mount_tmpfs() are unmounted on every exit path,
  and mounts below /tmp/pystackd-incoming.* left by a killed run are
  unmounted on entry;
* restore on every exit path: __exit__ (try/finally), atexit, and
  SIGTERM/SIGINT/SIGHUP (restore, then die of the same signal).

Stdlib only, Python 3.
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

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cores  # noqa: E402

CORE_PATTERN = cores.CORE_PATTERN
CORE_PIPE_LIMIT = "/proc/sys/kernel/core_pipe_limit"
LOCK_FILE = cores.LOCK_FILE
SAVED_FILE = cores.SAVED_FILE
PIPE_LIMIT_SAVED = "/run/lock/pystackd-core-pipe-limit.saved"
MARKER = cores.MARKER
SCRATCH_PREFIX = "/tmp/" + MARKER + "."
CORENAME_MAX = cores.CORENAME_MAX     # 127


def log(msg):
    sys.stderr.write("capture_fixture: %s\n" % msg)
    sys.stderr.flush()


def _read(path):
    with open(path) as fh:
        return fh.read().rstrip("\n")


def _write(path, value):
    with open(path, "w") as fh:
        fh.write(value + "\n")


def _mounts_below(prefix):
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


class PipeHandlerFixture(object):
    """with PipeHandlerFixture(pipe_limit=64) as fx:
           fx.set_pattern("|/path/handler ...")    # must contain fx.root
       fx.root is a fresh 0700 scratch directory under /tmp (removed at
       the end); fx.mount_tmpfs(dir, size) mounts a tmpfs that is unmounted
       on every exit path."""

    def __init__(self, pipe_limit=64, lock_timeout=900):
        self.pipe_limit = pipe_limit
        self.lock_timeout = lock_timeout
        self.lock_fd = None
        self.original = None
        self.original_limit = None
        self.changed = False
        self.saved_written = False
        self.limit_changed = False
        self.root = None
        self.mounts = []
        self.children = set()       # Popen objects killed on a signal
        self._old_handlers = {}
        self._old_rlimit = None
        self._restore_lock = threading.RLock()

    # -- locking (as cores.CorePattern)
    def _lock(self):
        try:
            os.makedirs(os.path.dirname(LOCK_FILE), exist_ok=True)
        except OSError:
            pass
        self.lock_fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.time() + self.lock_timeout
        warned = False
        while True:
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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

    def _unlock(self):
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    # -- repair what a killed run left (called with the lock held)
    def _repair(self):
        current = _read(CORE_PATTERN)
        if MARKER in current:
            try:
                saved = _read(SAVED_FILE)
            except OSError:
                saved = "core"
            log("core_pattern %r was left by a killed run; original %r"
                % (current, saved))
            _write(CORE_PATTERN, saved)
            try:
                os.unlink(SAVED_FILE)
            except OSError:
                pass
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
            try:
                os.unlink(PIPE_LIMIT_SAVED)
            except OSError:
                pass
        # mounts and scratch directories of killed runs (no live run owns
        # one: we hold the lock)
        for mp in _mounts_below(SCRATCH_PREFIX):
            log("unmounting %s left by a killed run" % mp)
            umount(mp)
        for d in glob.glob(SCRATCH_PREFIX + "*"):
            if not _mounts_below(d):
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
                try:
                    os.unlink(SAVED_FILE)
                except OSError:
                    pass
                self.saved_written = False
            if self.limit_changed:
                try:
                    _write(CORE_PIPE_LIMIT, self.original_limit)
                    self.limit_changed = False
                    try:
                        os.unlink(PIPE_LIMIT_SAVED)
                    except OSError:
                        pass
                except OSError as e:
                    log("CANNOT RESTORE core_pipe_limit to %r: %s"
                        % (self.original_limit, e))

    def _on_signal(self, signum, frame):
        for p in list(self.children):
            try:
                p.kill()
            except OSError:
                pass
        self.restore()
        self._unlock()
        if self.root and not _mounts_below(self.root):
            shutil.rmtree(self.root, ignore_errors=True)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def __enter__(self):
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self._old_handlers[s] = signal.signal(s, self._on_signal)
        atexit.register(self.restore)
        try:
            self._lock()
            self._repair()
            self.original = _read(CORE_PATTERN)
            self.original_limit = _read(CORE_PIPE_LIMIT)
            self._old_rlimit = resource.getrlimit(resource.RLIMIT_CORE)
            try:
                resource.setrlimit(resource.RLIMIT_CORE,
                                   (resource.RLIM_INFINITY,
                                    resource.RLIM_INFINITY))
            except (ValueError, OSError):
                hard = self._old_rlimit[1]
                resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
            self.root = tempfile.mkdtemp(prefix=MARKER + ".", dir="/tmp")
            os.chmod(self.root, 0o700)
            # saved values first, then change
            with open(SAVED_FILE + ".tmp", "w") as fh:
                fh.write(self.original + "\n")
            os.rename(SAVED_FILE + ".tmp", SAVED_FILE)
            self.saved_written = True
            with open(PIPE_LIMIT_SAVED + ".tmp", "w") as fh:
                fh.write(self.original_limit + "\n")
            os.rename(PIPE_LIMIT_SAVED + ".tmp", PIPE_LIMIT_SAVED)
            self.limit_changed = True
            _write(CORE_PIPE_LIMIT, str(self.pipe_limit))
            if _read(CORE_PIPE_LIMIT) != str(self.pipe_limit):
                raise RuntimeError("core_pipe_limit did not take %d"
                                   % self.pipe_limit)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        try:
            for p in list(self.children):
                try:
                    p.kill()
                except OSError:
                    pass
            self.restore()
        finally:
            self._unlock()
            if self._old_rlimit is not None:
                try:
                    resource.setrlimit(resource.RLIMIT_CORE, self._old_rlimit)
                except (ValueError, OSError):
                    pass
                self._old_rlimit = None
            for s, h in self._old_handlers.items():
                signal.signal(s, h)
            self._old_handlers = {}
            if self.root and os.path.isdir(self.root) and \
                    not os.environ.get("PYSTACK_CAPTURE_KEEP"):
                if not _mounts_below(self.root):
                    shutil.rmtree(self.root, ignore_errors=True)
        return False

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
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen)
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


def handler_pids(needle):
    """pids of processes whose command line contains `needle` (bytes)."""
    if isinstance(needle, str):
        needle = os.fsencode(needle)
    pids = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as fh:
                cl = fh.read()
        except OSError:
            continue
        if needle in cl:
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


class Watchdog(Exception):
    """The whole test ran past its time limit (SIGALRM)."""


def on_alarm(signum, frame):
    raise Watchdog("the whole test exceeded its time limit")


def run_case(tap, fx, name, call, cleanup=None):
    """Run one case of a test: an exception in the harness is one failed
    check naming the case; afterwards the core_pattern is put back to the
    fixture's own, `cleanup` runs, and every child the case left is killed."""
    import subprocess as _sp
    import time as _time
    import traceback as _tb
    t0 = _time.time()
    try:
        call()
    except Watchdog:
        raise
    except Exception:
        tap.ok(False, "%s: the harness" % name, _tb.format_exc().splitlines())
    finally:
        fx.reset_pattern()
        if cleanup:
            cleanup()
        fx.kill_children()
    tap.diag("%s: %.1fs" % (name, _time.time() - t0))
