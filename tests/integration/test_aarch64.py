#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: what only aarch64 cores have, on cores this test makes.

Debian's arm64 python3.11 (tests/arm64-tree bookworm) runs under
qemu-aarch64-static; qemu writes the guest's aarch64 core, which has no
NT_FILE, NT_SIGINFO or NT_ARM_TLS note.  The scenario cores of every arm64
interpreter are test_stacks'/test_native's; this test covers the rest:

* pointer authentication: a library built with -mbranch-protection=pac-ret
  (cross-compiled here) calls back into Python, which aborts.  qemu's CPU
  signs the return addresses that library saves, so --native must strip the
  signature to unwind through it: its frames are named, with their source
  lines, and the walk reaches _start.  (Without the stripping the unwind
  stops in the library: checked by hand when this was written.)
* the dynamic linker's list read from hostile memory: the link_map list
  closed into a ring, r_debug pointing nowhere, and a core whose executable
  nothing names or whose entry point does not match: each ends in bounded
  time with the report or one line and the documented exit status.

Environment: as the other integration tests (PYSTACK, PYSTACK_TEST_CORES);
PYSTACK_ARM64_BOOKWORM_TREE (tests/arm64-tree).  Runs as root (the core
pattern is held while qemu crashes, so the host's dump of qemu itself is
discarded).
"""
from __future__ import print_function

import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cores  # noqa: E402
from harness.corepattern import CorePattern  # noqa: E402
from harness.elfcore import CoreFile  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP  # noqa: E402

TIMEOUT = 30
QEMU = "qemu-aarch64-static"
CC = "aarch64-linux-gnu-gcc"

PAC_C = r"""
typedef void (*cb_t)(int);
/* each saves its return address signed (paciasp) next to the frame record */
__attribute__((noinline)) static void pac_mid(cb_t cb, int depth) {
        cb(depth);
        __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) void pac_outer(cb_t cb, int depth) {
        pac_mid(cb, depth + 1);
        __asm__ volatile("" ::: "memory");
}
"""

PAC_PY = r"""
import ctypes, os, sys
lib = ctypes.CDLL(sys.argv[1])
CB = ctypes.CFUNCTYPE(None, ctypes.c_int)
def py_callback(depth):
    os.abort()
cb = CB(py_callback)
def main():
    lib.pac_outer(cb, 1)
main()
"""

THREADS_PY = r"""
import os, threading, time
def worker():
    time.sleep(100)
def crash(n):
    os.abort()
t = threading.Thread(target=worker, daemon=True)
t.start()
time.sleep(0.3)
crash(1)
"""


def make_core(tree, workdir, script, args=()):
    """The aarch64 core qemu writes when `script` aborts, or None."""
    os.makedirs(workdir)
    with CorePattern(workdir) as fx:
        _, core = cores.run_emulated_crash(
            fx, [QEMU, "-L", tree, tree + "/usr/bin/python3.11", script] + list(args), workdir, timeout=120)
    return core


def dynamic_debug_slot(core, exe):
    """The address of the executable's DT_DEBUG value (non-PIE: no bias), or None."""
    with open(exe, "rb") as fh:
        elf = fh.read()
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phnum, = struct.unpack_from("<H", elf, 0x38)
    for k in range(phnum):
        p_type, _, _, vaddr, _, _, memsz = struct.unpack_from("<IIQQQQQ", elf, phoff + 56 * k)
        if p_type == 2:     # PT_DYNAMIC
            for i in range(0, memsz, 16):
                tag = core.u64(vaddr + i)
                if tag in (None, 0):
                    return None
                if tag == 21:   # DT_DEBUG
                    return vaddr + i + 8
    return None


def link_maps(core, r_debug):
    """The link_map nodes of r_debug's list, in order (bounded)."""
    nodes, lm = [], core.u64(r_debug + 8)
    while lm and len(nodes) < 64 and core.offset(lm, 40) is not None:
        nodes.append(lm)
        lm = core.u64(lm + 24)
    return nodes


