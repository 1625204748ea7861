/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * py_frame: a thread's Python frames, and the one cache of decoded code
 * objects that every reader of a core shares (deep recursion repeats the
 * same few code objects thousands of times).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analysis.h"

struct code_vars;                       /* py_locals.c: a code object's variable names (--locals) */

struct code_info {
        uint64_t addr;
        char *file, *name;
        int firstlineno;
        int firsttraceable;             /* code units; 0 when the version has none */
        uint8_t *table;                 /* the line table's bytes */
        size_t table_len;
        bool valid;                     /* name and file were read */
        struct code_vars *vars;         /* --locals: decoded on first use, freed with the cache */
};

/* The code object at addr, decoded once per core into a->codes; NULL when it cannot be read. */
struct code_info *py_code_info(struct analysis *a, uint64_t addr);

/* Walk the frames of thread th from its innermost frame, at most max_frames of them. */
void py_frames_walk(struct analysis *a, struct thread_info *th, uint64_t first_frame, size_t max_frames);

/* Add the one (3.11+) frame at frame to th, as the walk does, following nothing: 0, or -EFAULT
 * with th->truncated saying why (unreadable, no code object). */
int py_frame_add(struct analysis *a, struct thread_info *th, uint64_t frame);

void code_cache_free(struct code_cache *c);
