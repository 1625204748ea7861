/* SPDX-License-Identifier: MIT */
/*
 * [Capture] Mode=socket: pystackd runs the coredump socket's listener (pystack-coredump --listen,
 * the program the pipe pattern names) and restarts it when it dies.  The listener switches
 * core_pattern to its socket and back; when it is killed before it could switch back, we do, so
 * that crashes go to the pipe handler while it is down rather than to a socket nobody accepts on
 * (the kernel would write no core at all).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "core_pattern.h"
#include "log.h"
#include "pystackd.h"
#include "util.h"

#define BACKOFF_MIN_USEC (1000000LL)
#define BACKOFF_MAX_USEC (30 * 1000000LL)
#define STABLE_USEC (10 * 1000000LL)    /* a listener that ran this long starts the backoff anew */
#define FINISH_USEC (3 * 1000000LL)

static void socket_path(const struct daemon *d, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s", d->cfg.runtime_directory, COREDUMP_SOCKET_NAME);
}

/*
 * The listener is the program the pipe pattern runs (or ran, when an earlier listener's socket
 * pattern is still in place): a file of root's that only root can change, since we run it as root.
 */
static int find_handler(const struct daemon *d, char *buf, size_t size, char *why, size_t whysz) {
        char pattern[CORE_PATTERN_MAX + 1];
        struct stat st;
        size_t n;
        int r = core_pattern_read(pattern, sizeof(pattern));

        if (r < 0) {
                snprintf(why, whysz, "cannot read %s: %s", CORE_PATTERN_FILE, strerror(-r));
                return r;
        }
        if (pattern[0] == '@') {
                if (core_pattern_saved_handler(d->cfg.runtime_directory, buf, size) < 0) {
                        snprintf(why, whysz, "core_pattern is %s and no saved pipe pattern names the handler",
                                 pattern);
                        return -ENOENT;
                }
        } else if (pattern[0] == '|' && (n = strcspn(pattern + 1, " \t")) > 0 && n < size) {
                memcpy(buf, pattern + 1, n);
                buf[n] = 0;
        } else {
                snprintf(why, whysz, "core_pattern (%s) is not pystack-coredump's pipe pattern, which socket "
                         "capture needs installed first", pattern);
                return -EPERM;
        }
        if (buf[0] != '/' || stat(buf, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022)) {
                snprintf(why, whysz, "the pipe pattern's program %.128s is not a file of root's that only root "
                         "writes", buf);
                return -EPERM;
        }
        return 0;
}

/* The kernel's own mount namespace, through kthreadd's (pid 2 of the initial pid namespace); -1. */
static int kernel_mount_ns(void) {
        char comm[32] = "";
        int fd = open("/proc/2/comm", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, comm, sizeof(comm) - 1) : -1;

        if (fd >= 0)
                close(fd);
        if (n <= 0 || strncmp(comm, "kthreadd\n", 9) != 0)
                return -1;
        return open("/proc/2/ns/mnt", O_RDONLY | O_CLOEXEC);
}

void socket_capture_start(struct daemon *d) {
        struct socket_capture *l = &d->listener;
        char handler[CORE_PATTERN_MAX + 1], why[1024], config[PATH_MAX + 16], path[PATH_MAX];
        pid_t pid;

        if (!d->cfg.socket_capture || l->off || l->pid || d->stopping)
                return;
        l->restart_at = 0;
        if (find_handler(d, handler, sizeof(handler), why, sizeof(why)) < 0) {
                log_msg(LOG_ERR, "socket capture is off: %s", why);
                l->off = true;
                return;
        }
        if (d->config_path[0] == '/' || !realpath(d->config_path, path))
                snprintf(config, sizeof(config), "--config=%s", d->config_path);
        else
                snprintf(config, sizeof(config), "--config=%s", path);
        pid = fork();
        if (pid == 0) {
                sigset_t none;
                int ns;

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                /* the kernel finds the socket from init's root, in the initial mount namespace, and
                 * takes the pattern only from a writer there: the listener lives there, wherever we
                 * were started (the handler's path is the kernel's view too).  That namespace is the
                 * kernel threads' (kthreadd, pid 2), even where pid 1 is not in it */
                ns = kernel_mount_ns();
                if (ns >= 0 && setns(ns, CLONE_NEWNS) == 0 && chdir("/") < 0)
                        _exit(127);
                execl(handler, handler, config, "--listen", (char *)NULL);
                _exit(127);
        }
        if (pid < 0) {
                log_msg(LOG_ERR, "socket capture: cannot start %s --listen: %m", handler);
                l->restart_at = clock_usec(CLOCK_MONOTONIC) + BACKOFF_MAX_USEC;
                return;
        }
        l->pid = pid;
        l->started = clock_usec(CLOCK_MONOTONIC);
        log_msg(LOG_INFO, "socket capture: started %s --listen (pid %d)", handler, (int)pid);
}

/* The pipe pattern back, when the listener could not put it back itself. */
static void pipe_pattern_back(struct daemon *d) {
        char path[PATH_MAX];
        int r;

        socket_path(d, path, sizeof(path));
        r = core_pattern_to_pipe(d->cfg.runtime_directory, path);
        if (r > 0)
                log_msg(LOG_WARNING, "socket capture: the listener left core_pattern on its socket; the pipe "
                        "pattern is back");
        else if (r < 0)
                log_msg(LOG_ERR, "socket capture: cannot put the pipe pattern back: %s", strerror(-r));
}

bool socket_capture_reaped(struct daemon *d, pid_t pid, int status) {
        struct socket_capture *l = &d->listener;
        int64_t now = clock_usec(CLOCK_MONOTONIC);

        if (!l->pid || pid != l->pid)
                return false;
        l->pid = 0;
        pipe_pattern_back(d);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
                log_msg(LOG_ERR, "socket capture is off (the listener said why); crashes go to the pipe handler");
                l->off = true;
                return true;
        }
        if (d->stopping || !d->cfg.socket_capture)
                return true;
        l->backoff = now - l->started >= STABLE_USEC ? BACKOFF_MIN_USEC :
                     MIN(MAX(l->backoff * 2, BACKOFF_MIN_USEC), BACKOFF_MAX_USEC);
        l->restart_at = now + l->backoff;
        if (WIFSIGNALED(status))
                log_msg(LOG_WARNING, "socket capture: the listener was killed by signal %d; restarting it in %lld s",
                        WTERMSIG(status), (long long)(l->backoff / 1000000));
        else
                log_msg(LOG_WARNING, "socket capture: the listener exited with status %d; restarting it in %lld s",
                        WEXITSTATUS(status), (long long)(l->backoff / 1000000));
        return true;
}

void socket_capture_stop(struct daemon *d) {
        d->listener.restart_at = 0;
        if (d->listener.pid)
                kill(d->listener.pid, SIGTERM);
}

void socket_capture_finish(struct daemon *d) {
        struct socket_capture *l = &d->listener;
        int64_t deadline = clock_usec(CLOCK_MONOTONIC) + FINISH_USEC;
        int status;

        if (!l->pid)
                return;
        kill(l->pid, SIGTERM);
        while (clock_usec(CLOCK_MONOTONIC) < deadline) {
                pid_t r = waitpid(l->pid, &status, WNOHANG);

                if (r == l->pid || (r < 0 && errno == ECHILD)) {
                        l->pid = 0;
                        pipe_pattern_back(d);
                        return;
                }
                usleep(20000);
        }
        kill(l->pid, SIGKILL);
        waitpid(l->pid, &status, 0);
        l->pid = 0;
        pipe_pattern_back(d);
}
