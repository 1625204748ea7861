/* SPDX-License-Identifier: MIT */
/*
 * TAP tests for daemon/store/: opening and migrating (schema.c), every state change (store.c),
 * the reads (store_query.c) and the retention picks, on stores in a temporary directory.
 *
 * The state of a row is read back with SQL of the test's own, so each check says what the
 * store holds, not what another store function says about it.  signature_counts and
 * signatures.count are compared with a GROUP BY over crashes after every change of a signature.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "retention.h"
#include "store.h"
#include "tap.h"
#include "util.h"

#define SEC 1000000LL
/* 2023-11-14 22:13:20 UTC: the time of the first crash of most data sets */
#define T0 (1700000000LL * SEC)

static char tmproot[] = "/tmp/test-store-XXXXXX";

/* A new directory under tmproot; the string lives until the end. */
static char *dirs[32];
static size_t n_dirs;

static const char *new_dir(const char *name) {
        char *p;

        if (n_dirs == ELEMENTSOF(dirs) || asprintf(&p, "%s/%s", tmproot, name) < 0 || mkdir(p, 0700) < 0)
                abort();
        return dirs[n_dirs++] = p;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
        (void)sb, (void)flag, (void)ftw;
        return remove(path);
}

static sqlite3 *open_store(const char *dir) {
        char err[512] = "";
        sqlite3 *db = NULL;
        int r = store_open(dir, &db, err, sizeof(err));

        if (r < 0) {
                printf("# store_open(%s): %s\n", dir, err);
                abort();
        }
        return db;
}

/* ---- the test's own SQL ---- */

/* The first column of the first row of a printf-formatted query (sqlite3_mprintf: %q, %Q);
 * -99999 when it fails or has no row. */
__attribute__((format(printf, 2, 3)))
static int64_t sql_int(sqlite3 *db, const char *fmt, ...) {
        va_list ap;
        sqlite3_stmt *st = NULL;
        int64_t v = -99999;
        char *sql;

        va_start(ap, fmt);
        sql = sqlite3_vmprintf(fmt, ap);
        va_end(ap);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                printf("# %s: %s\n", sql, sqlite3_errmsg(db));
        else if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_free(sql);
        return v;
}

/* The rows of a query, columns joined by '|' and rows by '\n' ("NULL" for null), in a buffer
 * that the next call reuses. */
__attribute__((format(printf, 2, 3)))
static const char *sql_rows(sqlite3 *db, const char *fmt, ...) {
        static char out[8192];
        va_list ap;
        sqlite3_stmt *st = NULL;
        size_t len = 0;
        char *sql;

        va_start(ap, fmt);
        sql = sqlite3_vmprintf(fmt, ap);
        va_end(ap);
        out[0] = 0;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
                printf("# %s: %s\n", sql, sqlite3_errmsg(db));
                snprintf(out, sizeof(out), "(error)");
        } else
                while (sqlite3_step(st) == SQLITE_ROW)
                        for (int i = 0; i < sqlite3_column_count(st); i++) {
                                const char *s = (const char *)sqlite3_column_text(st, i);
                                len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", s ? s : "NULL",
                                                        i + 1 < sqlite3_column_count(st) ? "|" : "\n");
                                if (len >= sizeof(out))
                                        abort();
                        }
        sqlite3_finalize(st);
        sqlite3_free(sql);
        return out;
}

static int sql_exec(sqlite3 *db, const char *sql) {
        char *msg = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

        if (rc != SQLITE_OK)
                printf("# %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return rc;
}

#define EQ_STR(got, want, ...) eq_str(got, want, __VA_ARGS__)

__attribute__((format(printf, 3, 4)))
static int eq_str(const char *got, const char *want, const char *fmt, ...) {
        char name[512];
        va_list ap;
        bool same = got && want ? !strcmp(got, want) : got == want;

        va_start(ap, fmt);
        vsnprintf(name, sizeof(name), fmt, ap);
        va_end(ap);
        tap_ok(same, "%s", name);
        if (!same)
                printf("#   got:\n%s\n#   want:\n%s\n", got ? got : "(null)", want ? want : "(null)");
        return same;
}

/* The crash's stored report is json. */
static bool report_is(sqlite3 *db, int64_t id, const char *json) {
        sqlite3_stmt *st = NULL;
        bool same = false;

        if (sqlite3_prepare_v2(db, "SELECT report = ?2 FROM crashes WHERE id = ?1", -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, id);
                sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
                same = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
        }
        sqlite3_finalize(st);
        return same;
}

/* A row's analysis and core: "state|core_state|attempts|error". */
static const char *states(sqlite3 *db, int64_t id) {
        return sql_rows(db, "SELECT state, core_state, attempts, error FROM crashes WHERE id = %lld", (long long)id);
}

/*
 * signature_counts is what a GROUP BY over crashes says, row for row, and every signature's count
 * is the number of crashes that carry it.
 */
static void check_signature_counts(sqlite3 *db, const char *when) {
        static const char grouped[] =
                "SELECT signature, uid, dumpable = 1, count(*), min(time_usec), max(time_usec) FROM crashes"
                " WHERE signature IS NOT NULL GROUP BY 1, 2, 3";
        static const char kept[] = "SELECT signature, uid, dumpable, count, first_usec, last_usec FROM signature_counts";

        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM (%s EXCEPT %s)", kept, grouped), 0,
                   "%s: every row of signature_counts is one of the GROUP BY over crashes", when);
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM (%s EXCEPT %s)", grouped, kept), 0,
                   "%s: every group of crashes has its row in signature_counts", when);
}

static void check_counts(sqlite3 *db, const char *when) {
        check_signature_counts(db, when);
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM signatures s"
                               " WHERE count != (SELECT count(*) FROM crashes c WHERE c.signature = s.signature)"), 0,
                   "%s: signatures.count is the number of crashes with the signature", when);
}

/* ---- crashes and reports ---- */

static struct crash_record record(int64_t time_usec, uint32_t uid, int dumpable, const char *exe, const char *comm) {
        return (struct crash_record) {
                .time_usec = time_usec, .boot_id = "0123456789abcdef", .hostname = "box", .pid = 4242,
                .uid = uid, .gid = uid, .signal = 11, .comm = comm, .exe = exe,
                .cmdline_json = "[\"python3\",\"/srv/worker.py\"]", .cwd = "/srv", .cgroup = "/user.slice",
                .thread_names_json = "[[101,\"MainThread\"],[102,\"worker\"]]", .script = "worker.py",
                .dumpable = dumpable, .rlimit_core = -1, .core_size = -1, .core_state = CORE_PRESENT,
        };
}

/* What the handler does for a crash whose core it stored: the row, then the capture's result. */
static int64_t captured(sqlite3 *db, struct crash_record r, const char *core_path, int64_t size) {
        struct rate_limit none = {};
        int64_t id = 0;

        if (store_begin_capture(db, &r, &none, &id) != 0)
                abort();
        r.core_path = core_path;
        r.core_size = size * 3;
        r.core_stored_size = size;
        r.core_state = core_path ? CORE_PRESENT : CORE_TOO_LARGE;
        r.capture_note = core_path ? NULL : "larger than MaxCoreSize";
        if (store_finish_capture(db, &r, &id) != 0)
                abort();
        return id;
}

/*
 * A report as `pystack core --native --locals --json` writes it (doc/report-schema.md): the crashed
 * thread 101 (<module> -> PyObject_Call -> fn -> raise), thread 102 in threading.py, two modules.
 */
static char *report(const char *signature, const char *fn, const char *file, int line, bool truncated) {
        char *s;

        if (asprintf(&s,
                "{\"schema_version\":2,\"core\":\"/dev/fd/3\",\"executable\":\"/usr/bin/python3.11\","
                "\"executable_source\":\"core\",\"python_version\":\"3.11\",\"free_threaded\":false,"
                "\"core_truncated\":%s,\"signature\":\"%s\",\"summary\":\"SIGSEGV in %s (%s:%d)\","
                "\"script\":\"worker.py\",\"frame\":{\"function\":\"%s\",\"file\":\"%s\",\"line\":%d},"
                "\"multiple_interpreters\":false,"
                "\"process\":{\"pid\":4242,\"ppid\":1,\"sid\":4242,\"pgrp\":4242,\"uid\":1000,\"gid\":1000,"
                "\"state\":\"R\",\"zombie\":true,\"nice\":0,\"comm\":\"python3\",\"args\":\"python3 /srv/worker.py\"},"
                "\"signal\":{\"number\":11,\"name\":\"SIGSEGV\",\"code\":1,\"fault_address\":0,\"sender_pid\":null},"
                "\"threads\":["
                "{\"tid\":101,\"thread_state\":4096,\"pthread_id\":8192,\"interpreter_address\":12288,"
                "\"interpreter_id\":0,\"crashed\":true,\"python\":true,\"has_gil\":true,\"gc_collecting\":false,"
                "\"status\":[\"Has the GIL\"],\"exception\":null,\"frames\":["
                "{\"kind\":\"python\",\"function\":\"<module>\",\"file\":\"/srv/worker.py\",\"line\":10,"
                "\"address\":16384,\"source\":\"main()\",\"arguments\":[],\"locals\":[{\"name\":\"x\",\"repr\":\"1\"}],"
                "\"locals_error\":null},"
                "{\"kind\":\"native\",\"function\":\"PyObject_Call\",\"file\":\"Objects/call.c\",\"line\":300,"
                "\"library\":\"libpython3.11.so.1.0\",\"address\":20480,\"inlined\":false,\"eval\":false},"
                "{\"kind\":\"python\",\"function\":\"%s\",\"file\":\"%s\",\"line\":%d,\"address\":24576,"
                "\"source\":\"crash()\",\"arguments\":[{\"name\":\"n\",\"repr\":\"42\"}],"
                "\"locals\":[{\"name\":\"y\",\"repr\":\"'a'\"}],\"locals_error\":null},"
                "{\"kind\":\"native\",\"function\":\"raise\",\"file\":null,\"line\":0,\"library\":\"libc.so.6\","
                "\"address\":28672,\"inlined\":true,\"eval\":false}],"
                "\"truncated\":null,\"native_error\":null,\"merged\":true},"
                "{\"tid\":102,\"thread_state\":32768,\"pthread_id\":36864,\"interpreter_address\":12288,"
                "\"interpreter_id\":0,\"crashed\":false,\"python\":true,\"has_gil\":false,\"gc_collecting\":false,"
                "\"status\":[],\"exception\":null,\"frames\":["
                "{\"kind\":\"python\",\"function\":\"run\",\"file\":\"/usr/lib/python3.11/threading.py\","
                "\"line\":975,\"address\":40960,\"source\":null,\"arguments\":[],\"locals\":[],\"locals_error\":null}],"
                "\"truncated\":\"depth limit\",\"native_error\":null,\"merged\":false}],"
                "\"modules\":[{\"path\":\"/usr/lib/libpython3.11.so.1.0\",\"build_id\":\"aaaa\",\"start\":1,\"end\":2},"
                "{\"path\":\"/usr/lib/x86_64-linux-gnu/libc.so.6\",\"build_id\":\"bbbb\",\"start\":3,\"end\":4}],"
                "\"warnings\":[]}",
                truncated ? "true" : "false", signature, fn, path_base_name(file), line, fn, file, line, fn, file,
                line) < 0)
                abort();
        return s;
}

/* A smaller one: one thread, one frame, no modules. */
static char *small_report(const char *signature) {
        char *s;

        if (asprintf(&s, "{\"schema_version\":2,\"python_version\":\"3.12\",\"signature\":\"%s\","
                     "\"summary\":\"SIGABRT in boom (b.py:7)\",\"frame\":{\"function\":\"boom\",\"file\":\"/b.py\","
                     "\"line\":7},\"threads\":[{\"tid\":102,\"crashed\":true,\"python\":true,\"frames\":["
                     "{\"kind\":\"python\",\"function\":\"boom\",\"file\":\"/b.py\",\"line\":7}]}]}",
                     signature) < 0)
                abort();
        return s;
}

static int file_report(sqlite3 *db, int64_t id, char *json, const char *note, int64_t now) {
        int r = store_file_report(db, id, json, strlen(json), note, now);

        free(json);
        return r;
}

/* ---- opening ---- */

