#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: a crashed program's names never reach a terminal raw.

Run as root from the build directory (after `make`):

    /usr/bin/python3 ../tests/integration/test_escaping.py

A program whose every field a user controls is hostile crashes for real,
once as root and once as an unprivileged user, through the kernel's
core_pattern handler, with pystackd analysing and writing to a journald of
its own (pystackd_fixture.Journald):

    script name  (directory and file)   cwd          the directory
    argv[2..]    OSC 52, CR LF, raw bytes, RLO
    comm         prctl(PR_SET_NAME) with ESC, a raw C1 byte and U+202E
    executable   a copy of python3.11 in a hostile directory
    function     co_name/co_qualname, hundreds of characters long
    module       co_filename with a byte that is not UTF-8
    class        type(name) of a local
    thread name  prctl(PR_SET_NAME) in a second thread
    locals       hostile variable names (co_varnames) and values

Each carries ESC sequences (title, clear screen, colour, OSC 52), BEL, CR/LF
with a forged "SIG=fake" line, C1 as UTF-8 (U+009B, U+0085) and as raw
bytes, right-to-left overrides and isolates, zero-width and wide characters,
and bytes that are not UTF-8.

Then every printer is read: pystackctl's list, info, show (plain and
--native --locals), groups, analyze, dump, debug and error lines, as root
and as the user, with and without --json; pystackctl through a pager on a
pty; `pystack core` on the dumped core (text, --native --locals, --json,
an error); the journald entry; pystackd's and the handler's log lines.
Every output must be valid UTF-8 with no C0 control but LF (CR on a pty),
no DEL, no C1, no bidirectional or invisible format character and no line
that starts with the forged "SIG=fake"; the list's columns must line up
(display width, wide and zero-width characters counted); the stored
values (crashes row, cmdline, thread names, the report's frames and
locals, the journal's COREDUMP_* fields) must be byte-exact.  Remove the
escaping from any one printer and its check fails.

Everything is restored on every exit path (core_pattern and
core_pipe_limit, the user, pystackd, journald, the scratch directories).
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import unicodedata

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import corepattern  # noqa: E402
import hardening_fixture as hf  # noqa: E402
import pystackd_fixture as pf  # noqa: E402
import test_pystackctl as tc  # noqa: E402
from harness.programs import pystack_cmd  # noqa: E402
from harness.corepattern import CoreLock  # noqa: E402
from harness.tap import TAP, Interrupted, Watchdog, on_signal, \
    watchdog  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3.11"

# What the crash chose.  As str, with U+DCxx standing for a byte that is not
# UTF-8 (Python's surrogateescape); as bytes below.
HOSTILE = ("\u65e5\u672ce\u0301x\x1b]0;owned\x07\x1b[2J\r\nSIG=fake"
           "\u009b\u202e\u2066\u200b\udcff")
SCRIPT_DIR = "d" + HOSTILE
SCRIPT = HOSTILE + ".py"
EXE_DIR = "py\x1b[1m\u0085\udcfe"
COMM = b"\x1b[31m\x9bc\xe2\x80\xaeomm"            # 13 bytes: the kernel keeps 15
THREAD = b"\x1b]2;t\x07\xc2\x85th\xff"
ARGS = ["\x1b]52;c;b3duZWQ=\x07", "cr\rlf\nSIG=fake", "raw\udc9b\udcff",
        "rlo\u202eexe.py"]

CRASHER = r'''
import ctypes, json, os, sys, threading

H = %(hostile)r
COMM = %(comm)r
THREAD = %(thread)r
libc = ctypes.CDLL(None, use_errno=True)


def set_name(name):
    libc.prctl(15, ctypes.c_char_p(name), 0, 0, 0)      # PR_SET_NAME


parked = threading.Event()
named = threading.Event()


def other():
    set_name(THREAD)
    named.set()
    parked.wait()


SOURCE = """
def victim(value, other):
    obj = CLS()
    data = bytes(range(0x7f, 0xa0))
    text = H + 'tail'
    RECORD(); ctypes.memmove(0, b'x', 1)
"""


def main():
    record_path = sys.argv[1]
    set_name(COMM)
    t = threading.Thread(target=other, daemon=True)
    t.start()
    named.wait(10)

    def record():
        with open(record_path + ".tmp", "w") as fh:
            json.dump({"pid": os.getpid(), "tid": t.native_id}, fh)
        os.rename(record_path + ".tmp", record_path)

    # a type name must be encodable: the hostile text without its stray byte
    ns = {"CLS": type(H.replace("\udcff", "") + "Cls", (), {}), "H": H, "RECORD": record,
          "ctypes": ctypes}
    exec(compile(SOURCE, "/nonexistent/" + H + "mod\udcfd.py", "exec"), ns)
    victim = ns["victim"]
    name = H + "fn" + "f" * 300
    victim.__code__ = victim.__code__.replace(
        co_name=name, co_qualname=name,
        co_varnames=tuple(H + v for v in victim.__code__.co_varnames))
    victim(H + "value", b"\x1b[2J\x9b")


main()
''' % {"hostile": HOSTILE, "comm": COMM, "thread": THREAD}

BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A)) | {
    0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x061C, 0xFEFF, 0x2028, 0x2029,
    0x00AD}


