/* SPDX-License-Identifier: MIT */
/*
 * pystack-coredump --listen: the coredump socket's listener ([Capture] Mode=socket).
 *
 * One process, run (and restarted) by pystackd.  It binds RUNTIME_DIR/coredump.socket (root's,
 * 0600: the kernel connects without permission checks, nobody else can), then replaces our pipe
 * pattern in core_pattern with "@@" and that path -- only while it accepts: when it stops it
 * puts the pipe pattern back, and pystackd does when it finds it killed.  Each connection is
 * served by a child of its own (fork, no exec) running the same capture steps as the pipe
 * handler, so a slow store or a large core never holds the next crash, and a listener killed
 * mid-core leaves that core to its child.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "capture.h"
#include "core_pattern.h"
#include "log.h"
#include "util.h"

#define MAX_CONNECTIONS 64              /* served at once; more wait in the backlog */
#define BACKLOG 128
#define CHECK_USEC (2 * 1000000LL)      /* how often the socket's path is checked to still be ours */

struct listener {
        const char *config_path;
        struct config cfg;
        struct sockaddr_un sa;
        int sock, sig_fd;
        sigset_t old_mask;
        unsigned children;
        struct stat bound;              /* the socket file we bound */
        bool activated;                 /* systemd's socket (pystack-coredump.socket): it owns the
                                         * socket file and core_pattern is the sysctl drop-in's */
};

/* The socket systemd passed (socket activation), made ours: true when there is one. */
static bool activated_socket(struct listener *l) {
        int flags;

        if (sd_listen_fds(1) != 1 || sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0)
                return false;
        l->sock = SD_LISTEN_FDS_START;
        flags = fcntl(l->sock, F_GETFL);
        fcntl(l->sock, F_SETFL, flags | O_NONBLOCK);
        fcntl(l->sock, F_SETFD, FD_CLOEXEC);
        l->activated = true;
        return true;
}

