#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: each module of `pystack core CORE --json` carries its file's FDO
package metadata note (https://systemd.io/ELF_PACKAGE_METADATA/) as
"package", on a real core.

One crash of Debian's python3.X run as a copy that objcopy gave a
.note.package section, with four files of ours loaded:

  crashext    tests/integration/cext/crashext.c built for the interpreter
              with a package note (assembled here, byte for byte) whose
              strings hold a raw U+202E, an escaped BEL and an e-acute;
              imported, and crash_in_helper() makes the SIGSEGV
  libpkgld    a package note written by `ld --package-metadata` (skipped
              when the linker has no such option)
  libpkgbad   a note that is not JSON ({"name": "bad",)
  libpkgbig   a note of 5 KiB of JSON (the analyzer takes 4 KiB at most)

The cases (--native: the analysis opens every mapped file, and "modules"
lists them; without it only the interpreter's):

  executable  the interpreter copy's module has its note's object, with
              and without --native
  crashext    crashext's module has its object; the report writes the raw
              U+202E as \\u202e (the escape rule), never raw
  ld          libpkgld's module has the object ld wrote
  invalid     libpkgbad's module has null, and a warning names it
  too-big     libpkgbig's module has null, and a warning names it
  libc        libc.so.6 (Debian's has no note) has null; every module has
              the member
  text        the text report shows none of it
  moved       crashext's file moved away and found by --lib-search-path:
              the note of that file is still reported
  other-build another build of crashext (another build-id, another note)
              at the core's path: refused, its note not reported

Cores are made with harness/corepattern.py's CorePattern (core_pattern
under its flock, restored on every exit path, RLIMIT_CORE raised), as
cores.py makes them.  Root is needed for that; without it, or without
Debian's python3.X and its headers, cc or objcopy, the whole test is
skipped.  Environment: PYSTACK, PYSTACK_WRAPPER, PYSTACK_TIMEOUT (60),
PYSTACK_TEST_CORES (where the scratch directory goes).
"""
import glob
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True   # the source tree may be read-only
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(HERE, "cext"))
import build as crashext_build  # noqa: E402
import cores  # noqa: E402
from harness import programs  # noqa: E402
from harness.corepattern import CorePattern  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP  # noqa: E402

NT_FDO_PACKAGING_METADATA = 0xcafe1a7e

EXE_PACKAGE = {"type": "deb", "name": "python3-copy", "version": "3.11.2-6+test",
               "architecture": "amd64", "os": "debian", "osVersion": "12"}
# written as UTF-8 with a raw U+202E and an escaped BEL: the report must
# escape both, and json.loads() must give them back
CREXT_JSON = (u'{"type":"deb","name":"crashext","version":"1.2-3",'
              u'"architecture":"amd64","os":"debian","osVersion":"12",'
              u'"description":"caf\u00e9 \u202edrawkcab\u202c \\u0007"}')
CREXT_PACKAGE = json.loads(CREXT_JSON)
OTHER_PACKAGE = {"type": "deb", "name": "crashext-other-build", "version": "9"}
LD_PACKAGE = {"type": "rpm", "name": "libpkgld", "version": "0.1-1.fc40",
              "architecture": "x86_64", "os": "fedora", "osVersion": "40"}
BAD_JSON = b'{"name": "bad",'
BIG_JSON = json.dumps({"name": "big", "padding": "x" * 5120}).encode()

LIB_SOURCE = "int pkgnote_marker_%s(void) { return 42; }\n"
CRASH_SCRIPT = r'''
import ctypes, sys
libs = [ctypes.CDLL(p) for p in sys.argv[2:]]
sys.path.insert(0, sys.argv[1])
import crashext
crashext.crash_in_helper(2)
'''


def note_asm(desc):
    """An assembler file whose only content is a .note.package section
    holding one FDO note with descriptor `desc` (bytes, taken as they are:
    any NUL must be in it)."""
    lines = ['\t.section .note.package,"a",@note', "\t.balign 4",
             "\t.long 4", "\t.long %d" % len(desc),
             "\t.long 0x%x" % NT_FDO_PACKAGING_METADATA, '\t.asciz "FDO"']
    for i in range(0, len(desc), 16):
        lines.append("\t.byte " + ",".join(str(b) for b in desc[i:i + 16]))
    lines += ["\t.balign 4", '\t.section .note.GNU-stack,"",@progbits', ""]
    return "\n".join(lines)


def note_file(json_bytes):
    """The raw note (header, owner, descriptor) for objcopy --add-section."""
    desc = json_bytes + b"\0"
    desc += b"\0" * (-len(desc) % 4)
    return struct.pack("<III", 4, len(desc), NT_FDO_PACKAGING_METADATA) + \
        b"FDO\0" + desc


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv),
                                                   p.returncode, p.stdout))
    return p.stdout


def assemble(work, name, desc):
    src = os.path.join(work, name + ".S")
    with open(src, "w") as fh:
        fh.write(note_asm(desc))
    obj = os.path.join(work, name + ".o")
    run([os.environ.get("CC", "cc"), "-c", src, "-o", obj])
    return obj


def shared_lib(work, name, extra):
    src = os.path.join(work, name + ".c")
    with open(src, "w") as fh:
        fh.write(LIB_SOURCE % name)
    so = os.path.join(work, name + ".so")
    run([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-O2", src, "-o",
         so] + list(extra))
    return so


def ld_has_package_metadata():
    try:
        out = subprocess.run(["ld", "--help"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL,
                             universal_newlines=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "--package-metadata" in out


def system_python():
    """Debian's /usr/bin/python3.X (the file, not a link), or None; not
    cores.find_interpreters(), which may build whole trees."""
    for exe in sorted(glob.glob("/usr/bin/python3.*"), reverse=True):
        m = re.match(r"^/usr/bin/python(3\.\d+)$", exe)
        if m and not os.path.islink(exe) and os.access(exe, os.X_OK):
            return cores.Interpreter("system-" + m.group(1), exe, m.group(1),
                                     "system")
    return None


class Setup(object):
    pass


def prepare(work, interp):
    """Build every file of the crash; returns a Setup."""
    s = Setup()
    s.work = work
    s.python = os.path.join(work, "bin", os.path.basename(interp.path))
    os.makedirs(os.path.dirname(s.python))
    raw = os.path.join(work, "exe-note.bin")
    with open(raw, "wb") as fh:
        fh.write(note_file(json.dumps(EXE_PACKAGE).encode()))
    # objcopy says the new allocated section is in no segment: it need not be
    run(["objcopy", "--add-section", ".note.package=" + raw,
         "--set-section-flags", ".note.package=alloc,readonly",
         interp.path, s.python])
    s.moddir = os.path.join(work, "crashext")
    s.crashext = crashext_build.build(
        interp.path, s.moddir, force=True,
        extra_args=[assemble(work, "crashext-note",
                             CREXT_JSON.encode("utf-8") + b"\0")])
    # another build of the module (another build-id) with another note
    s.otherdir = os.path.join(work, "crashext-other")
    s.other = crashext_build.build(
        interp.path, s.otherdir, force=True,
        extra_args=["-DPKGNOTE_OTHER_BUILD=1",
                    assemble(work, "other-note",
                             json.dumps(OTHER_PACKAGE).encode() + b"\0")])
    s.libs = {}
    s.libs["bad"] = shared_lib(work, "libpkgbad",
                               [assemble(work, "bad-note", BAD_JSON + b"\0")])
    s.libs["big"] = shared_lib(work, "libpkgbig",
                               [assemble(work, "big-note", BIG_JSON + b"\0")])
    if ld_has_package_metadata():
        s.libs["ld"] = shared_lib(work, "libpkgld", [
            "-Xlinker", "--package-metadata=" + json.dumps(LD_PACKAGE)])
    s.script = os.path.join(work, "crash.py")
    with open(s.script, "w") as fh:
        fh.write(CRASH_SCRIPT)
    return s


def make_core(s):
    env = dict((k, v) for k, v in os.environ.items()
               if not k.startswith("PYTHON"))
    env["LC_ALL"] = env["LANG"] = "C.UTF-8"
    with CorePattern(s.work) as fixture:
        rc, core = fixture.run_crash(
            [s.python, "-E", "-s", "-B", s.script, s.moddir] +
            [s.libs[k] for k in sorted(s.libs)], env=env, cwd=s.work)
        if core is None or rc is None or rc >= 0:
            raise RuntimeError("no core (exit status %r)" % rc)
        s.core = os.path.join(s.work, "core")
        shutil.move(core, s.core)


def modules_by_path(rep):
    return dict((m.get("path"), m) for m in rep.get("modules") or [])


def warnings_naming(rep, path):
    return [w for w in rep.get("warnings") or [] if path in w]


def check_package(tap, rep, path, want, what):
    mods = modules_by_path(rep)
    m = mods.get(path)
    tap.ok(m is not None and m.get("package") == want,
           "%s: %s" % (what, "its package" if want is not None else "null"),
           ["module %s: %r" % (path, m), "want package %r" % (want,),
            "modules: %s" % sorted(mods)])


def check_refused(tap, rep, path, words, what):
    m = modules_by_path(rep).get(path)
    w = warnings_naming(rep, path)
    tap.ok(m is not None and "package" in m and m["package"] is None and
           any(words in x for x in w),
           "%s: package null and a warning (%s)" % (what, words),
           ["module %s: %r" % (path, m), "warnings: %r" % rep.get("warnings")])


def analyse(tap, s, timeout, extra=()):
    r = run_pystack(["core", s.core, "--json"] + list(extra), timeout)
    rep = r.json_or_none()
    ok = r.rc == 0 and isinstance(rep, dict)
    return r, (rep if ok else None)


def cases(tap, s, timeout):
    # without --native the analysis opens only the files it reads the
    # interpreter from: here the executable
    r, rep = analyse(tap, s, timeout)
    tap.ok(rep is not None, "pystack core --json runs", r.describe())
    if rep is not None:
        check_package(tap, rep, s.python, EXE_PACKAGE,
                      "executable, without --native")
    # with it, every mapped file: the reports pystackd keeps
    r, rep = analyse(tap, s, timeout, ["--native"])
    tap.ok(rep is not None, "pystack core --native --json runs", r.describe())
    if rep is None:
        return
    mods = modules_by_path(rep)
    check_package(tap, rep, s.python, EXE_PACKAGE,
                  "executable (objcopy --add-section)")
    check_package(tap, rep, s.crashext, CREXT_PACKAGE, "crashext (assembled)")
    raw = r.out
    tap.ok("\u202e" not in raw and "\x07" not in raw and "\\u202e" in raw and
           "\\u0007" in raw,
           "crashext: U+202E and BEL written as \\u escapes, never raw",
           ["the report's description: %r" %
            [l for l in raw.split(",") if "description" in l]])
    if "ld" in s.libs:
        check_package(tap, rep, s.libs["ld"], LD_PACKAGE,
                      "libpkgld (ld --package-metadata)")
    else:
        tap.skip("ld has no --package-metadata")
    check_refused(tap, rep, s.libs["bad"], "not a NUL-terminated JSON object",
                  "libpkgbad (not JSON)")
    check_refused(tap, rep, s.libs["big"], "longer than 4096 bytes",
                  "libpkgbig (5 KiB)")
    libc = [m for p, m in mods.items() if os.path.basename(p) == "libc.so.6"]
    tap.ok(len(libc) == 1 and "package" in libc[0] and
           libc[0]["package"] is None and
           all("package" in m for m in mods.values()),
           "libc.so.6: null; every module has the member",
           ["libc: %r" % libc,
            "without the member: %r" % [p for p, m in mods.items()
                                        if "package" not in m]])
    ours = (s.libs["bad"], s.libs["big"])
    stray = [w for w in rep.get("warnings") or []
             if "package" in w and not any(p in w for p in ours)]
    tap.ok(not stray, "no package warning about other modules", stray)

    rt = run_pystack(["core", s.core, "--native"], timeout)
    leaked = [v for v in ("python3-copy", "3.11.2-6+test", "1.2-3", "drawkcab",
                          "libpkgld", "0.1-1.fc40", "osVersion")
              if v in rt.out]
    tap.ok(rt.rc == 0 and not leaked,
           "the text report shows no package", rt.describe() + leaked)

    # the note comes from the file verified by build-id, wherever it was found
    moved = os.path.join(s.work, "moved")
    os.makedirs(moved)
    shutil.move(s.crashext, os.path.join(moved, os.path.basename(s.crashext)))
    r2, rep2 = analyse(tap, s, timeout, ["--native", "--lib-search-path",
                                         moved])
    if rep2 is None:
        tap.ok(False, "moved: pystack runs", r2.describe())
    else:
        check_package(tap, rep2, s.crashext, CREXT_PACKAGE,
                      "moved (found by --lib-search-path)")
    shutil.copy(s.other, s.crashext)
    r3, rep3 = analyse(tap, s, timeout, ["--native"])
    if rep3 is None:
        tap.ok(False, "other-build: pystack runs", r3.describe())
    else:
        m = modules_by_path(rep3).get(s.crashext)
        tap.ok(m is None and "crashext-other-build" not in r3.out and
               warnings_naming(rep3, s.crashext),
               "other-build: refused (build-id), its note not reported",
               ["module: %r" % (m,), "warnings: %r" % rep3.get("warnings")])


def main():
    tap = TAP()
    if os.geteuid() != 0:
        return tap.skip_all("not root: core_pattern cannot be changed")
    pystack = programs.pystack()
    if not os.access(pystack, os.X_OK):
        tap.ok(False, "analyzer %s is built" % pystack,
               ["build it first (make), or set PYSTACK"])
        return tap.done()
    missing = [t for t in (os.environ.get("CC", "cc"), "objcopy", "ld")
               if not shutil.which(t)]
    if missing:
        return tap.skip_all("not installed: %s" % " ".join(missing))
    interp = system_python()
    if interp is None:
        return tap.skip_all("Debian's /usr/bin/python3.X is not installed")
    try:
        cfg = crashext_build.config(interp.path)
    except crashext_build.BuildError as e:
        return tap.skip_all(str(e))
    if not all(os.path.exists(os.path.join(d, "Python.h"))
               for d in cfg["include"]):
        return tap.skip_all("no Python.h for %s (python3-dev)" % interp.path)
    timeout = float(os.environ.get("PYSTACK_TIMEOUT", "60"))
    base = cores.cache_dir()
    os.makedirs(base, exist_ok=True)
    work = tempfile.mkdtemp(prefix="package-notes.", dir=base)

    def bail(signum, frame):
        # (while the core is made, CorePattern's own handler runs)
        shutil.rmtree(work, ignore_errors=True)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, bail)
    try:
        try:
            s = prepare(work, interp)
            make_core(s)
        except (RuntimeError, OSError, subprocess.SubprocessError,
                crashext_build.BuildError) as e:
            tap.ok(False, "setup: the files and the core of %s" % interp.label,
                   [str(e)])
            return tap.done()
        tap.diag("%s, core %s" % (interp.label, s.core))
        cases(tap, s, timeout)
    finally:
        if os.environ.get("PYSTACK_TEST_KEEP"):
            tap.diag("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
