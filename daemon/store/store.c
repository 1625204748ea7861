/* SPDX-License-Identifier: MIT */
/*
 * store: every change of a crash's state, each one transaction.  The words
 * of the states live in the tables below and nowhere else.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_internal.h"
#include "util.h"

static const char *const crash_state_names[_CRASH_STATE_MAX] = {
        [CRASH_CAPTURING] = "capturing", [CRASH_PENDING] = "pending", [CRASH_RUNNING] = "running",
        [CRASH_DONE] = "done", [CRASH_FAILED] = "failed",
};

static const char *const core_state_names[_CORE_STATE_MAX] = {
        [CORE_CAPTURING] = "capturing", [CORE_PRESENT] = "present", [CORE_TOO_LARGE] = "too-large",
        [CORE_NO_SPACE] = "no-space", [CORE_RATE_LIMITED] = "rate-limited", [CORE_ERROR] = "error",
        [CORE_REMOVED] = "removed",
};

const char *crash_state_to_string(enum crash_state s) {
        return (unsigned)s < _CRASH_STATE_MAX ? crash_state_names[s] : "?";
}

const char *core_state_to_string(enum core_state s) {
        return (unsigned)s < _CORE_STATE_MAX ? core_state_names[s] : "?";
}

/* What failed in the transaction last rolled back, and on which connection. */
static __thread sqlite3 *kept_db;
static __thread char kept_msg[256];

void store_keep_errmsg(sqlite3 *db) {
        kept_db = db;
        snprintf(kept_msg, sizeof(kept_msg), "%s", db ? sqlite3_errmsg(db) : "");
}

const char *store_errmsg(sqlite3 *db) {
        /* after a failed transaction SQLite's last word is the ROLLBACK's: "not an error" */
        return db && db == kept_db && sqlite3_errcode(db) == SQLITE_OK ? kept_msg : sqlite3_errmsg(db);
}

/* ---- capture ---- */

/* The analysis a new row starts in: none to do without a core. */
static enum crash_state first_state(enum core_state core) {
        return core == CORE_PRESENT ? CRASH_PENDING : core == CORE_CAPTURING ? CRASH_CAPTURING : CRASH_DONE;
}

static int insert_crash(sqlite3 *db, const struct crash_record *r, int64_t *id) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int i = 1, k;

        k = store_prepare(db,
                "INSERT INTO crashes (time_usec, boot_id, hostname, pid, pid_ns, uid, gid, signal,"
                " comm, exe, cmdline, cwd, cgroup, unit, container, dumpable, rlimit_core,"
                " thread_names, environ, core_path, core_size, core_stored_size, core_state,"
                " capture_note, suppressed, state, script, container_runtime, container_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", &st);
        if (k < 0)
                return k;
        sqlite3_bind_int64(st, i++, r->time_usec);
        store_bind_text(st, i++, r->boot_id);
        store_bind_text(st, i++, r->hostname);
        sqlite3_bind_int(st, i++, r->pid);
        if (r->pid_ns > 0)
                sqlite3_bind_int(st, i++, r->pid_ns);
        else
                sqlite3_bind_null(st, i++);
        sqlite3_bind_int64(st, i++, r->uid);
        sqlite3_bind_int64(st, i++, r->gid);
        sqlite3_bind_int(st, i++, r->signal);
        store_bind_text(st, i++, r->comm);
        store_bind_text(st, i++, r->exe);
        store_bind_text(st, i++, r->cmdline_json);
        store_bind_text(st, i++, r->cwd);
        store_bind_text(st, i++, r->cgroup);
        store_bind_text(st, i++, r->unit);
        sqlite3_bind_int(st, i++, r->container);
        sqlite3_bind_int(st, i++, r->dumpable);
        sqlite3_bind_int64(st, i++, r->rlimit_core);
        store_bind_text(st, i++, r->thread_names_json);
        store_bind_text(st, i++, r->environ_json);
        store_bind_text(st, i++, r->core_path);
        if (r->core_size >= 0)
                sqlite3_bind_int64(st, i++, r->core_size);
        else
                sqlite3_bind_null(st, i++);
        sqlite3_bind_int64(st, i++, r->core_stored_size);
        store_bind_text(st, i++, core_state_to_string(r->core_state));
        store_bind_text(st, i++, r->capture_note);
        sqlite3_bind_int64(st, i++, r->suppressed);
        store_bind_text(st, i++, crash_state_to_string(first_state(r->core_state)));
        store_bind_text(st, i++, r->script);
        store_bind_text(st, i++, r->container_runtime);
        store_bind_text(st, i++, r->container_id);
        k = store_run(db, st);
        if (k < 0)
                return k;
        *id = sqlite3_last_insert_rowid(db);
        return 0;
}

