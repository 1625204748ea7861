#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: allocation failures in pystack, pystack-coredump and pystackctl, a bounded
sample of tests/alloc/run-alloc-sweep (which says what is run and checked).

Run as root from the build directory (after `make`) of a build configured with
--enable-alloc-faults (CI's sanitizer build is); any other build SKIPs:

    /usr/bin/python3 ../tests/integration/test_alloc_faults.py

One TAP line per scenario: every run of the sample exited 0 or with one clear error, and
none crashed, leaked, hung, answered wrongly without a word or lost what the store held.

Environment:
  PYSTACK_ALLOC_SAMPLE    every K-th allocation is failed (default 7), and the first of every
                          site whatever K
  PYSTACK_ALLOC_MAX_RUNS  at most this many runs per scenario (default 150)
  PYSTACK_ALLOC_TIMEOUT   the whole run's limit in seconds (default 900)
  and those of the integration tests (PYSTACK_TEST_CORES, the programs: README.md).
The full sweep (every N, several minutes): tests/alloc/run-alloc-sweep.
"""
import importlib.machinery
import importlib.util
import os
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness.tap import TAP, Interrupted, Watchdog, on_signal, watchdog  # noqa: E402
import signal  # noqa: E402


def load_sweep():
    path = os.path.join(HERE, "..", "alloc", "run-alloc-sweep")
    loader = importlib.machinery.SourceFileLoader("run_alloc_sweep", path)
    spec = importlib.util.spec_from_loader("run_alloc_sweep", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def main():
    tap = TAP()
    if os.geteuid() != 0:
        tap.skip_all("needs root (the handler and pystackd run here)")
        return 0
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    sweep = load_sweep()
    if not sweep.alloc_faults_build():
        return tap.skip_all("not an --enable-alloc-faults build: nothing to fail (configure "
                            "--enable-alloc-faults, as CI's sanitizer build is)")
    args = ["--tap", "--sample=%d" % int(os.environ.get("PYSTACK_ALLOC_SAMPLE", "7")),
            "--max-runs=%d" % int(os.environ.get("PYSTACK_ALLOC_MAX_RUNS", "150"))]
    try:
        with watchdog(int(os.environ.get("PYSTACK_ALLOC_TIMEOUT", "900"))):
            sweep.main(args, tap=tap)
    except (Interrupted, Watchdog) as e:
        tap.ok(False, "the sample did not finish", ["%s" % e])
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
