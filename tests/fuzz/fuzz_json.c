/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the report reader (analyzer/common/json.h) and the one text renderer on any bytes,
 * as pystackctl show meets a stored report another version wrote.  A document either parses or
 * is refused; one that parses is rendered in every mode, and the text must hold no control
 * character but LF (the renderer escapes all it prints).  Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "report_text.h"

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
        json_free(d);
        return 0;
}
