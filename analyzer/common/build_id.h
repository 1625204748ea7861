/* SPDX-License-Identifier: MIT */
#pragma once

/* build_id: the GNU build-id note of an ELF file, from its first bytes, without libelf (the crash
 * handler reads it from the files a process mapped; the analyzer from the page a core kept). */

#include <stddef.h>
#include <stdint.h>

#define BUILD_ID_MAX 64

/* Find the build-id note in a buffer holding an ELF file's first bytes
 * (as a core keeps them): 0 with the id and its length, or -ENOENT. Pure. */
int elf_build_id_from_header(const uint8_t *buf, size_t size, const uint8_t **id, size_t *len);
