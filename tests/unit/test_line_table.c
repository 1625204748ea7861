/* SPDX-License-Identifier: MIT */
/*
 * TAP tests for analyzer/python/line_table.c.
 *
 * The tables below are real: the same sample function, compiled by each
 * interpreter named above its table, with the lines that interpreter's own
 * PyCode_Addr2Line() (called through ctypes) returns for every instruction
 * offset.  They were produced by this script, run as
 *   ~/.pyenv/versions/X.Y.Z/bin/pythonX.Y gen.py TAG [NOTE]
 * (for py311_nocol: python3.11 -X no_debug_ranges gen.py py311_nocol
 * "-X no_debug_ranges", which makes 3.11 emit only no-column entries):
 *
 *   # Runs under 2.7 and 3.x: dumps a sample function's line table and, for every
 *   # instruction offset, the line the interpreter's own PyCode_Addr2Line gives.
 *   import ctypes, sys
 *
 *   # 150 loads on one line push lnotab/3.10 address deltas past 255; 3.11+ has
 *   # one entry per column span, so a short tuple keeps its table small.
 *   BIG = "(" + ", ".join(["x"] * (150 if sys.version_info < (3, 11) else 3)) + ")"
 *   # The function starts at line 42 so that co_firstlineno matters.
 *   SRC = "\n" * 41 + '''def sample(items, flag):
 *       total = 0
 *       for i, x in enumerate(items):
 *           if x %% 2:
 *               total += (x *
 *                         i +
 *                         len(items))
 *           else:
 *               total -= 1
 *       big = %s
 *       try:
 *           with open("/nonexistent") as f:
 *               total += len(f.read())
 *       except OSError:
 *           total = -total
 *       result = dict(a=total,
 *                     b=[y for y in items if y > flag],
 *                     c="%s".count("."))
 *   %s
 *       return result, total, big
 *   ''' % (BIG, "." * 140, "\n" * 300)
 *
 *   ns = {}
 *   exec(compile(SRC, "sample.py", "exec"), ns)
 *   co = ns["sample"].__code__
 *   table = co.co_lnotab if sys.version_info < (3, 10) else co.co_linetable
 *   table = bytearray(table)
 *   addr2line = ctypes.pythonapi.PyCode_Addr2Line
 *   addr2line.restype = ctypes.c_int
 *   addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
 *   step = 1 if sys.version_info < (3, 6) else 2
 *   runs = []
 *   for off in range(0, len(co.co_code), step):
 *       line = addr2line(co, off)
 *       if not runs or runs[-1][1] != line:
 *           runs.append((off, line))
 *   tag = sys.argv[1]
 *   out = sys.stdout
 *   out.write("/" "* %s: produced by pyenv python%s%s, co_firstlineno %d, %d code bytes *" "/\n"
 *             % (tag, sys.version.split()[0], " " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "", co.co_firstlineno, len(co.co_code)))
 *   out.write("static const uint8_t table_%s[] = {\n" % tag)
 *   for i in range(0, len(table), 12):
 *       out.write("        " + ", ".join("0x%02x" % b for b in table[i:i + 12]) + ",\n")
 *   out.write("};\n")
 *   out.write("static const struct run runs_%s[] = {\n" % tag)
 *   for i in range(0, len(runs), 6):
 *       out.write("        " + " ".join("{ %d, %d }," % r for r in runs[i:i + 6]) + "\n")
 *   out.write("};\n")
 *   out.write("#define FIRSTLINE_%s %d\n#define CODELEN_%s %d\n\n" % (tag, co.co_firstlineno, tag, len(co.co_code)))
 *
 * The expected lines are stored as runs: { first offset, line } where the
 * line changes; every offset up to the next run has that line.
 */

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "line_table.h"
#include "tap.h"

struct run {
        int off, line;
};

/* py27: produced by pyenv python2.7.18, co_firstlineno 42, 692 code bytes */
static const uint8_t table_py27[] = {
        0x00, 0x01, 0x06, 0x01, 0x19, 0x01, 0x0a, 0x01, 0x06, 0x01, 0x04, 0x01,
        0x11, 0x02, 0x0e, 0x01, 0xff, 0x00, 0xc9, 0x01, 0x03, 0x01, 0x0f, 0x01,
        0x20, 0x01, 0x0d, 0x01, 0x0b, 0x01, 0x0c, 0x01, 0x25, 0x01, 0x12, 0xff,
        0x00, 0x2f,
};
static const struct run runs_py27[] = {
        { 0, 43 }, { 6, 44 }, { 31, 45 }, { 41, 46 }, { 47, 47 }, { 51, 48 },
        { 68, 50 }, { 82, 51 }, { 538, 52 }, { 541, 53 }, { 556, 54 }, { 588, 55 },
        { 601, 56 }, { 612, 57 }, { 624, 58 }, { 661, 59 }, { 679, 361 },
};
#define FIRSTLINE_py27 42
#define CODELEN_py27 692

