#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""TAP test: asyncio task trees (`pystack core --tasks`, `pystack remote
--tasks`), issue 15.

For Debian sid's CPython 3.14 and 3.15 (chrooted in their tree), a program
runs a dozen tasks: two gathers of three workers each in a chain of awaits
(worker -> middle -> leaf -> asyncio.sleep), a task awaiting another task
directly, two tasks awaiting each other (a cycle: a deadlock asyncio
allows), and one nameless task whose name nobody asked for (CPython keeps
its number until then).  Just before the end, the running task records the
program's own picture: for every task, its coroutine stack
(`asyncio.capture_call_graph()`'s call_stack: function and line) and the
tasks awaiting it; for the two in the cycle, which capture_call_graph
cannot follow, the same read by hand (cr_frame / cr_await and
`_asyncio_awaited_by`).  Then it either aborts (a core, through a file
core_pattern) or blocks the loop (a live process).

 core   `pystack core --tasks --json`: every task of the picture with the
        same stack and the same awaiters; the running task marked as running
        in the crashing thread; the nameless one "Task-N"; the text report
        draws the tree, marks the cycle once and ends.
 hostile  the same core patched as a hostile process could leave it: a task
        list node whose next points at itself (a loop that never passes the
        head), a coroutine suspended awaiting itself: the read ends, the loop
        and the cycle are said, the tasks before them are listed.
 live   the same from the running process (`pystack remote --tasks`).
 many   13,000 tasks (52,000 frames): the report writes the frames of the
        first 50,000 only, and says so in each task it wrote none for; the
        text still draws every task.
 pystackd  the same program's crash, chrooted in the sid tree with its own
        pid and mount namespaces, through the real handler and pystackd
        (Tasks=yes, the default): the stored report has the tasks, and
        `pystackctl show --tasks` draws them (`show` alone does not).
 other  tasks that are not C tasks: asyncio's Python Task class (made by a
        task factory) awaiting and awaited by C tasks, a foreign object
        registered with asyncio.tasks._register_task, and ("pure") asyncio
        with its C module blocked, every task a Python one.  From the core
        (both) and the live process (mixed): each task of the program's own
        picture (all_tasks() and _scheduled_tasks, each chain by hand, the
        task each waits for by _fut_waiter) with the same chain, kind, type
        and awaiters; the text marks them and nests each under the task
        awaiting it.
 older  CPython before 3.14 (Debian's 3.11, or pyenv's newest): one line
        saying the interpreter does not describe its tasks; JSON "tasks" []
        with "tasks_note"; without --tasks, "tasks" is null.

Run as root from the build directory: core_pattern is changed (and restored)
under harness.corepattern's lock.  A missing interpreter is a SKIP with the
reason.
"""
from __future__ import print_function

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cores  # noqa: E402
import pystackd_fixture as pf  # noqa: E402
from harness import corepattern, programs  # noqa: E402
from harness.run import run_pystack  # noqa: E402
from harness.tap import TAP  # noqa: E402

TIMEOUT = 120

# the chain of awaits every worker task runs: worker -> middle -> leaf -> asyncio.sleep
CHAIN = r'''
async def leaf(n):
    await asyncio.sleep(3600)

async def middle(n):
    await leaf(n)

async def worker(n):
    await middle(n)
'''

PROGRAM = r'''
import asyncio, json, os, sys, time
OUT, MODE = sys.argv[1], sys.argv[2]
box = {}
''' + CHAIN + r'''
async def group(name):
    await asyncio.gather(*[asyncio.create_task(worker(i), name="%s-w%d" % (name, i)) for i in range(3)])

async def direct():
    await box["g1"]

async def cycle_a():
    await asyncio.sleep(0)
    await box["cycle-b"]

async def cycle_b():
    await asyncio.sleep(0)
    await box["cycle-a"]

async def quiet():
    await asyncio.sleep(3600)

def chain(task):
    """capture_call_graph's rule, by hand (it cannot follow a cycle of awaiters)."""
    out, coro = [], task.get_coro()
    while coro is not None and hasattr(coro, "cr_await"):
        out.append([coro.cr_frame.f_code.co_name, coro.cr_frame.f_lineno])
        coro = coro.cr_await
    return out

def picture(skip):
    tasks = {}
    for t in asyncio.all_tasks():
        if t is skip or t.get_coro().__name__ == "quiet":
            continue
        if t.get_name().startswith("cycle-"):
            frames = chain(t)
            by = [a.get_name() for a in (t._asyncio_awaited_by or ()) if isinstance(a, asyncio.Task)]
        else:
            g = asyncio.capture_call_graph(t)
            # innermost first there; the report lists the task's own coroutine first
            frames = [[e.frame.f_code.co_name, e.frame.f_lineno] for e in reversed(g.call_stack)]
            by = [a.future.get_name() for a in g.awaited_by if isinstance(a.future, asyncio.Task)]
        tasks[t.get_name()] = {"frames": frames, "awaited_by": sorted(by)}
    return tasks

async def main():
    box["g1"] = asyncio.create_task(group("g1"), name="g1")
    box["g2"] = asyncio.create_task(group("g2"), name="g2")
    box["direct"] = asyncio.create_task(direct(), name="direct")
    box["cycle-a"] = asyncio.create_task(cycle_a(), name="cycle-a")
    box["cycle-b"] = asyncio.create_task(cycle_b(), name="cycle-b")
    asyncio.create_task(quiet())
    await asyncio.sleep(0.3)
    me = asyncio.current_task()
    with open(OUT + ".tmp", "w") as fh:
        json.dump({"tasks": picture(me), "running": me.get_name()}, fh)
    os.rename(OUT + ".tmp", OUT)
    if MODE == "crash":
        os.abort()
    time.sleep(3600)

asyncio.run(main(), debug=False)
'''

# Tasks that are not C tasks: asyncio's own Task class in Python (_PyTask, as a loop's task factory
# makes them), awaiting and awaited by C tasks; "pure": asyncio without its C module, every task a
# Python one.  The picture is the program's own: each task's chain by hand, its type, whether it is
# a C task, and the task it waits for (_fut_waiter, which both Task classes keep).
OTHER_PROGRAM = r'''
import sys
OUT, MODE, PURE = sys.argv[1], sys.argv[2], sys.argv[3] == "pure"
if PURE:
    sys.modules["_asyncio"] = None
import asyncio, asyncio.tasks, json, os, time
''' + CHAIN + r'''
async def waits_on(t):
    await t

def chain(task):
    out, coro = [], task.get_coro()
    while coro is not None and hasattr(coro, "cr_await"):
        out.append([coro.cr_frame.f_code.co_name, coro.cr_frame.f_lineno])
        coro = coro.cr_await
    return out

class Foreign:
    """A third-party loop's task: no asyncio Task, registered with asyncio all the same."""
    def __init__(self, name):
        self._name = name
    def get_loop(self):
        return asyncio.get_running_loop()
    def done(self):
        return False
    def get_name(self):
        return self._name
    def get_coro(self):
        return None

def python_tasks(on):
    asyncio.get_running_loop().set_task_factory(
        (lambda loop, coro, **kw: asyncio.tasks._PyTask(coro, loop=loop, **kw)) if on else None)

async def main():
    c1 = asyncio.create_task(worker(1), name="c-worker")
    python_tasks(True)
    p1 = asyncio.create_task(worker(2), name="py-worker")
    asyncio.create_task(waits_on(p1), name="py-waits-py")
    asyncio.create_task(waits_on(c1), name="py-waits-c")
    asyncio.create_task(worker(3))
    python_tasks(False)
    asyncio.create_task(waits_on(p1), name="c-waits-py")
    foreign = Foreign("foreign")
    asyncio.tasks._register_task(foreign)
    await asyncio.sleep(0.3)
    me = asyncio.current_task()
    C = None if PURE else sys.modules["_asyncio"].Task
    tasks = {}
    # all_tasks() of the C module leaves out the Python Task class's own set
    for t in set(asyncio.all_tasks()) | set(asyncio.tasks._scheduled_tasks):
        if t is me:
            continue
        w = getattr(t, "_fut_waiter", None)
        tasks[t.get_name()] = {"frames": chain(t), "c_task": C is not None and isinstance(t, C),
                               "type": type(t).__name__, "awaits": w.get_name() if hasattr(w, "get_coro") else None}
    ids = {"data": id(asyncio.tasks._scheduled_tasks.data), "callbacks": id(p1._callbacks or [])}
    with open(OUT + ".tmp", "w") as fh:
        json.dump({"tasks": tasks, "running": me.get_name(), "ids": ids}, fh)
    os.rename(OUT + ".tmp", OUT)
    if MODE == "crash":
        os.abort()
    time.sleep(3600)

asyncio.run(main())
'''

OLD_PROGRAM = r'''
import asyncio, sys, time
async def main():
    asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0.1)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    time.sleep(3600)
asyncio.run(main())
'''


def env_for(interp, work):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if interp.root:
        env.update(SCENARIOS="", CEXT="", CACHE="", INCOMING=work)
    return env


def ours(doc):
    """{name: {"frames": [[function, line]], "awaited_by": [names]}} from a --tasks --json report."""
    tasks = doc.get("tasks") or []
    names = dict((t["address"], t.get("name")) for t in tasks)
    out = {}
    for t in tasks:
        out[t.get("name")] = {
            "frames": [[f["function"], f["line"]] for f in t.get("frames", [])],
            "awaited_by": sorted(names.get(a, hex(a)) for a in t.get("awaited_by", [])),
            "running_in": t.get("running_in"), "truncated": t.get("truncated"),
        }
    return out


def compare(tap, label, doc, want, text, crashed_tid=None):
    got = ours(doc)
    dd = []
    for name, w in sorted(want["tasks"].items()):
        g = got.get(name)
        if not g or g["frames"] != w["frames"] or g["awaited_by"] != w["awaited_by"]:
            dd.append("%s: want %r, got %r" % (name, w, g))
    tap.ok(not dd and len(want["tasks"]) == 11,
           "%s: %d tasks, each with the stack and awaiters the program's own picture has" %
           (label, len(want["tasks"])), dd)
    run = got.get(want["running"]) or {}
    frames = run.get("frames") or [[None]]
    tap.ok(run.get("running_in") and (crashed_tid is None or run["running_in"] == crashed_tid) and
           frames[0][0] == "main" and all(v["running_in"] is None for k, v in got.items() if k != want["running"]),
           "%s: the running task %s is the only one marked running, in the thread that ran it" %
           (label, want["running"]), ["%r" % run])
    quiet = [k for k, v in got.items() if v["frames"][:1] == [["quiet", v["frames"][0][1] if v["frames"] else 0]]]
    tap.ok(len(quiet) == 1 and re.match(r"^Task-\d+$", quiet[0] or ""),
           "%s: a nameless task whose name nobody asked for reads as Task-N" % label, ["%r" % quiet])
    section = text.split("\nasyncio tasks (", 1)[-1]
    tap.ok("\nasyncio tasks (" in text and section.count("(T) cycle-a") + section.count("(T) cycle-b") >= 2 and
           "a cycle" in section and section.count("\n") < 400 and "(T) g1-w2" in section and
           "awaiting _asyncio.Future" in section,
           "%s: the text draws the tree (the cycle marked once, futures named) and ends" % label,
           section.splitlines()[:40])


def run_prog(interp, work, mode, fx=None, other=None):
    name = "tasks" if other is None else "other-" + other
    prog, out = os.path.join(work, name + ".py"), os.path.join(work, "picture.%s.%s.%s.json" % (interp.label, name, mode))
    if os.path.exists(out):
        os.unlink(out)
    with open(prog, "w") as fh:
        fh.write(PROGRAM if other is None else OTHER_PROGRAM)
    argv = interp.argv([prog, out, mode] + ([] if other is None else [other]))
    if fx:
        p = fx.spawn(argv, env=env_for(interp, work))
    else:
        p = subprocess.Popen(argv, env=env_for(interp, work), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    return p, out


def ready(p, timeout=60):
    """The program's "ready" line, or False after timeout (a program that failed never hangs the test)."""
    import select
    r, _, _ = select.select([p.stdout], [], [], timeout)
    return bool(r) and p.stdout.readline().strip() == b"ready"


def wait_file(path, p, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline and not os.path.exists(path):
        if p.poll() is not None and not os.path.exists(path):
            return False
        time.sleep(0.05)
    return os.path.exists(path)


def case_core(tap, interp, fx):
    label = "core %s" % interp.label
    p, out = run_prog(interp, fx.incoming, "crash", fx)
    try:
        p.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    core = fx.reap(p)
    if not tap.ok(core and os.path.exists(out), "%s: the program took its picture and aborted, leaving a core" % label,
                  ["exit %r, core %r" % (p.returncode, core)]):
        return
    with open(out) as fh:
        want = json.load(fh)
    root = ["--lib-search-root=" + interp.root] if interp.root else []
    r = run_pystack(["core", core, "--tasks", "--json"] + root, TIMEOUT)
    try:
        doc = json.loads(r.out)
    except ValueError:
        doc = {}
    if not tap.ok(r.rc == 0 and isinstance(doc.get("tasks"), list), "%s: --tasks --json" % label, r.describe()):
        return
    crashed = [t["tid"] for t in doc["threads"] if t.get("crashed")]
    t = run_pystack(["core", core, "--tasks"] + root, TIMEOUT)
    compare(tap, label, doc, want, t.out, crashed[0] if crashed else -1)
    case_hostile(tap, interp, core, doc, root)
    os.unlink(core)


def load_segments(data):
    """(vaddr, filesz, offset) of an ELF64 core's PT_LOAD segments."""
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phnum, = struct.unpack_from("<H", data, 0x38)
    segs = []
    for k in range(phnum):
        p_type, _, p_off, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + 56 * k)
        if p_type == 1 and p_filesz:
            segs.append((p_vaddr, p_filesz, p_off))
    return segs


def file_offset(segs, addr):
    for vaddr, size, off in segs:
        if vaddr <= addr and addr + 8 <= vaddr + size:
            return off + addr - vaddr
    return None


TASK_NODE, TASK_CORO, GI_IFRAME, IF_STACKPOINTER = 152, 128, 72, 64    # 3.14 and 3.15, x86-64 (checked below)


def case_hostile(tap, interp, core, doc, root):
    label = "hostile %s" % interp.label
    with open(core, "rb") as fh:
        data = bytearray(fh.read())
    segs = load_segments(data)
    tasks = dict((t["name"], t) for t in doc["tasks"])
    victim, sleeper = tasks.get("g1-w1"), tasks.get("g1-w0")    # g1-w0 comes before g1-w1 in the list
    dd = []
    # the list: g1-w1's node points at itself
    node = victim["address"] + TASK_NODE if victim else 0
    at = file_offset(segs, node)
    nxt = struct.unpack_from("<Q", data, at)[0] if at is not None else 0
    if at is None or not nxt:
        dd.append("no list node for g1-w1 at 0x%x" % node)
    else:
        struct.pack_into("<Q", data, at, node)
    # the chain: g1-w0 awaits its own coroutine
    coro = sleeper["frames"][0]["address"] - GI_IFRAME if sleeper and sleeper["frames"] else 0
    sp_at = file_offset(segs, coro + GI_IFRAME + IF_STACKPOINTER)
    if sp_at is None:
        dd.append("no coroutine for g1-w0")
    else:
        slot = 2 if interp.minor == "3.15" else 1
        sp = struct.unpack_from("<Q", data, sp_at)[0] & ~3
        aw_at = file_offset(segs, sp - 8 * slot)
        if aw_at is None or file_offset(segs, coro + TASK_CORO) is None:
            dd.append("g1-w0 stack slot not in the core")
        else:
            struct.pack_into("<Q", data, aw_at, coro)
    if not tap.ok(not dd, "%s: the core patched (a task list loop, a coroutine awaiting itself)" % label, dd):
        return
    patched = core + ".hostile"
    with open(patched, "wb") as fh:
        fh.write(data)
    r = run_pystack(["core", patched, "--tasks", "--json"] + root, TIMEOUT)
    try:
        got = json.loads(r.out).get("tasks") or []
    except ValueError:
        got = []
    names = [t["name"] for t in got]
    cut = [t for t in got if t["name"] == "g1-w0"]
    t = run_pystack(["core", patched, "--tasks"] + root, TIMEOUT)
    tap.ok(r.rc == 0 and not r.timed_out and "g1-w1" in names and len(names) <= len(doc["tasks"]) and
           len(names) == len(set(names)) and cut and "cycle in the await chain" in (cut[0]["truncated"] or "") and
           t.rc == 0 and "(T) g1-w1" in t.out,
           "%s: the read ends; the tasks up to the loop listed once each, the self-await said as a cycle, the "
           "text drawn" % label, r.describe()[:4] + ["%d tasks: %r" % (len(names), names), "%r" % cut[:1]])
    os.unlink(patched)


def compare_other(tap, label, doc, want, text, pure):
    """Every task of the picture, C and not, with its chain, its kind and the tasks awaiting it."""
    tasks = doc.get("tasks") or []
    names = dict((t["address"], t.get("name")) for t in tasks)
    got = dict((t.get("name"), t) for t in tasks)
    dd = []
    for name, w in sorted(want["tasks"].items()):
        g = got.get(name)
        by = sorted(n for n, x in want["tasks"].items() if x["awaits"] == name)
        if not g:
            dd.append("%s: not listed" % name)
            continue
        frames = [[f["function"], f["line"]] for f in g.get("frames", [])]
        gby = sorted(names.get(a, hex(a)) for a in g.get("awaited_by", []))
        if frames != w["frames"] or g.get("c_task") != w["c_task"] or gby != by or \
                (not w["c_task"] and g.get("type") != w["type"]):
            dd.append("%s: want %r awaited by %r, got frames %r c_task %r type %r awaited by %r" %
                      (name, w, by, frames, g.get("c_task"), g.get("type"), gby))
    kinds = (0, 7) if pure else (2, 5)
    tap.ok(not dd and len(want["tasks"]) == 7 and
           sum(1 for w in want["tasks"].values() if w["c_task"]) == kinds[0],
           "%s: the %d C tasks and %d others, each with its chain, kind and awaiters as the program saw them" %
           ((label,) + kinds), dd)
    section = text.split("\nasyncio tasks (", 1)[-1]
    nested = re.search(r"\(T\) py-waits-c \[not a C task: Task\]\n.*\n.*\(T\) c-worker( \[not a C task: Task\])?\n",
                       section)
    tap.ok("\nasyncio tasks (" in text and "(T) py-worker [not a C task: Task]" in section and nested and
           "awaiting generator" not in section and "(T) foreign [not a C task: Foreign]\n" in section and
           re.search(r"\(T\) Task-\d+ \[not a C task: Task\]", section),
           "%s: the text marks the others as not C tasks and nests each under the task awaiting it" % label,
           section.splitlines()[:30])


SET_USED, SET_MASK, LIST_SIZE = 24, 32, 16      # PySetObject.used, .mask, PyVarObject.ob_size (x86-64)


def case_other_hostile(tap, interp, core, want, root):
    """The pure core patched: asyncio's set claims 2^40 slots and entries, a task's callback list
    2^40 items.  The read stays bounded and ends; the tasks it reads are listed once each (past
    the real table it meets other weak references: a set a process damaged lists what it holds)."""
    label = "other hostile %s" % interp.label
    with open(core, "rb") as fh:
        data = bytearray(fh.read())
    segs = load_segments(data)
    spots = [(want["ids"]["data"] + SET_USED, 1 << 40), (want["ids"]["data"] + SET_MASK, (1 << 40) - 1),
             (want["ids"]["callbacks"] + LIST_SIZE, 1 << 40)]
    missing = [hex(a) for a, _ in spots if file_offset(segs, a) is None]
    if not tap.ok(not missing, "%s: the core patched (a set of 2^40 slots, a list of 2^40 callbacks)" % label,
                  missing):
        return
    for addr, value in spots:
        struct.pack_into("<Q", data, file_offset(segs, addr), value)
    patched = core + ".hostile"
    with open(patched, "wb") as fh:
        fh.write(data)
    start = time.time()
    r = run_pystack(["core", patched, "--tasks", "--json"] + root, TIMEOUT)
    took = time.time() - start
    try:
        got = json.loads(r.out).get("tasks") or []
    except ValueError:
        got = []
    names = set(t.get("name") for t in got)
    addrs = [t["address"] for t in got]
    # what lies past the real table is the process's other memory (other sets' weak references):
    # read, bounded, as a hostile process can make it; the real tasks are still there
    tap.ok(r.rc == 0 and not r.timed_out and len(addrs) == len(set(addrs)) and len(addrs) <= 65536 and
           set(want["tasks"]) <= names,
           "%s: the read ends (%.1f s): the real tasks listed, none twice, at most 65,536 slots read" %
           (label, took), r.describe()[:4] + ["%d listed, missing %r" % (len(addrs), set(want["tasks"]) - names)])
    os.unlink(patched)


def case_other(tap, interp, work, pure):
    """Tasks that are not C tasks, from a core and from the live process."""
    flavour = "pure" if pure else "mixed"
    label = "other %s %s" % (flavour, interp.label)
    with corepattern.CorePattern(os.path.join(work, "cores-" + flavour)) as fx:
        p, out = run_prog(interp, fx.incoming, "crash", fx, flavour)
        try:
            p.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        core = fx.reap(p)
        if tap.ok(core and os.path.exists(out), "%s: the program took its picture and aborted, leaving a core" %
                  label, ["exit %r, core %r" % (p.returncode, core)]):
            with open(out) as fh:
                want = json.load(fh)
            root = ["--lib-search-root=" + interp.root] if interp.root else []
            r = run_pystack(["core", core, "--tasks", "--json"] + root, TIMEOUT)
            t = run_pystack(["core", core, "--tasks"] + root, TIMEOUT)
            try:
                doc = json.loads(r.out)
            except ValueError:
                doc = {}
            if tap.ok(r.rc == 0 and t.rc == 0 and isinstance(doc.get("tasks"), list), "%s: core --tasks" % label,
                      r.describe()):
                compare_other(tap, "%s core" % label, doc, want, t.out, pure)
                if pure:
                    case_other_hostile(tap, interp, core, want, root)
            os.unlink(core)
    if pure:
        return
    p, out = run_prog(interp, work, "hang", None, flavour)
    try:
        if not tap.ok(wait_file(out, p), "%s live: the program took its picture and blocks its loop" % label):
            return
        with open(out) as fh:
            want = json.load(fh)
        r = run_pystack(["remote", str(p.pid), "--tasks", "--json"], TIMEOUT)
        t = run_pystack(["remote", str(p.pid), "--tasks"], TIMEOUT)
        try:
            doc = json.loads(r.out)
        except ValueError:
            doc = {}
        if tap.ok(r.rc == 0 and isinstance(doc.get("tasks"), list), "%s live: remote --tasks" % label, r.describe()):
            compare_other(tap, "%s live" % label, doc, want, t.out, pure)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()


def case_live(tap, interp, work):
    label = "live %s" % interp.label
    p, out = run_prog(interp, work, "hang")
    try:
        if not tap.ok(wait_file(out, p), "%s: the program took its picture and blocks its loop" % label):
            return
        with open(out) as fh:
            want = json.load(fh)
        r = run_pystack(["remote", str(p.pid), "--tasks", "--json"], TIMEOUT)
        try:
            doc = json.loads(r.out)
        except ValueError:
            doc = {}
        if not tap.ok(r.rc == 0 and isinstance(doc.get("tasks"), list), "%s: remote --tasks --json" % label,
                      r.describe()):
            return
        t = run_pystack(["remote", str(p.pid), "--tasks"], TIMEOUT)
        compare(tap, label, doc, want, t.out, p.pid)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()


def case_pystackd(tap, sid):
    with corepattern.PipeHandlerFixture(pipe_limit=16) as fx:
        os.chmod(fx.root, 0o711)
        st = pf.Store(fx, "tasks", analysis="Workers=1")
        st.install()
        d = st.daemon()
        tag = "pystackd-tasks-%d" % os.getpid()
        script, picture = os.path.join(sid, "tmp", tag + ".py"), os.path.join(sid, "tmp", tag + ".json")
        try:
            if not tap.ok(d.start(), "pystackd: starts", d.log_tail()):
                return
            with open(script, "w") as fh:
                fh.write(PROGRAM)
            argv = ["unshare", "--pid", "--fork", "--mount", "--mount-proc=" + sid + "/proc", "--", "chroot", sid,
                    "/usr/bin/python3.14", "/tmp/%s.py" % tag, "/tmp/%s.json" % tag, "crash"]
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=TIMEOUT)
            row, rows = st.wait_row(lambda r: r["state"] in ("done", "failed") and
                                    (r["exe"] or "").endswith("python3.14"))
            if not tap.ok(row and row["state"] == "done", "pystackd: the asyncio program's crash is analysed",
                          [pf.brief(r) for r in rows] + d.log_tail(5)):
                return
            rep = st.report_of(row["id"]) or {}
            ctl = [programs.pystackctl(), "--config=%s" % st.conf, "--no-pager"]
            shown = subprocess.run(ctl + ["show", "--tasks", "ID=%d" % row["id"]], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=60).stdout.decode("utf-8", "replace")
            plain = subprocess.run(ctl + ["show", "ID=%d" % row["id"]], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=60).stdout.decode("utf-8", "replace")
            with open(picture) as fh:
                want = json.load(fh)
            tap.ok(len(rep.get("tasks") or []) == len(want["tasks"]) + 2 and "asyncio tasks (13):" in shown and
                   "(T) g1-w0" in shown and "asyncio tasks" not in plain,
                   "pystackd: the stored report has the 13 tasks; show --tasks draws them, show alone does not",
                   shown.split("asyncio tasks", 1)[-1].splitlines()[:12])
        finally:
            d.stop()
            for f in (script, picture):
                if os.path.exists(f):
                    os.unlink(f)


MANY = r'''
import asyncio, sys, time
''' + CHAIN + r'''
async def main():
    tasks = [asyncio.create_task(worker(i)) for i in range(13000)]
    await asyncio.sleep(1)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    time.sleep(3600)

asyncio.run(main())
'''


def case_many(tap, interp, work):
    prog = os.path.join(work, "many.py")
    with open(prog, "w") as fh:
        fh.write(MANY)
    p = subprocess.Popen(interp.argv([prog]), env=env_for(interp, work), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, start_new_session=True)
    try:
        if not tap.ok(ready(p, 120), "many %s: the program starts 13,000 tasks" % interp.label):
            return
        r = run_pystack(["remote", str(p.pid), "--tasks", "--json"], TIMEOUT)
        try:
            tasks = json.loads(r.out).get("tasks") or []
        except ValueError:
            tasks = []
        written = sum(len(t["frames"]) for t in tasks)
        bare = [t for t in tasks if not t["frames"]]
        t = run_pystack(["remote", str(p.pid), "--tasks"], TIMEOUT)
        tap.ok(r.rc == 0 and len(tasks) == 13001 and written <= 50000 and bare and
               all("50,000 frames" in (b.get("truncated") or "") for b in bare) and
               t.out.count("(T) ") == 13001,
               "many %s: 13,000 tasks: at most 50,000 frames written, the rest said so; every task drawn" %
               interp.label, ["exit %r, %d tasks, %d frames, %d without" % (r.rc, len(tasks), written, len(bare))])
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def case_older(tap, interp, work):
    prog = os.path.join(work, "old.py")
    with open(prog, "w") as fh:
        fh.write(OLD_PROGRAM)
    p = subprocess.Popen(interp.argv([prog]), env=env_for(interp, work), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, start_new_session=True)
    try:
        if not tap.ok(ready(p), "older %s: the program runs" % interp.label):
            return
        r = run_pystack(["remote", str(p.pid), "--tasks"], TIMEOUT)
        j = run_pystack(["remote", str(p.pid), "--tasks", "--json"], TIMEOUT)
        n = run_pystack(["remote", str(p.pid), "--json"], TIMEOUT)
        try:
            doc, plain = json.loads(j.out), json.loads(n.out)
        except ValueError:
            doc, plain = {}, {}
        tap.ok(r.rc == 0 and "asyncio tasks: the interpreter does not describe its asyncio tasks: 3.14 and later do"
               in r.out and doc.get("tasks") == [] and "3.14" in (doc.get("tasks_note") or "") and
               plain.get("tasks", 0) is None,
               "older %s: one line saying the interpreter does not describe its tasks; JSON [] and the note; "
               "without --tasks null" % interp.label, r.describe())
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def main():
    tap = TAP()
    if os.geteuid() != 0:
        return tap.skip_all("not root: core_pattern and the sid tree's chroot need root")
    interps = cores.find_interpreters()
    new = [i for i in interps if i.minor in ("3.14", "3.15") and i.origin in ("sid", "pyenv", "system")]
    for minor in ("3.14", "3.15"):
        if not any(i.minor == minor for i in new):
            tap.skip("core, live: %s" % cores.missing_minor_reason(minor))
    older = [i for i in interps if i.origin == "system" and i.minor == "3.11"] or \
        [i for i in interps if i.origin == "pyenv" and i.minor not in ("3.14", "3.15")][-1:]
    work = tempfile.mkdtemp(prefix="test_tasks.")
    os.chmod(work, 0o755)
    try:
        if new:
            with corepattern.CorePattern(os.path.join(work, "cores")) as fx:
                for interp in new:
                    case_core(tap, interp, fx)
        for interp in new:
            case_live(tap, interp, work)
        for interp in new:
            case_other(tap, interp, work, False)
            case_other(tap, interp, work, True)
        if new:
            case_many(tap, new[-1], work)
        sid, why = cores.sid_tree()
        if sid and os.access(os.path.join(sid, "usr/bin/python3.14"), os.X_OK):
            try:
                case_pystackd(tap, sid)
            finally:
                pf.cleanup_processes()
        else:
            tap.skip("pystackd: no Debian sid tree with python3.14 (%s)" % (why or "no python3.14 in it"))
        if older:
            case_older(tap, older[0], work)
        else:
            tap.skip("older: no CPython before 3.14 here")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
