#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: pystack-coredump as the kernel's core_pattern pipe handler,
with real crashing processes.

Run as root from the build directory (after `make`):

    /usr/bin/python3 ../tests/integration/test_capture.py

Environment:
  PYSTACK_COREDUMP   handler under test  } default: below the build directory,
  PYSTACK            analyzer            } harness/programs.py
  PYSTACK_TEST_ONLY  regular expression over the case names (case1 ...
                     case9); the others are not run
  PYSTACK_CAPTURE_KEEP=1  keep the scratch directory /tmp/pystackd-incoming.*

Every case has its own 0700 directory below one scratch directory
/tmp/pystackd-incoming.XXXXXXXX (config `c`, storage `s`), installs
`|<handler> --config=<dir>/c %F %P %u %g %s %t %c %h %d %e` and crashes real
processes (capture_child.py, or /usr/bin/sleep) with SIGSEGV sent by this
process.  core_pattern and core_pipe_limit (set to 64 while the test runs)
are changed under the flock of harness/corepattern.py and restored on every
exit path (its PipeHandlerFixture).  Each case is bounded in time; the whole run is
bounded by a watchdog (PYSTACK_CAPTURE_TIMEOUT seconds, default 900).

PYSTACK_CAPTURE_MODE=socket runs the same cases through the coredump socket
([Capture] Mode=socket, Linux 6.17+): each case installs the pipe pattern,
then runs the listener (pystack-coredump --listen), which switches
core_pattern to "@@<dir>/r/coredump.socket"; what differs is said in each
case (no tee can stand between the kernel and the socket, the signal is
read from the core later, a crash not kept is rejected rather than
forwarded).  A kernel without the socket is a SKIP.

Cases: 1 byte identity (+ the analyzer on the stored .zst), 2 metadata of
Debian's python3.11 and one pyenv CPython, 3 twenty crashes at once,
4 state pending without pystackd, 5 MaxCoreSize, 6 a full disk (tmpfs),
7 a crash loop (rate limit), 8 Processes=python forwarding / Processes=all,
9 the command line.
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import stat
import struct
import subprocess
import sys
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cores  # noqa: E402
from harness import corepattern  # noqa: E402
from harness import programs  # noqa: E402
from harness.corepattern import CoreLock  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP, Watchdog, run_case, watchdog  # noqa: E402

CHILD = os.path.join(HERE, "capture_child.py")
SYSTEM_PYTHON = "/usr/bin/python3.11"
SLEEP = "/usr/bin/sleep"
SIGSEGV = signal.SIGSEGV
READY_TIMEOUT = 60          # child start (+ allocation)
CRASH_TIMEOUT = 60          # kill -> reap
HANDLER_TIMEOUT = 120       # reap -> row recorded and handlers gone
ANALYZE_TIMEOUT = 60
UINT64_MAX = (1 << 64) - 1
# argument with spaces, a newline and bytes that are not UTF-8
ODD_ARG = b"two words\nnext line \xff\xfe\x80 end"


MODE = os.environ.get("PYSTACK_CAPTURE_MODE", "pipe")
SOCKET = MODE == "socket"
LISTENER = [None]           # the listener of the case being run (socket mode)


def handler_path():
    return programs.coredump()


def stop_listener():
    """SIGTERM: it puts the pipe pattern back; its connections' processes finish on their own."""
    p = LISTENER[0]
    LISTENER[0] = None
    if p is None:
        return
    p.terminate()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def socket_supported():
    try:
        with open("/proc/sys/kernel/core_modes") as fh:
            return "socket" in fh.read().split()
    except OSError:
        return False


# --------------------------------------------------------------------------
# helpers

class Case(object):
    """One case: its directory, config, storage and pattern."""

    def __init__(self, fx, name, conf, storage=None, handler=None):
        self.fx = fx
        self.name = name
        self.dir = fx.mkdir(name)
        self.conf = os.path.join(self.dir, "c")
        self.storage = storage or os.path.join(self.dir, "s")
        self.handler = handler or handler_path()
        text = "[Storage]\nDirectory=%s\n%s\n[Daemon]\nRuntimeDirectory=%s\n" \
            % (self.storage, conf.strip(), os.path.join(self.dir, "r"))
        # conf holds "[Capture]" lines too: sections may repeat
        with open(self.conf, "w") as fh:
            fh.write(text)
        os.chmod(self.conf, 0o600)
        self.cores = os.path.join(self.storage, "cores")
        self.db = os.path.join(self.storage, "pystack.db")

    def pattern(self, handler=None):
        # The kernel takes at most 127 bytes: a build tree anywhere must fit,
        # so the handler is reached through a short link in the case's dir.
        target = handler or self.handler
        link = os.path.join(self.dir, "h")
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(target, link)
        return "|%s --config=%s %%F %%P %%u %%g %%s %%t %%c %%h %%d %%e" \
            % (link, self.conf)

    def install(self, handler=None):
        if not SOCKET:
            self.fx.set_pattern(self.pattern(handler))
            return
        # the listener is pystack-coredump itself: a wrapper cannot stand in front of a socket
        stop_listener()
        self.fx.set_pattern(self.pattern())
        self.listener_log = os.path.join(self.dir, "listener.log")
        env = dict(os.environ, PYSTACK_COREDUMP_STDERR="1")
        with open(self.listener_log, "ab") as log:
            p = subprocess.Popen([os.path.join(self.dir, "h"), "--config=" + self.conf, "--listen"],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                 start_new_session=True)
        self.fx.children.add(p)
        LISTENER[0] = p
        want = "@@" + os.path.join(self.dir, "r", "coredump.socket")
        deadline = time.time() + 10
        while corepattern.read_core_pattern() != want:
            if p.poll() is not None or time.time() > deadline:
                with open(self.listener_log, "rb") as fh:
                    raise RuntimeError("the listener did not install %s (exit %r): %s"
                                       % (want, p.poll(), fh.read().decode("utf-8", "replace")))
            time.sleep(0.02)

    def handlers(self):
        """The processes taking this case's crashes: pipe handlers, or the listener's children."""
        return corepattern.handler_pids(self.conf)

    def listener_lines(self):
        try:
            with open(self.listener_log, "rb") as fh:
                return fh.read().decode("utf-8", "replace").splitlines()
        except (OSError, AttributeError):
            return []

    def rows(self):
        if not os.path.exists(self.db):
            return []
        con = sqlite3.connect(self.db, timeout=20)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in
                    con.execute("SELECT * FROM crashes ORDER BY id")]
        finally:
            con.close()

    def wait(self, nrows, timeout=HANDLER_TIMEOUT):
        """Wait for nrows rows and for every handler of this case to be
        gone; returns (rows, diag)."""
        t0 = time.time()
        diag = []
        rows = []
        while True:
            try:
                rows = self.rows()
            except sqlite3.Error as e:
                rows = []
                last = str(e)
            else:
                last = None
            if len(rows) >= nrows:
                break
            if time.time() - t0 > timeout:
                diag.append("only %d of %d rows after %ds%s" % (
                    len(rows), nrows, timeout,
                    " (sqlite: %s)" % last if last else ""))
                break
            if not self.handlers() and len(rows) < nrows:
                # no handler left: give the file system a moment, then stop
                time.sleep(0.3)
                try:
                    rows = self.rows()
                except sqlite3.Error:
                    pass
                if len(rows) < nrows:
                    diag.append("the handlers are gone and only %d of %d "
                                "rows were recorded" % (len(rows), nrows))
                    break
            time.sleep(0.05)
        left = max(1.0, timeout - (time.time() - t0))
        deadline = time.time() + left
        while self.handlers() and time.time() < deadline:
            time.sleep(0.02)
        if self.handlers():
            diag.append("handler processes still running: %s"
                        % self.handlers())
            for pid in self.handlers():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        try:
            rows = self.rows()
        except sqlite3.Error as e:
            diag.append("cannot read the store: %s" % e)
        return rows, diag

    def core_files(self):
        try:
            return sorted(os.listdir(self.cores))
        except OSError:
            return []


