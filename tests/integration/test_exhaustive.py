# -*- coding: utf-8 -*-
"""TAP test: --exhaustive, --lib-search-path and --lib-search-root.

--exhaustive must find the interpreter when its symbols are gone; from 3.13
on pystack finds it without --exhaustive too, by the cookie of the
_Py_DebugOffsets block that starts _PyRuntime (validated before use).

For every interpreter, the file that holds the interpreter's symbols
(libpython, or the executable when libpython is linked in) is copied with
the names `_PyRuntime`, `.PyRuntime` and `interp_head` overwritten in its
string tables. The copy keeps its build-id, so pystack accepts it through
--lib-search-path (or as EXECUTABLE). Without --exhaustive pystack must say
it found no interpreter (exit 5); with it, the report must equal the one
from the intact files.

The same doctored copy proves which file the search options picked: placed
under a --lib-search-root tree at its original path it must be used (exit
5 without --exhaustive), and a file of the same name with another build-id
in --lib-search-path must be refused with a warning and the original used.
"""
from __future__ import print_function

import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cores  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP  # noqa: E402

EXIT_NOPY = 5
NAMES = [b"_PyRuntime", b".PyRuntime", b"interp_head"]


def symbol_file(interp):
    """The file that defines the runtime: libpython next to the interpreter, or the executable."""
    exe = os.path.realpath((interp.root or "") + interp.path)
    libdir = os.path.join(os.path.dirname(os.path.dirname(exe)), "lib")
    if os.path.isdir(libdir):
        for name in sorted(os.listdir(libdir)):
            if re.match(r"libpython\d\.\d+m?\.so\.1\.0$", name):
                return os.path.join(libdir, name), False
    return exe, True


def hide_symbols(src, dst):
    data = open(src, "rb").read()
    hidden = 0
    for name in NAMES:
        needle = b"\0" + name + b"\0"
        hidden += data.count(needle)
        data = data.replace(needle, b"\0" + b"X" + name[1:] + b"\0")
    with open(dst, "wb") as fh:
        fh.write(data)
    os.chmod(dst, 0o755)
    return hidden


def has_cookie(interp):
    """3.13+ start _PyRuntime with a _Py_DebugOffsets block and its cookie."""
    return tuple(int(x) for x in interp.minor.split(".")) >= (3, 13)


def same_report(base, other):
    """(equal threads and frames, diagnostics)"""
    if base.rc != 0 or other.rc != 0:
        return False, base.describe() + other.describe()
    a, b = base.json(), other.json()
    ok = frames(a) == frames(b) and \
        [t["tid"] for t in a["threads"]] == [t["tid"] for t in b["threads"]]
    return ok, ["intact: %s" % frames(a), "found:  %s" % frames(b)]


def warnings_of(res):
    try:
        return res.json().get("warnings") or []
    except ValueError:
        return []


def frames(doc):
    return [[(f["file"], f["line"], f["function"]) for f in t["frames"]]
            for t in doc["threads"]]


def main():
    tap = TAP()
    tmp = tempfile.mkdtemp(prefix="pystack-exhaustive.")
    try:
        entries = cores.ensure_cores(verbose=False, scenarios=["threads"])
        for interp in cores.find_interpreters():
            e = [x for x in entries if x.interp.label == interp.label]
            if not e or e[0].status != "ok":
                tap.skip("%s: no threads core (%s)" % (interp.label, e[0].message if e else "missing"))
                continue
            core = e[0].core
            src, is_exe = symbol_file(interp)
            d = os.path.join(tmp, interp.label)
            os.makedirs(d)
            dst = os.path.join(d, os.path.basename(src))
            n = hide_symbols(src, dst)
            if not tap.ok(n > 0, "%s: hid the runtime's names in %s" % (interp.label, src)):
                continue
            # dst stands for the executable (an emulated core names it only by its path)
            extra = [dst] + e[0].search_args if is_exe else \
                ["--lib-search-path", d] + e[0].pystack_args
            base = run_pystack(["core", core, "--json"] + e[0].pystack_args, 30)
            hidden = run_pystack(["core", core, "--json"] + extra, 30)
            if has_cookie(interp):
                ok, diag = same_report(base, hidden)
                tap.ok(ok and any("debug cookie" in w for w in warnings_of(hidden)),
                       "%s: without --exhaustive, found by the debug cookie, same report"
                       % interp.label, diag + warnings_of(hidden))
            else:
                tap.ok(hidden.rc == EXIT_NOPY,
                       "%s: without --exhaustive, no interpreter (exit 5)" % interp.label,
                       hidden.describe(4))
            found = run_pystack(["core", core, "--json", "--exhaustive"] + extra, 30)
            ok, diag = same_report(base, found)
            tap.ok(ok, "%s: --exhaustive gives the same threads and frames" % interp.label, diag)
            how = "debug cookie" if has_cookie(interp) else "--exhaustive"
            tap.ok(any(how in w for w in warnings_of(found)),
                   "%s: the report says how the interpreter was found (%s)" % (interp.label, how),
                   warnings_of(found))
            if is_exe:
                continue    # the search options find libraries; EXECUTABLE names the executable
            root = os.path.join(tmp, interp.label + "-root")
            target = os.path.join(root, src.lstrip("/"))
            os.makedirs(os.path.dirname(target))
            shutil.copy2(dst, target)
            r = run_pystack(["core", core, "--json", "--lib-search-root", root], 30)
            picked = any("debug cookie" in w for w in warnings_of(r)) if has_cookie(interp) \
                else r.rc == EXIT_NOPY
            tap.ok(picked, "%s: --lib-search-root picks ROOT/original/path" % interp.label,
                   r.describe(4))
            other = os.path.join(tmp, interp.label + "-other")
            os.makedirs(other)
            shutil.copy2("/bin/true", os.path.join(other, os.path.basename(src)))
            r = run_pystack(["core", core, "--json", "--lib-search-path", other], 30)
            ok = r.rc == 0
            if ok:
                doc = r.json()
                ok = frames(doc) == frames(base.json()) and \
                    any("build-id does not match" in w for w in doc["warnings"])
            tap.ok(ok, "%s: a library with another build-id is refused with a warning" % interp.label,
                   r.describe())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
