# -*- coding: utf-8 -*-
"""(e) A `python -c PROGRAM` crash: frames live in the file "<string>".

This script only re-executes the interpreter (same pid) as
    python -E -s -B -c CODE EXPECTATION.json SCENARIO_DIR
The first line of CODE is a comment, so that the 80 bytes the kernel keeps
of the command line (NT_PRPSINFO pr_psargs) hold no newline."""
import json
import os
import sys

CODE = """# pystack integration scenario dash_c: the crash is in the -c program text
import os, sys
sys.path.insert(0, sys.argv[2])
import _common


def inner(n):
    if n:
        return inner(n - 1)
    _common.write_expectation("SIGABRT"); os.abort()


def outer():
    return inner(2)


_common.init("dash_c")
outer()
"""

if __name__ == "__main__":
    if len(sys.argv) > 1:
        expect = sys.argv[1]
    else:
        expect = os.environ.get("PYSTACK_EXPECT", "")
    here = os.path.dirname(os.path.abspath(__file__))
    # An interpreter of another architecture runs under an emulator
    # (qemu-user; cores.py names it in PYSTACK_EMULATOR, a JSON list): the
    # host cannot execute the interpreter itself, the emulator can
    emulator = json.loads(os.environ.get("PYSTACK_EMULATOR") or "[]")
    argv = emulator + [sys.executable, "-E", "-s", "-B", "-c", CODE, expect, here]
    os.execv(argv[0], argv)
