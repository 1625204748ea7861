/* SPDX-License-Identifier: MIT */
/*
 * analysis: pystackd's queue of crashes and the sandbox each analysis runs in.
 *
 * The queue is the store itself: pending crashes are claimed oldest first,
 * each analysed by a child that runs the analyzer with nothing to lose — an
 * unprivileged user, no_new_privs, no core dumps, limits on memory, CPU and
 * wall time, the core handed over as an open descriptor — and whose JSON
 * report is checked and filed by the store in one transaction.  A crash
 * whose analysis was cut off (pystackd killed, SIGTERM) is simply pending
 * again; a core that breaks the analyzer is retried MaxAttempts times and
 * then failed with the reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "pystackd.h"
#include "store.h"
#include "util.h"

#define MAX_REPORT (64u << 20)          /* a larger report is refused as broken */
#define ANALYSIS_MAX_FILES 4096         /* the analyzer holds two descriptors per mapped ELF file */
#define ANALYSIS_MAX_KEPT 1024          /* kept binaries handed to one analysis (BINARIES_MAX_FILES) */

int analysis_open_core(const struct daemon *d, const char *core_path) {
        int fd;

        /* "cores/<name>": one level, no way out of the storage directory */
        if (!core_path || strncmp(core_path, "cores/", 6) || strchr(core_path + 6, '/') || core_path[6] == '.')
                return -EINVAL;
        fd = openat(d->storage_fd, core_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        return fd < 0 ? -errno : fd;
}

/* The files the crashed process had mapped, kept by the handler: opened for its analysis. */
struct kept_files {
        const struct daemon *d;
        char **paths;                   /* "0x<address of the first mapping>" */
        int *fds;
        size_t n;
};

static void kept_files_done(struct kept_files *k) {
        for (size_t i = 0; i < k->n; i++) {
                free(k->paths[i]);
                close(k->fds[i]);
        }
        free(k->paths);
        free(k->fds);
        *k = (struct kept_files) {};
}

static int add_kept(const struct crash_binary *b, void *userdata) {
        struct kept_files *k = userdata;
        char path[128];
        char *p;
        int fd;

        /* binaries/<64 hex digits>: a name from the store never leads out of the directory */
        if (!b->hash || strlen(b->hash) != 64 || strspn(b->hash, "0123456789abcdef") != 64 || !b->address ||
            k->n >= ANALYSIS_MAX_KEPT)
                return 0;
        snprintf(path, sizeof(path), "binaries/%s", b->hash);
        fd = openat(k->d->storage_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return 0;       /* removed meanwhile: the analysis looks for it as before */
        int *fds = realloc(k->fds, (k->n + 1) * sizeof(*fds));
        char **paths = fds ? realloc(k->paths, (k->n + 1) * sizeof(*paths)) : NULL;
        if (fds)
                k->fds = fds;
        if (paths)
                k->paths = paths;
        if (!fds || !paths || asprintf(&p, "0x%llx", (unsigned long long)b->address) < 0) {
                close(fd);
                return -ENOMEM;
        }
        k->paths[k->n] = p;
        k->fds[k->n++] = fd;
        return 0;
}

static void drop_root(struct daemon *d, unsigned i) {
        close(d->roots[i].fd);
        d->roots[i] = d->roots[--d->n_roots];
}

void analysis_keep_root(struct daemon *d, int64_t id, int fd) {
        int64_t now = clock_usec(CLOCK_MONOTONIC);
        unsigned oldest = 0;

        for (unsigned i = d->n_roots; i-- > 0;)
                if (d->roots[i].id == id || now - d->roots[i].since > ROOT_KEEP_USEC)
                        drop_root(d, i);
        if (d->n_roots == MAX_ROOTS) {
                for (unsigned i = 1; i < d->n_roots; i++)
                        if (d->roots[i].since < d->roots[oldest].since)
                                oldest = i;
                drop_root(d, oldest);
        }
        d->roots[d->n_roots++] = (struct root_handle) { .id = id, .fd = fd, .since = now };
}

static int root_of(const struct daemon *d, int64_t id) {
        for (unsigned i = 0; i < d->n_roots; i++)
                if (d->roots[i].id == id)
                        return d->roots[i].fd;
        return -1;
}

static void forget_root(struct daemon *d, int64_t id) {
        for (unsigned i = 0; i < d->n_roots; i++)
                if (d->roots[i].id == id) {
                        drop_root(d, i);
                        return;
                }
}

/* In the child, before exec: why it cannot go on, for judge() (stderr's first line), then 126. */
static _Noreturn void sandbox_failed(const char *what, int r) {
        dprintf(STDERR_FILENO, "the analysis sandbox: cannot %s: %s\n", what, strerror(-r));
        _exit(126);
}

/*
 * What the analyzer sees (sandbox_mount_view()): the host's tree read-only, nosuid, nodev — its
 * own program and libraries, the crashed process's files at their paths wherever they are
 * (/usr, /opt, /home, a venv, /tmp: tests and real programs run scripts from there), the debug
 * directories, source files — with an empty read-only tmpfs over what holds other crashes and
 * our sockets (the storage and runtime directories, /run), over /proc, /sys and /dev (only
 * /dev/null is left, not /dev/shm); its debug cache is the one writable directory.
 */
static const char *const hidden_always[] = { "/run", "/proc", "/sys", "/dev" };

/*
 * In the child: shed everything, then become the analyzer. Never returns.  root_fd >= 0: the
 * container's root, under which alone its source lines are read; container without one: none are.
 * The order is the sandbox's (sandbox.h): the mount view while root, then the uid, no_new_privs,
 * Landlock, and the seccomp filter last, right before the exec.
 */
static _Noreturn void run_analyzer(const struct daemon *d, int core_fd, int out_fd, int err_fd, uid_t uid, gid_t gid,
                                   pid_t parent, const struct kept_files *kept, bool container, int root_fd) {
        struct rlimit lim;
        static const char *const fixed[] = { "core", "/dev/fd/3", "--json", "--with-text", "--native", "--locals",
                                             "--no-color" };
        const size_t n_fixed = sizeof(fixed) / sizeof(*fixed);
        char **argv = calloc(1 + n_fixed + kept->n + 3, sizeof(*argv));
        char cache_env[PATH_MAX + 32], debuginfod_env[1024], debuginfod_cache_env[PATH_MAX + 48];
        char *envp[7];
        int n = 0, exe_fd, r, *fds = calloc(kept->n + 1, sizeof(*fds));
        const char *urls = getenv("DEBUGINFOD_URLS");
        bool use_cache = d->cache_dir[0] && uid == d->analyzer_uid;
        uint16_t ports[16];
        int n_ports = 0;

        if (!argv || !fds)
                _exit(127);
        /* the kept files above 3 first: the dup2s below must not land on one of them */
        for (size_t i = 0; i < kept->n; i++)
                if ((fds[i] = fcntl(kept->fds[i], F_DUPFD, 4)) < 0)
                        _exit(127);
        if (root_fd >= 0 && (root_fd = fcntl(root_fd, F_DUPFD, 4)) < 0)
                _exit(127);
        if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0 || dup2(core_fd, 3) != 3)
                _exit(127);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, STDIN_FILENO) < 0)
                _exit(127);
        close_range(4, ~0U, CLOSE_RANGE_CLOEXEC);
        argv[0] = d->cfg.analyzer;
        for (size_t i = 0; i < n_fixed; i++)
                argv[1 + i] = (char *)fixed[i];
        for (size_t i = 0; i < kept->n; i++) {
                if (fcntl(fds[i], F_SETFD, 0) < 0 ||
                    asprintf(&argv[1 + n_fixed + i], "--binary=%s=/dev/fd/%d", kept->paths[i], fds[i]) < 0)
                        _exit(127);
        }
        if (root_fd >= 0) {
                if (fcntl(root_fd, F_SETFD, 0) < 0 ||
                    asprintf(&argv[1 + n_fixed + kept->n], "--source-root=/dev/fd/%d", root_fd) < 0)
                        _exit(127);
        } else if (container)
                /* never a host file that merely has the name the container's file had */
                argv[1 + n_fixed + kept->n] = "--no-source";
        if (d->cfg.tasks)
                argv[1 + n_fixed + kept->n + (root_fd >= 0 || container)] = "--tasks";

        /* debuginfod: the network stays, but only the servers' ports (Landlock) and the calls
         * libcurl needs (seccomp); a URL we cannot read gets no TCP at all */
        if (urls && (!*urls || strlen(urls) >= 900))
                urls = NULL;    /* as before the sandbox: such a value is not passed on */
        if (urls && (n_ports = sandbox_debuginfod_ports(urls, ports, ELEMENTSOF(ports))) < 0)
                n_ports = 0;

        /* the program, opened before the view may hide it: exec'd through this descriptor */
        exe_fd = open(d->cfg.analyzer, O_PATH | O_CLOEXEC);
        if (exe_fd < 0)
                _exit(127);
        const char *hide[ELEMENTSOF(hidden_always) + 3];
        size_t n_hide = 0;
        for (size_t i = 0; i < ELEMENTSOF(hidden_always); i++)
                hide[n_hide++] = hidden_always[i];
        hide[n_hide++] = d->cfg.directory;
        hide[n_hide++] = d->cfg.runtime_directory;
        hide[n_hide] = NULL;
        r = sandbox_mount_view(&(struct sandbox_view) {
                .hide = hide, .writable = use_cache ? d->cache_dir : NULL, .keep_dev_null = true,
                .new_net = !urls,
        });
        if (r < 0)
                sandbox_failed("make its view of the files", r);
        if (chdir("/") < 0)
                _exit(127);

        /* a crash of the analyzer must not come back to us as a core */
        lim = (struct rlimit) { 0, 0 };
        setrlimit(RLIMIT_CORE, &lim);
        prctl(PR_SET_DUMPABLE, 0);
        lim = (struct rlimit) { d->cfg.memory_max, d->cfg.memory_max };
        setrlimit(RLIMIT_AS, &lim);
        lim = (struct rlimit) { d->cfg.timeout, d->cfg.timeout + 1 };
        setrlimit(RLIMIT_CPU, &lim);
        /* at 64, a process with some 30 extension modules lost its innermost libc frame (and
         * so its signature) to EMFILE */
        lim = (struct rlimit) { ANALYSIS_MAX_FILES, ANALYSIS_MAX_FILES };
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

        r = sandbox_landlock(&(struct sandbox_landlock) {
                .abi = d->landlock_abi, .read_path = "/", .read_fd = root_fd,
                .write_path = use_cache ? d->cache_dir : NULL,
                .handle_tcp = true, .tcp_ports = ports, .n_tcp_ports = (size_t)n_ports,
        });
        if (r < 0)
                sandbox_failed("apply its Landlock rules", r);

        envp[n++] = "PATH=/usr/bin:/bin";
        envp[n++] = "LANG=C.UTF-8";
        if (use_cache) {
                snprintf(cache_env, sizeof(cache_env), "PYSTACK_CACHE_DIR=%s", d->cache_dir);
                envp[n++] = cache_env;
        } else
                envp[n++] = "PYSTACK_CACHE_DIR=";
        if (urls) {
                snprintf(debuginfod_env, sizeof(debuginfod_env), "DEBUGINFOD_URLS=%s", urls);
                envp[n++] = debuginfod_env;
                /* libdebuginfod's own cache: in ours, the one place it may write */
                if (use_cache) {
                        snprintf(debuginfod_cache_env, sizeof(debuginfod_cache_env),
                                 "DEBUGINFOD_CACHE_PATH=%s/debuginfod", d->cache_dir);
                        envp[n++] = debuginfod_cache_env;
                }
        }
        envp[n] = NULL;
        r = sandbox_seccomp(urls ? SANDBOX_ANALYZER_NET : SANDBOX_ANALYZER, exe_fd);
        if (r < 0)
                sandbox_failed("install its system call filter", r);
        /* from here on only execveat (on exe_fd) and exit are allowed; the exit is the system call
         * itself: a sanitizer build's _exit() makes calls of its own (sigaltstack), LeakSanitizer's
         * check (ptrace from a clone) runs only from exit(), never here */
        syscall(SYS_execveat, exe_fd, "", argv, envp, AT_EMPTY_PATH);
        syscall(SYS_exit_group, 127);
        _exit(127);
}

