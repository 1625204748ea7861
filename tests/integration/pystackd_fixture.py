# -*- coding: utf-8 -*-
"""Helpers for test_pystackd.py and contrib/bench/bench-pystackd: a
stand-alone journald, pystackd processes, per-case stores, crashing Python
workers.

A journald of our own
---------------------
pystackd writes its journal entries with sd_journal_sendv(), which always
sends to /run/systemd/journal/socket.  When a journald already listens
there (a machine booted with systemd), that one is used and journalctl
reads the system journal.  Otherwise (PID 1 is not systemd) Journald.start()
runs Debian's /lib/systemd/systemd-journald as a plain background process
inside a private mount namespace, so that nothing on the host changes:

    unshare --mount --propagation private -- /bin/sh -c '
        mount -t tmpfs tmpfs /run/systemd     # fresh: journal/ and conf.d
        mount -t tmpfs tmpfs /run/log         # the volatile journal
        mkdir -p /run/systemd/journal /run/systemd/journald.conf.d /run/log/journal
        write /run/systemd/journald.conf.d/50-pystackd-test.conf:
            Storage=volatile ReadKMsg=no Audit=no ForwardTo*=no RuntimeMaxUse=48M
        SYSTEMD_LOG_TARGET=console exec /lib/systemd/systemd-journald'

* journald takes no socket-activation descriptors here and binds
  /run/systemd/journal/{socket,stdout,dev-log,io.systemd.journal} itself;
  /dev/log is not touched.  It takes one optional argument, a journal
  *namespace* name (so `systemd-journald --help` does not print a help: it
  starts a journald for the namespace "--help"); none is given here.
* The drop-in in /run/systemd/journald.conf.d (on our tmpfs) keeps it from
  reading /dev/kmsg and the audit netlink socket and from forwarding
  anything; SYSTEMD_LOG_TARGET=console sends its own messages to stderr
  (a file in the case directory) instead of /dev/kmsg.
* Without /run/systemd/journal/flushed it writes
  /run/log/journal/<machine-id>/system.journal (volatile).
* pystackd runs in that namespace (`nsenter --target JOURNALD --mount --
  pystackd ...`), so its sd_journal_sendv() reaches our journald.  Its
  store and runtime directory are under /tmp, which the namespace shares
  with the host, so the kernel's handler (run in the init namespaces)
  writes the store and wakes pystackd through <RuntimeDirectory>/notify as
  usual.  The crashing processes stay in the host's namespaces (the
  handler would record a process in another mount namespace as
  container=1).
* journalctl and coredumpctl read it from the host through the namespace's
  root: `journalctl --directory=/proc/JOURNALD/root/run/log/journal`.
* stop(): SIGTERM to journald; the namespace and its tmpfs mounts go away
  with the last process in it (journald and every pystackd are started
  with PR_SET_PDEATHSIG, so a killed test does not leave them behind).

Stdlib only, Python 3.
"""
import ctypes
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import corepattern, programs  # noqa: E402
SOCKET = os.environ.get("PYSTACK_CAPTURE_MODE") == "socket"    # [Capture] Mode=socket in every store


def socket_missing():
    """Why this kernel cannot capture through the coredump socket, or None."""
    try:
        with open("/proc/sys/kernel/core_modes") as fh:
            modes = fh.read().split()
    except OSError:
        return "no /proc/sys/kernel/core_modes (Linux 6.16+ has it)"
    return None if "socket" in modes else "the kernel's core_modes (%s) lack \"socket\"" % " ".join(modes)

SYSTEM_PYTHON = "/usr/bin/python3.11"
JOURNALD = "/lib/systemd/systemd-journald"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
COREDUMP_MESSAGE_ID = "fc2e22bc6ee647b6b90729ab34a250b1"
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


def _pdeathsig(sig=signal.SIGTERM):
    def fn():
        _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        os.setsid()
    return fn


# ---------------------------------------------------------------------------
# processes started here, for the cleanup on every exit path

STARTED = []          # Popen objects: pystackd, journald


def stop_started(keep=None):
    """Stop (SIGTERM, then SIGKILL after 15 s) and forget every process
    started through this module but `keep` (a case's pystackds, not the
    journald the cases share)."""
    for p in list(STARTED):
        if p is keep:
            continue
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        STARTED.remove(p)


