/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * binaries: the ELF files a crashed process had mapped, kept as they were at the crash.
 *
 * While the kernel holds the process, binaries_take() opens every file-backed mapping through
 * /proc/PID/map_files/ (relative to the pidfd-checked /proc/PID descriptor): the file the process
 * really mapped, whatever its path names now, in whatever root.  Nothing is resolved by path.
 * One descriptor per (device, inode), regular files only (a mapping of a device or FIFO is opened
 * O_PATH first and never for reading), at most BINARIES_MAX_FILES.
 *
 * After the process is let go, binaries_store() copies each into the storage directory's
 * binaries/, named by the SHA-256 of the bytes copied: a file is trusted for what it is, never
 * for the build-id it claims.  A second crash of the same program stores nothing new.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sha256.h"

#define BINARIES_MAX_FILES 1024

struct mapped_file {
        char *path;                     /* as /proc/PID/maps names it (in the process's root) */
        uint64_t start;                 /* its first mapping */
        dev_t dev;
        ino_t ino;
        uint64_t size;
        int64_t mtime_ns, ctime_ns;     /* as fstat saw them while the process was held */
        int fd;                         /* the mapped file, read-only (kept while it may be copied again) */
        int copy_fd;                    /* its copy, linked as binaries/<hash> (kept until verified) */
        uint8_t build_id[64];
        size_t build_id_len;
        char hash[SHA256_HEX];          /* "" until stored */
        const char *note;               /* why it was not kept (NULL: kept) */
};

struct binaries {
        struct mapped_file *files;
        size_t n;
        bool truncated;                 /* more files than BINARIES_MAX_FILES */
        bool out_of_memory;             /* an allocation failed: some files are not listed */
        int dirfd;                      /* binaries/, once binaries_store() opened it */
};

struct binaries_limits {
        uint64_t max_file;              /* a larger file is recorded, not kept */
        uint64_t max_total;             /* bytes kept per crash */
        bool max_total_is_room;         /* max_total is what MaxUse/KeepFree leave, not the setting */
        char **exclude;                 /* fnmatch(3) patterns of paths never kept; NULL-ended or NULL */
        /* the hash of a file kept before from this very file, unchanged: 1 (not read again), or 0 */
        int (*known)(const struct mapped_file *f, char hash[SHA256_HEX], void *userdata);
        void *userdata;
};

/* While the process is held: a descriptor on each mapped ELF file. */
void binaries_take(int procfd, struct binaries *b);

/*
 * Once the process is let go: each file (within the limits) copied into binaries/ under
 * storage_fd, named by its SHA-256; a file already there is not written again.  *stored_bytes:
 * what this crash added to the directory.  0, or -errno when binaries/ cannot be used.
 */
int binaries_store(int storage_fd, const struct binaries_limits *lim, struct binaries *b, uint64_t *stored_bytes);

/*
 * After the crash's rows are committed: a kept file that retention removed meanwhile (it saw no
 * crash needing it before those rows existed; it removes files in the same transaction as their
 * rows) is linked again from its copy, or copied again.  Then every descriptor is closed.
 */
void binaries_verify(struct binaries *b);

void binaries_free(struct binaries *b);
