/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <systemd/sd-journal.h>

#include "cmdline.h"
#include "escape.h"
#include "journal_answer.h"
#include "journal_index.h"
#include "json.h"
#include "report_text.h"
#include "util.h"

#define MESSAGE_ID "fc2e22bc6ee647b6b90729ab34a250b1"   /* systemd-coredump's, which pystackd uses */
#define FIELD_MAX 4096                  /* a field list and info read is cut here */
#define REPORT_MAX (16u << 20)          /* JournalReportMax's upper bound: a larger field is no report of ours */
#define MAX_FILES 100000                /* files --file's patterns may name */
#define MAX_SKIPPED_SAID 20             /* entries that do not hold together, each said in a line */

/* 32 hex digits as two numbers, or a hash (FNV-1a) of whatever the machine is known by. */
static void who_key(const char *machine, const char *host, uint64_t k[2]) {
        char part[17];

        if (machine && strlen(machine) == 32 && strspn(machine, "0123456789abcdef") == 32) {
                memcpy(part, machine, 16);
                part[16] = 0;
                k[0] = strtoull(part, NULL, 16);
                k[1] = strtoull(machine + 16, NULL, 16);
                return;
        }
        /* no machine id: a hash of the name (a collision merges two hosts' counts, never a crash) */
        k[1] = 14695981039346656037ull;
        for (const char *p = machine ? machine : host ? host : ""; *p; p++)
                k[1] = (k[1] ^ (unsigned char)*p) * 1099511628211ull;
        k[0] = 0;
}

struct reader {
        sd_journal *j;                  /* the journal being read */
        char **paths;                   /* its files, read one at a time (NULL: --merge, one journal) */
        size_t n_paths;
        const struct query *q;
        unsigned skipped;
        bool groups_only;               /* groups: only what counts, who and when */
        char *container;                /* CONTAINER=: a prefix, matched here (the journal matches whole values) */
        struct jindex *index;           /* what earlier runs read, or NULL (--merge, --no-index, none to use) */
        bool indexing;                  /* reading a file for the index: every entry, every field */
        bool index_failed;              /* a write to the index failed: the run goes on without it */
};

/* A field's value in an entry's data ("NAME=value"): a C string of at most max bytes (a NUL inside
 * ends it: nothing after it is printed). */
static char *value_dup(const void *data, size_t len, size_t name_len, size_t max) {
        size_t n = len - name_len - 1;
        char *s;

        if (n > max)
                n = max;
        s = malloc(n + 1);
        if (s) {
                memcpy(s, (const char *)data + name_len + 1, n);
                s[n] = 0;
        }
        return s;
}

static bool parse_int(const char *s, int64_t min, int64_t max, int64_t *out) {
        char *end;
        long long v;

        if (!s || !*s || strlen(s) > 24)
                return false;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return false;
        *out = v;
        return true;
}

/* Field `name` of the current entry, at most max bytes of it, as a C string; NULL when absent. */
static char *get_max(sd_journal *j, const char *name, size_t max) {
        const void *data;
        size_t len, n = strlen(name);

        if (sd_journal_get_data(j, name, &data, &len) < 0 || len < n + 1 || memcmp(data, name, n) != 0 ||
            ((const char *)data)[n] != '=')
                return NULL;
        return value_dup(data, len, n, max);
}

static char *get(sd_journal *j, const char *name) {
        return get_max(j, name, FIELD_MAX);
}

/* An integer field within [min, max]: true and *out. */
static bool get_int(sd_journal *j, const char *name, int64_t min, int64_t max, int64_t *out) {
        _cleanup_free_ char *s = get_max(j, name, 32);

        return parse_int(s, min, max, out);
}

/* An entry that does not hold together: one line, escaped, for the first few; counted after. */
static void say_skipped(void *userdata, const char *host, const char *why) {
        struct reader *r = userdata;

        if (r->skipped++ < MAX_SKIPPED_SAID) {
                fputs("pystackctl: skipped an entry", stderr);
                if (host) {
                        fputs(" of host ", stderr);
                        esc_fputs(stderr, host);
                }
                fputs(": ", stderr);
                esc_fputs(stderr, why ? why : "?");
                fputc('\n', stderr);
        }
}

/* An entry that does not hold together: said, or for the index kept to be said on every run. */
static void skip(struct reader *r, const char *why) {
        _cleanup_free_ char *host = get(r->j, "_HOSTNAME");

        if (r->indexing) {
                if (jindex_add_skipped(r->index, host, why) < 0)
                        r->index_failed = true;
        }
        else
                say_skipped(r, host, why);
}

static void said_skipped(const struct reader *r) {
        if (r->skipped > MAX_SKIPPED_SAID)
                fprintf(stderr, "pystackctl: %u more entries skipped\n", r->skipped - MAX_SKIPPED_SAID);
}

/* What the entry's text says that is kept as numbers: who wrote it, and its signature. */
static void crash_keys(struct jcrash *c) {
        who_key(c->machine, c->host, c->who);
        /* the signature names a group: 16 hex digits, as pystackd writes it, or none */
        if (c->signature && (strlen(c->signature) != 16 || strspn(c->signature, "0123456789abcdef") != 16)) {
                free(c->signature);
                c->signature = NULL;
        }
        c->sig = c->signature ? strtoull(c->signature, NULL, 16) : 0;
}

/*
 * The current entry as a crash: 1, 0 when it is skipped (said so, if it does not hold together).
 *
 * One pass over the entry's fields, stopped once every field list reads was seen.  Looking fields
 * up one by one goes through all of an entry's fields for each (sd_journal_get_data), and the
 * journal compresses a field over 512 bytes, which then must be decompressed to see its name: with
 * the reports in every entry, 300 µs an entry.  pystackd writes the reports last, so the pass
 * stops before them.  The fields are met in the order their values were first written to the
 * file, so a value an entry shares with an older one (the same report twice) comes early: the
 * pass stops on what it has seen, not at a name.  Reading for the index every field is kept; a
 * container's id, when there is one, was first written before the crash's own id and time.
 */
