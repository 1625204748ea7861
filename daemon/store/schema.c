/* SPDX-License-Identifier: MIT */
/*
 * schema: the store's tables, their version and the migrations between
 * versions, and opening the store — the one home of the schema.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmdline.h"
#include "json.h"
#include "store.h"
#include "store_internal.h"
#include "util.h"

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
 *
 * Version 3: what the analyzer derived, filed with its report (store_file_report), and the
 * counts `groups` reads without scanning every crash:
 * crashes.script   what a person calls the program (cmdline_script() of the command line),
 *                  set by the handler
 * crashes.function, file, line   the crashed thread's innermost Python frame ("frame")
 * crashes.core_truncated         the core was cut short: the report is partial ("core_truncated")
 * threads.interpreter_id         the interpreter a thread's entry ran in (reports from now on)
 * crashes_list     an index holding every column list reads, so that it never reads a row (and
 *                  its long report)
 * signature_counts per signature, uid and dumpable (1: the user's own core): how many crashes,
 *                  the first and last crash time; kept by triggers on crashes, so it is always
 *                  what `SELECT ... GROUP BY` over crashes would say
 * signatures.first_usec, last_usec   the first and last crash time (version 2: analysis times)
 *
 * Version 4: the files a crashed process had mapped, kept by the handler (daemon/capture/binaries.h):
 * binaries         one row per file in binaries/: hash (its SHA-256, the file's name), size, when
 *                  it was first stored, and the device, inode, mtime and ctime of the file it was
 *                  copied from: the same file unchanged (a ctime no user can set back) is not
 *                  read again
 * crash_binaries   per crash, each mapped ELF file: path (as the process's maps named it, in its
 *                  root), address (its first mapping), size, build_id (hex, as the file says),
 *                  hash (NULL when not kept), note (why not)
 *
 * Version 5: which container a crash came from, by its cgroup path and the runtimes' conventions
 * (daemon/capture/proc_info.h); crashes.container now also says a root other than the host's:
 * crashes.container_runtime   "docker", "podman", "containerd", "cri-o", "kubernetes", "lxc",
 *                              "machine", "systemd-nspawn"; NULL when the cgroup names none
 * crashes.container_id        the runtime's id (64 hex digits) or name for it
 * crash_binaries   keyed by (crash_id, address), not the path: two files can have one name
 *                  in maps (a library renamed over while mapped and mapped again, both "... (deleted)";
 *                  two memfds of one name), and each is a row
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
        /* 2 -> 3 */
        "ALTER TABLE crashes ADD COLUMN script TEXT;"
        "ALTER TABLE crashes ADD COLUMN function TEXT;"
        "ALTER TABLE crashes ADD COLUMN file TEXT;"
        "ALTER TABLE crashes ADD COLUMN line INTEGER;"
        "ALTER TABLE crashes ADD COLUMN core_truncated INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE threads ADD COLUMN interpreter_id INTEGER;"
        /* what version 2 derived on every read, derived once */
        "UPDATE crashes SET script = pystack_script(cmdline, exe, comm);"
        "UPDATE crashes SET (function, file, line) = (SELECT f.function, f.file, f.line FROM frames f"
        "  WHERE f.crash_id = crashes.id AND f.thread_idx = 0 AND f.kind = 'python' ORDER BY f.idx DESC LIMIT 1)"
        " WHERE report IS NOT NULL;"
        /* version 2 knew a truncated core only by the words of its error */
        "UPDATE crashes SET core_truncated = 1 WHERE error LIKE 'partial report: the core is truncated%';"
        /* a pystackd of version 1 killed between filing a report and its signature left such crashes
         * (version 2 mended them at every start): analysed again, they get one */
        "UPDATE crashes SET state = 'pending', attempts = 0 WHERE state = 'done' AND signature IS NULL"
        " AND report IS NOT NULL AND core_state = 'present';"
        /* what list reads, in one index: the report before these columns in each row is long, and
         * reading past it costs a chain of overflow pages per crash */
        "CREATE INDEX crashes_list ON crashes(time_usec, id, pid, uid, gid, signal, dumpable, python_version,"
        " core_state, core_truncated, comm, exe, script, function, file, line, state, error, signature, core_path);"
        /* version 2 kept counting a crash filed again under another signature in its old one */
        "UPDATE signatures SET count = (SELECT count(*) FROM crashes c WHERE c.signature = signatures.signature);"
        /* and its times were those of the analyses: the crashes' own, as groups shows them */
        "UPDATE signatures SET (first_usec, last_usec) = (SELECT min(time_usec), max(time_usec) FROM crashes c"
        "  WHERE c.signature = signatures.signature) WHERE count > 0;"
        "CREATE TABLE signature_counts ("
        "  signature TEXT NOT NULL, uid INTEGER NOT NULL, dumpable INTEGER NOT NULL,"
        "  count INTEGER NOT NULL, first_usec INTEGER, last_usec INTEGER,"
        "  PRIMARY KEY (signature, uid, dumpable)) WITHOUT ROWID;"
        "INSERT INTO signature_counts SELECT signature, uid, dumpable = 1, count(*), min(time_usec), max(time_usec)"
        " FROM crashes WHERE signature IS NOT NULL GROUP BY 1, 2, 3;"
        "CREATE TRIGGER crashes_counted AFTER INSERT ON crashes WHEN NEW.signature IS NOT NULL BEGIN"
        "  INSERT INTO signature_counts VALUES (NEW.signature, NEW.uid, NEW.dumpable = 1, 1, NEW.time_usec,"
        "   NEW.time_usec) ON CONFLICT DO UPDATE SET count = count + 1,"
        "   first_usec = min(first_usec, excluded.first_usec), last_usec = max(last_usec, excluded.last_usec);"
        " END;"
        "CREATE TRIGGER crashes_recounted AFTER UPDATE OF signature ON crashes"
        " WHEN OLD.signature IS NOT NEW.signature BEGIN"
        "  UPDATE signature_counts SET (count, first_usec, last_usec) = (SELECT count(*), min(time_usec),"
        "   max(time_usec) FROM crashes WHERE signature = OLD.signature AND uid = OLD.uid"
        "   AND (dumpable = 1) = (OLD.dumpable = 1))"
        "   WHERE signature = OLD.signature AND uid = OLD.uid AND dumpable = (OLD.dumpable = 1);"
        "  DELETE FROM signature_counts WHERE signature = OLD.signature AND count = 0;"
        "  INSERT INTO signature_counts SELECT NEW.signature, NEW.uid, NEW.dumpable = 1, 1, NEW.time_usec,"
        "   NEW.time_usec WHERE NEW.signature IS NOT NULL ON CONFLICT DO UPDATE SET count = count + 1,"
        "   first_usec = min(first_usec, excluded.first_usec), last_usec = max(last_usec, excluded.last_usec);"
        " END;"
        "CREATE TRIGGER crashes_uncounted AFTER DELETE ON crashes WHEN OLD.signature IS NOT NULL BEGIN"
        "  UPDATE signature_counts SET (count, first_usec, last_usec) = (SELECT count(*), min(time_usec),"
        "   max(time_usec) FROM crashes WHERE signature = OLD.signature AND uid = OLD.uid"
        "   AND (dumpable = 1) = (OLD.dumpable = 1))"
        "   WHERE signature = OLD.signature AND uid = OLD.uid AND dumpable = (OLD.dumpable = 1);"
        "  DELETE FROM signature_counts WHERE signature = OLD.signature AND count = 0;"
        " END;",
        /* 3 -> 4 */
        "CREATE TABLE binaries (hash TEXT PRIMARY KEY, size INTEGER NOT NULL, stored_usec INTEGER,"
        "  dev INTEGER, ino INTEGER, mtime_ns INTEGER, ctime_ns INTEGER) WITHOUT ROWID;"
        "CREATE INDEX binaries_inode ON binaries(dev, ino);"
        "CREATE TABLE crash_binaries ("
        "  crash_id INTEGER NOT NULL REFERENCES crashes(id) ON DELETE CASCADE, path TEXT NOT NULL,"
        "  address INTEGER, size INTEGER, build_id TEXT, hash TEXT, note TEXT,"
        "  PRIMARY KEY (crash_id, path)) WITHOUT ROWID;"
        "CREATE INDEX crash_binaries_hash ON crash_binaries(hash) WHERE hash IS NOT NULL;",
        /* 4 -> 5 */
        "ALTER TABLE crashes ADD COLUMN container_runtime TEXT;"
        "ALTER TABLE crashes ADD COLUMN container_id TEXT;"
        "CREATE INDEX crashes_container ON crashes(container_id, time_usec) WHERE container_id IS NOT NULL;"
        "CREATE TABLE crash_binaries_5 ("
        "  crash_id INTEGER NOT NULL REFERENCES crashes(id) ON DELETE CASCADE, path TEXT NOT NULL,"
        "  address INTEGER NOT NULL, size INTEGER, build_id TEXT, hash TEXT, note TEXT,"
        "  PRIMARY KEY (crash_id, address)) WITHOUT ROWID;"
        "INSERT OR IGNORE INTO crash_binaries_5 SELECT crash_id, path, coalesce(address, 0), size, build_id, hash,"
        "  note FROM crash_binaries;"
        "DROP TABLE crash_binaries;"
        "ALTER TABLE crash_binaries_5 RENAME TO crash_binaries;"
        "CREATE INDEX crash_binaries_hash ON crash_binaries(hash) WHERE hash IS NOT NULL;",
};