/* Start the analysis of a claimed crash on core_fd (taken). */
static int start_job(struct daemon *d, const struct claim *c, int core_fd) {
        _cleanup_close_ int core = core_fd, out_r = -1, out_w = -1, err_r = -1, err_w = -1;
        _cleanup_(kept_files_done) struct kept_files kept = { .d = d };
        int p[2];
        /* the crashed process's own uid (it can read its own files, and a hostile core gains nothing
         * it did not have), or the dedicated user for root's crashes; a set-uid program's core
         * (dumpable != 1) holds memory its user may not read: not theirs to analyse */
        bool own = c->uid != 0 && c->dumpable == 1;
        uid_t uid = own ? c->uid : d->analyzer_uid;
        gid_t gid = own ? c->gid : d->analyzer_gid;
        pid_t parent = getpid(), pid;

        if (store_list_binaries(d->db, c->id, add_kept, &kept) < 0)
                log_msg(LOG_WARNING, "crash %lld: cannot read its kept binaries: %s", (long long)c->id,
                        store_errmsg(d->db));
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        out_r = p[0], out_w = p[1];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        err_r = p[0], err_w = p[1];
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                run_analyzer(d, core, out_w, err_w, uid, gid, parent, &kept, c->container, root_of(d, c->id));
        fcntl(out_r, F_SETFL, O_NONBLOCK);
        fcntl(err_r, F_SETFL, O_NONBLOCK);
        d->jobs[d->n_jobs++] = (struct job) {
                .id = c->id, .pid = pid, .out_fd = TAKE_FD(out_r), .err_fd = TAKE_FD(err_r),
                .deadline = clock_usec(CLOCK_MONOTONIC) + (int64_t)d->cfg.timeout * 1000000,
        };
        return 0;
}

