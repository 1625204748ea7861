/* SPDX-License-Identifier: MIT */
/* libFuzzer: the pystack.conf parser. */
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct config c;
        char err[256];
        char *text = malloc(size ? size : 1);

        memcpy(text, data, size);
        if (config_defaults(&c) == 0) {
                (void)config_parse(&c, text, size, "fuzz.conf", err, sizeof(err));
                config_free(&c);
        }
        free(text);
        return 0;
}
