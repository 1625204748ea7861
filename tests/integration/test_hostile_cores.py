# -*- coding: utf-8 -*-
"""TAP test: cores crafted to make the analyzer loop or explode.

Real cores (the `threads` scenario of every interpreter) are patched where
the analyzer will look: a frame's link to its caller is pointed back at the
frame itself, and the thread list is closed into a ring.  The analyzer must
finish in bounded time and memory, exit 0 (or 3), and mark the damage (`truncated`, a warning) instead of looping or
guessing.  The addresses come from the analyzer's own JSON of the intact
core (`address` of frames, `thread_state` of threads); the pointers to patch
are found by value inside those structures, so no offsets are hard-coded.
"""
from __future__ import print_function

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cores  # noqa: E402
from harness.elfcore import CoreFile  # noqa: E402
from harness.programs import pystack_cmd  # noqa: E402
from harness.tap import TAP  # noqa: E402

TIMEOUT = 20
MAX_RSS_MIB = 512


def run(args):
    """(exit status, parsed JSON or None, stderr, seconds, max RSS MiB)"""
    t0 = time.time()
    p = subprocess.Popen(pystack_cmd(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.communicate()
        return None, None, "timed out", TIMEOUT, 0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    try:
        doc = json.loads(out.decode("utf-8", "replace"))
    except ValueError:
        doc = None
    return p.returncode, doc, err.decode("utf-8", "replace"), time.time() - t0, rss


def frame_cycle(core, thread):
    """Point the innermost frame's link at itself: returns True when patched."""
    frames = [f["address"] for f in thread["frames"] if f.get("kind", "python") == "python"]
    # outermost first: frames[-1] is innermost, frames[-2] its caller
    for inner, outer in zip(reversed(frames), list(reversed(frames))[1:]):
        for off in range(0, 128, 8):
            if core.u64(inner + off) == outer:
                core.put64(inner + off, inner)
                return True
    return False


def thread_ring(core, threads):
    """Every pointer in a thread state that names another thread state now names itself."""
    states = [t["thread_state"] for t in threads if t.get("thread_state")]
    patched = False
    if len(states) < 2:
        return False
    first = states[0]
    for off in range(0, 64, 8):
        v = core.u64(first + off)
        if v in states and v != first:
            core.put64(first + off, first)
            patched = True
    return patched


def main():
    tap = TAP()
    tmp = tempfile.mkdtemp(prefix="pystack-hostile.")
    try:
        entries = cores.ensure_cores(verbose=False, scenarios=["threads"])
        for e in entries:
            label = e.interp.label
            if e.status != "ok":
                tap.skip("%s: no threads core (%s)" % (label, e.message))
                continue
            rc, intact, err, _, _ = run(["core", e.core, "--json", "--no-source"] + e.pystack_args)
            if rc != 0 or not intact:
                tap.ok(False, "%s: the intact core is analysed" % label, [err])
                continue
            crashed = intact["threads"][0]

            core = CoreFile(e.core)
            if not tap.ok(frame_cycle(core, crashed), "%s: found the innermost frame's link to patch" % label):
                continue
            path = os.path.join(tmp, label + ".frame-cycle")
            core.write(path)
            rc, doc, err, secs, rss = run(["core", path, "--json", "--no-source", "--locals"] + e.pystack_args)
            th = doc and [t for t in doc["threads"] if t["tid"] == crashed["tid"]]
            tap.ok(rc in (0, 3) and th and th[0]["truncated"] and "cycle" in th[0]["truncated"]
                   and len(th[0]["frames"]) <= len(crashed["frames"]),
                   "%s: a frame that is its own caller ends the walk, marked 'cycle' (%.2fs)" % (label, secs),
                   ["exit %r, stderr %r" % (rc, err[:300]),
                    "truncated: %r" % (th[0]["truncated"] if th else None)])
            rc, doc, err, secs, rss = run(["core", path, "--native", "--locals", "--no-source"] + e.pystack_args)
            tap.ok(rc in (0, 3) and secs < TIMEOUT,
                   "%s: the same core with --native --locals finishes (%.2fs)" % (label, secs), [err[:300]])

            core = CoreFile(e.core)
            if len([t for t in intact["threads"] if t.get("thread_state")]) < 2:
                tap.skip("%s: fewer than two Python threads" % label)
                continue
            if not tap.ok(thread_ring(core, intact["threads"]), "%s: found a thread-list link to patch" % label):
                continue
            path = os.path.join(tmp, label + ".thread-ring")
            core.write(path)
            rc, doc, err, secs, rss = run(["core", path, "--json", "--no-source"] + e.pystack_args)
            ok = rc in (0, 3) and doc is not None and len(doc["threads"]) <= len(intact["threads"])
            tap.ok(ok and any("cycle" in w or "corrupt" in w for w in doc["warnings"]),
                   "%s: a ring of thread states is walked once, with a warning (%.2fs, %.0f MiB)"
                   % (label, secs, rss),
                   ["exit %r, stderr %r" % (rc, err[:300]),
                    "threads: %d of %d, warnings %r" % (len(doc["threads"]) if doc else -1,
                                                       len(intact["threads"]), doc and doc["warnings"])])
        tap.ok(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0 < MAX_RSS_MIB,
               "the analyzer's peak memory over all hostile cores stayed under %d MiB" % MAX_RSS_MIB)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
