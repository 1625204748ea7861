# -*- coding: utf-8 -*-
"""Helpers shared by the crash scenarios (not a scenario itself).

Runs under Python 2.7 and every 3.x: keep the syntax 2.7-compatible and the
imports to the standard library.

A scenario calls init(), starts its threads with start(), makes every thread
that must not crash block with park()/park_event() (or ready() just before a
blocking call such as Thread.join()), waits with wait_parked(), and finally
crashes on the SAME source line as the call to write_expectation(), e.g.

    _common.write_expectation("SIGABRT"); os.abort()

so that the line recorded for the crashing frame is the line of the crash
call.  write_expectation() records, as the program itself sees them, the
pid, every thread's kernel tid, which thread crashes and every thread's
Python stack, into the JSON file named by argv[1] (or $PYSTACK_EXPECT).
"""
from __future__ import print_function

import json
import linecache
import os
import platform
import sys
import sysconfig
import threading
import time

try:
    from _thread import get_ident, allocate_lock
except ImportError:  # Python 2
    from thread import get_ident, allocate_lock

PY2 = sys.version_info[0] == 2

_tids = {}             # thread ident -> kernel tid
_names = {}            # thread ident -> thread name
_ready = set()         # idents of threads that are about to block for ever
_reg_lock = allocate_lock()
_never = allocate_lock()
_never.acquire()       # nobody ever releases it
_never_event = threading.Event()
_expect_path = None
_scenario = None
_SYS_GETTID = {"x86_64": 186, "aarch64": 178}


def gettid():
    """Kernel thread id of the calling thread."""
    f = getattr(threading, "get_native_id", None)
    if f is not None:
        return f()
    nr = _SYS_GETTID.get(platform.machine())
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        tid = libc.syscall(nr) if nr else 0
        if tid > 0:
            return int(tid)
    except Exception:
        pass
    # /proc/thread-self -> "<pid>/task/<tid>"
    return int(os.readlink("/proc/thread-self").split("/")[-1])


def _register(name):
    with _reg_lock:
        _tids[get_ident()] = gettid()
        _names[get_ident()] = name


def expect_path():
    return _expect_path


def init(scenario, argv_index=1):
    """Register the main thread and find where the expectation goes."""
    global _expect_path, _scenario
    _scenario = scenario
    if len(sys.argv) > argv_index and sys.argv[argv_index]:
        _expect_path = sys.argv[argv_index]
    else:
        _expect_path = os.environ.get("PYSTACK_EXPECT")
    if not _expect_path:
        sys.stderr.write("usage: %s EXPECTATION.json (or set PYSTACK_EXPECT)\n"
                         % sys.argv[0])
        sys.exit(2)
    _register("MainThread")


def skip(reason):
    """Feature missing on this interpreter: record a SKIP and exit cleanly."""
    _write({"schema": 1, "scenario": _scenario, "skip": reason,
            "python_version": "%d.%d.%d" % sys.version_info[:3]})
    sys.exit(0)


def _run(target, args, name):
    _register(name)
    target(*args)


def start(target, args=(), name=None):
    t = threading.Thread(target=_run, args=(target, tuple(args), name))
    if name is not None:
        t.name = name
    t.daemon = True
    t.start()
    return t


def ready():
    """The calling thread is about to block for ever (e.g. in join())."""
    with _reg_lock:
        _ready.add(get_ident())


def park():
    """Block the calling thread for ever on a plain lock."""
    ready()
    _never.acquire()


def park_event():
    """Block the calling thread for ever in threading.Event.wait()."""
    ready()
    _never_event.wait()


def _top(frames, ident):
    f = frames.get(ident)
    if f is None:
        return None
    return (f.f_code.co_filename, f.f_lineno, f.f_code.co_name, id(f))


def wait_parked(count=None, timeout=20.0):
    """Wait until every other registered thread (or `count` of them) has
    called ready()/park() and its innermost frame has stopped moving."""
    me = get_ident()
    deadline = time.time() + timeout
    stable_since = None
    last = None
    while time.time() < deadline:
        with _reg_lock:
            others = [i for i in _tids if i != me]
            waiting = [i for i in others if i not in _ready]
        if count is not None and len(others) < count:
            waiting = waiting or [None]
        if not waiting:
            frames = sys._current_frames()
            tops = dict((i, _top(frames, i)) for i in others)
            if tops == last:
                if stable_since is None:
                    stable_since = time.time()
                elif time.time() - stable_since >= 0.15:
                    return
            else:
                stable_since = None
                last = tops
        time.sleep(0.01)
    raise RuntimeError("threads did not block in time")


