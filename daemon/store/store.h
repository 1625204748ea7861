/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * store: the crash database, <Storage.Directory>/pystack.db (SQLite, WAL),
 * and the only module that writes SQL or knows a state.
 *
 * Every program opens it through store_open(), which creates the file and
 * brings the schema to the current version (schema.c: the schema, its
 * version and its migrations, in one file).  Every operation that changes a
 * crash's state is one transaction.  Writers wait up to a busy timeout
 * rather than fail; an operation that still fails returns -EIO (or -EBUSY
 * when SQLite said the store was locked), and store_errmsg() says why.
 */

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_BUSY_TIMEOUT_MS 10000

/* ---- states ---- */

/* Where a crash is in its analysis. */
enum crash_state {
        CRASH_CAPTURING,        /* the handler is still taking the core */
        CRASH_PENDING,          /* waiting for pystackd */
        CRASH_RUNNING,          /* an analysis is under way */
        CRASH_DONE,             /* analysed, or nothing to analyse (no core) */
        CRASH_FAILED,           /* the analysis failed for good (error says why) */
        _CRASH_STATE_MAX,
};

/* What became of a crash's core. */
enum core_state {
        CORE_CAPTURING,         /* being taken */
        CORE_PRESENT,
        CORE_TOO_LARGE,         /* larger than MaxCoreSize */
        CORE_NO_SPACE,          /* MaxUse/KeepFree, or the disk was full */
        CORE_RATE_LIMITED,      /* RateLimitBurst */
        CORE_ERROR,             /* the capture failed (capture_note says how) */
        CORE_REMOVED,           /* removed by retention or vacuum */
        _CORE_STATE_MAX,
};

/* "pending", "present", ...: the words the store and every output use. */
const char *crash_state_to_string(enum crash_state s);
const char *core_state_to_string(enum core_state s);

/* ---- opening ---- */

/*
 * Open (creating it 0600 if needed) and migrate the store in dir.
 * 0 and *ret, or -errno with a one-line message in err: -EBUSY when
 * another connection held it locked past the busy timeout (a new store
 * opened by many at once, a migration under way), -EPROTO for a schema
 * newer than this program's.
 */
int store_open(const char *dir, sqlite3 **ret, char *err, size_t errsz);

/*
 * As store_open(), but a store at an older schema is left as it is: -EAGAIN.  The crash handler
 * opens with it before it takes the core, so that a crashing process never waits for a migration
 * (seconds on a large store); a new store is still created.
 */
int store_open_current(const char *dir, sqlite3 **ret, char *err, size_t errsz);
/*
 * Open the store in dir read-only, every file of it (pystack.db, -wal, -shm) opened for reading
 * only, at once: a caller that opens it with privileges may drop them afterwards and go on reading
 * (pystackd's query server).  The store must exist at the current schema: -EAGAIN otherwise.
 */
int store_open_readonly(const char *dir, sqlite3 **ret, char *err, size_t errsz);
void store_close(sqlite3 *db);

/* The schema version this build writes (PRAGMA user_version). */
int store_schema_version(void);

/* SQLite's last message on db. */
const char *store_errmsg(sqlite3 *db);

/* ---- capture (pystack-coredump) ---- */

/* What the capture handler knows about a crash. */
struct crash_record {
        int64_t time_usec;              /* when the kernel handed the core over (%t, refined by the clock) */
        const char *boot_id, *hostname;
        int32_t pid;                    /* in the initial PID namespace (%P) */
        int32_t pid_ns;                 /* in the process's own namespace, or 0 */
        uint32_t uid, gid;
        int32_t signal;
        const char *comm, *exe, *cmdline_json, *cwd, *cgroup, *unit, *thread_names_json, *environ_json;
        const char *script;             /* cmdline_script() of the command line */
        bool container;                 /* another root or other namespaces than the host's */
        const char *container_runtime, *container_id;   /* from the cgroup path, or NULL */
        int dumpable;                   /* %d: 0 (not), 1, 2 (suid_dumpable) */
        int64_t rlimit_core;            /* -1 for unlimited */
        const char *core_path;          /* relative to the storage directory, or NULL */
        int64_t core_size;              /* bytes of core received (-1 unknown) */
        int64_t core_stored_size;       /* bytes on disk */
        enum core_state core_state;
        const char *capture_note;       /* why, for anything but present */
        int64_t suppressed;             /* crashes of this executable suppressed by the rate limit so far */
};

