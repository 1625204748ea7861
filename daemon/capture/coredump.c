/* SPDX-License-Identifier: MIT */
/*
 * pystack-coredump: the kernel's core_pattern pipe handler.
 *
 *   |pystack-coredump [--config=FILE] %F %P %u %g %s %t %c %h %d %e
 *
 * The kernel holds the crashing process until we have read the whole core
 * from stdin, so the plan is: learn what we need from /proc while the
 * process is still there, log a line at once (so the crash is not lost if
 * the system is about to go down), take the core as fast as the kernel can
 * give it (splice into an unnamed file, no compression), let go of the
 * process by closing stdin, and only then compress it into the seekable
 * format, record it and wake pystackd.
 *
 * We run as root on data from a process that may be hostile: we never parse
 * the core, write only below the storage directory (relative to directory
 * descriptors, O_NOFOLLOW, unnamed files linked into place when complete),
 * and make ourselves non-dumpable before anything else.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "conf.h"
#include "coredump_socket.h"
#include "escape.h"
#include "log.h"
#include "binaries.h"
#include "proc_info.h"
#include "store.h"
#include "util.h"
#include "zst_seekable.h"

#define STORE_RESERVE (1u << 20)
#define SPLICE_CHUNK (16u << 20)
#define COMPRESS_CHUNK (4u << 20)
/* how long after it started the handler keeps trying to record a crash in a busy store */
#define STORE_RETRY_USEC (40ll * 1000000)

struct args {
        int pidfd;              /* %F, -1 when the kernel gave none */
        int32_t pid;            /* %P */
        uint32_t uid, gid;      /* %u %g */
        int signal;             /* %s */
        int64_t time;           /* %t */
        int64_t rlimit;         /* %c, -1 for unlimited */
        const char *rlimit_text;        /* %c as the kernel wrote it, for a forwarded handler */
        const char *hostname;   /* %h */
        int dumpable;           /* %d */
        const char *comm;       /* %e */
};

static int parse_int(const char *s, int64_t min, int64_t max, int64_t *out) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                return -EINVAL;
        *out = v;
        return 0;
}

static int parse_args(int argc, char **argv, const char **config, struct args *a, bool *listen) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "listen", no_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int64_t v[9];
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                if (c == 'c')
                        *config = optarg;
                else if (c == 'l')
                        *listen = true;
                else if (c == 'h') {
                        printf("Usage: pystack-coredump [--config=FILE] %%F %%P %%u %%g %%s %%t %%c %%h %%d %%e\n"
                               "       pystack-coredump [--config=FILE] --listen\n"
                               "The kernel's core_pattern handler of pystackd: it stores the core from\n"
                               "standard input, compressed, and records the crash.  With --listen, the\n"
                               "coredump socket's listener ([Capture] Mode=socket, Linux 6.17+), which\n"
                               "pystackd runs: it puts \"@@RUNTIME_DIR/coredump.socket\" in core_pattern in\n"
                               "place of the pipe pattern while it accepts. See pystack-coredump(8).\n");
                        exit(0);
                } else
                        return -EINVAL;
        }
        if (*listen)
                return argc == optind ? 0 : -EINVAL;
        if (argc - optind != 10)
                return -EINVAL;
        char **p = argv + optind;
        /* %F is empty or "-1"-like on kernels without pidfd support: treat anything else as no pidfd */
        a->pidfd = parse_int(p[0], 0, INT_MAX, &v[0]) == 0 ? (int)v[0] : -1;
        if (parse_int(p[1], 1, INT32_MAX, &v[1]) < 0 || parse_int(p[2], 0, UINT32_MAX, &v[2]) < 0 ||
            parse_int(p[3], 0, UINT32_MAX, &v[3]) < 0 || parse_int(p[4], 1, 64, &v[4]) < 0 ||
            parse_int(p[5], 0, INT64_MAX, &v[5]) < 0 || parse_int(p[8], 0, 2, &v[8]) < 0)
                return -EINVAL;
        /* %c: "18446744073709551615" means unlimited */
        a->rlimit = parse_int(p[6], 0, INT64_MAX, &v[6]) == 0 ? v[6] : -1;
        a->rlimit_text = p[6];
        a->pid = (int32_t)v[1];
        a->uid = (uint32_t)v[2];
        a->gid = (uint32_t)v[3];
        a->signal = (int)v[4];
        a->time = v[5];
        a->hostname = p[7];
        a->dumpable = (int)v[8];
        a->comm = p[9];
        return 0;
}

static char *boot_id(void) {
        char buf[64] = "";
        FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

        if (f) {
                if (!fgets(buf, sizeof(buf), f))
                        buf[0] = 0;
                fclose(f);
        } else if (errno == ENOMEM)
                log_msg(LOG_WARNING, "out of memory reading the boot id: it is not recorded");
        buf[strcspn(buf, "\n")] = 0;
        char *id = buf[0] ? strdup(buf) : NULL;
        if (buf[0] && !id)
                log_msg(LOG_WARNING, "out of memory: the boot id is not recorded");
        return id;
}

