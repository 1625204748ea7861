/* SPDX-License-Identifier: MIT */
/* libFuzzer: every line-table format on arbitrary bytes and offsets. */
#include <stdlib.h>
#include <string.h>

#include "line_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        int64_t offset;
        int first;

        if (size < 13)
                return 0;
        memcpy(&offset, data, 8);
        memcpy(&first, data + 8, 4);
        enum py_line_format fmt = (enum py_line_format)(data[12] % 4);
        size -= 13;
        uint8_t *table = malloc(size ? size : 1);
        memcpy(table, data + 13, size);
        (void)py_line_for_offset(fmt, table, size, first, offset);
        free(table);
        return 0;
}