void analysis_fill_workers(struct daemon *d) {
        while (!d->stopping && d->n_jobs < d->max_jobs) {
                struct claim c = {};
                int r = store_claim_next(d->db, &c);

                if (r <= 0) {
                        if (r < 0)
                                log_msg(LOG_WARNING, "cannot read the queue: %s", store_errmsg(d->db));
                        return;
                }
                int core_fd = analysis_open_core(d, c.core_path);
                if (core_fd < 0) {
                        store_fail(d->db, c.id, "the stored core is missing");
                        log_msg(LOG_WARNING, "crash %lld: the stored core %s is missing", (long long)c.id,
                                c.core_path ? c.core_path : "(none)");
                } else if ((r = start_job(d, &c, core_fd)) < 0) {
                        store_release(d->db, c.id);
                        log_msg(LOG_ERR, "cannot start an analysis: %s", strerror(-r));
                        claim_done(&c);
                        return;
                }
                claim_done(&c);
        }
}

void analysis_start_raw(struct daemon *d, int64_t id, int core_fd) {
        _cleanup_close_ int raw = core_fd;
        struct claim c = {};
        struct stat st;
        char path[64];
        int r;

        if (d->stopping || d->n_jobs >= d->max_jobs || fstat(raw, &st) < 0 || !S_ISREG(st.st_mode))
                return;
        /* our own read-only descriptor: the handler still reads its file to compress it, and the
         * analyzer, which reads a hostile process's memory, must not be able to change it */
        snprintf(path, sizeof(path), "/proc/self/fd/%d", raw);
        _cleanup_close_ int ro = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (ro < 0)
                return;
        r = store_claim_capturing(d->db, id, &c);
        if (r <= 0)
                return;
        r = start_job(d, &c, TAKE_FD(ro));
        if (r < 0) {
                store_release(d->db, c.id);
                log_msg(LOG_ERR, "cannot start an analysis: %s", strerror(-r));
        } else
                log_msg(LOG_INFO, "crash %lld: analysing the raw core while the handler compresses it",
                        (long long)c.id);
        claim_done(&c);
}

