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
 * / -EBADMSG (not plausibly a string) / -ENOMEM.  Bytes that are not valid
 * UTF-8 become U+FFFD.
 */
int py_read_text(struct target *t, const struct py_layout *l, uint64_t obj, size_t max, char **ret);

/* The bytes of a bytes object (or 2.7 str) at most max long: 0, the copy and its length. */
int py_read_bytes(struct target *t, const struct py_layout *l, uint64_t obj, size_t max,
                  uint8_t **ret, size_t *len);

/* Copy src (len bytes) to a new string, replacing invalid UTF-8 by U+FFFD. */
char *utf8_sanitize(const uint8_t *src, size_t len);