def fsb(s):
    return s.encode("utf-8", "surrogateescape")


def unsafe(data, allow_cr=False):
    """What in data could drive a terminal: [] when nothing."""
    if isinstance(data, str):
        data = fsb(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return ["not valid UTF-8 at byte %d: %r" % (
            e.start, data[max(0, e.start - 20):e.start + 10])]
    bad = []
    for i, ch in enumerate(text):
        o = ord(ch)
        if ch == "\n" or (allow_cr and ch == "\r"):
            continue
        if o < 0x20 or 0x7F <= o <= 0x9F or o in BIDI:
            bad.append("U+%04X at %d: ...%r..." % (o, i, text[max(0, i - 20):i + 10]))
            if len(bad) > 3:
                break
    for line in text.replace("\r", "\n").splitlines():
        if line.startswith("SIG=fake"):
            bad.append("a forged line: %r" % line[:40])
    return bad


def width(s):
    """Display columns of s, as a terminal counts them."""
    w = 0
    for ch in s:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


class Env(object):
    pass


def write_conf(e):
    text = ("[Storage]\nDirectory=%s\n[Capture]\nRateLimitBurst=0\n%s"
            "[Daemon]\nRuntimeDirectory=%s\nJournal=yes\n"
            "[Analysis]\nAnalyzer=%s\nWorkers=2\nTimeoutSec=60\n"
            % (e.storage, "Mode=socket\n" if pf.SOCKET else "", e.runtime, tc.ANALYZER))
    with open(e.conf + ".tmp", "w") as fh:
        fh.write(text)
    os.chmod(e.conf + ".tmp", 0o644)
    os.rename(e.conf + ".tmp", e.conf)


def db(e, sql, args=()):
    con = sqlite3.connect(e.db, timeout=20)
    try:
        con.text_factory = bytes        # the stored bytes, not a decoding
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql, args)]
    finally:
        con.close()


def crash(e, fx, label, as_user):
    """Run the hostile program; wait for its row to be analysed."""
    rec = os.path.join(e.pub, "rec.%s.json" % label)
    argv = [fsb(e.exe), b"-E", b"-s", b"-B", fsb(e.script), fsb(rec)] + \
        [fsb(a) for a in ARGS]
    if as_user:
        argv = [os.fsencode(a) for a in tc.user_prefix(e)] + argv
    rc, err = fx.run_child(argv, cwd=fsb(e.scriptdir), stdout=subprocess.DEVNULL,
                           start_new_session=True, env=tc.base_env())
    if rc != -signal.SIGSEGV:
        raise RuntimeError("%s: the program exited %r: %s" % (
            label, rc, err.decode(errors="replace")[-600:]))
    with open(rec) as fh:
        info = json.load(fh)
    t0 = time.time()
    while time.time() - t0 < 120:
        rows = db(e, "SELECT id, state FROM crashes WHERE pid = ?",
                  (info["pid"],)) if os.path.exists(e.db) else []
        if rows and rows[0]["state"] in (b"done", b"failed"):
            info["id"] = rows[0]["id"]
            info["state"] = rows[0]["state"].decode()
            return info
        time.sleep(0.1)
    raise RuntimeError("%s: crash of pid %d not analysed within 120 s"
                       % (label, info["pid"]))


