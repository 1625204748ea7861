/* SPDX-License-Identifier: MIT */
/*
 * The store's files opened through a checked directory descriptor, never by path.
 *
 * SQLite's unix VFS takes path names: between our checks of the storage directory and its
 * open() of pystack.db, -wal and -shm, whoever can write in the path could swap a directory or a
 * file for a link elsewhere.  The unix VFS lets a program replace the system calls it makes
 * (xSetSystemCall): for a name in an anchored directory -- one reached by the trusted walk
 * (trusted_parent), kept open -- ours resolve it with openat/fstatat/unlinkat on that
 * descriptor, never following a link, and accept only a plain file with one link (or the
 * directory itself, which SQLite opens to fsync it).  Every other name goes to the real call.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "store_internal.h"

#define MAX_ANCHORS 8

static struct anchor {
        char *dir;                      /* absolute, no trailing slash */
        size_t len;
        int fd;
        unsigned users;                 /* stores open in it */
        bool readonly;                  /* opened only to be read: no file in it is opened for writing */
} anchors[MAX_ANCHORS];
static size_t n_anchors;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static sqlite3_syscall_ptr real_open, real_stat, real_lstat, real_access, real_unlink, real_readlink;

/* The anchor and the name in it that path is: ".", or one component.  NULL when it is none. */
static const struct anchor *anchored(const char *path, const char **name) {
        const struct anchor *hit = NULL;

        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < n_anchors && !hit; i++) {
                const struct anchor *a = &anchors[i];

                if (strncmp(path, a->dir, a->len) != 0)
                        continue;
                if (path[a->len] == 0)
                        *name = ".", hit = a;
                else if (path[a->len] == '/' && path[a->len + 1] && !strchr(path + a->len + 1, '/'))
                        *name = path + a->len + 1, hit = a;
        }
        pthread_mutex_unlock(&lock);
        return hit;
}

static int anchored_open(const char *path, int flags, int mode) {
        const char *name;
        const struct anchor *a = anchored(path, &name);
        struct stat st;
        int fd;

        if (!a)
                return ((int (*)(const char *, int, int))real_open)(path, flags, mode);
        /* SQLite opens the WAL for writing even on a read-only connection, and tries again
         * read-only when it may not */
        if (a->readonly && (flags & (O_ACCMODE | O_CREAT | O_TRUNC)) != O_RDONLY) {
                errno = EACCES;
                return -1;
        }
        /* non-blocking: a FIFO opened for reading would wait for a writer */
        fd = openat(a->fd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode);
        if (fd < 0)
                return -1;
        /* a FIFO, a device, a second name of a file elsewhere: not the store's */
        if (fstat(fd, &st) < 0 || (strcmp(name, ".") ? !S_ISREG(st.st_mode) || st.st_nlink != 1 : !S_ISDIR(st.st_mode)) ||
            (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)) {
                close(fd);
                errno = EPERM;
                return -1;
        }
        return fd;
}

static int anchored_stat(const char *path, struct stat *st) {
        const char *name;
        const struct anchor *a = anchored(path, &name);

        if (!a)
                return ((int (*)(const char *, struct stat *))real_stat)(path, st);
        return fstatat(a->fd, name, st, AT_SYMLINK_NOFOLLOW);
}

static int anchored_lstat(const char *path, struct stat *st) {
        const char *name;
        const struct anchor *a = anchored(path, &name);

        if (!a)
                return ((int (*)(const char *, struct stat *))real_lstat)(path, st);
        return fstatat(a->fd, name, st, AT_SYMLINK_NOFOLLOW);
}

static int anchored_access(const char *path, int mode) {
        const char *name;
        const struct anchor *a = anchored(path, &name);

        if (!a)
                return ((int (*)(const char *, int))real_access)(path, mode);
        return faccessat(a->fd, name, mode, AT_EACCESS | AT_SYMLINK_NOFOLLOW);
}

static int anchored_unlink(const char *path) {
        const char *name;
        const struct anchor *a = anchored(path, &name);

        if (!a)
                return ((int (*)(const char *))real_unlink)(path);
        return unlinkat(a->fd, name, 0);
}

static ssize_t anchored_readlink(const char *path, char *buf, size_t size) {
        const char *name;
        const struct anchor *a = anchored(path, &name);

        if (!a)
                return ((ssize_t (*)(const char *, char *, size_t))real_readlink)(path, buf, size);
        /* what is in the directory is never followed: as if it were no link */
        errno = EINVAL;
        return -1;
}