static int64_t count_recent(sqlite3 *db, const char *exe, int64_t since_usec) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, "SELECT count(*) FROM crashes WHERE exe IS ? AND time_usec >= ?", &st);

        if (r < 0)
                return r;
        store_bind_text(st, 1, exe);    /* IS: an unknown executable (NULL) is one executable too */
        sqlite3_bind_int64(st, 2, since_usec);
        return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : store_error(db);
}

int store_begin_capture(sqlite3 *db, struct crash_record *rec, const struct rate_limit *limit, int64_t *id) {
        _cleanup_txn_ sqlite3 *txn = NULL;
        struct crash_record row = *rec;
        bool limited = false;
        int r;

        r = store_begin(db, &txn);
        if (r < 0)
                return r;
        if (limit->burst) {
                int64_t recent = count_recent(db, rec->exe, rec->time_usec - limit->interval_usec);
                if (recent < 0)
                        return (int)recent;
                limited = recent >= (int64_t)limit->burst;
                if (limited) {
                        row.core_state = CORE_RATE_LIMITED;
                        row.suppressed = recent - limit->burst + 1;
                        row.capture_note = "more than RateLimitBurst crashes of this executable within "
                                           "RateLimitIntervalSec";
                }
        }
        if (!limited) {
                /* visible at once, not yet for pystackd; a handler that dies leaves it so, and
                 * retention marks it as an error once it is old */
                row.core_state = CORE_CAPTURING;
                row.capture_note = NULL;
        }
        r = insert_crash(db, &row, id);
        if (r == 0)
                r = store_commit(&txn);
        if (r < 0)
                return r;
        if (limited)
                *rec = row;
        return limited;
}

int store_finish_capture(sqlite3 *db, const struct crash_record *r, int64_t *id) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int k;

        if (*id <= 0)
                return insert_crash(db, r, id);
        /* an analysis of the raw core may have claimed it meanwhile: its state is its own */
        k = store_prepare(db, "UPDATE crashes SET core_path = ?2, core_size = ?3, core_stored_size = ?4,"
                          " core_state = ?5, capture_note = ?6,"
                          " state = CASE WHEN state = 'capturing' THEN ?7 ELSE state END WHERE id = ?1", &st);
        if (k < 0)
                return k;
        sqlite3_bind_int64(st, 1, *id);
        store_bind_text(st, 2, r->core_path);
        if (r->core_size >= 0)
                sqlite3_bind_int64(st, 3, r->core_size);
        sqlite3_bind_int64(st, 4, r->core_stored_size);
        store_bind_text(st, 5, core_state_to_string(r->core_state));
        store_bind_text(st, 6, r->capture_note);
        store_bind_text(st, 7, crash_state_to_string(first_state(r->core_state)));
        k = store_run(db, st);
        if (k < 0)
                return k;
        return sqlite3_changes(db) == 1 ? 0 : -ENOENT;
}

int64_t store_cores_size(sqlite3 *db) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, "SELECT (SELECT coalesce(sum(core_stored_size), 0) FROM crashes"
                              " WHERE core_state = 'present') + (SELECT coalesce(sum(size), 0) FROM binaries)", &st);

        if (r < 0)
                return r;
        return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : store_error(db);
}

/* ---- the files crashed processes had mapped ---- */

