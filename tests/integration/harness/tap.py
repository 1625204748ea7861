# -*- coding: utf-8 -*-
"""TAP output for the integration tests, and what a test's main() needs
around its checks: the watchdog of the whole run, signals unwinding through
try/finally, one case run so that a broken harness is one failed check.

    tap = TAP()
    tap.ok(cond, "description", ["diagnostic", ...])
    tap.skip("reason")                     # ok N # SKIP reason
    tap.diag("a comment")
    return tap.done()                      # the plan; the exit status

automake's tap-driver reads it: the plan comes last (`1..N` from done()), or
alone as `1..0 # SKIP reason` (skip_all()) when nothing can run.  done()
returns 1 when a check failed and 0 otherwise, so that `sys.exit(main())` tells the driver too.
"""
import signal
import sys
import time
import traceback


class TAP(object):
    """Prints `ok N - desc`, `not ok N - desc` (with `# ` diagnostics),
    and `ok N # SKIP reason`; the plan comes last (done()).  Nothing is
    marked as an expected failure: a known limit is a bug to fix, not a
    check that cannot fail."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        self.skipped = 0
        out = sys.stdout
        if hasattr(out, "reconfigure"):
            out.reconfigure(errors="backslashreplace", line_buffering=True)

    @staticmethod
    def _clean(s):
        # A '#' in a description would start a TAP directive.
        return " ".join(str(s).replace("#", "No.").split())

    def diag(self, lines):
        if isinstance(lines, str):
            lines = [lines]
        for chunk in lines:
            for line in str(chunk).splitlines() or [""]:
                print("# " + line)

    def ok(self, cond, desc, diag=()):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, self._clean(desc)))
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, self._clean(desc)))
            self.diag(list(diag))
        return cond

    def skip(self, reason):
        self.n += 1
        self.skipped += 1
        print("ok %d # SKIP %s" % (self.n, self._clean(reason)))

    def skip_all(self, reason):
        """The whole test cannot run: the plan `1..0 # SKIP reason` alone
        (before any check); returns the exit status 0."""
        print("1..0 # SKIP %s" % " ".join(str(reason).split()))
        sys.stdout.flush()
        return 0

    @property
    def status(self):
        """The exit status: 1 when a check failed, else 0."""
        return 1 if self.failed else 0

    def done(self):
        """Print the plan; return the exit status."""
        print("1..%d" % self.n)
        sys.stdout.flush()
        return self.status


# --------------------------------------------------------------------------
# the whole run's time limit, and signals that unwind

class Watchdog(Exception):
    """The whole test ran past its time limit (SIGALRM)."""


class Interrupted(Exception):
    """SIGTERM, SIGINT or SIGHUP, raised where the test was so that its
    try/finally blocks restore what they changed (on_signal)."""

    def __init__(self, signum):
        Exception.__init__(self, "signal %d" % signum)
        self.signum = signum


def on_alarm(signum, frame):
    raise Watchdog("the whole test exceeded its time limit")


def on_signal(signum, frame):
    raise Interrupted(signum)


class watchdog(object):
    """SIGALRM after `limit` seconds raises Watchdog; cancel() (or the end
    of a `with` block) puts the previous SIGALRM handler back."""

    def __init__(self, limit):
        self.limit = limit
        self._old = signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(limit)

    def cancel(self):
        signal.alarm(0)
        if self._old is not None:
            signal.signal(signal.SIGALRM, self._old)
            self._old = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()
        return False


def run_case(tap, fx, name, call, cleanup=None):
    """Run one case of a test: an exception in the harness is one failed
    check naming the case; afterwards the core_pattern is put back to the
    fixture's own, `cleanup` runs, and every child the case left is killed."""
    t0 = time.time()
    try:
        call()
    except (Watchdog, Interrupted):
        raise
    except Exception:
        tap.ok(False, "%s: the harness" % name,
               traceback.format_exc().splitlines())
    finally:
        fx.reset_pattern()
        if cleanup:
            cleanup()
        fx.kill_children()
    tap.diag("%s: %.1fs" % (name, time.time() - t0))
