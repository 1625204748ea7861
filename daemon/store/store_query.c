/* SPDX-License-Identifier: MIT */
/* store_query: what pystackctl (and pystackd, for users) read from the store. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "store_internal.h"
#include "util.h"

/* " AND ..." for the matches, the time window and the uid; parameters bound by bind_filter. */
static void where_clause(const struct store_filter *f, char *out, size_t size) {
        static const char *const columns[_MATCH_MAX] = {
                [MATCH_ID] = "c.id = ?", [MATCH_PID] = "c.pid = ?", [MATCH_COMM] = "c.comm = ?",
                [MATCH_EXE] = "c.exe = ?", [MATCH_UID] = "c.uid = ?", [MATCH_SIG] = "c.signal = ?",
                [MATCH_SIGNATURE] = "c.signature = ?",
                /* an id's prefix, as docker ps shows 12 digits; or a name whole */
                [MATCH_CONTAINER] = "instr(c.container_id, ?) = 1",
                /* never asked of the store (query_from_wire refuses them): the hostname, or nothing */
                [MATCH_HOST] = "c.hostname = ?", [MATCH_MACHINE_ID] = "? IS NULL",
        };
        size_t len = 0;

        out[0] = 0;
        for (size_t i = 0; i < f->n_matches && len < size; i++)
                len += (size_t)snprintf(out + len, size - len, " AND %s", columns[f->matches[i].key]);
        if (f->since != INT64_MIN && len < size)
                len += (size_t)snprintf(out + len, size - len, " AND c.time_usec >= ?");
        if (f->until != INT64_MAX && len < size)
                len += (size_t)snprintf(out + len, size - len, " AND c.time_usec <= ?");
        /* a user's own crashes, and only those the kernel let them dump: a set-uid program's core
         * (dumpable 2) holds memory that was never theirs */
        if (f->uid >= 0 && len < size)
                snprintf(out + len, size - len, " AND c.uid = ? AND c.dumpable = 1");
}

static int bind_filter(sqlite3_stmt *st, int first, const struct store_filter *f) {
        int i = first;

        for (size_t k = 0; k < f->n_matches; k++) {
                const struct match *m = &f->matches[k];
                if (m->key == MATCH_COMM || m->key == MATCH_EXE || m->key == MATCH_SIGNATURE ||
                    m->key == MATCH_CONTAINER || m->key == MATCH_HOST || m->key == MATCH_MACHINE_ID)
                        sqlite3_bind_text(st, i++, m->value, -1, SQLITE_STATIC);
                else
                        sqlite3_bind_int64(st, i++, strtoll(m->value, NULL, 10));
        }
        if (f->since != INT64_MIN)
                sqlite3_bind_int64(st, i++, f->since);
        if (f->until != INT64_MAX)
                sqlite3_bind_int64(st, i++, f->until);
        if (f->uid >= 0)
                sqlite3_bind_int64(st, i++, f->uid);
        return i;
}

#define LIST_COLUMNS \
        "c.id, c.time_usec, c.pid, c.uid, c.gid, c.signal, c.python_version," \
        " CASE WHEN c.core_state = 'present' AND c.core_truncated THEN 'truncated' ELSE c.core_state END," \
        " c.comm, c.exe, c.script, c.function, c.file, c.line, c.state, c.error, c.signature, c.core_path"
enum { L_ID, L_TIME, L_PID, L_UID, L_GID, L_SIG, L_PY, L_CORE, L_COMM, L_EXE, L_SCRIPT, L_FN, L_FILE, L_LINE,
       L_STATE, L_ERROR, L_SIGNATURE, L_CORE_PATH };

static int prepare_list(sqlite3 *db, const struct store_filter *f, bool newest_first, int64_t limit,
                        sqlite3_stmt **st) {
        char where[2048], sql[4096];
        int r;

        where_clause(f, where, sizeof(where));
        snprintf(sql, sizeof(sql), "SELECT " LIST_COLUMNS " FROM crashes c WHERE 1%s ORDER BY c.time_usec %s, c.id %s%s",
                 where, newest_first ? "DESC" : "ASC", newest_first ? "DESC" : "ASC", limit > 0 ? " LIMIT ?" : "");
        r = store_prepare(db, sql, st);
        if (r < 0)
                return r;
        int i = bind_filter(*st, 1, f);
        if (limit > 0)
                sqlite3_bind_int64(*st, i, limit);
        return 0;
}

/*
 * Which present cores' files are gone: one fstatat per row in cores/ (measured on 100,000 crashes,
 * that costs no more than one read of the directory, sorted, for a whole list, and much less for
 * a short one).  A process that may not search cores/ (pystackd's unprivileged query server,
 * handed the directory open) reads its names once instead, sorted, and looks each row up.
 */