int store_add_binaries(sqlite3 *db, int64_t id, const struct crash_binary *b, size_t n, int64_t now_usec) {
        _cleanup_txn_ sqlite3 *txn = NULL;
        _cleanup_finalize_ sqlite3_stmt *file = NULL, *row = NULL;
        int r = store_begin(db, &txn);

        if (r < 0)
                return r;
        r = store_prepare(db, "INSERT INTO binaries (hash, size, stored_usec, dev, ino, mtime_ns, ctime_ns)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (hash) DO UPDATE SET dev = ?4, ino = ?5,"
                          " mtime_ns = ?6, ctime_ns = ?7", &file);
        if (r < 0)
                return r;
        r = store_prepare(db, "INSERT OR REPLACE INTO crash_binaries (crash_id, path, address, size, build_id, hash,"
                          " note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &row);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (b[i].hash) {
                        sqlite3_reset(file);
                        store_bind_text(file, 1, b[i].hash);
                        sqlite3_bind_int64(file, 2, (int64_t)b[i].size);
                        sqlite3_bind_int64(file, 3, now_usec);
                        sqlite3_bind_int64(file, 4, (int64_t)b[i].dev);
                        sqlite3_bind_int64(file, 5, (int64_t)b[i].ino);
                        sqlite3_bind_int64(file, 6, b[i].mtime_ns);
                        sqlite3_bind_int64(file, 7, b[i].ctime_ns);
                        if ((r = store_run(db, file)) < 0)
                                return r;
                }
                sqlite3_reset(row);
                sqlite3_bind_int64(row, 1, id);
                store_bind_text(row, 2, b[i].path);
                sqlite3_bind_int64(row, 3, (int64_t)b[i].address);
                sqlite3_bind_int64(row, 4, (int64_t)b[i].size);
                store_bind_text(row, 5, b[i].build_id);
                store_bind_text(row, 6, b[i].hash);
                store_bind_text(row, 7, b[i].note);
                if ((r = store_run(db, row)) < 0)
                        return r;
        }
        return store_commit(&txn);
}

int store_find_binary(sqlite3 *db, uint64_t dev, uint64_t ino, uint64_t size, int64_t mtime_ns, int64_t ctime_ns,
                      char hash[65]) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, "SELECT hash FROM binaries WHERE dev = ? AND ino = ? AND size = ? AND mtime_ns = ?"
                              " AND ctime_ns = ? LIMIT 1", &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (int64_t)dev);
        sqlite3_bind_int64(st, 2, (int64_t)ino);
        sqlite3_bind_int64(st, 3, (int64_t)size);
        sqlite3_bind_int64(st, 4, mtime_ns);
        sqlite3_bind_int64(st, 5, ctime_ns);
        r = sqlite3_step(st);
        if (r != SQLITE_ROW)
                return r == SQLITE_DONE ? 0 : store_error(db);
        if (!column_text(st, 0) || strlen(column_text(st, 0)) != 64)
                return 0;
        memcpy(hash, column_text(st, 0), 65);
        return 1;
}

int store_list_binaries(sqlite3 *db, int64_t id, int (*row)(const struct crash_binary *b, void *userdata),
                        void *userdata) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, "SELECT path, address, size, build_id, hash, note FROM crash_binaries"
                              " WHERE crash_id = ? ORDER BY path", &st), rc;

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct crash_binary b = {
                        .path = column_text(st, 0), .address = (uint64_t)sqlite3_column_int64(st, 1),
                        .size = (uint64_t)sqlite3_column_int64(st, 2), .build_id = column_text(st, 3),
                        .hash = column_text(st, 4), .note = column_text(st, 5),
                };
                if ((r = row(&b, userdata)) != 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_error(db);
}

int store_unused_binaries(sqlite3 *db, size_t max, char ***hashes, size_t *n) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, "SELECT b.hash FROM binaries b WHERE NOT EXISTS (SELECT 1 FROM crash_binaries cb"
                              " JOIN crashes c ON c.id = cb.crash_id WHERE cb.hash = b.hash AND c.core_state IN"
                              " ('present', 'capturing')) LIMIT ?", &st), rc;
        size_t allocated = 0;

        *hashes = NULL;
        *n = 0;
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (int64_t)max);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                char *h = column_text(st, 0) ? strdup(column_text(st, 0)) : NULL;

                if (!h || grow_array(hashes, &allocated, *n + 1, sizeof(**hashes)) < 0) {
                        free(h);
                        return -ENOMEM;
                }
                (*hashes)[(*n)++] = h;
        }
        return rc == SQLITE_DONE ? 0 : store_error(db);
}

int store_forget_binary(sqlite3 *db, const char *hash) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, "DELETE FROM binaries WHERE hash = ?", &st);

        if (r < 0)
                return r;
        store_bind_text(st, 1, hash);
        return store_run(db, st);
}

