#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: crashes read back from journals gathered from many hosts
(`pystackctl --directory`, `--file`), issue 14.

Run as root from the build directory (after `make`):

    /usr/bin/python3 ../tests/integration/test_fleet.py

 1 the real transport: two Python crashes on this host, through the kernel
   handler and pystackd into a journald of our own (`pystackctl --merge`
   lists them from this system's journal); systemd-journal-upload
   sends that journal over HTTP on loopback to systemd-journal-remote
   (listening on a free port of 127.0.0.1, --split-mode=host); `pystackctl
   --directory` on what journal-remote wrote lists the same crashes, shows
   the same report text (with native frames) and the same groups as
   `pystackctl` on the host's store.
 2 a simulated fleet: Journal Export Format streams for 40 hosts (their own
   _HOSTNAME, _MACHINE_ID, _BOOT_ID), turned into one journal file per host
   by systemd-journal-remote: list (a HOST column), HOST=, MACHINE_ID=,
   SIGNATURE=, --since, -n, -r, --json, groups counted across hosts, info,
   show, --file with a glob, dump saying where the core lives.
 4 the index (~/.cache/pystackctl): every answer the same bytes as with
   --no-index, from an empty index and a current one; a file that grew
   (journal-remote appends to it), another file put at a known path, a file
   renamed as journald archives (not read again), a file gone; a damaged
   index, one of another version, and a directory others may write: each
   answered right, the damaged and the old made again, the foreign not
   used; the index private (0700, 0600).
 3 hostile entries among good ones: a forged _HOSTNAME with terminal
   escapes, missing and non-numeric fields, a PYSTACK_REPORT_JSON that is
   cut, not JSON, of the wrong types, nested 10,000 deep, with escapes in
   its names, and a corrupted journal file: one line per bad entry, the
   rest listed, no control character printed raw, show of a bad report one
   clear line and exit 1.

Needs systemd-journal-remote and -upload (Debian package
systemd-journal-remote); skipped with the reason otherwise.
"""
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pystackd_fixture as pf  # noqa: E402
from harness import corepattern, programs  # noqa: E402
from harness.tap import TAP  # noqa: E402

REMOTE = "/lib/systemd/systemd-journal-remote"
UPLOAD = "/lib/systemd/systemd-journal-upload"
MESSAGE_ID = "fc2e22bc6ee647b6b90729ab34a250b1"
ANALYSE_TIMEOUT = 120
HOUR = 3600 * 10**6


def ctl(args, timeout=60, cache=None, prefix=()):
    """pystackctl; its index in cache (XDG_CACHE_HOME), or in the test's own (set by main); prefix:
    a command that runs it in another namespace."""
    env = dict(os.environ, TZ="UTC", LC_ALL="C.UTF-8")
    if cache:
        env["XDG_CACHE_HOME"] = cache
    r = subprocess.run(list(prefix) + [programs.pystackctl(), "--no-pager"] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=env)
    return r.returncode, r.stdout.decode("utf-8", "surrogateescape"), r.stderr.decode("utf-8", "surrogateescape")


def raw_controls(text):
    """Control characters a terminal would act on (not newline or tab)."""
    return [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7f <= ord(c) < 0xa0]


def export_entry(fields):
    """One entry in the Journal Export Format (binary-safe for values with a newline)."""
    out = b""
    for k, v in fields.items():
        v = v if isinstance(v, bytes) else str(v).encode("utf-8", "surrogateescape")
        if b"\n" in v or any(c < 32 for c in v):
            out += k.encode() + b"\n" + len(v).to_bytes(8, "little") + v + b"\n"
        else:
            out += k.encode() + b"=" + v + b"\n"
    return out + b"\n"


def write_journal(path, entries):
    """entries (dicts) into the journal file path, by systemd-journal-remote."""
    src = path + ".export"
    with open(src, "wb") as fh:
        for e in entries:
            fh.write(export_entry(e))
    r = subprocess.run([REMOTE, "--output=" + path, src], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    os.unlink(src)
    return r.returncode == 0, r.stderr.decode(errors="replace")[-300:]


# --------------------------------------------------------------------------
# 1: the real transport

def case_transport(tap, fx, jd):
    st = pf.Store(fx, "t", analysis="Workers=1")
    st.install()
    d = st.daemon(jd)
    if not tap.ok(d.start(), "transport: pystackd starts", d.log_tail()):
        return
    pids = []
    for i in range(2):
        w = pf.Worker(fx, st, tag="t%d" % i)
        if w.wait_ready():
            w.crash()
            pids.append(w.pid)
        else:
            w.discard()
    ok, rows = st.wait(lambda rs: len(rs) == 2 and all(r["state"] == "done" for r in rs), ANALYSE_TIMEOUT)
    ents = jd.wait_entries(lambda e: e.get("COREDUMP_PID") in [str(p) for p in pids], n=2, timeout=30,
                           matches=("SYSLOG_IDENTIFIER=pystackd", "MESSAGE_ID=" + MESSAGE_ID))
    d.stop()
    fx.reset_pattern()
    if not tap.ok(ok and len(ents) == 2, "transport: two crashes analysed and in our journald",
                  [pf.brief(r) for r in rows]):
        return
    # --merge: this system's own journals, as journald wrote them (ours: in its mount namespace)
    rc, out, err = ctl(["--merge", "list", "--json", "--since=-1h"], prefix=jd.prefix)
    merged = [r for r in json.loads(out) if r["pid"] in pids] if rc == 0 else []
    rc2, out2, _ = ctl(["--merge", "show", "--native", "PID=%d" % pids[-1]], prefix=jd.prefix)
    rc3, out3, _ = ctl(["--config=" + st.conf, "show", "--native", "PID=%d" % pids[-1]])
    tap.ok(len(merged) == 2 and all(r["state"] == "done" for r in merged) and rc2 == 0 and out2 == out3,
           "transport: --merge lists both crashes from this system's journal and shows the host's text",
           ["exit %r %r" % (rc, err[-300:]), "%d of ours" % len(merged), "show exit %r/%r" % (rc2, rc3)])
    out = os.path.join(fx.root, "remote")
    os.mkdir(out)
    remote, port = None, None
    for _ in range(5):          # a free port, and journal-remote listening on it
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        remote = subprocess.Popen([REMOTE, "--listen-http=127.0.0.1:%d" % port, "--output=" + out + "/",
                                   "--split-mode=host"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline and remote.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        if remote.poll() is None:
            break
    if not tap.ok(remote.poll() is None, "transport: systemd-journal-remote listens on 127.0.0.1:%d" % port,
                  [remote.stderr.read().decode(errors="replace")[-300:] if remote.poll() is not None else ""]):
        return
    try:
        state = os.path.join(fx.root, "upload-state")
        up = subprocess.run([UPLOAD, "--directory=" + jd.directory, "--url=http://127.0.0.1:%d" % port,
                             "--follow=no", "--save-state=" + state], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        deadline = time.time() + 30
        got = []
        while time.time() < deadline:
            rc, lst, err = ctl(["--directory=" + out, "list", "--json"])
            got = json.loads(lst) if rc == 0 else []
            if len([g for g in got if g["pid"] in pids]) == 2:
                break
            time.sleep(0.3)
    finally:
        remote.terminate()
        try:
            remote.wait(timeout=20)
        except subprocess.TimeoutExpired:
            remote.kill()
            remote.wait()
    files = glob.glob(out + "/*.journal")
    if not tap.ok(len([g for g in got if g["pid"] in pids]) == 2,
                  "transport: journal-upload -> journal-remote (HTTP on 127.0.0.1:%d) -> %d file(s); "
                  "pystackctl --directory lists both crashes" % (port, len(files)),
                  ["upload exit %r: %r" % (up.returncode, up.stderr[-300:]), "files %r" % files,
                   "list: %r" % got[:3]]):
        return
    rc, local, _ = ctl(["--config=" + st.conf, "list", "--json"])
    local = json.loads(local) if rc == 0 else []
    keys = ("id", "pid", "uid", "signal", "python_version", "script", "frame", "signature")
    mine = [dict((k, g[k]) for k in keys) for g in got if g["pid"] in pids]
    theirs = [dict((k, g[k]) for k in keys) for g in local]
    host = socket.gethostname()
    tap.ok(mine == theirs and all(g.get("host") == host for g in got if g["pid"] in pids),
           "transport: the same crashes as the host's store lists (id, pid, signal, script, frame, signature), "
           "on host %s" % host, ["journal %r" % mine, "store   %r" % theirs])
    dd = []
    for g in local:
        rc1, a, _ = ctl(["--config=" + st.conf, "show", "--native", "ID=%d" % g["id"]])
        rc2, b, e2 = ctl(["--directory=" + out, "show", "--native", "ID=%d" % g["id"], "HOST=" + host])
        if rc1 or rc2 or a != b:
            dd += ["crash %d: exit %r/%r, %r" % (g["id"], rc1, rc2, e2[-200:])]
            dd += ["host:    " + l for l in a.splitlines()[:8]] + ["journal: " + l for l in b.splitlines()[:8]]
    tap.ok(not dd, "transport: show --native from the journal is the host's text, byte for byte", dd)
    rc1, a, _ = ctl(["--config=" + st.conf, "groups", "--json"])
    rc2, b, _ = ctl(["--directory=" + out, "groups", "--json"])
    ga = sorted((x["signature"], x["count"]) for x in json.loads(a)) if rc1 == 0 else None
    gb = sorted((x["signature"], x["count"]) for x in json.loads(b)) if rc2 == 0 else None
    tap.ok(ga and ga == gb, "transport: the same groups (signature, count)", ["host %r" % ga, "journal %r" % gb])


# --------------------------------------------------------------------------
# 2 and 3: a simulated fleet, with hostile entries

def report(function, sig):
    return {"schema_version": 2, "python_version": "3.11", "signature": sig, "summary": "SIGSEGV in %s" % function,
            "frame": {"function": function, "file": "/srv/app.py", "line": 7},
            "signal": {"number": 11, "name": "SIGSEGV", "code": 0},
            "threads": [{"tid": 100, "crashed": True, "python": True, "has_gil": True, "gc_collecting": False,
                         "status": ["Has the GIL"], "frames": [
                             {"kind": "python", "function": "<module>", "file": "/srv/app.py", "line": 9,
                              "source": "main()"},
                             {"kind": "python", "function": function, "file": "/srv/app.py", "line": 7,
                              "source": "boom()"}],
                         "truncated": None}],
            "modules": [], "warnings": []}


def crash_entry(host, machine, cid, t, function="handle", sig="1111aaaa2222bbbb", **extra):
    e = {"__REALTIME_TIMESTAMP": t + 2 * 10**6, "__MONOTONIC_TIMESTAMP": 1000 + cid, "_BOOT_ID": "%032x" % 9,
         "_HOSTNAME": host, "_MACHINE_ID": machine, "MESSAGE": "Python process crashed",
         "MESSAGE_ID": MESSAGE_ID, "SYSLOG_IDENTIFIER": "pystackd", "PRIORITY": 2, "COREDUMP_PID": 4000 + cid,
         "COREDUMP_UID": 1000, "COREDUMP_GID": 1000, "COREDUMP_SIGNAL": 11, "COREDUMP_TIMESTAMP": t,
         "COREDUMP_COMM": "python3", "COREDUMP_EXE": "/usr/bin/python3.11",
         "COREDUMP_FILENAME": "/var/lib/pystack/cores/core.%d.zst" % cid, "PYSTACK_CRASH_ID": cid,
         "PYSTACK_SIGNATURE": sig, "PYSTACK_TITLE": "SIGSEGV in %s (app.py:7)" % function,
         "PYSTACK_PYTHON_VERSION": "3.11", "PYSTACK_SCRIPT": "app.py", "PYSTACK_FUNCTION": function,
         "PYSTACK_FILE": "/srv/app.py", "PYSTACK_LINE": 7,
         "PYSTACK_REPORT_JSON": json.dumps(report(function, sig))}
    e.update(extra)
    return dict((k, v) for k, v in e.items() if v is not None)


def case_fleet(tap, root):
    d = os.path.join(root, "fleet")
    os.mkdir(d)
    now = int(time.time() * 10**6)
    hosts = 40
    for h in range(hosts):
        ents = []
        for i in range(5):
            t = now - (5 - i) * 10 * HOUR - h * 1000
            ents.append(crash_entry("web-%02d" % h, "%032x" % (h + 1), i + 1, t,
                                    function="handle" if i % 2 == 0 else "parse",
                                    sig="1111aaaa2222bbbb" if i % 2 == 0 else "3333cccc4444dddd"))
            # the rest of a host's log: not ours
            ents.append({"__REALTIME_TIMESTAMP": t + 5, "__MONOTONIC_TIMESTAMP": 5000 + i, "_BOOT_ID": "%032x" % 9,
                         "_HOSTNAME": "web-%02d" % h, "_MACHINE_ID": "%032x" % (h + 1), "MESSAGE": "GET /",
                         "SYSLOG_IDENTIFIER": "nginx"})
        # systemd-coredump's own entry for a C program: same MESSAGE_ID, not ours
        ents.append({"__REALTIME_TIMESTAMP": now - 1, "__MONOTONIC_TIMESTAMP": 9000, "_BOOT_ID": "%032x" % 9,
                     "_HOSTNAME": "web-%02d" % h, "_MACHINE_ID": "%032x" % (h + 1), "MESSAGE": "Process crashed",
                     "MESSAGE_ID": MESSAGE_ID, "SYSLOG_IDENTIFIER": "systemd-coredump", "COREDUMP_PID": 7,
                     "COREDUMP_SIGNAL": 11})
        ok, why = write_journal(os.path.join(d, "remote-web-%02d.journal" % h), ents)
        if not ok:
            tap.ok(False, "fleet: journal-remote writes host %d's file" % h, [why])
            return None
    rc, out, err = ctl(["--directory=" + d, "list", "--json"])
    rows = json.loads(out) if rc == 0 else []
    tap.ok(len(rows) == hosts * 5 and len(set(r["host"] for r in rows)) == hosts and
           all(r["script"] == "app.py" for r in rows) and rows == sorted(rows, key=lambda r: r["time_usec"]),
           "fleet: list --json: %d crashes of %d hosts, oldest first; nobody else's entries" % (len(rows), hosts),
           ["exit %r %r" % (rc, err[-300:]), "%d rows" % len(rows)])
    rc, out, err = ctl(["--directory=" + d, "list"])
    lines = out.splitlines()
    tap.ok(rc == 0 and lines[0].split()[:3] == ["TIME", "HOST", "ID"] and "web-07" in out and
           lines[-1] == "%d crashes listed." % (hosts * 5), "fleet: list has a HOST column", lines[:3] + lines[-2:])
    rc, out, _ = ctl(["--directory=" + d, "list", "--json", "HOST=web-07"])
    r7 = json.loads(out) if rc == 0 else []
    rc, out, _ = ctl(["--directory=" + d, "list", "--json", "MACHINE_ID=%032x" % 8])
    m7 = json.loads(out) if rc == 0 else []
    tap.ok(len(r7) == 5 and all(r["host"] == "web-07" for r in r7) and r7 == m7,
           "fleet: HOST=web-07 and MACHINE_ID= its machine: its 5 crashes", ["%r" % r7[:2]])
    rc, out, _ = ctl(["--directory=" + d, "list", "--json", "SIGNATURE=3333cccc4444dddd", "--since=-25h"])
    recent = json.loads(out) if rc == 0 else []
    tap.ok(len(recent) == hosts and all(r["frame"]["function"] == "parse" for r in recent),
           "fleet: SIGNATURE= and --since=-25h: the %d 'parse' crashes of the last day" % len(recent),
           ["%d rows" % len(recent)])
    rc, out, _ = ctl(["--directory=" + d, "list", "--json", "-n", "3", "-r"])
    last3 = json.loads(out) if rc == 0 else []
    tap.ok(last3 == list(reversed(rows[-3:])), "fleet: -n 3 -r: the newest three, newest first")
    rc, out, _ = ctl(["--directory=" + d, "groups", "--json"])
    groups = json.loads(out) if rc == 0 else []
    tap.ok([(g["signature"], g["count"], g["hosts"]) for g in groups] ==
           [("1111aaaa2222bbbb", hosts * 3, hosts), ("3333cccc4444dddd", hosts * 2, hosts)],
           "fleet: groups counts each signature across hosts: count and how many hosts", ["%r" % groups])
    rc, out, _ = ctl(["--directory=" + d, "info", "HOST=web-03", "ID=2"])
    tap.ok(rc == 0 and "Host: web-03" in out and "Crash: 2" in out and "core.2.zst" in out,
           "fleet: info HOST=web-03 ID=2", out.splitlines()[:20])
    rc, out, err = ctl(["--directory=" + d, "show", "HOST=web-03", "ID=2"])
    tap.ok(rc == 0 and 'line 7, in parse' in out and "boom()" in out, "fleet: show renders the report from the entry",
           out.splitlines()[:12] + [err])
    rc, out, _ = ctl(["--file=" + d + "/remote-web-1*.journal", "list", "--json"])
    tap.ok(rc == 0 and len(json.loads(out)) == 50, "fleet: --file with a glob (hosts web-10..19): 50 crashes")
    rc, out, err = ctl(["--directory=" + d, "dump", "HOST=web-05"])
    tap.ok(rc == 1 and "is on host web-05" in err and "core.5.zst" in err,
           "fleet: dump says on which host the core lives", [err])
    rc, out, err = ctl(["list", "HOST=web-05"])
    tap.ok(rc == 2 and "HOST=" in err, "fleet: HOST= without journals: a usage error", [err])
    bad = []
    for args in (["--no-index", "list"], ["--merge", "--no-index", "list"]):
        rc, out, err = ctl(args)
        if rc != 2 or len(err.strip().splitlines()) != 1 or "--no-index goes with" not in err:
            bad.append("%r: exit %r %r" % (args, rc, err))
    tap.ok(not bad, "fleet: --no-index without --directory or --file: one line, a usage error", bad)
    return d


# --------------------------------------------------------------------------
# 4: the index

INDEX_QUESTIONS = (["list"], ["list", "--json"], ["list", "--since=-25h"], ["groups"], ["groups", "--json"],
                   ["list", "-n", "3", "-r"], ["list", "HOST=web-03", "HOST=web-04"], ["list", "SIGNATURE=3333cccc4444dddd",
                   "MACHINE_ID=%032x" % 8], ["list", "COMM=python3", "PID=4002"], ["info"], ["info", "HOST=web-03", "ID=2"],
                   ["show", "HOST=web-03", "ID=2"], ["show", "--json", "ID=4"], ["list", "CONTAINER=nothing"])


def answers_differ(d, cache):
    """The questions whose answers through the index differ from --no-index's (or fail)."""
    dd = []
    for q in INDEX_QUESTIONS:
        a = ctl(["--directory=" + d, "--no-index"] + q, cache=cache)
        b = ctl(["--directory=" + d] + q, cache=cache)
        if a != b or a[0] not in (0, 1):
            dd.append("%s: --no-index exit %r, %d bytes; indexed exit %r, %d bytes %r" %
                      (" ".join(q), a[0], len(a[1]), b[0], len(b[1]), b[2][-200:]))
    return dd


def index_rows(cache):
    import sqlite3
    db = sqlite3.connect("file:%s/pystackctl/journal-index.sqlite?mode=ro" % cache, uri=True)
    try:
        return (db.execute("SELECT count(*) FROM crashes").fetchone()[0],
                dict(db.execute("SELECT path, id FROM files")))
    finally:
        db.close()


def case_index(tap, root, src):
    d = os.path.join(root, "indexed")
    shutil.copytree(src, d)
    cache = os.path.join(root, "index-cache")
    dd = answers_differ(d, cache)
    tap.ok(not dd, "index: %d questions answered the same through a new index as without" %
           len(INDEX_QUESTIONS), dd)
    ix = os.path.join(cache, "pystackctl")
    st_d, st_f = os.stat(ix), os.stat(os.path.join(ix, "journal-index.sqlite"))
    tap.ok(st_d.st_mode & 0o777 == 0o700 and st_f.st_mode & 0o777 == 0o600,
           "index: private, its directory 0700 and the file 0600",
           ["%o %o" % (st_d.st_mode & 0o777, st_f.st_mode & 0o777)])
    n0, files0 = index_rows(cache)
    dd = answers_differ(d, cache)
    tap.ok(not dd and n0 == 200 and len(files0) == 40, "index: asked again, from a current index: the same answers "
           "(it holds the 200 crashes of the 40 files)", dd + ["%d crashes, %d files" % (n0, len(files0))])
    # three runs at once make one index between them
    race = os.path.join(root, "index-race")
    env = dict(os.environ, TZ="UTC", LC_ALL="C.UTF-8", XDG_CACHE_HOME=race)
    procs = [subprocess.Popen([programs.pystackctl(), "--no-pager", "--directory=" + d, "list"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    want = ctl(["--directory=" + d, "--no-index", "list"], cache=race)
    n_race, _ = index_rows(race)
    tap.ok(all(p.returncode == 0 for p in procs) and all(o == (want[1].encode(), b"") for o in outs) and
           n_race == 200, "index: three runs at once over a new index: each the same answer, the index made once",
           ["exit %r, stderr %r" % (p.returncode, o[1][-200:]) for p, o in zip(procs, outs)] +
           ["%d crashes in the index" % n_race])
    # a file that grew: journal-remote appends to the file it is given
    now = int(time.time() * 10**6)
    ok, why = write_journal(os.path.join(d, "remote-web-05.journal"),
                            [crash_entry("web-05", "%032x" % 6, 6, now - 100, function="late", sig="9999aaaa9999aaaa")])
    rc, out, _ = ctl(["--directory=" + d, "list", "--json", "HOST=web-05"], cache=cache)
    rows = json.loads(out) if rc == 0 else []
    dd = answers_differ(d, cache)
    n1, _ = index_rows(cache)
    tap.ok(ok and len(rows) == 6 and rows[-1]["frame"]["function"] == "late" and not dd and n1 == 201,
           "index: a file that grew is read on from where the index left it: the new crash listed, once",
           dd + ["%d rows for web-05; %d in the index" % (len(rows), n1), why])
    # another file at a known path (written aside and renamed over it)
    other = os.path.join(root, "other.journal")
    ok, why = write_journal(other, [crash_entry("web-06", "%032x" % 7, 1, now - 50, function="replaced")])
    os.rename(other, os.path.join(d, "remote-web-06.journal"))
    rc, out, _ = ctl(["--directory=" + d, "list", "--json", "HOST=web-06"], cache=cache)
    rows = json.loads(out) if rc == 0 else []
    dd = answers_differ(d, cache)
    tap.ok(ok and [r["frame"]["function"] for r in rows] == ["replaced"] and not dd,
           "index: another file at a known path: its crashes, not the old file's", dd + ["%r" % rows[:2], why])
    # renamed as journald archives a file, and a new one where it was: the old not read again
    _, files = index_rows(cache)
    old = os.path.join(d, "remote-web-07.journal")
    archived = os.path.join(d, "remote-web-07@0123456789abcdef0123456789abcdef-0000000000000001-0005f0f0f0f0f0f0.journal")
    os.rename(old, archived)
    ok2, why2 = write_journal(old, [crash_entry("web-07", "%032x" % 8, 6, now - 10, function="after")])
    rc, out, _ = ctl(["--directory=" + d, "list", "--json", "HOST=web-07"], cache=cache)
    rows = json.loads(out) if rc == 0 else []
    _, files2 = index_rows(cache)
    dd = answers_differ(d, cache)
    tap.ok(ok2 and len(rows) == 6 and rows[-1]["frame"]["function"] == "after" and not dd and
           files2.get(archived) == files.get(old),
           "index: a file renamed (archived) is known under its new name, not read again; the new file read",
           dd + ["%d rows; archived row %r, was %r" % (len(rows), files2.get(archived), files.get(old)), why2])
    # a file gone
    os.unlink(os.path.join(d, "remote-web-08.journal"))
    rc, out, _ = ctl(["--directory=" + d, "list", "--json", "HOST=web-08"], cache=cache)
    dd = answers_differ(d, cache)
    tap.ok(rc == 1 and not dd, "index: a file gone: its crashes are gone from the answers", dd + [out[:200]])
    # a damaged index is made again
    dbf = os.path.join(ix, "journal-index.sqlite")
    with open(dbf, "r+b") as fh:
        fh.write(b"\0garbage, not SQLite" * 64)
    a = ctl(["--directory=" + d, "--no-index", "list"], cache=cache)
    b = ctl(["--directory=" + d, "list"], cache=cache)
    n2, _ = index_rows(cache)
    # made again from the files there are now: 200, one appended, web-06's 5 now 1, web-07's new file, web-08's gone
    tap.ok(a == b and n2 == 200 + 1 - 4 + 1 - 5, "index: a damaged index is made again, the answer unchanged and "
           "nothing said",
           [b[2][-300:], "%d crashes in the index" % n2])
    # an index of another version is made again
    import sqlite3
    db = sqlite3.connect(dbf)
    db.execute("PRAGMA user_version = 99")
    db.execute("DELETE FROM crashes")
    db.commit()
    db.close()
    b = ctl(["--directory=" + d, "list"], cache=cache)
    n3, _ = index_rows(cache)
    tap.ok(a == b and n3 == n2, "index: one of another version is made again", [b[2][-300:]])
    # a directory others may write: not used, the journals read as they are
    os.chmod(ix, 0o777)
    before = os.stat(dbf).st_mtime_ns
    ok3, _ = write_journal(os.path.join(d, "remote-web-09.journal"),
                           [crash_entry("web-09", "%032x" % 10, 6, now - 5, function="unindexed")])
    a = ctl(["--directory=" + d, "--no-index", "list"], cache=cache)
    b = ctl(["--directory=" + d, "list"], cache=cache)
    tap.ok(ok3 and a == b and "unindexed" in b[1] and os.stat(dbf).st_mtime_ns == before,
           "index: in a directory others may write it is not used: the files are read, the index untouched",
           [b[2][-300:]])
    os.chmod(ix, 0o700)
    # a user's own index: a file the user may no longer read is not answered from it
    import pwd
    nobody = pwd.getpwnam("nobody")
    ucache = os.path.join(root, "nobody-cache")
    os.mkdir(ucache, 0o700)
    os.chown(ucache, nobody.pw_uid, nobody.pw_gid)
    for p in [d] + glob.glob(d + "/*"):
        os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)

    def as_nobody(args):
        def drop():
            os.setgid(nobody.pw_gid)
            os.setgroups([])
            os.setuid(nobody.pw_uid)
        r = subprocess.run([programs.pystackctl(), "--no-pager", "--directory=" + d] + args, preexec_fn=drop,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                           env=dict(os.environ, TZ="UTC", LC_ALL="C.UTF-8", XDG_CACHE_HOME=ucache, HOME="/"))
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    first = as_nobody(["list", "HOST=web-10"])
    os.chmod(os.path.join(d, "remote-web-10.journal"), 0o600)
    a, b = as_nobody(["--no-index", "list", "HOST=web-10"]), as_nobody(["list", "HOST=web-10"])
    owned = os.stat(os.path.join(ucache, "pystackctl", "journal-index.sqlite")).st_uid == nobody.pw_uid
    tap.ok(first[0] == 0 and "web-10" in first[1] and a == b and b[0] == 1 and "web-10" not in b[1] and owned,
           "index: a user's own index; a file made unreadable to the user since is not answered from it",
           ["before: exit %r; after: exit %r %r / %r" % (first[0], b[0], b[1][:200], b[2][-200:])])


def case_hostile(tap, root):
    d = os.path.join(root, "hostile")
    os.mkdir(d)
    now = int(time.time() * 10**6)
    deep = "[" * 10000 + "]" * 10000
    bad_types = json.dumps({"schema_version": 2, "threads": 5, "frame": "x", "signal": [], "modules": {}})
    escapes = report("evil\x1b]0;owned\x07\x1b[31m", "5555eeee6666ffff")
    ents = [
        crash_entry("good-1", "%032x" % 1, 1, now - 3 * HOUR),
        crash_entry("\x1b[31mforged\x1b[0m", "%032x" % 2, 2, now - 2 * HOUR),
        crash_entry("nopid", "%032x" % 3, 3, now - 2 * HOUR, COREDUMP_PID=None),
        crash_entry("badpid", "%032x" % 4, 4, now - 2 * HOUR, COREDUMP_PID="12abc"),
        crash_entry("hugesig", "%032x" % 5, 5, now - 2 * HOUR, COREDUMP_SIGNAL="99999"),
        crash_entry("cut", "%032x" % 6, 6, now - HOUR, PYSTACK_REPORT_JSON=json.dumps(report("f", "77"))[:200]),
        crash_entry("notjson", "%032x" % 7, 7, now - HOUR, PYSTACK_REPORT_JSON="\x1b[2J not json"),
        crash_entry("types", "%032x" % 8, 8, now - HOUR, PYSTACK_REPORT_JSON=bad_types),
        crash_entry("deep", "%032x" % 9, 9, now - HOUR, PYSTACK_REPORT_JSON=deep),
        crash_entry("escapes", "%032x" % 10, 10, now - HOUR, PYSTACK_REPORT_JSON=json.dumps(escapes),
                    PYSTACK_FUNCTION="evil\x1b[31m", PYSTACK_TITLE="\x1b]0;title\x07", COREDUMP_EXE="/x\x9b31m"),
        crash_entry("good-2", "%032x" % 11, 11, now - 1000),
    ]
    ok, why = write_journal(os.path.join(d, "remote-mixed.journal"), ents)
    if not tap.ok(ok, "hostile: journal-remote writes the hostile entries", [why]):
        return
    rc, out, err = ctl(["--directory=" + d, "list"])
    tap.ok(rc == 0 and "good-1" in out and "good-2" in out and "escapes" in out and "cut" in out and
           "nopid" not in out and "badpid" not in out and "hugesig" not in out,
           "hostile: the good and the odd-but-valid entries listed; those without a valid PID or signal not",
           out.splitlines()[:16] + [err])
    said = err.splitlines()
    tap.ok(len(said) == 3 and all(l.startswith("pystackctl: skipped an entry of host ") for l in said),
           "hostile: one line each for the 3 skipped entries", said)
    rc2, out2, err2 = ctl(["--directory=" + d, "list"])
    tap.ok(rc2 == rc and out2 == out and err2 == err,
           "hostile: asked again (from the index), the same answer and the same 3 lines", err2.splitlines())
    tap.ok(not raw_controls(out) and not raw_controls(err) and "\\x1b" in out + err,
           "hostile: no control character printed raw (a forged hostname, a function, a title, C1 in an exe)",
           ["%r" % [c for c in raw_controls(out + err)][:5]] + [l for l in out.splitlines() if "forged" in l])
    rc, out, err = ctl(["--directory=" + d, "list", "--json"])
    try:
        rows = json.loads(out)
    except ValueError:
        rows = None
    tap.ok(rows is not None and len(rows) == 8 and not raw_controls(out),
           "hostile: list --json is valid JSON, 8 crashes, escaped", [out[:300], err[-300:]])
    dd = []
    for host in ("cut", "notjson", "types", "deep"):
        rc, out, err = ctl(["--directory=" + d, "show", "HOST=" + host])
        lines = err.strip().splitlines()
        if host == "types":
            # valid JSON of the wrong types: rendered as far as it goes, nothing raw, never a crash
            if rc not in (0, 1) or raw_controls(out + err):
                dd.append("%s: exit %r, %r" % (host, rc, err[-200:]))
            continue
        if rc != 1 or len(lines) != 1 or "PYSTACK_REPORT_JSON is not a report" not in lines[0] or out:
            dd.append("%s: exit %r, stdout %r, stderr %r" % (host, rc, out[:100], lines))
    tap.ok(not dd, "hostile: show of a cut, non-JSON or 10,000-deep report: one clear line, exit 1; wrong "
           "types: no crash", dd)
    rc, out, err = ctl(["--directory=" + d, "show", "HOST=escapes", "--native"])
    tap.ok(rc == 0 and "evil" in out and not raw_controls(out + err), "hostile: show escapes the names in a report",
           out.splitlines()[:10])
    # a corrupted file beside a good one
    good = os.path.join(d, "remote-good.journal")
    ok, why = write_journal(good, [crash_entry("good-3", "%032x" % 12, 1, now - 500)])
    bad = os.path.join(d, "remote-mixed.journal")
    with open(bad, "r+b") as fh:
        size = os.fstat(fh.fileno()).st_size
        fh.seek(size // 2)
        fh.write(os.urandom(4096))
    rc, out, err = ctl(["--directory=" + d, "list"], timeout=60)
    tap.ok(rc in (0, 1) and "good-3" in out and not raw_controls(out + err),
           "hostile: a corrupted journal file beside a good one: the good one's crash is listed, exit %r" % rc,
           out.splitlines()[:6] + err.splitlines()[:6])


def main():
    tap = TAP()
    if os.geteuid() != 0:
        return tap.skip_all("not root: core_pattern cannot be changed")
    missing = [p for p in (REMOTE, UPLOAD) if not os.access(p, os.X_OK)]
    if missing:
        return tap.skip_all("%s not installed (Debian package systemd-journal-remote)" % " ".join(missing))
    for what, p in (("pystackd", programs.pystackd()), ("pystack-coredump", programs.coredump()),
                    ("pystackctl", programs.pystackctl())):
        if not os.access(p, os.X_OK):
            tap.ok(False, "%s %s is built" % (what, p))
            return tap.done()
    jd = None
    try:
        with corepattern.PipeHandlerFixture(pipe_limit=16) as fx:
            os.chmod(fx.root, 0o711)
            os.environ["XDG_CACHE_HOME"] = os.path.join(fx.root, "cache")   # pystackctl's index
            fleet = []
            for name, fn in (("fleet", lambda: fleet.append(case_fleet(tap, fx.root))),
                             ("index", lambda: fleet[0] and case_index(tap, fx.root, fleet[0])),
                             ("hostile", lambda: case_hostile(tap, fx.root))):
                try:
                    fn()
                except Exception:
                    tap.ok(False, "%s: the harness" % name, traceback.format_exc().splitlines())
            jd = pf.Journald(os.path.join(fx.root, "journald.log"))
            if not jd.start():
                tap.skip("transport: no journald: %s" % (jd.error or "?"))
            elif not jd.own:
                tap.skip("transport: the host's journald runs: the test uploads only a journald of its own")
            else:
                try:
                    case_transport(tap, fx, jd)
                except Exception:
                    tap.ok(False, "transport: the harness", traceback.format_exc().splitlines())
                finally:
                    fx.reset_pattern()
                    pf.stop_started(keep=jd.proc)
            jd.stop()
    finally:
        pf.cleanup_processes()
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
