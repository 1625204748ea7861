# -*- coding: utf-8 -*-
"""(g) The crash happens in a generator frame, called from a coroutine that
an event loop drives.

3.5+: asyncio loop -> async def main_coro -> await consume() -> for over
      outer_gen() -> yield from inner_gen() -> abort (see _coro3.py).
2.7:  no async/await nor yield from: a hand-written loop drives a
      generator-based coroutine with send(); it iterates a generator that
      aborts."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def py2_gen(n):
    for i in range(n):
        yield i
    _common.write_expectation("SIGABRT", notes={"variant": "generator coroutine"}); os.abort()  # noqa: E501,E702


def py2_coroutine():
    while True:
        n = yield
        for _ in py2_gen(n):
            pass


def py2_loop():
    co = py2_coroutine()
    next(co)
    for n in (1, 2, 3):
        co.send(n)


def main():
    _common.init("gen_coro")
    if sys.version_info >= (3, 5):
        import _coro3
        _coro3.run()
    else:
        py2_loop()


if __name__ == "__main__":
    main()