/* A directory below the storage root, created private, never through a link. */
static int private_subdir(int parent, const char *name) {
        if (mkdirat(parent, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        return open_private_dir(parent, name);
}

static int open_storage(const char *dir, char *why, size_t whysz) {
        char last[NAME_MAX + 1];
        struct stat st;
        int parent, fd;

        parent = trusted_parent(dir, last, sizeof(last), why, whysz);
        if (parent < 0)
                return parent;
        if (mkdirat(parent, last, 0700) < 0 && errno != EEXIST) {
                fd = -errno;
                snprintf(why, whysz, "%s: %s", dir, strerror(errno));
                close(parent);
                return fd;
        }
        fd = openat(parent, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        close(parent);
        if (fd < 0) {
                int r = -errno;
                snprintf(why, whysz, "%s: %s", dir, r == -ELOOP ? "a symbolic link" : strerror(-r));
                return r;
        }
        /* a storage directory others can write to would let them plant links and files */
        if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
                snprintf(why, whysz, "%s: not owned by root, or writable by others", dir);
                close(fd);
                return -EPERM;
        }
        return fd;
}

/*
 * The store's files must be ours alone before SQLite opens them by name: a
 * symbolic link, a FIFO or a hard link there (only root can put one in a
 * 0700 root directory, but then SQLite would write through a hard link to a
 * file elsewhere, or wait on a FIFO) makes us refuse the store.
 */
static int check_store_files(int storage_fd, char *why, size_t whysz) {
        static const char *const names[] = { "pystack.db", "pystack.db-wal", "pystack.db-shm", "pystack.db-journal" };
        struct stat st;
        int fd;

        /* created private here, before SQLite would create it with the umask's mode */
        fd = openat(storage_fd, "pystack.db", O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);
        if (fd < 0) {
                snprintf(why, whysz, "pystack.db: %s", errno == ELOOP ? "a symbolic link" : strerror(errno));
                return -EPERM;
        }
        close(fd);
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                if (fstatat(storage_fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        snprintf(why, whysz, "%s: %s", names[i], strerror(errno));
                        return -EPERM;
                }
                if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid() || (st.st_mode & 022)) {
                        snprintf(why, whysz, "%s is not a private regular file (%s)", names[i],
                                 S_ISLNK(st.st_mode) ? "a symbolic link" : !S_ISREG(st.st_mode) ? "not a file" :
                                 st.st_nlink != 1 ? "a hard link" : "owned by another user or writable by others");
                        return -EPERM;
                }
        }
        return 0;
}

/*
 * The configuration, only from a path nobody but root controls (config_load
 * checks the file and every directory above it).  Anything else: logged, and
 * the defaults used.  But not when memory ran out reading it (-ENOMEM, for the
 * caller to log): the defaults would put the crash in a store nobody configured.
 */
int capture_load_config(struct config *cfg, const char *path) {
        char abs[PATH_MAX], err[PATH_MAX + 256];

        if (path[0] != '/') {
                char cwd[PATH_MAX];
                if (!getcwd(cwd, sizeof(cwd)) ||
                    (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, path) >= sizeof(abs)) {
                        log_msg(LOG_ERR, "%s: cannot make the path absolute; using the defaults", path);
                        return 0;
                }
                path = abs;
        }
        int r = config_load(cfg, path, true, err, sizeof(err));
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                struct config fresh;
                /* a crash is never lost to a config typo; and nothing of a refused file is used */
                log_msg(LOG_ERR, "configuration refused: %s; using the defaults", err);
                if (config_defaults(&fresh) == 0) {
                        config_free(cfg);
                        *cfg = fresh;
                }
        }
        return 0;
}

/* How many more bytes may be written under the limits, now. */
static uint64_t space_allowed(int dirfd, const struct config *c, uint64_t used) {
        struct statvfs sv;
        uint64_t total, avail, max_use, keep_free, by_use, by_free;

        if (fstatvfs(dirfd, &sv) < 0)
                return 0;
        total = (uint64_t)sv.f_blocks * sv.f_frsize;
        avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        max_use = size_limit_bytes(&c->max_use, total);
        keep_free = size_limit_bytes(&c->keep_free, total);
        by_use = max_use > used ? max_use - used : 0;
        by_free = avail > keep_free ? avail - keep_free : 0;
        return by_use < by_free ? by_use : by_free;
}

enum take_result { TAKE_OK, TAKE_TOO_LARGE, TAKE_NO_SPACE, TAKE_ERROR };

/*
 * Move the core from stdin into fd as fast as the kernel produces it:
 * splice moves pages without copying them through us.  Stops at `limit`
 * bytes or when the space budget runs out.
 */
/*
 * Up to want bytes from in to fd without copying them through us: in one splice when `in` is a
 * pipe (the kernel's, in pipe mode); through our own pipe when it is a socket (socket mode),
 * whose pages splice moves as well; read and write when neither works (run by hand).  The
 * bytes moved, 0 at the end, or -errno.
 */
static ssize_t move_core(int in, int fd, size_t want, int relay[2]) {
        ssize_t n, k, done = 0;

        if (relay[0] < 0) {
                n = splice(in, NULL, fd, NULL, want, SPLICE_F_MOVE | SPLICE_F_MORE);
                if (n >= 0 || (errno != EINVAL && errno != ESPIPE))
                        return n < 0 ? -errno : n;
                if (pipe2(relay, O_CLOEXEC) < 0) {
                        relay[0] = relay[1] = -2;       /* no pipe: copy from now on */
                } else
                        fcntl(relay[1], F_SETPIPE_SZ, 1 << 20);
        }
        if (relay[0] == -2) {
                static char buf[1 << 20];

                n = read(in, buf, MIN(sizeof(buf), want));
                if (n > 0 && write(fd, buf, n) != n)
                        return errno ? -errno : -EIO;
                return n < 0 ? -errno : n;
        }
        n = splice(in, NULL, relay[1], NULL, want, SPLICE_F_MOVE | SPLICE_F_MORE);
        if (n <= 0)
                return n < 0 ? -errno : 0;
        while (done < n) {
                k = splice(relay[0], NULL, fd, NULL, (size_t)(n - done), SPLICE_F_MOVE | SPLICE_F_MORE);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                done += k;
        }
        return n;
}

static enum take_result take_core(int in, int fd, int dirfd, const struct config *c, uint64_t used,
                                  uint64_t *size, int relay[2]) {
        uint64_t budget = space_allowed(dirfd, c, used), since_check = 0;
        enum take_result r;

        /* room for the record and the compressed copy's metadata: the disk must never fill up */
        budget = budget > STORE_RESERVE ? budget - STORE_RESERVE : 0;
        *size = 0;
        for (;;) {
                /* never write past the budget: one byte more than it proves the core does not fit */
                size_t want = (size_t)MIN((uint64_t)SPLICE_CHUNK, budget - MIN(*size, budget) + 1);
                ssize_t n = move_core(in, fd, want, relay);

                if (n == -EINTR)
                        continue;
                if (n < 0) {
                        r = n == -ENOSPC || n == -EDQUOT ? TAKE_NO_SPACE : TAKE_ERROR;
                        break;
                }
                if (n == 0) {
                        r = TAKE_OK;
                        break;
                }
                *size += n;
                since_check += n;
                if (*size > c->max_core_size) {
                        r = TAKE_TOO_LARGE;
                        break;
                }
                if (*size > budget) {
                        r = TAKE_NO_SPACE;
                        break;
                }
                /* the file system is shared: look again every 256 MiB */
                if (since_check >= (256u << 20)) {
                        uint64_t now = space_allowed(dirfd, c, used);
                        budget = *size + (now > STORE_RESERVE ? now - STORE_RESERVE : 0);
                        since_check = 0;
                }
        }
        return r;
}

