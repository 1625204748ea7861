#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: the analysis child's sandbox (daemon/common/sandbox.c, run_analyzer() in
daemon/pystackd/analysis.c), with a real pystackd and real crashes.

Run as root from the build directory (after `make`):

    /usr/bin/python3 ../tests/integration/test_sandbox.py

Environment: PYSTACKD, PYSTACK_COREDUMP, PYSTACK (harness/programs.py),
PYSTACK_TEST_ONLY (regular expression over "nonet", "debuginfod", "real"),
PYSTACK_CAPTURE_KEEP=1 (keep /tmp/pystackd-incoming.*).

A probe "analyzer" (a small C program this test compiles, named by the
config's Analyzer= key) is run by pystackd in place of pystack for a crash
of Debian's python3.11 run by root (so the analysis runs as User=, with the
debug cache).  It tries, one after the other, what a hostile core that took
over the analyzer would try, writes what each attempt gave into its debug
cache (the one place it may write), sleeps 1.5 s (while this test looks at
it from outside: /proc/PID/status and its namespaces), then makes a
forbidden system call (ptrace).  Each check names the boundary it shows;
each fails in a build without that boundary (each was tried, see
SECURITY.md):

  nonet       no DEBUGINFOD_URLS: the analyzer runs as User= (not root),
              with no_new_privs and a seccomp filter (/proc/PID/status), in
              its own mount and network namespaces; the storage directory
              is an empty directory, the runtime directory has no sockets,
              /proc, /dev/shm and /run show nothing (a file planted in /run
              is not there), a root-only file is unreadable (uid), nothing
              can be written outside its cache (a 0777 directory, /tmp),
              its cache is writable; /dev/null cannot be ioctl'd (Landlock);
              the ptrace call kills it: the crash is failed with "the
              analyzer was stopped by its sandbox: a forbidden system call
              (SIGSYS)", in the store, pystackd's log and the journal
              entry, within seconds, after one attempt, and no analysis is
              left running
  debuginfod  DEBUGINFOD_URLS=http://127.0.0.1:P in pystackd's environment:
              the network namespace is the host's, TCP connect to P works,
              to another listening port is refused (Landlock), an abstract
              UNIX socket outside the sandbox cannot be reached (Landlock
              scope); the ptrace call still kills it
  real        the real analyzer under the same sandbox, with and without
              DEBUGINFOD_URLS (a server answering 404): the crash is
              analysed, with worker.py's source line (under /tmp, which the
              view keeps)
