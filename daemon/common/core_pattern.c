/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "core_pattern.h"
#include "util.h"

int core_pattern_read(char *buf, size_t size) {
        _cleanup_close_ int fd = open(CORE_PATTERN_FILE, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        return 0;
}

int core_pattern_write(const char *pattern) {
        char back[CORE_PATTERN_MAX + 1];
        _cleanup_close_ int fd = open(CORE_PATTERN_FILE, O_WRONLY | O_CLOEXEC);
        size_t len = strlen(pattern);
        int r;

        if (fd < 0)
                return -errno;
        if (len >= CORE_PATTERN_MAX)
                return -ENAMETOOLONG;
        if (write(fd, pattern, len) != (ssize_t)len)
                return errno ? -errno : -EIO;
        if ((r = core_pattern_read(back, sizeof(back))) < 0)
                return r;
        return strcmp(back, pattern) == 0 ? 0 : -EINVAL;
}

static int read_saved(const char *runtime_dir, char *buf, size_t size) {
        _cleanup_close_ int dir = open_private_dir(AT_FDCWD, runtime_dir);
        _cleanup_close_ int fd = -1;
        struct stat st;
        ssize_t n;

        if (dir < 0)
                return dir;
        fd = openat(dir, PIPE_PATTERN_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid() ||
            (st.st_mode & 022))
                return -EPERM;
        n = read(fd, buf, size - 1);
        if (n <= 0)
                return n < 0 ? -errno : -ENOENT;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        return buf[0] == '|' ? 0 : -EBADMSG;
}

static int save(const char *runtime_dir, const char *pattern) {
        _cleanup_close_ int dir = open_private_dir(AT_FDCWD, runtime_dir);
        _cleanup_close_ int fd = -1;
        size_t len = strlen(pattern);

        if (dir < 0)
                return dir;
        unlinkat(dir, PIPE_PATTERN_NAME ".new", 0);
        fd = openat(dir, PIPE_PATTERN_NAME ".new", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (write(fd, pattern, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) < 0)
                return -errno;
        return renameat(dir, PIPE_PATTERN_NAME ".new", dir, PIPE_PATTERN_NAME) < 0 ? -errno : 0;
}

/* The first word of a pipe pattern, the program the kernel runs. */
static int pipe_program(const char *pattern, char *buf, size_t size) {
        size_t n;

        if (pattern[0] != '|')
                return -EINVAL;
        n = strcspn(pattern + 1, " \t");
        if (!n || n >= size)
                return -EINVAL;
        memcpy(buf, pattern + 1, n);
        buf[n] = 0;
        return 0;
}

/* A pipe pattern that runs the handler (the same file, however it is named). */
static bool runs_handler(const char *pattern, const char *handler) {
        char prog[CORE_PATTERN_MAX];
        struct stat a, b;

        return pipe_program(pattern, prog, sizeof(prog)) == 0 && stat(prog, &a) == 0 && stat(handler, &b) == 0 &&
               a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int core_pattern_to_socket(const char *runtime_dir, const char *socket_path, const char *handler, char *why,
                           size_t whysz) {
        char current[CORE_PATTERN_MAX + 1], saved[CORE_PATTERN_MAX + 1], want[CORE_PATTERN_MAX + 1];
        int r;

        if ((size_t)snprintf(want, sizeof(want), "@@%s", socket_path) >= CORE_PATTERN_MAX) {
                snprintf(why, whysz, "the socket path %s is too long for core_pattern", socket_path);
                return -ENAMETOOLONG;
        }
        if ((r = core_pattern_read(current, sizeof(current))) < 0) {
                snprintf(why, whysz, "cannot read %s: %s", CORE_PATTERN_FILE, strerror(-r));
                return r;
        }
        if (strcmp(current, want) == 0) {
                /* an earlier listener's, killed before it gave the pattern back: its saved one stands */
                if (read_saved(runtime_dir, saved, sizeof(saved)) == 0)
                        return 0;
                snprintf(why, whysz, "core_pattern is already %s, and no pipe pattern is saved to go back to",
                         want);
                return -EPERM;
        }
        if (!runs_handler(current, handler)) {
                snprintf(why, whysz, "core_pattern (%s) is not pystack-coredump's pipe pattern: socket capture "
                         "replaces only that", current);
                return -EPERM;
        }
        if ((r = save(runtime_dir, current)) < 0) {
                snprintf(why, whysz, "cannot save the pipe pattern in %s/%s: %s", runtime_dir, PIPE_PATTERN_NAME,
                         strerror(-r));
                return r;
        }
        r = core_pattern_write(want);
        if (r == -EINVAL) {
                /* refused: put the pipe pattern back (the write may have half-taken) */
                core_pattern_write(current);
                snprintf(why, whysz, "the kernel refused %s (Linux 6.17 or later is needed, and a path the "
                         "initial mount namespace reaches without symbolic links)", want);
                return -ENOTSUP;
        }
        if (r < 0) {
                snprintf(why, whysz, "cannot write %s: %s", CORE_PATTERN_FILE, strerror(-r));
                return r;
        }
        return 0;
}

int core_pattern_to_pipe(const char *runtime_dir, const char *socket_path) {
        char current[CORE_PATTERN_MAX + 1], saved[CORE_PATTERN_MAX + 1];
        int r;

        if ((r = core_pattern_read(current, sizeof(current))) < 0)
                return r;
        if (strncmp(current, "@@", 2) != 0 || strcmp(current + 2, socket_path) != 0)
                return 0;
        if ((r = read_saved(runtime_dir, saved, sizeof(saved))) < 0)
                return r;
        r = core_pattern_write(saved);
        return r < 0 ? r : 1;
}

int core_pattern_saved_handler(const char *runtime_dir, char *buf, size_t size) {
        char saved[CORE_PATTERN_MAX + 1];
        int r = read_saved(runtime_dir, saved, sizeof(saved));

        return r < 0 ? r : pipe_program(saved, buf, size);
}
