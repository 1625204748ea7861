/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * store: the crash database, <Storage.Directory>/pystack.db (SQLite, WAL).
 *
 * Every program opens it through store_open(), which creates the file and
 * brings the schema to the current version (migrations in store.c, the one
 * home of the schema).  Writers wait up to a busy timeout rather than fail.
 */

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define STORE_BUSY_TIMEOUT_MS 10000

/* What the capture handler knows about a crash. */
struct crash_record {
        int64_t time_usec;              /* when the kernel handed the core over (%t, refined by the clock) */
        const char *boot_id, *hostname;
        int32_t pid;                    /* in the initial PID namespace (%P) */
        int32_t pid_ns;                 /* in the process's own namespace, or 0 */
        uint32_t uid, gid;
        int32_t signal;
        const char *comm, *exe, *cmdline_json, *cwd, *cgroup, *unit, *thread_names_json, *environ_json;
        bool container;                 /* other namespaces than the host's */
        int dumpable;                   /* %d: 0 (not), 1, 2 (suid_dumpable) */
        int64_t rlimit_core;            /* -1 for unlimited */
        const char *core_path;          /* relative to the storage directory, or NULL */
        int64_t core_size;              /* bytes of core received (-1 unknown) */
        int64_t core_stored_size;       /* bytes on disk */
        const char *core_state;         /* present, too-large, no-space, rate-limited, discarded, error */
        const char *capture_note;       /* why, for anything but present */
        int64_t suppressed;             /* crashes of this executable suppressed by the rate limit so far */
};

/*
 * Open (creating it 0600 if needed) and migrate the store in dir.
 * 0 and *ret, or -errno with a one-line message in err.
 */
int store_open(const char *dir, sqlite3 **ret, char *err, size_t errsz);

/* A text column of the current row, copied (malloc'ed), or NULL. */
char *store_column_dup(sqlite3_stmt *st, int column);

/* The schema version this build writes (PRAGMA user_version). */
int store_schema_version(void);

/* Insert a crash with analysis state "pending"; *id gets its row id. 0 or -EIO. */
int store_add_crash(sqlite3 *db, const struct crash_record *r, int64_t *id);

/* Crashes of exe recorded since `since_usec` (any state). -EIO on error. */
int64_t store_count_recent(sqlite3 *db, const char *exe, int64_t since_usec);

/* Bytes of stored cores (rows whose core is present). */
int64_t store_cores_size(sqlite3 *db);

/* ---- the analysis queue (pystackd) ---- */

/* Crashes left "running" by a pystackd that was killed go back to "pending". */
int store_requeue_running(sqlite3 *db);

/*
 * Claim the oldest pending crash (state running, attempts + 1): 1 with its
 * id, core path (malloc'ed, may be NULL) and attempt number; 0 when the
 * queue is empty; -EIO.
 */
int store_claim_next(sqlite3 *db, int64_t *id, char **core_path, int *attempts);

/* Set a crash's analysis state (pending, failed, done) and error text. */
int store_set_state(sqlite3 *db, int64_t id, const char *state, const char *error);

/*
 * Record an analysis report (pystack core --json, len bytes): threads,
 * frames, locals and modules rows and the report itself, in one
 * transaction; the crash stays in its state (running) until store_finish().
 * -EBADMSG when it is not a JSON object, -EIO.
 */
int store_ingest(sqlite3 *db, int64_t id, const char *json, size_t len);

/*
 * In one transaction: tie the crash to its signature (when not NULL) and
 * recount that signature, and set the crash done with `note` (NULL, or what
 * was partial).  A pystackd killed before it leaves the crash running, which
 * the next start puts back in the queue: a done crash always has its
 * signature, and a signature's count is always its crashes.
 */
int store_finish(sqlite3 *db, int64_t id, const char *signature, const char *title, const char *note,
                 int64_t now_usec);

/* Tie a done crash to its signature and recount it, in one transaction (stores from before
 * store_finish() existed). */
int store_set_signature(sqlite3 *db, int64_t id, const char *signature, const char *title, int64_t now_usec);