static void test_open(void) {
        const char *dir = new_dir("open");
        char path[4096], err[512] = "";
        sqlite3 *db = NULL, *db2 = NULL, *raw = NULL;
        struct stat sb;
        mode_t old = umask(0);

        TAP_EQ_INT(store_schema_version(), 5, "the schema is at version 5");
        TAP_EQ_INT(store_open_current(dir, &db, err, sizeof(err)), 0, "store_open_current creates a store: %s", err);
        umask(old);
        snprintf(path, sizeof(path), "%s/pystack.db", dir);
        if (stat(path, &sb) < 0)
                sb.st_mode = 0;
        TAP_EQ_INT(sb.st_mode & 07777, 0600, "pystack.db is 0600 even under umask 0");
        TAP_EQ_INT(sql_int(db, "PRAGMA user_version"), store_schema_version(), "it is at store_schema_version()");
        EQ_STR(sql_rows(db, "PRAGMA journal_mode"), "wal\n", "in WAL mode");
        TAP_EQ_INT(sql_int(db, "PRAGMA foreign_keys"), 1, "with foreign keys enforced");
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN"
                               " ('crashes', 'threads', 'frames', 'locals', 'modules', 'signatures', 'signature_counts')"),
                   7, "every table is there");
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"), 3,
                   "and the three triggers that keep signature_counts");

        TAP_EQ_INT(store_open(dir, &db2, err, sizeof(err)), 0, "a second store_open of the same store: %s", err);
        TAP_EQ_INT(sql_exec(db, "BEGIN IMMEDIATE"), SQLITE_OK, "the first connection takes the write lock");
        store_close(db2);
        db2 = NULL;
        TAP_EQ_INT(store_open(dir, &db2, err, sizeof(err)), 0,
                   "a current store opens while another connection writes (no migration, no lock): %s", err);
        sql_exec(db, "ROLLBACK");
        store_close(db2);
        store_close(db);
        db = NULL;
        TAP_EQ_INT(store_open(dir, &db, err, sizeof(err)), 0, "and again once closed: %s", err);
        TAP_EQ_INT(sql_int(db, "PRAGMA user_version"), store_schema_version(), "still at the current version");
        store_close(db);

        /* a store written by a newer program */
        dir = new_dir("newer");
        snprintf(path, sizeof(path), "%s/pystack.db", dir);
        if (sqlite3_open(path, &raw) != SQLITE_OK)
                abort();
        sql_exec(raw, "CREATE TABLE future (x); PRAGMA user_version = 6;");
        sqlite3_close(raw);
        db = NULL;
        err[0] = 0;
        TAP_EQ_INT(store_open(dir, &db, err, sizeof(err)), -EPROTO, "a store at version 6 is refused with -EPROTO");
        EQ_STR(err, "the store's schema (version 6) is newer than this program's (5)", "with a message saying why");
        tap_ok(db == NULL, "and no handle");
        if (sqlite3_open(path, &raw) != SQLITE_OK)
                abort();
        TAP_EQ_INT(sql_int(raw, "PRAGMA user_version"), 6, "the newer store is left as it was");
        TAP_EQ_INT(sql_int(raw, "SELECT count(*) FROM sqlite_master WHERE name = 'crashes'"), 0,
                   "with no table of ours added");
        sqlite3_close(raw);

        snprintf(path, sizeof(path), "%s/absent", tmproot);
        err[0] = 0;
        TAP_EQ_INT(store_open(path, &db, err, sizeof(err)), -ENOENT, "a directory that does not exist: -ENOENT");
        tap_ok(strstr(err, "/absent: No such file or directory") != NULL, "the message names the directory: %s", err);
}

/* ---- migration from version 2 ---- */

/* migrations[0] and [1] of schema.c as released: the schema at version 2. */
static const char schema_v1[] =
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
        "CREATE INDEX crashes_time ON crashes(time_usec);";
static const char schema_v2[] =
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
        "CREATE INDEX crashes_signature ON crashes(signature);";

/*
 * Crashes as pystack-coredump and pystackd of version 2 wrote them: the report filed, the
 * signature set by pystackd (counted in signatures), a partial report's note in error.
 */
static const char v2_rows[] =
        "INSERT INTO crashes (id, time_usec, pid, uid, gid, signal, comm, exe, cmdline, dumpable, core_path,"
        " core_state, state, attempts, error, python_version, signature, report, analyzed_usec) VALUES"
        /* analysed; its innermost Python frame of thread 0 is frame 2 */
        " (1, 1000000000, 11, 1000, 1000, 11, 'python3', '/usr/bin/python3.11',"
        "  '[\"python3\",\"-u\",\"/srv/worker.py\"]', 1, 'cores/1', 'present', 'done', 1, NULL, '3.11',"
        "  'aaaa000000000001', '{}', 1001000000),"
        /* a partial report of a truncated core, only native frames in thread 0 */
        " (2, 2000000000, 12, 1000, 1000, 11, 'python3', '/usr/bin/python3.11', '[\"python3\",\"w.py\"]', 1,"
        "  'cores/2', 'present', 'done', 1, 'partial report: the core is truncated (4096 of 8192 bytes)', '3.11',"
        "  'aaaa000000000001', '{}', 2001000000),"
        /* killed between the report and its signature: analysed again */
        " (3, 3000000000, 13, 0, 0, 6, 'python3', '/usr/bin/python3.11', '[\"python3\",\"-m\",\"pkg.mod\"]', 1,"
        "  'cores/3', 'present', 'done', 2, NULL, '3.11', NULL, '{}', 3001000000),"
        /* the same, but its core is gone: nothing to analyse */
        " (4, 4000000000, 14, 0, 0, 6, 'python3', '/usr/bin/python3.11', '[\"python3\",\"-c\",\"x\"]', 1,"
        "  'cores/4', 'removed', 'done', 1, NULL, '3.11', NULL, '{}', 4001000000),"
        /* no core, no report, no command line */
        " (5, 5000000000, 15, 1001, 1001, 7, 'foo', '/usr/bin/foo', NULL, 1, NULL, 'too-large', 'done', 0, NULL,"
        "  NULL, NULL, NULL, NULL),"
        /* a set-uid program's crash; a partial report for another reason */
        " (6, 6000000000, 16, 1000, 1000, 11, 'python3', '/usr/bin/python3', '[\"/usr/bin/python3\",\"-c\",\"x\"]',"
        "  2, 'cores/6', 'present', 'done', 1, 'partial report: unreadable memory', '3.12', 'bbbb000000000002', '{}',"
        "  6001000000),"
        /* not dumpable; not a Python interpreter's command line */
        " (7, 7000000000, 17, 1000, 1000, 11, NULL, '/usr/bin/myprog', '[\"myprog\",\"--x\"]', 0, 'cores/7',"
        "  'present', 'done', 1, NULL, '3.11', 'aaaa000000000001', '{}', 7001000000),"
        /* still pending */
        " (8, 8000000000, 18, 1000, 1000, 11, 'python3', '/usr/bin/python3.11', '[\"python3\",\"x.py\"]', 1,"
        "  'cores/8', 'present', 'pending', 0, NULL, NULL, NULL, NULL, NULL);"
        "INSERT INTO frames (crash_id, thread_idx, idx, kind, function, file, line, library) VALUES"
        " (1, 0, 0, 'python', '<module>', '/srv/worker.py', 10, NULL),"
        " (1, 0, 1, 'native', 'PyObject_Call', 'Objects/call.c', 300, 'libpython3.11.so.1.0'),"
        " (1, 0, 2, 'python', 'work', '/srv/lib.py', 41, NULL),"
        " (1, 0, 3, 'native', 'raise', NULL, 0, 'libc.so.6'),"
        " (1, 1, 0, 'python', 'run', '/usr/lib/python3.11/threading.py', 975, NULL),"
        " (1, 1, 5, 'python', 'other', '/other.py', 5, NULL),"
        " (2, 0, 0, 'native', 'main', NULL, 0, 'python3.11'),"
        " (2, 1, 0, 'python', 'elsewhere', '/e.py', 3, NULL),"
        " (6, 0, 0, 'python', 'f', '/f.py', 1, NULL),"
        " (7, 0, 0, 'python', 'g', '/g.py', 2, NULL);"
        "INSERT INTO threads (crash_id, idx, tid, crashed, python) VALUES (1, 0, 11, 1, 1), (1, 1, 12, 0, 1);"
        "INSERT INTO signatures VALUES ('aaaa000000000001', 'SIGSEGV in work (lib.py:41)', 3, 1001000000, 7001000000),"
        " ('bbbb000000000002', 'SIGSEGV in f (f.py:1)', 1, 6001000000, 6001000000);"
        "PRAGMA user_version = 2;";

/*
 * The store's directory is held by its descriptor: a directory swapped in under its name after
 * store_open, and links or FIFOs in it, are never what SQLite opens.
 */
static void test_anchored(void) {
        const char *dir = new_dir("anchored");
        char moved[2048], path[4096], other[4096];
        sqlite3 *db = open_store(dir), *raw = NULL;
        struct stat st;
        int fd;

        snprintf(moved, sizeof(moved), "%s.moved", dir);
        TAP_EQ_INT(rename(dir, moved), 0, "anchored: the store's directory renamed away after store_open");
        TAP_EQ_INT(mkdir(dir, 0700), 0, "and another directory made under its name");
        snprintf(path, sizeof(path), "%s/second.db", dir);
        tap_ok(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) == SQLITE_OK &&
               sqlite3_exec(raw, "CREATE TABLE t (x)", NULL, NULL, NULL) == SQLITE_OK,
               "anchored: SQLite creates a database by the old name");
        sqlite3_close(raw);
        snprintf(other, sizeof(other), "%s/second.db", moved);
        tap_ok(stat(other, &st) == 0 && stat(path, &st) < 0 && errno == ENOENT,
               "anchored: it is in the directory store_open checked, not in the one swapped in");

        /* a link or a FIFO in an anchored directory (another store's, not swapped) is not opened */
        const char *dir2 = new_dir("anchored2");
        sqlite3 *db2 = open_store(dir2);

        snprintf(other, sizeof(other), "%s/elsewhere.db", tmproot);
        fd = open(other, O_RDWR | O_CREAT, 0600);
        close(fd);
        snprintf(path, sizeof(path), "%s/link.db", dir2);
        TAP_EQ_INT(symlink(other, path), 0, "anchored: a symbolic link planted in a store's directory");
        raw = NULL;
        tap_ok(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
               sqlite3_exec(raw, "CREATE TABLE t (x)", NULL, NULL, NULL) != SQLITE_OK,
               "anchored: SQLite does not open through it");
        sqlite3_close(raw);
        snprintf(path, sizeof(path), "%s/hard.db", dir2);
        TAP_EQ_INT(link(other, path), 0, "anchored: a hard link planted there");
        raw = NULL;
        tap_ok(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
               sqlite3_exec(raw, "CREATE TABLE t (x)", NULL, NULL, NULL) != SQLITE_OK,
               "anchored: SQLite does not write through it");
        sqlite3_close(raw);
        tap_ok(stat(other, &st) == 0 && st.st_size == 0, "anchored: the file elsewhere is untouched");
        snprintf(path, sizeof(path), "%s/fifo.db", dir2);
        TAP_EQ_INT(mkfifo(path, 0600), 0, "anchored: a FIFO planted there");
        raw = NULL;
        tap_ok(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
               sqlite3_exec(raw, "CREATE TABLE t (x)", NULL, NULL, NULL) != SQLITE_OK,
               "anchored: SQLite does not open it (nor wait on it)");
        sqlite3_close(raw);
        store_close(db2);
        store_close(db);
        /* once the last store in it is closed, the name is a name again */
        snprintf(path, sizeof(path), "%s/third.db", dir);
        raw = NULL;
        tap_ok(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) == SQLITE_OK &&
               sqlite3_exec(raw, "CREATE TABLE t (x)", NULL, NULL, NULL) == SQLITE_OK && stat(path, &st) == 0,
               "anchored: after store_close, the name is the new directory's");
        sqlite3_close(raw);
}