static int install(void) {
        static const struct {
                const char *name;
                sqlite3_syscall_ptr ours, *real;
        } calls[] = {
                { "open", (sqlite3_syscall_ptr)anchored_open, &real_open },
                { "stat", (sqlite3_syscall_ptr)anchored_stat, &real_stat },
                { "lstat", (sqlite3_syscall_ptr)anchored_lstat, &real_lstat },
                { "access", (sqlite3_syscall_ptr)anchored_access, &real_access },
                { "unlink", (sqlite3_syscall_ptr)anchored_unlink, &real_unlink },
                { "readlink", (sqlite3_syscall_ptr)anchored_readlink, &real_readlink },
        };
        /* sqlite3_vfs_find() initializes SQLite, which allocates: told apart from a VFS we cannot use */
        int rc = sqlite3_initialize();
        if (rc != SQLITE_OK)
                return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
        sqlite3_vfs *vfs = sqlite3_vfs_find("unix");

        if (!vfs || vfs->iVersion < 3 || !vfs->xSetSystemCall || !vfs->xGetSystemCall)
                return -ENOSYS;
        for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
                *calls[i].real = vfs->xGetSystemCall(vfs, calls[i].name);
                if (!*calls[i].real || vfs->xSetSystemCall(vfs, calls[i].name, calls[i].ours) != SQLITE_OK)
                        return -ENOSYS;
        }
        return 0;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int installed;

static void install_once(void) {
        installed = install();
}

int store_anchor(const char *dir, bool readonly, char *err, size_t errsz) {
        char abs[PATH_MAX], last[NAME_MAX + 1], why[512];
        struct stat st;
        size_t len;
        int parent, fd;

        pthread_once(&once, install_once);
        if (installed < 0) {
                snprintf(err, errsz, "%s", installed == -ENOMEM ? "SQLite: out of memory" :
                         installed == -EIO ? "SQLite cannot be initialized" :
                         "SQLite's unix VFS does not let its system calls be replaced");
                return installed;
        }
        if (dir[0] != '/') {
                char cwd[PATH_MAX];

                if (!getcwd(cwd, sizeof(cwd)) || (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, dir) >= sizeof(abs)) {
                        snprintf(err, errsz, "%s: cannot make the path absolute", dir);
                        return -ENAMETOOLONG;
                }
        } else if ((size_t)snprintf(abs, sizeof(abs), "%s", dir) >= sizeof(abs)) {
                snprintf(err, errsz, "%s: path too long", dir);
                return -ENAMETOOLONG;
        }
        for (len = strlen(abs); len > 1 && abs[len - 1] == '/'; len--)
                abs[len - 1] = 0;
        parent = trusted_parent(abs, last, sizeof(last), why, sizeof(why));
        if (parent < 0) {
                snprintf(err, errsz, "%s", why);
                return parent;
        }
        fd = openat(parent, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(parent);
        if (fd < 0 || fstat(fd, &st) < 0 || (st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 022)) {
                int r = fd < 0 ? -errno : -EPERM;

                snprintf(err, errsz, "%s: %s", abs, fd < 0 ? strerror(errno) : "writable by others, or another user's");
                if (fd >= 0)
                        close(fd);
                return r;
        }
        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < n_anchors; i++)
                if (!strcmp(anchors[i].dir, abs)) {
                        /* the same directory again: another store open in it */
                        anchors[i].users++;
                        pthread_mutex_unlock(&lock);
                        close(fd);
                        return 0;
                }
        if (n_anchors == MAX_ANCHORS || !(anchors[n_anchors].dir = strdup(abs))) {
                pthread_mutex_unlock(&lock);
                close(fd);
                snprintf(err, errsz, "%s: %s", abs, n_anchors == MAX_ANCHORS ? "too many stores open at once" :
                         "out of memory");
                return -ENOMEM;
        }
        anchors[n_anchors].len = strlen(abs);
        anchors[n_anchors].users = 1;
        anchors[n_anchors].readonly = readonly;
        anchors[n_anchors++].fd = fd;
        pthread_mutex_unlock(&lock);
        return 0;
}

void store_unanchor(const char *db_path) {
        const char *slash = db_path ? strrchr(db_path, '/') : NULL;

        if (!slash)
                return;
        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < n_anchors; i++) {
                struct anchor *a = &anchors[i];

                if (a->len != (size_t)(slash - db_path) || strncmp(a->dir, db_path, a->len) != 0)
                        continue;
                if (--a->users == 0) {
                        close(a->fd);
                        free(a->dir);
                        *a = anchors[--n_anchors];
                }
                break;
        }
        pthread_mutex_unlock(&lock);
}

int store_open_file(const char *path, int flags, int mode) {
        return anchored_open(path, flags, mode);
}
