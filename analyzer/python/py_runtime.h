/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * py_runtime: find the CPython interpreter in a core and list its threads —
 * every interpreter's, with their GIL and GC state, the thread each really
 * runs on, and (3.15+) the exception each was raising or handling.
 */

#include "analysis.h"

/* Find the interpreter, choose its layout and fill a->threads (crashed thread first, one entry
 * per thread and interpreter); 0, or -errno with a one-line *error. */
int py_runtime_analyze(struct analysis *a, const struct analysis_options *opts, const char **error);
