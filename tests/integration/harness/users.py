# -*- coding: utf-8 -*-
"""Unprivileged users for tests, created with useradd and removed with
userdel on every exit path.

Each test names its users and gives them a GECOS marker of its own: a user
of that name that carries the marker was left by a killed run and is
removed first; one without it is never touched (create() refuses).  Before
userdel, every process still running as the user is SIGKILLed.

    with TestUsers("pysd-h", "pystackd hardening test user") as users:
        pw = users.create("1")                 # user pysd-h1
        subprocess.run(as_user(pw) + ["id"])   # setpriv ... -- id

create_user()/remove_user() do the same for one user by its full name.
"""
import atexit
import os
import pwd
import signal
import subprocess
import sys


def log(msg):
    sys.stderr.write("harness.users: %s\n" % msg)
    sys.stderr.flush()


def ours(name, gecos):
    """The pwd entry of `name` when it carries `gecos`; None when there is
    no such user; False when there is one that is not ours."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return None
    return pw if pw.pw_gecos == gecos else False


def remove_user(name, gecos):
    """Remove `name` (and its group) when it carries `gecos`.  True when it
    is gone, False when it is not ours or userdel failed."""
    pw = ours(name, gecos)
    if not pw:
        return pw is None
    # nothing of theirs may still run (a crashed helper, a stuck child)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.stat("/proc/" + d).st_uid == pw.pw_uid:
                os.kill(int(d), signal.SIGKILL)
        except OSError:
            pass
    r = subprocess.run(["userdel", name], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    subprocess.run(["groupdel", name], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=30)
    if r.returncode != 0:
        log("userdel %s: %s" % (name, r.stdout.decode().strip()))
    return r.returncode == 0


def create_user(name, gecos):
    """A system user `name` with its own group, no home and no shell,
    marked with `gecos`; one of ours left by a killed run is removed first.
    Returns its pwd entry."""
    pw = ours(name, gecos)
    if pw is False:
        raise RuntimeError("a user %s exists that this test did not "
                           "create" % name)
    if pw:
        remove_user(name, gecos)
    r = subprocess.run(["useradd", "--system", "--user-group",
                        "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", "--comment",
                        gecos, name],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("useradd: " + r.stdout.decode().strip())
    return pwd.getpwnam(name)


def remove_leftover_users(prefix, gecos):
    """Users whose name starts with `prefix` and that carry `gecos`."""
    with open("/etc/passwd") as fh:
        for line in fh:
            f = line.split(":")
            if len(f) > 4 and f[0].startswith(prefix) and f[4] == gecos:
                log("removing user %s left by a killed run" % f[0])
                remove_user(f[0], gecos)


class TestUsers(object):
    """Users named prefix+suffix, removed at the end of the `with` block,
    at exit, and (install remove_all() in a signal handler) on a signal."""

    def __init__(self, prefix, gecos):
        self.prefix = prefix
        self.gecos = gecos
        self.names = []

    def create(self, suffix):
        name = self.prefix + suffix
        pw = create_user(name, self.gecos)
        self.names.append(name)
        return pw

    def remove_all(self):
        ok = True
        for n in list(self.names):
            if remove_user(n, self.gecos):
                self.names.remove(n)
            else:
                ok = False
        return ok

    def __enter__(self):
        remove_leftover_users(self.prefix, self.gecos)
        atexit.register(self.remove_all)
        return self

    def __exit__(self, *exc):
        self.remove_all()
        return False


def as_user(pw):
    """The command prefix that runs a command as `pw` (setpriv)."""
    return ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
            "--init-groups", "--"]
