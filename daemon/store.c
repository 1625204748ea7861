/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

/*
 * The schema, as migrations: migrations[i] takes the store from version i
 * to version i + 1, inside one transaction.  Never edit a released step;
 * append a new one.
 *
 * crashes          one row per crash the handler saw, captured or not.
 *   time_usec        CLOCK_REALTIME µs when the handler started
 *   boot_id          /proc/sys/kernel/random/boot_id
 *   pid, pid_ns      %P (init namespace) and the pid inside the process's namespace
 *   uid, gid         %u %g, from the kernel
 *   signal           %s
 *   comm, exe        /proc/PID/comm, the target of /proc/PID/exe
 *   cmdline          JSON array of the arguments
 *   cwd, cgroup, unit, container, dumpable (%d), rlimit_core (-1: unlimited)
 *   thread_names     JSON array of [tid, name]
 *   environ          JSON array, only with StoreEnvironment=yes
 *   core_path        relative to the storage directory (NULL: no core kept)
 *   core_size        bytes the kernel sent, core_stored_size bytes on disk
 *   core_state       present | too-large | no-space | rate-limited | discarded | error | removed
 *   capture_note     why the core is not present, in words
 *   suppressed       how many crashes of this executable the rate limit had dropped before this one
 *   state            analysis: pending | running | done | failed
 *   attempts, error  analysis attempts so far and the last failure
 *   python_version, report (JSON from pystack core --json), signature, analyzed_usec
 */
static const char *const migrations[] = {
        /* 0 -> 1 */
        "CREATE TABLE crashes ("
        "  id INTEGER PRIMARY KEY,"
        "  time_usec INTEGER NOT NULL,"
        "  boot_id TEXT, hostname TEXT,"
        "  pid INTEGER NOT NULL, pid_ns INTEGER, tid INTEGER,"
        "  uid INTEGER NOT NULL, gid INTEGER NOT NULL, signal INTEGER NOT NULL,"
        "  comm TEXT, exe TEXT, cmdline TEXT, cwd TEXT, cgroup TEXT, unit TEXT,"
        "  container INTEGER NOT NULL DEFAULT 0, dumpable INTEGER, rlimit_core INTEGER,"
        "  thread_names TEXT, environ TEXT,"
        "  core_path TEXT, core_size INTEGER, core_stored_size INTEGER,"
        "  core_state TEXT NOT NULL, capture_note TEXT, suppressed INTEGER NOT NULL DEFAULT 0,"
        "  state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, error TEXT,"
        "  python_version TEXT, signature TEXT, report TEXT, analyzed_usec INTEGER"
        ");"
        "CREATE INDEX crashes_exe_time ON crashes(exe, time_usec);"
        "CREATE INDEX crashes_state ON crashes(state, id);"
        "CREATE INDEX crashes_time ON crashes(time_usec);",
};

int store_schema_version(void) {
        return (int)(sizeof(migrations) / sizeof(migrations[0]));
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errsz) {
        char *msg = NULL;

        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
                snprintf(err, errsz, "%s", msg ? msg : sqlite3_errmsg(db));
                sqlite3_free(msg);
                return -EIO;
        }
        return 0;
}

static int migrate(sqlite3 *db, char *err, size_t errsz) {
        sqlite3_stmt *st;
        int version = -1;

        /* IMMEDIATE: two first openers must not both run the same migration */
        if (exec(db, "BEGIN IMMEDIATE", err, errsz) < 0)
                return -EIO;
        if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
                if (sqlite3_step(st) == SQLITE_ROW)
                        version = sqlite3_column_int(st, 0);
                sqlite3_finalize(st);
        }
        if (version < 0 || version > store_schema_version()) {
                exec(db, "ROLLBACK", err, errsz);
                snprintf(err, errsz, version < 0 ? "cannot read the schema version" :
                         "the store's schema (version %d) is newer than this program's (%d)",
                         version, store_schema_version());
                return -EPROTO;
        }
        for (int v = version; v < store_schema_version(); v++) {
                char sql[64];

                if (exec(db, migrations[v], err, errsz) < 0) {
                        exec(db, "ROLLBACK", err + strlen(err), 0);
                        return -EIO;
                }
                snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
                if (exec(db, sql, err, errsz) < 0) {
                        exec(db, "ROLLBACK", err + strlen(err), 0);
                        return -EIO;
                }
        }
        return exec(db, "COMMIT", err, errsz);
}

