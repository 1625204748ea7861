/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "escape.h"
#include "query.h"
#include "util.h"

static const char *const verb_names[_VERB_MAX] = {
        [VERB_LIST] = "list", [VERB_INFO] = "info", [VERB_SHOW] = "show", [VERB_DUMP] = "dump",
        [VERB_DEBUG] = "debug", [VERB_ANALYZE] = "analyze", [VERB_GROUPS] = "groups",
        [VERB_VACUUM] = "vacuum", [VERB_CORE] = "core",
};

static const char *const match_names[] = {
        [MATCH_ID] = "ID", [MATCH_PID] = "PID", [MATCH_COMM] = "COMM", [MATCH_EXE] = "EXE",
        [MATCH_UID] = "UID", [MATCH_SIG] = "SIG", [MATCH_SIGNATURE] = "SIGNATURE",
};

void query_init(struct query *q) {
        *q = (struct query) { .since = INT64_MIN, .until = INT64_MAX };
}

int query_verb_from_name(const char *name) {
        for (int i = 0; i < _VERB_MAX; i++)
                if (i != VERB_CORE && !strcmp(name, verb_names[i]))
                        return i;
        return -1;
}

const char *query_verb_name(enum query_verb v) {
        return v < _VERB_MAX ? verb_names[v] : "?";
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errsz, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static bool all_digits(const char *s) {
        if (!*s || strlen(s) > 19)
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char)*s))
                        return false;
        return true;
}

static int signal_number(const char *s) {
        if (all_digits(s))
                return atoi(s) > 0 && atoi(s) < 65 ? atoi(s) : -1;
        if (!strncmp(s, "SIG", 3))
                s += 3;
        for (int i = 1; i < 65; i++) {
                const char *n = sigabbrev_np(i);
                if (n && !strcasecmp(n, s))
                        return i;
        }
        return -1;
}

static int add(struct query *q, enum match_key key, const char *value, char *err, size_t errsz) {
        struct match *m;

        if (q->n_matches >= QUERY_MAX_MATCHES)
                return fail(err, errsz, "at most %d matches", QUERY_MAX_MATCHES);
        if (strlen(value) >= sizeof(q->matches[0].value) || !*value)
                return fail(err, errsz, "bad match value for %s=", match_names[key]);
        if ((key == MATCH_ID || key == MATCH_PID || key == MATCH_UID) && !all_digits(value))
                return fail(err, errsz, "%s= takes a number: '%s'", match_names[key], value);
        if (key == MATCH_SIGNATURE && strspn(value, "0123456789abcdef") != strlen(value))
                return fail(err, errsz, "SIGNATURE= takes a hex signature: '%s'", value);
        m = &q->matches[q->n_matches++];
        m->key = key;
        if (key == MATCH_SIG) {
                int sig = signal_number(value);
                if (sig < 0) {
                        q->n_matches--;
                        return fail(err, errsz, "unknown signal '%s'", value);
                }
                snprintf(m->value, sizeof(m->value), "%d", sig);
        } else
                snprintf(m->value, sizeof(m->value), "%s", value);
        return 0;
}

int query_add_match(struct query *q, const char *arg, char *err, size_t errsz) {
        const char *eq = strchr(arg, '=');

        if (eq) {
                for (size_t k = 0; k < sizeof(match_names) / sizeof(match_names[0]); k++)
                        if (strlen(match_names[k]) == (size_t)(eq - arg) && !strncmp(arg, match_names[k], eq - arg))
                                return add(q, (enum match_key)k, eq + 1, err, errsz);
                return fail(err, errsz, "unknown match '%.*s=' (ID, PID, COMM, EXE, UID, SIG, SIGNATURE)",
                            (int)(eq - arg), arg);
        }
        if (all_digits(arg))
                return add(q, MATCH_PID, arg, err, errsz);
        if (strchr(arg, '/'))
                return add(q, MATCH_EXE, arg, err, errsz);
        return add(q, MATCH_COMM, arg, err, errsz);
}

/* ---- time ---- */

