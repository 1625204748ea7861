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
 *   core_state       capturing | present | too-large | no-space | rate-limited | discarded | error | removed
 *   capture_note     why the core is not present, in words
 *   suppressed       how many crashes of this executable the rate limit had dropped before this one
 *   state            analysis: capturing (the handler is still at work) | pending | running | done | failed
 *   attempts, error  analysis attempts so far and the last failure
 *   python_version, report (JSON from pystack core --json), signature, analyzed_usec
 *
 * Version 2, filled by pystackd from the report (with SQLite's JSON functions):
 * threads          one row per thread: idx (report order, the crashed thread first), tid, name
 *                  (from the handler's thread names), crashed, python, has_gil, gc_collecting,
 *                  truncated (why the Python frames stop early), native_error, merged
 * frames           the merged stack, idx 0 the outermost: kind (python|native), function, file,
 *                  line, library, build_id (from modules), inlined, address, source
 * locals           per Python frame: argument (1) or local (0), idx in that list, name, repr
 * modules          mapped files with the build-id the analyzer verified
 * signatures       a stable hash of the signal and the crashed thread's innermost frames:
 *                  title, how often it was seen, first and last time
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
        /* 1 -> 2 */
        "CREATE TABLE threads ("
        "  crash_id INTEGER NOT NULL REFERENCES crashes(id) ON DELETE CASCADE, idx INTEGER NOT NULL,"
        "  tid INTEGER, name TEXT, crashed INTEGER NOT NULL DEFAULT 0, python INTEGER NOT NULL DEFAULT 0,"
        "  has_gil INTEGER NOT NULL DEFAULT 0, gc_collecting INTEGER NOT NULL DEFAULT 0,"
        "  truncated TEXT, native_error TEXT, merged INTEGER,"
        "  PRIMARY KEY (crash_id, idx)) WITHOUT ROWID;"
        "CREATE TABLE frames ("
        "  crash_id INTEGER NOT NULL REFERENCES crashes(id) ON DELETE CASCADE, thread_idx INTEGER NOT NULL,"
        "  idx INTEGER NOT NULL, kind TEXT NOT NULL, function TEXT, file TEXT, line INTEGER,"
        "  library TEXT, build_id TEXT, inlined INTEGER NOT NULL DEFAULT 0, address INTEGER, source TEXT,"
        "  PRIMARY KEY (crash_id, thread_idx, idx)) WITHOUT ROWID;"
        "CREATE TABLE locals ("
        "  crash_id INTEGER NOT NULL REFERENCES crashes(id) ON DELETE CASCADE, thread_idx INTEGER NOT NULL,"
        "  frame_idx INTEGER NOT NULL, idx INTEGER NOT NULL, name TEXT, repr TEXT,"
        "  argument INTEGER NOT NULL DEFAULT 0,"
        "  PRIMARY KEY (crash_id, thread_idx, frame_idx, argument, idx)) WITHOUT ROWID;"
        "CREATE TABLE modules ("
        "  crash_id INTEGER NOT NULL REFERENCES crashes(id) ON DELETE CASCADE, path TEXT NOT NULL,"
        "  build_id TEXT, PRIMARY KEY (crash_id, path)) WITHOUT ROWID;"
        "CREATE TABLE signatures ("
        "  signature TEXT PRIMARY KEY, title TEXT, count INTEGER NOT NULL DEFAULT 0,"
        "  first_usec INTEGER, last_usec INTEGER);"
        "CREATE INDEX crashes_signature ON crashes(signature);",
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
                " CASE ? WHEN 'present' THEN 'pending' WHEN 'capturing' THEN 'capturing' ELSE 'done' END)";
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

/* ---- the analysis queue (pystackd) ---- */

int store_requeue_running(sqlite3 *db) {
        char err[256];
        /* a pystackd that died mid-analysis recorded nothing for these: they go again */
        return exec(db, "UPDATE crashes SET state = 'pending' WHERE state = 'running'", err, sizeof(err));
}

int store_claim_next(sqlite3 *db, int64_t *id, char **core_path, int *attempts) {
        static const char sql[] =
                "UPDATE crashes SET state = 'running', attempts = attempts + 1"
                " WHERE id = (SELECT id FROM crashes WHERE state = 'pending' ORDER BY id LIMIT 1)"
                " RETURNING id, core_path, attempts";
        sqlite3_stmt *st;
        int rc, r = 0;

        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const unsigned char *p = sqlite3_column_text(st, 1);

                *id = sqlite3_column_int64(st, 0);
                *attempts = sqlite3_column_int(st, 2);
                *core_path = p ? strdup((const char *)p) : NULL;
                r = 1;
        } else if (rc != SQLITE_DONE)
                r = -EIO;
        sqlite3_finalize(st);
        return r;
}

int store_set_state(sqlite3 *db, int64_t id, const char *state, const char *error) {
        sqlite3_stmt *st;
        int rc;

        if (sqlite3_prepare_v2(db, "UPDATE crashes SET state = ?2, error = ?3 WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
        bind_text(st, 3, error);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Run one statement with ?1 = id and ?2 = the report. */
static int ingest_step(sqlite3 *db, const char *sql, int64_t id, const char *json, size_t len) {
        sqlite3_stmt *st;
        int rc;

        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        if (json)
                sqlite3_bind_text(st, 2, json, (int)len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

int store_ingest(sqlite3 *db, int64_t id, const char *json, size_t len) {
        /*
         * The report is parsed by SQLite (json_each / json_extract), never by
         * us; json_valid() is checked first.  Everything goes in one
         * transaction, and an ingest that runs again replaces the rows.
         */
        static const char *const steps[] = {
                "DELETE FROM threads WHERE crash_id = ?1",
                "DELETE FROM frames WHERE crash_id = ?1",
                "DELETE FROM locals WHERE crash_id = ?1",
                "DELETE FROM modules WHERE crash_id = ?1",
                "INSERT INTO modules (crash_id, path, build_id)"
                " SELECT ?1, json_extract(value, '$.path'), json_extract(value, '$.build_id')"
                " FROM json_each(?2, '$.modules') WHERE json_extract(value, '$.path') IS NOT NULL"
                " ON CONFLICT DO NOTHING",
                "INSERT INTO threads (crash_id, idx, tid, name, crashed, python, has_gil, gc_collecting,"
                " truncated, native_error, merged)"
                " SELECT ?1, t.key, json_extract(t.value, '$.tid'),"
                "  (SELECT json_extract(n.value, '$[1]') FROM crashes c, json_each(c.thread_names) n"
                "    WHERE c.id = ?1 AND json_valid(c.thread_names)"
                "    AND json_extract(n.value, '$[0]') = json_extract(t.value, '$.tid')),"
                "  coalesce(json_extract(t.value, '$.crashed'), 0), coalesce(json_extract(t.value, '$.python'), 0),"
                "  coalesce(json_extract(t.value, '$.has_gil'), 0), coalesce(json_extract(t.value, '$.gc_collecting'), 0),"
                "  json_extract(t.value, '$.truncated'), json_extract(t.value, '$.native_error'),"
                "  json_extract(t.value, '$.merged')"
                " FROM json_each(?2, '$.threads') t",
                "INSERT INTO frames (crash_id, thread_idx, idx, kind, function, file, line, library, build_id,"
                " inlined, address, source)"
                " SELECT ?1, t.key, f.key, coalesce(json_extract(f.value, '$.kind'), 'python'),"
                "  json_extract(f.value, '$.function'), json_extract(f.value, '$.file'),"
                "  json_extract(f.value, '$.line'), json_extract(f.value, '$.library'),"
                "  (SELECT m.build_id FROM modules m WHERE m.crash_id = ?1"
                "    AND m.path LIKE '%/' || json_extract(f.value, '$.library') LIMIT 1),"
                "  coalesce(json_extract(f.value, '$.inlined'), 0), json_extract(f.value, '$.address'),"
                "  json_extract(f.value, '$.source')"
                " FROM json_each(?2, '$.threads') t, json_each(t.value, '$.frames') f",
                "INSERT INTO locals (crash_id, thread_idx, frame_idx, idx, name, repr, argument)"
                " SELECT ?1, t.key, f.key, v.key, json_extract(v.value, '$.name'), json_extract(v.value, '$.repr'), 1"
                " FROM json_each(?2, '$.threads') t, json_each(t.value, '$.frames') f,"
                "  json_each(f.value, '$.arguments') v",
                "INSERT INTO locals (crash_id, thread_idx, frame_idx, idx, name, repr, argument)"
                " SELECT ?1, t.key, f.key, v.key, json_extract(v.value, '$.name'),"
                "  json_extract(v.value, '$.repr'), 0"
                " FROM json_each(?2, '$.threads') t, json_each(t.value, '$.frames') f,"
                "  json_each(f.value, '$.locals') v",
                "UPDATE crashes SET report = ?2, python_version = json_extract(?2, '$.python_version'),"
                " tid = (SELECT json_extract(value, '$.tid') FROM json_each(?2, '$.threads')"
                "        WHERE json_extract(value, '$.crashed') LIMIT 1)"
                " WHERE id = ?1",
        };
        char err[256];
        sqlite3_stmt *st;
        int valid = 0;

        if (sqlite3_prepare_v2(db, "SELECT json_valid(?1) AND json_type(?1) = 'object'", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_text(st, 1, json, (int)len, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
                valid = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (!valid)
                return -EBADMSG;

        if (exec(db, "BEGIN IMMEDIATE", err, sizeof(err)) < 0)
                return -EIO;
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
                if (ingest_step(db, steps[i], id, json, len) < 0)
                        goto fail;
        return exec(db, "COMMIT", err, sizeof(err));
fail:
        exec(db, "ROLLBACK", err, sizeof(err));
        return -EIO;
}

/* Tie the crash to its signature and recount it; the caller holds the transaction. */
static int sign(sqlite3 *db, int64_t id, const char *signature, const char *title, int64_t now_usec) {
        sqlite3_stmt *st;
        int rc;

        if (sqlite3_prepare_v2(db,
                "INSERT INTO signatures (signature, title, count, first_usec, last_usec) VALUES (?1, ?2, 0, ?3, ?3)"
                " ON CONFLICT (signature) DO UPDATE SET last_usec = max(last_usec, ?3)",
                -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_text(st, 1, signature, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, title, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now_usec);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return -EIO;
        /* counted from the crashes themselves: running this twice (a kill in between) cannot count twice */
        if (sqlite3_prepare_v2(db, "UPDATE crashes SET signature = ?2 WHERE id = ?1;", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, signature, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return -EIO;
        if (sqlite3_prepare_v2(db, "UPDATE signatures SET count = (SELECT count(*) FROM crashes WHERE signature = ?1)"
                               " WHERE signature = ?1", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_text(st, 1, signature, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_set_signature(sqlite3 *db, int64_t id, const char *signature, const char *title, int64_t now_usec) {
        char err[256];

        if (exec(db, "BEGIN IMMEDIATE", err, sizeof(err)) < 0)
                return -EIO;
        if (sign(db, id, signature, title, now_usec) < 0) {
                exec(db, "ROLLBACK", err, sizeof(err));
                return -EIO;
        }
        return exec(db, "COMMIT", err, sizeof(err));
}

int store_finish(sqlite3 *db, int64_t id, const char *signature, const char *title, const char *note,
                 int64_t now_usec) {
        sqlite3_stmt *st = NULL;
        char err[256];

        if (exec(db, "BEGIN IMMEDIATE", err, sizeof(err)) < 0)
                return -EIO;
        if (signature && sign(db, id, signature, title, now_usec) < 0)
                goto fail;
        if (sqlite3_prepare_v2(db, "UPDATE crashes SET state = 'done', error = ?2, analyzed_usec = ?3 WHERE id = ?1",
                               -1, &st, NULL) != SQLITE_OK)
                goto fail;
        sqlite3_bind_int64(st, 1, id);
        bind_text(st, 2, note);
        sqlite3_bind_int64(st, 3, now_usec);
        if (sqlite3_step(st) != SQLITE_DONE)
                goto fail;
        sqlite3_finalize(st);
        return exec(db, "COMMIT", err, sizeof(err));
fail:
        sqlite3_finalize(st);
        exec(db, "ROLLBACK", err, sizeof(err));
        return -EIO;
}

char *store_column_dup(sqlite3_stmt *st, int column) {
        const unsigned char *s = sqlite3_column_text(st, column);
        return s ? strdup((const char *)s) : NULL;
}
