/* SPDX-License-Identifier: MIT */
#pragma once

/* Small helpers shared by every module: scope-bound cleanup and checked sizes. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* 1 in a build configured --enable-sanitizers (ASan and UBSan): what such a build needs beside
 * the program is decided at compile time, never at run time */
#ifndef SANITIZER_BUILD
#define SANITIZER_BUILD 0
#endif

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }
static inline void fclosep(FILE **f) { if (*f) fclose(*f); }

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Hand a pointer on: the cleanup of the local no longer frees it. */
#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -1; _fd; })

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* The file name of a path ("" for NULL): what follows its last '/'. */
static inline const char *path_base_name(const char *p) {
        const char *s = p ? strrchr(p, '/') : NULL;
        return s ? s + 1 : p ? p : "";
}

/* A little-endian 64-bit word (a core's, a journal header's), whatever this machine's order. */
static inline uint64_t le64_get(const uint8_t *p) {
        uint64_t v = 0;

        for (int i = 7; i >= 0; i--)
                v = v << 8 | p[i];
        return v;
}

static inline void le64_put(uint8_t *p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

/* true when [off, off+len) lies inside [0, size), without overflow */
static inline bool range_ok(uint64_t off, uint64_t len, uint64_t size) {
        return off <= size && len <= size - off;
}

/* Grow *array (of *allocated elements of `size` bytes) to hold `need`. */
int grow_array(void *array, size_t *allocated, size_t need, size_t size);

/* A growable list of owned strings (warnings, search paths). */
struct strv {
        char **v;
        size_t n, allocated;
        bool lost;              /* a string could not be added (out of memory): the list is not whole */
};

/* Append a printf-formatted string; -ENOMEM on failure (and lost is set). */
__attribute__((format(printf, 2, 3)))
int strv_addf(struct strv *s, const char *fmt, ...);
void strv_clear(struct strv *s);

/* A set of non-zero addresses (cycle detection in lists read from a core). */
struct addr_set {
        uint64_t *slots;
        size_t n, cap;
};

/* 1 if added, 0 if it was already there, -ENOMEM. Amortised O(1). */
int addr_set_add(struct addr_set *s, uint64_t addr);
void addr_set_clear(struct addr_set *s);

/* A one-line message in err (errsz bytes) for the caller to print: -EINVAL. */
__attribute__((format(printf, 3, 4)))
int errorf(char *err, size_t errsz, const char *fmt, ...);

/*
 * Open path read-only, or, for "/dev/fd/N", a duplicate of the inherited descriptor N as it is:
 * a sandboxed analyzer, no longer root, gets root-only files (its core, the crash's kept
 * binaries) that way, and reopening them by name would be refused.  -1 with errno.
 */
int open_path_or_fd(const char *path, int flags);

/* Write all n bytes of p to fd (again after EINTR and short writes): 0, or -errno (-EIO when
 * write(2) wrote nothing). */
int write_all(int fd, const void *p, size_t n);

/* "SIGSEGV" for 11 ("64" for a number without a name); static storage, not thread-safe. */
const char *signal_full_name(int sig);

/* A clock (CLOCK_REALTIME, CLOCK_MONOTONIC) in microseconds. */
static inline int64_t clock_usec(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
