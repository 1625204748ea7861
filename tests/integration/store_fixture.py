# -*- coding: utf-8 -*-
"""The store the release with schema version 2 wrote (tests/fixtures/store-v2,
see its README.md), for test_store_migration.py, test_signatures.py and the
script that made it (tests/fixtures/store-v2/make-store.py).

* copy(): the fixture's pystack.db and cores/ into a fresh scratch
  directory, with a configuration of its own (retention off, no journal);
  the committed fixture itself is never opened.
* run_ctl(): pystackctl --config=CONF ARGS... as the expected outputs were
  made: TZ=UTC, C.UTF-8, stdout and stderr to pipes (so no pager).
* cases(): expected/cases.json, the commands and what the release printed,
  with PLACEHOLDER where the store's directory was.

Stdlib only, Python 3.
"""
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.normpath(os.path.join(HERE, "..", "fixtures", "store-v2"))
EXPECTED = os.path.join(FIXTURE, "expected")
PLACEHOLDER = b"@STORE@"
SCHEMA_VERSION = 2          # what the fixture's store has (PRAGMA user_version)
CTL_TIMEOUT = 60
CTL_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TZ": "UTC",
           "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


class Copy(object):
    """A scratch copy of a store: root (0711), root/s the store (0700),
    root/r the runtime directory, root/c the configuration (0600)."""

    def __init__(self, source=FIXTURE, analyzer="/bin/false", prefix="pystackd-store-v2."):
        self.root = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        os.chmod(self.root, 0o711)   # the analyzer's user reaches r/debug-cache
        self.storage = os.path.join(self.root, "s")
        self.runtime = os.path.join(self.root, "r")
        self.conf = os.path.join(self.root, "c")
        self.db_path = os.path.join(self.storage, "pystack.db")
        os.mkdir(self.storage, 0o700)
        shutil.copyfile(os.path.join(source, "pystack.db"), self.db_path)
        os.chmod(self.db_path, 0o600)
        cores = os.path.join(source, "cores")
        if os.path.isdir(cores):
            os.mkdir(os.path.join(self.storage, "cores"), 0o700)
            for name in sorted(os.listdir(cores)):
                dst = os.path.join(self.storage, "cores", name)
                shutil.copyfile(os.path.join(cores, name), dst)
                os.chmod(dst, 0o600)
        self.write_conf(analyzer)

    def write_conf(self, analyzer):
        text = ("[Storage]\nDirectory=%s\nMaxAge=0\nMaxUse=100%%\nKeepFree=0\n\n"
                "[Capture]\nRateLimitBurst=0\n\n"
                "[Daemon]\nRuntimeDirectory=%s\nJournal=no\n\n"
                "[Analysis]\nAnalyzer=%s\nWorkers=1\nTimeoutSec=120\n") % (
                    self.storage, self.runtime, analyzer)
        with open(self.conf + ".tmp", "w") as fh:
            fh.write(text)
        os.chmod(self.conf + ".tmp", 0o600)
        os.rename(self.conf + ".tmp", self.conf)

    def substitute(self, data):
        """Expected bytes with the placeholder replaced by this copy's store."""
        return data.replace(PLACEHOLDER, os.fsencode(self.storage))

    def generalize(self, data):
        """Output bytes with this copy's store replaced by the placeholder."""
        return data.replace(os.fsencode(self.storage), PLACEHOLDER)

    def query(self, sql, args=()):
        con = sqlite3.connect(self.db_path, timeout=30)
        try:
            con.text_factory = bytes
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def user_version(self):
        return self.query("PRAGMA user_version")[0][0]

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)


def run_ctl(ctl, conf, args, timeout=CTL_TIMEOUT):
    """(exit status, stdout bytes, stderr bytes) of pystackctl --config=CONF
    ARGS; status None when it ran past the timeout (then killed)."""
    argv = [ctl, "--config=%s" % conf] + list(args)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=dict(CTL_ENV))
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out, err
    return p.returncode, out, err


def cases_path():
    return os.path.join(EXPECTED, "cases.json")


def cases():
    """The manifest: {"cases": [{"name", "args", "status", "stdout" (a file
    in expected/, or null for none), "stderr" (text)}], ...}."""
    with open(cases_path()) as fh:
        return json.load(fh)


def expected_stdout(case):
    if not case.get("stdout"):
        return b""
    with open(os.path.join(EXPECTED, case["stdout"]), "rb") as fh:
        return fh.read()


def elf_build_id(path):
    """The GNU build-id of an ELF file as lowercase hex, or None."""
    import struct
    try:
        with open(path, "rb") as fh:
            data = fh.read(1 << 16)
            if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
                return None
            phoff, = struct.unpack_from("<Q", data, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
            fh.seek(phoff)
            ph = fh.read(phentsize * phnum)
            for i in range(phnum):
                p_type, = struct.unpack_from("<I", ph, i * phentsize)
                if p_type != 4:         # PT_NOTE
                    continue
                off, = struct.unpack_from("<Q", ph, i * phentsize + 8)
                size, = struct.unpack_from("<Q", ph, i * phentsize + 0x20)
                fh.seek(off)
                notes = fh.read(size)
                pos = 0
                while pos + 12 <= len(notes):
                    namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
                    name = notes[pos + 12:pos + 12 + namesz]
                    dpos = pos + 12 + ((namesz + 3) & ~3)
                    if ntype == 3 and name.rstrip(b"\0") == b"GNU":
                        return notes[dpos:dpos + descsz].hex()
                    pos = dpos + ((descsz + 3) & ~3)
    except (OSError, struct.error, IndexError):
        return None
    return None
