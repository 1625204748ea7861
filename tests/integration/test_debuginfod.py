#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: `pystack core --native` finds a C extension's DWARF through
debuginfod, and shows "???"/line 0 for its frames without it.

For each interpreter (pyenv's and Debian's /usr/bin/python3.X), the test
  * builds cext/crashext.c with -g into a temporary directory, moves the
    DWARF into a separate file (objcopy --only-keep-debug, strip
    --strip-debug, --add-gnu-debuglink) and takes that file away from the
    module, so that only debuginfod can supply it;
  * makes a core of the cext_inline scenario that uses this module
    (PYSTACK_CRASHEXT_DIR), with CorePattern;
then starts Debian's `debuginfod -F` on 127.0.0.1:<free port> serving a
temporary directory holding the separate debug files, and checks:
  served      the server answers /buildid/<id>/debuginfo for each module
  without     DEBUGINFOD_URLS unset: the crashext frames have file "???"
              (null) and line 0 (in JSON and text)
  with        DEBUGINFOD_URLS=http://127.0.0.1:PORT, DEBUGINFOD_CACHE_PATH
              a fresh temporary directory: crash_in_helper at the helper's
              call line and crashext_deref_helper (inlined) at the
              faulting line, both in crashext.c

Only loopback: debuginfod 0.188 cannot choose its listen address, so the
test re-executes itself in a private network namespace (`unshare --net`,
only `lo` up): the server is reachable from nowhere else.  Without
unshare (or without the privilege) the test is skipped.  The server is
stopped on every exit path (finally, atexit, SIGTERM/SIGINT/SIGHUP).