static int64_t day_start(time_t t, int days) {
        struct tm tm;

        localtime_r(&t, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_mday += days;
        tm.tm_isdst = -1;
        return (int64_t)mktime(&tm) * 1000000;
}

static int parse_span(const char *s, int64_t *usec) {
        static const struct { const char *unit; int64_t usec; } units[] = {
                { "us", 1 }, { "ms", 1000 }, { "s", 1000000 }, { "sec", 1000000 }, { "second", 1000000 },
                { "seconds", 1000000 }, { "m", 60000000 }, { "min", 60000000 }, { "minute", 60000000 },
                { "minutes", 60000000 }, { "h", 3600000000LL }, { "hour", 3600000000LL },
                { "hours", 3600000000LL }, { "d", 86400000000LL }, { "day", 86400000000LL },
                { "days", 86400000000LL }, { "w", 604800000000LL }, { "week", 604800000000LL },
                { "weeks", 604800000000LL }, { "M", 2592000000000LL }, { "month", 2592000000000LL },
                { "months", 2592000000000LL }, { "y", 31536000000000LL }, { "year", 31536000000000LL },
                { "years", 31536000000000LL },
        };
        int64_t total = 0;
        bool any = false;

        while (*s) {
                char *end;
                long long v;
                size_t n;

                while (*s == ' ')
                        s++;
                if (!*s)
                        break;
                if (!isdigit((unsigned char)*s))
                        return -EINVAL;
                v = strtoll(s, &end, 10);
                while (*end == ' ')
                        end++;
                n = strspn(end, "abcdefghijklmnopqrstuvwxyzM");
                bool found = false;
                for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                        if (strlen(units[i].unit) == n && !strncmp(end, units[i].unit, n)) {
                                if (v > INT64_MAX / units[i].usec / 2)
                                        return -EINVAL;
                                total += v * units[i].usec;
                                found = true;
                                break;
                        }
                if (!found || n == 0)
                        return -EINVAL;
                s = end + n;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *usec = total;
        return 0;
}

int parse_time(const char *s, int64_t now_usec, int64_t *usec) {
        time_t now = (time_t)(now_usec / 1000000);
        struct tm tm;
        char *end;
        int64_t span;
        size_t n = strlen(s);

        if (!strcmp(s, "now"))
                return *usec = now_usec, 0;
        if (!strcmp(s, "today"))
                return *usec = day_start(now, 0), 0;
        if (!strcmp(s, "yesterday"))
                return *usec = day_start(now, -1), 0;
        if (!strcmp(s, "tomorrow"))
                return *usec = day_start(now, 1), 0;
        if (s[0] == '@') {
                errno = 0;
                long long v = strtoll(s + 1, &end, 10);
                if (errno || end == s + 1 || *end || v < 0 || v > INT64_MAX / 1000000)
                        return -EINVAL;
                return *usec = v * 1000000, 0;
        }
        if (s[0] == '-' || s[0] == '+') {
                if (parse_span(s + 1, &span) < 0)
                        return -EINVAL;
                return *usec = s[0] == '-' ? now_usec - span : now_usec + span, 0;
        }
        if (n > 4 && !strcmp(s + n - 4, " ago")) {
                char buf[128];
                if (n - 4 >= sizeof(buf))
                        return -EINVAL;
                memcpy(buf, s, n - 4);
                buf[n - 4] = 0;
                if (parse_span(buf, &span) < 0)
                        return -EINVAL;
                return *usec = now_usec - span, 0;
        }
        /* absolute: "YYYY-MM-DD[ HH:MM[:SS]]" or "HH:MM[:SS]" (today), local time */
        static const char *const formats[] = {
                "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%H:%M:%S", "%H:%M",
        };
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
                localtime_r(&now, &tm);
                tm.tm_hour = tm.tm_min = tm.tm_sec = 0;   /* what a format leaves out is midnight / today */
                end = strptime(s, formats[i], &tm);
                if (end && !*end) {
                        struct tm asked = tm;

                        tm.tm_isdst = -1;
                        time_t t = mktime(&tm);
                        /* mktime rolls "February 30" into March: such a date does not exist */
                        if (t == (time_t)-1 || tm.tm_mday != asked.tm_mday || tm.tm_mon != asked.tm_mon ||
                            tm.tm_year != asked.tm_year)
                                return -EINVAL;
                        return *usec = (int64_t)t * 1000000, 0;
                }
        }
        return -EINVAL;
}

/* ---- the wire ---- */

int query_to_wire(const struct query *q, FILE *out) {
        fprintf(out, "verb=%s\n", verb_names[q->verb]);
        for (size_t i = 0; i < q->n_matches; i++)
                fprintf(out, "match=%s=%s\n", match_names[q->matches[i].key], q->matches[i].value);
        if (q->since != INT64_MIN)
                fprintf(out, "since=%lld\n", (long long)q->since);
        if (q->until != INT64_MAX)
                fprintf(out, "until=%lld\n", (long long)q->until);
        fprintf(out, "limit=%lld\nflags=%d%d%d%d%d\n\n", (long long)q->limit, q->reverse, q->json, q->native,
                q->locals, q->no_legend);
        return ferror(out) ? -EIO : 0;
}

int query_from_wire(struct query *q, const char *text, size_t len) {
        char err[128];
        size_t pos = 0;
        bool verb = false;

        query_init(q);
        if (len > QUERY_MAX_WIRE || memchr(text, 0, len))
                return -EINVAL;
        while (pos < len) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                char line[512], *v;
                size_t n;

                if (!nl)
                        return -EINVAL;
                n = (size_t)(nl - (text + pos));
                if (n >= sizeof(line))
                        return -EINVAL;
                memcpy(line, text + pos, n);
                line[n] = 0;
                pos += n + 1;
                if (n == 0)
                        return verb ? 0 : -EINVAL;
                v = strchr(line, '=');
                if (!v)
                        return -EINVAL;
                *v++ = 0;
                if (!strcmp(line, "verb")) {
                        int i;
                        if (!strcmp(v, "core"))
                                i = VERB_CORE;
                        else if ((i = query_verb_from_name(v)) < 0)
                                return -EINVAL;
                        q->verb = (enum query_verb)i;
                        verb = true;
                } else if (!strcmp(line, "match")) {
                        if (query_add_match(q, v, err, sizeof(err)) < 0)
                                return -EINVAL;
                } else if (!strcmp(line, "since") || !strcmp(line, "until") || !strcmp(line, "limit")) {
                        char *end;
                        errno = 0;
                        long long x = strtoll(v, &end, 10);
                        if (errno || end == v || *end)
                                return -EINVAL;
                        if (!strcmp(line, "since"))
                                q->since = x;
                        else if (!strcmp(line, "until"))
                                q->until = x;
                        else if (x >= 0)
                                q->limit = x;
                        else
                                return -EINVAL;
                } else if (!strcmp(line, "flags")) {
                        if (strlen(v) != 5 || strspn(v, "01") != 5)
                                return -EINVAL;
                        q->reverse = v[0] == '1';
                        q->json = v[1] == '1';
                        q->native = v[2] == '1';
                        q->locals = v[3] == '1';
                        q->no_legend = v[4] == '1';
                } else
                        return -EINVAL;
        }
        return -EINVAL;  /* no terminating blank line */
}

