/* SPDX-License-Identifier: MIT */
#pragma once

/* buf: a growable byte buffer that remembers a failed allocation, for text built in pieces
 * (JSON documents, lines of a report) where checking every append would hide the logic. */

#include <stdbool.h>
#include <stddef.h>

/* A growable byte buffer (JSON text). */
struct buf {
        char *p;
        size_t n, cap;
        bool failed;            /* an allocation failed: the content is incomplete */
};

void buf_put(struct buf *b, const void *s, size_t n);
void buf_puts(struct buf *b, const char *s);
/* s (n bytes, any content) as a JSON string by escape.h's rule: bytes that are not UTF-8
 * become \udc80+byte, as Python's surrogateescape would, so the original bytes can be recovered. */
void buf_put_json_string(struct buf *b, const char *s, size_t n);
/* NUL-terminated text of the buffer, or NULL after a failure. */
const char *buf_str(struct buf *b);
void buf_free(struct buf *b);
