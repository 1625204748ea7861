/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the whole Python analysis (runtime discovery, thread and frame
 * walks, code objects, line tables, locals rendering, asyncio tasks) over the memory of a
 * real core that the fuzzer mutates.
 *
 * The seed core is read once (PYSTACK_FUZZ_CORE); each input is a list of
 * patches {u32 offset, u8 length, bytes} applied to a copy of it, written to
 * a memfd the analyzer opens as /dev/fd/N.  Patches land anywhere — notes,
 * heap, stacks, interpreter state — so every pointer and length the walkers
 * read is, sooner or later, hostile.  A patch whose length byte has its top
 * bit set lands in the core's copy of the _Py_DebugOffsets block (3.13+
 * cores), so versions, sizes and offsets are mutated far more often than
 * chance would.  PYSTACK_FUZZ_ROOT is passed as --lib-search-root (cores of
 * Debian sid's interpreters).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analysis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *seed;
static size_t seed_size;
static int memfd = -1;
static size_t block = SIZE_MAX;         /* where "xdebugpy" starts in the seed */

static void load_seed(void) {
        const char *path = getenv("PYSTACK_FUZZ_CORE");
        struct stat st;
        int fd;

        if (!path || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "fuzz_py_walker: set PYSTACK_FUZZ_CORE to a readable core\n");
                exit(2);
        }
        seed_size = (size_t)st.st_size;
        seed = malloc(seed_size);
        if (!seed || read(fd, seed, seed_size) != (ssize_t)seed_size)
                exit(2);
        close(fd);
        for (size_t i = 0; i + PY_DEBUG_OFFSETS_MAX <= seed_size && block == SIZE_MAX; i += 8)
                if (memcmp(seed + i, "xdebugpy", 8) == 0)
                        block = i;
        memfd = memfd_create("fuzz-core", MFD_CLOEXEC);
        if (memfd < 0)
                exit(2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct analysis_options opts = {
                .max_frames = 10000, .locals = true, .tasks = true,
                .locals_limits = { .max_string = 80, .max_items = 10, .max_depth = 3, .max_repr = 1024 },
        };
        struct analysis *a = NULL;
        const char *err;
        char path[32];

        opts.target.lib_search_root = getenv("PYSTACK_FUZZ_ROOT");

        if (!seed)
                load_seed();
        /* patches are written into the memfd copy, then undone below */
        if (pwrite(memfd, seed, seed_size, 0) != (ssize_t)seed_size)
                return 0;
        for (size_t i = 0; i + 5 <= size;) {
                uint32_t off;
                memcpy(&off, data + i, 4);
                size_t len = data[i + 4];
                bool in_block = (len & 0x80) && block != SIZE_MAX;
                i += 5;
                if (in_block)
                        len &= 0x7f;
                if (len > size - i)
                        len = size - i;
                off = in_block ? (uint32_t)(block + off % PY_DEBUG_OFFSETS_MAX) : off % (uint32_t)seed_size;
                if (len > seed_size - off)
                        len = seed_size - off;
                if (pwrite(memfd, data + i, len, off) != (ssize_t)len)
                        return 0;
                i += len;
        }
        snprintf(path, sizeof(path), "/dev/fd/%d", memfd);
        (void)analysis_run(path, &opts, &a, &err);
        analysis_free(a);
        return 0;
}