struct rate_limit {
        unsigned burst;                 /* crashes per executable within interval (0: no limit) */
        int64_t interval_usec;
};

/*
 * The rate limit and the row, in one transaction, before the core is taken:
 * handlers of a crash loop run side by side, so a row that only appeared
 * after the capture would not be counted by the next one.  Over the limit
 * the row is final, r is updated to say so (core rate-limited, suppressed)
 * and 1 is returned; otherwise the row says the capture is under way
 * (capturing), which is what stays if the handler dies, and 0 is returned;
 * -EIO/-EBUSY: no row.  *id gets the row.
 */
int store_begin_capture(sqlite3 *db, struct crash_record *r, const struct rate_limit *limit, int64_t *id);

/* One file a crashed process had mapped, as the handler kept it (or not: hash NULL, note why). */
struct crash_binary {
        const char *path;               /* as /proc/PID/maps named it */
        uint64_t address, size;
        const char *build_id;           /* hex, NULL when the file has none */
        const char *hash;               /* binaries/<hash>; NULL when not kept */
        const char *note;
        /* the file it was copied from (store_add_binaries records them for store_find_binary) */
        uint64_t dev, ino;
        int64_t mtime_ns, ctime_ns;
};

/* The hash of a kept file copied from this very file, unchanged since: 1 and hash, or 0. */
int store_find_binary(sqlite3 *db, uint64_t dev, uint64_t ino, uint64_t size, int64_t mtime_ns, int64_t ctime_ns,
                      char hash[65]);

/* The crash's files, in one transaction (each kept file counted once in binaries): 0 or -errno. */
int store_add_binaries(sqlite3 *db, int64_t id, const struct crash_binary *b, size_t n, int64_t now_usec);

/* The crash's files, in path order, to row(); a non-zero return from row() stops and is returned. */
int store_list_binaries(sqlite3 *db, int64_t id, int (*row)(const struct crash_binary *b, void *userdata),
                        void *userdata);

/*
 * Up to max files in binaries/ that no crash with a present core refers to: *hashes (free each
 * and the array).  0, or -errno.
 */
int store_unused_binaries(sqlite3 *db, size_t max, char ***hashes, size_t *n);

/* The file is gone: its row too.  0 or -errno. */
int store_forget_binary(sqlite3 *db, const char *hash);

/* binaries/<hash> has its row: 1, 0 (a file a handler linked before it was killed), or -errno. */
int store_binary_known(sqlite3 *db, const char *hash);

/*
 * In one write transaction: each of up to max unused files (as above) goes through remove(), and
 * its row with it when remove() returns 0.  A handler recording a crash that needs one of them
 * commits before (then it is not unused) or after (then it finds the file gone and links its copy
 * again: binaries_verify).  *removed: how many.  0 or -errno.
 */
int store_sweep_binaries(sqlite3 *db, size_t max, int (*remove)(const char *hash, void *userdata), void *userdata,
                         unsigned *removed);

/*
 * Complete the row of store_begin_capture() with what the capture found
 * (core path, sizes, state, note); or, when id is 0, insert the whole
 * record.  Its analysis becomes pending when the core is present (unless an
 * analysis of the raw core already claimed it), done otherwise.  -EIO/-EBUSY; -ENOENT when id
 * names no row.
 */
int store_finish_capture(sqlite3 *db, const struct crash_record *r, int64_t *id);

/* Bytes of stored cores (rows whose core is present) and of the kept binaries; -EIO. */
int64_t store_cores_size(sqlite3 *db);