def spawn(fx, argv, cwd=None):
    p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         start_new_session=True, env=child_env())
    fx.children.add(p)
    return p


def child_env():
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("PYTHON") or k.startswith("PYENV"):
            del env[k]
    env["LC_ALL"] = "C.UTF-8"
    return env


def spawn_python(fx, case, interp, mode, extra=(), tag="x"):
    expect = os.path.join(case.dir, "expect.%s.json" % tag)
    argv = [interp, "-E", "-s", "-B", CHILD, expect, mode] + list(extra)
    p = spawn(fx, argv, cwd=case.dir)
    p.expect_path = expect
    return p


def wait_ready(p, timeout=READY_TIMEOUT):
    r, _, _ = select.select([p.stdout], [], [], timeout)
    if not r:
        return False
    return p.stdout.readline().strip() == b"ready"


def expectation(p):
    with open(p.expect_path) as fh:
        return json.load(fh)


def crash(fx, p, timeout=CRASH_TIMEOUT):
    """SIGSEGV, then wait for the reap: (returncode or None, seconds)."""
    t0 = time.monotonic()
    os.kill(p.pid, SIGSEGV)
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        rc = None
    dt = time.monotonic() - t0
    fx.children.discard(p)
    if p.stdout:
        p.stdout.close()
    return rc, dt


