#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: what a hostile process maps cannot make the handler's kept
binaries (KeepBinaries=, issue 13) block, grow without bound, write outside
the storage directory, or hand the analysis other bytes than those mapped.

Run as root from the build directory (after `make`):

    /usr/bin/python3 ../tests/integration/test_binaries_hostile.py

Every case is a real /usr/bin/python3.11 process that maps things (mmap,
ctypes) and kills itself with SIGSEGV, through the real kernel handler
(core_pattern under harness/corepattern.py's lock, restored on every exit
path) and pystackd:

 1 not regular files: a FIFO (mmap of one fails: ENODEV, checked), /dev/zero
   shared (a "/dev/zero (deleted)" mapping, shmem), a block device where one
   can be mapped, memfds (one holding an ELF, one not), and an ELF file under
   a write lease (an open for reading would wait lease-break-time): the
   handler does not wait, keeps only the memfd's ELF (its bytes), the crash
   is recorded and analysed.
 2 huge files: 2 GiB sparse files (one starting with an ELF header, one
   not) and a 65 MiB ELF with MaxBinarySize=64M: the ELFs recorded with
   their build-id, hash NULL and a note, nothing large copied, the core kept.
 3 many mappings: one ELF mapped 5000 times between 1500 distinct ELF files:
   one row for it, exactly BINARIES_MAX_FILES (1024) files recorded.
 4 build-ids that lie: a library claiming libc's build-id, then an ordinary
   crash analysed with the real libc; two libraries claiming one build-id,
   each crash analysed with its own.
 5 the library's path renamed over while mapped (twice, the second file
   mapped too): the kept files are the bytes mapped, not the path's.

After each crash: the files the case made (everything below its directory
but the storage and runtime directories and pystackd's log) and the
fixture's directory are as before, but for what the process itself did.

Environment: PYSTACKD, PYSTACK_COREDUMP, PYSTACK (harness/programs.py).
gcc is needed for the libraries; without it those cases are skipped.
"""
import hashlib
import fcntl
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pystackd_fixture as pf  # noqa: E402
import store_fixture as sf  # noqa: E402
from harness import corepattern, programs  # noqa: E402
from harness.tap import TAP  # noqa: E402

ANALYSE_TIMEOUT = 120
BINARIES_MAX_FILES = 1024       # daemon/capture/binaries.h
LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"

# The crashing process: the case's own lines (MAPS) run first, then it says
# what it did on stdout (one JSON line) and dies in crash_here().
CRASH_SCRIPT = r'''
import ctypes, fcntl, json, mmap, os, signal, sys
args = json.loads(sys.argv[1])
keep = []
said = {}
def map_file(path, length=0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ):
    fd = os.open(path, os.O_RDONLY)
    try:
        keep.append(mmap.mmap(fd, length, flags=flags, prot=prot))
    finally:
        os.close(fd)
%(body)s
def crash_here(n):
    sys.stdout.write(json.dumps(said) + "\n")
    sys.stdout.flush()
    %(crash)s
crash_here(1)
'''

LIB_C = r'''
#include <signal.h>
#include <unistd.h>
int %(name)s(int n) { kill(getpid(), SIGSEGV); return n + %(salt)d; }
'''


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def module_build_id(rep, suffix):
    for m in (rep or {}).get("modules", []):
        if (m.get("path") or "").endswith(suffix):
            return m.get("build_id")
    return None


def kept_rows(st, cid):
    return st.query("SELECT path, address, size, build_id, hash, note FROM crash_binaries WHERE crash_id = ?"
                    " ORDER BY path", (cid,))


# ---------------------------------------------------------------------------
# nothing outside the storage directory

def snapshot(st, fx):
    """Every path below the case directory but the storage and runtime
    directories and pystackd's log (lstat: type, inode, size, mtime,
    blocks), and the names in the fixture's directory."""
    skip = {st.storage, st.runtime, st.log_path}
    seen = {}
    for top, dirs, files in os.walk(st.dir):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in skip]
        for name in dirs + files:
            p = os.path.join(top, name)
            if p in skip:
                continue
            s = os.lstat(p)
            seen[p] = (stat.S_IFMT(s.st_mode), s.st_ino, s.st_size, s.st_mtime_ns, s.st_blocks)
    return seen, sorted(os.listdir(fx.root))