/* ---- SQL ---- */

/* " AND ..." for the matches, the time window and the uid; parameters bound by bind_where. */
static void where_clause(const struct query *q, int64_t uid, char *out, size_t size) {
        static const char *const columns[] = {
                [MATCH_ID] = "c.id = ?", [MATCH_PID] = "c.pid = ?", [MATCH_COMM] = "c.comm = ?",
                [MATCH_EXE] = "c.exe = ?", [MATCH_UID] = "c.uid = ?", [MATCH_SIG] = "c.signal = ?",
                [MATCH_SIGNATURE] = "c.signature = ?",
        };
        size_t len = 0;

        out[0] = 0;
        for (size_t i = 0; i < q->n_matches; i++)
                len += snprintf(out + len, size - len, " AND %s", columns[q->matches[i].key]);
        len += snprintf(out + len, size - len, " AND c.time_usec >= ? AND c.time_usec <= ?");
        /* a user's own crashes, and only those the kernel let them dump: a set-uid program's core
         * (dumpable 2) holds memory that was never theirs */
        if (uid >= 0)
                snprintf(out + len, size - len, " AND c.uid = ? AND c.dumpable = 1");
}

static int bind_where(sqlite3_stmt *st, int first, const struct query *q, int64_t uid) {
        int i = first;

        for (size_t k = 0; k < q->n_matches; k++) {
                const struct match *m = &q->matches[k];
                if (m->key == MATCH_COMM || m->key == MATCH_EXE || m->key == MATCH_SIGNATURE)
                        sqlite3_bind_text(st, i++, m->value, -1, SQLITE_STATIC);
                else
                        sqlite3_bind_int64(st, i++, strtoll(m->value, NULL, 10));
        }
        sqlite3_bind_int64(st, i++, q->since);
        sqlite3_bind_int64(st, i++, q->until);
        if (uid >= 0)
                sqlite3_bind_int64(st, i++, uid);
        return i;
}

static const char *text(sqlite3_stmt *st, int i) {
        const unsigned char *s = sqlite3_column_text(st, i);
        return s ? (const char *)s : NULL;
}

static void put_time(FILE *out, int64_t usec) {
        time_t t = (time_t)(usec / 1000000);
        struct tm tm;
        char buf[64];

        localtime_r(&t, &tm);
        strftime(buf, sizeof(buf), "%a %Y-%m-%d %H:%M:%S %Z", &tm);
        fputs(buf, out);
}

static void put_json_str(FILE *out, const char *s) {
        esc_fput_json(out, s, s ? strlen(s) : 0);
}

/* A JSON document kept in the store, perhaps written before escape.h's rule. */
static void put_json_document(FILE *out, const char *s) {
        if (s)
                esc_fput_json_document(out, s);
        else
                fputs("null", out);
}

const char *signal_full_name(int sig) {
        static char buf[16];
        const char *a = sigabbrev_np(sig);

        if (!a)
                snprintf(buf, sizeof(buf), "%d", sig);
        else
                snprintf(buf, sizeof(buf), "SIG%s", a);
        return buf;
}

/* Columns of `list` whose text a crash chose: fixed widths, so that the table stays a table. */
#define LIST_PYTHON_WIDTH 9
#define LIST_SCRIPT_WIDTH 20
#define LIST_FRAME_WIDTH 40

/* The columns list and info need, with the crashed thread's innermost Python frame and the core state. */
#define CRASH_COLUMNS \
        "c.id, c.time_usec, c.pid, c.uid, c.gid, c.signal, c.python_version," \
        " CASE WHEN c.core_state = 'present' AND c.error LIKE 'partial report: the core is truncated%%' THEN 'truncated'" \
        "      ELSE c.core_state END," \
        " c.comm, c.exe," \
        " (SELECT value FROM json_each(CASE WHEN json_valid(c.cmdline) THEN c.cmdline END)" \
        "   WHERE key > 0 AND (value NOT LIKE '-%%' OR value IN ('-c', '-m')) LIMIT 1)," \
        " f.function, f.file, f.line, c.state, c.error, c.signature, c.core_path"
#define CRASH_FROM \
        " FROM crashes c LEFT JOIN frames f ON f.crash_id = c.id AND f.thread_idx = 0 AND f.idx =" \
        "  (SELECT max(idx) FROM frames g WHERE g.crash_id = c.id AND g.thread_idx = 0 AND g.kind = 'python')" \
        " WHERE 1"

enum { C_ID, C_TIME, C_PID, C_UID, C_GID, C_SIG, C_PY, C_CORE, C_COMM, C_EXE, C_ARG1, C_FN, C_FILE, C_LINE,
       C_STATE, C_ERROR, C_SIGNATURE, C_CORE_PATH };

/* "present" in the store, but the file is gone: say so */
static const char *core_state(sqlite3_stmt *st, const char *dir) {
        const char *state = text(st, C_CORE);
        const char *path = text(st, C_CORE_PATH);
        char full[PATH_MAX];
        struct stat sb;

        if (state && !strcmp(state, "present") && dir && path &&
            (size_t)snprintf(full, sizeof(full), "%s/%s", dir, path) < sizeof(full) && stat(full, &sb) < 0)
                return "missing";
        return state ? state : "?";
}

static const char *script(sqlite3_stmt *st) {
        const char *exe = text(st, C_EXE), *arg = text(st, C_ARG1);

        /* "python3 worker.py" -> worker.py; "python3 -c ..." -> -c, as Python names them */
        if (arg && exe && strstr(path_base_name(exe), "python"))
                return arg[0] == '-' ? arg : path_base_name(arg);
        return text(st, C_COMM) ? text(st, C_COMM) : path_base_name(exe);
}