/* py36: produced by pyenv python3.6.15, co_firstlineno 42, 482 code bytes */
static const uint8_t table_py36[] = {
        0x00, 0x01, 0x04, 0x01, 0x12, 0x01, 0x08, 0x01, 0x04, 0x01, 0x04, 0x01,
        0x0e, 0x02, 0x0c, 0x01, 0xff, 0x00, 0x31, 0x01, 0x02, 0x01, 0x0a, 0x01,
        0x1e, 0x01, 0x10, 0x01, 0x0c, 0x01, 0x04, 0x01, 0x10, 0x01, 0x0e, 0x7f,
        0x00, 0x7f, 0x00, 0x30,
};
static const struct run runs_py36[] = {
        { 0, 43 }, { 4, 44 }, { 22, 45 }, { 30, 46 }, { 34, 47 }, { 38, 48 },
        { 52, 50 }, { 64, 51 }, { 368, 52 }, { 370, 53 }, { 380, 54 }, { 410, 55 },
        { 426, 56 }, { 438, 57 }, { 442, 58 }, { 458, 59 }, { 472, 361 },
};
#define FIRSTLINE_py36 42
#define CODELEN_py36 482

/* py38: produced by pyenv python3.8.18, co_firstlineno 42, 478 code bytes */
static const uint8_t table_py38[] = {
        0x00, 0x01, 0x04, 0x01, 0x10, 0x01, 0x08, 0x01, 0x04, 0x01, 0x02, 0xff,
        0x02, 0x02, 0x06, 0xfe, 0x08, 0x04, 0x0a, 0x01, 0xff, 0x00, 0x31, 0x01,
        0x02, 0x01, 0x0a, 0x01, 0x1e, 0x01, 0x10, 0x01, 0x0c, 0x01, 0x04, 0x01,
        0x10, 0x01, 0x08, 0xfe, 0x06, 0x7f, 0x00, 0x7f, 0x00, 0x32,
};
static const struct run runs_py38[] = {
        { 0, 43 }, { 4, 44 }, { 20, 45 }, { 28, 46 }, { 32, 47 }, { 34, 46 },
        { 36, 48 }, { 42, 46 }, { 50, 50 }, { 60, 51 }, { 364, 52 }, { 366, 53 },
        { 376, 54 }, { 406, 55 }, { 422, 56 }, { 434, 57 }, { 438, 58 }, { 454, 59 },
        { 462, 57 }, { 468, 361 },
};
#define FIRSTLINE_py38 42
#define CODELEN_py38 478

/* py310: produced by pyenv python3.10.13, co_firstlineno 42, 800 code bytes */
static const uint8_t table_py310[] = {
        0x04, 0x01, 0x10, 0x01, 0x08, 0x01, 0x04, 0x01, 0x02, 0x01, 0x02, 0xff,
        0x06, 0x02, 0x08, 0xfe, 0x0a, 0x04, 0xfe, 0x01, 0xfe, 0x00, 0x62, 0x00,
        0x02, 0x01, 0x0a, 0x01, 0x12, 0x01, 0x1e, 0xff, 0x04, 0x80, 0x0e, 0x02,
        0x0a, 0x01, 0x02, 0xff, 0x04, 0x02, 0x10, 0x01, 0x08, 0x01, 0x06, 0xfe,
        0x00, 0x7f, 0x00, 0x7f, 0x0a, 0x32,
};
static const struct run runs_py310[] = {
        { 0, 43 }, { 4, 44 }, { 20, 45 }, { 28, 46 }, { 32, 47 }, { 34, 46 },
        { 36, 48 }, { 42, 46 }, { 50, 50 }, { 60, 51 }, { 666, 52 }, { 668, 53 },
        { 678, 54 }, { 696, 53 }, { 726, -1 }, { 730, 55 }, { 744, 56 }, { 754, 55 },
        { 756, 57 }, { 760, 58 }, { 776, 59 }, { 784, 57 }, { 790, 361 },
};
#define FIRSTLINE_py310 42
#define CODELEN_py310 800

