/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "escape.h"

void buf_put(struct buf *b, const void *s, size_t n) {
        if (b->failed)
                return;
        if (b->n + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                char *p;

                while (cap < b->n + n + 1)
                        cap *= 2;
                p = realloc(b->p, cap);
                if (!p) {
                        b->failed = true;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n] = 0;
}

void buf_puts(struct buf *b, const char *s) {
        buf_put(b, s, strlen(s));
}

void buf_put_json_string(struct buf *b, const char *s, size_t n) {
        struct esc_piece p;

        buf_put(b, "\"", 1);
        for (size_t i = 0; i < n; i += p.consumed) {
                esc_next(s + i, n - i, ESC_JSON, &p);
                buf_put(b, p.text, p.len);
        }
        buf_put(b, "\"", 1);
}

const char *buf_str(struct buf *b) {
        if (b->failed)
                return NULL;
        return b->p ? b->p : "";
}

void buf_free(struct buf *b) {
        free(b->p);
        *b = (struct buf) {};
}
