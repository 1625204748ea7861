#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: capture through the kernel's coredump socket ([Capture] Mode=socket,
core_pattern "@@PATH", Linux 6.17+), what only that mode has (issue 17).  The
capture cases themselves run in socket mode too: test_capture_socket.py,
test_binaries_socket.py, test_escaping_socket.py.

 cli        pystack-coredump --listen with an argument: one line, exit 2;
            --help names --listen.
 not ours   --listen when core_pattern is not our pipe pattern: one line,
            exit 3, core_pattern untouched, no socket left.
 nobody     "@@PATH" with nobody listening (what a listener that is gone
            would leave): the crashing process dies at once and no core is
            written anywhere (the kernel logs a failed connection) -- why the
            pipe pattern comes back whenever the listener stops.
 activated  systemd's socket activation, as pystack-coredump.socket does it:
            a listening socket passed as fd 3 with LISTEN_FDS/LISTEN_PID and
            "@@" its path in core_pattern (the sysctl drop-in's part): the
            listener serves it without binding or switching anything, a
            crash is captured, and SIGTERM leaves the socket and the pattern
            to their owner.
 pystackd   pystackd with Mode=socket and the pipe pattern installed:
            - its listener puts "@@RUNTIME/coredump.socket" in core_pattern;
              the socket is root's, 0600;
            - a process that connects by itself is refused (not the kernel:
              its pidfd is not dumping core), and said so; another user
              cannot even connect; the listener goes on serving;
            - a Python crash is captured, analysed, and its signal (which the
              socket does not tell) comes from the core;
            - the listener SIGKILLed while it takes a 300 MiB core: that
              core's own process, which holds no capability by then (CapEff
              and CapPrm 0, NoNewPrivs), finishes it (recorded whole); pystackd puts
              the pipe pattern back at once, a crash meanwhile goes to the
              pipe handler, and the listener is back within seconds;
            - pystackd SIGKILLed: the listener (PR_SET_PDEATHSIG) puts the
              pipe pattern back and exits; pystackd stopped: the same.

