/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal_index.h"
#include "util.h"

/*
 * The index's schema.  INDEX_VERSION is its user_version; an index of another version is
 * replaced, not migrated: it is a cache.
 *
 * files    one row per journal file read: its path, what identifies it (device, inode, the
 *          header's file id), n_entries and `state` (the header's tail and the file's size and
 *          times: anything that changes when an entry is appended), the cursor of the last crash
 *          entry read, and when a run last used it (unused for 30 days: dropped).
 * crashes  one row per crash entry, as list reads it; `file` is files.id.
 * skipped  the entries that did not hold together, said again on every run as on the first.
 */
#define INDEX_VERSION 1
static const char schema[] =
        "CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, dev INTEGER NOT NULL,"
        " ino INTEGER NOT NULL, file_id BLOB NOT NULL, n_entries INTEGER NOT NULL, state BLOB NOT NULL,"
        " cursor TEXT, used_usec INTEGER NOT NULL);"
        "CREATE INDEX files_inode ON files(dev, ino);"
        "CREATE TABLE crashes (file INTEGER NOT NULL, realtime INTEGER NOT NULL, id INTEGER NOT NULL,"
        " time_usec INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, pid INTEGER NOT NULL,"
        " signal INTEGER NOT NULL, line INTEGER NOT NULL, host TEXT, machine TEXT, python TEXT, comm TEXT,"
        " exe TEXT, script TEXT, function TEXT, source_file TEXT, signature TEXT, title TEXT, error TEXT,"
        " core_file TEXT, container_id TEXT);"
        "CREATE INDEX crashes_file ON crashes(file);"
        "CREATE INDEX crashes_time ON crashes(time_usec);"
        "CREATE INDEX crashes_host ON crashes(host, id);"
        "CREATE TABLE skipped (file INTEGER NOT NULL, host TEXT, why TEXT NOT NULL);"
        "CREATE INDEX skipped_file ON skipped(file);"
        "PRAGMA user_version = 1;";

#define UNUSED_USEC (30 * 86400 * INT64_C(1000000))  /* a file no run has used this long is dropped */
#define USED_EVERY_USEC (86400 * INT64_C(1000000))   /* how often a run notes it still uses a file */
#define BUSY_MS 10000                                  /* another pystackctl writing it */
#define HEADER_SIZE 208                                /* the journal header up to tail_entry_monotonic */

enum { S_FIND, S_FIND_INODE, S_INSERT, S_ASIDE, S_FORGET_CRASHES, S_FORGET_SKIPPED, S_USED, S_CURRENT, S_ADD,
       S_ADD_SKIPPED, S_DONE, _S_MAX };

struct jindex {
        sqlite3 *db;
        sqlite3_stmt *st[_S_MAX];
        char path[4096];
        bool writing;                   /* in a write transaction */
        int64_t file;                   /* the file being read (files.id) */
        int64_t now;
        /* the checked file's identity and state, written by jindex_read_done */
        int64_t dev, ino, n_entries;
        uint8_t file_id[16], state[65];   /* state: stat's size, mtime, ctime, then the header's tail */
        bool have_header;               /* file_id, n_entries and the state's tail are this file's */
};

static const char *const sql[_S_MAX] = {
        [S_FIND] = "SELECT id, dev, ino, file_id, n_entries, state, cursor, used_usec FROM files WHERE path = ?1",
        [S_FIND_INODE] = "SELECT id, path FROM files WHERE dev = ?1 AND ino = ?2 AND file_id = ?3",
        [S_INSERT] = "INSERT INTO files (path, dev, ino, file_id, n_entries, state, used_usec) "
                     "VALUES (?1, ?2, ?3, ?4, 0, X'', ?5)",
        [S_FORGET_CRASHES] = "DELETE FROM crashes WHERE file = ?1",
        [S_FORGET_SKIPPED] = "DELETE FROM skipped WHERE file = ?1",
        [S_ASIDE] = "UPDATE files SET path = char(1) || id WHERE id = ?1",
        [S_USED] = "UPDATE files SET path = ?2, used_usec = ?3 WHERE id = ?1",
        [S_CURRENT] = "INSERT OR REPLACE INTO temp.current (file, n) VALUES (?1, ?2)",
        [S_ADD] = "INSERT INTO crashes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                  "?17, ?18, ?19, ?20, ?21, ?22)",
        [S_ADD_SKIPPED] = "INSERT INTO skipped VALUES (?1, ?2, ?3)",
        [S_DONE] = "UPDATE files SET n_entries = ?2, state = ?3, cursor = coalesce(?4, cursor), used_usec = ?5 "
                   "WHERE id = ?1",
};