/* ---- the analysis queue (pystackd) ---- */

/* Crashes left running by a pystackd that was killed go back to the queue. */
int store_requeue_running(sqlite3 *db);

/* A crash claimed for analysis. */
struct claim {
        int64_t id;
        char *core_path;                /* malloc'ed; NULL while the core is still being captured */
        int attempts;                   /* this one included */
        uint32_t uid, gid;
        int dumpable;
        bool container;                 /* its files are not the host's: source lines only from its root */
};
void claim_done(struct claim *c);

/*
 * Claim the oldest pending crash whose core is stored (state running,
 * attempts + 1): 1 and *c; 0 when the queue is empty; -EIO.
 */
int store_claim_next(sqlite3 *db, struct claim *c);

/*
 * Claim crash id while its core is still being captured, for an analysis of
 * the raw core the handler handed over: 1 and *c; 0 when it is not in that
 * state any more (then the queue has it); -EIO.
 */
int store_claim_capturing(sqlite3 *db, int64_t id, struct claim *c);

/*
 * An attempt failed.  retry and attempts below max_attempts: the crash goes
 * back to the queue (pending) with the reason; otherwise it is failed for
 * good.  1 when it failed for good, 0 when it was requeued, -EIO.
 */
int store_fail_attempt(sqlite3 *db, int64_t id, const char *reason, bool retry, unsigned max_attempts);

/* Give a claimed crash back, uncounted (pystackd is stopping). */
int store_release(sqlite3 *db, int64_t id);

/* A crash whose core vanished before its analysis: failed, with why. */
int store_fail(sqlite3 *db, int64_t id, const char *reason);

/*
 * File an analysis report (`pystack core --json`, len bytes, doc/report-schema.md): its
 * threads, frames, locals and modules, the facts it derived (signature and summary, script,
 * innermost Python frame, whether the core was truncated), and the state done with note (NULL,
 * or what was partial) — all in one transaction, so a done crash always has its report and its
 * signature, and a signature's counts are always its crashes.  -EBADMSG when it is not a JSON
 * object, -EIO.
 */
int store_file_report(sqlite3 *db, int64_t id, const char *json, size_t len, const char *note,
                      int64_t now_usec);

/* Queue a crash for a new analysis (pystackctl analyze): 1 when queued, 0 when it has no core or is
 * being analysed now, -EIO. */
int store_requeue_for_analysis(sqlite3 *db, int64_t id);

/* ---- what the programs read ---- */

enum match_key { MATCH_ID, MATCH_PID, MATCH_COMM, MATCH_EXE, MATCH_UID, MATCH_SIG, MATCH_SIGNATURE,
                 MATCH_CONTAINER,
                 MATCH_HOST, MATCH_MACHINE_ID,  /* journals gathered from many hosts only (pystackctl --directory) */
                 _MATCH_MAX };

struct match {
        enum match_key key;
        char value[256];        /* validated: digits for numeric keys, a number for SIG */
};

/* Which crashes: all matches, the time window, and for uid >= 0 that user's own dumpable ones. */
struct store_filter {
        const struct match *matches;
        size_t n_matches;
        int64_t since, until;   /* µs since the epoch; INT64_MIN / INT64_MAX when unset */
        int64_t uid;            /* -1: everyone's (root) */
};

/* A crash as list shows it. */
struct crash_row {
        int64_t id, time_usec, uid, gid;
        int32_t pid;
        int signal;
        const char *python_version;
        const char *core;               /* its core state, "truncated" for a present core that was cut
                                         * short, "missing" for one whose file is gone */
        const char *comm, *exe, *script;
        const char *function, *file;    /* the crashed thread's innermost Python frame, or NULL */
        int line;
        const char *state, *error, *signature, *core_path;
        const char *host;               /* the host it crashed on (journals gathered from many), or NULL */
};