int store_binary_known(sqlite3 *db, const char *hash) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, "SELECT 1 FROM binaries WHERE hash = ?", &st);

        if (r < 0)
                return r;
        store_bind_text(st, 1, hash);
        r = sqlite3_step(st);
        return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : store_error(db);
}

int store_sweep_binaries(sqlite3 *db, size_t max, int (*remove)(const char *hash, void *userdata), void *userdata,
                         unsigned *removed) {
        _cleanup_txn_ sqlite3 *txn = NULL;
        char **hashes = NULL;
        size_t n = 0;
        int r = store_begin(db, &txn);

        *removed = 0;
        if (r < 0)
                return r;
        r = store_unused_binaries(db, max, &hashes, &n);
        for (size_t i = 0; i < n; i++) {
                if (r == 0 && remove(hashes[i], userdata) == 0) {
                        r = store_forget_binary(db, hashes[i]);
                        if (r == 0)
                                (*removed)++;
                }
                free(hashes[i]);
        }
        free(hashes);
        return r < 0 ? r : store_commit(&txn);
}

/* ---- the analysis queue ---- */

int store_requeue_running(sqlite3 *db) {
        /* a pystackd that died mid-analysis recorded nothing for these: they go again; one that was
         * reading a raw core waits for its capture to finish, as it did */
        return store_exec(db, "UPDATE crashes SET state = CASE WHEN core_state = 'capturing' THEN 'capturing'"
                          " ELSE 'pending' END WHERE state = 'running'");
}

void claim_done(struct claim *c) {
        free(c->core_path);
        *c = (struct claim) {};
}

static int claim(sqlite3 *db, sqlite3_stmt *st, struct claim *c) {
        int rc = sqlite3_step(st);

        if (rc == SQLITE_DONE)
                return 0;
        if (rc != SQLITE_ROW)
                return store_error(db);
        *c = (struct claim) {
                .id = sqlite3_column_int64(st, 0),
                .attempts = sqlite3_column_int(st, 2),
                .uid = (uint32_t)sqlite3_column_int64(st, 3),
                .gid = (uint32_t)sqlite3_column_int64(st, 4),
                .dumpable = sqlite3_column_int(st, 5),
                .container = sqlite3_column_int(st, 6) != 0,
        };
        if (column_text(st, 1) && !(c->core_path = strdup(column_text(st, 1))))
                return -ENOMEM;
        return store_run(db, st) < 0 ? store_error(db) : 1;
}

int store_claim_next(sqlite3 *db, struct claim *c) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db,
                "UPDATE crashes SET state = 'running', attempts = attempts + 1"
                " WHERE id = (SELECT id FROM crashes WHERE state = 'pending' AND core_state = 'present'"
                "             ORDER BY id LIMIT 1)"
                " RETURNING id, core_path, attempts, uid, gid, dumpable, container", &st);

        return r < 0 ? r : claim(db, st, c);
}

int store_claim_capturing(sqlite3 *db, int64_t id, struct claim *c) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db,
                "UPDATE crashes SET state = 'running', attempts = attempts + 1"
                " WHERE id = ? AND state = 'capturing' AND core_state = 'capturing'"
                " RETURNING id, NULL, attempts, uid, gid, dumpable, container", &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        return claim(db, st, c);
}

/* The state a failed or released attempt leaves: the queue, or back to waiting for the capture. */
#define BACK_TO_QUEUE "CASE WHEN core_state = 'capturing' THEN 'capturing' ELSE 'pending' END"

int store_fail_attempt(sqlite3 *db, int64_t id, const char *reason, bool retry, unsigned max_attempts) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db,
                "UPDATE crashes SET error = ?2, state = CASE WHEN ?3 AND attempts < ?4 THEN " BACK_TO_QUEUE
                " ELSE 'failed' END WHERE id = ?1 RETURNING state = 'failed'", &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        store_bind_text(st, 2, reason);
        sqlite3_bind_int(st, 3, retry);
        sqlite3_bind_int64(st, 4, max_attempts);
        if (sqlite3_step(st) != SQLITE_ROW)
                return store_error(db);
        r = sqlite3_column_int(st, 0);
        return store_run(db, st) < 0 ? store_error(db) : r;
}

int store_release(sqlite3 *db, int64_t id) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, "UPDATE crashes SET state = " BACK_TO_QUEUE ", attempts = max(attempts - 1, 0)"
                              " WHERE id = ? AND state = 'running'", &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        return store_run(db, st);
}

