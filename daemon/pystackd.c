/* SPDX-License-Identifier: MIT */
/*
 * pystackd: analyses every stored crash once, records the result, tells the
 * journal, and keeps the cores within their limits.
 *
 * The queue is the store itself (crashes.state): pending crashes are
 * claimed oldest first, each analysed by a child that runs the analyzer
 * with nothing to lose — an unprivileged user, no_new_privs, no core dumps,
 * limits on memory, CPU and wall time, the core handed over as an open
 * descriptor — and whose JSON report is checked and filed by SQLite's own
 * JSON functions.  A crash whose analysis was cut off (pystackd killed,
 * SIGTERM) is simply pending again; a core that breaks the analyzer is
 * retried MaxAttempts times and then marked failed with the reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "conf.h"
#include "escape.h"
#include "proc_info.h"
#include "query.h"
#include "util.h"
#include "retention.h"
#include "store.h"

#define MAX_REPORT (64u << 20)          /* a larger report is refused as broken */
#define MAX_STDERR 4096
#define STOP_GRACE_USEC (5 * 1000000LL)
#define MAINTENANCE_USEC (60 * 1000000LL)
#define RESCAN_USEC (5 * 1000000LL)
#define COREDUMP_MESSAGE_ID "fc2e22bc6ee647b6b90729ab34a250b1"   /* systemd-coredump's */

struct job {
        int64_t id;
        pid_t pid;
        int out_fd, err_fd;
        struct buf out;
        char err[MAX_STDERR + 1];
        size_t err_len;
        int64_t deadline;
        bool timed_out, too_big, exited;
        bool requeue;                   /* killed because we are stopping: back to the queue, uncounted */
        int status;
};

static struct {
        const char *config_path;
        struct config cfg;
        sqlite3 *db;
        int storage_fd, notify_fd, sig_fd, query_fd;
        unsigned n_queries;
        struct job *jobs;
        unsigned n_jobs, max_jobs;
        bool stopping;
        bool rescan;                    /* a worker came free: look at the queue at once */
        int64_t stop_deadline, next_maintenance, watchdog_usec, next_watchdog;
        uid_t analyzer_uid;
        gid_t analyzer_gid;
        char cache_dir[PATH_MAX];
        uint64_t analysed, failed;
} d = { .storage_fd = -1, .notify_fd = -1, .sig_fd = -1, .query_fd = -1 };

#define MAX_QUERIES 16

