# -*- coding: utf-8 -*-
"""A Python process to be crashed by test_capture.py / bench-capture.

    capture_child.py EXPECT_JSON MODE [ARG ...]

MODE:
  meta          two extra threads named with prctl(PR_SET_NAME), and 64 KiB of random
                bytes at an address EXPECT_JSON names ("marker"), the bytes in
                EXPECT_JSON.marker
  fill MIB      MIB MiB of non-zero data
  mix MIB       MIB MiB: every other MiB random, the rest zero (untouched)
  heap N        N small dicts of ints, floats and strings
  plain         nothing

Then it writes EXPECT_JSON (what /proc says about it, the kernel's view),
prints "ready" on stdout and waits to be killed (the parent sends SIGSEGV).
Extra ARGs are ignored (they are there for the command line).  Python 3,
stdlib only; runs under any CPython 3.6+.
"""
import ctypes
import json
import mmap
import os
import resource
import sys
import threading
import time

PR_SET_NAME = 15


def set_thread_name(name):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def worker(name, started, stop):
    set_thread_name(name)
    started.set()
    stop.wait()


def read_bytes(path):
    with open(path, "rb") as fh:
        return fh.read()


def threads():
    out = []
    for tid in sorted(os.listdir("/proc/self/task"), key=int):
        name = read_bytes("/proc/self/task/%s/comm" % tid).rstrip(b"\n")
        out.append([int(tid), name.decode("utf-8", "surrogateescape")])
    return out


def main():
    expect, mode = sys.argv[1], sys.argv[2]
    keep = []
    stop = threading.Event()
    marker = None
    if mode == "meta":
        for name in ("pc-worker-1", "pc worker 2"):
            started = threading.Event()
            t = threading.Thread(target=worker, args=(name, started, stop))
            t.daemon = True
            t.start()
            started.wait()
        data = os.urandom(64 << 10)
        m = mmap.mmap(-1, len(data))
        m[:] = data
        keep.append(m)
        with open(expect + ".marker", "wb") as fh:
            fh.write(data)
        marker = ctypes.addressof(ctypes.c_char.from_buffer(m))
    elif mode == "fill":
        mib = int(sys.argv[3])
        keep.append(b"\x5a" * (mib << 20))
    elif mode == "mix":
        mib = int(sys.argv[3])
        m = mmap.mmap(-1, mib << 20)
        rnd = os.urandom(1 << 20)
        for i in range(0, mib, 2):
            # a fresh random MiB now and then: not one block repeated
            if i % 16 == 0:
                rnd = os.urandom(1 << 20)
            m[i << 20:(i + 1) << 20] = rnd
        keep.append(m)
    elif mode == "heap":
        n = int(sys.argv[3])
        keep.append([{"id": i, "x": i * 0.25, "y": float(i) / 7.0,
                      "name": "item-%d" % i, "tag": "t%x" % (i * 2654435761),
                      "n": -i}
                     for i in range(n)])
    soft = resource.getrlimit(resource.RLIMIT_CORE)[0]
    cg = ""
    for line in read_bytes("/proc/self/cgroup").decode().splitlines():
        if line.startswith("0::"):
            cg = line[3:]
    info = {
        "pid": os.getpid(), "ppid": os.getppid(),
        "uid": os.getuid(), "gid": os.getgid(),
        "comm": read_bytes("/proc/self/comm").rstrip(b"\n").decode(
            "utf-8", "surrogateescape"),
        "exe": os.readlink("/proc/self/exe"),
        "cwd": os.readlink("/proc/self/cwd"),
        "cmdline_hex": read_bytes("/proc/self/cmdline").hex(),
        "threads": threads(),
        "cgroup": cg,
        "rlimit_core": -1 if soft == resource.RLIM_INFINITY else soft,
        "boot_id": read_bytes("/proc/sys/kernel/random/boot_id").decode().strip(),
        "marker": marker,
        "rss_kib": int([l for l in read_bytes("/proc/self/status").decode().splitlines()
                        if l.startswith("VmRSS:")][0].split()[1]),
    }
    tmp = expect + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(info, fh)
    os.rename(tmp, expect)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        time.sleep(100)


if __name__ == "__main__":
    main()