static int prepare_crashes(sqlite3 *db, const struct query *q, int64_t uid, bool newest_first, int64_t limit,
                           sqlite3_stmt **st) {
        char where[2048], sql[4096];

        where_clause(q, uid, where, sizeof(where));
        snprintf(sql, sizeof(sql), "SELECT " CRASH_COLUMNS CRASH_FROM "%s ORDER BY c.time_usec %s, c.id %s%s",
                 where, newest_first ? "DESC" : "ASC", newest_first ? "DESC" : "ASC",
                 limit > 0 ? " LIMIT ?" : "");
        if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
                return -EIO;
        int i = bind_where(*st, 1, q, uid);
        if (limit > 0)
                sqlite3_bind_int64(*st, i, limit);
        return 0;
}

static int run_list(sqlite3 *db, const struct query *q, int64_t uid, const char *dir, FILE *out,
                    char *err, size_t errsz) {
        sqlite3_stmt *st;
        size_t n = 0;
        /* -n N: the last N, still printed oldest first unless -r */
        bool newest_first = q->reverse || q->limit > 0;

        if (prepare_crashes(db, q, uid, newest_first, q->limit, &st) < 0)
                return fail(err, errsz, "cannot read the store: %s", sqlite3_errmsg(db)), -EIO;

        /* collect, so that -n N can be turned back to oldest first */
        struct row { char *line; } *rows = NULL;
        size_t allocated = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
                char *line = NULL;
                size_t len = 0;
                FILE *m = open_memstream(&line, &len);

                if (!m)
                        break;
                if (q->json) {
                        fprintf(m, "{\"id\":%lld,\"time_usec\":%lld,\"pid\":%d,\"uid\":%lld,\"gid\":%lld,"
                                "\"signal\":%d,\"signal_name\":\"%s\",\"python_version\":",
                                (long long)sqlite3_column_int64(st, C_ID), (long long)sqlite3_column_int64(st, C_TIME),
                                sqlite3_column_int(st, C_PID), (long long)sqlite3_column_int64(st, C_UID),
                                (long long)sqlite3_column_int64(st, C_GID), sqlite3_column_int(st, C_SIG),
                                signal_full_name(sqlite3_column_int(st, C_SIG)));
                        put_json_str(m, text(st, C_PY));
                        fputs(",\"core\":", m);
                        put_json_str(m, core_state(st, dir));
                        fputs(",\"comm\":", m);
                        put_json_str(m, text(st, C_COMM));
                        fputs(",\"exe\":", m);
                        put_json_str(m, text(st, C_EXE));
                        fputs(",\"script\":", m);
                        put_json_str(m, script(st));
                        fputs(",\"frame\":", m);
                        if (text(st, C_FN)) {
                                fputs("{\"function\":", m);
                                put_json_str(m, text(st, C_FN));
                                fputs(",\"file\":", m);
                                put_json_str(m, text(st, C_FILE));
                                fprintf(m, ",\"line\":%d}", sqlite3_column_int(st, C_LINE));
                        } else
                                fputs("null", m);
                        fputs(",\"state\":", m);
                        put_json_str(m, text(st, C_STATE));
                        fputs(",\"error\":", m);
                        put_json_str(m, text(st, C_ERROR));
                        fputs(",\"signature\":", m);
                        put_json_str(m, text(st, C_SIGNATURE));
                        fputc('}', m);
                } else {
                        char *frame = NULL;

                        put_time(m, sqlite3_column_int64(st, C_TIME));
                        fprintf(m, " %6lld %7d %5lld %-7s ", (long long)sqlite3_column_int64(st, C_ID),
                                sqlite3_column_int(st, C_PID), (long long)sqlite3_column_int64(st, C_UID),
                                signal_full_name(sqlite3_column_int(st, C_SIG)));
                        /* every column a crash chose is escaped and cut to its width, so the rest line up */
                        esc_fput_column(m, text(st, C_PY) ? text(st, C_PY) : "-", LIST_PYTHON_WIDTH);
                        fprintf(m, " %-12s ", core_state(st, dir));
                        esc_fput_column(m, script(st), LIST_SCRIPT_WIDTH);
                        fputc(' ', m);
                        if (!text(st, C_FN) ||
                            asprintf(&frame, "%s (%s:%d)", text(st, C_FN), path_base_name(text(st, C_FILE)),
                                     sqlite3_column_int(st, C_LINE)) < 0)
                                frame = NULL;
                        esc_fput_column(m, frame ? frame : "-", LIST_FRAME_WIDTH);
                        free(frame);
                        fprintf(m, " %s", text(st, C_STATE) ? text(st, C_STATE) : "?");
                }
                fclose(m);
                if (grow_array(&rows, &allocated, n + 1, sizeof(*rows)) < 0) {
                        free(line);
                        break;
                }
                rows[n++].line = line;
        }
        sqlite3_finalize(st);
        if (n == 0) {
                /* JSON readers still get a document; the exit status says nothing matched */
                free(rows);
                if (q->json)
                        fputs("[]\n", out);
                snprintf(err, errsz, "No crashes match.");
                return 1;
        }
        bool flip = q->limit > 0 && !q->reverse;
        if (q->json)
                fputc('[', out);
        else if (!q->no_legend)
                fprintf(out, "%-27s %6s %7s %5s %-7s %-*s %-12s %-*s %-*s %s\n", "TIME", "ID", "PID", "UID", "SIG",
                        LIST_PYTHON_WIDTH, "PYTHON", "CORE", LIST_SCRIPT_WIDTH, "SCRIPT", LIST_FRAME_WIDTH, "FRAME",
                        "STATE");
        for (size_t k = 0; k < n; k++) {
                size_t i = flip ? n - 1 - k : k;
                if (q->json && k)
                        fputc(',', out);
                fputs(rows[i].line, out);
                if (!q->json)
                        fputc('\n', out);
                free(rows[i].line);
        }
        free(rows);
        if (q->json)
                fputs("]\n", out);
        else if (!q->no_legend)
                fprintf(out, "\n%zu crash%s listed.\n", n, n == 1 ? "" : "es");
        return 0;
}

