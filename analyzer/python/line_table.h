/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * line_table: the line number a code object was at, from its line table.
 *
 * Pure functions over bytes already copied out of the core: no memory
 * access, no allocation, bounded by the table's length.  Each CPython era
 * has its own encoding (see enum py_line_format).
 */

#include <stddef.h>
#include <stdint.h>

#include "py_layout.h"

/*
 * The line of the instruction at byte offset `offset` into the code
 * object's bytecode (co_code / co_code_adaptive), given the table bytes
 * (co_lnotab or co_linetable) and co_firstlineno.
 *
 * Callers convert to bytes first: f_lasti is already bytes in <=3.9, is in
 * 2-byte code units in 3.10 (multiply by 2), and in 3.11+ the offset is
 * (instruction pointer - co_code_adaptive address).
 *
 * Returns the line (>= 0), or -1 when the table has no line for that
 * offset or is malformed.  Cost: one pass over at most `len` bytes.
 */
int py_line_for_offset(enum py_line_format fmt, const uint8_t *table, size_t len,
                       int firstlineno, int64_t offset);