static void test_migration(void) {
        const char *dir = new_dir("v2");
        char path[4096], err[512] = "";
        sqlite3 *raw = NULL, *db = NULL;

        snprintf(path, sizeof(path), "%s/pystack.db", dir);
        if (sqlite3_open(path, &raw) != SQLITE_OK)
                abort();
        TAP_EQ_INT(sql_exec(raw, schema_v1), SQLITE_OK, "v2 store: the schema of version 1");
        TAP_EQ_INT(sql_exec(raw, schema_v2), SQLITE_OK, "v2 store: the tables of version 2");
        TAP_EQ_INT(sql_exec(raw, v2_rows), SQLITE_OK, "v2 store: crashes as version 2 filed them");
        sqlite3_close(raw);

        TAP_EQ_INT(store_open_current(dir, &db, err, sizeof(err)), -EAGAIN,
                   "store_open_current of a version-2 store: -EAGAIN (%s)", err);
        tap_ok(db == NULL && strstr(err, "version 2") != NULL, "no handle, the message names the version");
        err[0] = 0;
        if (sqlite3_open(path, &raw) != SQLITE_OK)
                abort();
        TAP_EQ_INT(sql_int(raw, "PRAGMA user_version"), 2, "the store is still at version 2");
        sqlite3_close(raw);

        TAP_EQ_INT(store_open(dir, &db, err, sizeof(err)), 0, "a version-2 store opens: %s", err);
        if (!db)
                return;
        TAP_EQ_INT(sql_int(db, "PRAGMA user_version"), 5, "and is migrated to version 5");
        EQ_STR(sql_rows(db, "SELECT id, script FROM crashes ORDER BY id"),
               "1|worker.py\n2|w.py\n3|-m pkg.mod\n4|-c\n5|foo\n6|-c\n7|myprog\n8|x.py\n",
               "script derived by pystack_script() from cmdline, exe and comm");
        EQ_STR(sql_rows(db, "SELECT id, function, file, line FROM crashes ORDER BY id"),
               "1|work|/srv/lib.py|41\n2|NULL|NULL|NULL\n3|NULL|NULL|NULL\n4|NULL|NULL|NULL\n5|NULL|NULL|NULL\n"
               "6|f|/f.py|1\n7|g|/g.py|2\n8|NULL|NULL|NULL\n",
               "function/file/line: thread 0's innermost Python frame, for analysed crashes");
        EQ_STR(sql_rows(db, "SELECT id FROM crashes WHERE core_truncated ORDER BY id"), "2\n",
               "core_truncated only for the error 'partial report: the core is truncated...'");
        EQ_STR(sql_rows(db, "SELECT id, state, attempts FROM crashes WHERE id IN (3, 4, 8) ORDER BY id"),
               "3|pending|0\n4|done|1\n8|pending|0\n",
               "done with a report but no signature and a present core: pending again, attempts 0; "
               "not when the core is gone");
        EQ_STR(sql_rows(db, "SELECT signature, uid, dumpable, count, first_usec, last_usec FROM signature_counts"
                            " ORDER BY 1, 2, 3"),
               "aaaa000000000001|1000|0|1|7000000000|7000000000\n"
               "aaaa000000000001|1000|1|2|1000000000|2000000000\n"
               "bbbb000000000002|1000|0|1|6000000000|6000000000\n",
               "signature_counts per signature, uid and dumpable = 1, with crash times");
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM (SELECT signature, uid, dumpable, count, first_usec, last_usec"
                               " FROM signature_counts EXCEPT SELECT signature, uid, dumpable = 1, count(*),"
                               " min(time_usec), max(time_usec) FROM crashes WHERE signature IS NOT NULL"
                               " GROUP BY 1, 2, 3)"), 0, "signature_counts is the GROUP BY over crashes");
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM pragma_table_info('threads') WHERE name = 'interpreter_id'"), 1,
                   "threads.interpreter_id added");
        EQ_STR(sql_rows(db, "SELECT count(*), sum(interpreter_id IS NULL) FROM threads"), "2|2\n",
               "the old threads rows are kept");
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM frames"), 10, "and the old frames rows");
        store_close(db);
        db = NULL;
        TAP_EQ_INT(store_open_current(dir, &db, err, sizeof(err)), 0, "the migrated store opens again, also with store_open_current: %s", err);
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM crashes"), 8, "with its crashes");

        /* the triggers work on the migrated rows: crash 3 analysed, crash 1 analysed again otherwise */
        TAP_EQ_INT(file_report(db, 3, small_report("aaaa000000000001"), NULL, 9000000000), 0,
                   "the requeued crash gets its report");
        EQ_STR(sql_rows(db, "SELECT count FROM signature_counts WHERE signature = 'aaaa000000000001' AND uid = 0"),
               "1\n", "its signature is counted for uid 0");
        TAP_EQ_INT(file_report(db, 1, small_report("cccc000000000003"), NULL, 9100000000), 0,
                   "a migrated crash filed again with another signature");
        EQ_STR(sql_rows(db, "SELECT count, first_usec, last_usec FROM signature_counts"
                            " WHERE signature = 'aaaa000000000001' AND uid = 1000 AND dumpable = 1"),
               "1|2000000000|2000000000\n", "its old group is recounted");
        check_counts(db, "migrated store");
        store_close(db);
}

/* ---- capture ---- */

static void test_capture(void) {
        const char *dir = new_dir("capture");
        sqlite3 *db = open_store(dir);
        struct rate_limit none = {}, limit = { .burst = 3, .interval_usec = 60 * SEC };
        struct crash_record r;
        int64_t id = 0, ids[8];

        /* no limit: the row says the capture is under way */
        r = record(T0, 1000, 1, "/usr/bin/python3.11", "python3");
        r.capture_note = "ignored";
        TAP_EQ_INT(store_begin_capture(db, &r, &none, &id), 0, "store_begin_capture without a limit: 0");
        tap_ok(id > 0, "with the row's id");
        EQ_STR(sql_rows(db, "SELECT state, core_state, capture_note, suppressed, core_path FROM crashes WHERE id = %lld",
                        (long long)id), "capturing|capturing|NULL|0|NULL\n", "the row is capturing, core capturing");
        EQ_STR(sql_rows(db, "SELECT time_usec, boot_id, hostname, pid, pid_ns, uid, gid, signal, comm, exe, cmdline,"
                            " cwd, cgroup, container, dumpable, rlimit_core, thread_names, script FROM crashes"
                            " WHERE id = %lld", (long long)id),
               "1700000000000000|0123456789abcdef|box|4242|NULL|1000|1000|11|python3|/usr/bin/python3.11|"
               "[\"python3\",\"/srv/worker.py\"]|/srv|/user.slice|0|1|-1|[[101,\"MainThread\"],[102,\"worker\"]]|"
               "worker.py\n", "with what the handler knows (pid_ns 0: NULL)");
        tap_ok(r.core_state == CORE_PRESENT && !strcmp(r.capture_note, "ignored"),
               "the record is not changed when not limited");

        /* finished: the core is present -> pending */
        r.core_path = "cores/a.zst";
        r.core_size = 3000;
        r.core_stored_size = 1000;
        r.core_state = CORE_PRESENT;
        r.capture_note = NULL;
        TAP_EQ_INT(store_finish_capture(db, &r, &id), 0, "store_finish_capture of the row");
        EQ_STR(sql_rows(db, "SELECT state, core_state, core_path, core_size, core_stored_size, capture_note"
                            " FROM crashes WHERE id = %lld", (long long)id),
               "pending|present|cores/a.zst|3000|1000|NULL\n", "a present core: pending, with its sizes");
        TAP_EQ_INT(store_cores_size(db), 1000, "store_cores_size counts it");

        /* finished without a core -> done */
        r = record(T0 + 1, 1000, 1, "/usr/bin/python3.11", "python3");
        TAP_EQ_INT(store_begin_capture(db, &r, &none, &id), 0, "another capture begins");
        r.core_state = CORE_ERROR;
        r.capture_note = "cannot create a file in the cores directory";
        TAP_EQ_INT(store_finish_capture(db, &r, &id), 0, "and fails");
        EQ_STR(sql_rows(db, "SELECT state, core_state, core_path, core_size, capture_note FROM crashes"
                            " WHERE id = %lld", (long long)id),
               "done|error|NULL|NULL|cannot create a file in the cores directory\n",
               "no core: done, with the note (core_size -1: NULL)");

        /* id 0: the whole record inserted (the store was busy when the capture began) */
        r = record(T0 + 2, 1001, 1, "/usr/bin/python3.12", "python3");
        r.core_path = "cores/b.zst";
        r.core_size = 10;
        r.core_stored_size = 5;
        r.pid_ns = 7;
        id = 0;
        TAP_EQ_INT(store_finish_capture(db, &r, &id), 0, "store_finish_capture with id 0");
        tap_ok(id > 0, "inserts a row (%lld)", (long long)id);
        EQ_STR(sql_rows(db, "SELECT state, core_state, core_path, pid_ns, uid, exe FROM crashes WHERE id = %lld",
                        (long long)id), "pending|present|cores/b.zst|7|1001|/usr/bin/python3.12\n",
               "the inserted row is pending with a present core");
        r.core_path = NULL;
        r.core_state = CORE_NO_SPACE;
        r.capture_note = "KeepFree";
        id = 0;
        TAP_EQ_INT(store_finish_capture(db, &r, &id), 0, "store_finish_capture with id 0, no core");
        EQ_STR(sql_rows(db, "SELECT state, core_state, capture_note FROM crashes WHERE id = %lld", (long long)id),
               "done|no-space|KeepFree\n", "is inserted done");
        id = 99999;
        TAP_EQ_INT(store_finish_capture(db, &r, &id), -ENOENT, "store_finish_capture of a row that does not exist: -ENOENT");

        /* a row claimed by an analysis of the raw core keeps its state */
        struct claim c = {};
        r = record(T0 + 3, 1000, 2, "/usr/bin/python3.11", "python3");
        TAP_EQ_INT(store_begin_capture(db, &r, &none, &id), 0, "a capture begins");
        TAP_EQ_INT(store_claim_capturing(db, id, &c), 1, "and pystackd claims its raw core");
        r.core_path = "cores/c.zst";
        r.core_state = CORE_PRESENT;
        TAP_EQ_INT(store_finish_capture(db, &r, &id), 0, "then the capture finishes");
        EQ_STR(sql_rows(db, "SELECT state, core_state, core_path, attempts FROM crashes WHERE id = %lld",
                        (long long)id), "running|present|cores/c.zst|1\n", "the claimed row stays running");
        claim_done(&c);
        r.core_path = NULL;
        r.core_state = CORE_ERROR;
        TAP_EQ_INT(store_finish_capture(db, &r, &id), 0, "a claimed row whose capture failed");
        EQ_STR(sql_rows(db, "SELECT state, core_state FROM crashes WHERE id = %lld", (long long)id),
               "running|error\n", "stays running too");

        /* the rate limit: burst 3 within 60 s, per executable */
        for (int i = 0; i < 3; i++) {
                r = record(T0 + 1000 * SEC + i * SEC, 1000, 1, "/usr/bin/loop", "loop");
                TAP_EQ_INT(store_begin_capture(db, &r, &limit, &ids[i]), 0, "crash %d of a loop within the burst", i + 1);
        }
        r = record(T0 + 1003 * SEC, 1000, 1, "/usr/bin/loop", "loop");
        TAP_EQ_INT(store_begin_capture(db, &r, &limit, &ids[3]), 1, "the burst+1-th crash within the interval: 1");
        tap_ok(r.core_state == CORE_RATE_LIMITED && r.suppressed == 1 && r.capture_note,
               "the record says rate-limited, suppressed 1");
        EQ_STR(sql_rows(db, "SELECT state, core_state, suppressed, capture_note FROM crashes WHERE id = %lld",
                        (long long)ids[3]),
               "done|rate-limited|1|more than RateLimitBurst crashes of this executable within RateLimitIntervalSec\n",
               "its row is final: done, rate-limited, suppressed 1");
        r = record(T0 + 1004 * SEC, 1000, 1, "/usr/bin/loop", "loop");
        TAP_EQ_INT(store_begin_capture(db, &r, &limit, &ids[4]), 1, "the next one too");
        TAP_EQ_INT(r.suppressed, 2, "suppressed counts on: 2");
        r = record(T0 + 1004 * SEC, 1000, 1, "/usr/bin/other", "other");
        TAP_EQ_INT(store_begin_capture(db, &r, &limit, &ids[5]), 0, "another executable is not limited");
        r = record(T0 + 1065 * SEC, 1000, 1, "/usr/bin/loop", "loop");
        TAP_EQ_INT(store_begin_capture(db, &r, &limit, &ids[6]), 0, "the loop's executable after the interval: 0");
        EQ_STR(sql_rows(db, "SELECT state, core_state, suppressed FROM crashes WHERE id = %lld", (long long)ids[6]),
               "capturing|capturing|0\n", "capturing again");
        /* crashes whose executable the handler could not read count against one another */
        struct rate_limit one = { .burst = 1, .interval_usec = 60 * SEC };
        r = record(T0 + 2000 * SEC, 1000, 1, NULL, "loop");
        TAP_EQ_INT(store_begin_capture(db, &r, &one, &id), 0, "a crash of an unknown executable (exe NULL)");
        r = record(T0 + 2001 * SEC, 1000, 1, NULL, "loop");
        TAP_EQ_INT(store_begin_capture(db, &r, &one, &id), 1, "the next one within the interval is rate-limited");

        /* a write lock held elsewhere past the busy timeout: -EBUSY, no row */
        sqlite3 *other = NULL;
        char path[4096];
        int64_t before = sql_int(db, "SELECT count(*) FROM crashes");
        snprintf(path, sizeof(path), "%s/pystack.db", dir);
        if (sqlite3_open(path, &other) != SQLITE_OK)
                abort();
        sql_exec(other, "BEGIN IMMEDIATE");
        sqlite3_busy_timeout(db, 50);
        r = record(T0 + 3000 * SEC, 1000, 1, "/usr/bin/python3", "python3");
        TAP_EQ_INT(store_begin_capture(db, &r, &none, &id), -EBUSY, "store_begin_capture under another writer: -EBUSY");
        sql_exec(other, "ROLLBACK");
        sqlite3_close(other);
        sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM crashes"), before, "and no row");
        TAP_EQ_INT(sqlite3_get_autocommit(db), 1, "and no transaction left open");
        store_close(db);
}