/* py311: produced by pyenv python3.11.7, co_firstlineno 42, 430 code bytes */
static const uint8_t table_py311[] = {
        0xf8, 0x80, 0x00, 0xd8, 0x0c, 0x0d, 0x80, 0x45, 0xdd, 0x10, 0x19, 0x98,
        0x25, 0xd1, 0x10, 0x20, 0xd4, 0x10, 0x20, 0xf0, 0x00, 0x06, 0x05, 0x17,
        0xf0, 0x00, 0x06, 0x05, 0x17, 0x89, 0x04, 0x88, 0x01, 0x88, 0x31, 0xd8,
        0x0b, 0x0c, 0x88, 0x71, 0x89, 0x35, 0xf0, 0x00, 0x05, 0x09, 0x17, 0xd8,
        0x0c, 0x11, 0x90, 0x61, 0xd8, 0x16, 0x17, 0xf1, 0x03, 0x01, 0x17, 0x18,
        0xe5, 0x16, 0x19, 0x98, 0x25, 0x91, 0x6a, 0x94, 0x6a, 0xf1, 0x05, 0x02,
        0x17, 0x21, 0xf1, 0x00, 0x02, 0x0d, 0x22, 0x88, 0x45, 0x88, 0x45, 0xf0,
        0x08, 0x00, 0x0d, 0x12, 0x90, 0x51, 0x89, 0x4a, 0x88, 0x45, 0x88, 0x45,
        0xd8, 0x0b, 0x0c, 0x88, 0x61, 0x90, 0x11, 0x88, 0x29, 0x80, 0x43, 0xf0,
        0x02, 0x04, 0x05, 0x17, 0xdd, 0x0d, 0x11, 0x90, 0x2e, 0xd1, 0x0d, 0x21,
        0xd4, 0x0d, 0x21, 0xf0, 0x00, 0x01, 0x09, 0x23, 0xa0, 0x51, 0xd8, 0x0c,
        0x11, 0x95, 0x53, 0x98, 0x11, 0x9f, 0x16, 0x9a, 0x16, 0x99, 0x18, 0x9c,
        0x18, 0x91, 0x5d, 0x94, 0x5d, 0xd1, 0x0c, 0x22, 0x88, 0x45, 0xf0, 0x03,
        0x01, 0x09, 0x23, 0xf0, 0x00, 0x01, 0x09, 0x23, 0xf0, 0x00, 0x01, 0x09,
        0x23, 0xf1, 0x00, 0x01, 0x09, 0x23, 0xf4, 0x00, 0x01, 0x09, 0x23, 0xf0,
        0x00, 0x01, 0x09, 0x23, 0xf0, 0x00, 0x01, 0x09, 0x23, 0xf0, 0x00, 0x01,
        0x09, 0x23, 0xf0, 0x00, 0x01, 0x09, 0x23, 0xf0, 0x00, 0x01, 0x09, 0x23,
        0xf0, 0x00, 0x01, 0x09, 0x23, 0xf8, 0xf8, 0xf8, 0xf0, 0x00, 0x01, 0x09,
        0x23, 0xf0, 0x00, 0x01, 0x09, 0x23, 0xf0, 0x00, 0x01, 0x09, 0x23, 0xf0,
        0x00, 0x01, 0x09, 0x23, 0xf8, 0xf8, 0xe5, 0x0b, 0x12, 0xf0, 0x00, 0x01,
        0x05, 0x17, 0xf0, 0x00, 0x01, 0x05, 0x17, 0xf0, 0x00, 0x01, 0x05, 0x17,
        0xd8, 0x11, 0x16, 0x90, 0x06, 0x88, 0x05, 0x88, 0x05, 0x88, 0x05, 0xf0,
        0x03, 0x01, 0x05, 0x17, 0xf8, 0xf8, 0xf8, 0xe5, 0x0d, 0x11, 0x90, 0x45,
        0xd8, 0x14, 0x32, 0xd0, 0x14, 0x32, 0xd0, 0x14, 0x32, 0xd0, 0x14, 0x32,
        0xa0, 0x05, 0xd0, 0x14, 0x32, 0xd1, 0x14, 0x32, 0xd4, 0x14, 0x32, 0xf0,
        0x02, 0x00, 0x15, 0x63, 0x02, 0xf7, 0x00, 0x00, 0x15, 0x69, 0x02, 0xf2,
        0x00, 0x00, 0x15, 0x69, 0x02, 0xf0, 0x00, 0x00, 0x6a, 0x02, 0x6d, 0x02,
        0xf1, 0x00, 0x00, 0x15, 0x6e, 0x02, 0xf4, 0x00, 0x00, 0x15, 0x6e, 0x02,
        0xf0, 0x05, 0x02, 0x0e, 0x6f, 0x02, 0xf1, 0x00, 0x02, 0x0e, 0x6f, 0x02,
        0xf4, 0x00, 0x02, 0x0e, 0x6f, 0x02, 0x80, 0x46, 0xf0, 0x60, 0x09, 0x00,
        0x0c, 0x12, 0x90, 0x35, 0x98, 0x23, 0xd0, 0x0b, 0x1d, 0xd0, 0x04, 0x1d,
};
static const struct run runs_py311[] = {
        { 0, -1 }, { 2, 42 }, { 4, 43 }, { 8, 44 }, { 48, 45 }, { 58, 46 },
        { 62, 47 }, { 64, 46 }, { 68, 48 }, { 96, 46 }, { 108, 50 }, { 120, 51 },
        { 130, 52 }, { 132, 53 }, { 164, 54 }, { 236, 53 }, { 268, -1 }, { 274, 53 },
        { 282, -1 }, { 286, 55 }, { 304, 56 }, { 314, 55 }, { 316, -1 }, { 322, 57 },
        { 336, 58 }, { 362, 59 }, { 402, 57 }, { 420, 361 },
};
#define FIRSTLINE_py311 42
#define CODELEN_py311 430