int query_find_newest(sqlite3 *db, const struct query *q, int64_t uid, int64_t *id, char **core_path,
                      char **exe) {
        sqlite3_stmt *st;
        int r = 0;

        if (prepare_crashes(db, q, uid, true, 1, &st) < 0)
                return -EIO;
        if (sqlite3_step(st) == SQLITE_ROW) {
                *id = sqlite3_column_int64(st, C_ID);
                if (core_path)
                        *core_path = text(st, C_CORE_PATH) ? strdup(text(st, C_CORE_PATH)) : NULL;
                if (exe)
                        *exe = text(st, C_EXE) ? strdup(text(st, C_EXE)) : NULL;
                r = 1;
        }
        sqlite3_finalize(st);
        return r;
}

static void info_line(FILE *out, const char *key, const char *value) {
        if (!value)
                return;
        fprintf(out, "%16s: ", key);
        esc_fputs(out, value);
        fputc('\n', out);
}

static int run_info(sqlite3 *db, int64_t id, const char *dir, bool json, FILE *out) {
        static const char sql[] =
                "SELECT c.id, c.time_usec, c.pid, c.pid_ns, c.tid, c.uid, c.gid, c.signal, c.comm, c.exe,"
                " (SELECT group_concat(value, ' ') FROM json_each(CASE WHEN json_valid(c.cmdline) THEN c.cmdline END)),"
                " c.cwd, c.cgroup, c.unit, c.container, c.dumpable, c.rlimit_core, c.boot_id, c.hostname,"
                " c.core_path, c.core_size, c.core_stored_size, c.core_state, c.capture_note, c.suppressed,"
                " c.state, c.attempts, c.error, c.python_version, c.signature, s.title, s.count, s.first_usec,"
                " s.last_usec, c.analyzed_usec, c.cmdline, c.thread_names"
                " FROM crashes c LEFT JOIN signatures s ON s.signature = c.signature WHERE c.id = ?";
        enum { I_ID, I_TIME, I_PID, I_PIDNS, I_TID, I_UID, I_GID, I_SIG, I_COMM, I_EXE, I_CMD, I_CWD, I_CG, I_UNIT,
               I_CONT, I_DUMP, I_RLIM, I_BOOT, I_HOST, I_CPATH, I_CSIZE, I_CSTORED, I_CSTATE, I_CNOTE, I_SUPP,
               I_STATE, I_ATT, I_ERR, I_PY, I_SIGNATURE, I_TITLE, I_COUNT, I_FIRST, I_LAST, I_ANALYZED,
               I_CMDJSON, I_THREADS };
        sqlite3_stmt *st;
        char buf[PATH_MAX + 64];

        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_ROW) {
                sqlite3_finalize(st);
                return 1;
        }
        const char *cpath = text(st, I_CPATH), *cstate = text(st, I_CSTATE);
        char core_file[PATH_MAX] = "";
        /* a removed core has a path in its history, not on disk */
        if (cpath && cstate && !strcmp(cstate, "present"))
                snprintf(core_file, sizeof(core_file), "%s/%s", dir, cpath);
        if (json) {
                /* every column, names as in the store */
                fputc('{', out);
                for (int i = 0; i < sqlite3_column_count(st); i++) {
                        const char *name = sqlite3_column_name(st, i);
                        if (i == I_CMD || i == I_CMDJSON || i == I_THREADS || i == I_TITLE || i == I_COUNT ||
                            i == I_FIRST || i == I_LAST)
                                continue;
                        fprintf(out, "%s\"%s\":", i ? "," : "", name);
                        if (sqlite3_column_type(st, i) == SQLITE_INTEGER)
                                fprintf(out, "%lld", (long long)sqlite3_column_int64(st, i));
                        else
                                put_json_str(out, text(st, i));
                }
                fputs(",\"cmdline\":", out);
                put_json_document(out, text(st, I_CMDJSON));
                fputs(",\"thread_names\":", out);
                put_json_document(out, text(st, I_THREADS));
                fputs(",\"signal_name\":", out);
                put_json_str(out, signal_full_name(sqlite3_column_int(st, I_SIG)));
                fputs(",\"core_file\":", out);
                put_json_str(out, core_file[0] ? core_file : NULL);
                fputs(",\"signature\":", out);
                if (text(st, I_SIGNATURE) && text(st, I_TITLE)) {
                        fputs("{\"signature\":", out);
                        put_json_str(out, text(st, I_SIGNATURE));
                        fputs(",\"title\":", out);
                        put_json_str(out, text(st, I_TITLE));
                        fprintf(out, ",\"count\":%lld,\"first_usec\":%lld,\"last_usec\":%lld}",
                                (long long)sqlite3_column_int64(st, I_COUNT), (long long)sqlite3_column_int64(st, I_FIRST),
                                (long long)sqlite3_column_int64(st, I_LAST));
                } else
                        fputs("null", out);
                fputs("}\n", out);
                sqlite3_finalize(st);
                return 0;
        }
        snprintf(buf, sizeof(buf), "%lld", (long long)sqlite3_column_int64(st, I_ID));
        info_line(out, "Crash", buf);
        snprintf(buf, sizeof(buf), "%d (%s)", sqlite3_column_int(st, I_PID), text(st, I_COMM) ? text(st, I_COMM) : "?");
        info_line(out, "PID", buf);
        if (sqlite3_column_type(st, I_PIDNS) != SQLITE_NULL && sqlite3_column_int(st, I_PIDNS) != sqlite3_column_int(st, I_PID)) {
                snprintf(buf, sizeof(buf), "%d", sqlite3_column_int(st, I_PIDNS));
                info_line(out, "PID in container", buf);
        }
        if (sqlite3_column_type(st, I_TID) != SQLITE_NULL) {
                snprintf(buf, sizeof(buf), "%d", sqlite3_column_int(st, I_TID));
                info_line(out, "Crashed thread", buf);
        }
        snprintf(buf, sizeof(buf), "%lld", (long long)sqlite3_column_int64(st, I_UID));
        info_line(out, "UID", buf);
        snprintf(buf, sizeof(buf), "%lld", (long long)sqlite3_column_int64(st, I_GID));
        info_line(out, "GID", buf);
        snprintf(buf, sizeof(buf), "%d (%s)", sqlite3_column_int(st, I_SIG), signal_full_name(sqlite3_column_int(st, I_SIG)));
        info_line(out, "Signal", buf);
        fprintf(out, "%16s: ", "Timestamp");
        put_time(out, sqlite3_column_int64(st, I_TIME));
        fputc('\n', out);
        info_line(out, "Command Line", text(st, I_CMD));
        info_line(out, "Executable", text(st, I_EXE));
        info_line(out, "Working Dir", text(st, I_CWD));
        info_line(out, "Control Group", text(st, I_CG));
        info_line(out, "Unit", text(st, I_UNIT));
        info_line(out, "Container", sqlite3_column_int(st, I_CONT) ? "yes (own namespaces)" : NULL);
        info_line(out, "Boot ID", text(st, I_BOOT));
        info_line(out, "Hostname", text(st, I_HOST));
        snprintf(buf, sizeof(buf), "%s%s%s", text(st, I_CSTATE) ? text(st, I_CSTATE) : "?",
                 text(st, I_CNOTE) ? ": " : "", text(st, I_CNOTE) ? text(st, I_CNOTE) : "");
        info_line(out, "Core", buf);
        if (core_file[0]) {
                struct stat sb;
                snprintf(buf, sizeof(buf), "%s%s", core_file, stat(core_file, &sb) < 0 ? " (missing)" : "");
                info_line(out, "Storage", buf);
                snprintf(buf, sizeof(buf), "%.1f MiB on disk, %.1f MiB uncompressed",
                         sqlite3_column_int64(st, I_CSTORED) / 1048576.0, sqlite3_column_int64(st, I_CSIZE) / 1048576.0);
                info_line(out, "Size", buf);
        }
        if (sqlite3_column_int64(st, I_SUPP) > 0) {
                snprintf(buf, sizeof(buf), "%lld earlier crashes of this executable dropped by the rate limit",
                         (long long)sqlite3_column_int64(st, I_SUPP));
                info_line(out, "Suppressed", buf);
        }
        info_line(out, "Python", text(st, I_PY));
        snprintf(buf, sizeof(buf), "%s (attempts: %d)%s%s", text(st, I_STATE) ? text(st, I_STATE) : "?",
                 sqlite3_column_int(st, I_ATT), text(st, I_ERR) ? ", " : "", text(st, I_ERR) ? text(st, I_ERR) : "");
        info_line(out, "Analysis", buf);
        if (text(st, I_SIGNATURE)) {
                snprintf(buf, sizeof(buf), "%s (seen %lld time%s)", text(st, I_SIGNATURE),
                         (long long)sqlite3_column_int64(st, I_COUNT), sqlite3_column_int64(st, I_COUNT) == 1 ? "" : "s");
                info_line(out, "Signature", buf);
                fprintf(out, "%16s: ", "First seen");
                put_time(out, sqlite3_column_int64(st, I_FIRST));
                fprintf(out, "\n%16s: ", "Last seen");
                put_time(out, sqlite3_column_int64(st, I_LAST));
                fputc('\n', out);
                info_line(out, "Summary", text(st, I_TITLE));
        }
        sqlite3_finalize(st);
        return 0;
}

