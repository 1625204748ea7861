# -*- coding: utf-8 -*-
"""(l) --locals: one crashing frame holding arguments and locals of every
kind of value pystack renders.

Just before crashing, the frame's variables are recorded in the
expectation's "notes": for each, in the interpreter's order (arguments,
then locals, then cell and free variables), its name, whether it is an
argument, Python's own repr() and the rendering pystack must print under
its default limits (LOCALS_DEFAULT_* in analyzer/analysis.h; the limit rules
are documented in analyzer/python/py_locals.h).  Leaf values (numbers, strings,
bytes) in that rendering are Python's repr(); only the truncation is
applied here.  When no limit applies, the two must be equal.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

PY2 = sys.version_info[0] == 2
MAX_STRING, MAX_ITEMS, MAX_DEPTH, MAX_REPR = 80, 10, 3, 1024
CO_VARARGS, CO_VARKEYWORDS = 0x4, 0x8

if PY2:
    TEXT_TYPES = (str, unicode)  # noqa: F821
    INT_TYPES = (int, long)  # noqa: F821
else:
    TEXT_TYPES = (str, bytes)
    INT_TYPES = (int,)

RECURSIVE = {list: "[...]", tuple: "(...)", dict: "{...}",
             set: "set(...)", frozenset: "frozenset(...)"}


def bounded(v, stack=()):
    """pystack's rendering of v: repr() with the limits applied.
    Returns (text, limited)."""
    t = type(v)
    if t in TEXT_TYPES:
        if len(v) <= MAX_STRING:
            return repr(v), False
        r = repr(v[:MAX_STRING])
        return r[:-1] + "..." + r[-1], True
    if v is None or t in INT_TYPES or t in (bool, float):
        return repr(v), False
    if t not in RECURSIVE:
        return "<%s at 0x%x>" % (t.__name__, id(v)), False
    if id(v) in stack:
        return RECURSIVE[t], False           # Python prints cycles the same way
    if len(stack) >= MAX_DEPTH:
        return RECURSIVE[t], True
    stack = stack + (id(v),)
    items = list(v.items()) if t is dict else list(v)
    parts, limited = [], False
    for i, it in enumerate(items):
        if i >= MAX_ITEMS:
            parts.append("...")
            limited = True
            break
        if t is dict:
            (k, kl), (x, xl) = bounded(it[0], stack), bounded(it[1], stack)
            parts.append(k + ": " + x)
        else:
            (k, kl), xl = bounded(it, stack), False
            parts.append(k)
        limited = limited or kl or xl
    body = ", ".join(parts)
    if t is list:
        return "[" + body + "]", limited
    if t is tuple:
        return "(" + body + ("," if len(v) == 1 else "") + ")", limited
    if t is dict:
        return "{" + body + "}", limited
    name = "set" if t is set else "frozenset"
    if PY2:
        return "%s([%s])" % (name, body), limited
    if not v:
        return name + "()", limited
    return ("{%s}" if t is set else "frozenset({%s})") % body, limited


def rendering(v):
    text, limited = bounded(v)
    if not PY2 and isinstance(text, bytes):
        text = text.decode("utf-8")
    if PY2 and isinstance(text, str):
        text = text.decode("utf-8")
    raw = text.encode("utf-8")
    if len(raw) > MAX_REPR:
        cut = MAX_REPR - 3
        while cut > 0 and (ord(raw[cut:cut + 1]) & 0xC0) == 0x80:
            cut -= 1
        text = raw[:cut].decode("utf-8") + u"..."
        limited = True
    return text, limited


def expect_locals(frame):
    """The variables of `frame` as pystack must show them."""
    code = frame.f_code
    nargs = code.co_argcount + getattr(code, "co_kwonlyargcount", 0)
    nargs += bool(code.co_flags & CO_VARARGS) + bool(code.co_flags & CO_VARKEYWORDS)
    names = list(code.co_varnames)
    names += [n for n in code.co_cellvars if n not in names]
    names += list(code.co_freevars)
    values = frame.f_locals
    out = []
    for i, name in enumerate(names):
        if name not in values:
            continue                    # unbound: not shown
        v = values[name]
        text, limited = rendering(v)
        py = repr(v)
        if PY2 and isinstance(py, str):
            py = py.decode("utf-8")
        out.append({"name": name, "argument": i < nargs, "expected": text,
                    "limited": limited, "python_repr": py,
                    "type": type(v).__name__})
    return {"function": code.co_name, "variables": out,
            "limits": {"max_string": MAX_STRING, "max_items": MAX_ITEMS,
                       "max_depth": MAX_DEPTH, "max_repr": MAX_REPR}}


class Obj(object):
    def __init__(self):
        self.alpha = 1
        self.beta = "two"
        self.gamma = [3.0]


def outer(free_list, free_text):
    def crash_frame(pos, big, *args, **kwargs):
        captured = pos + 1                          # a cell: the lambda uses it
        later_fn = lambda: (captured, pos)          # noqa: E731  pos: an argument in a cell
        uses_free = (free_list, free_text)          # free variables of this frame
        none, true, false = None, True, False
        zero, small, neg = 0, 42, -7
        big_pos = 2 ** 64 + 1
        big_neg = -(2 ** 100 + 12345)
        f01, f16, negzero = 0.1, 1e16, -0.0
        fsmall, fbig, fneg = 1e-05, 1.5e300, -2.5
        inf, nan = float("inf"), float("nan")
        ascii_s = "plain"
        quotes = "it's"
        both_quotes = "it's \"x\""
        ctrl = "tab\there\nnl\x01\x7f\\"
        latin1 = u"caf\xe9 \xa0 \xff"
        ucs2 = u"\u65e5\u672c\u8a9e \u0101"
        astral = u"snake \U0001f40d!"
        byts = b"\x00\x01ab'c\xff\x80"
        nested = [1, (2.5, None), {"k": [True]}, frozenset([7])]
        deep = [[[[1]]]]
        one_tuple = (1,)
        empty_tuple = ()
        empty_list = []
        empty_dict = {}
        empty_set = set()
        a_set = set([1, 2, 3])
        a_frozenset = frozenset(["fz"])
        inst = Obj()
        split_dict = inst.__dict__
        selfref = [1, 2]
        selfref.append(selfref)
        self_dict = {"a": 1}
        self_dict["me"] = self_dict
        long_list = list(range(100))
        long_str = "x" * 200
        long_dict = dict(("k%03d" % i, "v" * 90) for i in range(20))
        _common.write_expectation("SIGABRT", notes=expect_locals(sys._getframe())); os.abort()  # noqa: E702
        unbound = 1
        return later_fn, uses_free, unbound
    return crash_frame


def main():
    _common.init("locals")
    f = outer([u"free"], "text")
    f(10, -(2 ** 70), 1, "two", kw=3.5, other=None)


if __name__ == "__main__":
    main()