int store_open(const char *dir, sqlite3 **ret, char *err, size_t errsz) {
        char path[4096];
        sqlite3 *db = NULL;
        int fd;

        if ((size_t)snprintf(path, sizeof(path), "%s/pystack.db", dir) >= sizeof(path)) {
                snprintf(err, errsz, "%s: path too long", dir);
                return -ENAMETOOLONG;
        }
        /* create it private before SQLite does with the umask's mode */
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0) {
                int r = -errno;
                snprintf(err, errsz, "%s: %s", path, strerror(errno));
                return r;
        }
        close(fd);
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
                snprintf(err, errsz, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
                sqlite3_close(db);
                return -EIO;
        }
        sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
        if (exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
                 err, errsz) < 0 || migrate(db, err, errsz) < 0) {
                sqlite3_close(db);
                return -EIO;
        }
        *ret = db;
        return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
        if (s)
                sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i);
}

int store_add_crash(sqlite3 *db, const struct crash_record *r, int64_t *id) {
        static const char sql[] =
                "INSERT INTO crashes (time_usec, boot_id, hostname, pid, pid_ns, uid, gid, signal,"
                " comm, exe, cmdline, cwd, cgroup, unit, container, dumpable, rlimit_core,"
                " thread_names, environ, core_path, core_size, core_stored_size, core_state,"
                " capture_note, suppressed, state)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
                " CASE WHEN ? = 'present' THEN 'pending' ELSE 'done' END)";
        sqlite3_stmt *st;
        int i = 1, rc;

        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(st, i++, r->time_usec);
        bind_text(st, i++, r->boot_id);
        bind_text(st, i++, r->hostname);
        sqlite3_bind_int(st, i++, r->pid);
        if (r->pid_ns > 0)
                sqlite3_bind_int(st, i++, r->pid_ns);
        else
                sqlite3_bind_null(st, i++);
        sqlite3_bind_int64(st, i++, r->uid);
        sqlite3_bind_int64(st, i++, r->gid);
        sqlite3_bind_int(st, i++, r->signal);
        bind_text(st, i++, r->comm);
        bind_text(st, i++, r->exe);
        bind_text(st, i++, r->cmdline_json);
        bind_text(st, i++, r->cwd);
        bind_text(st, i++, r->cgroup);
        bind_text(st, i++, r->unit);
        sqlite3_bind_int(st, i++, r->container);
        sqlite3_bind_int(st, i++, r->dumpable);
        sqlite3_bind_int64(st, i++, r->rlimit_core);
        bind_text(st, i++, r->thread_names_json);
        bind_text(st, i++, r->environ_json);
        bind_text(st, i++, r->core_path);
        if (r->core_size >= 0)
                sqlite3_bind_int64(st, i++, r->core_size);
        else
                sqlite3_bind_null(st, i++);
        sqlite3_bind_int64(st, i++, r->core_stored_size);
        bind_text(st, i++, r->core_state);
        bind_text(st, i++, r->capture_note);
        sqlite3_bind_int64(st, i++, r->suppressed);
        bind_text(st, i++, r->core_state);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return -EIO;
        if (id)
                *id = sqlite3_last_insert_rowid(db);
        return 0;
}

static int64_t query_int(sqlite3 *db, const char *sql, const char *text, int64_t num) {
        sqlite3_stmt *st;
        int64_t v = -EIO;

        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        if (text)
                sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, text ? 2 : 1, num);
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

int64_t store_count_recent(sqlite3 *db, const char *exe, int64_t since_usec) {
        return query_int(db, "SELECT count(*) FROM crashes WHERE exe IS ? AND time_usec >= ?",
                         exe ? exe : "", since_usec);
}

int64_t store_cores_size(sqlite3 *db) {
        return query_int(db, "SELECT coalesce(sum(core_stored_size), 0) FROM crashes"
                         " WHERE core_state = 'present' AND ? >= 0", NULL, 0);
}