/*
 * Call row() for each crash of f, newest or oldest first, the last `limit` ones (0: all);
 * cores_fd: the storage directory's cores/, opened for reading, to tell a missing core (-1: none
 * is said to be).  Stops at the first non-zero return of row() and returns it; 0 when done; -EIO.
 */
int store_list(sqlite3 *db, const struct store_filter *f, bool newest_first, int64_t limit, int cores_fd,
               int (*row)(const struct crash_row *r, void *userdata), void *userdata);

/* The newest crash of f: 1 and its id (and, when asked for, copies of its core path and executable,
 * NULL for none), 0 when none, -EIO, -ENOMEM. */
int store_find_newest(sqlite3 *db, const struct store_filter *f, int64_t *id, char **core_path, char **exe);

/* One column of a crash as the store has it. */
struct store_value {
        const char *name;
        enum { STORE_NULL, STORE_INT, STORE_TEXT } type;
        int64_t i;
        const char *s;
};

/* Everything the store knows about a crash (info). */
enum crash_column {
        COL_ID, COL_TIME, COL_PID, COL_PID_NS, COL_TID, COL_UID, COL_GID, COL_SIGNAL, COL_COMM, COL_EXE,
        COL_CWD, COL_CGROUP, COL_UNIT, COL_CONTAINER, COL_CONTAINER_RUNTIME, COL_CONTAINER_ID, COL_DUMPABLE, COL_RLIMIT, COL_BOOT_ID, COL_HOSTNAME,
        COL_CORE_PATH, COL_CORE_SIZE, COL_CORE_STORED_SIZE, COL_CORE_STATE, COL_CAPTURE_NOTE, COL_SUPPRESSED,
        COL_STATE, COL_ATTEMPTS, COL_ERROR, COL_PYTHON, COL_SIGNATURE, COL_ANALYZED,
        _COL_JSON_MAX,          /* the columns above: info --json prints them in this order */
        COL_CMDLINE = _COL_JSON_MAX, COL_THREAD_NAMES, COL_SCRIPT, COL_TITLE, COL_COUNT, COL_FIRST,
        COL_LAST, COL_CORE_TRUNCATED,
        _COL_MAX,
};

struct crash_info {
        struct store_value v[_COL_MAX];
        sqlite3_stmt *st;               /* owns the text */
};

/*
 * 1 and *ci (free with crash_info_done), 0 when there is no such crash, -EIO.  The signature's
 * count, first and last time are those of the crashes uid may see (-1: all).
 */
int store_get_crash(sqlite3 *db, int64_t id, int64_t uid, struct crash_info *ci);
void crash_info_done(struct crash_info *ci);

/* The stored report (JSON), malloc'ed: 1, 0 when the crash has none (not analysed), -EIO. */
int store_get_report(sqlite3 *db, int64_t id, char **json, size_t *len);

/* A group of crashes with one signature. */
struct group_row {
        const char *signature, *title;
        int64_t count, first_usec, last_usec;
};

/* Call row() for each signature among the crashes of f, the most frequent first; as store_list(). */
int store_groups(sqlite3 *db, const struct store_filter *f,
                 int (*row)(const struct group_row *g, void *userdata), void *userdata);

/* ---- retention ---- */

/* A crash whose core retention may remove. */
struct victim {
        int64_t id;
        char *core_path;
};

/* Rows a handler left capturing since before `before_usec` (it died): core error, done. */
int store_expire_captures(sqlite3 *db, int64_t before_usec);

/* Up to max present cores of crashes older than before_usec not being analysed, oldest first:
 * the count in *n and a malloc'ed array (free each core_path), or -EIO. */
int store_cores_older_than(sqlite3 *db, int64_t before_usec, size_t max, struct victim **ret, size_t *n);

/* The core to remove first under a size limit (done before pending, then the oldest): 1, 0, -EIO. */
int store_next_core_to_remove(sqlite3 *db, struct victim *v);

/* Record that a crash's core was removed, with why; a crash still waiting for its analysis fails. */
int store_mark_core_removed(sqlite3 *db, int64_t id, const char *why);