static int read_entry(struct reader *r, struct jcrash *c) {
        enum { F_ID, F_PID, F_UID, F_GID, F_SIG, F_TIME, F_LINE, F_HOST, F_MACHINE, F_PY, F_COMM, F_EXE, F_SCRIPT,
               F_FUNC, F_FILE, F_SIGNATURE, F_TITLE, F_CORE, F_ERROR, F_CONTAINER, F_MAX };
#define N(s) { s, sizeof(s) - 1 }
        static const struct { const char *name; size_t len; } names[F_MAX] = {
                [F_ID] = N("PYSTACK_CRASH_ID"), [F_PID] = N("COREDUMP_PID"), [F_UID] = N("COREDUMP_UID"),
                [F_GID] = N("COREDUMP_GID"), [F_SIG] = N("COREDUMP_SIGNAL"), [F_TIME] = N("COREDUMP_TIMESTAMP"),
                [F_LINE] = N("PYSTACK_LINE"), [F_HOST] = N("_HOSTNAME"), [F_MACHINE] = N("_MACHINE_ID"),
                [F_PY] = N("PYSTACK_PYTHON_VERSION"), [F_COMM] = N("COREDUMP_COMM"), [F_EXE] = N("COREDUMP_EXE"),
                [F_SCRIPT] = N("PYSTACK_SCRIPT"), [F_FUNC] = N("PYSTACK_FUNCTION"), [F_FILE] = N("PYSTACK_FILE"),
                [F_SIGNATURE] = N("PYSTACK_SIGNATURE"), [F_TITLE] = N("PYSTACK_TITLE"),
                [F_CORE] = N("COREDUMP_FILENAME"), [F_ERROR] = N("PYSTACK_ANALYSIS_ERROR"),
                [F_CONTAINER] = N("PYSTACK_CONTAINER_ID"),
        };
#undef N
        /* what groups reads: whether the entry holds together, and its host, signature, title */
        const uint32_t groups_fields = 1u << F_ID | 1u << F_PID | 1u << F_UID | 1u << F_GID | 1u << F_SIG |
                                       1u << F_TIME | 1u << F_HOST | 1u << F_MACHINE | 1u << F_SIGNATURE |
                                       1u << F_TITLE;
        uint32_t fields = r->indexing ? (1u << F_MAX) - 1 : r->groups_only ? groups_fields :
                          ((1u << F_MAX) - 1) & ~(r->container ? 0 : 1u << F_CONTAINER);
        char *v[F_MAX] = {};
        /* an analysed crash has every field but the error (and a container's id only in a
         * container): the pass stops when it saw them; a failed crash's has no report to stop
         * before */
        unsigned want = (unsigned)__builtin_popcount(fields & ~(1u << F_ERROR) & ~(r->indexing ? 1u << F_CONTAINER : 0)),
                 seen = 0;
        const void *data;
        size_t len;
        int64_t x;

        *c = (struct jcrash) {};
        SD_JOURNAL_FOREACH_DATA(r->j, data, len) {
                const char *eq = memchr(data, '=', len);
                size_t nl = eq ? (size_t)(eq - (const char *)data) : 0;

                if (!eq)
                        continue;
                for (unsigned i = 0; i < F_MAX; i++)
                        if (names[i].len == nl && !memcmp(data, names[i].name, nl)) {
                                if (!v[i] && (fields & (1u << i))) {
                                        v[i] = value_dup(data, len, nl, FIELD_MAX);
                                        seen += i != F_ERROR && !(r->indexing && i == F_CONTAINER);
                                }
                                break;
                        }
                if (seen >= want)
                        break;
        }
        int ok = 0;
        if (!parse_int(v[F_ID], 1, INT64_MAX, &c->id))
                skip(r, "no valid PYSTACK_CRASH_ID");
        else if (!parse_int(v[F_PID], 1, INT32_MAX, &x))
                skip(r, "no valid COREDUMP_PID");
        else if (c->pid = (int32_t)x, !parse_int(v[F_UID], 0, UINT32_MAX, &c->uid) ||
                 !parse_int(v[F_GID], 0, UINT32_MAX, &c->gid))
                skip(r, "no valid COREDUMP_UID or COREDUMP_GID");
        else if (!parse_int(v[F_SIG], 1, 64, &x))
                skip(r, "no valid COREDUMP_SIGNAL");
        else if (c->signal = (int)x, !parse_int(v[F_TIME], 0, INT64_MAX, &c->time_usec))
                skip(r, "no valid COREDUMP_TIMESTAMP");
        else
                ok = 1;
        if (v[F_FUNC] && parse_int(v[F_LINE], -1, INT32_MAX, &x))
                c->line = (int)x;
        for (unsigned i = 0; i < F_MAX; i++)
                if (i <= F_LINE)
                        free(v[i]);
        c->host = v[F_HOST], c->machine = v[F_MACHINE], c->python = v[F_PY], c->comm = v[F_COMM];
        c->exe = v[F_EXE], c->script = v[F_SCRIPT], c->function = v[F_FUNC], c->file = v[F_FILE];
        c->signature = v[F_SIGNATURE], c->title = v[F_TITLE], c->core_file = v[F_CORE], c->error = v[F_ERROR];
        c->container_id = v[F_CONTAINER];
        if (!ok) {
                jcrash_free(c);
                return 0;
        }
        if (sd_journal_get_realtime_usec(r->j, &c->realtime) < 0)
                c->realtime = 0;
        crash_keys(c);
        return 1;
}

