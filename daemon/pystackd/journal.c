/* SPDX-License-Identifier: MIT */
/*
 * journal: one entry per crash, in the words systemd-coredump uses (its
 * MESSAGE_ID and COREDUMP_* fields, so coredumpctl lists our crashes) and
 * ours (PYSTACK_*: the crash id, the signature and summary, the text report).
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
#include "log.h"
#include "pystackd.h"
#include "store.h"
#include "util.h"

#define COREDUMP_MESSAGE_ID "fc2e22bc6ee647b6b90729ab34a250b1"   /* systemd-coredump's */
#define MAX_FIELDS 40

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

void journal_crash(const struct daemon *d, int64_t id, const char *json, size_t len, const char *failure) {
        struct crash_info ci;
        struct entry e = {};
        struct json_doc *report = NULL;
        char core[PATH_MAX];

        if (store_get_crash(d->db, id, -1, &ci) <= 0)
                return;
        if (json && json_parse(json, len, &report) < 0)
                report = NULL;
        _cleanup_free_ char *cmdline = cmdline_join_json(text_of(&ci, COL_CMDLINE));
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
        field(&e, "PYSTACK_REPORT", report ? json_str(json_get(json_root(report), "text")) : NULL);
        sd_journal_sendv(e.iov, (int)e.n);   /* no journald: nothing to do, the store has it all */
        entry_free(&e);
        json_free(report);
        crash_info_done(&ci);
}
