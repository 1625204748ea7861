/* SPDX-License-Identifier: MIT */
/*
 * query_server: pystackd's query socket, <RuntimeDirectory>/query -- the privileged side.
 *
 * Anyone may ask.  pystackd accepts, learns the asker's uid from SO_PEERCRED, and hands the
 * connection to a process of its own (query_worker.c, pystackd run again with --query-worker)
 * that opens the store read-only, drops every privilege and only then reads the request.  What
 * only root may do for the asker comes back here as one short message on a private channel, and
 * is checked again against the uid pystackd itself took from the socket:
 *
 *     CORE <id>      the descriptor of crash id's stored core (pystackctl dump and debug)
 *     ANALYZE <id>   queue crash id for a new analysis
 *     VACUUM         apply the retention limits now (root's connections only)
 *
 * answered "OK" (with the descriptor), "OK <cores removed>", or "ERR <why>".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "pystackd.h"
#include "query.h"
#include "retention.h"
#include "store.h"
#include "util.h"

extern char **environ;

int query_server_listen(struct daemon *d) {
        struct sockaddr_un qa = { .sun_family = AF_UNIX };

        if ((size_t)snprintf(qa.sun_path, sizeof(qa.sun_path), "%s/query", d->cfg.runtime_directory) >=
            sizeof(qa.sun_path))
                return -ENAMETOOLONG;
        unlink(qa.sun_path);
        d->query_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (d->query_fd < 0 || bind(d->query_fd, (struct sockaddr *)&qa, sizeof(qa)) < 0 ||
            chmod(qa.sun_path, 0666) < 0 || listen(d->query_fd, 64) < 0)
                return -errno;
        return 0;
}

/* In the child: become the worker, conn on 3 and the channel on 4.  Never returns. */
static _Noreturn void exec_worker(const struct daemon *d, int conn, int chan, int64_t uid) {
        char a_uid[32], a_user[64];
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0)
                _exit(127);
        /* stderr stays pystackd's: a sanitizer's report reaches its log */
        if (chan == 3 && (chan = fcntl(chan, F_DUPFD, 5)) < 0)
                _exit(127);
        if (dup2(conn, 3) != 3 || dup2(chan, 4) != 4)
                _exit(127);
        close_range(5, ~0U, 0);
        snprintf(a_uid, sizeof(a_uid), "%lld", (long long)uid);
        snprintf(a_user, sizeof(a_user), "%u:%u", (unsigned)d->query_uid, (unsigned)d->query_gid);
        char *argv[] = { "pystackd", "--query-worker", a_uid, d->cfg.directory, a_user, NULL };
        /* ourselves, as we were started: no path that could have been replaced since */
        execve("/proc/self/exe", argv, environ);
        _exit(127);
}

void query_server_accept(struct daemon *d) {
        for (;;) {
                int conn = accept4(d->query_fd, NULL, NULL, SOCK_CLOEXEC), ch[2];
                struct ucred cred;
                socklen_t len = sizeof(cred);
                pid_t pid;

                if (conn < 0)
                        return;
                if (d->n_queries >= MAX_QUERIES) {
                        query_send_err(conn, 1, "pystackd is busy: try again");
                        close(conn);
                        continue;
                }
                if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
                    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ch) < 0) {
                        close(conn);
                        continue;
                }
                int64_t uid = cred.uid == 0 ? -1 : (int64_t)cred.uid;
                pid = fork();
                if (pid == 0)
                        exec_worker(d, conn, ch[1], uid);
                close(conn);
                close(ch[1]);
                if (pid < 0) {
                        close(ch[0]);
                        continue;
                }
                fcntl(ch[0], F_SETFL, O_NONBLOCK);
                d->queries[d->n_queries++] = (struct query_worker) { .pid = pid, .chan = ch[0], .uid = uid };
        }
}

