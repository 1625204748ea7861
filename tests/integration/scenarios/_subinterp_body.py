# -*- coding: utf-8 -*-
"""The part of scenario subinterpreters that runs in the subinterpreter:
it tells the main interpreter its thread and frames, then waits for the
word and aborts on that same line (after a moment, so that the main thread
has gone back to its blocking read)."""
import json
import os
import sys
import time

import _common


def send(fd, frame):
    msg = {"tid": _common.gettid(), "frames": _common.frame_list(frame)}
    os.write(fd, (json.dumps(msg) + "\n").encode("utf-8"))


def leaf(to_main, go):
    send(to_main, sys._getframe()); os.read(go, 1); time.sleep(0.3); os.abort()  # noqa: E702


def main(to_main, go):
    leaf(to_main, go)
