# -*- coding: utf-8 -*-
"""Where the programs under test are: the one place that knows where the
build puts them.

    program          variable            default (below the build directory)
    pystack          PYSTACK             analyzer/pystack
    pystack-coredump PYSTACK_COREDUMP    daemon/capture/pystack-coredump
    pystackd         PYSTACKD            daemon/pystackd/pystackd
    pystackctl       PYSTACKCTL          daemon/ctl/pystackctl

A variable that is set names the program (a relative path is taken from the
current directory).  Otherwise the program is looked for below the build
directory: $PYSTACK_BUILDDIR (`make check` sets it), else the directory the
caller names (contrib/bench: the checkout's build/), else the current
directory.  PYSTACK_DAEMON_ANALYZER names the analyzer pystackd runs when it
is not PYSTACK (the sanitizer suite: AddressSanitizer reserves terabytes of
address space, which MemoryMax rightly refuses); PYSTACK_WRAPPER is a
command prefix for every analyzer run (`valgrind -q --error-exitcode=99`).
"""
import os
import shlex

# name -> (environment variable, path below the build directory)
LAYOUT = {
    "pystack": ("PYSTACK", os.path.join("analyzer", "pystack")),
    "pystack-coredump": ("PYSTACK_COREDUMP",
                         os.path.join("daemon", "capture", "pystack-coredump")),
    "pystackd": ("PYSTACKD", os.path.join("daemon", "pystackd", "pystackd")),
    "pystackctl": ("PYSTACKCTL", os.path.join("daemon", "ctl", "pystackctl")),
}


def build_dir(default=None):
    """The build directory the programs are looked for in."""
    return os.path.abspath(os.environ.get("PYSTACK_BUILDDIR") or default
                           or os.getcwd())


def program(name, build=None):
    """The absolute path of a program of LAYOUT: its variable, or its place
    below build_dir(build)."""
    var, rel = LAYOUT[name]
    p = os.environ.get(var) or os.path.join(build_dir(build), rel)
    return os.path.abspath(p)


def variable(name):
    """The environment variable that names a program."""
    return LAYOUT[name][0]


def pystack(build=None):
    return program("pystack", build)


def coredump(build=None):
    return program("pystack-coredump", build)


def pystackd(build=None):
    return program("pystackd", build)


def pystackctl(build=None):
    return program("pystackctl", build)


def daemon_analyzer(build=None):
    """The analyzer pystackd runs in tests: PYSTACK_DAEMON_ANALYZER, else
    pystack()."""
    p = os.environ.get("PYSTACK_DAEMON_ANALYZER")
    return os.path.abspath(p) if p else pystack(build)


def pystack_cmd(args):
    """The command line of one analyzer run: PYSTACK_WRAPPER, pystack, args."""
    wrapper = shlex.split(os.environ.get("PYSTACK_WRAPPER", ""))
    return wrapper + [pystack()] + list(args)
