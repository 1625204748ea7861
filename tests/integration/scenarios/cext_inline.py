# -*- coding: utf-8 -*-
"""(g) SIGSEGV inside a C extension: crashext.crash_in_helper() dereferences
NULL in a `static inline __attribute__((always_inline))` helper, called
from two nested Python functions in the main thread, one other thread
blocked.

The module is tests/integration/cext/crashext.c built for this interpreter
(cext/build.py: its own INCLUDEPY/EXT_SUFFIX/CFLAGS, -O2 -g) into
$PYSTACK_CRASHEXT_DIR, by default the directory `_crashext` next to this
scenario's cache entry (<cache>/<interpreter>/_crashext: test_native.py
builds it there first; otherwise the scenario builds it itself).  An
interpreter run under an emulator (cores.py's aarch64 ones) cannot build it
itself -- a compiler it starts runs natively and makes host modules -- so
cores.py cross-compiles it and says so in PYSTACK_CRASHEXT_PREBUILT: the
module's path, or "skip: WHY" / "error: WHY" when it could not.  The
expectation's notes name the module, its source and the lines the native
frames must show."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(os.path.dirname(HERE), "cext"))
import _common  # noqa: E402
import build as crashext_build  # noqa: E402


def module_dir():
    d = os.environ.get("PYSTACK_CRASHEXT_DIR")
    if d:
        return os.path.abspath(d)
    entry = os.path.dirname(os.path.abspath(_common.expect_path()))
    return os.path.join(os.path.dirname(entry), "_crashext")


def inner(crashext, notes):
    _common.write_expectation("SIGSEGV", notes=notes); crashext.crash_in_helper(2)  # noqa: E702,E501


def outer(crashext, notes):
    inner(crashext, notes)


def blocked():
    _common.park()


def prebuilt(verdict):
    """The module the harness built for this interpreter (its path); or a
    SKIP, or an error (exit 3), with the harness's reason."""
    if verdict.startswith("skip: "):
        _common.skip(verdict[len("skip: "):])
    if verdict.startswith("error: "):
        why = verdict[len("error: "):]
    elif not os.path.exists(verdict):
        why = "%s, built by the harness, is missing" % verdict
    else:
        return verdict
    sys.stderr.write("cannot build crashext: %s\n" % why)
    sys.exit(3)


def main():
    _common.init("cext_inline")
    verdict = os.environ.get("PYSTACK_CRASHEXT_PREBUILT")
    cc = os.environ.get("CC", "cc")
    if verdict:
        so = prebuilt(verdict)
        outdir = os.path.dirname(so)
    elif not any(os.access(os.path.join(d, cc), os.X_OK)
               for d in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)):
        # Debian sid's interpreters run in a tree with no compiler
        _common.skip("no C compiler (%s) where %s runs: crashext cannot be built"
                     % (cc, sys.executable))
        return
    else:
        outdir = module_dir()
        try:
            so = crashext_build.build(sys.executable, outdir)
        except crashext_build.BuildError as e:
            # a broken build is an error of the test setup, not a SKIP
            sys.stderr.write("cannot build crashext: %s\n" % e)
            sys.exit(3)
    sys.path.insert(0, outdir)
    import crashext
    if os.path.realpath(crashext.__file__) != os.path.realpath(so):
        sys.stderr.write("imported %s instead of %s\n" % (crashext.__file__, so))
        sys.exit(3)
    notes = {"module": os.path.realpath(so),
             "module_name": os.path.basename(so),
             "source": crashext_build.SOURCE,
             "helper_function": "crashext_deref_helper",
             "helper_line": crashext_build.marker_line(
                 crashext_build.HELPER_MARK),
             "function": "crash_in_helper",
             "call_line": crashext_build.marker_line(crashext_build.CALL_MARK)}
    _common.start(blocked, name="blocked")
    _common.wait_parked(count=1)
    outer(crashext, notes)


if __name__ == "__main__":
    main()