"""
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import atexit

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import corepattern, programs  # noqa: E402
from harness.tap import TAP, Watchdog, run_case, watchdog  # noqa: E402
import pystackd_fixture as pf  # noqa: E402

SANDBOX_ERROR = "the analyzer was stopped by its sandbox: a forbidden system call (SIGSYS)"

PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static char results[8192];
static size_t used;

static void rec(const char *name, int r) {
        used += snprintf(results + used, sizeof(results) - used, "%s %s\n", name,
                         r >= 0 ? "ok" : strerrorname_np(-r));
}

static int try_open(const char *path, int flags) {
        int fd = open(path, flags | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        close(fd);
        return 0;
}

static int try_stat(const char *path) {
        struct stat st;
        return stat(path, &st) < 0 ? -errno : 0;
}

static int try_tcp(int port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(0x7f000001) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r = 0;
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                r = -errno;
        close(fd);
        return r;
}

static int try_abstract(const char *name) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t n = strlen(name);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r = 0;
        if (fd < 0)
                return -errno;
        memcpy(sa.sun_path + 1, name, n);
        if (connect(fd, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + 1 + n) < 0)
                r = -errno;
        close(fd);
        return r;
}

int main(void) {
        const char *cache = getenv("PYSTACK_CACHE_DIR");
        char path[4096], tmp[4096];
        int r, fd;

        used += snprintf(results + used, sizeof(results) - used, "uid %d\n", (int)geteuid());
        rec("store_db", try_open(STORE "/pystack.db", O_RDONLY));
        rec("store_cores", try_stat(STORE "/cores"));
        rec("runtime_notify", try_stat(RUNTIME "/notify"));
        rec("proc_1", try_stat("/proc/1"));
        rec("run_secret", try_open(RUN_SECRET, O_RDONLY));
        rec("root_only", try_open(ROOT_ONLY, O_RDONLY));
        rec("tmp_source", try_open(TMP_SOURCE, O_RDONLY));
        snprintf(path, sizeof(path), "%s/probe-%d", WDIR, (int)getpid());
        rec("write_0777_dir", try_open(path, O_WRONLY | O_CREAT | O_EXCL));
        snprintf(path, sizeof(path), "/tmp/pystackd-probe-%d", (int)getpid());
        rec("write_tmp", try_open(path, O_WRONLY | O_CREAT | O_EXCL));
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                rec("dev_null_ioctl", -errno);
        else {
                struct termios t;
                rec("dev_null_ioctl", ioctl(fd, TCGETS, &t) < 0 ? -errno : 0);
                close(fd);
        }
#ifdef PORT_OK
        rec("tcp_allowed_port", try_tcp(PORT_OK));
        rec("tcp_other_port", try_tcp(PORT_OTHER));
        rec("abstract_socket", try_abstract(ABSTRACT));
#endif
        if (!cache || !*cache)
                return 5;
        snprintf(path, sizeof(path), "%s/probe-results", cache);
        snprintf(tmp, sizeof(tmp), "%s/probe-results.tmp", cache);
        rec("write_cache", try_open(tmp, O_WRONLY | O_CREAT | O_TRUNC));
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, results, used) != (ssize_t)used || close(fd) < 0 || renameat(AT_FDCWD, tmp, AT_FDCWD, path) < 0)
                return 6;
        /* while the test looks at us from outside */
        nanosleep(&(struct timespec) { 1, 500000000 }, NULL);
        /* the forbidden call: the filter kills us here */
        r = (int)syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
        fprintf(stderr, "pystack: /dev/fd/3: the probe's ptrace returned %d (%s)\n", r, r < 0 ? strerrorname_np(errno) : "ok");
        return 4;
}
"""


def cc():
    return os.environ.get("CC") if os.environ.get("CC") and shutil.which(
        os.environ["CC"].split()[0]) else shutil.which("cc") or shutil.which("gcc")


def c_str(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def build_probe(st, name, defines):
    src = os.path.join(st.dir, name + ".c")
    exe = os.path.join(st.dir, name)
    with open(src, "w") as fh:
        fh.write(PROBE_C)
    # without the sanitizers: the probe is what the sandbox runs, LeakSanitizer's exit has no place in it
    cmd = [cc().split()[0], "-O1", "-o", exe, src] + ["-D%s=%s" % kv for kv in defines.items()]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if r.returncode == 0:
        os.chmod(exe, 0o755)
    return r.returncode == 0, r.stdout.decode(errors="replace"), exe


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


class NotFound(http.server.BaseHTTPRequestHandler):
    """A debuginfod that has nothing: every request is answered 404 at once."""
    def do_GET(self):
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def landlock_abi():
    """The kernel's Landlock ABI (0: none), as pystackd reads it."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(444, None, 0, 1)       # landlock_create_ruleset(NULL, 0, VERSION), x86-64 and aarch64
    return r if r > 0 else 0


def ns(pid, kind):
    try:
        return os.readlink("/proc/%d/ns/%s" % (pid, kind))
    except OSError:
        return None


def status_fields(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        pass
    return out


def watch_probe(d, seconds=15):
    """The probe's pid, status and namespaces while it sleeps (by its executable: on older kernels a
    program exec'd through a descriptor has the descriptor's number as its comm)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        for pid in d.children():
            try:
                exe = os.readlink("/proc/%d/exe" % pid)
            except OSError:
                continue
            if os.path.basename(exe) == "probe":
                f = status_fields(pid)
                return pid, f, ns(pid, "mnt"), ns(pid, "net")
        time.sleep(0.01)
    return None, {}, None, None


def read_results(st):
    path = os.path.join(st.runtime, "debug-cache", "probe-results")
    res = {}
    try:
        with open(path) as fh:
            for line in fh:
                k, _, v = line.strip().partition(" ")
                res[k] = v
    except OSError:
        pass
    return res


def expect(tap, res, name, want, what):
    got = res.get(name)
    ok = got in want if isinstance(want, tuple) else got == want
    tap.ok(ok, "%s: %s (%s)" % (what[0], what[1], got), ["expected %r, got %r" % (want, got),
                                                         "all results %r" % res])