/* py311_nocol: produced by pyenv python3.11.7 -X no_debug_ranges, co_firstlineno 42, 430 code bytes */
static const uint8_t table_py311_nocol[] = {
        0xf8, 0xe8, 0x00, 0xe8, 0x02, 0xe8, 0x00, 0xed, 0x02, 0xe8, 0x00, 0xe9,
        0x00, 0xec, 0x00, 0xe8, 0x00, 0xe8, 0x00, 0xe9, 0x00, 0xe8, 0x00, 0xe8,
        0x00, 0xe8, 0x02, 0xe8, 0x00, 0xe9, 0x00, 0xe8, 0x00, 0xe8, 0x02, 0xe8,
        0x00, 0xe8, 0x02, 0xe9, 0x03, 0xed, 0x04, 0xe8, 0x00, 0xe9, 0x00, 0xec,
        0x00, 0xe9, 0x05, 0xe9, 0x00, 0xe8, 0x00, 0xe8, 0x00, 0xe8, 0x08, 0xe8,
        0x00, 0xe9, 0x00, 0xe8, 0x00, 0xe8, 0x00, 0xe8, 0x02, 0xe8, 0x00, 0xe8,
        0x00, 0xe8, 0x00, 0xe8, 0x00, 0xe8, 0x02, 0xed, 0x02, 0xe8, 0x00, 0xe9,
        0x00, 0xec, 0x00, 0xe8, 0x00, 0xe8, 0x00, 0xe8, 0x02, 0xed, 0x00, 0xe8,
        0x00, 0xef, 0x00, 0xea, 0x00, 0xe9, 0x00, 0xec, 0x00, 0xe9, 0x00, 0xec,
        0x00, 0xe9, 0x00, 0xe8, 0x00, 0xe8, 0x03, 0xe8, 0x00, 0xe8, 0x00, 0xe9,
        0x00, 0xec, 0x00, 0xe8, 0x00, 0xe8, 0x00, 0xe8, 0x00, 0xe8, 0x00, 0xe8,
        0x00, 0xe8, 0x00, 0xf8, 0xf8, 0xf8, 0xe8, 0x00, 0xe8, 0x00, 0xe8, 0x00,
        0xe8, 0x00, 0xf8, 0xf8, 0xed, 0x04, 0xe8, 0x00, 0xe8, 0x00, 0xe8, 0x00,
        0xe8, 0x02, 0xe8, 0x00, 0xe8, 0x00, 0xe8, 0x00, 0xe8, 0x00, 0xe8, 0x03,
        0xf8, 0xf8, 0xf8, 0xed, 0x04, 0xe8, 0x00, 0xe8, 0x02, 0xe8, 0x00, 0xe8,
        0x00, 0xe8, 0x00, 0xe8, 0x00, 0xe8, 0x00, 0xe9, 0x00, 0xec, 0x00, 0xe8,
        0x02, 0xef, 0x00, 0xea, 0x00, 0xe8, 0x00, 0xe9, 0x00, 0xec, 0x00, 0xe8,
        0x05, 0xe9, 0x00, 0xec, 0x00, 0xe8, 0x00, 0xe8, 0x60, 0x09, 0xe8, 0x00,
        0xe8, 0x00, 0xe8, 0x00, 0xe8, 0x00,
};
static const struct run runs_py311_nocol[] = {
        { 0, -1 }, { 2, 42 }, { 4, 43 }, { 8, 44 }, { 48, 45 }, { 58, 46 },
        { 62, 47 }, { 64, 46 }, { 68, 48 }, { 96, 46 }, { 108, 50 }, { 120, 51 },
        { 130, 52 }, { 132, 53 }, { 164, 54 }, { 236, 53 }, { 268, -1 }, { 274, 53 },
        { 282, -1 }, { 286, 55 }, { 304, 56 }, { 314, 55 }, { 316, -1 }, { 322, 57 },
        { 336, 58 }, { 362, 59 }, { 402, 57 }, { 420, 361 },
};
#define FIRSTLINE_py311_nocol 42
#define CODELEN_py311_nocol 430

