/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * journal_index: what pystackctl --directory/--file learned from journal files, kept so the next
 * question does not read them again.
 *
 * Reading a fleet's journals costs one open per file and a pass over every crash entry (1,000
 * files, 100,000 crashes: 0.6 s for list, 2 s for groups, 0.3 s to find one crash to show).  The
 * index is a SQLite file of the caller's own (XDG_CACHE_HOME or ~/.cache, mode 0600 in a 0700
 * directory) holding, per journal file, the crash entries as list reads them and the entries that
 * did not hold together.  A file whose inode, size, mtime and ctime are those the index saw is
 * not opened; one that changed has its header read: journal files are only ever appended to, so
 * a file that grew is read on from the last entry the index saw, and one that is another file now
 * (another inode or file id) from its start.
 *
 * It is a cache: everything in it can be read again from the journals; a damaged index is made
 * again and a foreign one not used.  Its schema (in journal_index.c) has a version; another
 * version is made again.  A file is answered from the index only when this run found that the
 * caller may read it (faccessat), so the index never answers for a file the caller can no longer
 * read.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One crash entry: what list, groups and info print, as the entry said it. */
struct jcrash {
        int64_t id, time_usec, uid, gid;
        uint64_t realtime;              /* when the entry was written (a newer analysis replaces an older) */
        int32_t pid;
        int signal, line;
        char *host, *machine, *python, *comm, *exe, *script, *function, *file, *signature, *title, *error;
        char *core_file, *container_id;
        uint64_t who[2];                /* the machine id as a number (or a hash of the host name) */
        uint64_t sig;                   /* the signature as a number (they are 16 hex digits) */
        size_t path;                    /* from the index: which of the run's files holds it */
};

void jcrash_free(struct jcrash *c);

struct jindex;

/*
 * The caller's index, created when missing.  0 and *out; 1 when there is none to use (no home
 * directory, or the directory or file is not the caller's alone: said in err); -errno with err.
 * An index of another schema version, or one SQLite finds damaged, is replaced.
 */
int jindex_open(struct jindex **out, char *err, size_t errsz);
void jindex_close(struct jindex *x);
/* Where the index is (for messages), or "". */
const char *jindex_path(const struct jindex *x);

enum jindex_file {
        JINDEX_CURRENT,         /* the index holds every entry of the file */
        JINDEX_READ,            /* read the file's entries from *cursor on (NULL: from its start) */
        JINDEX_NOT_A_JOURNAL,   /* it cannot be opened, or its header is no journal's: read it directly */
};

/*
 * File n of this run, at path: whether the index holds its entries.  For JINDEX_READ the file's
 * old entries are gone from the index when it is another file now, *cursor (malloc'ed, or NULL)
 * says where to go on from, and jindex_add, jindex_add_skipped and jindex_read_done follow for
 * it.  A write transaction is open from the first file that needs reading to jindex_commit.
 * -errno with err when the index fails.  Cost: a stat, an access check and a lookup; an open and
 * a 208-byte read when the file changed.
 */
int jindex_check(struct jindex *x, const char *path, size_t n, char **cursor, enum jindex_file *state, char *err,
                 size_t errsz);
int jindex_add(struct jindex *x, const struct jcrash *c);
int jindex_add_skipped(struct jindex *x, const char *host, const char *why);
/* The file checked last is read from its start after all: what the index had of it is forgotten. */
int jindex_read_again(struct jindex *x);
/* The file checked last was read to its end; cursor: its last crash entry's, or NULL. */
int jindex_read_done(struct jindex *x, const char *cursor);
int jindex_commit(struct jindex *x, char *err, size_t errsz);

/*
 * The indexed crashes of this run's files (those jindex_check called CURRENT or READ) with a
 * time in [since, until], narrowed to one host and one id when host / id >= 0 say so; each with
 * .path, the n it was checked with.  0 and *out (malloc'ed, *n of them), or -errno with err.
 */
int jindex_load(struct jindex *x, int64_t since, int64_t until, const char *host, int64_t id, struct jcrash **out,
                size_t *n, char *err, size_t errsz);

/* The entries of this run's files that did not hold together, each: say(host or NULL, why). */
int jindex_skipped(struct jindex *x, void (*say)(void *userdata, const char *host, const char *why), void *userdata);