/* ---- the analysis queue ---- */

static void test_queue(void) {
        const char *dir = new_dir("queue");
        sqlite3 *db = open_store(dir);
        struct crash_record r;
        struct claim c = {};
        int64_t capturing, p1, p2, p3, done, stale;
        struct rate_limit none = {};

        TAP_EQ_INT(store_claim_next(db, &c), 0, "store_claim_next on an empty store: 0");

        r = record(T0, 1000, 1, "/usr/bin/python3.11", "python3");
        if (store_begin_capture(db, &r, &none, &capturing) != 0)
                abort();
        p1 = captured(db, record(T0 + 1 * SEC, 1000, 2, "/usr/bin/python3.11", "python3"), "cores/p1", 10);
        p2 = captured(db, record(T0 + 2 * SEC, 1001, 1, "/usr/bin/python3.11", "python3"), "cores/p2", 20);
        done = captured(db, record(T0 + 3 * SEC, 1000, 1, "/usr/bin/python3.11", "python3"), NULL, 0);
        p3 = captured(db, record(T0 + 4 * SEC, 1000, 1, "/usr/bin/python3.11", "python3"), "cores/p3", 30);
        /* pending, but its core went (a store of an older version could hold such a row) */
        stale = captured(db, record(T0 - 10 * SEC, 1000, 1, "/usr/bin/python3.11", "python3"), "cores/s", 5);
        sql_exec(db, "UPDATE crashes SET core_state = 'removed' WHERE core_path = 'cores/s'");

        TAP_EQ_INT(store_claim_next(db, &c), 1, "store_claim_next: 1");
        tap_ok(c.id == p1 && c.attempts == 1 && c.uid == 1000 && c.gid == 1000 && c.dumpable == 2 && c.core_path &&
               !strcmp(c.core_path, "cores/p1"),
               "the oldest pending crash with a present core, with its core, attempts 1, uid, gid, dumpable");
        EQ_STR(states(db, p1), "running|present|1|NULL\n", "it is running, attempts 1");
        claim_done(&c);
        tap_ok(c.core_path == NULL && c.id == 0, "claim_done clears the claim");
        TAP_EQ_INT(store_claim_next(db, &c), 1, "again");
        TAP_EQ_INT(c.id, p2, "the next oldest");
        claim_done(&c);
        TAP_EQ_INT(store_claim_next(db, &c), 1, "again");
        TAP_EQ_INT(c.id, p3, "the last one (not the done crash)");
        claim_done(&c);
        TAP_EQ_INT(store_claim_next(db, &c), 0, "then 0: never a capturing row, nor a pending one without its core");
        EQ_STR(states(db, capturing), "capturing|capturing|0|NULL\n", "the capturing row is untouched");
        EQ_STR(states(db, stale), "pending|removed|0|NULL\n", "so is the pending row without a core");
        EQ_STR(states(db, done), "done|too-large|0|NULL\n", "and the done one");

        /* store_claim_capturing */
        TAP_EQ_INT(store_claim_capturing(db, p1, &c), 0, "store_claim_capturing of a running crash: 0");
        TAP_EQ_INT(store_claim_capturing(db, done, &c), 0, "of a done crash: 0");
        TAP_EQ_INT(store_claim_capturing(db, 99999, &c), 0, "of no crash: 0");
        TAP_EQ_INT(store_claim_capturing(db, capturing, &c), 1, "of a capturing crash: 1");
        tap_ok(c.id == capturing && c.core_path == NULL && c.attempts == 1 && c.uid == 1000 && c.dumpable == 1,
               "with no core path yet, attempts 1");
        EQ_STR(states(db, capturing), "running|capturing|1|NULL\n", "it runs while its core is captured");
        claim_done(&c);
        TAP_EQ_INT(store_claim_capturing(db, capturing, &c), 0, "it cannot be claimed twice");

        /* store_fail_attempt: below max -> the queue, or back to waiting for the capture */
        TAP_EQ_INT(store_fail_attempt(db, p1, "analyzer crashed", true, 3), 0, "a failed attempt 1 of 3: 0");
        EQ_STR(states(db, p1), "pending|present|1|analyzer crashed\n", "pending again, with the reason");
        TAP_EQ_INT(store_fail_attempt(db, capturing, "the raw core ended early", true, 3), 0,
                   "a failed attempt on a raw core: 0");
        EQ_STR(states(db, capturing), "capturing|capturing|1|the raw core ended early\n",
               "back to capturing: the queue gets it when its capture is finished");
        TAP_EQ_INT(store_claim_next(db, &c), 1, "p1 claimed again");
        TAP_EQ_INT(c.attempts, 2, "attempt 2");
        claim_done(&c);
        TAP_EQ_INT(store_fail_attempt(db, p1, "again", true, 3), 0, "attempt 2 of 3 fails: 0");
        TAP_EQ_INT(store_claim_next(db, &c), 1, "p1 claimed a third time");
        TAP_EQ_INT(c.attempts, 3, "attempt 3");
        claim_done(&c);
        TAP_EQ_INT(store_fail_attempt(db, p1, "and again", true, 3), 1, "attempt 3 of 3 fails: 1");
        EQ_STR(states(db, p1), "failed|present|3|and again\n", "failed for good");
        TAP_EQ_INT(store_fail_attempt(db, p2, "not a core", false, 3), 1, "a failure not worth a retry: 1");
        EQ_STR(states(db, p2), "failed|present|1|not a core\n", "failed at once");
        tap_ok(store_fail_attempt(db, 99999, "x", true, 3) < 0, "store_fail_attempt of no crash fails");

        /* store_release: not counted */
        TAP_EQ_INT(store_claim_capturing(db, capturing, &c), 1, "the capturing crash claimed again");
        TAP_EQ_INT(c.attempts, 2, "attempt 2");
        claim_done(&c);
        TAP_EQ_INT(store_release(db, capturing), 0, "store_release");
        EQ_STR(states(db, capturing), "capturing|capturing|1|the raw core ended early\n",
               "back to capturing, the attempt not counted");
        TAP_EQ_INT(store_requeue_for_analysis(db, p2), 1, "p2 queued again (store_requeue_for_analysis)");
        EQ_STR(states(db, p2), "pending|present|0|NULL\n", "pending, attempts 0, no error");
        TAP_EQ_INT(store_claim_next(db, &c), 1, "claimed");
        claim_done(&c);
        TAP_EQ_INT(store_release(db, p2), 0, "released");
        EQ_STR(states(db, p2), "pending|present|0|NULL\n", "pending, attempts 0");
        TAP_EQ_INT(store_release(db, done), 0, "store_release of a crash that is not running");
        EQ_STR(states(db, done), "done|too-large|0|NULL\n", "changes nothing");

        /* store_fail */
        TAP_EQ_INT(store_fail(db, p2, "the core vanished"), 0, "store_fail");
        EQ_STR(states(db, p2), "failed|present|0|the core vanished\n", "failed, with why");

        /* store_requeue_running: what a killed pystackd left */
        TAP_EQ_INT(store_requeue_for_analysis(db, p2), 1, "p2 queued again");
        TAP_EQ_INT(store_claim_next(db, &c), 1, "p2 claimed");
        claim_done(&c);
        TAP_EQ_INT(store_claim_capturing(db, capturing, &c), 1, "the capturing crash claimed");
        claim_done(&c);
        TAP_EQ_INT(store_requeue_running(db), 0, "store_requeue_running");
        EQ_STR(states(db, p2), "pending|present|1|NULL\n", "a running crash is pending again");
        EQ_STR(states(db, capturing), "capturing|capturing|2|the raw core ended early\n",
               "a running crash whose core is being captured waits for the capture again");
        EQ_STR(states(db, p3), "pending|present|1|NULL\n", "every running crash: p3 too");
        EQ_STR(states(db, p1), "failed|present|3|and again\n", "failed crashes are left alone");

        /* store_requeue_for_analysis */
        TAP_EQ_INT(store_requeue_for_analysis(db, done), 0, "store_requeue_for_analysis of a crash with no core: 0");
        TAP_EQ_INT(store_claim_next(db, &c), 1, "p2 claimed");
        TAP_EQ_INT(store_requeue_for_analysis(db, c.id), 0, "of a running crash: 0");
        EQ_STR(states(db, c.id), "running|present|2|NULL\n", "it keeps running");
        claim_done(&c);
        TAP_EQ_INT(store_requeue_for_analysis(db, 99999), 0, "of no crash: 0");
        TAP_EQ_INT(store_requeue_for_analysis(db, capturing), 0, "of a crash whose core is being captured: 0");
        TAP_EQ_INT(store_requeue_for_analysis(db, p1), 1, "of a failed crash with its core: 1");
        EQ_STR(states(db, p1), "pending|present|0|NULL\n", "pending, attempts 0, error cleared");
        store_close(db);
}

/* ---- filing a report ---- */

