# -*- coding: utf-8 -*-
"""(h) A crash inside Python code run by the cyclic garbage collector.

3.3+: a gc.callbacks callback (phase "start") aborts.
2.7:  no gc.callbacks, and objects with __del__ in (or only reachable from)
      cyclic trash are uncollectable (they go to gc.garbage), so the Python
      code run by the collector is a weakref callback on a member of the
      cycle (handle_weakrefs() runs it inside collect())."""
import gc
import os
import sys
import weakref

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


class Node(object):
    pass


def on_gc(phase, info):
    if phase == "start":
        _common.write_expectation("SIGABRT", gc_collecting=True, notes={"via": "gc.callbacks"}); os.abort()  # noqa: E501,E702


def on_weakref_cleared(ref):
    _common.write_expectation("SIGABRT", gc_collecting=True, notes={"via": "weakref callback"}); os.abort()  # noqa: E501,E702


_keep = []


def make_cycle():
    a = Node()
    b = Node()
    a.other = b
    b.other = a
    if not hasattr(gc, "callbacks"):
        _keep.append(weakref.ref(a, on_weakref_cleared))


def trigger():
    gc.disable()  # nothing collects before we ask for it
    gc.collect()
    make_cycle()
    if hasattr(gc, "callbacks"):
        gc.callbacks.append(on_gc)
    gc.collect()


def main():
    _common.init("gc_callback")
    trigger()
    sys.stderr.write("gc_callback: the collector did not crash\n")
    sys.exit(1)


if __name__ == "__main__":
    main()
