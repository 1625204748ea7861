#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: `pystack remote PID` on live processes (issue 15).

 stacks     for every CPython here (pyenv's, Debian's, sid's 3.14 and 3.15
            chrooted in their tree: a root of their own, read through
            /proc/PID/root), a program with three worker threads at
            different depths records its own stacks (sys._current_frames,
            from a helper thread that then ends) and sleeps: `pystack remote
            PID --json` shows exactly those Python frames (file, line,
            function) in every thread, `--locals` a worker's local (Debian's
            3.11: with `--exhaustive` the same), and the --native text report prints;
            after each run the process is
            neither traced nor stopped.
 killed     the analyzer SIGKILLed while it holds the process stopped: the
            process is left neither traced nor stopped and keeps running
            (its heartbeat goes on).
 no-block   a busy process read with --no-block: the spinning function is
            seen, the report says the process was not stopped; --native with
            --no-block is a usage error.
 exiting    a process that exits while it is read, 30 times: each run exits
            0, 3 or 5 with at most one line on stderr, none hangs.
 refusals   another user's process (as nobody): one line naming the ptrace
            access rule, exit 3; a process already traced: one line naming
            the tracer, and after the tracer is gone the read works; a
            kernel thread, a zombie, no such process: one line each, exit 3;
            a bad PID: exit 2.  Yama's ptrace_scope: skipped when the kernel
            has no Yama (this machine's has none).
 stopped    a process stopped by SIGSTOP is read and stays stopped.

Run as root from the build directory.  Interpreters that are missing are
skipped with the reason.
"""
from __future__ import print_function

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cores  # noqa: E402
from harness import programs  # noqa: E402
from harness.run import run_pystack, wait_for  # noqa: E402
from harness.tap import TAP  # noqa: E402

TIMEOUT = 60
WORKERS = 3

PROGRAM = r'''
from __future__ import print_function
import json, os, sys, threading, time, traceback
try:
    from thread import get_ident
except ImportError:
    from threading import get_ident
OUT = sys.argv[1]

def leaf(i, ev):
    marker = "worker-%d" % i
    ev.set()
    time.sleep(3600)

def mid(i, depth, ev):
    if depth:
        mid(i, depth - 1, ev)
    else:
        leaf(i, ev)

def worker(i, ev):
    mid(i, i, ev)

def record(main_ev):
    main_ev.wait()
    time.sleep(0.5)
    me = get_ident()
    stacks = []
    for ident, frame in sys._current_frames().items():
        if ident != me:
            stacks.append([[s[0], s[1], s[2]] for s in traceback.extract_stack(frame)])
    with open(OUT + ".tmp", "w") as fh:
        json.dump(stacks, fh)
    os.rename(OUT + ".tmp", OUT)

def rest(ev):
    ev.set()
    time.sleep(3600)

evs = []
for i in range(WORKERS_N):
    ev = threading.Event()
    t = threading.Thread(target=worker, args=(i, ev))
    t.daemon = True
    t.start()
    evs.append(ev)
for ev in evs:
    ev.wait()
main_ev = threading.Event()
r = threading.Thread(target=record, args=(main_ev,))
r.daemon = True
r.start()
rest(main_ev)
'''.replace("WORKERS_N", str(WORKERS))

HEAVY = r'''
import os, sys, threading, time
BEAT = sys.argv[1]

def deep(n, pad):
    local = [pad] * 4
    if n:
        return deep(n - 1, pad)
    time.sleep(3600)

def beat():
    n = 0
    while True:
        n += 1
        with open(BEAT + ".tmp", "w") as fh:
            fh.write(str(n))
        os.rename(BEAT + ".tmp", BEAT)
        time.sleep(0.01)

for i in range(20):
    t = threading.Thread(target=deep, args=(700, "x" * 50))
    t.daemon = True
    t.start()
threading.Thread(target=beat).start()
'''

SPIN = r'''
import sys
def spin():
    x = 0
    while True:
        x += 1
print("spinning")
sys.stdout.flush()
spin()
'''


def status(pid):
    """(State letter, TracerPid) of every thread of pid."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as fh:
                text = fh.read()
        except OSError:
            continue
        state = text.split("State:")[1].split()[0]
        tracer = int(text.split("TracerPid:")[1].split()[0])
        out[int(tid)] = (state, tracer)
    return out


def free(pid, timeout=2.0):
    """Every thread of pid neither traced nor in a tracing stop (waited for up to timeout)."""
    deadline = time.time() + timeout
    while True:
        st = status(pid)
        bad = dict((t, s) for t, s in st.items() if s[1] != 0 or s[0] == "t")
        if not bad or time.time() > deadline:
            return not bad, bad
        time.sleep(0.02)


def python_stacks(doc):
    """Each Python thread's frames, outermost first (as the report lists them), as [file, line, function]."""
    out = []
    for th in doc.get("threads", []):
        frames = [[f["file"], f["line"], f["function"]] for f in th.get("frames", []) if f.get("kind") == "python"]
        if frames:
            out.append(frames)
    return out


def start(interp, args, work):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if interp.root:
        # the sid wrapper binds these at their own paths in the tree: our work directory only
        env.update(SCENARIOS="", CEXT="", CACHE="", INCOMING=work)
    return subprocess.Popen(interp.argv(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)


def launch(interp, work, tag, program, output=None):
    """program (text) run by interp from a directory of its own below work, with that directory's
    file `output` (when given) as its argument: (process, the output's path)."""
    d = tempfile.mkdtemp(prefix="%s." % tag, dir=work)
    os.chmod(d, 0o755)
    prog = os.path.join(d, "prog.py")
    with open(prog, "w") as fh:
        fh.write(program)
    out = os.path.join(d, output) if output else None
    return start(interp, [prog] + ([out] if out else []), work), out


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    p.wait()


def case_stacks(tap, interp, work):
    p, out = launch(interp, work, "remote-" + interp.label, PROGRAM, "stacks.json")
    try:
        ready = wait_for(lambda: os.path.exists(out) and len(status(p.pid)) == WORKERS + 1, 60)
        if not tap.ok(ready, "stacks %s: the program recorded its stacks" % interp.label,
                      [p.stderr.read1(2000).decode(errors="replace") if p.poll() is not None else
                       "threads: %d" % len(status(p.pid))]):
            return
        with open(out) as fh:
            want = sorted(json.load(fh))
        r = run_pystack(["remote", str(p.pid), "--json", "--locals"], TIMEOUT)
        try:
            doc = json.loads(r.out)
        except ValueError:
            doc = {}
        got = sorted(python_stacks(doc))
        ok_free, bad = free(p.pid)
        tap.ok(r.rc == 0 and got == want and (doc.get("live") or {}).get("pid") == p.pid and doc["live"]["stopped"] and
               0 < doc["live"]["stopped_usec"] < 10 * 10**6 and
               doc.get("core") is None and ok_free,
               "stacks %s: remote --json shows the program's own stacks in every thread; it runs on after" %
               interp.label,
               ["exit %r: %s" % (r.rc, r.err[-300:]), "want %r" % want, "got  %r" % got, "left %r" % bad]
               if r.rc or got != want or not ok_free else [])
        markers = set()
        for th in doc.get("threads", []):
            for f in th.get("frames", []):
                if f.get("function") == "leaf":
                    markers.update(v["repr"] for v in f.get("locals", []) if v["name"] == "marker")
        tap.ok(markers == set("'worker-%d'" % i for i in range(WORKERS)),
               "stacks %s: --locals reads each worker's local" % interp.label, ["%r" % sorted(markers)])
        if interp.origin == "system":
            # --exhaustive (scan memory when symbols fail; here they do not): the same answer
            r = run_pystack(["remote", str(p.pid), "--exhaustive", "--json"], TIMEOUT)
            try:
                ex = sorted(python_stacks(json.loads(r.out)))
            except ValueError:
                ex = None
            tap.ok(r.rc == 0 and ex == want, "stacks %s: remote --exhaustive, the same stacks" % interp.label,
                   r.describe() if r.rc else ["got %r" % ex])
        r = run_pystack(["remote", str(p.pid), "--native"], TIMEOUT)
        ok_free, bad = free(p.pid)
        tap.ok(r.rc == 0 and r.out.startswith("Traceback for thread ") and "(C) File" in r.out and
               "(Python) File" in r.out and "in leaf" in r.out and ok_free,
               "stacks %s: the --native text report, C and Python frames; it runs on after" % interp.label,
               r.describe() + ["left %r" % bad] if r.rc or not ok_free else [])
    finally:
        stop(p)


def case_killed(tap, interp, work):
    p, beat = launch(interp, work, "killed", HEAVY, "beat")
    caught = False
    try:
        if not tap.ok(wait_for(lambda: os.path.exists(beat) and len(status(p.pid)) >= 22, 60),
                      "killed: a process of 22 threads, 20 of them 700 frames deep"):
            return
        for attempt in range(20):
            a = subprocess.Popen(programs.pystack_cmd(["remote", str(p.pid), "--native", "--locals", "--json"]),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # the moment it holds the process: a thread traced by it
            caught = wait_for(lambda: any(s[1] == a.pid for s in status(p.pid).values()) or a.poll() is not None,
                              10) and a.poll() is None
            a.kill()
            a.wait()
            if caught:
                break
        ok_free, bad = free(p.pid)
        with open(beat) as fh:
            before = fh.read()
        going = wait_for(lambda: open(beat).read() != before, 5)
        tap.ok(caught and ok_free and going and p.poll() is None,
               "killed: the analyzer SIGKILLed while it holds the process stopped: the process is left untraced, "
               "unstopped, and runs on", ["caught it holding the process: %r" % caught, "left %r" % bad,
                                          "heartbeat goes on: %r" % going])
    finally:
        stop(p)


def case_no_block(tap, interp, work):
    p, _ = launch(interp, work, "spin", SPIN)
    try:
        import select
        if not tap.ok(select.select([p.stdout], [], [], 60)[0] and p.stdout.readline().strip() == b"spinning",
                      "no-block: the busy program runs"):
            return
        seen = False
        for _ in range(10):
            r = run_pystack(["remote", str(p.pid), "--no-block", "--json"], TIMEOUT)
            try:
                doc = json.loads(r.out)
            except ValueError:
                doc = {}
            seen = r.rc == 0 and doc.get("live") == {"pid": p.pid, "stopped": False, "stopped_usec": 0} and \
                any(s[-1][2] == "spin" for s in python_stacks(doc))
            if seen:
                break
        ok_free, bad = free(p.pid)
        tap.ok(seen and ok_free and status(p.pid).get(p.pid, ("?",))[0] == "R",
               "no-block: a busy process read without stopping it: in spin(), the report says it was not stopped",
               r.describe() if not seen else ["left %r" % bad])
        r = run_pystack(["remote", str(p.pid), "--no-block"], TIMEOUT)
        tap.ok(r.rc == 0 and r.out.startswith("Read without stopping the process (--no-block)"),
               "no-block: the text report says so in its first line", r.describe())
        r = run_pystack(["remote", str(p.pid), "--no-block", "--native"], TIMEOUT)
        tap.ok(r.rc == 2 and "--no-block" in r.err and len(r.err.strip().splitlines()) == 1,
               "no-block: with --native, a usage error", r.describe())
    finally:
        stop(p)


def case_exiting(tap, interp, work):
    codes, bad = {}, []
    for i in range(30):
        p = start(interp, ["-c", "import time; time.sleep(%f)" % (0.005 * (i % 10))], work)
        r = run_pystack(["remote", str(p.pid), "--native"], 20)
        codes[r.rc] = codes.get(r.rc, 0) + 1
        if r.timed_out or r.rc not in (0, 3, 5) or len(r.err.strip().splitlines()) > 1:
            bad.append(r.describe())
        p.wait()
    tap.ok(not bad, "exiting: a process read while it exits, 30 times: exit 0, 3 or 5, one line at most, no hang "
           "(%s)" % ", ".join("exit %s: %d" % kv for kv in sorted(codes.items())), [l for b in bad[:3] for l in b])


def as_user(pw, cmd):
    def drop():
        os.setgid(pw.pw_gid)
        os.setgroups([])
        os.setuid(pw.pw_uid)
    r = subprocess.run(cmd, preexec_fn=drop, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=TIMEOUT)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def case_refusals(tap, interp, work):
    p = subprocess.Popen(["sleep", "600"])
    try:
        nobody = pwd.getpwnam("nobody")
        rc, out, err = as_user(nobody, programs.pystack_cmd(["remote", str(p.pid)]))
        ok_free, bad = free(p.pid)
        tap.ok(rc == 3 and not out and len(err.strip().splitlines()) == 1 and "not allowed to trace" in err and
               "ptrace access mode" in err and ok_free,
               "refusals: another user's process, as nobody: one line naming the rule, exit 3", [err])
        if os.path.exists("/proc/sys/kernel/yama/ptrace_scope"):
            with open("/proc/sys/kernel/yama/ptrace_scope") as fh:
                scope = int(fh.read())
            rc, out, err = as_user(nobody, ["sh", "-c", "sleep 600 & p=$!; %s remote $p; r=$?; kill $p; exit $r" %
                                            " ".join(programs.pystack_cmd([]))])
            tap.ok(scope == 0 or (rc == 3 and "ptrace_scope" in err),
                   "refusals: Yama's ptrace_scope=%d: a user's own non-child process" % scope, [err])
        else:
            tap.skip("refusals: Yama's ptrace_scope: this kernel has no Yama (/proc/sys/kernel/yama is missing), "
                     "so only the ptrace access mode refuses")
        # already traced (a debugger): a tracer of our own that seizes and waits
        tracer = subprocess.Popen([sys.executable, "-c",
                                   "import ctypes, sys, time\n"
                                   "libc = ctypes.CDLL(None, use_errno=True)\n"
                                   "print(libc.ptrace(0x4206, int(sys.argv[1]), None, None))\n"
                                   "sys.stdout.flush()\n"
                                   "time.sleep(600)\n", str(p.pid)], stdout=subprocess.PIPE)
        seized = tracer.stdout.readline().strip() == b"0"
        r = run_pystack(["remote", str(p.pid)], TIMEOUT)
        tap.ok(seized and r.rc == 3 and "already traced by process %d" % tracer.pid in r.err and
               len(r.err.strip().splitlines()) == 1, "refusals: a process already traced: one line naming the tracer",
               r.describe())
        tracer.kill()
        tracer.wait()
        r = run_pystack(["remote", str(p.pid)], TIMEOUT)
        ok_free, bad = free(p.pid)
        tap.ok(r.rc == 5 and "no Python" in r.err and ok_free,
               "refusals: the tracer gone, it is read (sleep runs no Python: exit 5) and left as it was",
               r.describe() + ["left %r" % bad])
    finally:
        p.kill()
        p.wait()
    z = subprocess.Popen(["true"])
    wait_for(lambda: status(z.pid).get(z.pid, ("?",))[0] == "Z", 10)
    r = run_pystack(["remote", str(z.pid)], TIMEOUT)
    tap.ok(r.rc == 3 and "zombie" in r.err and len(r.err.strip().splitlines()) == 1, "refusals: a zombie",
           r.describe())
    z.wait()
    r = run_pystack(["remote", str(z.pid)], TIMEOUT)
    tap.ok(r.rc == 3 and "no process %d" % z.pid in r.err, "refusals: no such process", r.describe())
    r = run_pystack(["remote", "2"], TIMEOUT)
    tap.ok(r.rc == 3 and "kernel thread" in r.err, "refusals: a kernel thread", r.describe())
    bad = []
    for arg in ("abc", "0", "-5", "99999999999", "12x"):
        r = run_pystack(["remote", arg], TIMEOUT)
        if r.rc != 2 or len(r.err.strip().splitlines()) != 1:
            bad.append("%s: %r" % (arg, r.describe()))
    tap.ok(not bad, "refusals: a PID that is no number, zero, negative or too large: a usage error", bad)


def case_stopped(tap, interp, work):
    p, out = launch(interp, work, "stopped", PROGRAM, "stacks.json")
    try:
        if not tap.ok(wait_for(lambda: os.path.exists(out), 60), "stopped: the program runs"):
            return
        os.kill(p.pid, signal.SIGSTOP)
        wait_for(lambda: all(s[0] == "T" for s in status(p.pid).values()), 5)
        r = run_pystack(["remote", str(p.pid)], TIMEOUT)
        again = wait_for(lambda: all(s == ("T", 0) for s in status(p.pid).values()), 5)
        tap.ok(r.rc == 0 and "in leaf" in r.out and again,
               "stopped: a process stopped by SIGSTOP is read and stays stopped, untraced",
               r.describe() + ["%r" % status(p.pid)])
        os.kill(p.pid, signal.SIGCONT)
    finally:
        stop(p)


def main():
    tap = TAP()
    if os.geteuid() != 0:
        return tap.skip_all("not root: another user's process and the sid tree's chroot need root")
    if not os.access(programs.pystack(), os.X_OK):
        tap.ok(False, "pystack %s is built" % programs.pystack())
        return tap.done()
    interps = [i for i in cores.find_interpreters()]
    for why in cores.missing_interpreters(interps):
        tap.skip("stacks: %s" % why)
    work = tempfile.mkdtemp(prefix="test_remote.")
    os.chmod(work, 0o755)
    try:
        for interp in interps:
            if interp.emulator:
                # the process there is the emulator, an x86-64 program
                tap.skip("stacks %s: runs under %s: pystack remote would read the emulator, "
                         "not the emulated aarch64 interpreter" % (interp.label, interp.emulator[0]))
                continue
            case_stacks(tap, interp, work)
        plain = [i for i in interps if i.origin == "system"] or [i for i in interps if not i.root]
        if not plain:
            tap.skip("killed, no-block, exiting, refusals, stopped: no interpreter outside a chroot")
        else:
            one = plain[0]
            for case in (case_killed, case_no_block, case_exiting, case_refusals, case_stopped):
                case(tap, one, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