/* py312: produced by pyenv python3.12.1, co_firstlineno 42, 392 code bytes */
static const uint8_t table_py312[] = {
        0x80, 0x00, 0xd8, 0x0c, 0x0d, 0x80, 0x45, 0xdc, 0x10, 0x19, 0x98, 0x25,
        0xd3, 0x10, 0x20, 0xf2, 0x00, 0x06, 0x05, 0x17, 0x89, 0x04, 0x88, 0x01,
        0x88, 0x31, 0xd8, 0x0b, 0x0c, 0x88, 0x71, 0x8a, 0x35, 0xd8, 0x0c, 0x11,
        0x90, 0x61, 0xd8, 0x16, 0x17, 0xf1, 0x03, 0x01, 0x17, 0x18, 0xe4, 0x16,
        0x19, 0x98, 0x25, 0x93, 0x6a, 0xf1, 0x05, 0x02, 0x17, 0x21, 0xf1, 0x00,
        0x02, 0x0d, 0x22, 0x89, 0x45, 0xf0, 0x08, 0x00, 0x0d, 0x12, 0x90, 0x51,
        0x89, 0x4a, 0x89, 0x45, 0xf0, 0x0d, 0x06, 0x05, 0x17, 0xf0, 0x0e, 0x00,
        0x0c, 0x0d, 0x88, 0x61, 0x90, 0x11, 0x88, 0x29, 0x80, 0x43, 0xf0, 0x02,
        0x04, 0x05, 0x17, 0xdc, 0x0d, 0x11, 0x90, 0x2e, 0xd3, 0x0d, 0x21, 0xf0,
        0x00, 0x01, 0x09, 0x23, 0xa0, 0x51, 0xd8, 0x0c, 0x11, 0x94, 0x53, 0x98,
        0x11, 0x9f, 0x16, 0x99, 0x16, 0x9b, 0x18, 0x93, 0x5d, 0xd1, 0x0c, 0x22,
        0x88, 0x45, 0xf7, 0x03, 0x01, 0x09, 0x23, 0xf4, 0x08, 0x00, 0x0e, 0x12,
        0x90, 0x45, 0xd8, 0x20, 0x25, 0xd6, 0x14, 0x32, 0x98, 0x31, 0xa8, 0x11,
        0xa8, 0x54, 0xab, 0x18, 0x92, 0x51, 0xd2, 0x14, 0x32, 0xf0, 0x02, 0x00,
        0x15, 0x63, 0x02, 0xf7, 0x00, 0x00, 0x15, 0x69, 0x02, 0xf1, 0x00, 0x00,
        0x15, 0x69, 0x02, 0xf0, 0x00, 0x00, 0x6a, 0x02, 0x6d, 0x02, 0xf3, 0x00,
        0x00, 0x15, 0x6e, 0x02, 0xf4, 0x05, 0x02, 0x0e, 0x6f, 0x02, 0x80, 0x46,
        0xf0, 0x60, 0x09, 0x00, 0x0c, 0x12, 0x90, 0x35, 0x98, 0x23, 0xd0, 0x0b,
        0x1d, 0xd0, 0x04, 0x1d, 0xf7, 0x69, 0x09, 0x01, 0x09, 0x23, 0xf0, 0x00,
        0x01, 0x09, 0x23, 0xfb, 0xe4, 0x0b, 0x12, 0xf2, 0x00, 0x01, 0x05, 0x17,
        0xd8, 0x11, 0x16, 0x90, 0x06, 0x8a, 0x05, 0xf0, 0x03, 0x01, 0x05, 0x17,
        0xfc, 0xf2, 0x06, 0x00, 0x15, 0x33,
};
static const struct run runs_py312[] = {
        { 0, 42 }, { 2, 43 }, { 6, 44 }, { 40, 45 }, { 50, 46 }, { 54, 47 },
        { 56, 46 }, { 60, 48 }, { 80, 46 }, { 92, 50 }, { 104, 44 }, { 106, 51 },
        { 116, 52 }, { 118, 53 }, { 142, 54 }, { 198, 53 }, { 214, 57 }, { 226, 58 },
        { 268, 59 }, { 300, 57 }, { 312, 361 }, { 322, 53 }, { 340, -1 }, { 348, 55 },
        { 364, 56 }, { 374, 55 }, { 376, -1 }, { 386, 58 },
};
#define FIRSTLINE_py312 42
#define CODELEN_py312 392