/* ---- what a finished analysis leaves ---- */

static void fail_job(struct daemon *d, struct job *j, const char *reason, bool retry);

static void file_report(struct daemon *d, struct job *j, const char *note) {
        int r = store_file_report(d->db, j->id, buf_str(&j->out), j->out.n, note, clock_usec(CLOCK_REALTIME));

        if (r == -EBADMSG) {
                store_fail(d->db, j->id, "the analyzer's report is not valid JSON");
                d->failed++;
                j->final = true;
                return;
        }
        if (r == -EBUSY) {
                /* the store is busy: the crash goes again (now, or after a restart), uncounted */
                log_msg(LOG_WARNING, "crash %lld: cannot record the analysis now: %s", (long long)j->id,
                        store_errmsg(d->db));
                store_release(d->db, j->id);
                return;
        }
        if (r < 0) {
                /* a report the store cannot take: an attempt like any other, so that it cannot loop */
                char reason[512];

                snprintf(reason, sizeof(reason), "cannot record the analysis: %s", store_errmsg(d->db));
                fail_job(d, j, reason, true);
                return;
        }
        d->analysed++;
        j->final = true;
        journal_crash(d, j->id, buf_str(&j->out), j->out.n, NULL);
}

/* A failure that another attempt may not repeat is retried; after MaxAttempts it is final. */
static void fail_job(struct daemon *d, struct job *j, const char *reason, bool retry) {
        int r = store_fail_attempt(d->db, j->id, reason, retry, d->cfg.max_attempts);

        if (r == 0) {
                log_msg(LOG_WARNING, "crash %lld: %s (will retry, at most %u attempts)", (long long)j->id, reason,
                        d->cfg.max_attempts);
                return;
        }
        d->failed++;
        j->final = true;
        log_msg(LOG_WARNING, "crash %lld: analysis failed: %s", (long long)j->id, reason);
        /* the crash still happened: the journal hears of it, with what we know */
        journal_crash(d, j->id, NULL, 0, reason);
}

