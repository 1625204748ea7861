/* SPDX-License-Identifier: MIT */
/*
 * query_worker: one connection to pystackd's query socket, answered by a process with nothing to
 * lose (`pystackd --query-worker`, run by query_server.c; see there for the channel).
 *
 * It starts as root with the connection on descriptor 3 and its channel to pystackd on 4, and
 * before it reads a byte of the request it opens what it will read -- the store, read-only, every
 * file of it, and cores/ to tell a missing core -- then becomes QueryUser with no capability, no
 * supplementary group, no_new_privs, no core dump, no file it could write, and limits on memory,
 * CPU time and descriptors; then the seccomp filter (SANDBOX_QUERY in sandbox.c) leaves it the
 * system calls a query needs, on its two sockets only.  A request it parses wrongly, or a store that leads SQLite astray, can then take
 * nothing but this connection's answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "pystackd.h"
#include "query.h"
#include "sandbox.h"
#include "store.h"
#include "util.h"

#define CONN_FD 3
#define CHAN_FD 4

void query_send_err(int fd, int code, const char *fmt, ...) {
        char msg[600], line[700];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        msg[strcspn(msg, "\n")] = 0;
        int n = snprintf(line, sizeof(line), "ERR %d %s\n", code, msg);
        (void)!write(fd, line, (size_t)MIN(n, (int)sizeof(line) - 1));
}

/* Ask pystackd (msg); its answer in line, and the descriptor that came with it in *fd. */
static int ask(const char *msg, char *line, size_t size, int *fd) {
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { .iov_base = line, .iov_len = size - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        ssize_t n;

        if (fd)
                *fd = -1;
        if (send(CHAN_FD, msg, strlen(msg), MSG_NOSIGNAL) < 0)
                return -EIO;
        do
                n = recvmsg(CHAN_FD, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                return -EIO;
        line[n] = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int))) {
                        int got;
                        memcpy(&got, CMSG_DATA(c), sizeof(int));
                        if (fd && *fd < 0)
                                *fd = got;
                        else
                                close(got);
                }
        return 0;
}

/* analyze, through pystackd: 1 queued, 0 no core or under way, -errno */
static int requeue_by_daemon(const struct query_store *s, int64_t id) {
        char msg[64], line[128];
        int queued;

        (void)s;
        snprintf(msg, sizeof(msg), "ANALYZE %lld", (long long)id);
        if (ask(msg, line, sizeof(line), NULL) < 0 || sscanf(line, "OK %d", &queued) != 1)
                return -EIO;
        return queued > 0;
}

/* The core of the newest crash of q: "OK\n" with its descriptor, then the executable's path. */
static void answer_core(sqlite3 *db, const struct query *q, int64_t uid) {
        _cleanup_free_ char *core_path = NULL, *exe = NULL;
        char msg[64], line[128];
        int64_t id;
        int fd, r = query_find_newest(db, q, uid, &id, &core_path, &exe);

        if (r <= 0) {
                query_send_err(CONN_FD, 1, r < 0 ? "cannot read the store" : "No crashes match.");
                return;
        }
        snprintf(msg, sizeof(msg), "CORE %lld", (long long)id);
        if (!core_path || ask(msg, line, sizeof(line), &fd) < 0 || strcmp(line, "OK") || fd < 0) {
                query_send_err(CONN_FD, 1, "crash %lld has no stored core", (long long)id);
                return;
        }
        if (send_with_fd(CONN_FD, NULL, "OK\n", 3, fd, 0) == 3 && exe) {
                write_all(CONN_FD, exe, strlen(exe));
                write_all(CONN_FD, "\n", 1);
        }
}

static void answer_vacuum(const struct query *q, int64_t uid) {
        char line[128];
        unsigned removed;

        if (uid >= 0) {
                query_send_err(CONN_FD, 1, "vacuum: only root may remove cores");
                return;
        }
        if (ask("VACUUM", line, sizeof(line), NULL) < 0 || sscanf(line, "OK %u", &removed) != 1) {
                query_send_err(CONN_FD, 1, "vacuum failed");
                return;
        }
        dprintf(CONN_FD, "OK\n");
        if (q->json)
                dprintf(CONN_FD, "{\"removed\":%u}\n", removed);
        else
                dprintf(CONN_FD, "Removed %u core%s.\n", removed, removed == 1 ? "" : "s");
}