static void test_file_report(void) {
        const char *dir = new_dir("report");
        sqlite3 *db = open_store(dir);
        struct claim c = {};
        int64_t a, b, d, e;
        char *json;

        a = captured(db, record(T0, 1000, 1, "/usr/bin/python3.11", "python3"), "cores/a", 10);
        b = captured(db, record(T0 + 10 * SEC, 1000, 1, "/usr/bin/python3.11", "python3"), "cores/b", 10);
        d = captured(db, record(T0 + 20 * SEC, 0, 1, "/usr/bin/python3.11", "python3"), "cores/d", 10);
        e = captured(db, record(T0 + 30 * SEC, 1000, 2, "/usr/bin/python3.11", "python3"), "cores/e", 10);
        TAP_EQ_INT(store_claim_next(db, &c), 1, "crash a claimed");
        claim_done(&c);

        /* refusals */
        static const char *const bad[] = { "[1,2]", "42", "\"text\"", "{\"a\":", "not json", "" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                TAP_EQ_INT(store_file_report(db, a, bad[i], strlen(bad[i]), NULL, T0), -EBADMSG,
                           "store_file_report of '%s': -EBADMSG", bad[i]);
        EQ_STR(states(db, a), "running|present|1|NULL\n", "the crash is still running");
        TAP_EQ_INT(sqlite3_get_autocommit(db), 1, "no transaction left open");

        /* a real report */
        json = report("1111aaaa2222bbbb", "work", "/srv/lib.py", 41, false);
        TAP_EQ_INT(store_file_report(db, a, json, strlen(json), NULL, T0 + 5 * SEC), 0, "store_file_report");
        EQ_STR(sql_rows(db, "SELECT state, error, analyzed_usec, python_version, tid, signature, function, file, line,"
                            " core_truncated FROM crashes WHERE id = %lld", (long long)a),
               "done|NULL|1700000005000000|3.11|101|1111aaaa2222bbbb|work|/srv/lib.py|41|0\n",
               "done: python version, crashed tid, signature, frame, core_truncated");
        tap_ok(report_is(db, a, json), "the report itself");
        free(json);
        EQ_STR(sql_rows(db, "SELECT idx, tid, name, crashed, python, has_gil, gc_collecting, truncated, native_error,"
                            " merged, interpreter_id FROM threads WHERE crash_id = %lld ORDER BY idx", (long long)a),
               "0|101|MainThread|1|1|1|0|NULL|NULL|1|0\n"
               "1|102|worker|0|1|0|0|depth limit|NULL|0|0\n",
               "threads rows, named from the handler's thread names");
        EQ_STR(sql_rows(db, "SELECT thread_idx, idx, kind, function, file, line, library, build_id, inlined, address,"
                            " source FROM frames WHERE crash_id = %lld ORDER BY thread_idx, idx", (long long)a),
               "0|0|python|<module>|/srv/worker.py|10|NULL|NULL|0|16384|main()\n"
               "0|1|native|PyObject_Call|Objects/call.c|300|libpython3.11.so.1.0|aaaa|0|20480|NULL\n"
               "0|2|python|work|/srv/lib.py|41|NULL|NULL|0|24576|crash()\n"
               "0|3|native|raise|NULL|0|libc.so.6|bbbb|1|28672|NULL\n"
               "1|0|python|run|/usr/lib/python3.11/threading.py|975|NULL|NULL|0|40960|NULL\n",
               "frames rows, a native frame's build-id from its module");
        EQ_STR(sql_rows(db, "SELECT thread_idx, frame_idx, argument, idx, name, repr FROM locals WHERE crash_id = %lld"
                            " ORDER BY thread_idx, frame_idx, argument, idx", (long long)a),
               "0|0|0|0|x|1\n0|2|0|0|y|'a'\n0|2|1|0|n|42\n", "locals rows: arguments and locals");
        EQ_STR(sql_rows(db, "SELECT path, build_id FROM modules WHERE crash_id = %lld ORDER BY path", (long long)a),
               "/usr/lib/libpython3.11.so.1.0|aaaa\n/usr/lib/x86_64-linux-gnu/libc.so.6|bbbb\n", "modules rows");
        EQ_STR(sql_rows(db, "SELECT signature, title, count, first_usec, last_usec FROM signatures"),
               "1111aaaa2222bbbb|SIGSEGV in work (lib.py:41)|1|1700000000000000|1700000000000000\n",
               "the signature's row: its summary, count 1, the crash's time");
        check_counts(db, "one report");

        /* the same signature for b (not claimed first: the report decides), truncated, with a note */
        json = report("1111aaaa2222bbbb", "work", "/srv/lib.py", 42, true);
        TAP_EQ_INT(file_report(db, b, json, "partial report: the core is truncated", T0 + 15 * SEC), 0,
                   "a partial report of a truncated core");
        EQ_STR(sql_rows(db, "SELECT state, error, core_truncated, line FROM crashes WHERE id = %lld", (long long)b),
               "done|partial report: the core is truncated|1|42\n", "done, the note, core_truncated 1");
        EQ_STR(sql_rows(db, "SELECT count, first_usec, last_usec FROM signatures"),
               "2|1700000000000000|1700000010000000\n", "the signature counted twice, b's crash time the last");
        TAP_EQ_INT(file_report(db, d, report("1111aaaa2222bbbb", "work", "/srv/lib.py", 41, false), NULL,
                               T0 + 25 * SEC), 0, "root's crash d, same signature");
        TAP_EQ_INT(file_report(db, e, report("1111aaaa2222bbbb", "work", "/srv/lib.py", 41, false), NULL,
                               T0 + 35 * SEC), 0, "a set-uid crash e of uid 1000, same signature");
        EQ_STR(sql_rows(db, "SELECT uid, dumpable, count, first_usec, last_usec FROM signature_counts ORDER BY 1, 2"),
               "0|1|1|1700000020000000|1700000020000000\n"
               "1000|0|1|1700000030000000|1700000030000000\n"
               "1000|1|2|1700000000000000|1700000010000000\n",
               "signature_counts per uid and dumpable, with the crashes' times");
        check_counts(db, "four crashes, one signature");

        /* filing again replaces every row */
        TAP_EQ_INT(file_report(db, a, small_report("1111aaaa2222bbbb"), NULL, T0 + 40 * SEC), 0,
                   "crash a filed again, same signature");
        EQ_STR(sql_rows(db, "SELECT (SELECT count(*) FROM threads WHERE crash_id = %lld),"
                            " (SELECT count(*) FROM frames WHERE crash_id = %lld),"
                            " (SELECT count(*) FROM locals WHERE crash_id = %lld),"
                            " (SELECT count(*) FROM modules WHERE crash_id = %lld)",
                        (long long)a, (long long)a, (long long)a, (long long)a),
               "1|1|0|0\n", "its rows are the new report's only");
        EQ_STR(sql_rows(db, "SELECT tid, function, file, line, python_version FROM crashes WHERE id = %lld",
                        (long long)a), "102|boom|/b.py|7|3.12\n", "and its columns");
        EQ_STR(sql_rows(db, "SELECT (SELECT count(*) FROM threads), (SELECT count(*) FROM frames)"), "7|16\n",
               "the other crashes' rows are untouched");
        check_counts(db, "filed again with the same signature");

        /* ... and another signature: both groups recounted, for every uid and dumpable */
        TAP_EQ_INT(file_report(db, a, small_report("3333cccc4444dddd"), NULL, T0 + 50 * SEC), 0,
                   "crash a (uid 1000, dumpable 1) filed again with another signature");
        EQ_STR(sql_rows(db, "SELECT signature, uid, dumpable, count, first_usec, last_usec FROM signature_counts"
                            " ORDER BY 1, 2, 3"),
               "1111aaaa2222bbbb|0|1|1|1700000020000000|1700000020000000\n"
               "1111aaaa2222bbbb|1000|0|1|1700000030000000|1700000030000000\n"
               "1111aaaa2222bbbb|1000|1|1|1700000010000000|1700000010000000\n"
               "3333cccc4444dddd|1000|1|1|1700000000000000|1700000000000000\n",
               "signature_counts: the old group loses it, the new one has it");
        EQ_STR(sql_rows(db, "SELECT signature, count FROM signatures ORDER BY 1"),
               "1111aaaa2222bbbb|3\n3333cccc4444dddd|1\n", "signatures.count: 3 and 1");
        check_counts(db, "filed again with another signature");
        TAP_EQ_INT(file_report(db, e, small_report("3333cccc4444dddd"), NULL, T0 + 60 * SEC), 0,
                   "the set-uid crash e too");
        TAP_EQ_INT(file_report(db, d, small_report("3333cccc4444dddd"), NULL, T0 + 70 * SEC), 0,
                   "and root's crash d");
        EQ_STR(sql_rows(db, "SELECT signature, uid, dumpable, count FROM signature_counts ORDER BY 1, 2, 3"),
               "1111aaaa2222bbbb|1000|1|1\n"
               "3333cccc4444dddd|0|1|1\n3333cccc4444dddd|1000|0|1\n3333cccc4444dddd|1000|1|1\n",
               "emptied groups are gone from signature_counts");
        check_counts(db, "three crashes moved");

        /* a report without a signature: the crash leaves its group */
        TAP_EQ_INT(file_report(db, b, strdup("{\"threads\":[]}"), NULL, T0 + 80 * SEC), 0,
                   "crash b filed with a report that has no signature");
        EQ_STR(sql_rows(db, "SELECT signature, function, core_truncated FROM crashes WHERE id = %lld", (long long)b),
               "NULL|NULL|0\n", "no signature, no frame, not truncated");
        EQ_STR(sql_rows(db, "SELECT count(*) FROM signature_counts WHERE signature = '1111aaaa2222bbbb'"), "0\n",
               "its old signature is counted nowhere");
        check_counts(db, "a report without a signature");

        /* the third trigger: nothing deletes a crash today, but signature_counts would follow */
        TAP_EQ_INT(sql_exec(db, "DELETE FROM crashes WHERE uid = 1000 AND dumpable = 2"), SQLITE_OK,
                   "the set-uid crash e deleted with SQL");
        EQ_STR(sql_rows(db, "SELECT signature, uid, dumpable, count FROM signature_counts ORDER BY 1, 2, 3"),
               "3333cccc4444dddd|0|1|1\n3333cccc4444dddd|1000|1|1\n", "its group is gone from signature_counts");
        check_signature_counts(db, "a crash deleted");
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM threads WHERE crash_id = %lld", (long long)e), 0,
                   "its threads went with it");
        store_close(db);
}

/* One state change is one transaction: a report that fails halfway leaves nothing. */
/* A native frame's build-id comes from the module whose file name is the frame's library, byte
 * for byte: not a module that matches it as a LIKE pattern ('_' for any byte) or but for case. */
static void test_frame_build_id(void) {
        const char *dir = new_dir("build-id");
        sqlite3 *db = open_store(dir);
        int64_t a = captured(db, record(T0, 1000, 1, "/usr/bin/python3.11", "python3"), "cores/a", 10);
        static const char json[] =
                "{\"schema_version\":2,\"python_version\":\"3.11\",\"signature\":\"5555eeee6666ffff\","
                "\"threads\":[{\"tid\":7,\"crashed\":true,\"python\":true,\"frames\":["
                "{\"kind\":\"native\",\"function\":\"f\",\"library\":\"lib_a.so\",\"address\":1},"
                "{\"kind\":\"native\",\"function\":\"g\",\"library\":\"libc.so.6\",\"address\":2},"
                "{\"kind\":\"native\",\"function\":\"h\",\"library\":\"x.so\",\"address\":3}]}],"
                "\"modules\":[{\"path\":\"/m/libXa.so\",\"build_id\":\"wrong1\"},"
                "{\"path\":\"/m/lib_a.so\",\"build_id\":\"right\"},"
                "{\"path\":\"/m/LIBC.SO.6\",\"build_id\":\"wrong2\"},"
                "{\"path\":\"/m/ax.so\",\"build_id\":\"wrong3\"}]}";

        TAP_EQ_INT(store_file_report(db, a, json, strlen(json), NULL, T0 + SEC), 0, "a report with look-alike modules");
        EQ_STR(sql_rows(db, "SELECT library, build_id FROM frames WHERE crash_id = %lld ORDER BY idx", (long long)a),
               "lib_a.so|right\nlibc.so.6|NULL\nx.so|NULL\n",
               "frames: lib_a.so's own build-id, none for a module that differs in case or only ends alike");
        sqlite3_close(db);
}

static void test_transactions(void) {
        const char *dir = new_dir("txn");
        sqlite3 *db = open_store(dir), *other = NULL;
        struct claim c = {};
        char path[4096], *json;
        int64_t a, b;

        a = captured(db, record(T0, 1000, 1, "/usr/bin/python3.11", "python3"), "cores/a", 10);
        b = captured(db, record(T0 + SEC, 1000, 1, "/usr/bin/python3.11", "python3"), "cores/b", 10);
        TAP_EQ_INT(file_report(db, b, report("1111aaaa2222bbbb", "work", "/srv/lib.py", 41, false), NULL, T0), 0,
                   "crash b has a report");
        TAP_EQ_INT(store_claim_next(db, &c), 1, "crash a claimed");
        claim_done(&c);
        TAP_EQ_INT(store_requeue_for_analysis(db, b), 1, "crash b queued again");
        TAP_EQ_INT(store_claim_next(db, &c), 1, "and claimed");
        claim_done(&c);

        /* a frame the store cannot insert: the modules and threads before it are inserted first */
        TAP_EQ_INT(sql_exec(db, "CREATE TEMP TRIGGER boom BEFORE INSERT ON main.frames WHEN NEW.function = 'boom'"
                                " BEGIN SELECT RAISE(ABORT, 'no frame called boom'); END"), SQLITE_OK,
                   "a trigger that refuses the frame 'boom'");
        json = report("5555eeee6666ffff", "boom", "/srv/boom.py", 1, true);
        TAP_EQ_INT(store_file_report(db, a, json, strlen(json), "partial", T0 + SEC), -EIO,
                   "store_file_report fails halfway: -EIO");
        tap_ok(strstr(store_errmsg(db), "no frame called boom") != NULL, "store_errmsg says why: %s", store_errmsg(db));
        EQ_STR(sql_rows(db, "SELECT (SELECT count(*) FROM threads WHERE crash_id = %lld),"
                            " (SELECT count(*) FROM frames WHERE crash_id = %lld),"
                            " (SELECT count(*) FROM locals WHERE crash_id = %lld),"
                            " (SELECT count(*) FROM modules WHERE crash_id = %lld)",
                        (long long)a, (long long)a, (long long)a, (long long)a),
               "0|0|0|0\n", "no threads, frames, locals or modules of it were kept");
        EQ_STR(sql_rows(db, "SELECT state, error, report, signature, function, core_truncated, analyzed_usec"
                            " FROM crashes WHERE id = %lld", (long long)a),
               "running|NULL|NULL|NULL|NULL|0|NULL\n", "the crash is still running, with nothing of the report");
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM signatures WHERE signature = '5555eeee6666ffff'"), 0,
                   "no signature row");
        TAP_EQ_INT(sqlite3_get_autocommit(db), 1, "and the transaction was rolled back");
        TAP_EQ_INT(store_file_report(db, b, json, strlen(json), "partial", T0 + SEC), -EIO,
                   "filing it for crash b, which has a report, fails too");
        free(json);
        EQ_STR(sql_rows(db, "SELECT state, signature, function, (SELECT count(*) FROM frames WHERE crash_id = %lld),"
                            " (SELECT count(*) FROM modules WHERE crash_id = %lld) FROM crashes WHERE id = %lld",
                        (long long)b, (long long)b, (long long)b),
               "running|1111aaaa2222bbbb|work|5|2\n", "its old report's rows were not deleted");
        check_counts(db, "after the failed filings");
        sql_exec(db, "DROP TRIGGER temp.boom");
        TAP_EQ_INT(file_report(db, a, report("5555eeee6666ffff", "boom", "/srv/boom.py", 1, true), NULL, T0), 0,
                   "without the trigger it is filed");
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM frames WHERE crash_id = %lld", (long long)a), 5, "in full");

        /* a row the store cannot insert: one transaction with the rate limit's count */
        struct crash_record r = record(T0 + 2 * SEC, 1000, 1, "/usr/bin/python3.11", "python3");
        struct rate_limit limit = { .burst = 5, .interval_usec = 60 * SEC };
        int64_t id = 0, before = sql_int(db, "SELECT count(*) FROM crashes");
        TAP_EQ_INT(sql_exec(db, "CREATE TEMP TRIGGER no_crash BEFORE INSERT ON main.crashes"
                                " BEGIN SELECT RAISE(ABORT, 'no new crash'); END"), SQLITE_OK,
                   "a trigger that refuses every new crash");
        TAP_EQ_INT(store_begin_capture(db, &r, &limit, &id), -EIO, "store_begin_capture fails: -EIO");
        tap_ok(strstr(store_errmsg(db), "no new crash") != NULL, "store_errmsg says why: %s", store_errmsg(db));
        TAP_EQ_INT(sqlite3_get_autocommit(db), 1, "no transaction left open");
        id = 0;
        TAP_EQ_INT(store_finish_capture(db, &r, &id), -EIO, "store_finish_capture with id 0 fails: -EIO");
        tap_ok(strstr(store_errmsg(db), "no new crash") != NULL, "store_errmsg says why: %s", store_errmsg(db));
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM crashes"), before, "no row");
        sql_exec(db, "DROP TRIGGER temp.no_crash");

        /* another writer past the busy timeout: -EBUSY, nothing changed */
        snprintf(path, sizeof(path), "%s/pystack.db", dir);
        if (sqlite3_open(path, &other) != SQLITE_OK)
                abort();
        sql_exec(other, "BEGIN IMMEDIATE");
        sqlite3_busy_timeout(db, 50);
        json = small_report("7777");
        TAP_EQ_INT(store_file_report(db, b, json, strlen(json), NULL, T0), -EBUSY,
                   "store_file_report while another connection writes: -EBUSY");
        free(json);
        sql_exec(other, "ROLLBACK");
        sqlite3_close(other);
        EQ_STR(sql_rows(db, "SELECT state, signature FROM crashes WHERE id = %lld", (long long)b),
               "running|1111aaaa2222bbbb\n", "the crash is as it was");
        store_close(db);
}

