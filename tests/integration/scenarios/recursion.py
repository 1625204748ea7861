# -*- coding: utf-8 -*-
"""(b) Recursion deeper than 1000 frames, aborting at the bottom."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

DEPTH = 1500


def recurse(n):
    if n > 0:
        return recurse(n - 1) + 1
    _common.write_expectation("SIGABRT", notes={"depth": DEPTH}); os.abort()  # noqa: E702


def main():
    _common.init("recursion")
    sys.setrecursionlimit(DEPTH + 1000)
    recurse(DEPTH)


if __name__ == "__main__":
    main()