/* The report in the format of pystack core, from the stored rows. */
static int run_show(sqlite3 *db, int64_t id, const struct query *q, FILE *out) {
        sqlite3_stmt *st;

        if (q->json) {
                if (sqlite3_prepare_v2(db, "SELECT report FROM crashes WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
                        return -EIO;
                sqlite3_bind_int64(st, 1, id);
                int r = 1;
                if (sqlite3_step(st) == SQLITE_ROW && text(st, 0)) {
                        put_json_document(out, text(st, 0));
                        r = 0;
                }
                sqlite3_finalize(st);
                return r;
        }
        if (sqlite3_prepare_v2(db,
                "SELECT json_extract(report, '$.executable'), json_extract(report, '$.process.state'),"
                " json_extract(report, '$.process.zombie'), json_extract(report, '$.process.nice'),"
                " json_extract(report, '$.process.pid'), json_extract(report, '$.process.ppid'),"
                " json_extract(report, '$.process.sid'), json_extract(report, '$.process.uid'),"
                " json_extract(report, '$.process.gid'), json_extract(report, '$.process.pgrp'),"
                " json_extract(report, '$.process.comm'), json_extract(report, '$.process.args'),"
                " json_extract(report, '$.signal.name'), report IS NOT NULL, state, error"
                " FROM crashes WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_ROW || !sqlite3_column_int(st, 13)) {
                sqlite3_finalize(st);
                return 2;   /* not analysed (yet) */
        }
        fputs("Using executable found in the core file: ", out);
        esc_fputs(out, text(st, 0));
        fputs("\n\n", out);
        if (text(st, 4)) {
                fprintf(out, "Core file information:\nstate: %s zombie: %s niceness: %d\n", text(st, 1) ? text(st, 1) : "?",
                        sqlite3_column_int(st, 2) ? "True" : "False", sqlite3_column_int(st, 3));
                fprintf(out, "pid: %d ppid: %d sid: %d\n", sqlite3_column_int(st, 4), sqlite3_column_int(st, 5),
                        sqlite3_column_int(st, 6));
                fprintf(out, "uid: %d gid: %d pgrp: %d\n", sqlite3_column_int(st, 7), sqlite3_column_int(st, 8),
                        sqlite3_column_int(st, 9));
                fputs("executable: ", out);
                esc_fputs(out, text(st, 10));
                fputs(" arguments: ", out);
                esc_fputs(out, text(st, 11));
                fputs("\n\n", out);
        }
        if (text(st, 12))
                fprintf(out, "The process died due receiving signal %s\n", text(st, 12));
        sqlite3_finalize(st);

        sqlite3_stmt *th, *fr, *lo;
        /* the header's statuses as the analyzer worded them (reports before it had them: the flags) */
        if (sqlite3_prepare_v2(db, "SELECT t.idx, t.tid, t.has_gil, t.gc_collecting, t.truncated, t.native_error,"
                               " t.merged, t.python, (SELECT group_concat(s.value, ',') FROM crashes c,"
                               "  json_each(json_extract(c.report, '$.threads[' || t.idx || '].status')) s"
                               "  WHERE c.id = t.crash_id AND json_valid(c.report))"
                               " FROM threads t WHERE t.crash_id = ? ORDER BY t.idx", -1, &th, NULL) != SQLITE_OK)
                return -EIO;
        if (sqlite3_prepare_v2(db, "SELECT idx, kind, function, file, line, library, inlined, source FROM frames"
                               " WHERE crash_id = ?1 AND thread_idx = ?2 ORDER BY idx", -1, &fr, NULL) != SQLITE_OK) {
                sqlite3_finalize(th);
                return -EIO;
        }
        if (sqlite3_prepare_v2(db, "SELECT argument, name, repr FROM locals WHERE crash_id = ?1 AND thread_idx = ?2"
                               " AND frame_idx = ?3 ORDER BY argument DESC, idx", -1, &lo, NULL) != SQLITE_OK) {
                sqlite3_finalize(th);
                sqlite3_finalize(fr);
                return -EIO;
        }
        sqlite3_bind_int64(th, 1, id);
        for (bool first = true; sqlite3_step(th) == SQLITE_ROW; first = false) {
                int64_t tidx = sqlite3_column_int64(th, 0);
                bool python_thread = sqlite3_column_int(th, 7);

                if (!python_thread && !q->native)
                        continue;
                if (!first)
                        fputc('\n', out);
                char status[96];

                if (text(th, 8))
                        snprintf(status, sizeof(status), "%s", text(th, 8));
                else
                        snprintf(status, sizeof(status), "%s%s%s", sqlite3_column_int(th, 2) ? "Has the GIL" : "",
                                 sqlite3_column_int(th, 2) && sqlite3_column_int(th, 3) ? "," : "",
                                 sqlite3_column_int(th, 3) ? "Garbage collecting" : "");
                fprintf(out, "Traceback for thread %d [", sqlite3_column_int(th, 1));
                esc_fputs(out, status);
                fputs("] (most recent call last):\n", out);
                if (q->native && python_thread && sqlite3_column_type(th, 6) != SQLITE_NULL &&
                    !sqlite3_column_int(th, 6))
                        fputs("* - Unable to merge native stack due to insufficient native information - *\n", out);
                if (text(th, 4)) {
                        fputs("    (Python frames missing: ", out);
                        esc_fputs(out, text(th, 4));
                        fputs(")\n", out);
                }
                if (q->native && text(th, 5)) {
                        fputs("    (native frames missing: ", out);
                        esc_fputs(out, text(th, 5));
                        fputs(")\n", out);
                }
                sqlite3_reset(fr);
                sqlite3_bind_int64(fr, 1, id);
                sqlite3_bind_int64(fr, 2, tidx);
                while (sqlite3_step(fr) == SQLITE_ROW) {
                        bool python = text(fr, 1) && !strcmp(text(fr, 1), "python");

                        if (!python && !q->native)
                                continue;
                        fputs(python ? "    (Python) File \"" : "    (C) File \"", out);
                        /* as pystack prints it: a native frame with no symbol names its library */
                        esc_fputs(out, text(fr, 3) ? text(fr, 3) :
                                       !python && !text(fr, 2) && text(fr, 5) ? text(fr, 5) : "???");
                        fprintf(out, "\", line %d, in ", sqlite3_column_int(fr, 4));
                        esc_fputs(out, text(fr, 2) ? text(fr, 2) : "???");
                        if (!python) {
                                fputs(sqlite3_column_int(fr, 6) ? " (inlined) (" : " (", out);
                                esc_fputs(out, text(fr, 5) ? text(fr, 5) : "???");
                                fputc(')', out);
                        }
                        fputc('\n', out);
                        if (python && text(fr, 7)) {
                                fputs("        ", out);
                                esc_fputs(out, text(fr, 7));
                                fputc('\n', out);
                        }
                        if (!python || !q->locals)
                                continue;
                        sqlite3_reset(lo);
                        sqlite3_bind_int64(lo, 1, id);
                        sqlite3_bind_int64(lo, 2, tidx);
                        sqlite3_bind_int64(lo, 3, sqlite3_column_int64(fr, 0));
                        int shown = -1;
                        while (sqlite3_step(lo) == SQLITE_ROW) {
                                int arg = sqlite3_column_int(lo, 0);
                                if (arg != shown) {
                                        fputs(arg ? "      Arguments:\n" : "      Locals:\n", out);
                                        shown = arg;
                                }
                                fputs("        ", out);
                                esc_fputs(out, text(lo, 1));
                                fputs(": ", out);
                                esc_fputs(out, text(lo, 2));
                                fputc('\n', out);
                        }
                }
        }
        sqlite3_finalize(th);
        sqlite3_finalize(fr);
        sqlite3_finalize(lo);
        return 0;
}

static int run_groups(sqlite3 *db, const struct query *q, int64_t uid, FILE *out, char *err, size_t errsz) {
        char where[2048], sql[4096];
        sqlite3_stmt *st;
        size_t n = 0;

        /* counted from the crashes the caller may see, so a user's groups are their own */
        where_clause(q, uid, where, sizeof(where));
        snprintf(sql, sizeof(sql),
                 "SELECT c.signature, s.title, count(*), min(c.time_usec), max(c.time_usec) FROM crashes c"
                 " LEFT JOIN signatures s ON s.signature = c.signature WHERE c.signature IS NOT NULL%s"
                 " GROUP BY c.signature ORDER BY count(*) DESC, max(c.time_usec) DESC", where);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                return fail(err, errsz, "cannot read the store: %s", sqlite3_errmsg(db)), -EIO;
        bind_where(st, 1, q, uid);
        if (q->json)
                fputc('[', out);
        else if (!q->no_legend)
                fprintf(out, "%-16s %6s %-27s %-27s %s\n", "SIGNATURE", "COUNT", "FIRST", "LAST", "SUMMARY");
        while (sqlite3_step(st) == SQLITE_ROW) {
                if (q->json) {
                        fputs(n ? ",{\"signature\":" : "{\"signature\":", out);
                        put_json_str(out, text(st, 0));
                        fputs(",\"title\":", out);
                        put_json_str(out, text(st, 1));
                        fprintf(out, ",\"count\":%lld,\"first_usec\":%lld,\"last_usec\":%lld}",
                                (long long)sqlite3_column_int64(st, 2), (long long)sqlite3_column_int64(st, 3),
                                (long long)sqlite3_column_int64(st, 4));
                } else {
                        fprintf(out, "%-16s %6lld ", text(st, 0), (long long)sqlite3_column_int64(st, 2));
                        put_time(out, sqlite3_column_int64(st, 3));
                        fputc(' ', out);
                        put_time(out, sqlite3_column_int64(st, 4));
                        fputc(' ', out);
                        esc_fputs(out, text(st, 1) ? text(st, 1) : "-");
                        fputc('\n', out);
                }
                n++;
        }
        sqlite3_finalize(st);
        if (q->json)
                fputs("]\n", out);
        else if (n == 0)
                return snprintf(err, errsz, "No analysed crashes match."), 1;
        else if (!q->no_legend)
                fprintf(out, "\n%zu signature%s.\n", n, n == 1 ? "" : "s");
        return 0;
}

static int run_analyze(sqlite3 *db, int64_t id, bool json, FILE *out) {
        sqlite3_stmt *st;
        int rc;

        /* the new result replaces the old one when pystackd files it */
        if (sqlite3_prepare_v2(db, "UPDATE crashes SET state = 'pending', attempts = 0, error = NULL"
                               " WHERE id = ? AND core_state = 'present' AND state != 'running'", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return -EIO;
        if (sqlite3_changes(db) == 0)
                return 2;       /* no core, or being analysed right now */
        if (json)
                fprintf(out, "{\"id\":%lld,\"state\":\"pending\"}\n", (long long)id);
        else
                fprintf(out, "Crash %lld queued for a new analysis.\n", (long long)id);
        return 0;
}

int query_run(sqlite3 *db, const struct query *q, int64_t uid, const char *storage_dir, FILE *out,
              char *err, size_t errsz) {
        int64_t id;
        int r;

        if (q->verb == VERB_LIST)
                return run_list(db, q, uid, storage_dir, out, err, errsz);
        if (q->verb == VERB_GROUPS)
                return run_groups(db, q, uid, out, err, errsz);
        if (q->verb != VERB_INFO && q->verb != VERB_SHOW && q->verb != VERB_ANALYZE)
                return fail(err, errsz, "%s is not a query", verb_names[q->verb]);

        r = query_find_newest(db, q, uid, &id, NULL, NULL);
        if (r < 0)
                return fail(err, errsz, "cannot read the store: %s", sqlite3_errmsg(db)), -EIO;
        if (r == 0)
                return snprintf(err, errsz, "No crashes match."), 1;
        if (q->verb == VERB_INFO)
                r = run_info(db, id, storage_dir, q->json, out);
        else if (q->verb == VERB_SHOW) {
                r = run_show(db, id, q, out);
                if (r == 2)
                        return snprintf(err, errsz, "Crash %lld has not been analysed (yet): see pystackctl info",
                                        (long long)id), 1;
        } else {
                r = run_analyze(db, id, q->json, out);
                if (r == 2)
                        return snprintf(err, errsz, "Crash %lld has no core to analyse, or is being analysed now",
                                        (long long)id), 1;
        }
        if (r < 0)
                return fail(err, errsz, "cannot read the store: %s", sqlite3_errmsg(db)), -EIO;
        return r;
}