def check_output(tap, what, r, allow_cr=False, want_rc=0):
    bad = unsafe(r.out, allow_cr) + ["stderr: " + b for b in unsafe(r.err)]
    if r.rc != want_rc:
        bad.append("exit %r, expected %d" % (r.rc, want_rc))
    tap.ok(not bad, "%s: no raw control, C1 or reordering character, no "
           "forged line" % what, bad + (r.describe() if bad else []))
    return not bad


class Result(object):
    """pystack's runs, shaped like test_pystackctl's Run."""

    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    def describe(self):
        return ["$ %r" % (self.argv,), "exit %r" % self.rc] + [
            "  | " + l for l in (self.err + self.out).decode(
                "utf-8", "backslashreplace").splitlines()[:15]]


def run(argv, timeout=60):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout,
                       env=tc.base_env())
    return Result(argv, p.returncode, p.stdout, p.stderr)


def check_list(tap, e, who):
    r = tc.ctl(e, ["list"], user=(who == "user"))
    if not check_output(tap, "list (%s)" % who, r):
        return
    lines = r.out.decode("utf-8").splitlines()
    head = lines[0] if lines else ""
    rows = [l for l in lines[1:] if l and not l.endswith("listed.")]
    d = []
    want = 2 if who == "root" else 1
    if len(rows) != want:
        d.append("%d crash lines, expected %d" % (len(rows), want))
    # STATE, the last column, starts where its heading does; SCRIPT too
    col = width(head[:head.index("STATE")]) if "STATE" in head else -1
    scol = width(head[:head.index("SCRIPT")]) if "SCRIPT" in head else -1
    for l in rows:
        state = l.rsplit(" ", 1)[-1]
        if width(l[:len(l) - len(state)]) != col:
            d.append("STATE at column %d, heading at %d: %r"
                     % (width(l[:len(l) - len(state)]), col, l))
        # the script's column holds the escaped name, cut to its width
        at, w = 0, 0
        while at < len(l) and w < scol:
            w += width(l[at])
            at += 1
        if not l[at:].startswith("\u65e5\u672ce\u0301x\\x1b]0;owned"):
            d.append("the SCRIPT column does not start with the escaped "
                     "name at column %d: %r" % (scol, l[at:at + 30]))
    tap.ok(not d, "list (%s): columns aligned (wide and zero-width characters "
           "counted), the script's name escaped in its column" % who, d + lines)


def check_json(tap, e, who, args, check):
    r = tc.ctl(e, ["--json"] + args, user=(who == "user"))
    if not check_output(tap, "%s --json (%s)" % (" ".join(args), who), r):
        return
    try:
        doc = json.loads(r.out.decode("utf-8"))
    except ValueError as ex:
        tap.ok(False, "%s --json (%s): parses" % (" ".join(args), who),
               [str(ex)])
        return
    d = check(doc)
    tap.ok(not d, "%s --json (%s): the values decode to the stored bytes"
           % (" ".join(args), who), d)


