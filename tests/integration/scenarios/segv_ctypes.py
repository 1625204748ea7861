# -*- coding: utf-8 -*-
"""(c) SIGSEGV from ctypes.string_at(0) (a PYFUNCTYPE call: it keeps the GIL)
in a worker thread while the main thread waits in join()."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

try:
    import ctypes
except ImportError:
    ctypes = None


def bad_read(extra):
    _common.wait_parked(count=2)
    _common.write_expectation("SIGSEGV", extra_inner=extra); ctypes.string_at(0)  # noqa: E702


def crasher():
    extra = [_common.code_frame(ctypes.string_at, "return _string_at(")]
    bad_read(extra)


def sleeper():
    _common.park()


def main():
    _common.init("segv_ctypes")
    if ctypes is None:
        _common.skip("ctypes is not available in this interpreter")
    _common.start(sleeper, name="sleeper")
    t = _common.start(crasher, name="crasher")
    _common.ready(); t.join()  # noqa: E702


if __name__ == "__main__":
    main()
