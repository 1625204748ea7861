/* SPDX-License-Identifier: MIT */
/* libFuzzer: core note parsing (NT_PRSTATUS, NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FILE, NT_ARM_TLS,
 * NT_ARM_PAC_MASK), every input as an x86-64 core's notes and as an aarch64 core's. */
#include <stdlib.h>
#include <string.h>

#include "core_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* a copy the exact size of the input: any read past it is a bug ASan sees */
        uint8_t *buf = malloc(size ? size : 1);

        memcpy(buf, data, size);
        for (int arch = 0; arch < 2; arch++) {
                struct core_file c = { .arch = arch ? &core_arch_aarch64 : &core_arch_x86_64 };
                const char *err = NULL;

                if (core_parse_notes(&c, buf, size, &err) == 0) {
                        /* use what was parsed: names must be terminated inside the buffer */
                        for (size_t i = 0; i < c.n_mappings; i++)
                                (void)strlen(c.mappings[i].path);
                        (void)core_crashed_thread(&c);
                        (void)core_auxv(&c, 9);
                }
                free(c.threads);
                free(c.auxv);
                free(c.mappings);
        }
        free(buf);
        return 0;
}
