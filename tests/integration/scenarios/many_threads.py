# -*- coding: utf-8 -*-
"""(i) 20 threads with stacks of different depths, all blocked; the main
thread aborts."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

NTHREADS = 20


def level(i, n):
    if n > 0:
        return level(i, n - 1)
    if i % 4 == 3:
        _common.park_event()
    else:
        _common.park()


def worker(i):
    level(i, i % 5)


def main():
    _common.init("many_threads")
    for i in range(NTHREADS):
        _common.start(worker, args=(i,), name="worker-%02d" % i)
    _common.wait_parked(count=NTHREADS)
    _common.write_expectation("SIGABRT", notes={"threads": NTHREADS + 1}); os.abort()  # noqa: E702


if __name__ == "__main__":
    main()