def probe_case(tap, fx, jd, label, net):
    st = pf.Store(fx, label, analysis="Workers=1\nTimeoutSec=60\nMaxAttempts=3")
    wdir = os.path.join(st.dir, "world-writable")
    os.mkdir(wdir)
    os.chmod(wdir, 0o777)
    root_only = os.path.join(st.dir, "root-only")
    with open(root_only, "w") as fh:
        fh.write("secret\n")
    os.chmod(root_only, 0o600)
    run_secret = "/run/pystackd-sandbox-test.%d" % os.getpid()
    with open(run_secret, "w") as fh:
        fh.write("secret\n")
    os.chmod(run_secret, 0o644)
    fx.cleanup_paths = getattr(fx, "cleanup_paths", []) + [run_secret]
    tmp_source = pf.write_worker(st.dir)
    defines = {"STORE": c_str(st.storage), "RUNTIME": c_str(st.runtime), "RUN_SECRET": c_str(run_secret),
               "ROOT_ONLY": c_str(root_only), "TMP_SOURCE": c_str(tmp_source), "WDIR": c_str(wdir)}
    socks = []
    env_before = os.environ.get("DEBUGINFOD_URLS")
    abstract = None
    try:
        if net:
            ok_sock, other_sock = listener(), listener()
            socks += [ok_sock, other_sock]
            abstract = "pystackd-sandbox-test.%d" % os.getpid()
            a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            a.bind("\0" + abstract)
            a.listen(4)
            socks.append(a)
            port_ok, port_other = ok_sock.getsockname()[1], other_sock.getsockname()[1]
            defines.update({"PORT_OK": str(port_ok), "PORT_OTHER": str(port_other), "ABSTRACT": c_str(abstract)})
            os.environ["DEBUGINFOD_URLS"] = "http://127.0.0.1:%d" % port_ok
        else:
            os.environ.pop("DEBUGINFOD_URLS", None)
        ok, out, exe = build_probe(st, "probe", defines)
        if not tap.ok(ok, "%s: the probe analyzer compiles" % label, out.splitlines()):
            return
        st.write_conf(analysis="Workers=1\nTimeoutSec=60\nMaxAttempts=3", analyzer=exe)
        st.install()
        d = st.daemon(jd)
        if not tap.ok(d.start(), "%s: pystackd starts with the probe as its analyzer" % label, d.log_tail()):
            return
        # the store's and runtime directory's contents exist (the probe must not see them)
        ws, diag = pf.crash_many(fx, st, 1, tag=label)
        t0 = time.time()
        pid, status, mnt, netns = watch_probe(d)
        ok, rows = st.wait(lambda rs: rs and rs[0]["state"] in ("done", "failed"), 60)
        took = time.time() - t0
        row = rows[0] if rows else {}
        res = read_results(st)
        dpid = d.pid
        tap.ok(pid is not None, "%s: the probe ran as pystackd's child (pid %r)" % (label, pid), diag)

        # outside view: privileges, filter, namespaces
        tap.ok(status.get("Uid", "0").split()[0] != "0" and res.get("uid") not in (None, "0"),
               "%s: privilege drop: the analysis runs as User=, not root (Uid %s)" % (label, status.get("Uid")),
               ["status %r" % status, "results %r" % res])
        tap.ok(status.get("NoNewPrivs") == "1", "%s: no_new_privs is set" % label, ["status %r" % status])
        tap.ok(status.get("Seccomp") == "2" and status.get("Seccomp_filters") == "1",
               "%s: seccomp filter: one filter installed (Seccomp %s)" % (label, status.get("Seccomp")),
               ["status %r" % status])
        tap.ok(mnt is not None and mnt != ns(dpid, "mnt"),
               "%s: mount namespace: its own (%s, pystackd's %s)" % (label, mnt, ns(dpid, "mnt")))
        if net:
            tap.ok(netns is not None and netns == ns(dpid, "net"),
                   "%s: network namespace: the host's, for debuginfod" % label, [netns, ns(dpid, "net")])
        else:
            tap.ok(netns is not None and netns != ns(dpid, "net"),
                   "%s: network namespace: its own, empty (%s, pystackd's %s)" % (label, netns, ns(dpid, "net")))

        # what it could reach
        B = "mount view"
        expect(tap, res, "store_db", "ENOENT", (label, "%s: the store's pystack.db is not there" % B))
        expect(tap, res, "store_cores", "ENOENT", (label, "%s: the stored cores are not there" % B))
        expect(tap, res, "runtime_notify", "ENOENT", (label, "%s: pystackd's sockets are not there" % B))
        expect(tap, res, "proc_1", "ENOENT", (label, "%s: /proc is empty" % B))
        expect(tap, res, "run_secret", "ENOENT", (label, "%s: a world-readable file in /run is not there" % B))
        expect(tap, res, "write_0777_dir", "EROFS", (label, "%s: a world-writable directory is read-only" % B))
        expect(tap, res, "write_tmp", "EROFS", (label, "%s: /tmp is read-only" % B))
        expect(tap, res, "tmp_source", "ok", (label, "%s: a source file under /tmp is readable" % B))
        expect(tap, res, "write_cache", "ok", (label, "%s: its debug cache is writable" % B))
        expect(tap, res, "root_only", "EACCES", (label, "privilege drop: a root-only 0600 file is unreadable"))
        abi = landlock_abi()
        if abi >= 5:
            expect(tap, res, "dev_null_ioctl", "EACCES", (label, "Landlock: no ioctl on a device (/dev/null)"))
        else:
            tap.skip("%s: Landlock ABI %d has no device ioctl rule (5)" % (label, abi))
        if net:
            expect(tap, res, "tcp_allowed_port", "ok", (label, "Landlock: TCP connect to DEBUGINFOD_URLS's port"))
            if abi >= 4:
                expect(tap, res, "tcp_other_port", "EACCES",
                       (label, "Landlock: TCP connect to another listening port is refused"))
            else:
                tap.skip("%s: Landlock ABI %d has no network rules (4)" % (label, abi))
            if abi >= 6:
                expect(tap, res, "abstract_socket", "EPERM",
                       (label, "Landlock: an abstract UNIX socket outside the sandbox is unreachable"))
            else:
                tap.skip("%s: Landlock ABI %d does not scope abstract sockets (6)" % (label, abi))

        # the forbidden call: a clear record, at once, no retry, nothing left running
        tap.ok(ok and row.get("state") == "failed" and row.get("error") == SANDBOX_ERROR and
               row.get("attempts") == 1 and took < 20,
               "%s: seccomp: a forbidden system call (ptrace) kills the analysis: failed after %r attempt "
               "in %.1fs, error %r" % (label, row.get("attempts"), took, row.get("error")),
               diag + [pf.brief(row) if row else "no row"] + d.log_tail(8))
        log = d.log()[d.log_start:]
        tap.ok("crash %s: analysis failed: %s" % (row.get("id"), SANDBOX_ERROR) in log,
               "%s: pystackd's log says so" % label, d.log_tail(8))
        if jd is not None:
            es = jd.wait_entries(lambda e: e.get("PYSTACK_CRASH_ID") == str(row.get("id")), timeout=20)
            tap.ok(es and es[-1].get("PYSTACK_ANALYSIS_ERROR") == SANDBOX_ERROR,
                   "%s: the journal entry says so (PYSTACK_ANALYSIS_ERROR)" % label,
                   [repr(e.get("PYSTACK_ANALYSIS_ERROR")) for e in es])
        tap.ok(not d.children() and d.alive(), "%s: no analysis left running; pystackd runs on" % label,
               ["children %r" % d.children()])
        rc = d.stop()
        tap.ok(rc == 0, "%s: pystackd stops (status 0)" % label, ["exit %r" % rc])
    finally:
        if env_before is None:
            os.environ.pop("DEBUGINFOD_URLS", None)
        else:
            os.environ["DEBUGINFOD_URLS"] = env_before
        for s in socks:
            s.close()
        try:
            os.unlink(run_secret)
        except OSError:
            pass