int store_fail(sqlite3 *db, int64_t id, const char *reason) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, "UPDATE crashes SET state = 'failed', error = ?2 WHERE id = ?1", &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        store_bind_text(st, 2, reason);
        return store_run(db, st);
}

/* Run one statement with ?1 = id, ?2 = the report, ?3 = the note, ?4 = now. */
static int file_step(sqlite3 *db, const char *sql, int64_t id, const char *json, size_t len, const char *note,
                     int64_t now_usec) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, sql, &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, json, (int)len, SQLITE_STATIC);
        store_bind_text(st, 3, note);
        sqlite3_bind_int64(st, 4, now_usec);
        return store_run(db, st);
}

int store_file_report(sqlite3 *db, int64_t id, const char *json, size_t len, const char *note,
                      int64_t now_usec) {
        /*
         * The report is parsed by SQLite (json_each / json_extract), never by us; json_valid() is
         * checked first.  Everything goes in one transaction, and filing again replaces the rows.
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
                " truncated, native_error, merged, interpreter_id)"
                " SELECT ?1, t.key, json_extract(t.value, '$.tid'),"
                "  (SELECT json_extract(n.value, '$[1]') FROM crashes c, json_each(c.thread_names) n"
                "    WHERE c.id = ?1 AND json_valid(c.thread_names)"
                "    AND json_extract(n.value, '$[0]') = json_extract(t.value, '$.tid')),"
                "  coalesce(json_extract(t.value, '$.crashed'), 0), coalesce(json_extract(t.value, '$.python'), 0),"
                "  coalesce(json_extract(t.value, '$.has_gil'), 0), coalesce(json_extract(t.value, '$.gc_collecting'), 0),"
                "  json_extract(t.value, '$.truncated'), json_extract(t.value, '$.native_error'),"
                "  json_extract(t.value, '$.merged'), json_extract(t.value, '$.interpreter_id')"
                " FROM json_each(?2, '$.threads') t",
                "INSERT INTO frames (crash_id, thread_idx, idx, kind, function, file, line, library, build_id,"
                " inlined, address, source)"
                " SELECT ?1, t.key, f.key, coalesce(json_extract(f.value, '$.kind'), 'python'),"
                "  json_extract(f.value, '$.function'), json_extract(f.value, '$.file'),"
                "  json_extract(f.value, '$.line'), json_extract(f.value, '$.library'),"
                /* the module whose path ends in "/" and the frame's library, byte for byte (LIKE
                 * would take '_' and '%' as patterns and ignore case) */
                "  (SELECT m.build_id FROM modules m WHERE m.crash_id = ?1"
                "    AND substr(m.path, -length(json_extract(f.value, '$.library')) - 1)"
                "        = '/' || json_extract(f.value, '$.library') LIMIT 1),"
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
                /* the signature's row first: its count is recounted from the crashes that carry it */
                "INSERT INTO signatures (signature, title, count, first_usec, last_usec)"
                " SELECT json_extract(?2, '$.signature'), json_extract(?2, '$.summary'), 0, c.time_usec, c.time_usec"
                " FROM crashes c WHERE c.id = ?1 AND json_type(?2, '$.signature') = 'text'"
                " ON CONFLICT (signature) DO UPDATE SET first_usec = min(first_usec, excluded.first_usec),"
                "  last_usec = max(last_usec, excluded.last_usec)",
                /* a crash filed again with another signature (or none) leaves its old one: recounted
                 * without it */
                "UPDATE signatures SET count = (SELECT count(*) FROM crashes c"
                "  WHERE c.signature = signatures.signature AND c.id != ?1)"
                " WHERE signature = (SELECT signature FROM crashes WHERE id = ?1)"
                " AND signature IS NOT json_extract(?2, '$.signature')",
                "UPDATE crashes SET report = ?2, python_version = json_extract(?2, '$.python_version'),"
                " tid = (SELECT json_extract(value, '$.tid') FROM json_each(?2, '$.threads')"
                "        WHERE json_extract(value, '$.crashed') LIMIT 1),"
                " signature = json_extract(?2, '$.signature'),"
                " function = json_extract(?2, '$.frame.function'), file = json_extract(?2, '$.frame.file'),"
                " line = json_extract(?2, '$.frame.line'),"
                " core_truncated = coalesce(json_extract(?2, '$.core_truncated'), 0),"
                /* the coredump socket does not tell the signal (6.18): the core's NT_SIGINFO does */
                " signal = CASE WHEN signal = 0 THEN coalesce(json_extract(?2, '$.signal.number'), 0)"
                "  ELSE signal END,"
                " state = 'done', error = ?3, analyzed_usec = ?4"
                " WHERE id = ?1",
                ("UPDATE signatures SET count = (SELECT count(*) FROM crashes WHERE signature = signatures.signature)"
                 " WHERE signature = json_extract(?2, '$.signature')"),
        };
        _cleanup_txn_ sqlite3 *txn = NULL;
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r;

        /* CASE, not AND: json_type() of malformed JSON is an error, not false */
        r = store_prepare(db, "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object' ELSE 0 END", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, json, (int)len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW)
                return store_error(db);
        if (!sqlite3_column_int(st, 0))
                return -EBADMSG;
        /* finalized now: finalizing it after a failed step would clear what store_errmsg() says */
        sqlite3_finalize(TAKE_PTR(st));

        r = store_begin(db, &txn);
        for (size_t i = 0; r == 0 && i < ELEMENTSOF(steps); i++)
                r = file_step(db, steps[i], id, json, len, note, now_usec);
        return r < 0 ? r : store_commit(&txn);
}

