/* SPDX-License-Identifier: MIT */
/*
 * Line numbers from CPython line tables.  Each decoder follows the
 * interpreter's own PyCode_Addr2Line() for that era (Objects/codeobject.c
 * and Objects/lnotab_notes.txt) and returns what it would, except that
 * every read is bounded by the table length: the bytes come from a core
 * file and may be truncated or garbage.
 */

#include <limits.h>

#include "line_table.h"

/* A line outside int (only reachable with garbage deltas) is no line. */
static int as_line(int64_t line) {
        return line >= 0 && line <= INT_MAX ? (int)line : -1;
}

/*
 * co_lnotab: (address delta, line delta) byte pairs; the line holds from
 * the address the pair reaches up to the next pair.  2.7 reads the line
 * delta unsigned, 3.6+ signed.  A trailing odd byte is ignored, as the
 * interpreter does (size = len / 2).  There is no "no line" answer: past
 * the table the last line holds.
 */
static int lnotab_line(const uint8_t *t, size_t len, int firstlineno, int64_t offset,
                       int is_signed) {
        int64_t line = firstlineno, addr = 0;

        for (size_t i = 0; i + 1 < len; i += 2) {
                addr += t[i];
                if (addr > offset)
                        break;
                line += is_signed ? (int8_t)t[i + 1] : t[i + 1];
        }
        return as_line(line);
}

/*
 * 3.10 co_linetable: (start delta, line delta) byte pairs, each closing the
 * byte range [end, end + delta) with its line; a line delta of -128 means
 * "no line" for that range and leaves the running line alone.  Zero-length
 * ranges only move the running line.  Past the table there is no line.
 */
static int linetable310_line(const uint8_t *t, size_t len, int firstlineno, int64_t offset) {
        int64_t computed = firstlineno, end = 0;

        for (size_t i = 0; i + 1 < len; i += 2) {
                int ldelta = (int8_t)t[i + 1];
                int64_t line = -1;

                end += t[i];
                if (ldelta != -128) {
                        computed += ldelta;
                        line = computed;
                }
                if (end > offset)
                        return line < 0 ? -1 : as_line(line);
        }
        return -1;
}

/*
 * 3.11+ location table.  Each entry starts with a byte 1cccclll: code
 * cccc, covering lll + 1 code units (2 bytes each).  The line delta is:
 *   15       no location (the entry has no line; running line unchanged)
 *   14, 13   signed varint after the first byte (long form, no columns)
 *   10-12    code - 10 (one-line forms)
 *   0-9      0 (short forms)
 * Varints are 6 bits per byte, low bits first, bit 6 = more follows; the
 * signed form keeps the sign in bit 0.  Bytes after the first never have
 * bit 7 set, which is how the next entry is found.
 */
enum {
        LOC_NONE = 15,
        LOC_LONG = 14,
        LOC_NO_COLUMNS = 13,
        LOC_ONE_LINE0 = 10,
        LOC_ONE_LINE2 = 12,
};

/* Reads a varint starting at t[*i]; -1 when it runs past the entry or the table. */
static int read_varint(const uint8_t *t, size_t len, size_t *i, uint32_t *out) {
        uint32_t val = 0;
        unsigned shift = 0;
        uint8_t b;

        do {
                if (*i >= len || (t[*i] & 0x80))
                        return -1;
                b = t[(*i)++];
                /* CPython's varints are 32-bit; wider ones are garbage. */
                if (shift > 30 || (shift == 30 && (b & 63) > 3))
                        return -1;
                val |= (uint32_t)(b & 63) << shift;
                shift += 6;
        } while (b & 64);
        *out = val;
        return 0;
}

static int locations311_line(const uint8_t *t, size_t len, int firstlineno, int64_t offset) {
        int64_t computed = firstlineno, end = 0;
        size_t i = 0;

        while (i < len) {
                uint8_t first = t[i];
                int code = (first >> 3) & 15;
                int64_t delta = 0;

                /* Not an entry start: we are not looking at a location table. */
                if (!(first & 0x80))
                        return -1;
                i++;
                if (code == LOC_LONG || code == LOC_NO_COLUMNS) {
                        uint32_t u;
                        if (read_varint(t, len, &i, &u) < 0)
                                return -1;
                        delta = (u & 1) ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
                } else if (code >= LOC_ONE_LINE0 && code <= LOC_ONE_LINE2) {
                        delta = code - LOC_ONE_LINE0;
                }
                computed += delta;
                end += ((first & 7) + 1) * 2;
                if (end > offset)
                        return code == LOC_NONE ? -1 : as_line(computed);
                /* Skip the columns and anything else up to the next entry. */
                while (i < len && !(t[i] & 0x80))
                        i++;
        }
        return -1;
}

int py_line_for_offset(enum py_line_format fmt, const uint8_t *table, size_t len,
                       int firstlineno, int64_t offset) {
        if (!table)
                len = 0;
        /* Every era answers a negative offset (a frame that has not started)
         * with the first line. */
        if (offset < 0)
                return as_line(firstlineno);

        switch (fmt) {
        case PY_LINES_LNOTAB27:
                return lnotab_line(table, len, firstlineno, offset, 0);
        case PY_LINES_LNOTAB36:
                return lnotab_line(table, len, firstlineno, offset, 1);
        case PY_LINES_LINETABLE310:
                return linetable310_line(table, len, firstlineno, offset);
        case PY_LINES_LOCATIONS311:
                return locations311_line(table, len, firstlineno, offset);
        }
        return -1;
}
