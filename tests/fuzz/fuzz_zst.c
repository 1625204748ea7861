/* SPDX-License-Identifier: MIT */
/* libFuzzer: the seekable-zstd reader on arbitrary files (stored cores are read back by root). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zst_seekable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static int fd = -1;
        struct zst_reader *r;
        uint8_t buf[4096];

        if (fd < 0)
                fd = memfd_create("fuzz-zst", MFD_CLOEXEC);
        if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
                return 0;
        if (zst_reader_open(fd, &r) == 0) {
                uint64_t total = zst_reader_size(r);
                /* a few reads across the whole: start, middle, end */
                for (uint64_t off = 0; total && off < total; off += total / 3 + 1)
                        (void)zst_reader_pread(r, buf, total - off < sizeof(buf) ? total - off : sizeof(buf), off);
                zst_reader_free(r);
        }
        return 0;
}