Run as root from the build directory; core_pattern is changed under
harness.corepattern's lock and restored on every exit path.  A kernel without
the coredump socket is a SKIP.
"""
import os
import signal
import socket
import stat
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pystackd_fixture as pf  # noqa: E402
from harness import corepattern, programs  # noqa: E402
from harness.run import wait_for  # noqa: E402
from harness.tap import TAP  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3.11"
CHILD = os.path.join(HERE, "capture_child.py")


def run(argv, timeout=30, **kw):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, **kw)


def pattern():
    return corepattern.read_core_pattern()


def case_cli(tap):
    r = run([programs.coredump(), "--listen", "extra"])
    err = r.stderr.decode("utf-8", "replace").strip().splitlines()
    tap.ok(r.returncode == 2 and len(err) == 1 and "usage" in err[0],
           "cli: --listen with an argument: one line, exit 2", ["exit %d: %r" % (r.returncode, err)])
    h = run([programs.coredump(), "--help"])
    tap.ok(h.returncode == 0 and b"--listen" in h.stdout, "cli: --help names --listen", [h.stdout[-300:]])


def case_not_ours(tap, fx):
    st = pf.Store(fx, "n", capture="Mode=socket")
    fx.set_pattern("|/bin/false %s %%p" % fx.root)     # a pipe pattern, not pystack-coredump's
    before = pattern()
    env = dict(os.environ, PYSTACK_COREDUMP_STDERR="1")
    r = run([st.handler_link(), "--config=" + st.conf, "--listen"], env=env)
    err = r.stderr.decode("utf-8", "replace").strip().splitlines()
    sock = os.path.join(st.runtime, "coredump.socket")
    tap.ok(r.returncode == 3 and len(err) == 1 and "not pystack-coredump's pipe pattern" in err[0] and
           pattern() == before and not os.path.exists(sock),
           "not ours: --listen leaves a pattern not ours alone: one line, exit 3, no socket left",
           ["exit %d: %r" % (r.returncode, err), "pattern %r" % pattern()])
    fx.reset_pattern()


def case_nobody(tap, fx):
    path = os.path.join(fx.root, "nobody.socket")
    fx.set_pattern("@@" + path)
    p = subprocess.Popen(["/usr/bin/sleep", "100"], stdin=subprocess.DEVNULL, start_new_session=True)
    fx.children.add(p)
    time.sleep(0.1)
    t0 = time.monotonic()
    os.kill(p.pid, signal.SIGSEGV)
    _, status = os.waitpid(p.pid, 0)
    took = time.monotonic() - t0
    fx.children.discard(p)
    p.returncode = 0
    fx.reset_pattern()
    tap.ok(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSEGV and not os.WCOREDUMP(status) and
           not os.path.exists(path) and took < 2,
           "nobody: with @@PATH and nobody listening the process dies at once (%.3f s) and no core is "
           "written" % took, ["status 0x%x" % status])


def case_activated(tap, fx):
    st = pf.Store(fx, "a", capture="Mode=socket")
    path = os.path.join(st.dir, "activated.socket")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o600)
    srv.listen(16)
    fx.set_pattern("@@" + path)
    fd = srv.fileno()

    # as systemd does it: the socket as fd 3, LISTEN_PID the listener's own pid (the shell's, which
    # execs it)
    log = open(os.path.join(st.dir, "listener.log"), "ab")
    lp = subprocess.Popen(["/bin/sh", "-c", 'exec 3<&%d %d<&-; LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"' % (fd, fd),
                           st.handler_link(), "--config=" + st.conf, "--listen"], stdin=subprocess.DEVNULL,
                          stdout=log, stderr=log, pass_fds=(fd,), env=dict(os.environ, PYSTACK_COREDUMP_STDERR="1"),
                          start_new_session=True)
    log.close()
    fx.children.add(lp)
    srv.close()
    time.sleep(0.3)
    p, expect = crash_python(fx, st)
    ok = expect is not None
    if ok:
        os.kill(p.pid, signal.SIGSEGV)
        reap(fx, p)
        row, rows = st.wait_row(lambda r: r["pid"] == p.pid and r["core_state"] != "capturing", 60)
    else:
        row, rows = None, []
    lp.terminate()
    rc = lp.wait(timeout=20)
    fx.children.discard(lp)
    with open(os.path.join(st.dir, "listener.log"), errors="replace") as fh:
        said = fh.read()
    tap.ok(ok and row and row["core_state"] == "present" and row["signal"] == 0 and rc == 0 and
           os.path.exists(path) and pattern() == "@@" + path and "the socket systemd passed" in said and
           not os.path.exists(os.path.join(st.runtime, "coredump.socket")),
           "activated: the listener serves systemd's socket (a crash captured), binds nothing, and leaves "
           "the socket and core_pattern to their owner", [said[-600:], "exit %r" % rc] +
           [pf.brief(r) for r in rows])
    fx.reset_pattern()


def listener_of(d):
    for pid in d.children():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as fh:
                if fh.read().endswith(b"\0--listen\0"):
                    return pid
        except OSError:
            pass
    return None


def crash_python(fx, st, mode="plain", extra=()):
    expect = os.path.join(st.dir, "expect.%d.json" % time.monotonic_ns())
    p = subprocess.Popen([SYSTEM_PYTHON, "-E", "-s", "-B", CHILD, expect, mode] + list(extra),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    fx.children.add(p)
    if p.stdout.readline().strip() != b"ready":
        return p, None
    return p, expect


def reap(fx, p, timeout=120):
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    fx.children.discard(p)
    p.stdout.close()
    return rc


def case_pystackd(tap, fx, jd):
    st = pf.Store(fx, "d", capture="Mode=socket", analysis="Workers=1")
    st.install()
    pipe = pattern()
    sock = os.path.join(st.runtime, "coredump.socket")
    d = st.daemon(jd)
    if not tap.ok(d.start() and pattern() == "@@" + sock,
                  "pystackd: its listener puts @@%s in core_pattern" % sock, d.log_tail() + [pattern()]):
        return
    s = os.lstat(sock)
    tap.ok(stat.S_ISSOCK(s.st_mode) and stat.S_IMODE(s.st_mode) == 0o600 and s.st_uid == 0,
           "pystackd: the socket is root's, 0600", ["mode %o uid %d" % (s.st_mode, s.st_uid)])

    # a process connecting on its own
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(sock)
    got = c.recv(64)
    c.close()
    said = wait_for(lambda: "refused a connection from process %d (uid 0): not the kernel" % os.getpid()
                    in d.log()[d.log_start:], 10)
    user = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c",
                "import socket; s = socket.socket(socket.AF_UNIX); s.connect(%r)" % sock])
    tap.ok(got == b"" and said and user.returncode != 0 and b"PermissionError" in user.stderr,
           "pystackd: a process connecting by itself is refused and said so; another user cannot connect",
           d.log_tail(5) + ["received %r" % got, user.stderr.decode("utf-8", "replace")[-200:]])

    # a Python crash, analysed, the signal from the core
    p, expect = crash_python(fx, st)
    if not tap.ok(expect is not None, "pystackd: the child is ready"):
        return
    os.kill(p.pid, signal.SIGSEGV)
    reap(fx, p)
    row, rows = st.wait_row(lambda r: r["pid"] == p.pid and r["state"] in ("done", "failed") and
                            r["core_state"] != "capturing")
    tap.ok(row and row["state"] == "done" and row["core_state"] == "present" and row["signal"] == 11,
           "pystackd: a Python crash through the socket is captured, analysed, and its signal (11) read "
           "from the core", [pf.brief(r) for r in rows] + d.log_tail(5))

    # the listener SIGKILLed in the middle of a large core
    listener = listener_of(d)
    p, expect = crash_python(fx, st, "fill", ["300"])
    if not tap.ok(listener and expect is not None, "pystackd: the listener (%s) and a 300 MiB child" % listener):
        return
    os.kill(p.pid, signal.SIGSEGV)
    taking = wait_for(lambda: any(pid != listener for pid in corepattern.handler_pids(st.handler_needle())), 20)
    # its process keeps no privilege once it decided to keep the crash: none while it takes the core
    caps = {}

    def dropped():
        for pid in corepattern.handler_pids(st.handler_needle()):
            try:
                f = corepattern.status(pid)
            except OSError:
                continue
            caps[pid] = (f.get("CapEff", ""), f.get("CapPrm", ""), f.get("NoNewPrivs", ""))
            if caps[pid] == ("0000000000000000", "0000000000000000", "1"):
                return True
        return False
    unprivileged = wait_for(dropped, 10)
    with open("/proc/%d/stat" % listener) as fh:
        daemon_pid = int(fh.read().rsplit(")", 1)[1].split()[1])
    os.kill(listener, signal.SIGKILL)
    back = wait_for(lambda: pattern() == pipe, 5)
    # a crash while it is down: the pipe handler's.  pystackd starts a new listener 1 s after
    # the old one died: it is held stopped until this crash has been taken
    down = pattern() == pipe
    os.kill(daemon_pid, signal.SIGSTOP)
    try:
        p2, _ = crash_python(fx, st)
        os.kill(p2.pid, signal.SIGSEGV)
        reap(fx, p2)
    finally:
        os.kill(daemon_pid, signal.SIGCONT)
    rc = reap(fx, p)
    big, rows = st.wait_row(lambda r: r["pid"] == p.pid and r["state"] in ("done", "failed") and
                            r["core_state"] != "capturing", 180)
    tap.ok(unprivileged, "pystackd: the connection's process takes the core without capabilities (CapEff and "
           "CapPrm 0, NoNewPrivs 1)", ["%r" % caps])
    tap.ok(taking and back and big and big["core_state"] == "present" and big["core_size"] > 300 << 20 and
           big["state"] == "done",
           "pystackd: the listener killed while a 300 MiB core is taken: its process finishes it (%s bytes), "
           "and pystackd puts the pipe pattern back at once" % (big and big["core_size"]),
           ["taking %r, pattern back %r (%r), exit %r" % (taking, back, pattern(), rc)] +
           [pf.brief(r) for r in rows] + d.log_tail(6))

    row, rows = st.wait_row(lambda r: r["pid"] == p2.pid and r["core_state"] != "capturing")
    restarted = wait_for(lambda: pattern() == "@@" + sock and listener_of(d) not in (None, listener), 10)
    tap.ok(down and row and row["signal"] == 11 and row["core_state"] == "present" and restarted,
           "pystackd: a crash while the listener is down goes to the pipe handler (signal from its "
           "arguments); the listener is back within seconds", [pf.brief(r) for r in rows] + d.log_tail(4))

    # pystackd killed: its listener gives the pattern back and goes
    listener = listener_of(d)
    d.kill()
    gone = wait_for(lambda: not os.path.exists("/proc/%d" % listener) if listener else False, 10)
    tap.ok(listener and gone and pattern() == pipe,
           "pystackd SIGKILLed: its listener puts the pipe pattern back and exits", [pattern()])

    # pystackd stopped: the same
    d = st.daemon(jd)
    up = d.start() and pattern() == "@@" + sock
    listener = listener_of(d)
    d.stop()
    tap.ok(up and listener and not os.path.exists("/proc/%d" % listener) and pattern() == pipe,
           "pystackd stopped: the listener is gone and the pipe pattern back", [pattern()] + d.log_tail(4))


def main():
    tap = TAP()
    case_cli(tap)
    if os.geteuid() != 0:
        return tap.skip_all("not root: core_pattern cannot be changed")
    missing = pf.socket_missing()
    if missing:
        tap.skip("socket capture: %s" % missing)
        return tap.done()
    jd = None
    try:
        with corepattern.PipeHandlerFixture(pipe_limit=16) as fx:
            os.chmod(fx.root, 0o711)
            case_not_ours(tap, fx)
            case_nobody(tap, fx)
            case_activated(tap, fx)
            jd = pf.Journald(os.path.join(fx.root, "journald.log"))
            if tap.ok(jd.start(), "a journald to write to", [jd.error or ""]):
                try:
                    case_pystackd(tap, fx, jd)
                finally:
                    pf.cleanup_processes()
    finally:
        if jd:
            jd.stop()
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