/* The raw core in `raw` (size bytes) as a seekable zstd file in `out`. */
static int compress_core(int raw, int out, const struct config *c, uint64_t size, uint64_t *stored) {
        struct zst_writer *w;
        char *buf;
        uint64_t off = 0;
        int r;

        buf = malloc(COMPRESS_CHUNK);
        if (!buf)
                return -ENOMEM;
        r = zst_writer_new(out, c->compression_level, 2, 0, &w);
        if (r < 0) {
                free(buf);
                return r;
        }
        while (off < size && r == 0) {
                ssize_t n = pread(raw, buf, COMPRESS_CHUNK, (off_t)off);
                if (n <= 0) {
                        r = n < 0 ? -errno : -EIO;
                        break;
                }
                r = zst_writer_write(w, buf, (size_t)n);
                off += n;
        }
        if (r == 0)
                r = zst_writer_finish(w, stored);
        zst_writer_free(w);
        free(buf);
        return r;
}

/* comm as a file name: anything but [A-Za-z0-9._-] becomes '_', and it never starts with '.' */
static void safe_name(const char *in, char *out, size_t size) {
        size_t i;

        for (i = 0; in[i] && i + 1 < size && i < 32; i++) {
                char ch = in[i];
                bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                          ch == '-' || ch == '_' || (ch == '.' && i > 0);
                out[i] = ok ? ch : '_';
        }
        out[i] = 0;
        if (i == 0)
                snprintf(out, size, "unknown");
}

/*
 * A crash we do not capture goes to the handler that was in core_pattern
 * before us (recorded at setup in <Storage>/previous-core-pattern), so
 * installing pystackd never loses another program's core.  Pipe handlers
 * are executed with the core still on stdin and their % specifiers filled
 * in from what we know; a file pattern is not emulated (the kernel would
 * write it with the crashing process's credentials): we say so and drop it.
 */
static void forward(int storage_fd, const struct args *a, const struct proc_info *pi) {
        char pattern[512], *argv[64];
        char expanded[64][256];
        size_t n = 0, argc = 0;
        int fd;

        /* it names a program we run as root: root's own plain file only (never a FIFO to wait on) */
        fd = openat(storage_fd, "previous-core-pattern", O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) {
                if (errno != ENOENT)
                        log_msg(LOG_WARNING, "previous-core-pattern: %s; not forwarding",
                                errno == ELOOP ? "a symbolic link" : strerror(errno));
                return;
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid() ||
            (st.st_mode & 022)) {
                log_msg(LOG_WARNING, "previous-core-pattern is not a private regular file of root's; not forwarding");
                close(fd);
                return;
        }
        ssize_t len = read(fd, pattern, sizeof(pattern) - 1);
        close(fd);
        if (len <= 0)
                return;
        pattern[len] = 0;
        pattern[strcspn(pattern, "\n")] = 0;
        if (pattern[0] != '|') {
                if (pattern[0])
                        log_msg(LOG_INFO, "process %d (%s) not captured; the previous core_pattern \"%s\" is "
                                "a file pattern, which is not forwarded", a->pid, a->comm, pattern);
                return;
        }
        for (char *tok = strtok(pattern + 1, " \t"); tok && argc < 63; tok = strtok(NULL, " \t")) {
                char *out = expanded[argc];
                size_t o = 0;

                for (const char *p = tok; *p && o < sizeof(expanded[0]) - 24; p++) {
                        if (*p != '%' || !p[1]) {
                                out[o++] = *p;
                                continue;
                        }
                        p++;
                        switch (*p) {
                        case '%': out[o++] = '%'; break;
                        case 'p': o += sprintf(out + o, "%d", pi->pid_ns > 0 ? pi->pid_ns : a->pid); break;
                        case 'P': case 'i': case 'I': o += sprintf(out + o, "%d", a->pid); break;
                        case 'u': o += sprintf(out + o, "%u", a->uid); break;
                        case 'g': o += sprintf(out + o, "%u", a->gid); break;
                        case 's': o += sprintf(out + o, "%d", a->signal); break;
                        case 't': o += sprintf(out + o, "%lld", (long long)a->time); break;
                        case 'c': o += snprintf(out + o, sizeof(expanded[0]) - o, "%.24s", a->rlimit_text); break;
                        case 'd': o += sprintf(out + o, "%d", a->dumpable); break;
                        case 'F': o += sprintf(out + o, "%d", a->pidfd); break;
                        case 'h': o += snprintf(out + o, sizeof(expanded[0]) - o, "%.64s", a->hostname); break;
                        case 'e': o += snprintf(out + o, sizeof(expanded[0]) - o, "%.16s", a->comm); break;
                        case 'E':
                                for (const char *e = pi->exe ? pi->exe : ""; *e && o < sizeof(expanded[0]) - 2; e++)
                                        out[o++] = *e == '/' ? '!' : *e;
                                break;
                        default: break;  /* unknown: the kernel leaves nothing either */
                        }
                }
                out[o] = 0;
                argv[argc++] = out;
        }
        argv[argc] = NULL;
        if (argc == 0 || argv[0][0] != '/')
                return;
        (void)n;
        log_msg(LOG_INFO, "process %d (%s) not captured: forwarded to %s", a->pid, a->comm, argv[0]);
        execv(argv[0], argv);
        log_msg(LOG_WARNING, "cannot run the previous handler %s: %m", argv[0]);
}

/* ---- the plan, step by step ---- */