int store_schema_version(void) {
        return (int)ELEMENTSOF(migrations);
}

/* pystack_script(cmdline, exe, comm): cmdline_script() for SQL, so that a migration derives the
 * script of crashes recorded before the handler did, by the same rule. */
static void sql_script(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
        const char *cmdline = (const char *)sqlite3_value_text(argv[0]);
        const char *exe = (const char *)sqlite3_value_text(argv[1]);
        const char *comm = (const char *)sqlite3_value_text(argv[2]);
        const char *args[256];
        size_t n = 0;
        struct json_doc *doc = NULL;
        char *script;

        (void)argc;
        if (cmdline && json_parse(cmdline, strlen(cmdline), &doc) == 0)
                for (; n < ELEMENTSOF(args) && json_str(json_at(json_root(doc), n)); n++)
                        args[n] = json_str(json_at(json_root(doc), n));
        script = cmdline_script(args, n, exe, comm);
        json_free(doc);
        if (!script) {
                sqlite3_result_error_nomem(ctx);
                return;
        }
        sqlite3_result_text(ctx, script, -1, free);
}

/* PRAGMA user_version: the schema version, or -1 when it cannot be read. */
static int user_version(sqlite3 *db) {
        sqlite3_stmt *st;
        int version = -1;

        if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
                if (sqlite3_step(st) == SQLITE_ROW)
                        version = sqlite3_column_int(st, 0);
                sqlite3_finalize(st);
        }
        return version;
}

