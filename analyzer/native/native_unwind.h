/* SPDX-License-Identifier: MIT */
#pragma once

struct analysis;

/*
 * Unwind and symbolize the native stack of every thread in a->threads
 * (for --native-all, the analysis has added the core's
 * threads the interpreter does not know).  Fills each thread's native[], marks eval-loop and plumbing frames
 * for stack_merge.  Problems become per-thread native_error strings or
 * warnings; returns 0, or -ENOMEM.  Cost: DWARF is read only for the
 * compilation units that hold the frames' pcs.
 */
int native_unwind(struct analysis *a);