/* What the exit status and stderr of the analyzer mean for the crash. */
static void judge(struct daemon *d, struct job *j) {
        char reason[MAX_STDERR + 128];
        char *first_line = j->err;

        j->err[j->err_len] = 0;
        first_line[strcspn(first_line, "\n")] = 0;
        /* "pystack: /dev/fd/3: why": keep the why */
        const char *why = strstr(first_line, "/dev/fd/3: ");
        why = why ? why + 11 : first_line;

        if (j->requeue) {
                store_release(d->db, j->id);
        } else if (j->timed_out) {
                snprintf(reason, sizeof(reason), "the analysis took longer than TimeoutSec=%u", d->cfg.timeout);
                fail_job(d, j, reason, true);
        } else if (j->too_big) {
                fail_job(d, j, "the analyzer's report was larger than 64 MiB", false);
        } else if (WIFSIGNALED(j->status)) {
                int sig = WTERMSIG(j->status);
                if (sig == SIGXCPU || sig == SIGKILL)
                        snprintf(reason, sizeof(reason), "the analysis ran out of CPU time (TimeoutSec=%u)",
                                 d->cfg.timeout);
                else if (sig == SIGSYS) {
                        /* the filter's kill: the same core would make the same call again */
                        fail_job(d, j, "the analyzer was stopped by its sandbox: a forbidden system call (SIGSYS)",
                                 false);
                        return;
                } else
                        snprintf(reason, sizeof(reason), "the analyzer crashed with %s", signal_full_name(sig));
                fail_job(d, j, reason, true);
        } else if (WIFEXITED(j->status)) {
                int code = WEXITSTATUS(j->status);
                if (code == 0)
                        file_report(d, j, NULL);
                else if (code == 3 && j->out.n > 0) {
                        snprintf(reason, sizeof(reason), "partial report: %s", why);
                        file_report(d, j, reason);
                } else if (code == 1 && strstr(why, "out of memory")) {
                        snprintf(reason, sizeof(reason), "the analysis needed more than MemoryMax (%llu MiB)",
                                 (unsigned long long)(d->cfg.memory_max >> 20));
                        fail_job(d, j, reason, true);
                } else if (code == 126 && !strncmp(first_line, "the analysis sandbox: ", 22)) {
                        snprintf(reason, sizeof(reason), "cannot run the analyzer %s: %s", d->cfg.analyzer,
                                 first_line);
                        fail_job(d, j, reason, true);
                } else if (code == 126 || code == 127) {
                        snprintf(reason, sizeof(reason), "cannot run the analyzer %s", d->cfg.analyzer);
                        fail_job(d, j, reason, true);
                } else {
                        /* 3, 4, 5: the core itself is the problem; another attempt would say the same */
                        snprintf(reason, sizeof(reason), "%s", *why ? why : "the analyzer failed");
                        fail_job(d, j, reason, code == 1);
                }
        }
}

static void read_job(struct job *j) {
        char chunk[65536];
        ssize_t n;

        while (j->out_fd >= 0 && (n = read(j->out_fd, chunk, sizeof(chunk))) > 0) {
                if (j->out.n + (size_t)n > MAX_REPORT) {
                        j->too_big = true;
                        kill(j->pid, SIGKILL);
                        break;
                }
                buf_put(&j->out, chunk, (size_t)n);
        }
        while ((n = read(j->err_fd, chunk, sizeof(chunk))) > 0) {
                size_t room = MAX_STDERR - j->err_len;
                memcpy(j->err + j->err_len, chunk, MIN((size_t)n, room));
                j->err_len += MIN((size_t)n, room);
        }
}

void analysis_read(struct daemon *d) {
        for (unsigned i = 0; i < d->n_jobs; i++)
                read_job(&d->jobs[i]);
}

void analysis_reap(struct daemon *d) {
        int status;
        pid_t pid;

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                bool job = false;

                for (unsigned i = 0; i < d->n_jobs; i++) {
                        struct job *j = &d->jobs[i];

                        if (j->pid != pid)
                                continue;
                        job = true;
                        j->status = status;
                        read_job(j);     /* what is left in the pipes */
                        judge(d, j);
                        if (j->final)
                                forget_root(d, j->id);
                        close(j->out_fd);
                        close(j->err_fd);
                        buf_free(&j->out);
                        *j = d->jobs[--d->n_jobs];
                        d->rescan = true;
                        break;
                }
                if (!job && !socket_capture_reaped(d, pid, status))
                        query_server_reaped(d, pid, status);
        }
}
