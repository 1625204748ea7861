#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""The documentation a user reads matches the programs.

- Every man page the build installs (Makefile.am's dist_man*_MANS) is plain
  text (no control character but newline: a Python string that turned `\\f`
  into a form feed once broke two pages) and groff formats it without a
  warning (`groff -man -ww -z`; skipped, saying so, without groff).
- Every program has a page, and `--help` exits 0 with a usage on stdout and
  nothing on stderr.
- Every configuration key the parser knows (daemon/common/conf.c) is in the
  README's table and in pystack.conf(5), and neither names a key the parser
  does not know.
"""
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import programs  # noqa: E402
from harness.tap import TAP  # noqa: E402

SRC = os.path.abspath(os.environ.get("srcdir") or os.path.join(HERE, "..", ".."))


def read(rel):
    with open(os.path.join(SRC, rel), "rb") as fh:
        return fh.read()


def man_pages():
    text = read("Makefile.am").decode()
    pages = []
    for m in re.finditer(r"^dist_man\d_MANS\s*=\s*(.*)$", text, re.M):
        pages += m.group(1).split()
    return pages


def conf_keys():
    return set(re.findall(r'!strcmp\(key, "([A-Za-z]+)"\)',
                          read("daemon/common/conf.c").decode()))


def check_pages(tap, pages):
    groff = shutil.which("groff")
    for page in pages:
        data = read(page)
        bad = sorted({"0x%02x" % b for b in data if b < 0x20 and b != 0x0a})
        tap.ok(not bad, "%s: no control characters" % page,
               ["bytes %s" % ", ".join(bad)])
        if not groff:
            tap.skip("%s: groff is not installed (Debian package groff-base)" % page)
            continue
        r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", os.path.join(SRC, page)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=dict(os.environ, LC_ALL="C.UTF-8"), timeout=60)
        tap.ok(r.returncode == 0 and not r.stdout and not r.stderr,
               "%s: groff -ww formats it without a warning" % page,
               [r.stderr.decode("utf-8", "replace")[:2000]])


def check_programs(tap, pages):
    names = {os.path.basename(p).rsplit(".", 1)[0] for p in pages}
    for name in sorted(programs.LAYOUT):
        tap.ok(name in names, "%s has a man page" % name, ["pages: %s" % sorted(names)])
        r = subprocess.run([programs.program(name), "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=60)
        out = r.stdout.decode("utf-8", "replace")
        tap.ok(r.returncode == 0 and re.search(r"(?i)usage", out) and not r.stderr,
               "%s --help: exit 0, a usage on stdout, nothing on stderr" % name,
               ["exit %r" % r.returncode, "stdout: %r" % out[:300],
                "stderr: %r" % r.stderr[:300]])


def check_keys(tap):
    keys = conf_keys()
    tap.ok(len(keys) >= 10, "the parser's keys are found in conf.c (%d)" % len(keys),
           [sorted(keys)])
    readme = read("README.md").decode()
    section = readme.split("### Configuration", 1)[-1].split("\n## ", 1)[0]
    in_readme = set(re.findall(r"^\| [A-Z][a-z]+ \| `([A-Za-z]+)` \|", section, re.M))
    tap.ok(keys == in_readme, "README's configuration table has every key, and no other",
           ["missing: %s" % sorted(keys - in_readme),
            "unknown: %s" % sorted(in_readme - keys)])
    page = read("etc/pystack.conf.5").decode()
    in_page = set(re.findall(r"^\.B(?:I)? ([A-Z][A-Za-z]+)=", page, re.M))
    tap.ok(keys == in_page, "pystack.conf(5) describes every key, and no other",
           ["missing: %s" % sorted(keys - in_page), "unknown: %s" % sorted(in_page - keys)])


def main():
    tap = TAP()
    pages = man_pages()
    tap.ok(len(pages) >= 5, "Makefile.am installs man pages (%d)" % len(pages), [pages])
    check_pages(tap, pages)
    check_programs(tap, pages)
    check_keys(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
