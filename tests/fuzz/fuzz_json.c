/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the report reader (analyzer/common/json.h) and the one text renderer on any bytes,
 * as pystackctl show meets a stored report another version wrote.  A document either parses or
 * is refused; one that parses is rendered in every mode, and the text must hold no control
 * character but LF (the renderer escapes all it prints).  It is also written again as JSON
 * (json_fput, how the report copies a file's package note): no control character at all, and
 * it parses again (not always to the same bytes: a U+DCxx written in UTF-8 comes back as the
 * byte it stands for, escape.h).  Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "report_text.h"

static char *written(const struct json_doc *d, size_t *len) {
        char *out = NULL;
        FILE *m = open_memstream(&out, len);

        if (!m)
                abort();
        json_fput(m, json_root(d));
        fclose(m);
        return out;
}

static void check_written(const struct json_doc *d) {
        struct json_doc *again = NULL;
        size_t len;
        char *out = written(d, &len);

        for (size_t i = 0; i < len; i++)
                if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
                        abort();
        if (json_parse(out, len, &again) < 0 || json_root(again)->type != json_root(d)->type)
                abort();
        free(out);
        json_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct json_doc *d = NULL;

        if (json_parse((const char *)data, size, &d) < 0)
                return 0;
        for (int mode = 0; mode < 4; mode++) {
                struct text_options o = { .native = mode & 1, .locals = mode & 2 };
                char *out = NULL;
                size_t len = 0;
                FILE *m = open_memstream(&out, &len);

                if (!m)
                        abort();
                report_text_render(m, json_root(d), &o);
                fclose(m);
                for (size_t i = 0; i < len; i++)
                        if (((unsigned char)out[i] < 0x20 && out[i] != '\n') || out[i] == 0x7f)
                                abort();
                free(out);
        }
        check_written(d);
        json_free(d);
        return 0;
}