__attribute__((format(printf, 2, 3)))
static void log_msg(int priority, const char *fmt, ...) {
        va_list ap;

        /* stderr: the journal takes it when systemd runs us, a person reads it otherwise; the
         * names in it come from crashed processes */
        fputs(priority <= LOG_ERR ? "<3>" : priority <= LOG_WARNING ? "<4>" : "<6>", stderr);
        va_start(ap, fmt);
        esc_vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static int64_t now_usec(int clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- set-up ---- */

static int setup_runtime(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        char path[PATH_MAX];

        if (mkdir(d.cfg.runtime_directory, 0755) < 0 && errno != EEXIST)
                return -errno;
        if (lstat(d.cfg.runtime_directory, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
            (st.st_mode & 022))
                return -EPERM;
        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", d.cfg.runtime_directory) >=
            sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        unlink(sa.sun_path);
        d.notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (d.notify_fd < 0 || bind(d.notify_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        chmod(sa.sun_path, 0600);   /* only root (the handler) wakes us */

        /* anyone may ask; each answer is restricted to the asker's own crashes */
        struct sockaddr_un qa = { .sun_family = AF_UNIX };
        snprintf(qa.sun_path, sizeof(qa.sun_path), "%s/query", d.cfg.runtime_directory);
        unlink(qa.sun_path);
        d.query_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (d.query_fd < 0 || bind(d.query_fd, (struct sockaddr *)&qa, sizeof(qa)) < 0 ||
            chmod(qa.sun_path, 0666) < 0 || listen(d.query_fd, 64) < 0)
                return -errno;

        /* the analyzer's debug-file cache: its own, in our runtime directory */
        snprintf(d.cache_dir, sizeof(d.cache_dir), "%s/debug-cache", d.cfg.runtime_directory);
        if (mkdir(d.cache_dir, 0700) < 0 && errno != EEXIST)
                d.cache_dir[0] = 0;
        else if (lstat(d.cache_dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
                 chown(d.cache_dir, d.analyzer_uid, d.analyzer_gid) < 0)
                d.cache_dir[0] = 0;
        (void)path;
        return 0;
}

static void resolve_user(void) {
        struct passwd *pw = getpwnam(d.cfg.user);

        if (!pw) {
                log_msg(LOG_WARNING, "user %s does not exist: analyses run as nobody", d.cfg.user);
                pw = getpwnam("nobody");
        }
        d.analyzer_uid = pw ? pw->pw_uid : 65534;
        d.analyzer_gid = pw ? pw->pw_gid : 65534;
}

static int load_config(void) {
        struct config c;
        char err[512];

        if (config_defaults(&c) < 0)
                return -ENOMEM;
        if (config_load(&c, d.config_path, true, err, sizeof(err)) < 0) {
                log_msg(LOG_ERR, "%s", err);
                config_free(&c);
                return -EINVAL;
        }
        config_free(&d.cfg);
        d.cfg = c;
        d.max_jobs = d.cfg.workers ? d.cfg.workers : (unsigned)MAX(sysconf(_SC_NPROCESSORS_ONLN), 1L);
        resolve_user();
        return 0;
}

/* ---- one analysis ---- */

/* The core of a crash, opened by us (root) for a child that could not open it itself. */
static int open_core(const char *core_path) {
        int fd;

        /* "cores/<name>": one level, no way out of the storage directory */
        if (!core_path || strncmp(core_path, "cores/", 6) || strchr(core_path + 6, '/') || core_path[6] == '.')
                return -EINVAL;
        fd = openat(d.storage_fd, core_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        return fd < 0 ? -errno : fd;
}

/* Which uid analyses a crash: the crashed process's own (it can read its own files and a hostile
 * core gains nothing it did not have), or the dedicated user for root's crashes. */
static void analyzer_identity(int64_t id, uid_t *uid, gid_t *gid) {
        sqlite3_stmt *st;

        *uid = d.analyzer_uid;
        *gid = d.analyzer_gid;
        if (sqlite3_prepare_v2(d.db, "SELECT uid, gid, dumpable FROM crashes WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
                return;
        sqlite3_bind_int64(st, 1, id);
        /* a set-uid program's core (dumpable != 1) holds memory its user may not read: not theirs to analyse */
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) != 0 && sqlite3_column_int(st, 2) == 1) {
                *uid = (uid_t)sqlite3_column_int64(st, 0);
                *gid = (gid_t)sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
}

/* In the child: shed everything, then become the analyzer. Never returns. */
static void run_analyzer(int core_fd, int out_fd, int err_fd, uid_t uid, gid_t gid, pid_t parent) {
        struct rlimit lim;
        char *argv[] = { d.cfg.analyzer, "core", "/dev/fd/3", "--json", "--with-text", "--native",
                         "--locals", "--no-color", NULL };
        char cache_env[PATH_MAX + 32], debuginfod_env[1024];
        char *envp[6];
        int n = 0;

        if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0 || dup2(core_fd, 3) != 3)
                _exit(127);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, STDIN_FILENO) < 0)
                _exit(127);
        close_range(4, ~0U, 0);
        if (chdir("/") < 0)
                _exit(127);

        /* a crash of the analyzer must not come back to us as a core */
        lim = (struct rlimit) { 0, 0 };
        setrlimit(RLIMIT_CORE, &lim);
        prctl(PR_SET_DUMPABLE, 0);
        lim = (struct rlimit) { d.cfg.memory_max, d.cfg.memory_max };
        setrlimit(RLIMIT_AS, &lim);
        lim = (struct rlimit) { d.cfg.timeout, d.cfg.timeout + 1 };
        setrlimit(RLIMIT_CPU, &lim);
        lim = (struct rlimit) { 64, 64 };
        setrlimit(RLIMIT_NOFILE, &lim);
        lim = (struct rlimit) { 64u << 20, 64u << 20 };
        setrlimit(RLIMIT_FSIZE, &lim);

        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                _exit(126);
        if (getuid() == 0 && uid != 0)
                _exit(126);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                _exit(126);
        /* set after the uid change, which clears it: an analysis never outlives pystackd */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(126);

        envp[n++] = "PATH=/usr/bin:/bin";
        envp[n++] = "LANG=C.UTF-8";
        if (d.cache_dir[0] && uid == d.analyzer_uid) {
                snprintf(cache_env, sizeof(cache_env), "PYSTACK_CACHE_DIR=%s", d.cache_dir);
                envp[n++] = cache_env;
        } else
                envp[n++] = "PYSTACK_CACHE_DIR=";
        const char *urls = getenv("DEBUGINFOD_URLS");
        if (urls && strlen(urls) < 900) {
                snprintf(debuginfod_env, sizeof(debuginfod_env), "DEBUGINFOD_URLS=%s", urls);
                envp[n++] = debuginfod_env;
        }
        envp[n] = NULL;
        execve(argv[0], argv, envp);
        _exit(127);
}

static int start_job(int64_t id, const char *core_path) {
        int out[2] = { -1, -1 }, err[2] = { -1, -1 }, core_fd;
        struct job *j;
        uid_t uid;
        gid_t gid;
        pid_t pid;

        core_fd = open_core(core_path);
        if (core_fd < 0) {
                store_set_state(d.db, id, "failed", "the stored core is missing");
                log_msg(LOG_WARNING, "crash %lld: the stored core %s is missing", (long long)id,
                        core_path ? core_path : "(none)");
                return 0;
        }
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
                close(core_fd);
                if (out[0] >= 0) {
                        close(out[0]);
                        close(out[1]);
                }
                return -errno;
        }
        analyzer_identity(id, &uid, &gid);
        pid_t parent = getpid();
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(core_fd);
                close(out[0]); close(out[1]); close(err[0]); close(err[1]);
                return r;
        }
        if (pid == 0)
                run_analyzer(core_fd, out[1], err[1], uid, gid, parent);
        close(core_fd);
        close(out[1]);
        close(err[1]);
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        fcntl(err[0], F_SETFL, O_NONBLOCK);
        j = &d.jobs[d.n_jobs++];
        *j = (struct job) {
                .id = id, .pid = pid, .out_fd = out[0], .err_fd = err[0],
                .deadline = now_usec(CLOCK_MONOTONIC) + (int64_t)d.cfg.timeout * 1000000,
        };
        return 0;
}

/* ---- filing a report ---- */

struct crash_facts {
        int64_t time_usec;
        int pid, uid, gid, signal;
        char *comm, *exe, *cmdline, *cwd, *hostname, *unit, *cgroup, *core_path, *python, *boot_id;
        int64_t rlimit;
        /* from the crashed thread, innermost first */
        char *fn, *file, *via;
        int line;
        char *script;
        char signature[17];
        char title[512];
        char *text;
};

static void facts_free(struct crash_facts *f) {
        free(f->comm); free(f->exe); free(f->cmdline); free(f->cwd); free(f->hostname); free(f->unit);
        free(f->cgroup); free(f->core_path); free(f->python); free(f->boot_id); free(f->fn); free(f->file);
        free(f->via); free(f->script); free(f->text);
}

/* FNV-1a, 64 bits: stable across runs and builds, which is all a signature needs */
static uint64_t fnv(uint64_t h, const char *s) {
        for (; s && *s; s++) {
                h ^= (unsigned char)*s;
                h *= 0x100000001b3ULL;
        }
        h ^= 0xff;      /* a separator: ("ab", "c") and ("a", "bc") differ */
        return h * 0x100000001b3ULL;
}

static int gather_facts(int64_t id, struct crash_facts *f) {
        sqlite3_stmt *st;
        uint64_t h = 0xcbf29ce484222325ULL;
        int counted = 0;

        if (sqlite3_prepare_v2(d.db,
                "SELECT time_usec, pid, uid, gid, signal, comm, exe,"
                " (SELECT group_concat(value, ' ') FROM json_each(CASE WHEN json_valid(cmdline) THEN cmdline END)),"
                " cwd, hostname, unit, cgroup, core_path, python_version, rlimit_core, boot_id,"
                " json_extract(report, '$.text'),"
                " (SELECT value FROM json_each(CASE WHEN json_valid(cmdline) THEN cmdline END)"
                "   WHERE key > 0 AND (value NOT LIKE '-%' OR value IN ('-c', '-m')) LIMIT 1),"
                " (SELECT value FROM json_each(CASE WHEN json_valid(cmdline) THEN cmdline END)"
                "   WHERE key > 0 AND value NOT LIKE '-%' LIMIT 1 OFFSET 1)"
                " FROM crashes WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_ROW) {
                sqlite3_finalize(st);
                return -ENOENT;
        }
        f->time_usec = sqlite3_column_int64(st, 0);
        f->pid = sqlite3_column_int(st, 1);
        f->uid = sqlite3_column_int(st, 2);
        f->gid = sqlite3_column_int(st, 3);
        f->signal = sqlite3_column_int(st, 4);
        f->comm = store_column_dup(st, 5);
        f->exe = store_column_dup(st, 6);
        f->cmdline = store_column_dup(st, 7);
        f->cwd = store_column_dup(st, 8);
        f->hostname = store_column_dup(st, 9);
        f->unit = store_column_dup(st, 10);
        f->cgroup = store_column_dup(st, 11);
        f->core_path = store_column_dup(st, 12);
        f->python = store_column_dup(st, 13);
        f->rlimit = sqlite3_column_int64(st, 14);
        f->boot_id = store_column_dup(st, 15);
        f->text = store_column_dup(st, 16);
        /* the script: "worker.py" for "python3 worker.py", "-c" or "-m module" as Python shows them */
        const char *first = (const char *)sqlite3_column_text(st, 17);
        const char *second = (const char *)sqlite3_column_text(st, 18);
        if (first && !strcmp(first, "-m") && second) {
                if (asprintf(&f->script, "-m %s", second) < 0)
                        f->script = NULL;
        }
        else if (first && (!strcmp(first, "-c") || (f->exe && strstr(path_base_name(f->exe), "python"))))
                f->script = strdup(first[0] == '-' ? first : path_base_name(first));
        if (!f->script)
                f->script = strdup(f->comm ? f->comm : "?");
        sqlite3_finalize(st);

        h = fnv(h, signal_full_name(f->signal));
        if (sqlite3_prepare_v2(d.db,
                "SELECT kind, function, file, line, library FROM frames WHERE crash_id = ?1 AND thread_idx ="
                " coalesce((SELECT idx FROM threads WHERE crash_id = ?1 AND crashed LIMIT 1), 0)"
                " ORDER BY idx DESC LIMIT 4096", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        bool seen_python = false, gap_done = false;
        char *gap = NULL;               /* the outermost named C frame seen since the innermost Python one */
        while (sqlite3_step(st) == SQLITE_ROW) {
                const char *kind = (const char *)sqlite3_column_text(st, 0);
                const char *fn = (const char *)sqlite3_column_text(st, 1);
                const char *file = (const char *)sqlite3_column_text(st, 2);
                const char *lib = (const char *)sqlite3_column_text(st, 4);
                bool python = kind && !strcmp(kind, "python");

                if (fn && counted < 8) {
                        /* functions and files, not lines: a signature should survive an edit elsewhere */
                        h = fnv(h, kind);
                        h = fnv(h, fn);
                        h = fnv(h, python ? path_base_name(file) : lib);
                        counted++;
                }
                if (python && !seen_python) {
                        seen_python = true;
                        f->fn = fn ? strdup(fn) : NULL;
                        f->file = file ? strdup(file) : NULL;
                        f->line = sqlite3_column_int(st, 3);
                } else if (python && !gap_done) {
                        /* the C function through which the outer Python code reached the innermost */
                        gap_done = true;
                        f->via = gap;
                        gap = NULL;
                } else if (seen_python && !gap_done && fn) {
                        free(gap);
                        gap = strdup(fn);
                }
        }
        free(gap);
        sqlite3_finalize(st);
        snprintf(f->signature, sizeof(f->signature), "%016llx", (unsigned long long)h);
        if (f->fn)
                snprintf(f->title, sizeof(f->title), "%s in %s (%s:%d)%s%s", signal_full_name(f->signal), f->fn,
                         path_base_name(f->file), f->line, f->via ? " via " : "", f->via ? f->via : "");
        else
                snprintf(f->title, sizeof(f->title), "%s", signal_full_name(f->signal));
        return 0;
}

/* One iovec field "NAME=value" for sd_journal_sendv. */
static void field(struct iovec *iov, size_t *n, char *storage[], const char *name, const char *value) {
        if (!value)
                return;
        if (asprintf(&storage[*n], "%s=%s", name, value) < 0)
                return;
        iov[*n] = (struct iovec) { .iov_base = storage[*n], .iov_len = strlen(storage[*n]) };
        (*n)++;
}

__attribute__((format(printf, 5, 6)))
static void fieldf(struct iovec *iov, size_t *n, char *storage[], const char *name, const char *fmt, ...) {
        char *v = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&v, fmt, ap) < 0)
                v = NULL;
        va_end(ap);
        field(iov, n, storage, name, v);
        free(v);
}

/* MESSAGE is what journalctl prints to a terminal: escaped; the other fields stay byte-exact. */
__attribute__((format(printf, 4, 5)))
static void message_field(struct iovec *iov, size_t *n, char *storage[], const char *fmt, ...) {
        char *raw = NULL, *v = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&raw, fmt, ap) >= 0)
                v = esc_strdup(raw);
        va_end(ap);
        field(iov, n, storage, "MESSAGE", v);
        free(raw);
        free(v);
}

static void journal_entry(int64_t id, const struct crash_facts *f, const char *failure) {
        struct iovec iov[40];
        char *storage[40];
        size_t n = 0;
        char core[PATH_MAX];

        if (failure)
                message_field(iov, &n, storage, "Process %d (%s) of user %d crashed with %s; its analysis failed: %s",
                              f->pid, f->script, f->uid, f->title, failure);
        else
                message_field(iov, &n, storage, "Python process %d (%s) of user %d crashed with %s", f->pid,
                              f->script, f->uid, f->title);
        field(iov, &n, storage, "PYSTACK_ANALYSIS_ERROR", failure);
        field(iov, &n, storage, "MESSAGE_ID", COREDUMP_MESSAGE_ID);
        field(iov, &n, storage, "PRIORITY", "2");
        field(iov, &n, storage, "SYSLOG_IDENTIFIER", "pystackd");
        fieldf(iov, &n, storage, "COREDUMP_PID", "%d", f->pid);
        fieldf(iov, &n, storage, "COREDUMP_UID", "%d", f->uid);
        fieldf(iov, &n, storage, "COREDUMP_GID", "%d", f->gid);
        fieldf(iov, &n, storage, "COREDUMP_SIGNAL", "%d", f->signal);
        field(iov, &n, storage, "COREDUMP_SIGNAL_NAME", signal_full_name(f->signal));
        fieldf(iov, &n, storage, "COREDUMP_TIMESTAMP", "%lld", (long long)f->time_usec);
        field(iov, &n, storage, "COREDUMP_COMM", f->comm);
        field(iov, &n, storage, "COREDUMP_EXE", f->exe);
        field(iov, &n, storage, "COREDUMP_CMDLINE", f->cmdline);
        field(iov, &n, storage, "COREDUMP_CWD", f->cwd);
        field(iov, &n, storage, "COREDUMP_HOSTNAME", f->hostname);
        field(iov, &n, storage, "COREDUMP_UNIT", f->unit);
        field(iov, &n, storage, "COREDUMP_CGROUP", f->cgroup);
        if (f->rlimit >= 0)
                fieldf(iov, &n, storage, "COREDUMP_RLIMIT", "%lld", (long long)f->rlimit);
        if (f->core_path && (size_t)snprintf(core, sizeof(core), "%s/%s", d.cfg.directory, f->core_path) < sizeof(core))
                field(iov, &n, storage, "COREDUMP_FILENAME", core);
        fieldf(iov, &n, storage, "PYSTACK_CRASH_ID", "%lld", (long long)id);
        field(iov, &n, storage, "PYSTACK_SIGNATURE", f->signature);
        field(iov, &n, storage, "PYSTACK_TITLE", f->title);
        field(iov, &n, storage, "PYSTACK_PYTHON_VERSION", f->python);
        field(iov, &n, storage, "PYSTACK_REPORT", f->text);
        sd_journal_sendv(iov, (int)n);   /* no journald: nothing to do, the store has it all */
        for (size_t i = 0; i < n; i++)
                free(storage[i]);
}

static void file_report(struct job *j, const char *note) {
        struct crash_facts f = {};
        int64_t now = now_usec(CLOCK_REALTIME);
        int r;

        r = store_ingest(d.db, j->id, buf_str(&j->out), j->out.n);
        if (r == -EBADMSG) {
                store_set_state(d.db, j->id, "failed", "the analyzer's report is not valid JSON");
                d.failed++;
                return;
        }
        /* the signature is computed from the rows just filed, then filed with the state done */
        bool facts = r == 0 && gather_facts(j->id, &f) == 0;
        if (r == 0)
                r = store_finish(d.db, j->id, facts ? f.signature : NULL, f.title, note, now);
        if (r < 0) {
                /* the store is busy or broken: the crash goes again (now, or after a restart) */
                log_msg(LOG_ERR, "crash %lld: cannot record the analysis: %s", (long long)j->id, sqlite3_errmsg(d.db));
                store_set_state(d.db, j->id, "pending", NULL);
                facts_free(&f);
                return;
        }
        d.analysed++;
        if (facts) {
                if (d.cfg.journal)
                        journal_entry(j->id, &f, NULL);
                log_msg(LOG_INFO, "crash %lld: process %d (%s) crashed with %s", (long long)j->id, f.pid, f.script,
                        f.title);
        }
        facts_free(&f);
}

/* Before store_finish(), a pystackd killed between filing a report and its signature left the crash
 * done without one: stores from then are mended at start. */
static void repair_signatures(void) {
        sqlite3_stmt *st;
        int64_t ids[1024];
        size_t n = 0;

        if (sqlite3_prepare_v2(d.db, "SELECT id FROM crashes WHERE state = 'done' AND signature IS NULL"
                               " AND report IS NOT NULL LIMIT 1024", -1, &st, NULL) != SQLITE_OK)
                return;
        while (n < 1024 && sqlite3_step(st) == SQLITE_ROW)
                ids[n++] = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        for (size_t i = 0; i < n; i++) {
                struct crash_facts f = {};
                if (gather_facts(ids[i], &f) == 0)
                        store_set_signature(d.db, ids[i], f.signature, f.title, f.time_usec);
                facts_free(&f);
        }
}

/* A failure that another attempt may not repeat is retried; after MaxAttempts it is final. */
static void fail_job(struct job *j, const char *reason, bool retry) {
        sqlite3_stmt *st;
        int attempts = 0;

        if (sqlite3_prepare_v2(d.db, "SELECT attempts FROM crashes WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, j->id);
                if (sqlite3_step(st) == SQLITE_ROW)
                        attempts = sqlite3_column_int(st, 0);
                sqlite3_finalize(st);
        }
        if (retry && attempts < (int)d.cfg.max_attempts) {
                store_set_state(d.db, j->id, "pending", reason);
                log_msg(LOG_WARNING, "crash %lld: %s (attempt %d of %u)", (long long)j->id, reason, attempts,
                        d.cfg.max_attempts);
                return;
        }
        store_set_state(d.db, j->id, "failed", reason);
        d.failed++;
        log_msg(LOG_WARNING, "crash %lld: analysis failed: %s", (long long)j->id, reason);
        /* the crash still happened: the journal hears of it, with what we know */
        struct crash_facts f = {};
        if (d.cfg.journal && gather_facts(j->id, &f) == 0)
                journal_entry(j->id, &f, reason);
        facts_free(&f);
}

static void finish_job(struct job *j) {
        char reason[MAX_STDERR + 128];
        char *first_line = j->err;

        j->err[j->err_len] = 0;
        first_line[strcspn(first_line, "\n")] = 0;
        /* "pystack: /dev/fd/3: why": keep the why */
        const char *why = strstr(first_line, "/dev/fd/3: ");
        why = why ? why + 11 : first_line;

        if (j->requeue) {
                sqlite3_stmt *st;

                store_set_state(d.db, j->id, "pending", NULL);
                if (sqlite3_prepare_v2(d.db, "UPDATE crashes SET attempts = max(attempts - 1, 0) WHERE id = ?",
                                       -1, &st, NULL) == SQLITE_OK) {
                        sqlite3_bind_int64(st, 1, j->id);
                        sqlite3_step(st);
                        sqlite3_finalize(st);
                }
        } else if (j->timed_out) {
                snprintf(reason, sizeof(reason), "the analysis took longer than TimeoutSec=%u", d.cfg.timeout);
                fail_job(j, reason, true);
        } else if (j->too_big) {
                fail_job(j, "the analyzer's report was larger than 64 MiB", false);
        } else if (WIFSIGNALED(j->status)) {
                int sig = WTERMSIG(j->status);
                if (sig == SIGXCPU || sig == SIGKILL)
                        snprintf(reason, sizeof(reason), "the analysis ran out of CPU time (TimeoutSec=%u)", d.cfg.timeout);
                else
                        snprintf(reason, sizeof(reason), "the analyzer crashed with %s", signal_full_name(sig));
                fail_job(j, reason, true);
        } else if (WIFEXITED(j->status)) {
                int code = WEXITSTATUS(j->status);
                if (code == 0)
                        file_report(j, NULL);
                else if (code == 3 && j->out.n > 0) {
                        snprintf(reason, sizeof(reason), "partial report: %s", why);
                        file_report(j, reason);
                } else if (code == 1 && strstr(why, "out of memory")) {
                        snprintf(reason, sizeof(reason), "the analysis needed more than MemoryMax (%llu MiB)",
                                 (unsigned long long)(d.cfg.memory_max >> 20));
                        fail_job(j, reason, true);
                } else if (code == 126 || code == 127) {
                        snprintf(reason, sizeof(reason), "cannot run the analyzer %s", d.cfg.analyzer);
                        fail_job(j, reason, true);
                } else {
                        /* 3, 4, 5: the core itself is the problem; another attempt would say the same */
                        snprintf(reason, sizeof(reason), "%s", *why ? why : "the analyzer failed");
                        fail_job(j, reason, code == 1);
                }
        }
        close(j->out_fd);
        close(j->err_fd);
        buf_free(&j->out);
        *j = d.jobs[--d.n_jobs];
        d.rescan = true;
}

static void read_job(struct job *j) {
        char chunk[65536];
        ssize_t n;

        while (j->out_fd >= 0 && (n = read(j->out_fd, chunk, sizeof(chunk))) > 0) {
                if (j->out.n + n > MAX_REPORT) {
                        j->too_big = true;
                        kill(j->pid, SIGKILL);
                        break;
                }
                buf_put(&j->out, chunk, n);
        }
        while ((n = read(j->err_fd, chunk, sizeof(chunk))) > 0) {
                size_t room = MAX_STDERR - j->err_len;
                memcpy(j->err + j->err_len, chunk, MIN((size_t)n, room));
                j->err_len += MIN((size_t)n, room);
        }
}

static void reap(void) {
        int status;
        pid_t pid;

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                bool job = false;
                for (unsigned i = 0; i < d.n_jobs; i++)
                        if (d.jobs[i].pid == pid) {
                                job = true;
                                struct job *j = &d.jobs[i];

                                j->exited = true;
                                j->status = status;
                                read_job(j);     /* what is left in the pipes */
                                finish_job(j);
                                break;
                        }
                if (!job && d.n_queries > 0)
                        d.n_queries--;
        }
}

/* ---- queries from pystackctl ---- */

/* "OK\n", with the core's descriptor riding along when there is one */
static int send_ok(int conn, int core_fd) {
        char cbuf[CMSG_SPACE(sizeof(int))] = {};
        struct iovec iov = { .iov_base = "OK\n", .iov_len = 3 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (core_fd >= 0) {
                mh.msg_control = cbuf;
                mh.msg_controllen = sizeof(cbuf);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &core_fd, sizeof(int));
        }
        return sendmsg(conn, &mh, MSG_NOSIGNAL) == 3 ? 0 : -EIO;
}

__attribute__((format(printf, 3, 4)))
static void send_err(int conn, int code, const char *fmt, ...) {
        char msg[600], line[700];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        msg[strcspn(msg, "\n")] = 0;
        int n = snprintf(line, sizeof(line), "ERR %d %s\n", code, msg);
        (void)!write(conn, line, (size_t)n);
}

static void write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                p += k;
                n -= (size_t)k;
        }
}