Environment: PYSTACK, PYSTACK_WRAPPER, PYSTACK_TIMEOUT (default 60),
PYSTACK_TEST_ONLY (regular expression over the interpreter label).
"""
from __future__ import print_function

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(HERE, "cext"))
import cores  # noqa: E402
import build as crashext_build  # noqa: E402
from harness import programs  # noqa: E402
from harness.corepattern import CorePattern  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP  # noqa: E402

NETNS_MARK = "PYSTACK_DEBUGINFOD_NETNS"
SCENARIO = os.path.join(cores.SCENARIO_DIR, "cext_inline.py")
SERVER_WAIT = 60


def reexec_in_netns():
    """Run this test again in a private network namespace with only lo up;
    returns its exit status, or None when that is impossible."""
    unshare = shutil.which("unshare")
    ip = shutil.which("ip") or "/usr/sbin/ip"
    if not unshare or not os.access(ip, os.X_OK):
        return None
    env = dict(os.environ)
    env[NETNS_MARK] = "1"
    probe = subprocess.run([unshare, "--net", "--", ip, "link", "set", "lo",
                            "up"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    if probe.returncode != 0:
        return None
    script = 'ip link set lo up && exec "$0" "$@"'
    # unshare and sh exec: the child's pid is the inner test's, which
    # stops its server on SIGTERM/SIGINT/SIGHUP; forward those to it.
    p = subprocess.Popen([unshare, "--net", "--", "sh", "-c", script,
                          sys.executable, os.path.abspath(__file__)]
                         + sys.argv[1:], env=env)

    def forward(signum, frame):
        try:
            p.send_signal(signum)
        except OSError:
            pass
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    while True:
        try:
            return p.wait()
        except KeyboardInterrupt:
            continue


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL,
                         universal_newlines=True).stdout
    m = re.search(r"Build ID:\s*([0-9a-f]+)", out)
    return m.group(1) if m else None


def has_debug_info(path):
    out = subprocess.run(["readelf", "-S", "-W", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL,
                         universal_newlines=True).stdout
    return ".debug_info" in out


class Server(object):
    """debuginfod -F DIR on a free port; stopped on every exit path."""

    def __init__(self, serve_dir, work):
        self.serve_dir = serve_dir
        self.work = work
        self.proc = None
        self.port = None
        self.log = os.path.join(work, "debuginfod.log")

    def start(self):
        exe = shutil.which("debuginfod")
        self.port = free_port()
        argv = [exe, "-F", "-p", str(self.port), "-d",
                os.path.join(self.work, "debuginfod.sqlite"),
                "-t", "1", "-g", "0", "-c", "2", "-v", self.serve_dir]
        atexit.register(self.stop)
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.argv = argv
        return self

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)   # its own session
            except OSError:
                p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    p.kill()
                p.wait()

    def tail(self, n=15):
        try:
            with open(self.log, "rb") as fh:
                lines = fh.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return []
        return ["debuginfod: " + l for l in lines[-n:]]

    def fetch(self, bid):
        """HTTP status of /buildid/BID/debuginfo (None: no connection)."""
        req = urllib.request.Request("%s/buildid/%s/debuginfo"
                                     % (self.url, bid))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=10) as r:
                r.read()
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (urllib.error.URLError, OSError):
            return None

    def wait_for(self, bids, deadline):
        """Wait until every build-id is served; returns the missing ones."""
        missing = list(bids)
        while missing and time.time() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                break
            missing = [b for b in missing if self.fetch(b) != 200]
            if missing:
                time.sleep(0.3)
        return missing


class Case(object):
    def __init__(self, interp, root):
        self.interp = interp
        self.dir = os.path.join(root, interp.label)
        self.moddir = os.path.join(self.dir, "module")
        self.entry = os.path.join(self.dir, "entry")
        self.expect = os.path.join(self.entry, "expect.json")
        self.core = None
        self.error = None
        self.so = None
        self.bid = None
        self.debug = None
        self.exp = None


def prepare(case, serve_dir):
    """Split-debug build, debug file moved to serve_dir."""
    try:
        so = crashext_build.build(case.interp.path, case.moddir,
                                  split_debug=True, force=True)
    except crashext_build.BuildError as e:
        case.error = "cannot build crashext: %s" % e
        return
    dbg = so + ".debug"
    case.so = so
    case.bid = build_id(so)
    if not case.bid or build_id(dbg) != case.bid:
        case.error = "no matching build-ids in %s and %s" % (so, dbg)
        return
    if has_debug_info(so) or not has_debug_info(dbg):
        case.error = "the split did not move .debug_info (%s)" % so
        return
    case.debug = os.path.join(serve_dir, "%s-%s.debug"
                              % (case.interp.label, case.bid[:12]))
    shutil.move(dbg, case.debug)    # not next to the module any more
    os.makedirs(case.entry)


def make_cores(cases, work):
    todo = [c for c in cases if c.error is None]
    if not todo:
        return
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("PYTHON") or k.startswith("PYENV") or \
                k.startswith("DEBUGINFOD"):
            del env[k]
    env["LC_ALL"] = env["LANG"] = "C.UTF-8"
    with CorePattern(work) as fixture:
        for c in todo:
            e = dict(env, PYSTACK_CRASHEXT_DIR=c.moddir)
            rc, core = fixture.run_crash(
                [c.interp.path, "-E", "-s", "-B", SCENARIO, c.expect],
                env=e, cwd=c.entry)
            if core is None or rc is None or rc >= 0:
                c.error = "no core (exit status %r)" % rc
                continue
            c.core = os.path.join(c.entry, "core")
            shutil.move(core, c.core)
            try:
                with open(c.expect) as fh:
                    c.exp = json.load(fh)
            except (OSError, ValueError) as ex:
                c.error = "no expectation: %s" % ex
                c.core = None


def module_frames(rep, name):
    for t in rep.get("threads") or []:
        if t.get("crashed"):
            return [f for f in t.get("frames") or []
                    if f.get("kind") == "native" and f.get("library") == name]
    return []


def fmt(f):
    return "%s:%s in %s%s (%s)" % (f.get("file") or "???", f.get("line"),
                                   f.get("function") or "???",
                                   " (inlined)" if f.get("inlined") else "",
                                   f.get("library"))


def run_both(case, env_extra, timeout):
    """(--native --json result, --native text result) with the env."""
    saved = dict(os.environ)
    try:
        for k in list(os.environ):
            if k.startswith("DEBUGINFOD"):
                del os.environ[k]
        os.environ.update(env_extra)
        rj = run_pystack(["core", case.core, "--native", "--json"], timeout)
        rt = run_pystack(["core", case.core, "--native"], timeout)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return rj, rt


def text_module_lines(text, name):
    return [l for l in text.splitlines()
            if l.startswith("    (C) ") and l.endswith("(%s)" % name)]


def check_without(case, rj, rt):
    d = []
    name = os.path.basename(case.so)
    if rj.rc != 0:
        return ["--native --json: exit %r" % rj.rc] + rj.describe(8)
    rep = rj.json()
    mf = module_frames(rep, name)
    if not mf:
        d.append("crashed thread: no frame in %s" % name)
    for f in mf:
        if f.get("file") is not None or f.get("line") != 0:
            d.append("expected file null (\"???\") and line 0 without "
                     "debuginfod, got %s" % fmt(f))
    tl = text_module_lines(rt.out, name)
    if not tl:
        d.append("text: no (C) line for %s" % name)
    for l in tl:
        if not l.startswith('    (C) File "???", line 0, in '):
            d.append("text: expected File \"???\", line 0, got %r" % l)
    return d


def check_with(case, rj, rt):
    d = []
    name = os.path.basename(case.so)
    if rj.rc != 0:
        return ["--native --json: exit %r" % rj.rc] + rj.describe(8)
    rep = rj.json()
    n = case.exp.get("notes") or {}
    want = [(n["function"], n["source"], n["call_line"], False),
            (n["helper_function"], n["source"], n["helper_line"], True)]
    mf = module_frames(rep, name)
    have = [(f.get("function"), f.get("file"), f.get("line"),
             bool(f.get("inlined"))) for f in mf[-2:]]
    if have != want:
        d.append("crashext frames (outermost first): expected %s"
                 % ["%s:%d in %s%s" % (w[1], w[2], w[0],
                                       " (inlined)" if w[3] else "")
                    for w in want])
        d.append("got %s" % [fmt(f) for f in mf])
        if rep.get("warnings"):
            d.append("warnings: %s" % rep.get("warnings"))
    tl = text_module_lines(rt.out, name)
    wl = ['    (C) File "%s", line %d, in %s%s (%s)'
          % (w[1], w[2], w[0], " (inlined)" if w[3] else "", name)
          for w in want]
    if tl[-2:] != wl:
        d.append("text: expected %r" % wl)
        d.append("text:      got %r" % tl[-2:])
    return d


def main():
    tap = TAP()
    if os.environ.get(NETNS_MARK) != "1":
        rc = reexec_in_netns()
        if rc is not None:
            return rc
        return tap.skip_all("cannot make a private network namespace "
                            "(unshare --net): debuginfod would listen beyond loopback")
    pystack = programs.pystack()
    if not os.access(pystack, os.X_OK):
        tap.ok(False, "analyzer %s is built" % pystack,
               ["build it first (make), or set PYSTACK"])
        return tap.done()
    missing = [t for t in ("debuginfod", "objcopy", "strip", "readelf", "cc")
               if not shutil.which(t)]
    if missing:
        return tap.skip_all("not installed: %s (apt-get install debuginfod "
                            "binutils gcc)" % " ".join(missing))
    timeout = float(os.environ.get("PYSTACK_TIMEOUT", "60"))
    only = os.environ.get("PYSTACK_TEST_ONLY")
    # the C extension is built with the host's compiler for the interpreter's
    # headers; Debian sid's trees have neither a compiler nor the host's libc
    interps = []
    for i in cores.find_interpreters():
        if i.emulator:
            tap.skip("%s: an aarch64 interpreter (run under %s): this test runs its "
                     "interpreters and builds crashext on the host" % (i.label, i.emulator[0]))
        elif i.root:
            tap.skip("%s: crashext cannot be built for an interpreter run in %s"
                     % (i.label, i.root))
        else:
            interps.append(i)
    if only:
        rx = re.compile(only)
        interps = [i for i in interps if rx.search(i.label)]
    work = tempfile.mkdtemp(prefix="pystack-debuginfod.")
    state = {"server": None}

    def bail(signum, frame):
        # (while cores are made, CorePattern's own handler runs)
        if state["server"] is not None:
            state["server"].stop()
        shutil.rmtree(work, ignore_errors=True)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, bail)
    server = None
    try:
        serve_dir = os.path.join(work, "served")
        os.makedirs(serve_dir)
        cases = [Case(i, os.path.join(work, "cases")) for i in interps]
        for c in cases:
            prepare(c, serve_dir)
        make_cores(cases, work)
        server = state["server"] = Server(serve_dir, work).start()
        ready = [c for c in cases if c.error is None]
        lost = server.wait_for([c.bid for c in ready],
                               time.time() + SERVER_WAIT)
        for c in cases:
            tag = "%s debuginfod" % c.interp.label
            if c.error is not None:
                tap.ok(False, "%s: setup" % tag, [c.error])
                continue
            served = c.bid not in lost
            tap.ok(served, "%s: served (buildid %s)" % (tag, c.bid),
                   ["%s/buildid/%s/debuginfo: HTTP %r"
                    % (server.url, c.bid, server.fetch(c.bid)),
                    "command: %s" % " ".join(server.argv)]
                   + server.tail())
            cache_a = tempfile.mkdtemp(prefix="cache-without.", dir=work)
            rj, rt = run_both(c, {"DEBUGINFOD_CACHE_PATH": cache_a}, timeout)
            try:
                d = check_without(c, rj, rt)
            except Exception as ex:
                d = ["checker raised %s: %s" % (type(ex).__name__, ex)]
            tap.ok(not d, "%s: without DEBUGINFOD_URLS: ???/line 0 for "
                   "crashext frames" % tag, d)
            if not served:
                tap.skip("%s: with DEBUGINFOD_URLS: server does not serve "
                         "the debug file" % tag)
                continue
            cache_b = tempfile.mkdtemp(prefix="cache-with.", dir=work)
            rj, rt = run_both(c, {"DEBUGINFOD_URLS": server.url,
                                  "DEBUGINFOD_CACHE_PATH": cache_b,
                                  "DEBUGINFOD_TIMEOUT": "20"}, timeout)
            try:
                d = check_with(c, rj, rt)
            except Exception as ex:
                d = ["checker raised %s: %s" % (type(ex).__name__, ex)]
            tap.ok(not d, "%s: with DEBUGINFOD_URLS: crashext.c file and "
                   "line" % tag, d)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    tap.diag("%d tests, %d failed, %d skipped"
             % (tap.n, tap.failed, tap.skipped))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