/* One match against what the entry said (the journal's matches compare the field's text). */
static bool match_one(const struct jcrash *c, const struct match *m) {
        char num[24];

        switch (m->key) {
        case MATCH_ID: snprintf(num, sizeof(num), "%lld", (long long)c->id); break;
        case MATCH_PID: snprintf(num, sizeof(num), "%d", c->pid); break;
        case MATCH_UID: snprintf(num, sizeof(num), "%lld", (long long)c->uid); break;
        case MATCH_SIG: snprintf(num, sizeof(num), "%d", c->signal); break;
        case MATCH_COMM: return c->comm && !strcmp(c->comm, m->value);
        case MATCH_EXE: return c->exe && !strcmp(c->exe, m->value);
        case MATCH_SIGNATURE: return c->signature && !strcmp(c->signature, m->value);
        case MATCH_HOST: return c->host && !strcmp(c->host, m->value);
        case MATCH_MACHINE_ID: return c->machine && !strcmp(c->machine, m->value);
        default: return true;   /* CONTAINER=: a prefix, below */
        }
        return !strcmp(num, m->value);
}

/*
 * Whether the crash is one the query asks for: its matches as the journal applies them (the same
 * key twice: either; different keys: both), the container's prefix and the time window.
 */
static bool wanted(const struct reader *r, const struct jcrash *c, bool check_matches) {
        const struct query *q = r->q;

        for (int k = 0; check_matches && k < _MATCH_MAX; k++) {
                bool asked = false, one = false;
                for (size_t i = 0; i < q->n_matches; i++)
                        if ((int)q->matches[i].key == k) {
                                asked = true;
                                one = one || match_one(c, &q->matches[i]);
                        }
                if (asked && !one)
                        return false;
        }
        if (r->container && !(c->container_id && !strncmp(c->container_id, r->container, strlen(r->container))))
                return false;
        return c->time_usec >= q->since && c->time_usec <= q->until;
}

/* The current entry, which the journal's matches found, as a crash the query asks for: 1, or 0. */
static int read_crash(struct reader *r, struct jcrash *c) {
        if (read_entry(r, c) <= 0)
                return 0;
        if (!wanted(r, c, false)) {
                jcrash_free(c);
                return 0;
        }
        return 1;
}

static void row_of(const struct jcrash *c, struct crash_row *row) {
        *row = (struct crash_row) {
                .id = c->id, .time_usec = c->time_usec, .uid = c->uid, .gid = c->gid, .pid = c->pid,
                .signal = c->signal, .python_version = c->python, .core = c->core_file ? "on its host" : "none",
                .comm = c->comm, .exe = c->exe, .script = c->script, .function = c->function, .file = c->file,
                .line = c->line, .state = c->error ? "failed" : "done", .error = c->error, .signature = c->signature,
                .host = c->host ? c->host : "?",
        };
}

/* ---- opening ---- */

static int add_matches(sd_journal *j, const struct query *q, bool query_matches) {
        static const char *const fields[_MATCH_MAX] = {
                [MATCH_ID] = "PYSTACK_CRASH_ID", [MATCH_PID] = "COREDUMP_PID", [MATCH_COMM] = "COREDUMP_COMM",
                [MATCH_EXE] = "COREDUMP_EXE", [MATCH_UID] = "COREDUMP_UID", [MATCH_SIG] = "COREDUMP_SIGNAL",
                [MATCH_SIGNATURE] = "PYSTACK_SIGNATURE", [MATCH_HOST] = "_HOSTNAME",
                [MATCH_MACHINE_ID] = "_MACHINE_ID",
        };
        char m[512];
        int r;

        /* pystackd's entries: systemd-coredump's own have the same MESSAGE_ID */
        if ((r = sd_journal_add_match(j, "MESSAGE_ID=" MESSAGE_ID, 0)) < 0 ||
            (r = sd_journal_add_match(j, "SYSLOG_IDENTIFIER=pystackd", 0)) < 0)
                return r;
        for (size_t i = 0; query_matches && i < q->n_matches; i++) {
                const struct match *x = &q->matches[i];

                if (!fields[x->key])    /* CONTAINER=: a prefix, matched as the entries are read */
                        continue;
                snprintf(m, sizeof(m), "%s=%s", fields[x->key], x->value);
                if ((r = sd_journal_add_match(j, m, 0)) < 0)
                        return r;
        }
        return 0;
}

static bool journal_name(const char *name) {
        size_t n = strlen(name);

        return (n > 8 && !strcmp(name + n - 8, ".journal")) || (n > 9 && !strcmp(name + n - 9, ".journal~"));
}

static int add_path(struct reader *rd, size_t *allocated, const char *path) {
        char *p;

        if (rd->n_paths >= MAX_FILES)
                return -E2BIG;
        if (grow_array(&rd->paths, allocated, rd->n_paths + 2, sizeof(*rd->paths)) < 0 || !(p = strdup(path)))
                return -ENOMEM;
        rd->paths[rd->n_paths++] = p;
        rd->paths[rd->n_paths] = NULL;
        return 0;
}

/* The journal files of dir and of its subdirectories (machine ids, remote/), depth levels down. */
static int add_directory(struct reader *rd, size_t *allocated, const char *dir, int depth) {
        struct dirent **names = NULL;
        int n = scandir(dir, &names, NULL, alphasort), r = 0;

        if (n < 0)
                return -errno;
        for (int i = 0; i < n; i++) {
                char path[PATH_MAX];
                struct stat st;

                if (r == 0 && names[i]->d_name[0] != '.' &&
                    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) < sizeof(path) &&
                    lstat(path, &st) == 0) {
                        if (S_ISREG(st.st_mode) && journal_name(names[i]->d_name))
                                r = add_path(rd, allocated, path);
                        else if (S_ISDIR(st.st_mode) && depth > 0)
                                r = add_directory(rd, allocated, path, depth - 1) == -E2BIG ? -E2BIG : 0;
                }
                free(names[i]);
        }
        free(names);
        return r;
}

/*
 * The files to read, each on its own: sd-journal steps through many files at once by looking at
 * every file for each entry (1,000 files: 100 µs an entry); read one by one and sorted here, each
 * entry costs the same however many files there are.  --merge: the system's journals, as one.
 */
