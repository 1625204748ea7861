/* SPDX-License-Identifier: MIT */
/*
 * journal: one entry per crash, in the words systemd-coredump uses (its
 * MESSAGE_ID and COREDUMP_* fields, so coredumpctl lists our crashes) and
 * ours (PYSTACK_*: the crash id, the signature and summary, the text report, and the report as
 * data in PYSTACK_REPORT_JSON, cut to JournalReportMax by journal_json.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <systemd/sd-journal.h>

#include "escape.h"
#include "cmdline.h"
#include "json.h"
#include "journal_json.h"
#include "report_text.h"
#include "log.h"
#include "pystackd.h"
#include "store.h"
#include "util.h"

#define COREDUMP_MESSAGE_ID "fc2e22bc6ee647b6b90729ab34a250b1"   /* systemd-coredump's */
#define MAX_FIELDS 64

struct entry {
        struct iovec iov[MAX_FIELDS];
        char *storage[MAX_FIELDS];
        size_t n;
};

static void entry_free(struct entry *e) {
        for (size_t i = 0; i < e->n; i++)
                free(e->storage[i]);
}

/* One field "NAME=value", value byte-exact; nothing for NULL. */
static void field(struct entry *e, const char *name, const char *value) {
        if (!value || e->n >= MAX_FIELDS || asprintf(&e->storage[e->n], "%s=%s", name, value) < 0)
                return;
        e->iov[e->n] = (struct iovec) { .iov_base = e->storage[e->n], .iov_len = strlen(e->storage[e->n]) };
        e->n++;
}

__attribute__((format(printf, 3, 4)))
static void fieldf(struct entry *e, const char *name, const char *fmt, ...) {
        _cleanup_free_ char *v = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&v, fmt, ap) < 0)
                v = NULL;
        va_end(ap);
        field(e, name, v);
}

/* MESSAGE is what journalctl prints to a terminal: escaped; the other fields stay byte-exact. */
__attribute__((format(printf, 2, 3)))
static void message(struct entry *e, const char *fmt, ...) {
        _cleanup_free_ char *raw = NULL, *v = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&raw, fmt, ap) >= 0)
                v = esc_strdup(raw);
        va_end(ap);
        field(e, "MESSAGE", v);
}

static const char *text_of(const struct crash_info *ci, enum crash_column c) {
        return ci->v[c].type == STORE_TEXT ? ci->v[c].s : NULL;
}

static long long int_of(const struct crash_info *ci, enum crash_column c) {
        return ci->v[c].type == STORE_INT ? ci->v[c].i : 0;
}

/* The report's crashed thread (its innermost entry), or NULL. */
static const struct json_value *crashed_thread(const struct json_value *root) {
        const struct json_value *threads = json_get(root, "threads");

        for (size_t i = 0; i < json_len(threads); i++)
                if (json_true(json_get(json_at(threads, i), "crashed")))
                        return json_at(threads, i);
        return NULL;
}

/* The name the handler read for thread tid ([[tid, name], ...]), or NULL; a new string. */
static char *thread_name(const char *names_json, int64_t tid) {
        struct json_doc *doc = NULL;
        char *name = NULL;

        if (!names_json || json_parse(names_json, strlen(names_json), &doc) < 0)
                return NULL;
        for (size_t i = 0; i < json_len(json_root(doc)); i++) {
                const struct json_value *pair = json_at(json_root(doc), i);

                if (json_int(json_at(pair, 0), -1) == tid && json_str(json_at(pair, 1))) {
                        name = strdup(json_str(json_at(pair, 1)));
                        break;
                }
        }
        json_free(doc);
        return name;
}

/*
 * The FDO package notes of the report's modules (the analyzer reads them from each module's
 * file): COREDUMP_PACKAGE_JSON as systemd-coredump writes it (an object of module paths), and
 * the executable's name and version.
 */
