/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * live_process: a running process as a core_file, for `pystack remote PID`.
 *
 * The process is described the way a core describes it, so every reader (target, the Python
 * walker, the native unwinder) stays the one it is for cores: its threads and registers, its
 * auxiliary vector, its mappings from /proc/PID/maps (each readable mapping a "segment" whose
 * bytes are the process's memory, read with process_vm_readv, or through /proc/PID/mem where
 * that is refused), and what /proc says of the process.
 *
 * With stop, every thread is stopped first (PTRACE_SEIZE, then PTRACE_INTERRUPT: no signal is
 * sent, and a process stopped by SIGSTOP stays stopped) so what is read is one moment; the
 * threads run again at core_file_resume, or at core_file_free, or when this process dies,
 * whatever kills it (the kernel detaches a dead tracer's tracees).  Without stop nothing is
 * traced: the reads race the process, and the registers are unknown.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "core_file.h"

/* A thread that does not stop within this long (uninterruptible sleep) fails the read. */
#define LIVE_STOP_TIMEOUT_MS 2000
/* Threads that keep appearing while the others are stopped: tried this many times. */
#define LIVE_MAX_PASSES 64

/*
 * The process pid as a core.  0 and *ret; or -errno with a one-line *error (static):
 *   -ESRCH    no such process, or it is a zombie or a kernel thread
 *   -EPERM    not allowed to trace or read it (the message says which rule, and what to do)
 *   -EBUSY    another tracer (a debugger) has it
 *   -ETIME    a thread did not stop in time
 * Cost: reads /proc/PID/{stat,status,task,maps,auxv,cmdline}; with stop, two ptrace calls and
 * a wait per thread.
 */
int core_file_open_process(pid_t pid, bool stop, struct core_file **ret, const char **error);

/* Let the process run on: every stopped thread detached (its pending signal given back).  Memory
 * stays readable, no longer as one moment.  Idempotent; a no-op for a core. */
void core_file_resume(struct core_file *c);