static int find_files(const struct journal_source *src, struct reader *rd, char *err, size_t errsz) {
        size_t allocated = 0;
        int r = 0;

        if (src->directory) {
                r = add_directory(rd, &allocated, src->directory, 2);
                if (r == -E2BIG)
                        return errorf(err, errsz, "%s: more than %d journal files", src->directory, MAX_FILES), r;
                if (r < 0)
                        return errorf(err, errsz, "%s: %s", src->directory, strerror(-r)), r;
                if (rd->n_paths == 0)
                        return errorf(err, errsz, "%s: no journal files", src->directory), -ENOENT;
        } else if (src->files) {
                glob_t g = {};
                int flags = 0;

                for (char **p = src->files; *p; p++) {
                        int gr = glob(*p, flags, NULL, &g);
                        if (gr != 0 && gr != GLOB_NOMATCH) {
                                globfree(&g);
                                return errorf(err, errsz, "--file=%s: cannot be expanded", *p), -EINVAL;
                        }
                        flags = GLOB_APPEND;
                }
                for (size_t i = 0; r == 0 && i < g.gl_pathc; i++)
                        r = add_path(rd, &allocated, g.gl_pathv[i]);
                globfree(&g);
                if (r == -E2BIG)
                        return errorf(err, errsz, "--file: more than %d files match", MAX_FILES), r;
                if (r < 0)
                        return errorf(err, errsz, "out of memory"), r;
                if (rd->n_paths == 0)
                        return errorf(err, errsz, "--file: no journal file matches"), -ENOENT;
        }
        return 0;
}

/*
 * Journal i of the reader (a file, or with --merge the system's), with pystackd's matches, and the
 * query's unless the file is read for the index (which keeps every crash).
 */
static int open_one(struct reader *rd, size_t i) {
        const char *one[2] = { rd->paths ? rd->paths[i] : NULL, NULL };
        int r = rd->paths ? sd_journal_open_files(&rd->j, one, 0) : sd_journal_open(&rd->j, 0);

        if (r < 0) {
                rd->j = NULL;
                if (rd->paths) {
                        /* one unreadable file among many: said, and the others read */
                        fputs("pystackctl: cannot open ", stderr);
                        esc_fputs(stderr, rd->paths[i]);
                        fprintf(stderr, ": %s\n", strerror(-r));
                }
                return r;
        }
        r = add_matches(rd->j, rd->q, !rd->indexing);
        if (r < 0) {
                sd_journal_close(rd->j);
                rd->j = NULL;
                return r;
        }
        /* list reads short fields; a report is read whole by show only */
        sd_journal_set_data_threshold(rd->j, FIELD_MAX + 64);
        return 0;
}

static void close_one(struct reader *rd) {
        sd_journal_close(rd->j);
        rd->j = NULL;
}

static size_t n_journals(const struct reader *rd) {
        return rd->paths ? rd->n_paths : 1;
}

/* ---- list ---- */

static int by_time(const void *a, const void *b) {
        const struct jcrash *x = a, *y = b;
        int c;

        if (x->time_usec != y->time_usec)
                return x->time_usec < y->time_usec ? -1 : 1;
        c = strcmp(x->host ? x->host : "", y->host ? y->host : "");
        return c ? c : x->id < y->id ? -1 : x->id > y->id;
}

/* The same crash twice (an analysis again, or a journal read twice): by machine, id and time. */
static int by_crash(const void *a, const void *b) {
        const struct jcrash *x = a, *y = b;

        if (x->who[0] != y->who[0])
                return x->who[0] < y->who[0] ? -1 : 1;
        if (x->who[1] != y->who[1])
                return x->who[1] < y->who[1] ? -1 : 1;
        if (x->id != y->id)
                return x->id < y->id ? -1 : 1;
        if (x->time_usec != y->time_usec)
                return x->time_usec < y->time_usec ? -1 : 1;
        return x->realtime < y->realtime ? -1 : x->realtime > y->realtime;
}

static bool by_crash_key_differs(const struct jcrash *x, const struct jcrash *y) {
        return x->who[0] != y->who[0] || x->who[1] != y->who[1] || x->id != y->id || x->time_usec != y->time_usec;
}

static void free_all(struct jcrash *c, size_t n) {
        for (size_t i = 0; i < n; i++)
                jcrash_free(&c[i]);
        free(c);
}

static int append(struct jcrash **out, size_t *n, size_t *allocated, struct jcrash *c) {
        if (grow_array(out, allocated, *n + 1, sizeof(**out)) < 0) {
                jcrash_free(c);
                return -ENOMEM;
        }
        (*out)[(*n)++] = *c;
        return 0;
}

/* The crashes of journal f that the query asks for, read from it. */
static int read_journal(struct reader *rd, size_t f, struct jcrash **out, size_t *n, size_t *allocated) {
        int r;

        if (open_one(rd, f) < 0)
                return rd->paths ? 0 : -EIO;
        r = rd->q->since != INT64_MIN ? sd_journal_seek_realtime_usec(rd->j, (uint64_t)rd->q->since) :
                                         sd_journal_seek_head(rd->j);
        while (r >= 0 && (r = sd_journal_next(rd->j)) > 0) {
                struct jcrash c;

                if (read_crash(rd, &c) <= 0)
                        continue;
                c.path = f;
                if (append(out, n, allocated, &c) < 0) {
                        close_one(rd);
                        return -ENOMEM;
                }
        }
        /* a file that breaks off (corrupt) gives what it had */
        close_one(rd);
        return 0;
}

/*
 * Journal f's entries from cursor on (NULL: all) into the index.  -ENOTRECOVERABLE when the
 * index failed (the run goes on without it).
 */