def same_files(tap, what, before, after, expect_changes=None, touched=()):
    """after == before, but for expect_changes (path -> entry, or None: gone)
    and the directories the process itself changed (touched: their mtimes)."""
    want = dict(before[0])
    for p, e in (expect_changes or {}).items():
        if e is None:
            want.pop(p, None)
        else:
            want[p] = e
    for p in touched:
        want[p] = want[p][:3] + after[0].get(p, (None,) * 5)[3:4] + want[p][4:]
    diff = sorted(set(want.items()) ^ set(after[0].items()))
    tap.ok(not diff and before[1] == after[1],
           "%s: nothing written outside the storage directory" % what,
           ["differs: %r" % (d,) for d in diff[:10]] + ["fixture root %r -> %r" % (before[1], after[1])])


# ---------------------------------------------------------------------------
# crashes

class Crash(object):
    """One python3.11 running the case's body, crashed; its row, settled."""

    def __init__(self, st, name, body, args=None, crash="os.kill(os.getpid(), signal.SIGSEGV)"):
        self.script = os.path.join(st.dir, "w", name + ".py")
        with open(self.script, "w") as fh:
            fh.write(CRASH_SCRIPT % {"body": body, "crash": crash})
        self.args = args or {}
        self.st = st
        self.row, self.rows, self.report, self.kept, self.said = None, [], None, [], None
        self.rc, self.seconds, self.err = None, 0.0, ""

    def run(self, fx, timeout=120):
        t0 = time.time()
        p = subprocess.Popen([pf.SYSTEM_PYTHON, "-E", "-s", "-B", self.script, json.dumps(self.args)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True, env=pf.child_env())
        fx.children.add(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        fx.children.discard(p)
        self.seconds = time.time() - t0
        self.pid, self.rc, self.err = p.pid, p.returncode, err.decode("utf-8", "replace")[-600:]
        try:
            self.said = json.loads(out.decode().splitlines()[-1])
        except (ValueError, IndexError):
            self.said = None
        return self

    def settle(self):
        # the analysis of the raw core may end before the handler has compressed it
        self.row, self.rows = self.st.wait_row(lambda r: r["pid"] == self.pid and r["state"] in ("done", "failed")
                                               and r["core_state"] != "capturing", ANALYSE_TIMEOUT)
        self.report = self.st.report_of(self.row["id"]) if self.row else None
        self.kept = kept_rows(self.st, self.row["id"]) if self.row else []
        return self.row

    def diag(self):
        return ["exit %r after %.1fs, stderr %r, said %r" % (self.rc, self.seconds, self.err, self.said)] + \
            [pf.brief(r) for r in self.rows[-5:]]


def recorded(tap, what, c, d):
    """The crash died of its SIGSEGV, its row has the core and its analysis
    is done, with crash_here() among its Python frames."""
    ok = c.rc == -signal.SIGSEGV and c.settle() is not None
    ok = ok and c.row["core_state"] == "present" and c.row["state"] == "done"
    tap.ok(ok, "%s: the crash is recorded with its core and analysed" % what, c.diag() + d.log_tail(5))
    if ok:
        py = pf.frames_of(c.report, "python")
        tap.ok("crash_here" in py, "%s: its Python frames (crash_here)" % what, ["python frames %r" % py])
    return ok


def start_case(tap, fx, jd, name, capture=""):
    st = pf.Store(fx, name, analysis="Workers=1", capture=capture)
    os.mkdir(os.path.join(st.dir, "w"))
    os.chmod(os.path.join(st.dir, "w"), 0o755)
    st.install()
    d = st.daemon(jd)
    if not tap.ok(d.start(), "%s: pystackd starts" % name, d.log_tail()):
        return None, None
    return st, d


def build_lib(gcc, where, name, func, salt=0, extra=()):
    src = os.path.join(where, name + ".c")
    with open(src, "w") as fh:
        fh.write(LIB_C % {"name": func, "salt": salt})
    so = os.path.join(where, name + ".so")
    subprocess.run([gcc, "-shared", "-fPIC", "-g", "-O0", "-o", so, src] + list(extra), check=True)
    os.chmod(so, 0o755)
    return so


# ---------------------------------------------------------------------------
# 1: what is not a regular file

SPECIAL_BODY = r'''
# a FIFO cannot be mapped at all (the kernel says ENODEV): held open instead
fifo = os.open(args["fifo"], os.O_RDWR | os.O_NONBLOCK)
try:
    mmap.mmap(fifo, 4096, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    said["fifo"] = "mapped"
except OSError as e:
    said["fifo"] = e.errno
zero = os.open("/dev/zero", os.O_RDWR)
keep.append(mmap.mmap(zero, 1 << 20, flags=mmap.MAP_SHARED))
keep[-1][:16] = b"not an ELF file\n"   # written to: shmem behind "/dev/zero (deleted)"
try:
    map_file(args["blockdev"], 4096, flags=mmap.MAP_SHARED)
    said["blockdev"] = "mapped"
except OSError as e:
    said["blockdev"] = e.errno
for name, src in (("hostile-elf", args["elf"]), ("hostile-data", None)):
    fd = os.memfd_create(name, 0)
    os.write(fd, open(src, "rb").read() if src else b"not an ELF file\n" * 512)
    keep.append(mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ))
    keep.append(fd)
# an ELF under a write lease: any other open for reading waits for us (lease-break-time)
leased = os.open(args["leased"], os.O_RDONLY)
try:
    fcntl.fcntl(leased, 1024, fcntl.F_WRLCK)      # F_SETLEASE
    said["lease"] = fcntl.fcntl(leased, 1025)      # F_GETLEASE
except OSError as e:
    said["lease"] = "F_SETLEASE: %s" % e
keep.append(mmap.mmap(leased, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ))
said["maps"] = [l.split(None, 5)[-1].strip() for l in open("/proc/self/maps") if "memfd:" in l or "/dev/" in l]
'''


def special_case(tap, fx, jd, gcc):
    st, d = start_case(tap, fx, jd, "special")
    if not st:
        return
    w = os.path.join(st.dir, "w")
    fifo = os.path.join(w, "fifo")
    os.mkfifo(fifo, 0o600)
    if gcc:
        elf = build_lib(gcc, w, "libmemfd", "crash_in_memfd")
        leased = build_lib(gcc, w, "libleased", "crash_in_leased", salt=1)
    else:
        elf = leased = os.path.join(w, "python-copy")     # any ELF will do
        shutil.copyfile(pf.SYSTEM_PYTHON, elf)
    blockdev = next((b for b in ("/dev/loop0", "/dev/vda", "/dev/sda")
                     if os.path.exists(b) and stat.S_ISBLK(os.stat(b).st_mode)), "/dev/null")
    c = Crash(st, "special", SPECIAL_BODY, {"fifo": fifo, "elf": elf, "leased": leased, "blockdev": blockdev})
    before = snapshot(st, fx)
    c.run(fx)
    tap.diag("special: mapped %r" % (c.said or {}).get("maps"))
    tap.ok(c.said and c.said.get("fifo") == 19,
           "special: a FIFO cannot be mapped (ENODEV): only held open", c.diag())
    # an open for reading would have waited for the lease to be broken (the kernel's
    # lease-break-time, 45 s by default) with the process held: it died well before that
    with open("/proc/sys/fs/lease-break-time") as fh:
        lease_break = int(fh.read())
    tap.ok(c.said and c.said.get("lease") == 1 and c.rc == -signal.SIGSEGV and c.seconds < lease_break,
           "special: an ELF under a write lease does not hold the handler (died after %.1fs, lease-break-time %ds)"
           % (c.seconds, lease_break), c.diag())
    if not recorded(tap, "special", c, d):
        return
    paths = [k["path"] for k in c.kept]
    tap.diag("special: crash_binaries %r" % [(k["path"], k["hash"], k["note"]) for k in c.kept])
    odd = [p for p in paths if p.startswith("/dev/") or "hostile-data" in p or p == fifo]
    tap.ok(not odd, "special: no row for /dev/zero, %s, the FIFO or the memfd without an ELF" % blockdev,
           ["rows %r" % odd])
    mem = [k for k in c.kept if k["path"].startswith("/memfd:hostile-elf")]
    want = sha256_file(elf)
    tap.ok(len(mem) == 1 and mem[0]["hash"] == want and
           os.path.isfile(os.path.join(st.storage, "binaries", want)) and
           sha256_file(os.path.join(st.storage, "binaries", want)) == want,
           "special: the memfd's ELF is kept, its bytes as mapped (%s...)" % want[:12],
           ["memfd rows %r" % mem])
    lease_rows = [k for k in c.kept if k["path"] == leased]
    if (c.said or {}).get("lease") == fcntl.F_WRLCK:
        # the handler never waits for a lease to break: the file is recorded as not kept, and why
        tap.ok(len(lease_rows) == 1 and lease_rows[0]["hash"] is None and "lease" in (lease_rows[0]["note"] or ""),
               "special: the ELF under a write lease is recorded, not kept, with the reason",
               ["rows %r" % lease_rows])
    else:
        tap.ok(all(k["hash"] in (None, sha256_file(leased)) for k in lease_rows),
               "special: the ELF (no lease could be taken: %r) is kept as it is, or not at all"
               % (c.said or {}).get("lease"), ["rows %r" % lease_rows])
    same_files(tap, "special", before, snapshot(st, fx))
    d.stop()


# ---------------------------------------------------------------------------
# 2: huge and sparse files

HUGE_BODY = r'''
for path in args["files"]:
    map_file(path)
said["maps"] = [l.split(None, 5)[-1].strip() for l in open("/proc/self/maps") if "/w/" in l]
'''


def huge_case(tap, fx, jd, gcc):
    st, d = start_case(tap, fx, jd, "huge", capture="MaxBinarySize=64M")
    if not st:
        return
    w = os.path.join(st.dir, "w")
    small = build_lib(gcc, w, "libsmall", "crash_in_small") if gcc else pf.SYSTEM_PYTHON
    with open(small, "rb") as fh:
        head = fh.read(16384)
    sparse_elf, sparse_data, big_elf = (os.path.join(w, n) for n in ("sparse-elf", "sparse-data", "big-elf.so"))
    with open(sparse_elf, "wb") as fh:
        fh.write(head)
        fh.truncate(2 << 30)
    with open(sparse_data, "wb") as fh:
        fh.truncate(2 << 30)
    shutil.copyfile(small, big_elf)
    with open(big_elf, "r+b") as fh:
        fh.truncate(65 << 20)
    c = Crash(st, "huge", HUGE_BODY, {"files": [sparse_elf, sparse_data, big_elf]})
    before = snapshot(st, fx)
    c.run(fx)
    if not recorded(tap, "huge", c, d):
        return
    rows = dict((k["path"], k) for k in c.kept)
    tap.diag("huge: crash_binaries %r" % [(k["path"], k["size"], k["hash"], k["note"]) for k in c.kept])
    want_id = sf.elf_build_id(small)
    for path, size in ((sparse_elf, 2 << 30), (big_elf, 65 << 20)):
        r = rows.get(path)
        tap.ok(r and r["hash"] is None and r["size"] == size and r["note"] == "larger than MaxBinarySize" and
               r["build_id"] == want_id,
               "huge: %s (%d MiB) recorded with its build-id, hash NULL, note 'larger than MaxBinarySize'"
               % (os.path.basename(path), size >> 20), ["row %r, want build-id %s" % (r, want_id)])
    tap.ok(sparse_data not in rows, "huge: the 2 GiB file that is no ELF has no row", ["row %r" % rows.get(sparse_data)])
    bdir = os.path.join(st.storage, "binaries")
    big = [(f, os.path.getsize(os.path.join(bdir, f))) for f in os.listdir(bdir)
           if os.path.getsize(os.path.join(bdir, f)) > 64 << 20]
    tap.ok(not big, "huge: nothing over MaxBinarySize in binaries/", ["%r" % big])
    same_files(tap, "huge", before, snapshot(st, fx))
    d.stop()


# ---------------------------------------------------------------------------
# 3: thousands of mappings

MANY_BODY = r'''
for i, path in enumerate(args["files"]):
    map_file(path, 4096)
    for _ in range(3 if i < 1500 else 0):
        map_file(args["common"], 4096)
while sum(1 for m in keep) < len(args["files"]) + 5000:
    map_file(args["common"], 4096)
said["maps"] = sum(1 for l in open("/proc/self/maps"))
said["common"] = sum(1 for l in open("/proc/self/maps") if l.rstrip().endswith(args["common"]))
'''


def many_case(tap, fx, jd, gcc):
    st, d = start_case(tap, fx, jd, "many")
    if not st:
        return
    w = os.path.join(st.dir, "w")
    tiny = build_lib(gcc, w, "libtiny", "crash_in_tiny", extra=["-s"])
    with open(tiny, "rb") as fh:
        data = fh.read()
    common = os.path.join(w, "libcommon.so")
    with open(common, "wb") as fh:
        fh.write(data + b"common")
    os.mkdir(os.path.join(w, "many"))
    files = []
    for i in range(1500):
        p = os.path.join(w, "many", "lib%04d.so" % i)
        with open(p, "wb") as fh:
            fh.write(data + b"%08d" % i)     # after the ELF's own bytes: 1500 different files
        files.append(p)
    c = Crash(st, "many", MANY_BODY, {"files": files, "common": common})
    before = snapshot(st, fx)
    c.run(fx)
    tap.diag("many: %s lines in maps, the common file in %s of them" % ((c.said or {}).get("maps"),
                                                                        (c.said or {}).get("common")))
    if not recorded(tap, "many", c, d):
        return
    tap.ok(c.said and c.said["common"] == 5000, "many: one file mapped 5000 times", c.diag())
    com = [k for k in c.kept if k["path"] == common]
    tap.ok(len(com) == 1 and com[0]["hash"] == sha256_file(common),
           "many: the file mapped 5000 times has one row, its bytes kept", ["rows %r" % com])
    tap.ok(len(c.kept) == BINARIES_MAX_FILES,
           "many: of 1500+ mapped ELF files, exactly %d recorded (BINARIES_MAX_FILES)" % BINARIES_MAX_FILES,
           ["%d rows" % len(c.kept)])
    bdir = os.path.join(st.storage, "binaries")
    stored = os.listdir(bdir)
    tap.ok(len(stored) <= BINARIES_MAX_FILES and all(k["hash"] in stored for k in c.kept if k["hash"]),
           "many: binaries/ holds at most %d files, every kept row's among them" % BINARIES_MAX_FILES,
           ["%d files in binaries/" % len(stored)])
    wrong = [k["path"] for k in c.kept if k["path"].startswith(os.path.join(w, "many/")) and
             k["hash"] != sha256_file(k["path"])]
    tap.ok(not wrong, "many: each distinct file kept under its own SHA-256", ["wrong %r" % wrong[:5]])
    same_files(tap, "many", before, snapshot(st, fx))
    d.stop()


# ---------------------------------------------------------------------------
# 4: build-ids that lie

CALL_BODY = r'''
for path in args.get("load", []):
    keep.append(ctypes.CDLL(path))
'''


def liar_case(tap, fx, jd, gcc):
    st, d = start_case(tap, fx, jd, "liar")
    if not st:
        return
    w = os.path.join(st.dir, "w")
    libc_id = sf.elf_build_id(LIBC)
    if not tap.ok(libc_id, "liar: libc's build-id read (%s)" % libc_id):
        return
    liar = build_lib(gcc, w, "libliar", "crash_in_liar", extra=["-Wl,--build-id=0x" + libc_id])
    fake = "5eed" * 10
    one = build_lib(gcc, w, "libone", "crash_in_one", salt=1, extra=["-Wl,--build-id=0x" + fake])
    two = build_lib(gcc, w, "libtwo", "crash_in_two", salt=2, extra=["-Wl,--build-id=0x" + fake])
    tap.ok(sf.elf_build_id(liar) == libc_id and sf.elf_build_id(one) == sf.elf_build_id(two) == fake,
           "liar: the libraries claim libc's build-id, and one build-id for two", [])
    crashes = [Crash(st, n, CALL_BODY, {"load": [lib]}, crash="keep[-1].%s(1)" % fn)
               for n, lib, fn in (("liar", liar, "crash_in_liar"), ("one", one, "crash_in_one"),
                                  ("two", two, "crash_in_two"))]
    crashes.append(Crash(st, "plain", CALL_BODY))
    before = snapshot(st, fx)
    for c in crashes:
        c.run(fx)
    for c in crashes:
        recorded(tap, "liar: " + os.path.basename(c.script), c, d)
    if not all(c.row for c in crashes):
        return
    c_liar, c_one, c_two, c_plain = crashes
    libc_hash = sha256_file(LIBC)
    rep = c_plain.report
    got = module_build_id(rep, "/libc.so.6")
    native = pf.frames_of(rep, "native")
    tap.ok(got == libc_id and any(n and ("kill" in n or "raise" in n) for n in native),
           "liar: the ordinary crash after the liar's is analysed with the real libc (build-id %s, a kill frame)"
           % got, ["native frames %r" % native[:12]])
    plain_libc = [k for k in c_plain.kept if k["path"].endswith("/libc.so.6")]
    liar_rows = [k for k in c_liar.kept if k["path"] == liar]
    tap.ok(plain_libc and plain_libc[0]["hash"] == libc_hash and liar_rows and
           liar_rows[0]["hash"] == sha256_file(liar) != libc_hash and liar_rows[0]["build_id"] == libc_id,
           "liar: the liar kept under its own SHA-256 with libc's build-id, the real libc under its own",
           ["libc rows %r, liar rows %r" % (plain_libc, liar_rows)])
    n = st.query("SELECT count(*) AS n FROM binaries WHERE hash IN (?, ?)", (libc_hash, sha256_file(liar)))
    tap.ok(n and n[0]["n"] == 2, "liar: the binaries table has both files", ["%r" % n])
    tap.ok("crash_in_liar" in pf.frames_of(c_liar.report, "native"),
           "liar: the liar's crash names its own function (its kept file, not libc)",
           ["native %r" % pf.frames_of(c_liar.report, "native")[:12]])
    for c, lib, fn, other in ((c_one, one, "crash_in_one", "crash_in_two"),
                              (c_two, two, "crash_in_two", "crash_in_one")):
        rows = [k for k in c.kept if k["path"] == lib]
        native = pf.frames_of(c.report, "native")
        tap.ok(rows and rows[0]["hash"] == sha256_file(lib) and rows[0]["build_id"] == fake and
               os.path.isfile(os.path.join(st.storage, "binaries", rows[0]["hash"])),
               "liar: %s (one build-id for two files) kept under its own SHA-256" % os.path.basename(lib),
               ["rows %r" % rows])
        tap.ok(fn in native and other not in native,
               "liar: %s's crash is analysed with its own file (%s, not %s)" % (os.path.basename(lib), fn, other),
               ["native %r" % native[:12]])
    same_files(tap, "liar", before, snapshot(st, fx))
    d.stop()


# ---------------------------------------------------------------------------
# 5: the path renamed over while mapped

RACE_BODY = r'''
keep.append(ctypes.CDLL(args["lib"]))
os.rename(args["second"], args["lib"])          # the path now names another file
if args.get("third"):
    map_file(args["lib"])                       # mapped too: two files behind one name
    os.rename(args["third"], args["lib"])
said["maps"] = sorted(set(l.split(None, 5)[-1].strip() for l in open("/proc/self/maps") if "/w/" in l))
'''


def race_case(tap, fx, jd, gcc):
    st, d = start_case(tap, fx, jd, "race")
    if not st:
        return
    w = os.path.join(st.dir, "w")
    for how in ("once", "twice"):
        lib = build_lib(gcc, w, "librace-" + how, "crash_in_original", salt=3)
        second = build_lib(gcc, w, "second-" + how, "something_else", salt=4)
        third = build_lib(gcc, w, "third-" + how, "yet_another", salt=5) if how == "twice" else None
        h_lib, h_second = sha256_file(lib), sha256_file(second)
        c = Crash(st, "race-" + how, RACE_BODY, {"lib": lib, "second": second, "third": third},
                  crash="keep[0].crash_in_original(1)")
        before = snapshot(st, fx)
        c.run(fx)
        tap.diag("race %s: mapped %r" % (how, (c.said or {}).get("maps")))
        if not recorded(tap, "race " + how, c, d):
            continue
        rows = [k for k in c.kept if k["path"].startswith(lib)]
        tap.diag("race %s: rows %r" % (how, [(k["path"], k["address"], k["hash"]) for k in rows]))
        orig = [k for k in rows if k["hash"] == h_lib]
        tap.ok(orig and orig[0]["path"] == lib + " (deleted)",
               "race %s: the library mapped is kept, the bytes it had (%s...), as %s (deleted)"
               % (how, h_lib[:12], os.path.basename(lib)), ["rows %r" % rows])
        if how == "twice":
            sec = [k for k in rows if k["hash"] == h_second]
            tap.ok(len(rows) == 2 and sec,
                   "race twice: both files mapped under one name, now both deleted, are recorded, each its bytes",
                   ["rows %r" % rows])
        else:
            tap.ok(not any(k["hash"] == h_second for k in c.kept),
                   "race once: the file now at the library's path (never mapped) is not kept", ["rows %r" % rows])
        native = pf.frames_of(c.report, "native")
        tap.ok("crash_in_original" in native,
               "race %s: the native frames name the mapped library's function" % how, ["native %r" % native[:12]])
        # the process's own renames: the last file renamed is at the library's path, inode and all
        changes = {lib: before[0][third or second], second: None}
        if third:
            changes[third] = None
        same_files(tap, "race " + how, before, snapshot(st, fx), changes, touched=[w])
    d.stop()


def main():
    tap = TAP()
    if os.geteuid() != 0:
        return tap.skip_all("not root: core_pattern cannot be changed")
    for what, p in (("pystackd", programs.pystackd()), ("pystack-coredump", programs.coredump())):
        if not os.access(p, os.X_OK):
            tap.ok(False, "%s %s is built" % (what, p))
            return tap.done()
    if not os.access(pf.SYSTEM_PYTHON, os.X_OK):
        return tap.skip_all("%s is not installed" % pf.SYSTEM_PYTHON)
    gcc = shutil.which("gcc")
    jd = None
    t0 = time.time()
    try:
        with corepattern.PipeHandlerFixture(pipe_limit=16) as fx:
            os.chmod(fx.root, 0o711)
            jd = pf.Journald(os.path.join(fx.root, "journald.log"))
            if not tap.ok(jd.start(), "a journald to write to", [jd.error or ""]):
                return tap.done()
            cases = [("special", lambda: special_case(tap, fx, jd, gcc)),
                     ("huge", lambda: huge_case(tap, fx, jd, gcc))]
            if gcc:
                cases += [("many", lambda: many_case(tap, fx, jd, gcc)),
                          ("liar", lambda: liar_case(tap, fx, jd, gcc)),
                          ("race", lambda: race_case(tap, fx, jd, gcc))]
            else:
                tap.skip("many, liar, race: gcc is not installed (the libraries are built)")
            for name, fn in cases:
                try:
                    fn()
                except Exception:
                    tap.ok(False, "%s: the harness" % name, traceback.format_exc().splitlines())
                finally:
                    fx.reset_pattern()
                    pf.stop_started(keep=jd.proc)    # this case's pystackds, not the journald
            jd.stop()
    finally:
        pf.cleanup_processes()
    tap.diag("%.1fs" % (time.time() - t0))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