struct core_dir {
        int fd;                 /* cores/, opened for reading by the caller; -1: nothing is missing */
        char **names;           /* the directory's names, sorted, once faccessat was refused */
        size_t n, allocated;
        bool listed, failed;
};

static void core_dir_done(struct core_dir *c) {
        for (size_t i = 0; i < c->n; i++)
                free(c->names[i]);
        free(c->names);
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in cores/, read through a descriptor of our own: 0, or -errno (then none is missing). */
static int list_core_dir(struct core_dir *c) {
        /* a duplicate: reopening it would need the search right we lack */
        int fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 3);
        DIR *d;
        struct dirent *e;

        if (fd < 0 || !(d = fdopendir(fd))) {
                if (fd >= 0)
                        close(fd);
                return -errno;
        }
        rewinddir(d);
        while ((e = readdir(d))) {
                char *name;

                if (e->d_name[0] == '.')
                        continue;
                if (grow_array(&c->names, &c->allocated, c->n + 1, sizeof(*c->names)) < 0 ||
                    !(name = strdup(e->d_name))) {
                        closedir(d);
                        return -ENOMEM;
                }
                c->names[c->n++] = name;
        }
        closedir(d);
        qsort(c->names, c->n, sizeof(*c->names), compare_names);
        return 0;
}

/* A present core's file is gone ("cores/NAME" not in the directory). */
static bool core_missing(struct core_dir *c, const char *core_path) {
        const char *name = core_path && !strncmp(core_path, "cores/", 6) ? core_path + 6 : NULL;

        if (!name || strchr(name, '/') || c->fd < 0 || c->failed)
                return false;
        if (!*name || name[0] == '.')
                return true;    /* never the name of a core we stored ("", ".", "..", hidden) */
        if (!c->listed) {
                if (faccessat(c->fd, name, F_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW) == 0)
                        return false;
                if (errno == ENOENT)
                        return true;
                if (errno != EACCES && errno != EPERM)
                        return false;
                c->listed = true;
                if (list_core_dir(c) < 0) {
                        c->failed = true;
                        return false;
                }
        }
        return !bsearch(&name, c->names, c->n, sizeof(*c->names), compare_names);
}

int store_list(sqlite3 *db, const struct store_filter *f, bool newest_first, int64_t limit, int cores_fd,
               int (*row)(const struct crash_row *r, void *userdata), void *userdata) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        _cleanup_(core_dir_done) struct core_dir cores = { .fd = cores_fd };
        int r, rc;

        r = prepare_list(db, f, newest_first, limit, &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct crash_row c = {
                        .id = sqlite3_column_int64(st, L_ID), .time_usec = sqlite3_column_int64(st, L_TIME),
                        .uid = sqlite3_column_int64(st, L_UID), .gid = sqlite3_column_int64(st, L_GID),
                        .pid = sqlite3_column_int(st, L_PID), .signal = sqlite3_column_int(st, L_SIG),
                        .python_version = column_text(st, L_PY), .core = column_text(st, L_CORE),
                        .comm = column_text(st, L_COMM), .exe = column_text(st, L_EXE),
                        .script = column_text(st, L_SCRIPT), .function = column_text(st, L_FN),
                        .file = column_text(st, L_FILE), .line = sqlite3_column_int(st, L_LINE),
                        .state = column_text(st, L_STATE), .error = column_text(st, L_ERROR),
                        .signature = column_text(st, L_SIGNATURE), .core_path = column_text(st, L_CORE_PATH),
                };
                /* "present" in the store, but the file is gone: say so */
                if (c.core && !strcmp(c.core, "present") && core_missing(&cores, c.core_path))
                        c.core = "missing";
                if (!c.core)
                        c.core = "?";
                r = row(&c, userdata);
                if (r != 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_error(db);
}

int store_find_newest(sqlite3 *db, const struct store_filter *f, int64_t *id, char **core_path, char **exe) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = prepare_list(db, f, true, 1, &st);

        if (r < 0)
                return r;
        r = sqlite3_step(st);
        if (r != SQLITE_ROW)
                return r == SQLITE_DONE ? 0 : store_error(db);
        *id = sqlite3_column_int64(st, L_ID);
        if (core_path)
                *core_path = NULL;
        if (exe)
                *exe = NULL;
        /* a copy that failed must not pass for a crash without a core or an executable */
        if (core_path && column_text(st, L_CORE_PATH) && !(*core_path = strdup(column_text(st, L_CORE_PATH))))
                return -ENOMEM;
        if (exe && column_text(st, L_EXE) && !(*exe = strdup(column_text(st, L_EXE)))) {
                if (core_path) {
                        free(*core_path);
                        *core_path = NULL;
                }
                return -ENOMEM;
        }
        return 1;
}