/* ---- reads ---- */

struct rows {
        char text[4096];
        size_t len;
        int stop_after;         /* return 7 after this many rows (0: never) */
        int n;
};

static int ids_row(const struct crash_row *c, void *userdata) {
        struct rows *r = userdata;

        r->len += (size_t)snprintf(r->text + r->len, sizeof(r->text) - r->len, "%s%lld", r->n ? "," : "",
                                   (long long)c->id);
        return ++r->n == r->stop_after ? 7 : 0;
}

static int full_row(const struct crash_row *c, void *userdata) {
        struct rows *r = userdata;

        r->len += (size_t)snprintf(r->text + r->len, sizeof(r->text) - r->len,
                                   "%lld|%lld|%d|%lld|%lld|%d|%s|%s|%s|%s|%s|%s|%s|%d|%s|%s|%s|%s\n",
                                   (long long)c->id, (long long)c->time_usec, c->pid, (long long)c->uid,
                                   (long long)c->gid, c->signal, c->python_version ?: "NULL", c->core,
                                   c->comm ?: "NULL", c->exe ?: "NULL", c->script ?: "NULL", c->function ?: "NULL",
                                   c->file ?: "NULL", c->line, c->state, c->error ?: "NULL", c->signature ?: "NULL",
                                   c->core_path ?: "NULL");
        r->n++;
        return 0;
}

static struct store_filter all(void) {
        return (struct store_filter) { .since = INT64_MIN, .until = INT64_MAX, .uid = -1 };
}

static const char *list_ids(sqlite3 *db, const struct store_filter *f, bool newest_first, int64_t limit) {
        static struct rows r;
        int k;

        memset(&r, 0, sizeof(r));
        k = store_list(db, f, newest_first, limit, -1, ids_row, &r);
        if (k != 0)
                snprintf(r.text, sizeof(r.text), "(store_list: %d)", k);
        return r.text;
}

static const char *list_one(sqlite3 *db, const struct match *m, const struct store_filter *base) {
        struct store_filter f = *base;

        f.matches = m;
        f.n_matches = 1;
        return list_ids(db, &f, false, 0);
}

static int group_line(const struct group_row *g, void *userdata) {
        struct rows *r = userdata;

        r->len += (size_t)snprintf(r->text + r->len, sizeof(r->text) - r->len, "%s|%s|%lld|%lld|%lld\n", g->signature,
                                   g->title ?: "NULL", (long long)g->count, (long long)g->first_usec,
                                   (long long)g->last_usec);
        return 0;
}

static const char *groups(sqlite3 *db, const struct store_filter *f) {
        static struct rows r;
        int k;

        memset(&r, 0, sizeof(r));
        k = store_groups(db, f, group_line, &r);
        if (k != 0)
                snprintf(r.text, sizeof(r.text), "(store_groups: %d)", k);
        return r.text;
}

/* store_groups by its fast path (no filter but the uid) and by scanning the crashes (a time window
 * that holds every crash) give the same groups. */
static void check_groups_agree(sqlite3 *db, const char *when) {
        static const int64_t uids[] = { -1, 0, 1000, 1001, 4242 };

        for (size_t i = 0; i < ELEMENTSOF(uids); i++) {
                struct store_filter fast = all(), scan = all();
                char a[4096];

                fast.uid = scan.uid = uids[i];
                scan.since = 0;
                snprintf(a, sizeof(a), "%s", groups(db, &fast));
                EQ_STR(a, groups(db, &scan), "%s: store_groups for uid %lld, counted and scanned, agree", when,
                       (long long)uids[i]);
        }
}

static void touch(const char *dir, const char *name) {
        char path[4096];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                abort();
        close(fd);
}