void jcrash_free(struct jcrash *c) {
        char **text[] = { &c->host, &c->machine, &c->python, &c->comm, &c->exe, &c->script, &c->function, &c->file,
                          &c->signature, &c->title, &c->error, &c->core_file, &c->container_id };

        for (size_t i = 0; i < ELEMENTSOF(text); i++)
                free(*text[i]);
}

const char *jindex_path(const struct jindex *x) {
        return x ? x->path : "";
}

static int fail(struct jindex *x, char *err, size_t errsz) {
        errorf(err, errsz, "the index %s: %s", x->path, sqlite3_errmsg(x->db));
        return -EIO;
}

static bool damaged(int rc) {
        rc &= 0xff;
        return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

void jindex_close(struct jindex *x) {
        if (!x)
                return;
        if (x->writing)
                sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
        for (int i = 0; i < _S_MAX; i++)
                sqlite3_finalize(x->st[i]);
        sqlite3_close(x->db);
        free(x);
}

/* The directory the index goes in, made when missing; the caller's own and no one else's: an fd. */
static int index_directory(char *dir, size_t size, char *err, size_t errsz) {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        char base[4096];
        struct stat st;
        int fd;

        if (xdg && xdg[0] == '/')
                snprintf(base, sizeof(base), "%s", xdg);
        else {
                if (!home || home[0] != '/') {
                        struct passwd *pw = getpwuid(geteuid());
                        home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
                }
                if (!home)
                        return errorf(err, errsz, "no home directory for an index"), -ENOENT;
                if ((size_t)snprintf(base, sizeof(base), "%s/.cache", home) >= sizeof(base))
                        return errorf(err, errsz, "the home directory's name is too long"), -ENAMETOOLONG;
        }
        if (mkdir(base, 0700) < 0 && errno != EEXIST)
                return errorf(err, errsz, "%s: %s", base, strerror(errno)), -errno;
        if ((size_t)snprintf(dir, size, "%s/pystackctl", base) >= size)
                return errorf(err, errsz, "%s: too long", base), -ENAMETOOLONG;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return errorf(err, errsz, "%s: %s", dir, strerror(errno)), -errno;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errorf(err, errsz, "%s: %s", dir, strerror(errno)), -errno;
        /* another user could swap or read the index in a directory they may write */
        if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
                close(fd);
                return errorf(err, errsz, "%s is not the caller's alone: no index", dir), -EPERM;
        }
        return fd;
}

static void remove_index(int dirfd) {
        unlinkat(dirfd, "journal-index.sqlite", 0);
        unlinkat(dirfd, "journal-index.sqlite-wal", 0);
        unlinkat(dirfd, "journal-index.sqlite-shm", 0);
}

