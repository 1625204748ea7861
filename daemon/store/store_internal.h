/* SPDX-License-Identifier: MIT */
#pragma once

/* What the store's own files share: statements that clean up after themselves, transactions. */

#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>

static inline void finalizep(sqlite3_stmt **st) {
        sqlite3_finalize(*st);
}
#define _cleanup_finalize_ __attribute__((cleanup(finalizep)))

/* -EBUSY for a lock another connection held past the busy timeout, else -EIO. */
static inline int store_error(sqlite3 *db) {
        int code = sqlite3_errcode(db) & 0xff;
        /* -ENOMEM is said as such: SQLite's message may be gone once the statement is finalized */
        return code == SQLITE_BUSY || code == SQLITE_LOCKED ? -EBUSY : code == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

/* Statements with no result. 0 or store_error(). */
static inline int store_exec(sqlite3 *db, const char *sql) {
        return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : store_error(db);
}

static inline int store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st) {
        return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : store_error(db);
}

/* Run a prepared statement to its end (0), or store_error(). */
static inline int store_run(sqlite3 *db, sqlite3_stmt *st) {
        int rc;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                ;
        return rc == SQLITE_DONE ? 0 : store_error(db);
}

static inline void store_bind_text(sqlite3_stmt *st, int i, const char *s) {
        if (s)
                sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i);
}

/* Keep SQLite's message about what failed on db, for store_errmsg(), before a ROLLBACK (which
 * succeeds, and so clears it); NULL forgets it (store.c). */
void store_keep_errmsg(sqlite3 *db);

/* A transaction that rolls back unless committed: `_cleanup_txn_ sqlite3 *txn = NULL;
 * r = store_begin(db, &txn); ... return store_commit(&txn);` */
static inline void txn_rollback(sqlite3 **txn) {
        if (*txn) {
                store_keep_errmsg(*txn);
                sqlite3_exec(*txn, "ROLLBACK", NULL, NULL, NULL);
        }
}
#define _cleanup_txn_ __attribute__((cleanup(txn_rollback)))

static inline int store_begin(sqlite3 *db, sqlite3 **txn) {
        int r;

        store_keep_errmsg(NULL);
        r = store_exec(db, "BEGIN IMMEDIATE");
        if (r == 0)
                *txn = db;
        return r;
}

static inline int store_commit(sqlite3 **txn) {
        sqlite3 *db = *txn;
        int r = store_exec(db, "COMMIT");
        if (r == 0)
                *txn = NULL;
        return r;
}

/* A text column, or NULL. */
static inline const char *column_text(sqlite3_stmt *st, int i) {
        return (const char *)sqlite3_column_text(st, i);
}

/*
 * store_vfs.c: SQLite opens the store's files through a directory descriptor.  store_anchor()
 * walks dir as trusted_parent does (no link, every directory root's or ours, written by nobody
 * else), keeps it open, and from then on SQLite's opens (and stats, accesses, unlinks) of dir
 * and the names directly in it go through that descriptor, without following links, and take
 * only plain single-link files; readonly (for the first store in dir): none of them for writing.
 * 0, or -errno with the reason in err.
 */
int store_anchor(const char *dir, bool readonly, char *err, size_t errsz);
/* A store whose main file is db_path was closed: its directory's anchor goes with its last store. */
void store_unanchor(const char *db_path);
/* open(2) of a path, through the anchor it is in when it is in one. */
int store_open_file(const char *path, int flags, int mode);