static void test_reads(void) {
        const char *dir = new_dir("reads");
        sqlite3 *db = open_store(dir);
        struct crash_record r;
        struct store_filter f = all();
        int64_t c1, c2, c3, c4, c5;
        char path[4096], sql_c3[128], *json, *r1;

        snprintf(path, sizeof(path), "%s/cores", dir);
        mkdir(path, 0700);
        touch(dir, "cores/c1");
        touch(dir, "cores/c2");
        touch(dir, "cores/c5");
        r = record(T0 + 100 * SEC, 1000, 1, "/usr/bin/python3.11", "python3");
        r.pid = 100;
        c1 = captured(db, r, "cores/c1", 100);
        r = record(T0 + 200 * SEC, 1000, 2, "/usr/bin/python3.12", "worker");
        r.pid = 200, r.signal = 6, r.script = "-m pkg";
        c2 = captured(db, r, "cores/c2", 100);
        r = record(T0 + 300 * SEC, 0, 1, "/usr/bin/python3.11", "python3");
        r.pid = 300;
        c3 = captured(db, r, "cores/c3", 100);
        r = record(T0 + 400 * SEC, 1001, 1, "/opt/foo", "foo");
        r.pid = 400, r.signal = 7, r.script = NULL, r.cmdline_json = NULL;
        c4 = captured(db, r, NULL, 0);
        r = record(T0 + 500 * SEC, 1000, 1, "/usr/bin/python3.11", "python3");
        r.pid = 100;
        c5 = captured(db, r, "cores/c5", 100);
        r1 = report("1111aaaa2222bbbb", "work", "/srv/lib.py", 41, false);
        TAP_EQ_INT(store_file_report(db, c1, r1, strlen(r1), NULL, T0 + 150 * SEC), 0, "c1 analysed");
        TAP_EQ_INT(file_report(db, c2, report("1111aaaa2222bbbb", "work", "/srv/lib.py", 43, true),
                               "partial report: the core is truncated", T0 + 250 * SEC), 0, "c2 analysed, truncated");
        TAP_EQ_INT(file_report(db, c3, report("3333cccc4444dddd", "other", "/srv/other.py", 7, false), NULL,
                               T0 + 350 * SEC), 0, "c3 analysed");

        /* store_list: order, limit, every match, the window, the uid */
        EQ_STR(list_ids(db, &f, false, 0), "1,2,3,4,5", "store_list: every crash, oldest first");
        EQ_STR(list_ids(db, &f, true, 0), "5,4,3,2,1", "newest first");
        EQ_STR(list_ids(db, &f, true, 2), "5,4", "the last 2, newest first");
        EQ_STR(list_ids(db, &f, false, 2), "1,2", "limit 2, oldest first");
        struct match m[] = {
                { MATCH_ID, "3" }, { MATCH_PID, "100" }, { MATCH_COMM, "python3" },
                { MATCH_EXE, "/usr/bin/python3.11" }, { MATCH_UID, "1000" }, { MATCH_SIG, "11" },
                { MATCH_SIGNATURE, "1111aaaa2222bbbb" }, { MATCH_EXE, "/opt/foo" }, { MATCH_SIG, "6" },
                { MATCH_COMM, "nothing" }, { MATCH_ID, "99" },
        };
        static const char *const want[] = { "3", "1,5", "1,3,5", "1,3,5", "1,2,5", "1,3,5", "1,2", "4", "2", "", "" };
        for (size_t i = 0; i < ELEMENTSOF(m); i++)
                EQ_STR(list_one(db, &m[i], &f), want[i], "store_list with the match %d=%s", m[i].key, m[i].value);
        struct match three[] = { { MATCH_COMM, "python3" }, { MATCH_SIG, "11" }, { MATCH_UID, "0" } };
        f.matches = three;
        f.n_matches = 3;
        EQ_STR(list_ids(db, &f, false, 0), "3", "three matches: all of them");
        f = all();
        f.since = T0 + 200 * SEC;
        EQ_STR(list_ids(db, &f, false, 0), "2,3,4,5", "since (inclusive)");
        f.until = T0 + 300 * SEC;
        EQ_STR(list_ids(db, &f, false, 0), "2,3", "since and until (inclusive)");
        f.since = INT64_MIN;
        EQ_STR(list_ids(db, &f, false, 0), "1,2,3", "until");
        f.since = T0 + 500 * SEC;
        f.until = INT64_MAX;
        EQ_STR(list_ids(db, &f, false, 0), "5", "since the newest crash's time");
        f = all();
        f.uid = 1000;
        EQ_STR(list_ids(db, &f, false, 0), "1,5", "uid 1000: their own crashes with dumpable 1 (not the set-uid c2)");
        f.uid = 0;
        EQ_STR(list_ids(db, &f, false, 0), "3", "uid 0 as a user: its own");
        f.uid = 1001;
        EQ_STR(list_ids(db, &f, false, 0), "4", "uid 1001");
        f.uid = 1000;
        EQ_STR(list_one(db, &m[8], &f), "", "uid 1000 with SIG=6: nothing (c2 is not theirs to see)");
        EQ_STR(list_one(db, &m[1], &f), "1,5", "uid 1000 with PID=100");
        f.since = T0 + 150 * SEC;
        EQ_STR(list_one(db, &m[2], &f), "5", "uid 1000, COMM=python3, since");

        /* the rows themselves */
        struct rows rows = {};
        f = all();
        snprintf(path, sizeof(path), "%s/cores", dir);
        int cores_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        TAP_EQ_INT(store_list(db, &f, false, 0, cores_fd, full_row, &rows), 0, "store_list with the storage directory");
        EQ_STR(rows.text,
               "1|1700000100000000|100|1000|1000|11|3.11|present|python3|/usr/bin/python3.11|worker.py|work|"
               "/srv/lib.py|41|done|NULL|1111aaaa2222bbbb|cores/c1\n"
               "2|1700000200000000|200|1000|1000|6|3.11|truncated|worker|/usr/bin/python3.12|-m pkg|work|"
               "/srv/lib.py|43|done|partial report: the core is truncated|1111aaaa2222bbbb|cores/c2\n"
               "3|1700000300000000|300|0|0|11|3.11|missing|python3|/usr/bin/python3.11|worker.py|other|"
               "/srv/other.py|7|done|NULL|3333cccc4444dddd|cores/c3\n"
               "4|1700000400000000|400|1001|1001|7|NULL|too-large|foo|/opt/foo|NULL|NULL|NULL|0|done|NULL|NULL|NULL\n"
               "5|1700000500000000|100|1000|1000|11|NULL|present|python3|/usr/bin/python3.11|worker.py|NULL|NULL|0|"
               "pending|NULL|NULL|cores/c5\n",
               "every column; a present core whose file is gone is 'missing', a truncated one 'truncated'");
        memset(&rows, 0, sizeof(rows));
        TAP_EQ_INT(store_list(db, &f, false, 0, -1, full_row, &rows), 0, "store_list without the directory");
        tap_ok(strstr(rows.text, "|present|python3|/usr/bin/python3.11|worker.py|other|") != NULL,
               "cannot tell a missing core: present");
        /* names no stored core has are missing, even where the directory has them; a link is there */
        static const char *const odd[] = { "cores/..", "cores/.", "cores/", "cores/.c1", "cores/dangling" };
        snprintf(path, sizeof(path), "%s/cores/dangling", dir);
        tap_ok(symlink("no-such-file", path) == 0, "a dangling symbolic link in cores/");
        touch(dir, "cores/.c1");
        for (size_t i = 0; i < sizeof(odd) / sizeof(*odd); i++) {
                char sql[128];

                snprintf(sql, sizeof(sql), "UPDATE crashes SET core_path = '%s' WHERE id = %lld", odd[i], (long long)c3);
                sqlite3_exec(db, sql, NULL, NULL, NULL);
                memset(&rows, 0, sizeof(rows));
                store_list(db, &f, false, 0, cores_fd, full_row, &rows);
                tap_ok(strstr(rows.text, i < 4 ? "|missing|python3|" : "|present|python3|/usr/bin/python3.11|worker.py|other|") != NULL,
                       "core_path %s: %s", odd[i], i < 4 ? "missing" : "present (the link is the entry)");
        }
        close(cores_fd);
        snprintf(sql_c3, sizeof(sql_c3), "UPDATE crashes SET core_path = 'cores/c3' WHERE id = %lld", (long long)c3);
        sqlite3_exec(db, sql_c3, NULL, NULL, NULL);
        memset(&rows, 0, sizeof(rows));
        rows.stop_after = 2;
        TAP_EQ_INT(store_list(db, &f, false, 0, -1, ids_row, &rows), 7, "row() returning 7 stops store_list with 7");
        EQ_STR(rows.text, "1,2", "after two rows");

        /* store_find_newest */
        int64_t id = 0;
        char *core = NULL, *exe = NULL;
        f.matches = &m[2];
        f.n_matches = 1;
        TAP_EQ_INT(store_find_newest(db, &f, &id, &core, &exe), 1, "store_find_newest COMM=python3: 1");
        tap_ok(id == c5 && core && !strcmp(core, "cores/c5") && exe && !strcmp(exe, "/usr/bin/python3.11"),
               "the newest, with its core and executable");
        free(core);
        free(exe);
        core = exe = (char *)"unset";
        f.matches = &m[7];
        TAP_EQ_INT(store_find_newest(db, &f, &id, &core, &exe), 1, "store_find_newest EXE=/opt/foo: 1");
        tap_ok(id == c4 && core == NULL && exe && !strcmp(exe, "/opt/foo"), "no core path: NULL");
        free(exe);
        TAP_EQ_INT(store_find_newest(db, &f, &id, NULL, NULL), 1, "without core and exe pointers");
        f.uid = 1000;
        TAP_EQ_INT(store_find_newest(db, &f, &id, NULL, NULL), 0, "not uid 1000's: 0");

        /* store_get_crash */
        static const char *const names[_COL_MAX] = {
                "id", "time_usec", "pid", "pid_ns", "tid", "uid", "gid", "signal", "comm", "exe", "cwd", "cgroup",
                "unit", "container", "container_runtime", "container_id", "dumpable", "rlimit_core", "boot_id",
                "hostname", "core_path", "core_size", "core_stored_size", "core_state", "capture_note", "suppressed", "state", "attempts", "error",
                "python_version", "signature", "analyzed_usec", "cmdline", "thread_names", "script", "title",
                "count", "first_usec", "last_usec", "core_truncated",
        };
        struct crash_info ci;
        TAP_EQ_INT(store_get_crash(db, c2, -1, &ci), 1, "store_get_crash: 1");
        bool names_ok = true;
        for (int i = 0; i < _COL_MAX; i++)
                if (!ci.v[i].name || strcmp(ci.v[i].name, names[i])) {
                        printf("# column %d: %s, want %s\n", i, ci.v[i].name ? ci.v[i].name : "(null)", names[i]);
                        names_ok = false;
                }
        tap_ok(names_ok, "every column has the store's name, in enum crash_column's order");
        tap_ok(ci.v[COL_ID].type == STORE_INT && ci.v[COL_ID].i == c2 && ci.v[COL_TIME].i == T0 + 200 * SEC &&
               ci.v[COL_SIGNAL].i == 6 && ci.v[COL_DUMPABLE].i == 2 && ci.v[COL_RLIMIT].i == -1 &&
               ci.v[COL_TID].i == 101 && ci.v[COL_CORE_SIZE].i == 300 && ci.v[COL_CORE_STORED_SIZE].i == 100 &&
               ci.v[COL_ATTEMPTS].i == 0 && ci.v[COL_ANALYZED].i == T0 + 250 * SEC &&
               ci.v[COL_CORE_TRUNCATED].i == 1 && ci.v[COL_CONTAINER].i == 0,
               "integer columns");
        tap_ok(ci.v[COL_PID_NS].type == STORE_NULL && ci.v[COL_UNIT].type == STORE_NULL &&
               ci.v[COL_CAPTURE_NOTE].type == STORE_NULL, "NULL columns");
        tap_ok(ci.v[COL_COMM].type == STORE_TEXT && !strcmp(ci.v[COL_COMM].s, "worker") &&
               !strcmp(ci.v[COL_CORE_STATE].s, "present") && !strcmp(ci.v[COL_STATE].s, "done") &&
               !strcmp(ci.v[COL_ERROR].s, "partial report: the core is truncated") &&
               !strcmp(ci.v[COL_SCRIPT].s, "-m pkg") && !strcmp(ci.v[COL_BOOT_ID].s, "0123456789abcdef") &&
               !strcmp(ci.v[COL_CMDLINE].s, "[\"python3\",\"/srv/worker.py\"]") &&
               !strcmp(ci.v[COL_PYTHON].s, "3.11"), "text columns");
        tap_ok(!strcmp(ci.v[COL_SIGNATURE].s, "1111aaaa2222bbbb") &&
               !strcmp(ci.v[COL_TITLE].s, "SIGSEGV in work (lib.py:41)") && ci.v[COL_COUNT].i == 2 &&
               ci.v[COL_FIRST].i == T0 + 100 * SEC && ci.v[COL_LAST].i == T0 + 200 * SEC,
               "the signature's title, count, and its crashes' first and last time");
        crash_info_done(&ci);
        TAP_EQ_INT(store_get_crash(db, c1, 1000, &ci), 1, "store_get_crash as uid 1000");
        tap_ok(ci.v[COL_COUNT].i == 1 && ci.v[COL_FIRST].i == T0 + 100 * SEC && ci.v[COL_LAST].i == T0 + 100 * SEC,
               "as uid 1000: count 1 and c1's time (the set-uid c2 is not theirs to see)");
        crash_info_done(&ci);
        TAP_EQ_INT(store_get_crash(db, c1, 4242, &ci), 1, "store_get_crash as a uid with no crash of it");
        tap_ok(ci.v[COL_COUNT].type == STORE_NULL && !strcmp(ci.v[COL_TITLE].s, "SIGSEGV in work (lib.py:41)"),
               "the title, no count");
        crash_info_done(&ci);
        tap_ok(ci.st == NULL, "crash_info_done finalizes");
        TAP_EQ_INT(store_get_crash(db, c4, -1, &ci), 1, "store_get_crash of a crash without a report");
        tap_ok(ci.v[COL_SIGNATURE].type == STORE_NULL && ci.v[COL_TITLE].type == STORE_NULL &&
               ci.v[COL_COUNT].type == STORE_NULL && ci.v[COL_CMDLINE].type == STORE_NULL &&
               !strcmp(ci.v[COL_CAPTURE_NOTE].s, "larger than MaxCoreSize"), "no signature, no title");
        crash_info_done(&ci);
        TAP_EQ_INT(store_get_crash(db, 99, -1, &ci), 0, "store_get_crash of no crash: 0");

        /* store_get_report */
        size_t len = 0;
        json = NULL;
        TAP_EQ_INT(store_get_report(db, c1, &json, &len), 1, "store_get_report: 1");
        tap_ok(json && len == strlen(r1) && !strcmp(json, r1), "the report as filed, byte for byte");
        free(json);
        free(r1);
        TAP_EQ_INT(store_get_report(db, c5, &json, &len), 0, "of a crash not analysed: 0");
        TAP_EQ_INT(store_get_report(db, 99, &json, &len), 0, "of no crash: 0");

        /* store_groups */
        f = all();
        EQ_STR(groups(db, &f),
               "1111aaaa2222bbbb|SIGSEGV in work (lib.py:41)|2|1700000100000000|1700000200000000\n"
               "3333cccc4444dddd|SIGSEGV in other (other.py:7)|1|1700000300000000|1700000300000000\n",
               "store_groups: the most frequent first, the crashes' first and last times");
        f.uid = 1000;
        EQ_STR(groups(db, &f), "1111aaaa2222bbbb|SIGSEGV in work (lib.py:41)|1|1700000100000000|1700000100000000\n",
               "for uid 1000: their own dumpable crashes");
        f.uid = 1001;
        EQ_STR(groups(db, &f), "", "for uid 1001: none analysed");
        f = all();
        f.matches = &m[8];
        f.n_matches = 1;
        EQ_STR(groups(db, &f), "1111aaaa2222bbbb|SIGSEGV in work (lib.py:41)|1|1700000200000000|1700000200000000\n",
               "with SIG=6");
        f.uid = 1000;
        EQ_STR(groups(db, &f), "", "with SIG=6 for uid 1000: nothing");
        f = all();
        f.until = T0 + 100 * SEC;
        EQ_STR(groups(db, &f), "1111aaaa2222bbbb|SIGSEGV in work (lib.py:41)|1|1700000100000000|1700000100000000\n",
               "until c1's time");
        check_groups_agree(db, "three analysed");

        TAP_EQ_INT(file_report(db, c5, report("3333cccc4444dddd", "other", "/srv/other.py", 7, false), NULL,
                               T0 + 550 * SEC), 0, "c5 analysed, c3's signature");
        f = all();
        EQ_STR(groups(db, &f),
               "3333cccc4444dddd|SIGSEGV in other (other.py:7)|2|1700000300000000|1700000500000000\n"
               "1111aaaa2222bbbb|SIGSEGV in work (lib.py:41)|2|1700000100000000|1700000200000000\n",
               "a tie in count: the most recent group first");
        check_groups_agree(db, "a tie");
        TAP_EQ_INT(file_report(db, c2, report("3333cccc4444dddd", "other", "/srv/other.py", 7, false), NULL,
                               T0 + 600 * SEC), 0, "c2 analysed again, c3's signature");
        f = all();
        EQ_STR(groups(db, &f),
               "3333cccc4444dddd|SIGSEGV in other (other.py:7)|3|1700000200000000|1700000500000000\n"
               "1111aaaa2222bbbb|SIGSEGV in work (lib.py:41)|1|1700000100000000|1700000100000000\n",
               "a crash moved from one group to the other");
        check_groups_agree(db, "after moving c2");
        check_counts(db, "after moving c2");
        TAP_EQ_INT(file_report(db, c1, report("3333cccc4444dddd", "other", "/srv/other.py", 7, false), NULL,
                               T0 + 700 * SEC), 0, "c1 too");
        check_groups_agree(db, "one group");
        f = all();
        EQ_STR(groups(db, &f), "3333cccc4444dddd|SIGSEGV in other (other.py:7)|4|1700000100000000|1700000500000000\n",
               "one group left");
        store_close(db);
}

/* ---- retention ---- */

static int binaries_row(const struct crash_binary *b, void *userdata) {
        struct rows *r = userdata;

        r->len += (size_t)snprintf(r->text + r->len, sizeof(r->text) - r->len, "%s|%llu|%llu|%s|%s|%s\n", b->path,
                                   (unsigned long long)b->address, (unsigned long long)b->size,
                                   b->build_id ?: "NULL", b->hash ?: "NULL", b->note ?: "NULL");
        r->n++;
        return 0;
}

static const char *sweep_refuse;        /* the hash sweep_remove() cannot remove */

