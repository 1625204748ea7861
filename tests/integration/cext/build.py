# -*- coding: utf-8 -*-
"""Build tests/integration/cext/crashext.c for one CPython.

Runs under Python 2.7 and every 3.x (the cext_inline scenario imports it
when nobody built the module for it), and as a command:

    build.py PYTHON OUTDIR [--split-debug]

The interpreter's own INCLUDEPY, EXT_SUFFIX (SO on 2.7) and CFLAGS come from
`PYTHON -c "import sysconfig; ..."`; the module is compiled with
`cc <CFLAGS> -shared -fPIC -O2 -g` into OUTDIR/crashext<EXT_SUFFIX> (never
into the source tree).  For an interpreter of another architecture, build()
takes the command line that runs it (an emulator's), a cross compiler and
the tree it runs in as the compiler's --sysroot, where its INCLUDEPY is.  With --split-debug the DWARF goes to
OUTDIR/crashext<EXT_SUFFIX>.debug (objcopy --only-keep-debug), the module is
stripped of it (strip --strip-debug) and gets a .gnu_debuglink to it.

Rebuilds only when the module is older than crashext.c or this file.
Prints the module path; build() returns it.
"""
from __future__ import print_function

import json
import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "crashext.c")
HELPER_MARK = "CRASHEXT-HELPER-LINE"
CALL_MARK = "CRASHEXT-CALL-LINE"

# An interpreter run from its build tree (tests/ft-python's) has its headers
# there, not at INCLUDEPY: Include/ and pyconfig.h's directory.
_QUERY = ("import sysconfig, json; g = sysconfig.get_config_var; "
          "p = sysconfig.get_paths(); "
          "print(json.dumps({'include': [p['include'], p['platinclude']] "
          "if sysconfig.is_python_build() else [g('INCLUDEPY')], "
          "'suffix': g('EXT_SUFFIX') or g('SO'), 'cflags': g('CFLAGS') or '',"
          " 'version': '%d.%d' % __import__('sys').version_info[:2]}))")


class BuildError(Exception):
    pass


def _argv(python):
    """The command line that runs `python`: a path, or a list (an emulator
    and the interpreter it runs)."""
    return [python] if isinstance(python, str) else list(python)


def config(python):
    """{'include' (a list), 'suffix', 'cflags', 'version'} of an interpreter
    (a path, or the list that runs it)."""
    env = dict((k, v) for k, v in os.environ.items()
               if not k.startswith("PYTHON"))
    p = subprocess.Popen(_argv(python) + ["-E", "-s", "-c", _QUERY],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env)
    out, err = p.communicate()
    if p.returncode != 0:
        raise BuildError("%s: sysconfig query failed: %s"
                         % (python, err.decode("utf-8", "replace").strip()))
    return json.loads(out.decode("utf-8"))


def marker_line(mark):
    """1-based line of crashext.c holding `mark`."""
    with open(SOURCE) as fh:
        for i, line in enumerate(fh, 1):
            if mark in line:
                return i
    raise BuildError("marker %s not in %s" % (mark, SOURCE))


def module_path(python, outdir, cfg=None):
    cfg = cfg or config(python)
    return os.path.join(outdir, "crashext" + cfg["suffix"])


def _run(argv):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    out = p.communicate()[0].decode("utf-8", "replace")
    if p.returncode != 0:
        raise BuildError("%s failed (%d):\n%s"
                         % (" ".join(argv), p.returncode, out))
    return out


def build(python, outdir, split_debug=False, force=False, extra_args=(),
          cc=None, sysroot=None):
    """Compile crashext for `python` (a path, or the list that runs it) into
    outdir; returns the module path.  extra_args go at the end of the
    compiler's command line (objects to link in, linker options): a variant,
    built into an outdir of its own.  cc: the compiler (default $CC or cc);
    sysroot: the tree the interpreter runs in, for a cross compiler (its
    headers and libc, and the include directories the interpreter names,
    are the tree's)."""
    cfg = config(python)
    if not os.path.isdir(outdir):
        os.makedirs(outdir)
    so = module_path(python, outdir, cfg)
    deps = [SOURCE, os.path.abspath(__file__).replace(".pyc", ".py")]
    newest = max(os.path.getmtime(d) for d in deps if os.path.exists(d))
    want = [so] + ([so + ".debug"] if split_debug else [])
    if not force and all(os.path.exists(w) and os.path.getmtime(w) > newest
                         for w in want):
        return so
    cc = cc or os.environ.get("CC", "cc")
    tmp = so + ".tmp%d" % os.getpid()
    # "-I=DIR": DIR below the --sysroot
    inc = "-I=" if sysroot else "-I"
    argv = ([cc] + (["--sysroot=" + sysroot] if sysroot else []) +
            shlex.split(cfg["cflags"]) +
            ["-shared", "-fPIC", "-O2", "-g"] +
            [inc + d for d in cfg["include"]] + [SOURCE, "-o", tmp] +
            list(extra_args))
    try:
        _run(argv)
        if split_debug:
            dbg = so + ".debug"
            _run(["objcopy", "--only-keep-debug", tmp, dbg + ".tmp"])
            _run(["strip", "--strip-debug", tmp])
            # the debuglink names the final file name, whose CRC it records
            os.rename(dbg + ".tmp", dbg)
            _run(["objcopy", "--add-gnu-debuglink=" + dbg, tmp])
        os.rename(tmp, so)
    finally:
        for t in (tmp, so + ".debug.tmp"):
            if os.path.exists(t):
                os.unlink(t)
    return so


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.stderr.write(__doc__)
        return 2
    try:
        print(build(args[0], args[1], split_debug="--split-debug" in argv,
                    force="--force" in argv))
    except BuildError as e:
        sys.stderr.write("build.py: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