/* Become QueryUser with nothing: 0, or -errno (then nothing is answered). */
static int drop_everything(uid_t uid, gid_t gid) {
        static const struct {
                int resource;
                rlim_t value;
        } limits[] = {
                { RLIMIT_CORE, 0 },
                { RLIMIT_NOFILE, 32 },
#if !SANITIZER_BUILD    /* AddressSanitizer's shadow memory is terabytes of address space */
                { RLIMIT_AS, 1ull << 30 },      /* a list of 100,000 crashes needs some 60 MiB */
#endif
                { RLIMIT_CPU, 60 },
                { RLIMIT_NPROC, 0 },
        };

        if (uid == 0 || gid == 0)
                return -EPERM;
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                return -errno;
        if (getuid() != uid || geteuid() != uid || getegid() != gid)
                return -EPERM;
        for (size_t i = 0; i < ELEMENTSOF(limits); i++) {
                struct rlimit l = { limits[i].value, limits[i].value };
                if (setrlimit(limits[i].resource, &l) < 0)
                        return -errno;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0) < 0)
                return -errno;
        return 0;
}

static bool is_socket(int fd) {
        struct stat st;

        return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

int query_worker_main(int argc, char **argv) {
        struct timeval tv = { .tv_sec = 5 }, chan_tv = { .tv_sec = 50 };
        char req[QUERY_MAX_WIRE + 1], err[512], cores[4096];
        long long uid_arg;
        unsigned quid, qgid;
        size_t got = 0;
        struct query q;
        sqlite3 *db;
        char end;
        int r;

        /* pystackd's own arguments: "--query-worker UID DIRECTORY QUERYUID:QUERYGID", and its
         * connection and channel as descriptors 3 and 4 */
        if (argc != 5 || sscanf(argv[2], "%lld%c", &uid_arg, &end) != 1 || uid_arg < -1 ||
            sscanf(argv[4], "%u:%u%c", &quid, &qgid, &end) != 2 || argv[3][0] != '/' || geteuid() != 0 ||
            !is_socket(CONN_FD) || !is_socket(CHAN_FD)) {
                fprintf(stderr, "pystackd --query-worker: only pystackd runs this\n");
                return 2;
        }
        int64_t uid = uid_arg;

        alarm(60);     /* no query may hold a worker for long */
        tzset();       /* /etc/localtime, read now: times are printed in local time */
        if (setsockopt(CONN_FD, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(CHAN_FD, SOL_SOCKET, SO_RCVTIMEO, &chan_tv, sizeof(chan_tv)) < 0)
                return 1;
        r = store_open_readonly(argv[3], &db, err, sizeof(err));
        if (r < 0) {
                query_send_err(CONN_FD, 1, "cannot open the store: %s", err);
                return 1;
        }
        snprintf(cores, sizeof(cores), "%s/cores", argv[3]);
        int cores_fd = open(cores, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        r = drop_everything(quid, qgid);
        if (r == 0)
                r = sandbox_seccomp(SANDBOX_QUERY, -1);
        if (r < 0) {
                query_send_err(CONN_FD, 1, "pystackd cannot answer safely: %s", strerror(-r));
                return 1;
        }

        /* from here on, everything read is the asker's */
        while (got < QUERY_MAX_WIRE) {
                ssize_t n = read(CONN_FD, req + got, QUERY_MAX_WIRE - got);
                if (n <= 0)
                        break;
                got += (size_t)n;
                if (got >= 2 && req[got - 1] == '\n' && req[got - 2] == '\n')
                        break;
        }
        if (query_from_wire(&q, req, got) < 0) {
                query_send_err(CONN_FD, 2, "pystackd could not read the request");
                return 0;
        }
        if (q.verb == VERB_VACUUM) {
                answer_vacuum(&q, uid);
                return 0;
        }
        if (q.verb == VERB_CORE) {
                answer_core(db, &q, uid);
                return 0;
        }
        /* answer in memory first: an error must be able to replace it */
        struct query_store qs = { .db = db, .dir = argv[3], .cores_fd = cores_fd, .requeue = requeue_by_daemon };
        char *body = NULL;
        size_t body_len = 0;
        FILE *m = open_memstream(&body, &body_len);
        r = m ? query_run(&qs, &q, uid, m, err, sizeof(err)) : -ENOMEM;
        if (m)
                fclose(m);
        if (r != 0) {
                query_send_err(CONN_FD, 1, "%s", r == -ENOMEM ? "out of memory" : err);
                return 0;
        }
        if (send_with_fd(CONN_FD, NULL, "OK\n", 3, -1, 0) == 3)
                write_all(CONN_FD, body, body_len);
        return 0;
}