static int migrate(sqlite3 *db, bool allowed, char *err, size_t errsz) {
        int version = user_version(db);

        /* the common case, without a write lock: every reader opens the store */
        if (version == store_schema_version())
                return 0;
        if (!allowed && version > 0 && version < store_schema_version()) {
                snprintf(err, errsz, "the store is at schema version %d and must be migrated to %d", version,
                         store_schema_version());
                return -EAGAIN;
        }
        /* IMMEDIATE: two first openers must not both run the same migration; a store that stays
         * locked past the busy timeout is -EBUSY, which the handler outwaits after taking the core */
        int r = store_exec(db, "BEGIN IMMEDIATE");
        if (r < 0)
                return snprintf(err, errsz, "%s", sqlite3_errmsg(db)), r;
        version = user_version(db);
        if (version < 0 || version > store_schema_version()) {
                store_exec(db, "ROLLBACK");
                snprintf(err, errsz, version < 0 ? "cannot read the schema version" :
                         "the store's schema (version %d) is newer than this program's (%d)",
                         version, store_schema_version());
                return -EPROTO;
        }
        for (int v = version; v < store_schema_version(); v++) {
                char sql[64];

                snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
                if (store_exec(db, migrations[v]) < 0 || store_exec(db, sql) < 0) {
                        snprintf(err, errsz, "migrating to version %d: %s", v + 1, sqlite3_errmsg(db));
                        store_exec(db, "ROLLBACK");
                        return -EIO;
                }
        }
        r = store_exec(db, "COMMIT");
        if (r < 0)
                snprintf(err, errsz, "%s", sqlite3_errmsg(db));
        return r;
}

