/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * py_object: copying Python objects out of the crashed process.
 *
 * Every read is bounded by the caller's limit; an object that cannot be
 * read, or claims an absurd size, gives an error rather than a guess.
 */

#include <stddef.h>
#include <stdint.h>

#include "py_layout.h"
#include "target.h"

/* Longest name or file name we copy, in bytes of UTF-8 (longer ones are cut with "..."). */
#define PY_MAX_NAME 4096

/*
 * A str (3.x) or bytes/str (2.7) object as a NUL-terminated UTF-8 string,
 * at most `max` bytes of text: 0 and *ret (malloc'ed), or -EFAULT (unreadable)
 * / -EBADMSG (not plausibly a string) / -ENOMEM.  The bytes are the name's
 * own: a 3.x str's U+DC80..U+DCFF (surrogateescape, as in a file name that is
 * not UTF-8) become the bytes they stand for, a 2.7 str is copied as it is;
 * so the result need not be valid UTF-8, and printers escape it (escape.h).
 * A NUL becomes U+FFFD, other lone surrogates U+FFFD.
 */
int py_read_text(struct target *t, const struct py_layout *l, uint64_t obj, size_t max, char **ret);

/*
 * A C string of the process (a type's tp_name) into buf (size > 0 bytes),
 * read a byte at a time since it may end right before unmapped memory: the
 * bytes as they are (printers escape), NUL-terminated, cut at size - 1.
 * Returns its length.
 */
size_t py_read_cstring(struct target *t, uint64_t addr, char *buf, size_t size);

/* The bytes of a bytes object (or 2.7 str) at most max long: 0, the copy and its length. */
int py_read_bytes(struct target *t, const struct py_layout *l, uint64_t obj, size_t max,
                  uint8_t **ret, size_t *len);
