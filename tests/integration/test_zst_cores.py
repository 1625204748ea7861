#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: `pystack core` reads cores stored in zstd's seekable format.

For every interpreter's `threads` core: compress it with our writer (the
helper tests/integration/zst-compress.c, compiled here with $CC against
analyzer/common/zst_seekable.c and util.c), then check that

  * `pystack core FILE.zst --json` equals `pystack core FILE --json` except
    for the "core" field (the path);
  * the real `zstd -d` restores the identical core (the format is plain
    zstd to every other tool);
  * a core compressed by plain `zstd` (no seek table) is refused with exit
    status 3, exactly one stderr line and nothing on stdout.

The analysis wall time of the .zst and of the raw core, and the writer's
speed, are printed as `# ` diagnostics, not checked.

Environment: PYSTACK, PYSTACK_WRAPPER, PYSTACK_TEST_CORES, PYSTACK_TIMEOUT
(seconds per run, default 60), PYSTACK_TEST_ONLY (regex over
"<interpreter> threads"), CC (default cc), srcdir (the source tree, default
two levels above this file).  Exit status 0 unless the harness itself broke.
"""
from __future__ import print_function

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True   # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cores  # noqa: E402
from harness import programs  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP  # noqa: E402

EXIT_CORE = 3
SCENARIO = "threads"
TIMING_RUNS = 3
NOT_SEEKABLE = "a zstd file without a seek table: decompress it first (zstd -d)"


def source_dir():
    return os.environ.get("srcdir") or \
        os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))


def build_helper(tmp):
    """Compile zst-compress into tmp; (path or None, diagnostic lines)."""
    src = source_dir()
    out = os.path.join(tmp, "zst-compress")
    cmd = os.environ.get("CC", "cc").split() + [
        "-std=gnu11", "-O2", "-D_GNU_SOURCE",
        "-I", os.path.join(src, "analyzer", "common"),
        os.path.join(src, "tests", "integration", "zst-compress.c"),
        os.path.join(src, "analyzer", "common", "zst_seekable.c"),
        os.path.join(src, "analyzer", "common", "util.c"),
        "-lzstd", "-lpthread", "-o", out]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    except OSError as e:
        return None, ["cannot run %s: %s" % (cmd[0], e)]
    if p.returncode != 0:
        return None, ["command: %s" % " ".join(cmd)] + \
            p.stdout.decode("utf-8", "backslashreplace").splitlines()[:30]
    return out, []


def same_file(a, b, chunk=1 << 20):
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(chunk), fb.read(chunk)
            if x != y:
                return False
            if not x:
                return True


def json_without_core(res):
    """The report minus its "core" field, or None with a reason."""
    if res.rc != 0:
        return None, "exit status %r" % res.rc
    try:
        rep = res.json()
    except ValueError as e:
        return None, "not JSON: %s" % e
    rep.pop("core", None)
    return rep, None


def json_diff(a, b, path="", out=None, limit=10):
    """Up to `limit` paths where two JSON values differ."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append("%s.%s: only in %s" % (path, k,
                                                  "raw" if k in a else "zst"))
            else:
                json_diff(a[k], b[k], "%s.%s" % (path, k), out, limit)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append("%s: %d vs %d items" % (path, len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            json_diff(x, y, "%s[%d]" % (path, i), out, limit)
    elif a != b:
        out.append("%s: raw %r, zst %r" % (path, a, b))
    return out[:limit]


def best_time(args, timeout):
    """Fastest of TIMING_RUNS analyses (seconds), or None when one failed."""
    best = None
    for _ in range(TIMING_RUNS):
        res = run_pystack(args, timeout)
        if res.rc != 0:
            return None
        best = res.seconds if best is None else min(best, res.seconds)
    return best


def check_entry(tap, e, helper, tmp, timeout, have_zstd):
    tag = "%s %s" % (e.interp.label, e.scenario)
    zst = os.path.join(tmp, e.interp.label + ".core.zst")
    plain = os.path.join(tmp, e.interp.label + ".plain.zst")
    restored = os.path.join(tmp, e.interp.label + ".restored")

    p = subprocess.run([helper, "-l", "3", "-T", "2", e.core, zst],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not tap.ok(p.returncode == 0, "%s: compressed into the seekable format"
                  % tag, [p.stderr.decode("utf-8", "backslashreplace")]):
        return
    try:
        n_in, n_out, secs = p.stdout.split()
        n_in, n_out, secs = int(n_in), int(n_out), float(secs)
        tap.diag("%s: %.1f MiB -> %.1f MiB (%.1f%%), writer %.0f MB/s "
                 "(level 3, 2 threads)" % (
                     tag, n_in / 2.0 ** 20, n_out / 2.0 ** 20,
                     100.0 * n_out / max(n_in, 1),
                     n_in / 1e6 / max(secs, 1e-9)))
    except ValueError:
        pass

    raw_res = run_pystack(["core", e.core, "--json"] + e.pystack_args, timeout)
    zst_res = run_pystack(["core", zst, "--json"] + e.pystack_args, timeout)
    raw, why_raw = json_without_core(raw_res)
    got, why_zst = json_without_core(zst_res)
    diag = []
    if raw is None:
        diag += ["raw core: %s" % why_raw] + raw_res.describe()
    if got is None:
        diag += [".zst: %s" % why_zst] + zst_res.describe()
    if raw is not None and got is not None and raw != got:
        diag += ["reports differ:"] + json_diff(raw, got)
    core_field = None
    if got is not None:
        try:
            core_field = zst_res.json().get("core")
        except ValueError:
            pass
    tap.ok(not diag, "%s: the .zst report equals the raw core's" % tag, diag)
    tap.ok(core_field == zst, "%s: the .zst report names the .zst file" % tag,
           ["core: %r" % core_field])

    t_raw = best_time(["core", e.core, "--json"] + e.pystack_args, timeout)
    t_zst = best_time(["core", zst, "--json"] + e.pystack_args, timeout)
    if t_raw is not None and t_zst is not None:
        tap.diag("%s: analysis wall time (best of %d): raw %.3fs, .zst %.3fs"
                 " (x%.2f)" % (tag, TIMING_RUNS, t_raw, t_zst,
                               t_zst / max(t_raw, 1e-9)))

    if not have_zstd:
        tap.skip("%s: zstd -d restores the core: no zstd tool" % tag)
        tap.skip("%s: plain zstd core refused: no zstd tool" % tag)
        return
    p = subprocess.run(["zstd", "-q", "-d", "-f", "-o", restored, zst],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tap.ok(p.returncode == 0 and same_file(restored, e.core),
           "%s: zstd -d restores the identical core" % tag,
           ["zstd exit status %d" % p.returncode,
            p.stderr.decode("utf-8", "backslashreplace")])
    for f in (restored,):
        if os.path.exists(f):
            os.unlink(f)

    p = subprocess.run(["zstd", "-q", "-1", "-f", "-o", plain, e.core],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not tap.ok(p.returncode == 0, "%s: plain zstd compresses the core"
                  % tag, [p.stderr.decode("utf-8", "backslashreplace")]):
        return
    for mode in ([], ["--json"]):
        res = run_pystack(["core", plain] + mode + e.pystack_args, timeout)
        err = res.err.splitlines()
        tap.ok(res.rc == EXIT_CORE and len(err) == 1 and not res.out
               and NOT_SEEKABLE in err[0],
               "%s: a plain zstd core is refused (exit 3, one stderr line)%s"
               % (tag, " --json" if mode else ""), res.describe())
    os.unlink(plain)
    os.unlink(zst)


def main():
    tap = TAP()
    pystack = programs.pystack()
    if not os.access(pystack, os.X_OK):
        tap.ok(False, "analyzer %s is built" % pystack,
               ["build it first (make), or set PYSTACK"])
        return tap.done()
    try:
        entries = cores.ensure_cores(scenarios=[SCENARIO], verbose=False)
    except Exception as e:
        return tap.skip_all("cannot make test cores: %s: %s"
                            % (type(e).__name__, e))
    timeout = float(os.environ.get("PYSTACK_TIMEOUT", "60"))
    only = os.environ.get("PYSTACK_TEST_ONLY")
    rx = re.compile(only) if only else None
    have_zstd = shutil.which("zstd") is not None
    tmp = tempfile.mkdtemp(prefix="pystack-zst-")
    try:
        helper, diag = build_helper(tmp)
        if not tap.ok(helper is not None,
                      "zst-compress helper compiles", diag):
            return tap.done()
        for e in entries:
            tag = "%s %s" % (e.interp.label, e.scenario)
            if rx and not rx.search(tag):
                continue
            if e.status == "skip":
                tap.skip("%s: %s" % (tag, e.message))
                continue
            if e.status != "ok":
                tap.ok(False, "%s: core generation" % tag, [e.message])
                continue
            check_entry(tap, e, helper, tmp, timeout, have_zstd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tap.diag("%d tests, %d failed, %d skipped"
             % (tap.n, tap.failed, tap.skipped))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
