/* SPDX-License-Identifier: MIT */
/* libFuzzer: what pystackd reads from any local user on its query socket, and the time parser. */
#include <stdlib.h>
#include <string.h>

#include "query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct query q;
        char *text = malloc(size + 1);
        int64_t t;

        memcpy(text, data, size);
        text[size] = 0;
        (void)query_from_wire(&q, text, size);
        if (size < 256 && !memchr(data, 0, size))
                (void)parse_time(text, 1764265625000000LL, &t);
        free(text);
        return 0;
}
