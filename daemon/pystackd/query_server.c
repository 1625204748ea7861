/* SPDX-License-Identifier: MIT */
/*
 * query_server: pystackd's query socket, <RuntimeDirectory>/query.  Anyone
 * may ask; each answer is restricted to the asker's own crashes (its uid,
 * from SO_PEERCRED), and each connection is answered by a child of its own
 * that runs the same queries as root's pystackctl, with that uid as a filter.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "pystackd.h"
#include "query.h"
#include "retention.h"
#include "store.h"

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

/* "OK\n", with the core's descriptor riding along when there is one */
static int send_ok(int conn, int core_fd) {
        return send_with_fd(conn, NULL, "OK\n", 3, core_fd, 0) == 3 ? 0 : -EIO;
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
static _Noreturn void answer_query(struct daemon *d, int conn) {
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
        if (store_open(d->cfg.directory, &db, err, sizeof(err)) < 0) {
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
                int fd = core_path ? analysis_open_core(d, core_path) : -1;
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
                retention_apply(db, d->storage_fd, &d->cfg, &removed);
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
        int r = m ? query_run(db, &q, uid, d->cfg.directory, m, err, sizeof(err)) : -ENOMEM;
        if (m)
                fclose(m);
        if (r != 0) {
                send_err(conn, 1, "%s", r == -ENOMEM ? "out of memory" : err);
                _exit(0);
        }
        if (send_ok(conn, -1) == 0)
                write_all(conn, body, body_len);
        if (q.verb == VERB_ANALYZE)
                notify_daemon(d->cfg.runtime_directory, "ANALYZE", NULL, 0);   /* the parent looks at the queue at once */
        _exit(0);
}

void query_server_accept(struct daemon *d) {
        for (;;) {
                int conn = accept4(d->query_fd, NULL, NULL, SOCK_CLOEXEC);
                pid_t pid;

                if (conn < 0)
                        return;
                if (d->n_queries >= MAX_QUERIES) {
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
                        answer_query(d, conn);
                        _exit(0);
                }
                if (pid > 0)
                        d->n_queries++;
                close(conn);
        }
}