def cleanup_processes():
    """SIGTERM, then SIGKILL, every process started through this module
    that is still running (by its own pid only)."""
    for p in list(STARTED):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except OSError:
                pass
    deadline = time.time() + 10
    for p in list(STARTED):
        left = max(0.1, deadline - time.time())
        try:
            p.wait(timeout=left)
        except subprocess.TimeoutExpired:
            try:
                p.kill()
                p.wait(timeout=10)
            except (OSError, subprocess.SubprocessError):
                pass
        STARTED.remove(p)


# ---------------------------------------------------------------------------
# journald

def journald_listening(path=JOURNAL_SOCKET):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


_JOURNALD_SCRIPT = r"""set -e
mount -t tmpfs -o mode=0755,size=64m pystackd-test-journal /run/systemd
mount -t tmpfs -o mode=0755,size=64m pystackd-test-journal /run/log
mkdir -p /run/systemd/journal /run/systemd/journald.conf.d /run/log/journal
printf '[Journal]\nStorage=volatile\nReadKMsg=no\nAudit=no\nForwardToSyslog=no\nForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\nRuntimeMaxUse=48M\n' \
    > /run/systemd/journald.conf.d/50-pystackd-test.conf
SYSTEMD_LOG_TARGET=console exec %s
"""


class Journald(object):
    """journald for pystackd's entries: the host's, or our own (see the
    module docstring).  prefix: the command prefix that puts a process in
    its namespace; directory: for journalctl --directory (None: the
    system journal)."""

    def __init__(self, log_path):
        self.log_path = log_path
        self.proc = None
        self.prefix = []
        self.directory = None
        self.own = False
        self.error = None

    def start(self, timeout=20):
        if journald_listening():
            self.own = False
            return True
        if not os.access(JOURNALD, os.X_OK):
            self.error = "%s is not installed" % JOURNALD
            return False
        for tool in ("unshare", "nsenter", "journalctl"):
            if not any(os.access(os.path.join(d, tool), os.X_OK)
                       for d in os.environ.get("PATH", "/usr/bin").split(":")
                       + ["/usr/bin", "/bin"]):
                self.error = "%s is not installed" % tool
                return False
        if not os.path.isdir("/run/systemd") or not os.path.isdir("/run/log"):
            self.error = "/run/systemd or /run/log is missing (mount points)"
            return False
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "--",
                 "/bin/sh", "-c", _JOURNALD_SCRIPT % JOURNALD],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=_pdeathsig(), env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        finally:
            log.close()
        STARTED.append(self.proc)
        self.own = True
        root = "/proc/%d/root" % self.proc.pid
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.error = "journald exited with %r: %s" % (
                    self.proc.returncode, self.log_tail())
                return False
            try:
                with open("/proc/%d/comm" % self.proc.pid) as fh:
                    comm = fh.read().strip()
            except OSError:
                comm = ""
            if comm.startswith("systemd-journal") and \
                    os.path.exists(root + JOURNAL_SOCKET):
                self.prefix = ["nsenter", "--target", str(self.proc.pid),
                               "--mount", "--"]
                self.directory = root + "/run/log/journal"
                return True
            time.sleep(0.05)
        self.error = "journald did not create its socket within %ds: %s" % (
            timeout, self.log_tail())
        return False

    def log_tail(self, n=5):
        try:
            with open(self.log_path, errors="replace") as fh:
                return " | ".join(fh.read().splitlines()[-n:])
        except OSError:
            return ""

    def describe(self):
        if not self.own:
            return "the host's journald (%s)" % JOURNAL_SOCKET
        return "our journald, pid %d, private mount namespace, journal %s" % (
            self.proc.pid, self.directory)

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc in STARTED:
            STARTED.remove(self.proc)
        rc = self.proc.returncode
        self.proc = None
        return rc

    def dir_args(self):
        return ["--directory=%s" % self.directory] if self.directory else []

    def run(self, tool, args, timeout=30):
        cmd = [tool] + self.dir_args() + list(args)
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=timeout, env=dict(os.environ, LC_ALL="C.UTF-8",
                                                         SYSTEMD_PAGER="", PAGER="cat",
                                                         SYSTEMD_COLORS="0"))
            return r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired:
            return None, b"", b"timed out after %ds" % timeout
        except OSError as e:
            return None, b"", str(e).encode()

    def entries(self, matches=("SYSLOG_IDENTIFIER=pystackd",)):
        rc, out, err = self.run("journalctl", ["-o", "json", "--no-pager",
                                               "--all"] + list(matches))
        res = []
        for line in out.decode("utf-8", "replace").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                res.append(json.loads(line))
            except ValueError:
                pass
        return res

    def wait_entries(self, pred, n=1, timeout=30,
                     matches=("SYSLOG_IDENTIFIER=pystackd",)):
        """Poll until at least n entries satisfy pred; returns them."""
        deadline = time.time() + timeout
        while True:
            got = [e for e in self.entries(matches) if pred(e)]
            if len(got) >= n or time.time() > deadline:
                return got
            time.sleep(0.1)