static void reply(int chan, const char *msg, int fd) {
        if (send_with_fd(chan, NULL, msg, strlen(msg), fd, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                log_msg(LOG_DEBUG, "a query worker did not take its answer: %m");
}

/* Whether uid may see crash id (1, with its core's path when it has one), 0, or -EIO. */
static int visible(struct daemon *d, int64_t id, int64_t uid, char **core_path) {
        struct match m = { .key = MATCH_ID };
        struct store_filter f = { .matches = &m, .n_matches = 1, .since = INT64_MIN, .until = INT64_MAX,
                                  .uid = uid };
        int64_t found;

        snprintf(m.value, sizeof(m.value), "%lld", (long long)id);
        return store_find_newest(d->db, &f, &found, core_path, NULL);
}

/* One message from worker w: checked, done, answered. */
static void serve(struct daemon *d, struct query_worker *w, const char *msg) {
        _cleanup_free_ char *core_path = NULL;
        long long id = 0;
        char end, line[64];
        const char *why = "not understood";
        int r;

        if (sscanf(msg, "CORE %lld%c", &id, &end) == 1 && id > 0) {
                r = visible(d, id, w->uid, &core_path);
                int fd = r > 0 && core_path ? analysis_open_core(d, core_path) : -1;
                if (fd >= 0) {
                        reply(w->chan, "OK", fd);
                        close(fd);
                        return;
                }
                why = r < 0 ? "cannot read the store" : r == 0 ? "no such crash" : "no stored core";
        } else if (sscanf(msg, "ANALYZE %lld%c", &id, &end) == 1 && id > 0) {
                r = visible(d, id, w->uid, NULL);
                if (r > 0)
                        r = store_requeue_for_analysis(d->db, id);   /* 0: no core, or under way now */
                else if (r == 0)
                        r = -ENOENT;
                if (r >= 0) {
                        if (r > 0)
                                d->rescan = true;       /* the queue is looked at at once */
                        snprintf(line, sizeof(line), "OK %d", r);
                        reply(w->chan, line, -1);
                        return;
                }
                why = r == -ENOENT ? "no such crash" : "cannot use the store";
        } else if (!strcmp(msg, "VACUUM")) {
                unsigned removed = 0;

                if (w->uid < 0) {
                        retention_apply(d->db, d->storage_fd, &d->cfg, &removed);
                        snprintf(line, sizeof(line), "OK %u", removed);
                        reply(w->chan, line, -1);
                        return;
                }
                why = "only root may remove cores";
        }
        snprintf(line, sizeof(line), "ERR %s", why);
        reply(w->chan, line, -1);
}

void query_server_read(struct daemon *d) {
        for (unsigned i = 0; i < d->n_queries; i++) {
                struct query_worker *w = &d->queries[i];
                char msg[64];
                ssize_t n;

                /* a worker asks once or twice; more than 8 at a go waits for the next round */
                for (int k = 0; w->chan >= 0 && k < 8; k++) {
                        n = recv(w->chan, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_TRUNC);
                        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                                break;
                        if (n <= 0 || (size_t)n >= sizeof(msg)) {
                                /* gone, or a message no worker of ours writes: it is heard no more */
                                close(w->chan);
                                w->chan = -1;
                                break;
                        }
                        msg[n] = 0;
                        serve(d, w, msg);
                }
        }
}

bool query_server_reaped(struct daemon *d, pid_t pid, int status) {
        for (unsigned i = 0; i < d->n_queries; i++)
                if (d->queries[i].pid == pid) {
                        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
                                log_msg(LOG_ERR, "the query of uid %lld was stopped by its sandbox: a forbidden "
                                        "system call (SIGSYS)", (long long)d->queries[i].uid);
                        else if (WIFSIGNALED(status) && WTERMSIG(status) != SIGALRM)
                                log_msg(LOG_WARNING, "the query of uid %lld ended with %s",
                                        (long long)d->queries[i].uid, signal_full_name(WTERMSIG(status)));
                        if (d->queries[i].chan >= 0)
                                close(d->queries[i].chan);
                        d->queries[i] = d->queries[--d->n_queries];
                        return true;
                }
        return false;
}
