/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * analysis: what a core says about a crashed Python process — the result
 * the reports print.  analysis_run() is the whole pipeline: open the core,
 * rebuild the process (target), find the interpreter (py_runtime), walk
 * every thread's frames (py_frame).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core_file.h"
#include "py_layout.h"
#include "target.h"

/* One argument or local variable of a Python frame (--locals). */
struct py_var {
        char *name;
        char *repr;                     /* bounded, Python-repr-like rendering (py_locals.c) */
        bool argument;                  /* an argument (incl. *args / **kwargs) rather than a local */
};

struct py_frame_info {
        char *function;
        char *file;
        int line;                       /* -1 when unknown */
        uint64_t addr;                  /* the frame's address in the process */
        uint64_t code;                  /* its code object's address */
        bool entry;                     /* the first frame of a C-level call into the interpreter */
        uint64_t shim;                  /* 3.12+: the interpreter's own frame that entered it (a
                                         * local of the C eval loop that ran it), 0 when none */
        struct py_var *vars;            /* --locals: arguments first, then locals, in co_varnames order */
        size_t n_vars;
        char *vars_error;               /* --locals: why the variables could not be read, or NULL */
};

/* A native (C, C++, Rust) frame, symbolized (native_unwind.c). */
struct native_frame_info {
        uint64_t pc;                    /* the return address (or the faulting pc for the innermost frame) */
        uint64_t sp;                    /* its stack pointer: the frame's locals lie from here up to the
                                         * caller's (0 when unknown) */
        char *function;                 /* demangled; NULL when unknown ("???") */
        char *file;                     /* source file from DWARF; NULL when unknown */
        int line;                       /* 0 when unknown */
        const char *library;            /* module file name (owned by the target), NULL when unmapped */
        bool inlined;                   /* an inlined call within the frame below it */
        bool eval;                      /* the interpreter's evaluation loop: replaced by Python frames */
        bool hidden;                    /* interpreter plumbing, hidden unless --native-all */
};

struct thread_info {
        int32_t tid;                    /* kernel thread id, 0 when unknown */
        uint64_t pthread_id;            /* Python's thread_id (pthread_t), 0 when not a Python thread */
        uint64_t tstate;                /* PyThreadState address, 0 when not a Python thread */
        int64_t interp_id;              /* its interpreter's id (0: the main one), -1 when unknown or
                                         * not a Python thread; one OS thread that ran several
                                         * interpreters has one entry per interpreter, outermost first */
        uint64_t interp;                /* that PyInterpreterState's address, 0 for none */
        bool crashed;
        bool has_gil;
        bool gc_collecting;
        struct py_frame_info *frames;   /* innermost first, as walked */
        size_t n_frames, allocated;
        char *truncated;                /* why the walk stopped early, or NULL */
        char *exception;                /* 3.15+: "TYPE: message" of the exception being raised or
                                         * handled when the process died, or NULL */
        bool exception_handled;         /* it was being handled (in an except block), not raised */

        struct native_frame_info *native;  /* --native: innermost first */
        size_t n_native, native_allocated;
        char *native_error;             /* why unwinding stopped early, or NULL */
        uint64_t native_sp_end;         /* where this entry's part of a shared native stack ends (the
                                         * next frame's sp), 0 when it is the whole stack */
        bool merge_failed;              /* eval-loop frames and Python frames did not match up */
};

/* An asyncio task (--tasks; CPython 3.14+ describes its C tasks): py_tasks.c. */
struct task_info {
        uint64_t addr;                  /* the Task object */
        char *name;
        char *type;                     /* its type's name (tp_name) */
        bool c_task;                    /* on a C task list; false: asyncio's set of the others (a
                                         * Python Task class, a third-party loop's), read by attribute */
        int32_t tid;                    /* the thread whose list holds it (the one that created it);
                                         * 0: the interpreter's list (that thread is gone) */
        int64_t interp_id;
        int32_t running_in;             /* the thread it was running in, 0 when it was suspended */
        struct thread_info stack;       /* its coroutine chain, the task's own coroutine first (frames,
                                         * n_frames; truncated: why the chain was cut) */
        uint64_t *awaited_by;           /* the tasks that await it */
        size_t n_awaited_by;
        uint64_t awaits;                /* what its innermost coroutine awaits that is neither a
                                         * coroutine nor an async generator: a future or a task (the
                                         * future a task's iterator is for), 0 when none */
        char *awaits_type;              /* that object's type name, or NULL */
};