static int index_journal(struct reader *rd, size_t f, const char *cursor) {
        _cleanup_free_ char *last = NULL;
        bool first = true;
        int r;

        rd->indexing = true;
        if (open_one(rd, f) < 0) {
                /* said; the index keeps the file unread, for the next run to try */
                rd->indexing = false;
                return 0;
        }
        if (cursor && sd_journal_seek_cursor(rd->j, cursor) < 0) {
                /* where it left off is not there (a damaged file): read it all again */
                if (jindex_read_again(rd->index) < 0)
                        rd->index_failed = true;
                cursor = NULL;
        }
        if (!cursor)
                sd_journal_seek_head(rd->j);
        while ((r = sd_journal_next(rd->j)) > 0 && !rd->index_failed) {
                struct jcrash c;

                if (first && cursor && sd_journal_test_cursor(rd->j, cursor) > 0) {
                        first = false;
                        continue;
                }
                first = false;
                if (read_entry(rd, &c) > 0) {
                        if (jindex_add(rd->index, &c) < 0)
                                rd->index_failed = true;
                        jcrash_free(&c);
                }
                free(last);
                if (sd_journal_get_cursor(rd->j, &last) < 0)
                        last = NULL;
        }
        close_one(rd);
        rd->indexing = false;
        /* a file that breaks off (corrupt) gives what it had, to the index as to a reader */
        if (rd->index_failed || jindex_read_done(rd->index, last ? last : cursor) < 0)
                return -ENOTRECOVERABLE;
        return 0;
}

/* One value for the key among the matches, or NULL (none, or several: the journal ORs those). */
static const char *only_match(const struct query *q, enum match_key key) {
        const char *v = NULL;

        for (size_t i = 0; i < q->n_matches; i++)
                if (q->matches[i].key == key) {
                        if (v)
                                return NULL;
                        v = q->matches[i].value;
                }
        return v;
}

/*
 * The crashes the query asks for, through the index: each file checked, the new entries of those
 * that changed read into it, the answer from it.  -ENOTRECOVERABLE (with err) when the index
 * cannot be used; -ENOMEM.
 */
static int collect_indexed(struct reader *rd, struct jcrash **out, size_t *n, size_t *allocated, char *err,
                           size_t errsz) {
        const struct query *q = rd->q;
        const char *host = only_match(q, MATCH_HOST), *id = only_match(q, MATCH_ID);
        struct jcrash *rows = NULL;
        size_t n_rows = 0;
        int r = 0;

        for (size_t f = 0; r == 0 && f < rd->n_paths; f++) {
                char *cursor = NULL;
                enum jindex_file state;

                r = jindex_check(rd->index, rd->paths[f], f, &cursor, &state, err, errsz);
                if (r == 0 && state == JINDEX_NOT_A_JOURNAL)
                        r = read_journal(rd, f, out, n, allocated);
                else if (r == 0 && state == JINDEX_READ) {
                        r = index_journal(rd, f, cursor);
                        if (r < 0)
                                errorf(err, errsz, "the index %s cannot be written", jindex_path(rd->index));
                }
                free(cursor);
        }
        if (r == 0)
                r = jindex_commit(rd->index, err, errsz);
        if (r == 0)
                r = jindex_load(rd->index, q->since, q->until, host, id ? strtoll(id, NULL, 10) : -1, &rows, &n_rows,
                                err, errsz);
        if (r < 0)
                return r == -ENOMEM ? r : -ENOTRECOVERABLE;
        for (size_t i = 0; i < n_rows; i++) {
                crash_keys(&rows[i]);
                if (!wanted(rd, &rows[i], true))
                        jcrash_free(&rows[i]);
                else if (r == 0)
                        r = append(out, n, allocated, &rows[i]);
                else
                        jcrash_free(&rows[i]);
        }
        free(rows);
        /* what did not hold together, said as the first run said it: by the views of everything */
        if (r == 0 && (q->verb == VERB_LIST || q->verb == VERB_GROUPS))
                jindex_skipped(rd->index, say_skipped, rd);
        return r;
}

/* Every matching crash, each once (its newest entry), sorted by time. */
static int collect(struct reader *rd, struct jcrash **out, size_t *n) {
        size_t allocated = 0, k = 0;
        int r;

        *out = NULL;
        *n = 0;
        if (rd->index) {
                char err[512] = "";

                r = collect_indexed(rd, out, n, &allocated, err, sizeof(err));
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        /* a cache: the journals have it all */
                        fputs("pystackctl: ", stderr);
                        esc_fputs(stderr, err);
                        fputs("; reading the journals directly\n", stderr);
                        free_all(*out, *n);
                        *out = NULL;
                        *n = 0;
                        allocated = 0;
                        rd->skipped = 0;
                        jindex_close(rd->index);
                        rd->index = NULL;
                }
        }
        for (size_t f = 0; !rd->index && f < n_journals(rd); f++)
                if ((r = read_journal(rd, f, out, n, &allocated)) < 0)
                        return r;
        qsort(*out, *n, sizeof(**out), by_crash);
        for (size_t i = 0; i < *n; i++) {
                if (i + 1 < *n && !by_crash_key_differs(&(*out)[i], &(*out)[i + 1])) {
                        jcrash_free(&(*out)[i]);
                        continue;
                }
                (*out)[k++] = (*out)[i];
        }
        *n = k;
        if (!rd->groups_only)
                qsort(*out, *n, sizeof(**out), by_time);
        return 0;
}

static int run_list(struct reader *rd, FILE *out, char *err, size_t errsz) {
        const struct query *q = rd->q;
        struct jcrash *c;
        size_t n, first = 0, count;
        int r = collect(rd, &c, &n);

        said_skipped(rd);
        if (r < 0)
                return free_all(c, n), errorf(err, errsz, "cannot read the journal: %s", strerror(-r)), r;
        if (n == 0) {
                if (q->json)
                        fputs("[]\n", out);
                free(c);
                return snprintf(err, errsz, "No crashes match."), 1;
        }
        count = n;
        if (q->limit > 0 && (size_t)q->limit < n) {
                first = n - (size_t)q->limit;
                count = (size_t)q->limit;
        }
        answer_list_header(out, q);
        for (size_t k = 0; k < count; k++) {
                size_t i = q->reverse ? first + count - 1 - k : first + k;
                struct crash_row row;

                row_of(&c[i], &row);
                if (q->json && k)
                        fputc(',', out);
                answer_list_row(out, q, &row);
                if (!q->json)
                        fputc('\n', out);
        }
        if (q->json)
                fputs("]\n", out);
        else if (!q->no_legend)
                fprintf(out, "\n%zu crash%s listed.\n", count, count == 1 ? "" : "es");
        free_all(c, n);
        return 0;
}

