/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * source_lines: the text of a Python source line, for the report.
 *
 * File names come from the core, so they may name anything: only regular
 * files are read (opened non-blocking, so a FIFO cannot stall us), at most
 * SOURCE_MAX_FILE bytes each, and at most SOURCE_MAX_FILES files per report.
 */

#include <stddef.h>

#define SOURCE_MAX_FILE (16u << 20)
#define SOURCE_MAX_FILES 256

struct source_cache;

/* root (may be NULL): the tree the process ran in (--lib-search-root); a
 * file is read below it first, then where the host has it. */
struct source_cache *source_cache_new(const char *root);
void source_cache_free(struct source_cache *c);

/* Line `line` (1-based) of file, without leading/trailing white space, or
 * NULL.  The string is owned by the cache. */
const char *source_line(struct source_cache *c, const char *file, int line);
