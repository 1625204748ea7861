/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#define BUILD_ID_MAX_BYTES 64

/*
 * The cache directory: $PYSTACK_CACHE_DIR (empty: no cache), else
 * /var/cache/pystack/debug for root, else $XDG_CACHE_HOME/pystack or
 * ~/.cache/pystack.  Created 0700; refused (-EPERM) unless it belongs to
 * the caller and is not writable by group or others.
 */
int debug_cache_dir(char *buf, size_t size);

/*
 * The cached uncompressed debug file for this build-id: its descriptor
 * (and *path, malloc'ed), or -ENOENT when there is none or no usable cache.
 */
int debug_cache_open(const unsigned char *build_id, size_t build_id_len, char **path);

/*
 * Store an uncompressed copy of the debug file open at fd (left open and
 * unmoved) when it has compressed sections and the cache is usable.
 * Cost: inflates and writes the file once per build-id; nothing otherwise.
 */
void debug_cache_store(int fd, const unsigned char *build_id, size_t build_id_len);
