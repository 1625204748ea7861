/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the escaping rule (analyzer/common/escape.h) on any bytes.  The
 * terminal text must be valid UTF-8 with no C0 (not even LF), DEL, C1 or
 * bidirectional control; the JSON must be valid UTF-8 with no raw control
 * character; a column must take exactly its width; a bounded copy must stay
 * inside its buffer.  Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "utf8.h"

static uint32_t decode(const uint8_t *s, size_t len) {
        static const uint8_t mask[] = { 0, 0x7F, 0x1F, 0x0F, 0x07 };
        uint32_t cp = s[0] & mask[len];

        for (size_t i = 1; i < len; i++)
                cp = cp << 6 | (s[i] & 0x3F);
        return cp;
}

static void check(const char *out, size_t n, int json) {
        const uint8_t *u = (const uint8_t *)out;

        for (size_t i = 0; i < n;) {
                size_t l = utf8_valid_len(u + i, n - i);
                uint32_t cp;

                if (l == 0)
                        abort();
                cp = decode(u + i, l);
                if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
                        abort();
                if (!json && ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||
                              (cp >= 0x200B && cp <= 0x200F)))
                        abort();
                i += l;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s, *out = NULL, small[17];
        size_t len = 0, width;
        FILE *m;

        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;            /* what the printers get: C strings */

        m = open_memstream(&out, &len);
        width = esc_fputs(m, s);
        fclose(m);
        check(out, len, 0);
        if (width != esc_width(s))
                abort();
        free(out);

        m = open_memstream(&out, &len);
        esc_fput_json(m, (const char *)data, size);     /* any bytes, NULs too */
        fclose(m);
        check(out, len, 1);
        if (len < 2 || out[0] != '"' || out[len - 1] != '"')
                abort();
        free(out);

        width = size ? data[0] % 24 : 5;
        m = open_memstream(&out, &len);
        esc_fput_column(m, s, width);
        fclose(m);
        check(out, len, 0);
        /* columns: every piece counted as the printer counted it */
        char *copy = strndup(out, len);
        if (!copy || esc_width(copy) != width)
                abort();
        free(copy);
        free(out);

        size_t w = esc_snprint(small, sizeof(small), s);
        if (w >= sizeof(small) || strlen(small) != w)
                abort();
        check(small, w, 0);
        free(s);
        return 0;
}
