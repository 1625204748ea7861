#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""Build (and cache) real core files of crashing Python programs.

For every CPython found on the machine -- pyenv's versions (under
`pyenv root`/versions, or ~/.pyenv/versions when pyenv is not on PATH),
the distribution's /usr/bin/pythonX.Y, and Debian sid's python3.14 and
python3.15 in the tree tests/sid-tree builds -- and every scenario in
scenarios/*.py, run the scenario so that it crashes and leaves a core, next
to the "expectation" JSON file the scenario wrote just before crashing.

Cache layout (directory $PYSTACK_TEST_CORES, default
<cwd>/tests/integration/cores-cache):

    <cache>/<interpreter label>/<scenario>/core          the core file
    <cache>/<interpreter label>/<scenario>/expect.json   what the program knew
    <cache>/<interpreter label>/<scenario>/meta.json     status ok|skip|error
    <cache>/nonpython/sleep/core                         core of /bin/sleep

An entry is reused when its meta.json is newer than the scenario script and
the shared helpers.  The sid interpreters run chrooted in their tree, in a
private mount namespace where the scenarios, the cache and the incoming
directory are bind-mounted at their own paths (so the core's file names, the
expectations and the source files agree with the host's); the analyzer reads
their cores with --lib-search-root TREE (Entry.pystack_args).  Generation
changes /proc/sys/kernel/core_pattern with harness.corepattern.CorePattern:
while holding an exclusive flock on /run/lock/pystackd-core-pattern.lock,
restored on every exit path (finally, atexit, SIGTERM/SIGINT/SIGHUP); the
original value is also saved to /run/lock/pystackd-core-pattern.saved so a
run killed with SIGKILL is repaired by the next one.

Stdlib only; run with /usr/bin/python3.  Command line:

    cores.py [--cache DIR] [--jobs N] [--force] [--bench] [--list]
             [--interp LABEL ...] [--scenario NAME ...] [--nonpython]
"""
from __future__ import print_function

import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import corepattern  # noqa: E402
from harness.corepattern import CorePattern  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO_DIR = os.path.join(HERE, "scenarios")
# Files every scenario depends on (besides its own script).
SHARED_FILES = [os.path.join(SCENARIO_DIR, "_common.py"),
                os.path.join(SCENARIO_DIR, "_coro3.py")]
BENCH_SCENARIOS = ["bigheap"]
# Scenarios with a test of their own (not checked by the common aspects), and
# the files each depends on besides _common.py.
OWN_TEST_SCENARIOS = {
    "subinterpreters": [os.path.join(SCENARIO_DIR, "_subinterp_body.py")],
}


# Every CPython minor version the tests expect; a missing one is a SKIP.
EXPECTED_MINORS = ["2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11",
                   "3.12", "3.13", "3.14", "3.15"]
SID_MINORS = ["3.14", "3.15"]
SID_TREE_SCRIPT = os.path.join(HERE, "..", "sid-tree")
FT_PYTHON_SCRIPT = os.path.join(HERE, "..", "ft-python")
SCENARIO_TIMEOUT = corepattern.SCENARIO_TIMEOUT


def log(msg):
    sys.stderr.write("cores.py: %s\n" % msg)
    sys.stderr.flush()


def cache_dir():
    d = os.environ.get("PYSTACK_TEST_CORES")
    if not d:
        d = os.path.join(os.getcwd(), "tests", "integration", "cores-cache")
    return os.path.abspath(d)


# --------------------------------------------------------------------------
# interpreters

class Interpreter(object):
    def __init__(self, label, path, version, origin, root=None):
        self.label = label          # cache key, e.g. "pyenv-3.11.7"
        self.path = path            # real path of the executable (inside root)
        self.version = version      # "3.11.7"
        self.origin = origin        # "pyenv", "system", "sid" or "ft" (free-threaded)
        self.root = root            # the tree it runs chrooted in, or None

    def argv(self, args):
        """The command line that runs it with args, from the host."""
        return list(sid_wrapper(self.root)) + [self.path] + list(args) \
            if self.root else [self.path] + list(args)

    @property
    def minor(self):
        return ".".join(self.version.split(".")[:2])

    def __repr__(self):
        return "Interpreter(%s, %s)" % (self.label, self.path)


def pyenv_root():
    exe = shutil.which("pyenv")
    if exe:
        try:
            out = subprocess.run([exe, "root"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, timeout=20,
                                 universal_newlines=True).stdout.strip()
            if out:
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    return os.path.expanduser("~/.pyenv")


def _version_key(v):
    return [int(x) if x.isdigit() else 0 for x in re.split(r"[.]", v)]


_sid = {}
_ft = {}


def _setup_script(script, memo, timeout):
    """(its one line of stdout, None) when a setup script (tests/sid-tree,
    tests/ft-python) prints what it found or built, else (None, why, from
    its last stderr line).  Run at most once per process."""
    if "out" not in memo:
        name = os.path.basename(script)
        try:
            p = subprocess.run([script], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=timeout,
                               universal_newlines=True)
            ok = p.returncode == 0 and p.stdout.strip()
            memo["out"] = p.stdout.strip() if ok else None
            memo["why"] = None if ok else (p.stderr.strip().splitlines() or
                                           ["%s failed" % name])[-1]
        except (OSError, subprocess.SubprocessError) as e:
            memo["out"], memo["why"] = None, "%s: %s" % (name, e)
    return memo["out"], memo["why"]


def sid_tree():
    """(tree, None) when Debian sid's tree is there or could be built, else
    (None, why)."""
    return _setup_script(SID_TREE_SCRIPT, _sid, 1800)


# Bind the directories the scenario needs at their own paths inside the tree,
# mount /proc, and become the interpreter (same pid: the parent stays ours).
_SID_SH = r"""set -e
root=$1; shift
for d in "$SCENARIOS" "$CEXT" "$CACHE" "$INCOMING"; do
        [ -n "$d" ] || continue
        mkdir -p "$root$d"
        mount --bind "$d" "$root$d"
done
mount -t proc proc "$root/proc"
exec chroot "$root" "$@"
"""


def sid_wrapper(root):
    return ["unshare", "--mount", "--propagation", "private", "--",
            "/bin/sh", "-c", _SID_SH, "sid-run", root]


def sid_env(env, fixture):
    env = dict(env)
    env["SCENARIOS"] = SCENARIO_DIR
    env["CEXT"] = os.path.join(HERE, "cext")
    env["CACHE"] = cache_dir()
    env["INCOMING"] = fixture.incoming if fixture else ""
    return env


def find_sid_interpreters():
    tree, why = sid_tree()
    if not tree:
        return []
    found = []
    for minor in SID_MINORS:
        exe = "/usr/bin/python" + minor
        if not os.access(tree + exe, os.X_OK):
            continue
        try:
            ver = subprocess.run(
                ["chroot", tree, exe, "-c",
                 "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60,
                universal_newlines=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if ver:
            found.append(Interpreter("sid-" + minor, exe, ver, "sid", tree))
    return found


def missing_interpreters(interps, system=True):
    """SKIP reasons for the expected interpreters absent from `interps`:
    each minor pyenv or Debian sid should give, (with `system`) Debian's
    own /usr/bin/python3.X, and the free-threaded build of tests/ft-python."""
    have = set(i.minor for i in interps if i.origin in ("pyenv", "sid"))
    reasons = [missing_minor_reason(m) for m in EXPECTED_MINORS if m not in have]
    if system and not any(i.origin == "system" for i in interps):
        reasons.append("Debian /usr/bin/python3.X not installed")
    ft = missing_ft_reason(interps)
    if ft:
        reasons.append(ft)
    return reasons


def missing_minor_reason(minor):
    """Why no interpreter of `minor` was found: a message for the SKIP."""
    if minor in SID_MINORS:
        tree, why = sid_tree()
        if not tree:
            return "Debian sid's python%s: %s" % (minor, why)
        return "python%s is not in Debian sid's tree %s" % (minor, tree)
    return "no python%s installed (pyenv or /usr/bin)" % minor


def find_interpreters():
    found = []
    vdir = os.path.join(pyenv_root(), "versions")
    for d in sorted(glob.glob(os.path.join(vdir, "*")),
                    key=lambda p: _version_key(os.path.basename(p))):
        name = os.path.basename(d)
        m = re.match(r"^(\d+)\.(\d+)\.(\d+)$", name)
        if not m:
            continue            # virtualenvs, pypy, ...: not our business
        exe = os.path.join(d, "bin", "python%s.%s" % (m.group(1), m.group(2)))
        if not os.access(exe, os.X_OK):
            exe = os.path.join(d, "bin", "python")
        if os.access(exe, os.X_OK):
            found.append(Interpreter("pyenv-" + name, os.path.realpath(exe),
                                     name, "pyenv"))
    for exe in sorted(glob.glob("/usr/bin/python[23].*"),
                      key=lambda p: _version_key(p.rsplit("python", 1)[1])):
        m = re.match(r"^/usr/bin/python(\d+\.\d+)$", exe)
        if not m or os.path.islink(exe) or not os.access(exe, os.X_OK):
            continue
        try:
            ver = subprocess.run(
                [exe, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=20,
                universal_newlines=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if not ver:
            continue
        found.append(Interpreter("system-" + m.group(1), os.path.realpath(exe),
                                 ver, "system"))
    if os.geteuid() == 0 or sid_tree()[0]:
        found += find_sid_interpreters()
    found += find_ft_interpreters()
    return found


def ft_python():
    """(path, None) when the free-threaded CPython of tests/ft-python is
    there or could be built, else (None, why)."""
    return _setup_script(FT_PYTHON_SCRIPT, _ft, 3600)


def find_ft_interpreters():
    exe, why = ft_python()
    if not exe:
        return []
    try:
        ver = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=20,
            universal_newlines=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return []
    return [Interpreter("ft-%st" % ver, exe, ver, "ft")] if ver else []


def missing_ft_reason(interps):
    """A SKIP reason when no free-threaded interpreter is among `interps`."""
    if any(i.origin == "ft" for i in interps):
        return None
    exe, why = ft_python()
    return why or "no free-threaded CPython (tests/ft-python)"


def find_scenarios(include_bench=False):
    names = []
    for p in sorted(glob.glob(os.path.join(SCENARIO_DIR, "*.py"))):
        n = os.path.basename(p)[:-3]
        if n.startswith("_"):
            continue
        if n in BENCH_SCENARIOS and not include_bench:
            continue
        if n in OWN_TEST_SCENARIOS:
            continue
        names.append(n)
    return names


# --------------------------------------------------------------------------
# cache entries

class Entry(object):
    """One (interpreter, scenario) cache entry."""

    def __init__(self, cache, interp, scenario):
        self.interp = interp
        self.scenario = scenario
        self.dir = os.path.join(cache, interp.label, scenario)
        self.core = os.path.join(self.dir, "core")
        self.expect = os.path.join(self.dir, "expect.json")
        self.meta_path = os.path.join(self.dir, "meta.json")
        self.script = os.path.join(SCENARIO_DIR, scenario + ".py")

    def meta(self):
        try:
            with open(self.meta_path) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return None

    def expectation(self):
        with open(self.expect) as fh:
            return json.load(fh)

    @property
    def pystack_args(self):
        """What `pystack core` needs besides the core to find the files the
        process ran (an interpreter of another root: its tree)."""
        return ["--lib-search-root", self.interp.root] if self.interp.root \
            else []

    @property
    def status(self):
        m = self.meta()
        return m["status"] if m else "missing"

    @property
    def message(self):
        m = self.meta()
        return m.get("message", "") if m else "not generated"

    def fresh(self):
        m = self.meta()
        if not m or m.get("status") not in ("ok", "skip"):
            return False
        if m.get("interpreter") != self.interp.path:
            return False
        need = [self.meta_path, self.expect]
        if m["status"] == "ok":
            need.append(self.core)
        if not all(os.path.exists(p) for p in need):
            return False
        t = os.path.getmtime(self.meta_path)
        # a rebuilt interpreter (tests/ft-python, pyenv install) has another
        # build-id: its old cores would no longer match it
        exe = (self.interp.root or "") + self.interp.path
        deps = [self.script, exe] + OWN_TEST_SCENARIOS.get(self.scenario, []) + \
            [f for f in SHARED_FILES if os.path.exists(f)]
        return all(os.path.getmtime(f) < t for f in deps if os.path.exists(f))

    def __repr__(self):
        return "Entry(%s/%s)" % (self.interp.label, self.scenario)


def _child_env():
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("PYTHON") or k.startswith("PYENV"):
            del env[k]
    env["LC_ALL"] = "C.UTF-8"
    env["LANG"] = "C.UTF-8"
    return env


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.rename(tmp, path)


def _start(fixture, entry):
    """Start one scenario; returns its Popen."""
    # Run in place: the expectation may name files written next to it
    # (nonascii writes its module there).  No meta.json = not fresh.
    if os.path.isdir(entry.dir):
        shutil.rmtree(entry.dir)
    os.makedirs(entry.dir)
    entry.argv = entry.interp.argv(["-E", "-s", "-B", entry.script,
                                    entry.expect])
    entry.t0 = time.time()
    env = _child_env()
    if entry.interp.root:
        env = sid_env(env, fixture)
    return fixture.spawn(entry.argv, env=env, cwd=entry.dir,
                         log_path=os.path.join(entry.dir, "output.log"))


def _finish(fixture, entry, p, timed_out):
    """Collect one finished scenario: core/expect.json/meta.json."""
    rc = None if timed_out else p.returncode
    core = fixture.reap(p)
    try:
        with open(os.path.join(entry.dir, "output.log"), "rb") as fh:
            out = fh.read()[-4000:].decode("utf-8", "replace")
    except OSError:
        out = ""
    meta = {"interpreter": entry.interp.path, "label": entry.interp.label,
            "version": entry.interp.version, "scenario": entry.scenario,
            "argv": entry.argv, "returncode": rc, "output": out,
            "parent_pid": os.getpid(),
            "seconds": round(time.time() - entry.t0, 3)}
    exp = None
    expect = entry.expect
    if os.path.exists(expect):
        try:
            with open(expect) as fh:
                exp = json.load(fh)
        except ValueError as e:
            exp = None
            out += "\nbad expectation: %s" % e
    if rc == 0 and exp is not None and exp.get("skip"):
        meta.update(status="skip", message=exp["skip"])
    elif rc is not None and rc < 0 and core and exp is not None \
            and not exp.get("skip"):
        shutil.move(core, entry.core)
        meta.update(status="ok", message="signal %d" % -rc,
                    core_size=os.path.getsize(entry.core))
    else:
        why = []
        if rc is None:
            why.append("timed out after %ds" % SCENARIO_TIMEOUT)
        elif rc >= 0:
            why.append("exited with %d instead of crashing" % rc)
        else:
            why.append("killed by signal %d" % -rc)
            if not core:
                why.append("no core file was written")
        if exp is None:
            why.append("no expectation file")
        tail = out.strip().splitlines()[-3:]
        if tail:
            why.append("output: " + " | ".join(tail))
        meta.update(status="error", message="; ".join(why))
        if core:
            os.unlink(core)
    _write_json(entry.meta_path, meta)
    return entry


def _run_all(fixture, todo, jobs, verbose):
    """Run the scenarios, `jobs` at a time, all forked by this thread."""
    pending = list(todo)
    running = {}
    while pending or running:
        while pending and len(running) < max(1, jobs):
            e = pending.pop(0)
            running[e] = _start(fixture, e)
        time.sleep(0.01)
        for e, p in list(running.items()):
            timed_out = False
            if p.poll() is None:
                if time.time() - e.t0 < SCENARIO_TIMEOUT:
                    continue
                p.kill()
                p.wait()
                timed_out = True
            del running[e]
            _finish(fixture, e, p, timed_out)
            if verbose:
                log("%-18s %-14s %-5s %s" % (e.interp.label, e.scenario,
                                             e.status, e.message))


def all_entries(cache=None, interpreters=None, scenarios=None,
                include_bench=False):
    cache = cache or cache_dir()
    interpreters = find_interpreters() if interpreters is None else interpreters
    scenarios = find_scenarios(include_bench) if scenarios is None else scenarios
    return [Entry(cache, i, s) for i in interpreters for s in scenarios]


def ensure_cores(cache=None, interpreters=None, scenarios=None,
                 include_bench=False, jobs=2, force=False, verbose=True):
    """Make sure every (interpreter, scenario) entry is generated; return the
    list of Entry objects (check .status: ok, skip or error)."""
    cache = cache or cache_dir()
    entries = all_entries(cache, interpreters, scenarios, include_bench)
    todo = [e for e in entries if force or not e.fresh()]
    if not todo:
        return entries
    os.makedirs(cache, exist_ok=True)
    with CorePattern(cache) as fixture:
        # Another process may have generated them while we waited.
        todo = [e for e in entries if force or not e.fresh()]
        t0 = time.time()
        for e in todo:
            os.makedirs(os.path.dirname(e.dir), exist_ok=True)
        _run_all(fixture, todo, jobs, verbose)
        if verbose:
            log("generated %d cores in %.1fs" % (len(todo), time.time() - t0))
    return entries


def ensure_nonpython_core(cache=None, force=False):
    """Core of a program that is not Python: `sleep 100` killed by SIGSEGV.
    Returns the core path, or None (with a message on stderr)."""
    cache = cache or cache_dir()
    d = os.path.join(cache, "nonpython", "sleep")
    core = os.path.join(d, "core")
    if os.path.exists(core) and not force:
        return core
    os.makedirs(d, exist_ok=True)
    sleep = shutil.which("sleep") or "/bin/sleep"
    with CorePattern(cache) as fixture:
        if os.path.exists(core) and not force:
            return core
        rc, c = fixture.run_crash([sleep, "100"], kill_after=0.3,
                                  kill_signal=signal.SIGSEGV)
        if c is None:
            log("no core from %s (rc=%r)" % (sleep, rc))
            return None
        shutil.move(c, core)
    return core


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", help="cache directory (default: "
                    "$PYSTACK_TEST_CORES or tests/integration/cores-cache)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--force", action="store_true",
                    help="regenerate even fresh entries")
    ap.add_argument("--bench", action="store_true",
                    help="also the benchmark-only scenarios (bigheap)")
    ap.add_argument("--interp", action="append",
                    help="only these interpreter labels (pyenv-3.11.7, ...)")
    ap.add_argument("--scenario", action="append",
                    help="only these scenarios")
    ap.add_argument("--nonpython", action="store_true",
                    help="also the core of a non-Python program")
    ap.add_argument("--list", action="store_true",
                    help="list interpreters and scenarios, generate nothing")
    args = ap.parse_args()
    if args.cache:
        os.environ["PYSTACK_TEST_CORES"] = args.cache
    interps = find_interpreters()
    if args.interp:
        interps = [i for i in interps if i.label in args.interp
                   or i.version in args.interp]
    scen = find_scenarios(args.bench)
    if args.scenario:
        scen = [s for s in find_scenarios(True) if s in args.scenario]
    if args.list:
        for i in interps:
            print("%-18s %-8s %s" % (i.label, i.version, i.path))
        print("scenarios: " + " ".join(scen))
        return 0
    t0 = time.time()
    entries = ensure_cores(interpreters=interps, scenarios=scen,
                           jobs=args.jobs, force=args.force)
    if args.nonpython:
        ensure_nonpython_core(force=args.force)
    bad = 0
    for e in entries:
        print("%-18s %-14s %-5s %s" % (e.interp.label, e.scenario, e.status,
                                      e.message))
        bad += e.status not in ("ok", "skip")
    print("cache: %s (%.1fs)" % (cache_dir(), time.time() - t0))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