static int open_store(const char *dir, bool migrate_allowed, sqlite3 **ret, char *err, size_t errsz) {
        char path[4096];
        sqlite3 *db = NULL;
        int fd;

        if ((size_t)snprintf(path, sizeof(path), "%s/pystack.db", dir) >= sizeof(path)) {
                snprintf(err, errsz, "%s: path too long", dir);
                return -ENAMETOOLONG;
        }
        /* every open of the store's files goes through the checked directory */
        int r0 = store_anchor(dir, false, err, errsz);
        if (r0 < 0)
                return r0;
        /* create it private before SQLite does with the umask's mode */
        fd = store_open_file(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0) {
                int r = -errno;
                snprintf(err, errsz, "%s: %s", path, strerror(errno));
                store_unanchor(path);
                return r;
        }
        close(fd);
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
                /* no connection at all: SQLite could not allocate one */
                snprintf(err, errsz, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
                sqlite3_close(db);
                store_unanchor(path);
                return -EIO;
        }
        sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
        /* a new store becomes WAL under an exclusive lock: busy too when many open it at once */
        int r = store_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
        if (r == 0 && sqlite3_create_function(db, "pystack_script", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                              sql_script, NULL, NULL) != SQLITE_OK)
                r = -EIO;
        if (r < 0) {
                snprintf(err, errsz, "%s: %s", path, sqlite3_errmsg(db));
                sqlite3_close(db);
                store_unanchor(path);
                return r;
        }
        r = migrate(db, migrate_allowed, err, errsz);
        if (r < 0) {
                sqlite3_close(db);
                store_unanchor(path);
                return r;
        }
        *ret = db;
        return 0;
}

int store_open(const char *dir, sqlite3 **ret, char *err, size_t errsz) {
        return open_store(dir, true, ret, err, errsz);
}

int store_open_current(const char *dir, sqlite3 **ret, char *err, size_t errsz) {
        return open_store(dir, false, ret, err, errsz);
}

/* "file:<path, percent-encoded>?<params>": SQLite's URI form, the only way to pass readonly_shm */
static char *uri_of(const char *path, const char *params) {
        size_t n = strlen(path);
        char *uri = malloc(5 + 3 * n + 1 + strlen(params) + 1), *p = uri;

        if (!uri)
                return NULL;
        p = stpcpy(p, "file:");
        for (const unsigned char *c = (const unsigned char *)path; *c; c++)
                if (isalnum(*c) || strchr("/-._~", *c))
                        *p++ = (char)*c;
                else
                        p += sprintf(p, "%%%02X", *c);
        *p++ = '?';
        strcpy(p, params);
        return uri;
}

int store_open_readonly(const char *dir, sqlite3 **ret, char *err, size_t errsz) {
        char path[4096];
        _cleanup_free_ char *uri = NULL;
        sqlite3 *db = NULL;
        int version = -1, r;

        if ((size_t)snprintf(path, sizeof(path), "%s/pystack.db", dir) >= sizeof(path)) {
                snprintf(err, errsz, "%s: path too long", dir);
                return -ENAMETOOLONG;
        }
        r = store_anchor(dir, true, err, errsz);
        if (r < 0)
                return r;
        /* readonly_shm: not even the WAL index is opened for writing (SQLite then reads the WAL
         * itself when it cannot trust the index, which is slower, and correct) */
        uri = uri_of(path, "mode=ro&readonly_shm=1");
        if (!uri) {
                store_unanchor(path);
                return snprintf(err, errsz, "out of memory"), -ENOMEM;
        }
        if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
                snprintf(err, errsz, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
                sqlite3_close(db);
                store_unanchor(path);
                return -EIO;
        }
        sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
        /* the first read opens the -wal and -shm files: now, while the caller may */
        r = store_exec(db, "PRAGMA query_only=1; PRAGMA temp_store=MEMORY;");
        if (r == 0)
                version = user_version(db);
        if (r < 0 || version != store_schema_version()) {
                if (r < 0 || version < 0)
                        snprintf(err, errsz, "%s: %s", path, sqlite3_errmsg(db));
                else
                        snprintf(err, errsz, "the store is at schema version %d, not %d", version,
                                 store_schema_version());
                sqlite3_close(db);
                store_unanchor(path);
                return r < 0 || version < 0 ? -EIO : -EAGAIN;
        }
        *ret = db;
        return 0;
}

void store_close(sqlite3 *db) {
        char *path = db ? strdup(sqlite3_db_filename(db, "main") ?: "") : NULL;

        store_keep_errmsg(NULL);
        sqlite3_close(db);
        store_unanchor(path);
        free(path);
}
