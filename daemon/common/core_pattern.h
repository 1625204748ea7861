/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * core_pattern: switching kernel.core_pattern between pystack-coredump's pipe handler and its
 * coredump socket ("@@PATH", Linux 6.17+), and back.
 *
 * The pipe pattern stays the base: socket capture replaces it only while a listener accepts,
 * and the pattern it replaced is kept in RUNTIME_DIR/pipe-core-pattern (root's, 0600) so that
 * whoever sees the listener gone -- the listener itself on SIGTERM, pystackd when it was killed
 * -- puts it back.  Each switch is conditional: only a pattern that is ours is replaced.
 */

#include <stddef.h>

#define CORE_PATTERN_FILE "/proc/sys/kernel/core_pattern"
#define CORE_PATTERN_MAX 128            /* the kernel's CORENAME_MAX_SIZE, with its NUL */
#define COREDUMP_SOCKET_NAME "coredump.socket"
#define PIPE_PATTERN_NAME "pipe-core-pattern"

/* The current pattern, without its newline: 0, or -errno. */
int core_pattern_read(char *buf, size_t size);

/* Write a pattern and read it back: 0, -EINVAL (the kernel refused it), or -errno. */
int core_pattern_write(const char *pattern);

/*
 * Install "@@socket_path" in place of the pipe pattern of the handler whose executable is
 * `handler` (the same file: compared by device and inode, so a link to it counts), saving that
 * pipe pattern first.  0 when installed (or already installed by an earlier listener, whose
 * saved pipe pattern is kept); -EPERM when the current pattern is not ours, -ENOTSUP when the
 * kernel refuses the socket pattern (older than 6.17, or the path is not usable from the
 * initial mount namespace), -errno otherwise.  `why` says it in a line.
 */
int core_pattern_to_socket(const char *runtime_dir, const char *socket_path, const char *handler, char *why,
                           size_t whysz);

/*
 * Put the saved pipe pattern back when the current pattern is "@@socket_path": 1 when it was
 * put back, 0 when the pattern was not ours (left alone), -errno.
 */
int core_pattern_to_pipe(const char *runtime_dir, const char *socket_path);

/* The saved pipe pattern's handler (its first word): 0 and the path in buf, or -errno. */
int core_pattern_saved_handler(const char *runtime_dir, char *buf, size_t size);