/* ---- groups ---- */

struct group {
        const char *signature, *title;  /* of the crashes (the newest's title) */
        size_t count, hosts;
        int64_t first, last;
};

static int by_signature_machine(const void *a, const void *b) {
        const struct jcrash *x = a, *y = b;

        if (x->sig != y->sig)
                return x->sig < y->sig ? -1 : 1;
        if (x->who[0] != y->who[0])
                return x->who[0] < y->who[0] ? -1 : 1;
        if (x->who[1] != y->who[1])
                return x->who[1] < y->who[1] ? -1 : 1;
        return x->time_usec < y->time_usec ? -1 : x->time_usec > y->time_usec;
}

static int by_count(const void *a, const void *b) {
        const struct group *x = a, *y = b;

        if (x->count != y->count)
                return x->count > y->count ? -1 : 1;
        return x->last > y->last ? -1 : x->last < y->last;
}

static int run_groups(struct reader *rd, FILE *out, char *err, size_t errsz) {
        const struct query *q = rd->q;
        struct jcrash *c;
        struct group *g = NULL;
        size_t n, k = 0, ng = 0, allocated = 0;
        int r;

        rd->groups_only = true;
        r = collect(rd, &c, &n);

        said_skipped(rd);
        if (r < 0)
                return free_all(c, n), errorf(err, errsz, "cannot read the journal: %s", strerror(-r)), r;
        /* the analysed ones, by signature and host */
        for (size_t i = 0; i < n; i++) {
                if (c[i].signature)
                        c[k++] = c[i];
                else
                        jcrash_free(&c[i]);
        }
        n = k;
        qsort(c, n, sizeof(*c), by_signature_machine);
        for (size_t i = 0; i < n; i++) {
                bool new_group = i == 0 || c[i].sig != c[i - 1].sig;

                if (new_group) {
                        if (grow_array(&g, &allocated, ng + 1, sizeof(*g)) < 0) {
                                free(g);
                                free_all(c, n);
                                return errorf(err, errsz, "out of memory"), -ENOMEM;
                        }
                        g[ng++] = (struct group) { .signature = c[i].signature, .first = c[i].time_usec };
                }
                struct group *x = &g[ng - 1];
                if (new_group || c[i].who[0] != c[i - 1].who[0] || c[i].who[1] != c[i - 1].who[1])
                        x->hosts++;
                x->count++;
                if (c[i].time_usec <= x->first)
                        x->first = c[i].time_usec;
                if (c[i].time_usec >= x->last) {
                        x->last = c[i].time_usec;
                        x->title = c[i].title;
                }
        }
        qsort(g, ng, sizeof(*g), by_count);
        if (ng == 0) {
                if (q->json)
                        fputs("[]\n", out);
                free(g);
                free_all(c, n);
                return snprintf(err, errsz, "No analysed crashes match."), 1;
        }
        if (q->json)
                fputc('[', out);
        else if (!q->no_legend)
                fprintf(out, "%-16s %6s %5s %-27s %-27s %s\n", "SIGNATURE", "COUNT", "HOSTS", "FIRST", "LAST",
                        "SUMMARY");
        for (size_t i = 0; i < ng; i++) {
                if (q->json) {
                        fputs(i ? ",{\"signature\":" : "{\"signature\":", out);
                        esc_fput_json(out, g[i].signature, strlen(g[i].signature));
                        fputs(",\"title\":", out);
                        if (g[i].title)
                                esc_fput_json(out, g[i].title, strlen(g[i].title));
                        else
                                fputs("null", out);
                        fprintf(out, ",\"count\":%zu,\"hosts\":%zu,\"first_usec\":%lld,\"last_usec\":%lld}", g[i].count,
                                g[i].hosts, (long long)g[i].first, (long long)g[i].last);
                        continue;
                }
                esc_fput_column(out, g[i].signature, 16);
                fprintf(out, " %6zu %5zu ", g[i].count, g[i].hosts);
                answer_put_time(out, g[i].first);
                fputc(' ', out);
                answer_put_time(out, g[i].last);
                fputc(' ', out);
                esc_fputs(out, g[i].title ? g[i].title : "-");
                fputc('\n', out);
        }
        if (q->json)
                fputs("]\n", out);
        else if (!q->no_legend)
                fprintf(out, "\n%zu signature%s.\n", ng, ng == 1 ? "" : "s");
        free(g);
        free_all(c, n);
        return 0;
}

/* ---- one crash: info, show, dump, debug ---- */

/* The newest of journals' newest matching entries so far: which, and where in its file. */
struct newest {
        char *cursor;
        size_t file;
        uint64_t realtime;
};

/* Journal f's newest matching entry (found from its end), when it is newer than n's. */
static int newer_in(struct reader *rd, size_t f, struct newest *n) {
        int r;

        if (open_one(rd, f) < 0)
                return rd->paths ? 0 : -EIO;
        r = sd_journal_seek_tail(rd->j);
        while (r >= 0 && (r = sd_journal_previous(rd->j)) > 0) {
                struct jcrash x;
                char *cursor = NULL;

                if (read_crash(rd, &x) <= 0)
                        continue;
                if ((!n->cursor || x.realtime > n->realtime) && sd_journal_get_cursor(rd->j, &cursor) >= 0) {
                        free(n->cursor);
                        *n = (struct newest) { .cursor = cursor, .file = f, .realtime = x.realtime };
                }
                jcrash_free(&x);
                break;
        }
        close_one(rd);
        return 0;
}

