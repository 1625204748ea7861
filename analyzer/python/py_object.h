/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * py_object: copying Python objects out of the crashed process.
 *
 * Every read is bounded by the caller's limit; an object that cannot be
 * read, or claims an absurd size, gives an error rather than a guess.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "py_layout.h"
#include "target.h"

/* Longest name or file name we copy, in bytes of UTF-8 (longer ones are cut with "..."). */
#define PY_MAX_NAME 4096

/*
 * One field of an object: the word, int64 or int32 at obj + off.  Every
 * reader of a CPython structure goes through these (or through the field_*
 * accessors below, for a struct copied in one read), so a field the version
 * does not have (off == PY_OFF_NONE) and a NULL object are never read:
 * both give -EFAULT, as unreadable memory does.
 */
int py_read_ptr(struct target *t, uint64_t obj, py_off off, uint64_t *v);
int py_read_i64(struct target *t, uint64_t obj, py_off off, int64_t *v);
int py_read_i32(struct target *t, uint64_t obj, py_off off, int32_t *v);

/* A field of a struct already copied into b (at least the span its offsets reach); 0 (or -1 for
 * the byte) when the version does not have it. */
uint64_t py_field_u64(const uint8_t *b, py_off off);
int32_t py_field_i32(const uint8_t *b, py_off off);
int py_field_u8(const uint8_t *b, py_off off);

/* What a string-like object holds: how its characters are stored. */
enum py_chars_kind {
        PY_CHARS_STR,                   /* a 3.x str: 1, 2 or 4 bytes per character (its state word) */
        PY_CHARS_UNICODE27,             /* a 2.7 unicode: 2 or 4 (narrow builds pair surrogates) */
        PY_CHARS_BYTES,                 /* bytes, or a 2.7 str: one byte each */
};

/*
 * The one string decoder: up to max characters of a string-like object as
 * code points (bytes as 0..255), *cut when it has more.  0 and *ret
 * (malloc'ed, *n entries), -EFAULT, -EBADMSG (an impossible length or
 * width), -ENOMEM.
 */
int py_read_chars(struct target *t, const struct py_layout *l, uint64_t obj, enum py_chars_kind kind, size_t max,
                  uint32_t **ret, size_t *n, bool *cut);

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

/* Hash-table slots scanned for one dict or set, at most. */
#define PY_MAX_SCAN (1u << 16)

/* Called for each entry; returns false to stop. */
typedef bool (*py_pair_fn)(void *ctx, uint64_t key, uint64_t value);

/*
 * Each live key: value pair of a dict (any version's layout), in insertion order
 * (2.7: table order), at most PY_MAX_SCAN slots scanned; fn may stop it early.
 * 0, -EFAULT (unreadable), -EBADMSG (impossible sizes).
 */
int py_dict_each(struct target *t, const struct py_layout *l, uint64_t dict, py_pair_fn fn, void *ctx);

/* Each key of a set or frozenset (value 0), as py_dict_each; 3.x's deleted slots are skipped,
 * 2.7's dummy key is the caller's to recognize. */
int py_set_each(struct target *t, const struct py_layout *l, uint64_t set, py_pair_fn fn, void *ctx);

/*
 * 3.x: dict[name] for the str key equal to the ASCII name (py_dict_get), or the attribute `name`
 * in an object's own namespace (py_attr): its inline values (3.13+), its managed dict, or the
 * dict at its type's tp_dictoffset (a module's, a class instance's).  The class and its bases
 * are not searched.  0 and *value, -ENOENT (not there), -EFAULT, -EBADMSG.
 */
int py_dict_get(struct target *t, const struct py_layout *l, uint64_t dict, const char *name, uint64_t *value);
int py_attr(struct target *t, const struct py_layout *l, uint64_t obj, const char *name, uint64_t *value);
