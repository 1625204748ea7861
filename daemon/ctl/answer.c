/* SPDX-License-Identifier: MIT */
/*
 * answer: what pystackctl prints for a query — list, info, show, groups, analyze — from what the
 * store returns.  Root's pystackctl runs it on the store itself; pystackd runs the same for users.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cmdline.h"
#include "escape.h"
#include "json.h"
#include "query.h"
#include "report_text.h"
#include "store.h"
#include "util.h"


/* ---- answers ---- */

static struct store_filter filter_of(const struct query *q, int64_t uid) {
        return (struct store_filter) {
                .matches = q->matches, .n_matches = q->n_matches, .since = q->since, .until = q->until, .uid = uid,
        };
}

void answer_put_time(FILE *out, int64_t usec) {
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

/* Columns of `list` whose text a crash chose: fixed widths, so that the table stays a table. */
#define LIST_PYTHON_WIDTH 9
#define LIST_SCRIPT_WIDTH 20
#define LIST_FRAME_WIDTH 40
#define LIST_HOST_WIDTH 16

#define put_time answer_put_time
#define info_line answer_info_line

static const char *script_of(const struct crash_row *c) {
        /* crashes recorded before the handler named the script (and a store filled by other means) */
        return c->script ? c->script : c->comm ? c->comm : path_base_name(c->exe);
}

static void list_json(FILE *m, const struct crash_row *c) {
        fprintf(m, "{\"id\":%lld,\"time_usec\":%lld,\"pid\":%d,\"uid\":%lld,\"gid\":%lld,"
                "\"signal\":%d,\"signal_name\":\"%s\",\"python_version\":",
                (long long)c->id, (long long)c->time_usec, c->pid, (long long)c->uid, (long long)c->gid, c->signal,
                signal_full_name(c->signal));
        put_json_str(m, c->python_version);
        fputs(",\"core\":", m);
        put_json_str(m, c->core);
        fputs(",\"comm\":", m);
        put_json_str(m, c->comm);
        fputs(",\"exe\":", m);
        put_json_str(m, c->exe);
        fputs(",\"script\":", m);
        put_json_str(m, script_of(c));
        fputs(",\"frame\":", m);
        if (c->function) {
                fputs("{\"function\":", m);
                put_json_str(m, c->function);
                fputs(",\"file\":", m);
                put_json_str(m, c->file);
                fprintf(m, ",\"line\":%d}", c->line);
        } else
                fputs("null", m);
        fputs(",\"state\":", m);
        put_json_str(m, c->state);
        fputs(",\"error\":", m);
        put_json_str(m, c->error);
        fputs(",\"signature\":", m);
        put_json_str(m, c->signature);
        if (c->host) {
                fputs(",\"host\":", m);
                put_json_str(m, c->host);
        }
        fputc('}', m);
}

static void list_text(FILE *m, const struct query *q, const struct crash_row *c) {
        /* no allocation to fail (it showed "-" as if no frame were known): the column shows
         * LIST_FRAME_WIDTH characters, each at most 4 bytes */
        char frame[8 * LIST_FRAME_WIDTH];

        put_time(m, c->time_usec);
        if (q->hosts) {
                fputc(' ', m);
                esc_fput_column(m, c->host ? c->host : "?", LIST_HOST_WIDTH);
        }
        fprintf(m, " %6lld %7d %5lld %-7s ", (long long)c->id, c->pid, (long long)c->uid,
                signal_full_name(c->signal));
        /* every column a crash chose is escaped and cut to its width, so the rest line up */
        esc_fput_column(m, c->python_version ? c->python_version : "-", LIST_PYTHON_WIDTH);
        fprintf(m, " %-12s ", c->core);
        esc_fput_column(m, script_of(c), LIST_SCRIPT_WIDTH);
        fputc(' ', m);
        if (c->function)
                snprintf(frame, sizeof(frame), "%s (%s:%d)", c->function, path_base_name(c->file), c->line);
        esc_fput_column(m, c->function ? frame : "-", LIST_FRAME_WIDTH);
        fprintf(m, " %s", c->state ? c->state : "?");
}

/* The rows of list, kept so that -n N can be printed oldest first. */
struct list_lines {
        const struct query *q;
        FILE *direct;                   /* rows in the order they come: printed at once, here */
        char **lines;
        size_t n, allocated;
};

static void list_header(FILE *out, const struct query *q) {
        if (q->json)
                fputc('[', out);
        else if (!q->no_legend && q->hosts)
                fprintf(out, "%-27s %-*s %6s %7s %5s %-7s %-*s %-12s %-*s %-*s %s\n", "TIME", LIST_HOST_WIDTH, "HOST",
                        "ID", "PID", "UID", "SIG", LIST_PYTHON_WIDTH, "PYTHON", "CORE", LIST_SCRIPT_WIDTH, "SCRIPT",
                        LIST_FRAME_WIDTH, "FRAME", "STATE");
        else if (!q->no_legend)
                fprintf(out, "%-27s %6s %7s %5s %-7s %-*s %-12s %-*s %-*s %s\n", "TIME", "ID", "PID", "UID", "SIG",
                        LIST_PYTHON_WIDTH, "PYTHON", "CORE", LIST_SCRIPT_WIDTH, "SCRIPT", LIST_FRAME_WIDTH, "FRAME",
                        "STATE");
}

void answer_list_header(FILE *out, const struct query *q) {
        list_header(out, q);
}

void answer_list_row(FILE *out, const struct query *q, const struct crash_row *c) {
        if (q->json)
                list_json(out, c);
        else
                list_text(out, q, c);
}

static int collect_row(const struct crash_row *c, void *userdata) {
        struct list_lines *l = userdata;
        char *line = NULL;
        size_t len = 0;

        if (l->direct) {
                if (l->n++ == 0)
                        list_header(l->direct, l->q);
                else if (l->q->json)
                        fputc(',', l->direct);
                if (l->q->json)
                        list_json(l->direct, c);
                else {
                        list_text(l->direct, l->q, c);
                        fputc('\n', l->direct);
                }
                return 0;
        }
        FILE *m = open_memstream(&line, &len);

        if (!m)
                return -ENOMEM;
        if (l->q->json)
                list_json(m, c);
        else
                list_text(m, l->q, c);
        if (fclose(m) != 0 || grow_array(&l->lines, &l->allocated, l->n + 1, sizeof(*l->lines)) < 0) {
                free(line);
                return -ENOMEM;
        }
        l->lines[l->n++] = line;
        return 0;
}

static int run_list(sqlite3 *db, const struct query *q, int64_t uid, int cores_fd, FILE *out,
                    char *err, size_t errsz) {
        struct store_filter f = filter_of(q, uid);
        /* -n N: the last N, still printed oldest first unless -r: kept, then printed the other way */
        bool newest_first = q->reverse || q->limit > 0, flip = q->limit > 0 && !q->reverse;
        struct list_lines l = { .q = q, .direct = flip ? NULL : out };
        int r;

        flockfile(out);         /* once, not in each of a row's dozen writes */
        r = store_list(db, &f, newest_first, q->limit, cores_fd, collect_row, &l);
        funlockfile(out);

        if (r < 0) {
                for (size_t i = 0; !l.direct && i < l.n; i++)
                        free(l.lines[i]);
                free(l.lines);
                return errorf(err, errsz, "cannot read the store: %s", r == -ENOMEM ? "out of memory" : store_errmsg(db)),
                       r;
        }
        if (l.n == 0) {
                /* JSON readers still get a document; the exit status says nothing matched */
                if (q->json)
                        fputs("[]\n", out);
                snprintf(err, errsz, "No crashes match.");
                return 1;
        }
        if (!l.direct)
                list_header(out, q);
        for (size_t k = 0; !l.direct && k < l.n; k++) {
                size_t i = flip ? l.n - 1 - k : k;
                if (q->json && k)
                        fputc(',', out);
                fputs(l.lines[i], out);
                if (!q->json)
                        fputc('\n', out);
                free(l.lines[i]);
        }
        free(l.lines);
        if (q->json)
                fputs("]\n", out);
        else if (!q->no_legend)
                fprintf(out, "\n%zu crash%s listed.\n", l.n, l.n == 1 ? "" : "es");
        return 0;
}

int query_find_newest(sqlite3 *db, const struct query *q, int64_t uid, int64_t *id, char **core_path,
                      char **exe) {
        struct store_filter f = filter_of(q, uid);
        return store_find_newest(db, &f, id, core_path, exe);
}

void answer_info_line(FILE *out, const char *key, const char *value) {
        if (!value)
                return;
        fprintf(out, "%16s: ", key);
        esc_fputs(out, value);
        fputc('\n', out);
}

static const char *col_text(const struct crash_info *ci, enum crash_column c) {
        return ci->v[c].type == STORE_TEXT ? ci->v[c].s : NULL;
}

static int64_t col_int(const struct crash_info *ci, enum crash_column c) {
        return ci->v[c].type == STORE_INT ? ci->v[c].i : 0;
}

static void put_json_value(FILE *out, const struct store_value *v) {
        if (v->type == STORE_INT)
                fprintf(out, "%lld", (long long)v->i);
        else
                put_json_str(out, v->type == STORE_TEXT ? v->s : NULL);
}

static void info_json(FILE *out, const struct crash_info *ci, const char *core_file) {
        /* every column, names as in the store; the signature is one key, its group's object below */
        fputc('{', out);
        for (int i = 0, n = 0; i < _COL_JSON_MAX; i++) {
                if (i == COL_SIGNATURE)
                        continue;
                fprintf(out, "%s\"%s\":", n++ ? "," : "", ci->v[i].name);
                put_json_value(out, &ci->v[i]);
        }
        fputs(",\"cmdline\":", out);
        put_json_document(out, col_text(ci, COL_CMDLINE));
        fputs(",\"thread_names\":", out);
        put_json_document(out, col_text(ci, COL_THREAD_NAMES));
        fputs(",\"signal_name\":", out);
        put_json_str(out, signal_full_name((int)col_int(ci, COL_SIGNAL)));
        fputs(",\"core_file\":", out);
        put_json_str(out, core_file[0] ? core_file : NULL);
        fputs(",\"signature\":", out);
        if (col_text(ci, COL_SIGNATURE)) {
                /* the group's columns are null if its row is gone */
                fputs("{\"signature\":", out);
                put_json_str(out, col_text(ci, COL_SIGNATURE));
                fputs(",\"title\":", out);
                put_json_value(out, &ci->v[COL_TITLE]);
                fputs(",\"count\":", out);
                put_json_value(out, &ci->v[COL_COUNT]);
                fputs(",\"first_usec\":", out);
                put_json_value(out, &ci->v[COL_FIRST]);
                fputs(",\"last_usec\":", out);
                put_json_value(out, &ci->v[COL_LAST]);
                fputc('}', out);
        } else
                fputs("null", out);
}

static int info_text(FILE *out, const struct crash_info *ci, const char *core_file) {
        char buf[PATH_MAX + 64];
        _cleanup_free_ char *cmdline = NULL;
        int sig = (int)col_int(ci, COL_SIGNAL);

        /* before anything is printed: a line left out would pass for one the store lacks */
        if (cmdline_join_json(col_text(ci, COL_CMDLINE), &cmdline) < 0)
                return -ENOMEM;

        snprintf(buf, sizeof(buf), "%lld", (long long)col_int(ci, COL_ID));
        info_line(out, "Crash", buf);
        snprintf(buf, sizeof(buf), "%lld (%s)", (long long)col_int(ci, COL_PID),
                 col_text(ci, COL_COMM) ? col_text(ci, COL_COMM) : "?");
        info_line(out, "PID", buf);
        if (ci->v[COL_PID_NS].type == STORE_INT && col_int(ci, COL_PID_NS) != col_int(ci, COL_PID)) {
                snprintf(buf, sizeof(buf), "%lld", (long long)col_int(ci, COL_PID_NS));
                info_line(out, "PID in container", buf);
        }
        if (ci->v[COL_TID].type == STORE_INT) {
                snprintf(buf, sizeof(buf), "%lld", (long long)col_int(ci, COL_TID));
                info_line(out, "Crashed thread", buf);
        }
        snprintf(buf, sizeof(buf), "%lld", (long long)col_int(ci, COL_UID));
        info_line(out, "UID", buf);
        snprintf(buf, sizeof(buf), "%lld", (long long)col_int(ci, COL_GID));
        info_line(out, "GID", buf);
        snprintf(buf, sizeof(buf), "%d (%s)", sig, signal_full_name(sig));
        info_line(out, "Signal", buf);
        fprintf(out, "%16s: ", "Timestamp");
        put_time(out, col_int(ci, COL_TIME));
        fputc('\n', out);
        info_line(out, "Command Line", cmdline);
        info_line(out, "Executable", col_text(ci, COL_EXE));
        info_line(out, "Working Dir", col_text(ci, COL_CWD));
        info_line(out, "Control Group", col_text(ci, COL_CGROUP));
        info_line(out, "Unit", col_text(ci, COL_UNIT));
        if (col_text(ci, COL_CONTAINER_ID)) {
                snprintf(buf, sizeof(buf), "%s %s", col_text(ci, COL_CONTAINER_RUNTIME) ?
                         col_text(ci, COL_CONTAINER_RUNTIME) : "?", col_text(ci, COL_CONTAINER_ID));
                info_line(out, "Container", buf);
        } else
                info_line(out, "Container", col_int(ci, COL_CONTAINER) ? "yes (its own root or namespaces)" : NULL);
        info_line(out, "Boot ID", col_text(ci, COL_BOOT_ID));
        info_line(out, "Hostname", col_text(ci, COL_HOSTNAME));
        snprintf(buf, sizeof(buf), "%s%s%s", col_text(ci, COL_CORE_STATE) ? col_text(ci, COL_CORE_STATE) : "?",
                 col_text(ci, COL_CAPTURE_NOTE) ? ": " : "",
                 col_text(ci, COL_CAPTURE_NOTE) ? col_text(ci, COL_CAPTURE_NOTE) : "");
        info_line(out, "Core", buf);
        if (core_file[0]) {
                struct stat sb;
                snprintf(buf, sizeof(buf), "%s%s", core_file, stat(core_file, &sb) < 0 ? " (missing)" : "");
                info_line(out, "Storage", buf);
                snprintf(buf, sizeof(buf), "%.1f MiB on disk, %.1f MiB uncompressed",
                         col_int(ci, COL_CORE_STORED_SIZE) / 1048576.0, col_int(ci, COL_CORE_SIZE) / 1048576.0);
                info_line(out, "Size", buf);
        }
        if (col_int(ci, COL_SUPPRESSED) > 0) {
                snprintf(buf, sizeof(buf), "%lld earlier crashes of this executable dropped by the rate limit",
                         (long long)col_int(ci, COL_SUPPRESSED));
                info_line(out, "Suppressed", buf);
        }
        info_line(out, "Python", col_text(ci, COL_PYTHON));
        snprintf(buf, sizeof(buf), "%s (attempts: %lld)%s%s", col_text(ci, COL_STATE) ? col_text(ci, COL_STATE) : "?",
                 (long long)col_int(ci, COL_ATTEMPTS), col_text(ci, COL_ERROR) ? ", " : "",
                 col_text(ci, COL_ERROR) ? col_text(ci, COL_ERROR) : "");
        info_line(out, "Analysis", buf);
        if (col_text(ci, COL_SIGNATURE)) {
                snprintf(buf, sizeof(buf), "%s (seen %lld time%s)", col_text(ci, COL_SIGNATURE),
                         (long long)col_int(ci, COL_COUNT), col_int(ci, COL_COUNT) == 1 ? "" : "s");
                info_line(out, "Signature", buf);
                fprintf(out, "%16s: ", "First seen");
                put_time(out, col_int(ci, COL_FIRST));
                fprintf(out, "\n%16s: ", "Last seen");
                put_time(out, col_int(ci, COL_LAST));
                fputc('\n', out);
                info_line(out, "Summary", col_text(ci, COL_TITLE));
        }
        return 0;
}

/* The files the crashed process had mapped, as the handler kept them (or said why not). */
struct binaries_out {
        FILE *out;
        bool json;
        size_t n;
};

static int binary_row(const struct crash_binary *b, void *userdata) {
        struct binaries_out *o = userdata;
        FILE *out = o->out;

        if (o->json) {
                fputs(o->n ? ",{\"path\":" : "{\"path\":", out);
                put_json_str(out, b->path);
                fprintf(out, ",\"address\":%llu,\"size\":%llu,\"build_id\":", (unsigned long long)b->address,
                        (unsigned long long)b->size);
                put_json_str(out, b->build_id);
                fputs(",\"sha256\":", out);
                put_json_str(out, b->hash);
                fputs(",\"note\":", out);
                put_json_str(out, b->note);
                fputc('}', out);
        } else {
                fprintf(out, "%16s: ", o->n ? "" : "Binaries");
                esc_fputs(out, b->path);
                fprintf(out, " (%.1f MiB, %s", b->size / 1048576.0, b->hash ? "kept" : "not kept: ");
                if (!b->hash)
                        esc_fputs(out, b->note ? b->note : "?");
                if (b->build_id) {
                        fputs(", build-id ", out);
                        esc_fputs(out, b->build_id);
                }
                fputs(")\n", out);
        }
        o->n++;
        return 0;
}

static int run_info(sqlite3 *db, int64_t id, int64_t uid, const char *dir, bool json, FILE *out) {
        struct crash_info ci;
        char core_file[PATH_MAX] = "";
        int r = store_get_crash(db, id, uid, &ci);

        if (r <= 0)
                return r < 0 ? r : 1;
        /* a removed core has a path in its history, not on disk */
        if (col_text(&ci, COL_CORE_PATH) && col_text(&ci, COL_CORE_STATE) &&
            !strcmp(col_text(&ci, COL_CORE_STATE), core_state_to_string(CORE_PRESENT)))
                snprintf(core_file, sizeof(core_file), "%s/%s", dir, col_text(&ci, COL_CORE_PATH));
        struct binaries_out b = { .out = out, .json = json };
        if (json) {
                info_json(out, &ci, core_file);
                fputs(",\"binaries\":[", out);
        } else if ((r = info_text(out, &ci, core_file)) < 0) {
                crash_info_done(&ci);
                return r;
        }
        r = store_list_binaries(db, id, binary_row, &b);
        if (json)
                fputs("]}\n", out);
        crash_info_done(&ci);
        return r < 0 ? r : 0;
}

/* The report in the format of pystack core: the stored report, through the one renderer. */
static int run_show(sqlite3 *db, int64_t id, const struct query *q, FILE *out) {
        _cleanup_free_ char *json = NULL;
        struct text_options o = { .native = q->native, .locals = q->locals, .tasks = q->tasks };
        struct json_doc *doc = NULL;
        size_t len = 0;
        int r = store_get_report(db, id, &json, &len);

        if (r <= 0)
                return r < 0 ? r : 2;   /* not analysed (yet) */
        /* read before anything is printed, for --json too: a damaged report is said to be so */
        r = json_parse(json, len, &doc);
        if (r < 0)
                return r == -ENOMEM ? r : 3;
        if (q->json) {
                json_free(doc);
                put_json_document(out, json);
                return 0;
        }
        r = report_text_render(out, json_root(doc), &o);
        json_free(doc);
        return r;
}

struct groups_out {
        const struct query *q;
        FILE *out;
        size_t n;
};

/* as the first row comes: nothing at all is printed when nothing matches (as list) */
static void groups_header(FILE *out, const struct query *q) {
        if (q->json)
                fputc('[', out);
        else if (!q->no_legend)
                fprintf(out, "%-16s %6s %-27s %-27s %s\n", "SIGNATURE", "COUNT", "FIRST", "LAST", "SUMMARY");
}

static int group_row(const struct group_row *g, void *userdata) {
        struct groups_out *o = userdata;
        FILE *out = o->out;

        if (o->n == 0)
                groups_header(out, o->q);
        if (o->q->json) {
                fputs(o->n ? ",{\"signature\":" : "{\"signature\":", out);
                put_json_str(out, g->signature);
                fputs(",\"title\":", out);
                put_json_str(out, g->title);
                fprintf(out, ",\"count\":%lld,\"first_usec\":%lld,\"last_usec\":%lld}", (long long)g->count,
                        (long long)g->first_usec, (long long)g->last_usec);
        } else {
                fprintf(out, "%-16s %6lld ", g->signature, (long long)g->count);
                put_time(out, g->first_usec);
                fputc(' ', out);
                put_time(out, g->last_usec);
                fputc(' ', out);
                esc_fputs(out, g->title ? g->title : "-");
                fputc('\n', out);
        }
        o->n++;
        return 0;
}

static int run_groups(sqlite3 *db, const struct query *q, int64_t uid, FILE *out, char *err, size_t errsz) {
        struct store_filter f = filter_of(q, uid);
        struct groups_out o = { .q = q, .out = out };
        int r;

        r = store_groups(db, &f, group_row, &o);
        if (r < 0)
                return errorf(err, errsz, "cannot read the store: %s", r == -ENOMEM ? "out of memory" : store_errmsg(db)),
                       r;
        if (o.n == 0) {
                /* JSON readers still get a document; the exit status says nothing matched */
                if (q->json)
                        fputs("[]\n", out);
                return snprintf(err, errsz, "No analysed crashes match."), 1;
        }
        if (q->json)
                fputs("]\n", out);
        else if (!q->no_legend)
                fprintf(out, "\n%zu signature%s.\n", o.n, o.n == 1 ? "" : "s");
        return 0;
}

static int run_analyze(const struct query_store *s, int64_t id, bool json, FILE *out) {
        int r = s->requeue ? s->requeue(s, id) : store_requeue_for_analysis(s->db, id);

        if (r <= 0)
                return r < 0 ? r : 2;   /* no core, or being analysed right now */
        if (json)
                fprintf(out, "{\"id\":%lld,\"state\":\"pending\"}\n", (long long)id);
        else
                fprintf(out, "Crash %lld queued for a new analysis.\n", (long long)id);
        return 0;
}

int query_run(const struct query_store *s, const struct query *q, int64_t uid, FILE *out, char *err, size_t errsz) {
        sqlite3 *db = s->db;
        int64_t id;
        int r;

        if (q->verb == VERB_LIST)
                return run_list(db, q, uid, s->cores_fd, out, err, errsz);
        if (q->verb == VERB_GROUPS)
                return run_groups(db, q, uid, out, err, errsz);
        if (q->verb != VERB_INFO && q->verb != VERB_SHOW && q->verb != VERB_ANALYZE)
                return errorf(err, errsz, "%s is not a query", query_verb_name(q->verb));

        r = query_find_newest(db, q, uid, &id, NULL, NULL);
        if (r < 0)
                return errorf(err, errsz, "cannot read the store: %s", r == -ENOMEM ? "out of memory" : store_errmsg(db)),
                       -EIO;
        if (r == 0)
                return snprintf(err, errsz, "No crashes match."), 1;
        if (q->verb == VERB_INFO)
                r = run_info(db, id, uid, s->dir, q->json, out);
        else if (q->verb == VERB_SHOW) {
                r = run_show(db, id, q, out);
                if (r == 2)
                        return snprintf(err, errsz, "Crash %lld has not been analysed (yet): see pystackctl info",
                                        (long long)id), 1;
                if (r == 3)
                        return snprintf(err, errsz, "Crash %lld: the stored report is damaged (not JSON): "
                                        "pystackctl analyze %lld makes a new one", (long long)id, (long long)id), 1;
        } else {
                r = run_analyze(s, id, q->json, out);
                if (r == 2)
                        return snprintf(err, errsz, "Crash %lld has no core to analyse, or is being analysed now",
                                        (long long)id), 1;
        }
        if (r < 0)
                return errorf(err, errsz, "cannot read the store: %s", r == -ENOMEM ? "out of memory" : store_errmsg(db)),
                       -EIO;
        return r;
}