/*
 * The newest matching entry of all journals: 1 with rd->j open on it and *c, 0 when none.  Each
 * journal's newest is found from its end, or with the index, only that of the journal the index
 * says holds the newest; the newest is opened again by its cursor.
 */
static int find_newest(struct reader *rd, struct jcrash *c) {
        struct newest n = {};
        int r = 0;

        if (rd->index) {
                struct jcrash *all;
                size_t count, best = 0;

                r = collect(rd, &all, &count);
                for (size_t i = 1; r == 0 && i < count; i++)
                        if (all[i].realtime > all[best].realtime)
                                best = i;
                if (r == 0 && count && rd->index)
                        r = newer_in(rd, all[best].path, &n);
                free_all(all, count);
        }
        for (size_t f = 0; r == 0 && !rd->index && f < n_journals(rd); f++)
                r = newer_in(rd, f, &n);
        if (r < 0 || !n.cursor) {
                free(n.cursor);
                return r;
        }
        if (open_one(rd, n.file) < 0) {
                free(n.cursor);
                return -EIO;
        }
        r = sd_journal_seek_cursor(rd->j, n.cursor);
        if (r >= 0)
                r = sd_journal_next(rd->j);
        if (r > 0 && sd_journal_test_cursor(rd->j, n.cursor) > 0) {
                free(n.cursor);
                return read_crash(rd, c);
        }
        free(n.cursor);
        close_one(rd);
        return r < 0 ? r : -EIO;
}

#define info_line answer_info_line

static void json_member(FILE *out, const char *key, const char *value) {
        fprintf(out, ",\"%s\":", key);
        if (value)
                esc_fput_json(out, value, strlen(value));
        else
                fputs("null", out);
}

static int run_info(struct reader *rd, const struct jcrash *c, FILE *out) {
        sd_journal *j = rd->j;
        _cleanup_free_ char *boot = get(j, "_BOOT_ID"), *cmdline = get(j, "COREDUMP_CMDLINE"),
                            *cwd = get(j, "COREDUMP_CWD"), *cgroup = get(j, "COREDUMP_CGROUP"),
                            *unit = get(j, "COREDUMP_UNIT"), *hostname = get(j, "COREDUMP_HOSTNAME"),
                            *runtime = get(j, "PYSTACK_CONTAINER_RUNTIME"), *container = get(j, "PYSTACK_CONTAINER"),
                            *truncated = get(j, "PYSTACK_REPORT_TRUNCATED"), *tname = get(j, "COREDUMP_THREAD_NAME"),
                            *pkg = get(j, "COREDUMP_PACKAGE_NAME"), *pkgv = get(j, "COREDUMP_PACKAGE_VERSION");
        int64_t tid = 0;
        char buf[256];

        _cleanup_free_ char *container_id = c->container_id ? NULL : get(j, "PYSTACK_CONTAINER_ID");
        const char *cid = c->container_id ? c->container_id : container_id;

        get_int(j, "COREDUMP_TID", 1, INT32_MAX, &tid);
        if (rd->q->json) {
                fprintf(out, "{\"id\":%lld,\"time_usec\":%lld,\"pid\":%d,\"tid\":", (long long)c->id,
                        (long long)c->time_usec, c->pid);
                if (tid)
                        fprintf(out, "%lld", (long long)tid);
                else
                        fputs("null", out);
                fprintf(out, ",\"uid\":%lld,\"gid\":%lld,\"signal\":%d,\"signal_name\":\"%s\"", (long long)c->uid,
                        (long long)c->gid, c->signal, signal_full_name(c->signal));
                json_member(out, "host", c->host);
                json_member(out, "machine_id", c->machine);
                json_member(out, "boot_id", boot);
                json_member(out, "comm", c->comm);
                json_member(out, "exe", c->exe);
                json_member(out, "cmdline", cmdline);
                json_member(out, "cwd", cwd);
                json_member(out, "cgroup", cgroup);
                json_member(out, "unit", unit);
                fprintf(out, ",\"container\":%s", container ? "true" : "false");
                json_member(out, "container_runtime", runtime);
                json_member(out, "container_id", cid);
                json_member(out, "hostname", hostname);
                json_member(out, "core_file", c->core_file);
                json_member(out, "python_version", c->python);
                json_member(out, "signature", c->signature);
                json_member(out, "title", c->title);
                json_member(out, "error", c->error);
                json_member(out, "package_name", pkg);
                json_member(out, "package_version", pkgv);
                fprintf(out, ",\"report_truncated\":%s}\n", truncated ? "true" : "false");
                return 0;
        }
        snprintf(buf, sizeof(buf), "%lld", (long long)c->id);
        info_line(out, "Crash", buf);
        info_line(out, "Host", c->host);
        info_line(out, "Machine ID", c->machine);
        snprintf(buf, sizeof(buf), "%d (%s)", c->pid, c->comm ? c->comm : "?");
        info_line(out, "PID", buf);
        if (tid) {
                snprintf(buf, sizeof(buf), "%lld%s%s%s", (long long)tid, tname ? " (" : "", tname ? tname : "",
                         tname ? ")" : "");
                info_line(out, "Crashed thread", buf);
        }
        snprintf(buf, sizeof(buf), "%lld", (long long)c->uid);
        info_line(out, "UID", buf);
        snprintf(buf, sizeof(buf), "%lld", (long long)c->gid);
        info_line(out, "GID", buf);
        snprintf(buf, sizeof(buf), "%d (%s)", c->signal, signal_full_name(c->signal));
        info_line(out, "Signal", buf);
        fprintf(out, "%16s: ", "Timestamp");
        answer_put_time(out, c->time_usec);
        fputc('\n', out);
        info_line(out, "Command Line", cmdline);
        info_line(out, "Executable", c->exe);
        if (pkg) {
                snprintf(buf, sizeof(buf), "%.100s %.100s", pkg, pkgv ? pkgv : "");
                info_line(out, "Package", buf);
        }
        info_line(out, "Working Dir", cwd);
        info_line(out, "Control Group", cgroup);
        info_line(out, "Unit", unit);
        if (cid) {
                snprintf(buf, sizeof(buf), "%.40s %.160s", runtime ? runtime : "?", cid);
                info_line(out, "Container", buf);
        } else
                info_line(out, "Container", container ? "yes (its own root or namespaces)" : NULL);
        info_line(out, "Boot ID", boot);
        info_line(out, "Hostname", hostname);
        info_line(out, "Core", c->core_file ? c->core_file : "none");
        info_line(out, "Python", c->python);
        _cleanup_free_ char *error = c->error || c->signature ? NULL : get(j, "PYSTACK_ANALYSIS_ERROR");
        info_line(out, "Analysis", c->error ? c->error : error ? error : "done");
        info_line(out, "Signature", c->signature);
        info_line(out, "Summary", c->title);
        info_line(out, "Report", truncated ? "cut to fit the journal (JournalReportMax)" : NULL);
        return 0;
}

