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

#include "core_file.h"
#include "py_layout.h"
#include "target.h"

struct py_frame_info {
        char *function;
        char *file;
        int line;                       /* -1 when unknown */
        uint64_t addr;                  /* the frame's address in the process */
        bool entry;                     /* the first frame of a C-level call into the interpreter */
};

struct thread_info {
        int32_t tid;                    /* kernel thread id, 0 when unknown */
        uint64_t pthread_id;            /* Python's thread_id (pthread_t), 0 when not a Python thread */
        uint64_t tstate;                /* PyThreadState address, 0 when not a Python thread */
        bool crashed;
        bool has_gil;
        bool gc_collecting;
        struct py_frame_info *frames;   /* innermost first, as walked */
        size_t n_frames, allocated;
        char *truncated;                /* why the walk stopped early, or NULL */
};

enum analysis_status {
        ANALYSIS_OK = 0,
        ANALYSIS_INTERNAL = 1,
        ANALYSIS_USAGE = 2,
        ANALYSIS_BAD_CORE = 3,
        ANALYSIS_BAD_EXECUTABLE = 4,
        ANALYSIS_NO_PYTHON = 5,
};

struct analysis_options {
        struct target_options target;
        bool exhaustive;                /* scan memory for the interpreter when symbols fail */
        size_t max_frames;              /* per thread */
};

#define ANALYSIS_DEFAULT_MAX_FRAMES 100000

struct analysis {
        const char *core_path;
        struct core_file *core;
        struct target *target;

        unsigned py_major, py_minor;    /* 0.0 when no interpreter was found */
        struct py_layout layout;

        struct thread_info *threads;    /* the crashed thread first */
        size_t n_threads;

        struct strv warnings;
        struct code_cache *codes;       /* decoded code objects, by address (py_frame.c) */
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
void analysis_free(struct analysis *a);

/* Find the interpreter and fill a->threads; -errno with *error on failure (py_runtime.c). */
int py_runtime_analyze(struct analysis *a, const struct analysis_options *opts, const char **error);

/* Walk the frames of thread th (py_frame.c). */
void py_frames_walk(struct analysis *a, struct thread_info *th, uint64_t first_frame, size_t max_frames);
void code_cache_free(struct code_cache *c);
