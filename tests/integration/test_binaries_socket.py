#!/usr/bin/python3
"""TAP test: test_binaries.py's cases again with the kernel's coredump socket
([Capture] Mode=socket, Linux 6.17+) in place of the pipe handler (issue 17).
PYSTACK_CAPTURE_MODE=socket is what test_binaries.py reads; a kernel without the
socket is a SKIP there."""
import os
import runpy
import sys

os.environ["PYSTACK_CAPTURE_MODE"] = "socket"
here = os.path.dirname(os.path.abspath(__file__))
sys.argv[0] = os.path.join(here, "test_binaries.py")
runpy.run_path(sys.argv[0], run_name="__main__")