def verbs(tap, e, who, c):
    """Every verb of pystackctl as root or as the user, on crash c."""
    user = who == "user"
    me = "ID=%d" % c["id"]
    check_list(tap, e, who)

    def list_json(doc):
        mine = [x for x in doc if x["id"] == c["id"]]
        if not mine:
            return ["crash %d not in the list" % c["id"]]
        x, d = mine[0], []
        if fsb(x["comm"]) != COMM:
            d.append("comm %r" % x["comm"])
        if fsb(x["exe"]) != fsb(e.exe):
            d.append("exe %r" % x["exe"])
        if fsb(x["script"]) != fsb(SCRIPT):
            d.append("script %r" % x["script"])
        if not x["frame"] or not fsb(x["frame"]["function"]).startswith(
                fsb(HOSTILE + "fn")):
            d.append("frame %r" % x["frame"])
        return d
    check_json(tap, e, who, ["list"], list_json)

    for args in (["info", me], ["show", me], ["show", "--native", "--locals", me],
                 ["groups"]):
        r = tc.ctl(e, args, user=user)
        check_output(tap, "%s (%s)" % (" ".join(args), who), r)

    def info_json(doc):
        d = []
        for key, want in (("comm", COMM), ("exe", fsb(e.exe)),
                          ("cwd", fsb(e.scriptdir))):
            if fsb(doc.get(key) or "") != want:
                d.append("%s %r" % (key, doc.get(key)))
        args = [fsb(a) for a in doc.get("cmdline") or []]
        if args[-len(ARGS):] != [fsb(a) for a in ARGS]:
            d.append("cmdline %r" % (doc.get("cmdline"),))
        names = [fsb(n) for _, n in doc.get("thread_names") or []]
        if THREAD not in names:
            d.append("thread names %r" % (doc.get("thread_names"),))
        return d
    check_json(tap, e, who, ["info", me], info_json)

    def show_json(doc):
        frames = [f for t in doc.get("threads", []) if t.get("crashed")
                  for f in t.get("frames", []) if f.get("kind") == "python"]
        d = []
        fn = [f for f in frames if fsb(f["function"]).startswith(fsb(HOSTILE + "fn"))]
        if not fn:
            return ["no frame of the hostile function: %r" % frames]
        if fsb(fn[0]["function"]) != fsb(HOSTILE + "fn" + "f" * 300):
            d.append("function %r" % fn[0]["function"])
        if fsb(fn[0]["file"]) != fsb("/nonexistent/" + HOSTILE + "mod\udcfd.py"):
            d.append("file %r" % fn[0]["file"])
        return d
    check_json(tap, e, who, ["show", "--locals", me], show_json)
    check_json(tap, e, who, ["groups"], lambda doc: [] if doc else ["no groups"])

    # an error line that carries what the caller typed
    r = tc.ctl(e, ["list", "UID=\x1b[2J\u009b"], user=user)
    check_output(tap, "an error line (%s)" % who, r, want_rc=2)
    d = tc.one_line_error(r, 2)
    if "\\x1b[2J\\u009b" not in r.err.decode("utf-8", "replace"):
        d.append("the value is not named, escaped")
    tap.ok(not d, "the error (%s) is one line naming the value escaped" % who, d)

    # dump: the core, and nothing else on the terminal
    out = os.path.join(e.pub, "core.%s" % who)
    r = tc.ctl(e, ["dump", "-o", out, me], user=user)
    check_output(tap, "dump -o (%s)" % who, r)

    # debug: the debugger gets a name of ours for the executable
    rec = os.path.join(e.pub, "dbg.%s" % who)
    script = os.path.join(e.pub, "fake-debugger")
    with open(script, "w") as fh:
        fh.write('#!/bin/sh\nprintf "%%s\\n" "$@" > %s\n' % rec)
    os.chmod(script, 0o755)
    r = tc.ctl(e, ["debug", "--debugger=%s" % script, me], user=user)
    check_output(tap, "debug (%s)" % who, r)
    try:
        with open(rec, "rb") as fh:
            got = fh.read()
    except OSError as ex:
        got = str(ex).encode()
    tap.ok(not unsafe(got), "debug (%s): the debugger's arguments hold no name "
           "the crash chose" % who, unsafe(got) + [repr(got)])

    # last: analyze queues the crash again
    r = tc.ctl(e, ["analyze", me], user=user)
    check_output(tap, "analyze (%s)" % who, r)
    return out


def remote_error(tap, e):
    """A user's error lines come from pystackd's socket: a message there is
    printed by the same rule (a pystackd of the test's, answering ERR)."""
    import socket
    import threading
    fake = os.path.join(e.pub, "fake")
    os.mkdir(fake, 0o755)
    conf = os.path.join(e.pub, "c-fake")
    with open(conf, "w") as fh:
        fh.write("[Storage]\nDirectory=%s\n[Daemon]\nRuntimeDirectory=%s\n"
                 % (e.storage, fake))
    os.chmod(conf, 0o644)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(os.path.join(fake, "query"))
    os.chmod(os.path.join(fake, "query"), 0o666)
    srv.listen(1)
    srv.settimeout(30)

    def serve():
        try:
            conn, _ = srv.accept()
            data = b""
            while not data.endswith(b"\n\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            conn.sendall(b"ERR 1 forged \x1b]0;owned\x07\xc2\x9b\xff\nSIG=fake\n")
            conn.close()
        except OSError:
            pass
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = tc.ctl(e, ["list"], user=True, conf=conf)
    finally:
        t.join(10)
        srv.close()
    check_output(tap, "an error line from pystackd's socket (user)", r, want_rc=1)
    tap.ok(b"forged \\x1b]0;owned\\x07\\u009b\\xff" in r.err,
           "that error is printed escaped", r.describe())