int store_requeue_for_analysis(sqlite3 *db, int64_t id) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        /* the new result replaces the old one when pystackd files it */
        int r = store_prepare(db, "UPDATE crashes SET state = 'pending', attempts = 0, error = NULL"
                              " WHERE id = ? AND core_state = 'present' AND state != 'running'", &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        r = store_run(db, st);
        return r < 0 ? r : sqlite3_changes(db) > 0;
}

/* ---- retention ---- */

int store_expire_captures(sqlite3 *db, int64_t before_usec) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, "UPDATE crashes SET core_state = 'error',"
                              " state = CASE WHEN state IN ('capturing', 'pending') THEN 'done' ELSE state END,"
                              " capture_note = 'the core was being captured when the handler stopped'"
                              " WHERE core_state = 'capturing' AND time_usec < ?", &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, before_usec);
        return store_run(db, st);
}

int store_cores_older_than(sqlite3 *db, int64_t before_usec, size_t max, struct victim **ret, size_t *n) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        struct victim *v = NULL;
        size_t allocated = 0;
        int r;

        *n = 0;
        r = store_prepare(db, "SELECT id, core_path FROM crashes WHERE core_state = 'present'"
                          " AND state != 'running' AND time_usec < ? ORDER BY id LIMIT ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, before_usec);
        sqlite3_bind_int64(st, 2, (int64_t)max);
        /* collected first: updating rows under a running SELECT would skip some */
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                if (grow_array(&v, &allocated, *n + 1, sizeof(*v)) < 0)
                        break;
                v[*n].id = sqlite3_column_int64(st, 0);
                v[*n].core_path = column_text(st, 1) ? strdup(column_text(st, 1)) : NULL;
                (*n)++;
        }
        *ret = v;
        return r == SQLITE_DONE || r == SQLITE_ROW ? 0 : store_error(db);
}

int store_next_core_to_remove(sqlite3 *db, struct victim *v) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, "SELECT id, core_path FROM crashes WHERE core_state = 'present'"
                              " AND state != 'running' ORDER BY state = 'pending', id LIMIT 1", &st);

        if (r < 0)
                return r;
        r = sqlite3_step(st);
        if (r != SQLITE_ROW)
                return r == SQLITE_DONE ? 0 : store_error(db);
        v->id = sqlite3_column_int64(st, 0);
        v->core_path = column_text(st, 1) ? strdup(column_text(st, 1)) : NULL;
        return 1;
}

int store_mark_core_removed(sqlite3 *db, int64_t id, const char *why) {
        _cleanup_finalize_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, "UPDATE crashes SET core_state = 'removed', capture_note = ?2,"
                              " error = CASE WHEN state = 'pending' THEN 'the core was removed before analysis'"
                              " ELSE error END,"
                              " state = CASE WHEN state = 'pending' THEN 'failed' ELSE state END"
                              " WHERE id = ?1", &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, why, -1, SQLITE_STATIC);
        return store_run(db, st);
}