static void package_fields(struct entry *e, const struct json_value *root) {
        const struct json_value *mods = json_get(root, "modules"), *exe_pkg = NULL;
        const char *exe = json_str(json_get(root, "executable"));
        struct buf b = {};
        size_t n = 0;

        for (size_t i = 0; i < json_len(mods); i++) {
                const struct json_value *m = json_at(mods, i), *pkg = json_get(m, "package");
                const char *path = json_str(json_get(m, "path"));

                if (!pkg || pkg->type != JSON_OBJECT || !path)
                        continue;
                buf_puts(&b, n++ ? "," : "{");
                buf_put_json_string(&b, path, strlen(path));
                buf_put(&b, ":", 1);
                json_write(&b, pkg);
                if (exe && !strcmp(path, exe))
                        exe_pkg = pkg;
        }
        if (n) {
                buf_put(&b, "}", 1);
                field(e, "COREDUMP_PACKAGE_JSON", buf_str(&b));
        }
        buf_free(&b);
        field(e, "COREDUMP_PACKAGE_NAME", json_str(json_get(exe_pkg, "name")));
        field(e, "COREDUMP_PACKAGE_VERSION", json_str(json_get(exe_pkg, "version")));
}

/*
 * The report as text, as `pystackctl show --native` prints it (the one renderer): with locals
 * only when JournalLocals=yes.  The analysis's own text has them (pystackd analyses with --locals
 * for the store), so it is not what goes to the journal.
 */
static char *report_text(const struct daemon *d, const struct json_value *root) {
        struct text_options o = { .native = true, .locals = d->cfg.journal_locals };
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);

        if (!m)
                return NULL;
        if (report_text_render(m, root, &o) < 0) {
                fclose(m);
                free(text);
                return NULL;
        }
        if (fclose(m) != 0) {
                free(text);
                return NULL;
        }
        return text;
}

/* The report as data, cut to JournalReportMax. */
static void report_json_field(const struct daemon *d, struct entry *e, int64_t id, const struct json_value *root) {
        struct buf b = {};
        unsigned cut = 0;
        int r;

        if (!d->cfg.journal_report_max)
                return;
        r = journal_report_json(root, d->cfg.journal_locals, d->cfg.journal_report_max, &b, &cut);
        if (r == 0)
                field(e, "PYSTACK_REPORT_JSON", buf_str(&b));
        else
                log_msg(LOG_WARNING, "crash %lld: its report does not fit in JournalReportMax=%llu even cut down: "
                        "the journal entry has no PYSTACK_REPORT_JSON", (long long)id,
                        (unsigned long long)d->cfg.journal_report_max);
        if (r != 0 || cut)
                field(e, "PYSTACK_REPORT_TRUNCATED", "1");
        buf_free(&b);
}