static int setup_socket(struct listener *l, char *why, size_t whysz) {
        struct stat st;

        if (mkdir(l->cfg.runtime_directory, 0755) < 0 && errno != EEXIST) {
                snprintf(why, whysz, "cannot create %s: %s", l->cfg.runtime_directory, strerror(errno));
                return -errno;
        }
        if (lstat(l->cfg.runtime_directory, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
            (st.st_mode & 022)) {
                snprintf(why, whysz, "%s is not a directory of root's that only root writes", l->cfg.runtime_directory);
                return -EPERM;
        }
        l->sa.sun_family = AF_UNIX;
        if ((size_t)snprintf(l->sa.sun_path, sizeof(l->sa.sun_path), "%s/%s", l->cfg.runtime_directory,
                             COREDUMP_SOCKET_NAME) >= sizeof(l->sa.sun_path)) {
                snprintf(why, whysz, "%s/%s is longer than a socket's path may be", l->cfg.runtime_directory,
                         COREDUMP_SOCKET_NAME);
                return -ENAMETOOLONG;
        }
        l->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (l->sock < 0)
                goto fail;
        unlink(l->sa.sun_path);
        /* root's alone from the start (the umask is 077), and 0600 as pystackd's own sockets */
        if (bind(l->sock, (struct sockaddr *)&l->sa, sizeof(l->sa)) < 0 || chmod(l->sa.sun_path, 0600) < 0 ||
            listen(l->sock, BACKLOG) < 0 || lstat(l->sa.sun_path, &l->bound) < 0)
                goto fail;
        return 0;
fail:
        snprintf(why, whysz, "cannot listen on %s: %s", l->sa.sun_path, strerror(errno));
        return -errno;
}

/* The socket file at our path is still the one we bound (a new listener replaces it). */
static bool still_ours(const struct listener *l) {
        struct stat st;

        return lstat(l->sa.sun_path, &st) == 0 && st.st_ino == l->bound.st_ino && st.st_dev == l->bound.st_dev;
}

static void serve(struct listener *l) {
        for (;;) {
                int conn;
                pid_t pid;
                int64_t start;

                if (l->children >= MAX_CONNECTIONS)
                        return;
                conn = accept4(l->sock, NULL, NULL, SOCK_CLOEXEC);
                if (conn < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_msg(LOG_WARNING, "coredump socket: accept: %m");
                        return;
                }
                start = clock_usec(CLOCK_REALTIME);
                pid = fork();
                if (pid == 0) {
                        close(l->sock);
                        close(l->sig_fd);
                        signal(SIGALRM, SIG_DFL);
                        sigprocmask(SIG_SETMASK, &l->old_mask, NULL);
                        prctl(PR_SET_PDEATHSIG, 0);     /* the core is ours to finish if the listener goes */
                        _exit(capture_connection(conn, l->config_path, start));
                }
                if (pid < 0)
                        log_msg(LOG_ERR, "coredump socket: cannot fork for a crash: %m; its core is lost");
                else
                        l->children++;
                close(conn);
        }
}

static bool handle_signals(struct listener *l) {
        struct signalfd_siginfo si;
        bool stop = false;

        while (read(l->sig_fd, &si, sizeof(si)) == sizeof(si))
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                        stop = true;
        while (waitpid(-1, NULL, WNOHANG) > 0)
                if (l->children)
                        l->children--;
        return stop;
}

int listener_run(const char *config_path) {
        struct listener l = { .config_path = config_path, .sock = -1, .sig_fd = -1 };
        char why[512];
        sigset_t mask;
        int r, status = 0;
        int64_t next_check;

        /* pystackd runs us: when it goes, we go (and give the pattern back) */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (geteuid() != 0) {
                fprintf(stderr, "pystack-coredump: --listen must run as root\n");
                return 1;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, &l.old_mask);
        l.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (l.sig_fd < 0 || config_defaults(&l.cfg) < 0 || capture_load_config(&l.cfg, config_path) < 0) {
                log_msg(LOG_ERR, "socket capture: cannot start: %s", l.sig_fd < 0 ? strerror(errno) : "out of memory");
                closep(&l.sig_fd);
                return 1;
        }
        if (activated_socket(&l)) {
                sd_notify(false, "READY=1");
                log_msg(LOG_INFO, "socket capture: serving the socket systemd passed (core_pattern is the "
                        "sysctl drop-in's)");
        } else {
                if (setup_socket(&l, why, sizeof(why)) < 0) {
                        log_msg(LOG_ERR, "socket capture: %s", why);
                        status = 1;
                        goto out;
                }
                r = core_pattern_to_socket(l.cfg.runtime_directory, l.sa.sun_path, "/proc/self/exe", why,
                                           sizeof(why));
                if (r < 0) {
                        log_msg(LOG_ERR, "socket capture is off: %s; the pipe pattern stays", why);
                        unlink(l.sa.sun_path);
                        status = r == -EPERM || r == -ENOTSUP || r == -ENAMETOOLONG || r == -EROFS ||
                                 r == -EACCES ? LISTENER_EXIT_UNSUPPORTED : 1;
                        goto out;
                }
                log_msg(LOG_INFO, "socket capture: listening on %s (core_pattern @@%s)", l.sa.sun_path,
                        l.sa.sun_path);
        }
        next_check = clock_usec(CLOCK_MONOTONIC) + CHECK_USEC;
        for (;;) {
                struct pollfd pfd[2] = {
                        { .fd = l.sig_fd, .events = POLLIN },
                        { .fd = l.sock, .events = l.children < MAX_CONNECTIONS ? POLLIN : 0 },
                };

                if (poll(pfd, 2, (int)(CHECK_USEC / 1000)) < 0 && errno != EINTR) {
                        status = 1;
                        break;
                }
                if ((pfd[0].revents & POLLIN) && handle_signals(&l))
                        break;
                if (pfd[1].revents & POLLIN)
                        serve(&l);
                if (!l.activated && clock_usec(CLOCK_MONOTONIC) >= next_check) {
                        next_check = clock_usec(CLOCK_MONOTONIC) + CHECK_USEC;
                        if (!still_ours(&l)) {
                                /* another listener has the path (and the pattern): not ours to touch */
                                log_msg(LOG_WARNING, "socket capture: %s is no longer our socket; stopping",
                                        l.sa.sun_path);
                                goto out;
                        }
                }
        }
        if (l.activated) {
                /* systemd keeps the socket; crashes queue there until we run again */
                log_msg(LOG_INFO, "socket capture stopped; %u crashes still being taken by their own processes",
                        l.children);
                goto out;
        }
        /* the pattern first: from now on crashes go to the pipe handler, none waits for us */
        r = core_pattern_to_pipe(l.cfg.runtime_directory, l.sa.sun_path);
        if (r < 0)
                log_msg(LOG_ERR, "socket capture: cannot put the pipe pattern back: %s", strerror(-r));
        if (still_ours(&l))
                unlink(l.sa.sun_path);
        log_msg(LOG_INFO, "socket capture stopped%s; %u crashes still being taken by their own processes",
                r > 0 ? ": core_pattern is the pipe pattern again" : "", l.children);
out:
        closep(&l.sock);
        closep(&l.sig_fd);
        config_free(&l.cfg);
        return status;
}