def pager(tap, e):
    # the user's pager is theirs to choose: cat shows exactly what is written
    rc, out, _ = tc.run_pty(tc.user_prefix(e) + [tc.CTL, "--config=%s" % e.conf,
                                                "list"],
                            tc.base_env({"PAGER": "cat"}), watch_less=False)
    r = Result(["pystackctl list (pager cat, pty)"], rc, out, b"")
    check_output(tap, "list through the pager on a terminal (user)", r,
                 allow_cr=True)
    tap.ok(b"owned" in out, "the pager got the list", [repr(out[:300])])


def analyzer(tap, e, core):
    for args in ([], ["--native", "--locals"], ["--json", "--locals"]):
        r = run(pystack_cmd(["core", core] + args), timeout=120)
        what = "pystack core %s" % " ".join(args)
        check_output(tap, what, r)
        if "--json" in args and r.rc == 0:
            doc = json.loads(r.out.decode("utf-8"))
            names = [fsb(v["name"]) for t in doc["threads"] for f in t["frames"]
                     for v in f.get("locals", []) + f.get("arguments", [])]
            want = [fsb(H) for H in (HOSTILE + "value", HOSTILE + "obj",
                                     HOSTILE + "text")]
            tap.ok(all(w in names for w in want), "%s: the locals' names are "
                   "the program's bytes" % what, [repr(names[:8])])
            reprs = [fsb(v["repr"]) for t in doc["threads"] for f in t["frames"]
                     for v in f.get("locals", []) if fsb(v["name"]) == fsb(HOSTILE + "obj")]
            cls = b"<" + fsb(HOSTILE.replace("\udcff", "") + "Cls at 0x")
            tap.ok(reprs and reprs[0].startswith(cls), "%s: the class's name in "
                   "a repr is the program's bytes" % what, [repr(reprs)])
        if "--locals" in args and "--json" not in args:
            tap.ok(b"Cls" in r.out and b"\\x1b" in r.out,
                   "%s: locals and the class name shown, escaped" % what,
                   r.describe())
    r = run(pystack_cmd(["core", "/nonexistent/" + HOSTILE]), timeout=30)
    check_output(tap, "pystack core on a missing hostile path (an error)", r,
                 want_rc=r.rc)
    tap.ok(r.rc != 0 and len(r.err.splitlines()) == 1 and not r.out,
           "that error is one line", r.describe())


def journal(tap, e, jd, c):
    got = jd.wait_entries(lambda x: x.get("PYSTACK_CRASH_ID") == str(c["id"]),
                          timeout=30)
    if not tap.ok(got, "the journal has an entry for crash %d" % c["id"],
                  [jd.describe()]):
        return
    x = got[-1]

    def raw(v):
        if isinstance(v, list):
            return bytes(v)
        return fsb(v or "")
    d = []
    for key in ("MESSAGE", "PYSTACK_REPORT"):
        d += ["%s: %s" % (key, b) for b in unsafe(raw(x.get(key)))]
    if b"owned" not in raw(x.get("MESSAGE")):
        d.append("MESSAGE does not name the script: %r" % x.get("MESSAGE"))
    tap.ok(not d, "journal: MESSAGE and PYSTACK_REPORT escaped", d)
    d = []
    for key, want in (("COREDUMP_COMM", COMM), ("COREDUMP_EXE", fsb(e.exe)),
                      ("COREDUMP_CWD", fsb(e.scriptdir))):
        if raw(x.get(key)) != want:
            d.append("%s %r, expected %r" % (key, raw(x.get(key)), want))
    tap.ok(not d, "journal: COREDUMP_COMM, _EXE, _CWD byte-exact", d)
    # what journalctl prints to a terminal
    rc, out, err = jd.run("journalctl", ["--no-pager",
                                         "PYSTACK_CRASH_ID=%d" % c["id"]])
    r = Result(["journalctl PYSTACK_CRASH_ID=%d" % c["id"]], rc, out, err)
    check_output(tap, "journalctl's own output of the entry", r)


