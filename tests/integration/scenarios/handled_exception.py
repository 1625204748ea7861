# -*- coding: utf-8 -*-
"""(m) SIGABRT from os.abort() inside an `except` block, with one other
thread blocked: the exception being handled when the process died.  3.15
publishes the thread's exception state in its debug offsets, so from 3.15 on
the report shows it under the crashed thread's header; before, it does not
(the expectation says what it should be, the test what each version shows)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def fail(n):
    raise ValueError("bad value %d" % n)


def handle():
    try:
        fail(42)
    except ValueError:
        _common.write_expectation("SIGABRT", exception={"text": "ValueError: bad value 42", "handled": True}); os.abort()  # noqa: E702,E501


def blocked():
    _common.park()


def run():
    _common.start(blocked, name="blocked")
    _common.wait_parked(count=1)
    handle()


_common.init("handled_exception")
run()
