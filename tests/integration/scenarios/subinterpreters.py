# -*- coding: utf-8 -*-
"""A crash inside a subinterpreter (3.8+: _xxsubinterpreters, 3.13+:
_interpreters).  The thread "sub-runner" calls from the main interpreter
into interpreter N, whose code (in _subinterp_body.py) aborts; the main
thread waits in join().  Not one of the common scenarios: its expectation
names each thread's interpreter, and one OS thread appears once per
interpreter, so test_subinterpreters.py checks it.

Expectation: the usual fields, and "threads" entries with "interpreter"
(the id) — the sub-runner twice, main interpreter first."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _common  # noqa: E402

try:
    import _interpreters as interpreters
    run = getattr(interpreters, "exec")     # a keyword in Python 2's grammar
except ImportError:
    try:
        import _xxsubinterpreters as interpreters
        run = interpreters.run_string
    except ImportError:
        interpreters = None

runner_frames = []


def mark(frame):
    runner_frames.extend(_common.frame_list(frame))


def run_sub(interp, code):
    try:
        mark(sys._getframe()); run(interp, code)  # noqa: E702
    except BaseException:
        import traceback
        traceback.print_exc()
        os._exit(3)     # the main thread waits for the subinterpreter: do not hang it


def receive(fd):
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            raise RuntimeError("the subinterpreter closed its pipe")
        data += chunk
    return json.loads(data.decode("utf-8"))


def expect(sub, sub_id, runner_tid):
    """Write the expectation: the main thread here, the runner in both
    interpreters (its frames in the subinterpreter as it sent them)."""
    main = _common.frame_list(sys._getframe(1))
    threads = [
        {"tid": _common.gettid(), "interpreter": 0, "name": "MainThread",
         "crashed": False, "has_gil": False, "frames": main},
        {"tid": runner_tid, "interpreter": 0, "name": "sub-runner",
         "crashed": False, "has_gil": False, "frames": runner_frames},
        {"tid": runner_tid, "interpreter": sub_id, "name": "sub-runner",
         "crashed": True, "frames": sub["frames"],
         # no GIL at all in a free-threaded build (3.13t+) that kept it off
         "has_gil": getattr(sys, "_is_gil_enabled", lambda: True)()},
    ]
    _common._write({"schema": 1, "scenario": "subinterpreters",
                    "python_version": "%d.%d.%d" % sys.version_info[:3],
                    "executable": os.path.realpath(sys.executable),
                    "pid": os.getpid(), "signal": "SIGABRT",
                    "crash_tid": runner_tid, "threads": threads})


def main():
    _common.init("subinterpreters")
    if interpreters is None:
        _common.skip("no subinterpreter module (_interpreters, _xxsubinterpreters)")
    to_main, from_sub = os.pipe()
    go_read, go_write = os.pipe()
    # up to 3.12 an InterpreterID object: the interpreter lives as long as it does
    interp = interpreters.create()
    sub_id = int(interp[0] if isinstance(interp, tuple) else interp)
    code = ("import sys; sys.path.insert(0, %r); import _subinterp_body; "
            "_subinterp_body.main(%d, %d)" % (HERE, from_sub, go_read))
    _common.start(run_sub, (interp, code), name="sub-runner")
    sub = receive(to_main)
    never, _ = os.pipe()
    expect(sub, sub_id, sub["tid"]); os.write(go_write, b"x"); os.read(never, 1)  # noqa: E702


if __name__ == "__main__":
    main()
