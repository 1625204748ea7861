/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * stack_merge: one thread's Python and native frames as one stack.
 *
 * Each evaluation-loop C frame (_PyEval_EvalFrameDefault, 2.7's
 * PyEval_EvalFrameEx) is replaced by the Python frames it was running: one
 * frame each up to 3.10, and from 3.11 the run of frames up to and
 * including an entry frame.  When the counts do not match the merge is
 * refused rather than guessed: the Python frames come first, then the
 * native ones, and *merged is false.
 */

#include <stdbool.h>
#include <stddef.h>

#include "analysis.h"

struct stack_item {
        bool python;            /* frames[index] when true, native[index] otherwise */
        size_t index;
};

/* The stack to print, outermost first, in *items (malloc'ed).  0 or -ENOMEM. */
int stack_merge(const struct analysis *a, const struct thread_info *th, enum native_mode mode,
                struct stack_item **items, size_t *n, bool *merged);

/* How many runs of Python frames th has: each is one eval-loop frame on the native stack. */
size_t stack_merge_runs(const struct analysis *a, const struct thread_info *th);