def _text(s):
    if PY2 and isinstance(s, str):
        return s.decode("utf-8", "replace")
    return s


def _source(filename, lineno):
    if filename.startswith("<") and filename.endswith(">"):
        return None
    try:
        line = linecache.getline(filename, lineno)
    except Exception:
        return None
    line = _text(line).strip()
    return line or None


def frame_list(f):
    """[(file, line, function, source)] outermost first, starting at f."""
    out = []
    while f is not None:
        fn = _text(f.f_code.co_filename)
        out.append({"file": fn, "line": f.f_lineno,
                    "function": _text(f.f_code.co_name),
                    "qualname": _text(getattr(f.f_code, "co_qualname",
                                              f.f_code.co_name)),
                    "source": _source(f.f_code.co_filename, f.f_lineno)})
        f = f.f_back
    out.reverse()
    return out


def code_frame(func, needle):
    """Expected frame for a pure-Python library function `func` that will be
    on the stack at the crash, at the first line of its source containing
    `needle` (e.g. ctypes.string_at -> 'return _string_at(')."""
    code = getattr(func, "__code__", None) or func.func_code
    filename = code.co_filename
    first = code.co_firstlineno
    lineno = None
    i = first
    while True:
        line = linecache.getline(filename, i)
        if not line:
            break
        if needle in line:
            lineno = i
            break
        i += 1
    if lineno is None:
        raise RuntimeError("cannot find %r in %s" % (needle, filename))
    return {"file": _text(filename), "line": lineno,
            "function": _text(code.co_name),
            "qualname": _text(getattr(code, "co_qualname", code.co_name)),
            "source": _source(filename, lineno)}


def _read_proc(name):
    try:
        with open("/proc/self/" + name, "rb") as fh:
            return fh.read()
    except IOError:
        return b""


def _write(obj):
    tmp = _expect_path + ".tmp"
    data = json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=True)
    with open(tmp, "w") as fh:
        fh.write(data)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.rename(tmp, _expect_path)


def write_expectation(signal, extra_inner=(), gc_collecting=False,
                      skip_frames=0, notes=None, exception=None):
    """Record what this process knows, just before the crash.

    The crashing thread is the caller; its innermost frame is the caller's
    frame at the current line (crash on the same line!), plus `extra_inner`
    frames (pure-Python library frames the crash call goes through)."""
    me = get_ident()
    frames = sys._current_frames()
    mine = sys._getframe(1 + skip_frames)
    # a free-threaded build (3.13t+) runs without a GIL unless it was
    # turned back on: then no thread holds one
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    unknown = [i for i in frames if i not in _tids]
    if unknown:
        raise RuntimeError("unregistered Python threads: %r" % unknown)
    threads = []
    for ident in sorted(_tids, key=lambda i: _tids[i]):
        if ident == me:
            fl = frame_list(mine) + list(extra_inner)
        else:
            fl = frame_list(frames.get(ident))
        threads.append({"tid": _tids[ident], "ident": ident,
                        "name": _names.get(ident),
                        "crashed": ident == me,
                        "has_gil": gil and ident == me,
                        # the GC flag is per interpreter: other threads of a
                        # collecting interpreter are not checked
                        "gc_collecting": (bool(gc_collecting) if ident == me
                                          else (None if gc_collecting else False)),
                        # the exception the crashing thread raises or handles
                        "exception": exception if ident == me else None,
                        "frames": fl})
    cmdline = _read_proc("cmdline")
    psargs = cmdline.replace(b"\0", b" ")[:79].rstrip(b" ")
    comm = _read_proc("comm").rstrip(b"\n")
    if comm.startswith(b"qemu-"):
        # run by qemu-user (cores.py's aarch64 interpreters): /proc/self/comm
        # names the emulator, while the core qemu writes names the program,
        # as the kernel of a native run would
        comm = os.path.basename(sys.executable).encode("utf-8", "replace")[:15]
    obj = {"schema": 1,
           "scenario": _scenario,
           "python_version": "%d.%d.%d" % sys.version_info[:3],
           "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
           "executable": _text(os.path.realpath(sys.executable)),
           "pid": os.getpid(), "ppid": os.getppid(),
           "uid": os.getuid(), "gid": os.getgid(),
           "comm": comm.decode("utf-8", "replace"),
           "psargs": psargs.decode("utf-8", "replace"),
           "signal": signal,
           "crash_tid": _tids[me],
           "threads": threads,
           "notes": notes}
    _write(obj)
