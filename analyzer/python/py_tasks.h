/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * py_tasks: every asyncio task of the process and what it awaits (--tasks), from a core or a
 * running process.
 *
 * CPython 3.14+ describes its C tasks for debuggers: the `_asyncio` module (a shared library in
 * 3.14, built into the interpreter from 3.15) carries an `.AsyncioDebug` section of offsets, each
 * thread state and each interpreter holds a list of the pending tasks created there (an
 * interpreter's list has those of threads that are gone), and a task knows the tasks awaiting it
 * (`awaited_by`, one or a set).  A task's stack is its coroutine and, while suspended in an await,
 * the coroutine or async generator it awaits, and so on down to what is not one (a future, a
 * task's iterator): read from each generator's embedded frame, as _Py_DebugOffsets describes it.
 *
 * Everything is read from memory a crashed, possibly hostile process wrote: lists are bounded
 * and cycle-checked, a chain stops at PY_TASKS_MAX_CHAIN coroutines, a set at
 * PY_TASKS_MAX_AWAITERS entries, and a task that cannot be read says why in its `truncated`.
 */

#include "analysis.h"

#define PY_TASKS_MAX 100000             /* tasks in all */
#define PY_TASKS_MAX_CHAIN 1024         /* coroutines in one task's await chain */
#define PY_TASKS_MAX_AWAITERS 4096      /* tasks awaiting one task */

/*
 * Read the tasks into a->tasks (a->n_tasks), or say in a->tasks_note why there are none to read
 * (the version describes none, asyncio was never imported, the description is implausible).
 * 0, or -ENOMEM.
 */
int py_tasks_read(struct analysis *a);