/* One crash being captured: what we know, and what we hold. */
struct capture {
        struct args a;
        struct config cfg;
        struct proc_info pi;
        struct binaries bin;            /* the files it had mapped (KeepBinaries=) */
        bool bin_recorded;
        bool proc_known;                /* /proc/PID is the crashed process's (pidfd-checked) */
        char *boot_id;
        struct crash_record rec;
        int64_t start, id;
        sqlite3 *db;                    /* NULL: not open (yet) */
        int storage_fd, cores_fd, raw_fd;
        int root_fd;                    /* O_PATH on a container's root, for pystackd's analysis; -1 */
        int relay[2];                   /* socket mode: the pipe the core is spliced through, sized while
                                         * we may (a pipe of uid 0's without CAP_SYS_RESOURCE may get
                                         * 2 pages once root's pipes pass pipe-user-pages-soft) */
        int in_fd;                      /* the core comes from here: stdin (pipe), the kernel's connection
                                         * (socket); closing it lets the process go.  -1 once closed */
        bool socket;                    /* socket mode: nothing comes before our ack, and a crash that is
                                         * not kept is rejected (REJECT: the kernel writes no byte) */
        int64_t rejected_bytes;         /* socket mode: bytes the kernel wrote after our REJECT; -1 */
        uint64_t size;                  /* bytes of core taken */
        char name[256], rel[300];       /* the stored core's file name, and its path in the store */
        char hostname[256];             /* socket mode: the process's UTS namespace's */
};

static void capture_done(struct capture *c) {
        store_close(c->db);
        closep(&c->relay[0]);
        closep(&c->relay[1]);
        closep(&c->in_fd);
        closep(&c->a.pidfd);
        closep(&c->raw_fd);
        closep(&c->cores_fd);
        closep(&c->root_fd);
        closep(&c->storage_fd);
        proc_info_free(&c->pi);
        binaries_free(&c->bin);
        free(c->boot_id);
        config_free(&c->cfg);
}

/* Exactly n bytes within timeout_ms in all: 0, or -EIO (closed, short, too slow). */
static int read_exactly(int fd, void *p, size_t n, int timeout_ms) {
        int64_t deadline = clock_usec(CLOCK_MONOTONIC) + (int64_t)timeout_ms * 1000;

        while (n) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                int64_t left = deadline - clock_usec(CLOCK_MONOTONIC);
                ssize_t k;

                if (left <= 0 || poll(&pfd, 1, (int)(left / 1000) + 1) <= 0)
                        return -EIO;
                k = read(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -EIO;
                p = (char *)p + k;
                n -= (size_t)k;
        }
        return 0;
}

/*
 * The hostname the crashed process saw: its UTS namespace's, which may be a container's.  Read
 * in a child that joins that namespace (we never join it ourselves); ours when it is ours.
 */
static void task_hostname(int procfd, char *buf, size_t size) {
        struct stat mine, theirs;
        int pfd[2], ns;
        pid_t pid;

        buf[0] = 0;
        ns = openat(procfd, "ns/uts", O_RDONLY | O_CLOEXEC);
        if (ns < 0 || fstat(ns, &theirs) < 0 || stat("/proc/self/ns/uts", &mine) < 0 ||
            (theirs.st_ino == mine.st_ino && theirs.st_dev == mine.st_dev) || pipe2(pfd, O_CLOEXEC) < 0) {
                if (ns >= 0)
                        close(ns);
                if (gethostname(buf, size) < 0)
                        buf[0] = 0;
                buf[size - 1] = 0;
                return;
        }
        pid = fork();
        if (pid == 0) {
                struct utsname u;

                close(pfd[0]);
                if (setns(ns, CLONE_NEWUTS) == 0 && uname(&u) == 0)
                        write_all(pfd[1], u.nodename, strnlen(u.nodename, sizeof(u.nodename)));
                _exit(0);
        }
        close(pfd[1]);
        close(ns);
        if (pid > 0) {
                size_t n = 0;
                ssize_t k;

                while (n + 1 < size && (k = read(pfd[0], buf + n, size - 1 - n)) > 0)
                        n += (size_t)k;
                buf[n] = 0;
                waitpid(pid, NULL, 0);
        }
        close(pfd[0]);
}

