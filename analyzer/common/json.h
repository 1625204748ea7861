/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * json: a reader for the JSON documents this project writes (the report of
 * doc/report-schema.md) so that whoever holds one — pystack itself,
 * pystackctl reading the store — can render it with the one text renderer.
 *
 * The input may come from a store another version wrote, so it is read as
 * untrusted: RFC 8259 syntax only, nesting at most JSON_MAX_DEPTH, every
 * string decoded and NUL-terminated.  "\udcNN" (U+DC80..U+DCFF, how
 * escape.h writes a byte that is not UTF-8) becomes that byte again; "\u0000"
 * becomes "\xef\xbf\xbd" (U+FFFD) since the strings are C strings.  Numbers
 * keep their text; the accessors convert it.
 *
 * One allocation arena per document: json_free() releases everything.  The
 * cost is O(n) time and at most about 3n bytes for n bytes of input; object
 * lookup is linear in the object's members (the report's objects are small).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"

#define JSON_MAX_DEPTH 64

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_member;

struct json_value {
        enum json_type type;
        size_t n;                       /* items of an array, members of an object, bytes of a string */
        union {
                const char *str;        /* JSON_STRING (decoded) and JSON_NUMBER (as written) */
                struct json_value *items;
                struct json_member *members;
        };
};

struct json_member {
        const char *key;
        struct json_value value;
};

struct json_doc;

/*
 * Parse len bytes.  0 and *ret (its root via json_root()), -EBADMSG for
 * anything that is not one well-formed JSON value (with trailing spaces
 * only), -ENOMEM.
 */
int json_parse(const char *text, size_t len, struct json_doc **ret);
const struct json_value *json_root(const struct json_doc *d);
void json_free(struct json_doc *d);

/* The member named key of an object, or NULL (also when v is NULL or not an object). */
const struct json_value *json_get(const struct json_value *v, const char *key);
/* Item i of an array, or NULL. */
const struct json_value *json_at(const struct json_value *v, size_t i);
/* Items of an array (0 for anything else). */
size_t json_len(const struct json_value *v);

/* The string, or NULL when v is missing or not a string. */
const char *json_str(const struct json_value *v);
/* true for JSON true only. */
bool json_true(const struct json_value *v);
/* An integral number in range, or def. */
int64_t json_int(const struct json_value *v, int64_t def);
uint64_t json_uint(const struct json_value *v, uint64_t def);

/*
 * v as JSON text into b: strings by escape.h's rule (a byte the reader decoded from "\udcXX" is
 * written so again), numbers as they were written.  Recursion is bounded by the reader's
 * JSON_MAX_DEPTH.
 */
void json_write(struct buf *b, const struct json_value *v);
/* The same, to a stream (a document json_parse() read, compact, by the same rule). */
void json_fput(FILE *out, const struct json_value *v);
