/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "source_lines.h"
#include "util.h"

struct source_file {
        char *path;
        char *text;             /* NULL when unreadable */
        size_t size;
        size_t *line_starts;    /* offsets of each line */
        size_t n_lines;
};

struct source_cache {
        int root_fd;            /* the tree the process ran in, or -1 */
        bool root_only;         /* nothing outside it is read */
        struct source_file files[SOURCE_MAX_FILES];
        size_t n;
        char line[1024];
        bool out_of_memory;     /* a line could not be kept: it is missing, not unreadable */
};

struct source_cache *source_cache_new(const char *root, bool root_only) {
        struct source_cache *c = calloc(1, sizeof(struct source_cache));
        struct stat st;

        if (!c)
                return NULL;
        c->root_fd = -1;
        c->root_only = root_only;
        if (root) {
                c->root_fd = open_path_or_fd(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
                /* a handle that is not a directory is no root (and none is used: root_only reads nothing) */
                if (c->root_fd >= 0 && (fstat(c->root_fd, &st) < 0 || !S_ISDIR(st.st_mode))) {
                        close(c->root_fd);
                        c->root_fd = -1;
                }
        }
        return c;
}

bool source_cache_out_of_memory(const struct source_cache *c) {
        return c && c->out_of_memory;
}

void source_cache_free(struct source_cache *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n; i++) {
                free(c->files[i].path);
                free(c->files[i].text);
                free(c->files[i].line_starts);
        }
        if (c->root_fd >= 0)
                close(c->root_fd);
        free(c);
}

/* openat2(2); without resolve flags it is openat(2), which serves where openat2 does not exist
 * (Linux before 5.6; qemu-user 7.2, which runs a cross build's tests).  Under a root nothing
 * stands in for RESOLVE_IN_ROOT: no file. */
static int open_how(int dirfd, const char *path, const struct open_how *how) {
        int fd = (int)syscall(SYS_openat2, dirfd, path, how, sizeof(*how));

        if (fd < 0 && errno == ENOSYS && how->resolve == 0)
                fd = openat(dirfd, path, (int)how->flags);
        return fd;
}

/*
 * A regular file, opened for reading: looked at through an O_PATH handle first, so that a device
 * named like a source file is never opened (opening one can have effects), then opened by the same
 * resolution and checked to be the same file.  Under a root (dirfd), resolved as if it were / (its
 * links and ".." stay inside it, /proc's magic links are refused).
 */
static int open_regular(int dirfd, const char *path, bool in_root) {
        struct open_how how = {
                .flags = O_PATH | O_CLOEXEC,
                .resolve = in_root ? RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS : 0,
        };
        struct stat a, b;
        int p, fd;

        p = open_how(dirfd, path, &how);
        if (p < 0)
                return -errno;
        if (fstat(p, &a) < 0 || !S_ISREG(a.st_mode) || a.st_size > SOURCE_MAX_FILE) {
                close(p);
                return -EINVAL;
        }
        close(p);
        how.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
        fd = open_how(dirfd, path, &how);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &b) < 0 || b.st_dev != a.st_dev || b.st_ino != a.st_ino) {
                close(fd);
                return -EINVAL;
        }
        return fd;
}

static void load(struct source_file *f, struct source_cache *c) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        size_t got = 0, allocated = 0;

        if (f->path[0] == '<')  /* "<string>", "<stdin>", "<frozen ...>" */
                return;
        /* under a root: absolute names only (a relative one was relative to a cwd we do not know) */
        if (c->root_fd >= 0 && f->path[0] == '/')
                fd = open_regular(c->root_fd, f->path, true);
        if (fd < 0 && !c->root_only)
                fd = open_regular(AT_FDCWD, f->path, false);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SOURCE_MAX_FILE)
                return;
        f->text = malloc(st.st_size + 1);
        if (!f->text) {
                c->out_of_memory = true;
                return;
        }
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, f->text + got, st.st_size - got);
                if (n <= 0)
                        break;
                got += n;
        }
        f->text[got] = 0;
        f->size = got;
        /* a line starts at 0 and after every newline but a final one */
        size_t i = 0;
        do {
                const char *nl;

                if (grow_array(&f->line_starts, &allocated, f->n_lines + 1, sizeof(size_t)) < 0) {
                        c->out_of_memory = true;
                        break;
                }
                f->line_starts[f->n_lines++] = i;
                nl = memchr(f->text + i, '\n', got - i);
                if (!nl)
                        break;
                i = (size_t)(nl - f->text) + 1;
        } while (i < got);
}

const char *source_line(struct source_cache *c, const char *file, int line) {
        struct source_file *f = NULL;
        const char *s, *e;

        if (!c || line <= 0)
                return NULL;
        for (size_t i = 0; i < c->n; i++)
                if (strcmp(c->files[i].path, file) == 0) {
                        f = &c->files[i];
                        break;
                }
        if (!f) {
                if (c->n == SOURCE_MAX_FILES)
                        return NULL;
                f = &c->files[c->n];
                f->path = strdup(file);
                if (!f->path) {
                        c->out_of_memory = true;
                        return NULL;
                }
                c->n++;
                load(f, c);
        }
        if (!f->text || (size_t)line > f->n_lines)
                return NULL;
        s = f->text + f->line_starts[line - 1];
        e = (size_t)line < f->n_lines ? f->text + f->line_starts[line] : f->text + f->size;
        while (s < e && isspace((unsigned char)*s))
                s++;
        while (e > s && isspace((unsigned char)e[-1]))
                e--;
        snprintf(c->line, sizeof(c->line), "%.*s", (int)(e - s), s);
        return c->line;
}