/* Open (creating) the index in dirfd: 0, -EAGAIN when it must be made again, -errno with err. */
static int open_db(struct jindex *x, int dirfd, char *err, size_t errsz) {
        _cleanup_close_ int fd = openat(dirfd, "journal-index.sqlite", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
                                        O_NOCTTY, 0600);
        struct stat st;
        int version = -1, rc;
        sqlite3_stmt *v = NULL;

        if (fd < 0)
                return errorf(err, errsz, "%s: %s", x->path, strerror(errno)), -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
                return errorf(err, errsz, "%s is not the caller's alone: no index", x->path), -EPERM;
        if (sqlite3_open_v2(x->path, &x->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK)
                return fail(x, err, errsz);
        /* nothing in the file runs code or changes the schema behind our back */
        sqlite3_db_config(x->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        sqlite3_db_config(x->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
        sqlite3_busy_timeout(x->db, BUSY_MS);
        rc = sqlite3_exec(x->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;",
                          NULL, NULL, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_prepare_v2(x->db, "PRAGMA user_version", -1, &v, NULL)) == SQLITE_OK &&
            (rc = sqlite3_step(v)) == SQLITE_ROW) {
                version = sqlite3_column_int(v, 0);
                rc = SQLITE_OK;
        }
        sqlite3_finalize(v);
        if (damaged(rc) || (rc == SQLITE_OK && version != 0 && version != INDEX_VERSION))
                return -EAGAIN;
        if (rc != SQLITE_OK)
                return fail(x, err, errsz);
        if (version == 0) {
                /* a new index; another run may be making it at the same moment */
                rc = sqlite3_exec(x->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
                if (rc == SQLITE_OK && (rc = sqlite3_prepare_v2(x->db, "PRAGMA user_version", -1, &v, NULL)) ==
                    SQLITE_OK) {
                        rc = sqlite3_step(v) == SQLITE_ROW && sqlite3_column_int(v, 0) == INDEX_VERSION ? SQLITE_OK :
                             sqlite3_exec(x->db, schema, NULL, NULL, NULL);
                        sqlite3_finalize(v);
                }
                if (rc == SQLITE_OK)
                        rc = sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL);
                else
                        sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
                if (damaged(rc))
                        return -EAGAIN;
                if (rc != SQLITE_OK)
                        return fail(x, err, errsz);
        }
        rc = sqlite3_exec(x->db, "CREATE TEMP TABLE current (file INTEGER PRIMARY KEY, n INTEGER NOT NULL)", NULL,
                          NULL, NULL);
        for (int i = 0; rc == SQLITE_OK && i < _S_MAX; i++)
                rc = sqlite3_prepare_v3(x->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &x->st[i], NULL);
        if (damaged(rc))
                return -EAGAIN;
        return rc == SQLITE_OK ? 0 : fail(x, err, errsz);
}

int jindex_open(struct jindex **out, char *err, size_t errsz) {
        char dir[4096];
        _cleanup_close_ int dirfd = index_directory(dir, sizeof(dir), err, errsz);
        struct jindex *x;
        int r;

        *out = NULL;
        if (dirfd < 0)
                return 1;
        if (!(x = calloc(1, sizeof(*x))))
                return errorf(err, errsz, "out of memory"), -ENOMEM;
        if ((size_t)snprintf(x->path, sizeof(x->path), "%s/journal-index.sqlite", dir) >= sizeof(x->path)) {
                free(x);
                return errorf(err, errsz, "%s: too long", dir), 1;
        }
        r = open_db(x, dirfd, err, errsz);
        if (r == -EAGAIN) {
                /* damaged, or of another version: it is a cache, made again */
                char path[sizeof(x->path)];
                memcpy(path, x->path, sizeof(path));
                jindex_close(x);
                remove_index(dirfd);
                if (!(x = calloc(1, sizeof(*x))))
                        return errorf(err, errsz, "out of memory"), -ENOMEM;
                memcpy(x->path, path, sizeof(path));
                r = open_db(x, dirfd, err, errsz);
                if (r == -EAGAIN) {
                        errorf(err, errsz, "the index %s is damaged and cannot be made again", x->path);
                        r = -EIO;
                }
        }
        if (r < 0) {
                jindex_close(x);
                return r == -EPERM ? 1 : r;
        }
        x->now = clock_usec(CLOCK_REALTIME);
        *out = x;
        return 0;
}

static int step_done(sqlite3_stmt *st) {
        int rc = sqlite3_step(st);

        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return rc == SQLITE_DONE ? 0 : -EIO;
}

/*
 * The file's identity and times, from stat: enough to see that a file did not change.  An entry
 * is appended through a shared mapping, and the writer then truncates the file to its own size
 * (systemd's journal_file_post_change, for inotify), which moves its mtime and ctime once the entry
 * is whole; a chmod moves the ctime.  false when it is no regular file the caller may read now.
 */
static void put_stat(struct jindex *x, const struct stat *st) {
        x->dev = (int64_t)st->st_dev;
        x->ino = (int64_t)st->st_ino;
        le64_put(x->state, (uint64_t)st->st_size);
        le64_put(x->state + 8, (uint64_t)st->st_mtim.tv_sec);
        le64_put(x->state + 16, (uint64_t)st->st_mtim.tv_nsec);
        le64_put(x->state + 24, (uint64_t)st->st_ctim.tv_sec);
        le64_put(x->state + 32, (uint64_t)st->st_ctim.tv_nsec);
        x->have_header = false;
}

static bool stat_fd(struct jindex *x, int fd) {
        struct stat st;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return false;
        put_stat(x, &st);
        return true;
}

static bool stat_file(struct jindex *x, const char *path) {
        struct stat st;

        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) < 0)
                return false;
        put_stat(x, &st);
        return true;
}

