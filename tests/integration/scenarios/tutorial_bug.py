# -*- coding: utf-8 -*-
"""(h) The bug of pystack's core tutorial, in a program of our own: a
generator walks gc.get_objects() and collects the types of the elements of
every tuple.  A `for` loop over it works; `print(*element_types())` crashes
(SIGSEGV at address 0): to call print() with *args the interpreter builds
the argument tuple with PySequence_Tuple(), which allocates the tuple
(length hint 10, all items NULL) before it first resumes the generator, and
the generator finds that half-built tuple among the GC-tracked objects and
touches its NULL items.

Native stack of the crashing thread, outermost first:
    ... <module> (Python) ... PySequence_Tuple ... element_types (Python) ...
The expectation's notes say so ("native_between").  An interpreter whose
PySequence_Tuple does not expose the tuple to gc.get_objects() records a
SKIP with the reason instead of crashing."""
from __future__ import print_function

import gc
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

NOTES = {"native_function": "PySequence_Tuple",
         "native_between": ["<module>", "element_types"]}


def half_built(t):
    """True for a tuple with NULL items (tupletraverse skips NULLs): only
    used to record the expectation just before the crash."""
    return len(gc.get_referents(t)) < len(t)


def element_types():
    seen = set()
    for obj in gc.get_objects():
        if type(obj) is not tuple:
            continue
        if half_built(obj):
            _common.write_expectation("SIGSEGV", notes=NOTES); seen.update(map(type, obj))  # noqa: E702,E501
        seen.update(map(type, obj))
    for t in seen:
        yield t


_common.init("tutorial_bug")
devnull = open(os.devnull, "w")
for kind in element_types():       # fine: no tuple is being built
    print(kind, file=devnull)
print(*element_types(), file=devnull)
_common.skip("no half-built tuple found: PySequence_Tuple in Python %d.%d "
             "does not expose its tuple to gc.get_objects()"
             % sys.version_info[:2])