def stored(tap, e, c):
    row = db(e, "SELECT comm, exe, cwd, cmdline, thread_names, report FROM "
             "crashes WHERE id = ?", (c["id"],))[0]
    d = []
    if row["comm"] != COMM:
        d.append("comm %r" % row["comm"])
    if row["exe"] != fsb(e.exe):
        d.append("exe %r" % row["exe"])
    if row["cwd"] != fsb(e.scriptdir):
        d.append("cwd %r" % row["cwd"])
    args = [fsb(a) for a in json.loads(row["cmdline"].decode("utf-8"))]
    if args[-len(ARGS):] != [fsb(a) for a in ARGS] or args[-len(ARGS) - 2] != \
            fsb(e.script):
        d.append("cmdline %r" % args)
    names = [fsb(n) for _, n in json.loads(row["thread_names"].decode("utf-8"))]
    if THREAD not in names:
        d.append("thread names %r" % names)
    report = json.loads(row["report"].decode("utf-8"))
    frames = [fsb(f["function"]) for t in report["threads"] for f in t["frames"]
              if f.get("kind") == "python"]
    if fsb(HOSTILE + "fn" + "f" * 300) not in frames:
        d.append("no frame named exactly as the function: %r" % frames[:4])
    tap.ok(not d, "the store keeps every name byte-exact (%s's crash)" % c["label"], d)


def logs(tap, e, fx, daemon):
    with open(daemon.log_path, "rb") as fh:
        data = fh.read()
    bad = unsafe(data)
    tap.ok(not bad and b"owned" in data, "pystackd's log lines escaped", bad)
    try:
        with open(e.handler_log, "rb") as fh:
            data = fh.read()
    except OSError:
        data = b""
    bad = unsafe(data)
    tap.ok(not bad and b"\\x1b[31m\\x9bc\\u202eomm" in data,
           "the handler's log lines escaped (comm as \\x1b[31m\\x9bc\\u202eomm)",
           bad + [repr(data[-400:])])


