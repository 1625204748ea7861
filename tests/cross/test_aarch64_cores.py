#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: the analyzer cross-built for aarch64, run under qemu-user, reads
aarch64 cores as the x86-64 build does.

For every core, `pystack core CORE` (plain, --native, --locals) is run twice:
the cross-built analyzer under the emulator, and the native one; their
reports and exit statuses must be the same.  The cores:

- every entry of the core cache ($PYSTACK_TEST_CORES, tests/integration/
  cores.py) whose meta.json says "arch": "aarch64" and "status": "ok"; its
  tree and executable are those of its command line
  (qemu-aarch64-static -L TREE TREE/usr/bin/pythonX.Y ...);
- when the cache has none: one core made here, by Debian's arm64 python3.11
  (tests/arm64-tree bookworm) under qemu-aarch64-static, calling os.abort()
  two functions deep, run as cores.py runs its emulated entries
  (cores.run_emulated_crash: qemu writes that core itself into the working
  directory, and the host kernel's dump of qemu is stopped, never reaching
  the system's core_pattern).  That needs root; its report must name both
  functions.

Environment (a cross build's `make check` sets the first three,
tests/cross/native-programs):
  PYSTACK_CROSS       the cross-built analyzer
  PYSTACK_EMULATOR    the emulator's command line (default qemu-aarch64-static)
  PYSTACK, PYSTACK_BUILDDIR  the native analyzer to compare with
                      (harness/programs.py); without it only the cross
                      analyzer's own checks run, and the comparisons are
                      skipped, saying so
  PYSTACK_TEST_CORES  the core cache
  PYSTACK_ARM64_BOOKWORM_TREE  the arm64 tree (default
                      /var/cache/pystackd-tests/arm64-bookworm)
  PYSTACK_CROSS_MODES the analyzer's modes, comma-separated (default
                      "plain,--native,--locals")
"""
import glob
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import cores  # noqa: E402
from harness import programs  # noqa: E402
from harness.corepattern import CorePattern  # noqa: E402
from harness.tap import TAP, Watchdog, watchdog  # noqa: E402

TIMEOUT = 120                   # one analyzer run under the emulator, s
WHOLE_RUN = 3600
TREE = os.environ.get("PYSTACK_ARM64_BOOKWORM_TREE",
                      "/var/cache/pystackd-tests/arm64-bookworm")
PYTHON = "/usr/bin/python3.11"
SCRIPT = """import os

def crash_here():
    os.abort()

def outer():
    crash_here()

outer()
"""


def emulator():
    return shlex.split(os.environ.get("PYSTACK_EMULATOR") or "qemu-aarch64-static")


def run(cmd):
    """(exit status, stdout, stderr, seconds) of cmd; status None on a timeout."""
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=TIMEOUT)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, e.stdout or b"", e.stderr or b""
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), time.time() - t0


def cached_cores():
    """(label, core, pystack args) of the cache's aarch64 entries."""
    cache = os.environ.get("PYSTACK_TEST_CORES")
    found = []
    if not cache:
        return found
    for meta_path in sorted(glob.glob(os.path.join(cache, "*", "*", "meta.json"))):
        try:
            with open(meta_path) as fh:
                meta = json.load(fh)
        except (OSError, ValueError):
            continue
        argv = meta.get("argv") or []
        core = os.path.join(os.path.dirname(meta_path), "core")
        if meta.get("arch") != "aarch64" or meta.get("status") != "ok" or "-L" not in argv \
                or not os.path.exists(core):
            continue
        i = argv.index("-L")
        if i + 2 >= len(argv):
            continue
        tree, exe = argv[i + 1], argv[i + 2]
        label = "%s/%s" % (meta.get("label"), meta.get("scenario"))
        found.append((label, core, ["--lib-search-root", tree, exe]))
    return found


def make_core(tap, workdir):
    """Python 3.11 of the arm64 tree aborts under qemu: (core, pystack args),
    or None (skipped or failed, said in TAP)."""
    exe = TREE + PYTHON
    if not os.path.exists(exe):
        tap.skip("no aarch64 core: the cache has none and there is no arm64 tree at %s "
                 "(tests/arm64-tree bookworm builds it)" % TREE)
        return None
    if os.geteuid() != 0:
        tap.skip("no aarch64 core: the cache has none, and making one needs root "
                 "(core_pattern must send the host's dump of qemu itself somewhere harmless)")
        return None
    script = os.path.join(workdir, "crash_aarch64.py")
    with open(script, "w") as fh:
        fh.write(SCRIPT)
    with CorePattern(workdir) as fx:
        rc, core = cores.run_emulated_crash(fx, emulator() + ["-L", TREE, exe, "-E", "-s", "-B", script],
                                            workdir, timeout=TIMEOUT)
    found = [core] if core else []
    if not tap.ok(rc == -signal.SIGABRT and core,
                  "python3.11 under qemu-aarch64: SIGABRT and a guest core",
                  ["exit status %s, cores %s" % (rc, found)]):
        return None
    return core, ["--lib-search-root", TREE, exe]


def main():
    tap = TAP()
    cross = os.environ.get("PYSTACK_CROSS")
    native = programs.pystack()
    modes = [m for m in os.environ.get("PYSTACK_CROSS_MODES", "plain,--native,--locals").split(",") if m]
    if not cross or not os.path.exists(cross):
        return tap.skip_all("no cross-built analyzer (PYSTACK_CROSS=%s)" % cross)
    if not shutil.which(emulator()[0]):
        return tap.skip_all("no emulator %s (apt-get install qemu-user-static)" % emulator()[0])
    if not os.path.exists(native):
        native = None
    workdir = tempfile.mkdtemp(prefix="pystack-cross-")
    try:
        with watchdog(WHOLE_RUN):
            found = cached_cores()
            own = None
            if found:
                tap.diag("%d aarch64 cores of %s" % (len(found), os.environ.get("PYSTACK_TEST_CORES")))
            else:
                own = make_core(tap, workdir)
                if own:
                    found = [("own python3.11", own[0], own[1])]
            if found and not native:
                tap.skip("no native analyzer to compare with (%s): the reports are not compared"
                         % programs.pystack())
            emulated = 0.0
            for label, core, args in found:
                is_own = bool(own) and core == own[0]
                if not native and not is_own:
                    continue
                for mode in modes:
                    extra = [] if mode == "plain" else [mode]
                    what = "%s %s" % (label, mode)
                    rc, out, err, secs = run(emulator() + [cross, "core", core] + args + extra)
                    emulated += secs
                    diag = ["exit status %s (%.1fs)" % (rc, secs)] + \
                        ["stderr: " + l for l in err.splitlines()[:10]] + \
                        ["stdout: " + l for l in out.splitlines()[:30]]
                    if is_own and mode == "plain":
                        tap.ok(rc == 0 and "crash_here" in out and "outer" in out,
                               "%s: the cross analyzer names crash_here and outer" % what, diag)
                    if not native:
                        continue
                    nrc, nout, nerr, _ = run([native, "core", core] + args + extra)
                    same = rc == nrc and out == nout
                    tap.ok(same, "%s: the cross analyzer's report is the native one's (exit %s)" % (what, rc),
                           [] if same else diag + ["native exit status %s" % nrc] +
                           ["native stdout: " + l for l in nout.splitlines()[:30]])
            tap.diag("the analyzer under the emulator: %.1fs in all" % emulated)
    except Watchdog as e:
        tap.ok(False, str(e))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