enum analysis_status {
        ANALYSIS_OK = 0,
        ANALYSIS_INTERNAL = 1,
        ANALYSIS_USAGE = 2,
        ANALYSIS_BAD_CORE = 3,
        ANALYSIS_BAD_EXECUTABLE = 4,
        ANALYSIS_NO_PYTHON = 5,
};

/* Limits of value rendering (--locals); flags change them. */
struct locals_options {
        size_t max_string;              /* characters of a str/bytes before "..." */
        size_t max_items;               /* items of a container before "..." */
        size_t max_depth;               /* nesting of containers before "..." */
        size_t max_repr;                /* bytes of one rendered value */
};

#define LOCALS_DEFAULT_MAX_STRING 80
#define LOCALS_DEFAULT_MAX_ITEMS 10
#define LOCALS_DEFAULT_MAX_DEPTH 3
#define LOCALS_DEFAULT_MAX_REPR 1024

enum native_mode {
        NATIVE_OFF,
        NATIVE_ON,                      /* --native: merged, interpreter plumbing hidden */
        NATIVE_ALL,                     /* --native-all: nothing hidden, threads Python does not know too */
        NATIVE_LAST,                    /* --native-last: only the C frames below the last Python frame */
};

struct analysis_options {
        struct target_options target;
        bool exhaustive;                /* scan memory for the interpreter when symbols fail */
        size_t max_frames;              /* per thread */
        enum native_mode native;
        bool locals;
        bool tasks;                     /* asyncio tasks (3.14+) */
        struct locals_options locals_limits;
};

#define ANALYSIS_DEFAULT_MAX_FRAMES 100000

struct analysis {
        const char *core_path;          /* NULL for a live process (core->live_pid) */
        struct core_file *core;
        struct target *target;

        unsigned py_major, py_minor;    /* 0.0 when no interpreter was found */
        struct module *py_module;       /* the file holding the interpreter (executable or libpython) */
        enum native_mode native;        /* what the reports show (from the options) */
        bool locals;
        struct py_layout layout;

        struct thread_info *threads;    /* the crashed thread first */
        size_t n_threads;
        bool multiple_interpreters;     /* threads of more than one interpreter: reports say whose */

        bool tasks_asked;               /* --tasks */
        struct task_info *tasks;        /* every interpreter's, in list order */
        size_t n_tasks;
        char *tasks_note;               /* why there are none to read, or NULL */

        struct strv warnings;
        struct code_cache *codes;       /* decoded code objects, by address (py_frame.h) */
};

/*
 * Run the whole analysis of the core at path.  Returns ANALYSIS_OK with *ret
 * filled, or another status with a one-line message in *error (static,
 * valid until the next call).  *ret is also filled on ANALYSIS_NO_PYTHON,
 * and on ANALYSIS_BAD_CORE for a truncated core whose remains were
 * analysed: then the report is partial, and callers must say so.
 */
enum analysis_status analysis_run(const char *path, const struct analysis_options *opts,
                                  struct analysis **ret, const char **error);
/*
 * The same for the running process pid (`pystack remote`): with stop, its threads are stopped
 * while it is read and run on before this returns; without, it is read as it runs (the stacks
 * may not hold together, and no registers: no native frames).  ANALYSIS_BAD_CORE when the process
 * cannot be read (gone, a zombie or kernel thread, not allowed, traced by another): *error says
 * which.
 */
enum analysis_status analysis_run_process(pid_t pid, bool stop, const struct analysis_options *opts,
                                          struct analysis **ret, const char **error);
void analysis_free(struct analysis *a);

/*
 * The status words of a thread's header, in PyStack's order and words:
 * "Thread terminated" (no kernel thread), then one of "Has the GIL" (from
 * the interpreter's state), "Waiting for the GIL" or "Dropping the GIL" (a
 * take_gil or drop_gil native frame: known with native frames only), then
 * "Garbage collecting".  Fills words[] and returns how many (at most 3).
 */
size_t thread_status(const struct thread_info *th, const char *words[3]);