def main():
    tap = TAP()
    if os.geteuid() != 0:
        tap.skip("not root: core_pattern cannot be changed")
        return tap.done()
    if pf.SOCKET and pf.socket_missing():
        tap.skip("socket mode: %s" % pf.socket_missing())
        return tap.done()
    for p, what in ((tc.PYSTACKD, "pystackd"), (tc.HANDLER, "pystack-coredump"),
                    (tc.ANALYZER, "pystack"), (tc.CTL, "pystackctl")):
        if not os.access(p, os.X_OK):
            tap.ok(False, "%s is built (%s)" % (what, p))
            return tap.done()
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        tap.skip("%s not installed" % SYSTEM_PYTHON)
        return tap.done()
    for tool in ("useradd", "setpriv", "journalctl"):
        if not shutil.which(tool):
            tap.ok(False, "%s is installed" % tool)
            return tap.done()
    limit = int(os.environ.get("PYSTACK_ESCAPING_TEST_TIMEOUT", "600"))
    old = {s: signal.signal(s, on_signal)
           for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    alarm = watchdog(limit)
    e = Env()
    e.user = None
    e.pub = None
    jd = daemon = None
    interrupted = None
    t_all = time.time()
    try:
        with corepattern.PipeHandlerFixture(pipe_limit=64) as fx:
            for s in old:
                signal.signal(s, on_signal)
            try:
                e.pub = tempfile.mkdtemp(prefix="pystack-escaping.", dir="/tmp")
                os.chmod(e.pub, 0o755)
                e.storage = os.path.join(fx.root, "s")
                e.db = os.path.join(e.storage, "pystack.db")
                e.runtime = os.path.join(e.pub, "r")
                e.conf = os.path.join(e.pub, "c")
                write_conf(e)
                e.user = tc.create_user()
                e.scriptdir = os.path.join(e.pub, SCRIPT_DIR)
                os.mkdir(fsb(e.scriptdir), 0o777)
                e.script = os.path.join(e.scriptdir, SCRIPT)
                with open(fsb(e.script), "w") as fh:
                    fh.write(CRASHER)
                os.chmod(fsb(e.script), 0o644)
                exedir = os.path.join(e.pub, EXE_DIR)
                os.mkdir(fsb(exedir), 0o755)
                e.exe = os.path.join(exedir, "python3.11")
                shutil.copy2(SYSTEM_PYTHON, fsb(e.exe))
                os.chmod(fsb(e.exe), 0o755)
                os.chmod(e.pub, 0o777)      # the user's record files
                os.chmod(e.pub, 0o1777)

                jd = pf.Journald(os.path.join(fx.root, "journald.log"))
                if not tap.ok(jd.start(), "a journald to write to: %s" % (
                        jd.error or jd.describe())):
                    raise RuntimeError("no journald")
                daemon = pf.Daemon(e.conf, os.path.join(fx.root, "pystackd.log"),
                                   jd.prefix)
                if pf.SOCKET:
                    # socket mode: pystackd's listener replaces the pipe pattern, which must be
                    # there first; the listener (no wrapper can stand in front of a socket) logs
                    # into pystackd's log
                    link = os.path.join(fx.root, "h")
                    os.symlink(tc.HANDLER, link)
                    fx.set_pattern("|%s --config=%s %%F %%P %%u %%g %%s %%t %%c %%h %%d %%e"
                                   % (link, e.conf))
                    e.handler_log = daemon.log_path
                up = daemon.start()
                t0 = time.time()
                while up and not os.path.exists(os.path.join(e.runtime, "query")) \
                        and time.time() - t0 < 10:
                    time.sleep(0.05)
                if not tap.ok(up, "pystackd is up", daemon.log_tail()):
                    raise RuntimeError("no pystackd")
                if not pf.SOCKET:
                    e.handler_log = os.path.join(fx.root, "handler.log")
                    link = hf.stderr_wrapper(os.path.join(fx.root, "h"),
                                             e.handler_log, tc.HANDLER)
                    fx.set_pattern("|%s --config=%s %%F %%P %%u %%g %%s %%t %%c "
                                   "%%h %%d %%e" % (link, e.conf))
                elif not corepattern.read_core_pattern().startswith("@@"):
                    raise RuntimeError("socket mode: the listener did not take core_pattern: %s"
                                       % daemon.log_tail())
                crashes = {}
                for label, as_user in (("root", False), ("user", True)):
                    crashes[label] = c = crash(e, fx, label, as_user)
                    c["label"] = label
                    tap.ok(c["state"] == "done", "%s's hostile crash %d is "
                           "recorded and analysed" % (label, c["id"]),
                           daemon.log_tail())
                fx.reset_pattern()
                for label in ("root", "user"):
                    stored(tap, e, crashes[label])
                core = verbs(tap, e, "root", crashes["root"])
                verbs(tap, e, "user", crashes["user"])
                pager(tap, e)
                remote_error(tap, e)
                if os.path.exists(core):
                    analyzer(tap, e, core)
                else:
                    tap.ok(False, "the dumped core %s exists" % core)
                journal(tap, e, jd, crashes["root"])
                logs(tap, e, fx, daemon)
            except (Watchdog, Interrupted):
                raise
            except Exception:
                tap.ok(False, "the harness", traceback.format_exc().splitlines()
                       + (daemon.log_tail() if daemon else []))
            finally:
                fx.reset_pattern()
                if daemon is not None:
                    daemon.stop()
                if jd is not None:
                    jd.stop()
                fx.kill_children()
                if e.user is not None:
                    tap.ok(tc.remove_user(), "the test user is removed")
                if e.pub and not os.environ.get("PYSTACK_CAPTURE_KEEP"):
                    shutil.rmtree(fsb(e.pub), ignore_errors=True)
    except Watchdog as ex:
        tap.ok(False, "the test finished within %ds" % limit, [str(ex)])
    except Interrupted as ex:
        interrupted = ex.signum
    finally:
        alarm.cancel()
        for s, h in old.items():
            signal.signal(s, h)
        pf.cleanup_processes()
    with CoreLock():    # another test may have its own pattern in place
        cp = corepattern.read_core_pattern()
    tap.ok(corepattern.MARKER not in cp, "core_pattern restored (%r)" % cp)
    if interrupted:
        sys.stdout.flush()
        os.kill(os.getpid(), interrupted)
    tap.diag("%d tests, %d failed in %.0fs" % (tap.n, tap.failed,
                                              time.time() - t_all))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
