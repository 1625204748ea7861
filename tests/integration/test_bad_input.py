#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: `pystack core` on bad input.

For every input (missing file, directory, empty/text file, an ELF that is
not a core, truncated and corrupted copies of a real core, a core of a
non-Python program, a wrong EXECUTABLE, another architecture (named), usage
errors), in text and --json mode: the exit status documented in
doc/report-schema.md, exactly one line on stderr, nothing on stdout, and
done within the time limit.

Environment: PYSTACK (default: harness/programs.py), PYSTACK_WRAPPER,
PYSTACK_TEST_CORES (core cache, see cores.py), PYSTACK_TIMEOUT (seconds,
default 10).  Exit status 1 when a check failed (harness/tap.py).
"""
from __future__ import print_function

import json
import mmap
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True   # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cores  # noqa: E402
from harness import programs  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP  # noqa: E402

EXIT_USAGE, EXIT_CORE, EXIT_EXE, EXIT_NOPY = 2, 3, 4, 5
PT_LOAD, PT_NOTE = 1, 4
NT_FILE = 0x46494c45


class Elf(object):
    """The bits of an ELF64 little-endian core header we need."""

    def __init__(self, path):
        with open(path, "rb") as fh:
            self.head = fh.read(64)
            (self.phoff,) = struct.unpack_from("<Q", self.head, 0x20)
            self.phentsize, self.phnum = struct.unpack_from("<HH", self.head,
                                                            0x36)
            fh.seek(self.phoff)
            raw = fh.read(self.phentsize * self.phnum)
            self.phdrs = []
            for i in range(self.phnum):
                (p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz,
                 p_memsz, p_align) = struct.unpack_from(
                     "<IIQQQQQQ", raw, i * self.phentsize)
                self.phdrs.append({"type": p_type, "offset": p_offset,
                                   "filesz": p_filesz, "index": i})
            note = self.note()
            fh.seek(note["offset"])
            self.notes_raw = fh.read(note["filesz"])
        self.size = os.path.getsize(path)

    def note(self):
        return [p for p in self.phdrs if p["type"] == PT_NOTE][0]

    def loads(self):
        return [p for p in self.phdrs if p["type"] == PT_LOAD
                and p["filesz"] > 0]

    def notes(self):
        """[(offset in file of the note header, namesz, descsz, type)]"""
        out = []
        base = self.note()["offset"]
        off = 0
        raw = self.notes_raw
        while off + 12 <= len(raw):
            namesz, descsz, ntype = struct.unpack_from("<III", raw, off)
            out.append((base + off, namesz, descsz, ntype))
            off += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
        return out


def copy_truncated(src, dst, length):
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        remaining = length
        while remaining > 0:
            chunk = fi.read(min(remaining, 1 << 20))
            if not chunk:
                break
            fo.write(chunk)
            remaining -= len(chunk)
    return dst


def copy_patched(src, dst, patches):
    """patches: [(offset, bytes)]"""
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as fh:
        for off, data in patches:
            fh.seek(off)
            fh.write(data)
    return dst


BOTH = ("text", "json")
# a damaged core whose remains may still be reported on stdout
PARTIAL = ("text-partial", "json-partial")


def make_cases(tmp, nonpy):
    """[(name, argv after 'pystack', expected exit status, modes)] that need
    no Python core."""
    cases = []

    def add(name, args, code, modes=BOTH):
        cases.append((name, args, code, modes))

    # usage errors (no core involved)
    add("usage: no arguments", [], EXIT_USAGE, ("text",))
    add("usage: core without CORE", ["core"], EXIT_USAGE)
    add("usage: unknown subcommand", ["bogus-subcommand"], EXIT_USAGE,
        ("text",))
    add("usage: unknown option", ["core", "--no-such-option", "/dev/null"],
        EXIT_USAGE, ("text",))

    # not a core at all
    add("nonexistent file", ["core", os.path.join(tmp, "no-such-core")],
        EXIT_CORE)
    add("a directory", ["core", tmp], EXIT_CORE)
    add("/dev/null", ["core", "/dev/null"], EXIT_CORE)
    empty = os.path.join(tmp, "empty")
    open(empty, "wb").close()
    add("empty file", ["core", empty], EXIT_CORE)
    text = os.path.join(tmp, "text")
    with open(text, "w") as fh:
        fh.write("this is not a core file\n" * 100)
    add("text file", ["core", text], EXIT_CORE)
    true = shutil.which("true") or "/bin/true"
    add("ELF that is not a core (%s)" % true, ["core", os.path.realpath(true)],
        EXIT_CORE)

    if nonpy:
        add("core of a non-Python program (sleep + SIGSEGV)",
            ["core", nonpy], EXIT_NOPY)
    return cases


# word index of thread_state.size in _Py_DebugOffsets, per minor
TS_SIZE_WORD = {13: 19, 14: 22, 15: 22}
# and of pyobject.ob_type
OB_TYPE_WORD = {13: 45, 14: 51, 15: 59}


def make_block_cases(tmp, entry):
    """Copies of a 3.13+ core whose _Py_DebugOffsets block (in the core's
    copy of _PyRuntime) claims another version, a free-threaded build, or
    impossible sizes and offsets: one line naming what was found, exit 5."""
    # A free-threaded core is about 1 GiB long and mostly holes (mimalloc's
    # reservations): it is mapped, not read, and copied sparse.
    with open(entry.core, "rb") as fh:
        data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    spots = []
    at = data.find(b"xdebugpy")
    while at >= 0:
        version = struct.unpack_from("<Q", data, at + 8)[0]
        if version >> 24 == 3 and (version >> 16) & 0xff in TS_SIZE_WORD:
            spots.append(at)
        at = data.find(b"xdebugpy", at + 8)
    if not spots:
        return []
    minor = (struct.unpack_from("<Q", data, spots[0] + 8)[0] >> 16) & 0xff
    free_threaded = struct.unpack_from("<Q", data, spots[0] + 16)[0] != 0
    data.close()
    label = entry.interp.label
    cases = []

    def patched(name, word, value, code, must):
        path = os.path.join(tmp, "%s-%s.core" % (label, name.replace(" ", "-")))
        subprocess.check_call(["cp", "--sparse=always", entry.core, path])
        with open(path, "r+b") as fh:
            for s in spots:
                fh.seek(s + 8 * word)
                fh.write(struct.pack("<Q", value))
        cases.append(("%s: _Py_DebugOffsets %s" % (label, name),
                      ["core", path] + entry.pystack_args, code, BOTH, must))

    patched("declares 3.16.0", 1, 0x031000F0, EXIT_NOPY, "Python 3.16.0 (")
    patched("declares 2.7.18", 1, 0x020712F0, EXIT_NOPY,
            "declares Python 2.7.18, which has no such block")
    if minor == 15:
        patched("declares 3.15.0b3 (before the final layout)", 1, 0x030F00B3,
                EXIT_NOPY, "Python 3.15.0b3 (")
    if minor == 13:
        patched("declares 3.13.0rc1 (before free_threaded was added)", 1,
                0x030D00C1, EXIT_NOPY, "Python 3.13.0rc1 (")
    if minor == 14:
        patched("declares 3.14.0b1 (before the final layout)", 1, 0x030E00B1,
                EXIT_NOPY, "Python 3.14.0b1 (")
    # a default build's block that claims to be free-threaded: its ob_type
    # is not past a default header, so the block is damaged
    if free_threaded:
        # pyobject.ob_type, moved back to where a default build has it
        patched("free-threaded with a default object header", OB_TYPE_WORD[minor],
                8, EXIT_NOPY, "damaged")
    else:
        patched("claims a free-threaded build", 2, 1, EXIT_NOPY, "damaged")
    patched("thread_state.size 0", TS_SIZE_WORD[minor], 0, EXIT_NOPY,
            "damaged")
    patched("interpreters_head past the runtime", 5, 1 << 40, EXIT_NOPY,
            "damaged")
    return cases


def make_core_cases(tmp, label, pycore):
    """Damaged copies of the real Python core `pycore` (from interpreter
    `label`) and wrong EXECUTABLE arguments."""
    cases = []
    tmp = tempfile.mkdtemp(prefix=label + ".", dir=tmp)
    true = shutil.which("true") or "/bin/true"

    def add(name, args, code, modes=BOTH):
        cases.append(("%s: %s" % (label, name), args, code, modes))

    elf = Elf(pycore)
    note = elf.note()
    loads = elf.loads()
    big = max(loads, key=lambda p: p["filesz"])
    last = max(loads, key=lambda p: p["offset"] + p["filesz"])

    def trunc(name, length, modes=BOTH):
        dst = copy_truncated(pycore, os.path.join(tmp, "trunc-%d" % length),
                             length)
        add("truncated %s (at byte %d of %d)" % (name, length, elf.size),
            ["core", dst], EXIT_CORE, modes)

    trunc("inside the ELF header", 30)
    trunc("inside the program headers",
          elf.phoff + elf.phentsize * (elf.phnum // 2) + 7)
    trunc("inside the notes", note["offset"] + note["filesz"] // 2 + 3)
    trunc("right after the notes", note["offset"] + note["filesz"])
    # Cut inside the memory: what remains may still give a report (a core
    # cut short by RLIMIT_CORE is common), but the exit status and one line
    # on stderr must say the core is truncated.
    trunc("in the middle of the memory (largest PT_LOAD)",
          big["offset"] + (big["filesz"] // 2 // 4096) * 4096 + 100, PARTIAL)
    trunc("inside the last PT_LOAD", last["offset"] + last["filesz"] - 4096,
          PARTIAL)

    rnd = random.Random(0x5eed)
    noise = bytes(rnd.getrandbits(8) for _ in range(note["filesz"]))
    dst = copy_patched(pycore, os.path.join(tmp, "notes-random"),
                       [(note["offset"], noise)])
    add("notes overwritten with random bytes", ["core", dst], EXIT_CORE)

    notes = elf.notes()
    first = notes[0]
    dst = copy_patched(pycore, os.path.join(tmp, "note-descsz-huge"),
                       [(first[0] + 4, struct.pack("<I", 0xfffffff0))])
    add("first note descsz = 0xfffffff0", ["core", dst], EXIT_CORE)
    dst = copy_patched(pycore, os.path.join(tmp, "note-namesz-huge"),
                       [(first[0], struct.pack("<I", 0xffffffff))])
    add("first note namesz = 0xffffffff", ["core", dst], EXIT_CORE)
    ntfile = [n for n in notes if n[3] == NT_FILE]
    if ntfile:
        dst = copy_patched(pycore, os.path.join(tmp, "ntfile-descsz-huge"),
                           [(ntfile[0][0] + 4, struct.pack("<I", 0x7ffffff0))])
        add("NT_FILE note descsz = 0x7ffffff0", ["core", dst], EXIT_CORE)
    dst = copy_patched(pycore, os.path.join(tmp, "phnum-huge"),
                       [(0x38, struct.pack("<H", 0xfffe))])
    add("e_phnum = 0xfffe (program headers past EOF)", ["core", dst],
        EXIT_CORE)
    dst = copy_patched(pycore, os.path.join(tmp, "load-offset-past-eof"),
                       [(elf.phoff + big["index"] * elf.phentsize + 8,
                         struct.pack("<Q", elf.size * 4))])
    add("a PT_LOAD p_offset past the end of the file", ["core", dst],
        EXIT_CORE, PARTIAL)

    # other architectures: each is named in the one line
    for machine, bo, cls, name in ((243, "<", 2, "riscv64"), (21, "<", 2, "ppc64le"),
                                   (21, ">", 2, "ppc64"), (22, ">", 2, "s390x"),
                                   (3, "<", 1, "i386"), (40, "<", 1, "32-bit arm"),
                                   (258, "<", 2, "loongarch64")):
        dst = copy_patched(pycore, os.path.join(tmp, "arch-" + name.replace(" ", "-")),
                           [(4, bytes([cls, 2 if bo == ">" else 1])),
                            (16, struct.pack(bo + "HH", 4, machine))])
        cases.append(("core patched to e_machine %d (%s)" % (machine, name),
                      ["core", dst], EXIT_CORE, BOTH,
                      "a core of another architecture (%s): pystack reads x86-64 and "
                      "aarch64 cores" % name))
    # an x86-64 core that says aarch64: its NT_PRSTATUS notes are too short for aarch64's
    dst = copy_patched(pycore, os.path.join(tmp, "aarch64"),
                       [(18, struct.pack("<H", 183))])
    cases.append(("x86-64 core patched to e_machine EM_AARCH64", ["core", dst], EXIT_CORE,
                  BOTH, "bad NT_PRSTATUS note"))
    dst = copy_patched(pycore, os.path.join(tmp, "bigendian"),
                       [(5, b"\x02")])
    add("core patched to big-endian (ELFDATA2MSB)", ["core", dst], EXIT_CORE)

    # wrong executable
    add("Python core with EXECUTABLE %s" % true,
        ["core", pycore, os.path.realpath(true)], EXIT_EXE)
    add("Python core with a missing EXECUTABLE",
        ["core", pycore, os.path.join(tmp, "no-such-python")], EXIT_EXE)
    add("Python core with a directory as EXECUTABLE",
        ["core", pycore, tmp], EXIT_EXE)
    return cases


def check_partial_report(out, mode):
    """A partial report must be well-formed and must not pass off a stack it
    could not read as an empty one."""
    if not out:
        return []
    if mode.startswith("text"):
        if not out.startswith("Using executable"):
            return ["stdout is not a report: %r" % out[:80]]
        return []
    try:
        doc = json.loads(out)
    except ValueError as e:
        return ["stdout is not valid JSON: %s" % e]
    d = []
    for th in doc.get("threads", []):
        if not th.get("frames") and not th.get("truncated"):
            d.append("thread %s has no frames and no 'truncated' reason"
                     % th.get("tid"))
    return d


def main():
    tap = TAP()
    pystack = programs.pystack()
    if not os.access(pystack, os.X_OK):
        tap.ok(False, "analyzer %s is built" % pystack,
               ["build it first (make), or set PYSTACK"])
        return tap.done()
    timeout = float(os.environ.get("PYSTACK_TIMEOUT", "10"))

    real = []       # [(label, core)]
    blocks = []     # entries of 3.13+ interpreters
    nonpy = None
    problems = []
    try:
        entries = cores.ensure_cores(verbose=False)
        good = [e for e in entries if e.status == "ok"
                and e.scenario == "threads"]
        # the distribution's python3 (stripped, static libpython) and the
        # newest pyenv one (shared libpython)
        system = [e for e in good if e.interp.origin == "system"]
        pyenv = [e for e in good if e.interp.origin == "pyenv"]
        for e in system[-1:] + pyenv[-1:]:
            real.append((e.interp.label, e.core))
            tap.diag("real core: %s (%s)" % (e.core, e.interp.path))
        # every interpreter that describes itself (3.13+)
        blocks = [e for e in good
                  if tuple(int(x) for x in e.interp.minor.split(".")) >= (3, 13)]
        if not [e for e in blocks if e.interp.origin == "sid"]:
            tap.skip("_Py_DebugOffsets cases on 3.14/3.15: %s"
                     % cores.missing_minor_reason("3.14"))
        if not real:
            problems.append("no Python core could be made")
        nonpy = cores.ensure_nonpython_core()
        if nonpy is None:
            problems.append("no core of sleep could be made")
    except Exception as e:
        problems.append("cannot make test cores: %s: %s"
                        % (type(e).__name__, e))
    for p in problems:
        tap.skip("cases that need a real core: %s" % p)

    tmp = tempfile.mkdtemp(prefix="pystack-bad-input.")
    try:
        cases = make_cases(tmp, nonpy)
        for label, core in real:
            cases += make_core_cases(tmp, label, core)
        for e in blocks:
            cases += make_block_cases(tmp, e)
        for case in cases:
            name, args, code, modes = case[:4]
            must = case[4] if len(case) > 4 else None
            for mode in modes:
                partial = mode.endswith("-partial")
                argv = list(args) + (["--json"] if mode.startswith("json")
                                     else [])
                r = run_pystack(argv, timeout)
                tag = "%s [%s]" % (name, mode)
                d = []
                if r.timed_out:
                    d.append("did not finish within %gs" % timeout)
                if r.rc != code:
                    d.append("exit status %r, expected %d" % (r.rc, code))
                tap.ok(not d, "%s: exit status %d" % (tag, code),
                       d + r.describe() if d else [])
                d = []
                err = r.err.splitlines()
                if r.timed_out:
                    d.append("did not finish within %gs" % timeout)
                if len(err) != 1 or not err[0].strip():
                    d.append("expected exactly one line on stderr, got %d"
                             % len(err))
                elif must and must not in err[0]:
                    d.append("the stderr line does not say %r" % must)
                if partial:
                    if err and "truncated" not in err[-1]:
                        d.append("the stderr line does not say 'truncated'")
                    d += check_partial_report(r.out, mode)
                elif r.out:
                    d.append("expected nothing on stdout, got %d bytes"
                             % len(r.out))
                tap.ok(not d, "%s: one stderr line, %s, in time"
                       % (tag, "an honest partial report or none" if partial
                          else "empty stdout"),
                       d + r.describe() if d else [])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tap.diag("%d tests, %d failed, %d skipped"
             % (tap.n, tap.failed, tap.skipped))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
