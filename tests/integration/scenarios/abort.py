# -*- coding: utf-8 -*-
"""(d) SIGABRT from os.abort() in the main thread, a few calls deep, with one
other thread blocked."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


class Worker(object):
    def method(self, n):
        if n:
            return self.method(n - 1)
        _common.write_expectation("SIGABRT"); os.abort()  # noqa: E702


def blocked():
    _common.park()


def run():
    _common.start(blocked, name="blocked")
    _common.wait_parked(count=1)
    Worker().method(2)


_common.init("abort")
run()
