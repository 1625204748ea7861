#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: crashes analysed with the files the crashed process really ran,
which the handler keeps at the crash (KeepBinaries=, issue 13).

Run as root from the build directory (after `make`):

    /usr/bin/python3 ../tests/integration/test_binaries.py

With the real kernel handler (core_pattern under harness/corepattern.py's
lock, restored on every exit path) and pystackd:

 1 a container: Debian sid's python3.14 in its own PID, mount, UTS and IPC
   namespaces, chrooted in the sid tree (unshare + chroot, in a cgroup named
   as Docker's systemd driver names a container's), and again under
   bubblewrap; the script is not PID 1.  The host has no such interpreter at
   that path (or another build): the analysis is done, with the Python
   frames and the container's own libc (its build-id, not the host's).  The
   source lines are the container's: its script is a link, absolute, to a
   file in its /tmp, and the host has a different file at both paths (read
   on the host, or through the link followed on the host, the report would
   show those).  The container's id is recorded, shown by `pystackctl
   info`, matched by `list CONTAINER=`, and in the journal entry.  A
   container's crash while pystackd is down (no handle on its root reaches
   the analysis): frames without source lines, never the host's files'.
 2 a library replaced on disk and one deleted between the crash and the
   analysis (pystackd stopped meanwhile): the native frames name the
   crash-time functions.
 3 a second crash of the same program stores no new file.

Environment: PYSTACK_SID_TREE (the debootstrap tree; tests/sid-tree makes
it), PYSTACKD, PYSTACK_COREDUMP, PYSTACK (harness/programs.py).  Missing
tools or trees are skipped with the reason.
"""
import os
import shutil
import subprocess
import sys
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cores  # noqa: E402
import pystackd_fixture as pf  # noqa: E402
import store_fixture as sf  # noqa: E402
from harness import corepattern, programs  # noqa: E402
from harness.tap import TAP  # noqa: E402

ANALYSE_TIMEOUT = 120

CRASH_SCRIPT = r'''
import os, signal
def crash_here(n):
    os.kill(os.getpid(), signal.SIGSEGV)
crash_here(1)
'''
CRASH_LINE = "os.kill(os.getpid(), signal.SIGSEGV)"
DECOY = "import sys\ndef decoy():\n    pass\n    HOST_FILE_NOT_THE_CONTAINERS = 1\ndecoy()\n"
CGROUP2 = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified/") else "/sys/fs/cgroup"


def docker_like_cgroup():
    """A cgroup v2 directory named as Docker's systemd driver names a container's: (dir, id) or
    (None, why)."""
    cid = os.urandom(32).hex()
    d = os.path.join(CGROUP2, "system.slice", "docker-%s.scope" % cid)
    try:
        os.makedirs(d)
        return d, cid
    except OSError as e:
        return None, "cannot make a cgroup under %s: %s" % (CGROUP2, e)


def remove_cgroup(d):
    for _ in range(50):
        try:
            os.rmdir(d)
            break
        except OSError:
            time.sleep(0.1)     # its last process is still leaving
    try:
        os.rmdir(os.path.dirname(d))
    except OSError:
        pass                    # not empty, or not ours to remove


def module_build_id(rep, suffix):
    for m in rep.get("modules", []):
        if (m.get("path") or "").endswith(suffix):
            return m.get("build_id")
    return None


def container_case(tap, fx, jd, sid, how, daemon_down=False):
    """daemon_down: pystackd is started after the crash, so no handle on the container's root
    reaches it: the report must have no source lines rather than the host's."""
    label = how + (" (pystackd down at the crash)" if daemon_down else "")
    st = pf.Store(fx, "c-" + how[:2] + ("d" if daemon_down else ""), analysis="Workers=1")
    st.install()
    d = st.daemon(jd)
    if not daemon_down and not tap.ok(d.start(), "%s: pystackd starts" % how, d.log_tail()):
        return
    # the script, by an absolute link inside the container; the host's files of those names differ
    tag = "pystackd-src-%d-%s" % (os.getpid(), how)
    link, target = "/tmp/%s.py" % tag, "/tmp/%s-real.py" % tag
    made = [os.path.join(sid, link[1:]), os.path.join(sid, target[1:]), link, target]
    with open(made[1], "w") as fh:
        fh.write(CRASH_SCRIPT.lstrip("\n"))
    os.chmod(made[1], 0o644)
    os.symlink(target, made[0])
    for host in (link, target):
        with open(host, "w") as fh:
            fh.write(DECOY)
        os.chmod(host, 0o644)
    cgroup, cid = (None, None)
    try:
        inner = ["/bin/sh", "-c", "/usr/bin/python3.14 \"$0\"; exit 0", link]
        if how == "unshare":
            cgroup, cid = docker_like_cgroup()
            if not cgroup:
                tap.skip("unshare: a container's cgroup: %s" % cid)
                cid = None
            enter = ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && shift && exec "$@"', cgroup, "x"] \
                if cgroup else []
            argv = enter + ["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc",
                            "--mount-proc=" + sid + "/proc", "--", "chroot", sid] + inner
        else:
            argv = ["bwrap", "--bind", sid, "/", "--proc", "/proc", "--dev", "/dev", "--unshare-pid",
                    "--unshare-uts", "--unshare-ipc", "--hostname", "crashbox", "--"] + inner
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        if daemon_down:
            st.wait(lambda rs: any(r["core_state"] == "present" for r in rs), ANALYSE_TIMEOUT)
            if not tap.ok(d.start(), "%s: pystackd starts after the crash" % label, d.log_tail()):
                return
        row, rows = st.wait_row(lambda r: r["state"] in ("done", "failed") and
                             (r["exe"] or "").endswith("python3.14"))
        dd = ["exit %r, stderr %r" % (p.returncode, p.stderr[-300:])] + [pf.brief(r) for r in rows] + \
            d.log_tail(5)
        if not tap.ok(row and row["state"] == "done",
                      "%s: a container's python3.14 crash is analysed by the host's pystackd" % label, dd):
            return
        rep = st.report_of(row["id"])
        sources = [(f.get("function"), f.get("source")) for t in rep.get("threads", [])[:1]
                   for f in t.get("frames", []) if f.get("kind") == "python"]
        if daemon_down:
            tap.ok(sources and all(src is None for _, src in sources) and
                   any(fn == "crash_here" for fn, _ in sources),
                   "%s: its Python frames without source lines, never the host's files'" % label,
                   ["python frames (function, source) %r" % sources])
            return
        py = pf.frames_of(rep, "python")
        tap.ok("crash_here" in py and "<module>" in py, "%s: its Python frames (crash_here)" % how,
               ["python frames %r" % py])
        want = sf.elf_build_id(os.path.join(sid, "usr/lib/x86_64-linux-gnu/libc.so.6"))
        got = module_build_id(rep, "/libc.so.6")
        host = sf.elf_build_id("/usr/lib/x86_64-linux-gnu/libc.so.6")
        tap.ok(want and got == want and got != host,
               "%s: the analysis used the container's libc (build-id %s, the host's %s)" % (how, got, host),
               ["report's libc %r, the tree's %r" % (got, want)])
        native = pf.frames_of(rep, "native")
        tap.ok(any(n and ("kill" in n or "raise" in n) for n in native),
               "%s: native frames from the container's libc name the syscall wrapper" % how,
               ["native frames %r" % native[:12]])
        kept = st.query("SELECT path, hash FROM crash_binaries WHERE crash_id = ? AND hash IS NOT NULL",
                        (row["id"],))
        # the path /proc shows the handler: the container's own after pivot_root (bwrap), the host's
        # path into the tree under a plain chroot; the analysis matches files by address either way
        want_path = "/usr/bin/python3.14" if how == "bwrap" else os.path.join(sid, "usr/bin/python3.14")
        tap.ok(any(k["path"] == want_path for k in kept),
               "%s: the interpreter was kept, recorded as %s" % (how, want_path),
               ["kept %r" % [k["path"] for k in kept]])
        tap.ok(("crash_here", CRASH_LINE) in sources,
               "%s: the source line is the container's file's, through its own link" % how,
               ["python frames (function, source) %r" % sources])
        tap.ok(not any("HOST_FILE" in (src or "") or "decoy" in (src or "") for _, src in sources),
               "%s: no line of the host's files of the same names" % how, ["%r" % sources])
        if not cid:
            tap.ok(row["container"] == 1 and row["container_id"] is None and
                   (how != "bwrap" or row["hostname"] == "crashbox"),
                   "%s: recorded as a container, with no id (its cgroup names none), and the hostname it saw" % how,
                   ["container %r, id %r, hostname %r" % (row["container"], row["container_id"], row["hostname"])])
            return
        tap.ok(row["container_runtime"] == "docker" and row["container_id"] == cid,
               "%s: the container's runtime and id from its cgroup (docker %s...)" % (how, cid[:12]),
               ["row: %r %r" % (row["container_runtime"], row["container_id"])])
        ctl = [programs.pystackctl(), "--config=%s" % st.conf, "--no-pager"]
        out = subprocess.run(ctl + ["info", "ID=%d" % row["id"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=60).stdout.decode("utf-8", "replace")
        tap.ok("Container: docker %s" % cid in out, "%s: pystackctl info shows it" % how,
               out.splitlines()[:20])
        found = subprocess.run(ctl + ["list", "--no-legend", "CONTAINER=" + cid[:12]], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
        other = subprocess.run(ctl + ["list", "--no-legend", "CONTAINER=" + cid[1:13]], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
        tap.ok(found.returncode == 0 and len(found.stdout.splitlines()) == 1 and
               str(row["id"]).encode() in found.stdout and other.returncode != 0,
               "%s: list CONTAINER=<12 digits> finds it, and not by a part from the middle" % how,
               ["found %r %r" % (found.returncode, found.stdout[-300:]),
                "middle %r %r" % (other.returncode, other.stdout[-300:])])
        ents = jd.wait_entries(lambda e: e.get("PYSTACK_CRASH_ID") == str(row["id"]) and
                               e.get("PYSTACK_CONTAINER_ID") == cid, timeout=30,
                               matches=("PYSTACK_CRASH_ID=%d" % row["id"],))
        tap.ok(ents and ents[0].get("PYSTACK_CONTAINER_RUNTIME") == "docker",
               "%s: the journal entry has PYSTACK_CONTAINER_ID and _RUNTIME" % how,
               ["entries %r" % [{k: v for k, v in e.items() if k.startswith("PYSTACK_C")} for e in ents]])
    finally:
        d.stop()
        for m in made:
            try:
                os.unlink(m)
            except OSError:
                pass
        if cgroup:
            remove_cgroup(cgroup)


LIB_C = r'''
#include <signal.h>
#include <unistd.h>
int %(name)s(int n) { kill(getpid(), SIGSEGV); return n; }
'''


def replaced_case(tap, fx, jd):
    gcc = shutil.which("gcc")
    if not gcc:
        tap.skip("replaced libraries: gcc is not installed")
        return
    st = pf.Store(fx, "r", analysis="Workers=1")
    st.install()
    libdir = os.path.join(st.dir, "lib")
    os.mkdir(libdir)
    os.chmod(libdir, 0o755)

    def build(name, func):
        src = os.path.join(libdir, name + ".c")
        with open(src, "w") as fh:
            fh.write(LIB_C % {"name": func})
        so = os.path.join(libdir, name + ".so")
        tmp = so + ".new"
        subprocess.run([gcc, "-shared", "-fPIC", "-g", "-O0", "-o", tmp, src], check=True)
        os.chmod(tmp, 0o755)
        os.rename(tmp, so)
        return so
    lib_r = build("libreplaced", "crash_in_original")
    lib_d = build("libdeleted", "crash_in_deleted")
    script = (("import ctypes\nd = ctypes.CDLL(%r)\nr = ctypes.CDLL(%r)\n"
               "r.crash_in_original(1) if %r else d.crash_in_deleted(1)\n"))
    # pystackd is down: the analyses come after the files changed
    for which in (True, False):
        subprocess.run([pf.SYSTEM_PYTHON, "-c", script % (lib_d, lib_r, which)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    ok, rows = st.wait(lambda rs: len(rs) == 2 and all(r["core_state"] == "present" for r in rs), 60)
    if not tap.ok(ok, "replaced libraries: two crashes recorded with pystackd down",
                  [pf.brief(r) for r in rows]):
        return
    build("libreplaced", "something_else_now")
    os.unlink(lib_d)
    d = st.daemon(jd)
    if not tap.ok(d.start(), "replaced libraries: pystackd starts", d.log_tail()):
        return
    ok, rows = st.wait_settled(2, ANALYSE_TIMEOUT)
    for want in ("crash_in_original", "crash_in_deleted"):
        got = None
        for r in rows:
            rep = st.report_of(r["id"]) if r["state"] == "done" else None
            if rep and want in pf.frames_of(rep, "native"):
                got = r
        tap.ok(got is not None, "replaced libraries: the frame %s() from the crash-time file%s"
               % (want, " (replaced since)" if "original" in want else " (deleted since)"),
               [pf.brief(r) for r in rows] + d.log_tail(5))
    # the same program again: nothing new stored
    n_files = st.query("SELECT count(*) AS n FROM binaries")[0]["n"]
    size_before = sum(os.path.getsize(os.path.join(st.storage, "binaries", f))
                      for f in os.listdir(os.path.join(st.storage, "binaries")))
    subprocess.run([pf.SYSTEM_PYTHON, "-c", "import ctypes\nctypes.CDLL(%r).something_else_now(1)\n" % lib_r],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    ok, rows = st.wait_settled(3, ANALYSE_TIMEOUT)
    n_after = st.query("SELECT count(*) AS n FROM binaries")[0]["n"]
    size_after = sum(os.path.getsize(os.path.join(st.storage, "binaries", f))
                     for f in os.listdir(os.path.join(st.storage, "binaries")))
    tap.diag("binaries/: %d files, %d bytes after two crashes; %d files, %d bytes after the third"
             % (n_files, size_before, n_after, size_after))
    tap.ok(ok and n_after == n_files + 1 and size_after - size_before == os.path.getsize(lib_r),
           "a third crash of the same program stores only the one file not kept before (the rebuilt library)",
           ["files %d -> %d, bytes %d -> %d" % (n_files, n_after, size_before, size_after)])
    d.stop()


def main():
    tap = TAP()
    if os.geteuid() != 0:
        return tap.skip_all("not root: core_pattern cannot be changed")
    if pf.SOCKET and pf.socket_missing():
        return tap.skip_all("socket mode: %s" % pf.socket_missing())
    for what, p in (("pystackd", programs.pystackd()), ("pystack-coredump", programs.coredump())):
        if not os.access(p, os.X_OK):
            tap.ok(False, "%s %s is built" % (what, p))
            return tap.done()
    sid, why_not = cores.sid_tree()
    jd = None
    try:
        with corepattern.PipeHandlerFixture(pipe_limit=16) as fx:
            os.chmod(fx.root, 0o711)
            jd = pf.Journald(os.path.join(fx.root, "journald.log"))
            if not tap.ok(jd.start(), "a journald to write to", [jd.error or ""]):
                return tap.done()
            cases = []
            if sid and os.access(os.path.join(sid, "usr/bin/python3.14"), os.X_OK):
                cases.append(("unshare", lambda: container_case(tap, fx, jd, sid, "unshare")))
                if shutil.which("bwrap"):
                    cases.append(("bwrap", lambda: container_case(tap, fx, jd, sid, "bwrap")))
                    cases.append(("bwrap-down", lambda: container_case(tap, fx, jd, sid, "bwrap", True)))
                else:
                    tap.skip("bwrap: not installed (Debian package bubblewrap)")
            else:
                tap.skip("containers: no Debian sid tree with python3.14 (%s)" % (why_not or "no python3.14 in it"))
            cases.append(("replaced", lambda: replaced_case(tap, fx, jd)))
            for name, fn in cases:
                try:
                    fn()
                except Exception:
                    tap.ok(False, "%s: the harness" % name, traceback.format_exc().splitlines())
                finally:
                    fx.reset_pattern()
                    pf.stop_started(keep=jd.proc)    # this case's pystackds, not the journald
            jd.stop()
    finally:
        pf.cleanup_processes()
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