static int run_show(struct reader *rd, const struct jcrash *c, FILE *out, char *err, size_t errsz) {
        struct text_options o = { .native = rd->q->native, .locals = rd->q->locals, .tasks = rd->q->tasks };
        struct json_doc *doc = NULL;
        char *json;
        int r;

        sd_journal_set_data_threshold(rd->j, REPORT_MAX + 64);
        json = get_max(rd->j, "PYSTACK_REPORT_JSON", REPORT_MAX + 1);
        if (!json) {
                _cleanup_free_ char *host = esc_strdup(c->host ? c->host : "?");
                return errorf(err, errsz, "crash %lld of host %s: its entry has no report as data (%s)",
                              (long long)c->id, host ? host : "?",
                              c->error ? "its analysis failed" : "written before pystackd put it there, or "
                              "JournalReportMax=0"), 1;
        }
        r = strlen(json) > REPORT_MAX ? -E2BIG : json_parse(json, strlen(json), &doc);
        free(json);
        if (r == -ENOMEM)
                return errorf(err, errsz, "out of memory"), r;
        if (r < 0 || json_root(doc)->type != JSON_OBJECT) {
                json_free(doc);
                return errorf(err, errsz, "crash %lld: its PYSTACK_REPORT_JSON is not a report (not a JSON object)",
                              (long long)c->id), 1;
        }
        if (json_len(json_get(json_root(doc), "journal_cut")))
                fputs("pystackctl: this report was cut to fit the journal (JournalReportMax): the text has less "
                      "than the host's\n", stderr);
        if (rd->q->json) {
                struct buf b = {};
                json_write(&b, json_root(doc));
                if (buf_str(&b))
                        fprintf(out, "%s\n", buf_str(&b));
                buf_free(&b);
                r = 0;
        } else
                r = report_text_render(out, json_root(doc), &o);
        json_free(doc);
        return r;
}

int journal_run(const struct journal_source *src, const struct query *q, FILE *out, char *err, size_t errsz) {
        struct reader rd = { .q = q };
        struct jcrash c;
        int r;

        if (q->verb == VERB_ANALYZE || q->verb == VERB_VACUUM)
                return errorf(err, errsz, "%s acts on a host's store: not with --directory, --file or --merge",
                              query_verb_name(q->verb)), -EINVAL;
        for (size_t i = 0; i < q->n_matches; i++)
                if (q->matches[i].key == MATCH_CONTAINER && !rd.container && !(rd.container = strdup(q->matches[i].value)))
                        return errorf(err, errsz, "out of memory"), -ENOMEM;
        r = find_files(src, &rd, err, errsz);
        if (r < 0) {
                for (size_t i = 0; i < rd.n_paths; i++)
                        free(rd.paths[i]);
                free(rd.paths);
                free(rd.container);
                return r;
        }
        if (rd.paths && !src->no_index) {
                char why[512];
                int k = jindex_open(&rd.index, why, sizeof(why));
                /* none to use (no home, or not the caller's alone): the journals are read as they are */
                if (k < 0) {
                        fputs("pystackctl: ", stderr);
                        esc_fputs(stderr, why);
                        fputs("; reading the journals directly\n", stderr);
                }
        }
        if (q->verb == VERB_LIST)
                r = run_list(&rd, out, err, errsz);
        else if (q->verb == VERB_GROUPS)
                r = run_groups(&rd, out, err, errsz);
        else {
                r = find_newest(&rd, &c);
                said_skipped(&rd);
                if (r < 0)
                        errorf(err, errsz, "cannot read the journal: %s", strerror(-r));
                else if (r == 0) {
                        snprintf(err, errsz, "No crashes match.");
                        r = 1;
                } else {
                        if (q->verb == VERB_INFO)
                                r = run_info(&rd, &c, out);
                        else if (q->verb == VERB_SHOW)
                                r = run_show(&rd, &c, out, err, errsz);
                        else {
                                /* the core stays on its host: say where */
                                _cleanup_free_ char *host = esc_strdup(c.host ? c.host : "?"),
                                                    *file = c.core_file ? esc_strdup(c.core_file) : NULL;
                                if (file)
                                        snprintf(err, errsz, "the core of crash %lld is on host %s, %s: run "
                                                 "pystackctl %s ID=%lld there", (long long)c.id, host, file,
                                                 query_verb_name(q->verb), (long long)c.id);
                                else
                                        snprintf(err, errsz, "crash %lld of host %s has no stored core",
                                                 (long long)c.id, host);
                                r = 1;
                        }
                        jcrash_free(&c);
                }
        }
        if (rd.j)
                close_one(&rd);
        for (size_t i = 0; i < rd.n_paths; i++)
                free(rd.paths[i]);
        free(rd.paths);
        free(rd.container);
        jindex_close(rd.index);
        return r;
}
