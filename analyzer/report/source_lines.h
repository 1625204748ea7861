/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * source_lines: the text of a Python source line, for the report.
 *
 * File names come from the core, so they may name anything: only regular
 * files are read (opened non-blocking, so a FIFO cannot stall us), at most
 * SOURCE_MAX_FILE bytes each, and at most SOURCE_MAX_FILES files per report.
 */

#include <stdbool.h>
#include <stddef.h>

#define SOURCE_MAX_FILE (16u << 20)
#define SOURCE_MAX_FILES 256

struct source_cache;

/*
 * root (may be NULL; a path or /dev/fd/N): the tree the process ran in.  A
 * file is read below it first, resolved as if it were / (openat2's
 * RESOLVE_IN_ROOT: its links cannot lead out of it), then — unless
 * root_only — where the host has it.  root_only with a root that cannot be
 * opened: no line at all.
 */
struct source_cache *source_cache_new(const char *root, bool root_only);
void source_cache_free(struct source_cache *c);
/* Whether an allocation failed, so that a line source_line() gave as NULL may exist. */
bool source_cache_out_of_memory(const struct source_cache *c);

/* Line `line` (1-based) of file, without leading/trailing white space, or
 * NULL.  The string is owned by the cache. */
const char *source_line(struct source_cache *c, const char *file, int line);
