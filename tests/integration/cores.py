#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""Build (and cache) real core files of crashing Python programs.

For every CPython found on the machine -- pyenv's versions (under
`pyenv root`/versions, or ~/.pyenv/versions when pyenv is not on PATH),
the distribution's /usr/bin/pythonX.Y, Debian sid's python3.14 and
python3.15 in the tree tests/sid-tree builds, and Debian's arm64 python3.11
(bookworm), python3.14 and python3.15 (sid) in the trees tests/arm64-tree
builds, run by qemu-aarch64-static -- and every scenario in
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
their cores with --lib-search-root TREE (Entry.pystack_args).

The arm64 interpreters (labels arm64-3.11, arm64-3.14, arm64-3.15; origin
"arm64", arch "aarch64") run as `qemu-aarch64-static -L TREE
TREE/usr/bin/pythonX.Y` (no binfmt_misc needed), so their files have their
host paths.  qemu writes the guest's aarch64 core itself, as
qemu_<prog>_<date>_<pid>.core in the working directory (honouring
RLIMIT_CORE, not core_pattern), which becomes the entry's core; the kernel
then dumps qemu itself through core_pattern, an x86-64 core that is never
wanted: a directory at that path (<incoming>/core.<pid>, and `core` in the
working directory) stops it, and it is removed afterwards.  Their
Entry.pystack_args are --lib-search-root TREE and the executable.  Without
qemu-aarch64-static or a tree, missing_interpreters() says why.  Generation
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
# Debian's arm64 CPythons, run by qemu-user: (suite, minors) of the trees
# tests/arm64-tree builds
ARM64_TREE_SCRIPT = os.path.join(HERE, "..", "arm64-tree")
ARM64_SUITES = [("bookworm", ["3.11"]), ("sid", ["3.14", "3.15"])]
ARM64_TREE_STAMP = ".pystackd-arm64-tree"
QEMU = {"aarch64": "qemu-aarch64-static"}
CROSS_CC = {"aarch64": ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu")}  # (compiler, package)
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
    def __init__(self, label, path, version, origin, root=None,
                 arch="x86_64", emulator=None):
        self.label = label          # cache key, e.g. "pyenv-3.11.7"
        self.path = path            # real path of the executable (inside root)
        self.version = version      # "3.11.7"
        self.origin = origin        # "pyenv", "system", "sid", "ft" (free-threaded) or "arm64"
        self.root = root            # the tree it runs in (chrooted, or emulated), or None
        self.arch = arch            # the machine of its cores: "x86_64", "aarch64"
        self.emulator = emulator    # the emulator's command line (qemu-user), or None

    @property
    def executable(self):
        """The executable's path on the host."""
        return (self.root or "") + self.path

    @property
    def chrooted(self):
        return bool(self.root) and not self.emulator

    def argv(self, args):
        """The command line that runs it with args, from the host."""
        if self.emulator:
            return list(self.emulator) + [self.executable] + list(args)
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
_arm64 = {}         # suite -> {"out", "why"} of tests/arm64-tree
_arm64_found = {}   # "found": [Interpreter], "missing": {minor: why}


def _setup_script(script, memo, timeout, args=()):
    """(its one line of stdout, None) when a setup script (tests/sid-tree,
    tests/ft-python, tests/arm64-tree SUITE) prints what it found or built,
    else (None, why, from its last stderr line).  Run at most once per
    process."""
    if "out" not in memo:
        name = " ".join([os.path.basename(script)] + list(args))
        try:
            p = subprocess.run([script] + list(args), stdout=subprocess.PIPE,
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


def arm64_tree(suite):
    """(tree, None) when Debian's arm64 tree of `suite` (bookworm, sid) is
    there or could be built, else (None, why)."""
    return _setup_script(ARM64_TREE_SCRIPT, _arm64.setdefault(suite, {}), 1800,
                         [suite])


def arm64_label(minor):
    return "arm64-" + minor


def find_arm64_interpreters():
    """Debian's arm64 CPythons of tests/arm64-tree, run by qemu-aarch64-static;
    those missing are in arm64_missing()."""
    if "found" in _arm64_found:
        return list(_arm64_found["found"])
    found, missing = [], {}
    qemu = shutil.which(QEMU["aarch64"])
    for suite, minors in ARM64_SUITES:
        if not qemu:
            for m in minors:
                missing[m] = "%s is not installed (apt-get install qemu-user-static)" \
                    % QEMU["aarch64"]
            continue
        tree, why = arm64_tree(suite)
        for minor in minors:
            if not tree:
                missing[minor] = why
                continue
            # the version from the headers: running it under qemu takes a
            # second, in every test that looks for interpreters
            ver, why = _header_version(tree, minor)
            if ver:
                found.append(Interpreter(arm64_label(minor), "/usr/bin/python" + minor, ver,
                                         "arm64", tree, arch="aarch64",
                                         emulator=[qemu, "-L", tree]))
            else:
                missing[minor] = why
    _arm64_found["found"], _arm64_found["missing"] = found, missing
    return list(found)


def arm64_missing():
    """{label: why} for the arm64 interpreters find_arm64_interpreters() did
    not find."""
    find_arm64_interpreters()
    return dict((arm64_label(m), "%s: %s" % (arm64_label(m), why))
                for m, why in _arm64_found["missing"].items())


def _header_version(tree, minor):
    """("3.X.Y", None) from the tree's patchlevel.h of python`minor`, or
    (None, why)."""
    path = os.path.join(tree, "usr", "include", "python" + minor, "patchlevel.h")
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError as e:
        return None, "%s: %s" % (path, e.strerror)
    parts = [re.search(r"^#define PY_%s_VERSION\s+(\d+)\s*$" % k, text, re.M)
             for k in ("MAJOR", "MINOR", "MICRO")]
    if not all(parts):
        return None, "%s: no PY_MAJOR/MINOR/MICRO_VERSION" % path
    ver = ".".join(m.group(1) for m in parts)
    if not ver.startswith(minor + "."):
        return None, "%s says %s, not %s" % (path, ver, minor)
    return ver, None


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
    own /usr/bin/python3.X, the free-threaded build of tests/ft-python, and
    the arm64 interpreters of tests/arm64-tree."""
    have = set(i.minor for i in interps if i.origin in ("pyenv", "sid"))
    reasons = [missing_minor_reason(m) for m in EXPECTED_MINORS if m not in have]
    if system and not any(i.origin == "system" for i in interps):
        reasons.append("Debian /usr/bin/python3.X not installed")
    ft = missing_ft_reason(interps)
    if ft:
        reasons.append(ft)
    have = set(i.label for i in interps if i.origin == "arm64")
    reasons += [why for label, why in sorted(arm64_missing().items())
                if label not in have]
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
    found += find_arm64_interpreters()
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
    def search_args(self):
        """The options `pystack core` needs to find the libraries the
        process ran (an interpreter of another root: its tree)."""
        return ["--lib-search-root", self.interp.root] if self.interp.root \
            else []

    @property
    def pystack_args(self):
        """What `pystack core` needs besides the core to find the files the
        process ran: search_args (an emulated interpreter's core has no
        NT_FILE: the analyzer finds its executable by the path it was
        started with, its libraries by the dynamic linker's list)."""
        return self.search_args

    @property
    def emulated(self):
        """The core is qemu-user's (no NT_FILE, NT_SIGINFO, NT_ARM_TLS)."""
        return bool(self.interp.emulator)

    @property
    def arch(self):
        """The machine of the core: "x86_64" or "aarch64"."""
        return self.interp.arch

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
        if self.interp.emulator:
            # dpkg -x keeps the packages' times: a tree built again (sid's
            # newer python3.X) is told by the stamp tests/arm64-tree touches
            deps.append(os.path.join(self.interp.root, ARM64_TREE_STAMP))
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
    env = _child_env()
    argv = entry.argv
    if entry.interp.chrooted:
        env = sid_env(env, fixture)
    if entry.interp.emulator:
        env["PYSTACK_EMULATOR"] = json.dumps(entry.interp.emulator)
        if entry.scenario == "cext_inline":
            env["PYSTACK_CRASHEXT_PREBUILT"] = _prebuilt_crashext(entry)
        argv = _no_host_core_argv(fixture, argv)
    entry.t0 = time.time()
    return fixture.spawn(argv, env=env, cwd=entry.dir,
                         log_path=os.path.join(entry.dir, "output.log"))


# qemu-user dumps the guest itself, then dies of the signal, and the kernel
# dumps qemu too (an x86-64 core of the emulator) through core_pattern.  A
# directory where that core would go stops it: CorePattern's
# <incoming>/core.%p for this pid (the shell's, which exec keeps), and `core`
# in the working directory for the kernel's default pattern.
_NO_HOST_CORE_SH = r"""mkdir -- "$1/core.$$" core || exit 125
shift
exec "$@"
"""


def _no_host_core_argv(fixture, argv):
    # never under a pipe pattern: qemu's own core must reach no handler
    pattern = os.path.join(fixture.incoming, "core.%p")
    if corepattern.read_core_pattern() != pattern:
        raise RuntimeError("core_pattern is %r, not CorePattern's %r"
                           % (corepattern.read_core_pattern(), pattern))
    return ["/bin/sh", "-c", _NO_HOST_CORE_SH, "no-host-core",
            fixture.incoming] + list(argv)


def _take_guest_core(fixture, directory, p):
    """An emulated program's own core (qemu's, in its working directory) or
    None; the emulator's own core, and the directories that stopped it,
    removed."""
    for blocker in (os.path.join(fixture.incoming, "core.%d" % p.pid),
                    os.path.join(directory, "core")):
        if os.path.isdir(blocker):
            shutil.rmtree(blocker, ignore_errors=True)
        elif os.path.lexists(blocker):
            os.unlink(blocker)
    found = glob.glob(os.path.join(glob.escape(directory), "qemu_*_%d.core" % p.pid))
    for extra in found[1:]:
        os.unlink(extra)
    if found and shutil.which("fallocate"):
        # qemu writes every page, the kernel skips the zero ones: holes
        # there too (many_threads: 210 MB on disk, 8 MB with holes)
        subprocess.run(["fallocate", "--dig-holes", found[0]],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
    return found[0] if found else None


def run_emulated_crash(fixture, argv, cwd, timeout=SCENARIO_TIMEOUT):
    """Run an emulated program (qemu-user's command line, argv) in cwd under
    `fixture` (a CorePattern) until it dies, as the cache's emulated entries
    are run: (its exit status, or None after killing it at the timeout; the
    guest's core qemu wrote in cwd, or None).  The emulator's own core never
    lands anywhere."""
    p = fixture.spawn(_no_host_core_argv(fixture, argv), cwd=cwd)
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        rc = None
    fixture.reap(p)
    return rc, _take_guest_core(fixture, cwd, p)


def _prebuilt_crashext(entry):
    """crashext cross-compiled for an emulated interpreter, where the
    cext_inline scenario looks for it (PYSTACK_CRASHEXT_PREBUILT): its path,
    or "skip: WHY" / "error: WHY"."""
    try:
        return build_crashext(entry.interp, os.path.join(os.path.dirname(entry.dir), "_crashext"))
    except CrashextUnavailable as e:
        return "skip: %s" % e
    except Exception as e:
        return "error: %s" % e


class CrashextUnavailable(Exception):
    """No compiler can build crashext for this interpreter here."""


def build_crashext(interp, outdir, **kw):
    """Build cext/crashext.c for `interp` into outdir (cext/build.py's
    build()); returns the module's path.  An emulated interpreter's is
    cross-compiled against its tree's headers and libc (CrashextUnavailable
    without the cross compiler)."""
    sys.path.insert(0, os.path.join(HERE, "cext"))
    try:
        import build as crashext_build
    finally:
        sys.path.pop(0)
    if not interp.emulator:
        return crashext_build.build(interp.path, outdir, **kw)
    cc, package = CROSS_CC[interp.arch]
    if not shutil.which(cc):
        raise CrashextUnavailable("no %s cross compiler (%s; apt-get install %s): "
                                  "crashext cannot be built for %s"
                                  % (interp.arch, cc, package, interp.label))
    return crashext_build.build(interp.argv([]), outdir, cc=cc, sysroot=interp.root, **kw)


def _finish(fixture, entry, p, timed_out):
    """Collect one finished scenario: core/expect.json/meta.json."""
    rc = None if timed_out else p.returncode
    core = fixture.reap(p)
    if entry.interp.emulator:
        core = _take_guest_core(fixture, entry.dir, p)
    try:
        with open(os.path.join(entry.dir, "output.log"), "rb") as fh:
            out = fh.read()[-4000:].decode("utf-8", "replace")
    except OSError:
        out = ""
    meta = {"interpreter": entry.interp.path, "label": entry.interp.label,
            "version": entry.interp.version, "scenario": entry.scenario,
            "arch": entry.interp.arch,
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
            print("%-18s %-8s %s" % (i.label, i.version, " ".join(i.argv([]))
                                     if i.emulator else i.path))
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
