/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * py_locals: the arguments and local variables of Python frames, rendered
 * like Python's repr().
 *
 * The formatting below needs no core, so that the unit tests can check it
 * against what Python prints:
 *
 *   float     repr(): shortest digits that round-trip, "1e+16", "inf", "-0.0"
 *   int       any size, from CPython's digit array (base 2^15 or 2^30)
 *   str/bytes quotes and escapes as unicode_repr()/bytes_repr() choose them
 *
 * Truncation marks: a string cut after max_string characters ends in
 * "..." inside its quotes ('abc...'), a container cut after max_items
 * items ends in ", ..." ([1, 2, ...]), a container nested deeper than
 * max_depth (or containing itself) is "[...]", "{...}", "(...)" as Python
 * prints a recursive container, and a value longer than max_repr bytes is
 * cut (on a UTF-8 boundary) to max_repr - 3 bytes followed by "...".
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An output buffer that stops growing past `max` bytes. */
struct repr_buf {
        char *p;
        size_t len, cap;
        size_t max;                     /* the bound of the final text (>= 3) */
        bool full;                      /* more than max bytes were offered: stop producing */
        bool oom;
};

void repr_buf_init(struct repr_buf *b, size_t max);
void repr_buf_put(struct repr_buf *b, const char *s, size_t n);
void repr_buf_puts(struct repr_buf *b, const char *s);
__attribute__((format(printf, 2, 3)))
void repr_buf_printf(struct repr_buf *b, const char *fmt, ...);
/* Roll back to an earlier length (an object that turned out unreadable). */
void repr_buf_truncate(struct repr_buf *b, size_t len);
/* The bounded, NUL-terminated text (malloc'ed; the buffer is emptied), or NULL. */
char *repr_buf_finish(struct repr_buf *b);
void repr_buf_free(struct repr_buf *b);

/* repr(float) into out (at least 32 bytes): 0, or -EINVAL when out is too small. */
int py_repr_float(double v, char *out, size_t size);

/*
 * The decimal text of an int given as n digits of `shift` bits (1..30),
 * least significant first, as CPython stores them: malloc'ed, or NULL on
 * -ENOMEM / a bad shift.  Bits above `shift` in a digit are ignored.
 */
char *py_long_to_decimal(const uint32_t *digits, size_t n, unsigned shift, bool negative);

enum py_str_style {
        PY_STR_STR3,            /* 3.x str: printable non-ASCII kept */
        PY_STR_BYTES3,          /* 3.x bytes: b'..', \xhh above 0x7e */
        PY_STR_STR27,           /* 2.7 str: as bytes, without the b */
        PY_STR_UNICODE27,       /* 2.7 unicode: u'..', every non-ASCII escaped */
};

/* Append the repr of n code points (bytes for the byte styles); `cut` adds "..." before the closing quote. */
void py_repr_string(struct repr_buf *b, const uint32_t *cp, size_t n, bool cut, enum py_str_style style);

/* str.isprintable() for one character, approximately: control, format,
 * separator (but space), surrogate, private-use and noncharacter code
 * points are not printable; unassigned ones are taken as printable. */
bool py_unicode_printable(uint32_t cp);

struct analysis;
struct locals_options;
struct code_vars;

/* Read the arguments and locals of every Python frame of every thread, within the limits. */
void py_locals_read(struct analysis *a, const struct locals_options *o);

/* Free what py_locals decoded from one code object (kept in the code cache, py_frame.h). */
void code_vars_free(struct code_vars *cv);
