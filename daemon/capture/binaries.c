/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "binaries.h"
#include "build_id.h"
#include "proc_info.h"
#include "util.h"

#define HEADER_BYTES 4096               /* where a build-id note is looked for */
#define COPY_CHUNK (1u << 20)

static bool seen(const struct binaries *b, dev_t dev, ino_t ino) {
        for (size_t i = 0; i < b->n; i++)
                if (b->files[i].dev == dev && b->files[i].ino == ino)
                        return true;
        return false;
}

/*
 * The file behind one mapping: opened O_PATH through map_files/ (no open of a device or FIFO
 * ever happens), checked to be a regular file, reopened read-only through our own descriptor,
 * never waiting (a lease another process holds on it makes that fail: -EWOULDBLOCK).  st is
 * filled, and its mode a regular file's, when the file is a regular one however the reopen went.
 */
static int open_mapping(int procfd, uint64_t start, uint64_t end, struct stat *st) {
        char name[64], self[64];
        _cleanup_close_ int path_fd = -1;

        st->st_mode = 0;
        snprintf(name, sizeof(name), "map_files/%" PRIx64 "-%" PRIx64, start, end);
        path_fd = openat(procfd, name, O_PATH | O_CLOEXEC);
        if (path_fd < 0)
                return -errno;
        if (fstat(path_fd, st) < 0)
                return -errno;
        if (!S_ISREG(st->st_mode))
                return -EBADF;
        snprintf(self, sizeof(self), "/proc/self/fd/%d", path_fd);
        int fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        return fd;
}

/* An ELF file's build-id from its first page; the length 0 when it has none, -1 when not ELF. */
static int read_build_id(int fd, struct mapped_file *f) {
        uint8_t page[HEADER_BYTES];
        const uint8_t *id;
        size_t len;
        ssize_t n = pread(fd, page, sizeof(page), 0);

        if (n < 4 || memcmp(page, "\177ELF", 4) != 0)
                return -1;
        if (elf_build_id_from_header(page, (size_t)n, &id, &len) == 0 && len <= sizeof(f->build_id)) {
                memcpy(f->build_id, id, len);
                f->build_id_len = len;
        }
        return 0;
}

void binaries_take(int procfd, struct binaries *b) {
        size_t maps_len;
        _cleanup_free_ char *maps = proc_read_at(procfd, "maps", PROC_MAX_MAPS, &maps_len);
        char *line, *save = NULL;

        *b = (struct binaries) { .dirfd = -1 };
        if (!maps) {
                b->out_of_memory = errno == ENOMEM;
                return;
        }
        b->files = calloc(BINARIES_MAX_FILES, sizeof(*b->files));
        if (!b->files) {
                b->out_of_memory = true;
                return;
        }
        /* a hostile process may map one file many times, or many files: opens are bounded too */
        unsigned opens = 0;
        dev_t last_dev = 0;
        ino_t last_ino = 0;
        for (line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                uint64_t start, end, offset, inode;
                unsigned major, minor;
                int path_at = 0;
                char perms[8];
                struct stat st;

                if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %" SCNu64 " %n", &start, &end,
                           perms, &offset, &major, &minor, &inode, &path_at) < 7 || path_at == 0 || inode == 0 ||
                    line[path_at] != '/')
                        continue;
                /* maps' own numbers: the other mappings of a file seen (usually the next lines) */
                if ((makedev(major, minor) == last_dev && (ino_t)inode == last_ino) ||
                    seen(b, makedev(major, minor), (ino_t)inode))
                        continue;
                last_dev = makedev(major, minor);
                last_ino = (ino_t)inode;
                if (b->n == BINARIES_MAX_FILES || opens == 4 * BINARIES_MAX_FILES) {
                        b->truncated = true;
                        break;
                }
                opens++;
                int fd = open_mapping(procfd, start, end, &st);
                if ((fd < 0 && !S_ISREG(st.st_mode)) || seen(b, st.st_dev, st.st_ino)) {
                        if (fd >= 0)
                                close(fd);
                        continue;
                }
                struct mapped_file *f = &b->files[b->n];
                *f = (struct mapped_file) {
                        .start = start, .dev = st.st_dev, .ino = st.st_ino, .size = (uint64_t)st.st_size, .fd = fd,
                        .copy_fd = -1,
                        .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                        .ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec,
                };
                /* a regular file we could not open without waiting (a lease on it): recorded, not kept,
                 * so that the record says what is missing; whether it was ELF cannot be known */
                if (fd < 0) {
                        f->note = fd == -EWOULDBLOCK ? "cannot be opened without waiting (a lease on it)" :
                                                       "cannot be opened";
                        if (!(f->path = strdup(line + path_at))) {
                                b->out_of_memory = true;
                                continue;
                        }
                        b->n++;
                        continue;
                }
                /* a data file (a locale archive, a cache) is not what an analysis needs */
                if (read_build_id(fd, f) < 0) {
                        close(fd);
                        continue;
                }
                if (!(f->path = strdup(line + path_at))) {
                        b->out_of_memory = true;
                        close(fd);
                        continue;
                }
                b->n++;
        }
}

static bool excluded(const struct binaries_limits *lim, const char *path) {
        for (char **p = lim->exclude; p && *p; p++)
                if (fnmatch(*p, path, FNM_PATHNAME) == 0)
                        return true;
        return false;
}

/*
 * A file kept before from this very file (device, inode, size, mtime and ctime the same: no user
 * can set a ctime back), and still in binaries/: its hash, and nothing is read.  The file is
 * fstat'ed again now, so that one changed since the process was held is copied afresh.
 */