void journal_crash(const struct daemon *d, int64_t id, const char *json, size_t len, const char *failure) {
        struct crash_info ci;
        struct entry e = {};
        struct json_doc *report = NULL;
        char core[PATH_MAX];

        if (store_get_crash(d->db, id, -1, &ci) <= 0)
                return;
        if (json && json_parse(json, len, &report) < 0)
                report = NULL;
        _cleanup_free_ char *cmdline = NULL;
        /* out of memory: the entry goes without its command line, as before */
        (void) cmdline_join_json(text_of(&ci, COL_CMDLINE), &cmdline);
        const char *script = text_of(&ci, COL_SCRIPT) ? text_of(&ci, COL_SCRIPT) :
                             text_of(&ci, COL_COMM) ? text_of(&ci, COL_COMM) : "?";
        const char *signal = signal_full_name((int)int_of(&ci, COL_SIGNAL));
        /* the summary the report derived, or for a crash that was not analysed, its signal */
        const char *title = !failure && text_of(&ci, COL_TITLE) ? text_of(&ci, COL_TITLE) : signal;
        int pid = (int)int_of(&ci, COL_PID);
        long long uid = int_of(&ci, COL_UID);

        if (!failure)
                log_msg(LOG_INFO, "crash %lld: process %d (%s) crashed with %s", (long long)id, pid, script, title);
        if (!d->cfg.journal) {
                json_free(report);
                crash_info_done(&ci);
                return;
        }
        if (failure)
                message(&e, "Process %d (%s) of user %lld crashed with %s; its analysis failed: %s", pid, script, uid,
                        title, failure);
        else
                message(&e, "Python process %d (%s) of user %lld crashed with %s", pid, script, uid, title);
        field(&e, "PYSTACK_ANALYSIS_ERROR", failure);
        field(&e, "MESSAGE_ID", COREDUMP_MESSAGE_ID);
        field(&e, "PRIORITY", "2");
        field(&e, "SYSLOG_IDENTIFIER", "pystackd");
        fieldf(&e, "COREDUMP_PID", "%d", pid);
        fieldf(&e, "COREDUMP_UID", "%lld", uid);
        fieldf(&e, "COREDUMP_GID", "%lld", int_of(&ci, COL_GID));
        fieldf(&e, "COREDUMP_SIGNAL", "%lld", int_of(&ci, COL_SIGNAL));
        field(&e, "COREDUMP_SIGNAL_NAME", signal);
        fieldf(&e, "COREDUMP_TIMESTAMP", "%lld", int_of(&ci, COL_TIME));
        field(&e, "COREDUMP_COMM", text_of(&ci, COL_COMM));
        field(&e, "COREDUMP_EXE", text_of(&ci, COL_EXE));
        field(&e, "COREDUMP_CMDLINE", cmdline);
        field(&e, "COREDUMP_CWD", text_of(&ci, COL_CWD));
        field(&e, "COREDUMP_HOSTNAME", text_of(&ci, COL_HOSTNAME));
        field(&e, "COREDUMP_UNIT", text_of(&ci, COL_UNIT));
        field(&e, "COREDUMP_CGROUP", text_of(&ci, COL_CGROUP));
        if (int_of(&ci, COL_CONTAINER))
                field(&e, "PYSTACK_CONTAINER", "1");
        field(&e, "PYSTACK_CONTAINER_RUNTIME", text_of(&ci, COL_CONTAINER_RUNTIME));
        field(&e, "PYSTACK_CONTAINER_ID", text_of(&ci, COL_CONTAINER_ID));
        if (ci.v[COL_RLIMIT].type == STORE_INT && int_of(&ci, COL_RLIMIT) >= 0)
                fieldf(&e, "COREDUMP_RLIMIT", "%lld", int_of(&ci, COL_RLIMIT));
        if (text_of(&ci, COL_CORE_PATH) &&
            (size_t)snprintf(core, sizeof(core), "%s/%s", d->cfg.directory, text_of(&ci, COL_CORE_PATH)) < sizeof(core))
                field(&e, "COREDUMP_FILENAME", core);
        fieldf(&e, "PYSTACK_CRASH_ID", "%lld", (long long)id);
        field(&e, "PYSTACK_SIGNATURE", failure ? NULL : text_of(&ci, COL_SIGNATURE));
        field(&e, "PYSTACK_TITLE", title);
        field(&e, "PYSTACK_PYTHON_VERSION", text_of(&ci, COL_PYTHON));
        if (report) {
                const struct json_value *root = json_root(report), *t = crashed_thread(root);
                const struct json_value *frame = json_get(root, "frame"), *sig = json_get(root, "signal");
                int64_t tid = ci.v[COL_TID].type == STORE_INT ? int_of(&ci, COL_TID) : json_int(json_get(t, "tid"), -1);
                _cleanup_free_ char *tname = tid > 0 ? thread_name(text_of(&ci, COL_THREAD_NAMES), tid) : NULL;
                _cleanup_free_ char *text = report_text(d, root);

                if (tid > 0)
                        fieldf(&e, "COREDUMP_TID", "%lld", (long long)tid);
                field(&e, "COREDUMP_THREAD_NAME", tname);
                if (json_get(sig, "code") && json_get(sig, "code")->type == JSON_NUMBER)
                        fieldf(&e, "COREDUMP_CODE", "%lld", (long long)json_int(json_get(sig, "code"), 0));
                field(&e, "PYSTACK_SCRIPT", json_str(json_get(root, "script")));
                field(&e, "PYSTACK_FUNCTION", json_str(json_get(frame, "function")));
                field(&e, "PYSTACK_FILE", json_str(json_get(frame, "file")));
                if (json_get(frame, "line") && json_get(frame, "line")->type == JSON_NUMBER)
                        fieldf(&e, "PYSTACK_LINE", "%lld", (long long)json_int(json_get(frame, "line"), -1));
                /*
                 * The long fields last: the journal compresses a field over 512 bytes, and a reader
                 * looking for a field goes through an entry's fields in the order they were first
                 * written, decompressing each compressed one it meets (pystackctl --directory reads
                 * 100,000 entries this way).
                 */
                package_fields(&e, root);
                field(&e, "PYSTACK_REPORT", text);
                report_json_field(d, &e, id, root);
        }
        sd_journal_sendv(e.iov, (int)e.n);   /* no journald: nothing to do, the store has it all */
        entry_free(&e);
        json_free(report);
        crash_info_done(&ci);
}