/* py313: produced by pyenv python3.13.0, co_firstlineno 42, 412 code bytes */
static const uint8_t table_py313[] = {
        0x80, 0x00, 0xd8, 0x0c, 0x0d, 0x80, 0x45, 0xdc, 0x10, 0x19, 0x98, 0x25,
        0xd6, 0x10, 0x20, 0x89, 0x04, 0x88, 0x01, 0xd8, 0x0b, 0x0c, 0x88, 0x71,
        0x8f, 0x35, 0xd8, 0x0c, 0x11, 0xd8, 0x16, 0x17, 0xf1, 0x03, 0x01, 0x17,
        0x18, 0xe4, 0x16, 0x19, 0x98, 0x25, 0x93, 0x6a, 0xf1, 0x05, 0x02, 0x17,
        0x21, 0xf1, 0x00, 0x02, 0x0d, 0x22, 0x8a, 0x45, 0xf0, 0x08, 0x00, 0x0d,
        0x12, 0x90, 0x51, 0x89, 0x4a, 0x8a, 0x45, 0xf1, 0x0d, 0x00, 0x11, 0x21,
        0xf0, 0x0e, 0x00, 0x0c, 0x0d, 0x88, 0x61, 0x88, 0x29, 0x80, 0x43, 0xf0,
        0x02, 0x04, 0x05, 0x17, 0xdc, 0x0d, 0x11, 0x90, 0x2e, 0xd4, 0x0d, 0x21,
        0xa0, 0x51, 0xd8, 0x0c, 0x11, 0x94, 0x53, 0x98, 0x11, 0x9f, 0x16, 0x99,
        0x16, 0x9b, 0x18, 0x93, 0x5d, 0xd1, 0x0c, 0x22, 0x88, 0x45, 0xf7, 0x03,
        0x00, 0x0e, 0x22, 0xf4, 0x08, 0x00, 0x0e, 0x12, 0x90, 0x45, 0xd9, 0x20,
        0x25, 0xd3, 0x14, 0x32, 0xa1, 0x05, 0x98, 0x31, 0xa8, 0x54, 0xa9, 0x18,
        0x97, 0x51, 0xa1, 0x05, 0xd1, 0x14, 0x32, 0xf0, 0x02, 0x00, 0x15, 0x63,
        0x02, 0xf7, 0x00, 0x00, 0x15, 0x69, 0x02, 0xf1, 0x00, 0x00, 0x15, 0x69,
        0x02, 0xf0, 0x00, 0x00, 0x6a, 0x02, 0x6d, 0x02, 0xf3, 0x00, 0x00, 0x15,
        0x6e, 0x02, 0xf1, 0x05, 0x02, 0x0e, 0x6f, 0x02, 0x80, 0x46, 0xf0, 0x60,
        0x09, 0x00, 0x0c, 0x12, 0x98, 0x23, 0xd0, 0x0b, 0x1d, 0xd0, 0x04, 0x1d,
        0xf7, 0x69, 0x09, 0x00, 0x0e, 0x22, 0xd5, 0x0d, 0x21, 0xfb, 0xe4, 0x0b,
        0x12, 0xf3, 0x00, 0x01, 0x05, 0x17, 0xd8, 0x11, 0x16, 0x90, 0x06, 0x8a,
        0x05, 0xf0, 0x03, 0x01, 0x05, 0x17, 0xfc, 0xf2, 0x06, 0x00, 0x15, 0x33,
};
static const struct run runs_py313[] = {
        { 0, 42 }, { 2, 43 }, { 6, 44 }, { 38, 45 }, { 58, 46 }, { 60, 47 },
        { 62, 46 }, { 66, 48 }, { 86, 46 }, { 100, 50 }, { 114, 44 }, { 118, 51 },
        { 126, 52 }, { 128, 53 }, { 152, 54 }, { 208, 53 }, { 224, 57 }, { 236, 58 },
        { 284, 59 }, { 316, 57 }, { 322, 361 }, { 330, 53 }, { 358, -1 }, { 366, 55 },
        { 384, 56 }, { 394, 55 }, { 396, -1 }, { 406, 58 },
};
#define FIRSTLINE_py313 42
#define CODELEN_py313 412

struct real_table {
        const char *name;
        enum py_line_format fmt;
        const uint8_t *table;
        size_t len;
        int firstlineno, codelen, step;
        const struct run *runs;
        size_t nruns;
};

#define REAL(tag, format, stp) { \
        .name = #tag, .fmt = format, .table = table_##tag, .len = sizeof(table_##tag), \
        .firstlineno = FIRSTLINE_##tag, .codelen = CODELEN_##tag, .step = stp, \
        .runs = runs_##tag, .nruns = sizeof(runs_##tag) / sizeof(runs_##tag[0]) }

static const struct real_table reals[] = {
        /* 2.7's instructions are 1 or 3 bytes: every byte offset is asked. */
        REAL(py27, PY_LINES_LNOTAB27, 1),
        REAL(py36, PY_LINES_LNOTAB36, 2),
        REAL(py38, PY_LINES_LNOTAB36, 2),
        REAL(py310, PY_LINES_LINETABLE310, 2),
        REAL(py311, PY_LINES_LOCATIONS311, 2),
        REAL(py311_nocol, PY_LINES_LOCATIONS311, 2),
        REAL(py312, PY_LINES_LOCATIONS311, 2),
        REAL(py313, PY_LINES_LOCATIONS311, 2),
};

static int expected(const struct real_table *r, int off) {
        size_t i = 0;

        while (i + 1 < r->nruns && r->runs[i + 1].off <= off)
                i++;
        return r->runs[i].line;
}

/* The interpreter's answer for every offset of the code object. */
static void test_real(const struct real_table *r) {
        int bad = 0, n = 0;

        for (int off = 0; off < r->codelen; off += r->step, n++) {
                int want = expected(r, off);
                int got = py_line_for_offset(r->fmt, r->table, r->len, r->firstlineno, off);
                if (got != want && bad++ < 5)
                        printf("#   %s offset %d: got %d, want %d\n", r->name, off, got, want);
        }
        tap_ok(bad == 0, "%s: %d offsets give the lines PyCode_Addr2Line gave", r->name, n);
}