def decompress(path, timeout=120):
    r = subprocess.run(["zstd", "-q", "-d", "-c", path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def first_difference(a, b):
    n = min(len(a), len(b))
    step = 1 << 16
    for off in range(0, n, step):
        if a[off:off + step] != b[off:off + step]:
            for i in range(off, min(off + step, n)):
                if a[i] != b[i]:
                    return i
    return n if len(a) != len(b) else None


def elf_core_extent(data):
    """max(p_offset + p_filesz) over the program headers of an ELF core,
    or None when it is not an ELF64 little-endian core."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2:
        return None
    e_type, = struct.unpack_from("<H", data, 16)
    e_phoff, = struct.unpack_from("<Q", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    if e_type != 4:
        return None
    end = e_phoff + e_phentsize * e_phnum
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        if off + 56 > len(data):
            return None
        _, _, p_offset, _, _, p_filesz, _, _ = struct.unpack_from(
            "<IIQQQQQQ", data, off)
        end = max(end, p_offset + p_filesz)
    return end


def expected_unit(cgroup):
    unit = None
    for part in (cgroup or "").split("/"):
        if (len(part) > 8 and part.endswith(".service")) or \
                (len(part) > 6 and part.endswith(".scope")):
            unit = part
    return unit


def row_brief(r):
    return "id=%s pid=%s comm=%s core_state=%s state=%s suppressed=%s " \
        "core_path=%s core_size=%s note=%s" % (
            r.get("id"), r.get("pid"), r.get("comm"), r.get("core_state"),
            r.get("state"), r.get("suppressed"), r.get("core_path"),
            r.get("core_size"), r.get("capture_note"))


def pystackd_running(conf):
    """pids of the pystackds that serve the configuration conf (not one of
    the host's own, e.g. contrib/quickstart's)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % d) as fh:
                if fh.read().strip() != "pystackd":
                    continue
        except OSError:
            continue
        if os.fsencode(conf) in corepattern.cmdline(d):
            out.append(int(d))
    return out


def pick_pyenv():
    best = None
    for i in cores.find_interpreters():
        if i.origin != "pyenv" or not i.version.startswith("3."):
            continue
        if int(i.version.split(".")[1]) < 6:
            continue
        best = i      # sorted by version: the last is the newest
    return best


# --------------------------------------------------------------------------
# cases

def case1_identity(tap, fx):
    """Byte identity through a tee wrapper; the analyzer on the .zst."""
    c = Case(fx, "1", "[Capture]\nRateLimitBurst=100")
    raw = os.path.join(c.dir, "raw")
    wrapper = os.path.join(c.dir, "w")
    with open(wrapper, "w") as fh:
        fh.write("#!/bin/sh\n# tee the core aside, then the real handler\n"
                 "/usr/bin/tee %s | %s \"$@\"\n" % (raw, c.handler))
    os.chmod(wrapper, 0o700)
    c.install(handler=wrapper)
    p = spawn_python(fx, c, SYSTEM_PYTHON, "meta")
    if not tap.ok(wait_ready(p), "case1: the child is ready"):
        return
    rc, dt = crash(fx, p)
    rows, diag = c.wait(1)
    tap.ok(rc == -SIGSEGV and len(rows) == 1 and not diag,
           "case1: the crash through the tee wrapper is recorded",
           diag + ["returncode %r, %d rows" % (rc, len(rows))]
           + [row_brief(r) for r in rows])
    if not rows or not rows[0].get("core_path"):
        tap.ok(False, "case1: stored core decompresses to the raw core",
               ["no stored core"] + [row_brief(r) for r in rows])
        return
    stored = os.path.join(c.storage, rows[0]["core_path"])
    with open(raw, "rb") as fh:
        raw_bytes = fh.read()
    zrc, plain, zerr = decompress(stored)
    d = []
    if zrc != 0:
        d.append("zstd -d failed (%d): %s" % (zrc, zerr.strip()))
    else:
        off = first_difference(plain, raw_bytes)
        if off is not None:
            d.append("differ at byte %d: stored decompresses to %d bytes, "
                     "the raw core has %d" % (off, len(plain), len(raw_bytes)))
    if rows[0].get("core_size") != len(raw_bytes):
        d.append("core_size %r, raw core %d bytes"
                 % (rows[0].get("core_size"), len(raw_bytes)))
    if rows[0].get("core_stored_size") != os.path.getsize(stored):
        d.append("core_stored_size %r, file %d bytes"
                 % (rows[0].get("core_stored_size"), os.path.getsize(stored)))
    tap.ok(not d and len(raw_bytes) > 0,
           "case1: zstd -d of the stored core equals the raw core "
           "(%d bytes)" % len(raw_bytes), d)
    # analyzer: raw core and stored .zst give the same report
    r_raw = run_pystack(["core", raw, "--json"], ANALYZE_TIMEOUT)
    r_zst = run_pystack(["core", stored, "--json"], ANALYZE_TIMEOUT)
    d = []
    rep_raw = rep_zst = None
    if r_raw.rc != 0:
        d += ["the analyzer fails on the raw core:"] + r_raw.describe()
    else:
        rep_raw = r_raw.json()
    if r_zst.rc != 0:
        d += ["the analyzer fails on the stored .zst:"] + r_zst.describe()
    else:
        try:
            rep_zst = r_zst.json()
        except ValueError as e:
            d += ["not JSON: %s" % e] + r_zst.describe()
    if rep_raw is not None and rep_zst is not None:
        for k in sorted(set(rep_raw) | set(rep_zst)):
            if k == "core":
                continue
            if rep_raw.get(k) != rep_zst.get(k):
                d.append("%s differs: raw %s / zst %s" % (
                    k, json.dumps(rep_raw.get(k))[:300],
                    json.dumps(rep_zst.get(k))[:300]))
        nthreads = len(rep_raw.get("threads") or [])
        nframes = sum(len(t.get("frames") or [])
                      for t in rep_raw.get("threads") or [])
        if nthreads < 3 or nframes == 0:
            d.append("raw report has %d threads, %d frames: expected the "
                     "3 threads of the child" % (nthreads, nframes))
    tap.ok(not d, "case1: pystack core STORED.zst --json gives the same "
           "threads and frames as on the raw core", d)


def core_bytes_at(core, addr, n):
    """n bytes of an ELF64 core's memory at addr (one PT_LOAD holds them), or None."""
    phoff, = struct.unpack_from("<Q", core, 0x20)
    phnum, = struct.unpack_from("<H", core, 0x38)
    for k in range(phnum):
        p_type, _, p_off, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", core, phoff + 56 * k)
        if p_type == 1 and p_vaddr <= addr and addr + n <= p_vaddr + p_filesz:
            return core[p_off + addr - p_vaddr:p_off + addr - p_vaddr + n]
    return None


def case1_identity_socket(tap, fx):
    """Socket mode: no tee can sit between the kernel and the socket, so the stored core is checked
    against the process itself: a complete ELF core of exactly core_size bytes whose memory holds
    the 64 KiB of random bytes the child put at the address it named, and the analyzer's stack."""
    c = Case(fx, "1", "[Capture]\nRateLimitBurst=100")
    c.install()
    p = spawn_python(fx, c, SYSTEM_PYTHON, "meta")
    if not tap.ok(wait_ready(p), "case1: the child is ready"):
        return
    exp = expectation(p)
    rc, dt = crash(fx, p)
    rows, diag = c.wait(1)
    if not tap.ok(rc == -SIGSEGV and len(rows) == 1 and not diag and rows[0].get("core_path"),
                  "case1: the crash through the coredump socket is recorded",
                  diag + ["returncode %r, %d rows" % (rc, len(rows))] + [row_brief(r) for r in rows] +
                  c.listener_lines()[-5:]):
        return
    stored = os.path.join(c.storage, rows[0]["core_path"])
    zrc, plain, zerr = decompress(stored)
    d = []
    if zrc != 0:
        d.append("zstd -d failed (%d): %s" % (zrc, zerr.strip()))
    else:
        with open(p.expect_path + ".marker", "rb") as fh:
            marker = fh.read()
        if len(plain) != rows[0].get("core_size"):
            d.append("decompressed %d bytes, core_size %r" % (len(plain), rows[0].get("core_size")))
        if elf_core_extent(plain) != len(plain):
            d.append("the program headers reach %r, the core has %d bytes" % (elf_core_extent(plain), len(plain)))
        got = core_bytes_at(plain, exp["marker"], len(marker)) if exp.get("marker") else None
        if got != marker:
            d.append("the 64 KiB at 0x%x are %s" % (exp.get("marker") or 0,
                                                     "not in the core" if got is None else "not the child's"))
    if rows[0].get("core_stored_size") != os.path.getsize(stored):
        d.append("core_stored_size %r, file %d bytes" % (rows[0].get("core_stored_size"), os.path.getsize(stored)))
    tap.ok(not d, "case1: zstd -d of the stored core is a whole ELF core of core_size bytes holding the "
           "child's 64 KiB of random bytes at their address", d)
    r = run_pystack(["core", stored, "--json"], ANALYZE_TIMEOUT)
    try:
        rep = r.json() if r.rc == 0 else {}
    except ValueError:
        rep = {}
    nframes = sum(len(t.get("frames") or []) for t in rep.get("threads") or [])
    tap.ok(len(rep.get("threads") or []) >= 3 and nframes > 0 and (rep.get("signal") or {}).get("number") == 11,
           "case1: pystack core STORED.zst reads the child's 3 threads, its frames and SIGSEGV",
           r.describe()[:6])


def check_metadata(tap, c, label, exp, row, t_kill, t_reap, boot_id):
    tag = "case2 %s" % label
    d = []
    # the coredump socket does not tell the signal (6.18): 0 until pystackd reads it from the core
    for k, want in (("pid", exp["pid"]), ("pid_ns", exp["pid"]),
                    ("uid", exp["uid"]), ("gid", exp["gid"]),
                    ("signal", 0 if SOCKET else int(SIGSEGV))):
        if row.get(k) != want:
            d.append("%s: expected %r, got %r" % (k, want, row.get(k)))
    tap.ok(not d, "%s: pid, pid_ns, uid, gid, signal%s" % (tag, " (0: not told)" if SOCKET else ""), d)

    d = []
    for k in ("comm", "exe", "cwd"):
        if row.get(k) != exp[k]:
            d.append("%s: expected %r, got %r" % (k, exp[k], row.get(k)))
    tap.ok(not d, "%s: comm, exe, cwd" % tag, d)

    d = []
    want = bytes.fromhex(exp["cmdline_hex"]).split(b"\0")[:-1]
    try:
        # non-UTF-8 bytes are stored as lone surrogates U+DC80..U+DCFF
        got = [s.encode("utf-8", "surrogateescape")
               for s in json.loads(row.get("cmdline") or "null")]
    except (ValueError, TypeError, UnicodeError) as e:
        got = None
        d.append("cmdline is not a JSON array of strings: %s: %r"
                 % (e, row.get("cmdline")))
    if got is not None and got != want:
        d.append("cmdline: expected %r" % want)
        d.append("            got %r" % got)
        d.append("stored JSON: %s" % row.get("cmdline"))
    if ODD_ARG not in want:
        d.append("the child's command line lacks the odd argument")
    tap.ok(not d, "%s: cmdline JSON round-trips to the exact bytes "
           "(spaces, newline, non-UTF-8)" % tag, d)

    d = []
    try:
        tn = json.loads(row.get("thread_names") or "null")
        got = sorted([int(t), n] for t, n in tn)
    except (ValueError, TypeError) as e:
        got = None
        d.append("thread_names: %s: %r" % (e, row.get("thread_names")))
    want = sorted([int(t), n] for t, n in exp["threads"])
    if got is not None and got != want:
        d.append("thread_names: expected %r, got %r" % (want, got))
    names = set(n for _, n in want)
    if not {"pc-worker-1", "pc worker 2"} <= names:
        d.append("the child did not name its threads: %r" % want)
    tap.ok(not d, "%s: thread names (prctl PR_SET_NAME)" % tag, d)

    d = []
    if row.get("cgroup") != exp["cgroup"]:
        d.append("cgroup: expected %r, got %r" % (exp["cgroup"],
                                                   row.get("cgroup")))
    if row.get("unit") != expected_unit(exp["cgroup"]):
        d.append("unit: expected %r (from cgroup %r), got %r"
                 % (expected_unit(exp["cgroup"]), exp["cgroup"],
                    row.get("unit")))
    for k in ("cgroup", "unit"):
        if k not in row:
            d.append("no column %s" % k)
    if row.get("container") != 0:
        d.append("container: expected 0 (false), got %r"
                 % row.get("container"))
    tap.ok(not d, "%s: cgroup %r, unit %r, container false"
           % (tag, exp["cgroup"], expected_unit(exp["cgroup"])), d)

    d = []
    if row.get("rlimit_core") != exp["rlimit_core"]:
        d.append("rlimit_core: expected %r, got %r"
                 % (exp["rlimit_core"], row.get("rlimit_core")))
    if row.get("dumpable") != 1:
        d.append("dumpable: expected 1, got %r" % row.get("dumpable"))
    tap.ok(not d, "%s: rlimit_core, dumpable" % tag, d)

    d = []
    if row.get("boot_id") != boot_id or exp["boot_id"] != boot_id:
        d.append("boot_id: expected %r, got %r" % (boot_id,
                                                   row.get("boot_id")))
    if row.get("hostname") != socket.gethostname():
        d.append("hostname: expected %r, got %r"
                 % (socket.gethostname(), row.get("hostname")))
    tu = row.get("time_usec") or 0
    if not (t_kill - 2) * 1e6 <= tu <= (t_reap + 2) * 1e6:
        d.append("time_usec %r is not between the kill (%.3f) and the reap "
                 "(%.3f)" % (tu, t_kill, t_reap))
    tap.ok(not d, "%s: boot_id, hostname, time" % tag, d)

    d = []
    if row.get("state") != "pending":
        d.append("state: expected 'pending', got %r" % row.get("state"))
    if row.get("core_state") != "present":
        d.append("core_state: expected 'present', got %r (%s)"
                 % (row.get("core_state"), row.get("capture_note")))
    tap.ok(not d, "%s: state pending, core_state present" % tag, d)

    d = []
    rel = row.get("core_path") or ""
    path = os.path.join(c.storage, rel)
    m = re.match(r"^cores/core\.([^./][^/]*)\.(\d+)\.([^./]+)\.(\d+)\.(\d+)"
                 r"\.zst$", rel)
    if not m:
        d.append("core_path %r is not cores/core.<comm>.<uid>.<bootid>."
                 "<pid>.<usec>.zst" % rel)
    else:
        comm, uid, bid, pid, usec = m.groups()
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", exp["comm"])
        if comm != safe:
            d.append("name: comm %r, expected %r" % (comm, safe))
        if int(uid) != exp["uid"] or int(pid) != exp["pid"]:
            d.append("name: uid %s pid %s, expected %d %d"
                     % (uid, pid, exp["uid"], exp["pid"]))
        if re.sub(r"[-_]", "", bid) != boot_id.replace("-", ""):
            d.append("name: boot id %r is not the boot id %r (truncated?)"
                     % (bid, boot_id))
        if int(usec) != row.get("time_usec"):
            d.append("name: usec %s, time_usec %r" % (usec,
                                                      row.get("time_usec")))
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o600 \
                or st.st_uid != 0:
            d.append("%s: mode %o uid %d, expected a regular file 0600 root"
                     % (rel, st.st_mode, st.st_uid))
        if row.get("core_stored_size") != st.st_size:
            d.append("core_stored_size %r, file size %d"
                     % (row.get("core_stored_size"), st.st_size))
    except OSError as e:
        d.append("stored core: %s" % e)
    try:
        st = os.lstat(c.cores)
        if stat.S_IMODE(st.st_mode) != 0o700 or st.st_uid != 0:
            d.append("cores dir: mode %o uid %d, expected 0700 root"
                     % (stat.S_IMODE(st.st_mode), st.st_uid))
    except OSError as e:
        d.append("cores dir: %s" % e)
    if os.path.exists(path):
        zrc, plain, zerr = decompress(path)
        if zrc != 0:
            d.append("zstd -d: %s" % zerr.strip())
        elif len(plain) != row.get("core_size"):
            d.append("decompressed %d bytes, core_size %r"
                     % (len(plain), row.get("core_size")))
        elif elf_core_extent(plain) is None or \
                elf_core_extent(plain) > len(plain):
            d.append("decompressed core is not a complete ELF core")
    tap.ok(not d, "%s: core file name, 0600 root file in a 0700 dir, sizes"
           % tag, d)


def case2_metadata(tap, fx, label, interp, boot_id, check_pending=False):
    name = "2" + ("s" if label.startswith("system") else "p")
    c = Case(fx, name, "[Capture]\nRateLimitBurst=100")
    c.install()
    # the odd argument is given as bytes: the child's argv is exactly it
    p = spawn_python(fx, c, interp, "meta", [ODD_ARG])
    if not tap.ok(wait_ready(p), "case2 %s: the child is ready" % label):
        return
    exp = expectation(p)
    t_kill = time.time()
    rc, dt = crash(fx, p)
    t_reap = time.time()
    running = pystackd_running(c.conf)
    rows, diag = c.wait(1)
    ok = tap.ok(rc == -SIGSEGV and len(rows) == 1 and not diag,
                "case2 %s: one row for the crash" % label,
                diag + ["returncode %r, %d rows" % (rc, len(rows))]
                + [row_brief(r) for r in rows])
    if not rows:
        return
    check_metadata(tap, c, label, exp, rows[0], t_kill, t_reap, boot_id)
    if check_pending:
        d = []
        if running or pystackd_running(c.conf):
            d.append("pystackd is running: %s" % (running or
                                                  pystackd_running(c.conf)))
        if rows[0].get("state") != "pending":
            d.append("state %r" % rows[0].get("state"))
        # the handler makes nothing there (the listener does: its socket is there)
        if not SOCKET and os.path.exists(os.path.join(c.dir, "r")):
            d.append("the RuntimeDirectory %s was created"
                     % os.path.join(c.dir, "r"))
        tap.ok(not d and ok, "case4: with no pystackd running the crash is "
               "stored with state pending", d)


def case3_concurrent(tap, fx, n=20):
    c = Case(fx, "3", "[Capture]\nRateLimitBurst=100")
    c.install()
    kids = [spawn_python(fx, c, SYSTEM_PYTHON, "plain", tag=str(i))
            for i in range(n)]
    ready = [wait_ready(p) for p in kids]
    if not tap.ok(all(ready), "case3: %d children ready" % n,
                  ["%d not ready" % ready.count(False)]):
        for p in kids:
            p.kill()
            p.wait()
            fx.children.discard(p)
        return
    pids = set(p.pid for p in kids)
    t0 = time.monotonic()
    for p in kids:
        os.kill(p.pid, SIGSEGV)
    rcs = []
    for p in kids:
        left = max(1, CRASH_TIMEOUT - (time.monotonic() - t0))
        try:
            rcs.append(p.wait(timeout=left))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rcs.append(None)
        fx.children.discard(p)
        p.stdout.close()
    held = time.monotonic() - t0
    rows, diag = c.wait(n, timeout=HANDLER_TIMEOUT + 60)
    d = list(diag)
    if rcs.count(-SIGSEGV) != n:
        d.append("returncodes: %r" % rcs)
    if len(rows) != n:
        d.append("%d rows" % len(rows))
    if set(r["pid"] for r in rows) != pids:
        d.append("pids differ: missing %r, unexpected %r"
                 % (sorted(pids - set(r["pid"] for r in rows)),
                    sorted(set(r["pid"] for r in rows) - pids)))
    bad = [r for r in rows if r.get("core_state") != "present"
           or r.get("state") != "pending"]
    d += ["not present/pending: " + row_brief(r) for r in bad[:10]]
    files = c.core_files()
    named = set(os.path.basename(r.get("core_path") or "") for r in rows)
    if len(files) != n or set(files) != named:
        d.append("%d files in cores/, %d named by rows; unnamed files: %r"
                 % (len(files), len(named), sorted(set(files) - named)[:5]))
    tap.ok(not d, "case3: %d Python processes crashing at once: %d rows, "
           "%d cores, all present (all reaped in %.1fs)" % (n, n, n, held), d)


def case5_too_large(tap, fx):
    c = Case(fx, "5", "MaxCoreSize=1M\n[Capture]\nRateLimitBurst=100")
    c.install()
    p = spawn_python(fx, c, SYSTEM_PYTHON, "plain")
    if not tap.ok(wait_ready(p), "case5: the child is ready"):
        return
    rc, dt = crash(fx, p)
    rows, diag = c.wait(1)
    d = list(diag)
    if rc != -SIGSEGV:
        d.append("returncode %r" % rc)
    if len(rows) != 1:
        d.append("%d rows" % len(rows))
    for r in rows:
        if r.get("core_state") != "too-large" or r.get("core_path"):
            d.append(row_brief(r))
    files = c.core_files()
    if files:
        d.append("files left in cores/: %r" % files)
    tap.ok(not d, "case5: MaxCoreSize=1M: core_state too-large, no file "
           "in cores/ (process held %.2fs)" % dt, d)


def case6_full_disk(tap, fx):
    mnt = os.path.join(fx.root, "6", "m")
    c = Case(fx, "6", "KeepFree=0\nMaxUse=100%\n[Capture]\nRateLimitBurst=100",
             storage=os.path.join(mnt, "s"))
    try:
        fx.mount_tmpfs(mnt, "16m")
    except Exception as e:
        tap.ok(False, "case6: mount a 16M tmpfs", [str(e)])
        return
    try:
        c.install()
        p = spawn_python(fx, c, SYSTEM_PYTHON, "fill", ["64"])
        if not tap.ok(wait_ready(p), "case6: the child is ready (64 MiB)"):
            return
        exp = expectation(p)
        rc, dt = crash(fx, p)
        rows, diag = c.wait(1, timeout=60)
        d = list(diag)
        if rc != -SIGSEGV:
            d.append("returncode %r" % rc)
        tap.ok(rc == -SIGSEGV and dt < 30, "case6: the process is released "
               "within 30s on a full disk (held %.2fs, RSS %d MiB)"
               % (dt, exp["rss_kib"] >> 10),
               ["returncode %r, held %.2fs" % (rc, dt)])
        if len(rows) != 1:
            d.append("%d rows" % len(rows))
            out = subprocess.run(["df", "-k", mnt], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=10)
            d += out.stdout.decode(errors="replace").splitlines()
            try:
                d.append("storage: %r" % os.listdir(c.storage))
            except OSError as e:
                d.append("storage: %s" % e)
        for r in rows:
            if r.get("core_state") != "no-space" or r.get("core_path"):
                d.append(row_brief(r))
        files = c.core_files()
        if files:
            d.append("files left in cores/: %r" % files)
        tap.ok(not d, "case6: a core larger than the disk: core_state "
               "no-space, no partial file in cores/", d)
        d = []
        if os.path.exists(c.db):
            try:
                con = sqlite3.connect(c.db, timeout=20)
                try:
                    res = [r[0] for r in
                           con.execute("PRAGMA integrity_check")]
                finally:
                    con.close()
                if res != ["ok"]:
                    d.append("integrity_check: %r" % res[:5])
            except sqlite3.Error as e:
                d.append("sqlite: %s" % e)
        else:
            d.append("no store %s" % c.db)
        tap.ok(not d, "case6: the store passes PRAGMA integrity_check", d)
    finally:
        fx.reset_pattern()
        ok = fx.unmount(mnt)
        tap.ok(ok and not corepattern.mounts_below(fx.root),
               "case6: the tmpfs is unmounted",
               ["still mounted: %r" % corepattern.mounts_below(fx.root)])


def case7_rate_limit(tap, fx, n=8):
    c = Case(fx, "7", "[Capture]\nRateLimitBurst=3\nRateLimitIntervalSec=60")
    c.install()
    helds = []
    d = []
    for i in range(n):
        p = spawn_python(fx, c, SYSTEM_PYTHON, "plain", tag=str(i))
        if not wait_ready(p):
            d.append("child %d not ready" % i)
            p.kill()
            p.wait()
            fx.children.discard(p)
            break
        rc, dt = crash(fx, p)
        helds.append(dt)
        if rc != -SIGSEGV:
            d.append("child %d: returncode %r" % (i, rc))
        rows, diag = c.wait(i + 1)
        d += diag
        if diag:
            break
    rows = c.rows()
    states = [r.get("core_state") for r in rows]
    supp = [r.get("suppressed") for r in rows]
    want_states = ["present"] * 3 + ["rate-limited"] * (n - 3)
    want_supp = [0, 0, 0] + list(range(1, n - 2))
    if states != want_states:
        d.append("core_state: expected %r, got %r" % (want_states, states))
    if supp != want_supp:
        d.append("suppressed: expected %r, got %r" % (want_supp, supp))
    limited = [r for r in rows if r.get("core_state") == "rate-limited"]
    if any(r.get("core_path") for r in limited):
        d.append("rate-limited rows with a core_path")
    files = c.core_files()
    named = set(os.path.basename(r.get("core_path") or "")
                for r in rows if r.get("core_path"))
    if len(files) != 3 or set(files) != named:
        d.append("cores/: %r, named by rows: %r" % (files, sorted(named)))
    if any(r.get("state") != "pending" for r in rows[:3]):
        d.append("states: %r" % [r.get("state") for r in rows])
    tap.ok(not d, "case7: %d crashes, RateLimitBurst=3: 3 present, %d "
           "rate-limited with suppressed 1..%d, 3 cores" % (n, n - 3, n - 3),
           d + [row_brief(r) for r in rows if d])
    if SOCKET:
        said = [l for l in c.listener_lines() if "core rate-limited" in l]
        tap.ok(len(said) == n - 3 and all("(rejected: the kernel wrote 0 bytes of it)" in l for l in said),
               "case7: each rate-limited crash was rejected: the kernel wrote 0 bytes of its core",
               said or c.listener_lines()[-8:])
    if len(helds) == n:
        tap.ok(max(helds[3:]) < 5, "case7: a rate-limited process is "
               "released at once (held %s s)"
               % " ".join("%.2f" % h for h in helds),
               ["held: %r" % helds])


def write_previous_handler(c):
    """A previous pipe handler: stores argv (one per line), the byte count
    of its stdin and the core itself."""
    script = os.path.join(c.dir, "p")
    out = os.path.join(c.dir, "fwd")
    with open(script, "w") as fh:
        fh.write("#!/bin/sh\n"
                 "cat > %(o)s.core\n"
                 "fdl=$(readlink /proc/self/fd/${12} 2>&1)\n"
                 "{ for a in \"$0\" \"$@\"; do printf '%%s\\n' \"$a\"; done\n"
                 "  printf '%%s\\n' \"$fdl\"\n"
                 "  wc -c < %(o)s.core; } > %(o)s.tmp\n"
                 "mv %(o)s.tmp %(o)s\n" % {"o": out})
    os.chmod(script, 0o700)
    os.mkdir(c.storage, 0o700)
    prev = "|%s %%p %%P %%u %%g %%s %%t %%c %%h %%d %%e %%E %%F %%%%" % script
    with open(os.path.join(c.storage, "previous-core-pattern"), "w") as fh:
        fh.write(prev + "\n")
    return script, out


def spawn_sleep(fx):
    p = subprocess.Popen([SLEEP, "100"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    fx.children.add(p)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if os.readlink("/proc/%d/exe" % p.pid) == SLEEP:
                return p
        except OSError:
            pass
        time.sleep(0.01)
    return p


def case8_reject(tap, fx, c, script, out):
    """Socket mode: a crash Processes=python does not keep is rejected (no handler is chained):
    no row, the previous handler never runs, and the kernel writes none of the core."""
    p = spawn_sleep(fx)
    rc, dt = crash(fx, p)
    deadline = time.time() + 30
    while c.handlers() and time.time() < deadline:
        time.sleep(0.05)
    lines = [l for l in c.listener_lines() if "process %d (sleep) not captured" % p.pid in l]
    d = []
    if rc != -SIGSEGV:
        d.append("returncode %r" % rc)
    if c.rows():
        d.append("rows recorded for a non-Python process: %r" % [row_brief(r) for r in c.rows()])
    if os.path.exists(out):
        d.append("the previous handler ran")
    if len(lines) != 1 or "rejected, the kernel wrote 0 bytes of it" not in lines[0]:
        d.append("the listener's line: %r" % lines)
    tap.ok(not d, "case8: Processes=python: sleep is rejected through the socket (no row, no previous "
           "handler, 0 bytes of core written, released in %.2f s)" % dt, d + c.listener_lines()[-5:])


def case8_forward(tap, fx):
    c = Case(fx, "8", "[Capture]\nProcesses=python\nRateLimitBurst=100")
    script, out = write_previous_handler(c)
    c.install()
    if SOCKET:
        case8_reject(tap, fx, c, script, out)
        return case8_all(tap, fx)
    p = spawn_sleep(fx)
    t_kill = time.time()
    rc, dt = crash(fx, p)
    t_reap = time.time()
    deadline = time.time() + 30
    while not os.path.exists(out) and time.time() < deadline:
        time.sleep(0.05)
    corepattern.wait_handlers_gone(c.conf, 30)
    corepattern.wait_handlers_gone(script, 30)
    d = []
    if rc != -SIGSEGV:
        d.append("returncode %r" % rc)
    rows = c.rows()
    if rows:
        d.append("rows recorded for a non-Python process: %r"
                 % [row_brief(r) for r in rows])
    if not os.path.exists(out):
        d.append("the previous handler did not run (no %s)" % out)
        tap.ok(False, "case8: Processes=python: sleep is forwarded to the "
               "previous handler", d)
    else:
        with open(out) as fh:
            lines = fh.read().split("\n")
        args, fdlink, count = lines[:-3], lines[-3], lines[-2].strip()
        want = [script, str(p.pid), str(p.pid), str(os.getuid()),
                str(os.getgid()), str(int(SIGSEGV)), None,
                str(UINT64_MAX), socket.gethostname(), "1", "sleep",
                SLEEP.replace("/", "!"), None, "%"]
        names = ["argv0", "%p", "%P", "%u", "%g", "%s", "%t", "%c", "%h",
                 "%d", "%e", "%E", "%F", "%%"]
        if len(args) != len(want):
            d.append("%d arguments, expected %d: %r"
                     % (len(args), len(want), args))
        for i, (n, w) in enumerate(zip(names, want)):
            if i >= len(args):
                break
            if n == "%t":
                if not (args[i].isdigit() and
                        int(t_kill) - 1 <= int(args[i]) <= int(t_reap) + 1):
                    d.append("%%t: %r is not the time of the crash (%d)"
                             % (args[i], int(t_kill)))
            elif n == "%F":
                if not args[i].isdigit() or "pidfd" not in fdlink:
                    d.append("%%F: %r does not name a pidfd open in the "
                             "previous handler (readlink: %r)"
                             % (args[i], fdlink))
            elif args[i] != w:
                d.append("%s: expected %r (what the kernel would give), "
                         "got %r" % (n, w, args[i]))
        tap.ok(not d, "case8: Processes=python: sleep is forwarded to the "
               "previous handler with the expanded arguments", d)
        d = []
        try:
            with open(out + ".core", "rb") as fh:
                core = fh.read()
        except OSError as e:
            core = b""
            d.append(str(e))
        if count != str(len(core)):
            d.append("byte count %r, core file %d bytes" % (count, len(core)))
        ext = elf_core_extent(core)
        if ext is None:
            d.append("what it received is not an ELF core (%d bytes, starts "
                     "%r)" % (len(core), core[:16]))
        elif ext > len(core):
            d.append("truncated: %d bytes received, the program headers "
                     "reach %d" % (len(core), ext))
        tap.ok(not d and len(core) > 0, "case8: the previous handler "
               "received the full core (%s bytes)" % count, d)
    fx.reset_pattern()
    case8_all(tap, fx)


def case8_all(tap, fx):
    """The same crash with Processes=all is captured."""
    c2 = Case(fx, "8a", "[Capture]\nProcesses=all\nRateLimitBurst=100")
    script2, out2 = write_previous_handler(c2)
    c2.install()
    p = spawn_sleep(fx)
    rc, dt = crash(fx, p)
    rows, diag = c2.wait(1)
    d = list(diag)
    if rc != -SIGSEGV:
        d.append("returncode %r" % rc)
    if len(rows) != 1:
        d.append("%d rows" % len(rows))
    for r in rows:
        if r.get("core_state") != "present" or r.get("comm") != "sleep" or \
                r.get("exe") != SLEEP or r.get("pid") != p.pid or \
                r.get("state") != "pending":
            d.append(row_brief(r) + " exe=%s" % r.get("exe"))
        elif not os.path.exists(os.path.join(c2.storage, r["core_path"])):
            d.append("no file %s" % r["core_path"])
    if os.path.exists(out2):
        d.append("forwarded too")
    tap.ok(not d, "case8: Processes=all: the same crash of sleep is captured",
           d)


def stderr_on_tty(argv):
    """What argv writes to stderr when stderr is a pty (a person typing)."""
    import pty
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        slave = None
        chunks = []
        deadline = time.time() + 10
        while time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    b = os.read(master, 4096)
                except OSError:
                    break
                if not b:
                    break
                chunks.append(b)
            elif p.poll() is not None:
                break
        p.wait(timeout=10)
        return "exit %r, %r" % (p.returncode, b"".join(chunks)[:300])
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)


def case9_cli(tap):
    h = handler_path()
    env = dict(os.environ)
    env.pop("PYSTACK_COREDUMP_STDERR", None)
    r = subprocess.run([h, "--help"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10, env=env)
    tap.ok(r.returncode == 0 and r.stdout.startswith(b"Usage:"),
           "case9: pystack-coredump --help exits 0 with a usage",
           ["exit %r, stdout %r, stderr %r" % (r.returncode, r.stdout[:200],
                                               r.stderr[:200])])
    for args in ([], ["1"], ["1", "2", "0", "0", "11", "0", "0", "h", "1"],
                 ["1", "2", "0", "0", "11", "0", "0", "h", "1", "e", "x"],
                 ["--config=/nonexistent"]):
        r = subprocess.run([h] + args, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10, env=env)
        lines = r.stderr.decode(errors="replace").splitlines()
        d = ["exit %r, stdout %r, stderr %r" % (r.returncode, r.stdout[:200],
                                                r.stderr[:300])]
        if r.returncode == 2 and not lines:
            # does it say anything when asked to?
            env2 = dict(env, PYSTACK_COREDUMP_STDERR="1")
            r2 = subprocess.run([h] + args, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                timeout=10, env=env2)
            d.append("with PYSTACK_COREDUMP_STDERR=1: exit %r, stderr %r"
                     % (r2.returncode, r2.stderr[:300]))
            d.append("with stderr a terminal: %s" % stderr_on_tty([h] + args))
        tap.ok(r.returncode == 2 and len(lines) == 1 and not r.stdout,
               "case9: %d arguments%s: exit 2, one line on stderr"
               % (len(args), " (%s)" % args[0] if args and
                  args[0].startswith("--") else ""), d)


# --------------------------------------------------------------------------

def main():
    tap = TAP()
    only = os.environ.get("PYSTACK_TEST_ONLY")
    rx = re.compile(only) if only else None

    def want(name):
        return rx is None or rx.search(name)

    h = handler_path()
    if not os.access(h, os.X_OK):
        tap.ok(False, "handler %s is built" % h,
               ["build it first (make), or set PYSTACK_COREDUMP"])
        return tap.done()
    if want("case9"):
        if SOCKET:
            tap.skip("case9: the pipe handler's command line (test_socket.py has --listen's)")
        else:
            case9_cli(tap)
    if SOCKET and not socket_supported():
        tap.skip("socket mode: this kernel has no coredump socket (/proc/sys/kernel/core_modes lacks "
                 "\"socket\": Linux 6.16+, @@ 6.17+)")
        return tap.done()
    if os.geteuid() != 0:
        tap.skip("not root: core_pattern cannot be changed")
        return tap.done()
    for tool in ("zstd", "mount", "umount", "tee"):
        if not shutil.which(tool):
            tap.ok(False, "%s is installed" % tool)
            return tap.done()
    with open("/proc/sys/kernel/random/boot_id") as fh:
        boot_id = fh.read().strip()
    pyenv = pick_pyenv()
    cases = [
        ("case1", lambda fx: (case1_identity_socket if SOCKET else case1_identity)(tap, fx)),
        ("case2 system", lambda fx: case2_metadata(
            tap, fx, "system-3.11", SYSTEM_PYTHON, boot_id,
            check_pending=want("case4"))),
        ("case2 pyenv", lambda fx: case2_metadata(
            tap, fx, pyenv.label, pyenv.path, boot_id) if pyenv else
            tap.skip("case2: no pyenv CPython 3 under ~/.pyenv/versions")),
        ("case3", lambda fx: case3_concurrent(tap, fx)),
        ("case5", lambda fx: case5_too_large(tap, fx)),
        ("case6", lambda fx: case6_full_disk(tap, fx)),
        ("case7", lambda fx: case7_rate_limit(tap, fx)),
        ("case8", lambda fx: case8_forward(tap, fx)),
    ]
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        tap.skip("%s not installed" % SYSTEM_PYTHON)
        return tap.done()
    limit = int(os.environ.get("PYSTACK_CAPTURE_TIMEOUT", "900"))
    alarm = watchdog(limit)
    t_all = time.time()
    try:
        with corepattern.PipeHandlerFixture(pipe_limit=64) as fx:
            tap.diag("scratch %s, core_pattern %r / core_pipe_limit %s "
                     "restored at the end" % (fx.root, fx.original,
                                              fx.original_limit))
            try:
                for name, fn in cases:
                    if not want(name):
                        continue
                    run_case(tap, fx, name, lambda: fn(fx))
            finally:
                stop_listener()
    except Watchdog as e:
        tap.ok(False, "the test finished within %ds" % limit, [str(e)])
    finally:
        alarm.cancel()
    # under the lock: another test may hold it and have its own pattern,
    # pipe limit and mounts in place meanwhile
    with CoreLock():
        cp = corepattern.read_core_pattern()
        with open(corepattern.CORE_PIPE_LIMIT) as fh:
            pl = fh.read().strip()
        mounts = corepattern.mounts_below(corepattern.SCRATCH_PREFIX)
    tap.diag("mode: %s" % MODE)
    tap.ok(corepattern.MARKER not in cp and not mounts,
           "core_pattern (%r) and core_pipe_limit (%s) restored, no mounts "
           "left" % (cp, pl), ["mounts: %r" % mounts])
    tap.diag("%d tests, %d failed, %d skipped in %.0fs"
             % (tap.n, tap.failed, tap.skipped, time.time() - t_all))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
