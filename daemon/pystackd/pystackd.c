/* SPDX-License-Identifier: MIT */
/*
 * pystackd: analyses every stored crash once, records the result, tells the
 * journal, answers users' queries, and keeps the cores within their limits.
 *
 * One loop over a signalfd, the handler's wake-up datagrams (which may carry
 * the raw core of a crash still being compressed, so its analysis starts at
 * once), the query socket and the analyses' pipes.  The parts are
 * analysis.c, journal.c and query_server.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "pystackd.h"
#include "retention.h"
#include "sandbox.h"
#include "store.h"
#include "util.h"

#define STOP_GRACE_USEC (5 * 1000000LL)
#define MAINTENANCE_USEC (60 * 1000000LL)
#define RESCAN_USEC (5 * 1000000LL)

static struct daemon d = { .storage_fd = -1, .notify_fd = -1, .sig_fd = -1, .query_fd = -1 };

/* ---- set-up ---- */

static int setup_runtime(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        int r;

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
        r = query_server_listen(&d);
        if (r < 0)
                return r;

        /* the analyzer's debug-file cache: its own, in our runtime directory */
        snprintf(d.cache_dir, sizeof(d.cache_dir), "%s/debug-cache", d.cfg.runtime_directory);
        if (mkdir(d.cache_dir, 0700) < 0 && errno != EEXIST)
                d.cache_dir[0] = 0;
        else if (lstat(d.cache_dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
                 chown(d.cache_dir, d.analyzer_uid, d.analyzer_gid) < 0)
                d.cache_dir[0] = 0;
        return 0;
}

/* A user's ids, or nobody's when there is no such user (said once per load). */
static void resolve_user(const char *name, const char *what, uid_t *uid, gid_t *gid) {
        struct passwd *pw = getpwnam(name);

        if (!pw || pw->pw_uid == 0 || pw->pw_gid == 0) {
                log_msg(LOG_WARNING, "user %s %s: %s run as nobody", name, pw ? "is root" : "does not exist", what);
                pw = getpwnam("nobody");
        }
        *uid = pw ? pw->pw_uid : 65534;
        *gid = pw ? pw->pw_gid : 65534;
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
        d.max_jobs = MIN(d.max_jobs, (unsigned)MAX_JOBS);
        resolve_user(d.cfg.user, "analyses", &d.analyzer_uid, &d.analyzer_gid);
        resolve_user(d.cfg.query_user, "queries", &d.query_uid, &d.query_gid);
        return 0;
}

/* What confines the analyses on this kernel: said once, so that a missing layer is not a surprise. */
static void log_sandbox(void) {
        const char *urls = getenv("DEBUGINFOD_URLS");
        bool net = urls && *urls && strlen(urls) < 900;       /* as run_analyzer() decides */
        enum sandbox_profile p = net ? SANDBOX_ANALYZER_NET : SANDBOX_ANALYZER;

        d.landlock_abi = sandbox_landlock_abi();
        if (d.landlock_abi == 0)
                log_msg(LOG_NOTICE, "Landlock is not available on this kernel: analyses run without it (mount "
                        "view, seccomp filter and user only)");
        else if (d.landlock_abi < 4 && net)
                log_msg(LOG_NOTICE, "Landlock ABI %d has no network rules: the analyses' TCP connections are not "
                        "limited to DEBUGINFOD_URLS's ports", d.landlock_abi);
        else if (d.landlock_abi < 6)
                log_msg(LOG_NOTICE, "Landlock ABI %d cannot scope signals and abstract sockets: analyses run "
                        "without that", d.landlock_abi);
        log_msg(LOG_INFO, "analysis sandbox: %s, Landlock ABI %d, seccomp allow-list %s (%u system calls)",
                net ? "network for debuginfod only" : "no network", d.landlock_abi, net ? "analyzer+debuginfod" :
                "analyzer", sandbox_seccomp_count(p));
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
                                d.stop_deadline = clock_usec(CLOCK_MONOTONIC) + STOP_GRACE_USEC;
                                sd_notify(false, "STOPPING=1");
                                log_msg(LOG_INFO, "stopping: waiting for %u analyses", d.n_jobs);
                                socket_capture_stop(&d);
                        }
                        break;
                case SIGHUP:
                        sd_notify(false, "RELOADING=1");
                        if (load_config() == 0) {
                                log_msg(LOG_INFO, "configuration reloaded");
                                /* Mode= may have changed; a listener that was off may work now */
                                d.listener.off = false;
                                if (!d.cfg.socket_capture)
                                        socket_capture_stop(&d);
                                socket_capture_start(&d);
                        }
                        sd_notify(false, "READY=1");
                        break;
                case SIGCHLD:
                        analysis_reap(&d);
                        break;
                }
        }
}

/*
 * The handler's datagrams: "CRASH=ID" (stored), "ANALYZE" (pystackctl queued one), or "CORE=ID"
 * with the raw core of a crash still being compressed.  1 when the queue should be looked at.
 */