/* In a child of ours: answer one connection, then exit. */
static void answer_query(int conn) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        struct timeval tv = { .tv_sec = 5 };
        char req[QUERY_MAX_WIRE + 1], err[512];
        size_t got = 0;
        struct query q;
        sqlite3 *db;
        int64_t uid;

        alarm(60);     /* no query may hold a child for long */
        if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                _exit(1);
        uid = cred.uid == 0 ? -1 : (int64_t)cred.uid;
        setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        fcntl(conn, F_SETFL, 0);
        while (got < QUERY_MAX_WIRE) {
                ssize_t n = read(conn, req + got, QUERY_MAX_WIRE - got);
                if (n <= 0)
                        break;
                got += (size_t)n;
                if (got >= 2 && req[got - 1] == '\n' && req[got - 2] == '\n')
                        break;
        }
        if (query_from_wire(&q, req, got) < 0) {
                send_err(conn, 2, "pystackd could not read the request");
                _exit(0);
        }
        if (q.verb == VERB_VACUUM && uid >= 0) {
                send_err(conn, 1, "vacuum: only root may remove cores");
                _exit(0);
        }
        if (store_open(d.cfg.directory, &db, err, sizeof(err)) < 0) {
                send_err(conn, 1, "cannot open the store: %s", err);
                _exit(0);
        }
        if (q.verb == VERB_CORE) {
                int64_t id;
                char *core_path = NULL, *exe = NULL;
                int r = query_find_newest(db, &q, uid, &id, &core_path, &exe);

                if (r <= 0) {
                        send_err(conn, 1, r < 0 ? "cannot read the store" : "No crashes match.");
                        _exit(0);
                }
                int fd = core_path ? open_core(core_path) : -1;
                if (fd < 0) {
                        send_err(conn, 1, "crash %lld has no stored core", (long long)id);
                        _exit(0);
                }
                if (send_ok(conn, fd) == 0 && exe) {
                        write_all(conn, exe, strlen(exe));
                        write_all(conn, "\n", 1);
                }
                _exit(0);
        }
        if (q.verb == VERB_VACUUM) {
                unsigned removed = 0;
                retention_apply(db, d.storage_fd, &d.cfg, &removed);
                dprintf(conn, "OK\n");
                if (q.json)
                        dprintf(conn, "{\"removed\":%u}\n", removed);
                else
                        dprintf(conn, "Removed %u core%s.\n", removed, removed == 1 ? "" : "s");
                _exit(0);
        }
        /* answer in memory first: an error must be able to replace it */
        char *body = NULL;
        size_t body_len = 0;
        FILE *m = open_memstream(&body, &body_len);
        int r = m ? query_run(db, &q, uid, d.cfg.directory, m, err, sizeof(err)) : -ENOMEM;
        if (m)
                fclose(m);
        if (r != 0) {
                send_err(conn, 1, "%s", r == -ENOMEM ? "out of memory" : err);
                _exit(0);
        }
        if (send_ok(conn, -1) == 0)
                write_all(conn, body, body_len);
        if (q.verb == VERB_ANALYZE)
                notify_daemon(d.cfg.runtime_directory, "ANALYZE");   /* the parent looks at the queue at once */
        _exit(0);
}

