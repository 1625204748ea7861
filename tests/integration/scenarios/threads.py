# -*- coding: utf-8 -*-
"""(a) Nested calls in several threads: one worker holds the GIL and aborts,
the others (and the main thread, in join()) are blocked."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def leaf_lock(n):
    _common.park()


def middle_lock(n):
    leaf_lock(n + 1)


def outer_lock():
    middle_lock(0)


def leaf_event():
    _common.park_event()


def outer_event():
    x = [leaf_event() for _ in range(1)]
    return x


def crash_leaf(depth):
    _common.wait_parked(count=3)
    _common.write_expectation("SIGABRT"); os.abort()  # noqa: E702


def crash_middle(depth):
    if depth < 3:
        return crash_middle(depth + 1)
    return crash_leaf(depth)


def crasher():
    crash_middle(0)


def main():
    _common.init("threads")
    _common.start(outer_lock, name="blocked-lock")
    _common.start(outer_event, name="blocked-event")
    t = _common.start(crasher, name="crasher")
    _common.ready(); t.join()  # noqa: E702


if __name__ == "__main__":
    main()