static int read_notifications(void) {
        int wake = 0;

        for (;;) {
                char msg[128], cbuf[CMSG_SPACE(SEND_MAX_FDS * sizeof(int))];
                struct iovec iov = { .iov_base = msg, .iov_len = sizeof(msg) - 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                                     .msg_controllen = sizeof(cbuf) };
                int fds[SEND_MAX_FDS] = { -1, -1 };
                size_t n_fds = 0;
                ssize_t n = recvmsg(d.notify_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

                if (n < 0)
                        return wake;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                            c->cmsg_len >= CMSG_LEN(0)) {
                                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                                for (size_t i = 0; i < k; i++) {
                                        int fd;
                                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                                        if (n_fds < SEND_MAX_FDS)
                                                fds[n_fds++] = fd;
                                        else
                                                close(fd);
                                }
                        }
                msg[n] = 0;
                long long id;
                char end;
                if (n_fds > 0 && !(mh.msg_flags & MSG_CTRUNC) && sscanf(msg, "CORE=%lld%c", &id, &end) == 1 &&
                    id > 0) {
                        struct stat st;
                        /* the container's root first: the analysis may start at once */
                        if (n_fds == 2 && fstat(fds[1], &st) == 0 && S_ISDIR(st.st_mode))
                                analysis_keep_root(&d, id, fds[1]);
                        else if (n_fds == 2)
                                close(fds[1]);
                        analysis_start_raw(&d, id, fds[0]);     /* takes fds[0] */
                } else
                        for (size_t i = 0; i < n_fds; i++)
                                close(fds[i]);
                wake = 1;
        }
}

static int64_t maintain(int64_t now) {
        unsigned removed = 0;

        retention_apply(d.db, d.storage_fd, &d.cfg, &removed);
        if (removed)
                log_msg(LOG_INFO, "retention removed %u cores", removed);
        return now + MAINTENANCE_USEC;
}

static int run(void) {
        int64_t next_scan = 0;

        for (;;) {
                int64_t now = clock_usec(CLOCK_MONOTONIC), wake;
                struct pollfd pfd[3 + 2 * MAX_JOBS + MAX_QUERIES];
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
                        analysis_fill_workers(&d);
                        next_scan = now + RESCAN_USEC;
                }
                if (!d.stopping && now >= d.next_maintenance)
                        d.next_maintenance = maintain(now);
                if (!d.stopping && d.listener.restart_at && now >= d.listener.restart_at)
                        socket_capture_start(&d);
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

                wake = d.stopping ? d.stop_deadline : MIN(next_scan, d.next_maintenance);
                if (d.watchdog_usec)
                        wake = MIN(wake, d.next_watchdog);
                for (unsigned i = 0; i < d.n_jobs; i++)
                        wake = MIN(wake, d.jobs[i].deadline);
                if (!d.stopping && d.listener.restart_at)
                        wake = MIN(wake, d.listener.restart_at);
                pfd[n++] = (struct pollfd) { .fd = d.sig_fd, .events = POLLIN };
                pfd[n++] = (struct pollfd) { .fd = d.notify_fd, .events = POLLIN };
                pfd[n++] = (struct pollfd) { .fd = d.query_fd, .events = POLLIN };
                for (unsigned i = 0; i < d.n_jobs; i++) {
                        pfd[n++] = (struct pollfd) { .fd = d.jobs[i].out_fd, .events = POLLIN };
                        pfd[n++] = (struct pollfd) { .fd = d.jobs[i].err_fd, .events = POLLIN };
                }
                for (unsigned i = 0; i < d.n_queries; i++)
                        pfd[n++] = (struct pollfd) { .fd = d.queries[i].chan, .events = POLLIN };
                int timeout = (int)MAX((wake - clock_usec(CLOCK_MONOTONIC)) / 1000, 0) + 1;
                if (poll(pfd, n, timeout) < 0 && errno != EINTR)
                        return -errno;
                if ((pfd[1].revents & POLLIN) && read_notifications())
                        next_scan = 0;   /* a new crash: look at once */
                if (pfd[2].revents & POLLIN)
                        query_server_accept(&d);
                query_server_read(&d);
                analysis_read(&d);
                if (pfd[0].revents & POLLIN)
                        handle_signals();
                analysis_reap(&d);
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

        /* a query socket's connection, handed to a worker of ours (query_server.c); its
         * descriptors are ours, not a starter's */
        if (argc > 1 && !strcmp(argv[1], "--query-worker"))
                _exit(query_worker_main(argc, argv));   /* no exit handler runs under its sandbox */
        /* nothing its starter left open reaches our children (an analysis runs as another user):
         * a shell's lock or a root-only file it held stays with the shell */
        close_range(3, ~0U, 0);
        log_setup("pystackd", LOG_TO_STDERR);
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
        if (sd_watchdog_enabled(false, &wd) > 0)
                d.watchdog_usec = (int64_t)wd;
        socket_capture_start(&d);
        sd_notify(false, "READY=1");
        log_msg(LOG_INFO, "pystackd started: store %s, %u workers, analyzer %s", d.cfg.directory, d.max_jobs,
                d.cfg.analyzer);
        log_sandbox();
        r = run();
        socket_capture_finish(&d);
        log_msg(LOG_INFO, "pystackd stopped: %llu analysed, %llu failed", (unsigned long long)d.analysed,
                (unsigned long long)d.failed);
        store_close(d.db);
        config_free(&d.cfg);
        return r < 0 ? 1 : 0;
}
