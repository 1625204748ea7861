# -*- coding: utf-8 -*-
"""What every integration test shares (stdlib only, Python 3).

    harness.tap          TAP output (ok/not ok, SKIP, TODO, the plan) and
                         the exit status; Watchdog, Interrupted and the
                         per-case runner
    harness.programs     where the built programs are (the one place that
                         knows the build tree's layout) and the environment
                         variables that override it
    harness.run          running `pystack` (with PYSTACK_WRAPPER) and
                         reading its --json report
    harness.corepattern  the core_pattern lock and the two fixtures that
                         change core_pattern under it: CorePattern (cores
                         written to a directory) and PipeHandlerFixture
                         (pipe handlers, core_pipe_limit, tmpfs mounts);
                         the processes it finds: cmdline, ppid, children,
                         status (/proc)
    harness.elfcore      a core to patch: its dumped memory by address,
                         its notes and auxv entries; a sparse patched copy
    harness.users        unprivileged test users (useradd/userdel) and
                         the setpriv prefix that runs a command as one

A test puts tests/integration on sys.path (it is the directory the test
lives in) and imports `from harness import ...`.
"""