/*
 * Every prefix of a real table, copied to a buffer of exactly that size so
 * that ASan sees any overread.  A location/3.10 table prefix must give the
 * full table's line or -1; an lnotab prefix must agree with the full table
 * for offsets the full scan resolves before the first missing pair.
 */
static void test_truncated(const struct real_table *r) {
        int bad = 0;

        for (size_t k = 0; k < r->len; k++) {
                uint8_t *buf = malloc(k ? k : 1);
                int64_t limit = 0;
                bool lnotab = r->fmt == PY_LINES_LNOTAB27 || r->fmt == PY_LINES_LNOTAB36;

                if (!buf)
                        abort();
                memcpy(buf, r->table, k);
                /* Address reached by the first pair the prefix lacks. */
                for (size_t i = 0; i <= k / 2 * 2 && i < r->len; i += 2)
                        limit += r->table[i];
                for (int off = 0; off < r->codelen + 8; off += r->step) {
                        int full = py_line_for_offset(r->fmt, r->table, r->len, r->firstlineno, off);
                        int got = py_line_for_offset(r->fmt, buf, k, r->firstlineno, off);
                        bool fine = lnotab ? (off >= limit || got == full) : (got == -1 || got == full);
                        if (!fine && bad++ < 5)
                                printf("#   %s[:%zu] offset %d: got %d, full table %d\n",
                                       r->name, k, off, got, full);
                }
                free(buf);
        }
        tap_ok(bad == 0, "%s: every truncation of the table stays in bounds and consistent", r->name);
}

static int line(enum py_line_format fmt, const uint8_t *t, size_t len, int first, int64_t off) {
        return py_line_for_offset(fmt, t, len, first, off);
}

static void test_lnotab(void) {
        /* 2.7 reads line deltas unsigned: 0xff is +255.  3.6 reads it as -1. */
        static const uint8_t t[] = { 0x00, 0x01, 0x06, 0xff, 0x04, 0x02 };
        static const uint8_t odd[] = { 0x00, 0x01, 0x06, 0x01, 0x04 };
        static const uint8_t neg[] = { 0x02, 0xf6 };

        TAP_EQ_INT(line(PY_LINES_LNOTAB27, t, sizeof(t), 10, 0), 11, "lnotab27: first pair applies at its address");
        TAP_EQ_INT(line(PY_LINES_LNOTAB27, t, sizeof(t), 10, 6), 266, "lnotab27: line delta 0xff is +255");
        TAP_EQ_INT(line(PY_LINES_LNOTAB36, t, sizeof(t), 10, 6), 10, "lnotab36: line delta 0xff is -1");
        TAP_EQ_INT(line(PY_LINES_LNOTAB36, t, sizeof(t), 10, 9), 10, "lnotab36: line holds until the next address");
        TAP_EQ_INT(line(PY_LINES_LNOTAB36, t, sizeof(t), 10, 1000), 12, "lnotab36: past the table the last line holds");
        TAP_EQ_INT(line(PY_LINES_LNOTAB36, odd, sizeof(odd), 10, 1000), 12, "lnotab36: a trailing odd byte is ignored");
        TAP_EQ_INT(line(PY_LINES_LNOTAB27, NULL, 0, 7, 50), 7, "lnotab27: empty table gives co_firstlineno");
        TAP_EQ_INT(line(PY_LINES_LNOTAB36, neg, sizeof(neg), 3, 4), -1, "lnotab36: a line below zero is no line");
        TAP_EQ_INT(line(PY_LINES_LNOTAB36, neg, sizeof(neg), 3, 1), 3, "lnotab36: before the first address: co_firstlineno");
}

static void test_linetable310(void) {
        /* [0,4) line+1, [4,4) +2 (empty), [4,8) no line, [8,10) +1 */
        static const uint8_t t[] = { 0x04, 0x01, 0x00, 0x02, 0x04, 0x80, 0x02, 0x01 };

        TAP_EQ_INT(line(PY_LINES_LINETABLE310, t, sizeof(t), 20, 0), 21, "linetable310: first range");
        TAP_EQ_INT(line(PY_LINES_LINETABLE310, t, sizeof(t), 20, 4), -1, "linetable310: -128 is no line");
        TAP_EQ_INT(line(PY_LINES_LINETABLE310, t, sizeof(t), 20, 8), 24,
                   "linetable310: empty ranges move the line, -128 does not");
        TAP_EQ_INT(line(PY_LINES_LINETABLE310, t, sizeof(t), 20, 10), -1, "linetable310: past the table is no line");
        TAP_EQ_INT(line(PY_LINES_LINETABLE310, t, 7, 20, 8), -1, "linetable310: a half pair at the end is not read");
        TAP_EQ_INT(line(PY_LINES_LINETABLE310, NULL, 0, 20, 0), -1, "linetable310: empty table is no line");
}