static int sweep_remove(const char *hash, void *userdata) {
        (void)userdata;
        return sweep_refuse && !strcmp(hash, sweep_refuse) ? -EBUSY : 0;
}

/* The files a crash had mapped: recorded once per crash, each kept file counted once, and
 * unused once no present core refers to it. */
static void test_binaries(void) {
        const char *dir = new_dir("binaries");
        sqlite3 *db = open_store(dir);
        int64_t a = captured(db, record(T0, 0, 1, "/usr/bin/python3.11", "python3"), "cores/a", 1000);
        int64_t b = captured(db, record(T0 + SEC, 0, 1, "/usr/bin/python3.11", "python3"), "cores/b", 1000);
        static const char h1[] = "1111111111111111111111111111111111111111111111111111111111111111",
                          h2[] = "2222222222222222222222222222222222222222222222222222222222222222";
        struct crash_binary files[] = {
                { .path = "/usr/bin/python3.11", .address = 0x400000, .size = 7000, .build_id = "abcd", .hash = h1 },
                { .path = "/usr/lib/libc.so.6", .address = 0x7f0000000000, .size = 2000, .build_id = "ef01", .hash = h2 },
                { .path = "/opt/huge.so", .address = 0x7f1000000000, .size = 1ull << 33,
                  .note = "larger than MaxBinarySize" },
        };
        struct rows rows = {};
        char **unused = NULL;
        size_t n = 0;

        TAP_EQ_INT(store_cores_size(db), 2000, "two cores: 2000 bytes");
        TAP_EQ_INT(store_add_binaries(db, a, files, 3, T0), 0, "crash a's three files");
        TAP_EQ_INT(store_add_binaries(db, b, files, 2, T0 + SEC), 0, "crash b's two (the same bytes)");
        /* two files under one name in maps (a library renamed over and mapped again): a row each */
        struct crash_binary twice[] = {
                { .path = "/opt/lib.so (deleted)", .address = 0x7f2000000000, .size = 7000, .hash = h1 },
                { .path = "/opt/lib.so (deleted)", .address = 0x7f3000000000, .size = 2000, .hash = h2 },
        };
        TAP_EQ_INT(store_add_binaries(db, a, twice, 2, T0), 0, "two files under one name");
        TAP_EQ_INT(sql_int(db, "SELECT count(DISTINCT hash) FROM crash_binaries WHERE path = '/opt/lib.so (deleted)'"),
                   2, "a row each");
        sql_exec(db, "DELETE FROM crash_binaries WHERE path = '/opt/lib.so (deleted)'");
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM binaries"), 2, "two kept files, once each");
        TAP_EQ_INT(store_cores_size(db), 2000 + 9000, "MaxUse counts them once: cores and binaries");
        TAP_EQ_INT(store_list_binaries(db, a, binaries_row, &rows), 0, "store_list_binaries");
        EQ_STR(rows.text,
               "/opt/huge.so|139706696204288|8589934592|NULL|NULL|larger than MaxBinarySize\n"
               "/usr/bin/python3.11|4194304|7000|abcd|1111111111111111111111111111111111111111111111111111111111111111|NULL\n"
               "/usr/lib/libc.so.6|139637976727552|2000|ef01|2222222222222222222222222222222222222222222222222222222222222222|NULL\n",
               "crash a's files in path order, the one not kept with its reason");
        TAP_EQ_INT(store_unused_binaries(db, 100, &unused, &n), 0, "store_unused_binaries");
        TAP_EQ_INT((int)n, 0, "none unused while both cores are present");
        free(unused);
        TAP_EQ_INT(store_mark_core_removed(db, a, "test"), 0, "crash a's core removed");
        store_unused_binaries(db, 100, &unused, &n);
        TAP_EQ_INT((int)n, 0, "still none: crash b's core needs both");
        free(unused);
        store_mark_core_removed(db, b, "test");
        store_unused_binaries(db, 100, &unused, &n);
        tap_ok(n == 2, "both unused once no present core refers to them");
        for (size_t i = 0; i < n; i++)
                free(unused[i]);
        free(unused);
        unsigned swept = 0;
        sweep_refuse = h2;
        TAP_EQ_INT(store_sweep_binaries(db, 100, sweep_remove, NULL, &swept), 0, "store_sweep_binaries");
        tap_ok(swept == 1 && sql_int(db, "SELECT count(*) FROM binaries") == 1,
               "one swept; the one whose file could not be removed keeps its row");
        sweep_refuse = NULL;
        store_sweep_binaries(db, 100, sweep_remove, NULL, &swept);
        TAP_EQ_INT(swept, 1, "and goes the next time");
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM binaries"), 0, "no kept file left");
        TAP_EQ_INT(sql_int(db, "SELECT count(*) FROM crash_binaries"), 5, "the crashes still say what they had mapped");

        /* files a handler linked and was killed before recording: gone once they are old */
        static const char orphan[] = "3333333333333333333333333333333333333333333333333333333333333333";
        int sfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        const char *names[] = { orphan, h1, "not-a-hash", "33333333333333333333333333333333333333333333333333333333333333" };
        mkdirat(sfd, "binaries", 0700);
        for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
                char path[128];
                snprintf(path, sizeof(path), "binaries/%s", names[i]);
                close(openat(sfd, path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
        }
        sql_exec(db, "INSERT INTO binaries (hash, size) VALUES ('" "1111111111111111111111111111111111111111111111111111111111111111" "', 1)");
        int64_t now = clock_usec(CLOCK_REALTIME);
        TAP_EQ_INT(retention_sweep_orphans(db, sfd, now), 0, "a file without a row, just linked: left (its handler may be recording it)");
        TAP_EQ_INT(retention_sweep_orphans(db, sfd, now + ORPHAN_AGE_USEC + SEC), 1,
                   "older than ORPHAN_AGE_USEC: removed");
        tap_ok(faccessat(sfd, "binaries/3333333333333333333333333333333333333333333333333333333333333333", F_OK, 0) < 0 &&
               faccessat(sfd, "binaries/1111111111111111111111111111111111111111111111111111111111111111", F_OK, 0) == 0 &&
               faccessat(sfd, "binaries/not-a-hash", F_OK, 0) == 0,
               "only the orphan: a file with its row, and names no handler makes, stay");
        close(sfd);
        sqlite3_close(db);
}

static void test_retention(void) {
        const char *dir = new_dir("retention");
        sqlite3 *db = open_store(dir);
        struct rate_limit none = {};
        struct crash_record r;
        struct claim c = {};
        struct victim *v = NULL, one = {};
        size_t n = 99;
        int64_t old, recent, raw, p[6];

        /* captures a handler never finished */
        r = record(T0, 1000, 1, "/usr/bin/python3", "python3");
        store_begin_capture(db, &r, &none, &old);
        r = record(T0 + 10000 * SEC, 1000, 1, "/usr/bin/python3", "python3");
        store_begin_capture(db, &r, &none, &recent);
        r = record(T0 + SEC, 1000, 1, "/usr/bin/python3", "python3");
        store_begin_capture(db, &r, &none, &raw);
        TAP_EQ_INT(store_claim_capturing(db, raw, &c), 1, "a raw core claimed");
        claim_done(&c);
        TAP_EQ_INT(store_expire_captures(db, T0 + 5000 * SEC), 0, "store_expire_captures");
        EQ_STR(sql_rows(db, "SELECT state, core_state, capture_note FROM crashes WHERE id = %lld", (long long)old),
               "done|error|the core was being captured when the handler stopped\n",
               "an old capturing row: core error, done, with why");
        EQ_STR(sql_rows(db, "SELECT state, core_state, capture_note FROM crashes WHERE id = %lld", (long long)recent),
               "capturing|capturing|NULL\n", "a recent one is left");
        EQ_STR(sql_rows(db, "SELECT state, core_state FROM crashes WHERE id = %lld", (long long)raw),
               "running|error\n", "an old one being analysed keeps running");

        /* cores: p0 pending, p1 done, p2 running, p3 failed, p4 done but new, p5 no core */
        for (int i = 0; i < 5; i++)
                p[i] = captured(db, record(T0 + (i + 1) * SEC + (i == 4 ? 20000 * SEC : 0), 1000, 1, "/usr/bin/python3",
                                           "python3"), i == 0 ? "cores/p0" : i == 1 ? "cores/p1" : i == 2 ? "cores/p2" :
                                i == 3 ? "cores/p3" : "cores/p4", 100 << i);
        p[5] = captured(db, record(T0 + 6 * SEC, 1000, 1, "/usr/bin/python3", "python3"), NULL, 0);
        TAP_EQ_INT(file_report(db, p[1], small_report("1234"), NULL, T0), 0, "p1 done");
        TAP_EQ_INT(file_report(db, p[4], small_report("1234"), NULL, T0), 0, "p4 done");
        for (int i = 0; i < 3; i++) {
                TAP_EQ_INT(store_claim_next(db, &c), 1, "claim %d", i);
                claim_done(&c);
        }
        TAP_EQ_INT(store_fail_attempt(db, p[3], "bad", false, 3), 1, "p3 failed");
        TAP_EQ_INT(store_release(db, p[0]), 0, "p0 pending again");
        EQ_STR(sql_rows(db, "SELECT state FROM crashes WHERE id >= %lld ORDER BY id", (long long)p[0]),
               "pending\ndone\nrunning\nfailed\ndone\ndone\n", "p0..p5: pending, done, running, failed, done, done");
        TAP_EQ_INT(store_cores_size(db), 100 + 200 + 400 + 800 + 1600, "store_cores_size: the present cores");

        TAP_EQ_INT(store_cores_older_than(db, T0 + 10 * SEC, 10, &v, &n), 0, "store_cores_older_than");
        tap_ok(n == 3 && v[0].id == p[0] && v[1].id == p[1] && v[2].id == p[3] && !strcmp(v[0].core_path, "cores/p0") &&
               !strcmp(v[2].core_path, "cores/p3"), "the old present cores not being analysed, oldest first (%zu)", n);
        for (size_t i = 0; i < n; i++)
                free(v[i].core_path);
        free(v);
        v = NULL;
        TAP_EQ_INT(store_cores_older_than(db, T0 + 10 * SEC, 2, &v, &n), 0, "store_cores_older_than, at most 2");
        tap_ok(n == 2 && v[0].id == p[0] && v[1].id == p[1], "the two oldest");
        for (size_t i = 0; i < n; i++)
                free(v[i].core_path);
        free(v);
        v = NULL;
        TAP_EQ_INT(store_cores_older_than(db, T0, 10, &v, &n), 0, "store_cores_older_than the first crash");
        TAP_EQ_INT(n, 0, "none");
        free(v);

        /* under a size limit: done (and failed) before pending, then the oldest */
        static const int order[] = { 1, 3, 4, 0 };
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                TAP_EQ_INT(store_next_core_to_remove(db, &one), 1, "store_next_core_to_remove: 1");
                TAP_EQ_INT(one.id, p[order[i]], "p%d", order[i]);
                free(one.core_path);
                TAP_EQ_INT(store_mark_core_removed(db, one.id, "removed by retention: MaxUse/KeepFree"), 0,
                           "store_mark_core_removed");
        }
        TAP_EQ_INT(store_next_core_to_remove(db, &one), 0, "then 0: the running crash's core stays");
        EQ_STR(sql_rows(db, "SELECT state, core_state, capture_note, error FROM crashes WHERE id >= %lld ORDER BY id",
                        (long long)p[0]),
               "failed|removed|removed by retention: MaxUse/KeepFree|the core was removed before analysis\n"
               "done|removed|removed by retention: MaxUse/KeepFree|NULL\n"
               "running|present|NULL|NULL\n"
               "failed|removed|removed by retention: MaxUse/KeepFree|bad\n"
               "done|removed|removed by retention: MaxUse/KeepFree|NULL\n"
               "done|too-large|larger than MaxCoreSize|NULL\n",
               "a pending crash whose core is removed fails; the others keep their state and error");
        TAP_EQ_INT(store_cores_size(db), 400, "store_cores_size: the running crash's core");
        TAP_EQ_INT(store_requeue_for_analysis(db, p[1]), 0, "a crash whose core was removed cannot be analysed again");
        store_close(db);
}

int main(void) {
        if (!mkdtemp(tmproot))
                return 1;
        test_open();
        test_migration();
        test_capture();
        test_queue();
        test_file_report();
        test_frame_build_id();
        test_binaries();
        test_transactions();
        test_anchored();
        test_reads();
        test_retention();
        nftw(tmproot, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        for (size_t i = 0; i < n_dirs; i++)
                free(dirs[i]);
        sqlite3_shutdown();
        return tap_done();
}
