/* SPDX-License-Identifier: MIT */
/* retention: which cores go when the store is over its limits (MaxAge, MaxUse, KeepFree). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "retention.h"
#include "store.h"
#include "util.h"

/* A handler never takes this long (its store retries end after 40 s): it died mid-capture. */
#define CAPTURE_EXPIRY_USEC (15 * 60 * 1000000LL)

static void remove_core(sqlite3 *db, int storage_fd, const struct victim *v, const char *why) {
        const char *p = v->core_path;

        /* "cores/<name>" only: a path from the store never leads out of the storage directory */
        if (p && !strncmp(p, "cores/", 6) && !strchr(p + 6, '/') && p[6] != '.')
                unlinkat(storage_fd, p, 0);
        store_mark_core_removed(db, v->id, why);
}

/* A file in binaries/ no kept core needs any more (its row goes in the same transaction). */
static int remove_binary(const char *h, void *userdata) {
        int storage_fd = *(int *)userdata;
        char path[128];

        /* 64 hex digits only: a name from the store never leads out of binaries/ */
        if (strlen(h) != 64 || strspn(h, "0123456789abcdef") != 64 ||
            (size_t)snprintf(path, sizeof(path), "binaries/%s", h) >= sizeof(path))
                return -EINVAL;
        return unlinkat(storage_fd, path, 0) == 0 || errno == ENOENT ? 0 : -errno;
}

static void sweep_binaries(sqlite3 *db, int storage_fd) {
        unsigned n;

        store_sweep_binaries(db, 10000, remove_binary, &storage_fd, &n);
}

int retention_sweep_orphans(sqlite3 *db, int storage_fd, int64_t now_usec) {
        int fd = openat(storage_fd, "binaries", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), removed = 0;
        struct dirent *de;
        DIR *d;

        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        for (unsigned seen = 0; seen < 100000 && (de = readdir(d)); seen++) {
                struct stat st;
                int64_t changed;

                if (strlen(de->d_name) != 64 || strspn(de->d_name, "0123456789abcdef") != 64 ||
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                /* a handler links its file, then records it: a young file may be on its way */
                changed = (int64_t)st.st_ctim.tv_sec * 1000000 + st.st_ctim.tv_nsec / 1000;
                if (now_usec - changed < ORPHAN_AGE_USEC || store_binary_known(db, de->d_name) != 0)
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                        removed++;
        }
        closedir(d);
        return removed;
}

static bool over_limits(sqlite3 *db, int storage_fd, const struct config *c) {
        struct statvfs sv;
        uint64_t total, avail;
        int64_t used;

        if (fstatvfs(storage_fd, &sv) < 0)
                return false;
        total = (uint64_t)sv.f_blocks * sv.f_frsize;
        avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        used = store_cores_size(db);
        return (used >= 0 && (uint64_t)used > size_limit_bytes(&c->max_use, total)) ||
               avail < size_limit_bytes(&c->keep_free, total);
}

int retention_apply(sqlite3 *db, int storage_fd, const struct config *c, unsigned *removed) {
        int64_t now = clock_usec(CLOCK_REALTIME);
        int r;

        *removed = 0;
        store_expire_captures(db, now - CAPTURE_EXPIRY_USEC);
        if (c->max_age) {
                struct victim *v = NULL;
                size_t n = 0;

                r = store_cores_older_than(db, now - (int64_t)c->max_age * 1000000, 100000, &v, &n);
                for (size_t i = 0; i < n; i++) {
                        remove_core(db, storage_fd, &v[i], "removed by retention: older than MaxAge");
                        free(v[i].core_path);
                        (*removed)++;
                }
                free(v);
                if (r < 0)
                        return r;
        }
        sweep_binaries(db, storage_fd);
        retention_sweep_orphans(db, storage_fd, now);
        for (unsigned guard = 0; guard < 100000 && over_limits(db, storage_fd, c); guard++) {
                struct victim v = {};

                r = store_next_core_to_remove(db, &v);
                if (r <= 0)
                        return r;
                remove_core(db, storage_fd, &v, "removed by retention: MaxUse/KeepFree");
                free(v.core_path);
                (*removed)++;
                sweep_binaries(db, storage_fd);
        }
        return 0;
}