static void test_locations311(void) {
        /* short form (code 0, 1 unit), one-line-2 (code 12, 2 units),
         * no location (code 15), long form -3 (code 14), no columns +7 (13). */
        static const uint8_t t[] = {
                0x80, 0x05,                     /* [0,2)  line 50, column byte */
                0xe1, 0x04, 0x08,               /* [2,6)  +2: 52 */
                0xf8,                           /* [6,8)  no location */
                0xf0, 0x07, 0x00, 0x01, 0x02,   /* [8,10) -3: 49 */
                0xe8, 0x0e,                     /* [10,12) +7: 56 */
        };
        /* A long form whose varint is cut by the next entry, one that never
         * ends, a table that starts mid-entry, and a varint that overflows. */
        static const uint8_t cut[] = { 0xf0, 0xf8 };
        static const uint8_t endless[] = { 0xf0, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x3f };
        static const uint8_t mid[] = { 0x05, 0x80 };
        static const uint8_t big[] = { 0xe8, 0x7e, 0x7f, 0x7f, 0x7f, 0x7f, 0x03 };
        static const uint8_t huge[] = { 0xe8, 0x40, 0x40, 0x40, 0x40, 0x40, 0x3c };

        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, t, sizeof(t), 50, 0), 50, "locations311: short form keeps the line");
        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, t, sizeof(t), 50, 4), 52, "locations311: one-line form 2");
        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, t, sizeof(t), 50, 6), -1, "locations311: code 15 is no line");
        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, t, sizeof(t), 50, 8), 49, "locations311: long form signed varint -3");
        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, t, sizeof(t), 50, 11), 56, "locations311: no-column form +7");
        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, t, sizeof(t), 50, 12), -1, "locations311: past the table is no line");
        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, cut, sizeof(cut), 50, 0), -1, "locations311: varint cut by the next entry");
        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, cut, 1, 50, 0), -1, "locations311: varint cut by the end of the table");
        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, endless, sizeof(endless), 50, 0), -1,
                   "locations311: an over-long varint is rejected");
        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, mid, sizeof(mid), 50, 0), -1,
                   "locations311: a table not starting at an entry is rejected");
        /* 0x7e | 0x7f<<6 ... 0x03<<30: the largest 32-bit even value, +2^31-1 */
        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, big, sizeof(big), 1, 0), -1,
                   "locations311: a line past INT_MAX is no line");
        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, huge, sizeof(huge), 1, 0), -1,
                   "locations311: a varint wider than 32 bits is rejected");
        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, t, sizeof(t), INT_MAX, 0), INT_MAX,
                   "locations311: co_firstlineno INT_MAX is kept");
}

static void test_common(void) {
        static const uint8_t t[] = { 0x80, 0x05 };

        TAP_EQ_INT(line(PY_LINES_LOCATIONS311, t, sizeof(t), 9, -2), 9, "a negative offset gives co_firstlineno");
        TAP_EQ_INT(line(PY_LINES_LNOTAB27, t, sizeof(t), 9, -1), 9, "a negative offset gives co_firstlineno (lnotab)");
        TAP_EQ_INT(line((enum py_line_format)42, t, sizeof(t), 9, 0), -1, "an unknown format is no line");
}

/* Pseudo-random garbage in every format: only -1 or a line, never a crash
 * (run under ASan to see overreads; each table is an exact-size buffer). */
static void test_garbage(void) {
        static const enum py_line_format fmts[] = {
                PY_LINES_LNOTAB27, PY_LINES_LNOTAB36, PY_LINES_LINETABLE310, PY_LINES_LOCATIONS311,
        };
        uint32_t seed = 12345;
        int bad = 0;

        for (int round = 0; round < 2000; round++) {
                size_t len = round % 40;
                uint8_t *buf = malloc(len ? len : 1);

                if (!buf)
                        abort();
                for (size_t i = 0; i < len; i++) {
                        seed = seed * 1103515245u + 12345u;
                        buf[i] = (uint8_t)(seed >> 16);
                        /* Make location-table entry starts common. */
                        if (round % 2 && i % 3 == 0)
                                buf[i] |= 0x80;
                }
                for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++)
                        for (int64_t off = 0; off < 80; off += 2)
                                if (py_line_for_offset(fmts[f], buf, len, 1, off) < -1)
                                        bad++;
                free(buf);
        }
        tap_ok(bad == 0, "random tables in every format give -1 or a line");
}

int main(void) {
        for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++)
                test_real(&reals[i]);
        for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++)
                test_truncated(&reals[i]);
        test_lnotab();
        test_linetable310();
        test_locations311();
        test_common();
        test_garbage();
        return tap_done();
}