int store_get_crash(sqlite3 *db, int64_t id, int64_t uid, struct crash_info *ci) {
        /* in enum crash_column's order; the names are the store's, which info --json prints.  The
         * group's count and times are the crashes' own (as groups shows them), of what uid sees */
        static const char sql[] =
                "SELECT c.id, c.time_usec, c.pid, c.pid_ns, c.tid, c.uid, c.gid, c.signal, c.comm, c.exe,"
                " c.cwd, c.cgroup, c.unit, c.container, c.container_runtime, c.container_id, c.dumpable, c.rlimit_core, c.boot_id, c.hostname,"
                " c.core_path, c.core_size, c.core_stored_size, c.core_state, c.capture_note, c.suppressed,"
                " c.state, c.attempts, c.error, c.python_version, c.signature, c.analyzed_usec,"
                " c.cmdline, c.thread_names, c.script, s.title, g.count, g.first_usec, g.last_usec,"
                " c.core_truncated"
                " FROM crashes c LEFT JOIN signatures s ON s.signature = c.signature"
                " LEFT JOIN (SELECT sum(count) AS count, min(first_usec) AS first_usec, max(last_usec) AS last_usec"
                "  FROM signature_counts WHERE signature = (SELECT signature FROM crashes WHERE id = ?1)"
                "  AND (?2 < 0 OR (uid = ?2 AND dumpable = 1))) g ON c.signature IS NOT NULL"
                " WHERE c.id = ?1";
        int r;

        *ci = (struct crash_info) {};
        r = store_prepare(db, sql, &ci->st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(ci->st, 1, id);
        sqlite3_bind_int64(ci->st, 2, uid);
        r = sqlite3_step(ci->st);
        if (r != SQLITE_ROW) {
                crash_info_done(ci);
                return r == SQLITE_DONE ? 0 : store_error(db);
        }
        for (int i = 0; i < _COL_MAX; i++) {
                struct store_value *v = &ci->v[i];

                v->name = sqlite3_column_name(ci->st, i);
                switch (sqlite3_column_type(ci->st, i)) {
                case SQLITE_NULL:
                        v->type = STORE_NULL;
                        break;
                case SQLITE_INTEGER:
                        v->type = STORE_INT;
                        v->i = sqlite3_column_int64(ci->st, i);
                        break;
                default:
                        v->type = STORE_TEXT;
                        v->s = column_text(ci->st, i);
                        break;
                }
        }
        return 1;
}

void crash_info_done(struct crash_info *ci) {
        sqlite3_finalize(ci->st);
        *ci = (struct crash_info) {};
}

int store_get_report(sqlite3 *db, int64_t id, char **json, size_t *len) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, "SELECT report FROM crashes WHERE id = ? AND report IS NOT NULL", &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        r = sqlite3_step(st);
        if (r != SQLITE_ROW)
                return r == SQLITE_DONE ? 0 : store_error(db);
        *len = (size_t)sqlite3_column_bytes(st, 0);
        *json = malloc(*len + 1);
        if (!*json)
                return -ENOMEM;
        memcpy(*json, sqlite3_column_blob(st, 0), *len);
        (*json)[*len] = 0;
        return 1;
}

int store_groups(sqlite3 *db, const struct store_filter *f,
                 int (*row)(const struct group_row *g, void *userdata), void *userdata) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        char where[2048], sql[4096];
        int r, rc;

        if (f->n_matches == 0 && f->since == INT64_MIN && f->until == INT64_MAX)
                /* every crash (of a user): the counts the triggers keep */
                snprintf(sql, sizeof(sql),
                         "SELECT g.signature, s.title, sum(g.count), min(g.first_usec), max(g.last_usec)"
                         " FROM signature_counts g LEFT JOIN signatures s ON s.signature = g.signature%s"
                         " GROUP BY g.signature ORDER BY sum(g.count) DESC, max(g.last_usec) DESC",
                         f->uid >= 0 ? " WHERE g.uid = ? AND g.dumpable = 1" : "");
        else {
                /* counted from the crashes the caller may see, so a user's groups are their own */
                where_clause(f, where, sizeof(where));
                snprintf(sql, sizeof(sql),
                         "SELECT c.signature, s.title, count(*), min(c.time_usec), max(c.time_usec) FROM crashes c"
                         " LEFT JOIN signatures s ON s.signature = c.signature WHERE c.signature IS NOT NULL%s"
                         " GROUP BY c.signature ORDER BY count(*) DESC, max(c.time_usec) DESC", where);
        }
        r = store_prepare(db, sql, &st);
        if (r < 0)
                return r;
        bind_filter(st, 1, f);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct group_row g = {
                        .signature = column_text(st, 0), .title = column_text(st, 1),
                        .count = sqlite3_column_int64(st, 2), .first_usec = sqlite3_column_int64(st, 3),
                        .last_usec = sqlite3_column_int64(st, 4),
                };
                r = row(&g, userdata);
                if (r != 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_error(db);
}