def check_pac(tap, tree, tmp, args):
    if not shutil.which(CC):
        tap.skip("pointer authentication: %s is not installed (apt-get install gcc-aarch64-linux-gnu)" % CC)
        return
    src, lib, script = (os.path.join(tmp, n) for n in ("pac.c", "libpac.so", "pac.py"))
    with open(src, "w") as fh:
        fh.write(PAC_C)
    with open(script, "w") as fh:
        fh.write(PAC_PY)
    subprocess.check_call([CC, "-O1", "-g", "-fPIC", "-shared", "-mbranch-protection=pac-ret", "-o", lib, src])
    dis = subprocess.run(["aarch64-linux-gnu-objdump", "-d", lib], stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    if not tap.ok("paciasp" in dis, "pointer authentication: the library signs its return addresses (paciasp)"):
        return
    core = make_core(tree, os.path.join(tmp, "pac"), script, [lib])
    if not tap.ok(core is not None, "pointer authentication: qemu wrote the guest's core"):
        return
    r = run_pystack(["core", core, "--native", "--json", "--no-source"] + args, TIMEOUT)
    doc = r.json_or_none()
    tap.ok(r.rc == 0 and doc and doc.get("architecture") == "aarch64",
           "pointer authentication: the report of the aarch64 core, architecture aarch64", r.describe())
    if not doc:
        return
    th = [t for t in doc["threads"] if t.get("crashed")]
    frames = th[0]["frames"] if th else []
    native = [f for f in frames if f.get("kind") == "native"]
    names = [(f.get("function"), f.get("library") or "") for f in native]
    inner = [n for n in names if n[1] == "libpac.so"]
    tap.ok(("pac_outer", "libpac.so") in inner and ("pac_mid", "libpac.so") in inner,
           "pointer authentication: the signed frames pac_mid and pac_outer are named",
           ["native frames: %r" % names])
    tap.ok(bool(native) and native[0].get("function") == "_start" and not th[0].get("native_error"),
           "pointer authentication: the unwind goes on past them to _start",
           ["outermost: %r, native_error %r" % (names[:1], th[0].get("native_error") if th else None)])
    lines = [f.get("line") for f in native if f.get("function") == "pac_outer"]
    tap.ok(lines and lines[0] and lines[0] > 0, "pointer authentication: pac_outer has its source line",
           ["lines %r" % lines])


def check_loader(tap, tree, tmp, args):
    script = os.path.join(tmp, "threads.py")
    with open(script, "w") as fh:
        fh.write(THREADS_PY)
    path = make_core(tree, os.path.join(tmp, "threads"), script)
    if not tap.ok(path is not None, "loader: qemu wrote the guest's core"):
        return
    exe = os.path.join(tree, "usr/bin/python3.11")
    r = run_pystack(["core", path, "--json", "--no-source"] + args, TIMEOUT)
    intact = r.json_or_none()
    libs = [m["path"] for m in intact["modules"]] if intact else []
    tap.ok(r.rc == 0 and intact and any(os.path.basename(p) == "libc.so.6" for p in libs) and
           any("NT_FILE" in w for w in intact["warnings"]),
           "loader: the intact core names libc from the dynamic linker's list, and says it has no NT_FILE",
           r.describe() + ["modules %r" % libs])
    if not intact:
        return
    threads = len(intact["threads"])

    def case(name, patch, want_rc, must=None, check=None):
        core = CoreFile(path)
        if not patch(core):
            tap.ok(False, "loader: %s: found what to patch" % name)
            return
        dst = os.path.join(tmp, name.replace(" ", "-").replace("'", ""))
        core.write(dst)
        r = run_pystack(["core", dst, "--json", "--no-source"] + args, TIMEOUT)
        err = r.err.splitlines()
        d = []
        if r.timed_out:
            d.append("did not finish within %ds" % TIMEOUT)
        if r.rc != want_rc:
            d.append("exit %r, expected %d" % (r.rc, want_rc))
        if must and (len(err) != 1 or must not in err[0]):
            d.append("expected one stderr line saying %r" % must)
        if check and not d:
            d += check(r.json_or_none())
        tap.ok(not d, "loader: %s: exit %d in %.2fs" % (name, want_rc, r.seconds), d + r.describe() if d else [])
        os.unlink(dst)

    slot = dynamic_debug_slot(CoreFile(path), exe)

    def ring(core):
        nodes = link_maps(core, core.u64(slot)) if slot else []
        if len(nodes) < 3:
            return False
        core.put64(nodes[-1] + 24, nodes[1])    # the last one's l_next: back to the second
        return True

    def same_report(doc):
        if not doc or len(doc["threads"]) != threads:
            return ["threads %r of %d" % (doc and len(doc["threads"]), threads)]
        return []

    def ring_read_once(doc):
        d = same_report(doc)
        if not d and not any("ring" in w for w in doc["warnings"]):
            d.append("no warning about the ring: %r" % doc["warnings"])
        if not d and len(doc["modules"]) != len(intact["modules"]):
            d.append("modules %d, the intact core's %d" % (len(doc["modules"]), len(intact["modules"])))
        return d
    case("link_map ring", ring, 0, check=ring_read_once)

    def r_debug_nowhere(core):
        if not slot:
            return False
        core.put64(slot, 0x7a5a5a5a5000)
        return True

    def exe_and_loader_only(doc):
        mods = doc and [os.path.basename(m["path"]) for m in doc["modules"]]
        return [] if mods and len(mods) == 2 and same_report(doc) == [] else ["modules %r" % mods]
    case("r_debug pointing nowhere", r_debug_nowhere, 0, check=exe_and_loader_only)

    def no_executable(core):
        slot_fn = core.auxv_slot(31)   # AT_EXECFN
        info = core.notes(3)           # NT_PRPSINFO: psargs at 56
        if slot_fn is None or not info:
            return False
        core.put(slot_fn, struct.pack("<Q", 0))
        core.put(info[0][0] + 56, b"\0" * 80)
        return True
    case("nothing names the executable", no_executable, 4, must="names no executable")

    def wrong_entry(core):
        slot_entry = core.auxv_slot(9)  # AT_ENTRY
        if slot_entry is None:
            return False
        v, = struct.unpack_from("<Q", core.data, slot_entry)
        core.put(slot_entry, struct.pack("<Q", v + 0x10))
        return True
    case("entry point not the executable's", wrong_entry, 4, must="does not match the core")


def main():
    tap = TAP()
    if not shutil.which(QEMU):
        return tap.skip_all("%s is not installed (apt-get install qemu-user-static)" % QEMU)
    tree, why = cores.arm64_tree("bookworm")
    if not tree:
        return tap.skip_all("no Debian arm64 tree: %s" % why)
    args = ["--lib-search-root=" + tree]
    tmp = tempfile.mkdtemp(prefix="pystack-aarch64.")
    try:
        check_pac(tap, tree, tmp, args)
        check_loader(tap, tree, tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