static void accept_queries(void) {
        for (;;) {
                int conn = accept4(d.query_fd, NULL, NULL, SOCK_CLOEXEC);
                pid_t pid;

                if (conn < 0)
                        return;
                if (d.n_queries >= MAX_QUERIES) {
                        send_err(conn, 1, "pystackd is busy: try again");
                        close(conn);
                        continue;
                }
                pid = fork();
                if (pid == 0) {
                        sigset_t none;
                        sigemptyset(&none);
                        sigprocmask(SIG_SETMASK, &none, NULL);
                        signal(SIGCHLD, SIG_DFL);
                        answer_query(conn);
                        _exit(0);
                }
                if (pid > 0)
                        d.n_queries++;
                close(conn);
        }
}

/* ---- the loop ---- */

static void status(void) {
        sd_notifyf(false, "STATUS=%u running, %llu analysed, %llu failed", d.n_jobs,
                   (unsigned long long)d.analysed, (unsigned long long)d.failed);
}

static void handle_signals(void) {
        struct signalfd_siginfo si;

        while (read(d.sig_fd, &si, sizeof(si)) == sizeof(si)) {
                switch (si.ssi_signo) {
                case SIGTERM:
                case SIGINT:
                        if (!d.stopping) {
                                d.stopping = true;
                                d.stop_deadline = now_usec(CLOCK_MONOTONIC) + STOP_GRACE_USEC;
                                sd_notify(false, "STOPPING=1");
                                log_msg(LOG_INFO, "stopping: waiting for %u analyses", d.n_jobs);
                        }
                        break;
                case SIGHUP:
                        sd_notify(false, "RELOADING=1");
                        if (load_config() == 0)
                                log_msg(LOG_INFO, "configuration reloaded");
                        sd_notify(false, "READY=1");
                        break;
                case SIGCHLD:
                        reap();
                        break;
                }
        }
}