/* What /proc says, read while the kernel still holds the process. */
static void gather_proc_info(struct capture *c) {
        _cleanup_close_ int procfd = proc_open(c->a.pid, c->a.pidfd);

        if (procfd >= 0) {
                proc_info_read(procfd, c->cfg.store_environment, &c->pi);
                c->proc_known = true;
                /* the files it mapped, while they are still the ones it ran (copied after) */
                if (c->cfg.keep_binaries && (c->pi.python || c->cfg.capture == CAPTURE_ALL))
                        binaries_take(procfd, &c->bin);
                /* what is missing for that must not pass for what the process did not have */
                if (c->pi.out_of_memory || c->bin.out_of_memory)
                        log_msg(LOG_WARNING, "process %d: out of memory while reading /proc/%d: some of its %s "
                                "not recorded", c->a.pid, c->a.pid, c->pi.out_of_memory ? "details are" :
                                "mapped files are");
                /* a container's files are not the host's of the same names: the analysis reads its
                 * source lines under its root, through this handle (we resolve nothing under it) */
                if (c->pi.container)
                        c->root_fd = openat(procfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (c->socket)
                        task_hostname(procfd, c->hostname, sizeof(c->hostname));
                return;
        }
        /* /proc/PID cannot be tied to the process the kernel named: none of it is used */
        if (procfd == -ENOMEM)
                log_msg(LOG_WARNING, "process %d: out of memory checking /proc/%d; recording what the kernel said "
                        "only", c->a.pid, c->a.pid);
        else
                log_msg(LOG_WARNING, "process %d: /proc/%d is not the crashed process (pidfd %d): %s; "
                        "recording what the kernel said only", c->a.pid, c->a.pid, c->a.pidfd, strerror(-procfd));
        snprintf(c->pi.comm, sizeof(c->pi.comm), "%s", c->a.comm);
        c->pi.rlimit_core = -2;
}

static void make_record(struct capture *c) {
        const struct args *a = &c->a;
        struct proc_info *pi = &c->pi;

        c->boot_id = boot_id();
        c->rec = (struct crash_record) {
                .time_usec = c->start, .boot_id = c->boot_id, .hostname = a->hostname, .pid = a->pid,
                .pid_ns = pi->pid_ns, .uid = a->uid, .gid = a->gid, .signal = a->signal,
                .comm = pi->comm, .exe = pi->exe, .cwd = pi->cwd, .cgroup = pi->cgroup, .unit = pi->unit,
                .cmdline_json = c->proc_known ? buf_str(&pi->cmdline) : NULL, .script = pi->script,
                .thread_names_json = c->proc_known ? buf_str(&pi->threads) : NULL,
                .environ_json = c->cfg.store_environment && c->proc_known ? buf_str(&pi->environ) : NULL,
                .container = pi->container, .container_runtime = pi->container_runtime,
                .container_id = pi->container_id, .dumpable = a->dumpable,
                .rlimit_core = pi->rlimit_core != -2 ? pi->rlimit_core : a->rlimit,
                .core_size = -1, .core_state = CORE_PRESENT,
        };
}

/*
 * The store, checked and opened.  -errno when it cannot be used at all; 0
 * with c->db NULL when it is busy for longer than the busy timeout, or must be
 * migrated first: then the core is taken first (the process let go) and the
 * store opened after (open_store_late).
 */
static int open_store(struct capture *c) {
        char err[512];
        int r;

        r = check_store_files(c->storage_fd, err, sizeof(err));
        if (r == 0)
                r = store_open_current(c->cfg.directory, &c->db, err, sizeof(err));
        if (r == -EBUSY || r == -EAGAIN) {
                log_msg(r == -EBUSY ? LOG_WARNING : LOG_INFO, "%s (%s); taking the core first, recording later",
                        r == -EBUSY ? "the store is busy" : "the store is to be migrated", err);
                c->db = NULL;
                return 0;
        }
        if (r < 0)
                log_msg(LOG_ERR, "cannot record the crash of process %d (%s, signal %d, core not taken): "
                        "cannot use the store: %s", c->a.pid, c->pi.comm, c->a.signal, err);
        return r;
}

/* The row, and the rate limit: 1 when the crash is over it (the record is final, no core). */
static int begin_capture(struct capture *c) {
        struct rate_limit limit = {
                .burst = c->cfg.rate_limit_burst, .interval_usec = (int64_t)c->cfg.rate_limit_interval * 1000000,
        };
        int r;

        if (!c->db)
                return 0;
        r = store_begin_capture(c->db, &c->rec, &limit, &c->id);
        if (r < 0)
                c->id = 0;      /* store trouble: record_crash() inserts the row later */
        return r > 0;
}

static void capture_failed(struct capture *c, enum core_state state, const char *note) {
        c->rec.core_state = state;
        c->rec.capture_note = note;
}

/* The process goes: the kernel lets it die once the core's reader is gone. */
static void release(struct capture *c) {
        closep(&c->in_fd);
        c->in_fd = -1;
}

/*
 * Socket mode: our answer to the kernel's request, then its mark.  KERNEL|WAIT: write the core
 * here, and hold the task until we close (so /proc stays the crashed process's while we copy);
 * REJECT: no core.  0, or -EPROTO with the log line said.
 */
static int answer(struct capture *c, uint64_t mask) {
        struct coredump_ack_v0 ack = { .size = sizeof(ack), .mask = mask };
        uint32_t mark;

        if (write_all(c->in_fd, &ack, sizeof(ack)) < 0 || read_exactly(c->in_fd, &mark, sizeof(mark), 5000) < 0) {
                log_msg(LOG_WARNING, "process %d: the coredump socket closed during our answer", c->a.pid);
                return -EPROTO;
        }
        if (mark != COREDUMP_MARK_REQACK) {
                log_msg(LOG_WARNING, "process %d: the kernel refused our answer 0x%llx (mark %u)", c->a.pid,
                        (unsigned long long)mask, mark);
                return -EPROTO;
        }
        return 0;
}

/*
 * A crash that is not kept: rejected (socket mode: the kernel writes no byte of it; what it
 * writes anyway until it closes, within 200 ms, is counted in c->rejected_bytes), and let go.
 */
static void let_go(struct capture *c) {
        if (c->socket && c->in_fd >= 0 && answer(c, COREDUMP_REJECT) == 0) {
                int64_t deadline = clock_usec(CLOCK_MONOTONIC) + 200000;
                char buf[4096];

                c->rejected_bytes = 0;
                for (;;) {
                        struct pollfd pfd = { .fd = c->in_fd, .events = POLLIN };
                        int64_t left = deadline - clock_usec(CLOCK_MONOTONIC);
                        ssize_t n;

                        if (left <= 0 || poll(&pfd, 1, (int)(left / 1000) + 1) <= 0)
                                break;
                        n = read(c->in_fd, buf, sizeof(buf));
                        if (n <= 0)
                                break;
                        c->rejected_bytes += n;
                }
        }
        release(c);
}

/* The core from stdin into an unnamed file, as fast as the kernel writes it; then the process goes. */
static int take(struct capture *c) {
        enum take_result took;

        c->cores_fd = private_subdir(c->storage_fd, "cores");
        if (c->cores_fd < 0)
                return capture_failed(c, CORE_ERROR, "cannot use the cores directory"), -EIO;
        /* unnamed until complete: a crash of ours halfway leaves nothing behind */
        c->raw_fd = openat(c->cores_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (c->raw_fd < 0)
                return capture_failed(c, CORE_ERROR, "cannot create a file in the cores directory"), -EIO;
        /* once: MAX() evaluated it twice, and a second call that failed counted as a store of 2^64
         * bytes, so the core was dropped as "not enough room under MaxUse/KeepFree" */
        int64_t used = c->db ? store_cores_size(c->db) : 0;
        took = take_core(c->in_fd, c->raw_fd, c->cores_fd, &c->cfg, (uint64_t)MAX(used, 0),
                         &c->size, c->relay);
        /* the whole core is ours (or we gave up on it): let the kernel release the process */
        release(c);
        c->rec.core_size = (int64_t)c->size;
        if (took == TAKE_OK)
                return 0;
        /* give the space back before anything else needs it (the record itself) */
        if (ftruncate(c->raw_fd, 0) < 0)
                log_msg(LOG_WARNING, "cannot truncate the partial core: %m");
        closep(&c->raw_fd);
        c->raw_fd = -1;
        if (took == TAKE_TOO_LARGE)
                capture_failed(c, CORE_TOO_LARGE, "the core is larger than MaxCoreSize");
        else if (took == TAKE_NO_SPACE)
                capture_failed(c, CORE_NO_SPACE, "not enough room under MaxUse/KeepFree (or the disk is full)");
        else
                capture_failed(c, CORE_ERROR, "reading the core failed");
        return -EIO;
}

/*
 * The process is let go: the store that was busy or at an older schema is opened now (migrated,
 * if so), and the row claimed, so that pystackd can take the raw core.  Still busy: record_crash
 * tries again.  The rate limit was not asked: the core is taken.
 */
static void open_store_late(struct capture *c) {
        struct rate_limit none = {};
        char err[512];

        if (c->db)
                return;
        if (store_open(c->cfg.directory, &c->db, err, sizeof(err)) < 0) {
                c->db = NULL;
                return;
        }
        if (store_begin_capture(c->db, &c->rec, &none, &c->id) != 0)
                c->id = 0;      /* record_crash inserts the row */
}

static int known_binary(const struct mapped_file *f, char hash[SHA256_HEX], void *userdata) {
        struct capture *c = userdata;

        return c->db ? store_find_binary(c->db, f->dev, f->ino, f->size, f->mtime_ns, f->ctime_ns, hash) : 0;
}

/* The mapped files taken while the process was held: into binaries/, and recorded for the crash. */
static void keep_binaries(struct capture *c) {
        struct binaries_limits lim = {
                .max_file = c->cfg.max_binary_size, .max_total = c->cfg.max_binaries_per_crash,
                .exclude = c->cfg.binaries_exclude, .known = known_binary, .userdata = c,
        };
        uint64_t added = 0, room, need;
        int r;

        if (c->bin.n == 0)
                return;
        /* the core comes first: the files get only what leaves room (under MaxUse/KeepFree) for its
         * compressed copy, counted at the raw size, and the record */
        /* once, as in take() */
        int64_t used = c->db ? store_cores_size(c->db) : 0;
        room = space_allowed(c->cores_fd, &c->cfg, (uint64_t)MAX(used, 0));
        need = c->size + STORE_RESERVE;
        if (room < need || room - need < lim.max_total) {
                lim.max_total = room > need ? room - need : 0;
                lim.max_total_is_room = true;
        }
        if (c->bin.truncated)
                log_msg(LOG_WARNING, "crash of process %d: more than %d mapped files (or %d opens): the rest are "
                        "not kept", c->a.pid, BINARIES_MAX_FILES, 4 * BINARIES_MAX_FILES);
        r = binaries_store(c->storage_fd, &lim, &c->bin, &added);
        if (r < 0)
                log_msg(LOG_WARNING, "crash of process %d: cannot keep its binaries: %s", c->a.pid, strerror(-r));
}

static void record_binaries(struct capture *c) {
        struct crash_binary *rows;
        char (*hex)[2 * 64 + 1];

        if (c->bin_recorded || c->bin.n == 0 || !c->db || c->id <= 0)
                return;
        rows = calloc(c->bin.n, sizeof(*rows));
        hex = calloc(c->bin.n, sizeof(*hex));
        if (rows && hex) {
                for (size_t i = 0; i < c->bin.n; i++) {
                        const struct mapped_file *f = &c->bin.files[i];

                        for (size_t k = 0; k < f->build_id_len; k++)
                                snprintf(hex[i] + 2 * k, 3, "%02x", f->build_id[k]);
                        rows[i] = (struct crash_binary) {
                                .path = f->path, .address = f->start, .size = f->size,
                                .build_id = f->build_id_len ? hex[i] : NULL, .hash = f->hash[0] ? f->hash : NULL,
                                .note = f->note, .dev = f->dev, .ino = f->ino, .mtime_ns = f->mtime_ns,
                                .ctime_ns = f->ctime_ns,
                        };
                }
                if (store_add_binaries(c->db, c->id, rows, c->bin.n, clock_usec(CLOCK_REALTIME)) == 0) {
                        c->bin_recorded = true;
                        binaries_verify(&c->bin);
                }
        }
        free(rows);
        free(hex);
}

/*
 * pystackd may start analysing the raw core now, while we compress it: the two overlap.  A
 * container's root goes with it (and only here: pystackd keeps it for the crash's analysis).
 */
static void hand_over_raw_core(struct capture *c) {
        int fds[2] = { c->raw_fd, c->root_fd };
        char msg[64];

        if (c->id <= 0)
                return;
        snprintf(msg, sizeof(msg), "CORE=%lld", (long long)c->id);
        notify_daemon(c->cfg.runtime_directory, msg, fds, c->root_fd >= 0 ? 2 : 1);
}

/* The raw core as a seekable zstd file, linked into place under its final name. */
static int compress(struct capture *c) {
        _cleanup_close_ int out = -1;
        char comm_safe[40], bid_hex[40] = "x", fdpath[64];
        uint64_t stored = 0;

        safe_name(c->pi.comm, comm_safe, sizeof(comm_safe));
        for (size_t i = 0, k = 0; c->boot_id && c->boot_id[i] && k + 1 < sizeof(bid_hex); i++)
                if (c->boot_id[i] != '-')
                        bid_hex[k++] = c->boot_id[i], bid_hex[k] = 0;
        snprintf(c->name, sizeof(c->name), "core.%s.%u.%s.%d.%lld.zst", comm_safe, c->a.uid, bid_hex, c->a.pid,
                 (long long)c->start);
        out = openat(c->cores_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        int r = out < 0 ? -errno : compress_core(c->raw_fd, out, &c->cfg, c->size, &stored);
        if (r == 0 && fsync(out) < 0)
                r = -errno;
        if (r == -ENOMEM) {
                /* said where a person looks too: the record's note alone would not say it was us */
                log_msg(LOG_ERR, "crash of process %d: the core is not kept: out of memory compressing it", c->a.pid);
                return capture_failed(c, CORE_ERROR, "compressing the core failed: out of memory"), -EIO;
        }
        if (r < 0)
                return capture_failed(c, r == -ENOSPC || errno == ENOSPC ? CORE_NO_SPACE : CORE_ERROR,
                                      "compressing the core failed"),
                       -EIO;
        snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", out);
        if (linkat(AT_FDCWD, fdpath, c->cores_fd, c->name, AT_SYMLINK_FOLLOW) < 0)
                return capture_failed(c, CORE_ERROR, "cannot link the core into place"), -EIO;
        snprintf(c->rel, sizeof(c->rel), "cores/%s", c->name);
        c->rec.core_path = c->rel;
        c->rec.core_stored_size = (int64_t)stored;
        return 0;
}

/*
 * Record the crash: complete the claimed row, or insert one; open the store when that failed
 * earlier because it was busy, and retry what met a lock, until STORE_RETRY_USEC after we
 * started.  The process was let go before this: only we wait.
 */
static int record_crash(struct capture *c) {
        char err[512] = "";

        for (;;) {
                int r = c->db ? 0 : store_open(c->cfg.directory, &c->db, err, sizeof(err));

                if (r == 0) {
                        r = store_finish_capture(c->db, &c->rec, &c->id);
                        if (r < 0)
                                snprintf(err, sizeof(err), "%s", store_errmsg(c->db));
                }
                if (r == 0)
                        return 0;
                if (r != -EBUSY || clock_usec(CLOCK_REALTIME) - c->start >= STORE_RETRY_USEC) {
                        /* a claimed row stays, saying the capture did not finish */
                        log_msg(LOG_ERR, "cannot record the crash of process %d (%s, signal %d, core %s): %s",
                                c->a.pid, c->pi.comm, c->a.signal, core_state_to_string(c->rec.core_state), err);
                        if (c->rec.core_path)
                                unlinkat(c->cores_fd, c->name, 0);  /* a core with no record would only fill the disk */
                        return r;
                }
                usleep(100 * 1000);
        }
}

static void announce(const struct capture *c) {
        char msg[64];

        char rejected[64] = "";

        if (c->rejected_bytes >= 0)
                snprintf(rejected, sizeof(rejected), " (rejected: the kernel wrote %lld bytes of it)",
                         (long long)c->rejected_bytes);
        log_msg(LOG_INFO, "crash %lld: process %d (%s), core %s%s%s%s", (long long)c->id, c->a.pid, c->pi.comm,
                core_state_to_string(c->rec.core_state), c->rec.capture_note ? ": " : "",
                c->rec.capture_note ? c->rec.capture_note : "", rejected);
        if (c->rec.core_state != CORE_PRESENT)
                return;
        snprintf(msg, sizeof(msg), "CRASH=%lld", (long long)c->id);
        notify_daemon(c->cfg.runtime_directory, msg, NULL, 0);
}

/*
 * What needs root's privileges is done by now: /proc of another user's process (ptrace access),
 * its mapped files (map_files: CAP_SYS_ADMIN), its UTS namespace.  The rest -- the core, the
 * store, the binaries (through the descriptors already open), pystackd's socket -- is files and
 * sockets uid 0 owns: no capability is needed for them, so none is kept, and none can come back
 * (no_new_privs).  A bug from here on has uid 0's files, not root's powers.
 */
static void drop_privileges(void) {
        struct { uint32_t version; int pid; } header = { 0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0 };
        struct { uint32_t effective, permitted, inheritable; } data[2] = {};

        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if (syscall(SYS_capset, &header, data) < 0)
                log_msg(LOG_WARNING, "cannot drop capabilities: %m");
}

/*
 * The plan once we know who crashed: keep it, or let it go (forward it, reject it), as
 * Processes= and the rate limit say; take the core; record it.  The same for both modes.
 */
static int run_capture(struct capture *c) {
        char err[512];

        /* first words, at once: if the machine is going down, at least this is in the journal */
        if (c->socket)
                log_msg(LOG_INFO, "process %d (%s) of user %u dumped core (coredump socket; the signal is read "
                        "from the core)", c->a.pid, c->pi.comm, c->a.uid);
        else
                log_msg(LOG_INFO, "process %d (%s) of user %u dumped core with signal %d", c->a.pid, c->pi.comm,
                        c->a.uid, c->a.signal);

        c->storage_fd = open_storage(c->cfg.directory, err, sizeof(err));
        if (c->storage_fd < 0) {
                log_msg(LOG_ERR, "cannot use the storage directory: %s", err);
                let_go(c);
                return 1;
        }
        if (c->cfg.capture == CAPTURE_PYTHON && !c->pi.python) {
                if (c->socket) {
                        /* no handler to pass it to: socket mode does not chain a previous pattern */
                        let_go(c);
                        log_msg(LOG_INFO, "process %d (%s) not captured (Processes=python): rejected, the kernel "
                                "wrote %lld bytes of it", c->a.pid, c->pi.comm, (long long)c->rejected_bytes);
                } else
                        forward(c->storage_fd, &c->a, &c->pi);
                return 0;       /* not ours; closing stdin lets the kernel go on */
        }
        drop_privileges();
        make_record(c);
        if (open_store(c) < 0) {
                let_go(c);
                return 1;
        }
        if (begin_capture(c) > 0) {
                /* a crash loop: the record is final, the core not kept; reading nothing (socket mode:
                 * rejecting it, so the kernel writes nothing) lets the process go now */
                let_go(c);
                announce(c);
                return 0;
        }
        if (c->socket && answer(c, COREDUMP_KERNEL | COREDUMP_WAIT) < 0)
                capture_failed(c, CORE_ERROR, "the kernel did not accept the coredump socket's answer");
        else if (take(c) == 0) {
                open_store_late(c);
                keep_binaries(c);
                record_binaries(c);
                hand_over_raw_core(c);
                compress(c);
        }
        release(c);     /* whatever happened, the process is let go before we wait for the store */
        if (record_crash(c) < 0)
                return 1;
        record_binaries(c);     /* when the row could only be made now */
        announce(c);
        return 0;
}

/* The start of every run: never dumpable, enough descriptors, private files. */
static void harden(void) {
        struct rlimit nofile;

        /* a fault in here must never produce a core that comes back to us */
        prctl(PR_SET_DUMPABLE, 0);
        /* a descriptor per mapped file (BINARIES_MAX_FILES) is more than the kernel's default 1024 */
        if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
                nofile.rlim_cur = nofile.rlim_max;
                setrlimit(RLIMIT_NOFILE, &nofile);
        }
        umask(077);
        signal(SIGPIPE, SIG_IGN);
}

/*
 * A connection to the coredump socket, in its own process (forked by the listener, which goes on
 * accepting).  Only the kernel dumping a core is served: its pidfd (SO_PEERPIDFD) says
 * PIDFD_COREDUMPED, which no process connecting on its own can have.  The facts the pipe
 * handler gets as arguments come from the pidfd (pid, real uid and gid, dumpable) and from the
 * process's /proc while the kernel holds it (comm, RLIMIT_CORE, the hostname of its UTS
 * namespace); the signal is not told on 6.18: pystackd takes it from the core (NT_SIGINFO).
 */
int capture_connection(int conn, const char *config_path, int64_t start_usec) {
        _cleanup_(capture_done) struct capture c = {
                .storage_fd = -1, .cores_fd = -1, .raw_fd = -1, .root_fd = -1, .in_fd = conn, .socket = true,
                .start = start_usec, .a.pidfd = -1, .rejected_bytes = -1, .relay = { -1, -1 },
        };
        struct pidfd_info_v1 info = { .mask = PIDFD_INFO_PID | PIDFD_INFO_CREDS | PIDFD_INFO_COREDUMP };
        struct coredump_req_v0 req;
        uint8_t rest[256];
        socklen_t len = sizeof(c.a.pidfd);

        /* the whole connection is bounded: a core that does not come in time is given up (our
         * death closes the connection, which lets the process go) */
        alarm(CAPTURE_CONNECTION_LIMIT_SEC);
        if (getsockopt(conn, SOL_SOCKET, SO_PEERPIDFD, &c.a.pidfd, &len) < 0 ||
            ioctl(c.a.pidfd, PIDFD_GET_INFO_V1, &info) < 0 || !(info.mask & PIDFD_INFO_COREDUMP) ||
            !(info.coredump_mask & PIDFD_COREDUMPED)) {
                struct ucred uc = { .pid = 0 };
                socklen_t ul = sizeof(uc);

                getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &uc, &ul);
                log_msg(LOG_WARNING, "coredump socket: refused a connection from process %d (uid %u): not the "
                        "kernel dumping a core", (int)uc.pid, (unsigned)uc.uid);
                return 1;
        }
        /* the request: its size first; what a later kernel adds after our fields is read and left */
        if (read_exactly(conn, &req, sizeof(req), 5000) < 0 || req.size < COREDUMP_REQ_SIZE_VER0 ||
            req.size > COREDUMP_REQ_SIZE_VER0 + sizeof(rest) ||
            read_exactly(conn, rest, req.size - COREDUMP_REQ_SIZE_VER0, 5000) < 0 ||
            req.size_ack < COREDUMP_ACK_SIZE_VER0 ||
            (req.mask & (COREDUMP_KERNEL | COREDUMP_REJECT | COREDUMP_WAIT)) !=
                    (COREDUMP_KERNEL | COREDUMP_REJECT | COREDUMP_WAIT)) {
                log_msg(LOG_ERR, "coredump socket: process %u: a request we do not understand (size %u, ack "
                        "size %u, mask 0x%llx); the core is lost", info.pid, req.size, req.size_ack,
                        (unsigned long long)req.mask);
                return 1;
        }
        c.a.pid = (int32_t)info.pid;
        c.a.uid = info.ruid;
        c.a.gid = info.rgid;
        c.a.signal = 0;
        c.a.time = start_usec / 1000000;
        c.a.dumpable = info.coredump_mask & PIDFD_COREDUMP_ROOT ? 2 : info.coredump_mask & PIDFD_COREDUMP_USER ? 1 : 0;
        c.a.rlimit = -2;
        c.a.rlimit_text = "";
        c.a.comm = "";
        c.a.hostname = c.hostname;
        if (config_defaults(&c.cfg) < 0 || capture_load_config(&c.cfg, config_path) < 0) {
                log_msg(LOG_ERR, "process %d not captured: out of memory", (int)c.a.pid);
                let_go(&c);
                return 1;
        }
        gather_proc_info(&c);
        c.a.comm = c.pi.comm;
        c.a.rlimit = c.pi.rlimit_core;
        /* the relay pipe at 1 MiB, while we still hold the capabilities */
        if (pipe2(c.relay, O_CLOEXEC) == 0)
                fcntl(c.relay[1], F_SETPIPE_SZ, 1 << 20);
        else
                c.relay[0] = c.relay[1] = -1;
        return run_capture(&c);
}

int main(int argc, char **argv) {
        _cleanup_(capture_done) struct capture c = {
                .storage_fd = -1, .cores_fd = -1, .raw_fd = -1, .root_fd = -1, .in_fd = STDIN_FILENO,
                .start = clock_usec(CLOCK_REALTIME), .rejected_bytes = -1, .relay = { -1, -1 },
        };
        const char *config_path = PYSTACK_CONF_DEFAULT;
        bool listen = false;

        harden();
        log_setup("pystack-coredump", LOG_TO_JOURNAL);

        if (parse_args(argc, argv, &config_path, &c.a, &listen) < 0) {
                /* run by hand, most likely: say it where a person looks */
                fprintf(stderr, "pystack-coredump: usage: pystack-coredump [--config=FILE] %%F %%P %%u %%g %%s %%t %%c "
                        "%%h %%d %%e, or --listen (see --help)\n");
                return 2;
        }
        if (listen) {
                c.in_fd = -1;
                return listener_run(config_path);
        }
        if (config_defaults(&c.cfg) < 0 || capture_load_config(&c.cfg, config_path) < 0) {
                /* closing stdin at exit lets the kernel go on */
                log_msg(LOG_ERR, "process %d (%s) not captured: out of memory", (int)c.a.pid, c.a.comm);
                return 1;
        }
        gather_proc_info(&c);
        return run_capture(&c);
}