/*
 * What a file that changed is now, from its header (journal-def.h's Header: state at 16, file_id
 * at 24, tail_object_offset at 136, n_entries at 152, tail_entry_seqnum at 160): the same file
 * grown, or another.  false when it is no journal file.
 */
static bool read_header(struct jindex *x, const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        uint8_t h[HEADER_SIZE];

        if (fd < 0 || !stat_fd(x, fd) || pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
            memcmp(h, "LPKSHHRH", 8) != 0)
                return false;
        memcpy(x->file_id, h + 24, 16);
        x->n_entries = (int64_t)(le64_get(h + 152) & INT64_MAX);
        memcpy(x->state + 40, h + 136, 8);
        memcpy(x->state + 48, h + 152, 16);
        x->state[64] = h[16];
        x->have_header = true;
        return true;
}

static int begin_write(struct jindex *x) {
        if (x->writing)
                return 0;
        if (sqlite3_exec(x->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
                return -EIO;
        x->writing = true;
        return 1;
}

/* Another path of a file the index knows (journald renames a file it archives): its row, or 0. */
static int64_t renamed(struct jindex *x) {
        sqlite3_stmt *st = x->st[S_FIND_INODE];
        int64_t id = 0;

        sqlite3_bind_int64(st, 1, x->dev);
        sqlite3_bind_int64(st, 2, x->ino);
        sqlite3_bind_blob(st, 3, x->file_id, sizeof(x->file_id), SQLITE_STATIC);
        while (!id && sqlite3_step(st) == SQLITE_ROW) {
                const char *old = (const char *)sqlite3_column_text(st, 1);
                struct stat s;
                /* set aside (\1), or gone; a hard link has both paths: a row of its own for each */
                if (old && (old[0] == 1 ||
                            !(stat(old, &s) == 0 && (int64_t)s.st_dev == x->dev && (int64_t)s.st_ino == x->ino)))
                        id = sqlite3_column_int64(st, 0);
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return id;
}

/* What the index knows of the file stat_file (and read_header) just looked at. */
enum known { K_CURRENT, K_CURRENT_UNNOTED, K_GREW, K_OTHER_FILE, K_UNKNOWN, K_NEED_HEADER };

#define STAT_STATE 40   /* the state's bytes from stat */

static int look_up(struct jindex *x, const char *path, int64_t *id, char **cursor, enum known *k) {
        sqlite3_stmt *st = x->st[S_FIND];
        int r;

        *id = 0;
        *k = K_UNKNOWN;
        sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
        if ((r = sqlite3_step(st)) == SQLITE_ROW && !x->have_header) {
                /* unchanged since it was read, or its header is needed to say what it is now */
                bool same = sqlite3_column_int64(st, 1) == x->dev && sqlite3_column_int64(st, 2) == x->ino &&
                            sqlite3_column_bytes(st, 5) == sizeof(x->state) &&
                            !memcmp(sqlite3_column_blob(st, 5), x->state, STAT_STATE);

                *id = sqlite3_column_int64(st, 0);
                *k = !same ? K_NEED_HEADER :
                     sqlite3_column_int64(st, 7) > x->now - USED_EVERY_USEC ? K_CURRENT : K_CURRENT_UNNOTED;
        } else if (r == SQLITE_ROW) {
                bool same_file = sqlite3_column_int64(st, 1) == x->dev && sqlite3_column_int64(st, 2) == x->ino &&
                                 sqlite3_column_bytes(st, 3) == 16 &&
                                 !memcmp(sqlite3_column_blob(st, 3), x->file_id, 16) &&
                                 sqlite3_column_int64(st, 4) <= x->n_entries;
                bool same_state = sqlite3_column_bytes(st, 5) == sizeof(x->state) &&
                                  !memcmp(sqlite3_column_blob(st, 5), x->state, sizeof(x->state));
                const char *c = (const char *)sqlite3_column_text(st, 6);

                *id = sqlite3_column_int64(st, 0);
                if (!same_file)
                        *k = K_OTHER_FILE;
                else if (!same_state)
                        *k = K_GREW;
                else
                        *k = sqlite3_column_int64(st, 7) > x->now - USED_EVERY_USEC ? K_CURRENT : K_CURRENT_UNNOTED;
                if (*k == K_GREW && c && !(*cursor = strdup(c)))
                        r = SQLITE_NOMEM;
        } else if (r == SQLITE_DONE && !x->have_header)
                *k = K_NEED_HEADER;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r == SQLITE_ROW || r == SQLITE_DONE ? 0 : r == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

/* look_up, with the file's header read when stat cannot tell: -ENOENT when it is no journal file. */
static int know(struct jindex *x, const char *path, int64_t *id, char **cursor, enum known *k) {
        int r = look_up(x, path, id, cursor, k);

        if (r == 0 && *k == K_NEED_HEADER) {
                if (!read_header(x, path))
                        return -ENOENT;
                r = look_up(x, path, id, cursor, k);
        }
        return r;
}

static int note_use(struct jindex *x, int64_t id, const char *path) {
        sqlite3_stmt *st = x->st[S_USED];

        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, x->now);
        return step_done(st);
}

static int add_file(struct jindex *x, const char *path, int64_t *id) {
        sqlite3_stmt *st = x->st[S_INSERT];

        sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, x->dev);
        sqlite3_bind_int64(st, 3, x->ino);
        sqlite3_bind_blob(st, 4, x->file_id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, x->now);
        if (step_done(st) < 0)
                return -EIO;
        *id = sqlite3_last_insert_rowid(x->db);
        return 0;
}

/*
 * Another file at a known path (journald archives a file by renaming it, and starts a new one
 * under the old name): the old file's row is set aside under no name, for its new name to find
 * (renamed), and the path is a new file.  A row no one finds again is dropped with the unused.
 */
static int set_aside(struct jindex *x, int64_t id, const char *path, int64_t *new_id) {
        sqlite3_stmt *st = x->st[S_ASIDE];

        sqlite3_bind_int64(st, 1, id);
        return step_done(st) ?: add_file(x, path, new_id);
}

int jindex_check(struct jindex *x, const char *path, size_t n, char **cursor, enum jindex_file *state, char *err,
                 size_t errsz) {
        enum known k;
        int64_t id;
        int r;

        *cursor = NULL;
        *state = JINDEX_NOT_A_JOURNAL;
        if (!stat_file(x, path))
                return 0;
        r = know(x, path, &id, cursor, &k);
        if (r == 0 && k != K_CURRENT) {
                /* from here the run writes: look again under the lock, another run may have read it */
                r = begin_write(x);
                if (r > 0) {
                        free(*cursor);
                        *cursor = NULL;
                        r = know(x, path, &id, cursor, &k);
                }
        }
        if (r == -ENOENT)
                return 0;
        if (r == 0 && k == K_UNKNOWN && (id = renamed(x)) != 0) {
                /* known under a name it no longer has (journald renames the files it archives) */
                r = note_use(x, id, path) ?: look_up(x, path, &id, cursor, &k);
        }
        if (r == 0) {
                if (k == K_CURRENT_UNNOTED)
                        r = note_use(x, id, path);
                else if (k == K_UNKNOWN)
                        r = add_file(x, path, &id);
                else if (k == K_OTHER_FILE)
                        r = set_aside(x, id, path, &id);
        }
        if (r == 0) {
                sqlite3_bind_int64(x->st[S_CURRENT], 1, id);
                sqlite3_bind_int64(x->st[S_CURRENT], 2, (int64_t)n);
                r = step_done(x->st[S_CURRENT]);
        }
        if (r < 0) {
                free(*cursor);
                *cursor = NULL;
                return r == -ENOMEM ? (errorf(err, errsz, "out of memory"), r) : fail(x, err, errsz);
        }
        x->file = id;
        *state = k == K_CURRENT || k == K_CURRENT_UNNOTED ? JINDEX_CURRENT : JINDEX_READ;
        return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
        if (s)
                sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i);
}

int jindex_add(struct jindex *x, const struct jcrash *c) {
        sqlite3_stmt *st = x->st[S_ADD];
        const char *text[] = { c->host, c->machine, c->python, c->comm, c->exe, c->script, c->function, c->file,
                               c->signature, c->title, c->error, c->core_file, c->container_id };

        sqlite3_bind_int64(st, 1, x->file);
        sqlite3_bind_int64(st, 2, (int64_t)(c->realtime & INT64_MAX));
        sqlite3_bind_int64(st, 3, c->id);
        sqlite3_bind_int64(st, 4, c->time_usec);
        sqlite3_bind_int64(st, 5, c->uid);
        sqlite3_bind_int64(st, 6, c->gid);
        sqlite3_bind_int64(st, 7, c->pid);
        sqlite3_bind_int64(st, 8, c->signal);
        sqlite3_bind_int64(st, 9, c->line);
        for (size_t i = 0; i < ELEMENTSOF(text); i++)
                bind_text(st, 10 + (int)i, text[i]);
        return step_done(st);
}

int jindex_add_skipped(struct jindex *x, const char *host, const char *why) {
        sqlite3_stmt *st = x->st[S_ADD_SKIPPED];

        sqlite3_bind_int64(st, 1, x->file);
        bind_text(st, 2, host);
        bind_text(st, 3, why);
        return step_done(st);
}

int jindex_read_again(struct jindex *x) {
        sqlite3_bind_int64(x->st[S_FORGET_CRASHES], 1, x->file);
        sqlite3_bind_int64(x->st[S_FORGET_SKIPPED], 1, x->file);
        return step_done(x->st[S_FORGET_CRASHES]) ?: step_done(x->st[S_FORGET_SKIPPED]);
}

int jindex_read_done(struct jindex *x, const char *cursor) {
        sqlite3_stmt *st = x->st[S_DONE];

        sqlite3_bind_int64(st, 1, x->file);
        sqlite3_bind_int64(st, 2, x->n_entries);
        sqlite3_bind_blob(st, 3, x->state, sizeof(x->state), SQLITE_STATIC);
        bind_text(st, 4, cursor);
        sqlite3_bind_int64(st, 5, x->now);
        return step_done(st);
}

int jindex_commit(struct jindex *x, char *err, size_t errsz) {
        char drop[256];

        if (!x->writing)
                return 0;
        snprintf(drop, sizeof(drop),
                 "DELETE FROM crashes WHERE file IN (SELECT id FROM files WHERE used_usec < %lld);"
                 "DELETE FROM skipped WHERE file IN (SELECT id FROM files WHERE used_usec < %lld);"
                 "DELETE FROM files WHERE used_usec < %lld;", (long long)(x->now - UNUSED_USEC),
                 (long long)(x->now - UNUSED_USEC), (long long)(x->now - UNUSED_USEC));
        if (sqlite3_exec(x->db, drop, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                return fail(x, err, errsz);
        x->writing = false;
        return 0;
}

static char *column_dup(sqlite3_stmt *st, int i, bool *oom) {
        const char *s = (const char *)sqlite3_column_text(st, i);
        char *d = s ? strdup(s) : NULL;

        if (s && !d)
                *oom = true;
        return d;
}

int jindex_load(struct jindex *x, int64_t since, int64_t until, const char *host, int64_t id, struct jcrash **out,
                size_t *n, char *err, size_t errsz) {
        char q[1024];
        sqlite3_stmt *st = NULL;
        size_t allocated = 0;
        bool oom = false;
        int rc;

        *out = NULL;
        *n = 0;
        snprintf(q, sizeof(q),
                 "SELECT cur.n, c.realtime, c.id, c.time_usec, c.uid, c.gid, c.pid, c.signal, c.line, c.host, "
                 "c.machine, c.python, c.comm, c.exe, c.script, c.function, c.source_file, c.signature, c.title, "
                 "c.error, c.core_file, c.container_id FROM temp.current cur JOIN crashes c ON c.file = cur.file "
                 "WHERE c.time_usec >= ?1 AND c.time_usec <= ?2%s%s",
                 host ? " AND c.host = ?3" : "", id >= 0 ? " AND c.id = ?4" : "");
        if (sqlite3_prepare_v2(x->db, q, -1, &st, NULL) != SQLITE_OK)
                return fail(x, err, errsz);
        sqlite3_bind_int64(st, 1, since);
        sqlite3_bind_int64(st, 2, until);
        bind_text(st, 3, host);
        sqlite3_bind_int64(st, 4, id);
        while (!oom && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct jcrash *c;

                if (grow_array(out, &allocated, *n + 1, sizeof(**out)) < 0) {
                        oom = true;
                        break;
                }
                c = &(*out)[(*n)++];
                *c = (struct jcrash) {
                        .path = (size_t)sqlite3_column_int64(st, 0), .realtime = (uint64_t)sqlite3_column_int64(st, 1),
                        .id = sqlite3_column_int64(st, 2), .time_usec = sqlite3_column_int64(st, 3),
                        .uid = sqlite3_column_int64(st, 4), .gid = sqlite3_column_int64(st, 5),
                        .pid = (int32_t)sqlite3_column_int64(st, 6), .signal = sqlite3_column_int(st, 7),
                        .line = sqlite3_column_int(st, 8),
                };
                char **text[] = { &c->host, &c->machine, &c->python, &c->comm, &c->exe, &c->script, &c->function,
                                  &c->file, &c->signature, &c->title, &c->error, &c->core_file, &c->container_id };
                for (size_t i = 0; i < ELEMENTSOF(text); i++)
                        *text[i] = column_dup(st, 9 + (int)i, &oom);
        }
        if (!oom && rc != SQLITE_DONE) {
                fail(x, err, errsz);
                sqlite3_finalize(st);
                return -EIO;
        }
        sqlite3_finalize(st);
        if (oom)
                return errorf(err, errsz, "out of memory"), -ENOMEM;
        return 0;
}

int jindex_skipped(struct jindex *x, void (*say)(void *userdata, const char *host, const char *why), void *userdata) {
        sqlite3_stmt *st = NULL;
        int rc;

        if (sqlite3_prepare_v2(x->db, "SELECT s.host, s.why FROM temp.current cur JOIN skipped s ON s.file = cur.file "
                               "ORDER BY cur.n, s.rowid", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                say(userdata, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : -EIO;
}