static bool unchanged(int dirfd, const struct binaries_limits *lim, struct mapped_file *f) {
        struct stat st;
        char hash[SHA256_HEX];

        if (!lim->known || fstat(f->fd, &st) < 0 || (uint64_t)st.st_size != f->size ||
            (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != f->mtime_ns ||
            (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec != f->ctime_ns ||
            lim->known(f, hash, lim->userdata) != 1 || faccessat(dirfd, hash, F_OK, AT_EACCESS) < 0)
                return false;
        memcpy(f->hash, hash, sizeof(hash));
        return true;
}

/* The file's bytes into an unnamed file in dir, hashed as they are copied: 0 and the new fd. */
static int copy_hashed(int in, int dirfd, uint64_t size, char hash[SHA256_HEX], int *out_fd) {
        _cleanup_close_ int out = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        _cleanup_free_ char *buf = malloc(COPY_CHUNK);
        uint8_t digest[SHA256_BYTES];
        struct sha256 s;
        uint64_t off = 0;

        if (out < 0)
                return -errno;
        if (!buf)
                return -ENOMEM;
        sha256_init(&s);
        /* the size fstat saw: a file that grows meanwhile is cut there, one that shrinks is refused */
        while (off < size) {
                ssize_t n = pread(in, buf, size - off < COPY_CHUNK ? size - off : COPY_CHUNK, (off_t)off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                sha256_update(&s, buf, (size_t)n);
                for (ssize_t w = 0; w < n;) {
                        ssize_t k = write(out, buf + w, (size_t)(n - w));

                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0)
                                return k < 0 ? -errno : -EIO;
                        w += k;
                }
                off += (uint64_t)n;
        }
        sha256_final(&s, digest);
        sha256_hex(digest, hash);
        *out_fd = TAKE_FD(out);
        return 0;
}

static int link_copy(int dirfd, int copy_fd, const char *hash) {
        char fdpath[64];

        snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", copy_fd);
        return linkat(AT_FDCWD, fdpath, dirfd, hash, AT_SYMLINK_FOLLOW) == 0 ? 0 : -errno;
}

int binaries_store(int storage_fd, const struct binaries_limits *lim, struct binaries *b, uint64_t *stored_bytes) {
        uint64_t total = 0;

        *stored_bytes = 0;
        if (mkdirat(storage_fd, "binaries", 0700) < 0 && errno != EEXIST)
                return -errno;
        b->dirfd = openat(storage_fd, "binaries", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (b->dirfd < 0)
                return -errno;
        for (size_t i = 0; i < b->n; i++) {
                struct mapped_file *f = &b->files[i];
                int r;

                if (f->fd < 0)
                        continue;       /* not opened at the crash (f->note says why) */
                if (excluded(lim, f->path))
                        f->note = "excluded by BinariesExclude";
                else if (f->size > lim->max_file)
                        f->note = "larger than MaxBinarySize";
                else if (total + f->size > lim->max_total)
                        f->note = lim->max_total_is_room ? "no room left under MaxUse/KeepFree" :
                                                           "over MaxBinariesPerCrash";
                else if (unchanged(b->dirfd, lim, f)) {
                        total += f->size;       /* kept before from this very file: not read again */
                        continue;               /* its descriptor stays, in case it must be copied after all */
                } else if ((r = copy_hashed(f->fd, b->dirfd, f->size, f->hash, &f->copy_fd)) < 0) {
                        f->note = r == -ENOSPC ? "no space left" : "cannot be copied";
                        f->hash[0] = 0;
                } else {
                        total += f->size;
                        /* the same bytes are there already (another crash, another process): kept once */
                        r = link_copy(b->dirfd, f->copy_fd, f->hash);
                        if (r == 0)
                                *stored_bytes += f->size;
                        else if (r != -EEXIST) {
                                f->note = "cannot be linked into place";
                                f->hash[0] = 0;
                                closep(&f->copy_fd);
                                f->copy_fd = -1;
                        }
                }
                close(f->fd);
                f->fd = -1;
        }
        return 0;
}

void binaries_verify(struct binaries *b) {
        for (size_t i = 0; b->dirfd >= 0 && i < b->n; i++) {
                struct mapped_file *f = &b->files[i];
                char hash[SHA256_HEX];
                int tmp = -1;

                if (!f->hash[0] || faccessat(b->dirfd, f->hash, F_OK, AT_EACCESS) == 0)
                        continue;
                if (f->copy_fd >= 0)
                        link_copy(b->dirfd, f->copy_fd, f->hash);
                else if (f->fd >= 0 && copy_hashed(f->fd, b->dirfd, f->size, hash, &tmp) == 0) {
                        /* the same bytes as when it was kept, or nothing */
                        if (!strcmp(hash, f->hash))
                                link_copy(b->dirfd, tmp, f->hash);
                        close(tmp);
                }
        }
        for (size_t i = 0; i < b->n; i++) {
                closep(&b->files[i].fd);
                closep(&b->files[i].copy_fd);
                b->files[i].fd = b->files[i].copy_fd = -1;
        }
}

void binaries_free(struct binaries *b) {
        for (size_t i = 0; i < b->n; i++) {
                free(b->files[i].path);
                closep(&b->files[i].fd);
                closep(&b->files[i].copy_fd);
        }
        closep(&b->dirfd);
        free(b->files);
        *b = (struct binaries) { .dirfd = -1 };
}
