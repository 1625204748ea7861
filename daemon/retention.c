/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "retention.h"
#include "store.h"

static void remove_core(sqlite3 *db, int storage_fd, int64_t id, const char *core_path, const char *why) {
        sqlite3_stmt *st;

        /* "cores/<name>" only: a path from the store never leads out of the storage directory */
        if (core_path && !strncmp(core_path, "cores/", 6) && !strchr(core_path + 6, '/') && core_path[6] != '.')
                unlinkat(storage_fd, core_path, 0);
        if (sqlite3_prepare_v2(db, "UPDATE crashes SET core_state = 'removed', capture_note = ?2,"
                               " error = CASE WHEN state = 'pending' THEN 'the core was removed before analysis'"
                               " ELSE error END,"
                               " state = CASE WHEN state = 'pending' THEN 'failed' ELSE state END"
                               " WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
                return;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, why, -1, SQLITE_STATIC);
        sqlite3_step(st);
        sqlite3_finalize(st);
}

int retention_apply(sqlite3 *db, int storage_fd, const struct config *c, unsigned *removed) {
        struct statvfs sv;
        sqlite3_stmt *st;
        struct timespec ts;

        *removed = 0;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        /* a handler never takes this long (its store retries end after 40 s): it died mid-capture */
        if (sqlite3_prepare_v2(db, "UPDATE crashes SET core_state = 'error', state = 'done',"
                               " capture_note = 'the core was being captured when the handler stopped'"
                               " WHERE core_state = 'capturing' AND time_usec < ?", -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, now - 15 * 60 * 1000000LL);
                sqlite3_step(st);
                sqlite3_finalize(st);
        }
        if (c->max_age) {
                if (sqlite3_prepare_v2(db, "SELECT id, core_path FROM crashes WHERE core_state = 'present'"
                                       " AND state != 'running' AND time_usec < ? ORDER BY id LIMIT 100000",
                                       -1, &st, NULL) != SQLITE_OK)
                        return -EIO;
                sqlite3_bind_int64(st, 1, now - (int64_t)c->max_age * 1000000);
                /* collect first: updating rows under a running SELECT would skip some */
                struct victim { int64_t id; char *path; } *v = NULL;
                size_t n = 0, cap = 0;
                while (sqlite3_step(st) == SQLITE_ROW) {
                        if (n == cap) {
                                struct victim *w = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));
                                if (!w)
                                        break;
                                v = w;
                        }
                        v[n].id = sqlite3_column_int64(st, 0);
                        v[n++].path = store_column_dup(st, 1);
                }
                sqlite3_finalize(st);
                for (size_t i = 0; i < n; i++) {
                        remove_core(db, storage_fd, v[i].id, v[i].path, "removed by retention: older than MaxAge");
                        free(v[i].path);
                        (*removed)++;
                }
                free(v);
        }
        for (unsigned guard = 0; guard < 100000 && fstatvfs(storage_fd, &sv) == 0; guard++) {
                uint64_t total = (uint64_t)sv.f_blocks * sv.f_frsize, avail = (uint64_t)sv.f_bavail * sv.f_frsize;
                int64_t used = store_cores_size(db);
                bool any;

                if ((used < 0 || (uint64_t)used <= size_limit_bytes(&c->max_use, total)) &&
                    avail >= size_limit_bytes(&c->keep_free, total))
                        break;
                if (sqlite3_prepare_v2(db, "SELECT id, core_path FROM crashes WHERE core_state = 'present'"
                                       " AND state != 'running' ORDER BY state = 'pending', id LIMIT 1",
                                       -1, &st, NULL) != SQLITE_OK)
                        return -EIO;
                any = sqlite3_step(st) == SQLITE_ROW;
                int64_t id = any ? sqlite3_column_int64(st, 0) : 0;
                char *path = any ? store_column_dup(st, 1) : NULL;
                sqlite3_finalize(st);
                if (!any)
                        break;
                remove_core(db, storage_fd, id, path, "removed by retention: MaxUse/KeepFree");
                free(path);
                (*removed)++;
        }
        return 0;
}
