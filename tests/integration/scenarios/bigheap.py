# -*- coding: utf-8 -*-
"""Benchmark-only scenario: grow the heap with lists and dicts until the
resident set reaches PYSTACK_BIGHEAP_MIB (default 30) MiB, then abort."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def rss_mib():
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)


def grow(target):
    heap = []
    i = 0
    while rss_mib() < target:
        chunk = []
        for j in range(2000):
            chunk.append({"key": i, "name": "item-%d" % i, "values": [i, j, i * j]})
            i += 1
        heap.append(chunk)
    return heap


def main():
    _common.init("bigheap")
    heap = grow(float(os.environ.get("PYSTACK_BIGHEAP_MIB", "30")))
    _common.write_expectation("SIGABRT", notes={"rss_mib": rss_mib(), "chunks": len(heap)}); os.abort()  # noqa: E501,E702


if __name__ == "__main__":
    main()