static void fill_workers(void) {
        while (!d.stopping && d.n_jobs < d.max_jobs) {
                int64_t id;
                char *core_path = NULL;
                int attempts, r;

                r = store_claim_next(d.db, &id, &core_path, &attempts);
                if (r <= 0) {
                        if (r < 0)
                                log_msg(LOG_WARNING, "cannot read the queue: %s", sqlite3_errmsg(d.db));
                        break;
                }
                r = start_job(id, core_path);
                free(core_path);
                if (r < 0) {
                        store_set_state(d.db, id, "pending", NULL);
                        log_msg(LOG_ERR, "cannot start an analysis: %s", strerror(-r));
                        break;
                }
        }
}

static int run(void) {
        int64_t next_scan = 0;

        for (;;) {
                int64_t now = now_usec(CLOCK_MONOTONIC), wake;
                struct pollfd pfd[3 + 2 * 256];
                unsigned n = 0;

                if (d.stopping && d.n_jobs == 0)
                        return 0;
                if (d.stopping && now >= d.stop_deadline)
                        for (unsigned i = 0; i < d.n_jobs; i++)
                                if (!d.jobs[i].requeue) {
                                        /* not finished in time: it goes again after the restart */
                                        d.jobs[i].requeue = true;
                                        kill(d.jobs[i].pid, SIGKILL);
                                }
                if (!d.stopping && now >= next_scan) {
                        fill_workers();
                        next_scan = now + RESCAN_USEC;
                }
                if (!d.stopping && now >= d.next_maintenance) {
                        unsigned removed = 0;
                        retention_apply(d.db, d.storage_fd, &d.cfg, &removed);
                        if (removed)
                                log_msg(LOG_INFO, "retention removed %u cores", removed);
                        d.next_maintenance = now + MAINTENANCE_USEC;
                }
                if (d.watchdog_usec && now >= d.next_watchdog) {
                        sd_notify(false, "WATCHDOG=1");
                        d.next_watchdog = now + d.watchdog_usec / 2;
                }
                for (unsigned i = 0; i < d.n_jobs; i++)
                        if (!d.jobs[i].timed_out && now >= d.jobs[i].deadline) {
                                d.jobs[i].timed_out = true;
                                kill(d.jobs[i].pid, SIGKILL);
                        }
                status();

                wake = next_scan;
                if (!d.stopping)
                        wake = MIN(wake, d.next_maintenance);
                else
                        wake = d.stop_deadline;
                if (d.watchdog_usec)
                        wake = MIN(wake, d.next_watchdog);
                for (unsigned i = 0; i < d.n_jobs; i++)
                        wake = MIN(wake, d.jobs[i].deadline);
                pfd[n++] = (struct pollfd) { .fd = d.sig_fd, .events = POLLIN };
                pfd[n++] = (struct pollfd) { .fd = d.notify_fd, .events = POLLIN };
                pfd[n++] = (struct pollfd) { .fd = d.query_fd, .events = POLLIN };
                for (unsigned i = 0; i < d.n_jobs && n + 2 <= sizeof(pfd) / sizeof(pfd[0]); i++) {
                        pfd[n++] = (struct pollfd) { .fd = d.jobs[i].out_fd, .events = POLLIN };
                        pfd[n++] = (struct pollfd) { .fd = d.jobs[i].err_fd, .events = POLLIN };
                }
                int timeout = (int)MAX((wake - now_usec(CLOCK_MONOTONIC)) / 1000, 0) + 1;
                if (poll(pfd, n, timeout) < 0 && errno != EINTR)
                        return -errno;
                if (pfd[1].revents & POLLIN) {
                        char msg[128];
                        while (recv(d.notify_fd, msg, sizeof(msg), MSG_DONTWAIT) > 0)
                                ;
                        next_scan = 0;   /* a new crash: look at once */
                }
                if (pfd[2].revents & POLLIN)
                        accept_queries();
                for (unsigned i = 0; i < d.n_jobs; i++)
                        read_job(&d.jobs[i]);
                if (pfd[0].revents & POLLIN)
                        handle_signals();
                reap();
                if (d.rescan) {
                        next_scan = 0;
                        d.rescan = false;
                }
        }
}

