#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: a store the release with schema version 2 wrote opens with this
build's pystackctl, which migrates it, and every query gives byte for byte
what the release's pystackctl gave.

Run as root from the build directory (after `make`):

    /usr/bin/python3 ../tests/integration/test_store_migration.py

Environment:
  PYSTACKCTL   the program under test (default: the build directory's, harness/programs.py)

The fixture, tests/fixtures/store-v2 (README.md there says how it was made),
holds pystack.db (PRAGMA user_version 2), its cores/*.zst, and in expected/
the commands (cases.json) and what the release's pystackctl printed for
them (FIXES below lists, with reasons, the differences that are bug fixes): list, info, show (plain, --native, --locals, --native --locals,
--json) of every crash, groups, each as text and JSON.  The store's
directory is written there as @STORE@.

A copy of the fixture goes to /tmp/pystackd-store-v2.XXXXXXXX (removed at
the end), with a configuration of its own; pystackctl, as root, reads the
store directly: the first run migrates it.  Checks: the copy is at version
2 before; every command's exit status, stdout and stderr (placeholder
substituted; stderr not where cases.json says why not); after the first run the version is 2 or more, later runs do
not change it, and SQLite's integrity check passes.

Then, with the real kernel (core_pattern under harness/corepattern.py's
lock, restored on every exit path): a Python process crashes into another
copy of the fixture; the handler takes the core before it migrates the
store, and the crash is recorded beside the old ones.
"""
import difflib
import os
import shutil
import sqlite3
import subprocess
import sys
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pystackd_fixture as pf  # noqa: E402
import store_fixture as sf  # noqa: E402
from harness import programs  # noqa: E402
from harness.tap import TAP  # noqa: E402


def diff(expected, got, limit=40):
    """A unified diff of two outputs, for the diagnostics."""
    e = expected.decode("utf-8", "backslashreplace").splitlines()
    g = got.decode("utf-8", "backslashreplace").splitlines()
    lines = list(difflib.unified_diff(e, g, "expected", "got", lineterm="", n=1))
    if not lines and expected != got:
        lines = ["same lines, other bytes (line ends or a final newline): "
                 "expected %d bytes, got %d" % (len(expected), len(got))]
    return lines[:limit] + (["..."] if len(lines) > limit else [])


# Differences from the release that are bug fixes, each with its reason: (expected file, what the
# release printed, what is right).  Nothing else may differ.
FIXES = [
    ("list.txt", b" -m                   handle", b" -m crashmod          handle",
     "the script of `python3 -m crashmod` is `-m crashmod`: list derived it by a second rule that "
     "dropped the module (issue 12)"),
    ("list.json", b'"script":"-m"', b'"script":"-m crashmod"', "the same, in JSON"),
] + [
    ("info-%d.json" % i, b'"signature":%s,"analyzed_usec"' % sig, b'"analyzed_usec"',
     "info --json had the key \"signature\" twice, the column's string and then its group's object "
     "(which JSON readers kept); the object alone now (issue 12)")
    for i, sig in ((1, b'"88f822dc90b03632"'), (2, b'"665ee900e49c5af8"'), (3, b'"aaa9fcb7e34ecca9"'),
                   (4, b'"665ee900e49c5af8"'), (5, b'null'))
] + [
    # info's "seen" times were the analyses' (signatures.first_usec/last_usec); now the crashes'
    # own, as groups shows them
    (name, old, new, "info's first and last seen are the crashes' times, not their analyses' (issue 12)")
    for n, first, last, first_t, last_t, a_first, a_last, a_first_t, a_last_t in (
        (1, 1796170531787606, 1796170531787606, b"00:15:31", b"00:15:31",
         1796170596315736, 1796170596315736, b"00:16:36", b"00:16:36"),
        (2, 1796170548111471, 1796170578316103, b"00:15:48", b"00:16:18",
         1796170596581788, 1796170597173911, b"00:16:36", b"00:16:37"),
        (3, 1796170561664120, 1796170561664120, b"00:16:01", b"00:16:01",
         1796170596881893, 1796170596881893, b"00:16:36", b"00:16:36"),
        (4, 1796170548111471, 1796170578316103, b"00:15:48", b"00:16:18",
         1796170596581788, 1796170597173911, b"00:16:36", b"00:16:37"))
    for name, old, new in (
        ("info-%d.json" % n, b'"first_usec":%d,"last_usec":%d}' % (a_first, a_last),
         b'"first_usec":%d,"last_usec":%d}' % (first, last)),
        ("info-%d.txt" % n,
         b"First seen: Wed 2026-12-02 %s UTC\n       Last seen: Wed 2026-12-02 %s UTC" % (a_first_t, a_last_t),
         b"First seen: Wed 2026-12-02 %s UTC\n       Last seen: Wed 2026-12-02 %s UTC" % (first_t, last_t)))
] + [
    ("info-%d.json" % n, b"}\n", b',"binaries":[]}\n',
     "info --json lists the files the handler kept at the crash; the release kept none (issue 13)")
    for n in range(1, 6)
] + [
    ("info-%d.json" % n, b'"container":0,"dumpable"',
     b'"container":0,"container_runtime":null,"container_id":null,"dumpable"',
     "info --json has the container's runtime and id from its cgroup; the release recorded none (issue 13)")
    for n in range(1, 6)
]


def expected_after_fixes(tap, case, want):
    for name, old, new, why in FIXES:
        if case["stdout"] == name:
            if old not in want:
                tap.diag("fix %r: %r is no longer in expected/%s" % (why, old, name))
            want = want.replace(old, new)
            tap.diag("pystackctl %s: expected as the release printed it, but for a fix: %s" % (case["name"], why))
    return want


def check_case(tap, ctl, copy, case):
    args = case["args"]
    rc, out, err = sf.run_ctl(ctl, copy.conf, args)
    want_out = expected_after_fixes(tap, case, copy.substitute(sf.expected_stdout(case)))
    want_err = None if case["stderr"] is None else \
        copy.substitute(case["stderr"].encode("utf-8", "surrogateescape"))
    d = []
    if rc != case["status"]:
        d.append("exit status %r, expected %r" % (rc, case["status"]))
    if out != want_out:
        d.append("stdout differs from expected/%s:" % case["stdout"])
        d += ["  " + l for l in diff(want_out, out)]
    if want_err is None:
        tap.diag("pystackctl %s: stderr %s" % (case["name"], case.get("stderr_note", "not compared")))
    elif err != want_err:
        d.append("stderr %r, expected %r" % (err[:300], want_err[:300]))
    tap.ok(not d, "pystackctl %s: as the release printed it" % case["name"], d)


LOCK_HELD = 8       # seconds a writer holds the old store while a process crashes into it


def crash_into_old_store(tap):
    """The crash handler meets a store at the old schema: it takes the core
    first (the crashing process never waits for a migration), then migrates
    the store and records the crash; the old crashes stay."""
    from harness import corepattern
    with corepattern.PipeHandlerFixture(pipe_limit=4) as fx:
        st = pf.Store(fx, "old", analysis="Workers=1")
        os.mkdir(st.storage, 0o700)
        copy = sf.Copy()
        try:
            shutil.copyfile(copy.db_path, st.db_path)
            os.chmod(st.db_path, 0o600)
            shutil.copytree(os.path.join(copy.storage, "cores"), os.path.join(st.storage, "cores"))
        finally:
            copy.remove()
        before = sqlite3.connect(st.db_path).execute("PRAGMA user_version").fetchone()[0]
        st.install()
        w = pf.Worker(fx, st, tag="old")
        if not tap.ok(w.wait_ready(), "old store: a worker to crash is ready"):
            w.discard()
            return
        pid = w.pid
        # a writer holds the store (as pystackd may): the migration waits for it, the crashing
        # process must not; held for less than the handler's busy timeout (10 s)
        lock = sqlite3.connect(st.db_path, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        w.send_crash()
        try:
            w.p.wait(timeout=LOCK_HELD)
            reaped = True
        except subprocess.TimeoutExpired:
            reaped = False
        lock.execute("ROLLBACK")
        lock.close()
        rc = w.reap()
        tap.ok(reaped, "old store, held by a writer: the crashed process is let go before the store "
               "is free to migrate (within the %d s it was held)" % LOCK_HELD,
               ["the worker was still held by the handler when the writer let go"])
        fx.reset_pattern()
        ok, rows = st.wait(lambda rs: any(r["pid"] == pid and r["core_state"] == "present" for r in rs), 60)
        con = sqlite3.connect(st.db_path)
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            n = con.execute("SELECT count(*) FROM crashes").fetchone()[0]
            integrity = con.execute("PRAGMA integrity_check").fetchall()
        finally:
            con.close()
        tap.ok(ok and before == sf.SCHEMA_VERSION and version > sf.SCHEMA_VERSION and
               n == 6 and integrity == [("ok",)],
               "old store (schema %r): a crash into it is taken and recorded, the store migrated "
               "to %r, its 5 crashes kept" % (before, version),
               ["worker exit %r, rows: %r, crashes %r, integrity %r" % (rc, [pf.brief(r) for r in rows],
                                                                        n, integrity)])


def main():
    tap = TAP()
    ctl = programs.pystackctl()
    if not os.access(ctl, os.X_OK):
        tap.ok(False, "pystackctl %s is built" % ctl, ["build it first (make), or set PYSTACKCTL"])
        return tap.done()
    if os.geteuid() != 0:
        tap.skip("not root: pystackctl reads the store directly only as root")
        return tap.done()
    try:
        manifest = sf.cases()
    except (OSError, ValueError) as e:
        tap.ok(False, "the fixture's manifest %s" % sf.cases_path(), [str(e)])
        return tap.done()
    copy = sf.Copy()
    try:
        tap.diag("fixture %s copied to %s; pystackctl %s" % (sf.FIXTURE, copy.storage, ctl))
        before = copy.user_version()
        tap.ok(before == sf.SCHEMA_VERSION == manifest.get("schema_version"),
               "the fixture's store is at schema version %d (PRAGMA user_version %r)"
               % (sf.SCHEMA_VERSION, before))
        after_first = None
        for n, case in enumerate(manifest["cases"]):
            try:
                check_case(tap, ctl, copy, case)
            except Exception:
                tap.ok(False, "pystackctl %s: the harness" % case.get("name"),
                       traceback.format_exc().splitlines())
            if n == 0:
                after_first = copy.user_version()
                tap.ok(after_first >= sf.SCHEMA_VERSION,
                       "after the first open the schema version is %r (>= %d)"
                       % (after_first, sf.SCHEMA_VERSION))
        last = copy.user_version()
        tap.ok(last == after_first,
               "%d more opens leave the schema version at %r (now %r)"
               % (len(manifest["cases"]) - 1, after_first, last))
        integrity = copy.query("PRAGMA integrity_check")
        tap.ok(integrity == [(b"ok",)], "the migrated store passes PRAGMA integrity_check",
               [repr(integrity[:10])])
    finally:
        copy.remove()
    try:
        crash_into_old_store(tap)
    except Exception:
        tap.ok(False, "old store: the harness", traceback.format_exc().splitlines())
    tap.diag("%d tests, %d failed, %d skipped" % (tap.n, tap.failed, tap.skipped))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