# ---------------------------------------------------------------------------
# pystackd

class Daemon(object):
    """One pystackd --config=CONF in the foreground, stderr to log_path."""

    def __init__(self, conf, log_path, prefix=()):
        self.conf = conf
        self.log_path = log_path
        self.prefix = list(prefix)
        self.proc = None
        self.log_start = 0

    def start(self, timeout=10):
        log = open(self.log_path, "ab")
        self.log_start = log.tell()     # this run's part of the shared log
        try:
            self.proc = subprocess.Popen(
                self.prefix + [programs.pystackd(), "--config=%s" % self.conf],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=dict(os.environ, PYSTACK_COREDUMP_STDERR="1"),
                preexec_fn=_pdeathsig())
        finally:
            log.close()
        STARTED.append(self.proc)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.comm() == "pystackd" and \
                    "pystackd started" in self.log()[self.log_start:]:
                return self.wait_socket(deadline)
            time.sleep(0.02)
        return self.alive()

    def socket_mode(self):
        try:
            with open(self.conf) as fh:
                return "\nMode=socket\n" in fh.read()
        except OSError:
            return False

    def wait_socket(self, deadline):
        """Mode=socket: until its listener has put its socket in core_pattern; False when it said
        socket capture is off (a socket-mode test must not pass through the pipe unnoticed)."""
        if not self.socket_mode():
            return True
        while time.time() < deadline:
            if corepattern.read_core_pattern().startswith("@@"):
                return True
            if "socket capture is off" in self.log()[self.log_start:]:
                return False
            time.sleep(0.02)
        return False

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def comm(self):
        try:
            with open("/proc/%d/comm" % self.proc.pid) as fh:
                return fh.read().strip()
        except (OSError, AttributeError):
            return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout=20):
        """SIGTERM and wait; returns the exit status (None: had to SIGKILL)."""
        if self.proc is None:
            return None
        rc = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                rc = None
        else:
            rc = self.proc.returncode
        if self.proc in STARTED:
            STARTED.remove(self.proc)
        return rc

    def kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc in STARTED:
            STARTED.remove(self.proc)

    def rss_kib(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, AttributeError):
            pass
        return None

    def children(self):
        """pids whose parent is this pystackd (its running analyses)."""
        return corepattern.children(self.proc.pid) if self.proc else []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as fh:
                    st = fh.read()
                ppid = int(st[st.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.proc.pid:
                out.append(int(d))
        return out

    def log(self):
        try:
            with open(self.log_path, errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def log_tail(self, n=15):
        return self.log().splitlines()[-n:]


# ---------------------------------------------------------------------------
# a case: its directory, configuration and store

class Store(object):
    """A case directory below the fixture's scratch root: config `c`,
    storage `s`, runtime `r`, pystackd log `log`."""

    def __init__(self, fx, name, analysis="", storage="", capture="",
                 daemon="", analyzer=None):
        self.fx = fx
        self.name = name
        self.dir = fx.mkdir(name)
        os.chmod(self.dir, 0o711)      # the analyzer user reaches r/ and worker.py
        self.conf = os.path.join(self.dir, "c")
        self.storage = os.path.join(self.dir, "s")
        self.runtime = os.path.join(self.dir, "r")
        self.log_path = os.path.join(self.dir, "log")
        self.db_path = os.path.join(self.storage, "pystack.db")
        self.sections = {}
        self.write_conf(analysis=analysis, storage=storage, capture=capture,
                        daemon=daemon, analyzer=analyzer)

    def write_conf(self, analysis="", storage="", capture="", daemon="",
                   analyzer=None):
        text = ("[Storage]\nDirectory=%s\nKeepFree=1G\nMaxUse=50%%\n%s\n"
                "[Capture]\nRateLimitBurst=0\n" + ("Mode=socket\n" if SOCKET else "") + "%s\n"
                "[Daemon]\nRuntimeDirectory=%s\n%s\n"
                "[Analysis]\nAnalyzer=%s\n%s\n") % (
                    self.storage, storage.strip(), capture.strip(),
                    self.runtime, daemon.strip(),
                    analyzer or programs.daemon_analyzer(), analysis.strip())
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.rename(tmp, self.conf)

    def handler_link(self):
        # the kernel takes at most 127 bytes: the handler is reached through a
        # short link next to the config, wherever the build tree is
        link = os.path.join(os.path.dirname(self.conf), "h")
        if os.path.realpath(link) != os.path.realpath(programs.coredump()):
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(programs.coredump(), link)
        return link

    def pattern(self):
        return "|%s --config=%s %%F %%P %%u %%g %%s %%t %%c %%h %%d %%e" % (
            self.handler_link(), self.conf)

    def handler_needle(self):
        return os.fsencode(self.handler_link()) + b"\0--config=" + \
            os.fsencode(self.conf) + b"\0"

    def install(self):
        self.fx.set_pattern(self.pattern())

    def daemon(self, journald=None):
        return Daemon(self.conf, self.log_path,
                      journald.prefix if journald else ())

    # -- SQLite
    def query(self, sql, args=()):
        if not os.path.exists(self.db_path):
            return []
        con = sqlite3.connect(self.db_path, timeout=30)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql, args)]
        finally:
            con.close()

    def crashes(self):
        return self.query("SELECT * FROM crashes ORDER BY id")

    def states(self):
        return dict((r["state"], r["n"]) for r in self.query(
            "SELECT state, count(*) AS n FROM crashes GROUP BY state"))

    def wait(self, pred, timeout, interval=0.1):
        """Poll crashes() until pred(rows) is true; returns (ok, rows)."""
        deadline = time.time() + timeout
        while True:
            try:
                rows = self.crashes()
            except sqlite3.Error:
                rows = None
            if rows is not None and pred(rows):
                return True, rows
            if time.time() > deadline:
                return False, rows or []
            time.sleep(interval)

    def wait_rows(self, n, timeout=120):
        ok, rows = self.wait(lambda rs: len(rs) >= n, timeout)
        if ok:
            # and let the handlers finish (the row is written last); the
            # needle is the handler's argv[0] and --config= (pystackd's
            # command line has the --config= too)
            corepattern.wait_handlers_gone(self.handler_needle(), 60)
        return ok, self.crashes() if ok else rows

    def wait_settled(self, n, timeout):
        """n rows, none pending or running."""
        return self.wait(lambda rs: len(rs) >= n and all(
            r["state"] in ("done", "failed") for r in rs), timeout)

    def wait_row(self, pred, timeout=120):
        """The last row pred holds for, once one does (or None), and all rows."""
        ok, rows = self.wait(lambda rs: any(pred(r) for r in rs), timeout)
        hit = [r for r in rows if pred(r)]
        return (hit[-1] if hit else None), rows

    def report_of(self, cid):
        """Crash cid's stored report, parsed, or None."""
        r = self.query("SELECT report FROM crashes WHERE id = ?", (cid,))
        return json.loads(r[0]["report"]) if r and r[0]["report"] else None


def frames_of(rep, kind):
    """The functions of the crashed thread's frames of one kind ("python", "native")."""
    return [f.get("function") for t in (rep or {}).get("threads", [])[:1] for f in t.get("frames", [])
            if f.get("kind") == kind]


def brief(r):
    return ("id=%s pid=%s state=%s attempts=%s error=%r core_state=%s "
            "signature=%s" % (r.get("id"), r.get("pid"), r.get("state"),
                              r.get("attempts"), r.get("error"),
                              r.get("core_state"), r.get("signature")))


# ---------------------------------------------------------------------------
# the crashing worker

WORKER_SOURCE = r'''# -*- coding: utf-8 -*-
"""A Python process for test_pystackd.py / bench-pystackd to crash:
    worker.py EXPECT_JSON [HEAP_MIB]
It builds HEAP_MIB MiB of small objects, starts a thread named pw-idler,
then main() -> tuple(f(1)) -> the generator f -> time.sleep (C frames
PySequence_Tuple... between main and f): it writes
EXPECT_JSON, prints "ready" and sleeps until the parent's SIGSEGV."""
import ctypes
import json
import os
import sys
import threading
import time


def rss_kib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def build_heap(mib):
    keep = []
    target = mib << 10
    i = 0
    while mib and rss_kib() < target:
        keep.append([("obj-%d" % j, j, j * 0.5) for j in range(i, i + 10000)])
        i += 10000
    return keep


def idle(started, stop):
    libc = ctypes.CDLL(None)
    libc.prctl(15, b"pw-idler", 0, 0, 0)
    started.set()
    stop.wait()


def f(item):
    payload = "crash-me-%d" % item
    ready(item)
    time.sleep(3600)  # CRASH-SITE
    yield payload


def lines():
    me = {}
    with open(__file__) as fh:
        for n, text in enumerate(fh, 1):
            for tag in ("CRASH-SITE", "CALL-F", "CALL-MAIN"):
                if "# " + tag in text and not text.lstrip().startswith("for"):
                    me[tag] = n
    return me


def ready(item):
    info = {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(),
            "argv": sys.argv, "exe": os.readlink("/proc/self/exe"),
            "comm": open("/proc/self/comm").read().strip(),
            "cwd": os.getcwd(), "rss_kib": rss_kib(), "lines": lines(),
            "tids": sorted(int(t) for t in os.listdir("/proc/self/task"))}
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(info, fh)
    os.rename(tmp, sys.argv[1])
    sys.stdout.write("ready\n")
    sys.stdout.flush()


def main():
    keep = build_heap(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    started, stop = threading.Event(), threading.Event()
    t = threading.Thread(target=idle, args=(started, stop), daemon=True)
    t.start()
    started.wait()
    tuple(f(1))  # CALL-F
    return keep


main()  # CALL-MAIN
'''


def write_worker(directory, name="worker.py"):
    path = os.path.join(directory, name)
    with open(path, "w") as fh:
        fh.write(WORKER_SOURCE)
    os.chmod(path, 0o644)
    return path


def child_env():
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("PYTHON") or k.startswith("PYENV"):
            del env[k]
    env["LC_ALL"] = "C.UTF-8"
    return env


class Worker(object):
    def __init__(self, fx, store, interp=SYSTEM_PYTHON, heap_mib=0, tag="0",
                 script=None):
        self.script = script or os.path.join(store.dir, "worker.py")
        if not os.path.exists(self.script):
            write_worker(os.path.dirname(self.script),
                         os.path.basename(self.script))
        self.expect_path = os.path.join(store.dir, "expect.%s.json" % tag)
        self.argv = [interp, "-E", "-s", "-B", "worker.py", self.expect_path]
        if heap_mib:
            self.argv.append(str(heap_mib))
        self.fx = fx
        self.p = subprocess.Popen(self.argv, cwd=os.path.dirname(self.script),
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL,
                                  start_new_session=True, env=child_env())
        fx.children.add(self.p)
        self.pid = self.p.pid
        self.returncode = None
        self.kill_time = None

    def wait_ready(self, timeout=120):
        import select
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not r:
            return False
        if self.p.stdout.readline().strip() != b"ready":
            return False
        return self.wait_sleeping()

    def wait_sleeping(self, timeout=10):
        """"ready" is printed just before time.sleep(): wait until the main
        thread is in clock_nanosleep (x86-64 syscall 230), so that the
        SIGSEGV finds it at the CRASH-SITE line and not still in ready()."""
        path = "/proc/%d/task/%d/syscall" % (self.pid, self.pid)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with open(path) as fh:
                    if fh.read().split(" ", 1)[0] == "230":
                        return True
            except OSError:
                time.sleep(0.2)        # cannot tell: give it time
                return self.p.poll() is None
            time.sleep(0.005)
        return False

    def expect(self):
        with open(self.expect_path) as fh:
            return json.load(fh)

    def send_crash(self):
        self.kill_time = time.time()
        os.kill(self.p.pid, signal.SIGSEGV)

    def reap(self, timeout=60):
        try:
            self.returncode = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            self.returncode = None
        self.fx.children.discard(self.p)
        self.p.stdout.close()
        return self.returncode

    def crash(self, timeout=60):
        self.send_crash()
        return self.reap(timeout)

    def discard(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.fx.children.discard(self.p)
        self.p.stdout.close()


def crash_many(fx, store, n, interp=SYSTEM_PYTHON, batch=25, heap_mib=0,
               tag="m"):
    """n workers crashed with SIGSEGV, batch at a time; returns
    (workers, diag).  Waits for the n rows."""
    diag = []
    workers = []
    base = len(store.crashes())
    for start in range(0, n, batch):
        ws = [Worker(fx, store, interp, heap_mib, tag="%s%d" % (tag, i))
              for i in range(start, min(n, start + batch))]
        for w in ws:
            if not w.wait_ready():
                diag.append("worker %d not ready" % w.pid)
        for w in ws:
            w.send_crash()
        for w in ws:
            rc = w.reap()
            if rc != -signal.SIGSEGV:
                diag.append("worker %d: returncode %r" % (w.pid, rc))
        workers += ws
        ok, rows = store.wait_rows(base + len(workers))
        if not ok:
            diag.append("only %d of %d rows recorded" % (len(rows),
                                                         base + len(workers)))
            break
    return workers, diag