static void help(void) {
        printf("Usage: pystackd [--config=FILE]\n"
               "\n"
               "Analyse every crash pystack-coredump stores, record the stacks in the store,\n"
               "write a journal entry per crash, and apply the retention limits. Runs in the\n"
               "foreground; notifies systemd when run as a Type=notify service.\n"
               "  -c, --config=FILE   read FILE instead of " PYSTACK_CONF_DEFAULT "\n"
               "  -h, --help          show this help\n"
               "Signals: SIGTERM stops (running analyses get 5 s, then go back to the queue);\n"
               "SIGHUP rereads the configuration. See pystackd(8).\n");
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        char err[512];
        sigset_t mask;
        int c, r;
        uint64_t wd;

        opterr = 0;
        d.config_path = PYSTACK_CONF_DEFAULT;
        while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
                if (c == 'c')
                        d.config_path = optarg;
                else if (c == 'h') {
                        help();
                        return 0;
                } else {
                        fprintf(stderr, "pystackd: unknown option or missing value: %s (see pystackd --help)\n",
                                argv[optind - 1]);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "pystackd: unexpected argument '%s' (see pystackd --help)\n", argv[optind]);
                return 2;
        }
        if (geteuid() != 0) {
                fprintf(stderr, "pystackd: must run as root\n");
                return 1;
        }
        if (config_defaults(&d.cfg) < 0 || load_config() < 0)
                return 1;
        d.jobs = calloc(256, sizeof(*d.jobs));
        d.max_jobs = MIN(d.max_jobs, 256u);
        if (!d.jobs)
                return 1;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        d.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (d.sig_fd < 0)
                return 1;

        if (mkdir(d.cfg.directory, 0700) < 0 && errno != EEXIST) {
                fprintf(stderr, "pystackd: cannot create %s: %m\n", d.cfg.directory);
                return 1;
        }
        d.storage_fd = open(d.cfg.directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (d.storage_fd < 0) {
                fprintf(stderr, "pystackd: cannot open %s: %m\n", d.cfg.directory);
                return 1;
        }
        if (store_open(d.cfg.directory, &d.db, err, sizeof(err)) < 0) {
                fprintf(stderr, "pystackd: cannot open the store: %s\n", err);
                return 1;
        }
        r = setup_runtime();
        if (r < 0) {
                fprintf(stderr, "pystackd: cannot set up %s: %s\n", d.cfg.runtime_directory, strerror(-r));
                return 1;
        }
        /* a pystackd killed mid-analysis left these claimed and unrecorded */
        store_requeue_running(d.db);
        repair_signatures();
        if (sd_watchdog_enabled(false, &wd) > 0)
                d.watchdog_usec = (int64_t)wd;
        sd_notify(false, "READY=1");
        log_msg(LOG_INFO, "pystackd started: store %s, %u workers, analyzer %s", d.cfg.directory, d.max_jobs,
                d.cfg.analyzer);
        r = run();
        log_msg(LOG_INFO, "pystackd stopped: %llu analysed, %llu failed", (unsigned long long)d.analysed,
                (unsigned long long)d.failed);
        sqlite3_close(d.db);
        config_free(&d.cfg);
        return r < 0 ? 1 : 0;
}