def real_case(tap, fx, jd):
    """The real analyzer, confined, with and without a debuginfod configured."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    env_before = os.environ.get("DEBUGINFOD_URLS")
    try:
        for label, urls in (("real", None), ("real-di", "http://127.0.0.1:%d" % srv.server_address[1])):
            if urls:
                os.environ["DEBUGINFOD_URLS"] = urls
            else:
                os.environ.pop("DEBUGINFOD_URLS", None)
            st = pf.Store(fx, label, analysis="Workers=1\nTimeoutSec=60")
            st.install()
            d = st.daemon(jd)
            if not tap.ok(d.start(), "%s: pystackd starts" % label, d.log_tail()):
                continue
            ws, diag = pf.crash_many(fx, st, 1, tag=label)
            ok, rows = st.wait(lambda rs: rs and rs[0]["state"] in ("done", "failed"), 90)
            row = rows[0] if rows else {}
            rep = st.report_of(row["id"]) if row.get("state") == "done" else {}
            src = "time.sleep(3600)" in json.dumps(rep or {})
            tap.ok(ok and row.get("state") == "done" and src,
                   "%s: the confined analyzer analyses a crash, with worker.py's source line (under /tmp)%s"
                   % (label, ", %s configured" % urls if urls else ""),
                   diag + [pf.brief(row) if row else "no row"] + d.log_tail(8))
            lg = d.log()[d.log_start:]
            want = "network for debuginfod only" if urls else "no network"
            m = re.search(r"analysis sandbox: ([^,]*), Landlock ABI (\d+), seccomp allow-list \S+ \((\d+) system calls\)",
                          lg)
            tap.ok(m and m.group(1) == want, "%s: pystackd logs its sandbox: %s" % (label, m.group(0) if m else None),
                   d.log_tail(8))
            rc = d.stop()
            tap.ok(rc == 0, "%s: pystackd stops (status 0)" % label, ["exit %r" % rc])
    finally:
        srv.shutdown()
        srv.server_close()
        if env_before is None:
            os.environ.pop("DEBUGINFOD_URLS", None)
        else:
            os.environ["DEBUGINFOD_URLS"] = env_before


def main():
    tap = TAP()
    only = os.environ.get("PYSTACK_TEST_ONLY")
    rx = re.compile(only) if only else None
    cases = [("nonet", lambda t, f, j: probe_case(t, f, j, "nonet", False)),
             ("debuginfod", lambda t, f, j: probe_case(t, f, j, "di", True)),
             ("real", real_case)]
    cases = [c for c in cases if rx is None or rx.search(c[0])]
    if os.geteuid() != 0:
        tap.skip_all("not root: core_pattern cannot be changed")
        return tap.done()
    for what, p in (("pystackd", programs.pystackd()), ("pystack-coredump", programs.coredump()),
                    ("the analyzer", programs.daemon_analyzer())):
        if not os.access(p, os.X_OK):
            tap.ok(False, "%s %s is built" % (what, p))
            return tap.done()
    if not cc():
        tap.skip_all("no C compiler for the probe")
        return tap.done()
    if not os.access(pf.SYSTEM_PYTHON, os.X_OK):
        tap.skip_all("%s not installed" % pf.SYSTEM_PYTHON)
        return tap.done()
    atexit.register(pf.cleanup_processes)
    alarm = watchdog(int(os.environ.get("PYSTACKD_TEST_TIMEOUT", "600")))
    jd = None
    scratch = []
    try:
        with corepattern.PipeHandlerFixture(pipe_limit=64) as fx:
            os.chmod(fx.root, 0o711)
            scratch.append(fx.root)
            jd = pf.Journald(os.path.join(fx.root, "journald.log"))
            if not tap.ok(jd.start(), "a journald to write to: %s" % (jd.describe() if not jd.error else jd.error),
                          [jd.error or ""]):
                return tap.done()
            for name, fn in cases:
                # this case's pystackds are stopped after it, not the journald
                run_case(tap, fx, name, lambda: fn(tap, fx, jd), cleanup=lambda: pf.stop_started(keep=jd.proc))
            jd.stop()
    except Watchdog as e:
        tap.ok(False, "the test finished in time", [str(e)])
    finally:
        alarm.cancel()
        pf.cleanup_processes()
    left = [p.pid for p in pf.STARTED if p.poll() is None]
    mine = scratch[0] if scratch else corepattern.SCRATCH_PREFIX
    tap.ok(not corepattern.mounts_below(mine) and not left,
           "no mounts below the scratch directory, no pystackd/journald left", ["left %r" % left])
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
