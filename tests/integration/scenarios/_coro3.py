# -*- coding: utf-8 -*-
"""Python 3.5+ half of the gen_coro scenario (async syntax)."""
import asyncio
import os

import _common


def inner_gen(n):
    for i in range(n):
        yield i
    _common.write_expectation("SIGABRT"); os.abort()  # noqa: E702


def outer_gen():
    yield 0
    yield from inner_gen(2)


async def consume():
    await asyncio.sleep(0)
    total = 0
    for v in outer_gen():
        total += v
    return total


async def main_coro():
    await asyncio.sleep(0)
    return await consume()


def run():
    loop = asyncio.new_event_loop()
    loop.run_until_complete(main_coro())
